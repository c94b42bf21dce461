//! `cargo bench --bench echo`: sockflow's echo server against a hand-written
//! epoll echo server in C, measured in the same run (see benches/README.md).
//!
//! * **Throughput.** `c_examples/echo_server.c` linked statically against
//!   the release `libsockflow.a`, and `benches/baseline/epoll_echo.c`
//!   (gcc -O2), each fed by the same load generator: N connections, each
//!   keeping `IN_FLIGHT` 64-byte lines in flight, for a warm-up and a
//!   measured window. Runs alternate (sockflow, baseline, sockflow,
//!   baseline, ...) with a fresh server per run. Reported: messages/s, the
//!   server's CPU time per million messages (utime+stime from
//!   /proc/PID/stat), and the ratios sockflow / baseline.
//! * **Memory.** `IDLE_CONNS` idle connections to each server, each having
//!   echoed one line; the server's VmRSS and RssAnon growth per connection.
//!
//! Prints a report; never fails on a number (only when a server cannot be
//! built or started). Every loop is bounded in count and time, servers are
//! killed by PID when dropped, and only 127.0.0.1 is used.

use mio::net::TcpStream as MioStream;
use mio::{Events, Interest, Poll, Token};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Bytes per message, newline included.
const MSG: usize = 64;
/// Messages each connection keeps in flight.
const IN_FLIGHT: usize = 16;
/// Connection counts for the throughput runs.
const CONN_COUNTS: [usize; 2] = [50, 200];
/// Runs per server and connection count (interleaved A B A B ...).
const ROUNDS: usize = 5;
const WARMUP: Duration = Duration::from_millis(500);
const MEASURE: Duration = Duration::from_secs(2);
/// Idle connections for the memory measurement.
const IDLE_CONNS: usize = 10_000;
/// Connections opened (and echoed once) per batch: below both servers'
/// listen backlog of 128, so no SYN is dropped and retried.
const BATCH: usize = 100;
/// The line each idle connection sends once.
const IDLE_LINE: &[u8] = b"hello from an idle connection\n";
/// The second memory scenario: lines sent at once by each connection
/// before it goes idle (a burst of `BURST_LINES` * `MSG` bytes).
const BURST_LINES: usize = 64;
/// The project's memory target per idle connection.
const TARGET_BYTES_PER_CONN: f64 = 512.0;
/// Longest wait for a server's "listening on" line.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest time to open all idle connections to one server.
const OPEN_TIMEOUT: Duration = Duration::from_secs(60);
/// Per-socket timeout for the blocking connects, writes and reads.
const IO_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Sockflow,
    Baseline,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Sockflow => "sockflow",
            Kind::Baseline => "epoll_echo",
        }
    }
}

struct Binaries {
    sockflow: PathBuf,
    baseline: PathBuf,
}

impl Binaries {
    fn path(&self, k: Kind) -> &Path {
        match k {
            Kind::Sockflow => &self.sockflow,
            Kind::Baseline => &self.baseline,
        }
    }
}

// ---------------------------------------------------------------------------
// Building the two servers
// ---------------------------------------------------------------------------

/// Where cargo put `libsockflow.a` for this (release) build: next to the
/// bench executable (`target/release/deps`) or its parent.
fn find_static_lib() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let deps = exe.parent().expect("bench executable has a directory").to_path_buf();
    for d in [Some(deps.as_path()), deps.parent()].into_iter().flatten() {
        let a = d.join("libsockflow.a");
        if a.is_file() {
            return a;
        }
    }
    panic!("libsockflow.a not found next to {} (is crate-type staticlib?)", exe.display())
}

fn run_cc(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    if !out.status.success() {
        panic!("{cmd:?} failed ({}):\n{}", out.status, String::from_utf8_lossy(&out.stderr));
    }
}

