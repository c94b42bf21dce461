//! The bench's settings: defaults that keep `make bench` under about five
//! minutes on a 2-CPU machine, each overridable by an environment variable
//! (the one list of them; the report prints the values in force).

use std::time::Duration;

/// One environment variable the bench reads.
pub struct Var {
    pub name: &'static str,
    pub default: &'static str,
    pub help: &'static str,
}

/// Every variable, in the order the README lists them.
pub const VARS: &[Var] = &[
    Var { name: "SOCKFLOW_BENCH_ROUNDS", default: "5", help: "interleaved rounds per scenario (each server once per round)" },
    Var { name: "SOCKFLOW_BENCH_WARMUP_MS", default: "300", help: "warm-up per run, not measured" },
    Var { name: "SOCKFLOW_BENCH_MEASURE_MS", default: "1000", help: "measured window per run" },
    Var { name: "SOCKFLOW_BENCH_GEN_THREADS", default: "1", help: "load generator threads (1 or 2; connections are split between them)" },
    Var {
        name: "SOCKFLOW_BENCH_BIG_IDLE",
        default: "100000",
        help: "connections in the idle_100k scenario (0 skips it; it needs that many descriptors per process)",
    },
    Var { name: "SOCKFLOW_BENCH_ONLY", default: "", help: "comma-separated scenario ids to run (empty = all)" },
    Var { name: "SOCKFLOW_BENCH_RECORD", default: "1", help: "0: do not append the run to BENCHMARKS.md" },
];

/// The settings in force.
pub struct Config {
    pub rounds: usize,
    pub warmup: Duration,
    pub measure: Duration,
    pub gen_threads: usize,
    /// Connections in the `idle_100k` scenario; 0 = skip it.
    pub big_idle: usize,
    only: Vec<String>,
    pub record: bool,
}

fn var(name: &str) -> String {
    let d = VARS.iter().find(|v| v.name == name).map_or("", |v| v.default);
    std::env::var(name).ok().filter(|s| !s.trim().is_empty()).unwrap_or_else(|| d.to_string())
}

/// A number from `name`, clamped to `lo..=hi` (a bad value is a mistake
/// worth stopping for: the run would not measure what was asked).
fn num(name: &str, lo: u64, hi: u64) -> u64 {
    let s = var(name);
    match s.trim().parse::<u64>() {
        Ok(n) => n.clamp(lo, hi),
        Err(_) => panic!("{name}={s:?} is not a number"),
    }
}

impl Config {
    pub fn from_env() -> Config {
        Config {
            rounds: num("SOCKFLOW_BENCH_ROUNDS", 1, 100) as usize,
            warmup: Duration::from_millis(num("SOCKFLOW_BENCH_WARMUP_MS", 100, 60_000)),
            measure: Duration::from_millis(num("SOCKFLOW_BENCH_MEASURE_MS", 200, 600_000)),
            gen_threads: num("SOCKFLOW_BENCH_GEN_THREADS", 1, 2) as usize,
            big_idle: num("SOCKFLOW_BENCH_BIG_IDLE", 0, 1_000_000) as usize,
            only: var("SOCKFLOW_BENCH_ONLY").split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect(),
            record: var("SOCKFLOW_BENCH_RECORD") != "0",
        }
    }

    /// Whether scenario `id` is to run.
    pub fn wants(&self, id: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|o| o == id)
    }

    /// `NAME=value` for every variable set in the environment (for the
    /// record of how the run was made).
    pub fn set_vars() -> Vec<String> {
        VARS.iter().filter_map(|v| std::env::var(v.name).ok().map(|val| format!("{}={val}", v.name))).collect()
    }
}
