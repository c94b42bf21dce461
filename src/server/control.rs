//! The part of a server other threads may touch: the stop flag, a queue of
//! commands (sends, broadcasts, closes) the loop runs on its next turn, the
//! waker that makes it turn, and SIGINT/SIGTERM delivery.

use super::budget::Budget;
use super::stats::{Counters, Stats};
use crate::error::{Code, Error, Result};
use crate::frame::{Ending, Frame};
use mio::{Registry, Token, Waker};
use std::cell::RefCell;
use std::net::SocketAddr;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use super::registry::OpenConns;
use super::timer::{Timer, TimerCommand, TimerFn, TimerId};
use super::workers::{Crew, Seat};

/// Work handed to the loop thread.
pub(crate) enum Command {
    /// Framed bytes pushed to one connection by others (held against
    /// `max_queue`: past it the connection is dropped).
    Send { id: u64, bytes: Vec<u8> },
    /// A connection's own reply, from its worker thread (backpressure:
    /// past the high-water mark the connection is not read).
    Reply { id: u64, bytes: Vec<u8> },
    /// Framed bytes for every connection but `except`.
    Broadcast { bytes: Vec<u8>, except: Option<u64> },
    /// Close the connection with `reason`, after flushing or at once.
    Close { id: u64, reason: super::CloseReason, mode: CloseMode },
    /// Give a connection its own idle timeout.
    SetIdle { id: u64, idle: IdleTimeout },
    /// A worker handled everything before the end of input: close now.
    Finish { id: u64, reason: super::CloseReason },
    /// A worker caught up: read from the connection again.
    Resume { id: u64 },
    /// Framed bytes relayed from connection `from` to `to`: not dropped at
    /// `max_queue`, but `from` is paused while `to` holds too much.
    Relay { from: u64, to: u64, bytes: Vec<u8> },
    /// Open an outgoing connection (boxed: the other commands stay small).
    Connect(Box<Dial>),
    /// The addresses of connection `id`'s name, or why there are none.
    Resolved { id: u64, addrs: Result<Vec<SocketAddr>> },
    /// Add or cancel a timer (taken by the base, never seen by a loop).
    Timer(TimerCommand),
}

/// Where an outgoing connection goes: an IP address and port, or a local
/// (`unix:`) socket. The loop connects both the same way (a non-blocking
/// socket, then the first writable event says how it went).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Dest {
    Ip(SocketAddr),
    Unix(crate::unix::Place),
}

impl std::fmt::Display for Dest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Dest::Ip(a) => f.write_str(&crate::net::show(a)),
            Dest::Unix(p) => p.fmt(f),
        }
    }
}

/// Where and how to open an outgoing connection
/// ([`ServerHandle::connect_to`]).
#[derive(Clone, Copy, Debug)]
pub struct Remote<'a> {
    /// A name, an IPv4/IPv6 address, or a local socket: `unix:PATH`,
    /// `unix:@NAME` (Linux's abstract namespace).
    pub host: &'a str,
    /// 1-65535; 0 for a `unix:` host (which has no port).
    pub port: u16,
    /// Which addresses a name may resolve to.
    pub family: crate::net::Family,
    /// Bounds the connect and the TLS handshake; None: the OS's limit
    /// for the connect (about two minutes on Linux), and
    /// [`crate::tls::HANDSHAKE_TIMEOUT`] for the handshake.
    pub timeout: Option<Duration>,
    /// Client TLS options (`--tls`, `--tls-ca`, `--tls-cert`/`--tls-key`):
    /// the server is verified for `host` (also sent as SNI; `localhost`
    /// over a `unix:` socket). None, or none set: plaintext.
    pub tls: Option<&'a crate::tls::TlsArgs>,
}

