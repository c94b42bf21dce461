//! The TCP server: one mio event loop, many connections.
//!
//! Per connection the loop keeps only what it must (the socket, a decoder
//! holding at most one partial message, the unsent replies, a user slot),
//! and buffers are freed when they empty, so an idle connection costs a few
//! hundred bytes. Reads go through one shared 64 KiB scratch buffer.

use super::base::{Base, SIGNALS, WAKER};
use super::control::Command;
use super::worker::Worker;
use super::{Action, CloseReason, Config, Conn, Handler, Mode, ServerHandle, Sink};
use crate::error::{Error, Result};
use crate::frame::{Decoder, Ending, Flow, Frame};
use crate::net;
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Token};
use slab::Slab;
use std::io::{self, Read};
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

const LISTENER: Token = Token(usize::MAX - 1);
/// Reads per readiness event before other connections get a turn.
const READS_PER_TURN: usize = 8;
/// How long a closing connection may take to flush its replies.
const LINGER: Duration = Duration::from_secs(5);
/// Out buffers above this are freed once flushed.
const KEEP_OUT: usize = 512;
/// How often idle and lingering connections are checked.
const SWEEP_EVERY: Duration = Duration::from_millis(250);

/// What [`TcpServer::dispatch`] decodes.
enum Input {
    /// The first n bytes of the scratch buffer (0: only what the decoder holds).
    Read(usize),
    /// The peer's end of stream: whatever the decoder still holds.
    End,
}

struct Connection {
    sock: TcpStream,
    id: u64,
    peer: SocketAddr,
    decoder: Decoder,
    out: Vec<u8>,
    out_pos: usize,
    user: usize,
    last: Instant,
    /// Set when the connection is to close once its replies are flushed.
    closing: Option<(CloseReason, Instant)>,
    writable: bool,
    paused: bool,
    /// The peer is done; a worker is finishing (thread mode).
    ended: bool,
    /// Closing gracefully: replies sent, write side shut, waiting for the peer's FIN.
    draining: bool,
    /// `on_close` has run.
    notified: bool,
    /// Thread mode only; boxed so event-loop connections stay small.
    worker: Option<Box<Worker>>,
}

impl Connection {
    fn queued(&self) -> usize {
        self.out.len() - self.out_pos
    }
}

/// A bound TCP server, ready to [`run`](TcpServer::run).
pub struct TcpServer {
    base: Base,
    listener: Option<TcpListener>,
    handler: Arc<dyn Handler>,
    frame: Frame,
    quit: Vec<u8>,
    max_conns: usize,
    max_queue: usize,
    idle: Option<Duration>,
    mode: Mode,
    conns: Slab<Connection>,
    scratch: Vec<u8>,
    next_gen: u64,
    /// Connections with data left to read after their turn.
    again: Vec<(usize, u64)>,
    accept_paused_until: Option<Instant>,
    joins: Vec<JoinHandle<()>>,
    /// Connections waiting to flush before they close (they need sweeps).
    lingering: usize,
    last_sweep: Instant,
}

impl TcpServer {
    /// Binds the first of `addrs` that works and prepares the loop.
    pub fn bind(addrs: &[SocketAddr], mut cfg: Config, handler: Arc<dyn Handler>) -> Result<TcpServer> {
        let l = crate::tcp::Listener::bind(addrs, cfg.backlog)?;
        let local = l.local_addr();
        let std = l.into_std();
        std.set_nonblocking(true).map_err(|e| Error::io("fcntl", &e))?;
        let mut listener = TcpListener::from_std(std);
        let base = Base::new(local, cfg.frame, false, &mut cfg)?;
        base.poll.registry().register(&mut listener, LISTENER, Interest::READABLE).map_err(|e| Error::io("epoll_ctl", &e))?;
        Ok(TcpServer {
            base,
            listener: Some(listener),
            handler,
            frame: cfg.frame,
            quit: cfg.quit.into_bytes(),
            max_conns: cfg.max_conns.max(1),
            max_queue: cfg.max_queue.max(1),
            idle: cfg.idle_timeout,
            mode: cfg.mode,
            conns: Slab::new(),
            scratch: vec![0; crate::tcp::READ_CHUNK],
            next_gen: 1,
            again: Vec::new(),
            accept_paused_until: None,
            joins: Vec::new(),
            lingering: 0,
            last_sweep: Instant::now(),
        })
    }

