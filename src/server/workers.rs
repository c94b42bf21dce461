//! Several event loops for one server (`Config::workers`): N threads, each
//! running a complete loop of its own with its own `SO_REUSEPORT` socket.
//!
//! Why one socket per worker and not one acceptor handing connections off:
//! with `SO_REUSEPORT` the kernel spreads new connections (and UDP
//! datagrams) over the sockets by a hash of the 4-tuple, so accepting costs
//! no cross-thread hand-off, and each worker's loop is exactly the
//! single-loop server (no locks on the hot path, nothing shared per
//! message). A hand-off needs a queue, a wake-up and an `epoll_ctl` on
//! another thread per connection. The hash also keeps a UDP sender on one
//! worker (the same 4-tuple always hashes the same way), so a
//! [`UdpMode::Peers`](super::UdpMode::Peers) peer stays with the worker that
//! knows it.
//!
//! What is per worker and what is server-wide:
//! * per worker: the poller, the connections and their callbacks (which run
//!   on that worker's thread, several workers' at once), outgoing
//!   connections opened from a callback, relays (both sides on one worker);
//!   `max_conns` and `memory_budget` are split evenly (rounded up), so the
//!   totals still bound the server and no message path shares a counter;
//! * server-wide: the stop (any thread, any worker's callback, a signal),
//!   the open-connections table (`conn_count`, `conn_ids`, `conn_peer`),
//!   `max_per_ip` (one table: a host is not allowed N times the limit), and
//!   the controls by id (send, close, idle timeout), which reach the
//!   worker that owns the id from any thread;
//! * on worker 0 (the thread that calls `run`): timers, SIGINT/SIGTERM,
//!   the log lines that announce start and stop, and outgoing connections
//!   opened through a server handle rather than from a callback.
//!
//! Ids. Every id a worker hands out (a TCP connection's generation, an
//! outgoing connection's counter, a UDP peer's or datagram's number) comes
//! from a [`Seq`]: worker `i` of `n` takes `1+i`, `1+i+n`, `1+i+2n`, ... So
//! ids stay unique server-wide without any shared counter, keep their
//! single-loop layout, and say which worker owns them ([`Crew::owner`]).

use super::admission::PerAddress;
use super::control::{Shared, Wire, OUTGOING};
use super::event_loop::{run_to_end, Loop};
use super::registry::OpenConns;
use super::stats::Counters;
use super::{Config, Log};
use crate::error::Result;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::thread::JoinHandle;

/// Most workers a server may have (`--workers`, `cfg.workers`).
const WORKERS_MAX: usize = crate::args::WORKERS_MAX as usize;

/// The loops of one server, as each of them sees the others (a server of
/// one loop has a crew of one).
pub(crate) struct Crew {
    size: usize,
    stop: AtomicBool,
    /// Every worker's control block, by index; set once all are built.
    /// Weak: each `Shared` holds the crew.
    members: OnceLock<Vec<Weak<Shared>>>,
    pub(crate) conns: Arc<OpenConns>,
    pub(crate) per_ip: Arc<PerAddress>,
    /// Every worker's counters, by index: kept here, not in the workers'
    /// control blocks, so a worker that has ended still counts.
    pub(crate) counters: Box<[Counters]>,
    /// TLS client configurations of outgoing connections, built once per
    /// distinct options for every worker.
    pub(crate) tls_clients: crate::tls::ClientConfigs,
}

impl Crew {
    fn new(size: usize, max_per_ip: usize) -> Arc<Crew> {
        Arc::new(Crew {
            size,
            stop: AtomicBool::new(false),
            members: OnceLock::new(),
            conns: Arc::default(),
            per_ip: Arc::new(PerAddress::new(max_per_ip)),
            counters: (0..size).map(|_| Counters::default()).collect(),
            tls_clients: Default::default(),
        })
    }

    pub(crate) fn size(&self) -> usize {
        self.size
    }

    /// Worker `i`'s control block; None for a crew of one (the caller is
    /// the only member) or while the crew is being built.
    pub(crate) fn member(&self, i: usize) -> Option<Arc<Shared>> {
        if self.size == 1 {
            return None;
        }
        self.members.get()?.get(i)?.upgrade()
    }

    /// Every worker's control block but for a crew of one (see [`member`](Crew::member)).
    pub(crate) fn members(&self) -> Vec<Arc<Shared>> {
        (0..self.size).filter_map(|i| self.member(i)).collect()
    }

