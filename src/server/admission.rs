//! Who may connect: connections counted per client address, and refusals
//! logged at a bounded rate.
//!
//! Without a per-address limit one host holding `max_conns` idle
//! connections shuts every other client out. IPv6 addresses are counted per
//! /64 prefix, the block one subscriber is normally given: counting single
//! addresses would let one host take a whole limit per address it picks.
//! A flood of refused connects must not become a flood of log lines, so the
//! refusal line is written at most once per second with a count of the
//! ones left out. The count is one table for all of a server's workers
//! (behind a mutex taken once per accept and close), so a host gets
//! `max_per_ip` connections, not that many per worker.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// What one address is counted as.
fn key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => {
            let prefix = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(prefix.into())
        }
    }
}

pub(crate) struct PerAddress {
    max: usize,
    open: Mutex<HashMap<IpAddr, usize>>,
}

impl PerAddress {
    pub(crate) fn new(max: usize) -> PerAddress {
        PerAddress { max: max.max(1), open: Mutex::default() }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<IpAddr, usize>> {
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Counts a new connection from `ip`; false (and not counted) when the
    /// address already has the most allowed.
    pub(crate) fn enter(&self, ip: IpAddr) -> bool {
        let mut open = self.lock();
        let n = open.entry(key(ip)).or_default();
        if *n >= self.max {
            return false;
        }
        *n += 1;
        true
    }

    /// A connection counted by `enter` closed.
    pub(crate) fn leave(&self, ip: IpAddr) {
        let k = key(ip);
        let mut open = self.lock();
        if let Some(n) = open.get_mut(&k) {
            *n -= 1;
            if *n == 0 {
                open.remove(&k);
            }
        }
    }

    pub(crate) fn max(&self) -> usize {
        self.max
    }
}

/// At most one line per `EVERY`; the others are counted.
#[derive(Default)]
pub(crate) struct Throttle {
    last: Option<Instant>,
    skipped: usize,
}

impl Throttle {
    const EVERY: Duration = Duration::from_secs(1);

    /// `Some(lines skipped since the last one)` when a line may be written now.
    pub(crate) fn ready(&mut self) -> Option<usize> {
        let now = Instant::now();
        if self.last.is_some_and(|t| now.duration_since(t) < Self::EVERY) {
            self.skipped += 1;
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.skipped))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_per_address_and_ipv6_per_64() {
        let p = PerAddress::new(2);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        assert!(p.enter(a) && p.enter(a) && !p.enter(a));
        assert!(p.enter("10.0.0.2".parse().unwrap()));
        p.leave(a);
        assert!(p.enter(a));
        let x: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let y: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        assert!(p.enter(x) && p.enter(y) && !p.enter(x));
        assert!(p.enter("2001:db8:1:3::1".parse().unwrap()));
    }

    #[test]
    fn throttle_counts_what_it_holds_back() {
        let mut t = Throttle::default();
        assert_eq!(t.ready(), Some(0));
        assert_eq!(t.ready(), None);
        assert_eq!(t.ready(), None);
        t.last = Some(Instant::now() - Duration::from_secs(2));
        assert_eq!(t.ready(), Some(2));
    }
}
