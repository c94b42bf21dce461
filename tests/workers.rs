//! Servers of several workers (`Config::workers`, `--workers N`): every
//! client served exactly whatever worker took it, connections spread over
//! the workers, the controls by id and the broadcast reaching every worker
//! from another thread, `max_per_ip` counted over all workers, a stop
//! ending every worker thread, timers on worker 0, UDP datagrams and peers
//! on workers, the own-loop C calls refusing several workers, and the
//! `echo_server` example with `--workers 2` under many clients and SIGINT.
//!
//! No timing assertions: the spread is checked loosely (each worker got at
//! least one of many connections; the kernel's hash leaves a worker out of
//! 64 connections with a probability under 1e-7).

mod common;
#[path = "flows/kit.rs"]
mod kit;
#[path = "server/kit.rs"]
mod skit;

use common::*;
use skit::{start_tcp, start_udp, until, LogBuf, WAIT};
use sockflow::server::{Action, CloseReason, Config, Conn, Handler, UdpMode};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ffi::c_int;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// The kernel's id of the calling thread.
fn tid() -> i64 {
    // SAFETY: gettid has no preconditions.
    unsafe { libc::gettid() as i64 }
}

/// What a connection's callbacks showed: its worker, every thread they
/// ran on, its peer.
type Seen = (usize, BTreeSet<i64>, SocketAddr);

/// Echoes, greets each connection with its id, and records what each
/// connection's callbacks showed.
#[derive(Default)]
struct Tracker {
    seen: Mutex<BTreeMap<u64, Seen>>,
    closed: Mutex<Vec<(u64, CloseReason)>>,
    greet: bool,
}

impl Tracker {
    fn greeting() -> Tracker {
        Tracker { greet: true, ..Tracker::default() }
    }

    fn note(&self, c: &Conn<'_>) {
        let mut seen = self.seen.lock().unwrap();
        let e = seen.entry(c.id()).or_insert_with(|| (c.worker(), BTreeSet::new(), c.peer()));
        assert_eq!(e.0, c.worker(), "a connection changed workers");
        e.1.insert(tid());
    }

    /// Workers that got at least one connection, and the threads per worker.
    fn workers(&self) -> BTreeMap<usize, BTreeSet<i64>> {
        let mut w: BTreeMap<usize, BTreeSet<i64>> = BTreeMap::new();
        for (worker, threads, _) in self.seen.lock().unwrap().values() {
            w.entry(*worker).or_default().extend(threads);
        }
        w
    }
}

impl Handler for Tracker {
    fn on_connect(&self, c: &mut Conn<'_>) -> Action {
        self.note(c);
        if self.greet {
            let _ = c.send(format!("id {}", c.id()).as_bytes());
        }
        Action::Continue
    }
    fn on_message(&self, c: &mut Conn<'_>, msg: &[u8]) -> Action {
        self.note(c);
        let _ = c.send(msg);
        Action::Continue
    }
    fn on_close(&self, c: &mut Conn<'_>, reason: CloseReason) {
        self.note(c);
        self.closed.lock().unwrap().push((c.id(), reason));
    }
}

fn client(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    s.set_read_timeout(Some(WAIT)).unwrap();
    s.set_write_timeout(Some(WAIT)).unwrap();
    s
}

/// `clients` clients at once, each sending `msgs` numbered lines (all
/// written before reading, so they are glued and split on the way) and
/// reading back exactly its own lines, in order.
fn exact_echo(addr: SocketAddr, clients: usize, msgs: usize) {
    let threads: Vec<_> = (0..clients)
        .map(|i| {
            thread::spawn(move || {
                let s = client(addr);
                let mut w = s.try_clone().unwrap();
                let writer = thread::spawn(move || {
                    let mut all = String::new();
                    for j in 0..msgs {
                        all.push_str(&format!("client {i} message {j} {}\n", "x".repeat(j % 50)));
                    }
                    w.write_all(all.as_bytes()).unwrap();
                });
                let mut r = BufReader::new(s);
                for j in 0..msgs {
                    let mut l = String::new();
                    r.read_line(&mut l).unwrap_or_else(|e| panic!("client {i}: reading reply {j}: {e}"));
                    assert_eq!(l, format!("client {i} message {j} {}\n", "x".repeat(j % 50)), "client {i}, reply {j}");
                }
                writer.join().unwrap();
            })
        })
        .collect();
    for t in threads {
        t.join().expect("a client failed");
    }
}

