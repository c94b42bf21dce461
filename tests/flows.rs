//! End-to-end tests of the example programs (`c_examples/*.c`, `*.cpp`)
//! against each other, on loopback, every server on port 0:
//!
//! * every client/server pair, linked statically and dynamically, checking
//!   what each side prints and sends;
//! * the clients' documented input handling: EOF, the quit word, empty
//!   lines, a 1 MiB line, binary bytes, no server;
//! * the servers' graceful stop on SIGINT/SIGTERM with clients connected.
//!
//! Interop with independent peers is in `flows_peers.rs`; load, killed and
//! resetting clients and restarts are in `flows_load.rs`.

mod common;
#[path = "flows/kit.rs"]
mod kit;

use common::*;
use kit::*;
use std::io::{BufReader, Write};

/// Defines `mod $name { static_link, dynamic_link }`, running `$body(link)`.
macro_rules! both_links {
    ($name:ident, $body:path) => {
        mod $name {
            use super::*;
            #[test]
            fn static_link() {
                $body(Link::Static)
            }
            #[test]
            fn dynamic_link() {
                $body(Link::Dynamic)
            }
        }
    };
}

// ---------------------------------------------------------------------------
// 1. Every example pair
// ---------------------------------------------------------------------------

/// The `client ip = 127.0.0.1 port = N` line the print handler shows next,
/// and N.
fn next_connect(srv: &Proc) -> (String, u16) {
    let l = next_line(srv, Stream::Stdout);
    assert!(l.starts_with("client ip = 127.0.0.1 port = "), "expected a connect line, got {l:?}\n{}", srv.transcript());
    let p = port_eq(&l);
    (l, p)
}

fn tcp_client_with_tcp_server(link: Link) {
    let (mut srv, port) = server("tcp_server", link, &[]);

    // Lines, an empty one, a last one without its newline, then EOF.
    let mut c = client("tcp_client", link, &[], port, "hello\n\nhello world\nlast without newline");
    exits_with(&mut c, 0);
    assert_eq!(c.stdout_text(), "", "the print server sends nothing back");
    assert_eq!(c.stderr_text(), "", "nothing to report on success");
    let (c1, p1) = next_connect(&srv);
    let closed1 = format!("client closed ip = 127.0.0.1 port = {p1} (peer closed)");
    wait_eq(&srv, Stream::Stdout, &closed1);

    // The quit word: sent, closes the connection; the line after it is not sent.
    let mut c = client("tcp_client", link, &[], port, "one\nquit\ntwo\n");
    exits_with(&mut c, 0);
    assert_eq!(c.stdout_text(), "");
    let (c2, p2) = next_connect(&srv);
    let closed2 = format!("client closed ip = 127.0.0.1 port = {p2} (quit)");
    wait_eq(&srv, Stream::Stdout, &closed2);

    let want = [c1.as_str(), "hello", "", "hello world", "last without newline", &closed1, &c2, "one", &closed2];
    assert_eq!(lines(&srv.stdout_text()), want, "\n{}", srv.transcript());
    stop(&mut srv, libc::SIGTERM);
}
both_links!(tcp_client_tcp_server, tcp_client_with_tcp_server);

fn tcp_client_with_echo_server(link: Link) {
    let (mut srv, port) = server("echo_server", link, &[]);
    let input = "hello\n\nhello world\n\t tabs and  spaces \nüñí©ødé 你好\ncrlf\r\nquit\nnot sent\n";
    let mut c = client("tcp_client", link, &[], port, input);
    exits_with(&mut c, 0);
    // The client sends its quit word and stops there; the echo server (raw,
    // byte-exact by default) echoes it like any other bytes.
    assert_eq!(c.stdout_text(), "hello\n\nhello world\n\t tabs and  spaces \nüñí©ødé 你好\ncrlf\nquit\n", "\n{}", c.transcript());
    assert_eq!(c.stderr_text(), "");

    // EOF without the quit word, last line without a newline.
    let mut c = client("tcp_client", link, &[], port, "a\nb");
    exits_with(&mut c, 0);
    assert_eq!(c.stdout_text(), "a\nb\n");
    stop(&mut srv, libc::SIGTERM);
}
both_links!(tcp_client_echo_server, tcp_client_with_echo_server);

