//! Fault-injecting proxies for the tests: the network misbehaviours netem
//! would give (this kernel has none), built into the path between a test's
//! clients and a real server on loopback.
//!
//! * [`TcpProxy`]: forwards each connection both ways, splitting what it
//!   forwards into random pieces with random pauses between them, stalling
//!   (not reading) for a while at random, and resetting chosen connections
//!   (close with `SO_LINGER` 0, so both ends see a reset) after a chosen
//!   number of bytes in one direction. A reset from either end is passed on
//!   as a reset, an end of stream as an end of stream.
//! * [`UdpProxy`]: forwards datagrams both ways, dropping, duplicating and
//!   reordering (holding one back until the next one passes, or a while).
//!
//! Every decision comes from a seeded [`Rng`] (one stream per connection and
//! direction), printed by [`seed`] so that a failure can be replayed with
//! `SOCKFLOW_FAULT_SEED=N` (thread timing still varies between runs; the
//! faults do not).
#![allow(dead_code)]

use std::collections::{HashMap, HashSet};
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Longest any proxy write may block (a client that stopped reading).
const WRITE_TIMEOUT: Duration = Duration::from_secs(60);

/// The seed for `test`: `SOCKFLOW_FAULT_SEED` when set, else the clock.
/// Printed either way, so a failing run can be replayed.
pub fn seed(test: &str) -> u64 {
    let s = std::env::var("SOCKFLOW_FAULT_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        let t = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        t.as_nanos() as u64 ^ u64::from(std::process::id())
    });
    eprintln!("{test}: fault seed {s} (replay with SOCKFLOW_FAULT_SEED={s})");
    s
}

/// xorshift64*: small, fast, and the same sequence for the same seed.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        // Mix the seed so that nearby seeds give unrelated streams; never 0.
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        Rng((z ^ (z >> 31)) | 1)
    }

    /// A generator for sub-stream `n` (a connection, a direction).
    pub fn fork(&mut self, n: u64) -> Rng {
        Rng::new(self.next() ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15))
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `0..n` (`n` > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below((hi - lo) as u64 + 1) as usize
    }

    /// True `per_mille` times in a thousand.
    pub fn chance(&mut self, per_mille: u32) -> bool {
        self.below(1000) < u64::from(per_mille)
    }

    /// A pause up to `max`.
    pub fn pause(&mut self, max: Duration) -> Duration {
        Duration::from_micros(self.below(max.as_micros() as u64 + 1))
    }
}

// ---------------------------------------------------------------------------
// TCP
// ---------------------------------------------------------------------------

/// What a [`TcpProxy`] does to the connections through it.
#[derive(Clone, Debug)]
pub struct TcpFaults {
    /// Largest piece a forwarded read is cut into (each piece one write).
    pub max_piece: usize,
    /// Chance (per mille) of a pause after a piece, up to `max_delay`.
    pub delay_per_mille: u32,
    pub max_delay: Duration,
    /// Chance (per mille) of not reading for a while before a read, up to
    /// `max_stall`: the sender's buffers fill and TCP flow control pushes back.
    pub stall_per_mille: u32,
    pub max_stall: Duration,
    /// Every `reset_every`-th connection (in accept order; 0 = none) is
    /// reset after a random number of bytes, below `reset_within`,
    /// forwarded in a random direction. Chosen by count rather than chance
    /// so that a run always has both reset and intact connections.
    pub reset_every: usize,
    pub reset_within: usize,
}

/// Which way bytes flow through the proxy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dir {
    ToServer,
    ToClient,
}

/// A TCP proxy on 127.0.0.1; stops accepting when dropped (connections in
/// flight run to their end).
pub struct TcpProxy {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    stats: Arc<TcpStats>,
}

/// What a [`TcpProxy`] did.
#[derive(Debug, Default)]
pub struct TcpStats {
    /// The clients (by their address) whose connection the proxy reset.
    pub resets: Mutex<HashSet<SocketAddr>>,
    /// Writes made (reads are cut into pieces), pauses and stalls.
    pub pieces: AtomicUsize,
    pub delays: AtomicUsize,
    pub stalls: AtomicUsize,
}

impl TcpProxy {
    /// Starts a proxy to `upstream` with `faults`, its decisions drawn from `seed`.
    pub fn start(upstream: SocketAddr, faults: TcpFaults, seed: u64) -> TcpProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let stats = Arc::new(TcpStats::default());
        let (st, rs) = (stop.clone(), stats.clone());
        thread::spawn(move || {
            let mut rng = Rng::new(seed);
            for (n, client) in listener.incoming().enumerate() {
                if st.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(client) = client else { continue };
                let rng = rng.fork(n as u64);
                let (faults, rs) = (faults.clone(), rs.clone());
                let reset = faults.reset_every > 0 && n % faults.reset_every == faults.reset_every - 1;
                thread::spawn(move || Link::run(client, upstream, faults, reset, rng, rs));
            }
        });
        TcpProxy { addr, stop, stats }
    }

    /// Where clients connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Whether the proxy reset the connection of the client at `client`
    /// (its local address).
    pub fn was_reset(&self, client: SocketAddr) -> bool {
        self.stats.resets.lock().unwrap().contains(&client)
    }

    /// How many connections the proxy reset.
    pub fn resets(&self) -> usize {
        self.stats.resets.lock().unwrap().len()
    }

    pub fn stats(&self) -> &TcpStats {
        &self.stats
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr); // wakes the accept loop
    }
}

