//! Outgoing connections on a TCP server's loop, and relays between
//! connections (a proxy's two sides).
//!
//! Connecting. `ServerHandle::connect` hands back the new connection's id
//! at once (from a counter in `Shared`, with the `OUTGOING` bit, so the
//! caller need not wait for the loop); the loop then opens a non-blocking
//! socket per address in turn, and a connection that is `Connecting` is
//! neither read nor written: the first writable or error event says how the
//! connect ended (`SO_ERROR`). Connected, it is served exactly like an
//! accepted one (`on_connect`, messages, `on_close`); a connect that fails
//! on every address, or passes its deadline (checked by the loop's sweep),
//! ends in `on_close` with `ConnectFailed` and the error, given to the
//! handler through `Conn::error`. Bytes sent to it meanwhile wait in its
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
use mio::net::TcpStream;
use mio::{Interest, Token};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// A connect in progress.
struct Pending {
    /// Addresses still to try, last first; None while the name resolves.
    rest: Option<Vec<SocketAddr>>,
    deadline: Option<Instant>,
    timeout: Duration,
    /// Why the last address failed.
    error: Option<Error>,
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

    pub(super) fn slot(&self, id: u64) -> Option<usize> {
        self.slots.get(&id).copied()
    }

    /// Forgets connection `id`, which closed; true if it was an outgoing one.
    pub(super) fn closed(&mut self, id: u64) -> bool {
        self.pending.remove(&id);
        self.slots.remove(&id).is_some()
    }
}

impl TcpServer {
    /// Runs `Command::Connect`: the connection takes its slot now (so what
    /// is sent to it waits in its queue), then connects to its addresses
    /// once it has them.
    pub(super) fn connect(&mut self, id: u64, addrs: Option<Vec<SocketAddr>>, timeout: Option<Duration>, mut user: usize) {
        let peer = addrs.as_ref().and_then(|a| a.first().copied()).unwrap_or(SocketAddr::from(([0, 0, 0, 0], 0)));
        let placeholder = match net::unconnected_tcp() {
            Ok(s) if self.conns.len() < self.max_conns => s,
            Ok(_) => {
                let e = Error::new(Code::Busy, format!("connect {}: too many connections ({})", net::show(&peer), self.conns.len()));
                return self.unopened(id, peer, &mut user, e);
            }
            Err(e) => return self.unopened(id, peer, &mut user, e),
        };
        let sock = TcpStream::from_std(placeholder);
        let k = self.conns.insert(Connection::new(sock, id, peer, Life::Connecting, user, self.clock.tick(), &mut self.colds));
        self.outgoing.slots.insert(id, k);
        let deadline = timeout.map(|t| Instant::now() + t);
        let p = Pending { rest: None, deadline, timeout: timeout.unwrap_or_default(), error: None };
        self.outgoing.pending.insert(id, p);
        if let Some(a) = addrs {
            self.resolved(id, Ok(a));
        }
    }

    /// Runs `Command::Resolved`: tries the addresses, or fails the connect.
    pub(super) fn resolved(&mut self, id: u64, addrs: Result<Vec<SocketAddr>>) {
        let Some(p) = self.outgoing.pending.get_mut(&id) else { return };
        match addrs {
            Ok(mut a) => {
                a.reverse();
                p.rest = Some(a);
            }
            Err(e) => {
                p.rest = Some(Vec::new());
                p.error = Some(e);
            }
        }
        self.attempt(id);
    }

    /// Starts connecting `id` to its next address; fails it when none is left.
    fn attempt(&mut self, id: u64) {
        let Some(&k) = self.outgoing.slots.get(&id) else { return };
        loop {
            let Some(p) = self.outgoing.pending.get_mut(&id) else { return };
            let Some(rest) = p.rest.as_mut() else { return };
            let Some(addr) = rest.pop() else {
                let e = p.error.take().unwrap_or_else(|| Error::new(Code::Addr, "connect: no address"));
                return self.connect_failed(id, e);
            };
            let c = &mut self.conns[k];
            c.set_peer(net::canonical(addr), &mut self.colds);
            let registry = self.base.poll.registry();
            let _ = registry.deregister(&mut c.sock);
            match TcpStream::connect(addr) {
                Ok(mut sock) => match registry.register(&mut sock, Token(k), Interest::READABLE | Interest::WRITABLE) {
                    Ok(()) => {
                        c.sock = sock;
                        c.writable = true;
                        return;
                    }
                    Err(e) => p.error = Some(Error::io("epoll_ctl", &e)),
                },
                Err(e) => p.error = Some(Error::io(format!("connect {}", net::show(&addr)), &e)),
            }
        }
    }

    /// A connect that never got a slot fails: `on_close` with the error.
    fn unopened(&mut self, id: u64, peer: SocketAddr, user: &mut usize, e: Error) {
        let mut conn = Conn { id, peer: net::canonical(peer), user, sink: Sink::Failed(&e), shared: &self.base.shared };
        self.base.shared.conns.failed();
        self.handler.on_close(&mut conn, CloseReason::ConnectFailed);
    }

    /// An event on connecting connection `k`: connected, or on to the next
    /// address.
    pub(super) fn connect_event(&mut self, k: usize) {
        let c = &mut self.conns[k];
        let failure = match c.sock.take_error() {
            Ok(Some(e)) | Err(e) => e,
            Ok(None) => match c.sock.peer_addr() {
                Ok(_) => return self.connected(k),
                // Not connected yet (a spurious wake-up).
                Err(e) if e.kind() == std::io::ErrorKind::NotConnected => return,
                Err(e) => e,
            },
        };
        let id = c.id;
        if let Some(p) = self.outgoing.pending.get_mut(&id) {
            p.error = Some(Error::io(format!("connect {}", net::show(&c.peer())), &failure));
        }
        self.attempt(id);
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
        let Outgoing { pending, slots, .. } = &self.outgoing;
        let late: Vec<(u64, String)> = (pending.iter())
            .filter(|(_, p)| p.deadline.is_some_and(|d| now >= d))
            .map(|(id, p)| {
                let peer = slots.get(id).and_then(|&k| self.conns.get(k)).map_or(String::from("?"), |c| net::show(&c.peer()));
                (*id, format!("connect {peer}: timed out after {} ms", p.timeout.as_millis()))
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
        let Some(waiting) = self.outgoing.waiters.remove(&id) else { return };
        for (k, wid) in waiting {
            if self.conns.get(k).is_some_and(|c| c.id == wid && c.paused(Pause::Relay)) {
                self.reopen(k);
            }
        }
    }
}
