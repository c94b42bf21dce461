//! Outgoing connections on a TCP server's loop, and relays between
//! connections (a proxy's two sides).
//!
//! Connecting. `ServerHandle::connect_to` hands back the new connection's
//! id at once (from a counter in `Shared`, with the `OUTGOING` bit, so the
//! caller need not wait for the loop); the loop then opens a non-blocking
//! socket per destination in turn — an IP address, or a local (`unix:`)
//! socket, carried as a `TcpStream` like accepted local connections (see
//! `unix.rs`), so both take the one path below — and a connection that is
//! `Connecting` is neither read nor written by the loop's usual path: the
//! first writable or error event says how the connect ended (`SO_ERROR`,
//! then `getpeername`, which works for both kinds). A TLS connection then
//! stays `Connecting` through its handshake (`Stage::Handshaking`, the
//! client side of rustls in its cold state, see `tls.rs`), so that
//! `on_connect` means "ready to talk" and a handshake failure is a failed
//! connect, with its rustls reason, as the blocking `tcp::Stream` reports
//! it. Connected, it is served exactly like an accepted one (`on_connect`,
//! messages, close_notify and `on_close`); a connect that fails on every
//! destination, or passes its deadline (checked by the loop's sweep; the
//! handshake is bounded by the same deadline, or `HANDSHAKE_TIMEOUT` when
//! the connect has none), ends in `on_close` with `ConnectFailed` and the
//! error, given to the handler through `Conn::error`. Bytes sent to it meanwhile wait in its
//! queue (pushed bytes still bounded by `max_queue`); closing it before it
//! connected closes it at once. Outgoing ids do not encode their slot, so
//! `find` looks them up here (a hash map: still O(1)).
//!
//! Relaying. A proxy forwards what one side sends to the other. Were those
//! bytes "pushed" (`send_to`), a slow receiving side would be dropped at
//! `max_queue`; were they the receiver's own replies, the receiver would stop
//! being read, which deadlocks a proxy in front of an echo server (its
//! replies could never drain). A hand-written proxy stops reading the
//! *sending* side while the receiving side's buffer is full, and so does
//! this: relayed bytes are counted apart (`relayed`), never drop anyone, and
//! a sender whose target holds more than half of `max_queue` is paused
//! (`Pause::Relay`) until the target is under a quarter. A sender may relay
//! at most one turn of reads past that mark, so the queue stays bounded.

use super::{CloseReason, Conn, Connection, Life, Pause, ReadState, Sink, TcpServer};
use crate::error::{Code, Error, Result};
use crate::net;
use crate::server::control::{Dest, Dial, OUTGOING};
use crate::server::tls::{self as tls, TlsConn};
use mio::net::TcpStream;
use mio::{Interest, Token};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// A connect in progress.
struct Pending {
    stage: Stage,
    deadline: Option<Instant>,
    timeout: Duration,
    /// Where it is connecting now (named in its errors).
    at: String,
    /// The client side of TLS, to start once connected.
    tls: Option<crate::tls::Setup>,
    /// Why the last destination failed.
    error: Option<Error>,
}

/// Where a connect in progress is.
enum Stage {
    /// Its name is being resolved.
    Resolving,
    /// Connecting to one destination; `rest` are tried next, last first.
    Connecting { rest: Vec<Dest> },
    /// Connected; the TLS handshake goes on (the connection's `TlsConn`).
    Handshaking,
}

#[derive(Default)]
pub(super) struct Outgoing {
    /// Slot of each open outgoing connection, by id.
    slots: HashMap<u64, usize>,
    /// Connects in progress, by id.
    pending: HashMap<u64, Pending>,
    /// Senders paused by `relay`, by the id of the connection they wait for.
    waiters: HashMap<u64, Vec<(usize, u64)>>,
}

impl Outgoing {
    /// True while a connect is in progress (the sweep checks deadlines).
    pub(super) fn connecting(&self) -> bool {
        !self.pending.is_empty()
    }

    /// True while some sender waits for a relay target to drain.
    pub(super) fn relaying(&self) -> bool {
        !self.waiters.is_empty()
    }

