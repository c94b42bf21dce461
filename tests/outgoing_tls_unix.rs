//! Outgoing connections over TLS and Unix domain sockets: a client loop
//! (Rust API and C API) connecting to `unix:PATH`/`unix:@NAME`, to TLS
//! servers (verified, the rustls reason on failure, close_notify on a
//! graceful close, a stalled handshake bounded by the connect timeout),
//! and the `proxy` example with TLS and `unix:` on either side, in front
//! of `echo_server` and `openssl s_server`. Certificates are made here
//! (rcgen); loopback only; every process ended by its PID.

#[path = "common/cerror.rs"]
mod cerror;
use cerror::last_error;
#[path = "common/cloop.rs"]
mod cloop;
use cloop::CSeen;
#[path = "common/certs.rs"]
mod certs;
mod common;
#[path = "flows/kit.rs"]
mod kit;
#[path = "server/kit.rs"]
mod skit;

use certs::{has_openssl, openssl_server, Certs};
use common::*;
use kit::*;
use skit::{any_port, client_loop, spawn_run, Running, WAIT};
use sockflow::ffi::args::*;
use sockflow::ffi::error::*;
use sockflow::ffi::handler::*;
use sockflow::ffi::server::*;
use sockflow::server::builtin::Echo;
use sockflow::server::tcp::TcpServer;
use sockflow::server::{Action, CloseReason, Config, Conn, Handler, Remote};
use sockflow::tls::TlsArgs;
use sockflow::unix::Place;
use sockflow::Code;
use std::ffi::{c_char, c_int, c_void, CString};
use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// What a client loop's handler saw: (user, peer pid) at on_connect,
/// (user, message), (user, reason, error code, error message) at on_close.
#[derive(Default)]
struct Seen {
    connects: Vec<(usize, Option<u32>)>,
    msgs: Vec<(usize, String)>,
    closes: Vec<(usize, CloseReason, Option<Code>, String)>,
}

/// Says `hello N` (N: its user slot) once connected, records the answer
/// and closes.
#[derive(Default)]
struct Client {
    seen: Mutex<Seen>,
    changed: Condvar,
}

impl Client {
    fn wait_closes(&self, n: usize) -> std::sync::MutexGuard<'_, Seen> {
        let g = self.seen.lock().unwrap();
        let (g, _) = self.changed.wait_timeout_while(g, WAIT * 3, |s| s.closes.len() < n).unwrap();
        assert!(g.closes.len() >= n, "only {} of {n} connections closed: {:?}", g.closes.len(), g.closes);
        g
    }

    fn close_of(&self, user: usize) -> (usize, CloseReason, Option<Code>, String) {
        let g = self.seen.lock().unwrap();
        g.closes.iter().find(|c| c.0 == user).cloned().unwrap_or_else(|| panic!("no on_close for {user}: {:?}", g.closes))
    }
}

impl Handler for Client {
    fn on_connect(&self, c: &mut Conn<'_>) -> Action {
        self.seen.lock().unwrap().connects.push((c.user(), c.peer_cred().map(|p| p.pid)));
        c.send(format!("hello {}", c.user()).as_bytes()).unwrap();
        Action::Continue
    }
    fn on_message(&self, c: &mut Conn<'_>, msg: &[u8]) -> Action {
        self.seen.lock().unwrap().msgs.push((c.user(), String::from_utf8_lossy(msg).into()));
        Action::Close
    }
    fn on_close(&self, c: &mut Conn<'_>, reason: CloseReason) {
        let (code, msg) = c.error().map_or((None, String::new()), |e| (Some(e.code), e.msg.clone()));
        self.seen.lock().unwrap().closes.push((c.user(), reason, code, msg));
        self.changed.notify_all();
    }
}

