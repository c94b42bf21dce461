//! A server's counters (`ServerHandle::stats`, `sockflow_server_stats`,
//! `--stats`): exact counts for a known exchange, with one worker and with
//! two, read from another thread while running and after the stop.

mod common;
#[path = "flows/kit.rs"]
mod fkit;
#[path = "server/kit.rs"]
mod skit;

use common::*;
use fkit::*;
use skit::*;
use sockflow::server::builtin::Echo;
use sockflow::server::{CloseReason, Config};
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpStream, UdpSocket};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// `clients` clients each send `lines` lines and read their echoes, then
/// close; one more connection from the same address is refused
/// (`max_per_ip` = `clients`).
fn exchange(workers: usize) {
    let (clients, lines) = (4usize, 25usize);
    let cfg = Config { log: None, workers, max_per_ip: clients, ..Config::default() };
    let srv = start_tcp(cfg, Arc::new(Echo));
    let socks: Vec<TcpStream> = (0..clients).map(|_| TcpStream::connect(srv.addr).unwrap()).collect();
    until("every client counted as open", || srv.handle.stats().conns_open == clients as u64);
    let extra = TcpStream::connect(srv.addr).unwrap();
    until("the extra one refused", || srv.handle.stats().conns_refused == 1);
    drop(extra);
    let mut bytes = 0u64;
    for (i, s) in socks.iter().enumerate() {
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut r = BufReader::new(s);
        for j in 0..lines {
            let line = format!("client {i} line {j}\n");
            bytes += line.len() as u64;
            (&*s).write_all(line.as_bytes()).unwrap();
            let mut back = String::new();
            r.read_line(&mut back).unwrap();
            assert_eq!(back, line);
        }
    }
    let n = (clients * lines) as u64;
    // A client can read its echo before the loop counts the write that
    // sent it: wait for the last count, then check every count exactly.
    until("the last write counted", || srv.handle.stats().bytes_out >= bytes);
    let st = srv.handle.stats();
    // Line frames: the message is the line without its newline.
    assert_eq!((st.msgs_in, st.bytes_in), (n, bytes - n), "{st:?}");
    assert_eq!((st.msgs_out, st.bytes_out), (n, bytes), "{st:?}");
    assert_eq!((st.conns_open, st.conns_total), (clients as u64, clients as u64), "{st:?}");
    drop(socks);
    until("every client closed", || srv.handle.stats().closed_by(CloseReason::Peer) == clients as u64);
    let handle = srv.handle.clone();
    srv.stop().unwrap();
    let after = handle.stats();
    assert_eq!(after.conns_open, 0, "{after:?}");
    assert_eq!(after.queued_bytes, 0, "{after:?}");
    assert_eq!((after.msgs_in, after.msgs_out), (n, n), "the counts stay after the stop: {after:?}");
    assert_eq!(after.closed.iter().sum::<u64>(), clients as u64, "{after:?}");
}

#[test]
fn counts_are_exact_with_one_worker() {
    exchange(1);
}

#[test]
fn counts_are_exact_summed_over_two_workers() {
    exchange(2);
}

/// Lines written many at a time, so one read holds many of them: a mirror
/// (`Echo`, `Upper`) answers those a read at a time (`builtin::Mirror`),
/// falling back to message by message for reads with a `\r` or the quit
/// word. Replies and every count stay exact either way.
#[test]
fn counts_are_exact_when_a_read_is_answered_at_once() {
    let mut input = Vec::new();
    let mut msg_bytes = 0u64;
    let n = 3000u64;
    for i in 0..n {
        // Some lines end in CRLF, some hold "quit" inside a longer line.
        let line = match i % 500 {
            7 => format!("crlf line {i}\r\n"),
            9 => format!("quite so {i}\n"),
            _ => format!("line {i} {}\n", "x".repeat((i % 70) as usize)),
        };
        msg_bytes += (line.trim_end_matches('\n').trim_end_matches('\r').len()) as u64;
        input.extend_from_slice(line.as_bytes());
    }
    for (name, handler, want) in [
        ("echo", Arc::new(Echo) as Arc<dyn sockflow::server::Handler>, input.clone()),
        ("upper", Arc::new(sockflow::server::builtin::Upper), input.to_ascii_uppercase()),
    ] {
        let srv = start_tcp(Config { log: None, ..Config::default() }, handler);
        let mut s = TcpStream::connect(srv.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let writer = {
            let (mut w, input) = (s.try_clone().unwrap(), input.clone());
            std::thread::spawn(move || w.write_all(&input).unwrap())
        };
        let mut back = vec![0u8; want.len()];
        std::io::Read::read_exact(&mut s, &mut back).unwrap();
        writer.join().unwrap();
        assert!(back == want, "{name}: the replies differ from what was sent");
        until("the last write counted", || srv.handle.stats().bytes_out >= want.len() as u64);
        let st = srv.handle.stats();
        assert_eq!((st.msgs_in, st.bytes_in), (n, msg_bytes), "{name}: {st:?}");
        assert_eq!((st.msgs_out, st.bytes_out), (n, want.len() as u64), "{name}: {st:?}");
        drop(s);
        srv.stop().unwrap();
    }
}

#[test]
fn udp_counts_messages_and_dropped_datagrams() {
    let cfg = Config { log: None, frame: sockflow::frame::Frame::parse("line:16").unwrap(), ..Config::default() };
    let srv = start_udp(cfg, Arc::new(Echo));
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    for m in ["one", "two"] {
        s.send_to(m.as_bytes(), srv.addr).unwrap();
        let mut buf = [0u8; 64];
        let (k, _) = s.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..k], m.as_bytes());
    }
    s.send_to(&[b'x'; 40], srv.addr).unwrap(); // over the 16-byte frame
    until("the long datagram dropped", || srv.handle.stats().dropped == 1);
    let st = srv.handle.stats();
    assert_eq!((st.msgs_in, st.bytes_in, st.msgs_out, st.bytes_out), (2, 6, 2, 6), "{st:?}");
}

