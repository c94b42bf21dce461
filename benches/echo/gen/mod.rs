//! The load generators, and how a run is measured.
//!
//! Every generator runs on `threads` threads (1 by default, 2 with
//! `SOCKFLOW_BENCH_GEN_THREADS=2`), the connections split between them, each
//! thread one mio (edge-triggered epoll) loop or one blocking socket. A run
//! is: every thread sets up (connects), all meet at a gate, then load runs
//! for the warm-up and the measured window. Only what completes inside the
//! window is counted; the server's CPU (/proc/PID/stat) and the
//! generator's own (getrusage, all threads) are read at the window's two
//! ends by the main thread, which does nothing else meanwhile.

pub mod connect;
pub mod idle;
pub mod lockstep;
pub mod stream;
pub mod tls;
pub mod udp;

use crate::sys;
use std::sync::{Barrier, OnceLock};
use std::time::{Duration, Instant};

/// Opens `n` connections, each echoed one line first (so the server has
/// accepted them all before the window), non-blocking, without Nagle, and
/// registered readable with token = index in a new poller: the set-up the
/// mio generators share.
pub fn open_polled(addr: std::net::SocketAddr, n: usize) -> Result<(mio::Poll, Vec<mio::net::TcpStream>), String> {
    let opened = idle::open_echoed(addr, n, 1, b"ready\n", Duration::from_secs(30));
    if let Some(e) = opened.error {
        return Err(format!("opening {n} connections: {e}"));
    }
    let poll = mio::Poll::new().map_err(|e| format!("epoll: {e}"))?;
    let mut socks = Vec::with_capacity(n);
    for (k, s) in opened.conns.into_iter().enumerate() {
        s.set_nonblocking(true).and_then(|_| s.set_nodelay(true)).map_err(|e| format!("socket options: {e}"))?;
        let mut sock = mio::net::TcpStream::from_std(s);
        poll.registry().register(&mut sock, mio::Token(k), mio::Interest::READABLE).map_err(|e| format!("register: {e}"))?;
        socks.push(sock);
    }
    Ok((poll, socks))
}

/// Per-socket timeout for blocking connects, writes and reads.
pub const IO_TIMEOUT: Duration = Duration::from_secs(5);

/// The measured window; load runs until `end`.
pub struct Window {
    pub start: Instant,
    pub end: Instant,
}

impl Window {
    pub fn counts(&self, t: Instant) -> bool {
        t >= self.start && t < self.end
    }

    /// Time left until the end (zero once over).
    pub fn left(&self, now: Instant) -> Duration {
        self.end.saturating_duration_since(now)
    }
}

/// What one thread (or, merged, a whole run) saw in the window.
#[derive(Default)]
pub struct Tally {
    /// Completed operations: messages echoed, round trips, connections.
    pub ops: u64,
    /// Bytes echoed back.
    pub bytes: u64,
    /// Round-trip latencies, nanoseconds (lock-step only).
    pub lat_ns: Vec<u64>,
    /// Problems seen (lost connections, framing, lost datagrams).
    pub problems: Vec<String>,
}

impl Tally {
    fn merge(&mut self, o: Tally) {
        self.ops += o.ops;
        self.bytes += o.bytes;
        self.lat_ns.extend(o.lat_ns);
        self.problems.extend(o.problems);
    }

    /// The 99th percentile latency in microseconds (NaN without samples).
    pub fn p99_us(&mut self) -> f64 {
        if self.lat_ns.is_empty() {
            return f64::NAN;
        }
        self.lat_ns.sort_unstable();
        let i = ((self.lat_ns.len() as f64 * 0.99).ceil() as usize).clamp(1, self.lat_ns.len()) - 1;
        self.lat_ns[i] as f64 / 1e3
    }
}