/// The line echo server of this process on `place` (a TCP port on
/// 127.0.0.1 when None), serving TLS with `certs`' server certificate.
fn echo(place: Option<&Place>, certs: Option<&Certs>) -> Running {
    let tls = certs.map(|c| TlsArgs { cert: c.path("server.pem"), key: c.path("server.key"), ..TlsArgs::default() });
    let cfg = Config { log: None, tls: tls.map(|t| t.server_config().unwrap()), ..Config::default() };
    let s = match place {
        Some(p) => TcpServer::bind_unix(p, None, cfg, Arc::new(Echo)).unwrap(),
        None => TcpServer::bind(&[any_port()], cfg, Arc::new(Echo)).unwrap(),
    };
    let (handle, addr) = (s.handle(), s.local_addr());
    spawn_run(handle, addr, move || s.run())
}

fn ca(c: &Certs, file: &str) -> TlsArgs {
    TlsArgs { ca: c.path(file), ..TlsArgs::default() }
}

fn sock_path(test: &str) -> String {
    tmp_dir("outgoing-unix").join(format!("{test}-{}.sock", std::process::id())).to_string_lossy().into_owned()
}

#[test]
fn a_client_loop_connects_to_unix_paths_and_abstract_names() {
    let path = sock_path("loop");
    let places = [format!("unix:{path}"), format!("unix:@sockflow-outgoing-{}", std::process::id())];
    let servers: Vec<Running> = places.iter().map(|p| echo(Some(&Place::parse(p).unwrap().unwrap()), None)).collect();
    let h = Arc::new(Client::default());
    let lp = client_loop(h.clone());
    for (i, p) in places.iter().enumerate() {
        lp.handle.connect_host(p, 0, Some(WAIT), i + 1).unwrap();
    }
    let missing = format!("unix:{path}.missing");
    lp.handle.connect_host(&missing, 0, None, 3).unwrap();
    let seen = h.wait_closes(3);
    for user in [1, 2] {
        assert!(seen.msgs.contains(&(user, format!("hello {user}"))), "{:?} {:?}", seen.msgs, seen.closes);
        // The peer is the local server: this process, by its credentials.
        assert!(seen.connects.contains(&(user, Some(std::process::id()))), "{:?}", seen.connects);
    }
    drop(seen);
    let (_, reason, code, msg) = h.close_of(3);
    assert_eq!((reason, code), (CloseReason::ConnectFailed, Some(Code::Os)), "{msg}");
    assert_eq!(msg, format!("connect {missing}: No such file or directory"));
    // A unix: host has no port: refused at once, as by the primitives.
    let e = lp.handle.connect_host(&places[0], 80, None, 0).unwrap_err();
    assert_eq!(e.code, Code::Addr, "{}", e.msg);
    lp.stop().unwrap();
    drop(servers);
}

#[test]
fn tls_connects_verify_the_server_and_fail_with_the_rustls_reason() {
    let c = Certs::new("outgoing-verify");
    let srv = echo(None, Some(&c));
    let port = srv.addr.port();
    let h = Arc::new(Client::default());
    let lp = client_loop(h.clone());
    let (good, wrong) = (ca(&c, "ca.pem"), ca(&c, "other-ca.pem"));
    let to = |tls| Remote { tls: Some(tls), timeout: Some(WAIT), ..Remote::new("127.0.0.1", port) };
    lp.handle.connect_to(&to(&wrong), 1).unwrap();
    let seen = h.wait_closes(1);
    drop(seen);
    // The server kept serving: a verified connection after the failed one.
    lp.handle.connect_to(&Remote { host: "localhost", ..to(&good) }, 2).unwrap();
    let seen = h.wait_closes(2);
    assert_eq!(seen.msgs, vec![(2, "hello 2".to_string())], "{:?}", seen.closes);
    drop(seen);
    let (_, reason, code, msg) = h.close_of(1);
    assert_eq!((reason, code), (CloseReason::ConnectFailed, Some(Code::Tls)));
    assert_eq!(msg, format!("tls handshake with 127.0.0.1:{port}: invalid peer certificate: UnknownIssuer"));
    assert_eq!(h.close_of(2).1, CloseReason::Handler);
    // A CA file that is not there: an error at once, naming it.
    let e = lp.handle.connect_to(&to(&ca(&c, "missing.pem")), 3).unwrap_err();
    assert_eq!(e.code, Code::Tls);
    assert!(e.msg.starts_with(&c.path("missing.pem")), "{}", e.msg);
    lp.stop().unwrap();
    srv.stop().unwrap();
}

