//! Every byte delivered, every peer served (issue 6, sections 1-3):
//!
//! * a bulk client (64 KiB writes, 16 MiB in flight) through `echo_server`
//!   in raw and line mode gets every byte back, in order, and is never
//!   dropped: the server stops reading it while its replies are queued;
//!   messages left behind such a pause still come before the end of stream;
//! * a flood of empty lines at a slow thread-per-connection handler keeps
//!   the server's memory bounded;
//! * clients pinning memory in partial messages (`len32` headers for 4 MiB
//!   followed by all but one byte; 65,000-byte partial lines) cannot push
//!   the server past its memory budget, while normal clients get exact
//!   echoes throughout; a connection paused for the budget resumes when
//!   memory frees up; a message left incomplete too long closes its
//!   connection (slowloris);
//! * one address cannot take more than `max_per_ip` connections, and a
//!   server's `--timeout` is its idle timeout;
//! * stopping a thread-per-connection server whose handler is blocked,
//!   with messages still queued, takes bounded time.
//!
//! The tests measure this process's RSS, so they run one at a time
//! (`serial()`). Only 127.0.0.1 is used; every loop is bounded in count and
//! time; servers in this process are stopped through their handles, the
//! `echo_server` processes killed by PID when dropped.

mod common;
#[path = "flows/kit.rs"]
mod kit;
#[path = "server/kit.rs"]
mod skit;

use common::*;
use kit::*;
use skit::*;
use sockflow::server::{Action, CloseReason, Config, Conn, Handler, Mode};
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// The tests of this file one at a time: they measure the process's memory.
fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|p| p.into_inner())
}

/// Upper bound of a single wait.
fn wait() -> Duration {
    default_timeout()
}

/// VmRSS of process `pid` ("self" for this one), in bytes.
fn rss(pid: &str) -> usize {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read /proc/PID/status");
    let kb: usize = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/PID/status");
    kb * 1024
}

/// This process's RSS with freed heap memory given back first, so that
/// memory earlier tests freed (resident, reusable) cannot hide growth.
fn baseline_rss() -> usize {
    // SAFETY: malloc_trim only releases free memory of the allocator.
    unsafe { libc::malloc_trim(0) };
    rss("self")
}

/// Samples this process's RSS every few ms until dropped; `max()` is the peak.
struct RssWatch {
    peak: Arc<AtomicUsize>,
    done: Arc<AtomicBool>,
    join: Option<JoinHandle<()>>,
}

impl RssWatch {
    fn start() -> RssWatch {
        let peak = Arc::new(AtomicUsize::new(rss("self")));
        let done = Arc::new(AtomicBool::new(false));
        let (p, d) = (peak.clone(), done.clone());
        let join = thread::spawn(move || {
            while !d.load(Ordering::SeqCst) {
                p.fetch_max(rss("self"), Ordering::SeqCst);
                thread::sleep(Duration::from_millis(5));
            }
        });
        RssWatch { peak, done, join: Some(join) }
    }

    fn max(&self) -> usize {
        self.peak.fetch_max(rss("self"), Ordering::SeqCst).max(rss("self"))
    }
}

impl Drop for RssWatch {
    fn drop(&mut self) {
        self.done.store(true, Ordering::SeqCst);
        if let Some(j) = self.join.take() {
            let _ = j.join();
        }
    }
}

const MIB: usize = 1 << 20;

// ---------------------------------------------------------------------------
// A server in this process
// ---------------------------------------------------------------------------

/// Echoes each message; records closes.
#[derive(Default)]
struct Echo {
    closes: Mutex<Vec<(u64, CloseReason)>>,
}

impl Handler for Echo {
    fn on_message(&self, c: &mut Conn<'_>, msg: &[u8]) -> Action {
        let _ = c.send(msg);
        Action::Continue
    }
    fn on_close(&self, c: &mut Conn<'_>, reason: CloseReason) {
        self.closes.lock().unwrap().push((c.id(), reason));
    }
}

fn len32(msg: &[u8]) -> Vec<u8> {
    let mut v = (msg.len() as u32).to_be_bytes().to_vec();
    v.extend_from_slice(msg);
    v
}

