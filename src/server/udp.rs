//! The UDP server: one socket on the event loop; each datagram is one
//! message, handed to the same [`Handler`] as TCP, and replies go back to
//! its sender. The quit word has no effect, and handlers run on the loop
//! thread.
//!
//! In [`UdpMode::Datagrams`] (the default) there are no connections:
//! `on_connect`/`on_close` are not called. In [`UdpMode::Peers`] each
//! sender address is a connection kept in a [`Peers`] table: `on_connect`
//! at its first datagram, `on_close` when it has been silent for the idle
//! timeout (the loop sleeps exactly until the next expiry) or at the stop,
//! and sends by id from any thread go to its address.
//!
//! Datagrams are received in batches (one `recvmmsg` takes up to 64) and
//! each batch's replies, queued by `Conn::send`, leave a few at a time (one
//! `sendmmsg` per group of 2, 4, 8, ... and one at the batch's end; see
//! [`FIRST_FLUSH`] and `outbox.rs`): a system call costs more than
//! handling a small datagram, but a client should not wait for the whole
//! batch to be handled before it gets its first replies.

use super::admission::Throttle;
use super::base::Base;
use super::control::Command;
use super::dgram::Dgram;
use super::effect::Effect;
use super::event_loop::{run_to_end, Loop};
use super::outbox::Outbox;
use super::peers::{Heard, Peer, Peers};
use super::timer::sooner;
use super::workers::Seq;
use super::{Action, CloseReason, Config, Conn, Handler, ServerHandle, Sink, UdpMode};
use crate::error::{Error, Result};
use crate::frame::{Ending, Frame};
use crate::net;
use crate::sys::Datagrams;
use crate::udp::datagram_msg;
use mio::net::UdpSocket;
use mio::{Events, Interest, Token};
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

const SOCKET: Token = Token(0);

/// Replies queued before the first send of a batch's replies; each later
/// send waits for twice as many. A batch sent whole at its end keeps its
/// peers idle while it is handled: one client with 32 datagrams in flight
/// got all 32 replies at once, then the server sat idle while the client
/// answered them all (2026-11-30: 0.8x the round trips of a server
/// answering each datagram at once, on two cores). Sending the first
/// replies early lets the two overlap (1.2-1.6x) for a few more system
/// calls: 6 sends for a batch of 64 instead of 1.
const FIRST_FLUSH: usize = 2;

/// Datagrams per readiness event before the loop checks for stop/signals.
const DATAGRAMS_PER_TURN: usize = 64;
/// A receive slot: larger than any UDP payload, so nothing is ever cut.
const SLOT: usize = 65536;
/// The receive slots take at most this share of the memory budget (in
/// address space: a page is touched only when a datagram lands on it).
const SLOTS_SHARE: usize = 64;
/// A peer's idle timeout when the config sets none.
const PEER_IDLE: Duration = Duration::from_secs(60);

/// A bound UDP server, ready to [`run`](UdpServer::run).
pub struct UdpServer {
    base: Base,
    sock: Dgram,
    handler: Arc<dyn Handler>,
    frame: Frame,
    next_id: Seq,
    /// The sender table in [`UdpMode::Peers`].
    peers: Option<Box<Peers>>,
    refusals: Throttle,
    events: Events,
    /// Where datagrams are received, up to [`crate::sys::BATCH`] per system call.
    slots: Datagrams,
    /// Replies and sends, sent in groups while a batch is handled.
    out: Outbox,
    /// Datagrams may be left from the last turn (it stopped at its bound).
    more: bool,
}

impl UdpServer {
    /// Binds the first of `addrs` that works (a socket per worker of
    /// `cfg.workers`, see `workers.rs`: the kernel keeps each sender on one
    /// worker, so a peer stays with the worker that knows it).
    pub fn bind(addrs: &[SocketAddr], cfg: Config, handler: Arc<dyn Handler>) -> Result<UdpServer> {
        super::workers::assemble(addrs, cfg, |addrs, cfg, seat| UdpServer::bind_one(addrs, cfg, handler.clone(), seat))
    }

    fn bind_one(addrs: &[SocketAddr], cfg: Config, handler: Arc<dyn Handler>, seat: super::workers::Seat) -> Result<UdpServer> {
        let u = super::workers::bind_udp(addrs, &seat)?;
        let local = u.local_addr()?;
        let std = u.into_std();
        std.set_nonblocking(true).map_err(|e| Error::io("fcntl", &e))?;
        UdpServer::on(Dgram::udp(UdpSocket::from_std(std)), local, cfg, handler, seat)
    }