#[test]
fn every_client_is_served_exactly_and_connections_spread_over_the_workers() {
    for workers in [2, 4] {
        let h = Arc::new(Tracker::default());
        let srv = start_tcp(Config { workers, ..LogBuf::default().config() }, h.clone());
        assert_eq!(srv.handle.workers(), workers);
        exact_echo(srv.addr, 64, 300);
        until("every connection closed", || h.closed.lock().unwrap().len() == 64);
        let w = h.workers();
        assert_eq!(w.keys().copied().collect::<Vec<_>>(), (0..workers).collect::<Vec<_>>(), "workers that got connections");
        // One thread per worker, a different one for each.
        let threads: BTreeSet<i64> = w.values().flatten().copied().collect();
        assert!(w.values().all(|t| t.len() == 1), "a worker's callbacks ran on several threads: {w:?}");
        assert_eq!(threads.len(), workers, "workers share a thread: {w:?}");
        // Ids are unique and every callback of a connection ran on one thread.
        assert_eq!(h.seen.lock().unwrap().len(), 64);
        srv.stop().expect("run()");
    }
}

/// Thread-per-connection mode on workers: each worker keeps a thread per
/// connection, and every client is still served exactly.
#[test]
fn thread_mode_on_two_workers_serves_exactly() {
    let h = Arc::new(Tracker::default());
    let cfg = Config { workers: 2, mode: sockflow::server::Mode::ThreadPerConnection, ..LogBuf::default().config() };
    let srv = start_tcp(cfg, h.clone());
    exact_echo(srv.addr, 32, 100);
    until("every connection closed", || h.closed.lock().unwrap().len() == 32);
    assert_eq!(h.workers().len(), 2, "both workers got connections");
    srv.stop().expect("run()");
}

/// From C: `sockflow_conn_worker` names each connection's worker.
#[test]
fn c_callbacks_see_their_worker() {
    use sockflow::ffi::args::*;
    use sockflow::ffi::error::*;
    use sockflow::ffi::handler::*;
    use sockflow::ffi::server::*;
    unsafe extern "C" fn say_worker(_: *mut std::ffi::c_void, conn: *mut sockflow_conn, _: *const std::ffi::c_char, _: usize) -> c_int {
        let w = format!("worker {}", sockflow_conn_worker(conn));
        sockflow_conn_send(conn, w.as_ptr().cast(), w.len());
        sockflow_action::Continue as c_int
    }
    let mut a: sockflow_args = unsafe { std::mem::zeroed() };
    assert_eq!(sockflow_args_init(&mut a, sockflow_role::Server as c_int, c"127.0.0.1".as_ptr(), 0), 0);
    a.workers = 2; // as `--workers 2`
    let mut cfg: sockflow_server_config = unsafe { std::mem::zeroed() };
    sockflow_server_config_init(&mut cfg);
    cfg.quiet = 1;
    let h = sockflow_handler { on_connect: None, on_message: Some(say_worker), on_close: None, builtin: 0 };
    let mut s = std::ptr::null_mut();
    assert_eq!(sockflow_tcp_server_new(&a, &cfg, h, std::ptr::null_mut(), &mut s), 0);
    assert_eq!(sockflow_server_start(s), 0);
    let addr: SocketAddr = ([127, 0, 0, 1], sockflow_server_port(s) as u16).into();
    let mut seen = BTreeSet::new();
    for _ in 0..200 {
        let mut r = BufReader::new(client(addr));
        r.get_mut().write_all(b"which\n").unwrap();
        let mut l = String::new();
        r.read_line(&mut l).unwrap();
        seen.insert(l);
        if seen.len() == 2 {
            break;
        }
    }
    assert_eq!(seen, ["worker 0\n".to_string(), "worker 1\n".to_string()].into(), "the workers C callbacks saw");
    assert_eq!(sockflow_conn_worker(std::ptr::null()), SOCKFLOW_EINVAL);
    assert_eq!(sockflow_server_stop(s), 0);
    assert_eq!(sockflow_server_join(s), 0);
    sockflow_server_close(s);
}

/// Reads lines until one equal to `want` (bounded by the read timeout).
#[track_caller]
fn read_until(r: &mut BufReader<TcpStream>, want: &str) {
    loop {
        let mut l = String::new();
        let n = r.read_line(&mut l).unwrap_or_else(|e| panic!("waiting for {want:?}: {e}"));
        assert!(n > 0, "end of stream while waiting for {want:?}");
        if l.trim_end() == want {
            return;
        }
    }
}

