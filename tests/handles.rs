//! Handles that cannot hit the wrong client (issue 6, section 7): stale
//! `sockflow_conn *`, freeing a running server, buffer lengths that run
//! past the end of memory, one reader plus one writer thread on a TCP
//! handle, messages too big for the caller's buffer, and non-blocking
//! descriptors. The C-visible cases run as C programs from `tests/c/`.

#[path = "common/cerror.rs"]
mod cerror;
use cerror::last_error;
mod common;

use common::*;
use sockflow::ffi::error::*;
use sockflow::ffi::server::*;
use sockflow::ffi::tcp::*;
use sockflow::ffi::udp::*;
use std::ffi::c_void;
use std::os::fd::BorrowedFd;
use std::ptr::{null, null_mut};

/// Builds `tests/c/<name>.c` and runs it; it prints `OK` and exits 0 when
/// every check inside holds.
fn run_c(name: &str) -> String {
    let src = root().join("tests/c").join(format!("{name}.c"));
    let bin = CProgram::new(&src.to_string_lossy()).flag("-pthread").build();
    let mut p = spawn(&bin, &[], Input::Null);
    let st = p.wait_exit(secs(120));
    assert!(st.success(), "{name}: {}\n{}", describe(st), p.transcript());
    let out = p.stdout_text();
    assert!(out.starts_with("OK"), "{name} printed no OK\n{}", p.transcript());
    p.transcript()
}

#[test]
fn kept_conn_handle_is_refused_and_never_reaches_another_client() {
    let t = run_c("conn_handles");
    assert!(t.contains("conn handle is stale"), "{t}");
}

#[test]
fn free_while_running_stops_and_waits_and_second_run_is_busy() {
    run_c("server_close");
}

#[test]
fn one_reader_and_one_writer_thread_share_a_tcp_handle() {
    run_c("reader_writer");
}

// ---- the Rust side of the same contract ---------------------------------------

/// The core stream is shared by reference between a reader thread and a
/// writer thread (it compiles only because both sides take `&self`).
#[test]
fn stream_reader_and_writer_threads() {
    use sockflow::tcp::{Listener, Stream};
    const N: usize = 20_000;
    let l = Listener::bind(&["127.0.0.1:0".parse().unwrap()], 8).unwrap();
    let port = l.local_addr().port();
    let echo = std::thread::spawn(move || {
        let s = l.accept(Some(secs(30))).unwrap().into_std();
        let mut r = &s;
        let mut w = &s;
        std::io::copy(&mut r, &mut w).unwrap();
    });
    let s = Stream::connect(&[format!("127.0.0.1:{port}").parse().unwrap()], Some(secs(10))).unwrap();
    s.set_timeouts(Some(secs(60)), Some(secs(60))).unwrap();
    std::thread::scope(|sc| {
        sc.spawn(|| {
            for i in 0..N {
                s.send_msg(format!("m{i}").as_bytes()).unwrap();
            }
        });
        for i in 0..N {
            let got = s.recv_msg(|m| m.to_vec()).unwrap();
            assert_eq!(got, format!("m{i}").as_bytes());
        }
    });
    s.close();
    echo.join().unwrap();
}

/// A connected pair of TCP handles (client, accepted), both with 30 s timeouts.
fn pair() -> (*mut sockflow_tcp, *mut sockflow_tcp) {
    let mut l = null_mut();
    assert_eq!(sockflow_tcp_listen(c"127.0.0.1".as_ptr(), 0, 4, &mut l), 0, "{}", last_error());
    let port = sockflow_tcp_listener_port(l);
    let mut c = null_mut();
    assert_eq!(sockflow_tcp_connect(c"127.0.0.1".as_ptr(), port, 10_000, &mut c), 0, "{}", last_error());
    let mut a = null_mut();
    assert_eq!(sockflow_tcp_accept(l, 10_000, &mut a, null_mut()), 0, "{}", last_error());
    sockflow_tcp_listener_close(l);
    for t in [c, a] {
        assert_eq!(sockflow_tcp_set_timeouts(t, 30_000, 30_000), 0);
    }
    (c, a)
}

fn send(t: *mut sockflow_tcp, bytes: &[u8]) {
    assert_eq!(sockflow_tcp_send(t, bytes.as_ptr().cast(), bytes.len()), 0, "{}", last_error());
}