impl<'a> Remote<'a> {
    /// `host` and `port`, plaintext, any family, no timeout.
    pub fn new(host: &'a str, port: u16) -> Remote<'a> {
        Remote { host, port, family: crate::net::Family::Any, timeout: None, tls: None }
    }

    /// What a client's parsed command line describes: host, port, family,
    /// `--timeout` and the TLS options.
    pub fn from_args(a: &'a crate::args::Args) -> Remote<'a> {
        Remote { host: &a.host, port: a.port, family: a.family, timeout: a.timeout(), tls: Some(&a.tls) }
    }
}

/// An outgoing connection to open (`Command::Connect`).
pub(crate) struct Dial {
    pub(crate) id: u64,
    /// Tried in order until one answers; None while the name resolves
    /// (`Command::Resolved` follows).
    pub(crate) dests: Option<Vec<Dest>>,
    /// Where it goes as the caller wrote it (`localhost:9000`): named in
    /// its errors until an address is tried.
    pub(crate) at: String,
    /// Bounds the connect, TLS handshake included; None: the OS's limit
    /// for the connect, `tls::HANDSHAKE_TIMEOUT` for the handshake.
    pub(crate) timeout: Option<Duration>,
    /// TLS's client side once connected (its name: the host given).
    pub(crate) tls: Option<crate::tls::Setup>,
    pub(crate) user: usize,
}

/// How `sockflow_server_close_id` closes a connection.
// The one list of close modes: cbindgen exports this enum as the C
// `sockflow_close_mode` (cbindgen.toml `[export.rename]`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloseMode {
    /// Send what is queued for it first (at most 5 s), then close.
    Flush = 0,
    /// Close at once: what the socket does not take at once is dropped.
    Now = 1,
}

/// A connection's idle timeout.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum IdleTimeout {
    /// The server's (`Config::idle_timeout`).
    #[default]
    Server,
    /// None: it may stay silent forever.
    Never,
    /// Closed (reason `Idle`) after this long without traffic.
    After(Duration),
}

impl IdleTimeout {
    /// The timeout that applies, given the server's.
    pub(crate) fn resolve(self, server: Option<Duration>) -> Option<Duration> {
        match self {
            IdleTimeout::Server => server,
            IdleTimeout::Never => None,
            IdleTimeout::After(t) => Some(t),
        }
    }
}

/// What messages sent by id or broadcast become on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Wire {
    /// Frames on TCP connections.
    Stream,
    /// Datagrams to UDP peers ([`super::UdpMode::Peers`]).
    Peers,
    /// Nothing: a UDP server in [`super::UdpMode::Datagrams`] has no connections.
    None,
}

/// Outgoing connections' ids have this bit set and count up from a counter
/// here, so a caller on any thread gets its id at once; incoming ids
/// (`generation << 32 | slot`) never reach it. With several workers each
/// counts its own share of the numbers (see `workers.rs`).
pub(crate) const OUTGOING: u64 = 1 << 63;

/// Shared between the loop and every other thread. With several workers
/// each has its own, and the calls below reach the worker they concern
/// (the owner of an id, every worker for a broadcast or a stop, worker 0
/// for timers) from any of them.
pub struct Shared {
    /// The server's loops (this one alone, or its workers).
    pub(crate) crew: Arc<Crew>,
    /// This loop's worker number.
    index: usize,
    cmds: Mutex<Vec<Command>>,
    /// True while `cmds` may hold something: the loop looks at it every
    /// turn, and a lock and a swap per turn cost more than a lock-step
    /// round trip's own work. Set under the lock before the wake-up, so a
    /// turn that misses a command is followed by the one the wake-up starts.
    queued: AtomicBool,
    waker: Waker,
    local: SocketAddr,
    frame: Frame,
    wire: Wire,
    next_timer: AtomicU64,
    next_outgoing: AtomicU64,
    pub(crate) conns: Arc<OpenConns>,
    /// This loop's memory budget (TCP; a UDP loop holds nothing).
    pub(crate) budget: Arc<Budget>,
}

