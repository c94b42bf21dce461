//! What a UDP server receives and sends on: a UDP socket, or a local
//! (`unix:`) datagram socket carried in the same type. A local sender has
//! no IP address: it is numbered (see `unix.rs`), and a reply to its
//! number goes to its socket address, so the loop past these two calls is
//! the same for both.

use crate::unix::LocalDatagram;
use mio::event::Source;
use mio::net::UdpSocket;
use mio::{Interest, Registry, Token};
use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;

pub(crate) struct Dgram {
    sock: UdpSocket,
    local: Option<Box<LocalDatagram>>,
}

impl Dgram {
    pub(crate) fn udp(sock: UdpSocket) -> Dgram {
        Dgram { sock, local: None }
    }

    /// A non-blocking local datagram socket and what it keeps.
    pub(crate) fn local(sock: std::os::unix::net::UnixDatagram, local: LocalDatagram) -> Dgram {
        let sock = UdpSocket::from_std(std::net::UdpSocket::from(std::os::fd::OwnedFd::from(sock)));
        Dgram { sock, local: Some(Box::new(local)) }
    }

    /// One datagram and its sender. A local datagram longer than `buf` (a
    /// local socket may carry more than UDP's 64 KiB) is an error: dropped,
    /// never handed on cut.
    pub(crate) fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        let Some(l) = &self.local else { return self.sock.recv_from(buf) };
        match l.recv_from(self.sock.as_raw_fd(), buf)? {
            (n, _) if n > buf.len() => Err(io::Error::other(format!("a unix datagram of {n} bytes, over {}: dropped", buf.len()))),
            (n, Some(from)) => Ok((n, from)),
            (_, None) => Err(io::Error::other("a unix datagram without a sender address: dropped")),
        }
    }

    /// One datagram to `to`.
    pub(crate) fn send_to(&self, buf: &[u8], to: SocketAddr) -> io::Result<usize> {
        match &self.local {
            None => self.sock.send_to(buf, to),
            Some(l) => Ok(l.send_to(self.sock.as_raw_fd(), buf, to)?),
        }
    }
}

impl Source for Dgram {
    fn register(&mut self, r: &Registry, t: Token, i: Interest) -> io::Result<()> {
        self.sock.register(r, t, i)
    }
    fn reregister(&mut self, r: &Registry, t: Token, i: Interest) -> io::Result<()> {
        self.sock.reregister(r, t, i)
    }
    fn deregister(&mut self, r: &Registry) -> io::Result<()> {
        self.sock.deregister(r)
    }
}