fn set_nonblocking(t: *mut sockflow_tcp) {
    // SAFETY: the descriptor stays open while `t` lives.
    let fd = unsafe { BorrowedFd::borrow_raw(sockflow_tcp_fd(t)) };
    let fl = nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_GETFL).unwrap();
    let fl = nix::fcntl::OFlag::from_bits_truncate(fl) | nix::fcntl::OFlag::O_NONBLOCK;
    nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_SETFL(fl)).unwrap();
}

#[test]
fn last_error_with_size_max_is_nul_terminated() {
    assert_eq!(sockflow_tcp_send(null_mut(), null(), 0), SOCKFLOW_EINVAL);
    let mut buf = [0x55u8; 64];
    let n = sockflow_last_error(buf.as_mut_ptr().cast(), usize::MAX);
    assert_eq!(&buf[..n], b"tcp is NULL");
    assert_eq!(buf[n], 0, "no NUL after the message");
    assert_eq!(buf[n + 1], 0x55, "wrote past the message and its NUL");
}

#[test]
fn lengths_running_past_the_end_of_memory_are_einval() {
    let (c, a) = pair();
    let top = (usize::MAX - 15) as *mut c_void;
    let huge = isize::MAX as usize + 1;
    let mut b = [0u8; 8];
    let checks: Vec<(&str, isize)> = vec![
        ("tcp_send wrapping", sockflow_tcp_send(c, top, 100) as isize),
        ("tcp_send_msg wrapping", sockflow_tcp_send_msg(c, top, 100) as isize),
        ("tcp_send len > isize::MAX", sockflow_tcp_send(c, b.as_ptr().cast(), huge) as isize),
        ("tcp_recv wrapping", sockflow_tcp_recv(c, top, 100)),
        ("tcp_recv_msg wrapping", sockflow_tcp_recv_msg(c, top, 100)),
        ("tcp_recv_msg cap > isize::MAX", sockflow_tcp_recv_msg(c, b.as_mut_ptr().cast(), usize::MAX)),
    ];
    for (what, rc) in checks {
        assert_eq!(rc, SOCKFLOW_EINVAL as isize, "{what}: {}", last_error());
        assert!(last_error().contains("too large"), "{what}: {}", last_error());
    }
    let mut u = null_mut();
    assert_eq!(sockflow_udp_bind(c"127.0.0.1".as_ptr(), 0, &mut u), 0);
    assert_eq!(sockflow_udp_send_to(u, top, 100, c"127.0.0.1".as_ptr(), 9), SOCKFLOW_EINVAL);
    assert_eq!(sockflow_udp_send(u, top, 100), SOCKFLOW_EINVAL);
    assert_eq!(sockflow_udp_recv_from(u, top, 100, null_mut()), SOCKFLOW_EINVAL as isize);
    sockflow_udp_close(u);
    let mut args = unsafe { std::mem::zeroed() };
    sockflow::ffi::args::sockflow_args_init(&mut args, 1, c"127.0.0.1".as_ptr(), 0);
    let mut s = null_mut();
    assert_eq!(sockflow_tcp_server_new(&args, null(), sockflow::ffi::handler::sockflow_handler_echo(), null_mut(), &mut s), 0);
    assert_eq!(sockflow_server_send_to(s, 1, top, 100), SOCKFLOW_EINVAL);
    assert_eq!(sockflow_server_broadcast(s, top, 100), SOCKFLOW_EINVAL);
    sockflow_server_close(s);
    // The handles still work: nothing was sent or taken by the refused calls.
    send(a, b"still fine\n");
    assert_eq!(sockflow_tcp_recv_msg(c, b.as_mut_ptr().cast(), 0), 10);
    sockflow_tcp_close(c);
    sockflow_tcp_close(a);
}

