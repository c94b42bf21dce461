//! The stdin clients print the replies of one socket read with one flush
//! (one `write(2)` on a pipe), not one per line: `tcp_client` fed 100,000
//! lines used to make 100,000 writes to stdout and ran 9-17 times slower
//! than the same calls written by hand (benches, "stdin client").

use sockflow::client::{run, Link, Options};
use sockflow::frame::Frame;
use sockflow::tcp::Stream;
use std::io::Write;
use std::net::TcpListener;
use std::os::fd::AsFd;
use std::time::Duration;

/// Output that counts its flushes.
#[derive(Default)]
struct Counting {
    bytes: Vec<u8>,
    flushes: usize,
}

impl Write for Counting {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.bytes.extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.flushes += 1;
        Ok(())
    }
}

#[test]
fn replies_of_one_read_are_flushed_once() {
    const LINES: usize = 1000;
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        let all: String = (0..LINES).map(|i| format!("reply {i}\n")).collect();
        s.write_all(all.as_bytes()).unwrap(); // about 11 KB: a read or two
    });
    let mut stream = Stream::connect(&[addr], Some(Duration::from_secs(30))).unwrap();
    stream.set_frame(Frame::default());
    server.join().unwrap(); // everything sent, then closed
                            // No input: stdin at its end at once (an empty pipe's read end).
    let (rd, wr) = nix::unistd::pipe().unwrap();
    drop(wr);
    let (mut out, mut err) = (Counting::default(), Vec::new());
    let opts =
        Options { quit: String::new(), prefix: String::new(), drain: Duration::from_secs(30), reply_timeout: None, name: "t".into() };
    run(Link::Tcp(&mut stream), rd.as_fd(), &mut out, &mut err, &opts).unwrap();
    let text = String::from_utf8(out.bytes).unwrap();
    assert_eq!(text.lines().count(), LINES, "every reply printed");
    assert!(out.flushes < LINES / 10, "{} flushes for {LINES} replies that came in a read or two", out.flushes);
}

/// A read's complete lines go out and are printed as one span (no call per
/// line) when nothing in them needs a look of its own; this checks the
/// bytes are exactly what line-by-line handling gives, across every case
/// the span must hand back to it: lines split between reads on both
/// sides, CRLF lines (sent with LF), empty lines, the quit word's first
/// letter inside lines, and the quit word itself ending the input (lines
/// after it are not sent).
#[test]
fn whole_reads_send_and_print_exactly_what_line_by_line_does() {
    let mut input = Vec::new();
    let mut want_sent = Vec::new();
    for i in 0..20_000 {
        // Only in the last lines, so the reads before hold none of them
        // (and go as one span each).
        let special = i >= 19_000;
        let line = match i % 7 {
            0 if special => format!("q{i} quick query"),
            1 if special => format!("crlf {i}"),
            2 => String::new(),
            _ => format!("line {i} {}", "x".repeat(i % 50)),
        };
        input.extend_from_slice(line.as_bytes());
        input.extend_from_slice(if special && i % 7 == 1 { b"\r\n" } else { b"\n" });
        want_sent.extend_from_slice(line.as_bytes());
        want_sent.push(b'\n');
    }
    input.extend_from_slice(b"quit\nnot sent\n");
    want_sent.extend_from_slice(b"quit\n");
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    // An exact echo that writes back in odd pieces, so replies split lines.
    let server = std::thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 4093];
        loop {
            match std::io::Read::read(&mut s, &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    got.extend_from_slice(&buf[..n]);
                    for piece in buf[..n].chunks(997) {
                        s.write_all(piece).unwrap();
                    }
                }
            }
        }
        got
    });
    let mut stream = Stream::connect(&[addr], Some(Duration::from_secs(30))).unwrap();
    stream.set_frame(Frame::default());
    // The input through a pipe in odd-sized writes, so reads split lines.
    let (rd, wr) = nix::unistd::pipe().unwrap();
    let feeder = std::thread::spawn(move || {
        let mut w = std::fs::File::from(wr);
        for piece in input.chunks(1531) {
            w.write_all(piece).unwrap();
        }
    });
    let (mut out, mut err) = (Counting::default(), Vec::new());
    let opts =
        Options { quit: "quit".into(), prefix: String::new(), drain: Duration::from_secs(30), reply_timeout: None, name: "t".into() };
    run(Link::Tcp(&mut stream), rd.as_fd(), &mut out, &mut err, &opts).unwrap();
    feeder.join().unwrap();
    let sent = server.join().unwrap();
    assert!(sent == want_sent, "sent bytes differ ({} vs {} bytes)", sent.len(), want_sent.len());
    assert!(out.bytes == want_sent, "printed bytes differ ({} vs {} bytes)", out.bytes.len(), want_sent.len());
}
