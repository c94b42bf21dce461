//! The example programs built with AddressSanitizer and
//! UndefinedBehaviorSanitizer (gcc, `CProgram::sanitized`), linked to
//! `libsockflow.so`, running their main flows on loopback: server and
//! client pairs over TCP (echo, hello, print, chat, primitives, the proxy, and
//! the servers with timers, their own poll loop, a chat room) and UDP
//! (echo, upper, print, primitives, the C++ pair), the C++ echo server and
//! chat room; every C test program in `tests/c/`, and the C++ ones in
//! `tests/cpp/` (`sockflow.hpp`'s wrappers; callbacks that throw).
//!
//! A program fails the test when it exits with another status than the
//! flow's, or when its stderr holds a sanitizer report (ASan, LeakSanitizer
//! at exit, UBSan `runtime error:`). The first test plants each kind of bug
//! in a program linked the same way, to show that the reports are produced
//! and caught here (a sanitizer that silently does nothing would pass every
//! other test).
//!
//! The Rust side is not instrumented here (the library is built by cargo
//! as usual): CI runs the Rust server tests under `-Zsanitizer=address` on
//! nightly. valgrind runs are in `primitives.rs`.

mod common;
#[path = "flows/kit.rs"]
mod kit;

use common::*;
use kit::{lines, next_line, port_eq, wait_eq};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// Sanitized programs run slower; every wait gets this much.
fn wait() -> Duration {
    secs(30)
}

/// `c_examples/<name>.c` (or `.cpp` for a `_cpp` name) built with the sanitizers.
fn build(name: &str) -> PathBuf {
    match name.strip_suffix("_cpp") {
        Some(stem) => CProgram::new_cpp(stem).sanitized().build(),
        None => CProgram::new(name).sanitized().build(),
    }
}

/// Runs a sanitized `bin args...` with the sanitizers' runtime options.
fn run(bin: &Path, args: &[&str], input: impl Into<Input>) -> Proc {
    let mut c = Command::new(bin);
    c.args(args).envs(SANITIZE_ENV);
    spawn_cmd(c, input)
}

/// Starts the sanitized server `name opts... 127.0.0.1 0` and returns it
/// with its port.
fn server(name: &str, opts: &[&str], input: impl Into<Input>) -> (Proc, u16) {
    let mut args = opts.to_vec();
    args.extend(["127.0.0.1", "0"]);
    let p = run(&build(name), &args, input);
    let port = p.wait_listening();
    (p, port)
}

/// Runs the sanitized client `name opts... 127.0.0.1 port`.
fn client(name: &str, opts: &[&str], port: u16, input: impl Into<Input>) -> Proc {
    let port = port.to_string();
    let mut args = opts.to_vec();
    args.extend(["127.0.0.1", port.as_str()]);
    run(&build(name), &args, input)
}

/// What a sanitizer prints when it finds something.
const REPORTS: [&str; 4] = ["ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:", "UndefinedBehaviorSanitizer"];

/// The report in `p`'s stderr, if any.
fn report(p: &Proc) -> Option<&'static str> {
    let err = p.stderr_text();
    REPORTS.into_iter().find(|r| err.contains(r))
}

/// Waits for `p` to exit with `code` and no sanitizer report.
#[track_caller]
fn exits_clean(p: &mut Proc, code: i32) {
    let st = p.wait_exit(wait());
    assert!(report(p).is_none(), "{}: sanitizer report\n{}", p.name(), p.transcript());
    assert_exit(p, st, code);
}

/// Stops a server with SIGTERM (graceful: exit 0, leak check at exit).
#[track_caller]
fn stop_clean(p: &mut Proc) {
    p.signal(libc::SIGTERM);
    exits_clean(p, 0);
}

// ---------------------------------------------------------------------------
// The sanitizers are really on
// ---------------------------------------------------------------------------

const PLANTED: &str = r#"#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sockflow.h>

/* argv[1]: "ok", "heap" (overflow), "ub" (signed overflow), "leak". */
int main(int argc, char **argv)
{
    char *p = malloc(4);
    int big = INT_MAX - 1;
    if (argc < 2 || p == NULL)
        return 2;
    printf("%s\n", sockflow_strerror(SOCKFLOW_EINVAL)); /* the library is loaded and called */
    if (strcmp(argv[1], "heap") == 0)
        p[argc + 2] = 1;
    if (strcmp(argv[1], "ub") == 0)
        big += argc;
    if (strcmp(argv[1], "leak") == 0)
        p = NULL;
    free(p);
    return big == 0;
}
"#;

