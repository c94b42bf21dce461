//! The server-wide memory budget: bytes held for all connections together
//! in partial messages, reply queues and worker queues.
//!
//! Per-connection bounds alone do not bound a server: 30 clients that each
//! declare a 4 MiB `len32` message and send all but its last byte pin
//! 120 MiB, 10,000 of them 39 GiB. So every holder reports what it holds
//! here, and the loop consults the total before it reads: under the limit
//! everyone reads freely; over it, connections that hold something stop
//! being read until memory frees up, and a message whose declared length
//! cannot be reserved is refused (see `TcpServer::reserve`). The counter is
//! atomic because worker threads release their queued messages themselves.

use std::sync::atomic::{AtomicUsize, Ordering};

pub(crate) struct Budget {
    limit: usize,
    used: AtomicUsize,
}

impl Budget {
    pub(crate) fn new(limit: usize) -> Budget {
        Budget { limit: limit.max(1), used: AtomicUsize::new(0) }
    }

    pub(crate) fn limit(&self) -> usize {
        self.limit
    }

    pub(crate) fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    pub(crate) fn add(&self, n: usize) {
        self.used.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn sub(&self, n: usize) {
        self.used.fetch_sub(n, Ordering::Relaxed);
    }

    /// A holder's share changed from `old` to `new` bytes.
    pub(crate) fn update(&self, old: usize, new: usize) {
        if new > old {
            self.add(new - old);
        } else {
            self.sub(old - new);
        }
    }

    /// True while more than the limit is held.
    pub(crate) fn over(&self) -> bool {
        self.used() > self.limit
    }

    /// Bytes that may still be taken without passing the limit.
    pub(crate) fn room(&self) -> usize {
        self.limit.saturating_sub(self.used())
    }

    /// Low water: connections paused for the budget read again once the
    /// total falls to 7/8 of the limit (hysteresis, so they do not flap).
    pub(crate) fn relieved(&self) -> bool {
        self.used() <= self.limit - self.limit / 8
    }
}
