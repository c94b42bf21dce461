//! Unix domain sockets: fast local IPC through the same flows as TCP.
//!
//! An address is written `unix:PATH` (a socket file) or `unix:@NAME`
//! (Linux's abstract namespace: no file, gone with its last socket) and
//! goes wherever a host goes; it has no port. The stream flows then run
//! over `AF_UNIX` stream sockets, the datagram flows over `AF_UNIX`
//! datagram sockets: a local socket takes the same `send`/`recv`/
//! `shutdown` calls as a TCP or UDP one, so the rest of the library
//! carries it in those types (`TcpStream::from(OwnedFd)`) and only
//! binding, connecting, accepting and addressing datagrams differ, all of
//! them here (and in `server/listen.rs`, `server/dgram.rs`).
//!
//! The socket file is the server's: a stale one (left by a server that
//! died: connecting to it is refused) is replaced, one a live server still
//! answers on is refused (`AddrInUse`, naming the path), anything that is
//! not a socket is never touched, and the file is removed when the
//! listener that made it goes ([`SocketFile`]).
//!
//! A local client has no IP address. The core carries a peer as a
//! `SocketAddr`, so a local peer's credentials (`SO_PEERCRED`: pid, uid,
//! gid, read at accept or connect) are written into an IPv6 address of the
//! IETF-reserved `100::/8` block, which no TCP peer can have: `0100:0000:`
//! pid, uid, gid, port 0. [`cred`] reads them back, [`crate::net::show`]
//! prints `unix (pid P uid U gid G)`, and `--max-per-ip` (which counts IPv6
//! peers per /64) counts local clients per process.
//!
//! A datagram's sender is a socket address (a path, an abstract name; a
//! client binds a temporary file or an abstract name: [`connect_datagram`]), so a local datagram
//! socket numbers its senders ([`Senders`], the last 4096) and writes
//! sender N as `[0100:0001::]:N`: C sees `ip` "unix" and `port` N, and a
//! reply to that address goes to the sender's socket address.

use crate::error::{Code, Error, Result};
use std::net::{Ipv6Addr, SocketAddr};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::{SocketAddr as UnixAddr, UnixDatagram, UnixListener, UnixStream};
use std::path::{Path, PathBuf};

/// What starts a local address.
pub const PREFIX: &str = "unix:";
/// Longest path or abstract name (`sun_path` holds 108 bytes with the NUL).
const PATH_MAX: usize = 107;

/// Where a local socket lives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Place {
    /// A socket file.
    Path(PathBuf),
    /// A name in Linux's abstract namespace (`unix:@NAME`).
    Abstract(String),
}

impl Place {
    /// `unix:PATH` / `unix:@NAME` -> Some(place); any other host -> None.
    pub fn parse(host: &str) -> Option<Result<Place>> {
        let rest = host.strip_prefix(PREFIX)?;
        let bad = |why: &str| Some(Err(Error::new(Code::Addr, format!("\"{host}\": {why}"))));
        if rest.len() > PATH_MAX {
            return bad(&format!("a unix socket path is at most {PATH_MAX} bytes"));
        }
        if rest.contains('\0') {
            return bad("a unix socket path cannot hold a NUL byte");
        }
        match rest.strip_prefix('@') {
            Some("") => bad("an abstract socket needs a name after @"),
            Some(name) => Some(Ok(Place::Abstract(name.into()))),
            None if rest.is_empty() => bad("a unix socket needs a path after unix:"),
            None => Some(Ok(Place::Path(rest.into()))),
        }
    }

    fn addr(&self) -> Result<UnixAddr> {
        match self {
            Place::Path(p) => UnixAddr::from_pathname(p),
            Place::Abstract(n) => UnixAddr::from_abstract_name(n.as_bytes()),
        }
        .map_err(|e| Error::io(format!("address {self}"), &e))
    }
}