fn client(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(wait())).unwrap();
    s.set_write_timeout(Some(wait())).unwrap();
    s
}

// ---------------------------------------------------------------------------
// 1. A bulk client through echo_server
// ---------------------------------------------------------------------------

/// Bytes per write.
const CHUNK: usize = 64 * 1024;
/// Most bytes written and not yet echoed back.
const WINDOW: usize = 16 * MIB;
/// Bytes sent in all: 200 MB, far past every queue bound (1 MiB) and the
/// kernel's buffers, so any drop or loss shows.
const BULK_TOTAL: usize = 200_000_000;

/// Block `i` of the stream: a numbered line, then lines of varied lengths
/// (printable, no `\r`), about 1 MiB in all, always ending in `\n`. The
/// number makes a lost, repeated or reordered block visible.
fn block(i: usize, body: &[u8], offset: usize) -> Vec<u8> {
    let mut b = format!("block {i:09}\n").into_bytes();
    b.extend_from_slice(body);
    // The last one is cut to make `BULK_TOTAL` and still ends a line.
    if b.len() > BULK_TOTAL - offset {
        b.truncate(BULK_TOTAL - offset);
        if let Some(last) = b.last_mut() {
            *last = b'\n';
        }
    }
    b
}

fn block_body() -> Vec<u8> {
    let mut body = Vec::with_capacity(MIB + 2048);
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    while body.len() < MIB {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let len = (x % 2000) as usize;
        body.extend((0..len).map(|k| b'!' + ((x >> (k % 48)) as u8 % 90)));
        body.push(b'\n');
    }
    body
}

/// Streams `BULK_TOTAL` bytes through the echo server at `port` from one
/// thread while another reads and compares them; panics on any difference,
/// error or stall (each read bounded by the timeout).
fn bulk_roundtrip(port: u16) {
    let s = connect(port);
    let body = Arc::new(block_body());
    let echoed = Arc::new(AtomicU64::new(0));
    let writer = {
        let (mut w, body, echoed) = (s.try_clone().unwrap(), body.clone(), echoed.clone());
        thread::spawn(move || {
            let deadline = Instant::now() + secs(300);
            let mut sent = 0usize;
            let mut i = 0;
            while sent < BULK_TOTAL {
                let b = block(i, &body, sent);
                for piece in b.chunks(CHUNK) {
                    // Keep at most WINDOW bytes in flight.
                    while sent + piece.len() - echoed.load(Ordering::SeqCst) as usize > WINDOW {
                        assert!(Instant::now() < deadline, "the echo stalled at {sent} bytes sent");
                        thread::sleep(Duration::from_millis(1));
                    }
                    w.write_all(piece).unwrap_or_else(|e| panic!("write after {sent} bytes: {e}"));
                    sent += piece.len();
                }
                i += 1;
            }
            sent
        })
    };
    let mut r = s;
    let mut got = 0usize;
    let mut i = 0;
    let mut want = block(0, &body, 0);
    let mut at = 0; // position in `want`
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = r.read(&mut buf).unwrap_or_else(|e| panic!("read after {got} bytes: {e}"));
        assert!(n > 0, "end of stream after {got} bytes");
        let mut data = &buf[..n];
        while !data.is_empty() {
            let k = data.len().min(want.len() - at);
            if data[..k] != want[at..at + k] {
                panic!("byte {got}: the echo differs from what was sent (block {i}, offset {at})");
            }
            (data, at, got) = (&data[k..], at + k, got + k);
            if at == want.len() {
                i += 1;
                want = block(i, &body, got);
                at = 0;
            }
        }
        echoed.store(got as u64, Ordering::SeqCst);
        // A consumer that has work to do now and then: replies pile up
        // in the server meanwhile.
        if got / (4 * MIB) != (got - n) / (4 * MIB) {
            thread::sleep(Duration::from_millis(20));
        }
        if got == BULK_TOTAL {
            assert_eq!(writer.join().unwrap(), BULK_TOTAL, "bytes sent");
            return;
        }
    }
}

fn bulk_through_echo_server(frame: &str) {
    let _g = serial();
    let (mut srv, port) = server("echo_server", Link::Dynamic, &["--frame", frame]);
    bulk_roundtrip(port);
    assert!(!srv.stderr_text().contains("dropping"), "{}", srv.transcript());
    echo_roundtrip_raw(port);
    stop(&mut srv, libc::SIGTERM);
}

