//! What the bench asks the operating system: CPU time (its own and a
//! server's), memory of a server, the descriptor limit, what machine this
//! is (for the report and BENCHMARKS.md), and batched datagram I/O for the
//! UDP generator.

use std::io;
use std::mem::MaybeUninit;
use std::os::fd::RawFd;
use std::process::Command;

/// Clock ticks per second, the unit of /proc/PID/stat's CPU times.
fn clock_ticks() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as f64
    } else {
        100.0
    }
}

/// CPU time of process `pid` so far (all its threads), in seconds: user
/// space and kernel (utime, stime), apart because the gap between two
/// servers doing the same system calls is in user space.
pub fn proc_cpu_seconds(pid: u32) -> (f64, f64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces): state is
    // field 3, utime 14, stime 15.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|s| s.parse::<u64>().ok()).unwrap_or(0);
    (ticks(11) as f64 / clock_ticks(), ticks(12) as f64 / clock_ticks())
}

/// VmRSS of process `pid`, in bytes (0 if it cannot be read).
pub fn proc_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|kb| kb.parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

fn tv(t: libc::timeval) -> f64 {
    t.tv_sec as f64 + t.tv_usec as f64 / 1e6
}

/// This process's CPU time (user + system, all threads), in seconds: the
/// load generator's cost.
pub fn self_cpu_seconds() -> f64 {
    // SAFETY: getrusage fills the struct it is given.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// Raises the descriptor limit to at least `want` if it can: the soft limit
/// up to the hard one, and the hard one too when this process may (root,
/// up to /proc/sys/fs/nr_open). Children inherit it. Returns the soft
/// limit now in force.
pub fn raise_nofile(want: u64) -> u64 {
    // SAFETY: plain getrlimit/setrlimit on a local struct.
    unsafe {
        let mut r = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) != 0 {
            return 0;
        }
        if r.rlim_cur >= want {
            return r.rlim_cur;
        }
        let nr_open = std::fs::read_to_string("/proc/sys/fs/nr_open").ok().and_then(|s| s.trim().parse::<u64>().ok()).unwrap_or(0);
        // First with the hard limit raised (root only), then within it.
        let raised = want.min(nr_open).max(r.rlim_max);
        for max in [raised, r.rlim_max] {
            let next = libc::rlimit { rlim_cur: want.min(max), rlim_max: max };
            if next.rlim_cur > r.rlim_cur && libc::setrlimit(libc::RLIMIT_NOFILE, &next) == 0 {
                return next.rlim_cur;
            }
        }
        r.rlim_cur
    }
}

/// The CPU model, from /proc/cpuinfo.
pub fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| s.lines().find_map(|l| l.strip_prefix("model name").map(|m| m.trim_start_matches([' ', '\t', ':']).to_string())))
        .unwrap_or_else(|| "unknown CPU".into())
}

/// "N CPUs (model), Linux x.y".
pub fn machine() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!("{cpus} CPUs ({}), Linux {}", cpu_model(), kernel.trim())
}

/// The 1, 5 and 15 minute load averages.
pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg").map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" ")).unwrap_or_default()
}

/// The current UTC time as `YYYY-MM-DD HH:MM UTC` (from `date`, to need no
/// calendar code here).
pub fn utc_now() -> String {
    Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown date".into())
}

/// The most datagrams one `send_copies` or `recv_batch` call moves (their
/// headers live on the stack).
pub const BATCH: usize = 64;

/// A header for one datagram through `iov`; only the headers a call uses
/// are written (zeroing all `BATCH` of them per call would cost more than
/// the bookkeeping it replaces).
fn mmsghdr(iov: *mut libc::iovec) -> libc::mmsghdr {
    // SAFETY: mmsghdr is plain data; all-zero is a valid (empty) header.
    let mut h: libc::mmsghdr = unsafe { std::mem::zeroed() };
    h.msg_hdr.msg_iov = iov;
    h.msg_hdr.msg_iovlen = 1;
    h
}

