//! `include/sockflow.hpp`, the C++ API, and the C++ examples built on it:
//!
//! * every C++ source (`c_examples/*.cpp`, `tests/cpp/*.cpp`) compiles with
//!   g++ and clang++ (when installed), as C++17 and C++20, with
//!   `-Wall -Wextra -Werror -pedantic`;
//! * `tests/cpp/wrappers.cpp` (errors, RAII handles, server controls,
//!   timers, a client loop) passes with each compiler, linked both ways;
//! * an exception thrown in a callback never reaches Rust (which would
//!   abort the process): it is logged, the thrower's connection gets
//!   `on_close` with ERROR, and the server serves the others on
//!   (`tests/cpp/throwing_handler.cpp`);
//! * the C++ examples against C clients, nc and the tutorials' Python
//!   client: `echo_server_cpp` sends back exactly the bytes it got,
//!   `chat_room_cpp` behaves as `chat_room` with three clients, the UDP
//!   pair talks (also built with clang++).
//!
//! The sanitizer runs of these programs are in `sanitizers.rs`.

mod common;
#[path = "flows/kit.rs"]
mod kit;

use common::*;
use kit::*;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The C++ sources: the examples, then the test programs.
fn cpp_sources() -> Vec<PathBuf> {
    let mut all = Vec::new();
    for dir in ["c_examples", "tests/cpp"] {
        let mut v: Vec<PathBuf> = std::fs::read_dir(root().join(dir)).unwrap().map(|e| e.unwrap().path()).collect();
        v.retain(|p| p.extension().is_some_and(|e| e == "cpp"));
        v.sort();
        all.extend(v);
    }
    assert!(all.len() >= 6, "found only {all:?}: is the scan broken?");
    all
}

/// `tests/cpp/<name>.cpp` built with `compiler` (C++17), dynamically linked.
fn test_program(name: &str, compiler: Compiler, link: Link) -> PathBuf {
    let src = root().join(format!("tests/cpp/{name}.cpp"));
    CProgram::new_cpp(&src.to_string_lossy()).compiler(compiler).link(link).build()
}

/// Starts `bin opts... 127.0.0.1 0`, checks its readiness line, returns it with its port.
fn start_server(bin: &Path, opts: &[&str]) -> (Proc, u16) {
    let mut args = opts.to_vec();
    args.extend(["127.0.0.1", "0"]);
    let (p, port) = start(bin, &args);
    let name = bin.file_name().unwrap().to_string_lossy().into_owned();
    let want = format!("{name}: listening on 127.0.0.1 port {port}");
    assert!(p.stderr_text().lines().any(|l| l.starts_with(&want)), "expected {want:?}\n{}", p.transcript());
    (p, port)
}

#[test]
fn every_cpp_source_builds_with_each_compiler_as_cpp17_and_cpp20() {
    for compiler in Compiler::all(Lang::Cpp) {
        for src in cpp_sources() {
            let src = src.to_string_lossy();
            CProgram::new_cpp(&src).compiler(compiler).build();
            CProgram::new_cpp(&src).compiler(compiler).flag("-std=c++20").build();
        }
    }
}

#[test]
fn wrappers_pass_with_each_compiler_and_link() {
    let mut builds = vec![(Compiler::Gcc, Link::Static), (Compiler::Gcc, Link::Dynamic)];
    if Compiler::Clang.available(Lang::Cpp) {
        builds.push((Compiler::Clang, Link::Dynamic));
    }
    for (compiler, link) in builds {
        let mut p = spawn(test_program("wrappers", compiler, link), &[], Input::Null);
        let st = p.wait_exit(secs(60));
        assert_exit(&p, st, 0);
        assert_eq!(p.stdout_text(), "OK\n", "{compiler} {link}\n{}", p.transcript());
    }
}

