//! The primitive C examples (`c_examples/prim_*.c`) built statically and
//! dynamically, with gcc and (when installed) clang, run as client and server
//! on loopback with scripted stdin; both transcripts are checked exactly.

mod common;

use common::*;
use std::process::Command;

/// The scripted stdin: an empty line and a space on the way, quit at the end.
const INPUT: &str = "hello\n\nhello world\nquit\n";

/// The frames every pairing is run with (`None` = the default, line).
const FRAMES: [Option<&str>; 3] = [None, Some("fixed:32"), Some("len32")];

#[derive(Clone, Copy)]
enum Proto {
    Tcp,
    Udp,
}

impl Proto {
    fn server(self) -> &'static str {
        match self {
            Proto::Tcp => "prim_tcp_server",
            Proto::Udp => "prim_udp_server",
        }
    }
    fn client(self) -> &'static str {
        match self {
            Proto::Tcp => "prim_tcp_client",
            Proto::Udp => "prim_udp_client",
        }
    }
}

/// Where the server listens and how the client reaches it.
struct Net {
    /// The server's host argument (None = its default, 0.0.0.0).
    server_host: Option<&'static str>,
    /// What the server's readiness line shows.
    shown: &'static str,
    /// The client's host argument.
    connect: &'static str,
    /// The client's address as the server prints it.
    client_ip: &'static str,
}

const V4: Net = Net { server_host: None, shown: "0.0.0.0", connect: "127.0.0.1", client_ip: "127.0.0.1" };
const V6: Net = Net { server_host: Some("::1"), shown: "::1", connect: "::1", client_ip: "::1" };

fn nets() -> Vec<Net> {
    if has_ipv6_loopback() {
        vec![V4, V6]
    } else {
        eprintln!("note: no IPv6 loopback here, testing 127.0.0.1 only");
        vec![V4]
    }
}

/// Both programs of `proto` built with `compiler` and `link`.
fn pair(proto: Proto, compiler: Compiler, link: Link) -> (std::path::PathBuf, std::path::PathBuf) {
    (build_c_with(compiler, proto.server(), link), build_c_with(compiler, proto.client(), link))
}

/// Starts the server (options first, as the tutorials write them) and
/// returns it with its port, after checking the readiness line.
fn start_server(bin: &std::path::Path, opts: &[&str], net: &Net) -> (Proc, u16) {
    let mut args: Vec<&str> = opts.to_vec();
    args.extend(net.server_host);
    args.push("0");
    let server = spawn(bin, &args, Input::Null);
    let port = server.wait_listening();
    let name = bin.file_name().unwrap().to_string_lossy();
    let all = server.stderr_text();
    assert!(
        all.contains(&format!("{name}: listening on {} port {port}\n", net.shown)),
        "unexpected readiness line\n{}",
        server.transcript()
    );
    (server, port)
}

/// The messages a client sends for `input`: every line up to and including
/// the first quit word.
fn messages<'a>(input: &'a str, quit: &str) -> Vec<&'a str> {
    let mut v = Vec::new();
    for l in input.lines() {
        v.push(l);
        if l == quit {
            break;
        }
    }
    v
}

/// Splits "client ip = IP port = N<rest>" into (IP, N, rest); panics otherwise.
fn split_client_line<'a>(line: &'a str, what: &str) -> (&'a str, u16, &'a str) {
    let body = line.strip_prefix("client ip = ").unwrap_or_else(|| panic!("{what}: no \"client ip = \" in {line:?}"));
    let (ip, rest) = body.split_once(" port = ").unwrap_or_else(|| panic!("{what}: no \" port = \" in {line:?}"));
    let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
    let port = digits.parse().unwrap_or_else(|_| panic!("{what}: bad port in {line:?}"));
    (ip, port, &rest[digits.len()..])
}