    /// The index of the worker that owns id `id` (see the module doc).
    pub(crate) fn owner(&self, id: u64, wire: Wire) -> usize {
        let seq = match wire {
            _ if id & OUTGOING != 0 => id & !OUTGOING,
            Wire::Stream => id >> 32,
            Wire::Peers | Wire::None => id,
        };
        (seq.wrapping_sub(1) % self.size as u64) as usize
    }

    /// Asks every worker to stop (each wakes and ends its run).
    pub(crate) fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
        for m in self.members() {
            m.wake();
        }
    }

    pub(crate) fn stopping(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }
}

/// A worker's share of a server-wide sequence of ids (see the module doc).
pub(crate) struct Seq {
    next: u64,
    step: u64,
}

impl Seq {
    /// The next number, without taking it.
    pub(crate) fn peek(&self) -> u64 {
        self.next
    }

    /// Takes the next number.
    pub(crate) fn take(&mut self) -> u64 {
        let n = self.next;
        self.next += self.step;
        n
    }
}

/// Where a loop being built sits in its server.
pub(crate) struct Seat {
    pub(crate) crew: Arc<Crew>,
    pub(crate) index: usize,
    /// A worker's share of worker 0's log; None: the loop makes its own.
    pub(crate) log: Option<Log>,
}

impl Seat {
    /// The first number of this worker's [`Seq`].
    pub(crate) fn first(&self) -> u64 {
        1 + self.index as u64
    }

    pub(crate) fn seq(&self) -> Seq {
        Seq { next: self.first(), step: self.crew.size as u64 }
    }

    /// True when several sockets must bind one address (`SO_REUSEPORT`).
    pub(crate) fn reuse_port(&self) -> bool {
        self.crew.size > 1
    }

    /// The loop's part in the server's start and stop.
    pub(crate) fn team(&self) -> Team {
        match (self.crew.size, self.index) {
            (1, _) => Team::Alone,
            (_, 0) => Team::Lead(Followers::Waiting(Vec::new())),
            _ => Team::Follower,
        }
    }
}

/// A worker's whole run, handed to its thread.
type Runner = Box<dyn FnOnce() + Send>;

/// The other workers, as worker 0 keeps them.
pub(crate) enum Followers {
    /// Built, started at worker 0's first turn.
    Waiting(Vec<Runner>),
    Running(Vec<JoinHandle<()>>),
    /// Stopped and joined (or dropped unstarted).
    Ended,
}

/// A loop's part in the server's start and stop.
pub(crate) enum Team {
    /// The only loop.
    Alone,
    /// Worker 0: starts the others, and at the stop waits for them before
    /// it logs the stop.
    Lead(Followers),
    /// Worker 1 and up: silent at start and stop.
    Follower,
}

impl Team {
    /// True for a loop that logs the start and stop lines.
    pub(crate) fn speaks(&self) -> bool {
        !matches!(self, Team::Follower)
    }

    /// Starts the other workers' threads, once (worker 0's first turn). A
    /// thread that cannot start is logged; the others serve on.
    #[inline]
    pub(crate) fn start(&mut self, log: &Log) {
        // Every turn asks; only the first does anything.
        if matches!(self, Team::Lead(Followers::Waiting(_))) {
            self.start_followers(log);
        }
    }

    fn start_followers(&mut self, log: &Log) {
        let Team::Lead(Followers::Waiting(runners)) = self else { return };
        let mut running = Vec::new();
        for (i, r) in std::mem::take(runners).into_iter().enumerate() {
            match std::thread::Builder::new().name(format!("sockflow-worker-{}", i + 1)).spawn(r) {
                Ok(j) => running.push(j),
                Err(e) => log.error(format_args!("worker {}: {}: serving without it", i + 1, crate::Error::io("thread", &e))),
            }
        }
        *self = Team::Lead(Followers::Running(running));
    }

    /// At worker 0's stop: stops the others and waits for their runs to end.
    pub(crate) fn end(&mut self, crew: &Crew) {
        if let Team::Lead(f) = self {
            crew.stop();
            if let Followers::Running(joins) = std::mem::replace(f, Followers::Ended) {
                for j in joins {
                    let _ = j.join();
                }
            }
        }
    }
}

