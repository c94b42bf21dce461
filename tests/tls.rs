//! TLS end to end: certificates made here with rcgen (a CA, a server
//! certificate for localhost/127.0.0.1, a client certificate; nothing
//! committed that could expire), sockflow's examples against each other
//! and against `openssl s_server`/`s_client` and Python's `ssl`, and the
//! failures: wrong CA, wrong host name, plaintext on either side, a peer
//! stalling mid-handshake. Loopback only; every process ended by its PID.

#[path = "common/certs.rs"]
mod certs;
mod common;
#[path = "flows/kit.rs"]
mod kit;

use certs::{has_openssl, openssl_server, Certs};
use common::*;
use kit::*;
use std::net::TcpListener;
use std::process::Command;

#[test]
fn tcp_client_talks_to_openssl_s_server() {
    if !has_openssl() {
        eprintln!("skipped: no openssl");
        return;
    }
    let c = Certs::new("client-openssl");
    let (_s, port) = openssl_server(&c, "server", &[]);
    let ca = c.path("ca.pem");
    let mut p = spawn(example("tcp_client", Link::Static), &["--tls-ca", &ca, "localhost", &port.to_string()], Input::Piped);
    p.write_stdin(b"hello tls\n").unwrap();
    wait_eq(&p, Stream::Stdout, "slt olleh");
    p.write_stdin(b"quit\n").unwrap();
    exits_with(&mut p, 0);
}

/// The client's one error line (stderr) and its exit status.
fn fails(p: &mut Proc, want: &str) {
    let st = p.wait_exit(default_timeout());
    assert!(!st.success(), "expected a failure\n{}", p.transcript());
    assert!(p.stderr_text().contains(want), "expected {want:?} on stderr\n{}", p.transcript());
}

#[test]
fn wrong_ca_wrong_name_and_expired_are_tls_errors() {
    if !has_openssl() {
        eprintln!("skipped: no openssl");
        return;
    }
    let c = Certs::new("wrong-ca");
    let (_s, port) = openssl_server(&c, "server", &[]);
    let port = port.to_string();
    let mut p = spawn(example("tcp_client", Link::Static), &["--tls-ca", &c.path("other-ca.pem"), "127.0.0.1", &port], "x\n");
    fails(&mut p, &format!("tls handshake with 127.0.0.1:{port}: invalid peer certificate: UnknownIssuer"));
    drop(_s);
    let (_s, port) = openssl_server(&c, "elsewhere", &[]);
    let mut p = spawn(example("tcp_client", Link::Static), &["--tls-ca", &c.path("ca.pem"), "127.0.0.1", &port.to_string()], "x\n");
    fails(&mut p, "invalid peer certificate: certificate not valid for name \"127.0.0.1\"");
    let (_s, port) = openssl_server(&c, "expired", &[]);
    let mut p = spawn(example("tcp_client", Link::Static), &["--tls-ca", &c.path("ca.pem"), "127.0.0.1", &port.to_string()], "x\n");
    fails(&mut p, "invalid peer certificate: certificate expired");
}

#[test]
fn tls_client_to_plaintext_server_fails_cleanly() {
    let c = Certs::new("to-plain");
    let (_srv, port) = server("echo_server", Link::Static, &[]);
    let mut p = spawn(example("tcp_client", Link::Static), &["--tls-ca", &c.path("ca.pem"), "127.0.0.1", &port.to_string()], "x\n");
    fails(&mut p, &format!("tls handshake with 127.0.0.1:{port}: "));
}

#[test]
fn stalled_handshake_times_out() {
    let c = Certs::new("stall");
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port().to_string();
    let mut p =
        spawn(example("tcp_client", Link::Static), &["--timeout", "1000", "--tls-ca", &c.path("ca.pem"), "127.0.0.1", &port], "x\n");
    // Accepted (the kernel's backlog), then never answered.
    fails(&mut p, &format!("tls handshake with 127.0.0.1:{port}: timed out after 1000 ms"));
    drop(l);
}