/// One proxied connection: the client's socket, the server's, and whether
/// it is being reset (then neither side may see a clean end of stream).
struct Link {
    client: TcpStream,
    server: TcpStream,
    peer: SocketAddr,
    aborted: AtomicBool,
    /// Bytes still to forward in `Dir` before the planned reset.
    reset_at: Option<(Dir, AtomicUsize)>,
    stats: Arc<TcpStats>,
}

impl Link {
    fn run(client: TcpStream, upstream: SocketAddr, faults: TcpFaults, reset: bool, mut rng: Rng, stats: Arc<TcpStats>) {
        let Ok(peer) = client.peer_addr() else { return };
        let server = match TcpStream::connect(upstream) {
            Ok(s) => s,
            // Refused upstream: the client sees a reset, as from a real path.
            Err(_) => return set_linger_zero(&client),
        };
        for s in [&client, &server] {
            let _ = s.set_nodelay(true); // each piece its own segment
            let _ = s.set_write_timeout(Some(WRITE_TIMEOUT));
        }
        let reset_at = reset.then(|| {
            let dir = if rng.chance(500) { Dir::ToServer } else { Dir::ToClient };
            (dir, AtomicUsize::new(rng.range(0, faults.reset_within.max(1) - 1)))
        });
        let link = Arc::new(Link { client, server, peer, aborted: AtomicBool::new(false), reset_at, stats });
        let back = link.clone();
        let (f2, rng2) = (faults.clone(), rng.fork(1));
        let t = thread::spawn(move || back.pump(Dir::ToClient, &f2, rng2));
        link.pump(Dir::ToServer, &faults, rng.fork(0));
        let _ = t.join();
    }

    fn ends(&self, dir: Dir) -> (&TcpStream, &TcpStream) {
        match dir {
            Dir::ToServer => (&self.client, &self.server),
            Dir::ToClient => (&self.server, &self.client),
        }
    }

    /// Forwards one direction until end of stream, an error or a reset.
    fn pump(&self, dir: Dir, f: &TcpFaults, mut rng: Rng) {
        let (mut from, mut to) = self.ends(dir);
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            if rng.chance(f.stall_per_mille) {
                self.stats.stalls.fetch_add(1, Ordering::Relaxed);
                thread::sleep(rng.pause(f.max_stall));
            }
            let want = rng.range(1, buf.len());
            let n = match from.read(&mut buf[..want]) {
                Ok(0) => {
                    if !self.aborted.load(Ordering::SeqCst) {
                        let _ = to.shutdown(Shutdown::Write);
                    }
                    return;
                }
                Ok(n) => n,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(_) => return self.abort(false),
            };
            let mut data = &buf[..n];
            let mut reset_now = false;
            if let Some((d, left)) = &self.reset_at {
                if *d == dir {
                    let l = left.load(Ordering::SeqCst);
                    if data.len() >= l {
                        data = &data[..l];
                        reset_now = true;
                    }
                    left.store(l - data.len(), Ordering::SeqCst);
                }
            }
            while !data.is_empty() {
                let k = rng.range(1, f.max_piece.clamp(1, data.len()));
                if to.write_all(&data[..k]).is_err() {
                    return self.abort(false);
                }
                data = &data[k..];
                self.stats.pieces.fetch_add(1, Ordering::Relaxed);
                if rng.chance(f.delay_per_mille) {
                    self.stats.delays.fetch_add(1, Ordering::Relaxed);
                    thread::sleep(rng.pause(f.max_delay));
                }
            }
            if reset_now {
                return self.abort(true);
            }
        }
    }

    /// Resets both sides: `SO_LINGER` 0 makes the last close send RST; the
    /// other pump wakes from its read (shutdown of the read side sends
    /// nothing) and leaves without a FIN. `planned` records it as the
    /// proxy's own reset (rather than one passed on).
    fn abort(&self, planned: bool) {
        if self.aborted.swap(true, Ordering::SeqCst) {
            return;
        }
        if planned {
            self.stats.resets.lock().unwrap().insert(self.peer);
        }
        for s in [&self.client, &self.server] {
            set_linger_zero(s);
            let _ = s.shutdown(Shutdown::Read);
        }
    }
}

/// `SO_LINGER` {on, 0}: close(2) sends RST instead of FIN.
fn set_linger_zero(s: &TcpStream) {
    let l = libc::linger { l_onoff: 1, l_linger: 0 };
    // SAFETY: setsockopt on a socket we own, with a correctly sized linger.
    unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            &l as *const libc::linger as *const libc::c_void,
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
}

// ---------------------------------------------------------------------------
// UDP
// ---------------------------------------------------------------------------

