//! What a stream server accepts from: a TCP listener or a local
//! (`unix:`) one. Both hand out connections as `mio::net::TcpStream`: a
//! connected local stream socket takes the same calls (see `unix.rs`), so
//! the loop past `accept` has one path for both.

use crate::net;
use mio::event::Source;
use mio::net::{TcpListener, TcpStream, UnixListener};
use mio::{Interest, Registry, Token};
use std::io;
use std::net::SocketAddr;
use std::os::fd::OwnedFd;

pub(crate) enum Listen {
    Tcp(TcpListener),
    Unix(UnixListener),
}

impl Listen {
    /// One pending connection and its peer (IPv4-mapped shown as IPv4; a
    /// local peer's credentials written as `unix.rs` says).
    pub(crate) fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        match self {
            Listen::Tcp(l) => l.accept().map(|(s, peer)| (s, net::canonical(peer))),
            Listen::Unix(l) => {
                let (s, _) = l.accept()?;
                let peer = crate::unix::peer_addr(&s);
                Ok((TcpStream::from_std(std::net::TcpStream::from(OwnedFd::from(s))), peer))
            }
        }
    }

    fn source(&mut self) -> &mut dyn Source {
        match self {
            Listen::Tcp(l) => l,
            Listen::Unix(l) => l,
        }
    }
}

impl Source for Listen {
    fn register(&mut self, r: &Registry, t: Token, i: Interest) -> io::Result<()> {
        self.source().register(r, t, i)
    }
    fn reregister(&mut self, r: &Registry, t: Token, i: Interest) -> io::Result<()> {
        self.source().reregister(r, t, i)
    }
    fn deregister(&mut self, r: &Registry) -> io::Result<()> {
        self.source().deregister(r)
    }
}
