//! The scenarios, in the order they run and appear in the table. Each adds
//! its rows (see `report::Row`); `SOCKFLOW_BENCH_ONLY` picks some by id.
//!
//! | id | what |
//! |---|---|
//! | `line_50`, `line_200` | pipelined line echo: 64-byte lines, 16 in flight per connection |
//! | `rr_1`, `rr_500` | lock-step 64-byte request/response, raw frames |
//! | `bulk` | one connection, 64 KiB writes, 16 MiB in flight, raw frames |
//! | `connect_16` | connect + one 64-byte echo + close, 16 at a time |
//! | `udp_32` | UDP 64-byte request/response, 32 datagrams in flight |
//! | `udp_32_2t` | the same with the generator on two threads (whatever `SOCKFLOW_BENCH_GEN_THREADS` says) |
//! | `tls_echo` | lock-step 64-byte lines, 16 connections: echo_server with TLS vs the same in plaintext |
//! | `tls_handshake` | connect + TLS handshake + one echo + close, 16 at a time, vs the same in plaintext |
//! | `workers` | sockflow `--workers 2` vs `--workers 1` (only when echo_server has `--workers`) |
//! | `idle_10k` | RSS per idle connection, 10,000 connections |
//! | `idle_100k` | the same at 100,000 (several source addresses), then one echo on each |
//! | `client` | `tcp_client` fed a 100,000-line file vs the same calls by hand in C |

mod client;
mod load;
mod memory;
mod tls;

use crate::binaries::{Bins, Impl, Mode, IMPLS};
use crate::config::Config;
use crate::report::Row;

/// What every scenario needs, and the notes it leaves for the report.
pub struct Ctx<'a> {
    pub cfg: &'a Config,
    pub bins: &'a Bins,
    pub notes: Vec<String>,
}

impl Ctx<'_> {
    /// The servers that can run `mode` in this run (libuv only when built).
    pub fn impls(&self, mode: Mode) -> Vec<Impl> {
        IMPLS.into_iter().filter(|&i| self.bins.server(i, mode, None).is_ok()).collect()
    }

    pub fn note(&mut self, n: impl Into<String>) {
        let n = n.into();
        if !self.notes.contains(&n) {
            self.notes.push(n);
        }
    }
}

/// Runs every selected scenario; the rows for the table.
pub fn run_all(ctx: &mut Ctx<'_>) -> Vec<Row> {
    if let Some(n) = ctx.bins.libuv_note() {
        ctx.note(n.to_string());
    }
    let mut rows = Vec::new();
    for s in load::SCENARIOS {
        if ctx.cfg.wants(s.id) {
            rows.extend(load::run(ctx, s));
        }
    }
    rows.extend(tls::run(ctx));
    if ctx.cfg.wants("workers") {
        rows.extend(load::workers(ctx));
    }
    if ctx.cfg.wants("idle_10k") {
        rows.extend(memory::idle_10k(ctx));
    }
    if ctx.cfg.wants("idle_100k") {
        rows.extend(memory::idle_100k(ctx));
    }
    if ctx.cfg.wants("client") {
        rows.extend(client::run(ctx));
    }
    rows
}
