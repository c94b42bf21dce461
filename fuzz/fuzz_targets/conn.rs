//! Bytes from the fuzzer through a real server's event loop: echo servers
//! (`sockflow::server::tcp::TcpServer` with the built-in `Echo` handler,
//! one per frame) run on 127.0.0.1 in threads for the whole process; each
//! input is written on a new connection in pieces, then half-closed, and
//! the reply read until the server closes (bounded wait).
//!
//! Input: `server` `n` `sizes[n]` `payload...`: `server % 4` picks the
//! frame (line with quit word "quit", raw, len32:64, fixed:8); the write
//! sizes cycle through `sizes` (0 = an empty write).
//!
//! Checked: the server closes the connection after the client's end of
//! stream (no hang), survives (a second connection gets an exact echo) and
//! never sends a byte it should not. What comes back is compared with the
//! frame model (`sockflow_fuzz::model`): raw echoes the input exactly;
//! len32 and fixed echo every valid frame byte for byte, in order; line
//! echoes every line in order, up to the quit word (with either line-ending
//! policy: `\n` always, or the message's own ending). After a clean close
//! (no reset) nothing before the first bad message or the quit word is
//! missing.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sockflow::frame::Frame;
use sockflow::server::builtin::Echo;
use sockflow::server::tcp::TcpServer;
use sockflow::server::Config;
use sockflow_fuzz::{model, split, Event, Input};
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The longest any wait may take before it counts as a hang.
const WAIT: Duration = Duration::from_secs(10);

struct Server {
    frame: Frame,
    quit: &'static str,
    addr: SocketAddr,
    thread: JoinHandle<()>,
}

/// The frames served, with each server's quit word.
const SERVERS: [(&str, &str); 4] = [("line", "quit"), ("raw", ""), ("len32:64", ""), ("fixed:8", "")];

fn servers() -> &'static [Server] {
    static S: OnceLock<Vec<Server>> = OnceLock::new();
    S.get_or_init(|| {
        SERVERS
            .iter()
            .map(|&(spec, quit)| {
                let frame = Frame::parse(spec).unwrap();
                // Log lines are formatted and written, to a sink: the log
                // path runs without flooding the fuzzer's output.
                let cfg = Config { frame, quit: quit.into(), log: Some(sockflow::server::LogTo::writer(std::io::sink())), ..Config::default() };
                let server = TcpServer::bind(&["127.0.0.1:0".parse().unwrap()], cfg, Arc::new(Echo)).expect("bind 127.0.0.1:0");
                let addr = server.local_addr();
                let thread = std::thread::spawn(move || server.run().expect("server run"));
                Server { frame, quit, addr, thread }
            })
            .collect()
    })
}

fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect_timeout(&addr, WAIT).unwrap_or_else(|e| panic!("connect {addr}: {e} (is the server dead?)"));
    s.set_read_timeout(Some(WAIT)).unwrap();
    s.set_write_timeout(Some(WAIT)).unwrap();
    s.set_nodelay(true).unwrap();
    s
}

/// How the server ended the connection.
#[derive(Debug, PartialEq, Eq)]
enum End {
    Eof,
    Reset,
}

/// Reads until the server closes; a wait past `WAIT` is a hang.
fn read_to_end(s: &mut TcpStream, got: &mut Vec<u8>) -> End {
    let deadline = Instant::now() + WAIT;
    let mut buf = [0u8; 4096];
    loop {
        assert!(Instant::now() < deadline, "the server did not close within {WAIT:?} after the client's end of stream");
        match s.read(&mut buf) {
            Ok(0) => return End::Eof,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return End::Reset,
            Err(e) => panic!("read: {e} (no close within {WAIT:?}?)"),
        }
    }
}

/// A second connection gets an exact echo of a known message.
fn assert_alive(server: &Server) {
    assert!(!server.thread.is_finished(), "the {} server's loop ended", server.frame);
    let mut msg = Vec::new();
    server.frame.encode(b"ping", &mut msg).unwrap();
    let mut s = connect(server.addr);
    s.write_all(&msg).unwrap();
    let mut got = vec![0u8; msg.len()];
    s.read_exact(&mut got).unwrap_or_else(|e| panic!("{} server: no echo on a fresh connection: {e}", server.frame));
    assert_eq!(got, msg, "{} server: wrong echo on a fresh connection", server.frame);
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let server = &servers()[usize::from(input.byte()) % SERVERS.len()];
    let n = usize::from(input.byte() % 8);
    let sizes = input.take(n).to_vec();
    let payload = input.rest();

    let mut s = connect(server.addr);
    for piece in split(payload, &sizes) {
        match s.write_all(piece) {
            Ok(()) => {}
            // The server may close first (an over-long message, the quit
            // word): what it sent before is still checked below.
            Err(e) if matches!(e.kind(), ErrorKind::BrokenPipe | ErrorKind::ConnectionReset) => break,
            Err(e) => panic!("write: {e}"),
        }
    }
    let _ = s.shutdown(Shutdown::Write);
    let mut got = Vec::new();
    let end = read_to_end(&mut s, &mut got);
    check_echo(server, payload, &got, end);
    drop(s);
    assert_alive(server);
});

