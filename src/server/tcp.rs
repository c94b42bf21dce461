//! The TCP server: one mio event loop, many connections.
//!
//! Per connection the loop keeps only what an idle one needs (40 bytes, see
//! `conn.rs`); a partial message or unsent replies live in cold state that
//! goes back to a pool when it empties, so an idle connection costs about 56
//! bytes (with its registry row) and a busy one allocates nothing per
//! message. Reads go through one shared 64 KiB scratch buffer, and the
//! replies to a read go from one shared buffer straight to the socket: only
//! what the socket does not take is copied into the connection's queue.
//!
//! Memory is bounded without dropping healthy clients, as a hand-written
//! epoll server would do it: a connection whose own replies pile up (it
//! sends faster than it reads) is simply not read until they drain, so TCP
//! flow control slows it down; only bytes pushed to it by others can drop
//! it (`Overflow`, see `pushed.rs`). Everything connections hold (partial
//! messages, queues) is charged to a server-wide [`Budget`]: over it, the
//! connections holding something stop being read, those holding nothing
//! read a little at a time (well-behaved clients complete their messages
//! and go on), and a message whose declared length cannot be reserved is
//! refused. A message left incomplete for `incomplete_timeout` closes its
//! connection (slowloris), and `max_per_ip` keeps one host from taking
//! every connection slot.

#[path = "listen.rs"]
mod listen;
#[path = "outgoing.rs"]
mod outgoing;

use super::admission::{PerAddress, Throttle};
use super::base::{Base, SIGNALS, WAKER};
use super::budget::Budget;
use super::builtin::Mirror;
use super::clock::{Clock, Tick};
use super::conn::{Cold, ColdPool, Connection, Life, Pause, ReadState, TRICKLE};
use super::control::{CloseMode, Command, OUTGOING};
use super::effect::Effect;
use super::event_loop::{run_to_end, Loop};
use super::spare::Spare;
use super::timer::sooner;
use super::tls::TlsConn;
use super::worker::{Parting, Worker};
use super::workers::{Seat, Seq};
use super::{CloseReason, Config, Conn, Handler, Mode, ServerHandle, Sink};
use crate::error::{Error, Result};
use crate::frame::{Decoder, Ending, Flow, Frame, Quit};
use crate::net;
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Token};
use slab::Slab;
use std::io::{self, Read};
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

const LISTENER: Token = Token(usize::MAX - 1);
/// Reads per readiness event before other connections get a turn.
const READS_PER_TURN: usize = 8;
/// How long a closing connection may take to flush its replies.
const LINGER: Duration = Duration::from_secs(5);
/// How often idle and lingering connections are checked.
const SWEEP_EVERY: Duration = Duration::from_millis(250);
/// Most connection slots reserved when a server starts (see `new`).
const RESERVE_CONNS: usize = 1 << 16;
/// How long a stop waits for connection threads still inside a handler.
const STOP_WAIT: Duration = Duration::from_secs(2);

/// What [`TcpServer::dispatch`] decodes.
enum Input {
    /// The first n bytes of the scratch buffer (0: only what the decoder holds).
    Read(usize),
    /// The peer's end of stream: whatever the decoder still holds.
    End,
}

/// A bound TCP server, ready to [`run`](TcpServer::run).
pub struct TcpServer {
    base: Base,
    listener: Option<listen::Listen>,
    /// A `unix:` server's socket file (worker 0's): removed when it stops.
    socket_file: Option<crate::unix::SocketFile>,
    handler: Arc<dyn Handler>,
    frame: Frame,
    quit: Quit,
    /// The handler's [`Mirror`], if it is one: see `dispatch`.
    mirror: Option<Mirror>,
    max_conns: usize,
    max_queue: usize,
    idle: Option<Duration>,
    incomplete: Option<Duration>,
    mode: Mode,
    budget: Arc<Budget>,
    /// Connections paused for the budget (resumed together when it frees up).
    budget_paused: Vec<(usize, u64)>,
    /// Server-wide: shared by the workers.
    per_ip: Arc<PerAddress>,
    refusals: Throttle,
    conns: Slab<Connection>,
    scratch: Vec<u8>,
    /// The replies of the connection being dispatched while it has nothing
    /// queued: written from here straight to its socket, and only what the
    /// socket does not take is copied into the connection's queue.
    replies: Vec<u8>,
    /// Empty buffers lent to connections' queues and decoders.
    spare: Spare,
    /// Empty cold states lent to connections that need one for a while.
    colds: ColdPool,
    /// Decodes the reads of connections without cold state; empty between
    /// dispatches (what a read leaves moves to the connection).
    decoder: Decoder,
    /// The time of this turn.
    clock: Clock,
    next_gen: Seq,
    /// Connections with data left to read after their turn.
    again: Vec<(usize, u64)>,
    /// The list `again` had at the start of this turn (two lists swapped
    /// each turn, so neither is reallocated).
    again_now: Vec<(usize, u64)>,
    accept_paused_until: Option<Instant>,
    joins: Vec<Parting>,
    /// Connections waiting to flush before they close (they need sweeps).
    lingering: usize,
    last_sweep: Tick,
    /// Taken out while a turn uses them (None only then).
    events: Option<Events>,
    /// Set once a connection got its own idle timeout: from then on sweeps
    /// run while there are connections, whatever the server's timeouts.
    idle_overrides: bool,
    /// Outgoing connections and relay waits.
    outgoing: outgoing::Outgoing,
    /// Accepted connections are TLS with this (see `tls.rs`).
    tls: Option<Arc<rustls::ServerConfig>>,
}

impl TcpServer {
    /// Binds the first of `addrs` that works and prepares the loop (the
    /// loops of `cfg.workers`, each with its own listener: see `workers.rs`).
    pub fn bind(addrs: &[SocketAddr], cfg: Config, handler: Arc<dyn Handler>) -> Result<TcpServer> {
        super::workers::assemble(addrs, cfg, |addrs, cfg, seat| {
            let (std, local) = crate::tcp::bound(addrs, cfg.backlog, seat.reuse_port())?;
            std.set_nonblocking(true).map_err(|e| Error::io("fcntl", &e))?;
            TcpServer::new(local, cfg, handler.clone(), seat)?.listening(listen::Listen::Tcp(TcpListener::from_std(std)))
        })
    }

