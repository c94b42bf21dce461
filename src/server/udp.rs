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
use std::time::Duration;

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
    events: Events,
    /// One buffer larger than any UDP payload: nothing is ever cut.
    buf: Vec<u8>,
    reply: Vec<u8>,
    /// Datagrams may be left from the last turn (it stopped at its bound).
    more: bool,
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
        Ok(UdpServer {
            base,
            sock,
            handler,
            frame: cfg.frame,
            next_id: 1,
            events: Events::with_capacity(64),
            buf: vec![0u8; 65536],
            reply: Vec::new(),
            more: false,
        })
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
        while self.turn(None)? {}
        self.finish();
        Ok(())
    }

    /// As [`TcpServer::announce`](super::tcp::TcpServer::announce).
    pub fn announce(&self) {
        self.base.announce();
    }

    /// As [`TcpServer::fd`](super::tcp::TcpServer::fd).
    pub fn fd(&self) -> std::os::fd::RawFd {
        self.base.fd()
    }

    /// As [`TcpServer::turn`](super::tcp::TcpServer::turn).
    pub fn turn(&mut self, timeout: Option<Duration>) -> Result<bool> {
        let _turning = self.base.turning();
        let timeout = if self.more { Some(Duration::ZERO) } else { timeout };
        self.base.wait(&mut self.events, timeout)?;
        // No connections to act on: sends to ids are refused when queued.
        drop(self.base.commands());
        let (mut buf, mut reply) = (std::mem::take(&mut self.buf), std::mem::take(&mut self.reply));
        self.more = self.receive(&mut buf, &mut reply);
        (self.buf, self.reply) = (buf, reply);
        Ok(!self.base.shared.stopping())
    }

    /// As [`TcpServer::next_deadline`](super::tcp::TcpServer::next_deadline).
    pub fn next_deadline(&mut self) -> Option<Duration> {
        if self.more {
            return Some(Duration::ZERO);
        }
        self.base.next_timer()
    }

    /// Logs the stop (a UDP server holds nothing to flush).
    pub fn finish(self) {
        self.base.stopped();
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