/// One client/server session: `opts` go to both programs (before the
/// positional arguments for the server, after them for the client).
fn session(proto: Proto, compiler: Compiler, link: Link, opts: &[&str], net: &Net, input: &str, quit: &str) {
    let (sbin, cbin) = pair(proto, compiler, link);
    let (mut server, port) = start_server(&sbin, opts, net);
    let port_s = port.to_string();
    let mut cargs = vec![net.connect, port_s.as_str()];
    cargs.extend(opts);
    let mut client = spawn(&cbin, &cargs, input);
    let cst = client.wait_exit(default_timeout());
    let ctx = format!("{} {link} {compiler} {opts:?} via {}", proto.client(), net.connect);
    assert_exit(&client, cst, 0);
    let msgs = messages(input, quit);
    let want: String = msgs.iter().map(|m| format!("echo: {m}\n")).collect();
    assert_eq!(client.stdout_text(), want, "{ctx}: client stdout\n{}", client.transcript());

    let ended_by_quit = msgs.last() == Some(&quit);
    if matches!(proto, Proto::Udp) && !ended_by_quit {
        // A UDP server cannot see a client go away; it is killed on drop.
        return;
    }
    let sst = server.wait_exit(default_timeout());
    assert_exit(&server, sst, 0);
    let out = server.stdout_text();
    let ctx = format!("{ctx}: server stdout\n{}\n{}", server.transcript(), client.transcript());
    match proto {
        Proto::Tcp => {
            let (first, rest) = out.split_once('\n').unwrap_or_else(|| panic!("{ctx}"));
            let (ip, _, tail) = split_client_line(first, &ctx);
            assert_eq!((ip, tail), (net.client_ip, ""), "{ctx}");
            let want: String = msgs.iter().map(|m| format!("received: {m}\n")).collect::<String>() + "client closed\n";
            assert_eq!(rest, want, "{ctx}");
        }
        Proto::Udp => {
            let lines: Vec<&str> = out.lines().collect();
            assert_eq!(lines.len(), msgs.len(), "{ctx}");
            let mut ports = Vec::new();
            for (l, m) in lines.iter().zip(&msgs) {
                let (ip, p, tail) = split_client_line(l, &ctx);
                assert_eq!((ip, tail), (net.client_ip, format!(": {m}").as_str()), "{ctx}");
                ports.push(p);
            }
            ports.dedup();
            assert_eq!(ports.len(), 1, "one client, one source port: {ctx}");
            assert!(out.ends_with('\n'), "{ctx}");
        }
    }
}

/// Every frame on every loopback address for one build of one protocol.
fn matrix(proto: Proto, compiler: Compiler, link: Link) {
    if !compiler.available(Lang::C) {
        eprintln!("note: {} not installed, skipped", compiler.program(Lang::C));
        return;
    }
    for net in nets() {
        for frame in FRAMES {
            let opts: Vec<&str> = frame.map(|f| vec!["--frame", f]).unwrap_or_default();
            session(proto, compiler, link, &opts, &net, INPUT, "quit");
        }
    }
}

macro_rules! matrix_tests {
    ($($name:ident: $proto:ident $compiler:ident $link:ident;)*) => {$(
        #[test]
        fn $name() {
            matrix(Proto::$proto, Compiler::$compiler, Link::$link);
        }
    )*};
}

matrix_tests! {
    tcp_gcc_static: Tcp Gcc Static;
    tcp_gcc_dynamic: Tcp Gcc Dynamic;
    tcp_clang_static: Tcp Clang Static;
    tcp_clang_dynamic: Tcp Clang Dynamic;
    udp_gcc_static: Udp Gcc Static;
    udp_gcc_dynamic: Udp Gcc Dynamic;
    udp_clang_static: Udp Clang Static;
    udp_clang_dynamic: Udp Clang Dynamic;
}

#[test]
fn tcp_end_of_input_without_quit_word() {
    session(Proto::Tcp, Compiler::Gcc, Link::Dynamic, &[], &V4, "one\ntwo\n", "quit");
}

#[test]
fn tcp_and_udp_with_another_quit_word() {
    let input = "quit\nbye\nnot sent\n";
    session(Proto::Tcp, Compiler::Gcc, Link::Dynamic, &["--quit", "bye"], &V4, input, "bye");
    session(Proto::Udp, Compiler::Gcc, Link::Dynamic, &["--quit", "bye"], &V4, input, "bye");
}

#[test]
fn udp_end_of_input_leaves_the_server_running() {
    session(Proto::Udp, Compiler::Gcc, Link::Static, &[], &V4, "one\ntwo\n", "quit");
}

#[test]
fn dual_stack_server_shows_ipv4_clients_as_ipv4() {
    if !has_ipv6_loopback() {
        eprintln!("note: no IPv6 here, skipped");
        return;
    }
    let net = Net { server_host: Some("::"), shown: "::", connect: "127.0.0.1", client_ip: "127.0.0.1" };
    session(Proto::Tcp, Compiler::Gcc, Link::Dynamic, &[], &net, INPUT, "quit");
    session(Proto::Udp, Compiler::Gcc, Link::Dynamic, &[], &net, INPUT, "quit");
}