    /// Listens on a local socket (`unix:PATH` or `unix:@NAME`; `mode`: the
    /// socket file's permissions). Every worker accepts from the one
    /// socket (a descriptor of its own): a socket file cannot be bound
    /// twice, so there is no `SO_REUSEPORT` group. Worker 0 removes the
    /// file when the server stops.
    pub fn bind_unix(place: &crate::unix::Place, mode: Option<u32>, cfg: Config, handler: Arc<dyn Handler>) -> Result<TcpServer> {
        let crate::unix::Listening { sock, mut file } = crate::unix::listen(place, mode)?;
        let none = SocketAddr::from(([0, 0, 0, 0], 0));
        super::workers::assemble(&[none], cfg, |_, cfg, seat| {
            let std = sock.try_clone().map_err(|e| Error::io("dup", &e))?;
            std.set_nonblocking(true).map_err(|e| Error::io("fcntl", &e))?;
            let mut s = TcpServer::new(none, cfg, handler.clone(), seat)?;
            s.base.place = Some(place.to_string());
            s.socket_file = file.take();
            s.listening(listen::Listen::Unix(mio::net::UnixListener::from_std(std)))
        })
    }

    fn listening(mut self, mut l: listen::Listen) -> Result<TcpServer> {
        self.base.poll.registry().register(&mut l, LISTENER, Interest::READABLE).map_err(|e| Error::io("epoll_ctl", &e))?;
        self.listener = Some(l);
        Ok(self)
    }

    /// A loop with no listener: an event-driven client of many servers,
    /// whose connections all come from [`ServerHandle::connect_to`]. It runs,
    /// stops and drives its handler like a server; its local address is
    /// `0.0.0.0:0`. It is one loop (`cfg.workers` is not used).
    pub fn without_listener(cfg: Config, handler: Arc<dyn Handler>) -> Result<TcpServer> {
        let none = SocketAddr::from(([0, 0, 0, 0], 0));
        super::workers::assemble(&[none], Config { workers: 1, ..cfg }, |_, cfg, seat| TcpServer::new(none, cfg, handler.clone(), seat))
    }

    fn new(local: SocketAddr, mut cfg: Config, handler: Arc<dyn Handler>, seat: Seat) -> Result<TcpServer> {
        let (next_gen, per_ip) = (seat.seq(), seat.crew.per_ip.clone());
        let base = Base::new(local, cfg.frame, false, &mut cfg, seat)?;
        base.shared.conns.reserve(cfg.max_conns.clamp(1, RESERVE_CONNS));
        let budget = base.shared.budget.clone();
        Ok(TcpServer {
            base,
            listener: None,
            socket_file: None,
            mirror: handler.mirror(),
            handler,
            frame: cfg.frame,
            quit: Quit::new(cfg.quit.as_bytes()),
            max_conns: cfg.max_conns.max(1),
            max_queue: cfg.max_queue.max(1),
            idle: cfg.idle_timeout,
            incomplete: cfg.incomplete_timeout,
            mode: cfg.mode,
            budget,
            budget_paused: Vec::new(),
            per_ip,
            refusals: Throttle::default(),
            // Room for every connection up front: the table then never
            // moves (a grown copy would leave its old pages behind), and
            // pages of slots never used are never touched.
            conns: Slab::with_capacity(cfg.max_conns.clamp(1, RESERVE_CONNS)),
            scratch: vec![0; crate::tcp::READ_CHUNK],
            // Room for one read's replies up front: a mirror uses it only
            // when a read completes a line begun by an earlier one, so
            // growing it on demand would allocate now and then long after
            // warm-up (pages never written are never touched).
            replies: Vec::with_capacity(crate::tcp::READ_CHUNK),
            spare: Spare::default(),
            colds: ColdPool::new(cfg.frame),
            decoder: Decoder::new(cfg.frame),
            clock: Clock::new(),
            next_gen,
            again: Vec::new(),
            again_now: Vec::new(),
            accept_paused_until: None,
            joins: Vec::new(),
            lingering: 0,
            last_sweep: 0,
            events: Some(Events::with_capacity(1024)),
            idle_overrides: false,
            outgoing: outgoing::Outgoing::default(),
            tls: cfg.tls,
        })
    }

    /// Binds the parsed command line's host and port.
    /// With `--tls-cert`, connections are TLS (unless `cfg.tls` is set).
    pub fn from_args(a: &crate::args::Args, mut cfg: Config, handler: Arc<dyn Handler>) -> Result<TcpServer> {
        if cfg.tls.is_none() && a.tls.on(crate::tls::Side::Server) {
            cfg.tls = Some(a.tls.server_config()?);
        }
        match a.unix() {
            Some(place) => TcpServer::bind_unix(&place?, a.mode, cfg, handler),
            None => TcpServer::bind(&a.addrs()?, cfg, handler),
        }
    }

    /// A thread-safe handle: stop, send, broadcast (reaching every worker).
    pub fn handle(&self) -> ServerHandle {
        self.base.handle()
    }

    /// The bound address (the chosen port when 0 was asked).
    pub fn local_addr(&self) -> SocketAddr {
        self.base.local_addr()
    }

    /// Runs until stopped (a handler's `Stop`, [`ServerHandle::stop`], or a
    /// signal when configured), then stops accepting, flushes queued
    /// replies, closes every connection and returns. With several workers
    /// this thread is worker 0; the others run on threads of their own,
    /// started by the first turn, and are waited for before this returns.
    pub fn run(self) -> Result<()> {
        run_to_end(Box::new(self), true)
    }

    /// Logs the readiness line (`run` does; a program driving the loop
    /// itself with [`turn`](TcpServer::turn) calls it once first).
    pub fn announce(&self) {
        self.base.announce();
    }

    /// The poller's descriptor: readable whenever a turn has work (an
    /// event, a command from another thread). Timers and sweeps do not make
    /// it readable: [`next_deadline`](TcpServer::next_deadline) says when a turn is due.
    pub fn fd(&self) -> std::os::fd::RawFd {
        self.base.fd()
    }

    /// One turn of the loop: waits at most `timeout` (None: as long as
    /// nothing happens) for events, handles them, runs due timers and
    /// queued commands. False once a stop was asked: then call
    /// [`finish`](TcpServer::finish). With several workers this turns worker
    /// 0; the first turn starts the others on threads of their own.
    pub fn turn(&mut self, timeout: Option<Duration>) -> Result<bool> {
        let _turning = self.base.turning();
        let timeout = sooner(self.next_timeout(), timeout);
        let mut events = self.events.take().unwrap_or_else(|| Events::with_capacity(1024));
        let r = self.turn_with(&mut events, timeout);
        self.events = Some(events);
        r.map(|()| !self.base.shared.stopping())
    }

    /// How long until a turn has work that no event announces (a timer, a
    /// sweep, a connection left to read): `Some(ZERO)` = now.
    pub fn next_deadline(&mut self) -> Option<Duration> {
        sooner(self.next_timeout(), self.base.next_timer())
    }