#[test]
fn tls_over_a_unix_socket_verifies_localhost() {
    let c = Certs::new("outgoing-unix");
    let place = format!("unix:{}", sock_path("tls"));
    let srv = echo(Some(&Place::parse(&place).unwrap().unwrap()), Some(&c));
    let h = Arc::new(Client::default());
    let lp = client_loop(h.clone());
    let tls = ca(&c, "ca.pem");
    lp.handle.connect_to(&Remote { tls: Some(&tls), ..Remote::new(&place, 0) }, 1).unwrap();
    let seen = h.wait_closes(1);
    assert_eq!(seen.msgs, vec![(1, "hello 1".to_string())], "{:?}", seen.closes);
    drop(seen);
    lp.stop().unwrap();
    srv.stop().unwrap();
}

/// A TLS server written with rustls alone: it reads one line, answers it,
/// and then tells whether the client ended with close_notify (a clean
/// end: `Ok(0)`) or just closed its socket (rustls: `UnexpectedEof`).
#[test]
fn a_graceful_close_sends_close_notify() {
    let c = Certs::new("outgoing-notify");
    let cfg = TlsArgs { cert: c.path("server.pem"), key: c.path("server.key"), ..TlsArgs::default() }.server_config().unwrap();
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        let (sock, _) = l.accept().unwrap();
        sock.set_read_timeout(Some(WAIT)).unwrap();
        let mut s = rustls::StreamOwned::new(rustls::ServerConnection::new(cfg).unwrap(), sock);
        let mut line = Vec::new();
        let mut b = [0u8; 1];
        while !line.ends_with(b"\n") {
            assert_eq!(s.read(&mut b).unwrap(), 1);
            line.push(b[0]);
        }
        s.write_all(&line).unwrap();
        s.flush().unwrap();
        (line, s.read(&mut b).map_err(|e| e.kind()))
    });
    let h = Arc::new(Client::default());
    let lp = client_loop(h.clone());
    let tls = ca(&c, "ca.pem");
    lp.handle.connect_to(&Remote { tls: Some(&tls), timeout: Some(WAIT), ..Remote::new("localhost", port) }, 1).unwrap();
    let seen = h.wait_closes(1);
    assert_eq!(seen.msgs, vec![(1, "hello 1".to_string())], "{:?}", seen.closes);
    drop(seen);
    let (line, end) = server.join().unwrap();
    assert_eq!(line, b"hello 1\n");
    assert_eq!(end, Ok(0), "the client closed without close_notify");
    lp.stop().unwrap();
}

/// A server that accepts and never answers the ClientHello: the connect's
/// timeout bounds the handshake too.
#[test]
fn a_stalled_handshake_fails_at_the_connect_timeout() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let h = Arc::new(Client::default());
    let lp = client_loop(h.clone());
    let c = Certs::new("outgoing-stall");
    let tls = ca(&c, "ca.pem");
    let to = Remote { tls: Some(&tls), timeout: Some(Duration::from_millis(300)), ..Remote::new("127.0.0.1", port) };
    lp.handle.connect_to(&to, 1).unwrap();
    let _held = l.accept().unwrap();
    let seen = h.wait_closes(1);
    assert_eq!(
        seen.closes[0],
        (1, CloseReason::ConnectFailed, Some(Code::TimedOut), format!("tls handshake with 127.0.0.1:{port}: not done after 300 ms"))
    );
    assert!(seen.connects.is_empty());
    drop(seen);
    lp.stop().unwrap();
}

// The C API: sockflow_server_connect_args over TLS, sockflow_server_connect to unix:.

fn set_path(field: &mut [c_char], path: &str) {
    for (d, s) in field.iter_mut().zip(path.bytes().chain([0])) {
        *d = s as c_char;
    }
}