/// A statically linked client against a dynamically linked server and back.
#[test]
fn tcp_client_echo_server_mixed_links() {
    for (cl, sl) in [(Link::Static, Link::Dynamic), (Link::Dynamic, Link::Static)] {
        let (mut srv, port) = server("echo_server", sl, &[]);
        let mut c = client("tcp_client", cl, &[], port, "mixed\nlinks\n");
        exits_with(&mut c, 0);
        assert_eq!(c.stdout_text(), "mixed\nlinks\n");
        stop(&mut srv, libc::SIGINT);
    }
}

fn tcp_client_with_hello_server(link: Link) {
    let (mut srv, port) = server("hello_server", link, &[]);

    // The tutorial's exchange; `exit` makes the server close. Whether the
    // client's input was seen to end before that (usually) or not, the
    // status is 0, and stderr at most notes the close.
    let mut c = client("tcp_client", link, &[], port, "Genji\nHanzo\nMcree\nexit\n");
    exits_with(&mut c, 0);
    assert_eq!(c.stdout_text(), "welcome\nHello Genji\nHello Hanzo\nHello Mcree\n", "\n{}", c.transcript());
    let err = c.stderr_text();
    assert!(err.is_empty() || err == format!("tcp_client: 127.0.0.1:{port} closed the connection\n"), "\n{}", c.transcript());

    // The server closes first (on `exit`, cleanly) while the input is still
    // open: the client says so on stderr and exits with status 0.
    let mut c = client("tcp_client", link, &[], port, Input::Piped);
    wait_eq(&c, Stream::Stdout, "welcome");
    c.write_stdin(b"Genji\n").unwrap();
    wait_eq(&c, Stream::Stdout, "Hello Genji");
    c.write_stdin(b"exit\n").unwrap();
    exits_with(&mut c, 0);
    assert_eq!(c.stdout_text(), "welcome\nHello Genji\n");
    assert!(c.stderr_text().contains("closed the connection"), "expected a note that the server closed\n{}", c.transcript());
    stop(&mut srv, libc::SIGTERM);
}
both_links!(tcp_client_hello_server, tcp_client_with_hello_server);

fn udp_client_with_udp_server(link: Link) {
    let (mut srv, port) = server("udp_server", link, &[]);
    let mut c = client("udp_client", link, &[], port, "hello\n\nhello world\nquit\nnot sent\n");
    exits_with(&mut c, 0);
    assert_eq!(c.stdout_text(), "", "the print server sends nothing back");
    assert_eq!(c.stderr_text(), "");
    wait_eq(&srv, Stream::Stdout, "quit");
    let out = srv.stdout_text();
    let got = lines(&out);
    assert_eq!(got.len(), 8, "two lines per datagram\n{}", srv.transcript());
    let cport = port_eq(got[0]);
    let who = format!("client ip = 127.0.0.1 port = {cport}");
    assert_eq!(got, [who.as_str(), "hello", &who, "", &who, "hello world", &who, "quit"]);
    stop(&mut srv, libc::SIGTERM);
}
both_links!(udp_client_udp_server, udp_client_with_udp_server);

/// Writes `input` to a UDP client with a piped stdin, waits for its last
/// reply `last`, then ends the input and checks exit status 0.
fn udp_session(c: &mut Proc, input: &[u8], last: &str) {
    c.write_stdin(input).unwrap();
    wait_eq(c, Stream::Stdout, last);
    c.close_stdin();
    exits_with(c, 0);
}

fn udp_client_with_udp_echo_server(link: Link) {
    let (mut srv, port) = server("udp_echo_server", link, &[]);
    let mut c = client("udp_client", link, &[], port, Input::Piped);
    udp_session(&mut c, "hello\n\nhello world\nüñí©ødé\nquit\nnot sent\n".as_bytes(), "quit");
    assert_eq!(c.stdout_text(), "hello\n\nhello world\nüñí©ødé\nquit\n", "\n{}", c.transcript());
    assert_eq!(c.stderr_text(), "");
    stop(&mut srv, libc::SIGTERM);
}
both_links!(udp_client_udp_echo_server, udp_client_with_udp_echo_server);