    /// Stops accepting, flushes queued replies (bounded), closes every
    /// connection and logs the stop.
    pub fn finish(mut self) {
        let _turning = self.base.turning();
        let mut events = self.events.take().unwrap_or_else(|| Events::with_capacity(1024));
        self.shutdown(&mut events);
    }

    fn next_timeout(&self) -> Option<Duration> {
        if !self.again.is_empty() {
            return Some(Duration::ZERO);
        }
        let mut t = None;
        let timed = (self.incomplete.is_some() || self.idle_overrides) && !self.conns.is_empty();
        if self.idle.is_some() || self.lingering > 0 || timed || !self.budget_paused.is_empty() || self.outgoing.connecting() {
            t = Some(SWEEP_EVERY);
        }
        if let Some(until) = self.accept_paused_until {
            let left = until.saturating_duration_since(Instant::now());
            t = Some(t.map_or(left, |x: Duration| x.min(left)));
        }
        t
    }

    fn turn_with(&mut self, events: &mut Events, timeout: Option<Duration>) -> Result<()> {
        self.base.wait(events, timeout)?;
        self.clock.update();
        std::mem::swap(&mut self.again, &mut self.again_now);
        for i in 0..self.again_now.len() {
            let (k, id) = self.again_now[i];
            self.read(k, id, true);
        }
        self.again_now.clear();
        for ev in events.iter() {
            match ev.token() {
                LISTENER => self.accept_all(),
                WAKER | SIGNALS => {}
                Token(k) => {
                    let Some(id) = self.conns.get(k).map(|c| c.id) else { continue };
                    if self.conns[k].life == Life::Connecting {
                        self.connect_event(k);
                        continue;
                    }
                    if ev.is_writable() {
                        self.flush(k);
                    }
                    if ev.is_readable() || ev.is_read_closed() || ev.is_error() {
                        self.read(k, id, ev.is_read_closed() || ev.is_error());
                    }
                }
            }
        }
        if self.accept_paused_until.is_some_and(|t| self.clock.now() >= t) {
            self.accept_paused_until = None;
            self.accept_all();
        }
        if self.base.has_commands() {
            self.run_commands();
        }
        self.resume_budget_paused();
        if self.clock.passed(self.last_sweep, SWEEP_EVERY) {
            self.sweep();
        }
        Ok(())
    }