#[test]
fn recv_msg_keeps_a_message_too_big_for_the_buffer() {
    let (c, a) = pair();
    send(a, b"hello world\nabcd\nnext\n");
    let mut small = [0x55u8; 5];
    assert_eq!(sockflow_tcp_recv_msg(c, small.as_mut_ptr().cast(), 5), SOCKFLOW_EMSGSIZE as isize);
    assert_eq!(&small, b"hell\0", "the first cap - 1 bytes and a NUL");
    assert!(last_error().contains("kept"), "{}", last_error());
    // A cap of 0 tells the kept message's length without taking it.
    assert_eq!(sockflow_tcp_recv_msg(c, null_mut(), 0), 11);
    let mut buf = [0x55u8; 12];
    assert_eq!(sockflow_tcp_recv_msg(c, buf.as_mut_ptr().cast(), 12), 11);
    assert_eq!(&buf, b"hello world\0");
    // Exactly the capacity: no room for the NUL, so kept too.
    let mut four = [0x55u8; 4];
    assert_eq!(sockflow_tcp_recv_msg(c, four.as_mut_ptr().cast(), 4), SOCKFLOW_EMSGSIZE as isize);
    assert_eq!(&four, b"abc\0");
    let mut five = [0x55u8; 5];
    assert_eq!(sockflow_tcp_recv_msg(c, five.as_mut_ptr().cast(), 5), 4);
    assert_eq!(&five, b"abcd\0");
    assert_eq!(sockflow_tcp_recv_msg(c, buf.as_mut_ptr().cast(), 12), 4);
    assert_eq!(&buf[..5], b"next\0");
    sockflow_tcp_close(c);
    sockflow_tcp_close(a);
}

#[test]
fn nonblocking_recv_is_eagain_and_keeps_a_partial_message() {
    let (c, a) = pair();
    set_nonblocking(c);
    let mut buf = [0u8; 64];
    assert_eq!(sockflow_tcp_recv_msg(c, buf.as_mut_ptr().cast(), 64), SOCKFLOW_EAGAIN as isize, "{}", last_error());
    assert_eq!(sockflow_last_error_code(), SOCKFLOW_EAGAIN);
    assert_eq!(sockflow_tcp_recv(c, buf.as_mut_ptr().cast(), 64), SOCKFLOW_EAGAIN as isize);
    send(a, b"par");
    // Bounded wait for the bytes to arrive, then the partial line stays buffered.
    wait_readable(c);
    assert_eq!(sockflow_tcp_recv_msg(c, buf.as_mut_ptr().cast(), 64), SOCKFLOW_EAGAIN as isize);
    send(a, b"tial\n");
    wait_readable(c);
    assert_eq!(sockflow_tcp_recv_msg(c, buf.as_mut_ptr().cast(), 64), 7);
    assert_eq!(&buf[..8], b"partial\0");
    // A configured timeout on a blocking descriptor is still a timeout.
    let (c2, a2) = pair();
    assert_eq!(sockflow_tcp_set_timeouts(c2, 50, 50), 0);
    assert_eq!(sockflow_tcp_recv_msg(c2, buf.as_mut_ptr().cast(), 64), SOCKFLOW_ETIMEDOUT as isize);
    for t in [c, a, c2, a2] {
        sockflow_tcp_close(t);
    }
}

fn wait_fd(t: *mut sockflow_tcp, ev: nix::poll::PollFlags) {
    // SAFETY: the descriptor stays open while `t` lives.
    let fd = unsafe { BorrowedFd::borrow_raw(sockflow_tcp_fd(t)) };
    let mut fds = [nix::poll::PollFd::new(fd, ev)];
    let n = nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(30_000u16)).unwrap();
    assert_eq!(n, 1, "descriptor not ready within 30 s");
}

fn wait_readable(t: *mut sockflow_tcp) {
    wait_fd(t, nix::poll::PollFlags::POLLIN);
}

