//! Echo means the same bytes back (issue 6, section 5).
//!
//! * In `line` mode a reply ends like the message it answers: `\n`,
//!   `\r\n`, or nothing for a last line without one — for every built-in
//!   handler, on the event loop and in thread-per-connection mode.
//! * UDP: a datagram with or without a trailing newline gets its reply the
//!   same way.
//! * `echo_server` and `udp_echo_server` echo byte for byte by default, so
//!   the Python documentation's asyncio echo client (no newline, then wait)
//!   gets its reply.

mod common;
#[path = "flows/kit.rs"]
mod kit;

use common::*;
use kit::*;
use sockflow::frame::Frame;
use sockflow::server::builtin::{Echo, Hello, Upper};
use sockflow::server::tcp::TcpServer;
use sockflow::server::{Config, Handler, Mode};
use std::io::Write;
use std::net::{Shutdown, UdpSocket};
use std::process::Command;
use std::sync::Arc;

/// Sends `input`, half-closes, and returns everything until the server's
/// end of stream.
fn exchange(port: u16, input: &[u8]) -> Vec<u8> {
    let mut s = connect(port);
    s.write_all(input).unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    read_to_eof(&mut s)
}

/// One datagram to `port` and its reply.
fn datagram(port: u16, msg: &[u8]) -> Vec<u8> {
    let u = UdpSocket::bind("127.0.0.1:0").unwrap();
    u.set_read_timeout(Some(default_timeout())).unwrap();
    u.send_to(msg, ("127.0.0.1", port)).unwrap();
    let mut buf = [0u8; 2048];
    let (n, _) = u.recv_from(&mut buf).unwrap_or_else(|e| panic!("no reply to {}: {e}", show(msg)));
    buf[..n].to_vec()
}

const MIXED: &[u8] = b"hello\r\nworld\n\r\nlast";

/// Every built-in handler that answers, in both modes, in process.
#[test]
fn line_replies_end_like_the_message_they_answer() {
    let cases: [(&str, Arc<dyn Handler>, &[u8]); 3] = [
        ("echo", Arc::new(Echo), b"hello\r\nworld\n\r\nlast"),
        ("hello", Arc::new(Hello), b"welcome\nHello hello\r\nHello world\nHello \r\nHello last"),
        ("upper", Arc::new(Upper), b"HELLO\r\nWORLD\n\r\nLAST"),
    ];
    for (name, handler, want) in cases {
        for mode in [Mode::EventLoop, Mode::ThreadPerConnection] {
            let cfg = Config { log: None, mode, frame: Frame::default(), ..Config::default() };
            let srv = TcpServer::bind(&["127.0.0.1:0".parse().unwrap()], cfg, handler.clone()).unwrap();
            let port = srv.local_addr().port();
            let h = srv.handle();
            let t = std::thread::spawn(move || srv.run());
            let got = exchange(port, MIXED);
            h.stop();
            t.join().unwrap().unwrap();
            assert_bytes(&got, want, &format!("{name} in {mode:?}"));
        }
    }
}

/// The C examples: `hello_server` and `echo_server --frame line` keep CRLF
/// and an unterminated last line; `echo_server` (raw by default) gives back
/// anything as it came.
#[test]
fn c_servers_keep_the_line_endings() {
    let link = Link::Dynamic;
    let (mut srv, port) = server("echo_server", link, &["--frame", "line"]);
    assert_bytes(&exchange(port, MIXED), MIXED, "echo_server --frame line");
    stop(&mut srv, libc::SIGTERM);

    let (mut srv, port) = server("hello_server", link, &[]);
    assert_bytes(&exchange(port, b"hi\r\nthere"), b"welcome\nHello hi\r\nHello there", "hello_server");
    stop(&mut srv, libc::SIGTERM);

    let (mut srv, port) = server("echo_server", link, &[]);
    let any: Vec<u8> = (0..=255u8).chain(MIXED.iter().copied()).chain(b"\r\r\n\n\0".iter().copied()).collect();
    assert_bytes(&exchange(port, &any), &any, "echo_server (raw by default)");
    stop(&mut srv, libc::SIGTERM);
}