/// What a [`UdpProxy`] does to datagrams (each direction alike).
#[derive(Clone, Debug)]
pub struct UdpFaults {
    /// Chances (per mille) that a datagram is dropped, sent twice, or held
    /// back (sent after the next one, or after `hold` if none comes).
    pub drop_per_mille: u32,
    pub dup_per_mille: u32,
    pub reorder_per_mille: u32,
    pub hold: Duration,
}

/// What a [`UdpProxy`] did.
#[derive(Debug, Default)]
pub struct UdpStats {
    pub passed: AtomicUsize,
    pub dropped: AtomicUsize,
    pub duplicated: AtomicUsize,
    pub reordered: AtomicUsize,
}

/// A UDP proxy on 127.0.0.1: each client address gets its own socket
/// towards the server, so replies find their way back.
pub struct UdpProxy {
    addr: SocketAddr,
    stats: Arc<UdpStats>,
    stop: Arc<AtomicBool>,
}

/// How often the proxy's loops look at the stop flag and held datagrams.
const TICK: Duration = Duration::from_millis(10);

impl UdpProxy {
    pub fn start(upstream: SocketAddr, faults: UdpFaults, seed: u64) -> UdpProxy {
        let front = UdpSocket::bind("127.0.0.1:0").expect("bind the udp proxy");
        front.set_read_timeout(Some(TICK)).unwrap();
        let addr = front.local_addr().unwrap();
        let stats = Arc::new(UdpStats::default());
        let stop = Arc::new(AtomicBool::new(false));
        let (st, stop2) = (stats.clone(), stop.clone());
        thread::spawn(move || {
            let mut rng = Rng::new(seed);
            let front = Arc::new(front);
            let mut backs: HashMap<SocketAddr, (Arc<UdpSocket>, Shuffle)> = HashMap::new();
            let mut buf = vec![0u8; 65536];
            while !stop2.load(Ordering::SeqCst) {
                let got = front.recv_from(&mut buf);
                for (back, sh) in backs.values_mut() {
                    sh.release_due(&|d| back.send(d).map(drop));
                }
                let Ok((n, client)) = got else { continue };
                let (back, sh) = backs.entry(client).or_insert_with(|| {
                    let back = Arc::new(UdpSocket::bind("127.0.0.1:0").unwrap());
                    back.connect(upstream).unwrap();
                    back.set_read_timeout(Some(TICK)).unwrap();
                    let (b, f, stop) = (back.clone(), front.clone(), stop2.clone());
                    let mut replies = Shuffle::new(faults.clone(), rng.fork(1), st.clone());
                    thread::spawn(move || {
                        let mut buf = vec![0u8; 65536];
                        while !stop.load(Ordering::SeqCst) {
                            let got = b.recv(&mut buf);
                            replies.release_due(&|d| f.send_to(d, client).map(drop));
                            if let Ok(n) = got {
                                replies.pass(&buf[..n], &|d| f.send_to(d, client).map(drop));
                            }
                        }
                    });
                    (back, Shuffle::new(faults.clone(), rng.fork(0), st.clone()))
                });
                sh.pass(&buf[..n], &|d| back.send(d).map(drop));
            }
        });
        UdpProxy { addr, stats, stop }
    }

    /// Where clients send.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn stats(&self) -> &UdpStats {
        &self.stats
    }
}

impl Drop for UdpProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// One direction's datagram faults.
struct Shuffle {
    faults: UdpFaults,
    rng: Rng,
    stats: Arc<UdpStats>,
    /// A datagram held back, and when it goes out anyway.
    held: Option<(Vec<u8>, Instant)>,
}

type Sink<'a> = &'a dyn Fn(&[u8]) -> std::io::Result<()>;

impl Shuffle {
    fn new(faults: UdpFaults, rng: Rng, stats: Arc<UdpStats>) -> Shuffle {
        Shuffle { faults, rng, stats, held: None }
    }

    /// One datagram arrived: drop, hold, or send it (once or twice), then
    /// whatever was held behind it.
    fn pass(&mut self, d: &[u8], send: Sink<'_>) {
        let f = &self.faults;
        if self.rng.chance(f.drop_per_mille) {
            self.stats.dropped.fetch_add(1, Ordering::SeqCst);
            return;
        }
        if self.held.is_none() && self.rng.chance(f.reorder_per_mille) {
            self.stats.reordered.fetch_add(1, Ordering::SeqCst);
            self.held = Some((d.to_vec(), Instant::now() + f.hold));
            return;
        }
        let copies = if self.rng.chance(f.dup_per_mille) { 2 } else { 1 };
        if copies == 2 {
            self.stats.duplicated.fetch_add(1, Ordering::SeqCst);
        }
        for _ in 0..copies {
            let _ = send(d);
        }
        self.stats.passed.fetch_add(1, Ordering::SeqCst);
        if let Some((h, _)) = self.held.take() {
            let _ = send(&h);
        }
    }

    /// Sends a held datagram whose time has come.
    fn release_due(&mut self, send: Sink<'_>) {
        if self.held.as_ref().is_some_and(|(_, at)| Instant::now() >= *at) {
            let (h, _) = self.held.take().unwrap();
            let _ = send(&h);
        }
    }
}
