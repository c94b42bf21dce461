//! The servers under load and abuse, on loopback:
//!
//! * 100 clients connected to `echo_server` at once, each sending its own
//!   1,000 messages in writes that glue some messages and split others,
//!   with line frames and with `--frame len32` binary messages: each gets
//!   exactly its own bytes back, in order;
//! * a client killed mid-stream (SIGKILL), a client resetting its
//!   connection (SO_LINGER 0), a client that never reads its replies (not
//!   read until it does): the server keeps serving the others;
//! * a server restarted on the same port while its old connections are in
//!   TIME_WAIT binds at once.

mod common;
#[path = "flows/kit.rs"]
mod kit;

use common::*;
use kit::*;
use std::io::{BufReader, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------
// 3. 100 clients at once
// ---------------------------------------------------------------------------

const CLIENTS: usize = 100;
const MESSAGES: usize = 1000;

/// A small deterministic PRNG (xorshift64*), one stream per client.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Wire {
    Line,
    Len32,
}

/// Client `c`'s messages: tagged with the client and the index, of varied
/// lengths; empty ones too. Line messages are text (UTF-8 included) without
/// newlines; len32 ones are any bytes (NULs, newlines, invalid UTF-8).
fn messages(c: usize, wire: Wire) -> Vec<Vec<u8>> {
    let mut rng = Rng::new(c as u64 + 1);
    (0..MESSAGES)
        .map(|j| {
            if j % 97 == 13 {
                return Vec::new();
            }
            let mut m = format!("c{c:03}-m{j:04}-").into_bytes();
            let extra = if j % 250 == 7 { 3000 } else { rng.below(120) as usize };
            match wire {
                Wire::Line => {
                    const ALPHABET: &[&str] = &["a", "b", "z", "0", " ", "\t", "é", "你", "-", "\r"];
                    for k in 0..extra {
                        let s = ALPHABET[rng.below(ALPHABET.len() as u64) as usize];
                        // A `\r` is fine inside a line, not at its end (stripped).
                        m.extend_from_slice(if s == "\r" && k + 1 == extra { b"." } else { s.as_bytes() });
                    }
                }
                Wire::Len32 => {
                    m.extend((0..extra).map(|_| match rng.below(6) {
                        0 => 0u8,
                        1 => b'\n',
                        2 => 0xff,
                        _ => rng.next() as u8,
                    }));
                }
            }
            m
        })
        .collect()
}

fn encode(msgs: &[Vec<u8>], wire: Wire) -> Vec<u8> {
    let mut out = Vec::new();
    for m in msgs {
        match wire {
            Wire::Line => {
                out.extend_from_slice(m);
                out.push(b'\n');
            }
            Wire::Len32 => {
                out.extend_from_slice(&(m.len() as u32).to_be_bytes());
                out.extend_from_slice(m);
            }
        }
    }
    out
}

/// Splits a byte stream back into messages (for failure messages).
fn decode(mut b: &[u8], wire: Wire) -> Vec<Vec<u8>> {
    let mut v = Vec::new();
    while !b.is_empty() {
        match wire {
            Wire::Line => {
                let i = b.iter().position(|&x| x == b'\n').unwrap_or(b.len());
                v.push(b[..i].to_vec());
                b = &b[(i + 1).min(b.len())..];
            }
            Wire::Len32 => {
                if b.len() < 4 {
                    v.push(b.to_vec());
                    break;
                }
                let n = u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize;
                let end = (4 + n).min(b.len());
                v.push(b[4..end].to_vec());
                b = &b[end..];
            }
        }
    }
    v
}

/// The sizes of successive writes: small ones (1-8 bytes, splitting
/// messages, even a len32 header) alternating with large ones (up to
/// 2,000 bytes, gluing many messages together).
fn chunks(total: usize, rng: &mut Rng) -> Vec<usize> {
    let mut v = Vec::new();
    let mut left = total;
    let mut small = true;
    while left > 0 {
        let n = if small { 1 + rng.below(8) as usize } else { 50 + rng.below(1950) as usize };
        let n = n.min(left);
        v.push(n);
        left -= n;
        small = !small;
    }
    v
}

