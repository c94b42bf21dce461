//! The timed scenarios: a fresh server per run, runs interleaved (every
//! server once per round, in the table's order), each run a warm-up and a
//! measured window (see `gen::measure`). One line per run goes to stderr.

use super::Ctx;
use crate::binaries::{Impl, Mode};
use crate::gen::tls::{self, Link};
use crate::gen::{self, connect, lockstep, stream, udp, Measured};
use crate::report::{Better, Row, Target, Unit};
use crate::server::Server;

/// The load a scenario puts on each server.
#[derive(Clone, Copy)]
pub enum Load {
    /// Pipelined `stream` connections.
    Stream { conns: usize, shape: stream::Shape },
    /// One `stream` connection moving large writes (reported in MB).
    Bulk(stream::Shape),
    /// Lock-step request/response connections.
    LockStep { conns: usize, size: usize },
    /// Connect + one echo + close, `parallel` at a time.
    Connect { parallel: usize, size: usize },
    /// UDP request/response with `in_flight` datagrams outstanding.
    Udp { in_flight: usize, size: usize },
    /// Lock-step over blocking connections, plain or TLS by the column's
    /// `Link` (`gen::tls`), reported as messages.
    LinkEcho { conns: usize, size: usize },
    /// Connect (+ TLS handshake) + one echo + close, `parallel` at a time,
    /// over the column's `Link` (`gen::tls`).
    LinkChurn { parallel: usize, size: usize },
}

pub struct Spec {
    pub id: &'static str,
    pub label: &'static str,
    pub mode: Mode,
    pub load: Load,
    /// The target for the rate ratio and the cost ratio (None: no
    /// target).
    pub targets: [Option<f64>; 2],
    /// Load generator threads, when the scenario fixes them (None: as
    /// `SOCKFLOW_BENCH_GEN_THREADS` says).
    pub gen_threads: Option<usize>,
}

const LINE: stream::Shape = stream::Shape { msg: 64, in_flight: 16 * 64, write: 16 * 64 };
const BULK: stream::Shape = stream::Shape { msg: 64, in_flight: 16 << 20, write: 64 << 10 };

const UDP_32: Spec = Spec {
    id: "udp_32",
    label: "UDP 64 B request/response, 32 in flight",
    mode: Mode::Udp,
    load: Load::Udp { in_flight: 32, size: 64 },
    targets: [Some(1.3), None],
    gen_threads: None,
};

pub const SCENARIOS: &[Spec] = &[
    Spec {
        id: "line_50",
        label: "pipelined line echo, 50 conns",
        mode: Mode::Line,
        load: Load::Stream { conns: 50, shape: LINE },
        targets: [Some(1.0), Some(0.95)],
        gen_threads: None,
    },
    Spec {
        id: "line_200",
        label: "pipelined line echo, 200 conns",
        mode: Mode::Line,
        load: Load::Stream { conns: 200, shape: LINE },
        targets: [Some(1.0), Some(0.95)],
        gen_threads: None,
    },
    Spec {
        id: "rr_1",
        label: "lock-step 64 B raw, 1 conn",
        mode: Mode::Raw,
        load: Load::LockStep { conns: 1, size: 64 },
        targets: [Some(1.0), Some(1.0)],
        gen_threads: None,
    },
    Spec {
        id: "rr_500",
        label: "lock-step 64 B raw, 500 conns",
        mode: Mode::Raw,
        load: Load::LockStep { conns: 500, size: 64 },
        targets: [Some(1.0), Some(1.0)],
        gen_threads: None,
    },
    Spec {
        id: "bulk",
        label: "bulk stream, 64 KiB writes, 16 MiB in flight",
        mode: Mode::Raw,
        load: Load::Bulk(BULK),
        targets: [Some(1.0), Some(1.0)],
        gen_threads: None,
    },
    Spec {
        id: "connect_16",
        label: "connect + echo + close, 16 at a time",
        mode: Mode::Raw,
        load: Load::Connect { parallel: 16, size: 64 },
        targets: [Some(1.0), None],
        gen_threads: None,
    },
    UDP_32,
    // The same on two generator threads (two sockets, 16 in flight each):
    // on one, the generator runs at 95-97% of a core and is the limit
    // (benches/README.md, UDP).
    Spec { id: "udp_32_2t", label: "UDP 64 B req/resp, 32 in flight, gen 2 threads", gen_threads: Some(2), ..UDP_32 },
];