#[test]
fn controls_reach_every_worker_from_another_thread() {
    const N: usize = 32;
    let h = Arc::new(Tracker::greeting());
    let srv = start_tcp(Config { workers: 2, ..LogBuf::default().config() }, h.clone());
    let mut clients: Vec<(u64, BufReader<TcpStream>)> = (0..N)
        .map(|_| {
            let mut r = BufReader::new(client(srv.addr));
            let mut l = String::new();
            r.read_line(&mut l).unwrap();
            let id = l.trim_end().strip_prefix("id ").and_then(|i| i.parse().ok()).unwrap_or_else(|| panic!("greeting {l:?}"));
            (id, r)
        })
        .collect();
    let handle = srv.handle.clone();
    // Counts, ids and peers come from every worker.
    until("every client counted", || handle.conn_count() == N);
    let ids: BTreeSet<u64> = handle.conn_ids().into_iter().collect();
    assert_eq!(ids, clients.iter().map(|(id, _)| *id).collect(), "conn_ids");
    for (id, r) in &clients {
        assert_eq!(handle.conn_peer(*id), Some(r.get_ref().local_addr().unwrap()), "conn_peer({id})");
    }
    assert_eq!(h.workers().len(), 2, "both workers have clients");
    // From a thread that is no worker's: to each id, then to all.
    let sender = {
        let (handle, ids) = (handle.clone(), ids.clone());
        thread::spawn(move || {
            for id in &ids {
                handle.send(*id, format!("for {id}").as_bytes()).unwrap();
            }
            handle.broadcast(b"for all", None).unwrap();
        })
    };
    sender.join().unwrap();
    for (id, r) in &mut clients {
        read_until(r, &format!("for {id}"));
        read_until(r, "for all");
    }
    // Close every other client by id, from another thread.
    let closing: Vec<u64> = clients.iter().step_by(2).map(|(id, _)| *id).collect();
    let closer = {
        let (handle, closing) = (handle.clone(), closing.clone());
        thread::spawn(move || closing.iter().for_each(|id| handle.close(*id)))
    };
    closer.join().unwrap();
    for (id, r) in &mut clients {
        if closing.contains(id) {
            let mut rest = Vec::new();
            r.read_to_end(&mut rest).unwrap_or_else(|e| panic!("client {id} not closed: {e}"));
        }
    }
    until("the closed ones uncounted", || handle.conn_count() == N - closing.len());
    // A connection leaves the count just before its `on_close` runs (on
    // its worker's thread): wait for the callbacks too.
    let by_handler =
        || -> BTreeSet<u64> { h.closed.lock().unwrap().iter().filter(|(_, r)| *r == CloseReason::Handler).map(|(id, _)| *id).collect() };
    let want: BTreeSet<u64> = closing.iter().copied().collect();
    until("on_close for every one closed", || by_handler().len() >= want.len());
    assert_eq!(by_handler(), want, "closed by id, on both workers");
    // The others are still served.
    for (id, r) in clients.iter_mut().filter(|(id, _)| !closing.contains(id)) {
        r.get_mut().write_all(format!("still {id}\n").as_bytes()).unwrap();
        read_until(r, &format!("still {id}"));
    }
    srv.stop().expect("run()");
    assert_eq!(h.closed.lock().unwrap().len(), N, "on_close once per connection");
}

/// Relays `relay ID TEXT` to connection ID and answers whether it could.
struct Relayer(Tracker);

impl Handler for Relayer {
    fn on_connect(&self, c: &mut Conn<'_>) -> Action {
        self.0.on_connect(c)
    }
    fn on_message(&self, c: &mut Conn<'_>, msg: &[u8]) -> Action {
        let text = String::from_utf8_lossy(msg).into_owned();
        let mut words = text.splitn(3, ' ');
        let (Some("relay"), Some(id), Some(what)) = (words.next(), words.next(), words.next()) else { return self.0.on_message(c, msg) };
        let r = c.relay(id.parse().unwrap(), what.as_bytes());
        let _ = c.send(format!("relayed {}", r.is_ok()).as_bytes());
        Action::Continue
    }
}

