//! What the TCP and UDP loops share: the poller, the control block other
//! threads reach through the waker, SIGINT/SIGTERM when configured, the log,
//! the timers, and the lines that announce start and stop.

use super::control::{Command, Shared, Signals, Turning, Wire};
use super::timer::{sooner, TimerAction, TimerCtx, Timers};
use super::workers::{Seat, Team};
use super::{Config, Log, ServerHandle};
use crate::error::{Error, Result};
use crate::frame::Frame;
use mio::{Events, Poll, Token};
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Tokens the base owns; a loop's own tokens must differ.
pub(crate) const WAKER: Token = Token(usize::MAX - 2);
pub(crate) const SIGNALS: Token = Token(usize::MAX - 3);

pub(crate) struct Base {
    pub(crate) poll: Poll,
    pub(crate) shared: Arc<Shared>,
    signals: Option<Signals>,
    pub(crate) log: Log,
    /// " (udp)" or "", for the announcement.
    kind: &'static str,
    timers: Timers,
    /// Commands taken from the queue for the loop (the timer ones are
    /// applied here as they are taken, so a cancel takes effect before the
    /// next timer fires).
    pending: Vec<Command>,
    /// Log the counters at the stop (`Config::log_stats`).
    log_stats: bool,
    /// This loop's part in a server of several workers.
    pub(crate) team: Team,
    /// `unix:PATH` for a server on a local socket (it has no address).
    pub(crate) place: Option<String>,
}

impl Base {
    /// Takes the log out of `cfg` (a worker's seat brings a share of worker
    /// 0's instead); installs signal handling when asked.
    pub(crate) fn new(local: SocketAddr, frame: Frame, datagram: bool, cfg: &mut Config, seat: Seat) -> Result<Base> {
        let poll = Poll::new().map_err(|e| Error::io("epoll_create", &e))?;
        let wire = match (datagram, cfg.udp) {
            (false, _) => Wire::Stream,
            (true, super::UdpMode::Peers) => Wire::Peers,
            (true, super::UdpMode::Datagrams) => Wire::None,
        };
        let shared = Shared::new(poll.registry(), WAKER, local, frame, wire, cfg.memory_budget, &seat)?;
        let signals = if cfg.handle_signals { Some(Signals::watch(poll.registry(), SIGNALS)?) } else { None };
        let kind = if datagram { " (udp)" } else { "" };
        let team = seat.team();
        let log = seat.log.unwrap_or_else(|| Log::new(cfg));
        let log_stats = cfg.log_stats;
        Ok(Base { poll, shared, signals, log, kind, timers: Timers::default(), pending: Vec::new(), log_stats, team, place: None })
    }

    pub(crate) fn handle(&self) -> ServerHandle {
        ServerHandle(self.shared.clone())
    }

    pub(crate) fn local_addr(&self) -> SocketAddr {
        self.shared.local_addr()
    }

    /// The readiness line tests and users wait for (worker 0's alone).
    pub(crate) fn announce(&self) {
        if !self.team.speaks() {
            return;
        }
        if let Some(p) = &self.place {
            return self.log.info(format_args!("listening on {p}{}", self.kind));
        }
        let a = self.local_addr();
        if a.port() == 0 {
            // Bound servers have a port: this is a loop without a listener.
            return self.log.info(format_args!("running (no listener)"));
        }
        self.log.info(format_args!("listening on {} port {}{}", a.ip(), a.port(), self.kind));
    }

    /// The stop line, once every worker has stopped (worker 0 waits for
    /// the others here).
    pub(crate) fn stopped(&mut self) {
        self.team.end(&self.shared.crew);
        if !self.team.speaks() {
            return;
        }
        if self.log_stats {
            self.log.info(format_args!("stats: {}", self.shared.stats()));
        }
        if let Some(p) = &self.place {
            return self.log.info(format_args!("stopped ({p})"));
        }
        let a = self.local_addr();
        if a.port() == 0 {
            return self.log.info(format_args!("stopped"));
        }
        self.log.info(format_args!("stopped ({} port {})", a.ip(), a.port()));
    }

    /// The epoll descriptor: readable when any registered source (sockets,
    /// the waker, signals) is ready.
    pub(crate) fn fd(&self) -> std::os::fd::RawFd {
        use std::os::fd::AsRawFd;
        self.poll.as_raw_fd()
    }

    /// How long until the earliest timer is due (ZERO: now).
    pub(crate) fn next_timer(&mut self) -> Option<Duration> {
        self.absorb();
        self.timers.next().map(|at| at.saturating_duration_since(Instant::now()))
    }

    /// Marks this thread as turning this server's loop (callbacks included).
    pub(crate) fn turning(&self) -> Turning {
        Turning::enter(&self.shared)
    }

    /// Takes queued commands: timer ones take effect, the rest wait in
    /// `pending` for the loop.
    /// Cheap when nothing was queued (every turn looks, several times).
    #[inline]
    fn absorb(&mut self) {
        if self.shared.queued() {
            self.absorb_queued();
        }
    }

    fn absorb_queued(&mut self) {
        for cmd in self.shared.take() {
            match cmd {
                Command::Timer(t) => self.timers.apply(t),
                other => self.pending.push(other),
            }
        }
    }

    /// True when there are commands for the loop to run (a turn asks
    /// first: most turns have none).
    #[inline]
    pub(crate) fn has_commands(&mut self) -> bool {
        self.absorb();
        !self.pending.is_empty()
    }

    /// The commands for the loop to run (sends, closes, ...).
    pub(crate) fn commands(&mut self) -> Vec<Command> {
        self.absorb();
        std::mem::take(&mut self.pending)
    }

    /// One poll, sleeping at most `timeout` and never past the next timer;
    /// then runs the timers that are due. EINTR is an empty turn; a signal
    /// asks for a stop. The loop then looks at its own tokens in `events`.
    pub(crate) fn wait(&mut self, events: &mut Events, timeout: Option<Duration>) -> Result<()> {
        self.team.start(&self.log);
        let timeout = sooner(timeout, self.next_timer());
        let r = self.poll_once(events, timeout);
        self.fire_timers();
        r
    }

    /// Runs every timer due now, earliest first. Timers added meanwhile
    /// have later deadlines than `now`, so this ends.
    fn fire_timers(&mut self) {
        self.absorb();
        if self.timers.next().is_none() {
            return; // no clock read for a loop without timers
        }
        let now = Instant::now();
        loop {
            self.absorb();
            let Some((id, mut t)) = self.timers.due(now) else { return };
            let ctx = TimerCtx { id, server: self.handle() };
            if (t.f)(&ctx) == TimerAction::Continue {
                self.timers.again(id, t, now);
            }
        }
    }

    fn poll_once(&mut self, events: &mut Events, timeout: Option<Duration>) -> Result<()> {
        if let Err(e) = self.poll.poll(events, timeout) {
            if e.kind() == io::ErrorKind::Interrupted {
                events.clear();
                return Ok(());
            }
            return Err(Error::io("epoll_wait", &e));
        }
        if events.iter().any(|e| e.token() == SIGNALS) && self.signals.as_mut().is_some_and(|s| s.drain()) {
            self.log.info(format_args!("signal received: stopping"));
            self.shared.stop();
        }
        Ok(())
    }
}

impl Drop for Base {
    /// Worker 0 dropped without its stop (a run that failed): the other
    /// workers must not outlive it.
    fn drop(&mut self) {
        self.team.end(&self.shared.crew);
    }
}