fn target(t: Option<f64>) -> Target {
    t.map_or(Target::None, Target::Ratio)
}

/// How one run's measurements become the values of a scenario's rows.
type Values = fn(&mut Measured) -> Vec<f64>;

/// The rows of a scenario, and how one run fills them.
fn rows(s: &Spec, label: &str) -> (Vec<Row>, Values) {
    let [rate_t, cost_t] = s.targets;
    let r = |metric, key, unit, better, t| Row::new(s.id, label, metric, key, unit, better, t);
    match s.load {
        Load::Bulk(_) => (
            vec![
                r("MB/s", "mb_per_s", Unit::MBps, Better::Higher, target(rate_t)),
                r("CPU/MB", "cpu_us_per_mb", Unit::Micros, Better::Lower, target(cost_t)),
            ],
            |m| vec![m.per_sec(m.tally.bytes) / 1e6, m.cpu_us_per(m.tally.bytes) * 1e6],
        ),
        Load::Stream { .. } | Load::LinkEcho { .. } => (
            vec![
                r("msgs/s", "msgs_per_s", Unit::PerSec, Better::Higher, target(rate_t)),
                r("CPU/msg", "cpu_us_per_msg", Unit::Micros, Better::Lower, target(cost_t)),
            ],
            |m| vec![m.per_sec(m.tally.ops), m.cpu_us_per(m.tally.ops)],
        ),
        Load::LockStep { conns, .. } => (
            vec![
                r("round trips/s", "rt_per_s", Unit::PerSec, Better::Higher, target(rate_t)),
                r("CPU/round trip", "cpu_us_per_rt", Unit::Micros, Better::Lower, target(cost_t)),
                r("p99 latency", "p99_us", Unit::Micros, Better::Lower, if conns > 1 { Target::Ratio(1.0) } else { Target::None }),
            ],
            |m| vec![m.per_sec(m.tally.ops), m.cpu_us_per(m.tally.ops), m.tally.p99_us()],
        ),
        Load::Connect { .. } | Load::LinkChurn { .. } => (
            vec![
                r("conns/s", "conns_per_s", Unit::PerSec, Better::Higher, target(rate_t)),
                r("CPU/conn", "cpu_us_per_conn", Unit::Micros, Better::Lower, target(cost_t)),
            ],
            |m| vec![m.per_sec(m.tally.ops), m.cpu_us_per(m.tally.ops)],
        ),
        Load::Udp { .. } => (
            vec![
                r("round trips/s", "rt_per_s", Unit::PerSec, Better::Higher, target(rate_t)),
                r("CPU/round trip", "cpu_us_per_rt", Unit::Micros, Better::Lower, target(cost_t)),
            ],
            |m| vec![m.per_sec(m.tally.ops), m.cpu_us_per(m.tally.ops)],
        ),
    }
}

/// One measured run of `load` against `server`, on `threads` generator
/// threads; `link` is how the `Link*` loads connect.
fn one_run(ctx: &Ctx<'_>, server: &Server, load: Load, threads: usize, link: &Link) -> Measured {
    let (pid, addr, warm, win) = (server.pid(), server.addr(), ctx.cfg.warmup, ctx.cfg.measure);
    let sh = |n: usize, i: usize| gen::share(n, threads, i);
    match load {
        Load::Stream { conns, shape } => {
            gen::measure(pid, threads, warm, win, |i| stream::setup(addr, sh(conns, i)), |st, w| stream::run(st, shape, w))
        }
        Load::Bulk(shape) => gen::measure(pid, threads, warm, win, |i| stream::setup(addr, sh(1, i)), |st, w| stream::run(st, shape, w)),
        Load::LockStep { conns, size } => {
            gen::measure(pid, threads, warm, win, |i| lockstep::setup(addr, sh(conns, i)), |st, w| lockstep::run(st, size, w))
        }
        Load::Connect { parallel, size } => {
            gen::measure(pid, threads, warm, win, |i| connect::setup(addr, sh(parallel, i)), |st, w| connect::run(st, size, w))
        }
        Load::Udp { in_flight, size } => {
            gen::measure(pid, threads, warm, win, |i| udp::setup(addr, sh(in_flight, i)), |st, w| udp::run(st, size, w))
        }
        Load::LinkEcho { conns, size } => {
            gen::measure(pid, threads, warm, win, |i| tls::echo_setup(addr, sh(conns, i), link), |st, w| tls::echo_run(st, size, w))
        }
        Load::LinkChurn { parallel, size } => {
            gen::measure(pid, threads, warm, win, |i| tls::churn_setup(addr, sh(parallel, i), link), |st, w| tls::churn_run(st, size, w))
        }
    }
}

