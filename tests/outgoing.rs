//! Outgoing connections on a server's loop (`ServerHandle::connect`, a loop
//! without a listener), from Rust and through the C API: a client loop of
//! several servers, connects that are refused, time out or go by name, and
//! `on_close` with `ConnectFailed` and the error for every failed id.

#[path = "common/cerror.rs"]
mod cerror;
use cerror::last_error;
#[path = "common/cloop.rs"]
mod cloop;
use cloop::CSeen;
#[path = "server/kit.rs"]
mod skit;

use skit::*;
use sockflow::ffi::error::*;
use sockflow::ffi::handler::*;
use sockflow::ffi::server::*;
use sockflow::server::builtin::Echo;
use sockflow::server::tcp::TcpServer;
use sockflow::server::{Action, CloseReason, Config, Conn, Handler};
use sockflow::Code;
use std::ffi::{c_int, c_void};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// What a client loop's handler saw.
#[derive(Default)]
struct Seen {
    /// (id, user) at on_connect.
    connects: Vec<(u64, usize)>,
    /// (id, message).
    msgs: Vec<(u64, String)>,
    /// (id, reason, error code, error message, user).
    closes: Vec<(u64, CloseReason, Option<Code>, String, usize)>,
}

/// Greets each server it connects to with `hello N` (N = its user slot),
/// records the echo and closes.
#[derive(Default)]
struct Client {
    seen: Mutex<Seen>,
    changed: Condvar,
}

impl Client {
    fn wait_closes(&self, n: usize) -> std::sync::MutexGuard<'_, Seen> {
        let g = self.seen.lock().unwrap();
        let (g, _) = self.changed.wait_timeout_while(g, WAIT, |s| s.closes.len() < n).unwrap();
        assert!(g.closes.len() >= n, "only {} of {n} connections closed: {:?}", g.closes.len(), g.closes);
        g
    }
}

impl Handler for Client {
    fn on_connect(&self, c: &mut Conn<'_>) -> Action {
        self.seen.lock().unwrap().connects.push((c.id(), c.user()));
        c.send(format!("hello {}", c.user()).as_bytes()).unwrap();
        Action::Continue
    }
    fn on_message(&self, c: &mut Conn<'_>, msg: &[u8]) -> Action {
        self.seen.lock().unwrap().msgs.push((c.id(), String::from_utf8_lossy(msg).into()));
        Action::Close
    }
    fn on_close(&self, c: &mut Conn<'_>, reason: CloseReason) {
        let (code, msg) = c.error().map_or((None, String::new()), |e| (Some(e.code), e.msg.clone()));
        self.seen.lock().unwrap().closes.push((c.id(), reason, code, msg, c.user()));
        self.changed.notify_all();
    }
}

/// A port nothing listens on: bind one, note it, close it.
fn refused_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[test]
fn a_loop_without_listener_is_a_client_of_several_servers() {
    let servers: Vec<Running> = (0..3).map(|_| start_tcp(Config { log: None, ..Config::default() }, Arc::new(Echo))).collect();
    let h = Arc::new(Client::default());
    let lp = client_loop(h.clone());
    let mut ids = Vec::new();
    for (i, s) in servers.iter().enumerate() {
        ids.push(lp.handle.connect(vec![s.addr], Some(WAIT), i + 1).unwrap());
    }
    let seen = h.wait_closes(3);
    let mut want: Vec<(u64, usize)> = ids.iter().copied().zip(1..).collect();
    let mut got = seen.connects.clone();
    got.sort();
    want.sort();
    assert_eq!(got, want, "on_connect for each id, with the user slot given to connect");
    for (id, user) in &want {
        assert!(seen.msgs.contains(&(*id, format!("hello {user}"))), "no echo for {id}: {:?}", seen.msgs);
        let c = seen.closes.iter().find(|c| c.0 == *id).unwrap();
        assert_eq!((c.1, c.2), (CloseReason::Handler, None), "{c:?}");
    }
    drop(seen);
    lp.stop().unwrap();
    for s in servers {
        s.stop().unwrap();
    }
}

#[test]
fn a_refused_connect_ends_in_on_close_with_the_error() {
    let h = Arc::new(Client::default());
    let lp = client_loop(h.clone());
    let port = refused_port();
    let id = lp.handle.connect(vec![SocketAddr::from(([127, 0, 0, 1], port))], None, 42).unwrap();
    let seen = h.wait_closes(1);
    assert!(seen.connects.is_empty());
    let (cid, reason, code, msg, user) = seen.closes[0].clone();
    assert_eq!((cid, reason, code, user), (id, CloseReason::ConnectFailed, Some(Code::Refused), 42));
    assert_eq!(msg, format!("connect 127.0.0.1:{port}: Connection refused"));
    drop(seen);
    lp.stop().unwrap();
}