#[test]
fn stats_flag_logs_the_counters_at_the_stop() {
    let (mut srv, port) = server("echo_server", Link::Static, &["--stats"]);
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.write_all(b"hello").unwrap();
    let mut r = BufReader::new(&s);
    let mut got = [0u8; 5];
    std::io::Read::read_exact(&mut r, &mut got).unwrap();
    drop(r);
    s.shutdown(std::net::Shutdown::Both).unwrap();
    srv.signal(libc::SIGINT);
    srv.wait_exit(Duration::from_secs(30));
    let err = srv.stderr_text();
    let line = err.lines().find(|l| l.contains("stats: ")).unwrap_or_else(|| panic!("no stats line\n{}", srv.transcript()));
    assert!(line.contains("1 in all") && line.contains("in 1 messages, 5 bytes") && line.contains("out 1 messages, 5 bytes"), "{line}");
}

#[test]
fn c_stats_from_another_thread_during_and_after_the_run() {
    use sockflow::ffi::args::*;
    use sockflow::ffi::handler::sockflow_handler_echo;
    use sockflow::ffi::server::*;
    use sockflow::ffi::stats::*;
    use std::ffi::c_int;
    let mut a: sockflow_args = unsafe { std::mem::zeroed() };
    assert_eq!(sockflow_args_init(&mut a, sockflow_role::Server as c_int, c"127.0.0.1".as_ptr(), 0), 0);
    let mut cfg: sockflow_server_config = unsafe { std::mem::zeroed() };
    sockflow_server_config_init(&mut cfg);
    cfg.quiet = 1;
    let mut s = std::ptr::null_mut();
    assert_eq!(sockflow_tcp_server_new(&a, &cfg, sockflow_handler_echo(), std::ptr::null_mut(), &mut s), 0);
    assert_eq!(sockflow_server_start(s), 0);
    let port = sockflow_server_port(s) as u16;
    let c = TcpStream::connect(("127.0.0.1", port)).unwrap();
    (&c).write_all(b"ping\n").unwrap();
    let mut line = String::new();
    BufReader::new(&c).read_line(&mut line).unwrap();
    assert_eq!(line, "ping\n");
    drop(c);
    let addr = s as usize; // read from another thread, as the docs allow
    let during = std::thread::spawn(move || {
        let mut st = sockflow_stats::default();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            assert_eq!(sockflow_server_stats(addr as *const sockflow_server, &mut st), 0);
            if st.closed[CloseReason::Peer as usize - 1] == 1 || Instant::now() > deadline {
                return st;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    })
    .join()
    .unwrap();
    assert_eq!((during.conns_total, during.msgs_in, during.bytes_in, during.msgs_out), (1, 1, 4, 1), "{during:?}");
    assert_eq!(during.closed[CloseReason::Peer as usize - 1], 1, "{during:?}");
    assert_eq!(sockflow_server_stop(s), 0);
    assert_eq!(sockflow_server_join(s), 0);
    let mut after = sockflow_stats::default();
    assert_eq!(sockflow_server_stats(s, &mut after), 0);
    assert_eq!((after.msgs_in, after.bytes_out, after.conns_open), (1, 5, 0), "{after:?}");
    sockflow_server_close(s);
}
