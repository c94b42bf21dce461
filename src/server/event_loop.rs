//! What a server loop (TCP or UDP, a worker or the only loop) is to the
//! code that runs it, and the one way a loop is run to its end: shared by
//! `TcpServer::run`, `UdpServer::run`, the workers' threads and the C API's
//! `sockflow_server_run`/`_start`, so they cannot drift apart (they once
//! did: one returned at a failed turn without closing its connections).

use super::base::Base;
use crate::error::Result;
use std::time::Duration;

/// A server loop.
pub(crate) trait Loop: Send + 'static {
    fn base(&self) -> &Base;
    fn base_mut(&mut self) -> &mut Base;
    /// One turn: waits at most `timeout` for events and handles them, due
    /// timers and commands. False once a stop was asked.
    fn turn(&mut self, timeout: Option<Duration>) -> Result<bool>;
    /// How long until a turn has work that no event announces.
    fn next_deadline(&mut self) -> Option<Duration>;
    /// Closes everything (flushing what it may) and logs the stop.
    fn finish(self: Box<Self>);
}

/// Runs `l` to its end: the readiness line (unless a program's own loop
/// already logged it), turns until a stop is asked, then `finish`. A turn
/// that fails (`epoll_wait`) also ends in `finish`, so every connection
/// still gets its `on_close`; the failure is returned.
pub(crate) fn run_to_end(mut l: Box<dyn Loop>, announce: bool) -> Result<()> {
    if announce {
        l.base().announce();
    }
    let r = loop {
        match l.turn(None) {
            Ok(true) => {}
            Ok(false) => break Ok(()),
            Err(e) => break Err(e),
        }
    };
    l.finish();
    r
}