/// A sender on a non-blocking descriptor fills the socket buffers while the
/// peer does not read; then the peer drains. Every message arrives exactly
/// once, whole and in order: partial sends are completed, never lost or
/// repeated, and a message refused with EAGAIN is simply sent again.
#[test]
fn nonblocking_send_delivers_every_message_exactly_once() {
    const N: usize = 3_000;
    let (c, a) = pair();
    set_nonblocking(c);
    let msg = |i: usize| {
        let mut m = format!("{i:06}:").into_bytes();
        m.resize(2_900 + i % 200, b'a' + (i % 26) as u8);
        m
    };
    let (full_tx, full_rx) = std::sync::mpsc::channel::<()>();
    let reader = {
        let a = a as usize;
        std::thread::spawn(move || {
            let a = a as *mut sockflow_tcp;
            // Read nothing until the sender saw the buffers full.
            full_rx.recv_timeout(secs(60)).expect("the sender never saw EAGAIN");
            let mut buf = vec![0u8; 4_096];
            for i in 0..N {
                let n = sockflow_tcp_recv_msg(a, buf.as_mut_ptr().cast(), buf.len());
                assert!(n >= 0, "message {i}: {n} {}", last_error());
                assert_eq!(&buf[..n as usize], &msg(i)[..], "message {i}");
            }
            // Then the end of stream: nothing was sent twice, and the
            // half-close came after the last byte.
            let n = sockflow_tcp_recv_msg(a, buf.as_mut_ptr().cast(), buf.len());
            assert_eq!(n, SOCKFLOW_ECLOSED as isize, "after the last message: {}", last_error());
        })
    };
    let (mut i, mut eagains, mut full) = (0, 0, Some(full_tx));
    while i < N {
        let m = msg(i);
        match sockflow_tcp_send_msg(c, m.as_ptr().cast(), m.len()) {
            0 => i += 1,
            rc if rc == SOCKFLOW_EAGAIN => {
                eagains += 1;
                if let Some(tx) = full.take() {
                    tx.send(()).unwrap();
                }
                wait_fd(c, nix::poll::PollFlags::POLLOUT);
            }
            rc => panic!("send_msg {i}: {rc} {}", last_error()),
        }
    }
    if let Some(tx) = full.take() {
        tx.send(()).unwrap();
    }
    // Kept bytes go out through flush or, when flush is not called,
    // through shutdown, which sends them before the end of stream.
    let flushed = sockflow_tcp_flush(c);
    assert!(flushed == 0 || flushed == SOCKFLOW_EAGAIN, "flush: {flushed} {}", last_error());
    let mut shutdowns = 0;
    loop {
        match sockflow_tcp_shutdown(c) {
            0 => break,
            rc if rc == SOCKFLOW_EAGAIN => {
                shutdowns += 1;
                wait_fd(c, nix::poll::PollFlags::POLLOUT);
            }
            rc => panic!("shutdown: {rc} {}", last_error()),
        }
    }
    reader.join().unwrap();
    eprintln!("{N} messages, {eagains} EAGAIN from send_msg, flush {flushed}, {shutdowns} EAGAIN from shutdown");
    assert!(eagains > 0, "the socket buffers never filled: the test did not test anything");
    sockflow_tcp_close(c);
    sockflow_tcp_close(a);
}

/// One send much larger than the socket buffers, on a non-blocking
/// descriptor with a peer that does not read yet: the send takes it (0),
/// the part the socket could not take is kept, and until it is out flush
/// and shutdown say EAGAIN (no end of stream in the middle of it) and a new
/// send is not taken. Then the peer reads exactly those bytes, once, and
/// the end of stream.
#[test]
fn kept_bytes_go_out_before_anything_else_and_before_shutdown() {
    const LEN: usize = 32 << 20;
    let data: Vec<u8> = (0..LEN).map(|i| (i % 251) as u8).collect();
    let (c, a) = pair();
    set_nonblocking(c);
    assert_eq!(sockflow_tcp_send(c, data.as_ptr().cast(), LEN), 0, "{}", last_error());
    assert_eq!(sockflow_tcp_flush(c), SOCKFLOW_EAGAIN, "{}", last_error());
    assert_eq!(sockflow_tcp_shutdown(c), SOCKFLOW_EAGAIN, "{}", last_error());
    assert_eq!(sockflow_tcp_send(c, b"x".as_ptr().cast(), 1), SOCKFLOW_EAGAIN, "{}", last_error());
    let reader = {
        let a = a as usize;
        std::thread::spawn(move || {
            let a = a as *mut sockflow_tcp;
            let mut got = Vec::with_capacity(LEN);
            let mut buf = vec![0u8; 1 << 16];
            loop {
                let n = sockflow_tcp_recv(a, buf.as_mut_ptr().cast(), buf.len());
                if n == SOCKFLOW_ECLOSED as isize {
                    break;
                }
                assert!(n > 0, "recv: {n} {}", last_error());
                got.extend_from_slice(&buf[..n as usize]);
                assert!(got.len() <= LEN, "more bytes than were sent");
            }
            got
        })
    };
    let mut waits = 0;
    while sockflow_tcp_shutdown(c) != 0 {
        assert_eq!(sockflow_last_error_code(), SOCKFLOW_EAGAIN, "{}", last_error());
        assert!(waits < 100_000, "shutdown never completed");
        waits += 1;
        wait_fd(c, nix::poll::PollFlags::POLLOUT);
    }
    let got = reader.join().unwrap();
    assert_eq!(got.len(), LEN);
    assert!(got == data, "bytes differ");
    sockflow_tcp_close(c);
    sockflow_tcp_close(a);
}