/// `got` is what an echo server may answer to `sent`, ended by `end`.
fn check_echo(server: &Server, sent: &[u8], got: &[u8], end: End) {
    let (events, held) = model(server.frame, sent);
    let mut events: Vec<Event> = events;
    // A last line without its newline is a message too, at end of stream.
    // Whether its trailing `\r` is data is the server's choice, so a last
    // `quit\r` may quit or be echoed (`maybe_quit`).
    let last_unterminated = matches!(server.frame, Frame::Line { .. }) && !held.is_empty();
    let maybe_quit = last_unterminated && !server.quit.is_empty() && held.strip_suffix(b"\r") == Some(server.quit.as_bytes());
    if last_unterminated {
        events.push(Event::Msg(held.to_vec()));
    }
    // The messages a server must echo, before the first it must refuse
    // (or the quit word, which closes the connection unanswered).
    let mut msgs = Vec::new();
    for e in &events {
        match e {
            Event::Msg(m) if server.quit.is_empty() || m != server.quit.as_bytes() => msgs.push(m.clone()),
            _ => break,
        }
    }
    let held_is_msg = last_unterminated && msgs.len() == events.len();
    match server.frame {
        // Byte-exact: a prefix of the input when reset, all of it after a
        // clean close.
        Frame::Raw { .. } => {
            assert!(sent.starts_with(got), "raw echo is not a prefix of what was sent");
            if end == End::Eof {
                assert_eq!(got.len(), sent.len(), "raw echo lost bytes before a clean close");
            }
        }
        Frame::Line { .. } => check_lines(&msgs, held_is_msg, maybe_quit, got, end),
        // Frame for frame. `msgs` stops at the first refused frame (where
        // the server closes the connection); a server that skipped it and
        // went on would also have echoed the later valid frames.
        frame => {
            let encode_all = |ms: &mut dyn Iterator<Item = &Vec<u8>>| {
                let mut out = Vec::new();
                ms.for_each(|m| frame.encode(m, &mut out).unwrap());
                out
            };
            let want = encode_all(&mut msgs.iter());
            let all = encode_all(&mut events.iter().filter_map(|e| if let Event::Msg(m) = e { Some(m) } else { None }));
            assert!(want.starts_with(got) || all.starts_with(got), "{frame}: the echo is not the frames sent");
            if end == End::Eof {
                assert!(got.len() >= want.len(), "{frame}: {} of {} echoed bytes before a clean close", got.len(), want.len());
            }
        }
    }
}

/// `s` without the `\r`s it ends with.
fn trim_cr(mut s: &[u8]) -> &[u8] {
    while let Some(t) = s.strip_suffix(b"\r") {
        s = t;
    }
    s
}

/// Line echo: the n-th line back is the n-th message, ended by `\n`, or by
/// `\r\n` when the message had it (a message may itself end with `\r`:
/// `a\r\r\n`). The last line, when it was sent without a newline
/// (`last_unterminated`), may come back with or without one, and whether
/// its trailing `\r` is part of it is the server's choice; when it is the
/// quit word and a `\r` (`maybe_quit`) it may not come back at all.
fn check_lines(msgs: &[Vec<u8>], last_unterminated: bool, maybe_quit: bool, got: &[u8], end: End) {
    let mut lines: Vec<&[u8]> = got.split(|&b| b == b'\n').collect();
    let tail = lines.pop().unwrap_or_default(); // after the last `\n`
    let is_held = |i: usize| last_unterminated && i + 1 == msgs.len();
    let show = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    assert!(lines.len() <= msgs.len(), "{} lines echoed for {} sent", lines.len(), msgs.len());
    for (i, (l, m)) in lines.iter().zip(msgs).enumerate() {
        let ok = if is_held(i) { trim_cr(l) == trim_cr(m) } else { *l == &m[..] || l.strip_suffix(b"\r") == Some(&m[..]) };
        assert!(ok, "echoed line {i} is {:?}, sent {:?}", show(l), show(m));
    }
    let mut echoed = lines.len();
    if !tail.is_empty() {
        // Only the last line, sent without a newline, comes back without one
        // (or a line cut by a reset).
        let i = lines.len();
        assert!(i < msgs.len(), "bytes after the last echoed line: {:?}", show(tail));
        if end == End::Eof {
            assert!(is_held(i), "line {i} came back without its newline: {:?}", show(tail));
            assert_eq!(show(trim_cr(tail)), show(trim_cr(&msgs[i])), "the last line");
        } else {
            assert!(msgs[i].starts_with(trim_cr(tail)), "line {i} came back as {:?}, sent {:?}", show(tail), show(&msgs[i]));
        }
        echoed += 1;
    }
    if end == End::Eof {
        let least = msgs.len() - usize::from(maybe_quit && last_unterminated);
        assert!((least..=msgs.len()).contains(&echoed), "{echoed} lines echoed before a clean close, {least}+ sent");
    }
}
