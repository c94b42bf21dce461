//! Opening many connections that each echoed once, then hold still: the
//! set-up of every TCP generator and the idle-memory scenarios.
//!
//! Connections are opened in batches of `BATCH` (below every server's
//! listen backlog of 128, so no SYN is dropped and retried): connect the
//! batch, send on each, read each echo back. Beyond one source address's
//! ~28,000 ephemeral ports, connections come from several source addresses
//! in 127.0.0.0/8, in turn (`IP_BIND_ADDRESS_NO_PORT`, so the port is
//! picked per destination at connect time).

use super::IO_TIMEOUT;
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::os::fd::FromRawFd;
use std::time::{Duration, Instant};

/// Connections opened (and echoed once) per batch.
const BATCH: usize = 100;

/// Most connections per source address (below the 28,232 ephemeral ports
/// of the default range).
pub const PER_SOURCE: usize = 20_000;

pub struct Opened {
    pub conns: Vec<TcpStream>,
    /// Why fewer than asked were opened.
    pub error: Option<String>,
}

/// How many source addresses `n` connections need: 127.0.0.1 alone up to
/// `PER_SOURCE`, else 127.0.0.1, 127.0.0.2, ...
pub fn sources(n: usize) -> u8 {
    n.div_ceil(PER_SOURCE).clamp(1, 200) as u8
}

/// The source address of connection `i` of a set using `sources` addresses.
fn source(i: usize, sources: u8) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, 0, 1 + (i % sources as usize) as u8)
}

/// A blocking connection from `src` (port picked by the kernel) to `dst`,
/// within `IO_TIMEOUT`.
pub fn connect_from(src: Ipv4Addr, dst: SocketAddr) -> io::Result<TcpStream> {
    if src == Ipv4Addr::LOCALHOST {
        return TcpStream::connect_timeout(&dst, IO_TIMEOUT);
    }
    let SocketAddr::V4(dst) = dst else { return Err(io::Error::other("IPv4 only")) };
    let sin = |ip: Ipv4Addr, port: u16| libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: port.to_be(),
        sin_addr: libc::in_addr { s_addr: u32::from(ip).to_be() },
        sin_zero: [0; 8],
    };
    let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
    // SAFETY: plain socket calls on a descriptor this function owns; it is
    // closed on every error path (by the TcpStream that takes it at once).
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK, 0);
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let stream = TcpStream::from_raw_fd(fd);
        let one: libc::c_int = 1;
        libc::setsockopt(fd, libc::IPPROTO_IP, libc::IP_BIND_ADDRESS_NO_PORT, (&one as *const libc::c_int).cast(), 4);
        let a = sin(src, 0);
        if libc::bind(fd, (&a as *const libc::sockaddr_in).cast(), len) != 0 {
            return Err(io::Error::last_os_error());
        }
        let d = sin(*dst.ip(), dst.port());
        if libc::connect(fd, (&d as *const libc::sockaddr_in).cast(), len) != 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::EINPROGRESS) {
                return Err(e);
            }
            let mut p = libc::pollfd { fd, events: libc::POLLOUT, revents: 0 };
            if libc::poll(&mut p, 1, IO_TIMEOUT.as_millis() as libc::c_int) != 1 {
                return Err(io::Error::new(io::ErrorKind::TimedOut, "connect timed out"));
            }
            if let Some(e) = stream.take_error()? {
                return Err(e);
            }
        }
        stream.set_nonblocking(false)?;
        Ok(stream)
    }
}

/// Opens `n` blocking connections to `addr`, from `sources` source
/// addresses in turn, each having sent `data` and read its echo. Stops at
/// the first failure or after `limit`.
pub fn open_echoed(addr: SocketAddr, n: usize, sources: u8, data: &[u8], limit: Duration) -> Opened {
    let deadline = Instant::now() + limit;
    let mut conns: Vec<TcpStream> = Vec::with_capacity(n);
    while conns.len() < n {
        if Instant::now() >= deadline {
            return Opened { error: Some(format!("time limit of {limit:?} reached")), conns };
        }
        let start = conns.len();
        for _ in 0..BATCH.min(n - start) {
            let i = conns.len();
            let src = source(i, sources);
            match connect_from(src, addr) {
                Ok(s) => conns.push(s),
                Err(e) => return Opened { error: Some(format!("connect #{} from {src}: {e}", i + 1)), conns },
            }
        }
        if let Err(e) = echo_each(&mut conns[start..], data) {
            return Opened { error: Some(format!("{e} (batch from connection #{})", start + 1)), conns };
        }
    }
    Opened { conns, error: None }
}

/// Sends `data` on every connection, then reads every echo back (bounded:
/// `IO_TIMEOUT` per socket operation).
pub fn echo_each(conns: &mut [TcpStream], data: &[u8]) -> Result<(), String> {
    let mut echo = vec![0u8; data.len()];
    for (i, s) in conns.iter_mut().enumerate() {
        let sent = s.set_read_timeout(Some(IO_TIMEOUT)).and_then(|_| s.set_write_timeout(Some(IO_TIMEOUT))).and_then(|_| s.write_all(data));
        sent.map_err(|e| format!("send on connection #{}: {e}", i + 1))?;
    }
    for (i, s) in conns.iter_mut().enumerate() {
        s.read_exact(&mut echo).map_err(|e| format!("echo on connection #{}: {e}", i + 1))?;
        if echo != data {
            return Err(format!("connection #{}: wrong echo", i + 1));
        }
    }
    Ok(())
}
