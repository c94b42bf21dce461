//! UDP servers that treat each sender address as a connection
//! (`UdpMode::Peers`, `sockflow_server_config.udp_peers`): `on_connect` at
//! a sender's first datagram, a user slot that lives while it stays,
//! `on_close` with `Idle` after its silence or `Stopping` at the stop, sends
//! by id from other threads, the bound on peers; the same through the C
//! API, and the `heartbeat_monitor` example driven by Rust UDP sockets.
//!
//! Timing is never asserted: short idle timeouts only make the waits short,
//! and every wait is bounded (`WAIT`, generous).

mod common;
#[path = "server/kit.rs"]
mod skit;

use common::*;
use skit::*;
use sockflow::server::{Action, CloseReason, Config, Conn, Handler, UdpMode};
use std::net::{SocketAddr, UdpSocket};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::Duration;

#[derive(Clone, Debug, PartialEq, Eq)]
enum Ev {
    Connect(u64, SocketAddr),
    Close(u64, SocketAddr, CloseReason),
}

/// Records connects and closes; answers each datagram with
/// `<id> <count> <msg>`, the count kept in the user slot; `bye` closes.
#[derive(Default)]
struct Rec {
    events: Mutex<Vec<Ev>>,
    changed: Condvar,
}

impl Rec {
    fn push(&self, e: Ev) {
        self.events.lock().unwrap().push(e);
        self.changed.notify_all();
    }

    /// Waits (bounded) until `pred` holds for the events; returns them.
    #[track_caller]
    fn wait(&self, what: &str, pred: impl Fn(&[Ev]) -> bool) -> Vec<Ev> {
        let g = self.events.lock().unwrap();
        let (g, _) = self.changed.wait_timeout_while(g, WAIT, |e| !pred(e)).unwrap();
        assert!(pred(&g), "timed out waiting for {what}: {:?}", *g);
        g.clone()
    }

    fn closes_of(&self, id: u64) -> Vec<CloseReason> {
        let g = self.events.lock().unwrap();
        g.iter().filter_map(|e| if let Ev::Close(i, _, r) = e { (*i == id).then_some(*r) } else { None }).collect()
    }
}

impl Handler for Rec {
    fn on_connect(&self, c: &mut Conn<'_>) -> Action {
        self.push(Ev::Connect(c.id(), c.peer()));
        Action::Continue
    }

    fn on_message(&self, c: &mut Conn<'_>, msg: &[u8]) -> Action {
        let n = c.user() + 1;
        c.set_user(n);
        let text = String::from_utf8_lossy(msg).into_owned();
        let _ = c.send(format!("{} {n} {text}", c.id()).as_bytes());
        if text == "bye" {
            Action::Close
        } else {
            Action::Continue
        }
    }

    fn on_close(&self, c: &mut Conn<'_>, reason: CloseReason) {
        assert!(c.user() > 0, "the user slot is there in on_close");
        self.push(Ev::Close(c.id(), c.peer(), reason));
    }
}

fn peers(log: &LogBuf, idle: Option<Duration>) -> Config {
    Config { udp: UdpMode::Peers, idle_timeout: idle, ..log.config() }
}

fn sender() -> UdpSocket {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    s
}

/// Sends `msg` to the server and returns its reply `(id, count, msg)`.
#[track_caller]
fn ask(s: &UdpSocket, to: SocketAddr, msg: &str) -> (u64, usize, String) {
    s.send_to(msg.as_bytes(), to).unwrap();
    let r = recv(s);
    let mut it = r.splitn(3, ' ');
    let id = it.next().unwrap().parse().unwrap_or_else(|_| panic!("reply {r:?}"));
    let n = it.next().unwrap().parse().unwrap();
    (id, n, it.next().unwrap_or("").to_string())
}