/// A relay joins two connections of one worker; to another worker's
/// connection it is refused (an error, not bytes silently lost).
#[test]
fn a_relay_stays_on_one_worker() {
    let h = Arc::new(Relayer(Tracker::greeting()));
    let srv = start_tcp(Config { workers: 2, ..LogBuf::default().config() }, h.clone());
    let mut clients: Vec<(u64, BufReader<TcpStream>)> = Vec::new();
    let worker_of = |id: u64| h.0.seen.lock().unwrap()[&id].0;
    // Until two share a worker and two do not (bounded).
    let pairs = loop {
        assert!(clients.len() < 100, "100 clients and no pair on each side");
        let mut r = BufReader::new(client(srv.addr));
        let mut l = String::new();
        r.read_line(&mut l).unwrap();
        clients.push((l.trim_end()[3..].parse().unwrap(), r));
        let ids: Vec<u64> = clients.iter().map(|(id, _)| *id).collect();
        let same =
            ids.iter().enumerate().find_map(|(i, a)| ids[i + 1..].iter().find(|b| worker_of(*a) == worker_of(**b)).map(|b| (*a, *b)));
        let apart =
            ids.iter().enumerate().find_map(|(i, a)| ids[i + 1..].iter().find(|b| worker_of(*a) != worker_of(**b)).map(|b| (*a, *b)));
        if let (Some(s), Some(a)) = (same, apart) {
            break [(s, true), (a, false)];
        }
    };
    for ((from, to), ok) in pairs {
        let r = &mut clients.iter_mut().find(|(id, _)| *id == from).unwrap().1;
        r.get_mut().write_all(format!("relay {to} hello from {from}\n").as_bytes()).unwrap();
        read_until(r, &format!("relayed {ok}"));
        if ok {
            let r = &mut clients.iter_mut().find(|(id, _)| *id == to).unwrap().1;
            read_until(r, &format!("hello from {from}"));
        }
    }
    srv.stop().expect("run()");
}

#[test]
fn max_per_ip_counts_over_all_workers() {
    let h = Arc::new(Tracker::default());
    let srv = start_tcp(Config { workers: 2, max_per_ip: 3, ..LogBuf::default().config() }, h.clone());
    // Twelve at once from one address: whatever workers they hash to, three
    // are served and the others closed at once.
    let mut all: Vec<TcpStream> = (0..12).map(|_| client(srv.addr)).collect();
    let mut served = 0;
    for (i, s) in all.iter_mut().enumerate() {
        let _ = s.write_all(format!("hi {i}\n").as_bytes());
        let mut b = Vec::new();
        let mut one = [0u8; 1];
        // Either the echo comes back or the stream ends.
        loop {
            match s.read(&mut one) {
                Ok(1) if one[0] == b'\n' => {
                    served += 1;
                    break;
                }
                Ok(1) => b.push(one[0]),
                Ok(_) | Err(_) => break,
            }
        }
    }
    assert_eq!(served, 3, "served out of 12 with max_per_ip 3 over two workers");
    srv.stop().expect("run()");
}

#[test]
fn stop_ends_every_worker_thread() {
    let h = Arc::new(Tracker::default());
    let log = LogBuf::default();
    let srv = start_tcp(Config { workers: 3, ..log.config() }, h.clone());
    let mut clients: Vec<TcpStream> = (0..48).map(|_| client(srv.addr)).collect();
    for (i, c) in clients.iter_mut().enumerate() {
        c.write_all(format!("{i}\n").as_bytes()).unwrap();
        let mut b = vec![0u8; format!("{i}\n").len()];
        c.read_exact(&mut b).unwrap();
    }
    let threads: BTreeSet<i64> = h.workers().values().flatten().copied().collect();
    assert_eq!(threads.len(), 3, "three worker threads served");
    srv.stop().expect("run()");
    // Every connection closed with STOPPING, every client sees its end.
    let closed = h.closed.lock().unwrap().clone();
    assert_eq!(closed.len(), 48);
    assert!(closed.iter().all(|(_, r)| *r == CloseReason::Stopping), "{closed:?}");
    for c in &mut clients {
        assert_eq!(c.read(&mut [0u8; 8]).unwrap(), 0);
    }
    // run() returned: no worker thread is left.
    let gone = |t: &i64| !std::path::Path::new(&format!("/proc/self/task/{t}")).exists();
    until("every worker thread ended", || threads.iter().all(gone));
    // One start line and one stop line, the stop after everything.
    let text = log.text();
    assert_eq!(text.matches("listening on").count(), 1, "{text}");
    assert_eq!(text.matches("stopped").count(), 1, "{text}");
}

#[test]
fn a_stop_from_any_workers_callback_stops_the_server() {
    struct StopOnWord;
    impl Handler for StopOnWord {
        fn on_message(&self, c: &mut Conn<'_>, msg: &[u8]) -> Action {
            let _ = c.send(msg);
            if msg == b"stop" && c.worker() == 1 {
                Action::Stop
            } else {
                Action::Continue
            }
        }
    }
    let mut srv = start_tcp(Config { workers: 2, ..LogBuf::default().config() }, Arc::new(StopOnWord));
    // Clients until one lands on worker 1 and stops the server there.
    let deadline = Instant::now() + WAIT;
    let mut kept = Vec::new();
    while Instant::now() < deadline {
        let Ok(mut s) = TcpStream::connect(srv.addr) else { break };
        s.set_read_timeout(Some(WAIT)).unwrap();
        if s.write_all(b"stop\n").is_err() {
            break;
        }
        let mut b = [0u8; 5];
        if s.read_exact(&mut b).is_err() {
            break;
        }
        kept.push(s);
        if srv.handle.stopping() {
            break;
        }
    }
    assert!(srv.handle.stopping(), "no client reached worker 1 in {} tries", kept.len());
    srv.wait_exit().expect("run() after a stop from worker 1");
}

