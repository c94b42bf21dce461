//! TLS against plaintext with one generator: blocking sockets, one thread
//! per connection (or per churn slot), each speaking either plain TCP or
//! rustls (`ClientConnection` + `StreamOwned` over the socket, the
//! handshake completed when the connection opens). Both columns of the
//! `tls_*` scenarios run this same code, so their ratio is what TLS costs
//! the server, not a difference between generators.
//!
//! * `echo`: connections opened (handshake + one echo) before the window,
//!   then each thread lock-steps `size`-byte lines: send, read the whole
//!   echo back, compare, again.
//! * `churn`: each slot connects, handshakes, echoes one line and closes
//!   (no `close_notify`: the socket is closed, as the plaintext slot does),
//!   again and again.
//!
//! Every socket operation has `IO_TIMEOUT`; every loop ends at the window's
//! end or after `MAX_FAILURES`.

use super::{Tally, Window, IO_TIMEOUT};
use rustls::{ClientConfig, ClientConnection, StreamOwned};
use rustls_pki_types::ServerName;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Instant;

/// Failures after which a churn slot stops (the server is not serving).
const MAX_FAILURES: u64 = 100;

/// How the generator talks to the server.
#[derive(Clone)]
pub enum Link {
    Plain,
    /// TLS, verifying the server as `localhost` with this configuration.
    Tls(Arc<ClientConfig>),
}

/// One open connection.
enum Conn {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
}

/// Sends `msg` on `s` and reads its echo back whole into `back`.
fn round_trip(s: &mut (impl Read + Write), msg: &[u8], back: &mut [u8]) -> io::Result<()> {
    s.write_all(msg)?;
    s.flush()?;
    s.read_exact(back)
}

impl Conn {
    /// Connects and, with TLS, completes the handshake (each step within
    /// `IO_TIMEOUT`; a TLS 1.3 handshake is two flights, 16 steps bound it).
    fn open(addr: SocketAddr, link: &Link) -> io::Result<Conn> {
        let sock = TcpStream::connect_timeout(&addr, IO_TIMEOUT)?;
        sock.set_nodelay(true)?;
        sock.set_read_timeout(Some(IO_TIMEOUT))?;
        sock.set_write_timeout(Some(IO_TIMEOUT))?;
        let Link::Tls(cfg) = link else { return Ok(Conn::Plain(sock)) };
        let name = ServerName::try_from("localhost").map_err(io::Error::other)?;
        let mut s = StreamOwned::new(ClientConnection::new(cfg.clone(), name).map_err(io::Error::other)?, sock);
        for _ in 0..16 {
            if !s.conn.is_handshaking() {
                return Ok(Conn::Tls(Box::new(s)));
            }
            s.conn.complete_io(&mut s.sock)?;
        }
        Err(io::Error::other("TLS handshake did not finish in 16 steps"))
    }

    /// One checked echo of `msg` (`buf` at least as long).
    fn echo(&mut self, msg: &[u8], buf: &mut [u8]) -> io::Result<()> {
        let back = &mut buf[..msg.len()];
        match self {
            Conn::Plain(s) => round_trip(s, msg, back)?,
            Conn::Tls(s) => round_trip(s.as_mut(), msg, back)?,
        }
        if back != msg {
            return Err(io::Error::other("the echo differs from what was sent"));
        }
        Ok(())
    }
}

/// Runs `work` on one scoped thread per item; the merged tallies.
fn per_thread<T: Send>(items: Vec<T>, work: impl Fn(T) -> Tally + Sync) -> Tally {
    let mut total = Tally::default();
    std::thread::scope(|s| {
        let work = &work;
        let handles: Vec<_> = items.into_iter().map(|it| s.spawn(move || work(it))).collect();
        for h in handles {
            total.merge(h.join().expect("generator thread panicked"));
        }
    });
    total
}

pub struct EchoSetup {
    conns: Vec<Conn>,
}

/// Opens `n` connections over `link`, each echoed once.
pub fn echo_setup(addr: SocketAddr, n: usize, link: &Link) -> Result<EchoSetup, String> {
    let mut buf = [0u8; 16];
    let conns = (0..n)
        .map(|_| {
            let mut c = Conn::open(addr, link)?;
            c.echo(b"ready\n", &mut buf)?;
            Ok(c)
        })
        .collect::<io::Result<Vec<Conn>>>()
        .map_err(|e| format!("opening {n} connections: {e}"))?;
    Ok(EchoSetup { conns })
}

/// Lock-step `size`-byte lines on every connection until the window's end.
pub fn echo_run(st: EchoSetup, size: usize, w: &Window) -> Tally {
    let msg = super::lines(size, 1);
    per_thread(st.conns, |mut c| {
        let (mut t, mut buf) = (Tally::default(), vec![0u8; size]);
        while Instant::now() < w.end {
            if let Err(e) = c.echo(&msg, &mut buf) {
                t.problems.push(format!("a connection failed during the run: {e}"));
                break;
            }
            if w.counts(Instant::now()) {
                t.ops += 1;
                t.bytes += size as u64;
            }
        }
        t
    })
}

pub struct ChurnSetup {
    addr: SocketAddr,
    slots: usize,
    link: Link,
}

pub fn churn_setup(addr: SocketAddr, slots: usize, link: &Link) -> Result<ChurnSetup, String> {
    Ok(ChurnSetup { addr, slots, link: link.clone() })
}

/// `slots` at a time: connect (+ handshake), one `size`-byte echo, close.
pub fn churn_run(st: ChurnSetup, size: usize, w: &Window) -> Tally {
    let msg = super::lines(size, 1);
    per_thread((0..st.slots).collect(), |_| {
        let (mut t, mut buf, mut failures) = (Tally::default(), vec![0u8; size], 0u64);
        let mut first_error = None;
        while Instant::now() < w.end && failures < MAX_FAILURES {
            match Conn::open(st.addr, &st.link).and_then(|mut c| c.echo(&msg, &mut buf)) {
                Ok(()) if w.counts(Instant::now()) => {
                    t.ops += 1;
                    t.bytes += size as u64;
                }
                Ok(()) => {}
                Err(e) => {
                    failures += 1;
                    first_error.get_or_insert(e);
                }
            }
        }
        if let Some(e) = first_error {
            t.problems.push(format!("{failures} connections failed (connect, handshake or echo), the first: {e}"));
        }
        t
    })
}
