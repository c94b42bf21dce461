//! Blocking UDP primitives: bound or connected sockets, datagrams with the
//! sender's address, truncation reported, broadcast and multicast.

use crate::args::Args;
use crate::error::{Code, Error, Result};
use crate::frame::{Ending, Frame};
use crate::net;
use crate::unix;
use nix::sys::socket::{self, MsgFlags, SockType, SockaddrStorage};
use std::io::IoSliceMut;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::time::Duration;

/// The largest UDP payload (IPv4).
pub const MAX_DATAGRAM: usize = 65507;

/// The message a datagram carries under `frame`, and how it ended: for
/// `fixed:N` the text before the first NUL (the tutorial's padded 32-byte
/// datagrams), for `line` without one trailing `\n` or `\r\n` (`nc -u`
/// sends one; the reply gets it back), otherwise all.
pub fn datagram_msg(frame: Frame, d: &[u8]) -> (&[u8], Ending) {
    match frame {
        Frame::Fixed(_) => (&d[..d.iter().position(|&b| b == 0).unwrap_or(d.len())], Ending::None),
        Frame::Line { .. } => match d.strip_suffix(b"\n") {
            Some(d) => match d.strip_suffix(b"\r") {
                Some(d) => (d, Ending::CrLf),
                None => (d, Ending::Lf),
            },
            None => (d, Ending::None),
        },
        _ => (d, Ending::None),
    }
}

/// Appends the datagram for `msg` under `frame` to `out`: `fixed:N` frames
/// are NUL-padded to N bytes; a `line` ends with `ending` (that of the
/// datagram answered; [`Ending::None`] for one sent on its own); others are
/// the message as is.
pub fn datagram_encode(frame: Frame, msg: &[u8], ending: Ending, out: &mut Vec<u8>) -> Result<()> {
    let len = msg.len() + ending.bytes().len();
    if len > MAX_DATAGRAM {
        return Err(Error::new(Code::MsgSize, format!("datagram of {len} bytes is over the UDP limit of {MAX_DATAGRAM}")));
    }
    match frame {
        Frame::Fixed(_) => frame.encode(msg, out),
        Frame::Line { .. } => {
            out.extend_from_slice(msg);
            out.extend_from_slice(ending.bytes());
            Ok(())
        }
        _ => {
            out.extend_from_slice(msg);
            Ok(())
        }
    }
}

/// A UDP socket, or a local datagram socket (`unix:`): carried in the
/// same type (sends and receives are the same calls), with its senders
/// numbered as `unix.rs` says.
#[derive(Debug)]
pub struct Udp {
    sock: UdpSocket,
    frame: Frame,
    local: Option<Box<unix::LocalDatagram>>,
}

impl Udp {
    /// Binds the first of `addrs` that works (dual-stack on `::`).
    pub fn bind(addrs: &[SocketAddr]) -> Result<Udp> {
        Udp::bind_with(addrs, false)
    }

    /// [`bind`](Udp::bind), with `SO_REUSEPORT` when `reuse_port` (a
    /// server's workers: see [`net::bound_socket_with`]).
    pub fn bind_with(addrs: &[SocketAddr], reuse_port: bool) -> Result<Udp> {
        net::try_each(addrs, |a| {
            let fd = net::bound_socket_with(a, SockType::Datagram, None, reuse_port)?;
            Ok(Udp { sock: UdpSocket::from(fd), frame: Frame::Raw { max: MAX_DATAGRAM }, local: None })
        })
    }

    fn local(sock: std::os::unix::net::UnixDatagram, file: Option<unix::SocketFile>) -> Udp {
        let local = unix::LocalDatagram::new(file);
        let sock = UdpSocket::from(std::os::fd::OwnedFd::from(sock));
        Udp { sock, frame: Frame::Raw { max: MAX_DATAGRAM }, local: Some(Box::new(local)) }
    }

    /// Binds a local datagram socket (`mode`: the socket file's
    /// permissions; see [`unix::listen`] for the file's life).
    pub fn bind_unix(place: &unix::Place, mode: Option<u32>) -> Result<Udp> {
        let (sock, file) = unix::bind_datagram(place, mode)?;
        Ok(Udp::local(sock, file))
    }

    /// A local datagram socket connected to `place`, bound to a temporary
    /// name of its own so replies come back (see
    /// [`unix::connect_datagram`]; a temporary file goes with the socket).
    pub fn connect_unix(place: &unix::Place) -> Result<Udp> {
        let (sock, file) = unix::connect_datagram(place)?;
        Ok(Udp::local(sock, file))
    }

