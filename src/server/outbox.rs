//! A UDP server's outgoing datagrams: replies (and sends from other
//! threads) are queued while a batch of received datagrams is handled, then
//! go in groups, each with one `sendmmsg` (see `sys::send_batch`; the loop
//! says when, `udp.rs`), instead of one `sendto` each — the system call,
//! not the copy, is what a small datagram costs. Within that call,
//! consecutive replies to one sender of one size
//! go as one UDP GSO send (`sys::gso_run`): the kernel's per-datagram work
//! on the way out is done once for the run.
//!
//! Bounded: at most [`sys::BATCH`] datagrams and [`BYTES`] bytes (one batch).
//! A reply that does not fit sends the queue first. A datagram the socket
//! cannot take when it is sent (EAGAIN: a full buffer) is dropped, as a
//! `sendto` meeting a full buffer lost it, rather than kept for a
//! "writable" event: on an unconnected socket that event says nothing
//! about one destination (a local datagram socket whose peer reads nothing
//! stays full for that peer while the socket reads as writable), so one
//! stuck peer would hold up, or spin, the whole loop. The buffers are
//! allocated once and reused: a turn allocates nothing.

use super::dgram::Dgram;
use super::stats::Counters;
use crate::error::{Error, Result};
use crate::frame::{Ending, Frame};
use crate::sys::{self, Dest};
use nix::sys::socket::SockaddrStorage;
use std::io;
use std::net::SocketAddr;

/// Most bytes queued: beyond, the queue is sent before more is added (any
/// one datagram fits, up to UDP's 64 KiB).
const BYTES: usize = 256 << 10;

pub(crate) struct Outbox {
    /// The queued datagrams' bytes, one after the other.
    bytes: Vec<u8>,
    /// Each queued datagram: where its bytes are in `bytes`, and where it
    /// goes.
    msgs: Vec<(usize, usize, Dest)>,
    /// The addresses [`Dest::Other`] indexes (a local socket's senders).
    others: Vec<SockaddrStorage>,
    /// Where each goes, as logs show it.
    to: Vec<SocketAddr>,
    /// Datagrams the kernel refused since [`refused`](Outbox::refused)
    /// was last asked, and the last one's address and error.
    refused: (u64, Option<(SocketAddr, io::Error)>),
}

impl Outbox {
    pub(crate) fn new() -> Outbox {
        Outbox {
            bytes: Vec::with_capacity(64 << 10),
            msgs: Vec::with_capacity(sys::BATCH),
            others: Vec::with_capacity(sys::BATCH),
            to: Vec::with_capacity(sys::BATCH),
            refused: (0, None),
        }
    }

    /// Datagrams queued (the loop sends a batch's replies in groups).
    pub(crate) fn len(&self) -> usize {
        self.msgs.len()
    }

    fn full(&self, len: usize) -> bool {
        self.msgs.len() >= sys::BATCH || (!self.msgs.is_empty() && self.bytes.len() + len > BYTES)
    }

    /// Queues `msg` for `to`, framed as `datagram_encode` says; sends the
    /// queue first when it has no room. Errors: the datagram cannot be
    /// framed or is over UDP's limit, `to` is not a sender this socket
    /// knows (a local socket's forgotten number).
    pub(crate) fn queue(&mut self, sock: &Dgram, c: &Counters, frame: Frame, msg: &[u8], ending: Ending, to: SocketAddr) -> Result<()> {
        self.push(sock, c, to, msg.len() + ending.bytes().len(), |out| crate::udp::datagram_encode(frame, msg, ending, out))
    }

    /// Queues `bytes`, as they are, for `to` (a send from another thread,
    /// framed there); as [`queue`](Outbox::queue).
    pub(crate) fn queue_bytes(&mut self, sock: &Dgram, c: &Counters, bytes: &[u8], to: SocketAddr) -> Result<()> {
        self.push(sock, c, to, bytes.len(), |out| {
            out.extend_from_slice(bytes);
            Ok(())
        })
    }

    /// Makes room for about `len` bytes, then appends one datagram with
    /// `encode` (which appends nothing when it fails).
    fn push(
        &mut self,
        sock: &Dgram,
        c: &Counters,
        to: SocketAddr,
        len: usize,
        encode: impl FnOnce(&mut Vec<u8>) -> Result<()>,
    ) -> Result<()> {
        let fail = |e: io::Error| Error::io(format!("sendto {}", crate::net::show(&to)), &e);
        let other = sock.target(to).map_err(fail)?;
        if self.full(len) {
            self.flush(sock, c);
        }
        let at = self.bytes.len();
        encode(&mut self.bytes)?;
        let dest = match other {
            None => Dest::Ip(to),
            Some(a) => {
                self.others.push(a);
                Dest::Other(self.others.len() - 1)
            }
        };
        self.msgs.push((at, self.bytes.len() - at, dest));
        self.to.push(to);
        Ok(())
    }

    /// Sends what is queued, counting it in `c`. A datagram the kernel
    /// refuses (a full buffer among others) is dropped, as UDP may lose
    /// any, and kept for [`refused`](Outbox::refused); EINTR is retried.
    pub(crate) fn flush(&mut self, sock: &Dgram, c: &Counters) {
        let mut sent = 0;
        // Each pass sends at least one datagram or drops one, except on
        // EINTR (a signal), which cannot come forever.
        while sent < self.msgs.len() {
            match sock.send_batch(&self.bytes, &self.msgs[sent..], &self.others) {
                Ok(n) => {
                    // sendmmsg gives at least 1 or an error.
                    let n = n.max(1);
                    let bytes: usize = self.msgs[sent..][..n].iter().map(|m| m.1).sum();
                    c.messages_out(n as u64);
                    c.wrote(bytes);
                    sent += n;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.refused = (self.refused.0 + 1, Some((self.to[sent], e)));
                    sent += 1;
                }
            }
        }
        self.bytes.clear();
        self.msgs.clear();
        self.others.clear();
        self.to.clear();
    }

    /// How many datagrams the kernel refused since the last call, and the
    /// last one's address and error (for the loop to log).
    pub(crate) fn refused(&mut self) -> Option<(u64, SocketAddr, io::Error)> {
        let (n, last) = std::mem::take(&mut self.refused);
        last.map(|(to, e)| (n, to, e))
    }
}
