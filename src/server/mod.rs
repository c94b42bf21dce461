//! Multi-client servers: one call runs bind, accept, per-connection message
//! loop and shutdown, driving a [`Handler`].
//!
//! Both the TCP and the UDP server share the pieces here: the handler
//! shape, the per-message context [`Conn`], the cross-thread [`Shared`]
//! control block (stop, sends from other threads, signal wake-ups) and the
//! log. The loops themselves are in [`tcp`] and [`udp`]; [`worker`] runs
//! handlers that block on a thread per connection.

mod base;
pub mod builtin;
mod control;
mod log;
pub mod tcp;
pub mod udp;
mod worker;

pub use control::{ServerHandle, Shared};
pub(crate) use log::Log;

use crate::error::Result;
use crate::frame::Frame;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// What a handler wants after a callback.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Keep the connection.
    Continue,
    /// Flush what was sent, then close this connection (reason `Handler`).
    Close,
    /// Close this connection now (reason `Error`): the handler failed.
    Abort,
    /// Stop the whole server gracefully.
    Stop,
}

/// Why a connection ended (given to [`Handler::on_close`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloseReason {
    /// The peer closed its side.
    Peer,
    /// The peer sent the quit word.
    Quit,
    /// No traffic for the idle timeout.
    Idle,
    /// A socket error, a reset, or an over-long message.
    Error,
    /// The server is stopping.
    Stopping,
    /// The handler asked (returned `Close`).
    Handler,
    /// The peer did not read its replies and the outgoing queue hit its bound.
    Overflow,
}

impl CloseReason {
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
        }
    }
}

/// How handlers are run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Mode {
    /// All callbacks on the event-loop thread: they must not block.
    #[default]
    EventLoop,
    /// Each TCP connection's callbacks run on a thread of its own, in
    /// order; they may block (e.g. wait for the keyboard). I/O stays on the
    /// event loop. Callbacks of different connections run concurrently.
    ThreadPerConnection,
}

/// Server settings. `Config::default()` documents every default.
pub struct Config {
    /// Message framing on TCP (`fixed:N` also pads UDP datagrams). Default `line`.
    pub frame: Frame,
    /// A message equal to this closes the TCP connection (reason `Quit`)
    /// without reaching the handler. Default "quit"; empty = none.
    pub quit: String,
    /// Most simultaneous connections; more are accepted and closed at once
    /// with a log line. Default 10,000.
    pub max_conns: usize,
    /// Close a connection after this long without traffic. Default none.
    pub idle_timeout: Option<Duration>,
    /// Most bytes queued for one connection (replies not yet taken by a slow
    /// reader); past it the connection is dropped (`Overflow`). Default 1 MiB.
    pub max_queue: usize,
    /// How handlers run. Default [`Mode::EventLoop`].
    pub mode: Mode,
    /// Stop gracefully on SIGINT/SIGTERM. Default false (signals untouched).
    pub handle_signals: bool,
    /// listen(2) backlog. Default 128.
    pub backlog: i32,
    /// Name used in log lines. Default "sockflow".
    pub name: String,
    /// Where log lines go (readiness, drops, errors). Default stderr; None = silent.
    pub log: Option<Box<dyn Write + Send>>,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            frame: Frame::default(),
            quit: crate::args::DEFAULT_QUIT.into(),
            max_conns: 10_000,
            idle_timeout: None,
            max_queue: 1 << 20,
            mode: Mode::EventLoop,
            handle_signals: false,
            backlog: crate::tcp::DEFAULT_BACKLOG,
            name: "sockflow".into(),
            log: Some(Box::new(std::io::stderr())),
        }
    }
}

impl Config {
    /// Defaults, with the frame, quit word and name of parsed arguments.
    pub fn from_args(a: &crate::args::Args) -> Config {
        Config { frame: a.frame, quit: a.quit.clone(), name: a.prog.clone(), ..Config::default() }
    }
}

/// Callbacks a server drives. Methods take `&self` because in
/// [`Mode::ThreadPerConnection`] they run on several threads at once.
pub trait Handler: Send + Sync {
    /// A client connected (TCP only). May send a greeting.
    fn on_connect(&self, _c: &mut Conn<'_>) -> Action {
        Action::Continue
    }
    /// One message (one datagram for UDP). May send zero or more replies.
    fn on_message(&self, c: &mut Conn<'_>, msg: &[u8]) -> Action;
    /// The connection ended (TCP only); sends are no longer possible.
    fn on_close(&self, _c: &mut Conn<'_>, _reason: CloseReason) {}
}

/// Where a [`Conn`]'s sends go.
pub(crate) enum Sink<'a> {
    /// Straight into the connection's outgoing buffer (event-loop thread).
    Buf { buf: &'a mut Vec<u8>, frame: Frame },
    /// Through the server's command queue (worker threads).
    Queue,
    /// A UDP reply to the sender.
    Datagram { sock: &'a mio::net::UdpSocket, frame: Frame, scratch: &'a mut Vec<u8> },
    /// Nothing can be sent any more (in `on_close`).
    Closed,
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

    /// True for a UDP datagram's sender.
    pub fn is_datagram(&self) -> bool {
        matches!(self.sink, Sink::Datagram { .. })
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
    /// datagram to the sender.
    pub fn send(&mut self, msg: &[u8]) -> Result<()> {
        match &mut self.sink {
            Sink::Buf { buf, frame } => frame.encode(msg, buf),
            Sink::Queue => self.shared.send(self.id, msg),
            Sink::Datagram { sock, frame, scratch } => {
                scratch.clear();
                crate::udp::datagram_encode(*frame, msg, scratch)?;
                sock.send_to(scratch, self.peer)
                    .map(|_| ())
                    .map_err(|e| crate::Error::io(format!("sendto {}", crate::net::show(&self.peer)), &e))
            }
            Sink::Closed => Err(crate::Error::new(crate::Code::BadHandle, format!("connection {} is closed", self.id))),
        }
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
