//! Helpers shared by the tests that run servers in this process
//! (`tests/server.rs`, `tests/reliability.rs`): a log writer the test can
//! read, and a server whose `run()` is on its own thread, stopped (bounded)
//! when dropped, so a failed assertion never leaves a server behind.
#![allow(dead_code)]

use sockflow::server::tcp::TcpServer;
use sockflow::server::udp::UdpServer;
use sockflow::server::{Config, Handler, LogTo, ServerHandle};
use std::io::Write;
use std::net::SocketAddr;
use std::sync::{mpsc, Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// Upper bound of every wait here.
pub const WAIT: Duration = Duration::from_secs(10);

/// 127.0.0.1, port 0.
pub fn any_port() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

/// A log writer whose lines the test can read.
#[derive(Clone, Default)]
pub struct LogBuf(Arc<Mutex<Vec<u8>>>);

impl Write for LogBuf {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl LogBuf {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }

    /// Waits (bounded) for a log line containing `needle`.
    pub fn wait_for(&self, needle: &str) {
        let deadline = Instant::now() + WAIT;
        while !self.text().contains(needle) {
            assert!(Instant::now() < deadline, "no log line containing {needle:?}:\n{}", self.text());
            thread::sleep(Duration::from_millis(5));
        }
    }

    /// Defaults, logging here under the name "t".
    pub fn config(&self) -> Config {
        Config { log: Some(LogTo::writer(self.clone())), name: "t".into(), ..Config::default() }
    }
}

/// A server whose `run()` is on a spawned thread. Dropping it (e.g. when an
/// assertion failed) stops the server and joins the thread, bounded.
pub struct Running {
    pub handle: ServerHandle,
    pub addr: SocketAddr,
    done: mpsc::Receiver<sockflow::Result<()>>,
    join: Option<JoinHandle<()>>,
}

/// Runs `run` (a bound server's `run`) on its own thread.
pub fn spawn_run(handle: ServerHandle, addr: SocketAddr, run: impl FnOnce() -> sockflow::Result<()> + Send + 'static) -> Running {
    let (tx, done) = mpsc::channel();
    let join = thread::Builder::new()
        .name("server-run".into())
        .spawn(move || {
            let _ = tx.send(run());
        })
        .unwrap();
    Running { handle, addr, done, join: Some(join) }
}

/// A TCP server on 127.0.0.1, any port.
pub fn start_tcp(cfg: Config, h: Arc<dyn Handler>) -> Running {
    let s = TcpServer::bind(&[any_port()], cfg, h).expect("bind");
    let (handle, addr) = (s.handle(), s.local_addr());
    assert_ne!(addr.port(), 0);
    spawn_run(handle, addr, move || s.run())
}

/// A loop with no listener (a client of the servers it connects to),
/// running once its start line is logged.
pub fn client_loop(h: Arc<dyn Handler>) -> Running {
    let log = LogBuf::default();
    let s = TcpServer::without_listener(log.config(), h).unwrap();
    let (handle, addr) = (s.handle(), s.local_addr());
    let r = spawn_run(handle, addr, move || s.run());
    log.wait_for("t: running (no listener)");
    r
}

/// A UDP server on 127.0.0.1, any port.
pub fn start_udp(cfg: Config, h: Arc<dyn Handler>) -> Running {
    let s = UdpServer::bind(&[any_port()], cfg, h).expect("bind");
    let (handle, addr) = (s.handle(), s.local_addr());
    assert_ne!(addr.port(), 0);
    spawn_run(handle, addr, move || s.run())
}

impl Running {
    /// Waits for `run()` to return by itself (bounded) and joins its thread.
    pub fn wait_exit(&mut self) -> sockflow::Result<()> {
        let r = self.done.recv_timeout(WAIT).expect("run() did not return in time");
        self.join.take().unwrap().join().expect("run thread panicked");
        r
    }

    /// Stops through the handle and waits (bounded) for `run()`: `None` if
    /// it did not return in time (the caller may then unblock what holds it).
    pub fn try_stop(&mut self) -> Option<sockflow::Result<()>> {
        self.handle.stop();
        let r = self.done.recv_timeout(WAIT).ok()?;
        if let Some(j) = self.join.take() {
            let _ = j.join();
        }
        Some(r)
    }

    /// Stops through the handle and waits for `run()`.
    pub fn stop(mut self) -> sockflow::Result<()> {
        self.handle.stop();
        self.wait_exit()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(j) = self.join.take() {
            self.handle.stop();
            if self.done.recv_timeout(WAIT).is_ok() {
                let _ = j.join();
            }
        }
    }
}

/// Waits (bounded by [`WAIT`]) until `f` holds.
#[track_caller]
pub fn until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        thread::sleep(Duration::from_millis(5));
    }
}