/// Binds a UDP worker's socket. Asked for port 0, `SO_REUSEPORT` UDP
/// sockets may be given a port that another group of the same user holds,
/// and join it (Linux lets them: 159 of 3,000 such binds on 6.18 did), so
/// two servers would share each other's datagrams. Worker 0 therefore takes
/// a port nobody holds from a plain socket, closes it and binds the group
/// there (a bind that loses that port to a race in between is tried
/// again). TCP does not need this: its port-0 binds never join a group.
pub(crate) fn bind_udp(addrs: &[SocketAddr], seat: &Seat) -> Result<crate::udp::Udp> {
    use crate::udp::Udp;
    if !seat.reuse_port() || addrs.iter().all(|a| a.port() != 0) {
        return Udp::bind_with(addrs, seat.reuse_port());
    }
    let mut tries = 0;
    loop {
        let free = Udp::bind(addrs)?.local_addr()?;
        match Udp::bind_with(&[free], true) {
            Err(e) if e.code == crate::Code::AddrInUse && tries < 8 => tries += 1,
            r => return r,
        }
    }
}

/// A worker's settings: the server's, but without the log (it shares
/// worker 0's) and signals (worker 0's).
fn follower(c: &Config) -> Config {
    Config {
        frame: c.frame,
        quit: c.quit.clone(),
        max_conns: c.max_conns,
        max_per_ip: c.max_per_ip,
        idle_timeout: c.idle_timeout,
        incomplete_timeout: c.incomplete_timeout,
        max_queue: c.max_queue,
        memory_budget: c.memory_budget,
        mode: c.mode,
        handle_signals: false,
        backlog: c.backlog,
        name: c.name.clone(),
        log: None,
        udp: c.udp,
        workers: c.workers,
        log_stats: false,
        tls: c.tls.clone(),
    }
}

/// Builds a server of `cfg.workers` loops with `build` (which binds its
/// socket to the addresses given, with `SO_REUSEPORT` when the seat says
/// so): worker 0 on `addrs`, the others on the address it got. Returns
/// worker 0, holding the others until its first turn starts them.
pub(crate) fn assemble<L: Loop>(
    addrs: &[SocketAddr],
    mut cfg: Config,
    mut build: impl FnMut(&[SocketAddr], Config, Seat) -> Result<L>,
) -> Result<L> {
    let n = cfg.workers.clamp(1, WORKERS_MAX);
    cfg.workers = n;
    cfg.max_conns = cfg.max_conns.div_ceil(n);
    cfg.memory_budget = cfg.memory_budget.div_ceil(n);
    let crew = Crew::new(n, cfg.max_per_ip);
    let configs: Vec<Config> = (1..n).map(|_| follower(&cfg)).collect();
    let mut lead = build(addrs, cfg, Seat { crew: crew.clone(), index: 0, log: None })?;
    let local = [lead.base_mut().local_addr()];
    let mut shared = vec![Arc::downgrade(&lead.base_mut().shared)];
    let mut runners: Vec<Runner> = Vec::new();
    for (i, c) in configs.into_iter().enumerate() {
        let log = lead.base_mut().log.share();
        let mut w = build(&local, c, Seat { crew: crew.clone(), index: i + 1, log: Some(log) })?;
        shared.push(Arc::downgrade(&w.base_mut().shared));
        let (log, crew) = (lead.base_mut().log.share(), crew.clone());
        runners.push(Box::new(move || {
            // A worker that fails (or whose Rust handler panics) ends the
            // whole server, as a failing single loop would.
            let why = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run_to_end(Box::new(w), true))) {
                Ok(Ok(())) => return,
                Ok(Err(e)) => e.to_string(),
                Err(_) => "a callback panicked".to_string(),
            };
            log.error(format_args!("worker {}: {why}: stopping", i + 1));
            crew.stop();
        }));
    }
    let _ = crew.members.set(shared);
    lead.base_mut().team = Team::Lead(Followers::Waiting(runners));
    Ok(lead)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each worker's ids are its own and say whose they are, for every
    /// kind of id.
    #[test]
    fn ids_are_unique_and_name_their_worker() {
        let n = 3;
        let crew = Crew::new(n, 1);
        let mut seen = std::collections::HashSet::new();
        for i in 0..n {
            let seat = Seat { crew: crew.clone(), index: i, log: None };
            let mut seq = seat.seq();
            for _ in 0..100 {
                let s = seq.take();
                let ids = [(s << 32) | 7, OUTGOING | s];
                for id in ids {
                    assert!(seen.insert(id), "id {id:#x} given twice");
                    assert_eq!(crew.owner(id, Wire::Stream), i);
                }
                assert_eq!(crew.owner(s, Wire::Peers), i);
            }
        }
        let alone = Crew::new(1, 1);
        assert_eq!(alone.owner(5 << 32, Wire::Stream), 0);
    }
}