/// Sends `count` (at most `BATCH`) copies of a `size`-byte datagram on the
/// connected socket `fd`, `copies` holding at least that many back to
/// back: how many went. While `gso` holds, as one UDP GSO send
/// (`UDP_SEGMENT`): one trip through the sender's UDP and IP layers for
/// the lot, cut into `count` datagrams at the receiving socket, so a
/// server gets the same datagrams as from `count` sends; the kernel
/// refusing it (EIO, EINVAL: no GSO here) turns `gso` off. Else one
/// `sendmmsg`. One system call for a whole refill either way, so that the
/// generator costs less than the servers it loads.
pub fn send_copies(fd: RawFd, copies: &[u8], size: usize, count: usize, gso: &mut bool) -> io::Result<usize> {
    let count = count.min(BATCH).min(copies.len() / size.max(1));
    if count == 0 {
        return Ok(0);
    }
    if *gso {
        match send_joined(fd, &copies[..count * size], size) {
            Ok(_) => return Ok(count),
            Err(e) if matches!(e.raw_os_error(), Some(libc::EIO | libc::EINVAL | libc::ENOPROTOOPT)) => *gso = false,
            Err(e) => return Err(e),
        }
    }
    // Every header points at the same iovec: the kernel only reads it.
    let mut iov = libc::iovec { iov_base: copies.as_ptr() as *mut libc::c_void, iov_len: size };
    let mut hdrs = [const { MaybeUninit::<libc::mmsghdr>::uninit() }; BATCH];
    for h in &mut hdrs[..count] {
        h.write(mmsghdr(&mut iov));
    }
    // SAFETY: the first `count` headers are initialised and point at `iov`,
    // which points at `copies`; all outlive the call.
    let n = unsafe { libc::sendmmsg(fd, hdrs.as_mut_ptr().cast(), count as _, 0) };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// One `sendmsg` of `data` with a `UDP_SEGMENT` control message of `size`.
fn send_joined(fd: RawFd, data: &[u8], size: usize) -> io::Result<usize> {
    let mut iov = libc::iovec { iov_base: data.as_ptr() as *mut libc::c_void, iov_len: data.len() };
    // CMSG_SPACE(2) = 24 bytes, aligned for cmsghdr.
    let mut control = [0u64; 3];
    // SAFETY: msghdr is plain data; all-zero is a valid (empty) header.
    let mut m: libc::msghdr = unsafe { std::mem::zeroed() };
    m.msg_iov = &mut iov;
    m.msg_iovlen = 1;
    m.msg_control = control.as_mut_ptr().cast();
    // SAFETY: CMSG_SPACE is arithmetic on a constant.
    m.msg_controllen = unsafe { libc::CMSG_SPACE(2) } as _;
    // SAFETY: the control buffer is CMSG_SPACE(2) bytes and aligned, so
    // CMSG_FIRSTHDR gives its start and CMSG_DATA two writable bytes in it.
    let n = unsafe {
        let c = libc::CMSG_FIRSTHDR(&m);
        (*c).cmsg_level = libc::SOL_UDP;
        (*c).cmsg_type = libc::UDP_SEGMENT;
        (*c).cmsg_len = libc::CMSG_LEN(2) as _;
        libc::CMSG_DATA(c).cast::<u16>().write_unaligned(size as u16);
        libc::sendmsg(fd, &m, 0)
    };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// Receives up to `lens.len()` (at most `BATCH`) datagrams on `fd` with one
/// `recvmmsg`, datagram `i` into `buf[i * slot..][..slot]` and its length
/// into `lens[i]`: how many came. Blocks (up to the socket's receive
/// timeout, then `WouldBlock`) for the first only (`MSG_WAITFORONE`), then
/// takes what is queued.
pub fn recv_batch(fd: RawFd, buf: &mut [u8], slot: usize, lens: &mut [usize]) -> io::Result<usize> {
    let count = lens.len().min(BATCH).min(buf.len() / slot.max(1));
    let mut iovs = [const { MaybeUninit::<libc::iovec>::uninit() }; BATCH];
    let mut hdrs = [const { MaybeUninit::<libc::mmsghdr>::uninit() }; BATCH];
    for (i, (iov, h)) in iovs[..count].iter_mut().zip(&mut hdrs[..count]).enumerate() {
        let iov = iov.write(libc::iovec { iov_base: buf[i * slot..].as_mut_ptr().cast(), iov_len: slot });
        h.write(mmsghdr(iov));
    }
    // SAFETY: the first `count` headers are initialised, each pointing at
    // its own iovec, each a distinct `slot`-byte part of `buf`; all outlive
    // the call. A null timeout: the socket's own applies.
    let n = unsafe { libc::recvmmsg(fd, hdrs.as_mut_ptr().cast(), count as _, libc::MSG_WAITFORONE as _, std::ptr::null_mut()) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let n = n as usize;
    for (len, h) in lens.iter_mut().zip(&hdrs[..n]) {
        // SAFETY: the kernel filled (msg_len of) the first `n` headers,
        // all initialised above.
        *len = unsafe { h.assume_init_ref() }.msg_len as usize;
    }
    Ok(n)
}
