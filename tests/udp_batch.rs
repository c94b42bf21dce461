//! The UDP server receives datagrams in batches (`recvmmsg`) and sends a
//! batch's replies together (`sendmmsg`): bursts from several senders must
//! still be answered exactly, in order per sender, in both UDP modes (local
//! datagram sockets: `tests/unix.rs`); and the replies of a batch really
//! wait for the batch (observed through the server's own counters, not
//! through time).

#[path = "server/kit.rs"]
mod skit;

use skit::*;
use sockflow::server::builtin::Echo;
use sockflow::server::{Action, Config, Conn, Handler, UdpMode};
use std::net::{SocketAddr, UdpSocket};
use std::sync::{mpsc, Arc, Mutex};

/// Senders in the burst test.
const SENDERS: usize = 4;
/// Datagrams each sender sends at once, per round (4 x 16 in flight: well
/// inside the default socket buffers, so loopback loses none).
const BURST: usize = 16;
const ROUNDS: usize = 4;

/// Datagram `k` of `round` from sender `s`: its number written first, then
/// filler to a size that varies (a few over a page, most small); round
/// `ROUNDS` is one datagram near UDP's limit.
fn datagram(s: usize, round: usize, k: usize) -> Vec<u8> {
    let len = match (round, k) {
        (ROUNDS, _) => 65_000,
        (_, k) if k % 7 == 0 => 5_000 + s * 100,
        _ => 20 + (s * 31 + round * 7 + k * 13) % 200,
    };
    let mut d = format!("{s}/{round}/{k};").into_bytes();
    d.resize(len, b'a' + ((s + round + k) % 26) as u8);
    d
}

/// Every sender sends `BURST` datagrams without waiting, then reads the
/// replies: each one must be the echo of the next datagram it sent.
fn burst_echoes(mode: UdpMode) {
    let cfg = Config { log: None, frame: sockflow::frame::Frame::parse("raw").unwrap(), udp: mode, ..Config::default() };
    let srv = start_udp(cfg, Arc::new(Echo));
    let socks: Vec<UdpSocket> = (0..SENDERS)
        .map(|_| {
            let s = UdpSocket::bind("127.0.0.1:0").unwrap();
            s.set_read_timeout(Some(WAIT)).unwrap();
            s
        })
        .collect();
    let mut buf = vec![0u8; 65_536];
    // Alone in flight: a datagram that fills a receive slot.
    for (s, sock) in socks.iter().enumerate() {
        let big = datagram(s, ROUNDS, 0);
        sock.send_to(&big, srv.addr).unwrap();
        let n = sock.recv(&mut buf).unwrap();
        assert!(buf[..n] == big[..], "sender {s}: the echo of {} bytes differs ({n} bytes)", big.len());
    }
    for round in 0..ROUNDS {
        for k in 0..BURST {
            for (s, sock) in socks.iter().enumerate() {
                sock.send_to(&datagram(s, round, k), srv.addr).unwrap();
            }
        }
        for (s, sock) in socks.iter().enumerate() {
            for k in 0..BURST {
                let (n, from) = sock.recv_from(&mut buf).unwrap_or_else(|e| panic!("sender {s}, round {round}: reply {k} missing: {e}"));
                assert_eq!(from, srv.addr);
                let want = datagram(s, round, k);
                assert!(buf[..n] == want[..], "sender {s}, round {round}: reply {k} is not the echo of datagram {k} ({n} bytes)");
            }
        }
    }
    let total = (SENDERS * (BURST * ROUNDS + 1)) as u64;
    // A reply is counted after its send returns: the client may be faster.
    until("every reply counted", || srv.handle.stats().msgs_out == total);
    let st = srv.handle.stats();
    assert_eq!((st.msgs_in, st.msgs_out, st.dropped), (total, total, 0), "{st:?}");
    assert_eq!(st.bytes_in, st.bytes_out);
    srv.stop().unwrap();
}

#[test]
fn a_burst_from_several_senders_is_echoed_exactly_and_in_order() {
    burst_echoes(UdpMode::Datagrams);
}

#[test]
fn a_burst_in_peers_mode_is_echoed_exactly_and_in_order() {
    burst_echoes(UdpMode::Peers);
}

