//! Which connections are open, readable from any thread without asking the
//! loop: the loop writes it (at `on_connect` and just before `on_close`),
//! others read counts, ids and peers. A mutex held only for a map access,
//! never across a callback, so a callback on the loop thread may read it too.

use super::stats::{Stats, CLOSE_REASONS};
use super::CloseReason;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Mutex, MutexGuard};

#[derive(Default)]
pub(crate) struct OpenConns {
    table: Mutex<Table>,
}

#[derive(Default)]
struct Table {
    /// Ordered by id, so a snapshot lists connections oldest first.
    open: BTreeMap<u64, SocketAddr>,
    /// Connections ever opened, and closed by reason (the server's stats,
    /// counted here under the lock taken anyway).
    total: u64,
    closed: [u64; CLOSE_REASONS],
}

impl OpenConns {
    fn lock(&self) -> MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn opened(&self, id: u64, peer: SocketAddr) {
        let mut t = self.lock();
        t.open.insert(id, peer);
        t.total += 1;
    }

    pub(crate) fn closed(&self, id: u64, reason: CloseReason) {
        let mut t = self.lock();
        t.open.remove(&id);
        t.closed[reason as usize - 1] += 1;
    }

    /// An outgoing connection that never connected (it was never open).
    pub(crate) fn failed(&self) {
        self.lock().closed[CloseReason::ConnectFailed as usize - 1] += 1;
    }

    pub(crate) fn count(&self) -> usize {
        self.lock().open.len()
    }

    pub(crate) fn ids(&self) -> Vec<u64> {
        self.lock().open.keys().copied().collect()
    }

    pub(crate) fn peer(&self, id: u64) -> Option<SocketAddr> {
        self.lock().open.get(&id).copied()
    }

    /// Adds the open, total and closed counts to `s`.
    pub(crate) fn add_to(&self, s: &mut Stats) {
        let t = self.lock();
        s.conns_open += t.open.len() as u64;
        s.conns_total += t.total;
        for (sum, n) in s.closed.iter_mut().zip(t.closed) {
            *sum += n;
        }
    }
}