    /// Binds `host`:`port`, or the local socket of a `unix:` host (port 0).
    pub fn bind_host(host: &str, port: u16) -> Result<Udp> {
        match unix::Place::parse(host) {
            Some(place) => Udp::bind_unix(&unix::no_port(place?, port)?, None),
            None => Udp::bind(&net::resolve(host, port, net::Family::Any)?),
        }
    }

    /// Connects to `host`:`port`, or to the local socket of a `unix:` host.
    pub fn connect_host(host: &str, port: u16) -> Result<Udp> {
        match unix::Place::parse(host) {
            Some(place) => Udp::connect_unix(&unix::no_port(place?, port)?),
            None => Udp::connect(&net::resolve(host, port, net::Family::Any)?),
        }
    }

    /// Binds the parsed command line's host and port (or local socket).
    pub fn from_args(a: &Args) -> Result<Udp> {
        a.tls.refuse(a.side())?;
        let mut u = match a.unix() {
            Some(place) => Udp::bind_unix(&place?, a.mode)?,
            None => Udp::bind(&a.addrs()?)?,
        };
        u.frame = a.frame;
        Ok(u)
    }

    /// A socket on an ephemeral port, connected to the first of `addrs` that
    /// works (a connected socket hears ICMP "port unreachable" as `Refused`).
    pub fn connect(addrs: &[SocketAddr]) -> Result<Udp> {
        net::try_each(addrs, |a| {
            let any = if a.is_ipv4() { IpAddr::V4(Ipv4Addr::UNSPECIFIED) } else { IpAddr::V6(Ipv6Addr::UNSPECIFIED) };
            let u = Udp::bind(&[SocketAddr::new(any, 0)])?;
            u.sock.connect(a).map_err(|e| Error::io(format!("connect {}", net::show(&a)), &e))?;
            Ok(u)
        })
    }

    /// Connects to the command line's host and port, with its frame.
    pub fn connect_args(a: &Args) -> Result<Udp> {
        a.tls.refuse(a.side())?;
        let mut u = match a.unix() {
            Some(place) => Udp::connect_unix(&place?)?,
            None => Udp::connect(&a.addrs()?)?,
        };
        u.frame = a.frame;
        Ok(u)
    }

    /// Sets the frame used by `send_msg`/`send_msg_to` and `msg_of`.
    pub fn set_frame(&mut self, frame: Frame) {
        self.frame = frame;
    }

    /// The frame in use.
    pub fn frame(&self) -> Frame {
        self.frame
    }

