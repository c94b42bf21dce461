//! Multi-client servers: one call runs bind, accept, per-connection message
//! loop and shutdown, driving a [`Handler`].
//!
//! Both the TCP and the UDP server share the pieces here: the handler
//! shape, the per-message context [`Conn`], the cross-thread [`Shared`]
//! control block (stop, sends from other threads, signal wake-ups) and the
//! log. The loops themselves are in [`tcp`] and [`udp`]; [`worker`] runs
//! handlers that block on a thread per connection. What bounds a TCP
//! server's memory and keeps it open to everyone: `pushed` (own replies
//! versus bytes pushed by others, which get different bounds), `budget`
//! (what all connections together may hold) and `admission` (connections
//! per address). `outgoing.rs` (a part of `tcp`) holds the connections a
//! loop opens itself (`ServerHandle::connect_to`: IP or `unix:`, plaintext
//! or TLS; a loop without a listener is a client of many servers) and
//! relays between two connections, which
//! pause the sender instead of dropping a slow receiver. `conn` is one TCP
//! connection and its life as one state enum; `effect` is what a handler's
//! [`Action`] does, defined once for every path that runs a handler.

mod admission;
mod base;
mod budget;
pub mod builtin;
mod clock;
mod conn;
mod control;
mod dgram;
mod effect;
pub(crate) mod event_loop;
mod log;
mod outbox;
mod peers;
mod pushed;
mod registry;
mod spare;
mod stats;
pub mod tcp;
pub mod timer;
mod tls;
pub mod udp;
mod worker;
mod workers;

pub use control::{CloseMode, IdleTimeout, Remote, ServerHandle, Shared};
pub(crate) use log::Log;
pub use log::{LogFn, LogLevel, LogTo};
pub use stats::{Stats, CLOSE_REASONS};
pub use timer::{TimerAction, TimerCtx, TimerId};

use crate::error::Result;
use crate::frame::{Ending, Frame};

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// What a callback returns. Any other value is a bug in the callback; it
/// is treated as `SOCKFLOW_ACTION_CLOSE` (the connection's queued replies
/// are sent, then it closes with reason HANDLER), and the first such value
/// in a process is reported once on stderr, e.g. `sockflow: a callback
/// returned 7, which is not a sockflow_action: treated as
/// SOCKFLOW_ACTION_CLOSE (reported once per process)`. A negative value is
/// not unknown: it is `SOCKFLOW_ACTION_ABORT`.
// The one list of actions: cbindgen exports this enum as the C
// `sockflow_action` (cbindgen.toml `[export.rename]`), so these values are
// the ones C callbacks return.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Keep the connection.
    Continue = 0,
    /// Send what was queued, then close this connection (reason `HANDLER`).
    Close = 1,
    /// Stop the whole server gracefully (the run call then returns 0).
    Stop = 2,
    /// Close this connection at once (reason `ERROR`): the callback
    /// failed. Any negative value means this.
    Abort = -1,
}

/// Why a connection ended (the `reason` of `on_close`).
// The one list of close reasons: cbindgen exports this enum as the C
// `sockflow_close_reason` (cbindgen.toml `[export.rename]`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloseReason {
    /// The client closed its side.
    Peer = 1,
    /// The client sent the quit word.
    Quit = 2,
    /// No traffic for the idle timeout.
    Idle = 3,
    /// A socket error, a reset, or an over-long message.
    Error = 4,
    /// The server is stopping.
    Stopping = 5,
    /// A callback returned `SOCKFLOW_ACTION_CLOSE`.
    Handler = 6,
    /// The client did not read its replies and its queue hit `max_queue`.
    Overflow = 7,
    /// An outgoing connection (`sockflow_server_connect`,
    /// `sockflow_conn_connect`) could not be made: refused, timed out, or
    /// the name did not resolve. `sockflow_conn_error(conn)` in `on_close`
    /// gives the code and sets the message.
    ConnectFailed = 8,
}

impl CloseReason {
    /// Every reason, in value order (1 up); the match below fails to
    /// compile when a reason is missing.
    pub const ALL: [CloseReason; 8] = {
        use CloseReason::*;
        const fn _every(r: CloseReason) {
            match r {
                Peer | Quit | Idle | Error | Stopping | Handler | Overflow | ConnectFailed => {}
            }
        }
        [Peer, Quit, Idle, Error, Stopping, Handler, Overflow, ConnectFailed]
    };