    /// Serves on a local datagram socket (`unix:PATH` or `unix:@NAME`;
    /// `mode`: the socket file's permissions, removed when the server
    /// stops). One loop, whatever `cfg.workers` says: a socket file cannot
    /// be bound twice, and senders are numbered per socket.
    pub fn bind_unix(place: &crate::unix::Place, mode: Option<u32>, cfg: Config, handler: Arc<dyn Handler>) -> Result<UdpServer> {
        let (std, file) = crate::unix::bind_datagram(place, mode)?;
        std.set_nonblocking(true).map_err(|e| Error::io("fcntl", &e))?;
        let mut sock = Some(Dgram::local(std, crate::unix::LocalDatagram::new(file)));
        let none = SocketAddr::from(([0, 0, 0, 0], 0));
        super::workers::assemble(&[none], Config { workers: 1, ..cfg }, |_, cfg, seat| {
            let sock = sock.take().ok_or_else(|| Error::inval("a unix datagram server has one loop"))?;
            let mut s = UdpServer::on(sock, none, cfg, handler.clone(), seat)?;
            s.base.place = Some(place.to_string());
            Ok(s)
        })
    }

    fn on(mut sock: Dgram, local: SocketAddr, mut cfg: Config, handler: Arc<dyn Handler>, seat: super::workers::Seat) -> Result<UdpServer> {
        let next_id = seat.seq();
        let base = Base::new(local, cfg.frame, true, &mut cfg, seat)?;
        base.poll.registry().register(&mut sock, SOCKET, Interest::READABLE).map_err(|e| Error::io("epoll_ctl", &e))?;
        let peers = match cfg.udp {
            UdpMode::Datagrams => None,
            UdpMode::Peers => Some(Box::new(Peers::new(cfg.idle_timeout.unwrap_or(PEER_IDLE), cfg.max_conns))),
        };
        Ok(UdpServer {
            base,
            sock,
            handler,
            frame: cfg.frame,
            next_id,
            peers,
            refusals: Throttle::default(),
            events: Events::with_capacity(64),
            slots: Datagrams::new(cfg.memory_budget / SLOTS_SHARE / SLOT, SLOT),
            out: Outbox::new(),
            more: false,
        })
    }

    /// Binds the parsed command line's host and port.
    pub fn from_args(a: &crate::args::Args, cfg: Config, handler: Arc<dyn Handler>) -> Result<UdpServer> {
        a.tls.refuse(a.side())?;
        match a.unix() {
            Some(place) => UdpServer::bind_unix(&place?, a.mode, cfg, handler),
            None => UdpServer::bind(&a.addrs()?, cfg, handler),
        }
    }

    /// A thread-safe handle: stop; with peers also send and broadcast.
    pub fn handle(&self) -> ServerHandle {
        self.base.handle()
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.base.local_addr()
    }

    /// Runs until stopped (a handler's `Stop`, [`ServerHandle::stop`], or a
    /// signal when configured); then every peer gets `on_close(Stopping)`.
    pub fn run(self) -> Result<()> {
        run_to_end(Box::new(self), true)
    }

    /// As [`TcpServer::announce`](super::tcp::TcpServer::announce).
    pub fn announce(&self) {
        self.base.announce();
    }

    /// As [`TcpServer::fd`](super::tcp::TcpServer::fd).
    pub fn fd(&self) -> std::os::fd::RawFd {
        self.base.fd()
    }

    /// As [`TcpServer::turn`](super::tcp::TcpServer::turn). Expiries come
    /// first: a peer silent past its timeout is closed even if a datagram
    /// from it is waiting (that one makes it new again).
    pub fn turn(&mut self, timeout: Option<Duration>) -> Result<bool> {
        let _turning = self.base.turning();
        let timeout = if self.more { Some(Duration::ZERO) } else { sooner(timeout, self.until_next_expiry()) };
        self.base.wait(&mut self.events, timeout)?;
        self.expire();
        let mut slots = std::mem::take(&mut self.slots);
        self.more = self.receive(&mut slots);
        self.slots = slots;
        self.run_commands();
        self.flush();
        Ok(!self.base.shared.stopping())
    }

    /// As [`TcpServer::next_deadline`](super::tcp::TcpServer::next_deadline).
    pub fn next_deadline(&mut self) -> Option<Duration> {
        if self.more {
            return Some(Duration::ZERO);
        }
        sooner(self.until_next_expiry(), self.base.next_timer())
    }