fn udp_client_with_udp_upper_server(link: Link) {
    let (mut srv, port) = server("udp_upper_server", link, &[]);
    let mut c = client("udp_client", link, &[], port, Input::Piped);
    udp_session(&mut c, "hello\nHello World 123 é\n\nquit\n".as_bytes(), "QUIT");
    assert_eq!(c.stdout_text(), "HELLO\nHELLO WORLD 123 é\n\nQUIT\n", "\n{}", c.transcript());
    assert_eq!(c.stderr_text(), "");
    stop(&mut srv, libc::SIGTERM);
}
both_links!(udp_client_udp_upper_server, udp_client_with_udp_upper_server);

/// Starts chat_server and a chat_client, both typing through pipes, and
/// waits until the server saw the client connect.
fn chat_pair(link: Link) -> (Proc, Proc) {
    let (srv, port) = start_with(&example("chat_server", link), &["127.0.0.1", "0"], Input::Piped);
    assert!(srv.stderr_text().contains(&format!("chat_server: listening on 127.0.0.1 port {port}\n")), "\n{}", srv.transcript());
    let cl = client("chat_client", link, &[], port, Input::Piped);
    let l = next_line(&srv, Stream::Stdout);
    assert!(l.starts_with("client ip = 127.0.0.1 port = ") && l.ends_with(" connected"), "unexpected {l:?}\n{}", srv.transcript());
    (srv, cl)
}

/// Both sides type in turn and out of turn, empty lines included: nothing
/// deadlocks (the tutorial's lock-step chat hangs on an empty line).
fn chat_both_ways(srv: &mut Proc, cl: &mut Proc) {
    cl.write_stdin(b"hi server\n").unwrap();
    wait_eq(srv, Stream::Stdout, "Client: hi server");
    srv.write_stdin(b"hi client\n").unwrap();
    wait_eq(cl, Stream::Stdout, "Server: hi client");
    cl.write_stdin(b"\n").unwrap();
    wait_eq(srv, Stream::Stdout, "Client: ");
    srv.write_stdin(b"\n").unwrap();
    wait_eq(cl, Stream::Stdout, "Server: ");
    // Out of turn: two lines in a row from each side.
    cl.write_stdin(b"after empty\nand again\n").unwrap();
    srv.write_stdin("你好,客户端!\nsecond\n".as_bytes()).unwrap();
    wait_eq(srv, Stream::Stdout, "Client: and again");
    wait_eq(cl, Stream::Stdout, "Server: second");
}

fn chat_client_with_chat_server(link: Link) {
    // The client ends with EOF.
    let (mut srv, mut cl) = chat_pair(link);
    chat_both_ways(&mut srv, &mut cl);
    cl.close_stdin();
    exits_with(&mut srv, 0);
    exits_with(&mut cl, 0);
    let sl = lines(&srv.stdout_text()).into_iter().skip(1).map(String::from).collect::<Vec<_>>();
    assert_eq!(sl, ["Client: hi server", "Client: ", "Client: after empty", "Client: and again"], "\n{}", srv.transcript());
    assert_eq!(cl.stdout_text(), "Server: hi client\nServer: \nServer: 你好,客户端!\nServer: second\n", "\n{}", cl.transcript());

    // The server ends with the quit word, which the client receives as a line.
    let (mut srv, mut cl) = chat_pair(link);
    chat_both_ways(&mut srv, &mut cl);
    srv.write_stdin(b"quit\n").unwrap();
    wait_eq(&cl, Stream::Stdout, "Server: quit");
    exits_with(&mut cl, 0);
    exits_with(&mut srv, 0);
    assert_eq!(cl.stdout_text(), "Server: hi client\nServer: \nServer: 你好,客户端!\nServer: second\nServer: quit\n");
}
both_links!(chat_client_chat_server, chat_client_with_chat_server);