    /// The reason of value `v` (1 up).
    pub fn from_index(v: usize) -> Option<CloseReason> {
        CloseReason::ALL.iter().copied().find(|&r| r as usize == v)
    }

    /// A short text for logs: `peer closed`, `quit`, ...
    pub fn describe(self) -> &'static str {
        match self {
            CloseReason::Peer => "peer closed",
            CloseReason::Quit => "quit",
            CloseReason::Idle => "idle timeout",
            CloseReason::Error => "error",
            CloseReason::Stopping => "server stopping",
            CloseReason::Handler => "closed by handler",
            CloseReason::Overflow => "not reading its replies",
            CloseReason::ConnectFailed => "connect failed",
        }
    }
}

/// How a server runs its callbacks (`sockflow_server_config.mode`).
// The one list of modes: cbindgen exports this enum as the C
// `sockflow_mode` (cbindgen.toml `[export.rename]`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Mode {
    /// Every callback on the one event-loop thread: callbacks must not block.
    #[default]
    EventLoop = 0,
    /// Each TCP connection's callbacks run in order on a thread of its own,
    /// so they may block (wait for a keyboard, a database). I/O stays on the
    /// event loop; a connection whose thread falls behind stops being read.
    /// A stop does not wait for queued messages: those not yet handed to a
    /// callback are dropped (each connection still gets `on_close` with
    /// STOPPING), and a thread still inside a callback 2 s after the
    /// connections closed is left to finish on its own and gets no further
    /// callback, so `sockflow_server_run` returns in bounded time.
    ThreadPerConnection = 1,
}

/// How a UDP server sees its senders.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum UdpMode {
    /// Each datagram is a message on its own: no `on_connect`/`on_close`,
    /// a user slot that lasts one datagram, replies only from `on_message`.
    #[default]
    Datagrams,
    /// Each sender address is a connection: `on_connect` at its first
    /// datagram, a user slot that lives while it stays, `on_close` with
    /// `Idle` after `idle_timeout` (default 60 s) without a datagram from it
    /// or `Stopping` at the stop, and sends by id (`ServerHandle::send`,
    /// broadcasts) from any thread. At most `max_conns` peers: a datagram
    /// from a new sender past that is dropped with a log line (at most one a
    /// second), so a flood of new (maybe spoofed) addresses cannot push out
    /// the peers already known. `Close`/`Abort` from a callback end the peer
    /// (its next datagram makes a new one, with a new id).
    Peers,
}