/// A program with a planted overflow, UB or leak, built and run exactly as
/// the examples are, is reported and fails; the clean run passes.
#[test]
fn planted_bugs_are_reported() {
    let src = tmp_dir("sanitizers").join("planted.c");
    std::fs::write(&src, PLANTED).unwrap();
    let bin = CProgram::new(src.to_str().unwrap()).sanitized().build();
    let mut ok = run(&bin, &["ok"], Input::Null);
    exits_clean(&mut ok, 0);
    assert!(!ok.stdout_text().is_empty(), "the library was not called\n{}", ok.transcript());
    for (arg, want) in
        [("heap", "ERROR: AddressSanitizer: heap-buffer-overflow"), ("ub", "runtime error:"), ("leak", "ERROR: LeakSanitizer")]
    {
        let mut p = run(&bin, &[arg], Input::Null);
        let st = p.wait_exit(wait());
        assert!(p.stderr_text().contains(want), "{arg}: expected {want:?}\n{}", p.transcript());
        assert!(report(&p).is_some());
        assert!(!st.success(), "{arg}: a sanitizer report must fail the program\n{}", p.transcript());
    }
}

// ---------------------------------------------------------------------------
// The C tests (`tests/c/*.c`: each prints OK and exits 0 when its checks hold)
// ---------------------------------------------------------------------------

#[test]
fn c_tests() {
    let dir = root().join("tests/c");
    let mut srcs: Vec<PathBuf> = std::fs::read_dir(&dir).map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).collect()).unwrap_or_default();
    srcs.retain(|p| p.extension().is_some_and(|e| e == "c"));
    srcs.sort();
    for src in srcs {
        let bin = CProgram::new(&src.to_string_lossy()).flag("-pthread").sanitized().build();
        let mut p = run(&bin, &[], Input::Null);
        let st = p.wait_exit(secs(120));
        assert!(report(&p).is_none(), "{}: sanitizer report\n{}", src.display(), p.transcript());
        assert_exit(&p, st, 0);
        assert!(p.stdout_text().starts_with("OK"), "{} printed no OK\n{}", src.display(), p.transcript());
    }
}

// ---------------------------------------------------------------------------
// The C++ test programs (`tests/cpp/`)
// ---------------------------------------------------------------------------

/// `tests/cpp/<name>.cpp` built with the sanitizers.
fn cpp_test(name: &str) -> PathBuf {
    CProgram::new_cpp(&root().join(format!("tests/cpp/{name}.cpp")).to_string_lossy()).sanitized().build()
}

#[test]
fn cpp_wrappers() {
    let mut p = run(&cpp_test("wrappers"), &[], Input::Null);
    exits_clean(&mut p, 0);
    assert_eq!(p.stdout_text(), "OK\n", "\n{}", p.transcript());
}

/// Exceptions caught at the C boundary leak nothing: the thrower's
/// connection closes (ERROR), a timer's is cancelled, and at exit the leak
/// check finds every handler, timer and connection freed.
#[test]
fn cpp_exceptions_in_callbacks() {
    use std::io::{Read, Write};
    let mut srv = run(&cpp_test("throwing_handler"), &["127.0.0.1", "0"], Input::Null);
    let port = srv.wait_listening();
    let mut ok = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    ok.set_read_timeout(Some(wait())).unwrap();
    for cmd in ["throw", "throw-int"] {
        let mut bad = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        bad.set_read_timeout(Some(wait())).unwrap();
        bad.write_all(format!("{cmd}\n").as_bytes()).unwrap();
        let mut rest = Vec::new();
        let _ = bad.read_to_end(&mut rest); // end of stream or a reset: closed either way
        srv.wait_for_line(Stream::Stdout, " ERROR", wait());
    }
    ok.write_all(b"timer-throw\n").unwrap();
    srv.wait_for_line(Stream::Stdout, "timer after", wait());
    ok.write_all(b"alive\n").unwrap();
    let mut buf = [0u8; 32];
    let mut got = Vec::new();
    while !got.ends_with(b"alive\n") {
        let n = ok.read(&mut buf).unwrap();
        assert!(n > 0, "the other connection was closed\n{}", srv.transcript());
        got.extend_from_slice(&buf[..n]);
    }
    assert_eq!(got, b"timer-throw\nalive\n");
    stop_clean(&mut srv);
    assert!(srv.stderr_text().contains("on_message threw: boom"), "\n{}", srv.transcript());
}