    pub(super) fn slot(&self, id: u64) -> Option<usize> {
        self.slots.get(&id).copied()
    }

    /// Forgets connection `id`, which closed; true if it was an outgoing one.
    /// An accepted connection's id has no `OUTGOING` bit: it is in neither
    /// table, and is answered without hashing (a close would otherwise pay
    /// two SipHash lookups for nothing).
    pub(super) fn closed(&mut self, id: u64) -> bool {
        if id & OUTGOING == 0 {
            return false;
        }
        self.pending.remove(&id);
        self.slots.remove(&id).is_some()
    }
}

/// The peer a connection to `dest` has until it is connected (a local
/// one's credentials are read once it is).
fn peer_of(dest: &Dest) -> SocketAddr {
    match dest {
        Dest::Ip(a) => net::canonical(*a),
        Dest::Unix(_) => crate::unix::cred_addr(crate::unix::Cred { pid: 0, uid: 0, gid: 0 }),
    }
}

/// Starts connecting a non-blocking socket to `dest`: the one connect of
/// both kinds (a local stream socket is carried as a `TcpStream`, see
/// `unix.rs`); the first writable or error event says how it ended.
fn open(dest: &Dest) -> Result<TcpStream> {
    match dest {
        Dest::Ip(a) => TcpStream::connect(*a).map_err(|e| Error::io(format!("connect {dest}"), &e)),
        Dest::Unix(place) => crate::unix::connect_nonblocking(place).map(TcpStream::from_std),
    }
}