/// A short exchange a line server and a raw server both echo.
fn echo_roundtrip_raw(port: u16) {
    let mut s = connect(port);
    s.write_all(b"still serving\n").unwrap();
    let mut b = [0u8; 14];
    s.read_exact(&mut b).unwrap();
    assert_eq!(&b, b"still serving\n");
}

#[test]
fn bulk_client_gets_every_byte_back_raw() {
    bulk_through_echo_server("raw");
}

#[test]
fn bulk_client_gets_every_byte_back_line() {
    bulk_through_echo_server("line");
}

/// Messages left behind a pause come before the end of the stream: a
/// reply big enough to pause the connection, then more messages and the
/// peer's FIN all at once; every message is answered, then the close.
#[test]
fn messages_behind_a_pause_are_answered_before_end_of_stream() {
    let _g = serial();
    let frame = sockflow::frame::Frame::Len32 { max: 4 * MIB };
    let srv = start_tcp(Config { frame, log: None, ..Config::default() }, Arc::new(Echo::default()));
    for round in 0..5 {
        let mut s = client(srv.addr);
        let mut wire = len32(b"before");
        wire.extend(len32(&vec![b'x'; MIB]));
        wire.extend(len32(format!("after {round}").as_bytes()));
        s.write_all(&wire).unwrap();
        s.shutdown(std::net::Shutdown::Write).unwrap();
        let mut back = Vec::new();
        s.read_to_end(&mut back).unwrap_or_else(|e| panic!("round {round}: {e} after {} bytes", back.len()));
        assert!(back == wire, "round {round}: {} of {} bytes back", back.len(), wire.len());
    }
    srv.stop().expect("run()");
}

// ---------------------------------------------------------------------------
// 1b. Thread mode: an empty-line flood at a slow handler
// ---------------------------------------------------------------------------

/// Takes 10 ms per message (a database, say); answers nothing.
struct Slow;

impl Handler for Slow {
    fn on_message(&self, _c: &mut Conn<'_>, _msg: &[u8]) -> Action {
        thread::sleep(Duration::from_millis(10));
        Action::Continue
    }
}

#[test]
fn empty_line_flood_in_thread_mode_keeps_memory_bounded() {
    let _g = serial();
    let cfg = Config { log: None, mode: Mode::ThreadPerConnection, ..Config::default() };
    let srv = start_tcp(cfg, Arc::new(Slow));
    let flood = vec![b'\n'; CHUNK];
    let s = client(srv.addr);
    s.set_write_timeout(Some(Duration::from_secs(2))).unwrap();
    let before = baseline_rss();
    let watch = RssWatch::start();
    // 16 Mi empty messages at most; a paused reader makes a write block
    // (and time out) long before that.
    let mut sent = 0;
    let mut blocked = false;
    while sent < 16 * MIB {
        match (&s).write(&flood) {
            Ok(n) => sent += n,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                blocked = true;
                break;
            }
            Err(e) => panic!("write after {sent} bytes: {e}"),
        }
    }
    let growth = watch.max().saturating_sub(before);
    drop(watch);
    eprintln!("empty-line flood: {sent} lines sent, RSS growth {} KiB", growth / 1024);
    assert!(blocked, "{sent} empty lines were all taken by a handler that handles 100 per second");
    assert!(growth < 16 * MIB, "RSS grew by {} KiB for {sent} queued empty lines", growth / 1024);
    // Stopping does not wait for the thousands of queued messages.
    srv.stop().expect("run()");
}

// ---------------------------------------------------------------------------
// 2. The memory budget
// ---------------------------------------------------------------------------

const BUDGET: usize = 32 * MIB;
/// What the budget cannot account for: per-connection structures, a read
/// of up to 4 KiB per connection while the budget is spent, allocator slack.
const MARGIN: usize = 16 * MIB;

