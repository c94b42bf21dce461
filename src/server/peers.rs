//! The peer table of a UDP server in [`UdpMode::Peers`](super::UdpMode):
//! each sender address is a connection with an id, a user slot and the time
//! it was last heard.
//!
//! Peers are also indexed by when they were last heard, oldest first, so
//! the loop knows the next expiry without scanning (it sleeps exactly until
//! then) and expiring costs O(log n) per peer: the table can hold many
//! thousands of senders that come and go.

use std::collections::hash_map::Entry;
use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// One sender, as long as it keeps sending.
pub(crate) struct Peer {
    pub(crate) id: u64,
    pub(crate) user: usize,
    last: Instant,
}

pub(crate) struct Peers {
    by_addr: HashMap<SocketAddr, Peer>,
    by_id: HashMap<u64, SocketAddr>,
    /// (last heard, id), oldest first: the front is the next to expire.
    by_last: BTreeSet<(Instant, u64)>,
    idle: Duration,
    max: usize,
}

/// What [`Peers::hear`] found.
pub(crate) enum Heard<'a> {
    /// A sender already in the table (its clock restarted).
    Known(&'a mut Peer),
    /// A new sender, just added with the id given (the caller must not
    /// give that id again).
    New(&'a mut Peer),
    /// A new sender, but the table holds `max` peers already.
    Full,
}

impl Peers {
    /// Peers expire after `idle` without a datagram; at most `max` at once.
    pub(crate) fn new(idle: Duration, max: usize) -> Peers {
        Peers { by_addr: HashMap::new(), by_id: HashMap::new(), by_last: BTreeSet::new(), idle, max: max.max(1) }
    }

    pub(crate) fn max(&self) -> usize {
        self.max
    }

    /// A datagram came from `addr` at `now`: its peer, added with id
    /// `new_id` if there was none (and there is room).
    pub(crate) fn hear(&mut self, addr: SocketAddr, now: Instant, new_id: u64) -> Heard<'_> {
        let full = self.by_addr.len() >= self.max;
        match self.by_addr.entry(addr) {
            Entry::Occupied(e) => {
                let p = e.into_mut();
                self.by_last.remove(&(p.last, p.id));
                p.last = now;
                self.by_last.insert((now, p.id));
                Heard::Known(p)
            }
            Entry::Vacant(_) if full => Heard::Full,
            Entry::Vacant(e) => {
                let id = new_id;
                self.by_id.insert(id, addr);
                self.by_last.insert((now, id));
                Heard::New(e.insert(Peer { id, user: 0, last: now }))
            }
        }
    }

    /// The address of peer `id`, if it is still there.
    pub(crate) fn addr_of(&self, id: u64) -> Option<SocketAddr> {
        self.by_id.get(&id).copied()
    }

    /// Every peer's id and address.
    pub(crate) fn all(&self) -> Vec<(u64, SocketAddr)> {
        self.by_id.iter().map(|(&id, &a)| (id, a)).collect()
    }

    /// Takes peer `addr` out of the table.
    pub(crate) fn remove(&mut self, addr: SocketAddr) -> Option<Peer> {
        let p = self.by_addr.remove(&addr)?;
        self.by_id.remove(&p.id);
        self.by_last.remove(&(p.last, p.id));
        Some(p)
    }

    /// When the oldest peer expires, if there is one.
    pub(crate) fn next_expiry(&self) -> Option<Instant> {
        self.by_last.first().map(|&(last, _)| last + self.idle)
    }

    /// Takes out one peer silent for the idle timeout at `now`, if any.
    pub(crate) fn pop_expired(&mut self, now: Instant) -> Option<(SocketAddr, Peer)> {
        let &(last, id) = self.by_last.first()?;
        if now < last + self.idle {
            return None;
        }
        let addr = self.by_id[&id];
        self.remove(addr).map(|p| (addr, p))
    }

    /// Takes out any one peer (for the stop).
    pub(crate) fn pop_any(&mut self) -> Option<(SocketAddr, Peer)> {
        let addr = *self.by_addr.keys().next()?;
        self.remove(addr).map(|p| (addr, p))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    #[test]
    fn hear_expire_and_bound() {
        let t0 = Instant::now();
        let s = Duration::from_secs(1);
        let mut p = Peers::new(s, 2);
        assert!(matches!(p.hear(addr(1), t0, 1), Heard::New(x) if x.id == 1));
        assert!(matches!(p.hear(addr(2), t0 + s / 2, 2), Heard::New(x) if x.id == 2));
        assert!(matches!(p.hear(addr(3), t0, 3), Heard::Full));
        // Heard again: its clock restarts, so 2 is now the oldest.
        match p.hear(addr(1), t0 + s, 3) {
            Heard::Known(x) => x.user = 7,
            _ => panic!("peer 1 should be known"),
        }
        assert_eq!(p.next_expiry(), Some(t0 + s / 2 + s));
        assert!(p.pop_expired(t0 + s).is_none());
        let later = t0 + s * 7 / 4;
        let (a, gone) = p.pop_expired(later).unwrap();
        assert_eq!((a, gone.id), (addr(2), 2));
        assert_eq!(p.addr_of(2), None);
        assert_eq!(p.addr_of(1), Some(addr(1)));
        assert!(p.pop_expired(later).is_none());
        // Room again: a new peer, with the new id given.
        assert!(matches!(p.hear(addr(2), later, 3), Heard::New(x) if x.id == 3));
        let (_, one) = p.remove(addr(1)).map(|x| (addr(1), x)).unwrap();
        assert_eq!(one.user, 7);
        assert!(p.pop_any().is_some() && p.pop_any().is_none());
        assert_eq!(p.next_expiry(), None);
    }
}
