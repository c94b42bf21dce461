//! One TCP connection as the loop keeps it, and its life as one state.
//!
//! A connection's lifecycle used to be spread over flags (`closing`,
//! `draining`, `notified`, a read state) that had to agree with each other
//! and with a hand-kept count of lingering connections. Here it is one
//! [`Life`]: each state holds only what is meaningful in it (a close reason
//! and deadline exist only while closing), impossible mixtures (reading a
//! connection that is closing, notifying twice) cannot be written down, and
//! whether a connection lingers is read off its state.
//!
//! Size. An idle connection needs its socket, id, user slot, peer, state
//! and when it was last heard: that is all [`Connection`] holds inline (40
//! bytes), so 10,000 idle clients cost about what a hand-written epoll
//! server spends on them. Everything else (a partial message, unsent
//! bytes, budget claims, a closing reason and deadline, a worker thread, its own idle
//! timeout, an IPv6 peer) is [`Cold`] state, boxed, present only while the
//! connection holds some of it, and recycled through a [`ColdPool`] so that
//! a busy connection taking and giving back its box allocates nothing.

use super::budget::Budget;
use super::clock::Tick;
use super::control::IdleTimeout;
use super::pushed::Pushed;
use super::spare::Spare;
use super::tls::TlsConn;
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
    /// To close once its replies are flushed: not read any more; past its
    /// deadline (the peer does not take them) it closes anyway. Why, and
    /// that deadline, are its [`Cold::linger`] (cold state, so that this
    /// enum, and every connection, stays small).
    Closing,
    /// Replies sent and the write side shut (FIN); `on_close` has run. What
    /// the peer still sends is read and dropped until its own FIN, so the
    /// close does not reset away replies in flight; bounded by its deadline.
    Draining,
}