/// Echoes, and notes how many replies the server had sent when each
/// datagram reached it; the first datagram holds the loop until released.
struct Probe {
    started: Mutex<Option<mpsc::Sender<()>>>,
    release: Mutex<mpsc::Receiver<()>>,
    sent_before: Mutex<Vec<u64>>,
}

impl Handler for Probe {
    fn on_message(&self, c: &mut Conn<'_>, msg: &[u8]) -> Action {
        self.sent_before.lock().unwrap().push(c.server().stats().msgs_out);
        if let Some(started) = self.started.lock().unwrap().take() {
            started.send(()).unwrap();
            // Bounded: the test releases it at once (or fails and drops it).
            let _ = self.release.lock().unwrap().recv_timeout(WAIT);
        }
        c.send(msg).unwrap();
        Action::Continue
    }
}

/// A raw-frame server with a [`Probe`], bound to `bind` (127.0.0.1 when
/// None), that received `first` from `c` and holds its loop while `c`
/// sends `queued` datagrams to it; then released, so they wait on the
/// socket together. Returns the probe, the running server and the address
/// `c` sent to.
fn held_batch(bind: Option<SocketAddr>, c: &UdpSocket, queued: &[Vec<u8>]) -> (Arc<Probe>, Running, SocketAddr) {
    let (started_tx, started) = mpsc::channel();
    let (release, release_rx) = mpsc::channel();
    let probe =
        Arc::new(Probe { started: Mutex::new(Some(started_tx)), release: Mutex::new(release_rx), sent_before: Mutex::new(Vec::new()) });
    let cfg = Config { log: None, frame: sockflow::frame::Frame::parse("raw").unwrap(), ..Config::default() };
    let srv = match bind {
        None => start_udp(cfg, probe.clone()),
        Some(a) => {
            let s = sockflow::server::udp::UdpServer::bind(&[a], cfg, probe.clone()).expect("bind");
            spawn_run(s.handle(), s.local_addr(), move || s.run())
        }
    };
    let to = SocketAddr::from((std::net::Ipv4Addr::LOCALHOST, srv.addr.port()));
    c.set_read_timeout(Some(WAIT)).unwrap();
    c.send_to(b"first", to).unwrap();
    started.recv_timeout(WAIT).expect("the first datagram reached the handler");
    for d in queued {
        c.send_to(d, to).unwrap();
    }
    release.send(()).unwrap();
    (probe, srv, to)
}

/// Datagrams queued on the socket while the loop is held are handled as
/// a batch: their replies are sent after the batch's last datagram is
/// handled, so a handler sees the server's sent count lag behind the
/// datagrams handled before it. A loop that received and answered one
/// datagram at a time shows no lag: each reply is sent (and counted)
/// before the next datagram is read.
#[test]
fn datagrams_queued_together_are_handled_as_one_batch() {
    const QUEUED: usize = 63;
    let c = UdpSocket::bind("127.0.0.1:0").unwrap();
    let (probe, srv, _) = held_batch(None, &c, &(0..QUEUED).map(|k| format!("d{k}").into_bytes()).collect::<Vec<_>>());
    let mut buf = [0u8; 64];
    let n = c.recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"first");
    for k in 0..QUEUED {
        let n = c.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], format!("d{k}").as_bytes());
    }
    let seen = probe.sent_before.lock().unwrap().clone();
    assert_eq!(seen.len(), QUEUED + 1);
    assert!(
        seen.iter().enumerate().any(|(k, &sent)| sent < k as u64),
        "every reply was sent before the next datagram was handled: {seen:?}"
    );
    // Nor all at the batch's end: the first replies of the batch left while
    // the rest were handled (see `FIRST_FLUSH` in src/server/udp.rs), so
    // a client can work on them meanwhile.
    assert!(seen[1..QUEUED].iter().any(|&sent| sent > 1), "the batch's replies all waited for its end: {seen:?}");
    srv.stop().unwrap();
}

/// A batch's replies to one sender, all of one size, leave as one UDP GSO
/// send: a client with UDP_GRO receives them joined (one read, with the
/// segment size), and the bytes are the echoes in order. A server that
/// sent them one by one (even with one `sendmmsg`) gives 40 separate
/// datagrams and no segment size.
#[test]
fn a_batch_of_equal_replies_to_one_sender_leaves_joined() {
    equal_replies_leave_joined(None);
}

