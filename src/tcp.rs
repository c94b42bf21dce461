//! Blocking TCP primitives: a listener and a connected stream with framed
//! message send/receive and optional timeouts.

use crate::args::Args;
use crate::error::{Code, Error, Result};
use crate::frame::{Decoder, Flow, Frame};
use crate::net;
use crate::tls::stream::Session;
use crate::tls::{Setup, HANDSHAKE_TIMEOUT};
use crate::unix;
use nix::errno::Errno;
use nix::poll::PollFlags;
use nix::sys::socket::MsgFlags;
use nix::sys::socket::SockType;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

/// The listen backlog used when the caller does not choose one.
pub const DEFAULT_BACKLOG: i32 = 128;
/// Bytes asked of the kernel per read.
pub const READ_CHUNK: usize = 64 * 1024;

/// A TCP socket listening on the first of `addrs` that works, and the
/// address it got (the event loop's listeners are made here too).
pub(crate) fn bound(addrs: &[SocketAddr], backlog: i32, reuse_port: bool) -> Result<(TcpListener, SocketAddr)> {
    net::try_each(addrs, |a| {
        let fd = net::bound_socket_with(a, SockType::Stream, Some(backlog), reuse_port)?;
        let sock = TcpListener::from(fd);
        let local = sock.local_addr().map_err(|e| Error::io("getsockname", &e))?;
        Ok((sock, local))
    })
}

/// A listening TCP socket, or a local one (`unix:`, see `unix.rs`).
#[derive(Debug)]
pub struct Listener {
    sock: Listening,
    /// The bound address; `0.0.0.0:0` for a local socket.
    local: SocketAddr,
    frame: Frame,
    /// Accepted connections are TLS with this (and handshake within
    /// `handshake`) when set.
    tls: Option<(Setup, Duration)>,
}

#[derive(Debug)]
enum Listening {
    Tcp(TcpListener),
    /// With its place, for messages.
    Unix(unix::Listening, unix::Place),
}

impl Listener {
    /// Binds the first of `addrs` that works (SO_REUSEADDR; dual-stack on `::`).
    pub fn bind(addrs: &[SocketAddr], backlog: i32) -> Result<Listener> {
        Listener::bind_with(addrs, backlog, false)
    }

    /// [`bind`](Listener::bind), with `SO_REUSEPORT` when `reuse_port` (a
    /// server's workers: see [`net::bound_socket_with`]).
    pub fn bind_with(addrs: &[SocketAddr], backlog: i32, reuse_port: bool) -> Result<Listener> {
        let (sock, local) = bound(addrs, backlog, reuse_port)?;
        Ok(Listener { sock: Listening::Tcp(sock), local, frame: Frame::default(), tls: None })
    }

    /// Listens on a local socket (`mode`: the socket file's permissions).
    pub fn bind_unix(place: &unix::Place, mode: Option<u32>) -> Result<Listener> {
        let l = unix::listen(place, mode)?;
        Ok(Listener {
            sock: Listening::Unix(l, place.clone()),
            local: SocketAddr::from(([0, 0, 0, 0], 0)),
            frame: Frame::default(),
            tls: None,
        })
    }

    /// Listens on `host` and `port`: every address the name resolves to is
    /// tried, or the local socket of a `unix:` host (whose port must be 0).
    pub fn bind_host(host: &str, port: u16, family: net::Family, backlog: i32) -> Result<Listener> {
        match unix::Place::parse(host) {
            Some(place) => Listener::bind_unix(&unix::no_port(place?, port)?, None),
            None => Listener::bind(&net::resolve(host, port, family)?, backlog),
        }
    }

    /// Binds the parsed command line's host and port (or local socket).
    pub fn from_args(a: &Args, backlog: i32) -> Result<Listener> {
        let mut l = match a.unix() {
            Some(place) => Listener::bind_unix(&place?, a.mode)?,
            None => Listener::bind(&a.addrs()?, backlog)?,
        };
        l.frame = a.frame;
        if a.tls.on(a.side()) {
            l.set_tls(Setup::Server(a.tls.server_config()?), a.timeout());
        }
        Ok(l)
    }

    /// `127.0.0.1:80` or `unix:/run/app.sock`, for messages.
    pub fn name(&self) -> String {
        match &self.sock {
            Listening::Tcp(_) => net::show(&self.local),
            Listening::Unix(_, place) => place.to_string(),
        }
    }

