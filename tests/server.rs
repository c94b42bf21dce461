//! The multi-client servers (`sockflow::server`) driven directly from Rust:
//! a scripted [`Handler`] on a [`TcpServer`]/[`UdpServer`] running on its own
//! thread, std `TcpStream`/`UdpSocket` clients on 127.0.0.1, and the same
//! servers through their C API (`sockflow::ffi::server`) with `extern "C"`
//! callbacks written here.
//!
//! Every server binds port 0, every wait is bounded (`WAIT`), and every test
//! stops its server through its handle and joins the run thread (a
//! [`Running`] dropped by a failing test does the same). Timing is only ever
//! checked against generous upper bounds.

#[path = "server/kit.rs"]
mod skit;

use skit::*;
use sockflow::frame::Frame;
use sockflow::server::tcp::TcpServer;
use sockflow::server::{Action, CloseReason, Config, Conn, Handler, Mode};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// Defaults, silent.
fn quiet() -> Config {
    Config { log: None, ..Config::default() }
}

/// Polls `cond` every few ms until it holds or `WAIT` passes.
fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(5));
    }
}

// ---------------------------------------------------------------------------
// A line client
// ---------------------------------------------------------------------------

struct Client {
    w: TcpStream,
    r: BufReader<TcpStream>,
}

impl Client {
    fn connect(addr: SocketAddr) -> Client {
        let s = TcpStream::connect(addr).expect("connect");
        s.set_read_timeout(Some(WAIT)).unwrap();
        s.set_write_timeout(Some(WAIT)).unwrap();
        let r = BufReader::new(s.try_clone().unwrap());
        Client { w: s, r }
    }

    /// Connects and reads the `hello <id>` greeting; returns the id.
    fn greeted(addr: SocketAddr) -> (Client, u64) {
        let mut c = Client::connect(addr);
        let g = c.line();
        let id = g.strip_prefix("hello ").unwrap_or_else(|| panic!("greeting {g:?}")).parse().unwrap();
        (c, id)
    }

    fn local(&self) -> SocketAddr {
        self.w.local_addr().unwrap()
    }

    fn send(&mut self, line: &str) {
        self.w.write_all(format!("{line}\n").as_bytes()).expect("send");
    }

    /// The next line (without its `\n`); panics on EOF, error or timeout.
    fn line(&mut self) -> String {
        let mut s = String::new();
        match self.r.read_line(&mut s) {
            Ok(0) => panic!("EOF while waiting for a line"),
            Ok(_) if s.ends_with('\n') => {
                s.pop();
                s
            }
            Ok(_) => panic!("EOF inside a line: {s:?}"),
            Err(e) => panic!("reading a line: {e} (after {s:?})"),
        }
    }

    fn ask(&mut self, line: &str) -> String {
        self.send(line);
        self.line()
    }

    /// The server closed: EOF (or a reset) and nothing else.
    fn eof(&mut self) {
        let mut b = [0u8; 256];
        match self.r.read(&mut b) {
            Ok(0) => {}
            Ok(n) => panic!("expected EOF, got {:?}", String::from_utf8_lossy(&b[..n])),
            Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
            Err(e) => panic!("expected EOF, got error {e}"),
        }
    }
}

// ---------------------------------------------------------------------------
// The scripted handler
// ---------------------------------------------------------------------------

/// A gate a handler can wait on (bounded) until the test opens it.
#[derive(Default)]
struct Gate {
    open: Mutex<bool>,
    cv: Condvar,
}

impl Gate {
    fn wait(&self) {
        let g = self.open.lock().unwrap();
        let _ = self.cv.wait_timeout_while(g, WAIT, |o| !*o).unwrap();
    }
    fn open(&self) {
        *self.open.lock().unwrap() = true;
        self.cv.notify_all();
    }
}

/// One `on_close` call: the id, the reason, the calling thread's name.
type Closed = (u64, CloseReason, String);

/// Greets `hello <id>` (when `greet`), records every callback, and answers
/// these messages:
///
/// * `close`: `bye 1`, `bye 2`, then `Close`
/// * `stop`: `stopping`, then `Stop`
/// * `multi N`: `part 1/N` … `part N/N`
/// * `user`: increments the user slot, answers `user N`
/// * `id`: the connection id
/// * `big N`: N lines of 32 KiB; `bigclose N`: the same, then `Close`
/// * `bcast X` / `bcastall X`: broadcasts X without / with the sender
/// * `sleep MS`: sleeps, answers `slept MS`
/// * `block`: waits on the gate, answers `released`
/// * `n I`: sleeps I%3 ms, answers `r I`
/// * anything else: `echo:` and the message
#[derive(Default)]
struct Rec {
    greet: bool,
    connects: Mutex<Vec<u64>>,
    msgs: Mutex<Vec<(u64, String)>>,
    closes: Mutex<Vec<Closed>>,
    closed: Condvar,
    gate: Gate,
    blocked: AtomicUsize,
    /// `Conn::send` calls that failed.
    send_errors: AtomicUsize,
    /// `on_message` calls that returned.
    handled: AtomicUsize,
    /// How long `on_close` takes (to see that stop waits for it).
    close_delay_ms: u64,
}

const BIG_LINE: usize = 32 * 1024;

impl Rec {
    fn new() -> Arc<Rec> {
        Arc::new(Rec::default())
    }

    fn greeting() -> Arc<Rec> {
        Arc::new(Rec { greet: true, ..Rec::default() })
    }

    /// Waits until at least `n` connections have closed; returns them all.
    fn wait_closes(&self, n: usize) -> Vec<Closed> {
        let g = self.closes.lock().unwrap();
        let (g, _) = self.closed.wait_timeout_while(g, WAIT, |c| c.len() < n).unwrap();
        assert!(g.len() >= n, "only {} of {n} connections closed: {:?}", g.len(), *g);
        g.clone()
    }

    fn closes(&self) -> Vec<Closed> {
        self.closes.lock().unwrap().clone()
    }

    fn reason_of(&self, id: u64) -> Option<CloseReason> {
        self.closes().iter().find(|c| c.0 == id).map(|c| c.1)
    }

    fn got(&self, msg: &str) -> bool {
        self.msgs.lock().unwrap().iter().any(|(_, m)| m == msg)
    }

    /// Every connection that connected closed exactly once.
    fn assert_each_closed_once(&self) {
        let closes = self.closes();
        let mut count: HashMap<u64, usize> = HashMap::new();
        for (id, _, _) in &closes {
            *count.entry(*id).or_default() += 1;
        }
        for id in self.connects.lock().unwrap().iter() {
            assert_eq!(count.get(id), Some(&1), "connection {id:#x} closes: {closes:?}");
        }
        assert!(count.values().all(|&n| n == 1), "{closes:?}");
        assert_eq!(self.send_errors(), 0, "Conn::send failed in a handler");
    }

    fn send_errors(&self) -> usize {
        self.send_errors.load(Ordering::SeqCst)
    }
}

