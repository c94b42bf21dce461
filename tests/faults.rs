//! The examples through a faulty network path (`common/proxy.rs`: the
//! splits, delays, stalls, resets, drops, duplicates and reorders netem
//! would give), on loopback:
//!
//! * 100 clients x 1,000 messages through the TCP proxy to `echo_server`
//!   (line frames, and len32 binary messages) get back exactly what they
//!   sent, in order. A client whose connection the proxy reset sees the
//!   reset (ECONNRESET, or end of stream before all replies); what it did
//!   receive is an exact prefix of what it sent. No client loses anything
//!   without a reset, and the server serves on afterwards.
//! * `udp_client --timeout 200` through the UDP proxy (drops, duplicates,
//!   reorders; then a path that drops everything) always finishes, prints
//!   only replies to what it sent, and says `no reply within 200 ms` for
//!   the lines whose reply was lost.
//!
//! The fault seed is printed; `SOCKFLOW_FAULT_SEED=N` replays its faults.

mod common;
#[path = "flows/kit.rs"]
mod kit;
#[path = "common/proxy.rs"]
mod proxy;

use common::*;
use proxy::{Rng, TcpFaults, TcpProxy, UdpFaults, UdpProxy};
use sockflow::frame::Frame;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::Ordering;
use std::thread;
use std::time::{Duration, Instant};

const CLIENTS: usize = 100;
const MESSAGES: usize = 1000;
/// Messages a client writes before it reads their replies (its window).
const WINDOW: usize = 50;

/// How a client's session ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum End {
    /// Every reply arrived, then the server's end of stream.
    Complete,
    /// End of stream before every reply arrived.
    EarlyEof,
    /// The connection was reset (on a read or a write).
    Reset,
}

/// What one client sent and received.
struct Session {
    id: usize,
    local: SocketAddr,
    sent: Vec<u8>,
    got: Vec<u8>,
    end: End,
}

/// Message `i` of client `id`: its name, then random bytes the frame can
/// carry (line: no `\n`, and no `\r` that a server could take for a line
/// ending; len32: anything).
fn message(frame: Frame, id: usize, i: usize, rng: &mut Rng) -> Vec<u8> {
    let mut m = format!("c{id} m{i} ").into_bytes();
    for _ in 0..rng.range(0, 40) {
        let b = rng.below(256) as u8;
        m.push(match frame {
            Frame::Line { .. } if b == b'\n' || b == b'\r' => b'.',
            _ => b,
        });
    }
    m
}

/// Reads until `got` holds `want` bytes (or the server closes: then
/// `Some(end)`). A read that waits past the timeout fails the test: the
/// path may be slow, never stuck.
fn read_until(s: &mut TcpStream, got: &mut Vec<u8>, want: usize, id: usize) -> Option<End> {
    let mut buf = [0u8; 16 * 1024];
    while got.len() < want {
        match s.read(&mut buf) {
            Ok(0) => return Some(End::EarlyEof),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return Some(End::Reset),
            Err(e) => panic!("client {id}: read after {} of {want} bytes: {e}", got.len()),
        }
    }
    None
}

