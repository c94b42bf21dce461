//! One TCP connection as the loop keeps it, and its life as one state.
//!
//! A connection's lifecycle used to be spread over flags (`closing`,
//! `draining`, `notified`, a read state) that had to agree with each other
//! and with a hand-kept count of lingering connections. Here it is one
//! [`Life`]: each state holds only what is meaningful in it (a close reason
//! and deadline exist only while closing), impossible mixtures (reading a
//! connection that is closing, notifying twice) cannot be written down, and
//! whether a connection lingers is read off its state.

use super::budget::Budget;
use super::control::IdleTimeout;
use super::pushed::Pushed;
use super::worker::Worker;
use super::CloseReason;
use crate::frame::{Decoder, Frame};
use mio::net::TcpStream;
use std::net::SocketAddr;
use std::time::Instant;

/// Largest read for a connection holding nothing while the memory budget is
/// spent: enough for the messages of a well-behaved client, too little for
/// many connections together to matter. Messages this small are always
/// taken in, reserved or not.
pub(super) const TRICKLE: usize = 4096;

/// Where a connection is in its life, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Life {
    /// An outgoing connection not connected yet (see `outgoing.rs`): neither
    /// read nor written; a close ends it at once.
    Connecting,
    /// Served; whether the loop reads it says the [`ReadState`].
    Open(ReadState),
    /// To close with `reason` once its replies are flushed: not read any
    /// more; past `deadline` (the peer does not take them) it closes anyway.
    Closing { reason: CloseReason, deadline: Instant },
    /// Replies sent and the write side shut (FIN); `on_close` has run. What
    /// the peer still sends is read and dropped until its own FIN, so the
    /// close does not reset away replies in flight; bounded by `deadline`.
    Draining { deadline: Instant },
}

impl Life {
    /// Closing or draining: such connections need the loop's sweeps (their
    /// deadline), whatever the server's timeouts.
    pub(super) fn lingers(self) -> bool {
        matches!(self, Life::Closing { .. } | Life::Draining { .. })
    }
}

/// Whether the loop reads from an open connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum ReadState {
    Reading,
    /// Not read until the cause clears; data that arrives meanwhile waits
    /// in the kernel (and slows the sender).
    Paused(Pause),
    /// The peer is done; a worker is finishing (thread mode).
    Ended,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Pause {
    /// Its own replies passed the high-water mark; until they drain.
    Replies,
    /// Its worker thread has `max_queue` waiting; until it catches up.
    Worker,
    /// The memory budget is spent and it holds some; until memory frees up.
    Budget,
    /// The connection it relays to holds too much; until that drains.
    Relay,
}

pub(super) struct Connection {
    pub(super) sock: TcpStream,
    pub(super) id: u64,
    pub(super) peer: SocketAddr,
    pub(super) decoder: Decoder,
    pub(super) out: Vec<u8>,
    pub(super) out_pos: usize,
    pub(super) user: usize,
    pub(super) last: Instant,
    /// Which of `out`'s unsent bytes others pushed (the rest are replies).
    pub(super) pushed: Pushed,
    /// Which were relayed to it (their senders pause instead, see `relay`).
    pub(super) relayed: Pushed,
    /// Bytes charged to the budget for this connection.
    pub(super) claim: usize,
    /// Part of `claim` reserved for the rest of a partial message of known
    /// length (`len32`, `fixed:N`), so that it can complete.
    pub(super) reserved: usize,
    /// Since when the decoder has held an incomplete message without a
    /// message completing.
    pub(super) partial_since: Option<Instant>,
    /// Changed only through `TcpServer::set_life` once it lingers (which
    /// keeps the server's count of lingering connections).
    pub(super) life: Life,
    /// The socket is registered for writable events too (replies wait for
    /// room): a mirror of the registration, so it is changed only when
    /// needed. Not part of the life: any state may have bytes queued.
    pub(super) writable: bool,
    /// Thread mode only; boxed so event-loop connections stay small.
    pub(super) worker: Option<Box<Worker>>,
    /// Its own idle timeout, or the server's.
    pub(super) idle: IdleTimeout,
}

impl Connection {
    pub(super) fn new(sock: TcpStream, id: u64, peer: SocketAddr, frame: Frame, life: Life, user: usize) -> Connection {
        Connection {
            sock,
            id,
            peer,
            decoder: Decoder::new(frame),
            out: Vec::new(),
            out_pos: 0,
            user,
            last: Instant::now(),
            pushed: Pushed::default(),
            relayed: Pushed::default(),
            claim: 0,
            reserved: 0,
            partial_since: None,
            life,
            writable: false,
            worker: None,
            idle: IdleTimeout::Server,
        }
    }

    /// True when the loop reads it now.
    pub(super) fn reading(&self) -> bool {
        self.life == Life::Open(ReadState::Reading)
    }

    /// True when paused for `why`.
    pub(super) fn paused(&self, why: Pause) -> bool {
        self.life == Life::Open(ReadState::Paused(why))
    }

    /// Sets how an open connection is read; a connection that is not open
    /// is not read anyway, so nothing changes then.
    pub(super) fn set_read(&mut self, r: ReadState) {
        if let Life::Open(read) = &mut self.life {
            *read = r;
        }
    }

    pub(super) fn queued(&self) -> usize {
        self.out.len() - self.out_pos
    }

    /// Queued replies of its own (not pushed by others).
    pub(super) fn own_queued(&self) -> usize {
        self.queued() - self.pushed.bytes() - self.relayed.bytes()
    }

    /// How much the next read may take: all of `full` while the budget has
    /// room; over it, what is reserved for a partial message, a trickle for
    /// a connection holding nothing, or None: pause it.
    pub(super) fn allowance(&self, budget: &Budget, full: usize) -> Option<usize> {
        if !budget.over() {
            Some(full)
        } else if self.reserved > 0 {
            Some(self.reserved.min(full))
        } else if self.claim == 0 {
            Some(TRICKLE.min(full))
        } else {
            None
        }
    }
}