/// A Rust handler that panics on worker 1 stops the whole server (logged),
/// as a panic out of a single loop's `run` would end it: no worker is left
/// dead while the others serve on.
#[test]
fn a_panic_on_another_worker_stops_the_server() {
    struct Boom;
    impl Handler for Boom {
        fn on_message(&self, c: &mut Conn<'_>, msg: &[u8]) -> Action {
            assert!(!(msg == b"boom" && c.worker() == 1), "boom on worker 1");
            let _ = c.send(msg);
            Action::Continue
        }
    }
    let log = LogBuf::default();
    let mut srv = start_tcp(Config { workers: 2, ..log.config() }, Arc::new(Boom));
    let mut tries = 0;
    while !srv.handle.stopping() {
        assert!(tries < 200, "no client reached worker 1 in 200 connections");
        tries += 1;
        let Ok(mut s) = TcpStream::connect(srv.addr) else { break };
        s.set_read_timeout(Some(WAIT)).unwrap();
        let _ = s.write_all(b"boom\n");
        let _ = s.read(&mut [0u8; 8]); // an echo, or the end
    }
    srv.wait_exit().expect("run() after the panic");
    assert!(log.text().contains("worker 1: a callback panicked: stopping"), "{}", log.text());
}

#[test]
fn timers_run_on_worker_0_whoever_adds_them() {
    /// Adds a timer from the callback of its first message; the timer
    /// notes the thread it runs on.
    #[derive(Default)]
    struct AddsTimer {
        fired: Arc<Mutex<Vec<i64>>>,
        workers: Mutex<HashMap<usize, i64>>,
    }
    impl Handler for AddsTimer {
        fn on_message(&self, c: &mut Conn<'_>, msg: &[u8]) -> Action {
            self.workers.lock().unwrap().insert(c.worker(), tid());
            let fired = self.fired.clone();
            c.server()
                .add_timer(
                    Duration::from_millis(1),
                    None,
                    Box::new(move |_| {
                        fired.lock().unwrap().push(tid());
                        sockflow::server::TimerAction::Cancel
                    }),
                )
                .unwrap();
            let _ = c.send(msg);
            Action::Continue
        }
    }
    let h = Arc::new(AddsTimer::default());
    let srv = start_tcp(Config { workers: 2, ..LogBuf::default().config() }, h.clone());
    let mut n = 0;
    while h.workers.lock().unwrap().len() < 2 {
        assert!(n < 200, "no client reached both workers in 200 connections");
        let mut s = client(srv.addr);
        s.write_all(b"t\n").unwrap();
        s.read_exact(&mut [0u8; 2]).unwrap();
        n += 1;
    }
    until("every timer fired", || h.fired.lock().unwrap().len() == n);
    let worker0 = h.workers.lock().unwrap()[&0];
    assert!(h.fired.lock().unwrap().iter().all(|t| *t == worker0), "a timer ran off worker 0's thread");
    srv.stop().expect("run()");
}

#[test]
fn udp_datagrams_and_peers_on_workers() {
    for udp in [UdpMode::Datagrams, UdpMode::Peers] {
        let h = Arc::new(Tracker::default());
        let srv = start_udp(Config { workers: 2, udp, ..LogBuf::default().config() }, h.clone());
        let socks: Vec<UdpSocket> = (0..64)
            .map(|_| {
                let s = UdpSocket::bind("127.0.0.1:0").unwrap();
                s.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
                s.connect(srv.addr).unwrap();
                s
            })
            .collect();
        // Lock-step, resent on a lost datagram (bounded).
        for round in 0..3 {
            for (i, s) in socks.iter().enumerate() {
                let msg = format!("{i} {round}");
                let mut b = [0u8; 64];
                let got = (0..20).any(|_| s.send(msg.as_bytes()).is_ok() && s.recv(&mut b).is_ok_and(|n| b[..n] == *msg.as_bytes()));
                assert!(got, "{udp:?}: no echo of {msg:?}");
            }
        }
        assert_eq!(h.workers().len(), 2, "{udp:?}: both workers got senders");
        if udp == UdpMode::Peers {
            // One peer per sender, each on one worker (`note` checks that),
            // and sends by id reach them from this thread.
            let seen = h.seen.lock().unwrap().clone();
            assert_eq!(seen.len(), 64, "{udp:?}: peers");
            assert_eq!(srv.handle.conn_count(), 64);
            for (id, (_, _, peer)) in &seen {
                srv.handle.send(*id, format!("to {id}").as_bytes()).unwrap();
                let s = socks.iter().find(|s| s.local_addr().unwrap() == *peer).expect("a peer is one of the senders");
                let mut b = [0u8; 64];
                let n = s.recv(&mut b).unwrap_or_else(|e| panic!("peer {id}: {e}"));
                // Sent on the server's own initiative: a line ends with `\n`.
                assert_eq!(&b[..n], format!("to {id}\n").as_bytes());
            }
        }
        srv.stop().expect("run()");
        if udp == UdpMode::Peers {
            assert_eq!(h.closed.lock().unwrap().len(), 64, "every peer closed at the stop");
        }
    }
}

