//! Socket plumbing shared by the TCP and UDP paths: name resolution, creating
//! bound sockets with the right options, sends that never raise SIGPIPE, and
//! waiting with a timeout. Everything here is safe Rust over `nix`/`std`
//! (the crate denies `unsafe`); the raw calls it needs are in `sys.rs`.

use crate::error::{Code, Error, Result};
use crate::sys;

/// The graceful close's "has the peer everything" check; a raw OS call, so
/// it lives in `sys.rs`.
pub use crate::sys::unacked;
use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{self, sockopt, AddressFamily, Backlog, MsgFlags, SockFlag, SockType, SockaddrStorage};
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::time::{Duration, Instant};

/// Which address family a name may resolve to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Family {
    /// IPv4 or IPv6, in the resolver's order.
    #[default]
    Any,
    /// IPv4 only (`-4`).
    V4,
    /// IPv6 only (`-6`).
    V6,
}

impl Family {
    fn admits(self, ip: &IpAddr) -> bool {
        match self {
            Family::Any => true,
            Family::V4 => ip.is_ipv4(),
            Family::V6 => ip.is_ipv6(),
        }
    }
}

/// `[::1]` -> `::1`; anything else unchanged.
pub fn strip_brackets(host: &str) -> &str {
    host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host)
}

/// Resolves `host` (an IPv4/IPv6 literal, `[v6]`, or a name) to every
/// address of the wanted family, in the resolver's order.
pub fn resolve(host: &str, port: u16, family: Family) -> Result<Vec<SocketAddr>> {
    let bare = strip_brackets(host);
    if bare.is_empty() {
        return Err(Error::new(Code::Addr, "host is empty"));
    }
    if host.starts_with(crate::unix::PREFIX) {
        // The flows that take one do so before resolving; this one needs an IP.
        return Err(Error::new(Code::Addr, format!("\"{host}\": a unix socket cannot be used here (an IP address or name is needed)")));
    }
    if let Ok(ip) = bare.parse::<IpAddr>() {
        if !family.admits(&ip) {
            let want = if family == Family::V4 { "IPv4" } else { "IPv6" };
            return Err(Error::new(Code::Addr, format!("\"{host}\" is not an {want} address")));
        }
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    if bare.contains(|c: char| c.is_whitespace() || c.is_control()) {
        return Err(Error::new(Code::Addr, format!("\"{host}\" is not a valid host name")));
    }
    let addrs: Vec<SocketAddr> = (bare, port)
        .to_socket_addrs()
        .map_err(|e| Error::new(Code::Resolve, format!("resolve \"{host}\": {}", gai_reason(&e))))?
        .filter(|a| family.admits(&a.ip()))
        .collect();
    if addrs.is_empty() {
        return Err(Error::new(Code::Resolve, format!("resolve \"{host}\": no address of the requested family")));
    }
    Ok(addrs)
}

fn gai_reason(e: &std::io::Error) -> String {
    let s = e.to_string();
    s.strip_prefix("failed to lookup address information: ").unwrap_or(&s).to_string()
}

/// The peer address as C users want it: IPv4-mapped IPv6 shown as IPv4.
pub fn canonical(addr: SocketAddr) -> SocketAddr {
    SocketAddr::new(addr.ip().to_canonical(), addr.port())
}

/// `127.0.0.1:80`, `[::1]:80`, `unix (pid 7 uid 1000 gid 1000)` (a local
/// peer: see `unix.rs`).
pub fn show(addr: &SocketAddr) -> String {
    if let Some(c) = crate::unix::cred(*addr) {
        return format!("unix (pid {} uid {} gid {})", c.pid, c.uid, c.gid);
    }
    if let Some(n) = crate::unix::sender(*addr) {
        return format!("unix sender {n}");
    }
    canonical(*addr).to_string()
}

/// A TCP socket that is not connected yet: the place an outgoing
/// connection of the server loop holds while its name is being resolved.
pub fn unconnected_tcp() -> Result<std::net::TcpStream> {
    let flags = SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK;
    let fd = socket::socket(AddressFamily::Inet, SockType::Stream, flags, None).map_err(|e| Error::errno("socket", e))?;
    Ok(std::net::TcpStream::from(fd))
}

/// Creates a socket of `ty` bound to `addr`, listening when `backlog` is
/// given. TCP listeners get SO_REUSEADDR (a restarted server binds at once
/// despite TIME_WAIT); a socket bound to the IPv6 wildcard is dual-stack.
pub fn bound_socket(addr: SocketAddr, ty: SockType, backlog: Option<i32>) -> Result<OwnedFd> {
    bound_socket_with(addr, ty, backlog, false)
}

/// [`bound_socket`], with `SO_REUSEPORT` when `reuse_port`: the sockets of
/// a server's workers all bind one address and the kernel spreads
/// connections (datagrams) over them. Only then: it would let another
/// program of the same user bind the port too.
pub fn bound_socket_with(addr: SocketAddr, ty: SockType, backlog: Option<i32>, reuse_port: bool) -> Result<OwnedFd> {
    let af = if addr.is_ipv4() { AddressFamily::Inet } else { AddressFamily::Inet6 };
    let what = || format!("bind {}", show(&addr));
    let fd = socket::socket(af, ty, SockFlag::SOCK_CLOEXEC, None).map_err(|e| Error::errno("socket", e))?;
    if ty == SockType::Stream {
        socket::setsockopt(&fd, sockopt::ReuseAddr, &true).map_err(|e| Error::errno("setsockopt SO_REUSEADDR", e))?;
    }
    if reuse_port {
        socket::setsockopt(&fd, sockopt::ReusePort, &true).map_err(|e| Error::errno("setsockopt SO_REUSEPORT", e))?;
    }
    if addr.is_ipv6() && addr.ip().is_unspecified() {
        socket::setsockopt(&fd, sockopt::Ipv6V6Only, &false).map_err(|e| Error::errno("setsockopt IPV6_V6ONLY", e))?;
    }
    socket::bind(fd.as_raw_fd(), &SockaddrStorage::from(addr)).map_err(|e| Error::errno(what(), e))?;
    if let Some(n) = backlog {
        let b = Backlog::new(n.clamp(1, i32::MAX)).unwrap_or(Backlog::MAXCONN);
        socket::listen(&fd, b).map_err(|e| Error::errno(format!("listen {}", show(&addr)), e))?;
    }
    Ok(fd)
}

/// Tries `f` on each address in turn; returns the first success, or the
/// last error (with every address tried named in it when there were several).
pub fn try_each<T>(addrs: &[SocketAddr], mut f: impl FnMut(SocketAddr) -> Result<T>) -> Result<T> {
    let mut last = Error::new(Code::Resolve, "no address to try");
    for &a in addrs {
        match f(a) {
            Ok(v) => return Ok(v),
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// Converts a deadline into what's left of it (None = wait forever).
pub fn remaining(deadline: Option<Instant>) -> Option<Duration> {
    deadline.map(|d| d.saturating_duration_since(Instant::now()))
}

fn poll_timeout(left: Option<Duration>) -> PollTimeout {
    match left {
        None => PollTimeout::NONE,
        Some(d) => PollTimeout::try_from(d.as_millis().min(i32::MAX as u128) as i32).unwrap_or(PollTimeout::MAX),
    }
}

/// Waits until `fd` is ready for `events` or the timeout passes (EINTR
/// retried with the time left). Returns false on timeout.
pub fn wait(fd: BorrowedFd<'_>, events: PollFlags, timeout: Option<Duration>) -> Result<bool> {
    let deadline = timeout.map(|t| Instant::now() + t);
    loop {
        let mut fds = [PollFd::new(fd, events)];
        match poll(&mut fds, poll_timeout(remaining(deadline))) {
            Ok(0) => return Ok(false),
            Ok(_) => return Ok(true),
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(Error::errno("poll", e)),
        }
    }
}

/// What `EAGAIN` means on this socket. It has two causes that call for
/// different reactions: a send/receive timeout (SO_SNDTIMEO/SO_RCVTIMEO)
/// expired, so the caller gives up (`TimedOut`); or the descriptor is
/// non-blocking (a C program set O_NONBLOCK on `sockflow_tcp_fd()` to poll it
/// itself), so the caller polls and retries (`WouldBlock`). The flag is
/// looked up only when EAGAIN comes back, so the common path pays nothing.
pub fn would_block(fd: BorrowedFd<'_>, what: &str) -> Error {
    if sys::is_nonblocking(fd) {
        Error { code: Code::WouldBlock, errno: libc::EAGAIN, msg: format!("{what}: would block (the descriptor is non-blocking)") }
    } else {
        Error::new(Code::TimedOut, format!("{what}: timed out"))
    }
}

/// Sends as much of `data` as the socket takes without an error: partial
/// writes are continued, EINTR retried, and MSG_NOSIGNAL means a closed peer
/// is an error (`Closed`), never SIGPIPE. Returns how many bytes went out
/// and, when not all did, why (`TimedOut`/`WouldBlock` from [`would_block`],
/// or the socket's error). The count lets a caller keep the rest instead of
/// losing or repeating it.
pub fn send_prefix(fd: impl AsFd, data: &[u8]) -> (usize, Option<Error>) {
    let fd = fd.as_fd();
    let mut sent = 0;
    while sent < data.len() {
        match socket::send(fd.as_raw_fd(), &data[sent..], MsgFlags::MSG_NOSIGNAL) {
            Ok(n) => sent += n,
            Err(Errno::EINTR) => continue,
            Err(Errno::EAGAIN) => return (sent, Some(would_block(fd, "send"))),
            Err(e) => return (sent, Some(Error::errno("send", e))),
        }
    }
    (sent, None)
}

/// Sends all of `data` (see [`send_prefix`]); what was sent before an error
/// is not reported.
pub fn send_all(fd: impl AsFd, data: &[u8]) -> Result<()> {
    match send_prefix(fd, data) {
        (_, None) => Ok(()),
        (_, Some(e)) => Err(e),
    }
}

/// One `recv`, EINTR retried. `Ok(0)` is end of stream; EAGAIN is
/// `TimedOut` or `WouldBlock` (see [`would_block`]).
pub fn recv(fd: impl AsFd, buf: &mut [u8]) -> Result<usize> {
    loop {
        match socket::recv(fd.as_fd().as_raw_fd(), buf, MsgFlags::empty()) {
            Ok(n) => return Ok(n),
            Err(Errno::EINTR) => continue,
            Err(Errno::EAGAIN) => return Err(would_block(fd.as_fd(), "recv")),
            Err(e) => return Err(Error::errno("recv", e)),
        }
    }
}

/// Sets SO_RCVTIMEO / SO_SNDTIMEO (None or zero = no timeout).
pub fn set_timeouts(fd: impl AsFd, read: Option<Duration>, write: Option<Duration>) -> Result<()> {
    use nix::sys::time::TimeVal;
    let tv = |d: Option<Duration>| {
        let d = d.unwrap_or_default();
        TimeVal::new(d.as_secs() as _, d.subsec_micros() as _)
    };
    socket::setsockopt(&fd, sockopt::ReceiveTimeout, &tv(read)).map_err(|e| Error::errno("setsockopt SO_RCVTIMEO", e))?;
    socket::setsockopt(&fd, sockopt::SendTimeout, &tv(write)).map_err(|e| Error::errno("setsockopt SO_SNDTIMEO", e))?;
    Ok(())
}

/// One non-blocking-friendly `send` with MSG_NOSIGNAL (no SIGPIPE): the
/// event loop's write. Errors come back as `io::Error` (WouldBlock included).
pub fn send_some(fd: std::os::fd::RawFd, data: &[u8]) -> std::io::Result<usize> {
    socket::send(fd, data, MsgFlags::MSG_NOSIGNAL).map_err(std::io::Error::from)
}
