//! Zero heap allocations per message in steady state.
//!
//! A hand-written epoll server allocates nothing while it echoes; a library
//! that mallocs per message (a reply buffer, a partial-message buffer, a
//! command) pays for it in CPU and in allocator contention on every core.
//! This binary installs a counting global allocator, runs the in-process
//! echo server of `tests/server.rs` (`TcpServer` + `builtin::Echo`) and a
//! blocking client on loopback, warms up, then counts every allocation of
//! every thread of the process (server loop, client, test harness) while
//! 100,000 messages are echoed, and asserts the count is zero. The client
//! writes batches of several messages in one `write`, so the server also
//! sees messages split across reads (partial messages) and several replies
//! per read, as under real load.
//!
//! `builtin::Echo` is a mirror (its replies to a read are answered with one
//! copy, see `builtin::Mirror`); `EachEcho` echoes from `on_message`, so
//! the message-by-message path is measured too.
//!
//! The UDP server is measured the same way, datagrams sent 16 at a time
//! per socket, so it receives and answers them in batches.
//!
//! One `#[test]` runs the frames one after the other: a second test running
//! in parallel would allocate inside the window.

#[path = "server/kit.rs"]
mod skit;

use skit::*;
use sockflow::frame::Frame;
use sockflow::server::builtin::Echo;
use sockflow::server::{Action, Config, Conn, Handler};
use std::alloc::{GlobalAlloc, Layout, System};
use std::io::{Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// The system allocator, counting allocations and reallocations.
struct Counting;

static ALLOCS: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        System.alloc(l)
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        System.alloc_zeroed(l)
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        System.realloc(p, l, new)
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        System.dealloc(p, l)
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Messages echoed before counting (buffers, tables, lazy statics settle).
const WARM_UP: usize = 5_000;
/// Messages echoed while counting.
const MEASURED: usize = 100_000;
/// Messages per client write.
const BATCH: usize = 16;
/// Connections, served in turn.
const CONNS: usize = 4;

/// One batch of `BATCH` messages of different lengths (5 to 80 bytes),
/// framed; an echo server sends back exactly these bytes.
fn batch(frame: Frame, round: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for i in 0..BATCH {
        let len = 5 + (round * 7 + i * 13) % 76;
        let msg: Vec<u8> = (0..len).map(|j| b'a' + ((round + i + j) % 26) as u8).collect();
        frame.encode(&msg, &mut out).unwrap();
    }
    out
}

/// Echoes `n` messages over `conns` from the prepared `batches` (no
/// allocation here: fixed buffers, blocking std sockets).
fn echo(conns: &mut [TcpStream], batches: &[Vec<u8>], n: usize, back: &mut [u8]) {
    for round in 0..n / BATCH {
        let sent = &batches[round % batches.len()];
        let s = &mut conns[round % conns.len()];
        // Two writes cut inside a message: the server often reads the
        // first part alone and keeps a partial message.
        let cut = sent.len() * 3 / 7;
        s.write_all(&sent[..cut]).unwrap();
        s.write_all(&sent[cut..]).unwrap();
        let got = &mut back[..sent.len()];
        s.read_exact(got).unwrap();
        assert!(got == &sent[..], "the echo differs from what was sent (round {round})");
    }
}

/// An echo that is no mirror: one `on_message` and one send per message.
struct EachEcho;

impl Handler for EachEcho {
    fn on_message(&self, c: &mut Conn<'_>, msg: &[u8]) -> Action {
        c.send(msg).map_or(Action::Close, |()| Action::Continue)
    }
}

/// Allocations while `MEASURED` messages are echoed in `frame`.
fn allocations_per_window(frame: Frame, handler: Arc<dyn Handler>) -> usize {
    let cfg = Config { frame, log: None, ..Config::default() };
    let server = start_tcp(cfg, handler);
    let mut conns: Vec<TcpStream> = (0..CONNS)
        .map(|_| {
            let s = TcpStream::connect(server.addr).unwrap();
            s.set_read_timeout(Some(WAIT)).unwrap();
            s.set_write_timeout(Some(WAIT)).unwrap();
            s.set_nodelay(true).unwrap();
            s
        })
        .collect();
    let batches: Vec<Vec<u8>> = (0..64).map(|r| batch(frame, r)).collect();
    let mut back = vec![0u8; batches.iter().map(Vec::len).max().unwrap()];
    echo(&mut conns, &batches, WARM_UP, &mut back);
    let before = ALLOCS.load(Ordering::SeqCst);
    echo(&mut conns, &batches, MEASURED, &mut back);
    let after = ALLOCS.load(Ordering::SeqCst);
    drop(conns);
    server.stop().unwrap();
    after - before
}

/// Echoes `n` datagrams over `socks`, `BATCH` in flight per socket at a
/// time (so the server receives and answers several per system call).
fn echo_datagrams(socks: &[UdpSocket], batches: &[Vec<u8>], n: usize, back: &mut [u8]) {
    for round in 0..n / BATCH {
        let s = &socks[round % socks.len()];
        let sent = &batches[round % batches.len()];
        let mut at = 0;
        for _ in 0..BATCH {
            let len = 5 + (at * 7 + round) % 76;
            s.send(&sent[at..at + len]).unwrap();
            at += len;
        }
        let mut at = 0;
        for _ in 0..BATCH {
            let len = 5 + (at * 7 + round) % 76;
            let got = s.recv(back).unwrap();
            assert!(back[..got] == sent[at..at + len], "the echo differs from the datagram sent (round {round})");
            at += len;
        }
    }
}

/// Allocations while `MEASURED` datagrams are echoed by the UDP server.
fn udp_allocations_per_window() -> usize {
    let cfg = Config { frame: Frame::parse("raw").unwrap(), log: None, ..Config::default() };
    let server = start_udp(cfg, Arc::new(Echo));
    let socks: Vec<UdpSocket> = (0..CONNS)
        .map(|_| {
            let s = UdpSocket::bind("127.0.0.1:0").unwrap();
            s.connect(server.addr).unwrap();
            s.set_read_timeout(Some(WAIT)).unwrap();
            s
        })
        .collect();
    let batches: Vec<Vec<u8>> = (0..64).map(|r| (0..BATCH * 80).map(|j| b'a' + ((r + j) % 26) as u8).collect()).collect();
    let mut back = vec![0u8; 65_536];
    echo_datagrams(&socks, &batches, WARM_UP, &mut back);
    let before = ALLOCS.load(Ordering::SeqCst);
    echo_datagrams(&socks, &batches, MEASURED, &mut back);
    let after = ALLOCS.load(Ordering::SeqCst);
    drop(socks);
    server.stop().unwrap();
    after - before
}

#[test]
fn echo_allocates_nothing_per_message_in_steady_state() {
    // `raw` with messages batched: one read is one message, whatever the
    // client's writes were (the server echoes the bytes either way).
    let frames = [("line", Frame::default()), ("raw", Frame::parse("raw").unwrap()), ("len32", Frame::parse("len32").unwrap())];
    let mut report = Vec::new();
    for (name, frame) in frames {
        report.push((name, allocations_per_window(frame, Arc::new(Echo))));
        report.push((name, allocations_per_window(frame, Arc::new(EachEcho))));
    }
    report.push(("udp", udp_allocations_per_window()));
    assert!(
        report.iter().all(|&(_, n)| n == 0),
        "heap allocations while {MEASURED} messages were echoed (all threads), per frame: {report:?}"
    );
}