/// Server settings. `Config::default()` documents every default.
pub struct Config {
    /// Message framing on TCP (`fixed:N` also pads UDP datagrams). Default `line`.
    pub frame: Frame,
    /// A message equal to this closes the TCP connection (reason `Quit`)
    /// without reaching the handler. Default none (empty): a server sees
    /// every message; `from_args` takes the command line's (`--quit`,
    /// "quit" unless given).
    pub quit: String,
    /// Most simultaneous connections (UDP peers too); more are accepted and
    /// closed at once with a log line. Default 10,000.
    pub max_conns: usize,
    /// Most simultaneous connections from one address (IPv6: one /64); more
    /// are accepted and closed at once with a log line. Default 256: well
    /// above what one host (or a NAT or proxy in front of a few hundred
    /// users) opens to one service, while one host can take at most 256 of
    /// the default 10,000 `max_conns` and so cannot lock everyone else out.
    pub max_per_ip: usize,
    /// Close a connection after this long without traffic. Default none
    /// (`from_args`: the `--timeout` of a server's command line); for UDP
    /// peers ([`UdpMode::Peers`]) none means 60 s.
    pub idle_timeout: Option<Duration>,
    /// Close a connection holding an incomplete message for this long
    /// (reason `Error`), so clients that trickle a byte now and then
    /// (slowloris) cannot hold memory and descriptors forever. The clock
    /// restarts at every complete message. Default 60 s; None = never.
    pub incomplete_timeout: Option<Duration>,
    /// Per-connection queue bound. A connection's own replies (sent by its
    /// handler in answer to its messages) past half of it stop reading from
    /// it until they fall under a quarter (backpressure: TCP then slows the
    /// sender, nothing is lost); bytes pushed to it by others (`send`,
    /// broadcasts) past it drop it (`Overflow`), since slowing its sender
    /// cannot help. In thread-per-connection mode it also bounds the
    /// messages waiting for the worker (each counting 64 bytes plus its
    /// length). Default 1 MiB.
    pub max_queue: usize,
    /// Most bytes all connections together may hold in partial messages and
    /// queues. Over it, connections holding something are not read until it
    /// frees up, while those holding nothing still are (a little at a time),
    /// and a message whose declared length (`len32`, `fixed:N`) cannot be
    /// reserved closes its connection (reason `Error`). Default 256 MiB.
    pub memory_budget: usize,
    /// How handlers run. Default [`Mode::EventLoop`].
    pub mode: Mode,
    /// Stop gracefully on SIGINT/SIGTERM. Default false (signals untouched).
    pub handle_signals: bool,
    /// listen(2) backlog. Default 128.
    pub backlog: i32,
    /// Name used in log lines. Default "sockflow".
    pub name: String,
    /// Where log lines go (readiness, drops, errors). Default stderr; None = silent.
    pub log: Option<LogTo>,
    /// UDP servers: datagrams alone, or senders as connections. Default
    /// [`UdpMode::Datagrams`].
    pub udp: UdpMode,
    /// Event-loop threads (1 to [`crate::args::WORKERS_MAX`]; 0 counts as 1). Default 1.
    /// With N > 1 each worker has a socket of its own on the same address
    /// (`SO_REUSEPORT`) and the kernel spreads new connections (UDP: senders)
    /// over them; a connection stays on its worker for life, and its
    /// callbacks run on that worker's thread — so the callbacks of
    /// different connections may run at the same time, and a handler's
    /// shared state needs its own locking. Controls (stop, send, close,
    /// broadcast, counts) work from any thread and any worker; timers and
    /// signals are worker 0's, the thread that calls `run`. `max_conns`
    /// and `memory_budget` are split evenly between the workers;
    /// `max_per_ip` counts over all of them. A loop without a listener is
    /// one worker. Driven by the program's own loop (`turn`), the program
    /// turns worker 0 and the others run on threads of their own (the C API's
    /// `sockflow_server_turn` refuses more than one worker).
    pub workers: usize,
    /// Log the counters ([`ServerHandle::stats`]) when the server stops
    /// (`--stats`). Default false.
    pub log_stats: bool,
    /// TCP servers: serve TLS with this configuration (built from
    /// `--tls-cert`/`--tls-key`/`--tls-client-ca` by
    /// [`TcpServer::from_args`]). Default None: plaintext.
    pub tls: Option<std::sync::Arc<rustls::ServerConfig>>,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            frame: Frame::default(),
            quit: String::new(),
            max_conns: 10_000,
            max_per_ip: 256,
            idle_timeout: None,
            incomplete_timeout: Some(Duration::from_secs(60)),
            max_queue: 1 << 20,
            memory_budget: 256 << 20,
            mode: Mode::EventLoop,
            handle_signals: false,
            backlog: crate::tcp::DEFAULT_BACKLOG,
            name: "sockflow".into(),
            log: Some(LogTo::writer(std::io::stderr())),
            udp: UdpMode::Datagrams,
            workers: 1,
            log_stats: false,
            tls: None,
        }
    }
}

impl Config {
    /// Defaults, with the frame, quit word and name of parsed arguments,
    /// their `--timeout` as the idle timeout, their `--max-per-ip` and
    /// their `--workers`.
    pub fn from_args(a: &crate::args::Args) -> Config {
        let d = Config::default();
        Config {
            frame: a.frame,
            quit: a.quit.clone(),
            name: a.prog.clone(),
            idle_timeout: a.timeout(),
            max_per_ip: a.max_per_ip.map_or(d.max_per_ip, |n| n as usize),
            workers: a.workers.map_or(d.workers, |n| n as usize),
            log_stats: a.stats,
            ..d
        }
    }
}