    /// Accepted connections do a TLS handshake with `setup`, each within
    /// `timeout` (None = [`HANDSHAKE_TIMEOUT`]), before `accept` returns.
    pub fn set_tls(&mut self, setup: Setup, timeout: Option<Duration>) {
        self.tls = Some((setup, timeout.unwrap_or(HANDSHAKE_TIMEOUT)));
    }

    /// The framing accepted connections start with (the args' for `from_args`).
    pub fn set_frame(&mut self, frame: Frame) {
        self.frame = frame;
    }

    /// Waits up to `timeout` (None = forever) for a connection.
    pub fn accept(&self, timeout: Option<Duration>) -> Result<Stream> {
        if timeout.is_some() && !net::wait(self.as_fd(), PollFlags::POLLIN, timeout)? {
            return Err(Error::new(Code::TimedOut, format!("accept on {}: timed out", self.name())));
        }
        let what = |e: std::io::Error| Error::io(format!("accept on {}", self.name()), &e);
        let (sock, peer) = match &self.sock {
            Listening::Tcp(l) => l.accept().map_err(what)?,
            Listening::Unix(l, _) => {
                let (s, _) = l.sock.accept().map_err(what)?;
                let peer = unix::peer_addr(&s);
                (unix::as_tcp(s), peer)
            }
        };
        let mut s = Stream::new(sock, peer);
        if let Some((setup, t)) = &self.tls {
            s.secure(setup, *t)?;
        }
        s.set_frame(self.frame);
        Ok(s)
    }

    /// The bound address (the chosen port when 0 was asked; `0.0.0.0:0`
    /// for a local socket).
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// The raw descriptor (still owned by the listener).
    pub fn fd(&self) -> RawFd {
        self.as_fd().as_raw_fd()
    }
}

impl AsFd for Listener {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match &self.sock {
            Listening::Tcp(l) => l.as_fd(),
            Listening::Unix(l, _) => l.sock.as_fd(),
        }
    }
}

/// A connected TCP stream.
///
/// Sending and receiving are separately locked, so one thread may receive
/// (blocked in [`Stream::recv_msg`]) while another sends: the usual client
/// with a reader thread and a writer thread. Both take `&self`.
#[derive(Debug)]
pub struct Stream {
    sock: TcpStream,
    peer: SocketAddr,
    tx: Mutex<Sender>,
    rx: Mutex<Receiver>,
    /// The TLS session when the stream is encrypted: sends seal into
    /// records (kept in `unsent` like plaintext), receives open them.
    tls: Option<Box<Session>>,
}

/// The send side.
#[derive(Debug)]
struct Sender {
    frame: Frame,
    /// Bytes of a message already taken but not yet sent: a non-blocking
    /// socket (or a send timeout) stopped it part way. They go out before
    /// anything else, so a message is never cut, lost or sent twice.
    unsent: Vec<u8>,
    /// The encoded message (reused between sends).
    out: Vec<u8>,
    /// TLS close_notify was queued: nothing more may be sealed.
    closing: bool,
}

/// The receive side.
#[derive(Debug)]
struct Receiver {
    decoder: Decoder,
    scratch: Vec<u8>,
    /// A message the caller left (its buffer was too small): handed out
    /// first by the next call.
    held: Option<Vec<u8>>,
}

/// Locks either side; a panic while holding it leaves plain data behind,
/// still consistent, so a poisoned lock is simply taken.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Buffers above this are freed once empty (idle streams stay small).
const KEEP_CAPACITY: usize = 64 * 1024;

impl Stream {
    /// Wraps an accepted or connected socket (line framing to start with).
    pub fn new(sock: TcpStream, peer: SocketAddr) -> Stream {
        let frame = Frame::default();
        Stream {
            sock,
            peer: net::canonical(peer),
            tx: Mutex::new(Sender { frame, unsent: Vec::new(), out: Vec::new(), closing: false }),
            rx: Mutex::new(Receiver { decoder: Decoder::new(frame), scratch: Vec::new(), held: None }),
            tls: None,
        }
    }

    /// Runs a TLS handshake (within `timeout`); from then on the stream is
    /// encrypted. A failed handshake leaves it unusable: close it.
    pub fn secure(&mut self, setup: &Setup, timeout: Duration) -> Result<()> {
        self.tls = Some(Box::new(Session::handshake(self.sock.as_fd(), setup, &net::show(&self.peer), timeout)?));
        Ok(())
    }

