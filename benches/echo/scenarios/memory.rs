//! Memory per idle connection: a fresh server serves one connection (so
//! its buffers, tables and lazy statics are touched), which closes; then N
//! connections are opened, each sending one 30-byte line and reading its
//! echo before going idle. The server's VmRSS growth / N is the figure.
//! Kernel memory (socket buffers, epoll items) is in no server's RSS.
//!
//! At 100,000 connections (`SOCKFLOW_BENCH_BIG_IDLE`) the bench and each
//! server need over 100,000 descriptors: the limit is raised (the hard one
//! too when allowed: CAP_SYS_RESOURCE); when it cannot be, the scenario is
//! skipped with a note. Connections come from 127.0.0.1, 127.0.0.2, ...
//! (see `gen::idle`). After the RSS reading every connection sends one
//! more line and reads its echo.

use super::Ctx;
use crate::binaries::{self, Impl, Mode};
use crate::gen::idle;
use crate::report::{self, Better, Row, Target, Unit};
use crate::server::Server;
use crate::sys;
use std::time::{Duration, Instant};

const LINE: &[u8] = b"hello from an idle connection\n";
/// The target per idle connection.
const TARGET_BYTES: f64 = 64.0;

struct Held {
    server: Server,
    conns: Vec<std::net::TcpStream>,
    per_conn: f64,
    error: Option<String>,
}

/// `n` idle connections from `sources` addresses to a fresh `imp` server;
/// its RSS growth per connection. The connections stay open (returned with
/// the server).
fn hold(ctx: &Ctx<'_>, imp: Impl, n: usize, sources: u8, limit: Duration) -> Held {
    let server = match imp {
        // echo_server's default max_conns is 10,000: past that, the same
        // server with the limit raised.
        Impl::Sockflow if n > 10_000 => {
            let mut args = binaries::sockflow_tcp_args("line");
            args.push("0".into());
            Server::spawn(imp.name(), &ctx.bins.sockflow_many, &args)
        }
        _ => Server::start(ctx.bins, imp, Mode::Line, None),
    };
    let warm = idle::open_echoed(server.addr(), 1, 1, LINE, Duration::from_secs(10));
    if let Some(e) = warm.error {
        panic!("{}: first connection: {e}", imp.name());
    }
    drop(warm.conns);
    std::thread::sleep(Duration::from_millis(200));
    let before = server.rss();
    let opened = idle::open_echoed(server.addr(), n, sources, LINE, limit);
    std::thread::sleep(Duration::from_millis(300));
    let after = server.rss();
    let got = opened.conns.len().max(1);
    Held { per_conn: (after as f64 - before as f64) / got as f64, server, conns: opened.conns, error: opened.error }
}

fn report_error(ctx: &mut Ctx<'_>, id: &str, imp: Impl, h: &Held, n: usize) {
    if let Some(e) = &h.error {
        eprintln!("    WARNING ({id} {}): only {} of {n} connections opened: {e}", imp.name(), h.conns.len());
        ctx.note(format!("{id} {}: only {} of {n} connections opened ({e}); RSS per connection is over those", imp.name(), h.conns.len()));
    }
}

pub fn idle_10k(ctx: &mut Ctx<'_>) -> Vec<Row> {
    const N: usize = 10_000;
    let have = sys::raise_nofile(N as u64 + 1_000);
    if have < N as u64 + 100 {
        ctx.note(format!("idle_10k skipped: the descriptor limit is {have}, below the {N} connections + margin it needs"));
        return Vec::new();
    }
    let mut row = Row::new(
        "idle_10k",
        "10,000 idle conns",
        "RSS/conn",
        "rss_bytes_per_conn",
        Unit::Bytes,
        Better::Lower,
        Target::AtMost(TARGET_BYTES),
    );
    for imp in ctx.impls(Mode::Line) {
        let h = hold(ctx, imp, N, 1, Duration::from_secs(60));
        eprintln!("  idle_10k {:<9}: {:.0} B per idle connection ({} connections)", imp.name(), h.per_conn, h.conns.len());
        report_error(ctx, "idle_10k", imp, &h, N);
        row.push(imp, h.per_conn);
        // The server goes first (its side closes), then the client sockets.
        drop(h.server);
        drop(h.conns);
    }
    if ctx.impls(Mode::Line).contains(&Impl::Threads) {
        ctx.note("idle_10k threads C: each idle connection is a blocked thread; RSS counts its touched stack pages, not the kernel's thread structures");
    }
    vec![row]
}

pub fn idle_100k(ctx: &mut Ctx<'_>) -> Vec<Row> {
    let n = ctx.cfg.big_idle;
    if n == 0 {
        ctx.note("idle_100k skipped: SOCKFLOW_BENCH_BIG_IDLE=0");
        return Vec::new();
    }
    let want = n as u64 + 2_000;
    let have = sys::raise_nofile(want);
    if have < want {
        ctx.note(format!(
            "idle_100k skipped: the descriptor limit could only be raised to {have}, below the {want} that {n} connections need \
             (raising the hard limit needs CAP_SYS_RESOURCE; SOCKFLOW_BENCH_BIG_IDLE sets the count)"
        ));
        return Vec::new();
    }
    // Several source addresses even when one would do, so that path runs
    // at any count.
    let sources = idle::sources(n).max(2);
    let label = format!("{} idle conns, {sources} source addrs", report::thousands(n as f64));
    let label = label.as_str();
    let mut rss = Row::new("idle_100k", label, "RSS/conn", "rss_bytes_per_conn", Unit::Bytes, Better::Lower, Target::AtMost(TARGET_BYTES));
    let mut echo = Row::new("idle_100k", label, "then 1 echo each", "echo_all_ms", Unit::Millis, Better::Lower, Target::None);
    // Thread-per-connection needs 100,000 threads (over most pid limits)
    // and libuv adds a minute: the two single-threaded event loops only.
    for imp in [Impl::Sockflow, Impl::Epoll] {
        let mut h = hold(ctx, imp, n, sources, Duration::from_secs(120));
        report_error(ctx, "idle_100k", imp, &h, n);
        let t = Instant::now();
        let answered = idle::echo_each(&mut h.conns, LINE);
        let ms = t.elapsed().as_secs_f64() * 1e3;
        eprintln!(
            "  idle_100k {:<9}: {:.0} B per idle connection ({} connections); one echo on each: {}",
            imp.name(),
            h.per_conn,
            h.conns.len(),
            match &answered {
                Ok(()) => format!("all answered in {ms:.0} ms"),
                Err(e) => format!("FAILED: {e}"),
            }
        );
        rss.push(imp, h.per_conn);
        match answered {
            Ok(()) => echo.push(imp, ms),
            Err(e) => {
                ctx.note(format!("idle_100k {}: one echo on each failed: {e}", imp.name()));
                echo.push(imp, f64::NAN);
            }
        }
        drop(h.server);
        drop(h.conns);
    }
    ctx.note("idle_100k: sockflow and epoll C only (100,000 threads exceed the pid limit; libuv would add a minute)");
    vec![rss, echo]
}