impl std::fmt::Display for Place {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Place::Path(p) => write!(f, "{PREFIX}{}", p.display()),
            Place::Abstract(n) => write!(f, "{PREFIX}@{n}"),
        }
    }
}

/// The socket file a listener made: removed when this is dropped, unless
/// it was replaced meanwhile (another server's file is left alone).
#[derive(Debug)]
pub struct SocketFile {
    path: PathBuf,
    id: (u64, u64),
}

impl Drop for SocketFile {
    fn drop(&mut self) {
        if std::fs::symlink_metadata(&self.path).is_ok_and(|m| (m.dev(), m.ino()) == self.id) {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// A listening local stream socket and the file it owns (none for an
/// abstract name).
#[derive(Debug)]
pub struct Listening {
    pub sock: UnixListener,
    pub file: Option<SocketFile>,
}

/// Binds and listens on `place`. A socket file left by a dead server is
/// replaced; one a live server answers on is `AddrInUse`. `mode` (e.g.
/// 0o660) sets the file's permissions right after the bind (a program
/// that must close even that window sets its umask first).
pub fn listen(place: &Place, mode: Option<u32>) -> Result<Listening> {
    let (sock, file) = bind_at(place, mode, UnixListener::bind_addr)?;
    Ok(Listening { sock, file })
}

/// A datagram socket bound to `place` (the socket file handled as by
/// [`listen`]), and the file it owns.
pub fn bind_datagram(place: &Place, mode: Option<u32>) -> Result<(UnixDatagram, Option<SocketFile>)> {
    bind_at(place, mode, UnixDatagram::bind_addr)
}

/// A datagram socket connected to `place`, bound so that replies can come
/// back: to a temporary socket file of its own (`$TMPDIR/sockflow-PID-N.sock`,
/// removed with the returned [`SocketFile`]) when the server is a file,
/// and to an abstract name the kernel picks (autobind: nothing to remove)
/// when the server is abstract, or when the temporary path would not fit
/// in `sun_path`. A file peer gets a file because a server sees the
/// client's address as the client's own kind of name (a server in another
/// network namespace cannot answer an abstract name).
pub fn connect_datagram(place: &Place) -> Result<(UnixDatagram, Option<SocketFile>)> {
    let (s, file) = match temp_place(place) {
        Some(me) => {
            let (s, file) = bind_at(&me, None, UnixDatagram::bind_addr)?;
            (s, file)
        }
        None => {
            let s = UnixDatagram::unbound().map_err(|e| Error::io("socket", &e))?;
            nix::sys::socket::bind(s.as_raw_fd(), &nix::sys::socket::UnixAddr::new_unnamed())
                .map_err(|e| Error::errno("bind (autobind)", e))?;
            (s, None)
        }
    };
    s.connect_addr(&place.addr()?).map_err(|e| Error::io(format!("connect {place}"), &e))?;
    Ok((s, file))
}

/// The temporary socket file a datagram client of `server` binds: None
/// for an abstract server, or when the path is too long.
fn temp_place(server: &Place) -> Option<Place> {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let Place::Path(_) = server else { return None };
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let p = std::env::temp_dir().join(format!("sockflow-{}-{n}.sock", std::process::id()));
    (p.as_os_str().len() <= PATH_MAX).then_some(Place::Path(p))
}

/// Binds with `bind`, replacing a stale socket file; sets `mode`.
fn bind_at<T>(place: &Place, mode: Option<u32>, bind: impl Fn(&UnixAddr) -> std::io::Result<T>) -> Result<(T, Option<SocketFile>)> {
    let addr = place.addr()?;
    let sock = match bind(&addr) {
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
            let Place::Path(p) = place else { return Err(in_use(place)) };
            clear_stale(place, p)?;
            bind(&addr)
        }
        r => r,
    }
    .map_err(|e| Error::io(format!("bind {place}"), &e))?;
    let file = match place {
        Place::Path(p) => {
            let m = std::fs::symlink_metadata(p).map_err(|e| Error::io(format!("stat {place}"), &e))?;
            let file = SocketFile { path: p.clone(), id: (m.dev(), m.ino()) };
            if let Some(mode) = mode {
                std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode))
                    .map_err(|e| Error::io(format!("chmod {mode:o} {place}"), &e))?;
            }
            Some(file)
        }
        Place::Abstract(_) => None,
    };
    Ok((sock, file))
}

