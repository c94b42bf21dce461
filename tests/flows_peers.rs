//! The example programs against independent peers, on loopback:
//!
//! * the tutorials' Python clients and servers (`tests/peers/tutorial_peers.py`,
//!   copies of /work/shared/peers/s00*_*.py that take their port);
//! * the tutorial's own C programs (`s002_*.c`, verbatim copies in
//!   `tests/peers/tutorial_c/`, compiled as published) talking to
//!   sockflow's examples with `--frame fixed:32`;
//! * `nc` and `socat` as clients with line frames.
//!
//! A peer that is not installed (python3, nc, socat, stdbuf, gcc) makes its
//! test print a note and pass.

mod common;
#[path = "flows/kit.rs"]
mod kit;

use common::*;
use kit::*;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

const LINK: Link = Link::Dynamic;

// ---------------------------------------------------------------------------
// The tutorials' Python programs
// ---------------------------------------------------------------------------

/// `python3 -u tutorial_peers.py args...`, or None (with a note) without python3.
fn py(args: &[&str], input: impl Into<Input>) -> Option<Proc> {
    let python = tool("python3")?;
    let mut cmd = Command::new(python);
    cmd.arg("-u").arg(peers_script()).args(args);
    Some(spawn_cmd(cmd, input))
}

/// A Python tutorial server on 127.0.0.1, port 0, and its port.
fn py_server(name: &str, input: impl Into<Input>) -> Option<(Proc, u16)> {
    let p = py(&[name], input)?;
    let port = p.wait_listening();
    Some((p, port))
}

/// A Python tutorial client of 127.0.0.1:`port`.
fn py_client(name: &str, port: u16, input: impl Into<Input>) -> Option<Proc> {
    py(&[name, &port.to_string()], input)
}

/// The server is still serving: a raw-frame echo round trip.
fn raw_echo_alive(port: u16) {
    let mut s = connect(port);
    s.write_all(b"still alive").unwrap();
    let mut buf = [0u8; 64];
    let n = s.read(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"still alive");
}

#[test]
fn python_tcp_clients_against_echo_and_hello_servers() {
    // s003's client against the greeting server (raw frames: no newlines).
    let (mut hello, port) = server("hello_server", LINK, &["--frame", "raw"]);
    let Some(mut c) = py_client("s003_tcp_client", port, Input::Null) else { return };
    exits_with(&mut c, 0);
    assert_eq!(c.stdout_text(), "Hello Genji\nHello Hanzo\nHello Mcree\n", "\n{}", c.transcript());
    stop(&mut hello, libc::SIGTERM);

    let (mut echo, port) = server("echo_server", LINK, &["--frame", "raw"]);
    for (name, want) in [
        ("s000_tcp_client", "received from server: hello, server\n"),
        ("s001_tcp_client", "来自服务器的数据: 你好,服务器!\n"),
        ("s004_tcp_client", "Received from server: Hello, Server\n"),
    ] {
        let mut c = py_client(name, port, Input::Null).unwrap();
        exits_with(&mut c, 0);
        assert_eq!(c.stdout_text(), want, "\n{}", c.transcript());
        assert_eq!(c.stderr_text(), "", "\n{}", c.transcript());
    }
    // s000's client closes with its `exit` echo unread (a reset, which
    // killed the tutorial's echo server): this one still serves.
    raw_echo_alive(port);
    stop(&mut echo, libc::SIGTERM);
}