/// A socket of type `ty` (UDP, or a TCP listener) with `SO_REUSEPORT`
/// bound to 127.0.0.1, port 0, as another program of this user might hold;
/// returns its descriptor and port.
fn foreign_reuseport(ty: c_int) -> (std::os::fd::OwnedFd, u16) {
    use std::os::fd::FromRawFd;
    // SAFETY: plain socket calls on a descriptor this function owns.
    unsafe {
        let fd = libc::socket(libc::AF_INET, ty | libc::SOCK_CLOEXEC, 0);
        assert!(fd >= 0, "socket");
        let fd = std::os::fd::OwnedFd::from_raw_fd(fd);
        let one: c_int = 1;
        let raw = std::os::fd::AsRawFd::as_raw_fd(&fd);
        let len = std::mem::size_of::<c_int>() as libc::socklen_t;
        assert_eq!(libc::setsockopt(raw, libc::SOL_SOCKET, libc::SO_REUSEPORT, (&one as *const c_int).cast(), len), 0);
        let mut a: libc::sockaddr_in = std::mem::zeroed();
        a.sin_family = libc::AF_INET as libc::sa_family_t;
        a.sin_addr.s_addr = u32::from(std::net::Ipv4Addr::LOCALHOST).to_be();
        let alen = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
        assert_eq!(libc::bind(raw, (&a as *const libc::sockaddr_in).cast(), alen), 0, "bind");
        let mut len = alen;
        assert_eq!(libc::getsockname(raw, (&mut a as *mut libc::sockaddr_in).cast(), &mut len), 0);
        assert!(ty != libc::SOCK_STREAM || libc::listen(raw, 1) == 0, "listen");
        (fd, u16::from_be(a.sin_port))
    }
}

/// Asked for port 0, a server of several workers gets a port of its own:
/// never one that another `SO_REUSEPORT` group of this user holds (for UDP
/// the kernel would let it join that group, and the two would share
/// datagrams; TCP is checked too).
#[test]
fn workers_on_port_0_never_join_another_group() {
    for (ty, udp) in [(libc::SOCK_DGRAM, true), (libc::SOCK_STREAM, false)] {
        let foreign: Vec<_> = (0..4000).map(|_| foreign_reuseport(ty)).collect();
        let taken: BTreeSet<u16> = foreign.iter().map(|(_, p)| *p).collect();
        for i in 0..40 {
            let cfg = Config { workers: 2, ..LogBuf::default().config() };
            let h = Arc::new(Tracker::default());
            let port = if udp {
                sockflow::server::udp::UdpServer::bind(&[skit::any_port()], cfg, h).expect("bind").local_addr().port()
            } else {
                sockflow::server::tcp::TcpServer::bind(&[skit::any_port()], cfg, h).expect("bind").local_addr().port()
            };
            assert!(!taken.contains(&port), "udp {udp}: server {i} was given port {port}, held by another SO_REUSEPORT group");
        }
    }
}