    fn accept_all(&mut self) {
        if self.accept_paused_until.is_some() {
            return;
        }
        loop {
            let Some(listener) = &self.listener else { return };
            match listener.accept() {
                Ok((sock, peer)) => self.admit(sock, peer),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e)
                    if matches!(e.raw_os_error(), Some(libc::EMFILE) | Some(libc::ENFILE) | Some(libc::ENOBUFS) | Some(libc::ENOMEM)) =>
                {
                    // Out of descriptors: the pending client stays in the
                    // backlog; try again shortly instead of spinning.
                    self.base.log.error(format_args!("{}", Error::io("accept", &e)));
                    self.accept_paused_until = Some(Instant::now() + Duration::from_millis(100));
                    return;
                }
                Err(_) => continue, // ECONNABORTED and friends: that client is gone.
            }
        }
    }

    /// Logs a refused connection, at most once a second.
    fn refused(&mut self, why: std::fmt::Arguments<'_>, peer: &SocketAddr) {
        self.base.shared.counters().refused();
        if let Some(skipped) = self.refusals.ready() {
            let more = if skipped > 0 { format!(" ({skipped} more refused since the last such line)") } else { String::new() };
            self.base.log.warn(format_args!("{why}: closing {}{more}", net::show(peer)));
        }
    }

    fn admit(&mut self, mut sock: TcpStream, peer: SocketAddr) {
        if self.conns.len() >= self.max_conns {
            return self.refused(format_args!("too many connections ({})", self.conns.len()), &peer);
        }
        if !self.per_ip.enter(peer.ip()) {
            // The peer is named by `refused` (a local one by its credentials,
            // not by the placeholder address it is counted under).
            let from = if crate::unix::cred(peer).is_some() { "process" } else { "address" };
            return self.refused(format_args!("too many connections from one {from} ({})", self.per_ip.max()), &peer);
        }
        let _ = sock.set_nodelay(true);
        let entry = self.conns.vacant_entry();
        let k = entry.key();
        let id = (self.next_gen.take() << 32) | k as u64;
        if self.base.poll.registry().register(&mut sock, Token(k), Interest::READABLE).is_err() {
            self.per_ip.leave(peer.ip());
            return;
        }
        let c = entry.insert(Connection::new(sock, id, peer, Life::Open(ReadState::Reading), 0, self.clock.tick(), &mut self.colds));
        if let Some(cfg) = &self.tls {
            match TlsConn::server(cfg) {
                Ok(t) => c.cold(&mut self.colds).tls = Some(Box::new(t)),
                Err(e) => {
                    self.base.log.warn(format_args!("tls: {e}: closing {}", net::show(&peer)));
                    return self.discard(k);
                }
            }
        }
        self.start(k);
    }

    /// Starts serving connection `k` (accepted, or outgoing and just
    /// connected): its thread in thread mode, else `on_connect` here.
    fn start(&mut self, k: usize) {
        let c = &mut self.conns[k];
        let (id, peer) = (c.id, c.peer());
        match self.mode {
            Mode::ThreadPerConnection => {
                let (shared, budget) = (self.base.shared.clone(), self.budget.clone());
                match Worker::spawn((id, peer, c.user), self.handler.clone(), shared, budget, self.max_queue / 2) {
                    Ok(w) => {
                        c.cold(&mut self.colds).worker = Some(w);
                        self.base.shared.conns.opened(id, peer);
                    }
                    Err(e) => {
                        self.base.log.error(format_args!("{}: closing {}", Error::io("thread", &e), net::show(&peer)));
                        // No callback ran, so none is owed; but an outgoing
                        // id always gets its `on_close` (its user slot).
                        if id & OUTGOING == 0 {
                            self.discard(k);
                        } else {
                            self.close_now(k, CloseReason::Error);
                        }
                    }
                }
            }
            Mode::EventLoop => {
                self.base.shared.conns.opened(id, peer);
                let Connection { user, cold, .. } = c;
                let cold = cold.get_or_insert_with(|| self.colds.take());
                let sink = Sink::Buf { buf: &mut cold.out, frame: self.frame, ending: Ending::Lf, answering: (0, 0), sent: 0 };
                let mut conn = Conn { id, peer, user, sink, shared: &self.base.shared };
                let effect = self.handler.on_connect(&mut conn).effect();
                if let Sink::Buf { sent, .. } = conn.sink {
                    self.base.shared.counters().messages_out(sent);
                }
                self.apply(k, effect);
            }
        }
    }

    /// Carries out `effect` on connection `k` (a handler's answer, a close
    /// asked by another thread, a failure) and sends what is queued: the
    /// one place an [`Effect`] takes effect on the loop. False when the
    /// connection is gone or closing.
    fn apply(&mut self, k: usize, effect: Effect) -> bool {
        match effect {
            Effect::Keep => self.flush(k),
            Effect::Stop => {
                self.base.shared.stop();
                self.flush(k)
            }
            Effect::Close(reason, CloseMode::Flush) => {
                self.begin_close(k, reason);
                false
            }
            Effect::Close(reason, CloseMode::Now) => {
                // What the socket takes at once still goes out.
                self.flush(k);
                self.close_now(k, reason);
                false
            }
        }
    }

    /// Reads and dispatches. `closed_seen`: the event said the peer shut
    /// down (EPOLLRDHUP), so read on until end of stream; otherwise a short
    /// read means the socket is empty, and new data raises a new edge, which
    /// saves the EAGAIN read per event.
    fn read(&mut self, k: usize, id: u64, closed_seen: bool) {
        match self.conns.get(k) {
            Some(c) if c.id == id && c.life == Life::Draining => return self.drain_input(k),
            // Messages a pause left in the decoder come before new bytes.
            Some(c) if c.id == id && c.reading() && c.holds_input() => {
                if !self.dispatch(k, id, Input::Read(0)) {
                    return;
                }
            }
            Some(c) if c.id == id && c.reading() => {}
            _ => return,
        }
        for _ in 0..READS_PER_TURN {
            let Some(c) = self.conns.get_mut(k) else { return };
            let Some(limit) = c.allowance(&self.budget, self.scratch.len()) else {
                c.set_read(ReadState::Paused(Pause::Budget));
                return self.list_budget_paused(k, id);
            };
            let n = match super::tls::read(c, &mut self.scratch[..limit]) {
                Ok(0) => {
                    // The decoder delivers what is left (a last line without
                    // its newline) or reports a frame cut short.
                    if !self.dispatch(k, id, Input::End) {
                        return;
                    }
                    return self.end_input(k, CloseReason::Peer);
                }
                Ok(n) => n,
                // TLS only (plaintext never matches): a handshake's answer
                // the socket did not take at once waits for room like
                // replies do, and replies held back while the handshake
                // went on go once it ends.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock && ((c.queued() > 0 && !c.writable) || super::tls::just_opened(c)) => {
                    self.flush(k);
                    return;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                    // A TLS failure: that connection alone goes, with its reason.
                    self.base.log.warn(format_args!("{e}: closing it"));
                    return self.close_now(k, CloseReason::Error);
                }
                Err(_) => return self.close_now(k, CloseReason::Error),
            };
            c.last = self.clock.tick();
            if !self.dispatch(k, id, Input::Read(n)) || (n < limit && !closed_seen) {
                return;
            }
        }
        // Still readable after its turn: come back next loop turn.
        self.again.push((k, id));
    }

    /// Decodes `scratch[..n]` (n = 0: only what the decoder holds) or, at
    /// end of stream, what is left, and runs the handler per message. False
    /// when reading must not go on (closed, closing, paused, or the peer is done).
    fn dispatch(&mut self, k: usize, id: u64, input: Input) -> bool {
        let Some(c) = self.conns.get_mut(k) else { return false };
        if c.id != id || !c.reading() {
            return false;
        }
        if !c.holds_input() && matches!(input, Input::Read(0) | Input::End) {
            return true;
        }
        let n = match input {
            Input::Read(n) => n,
            Input::End => 0,
        };
        let peer = c.peer();
        // A connection without cold state (the usual case: it held nothing)
        // is decoded by the loop's own decoder, which is empty between
        // dispatches; only a partial message left at the end makes it take
        // cold state (below).
        let Connection { user, life, cold, .. } = c;
        let loop_decoder = cold.is_none();
        let (decoder, queue, worker) = match cold.as_deref_mut() {
            Some(Cold { decoder, out, out_pos, pushed, relayed, worker, .. }) => {
                let others = *out_pos + pushed.bytes() + relayed.bytes();
                (decoder, Some((out, others)), worker.as_ref())
            }
            None => (&mut self.decoder, None, None),
        };
        let held_before = decoder.buffered();
        // A partial message left by this read is kept in a lent buffer.
        if !decoder.has_buffer() {
            if let Some(back) = decoder.lend(self.spare.take()) {
                self.spare.give(back);
            }
        }
        // The handler's answer; the quit word ends the input instead.
        let mut effect = Effect::Keep;
        let mut quit = false;
        // Nothing queued: replies collect in the loop's buffer and go
        // straight to the socket (below); else behind what is queued.
        let (out, others, direct) = match queue {
            Some((out, others)) if !out.is_empty() => (out, others, false),
            _ => (&mut self.replies, 0, true),
        };
        let (frame, quit_word, handler, shared, max_queue) = (self.frame, &self.quit, &self.handler, &self.base.shared, self.max_queue);
        // Messages and bytes in, replies out: counted here, added to the
        // loop's counters once per dispatch.
        let (mut msgs_in, mut bytes_in, mut msgs_out) = (0, 0, 0);
        // A mirror's replies to the complete messages of a read are the
        // read itself, mapped (see `builtin::Mirror`): no call per message,
        // when they stay under high water (where the path below pauses,
        // message by message) and the decoder finds no message that needs
        // a look of its own (see `Decoder::span`). With nothing queued they
        // are mapped in the scratch buffer and sent from there (as a
        // hand-written echo server sends from its read buffer); else
        // copied behind what is queued.
        let mut from_scratch = 0;
        let spanned = match (self.mirror, &input, worker) {
            (Some(map), &Input::Read(n), None) if out.len() - others + decoder.buffered() + n <= max_queue / 2 => {
                let at = out.len();
                decoder.span(&self.scratch[..n], &self.quit, out).map(|span| {
                    // Counted before the mapping (which keeps every `\n`).
                    let (msgs, bytes) = span.counts(&self.scratch[..n]);
                    // A line begun by an earlier read was appended to `out`:
                    // then the rest goes behind it.
                    if direct && out.len() == at {
                        map(&mut self.scratch[..span.used]);
                        from_scratch = span.used;
                    } else {
                        out.extend_from_slice(&self.scratch[..span.used]);
                        map(&mut out[at..]);
                    }
                    (msgs_in, bytes_in, msgs_out) = (msgs, bytes, msgs);
                })
            }
            _ => None,
        };
        let fed = if spanned.is_some() {
            Ok(Flow::Continue)
        } else {
            let mut on_message = |msg: &[u8], ending| {
                if quit_word.is(msg) {
                    quit = true;
                    return Flow::Stop;
                }
                msgs_in += 1;
                bytes_in += msg.len() as u64;
                if let Some(w) = worker {
                    if w.message(msg, ending) > max_queue {
                        *life = Life::Open(ReadState::Paused(Pause::Worker));
                        return Flow::Stop;
                    }
                    return Flow::Continue;
                }
                let sink = Sink::Buf { buf: out, frame, ending, answering: (msg.as_ptr() as usize, msg.len()), sent: 0 };
                let mut conn = Conn { id, peer, user, sink, shared };
                effect = handler.on_message(&mut conn, msg).effect();
                if let Sink::Buf { sent, .. } = conn.sink {
                    msgs_out += sent;
                }
                if effect != Effect::Keep {
                    return Flow::Stop;
                }
                // Its own replies past high water: the rest waits (in the
                // decoder, then in the kernel) until they drain.
                if out.len() - others > max_queue / 2 {
                    *life = Life::Open(ReadState::Paused(Pause::Replies));
                    return Flow::Stop;
                }
                Flow::Continue
            };
            match input {
                Input::Read(n) => decoder.feed(&self.scratch[..n], &mut on_message),
                Input::End => decoder.finish(&mut on_message),
            }
        };
        let counters = self.base.shared.counters();
        counters.messages_in(msgs_in, bytes_in);
        counters.messages_out(msgs_out);
        // Stopped by a pause: messages may be left in the decoder. Even if
        // the flush below lifts the pause, they go first (the loop comes
        // back through `again`), before any read that could find the end
        // of the stream.
        let paused = matches!(fed, Ok(Flow::Stop));
        if !loop_decoder {
            if let Some(buf) = decoder.take_buffer() {
                self.spare.give(buf);
            }
        } else if !self.decoder.is_idle() {
            // It holds a partial message now: the connection keeps that
            // decoder, and the loop takes the empty one of its new cold state.
            let x = self.conns[k].cold(&mut self.colds);
            std::mem::swap(&mut x.decoder, &mut self.decoder);
        }
        if (from_scratch > 0 || (direct && !self.replies.is_empty())) && !self.send_replies(k, from_scratch) {
            return false;
        }
        // The usual end: the replies went out and nothing is held, so
        // there is nothing to time, reserve, flush or settle.
        if effect == Effect::Keep && !quit && fed.is_ok() && self.conns[k].at_rest() && !self.outgoing.relaying() {
            return !paused;
        }
        if let Err(e) = fed {
            self.base.log.warn(format_args!("{}: {}", net::show(&peer), e));
            effect = Effect::ABORT;
        }
        self.progress(k, held_before + n);
        if quit && effect == Effect::Keep {
            self.end_input(k, CloseReason::Quit);
            return false;
        }
        if matches!(effect, Effect::Keep | Effect::Stop) && !self.reserve(k) {
            // A stop asked by the handler still stops the server.
            self.apply(k, effect);
            effect = Effect::ABORT;
        }
        let go_on = self.apply(k, effect) && !paused && self.conns[k].reading();
        self.settle(k);
        go_on
    }

    /// Gives connection `k`'s cold state back to the pool if it holds nothing.
    fn settle(&mut self, k: usize) {
        if let Some(c) = self.conns.get_mut(k) {
            self.colds.settle(c, &mut self.spare);
        }
    }

    /// Writes the replies of connection `k`, which had nothing queued, to
    /// its socket: the loop's `replies`, or the first `from_scratch` bytes
    /// of the scratch buffer (a mirror's, see `dispatch`). What the socket
    /// does not take now is queued. False when the connection failed and
    /// is closed.
    fn send_replies(&mut self, k: usize, from_scratch: usize) -> bool {
        let c = &mut self.conns[k];
        let bytes = if from_scratch > 0 { &self.scratch[..from_scratch] } else { &self.replies[..] };
        let mut sent = 0;
        let mut failed = false;
        while sent < bytes.len() {
            match super::tls::write(&c.sock, c.cold.as_deref_mut().and_then(|x| x.tls.as_deref_mut()), &bytes[sent..]) {
                Ok(n) => {
                    sent += n;
                    self.base.shared.counters().wrote(n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => {
                    failed = true;
                    break;
                }
            }
        }
        if !failed && sent > 0 {
            c.last = self.clock.tick();
        }
        if !failed && sent < bytes.len() {
            self.spare.append(&mut c.cold(&mut self.colds).out, &bytes[sent..]);
        }
        self.replies.clear();
        if failed {
            self.close_now(k, CloseReason::Error);
        }
        !failed
    }

    /// Restarts the incomplete-message clock when a message completed (the
    /// decoder consumed some of the `offered` bytes) and stops it when
    /// nothing is held.
    fn progress(&mut self, k: usize, offered: usize) {
        let Some(c) = self.conns[k].cold.as_deref_mut() else { return };
        let held = c.decoder.buffered();
        let now = self.clock.now();
        c.partial_since = match held {
            0 => None,
            _ if held < offered => Some(now),
            _ => c.partial_since.or(Some(now)),
        };
    }

    /// Recharges connection `k`'s holdings to the budget.
    fn account(&mut self, k: usize) {
        let Some(c) = self.conns.get_mut(k).and_then(|c| c.cold.as_deref_mut()) else { return };
        c.reserved = c.reserved.min(c.decoder.missing());
        let claim = c.decoder.buffered() + c.reserved + c.out.len() - c.out_pos;
        self.budget.update(c.claim, claim);
        c.claim = claim;
    }

    /// Reserves what the partial message of known length still needs; false
    /// (logged) when it does not fit in what is left of the budget: the
    /// message could never complete, so the connection is closed. Messages
    /// of at most `TRICKLE` bytes always fit.
    fn reserve(&mut self, k: usize) -> bool {
        self.account(k);
        let peer = self.conns[k].peer();
        let Some(c) = self.conns[k].cold.as_deref_mut() else { return true };
        let missing = c.decoder.missing();
        if missing <= c.reserved {
            return true;
        }
        let extra = missing - c.reserved;
        let total = missing + c.decoder.buffered();
        if extra > self.budget.room() && total > TRICKLE {
            let (used, limit) = (self.budget.used(), self.budget.limit());
            let peer = net::show(&peer);
            self.base.log.warn(format_args!(
                "closing {peer}: a message of {total} bytes does not fit in the memory budget ({used} of {limit} bytes in use)"
            ));
            return false;
        }
        c.reserved = missing;
        c.decoder.reserve_missing();
        self.account(k);
        true
    }

    /// Reads again from connection `k`, paused until now, unless another
    /// cause holds it.
    fn reopen(&mut self, k: usize) {
        let high = self.max_queue / 2;
        let Some(c) = self.conns.get_mut(k) else { return };
        let read = if c.own_queued() > high {
            ReadState::Paused(Pause::Replies)
        } else if c.worker().is_some_and(|w| w.queued() > self.max_queue) {
            ReadState::Paused(Pause::Worker)
        } else {
            // Edge-triggered: data that came while paused raised no new
            // event, so read it now.
            self.again.push((k, c.id));
            ReadState::Reading
        };
        c.set_read(read);
    }

    /// Remembers a connection paused for the budget. Entries of connections
    /// resumed or closed meanwhile are dropped when the list gets long, so
    /// it stays within twice the number of connections.
    fn list_budget_paused(&mut self, k: usize, id: u64) {
        if self.budget_paused.len() >= 2 * self.conns.len() + 16 {
            let conns = &self.conns;
            self.budget_paused.retain(|&(k, id)| conns.get(k).is_some_and(|c| c.id == id && c.paused(Pause::Budget)));
            self.budget_paused.sort_unstable();
            self.budget_paused.dedup();
        }
        self.budget_paused.push((k, id));
    }

    /// Once the budget is relieved, every connection it paused reads again
    /// (and is paused again if it still holds too much).
    fn resume_budget_paused(&mut self) {
        if self.budget_paused.is_empty() || !self.budget.relieved() {
            return;
        }
        for (k, id) in std::mem::take(&mut self.budget_paused) {
            if self.conns.get(k).is_some_and(|c| c.id == id && c.paused(Pause::Budget)) {
                self.reopen(k);
            }
        }
    }

    /// After a graceful close has sent everything and shut down its write
    /// side: reads and drops what the peer still sends until its end of
    /// stream, so the close is a FIN, not a reset that would destroy replies
    /// still in flight.
    fn drain_input(&mut self, k: usize) {
        for _ in 0..READS_PER_TURN {
            let Some(c) = self.conns.get_mut(k) else { return };
            if net::unacked(c.sock.as_raw_fd()) == 0 && !c.sock.peek(&mut [0u8; 1]).is_ok_and(|n| n > 0) {
                // The peer has every byte and nothing is unread: closing now
                // cannot reset away a reply.
                return self.discard(k);
            }
            match c.sock.read(&mut self.scratch) {
                Ok(0) => return self.discard(k),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // The peer reset: everything we sent was taken or is lost anyway.
                Err(_) => return self.discard(k),
            }
        }
        let id = self.conns[k].id;
        self.again.push((k, id));
    }

    /// Writes queued replies; false if the connection is gone.
    fn flush(&mut self, k: usize) -> bool {
        let Some(c) = self.conns.get_mut(k) else { return false };
        // Nothing queued or held, read as usual, no relay waiting: nothing
        // to do (the usual case after a dispatch whose replies went out).
        if c.at_rest() && !self.outgoing.relaying() {
            return true;
        }
        if c.life == Life::Connecting {
            return self.hold_until_connected(k);
        }
        let Connection { sock, cold, last, .. } = c;
        if let Some(x) = cold.as_deref_mut() {
            while x.queued() > 0 {
                match super::tls::write(sock, x.tls.as_deref_mut(), &x.out[x.out_pos..]) {
                    Ok(0) => break,
                    Ok(n) => {
                        self.base.shared.counters().wrote(n);
                        x.out_pos += n;
                        x.pushed.sent(n);
                        x.relayed.sent(n);
                        *last = self.clock.tick();
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(_) => {
                        self.close_now(k, CloseReason::Error);
                        return false;
                    }
                }
            }
        }
        if c.queued() == 0 {
            if let Some(x) = c.cold.as_deref_mut() {
                // Emptied: the buffer goes back to the pool (idle connections hold none).
                x.out_pos = 0;
                self.spare.give(std::mem::take(&mut x.out));
            }
            let reason = c.linger().map_or(CloseReason::Error, |(reason, _)| reason);
            match c.life {
                // The peer is gone already: nothing to wait for.
                Life::Closing if reason == CloseReason::Peer => {
                    // A TLS peer that ended with close_notify waits for ours.
                    let _ = super::tls::close_notify(c);
                    self.close_now(k, CloseReason::Peer);
                    return false;
                }
                Life::Draining => {
                    self.discard(k);
                    return false;
                }
                Life::Closing => {
                    // Everything is sent: TLS's close_notify, then FIN, then
                    // wait for the peer's (until the same deadline).
                    match super::tls::close_notify(c) {
                        Ok(true) => {}
                        Ok(false) => {
                            if !c.writable {
                                c.writable = true;
                                let _ =
                                    self.base.poll.registry().reregister(&mut c.sock, Token(k), Interest::READABLE | Interest::WRITABLE);
                            }
                            return true;
                        }
                        Err(_) => {
                            self.close_now(k, reason);
                            return false;
                        }
                    }
                    let _ = c.sock.shutdown(std::net::Shutdown::Write);
                    if c.writable {
                        c.writable = false;
                        let _ = self.base.poll.registry().reregister(&mut c.sock, Token(k), Interest::READABLE);
                    }
                    self.notify(k, reason);
                    self.set_life(k, Life::Draining);
                    self.drain_input(k);
                    return false;
                }
                Life::Connecting | Life::Open(_) => {}
            }
            if c.writable {
                c.writable = false;
                let _ = self.base.poll.registry().reregister(&mut c.sock, Token(k), Interest::READABLE);
            }
        } else {
            // Only what others pushed can drop it: its own replies pause
            // reading instead (below).
            if c.pushed() > self.max_queue {
                let queued = c.queued();
                self.base.log.warn(format_args!("dropping {}: not reading its replies ({queued} bytes queued)", net::show(&c.peer())));
                self.close_now(k, CloseReason::Overflow);
                return false;
            }
            if let Some(x) = c.cold.as_deref_mut().filter(|x| x.out_pos > x.out.len() / 2) {
                x.out.drain(..x.out_pos);
                x.out_pos = 0;
            }
            if !c.writable {
                c.writable = true;
                let _ = self.base.poll.registry().reregister(&mut c.sock, Token(k), Interest::READABLE | Interest::WRITABLE);
            }
        }
        self.account(k);
        self.relay_drained(k);
        // Backpressure on its own replies: high water half of max_queue,
        // low water a quarter. One paused for the budget that now holds
        // nothing may read again (a little at a time while it is spent).
        let c = &mut self.conns[k];
        let own = c.own_queued();
        if let Some(w) = c.cold.as_deref_mut().and_then(|x| x.worker.as_mut()) {
            // Its thread must wait too: it may hold many messages already.
            w.replies(own, self.max_queue / 2, self.max_queue / 4);
        }
        match c.life {
            Life::Open(ReadState::Reading) if own > self.max_queue / 2 => c.set_read(ReadState::Paused(Pause::Replies)),
            Life::Open(ReadState::Paused(Pause::Replies)) if own <= self.max_queue / 4 => self.reopen(k),
            Life::Open(ReadState::Paused(Pause::Budget)) if c.claim() == 0 => self.reopen(k),
            _ => {}
        }
        self.settle(k);
        true
    }

    /// The peer is done (end of stream or quit word). On the event loop the
    /// connection closes once its replies are flushed; a worker first gets
    /// to finish the messages it holds, then sends `Finish` back.
    fn end_input(&mut self, k: usize, reason: CloseReason) {
        let Some(c) = self.conns.get_mut(k) else { return };
        let Some(w) = c.worker() else { return self.begin_close(k, reason) };
        if matches!(c.life, Life::Open(r) if r != ReadState::Ended) {
            w.end(reason);
            c.set_read(ReadState::Ended);
        }
    }

    /// Stops reading; the connection closes once its replies are flushed
    /// (or after `LINGER`).
    /// A connection still connecting has nothing to flush: it closes at once.
    fn begin_close(&mut self, k: usize, reason: CloseReason) {
        match self.conns.get(k).map(|c| c.life) {
            None => return,
            Some(Life::Connecting) => return self.close_now(k, reason),
            Some(Life::Open(_)) => self.linger(k, reason, LINGER),
            Some(Life::Closing | Life::Draining) => {}
        }
        self.flush(k);
    }

    /// Moves connection `k` to closing with `reason`: it closes once its
    /// replies are flushed, or `within` from now anyway.
    fn linger(&mut self, k: usize, reason: CloseReason, within: Duration) {
        self.set_life(k, Life::Closing);
        self.conns[k].cold(&mut self.colds).linger = Some((reason, Instant::now() + within));
    }

    /// Moves connection `k` to `life`, keeping `lingering` in step: with
    /// [`discard`](TcpServer::discard), the only place the count changes.
    fn set_life(&mut self, k: usize, life: Life) {
        let c = &mut self.conns[k];
        self.lingering = self.lingering + usize::from(life.lingers()) - usize::from(c.life.lingers());
        c.life = life;
    }

    /// Tells the handler (once) that the connection is over: from here on
    /// nothing can be sent to it, even while its socket lingers.
    fn notify(&mut self, k: usize, reason: CloseReason) {
        let Some(c) = self.conns.get_mut(k) else { return };
        if c.life == Life::Draining {
            return; // told when it began draining
        }
        self.base.shared.conns.closed(c.id, reason);
        match c.cold.as_deref_mut().and_then(|x| x.worker.take()) {
            Some(w) => {
                self.joins.push(w.close(reason));
                self.reap();
            }
            None => {
                let peer = c.peer();
                let mut conn = Conn { id: c.id, peer, user: &mut c.user, sink: Sink::Closed, shared: &self.base.shared };
                self.handler.on_close(&mut conn, reason);
            }
        }
    }

    /// Closes connection `k` at once, telling its handler why.
    fn close_now(&mut self, k: usize, reason: CloseReason) {
        self.notify(k, reason);
        self.discard(k);
    }

    /// Closes connection `k` at once without a callback: its handler was
    /// told already (or is owed nothing).
    fn discard(&mut self, k: usize) {
        let Some(c) = self.conns.try_remove(k) else { return };
        self.lingering -= usize::from(c.life.lingers());
        self.budget.sub(c.claim());
        if !self.outgoing.closed(c.id) {
            self.per_ip.leave(c.peer().ip());
        }
        self.resume_relays(c.id);
        // Dropping `c` closes the socket, its only descriptor: that takes it
        // out of the epoll set and sends the FIN (or the RST, if input is
        // left unread) without an epoll_ctl or a shutdown call first.
        drop(c);
    }

    /// Joins worker threads that have finished (a joinable thread keeps its
    /// stack until joined).
    fn reap(&mut self) {
        let (done, live): (Vec<_>, Vec<_>) = self.joins.drain(..).partition(|j| j.is_finished());
        for j in done {
            j.join();
        }
        self.joins = live;
    }

    fn find(&self, id: u64) -> Option<usize> {
        let k = if id & OUTGOING != 0 { self.outgoing.slot(id)? } else { (id & 0xffff_ffff) as usize };
        self.conns.get(k).filter(|c| c.id == id).map(|_| k)
    }

    /// Queues bytes for connection `k`: its own reply, or `pushed` by others.
    fn queue(&mut self, k: usize, bytes: &[u8], pushed: bool) {
        let c = &mut self.conns[k];
        if !c.life.lingers() {
            let x = c.cold(&mut self.colds);
            if pushed {
                // A send_to or broadcast (a handler's reply was counted when sent).
                self.base.shared.counters().message_out();
                x.pushed.add(x.out.len() - x.out_pos, bytes.len());
            }
            self.spare.append(&mut x.out, bytes);
            self.flush(k);
        }
    }

    fn run_commands(&mut self) {
        for cmd in self.base.commands() {
            match cmd {
                Command::Send { id, bytes } => {
                    if let Some(k) = self.find(id) {
                        self.queue(k, &bytes, true);
                    }
                }
                Command::Reply { id, bytes } => {
                    if let Some(k) = self.find(id) {
                        self.queue(k, &bytes, false);
                    }
                }
                Command::Broadcast { bytes, except } => {
                    let keys: Vec<usize> = self.conns.iter().filter(|(_, c)| Some(c.id) != except).map(|(k, _)| k).collect();
                    for k in keys {
                        if self.conns.contains(k) {
                            self.queue(k, &bytes, true);
                        }
                    }
                }
                Command::Close { id, reason, mode } => {
                    if let Some(k) = self.find(id) {
                        self.apply(k, Effect::Close(reason, mode));
                    }
                }
                Command::SetIdle { id, idle } => {
                    if let Some(k) = self.find(id) {
                        self.conns[k].cold(&mut self.colds).idle = idle;
                        self.settle(k);
                        self.idle_overrides = true;
                    }
                }
                Command::Finish { id, reason } => {
                    if let Some(k) = self.find(id) {
                        self.begin_close(k, reason);
                    }
                }
                Command::Timer(_) => {} // taken by the base
                Command::Relay { from, to, bytes } => self.relay(from, to, &bytes),
                Command::Connect(dial) => self.connect(*dial),
                Command::Resolved { id, addrs } => self.resolved(id, addrs),
                Command::Resume { id } => {
                    if let Some(k) = self.find(id) {
                        let c = &self.conns[k];
                        if c.paused(Pause::Worker) && c.worker().is_some_and(|w| w.queued() <= self.max_queue / 2) {
                            self.reopen(k);
                        }
                    }
                }
            }
        }
    }

    /// Idle timeouts, incomplete messages held too long, and closing
    /// connections that will not flush: a scan of every connection, so at
    /// most once per `SWEEP_EVERY`.
    fn sweep(&mut self) {
        self.clock.update();
        let now = self.clock.now();
        self.last_sweep = self.clock.tick();
        self.reap();
        self.connect_timeouts(now);
        if self.idle.is_none() && self.lingering == 0 && self.incomplete.is_none() && !self.idle_overrides && self.tls.is_none() {
            return;
        }
        let mut expired = Vec::new();
        let draining: Vec<usize> = self.conns.iter().filter(|(_, c)| c.life == Life::Draining).map(|(k, _)| k).collect();
        for k in draining {
            self.drain_input(k);
        }
        for (k, c) in self.conns.iter() {
            let (reason, late) = c.linger().map_or((CloseReason::Error, false), |(reason, d)| (reason, now >= d));
            match c.life {
                // A draining connection said its reason already.
                Life::Draining if late => expired.push((k, None)),
                // One that never took its replies ends in error.
                Life::Closing if late => expired.push((k, Some(if reason == CloseReason::Stopping { reason } else { CloseReason::Error }))),
                // A client stalling mid-handshake: the server's timeout, or
                // the TLS default when it has none.
                Life::Open(_)
                    if super::tls::handshaking_since(c)
                        .is_some_and(|since| now.duration_since(since) >= self.idle.unwrap_or(crate::tls::HANDSHAKE_TIMEOUT)) =>
                {
                    let t = self.idle.unwrap_or(crate::tls::HANDSHAKE_TIMEOUT);
                    self.base.log.warn(format_args!(
                        "tls handshake with {}: not done after {} ms: closing it",
                        net::show(&c.peer()),
                        t.as_millis()
                    ));
                    expired.push((k, Some(CloseReason::Error)));
                }
                Life::Open(_) if c.idle().resolve(self.idle).is_some_and(|t| self.clock.passed(c.last, t)) => {
                    expired.push((k, Some(CloseReason::Idle)))
                }
                // Not while its replies or its worker hold it back: then the
                // wait is the server's, not the peer's.
                Life::Open(r)
                    if self.incomplete.zip(c.partial_since()).is_some_and(|(t, since)| now.duration_since(since) >= t)
                        && !matches!(r, ReadState::Paused(Pause::Replies | Pause::Worker | Pause::Relay)) =>
                {
                    let t = self.incomplete.unwrap_or_default();
                    self.base.log.warn(format_args!(
                        "closing {}: message still incomplete after {} ms",
                        net::show(&c.peer()),
                        t.as_millis()
                    ));
                    expired.push((k, Some(CloseReason::Error)));
                }
                _ => {}
            }
        }
        for (k, reason) in expired {
            match reason {
                Some(CloseReason::Idle) => self.begin_close(k, CloseReason::Idle),
                Some(reason) => self.close_now(k, reason),
                None => self.discard(k),
            }
        }
    }

    fn shutdown(&mut self, events: &mut Events) {
        if let Some(mut l) = self.listener.take() {
            let _ = self.base.poll.registry().deregister(&mut l);
        }
        self.run_commands();
        // Messages not yet handed to a handler are dropped: a blocked
        // handler could otherwise hold the stop for as long as it has input.
        for (_, c) in self.conns.iter() {
            if let Some(w) = c.worker() {
                w.stop_delivering();
            }
        }
        let keys: Vec<usize> = self.conns.iter().map(|(k, _)| k).collect();
        for k in keys {
            match self.conns[k].life {
                Life::Connecting => self.close_now(k, CloseReason::Stopping),
                Life::Open(_) | Life::Closing => {
                    self.linger(k, CloseReason::Stopping, Duration::from_secs(2));
                    self.flush(k);
                }
                // Told already: flushed, it closes now.
                Life::Draining => {
                    self.flush(k);
                }
            }
        }
        // Let queued replies drain, bounded by each connection's deadline.
        while !self.conns.is_empty() {
            let _ = self.base.poll.poll(events, Some(Duration::from_millis(100)));
            for ev in events.iter() {
                let Token(k) = ev.token();
                {
                    if self.conns.contains(k) && ev.is_writable() {
                        self.flush(k);
                    }
                    if self.conns.get(k).is_some_and(|c| c.life == Life::Draining) && (ev.is_readable() || ev.is_read_closed()) {
                        self.drain_input(k);
                    }
                }
            }
            self.sweep();
        }
        self.join_workers();
        self.base.stopped();
    }

    /// Waits (at most `STOP_WAIT`) for the connection threads; one still
    /// inside a handler after that is left to finish on its own.
    fn join_workers(&mut self) {
        let deadline = Instant::now() + STOP_WAIT;
        while self.joins.iter().any(|j| !j.is_finished()) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        let (done, stuck): (Vec<_>, Vec<_>) = self.joins.drain(..).partition(|j| j.is_finished());
        for j in done {
            j.join();
        }
        if !stuck.is_empty() {
            self.base.log.warn(format_args!(
                "{} connection thread(s) still in a handler after {} ms: not waiting for them",
                stuck.len(),
                STOP_WAIT.as_millis()
            ));
            for j in stuck {
                j.abandon();
            }
        }
    }
}

impl Loop for TcpServer {
    fn base(&self) -> &Base {
        &self.base
    }

    fn base_mut(&mut self) -> &mut Base {
        &mut self.base
    }

    fn turn(&mut self, timeout: Option<Duration>) -> Result<bool> {
        TcpServer::turn(self, timeout)
    }

    fn next_deadline(&mut self) -> Option<Duration> {
        TcpServer::next_deadline(self)
    }

    fn finish(self: Box<Self>) {
        TcpServer::finish(*self)
    }
}
