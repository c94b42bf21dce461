//! The core's raw OS calls: the only module outside `ffi` where `unsafe` is
//! allowed (the crate root denies it everywhere else, and
//! `tests/guarantees.rs` checks that no other module lifts the ban). Each
//! function is a safe wrapper whose doc comment says why it is sound, so the
//! rest of the core stays safe Rust over `std`, `nix` and `mio`.

use nix::sys::socket::{SockaddrIn, SockaddrIn6, SockaddrLike, SockaddrStorage};
use std::mem::MaybeUninit;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};

/// Bytes sent on a TCP socket that the peer has not acknowledged yet
/// (SIOCOUTQ); 0 when unknown. A graceful close may drop the socket once
/// this is 0: the peer has everything.
///
/// Sound for any `fd`, valid or not: SIOCOUTQ (the same request number as
/// TIOCOUTQ) writes one `int` through the pointer, which points at a live,
/// aligned local; a bad or foreign descriptor only makes the call fail.
pub fn unacked(fd: RawFd) -> usize {
    let mut n: libc::c_int = 0;
    // SAFETY: see the doc comment: the one write goes to `n`.
    let r = unsafe { libc::ioctl(fd, libc::TIOCOUTQ, &mut n) };
    if r < 0 {
        0
    } else {
        n.max(0) as usize
    }
}

/// Whether O_NONBLOCK is set on `fd` (false when the flags cannot be read).
///
/// Sound without `unsafe`: F_GETFL only reads the descriptor's flags, and
/// `nix` checks the result; it lives here because it is a raw flag query.
pub fn is_nonblocking(fd: BorrowedFd<'_>) -> bool {
    nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_GETFL).is_ok_and(|fl| fl & libc::O_NONBLOCK != 0)
}

/// Most datagrams one [`Datagrams::recv`] or [`send_batch`] call moves.
pub(crate) const BATCH: usize = 64;

/// Receive slots for `recvmmsg`: up to [`BATCH`] datagrams per system call,
/// each into a buffer of its own, with its sender's address. Everything is
/// allocated once here; a receive allocates nothing. The slots are one
/// zeroed allocation, so (for a large one, which the allocator maps fresh)
/// only the pages datagrams actually land on are ever touched. The default
/// has no slot (a placeholder: it receives nothing).
#[derive(Default)]
pub struct Datagrams {
    bufs: Vec<u8>,
    size: usize,
    addrs: Vec<libc::sockaddr_storage>,
    /// Per slot of the last receive: the datagram's full length (asked
    /// with MSG_TRUNC: more than `size` when it was cut) and the address's.
    got: Vec<(usize, libc::socklen_t)>,
}

/// One datagram of the last [`Datagrams::recv`].
pub struct Received<'a> {
    /// Its bytes, at most the slot size.
    pub data: &'a [u8],
    /// Its full length: more than `data.len()` when the slot was too small.
    pub len: usize,
    /// Its sender.
    pub from: Sender,
}

/// Who sent a received datagram.
pub enum Sender {
    /// An IPv4 or IPv6 address (read straight from the kernel's bytes: no
    /// detour through a 128-byte `SockaddrStorage` per datagram).
    Ip(SocketAddr),
    /// Any other kind (a local socket's).
    Other(SockaddrStorage),
    /// The kernel gave no address.
    None,
}

impl Datagrams {
    /// `slots` (1 to [`BATCH`]) buffers of `size` (at least 1) bytes.
    pub fn new(slots: usize, size: usize) -> Datagrams {
        let (slots, size) = (slots.clamp(1, BATCH), size.max(1));
        // SAFETY: sockaddr_storage is plain integers: all zeroes is valid.
        let zero: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
        Datagrams { bufs: vec![0; slots * size], size, addrs: vec![zero; slots], got: vec![(0, 0); slots] }
    }

    /// How many datagrams one receive can take.
    pub fn slots(&self) -> usize {
        self.addrs.len()
    }

