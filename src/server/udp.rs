//! The UDP server: one socket on the event loop; each datagram is one
//! message, handed to the same [`Handler`] as TCP, and replies go back to
//! its sender. There are no connections, so `on_connect`/`on_close` are not
//! called, the quit word has no effect, and handlers run on the loop thread.

use super::base::Base;
use super::{Action, Config, Conn, Handler, ServerHandle, Sink};
use crate::error::{Error, Result};
use crate::frame::Frame;
use crate::net;
use crate::udp::datagram_msg;
use mio::net::UdpSocket;
use mio::{Events, Interest, Token};
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

const SOCKET: Token = Token(0);
/// Datagrams per readiness event before the loop checks for stop/signals.
const DATAGRAMS_PER_TURN: usize = 64;

/// A bound UDP server, ready to [`run`](UdpServer::run).
pub struct UdpServer {
    base: Base,
    sock: UdpSocket,
    handler: Arc<dyn Handler>,
    frame: Frame,
    next_id: u64,
}

impl UdpServer {
    /// Binds the first of `addrs` that works.
    pub fn bind(addrs: &[SocketAddr], mut cfg: Config, handler: Arc<dyn Handler>) -> Result<UdpServer> {
        let u = crate::udp::Udp::bind(addrs)?;
        let local = u.local_addr()?;
        let std = u.into_std();
        std.set_nonblocking(true).map_err(|e| Error::io("fcntl", &e))?;
        let mut sock = UdpSocket::from_std(std);
        let base = Base::new(local, cfg.frame, true, &mut cfg)?;
        base.poll.registry().register(&mut sock, SOCKET, Interest::READABLE).map_err(|e| Error::io("epoll_ctl", &e))?;
        Ok(UdpServer { base, sock, handler, frame: cfg.frame, next_id: 1 })
    }

    /// Binds the parsed command line's host and port.
    pub fn from_args(a: &crate::args::Args, cfg: Config, handler: Arc<dyn Handler>) -> Result<UdpServer> {
        UdpServer::bind(&a.addrs()?, cfg, handler)
    }

    /// A thread-safe handle (stop).
    pub fn handle(&self) -> ServerHandle {
        self.base.handle()
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.base.local_addr()
    }

    /// Runs until stopped (a handler's `Stop`, [`ServerHandle::stop`], or a
    /// signal when configured).
    pub fn run(mut self) -> Result<()> {
        self.base.announce();
        let mut events = Events::with_capacity(64);
        // One buffer larger than any UDP payload: nothing is ever cut.
        let mut buf = vec![0u8; 65536];
        let mut reply = Vec::new();
        let mut more = false;
        while !self.base.shared.stopping() {
            let timeout = if more { Some(std::time::Duration::ZERO) } else { None };
            self.base.wait(&mut events, timeout)?;
            more = self.receive(&mut buf, &mut reply);
        }
        self.base.stopped();
        Ok(())
    }

    /// Handles waiting datagrams; true if some may be left.
    fn receive(&mut self, buf: &mut [u8], reply: &mut Vec<u8>) -> bool {
        for _ in 0..DATAGRAMS_PER_TURN {
            if self.base.shared.stopping() {
                return false;
            }
            let (n, peer) = match self.sock.recv_from(buf) {
                Ok(x) => x,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    // e.g. ECONNREFUSED from an earlier reply's ICMP: not fatal.
                    self.base.log.line(format_args!("{}", Error::io("recvfrom", &e)));
                    continue;
                }
            };
            let peer = net::canonical(peer);
            let (msg, ending) = datagram_msg(self.frame, &buf[..n]);
            if msg.len() > self.frame.max_len() {
                self.base.log.line(format_args!(
                    "{}: datagram of {} bytes is over the limit of {}: dropped",
                    net::show(&peer),
                    msg.len(),
                    self.frame.max_len()
                ));
                continue;
            }
            let mut user = 0;
            let id = self.next_id;
            self.next_id += 1;
            let mut c = Conn {
                id,
                peer,
                user: &mut user,
                sink: Sink::Datagram { sock: &self.sock, frame: self.frame, scratch: reply, ending },
                shared: &self.base.shared,
            };
            if self.handler.on_message(&mut c, msg) == Action::Stop {
                self.base.shared.stop();
            }
        }
        true
    }
}