    /// True when the stream is TLS.
    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// Connects to each address in turn until one accepts, each attempt
    /// bounded by `timeout` (None = the OS's own limit).
    pub fn connect(addrs: &[SocketAddr], timeout: Option<Duration>) -> Result<Stream> {
        net::try_each(addrs, |a| {
            let what = || format!("connect {}", net::show(&a));
            let sock = match timeout {
                Some(t) => TcpStream::connect_timeout(&a, t),
                None => TcpStream::connect(a),
            }
            .map_err(|e| Error::io(what(), &e))?;
            Ok(Stream::new(sock, a))
        })
    }

    /// Connects to `host` and `port` (every address the name resolves to
    /// in turn), or to the local socket of a `unix:` host (port 0).
    pub fn connect_host(host: &str, port: u16, family: net::Family, timeout: Option<Duration>) -> Result<Stream> {
        match unix::Place::parse(host) {
            Some(place) => Stream::connect_unix(&unix::no_port(place?, port)?),
            None => Stream::connect(&net::resolve(host, port, family)?, timeout),
        }
    }

    /// Connects to a local socket (at once or not at all: no timeout
    /// applies).
    pub fn connect_unix(place: &unix::Place) -> Result<Stream> {
        let s = unix::connect(place)?;
        let peer = unix::peer_addr(&s);
        Ok(Stream::new(unix::as_tcp(s), peer))
    }

    /// Connects to the parsed command line's host and port with its timeout
    /// and frame.
    pub fn from_args(a: &Args) -> Result<Stream> {
        let mut s = Stream::connect_host(&a.host, a.port, a.family, a.timeout())?;
        if a.tls.on(a.side()) {
            s.secure(&Setup::client(&a.tls, &a.host)?, a.timeout().unwrap_or(HANDSHAKE_TIMEOUT))?;
        }
        s.set_frame(a.frame);
        Ok(s)
    }

    /// Changes the framing; bytes already received are dropped (bytes
    /// already taken for sending still go out). Waits for a receive in
    /// progress on another thread.
    pub fn set_frame(&self, frame: Frame) {
        lock(&self.tx).frame = frame;
        let mut rx = lock(&self.rx);
        rx.decoder = Decoder::new(frame);
        rx.held = None;
    }

    /// The framing in use.
    pub fn frame(&self) -> Frame {
        lock(&self.tx).frame
    }

    /// The peer's address (IPv4-mapped addresses shown as IPv4).
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// The local address.
    pub fn local_addr(&self) -> Result<SocketAddr> {
        self.sock.local_addr().map(net::canonical).map_err(|e| Error::io("getsockname", &e))
    }

    /// Read and write timeouts (None = block forever).
    pub fn set_timeouts(&self, read: Option<Duration>, write: Option<Duration>) -> Result<()> {
        net::set_timeouts(&self.sock, read, write)
    }

    /// Sends every byte of `data`, after any bytes kept from an earlier send.
    ///
    /// `Ok` means `data` was taken: sent, or, when the socket would block
    /// (non-blocking descriptor) or its send timeout expired part way, sent
    /// in part with the rest kept for the next send or [`Stream::flush`].
    /// `WouldBlock`/`TimedOut` means nothing of `data` was sent and it was
    /// not taken (the kept bytes could not all go out, or the socket took
    /// nothing): send it again later. Other errors: the connection is broken.
    /// Over TLS, `data` is encrypted once taken, so a socket that takes
    /// nothing of it still leaves it taken (kept as records).
    pub fn send(&self, data: &[u8]) -> Result<()> {
        let mut tx = lock(&self.tx);
        self.push(&mut tx.unsent, data)
    }

    /// Sends the bytes kept by an earlier send. `Ok` once none are left;
    /// `WouldBlock`/`TimedOut` while some still are.
    pub fn flush(&self) -> Result<()> {
        let mut tx = lock(&self.tx);
        self.flush_kept(&mut tx.unsent)
    }

    /// How many bytes of taken messages are still waiting to be sent.
    pub fn unsent(&self) -> usize {
        lock(&self.tx).unsent.len()
    }

    fn push(&self, unsent: &mut Vec<u8>, data: &[u8]) -> Result<()> {
        // Kept bytes first: if they cannot all go out, `data` is not taken.
        self.flush_kept(unsent)?;
        let mut sealed = Vec::new();
        let data = match &self.tls {
            Some(t) => {
                t.seal(data, &mut sealed);
                &sealed[..]
            }
            None => data,
        };
        match net::send_prefix(&self.sock, data) {
            (_, None) => Ok(()),
            (n, Some(e)) if (n > 0 || self.tls.is_some()) && matches!(e.code, Code::WouldBlock | Code::TimedOut) => {
                unsent.extend_from_slice(&data[n..]);
                Ok(())
            }
            (_, Some(e)) => Err(self.named(e)),
        }
    }

