//! A server's counters, readable from any thread while it runs
//! ([`ServerHandle::stats`](super::ServerHandle::stats),
//! `sockflow_server_stats`).
//!
//! Each loop (each worker) counts what it does in its own [`Counters`]:
//! relaxed atomic adds on a cache line no other loop writes, so the message
//! path shares nothing between workers. A read sums every loop's counters.
//! Connections opened and closed are counted in the open-connections table
//! instead, under the lock it takes anyway.

use super::CloseReason;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// How many close reasons there are: `CloseReason` values are 1 to this.
pub const CLOSE_REASONS: usize = CloseReason::ALL.len();

/// A snapshot of a server's counters since it was made.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Connections open now (TCP, and UDP peers in peers mode).
    pub conns_open: u64,
    /// Connections ever opened (accepted, connected out, UDP peers heard).
    pub conns_total: u64,
    /// Connections refused at once: past `max_conns` or `max_per_ip`.
    pub conns_refused: u64,
    /// Messages handed to the handler (a UDP datagram is one), and their bytes.
    pub msgs_in: u64,
    pub bytes_in: u64,
    /// Messages the handlers and `send_to`/`broadcast` sent (one per
    /// receiver), and the bytes written to sockets (framing included).
    pub msgs_out: u64,
    pub bytes_out: u64,
    /// Connections closed, by reason: see [`Stats::closed_by`].
    pub closed: [u64; CLOSE_REASONS],
    /// Datagrams dropped: too long for the frame, or from a new sender past
    /// `max_conns` peers.
    pub dropped: u64,
    /// Bytes held now in partial messages and queues (what the memory
    /// budget counts).
    pub queued_bytes: u64,
}

impl Stats {
    /// Connections closed for `reason`.
    pub fn closed_by(&self, reason: CloseReason) -> u64 {
        self.closed[reason as usize - 1]
    }
}

/// One line, as `--stats` logs it: `connections 2 open, 10 in all, 0
/// refused; in 100 messages, 2000 bytes; out 100 messages, 2000 bytes;
/// closed: peer 7, quit 1; dropped 0; queued 0 bytes`.
impl std::fmt::Display for Stats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "connections {} open, {} in all, {} refused; in {} messages, {} bytes; out {} messages, {} bytes; closed:",
            self.conns_open, self.conns_total, self.conns_refused, self.msgs_in, self.bytes_in, self.msgs_out, self.bytes_out
        )?;
        let mut any = false;
        for (i, &n) in self.closed.iter().enumerate() {
            if n > 0 {
                let reason = CloseReason::from_index(i + 1).map_or("?", CloseReason::describe);
                write!(f, "{} {reason} {n}", if any { "," } else { "" })?;
                any = true;
            }
        }
        if !any {
            f.write_str(" none")?;
        }
        write!(f, "; dropped {}; queued {} bytes", self.dropped, self.queued_bytes)
    }
}

/// One loop's counters, on cache lines of their own (no false sharing
/// between workers counting side by side).
#[derive(Default)]
#[repr(align(128))]
pub(crate) struct Counters {
    msgs_in: AtomicU64,
    bytes_in: AtomicU64,
    msgs_out: AtomicU64,
    bytes_out: AtomicU64,
    refused: AtomicU64,
    dropped: AtomicU64,
}

impl Counters {
    /// `n` messages of `bytes` in all (a loop counts a read's messages and
    /// adds them at once: an atomic add per message would cost as much as
    /// handling it).
    pub(crate) fn messages_in(&self, n: u64, bytes: u64) {
        if n > 0 {
            self.msgs_in.fetch_add(n, Relaxed);
            self.bytes_in.fetch_add(bytes, Relaxed);
        }
    }

    pub(crate) fn message_out(&self) {
        self.messages_out(1);
    }

    pub(crate) fn messages_out(&self, n: u64) {
        if n > 0 {
            self.msgs_out.fetch_add(n, Relaxed);
        }
    }

    pub(crate) fn wrote(&self, n: usize) {
        self.bytes_out.fetch_add(n as u64, Relaxed);
    }

    pub(crate) fn refused(&self) {
        self.refused.fetch_add(1, Relaxed);
    }

    pub(crate) fn dropped(&self) {
        self.dropped.fetch_add(1, Relaxed);
    }

    /// Adds this loop's counts to `s`.
    pub(crate) fn add_to(&self, s: &mut Stats) {
        s.msgs_in += self.msgs_in.load(Relaxed);
        s.bytes_in += self.bytes_in.load(Relaxed);
        s.msgs_out += self.msgs_out.load(Relaxed);
        s.bytes_out += self.bytes_out.load(Relaxed);
        s.conns_refused += self.refused.load(Relaxed);
        s.dropped += self.dropped.load(Relaxed);
    }
}