/// True once `sock`'s connect is done (`getpeername`, which works for IP
/// and local sockets alike); false while it goes on.
fn is_connected(sock: &TcpStream) -> std::io::Result<bool> {
    use std::os::fd::AsRawFd;
    match nix::sys::socket::getpeername::<nix::sys::socket::SockaddrStorage>(sock.as_raw_fd()) {
        Ok(_) => Ok(true),
        Err(nix::errno::Errno::ENOTCONN) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

impl TcpServer {
    /// Runs `Command::Connect`: the connection takes its slot now (so what
    /// is sent to it waits in its queue), then connects to its
    /// destinations once it has them.
    pub(super) fn connect(&mut self, d: Dial) {
        let Dial { id, dests, at, timeout, tls, mut user } = d;
        let peer = dests.as_ref().and_then(|a| a.first()).map_or(SocketAddr::from(([0, 0, 0, 0], 0)), peer_of);
        let placeholder = match net::unconnected_tcp() {
            Ok(s) if self.conns.len() < self.max_conns => s,
            Ok(_) => {
                let e = Error::new(Code::Busy, format!("connect {at}: too many connections ({})", self.conns.len()));
                return self.unopened(id, peer, &mut user, e);
            }
            Err(e) => return self.unopened(id, peer, &mut user, e),
        };
        let sock = TcpStream::from_std(placeholder);
        let k = self.conns.insert(Connection::new(sock, id, peer, Life::Connecting, user, self.clock.tick(), &mut self.colds));
        self.outgoing.slots.insert(id, k);
        let deadline = timeout.map(|t| Instant::now() + t);
        let p = Pending { stage: Stage::Resolving, deadline, timeout: timeout.unwrap_or_default(), at, tls, error: None };
        self.outgoing.pending.insert(id, p);
        if let Some(dests) = dests {
            self.try_dests(id, Ok(dests));
        }
    }

    /// Runs `Command::Resolved`: tries the addresses, or fails the connect.
    pub(super) fn resolved(&mut self, id: u64, addrs: Result<Vec<SocketAddr>>) {
        self.try_dests(id, addrs.map(|a| a.into_iter().map(Dest::Ip).collect()));
    }

    fn try_dests(&mut self, id: u64, dests: Result<Vec<Dest>>) {
        let Some(p) = self.outgoing.pending.get_mut(&id) else { return };
        match dests {
            Ok(mut d) => {
                d.reverse();
                p.stage = Stage::Connecting { rest: d };
            }
            Err(e) => {
                p.stage = Stage::Connecting { rest: Vec::new() };
                p.error = Some(e);
            }
        }
        self.attempt(id);
    }

    /// Starts connecting `id` to its next destination; fails it when none
    /// is left.
    fn attempt(&mut self, id: u64) {
        let Some(&k) = self.outgoing.slots.get(&id) else { return };
        loop {
            let Some(p) = self.outgoing.pending.get_mut(&id) else { return };
            let Stage::Connecting { rest } = &mut p.stage else { return };
            let Some(dest) = rest.pop() else {
                let e = p.error.take().unwrap_or_else(|| Error::new(Code::Addr, "connect: no address"));
                return self.connect_failed(id, e);
            };
            p.at = dest.to_string();
            let c = &mut self.conns[k];
            c.set_peer(peer_of(&dest), &mut self.colds);
            let registry = self.base.poll.registry();
            let _ = registry.deregister(&mut c.sock);
            match open(&dest) {
                Ok(mut sock) => match registry.register(&mut sock, Token(k), Interest::READABLE | Interest::WRITABLE) {
                    Ok(()) => {
                        if let Dest::Unix(_) = dest {
                            c.set_peer(crate::unix::peer_addr(&sock), &mut self.colds);
                        }
                        c.sock = sock;
                        c.writable = true;
                        return;
                    }
                    Err(e) => p.error = Some(Error::io("epoll_ctl", &e)),
                },
                Err(e) => p.error = Some(e),
            }
        }
    }

    /// A connect that never got a slot fails: `on_close` with the error.
    fn unopened(&mut self, id: u64, peer: SocketAddr, user: &mut usize, e: Error) {
        let mut conn = Conn { id, peer: net::canonical(peer), user, sink: Sink::Failed(&e), shared: &self.base.shared };
        self.base.shared.conns.failed();
        self.handler.on_close(&mut conn, CloseReason::ConnectFailed);
    }

    /// An event on connecting connection `k`: connected (then TLS, if it
    /// has it), on to the next destination, or a step of its handshake.
    pub(super) fn connect_event(&mut self, k: usize) {
        let c = &mut self.conns[k];
        let id = c.id;
        let Some(p) = self.outgoing.pending.get_mut(&id) else { return };
        if let Stage::Handshaking = p.stage {
            return self.handshake(k);
        }
        let failure = match c.sock.take_error() {
            Ok(Some(e)) | Err(e) => e,
            Ok(None) => match is_connected(&c.sock) {
                Ok(true) => return self.linked(k),
                // Not connected yet (a spurious wake-up).
                Ok(false) => return,
                Err(e) => e,
            },
        };
        p.error = Some(Error::io(format!("connect {}", p.at), &failure));
        self.attempt(id);
    }

    /// Connection `k`'s socket is connected: served now, or once its TLS
    /// handshake is done (within what is left of the connect's timeout, or
    /// `HANDSHAKE_TIMEOUT` when it has none).
    fn linked(&mut self, k: usize) {
        let c = &mut self.conns[k];
        let id = c.id;
        let Some(p) = self.outgoing.pending.get_mut(&id) else { return };
        let Some(setup) = p.tls.take() else { return self.connected(k) };
        match TlsConn::with(&setup) {
            Ok(t) => c.cold(&mut self.colds).tls = Some(Box::new(t)),
            Err(e) => return self.connect_failed(id, e),
        }
        p.stage = Stage::Handshaking;
        if p.deadline.is_none() {
            p.deadline = Some(Instant::now() + crate::tls::HANDSHAKE_TIMEOUT);
            p.timeout = crate::tls::HANDSHAKE_TIMEOUT;
        }
        self.handshake(k);
    }

    /// Steps connection `k`'s TLS handshake: connected once it is done.
    fn handshake(&mut self, k: usize) {
        let c = &mut self.conns[k];
        let id = c.id;
        let Some(p) = self.outgoing.pending.get(&id) else { return };
        match tls::handshake(c, &p.at) {
            Ok(true) => self.connected(k),
            Ok(false) => {}
            Err(e) => self.connect_failed(id, e),
        }
    }

    fn connected(&mut self, k: usize) {
        let c = &mut self.conns[k];
        self.outgoing.pending.remove(&c.id);
        let _ = c.sock.set_nodelay(true);
        c.life = Life::Open(ReadState::Reading);
        c.last = self.clock.tick();
        c.writable = false;
        let _ = self.base.poll.registry().reregister(&mut c.sock, Token(k), Interest::READABLE);
        let id = c.id;
        self.start(k);
        // What was queued before it connected; and the readable edge this
        // event may have carried (a server's greeting).
        if self.flush(k) {
            self.again.push((k, id));
        }
    }

    /// Ends connect `id` with `on_close(ConnectFailed)`, `e` saying why.
    fn connect_failed(&mut self, id: u64, e: Error) {
        self.outgoing.pending.remove(&id);
        let Some(&k) = self.outgoing.slots.get(&id) else { return };
        let c = &mut self.conns[k];
        let mut conn = Conn { id, peer: c.peer(), user: &mut c.user, sink: Sink::Failed(&e), shared: &self.base.shared };
        self.base.shared.conns.failed();
        self.handler.on_close(&mut conn, CloseReason::ConnectFailed);
        self.discard(k);
    }

    /// Fails the connects whose deadline passed (from the sweep).
    pub(super) fn connect_timeouts(&mut self, now: Instant) {
        let late: Vec<(u64, String)> = (self.outgoing.pending.iter())
            .filter(|(_, p)| p.deadline.is_some_and(|d| now >= d))
            .map(|(id, p)| {
                let (what, ms) = (&p.at, p.timeout.as_millis());
                let msg = match p.stage {
                    Stage::Handshaking => format!("tls handshake with {what}: not done after {ms} ms"),
                    Stage::Resolving | Stage::Connecting { .. } => format!("connect {what}: timed out after {ms} ms"),
                };
                (*id, msg)
            })
            .collect();
        for (id, msg) in late {
            self.connect_failed(id, Error::new(Code::TimedOut, msg));
        }
    }

    /// `flush` of a connection still connecting: nothing can be written
    /// yet, but pushed bytes stay bounded (a close happens at once, in
    /// `begin_close`).
    pub(super) fn hold_until_connected(&mut self, k: usize) -> bool {
        let c = &self.conns[k];
        if c.pushed() > self.max_queue {
            self.close_now(k, CloseReason::Overflow);
            return false;
        }
        self.account(k);
        true
    }

    /// Runs `Command::Relay`: queues the bytes for `to` and pauses `from`
    /// while `to` holds more than half of `max_queue`.
    pub(super) fn relay(&mut self, from: u64, to: u64, bytes: &[u8]) {
        let Some(t) = self.find(to) else { return };
        let c = &mut self.conns[t];
        if c.life.lingers() {
            return;
        }
        let x = c.cold(&mut self.colds);
        x.relayed.add(x.out.len() - x.out_pos, bytes.len());
        self.spare.append(&mut x.out, bytes);
        if !self.flush(t) || self.conns[t].queued() <= self.max_queue / 2 {
            return;
        }
        let Some(f) = self.find(from) else { return };
        let c = &mut self.conns[f];
        if c.reading() {
            c.set_read(ReadState::Paused(Pause::Relay));
            self.outgoing.waiters.entry(to).or_default().push((f, from));
        }
    }

    /// From `flush`: connection `k` has taken enough of its queue for the
    /// senders waiting on it to go on.
    pub(super) fn relay_drained(&mut self, k: usize) {
        if self.outgoing.waiters.is_empty() {
            return;
        }
        let c = &self.conns[k];
        if c.queued() <= self.max_queue / 4 {
            self.resume_relays(c.id);
        }
    }

    /// Reads again from the senders paused for connection `id` (drained or closed).
    pub(super) fn resume_relays(&mut self, id: u64) {
        // Most servers relay nothing: no lookup then.
        if !self.outgoing.relaying() {
            return;
        }
        let Some(waiting) = self.outgoing.waiters.remove(&id) else { return };
        for (k, wid) in waiting {
            if self.conns.get(k).is_some_and(|c| c.id == wid && c.paused(Pause::Relay)) {
                self.reopen(k);
            }
        }
    }
}
