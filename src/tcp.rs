//! Blocking TCP primitives: a listener and a connected stream with framed
//! message send/receive and optional timeouts.

use crate::args::Args;
use crate::error::{Code, Error, Result};
use crate::frame::{Decoder, Flow, Frame};
use crate::net;
use nix::poll::PollFlags;
use nix::sys::socket::SockType;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::time::Duration;

/// The listen backlog used when the caller does not choose one.
pub const DEFAULT_BACKLOG: i32 = 128;
/// Bytes asked of the kernel per read.
pub const READ_CHUNK: usize = 64 * 1024;

/// A listening TCP socket.
#[derive(Debug)]
pub struct Listener {
    sock: TcpListener,
    local: SocketAddr,
    frame: Frame,
}

impl Listener {
    /// Binds the first of `addrs` that works (SO_REUSEADDR; dual-stack on `::`).
    pub fn bind(addrs: &[SocketAddr], backlog: i32) -> Result<Listener> {
        net::try_each(addrs, |a| {
            let fd = net::bound_socket(a, SockType::Stream, Some(backlog))?;
            let sock = TcpListener::from(fd);
            let local = sock.local_addr().map_err(|e| Error::io("getsockname", &e))?;
            Ok(Listener { sock, local, frame: Frame::default() })
        })
    }

    /// Binds the parsed command line's host and port.
    pub fn from_args(a: &Args, backlog: i32) -> Result<Listener> {
        let mut l = Listener::bind(&a.addrs()?, backlog)?;
        l.frame = a.frame;
        Ok(l)
    }

    /// The framing accepted connections start with (the args' for `from_args`).
    pub fn set_frame(&mut self, frame: Frame) {
        self.frame = frame;
    }

    /// Waits up to `timeout` (None = forever) for a connection.
    pub fn accept(&self, timeout: Option<Duration>) -> Result<Stream> {
        if timeout.is_some() && !net::wait(self.sock.as_fd(), PollFlags::POLLIN, timeout)? {
            return Err(Error::new(Code::TimedOut, format!("accept on {}: timed out", net::show(&self.local))));
        }
        let (sock, peer) = self.sock.accept().map_err(|e| Error::io(format!("accept on {}", net::show(&self.local)), &e))?;
        let mut s = Stream::new(sock, peer);
        s.set_frame(self.frame);
        Ok(s)
    }

    /// The bound address (the chosen port when 0 was asked).
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// The std listener, for the event loop.
    pub fn into_std(self) -> TcpListener {
        self.sock
    }

    /// The raw descriptor (still owned by the listener).
    pub fn fd(&self) -> RawFd {
        self.sock.as_raw_fd()
    }
}

/// A connected TCP stream.
#[derive(Debug)]
pub struct Stream {
    sock: TcpStream,
    peer: SocketAddr,
    decoder: Decoder,
    scratch: Vec<u8>,
}

impl Stream {
    /// Wraps an accepted or connected socket (line framing to start with).
    pub fn new(sock: TcpStream, peer: SocketAddr) -> Stream {
        Stream { sock, peer: net::canonical(peer), decoder: Decoder::new(Frame::default()), scratch: Vec::new() }
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

    /// Connects to the parsed command line's host and port with its timeout
    /// and frame.
    pub fn from_args(a: &Args) -> Result<Stream> {
        let mut s = Stream::connect(&a.addrs()?, a.timeout())?;
        s.set_frame(a.frame);
        Ok(s)
    }

    /// Changes the framing; bytes already buffered are dropped.
    pub fn set_frame(&mut self, frame: Frame) {
        self.decoder = Decoder::new(frame);
    }

    /// The framing in use.
    pub fn frame(&self) -> Frame {
        self.decoder.frame()
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

    /// Sends every byte (see [`net::send_all`]).
    pub fn send(&self, data: &[u8]) -> Result<()> {
        net::send_all(&self.sock, data).map_err(|mut e| {
            e.msg = e.msg.replacen("send", &format!("send to {}", net::show(&self.peer)), 1);
            e
        })
    }

    /// One read of at most `buf.len()` bytes. End of stream is `Closed`.
    pub fn recv(&self, buf: &mut [u8]) -> Result<usize> {
        match net::recv(&self.sock, buf)? {
            0 if !buf.is_empty() => Err(self.closed()),
            n => Ok(n),
        }
    }

    fn closed(&self) -> Error {
        Error::new(Code::Closed, format!("{} closed the connection", net::show(&self.peer)))
    }

    /// Sends one message through the frame.
    pub fn send_msg(&self, msg: &[u8]) -> Result<()> {
        let mut out = Vec::new();
        self.frame().encode(msg, &mut out)?;
        self.send(&out)
    }

    /// Receives one message and hands it to `f`. Messages glued in one read
    /// are kept for the next call. At end of stream a last line without its
    /// newline is still a message; the call after it is `Closed`. A fixed or
    /// len32 frame cut short by the end of stream is `Closed` saying how many
    /// of its bytes arrived; an over-long message is `MsgSize`.
    pub fn recv_msg<R>(&mut self, f: impl FnOnce(&[u8]) -> R) -> Result<R> {
        let mut f = Some(f);
        let mut got = None;
        if self.scratch.is_empty() {
            self.scratch = vec![0; READ_CHUNK];
        }
        // First whatever is buffered, then one read at a time; at end of
        // stream what the decoder still holds.
        let mut n = 0;
        let mut ended = false;
        loop {
            let mut take = |m: &[u8], _| {
                if let Some(f) = f.take() {
                    got = Some(f(m));
                }
                Flow::Stop
            };
            if ended {
                self.decoder.finish(&mut take)?;
            } else {
                self.decoder.feed(&self.scratch[..n], &mut take)?;
            }
            if let Some(r) = got {
                return Ok(r);
            }
            if ended {
                // End of stream is sticky: the call after the last message
                // reads 0 again and ends here.
                return Err(self.closed());
            }
            n = net::recv(&self.sock, &mut self.scratch)?;
            ended = n == 0;
        }
    }

    /// Graceful close: shutdown both directions, then close.
    pub fn close(self) {
        let _ = self.sock.shutdown(Shutdown::Both);
    }

    /// Half-close: no more sends; receiving goes on.
    pub fn shutdown_write(&self) -> Result<()> {
        self.sock.shutdown(Shutdown::Write).map_err(|e| Error::io("shutdown", &e))
    }

    /// The raw descriptor (still owned by the stream).
    pub fn fd(&self) -> RawFd {
        self.sock.as_raw_fd()
    }

    /// The std socket, for the event loop.
    pub fn into_std(self) -> TcpStream {
        self.sock
    }
}

impl AsFd for Stream {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.sock.as_fd()
    }
}