/// One client: writes its messages a window at a time and reads their
/// echoes, then half-closes and reads the server's end of stream.
fn client(addr: SocketAddr, frame: Frame, id: usize, mut rng: Rng) -> Session {
    let mut sent = Vec::new();
    let mut ends = Vec::new(); // where each window ends in `sent`
    for i in 0..MESSAGES {
        frame.encode(&message(frame, id, i, &mut rng), &mut sent).unwrap();
        if (i + 1) % WINDOW == 0 || i + 1 == MESSAGES {
            ends.push(sent.len());
        }
    }
    let mut s = TcpStream::connect_timeout(&addr, secs(10)).unwrap_or_else(|e| panic!("client {id}: connect: {e}"));
    s.set_read_timeout(Some(secs(30))).unwrap();
    s.set_write_timeout(Some(secs(30))).unwrap();
    let local = s.local_addr().unwrap();
    let mut got = Vec::new();
    let mut start = 0;
    let session = |got, end| Session { id, local, sent: sent.clone(), got, end };
    for &stop in &ends {
        if let Err(e) = s.write_all(&sent[start..stop]) {
            assert!(matches!(e.kind(), ErrorKind::ConnectionReset | ErrorKind::BrokenPipe), "client {id}: write: {e}");
            // Replies already on their way are still read (the reset
            // may have left some), up to the reset or end of stream.
            let end = read_until(&mut s, &mut got, sent.len(), id).unwrap_or(End::Reset);
            return session(got, if end == End::EarlyEof { End::Reset } else { end });
        }
        start = stop;
        if let Some(e) = read_until(&mut s, &mut got, stop, id) {
            return session(got, e);
        }
    }
    let _ = s.shutdown(Shutdown::Write);
    let mut extra = Vec::new();
    let end = match read_until(&mut s, &mut extra, 1, id) {
        Some(End::EarlyEof) => End::Complete,
        Some(e) => e,
        None => panic!("client {id}: {} bytes after the last echo", extra.len()),
    };
    session(got, end)
}

fn tcp_faults(reset_within: usize) -> TcpFaults {
    TcpFaults {
        max_piece: 32,
        delay_per_mille: 5,
        max_delay: Duration::from_millis(2),
        stall_per_mille: 20,
        max_stall: Duration::from_millis(100),
        reset_every: 10,
        reset_within,
    }
}

/// 100 clients x 1,000 messages of `frame` through the faulty TCP path to
/// `echo_server --frame <spec>`.
fn echo_through_faults(spec: &str, test: &str) {
    let frame = Frame::parse(spec).unwrap();
    let (mut srv, port) = kit::server("echo_server", Link::Dynamic, &["--frame", spec]);
    let upstream: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let seed = proxy::seed(test);
    let mut rng = Rng::new(seed);
    // Resets land anywhere in the first 25 bytes per message of a session:
    // each way a session carries about 31 per message (10 of name, 20 of
    // random bytes on average, 1-4 of framing), so every planned reset
    // happens.
    let proxy = TcpProxy::start(upstream, tcp_faults(MESSAGES * 25), rng.next());
    let started = Instant::now();
    let threads: Vec<_> = (0..CLIENTS)
        .map(|id| {
            let (addr, r) = (proxy.addr(), rng.fork(id as u64));
            thread::spawn(move || client(addr, frame, id, r))
        })
        .collect();
    let sessions: Vec<Session> = threads.into_iter().map(|t| t.join().expect("a client thread panicked")).collect();
    let mut complete = 0;
    for s in &sessions {
        assert!(
            s.got.len() <= s.sent.len() && s.got[..] == s.sent[..s.got.len()],
            "client {}: a wrong byte at {} (seed {seed})",
            s.id,
            s.got.iter().zip(&s.sent).position(|(a, b)| a != b).unwrap_or(s.sent.len())
        );
        let reset = proxy.was_reset(s.local);
        match s.end {
            End::Complete => {
                assert!(!reset, "client {}: the proxy reset it, yet it saw a clean end (seed {seed})", s.id);
                assert_eq!(s.got.len(), s.sent.len());
                complete += 1;
            }
            End::EarlyEof | End::Reset => assert!(
                reset,
                "client {}: {:?} after {} of {} bytes, and the proxy reset nothing (seed {seed})\n{}",
                s.id,
                s.end,
                s.got.len(),
                s.sent.len(),
                srv.transcript()
            ),
        }
    }
    let st = proxy.stats();
    eprintln!(
        "{test}: {complete} of {CLIENTS} clients complete, {} reset, in {:?}; proxy: {} writes, {} pauses, {} stalls",
        proxy.resets(),
        started.elapsed(),
        st.pieces.load(Ordering::Relaxed),
        st.delays.load(Ordering::Relaxed),
        st.stalls.load(Ordering::Relaxed)
    );
    assert_eq!(proxy.resets(), CLIENTS / 10, "every 10th connection is reset (seed {seed})");
    assert_eq!(complete + proxy.resets(), CLIENTS);

    // The server serves on: a direct client gets an exact echo.
    let mut msg = Vec::new();
    frame.encode(b"still there?", &mut msg).unwrap();
    let mut s = TcpStream::connect(upstream).unwrap();
    s.set_read_timeout(Some(default_timeout())).unwrap();
    s.write_all(&msg).unwrap();
    let mut got = Vec::new();
    assert_eq!(read_until(&mut s, &mut got, msg.len(), CLIENTS), None);
    assert_eq!(got, msg);
    drop(s);
    kit::stop(&mut srv, libc::SIGTERM);
}