fn udp_cpp_pair(link: Link) {
    let (mut srv, port) = server("udp_server_cpp", link, &[]);
    for _ in 0..2 {
        // Unlike the tutorial's Python server, `exit` does not stop it: run twice.
        let mut c = client("udp_client_cpp", link, &[], port, Input::Null);
        exits_with(&mut c, 0);
        assert_eq!(c.stdout_text(), "Received from server: Hello, client!\n", "\n{}", c.transcript());
        assert_eq!(c.stderr_text(), "");
        let l = wait_eq_prefix(&srv, "Received hello server! from 127.0.0.1:");
        let cport = &l["Received hello server! from 127.0.0.1:".len()..];
        wait_eq(&srv, Stream::Stdout, &format!("Received exit from 127.0.0.1:{cport}"));
    }
    assert_eq!(lines(&srv.stdout_text()).len(), 4, "\n{}", srv.transcript());

    // The C udp_client against the C++ server: every line gets the greeting.
    let mut c = client("udp_client", link, &[], port, Input::Piped);
    c.write_stdin(b"one\ntwo\n").unwrap();
    wait_eq(&c, Stream::Stdout, "Hello, client!");
    wait_eq(&c, Stream::Stdout, "Hello, client!");
    c.close_stdin();
    exits_with(&mut c, 0);
    assert_eq!(c.stdout_text(), "Hello, client!\nHello, client!\n");
    stop(&mut srv, libc::SIGTERM);

    // The C++ client against the C echo server.
    let (mut echo, port) = server("udp_echo_server", link, &[]);
    let mut c = client("udp_client_cpp", link, &[], port, Input::Null);
    exits_with(&mut c, 0);
    assert_eq!(c.stdout_text(), "Received from server: hello server!\n");
    stop(&mut echo, libc::SIGINT);
}
both_links!(udp_client_cpp_udp_server_cpp, udp_cpp_pair);

/// Waits for a stdout line starting with `prefix` and returns it.
fn wait_eq_prefix(p: &Proc, prefix: &str) -> String {
    p.wait_for_line_matching(Stream::Stdout, |l| l.starts_with(prefix), &format!("a line starting with {prefix:?}"), default_timeout())
}

/// The pairs over IPv6 loopback: the print server shows `::1`.
#[test]
fn pairs_over_ipv6_loopback() {
    if !has_ipv6_loopback() {
        eprintln!("note: no IPv6 loopback here: skipping");
        return;
    }
    let link = Link::Dynamic;
    let (mut srv, port) = start(&example("tcp_server", link), &["-6", "::1", "0"]);
    let ps = port.to_string();
    let mut c = spawn(example("tcp_client", link), &["::1", &ps], "over v6\n");
    exits_with(&mut c, 0);
    let l = next_line(&srv, Stream::Stdout);
    assert!(l.starts_with("client ip = ::1 port = "), "{l:?}\n{}", srv.transcript());
    wait_eq(&srv, Stream::Stdout, "over v6");
    stop(&mut srv, libc::SIGTERM);

    let (mut srv, port) = start(&example("udp_echo_server", link), &["::1", "0"]);
    let ps = port.to_string();
    let mut c = spawn(example("udp_client", link), &["-6", "::1", &ps], Input::Piped);
    udp_session(&mut c, b"v6 datagram\n", "v6 datagram");
    stop(&mut srv, libc::SIGTERM);
}

/// The clients and echo servers agree on every `--frame` (TCP: raw is left
/// out, its messages are whatever one read returns).
#[test]
fn echo_pairs_on_every_frame() {
    let link = Link::Static;
    let input = "hello\n\nworld 你好\n";
    for frame in ["line", "line:100", "fixed:32", "len32", "len32:100"] {
        let (mut srv, port) = server("echo_server", link, &["--frame", frame]);
        let mut c = client("tcp_client", link, &["--frame", frame], port, input);
        exits_with(&mut c, 0);
        assert_eq!(c.stdout_text(), input, "tcp, --frame {frame}\n{}", c.transcript());
        stop(&mut srv, libc::SIGTERM);
    }
    for frame in ["line", "raw", "fixed:32", "len32"] {
        let (mut srv, port) = server("udp_echo_server", link, &["--frame", frame]);
        let mut c = client("udp_client", link, &["--frame", frame], port, Input::Piped);
        udp_session(&mut c, input.as_bytes(), "world 你好");
        assert_eq!(c.stdout_text(), input, "udp, --frame {frame}\n{}", c.transcript());
        stop(&mut srv, libc::SIGTERM);
    }
}

