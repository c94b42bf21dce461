//! A TLS connection's state on the event loop, and the loop's two socket
//! calls (read, write) made TLS-aware for it.
//!
//! The loop keeps its own rules unchanged: its queue holds plaintext, its
//! counts and backpressure are in plaintext bytes, and a read hands its
//! decoder plaintext. This module stands between the queue and the socket:
//! plaintext is sealed only once the records sealed before it have gone
//! out (so at most one batch of records waits here, and a peer that does
//! not read still pauses its sender through the queue), and records read
//! are opened until the caller's buffer is full or the socket is empty (the
//! loop's events are edge-triggered: a socket left readable would not wake
//! it again). The state lives in the connection's cold part, so plaintext
//! connections pay nothing.

use crate::tls::stream::{absorb, drain, take_plain, Plain};
use mio::net::TcpStream;
use rustls::Connection;
use std::io::{self, Read};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::Instant;

/// Most plaintext sealed at once (then the records must go out first).
const SEAL_BATCH: usize = 64 * 1024;
/// Raw bytes read per socket call: one largest record and its header.
const RECORD_CHUNK: usize = 16 * 1024 + 512;

/// One TLS connection's state.
pub(super) struct TlsConn {
    conn: Connection,
    /// Sealed records not yet taken by the socket, from `pos`.
    sealed: Vec<u8>,
    pos: usize,
    /// Raw bytes read that rustls could not take yet.
    incoming: Vec<u8>,
    /// The socket reached its end (or the peer sent close_notify).
    ended: bool,
    closing: bool,
    /// The handshake ended during a read: replies rustls refused while it
    /// went on (see [`write`]) can go now, so the loop flushes once.
    opened: bool,
    /// When the connection was accepted: a handshake still going on long
    /// after is dropped by the loop's sweep (see [`handshaking_since`]).
    since: Instant,
}

impl TlsConn {
    /// A server-side connection with `cfg`.
    pub(super) fn server(cfg: &Arc<rustls::ServerConfig>) -> Result<TlsConn, rustls::Error> {
        Ok(TlsConn::new(rustls::ServerConnection::new(cfg.clone())?.into()))
    }

    /// A connection with `setup` (an outgoing one's client side: its
    /// handshake is driven by [`TlsConn::handshake`]).
    pub(super) fn with(setup: &crate::tls::Setup) -> crate::error::Result<TlsConn> {
        Ok(TlsConn::new(setup.connection()?))
    }

    fn new(conn: Connection) -> TlsConn {
        TlsConn {
            conn,
            sealed: Vec::new(),
            pos: 0,
            incoming: Vec::new(),
            ended: false,
            closing: false,
            opened: false,
            since: Instant::now(),
        }
    }

    /// Records waiting for the socket.
    pub(super) fn pending(&self) -> usize {
        self.sealed.len() - self.pos
    }

