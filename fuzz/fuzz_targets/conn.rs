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
//! never sends a byte it should not: the raw echo is exactly the input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sockflow::frame::Frame;
use sockflow::server::builtin::Echo;
use sockflow::server::tcp::TcpServer;
use sockflow::server::Config;
use sockflow_fuzz::{split, Input};
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The longest any wait may take before it counts as a hang.
const WAIT: Duration = Duration::from_secs(10);

struct Server {
    frame: Frame,
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
                let cfg = Config { frame, quit: quit.into(), log: Some(Box::new(std::io::sink())), ..Config::default() };
                let server = TcpServer::bind(&["127.0.0.1:0".parse().unwrap()], cfg, Arc::new(Echo)).expect("bind 127.0.0.1:0");
                let addr = server.local_addr();
                let thread = std::thread::spawn(move || server.run().expect("server run"));
                Server { frame, addr, thread }
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
    if let Frame::Raw { .. } = server.frame {
        // Raw echo is byte-exact: a prefix of the input when the
        // connection was reset, all of it after a clean close.
        assert!(payload.starts_with(&got), "raw echo is not a prefix of what was sent");
        if end == End::Eof {
            assert_eq!(got.len(), payload.len(), "raw echo lost bytes before a clean close");
        }
    }
    drop(s);
    assert_alive(server);
});