#[test]
fn bad_files_are_usage_errors_naming_the_file() {
    let c = Certs::new("bad-files");
    let missing = c.path("missing.pem");
    let mut p = spawn(example("tcp_client", Link::Static), &["--tls-ca", &missing, "127.0.0.1", "9"], Input::Null);
    let st = p.wait_exit(default_timeout());
    assert_exit(&p, st, 2);
    assert!(p.stderr_text().contains(&format!("{missing}: ")), "{}", p.transcript());
    // A key where the certificate goes.
    let key = c.path("server.key");
    let mut p = spawn(example("echo_server", Link::Static), &["--tls-cert", &key, "--tls-key", &key, "0"], Input::Null);
    let st = p.wait_exit(default_timeout());
    assert_exit(&p, st, 2);
    assert!(p.stderr_text().contains(&format!("{key}: no certificate in PEM form found")), "{}", p.transcript());
}

/// A TLS echo_server (`extra` options first) on 127.0.0.1.
fn tls_server(c: &Certs, name: &str, extra: &[&str]) -> (Proc, u16) {
    let (cert, key) = (c.path("server.pem"), c.path("server.key"));
    let mut opts = vec!["--tls-cert", &cert, "--tls-key", &key];
    opts.extend_from_slice(extra);
    server(name, Link::Static, &opts)
}

#[test]
fn tcp_client_and_echo_server_over_tls_exact_bytes() {
    let c = Certs::new("echo");
    let (mut s, port) = tls_server(&c, "echo_server", &[]);
    let ca = c.path("ca.pem");
    // A line longer than a TLS record, and bytes of every value but '\n'.
    let long: String = "0123456789abcdef".repeat(3000);
    let odd: String = (1u8..=255).filter(|&b| b != b'\n' && b.is_ascii_graphic()).map(char::from).collect();
    let input = format!("hello\n{long}\n{odd}\n");
    let mut p = spawn(example("tcp_client", Link::Static), &["--tls-ca", &ca, "localhost", &port.to_string()], input.as_str());
    exits_with(&mut p, 0);
    assert_eq!(p.stdout_text(), input, "{}", p.transcript());
    stop(&mut s, libc::SIGTERM);
}

#[test]
fn openssl_s_client_and_python_ssl_talk_to_echo_server() {
    let c = Certs::new("s-client");
    let (mut s, port) = tls_server(&c, "echo_server", &[]);
    let ca = c.path("ca.pem");
    if has_openssl() {
        let mut cmd = Command::new("openssl");
        cmd.args([
            "s_client",
            "-quiet",
            "-verify_return_error",
            "-connect",
            &format!("127.0.0.1:{port}"),
            "-servername",
            "localhost",
            "-CAfile",
            &ca,
        ]);
        let mut p = spawn_cmd(cmd, Input::Piped);
        p.write_stdin(b"from openssl\n").unwrap();
        wait_eq(&p, Stream::Stdout, "from openssl");
        // s_client waits for the server to close, even after its input ends.
        drop(p);
    }
    if which("python3").is_some() {
        let script = format!(
            "import socket, ssl\nctx = ssl.create_default_context(cafile={ca:?})\n\
             with socket.create_connection(('127.0.0.1', {port})) as raw:\n    \
             with ctx.wrap_socket(raw, server_hostname='localhost') as s:\n        \
             s.sendall(b'from python\\n')\n        got = b''\n        \
             while not got.endswith(b'\\n'):\n            got += s.recv(100)\n        print(got.decode(), end='')\n        s.unwrap()\n"
        );
        let mut cmd = Command::new("python3");
        cmd.args(["-c", &script]);
        assert_eq!(run_ok(cmd, default_timeout()), "from python\n");
    }
    stop(&mut s, libc::SIGTERM);
}

#[test]
fn plaintext_client_to_tls_server_is_dropped_and_others_are_served() {
    let c = Certs::new("plain-to-tls");
    let (mut s, port) = tls_server(&c, "echo_server", &[]);
    let ca = c.path("ca.pem");
    // A TLS client first, kept open across the failure.
    let mut good = spawn(example("tcp_client", Link::Static), &["--tls-ca", &ca, "localhost", &port.to_string()], Input::Piped);
    good.write_stdin(b"before\n").unwrap();
    wait_eq(&good, Stream::Stdout, "before");
    let mut plain = client("tcp_client", Link::Static, &[], port, "GET / HTTP/1.0\n");
    plain.wait_exit(default_timeout());
    s.wait_for_line_matching(
        Stream::Stderr,
        |l| l.contains("tls handshake with 127.0.0.1:") && l.contains("closing it"),
        "the server's WARN line",
        default_timeout(),
    );
    good.write_stdin(b"after\n").unwrap();
    wait_eq(&good, Stream::Stdout, "after");
    good.close_stdin();
    exits_with(&mut good, 0);
    stop(&mut s, libc::SIGTERM);
}