fn in_use(place: &Place) -> Error {
    Error::new(Code::AddrInUse, format!("bind {place}: a server is already listening there"))
}

/// `p` exists: removes it if it is a socket nobody listens on.
fn clear_stale(place: &Place, p: &Path) -> Result<()> {
    let m = std::fs::symlink_metadata(p).map_err(|e| Error::io(format!("stat {place}"), &e))?;
    if !m.file_type().is_socket() {
        return Err(Error::new(Code::AddrInUse, format!("bind {place}: the path exists and is not a socket (left alone)")));
    }
    match UnixStream::connect(p) {
        // EPROTOTYPE: a datagram socket is bound there.
        Ok(_) => Err(in_use(place)),
        Err(e) if e.raw_os_error() == Some(libc::EPROTOTYPE) => Err(in_use(place)),
        Err(e) if e.raw_os_error() == Some(libc::ECONNREFUSED) => {
            std::fs::remove_file(p).map_err(|e| Error::io(format!("remove stale {place}"), &e))
        }
        Err(e) => Err(Error::io(format!("bind {place}: probe the existing socket"), &e)),
    }
}

/// `place`, when no port came with it (callers taking a host and a port
/// pass 0 for a local socket).
pub fn no_port(place: Place, port: u16) -> Result<Place> {
    if port != 0 {
        return Err(Error::new(Code::Addr, format!("{place}: a unix socket has no port (pass 0, not {port})")));
    }
    Ok(place)
}

/// Connects a stream socket to `place`.
pub fn connect(place: &Place) -> Result<UnixStream> {
    UnixStream::connect_addr(&place.addr()?).map_err(|e| Error::io(format!("connect {place}"), &e))
}

/// Starts connecting a non-blocking stream socket to `place`, for an
/// event loop: the socket as the TCP types carry it (see the module doc).
/// A local connect is done at once, or refused at once; only a listener
/// whose backlog is full gives `EAGAIN`, reported as an error.
pub fn connect_nonblocking(place: &Place) -> Result<std::net::TcpStream> {
    let s = mio::net::UnixStream::connect_addr(&place.addr()?).map_err(|e| Error::io(format!("connect {place}"), &e))?;
    Ok(std::net::TcpStream::from(OwnedFd::from(s)))
}

/// The reserved block (`0100:0000::/32`) local peers are written in.
const MARK: u32 = 0x0100_0000;

/// The credentials of the process at the other end of a local socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cred {
    pub pid: u32,
    pub uid: u32,
    pub gid: u32,
}

/// The peer of a connected local socket, as the core carries peers (see
/// the module doc); unknown credentials read as zeros.
pub fn peer_addr(fd: impl AsFd) -> SocketAddr {
    let c = nix::sys::socket::getsockopt(&fd, nix::sys::socket::sockopt::PeerCredentials).ok();
    let (pid, uid, gid) = c.map_or((0, 0, 0), |c| (c.pid() as u32, c.uid(), c.gid()));
    cred_addr(Cred { pid, uid, gid })
}

/// A local peer with credentials `c`, as the core carries peers (a peer
/// not connected yet: all zeros).
pub fn cred_addr(c: Cred) -> SocketAddr {
    let bits = (u128::from(MARK) << 96) | (u128::from(c.pid) << 64) | (u128::from(c.uid) << 32) | u128::from(c.gid);
    SocketAddr::new(Ipv6Addr::from(bits).into(), 0)
}

