//! The server's log can never stop the server (issue 6, section 3).
//!
//! `echo_server` runs with its stderr on a pipe that nobody reads after the
//! readiness line, so the pipe (64 KiB) fills. Clients then make it log: each
//! sends an over-long line, which is logged and closes that connection. When
//! log lines were written synchronously on the loop thread the server blocked
//! in `write(2)` once the pipe was full and every client timed out; now a
//! normal client must still get its echo, and once the pipe is read again
//! the log says what it left out.

mod common;
#[path = "flows/kit.rs"]
mod kit;

use common::Link;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;

/// Kills and reaps the child by PID however the test ends.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn an_unread_stderr_never_blocks_the_server() {
    let bin = kit::example("echo_server", Link::Dynamic);
    let mut child = Child(
        Command::new(&bin)
            .args(["--frame", "line:16", "127.0.0.1", "0"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn echo_server"),
    );
    let mut err = BufReader::new(child.0.stderr.take().unwrap());
    let mut first = String::new();
    err.read_line(&mut first).unwrap();
    let port: u16 = first.trim_end().rsplit(' ').next().and_then(|p| p.parse().ok()).unwrap_or_else(|| panic!("{first:?}"));
    // From here on nobody reads stderr until the end.

    // Each over-long line logs about 100 bytes: 3,000 of them are several
    // times the pipe's 64 KiB.
    let long = [b'x'; 200];
    for i in 0..3000 {
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let _ = s.write_all(&long);
        let _ = s.write_all(b"\n");
        // The server closes it (reason ERROR): wait for that, so connections
        // do not pile up; a blocked server never closes it.
        let mut sink = Vec::new();
        if let Err(e) = s.read_to_end(&mut sink) {
            let stalled = matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut);
            assert!(!stalled, "over-long line {i}: the server never closed the connection (blocked?)");
        }
        if i % 500 == 0 {
            echo_ok(port, i);
        }
    }
    echo_ok(port, 3000);

    // Stopped (SIGTERM: a graceful stop writes the log out) and read again:
    // the log reports what it left out.
    // SAFETY: kill(2) on our own child's PID.
    assert_eq!(unsafe { libc::kill(child.0.id() as i32, libc::SIGTERM) }, 0);
    let mut rest = String::new();
    let _ = err.read_to_string(&mut rest);
    assert!(
        rest.contains("more times:") || rest.contains("log lines dropped"),
        "the log never said lines were left out:\n{}",
        &rest[..rest.len().min(2000)]
    );
    assert!(rest.contains("stopped"), "{rest}");
}

/// A normal client still gets its echo, within a generous bound.
fn echo_ok(port: u16, round: usize) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.write_all(b"still here\n").unwrap();
    let mut line = String::new();
    BufReader::new(&s).read_line(&mut line).unwrap_or_else(|e| panic!("after {round} over-long lines the server did not answer: {e}"));
    assert_eq!(line, "still here\n", "after {round} over-long lines");
}

/// Out of descriptors, the accept loop retries ten times a second; its log
/// used to say so each time, for as long as it lasted. Now the same line is
/// written a few times per window and then summarised.
#[test]
fn running_out_of_descriptors_logs_a_few_lines_not_ten_a_second() {
    let bin = kit::example("echo_server", Link::Dynamic);
    let script = format!("ulimit -n 16 && exec '{}' 127.0.0.1 0", bin.display());
    let mut cmd = Command::new("/bin/sh");
    cmd.args(["-c", &script]);
    let server = common::spawn_cmd(cmd, common::Input::Null);
    let port = server.wait_listening();
    // More connections than descriptors: the server hits EMFILE and the
    // rest wait in the backlog.
    let held: Vec<TcpStream> = (0..30).map(|_| TcpStream::connect(("127.0.0.1", port)).unwrap()).collect();
    assert!(
        kit::eventually(Duration::from_secs(20), || server.stderr_text().contains("Too many open files")),
        "no EMFILE\n{}",
        server.transcript()
    );
    std::thread::sleep(Duration::from_secs(3));
    let text = server.stderr_text();
    let emfile = text.lines().filter(|l| l.contains("Too many open files")).count();
    // Old behaviour: about 30 lines in these 3 s.
    assert!(emfile <= log_burst() + 1, "{emfile} EMFILE lines in 3 s:\n{text}");
    drop(held);
}

/// Lines of one kind let through per window (src/server/log.rs `BURST`).
fn log_burst() -> usize {
    5
}