    /// One `recvmmsg` on `fd` of at most `max` datagrams (and the slots):
    /// how many came. Does not wait (`MSG_DONTWAIT`): `WouldBlock` when
    /// there are none; `Interrupted` is the caller's to retry. Fewer than
    /// asked means the socket was emptied, or an error follows on the next
    /// call (the kernel keeps it).
    ///
    /// Sound: every header points at slot `i`'s buffer (`size` bytes inside
    /// `bufs`) and address (`sockaddr_storage`), all owned by `self`, which
    /// is borrowed mutably for the call; `vlen` is at most the number of
    /// headers. The kernel writes only within those lengths, and reports
    /// lengths we read back as integers.
    pub fn recv(&mut self, fd: BorrowedFd<'_>, max: usize) -> std::io::Result<usize> {
        let n = max.min(self.slots());
        if n == 0 {
            return Ok(0);
        }
        // Only the headers used are written (zeroing all BATCH of them
        // costs more than the rest of a small batch).
        let mut hdrs = [const { MaybeUninit::<libc::mmsghdr>::uninit() }; BATCH];
        let mut iovs = [const { MaybeUninit::<libc::iovec>::uninit() }; BATCH];
        let slots = self.bufs.chunks_exact_mut(self.size).zip(self.addrs.iter_mut());
        for ((h, iov), (buf, addr)) in hdrs.iter_mut().zip(iovs.iter_mut()).zip(slots).take(n) {
            let iov = iov.write(libc::iovec { iov_base: buf.as_mut_ptr().cast(), iov_len: buf.len() });
            // Reset each time: the kernel writes back the length it used.
            let namelen = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            h.write(header(iov, (addr as *mut libc::sockaddr_storage).cast(), namelen));
        }
        let flags = libc::MSG_DONTWAIT | libc::MSG_TRUNC;
        // SAFETY: see the doc comment.
        let r = unsafe { libc::recvmmsg(fd.as_raw_fd(), hdrs.as_mut_ptr().cast(), n as libc::c_uint, flags, std::ptr::null_mut()) };
        if r < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let got = (r as usize).min(n);
        for (g, h) in self.got.iter_mut().zip(&hdrs[..got]) {
            // SAFETY: the first `n` headers were written above.
            let h = unsafe { h.assume_init_ref() };
            *g = (h.msg_len as usize, h.msg_hdr.msg_namelen);
        }
        Ok(got)
    }

    /// Datagram `i` (below what the last [`recv`](Datagrams::recv) returned).
    pub fn get(&self, i: usize) -> Received<'_> {
        let (len, namelen) = self.got[i];
        let data = &self.bufs[i * self.size..][..len.min(self.size)];
        Received { data, len, from: sender(&self.addrs[i], namelen) }
    }
}

/// The address the kernel wrote in `a` (`len` bytes of it).
///
/// Sound: a `sockaddr_storage` is aligned for, and larger than, both
/// `sockaddr_in` and `sockaddr_in6`, and every bit pattern of those plain
/// integer structs is valid; the family and length are checked first.
/// `from_raw` copies at most a storage's size (it refuses more).
fn sender(a: &libc::sockaddr_storage, len: libc::socklen_t) -> Sender {
    let p: *const libc::sockaddr_storage = a;
    let fits = |size: usize| len as usize >= size;
    match i32::from(a.ss_family) {
        libc::AF_INET if fits(std::mem::size_of::<libc::sockaddr_in>()) => {
            // SAFETY: see the doc comment.
            let v4 = unsafe { &*p.cast::<libc::sockaddr_in>() };
            let ip = std::net::Ipv4Addr::from(u32::from_be(v4.sin_addr.s_addr));
            Sender::Ip(SocketAddr::new(ip.into(), u16::from_be(v4.sin_port)))
        }
        libc::AF_INET6 if fits(std::mem::size_of::<libc::sockaddr_in6>()) => {
            // SAFETY: see the doc comment.
            let v6 = unsafe { &*p.cast::<libc::sockaddr_in6>() };
            let ip = std::net::Ipv6Addr::from(v6.sin6_addr.s6_addr);
            // As std reads it: the flow label as it is, the scope id.
            Sender::Ip(std::net::SocketAddrV6::new(ip, u16::from_be(v6.sin6_port), v6.sin6_flowinfo, v6.sin6_scope_id).into())
        }
        // SAFETY: see the doc comment.
        _ => match unsafe { SockaddrStorage::from_raw(p.cast(), Some(len)) } {
            Some(a) => Sender::Other(a),
            None => Sender::None,
        },
    }
}

/// Where a queued datagram goes: an IP address, or the index of an
/// address kept aside (a local socket's, up to 110 bytes: kept out of the
/// queue, so queueing an IP reply moves 40 bytes rather than a 128-byte
/// `SockaddrStorage`).
#[derive(Clone, Copy, Debug)]
pub enum Dest {
    Ip(SocketAddr),
    Other(usize),
}

/// An IP destination as the kernel takes it, built on the stack per call.
enum IpRaw {
    V4(SockaddrIn),
    V6(SockaddrIn6),
}