impl Shared {
    pub(crate) fn new(
        registry: &Registry,
        token: Token,
        local: SocketAddr,
        frame: Frame,
        wire: Wire,
        memory_budget: usize,
        seat: &Seat,
    ) -> Result<Arc<Shared>> {
        let waker = Waker::new(registry, token).map_err(|e| Error::io("eventfd", &e))?;
        Ok(Arc::new(Shared {
            crew: seat.crew.clone(),
            index: seat.index,
            cmds: Mutex::new(Vec::new()),
            queued: AtomicBool::new(false),
            waker,
            local,
            frame,
            wire,
            next_timer: AtomicU64::new(1),
            next_outgoing: AtomicU64::new(seat.first()),
            conns: seat.crew.conns.clone(),
            budget: Arc::new(Budget::new(memory_budget)),
        }))
    }

    /// This loop's counters.
    pub(crate) fn counters(&self) -> &Counters {
        &self.crew.counters[self.index]
    }

    /// The server's counters, summed over its workers. Any thread, any
    /// time, also after the run.
    pub fn stats(&self) -> Stats {
        let mut s = Stats::default();
        for c in self.crew.counters.iter() {
            c.add_to(&mut s);
        }
        let members = self.crew.members();
        let loops: Vec<&Shared> = if members.is_empty() { vec![self] } else { members.iter().map(|m| &**m).collect() };
        for l in loops {
            s.queued_bytes += l.budget.used() as u64;
        }
        self.conns.add_to(&mut s);
        s
    }

    /// Wakes this loop (a stop, or commands to run).
    pub(crate) fn wake(&self) {
        let _ = self.waker.wake();
    }

    /// How many workers (event-loop threads) the server runs.
    pub fn workers(&self) -> usize {
        self.crew.size()
    }

    /// This loop's worker number, 0 to `workers() - 1` (a server handle's
    /// is 0; a callback's `Conn::worker` is the one it runs on).
    pub fn worker(&self) -> usize {
        self.index
    }

    /// Runs `f` on the control block of the worker that owns id `id`.
    fn owner<R>(&self, id: u64, f: impl FnOnce(&Shared) -> R) -> R {
        match self.crew.member(self.crew.owner(id, self.wire)) {
            Some(m) => f(&m),
            None => f(self),
        }
    }

    /// Runs `f` on worker 0's control block (timers live there).
    fn lead<R>(&self, f: impl FnOnce(&Shared) -> R) -> R {
        match self.crew.member(0) {
            Some(m) => f(&m),
            None => f(self),
        }
    }

    /// Queues `c` for every worker (`make` builds each one's copy).
    fn push_all(&self, make: impl Fn() -> Command) {
        let members = self.crew.members();
        if members.is_empty() {
            return self.push(make());
        }
        for m in members {
            m.push(make());
        }
    }

    pub(crate) fn push(&self, c: Command) {
        let mut cmds = self.cmds.lock().unwrap_or_else(|p| p.into_inner());
        cmds.push(c);
        self.queued.store(true, Ordering::Release);
        drop(cmds);
        let _ = self.waker.wake();
    }

    /// True when commands may be queued (false: `take` would find none).
    #[inline]
    pub(crate) fn queued(&self) -> bool {
        self.queued.load(Ordering::Acquire)
    }

    /// The queued commands.
    pub(crate) fn take(&self) -> Vec<Command> {
        let mut cmds = self.cmds.lock().unwrap_or_else(|p| p.into_inner());
        self.queued.store(false, Ordering::Relaxed);
        std::mem::take(&mut *cmds)
    }

    /// Asks the loop (every worker's) to stop gracefully.
    pub fn stop(&self) {
        self.crew.stop();
        // A crew still being built has no members yet to wake.
        self.wake();
    }

    /// True once a stop was asked.
    pub fn stopping(&self) -> bool {
        self.crew.stopping()
    }