// ---------------------------------------------------------------------------
// TCP flows
// ---------------------------------------------------------------------------

#[test]
fn echo_server_and_tcp_client() {
    for frame in ["line", "len32"] {
        let (mut srv, port) = server("echo_server", &["--frame", frame], Input::Null);
        let big = "x".repeat(60_000);
        let input = format!("hello\n\nhello world\n{big}\nquit\n");
        let mut c = client("tcp_client", &["--frame", frame], port, input.as_str());
        exits_clean(&mut c, 0);
        assert_eq!(c.stdout_text(), format!("hello\n\nhello world\n{big}\n"), "{frame}\n{}", c.transcript());
        stop_clean(&mut srv);
    }
}

/// The proxy in front of the echo server: bytes relayed exactly, a refused
/// upstream closes its client, and every pair's memory is freed (the leak
/// check at exit: each connection got its `on_close`).
#[test]
fn proxy_in_front_of_echo_server() {
    use std::io::{Read, Write};
    let (mut echo, echo_port) = server("echo_server", &[], Input::Null);
    let up = echo_port.to_string();
    let mut proxy = run(&build("proxy"), &["127.0.0.1", "0", "127.0.0.1", &up], Input::Null);
    let port = proxy.wait_listening();
    let data: Vec<u8> = (0..2_000_000u32).map(|i| (i * 7 + i / 251) as u8).collect();
    let mut kept = Vec::new();
    for _ in 0..3 {
        let s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(wait())).unwrap();
        let mut r = s.try_clone().unwrap();
        let reader = std::thread::spawn(move || {
            let mut got = vec![0u8; 2_000_000];
            r.read_exact(&mut got).map(|_| got)
        });
        (&s).write_all(&data).unwrap();
        assert!(reader.join().unwrap().unwrap() == data, "the bytes came back changed");
        kept.push(s); // still open when the proxy stops: freed by on_close(STOPPING)
    }
    stop_clean(&mut proxy);
    stop_clean(&mut echo);
    // Nothing upstream: each client is closed, the reason logged.
    let gone = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port().to_string();
    let mut proxy = run(&build("proxy"), &["127.0.0.1", "0", "127.0.0.1", &gone], Input::Null);
    let port = proxy.wait_listening();
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(wait())).unwrap();
    let mut rest = Vec::new();
    s.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty());
    proxy.wait_for_line(Stream::Stderr, "Connection refused: closing the client", wait());
    stop_clean(&mut proxy);
}

/// The C++ examples (`sockflow.hpp`): the echo server with the C client,
/// and the chat room with three of them.
#[test]
fn cpp_echo_server_and_chat_room_with_tcp_clients() {
    let (mut srv, port) = server("echo_server_cpp", &["--frame", "line"], Input::Null);
    let big = "x".repeat(60_000);
    let input = format!("hello\n\n{big}\nquit\n");
    let mut c = client("tcp_client", &[], port, input.as_str());
    exits_clean(&mut c, 0);
    assert_eq!(c.stdout_text(), format!("hello\n\n{big}\n"), "\n{}", c.transcript());
    stop_clean(&mut srv);

    let (mut srv, port) = server("chat_room_cpp", &[], Input::Null);
    let mut ann = client("tcp_client", &[], port, Input::Piped);
    ann.write_stdin(b"ann\n/who\n").unwrap();
    ann.wait_for_line(Stream::Stdout, "ann", wait());
    let mut bob = client("tcp_client", &[], port, Input::Piped);
    bob.write_stdin(b"bob\n").unwrap();
    ann.wait_for_line(Stream::Stdout, "* bob joined", wait());
    let mut cid = client("tcp_client", &[], port, Input::Piped);
    cid.write_stdin(b"cid\nhello\n/who\n").unwrap();
    ann.wait_for_line(Stream::Stdout, "cid: hello", wait());
    bob.wait_for_line(Stream::Stdout, "cid: hello", wait());
    cid.wait_for_line(Stream::Stdout, "ann,bob,cid", wait());
    bob.write_stdin(b"/quit\n").unwrap();
    ann.wait_for_line(Stream::Stdout, "* bob left", wait());
    for mut p in [bob, cid, ann] {
        p.close_stdin();
        exits_clean(&mut p, 0);
    }
    stop_clean(&mut srv);
}