#[track_caller]
fn recv(s: &UdpSocket) -> String {
    let mut buf = [0u8; 2048];
    let (n, _) = s.recv_from(&mut buf).expect("a datagram from the server");
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

fn me(s: &UdpSocket) -> SocketAddr {
    s.local_addr().unwrap()
}

#[test]
fn a_peer_keeps_its_id_and_user_slot_then_goes_idle_and_comes_back_new() {
    let log = LogBuf::default();
    let rec = Arc::new(Rec::default());
    let srv = start_udp(peers(&log, Some(Duration::from_millis(300))), rec.clone());
    let a = sender();
    // The user slot lives across the peer's datagrams (within the idle
    // timeout, which a slow machine may pass: then a new peer starts at 1).
    let (id, n, msg) = ask(&a, srv.addr, "one");
    assert_eq!((n, msg.as_str()), (1, "one"));
    rec.wait("the connect", |e| e.contains(&Ev::Connect(id, me(&a))));
    // Silent: closed for the idle timeout, once.
    rec.wait("the idle close", |e| e.contains(&Ev::Close(id, me(&a), CloseReason::Idle)));
    // Heard again: a new peer, a new id, a fresh user slot.
    let (id2, n2, _) = ask(&a, srv.addr, "again");
    assert!(id2 > id, "ids are never reused: {id2} after {id}");
    assert_eq!(n2, 1, "a new peer's user slot starts empty");
    rec.wait("the second connect", |e| e.contains(&Ev::Connect(id2, me(&a))));
    srv.stop().unwrap();
    assert_eq!(rec.closes_of(id), [CloseReason::Idle]);
    assert_eq!(rec.closes_of(id2), [CloseReason::Stopping]);
}

#[test]
fn several_senders_each_a_connection_and_all_closed_at_stop() {
    let log = LogBuf::default();
    let rec = Arc::new(Rec::default());
    let srv = start_udp(peers(&log, None), rec.clone());
    let senders: Vec<UdpSocket> = (0..4).map(|_| sender()).collect();
    let mut ids = Vec::new();
    for round in 1..=3 {
        for (i, s) in senders.iter().enumerate() {
            let (id, n, _) = ask(s, srv.addr, &format!("s{i}"));
            assert_eq!(n, round, "sender {i}'s count lives in its user slot");
            if round == 1 {
                ids.push(id);
            } else {
                assert_eq!(id, ids[i], "sender {i} keeps its id");
            }
        }
    }
    let mut sorted = ids.clone();
    sorted.dedup();
    assert_eq!(sorted.len(), 4, "one id per sender: {ids:?}");
    let connects = rec.wait("4 connects", |e| e.iter().filter(|e| matches!(e, Ev::Connect(..))).count() == 4);
    assert!(connects.iter().all(|e| matches!(e, Ev::Connect(..))), "no close before the stop: {connects:?}");
    srv.stop().unwrap();
    for id in ids {
        assert_eq!(rec.closes_of(id), [CloseReason::Stopping]);
    }
}

#[test]
fn sends_and_broadcasts_by_id_from_another_thread() {
    let log = LogBuf::default();
    let rec = Arc::new(Rec::default());
    let srv = start_udp(peers(&log, None), rec.clone());
    let (a, b) = (sender(), sender());
    let (a_id, _, _) = ask(&a, srv.addr, "hi");
    let (b_id, _, _) = ask(&b, srv.addr, "hi");
    let h = srv.handle.clone();
    thread::spawn(move || {
        h.send(a_id, b"for a").unwrap();
        h.send(b_id, b"for b").unwrap();
        h.send(u64::MAX, b"nobody").unwrap(); // an id that is gone is ignored
        h.broadcast(b"all", None).unwrap();
        h.broadcast(b"not a", Some(a_id)).unwrap();
    })
    .join()
    .unwrap();
    // Sent on their own, line datagrams end with '\n'.
    assert_eq!(recv(&a), "for a\n");
    assert_eq!(recv(&a), "all\n");
    assert_eq!(recv(&b), "for b\n");
    assert_eq!(recv(&b), "all\n");
    assert_eq!(recv(&b), "not a\n");
    // Nothing else came to a: its next datagram is the answer to this.
    assert_eq!(ask(&a, srv.addr, "next").2, "next");
    srv.stop().unwrap();
}

#[test]
fn plain_udp_has_no_connections_and_refuses_sends_by_id() {
    let log = LogBuf::default();
    let rec = Arc::new(Rec::default());
    let srv = start_udp(log.config(), rec.clone());
    let a = sender();
    let (id1, n1, _) = ask(&a, srv.addr, "x");
    let (id2, n2, _) = ask(&a, srv.addr, "y");
    assert_eq!((n1, n2), (1, 1), "the user slot lasts one datagram");
    assert_ne!(id1, id2);
    let e = srv.handle.send(id1, b"z").unwrap_err();
    assert_eq!(e.code, sockflow::Code::BadHandle);
    srv.stop().unwrap();
    assert!(rec.events.lock().unwrap().is_empty(), "no connect/close in datagram mode");
}

#[test]
fn past_max_conns_new_senders_are_dropped_and_logged_known_ones_stay() {
    let log = LogBuf::default();
    let rec = Arc::new(Rec::default());
    let srv = start_udp(Config { max_conns: 2, ..peers(&log, None) }, rec.clone());
    let (a, b, c) = (sender(), sender(), sender());
    let (a_id, _, _) = ask(&a, srv.addr, "a");
    ask(&b, srv.addr, "b");
    c.send_to(b"c", srv.addr).unwrap();
    log.wait_for(&format!("too many peers (2): dropping a datagram from {}", me(&c)));
    // The known peers still work.
    assert_eq!(ask(&a, srv.addr, "still").1, 2);
    // A peer whose handler said Close leaves (reason Handler), making room.
    assert_eq!(ask(&a, srv.addr, "bye").2, "bye");
    rec.wait("a's close", |e| e.contains(&Ev::Close(a_id, me(&a), CloseReason::Handler)));
    let (c_id, n, _) = ask(&c, srv.addr, "now");
    assert_eq!(n, 1);
    assert!(c_id > a_id);
    srv.stop().unwrap();
    let events = rec.events.lock().unwrap().clone();
    assert_eq!(events.iter().filter(|e| matches!(e, Ev::Connect(_, p) if *p == me(&c))).count(), 1, "{events:?}");
}

// ---------------------------------------------------------------------------
// The C API
// ---------------------------------------------------------------------------

mod c_api {
    use super::*;
    use sockflow::ffi::args::{sockflow_args, sockflow_args_init, sockflow_role};
    use sockflow::ffi::error::SOCKFLOW_EBADHANDLE;
    use sockflow::ffi::handler::{sockflow_close_reason, sockflow_conn, sockflow_conn_id, sockflow_conn_send_to, sockflow_handler};
    use sockflow::ffi::server::*;
    use std::ffi::{c_char, c_int, c_void};

    #[derive(Default)]
    struct Seen {
        /// (id, event): 0 connect, else a close reason.
        events: Mutex<Vec<(u64, c_int)>>,
    }

    unsafe extern "C" fn on_connect(ud: *mut c_void, conn: *mut sockflow_conn) -> c_int {
        (*ud.cast::<Seen>()).events.lock().unwrap().push((sockflow_conn_id(conn), 0));
        0
    }

    /// `to <id> <text>` sends text to peer id; anything else is echoed with the id.
    unsafe extern "C" fn on_message(_ud: *mut c_void, conn: *mut sockflow_conn, msg: *const c_char, len: usize) -> c_int {
        let text = String::from_utf8_lossy(std::slice::from_raw_parts(msg.cast::<u8>(), len)).into_owned();
        let id = sockflow_conn_id(conn);
        let (to, body) = match text.strip_prefix("to ").and_then(|r| r.split_once(' ')) {
            Some((to, body)) => (to.parse().unwrap(), body.to_string()),
            None => (id, format!("{id} {text}")),
        };
        sockflow_conn_send_to(conn, to, body.as_ptr().cast(), body.len())
    }

    unsafe extern "C" fn on_close(ud: *mut c_void, conn: *mut sockflow_conn, reason: c_int) {
        (*ud.cast::<Seen>()).events.lock().unwrap().push((sockflow_conn_id(conn), reason));
    }

    struct Srv(*mut sockflow_server);
    unsafe impl Send for Srv {}
    unsafe impl Sync for Srv {}

    #[test]
    fn c_udp_peers_send_from_another_thread_and_close_at_stop() {
        let seen = Seen::default();
        let mut a: sockflow_args = unsafe { std::mem::zeroed() };
        assert_eq!(sockflow_args_init(&mut a, sockflow_role::Server as c_int, c"127.0.0.1".as_ptr(), 0), 0);
        let mut cfg: sockflow_server_config = unsafe { std::mem::zeroed() };
        assert_eq!(sockflow_server_config_init(&mut cfg), 0);
        assert_eq!(cfg.udp_peers, 0, "plain datagrams by default");
        cfg.quiet = 1;
        let h = sockflow_handler { on_connect: Some(on_connect), on_message: Some(on_message), on_close: Some(on_close), builtin: 0 };

        // Without udp_peers, sends by id are refused.
        let mut s = std::ptr::null_mut();
        assert_eq!(sockflow_udp_server_new(&a, &cfg, h, (&seen as *const Seen).cast_mut().cast(), &mut s), 0);
        assert_eq!(sockflow_server_send_to(s, 1, b"x".as_ptr().cast(), 1), SOCKFLOW_EBADHANDLE);
        sockflow_server_close(s);

        cfg.udp_peers = 1;
        let mut s = std::ptr::null_mut();
        assert_eq!(sockflow_udp_server_new(&a, &cfg, h, (&seen as *const Seen).cast_mut().cast(), &mut s), 0);
        let srv = Arc::new(Srv(s));
        let to = SocketAddr::from(([127, 0, 0, 1], sockflow_server_port(s) as u16));
        let run = {
            let srv = srv.clone();
            thread::spawn(move || sockflow_server_run(srv.0))
        };
        let (x, y) = (sender(), sender());
        x.send_to(b"hello", to).unwrap();
        let r = recv(&x);
        let x_id: u64 = r.split(' ').next().unwrap().parse().unwrap();
        y.send_to(b"hello", to).unwrap();
        let y_id: u64 = recv(&y).split(' ').next().unwrap().parse().unwrap();
        // From a callback of y's, to x by id.
        y.send_to(format!("to {x_id} from y").as_bytes(), to).unwrap();
        assert_eq!(recv(&x), "from y\n", "sent by id: a line of its own");
        // From this thread (not the server's).
        assert_eq!(sockflow_server_send_to(srv.0, y_id, b"pushed".as_ptr().cast(), 6), 0);
        assert_eq!(recv(&y), "pushed\n");
        assert_eq!(sockflow_server_broadcast(srv.0, b"all".as_ptr().cast(), 3), 0);
        assert_eq!(recv(&x), "all\n");
        assert_eq!(recv(&y), "all\n");
        assert_eq!(sockflow_server_stop(srv.0), 0);
        assert_eq!(run.join().unwrap(), 0);
        sockflow_server_close(srv.0);
        let mut ev = seen.events.lock().unwrap().clone();
        ev.sort();
        let stopping = sockflow_close_reason::Stopping as c_int;
        assert_eq!(ev, [(x_id, 0), (x_id, stopping), (y_id, 0), (y_id, stopping)]);
    }
}

// ---------------------------------------------------------------------------
// The example
// ---------------------------------------------------------------------------

/// Waits for the next stdout line of the monitor.
#[track_caller]
fn next(p: &Proc) -> String {
    p.wait_for_line_matching(Stream::Stdout, |_| true, "one more line", default_timeout())
}

#[test]
fn heartbeat_monitor_up_down_and_up_again() {
    let bin = build_c("heartbeat_monitor", Link::Dynamic);
    let mut p = spawn(&bin, &["--timeout", "300", "127.0.0.1", "0"], Input::Null);
    let port = p.wait_listening();
    let to = SocketAddr::from(([127, 0, 0, 1], port));
    let a = sender();
    let show = |s: &UdpSocket| format!("127.0.0.1 {}", me(s).port());
    // A beat, then silence, then a beat again.
    a.send_to(b"beat", to).unwrap();
    assert_eq!(next(&p), format!("UP {}", show(&a)));
    assert_eq!(next(&p), format!("DOWN {}", show(&a)));
    a.send_to(b"beat", to).unwrap();
    assert_eq!(next(&p), format!("UP {}", show(&a)));
    assert_eq!(next(&p), format!("DOWN {}", show(&a)));

    // Several senders: each UP once, then DOWN once.
    let many: Vec<UdpSocket> = (0..3).map(|_| sender()).collect();
    for s in &many {
        s.send_to(b"beat", to).unwrap();
    }
    let mut got: Vec<String> = (0..6).map(|_| next(&p)).collect();
    for s in &many {
        let (up, down) = (format!("UP {}", show(s)), format!("DOWN {}", show(s)));
        let at = |l: &str| got.iter().position(|g| g == l);
        assert!(at(&up).is_some() && at(&up) < at(&down), "UP before DOWN for {}: {got:?}", show(s));
    }
    got.sort();
    got.dedup();
    assert_eq!(got.len(), 6, "each line once");
    p.signal(libc::SIGINT);
    let st = p.wait_exit(default_timeout());
    assert_exit(&p, st, 0);
    assert!(p.stderr_text().contains("heartbeat_monitor: stopped"), "{}", p.transcript());
}

#[test]
fn heartbeat_monitor_default_timeout_and_stop() {
    let bin = build_c("heartbeat_monitor", Link::Dynamic);
    // No --timeout: the default (2000 ms) still brings DOWN.
    let mut p = spawn(&bin, &["127.0.0.1", "0"], Input::Null);
    let port = p.wait_listening();
    let a = sender();
    let who = format!("127.0.0.1 {}", me(&a).port());
    a.send_to(b"beat", ("127.0.0.1", port)).unwrap();
    assert_eq!(next(&p), format!("UP {who}"));
    assert_eq!(next(&p), format!("DOWN {who}"));
    p.signal(libc::SIGTERM);
    let st = p.wait_exit(default_timeout());
    assert_exit(&p, st, 0);

    // Stopped while a sender is up: on_close(STOPPING), which prints no DOWN.
    let mut p = spawn(&bin, &["--timeout", "600000", "127.0.0.1", "0"], Input::Null);
    let port = p.wait_listening();
    a.send_to(b"beat", ("127.0.0.1", port)).unwrap();
    assert_eq!(next(&p), format!("UP {who}"));
    p.signal(libc::SIGTERM);
    let st = p.wait_exit(default_timeout());
    assert_exit(&p, st, 0);
    assert_eq!(p.stdout_text(), format!("UP {who}\n"));
}

/// CPU time (user + system, in clock ticks) process `pid` has used.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the `(comm)`: state is field 3, utime 14, stime 15.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
}