/// Compiles both servers into `$CARGO_TARGET_TMPDIR/echo-bench`. The static
/// library is copied first, so a concurrent `cargo build` cannot change it
/// under the linker.
fn build() -> Binaries {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("echo-bench");
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
    let pid = std::process::id();
    let lib = dir.join(format!("libsockflow.{pid}.a"));
    std::fs::copy(find_static_lib(), &lib).unwrap_or_else(|e| panic!("copy libsockflow.a: {e}"));
    let cc = std::env::var("CC").unwrap_or_else(|_| "gcc".into());
    let sockflow = dir.join("sockflow_echo_server");
    let baseline = dir.join("epoll_echo");
    run_cc(
        Command::new(&cc)
            .args(["-O2", "-std=c99", "-I"])
            .arg(root.join("include"))
            .arg(root.join("c_examples/echo_server.c"))
            .arg(&lib)
            .args("-lgcc_s -lutil -lrt -lpthread -lm -ldl -lc".split(' '))
            .arg("-o")
            .arg(&sockflow),
    );
    run_cc(
        Command::new(&cc)
            .args(["-O2", "-std=c99", "-Wall", "-Wextra", "-Werror"])
            .arg(root.join("benches/baseline/epoll_echo.c"))
            .arg("-o")
            .arg(&baseline),
    );
    let _ = std::fs::remove_file(&lib);
    Binaries { sockflow, baseline }
}

// ---------------------------------------------------------------------------
// A running server, killed by PID when dropped
// ---------------------------------------------------------------------------

struct Server {
    kind: Kind,
    child: Child,
    port: u16,
}

impl Server {
    /// Starts the server on a free port and waits for its readiness line.
    /// Its later stderr lines are passed on, prefixed with its name.
    fn start(kind: Kind, bins: &Binaries) -> Server {
        let mut cmd = Command::new(bins.path(kind));
        if kind == Kind::Sockflow {
            // echo_server is raw by default; the figures are for line frames.
            // Every bench connection comes from 127.0.0.1.
            cmd.args(["--frame", "line", "--max-per-ip", "1000000"]);
        }
        cmd.arg("0").stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("start {}: {e}", bins.path(kind).display()));
        let stderr = child.stderr.take().expect("piped stderr");
        let (tx, rx) = mpsc::channel();
        let name = kind.name();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                match (tx.is_some(), line.split_once("listening on ").and_then(|(_, rest)| rest.rsplit_once(" port "))) {
                    (true, Some((_, port))) => {
                        let _ = tx.take().expect("sender").send(port.trim().parse::<u16>().ok());
                    }
                    _ => eprintln!("  [{name} stderr] {line}"),
                }
            }
        });
        let mut server = Server { kind, child, port: 0 };
        match rx.recv_timeout(START_TIMEOUT) {
            Ok(Some(port)) => server.port = port,
            Ok(None) => panic!("{}: unreadable port in its readiness line", name),
            Err(_) => panic!("{}: no \"listening on\" line within {START_TIMEOUT:?}", name),
        }
        server
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// utime + stime so far, in seconds (all threads).
    fn cpu_seconds(&self) -> f64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid())).unwrap_or_default();
        // Fields after the command name (which may hold spaces): state is
        // field 3, utime 14, stime 15.
        let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
        let f: Vec<&str> = rest.split_whitespace().collect();
        let ticks = |i: usize| f.get(i).and_then(|s| s.parse::<u64>().ok()).unwrap_or(0);
        (ticks(11) + ticks(12)) as f64 / clock_ticks()
    }

    /// (VmRSS, RssAnon) in bytes.
    fn memory(&self) -> (u64, u64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|kb| kb.parse::<u64>().ok())
                .map_or(0, |kb| kb * 1024)
        };
        (field("VmRSS:"), field("RssAnon:"))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // SIGKILL by PID, then reap it.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn clock_ticks() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as f64
    } else {
        100.0
    }
}

/// This process's CPU time (user + system), in seconds.
fn self_cpu_seconds() -> f64 {
    // SAFETY: getrusage fills the struct it is given.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// Raises the soft descriptor limit to the hard one (children inherit it).
fn raise_nofile() -> u64 {
    // SAFETY: plain getrlimit/setrlimit on a local struct.
    unsafe {
        let mut r = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) != 0 {
            return 0;
        }
        if r.rlim_cur < r.rlim_max {
            let want = libc::rlimit { rlim_cur: r.rlim_max, rlim_max: r.rlim_max };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &want) == 0 {
                r = want;
            }
        }
        r.rlim_cur
    }
}

// ---------------------------------------------------------------------------
// Opening connections that each echoed one line
// ---------------------------------------------------------------------------

struct Opened {
    conns: Vec<TcpStream>,
    /// Why fewer than asked were opened.
    error: Option<String>,
}

