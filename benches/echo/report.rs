//! The results: one row per scenario and metric, holding every run's value
//! per server, and the ways they are shown: the table a person reads at a
//! glance, one `BENCH` line per row for scripts, and the Markdown appended
//! to BENCHMARKS.md.
//!
//! Every ratio is sockflow / another server, paired by round (each
//! sockflow run against the other server's run of the same round, so slow
//! drifts of the machine's load cancel out), then the median of the rounds.

use crate::binaries::{Impl, IMPLS};

/// Which way is better for a metric.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Better {
    Higher,
    Lower,
}

/// How a value is printed.
#[derive(Clone, Copy)]
pub enum Unit {
    /// Operations per second ("2.15 M").
    PerSec,
    /// Microseconds.
    Micros,
    /// Milliseconds.
    Millis,
    /// Bytes.
    Bytes,
    /// Megabytes (10^6) per second.
    MBps,
}

/// The goal for a row.
#[derive(Clone, Copy)]
pub enum Target {
    /// The ratio vs the epoll baseline should be at least / at most this
    /// (which, by the row's `Better`).
    Ratio(f64),
    /// sockflow's own value should be at most this (memory per connection).
    AtMost(f64),
    None,
}

pub struct Row {
    /// Scenario id (also what `SOCKFLOW_BENCH_ONLY` selects).
    pub id: &'static str,
    /// The scenario, for people.
    pub scenario: String,
    /// The metric, for people ("msgs/s", "CPU/msg") and in `BENCH` lines.
    pub metric: &'static str,
    pub key: &'static str,
    pub unit: Unit,
    pub better: Better,
    pub target: Target,
    /// Per server (`IMPLS` order), per round; NaN for a run that failed.
    /// Empty for a server not in this scenario.
    pub values: [Vec<f64>; 4],
    /// The generator's CPU use per run (1.0 = one core).
    pub gen_load: Vec<f64>,
}

pub fn median(v: &[f64]) -> f64 {
    let mut v: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
    v.sort_by(|a, b| a.total_cmp(b));
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

impl Row {
    pub fn new(
        id: &'static str,
        scenario: &str,
        metric: &'static str,
        key: &'static str,
        unit: Unit,
        better: Better,
        target: Target,
    ) -> Row {
        Row { id, scenario: scenario.to_string(), metric, key, unit, better, target, values: Default::default(), gen_load: Vec::new() }
    }

    pub fn push(&mut self, imp: Impl, v: f64) {
        self.values[imp.index()].push(v);
    }

    pub fn median(&self, imp: Impl) -> f64 {
        median(&self.values[imp.index()])
    }

    /// sockflow / `imp` per round (rounds where both ran).
    pub fn ratios(&self, imp: Impl) -> Vec<f64> {
        let s = &self.values[Impl::Sockflow.index()];
        s.iter().zip(&self.values[imp.index()]).map(|(a, b)| a / b).filter(|r| r.is_finite()).collect()
    }

    /// The median ratio sockflow / `imp` (NaN when not measured).
    pub fn ratio(&self, imp: Impl) -> f64 {
        median(&self.ratios(imp))
    }

    /// "met" / "MISSED" against the target, "" without one.
    pub fn verdict(&self) -> &'static str {
        let ok = match (self.target, self.better) {
            (Target::Ratio(t), Better::Higher) => self.ratio(Impl::Epoll) >= t,
            (Target::Ratio(t), Better::Lower) => self.ratio(Impl::Epoll) <= t,
            (Target::AtMost(t), _) => self.median(Impl::Sockflow) <= t,
            (Target::None, _) => return "",
        };
        if ok {
            "met"
        } else {
            "MISSED"
        }
    }

    fn target_text(&self) -> String {
        let cmp = if self.better == Better::Higher { ">=" } else { "<=" };
        match self.target {
            Target::Ratio(t) => format!("{cmp} {t:.2}"),
            Target::AtMost(t) => format!("<= {}", fmt(self.unit, t)),
            Target::None => String::new(),
        }
    }

    fn max_gen(&self) -> f64 {
        self.gen_load.iter().copied().fold(f64::NAN, f64::max)
    }
}

/// A value with its unit, short.
pub fn fmt(unit: Unit, x: f64) -> String {
    if !x.is_finite() {
        return "-".into();
    }
    match unit {
        Unit::PerSec if x >= 1e6 => format!("{:.2} M/s", x / 1e6),
        Unit::PerSec if x >= 1e3 => format!("{:.1} k/s", x / 1e3),
        Unit::PerSec => format!("{x:.0} /s"),
        Unit::Micros if x >= 100.0 => format!("{x:.0} us"),
        Unit::Micros => format!("{x:.2} us"),
        Unit::Millis => format!("{x:.0} ms"),
        Unit::Bytes => format!("{x:.0} B"),
        Unit::MBps => format!("{x:.0} MB/s"),
    }
}