#[test]
fn the_programs_own_loop_drives_one_worker_only() {
    use sockflow::ffi::args::*;
    use sockflow::ffi::error::*;
    use sockflow::ffi::handler::*;
    use sockflow::ffi::server::*;
    let mut a: sockflow_args = unsafe { std::mem::zeroed() };
    assert_eq!(sockflow_args_init(&mut a, sockflow_role::Server as c_int, c"127.0.0.1".as_ptr(), 0), 0);
    let mut cfg: sockflow_server_config = unsafe { std::mem::zeroed() };
    sockflow_server_config_init(&mut cfg);
    assert_eq!(cfg.workers, 0, "default: the arguments' --workers, else 1");
    cfg.quiet = 1;
    cfg.workers = 2;
    let mut s = std::ptr::null_mut();
    assert_eq!(sockflow_tcp_server_new(&a, &cfg, sockflow_handler_echo(), std::ptr::null_mut(), &mut s), 0);
    for (what, rc) in [("turn", sockflow_server_turn(s, 0)), ("fd", sockflow_server_fd(s)), ("timeout", sockflow_server_timeout(s, &mut 0))]
    {
        assert_eq!(rc, SOCKFLOW_EINVAL, "{what}");
        let mut buf = [0 as std::ffi::c_char; 256];
        sockflow_last_error(buf.as_mut_ptr(), buf.len());
        let msg = unsafe { std::ffi::CStr::from_ptr(buf.as_ptr()) }.to_string_lossy().into_owned();
        assert!(msg.contains("2 workers") && msg.contains("sockflow_server_run"), "{what}: {msg}");
    }
    // Refused, not used up: it still runs, with both workers.
    assert_eq!(sockflow_server_start(s), 0);
    let port = sockflow_server_port(s) as u16;
    kit::echo_roundtrip(port, "after the refusals");
    assert_eq!(sockflow_server_stop(s), 0);
    assert_eq!(sockflow_server_join(s), 0);
    sockflow_server_close(s);
    // Out of range.
    for bad in [-1, 257] {
        cfg.workers = bad;
        let mut s = std::ptr::null_mut();
        assert_eq!(
            sockflow_tcp_server_new(&a, &cfg, sockflow_handler_echo(), std::ptr::null_mut(), &mut s),
            SOCKFLOW_EINVAL,
            "workers {bad}"
        );
    }
}

/// The example with `--workers 2`: 100 clients of 200 raw messages each,
/// every byte back to its own client; then SIGINT stops it (status 0) with
/// one stop line.
#[test]
fn echo_server_example_with_two_workers() {
    let (mut p, port) = kit::server("echo_server", Link::Dynamic, &["--workers", "2", "--frame", "line"]);
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    exact_echo(addr, 100, 200);
    kit::stop(&mut p, libc::SIGINT);
    let err = p.stderr_text();
    assert_eq!(err.matches("echo_server: stopped").count(), 1, "{}", p.transcript());
}

// ---------------------------------------------------------------------------
// Measurement (not a test: prints numbers, asserts nothing about speed).
// `cargo test --release --test workers -- --ignored --nocapture measure`
// ---------------------------------------------------------------------------

/// CPU time (ns) used so far by every thread of process `pid`.
fn cpu_ns(pid: u32) -> u64 {
    let mut total = 0;
    for t in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap().flatten() {
        if let Ok(s) = std::fs::read_to_string(t.path().join("schedstat")) {
            total += s.split_whitespace().next().and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        }
    }
    total
}

/// Drives `conns` pipelined `line` clients on `threads` generator threads
/// for `secs`: each round writes `batch` 32-byte lines to each of its
/// connections, then reads every reply back. Returns the messages echoed.
fn load(addr: SocketAddr, conns: usize, threads: usize, batch: usize, secs: Duration) -> u64 {
    let per = conns / threads;
    let gens: Vec<_> = (0..threads)
        .map(|_| {
            thread::spawn(move || {
                let mut cs: Vec<BufReader<TcpStream>> = (0..per).map(|_| BufReader::new(client(addr))).collect();
                let msg = format!("{}\n", "m".repeat(31));
                let out = msg.repeat(batch);
                let (mut n, end) = (0u64, Instant::now() + secs);
                let mut l = String::new();
                while Instant::now() < end {
                    for c in &mut cs {
                        c.get_mut().write_all(out.as_bytes()).unwrap();
                    }
                    for c in &mut cs {
                        for _ in 0..batch {
                            l.clear();
                            c.read_line(&mut l).unwrap();
                            assert_eq!(l, msg);
                        }
                    }
                    n += (per * batch) as u64;
                }
                n
            })
        })
        .collect();
    gens.into_iter().map(|g| g.join().unwrap()).sum()
}

