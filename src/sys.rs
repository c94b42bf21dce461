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

/// Whether a batch may send consecutive datagrams to one address as one
/// UDP GSO send (`UDP_SEGMENT`): the kernel then takes them through its
/// UDP and IP layers, and the device, once, and cuts them apart at the end
/// (on loopback, at the receiving socket) — per datagram, those layers are
/// most of what a small UDP reply costs, and `sendmmsg` alone still pays
/// them per datagram. The receiver gets the same datagrams, in order.
/// `Off` for local sockets, and for good once the kernel refused a joined
/// send (a device without checksum offload gives EIO; segments over the
/// route's MTU give EINVAL): the datagrams then go one header each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Gso {
    Try,
    Off,
}

/// Most datagrams in one GSO send (the kernel's UDP_MAX_SEGMENTS, 64 on
/// older kernels).
const GSO_SEGMENTS: usize = 64;

/// Most bytes in one GSO send: one UDP datagram's payload over IPv4.
const GSO_BYTES: usize = 65_507;

/// How many of `msgs`, from the first, can leave as one GSO send: to the
/// same IP address, laid end to end in the data, each as long as the first
/// except the last, which may be shorter (the kernel cuts at the first's
/// length), within the kernel's limits. 1 for a datagram that cannot be
/// joined (empty, or to a local socket); 0 for none.
pub fn gso_run(msgs: &[(usize, usize, Dest)]) -> usize {
    let Some(&(at, seg, first)) = msgs.first() else { return 0 };
    let Dest::Ip(to) = first else { return 1 };
    if seg == 0 {
        return 1;
    }
    let (mut n, mut end) = (1, at + seg);
    for &(a, len, d) in &msgs[1..] {
        let same = matches!(d, Dest::Ip(x) if x == to);
        if n == GSO_SEGMENTS || !same || a != end || len == 0 || len > seg || end - at + len > GSO_BYTES {
            break;
        }
        n += 1;
        end += len;
        if len < seg {
            break;
        }
    }
    n
}

/// A control message carrying a GSO segment size: the layout of
/// `CMSG_SPACE(2)` bytes (a `cmsghdr`, then the `u16` at `CMSG_DATA`,
/// padded to the header's alignment).
#[repr(C)]
struct SegmentSize {
    hdr: libc::cmsghdr,
    size: u16,
}