    fn framed(&self, msg: &[u8], ending: Ending) -> Result<Vec<u8>> {
        let mut bytes = Vec::new();
        match self.wire {
            Wire::Stream => self.frame.encode_ending(msg, ending, &mut bytes)?,
            Wire::Peers => crate::udp::datagram_encode(self.frame, msg, ending, &mut bytes)?,
            Wire::None => {
                return Err(Error::new(
                    Code::BadHandle,
                    "a UDP server has no connections to send to unless it treats senders as peers \
                     (udp_peers); reply from on_message",
                ))
            }
        }
        Ok(bytes)
    }

    /// Queues one framed message for connection `id`.
    pub fn send(&self, id: u64, msg: &[u8]) -> Result<()> {
        let bytes = self.framed(msg, Ending::Lf)?;
        self.owner(id, |o| o.push(Command::Send { id, bytes }));
        Ok(())
    }

    /// Queues one framed reply from connection `id`'s own worker thread; a
    /// line ends with `ending`, the ending of the message it answers.
    pub(crate) fn reply(&self, id: u64, msg: &[u8], ending: Ending) -> Result<()> {
        let bytes = self.framed(msg, ending)?;
        self.push(Command::Reply { id, bytes });
        Ok(())
    }

    /// Queues one framed message for every connection but `except`.
    pub fn broadcast(&self, msg: &[u8], except: Option<u64>) -> Result<()> {
        let bytes = self.framed(msg, Ending::Lf)?;
        self.push_all(|| Command::Broadcast { bytes: bytes.clone(), except });
        Ok(())
    }

    /// Queues bytes relayed from connection `from` to `to` (see `Conn::relay`).
    /// Both must be on this worker: pausing the sender while its target is
    /// full is one loop's bookkeeping.
    pub(crate) fn relay(&self, from: u64, to: u64, msg: &[u8], ending: Ending) -> Result<()> {
        let owner = self.crew.owner(to, self.wire);
        if owner != self.index {
            return Err(Error::new(
                Code::BadHandle,
                format!(
                    "relay to connection {to}: it is on worker {owner}, this one on worker {}; a relay joins two connections of one \
                     worker (open the other side from this callback with connect)",
                    self.index
                ),
            ));
        }
        let bytes = self.framed(msg, ending)?;
        self.push(Command::Relay { from, to, bytes });
        Ok(())
    }

    fn outgoing_id(&self) -> Result<u64> {
        if self.wire != Wire::Stream {
            return Err(Error::new(Code::BadHandle, "a UDP server cannot open TCP connections"));
        }
        Ok(OUTGOING | self.next_outgoing.fetch_add(self.crew.size() as u64, Ordering::Relaxed))
    }

    /// Opens an outgoing TCP connection on the loop, to the first of
    /// `addrs` that answers within `timeout` (None: the OS's own limit,
    /// about two minutes on Linux). Returns its id at once; the loop then
    /// calls the handler's `on_connect` when it is connected, or `on_close`
    /// with `ConnectFailed` (and [`Conn::error`](super::Conn::error)) when it
    /// cannot be made. `user` is the connection's user slot from the start.
    /// Safe from any thread and from callbacks; never blocks.
    pub fn connect(&self, addrs: Vec<SocketAddr>, timeout: Option<Duration>, user: usize) -> Result<u64> {
        if addrs.is_empty() {
            return Err(Error::new(Code::Addr, "connect: no address given"));
        }
        let at = crate::net::show(&addrs[0]);
        let dests = addrs.into_iter().map(Dest::Ip).collect();
        let id = self.outgoing_id()?;
        self.dial(Dial { id, dests: Some(dests), at, timeout, tls: None, user });
        Ok(id)
    }

    fn dial(&self, d: Dial) {
        self.push(Command::Connect(Box::new(d)));
    }