#[test]
fn python_chat_client_against_chat_server() {
    let (mut srv, port) = start_with(&example("chat_server", LINK), &["--frame", "raw", "127.0.0.1", "0"], Input::Piped);
    let Some(mut c) = py_client("s004_chat_client", port, Input::Piped) else { return };
    c.write_stdin("你好,服务器!\n".as_bytes()).unwrap();
    wait_eq(&srv, Stream::Stdout, "Client: 你好,服务器!");
    srv.write_stdin("你好,客户端!\n".as_bytes()).unwrap();
    wait_eq(&c, Stream::Stdout, "You: Server: 你好,客户端!");
    c.write_stdin(b"second\n").unwrap();
    wait_eq(&srv, Stream::Stdout, "Client: second");
    srv.write_stdin(b"reply two\n").unwrap();
    wait_eq(&c, Stream::Stdout, "You: Server: reply two");
    // `exit` closes the Python client without sending anything.
    c.write_stdin(b"exit\n").unwrap();
    exits_with(&mut c, 0);
    exits_with(&mut srv, 0);
    assert_eq!(c.stdout_text(), "You: Server: 你好,客户端!\nYou: Server: reply two\nYou: ");
    let out = srv.stdout_text();
    assert_eq!(lines(&out)[1..], ["Client: 你好,服务器!", "Client: second"], "\n{}", srv.transcript());
}

#[test]
fn python_udp_clients_against_udp_servers() {
    let (mut cpp, port) = server("udp_server_cpp", LINK, &[]);
    let Some(mut c) = py_client("s000_udp_client", port, Input::Null) else { return };
    exits_with(&mut c, 0);
    assert_eq!(c.stdout_text(), "Received Hello, client! from server\n", "\n{}", c.transcript());
    let l = next_line(&cpp, Stream::Stdout);
    assert!(l.starts_with("Received Hello, server! from 127.0.0.1:"), "{l:?}\n{}", cpp.transcript());
    let from = &l["Received Hello, server! from ".len()..];
    wait_eq(&cpp, Stream::Stdout, &format!("Received exit from {from}"));
    stop(&mut cpp, libc::SIGTERM);

    let (mut upper, port) = server("udp_upper_server", LINK, &[]);
    // s001's interactive client; its empty line is an empty datagram, which
    // gets an empty reply.
    let mut c = py_client("s001_udp_client", port, "hello\n\n你好 abc\nquit\n").unwrap();
    exits_with(&mut c, 0);
    let prompt = "Enter message (or 'quit' to exit): ";
    let want =
        format!("{prompt}Received from server: HELLO\n{prompt}Received from server: \n{prompt}Received from server: 你好 ABC\n{prompt}");
    assert_eq!(c.stdout_text(), want, "\n{}", c.transcript());
    let mut c = py_client("s004_udp_client", port, Input::Null).unwrap();
    exits_with(&mut c, 0);
    assert_eq!(c.stdout_text(), format!("Received from ('127.0.0.1', {port}): HELLO, UDP SERVER\n"), "\n{}", c.transcript());
    stop(&mut upper, libc::SIGTERM);

    let (mut echo, port) = server("udp_echo_server", LINK, &[]);
    let mut c = py_client("s003_udp_client", port, Input::Null).unwrap();
    exits_with(&mut c, 0);
    assert_eq!(c.stdout_text(), "Genji\nHanzo\nMcree\n", "\n{}", c.transcript());
    let mut c = py_client("s000_udp_client", port, Input::Null).unwrap();
    exits_with(&mut c, 0);
    assert_eq!(c.stdout_text(), "Received Hello, server! from server\n", "\n{}", c.transcript());
    stop(&mut echo, libc::SIGTERM);
}

/// Feeds `line` to a raw-frame tcp_client and waits for `reply` on its stdout.
fn say(c: &mut Proc, line: &str, reply: &str) {
    c.write_stdin(format!("{line}\n").as_bytes()).unwrap();
    wait_eq(c, Stream::Stdout, reply);
}