    /// Sends what is queued, closes every peer (`Stopping`) and logs the
    /// stop.
    pub fn finish(mut self) {
        self.run_commands();
        self.flush();
        while let Some((addr, p)) = self.peers.as_mut().and_then(|t| t.pop_any()) {
            self.closed(addr, p, CloseReason::Stopping);
        }
        self.base.stopped();
    }

    /// How long the loop may sleep: until the oldest peer expires (rounded
    /// up, so it wakes after the deadline, not just before), or forever.
    fn until_next_expiry(&self) -> Option<Duration> {
        let at = self.peers.as_ref()?.next_expiry()?;
        Some(at.saturating_duration_since(Instant::now()) + Duration::from_millis(1))
    }

    /// Handles waiting datagrams, a batch (one `recvmmsg`) at a time, each
    /// batch's replies sent together (one `sendmmsg`); true if some may be
    /// left.
    fn receive(&mut self, slots: &mut Datagrams) -> bool {
        let mut left = DATAGRAMS_PER_TURN;
        // Each pass takes at least one datagram or meets an error: bounded.
        for _ in 0..DATAGRAMS_PER_TURN {
            if self.base.shared.stopping() {
                return false;
            }
            let n = match self.sock.recv_batch(slots, left) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    // e.g. ECONNREFUSED from an earlier reply's ICMP: not fatal.
                    self.base.log.error(format_args!("{}", Error::io("recvmmsg", &e)));
                    continue;
                }
            };
            self.handle_batch(slots, n);
            self.flush();
            // Fewer than asked: the socket is empty. (An error that cut a
            // batch short is kept by the kernel for the next call, with no
            // new wake-up; but the only errors that come between datagrams
            // are ICMP ones, which an unconnected socket does not take.)
            if n < left.min(slots.slots()) {
                return false;
            }
            left -= n;
            if left == 0 {
                break;
            }
        }
        true
    }

    /// Hands the `n` datagrams received in `slots` to the handler, in order.
    /// Replies leave in groups that double ([`FIRST_FLUSH`], then twice as
    /// many, ...), the rest with the batch's end.
    fn handle_batch(&mut self, slots: &Datagrams, n: usize) {
        let (mut count, mut bytes) = (0, 0);
        let mut step = FIRST_FLUSH;
        for i in 0..n {
            if self.base.shared.stopping() {
                break;
            }
            if self.out.len() >= step {
                self.flush();
                step *= 2;
            }
            let d = slots.get(i);
            let peer = match self.sock.sender(&d) {
                Ok(p) => net::canonical(p),
                Err(e) => {
                    self.base.log.error(format_args!("{}", Error::io("recvmmsg", &e)));
                    continue;
                }
            };
            let (msg, ending) = datagram_msg(self.frame, d.data);
            if msg.len() > self.frame.max_len() {
                self.base.log.warn(format_args!(
                    "{}: datagram of {} bytes is over the limit of {}: dropped",
                    net::show(&peer),
                    msg.len(),
                    self.frame.max_len()
                ));
                self.base.shared.counters().dropped();
                continue;
            }
            (count, bytes) = (count + 1, bytes + msg.len() as u64);
            if self.peers.is_some() {
                self.peer_datagram(peer, msg, ending);
                continue;
            }
            let mut user = 0;
            let id = self.next_id.take();
            let sink = Sink::Datagram { sock: &self.sock, frame: self.frame, out: &mut self.out, ending, peer: false };
            let mut c = Conn { id, peer, user: &mut user, sink, shared: &self.base.shared };
            if self.handler.on_message(&mut c, msg) == Action::Stop {
                self.base.shared.stop();
            }
        }
        self.base.shared.counters().messages_in(count, bytes);
    }

    /// Sends the queued datagrams, and logs what the kernel refused.
    fn flush(&mut self) {
        self.out.flush(&self.sock, self.base.shared.counters());
        if let Some((n, to, e)) = self.out.refused() {
            let more = if n > 1 { format!(" ({} more dropped)", n - 1) } else { String::new() };
            self.base.log.warn(format_args!("{}: dropped{more}", Error::io(format!("sendto {}", net::show(&to)), &e)));
        }
    }

    /// One datagram in peers mode: `on_connect` first for a new sender,
    /// then `on_message`; a `Close`/`Abort` from either ends the peer.
    fn peer_datagram(&mut self, addr: SocketAddr, msg: &[u8], ending: Ending) {
        let Some(peers) = self.peers.as_mut() else { return };
        let (p, new) = match peers.hear(addr, Instant::now(), self.next_id.peek()) {
            Heard::Known(p) => (p, false),
            Heard::New(p) => {
                self.next_id.take();
                // Counted and listed by the server controls, like a TCP connection.
                self.base.shared.conns.opened(p.id, addr);
                (p, true)
            }
            Heard::Full => return self.refused(addr),
        };
        let (handler, shared, sock, frame, out) = (&*self.handler, &self.base.shared, &self.sock, self.frame, &mut self.out);
        let mut call = |ending, f: &dyn Fn(&mut Conn<'_>) -> Action| {
            let sink = Sink::Datagram { sock, frame, out: &mut *out, ending, peer: true };
            f(&mut Conn { id: p.id, peer: addr, user: &mut p.user, sink, shared })
        };
        let mut action = if new { call(Ending::Lf, &|c| handler.on_connect(c)) } else { Action::Continue };
        if matches!(action, Action::Continue | Action::Stop) {
            let then = call(ending, &|c| handler.on_message(c, msg));
            action = if action == Action::Stop { Action::Stop } else { then };
        }
        // A peer has no queue to flush: both kinds of close end it now.
        let reason = match action.effect() {
            Effect::Keep => return,
            Effect::Stop => return shared.stop(),
            Effect::Close(reason, _) => reason,
        };
        if let Some(p) = self.peers.as_mut().and_then(|t| t.remove(addr)) {
            self.closed(addr, p, reason);
        }
    }

    /// Logs a datagram from a new sender dropped for `max_conns`, at most
    /// once a second.
    fn refused(&mut self, addr: SocketAddr) {
        self.base.shared.counters().dropped();
        let max = self.peers.as_ref().map_or(0, |t| t.max());
        if let Some(skipped) = self.refusals.ready() {
            let more = if skipped > 0 { format!(" ({skipped} more dropped since the last such line)") } else { String::new() };
            self.base.log.warn(format_args!("too many peers ({max}): dropping a datagram from {}{more}", net::show(&addr)));
        }
    }

    /// Tells the handler that peer `p` (already out of the table) is gone.
    fn closed(&self, addr: SocketAddr, mut p: Peer, reason: CloseReason) {
        self.base.shared.conns.closed(p.id, reason);
        let mut c = Conn { id: p.id, peer: addr, user: &mut p.user, sink: Sink::Closed, shared: &self.base.shared };
        self.handler.on_close(&mut c, reason);
    }

    /// Ends the peers silent for the idle timeout.
    fn expire(&mut self) {
        let now = Instant::now();
        while let Some((addr, p)) = self.peers.as_mut().and_then(|t| t.pop_expired(now)) {
            self.closed(addr, p, CloseReason::Idle);
        }
    }

    /// Sends and closes asked by other threads (and callbacks). Datagrams
    /// the socket cannot take now are lost, as UDP may lose any.
    fn run_commands(&mut self) {
        for cmd in self.base.commands() {
            let Some(peers) = self.peers.as_mut() else { continue };
            match cmd {
                Command::Send { id, bytes } | Command::Reply { id, bytes } => {
                    if let Some(addr) = peers.addr_of(id) {
                        self.send(&bytes, addr);
                    }
                }
                Command::Broadcast { bytes, except } => {
                    for (id, addr) in peers.all() {
                        if Some(id) != except {
                            self.send(&bytes, addr);
                        }
                    }
                }
                Command::Close { id, reason, .. } => {
                    if let Some((addr, p)) = peers.addr_of(id).and_then(|a| peers.remove(a).map(|p| (a, p))) {
                        self.closed(addr, p, reason);
                    }
                }
                // Timers are the base's; the rest concern TCP connections
                // (a UDP server refuses to connect, so none come).
                Command::Finish { .. }
                | Command::Resume { .. }
                | Command::SetIdle { .. }
                | Command::Timer(_)
                | Command::Relay { .. }
                | Command::Connect { .. }
                | Command::Resolved { .. } => {}
            }
        }
    }

    /// Queues a send asked by another thread (sent at the end of the turn).
    fn send(&mut self, bytes: &[u8], addr: SocketAddr) {
        if let Err(e) = self.out.queue_bytes(&self.sock, self.base.shared.counters(), bytes, addr) {
            self.base.log.warn(format_args!("{e}"));
        }
    }
}

impl Loop for UdpServer {
    fn base(&self) -> &super::base::Base {
        &self.base
    }

    fn base_mut(&mut self) -> &mut super::base::Base {
        &mut self.base
    }

    fn turn(&mut self, timeout: Option<Duration>) -> Result<bool> {
        UdpServer::turn(self, timeout)
    }

    fn next_deadline(&mut self) -> Option<Duration> {
        UdpServer::next_deadline(self)
    }

    fn finish(self: Box<Self>) {
        UdpServer::finish(*self)
    }
}
