//! End of stream and client exit status (issue 6, sections 4 and 6).
//!
//! * The blocking primitive `recv_msg` gives a last line without its
//!   newline as a message, then `Closed`; a len32/fixed frame cut short is
//!   reported with how many of its bytes arrived.
//! * The event-loop server says so in its log too.
//! * `tcp_client` and `chat_client` print everything they received before
//!   a close or a reset, while input is still being typed, every time; and
//!   their exit status follows the documented table: clean close (FIN) 0
//!   with a note, reset 1 after everything received, bad usage 2.
//!   `udp_client` too: 0 when the input ends, 1 when nothing listens.
//!
//! The peers here are plain Rust threads on 127.0.0.1 that behave in one
//! exact way each (greet and close, greet and reset, ...).

mod common;
#[path = "flows/kit.rs"]
mod kit;

use common::*;
use kit::*;
use sockflow::frame::Frame;
use sockflow::tcp::Stream as TcpConn;
use sockflow::Code;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::{self, JoinHandle};
use std::time::Duration;

/// Repetitions of each racy scenario.
const ROUNDS: usize = 20;
const GREETING: &str = "Hello, world!";

/// A peer on 127.0.0.1 that serves `n` connections, one after the other,
/// with `serve`.
fn peer(n: usize, serve: fn(TcpStream)) -> (u16, JoinHandle<()>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let t = thread::spawn(move || {
        for _ in 0..n {
            let (s, _) = l.accept().unwrap();
            s.set_read_timeout(Some(secs(30))).unwrap();
            serve(s);
        }
    });
    (port, t)
}

/// Reads and drops until the client's end of stream (or an error), so that
/// closing afterwards is a clean FIN, never a reset.
fn drain(mut s: TcpStream) {
    let mut buf = [0u8; 4096];
    while matches!(s.read(&mut buf), Ok(n) if n > 0) {}
}

/// Greets, then closes at once without reading: a FIN, or a reset when the
/// client's typing arrived first (the server).
fn greet_and_close(mut s: TcpStream) {
    s.write_all(GREETING.as_bytes()).unwrap();
    // Close at once or a little later, so that both a FIN (nothing typed
    // has arrived yet) and a reset (it has) occur over the rounds.
    static ROUND: AtomicU64 = AtomicU64::new(0);
    thread::sleep(Duration::from_millis(ROUND.fetch_add(1, Ordering::Relaxed) % 4 * 10));
}

/// Greets (no newline) and closes its side cleanly, then drains: always a FIN.
fn greet_and_fin(mut s: TcpStream) {
    s.write_all(GREETING.as_bytes()).unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    drain(s);
}

/// Greets (no newline), then resets (SO_LINGER 0) once the client has
/// typed something.
fn greet_and_reset(mut s: TcpStream) {
    s.write_all(GREETING.as_bytes()).unwrap();
    let _ = s.read(&mut [0u8; 1]);
    reset(s);
}

/// Echoes one line, then closes cleanly (FIN after the reply, then drains).
fn echo_once_and_fin(s: TcpStream) {
    let mut r = std::io::BufReader::new(s.try_clone().unwrap());
    let line = read_line(&mut r);
    let mut w = s;
    w.write_all(format!("{line}\n").as_bytes()).unwrap();
    w.shutdown(Shutdown::Write).unwrap();
    drain(w);
}

/// Runs the client `name` against `port` while typing into it: lines go
/// to its stdin (a pipe) for as long as it runs, so its input is still
/// open whenever the peer closes. Returns it with its exit status.
fn run_typing(name: &str, port: u16) -> (Proc, i32) {
    let mut c = client(name, Link::Dynamic, &[], port, Input::Piped);
    let deadline = std::time::Instant::now() + default_timeout();
    let mut i = 0;
    while c.try_status().is_none() && std::time::Instant::now() < deadline {
        let chunk: String = (i..i + 100).map(|k| format!("typed line {k}\n")).collect();
        i += 100;
        // Fails (EPIPE) once the client has gone; it ends the loop.
        if c.write_stdin(chunk.as_bytes()).is_err() {
            break;
        }
    }
    let code = status(&mut c);
    (c, code)
}

