//! Connection churn: `parallel` slots, each connecting, sending one
//! `size`-byte message, reading its echo and closing, then starting over.
//! Counts the connections completed in the window.

use super::{Tally, Window};
use mio::net::TcpStream as MioStream;
use mio::{Events, Interest, Poll, Token};
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::time::Instant;

/// Where one slot's connection stands.
enum Slot {
    /// Connect in progress: waiting for writability.
    Connecting(MioStream),
    /// Request sent; this many echo bytes received.
    Echoing(MioStream, usize),
    /// Failed and not restarted (counted as a problem).
    Failed,
}

pub struct Setup {
    addr: SocketAddr,
    slots: usize,
}

pub fn setup(addr: SocketAddr, slots: usize) -> Result<Setup, String> {
    Ok(Setup { addr, slots })
}

fn open(poll: &Poll, addr: SocketAddr, k: usize) -> Slot {
    match MioStream::connect(addr) {
        Ok(mut s) => match poll.registry().register(&mut s, Token(k), Interest::READABLE | Interest::WRITABLE) {
            Ok(()) => Slot::Connecting(s),
            Err(_) => Slot::Failed,
        },
        Err(_) => Slot::Failed,
    }
}

pub fn run(st: Setup, size: usize, w: &Window) -> Tally {
    let mut t = Tally::default();
    if st.slots == 0 {
        return t;
    }
    let msg = super::lines(size, 1);
    let mut poll = match Poll::new() {
        Ok(p) => p,
        Err(e) => {
            t.problems.push(format!("epoll: {e}"));
            return t;
        }
    };
    let mut slots: Vec<Slot> = (0..st.slots).map(|k| open(&poll, st.addr, k)).collect();
    let mut events = Events::with_capacity(256);
    let mut buf = [0u8; 4096];
    let mut failures = 0u64;
    loop {
        let now = Instant::now();
        if now >= w.end {
            break;
        }
        if let Err(e) = poll.poll(&mut events, Some(w.left(now))) {
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            panic!("epoll_wait: {e}");
        }
        for ev in events.iter() {
            let k = ev.token().0;
            let slot = std::mem::replace(&mut slots[k], Slot::Failed);
            slots[k] = match slot {
                Slot::Connecting(mut s) if ev.is_writable() || ev.is_error() => match (s.take_error(), s.peer_addr()) {
                    (Ok(None), Ok(_)) => match s.write(&msg) {
                        Ok(n) if n == msg.len() => Slot::Echoing(s, 0),
                        _ => Slot::Failed,
                    },
                    (Ok(None), Err(e)) if e.kind() == io::ErrorKind::NotConnected => Slot::Connecting(s),
                    _ => Slot::Failed,
                },
                Slot::Echoing(mut s, mut got) => {
                    let mut state = None;
                    for _ in 0..16 {
                        match s.read(&mut buf) {
                            Ok(0) => state = Some(false),
                            Ok(n) => got += n,
                            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                            Err(_) => state = Some(false),
                        }
                        if got >= size {
                            state = Some(got == size);
                        }
                        if state.is_some() {
                            break;
                        }
                    }
                    match state {
                        None => Slot::Echoing(s, got),
                        Some(ok) => {
                            drop(s); // close (the epoll registration goes with it)
                            if ok && w.counts(Instant::now()) {
                                t.ops += 1;
                                t.bytes += size as u64;
                            }
                            if !ok {
                                failures += 1;
                            }
                            open(&poll, st.addr, k)
                        }
                    }
                }
                other => other,
            };
            if matches!(slots[k], Slot::Failed) {
                failures += 1;
                if failures < 1000 {
                    slots[k] = open(&poll, st.addr, k);
                }
            }
        }
    }
    if failures > 0 {
        t.problems.push(format!("{failures} connections failed (connect, send or echo)"));
    }
    t
}