/// Sends datagrams with one `sendmmsg` on `fd`: datagram `k` is the bytes
/// `data[at..at + len]` of `msgs[k] = (at, len, to)`, to `to` (an
/// [`Dest::Other`] indexes `others`; at most [`BATCH`] are tried). How many
/// went: fewer than given when the socket's buffer filled or the next one
/// fails (sending it alone gives its error); the first one's error when
/// none went. Does not wait (`MSG_DONTWAIT`); never raises SIGPIPE
/// (`MSG_NOSIGNAL`).
///
/// Sound: each header points at a range of `data` checked to lie inside it
/// and at an address that lives in `ips` (a local array not moved while
/// the pointers exist) or in `others`, borrowed for the call, with their
/// true lengths; the kernel only reads through them (and writes the
/// headers' `msg_len`, inside `hdrs`).
pub fn send_batch(fd: BorrowedFd<'_>, data: &[u8], msgs: &[(usize, usize, Dest)], others: &[SockaddrStorage]) -> std::io::Result<usize> {
    let n = msgs.len().min(BATCH);
    if n == 0 {
        return Ok(0);
    }
    let mut hdrs = [const { MaybeUninit::<libc::mmsghdr>::uninit() }; BATCH];
    let mut iovs = [const { MaybeUninit::<libc::iovec>::uninit() }; BATCH];
    let mut ips = [const { MaybeUninit::<IpRaw>::uninit() }; BATCH];
    let slots = hdrs.iter_mut().zip(iovs.iter_mut()).zip(ips.iter_mut());
    for (((h, iov), ip), (at, len, to)) in slots.zip(msgs).take(n) {
        let bytes = &data[*at..][..*len];
        let iov = iov.write(libc::iovec { iov_base: bytes.as_ptr().cast_mut().cast(), iov_len: bytes.len() });
        let (name, namelen) = match to {
            Dest::Ip(SocketAddr::V4(a)) => match ip.write(IpRaw::V4((*a).into())) {
                IpRaw::V4(a) => (a.as_ptr(), a.len()),
                IpRaw::V6(a) => (a.as_ptr(), a.len()),
            },
            Dest::Ip(SocketAddr::V6(a)) => match ip.write(IpRaw::V6((*a).into())) {
                IpRaw::V4(a) => (a.as_ptr(), a.len()),
                IpRaw::V6(a) => (a.as_ptr(), a.len()),
            },
            Dest::Other(i) => (others[*i].as_ptr(), others[*i].len()),
        };
        h.write(header(iov, name.cast_mut().cast(), namelen));
    }
    let flags = libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL;
    // SAFETY: see the doc comment.
    let r = unsafe { libc::sendmmsg(fd.as_raw_fd(), hdrs.as_mut_ptr().cast(), n as libc::c_uint, flags) };
    if r < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(r as usize)
}

/// A `recvmmsg`/`sendmmsg` header for one buffer and one address, with no
/// control data.
fn header(iov: &mut libc::iovec, name: *mut libc::c_void, namelen: libc::socklen_t) -> libc::mmsghdr {
    // SAFETY: mmsghdr is plain data (pointers and integers): all zeroes is
    // a valid value (null control buffer, no flags); fields set below.
    let mut h: libc::mmsghdr = unsafe { std::mem::zeroed() };
    h.msg_hdr.msg_iov = iov;
    h.msg_hdr.msg_iovlen = 1;
    h.msg_hdr.msg_name = name;
    h.msg_hdr.msg_namelen = namelen;
    h
}