/// A datagram with a trailing newline (nc -u, Python's socketserver
/// client) gets it back; one without gets none; CRLF stays CRLF.
#[test]
fn udp_replies_end_like_the_datagram() {
    let link = Link::Dynamic;
    for (name, opts, upper) in
        [("udp_echo_server", &[][..], false), ("udp_echo_server", &["--frame", "line"][..], false), ("udp_upper_server", &[][..], true)]
    {
        let (mut srv, port) = server(name, link, opts);
        for msg in [&b"hello world\n"[..], b"hello world", b"hello world\r\n", b"\n", b"two\nlines\n"] {
            let want = if upper { msg.to_ascii_uppercase() } else { msg.to_vec() };
            assert_bytes(&datagram(port, msg), &want, &format!("{name} {opts:?} given {}", show(msg)));
        }
        stop(&mut srv, libc::SIGTERM);
    }
}

/// The asyncio echo client of the Python documentation: writes
/// `Hello World!` without a newline and waits for the reply.
#[test]
fn python_asyncio_echo_client_gets_its_reply() {
    let Some(py) = which("python3") else {
        eprintln!("python3 not found: skipped");
        return;
    };
    let (mut srv, port) = server("echo_server", Link::Dynamic, &[]);
    let script = r#"
import asyncio, sys
async def tcp_echo_client(message, port):
    reader, writer = await asyncio.open_connection('127.0.0.1', port)
    writer.write(message.encode())
    await writer.drain()
    data = await asyncio.wait_for(reader.read(100), timeout=30)
    print(f'Received: {data.decode()!r}')
    writer.close()
    await writer.wait_closed()
asyncio.run(tcp_echo_client('Hello World!', int(sys.argv[1])))
"#;
    let mut cmd = Command::new(py);
    cmd.args(["-c", script, &port.to_string()]);
    let out = run_ok(cmd, default_timeout());
    assert_eq!(out, "Received: 'Hello World!'\n");
    stop(&mut srv, libc::SIGTERM);
}

/// `SOCKFLOW_ARGS_RAW` makes `raw` the default frame; `--frame` still wins,
/// and `--help` tells which default the program has.
#[test]
fn args_raw_flag_sets_the_default_frame() {
    use sockflow::ffi::args::{sockflow_args, sockflow_args_parse, sockflow_frame, SOCKFLOW_ARGS_QUIET, SOCKFLOW_ARGS_RAW};
    use std::ffi::{c_char, CString};
    let parse = |argv: &[&str], flags: i32| {
        let owned: Vec<CString> = argv.iter().map(|s| CString::new(*s).unwrap()).collect();
        let mut ptrs: Vec<*mut c_char> = owned.iter().map(|s| s.as_ptr() as *mut c_char).collect();
        ptrs.push(std::ptr::null_mut());
        // SAFETY: zeroed is a valid sockflow_args (plain data).
        let mut a: sockflow_args = unsafe { std::mem::zeroed() };
        let rc = sockflow_args_parse(&mut a, argv.len() as i32, ptrs.as_ptr().cast(), flags);
        assert_eq!(rc, 0, "{argv:?}");
        a.frame
    };
    let server = 1 | SOCKFLOW_ARGS_QUIET;
    assert_eq!(parse(&["echo", "80"], server | SOCKFLOW_ARGS_RAW), sockflow_frame::Raw as i32);
    assert_eq!(parse(&["echo", "--frame", "line", "80"], server | SOCKFLOW_ARGS_RAW), sockflow_frame::Line as i32);
    assert_eq!(parse(&["tcp_server", "80"], server), sockflow_frame::Line as i32);

    let mut c = spawn(example("echo_server", Link::Dynamic), &["--help"], Input::Null);
    assert_eq!(c.wait_exit(default_timeout()).code(), Some(0), "\n{}", c.transcript());
    assert!(c.stdout_text().contains("--frame F        raw (default"), "\n{}", c.transcript());
    let mut c = spawn(example("tcp_server", Link::Dynamic), &["--help"], Input::Null);
    assert_eq!(c.wait_exit(default_timeout()).code(), Some(0), "\n{}", c.transcript());
    assert!(c.stdout_text().contains("--frame F        line (default"), "\n{}", c.transcript());
}
