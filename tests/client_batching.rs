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
