//! The part of a server other threads may touch: the stop flag, a queue of
//! commands (sends, broadcasts, closes) the loop runs on its next turn, the
//! waker that makes it turn, and SIGINT/SIGTERM delivery.

use crate::error::{Code, Error, Result};
use crate::frame::{Ending, Frame};
use mio::{Registry, Token, Waker};
use std::net::SocketAddr;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

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
    /// Close the connection: gracefully for `Handler`, at once for `Error`.
    Close { id: u64, reason: super::CloseReason },
    /// A worker handled everything before the end of input: close now.
    Finish { id: u64, reason: super::CloseReason },
    /// A worker caught up: read from the connection again.
    Resume { id: u64 },
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

/// Shared between the loop and every other thread.
pub struct Shared {
    stop: AtomicBool,
    cmds: Mutex<Vec<Command>>,
    waker: Waker,
    local: SocketAddr,
    frame: Frame,
    wire: Wire,
}

impl Shared {
    pub(crate) fn new(registry: &Registry, token: Token, local: SocketAddr, frame: Frame, wire: Wire) -> Result<Arc<Shared>> {
        let waker = Waker::new(registry, token).map_err(|e| Error::io("eventfd", &e))?;
        Ok(Arc::new(Shared { stop: AtomicBool::new(false), cmds: Mutex::new(Vec::new()), waker, local, frame, wire }))
    }

    pub(crate) fn push(&self, c: Command) {
        self.cmds.lock().unwrap_or_else(|p| p.into_inner()).push(c);
        let _ = self.waker.wake();
    }

    pub(crate) fn take(&self) -> Vec<Command> {
        std::mem::take(&mut *self.cmds.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Asks the loop to stop gracefully.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = self.waker.wake();
    }

    /// True once a stop was asked.
    pub fn stopping(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
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
        self.push(Command::Send { id, bytes });
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
        self.push(Command::Broadcast { bytes, except });
        Ok(())
    }

    /// Queues a graceful close of connection `id` (replies flushed first).
    pub fn close(&self, id: u64) {
        self.push(Command::Close { id, reason: super::CloseReason::Handler });
    }

    /// Queues an immediate close of connection `id` with reason `Error`.
    pub(crate) fn abort(&self, id: u64) {
        self.push(Command::Close { id, reason: super::CloseReason::Error });
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }
}

/// A cloneable, thread-safe handle on a running server.
#[derive(Clone)]
pub struct ServerHandle(pub(crate) Arc<Shared>);

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
