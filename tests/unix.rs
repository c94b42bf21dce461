//! Unix domain sockets (`unix:PATH`, `unix:@NAME`) through the examples
//! and the primitives: every stream example pair over both kinds of
//! address, interop with `socat` (UNIX-CONNECT / UNIX-LISTEN, skipped with
//! a note when it is missing), the socket file's life (a stale one
//! replaced, a live one refused, a non-socket left alone, removed at stop,
//! `--mode`), and the peer credentials the print handler shows and the C
//! calls return (this test's own pid, uid and gid).
//!
//! Socket files live in a directory of their own per test, removed at the
//! end; abstract names carry the test's pid and name.

mod common;
#[path = "flows/kit.rs"]
mod kit;

use common::*;
use kit::*;
use std::io::{BufReader, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

/// A directory removed when the test ends (passing or not).
struct TempDir(PathBuf);

impl TempDir {
    fn new(test: &str) -> TempDir {
        let d = tmp_dir("unix").join(format!("{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        TempDir(d)
    }

    fn sock(&self, name: &str) -> String {
        self.0.join(name).to_str().unwrap().to_string()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The two kinds of local address for one test: a socket file, and an
/// abstract name no other test (or run) uses.
fn places(dir: &TempDir, test: &str) -> [String; 2] {
    [format!("unix:{}", dir.sock("s.sock")), format!("unix:@sockflow-{test}-{}", std::process::id())]
}

/// Starts example `name` on `place` (options first) and waits for its
/// readiness line naming the place (the prim servers add ` port 0`, the
/// UDP servers ` (udp)`).
fn serve(name: &str, opts: &[&str], place: &str) -> Proc {
    let mut args = opts.to_vec();
    args.push(place);
    let p = spawn(example(name, Link::Static), &args, Input::Null);
    let want = format!("{name}: listening on {place}");
    let ok = |l: &str| [String::new(), " port 0".into(), " (udp)".into()].iter().any(|tail| l == format!("{want}{tail}"));
    p.wait_for_line_matching(Stream::Stderr, ok, &want, default_timeout());
    p
}

/// A connection to a local place, with the default timeouts both ways.
fn dial(place: &str) -> UnixStream {
    let s = match place.strip_prefix("unix:@") {
        Some(name) => {
            use std::os::linux::net::SocketAddrExt;
            let a = std::os::unix::net::SocketAddr::from_abstract_name(name).unwrap();
            UnixStream::connect_addr(&a)
        }
        None => UnixStream::connect(place.strip_prefix("unix:").unwrap()),
    }
    .unwrap_or_else(|e| panic!("connect {place}: {e}"));
    s.set_read_timeout(Some(default_timeout())).unwrap();
    s.set_write_timeout(Some(default_timeout())).unwrap();
    s
}

/// This process's uid and gid (the owner of /proc/self).
fn me() -> (u32, u32) {
    let m = std::fs::metadata("/proc/self").unwrap();
    (m.uid(), m.gid())
}

#[test]
fn tcp_server_and_client_with_credentials() {
    let dir = TempDir::new("pair");
    let (uid, gid) = me();
    for place in places(&dir, "pair") {
        let mut srv = serve("tcp_server", &[], &place);
        let mut cli = spawn(example("tcp_client", Link::Static), &[&place], Input::Bytes(b"hello over unix\n".to_vec()));
        let who = format!("client unix pid = {} uid = {uid} gid = {gid}", cli.pid());
        wait_eq(&srv, Stream::Stdout, &who);
        wait_eq(&srv, Stream::Stdout, "hello over unix");
        exits_with(&mut cli, 0);
        wait_eq(&srv, Stream::Stdout, &format!("client closed unix pid = {} uid = {uid} gid = {gid} (peer closed)", cli.pid()));
        stop(&mut srv, libc::SIGTERM);
        wait_eq(&srv, Stream::Stderr, &format!("tcp_server: stopped ({place})"));
        if let Some(path) = place.strip_prefix("unix:").filter(|p| !p.starts_with('@')) {
            assert!(!Path::new(path).exists(), "the server left its socket file {path} behind");
        }
    }
}

#[test]
fn echo_server_with_rust_and_socat_peers() {
    let dir = TempDir::new("echo");
    let socat = tool("socat");
    for place in places(&dir, "echo") {
        let _srv = serve("echo_server", &["--workers", "2"], &place);
        // Several clients at once, each getting its own bytes back.
        let clients: Vec<UnixStream> = (0..4).map(|_| dial(&place)).collect();
        for (i, c) in clients.iter().enumerate() {
            (&*c).write_all(format!("client {i}\n").as_bytes()).unwrap();
        }
        for (i, c) in clients.iter().enumerate() {
            assert_eq!(read_line(&mut BufReader::new(c)), format!("client {i}"));
        }
        let Some(socat) = &socat else { continue };
        let addr = match place.strip_prefix("unix:@") {
            Some(name) => format!("ABSTRACT-CONNECT:{name}"),
            None => format!("UNIX-CONNECT:{}", &place[5..]),
        };
        let mut cmd = std::process::Command::new(socat);
        cmd.args(["-t", "5", "-", &addr]);
        let mut p = spawn_cmd(cmd, Input::Bytes(b"from socat\n".to_vec()));
        wait_eq(&p, Stream::Stdout, "from socat");
        exits_with(&mut p, 0);
    }
}

#[test]
fn chat_room_over_unix() {
    let dir = TempDir::new("chat");
    for place in places(&dir, "chat") {
        let _srv = serve("chat_room", &[], &place);
        let (a, b) = (dial(&place), dial(&place));
        let (mut ra, mut rb) = (BufReader::new(&a), BufReader::new(&b));
        (&a).write_all(b"ann\n").unwrap();
        (&b).write_all(b"bob\n").unwrap();
        assert_eq!(read_line(&mut ra), "* bob joined");
        (&a).write_all(b"hi bob\n").unwrap();
        // Bob may see "* ann joined" first (the two nicknames race).
        let mut got = read_line(&mut rb);
        if got == "* ann joined" {
            got = read_line(&mut rb);
        }
        assert_eq!(got, "ann: hi bob");
        (&b).write_all(b"/who\n").unwrap();
        assert_eq!(read_line(&mut rb), "ann,bob");
    }
}

#[test]
fn primitive_examples_over_unix() {
    let dir = TempDir::new("prim");
    for place in places(&dir, "prim") {
        let srv = serve("prim_tcp_server", &[], &place);
        let mut cli = spawn(example("prim_tcp_client", Link::Static), &[&place], Input::Bytes(b"ping\nquit\n".to_vec()));
        exits_with(&mut cli, 0);
        assert!(cli.stdout_text().contains("ping"), "no echo of ping\n{}", cli.transcript());
        wait_eq(&srv, Stream::Stdout, "client ip = unix port = 0");
        wait_eq(&srv, Stream::Stdout, "received: ping");
    }
}

#[test]
fn socat_listener_receives_from_tcp_client() {
    let Some(socat) = tool("socat") else { return };
    let dir = TempDir::new("listen");
    let path = dir.sock("socat.sock");
    let mut cmd = std::process::Command::new(socat);
    cmd.args(["-u", &format!("UNIX-LISTEN:{path}"), "STDOUT"]);
    let mut srv = spawn_cmd(cmd, Input::Null);
    let deadline = std::time::Instant::now() + default_timeout();
    while !Path::new(&path).exists() {
        assert!(std::time::Instant::now() < deadline, "socat made no socket file\n{}", srv.transcript());
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let mut cli = spawn(example("tcp_client", Link::Static), &[&format!("unix:{path}")], Input::Bytes(b"to socat\n".to_vec()));
    exits_with(&mut cli, 0);
    wait_eq(&srv, Stream::Stdout, "to socat");
    exits_with(&mut srv, 0);
}

#[test]
fn stale_file_is_replaced_live_one_refused_other_files_left_alone() {
    let dir = TempDir::new("stale");
    let path = dir.sock("s.sock");
    // A server that died without removing its file: a socket nobody
    // listens on (std leaves the file behind on drop).
    drop(UnixListener::bind(&path).unwrap());
    assert!(Path::new(&path).exists());
    let place = format!("unix:{path}");
    let _live = serve("echo_server", &[], &place);
    let s = dial(&place);
    (&s).write_all(b"after stale\n").unwrap();
    assert_eq!(read_line(&mut BufReader::new(&s)), "after stale");
    // A second server on the live one's file is refused, naming the path.
    let mut second = spawn(example("echo_server", Link::Static), &[&place], Input::Null);
    let st = second.wait_exit(default_timeout());
    assert!(!st.success(), "a second server bound a live socket file\n{}", second.transcript());
    assert!(second.stderr_text().contains(&format!("bind {place}: a server is already listening there")), "{}", second.transcript());
    // The first still serves (its file was not taken).
    let s = dial(&place);
    (&s).write_all(b"still here\n").unwrap();
    assert_eq!(read_line(&mut BufReader::new(&s)), "still here");
    // An abstract name in use is refused too.
    let name = format!("unix:@sockflow-stale-{}", std::process::id());
    let _a = serve("echo_server", &[], &name);
    let mut again = spawn(example("echo_server", Link::Static), &[&name], Input::Null);
    assert!(!again.wait_exit(default_timeout()).success(), "{}", again.transcript());
    // A path that is not a socket is never removed.
    let plain = dir.sock("plain");
    std::fs::write(&plain, b"keep me").unwrap();
    let mut p = spawn(example("echo_server", Link::Static), &[&format!("unix:{plain}")], Input::Null);
    assert!(!p.wait_exit(default_timeout()).success(), "{}", p.transcript());
    assert!(p.stderr_text().contains("is not a socket"), "{}", p.transcript());
    assert_eq!(std::fs::read(&plain).unwrap(), b"keep me");
}

#[test]
fn mode_sets_the_socket_file_permissions() {
    let dir = TempDir::new("mode");
    for (mode, want) in [("600", 0o600), ("660", 0o660), ("0666", 0o666)] {
        let path = dir.sock(&format!("m{mode}.sock"));
        let _srv = serve("tcp_server", &["--mode", mode], &format!("unix:{path}"));
        let got = std::fs::metadata(&path).unwrap().permissions().mode() & 0o7777;
        assert_eq!(got, want, "--mode {mode}");
    }
    // --mode needs a socket file, and an octal number.
    for bad in [&["--mode", "660", "127.0.0.1", "0"][..], &["--mode", "98", "unix:x.sock"], &["--mode", "0", "unix:x.sock"]] {
        let mut p = spawn(example("tcp_server", Link::Static), bad, Input::Null);
        let st = p.wait_exit(default_timeout());
        assert!(!st.success() && p.stderr_text().contains("--mode"), "{bad:?}\n{}", p.transcript());
    }
}

#[test]
fn c_primitives_take_unix_hosts_and_report_credentials() {
    use sockflow::ffi::addr::sockflow_addr;
    use sockflow::ffi::tcp::*;
    use std::ptr::null_mut;
    let dir = TempDir::new("prims");
    let (uid, gid) = me();
    for place in places(&dir, "prims") {
        let host = std::ffi::CString::new(place.clone()).unwrap();
        let mut l = null_mut();
        assert_eq!(sockflow_tcp_listen(host.as_ptr(), 0, 0, &mut l), 0, "listen {place}");
        // A port with a unix address is refused.
        let mut c = null_mut();
        assert_eq!(sockflow_tcp_connect(host.as_ptr(), 80, -1, &mut c), sockflow::ffi::error::SOCKFLOW_EADDR);
        assert_eq!(sockflow_tcp_connect(host.as_ptr(), 0, -1, &mut c), 0, "connect {place}");
        let mut s = null_mut();
        let mut peer: sockflow_addr = unsafe { std::mem::zeroed() };
        assert_eq!(sockflow_tcp_accept(l, -1, &mut s, &mut peer), 0);
        assert_eq!(peer.family, 0);
        assert_eq!(unsafe { std::ffi::CStr::from_ptr(peer.ip.as_ptr()) }.to_str().unwrap(), "unix");
        // Both ends see this process.
        for t in [s, c] {
            let (mut p, mut u, mut g) = (0, 0, 0);
            assert_eq!(sockflow_tcp_peer_cred(t, &mut p, &mut u, &mut g), 0);
            assert_eq!((p as u32, u, g), (std::process::id(), uid, gid));
        }
        assert_eq!(sockflow_tcp_send_msg(c, b"hi".as_ptr().cast(), 2), 0);
        let mut buf = [0u8; 16];
        assert_eq!(sockflow_tcp_recv_msg(s, buf.as_mut_ptr().cast(), buf.len()), 2);
        assert_eq!(&buf[..2], b"hi");
        sockflow_tcp_close(c);
        sockflow_tcp_close(s);
        sockflow_tcp_listener_close(l);
        if let Some(path) = place.strip_prefix("unix:").filter(|p| !p.starts_with('@')) {
            assert!(!Path::new(path).exists(), "closing the listener left {path} behind");
        }
    }
    // A TCP connection has no credentials.
    let mut l = null_mut();
    assert_eq!(sockflow_tcp_listen(c"127.0.0.1".as_ptr(), 0, 0, &mut l), 0);
    let port = sockflow_tcp_listener_port(l);
    let mut c = null_mut();
    assert_eq!(sockflow_tcp_connect(c"127.0.0.1".as_ptr(), port, -1, &mut c), 0);
    let mut p = 0;
    assert_eq!(sockflow_tcp_peer_cred(c, &mut p, null_mut(), null_mut()), sockflow::ffi::error::SOCKFLOW_EINVAL);
    sockflow_tcp_close(c);
    sockflow_tcp_listener_close(l);
}

/// `tests/c/peer_cred.c`: a C handler's `sockflow_conn_peer_cred` gives
/// the connecting process (this one), `sockflow_tcp_peer_cred` the
/// server's, and `sockflow_tcp_peer` reads "unix", port 0, family 0.
#[test]
fn c_handler_reads_peer_credentials() {
    let src = root().join("tests/c/peer_cred.c");
    let bin = CProgram::new(&src.to_string_lossy()).flag("-pthread").build();
    let mut p = spawn(&bin, &[], Input::Null);
    let st = p.wait_exit(default_timeout());
    assert_exit(&p, st, 0);
    assert!(p.stdout_text().starts_with("OK"), "{}", p.transcript());
}

/// The event-loop UDP servers over unix: and unix:@ — the print server
/// shows numbered senders, the echo server answers the stdin client;
/// `--workers` is one loop for a local socket.
#[test]
fn udp_servers_over_unix() {
    let dir = TempDir::new("udpsrv");
    for place in places(&dir, "udpsrv") {
        let mut srv = serve("udp_server", &[], &place);
        let mut c = spawn(example("udp_client", Link::Static), &[&place], Input::Bytes(b"dgram one\n".to_vec()));
        exits_with(&mut c, 0);
        wait_eq(&srv, Stream::Stdout, "client ip = unix port = 1");
        wait_eq(&srv, Stream::Stdout, "dgram one");
        stop(&mut srv, libc::SIGTERM);
        for opts in [&[][..], &["--workers", "2"]] {
            let mut echo = spawn(example("udp_echo_server", Link::Static), &[opts, &[place.as_str()]].concat(), Input::Null);
            wait_eq(&echo, Stream::Stderr, &format!("udp_echo_server: listening on {place} (udp)"));
            let mut u = spawn(example("udp_client", Link::Static), &[&place], Input::Piped);
            u.write_stdin(b"echo me\n").unwrap();
            wait_eq(&u, Stream::Stdout, "echo me");
            u.close_stdin();
            exits_with(&mut u, 0);
            stop(&mut echo, libc::SIGTERM);
        }
        if let Some(path) = place.strip_prefix("unix:").filter(|p| !p.starts_with('@')) {
            assert!(!Path::new(path).exists(), "the UDP server left {path} behind");
        }
    }
}

/// Datagrams over unix: and unix:@ — the primitive echo server answers
/// the primitive client and the stdin client (each bound to a name the
/// kernel picked), telling senders apart by number; the server's socket
/// file goes when it stops.
#[test]
fn datagram_examples_over_unix() {
    let dir = TempDir::new("dgram");
    for place in places(&dir, "dgram") {
        let mut srv = serve("prim_udp_server", &[], &place);
        let mut c = spawn(example("prim_udp_client", Link::Static), &[&place], Input::Bytes(b"one\ntwo\n".to_vec()));
        exits_with(&mut c, 0);
        assert_eq!(c.stdout_text(), "echo: one\necho: two\n", "{}", c.transcript());
        let first = wait_eq(&srv, Stream::Stdout, "client ip = unix port = 1: one");
        assert!(!first.is_empty());
        wait_eq(&srv, Stream::Stdout, "client ip = unix port = 1: two");
        let mut u = spawn(example("udp_client", Link::Static), &[&place], Input::Piped);
        u.write_stdin(b"three\n").unwrap();
        wait_eq(&u, Stream::Stdout, "three");
        wait_eq(&srv, Stream::Stdout, "client ip = unix port = 2: three");
        u.write_stdin(b"quit\n").unwrap();
        wait_eq(&u, Stream::Stdout, "quit");
        exits_with(&mut u, 0);
        wait_eq(&srv, Stream::Stdout, "client ip = unix port = 2: quit");
        exits_with(&mut srv, 0);
        if let Some(path) = place.strip_prefix("unix:").filter(|p| !p.starts_with('@')) {
            assert!(!Path::new(path).exists(), "the datagram server left {path} behind");
        }
    }
}

/// A datagram socket file in use is refused (a stream probe gets
/// EPROTOTYPE from it); a stale one is replaced.
#[test]
fn datagram_socket_file_in_use_and_stale() {
    use sockflow::udp::Udp;
    let dir = TempDir::new("dgfile");
    let path = dir.sock("d.sock");
    let place = sockflow::unix::Place::Path(path.clone().into());
    drop(std::os::unix::net::UnixDatagram::bind(&path).unwrap());
    let live = Udp::bind_unix(&place, None).expect("a stale datagram socket file is replaced");
    let e = Udp::bind_unix(&place, None).unwrap_err();
    assert_eq!(e.code, sockflow::Code::AddrInUse, "{}", e.msg);
    assert!(e.msg.contains(&path), "{}", e.msg);
    drop(live);
    assert!(!Path::new(&path).exists());
}

/// `--max-per-ip` counts local clients per process: with 1, this process's
/// second connection is refused while the first is served, and another
/// process (socat) still gets in.
#[test]
fn max_per_ip_counts_local_clients_per_process() {
    let dir = TempDir::new("perip");
    let place = format!("unix:{}", dir.sock("p.sock"));
    let srv = serve("echo_server", &["--max-per-ip", "1"], &place);
    let first = dial(&place);
    (&first).write_all(b"first\n").unwrap();
    assert_eq!(read_line(&mut BufReader::new(&first)), "first");
    let second = dial(&place);
    let mut rest = Vec::new();
    let _ = std::io::Read::read_to_end(&mut &second, &mut rest);
    assert!(rest.is_empty(), "the second connection of one process got {rest:?}");
    // The line names the process by its credentials (it used to show the
    // reserved placeholder address a local peer is counted under).
    let line = format!("too many connections from one process (1): closing unix (pid {} uid", std::process::id());
    srv.wait_for_line(Stream::Stderr, &line, default_timeout());
    let Some(socat) = tool("socat") else { return };
    let mut cmd = std::process::Command::new(socat);
    cmd.args(["-t", "5", "-", &format!("UNIX-CONNECT:{}", &place[5..])]);
    let mut p = spawn_cmd(cmd, Input::Bytes(b"other process\n".to_vec()));
    wait_eq(&p, Stream::Stdout, "other process");
    exits_with(&mut p, 0);
}

/// A datagram client of a socket file binds a temporary socket file of its
/// own in `$TMPDIR` (so the server answers a file, as it would another
/// program's), the server's replies reach it, and the file is gone when
/// the client ends — for the stdin client (quit) and the primitive client
/// (`sockflow_udp_close`). Before: an abstract name, no file at all.
#[test]
fn datagram_client_binds_a_temporary_file_and_removes_it() {
    let dir = TempDir::new("dgtmp");
    let tmp = TempDir::new("dgtmp-tmpdir");
    let place = format!("unix:{}", dir.sock("e.sock"));
    let mut srv = serve("udp_echo_server", &[], &place);
    let files = || std::fs::read_dir(&tmp.0).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect::<Vec<_>>();
    let client = |name: &str, input: Input| {
        let mut cmd = std::process::Command::new(example(name, Link::Static));
        cmd.arg(&place).env("TMPDIR", &tmp.0);
        spawn_cmd(cmd, input)
    };
    let mut u = client("udp_client", Input::Piped);
    u.write_stdin(b"through a file\n").unwrap();
    wait_eq(&u, Stream::Stdout, "through a file");
    let held = files();
    assert_eq!(held.len(), 1, "the client should hold one socket file in $TMPDIR: {held:?}");
    assert!(held[0].starts_with(&format!("sockflow-{}-", u.pid())) && held[0].ends_with(".sock"), "{held:?}");
    let meta = std::fs::symlink_metadata(tmp.0.join(&held[0])).unwrap();
    assert!(std::os::unix::fs::FileTypeExt::is_socket(&meta.file_type()), "{held:?} is not a socket");
    u.write_stdin(b"quit\n").unwrap();
    exits_with(&mut u, 0);
    assert!(files().is_empty(), "udp_client left {:?} behind", files());
    let mut p = client("prim_udp_client", Input::Bytes(b"one\n".to_vec()));
    exits_with(&mut p, 0);
    assert!(files().is_empty(), "prim_udp_client left {:?} behind", files());
    stop(&mut srv, libc::SIGTERM);
}
