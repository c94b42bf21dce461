//! A UDP server's outgoing datagrams: replies (and sends from other
//! threads) are queued while a batch of received datagrams is handled, then
//! all go with one `sendmmsg` (see `sys::send_batch`) instead of one
//! `sendto` each — the system call, not the copy, is what a small datagram
//! costs.
//!
//! Bounded: at most [`sys::BATCH`] datagrams and [`BYTES`] bytes (one batch).
//! A reply that does not fit sends the queue first; if the socket cannot
//! take it either (its buffer is full), the reply fails with `WouldBlock`
//! as a `sendto` did, and what is queued waits for the socket to be
//! writable (the loop reads nothing meanwhile); a datagram that meets a
//! full buffer twice is dropped (see [`Head`]). The buffers are allocated
//! once and reused: a turn allocates nothing.

use super::dgram::Dgram;
use super::stats::Counters;
use crate::error::{Error, Result};
use crate::frame::{Ending, Frame};
use crate::sys;
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
    /// goes, as the kernel takes it.
    msgs: Vec<(usize, usize, SockaddrStorage)>,
    /// Where each goes, as logs show it.
    to: Vec<SocketAddr>,
    /// Datagrams the kernel refused since [`refused`](Outbox::refused)
    /// was last asked, and the last one's address and error.
    refused: (u64, Option<(SocketAddr, io::Error)>),
    head: Head,
}

/// Whether the first queued datagram already met a full buffer. Its
/// second try drops it (as a `sendto` meeting a full buffer lost it):
/// epoll's "writable" on an unconnected socket says nothing about one
/// destination (a local datagram socket whose peer reads nothing stays
/// full while the server's socket reads as writable), so waiting longer
/// could spin forever.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Head {
    Fresh,
    Waited,
}

/// What [`Outbox::flush`] left.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Flushed {
    /// Everything went (or was refused and logged).
    All,
    /// The socket's buffer is full: the rest waits for it to be writable.
    Blocked,
}

impl Outbox {
    pub(crate) fn new() -> Outbox {
        Outbox {
            bytes: Vec::with_capacity(64 << 10),
            msgs: Vec::with_capacity(sys::BATCH),
            to: Vec::with_capacity(sys::BATCH),
            refused: (0, None),
            head: Head::Fresh,
        }
    }

    fn full(&self, len: usize) -> bool {
        self.msgs.len() >= sys::BATCH || (!self.msgs.is_empty() && self.bytes.len() + len > BYTES)
    }

    /// Queues `msg` for `to`, framed as `datagram_encode` says; sends the
    /// queue first when it has no room. Errors: the datagram cannot be
    /// framed or is over UDP's limit, `to` is not a sender this socket
    /// knows (a local socket's forgotten number), or no room (`WouldBlock`).
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
        let dest = sock.target(to).map_err(fail)?;
        if self.full(len) && self.flush(sock, c) == Flushed::Blocked && self.full(len) {
            return Err(fail(io::ErrorKind::WouldBlock.into()));
        }
        let at = self.bytes.len();
        encode(&mut self.bytes)?;
        self.msgs.push((at, self.bytes.len() - at, dest));
        self.to.push(to);
        Ok(())
    }

    /// Sends what is queued, counting it in `c`. A datagram the kernel
    /// refuses (other than for a full buffer) is dropped, as UDP may lose
    /// any, and kept for [`refused`](Outbox::refused); EINTR is retried.
    pub(crate) fn flush(&mut self, sock: &Dgram, c: &Counters) -> Flushed {
        let mut sent = 0;
        // Each pass sends at least one datagram, drops one, or ends; EINTR
        // (a signal) cannot come forever.
        while sent < self.msgs.len() {
            match sock.send_batch(&self.bytes, &self.msgs[sent..]) {
                Ok(n) if n > 0 => {
                    let bytes: usize = self.msgs[sent..][..n].iter().map(|m| m.1).sum();
                    c.messages_out(n as u64);
                    c.wrote(bytes);
                    sent += n;
                    self.head = Head::Fresh;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Ok(_) => return self.keep_from(sent),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock && self.head == Head::Fresh => {
                    self.head = Head::Waited;
                    return self.keep_from(sent);
                }
                // Refused, or full again after a wait: dropped.
                Err(e) => {
                    self.refused = (self.refused.0 + 1, Some((self.to[sent], e)));
                    sent += 1;
                    self.head = Head::Fresh;
                }
            }
        }
        self.bytes.clear();
        self.msgs.clear();
        self.to.clear();
        Flushed::All
    }

    /// Drops the datagrams before `sent` (moving the rest to the front:
    /// no allocation).
    fn keep_from(&mut self, sent: usize) -> Flushed {
        if sent > 0 {
            let cut = self.msgs[sent].0;
            self.bytes.drain(..cut);
            self.msgs.drain(..sent);
            self.to.drain(..sent);
            for m in &mut self.msgs {
                m.0 -= cut;
            }
        }
        Flushed::Blocked
    }

    /// How many datagrams the kernel refused since the last call, and the
    /// last one's address and error (for the loop to log).
    pub(crate) fn refused(&mut self) -> Option<(u64, SocketAddr, io::Error)> {
        let (n, last) = std::mem::take(&mut self.refused);
        last.map(|(to, e)| (n, to, e))
    }
}