/// The same from a dual-stack server (bound to `[::]`) to an IPv4 sender,
/// whose replies go to its IPv4-mapped address.
#[test]
fn a_dual_stack_server_joins_replies_to_an_ipv4_sender() {
    equal_replies_leave_joined(Some("[::]:0".parse().unwrap()));
}

fn equal_replies_leave_joined(bind: Option<SocketAddr>) {
    use nix::sys::socket::{recvmsg, setsockopt, sockopt::UdpGroSegment, ControlMessageOwned, MsgFlags, SockaddrIn};
    use std::os::fd::AsRawFd;
    const QUEUED: usize = 40;
    let c = UdpSocket::bind("127.0.0.1:0").unwrap();
    setsockopt(&c, UdpGroSegment, &true).unwrap();
    let queued: Vec<Vec<u8>> = (0..QUEUED).map(|k| format!("d{k:02}").into_bytes()).collect();
    let (_, srv, _) = held_batch(bind, &c, &queued);
    let want = queued.concat();
    let (mut got, mut reads, mut joined) = (Vec::new(), 0, false);
    let mut buf = vec![0u8; 65_536];
    // Bounded: each read waits at most WAIT, and every read brings bytes.
    while got.len() < b"first".len() + want.len() && reads <= QUEUED + 1 {
        let mut space = nix::cmsg_space!(u16);
        let mut iov = [std::io::IoSliceMut::new(&mut buf)];
        let m = recvmsg::<SockaddrIn>(c.as_raw_fd(), &mut iov, Some(&mut space), MsgFlags::empty()).expect("a reply");
        joined |= m.cmsgs().unwrap().any(|c| matches!(c, ControlMessageOwned::UdpGroSegments(3)));
        let n = m.bytes;
        got.extend_from_slice(&buf[..n]);
        reads += 1;
    }
    assert!(got.starts_with(b"first") && got[5..] == want[..], "the echoes, in order");
    assert!(joined, "{reads} reads: the replies of the batch left one by one");
    // Counted after the send returns: the client may be faster.
    until("every reply counted, one per datagram", || srv.handle.stats().msgs_out == QUEUED as u64 + 1);
    srv.stop().unwrap();
}

/// A local datagram sender that never reads: its receive queue fills
/// (`max_dgram_qlen`, 10 by default), so the server's replies to it meet
/// a full buffer (EAGAIN) while the socket still reads as writable. Those
/// replies are dropped and the loop goes on: another sender is answered.
#[test]
fn a_local_sender_that_reads_nothing_does_not_hold_up_the_others() {
    use std::os::unix::net::UnixDatagram;
    let dir = std::env::temp_dir().join(format!("sockflow-udp-batch-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("srv.sock");
    let place = sockflow::unix::Place::Path(path.clone());
    let cfg = Config { log: None, frame: sockflow::frame::Frame::parse("raw").unwrap(), ..Config::default() };
    let s = sockflow::server::udp::UdpServer::bind_unix(&place, None, cfg, Arc::new(Echo)).unwrap();
    let srv = spawn_run(s.handle(), s.local_addr(), move || s.run());
    let client = || {
        let c = UnixDatagram::unbound().unwrap();
        nix::sys::socket::bind(std::os::fd::AsRawFd::as_raw_fd(&c), &nix::sys::socket::UnixAddr::new_unnamed()).unwrap();
        c.set_read_timeout(Some(WAIT)).unwrap();
        c.set_write_timeout(Some(WAIT)).unwrap();
        c
    };
    let (deaf, other) = (client(), client());
    for k in 0..100 {
        deaf.send_to(format!("deaf {k}").as_bytes(), &path)
            .unwrap_or_else(|e| panic!("datagram {k} of the sender that reads nothing: {e}"));
    }
    let mut buf = [0u8; 64];
    for k in 0..5 {
        other.send_to(format!("other {k}").as_bytes(), &path).unwrap();
        let n = other.recv(&mut buf).unwrap_or_else(|e| panic!("no echo for the other sender ({k}): {e}"));
        assert_eq!(&buf[..n], format!("other {k}").as_bytes());
    }
    let st = srv.handle.stats();
    assert_eq!(st.msgs_in, 105, "{st:?}");
    assert!(st.msgs_out < 105, "every reply to the sender that reads nothing went out? {st:?}");
    srv.stop().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}