/// `n` clients at `addr`, each to be sent `payload` (the same bytes) from
/// one thread writing whatever each socket takes, until each is sent or
/// fails (closed by the server) or `limit` passes. Returns when done.
fn attack(addr: SocketAddr, n: usize, payload: &[u8], limit: Duration) -> usize {
    let socks: Vec<TcpStream> = (0..n).map(|_| client(addr)).collect();
    for s in &socks {
        s.set_nonblocking(true).unwrap();
    }
    let mut pos = vec![0usize; n];
    let mut live = vec![true; n];
    let deadline = Instant::now() + limit;
    while live.iter().any(|&l| l) && Instant::now() < deadline {
        let mut progressed = false;
        for (i, s) in socks.iter().enumerate() {
            if !live[i] {
                continue;
            }
            match (&*s).write(&payload[pos[i]..]) {
                Ok(k) => {
                    pos[i] += k;
                    progressed |= k > 0;
                    live[i] = pos[i] < payload.len();
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(_) => live[i] = false,
            }
        }
        if !progressed {
            thread::sleep(Duration::from_millis(20));
        }
    }
    // Keep the connections open while the caller measures.
    std::mem::forget(socks);
    pos.iter().sum()
}

/// Five clients echoing `rounds` messages each through `addr`, exactly.
fn normal_clients(addr: SocketAddr, rounds: usize, frame_len32: bool) -> Vec<JoinHandle<()>> {
    (0..5)
        .map(|c| {
            thread::spawn(move || {
                let mut s = client(addr);
                for r in 0..rounds {
                    let msg = format!("client {c} round {r} {}", "z".repeat((c * 37 + r * 11) % 900));
                    let (wire, want) = if frame_len32 {
                        (len32(msg.as_bytes()), len32(msg.as_bytes()))
                    } else {
                        (format!("{msg}\n").into_bytes(), format!("{msg}\n").into_bytes())
                    };
                    s.write_all(&wire).unwrap_or_else(|e| panic!("client {c} round {r}: write: {e}"));
                    let mut got = vec![0u8; want.len()];
                    s.read_exact(&mut got).unwrap_or_else(|e| panic!("client {c} round {r}: read: {e}"));
                    assert!(got == want, "client {c} round {r}: wrong echo");
                    thread::sleep(Duration::from_millis(2));
                }
            })
        })
        .collect()
}

fn budget_config(log: &LogBuf, frame: sockflow::frame::Frame) -> Config {
    Config { frame, memory_budget: BUDGET, max_per_ip: 2000, ..log.config() }
}

/// What a memory attack left: the server (still running), its log and
/// handler, what the attackers sent and the peak RSS growth meanwhile.
struct Attack {
    srv: Running,
    log: LogBuf,
    echo: Arc<Echo>,
    sent: usize,
    growth: usize,
}

/// Starts an echo server with the test budget, then `attackers` clients
/// each send `payload` and hold on while 5 normal clients (`len32` or line
/// messages) must get exact echoes throughout.
fn budget_attack(frame: sockflow::frame::Frame, payload: Vec<u8>, attackers: usize, len32: bool) -> Attack {
    let log = LogBuf::default();
    let echo = Arc::new(Echo::default());
    let srv = start_tcp(budget_config(&log, frame), echo.clone());
    let before = baseline_rss();
    let watch = RssWatch::start();
    let normal = normal_clients(srv.addr, 300, len32);
    let attacker = {
        let addr = srv.addr;
        thread::spawn(move || attack(addr, attackers, &payload, secs(30)))
    };
    for h in normal {
        h.join().expect("a normal client failed during the attack");
    }
    let sent = attacker.join().unwrap();
    // Give the server time to take in what the kernel holds.
    thread::sleep(Duration::from_millis(500));
    let growth = watch.max().saturating_sub(before);
    Attack { srv, log, echo, sent, growth }
}

impl Attack {
    /// RSS growth stayed under the budget (plus the margin), and normal
    /// clients are still served after the attack.
    fn check(self, what: &str, len32: bool) -> (LogBuf, Arc<Echo>) {
        eprintln!("{what}: {} MiB sent, RSS growth {} KiB", self.sent / MIB, self.growth / 1024);
        assert!(
            self.growth < BUDGET + MARGIN,
            "{what}: RSS grew by {} MiB (budget {} MiB) while attackers sent {} MiB",
            self.growth / MIB,
            BUDGET / MIB,
            self.sent / MIB
        );
        for h in normal_clients(self.srv.addr, 20, len32) {
            h.join().expect("a normal client failed after the attack");
        }
        self.srv.stop().expect("run()");
        (self.log, self.echo)
    }
}

/// 200 clients each declare a 4 MiB `len32` message and send all of it but
/// its last byte: without a budget they pin 800 MiB.
#[test]
fn len32_headers_cannot_pin_more_than_the_budget() {
    let _g = serial();
    let mut payload = ((4 * MIB) as u32).to_be_bytes().to_vec();
    payload.resize(4 + 4 * MIB - 1, b'a');
    let a = budget_attack(sockflow::frame::Frame::Len32 { max: 4 * MIB }, payload, 200, true);
    let (log, echo) = a.check("len32 attack", true);
    log.wait_for("does not fit in the memory budget");
    assert!(echo.closes.lock().unwrap().iter().any(|c| c.1 == CloseReason::Error));
}

/// 1,000 clients each hold a 65,000-byte line without its newline: 62 MiB
/// without a budget.
#[test]
fn partial_lines_cannot_pin_more_than_the_budget() {
    let _g = serial();
    let a = budget_attack(sockflow::frame::Frame::default(), vec![b'l'; 65_000], 1000, false);
    assert!(a.sent >= 60 * MIB, "the attack sent only {} MiB", a.sent / MIB);
    a.check("partial-line attack", false);
}

/// `big N`: N lines of 32 KiB; anything else: echoed.
#[derive(Default)]
struct Big {
    bigs: AtomicUsize,
}

impl Handler for Big {
    fn on_message(&self, c: &mut Conn<'_>, msg: &[u8]) -> Action {
        match msg.strip_prefix(b"big ") {
            Some(n) => {
                let line = vec![b'b'; 32 * 1024];
                for _ in 0..std::str::from_utf8(n).unwrap().parse::<usize>().unwrap() {
                    let _ = c.send(&line);
                }
                self.bigs.fetch_add(1, Ordering::SeqCst);
            }
            None => {
                let _ = c.send(msg);
            }
        }
        Action::Continue
    }
}

/// A connection paused because the budget is spent reads again once memory
/// frees up (here: clients finally reading large replies), and its message
/// is then answered.
#[test]
fn a_connection_paused_for_the_budget_resumes_when_memory_frees() {
    let _g = serial();
    let big = Arc::new(Big::default());
    let srv = start_tcp(Config { memory_budget: 8 * MIB, log: None, ..Config::default() }, big.clone());
    // Four clients ask for 16 MiB each and do not read yet: far more than
    // the budget stays queued in the server, whatever the kernel takes.
    let hogs: Vec<TcpStream> = (0..4).map(|_| client(srv.addr)).collect();
    for h in &hogs {
        (&*h).write_all(b"big 512\n").unwrap();
    }
    assert!(eventually(wait(), || big.bigs.load(Ordering::SeqCst) == 4), "the big requests");
    // A client with a long line: taken in a little at a time while the
    // budget is spent, then paused with part of it held.
    let mut victim = client(srv.addr);
    let line = vec![b'v'; 30_000];
    victim.write_all(&line).unwrap();
    victim.write_all(b"\n").unwrap();
    victim.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
    let mut b = [0u8; 1];
    let early = victim.read(&mut b);
    assert!(
        matches!(&early, Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)),
        "answered while the budget was spent: {early:?}"
    );
    // The others take their replies: memory frees up, the victim is read.
    let readers: Vec<_> = hogs
        .into_iter()
        .map(|mut h| {
            thread::spawn(move || {
                let mut left = 512 * (32 * 1024 + 1);
                let mut buf = vec![0u8; 64 * 1024];
                while left > 0 {
                    let n = h.read(&mut buf).expect("a big reply");
                    assert!(n > 0, "end of stream with {left} bytes left");
                    left -= n;
                }
            })
        })
        .collect();
    for r in readers {
        r.join().unwrap();
    }
    victim.set_read_timeout(Some(wait())).unwrap();
    let mut back = vec![0u8; line.len() + 1];
    victim.read_exact(&mut back).expect("the paused connection was not resumed");
    assert!(back[..line.len()] == line[..] && back[line.len()] == b'\n', "wrong echo");
    srv.stop().expect("run()");
}