#[test]
fn tcp_client_against_python_tcp_servers() {
    // s003's threaded server: `welcome`, then `Hello <chunk>`; `exit` makes
    // it close first (cleanly), which the client notes (status 0).
    let Some((mut s003, port)) = py_server("s003_tcp_threaded_server", Input::Null) else { return };
    let mut c = client("tcp_client", LINK, &["--frame", "raw"], port, Input::Piped);
    wait_eq(&c, Stream::Stdout, "welcome");
    say(&mut c, "Genji", "Hello Genji");
    say(&mut c, "Hanzo", "Hello Hanzo");
    c.write_stdin(b"exit\n").unwrap();
    exits_with(&mut c, 0);
    assert_eq!(c.stdout_text(), "welcome\nHello Genji\nHello Hanzo\n");
    assert!(c.stderr_text().contains("closed the connection"), "\n{}", c.transcript());
    assert!(s003.stdout_text().starts_with("accept new connection from ('127.0.0.1', "), "\n{}", s003.transcript());
    s003.kill();

    // s001's echo server: the client half-closes at EOF, the server closes.
    let (mut s001, port) = py_server("s001_tcp_echo_server", Input::Null).unwrap();
    let mut c = client("tcp_client", LINK, &["--frame", "raw"], port, Input::Piped);
    say(&mut c, "hello", "hello");
    say(&mut c, "你好,服务器!", "你好,服务器!");
    c.close_stdin();
    exits_with(&mut c, 0);
    assert_eq!(c.stdout_text(), "hello\n你好,服务器!\n");
    wait_eq(&s001, Stream::Stdout, "收到: 你好,服务器!");
    s001.kill();

    // s004's server answers once and closes first (cleanly: status 0).
    let (mut s004, port) = py_server("s004_tcp_server", Input::Null).unwrap();
    let mut c = client("tcp_client", LINK, &["--frame", "raw"], port, Input::Piped);
    say(&mut c, "Hello, Server", "Hello, Client");
    exits_with(&mut c, 0);
    assert!(c.stderr_text().contains("closed the connection"), "\n{}", c.transcript());
    assert_eq!(c.stdout_text(), "Hello, Client\n");
    s004.kill();

    // s000's one-connection server: a reply per chunk, `exit` stops it.
    let (mut s000, port) = py_server("s000_tcp_server", Input::Null).unwrap();
    let mut c = client("tcp_client", LINK, &["--frame", "raw"], port, Input::Piped);
    say(&mut c, "hello, server", "hello, tcp client!");
    say(&mut c, "again", "hello, tcp client!");
    c.write_stdin(b"exit\n").unwrap();
    exits_with(&mut c, 0);
    assert!(c.stderr_text().contains("closed the connection"), "\n{}", c.transcript());
    exits_with(&mut s000, 0);
    let out = s000.stdout_text();
    let got = lines(&out);
    assert_eq!(
        got[2..],
        ["Received from client: hello, server", "Received from client: again", "Received from client: exit", "Server exiting..."]
    );
}

#[test]
fn chat_client_against_python_chat_server() {
    let Some((mut srv, port)) = py_server("s004_chat_server", Input::Piped) else { return };
    let mut c = client("chat_client", LINK, &["--frame", "raw"], port, Input::Piped);
    c.write_stdin("你好,服务器!\n".as_bytes()).unwrap();
    wait_eq(&srv, Stream::Stdout, "Client: 你好,服务器!");
    srv.write_stdin("你好,客户端!\n".as_bytes()).unwrap();
    wait_eq(&c, Stream::Stdout, "Server: 你好,客户端!");
    c.write_stdin(b"second\n").unwrap();
    wait_eq(&srv, Stream::Stdout, "You: Client: second");
    srv.write_stdin(b"bye\n").unwrap();
    wait_eq(&c, Stream::Stdout, "Server: bye");
    // EOF on the client: it half-closes, the lock-step server sees the end
    // and exits, and the client ends cleanly.
    c.close_stdin();
    exits_with(&mut srv, 0);
    exits_with(&mut c, 0);
    assert_eq!(c.stdout_text(), "Server: 你好,客户端!\nServer: bye\n");
}