    fn flush_kept(&self, unsent: &mut Vec<u8>) -> Result<()> {
        if unsent.is_empty() {
            return Ok(());
        }
        let (n, err) = net::send_prefix(&self.sock, unsent);
        unsent.drain(..n);
        if unsent.is_empty() && unsent.capacity() > KEEP_CAPACITY {
            *unsent = Vec::new();
        }
        err.map_or(Ok(()), |e| Err(self.named(e)))
    }

    /// `send to 127.0.0.1:80: ...` rather than `send: ...`.
    fn named(&self, mut e: Error) -> Error {
        e.msg = e.msg.replacen("send", &format!("send to {}", net::show(&self.peer)), 1);
        e
    }

    /// One read of at most `buf.len()` bytes. End of stream is `Closed`.
    pub fn recv(&self, buf: &mut [u8]) -> Result<usize> {
        match self.read_some(buf)? {
            0 if !buf.is_empty() => Err(self.closed()),
            n => Ok(n),
        }
    }

    /// One socket read's worth of bytes: the socket's, or over TLS the
    /// plaintext of the records it brought. `Ok(0)` is end of stream.
    fn read_some(&self, buf: &mut [u8]) -> Result<usize> {
        match &self.tls {
            None => net::recv(&self.sock, buf),
            Some(t) => self.read_tls(t, buf, |b| net::recv(&self.sock, b)),
        }
    }

    fn read_tls(&self, t: &Session, buf: &mut [u8], raw: impl FnMut(&mut [u8]) -> Result<usize>) -> Result<usize> {
        let mut alert = Vec::new();
        let r = t.read(buf, &net::show(&self.peer), raw, &mut alert);
        if !alert.is_empty() {
            let _ = net::send_prefix(&self.sock, &alert);
        }
        r
    }

    /// One read that never blocks (the stdin client's loop): `WouldBlock`
    /// when nothing is waiting, `Ok(0)` at end of stream.
    pub fn try_recv(&self, buf: &mut [u8]) -> Result<usize> {
        let what = || format!("recv from {}", net::show(&self.peer));
        let raw = |b: &mut [u8]| loop {
            match nix::sys::socket::recv(self.sock.as_raw_fd(), b, MsgFlags::MSG_DONTWAIT) {
                Err(Errno::EINTR) => continue,
                Err(Errno::EAGAIN) => return Err(Error::new(Code::WouldBlock, format!("{}: would block", what()))),
                r => return r.map_err(|e| Error::errno(what(), e)),
            }
        };
        match &self.tls {
            None => raw(buf),
            Some(t) => self.read_tls(t, buf, raw),
        }
    }

    /// One send that never blocks (the stdin client's loop): how much of
    /// `data` was taken, or `WouldBlock`. Over TLS, records the socket did
    /// not take are kept (see [`Stream::unsent`]) and go out first on the
    /// next call, which may pass no data just to push them.
    pub fn try_send(&self, data: &[u8]) -> Result<usize> {
        let what = || format!("send to {}", net::show(&self.peer));
        let send = |b: &[u8]| loop {
            match nix::sys::socket::send(self.sock.as_raw_fd(), b, MsgFlags::MSG_NOSIGNAL | MsgFlags::MSG_DONTWAIT) {
                Err(Errno::EINTR) => continue,
                Err(Errno::EAGAIN) => return Err(Error::new(Code::WouldBlock, format!("{}: would block", what()))),
                r => return r.map_err(|e| Error::errno(what(), e)),
            }
        };
        let Some(t) = &self.tls else { return send(data) };
        let mut tx = lock(&self.tx);
        while !tx.unsent.is_empty() {
            let n = send(&tx.unsent)?;
            tx.unsent.drain(..n);
        }
        let mut sealed = Vec::new();
        t.seal(data, &mut sealed);
        let n = match send(&sealed) {
            Err(e) if e.code != Code::WouldBlock => return Err(e),
            r => r.unwrap_or(0),
        };
        tx.unsent.extend_from_slice(&sealed[n..]);
        Ok(data.len())
    }

    fn closed(&self) -> Error {
        Error::new(Code::Closed, format!("{} closed the connection", net::show(&self.peer)))
    }