/// Opens `n` blocking connections in batches of `BATCH`: connect the
/// batch, send `data` on each (one write), read each echo back. Stops at
/// the first failure or after `OPEN_TIMEOUT`.
fn open_echoed(addr: SocketAddr, n: usize, data: &[u8]) -> Opened {
    let deadline = Instant::now() + OPEN_TIMEOUT;
    let mut conns: Vec<TcpStream> = Vec::with_capacity(n);
    let mut echo = vec![0u8; data.len()];
    while conns.len() < n {
        if Instant::now() >= deadline {
            return Opened { error: Some(format!("time limit of {OPEN_TIMEOUT:?} reached")), conns };
        }
        let start = conns.len();
        for _ in 0..BATCH.min(n - start) {
            match TcpStream::connect_timeout(&addr, IO_TIMEOUT) {
                Ok(s) => conns.push(s),
                Err(e) => return Opened { error: Some(format!("connect #{}: {e}", conns.len() + 1)), conns },
            }
        }
        for (i, s) in conns[start..].iter_mut().enumerate() {
            let sent =
                s.set_read_timeout(Some(IO_TIMEOUT)).and_then(|_| s.set_write_timeout(Some(IO_TIMEOUT))).and_then(|_| s.write_all(data));
            if let Err(e) = sent {
                return Opened { error: Some(format!("send on connection #{}: {e}", start + i + 1)), conns };
            }
        }
        for (i, s) in conns[start..].iter_mut().enumerate() {
            if let Err(e) = s.read_exact(&mut echo) {
                return Opened { error: Some(format!("echo on connection #{}: {e}", start + i + 1)), conns };
            }
            if echo != data {
                return Opened { error: Some(format!("connection #{}: wrong echo", start + i + 1)), conns };
            }
        }
    }
    Opened { conns, error: None }
}

// ---------------------------------------------------------------------------
// Throughput: the load generator
// ---------------------------------------------------------------------------

struct Client {
    sock: MioStream,
    recv: u64,
    sent: u64,
    want_write: bool,
    dead: bool,
}

struct Run {
    msgs_per_s: f64,
    /// Server CPU seconds per million messages.
    cpu_per_m: f64,
    /// Server CPU use over the window (1.0 = one core).
    server_cpu: f64,
    /// Generator CPU use over the window (1.0 = one core).
    gen_cpu: f64,
    /// Problems seen (lost connections, framing).
    problems: Vec<String>,
}

struct Snapshot {
    at: Instant,
    recv: u64,
    server_cpu: f64,
    self_cpu: f64,
}

/// The bytes the generator writes: at least `IN_FLIGHT + 1` copies of one
/// message, so any write can start at any offset within a message (and
/// `BURST_LINES` of them for the burst scenario).
fn payload() -> Vec<u8> {
    let mut m: Vec<u8> = (0..MSG - 1).map(|i| b"abcdefghijklmnopqrstuvwxyz0123456789"[i % 36]).collect();
    m.push(b'\n');
    m.repeat((IN_FLIGHT + 1).max(BURST_LINES))
}

/// Writes until the client has `IN_FLIGHT` messages outstanding beyond
/// what it received whole.
fn top_up(c: &mut Client, k: usize, payload: &[u8], registry: &mio::Registry) {
    let target = (c.recv / MSG as u64 + IN_FLIGHT as u64) * MSG as u64;
    while c.sent < target && !c.dead {
        let off = (c.sent % MSG as u64) as usize;
        let len = ((target - c.sent) as usize).min(payload.len() - off);
        match c.sock.write(&payload[off..off + len]) {
            Ok(n) => c.sent += n as u64,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                if !c.want_write {
                    c.want_write = true;
                    let _ = registry.reregister(&mut c.sock, Token(k), Interest::READABLE | Interest::WRITABLE);
                }
                return;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => c.dead = true,
        }
    }
    if c.want_write {
        c.want_write = false;
        let _ = registry.reregister(&mut c.sock, Token(k), Interest::READABLE);
    }
}