fn hundred_clients(wire: Wire, link: Link) {
    let opts: &[&str] = match wire {
        Wire::Line => &[],
        Wire::Len32 => &["--frame", "len32"],
    };
    let (mut srv, port) = server("echo_server", link, opts);

    // Everyone connects before anyone sends.
    let socks: Vec<TcpStream> = (0..CLIENTS)
        .map(|_| {
            let s = connect(port);
            s.set_nodelay(true).unwrap();
            s.set_read_timeout(Some(secs(60))).unwrap();
            s.set_write_timeout(Some(secs(60))).unwrap();
            s
        })
        .collect();
    let pid = srv.pid();
    assert!(
        eventually(default_timeout(), || established_count(pid) == CLIENTS),
        "the server does not hold {CLIENTS} connections at once ({} established)",
        established_count(pid)
    );

    let start = Arc::new(Barrier::new(2 * CLIENTS));
    let mut threads = Vec::new();
    for (c, sock) in socks.into_iter().enumerate() {
        let msgs = messages(c, wire);
        let bytes = Arc::new(encode(&msgs, wire));
        let mut w = sock.try_clone().unwrap();
        let (b, start_w) = (bytes.clone(), start.clone());
        threads.push(std::thread::spawn(move || -> Result<(), String> {
            let mut rng = Rng::new(1000 + c as u64);
            start_w.wait();
            let mut at = 0;
            for n in chunks(b.len(), &mut rng) {
                w.write_all(&b[at..at + n]).map_err(|e| format!("client {c}: write at byte {at}: {e}"))?;
                at += n;
            }
            // Done sending: the server sees the end, sends what is left, closes.
            w.shutdown(Shutdown::Write).map_err(|e| format!("client {c}: shutdown: {e}"))
        }));
        let mut r = sock;
        let start_r = start.clone();
        threads.push(std::thread::spawn(move || -> Result<(), String> {
            start_r.wait();
            let mut got = Vec::with_capacity(bytes.len());
            r.read_to_end(&mut got).map_err(|e| format!("client {c}: read after {} of {} bytes: {e}", got.len(), bytes.len()))?;
            if got[..] != bytes[..] {
                let (want, have) = (decode(&bytes, wire), decode(&got, wire));
                let i = want.iter().zip(&have).position(|(a, b)| a != b).unwrap_or(want.len().min(have.len()));
                return Err(format!(
                    "client {c}: got {} bytes ({} messages) for {} bytes ({} messages); first difference at message {i}: got {:?}, want {:?}",
                    got.len(),
                    have.len(),
                    bytes.len(),
                    want.len(),
                    have.get(i).map(|m| show(m)),
                    want.get(i).map(|m| show(m)),
                ));
            }
            Ok(())
        }));
    }
    let errors: Vec<String> = threads.into_iter().filter_map(|t| t.join().expect("client thread panicked").err()).collect();
    assert!(errors.is_empty(), "{} of {} client threads failed:\n{}\n{}", errors.len(), 2 * CLIENTS, errors.join("\n"), srv.transcript());
    // Still serving, and still a clean stop.
    stop(&mut srv, libc::SIGTERM);
}

#[test]
fn hundred_clients_line_frames() {
    hundred_clients(Wire::Line, Link::Static);
}

#[test]
fn hundred_clients_len32_binary() {
    hundred_clients(Wire::Len32, Link::Dynamic);
}