/// Callbacks a server drives. Methods take `&self` because in
/// [`Mode::ThreadPerConnection`] they run on several threads at once.
pub trait Handler: Send + Sync {
    /// A client connected, or an outgoing connection
    /// ([`ServerHandle::connect`]) is connected (TCP only). May send a greeting.
    fn on_connect(&self, _c: &mut Conn<'_>) -> Action {
        Action::Continue
    }
    /// One message (one datagram for UDP). May send zero or more replies.
    fn on_message(&self, c: &mut Conn<'_>, msg: &[u8]) -> Action;
    /// The connection ended (TCP only); sends are no longer possible. Called
    /// once for every connection, outgoing ones included, even those that
    /// never connected (`ConnectFailed`; [`Conn::error`] says why). In
    /// thread-per-connection mode a connection that never connected has no
    /// thread: its `on_close` runs on the loop thread.
    fn on_close(&self, _c: &mut Conn<'_>, _reason: CloseReason) {}
    /// Declares the handler a [`Mirror`](builtin::Mirror): its whole
    /// answer to a message is one reply, the message's own bytes with the
    /// map applied. The TCP event loop may then answer every complete
    /// message of a read at once (one send for the read, no call per
    /// message); `on_message` still runs wherever it cannot (thread mode,
    /// UDP, a message with a `\r` or the quit word in it, ...). None (the
    /// default): `on_message` for every message.
    fn mirror(&self) -> Option<builtin::Mirror> {
        None
    }
}

/// Where a [`Conn`]'s sends go. `ending` is the line ending of the message
/// being answered (a reply ends the same way, so an echo is byte-exact);
/// `Ending::Lf` outside an answer (`on_connect`).
pub(crate) enum Sink<'a> {
    /// Straight into the connection's outgoing buffer (event-loop thread).
    /// `answering`: where the message being answered lies in memory (its
    /// address and length; empty outside `on_message`): a reply that is
    /// part of it is framed without checks, since `frame` decoded it.
    /// `sent`: replies framed so far; the loop adds them to its counters in
    /// one go (an atomic add per message costs as much as framing it).
    Buf { buf: &'a mut Vec<u8>, frame: Frame, ending: Ending, answering: (usize, usize), sent: u64 },
    /// Through the server's command queue (worker threads).
    Queue { ending: Ending },
    /// A UDP reply to the sender, queued in `out` (sent with the turn's
    /// other replies); `peer` when it is a `udp_peers` connection (one that
    /// lasts beyond this datagram).
    Datagram { sock: &'a dgram::Dgram, frame: Frame, out: &'a mut outbox::Outbox, ending: Ending, peer: bool },
    /// Nothing can be sent any more (in `on_close`).
    Closed,
    /// An outgoing connection that never connected (in `on_close`), and why.
    Failed(&'a crate::Error),
}

/// One connection (or one datagram's sender) as a callback sees it.
pub struct Conn<'a> {
    pub(crate) id: u64,
    pub(crate) peer: SocketAddr,
    pub(crate) user: &'a mut usize,
    pub(crate) sink: Sink<'a>,
    pub(crate) shared: &'a Arc<Shared>,
}

impl Conn<'_> {
    /// The connection's id, unique for the server's life (never reused).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The peer's address (IPv4-mapped addresses shown as IPv4).
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// The credentials (pid, uid, gid) of a client on a Unix domain socket,
    /// read with `SO_PEERCRED` when it connected; None for an IP peer.
    pub fn peer_cred(&self) -> Option<crate::unix::Cred> {
        crate::unix::cred(self.peer)
    }

    /// The worker (event-loop thread, 0 to `workers - 1`) this connection
    /// lives on and this callback runs on: an index for per-worker state
    /// that needs no lock.
    pub fn worker(&self) -> usize {
        self.shared.worker()
    }

    /// True for a UDP datagram's sender.
    pub fn is_datagram(&self) -> bool {
        matches!(self.sink, Sink::Datagram { .. })
    }

    /// True for a sender heard in `udp_peers` mode: a UDP connection that
    /// lasts from `on_connect` to `on_close`, not one datagram.
    pub fn is_peer(&self) -> bool {
        matches!(self.sink, Sink::Datagram { peer: true, .. })
    }

    /// The per-connection user slot (0 until set).
    pub fn user(&self) -> usize {
        *self.user
    }

    /// Sets the per-connection user slot.
    pub fn set_user(&mut self, v: usize) {
        *self.user = v;
    }

    /// Sends one message to this connection (framed) or, for UDP, one
    /// datagram to the sender. Inside `on_message`, a `line` reply ends like
    /// the message it answers (`\n`, `\r\n`, or nothing for a last line
    /// without one or a datagram without one); elsewhere with `\n`.
    pub fn send(&mut self, msg: &[u8]) -> Result<()> {
        let r = match &mut self.sink {
            Sink::Buf { buf, frame, ending, answering: (at, len), sent } => {
                // Address arithmetic only (no pointer is made from it).
                let start = (msg.as_ptr() as usize).wrapping_sub(*at);
                if start <= *len && msg.len() <= *len - start {
                    frame.append(msg, *ending, buf);
                } else {
                    frame.encode_ending(msg, *ending, buf)?;
                }
                *sent += 1;
                return Ok(());
            }
            Sink::Queue { ending } => self.shared.reply(self.id, msg, *ending),
            // Counted when sent.
            Sink::Datagram { sock, frame, out, ending, .. } => {
                return out.queue(sock, self.shared.counters(), *frame, msg, *ending, self.peer)
            }
            Sink::Closed | Sink::Failed(_) => Err(crate::Error::new(crate::Code::BadHandle, format!("connection {} is closed", self.id))),
        };
        if r.is_ok() {
            self.shared.counters().message_out();
        }
        r
    }

    /// `copy` holds the very bytes of the message being answered (a C
    /// handler's NUL-terminated copy of it): a reply that is part of it is
    /// framed without checks, as one from the message itself (the decoder
    /// validated those bytes), so an echo from the copy is not scanned for
    /// a newline per message.
    pub(crate) fn answering_copy(&mut self, copy: &[u8]) {
        if let Sink::Buf { answering, .. } = &mut self.sink {
            if answering.1 == copy.len() {
                *answering = (copy.as_ptr() as usize, copy.len());
            }
        }
    }

    /// Why an outgoing connection failed to connect: inside `on_close` with
    /// reason `ConnectFailed`, the error (refused, timed out, not resolved);
    /// None anywhere else.
    pub fn error(&self) -> Option<&crate::Error> {
        match self.sink {
            Sink::Failed(e) => Some(e),
            _ => None,
        }
    }

    /// Forwards one message to connection `to` as a relay (a proxy's
    /// pairing): unlike [`Shared::send`], the bytes are never held
    /// against `to`'s `max_queue`; instead, while `to` has more than half
    /// of `max_queue` queued, this connection is not read (TCP then slows
    /// its peer) until `to` is under a quarter. So a relay is bounded by
    /// the slower side, and nothing is dropped. A `line` message keeps the
    /// ending of the message being handled. An id that is gone is ignored.
    /// With several workers `to` must be on this connection's worker (one
    /// opened by [`connect`](Conn::connect) from its callback is); else
    /// a `BadHandle` error.
    pub fn relay(&mut self, to: u64, msg: &[u8]) -> Result<()> {
        let ending = match self.sink {
            Sink::Buf { ending, .. } | Sink::Queue { ending } => ending,
            _ => Ending::Lf,
        };
        self.shared.relay(self.id, to, msg, ending)
    }

    /// Opens an outgoing connection on this server's loop; see
    /// [`ServerHandle::connect_host`].
    pub fn connect(&mut self, host: &str, port: u16, timeout: Option<Duration>, user: usize) -> Result<u64> {
        self.server().connect_host(host, port, timeout, user)
    }

    /// Opens an outgoing connection on this server's loop as `to` says,
    /// TLS included; see [`ServerHandle::connect_to`].
    pub fn connect_to(&mut self, to: &Remote<'_>, user: usize) -> Result<u64> {
        self.server().connect_to(to, user)
    }

    /// Sends one message to every connection, this one included when
    /// `include_self`. Delivered after the callback returns.
    pub fn broadcast(&mut self, msg: &[u8], include_self: bool) -> Result<()> {
        self.shared.broadcast(msg, if include_self { None } else { Some(self.id) })
    }

    /// A handle that can stop the server or send to any connection, from any thread.
    pub fn server(&self) -> ServerHandle {
        ServerHandle(self.shared.clone())
    }
}
