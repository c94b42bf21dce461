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

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// What one address is counted as, as one 128-bit number: one hash write
/// per lookup (an `IpAddr` hashes as three: its variant, a length and its
/// bytes; with SipHash, which the table keeps because clients choose the
/// keys, that was most of what an accept and a close cost in user space).
/// An IPv4 address becomes its IPv4-mapped IPv6 form (`::ffff:a.b.c.d`),
/// an IPv6 one its /64 prefix (low 64 bits zero): the two never meet, as
/// a mapped address has 0xffff in its low 64 bits.
fn key(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(v4.to_ipv6_mapped()),
        IpAddr::V6(v6) => u128::from(v6) & !((1u128 << 64) - 1),
    }
}

pub(crate) struct PerAddress {
    max: usize,
    open: Mutex<HashMap<u128, usize>>,
}

impl PerAddress {
    pub(crate) fn new(max: usize) -> PerAddress {
        PerAddress { max: max.max(1), open: Mutex::default() }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<u128, usize>> {
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
        // One lookup, whether the count drops or the entry goes.
        if let Entry::Occupied(mut n) = self.lock().entry(key(ip)) {
            *n.get_mut() -= 1;
            if *n.get() == 0 {
                n.remove();
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
        // Counted apart: 0.0.0.0 and ::/64, the /64 its mapped form is in.
        let q = PerAddress::new(1);
        assert!(q.enter("0.0.0.0".parse().unwrap()) && q.enter("::".parse().unwrap()));
        assert!(!q.enter("::ffff:10.0.0.1".parse().unwrap()), "an IPv6 address in ::/64");
        q.leave("0.0.0.0".parse().unwrap());
        assert!(!q.enter("::1".parse().unwrap()), "::/64 still counted once");
        assert!(q.enter("0.0.0.0".parse().unwrap()));
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