    /// Binds the parsed command line's host and port.
    pub fn from_args(a: &crate::args::Args, cfg: Config, handler: Arc<dyn Handler>) -> Result<TcpServer> {
        TcpServer::bind(&a.addrs()?, cfg, handler)
    }

    /// A thread-safe handle: stop, send, broadcast.
    pub fn handle(&self) -> ServerHandle {
        self.base.handle()
    }

    /// The bound address (the chosen port when 0 was asked).
    pub fn local_addr(&self) -> SocketAddr {
        self.base.local_addr()
    }

    /// Runs until stopped (a handler's `Stop`, [`ServerHandle::stop`], or a
    /// signal when configured), then stops accepting, flushes queued
    /// replies, closes every connection and returns.
    pub fn run(mut self) -> Result<()> {
        self.base.announce();
        let mut events = Events::with_capacity(1024);
        while !self.base.shared.stopping() {
            self.turn(&mut events)?;
        }
        self.shutdown(&mut events);
        Ok(())
    }

    fn next_timeout(&self) -> Option<Duration> {
        if !self.again.is_empty() {
            return Some(Duration::ZERO);
        }
        let mut t = None;
        if self.idle.is_some() || self.lingering > 0 {
            t = Some(SWEEP_EVERY);
        }
        if let Some(until) = self.accept_paused_until {
            let left = until.saturating_duration_since(Instant::now());
            t = Some(t.map_or(left, |x: Duration| x.min(left)));
        }
        t
    }

