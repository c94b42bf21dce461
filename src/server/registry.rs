//! Which connections are open, readable from any thread without asking the
//! loop: the loop writes it (at `on_connect` and just before `on_close`),
//! others read counts, ids and peers. A mutex held only for a table access,
//! never across a callback, so a callback on the loop thread may read it too.
//!
//! One row per open connection, so its size counts at 10,000 idle clients:
//! a row is 16 bytes (the id and an IPv4 peer packed into 8), in a vector
//! sorted by id. Ids only grow, so opening appends; closing marks the row
//! (a binary search) and the marked rows are swept out once they are as
//! many as the live ones, so both stay O(log n) amortised. Peers that do
//! not pack (IPv6) are kept apart, by id. (A `BTreeMap<u64, SocketAddr>`
//! took about 70 bytes per connection.)

use super::stats::{Stats, CLOSE_REASONS};
use super::CloseReason;
use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Mutex, MutexGuard};

/// A row's peer: a closed connection's row.
const GONE: u64 = 0;
/// A row's peer: in [`Table::wide`].
const WIDE: u64 = u64::MAX;

#[derive(Default)]
struct Table {
    /// (id, packed peer), sorted by id, so a snapshot lists connections
    /// oldest first.
    rows: Vec<(u64, u64)>,
    /// Rows not `GONE`.
    live: usize,
    /// IPv6 peers, by id.
    wide: HashMap<u64, SocketAddr>,
    /// Connections ever opened, and closed by reason (the server's stats,
    /// counted here under the lock taken anyway).
    total: u64,
    closed: [u64; CLOSE_REASONS],
}

#[derive(Default)]
pub(crate) struct OpenConns {
    table: Mutex<Table>,
}

/// An IPv4 peer in 8 bytes, never `GONE` or `WIDE`; None for IPv6.
fn pack(a: SocketAddr) -> Option<u64> {
    match a {
        SocketAddr::V4(v4) => Some(1 << 48 | u64::from(u32::from(*v4.ip())) << 16 | u64::from(v4.port())),
        SocketAddr::V6(_) => None,
    }
}

impl Table {
    fn find(&self, id: u64) -> Option<usize> {
        self.rows.binary_search_by_key(&id, |r| r.0).ok().filter(|&i| self.rows[i].1 != GONE)
    }

    fn peer(&self, i: usize) -> Option<SocketAddr> {
        let (id, p) = self.rows[i];
        match p {
            WIDE => self.wide.get(&id).copied(),
            _ => Some(SocketAddr::from((Ipv4Addr::from((p >> 16) as u32), p as u16))),
        }
    }
}

impl OpenConns {
    fn lock(&self) -> MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Makes room for `n` rows at once, so that the table does not move
    /// as it grows (each move would leave its old copy's pages behind).
    pub(crate) fn reserve(&self, n: usize) {
        self.lock().rows.reserve(n);
    }

    pub(crate) fn opened(&self, id: u64, peer: SocketAddr) {
        let mut t = self.lock();
        let packed = pack(peer).unwrap_or_else(|| {
            t.wide.insert(id, peer);
            WIDE
        });
        match t.rows.binary_search_by_key(&id, |r| r.0) {
            Ok(i) => {
                if t.rows[i].1 == GONE {
                    t.live += 1;
                }
                t.rows[i].1 = packed;
            }
            // Usually the end: ids only grow.
            Err(i) => {
                t.rows.insert(i, (id, packed));
                t.live += 1;
            }
        }
        t.total += 1;
    }

    pub(crate) fn closed(&self, id: u64, reason: CloseReason) {
        let mut t = self.lock();
        t.closed[reason as usize - 1] += 1;
        let Some(i) = t.find(id) else { return };
        // Only a peer that did not pack has an entry (no hashing otherwise).
        if t.rows[i].1 == WIDE {
            t.wide.remove(&id);
        }
        t.rows[i].1 = GONE;
        t.live -= 1;
        if t.rows.len() > 2 * t.live + 16 {
            t.rows.retain(|r| r.1 != GONE);
        }
    }

    /// An outgoing connection that never connected (it was never open).
    pub(crate) fn failed(&self) {
        self.lock().closed[CloseReason::ConnectFailed as usize - 1] += 1;
    }

    pub(crate) fn count(&self) -> usize {
        self.lock().live
    }

    pub(crate) fn ids(&self) -> Vec<u64> {
        self.lock().rows.iter().filter(|r| r.1 != GONE).map(|r| r.0).collect()
    }

    pub(crate) fn peer(&self, id: u64) -> Option<SocketAddr> {
        let t = self.lock();
        t.find(id).and_then(|i| t.peer(i))
    }

    /// Adds the open, total and closed counts to `s`.
    pub(crate) fn add_to(&self, s: &mut Stats) {
        let t = self.lock();
        s.conns_open += t.live as u64;
        s.conns_total += t.total;
        for (sum, n) in s.closed.iter_mut().zip(t.closed) {
            *sum += n;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_follow_opens_and_closes_in_any_order() {
        let r = OpenConns::default();
        let v4: SocketAddr = "10.1.2.3:4567".parse().unwrap();
        let v6: SocketAddr = "[2001:db8::1]:80".parse().unwrap();
        for id in 1..=100u64 {
            r.opened(id * 10, if id % 2 == 0 { v4 } else { v6 });
        }
        r.opened(15, v4); // out of order (an outgoing connection)
        assert_eq!(r.count(), 101);
        assert_eq!(r.peer(20), Some(v4));
        assert_eq!(r.peer(30), Some(v6));
        assert_eq!(r.peer(15), Some(v4));
        assert_eq!(r.peer(16), None);
        for id in 1..=90u64 {
            r.closed(id * 10, CloseReason::Peer);
        }
        r.closed(10, CloseReason::Peer); // twice: nothing
        assert_eq!(r.count(), 11);
        assert_eq!(r.peer(30), None);
        assert!(r.lock().wide.len() <= 5, "IPv6 peers leave with their rows");
        assert!(r.lock().rows.len() <= 2 * 11 + 16, "closed rows are swept out");
        let mut want = vec![15];
        want.extend((91..=100u64).map(|i| i * 10));
        assert_eq!(r.ids(), want);
        assert_eq!(r.peer(1000), Some(v4));
    }
}