// ---------------------------------------------------------------------------
// 5. The clients' input: EOF, quit word, empty line, 1 MiB line, binary
// ---------------------------------------------------------------------------

/// `before`, a line of 1 MiB, `after`.
fn big_input() -> Vec<u8> {
    let mut v = b"before\n".to_vec();
    v.extend(vec![b'x'; 1 << 20]);
    v.extend_from_slice(b"\nafter\n");
    v
}

#[test]
fn tcp_client_eof_at_once_exits_without_sending() {
    let link = Link::Dynamic;
    let (mut srv, port) = server("tcp_server", link, &[]);
    for input in [Input::Null, Input::from("")] {
        let mut c = client("tcp_client", link, &[], port, input);
        exits_with(&mut c, 0);
        assert_eq!(c.stdout_text(), "");
        assert_eq!(c.stderr_text(), "");
        let (_, p) = next_connect(&srv);
        // Nothing between the connect and the close: no message, no loop.
        let l = next_line(&srv, Stream::Stdout);
        assert_eq!(l, format!("client closed ip = 127.0.0.1 port = {p} (peer closed)"), "\n{}", srv.transcript());
    }
    stop(&mut srv, libc::SIGTERM);
}

#[test]
fn udp_client_eof_at_once_exits_without_sending() {
    let link = Link::Dynamic;
    let (mut srv, port) = server("udp_server", link, &[]);
    let mut c = client("udp_client", link, &[], port, Input::Null);
    exits_with(&mut c, 0);
    assert_eq!(c.stdout_text(), "");
    assert_eq!(c.stderr_text(), "");
    // A datagram of our own after the client is gone: it must be the first
    // thing the server printed.
    let u = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    u.send_to(b"sentinel", ("127.0.0.1", port)).unwrap();
    wait_eq(&srv, Stream::Stdout, "sentinel");
    let out = srv.stdout_text();
    assert_eq!(lines(&out).len(), 2, "the client sent something on EOF\n{}", srv.transcript());
    stop(&mut srv, libc::SIGTERM);
}

#[test]
fn custom_quit_word_on_both_sides() {
    let link = Link::Dynamic;
    let (mut srv, port) = server("tcp_server", link, &["--quit", "bye"]);
    let mut c = client("tcp_client", link, &["--quit", "bye"], port, "a\nquit\nbye\nz\n");
    exits_with(&mut c, 0);
    let (_, p) = next_connect(&srv);
    wait_eq(&srv, Stream::Stdout, &format!("client closed ip = 127.0.0.1 port = {p} (quit)"));
    assert_eq!(lines(&srv.stdout_text())[1..3], ["a", "quit"], "\n{}", srv.transcript());
    stop(&mut srv, libc::SIGTERM);

    // UDP: the quit word is sent, then the client stops reading its input.
    let (mut srv, port) = server("udp_echo_server", link, &[]);
    let mut c = client("udp_client", link, &["--quit", "bye"], port, Input::Piped);
    c.write_stdin(b"a\nbye\nnot sent\n").unwrap();
    wait_eq(&c, Stream::Stdout, "bye");
    exits_with(&mut c, 0);
    assert_eq!(c.stdout_text(), "a\nbye\n");
    stop(&mut srv, libc::SIGTERM);
}

#[test]
fn tcp_client_refuses_a_1mib_line_and_goes_on() {
    let link = Link::Dynamic;
    let (mut srv, port) = server("echo_server", link, &[]);
    let mut c = client("tcp_client", link, &[], port, big_input());
    exits_with(&mut c, 0);
    assert_eq!(c.stdout_text(), "before\nafter\n", "\n{}", c.transcript());
    let err = c.stderr_text();
    assert!(err.contains("line not sent") && err.contains("65536"), "expected the refusal on stderr\n{}", c.transcript());
    assert_eq!(err.lines().count(), 1, "one message for one refused line\n{err}");
    stop(&mut srv, libc::SIGTERM);
}