#[test]
fn c_client_loop_connects_with_args_over_tls_and_to_unix() {
    let c = Certs::new("outgoing-c");
    let tls_srv = echo(None, Some(&c));
    let place = format!("unix:{}", sock_path("c"));
    let unix_srv = echo(Some(&Place::parse(&place).unwrap().unwrap()), None);
    let seen = Box::new(CSeen::default());
    let (h, ud) = seen.handler();
    // Client TLS options are per connection: not for the loop.
    let mut a: sockflow_args = unsafe { std::mem::zeroed() };
    let port = c_int::from(tls_srv.addr.port());
    assert_eq!(sockflow_args_init(&mut a, sockflow_role::Client as c_int, c"localhost".as_ptr(), port), 0);
    set_path(&mut a.tls_ca, &c.path("ca.pem"));
    let mut s = std::ptr::null_mut();
    assert_eq!(sockflow_client_loop_new(&a, std::ptr::null(), h, ud, &mut s), SOCKFLOW_EINVAL);
    assert!(last_error().contains("sockflow_server_connect_args"), "{}", last_error());
    assert_eq!(sockflow_client_loop_new(std::ptr::null(), std::ptr::null(), h, ud, &mut s), 0, "{}", last_error());
    let server = s as usize;
    let run = std::thread::spawn(move || sockflow_server_run(server as *mut sockflow_server));
    let mut ids = [0u64; 3];
    assert_eq!(sockflow_server_connect_args(s, &a, 1 as *mut c_void, &mut ids[0]), 0, "{}", last_error());
    let host = CString::new(place.clone()).unwrap();
    assert_eq!(sockflow_server_connect(s, host.as_ptr(), 0, 10_000, 2 as *mut c_void, &mut ids[1]), 0, "{}", last_error());
    let mut wrong = a;
    set_path(&mut wrong.tls_ca, &c.path("other-ca.pem"));
    assert_eq!(sockflow_server_connect_args(s, &wrong, 3 as *mut c_void, &mut ids[2]), 0, "{}", last_error());
    // A server's arguments are not a connect's.
    let mut srv_args: sockflow_args = unsafe { std::mem::zeroed() };
    assert_eq!(sockflow_args_init(&mut srv_args, sockflow_role::Server as c_int, c"127.0.0.1".as_ptr(), port), 0);
    let mut id = 0;
    assert_eq!(sockflow_server_connect_args(s, &srv_args, std::ptr::null_mut(), &mut id), SOCKFLOW_EINVAL);
    assert_eq!(id, 0);
    {
        let closes = seen.closes_sorted(3, WAIT * 3);
        let want = format!("tls handshake with 127.0.0.1:{port}: invalid peer certificate: UnknownIssuer");
        let handler = sockflow_close_reason::Handler as c_int;
        let failed = sockflow_close_reason::ConnectFailed as c_int;
        assert_eq!(closes, vec![(1, handler, 0, String::new()), (2, handler, 0, String::new()), (3, failed, SOCKFLOW_ETLS, want)]);
    }
    let mut replies = seen.replies.lock().unwrap().clone();
    replies.sort();
    assert_eq!(replies, vec![(1, "ping".to_string()), (2, "ping".to_string())]);
    assert_eq!(sockflow_server_stop(s), 0);
    assert_eq!(run.join().unwrap(), 0);
    sockflow_server_close(s);
    tls_srv.stop().unwrap();
    unix_srv.stop().unwrap();
}

// The proxy example.

/// `proxy <args>` (listener, then upstream), with its listening port.
fn proxy(args: &[&str]) -> (Proc, u16) {
    start(&example("proxy", Link::Dynamic), args)
}

/// `echo_server unix:PATH` (a socket file named after `name`), listening.
/// Dropped, it is stopped with SIGTERM, on which it removes its socket
/// file (a SIGKILL, `Proc`'s way, left one in target/tmp per run); the
/// file is removed here too if the server could not.
struct UnixEcho {
    server: Proc,
    path: String,
}