/// A client that keeps a message incomplete (one byte now and then) is
/// closed after `incomplete_timeout`; one that completes its messages,
/// however slowly, is not.
#[test]
fn incomplete_message_timeout_closes_a_trickling_client() {
    let _g = serial();
    let log = LogBuf::default();
    let echo = Arc::new(Echo::default());
    let cfg = Config { incomplete_timeout: Some(Duration::from_millis(600)), ..log.config() };
    let srv = start_tcp(cfg, echo.clone());
    let mut slow = client(srv.addr);
    let mut steady = client(srv.addr);
    let deadline = Instant::now() + wait();
    let mut closed = false;
    let mut rounds = 0;
    while Instant::now() < deadline && !closed {
        // The trickler: one more byte of a line that never ends.
        closed = slow.write_all(b"x").is_err();
        // The steady client: a whole line each time, slowly.
        steady.write_all(format!("line {rounds}\n").as_bytes()).unwrap();
        let mut b = vec![0u8; format!("line {rounds}\n").len()];
        steady.read_exact(&mut b).unwrap();
        rounds += 1;
        if !closed && echo.closes.lock().unwrap().len() == 1 {
            closed = true;
        }
        thread::sleep(Duration::from_millis(100));
    }
    assert!(closed, "a trickling client was kept for {rounds} rounds");
    log.wait_for("message still incomplete after 600 ms");
    let closes = echo.closes.lock().unwrap().clone();
    assert_eq!(closes.len(), 1, "{closes:?}");
    assert_eq!(closes[0].1, CloseReason::Error);
    // The trickler sees the end of its connection.
    let mut b = [0u8; 16];
    slow.set_read_timeout(Some(wait())).unwrap();
    assert!(matches!(slow.read(&mut b), Ok(0) | Err(_)));
    steady.write_all(b"after\n").unwrap();
    let mut b = [0u8; 6];
    steady.read_exact(&mut b).unwrap();
    assert_eq!(&b, b"after\n");
    srv.stop().expect("run()");
}