/// Sends datagrams with one `sendmmsg` on `fd`: datagram `k` is the bytes
/// `data[at..at + len]` of `msgs[k] = (at, len, to)`, to `to` (an
/// [`Dest::Other`] indexes `others`; at most [`BATCH`] headers are tried).
/// With `gso` at `Try`, each [`gso_run`] goes as one header; a refused
/// joined send turns `gso` `Off` and the call is made again without. How
/// many datagrams went: fewer than given when the socket's buffer filled
/// or the next one fails (sending it alone gives its error); the first
/// one's error when none went. Does not wait (`MSG_DONTWAIT`); never
/// raises SIGPIPE (`MSG_NOSIGNAL`).
///
/// Sound: each header points at a range of `data` (slicing checks it lies
/// inside), at an address that lives in `ips` (a local array not moved
/// while the pointers exist) or in `others`, borrowed for the call, and at
/// most at one control message in `segs` (local too, `CMSG_SPACE(2)`
/// bytes, written whole), all with their true lengths; the kernel only
/// reads through them (and writes the headers' `msg_len`, inside `hdrs`).
pub fn send_batch(
    fd: BorrowedFd<'_>,
    data: &[u8],
    msgs: &[(usize, usize, Dest)],
    others: &[SockaddrStorage],
    gso: &mut Gso,
) -> std::io::Result<usize> {
    let mut hdrs = [const { MaybeUninit::<libc::mmsghdr>::uninit() }; BATCH];
    let mut iovs = [const { MaybeUninit::<libc::iovec>::uninit() }; BATCH];
    let mut ips = [const { MaybeUninit::<IpRaw>::uninit() }; BATCH];
    let mut segs = [const { MaybeUninit::<SegmentSize>::uninit() }; BATCH];
    // Datagrams per header.
    let mut runs = [0usize; BATCH];
    let (mut k, mut i) = (0, 0);
    let slots = hdrs.iter_mut().zip(iovs.iter_mut()).zip(ips.iter_mut()).zip(segs.iter_mut()).zip(runs.iter_mut());
    for ((((h, iov), ip), seg), run) in slots {
        if i == msgs.len() {
            break;
        }
        *run = if *gso == Gso::Try { gso_run(&msgs[i..]) } else { 1 };
        let (at, size, to) = msgs[i];
        let end = msgs[i + *run - 1].0 + msgs[i + *run - 1].1;
        let bytes = &data[at..end];
        let iov = iov.write(libc::iovec { iov_base: bytes.as_ptr().cast_mut().cast(), iov_len: bytes.len() });
        let (name, namelen) = match to {
            Dest::Ip(SocketAddr::V4(a)) => match ip.write(IpRaw::V4(a.into())) {
                IpRaw::V4(a) => (a.as_ptr(), a.len()),
                IpRaw::V6(a) => (a.as_ptr(), a.len()),
            },
            Dest::Ip(SocketAddr::V6(a)) => match ip.write(IpRaw::V6(a.into())) {
                IpRaw::V4(a) => (a.as_ptr(), a.len()),
                IpRaw::V6(a) => (a.as_ptr(), a.len()),
            },
            Dest::Other(o) => (others[o].as_ptr(), others[o].len()),
        };
        let h = h.write(header(iov, name.cast_mut().cast(), namelen));
        if *run > 1 {
            // SAFETY: plain integer arithmetic on a constant.
            let (space, len) = unsafe { (libc::CMSG_SPACE(2), libc::CMSG_LEN(2)) };
            debug_assert_eq!(space as usize, std::mem::size_of::<SegmentSize>());
            // SAFETY: cmsghdr is plain integers: all zeroes is valid; its
            // fields are set below (zeroing also clears the padding).
            let mut c: SegmentSize = unsafe { std::mem::zeroed() };
            c.hdr.cmsg_len = len as _;
            c.hdr.cmsg_level = libc::SOL_UDP;
            c.hdr.cmsg_type = libc::UDP_SEGMENT;
            c.size = size as u16;
            h.msg_hdr.msg_control = (seg.write(c) as *mut SegmentSize).cast();
            h.msg_hdr.msg_controllen = space as _;
        }
        i += *run;
        k += 1;
    }
    if k == 0 {
        return Ok(0);
    }
    let flags = libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL;
    // SAFETY: see the doc comment.
    let r = unsafe { libc::sendmmsg(fd.as_raw_fd(), hdrs.as_mut_ptr().cast(), k as libc::c_uint, flags) };
    if r < 0 {
        let e = std::io::Error::last_os_error();
        let refused = matches!(e.raw_os_error(), Some(libc::EIO | libc::EINVAL | libc::ENOPROTOOPT | libc::EOPNOTSUPP));
        if runs[0] > 1 && refused {
            *gso = Gso::Off;
            return send_batch(fd, data, msgs, others, gso);
        }
        return Err(e);
    }
    Ok(runs[..(r as usize).min(k)].iter().sum())
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
        let mut gso = Gso::Try;
        assert_eq!(send_batch(srv.as_fd(), data, &[(0, 3, Dest::Other(0)), (3, 3, Dest::Other(1))], &others, &mut gso).unwrap(), 2);
        let mut buf = [0u8; 8];
        assert_eq!(short.recv(&mut buf).unwrap(), 3);
        assert_eq!(&buf[..3], b"one");
        assert_eq!(long.recv(&mut buf).unwrap(), 3);
        assert_eq!(&buf[..3], b"two");
    }

    /// Which queued datagrams may leave as one GSO send.
    #[test]
    fn gso_runs_join_equal_datagrams_to_one_address() {
        let a: SocketAddr = "127.0.0.1:9".parse().unwrap();
        let b: SocketAddr = "127.0.0.1:10".parse().unwrap();
        // Laid end to end from 0, each to `to`, of the given lengths.
        let lay = |lens: &[usize], to: SocketAddr| {
            let mut at = 0;
            lens.iter()
                .map(|&len| {
                    at += len;
                    (at - len, len, Dest::Ip(to))
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(gso_run(&[]), 0);
        assert_eq!(gso_run(&[(0, 3, Dest::Other(0)), (3, 3, Dest::Other(0))]), 1, "local sockets: never joined");
        assert_eq!(gso_run(&lay(&[0, 0], a)), 1, "an empty datagram is not a segment size");
        assert_eq!(gso_run(&lay(&[10; 70], a)), GSO_SEGMENTS);
        assert_eq!(gso_run(&lay(&[10, 10, 7, 10], a)), 3, "a shorter one ends the run");
        assert_eq!(gso_run(&lay(&[10, 12], a)), 1, "a longer one cannot follow");
        assert_eq!(gso_run(&lay(&[10, 0], a)), 1);
        assert_eq!(gso_run(&lay(&[10_000; 10], a)), 6, "at most one datagram's bytes");
        let mut two = lay(&[5, 5, 5], a);
        two[1].2 = Dest::Ip(b);
        assert_eq!(gso_run(&two), 1, "another address");
        let mut gap = lay(&[5, 5], a);
        gap[1].0 += 1;
        assert_eq!(gso_run(&gap), 1, "not end to end");
    }

    /// Receives one datagram on `s` (waiting up to 30 s): its bytes and,
    /// for a socket with UDP_GRO, the segment size it was joined at.
    fn recv_joined(s: &std::net::UdpSocket) -> (Vec<u8>, Option<u16>) {
        use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut buf = vec![0u8; 65_536];
        let mut space = nix::cmsg_space!(u16);
        let mut iov = [std::io::IoSliceMut::new(&mut buf)];
        let m = recvmsg::<SockaddrStorage>(s.as_raw_fd(), &mut iov, Some(&mut space), MsgFlags::empty()).unwrap();
        let seg = m.cmsgs().unwrap().find_map(|c| match c {
            ControlMessageOwned::UdpGroSegments(n) => Some(n as u16),
            _ => None,
        });
        let n = m.bytes;
        (buf[..n].to_vec(), seg)
    }

    /// Runs to one address leave joined (a receiver with UDP_GRO gets each
    /// run whole, with its segment size), a receiver without gets the same
    /// datagrams one by one, and a sender whose joined sends the kernel
    /// refuses (no checksums: EINVAL) falls back to one header each; over
    /// IPv4 and IPv6.
    #[test]
    fn runs_to_one_address_leave_as_one_gso_send() {
        runs_leave_joined("127.0.0.1:0");
        runs_leave_joined("[::1]:0");
    }

    fn runs_leave_joined(local: &str) {
        use nix::sys::socket::{setsockopt, sockopt::UdpGroSegment};
        let tx = std::net::UdpSocket::bind(local).unwrap();
        let gro = std::net::UdpSocket::bind(local).unwrap();
        setsockopt(&gro, UdpGroSegment, &true).unwrap();
        let plain = std::net::UdpSocket::bind(local).unwrap();
        plain.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let (g, p) = (Dest::Ip(gro.local_addr().unwrap()), Dest::Ip(plain.local_addr().unwrap()));
        let plan: Vec<(&[u8], Dest)> =
            vec![(b"aaaa", g), (b"bbbb", g), (b"cccc", g), (b"dd", g), (b"xyz", p), (b"uvw", p), (b"eeee", g), (b"ffff", g)];
        let mut data = Vec::new();
        let msgs: Vec<_> = plan
            .iter()
            .map(|(d, to)| {
                data.extend_from_slice(d);
                (data.len() - d.len(), d.len(), *to)
            })
            .collect();
        let mut gso = Gso::Try;
        assert_eq!(send_batch(tx.as_fd(), &data, &msgs, &[], &mut gso).unwrap(), 8);
        assert_eq!(gso, Gso::Try);
        assert_eq!(recv_joined(&gro), (b"aaaabbbbccccdd".to_vec(), Some(4)));
        assert_eq!(recv_joined(&gro), (b"eeeeffff".to_vec(), Some(4)));
        let mut buf = [0u8; 16];
        for want in [&b"xyz"[..], b"uvw"] {
            let n = plain.recv(&mut buf).unwrap();
            assert_eq!(&buf[..n], want, "cut apart again for a receiver without UDP_GRO");
        }
        // No UDP checksum on what it sends (SO_NO_CHECK; for IPv6,
        // UDP_NO_CHECK6_TX): the kernel refuses a joined send with EINVAL.
        let one: libc::c_int = 1;
        // (An IPv6 receiver takes datagrams without one only when told to.)
        let set = |s: &std::net::UdpSocket, level, name| {
            // SAFETY: a valid descriptor, and a pointer to a live int with its size.
            let r = unsafe { libc::setsockopt(s.as_raw_fd(), level, name, (&one as *const libc::c_int).cast(), 4) };
            assert_eq!(r, 0);
        };
        if tx.local_addr().unwrap().is_ipv4() {
            set(&tx, libc::SOL_SOCKET, libc::SO_NO_CHECK);
        } else {
            set(&tx, libc::SOL_UDP, libc::UDP_NO_CHECK6_TX);
            set(&gro, libc::SOL_UDP, libc::UDP_NO_CHECK6_RX);
        }
        assert_eq!(send_batch(tx.as_fd(), &data, &msgs, &[], &mut gso).unwrap(), 8);
        assert_eq!(gso, Gso::Off, "refused once: off for good");
        for want in [&b"aaaa"[..], b"bbbb", b"cccc", b"dd"] {
            assert_eq!(recv_joined(&gro), (want.to_vec(), None));
        }
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