/// Drives `n` pipelining connections against `server` for `WARMUP` +
/// `MEASURE`, on this thread (one mio loop).
fn throughput(server: &Server, n: usize, payload: &[u8]) -> Run {
    let opened = open_echoed(server.addr(), n, IDLE_LINE);
    if let Some(e) = &opened.error {
        panic!("{}: opening {n} connections: {e}", server.kind.name());
    }
    let mut poll = Poll::new().expect("epoll");
    let mut clients: Vec<Client> = Vec::with_capacity(n);
    for (k, s) in opened.conns.into_iter().enumerate() {
        s.set_nonblocking(true).expect("nonblocking");
        s.set_nodelay(true).expect("nodelay");
        let mut sock = MioStream::from_std(s);
        poll.registry().register(&mut sock, Token(k), Interest::READABLE).expect("register");
        clients.push(Client { sock, recv: 0, sent: 0, want_write: false, dead: false });
    }
    let mut events = Events::with_capacity(1024);
    let mut buf = vec![0u8; 64 * 1024];
    let mut recv_total = 0u64;
    let mut newlines = 0u64;
    for (k, c) in clients.iter_mut().enumerate() {
        top_up(c, k, payload, poll.registry());
    }
    let t0 = Instant::now();
    let warm_end = t0 + WARMUP;
    let end = warm_end + MEASURE;
    let mut first: Option<Snapshot> = None;
    let snapshot = |recv: u64| Snapshot { at: Instant::now(), recv, server_cpu: server.cpu_seconds(), self_cpu: self_cpu_seconds() };
    loop {
        let now = Instant::now();
        if now >= end {
            break;
        }
        if first.is_none() && now >= warm_end {
            first = Some(snapshot(recv_total));
        }
        let next = if first.is_none() { warm_end } else { end };
        if let Err(e) = poll.poll(&mut events, Some(next.saturating_duration_since(now))) {
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            panic!("epoll_wait: {e}");
        }
        for ev in events.iter() {
            let k = ev.token().0;
            let c = &mut clients[k];
            if c.dead {
                continue;
            }
            if ev.is_readable() || ev.is_read_closed() || ev.is_error() {
                // Edge-triggered: read until the socket is empty (bounded).
                // A short read means it was empty then, and on Linux any byte
                // arriving later raises a new edge, so the read that would
                // only say EAGAIN is skipped: a cheaper generator.
                for _ in 0..64 {
                    match c.sock.read(&mut buf) {
                        Ok(0) => {
                            c.dead = true;
                            break;
                        }
                        Ok(got) => {
                            c.recv += got as u64;
                            recv_total += got as u64;
                            newlines += buf[..got].iter().filter(|&&b| b == b'\n').count() as u64;
                            if got < buf.len() {
                                break;
                            }
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(_) => {
                            c.dead = true;
                            break;
                        }
                    }
                }
            }
            top_up(c, k, payload, poll.registry());
        }
    }
    let last = snapshot(recv_total);
    let first = first.unwrap_or(Snapshot { at: t0, recv: 0, server_cpu: last.server_cpu, self_cpu: last.self_cpu });
    let secs = last.at.duration_since(first.at).as_secs_f64().max(1e-9);
    let msgs = (last.recv - first.recv) as f64 / MSG as f64;
    let server_cpu = last.server_cpu - first.server_cpu;
    let mut problems = Vec::new();
    let dead = clients.iter().filter(|c| c.dead).count();
    if dead > 0 {
        problems.push(format!("{dead} of {n} connections closed or failed during the run"));
    }
    let whole: u64 = clients.iter().map(|c| c.recv / MSG as u64).sum();
    if whole != newlines {
        problems.push(format!("framing: {newlines} newlines received for {whole} whole {MSG}-byte messages"));
    }
    Run {
        msgs_per_s: msgs / secs,
        cpu_per_m: if msgs > 0.0 { server_cpu / msgs * 1e6 } else { f64::NAN },
        server_cpu: server_cpu / secs,
        gen_cpu: (last.self_cpu - first.self_cpu) / secs,
        problems,
    }
}

// ---------------------------------------------------------------------------
// Memory per idle connection
// ---------------------------------------------------------------------------

struct Mem {
    before: (u64, u64),
    after: (u64, u64),
    conns: usize,
    error: Option<String>,
}

impl Mem {
    fn per_conn(&self) -> (f64, f64) {
        let n = self.conns.max(1) as f64;
        ((self.after.0 as f64 - self.before.0 as f64) / n, (self.after.1 as f64 - self.before.1 as f64) / n)
    }
}

/// `IDLE_CONNS` connections to a fresh server, each having sent `data` and
/// read its echo; the server's memory growth.
fn memory(kind: Kind, bins: &Binaries, data: &[u8]) -> Mem {
    let server = Server::start(kind, bins);
    // Served one connection (buffers, tables and lazy statics touched), closed.
    let one = open_echoed(server.addr(), 1, data);
    if let Some(e) = one.error {
        panic!("{}: first connection: {e}", kind.name());
    }
    drop(one.conns);
    std::thread::sleep(Duration::from_millis(200));
    let before = server.memory();
    let opened = open_echoed(server.addr(), IDLE_CONNS, data);
    std::thread::sleep(Duration::from_millis(300));
    let after = server.memory();
    let conns = opened.conns.len();
    // The server goes first (its side closes), then the client sockets.
    drop(server);
    drop(opened.conns);
    Mem { before, after, conns, error: opened.error }
}

// ---------------------------------------------------------------------------
// Report
// ---------------------------------------------------------------------------

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

fn thousands(x: f64) -> String {
    let s = format!("{:.0}", x.max(0.0));
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

fn machine() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| s.lines().find_map(|l| l.strip_prefix("model name").map(|m| m.trim_start_matches([' ', '\t', ':']).to_string())))
        .unwrap_or_else(|| "unknown CPU".into());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!("{cpus} CPUs ({model}), Linux {}", kernel.trim())
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg").map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" ")).unwrap_or_default()
}