/// Ten tcp_client processes at once against the print server and the echo
/// server: each client's lines arrive in order (interleaved with the
/// others'), and each client gets only its own echoes.
#[test]
fn ten_tcp_client_processes_at_once() {
    const N: usize = 10;
    const EACH: usize = 200;
    let link = Link::Static;
    let input = |c: usize| -> Vec<u8> { (0..EACH).flat_map(|j| format!("client {c} line {j}\n").into_bytes()).collect() };
    for name in ["tcp_server", "echo_server"] {
        let (mut srv, port) = server(name, link, &[]);
        let mut cs: Vec<Proc> = (0..N).map(|_| client("tcp_client", link, &[], port, Input::Piped)).collect();
        assert!(eventually(default_timeout(), || established_count(srv.pid()) == N), "{name} does not hold {N} connections");
        for (c, p) in cs.iter_mut().enumerate() {
            p.write_stdin(&input(c)).unwrap();
        }
        for p in &mut cs {
            p.close_stdin();
        }
        for (c, p) in cs.iter_mut().enumerate() {
            exits_with(p, 0);
            let want = if name == "echo_server" { String::from_utf8(input(c)).unwrap() } else { String::new() };
            assert_eq!(p.stdout_text(), want, "client {c} of {name}");
        }
        if name == "tcp_server" {
            assert!(eventually(default_timeout(), || srv.stdout_text().matches("(peer closed)").count() == N), "\n{}", srv.transcript());
            let out = srv.stdout_text();
            for c in 0..N {
                let tag = format!("client {c} line ");
                let got: Vec<&str> = out.lines().filter(|l| l.starts_with(&tag)).collect();
                let want: Vec<String> = (0..EACH).map(|j| format!("{tag}{j}")).collect();
                assert_eq!(got, want, "the lines of client {c} as the server printed them");
            }
        }
        stop(&mut srv, libc::SIGTERM);
    }
}

// ---------------------------------------------------------------------------
// 4. Killed, resetting and stuck clients; restart on the same port
// ---------------------------------------------------------------------------

/// `line-{i}` for i in `from..to`, one per line.
fn numbered(from: usize, to: usize) -> Vec<u8> {
    (from..to).flat_map(|i| format!("line-{i}\n").into_bytes()).collect()
}

/// The server's lines between `client ip = 127.0.0.1 port = {p}` and its
/// `client closed` line (the print handler, one client talking at a time).
fn printed_for(out: &str, p: u16) -> (Vec<String>, String) {
    let open = format!("client ip = 127.0.0.1 port = {p}");
    let close = format!("client closed ip = 127.0.0.1 port = {p} (");
    let mut it = out.lines().skip_while(|l| *l != open).skip(1);
    let mut msgs = Vec::new();
    for l in it.by_ref() {
        if l.starts_with(&close) {
            return (msgs, l.to_string());
        }
        msgs.push(l.to_string());
    }
    panic!("no {close:?} line in\n{out}");
}

/// Lines of about 1 KB: `line-{i}-xxx...`.
fn long_line(i: usize) -> String {
    format!("line-{i}-{}", "x".repeat(1000))
}

/// Follows a growing output file, like `tail -f`.
struct Follow {
    path: std::path::PathBuf,
    /// Where the next search starts.
    pos: u64,
}

impl Follow {
    fn new(path: &std::path::Path) -> Follow {
        Follow { path: path.to_path_buf(), pos: 0 }
    }