/// Any socket address as a `SockaddrStorage` (nix has no conversion for
/// a `UnixAddr`).
///
/// Sound: `as_ptr` and `len` describe a live address of `a`, and
/// `from_raw` copies `len` bytes (refusing more than a storage holds).
pub fn storage(a: &impl SockaddrLike) -> Option<SockaddrStorage> {
    // SAFETY: see the doc comment.
    unsafe { SockaddrStorage::from_raw(a.as_ptr(), Some(a.len())) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::os::fd::{AsFd, AsRawFd};
    use std::time::{Duration, Instant};

    /// Batches in and out on loopback: every datagram in order with its
    /// sender, a datagram longer than its slot reported at its full length,
    /// and a sender address longer than the one the slot held before read
    /// whole (the kernel writes back the length it used: it must be reset
    /// before each call).
    #[test]
    fn datagrams_come_in_batches_with_their_senders() {
        use std::os::linux::net::SocketAddrExt;
        use std::os::unix::net::UnixDatagram;
        let srv = UnixDatagram::bind_addr(
            &std::os::unix::net::SocketAddr::from_abstract_name(format!("sockflow-sys-{}", std::process::id())).unwrap(),
        )
        .unwrap();
        let to = srv.local_addr().unwrap();
        let short = UnixDatagram::bind_addr(&std::os::unix::net::SocketAddr::from_abstract_name("s").unwrap()).unwrap();
        let long = UnixDatagram::bind_addr(
            &std::os::unix::net::SocketAddr::from_abstract_name(format!("a-much-longer-name-{}", std::process::id())).unwrap(),
        )
        .unwrap();
        let mut d = Datagrams::new(4, 16);
        let name = |r: &Received<'_>| match &r.from {
            Sender::Other(a) => a.as_unix_addr().and_then(|u| u.as_abstract().map(<[u8]>::to_vec)),
            _ => None,
        };
        for k in 0..3u8 {
            short.send_to_addr(&[k; 3], &to).unwrap();
        }
        short.send_to_addr(&[9; 40], &to).unwrap();
        assert_eq!(d.recv(srv.as_fd(), 64).unwrap(), 4);
        for k in 0..3u8 {
            let r = d.get(usize::from(k));
            assert_eq!((r.data, r.len), (&[k; 3][..], 3));
            assert_eq!(name(&r).as_deref(), Some(&b"s"[..]));
        }
        assert_eq!((d.get(3).data.len(), d.get(3).len), (16, 40), "cut to the slot, full length reported");
        long.send_to_addr(b"x", &to).unwrap();
        assert_eq!(d.recv(srv.as_fd(), 64).unwrap(), 1);
        let want = format!("a-much-longer-name-{}", std::process::id()).into_bytes();
        assert_eq!(name(&d.get(0)), Some(want));
        // Empty: WouldBlock, not a wait.
        assert_eq!(d.recv(srv.as_fd(), 64).unwrap_err().kind(), std::io::ErrorKind::WouldBlock);
        // Out: two datagrams to two addresses in one call.
        let others: Vec<_> = [&short, &long]
            .iter()
            .map(|s| {
                let a = nix::sys::socket::getsockname::<nix::sys::socket::UnixAddr>(s.as_raw_fd()).unwrap();
                storage(&a).unwrap()
            })
            .collect();
        let data = b"onetwo";
        assert_eq!(send_batch(srv.as_fd(), data, &[(0, 3, Dest::Other(0)), (3, 3, Dest::Other(1))], &others).unwrap(), 2);
        let mut buf = [0u8; 8];
        assert_eq!(short.recv(&mut buf).unwrap(), 3);
        assert_eq!(&buf[..3], b"one");
        assert_eq!(long.recv(&mut buf).unwrap(), 3);
        assert_eq!(&buf[..3], b"two");
    }

    /// An IPv4 sender is read straight from the kernel's bytes.
    #[test]
    fn ip_senders_are_read_back() {
        let srv = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        srv.set_nonblocking(true).unwrap();
        let c = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        c.send_to(b"hi", srv.local_addr().unwrap()).unwrap();
        let mut d = Datagrams::new(2, 64);
        let deadline = Instant::now() + Duration::from_secs(30);
        let n = loop {
            match d.recv(srv.as_fd(), 2) {
                Ok(n) => break n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock && Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(5))
                }
                Err(e) => panic!("recv: {e}"),
            }
        };
        assert_eq!(n, 1);
        let r = d.get(0);
        assert_eq!(r.data, b"hi");
        assert!(matches!(r.from, Sender::Ip(a) if a == c.local_addr().unwrap()));
    }

    #[test]
    fn nonblocking_flag_is_read_back() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        assert!(!is_nonblocking(l.as_fd()));
        l.set_nonblocking(true).unwrap();
        assert!(is_nonblocking(l.as_fd()));
    }

    #[test]
    fn unacked_counts_what_the_peer_has_not_taken() {
        assert_eq!(unacked(-1), 0, "a bad descriptor is unknown: 0");
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (mut s, _) = l.accept().unwrap();
        // Fill the send queue while the peer reads nothing: what is queued
        // is not acknowledged, so the count cannot be 0.
        c.set_nonblocking(true).unwrap();
        let chunk = [7u8; 65536];
        let mut queued = 0usize;
        for _ in 0..4096 {
            match c.write(&chunk) {
                Ok(n) => queued += n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) => panic!("write: {e}"),
            }
        }
        assert!(queued > 0);
        assert!(unacked(c.as_raw_fd()) > 0, "{queued} bytes queued, none reported unacknowledged");
        // Once the peer has read everything, all of it was acknowledged.
        let mut buf = vec![0u8; 65536];
        let mut got = 0usize;
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        while got < queued {
            got += s.read(&mut buf).unwrap();
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        while unacked(c.as_raw_fd()) != 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(unacked(c.as_raw_fd()), 0);
    }
}