fn main() {
    // `cargo test --all-targets` runs bench targets too, without `--bench`
    // and in the debug profile: measure nothing there.
    if !std::env::args().any(|a| a == "--bench") {
        println!("echo bench: skipped (run it with `cargo bench --bench echo`)");
        return;
    }
    let started = Instant::now();
    let nofile = raise_nofile();
    println!("sockflow echo benchmark: sockflow vs a hand-written epoll server in C, same run, same load generator");
    println!("  sockflow : c_examples/echo_server.c, gcc -O2, static libsockflow.a of this (release) build, line frames");
    println!("  baseline : benches/baseline/epoll_echo.c (single-threaded level-triggered epoll), gcc -O2");
    println!("  machine  : {}; load average at start {}; descriptor limit {nofile}", machine(), loadavg());
    println!("  note     : servers and the load generator (one thread) share the CPUs; on a 2-CPU machine each server");
    println!("             competes with the generator and with anything else running. Read the ratios, not the absolutes.");
    let bins = build();

    // Throughput.
    println!();
    println!(
        "throughput: {MSG}-byte lines, {IN_FLIGHT} in flight per connection, {:.1} s warm-up + {:.1} s measured per run,",
        WARMUP.as_secs_f64(),
        MEASURE.as_secs_f64()
    );
    println!("            a fresh server per run, runs interleaved sockflow / baseline, {ROUNDS} rounds");
    println!(
        "  {:>5}  {:>5}  {:<10}  {:>12}  {:>10}  {:>16}  {:>13}",
        "conns", "round", "server", "msgs/s", "server CPU", "CPU s / M msgs", "generator CPU"
    );
    let payload = payload();
    let mut summary = Vec::new();
    for &n in &CONN_COUNTS {
        let mut rate = [Vec::new(), Vec::new()];
        let mut cpu = [Vec::new(), Vec::new()];
        let mut gen_busy = false;
        for round in 1..=ROUNDS {
            for (i, kind) in [Kind::Sockflow, Kind::Baseline].into_iter().enumerate() {
                let server = Server::start(kind, &bins);
                let r = throughput(&server, n, &payload);
                drop(server);
                println!(
                    "  {n:>5}  {round:>5}  {:<10}  {:>12}  {:>9.0}%  {:>16.3}  {:>12.0}%",
                    kind.name(),
                    thousands(r.msgs_per_s),
                    r.server_cpu * 100.0,
                    r.cpu_per_m,
                    r.gen_cpu * 100.0
                );
                for p in &r.problems {
                    println!("         WARNING ({}): {p}", kind.name());
                }
                gen_busy |= r.gen_cpu > 0.9;
                rate[i].push(r.msgs_per_s);
                cpu[i].push(r.cpu_per_m);
            }
        }
        // Paired ratios: each round's sockflow run against the baseline run
        // right after it, so slow drifts of the machine's load cancel out.
        let mut rate_ratio: Vec<f64> = rate[0].iter().zip(&rate[1]).map(|(a, b)| a / b).collect();
        let mut cpu_ratio: Vec<f64> = cpu[0].iter().zip(&cpu[1]).map(|(a, b)| a / b).collect();
        let list = |v: &[f64]| v.iter().map(|r| format!("{r:.2}")).collect::<Vec<_>>().join(" ");
        println!("  {n:>5}  median msgs/s: sockflow {}, baseline {}", thousands(median(&mut rate[0])), thousands(median(&mut rate[1])));
        let (rate_list, cpu_list) = (list(&rate_ratio), list(&cpu_ratio));
        let (rr, cr) = (median(&mut rate_ratio), median(&mut cpu_ratio));
        println!("         throughput ratio sockflow/baseline: median {rr:.2} (rounds: {rate_list})");
        println!("         CPU-per-message ratio sockflow/baseline: median {cr:.2} (rounds: {cpu_list}; above 1 = sockflow spends more)");
        if gen_busy {
            println!(
                "         note: the generator used over 90% of a CPU in some run; it may be the limit there, so the CPU ratio says more"
            );
        }
        summary.push((n, rr, cr));
    }

    // Memory.
    println!();
    println!("memory: {IDLE_CONNS} idle connections per server (a fresh server per row), each having sent something and read");
    println!("        its echo; growth of the server's VmRSS and RssAnon (/proc/PID/status) from after its first");
    println!("        connection (which sent the same) to after the last one. Kernel socket memory is in neither.");
    println!(
        "  {:<10}  {:<24}  {:>10}  {:>10}  {:>6}  {:>12}  {:>16}",
        "server", "each connection sent", "RSS before", "RSS after", "conns", "RSS B / conn", "RssAnon B / conn"
    );
    let burst = payload[..BURST_LINES * MSG].to_vec();
    let scenarios: [(String, &[u8]); 2] =
        [(format!("one {}-byte line", IDLE_LINE.len()), IDLE_LINE), (format!("{BURST_LINES} lines in one write"), &burst)];
    let mut per = Vec::new();
    for (label, data) in &scenarios {
        let mut row = Vec::new();
        for kind in [Kind::Sockflow, Kind::Baseline] {
            let m = memory(kind, &bins, data);
            let (rss, anon) = m.per_conn();
            println!(
                "  {:<10}  {:<24}  {:>6} KiB  {:>6} KiB  {:>6}  {:>12.0}  {:>16.0}",
                kind.name(),
                label,
                thousands(m.before.0 as f64 / 1024.0),
                thousands(m.after.0 as f64 / 1024.0),
                m.conns,
                rss,
                anon
            );
            if let Some(e) = &m.error {
                println!("         WARNING ({}): only {} connections opened: {e}", kind.name(), m.conns);
            }
            row.push((rss, anon));
        }
        let (s, b) = (row[0], row[1]);
        println!("  {:<10}  {:<24}  ratio sockflow/baseline: RSS {:.2}, RssAnon {:.2}", "", "", s.0 / b.0.max(1.0), s.1 / b.1.max(1.0));
        per.push(row);
    }
    let (s, b) = (per[0][0], per[0][1]);
    let (sb, bb) = (per[1][0], per[1][1]);

    // Summary.
    println!();
    println!("summary (ratios sockflow / baseline; higher throughput and lower CPU and memory are better):");
    for (n, t, c) in summary {
        let verdict = if t >= 1.0 { "at or above" } else { "below" };
        println!("  {n:>5} connections: throughput {t:.2} ({verdict} the baseline), CPU per message {c:.2}");
    }
    println!(
        "  memory per idle connection: sockflow {:.0} B RSS ({:.0} B anon), baseline {:.0} B RSS; target < {TARGET_BYTES_PER_CONN:.0} B: {}",
        s.0,
        s.1,
        b.0,
        if s.0 < TARGET_BYTES_PER_CONN { "met" } else { "NOT met" }
    );
    println!(
        "  idle after a {} B burst: sockflow {:.0} B RSS per connection, baseline {:.0} B ({})",
        BURST_LINES * MSG,
        sb.0,
        bb.0,
        if sb.0 < TARGET_BYTES_PER_CONN { "under the target too" } else { "over the target: buffers kept after the burst" }
    );
    println!("  total bench time {:.0} s", started.elapsed().as_secs_f64());
}
