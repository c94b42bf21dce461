//! A running server under test: started on a free port, its readiness line
//! awaited (bounded), its CPU and memory read from /proc, and killed by PID
//! (SIGKILL, then reaped) when dropped, also when the bench panics.

use crate::binaries::{Bins, Impl, Mode};
use crate::sys;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// Longest wait for a server's "listening on ... port N" line.
const START_TIMEOUT: Duration = Duration::from_secs(10);

pub struct Server {
    child: Child,
    port: u16,
}

/// The port in a readiness line `NAME: listening on HOST port N[ ...]`.
fn ready_port(line: &str) -> Option<Option<u16>> {
    let (_, rest) = line.split_once("listening on ")?;
    let (_, port) = rest.rsplit_once(" port ")?;
    let digits: String = port.chars().take_while(char::is_ascii_digit).collect();
    Some(digits.parse().ok())
}

impl Server {
    /// Starts `imp` in `mode` and waits for its readiness line; later stderr
    /// lines are passed on, prefixed with its name. Panics when it cannot
    /// be started (the bench has nothing to measure then).
    pub fn start(bins: &Bins, imp: Impl, mode: Mode, workers: Option<u32>) -> Server {
        let (exe, args) = bins.server(imp, mode, workers).unwrap_or_else(|e| panic!("{}: {e}", imp.name()));
        Server::spawn(imp.name(), &exe, &args)
    }

    /// Starts `exe args` (the port, 0, last) as `name`.
    pub fn spawn(name: &'static str, exe: &Path, args: &[String]) -> Server {
        let mut child = Command::new(exe)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", exe.display()));
        let stderr = child.stderr.take().expect("piped stderr");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                match (tx.is_some(), ready_port(&line)) {
                    (true, Some(port)) => {
                        let _ = tx.take().expect("sender").send(port);
                    }
                    _ => eprintln!("  [{name} stderr] {line}"),
                }
            }
        });
        let mut server = Server { child, port: 0 };
        match rx.recv_timeout(START_TIMEOUT) {
            Ok(Some(port)) => server.port = port,
            Ok(None) => panic!("{name}: unreadable port in its readiness line"),
            Err(_) => panic!("{name}: no \"listening on\" line within {START_TIMEOUT:?} ({} {})", exe.display(), args.join(" ")),
        }
        server
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Its address on 127.0.0.1 (servers listen on 0.0.0.0).
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// VmRSS now, in bytes.
    pub fn rss(&self) -> u64 {
        sys::proc_rss(self.pid())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // SIGKILL by PID, then reap it.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