    /// Polls (bounded, every 20 ms) until `needle` was written after the
    /// previous match; the next search starts after this one.
    #[track_caller]
    fn wait(&mut self, needle: &str) {
        use std::io::{Seek, SeekFrom};
        let deadline = Instant::now() + default_timeout();
        loop {
            let mut buf = Vec::new();
            if let Ok(mut f) = std::fs::File::open(&self.path) {
                f.seek(SeekFrom::Start(self.pos)).unwrap();
                f.read_to_end(&mut buf).unwrap();
            }
            if let Some(i) = String::from_utf8_lossy(&buf).find(needle) {
                self.pos += (i + needle.len()) as u64;
                return;
            }
            // Keep a needle's length of overlap for a match cut by a write.
            self.pos += buf.len().saturating_sub(needle.len()) as u64;
            assert!(Instant::now() < deadline, "{needle:?} never appeared in {}", self.path.display());
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

#[test]
fn killed_tcp_client_mid_stream() {
    let link = Link::Dynamic;
    // The print server's stdout goes to a file: megabytes of it.
    let (mut srv, out) = spawn_to_file(&example("tcp_server", link), &["127.0.0.1", "0"], Input::Null);
    let port = srv.wait_listening();
    let mut follow = Follow::new(&out);
    let keep = connect(port);
    (&keep).write_all(b"before\n").unwrap();
    follow.wait("before\n");

    // 20 MB of input: more than the kernel buffers between the two hold.
    const LINES: usize = 20_000;
    let input: Vec<u8> = (0..LINES).flat_map(|i| (long_line(i) + "\n").into_bytes()).collect();
    let mut c = client("tcp_client", link, &[], port, input);
    follow.wait("line-1000-");
    // Freeze the server so the client is surely blocked mid-send, kill the
    // client, then let the server go on with what reached it.
    srv.signal(libc::SIGSTOP);
    c.signal(libc::SIGKILL);
    let st = c.wait_exit(default_timeout());
    assert_eq!(st.code(), None, "tcp_client should have died of SIGKILL");
    srv.signal(libc::SIGCONT);
    follow.wait("client closed");

    // What arrived is whole lines, in order, and not everything.
    let text = String::from_utf8(file_bytes(&out)).expect("the server printed what was sent: ASCII");
    let cport = text.lines().filter(|l| l.starts_with("client ip = ")).nth(1).map(port_eq).expect("a second client");
    let (msgs, closed) = printed_for(&text, cport);
    assert!(msgs.len() >= 1000 && msgs.len() < LINES, "{} of {LINES} lines arrived: the kill was not mid-stream", msgs.len());
    for (i, m) in msgs.iter().enumerate() {
        assert!(*m == long_line(i), "line {i} of the killed client is not what was sent: {:?}", &m[..m.len().min(40)]);
    }
    assert!(closed.ends_with("(peer closed)") || closed.ends_with("(error)"), "{closed}");

    // The connected client and a new one are still served.
    (&keep).write_all(b"after the kill\n").unwrap();
    follow.wait("after the kill\n");
    let fresh = connect(port);
    (&fresh).write_all(b"new client\n").unwrap();
    follow.wait("new client\n");
    drop((keep, fresh));
    stop(&mut srv, libc::SIGTERM);
}

#[test]
fn killed_tcp_client_with_unread_echoes() {
    let link = Link::Dynamic;
    let (mut srv, port) = server("echo_server", link, &[]);
    let keep = connect(port);
    let mut keep_r = BufReader::new(keep.try_clone().unwrap());
    (&keep).write_all(b"before\n").unwrap();
    assert_eq!(read_line(&mut keep_r), "before");

    // It dies with lines and their echoes still on the way: the kernel
    // resets a connection closed with unread data.
    let mut c = client("tcp_client", link, &[], port, Input::Piped);
    c.write_stdin(&numbered(0, 6000)).unwrap();
    wait_eq(&c, Stream::Stdout, "line-1500");
    c.signal(libc::SIGKILL);
    c.wait_exit(default_timeout());

    (&keep).write_all(b"after the kill\n").unwrap();
    assert_eq!(read_line(&mut keep_r), "after the kill");
    echo_roundtrip(port, "new client");
    drop(keep);
    stop(&mut srv, libc::SIGTERM);
}

#[test]
fn resetting_clients_do_not_disturb_the_server() {
    let link = Link::Dynamic;
    // Print server: the reset is logged as the end of that client.
    let (mut srv, port) = server("tcp_server", link, &[]);
    let keep = connect(port);
    (&keep).write_all(b"keep\n").unwrap();
    wait_eq(&srv, Stream::Stdout, "keep");
    let s = connect(port);
    let rport = s.local_addr().unwrap().port();
    (&s).write_all(b"about to reset\n").unwrap();
    wait_eq(&srv, Stream::Stdout, "about to reset");
    reset(s);
    let closed = wait_eq_prefix(&srv, &format!("client closed ip = 127.0.0.1 port = {rport} ("));
    assert!(closed.ends_with("(error)") || closed.ends_with("(peer closed)"), "{closed}");
    (&keep).write_all(b"still here\n").unwrap();
    wait_eq(&srv, Stream::Stdout, "still here");
    let fresh = connect(port);
    (&fresh).write_all(b"fresh\n").unwrap();
    wait_eq(&srv, Stream::Stdout, "fresh");
    drop((keep, fresh));
    stop(&mut srv, libc::SIGINT);

    // Echo server: resets with unread echoes, and with a message half sent.
    let (mut srv, port) = server("echo_server", link, &[]);
    let keep = connect(port);
    let mut keep_r = BufReader::new(keep.try_clone().unwrap());
    for round in 0..20 {
        let s = connect(port);
        (&s).write_all(&numbered(0, 500)).unwrap();
        (&s).write_all(b"half a mess").unwrap();
        reset(s);
        (&keep).write_all(format!("round {round}\n").as_bytes()).unwrap();
        assert_eq!(read_line(&mut keep_r), format!("round {round}"));
    }
    echo_roundtrip(port, "fresh after resets");
    drop(keep);
    stop(&mut srv, libc::SIGTERM);
}

/// A client that sends a lot and never reads its echoes must not stall
/// the others, nor grow the server: once its replies pass the high-water
/// mark the server stops reading it (its writes block, as against any
/// epoll server), and it is not dropped.
#[test]
fn client_not_reading_is_paused_without_stalling_others() {
    let link = Link::Dynamic;
    let (mut srv, port) = server("echo_server", link, &["--frame", "line"]);
    let hog = connect(port);
    hog.set_write_timeout(Some(Duration::from_secs(2))).unwrap();
    let writer = {
        let mut h = hog.try_clone().unwrap();
        std::thread::spawn(move || -> Option<std::io::ErrorKind> {
            let chunk = numbered(0, 10_000);
            // Bounded: at most ~64 MB; the error once the server stops reading.
            for _ in 0..650 {
                if let Err(e) = h.write_all(&chunk) {
                    return Some(e.kind());
                }
            }
            None
        })
    };
    for i in 0..20 {
        echo_roundtrip(port, &format!("others are served {i}"));
    }
    let blocked = writer.join().unwrap();
    assert!(
        matches!(blocked, Some(std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut)),
        "the hog's writes should block (not be reset): {blocked:?}\n{}",
        srv.transcript()
    );
    echo_roundtrip(port, "while the hog is paused");
    assert!(!srv.stderr_text().contains("dropping"), "{}", srv.transcript());
    drop(hog);
    echo_roundtrip(port, "after the hog");
    stop(&mut srv, libc::SIGTERM);
}

#[test]
fn restarted_server_binds_the_same_port_at_once() {
    let link = Link::Dynamic;
    // `quit` (a line: echo_server is raw by default) makes the server close
    // first: its side keeps TIME_WAIT.
    let (mut srv, port) = server("echo_server", link, &["--frame", "line"]);
    for i in 0..5 {
        let mut s = connect(port);
        s.write_all(format!("hello {i}\nquit\n").as_bytes()).unwrap();
        assert_eq!(read_to_eof(&mut s), format!("hello {i}\n").as_bytes());
    }
    assert!(eventually(default_timeout(), || has_time_wait(port)), "no TIME_WAIT on port {port}: the scenario did not happen");
    stop(&mut srv, libc::SIGTERM);

    for round in 0..2 {
        let ps = port.to_string();
        let (mut again, p2) = start(&example("echo_server", link), &["--frame", "line", "127.0.0.1", &ps]);
        assert_eq!(p2, port);
        echo_roundtrip(port, &format!("after restart {round}"));
        let mut s = connect(port);
        s.write_all(b"quit\n").unwrap();
        read_to_eof(&mut s);
        stop(&mut again, libc::SIGTERM);
    }
}

fn wait_eq_prefix(p: &Proc, prefix: &str) -> String {
    p.wait_for_line_matching(Stream::Stdout, |l| l.starts_with(prefix), &format!("a line starting with {prefix:?}"), default_timeout())
}