#[test]
fn a_client_stalling_mid_handshake_is_dropped_and_others_are_served() {
    let c = Certs::new("server-stall");
    let (mut s, port) = tls_server(&c, "echo_server", &["--timeout", "1000"]);
    let mut stalled = connect(port); // never says a word
    let ca = c.path("ca.pem");
    let mut good = spawn(example("tcp_client", Link::Static), &["--tls-ca", &ca, "localhost", &port.to_string()], "still served\n");
    exits_with(&mut good, 0);
    assert_eq!(good.stdout_text(), "still served\n");
    s.wait_for_line_matching(
        Stream::Stderr,
        |l| l.contains("tls handshake with 127.0.0.1:") && l.contains("not done after 1000 ms"),
        "the WARN line",
        default_timeout(),
    );
    let mut rest = Vec::new();
    assert_eq!(std::io::Read::read_to_end(&mut stalled, &mut rest).unwrap(), 0, "the stalled client is closed");
    stop(&mut s, libc::SIGTERM);
}

#[test]
fn client_certificates_when_the_server_asks() {
    let c = Certs::new("client-auth");
    let ca = c.path("ca.pem");
    let (mut s, port) = tls_server(&c, "echo_server", &["--tls-client-ca", &ca]);
    let port = port.to_string();
    let (cert, key) = (c.path("client.pem"), c.path("client.key"));
    let mut p = spawn(
        example("tcp_client", Link::Static),
        &["--tls-ca", &ca, "--tls-cert", &cert, "--tls-key", &key, "localhost", &port],
        "with a certificate\n",
    );
    exits_with(&mut p, 0);
    assert_eq!(p.stdout_text(), "with a certificate\n", "{}", p.transcript());
    let mut p = spawn(example("tcp_client", Link::Static), &["--tls-ca", &ca, "localhost", &port], "without\n");
    fails(&mut p, "CertificateRequired");
    s.wait_for_line_matching(
        Stream::Stderr,
        |l| l.contains("tls handshake with 127.0.0.1:") && l.contains("closing it"),
        "the WARN line",
        default_timeout(),
    );
    stop(&mut s, libc::SIGTERM);
}

#[test]
fn system_roots_do_not_trust_a_private_ca() {
    let c = Certs::new("system-roots");
    let (mut s, port) = tls_server(&c, "echo_server", &[]);
    let mut p = spawn(example("tcp_client", Link::Static), &["--tls", "localhost", &port.to_string()], "x\n");
    // No system roots at all is an error of its own, naming the fix.
    let st = p.wait_exit(default_timeout());
    assert!(!st.success());
    let err = p.stderr_text();
    assert!(
        err.contains("invalid peer certificate: UnknownIssuer") || err.contains("no system root certificates found"),
        "{}",
        p.transcript()
    );
    stop(&mut s, libc::SIGTERM);
}

/// Every TCP server example with `--tls-cert/--tls-key`, and the clients
/// (stdin, chat, primitives) with `--tls-ca`: each pair talks.
#[test]
fn every_tcp_example_pair_over_tls() {
    let c = Certs::new("examples");
    let ca = c.path("ca.pem");
    // (server, client, client input, a line the client prints)
    let pairs: [(&str, &str, &str, &str); 5] = [
        ("hello_server", "tcp_client", "bob\nexit\n", "Hello bob"),
        ("chat_room", "tcp_client", "ann\n/who\n/quit\n", ""),
        ("time_server", "tcp_client", "", ""),
        ("prim_tcp_server", "prim_tcp_client", "prim\n", "echo: prim"),
        ("echo_server", "prim_tcp_client", "prim echo\n", "echo: prim echo"),
    ];
    for (srv, cli, input, want) in pairs {
        let (mut s, port) = tls_server(&c, srv, &[]);
        let mut p = spawn(example(cli, Link::Static), &["--tls-ca", &ca, "localhost", &port.to_string()], Input::Piped);
        p.write_stdin(input.as_bytes()).unwrap();
        // Whatever it prints first shows the handshake and a record got through.
        let first = next_line(&p, Stream::Stdout);
        assert!(!first.is_empty() || want.is_empty(), "{srv}/{cli}: {first:?}\n{}", p.transcript());
        if !want.is_empty() && first != want {
            wait_eq(&p, Stream::Stdout, want);
        }
        drop(p);
        s.signal(libc::SIGTERM);
        s.wait_exit(default_timeout());
        assert!(!s.stderr_text().contains("tls"), "{srv}: {}", s.transcript());
    }
}