/// The credentials written in a local peer's address; None for an IP peer.
pub fn cred(peer: SocketAddr) -> Option<Cred> {
    let SocketAddr::V6(a) = peer else { return None };
    let bits = u128::from(*a.ip());
    ((bits >> 96) as u32 == MARK && a.port() == 0).then_some(Cred { pid: (bits >> 64) as u32, uid: (bits >> 32) as u32, gid: bits as u32 })
}

/// The block local datagram senders are written in (`0100:0001::`, the
/// port their number).
const SENDER: u32 = 0x0100_0001;
/// Most senders a local datagram socket remembers: beyond, the oldest
/// number is given to the next new sender.
pub(crate) const SENDERS: u16 = 4096;

/// A local datagram socket's senders. A datagram's sender is a socket
/// address (a path, an abstract name), not an IP and port, so each one
/// heard gets a number, 1 to `SENDERS` (4096), written as the port of a
/// `SocketAddr` in a reserved block: the core carries it like any sender,
/// and a reply to it goes to the address the number stands for.
#[derive(Debug, Default)]
pub struct Senders {
    by_addr: std::collections::HashMap<nix::sys::socket::UnixAddr, u16>,
    /// Index n-1: the address of sender n.
    addrs: Vec<nix::sys::socket::UnixAddr>,
    /// The number the next new sender takes once every one is in use.
    next: usize,
}

impl Senders {
    /// The `SocketAddr` standing for sender `a` (numbered when new).
    pub fn heard(&mut self, a: &nix::sys::socket::UnixAddr) -> SocketAddr {
        let n = match self.by_addr.get(a) {
            Some(&n) => n,
            None => {
                let n = if self.addrs.len() < usize::from(SENDERS) {
                    self.addrs.push(*a);
                    self.addrs.len()
                } else {
                    let i = self.next;
                    self.next = (i + 1) % self.addrs.len();
                    self.by_addr.remove(&self.addrs[i]);
                    self.addrs[i] = *a;
                    i + 1
                } as u16;
                self.by_addr.insert(*a, n);
                n
            }
        };
        sender_addr(n)
    }

    /// The address sender `peer` stands for; None for any other address.
    pub fn addr_of(&self, peer: SocketAddr) -> Option<nix::sys::socket::UnixAddr> {
        let n = sender(peer)?;
        self.addrs.get(usize::from(n).checked_sub(1)?).copied()
    }
}

/// The `SocketAddr` of local datagram sender `n`.
pub fn sender_addr(n: u16) -> SocketAddr {
    SocketAddr::new(Ipv6Addr::from(u128::from(SENDER) << 96).into(), n)
}

/// The number of a local datagram sender's `SocketAddr`; None for others.
pub fn sender(peer: SocketAddr) -> Option<u16> {
    let SocketAddr::V6(a) = peer else { return None };
    (u128::from(*a.ip()) == u128::from(SENDER) << 96 && a.port() != 0).then_some(a.port())
}

/// What a datagram socket on a local address keeps besides the socket
/// (the blocking `Udp`, the event-loop server's): its senders and file.
#[derive(Debug)]
pub struct LocalDatagram {
    senders: std::sync::Mutex<Senders>,
    /// The socket file, removed with the socket.
    _file: Option<SocketFile>,
}

impl LocalDatagram {
    pub fn new(file: Option<SocketFile>) -> LocalDatagram {
        LocalDatagram { senders: Default::default(), _file: file }
    }

    fn senders(&self) -> std::sync::MutexGuard<'_, Senders> {
        self.senders.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// One `recvmsg` on `fd` (EINTR and EAGAIN left to the caller): the
    /// datagram's full length (MSG_TRUNC: more than `buf.len()` when it was
    /// cut) and its sender's number.
    pub fn recv_from(&self, fd: std::os::fd::RawFd, buf: &mut [u8]) -> nix::Result<(usize, Option<SocketAddr>)> {
        use nix::sys::socket::{recvmsg, MsgFlags, UnixAddr};
        let mut iov = [std::io::IoSliceMut::new(buf)];
        let m = recvmsg::<UnixAddr>(fd, &mut iov, None, MsgFlags::MSG_TRUNC)?;
        Ok((m.bytes, m.address.as_ref().map(|a| self.senders().heard(a))))
    }