// ---------------------------------------------------------------------------
// 3. Lock-out and stop
// ---------------------------------------------------------------------------

/// One address gets `max_per_ip` connections; more are closed at once and
/// the refusals are logged at a bounded rate; a slot freed is usable again.
#[test]
fn max_per_ip_refuses_the_extra_connections_of_one_address() {
    let _g = serial();
    let log = LogBuf::default();
    let echo = Arc::new(Echo::default());
    let srv = start_tcp(Config { max_per_ip: 3, ..log.config() }, echo.clone());
    let mut kept: Vec<TcpStream> = (0..3).map(|_| client(srv.addr)).collect();
    for (i, s) in kept.iter_mut().enumerate() {
        s.write_all(format!("kept {i}\n").as_bytes()).unwrap();
        let mut b = vec![0u8; 7];
        s.read_exact(&mut b).unwrap();
    }
    const EXTRA: usize = 50;
    for i in 0..EXTRA {
        let mut s = client(srv.addr);
        let _ = s.write_all(b"extra\n");
        assert!(closed_by_server(&mut s), "extra connection {i} was served");
    }
    log.wait_for("too many connections from one address (3): closing 127.0.0.1:");
    let lines = log.text().lines().filter(|l| l.contains("too many connections from")).count();
    assert!(lines < EXTRA / 2, "{lines} log lines for {EXTRA} refusals: not rate-limited");
    // One leaves; once the server has seen it go, a new one is served.
    drop(kept.pop());
    assert!(
        eventually(wait(), || {
            let mut s = client(srv.addr);
            s.write_all(b"again\n").is_ok() && {
                let mut b = [0u8; 6];
                s.read_exact(&mut b).is_ok() && &b == b"again\n"
            }
        }),
        "no connection accepted after one left"
    );
    srv.stop().expect("run()");
}

/// Blocks on the first message until released (bounded), then counts.
#[derive(Default)]
struct Blocker {
    release: Mutex<bool>,
    cv: std::sync::Condvar,
    blocked: AtomicUsize,
    handled: AtomicUsize,
    closes: Mutex<Vec<(u64, CloseReason)>>,
}