#[test]
fn hello_server_and_tcp_client() {
    let (mut srv, port) = server("hello_server", &[], Input::Null);
    let mut c = client("tcp_client", &[], port, "Genji\nHanzo\nexit\n");
    exits_clean(&mut c, 0);
    assert_eq!(c.stdout_text(), "welcome\nHello Genji\nHello Hanzo\n", "\n{}", c.transcript());
    stop_clean(&mut srv);
}

#[test]
fn tcp_server_and_tcp_client() {
    let (mut srv, port) = server("tcp_server", &[], Input::Null);
    let mut c = client("tcp_client", &[], port, "one\ntwo\nquit\n");
    exits_clean(&mut c, 0);
    let l = next_line(&srv, Stream::Stdout);
    let closed = format!("client closed ip = 127.0.0.1 port = {} (quit)", port_eq(&l));
    wait_eq(&srv, Stream::Stdout, &closed);
    assert_eq!(lines(&srv.stdout_text())[1..], ["one", "two", closed.as_str()], "\n{}", srv.transcript());
    stop_clean(&mut srv);
}

#[test]
fn chat_server_and_chat_client() {
    let (mut srv, port) = server("chat_server", &[], Input::Piped);
    let mut cl = client("chat_client", &[], port, Input::Piped);
    let l = next_line(&srv, Stream::Stdout);
    assert!(l.ends_with(" connected"), "{l:?}\n{}", srv.transcript());
    cl.write_stdin(b"hi server\n").unwrap();
    wait_eq(&srv, Stream::Stdout, "Client: hi server");
    srv.write_stdin(b"hi client\n").unwrap();
    wait_eq(&cl, Stream::Stdout, "Server: hi client");
    srv.write_stdin(b"quit\n").unwrap();
    wait_eq(&cl, Stream::Stdout, "Server: quit");
    exits_clean(&mut cl, 0);
    exits_clean(&mut srv, 0);
}

#[test]
fn time_console_and_chat_room_servers_with_tcp_clients() {
    // time_server: a timer's line reaches the client.
    let (mut srv, port) = server("time_server", &["--interval", "50"], Input::Null);
    let mut c = client("tcp_client", &[], port, Input::Piped);
    c.wait_for_line_matching(Stream::Stdout, |l| l.len() == 20 && l.ends_with('Z'), "a time line", wait());
    c.close_stdin();
    exits_clean(&mut c, 0);
    stop_clean(&mut srv);

    // console_server: a client line is printed, a stdin line is sent, EOF stops it.
    let (mut srv, port) = server("console_server", &[], Input::Piped);
    let mut c = client("tcp_client", &[], port, Input::Piped);
    c.write_stdin(b"hi console\n").unwrap();
    srv.wait_for_line_matching(Stream::Stdout, |l| l.ends_with(": hi console"), "the client's line", wait());
    srv.write_stdin(b"hi client\n").unwrap();
    c.wait_for_line(Stream::Stdout, "hi client", wait());
    srv.close_stdin();
    exits_clean(&mut srv, 0);
    c.close_stdin();
    exits_clean(&mut c, 0);

    // chat_room: nicknames, a message, /who, /quit.
    let (mut srv, port) = server("chat_room", &[], Input::Null);
    let mut ann = client("tcp_client", &[], port, Input::Piped);
    ann.write_stdin(b"ann\n/who\n").unwrap();
    ann.wait_for_line(Stream::Stdout, "ann", wait());
    let mut bob = client("tcp_client", &[], port, Input::Piped);
    bob.write_stdin(b"bob\nhello\n/who\n").unwrap();
    ann.wait_for_line(Stream::Stdout, "* bob joined", wait());
    ann.wait_for_line(Stream::Stdout, "bob: hello", wait());
    bob.wait_for_line(Stream::Stdout, "ann,bob", wait());
    bob.write_stdin(b"/quit\n").unwrap();
    ann.wait_for_line(Stream::Stdout, "* bob left", wait());
    bob.close_stdin();
    exits_clean(&mut bob, 0);
    ann.close_stdin();
    exits_clean(&mut ann, 0);
    stop_clean(&mut srv);
}

