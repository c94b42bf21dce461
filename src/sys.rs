//! The core's raw OS calls: the only module outside `ffi` where `unsafe` is
//! allowed (the crate root denies it everywhere else, and
//! `tests/guarantees.rs` checks that no other module lifts the ban). Each
//! function is a safe wrapper whose doc comment says why it is sound, so the
//! rest of the core stays safe Rust over `std`, `nix` and `mio`.

use std::os::fd::{BorrowedFd, RawFd};

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

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::os::fd::{AsFd, AsRawFd};
    use std::time::{Duration, Instant};

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