/// One measured run.
pub struct Measured {
    pub secs: f64,
    pub tally: Tally,
    /// Server CPU seconds over the window.
    pub server_cpu: f64,
    /// Of which in user space.
    pub server_user: f64,
    /// Generator CPU seconds over the window (all its threads).
    pub gen_cpu: f64,
}

impl Measured {
    pub fn per_sec(&self, x: u64) -> f64 {
        x as f64 / self.secs
    }

    /// Server CPU microseconds per unit of `x` (NaN when nothing happened).
    pub fn cpu_us_per(&self, x: u64) -> f64 {
        if x == 0 {
            f64::NAN
        } else {
            self.server_cpu / x as f64 * 1e6
        }
    }

    /// The share of the server's CPU time spent in user space.
    pub fn user_share(&self) -> f64 {
        self.server_user / self.server_cpu.max(1e-9)
    }

    /// The generator's CPU use over the window; 1.0 = one core.
    pub fn gen_load(&self) -> f64 {
        self.gen_cpu / self.secs
    }
}

/// Where the threads meet once set up; the window starts then.
pub struct Gate {
    barrier: Barrier,
    window: OnceLock<Window>,
}

impl Gate {
    /// Waits for every thread to be set up; the window to run in (set by
    /// the main thread between the two waits, so that set-up time is not
    /// taken from the warm-up).
    pub fn ready(&self) -> &Window {
        self.barrier.wait();
        self.barrier.wait();
        self.window.get().expect("set before the gate opens")
    }
}

/// How many of `n` items thread `i` of `threads` takes.
pub fn share(n: usize, threads: usize, i: usize) -> usize {
    n / threads + usize::from(i < n % threads)
}

/// Runs a generator on `threads` threads against the server with PID
/// `server_pid`. `setup(i)` prepares thread `i` (an error ends the bench:
/// a server that cannot be connected to cannot be measured), `run` loads
/// the server until the window's end.
pub fn measure<S>(
    server_pid: u32,
    threads: usize,
    warmup: Duration,
    window: Duration,
    setup: impl Fn(usize) -> Result<S, String> + Sync,
    run: impl Fn(S, &Window) -> Tally + Sync,
) -> Measured {
    let gate = Gate { barrier: Barrier::new(threads + 1), window: OnceLock::new() };
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|i| {
                let (gate, setup, run) = (&gate, &setup, &run);
                s.spawn(move || {
                    let state = setup(i);
                    let w = gate.ready();
                    state.map(|st| run(st, w))
                })
            })
            .collect();
        gate.barrier.wait();
        let start = Instant::now() + warmup;
        let end = start + window;
        let _ = gate.window.set(Window { start, end });
        gate.barrier.wait();
        std::thread::sleep(start.saturating_duration_since(Instant::now()));
        let (cpu0, gen0, t0) = (sys::proc_cpu_seconds(server_pid), sys::self_cpu_seconds(), Instant::now());
        std::thread::sleep(end.saturating_duration_since(Instant::now()));
        let (cpu1, gen1, t1) = (sys::proc_cpu_seconds(server_pid), sys::self_cpu_seconds(), Instant::now());
        let mut tally = Tally::default();
        for h in handles {
            match h.join().expect("generator thread panicked") {
                Ok(t) => tally.merge(t),
                Err(e) => panic!("load generator setup: {e}"),
            }
        }
        let (user, cpu) = (cpu1.0 - cpu0.0, cpu1.0 + cpu1.1 - cpu0.0 - cpu0.1);
        Measured { secs: t1.duration_since(t0).as_secs_f64().max(1e-9), tally, server_cpu: cpu, server_user: user, gen_cpu: gen1 - gen0 }
    })
}

/// `copies` copies of a `len`-byte line (`len - 1` letters and `\n`).
pub fn lines(len: usize, copies: usize) -> Vec<u8> {
    let mut m: Vec<u8> = (0..len - 1).map(|i| b"abcdefghijklmnopqrstuvwxyz0123456789"[i % 36]).collect();
    m.push(b'\n');
    m.repeat(copies)
}