    /// See [`ServerHandle::connect_to`].
    pub(crate) fn connect_to(self: &Arc<Self>, to: &Remote<'_>, user: usize) -> Result<u64> {
        let (host, port) = (to.host, to.port);
        let tls = match to.tls.filter(|t| t.on(crate::tls::Side::Client)) {
            Some(t) => Some(crate::tls::Setup::named(self.crew.tls_clients.get(t)?, host)?),
            None => None,
        };
        let at = format!("{host}:{port}");
        let dial = |id, dests| Dial { id, dests, at, timeout: to.timeout, tls, user };
        if let Some(place) = crate::unix::Place::parse(host) {
            let place = crate::unix::no_port(place?, port)?;
            let id = self.outgoing_id()?;
            self.dial(Dial { at: place.to_string(), ..dial(id, Some(vec![Dest::Unix(place)])) });
            return Ok(id);
        }
        if port == 0 {
            return Err(Error::new(Code::Addr, "connect: port 0 is not a port to connect to"));
        }
        let bare = crate::net::strip_brackets(host);
        if bare.parse::<std::net::IpAddr>().is_ok() || bare.is_empty() {
            let addrs = crate::net::resolve(host, port, to.family)?;
            let id = self.outgoing_id()?;
            self.dial(dial(id, Some(addrs.into_iter().map(Dest::Ip).collect())));
            return Ok(id);
        }
        let id = self.outgoing_id()?;
        // First, so the loop has the connection before its addresses.
        self.dial(dial(id, None));
        let (me, host, family) = (self.clone(), host.to_string(), to.family);
        let spawned = std::thread::Builder::new().name("sockflow-resolve".into()).spawn(move || {
            let addrs = crate::net::resolve(&host, port, family);
            me.push(Command::Resolved { id, addrs });
        });
        if let Err(e) = spawned {
            self.push(Command::Resolved { id, addrs: Err(Error::io("thread", &e)) });
        }
        Ok(id)
    }

    /// Queues a graceful close of connection `id` (replies flushed first).
    pub fn close(&self, id: u64) {
        self.close_conn(id, CloseMode::Flush);
    }

    /// Queues a close of connection `id` (reason `Handler`), after its
    /// queued bytes or at once. Safe from any thread and from callbacks; an
    /// id that is gone is ignored.
    pub fn close_conn(&self, id: u64, mode: CloseMode) {
        self.owner(id, |o| o.push(Command::Close { id, reason: super::CloseReason::Handler, mode }));
    }

    /// Carries out `effect` for connection `id` from a thread that is not
    /// the loop's (a worker): a close goes through the command queue, so
    /// the loop runs it exactly as it runs its own handlers' closes.
    pub(crate) fn apply(&self, id: u64, effect: super::effect::Effect) {
        use super::effect::Effect;
        match effect {
            Effect::Keep => {}
            Effect::Close(reason, mode) => self.push(Command::Close { id, reason, mode }),
            Effect::Stop => self.stop(),
        }
    }

    /// Gives connection `id` its own idle timeout (from now on, counted
    /// from its last traffic). An id that is gone is ignored.
    pub fn set_idle_timeout(&self, id: u64, idle: IdleTimeout) {
        self.owner(id, |o| o.push(Command::SetIdle { id, idle }));
    }

    /// How many connections are open now (those whose `on_close` has not
    /// run). Answered without the loop: safe anywhere, callbacks included.
    pub fn conn_count(&self) -> usize {
        self.conns.count()
    }

    /// The ids of the open connections, oldest first (a snapshot; with
    /// several workers, each worker's oldest first, interleaved by id).
    pub fn conn_ids(&self) -> Vec<u64> {
        self.conns.ids()
    }