/// What the client printed first: the server's first line.
fn first_line(c: &Proc) -> String {
    c.stdout_text().lines().next().unwrap_or("").to_string()
}

fn status(c: &mut Proc) -> i32 {
    let st = c.wait_exit(default_timeout());
    st.code().unwrap_or_else(|| panic!("{} died: {}\n{}", c.name(), describe(st), c.transcript()))
}

// ---------------------------------------------------------------------------
// 4. End of stream in one place
// ---------------------------------------------------------------------------

/// `one\ntwo` then close: `one`, `two`, then `Closed` (the last line used to
/// be lost as "in the middle of a message").
#[test]
fn recv_msg_returns_the_last_unterminated_line() {
    let (port, t) = peer(1, |mut s| {
        s.write_all(b"one\r\ntwo").unwrap();
    });
    let c = TcpConn::connect(&[format!("127.0.0.1:{port}").parse().unwrap()], Some(secs(10))).unwrap();
    c.set_timeouts(Some(secs(30)), None).unwrap();
    assert_eq!(c.recv_msg(|m| m.to_vec()).unwrap(), b"one");
    assert_eq!(c.recv_msg(|m| m.to_vec()).unwrap(), b"two");
    let e = c.recv_msg(|m| m.to_vec()).unwrap_err();
    assert_eq!(e.code, Code::Closed, "{e}");
    assert!(!e.msg.contains("middle"), "nothing was cut: {e}");
    // End of stream stays the end.
    assert_eq!(c.recv_msg(|m| m.to_vec()).unwrap_err().code, Code::Closed);
    t.join().unwrap();
}

/// Through the C API, as the issue reported it.
#[test]
fn c_recv_msg_returns_the_last_unterminated_line() {
    use sockflow::ffi::tcp::{sockflow_tcp, sockflow_tcp_close, sockflow_tcp_connect, sockflow_tcp_recv_msg};
    let (port, t) = peer(1, |mut s| {
        s.write_all(b"one\ntwo").unwrap();
    });
    let mut h: *mut sockflow_tcp = std::ptr::null_mut();
    assert_eq!(sockflow_tcp_connect(c"127.0.0.1".as_ptr(), port as i32, 10_000, &mut h), 0);
    let mut buf = [0u8; 64];
    let mut got = Vec::new();
    for _ in 0..3 {
        let n = sockflow_tcp_recv_msg(h, buf.as_mut_ptr().cast(), buf.len());
        got.push(if n >= 0 { String::from_utf8_lossy(&buf[..n as usize]).into_owned() } else { format!("rc {n}") });
    }
    assert_eq!(got, ["one", "two", &format!("rc {}", sockflow::ffi::error::code_value(Code::Closed))]);
    sockflow_tcp_close(h);
    t.join().unwrap();
}

/// A len32 or fixed frame cut short by the end of stream is an error that
/// says how much of it arrived; messages before it come through.
#[test]
fn recv_msg_reports_a_frame_cut_short() {
    for (frame, wire, said) in [
        (Frame::Len32 { max: 1000 }, &b"\0\0\0\x02ok\0\0\0\x64abc"[..], "7 of 104 bytes arrived"),
        (Frame::Len32 { max: 1000 }, &b"\0\0\0\x02ok\0\0"[..], "2 of the 4 length bytes arrived"),
        (Frame::Fixed(32), &b"ok\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0hello"[..], "5 of 32 bytes arrived"),
    ] {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let wire = wire.to_vec();
        let t = thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            s.write_all(&wire).unwrap();
        });
        let c = TcpConn::connect(&[format!("127.0.0.1:{port}").parse().unwrap()], Some(secs(10))).unwrap();
        c.set_timeouts(Some(secs(30)), None).unwrap();
        c.set_frame(frame);
        assert_eq!(c.recv_msg(|m| m.to_vec()).unwrap(), b"ok");
        let e = c.recv_msg(|m| m.to_vec()).unwrap_err();
        assert_eq!(e.code, Code::Closed, "{frame}: {e}");
        assert!(e.msg.contains(said) && e.msg.contains(&frame.to_string()), "{frame}: {e:?} should say {said:?}");
        assert_eq!(c.recv_msg(|m| m.to_vec()).unwrap_err().code, Code::Closed);
        t.join().unwrap();
    }
}