    /// The `SocketAddr` standing for sender `a` (numbered when new).
    pub(crate) fn sender(&self, a: &nix::sys::socket::UnixAddr) -> SocketAddr {
        self.senders().heard(a)
    }

    /// The address sender number `to` stands for, if this socket knows it.
    pub(crate) fn addr_of(&self, to: SocketAddr) -> Option<nix::sys::socket::UnixAddr> {
        self.senders().addr_of(to)
    }

    /// Sends `data` on `fd` to the sender numbered `to`; `ENOENT` for a
    /// number this socket does not know (never heard, or forgotten).
    pub fn send_to(&self, fd: std::os::fd::RawFd, data: &[u8], to: SocketAddr) -> nix::Result<usize> {
        let a = self.senders().addr_of(to).ok_or(nix::errno::Errno::ENOENT)?;
        nix::sys::socket::sendto(fd, data, &a, nix::sys::socket::MsgFlags::MSG_NOSIGNAL)
    }
}

/// The socket as the TCP types carry it (see the module doc).
pub fn as_tcp(s: UnixStream) -> std::net::TcpStream {
    std::net::TcpStream::from(OwnedFd::from(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_paths_and_abstract_names() {
        assert_eq!(Place::parse("127.0.0.1"), None);
        assert_eq!(Place::parse("unix:/tmp/a.sock").unwrap().unwrap(), Place::Path("/tmp/a.sock".into()));
        assert_eq!(Place::parse("unix:@app").unwrap().unwrap(), Place::Abstract("app".into()));
        for bad in ["unix:", "unix:@", &format!("unix:{}", "a".repeat(108))] {
            assert_eq!(Place::parse(bad).unwrap().unwrap_err().code, Code::Addr, "{bad}");
        }
        assert_eq!(Place::parse("unix:@app").unwrap().unwrap().to_string(), "unix:@app");
    }

    #[test]
    fn senders_are_numbered_and_the_oldest_number_reused_when_full() {
        let name = |i: usize| nix::sys::socket::UnixAddr::new_abstract(format!("s{i}").as_bytes()).unwrap();
        let mut t = Senders::default();
        let first = t.heard(&name(0));
        assert_eq!(sender(first), Some(1));
        assert_eq!(t.heard(&name(0)), first, "a sender keeps its number");
        assert_eq!(cred(first), None);
        for i in 1..usize::from(SENDERS) {
            t.heard(&name(i));
        }
        assert_eq!(t.addr_of(sender_addr(SENDERS)), Some(name(usize::from(SENDERS) - 1)));
        // Full: the next new sender takes number 1; the old one is forgotten.
        assert_eq!(sender(t.heard(&name(99_999))), Some(1));
        assert_eq!(t.addr_of(first), Some(name(99_999)));
        assert_eq!(sender(t.heard(&name(0))), Some(2));
        assert_eq!(t.addr_of("[::1]:1".parse().unwrap()), None);
    }

    #[test]
    fn credentials_round_trip_and_ip_peers_have_none() {
        let (a, _b) = UnixStream::pair().unwrap();
        let c = cred(peer_addr(&a)).unwrap();
        assert_eq!(c.pid, std::process::id());
        // /proc/self belongs to the process's own (effective) uid and gid.
        let me = std::fs::metadata("/proc/self").unwrap();
        assert_eq!((c.uid, c.gid), (me.uid(), me.gid()));
        assert_eq!(cred("[::1]:0".parse().unwrap()), None);
        assert_eq!(cred("127.0.0.1:5".parse().unwrap()), None);
    }
}
