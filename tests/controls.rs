//! Server controls by connection id, from other threads and from the
//! server's own callbacks: close (flushed or at once), count, ids, peer,
//! per-connection idle timeout; and the `chat_room` example with three
//! clients (a Rust stream, `nc` when installed, `tcp_client`).

mod common;
#[path = "flows/kit.rs"]
mod kit;
#[path = "server/kit.rs"]
mod skit;

use common::*;
use skit::{start_tcp, until};
use sockflow::ffi::addr::sockflow_addr;
use sockflow::ffi::args::*;
use sockflow::ffi::control::*;
use sockflow::ffi::error::*;
use sockflow::ffi::handler::*;
use sockflow::ffi::server::*;
use sockflow::ffi::SOCKFLOW_FOREVER;
use sockflow::server::{Action, CloseMode, CloseReason, Config, Conn, Handler, IdleTimeout};
use std::ffi::{c_char, c_int, c_void};
use std::io::{BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// Echoes, and records every close with its reason.
#[derive(Default)]
struct Recorder {
    closed: Mutex<Vec<(u64, CloseReason)>>,
}

impl Handler for Recorder {
    fn on_message(&self, c: &mut Conn<'_>, msg: &[u8]) -> Action {
        // Asked on the loop thread, inside a callback: must answer, not wait.
        let n = c.server().conn_count();
        let _ = c.send(format!("{n} {}", String::from_utf8_lossy(msg)).as_bytes());
        Action::Continue
    }
    fn on_close(&self, c: &mut Conn<'_>, reason: CloseReason) {
        self.closed.lock().unwrap().push((c.id(), reason));
    }
}

fn line(r: &mut BufReader<TcpStream>) -> String {
    kit::read_line(r)
}

#[test]
fn count_ids_peer_and_close_from_another_thread_and_from_callbacks() {
    let h = Arc::new(Recorder::default());
    let s = start_tcp(Config { log: None, ..Config::default() }, h.clone());
    let clients: Vec<TcpStream> = (0..3).map(|_| kit::connect(s.addr.port())).collect();
    until("three connections", || s.handle.conn_count() == 3);
    let mut readers: Vec<_> = clients.iter().map(|c| BufReader::new(c.try_clone().unwrap())).collect();
    (&clients[0]).write_all(b"hi\n").unwrap();
    assert_eq!(line(&mut readers[0]), "3 hi", "count inside a callback");
    let ids = thread::scope(|t| t.spawn(|| s.handle.conn_ids()).join().unwrap());
    assert_eq!(ids.len(), 3);
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "oldest first");
    let ports: Vec<u16> = clients.iter().map(|c| c.local_addr().unwrap().port()).collect();
    let mut peer_ports: Vec<u16> = ids.iter().map(|&id| s.handle.conn_peer(id).unwrap().port()).collect();
    peer_ports.sort();
    let mut want = ports.clone();
    want.sort();
    assert_eq!(peer_ports, want);
    // Which id is client 1? Its peer port says.
    let id_of = |port: u16| *ids.iter().find(|&&id| s.handle.conn_peer(id).unwrap().port() == port).unwrap();
    let (id1, id2) = (id_of(ports[1]), id_of(ports[2]));
    // Flush: what was queued before the close arrives first, then EOF.
    s.handle.send(id1, b"last words").unwrap();
    let h2 = s.handle.clone();
    thread::spawn(move || h2.close_conn(id1, CloseMode::Flush)).join().unwrap();
    assert_eq!(line(&mut readers[1]), "last words");
    assert_eq!(readers[1].read(&mut [0u8; 8]).unwrap(), 0);
    // Now: closed at once.
    s.handle.close_conn(id2, CloseMode::Now);
    let mut rest = Vec::new();
    let _ = readers[2].read_to_end(&mut rest);
    until("one connection left", || s.handle.conn_count() == 1);
    assert_eq!(s.handle.conn_ids(), [id_of(ports[0])]);
    assert!(s.handle.conn_peer(id1).is_none(), "a closed id has no peer");
    let closed = h.closed.lock().unwrap().clone();
    assert!(closed.contains(&(id1, CloseReason::Handler)) && closed.contains(&(id2, CloseReason::Handler)), "{closed:?}");
    s.stop().unwrap();
}

