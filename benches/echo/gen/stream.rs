//! Pipelined echo: each connection keeps `in_flight` bytes of `msg`-byte
//! lines outstanding, topping up whenever echoes come back, in writes of
//! at most `write` bytes. Pipelined line echo is 64-byte messages with 16
//! in flight; the bulk stream is the same loop with 64 KiB writes and
//! 16 MiB in flight on one connection.
//!
//! The generator counts the `\n`s it receives and checks them against the
//! bytes received, and counts connections that closed during the run.

use super::{Tally, Window};
use mio::net::TcpStream as MioStream;
use mio::{Events, Interest, Poll, Registry, Token};
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::time::Instant;

#[derive(Clone, Copy)]
pub struct Shape {
    /// Bytes per line, `\n` included.
    pub msg: usize,
    /// Bytes outstanding per connection (a multiple of `msg`).
    pub in_flight: usize,
    /// Largest single write.
    pub write: usize,
}

struct Client {
    sock: MioStream,
    recv: u64,
    sent: u64,
    want_write: bool,
    dead: bool,
}

pub struct Setup {
    poll: Poll,
    clients: Vec<Client>,
}

/// Opens `n` connections (each echoed one line first, so the server has
/// accepted them all before the window).
pub fn setup(addr: SocketAddr, n: usize) -> Result<Setup, String> {
    let (poll, socks) = super::open_polled(addr, n)?;
    let clients = socks.into_iter().map(|sock| Client { sock, recv: 0, sent: 0, want_write: false, dead: false }).collect();
    Ok(Setup { poll, clients })
}

/// Writes until the client has `in_flight` bytes outstanding beyond the
/// whole messages it received. `payload` holds whole lines and is longer
/// than `write + msg`, so a write may start at any offset within a line.
fn top_up(c: &mut Client, k: usize, shape: Shape, payload: &[u8], registry: &Registry) {
    let msg = shape.msg as u64;
    let target = c.recv / msg * msg + shape.in_flight as u64;
    while c.sent < target && !c.dead {
        let off = (c.sent % msg) as usize;
        let len = ((target - c.sent) as usize).min(shape.write);
        match c.sock.write(&payload[off..off + len]) {
            Ok(n) => c.sent += n as u64,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                if !c.want_write {
                    c.want_write = true;
                    let _ = registry.reregister(&mut c.sock, Token(k), Interest::READABLE | Interest::WRITABLE);
                }
                return;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => c.dead = true,
        }
    }
    if c.want_write {
        c.want_write = false;
        let _ = registry.reregister(&mut c.sock, Token(k), Interest::READABLE);
    }
}

/// Loads the connections until the window's end; counts the whole
/// messages and bytes echoed inside it.
pub fn run(mut st: Setup, shape: Shape, w: &Window) -> Tally {
    let payload = super::lines(shape.msg, shape.write / shape.msg + 2);
    let mut events = Events::with_capacity(1024);
    let mut buf = vec![0u8; 256 * 1024];
    let (mut recv_total, mut newlines) = (0u64, 0u64);
    let mut at_start: Option<u64> = None;
    for (k, c) in st.clients.iter_mut().enumerate() {
        top_up(c, k, shape, &payload, st.poll.registry());
    }
    loop {
        let now = Instant::now();
        if now >= w.end {
            break;
        }
        if at_start.is_none() && now >= w.start {
            at_start = Some(recv_total);
        }
        let wake = if at_start.is_none() { w.start.saturating_duration_since(now) } else { w.left(now) };
        if let Err(e) = st.poll.poll(&mut events, Some(wake)) {
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            panic!("epoll_wait: {e}");
        }
        for ev in events.iter() {
            let k = ev.token().0;
            let c = &mut st.clients[k];
            if c.dead {
                continue;
            }
            if ev.is_readable() || ev.is_read_closed() || ev.is_error() {
                // Edge-triggered: read until the socket is empty (bounded).
                // A short read means it was empty then, and any byte
                // arriving later raises a new edge: no EAGAIN read needed.
                for _ in 0..64 {
                    match c.sock.read(&mut buf) {
                        Ok(0) => {
                            c.dead = true;
                            break;
                        }
                        Ok(got) => {
                            c.recv += got as u64;
                            recv_total += got as u64;
                            newlines += buf[..got].iter().filter(|&&b| b == b'\n').count() as u64;
                            if got < buf.len() {
                                break;
                            }
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(_) => {
                            c.dead = true;
                            break;
                        }
                    }
                }
            }
            top_up(c, k, shape, &payload, st.poll.registry());
        }
    }
    let bytes = recv_total - at_start.unwrap_or(recv_total);
    let mut problems = Vec::new();
    let dead = st.clients.iter().filter(|c| c.dead).count();
    if dead > 0 {
        let got: u64 = st.clients.iter().filter(|c| c.dead).map(|c| c.recv).sum();
        problems.push(format!("{dead} of {} connections closed or failed during the run ({got} bytes echoed to them)", st.clients.len()));
    }
    let whole: u64 = st.clients.iter().map(|c| c.recv / shape.msg as u64).sum();
    if whole != newlines {
        problems.push(format!("framing: {newlines} newlines received for {whole} whole {}-byte messages", shape.msg));
    }
    Tally { ops: bytes / shape.msg as u64, bytes, lat_ns: Vec::new(), problems }
}
