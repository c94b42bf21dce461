//! What the TCP and UDP loops share: the poller, the control block other
//! threads reach through the waker, SIGINT/SIGTERM when configured, the log,
//! and the lines that announce start and stop.

use super::control::{Shared, Signals};
use super::{Config, Log, ServerHandle};
use crate::error::{Error, Result};
use crate::frame::Frame;
use mio::{Events, Poll, Token};
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

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
}

impl Base {
    /// Takes the log out of `cfg`; installs signal handling when asked.
    pub(crate) fn new(local: SocketAddr, frame: Frame, datagram: bool, cfg: &mut Config) -> Result<Base> {
        let poll = Poll::new().map_err(|e| Error::io("epoll_create", &e))?;
        let shared = Shared::new(poll.registry(), WAKER, local, frame, datagram)?;
        let signals = if cfg.handle_signals { Some(Signals::watch(poll.registry(), SIGNALS)?) } else { None };
        Ok(Base { poll, shared, signals, log: Log::new(cfg), kind: if datagram { " (udp)" } else { "" } })
    }

    pub(crate) fn handle(&self) -> ServerHandle {
        ServerHandle(self.shared.clone())
    }

    pub(crate) fn local_addr(&self) -> SocketAddr {
        self.shared.local_addr()
    }

    /// The readiness line tests and users wait for.
    pub(crate) fn announce(&self) {
        let a = self.local_addr();
        if a.port() == 0 {
            // Bound servers have a port: this is a loop without a listener.
            return self.log.line(format_args!("running (no listener)"));
        }
        self.log.line(format_args!("listening on {} port {}{}", a.ip(), a.port(), self.kind));
    }

    pub(crate) fn stopped(&self) {
        let a = self.local_addr();
        if a.port() == 0 {
            return self.log.line(format_args!("stopped"));
        }
        self.log.line(format_args!("stopped ({} port {})", a.ip(), a.port()));
    }

    /// One poll: EINTR is an empty turn; a signal asks for a stop. The loop
    /// then looks at its own tokens in `events`.
    pub(crate) fn wait(&mut self, events: &mut Events, timeout: Option<Duration>) -> Result<()> {
        if let Err(e) = self.poll.poll(events, timeout) {
            if e.kind() == io::ErrorKind::Interrupted {
                events.clear();
                return Ok(());
            }
            return Err(Error::io("epoll_wait", &e));
        }
        if events.iter().any(|e| e.token() == SIGNALS) && self.signals.as_mut().is_some_and(|s| s.drain()) {
            self.log.line(format_args!("signal received: stopping"));
            self.shared.stop();
        }
        Ok(())
    }
}
