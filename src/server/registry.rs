//! Which connections are open, readable from any thread without asking the
//! loop: the loop writes it (at `on_connect` and just before `on_close`),
//! others read counts, ids and peers. A mutex held only for a map access,
//! never across a callback, so a callback on the loop thread may read it too.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Mutex, MutexGuard};

#[derive(Default)]
pub(crate) struct OpenConns {
    /// Ordered by id, so a snapshot lists connections oldest first.
    open: Mutex<BTreeMap<u64, SocketAddr>>,
}

impl OpenConns {
    fn lock(&self) -> MutexGuard<'_, BTreeMap<u64, SocketAddr>> {
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn opened(&self, id: u64, peer: SocketAddr) {
        self.lock().insert(id, peer);
    }

    pub(crate) fn closed(&self, id: u64) {
        self.lock().remove(&id);
    }

    pub(crate) fn count(&self) -> usize {
        self.lock().len()
    }

    pub(crate) fn ids(&self) -> Vec<u64> {
        self.lock().keys().copied().collect()
    }

    pub(crate) fn peer(&self, id: u64) -> Option<SocketAddr> {
        self.lock().get(&id).copied()
    }
}
