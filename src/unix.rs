//! Unix domain sockets: fast local IPC through the same flows as TCP.
//!
//! An address is written `unix:PATH` (a socket file) or `unix:@NAME`
//! (Linux's abstract namespace: no file, gone with its last socket) and
//! goes wherever a host goes; it has no port. The stream flows then run
//! over `AF_UNIX` stream sockets: once connected, a local stream socket
//! takes the same `send`/`recv`/`shutdown` calls as a TCP one, so the rest
//! of the library carries it in the TCP types (`TcpStream::from(OwnedFd)`)
//! and only binding, connecting and accepting differ, all of them here.
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

use crate::error::{Code, Error, Result};
use std::net::{Ipv6Addr, SocketAddr};
use std::os::fd::{AsFd, OwnedFd};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::{SocketAddr as UnixAddr, UnixListener, UnixStream};
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
    let addr = place.addr()?;
    let sock = match UnixListener::bind_addr(&addr) {
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
            let Place::Path(p) = place else { return Err(in_use(place)) };
            clear_stale(place, p)?;
            UnixListener::bind_addr(&addr)
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
    Ok(Listening { sock, file })
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
        Ok(_) => Err(in_use(place)),
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
    let bits = (u128::from(MARK) << 96) | (u128::from(pid) << 64) | (u128::from(uid) << 32) | u128::from(gid);
    SocketAddr::new(Ipv6Addr::from(bits).into(), 0)
}

/// The credentials written in a local peer's address; None for an IP peer.
pub fn cred(peer: SocketAddr) -> Option<Cred> {
    let SocketAddr::V6(a) = peer else { return None };
    let bits = u128::from(*a.ip());
    ((bits >> 96) as u32 == MARK && a.port() == 0).then_some(Cred { pid: (bits >> 64) as u32, uid: (bits >> 32) as u32, gid: bits as u32 })
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