    /// The peer address of open connection `id`, or None if it is not open.
    pub fn conn_peer(&self, id: u64) -> Option<SocketAddr> {
        self.conns.peer(id)
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Runs `f` on the loop thread once `after` has passed (never before:
    /// the deadline is fixed now, on the calling thread), then every
    /// `repeat` while it returns `Continue`. Safe from any thread and from
    /// callbacks. A zero `repeat` is refused (it would never let the loop
    /// go on). Returns the id for [`cancel_timer`](Shared::cancel_timer).
    pub fn add_timer(&self, after: Duration, repeat: Option<Duration>, f: TimerFn) -> Result<TimerId> {
        if repeat == Some(Duration::ZERO) {
            return Err(Error::inval("a repeating timer's period is 0"));
        }
        let at = Instant::now().checked_add(after).ok_or_else(|| Error::inval("timer delay is too long"))?;
        Ok(self.lead(|l| {
            let id = l.next_timer.fetch_add(1, Ordering::Relaxed);
            l.push(Command::Timer(TimerCommand::Add { id, timer: Timer { at, repeat, f } }));
            id
        }))
    }

    /// Cancels a timer: once the loop has seen this (before its next turn
    /// fires anything), it does not fire again. An id that is gone is ignored.
    pub fn cancel_timer(&self, id: TimerId) {
        self.lead(|l| l.push(Command::Timer(TimerCommand::Cancel { id })));
    }

    /// True on the thread running one of this server's loop turns (its
    /// callbacks included, on any of its workers): a call there must not
    /// wait for the loop.
    pub fn on_loop_thread(&self) -> bool {
        TURNING.with(|t| t.borrow().iter().any(|&p| std::ptr::eq(p, Arc::as_ptr(&self.crew))))
    }
}

thread_local! {
    /// Servers (their crews) whose loop turn runs on this thread, innermost
    /// last (a callback may run a server of its own).
    static TURNING: RefCell<Vec<*const Crew>> = const { RefCell::new(Vec::new()) };
}

/// Marks this thread as running a turn of one server's loop until dropped.
pub(crate) struct Turning;

impl Turning {
    pub(crate) fn enter(s: &Arc<Shared>) -> Turning {
        TURNING.with(|t| t.borrow_mut().push(Arc::as_ptr(&s.crew)));
        Turning
    }
}

impl Drop for Turning {
    fn drop(&mut self) {
        TURNING.with(|t| t.borrow_mut().pop());
    }
}

/// A cloneable, thread-safe handle on a running server.
#[derive(Clone)]
pub struct ServerHandle(pub(crate) Arc<Shared>);

impl ServerHandle {
    /// Opens an outgoing connection to `host` (a name or an address) and
    /// `port`: see [`Shared::connect`]. A numeric host is used at once; a
    /// name is resolved on a short-lived thread of its own, so neither the
    /// caller nor the loop waits for DNS (a name that does not resolve ends
    /// in `on_close` with `ConnectFailed` and a `Resolve` error). The loop
    /// holds the connection (connecting) from its next turn either way, so
    /// what is sent or relayed to the id meanwhile waits in its queue.
    /// A `unix:PATH` or `unix:@NAME` host (port 0) connects to a local
    /// socket instead. Plaintext: see [`connect_to`](ServerHandle::connect_to)
    /// for TLS.
    pub fn connect_host(&self, host: &str, port: u16, timeout: Option<Duration>, user: usize) -> Result<u64> {
        self.connect_to(&Remote { timeout, ..Remote::new(host, port) }, user)
    }

    /// Opens an outgoing connection as `to` describes (see
    /// [`connect_host`](ServerHandle::connect_host)), over TLS when its
    /// options ask for it: the loop connects, then runs the client side of
    /// the handshake, and calls `on_connect` only once it is done; a
    /// handshake that fails or does not end within the timeout ends in
    /// `on_close` with `ConnectFailed`, [`Conn::error`](super::Conn::error)
    /// a `Tls` error with rustls's reason (`tls handshake with
    /// 127.0.0.1:9000: invalid peer certificate: UnknownIssuer`) or
    /// `TimedOut`. The TLS configuration is built (its files read, the
    /// system roots loaded) at the first connect with those options and
    /// kept for the server's life, so a proxy opening one connection per
    /// client reads them once; a bad file is an error here, at once.
    pub fn connect_to(&self, to: &Remote<'_>, user: usize) -> Result<u64> {
        self.0.connect_to(to, user)
    }

    /// [`connect_to`](ServerHandle::connect_to) what a client's parsed
    /// command line describes (`Role::Client`: host or `unix:`, port,
    /// `--timeout`, `-4`/`-6`, the TLS options).
    pub fn connect_args(&self, a: &crate::args::Args, user: usize) -> Result<u64> {
        if a.role != crate::args::Role::Client {
            return Err(Error::new(Code::Usage, "connect: the arguments must be a client's (Role::Client), not a server's"));
        }
        self.connect_to(&Remote::from_args(a), user)
    }
}

impl std::ops::Deref for ServerHandle {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// Servers currently handling SIGINT/SIGTERM; while there are none, the
/// signals keep their default effect (see `Signals::watch`).
static HANDLING: AtomicUsize = AtomicUsize::new(0);
/// True while `HANDLING` is 0; read inside the signal handler.
static IDLE: AtomicBool = AtomicBool::new(true);

/// SIGINT/SIGTERM turned into readable bytes on a socket the loop polls.
/// Dropping it gives the signals back.
pub(crate) struct Signals {
    pub(crate) rx: mio::net::UnixStream,
    ids: Vec<signal_hook::SigId>,
}

impl Signals {
    /// Starts catching SIGINT and SIGTERM for one server.
    pub(crate) fn watch(registry: &Registry, token: Token) -> Result<Signals> {
        // Once signal-hook owns a signal's handler, "default" must be
        // emulated: terminate as usual whenever no server is handling it.
        static DEFAULTS: OnceLock<std::result::Result<(), String>> = OnceLock::new();
        let defaults = DEFAULTS.get_or_init(|| {
            for sig in [libc::SIGINT, libc::SIGTERM] {
                signal_hook::flag::register_conditional_default(sig, &IDLE).map_err(|e| e.to_string())?;
            }
            Ok(())
        });
        if let Err(e) = defaults {
            return Err(Error::new(Code::Os, format!("signal handlers: {e}")));
        }
        let (rx, tx) = UnixStream::pair().map_err(|e| Error::io("socketpair", &e))?;
        rx.set_nonblocking(true).map_err(|e| Error::io("fcntl", &e))?;
        let mut ids = Vec::new();
        for sig in [libc::SIGINT, libc::SIGTERM] {
            let tx = tx.try_clone().map_err(|e| Error::io("dup", &e))?;
            ids.push(signal_hook::low_level::pipe::register(sig, tx).map_err(|e| Error::io("sigaction", &e))?);
        }
        let mut rx = mio::net::UnixStream::from_std(rx);
        registry.register(&mut rx, token, mio::Interest::READABLE).map_err(|e| Error::io("epoll_ctl", &e))?;
        if HANDLING.fetch_add(1, Ordering::SeqCst) == 0 {
            IDLE.store(false, Ordering::SeqCst);
        }
        Ok(Signals { rx, ids })
    }

    /// Empties the pipe; true if a signal arrived.
    pub(crate) fn drain(&mut self) -> bool {
        use std::io::Read;
        let mut buf = [0u8; 64];
        let mut got = false;
        while let Ok(n) = self.rx.read(&mut buf) {
            if n == 0 {
                break;
            }
            got = true;
        }
        got
    }
}

impl Drop for Signals {
    fn drop(&mut self) {
        for id in self.ids.drain(..) {
            signal_hook::low_level::unregister(id);
        }
        if HANDLING.fetch_sub(1, Ordering::SeqCst) == 1 {
            IDLE.store(true, Ordering::SeqCst);
        }
    }
}