#[test]
fn a_connection_can_have_its_own_idle_timeout() {
    let h = Arc::new(Recorder::default());
    // The server has no idle timeout (and no incomplete-message sweeps):
    // only the override can close the quiet connection.
    let cfg = Config { log: None, incomplete_timeout: None, ..Config::default() };
    let s = start_tcp(cfg, h.clone());
    let quiet = kit::connect(s.addr.port());
    let keep = kit::connect(s.addr.port());
    until("two connections", || s.handle.conn_count() == 2);
    let qport = quiet.local_addr().unwrap().port();
    let ids = s.handle.conn_ids();
    let qid = *ids.iter().find(|&&id| s.handle.conn_peer(id).unwrap().port() == qport).unwrap();
    let t0 = Instant::now();
    s.handle.set_idle_timeout(qid, IdleTimeout::After(Duration::from_millis(200)));
    let mut r = BufReader::new(quiet);
    assert_eq!(r.read(&mut [0u8; 8]).unwrap(), 0, "closed for idleness");
    assert!(t0.elapsed() >= Duration::from_millis(200), "not before its timeout");
    until("on_close with reason Idle", || h.closed.lock().unwrap().contains(&(qid, CloseReason::Idle)));
    thread::sleep(Duration::from_millis(300));
    assert_eq!(s.handle.conn_count(), 1, "the other connection keeps the server's (none)");
    drop(keep);
    s.stop().unwrap();
}

// ---- the C API -----------------------------------------------------------------

/// On each message, answers with the count and its own peer port, asked
/// through the server handle in userdata (inside the loop's callback).
unsafe extern "C" fn c_on_message(ud: *mut c_void, conn: *mut sockflow_conn, _: *const c_char, _: usize) -> c_int {
    let s = *(ud as *const *mut sockflow_server);
    let id = sockflow_conn_id(conn);
    let mut a: sockflow_addr = std::mem::zeroed();
    assert_eq!(sockflow_server_peer(s, id, &mut a), 0);
    let reply = format!("{} {}", sockflow_server_conn_count(s), a.port);
    sockflow_conn_send(conn, reply.as_ptr().cast(), reply.len());
    if sockflow_server_set_idle_timeout(s, id, SOCKFLOW_FOREVER) != 0 {
        return -1;
    }
    0
}

#[test]
fn c_controls_from_callbacks_and_other_threads() {
    let mut a: sockflow_args = unsafe { std::mem::zeroed() };
    assert_eq!(sockflow_args_init(&mut a, sockflow_role::Server as c_int, c"127.0.0.1".as_ptr(), 0), 0);
    let mut cfg: sockflow_server_config = unsafe { std::mem::zeroed() };
    sockflow_server_config_init(&mut cfg);
    cfg.quiet = 1;
    let handler = sockflow_handler { on_connect: None, on_message: Some(c_on_message), on_close: None, builtin: 0 };
    let slot: *mut *mut sockflow_server = Box::into_raw(Box::new(std::ptr::null_mut()));
    let mut s = std::ptr::null_mut();
    assert_eq!(sockflow_tcp_server_new(&a, &cfg, handler, slot.cast(), &mut s), 0);
    // SAFETY: the slot outlives the server; written before it runs.
    unsafe { *slot = s };
    assert_eq!(sockflow_server_start(s), 0);
    let port = sockflow_server_port(s) as u16;
    let c1 = kit::connect(port);
    let c2 = kit::connect(port);
    let p = s as usize;
    until("two connections", || sockflow_server_conn_count(p as *const sockflow_server) == 2);
    (&c1).write_all(b"x\n").unwrap();
    let mut r1 = BufReader::new(c1.try_clone().unwrap());
    assert_eq!(line(&mut r1), format!("2 {}", c1.local_addr().unwrap().port()));
    // From another thread: the ids, a peer, a close.
    let ids = thread::spawn(move || {
        let s = p as *const sockflow_server;
        assert_eq!(sockflow_server_conn_ids(s, std::ptr::null_mut(), 0), 2, "the count without a buffer");
        let mut ids = [0u64; 1];
        assert_eq!(sockflow_server_conn_ids(s, ids.as_mut_ptr(), 1), 2, "snprintf-style: the full count");
        let mut all = [0u64; 4];
        assert_eq!(sockflow_server_conn_ids(s, all.as_mut_ptr(), 4), 2);
        assert_eq!(ids[0], all[0]);
        all[..2].to_vec()
    })
    .join()
    .unwrap();
    let c2port = c2.local_addr().unwrap().port();
    let id2 = *ids
        .iter()
        .find(|&&id| {
            let mut a: sockflow_addr = unsafe { std::mem::zeroed() };
            sockflow_server_peer(s, id, &mut a) == 0 && a.port as u16 == c2port
        })
        .unwrap();
    assert_eq!(sockflow_server_close_id(s, id2, 7), SOCKFLOW_EINVAL);
    assert_eq!(sockflow_server_close_id(s, id2, sockflow_close_mode::Now as c_int), 0);
    let mut r2 = BufReader::new(c2);
    let _ = r2.read_to_end(&mut Vec::new());
    until("one connection", || sockflow_server_conn_count(p as *const sockflow_server) == 1);
    let mut a: sockflow_addr = unsafe { std::mem::zeroed() };
    assert_eq!(sockflow_server_peer(s, id2, &mut a), SOCKFLOW_EBADHANDLE);
    assert_eq!(sockflow_server_stop(s), 0);
    assert_eq!(sockflow_server_join(s), 0);
    assert_eq!(sockflow_server_conn_count(s), 0, "every connection closed at the stop");
    sockflow_server_close(s);
    // SAFETY: from Box::into_raw above; the server is gone.
    drop(unsafe { Box::from_raw(slot) });
}

