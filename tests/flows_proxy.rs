//! The `proxy` example (outgoing connections on a server's loop, relays
//! between paired connections) in front of `echo_server`, on loopback:
//!
//! * 20 clients at once relay 50 MiB in all, both ways, byte for byte;
//! * an upstream that refuses: the client is closed and the reason logged;
//! * an upstream that does not read: the proxy's memory stays bounded (the
//!   client is slowed, not dropped), and every byte arrives once it reads.

mod common;
#[path = "flows/kit.rs"]
mod kit;

use common::*;
use kit::*;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::thread;
use std::time::Duration;

/// `proxy 127.0.0.1 0 127.0.0.1 <upstream>`, with its listening port.
fn proxy(upstream: u16) -> (Proc, u16) {
    let up = upstream.to_string();
    start(&example("proxy", Link::Dynamic), &["127.0.0.1", "0", "127.0.0.1", &up])
}

/// Client `i`'s bytes: a pattern no other client and no shifted copy shares.
fn payload(i: usize, len: usize) -> Vec<u8> {
    let mut x = 0x9E37_79B9_7F4A_7C15u64 ^ (i as u64 + 1);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// RSS of process `pid` in bytes.
fn rss(pid: u32) -> usize {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: usize = s.lines().find_map(|l| l.strip_prefix("VmRSS:")).unwrap().trim().trim_end_matches(" kB").trim().parse().unwrap();
    kb * 1024
}

#[test]
fn proxy_relays_50_mib_exactly_both_ways_for_20_clients() {
    const CLIENTS: usize = 20;
    const EACH: usize = 50 * 1024 * 1024 / CLIENTS;
    let (_echo, echo_port) = server("echo_server", Link::Dynamic, &[]);
    let (p, port) = proxy(echo_port);
    let clients: Vec<_> = (0..CLIENTS)
        .map(|i| {
            thread::spawn(move || {
                let s = connect(port);
                let data = payload(i, EACH);
                let mut r = s.try_clone().unwrap();
                let reader = thread::spawn(move || {
                    let mut got = vec![0u8; EACH];
                    r.read_exact(&mut got).map(|_| got)
                });
                // Pieces of varied sizes, so relayed reads glue and split.
                let mut at = 0;
                for n in [1usize, 7, 4096, 65536, 100_000, 3].iter().cycle() {
                    let end = (at + n).min(EACH);
                    (&s).write_all(&data[at..end]).unwrap();
                    at = end;
                    if at == EACH {
                        break;
                    }
                }
                let got = reader.join().unwrap().unwrap_or_else(|e| panic!("client {i}: {e}"));
                assert!(got == data, "client {i}: the bytes that came back differ from those sent");
                // The client's close closes its upstream side too, and then
                // the proxy closes the client's connection after its bytes.
                s.shutdown(std::net::Shutdown::Write).unwrap();
                let mut rest = Vec::new();
                (&s).read_to_end(&mut rest).unwrap();
                assert!(rest.is_empty(), "client {i}: {} extra bytes", rest.len());
            })
        })
        .collect();
    for c in clients {
        c.join().unwrap();
    }
    assert!(!p.stderr_text().contains("upstream"), "{}", p.transcript());
}

#[test]
fn proxy_closes_the_client_and_logs_when_upstream_refuses() {
    // A port nothing listens on: bind one, note it, close it.
    let refused = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let (p, port) = proxy(refused);
    for _ in 0..3 {
        let mut s = connect(port);
        assert!(read_to_eof(&mut s).is_empty());
    }
    let want = format!("proxy: upstream connect 127.0.0.1:{refused}: Connection refused: closing the client");
    p.wait_for_line(Stream::Stderr, &want, default_timeout());
}

/// The upstream stops reading: the proxy pauses the client (TCP slows it)
/// instead of queueing without bound or dropping anyone (which pushing the
/// bytes with `send_to` would do at `max_queue`), and everything arrives
/// once the upstream reads again.
#[test]
fn proxy_memory_stays_bounded_when_upstream_does_not_read() {
    const TOTAL: usize = 96 * 1024 * 1024;
    let upstream = TcpListener::bind("127.0.0.1:0").unwrap();
    let (p, port) = proxy(upstream.local_addr().unwrap().port());
    let base = rss(p.pid());
    let client = connect(port);
    let (mut up, _) = upstream.accept().unwrap();
    // The client writes until it is held back (its writes stop progressing).
    let data = payload(7, TOTAL);
    client.set_write_timeout(Some(Duration::from_secs(3))).unwrap();
    let mut sent = 0;
    while sent < TOTAL {
        match (&client).write(&data[sent..(sent + 65536).min(TOTAL)]) {
            Ok(n) => sent += n,
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => break,
            Err(e) => panic!("client write after {sent} bytes: {e}"),
        }
    }
    assert!(sent < TOTAL, "all {TOTAL} bytes were taken while the upstream read nothing: nothing held the client back");
    let grown = rss(p.pid()).saturating_sub(base);
    assert!(grown < 32 << 20, "proxy RSS grew by {} MiB while relaying to an upstream that does not read", grown >> 20);
    // The upstream reads again: every byte arrives, in order, none dropped.
    let writer = {
        let c = client.try_clone().unwrap();
        c.set_write_timeout(Some(default_timeout())).unwrap();
        thread::spawn(move || (&c).write_all(&data[sent..]).map(|_| data))
    };
    let mut got = vec![0u8; TOTAL];
    up.set_read_timeout(Some(default_timeout())).unwrap();
    up.read_exact(&mut got).unwrap();
    let data = writer.join().unwrap().unwrap();
    assert!(got == data, "the upstream got other bytes than the client sent");
    assert!(!p.stderr_text().contains("dropping"), "{}", p.transcript());
    drop(up);
    // The upstream closed: the client is closed too.
    let mut c = client;
    assert!(read_to_eof(&mut c).is_empty());
}
