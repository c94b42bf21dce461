//! A server driven by the program: one turn at a time from its own event
//! loop (`sockflow_server_turn`, `_fd`, `_timeout`), or on a background
//! thread (`sockflow_server_start`, `_join`); and the `console_server`
//! example, driven through its stdin.

mod common;
#[path = "flows/kit.rs"]
mod kit;

use common::*;
use sockflow::ffi::args::*;
use sockflow::ffi::error::*;
use sockflow::ffi::handler::*;
use sockflow::ffi::server::*;
use sockflow::ffi::timer::*;
use sockflow::ffi::SOCKFLOW_FOREVER;
use std::ffi::{c_int, c_void};
use std::io::{BufReader, Read, Write};
use std::ptr::null_mut;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(20);

fn echo_server() -> *mut sockflow_server {
    let mut a: sockflow_args = unsafe { std::mem::zeroed() };
    assert_eq!(sockflow_args_init(&mut a, sockflow_role::Server as c_int, c"127.0.0.1".as_ptr(), 0), 0);
    let mut cfg: sockflow_server_config = unsafe { std::mem::zeroed() };
    sockflow_server_config_init(&mut cfg);
    cfg.quiet = 1;
    let mut s = null_mut();
    assert_eq!(sockflow_tcp_server_new(&a, &cfg, sockflow_handler_echo(), null_mut(), &mut s), 0);
    s
}

unsafe extern "C" fn count(ud: *mut c_void, _: *mut sockflow_server, _: u64) -> c_int {
    *(ud as *mut u32) += 1;
    sockflow_action::Continue as c_int
}

#[test]
fn turns_from_the_programs_own_loop() {
    let s = echo_server();
    let port = sockflow_server_port(s) as u16;
    let fd = sockflow_server_fd(s);
    assert!(fd >= 0);
    // Nothing is due: no deadline. A timer gives one, at most its delay away.
    let timeout = |s| {
        let mut t = 12345;
        assert_eq!(sockflow_server_timeout(s, &mut t), 0);
        t
    };
    assert_eq!(timeout(s), SOCKFLOW_FOREVER);
    let mut ticks = 0u32;
    assert_eq!(sockflow_server_timer_add(s, 50, 0, Some(count), &mut ticks as *mut u32 as *mut c_void, null_mut()), 0);
    let t = timeout(s);
    assert!((0..=50).contains(&t), "timeout {t} for a timer due in 50 ms");
    // The program's loop: poll the descriptor with the timeout, then turn.
    let mut client = kit::connect(port);
    client.write_all(b"ping\n").unwrap();
    client.set_nonblocking(true).unwrap();
    let mut got = Vec::new();
    let deadline = Instant::now() + WAIT;
    while (got != b"ping\n" || ticks == 0) && Instant::now() < deadline {
        let mut p = libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
        let t = timeout(s);
        // SAFETY: one valid pollfd.
        unsafe { libc::poll(&mut p, 1, if t < 0 { 1000 } else { t }) };
        assert_eq!(sockflow_server_turn(s, 0), sockflow_turn::Running as c_int);
        let mut b = [0u8; 64];
        if let Ok(n) = client.read(&mut b) {
            got.extend_from_slice(&b[..n]);
        }
    }
    assert_eq!(got, b"ping\n", "the echo came back through turns");
    assert_eq!(ticks, 1, "the timer fired once, inside a turn");
    // A stop: the next turn closes everything and says so; then it is done.
    assert_eq!(sockflow_server_stop(s), 0);
    assert_eq!(sockflow_server_turn(s, 1000), sockflow_turn::Stopped as c_int);
    client.set_nonblocking(false).unwrap();
    client.set_read_timeout(Some(WAIT)).unwrap();
    assert_eq!(client.read(&mut [0u8; 8]).unwrap(), 0, "the client was closed");
    assert_eq!(sockflow_server_turn(s, 0), SOCKFLOW_EBADHANDLE);
    let mut t = 12345;
    assert_eq!(sockflow_server_timeout(s, &mut t), SOCKFLOW_EBADHANDLE);
    assert_eq!(t, 12345, "left alone on an error");
    sockflow_server_close(s);
}

#[test]
fn start_stop_and_join_a_background_server() {
    let s = echo_server();
    let port = sockflow_server_port(s) as u16;
    assert_eq!(sockflow_server_join(s), SOCKFLOW_EBADHANDLE, "join before start");
    assert_eq!(sockflow_server_start(s), 0);
    assert_eq!(sockflow_server_start(s), SOCKFLOW_EBUSY);
    assert_eq!(sockflow_server_turn(s, 0), SOCKFLOW_EBUSY);
    kit::echo_roundtrip(port, "hello");
    assert_eq!(sockflow_server_stop(s), 0);
    assert_eq!(sockflow_server_join(s), 0);
    assert_eq!(sockflow_server_join(s), 0, "joining twice gives the result again");
    assert_eq!(sockflow_server_start(s), SOCKFLOW_EBADHANDLE, "a server runs once");
    sockflow_server_close(s);
}

#[test]
fn free_stops_a_server_between_turns_and_one_started() {
    let s = echo_server();
    let port = sockflow_server_port(s) as u16;
    assert_eq!(sockflow_server_turn(s, 0), 0);
    let mut c = kit::connect(port);
    assert_eq!(sockflow_server_turn(s, 1000), 0);
    sockflow_server_close(s);
    c.set_read_timeout(Some(WAIT)).unwrap();
    assert_eq!(c.read(&mut [0u8; 8]).unwrap(), 0, "free closed the connection");

    let s = echo_server();
    assert_eq!(sockflow_server_start(s), 0);
    sockflow_server_close(s);
}

#[test]
fn console_server_broadcasts_stdin_prints_clients_and_stops_at_eof() {
    let bin = kit::example("console_server", Link::Dynamic);
    let (mut srv, port) = kit::start_with(&bin, &["127.0.0.1", "0"], Input::Piped);
    let mut a = kit::connect(port);
    let mut b = kit::connect(port);
    let (pa, pb) = (a.local_addr().unwrap().port(), b.local_addr().unwrap().port());
    a.write_all(b"hi from a\n").unwrap();
    kit::wait_eq(&srv, Stream::Stdout, &format!("127.0.0.1 {pa}: hi from a"));
    b.write_all(b"and b\n").unwrap();
    kit::wait_eq(&srv, Stream::Stdout, &format!("127.0.0.1 {pb}: and b"));
    srv.write_stdin(b"hello all\nsecond line\n").unwrap();
    for c in [&a, &b] {
        let mut r = BufReader::new(c.try_clone().unwrap());
        assert_eq!(kit::read_line(&mut r), "hello all");
        assert_eq!(kit::read_line(&mut r), "second line");
    }
    srv.close_stdin();
    kit::exits_with(&mut srv, 0);
    for c in [&mut a, &mut b] {
        assert!(kit::read_to_eof(c).is_empty(), "closed cleanly after EOF on stdin");
    }
}