impl Handler for Blocker {
    fn on_message(&self, _c: &mut Conn<'_>, msg: &[u8]) -> Action {
        if msg == b"block" {
            self.blocked.fetch_add(1, Ordering::SeqCst);
            let g = self.release.lock().unwrap();
            let _ = self.cv.wait_timeout_while(g, secs(60), |r| !*r).unwrap();
        }
        self.handled.fetch_add(1, Ordering::SeqCst);
        Action::Continue
    }
    fn on_close(&self, c: &mut Conn<'_>, reason: CloseReason) {
        self.closes.lock().unwrap().push((c.id(), reason));
    }
}

/// Stopping a thread-per-connection server returns in bounded time even
/// when a handler is blocked with messages queued behind it: the queued
/// messages are dropped, other connections get `on_close(Stopping)`, and
/// the blocked thread is left behind with a log line.
#[test]
fn thread_mode_stop_is_bounded_with_a_blocked_handler() {
    let _g = serial();
    let log = LogBuf::default();
    let h = Arc::new(Blocker::default());
    let srv = start_tcp(Config { mode: Mode::ThreadPerConnection, ..log.config() }, h.clone());
    let mut stuck = client(srv.addr);
    let mut idle = client(srv.addr);
    idle.write_all(b"hello\n").unwrap();
    assert!(eventually(wait(), || h.handled.load(Ordering::SeqCst) == 1), "the idle client's message");
    stuck.write_all(b"block\n").unwrap();
    stuck.write_all(&b"queued\n".repeat(1000)).unwrap();
    assert!(eventually(wait(), || h.blocked.load(Ordering::SeqCst) == 1), "the handler did not block");
    let mut srv = srv;
    let result = srv.try_stop();
    // Release the handler either way, so the thread ends.
    *h.release.lock().unwrap() = true;
    h.cv.notify_all();
    result.expect("run() still waiting for a blocked handler").expect("run()");
    log.wait_for("connection thread(s) still in a handler");
    let closes = h.closes.lock().unwrap().clone();
    assert!(closes.iter().any(|c| c.1 == CloseReason::Stopping), "{closes:?}");
    // The released thread handles nothing more (its queue was dropped).
    thread::sleep(Duration::from_millis(100));
    assert!(h.handled.load(Ordering::SeqCst) <= 2, "{} messages handled after the stop", h.handled.load(Ordering::SeqCst));
    assert!(closed_by_server(&mut idle));
}

/// The server closed `s`: end of stream or a reset, not data, not a timeout.
fn closed_by_server(s: &mut TcpStream) -> bool {
    let mut b = [0u8; 64];
    match s.read(&mut b) {
        Ok(n) => n == 0,
        Err(e) => e.kind() == ErrorKind::ConnectionReset,
    }
}

/// The examples take `--timeout MS` as the idle timeout and `--max-per-ip
/// N` on the command line (`sockflow_tcp_server_run` with the parsed args).
#[test]
fn echo_server_takes_timeout_and_max_per_ip() {
    let _g = serial();
    let (mut srv, port) = server("echo_server", Link::Dynamic, &["--frame", "line", "--timeout", "300", "--max-per-ip", "1"]);
    let mut first = connect(port);
    first.write_all(b"hello\n").unwrap();
    let mut b = [0u8; 6];
    first.read_exact(&mut b).unwrap();
    assert_eq!(&b, b"hello\n");
    // A second connection from the same address is closed at once.
    let mut second = connect(port);
    let _ = second.write_all(b"second\n");
    assert!(closed_by_server(&mut second), "a second connection was served");
    // The first, silent now, is closed for the idle timeout.
    assert!(closed_by_server(&mut first), "an idle connection was kept");
    let err = srv.stderr_text();
    assert!(err.contains("too many connections from one address (1): closing 127.0.0.1:"), "{}", srv.transcript());
    // Its slot is free again.
    assert!(eventually(wait(), || {
        let mut s = connect(port);
        s.write_all(b"again\n").is_ok() && {
            let mut b = [0u8; 6];
            s.read_exact(&mut b).is_ok() && &b == b"again\n"
        }
    }));
    stop(&mut srv, libc::SIGTERM);
}