#[test]
fn chat_over_tls() {
    let c = Certs::new("chat");
    let (cert, key, ca) = (c.path("server.pem"), c.path("server.key"), c.path("ca.pem"));
    let (s, port) =
        start_with(&example("chat_server", Link::Static), &["--tls-cert", &cert, "--tls-key", &key, "127.0.0.1", "0"], Input::Piped);
    let mut s = s;
    let mut p = spawn(example("chat_client", Link::Static), &["--tls-ca", &ca, "localhost", &port.to_string()], Input::Piped);
    p.write_stdin(b"hi server\n").unwrap();
    wait_eq(&s, Stream::Stdout, "Client: hi server");
    s.write_stdin(b"hi client\n").unwrap();
    wait_eq(&p, Stream::Stdout, "Server: hi client");
    p.write_stdin(b"quit\n").unwrap();
    exits_with(&mut p, 0);
}

#[test]
fn tls_options_parse_and_reach_c() {
    use sockflow::args::{parse, Role};
    use sockflow::Code;
    let c = Certs::new("args");
    let (cert, key, ca) = (c.path("server.pem"), c.path("server.key"), c.path("ca.pem"));
    let a = parse(Role::Server, "s", &["--tls-cert", &cert, "--tls-key", &key, "--tls-client-ca", &ca, "0"]).unwrap();
    assert_eq!((a.tls.cert.as_str(), a.tls.key.as_str(), a.tls.client_ca.as_str()), (cert.as_str(), key.as_str(), ca.as_str()));
    let a = parse(Role::Client, "c", &["--tls", "localhost", "1"]).unwrap();
    assert!(a.tls.enabled && a.tls.ca.is_empty());
    let usage = |role, argv: &[&str], want: &str| {
        let e = parse(role, "p", argv).unwrap_err();
        assert_eq!(e.code, Code::Usage, "{argv:?}: {e}");
        assert!(e.msg.contains(want), "{argv:?}: {e}");
    };
    usage(Role::Server, &["--tls", "0"], "client options");
    usage(Role::Server, &["--tls-cert", &cert, "0"], "--tls-cert and --tls-key go together");
    usage(Role::Client, &["--tls-client-ca", &ca, "localhost", "1"], "--tls-client-ca is a server option");
    usage(Role::Client, &["--tls=yes", "localhost", "1"], "--tls takes no value");
    let long = format!("/{}", "x".repeat(1100));
    usage(Role::Client, &["--tls-ca", &long, "localhost", "1"], "longer than 1023 bytes");
    usage(Role::Server, &["--tls-cert", &ca, "--tls-key", &ca, "0"], &format!("{ca}: no private key in PEM form found"));

    // Through C: sockflow_args_parse fills the paths, a flow reads them back.
    use sockflow::ffi::args::*;
    use std::ffi::{c_char, c_int, CString};
    let argv: Vec<CString> = ["c", "--tls-ca", &ca, "localhost", "1"].iter().map(|s| CString::new(*s).unwrap()).collect();
    let ptrs: Vec<*mut c_char> = argv.iter().map(|s| s.as_ptr() as *mut c_char).collect();
    // SAFETY: a plain C struct, filled by the call.
    let mut out: sockflow_args = unsafe { std::mem::zeroed() };
    assert_eq!(sockflow_args_parse(&mut out, ptrs.len() as c_int, ptrs.as_ptr().cast(), sockflow_role::Client as c_int), 0);
    let got: Vec<u8> = out.tls_ca.iter().take_while(|&&b| b != 0).map(|&b| b as u8).collect();
    assert_eq!(String::from_utf8(got).unwrap(), ca);
    assert_eq!(out.tls, 0, "--tls-ca alone turns TLS on without --tls");
}

