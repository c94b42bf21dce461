//! UDP request/response: one socket per generator thread keeps its share
//! of the datagrams in flight; each reply received sends the next. A
//! datagram is taken as lost when nothing at all came back for `LOSS_WAIT`:
//! the outstanding ones are counted lost and sent again.
//!
//! Replies are taken with one `recvmmsg` of up to the socket's share (the
//! first waited for, the rest as queued) and answered with one send of as
//! many (UDP GSO where the kernel has it, else `sendmmsg`): a
//! datagram-per-call generator ran at a full core and was the limit of the
//! row, not the servers (benches/README.md, UDP).

use super::{Tally, Window};
use crate::sys;
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

const LOSS_WAIT: Duration = Duration::from_millis(50);

pub struct Setup {
    sock: UdpSocket,
    in_flight: usize,
}

pub fn setup(server: SocketAddr, in_flight: usize) -> Result<Setup, String> {
    let sock = UdpSocket::bind("127.0.0.1:0").map_err(|e| format!("bind: {e}"))?;
    sock.connect(server).map_err(|e| format!("connect: {e}"))?;
    sock.set_read_timeout(Some(LOSS_WAIT)).map_err(|e| format!("timeout: {e}"))?;
    Ok(Setup { sock, in_flight })
}

pub fn run(st: Setup, size: usize, w: &Window) -> Tally {
    let mut t = Tally::default();
    if st.in_flight == 0 {
        return t;
    }
    let fd = st.sock.as_raw_fd();
    // Enough copies back to back for any refill (see `sys::send_copies`).
    let copies = super::lines(size, st.in_flight.min(sys::BATCH));
    let mut gso = true;
    // One slot per datagram in flight, a byte longer than a right reply so
    // that a longer one shows as the wrong size.
    let slot = size + 1;
    let mut lens = vec![0usize; st.in_flight.min(sys::BATCH)];
    let mut buf = vec![0u8; lens.len() * slot];
    let (mut outstanding, mut lost, mut wrong) = (0usize, 0u64, 0u64);
    while Instant::now() < w.end {
        while outstanding < st.in_flight {
            match sys::send_copies(fd, &copies, size, st.in_flight - outstanding, &mut gso) {
                Ok(n) if n > 0 => outstanding += n,
                // Refused (ICMP from an earlier datagram) or a full buffer:
                // try again after the next receive.
                _ => break,
            }
        }
        match sys::recv_batch(fd, &mut buf, slot, &mut lens) {
            Ok(k) => {
                outstanding = outstanding.saturating_sub(k);
                let counts = w.counts(Instant::now());
                for &n in &lens[..k] {
                    if n != size {
                        wrong += 1;
                    } else if counts {
                        t.ops += 1;
                        t.bytes += n as u64;
                    }
                }
            }
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
                lost += outstanding as u64;
                outstanding = 0;
            }
            Err(_) => std::thread::sleep(Duration::from_millis(1)),
        }
    }
    if lost > 0 {
        t.problems.push(format!("{lost} datagrams lost (no reply within {LOSS_WAIT:?})"));
    }
    if wrong > 0 {
        t.problems.push(format!("{wrong} replies of the wrong size"));
    }
    t
}
