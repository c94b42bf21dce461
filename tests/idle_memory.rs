//! Memory per idle connection: what a server keeps for a client that sent a
//! message, got its echo, and went quiet.
//!
//! A hand-written epoll server keeps about 70 bytes of RSS per such client
//! (its connection struct; buffers freed when empty). sockflow's loop keeps
//! a 40-byte slot and a 16-byte registry row; buffers, decoder state and
//! everything else an idle connection does not need go back to pools. This
//! test runs the in-process echo server, opens a few thousand connections
//! that each echo one line, and bounds the growth of the process's RSS per
//! connection, with a wide margin (the client side shares the process; RSS
//! is noisy): 160 bytes, where the code before this bound kept 330-380.

#[path = "server/kit.rs"]
mod skit;

use skit::*;
use sockflow::server::builtin::Echo;
use sockflow::server::Config;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;

/// Connections held idle (two descriptors each in this process).
const CONNS: usize = 4000;
/// Bound on RSS growth per idle connection.
const MAX_BYTES_PER_CONN: usize = 160;

fn rss() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse::<usize>().unwrap() * 1024
}

/// Raises the soft descriptor limit to the hard one; the number of
/// descriptors now allowed.
fn raise_fd_limit() -> usize {
    let mut r = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: plain getrlimit/setrlimit on a local struct.
    unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut r);
        r.rlim_cur = r.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &r);
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut r);
    }
    r.rlim_cur as usize
}

/// Connects, sends one line, reads its echo; the connection then stays idle.
fn echoed(server: &Running, line: &[u8], back: &mut [u8]) -> TcpStream {
    let mut s = TcpStream::connect(server.addr).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    s.write_all(line).unwrap();
    s.read_exact(&mut back[..line.len()]).unwrap();
    assert_eq!(&back[..line.len()], line);
    s
}

#[test]
fn an_idle_connection_costs_little_memory() {
    let limit = raise_fd_limit();
    assert!(limit >= 2 * CONNS + 100, "this test needs {} descriptors; the hard limit is {limit}", 2 * CONNS + 100);
    let cfg = Config { log: None, max_per_ip: CONNS + 10, ..Config::default() };
    let server = start_tcp(cfg, Arc::new(Echo));
    let line = b"hello from an idle connection\n";
    let mut back = [0u8; 64];
    // The first connection touches the read buffer, the pools and the
    // tables' first pages; then the clients' own list is allocated.
    drop(echoed(&server, line, &mut back));
    let mut idle = Vec::with_capacity(CONNS);
    let before = rss();
    for _ in 0..CONNS {
        idle.push(echoed(&server, line, &mut back));
    }
    let after = rss();
    let per_conn = after.saturating_sub(before) / CONNS;
    eprintln!("idle memory: {per_conn} bytes per connection");
    assert!(
        per_conn <= MAX_BYTES_PER_CONN,
        "{per_conn} bytes of RSS per idle connection ({before} -> {after} bytes for {CONNS} connections); bound {MAX_BYTES_PER_CONN}"
    );
    drop(idle);
    server.stop().unwrap();
}