#[test]
fn udp_flows_refuse_tls_options() {
    let c = Certs::new("udp");
    let (cert, key, ca) = (c.path("server.pem"), c.path("server.key"), c.path("ca.pem"));
    let mut p = spawn(example("udp_server", Link::Static), &["--tls-cert", &cert, "--tls-key", &key, "127.0.0.1", "0"], Input::Null);
    let st = p.wait_exit(default_timeout());
    assert!(!st.success(), "{}", p.transcript());
    assert!(p.stderr_text().contains("TLS is for TCP"), "{}", p.transcript());
    let mut p = spawn(example("udp_client", Link::Static), &["--tls-ca", &ca, "127.0.0.1", "9"], "x\n");
    let st = p.wait_exit(default_timeout());
    assert!(!st.success(), "{}", p.transcript());
    assert!(p.stderr_text().contains("TLS is for TCP"), "{}", p.transcript());
}

#[test]
fn tls_server_with_workers() {
    let c = Certs::new("workers");
    let (mut s, port) = tls_server(&c, "echo_server", &["--workers", "2"]);
    let ca = c.path("ca.pem");
    let clients: Vec<Proc> = (0..4)
        .map(|i| {
            spawn(example("tcp_client", Link::Static), &["--tls-ca", &ca, "localhost", &port.to_string()], format!("client {i}\n").as_str())
        })
        .collect();
    for (i, mut p) in clients.into_iter().enumerate() {
        exits_with(&mut p, 0);
        assert_eq!(p.stdout_text(), format!("client {i}\n"), "{}", p.transcript());
    }
    stop(&mut s, libc::SIGTERM);
}

/// Greets with more than rustls buffers during the handshake (64 KiB).
struct BigGreeting;
impl sockflow::server::Handler for BigGreeting {
    fn on_connect(&self, c: &mut sockflow::server::Conn<'_>) -> sockflow::server::Action {
        for _ in 0..GREETING / 50_000 {
            c.send(&[b'g'; 50_000]).unwrap();
        }
        sockflow::server::Action::Continue
    }
    fn on_message(&self, _: &mut sockflow::server::Conn<'_>, _: &[u8]) -> sockflow::server::Action {
        sockflow::server::Action::Continue
    }
}
const GREETING: usize = 300_000;

#[test]
fn a_greeting_bigger_than_the_handshake_buffer_arrives_whole() {
    use sockflow::args::{parse, Role};
    use sockflow::server::{tcp::TcpServer, Config};
    let c = Certs::new("big-greeting");
    let (cert, key, ca) = (c.path("server.pem"), c.path("server.key"), c.path("ca.pem"));
    let a = parse(Role::Server, "t", &["--tls-cert", &cert, "--tls-key", &key, "--frame", "raw", "127.0.0.1", "0"]).unwrap();
    let cfg = Config { log: None, ..Config::from_args(&a) };
    let s = TcpServer::from_args(&a, cfg, std::sync::Arc::new(BigGreeting)).unwrap();
    let (h, port) = (s.handle(), s.local_addr().port());
    let t = std::thread::spawn(move || s.run());
    let a = parse(Role::Client, "t", &["--tls-ca", &ca, "--frame", "raw", "localhost", &port.to_string()]).unwrap();
    let st = sockflow::tcp::Stream::from_args(&a).unwrap();
    st.set_timeouts(Some(default_timeout()), Some(default_timeout())).unwrap();
    let mut got = 0;
    let mut buf = vec![0u8; 64 * 1024];
    while got < GREETING {
        match st.recv(&mut buf) {
            Ok(n) => got += n,
            Err(e) => panic!("after {got} of {GREETING} bytes: {e}"),
        }
    }
    assert_eq!(got, GREETING);
    h.stop();
    t.join().unwrap().unwrap();
}

/// Four MiB through the echo server over TLS: the client writes far more
/// than the socket buffers and the server's queue hold, so backpressure
/// (paused reads, records waiting for room) runs both ways.
#[test]
fn megabytes_echo_exactly_over_tls() {
    let c = Certs::new("bulk");
    let (mut s, port) = tls_server(&c, "echo_server", &[]);
    let input: String = (0..60_000).map(|i| format!("line {i} {}\n", "x".repeat(i % 120))).collect();
    assert!(input.len() > 4 << 20);
    let mut p =
        spawn(example("tcp_client", Link::Static), &["--tls-ca", &c.path("ca.pem"), "localhost", &port.to_string()], input.as_str());
    let st = p.wait_exit(secs(60));
    assert_exit(&p, st, 0);
    assert!(p.stdout_text() == input, "{} of {} bytes came back\n{}", p.stdout_text().len(), input.len(), p.stderr_text());
    stop(&mut s, libc::SIGTERM);
}