#[test]
fn udp_clients_against_python_udp_servers() {
    // s000: a reply per datagram; `exit` stops the whole server.
    let Some((mut s000, port)) = py_server("s000_udp_server", Input::Null) else { return };
    let mut c = client("udp_client", LINK, &[], port, Input::Piped);
    say(&mut c, "Hello, server!", "Hello, client!");
    c.write_stdin(b"exit\n").unwrap();
    exits_with(&mut s000, 0);
    c.close_stdin();
    exits_with(&mut c, 0);
    assert_eq!(c.stdout_text(), "Hello, client!\n");
    let out = s000.stdout_text();
    let got = lines(&out);
    assert_eq!(got.len(), 4, "\n{}", s000.transcript());
    assert!(got[1].starts_with("Received Hello, server! from ('127.0.0.1', ") && got[2].starts_with("Received exit from"), "{got:?}");
    assert_eq!(got[3], "Server exiting...");

    // The C++ client against the same server (the tutorial's 00b scenario).
    let (mut s000, port) = py_server("s000_udp_server", Input::Null).unwrap();
    let mut c = client("udp_client_cpp", LINK, &[], port, Input::Null);
    exits_with(&mut c, 0);
    assert_eq!(c.stdout_text(), "Received from server: Hello, client!\n");
    exits_with(&mut s000, 0);

    // s001: upper case; an empty datagram gets an empty reply.
    let (mut s001, port) = py_server("s001_udp_server", Input::Null).unwrap();
    let mut c = client("udp_client", LINK, &[], port, Input::Piped);
    say(&mut c, "hello", "HELLO");
    say(&mut c, "", "");
    say(&mut c, "你好 abc", "你好 ABC");
    c.close_stdin();
    exits_with(&mut c, 0);
    assert_eq!(c.stdout_text(), "HELLO\n\n你好 ABC\n");
    s001.kill();

    // s003: `Hello,<text>` from a thread per datagram.
    let (mut s003, port) = py_server("s003_udp_server", Input::Null).unwrap();
    let mut c = client("udp_client", LINK, &[], port, Input::Piped);
    for name in ["Genji", "Hanzo", "Mcree"] {
        say(&mut c, name, &format!("Hello,{name}"));
    }
    c.close_stdin();
    exits_with(&mut c, 0);
    assert_eq!(c.stdout_text(), "Hello,Genji\nHello,Hanzo\nHello,Mcree\n");
    s003.kill();

    // s004: a fixed reply, and the server prints what it got.
    let (mut s004, port) = py_server("s004_udp_server", Input::Null).unwrap();
    let mut c = client("udp_client", LINK, &[], port, Input::Piped);
    say(&mut c, "Hello, UDP Server", "Hello, UDP Client");
    c.close_stdin();
    exits_with(&mut c, 0);
    let l = wait_eq_prefix(&s004, "Received from ('127.0.0.1', ");
    assert!(l.ends_with("): Hello, UDP Server"), "{l:?}");
    s004.kill();
}

fn wait_eq_prefix(p: &Proc, prefix: &str) -> String {
    p.wait_for_line_matching(Stream::Stdout, |l| l.starts_with(prefix), &format!("a line starting with {prefix:?}"), default_timeout())
}

// ---------------------------------------------------------------------------
// The tutorial's C programs (seed 002), compiled as published
// ---------------------------------------------------------------------------

/// The tutorial's four C programs, verbatim copies in `tests/peers/tutorial_c/`.
const TUTORIAL_C: [&str; 4] = ["s002_tcp_server", "s002_tcp_client", "s002_udp_server", "s002_udp_client"];

/// The originals: `$SOCKFLOW_PEERS_DIR` or /work/shared/peers, when present.
fn originals_dir() -> Option<PathBuf> {
    let d = std::env::var_os("SOCKFLOW_PEERS_DIR").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/work/shared/peers"));
    d.join("s002_tcp_client.c").is_file().then_some(d)
}