    /// Sends one message through the frame, with [`Stream::send`]'s rules:
    /// `Ok` = taken (never cut: a part the socket did not take is kept and
    /// goes out first next time), `WouldBlock`/`TimedOut` = not taken.
    pub fn send_msg(&self, msg: &[u8]) -> Result<()> {
        let mut tx = lock(&self.tx);
        let Sender { frame, unsent, out, .. } = &mut *tx;
        out.clear();
        frame.encode(msg, out)?;
        let r = self.push(unsent, out);
        if out.capacity() > KEEP_CAPACITY {
            *out = Vec::new();
        }
        r
    }

    /// Receives one message and hands it to `f`. Messages glued in one read
    /// are kept for the next call. At end of stream a last line without its
    /// newline is still a message; the call after it is `Closed`. A fixed or
    /// len32 frame cut short by the end of stream is `Closed` saying how many
    /// of its bytes arrived; an over-long message is `MsgSize`.
    pub fn recv_msg<R>(&self, f: impl FnOnce(&[u8]) -> R) -> Result<R> {
        self.recv_msg_or_keep(|m| Ok::<R, std::convert::Infallible>(f(m))).map(|r| match r {
            Ok(v) => v,
            Err(never) => match never {},
        })
    }

    /// Like [`Stream::recv_msg`], but `f` may leave the message (`Err`, e.g.
    /// the caller's buffer is too small): it is then kept whole and handed
    /// to `f` first by the next call, so a retry with a bigger buffer gets it.
    pub fn recv_msg_or_keep<R, E>(&self, f: impl FnOnce(&[u8]) -> std::result::Result<R, E>) -> Result<std::result::Result<R, E>> {
        let mut rx = lock(&self.rx);
        let Receiver { decoder, scratch, held } = &mut *rx;
        if let Some(m) = held.take() {
            let r = f(&m);
            if r.is_err() {
                *held = Some(m);
            }
            return Ok(r);
        }
        let mut f = Some(f);
        let mut got = None;
        if scratch.is_empty() {
            *scratch = vec![0; READ_CHUNK];
        }
        // First whatever is buffered, then one read at a time; at end of
        // stream what the decoder still holds.
        let mut n = 0;
        let mut ended = false;
        loop {
            let mut take = |m: &[u8], _| {
                if let Some(f) = f.take() {
                    let r = f(m);
                    if r.is_err() {
                        *held = Some(m.to_vec());
                    }
                    got = Some(r);
                }
                Flow::Stop
            };
            if ended {
                decoder.finish(&mut take)?;
            } else {
                decoder.feed(&scratch[..n], &mut take)?;
            }
            if let Some(r) = got {
                return Ok(r);
            }
            if ended {
                // End of stream is sticky: the call after the last message
                // reads 0 again and ends here.
                return Err(self.closed());
            }
            n = self.read_some(scratch)?;
            ended = n == 0;
        }
    }

    /// Graceful close: one last try at bytes kept by a send (and TLS's
    /// close_notify), then shutdown both directions and close.
    pub fn close(self) {
        let _ = self.end_tls();
        let _ = self.flush();
        let _ = self.sock.shutdown(Shutdown::Both);
    }

    /// Half-close: no more sends; receiving goes on. Bytes kept by an
    /// earlier send go out first: if they cannot all go out now
    /// (`WouldBlock`/`TimedOut`) nothing is shut down, so a message is never
    /// cut by the end of stream; call again later.
    pub fn shutdown_write(&self) -> Result<()> {
        self.end_tls()?;
        let mut tx = lock(&self.tx);
        self.flush_kept(&mut tx.unsent)?;
        self.sock.shutdown(Shutdown::Write).map_err(|e| Error::io("shutdown", &e))
    }

    /// Over TLS, queues close_notify (once) behind the kept bytes, so the
    /// peer sees a clean end of stream rather than a truncation.
    fn end_tls(&self) -> Result<()> {
        let Some(t) = &self.tls else { return Ok(()) };
        let mut tx = lock(&self.tx);
        if !tx.closing {
            tx.closing = true;
            t.close_notify(&mut tx.unsent);
        }
        Ok(())
    }

    /// The raw descriptor (still owned by the stream).
    pub fn fd(&self) -> RawFd {
        self.sock.as_raw_fd()
    }

    /// The std socket, for the event loop. Over TLS the session stays
    /// behind: what the socket carries then is records, not messages.
    pub fn into_std(self) -> TcpStream {
        self.sock
    }
}

impl AsFd for Stream {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.sock.as_fd()
    }
}