    /// The message a received datagram carries (see [`datagram_msg`]).
    pub fn msg_of<'a>(&self, d: &'a [u8]) -> &'a [u8] {
        datagram_msg(self.frame, d).0
    }

    /// Sends one datagram to `to`.
    pub fn send_to(&self, data: &[u8], to: SocketAddr) -> Result<()> {
        let what = || format!("sendto {}", net::show(&to));
        if let Some(l) = &self.local {
            return match l.send_to(self.sock.as_raw_fd(), data, to) {
                Err(nix::errno::Errno::ENOENT) => {
                    Err(Error::new(Code::Addr, format!("{}: not a sender this unix socket has heard", what())))
                }
                r => r.map(drop).map_err(|e| Error::errno(what(), e)),
            };
        }
        let n = self.sock.send_to(data, to).map_err(|e| Error::io(what(), &e))?;
        debug_assert_eq!(n, data.len());
        Ok(())
    }

    /// Sends one datagram on a connected socket.
    pub fn send(&self, data: &[u8]) -> Result<()> {
        self.sock.send(data).map_err(|e| Error::io("send", &e))?;
        Ok(())
    }

    /// Sends `msg` framed (fixed frames padded) to `to`, or to the connected
    /// peer when `to` is None.
    pub fn send_msg(&self, msg: &[u8], to: Option<SocketAddr>) -> Result<()> {
        let mut out = Vec::new();
        datagram_encode(self.frame, msg, Ending::None, &mut out)?;
        match to {
            Some(a) => self.send_to(&out, a),
            None => self.send(&out),
        }
    }

    /// Receives one datagram into `buf`. A datagram longer than `buf` is
    /// `MsgSize` (its first `buf.len()` bytes are in `buf`), never silently cut.
    pub fn recv_from(&self, buf: &mut [u8]) -> Result<(usize, SocketAddr)> {
        let cap = buf.len();
        let fd = self.sock.as_raw_fd();
        loop {
            let got = match &self.local {
                None => {
                    let mut iov = [IoSliceMut::new(buf)];
                    // MSG_TRUNC makes Linux return the datagram's real length.
                    socket::recvmsg::<SockaddrStorage>(fd, &mut iov, None, MsgFlags::MSG_TRUNC)
                        .map(|m| (m.bytes, m.address.as_ref().and_then(to_std)))
                }
                Some(l) => l.recv_from(fd, buf),
            };
            match got {
                Ok((n, from)) => {
                    let from = from.ok_or_else(|| Error::new(Code::Addr, "recvfrom: sender has no address"))?;
                    if n > cap {
                        return Err(Error::new(
                            Code::MsgSize,
                            format!("datagram of {n} bytes from {} truncated to {cap}", net::show(&from)),
                        ));
                    }
                    return Ok((n, net::canonical(from)));
                }
                Err(nix::errno::Errno::EINTR) => continue,
                Err(nix::errno::Errno::EAGAIN) => return Err(net::would_block(self.sock.as_fd(), "recvfrom")),
                Err(e) => return Err(Error::errno("recvfrom", e)),
            }
        }
    }

    /// Receive and send timeouts (None = block forever).
    pub fn set_timeouts(&self, read: Option<Duration>, write: Option<Duration>) -> Result<()> {
        net::set_timeouts(&self.sock, read, write)
    }

    /// SO_BROADCAST on or off.
    pub fn set_broadcast(&self, on: bool) -> Result<()> {
        self.sock.set_broadcast(on).map_err(|e| Error::io("setsockopt SO_BROADCAST", &e))
    }

    /// Joins (`join` true) or leaves a multicast group. `iface` is the local
    /// interface's IPv4 address for IPv4 groups (None = any) or an interface
    /// index for IPv6 groups (None = 0, the default).
    pub fn membership(&self, group: IpAddr, iface: Option<&str>, join: bool) -> Result<()> {
        let verb = if join { "join" } else { "leave" };
        let what = format!("{verb} multicast group {group}");
        if !group.is_multicast() {
            return Err(Error::new(Code::Addr, format!("{what}: not a multicast address")));
        }
        let r = match group {
            IpAddr::V4(g) => {
                let ifa = match iface {
                    None | Some("") => Ipv4Addr::UNSPECIFIED,
                    Some(s) => {
                        s.parse().map_err(|_| Error::new(Code::Addr, format!("{what}: interface \"{s}\" is not an IPv4 address")))?
                    }
                };
                if join {
                    self.sock.join_multicast_v4(&g, &ifa)
                } else {
                    self.sock.leave_multicast_v4(&g, &ifa)
                }
            }
            IpAddr::V6(g) => {
                let idx = match iface {
                    None | Some("") => 0,
                    Some(s) => {
                        s.parse().map_err(|_| Error::new(Code::Addr, format!("{what}: interface \"{s}\" is not an interface index")))?
                    }
                };
                if join {
                    self.sock.join_multicast_v6(&g, idx)
                } else {
                    self.sock.leave_multicast_v6(&g, idx)
                }
            }
        };
        r.map_err(|e| Error::io(what, &e))
    }

    /// The bound address (the chosen port when 0 was asked; `0.0.0.0:0`
    /// for a local socket).
    pub fn local_addr(&self) -> Result<SocketAddr> {
        if self.local.is_some() {
            return Ok(SocketAddr::from(([0, 0, 0, 0], 0)));
        }
        self.sock.local_addr().map(net::canonical).map_err(|e| Error::io("getsockname", &e))
    }

    /// The raw descriptor (still owned by the socket).
    pub fn fd(&self) -> RawFd {
        self.sock.as_raw_fd()
    }

    /// The std socket, for the event loop.
    pub fn into_std(self) -> UdpSocket {
        self.sock
    }
}

fn to_std(a: &SockaddrStorage) -> Option<SocketAddr> {
    if let Some(v4) = a.as_sockaddr_in() {
        return Some(SocketAddr::from((v4.ip(), v4.port())));
    }
    a.as_sockaddr_in6().map(|v6| SocketAddr::from((v6.ip(), v6.port())))
}

impl AsFd for Udp {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.sock.as_fd()
    }
}
