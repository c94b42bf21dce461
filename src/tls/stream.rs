//! One TLS connection over a socket sockflow owns: the handshake (bounded
//! by a timeout), encryption into bytes the caller sends its own way, and
//! decryption of bytes the caller reads its own way.
//!
//! The socket calls stay with the callers (`tcp::Stream`, the stdin
//! client, the event loop) so each keeps its own rules (partial writes
//! kept, EINTR, MSG_NOSIGNAL, non-blocking or not); this module only turns
//! plaintext into records and back. The state is behind a mutex because a
//! stream's sender and receiver run on different threads; neither holds it
//! during a socket call.

use super::{handshake_error, Setup};
use crate::error::{Code, Error, Result};
use crate::net;
use nix::poll::PollFlags;
use rustls::Connection;
use std::io::{Read, Write};
use std::os::fd::BorrowedFd;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Raw bytes read per socket call: one largest record and its header.
const RECORD_CHUNK: usize = 16 * 1024 + 512;

/// An established TLS session.
#[derive(Debug)]
pub struct Session {
    inner: Mutex<Inner>,
}

#[derive(Debug)]
struct Inner {
    conn: Connection,
    /// Bytes read from the socket that rustls could not take yet (its
    /// plaintext buffer was full): fed before the next socket read.
    incoming: Vec<u8>,
}

/// Appends whatever rustls has to send (records, alerts) to `out`.
pub fn drain(conn: &mut Connection, out: &mut Vec<u8>) {
    while conn.wants_write() {
        if conn.write_tls(out).is_err() {
            break;
        }
    }
}

/// Gives rustls as much of `incoming` as it takes and processes it. An
/// error is the peer's fault (bad record, alert, certificate): its alert,
/// if any, is appended to `out` for the caller to send before closing.
pub fn absorb(conn: &mut Connection, incoming: &mut Vec<u8>, out: &mut Vec<u8>) -> std::result::Result<(), rustls::Error> {
    let mut taken = 0;
    while taken < incoming.len() {
        match conn.read_tls(&mut &incoming[taken..]) {
            Ok(0) | Err(_) => break, // plaintext buffer full: read it first
            Ok(n) => taken += n,
        }
        if let Err(e) = conn.process_new_packets() {
            drain(conn, out);
            incoming.clear();
            return Err(e);
        }
    }
    incoming.drain(..taken);
    Ok(())
}

/// What decrypted data a connection holds for the reader.
pub enum Plain {
    /// `n` bytes were copied.
    Got(usize),
    /// The peer sent close_notify: a clean end of stream.
    Closed,
    /// Nothing yet: read the socket.
    Empty,
}

/// Copies decrypted bytes into `buf`.
pub fn take_plain(conn: &mut Connection, buf: &mut [u8]) -> Plain {
    match conn.reader().read(buf) {
        Ok(0) if !buf.is_empty() => Plain::Closed,
        Ok(n) => Plain::Got(n),
        Err(_) => Plain::Empty,
    }
}

impl Session {
    /// Runs the handshake on a blocking socket: done, or an error within
    /// `timeout` (a peer that stalls is `TimedOut`; a refused certificate,
    /// a plaintext peer or a closed connection is `Tls`).
    pub fn handshake(sock: BorrowedFd<'_>, setup: &Setup, peer: &str, timeout: Duration) -> Result<Session> {
        let mut conn = setup.connection()?;
        let deadline = Instant::now() + timeout;
        let mut incoming = Vec::new();
        let mut buf = vec![0u8; RECORD_CHUNK];
        loop {
            let mut out = Vec::new();
            drain(&mut conn, &mut out);
            if !out.is_empty() {
                net::send_all(sock, &out).map_err(|e| e.context(format!("tls handshake with {peer}")))?;
            }
            if !conn.is_handshaking() {
                return Ok(Session { inner: Mutex::new(Inner { conn, incoming }) });
            }
            if !net::wait(sock, PollFlags::POLLIN, net::remaining(Some(deadline)))? {
                return Err(Error::new(Code::TimedOut, format!("tls handshake with {peer}: timed out after {} ms", timeout.as_millis())));
            }
            let n = net::recv(sock, &mut buf).map_err(|e| e.context(format!("tls handshake with {peer}")))?;
            if n == 0 {
                return Err(Error::new(Code::Tls, format!("tls handshake with {peer}: the peer closed the connection")));
            }
            incoming.extend_from_slice(&buf[..n]);
            let mut alert = Vec::new();
            if let Err(e) = absorb(&mut conn, &mut incoming, &mut alert) {
                let _ = net::send_prefix(sock, &alert);
                return Err(handshake_error(peer, &e));
            }
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Encrypts all of `data`, appending the records to `out`.
    pub fn seal(&self, data: &[u8], out: &mut Vec<u8>) {
        let mut inner = self.lock();
        let mut rest = data;
        // rustls takes at most its buffer limit per write: drain between.
        while !rest.is_empty() {
            match inner.conn.writer().write(rest) {
                Ok(0) | Err(_) => break,
                Ok(n) => rest = &rest[n..],
            }
            drain(&mut inner.conn, out);
        }
        drain(&mut inner.conn, out);
    }

    /// Appends the close_notify alert (a clean end of stream) to `out`.
    pub fn close_notify(&self, out: &mut Vec<u8>) {
        let mut inner = self.lock();
        inner.conn.send_close_notify();
        drain(&mut inner.conn, out);
    }

    /// Reads decrypted bytes into `buf`: what is already decrypted, or
    /// else what `raw` (one socket read, its own rules for blocking and
    /// errors) brings. `Ok(0)` is the end of stream: close_notify, or the
    /// socket's end (a peer that just closes is taken as ending too). A
    /// peer that broke the protocol is a `Tls` error, with the alert to
    /// send it appended to `alert`.
    pub fn read(&self, buf: &mut [u8], peer: &str, mut raw: impl FnMut(&mut [u8]) -> Result<usize>, alert: &mut Vec<u8>) -> Result<usize> {
        let mut chunk = [0u8; RECORD_CHUNK];
        loop {
            {
                let mut inner = self.lock();
                let Inner { conn, incoming } = &mut *inner;
                if !incoming.is_empty() {
                    absorb(conn, incoming, alert).map_err(|e| Error::new(Code::Tls, format!("tls with {peer}: {e}")))?;
                }
                match take_plain(conn, buf) {
                    Plain::Got(n) => return Ok(n),
                    Plain::Closed => return Ok(0),
                    Plain::Empty => {}
                }
            }
            let n = raw(&mut chunk)?;
            if n == 0 {
                return Ok(0);
            }
            self.lock().incoming.extend_from_slice(&chunk[..n]);
        }
    }
}
