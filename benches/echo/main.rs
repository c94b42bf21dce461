//! `make bench` (`cargo bench --bench echo`): sockflow against hand-written
//! C servers, all built and measured in the same run, with the same load
//! generators (see benches/README.md for every scenario and number).
//!
//! Prints one table of ratios sockflow / baseline and one `BENCH` line per
//! row on stdout (per-run details on stderr), writes an SVG chart to
//! `target/bench/ratios.svg` and appends the run to BENCHMARKS.md. Never
//! fails on a number, only when something cannot be built or started.
//! Every loop is bounded in count and time, servers are killed by PID when
//! dropped, and only loopback addresses are used.

mod binaries;
mod chart;
mod config;
mod gen;
mod record;
mod report;
mod scenarios;
mod server;
mod sys;

use config::Config;
use std::path::Path;
use std::time::Instant;

fn main() {
    // `cargo test --all-targets` runs bench targets too, without `--bench`
    // and in the debug profile: measure nothing there.
    if !std::env::args().any(|a| a == "--bench") {
        println!("echo bench: skipped (run it with `make bench` or `cargo bench --bench echo`)");
        return;
    }
    let started = Instant::now();
    let cfg = Config::from_env();
    let settings = format!(
        "{} rounds, {} ms warm-up + {} ms measured per run, generator on {} thread(s){}",
        cfg.rounds,
        cfg.warmup.as_millis(),
        cfg.measure.as_millis(),
        cfg.gen_threads,
        match Config::set_vars() {
            v if v.is_empty() => String::new(),
            v => format!(" ({})", v.join(" ")),
        }
    );
    println!("sockflow benchmark: sockflow vs hand-written C servers, same run, same load generators");
    let load_at_start = sys::loadavg();
    println!("  machine : {}; load average at start {load_at_start}", sys::machine());
    println!("  settings: {settings}");
    for v in config::VARS {
        eprintln!("  {} (default {:?}): {}", v.name, v.default, v.help);
    }
    eprintln!("building the servers and clients ...");
    let bins = binaries::build();
    let mut ctx = scenarios::Ctx { cfg: &cfg, bins: &bins, notes: Vec::new() };
    let rows = scenarios::run_all(&mut ctx);
    let notes = ctx.notes;

    println!();
    println!("ratio = sockflow / C baseline (epoll C; for UDP udp_echo.c; for the client hand_client.c), median of paired rounds;");
    println!("rounds = lowest-highest round ratio; vs threads / vs libuv = the same ratio against those servers; gen CPU =");
    println!("the load generator's highest CPU use in a run (100% = one core: near it, the generator may be the limit).");
    println!();
    print!("{}", report::table(&rows));
    println!();
    print!("{}", report::bench_lines(&rows));
    if !notes.is_empty() {
        println!();
        println!("notes:");
        for n in &notes {
            println!("  * {n}");
        }
    }

    let target = Path::new(env!("CARGO_TARGET_TMPDIR")).parent().expect("target dir").join("bench");
    let svg = target.join("ratios.svg");
    let chart = std::fs::create_dir_all(&target)
        .map_err(|e| format!("create {}: {e}", target.display()))
        .and_then(|_| chart::write(&rows, &format!("sockflow / C baseline — {}", sys::utc_now()), &svg));
    println!();
    match &chart {
        Ok(()) => println!("chart: {}", svg.display()),
        Err(e) => println!("chart not written: {e}"),
    }
    let secs = started.elapsed().as_secs_f64();
    if cfg.record {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let md = root.join("BENCHMARKS.md");
        let run = record::Run {
            rows: &rows,
            notes: &notes,
            settings: &settings,
            load_at_start: &load_at_start,
            compile: &bins.commands,
            chart: chart.is_ok().then_some(Path::new("target/bench/ratios.svg")),
            secs,
        };
        match record::append(&md, root, &run) {
            Ok(()) => println!("run appended to {}", md.display()),
            Err(e) => println!("BENCHMARKS.md not written: {e}"),
        }
    }
    println!("total bench time {secs:.0} s");
}