#[test]
fn hundred_line_clients_through_a_faulty_path() {
    echo_through_faults("line", "hundred_line_clients_through_a_faulty_path");
}

#[test]
fn hundred_len32_clients_through_a_faulty_path() {
    echo_through_faults("len32", "hundred_len32_clients_through_a_faulty_path");
}

// ---------------------------------------------------------------------------
// UDP
// ---------------------------------------------------------------------------

/// Runs `udp_client --frame line --timeout 200` with `lines` through a UDP
/// proxy with `faults` to `udp_echo_server --frame line`; returns the
/// client's replies, its "no reply" notes and the proxy.
fn udp_through(faults: UdpFaults, lines: &[String], seed: u64) -> (Vec<String>, usize, UdpProxy) {
    let (mut srv, port) = kit::server("udp_echo_server", Link::Dynamic, &["--frame", "line"]);
    let upstream: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let proxy = UdpProxy::start(upstream, faults, seed);
    let input: String = lines.iter().map(|l| format!("{l}\n")).collect();
    let pport = proxy.addr().port();
    let mut c = kit::client("udp_client", Link::Dynamic, &["--frame", "line", "--timeout", "200"], pport, input.as_str());
    // Bounded: each line waits at most 200 ms for its reply.
    let st = c.wait_exit(secs(60));
    assert_exit(&c, st, 0);
    let notes = c.stderr_text().lines().filter(|l| l.contains("no reply within 200 ms")).count();
    let replies = c.stdout_text().lines().map(String::from).collect();
    kit::stop(&mut srv, libc::SIGTERM);
    (replies, notes, proxy)
}

#[test]
fn udp_client_finishes_through_lossy_path() {
    let test = "udp_client_finishes_through_lossy_path";
    let seed = proxy::seed(test);
    let lines: Vec<String> = (0..40).map(|i| format!("datagram {i}")).collect();
    let faults = UdpFaults { drop_per_mille: 200, dup_per_mille: 100, reorder_per_mille: 100, hold: Duration::from_millis(300) };
    let (replies, notes, proxy) = udp_through(faults, &lines, seed);
    let st = proxy.stats();
    let dropped = st.dropped.load(Ordering::SeqCst);
    eprintln!("{test}: {} replies, {notes} notes; proxy {st:?}", replies.len());
    for r in &replies {
        assert!(lines.contains(r), "a reply to nothing sent: {r:?} (seed {seed})");
    }
    // Each line got its reply in time, or a note.
    assert!(replies.len() + notes >= lines.len(), "{} replies + {notes} notes < {} lines (seed {seed})", replies.len(), lines.len());
    assert!(notes <= lines.len());
    assert!(dropped == 0 || notes > 0, "{dropped} datagrams dropped, yet no \"no reply\" note (seed {seed})");

    // A path that loses everything: one note per line, nothing printed.
    let all_lost = UdpFaults { drop_per_mille: 1000, dup_per_mille: 0, reorder_per_mille: 0, hold: Duration::ZERO };
    let (replies, notes, _) = udp_through(all_lost, &lines[..5], seed);
    assert!(replies.is_empty(), "{replies:?}");
    assert_eq!(notes, 5);
}