    /// The peer broke TLS: [`read`] names it in the message.
    fn failure(&self, reason: rustls::Error) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidData, Failure { handshake: self.conn.is_handshaking(), reason })
    }

    /// Sends sealed records; `WouldBlock` while some are left.
    fn push(&mut self, sock: &TcpStream) -> io::Result<()> {
        while self.pos < self.sealed.len() {
            match crate::net::send_some(sock.as_raw_fd(), &self.sealed[self.pos..]) {
                Ok(n) => self.pos += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        self.sealed.clear();
        self.pos = 0;
        Ok(())
    }

    /// Whatever rustls has to send (handshake, alerts), sent if the socket
    /// takes it now; the rest waits for [`TlsConn::write`].
    fn send_own(&mut self, sock: &TcpStream) -> io::Result<()> {
        drain(&mut self.conn, &mut self.sealed);
        match self.push(sock) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(()),
            r => r,
        }
    }

    /// The loop's write: takes up to a batch of `data` (sealed) once the
    /// records before it are out; `Ok(0)` with no data once nothing waits.
    pub(super) fn write(&mut self, sock: &TcpStream, data: &[u8]) -> io::Result<usize> {
        self.push(sock)?;
        let take = data.len().min(SEAL_BATCH);
        let mut n = 0;
        while n < take {
            match io::Write::write(&mut self.conn.writer(), &data[n..take]) {
                Ok(0) | Err(_) => break,
                Ok(m) => n += m,
            }
            drain(&mut self.conn, &mut self.sealed);
        }
        drain(&mut self.conn, &mut self.sealed);
        match self.push(sock) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(n),
            Err(e) => Err(e),
            Ok(()) => Ok(n),
        }
    }

    /// Queues close_notify (once) and sends what it can: `WouldBlock`
    /// while records are left.
    pub(super) fn close_notify(&mut self, sock: &TcpStream) -> io::Result<()> {
        if !self.closing {
            self.closing = true;
            self.conn.send_close_notify();
            drain(&mut self.conn, &mut self.sealed);
        }
        self.push(sock)
    }

    /// One step of a client's handshake, before the loop serves the
    /// connection: sends what rustls has to send, takes what the socket
    /// holds. `Ok(true)` once the handshake is done (what came with its
    /// end stays for [`TlsConn::read`]), `Ok(false)` while it waits for the
    /// socket, an error as [`read`] gives them when it failed.
    pub(super) fn handshake(&mut self, mut sock: &TcpStream) -> io::Result<bool> {
        let mut chunk = [0u8; RECORD_CHUNK];
        loop {
            let mut alert = Vec::new();
            if let Err(e) = absorb(&mut self.conn, &mut self.incoming, &mut alert) {
                self.sealed.extend_from_slice(&alert);
                let _ = self.push(sock);
                return Err(self.failure(e));
            }
            self.send_own(sock)?;
            if !self.conn.is_handshaking() {
                return Ok(true);
            }
            match sock.read(&mut chunk) {
                Ok(0) => return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the peer closed the connection")),
                Ok(n) => self.incoming.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) => return Err(e),
            }
        }
    }

    /// The loop's read: plaintext into `buf`, `Ok(0)` at the end of the
    /// stream, `WouldBlock` when the socket is empty and nothing is
    /// decrypted, `InvalidData` (with the reason) when the peer broke TLS.
    pub(super) fn read(&mut self, mut sock: &TcpStream, buf: &mut [u8]) -> io::Result<usize> {
        let mut got = 0;
        let mut chunk = [0u8; RECORD_CHUNK];
        loop {
            let held = self.incoming.len();
            let handshaking = self.conn.is_handshaking();
            let mut alert = Vec::new();
            if let Err(e) = absorb(&mut self.conn, &mut self.incoming, &mut alert) {
                self.sealed.extend_from_slice(&alert);
                let _ = self.push(sock);
                return Err(self.failure(e));
            }
            self.opened |= handshaking && !self.conn.is_handshaking();
            self.send_own(sock)?;
            while got < buf.len() {
                match take_plain(&mut self.conn, &mut buf[got..]) {
                    Plain::Got(n) => got += n,
                    Plain::Closed => {
                        self.ended = true;
                        break;
                    }
                    Plain::Empty => break,
                }
            }
            if got == buf.len() || (self.ended && self.incoming.is_empty()) {
                return Ok(got);
            }
            if !self.incoming.is_empty() && self.incoming.len() < held {
                continue; // rustls took more once its plaintext was read
            }
            match sock.read(&mut chunk) {
                Ok(0) => {
                    self.ended = true;
                    return Ok(got);
                }
                Ok(n) => self.incoming.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock && got > 0 => return Ok(got),
                Err(e) => return Err(e),
            }
        }
    }
}

/// Why a TLS connection failed, before the peer is named.
#[derive(Debug)]
struct Failure {
    handshake: bool,
    reason: rustls::Error,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", if self.handshake { "tls handshake" } else { "tls" }, self.reason)
    }
}

impl std::error::Error for Failure {}