/// A 1 MiB line with `--frame len32` and a maximum that allows it goes out
/// whole and comes back whole.
#[test]
fn tcp_client_len32_sends_a_1mib_line_whole() {
    let link = Link::Dynamic;
    let frame = ["--frame", "len32:2097152"];
    let (mut srv, port) = server("echo_server", link, &frame);
    let input = big_input();
    let (mut c, out) = spawn_to_file(&example("tcp_client", link), &[frame[0], frame[1], "127.0.0.1", &port.to_string()], input.clone());
    exits_with(&mut c, 0);
    assert_bytes(&file_bytes(&out), &input, "echo of a 1 MiB line");
    assert_eq!(c.stderr_text(), "");
    stop(&mut srv, libc::SIGTERM);
}

/// The issue asks for a 1 MiB line with plain `--frame len32` to go out and
/// come back whole.
#[test]
fn tcp_client_plain_len32_sends_a_1mib_line_whole() {
    let link = Link::Dynamic;
    let (mut srv, port) = server("echo_server", link, &["--frame", "len32"]);
    let input = big_input();
    let (mut c, out) = spawn_to_file(&example("tcp_client", link), &["--frame", "len32", "127.0.0.1", &port.to_string()], input.clone());
    exits_with(&mut c, 0);
    assert_eq!(c.stderr_text(), "", "the 1 MiB line was refused");
    assert_bytes(&file_bytes(&out), &input, "echo of a 1 MiB line");
    stop(&mut srv, libc::SIGTERM);
}

#[test]
fn udp_client_refuses_a_1mib_line_and_goes_on() {
    let link = Link::Dynamic;
    let (mut srv, port) = server("udp_echo_server", link, &[]);
    let mut c = client("udp_client", link, &[], port, Input::Piped);
    udp_session(&mut c, &big_input(), "after");
    assert_eq!(c.stdout_text(), "before\nafter\n", "\n{}", c.transcript());
    assert!(c.stderr_text().contains("line not sent"), "expected the refusal on stderr\n{}", c.transcript());
    stop(&mut srv, libc::SIGTERM);
}

/// Invalid UTF-8 on a line frame, NULs and newlines on len32: every byte
/// goes to the server and back untouched.
#[test]
fn tcp_client_passes_binary_bytes_untouched() {
    let link = Link::Dynamic;
    // Line frame: anything but a newline.
    let (mut srv, port) = server("echo_server", link, &[]);
    let port_s = port.to_string();
    let input: &[u8] = b"\xff\xfe\xfd invalid \xc3\x28 utf-8 \x80\n\x01\x02\x1b[0m\x7f\ttab\n";
    let (mut c, out) = spawn_to_file(&example("tcp_client", link), &["127.0.0.1", &port_s], input);
    exits_with(&mut c, 0);
    assert_bytes(&file_bytes(&out), input, "line-frame echo");
    stop(&mut srv, libc::SIGTERM);

    // len32: NULs too, and the print server shows the exact bytes.
    let input: &[u8] = b"a\0b\xff\0\n\0\0\0\x04not a header\n\xc0\xafend\n";
    for name in ["echo_server", "tcp_server"] {
        let (mut srv, srv_out) = spawn_to_file(&example(name, link), &["--frame", "len32", "127.0.0.1", "0"], Input::Null);
        let port = srv.wait_listening().to_string();
        let (mut c, out) = spawn_to_file(&example("tcp_client", link), &["--frame", "len32", "127.0.0.1", &port], input);
        exits_with(&mut c, 0);
        assert_eq!(c.stderr_text(), "");
        if name == "echo_server" {
            assert_bytes(&file_bytes(&out), input, "len32 echo");
        } else {
            assert!(eventually(default_timeout(), || String::from_utf8_lossy(&file_bytes(&srv_out)).contains("client closed")));
            let printed = file_bytes(&srv_out);
            let start = printed.iter().position(|&b| b == b'\n').unwrap() + 1;
            let end = printed.windows(13).position(|w| w == b"client closed").unwrap();
            assert_bytes(&printed[start..end], input, "what the print server shows");
        }
        stop(&mut srv, libc::SIGTERM);
    }
}