/// With a peer up and its expiry far away, the loop sleeps until then (or
/// the next datagram) instead of polling: it uses next to no CPU. A loop
/// that polled with a zero timeout would use all of a core's share; the
/// bound (a tenth of the wall time) is far above what a sleeping loop uses.
#[test]
fn waiting_for_an_expiry_does_not_spin() {
    let bin = build_c("heartbeat_monitor", Link::Dynamic);
    let mut p = spawn(&bin, &["--timeout", "600000", "127.0.0.1", "0"], Input::Null);
    let port = p.wait_listening();
    let a = sender();
    a.send_to(b"beat", ("127.0.0.1", port)).unwrap();
    assert_eq!(next(&p), format!("UP 127.0.0.1 {}", me(&a).port()));
    let before = cpu_ticks(p.pid());
    thread::sleep(Duration::from_secs(3));
    let used = cpu_ticks(p.pid()) - before;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    assert!(used * 10 < 3 * hz, "{used} ticks (of {hz}/s) of CPU in 3 s of waiting: the loop is polling");
    p.signal(libc::SIGTERM);
    let st = p.wait_exit(default_timeout());
    assert_exit(&p, st, 0);
}

/// The print handler on a peers-mode server prints a sender's `client ip
/// = …` line once, at its first datagram (it used to print it twice there:
/// once for `on_connect`, once more as for a plain datagram), then only
/// its messages, and its `client closed` line at the stop.
#[test]
fn print_handler_prints_a_peer_once_then_its_messages() {
    let log = LogBuf::default();
    let out = LogBuf::default();
    let print = Arc::new(sockflow::server::builtin::Print::new(Box::new(out.clone())));
    let srv = start_udp(peers(&log, None), print);
    let a = sender();
    let who = format!("client ip = 127.0.0.1 port = {}", me(&a).port());
    for m in ["one", "two", "three"] {
        a.send_to(m.as_bytes(), srv.addr).unwrap();
    }
    out.wait_for("three\n");
    srv.stop().unwrap();
    out.wait_for("client closed");
    let text = out.text();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[..4], [who.as_str(), "one", "two", "three"], "{text}");
    assert_eq!(lines.len(), 5, "{text}");
    assert!(lines[4].starts_with(&format!("client closed ip = 127.0.0.1 port = {} (", me(&a).port())), "{text}");
}