#[test]
#[ignore = "a measurement: run with --release --ignored --nocapture"]
fn measure_one_vs_two_workers() {
    let secs = Duration::from_secs(std::env::var("MEASURE_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(3));
    let conns = 100;
    let mut results: BTreeMap<usize, Vec<(f64, f64)>> = BTreeMap::new();
    for round in 0..5 {
        for workers in [1usize, 2] {
            let w = workers.to_string();
            let (mut p, port) = kit::server("echo_server", Link::Dynamic, &["--workers", &w, "--frame", "line"]);
            let addr: SocketAddr = ([127, 0, 0, 1], port).into();
            load(addr, 10, 2, 4, Duration::from_millis(200)); // warm-up
            let cpu0 = cpu_ns(p.pid());
            let t0 = Instant::now();
            let msgs = load(addr, conns, 2, 16, secs);
            let (cpu, wall) = (cpu_ns(p.pid()) - cpu0, t0.elapsed().as_secs_f64());
            kit::stop(&mut p, libc::SIGINT);
            let (rate, per_msg) = (msgs as f64 / wall, cpu as f64 / msgs as f64);
            println!("round {round} workers {workers}: {rate:.0} msg/s, server CPU {per_msg:.0} ns/msg ({msgs} messages)");
            results.entry(workers).or_default().push((rate, per_msg));
        }
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(|a, b| a.total_cmp(b));
        v[v.len() / 2]
    };
    let mut m = BTreeMap::new();
    for (w, r) in &results {
        let (mut rates, mut cpus): (Vec<f64>, Vec<f64>) = r.iter().copied().unzip();
        m.insert(*w, (median(&mut rates), median(&mut cpus)));
        println!("median workers {w}: {:.0} msg/s, {:.0} ns CPU/msg", m[w].0, m[w].1);
    }
    println!("2 workers / 1 worker (medians): throughput {:.2}x, CPU per message {:.2}x", m[&2].0 / m[&1].0, m[&2].1 / m[&1].1);
    // Paired: each round's 2-worker run against the 1-worker run just before it.
    let (mut rate, mut cpu): (Vec<f64>, Vec<f64>) = results[&1].iter().zip(&results[&2]).map(|(a, b)| (b.0 / a.0, b.1 / a.1)).unzip();
    println!(
        "2 workers / 1 worker (median of paired rounds): throughput {:.2}x, CPU per message {:.2}x",
        median(&mut rate),
        median(&mut cpu)
    );
    // The spread: connections per worker out of 1,000, in this process.
    for workers in [2usize, 4] {
        let h = Arc::new(Tracker::default());
        let srv = start_tcp(Config { workers, ..LogBuf::default().config() }, h.clone());
        for _ in 0..1000 {
            drop(client(srv.addr));
        }
        until("every connection closed", || h.closed.lock().unwrap().len() == 1000);
        let mut per = vec![0usize; workers];
        for (w, _, _) in h.seen.lock().unwrap().values() {
            per[*w] += 1;
        }
        let even = 1000.0 / workers as f64;
        let worst = per.iter().map(|&n| (n as f64 - even).abs() / even).fold(0.0, f64::max);
        println!("spread over {workers} workers of 1000 connections: {per:?} (worst {:.1}% off even)", worst * 100.0);
        srv.stop().unwrap();
    }
}

/// `udp_server --workers 2` (the print handler) under many senders at once:
/// each datagram's `client ip = … port = …` line is followed by that
/// datagram, never by another worker's line.
#[test]
fn udp_print_keeps_each_sender_line_with_its_datagram() {
    let (mut p, port) = kit::server("udp_server", Link::Dynamic, &["--workers", "2"]);
    const SENDERS: usize = 32;
    const EACH: usize = 100;
    let senders: Vec<_> = (0..SENDERS)
        .map(|_| {
            thread::spawn(move || {
                let s = UdpSocket::bind("127.0.0.1:0").unwrap();
                let me = s.local_addr().unwrap().port();
                for j in 0..EACH {
                    s.send_to(format!("from {me} #{j}").as_bytes(), ("127.0.0.1", port)).unwrap();
                    if j % 10 == 9 {
                        thread::sleep(Duration::from_millis(1)); // stay under the socket buffers
                    }
                }
                me
            })
        })
        .collect();
    let ports: Vec<u16> = senders.into_iter().map(|t| t.join().unwrap()).collect();
    // Bounded: UDP may drop a few; wait for the output to settle.
    let mut last = 0;
    until("the server's output settles", || {
        thread::sleep(Duration::from_millis(200));
        let n = p.stdout_text().len();
        std::mem::replace(&mut last, n) == n
    });
    let out = p.stdout_text();
    let lines: Vec<&str> = out.lines().collect();
    // UDP drops what the socket buffers cannot hold: most, not all, arrive.
    assert!(lines.len() >= 400, "only {} lines printed", lines.len());
    for pair in lines.chunks(2) {
        let [who, msg] = pair else { panic!("a sender line without its datagram: {pair:?}") };
        let sender = kit::port_eq(who);
        assert!(ports.contains(&sender), "{who:?}");
        assert!(msg.starts_with(&format!("from {sender} #")), "{who:?} followed by {msg:?}");
    }
    kit::stop(&mut p, libc::SIGINT);
}