// ---- chat_room -------------------------------------------------------------

struct Member {
    stream: TcpStream,
    r: BufReader<TcpStream>,
}

impl Member {
    fn join(port: u16, nick: &str) -> Member {
        let stream = kit::connect(port);
        let r = BufReader::new(stream.try_clone().unwrap());
        let mut m = Member { stream, r };
        m.say(nick);
        m
    }
    fn say(&mut self, l: &str) {
        self.stream.write_all(format!("{l}\n").as_bytes()).unwrap();
    }
    fn hears(&mut self, want: &str) {
        assert_eq!(kit::read_line(&mut self.r), want);
    }
}

/// A client whose lines come from a child process's stdin and whose
/// replies are its stdout (`nc` or `tcp_client`).
fn proc_member(bin: &std::path::Path, args: &[&str], port: u16) -> Proc {
    let port = port.to_string();
    let mut a = args.to_vec();
    a.extend(["127.0.0.1", port.as_str()]);
    spawn(bin, &a, Input::Piped)
}

#[test]
fn chat_room_with_three_clients() {
    let (mut srv, port) = kit::server("chat_room", Link::Dynamic, &[]);
    let mut alice = Member::join(port, "alice");
    // /who doubles as a barrier: the nickname was taken before it.
    alice.say("/who");
    alice.hears("alice");
    // Bob: nc when installed (else a second Rust stream); carol: tcp_client.
    let nc = kit::tool("nc");
    let mut bob_proc = nc.as_ref().map(|nc| proc_member(nc, &["-N"], port));
    let mut bob_rust = None;
    match &mut bob_proc {
        Some(p) => p.write_stdin(b"bob\n").unwrap(),
        None => bob_rust = Some(Member::join(port, "bob")),
    }
    alice.hears("* bob joined");
    let mut carol = proc_member(&kit::example("tcp_client", Link::Dynamic), &[], port);
    carol.write_stdin(b"carol\n").unwrap();
    alice.hears("* carol joined");
    let bob_hears = |bob_proc: &Option<Proc>, bob_rust: &mut Option<Member>, want: &str| match bob_proc {
        Some(p) => {
            kit::wait_eq(p, Stream::Stdout, want);
        }
        None => bob_rust.as_mut().unwrap().hears(want),
    };
    bob_hears(&bob_proc, &mut bob_rust, "* carol joined");
    alice.say("hello room");
    bob_hears(&bob_proc, &mut bob_rust, "alice: hello room");
    kit::wait_eq(&carol, Stream::Stdout, "alice: hello room");
    carol.write_stdin(b"/who\n").unwrap();
    kit::wait_eq(&carol, Stream::Stdout, "alice,bob,carol");
    carol.write_stdin(b"hi, I am carol\n").unwrap();
    alice.hears("carol: hi, I am carol");
    bob_hears(&bob_proc, &mut bob_rust, "carol: hi, I am carol");
    carol.write_stdin(b"/quit\n").unwrap();
    alice.hears("* carol left");
    bob_hears(&bob_proc, &mut bob_rust, "* carol left");
    carol.close_stdin();
    kit::exits_with(&mut carol, 0);
    // Bob hangs up.
    match &mut bob_proc {
        Some(p) => {
            p.close_stdin();
            kit::exits_with(p, 0);
        }
        None => drop(bob_rust.take()),
    }
    alice.hears("* bob left");
    alice.say("/who");
    alice.hears("alice");
    kit::stop(&mut srv, libc::SIGTERM);
}