/// The server logs a len32 message cut short by the client's end of stream
/// (it used to vanish without a word) and still answers what came before.
#[test]
fn server_logs_a_frame_cut_short() {
    let (mut srv, port) = server("echo_server", Link::Dynamic, &["--frame", "len32"]);
    let mut s = connect(port);
    s.write_all(b"\0\0\0\x02ok\0\0\0\x64abc").unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    assert_eq!(read_to_eof(&mut s), b"\0\0\0\x02ok");
    srv.wait_for_line(Stream::Stderr, "7 of 104 bytes arrived", default_timeout());
    stop(&mut srv, libc::SIGTERM);
}

/// The server: greets and closes without reading, so the close is
/// a reset whenever the client's typing got there first. The greeting is
/// printed every time, and the status agrees with what stderr says.
#[test]
fn clients_print_the_greeting_before_a_close_or_reset() {
    for (name, want) in [("tcp_client", GREETING.to_string()), ("chat_client", format!("Server: {GREETING}"))] {
        let (port, t) = peer(ROUNDS, greet_and_close);
        let mut seen = [0usize; 2];
        for round in 0..ROUNDS {
            let (c, code) = run_typing(name, port);
            assert_eq!(first_line(&c), want, "{name}, round {round}: the greeting is lost\n{}", c.transcript());
            let err = c.stderr_text();
            match code {
                0 => assert!(err.contains("closed the connection"), "{name}: exit 0 says why\n{}", c.transcript()),
                1 => assert!(err.contains("reset") || err.contains("Broken pipe"), "{name}: exit 1 says why\n{}", c.transcript()),
                _ => panic!("{name}: exit {code}\n{}", c.transcript()),
            }
            seen[code as usize] += 1;
        }
        eprintln!("{name}: {} clean closes, {} resets in {ROUNDS} rounds", seen[0], seen[1]);
        t.join().unwrap();
    }
}

// ---------------------------------------------------------------------------
// 6. Exit status scripts can rely on
// ---------------------------------------------------------------------------

/// Server closed cleanly (FIN) while input is still being typed: all it
/// sent is printed, a note on stderr, exit 0 — every time.
#[test]
fn clean_close_while_typing_exits_0() {
    for (name, prefix) in [("tcp_client", ""), ("chat_client", "Server: ")] {
        for (serve, first) in [(greet_and_fin as fn(TcpStream), GREETING), (echo_once_and_fin, "typed line 0")] {
            let (port, t) = peer(ROUNDS, serve);
            for round in 0..ROUNDS {
                let (c, code) = run_typing(name, port);
                assert_eq!(code, 0, "{name}, round {round}\n{}", c.transcript());
                assert_eq!(c.stdout_text(), format!("{prefix}{first}\n"), "{name}, round {round}\n{}", c.transcript());
                assert_eq!(c.stderr_text(), format!("{name}: 127.0.0.1:{port} closed the connection\n"), "{name}\n{}", c.transcript());
            }
            t.join().unwrap();
        }
    }
}

/// One line, then EOF, and a server that answers it and closes: whether
/// the client saw its input end before the server's FIN or not (a race it
/// cannot know), the status is 0, and stderr at most notes the close.
#[test]
fn one_line_and_a_closing_server_exits_0() {
    for name in ["tcp_client", "chat_client"] {
        let (port, t) = peer(ROUNDS, echo_once_and_fin);
        for round in 0..ROUNDS {
            let mut c = client(name, Link::Dynamic, &[], port, "only\n");
            assert_eq!(status(&mut c), 0, "{name}, round {round}\n{}", c.transcript());
            assert!(c.stdout_text().ends_with("only\n"), "{name}\n{}", c.transcript());
            let err = c.stderr_text();
            assert!(err.is_empty() || err == format!("{name}: 127.0.0.1:{port} closed the connection\n"), "{name}\n{}", c.transcript());
        }
        t.join().unwrap();
    }
}