impl Drop for UnixEcho {
    fn drop(&mut self) {
        self.server.signal(libc::SIGTERM);
        for _ in 0..50 {
            if self.server.try_status().is_some() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

/// A [`UnixEcho`] named after `name`, with its place.
fn unix_echo_server(name: &str) -> (UnixEcho, String) {
    let path = sock_path(name);
    let place = format!("unix:{path}");
    let up = spawn(example("echo_server", Link::Dynamic), &[&place], Input::Null);
    up.wait_for_line(Stream::Stderr, &format!("echo_server: listening on {place}"), default_timeout());
    (UnixEcho { server: up, path }, place)
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
}

#[test]
fn proxy_relays_exact_bytes_to_a_unix_upstream() {
    let (_up, place) = unix_echo_server("proxy");
    let (_p, port) = proxy(&["127.0.0.1", "0", &place]);
    let data = pattern(1 << 20);
    assert_bytes(&round_trip(port, &data), &data, "through the proxy to a unix: upstream");
}

/// TLS in, plaintext out to a local upstream: `tcp_client --tls-ca` talks
/// to the proxy, which verifies nothing upstream but relays to
/// `echo_server unix:PATH`.
#[test]
fn proxy_terminates_tls_in_front_of_a_plaintext_unix_upstream() {
    let c = Certs::new("proxy-terminate");
    let (_up, place) = unix_echo_server("terminate");
    let (cert, key, ca) = (c.path("server.pem"), c.path("server.key"), c.path("ca.pem"));
    let (_p, port) = proxy(&["--tls-cert", &cert, "--tls-key", &key, "127.0.0.1", "0", &place]);
    let mut cli = spawn(example("tcp_client", Link::Dynamic), &["--tls-ca", &ca, "localhost", &port.to_string()], Input::Piped);
    cli.write_stdin(b"hello through tls\n").unwrap();
    wait_eq(&cli, Stream::Stdout, "hello through tls");
    cli.write_stdin(b"quit\n").unwrap();
    exits_with(&mut cli, 0);
}

#[test]
fn proxy_originates_tls_to_a_tls_echo_server_and_openssl() {
    let c = Certs::new("proxy-originate");
    let (cert, key, ca) = (c.path("server.pem"), c.path("server.key"), c.path("ca.pem"));
    let (_up, up) = server("echo_server", Link::Dynamic, &["--tls-cert", &cert, "--tls-key", &key]);
    let (_p, port) = proxy(&["127.0.0.1", "0", "--tls-ca", &ca, "localhost", &up.to_string()]);
    let data = pattern(300_000);
    assert_bytes(&round_trip(port, &data), &data, "through the proxy to a TLS echo_server");
    if !has_openssl() {
        eprintln!("openssl s_server part skipped: no openssl");
        return;
    }
    let (_s, sport) = openssl_server(&c, "server", &[]);
    let (_p2, port2) = proxy(&["127.0.0.1", "0", "--tls-ca", &ca, "localhost", &sport.to_string()]);
    assert_eq!(round_trip(port2, b"hello openssl\n"), b"lssnepo olleh\n");
}

#[test]
fn proxy_with_the_wrong_upstream_ca_closes_each_client_and_logs_why() {
    let c = Certs::new("proxy-wrong-ca");
    let (cert, key, other) = (c.path("server.pem"), c.path("server.key"), c.path("other-ca.pem"));
    let (_up, up) = server("echo_server", Link::Dynamic, &["--tls-cert", &cert, "--tls-key", &key]);
    let (p, port) = proxy(&["127.0.0.1", "0", "--tls-ca", &other, "127.0.0.1", &up.to_string()]);
    let want = format!("proxy: upstream tls handshake with 127.0.0.1:{up}: invalid peer certificate: UnknownIssuer: closing the client");
    // Each client is closed with the reason logged; the proxy goes on
    // serving the next one.
    for n in 1..=3 {
        let mut s = connect(port);
        assert!(read_to_eof(&mut s).is_empty());
        assert!(
            eventually(default_timeout(), || p.stderr_text().matches(&want).count() >= n),
            "expected {n} x {want:?}\n{}",
            p.transcript()
        );
    }
}

#[test]
fn proxy_usage_names_both_sides() {
    let mut p = spawn(example("proxy", Link::Dynamic), &["0"], Input::Null);
    exits_with(&mut p, 2);
    assert!(
        p.stderr_text().contains("[listener options] [<host>] <listen-port> [upstream options] <upstream-host> <upstream-port>"),
        "{}",
        p.transcript()
    );
}