/// The copies are the tutorial's programs as published, byte for byte.
#[test]
fn tutorial_c_copies_match_the_originals() {
    let Some(orig) = originals_dir() else {
        eprintln!("note: the tutorial's originals are not here (set SOCKFLOW_PEERS_DIR): skipping");
        return;
    };
    for n in TUTORIAL_C {
        let copy = std::fs::read(root().join(format!("tests/peers/tutorial_c/{n}.c"))).unwrap();
        let original = std::fs::read(orig.join(format!("{n}.c"))).unwrap();
        assert!(copy == original, "tests/peers/tutorial_c/{n}.c differs from {}", orig.join(format!("{n}.c")).display());
    }
}

/// One of the s002 programs, built once per test process with gcc as the
/// tutorial's build.sh does (warnings expected, no -Werror), or None with
/// a note when gcc is missing.
fn tutorial(name: &str) -> Option<PathBuf> {
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let dir = BUILT.get_or_init(|| {
        if which("gcc").is_none() {
            return Err("gcc not found".into());
        }
        let src = root().join("tests/peers/tutorial_c");
        let out = tmp_dir(&format!("tutorial-c-{}", std::process::id()));
        for n in TUTORIAL_C {
            let o = Command::new("gcc")
                .args(["-g", "-O0", "-Wall", "-Wextra", "-o"])
                .arg(out.join(n))
                .arg(src.join(format!("{n}.c")))
                .output()
                .expect("run gcc");
            assert!(o.status.success(), "gcc {n}.c failed:\n{}", String::from_utf8_lossy(&o.stderr));
        }
        Ok(out)
    });
    match dir {
        Ok(d) => Some(d.join(name)),
        Err(why) => {
            eprintln!("note: {why}: skipping this test");
            None
        }
    }
}

/// A tutorial server (given port 0) with line-buffered stdout (it never
/// flushes: bug 17), and the port it bound.
fn tutorial_server(bin: &Path, proto: Proto) -> Option<(Proc, u16)> {
    let stdbuf = tool("stdbuf")?;
    let mut cmd = Command::new(stdbuf);
    cmd.arg("-oL").arg(bin).arg("0");
    let mut p = spawn_cmd(cmd, Input::Null);
    let port = bound_port(&mut p, proto);
    Some((p, port))
}

/// The tutorial's C client sends 32-byte NUL-padded frames with stale bytes
/// after the NUL; sockflow's print server with `--frame fixed:32` shows
/// each message as typed, and the quit word closes the connection.
#[test]
fn tutorial_tcp_client_to_tcp_server_fixed32() {
    let Some(bin) = tutorial("s002_tcp_client") else { return };
    let (mut srv, port) = server("tcp_server", LINK, &["--frame", "fixed:32"]);
    // "hi" follows a longer line: its frame is "hi\0" + the old line's tail.
    let input = "hello world long\nhi\n\nexactly thirty characters long\nquit\n";
    let mut c = spawn(&bin, &["127.0.0.1", &port.to_string()], input);
    exits_with(&mut c, 0);
    assert_eq!(c.stdout_text(), "sockfd is 3\n");
    let first = next_line(&srv, Stream::Stdout);
    let p = port_eq(&first);
    let closed = format!("client closed ip = 127.0.0.1 port = {p} (quit)");
    wait_eq(&srv, Stream::Stdout, &closed);
    let out = srv.stdout_text();
    assert_eq!(
        lines(&out),
        [first.as_str(), "hello world long", "hi", "", "exactly thirty characters long", &closed],
        "\n{}",
        srv.transcript()
    );
    stop(&mut srv, libc::SIGTERM);
}