/// A name is resolved off the loop; when its first address fails the next
/// is tried (`localhost` may give ::1 first, where nothing listens).
#[test]
fn a_connect_by_name_resolves_and_tries_each_address() {
    let echo = start_tcp(Config { log: None, ..Config::default() }, Arc::new(Echo));
    let h = Arc::new(Client::default());
    let lp = client_loop(h.clone());
    let id = lp.handle.connect_host("localhost", echo.addr.port(), Some(WAIT), 7).unwrap();
    let bad = lp.handle.connect_host("no-such-host.invalid", 80, Some(WAIT), 8).unwrap();
    let seen = h.wait_closes(2);
    assert!(seen.msgs.contains(&(id, "hello 7".into())), "{:?} {:?}", seen.msgs, seen.closes);
    let failed = seen.closes.iter().find(|c| c.0 == bad).unwrap();
    assert_eq!((failed.1, failed.2, failed.4), (CloseReason::ConnectFailed, Some(Code::Resolve), 8), "{failed:?}");
    drop(seen);
    lp.stop().unwrap();
    echo.stop().unwrap();
}

/// A listener whose backlog is full and that never accepts drops new SYNs,
/// so a connect to it hangs: the connect timeout ends it.
#[test]
fn a_connect_that_hangs_times_out() {
    let hang = hanging();
    let addr = hang.addr;
    let h = Arc::new(Client::default());
    let lp = client_loop(h.clone());
    let id = lp.handle.connect(vec![addr], Some(Duration::from_millis(300)), 0).unwrap();
    let seen = h.wait_closes(1);
    let c = &seen.closes[0];
    assert_eq!((c.0, c.1, c.2), (id, CloseReason::ConnectFailed, Some(Code::TimedOut)), "{c:?}");
    assert_eq!(c.3, format!("connect {addr}: timed out after 300 ms"));
    drop(seen);
    lp.stop().unwrap();
}

#[test]
fn udp_servers_refuse_to_connect() {
    let u = start_udp(Config { log: None, ..Config::default() }, Arc::new(Echo));
    let e = u.handle.connect(vec![u.addr], None, 0).unwrap_err();
    assert_eq!(e.code, Code::BadHandle);
    u.stop().unwrap();
}

// ---- the C API -------------------------------------------------------------

#[test]
fn c_client_loop_connects_from_another_thread_and_reports_failures() {
    let echo = start_tcp(Config { log: None, ..Config::default() }, Arc::new(Echo));
    let seen = Box::new(CSeen::default());
    let mut cfg: sockflow_server_config = unsafe { std::mem::zeroed() };
    assert_eq!(sockflow_server_config_init(&mut cfg), 0);
    cfg.quiet = 1;
    let (h, ud) = seen.handler();
    let mut s = std::ptr::null_mut();
    assert_eq!(sockflow_client_loop_new(std::ptr::null(), &cfg, h, ud, &mut s), 0, "{}", last_error());
    assert_eq!(sockflow_server_port(s), 0);
    let server = s as usize;
    let run = std::thread::spawn(move || sockflow_server_run(server as *mut sockflow_server));
    let port = c_int::from(echo.addr.port());
    let (mut ok, mut bad) = (0u64, 0u64);
    assert_eq!(sockflow_server_connect(s, c"127.0.0.1".as_ptr(), port, 10_000, 1 as *mut c_void, &mut ok), 0);
    let refused = c_int::from(refused_port());
    assert_eq!(sockflow_server_connect(s, c"127.0.0.1".as_ptr(), refused, 10_000, 2 as *mut c_void, &mut bad), 0);
    assert!(ok != 0 && bad != 0 && ok != bad);
    // Bad arguments fail at once, with a message.
    let mut id = 0;
    assert_eq!(sockflow_server_connect(s, c"127.0.0.1".as_ptr(), 0, -1, std::ptr::null_mut(), &mut id), SOCKFLOW_EADDR);
    assert_eq!(sockflow_server_connect(s, c"".as_ptr(), port, -1, std::ptr::null_mut(), &mut id), SOCKFLOW_EADDR);
    assert_eq!(sockflow_server_connect(s, c"127.0.0.1".as_ptr(), port, 0, std::ptr::null_mut(), &mut id), SOCKFLOW_EINVAL);
    assert!(last_error().contains("timeout_ms is 0"), "{}", last_error());
    assert_eq!(id, 0, "out-parameters are written only on success");
    {
        let closes = seen.closes_sorted(2, WAIT);
        let want_msg = format!("connect 127.0.0.1:{refused}: Connection refused");
        assert_eq!(
            closes,
            vec![
                (1, sockflow_close_reason::Handler as c_int, 0, String::new()),
                (2, sockflow_close_reason::ConnectFailed as c_int, SOCKFLOW_ECONNREFUSED, want_msg)
            ]
        );
    }
    let replies: Vec<String> = seen.replies.lock().unwrap().iter().map(|r| r.1.clone()).collect();
    assert_eq!(replies, vec!["ping".to_string()]);
    assert_eq!(sockflow_server_stop(s), 0);
    assert_eq!(run.join().unwrap(), 0);
    sockflow_server_close(s);
    echo.stop().unwrap();
}