impl Rec {
    /// Sends; a failure is counted (never a panic on the server's thread).
    fn send(&self, c: &mut Conn<'_>, s: &[u8]) {
        if c.send(s).is_err() {
            self.send_errors.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn send_big(&self, c: &mut Conn<'_>, n: &str) {
        let line = vec![b'x'; BIG_LINE];
        for _ in 0..n.parse::<usize>().unwrap() {
            self.send(c, &line);
        }
    }
}

impl Handler for Rec {
    fn on_connect(&self, c: &mut Conn<'_>) -> Action {
        self.connects.lock().unwrap().push(c.id());
        if self.greet {
            self.send(c, format!("hello {}", c.id()).as_bytes());
        }
        Action::Continue
    }

    fn on_message(&self, c: &mut Conn<'_>, msg: &[u8]) -> Action {
        let action = self.script(c, msg);
        self.handled.fetch_add(1, Ordering::SeqCst);
        action
    }

    fn on_close(&self, c: &mut Conn<'_>, reason: CloseReason) {
        // Nothing can be sent any more.
        assert!(c.send(b"late").is_err(), "send inside on_close succeeded");
        if self.close_delay_ms > 0 {
            thread::sleep(Duration::from_millis(self.close_delay_ms));
        }
        let name = thread::current().name().unwrap_or("").to_string();
        self.closes.lock().unwrap().push((c.id(), reason, name));
        self.closed.notify_all();
    }
}

impl Rec {
    fn script(&self, c: &mut Conn<'_>, msg: &[u8]) -> Action {
        let m = String::from_utf8_lossy(msg).into_owned();
        self.msgs.lock().unwrap().push((c.id(), m.clone()));
        let (cmd, arg) = m.split_once(' ').unwrap_or((&m, ""));
        match cmd {
            "close" => {
                self.send(c, b"bye 1");
                self.send(c, b"bye 2");
                return Action::Close;
            }
            "stop" => {
                self.send(c, b"stopping");
                return Action::Stop;
            }
            "multi" => {
                let n: usize = arg.parse().unwrap();
                for i in 1..=n {
                    self.send(c, format!("part {i}/{n}").as_bytes());
                }
            }
            "user" => {
                let n = c.user() + 1;
                c.set_user(n);
                self.send(c, format!("user {n}").as_bytes());
            }
            "id" => self.send(c, c.id().to_string().as_bytes()),
            "big" => self.send_big(c, arg),
            "bigclose" => {
                self.send_big(c, arg);
                return Action::Close;
            }
            "bcast" => c.broadcast(arg.as_bytes(), false).unwrap(),
            "bcastall" => c.broadcast(arg.as_bytes(), true).unwrap(),
            "sleep" => {
                thread::sleep(Duration::from_millis(arg.parse().unwrap()));
                self.send(c, format!("slept {arg}").as_bytes());
            }
            "block" => {
                self.blocked.fetch_add(1, Ordering::SeqCst);
                self.gate.wait();
                self.blocked.fetch_sub(1, Ordering::SeqCst);
                self.send(c, b"released");
            }
            "n" => {
                let i: u64 = arg.parse().unwrap();
                thread::sleep(Duration::from_millis(i % 3));
                self.send(c, format!("r {i}").as_bytes());
            }
            _ => self.send(c, format!("echo:{m}").as_bytes()),
        }
        Action::Continue
    }
}

// ---------------------------------------------------------------------------
// 1. Handler callbacks and close reasons
// ---------------------------------------------------------------------------

#[test]
fn greeting_replies_and_close_after_flush() {
    let rec = Rec::greeting();
    let srv = start_tcp(quiet(), rec.clone());
    let (mut c, id) = Client::greeted(srv.addr);
    assert_ne!(id, 0);
    assert_eq!(c.ask("hi"), "echo:hi");
    c.send("multi 3");
    assert_eq!([c.line(), c.line(), c.line()], ["part 1/3", "part 2/3", "part 3/3"]);
    // Several messages in one write: each answered, in order; a reply ends
    // like the message it answers (CRLF for `a`).
    c.w.write_all(b"a\r\nmulti 2\nb\n").unwrap();
    assert_eq!([c.line(), c.line(), c.line(), c.line()], ["echo:a\r", "part 1/2", "part 2/2", "echo:b"]);
    // Close: both replies arrive, then EOF.
    c.send("close");
    assert_eq!(c.line(), "bye 1");
    assert_eq!(c.line(), "bye 2");
    c.eof();
    let closes = rec.wait_closes(1);
    assert_eq!((closes[0].0, closes[0].1), (id, CloseReason::Handler));
    srv.stop().expect("run");
    rec.assert_each_closed_once();
}

#[test]
fn close_reasons_peer_quit_stopping() {
    let rec = Rec::greeting();
    let srv = start_tcp(Config { quit: "quit".into(), ..quiet() }, rec.clone());
    let (mut peer, peer_id) = Client::greeted(srv.addr);
    let (mut quit, quit_id) = Client::greeted(srv.addr);
    let (mut open, open_id) = Client::greeted(srv.addr);

    assert_eq!(peer.ask("x"), "echo:x");
    drop(peer);
    rec.wait_closes(1);
    assert_eq!(rec.reason_of(peer_id), Some(CloseReason::Peer));

    // The quit word closes without reaching on_message, even after a
    // message in the same write.
    quit.w.write_all(b"before\nquit\n").unwrap();
    assert_eq!(quit.line(), "echo:before");
    quit.eof();
    rec.wait_closes(2);
    assert_eq!(rec.reason_of(quit_id), Some(CloseReason::Quit));
    assert!(!rec.got("quit"), "the quit word reached on_message");

    assert_eq!(open.ask("still"), "echo:still");
    srv.stop().expect("run");
    open.eof();
    assert_eq!(rec.reason_of(open_id), Some(CloseReason::Stopping));
    assert_eq!(rec.closes().len(), 3);
    rec.assert_each_closed_once();
}

#[test]
fn custom_quit_word_and_none() {
    // A different quit word: "quit" is an ordinary message then.
    let rec = Rec::new();
    let srv = start_tcp(Config { quit: "bye".into(), ..quiet() }, rec.clone());
    let mut c = Client::connect(srv.addr);
    assert_eq!(c.ask("quit"), "echo:quit");
    c.send("bye");
    c.eof();
    assert_eq!(rec.wait_closes(1)[0].1, CloseReason::Quit);
    srv.stop().unwrap();

    // No quit word at all.
    let rec = Rec::new();
    let srv = start_tcp(Config { quit: String::new(), ..quiet() }, rec.clone());
    let mut c = Client::connect(srv.addr);
    assert_eq!(c.ask("quit"), "echo:quit");
    assert_eq!(c.ask(""), "echo:");
    drop(c);
    assert_eq!(rec.wait_closes(1)[0].1, CloseReason::Peer);
    srv.stop().unwrap();
}

#[test]
fn handler_stop_stops_server() {
    let rec = Rec::greeting();
    let mut srv = start_tcp(quiet(), rec.clone());
    let (mut other, other_id) = Client::greeted(srv.addr);
    let (mut c, id) = Client::greeted(srv.addr);
    c.send("stop");
    assert_eq!(c.line(), "stopping");
    c.eof();
    other.eof();
    srv.wait_exit().expect("run() after a handler's Stop");
    assert_eq!(rec.reason_of(id), Some(CloseReason::Stopping));
    assert_eq!(rec.reason_of(other_id), Some(CloseReason::Stopping));
    rec.assert_each_closed_once();
    // Nothing listens any more.
    assert!(TcpStream::connect_timeout(&srv.addr, Duration::from_secs(2)).is_err());
}

#[test]
fn stop_before_run_returns_at_once() {
    let s = TcpServer::bind(&[any_port()], quiet(), Rec::new()).unwrap();
    s.handle().stop();
    let mut srv = spawn_run(s.handle(), s.local_addr(), move || s.run());
    srv.wait_exit().expect("run");
}

#[test]
fn idle_timeout_closes_silent_connection() {
    let rec = Rec::greeting();
    let cfg = Config { idle_timeout: Some(Duration::from_millis(200)), ..quiet() };
    let srv = start_tcp(cfg, rec.clone());
    let start = Instant::now();
    let (mut c, id) = Client::greeted(srv.addr);
    c.eof();
    assert!(start.elapsed() >= Duration::from_millis(150), "closed after {:?}", start.elapsed());
    assert_eq!(rec.wait_closes(1)[0], (id, CloseReason::Idle, "server-run".into()));
    srv.stop().unwrap();
    rec.assert_each_closed_once();
}

#[test]
fn overlong_line_closes_with_error_and_is_logged() {
    let rec = Rec::greeting();
    let log = LogBuf::default();
    let cfg = Config { frame: Frame::Line { max: 24 }, ..log.config() };
    let srv = start_tcp(cfg, rec.clone());
    let (mut bad, bad_id) = Client::greeted(srv.addr);
    let (mut good, _) = Client::greeted(srv.addr);
    // Exactly the maximum comes through (its reply fits too).
    assert_eq!(bad.ask("0123456789abcdefghi"), "echo:0123456789abcdefghi");
    bad.send(&"m".repeat(24));
    assert_eq!(bad.ask("id"), bad_id.to_string());
    assert!(rec.got(&"m".repeat(24)));
    // ... but its reply does not fit: refused at send.
    assert_eq!(rec.send_errors.swap(0, Ordering::SeqCst), 1);
    bad.send(&"a".repeat(100));
    bad.eof();
    rec.wait_closes(1);
    assert_eq!(rec.reason_of(bad_id), Some(CloseReason::Error));
    log.wait_for("longer than");
    assert_eq!(good.ask("fine"), "echo:fine");
    srv.stop().unwrap();
    rec.assert_each_closed_once();
    let text = log.text();
    assert!(text.starts_with("t: listening on 127.0.0.1 port "), "{text}");
    assert!(text.contains("t: stopped (127.0.0.1 port "), "{text}");
}

// ---------------------------------------------------------------------------
// 2. User slot and ids
// ---------------------------------------------------------------------------

#[test]
fn user_slot_per_connection_and_unique_ids() {
    let rec = Rec::greeting();
    let srv = start_tcp(quiet(), rec.clone());
    let mut clients: Vec<(Client, u64)> = (0..4).map(|_| Client::greeted(srv.addr)).collect();
    for round in 1..=3 {
        for (i, (c, _)) in clients.iter_mut().enumerate() {
            // Client i has done i extra increments in round 1.
            if round == 1 {
                for k in 1..=i {
                    assert_eq!(c.ask("user"), format!("user {k}"));
                }
            }
            assert_eq!(c.ask("user"), format!("user {}", i + round));
        }
    }
    let mut ids: Vec<u64> = Vec::new();
    for (c, id) in clients.iter_mut() {
        assert_eq!(c.ask("id"), id.to_string());
        ids.push(*id);
    }
    // A reconnect gets a fresh id (the slot may be reused, the id is not)
    // and a fresh user slot.
    let (c0, _) = clients.remove(0);
    drop(c0);
    rec.wait_closes(1);
    for _ in 0..3 {
        let (mut c, id) = Client::greeted(srv.addr);
        assert_eq!(c.ask("user"), "user 1");
        ids.push(id);
        drop(c);
    }
    rec.wait_closes(4);
    assert!(ids.iter().all(|&id| id != 0), "{ids:?}");
    let mut uniq = ids.clone();
    uniq.sort_unstable();
    uniq.dedup();
    assert_eq!(uniq.len(), ids.len(), "ids repeat: {ids:?}");
    srv.stop().unwrap();
    rec.assert_each_closed_once();
}

// ---------------------------------------------------------------------------
// 3. Broadcast and sends from other threads
// ---------------------------------------------------------------------------

#[test]
fn chat_room_broadcast_and_handle_sends() {
    let rec = Rec::greeting();
    let srv = start_tcp(quiet(), rec.clone());
    let mut cs: Vec<(Client, u64)> = (0..5).map(|_| Client::greeted(srv.addr)).collect();

    // One speaks: everybody else hears it, the speaker does not.
    cs[0].0.send("bcast hi all");
    for (c, _) in cs.iter_mut().skip(1) {
        assert_eq!(c.line(), "hi all");
    }
    // With include_self the speaker hears it too (and, since delivery is in
    // order, never heard the first one).
    cs[2].0.send("bcastall everyone");
    for (c, _) in cs.iter_mut() {
        assert_eq!(c.line(), "everyone");
    }

    // ServerHandle::send from another thread reaches exactly that client.
    let target = cs[3].1;
    let h = srv.handle.clone();
    thread::spawn(move || {
        h.send(target, b"direct").unwrap();
        h.broadcast(b"after", None).unwrap();
    })
    .join()
    .unwrap();
    assert_eq!(cs[3].0.line(), "direct");
    for (c, _) in cs.iter_mut() {
        assert_eq!(c.line(), "after");
    }

    // broadcast with an exception.
    srv.handle.broadcast(b"not you", Some(cs[1].1)).unwrap();
    srv.handle.send(cs[1].1, b"just you").unwrap();
    for (i, (c, _)) in cs.iter_mut().enumerate() {
        assert_eq!(c.line(), if i == 1 { "just you" } else { "not you" });
    }

    // Sending to a gone id is harmless.
    let (gone, gone_id) = cs.remove(4);
    drop(gone);
    rec.wait_closes(1);
    srv.handle.send(gone_id, b"ghost").expect("send to a gone id");
    srv.handle.send(0, b"ghost").expect("send to id 0");
    srv.handle.send(u64::MAX, b"ghost").expect("send to an id never given");
    srv.handle.broadcast(b"still", None).unwrap();
    for (c, _) in cs.iter_mut() {
        assert_eq!(c.line(), "still");
        assert_eq!(c.ask("ping"), "echo:ping");
    }
    // A message the frame cannot carry is refused at once.
    assert!(srv.handle.send(cs[0].1, b"two\nlines").is_err());
    srv.stop().unwrap();
    for (c, _) in cs.iter_mut() {
        c.eof();
    }
    rec.assert_each_closed_once();
}

// ---------------------------------------------------------------------------
// 4. A client that does not read
// ---------------------------------------------------------------------------

/// A client that sends requests faster than it reads their (large) replies
/// is not read any more until it catches up (backpressure, as an epoll
/// server would do it): never dropped, every reply arrives, others are served.
#[test]
fn slow_reader_of_its_own_replies_is_paused_not_dropped() {
    slow_reader_paused(quiet());
}

/// The same in thread-per-connection mode: the worker's replies count as
/// the connection's own, and the worker waits while they are over high
/// water (the requests it already holds must not pile up replies).
#[test]
fn thread_mode_slow_reader_of_its_own_replies_is_paused_not_dropped() {
    slow_reader_paused(threaded());
}

fn slow_reader_paused(cfg: Config) {
    let rec = Rec::greeting();
    let srv = start_tcp(cfg, rec.clone());
    let (mut slow, _) = Client::greeted(srv.addr);
    let (mut fast, _) = Client::greeted(srv.addr);
    // 32 requests of 1 MiB of replies each: far past max_queue (1 MiB)
    // and what kernel buffers take (a few MiB).
    const N: usize = 32;
    slow.w.write_all("big 32\n".repeat(N).as_bytes()).unwrap();
    eventually("the first big request", || rec.got("big 32"));
    for _ in 0..20 {
        assert_eq!(fast.ask("ping"), "echo:ping");
    }
    let handled = rec.msgs.lock().unwrap().iter().filter(|m| m.1 == "big 32").count();
    assert!(handled < N / 2, "{handled} of {N} requests handled for a client that reads nothing: not paused");
    assert!(rec.closes().is_empty(), "dropped: {:?}", rec.closes());
    for i in 0..N * 32 {
        assert_eq!(slow.line().len(), BIG_LINE, "reply line {i}");
    }
    assert_eq!(slow.ask("done"), "echo:done");
    srv.stop().unwrap();
    rec.assert_each_closed_once();
    assert!(rec.closes().iter().all(|c| c.1 == CloseReason::Stopping), "{:?}", rec.closes());
}

/// Bytes pushed by others (`ServerHandle::send`, broadcasts) past
/// `max_queue` drop a client that does not take them (`Overflow`): slowing
/// its own input cannot help there.
#[test]
fn pushed_bytes_past_max_queue_drop_a_client_that_does_not_read() {
    let rec = Rec::greeting();
    let log = LogBuf::default();
    let srv = start_tcp(log.config(), rec.clone());
    let (_slow, slow_id) = Client::greeted(srv.addr);
    let (mut fast, _) = Client::greeted(srv.addr);
    let line = vec![b'p'; BIG_LINE];
    for i in 0..4096 {
        if rec.reason_of(slow_id).is_some() {
            break;
        }
        srv.handle.send(slow_id, &line).unwrap();
        if i % 64 == 63 {
            assert_eq!(fast.ask("ping"), "echo:ping");
        }
    }
    rec.wait_closes(1);
    assert_eq!(rec.reason_of(slow_id), Some(CloseReason::Overflow));
    log.wait_for("not reading its replies");
    assert_eq!(fast.ask("still here"), "echo:still here");
    srv.stop().unwrap();
    rec.assert_each_closed_once();
}

// ---------------------------------------------------------------------------
// 5. max_conns
// ---------------------------------------------------------------------------

#[test]
fn max_conns_closes_the_extra_connection() {
    let rec = Rec::greeting();
    let log = LogBuf::default();
    let srv = start_tcp(Config { max_conns: 3, ..log.config() }, rec.clone());
    let mut cs: Vec<(Client, u64)> = (0..3).map(|_| Client::greeted(srv.addr)).collect();
    let mut fourth = Client::connect(srv.addr);
    fourth.eof(); // no greeting: closed at once
    log.wait_for("too many connections");
    for (c, _) in cs.iter_mut() {
        assert_eq!(c.ask("ping"), "echo:ping");
    }
    assert_eq!(rec.connects.lock().unwrap().len(), 3);
    // One leaves; once the server saw it go, a new one is accepted.
    drop(cs.remove(0));
    rec.wait_closes(1);
    let (mut late, _) = Client::greeted(srv.addr);
    assert_eq!(late.ask("ping"), "echo:ping");
    srv.stop().unwrap();
    rec.assert_each_closed_once();
}

// ---------------------------------------------------------------------------
// 6. Thread-per-connection mode
// ---------------------------------------------------------------------------

fn threaded() -> Config {
    Config { mode: Mode::ThreadPerConnection, ..quiet() }
}

#[test]
fn thread_mode_blocked_handler_does_not_delay_others() {
    let rec = Arc::new(Rec { greet: true, close_delay_ms: 100, ..Rec::default() });
    let srv = start_tcp(threaded(), rec.clone());
    let (mut a, _) = Client::greeted(srv.addr);
    let (mut b, _) = Client::greeted(srv.addr);
    a.send("block");
    eventually("A's handler to block", || rec.blocked.load(Ordering::SeqCst) == 1);
    // B is answered while A's handler is still blocked.
    assert_eq!(b.ask("ping"), "echo:ping");
    assert_eq!(b.ask("sleep 10"), "slept 10");
    assert_eq!(rec.blocked.load(Ordering::SeqCst), 1, "A's handler returned early");
    // A's messages queue behind the blocked one and come in order.
    a.send("after");
    rec.gate.open();
    assert_eq!(a.line(), "released");
    assert_eq!(a.line(), "echo:after");

    // Stop joins the workers: every on_close (100 ms each) ran, on its
    // connection's thread, before run() returned.
    srv.stop().unwrap();
    let closes = rec.closes();
    assert_eq!(closes.len(), 2, "{closes:?}");
    for (_, reason, thread) in &closes {
        assert_eq!(*reason, CloseReason::Stopping);
        assert!(thread.starts_with("sockflow-conn-"), "on_close ran on {thread:?}");
    }
    rec.assert_each_closed_once();
    a.eof();
    b.eof();
}

#[test]
fn thread_mode_two_blocked_handlers_run_concurrently() {
    let rec = Rec::greeting();
    let srv = start_tcp(threaded(), rec.clone());
    let (mut a, _) = Client::greeted(srv.addr);
    let (mut b, _) = Client::greeted(srv.addr);
    a.send("block");
    b.send("block");
    eventually("both handlers to block", || rec.blocked.load(Ordering::SeqCst) == 2);
    rec.gate.open();
    assert_eq!(a.line(), "released");
    assert_eq!(b.line(), "released");
    srv.stop().unwrap();
}

#[test]
fn thread_mode_preserves_reply_order() {
    let rec = Rec::greeting();
    let srv = start_tcp(threaded(), rec.clone());
    let mut cs: Vec<(Client, u64)> = (0..3).map(|_| Client::greeted(srv.addr)).collect();
    for (c, _) in cs.iter_mut() {
        let burst: String = (0..40).map(|i| format!("n {i}\nmulti 2\n")).collect();
        c.w.write_all(burst.as_bytes()).unwrap();
    }
    for (c, _) in cs.iter_mut() {
        for i in 0..40 {
            assert_eq!(c.line(), format!("r {i}"));
            assert_eq!(c.line(), "part 1/2");
            assert_eq!(c.line(), "part 2/2");
        }
    }
    srv.stop().unwrap();
    rec.assert_each_closed_once();
}

#[test]
fn thread_mode_replies_after_half_close_are_delivered() {
    let rec = Rec::greeting();
    let srv = start_tcp(threaded(), rec.clone());
    let (mut c, id) = Client::greeted(srv.addr);
    c.w.write_all(b"sleep 150\nmulti 2\nsleep 50\n").unwrap();
    c.w.shutdown(Shutdown::Write).unwrap();
    assert_eq!(c.line(), "slept 150");
    assert_eq!(c.line(), "part 1/2");
    assert_eq!(c.line(), "part 2/2");
    assert_eq!(c.line(), "slept 50");
    c.eof();
    let closes = rec.wait_closes(1);
    assert_eq!((closes[0].0, closes[0].1), (id, CloseReason::Peer));
    assert!(closes[0].2.starts_with("sockflow-conn-"), "{closes:?}");
    srv.stop().unwrap();
    rec.assert_each_closed_once();
}

#[test]
fn thread_mode_close_quit_and_handler_stop() {
    let rec = Rec::greeting();
    let mut srv = start_tcp(Config { quit: "quit".into(), ..threaded() }, rec.clone());
    let (mut a, a_id) = Client::greeted(srv.addr);
    a.send("close");
    assert_eq!([a.line(), a.line()], ["bye 1", "bye 2"]);
    a.eof();
    let (mut q, q_id) = Client::greeted(srv.addr);
    q.w.write_all(b"sleep 50\nquit\n").unwrap();
    assert_eq!(q.line(), "slept 50");
    q.eof();
    rec.wait_closes(2);
    assert_eq!(rec.reason_of(a_id), Some(CloseReason::Handler));
    assert_eq!(rec.reason_of(q_id), Some(CloseReason::Quit));
    assert!(!rec.got("quit"));
    let (mut s, s_id) = Client::greeted(srv.addr);
    s.send("stop");
    assert_eq!(s.line(), "stopping");
    s.eof();
    srv.wait_exit().expect("run() after Stop from a worker");
    assert_eq!(rec.reason_of(s_id), Some(CloseReason::Stopping));
    rec.assert_each_closed_once();
}

/// More input than `max_queue` in one burst pauses reading; once the worker
/// catches up every message must still be handled.
#[test]
fn thread_mode_burst_over_max_queue_is_fully_handled() {
    let rec = Rec::greeting();
    let srv = start_tcp(Config { max_queue: 64, ..threaded() }, rec.clone());
    let (mut c, _) = Client::greeted(srv.addr);
    c.r.get_ref().set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let mut burst = String::from("sleep 100\n");
    for i in 0..40 {
        burst.push_str(&format!("n {i}\n"));
    }
    c.w.write_all(burst.as_bytes()).unwrap();
    let mut want = vec!["slept 100".to_string()];
    want.extend((0..40).map(|i| format!("r {i}")));
    let mut got = Vec::new();
    let mut l = String::new();
    while got.len() < want.len() && matches!(c.r.read_line(&mut l), Ok(n) if n > 0) {
        got.push(l.trim_end().to_string());
        l.clear();
    }
    assert_eq!(got, want, "replies before the read timed out");
    srv.stop().unwrap();
}

// ---------------------------------------------------------------------------
// 7. Graceful stop
// ---------------------------------------------------------------------------

#[test]
fn stop_flushes_queued_replies_first() {
    let rec = Rec::greeting();
    let srv = start_tcp(quiet(), rec.clone());
    let mut cs: Vec<(Client, u64)> = (0..3).map(|_| Client::greeted(srv.addr)).collect();
    // 512 KiB waiting for a client that has not read yet.
    cs[0].0.send("big 16");
    eventually("the big request", || rec.got("big 16"));
    srv.handle.broadcast(b"final", None).unwrap();
    srv.handle.send(cs[1].1, b"last words").unwrap();
    // Stop now, read after: the reply is larger than socket buffers may be.
    let mut srv = srv;
    srv.handle.stop();
    for _ in 0..16 {
        assert_eq!(cs[0].0.line().len(), BIG_LINE);
    }
    assert_eq!(cs[0].0.line(), "final");
    assert_eq!(cs[1].0.line(), "final");
    assert_eq!(cs[1].0.line(), "last words");
    assert_eq!(cs[2].0.line(), "final");
    for (c, _) in cs.iter_mut() {
        c.eof();
    }
    srv.wait_exit().unwrap();
    assert!(rec.closes().iter().all(|c| c.1 == CloseReason::Stopping), "{:?}", rec.closes());
    rec.assert_each_closed_once();
}

#[test]
fn thread_mode_stop_flushes_replies_sent_before_it() {
    let rec = Rec::greeting();
    let srv = start_tcp(threaded(), rec.clone());
    let (mut c, _) = Client::greeted(srv.addr);
    c.send("multi 3");
    // The worker sent its replies before stop is asked.
    eventually("the request to be handled", || rec.handled.load(Ordering::SeqCst) == 1);
    srv.stop().unwrap();
    assert_eq!([c.line(), c.line(), c.line()], ["part 1/3", "part 2/3", "part 3/3"]);
    c.eof();
}

/// `Close` after a reply larger than the socket buffers, while the client
/// had already sent more (which the closing connection no longer reads):
/// the whole reply must still arrive, then a clean EOF.
#[test]
fn close_after_large_reply_survives_unread_input() {
    let rec = Rec::greeting();
    let srv = start_tcp(Config { max_queue: 64 << 20, ..quiet() }, rec.clone());
    let (mut c, _) = Client::greeted(srv.addr);
    let n = 128; // 4 MiB
    c.send(&format!("bigclose {n}"));
    eventually("the request", || rec.got(&format!("bigclose {n}")));
    c.send("one more thing");
    thread::sleep(Duration::from_millis(50));
    let mut got = 0;
    let mut line = Vec::new();
    let result = loop {
        line.clear();
        match c.r.read_until(b'\n', &mut line) {
            Ok(0) => break Ok(()),
            Ok(_) => got += 1,
            Err(e) => break Err(e),
        }
        // A reader slower than loopback, as across a network.
        if got % 8 == 0 {
            thread::sleep(Duration::from_millis(2));
        }
    };
    assert_eq!(got, n, "lines received before {result:?}");
    assert!(result.is_ok(), "{result:?}");
    srv.stop().unwrap();
}

// ---------------------------------------------------------------------------
// 8. UDP
// ---------------------------------------------------------------------------

fn udp_client() -> UdpSocket {
    let s = UdpSocket::bind(any_port()).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    s
}

fn recv(s: &UdpSocket) -> Vec<u8> {
    let mut b = [0u8; 2048];
    let (n, _) = s.recv_from(&mut b).expect("recv_from");
    b[..n].to_vec()
}

#[test]
fn udp_replies_go_to_the_sender() {
    let rec = Rec::new();
    let srv = start_udp(quiet(), rec.clone());
    let (a, b) = (udp_client(), udp_client());
    a.send_to(b"from a\n", srv.addr).unwrap();
    b.send_to(b"from b", srv.addr).unwrap();
    assert_eq!(recv(&b), b"echo:from b");
    // A reply ends like the datagram it answers.
    assert_eq!(recv(&a), b"echo:from a\n");
    b.send_to(b"multi 2", srv.addr).unwrap();
    assert_eq!(recv(&b), b"part 1/2");
    assert_eq!(recv(&b), b"part 2/2");
    // The user slot lasts one datagram; every datagram has its own id.
    a.send_to(b"user", srv.addr).unwrap();
    assert_eq!(recv(&a), b"user 1");
    a.send_to(b"user", srv.addr).unwrap();
    assert_eq!(recv(&a), b"user 1");
    let ids: Vec<u64> = rec.msgs.lock().unwrap().iter().map(|m| m.0).collect();
    assert!(ids.iter().all(|&i| i != 0) && ids.windows(2).all(|w| w[0] != w[1]), "{ids:?}");
    // No connections: the handle cannot send, and TCP-only callbacks never run.
    assert!(srv.handle.send(ids[0], b"x").is_err());
    assert!(srv.handle.broadcast(b"x", None).is_err());
    srv.stop().expect("run");
    assert!(rec.connects.lock().unwrap().is_empty());
    assert!(rec.closes().is_empty());
}

#[test]
fn udp_fixed_frames_pad_strip_and_drop_oversize() {
    let rec = Rec::new();
    let log = LogBuf::default();
    let srv = start_udp(Config { frame: Frame::Fixed(32), ..log.config() }, rec.clone());
    let c = udp_client();
    let mut d = [0u8; 32];
    d[..13].copy_from_slice(b"hi\0ignored me");
    c.send_to(&d, srv.addr).unwrap();
    let r = recv(&c);
    assert_eq!(r.len(), 32, "{r:?}");
    assert_eq!(&r[..7], b"echo:hi");
    assert!(r[7..].iter().all(|&b| b == 0), "{r:?}");
    assert!(rec.got("hi"));
    // Longer than 31 without a NUL: dropped with a log line.
    c.send_to(&[b'a'; 40], srv.addr).unwrap();
    c.send_to(&[b'b'; 32], srv.addr).unwrap();
    c.send_to(b"ok", srv.addr).unwrap();
    let r = recv(&c);
    assert_eq!(&r[..7], b"echo:ok");
    assert_eq!(r.len(), 32);
    log.wait_for("datagram of 40 bytes is over the limit of 31");
    log.wait_for("datagram of 32 bytes is over the limit of 31");
    assert!(!rec.got(&"a".repeat(40)));
    srv.stop().unwrap();
}

/// Echo without a prefix (so a 31-byte fixed message can come back).
struct Plain;

impl Handler for Plain {
    fn on_message(&self, c: &mut Conn<'_>, msg: &[u8]) -> Action {
        c.send(msg).unwrap();
        if msg == b"stop" {
            Action::Stop
        } else {
            Action::Continue
        }
    }
}

#[test]
fn udp_handler_stop_and_full_fixed_frame() {
    let mut srv = start_udp(Config { frame: Frame::Fixed(32), ..quiet() }, Arc::new(Plain));
    let c = udp_client();
    c.send_to(&[b'q'; 31], srv.addr).unwrap();
    let r = recv(&c);
    assert_eq!(&r[..31], &[b'q'; 31]);
    assert_eq!(r[31], 0);
    c.send_to(b"stop", srv.addr).unwrap();
    assert_eq!(&recv(&c)[..5], b"stop\0");
    srv.wait_exit().expect("run() after Stop");
}

// ---------------------------------------------------------------------------
// 9. Restart on the same port
// ---------------------------------------------------------------------------

#[test]
fn restart_binds_the_same_port_at_once() {
    let rec = Rec::greeting();
    let srv = start_tcp(quiet(), rec.clone());
    let addr = srv.addr;
    let mut clients: Vec<(Client, u64)> = (0..3).map(|_| Client::greeted(addr)).collect();
    for (c, _) in clients.iter_mut() {
        assert_eq!(c.ask("ping"), "echo:ping");
    }
    // The server closes first: its side of each connection is in TIME_WAIT.
    srv.stop().unwrap();
    for (c, _) in clients.iter_mut() {
        c.eof();
    }
    drop(clients);
    let rec2 = Rec::greeting();
    let s = TcpServer::bind(&[addr], quiet(), rec2.clone()).expect("bind the same port again");
    assert_eq!(s.local_addr(), addr);
    let srv2 = spawn_run(s.handle(), addr, move || s.run());
    let (mut c, _) = Client::greeted(addr);
    assert_eq!(c.ask("again"), "echo:again");
    srv2.stop().unwrap();
    c.eof();
}

#[test]
fn bind_a_port_in_use_fails() {
    let srv = start_tcp(quiet(), Rec::new());
    let e = TcpServer::bind(&[srv.addr], quiet(), Rec::new()).err().expect("second bind of a listening port");
    assert_eq!(e.code, sockflow::Code::AddrInUse, "{e:?}");
    srv.stop().unwrap();
}

// ---------------------------------------------------------------------------
// Other frames, on_connect actions, resets, signals
// ---------------------------------------------------------------------------

fn len32(msg: &[u8]) -> Vec<u8> {
    let mut v = (msg.len() as u32).to_be_bytes().to_vec();
    v.extend_from_slice(msg);
    v
}

#[test]
fn len32_frames_carry_binary_messages() {
    let srv = start_tcp(Config { frame: Frame::Len32 { max: 1024 }, ..quiet() }, Arc::new(Plain));
    let mut c = Client::connect(srv.addr);
    let msgs: [&[u8]; 3] = [b"a\0b\nc", b"", &[0xff; 1024]];
    let mut all = Vec::new();
    for m in msgs {
        all.extend(len32(m));
    }
    // One write holding three messages, the second empty.
    c.w.write_all(&all).unwrap();
    let mut back = vec![0u8; all.len()];
    c.r.read_exact(&mut back).unwrap();
    assert_eq!(back, all);
    // Over the maximum: the connection is closed.
    c.w.write_all(&len32(&[1; 1025])).unwrap();
    c.eof();
    srv.stop().unwrap();
}

/// Sends `go away` from `on_connect`, then returns the given action; the
/// rest is `Rec`'s.
struct OnConnect(Action, Arc<Rec>);

impl Handler for OnConnect {
    fn on_connect(&self, c: &mut Conn<'_>) -> Action {
        self.1.on_connect(c);
        c.send(b"go away").unwrap();
        self.0
    }
    fn on_message(&self, c: &mut Conn<'_>, msg: &[u8]) -> Action {
        self.1.on_message(c, msg)
    }
    fn on_close(&self, c: &mut Conn<'_>, r: CloseReason) {
        self.1.on_close(c, r)
    }
}

#[test]
fn on_connect_close_and_stop() {
    for mode in [Mode::EventLoop, Mode::ThreadPerConnection] {
        let rec = Rec::new();
        let srv = start_tcp(Config { mode, ..quiet() }, Arc::new(OnConnect(Action::Close, rec.clone())));
        let mut c = Client::connect(srv.addr);
        assert_eq!(c.line(), "go away");
        c.eof();
        assert_eq!(rec.wait_closes(1)[0].1, CloseReason::Handler, "{mode:?}");
        srv.stop().unwrap();

        let rec = Rec::new();
        let mut srv = start_tcp(Config { mode, ..quiet() }, Arc::new(OnConnect(Action::Stop, rec.clone())));
        let mut c = Client::connect(srv.addr);
        assert_eq!(c.line(), "go away");
        c.eof();
        srv.wait_exit().unwrap();
        assert_eq!(rec.wait_closes(1)[0].1, CloseReason::Stopping, "{mode:?}");
    }
}

#[test]
fn peer_reset_closes_with_error() {
    use std::os::fd::AsRawFd;
    let rec = Rec::greeting();
    let srv = start_tcp(quiet(), rec.clone());
    let (mut c, id) = Client::greeted(srv.addr);
    assert_eq!(c.ask("x"), "echo:x");
    // SO_LINGER 0: close sends a RST.
    let l = libc::linger { l_onoff: 1, l_linger: 0 };
    // SAFETY: a valid socket and a linger struct of the given size.
    let rc = unsafe {
        libc::setsockopt(
            c.w.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&l as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0);
    drop(c);
    assert_eq!(rec.wait_closes(1)[0].1, CloseReason::Error);
    assert_eq!(rec.reason_of(id), Some(CloseReason::Error));
    let (mut d, _) = Client::greeted(srv.addr);
    assert_eq!(d.ask("y"), "echo:y");
    srv.stop().unwrap();
}

/// The only test that raises a signal: the server catches it (so the
/// process is not terminated) and stops gracefully.
#[test]
fn sigterm_stops_a_server_that_handles_signals() {
    let rec = Rec::greeting();
    let log = LogBuf::default();
    let mut srv = start_tcp(Config { handle_signals: true, ..log.config() }, rec.clone());
    let (mut c, id) = Client::greeted(srv.addr);
    assert_eq!(c.ask("x"), "echo:x");
    // SAFETY: raise(3) with a signal this server handles.
    assert_eq!(unsafe { libc::raise(libc::SIGTERM) }, 0);
    c.eof();
    srv.wait_exit().expect("run() after SIGTERM");
    assert_eq!(rec.reason_of(id), Some(CloseReason::Stopping));
    assert!(log.text().contains("t: signal received: stopping"), "{}", log.text());
}

// ---------------------------------------------------------------------------
// Thread mode keeps finished threads
// ---------------------------------------------------------------------------

fn mapping_count() -> usize {
    std::fs::read_to_string("/proc/self/maps").map(|m| m.lines().count()).unwrap_or(0)
}

/// A long-lived thread-per-connection server must not keep one unjoined
/// thread (its stack mapping) per connection it ever had.
#[test]
fn thread_mode_reaps_finished_workers() {
    let rec = Rec::new();
    let srv = start_tcp(threaded(), rec.clone());
    let round = |n: usize| {
        for i in 0..n {
            let mut c = Client::connect(srv.addr);
            assert_eq!(c.ask("x"), "echo:x", "connection {i}");
        }
    };
    round(20);
    rec.wait_closes(20);
    let before = mapping_count();
    round(400);
    rec.wait_closes(420);
    thread::sleep(Duration::from_millis(200));
    let grown = mapping_count().saturating_sub(before);
    assert!(grown < 200, "{grown} more memory mappings after 400 finished connections");
    srv.stop().unwrap();
}

// ---------------------------------------------------------------------------
// 10. The C API
// ---------------------------------------------------------------------------

mod c_api {
    use super::{Client, WAIT};
    use sockflow::ffi::addr::sockflow_addr;
    use sockflow::ffi::args::{sockflow_args, sockflow_args_init, sockflow_args_set_frame, sockflow_role};
    use sockflow::ffi::error::{SOCKFLOW_EBADHANDLE, SOCKFLOW_EINVAL};
    use sockflow::ffi::handler::{
        sockflow_close_reason, sockflow_conn, sockflow_conn_id, sockflow_conn_peer, sockflow_conn_send, sockflow_conn_set_user,
        sockflow_conn_user, sockflow_handler, sockflow_handler_echo,
    };
    use sockflow::ffi::server::{
        sockflow_server, sockflow_server_close, sockflow_server_config, sockflow_server_config_init, sockflow_server_port,
        sockflow_server_run, sockflow_server_stop, sockflow_tcp_server_new, sockflow_udp_server_new,
    };
    use sockflow::ffi::SOCKFLOW_FOREVER;
    use std::ffi::{c_char, c_int, c_void, CStr};
    use std::io::{Read, Write};
    use std::net::{SocketAddr, UdpSocket};
    use std::sync::{mpsc, Condvar, Mutex};
    use std::thread;
    use std::thread::JoinHandle;

    /// What the C-style callbacks saw (their userdata).
    #[derive(Default)]
    struct State {
        /// (id, reason, what sockflow_conn_send returned inside on_close)
        closes: Mutex<Vec<(u64, c_int, c_int)>>,
        closed: Condvar,
        /// A `msg` that was not NUL-terminated, or a failed call.
        bad: Mutex<Vec<String>>,
    }

    impl State {
        fn wait_closes(&self, n: usize) -> Vec<(u64, c_int, c_int)> {
            let g = self.closes.lock().unwrap();
            let (g, _) = self.closed.wait_timeout_while(g, WAIT, |c| c.len() < n).unwrap();
            assert!(g.len() >= n, "only {} of {n} closes: {:?}", g.len(), *g);
            g.clone()
        }
        fn bad(&self, what: String) {
            self.bad.lock().unwrap().push(what);
        }
    }

    unsafe fn state<'a>(ud: *mut c_void) -> &'a State {
        &*(ud as *const State)
    }

    unsafe fn reply(st: &State, conn: *mut sockflow_conn, s: &str) {
        let rc = sockflow_conn_send(conn, s.as_ptr().cast(), s.len());
        if rc != 0 {
            st.bad(format!("sockflow_conn_send({s:?}) = {rc}"));
        }
    }

    unsafe extern "C" fn on_connect(ud: *mut c_void, conn: *mut sockflow_conn) -> c_int {
        reply(state(ud), conn, &format!("hello {}", sockflow_conn_id(conn)));
        0
    }

    unsafe extern "C" fn on_message(ud: *mut c_void, conn: *mut sockflow_conn, msg: *const c_char, len: usize) -> c_int {
        let st = state(ud);
        if *msg.add(len) != 0 {
            st.bad(format!("msg of {len} bytes is not NUL-terminated"));
        }
        let text = String::from_utf8_lossy(std::slice::from_raw_parts(msg.cast::<u8>(), len)).into_owned();
        if !text.contains('\0') && CStr::from_ptr(msg).to_bytes().len() != len {
            st.bad(format!("strlen(msg) != len for {text:?}"));
        }
        match text.as_str() {
            "count" => {
                let mut p = sockflow_conn_user(conn).cast::<u64>();
                if p.is_null() {
                    p = Box::into_raw(Box::new(0u64));
                    if sockflow_conn_set_user(conn, p.cast()) != 0 {
                        st.bad("sockflow_conn_set_user failed".into());
                    }
                }
                *p += 1;
                reply(st, conn, &format!("count {}", *p));
            }
            "peer" => {
                let mut a: sockflow_addr = std::mem::zeroed();
                let rc = sockflow_conn_peer(conn, &mut a);
                let ip = CStr::from_ptr(a.ip.as_ptr()).to_string_lossy().into_owned();
                reply(st, conn, &format!("peer {rc} {ip} {} {}", a.port, a.family));
            }
            "id" => reply(st, conn, &sockflow_conn_id(conn).to_string()),
            "neg" => {
                reply(st, conn, "negative");
                return -1;
            }
            "close" => return 1,
            "stop" => return 2,
            _ => reply(st, conn, &format!("c:{text}")),
        }
        0
    }

    unsafe extern "C" fn on_close(ud: *mut c_void, conn: *mut sockflow_conn, reason: c_int) {
        let st = state(ud);
        let p = sockflow_conn_user(conn).cast::<u64>();
        if !p.is_null() {
            drop(Box::from_raw(p));
        }
        let late = sockflow_conn_send(conn, b"late".as_ptr().cast(), 4);
        st.closes.lock().unwrap().push((sockflow_conn_id(conn), reason, late));
        st.closed.notify_all();
    }

    fn handler() -> sockflow_handler {
        sockflow_handler { on_connect: Some(on_connect), on_message: Some(on_message), on_close: Some(on_close), builtin: 0 }
    }

    fn args() -> sockflow_args {
        // SAFETY: plain data, filled by sockflow_args_init.
        let mut a: sockflow_args = unsafe { std::mem::zeroed() };
        assert_eq!(sockflow_args_init(&mut a, sockflow_role::Server as c_int, c"127.0.0.1".as_ptr(), 0), 0);
        a
    }

    fn config() -> sockflow_server_config {
        let mut c = std::mem::MaybeUninit::<sockflow_server_config>::uninit();
        assert_eq!(sockflow_server_config_init(c.as_mut_ptr()), 0);
        // SAFETY: initialised by sockflow_server_config_init.
        let mut c = unsafe { c.assume_init() };
        c.quiet = 1;
        c
    }

    /// A `sockflow_server *` that may cross threads (the API allows run on
    /// one thread and stop/port on another).
    #[derive(Clone, Copy)]
    struct Srv(*mut sockflow_server);
    // SAFETY: sockflow_server is documented as usable from any thread for
    // run/stop/port; free happens after run returned.
    unsafe impl Send for Srv {}

    impl Srv {
        fn addr(self) -> SocketAddr {
            let port = sockflow_server_port(self.0);
            assert!(port > 0, "sockflow_server_port = {port}");
            SocketAddr::from(([127, 0, 0, 1], port as u16))
        }

        fn run(self) -> (mpsc::Receiver<c_int>, JoinHandle<()>) {
            let (tx, rx) = mpsc::channel();
            let j = thread::spawn(move || {
                let s = self;
                let _ = tx.send(sockflow_server_run(s.0));
            });
            (rx, j)
        }

        /// Stops from this (another) thread, waits for run, checks a second
        /// run is refused, frees.
        fn stop_and_free(self, (rx, j): (mpsc::Receiver<c_int>, JoinHandle<()>)) {
            assert_eq!(sockflow_server_stop(self.0), 0);
            assert_eq!(rx.recv_timeout(WAIT).expect("sockflow_server_run did not return"), 0);
            j.join().unwrap();
            assert_eq!(sockflow_server_run(self.0), SOCKFLOW_EBADHANDLE, "a server runs once");
            sockflow_server_close(self.0);
        }
    }

    fn new_tcp(a: &sockflow_args, cfg: Option<&sockflow_server_config>, h: sockflow_handler, st: &State) -> Srv {
        let mut s: *mut sockflow_server = std::ptr::null_mut();
        let cfg = cfg.map_or(std::ptr::null(), |c| c as *const _);
        let rc = sockflow_tcp_server_new(a, cfg, h, st as *const State as *mut c_void, &mut s);
        assert_eq!(rc, 0);
        assert!(!s.is_null());
        Srv(s)
    }

    #[test]
    fn c_handler_callbacks_user_peer_id() {
        let st = State::default();
        let mut a = args();
        a.quit[..4].copy_from_slice(&[b'q' as c_char, b'u' as c_char, b'i' as c_char, b't' as c_char]);
        let srv = new_tcp(&a, Some(&config()), handler(), &st);
        let addr = srv.addr();
        let running = srv.run();

        let (mut a, a_id) = Client::greeted(addr);
        let (mut b, b_id) = Client::greeted(addr);
        assert!(a_id != 0 && b_id != 0 && a_id != b_id);
        assert_eq!(a.ask("count"), "count 1");
        assert_eq!(a.ask("count"), "count 2");
        assert_eq!(b.ask("count"), "count 1");
        assert_eq!(a.ask("count"), "count 3");
        assert_eq!(a.ask("id"), a_id.to_string());
        assert_eq!(b.ask("peer"), format!("peer 0 127.0.0.1 {} 4", b.local().port()));
        assert_eq!(b.ask("hi there"), "c:hi there");
        assert_eq!(b.ask(""), "c:");

        // A negative return closes the connection (after its reply).
        a.send("neg");
        assert_eq!(a.line(), "negative");
        a.eof();
        let closes = st.wait_closes(1);
        assert_eq!(closes[0].0, a_id);
        assert_eq!(closes[0].2, SOCKFLOW_EBADHANDLE, "sockflow_conn_send inside on_close");

        // The quit word never reaches on_message.
        b.send("quit");
        b.eof();
        let closes = st.wait_closes(2);
        assert_eq!(closes[1], (b_id, sockflow_close_reason::Quit as c_int, SOCKFLOW_EBADHANDLE));

        let (mut c, c_id) = Client::greeted(addr);
        assert_eq!(c.ask("count"), "count 1");
        srv.stop_and_free(running);
        c.eof();
        let closes = st.wait_closes(3);
        assert_eq!(closes[2].0, c_id);
        assert_eq!(closes[2].1, sockflow_close_reason::Stopping as c_int);
        assert!(st.bad.lock().unwrap().is_empty(), "{:?}", st.bad.lock().unwrap());
    }

    /// `sockflow_on_message`: "negative = close with reason ERROR".
    #[test]
    fn c_negative_return_closes_with_reason_error() {
        let st = State::default();
        let srv = new_tcp(&args(), Some(&config()), handler(), &st);
        let running = srv.run();
        let (mut a, a_id) = Client::greeted(srv.addr());
        a.send("neg");
        assert_eq!(a.line(), "negative");
        a.eof();
        let closes = st.wait_closes(1);
        srv.stop_and_free(running);
        assert_eq!((closes[0].0, closes[0].1), (a_id, sockflow_close_reason::Error as c_int));
    }

    #[test]
    fn c_actions_close_and_stop() {
        let st = State::default();
        let srv = new_tcp(&args(), None, handler(), &st);
        let addr = srv.addr();
        let (rx, j) = srv.run();
        let (mut a, a_id) = Client::greeted(addr);
        a.send("close");
        a.eof();
        assert_eq!(st.wait_closes(1)[0], (a_id, sockflow_close_reason::Handler as c_int, SOCKFLOW_EBADHANDLE));
        let (mut b, b_id) = Client::greeted(addr);
        b.send("stop");
        b.eof();
        assert_eq!(rx.recv_timeout(WAIT).expect("run after STOP"), 0);
        j.join().unwrap();
        assert_eq!(st.wait_closes(2)[1], (b_id, sockflow_close_reason::Stopping as c_int, SOCKFLOW_EBADHANDLE));
        assert_eq!(sockflow_server_run(srv.0), SOCKFLOW_EBADHANDLE);
        sockflow_server_close(srv.0);
    }

    /// Binary frames: `msg` holds `len` bytes (NULs included) and a NUL after them.
    #[test]
    fn c_binary_message_len_and_trailing_nul() {
        let st = State::default();
        let mut a = args();
        assert_eq!(sockflow_args_set_frame(&mut a, c"len32".as_ptr()), 0);
        let srv = new_tcp(&a, Some(&config()), handler(), &st);
        let running = srv.run();
        let mut c = Client::connect(srv.addr());
        let mut hello = [0u8; 4];
        c.r.read_exact(&mut hello).unwrap();
        let mut rest = vec![0u8; u32::from_be_bytes(hello) as usize];
        c.r.read_exact(&mut rest).unwrap();
        assert!(rest.starts_with(b"hello "));
        c.w.write_all(&super::len32(b"a\0b")).unwrap();
        let mut back = [0u8; 9];
        c.r.read_exact(&mut back).unwrap();
        assert_eq!(&back, b"\0\0\0\x05c:a\0b");
        srv.stop_and_free(running);
        assert!(st.bad.lock().unwrap().is_empty(), "{:?}", st.bad.lock().unwrap());
    }

    #[test]
    fn c_builtin_echo() {
        let mut s: *mut sockflow_server = std::ptr::null_mut();
        let cfg = config();
        assert_eq!(sockflow_tcp_server_new(&args(), &cfg, sockflow_handler_echo(), std::ptr::null_mut(), &mut s), 0);
        let srv = Srv(s);
        let running = srv.run();
        let mut c = Client::connect(srv.addr());
        assert_eq!(c.ask("abc"), "abc");
        assert_eq!(c.ask("hello world"), "hello world");
        srv.stop_and_free(running);
        c.eof();
    }

    #[test]
    fn c_udp_server_with_fixed_frames() {
        let st = State::default();
        let mut a = args();
        assert_eq!(sockflow_args_set_frame(&mut a, c"fixed:32".as_ptr()), 0);
        let mut s: *mut sockflow_server = std::ptr::null_mut();
        assert_eq!(sockflow_udp_server_new(&a, &config(), handler(), &st as *const State as *mut c_void, &mut s), 0);
        let srv = Srv(s);
        let running = srv.run();
        let c = UdpSocket::bind("127.0.0.1:0").unwrap();
        c.set_read_timeout(Some(WAIT)).unwrap();
        let mut d = [0u8; 32];
        d[..6].copy_from_slice(b"peer\0x");
        c.send_to(&d, srv.addr()).unwrap();
        let mut buf = [0u8; 64];
        let (n, _) = c.recv_from(&mut buf).unwrap();
        assert_eq!(n, 32);
        let text = CStr::from_bytes_until_nul(&buf[..n]).unwrap().to_str().unwrap();
        assert_eq!(text, format!("peer 0 127.0.0.1 {} 4", c.local_addr().unwrap().port()));
        srv.stop_and_free(running);
        assert!(st.closes.lock().unwrap().is_empty());
        assert!(st.bad.lock().unwrap().is_empty(), "{:?}", st.bad.lock().unwrap());
    }

    /// `--timeout` and `--max-per-ip` (in `sockflow_args`) reach a server
    /// made with the default config (NULL, or fields left 0): the idle
    /// timeout closes a silent client, the per-address limit refuses the
    /// extra one. A config field that is set wins over the arguments.
    #[test]
    fn c_args_timeout_and_max_per_ip_configure_the_server() {
        let st = State::default();
        let mut a = args();
        a.timeout_ms = 300; // as `--timeout 300`
        a.max_per_ip = 2; // as `--max-per-ip 2`
        let srv = new_tcp(&a, None, handler(), &st);
        let addr = srv.addr();
        let running = srv.run();
        let (mut c1, c1_id) = Client::greeted(addr);
        let (mut c2, c2_id) = Client::greeted(addr);
        let mut third = Client::connect(addr);
        third.eof(); // over the limit: closed at once, never greeted
                     // Both go silent: closed for the idle timeout.
        c1.eof();
        c2.eof();
        let closes = st.wait_closes(2);
        for id in [c1_id, c2_id] {
            assert!(closes.iter().any(|c| c.0 == id && c.1 == sockflow_close_reason::Idle as c_int), "{closes:?}");
        }
        srv.stop_and_free(running);

        // The config's own values win; SOCKFLOW_FOREVER keeps the arguments'.
        let st = State::default();
        let mut cfg = config();
        assert_eq!((cfg.idle_timeout_ms, cfg.max_per_ip), (SOCKFLOW_FOREVER, 0));
        cfg.max_per_ip = 1;
        let srv = new_tcp(&a, Some(&cfg), handler(), &st);
        let running = srv.run();
        let (mut c1, _) = Client::greeted(srv.addr());
        let mut second = Client::connect(srv.addr());
        second.eof();
        c1.eof(); // the arguments' idle timeout still applies
        st.wait_closes(1);
        srv.stop_and_free(running);
    }

    #[test]
    fn c_bad_arguments() {
        let st = State::default();
        let mut s: *mut sockflow_server = std::ptr::null_mut();
        let no_msg = sockflow_handler { on_connect: None, on_message: None, on_close: None, builtin: 0 };
        assert_eq!(sockflow_tcp_server_new(&args(), std::ptr::null(), no_msg, std::ptr::null_mut(), &mut s), SOCKFLOW_EINVAL);
        assert!(s.is_null());
        let mut cfg = config();
        cfg.max_conns = 0;
        assert_eq!(sockflow_tcp_server_new(&args(), &cfg, handler(), &st as *const State as *mut c_void, &mut s), SOCKFLOW_EINVAL);
        assert!(s.is_null());
        for bad in [
            |c: &mut sockflow_server_config| c.max_per_ip = -1,
            |c: &mut sockflow_server_config| c.incomplete_timeout_ms = 0,
            |c: &mut sockflow_server_config| c.memory_budget = 0,
        ] {
            let mut cfg = config();
            bad(&mut cfg);
            assert_eq!(sockflow_tcp_server_new(&args(), &cfg, handler(), &st as *const State as *mut c_void, &mut s), SOCKFLOW_EINVAL);
            assert!(s.is_null());
        }
        assert_eq!(sockflow_server_stop(std::ptr::null_mut()), SOCKFLOW_EINVAL);
        assert_eq!(sockflow_server_run(std::ptr::null_mut()), SOCKFLOW_EINVAL);
        sockflow_server_close(std::ptr::null_mut());
        assert_eq!(sockflow_conn_id(std::ptr::null()), 0);
    }
}