/// Sends `line` and a newline on `s`, and returns what comes back until
/// the next newline, or None at end of stream.
fn ask(s: &mut std::net::TcpStream, line: &str) -> Option<String> {
    s.write_all(format!("{line}\n").as_bytes()).unwrap();
    let mut got = Vec::new();
    let mut b = [0u8; 1];
    loop {
        match s.read(&mut b) {
            Ok(0) => return None,
            Ok(_) if b[0] == b'\n' => return Some(String::from_utf8(got).unwrap()),
            Ok(_) => got.push(b[0]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return None,
            Err(e) => panic!("reading the reply to {line:?}: {e}"),
        }
    }
}

/// The `connect N` line of the next connection, and N.
fn next_connect(srv: &Proc) -> String {
    let l = srv.wait_for_line(Stream::Stdout, "connect ", default_timeout());
    l["connect ".len()..].to_string()
}

#[test]
fn exceptions_in_callbacks_close_only_their_connection() {
    for compiler in Compiler::all(Lang::Cpp) {
        let (mut srv, port) = start_server(&test_program("throwing_handler", compiler, Link::Dynamic), &[]);
        let mut a = connect(port);
        let n_a = next_connect(&srv);
        assert_eq!(ask(&mut a, "hello").as_deref(), Some("hello"));

        // A std::exception from on_message: logged, the thrower closed with ERROR.
        let mut b = connect(port);
        let n_b = next_connect(&srv);
        assert_eq!(ask(&mut b, "throw"), None, "the thrower's connection ends");
        wait_eq(&srv, Stream::Stdout, &format!("close {n_b} ERROR"));
        srv.wait_for_line(Stream::Stderr, "throwing_handler_cpp: on_message threw: boom (closing connection", default_timeout());
        assert_eq!(ask(&mut a, "still there").as_deref(), Some("still there"), "the others are served on");

        // Something that is not a std::exception.
        let mut c = connect(port);
        let n_c = next_connect(&srv);
        assert_eq!(ask(&mut c, "throw-int"), None);
        wait_eq(&srv, Stream::Stdout, &format!("close {n_c} ERROR"));
        srv.wait_for_line(Stream::Stderr, "on_message threw: an exception not derived from std::exception", default_timeout());

        // From on_connect: that connection is closed before any message.
        assert_eq!(ask(&mut a, "arm-connect").as_deref(), Some("arm-connect"));
        let mut d = connect(port);
        let n_d = next_connect(&srv);
        assert!(read_to_eof_or_reset(&mut d).is_empty());
        wait_eq(&srv, Stream::Stdout, &format!("close {n_d} ERROR"));
        srv.wait_for_line(Stream::Stderr, "on_connect threw: connect refused by the test", default_timeout());

        // From on_close (only logged) and from a timer (cancelled; later timers still fire).
        let mut e = connect(port);
        let n_e = next_connect(&srv);
        assert_eq!(ask(&mut e, "close-throws").as_deref(), Some("close-throws"));
        drop(e);
        wait_eq(&srv, Stream::Stdout, &format!("close {n_e} PEER"));
        srv.wait_for_line(Stream::Stderr, "on_close threw: on_close fails too", default_timeout());
        assert_eq!(ask(&mut a, "timer-throw").as_deref(), Some("timer-throw"));
        srv.wait_for_line(Stream::Stderr, "threw: tick (timer cancelled)", default_timeout());
        wait_eq(&srv, Stream::Stdout, "timer after");

        assert_eq!(ask(&mut a, "last").as_deref(), Some("last"));
        stop(&mut srv, libc::SIGTERM);
        wait_eq(&srv, Stream::Stdout, &format!("close {n_a} STOPPING"));
    }
}

/// Everything until end of stream; a reset counts as the end.
fn read_to_eof_or_reset(s: &mut std::net::TcpStream) -> Vec<u8> {
    let mut v = Vec::new();
    match s.read_to_end(&mut v) {
        Ok(_) => v,
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => v,
        Err(e) => panic!("reading to the end: {e}"),
    }
}

/// Every byte value, in a pattern that repeats only after `len` bytes.
fn binary(len: usize) -> Vec<u8> {
    (0..len as u32).map(|i| (i * 7 + i / 251) as u8).collect()
}

#[test]
fn echo_server_cpp_sends_back_exactly_what_it_got() {
    for compiler in Compiler::all(Lang::Cpp) {
        let (mut srv, port) = start_server(&build_cpp_with(compiler, "echo_server", Link::Dynamic), &[]);
        // Binary, 1 MB, written while reading (raw frames: any split is fine).
        let data = binary(1_000_000);
        assert!(round_trip(port, &data) == data, "{compiler}: the bytes came back changed");

        // nc: CRLF, empty lines, a last line without its newline, byte for byte.
        if let Some(nc) = tool("nc") {
            let input = "one\n\ntwo\r\nthree";
            let mut c = spawn(&nc, &["-N", "127.0.0.1", &port.to_string()], input);
            exits_with(&mut c, 0);
            assert_eq!(c.stdout_text(), input, "{compiler}\n{}", c.transcript());
        }

        // The tutorial's Python client.
        if let Some(python) = tool("python3") {
            let mut cmd = Command::new(python);
            cmd.arg("-u").arg(peers_script()).args(["s004_tcp_client", &port.to_string()]);
            let mut c = spawn_cmd(cmd, Input::Null);
            exits_with(&mut c, 0);
            assert_eq!(c.stdout_text(), "Received from server: Hello, Server\n", "{compiler}\n{}", c.transcript());
        }
        stop(&mut srv, libc::SIGINT);

        // Line frames, with the C client: each line back, then quit.
        let (mut srv, port) = start_server(&build_cpp_with(compiler, "echo_server", Link::Dynamic), &["--frame", "line"]);
        let mut c = client("tcp_client", Link::Dynamic, &[], port, "hello\n\nhello world\nquit\n");
        exits_with(&mut c, 0);
        assert_eq!(c.stdout_text(), "hello\n\nhello world\n", "{compiler}\n{}", c.transcript());
        stop(&mut srv, libc::SIGTERM);
    }
}

#[test]
fn chat_room_cpp_with_three_c_clients() {
    for compiler in Compiler::all(Lang::Cpp) {
        let (mut srv, port) = start_server(&build_cpp_with(compiler, "chat_room", Link::Dynamic), &[]);
        let join = |nick: &str| {
            let mut c = client("tcp_client", Link::Dynamic, &[], port, Input::Piped);
            c.write_stdin(format!("{nick}\n/who\n").as_bytes()).unwrap();
            c
        };
        let mut ann = join("ann");
        wait_eq(&ann, Stream::Stdout, "ann");
        let mut bob = join("bob");
        wait_eq(&ann, Stream::Stdout, "* bob joined");
        wait_eq(&bob, Stream::Stdout, "ann,bob");
        let mut cid = join("cid");
        wait_eq(&ann, Stream::Stdout, "* cid joined");
        wait_eq(&bob, Stream::Stdout, "* cid joined");
        wait_eq(&cid, Stream::Stdout, "ann,bob,cid");

        bob.write_stdin(b"hello all\n").unwrap();
        wait_eq(&ann, Stream::Stdout, "bob: hello all");
        wait_eq(&cid, Stream::Stdout, "bob: hello all");
        bob.write_stdin(b"/quit\n").unwrap();
        wait_eq(&ann, Stream::Stdout, "* bob left");
        wait_eq(&cid, Stream::Stdout, "* bob left");
        bob.close_stdin();
        exits_with(&mut bob, 0);
        assert_eq!(bob.stdout_text(), "ann,bob\n* cid joined\n", "bob sees nothing of his own\n{}", bob.transcript());

        cid.write_stdin(b"/who\n").unwrap();
        wait_eq(&cid, Stream::Stdout, "ann,cid");
        // An empty nickname is refused and that client closed.
        let mut nobody = client("tcp_client", Link::Dynamic, &[], port, "\n");
        exits_with(&mut nobody, 0);
        assert_eq!(nobody.stdout_text(), "* that nickname is empty or too long\n");

        ann.close_stdin(); // EOF: ann leaves without /quit
        exits_with(&mut ann, 0);
        wait_eq(&cid, Stream::Stdout, "* ann left");
        cid.close_stdin();
        exits_with(&mut cid, 0);
        stop(&mut srv, libc::SIGTERM);
    }
}

#[test]
fn udp_cpp_pair_with_each_compiler() {
    for compiler in Compiler::all(Lang::Cpp) {
        let server = build_cpp_with(compiler, "udp_server", Link::Dynamic);
        let (mut srv, port) = start(&server, &["127.0.0.1", "0"]);
        let mut c = spawn(build_cpp_with(compiler, "udp_client", Link::Dynamic), &["127.0.0.1", &port.to_string()], Input::Null);
        exits_with(&mut c, 0);
        assert_eq!(c.stdout_text(), "Received from server: Hello, client!\n", "{compiler}\n{}", c.transcript());
        srv.wait_for_line(Stream::Stdout, "Received hello server! from 127.0.0.1:", default_timeout());
        srv.wait_for_line(Stream::Stdout, "Received exit from 127.0.0.1:", default_timeout());
        stop(&mut srv, libc::SIGTERM);

        // No server: the client says why on stderr (not half a line on stdout) and fails.
        let gone = std::net::UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut c = spawn(
            build_cpp_with(compiler, "udp_client", Link::Dynamic),
            &["--timeout", "300", "127.0.0.1", &gone.to_string()],
            Input::Null,
        );
        exits_with(&mut c, 1);
        assert_eq!(c.stdout_text(), "", "{compiler}\n{}", c.transcript());
        assert!(c.stderr_text().starts_with("udp_client_cpp: "), "{compiler}\n{}", c.transcript());
    }
}

/// A C++ example's command-line errors: the usage line once (exit 2),
/// `--help` (exit 0), a port in use as `PROG: what failed: why` (exit 1).
#[test]
fn cpp_examples_report_command_line_and_bind_errors() {
    let bin = build_cpp("echo_server", Link::Dynamic);
    let mut p = spawn(&bin, &["80a"], Input::Null);
    exits_with(&mut p, 2);
    assert!(p.stderr_text().starts_with("usage: echo_server_cpp "), "\n{}", p.transcript());
    assert_eq!(p.stderr_text().matches("usage:").count(), 1, "printed once\n{}", p.transcript());
    let mut p = spawn(&bin, &["--help"], Input::Null);
    exits_with(&mut p, 0);
    assert!(p.stdout_text().starts_with("usage: echo_server_cpp "), "\n{}", p.transcript());
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let mut p = spawn(&bin, &["127.0.0.1", &port], Input::Null);
    exits_with(&mut p, 1);
    assert_eq!(p.stderr_text(), format!("echo_server_cpp: bind 127.0.0.1:{port}: Address already in use\n"), "\n{}", p.transcript());
}