/// A connect that hangs (a full backlog), for the tests that act on a
/// connection before it is connected. Keep it while the connect must hang.
struct Hanging {
    addr: SocketAddr,
    _listener: sockflow::tcp::Listener,
    _held: Vec<TcpStream>,
}

fn hanging() -> Hanging {
    let l = sockflow::tcp::Listener::bind(&[any_port()], 1).unwrap();
    let addr = l.local_addr();
    let mut held = Vec::new();
    for _ in 0..16 {
        match TcpStream::connect_timeout(&addr, Duration::from_millis(500)) {
            Ok(s) => held.push(s),
            Err(_) => return Hanging { addr, _listener: l, _held: held },
        }
    }
    panic!("the backlog never filled: cannot make a connect hang here");
}

/// What is sent to an outgoing id before it is connected waits in its
/// queue and goes out, in order, once it is. The connect and the send are
/// made before the loop runs, so the send is surely before the connect
/// completes (with the loop running, a fast connect could win the race).
#[test]
fn bytes_sent_before_the_connect_completes_go_out_after_it() {
    let echo = start_tcp(Config { log: None, ..Config::default() }, Arc::new(Echo));
    let h = Arc::new(Client::default());
    let s = TcpServer::without_listener(Config { log: None, ..Config::default() }, h.clone()).unwrap();
    let handle = s.handle();
    // By name: the connection waits for its address the longest.
    let id = handle.connect_host("localhost", echo.addr.port(), Some(WAIT), 5).unwrap();
    handle.send(id, b"early").unwrap();
    let lp = spawn_run(handle, s.local_addr(), move || s.run());
    let seen = h.wait_closes(1);
    // The first echo is of "early": it went before the greeting of on_connect.
    assert_eq!(seen.msgs, vec![(id, "early".to_string())]);
    drop(seen);
    lp.stop().unwrap();
    echo.stop().unwrap();
}

/// Closing a connection that is still connecting, or stopping the loop,
/// ends it at once, with its own reason, and `on_close` once.
#[test]
fn closing_or_stopping_while_connecting_ends_it_at_once() {
    let hang = hanging();
    let h = Arc::new(Client::default());
    let lp = client_loop(h.clone());
    let closed = lp.handle.connect(vec![hang.addr], None, 1).unwrap();
    let stopped = lp.handle.connect(vec![hang.addr], None, 2).unwrap();
    lp.handle.close(closed);
    {
        let seen = h.wait_closes(1);
        assert_eq!((seen.closes[0].0, seen.closes[0].1), (closed, CloseReason::Handler));
    }
    lp.stop().unwrap();
    let seen = h.wait_closes(2);
    assert_eq!(seen.closes.len(), 2, "{:?}", seen.closes);
    assert_eq!((seen.closes[1].0, seen.closes[1].1, seen.closes[1].4), (stopped, CloseReason::Stopping, 2));
    assert!(seen.connects.is_empty());
}

/// In thread-per-connection mode an outgoing connection gets its thread
/// once connected; one that fails gets `on_close` all the same.
#[test]
fn thread_mode_serves_outgoing_connections() {
    let echo = start_tcp(Config { log: None, ..Config::default() }, Arc::new(Echo));
    let h = Arc::new(Client::default());
    let log = LogBuf::default();
    let cfg = Config { mode: sockflow::server::Mode::ThreadPerConnection, ..log.config() };
    let s = TcpServer::without_listener(cfg, h.clone()).unwrap();
    let lp = spawn_run(s.handle(), s.local_addr(), move || s.run());
    let ok = lp.handle.connect(vec![echo.addr], Some(WAIT), 1).unwrap();
    let bad = lp.handle.connect(vec![SocketAddr::from(([127, 0, 0, 1], refused_port()))], Some(WAIT), 2).unwrap();
    let seen = h.wait_closes(2);
    assert!(seen.msgs.contains(&(ok, "hello 1".into())), "{:?}", seen.msgs);
    let failed = seen.closes.iter().find(|c| c.0 == bad).unwrap();
    assert_eq!((failed.1, failed.2), (CloseReason::ConnectFailed, Some(Code::Refused)));
    drop(seen);
    lp.stop().unwrap();
    echo.stop().unwrap();
}