/// Reads connection `c`'s socket the loop's way, through TLS if it has it.
/// A TLS failure is `InvalidData`, its message the reason with the peer:
/// `tls handshake with 127.0.0.1:5000: invalid peer certificate: UnknownIssuer`.
#[inline]
pub(super) fn read(c: &mut super::conn::Connection, buf: &mut [u8]) -> io::Result<usize> {
    match c.cold.as_deref().is_some_and(|x| x.tls.is_some()) {
        true => read_tls(c, buf),
        // Plaintext: the socket's read, with nothing of TLS's around it.
        false => (&c.sock).read(buf),
    }
}

#[inline(never)]
fn read_tls(c: &mut super::conn::Connection, buf: &mut [u8]) -> io::Result<usize> {
    let r = match c.cold.as_deref_mut().and_then(|x| x.tls.as_deref_mut()) {
        Some(t) => t.read(&c.sock, buf),
        None => return (&c.sock).read(buf),
    };
    r.map_err(|e| with_peer(e, &crate::net::show(&c.peer())))
}

/// Steps outgoing connection `c`'s client handshake (see
/// [`TlsConn::handshake`]); a failure is the error its `on_close` gives:
/// `Tls` with rustls's reason, or the socket's (`tls handshake with
/// 127.0.0.1:9000: Connection reset by peer`). `at`: where it connected.
pub(super) fn handshake(c: &mut super::conn::Connection, at: &str) -> crate::error::Result<bool> {
    let Some(t) = c.cold.as_deref_mut().and_then(|x| x.tls.as_deref_mut()) else { return Ok(true) };
    t.handshake(&c.sock).map_err(|e| match e.kind() {
        io::ErrorKind::InvalidData => crate::error::Error::new(crate::error::Code::Tls, with_peer(e, at).to_string()),
        _ => crate::error::Error::io(format!("tls handshake with {at}"), &e),
    })
}

/// A TLS failure's message with the peer named (other errors unchanged).
fn with_peer(e: io::Error, peer: &str) -> io::Error {
    match e.get_ref().and_then(|x| x.downcast_ref::<Failure>()) {
        Some(f) => {
            let what = if f.handshake { "tls handshake" } else { "tls" };
            io::Error::new(io::ErrorKind::InvalidData, format!("{what} with {peer}: {}", f.reason))
        }
        None => e,
    }
}

/// Writes to `sock` the loop's way (MSG_NOSIGNAL), through `tls` if set:
/// how much of `data` was taken; `Ok(0)` for no data once nothing waits.
pub(super) fn write(sock: &TcpStream, tls: Option<&mut TlsConn>, data: &[u8]) -> io::Result<usize> {
    match tls {
        Some(t) => match t.write(sock, data) {
            // Plaintext refused while handshaking (rustls's buffer is full):
            // wait like a full socket.
            Ok(0) if !data.is_empty() => Err(io::ErrorKind::WouldBlock.into()),
            r => r,
        },
        None if data.is_empty() => Ok(0),
        None => crate::net::send_some(sock.as_raw_fd(), data),
    }
}

/// For a graceful close once every reply is out: queues TLS's close_notify
/// (plaintext connections have none) and sends it; false while its records
/// wait for the socket.
pub(super) fn close_notify(c: &mut super::conn::Connection) -> io::Result<bool> {
    match c.cold.as_deref_mut().and_then(|x| x.tls.as_deref_mut()) {
        Some(t) => match t.close_notify(&c.sock) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(false),
            Err(e) => Err(e),
        },
        None => Ok(true),
    }
}

/// When connection `c`'s TLS handshake began, if it is still going on.
pub(super) fn handshaking_since(c: &super::conn::Connection) -> Option<Instant> {
    c.cold.as_deref().and_then(|x| x.tls.as_deref()).filter(|t| t.conn.is_handshaking()).map(|t| t.since)
}

/// True once after connection `c`'s handshake ended (see `TlsConn::opened`).
pub(super) fn just_opened(c: &mut super::conn::Connection) -> bool {
    c.cold.as_deref_mut().and_then(|x| x.tls.as_deref_mut()).is_some_and(|t| std::mem::take(&mut t.opened))
}