/// One server of a scenario: its column, its name in the per-run lines,
/// how to start it, and how the generator connects to it (plain TCP but in
/// the `tls_*` scenarios).
pub type Contender<'a> = (Impl, &'a str, &'a dyn Fn() -> Server, &'a Link);

/// Runs `s` against `servers` for the configured rounds, on `threads`
/// generator threads.
pub fn rounds(ctx: &mut Ctx<'_>, s: &Spec, label: &str, servers: &[Contender<'_>], threads: usize) -> Vec<Row> {
    let (mut rows, values) = rows(s, label);
    for round in 1..=ctx.cfg.rounds {
        for (imp, name, start, link) in servers {
            let server = start();
            let mut m = one_run(ctx, &server, s.load, threads, link);
            drop(server);
            let v = values(&mut m);
            let shown: Vec<String> = rows.iter().zip(&v).map(|(r, x)| format!("{} {}", r.metric, crate::report::fmt(r.unit, *x))).collect();
            eprintln!(
                "  {} round {round} {name:<9}: {}; server user {:.0}%; generator CPU {:.0}%",
                s.id,
                shown.join(", "),
                m.user_share() * 100.0,
                m.gen_load() * 100.0
            );
            for p in &m.tally.problems {
                eprintln!("    WARNING ({} {name}): {p}", s.id);
                ctx.note(format!("{} {name}: {p} (round {round})", s.id));
            }
            for (row, x) in rows.iter_mut().zip(v) {
                row.push(*imp, x);
                row.gen_load.push(m.gen_load());
            }
        }
    }
    rows
}

/// Runs one timed scenario against every server that speaks its mode.
pub fn run(ctx: &mut Ctx<'_>, s: &Spec) -> Vec<Row> {
    let bins = ctx.bins;
    let starts: Vec<(Impl, Box<dyn Fn() -> Server>)> = ctx
        .impls(s.mode)
        .into_iter()
        .map(|imp| (imp, Box::new(move || Server::start(bins, imp, s.mode, None)) as Box<dyn Fn() -> Server>))
        .collect();
    let plain = Link::Plain;
    let servers: Vec<Contender<'_>> = starts.iter().map(|(i, f)| (*i, i.name(), f.as_ref(), &plain)).collect();
    let threads = s.gen_threads.unwrap_or(ctx.cfg.gen_threads);
    rounds(ctx, s, s.label, &servers, threads)
}

/// sockflow with `--workers 2` (sockflow column) against `--workers 1`
/// (baseline column), 200 pipelined line connections, the generator on 2
/// threads. Runs only when `echo_server` takes `--workers`; until then a
/// note says it was skipped.
pub fn workers(ctx: &mut Ctx<'_>) -> Vec<Row> {
    if !ctx.bins.sockflow_workers {
        ctx.note("workers: c_examples/echo_server has no --workers option in this build; the 1 vs 2 workers scenario was skipped");
        return Vec::new();
    }
    let s = Spec {
        id: "workers",
        label: "",
        mode: Mode::Line,
        load: Load::Stream { conns: 200, shape: LINE },
        targets: [None, Some(1.1)],
        gen_threads: Some(2),
    };
    let bins = ctx.bins;
    let two = move || Server::start(bins, Impl::Sockflow, Mode::Line, Some(2));
    let one = move || Server::start(bins, Impl::Sockflow, Mode::Line, Some(1));
    ctx.note("workers: the sockflow column is --workers 2, the baseline column --workers 1 (same program), generator on 2 threads");
    rounds(
        ctx,
        &s,
        "line echo 200 conns: 2 workers / 1 worker",
        &[(Impl::Sockflow, "2 workers", &two, &Link::Plain), (Impl::Epoll, "1 worker", &one, &Link::Plain)],
        2,
    )
}
