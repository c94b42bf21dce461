//! Lock-step request/response: each connection sends one `size`-byte
//! message, waits for all of its echo, and sends the next. Counts round
//! trips completed in the window and records each one's latency (p99).

use super::{Tally, Window};
use mio::net::TcpStream as MioStream;
use mio::{Events, Poll};
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::time::Instant;

struct Client {
    sock: MioStream,
    /// Echo bytes of the current round trip received so far.
    got: usize,
    sent_at: Instant,
    dead: bool,
}

pub struct Setup {
    poll: Poll,
    clients: Vec<Client>,
}

/// Opens `n` connections (each echoed once first).
pub fn setup(addr: SocketAddr, n: usize) -> Result<Setup, String> {
    let (poll, socks) = super::open_polled(addr, n)?;
    let clients = socks.into_iter().map(|sock| Client { sock, got: 0, sent_at: Instant::now(), dead: false }).collect();
    Ok(Setup { poll, clients })
}

/// Sends one request (a 64-byte message fits any socket buffer whole).
fn send(c: &mut Client, msg: &[u8]) {
    c.got = 0;
    c.sent_at = Instant::now();
    loop {
        match c.sock.write(msg) {
            Ok(n) if n == msg.len() => return,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            _ => {
                c.dead = true;
                return;
            }
        }
    }
}

pub fn run(mut st: Setup, size: usize, w: &Window) -> Tally {
    let msg = super::lines(size, 1);
    let mut events = Events::with_capacity(1024);
    let mut buf = vec![0u8; 64 * 1024];
    let mut t = Tally::default();
    for c in st.clients.iter_mut() {
        send(c, &msg);
    }
    loop {
        let now = Instant::now();
        if now >= w.end {
            break;
        }
        if let Err(e) = st.poll.poll(&mut events, Some(w.left(now))) {
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            panic!("epoll_wait: {e}");
        }
        for ev in events.iter() {
            let c = &mut st.clients[ev.token().0];
            if c.dead {
                continue;
            }
            // Edge-triggered: read until the socket is empty (bounded).
            for _ in 0..64 {
                match c.sock.read(&mut buf) {
                    Ok(0) => c.dead = true,
                    Ok(n) => c.got += n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(_) => c.dead = true,
                }
                if c.dead || c.got >= size {
                    break;
                }
            }
            if !c.dead && c.got >= size {
                if c.got > size {
                    t.problems.push(format!("{} bytes echoed for one {size}-byte request", c.got));
                    c.dead = true;
                    continue;
                }
                let done = Instant::now();
                if w.counts(done) {
                    t.ops += 1;
                    t.bytes += size as u64;
                    t.lat_ns.push(done.duration_since(c.sent_at).as_nanos() as u64);
                }
                send(c, &msg);
            }
        }
    }
    let dead = st.clients.iter().filter(|c| c.dead).count();
    if dead > 0 {
        t.problems.push(format!("{dead} of {} connections closed or failed during the run", st.clients.len()));
    }
    t
}