/// Reset while typing: everything received printed, then the error, exit 1.
#[test]
fn reset_while_typing_exits_1_after_printing() {
    for (name, prefix) in [("tcp_client", ""), ("chat_client", "Server: ")] {
        let (port, t) = peer(ROUNDS, greet_and_reset);
        for round in 0..ROUNDS {
            let (c, code) = run_typing(name, port);
            assert_eq!(code, 1, "{name}, round {round}\n{}", c.transcript());
            assert_eq!(c.stdout_text(), format!("{prefix}{GREETING}\n"), "{name}, round {round}\n{}", c.transcript());
            let err = c.stderr_text();
            assert!(err.starts_with(&format!("{name}: ")) && err.contains("Connection reset by peer"), "{name}\n{}", c.transcript());
        }
        t.join().unwrap();
    }
}

/// Lines of a large reply, then an unterminated last one.
fn big_reply() -> String {
    let mut r: String = (0..20_000).map(|i| format!("reply line {i}\n")).collect();
    r.push_str("the end");
    r
}

/// Sends `big_reply()`, waits until the client's kernel has acknowledged
/// every byte (so it is all in the client's receive queue or read), then
/// resets. Linux keeps that data readable and reports the reset after it.
fn big_reply_then_reset(mut s: TcpStream) {
    use std::os::fd::AsRawFd;
    s.write_all(big_reply().as_bytes()).unwrap();
    let deadline = std::time::Instant::now() + secs(30);
    while sockflow::net::unacked(s.as_raw_fd()) > 0 && std::time::Instant::now() < deadline {
        thread::sleep(Duration::from_millis(5));
    }
    reset(s);
}

/// A reset after a large reply: every byte of it is printed, the
/// unterminated last line included, then the reset, exit 1.
#[test]
fn reset_after_a_large_reply_prints_every_byte() {
    for (name, prefix) in [("tcp_client", ""), ("chat_client", "Server: ")] {
        let (port, t) = peer(5, big_reply_then_reset);
        let want: String = big_reply().lines().map(|l| format!("{prefix}{l}\n")).collect();
        for round in 0..5 {
            let (c, code) = run_typing(name, port);
            assert_eq!(code, 1, "{name}, round {round}\n{}", c.transcript());
            let out = c.stdout_text();
            assert!(
                out == want,
                "{name}, round {round}: {} of {} bytes printed, ending {:?}",
                out.len(),
                want.len(),
                &out[out.len().saturating_sub(40)..]
            );
            assert!(c.stderr_text().contains("Connection reset by peer"), "{name}\n{}", c.stderr_text());
        }
        t.join().unwrap();
    }
}

/// A bad command line is 2 for every client.
#[test]
fn usage_errors_exit_2() {
    for name in ["tcp_client", "chat_client", "udp_client"] {
        let mut c = spawn(example(name, Link::Dynamic), &["127.0.0.1", "80a"], Input::Null);
        assert_eq!(status(&mut c), 2, "{name}\n{}", c.transcript());
    }
}

/// udp_client: 0 once the input ended with replies printed; 1 when nothing
/// listens (each refused datagram noted), with typed input, every time.
#[test]
fn udp_client_exit_status() {
    let (mut srv, port) = server("udp_echo_server", Link::Dynamic, &[]);
    let input: String = (0..50).map(|i| format!("datagram {i}\n")).collect();
    for round in 0..ROUNDS {
        let mut c = client("udp_client", Link::Dynamic, &["--timeout", "1000"], port, input.as_str());
        assert_eq!(status(&mut c), 0, "round {round}\n{}", c.transcript());
        assert_eq!(c.stdout_text(), input, "round {round}\n{}", c.transcript());
    }
    stop(&mut srv, libc::SIGTERM);

    let port = std::net::UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    for round in 0..ROUNDS {
        let mut c = client("udp_client", Link::Dynamic, &["--timeout", "500"], port, "hello\nworld\n");
        assert_eq!(status(&mut c), 1, "round {round}\n{}", c.transcript());
        let err = c.stderr_text();
        assert!(err.contains("no server is listening"), "round {round}\n{}", c.transcript());
        assert!(err.lines().last().unwrap_or("").starts_with("udp_client: "), "the error comes last\n{}", c.transcript());
    }
}