impl Life {
    /// Closing or draining: such connections need the loop's sweeps (their
    /// deadline), whatever the server's timeouts.
    pub(super) fn lingers(self) -> bool {
        matches!(self, Life::Closing | Life::Draining)
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

/// A connection as the loop keeps it: only what an idle one needs.
pub(super) struct Connection {
    pub(super) sock: TcpStream,
    /// When it last had traffic, in loop ticks ([`super::clock`]).
    pub(super) last: Tick,
    pub(super) id: u64,
    pub(super) user: usize,
    /// An IPv4 peer, packed ([`pack`]); all zeros: the peer is
    /// [`Cold::peer`] (IPv6), or `0.0.0.0:0` when there is none.
    peer: [u8; 6],
    /// Changed only through `TcpServer::set_life` once it lingers (which
    /// keeps the server's count of lingering connections).
    pub(super) life: Life,
    /// The socket is registered for writable events too (replies wait for
    /// room): a mirror of the registration, so it is changed only when
    /// needed. Not part of the life: any state may have bytes queued.
    pub(super) writable: bool,
    /// Everything else, while it holds any of it.
    pub(super) cold: Option<Box<Cold>>,
}

/// What a connection holds only sometimes.
pub(super) struct Cold {
    /// A partial message (or messages a pause left unhandled).
    pub(super) decoder: Decoder,
    pub(super) out: Vec<u8>,
    pub(super) out_pos: usize,
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
    /// While closing or draining: why it closes, and when it closes anyway.
    pub(super) linger: Option<(CloseReason, Instant)>,
    /// Thread mode only.
    pub(super) worker: Option<Worker>,
    /// Its own idle timeout, or the server's.
    pub(super) idle: IdleTimeout,
    /// The peer when it does not pack into 8 bytes (IPv6).
    pub(super) peer: Option<SocketAddr>,
    /// A TLS connection's state, for its life (see `tls.rs`).
    pub(super) tls: Option<Box<TlsConn>>,
}

impl Cold {
    fn new(frame: Frame) -> Cold {
        Cold {
            decoder: Decoder::new(frame),
            out: Vec::new(),
            out_pos: 0,
            pushed: Pushed::default(),
            relayed: Pushed::default(),
            claim: 0,
            reserved: 0,
            partial_since: None,
            linger: None,
            worker: None,
            idle: IdleTimeout::Server,
            peer: None,
            tls: None,
        }
    }

    /// Holds nothing: the connection can do without it.
    fn is_empty(&self) -> bool {
        self.decoder.is_idle()
            && !self.decoder.has_buffer()
            && self.out.capacity() == 0
            && self.pushed.bytes() == 0
            && self.relayed.bytes() == 0
            && self.claim == 0
            && self.reserved == 0
            && self.partial_since.is_none()
            && self.linger.is_none()
            && self.worker.is_none()
            && self.idle == IdleTimeout::Server
            && self.peer.is_none()
            && self.tls.is_none()
    }

    /// Bytes waiting for the socket: replies, and TLS records sealed.
    pub(super) fn queued(&self) -> usize {
        self.out.len() - self.out_pos + self.tls.as_ref().map_or(0, |t| t.pending())
    }
}

/// Empty [`Cold`] boxes kept by the loop, so that a connection that needs
/// one for a moment (a partial message, replies the socket did not take)
/// does not allocate it. Bounded: past `KEEP_COLD` they are freed.
pub(super) struct ColdPool {
    frame: Frame,
    // Boxes, not values: a connection takes one as is, without allocating.
    #[allow(clippy::vec_box)]
    kept: Vec<Box<Cold>>,
}

/// Most empty boxes kept (about as many as connections busy at once).
const KEEP_COLD: usize = 1024;
/// Boxes made with the pool, so that a few connections busy at once (the
/// usual peak of a loop) never allocate, not even the first time they
/// overlap (a few hundred bytes per loop).
const PREMADE_COLD: usize = 8;

impl ColdPool {
    pub(super) fn new(frame: Frame) -> ColdPool {
        let mut kept = Vec::with_capacity(64);
        kept.extend((0..PREMADE_COLD).map(|_| Box::new(Cold::new(frame))));
        ColdPool { frame, kept }
    }

    pub(super) fn take(&mut self) -> Box<Cold> {
        self.kept.pop().unwrap_or_else(|| Box::new(Cold::new(self.frame)))
    }

    /// Takes back `c`'s cold state if it holds nothing; its buffers go to `spare`.
    pub(super) fn settle(&mut self, c: &mut Connection, spare: &mut Spare) {
        if !c.cold.as_deref_mut().is_some_and(|x| {
            if x.out.is_empty() {
                x.out_pos = 0;
                spare.give(std::mem::take(&mut x.out));
            }
            if let Some(b) = x.decoder.take_buffer() {
                spare.give(b);
            }
            x.is_empty()
        }) {
            return;
        }
        if let Some(x) = c.cold.take() {
            if self.kept.len() < KEEP_COLD {
                self.kept.push(x);
            }
        }
    }
}

impl Connection {
    pub(super) fn new(sock: TcpStream, id: u64, peer: SocketAddr, life: Life, user: usize, last: Tick, pool: &mut ColdPool) -> Connection {
        let mut c = Connection { sock, last, id, user, peer: [0; 6], life, writable: false, cold: None };
        c.set_peer(peer, pool);
        c
    }

    /// Its cold state, taken from `pool` if it has none.
    pub(super) fn cold(&mut self, pool: &mut ColdPool) -> &mut Cold {
        self.cold.get_or_insert_with(|| pool.take())
    }

    pub(super) fn peer(&self) -> SocketAddr {
        match self.cold.as_deref().and_then(|x| x.peer) {
            Some(a) => a,
            None => unpack(self.peer),
        }
    }

    pub(super) fn set_peer(&mut self, peer: SocketAddr, pool: &mut ColdPool) {
        match pack(peer) {
            Some(p) => {
                self.peer = p;
                if let Some(x) = self.cold.as_deref_mut() {
                    x.peer = None;
                }
            }
            None => {
                self.peer = [0; 6];
                self.cold(pool).peer = Some(peer);
            }
        }
    }

    pub(super) fn worker(&self) -> Option<&Worker> {
        self.cold.as_deref().and_then(|x| x.worker.as_ref())
    }

    pub(super) fn claim(&self) -> usize {
        self.cold.as_deref().map_or(0, |x| x.claim)
    }

    /// Why a lingering connection closes, and when it closes anyway.
    pub(super) fn linger(&self) -> Option<(CloseReason, Instant)> {
        self.cold.as_deref().and_then(|x| x.linger)
    }

    pub(super) fn idle(&self) -> IdleTimeout {
        self.cold.as_deref().map_or(IdleTimeout::Server, |x| x.idle)
    }

    pub(super) fn partial_since(&self) -> Option<Instant> {
        self.cold.as_deref().and_then(|x| x.partial_since)
    }

    pub(super) fn pushed(&self) -> usize {
        self.cold.as_deref().map_or(0, |x| x.pushed.bytes())
    }

    /// True when the decoder holds bytes (a partial or unhandled message).
    pub(super) fn holds_input(&self) -> bool {
        self.cold.as_deref().is_some_and(|x| x.decoder.has_pending())
    }

    /// True when the loop reads it now.
    pub(super) fn reading(&self) -> bool {
        self.life == Life::Open(ReadState::Reading)
    }

    /// True when paused for `why`.
    /// Holds nothing, has nothing queued, reads as usual and waits for no
    /// room to write: the state of a connection between its messages.
    pub(super) fn at_rest(&self) -> bool {
        self.cold.is_none() && !self.writable && self.reading()
    }

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
        self.cold.as_deref().map_or(0, Cold::queued)
    }

    /// Queued replies of its own (not pushed by others).
    pub(super) fn own_queued(&self) -> usize {
        self.cold.as_deref().map_or(0, |x| x.queued() - x.pushed.bytes() - x.relayed.bytes())
    }

    /// How much the next read may take: all of `full` while the budget has
    /// room; over it, what is reserved for a partial message, a trickle for
    /// a connection holding nothing, or None: pause it.
    pub(super) fn allowance(&self, budget: &Budget, full: usize) -> Option<usize> {
        let (reserved, claim) = self.cold.as_deref().map_or((0, 0), |x| (x.reserved, x.claim));
        if !budget.over() {
            Some(full)
        } else if reserved > 0 {
            Some(reserved.min(full))
        } else if claim == 0 {
            Some(TRICKLE.min(full))
        } else {
            None
        }
    }
}

/// An IPv4 address and port in 6 bytes; None for IPv6.
fn pack(a: SocketAddr) -> Option<[u8; 6]> {
    match a {
        SocketAddr::V4(v4) => {
            let (ip, port) = (v4.ip().octets(), v4.port().to_be_bytes());
            Some([ip[0], ip[1], ip[2], ip[3], port[0], port[1]])
        }
        SocketAddr::V6(_) => None,
    }
}

fn unpack(p: [u8; 6]) -> SocketAddr {
    SocketAddr::from(([p[0], p[1], p[2], p[3]], u16::from_be_bytes([p[4], p[5]])))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_idle_connection_is_small() {
        // 40 bytes with mio's 4-byte socket (release builds; debug builds
        // add a selector id to each socket).
        let socket = std::mem::size_of::<TcpStream>();
        assert!(std::mem::size_of::<Connection>() <= (36 + socket).next_multiple_of(8), "{} bytes", std::mem::size_of::<Connection>());
    }

    #[test]
    fn ipv4_peers_pack_and_unpack() {
        for a in ["127.0.0.1:80", "0.0.0.0:0", "255.255.255.255:65535"] {
            let a: SocketAddr = a.parse().unwrap();
            assert_eq!(unpack(pack(a).unwrap()), a);
        }
        assert_eq!(pack("[::1]:80".parse().unwrap()), None);
    }
}