    fn turn(&mut self, events: &mut Events) -> Result<()> {
        let timeout = self.next_timeout();
        self.base.wait(events, timeout)?;
        for (k, id) in std::mem::take(&mut self.again) {
            self.read(k, id, true);
        }
        for ev in events.iter() {
            match ev.token() {
                LISTENER => self.accept_all(),
                WAKER | SIGNALS => {}
                Token(k) => {
                    let Some(id) = self.conns.get(k).map(|c| c.id) else { continue };
                    if ev.is_writable() {
                        self.flush(k);
                    }
                    if ev.is_readable() || ev.is_read_closed() || ev.is_error() {
                        self.read(k, id, ev.is_read_closed() || ev.is_error());
                    }
                }
            }
        }
        if self.accept_paused_until.is_some_and(|t| Instant::now() >= t) {
            self.accept_paused_until = None;
            self.accept_all();
        }
        self.run_commands();
        if self.last_sweep.elapsed() >= SWEEP_EVERY {
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
                Ok((sock, peer)) => self.admit(sock, net::canonical(peer)),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e)
                    if matches!(e.raw_os_error(), Some(libc::EMFILE) | Some(libc::ENFILE) | Some(libc::ENOBUFS) | Some(libc::ENOMEM)) =>
                {
                    // Out of descriptors: the pending client stays in the
                    // backlog; try again shortly instead of spinning.
                    self.base.log.line(format_args!("{}", Error::io("accept", &e)));
                    self.accept_paused_until = Some(Instant::now() + Duration::from_millis(100));
                    return;
                }
                Err(_) => continue, // ECONNABORTED and friends: that client is gone.
            }
        }
    }

    fn admit(&mut self, mut sock: TcpStream, peer: SocketAddr) {
        if self.conns.len() >= self.max_conns {
            self.base.log.line(format_args!("too many connections ({}): closing {}", self.conns.len(), net::show(&peer)));
            return;
        }
        let _ = sock.set_nodelay(true);
        let entry = self.conns.vacant_entry();
        let k = entry.key();
        let id = (self.next_gen << 32) | k as u64;
        self.next_gen += 1;
        if self.base.poll.registry().register(&mut sock, Token(k), Interest::READABLE).is_err() {
            return;
        }
        let worker = match self.mode {
            Mode::EventLoop => None,
            Mode::ThreadPerConnection => {
                match Worker::spawn(id, peer, self.handler.clone(), self.base.shared.clone(), self.max_queue / 2) {
                    Ok(w) => Some(Box::new(w)),
                    Err(e) => {
                        self.base.log.line(format_args!("{}: closing {}", Error::io("thread", &e), net::show(&peer)));
                        let _ = self.base.poll.registry().deregister(&mut sock);
                        return;
                    }
                }
            }
        };
        entry.insert(Connection {
            sock,
            id,
            peer,
            decoder: Decoder::new(self.frame),
            out: Vec::new(),
            out_pos: 0,
            user: 0,
            last: Instant::now(),
            closing: None,
            writable: false,
            paused: false,
            ended: false,
            draining: false,
            notified: false,
            worker,
        });
        if self.mode == Mode::EventLoop {
            let c = &mut self.conns[k];
            let sink = Sink::Buf { buf: &mut c.out, frame: self.frame, ending: Ending::Lf };
            let mut conn = Conn { id, peer, user: &mut c.user, sink, shared: &self.base.shared };
            let action = self.handler.on_connect(&mut conn);
            self.after(k, action);
        }
    }

    /// Applies a handler's answer, then sends what it queued.
    fn after(&mut self, k: usize, action: Action) {
        match action {
            Action::Continue => {}
            Action::Close => self.begin_close(k, CloseReason::Handler),
            Action::Abort => {
                self.flush(k);
                return self.close_now(k, CloseReason::Error);
            }
            Action::Stop => self.base.shared.stop(),
        }
        self.flush(k);
    }

    /// Reads and dispatches. `closed_seen`: the event said the peer shut
    /// down (EPOLLRDHUP), so read on until end of stream; otherwise a short
    /// read means the socket is empty, and new data raises a new edge, which
    /// saves the EAGAIN read per event.
    fn read(&mut self, k: usize, id: u64, closed_seen: bool) {
        match self.conns.get(k) {
            Some(c) if c.id == id && c.draining => return self.drain_input(k),
            Some(c) if c.id == id => {}
            _ => return,
        }
        // Messages a pause left in the decoder come before new bytes.
        if !self.dispatch(k, id, Input::Read(0)) {
            return;
        }
        for _ in 0..READS_PER_TURN {
            let Some(c) = self.conns.get_mut(k) else { return };
            let n = match c.sock.read(&mut self.scratch) {
                Ok(0) => {
                    // The decoder delivers what is left (a last line without
                    // its newline) or reports a frame cut short.
                    if !self.dispatch(k, id, Input::End) {
                        return;
                    }
                    return self.end_input(k, CloseReason::Peer);
                }
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return self.close_now(k, CloseReason::Error),
            };
            c.last = Instant::now();
            if !self.dispatch(k, id, Input::Read(n)) || (n < self.scratch.len() && !closed_seen) {
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
        if c.id != id || c.paused || c.ended || c.closing.is_some() {
            return false;
        }
        if !c.decoder.has_pending() && matches!(input, Input::Read(0) | Input::End) {
            return true;
        }
        let mut verdict: Option<CloseReason> = None;
        let mut stop = false;
        let Connection { decoder, out, user, worker, peer, paused, .. } = c;
        let (frame, quit, handler, shared, max_queue) = (self.frame, &self.quit, &self.handler, &self.base.shared, self.max_queue);
        let mut on_message = |msg: &[u8], ending| {
            if !quit.is_empty() && msg == &quit[..] {
                verdict = Some(CloseReason::Quit);
                return Flow::Stop;
            }
            if let Some(w) = worker {
                if w.message(msg, ending) > max_queue {
                    *paused = true;
                    return Flow::Stop;
                }
                return Flow::Continue;
            }
            let mut conn = Conn { id, peer: *peer, user, sink: Sink::Buf { buf: out, frame, ending }, shared };
            match handler.on_message(&mut conn, msg) {
                Action::Continue => Flow::Continue,
                Action::Close => {
                    verdict = Some(CloseReason::Handler);
                    Flow::Stop
                }
                Action::Abort => {
                    verdict = Some(CloseReason::Error);
                    Flow::Stop
                }
                Action::Stop => {
                    stop = true;
                    Flow::Stop
                }
            }
        };
        let fed = match input {
            Input::Read(n) => decoder.feed(&self.scratch[..n], &mut on_message),
            Input::End => decoder.finish(&mut on_message),
        };
        if let Err(e) = fed {
            self.base.log.line(format_args!("{}: {}", net::show(&self.conns[k].peer), e));
            verdict = Some(CloseReason::Error);
        }
        if stop {
            self.base.shared.stop();
        }
        match verdict {
            Some(CloseReason::Error) => {
                self.flush(k);
                self.close_now(k, CloseReason::Error);
                false
            }
            Some(r) => {
                self.end_input(k, r);
                false
            }
            None => self.flush(k) && !self.conns[k].paused,
        }
    }

    /// After a graceful close has sent everything and shut down its write
    /// side: reads and drops what the peer still sends until its end of
    /// stream, so the close is a FIN, not a reset that would destroy replies
    /// still in flight.
    fn drain_input(&mut self, k: usize) {
        for _ in 0..READS_PER_TURN {
            let Some(c) = self.conns.get_mut(k) else { return };
            let reason = c.closing.map_or(CloseReason::Peer, |(r, _)| r);
            if net::unacked(c.sock.as_raw_fd()) == 0 && !c.sock.peek(&mut [0u8; 1]).is_ok_and(|n| n > 0) {
                // The peer has every byte and nothing is unread: closing now
                // cannot reset away a reply.
                return self.close_now(k, reason);
            }
            match c.sock.read(&mut self.scratch) {
                Ok(0) => return self.close_now(k, reason),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // The peer reset: everything we sent was taken or is lost anyway.
                Err(_) => return self.close_now(k, reason),
            }
        }
        let id = self.conns[k].id;
        self.again.push((k, id));
    }

    /// Writes queued replies; false if the connection is gone.
    fn flush(&mut self, k: usize) -> bool {
        let Some(c) = self.conns.get_mut(k) else { return false };
        while c.out_pos < c.out.len() {
            match net::send_some(c.sock.as_raw_fd(), &c.out[c.out_pos..]) {
                Ok(n) => {
                    c.out_pos += n;
                    c.last = Instant::now();
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => {
                    self.close_now(k, CloseReason::Error);
                    return false;
                }
            }
        }
        if c.out_pos == c.out.len() {
            c.out.clear();
            c.out_pos = 0;
            if c.out.capacity() > KEEP_OUT {
                c.out = Vec::new();
            }
            if let Some((reason, _)) = c.closing {
                if reason == CloseReason::Peer || c.draining {
                    self.close_now(k, reason);
                    return false;
                }
                // Everything is sent: FIN now, then wait for the peer's.
                c.draining = true;
                let _ = c.sock.shutdown(std::net::Shutdown::Write);
                if c.writable {
                    c.writable = false;
                    let _ = self.base.poll.registry().reregister(&mut c.sock, Token(k), Interest::READABLE);
                }
                self.notify(k, reason);
                self.drain_input(k);
                return false;
            }
            if c.writable {
                c.writable = false;
                let _ = self.base.poll.registry().reregister(&mut c.sock, Token(k), Interest::READABLE);
            }
        } else {
            if c.queued() > self.max_queue {
                let queued = c.queued();
                self.base.log.line(format_args!("dropping {}: not reading its replies ({queued} bytes queued)", net::show(&c.peer)));
                self.close_now(k, CloseReason::Overflow);
                return false;
            }
            if c.out_pos > c.out.len() / 2 {
                c.out.drain(..c.out_pos);
                c.out_pos = 0;
            }
            if !c.writable {
                c.writable = true;
                let _ = self.base.poll.registry().reregister(&mut c.sock, Token(k), Interest::READABLE | Interest::WRITABLE);
            }
        }
        true
    }

    /// The peer is done (end of stream or quit word). On the event loop the
    /// connection closes once its replies are flushed; a worker first gets
    /// to finish the messages it holds, then sends `Finish` back.
    fn end_input(&mut self, k: usize, reason: CloseReason) {
        let Some(c) = self.conns.get_mut(k) else { return };
        match &c.worker {
            Some(w) => {
                if !c.ended {
                    c.ended = true;
                    w.end(reason);
                }
            }
            None => self.begin_close(k, reason),
        }
    }

    /// Stops reading; the connection closes once its replies are flushed
    /// (or after `LINGER`).
    fn begin_close(&mut self, k: usize, reason: CloseReason) {
        if let Some(c) = self.conns.get_mut(k) {
            if c.closing.is_none() {
                c.closing = Some((reason, Instant::now() + LINGER));
                self.lingering += 1;
            }
            self.flush(k);
        }
    }

    /// Tells the handler (once) that the connection is over: from here on
    /// nothing can be sent to it, even while its socket lingers.
    fn notify(&mut self, k: usize, reason: CloseReason) {
        let Some(c) = self.conns.get_mut(k) else { return };
        if c.notified {
            return;
        }
        c.notified = true;
        match c.worker.take() {
            Some(w) => {
                self.joins.extend(w.close(reason));
                self.reap();
            }
            None => {
                let mut conn = Conn { id: c.id, peer: c.peer, user: &mut c.user, sink: Sink::Closed, shared: &self.base.shared };
                self.handler.on_close(&mut conn, reason);
            }
        }
    }

    fn close_now(&mut self, k: usize, reason: CloseReason) {
        self.notify(k, reason);
        let Some(mut c) = self.conns.try_remove(k) else { return };
        if c.closing.is_some() {
            self.lingering -= 1;
        }
        let _ = self.base.poll.registry().deregister(&mut c.sock);
        let _ = c.sock.shutdown(std::net::Shutdown::Both);
    }

    /// Joins worker threads that have finished (a joinable thread keeps its
    /// stack until joined).
    fn reap(&mut self) {
        let (done, live): (Vec<_>, Vec<_>) = self.joins.drain(..).partition(|j| j.is_finished());
        for j in done {
            let _ = j.join();
        }
        self.joins = live;
    }

    fn find(&self, id: u64) -> Option<usize> {
        let k = (id & 0xffff_ffff) as usize;
        self.conns.get(k).filter(|c| c.id == id).map(|_| k)
    }

    fn queue(&mut self, k: usize, bytes: &[u8]) {
        let c = &mut self.conns[k];
        if c.closing.is_none() {
            c.out.extend_from_slice(bytes);
            self.flush(k);
        }
    }

    fn run_commands(&mut self) {
        for cmd in self.base.shared.take() {
            match cmd {
                Command::Send { id, bytes } => {
                    if let Some(k) = self.find(id) {
                        self.queue(k, &bytes);
                    }
                }
                Command::Broadcast { bytes, except } => {
                    let keys: Vec<usize> = self.conns.iter().filter(|(_, c)| Some(c.id) != except).map(|(k, _)| k).collect();
                    for k in keys {
                        if self.conns.contains(k) {
                            self.queue(k, &bytes);
                        }
                    }
                }
                Command::Close { id, reason } => {
                    if let Some(k) = self.find(id) {
                        if reason == CloseReason::Error {
                            self.flush(k);
                            self.close_now(k, reason);
                        } else {
                            self.begin_close(k, reason);
                        }
                    }
                }
                Command::Finish { id, reason } => {
                    if let Some(k) = self.find(id) {
                        self.begin_close(k, reason);
                    }
                }
                Command::Resume { id } => {
                    if let Some(k) = self.find(id) {
                        let c = &mut self.conns[k];
                        if c.paused && c.worker.as_ref().is_some_and(|w| w.queued() <= self.max_queue / 2) {
                            c.paused = false;
                            // Edge-triggered: data that came while paused
                            // raised no new event, so read it now.
                            self.again.push((k, id));
                        }
                    }
                }
            }
        }
    }

    /// Idle timeouts and closing connections that will not flush: a scan
    /// of every connection, so at most once per `SWEEP_EVERY`.
    fn sweep(&mut self) {
        let now = Instant::now();
        self.last_sweep = now;
        self.reap();
        if self.idle.is_none() && self.lingering == 0 {
            return;
        }
        let mut expired = Vec::new();
        let draining: Vec<usize> = self.conns.iter().filter(|(_, c)| c.draining).map(|(k, _)| k).collect();
        for k in draining {
            self.drain_input(k);
        }
        for (k, c) in self.conns.iter() {
            match c.closing {
                // A draining connection said its reason already; one that
                // never took its replies ends in error.
                Some((r, deadline)) if now >= deadline => {
                    expired.push((k, if r == CloseReason::Stopping || c.draining { r } else { CloseReason::Error }))
                }
                None if self.idle.is_some_and(|t| now.duration_since(c.last) >= t) => expired.push((k, CloseReason::Idle)),
                _ => {}
            }
        }
        for (k, reason) in expired {
            if reason == CloseReason::Idle {
                self.begin_close(k, reason);
            } else {
                self.close_now(k, reason);
            }
        }
    }

    fn shutdown(&mut self, events: &mut Events) {
        if let Some(mut l) = self.listener.take() {
            let _ = self.base.poll.registry().deregister(&mut l);
        }
        self.run_commands();
        let keys: Vec<usize> = self.conns.iter().map(|(k, _)| k).collect();
        for k in keys {
            if let Some(c) = self.conns.get_mut(k) {
                if c.closing.is_none() {
                    self.lingering += 1;
                }
                c.closing = Some((CloseReason::Stopping, Instant::now() + Duration::from_secs(2)));
            }
            self.flush(k);
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
                    if self.conns.get(k).is_some_and(|c| c.draining) && (ev.is_readable() || ev.is_read_closed()) {
                        self.drain_input(k);
                    }
                }
            }
            self.sweep();
        }
        for j in self.joins.drain(..) {
            let _ = j.join();
        }
        self.base.stopped();
    }
}