#[test]
fn udp_client_passes_binary_bytes_untouched() {
    let link = Link::Dynamic;
    let (mut srv, port) = server("udp_echo_server", link, &[]);
    let input: &[u8] = b"\xff\xfe invalid \xc3\x28\nNUL\0inside\0\nlast\n";
    let (mut c, out) = spawn_to_file(&example("udp_client", link), &["127.0.0.1", &port.to_string()], Input::Piped);
    c.write_stdin(input).unwrap();
    assert!(
        eventually(default_timeout(), || file_bytes(&out).ends_with(b"last\n")),
        "no echo of the last line: {}",
        show(&file_bytes(&out))
    );
    c.close_stdin();
    exits_with(&mut c, 0);
    assert_bytes(&file_bytes(&out), input, "udp echo");
    stop(&mut srv, libc::SIGTERM);
}

#[test]
fn udp_client_without_server_ends() {
    let link = Link::Dynamic;
    // A port nobody listens on: bind one, note it, close it.
    let port = std::net::UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut c = client("udp_client", link, &["--timeout", "300"], port, "hello\nworld\n");
    let st = c.wait_exit(default_timeout());
    assert!(st.code().is_some(), "udp_client died: {}\n{}", describe(st), c.transcript());
    let err = c.stderr_text();
    assert!(err.contains("no reply") || err.contains("connection refused"), "expected a note on stderr\n{}", c.transcript());
    assert_eq!(c.stdout_text(), "");

    let mut c = client("udp_client_cpp", link, &["--timeout", "300"], port, Input::Null);
    exits_with(&mut c, 1);
    assert!(!c.stderr_text().is_empty(), "the C++ client says why it failed\n{}", c.transcript());
}

#[test]
fn tcp_client_without_server_fails() {
    let link = Link::Dynamic;
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut c = client("tcp_client", link, &[], port, "hello\n");
    exits_with(&mut c, 1);
    assert!(c.stderr_text().contains("Connection refused"), "\n{}", c.transcript());
}

/// With `--timeout`, each line waits that long for its reply and says on
/// stderr when none came; the print server answers nothing.
#[test]
fn udp_client_timeout_waits_per_line() {
    let link = Link::Dynamic;
    let (mut srv, port) = server("udp_server", link, &[]);
    let mut c = client("udp_client", link, &["--timeout", "200"], port, "first\nsecond\n");
    exits_with(&mut c, 0);
    let err = c.stderr_text();
    assert_eq!(err.matches("no reply within 200 ms").count(), 2, "one note per unanswered line\n{}", c.transcript());
    wait_eq(&srv, Stream::Stdout, "second");
    assert_eq!(lines(&srv.stdout_text()).iter().filter(|l| !l.starts_with("client ip = ")).collect::<Vec<_>>(), [&"first", &"second"]);
    stop(&mut srv, libc::SIGTERM);
}

/// A line server given a last line without its newline before the end of
/// the stream: `printf 'a\nb' | nc -N host port`. The client example itself
/// sends such a line at EOF (see `tcp_client_with_tcp_server`); the servers
/// deliver it as a line too.
#[test]
fn servers_keep_an_unterminated_last_line() {
    let link = Link::Dynamic;
    let (mut srv, port) = server("echo_server", link, &[]);
    let mut s = connect(port);
    s.write_all(b"a\nb").unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    assert_eq!(String::from_utf8_lossy(&read_to_eof(&mut s)), "a\nb");
    stop(&mut srv, libc::SIGTERM);

    let (mut srv, port) = server("tcp_server", link, &[]);
    let mut s = connect(port);
    s.write_all(b"a\nb").unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    read_to_eof(&mut s);
    let (_, p) = next_connect(&srv);
    wait_eq(&srv, Stream::Stdout, &format!("client closed ip = 127.0.0.1 port = {p} (peer closed)"));
    assert_eq!(lines(&srv.stdout_text())[1..3], ["a", "b"], "\n{}", srv.transcript());
    stop(&mut srv, libc::SIGTERM);
}