#[test]
fn dash_4_and_dash_6_select_the_family() {
    if !has_ipv6_loopback() {
        eprintln!("note: no IPv6 here, skipped");
        return;
    }
    let net = Net { server_host: None, shown: "::", connect: "::1", client_ip: "::1" };
    session(Proto::Tcp, Compiler::Gcc, Link::Dynamic, &["-6"], &net, INPUT, "quit");
    session(Proto::Udp, Compiler::Gcc, Link::Dynamic, &["-6"], &net, INPUT, "quit");
    session(Proto::Tcp, Compiler::Gcc, Link::Dynamic, &["-4"], &V4, INPUT, "quit");
}

#[test]
fn command_line_errors_and_help() {
    for p in ["prim_tcp_client", "prim_udp_client", "prim_tcp_server", "prim_udp_server"] {
        let bin = build_c(p, Link::Dynamic);
        let server = p.ends_with("server");

        let mut bad = spawn(&bin, &["127.0.0.1", "80a"], Input::Null);
        let st = bad.wait_exit(default_timeout());
        assert_exit(&bad, st, 2);
        let err = bad.stderr_text();
        let synopsis = if server { "[options] [<host>] <port>" } else { "[options] <host> <port>" };
        assert!(err.starts_with(&format!("usage: {p} {synopsis}: port \"80a\" is not a number")), "{}", bad.transcript());
        assert_eq!(bad.stdout_text(), "", "{}", bad.transcript());

        let mut help = spawn(&bin, &["--help"], Input::Null);
        let st = help.wait_exit(default_timeout());
        assert_exit(&help, st, 0);
        assert!(help.stdout_text().starts_with(&format!("usage: {p} ")), "{}", help.transcript());
    }
}

/// A port nobody listens on (bound, then released).
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[test]
fn clients_report_a_refused_connection() {
    let port = closed_port().to_string();
    let mut c = spawn(build_c("prim_tcp_client", Link::Static), &["127.0.0.1", &port], INPUT);
    let st = c.wait_exit(default_timeout());
    assert_exit(&c, st, 1);
    let err = c.stderr_text();
    assert!(err.starts_with("prim_tcp_client: connect 127.0.0.1:") && err.contains("refused"), "{}", c.transcript());

    // UDP: a connected socket hears the ICMP "port unreachable".
    let port = std::net::UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port().to_string();
    let mut c = spawn(build_c("prim_udp_client", Link::Static), &["127.0.0.1", &port], INPUT);
    let st = c.wait_exit(default_timeout());
    assert_exit(&c, st, 1);
    let err = c.stderr_text();
    assert!(err.starts_with("prim_udp_client: recvfrom: ") && err.contains("refused"), "{}", c.transcript());
}

#[test]
fn fixed_frame_rejects_a_long_message_and_the_server_sees_the_close() {
    let (sbin, cbin) = pair(Proto::Tcp, Compiler::Gcc, Link::Dynamic);
    let (mut server, port) = start_server(&sbin, &["--frame", "fixed:32"], &V4);
    let long = "x".repeat(40);
    let input = format!("short\n{long}\nquit\n");
    let mut client = spawn(&cbin, &["--frame", "fixed:32", "127.0.0.1", &port.to_string()], input.as_str());
    let st = client.wait_exit(default_timeout());
    assert_exit(&client, st, 1);
    assert_eq!(client.stdout_text(), "echo: short\n", "{}", client.transcript());
    let err = client.stderr_text();
    assert!(err.contains("prim_tcp_client: message of 40 bytes is longer than fixed:32"), "{}", client.transcript());
    let st = server.wait_exit(default_timeout());
    assert_exit(&server, st, 0);
    assert!(server.stdout_text().ends_with("received: short\nclient closed\n"), "{}", server.transcript());
}

/// The tcp client keeps going after its server was killed: it must exit
/// with an error message, never die of SIGPIPE.
#[test]
fn tcp_client_survives_a_killed_server() {
    for link in [Link::Static, Link::Dynamic] {
        let (sbin, cbin) = pair(Proto::Tcp, Compiler::Gcc, link);
        let (mut server, port) = start_server(&sbin, &[], &V4);
        let mut client = spawn(&cbin, &["127.0.0.1", &port.to_string()], Input::Piped);
        client.write_stdin(b"hello\n").unwrap();
        client.wait_for_line(Stream::Stdout, "echo: hello", default_timeout());
        server.kill();
        // The client may already be gone when the later lines arrive.
        let _ = client.write_stdin(b"world\nagain\nand again\n");
        client.close_stdin();
        let st = client.wait_exit(default_timeout());
        assert_exit(&client, st, 1);
        let err = client.stderr_text();
        assert!(
            err.contains("prim_tcp_client: ") && (err.contains("closed the connection") || err.contains("send to ")),
            "{link}: no error message\n{}",
            client.transcript()
        );
    }
}