/// `x` rounded, with thousands separators.
pub fn thousands(x: f64) -> String {
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

fn ratio_text(r: f64) -> String {
    if r.is_finite() {
        format!("{r:.2}")
    } else {
        "-".into()
    }
}

/// The rounds' ratios vs epoll as "lo-hi".
fn spread(row: &Row) -> String {
    let r = row.ratios(Impl::Epoll);
    let lo = r.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = r.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    match r.len() {
        0 => "-".into(),
        1 => format!("{lo:.2}"),
        _ => format!("{lo:.2}-{hi:.2}"),
    }
}

const HEAD: [&str; 11] = ["scenario", "metric", "better", "sockflow", "epoll C", "ratio", "rounds", "target", "", "vs threads", "vs libuv"];

fn cells(row: &Row) -> [String; 12] {
    let gen = row.max_gen();
    [
        row.scenario.clone(),
        row.metric.to_string(),
        if row.better == Better::Higher { "higher" } else { "lower" }.into(),
        fmt(row.unit, row.median(Impl::Sockflow)),
        fmt(row.unit, row.median(Impl::Epoll)),
        ratio_text(row.ratio(Impl::Epoll)),
        spread(row),
        row.target_text(),
        row.verdict().into(),
        ratio_text(row.ratio(Impl::Threads)),
        ratio_text(row.ratio(Impl::Libuv)),
        if gen.is_finite() { format!("{:.0}%", gen * 100.0) } else { "-".into() },
    ]
}

/// The table, as plain text with aligned columns.
pub fn table(rows: &[Row]) -> String {
    let mut all: Vec<[String; 12]> = Vec::new();
    let mut head: Vec<String> = HEAD.iter().map(|s| s.to_string()).collect();
    head.push("gen CPU".into());
    all.push(head.try_into().expect("12 columns"));
    all.extend(rows.iter().map(cells));
    let widths: Vec<usize> = (0..12).map(|c| all.iter().map(|r| r[c].chars().count()).max().unwrap_or(0)).collect();
    let mut out = String::new();
    for (i, r) in all.iter().enumerate() {
        let mut line = String::new();
        for (c, cell) in r.iter().enumerate() {
            let pad = widths[c] - cell.chars().count();
            // Text columns left-aligned, numbers right-aligned.
            if c < 3 {
                line.push_str(cell);
                line.push_str(&" ".repeat(pad));
            } else {
                line.push_str(&" ".repeat(pad));
                line.push_str(cell);
            }
            line.push_str("  ");
        }
        out.push_str(line.trim_end());
        out.push('\n');
        if i == 0 {
            out.push_str(&"-".repeat(widths.iter().sum::<usize>() + 2 * 11));
            out.push('\n');
        }
    }
    out
}

/// The same table in Markdown.
pub fn markdown(rows: &[Row]) -> String {
    let mut out =
        String::from("| scenario | metric | better | sockflow | epoll C | ratio | rounds | target | | vs threads | vs libuv | gen CPU |\n");
    out.push_str("|---|---|---|---:|---:|---:|---:|---:|---|---:|---:|---:|\n");
    for r in rows {
        out.push_str(&format!("| {} |\n", cells(r).join(" | ")));
    }
    out
}

/// One machine-readable line per row:
/// `BENCH scenario=ID metric=KEY better=higher|lower sockflow=V baseline=V ratio=R threads=V libuv=V ...`
/// (medians; `nan` where not measured; `baseline` is the epoll C server).
pub fn bench_lines(rows: &[Row]) -> String {
    let num = |x: f64| if x.is_finite() { format!("{x:.6e}") } else { "nan".into() };
    let mut out = String::new();
    for r in rows {
        let mut line =
            format!("BENCH scenario={} metric={} better={}", r.id, r.key, if r.better == Better::Higher { "higher" } else { "lower" });
        for imp in IMPLS {
            line.push_str(&format!(" {}={}", imp.key(), num(r.median(imp))));
        }
        line.push_str(&format!(" ratio={}", num(r.ratio(Impl::Epoll))));
        line.push_str(&format!(" ratio_threads={} ratio_libuv={}", num(r.ratio(Impl::Threads)), num(r.ratio(Impl::Libuv))));
        line.push_str(&format!(" rounds={} gen_cpu={}", r.values[0].len(), num(r.max_gen())));
        if !r.verdict().is_empty() {
            line.push_str(&format!(" target={}", r.verdict().to_lowercase()));
        }
        out.push_str(&line);
        out.push('\n');
    }
    out
}