/// sockflow's tcp_client with `--frame fixed:32` sends what the tutorial's
/// C server reads; a line over 31 bytes is refused, not split.
#[test]
fn tcp_client_fixed32_to_tutorial_tcp_server() {
    let Some(bin) = tutorial("s002_tcp_server") else { return };
    let Some((mut srv, port)) = tutorial_server(&bin, Proto::Tcp) else { return };
    let long = "x".repeat(40);
    let max = "y".repeat(31);
    let input = format!("hello\n{long}\nworld\n{max}\nquit\n");
    let mut c = client("tcp_client", LINK, &["--frame", "fixed:32"], port, input.as_str());
    exits_with(&mut c, 0);
    assert!(c.stderr_text().contains("line not sent"), "the 40-byte line must be refused\n{}", c.transcript());
    wait_eq(&srv, Stream::Stdout, &format!("acceptfd is {max}"));
    let out = srv.stdout_text();
    let got = lines(&out);
    assert_eq!(got[0], "sockfd is 3");
    assert!(got[1].starts_with("client ip = 127.0.0.1 port = "), "{got:?}");
    assert_eq!(got[2..], ["acceptfd is hello", "acceptfd is world", &format!("acceptfd is {max}")], "\n{}", srv.transcript());
    srv.kill();
}

/// The tutorial's UDP client (32-byte datagrams, no exit condition) to
/// sockflow's udp_server with `--frame fixed:32`.
#[test]
fn tutorial_udp_client_to_udp_server_fixed32() {
    let Some(bin) = tutorial("s002_udp_client") else { return };
    let (mut srv, port) = server("udp_server", LINK, &["--frame", "fixed:32"]);
    let mut c = spawn(&bin, &["127.0.0.1", &port.to_string()], Input::Piped);
    c.write_stdin(b"hello world long\nhi\n\nquit\nlast\n").unwrap();
    wait_eq(&srv, Stream::Stdout, "last");
    // It never exits, and at EOF it would resend forever: kill it with its
    // input still open.
    c.kill();
    let out = srv.stdout_text();
    let got = lines(&out);
    let who = got[0];
    assert!(who.starts_with("client ip = 127.0.0.1 port = "), "{got:?}");
    assert_eq!(got, [who, "hello world long", who, "hi", who, "", who, "quit", who, "last"], "\n{}", srv.transcript());
    stop(&mut srv, libc::SIGTERM);
}

/// sockflow's udp_client with `--frame fixed:32` to the tutorial's UDP
/// server: padded datagrams print cleanly even from its never-cleared buffer.
#[test]
fn udp_client_fixed32_to_tutorial_udp_server() {
    let Some(bin) = tutorial("s002_udp_server") else { return };
    let Some((mut srv, port)) = tutorial_server(&bin, Proto::Udp) else { return };
    let mut c = client("udp_client", LINK, &["--frame", "fixed:32"], port, "hello world long\nhi\nquit\n");
    exits_with(&mut c, 0);
    wait_eq(&srv, Stream::Stdout, "client is : quit");
    let out = srv.stdout_text();
    let got = lines(&out);
    assert_eq!(got.len(), 6, "\n{}", srv.transcript());
    let ip = got[1];
    assert!(ip.starts_with("client IP  is 127.0.0.1  port is "), "{got:?}");
    assert_eq!(got, ["client is : hello world long", ip, "client is : hi", ip, "client is : quit", ip]);
    srv.kill();
}

// ---------------------------------------------------------------------------
// nc and socat as clients
// ---------------------------------------------------------------------------

/// `nc -N 127.0.0.1 PORT` (half-closes at EOF, then reads to the end).
fn nc_tcp(nc: &Path, port: u16, input: &str) -> Proc {
    spawn(nc, &["-N", "127.0.0.1", &port.to_string()], input)
}

