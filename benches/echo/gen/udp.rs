//! UDP request/response: one socket per generator thread keeps its share
//! of the datagrams in flight; each reply received sends the next. A
//! datagram is taken as lost when nothing at all came back for `LOSS_WAIT`:
//! the outstanding ones are counted lost and sent again.

use super::{Tally, Window};
use std::io;
use std::net::{SocketAddr, UdpSocket};
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
    let msg = super::lines(size, 1);
    let mut buf = vec![0u8; 65536];
    let (mut outstanding, mut lost, mut wrong) = (0usize, 0u64, 0u64);
    while Instant::now() < w.end {
        while outstanding < st.in_flight {
            match st.sock.send(&msg) {
                Ok(_) => outstanding += 1,
                // Refused (ICMP from an earlier datagram) or a full buffer:
                // try again after the next receive.
                Err(_) => break,
            }
        }
        match st.sock.recv(&mut buf) {
            Ok(n) => {
                outstanding = outstanding.saturating_sub(1);
                if n != size {
                    wrong += 1;
                } else if w.counts(Instant::now()) {
                    t.ops += 1;
                    t.bytes += n as u64;
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