#[test]
fn prim_tcp_server_and_client() {
    let (mut srv, port) = server("prim_tcp_server", &[], Input::Null);
    let mut c = client("prim_tcp_client", &[], port, "hello\n\nquit\n");
    exits_clean(&mut c, 0);
    assert_eq!(c.stdout_text(), "echo: hello\necho: \necho: quit\n", "\n{}", c.transcript());
    exits_clean(&mut srv, 0);
}

// ---------------------------------------------------------------------------
// UDP flows
// ---------------------------------------------------------------------------

#[test]
fn udp_servers_and_udp_client() {
    for (name, want) in [("udp_echo_server", "hello\nworld\n"), ("udp_upper_server", "HELLO\nWORLD\n")] {
        let (mut srv, port) = server(name, &["--frame", "line"], Input::Null);
        let mut c = client("udp_client", &["--frame", "line", "--timeout", "5000"], port, "hello\nworld\n");
        exits_clean(&mut c, 0);
        assert_eq!(c.stdout_text(), want, "{name}\n{}", c.transcript());
        stop_clean(&mut srv);
    }
    let (mut srv, port) = server("udp_server", &[], Input::Null);
    let mut c = client("udp_client", &[], port, "one\nquit\n");
    exits_clean(&mut c, 0);
    wait_eq(&srv, Stream::Stdout, "quit");
    stop_clean(&mut srv);
}

#[test]
fn prim_udp_server_and_client() {
    let (mut srv, port) = server("prim_udp_server", &[], Input::Null);
    let mut c = client("prim_udp_client", &[], port, "hello\nquit\n");
    exits_clean(&mut c, 0);
    assert_eq!(c.stdout_text(), "echo: hello\necho: quit\n", "\n{}", c.transcript());
    exits_clean(&mut srv, 0);
}

#[test]
fn udp_cpp_pair() {
    let (mut srv, port) = server("udp_server_cpp", &[], Input::Null);
    let mut c = client("udp_client_cpp", &[], port, Input::Null);
    exits_clean(&mut c, 0);
    assert_eq!(c.stdout_text(), "Received from server: Hello, client!\n", "\n{}", c.transcript());
    wait_eq(&srv, Stream::Stdout, &format!("Received exit from 127.0.0.1:{}", c_port(&srv)));
    stop_clean(&mut srv);
}

/// The C++ client prints a long reply whole: its buffer holds any datagram
/// and the NUL `sockflow_udp_recv_from` adds (it held 4096 bytes, so a
/// 4096-byte reply had no NUL and was read past its end).
#[test]
fn udp_client_cpp_prints_a_long_reply_whole() {
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(wait())).unwrap();
    let port = sock.local_addr().unwrap().port();
    let mut c = client("udp_client_cpp", &[], port, Input::Null);
    let mut buf = [0u8; 64];
    let (n, from) = sock.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"hello server!");
    let long = "x".repeat(4096);
    sock.send_to(long.as_bytes(), from).unwrap();
    exits_clean(&mut c, 0);
    assert_eq!(c.stdout_text(), format!("Received from server: {long}\n"), "\n{}", c.transcript());
    let (n, _) = sock.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"exit");
}

#[test]
fn heartbeat_monitor_up_and_down() {
    let (mut srv, port) = server("heartbeat_monitor", &["--timeout", "300"], Input::Null);
    let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let who = format!("127.0.0.1 {}", s.local_addr().unwrap().port());
    for _ in 0..2 {
        s.send_to(b"beat", ("127.0.0.1", port)).unwrap();
        wait_eq(&srv, Stream::Stdout, &format!("UP {who}"));
        wait_eq(&srv, Stream::Stdout, &format!("DOWN {who}"));
    }
    stop_clean(&mut srv);
}

/// The client port in the C++ server's first `Received ... from 127.0.0.1:N`.
fn c_port(srv: &Proc) -> String {
    let l = next_line(srv, Stream::Stdout);
    l.rsplit(':').next().unwrap_or_default().to_string()
}