/// Sends until three sends have failed on a connection whose server was
/// killed: the second failure onwards is EPIPE, which kills a program with
/// SIGPIPE unless the library sends with MSG_NOSIGNAL.
const SIGPIPE_PROBE: &str = r#"
#include <stdio.h>
#include <stdlib.h>

#include "sockflow.h"

int main(int argc, char **argv)
{
    sockflow_tcp *t = NULL;
    char go[16], why[256];
    int i, rc = 0, errors = 0;

    if (argc != 3)
        return 2;
    rc = sockflow_tcp_connect(argv[1], atoi(argv[2]), 5000, &t);
    if (rc != 0)
        return 3;
    printf("connected\n");
    fflush(stdout);
    if (fgets(go, sizeof go, stdin) == NULL)
        return 4;
    for (i = 0; i < 1000000 && errors < 3; i++) {
        int r = sockflow_tcp_send(t, "x\n", 2);
        if (r < 0) {
            (void)sockflow_last_error(why, sizeof why);
            printf("send %d failed: %s: %s\n", errors + 1, sockflow_strerror(r), why);
            errors++;
            rc = r;
        }
    }
    printf("%d errors\n", errors);
    sockflow_tcp_close(t);
    return errors == 3 ? sockflow_exit_code(rc) : 5;
}
"#;

#[test]
fn sends_to_a_vanished_peer_fail_without_sigpipe() {
    let dir = tmp_dir("probe-src");
    let src = dir.join("sigpipe_probe.c");
    std::fs::write(&src, SIGPIPE_PROBE).unwrap();
    for link in [Link::Static, Link::Dynamic] {
        let probe = CProgram::new(src.to_str().unwrap()).link(link).build();
        let sbin = build_c("prim_tcp_server", link);
        let (mut server, port) = start_server(&sbin, &[], &V4);
        let mut p = spawn(&probe, &["127.0.0.1", &port.to_string()], Input::Piped);
        p.wait_for_line(Stream::Stdout, "connected", default_timeout());
        server.wait_for_line(Stream::Stdout, "client ip = ", default_timeout());
        server.kill();
        p.write_stdin(b"go\n").unwrap();
        let st = p.wait_exit(default_timeout());
        assert!(st.code().is_some(), "{link}: the probe died of {}\n{}", describe(st), p.transcript());
        assert_exit(&p, st, 1);
        let out = p.stdout_text();
        assert!(out.contains("send 3 failed: ") && out.ends_with("3 errors\n"), "{link}\n{}", p.transcript());
    }
}

/// The pairs under valgrind (memcheck): no invalid access, no definite leak.
#[test]
fn pairs_are_clean_under_valgrind() {
    let Some(valgrind) = which("valgrind") else {
        eprintln!("note: valgrind not installed, skipped");
        return;
    };
    for proto in [Proto::Tcp, Proto::Udp] {
        let (sbin, cbin) = pair(proto, Compiler::Gcc, Link::Static);
        let vg = |bin: &std::path::Path, args: &[&str]| {
            let mut c = Command::new(&valgrind);
            c.args(["-q", "--error-exitcode=99", "--leak-check=full", "--errors-for-leak-kinds=definite"]).arg(bin).args(args);
            c
        };
        let mut server = spawn_cmd(vg(&sbin, &["127.0.0.1", "0"]), Input::Null);
        let port = server.wait_listening().to_string();
        let mut client = spawn_cmd(vg(&cbin, &["127.0.0.1", &port]), INPUT);
        let st = client.wait_exit(secs(60));
        assert_exit(&client, st, 0);
        let st = server.wait_exit(secs(60));
        assert_exit(&server, st, 0);
        assert_eq!(client.stdout_text(), "echo: hello\necho: \necho: hello world\necho: quit\n", "{}", client.transcript());
    }
}

/// The longest message the default frames allow (65536 bytes) fits the
/// examples' buffers with the NUL `recv_msg` adds: echoed both ways, not
/// refused one byte short of the frame's limit.
#[test]
fn tcp_longest_default_message_is_echoed() {
    let longest = "x".repeat(65536);
    for frame in [None, Some("len32")] {
        let opts: Vec<&str> = frame.map(|f| vec!["--frame", f]).unwrap_or_default();
        session(Proto::Tcp, Compiler::Gcc, Link::Dynamic, &opts, &V4, &format!("{longest}\nquit\n"), "quit");
    }
}