#[test]
fn nc_and_socat_against_tcp_server() {
    let (Some(nc), Some(socat)) = (tool("nc"), tool("socat")) else { return };
    let (mut srv, port) = server("tcp_server", LINK, &[]);
    let mut c = nc_tcp(&nc, port, "hello from nc\n\ncrlf\r\n");
    exits_with(&mut c, 0);
    let (first, p) = {
        let l = next_line(&srv, Stream::Stdout);
        let p = port_eq(&l);
        (l, p)
    };
    let closed = format!("client closed ip = 127.0.0.1 port = {p} (peer closed)");
    wait_eq(&srv, Stream::Stdout, &closed);

    // The quit word closes the connection; what follows is not shown.
    let mut c = nc_tcp(&nc, port, "before quit\nquit\nafter quit\n");
    exits_with(&mut c, 0);
    let (second, q) = {
        let l = next_line(&srv, Stream::Stdout);
        let p = port_eq(&l);
        (l, p)
    };
    let closed_q = format!("client closed ip = 127.0.0.1 port = {q} (quit)");
    wait_eq(&srv, Stream::Stdout, &closed_q);

    let mut c = spawn(&socat, &["-t", "5", "-", &format!("TCP:127.0.0.1:{port}")], "hello from socat\n");
    exits_with(&mut c, 0);
    let (third, r) = {
        let l = next_line(&srv, Stream::Stdout);
        let p = port_eq(&l);
        (l, p)
    };
    let closed_r = format!("client closed ip = 127.0.0.1 port = {r} (peer closed)");
    wait_eq(&srv, Stream::Stdout, &closed_r);

    let out = srv.stdout_text();
    let want =
        [first.as_str(), "hello from nc", "", "crlf", &closed, &second, "before quit", &closed_q, &third, "hello from socat", &closed_r];
    assert_eq!(lines(&out), want, "\n{}", srv.transcript());
    stop(&mut srv, libc::SIGTERM);
}

#[test]
fn nc_and_socat_against_echo_server() {
    let (Some(nc), Some(socat)) = (tool("nc"), tool("socat")) else { return };
    // The default frame is raw: every byte comes back as sent, CRLF included.
    let (mut srv, port) = server("echo_server", LINK, &[]);
    let mut c = nc_tcp(&nc, port, "one\n\ntwo\r\nthree\n");
    exits_with(&mut c, 0);
    assert_eq!(c.stdout_text(), "one\n\ntwo\r\nthree\n");
    let mut c = spawn(&socat, &["-t", "5", "-", &format!("TCP:127.0.0.1:{port}")], "via socat\nno newline");
    exits_with(&mut c, 0);
    assert_eq!(c.stdout_text(), "via socat\nno newline");
    stop(&mut srv, libc::SIGTERM);
    // Line frames: each reply ends like its line, and `quit` ends the session.
    let (mut srv, port) = server("echo_server", LINK, &["--frame", "line"]);
    let mut c = nc_tcp(&nc, port, "one\n\ntwo\r\nthree\n");
    exits_with(&mut c, 0);
    assert_eq!(c.stdout_text(), "one\n\ntwo\r\nthree\n");
    let mut c = spawn(&socat, &["-t", "5", "-", &format!("TCP:127.0.0.1:{port}")], "via socat\nquit\nnot echoed\n");
    exits_with(&mut c, 0);
    assert_eq!(c.stdout_text(), "via socat\n");
    stop(&mut srv, libc::SIGTERM);
}

#[test]
fn nc_and_socat_against_udp_upper_server() {
    let (Some(nc), Some(socat)) = (tool("nc"), tool("socat")) else { return };
    let (mut srv, port) = server("udp_upper_server", LINK, &[]);
    // One line per datagram; the reply ends like the datagram (here with its newline).
    let mut c = spawn(&nc, &["-u", "-w", "2", "127.0.0.1", &port.to_string()], "hello from nc\n");
    exits_with(&mut c, 0);
    assert_eq!(c.stdout_text(), "HELLO FROM NC\n");
    let mut c = spawn(&socat, &["-t", "2", "-", &format!("UDP:127.0.0.1:{port}")], "hello from socat\n");
    exits_with(&mut c, 0);
    assert_eq!(c.stdout_text(), "HELLO FROM SOCAT\n");
    stop(&mut srv, libc::SIGTERM);
}