/// The server dies (SIGKILL) under a connected client that goes on
/// typing: the client reports it, never killed by SIGPIPE (the tutorial's
/// client died silently with status 141). The kernel closes the dead
/// server's socket with a FIN, or a reset when typed lines were unread:
/// exit 0 with "closed the connection", or 1 with the reset.
#[test]
fn clients_outlive_a_killed_server() {
    let link = Link::Dynamic;
    for (srv_name, cl_name) in [("echo_server", "tcp_client"), ("chat_server", "chat_client")] {
        let (mut srv, port) = start_with(&example(srv_name, link), &["127.0.0.1", "0"], Input::Piped);
        let mut c = client(cl_name, link, &[], port, Input::Piped);
        if srv_name == "echo_server" {
            c.write_stdin(b"ping\n").unwrap();
            wait_eq(&c, Stream::Stdout, "ping");
        } else {
            srv.wait_for_line(Stream::Stdout, " connected", default_timeout());
        }
        srv.kill();
        // Typing on after the server is gone; a broken pipe here is fine.
        for i in 0..50 {
            if c.write_stdin(format!("line {i}\n").as_bytes()).is_err() {
                break;
            }
        }
        let st = c.wait_exit(default_timeout());
        let err = c.stderr_text();
        match st.code() {
            Some(0) => assert!(err.contains("closed the connection"), "{cl_name} says the server went away\n{}", c.transcript()),
            Some(1) => assert!(err.contains("reset by peer"), "{cl_name} says the server went away\n{}", c.transcript()),
            _ => panic!("{cl_name}: {}\n{}", describe(st), c.transcript()),
        }
    }
}

// ---------------------------------------------------------------------------
// 6. Graceful stop with clients connected
// ---------------------------------------------------------------------------

fn graceful_stop(sig: i32) {
    let link = Link::Dynamic;
    let (mut srv, port) = server("tcp_server", link, &[]);
    let mut raw = Vec::new();
    for i in 0..2 {
        let s = connect(port);
        (&s).write_all(format!("raw {i}\n").as_bytes()).unwrap();
        wait_eq(&srv, Stream::Stdout, &format!("raw {i}"));
        raw.push(s);
    }
    let mut c = client("tcp_client", link, &[], port, Input::Piped);
    c.write_stdin(b"from tcp_client\n").unwrap();
    wait_eq(&srv, Stream::Stdout, "from tcp_client");

    stop(&mut srv, sig);
    for s in &mut raw {
        assert_eq!(read_to_eof(s), b"", "a client saw data instead of the end of stream");
    }
    // The interactive client learns the server went away (cleanly): a
    // note, status 0.
    exits_with(&mut c, 0);
    assert!(c.stderr_text().contains("closed the connection"), "\n{}", c.transcript());
    let out = srv.stdout_text();
    assert_eq!(
        out.lines().filter(|l| l.starts_with("client closed") && l.ends_with("(server stopping)")).count(),
        3,
        "\n{}",
        srv.transcript()
    );
    assert!(srv.stderr_text().contains("signal received"), "\n{}", srv.transcript());
}

#[test]
fn sigint_stops_tcp_server_gracefully() {
    graceful_stop(libc::SIGINT);
}

#[test]
fn sigterm_stops_tcp_server_gracefully() {
    graceful_stop(libc::SIGTERM);
}

/// Every server example exits 0 on SIGINT and SIGTERM, idle or after work.
#[test]
fn every_server_stops_on_signals() {
    let link = Link::Static;
    let servers = [
        "tcp_server",
        "echo_server",
        "hello_server",
        "chat_room",
        "time_server",
        "udp_server",
        "udp_echo_server",
        "udp_upper_server",
        "udp_server_cpp",
        "heartbeat_monitor",
    ];
    for name in servers {
        for sig in [libc::SIGINT, libc::SIGTERM] {
            let (mut srv, port) = server(name, link, &[]);
            if matches!(name, "chat_room" | "time_server") {
                // A client still connected at the stop, which it sees end.
                let mut s = connect(port);
                stop(&mut srv, sig);
                let _ = read_to_eof(&mut s);
            } else if !name.starts_with("udp") && name != "heartbeat_monitor" {
                // One served client first, still connected at the stop.
                let s = connect(port);
                (&s).write_all(b"x\n").unwrap();
                if name == "tcp_server" {
                    wait_eq(&srv, Stream::Stdout, "x");
                } else {
                    let mut r = BufReader::new(&s);
                    let first = read_line(&mut r);
                    assert!(first == "x" || first == "welcome", "{name}: {first:?}");
                }
                stop(&mut srv, sig);
                let mut s = s;
                let _ = read_to_eof(&mut s);
            } else {
                stop(&mut srv, sig);
            }
        }
    }
}
