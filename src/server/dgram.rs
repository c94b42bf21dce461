//! What a UDP server receives and sends on: a UDP socket, or a local
//! (`unix:`) datagram socket carried in the same type. A local sender has
//! no IP address: it is numbered (see `unix.rs`), and a reply to its
//! number goes to its socket address, so the loop past these calls is the
//! same for both. Both receive and send in batches (`recvmmsg`,
//! `sendmmsg`: see `sys.rs`).

use crate::sys::{Datagrams, Dest, Gso, Received, Sender};
use crate::unix::LocalDatagram;
use mio::event::Source;
use mio::net::UdpSocket;
use mio::{Interest, Registry, Token};
use nix::sys::socket::SockaddrStorage;
use std::cell::Cell;
use std::io;
use std::net::SocketAddr;
use std::os::fd::AsFd;

pub(crate) struct Dgram {
    sock: UdpSocket,
    local: Option<Box<LocalDatagram>>,
    /// Whether replies to one sender may leave joined (UDP only; see
    /// [`Gso`]).
    gso: Cell<Gso>,
}

impl Dgram {
    pub(crate) fn udp(sock: UdpSocket) -> Dgram {
        Dgram { sock, local: None, gso: Cell::new(Gso::Try) }
    }

    /// A non-blocking local datagram socket and what it keeps.
    pub(crate) fn local(sock: std::os::unix::net::UnixDatagram, local: LocalDatagram) -> Dgram {
        let sock = UdpSocket::from_std(std::net::UdpSocket::from(std::os::fd::OwnedFd::from(sock)));
        Dgram { sock, local: Some(Box::new(local)), gso: Cell::new(Gso::Off) }
    }

    /// One `recvmmsg` into `slots`: how many datagrams came (see
    /// [`Datagrams::recv`]).
    pub(crate) fn recv_batch(&self, slots: &mut Datagrams, max: usize) -> io::Result<usize> {
        slots.recv(self.sock.as_fd(), max)
    }

    /// The sender of a received datagram, as the core carries it. A
    /// datagram longer than its slot (a local socket may carry more than
    /// UDP's 64 KiB) is an error: dropped, never handed on cut.
    pub(crate) fn sender(&self, d: &Received<'_>) -> io::Result<SocketAddr> {
        if d.len > d.data.len() {
            let what = if self.local.is_some() { "a unix datagram" } else { "a datagram" };
            return Err(io::Error::other(format!("{what} of {} bytes, over {}: dropped", d.len, d.data.len())));
        }
        let ip = match (&d.from, &self.local) {
            (Sender::Ip(a), None) => Some(*a),
            (Sender::Other(a), Some(l)) => a.as_unix_addr().map(|a| l.sender(a)),
            _ => None,
        };
        ip.ok_or_else(|| io::Error::other("a datagram without a sender address: dropped"))
    }

    /// Where a datagram to `to` goes when that is not `to` itself: for a
    /// local socket the address sender number `to` stands for (`ENOENT`
    /// when the socket does not know it); None for UDP.
    pub(crate) fn target(&self, to: SocketAddr) -> io::Result<Option<SockaddrStorage>> {
        let Some(l) = &self.local else { return Ok(None) };
        let a = l.addr_of(to).ok_or(io::Error::from_raw_os_error(libc::ENOENT))?;
        let a = crate::sys::storage(&a).ok_or_else(|| io::Error::other("a unix socket address that does not fit a sockaddr_storage"))?;
        Ok(Some(a))
    }

    /// One `sendmmsg` (see [`crate::sys::send_batch`]).
    pub(crate) fn send_batch(&self, data: &[u8], msgs: &[(usize, usize, Dest)], others: &[SockaddrStorage]) -> io::Result<usize> {
        let mut gso = self.gso.get();
        let r = crate::sys::send_batch(self.sock.as_fd(), data, msgs, others, &mut gso);
        self.gso.set(gso);
        r
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
