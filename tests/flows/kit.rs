//! Helpers shared by the flow tests (`tests/flows*.rs`), on top of the
//! common harness: the examples by name, servers started on port 0 and
//! their readiness line, plain Rust clients with bounded timeouts, and the
//! ports of programs that print none (the tutorial's C servers), read from
//! `/proc`.
#![allow(dead_code)]

use crate::common::*;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// One of the C (`tcp_server`) or C++ (`udp_server_cpp`) examples, built
/// (once per test process) with the given linking.
pub fn example(name: &str, link: Link) -> PathBuf {
    match name.strip_suffix("_cpp") {
        Some(stem) => build_cpp(stem, link),
        None => build_c(name, link),
    }
}

/// Both ways of linking, for tests that run a pairing under each.
pub const LINKS: [Link; 2] = [Link::Static, Link::Dynamic];

/// Starts `bin args...` (a sockflow server given port 0) and returns it
/// with the port from its readiness line.
pub fn start(bin: &Path, args: &[&str]) -> (Proc, u16) {
    start_with(bin, args, Input::Null)
}

/// [`start`] with the given stdin.
pub fn start_with(bin: &Path, args: &[&str], input: impl Into<Input>) -> (Proc, u16) {
    let p = spawn(bin, args, input);
    let port = p.wait_listening();
    assert_ne!(port, 0, "a server asked for port 0 must report the port it got\n{}", p.transcript());
    (p, port)
}

/// Starts the example `name` on 127.0.0.1, port 0, options first, and
/// returns it with its port (after checking the whole readiness line).
pub fn server(name: &str, link: Link, opts: &[&str]) -> (Proc, u16) {
    let mut args = opts.to_vec();
    args.extend(["127.0.0.1", "0"]);
    let (p, port) = start(&example(name, link), &args);
    let udp = name.starts_with("udp") || name == "heartbeat_monitor";
    let want = format!("{name}: listening on 127.0.0.1 port {port}{}", if udp { " (udp)" } else { "" });
    assert!(p.stderr_text().lines().any(|l| l == want), "expected the readiness line {want:?}\n{}", p.transcript());
    (p, port)
}

/// Runs an example client `name opts... 127.0.0.1 port` with `input`.
pub fn client(name: &str, link: Link, opts: &[&str], port: u16, input: impl Into<Input>) -> Proc {
    let port = port.to_string();
    let mut args = opts.to_vec();
    args.extend(["127.0.0.1", port.as_str()]);
    spawn(example(name, link), &args, input)
}

/// Waits for the child to exit (default timeout) and checks the status.
#[track_caller]
pub fn exits_with(p: &mut Proc, code: i32) {
    let st = p.wait_exit(default_timeout());
    assert_exit(p, st, code);
}

/// Sends `sig` and waits for exit status 0 (the servers' graceful stop).
#[track_caller]
pub fn stop(p: &mut Proc, sig: i32) {
    p.signal(sig);
    exits_with(p, 0);
}

/// Waits until `stream` has a line exactly equal to `want` (lines before
/// it are skipped, and consumed).
#[track_caller]
pub fn wait_eq(p: &Proc, stream: Stream, want: &str) -> String {
    p.wait_for_line_matching(stream, |l| l == want, &format!("the line {want:?}"), default_timeout())
}

/// Waits for the next line of `stream` (consumed) and returns it.
#[track_caller]
pub fn next_line(p: &Proc, stream: Stream) -> String {
    p.wait_for_line_matching(stream, |_| true, "one more line", default_timeout())
}

/// The lines of `text` (without their newlines).
pub fn lines(text: &str) -> Vec<&str> {
    text.lines().collect()
}

/// The port N of `client ip = 127.0.0.1 port = N` (or any `port = N`).
pub fn port_eq(line: &str) -> u16 {
    let at = line.rfind("port = ").unwrap_or_else(|| panic!("no \"port = \" in {line:?}"));
    let digits: String = line[at + 7..].chars().take_while(|c| c.is_ascii_digit()).collect();
    digits.parse().unwrap_or_else(|_| panic!("no port number in {line:?}"))
}

/// A TCP connection to 127.0.0.1:`port` with 10 s (scaled) timeouts both ways.
pub fn connect(port: u16) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", port)).unwrap_or_else(|e| panic!("connect 127.0.0.1:{port}: {e}"));
    s.set_read_timeout(Some(default_timeout())).unwrap();
    s.set_write_timeout(Some(default_timeout())).unwrap();
    s
}

/// Sends `data` on a new connection to `port` while reading as many bytes
/// back (on another thread, so neither side waits on the other's buffer).
pub fn round_trip(port: u16, data: &[u8]) -> Vec<u8> {
    let s = connect(port);
    let mut r = s.try_clone().unwrap();
    let n = data.len();
    let reader = std::thread::spawn(move || {
        let mut got = vec![0u8; n];
        r.read_exact(&mut got).map(|_| got)
    });
    (&s).write_all(data).unwrap();
    reader.join().unwrap().unwrap()
}

/// Reads one `\n`-terminated line (without it) from a buffered reader.
#[track_caller]
pub fn read_line(r: &mut impl BufRead) -> String {
    let mut l = String::new();
    let n = r.read_line(&mut l).unwrap_or_else(|e| panic!("reading a line: {e}"));
    assert!(n > 0 && l.ends_with('\n'), "expected a line, got end of stream after {l:?}");
    l.pop();
    l
}

/// Sends `msg` and a newline on `s`, then reads the echoed line back.
#[track_caller]
pub fn echo_roundtrip(port: u16, msg: &str) {
    let s = connect(port);
    (&s).write_all(format!("{msg}\n").as_bytes()).unwrap();
    let mut r = BufReader::new(&s);
    assert_eq!(read_line(&mut r), msg, "echo of {msg:?}");
}

/// Reads until end of stream; panics on an error (a reset) or the timeout.
#[track_caller]
pub fn read_to_eof(s: &mut TcpStream) -> Vec<u8> {
    let mut v = Vec::new();
    s.read_to_end(&mut v).unwrap_or_else(|e| panic!("expected a clean end of stream, got {e} after {} bytes", v.len()));
    v
}

/// Closes `s` with a reset (SO_LINGER on with a zero timeout, then close).
pub fn reset(s: TcpStream) {
    use std::os::fd::AsRawFd;
    let lg = libc::linger { l_onoff: 1, l_linger: 0 };
    // SAFETY: setsockopt on a descriptor we own, with a correctly sized linger struct.
    let rc = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&lg as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0, "setsockopt SO_LINGER: {}", std::io::Error::last_os_error());
    drop(s);
}

/// `prog` from PATH, or None after printing a note that the test skips it.
pub fn tool(prog: &str) -> Option<PathBuf> {
    let p = which(prog);
    if p.is_none() {
        eprintln!("note: {prog} not found in PATH: skipping this test");
    }
    p
}

/// The Python peers script.
pub fn peers_script() -> PathBuf {
    root().join("tests/peers/tutorial_peers.py")
}

/// Protocol of a socket looked up in `/proc/net`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Proto {
    Tcp,
    Udp,
}

/// The inodes of the sockets process `pid` holds.
fn socket_inodes(pid: u32) -> Vec<u64> {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fd")) else { return Vec::new() };
    dir.filter_map(|e| {
        let target = std::fs::read_link(e.ok()?.path()).ok()?;
        let t = target.to_str()?;
        t.strip_prefix("socket:[")?.strip_suffix(']')?.parse().ok()
    })
    .collect()
}

/// Rows of `/proc/net/{tcp,tcp6}` (or udp): (local port, state, inode).
fn proc_net(proto: Proto) -> Vec<(u16, u8, u64)> {
    let files = match proto {
        Proto::Tcp => ["/proc/net/tcp", "/proc/net/tcp6"],
        Proto::Udp => ["/proc/net/udp", "/proc/net/udp6"],
    };
    let mut rows = Vec::new();
    for f in files {
        let Ok(text) = std::fs::read_to_string(f) else { continue };
        for l in text.lines().skip(1) {
            let cols: Vec<&str> = l.split_whitespace().collect();
            if cols.len() < 10 {
                continue;
            }
            let port = cols[1].rsplit(':').next().and_then(|p| u16::from_str_radix(p, 16).ok());
            let state = u8::from_str_radix(cols[3], 16).ok();
            let inode = cols[9].parse().ok();
            if let (Some(port), Some(state), Some(inode)) = (port, state, inode) {
                rows.push((port, state, inode));
            }
        }
    }
    rows
}

const TCP_LISTEN: u8 = 0x0A;
const TCP_TIME_WAIT: u8 = 0x06;

/// The port a program that prints none (e.g. the tutorial's servers run
/// with port 0) is bound to: its TCP socket in LISTEN or its bound UDP
/// socket, found through `/proc`. Waits (bounded) until there is one.
pub fn bound_port(p: &mut Proc, proto: Proto) -> u16 {
    let deadline = Instant::now() + default_timeout();
    loop {
        let inodes = socket_inodes(p.pid());
        let found = proc_net(proto)
            .into_iter()
            .find(|&(port, state, inode)| inodes.contains(&inode) && port != 0 && (proto == Proto::Udp || state == TCP_LISTEN));
        if let Some((port, _, _)) = found {
            return port;
        }
        if let Some(st) = p.try_status() {
            panic!("{} exited ({}) before binding a port\n{}", p.name(), describe(st), p.transcript());
        }
        assert!(Instant::now() < deadline, "{} bound no {proto:?} port in time\n{}", p.name(), p.transcript());
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Whether a TCP socket on local port `port` is in TIME_WAIT.
pub fn has_time_wait(port: u16) -> bool {
    proc_net(Proto::Tcp).iter().any(|&(p, state, _)| p == port && state == TCP_TIME_WAIT)
}

/// Waits (bounded) until `cond` holds; false if it never did.
pub fn eventually(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Runs `bin args...` with its stdout going to a fresh file instead of the
/// capture (for byte-exact checks of binary output; stderr is still
/// captured, so a server's readiness line still works). `sh` execs the
/// program, so the PID is the program's.
pub fn spawn_to_file(bin: &Path, args: &[&str], input: impl Into<Input>) -> (Proc, PathBuf) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    let stem = bin.file_name().unwrap().to_string_lossy().into_owned();
    let out = tmp_dir("flows-out").join(format!("{stem}-{}-{}.out", std::process::id(), N.fetch_add(1, Ordering::Relaxed)));
    let mut cmd = std::process::Command::new("sh");
    cmd.arg("-c").arg("exec \"$0\" \"$@\" > \"$SOCKFLOW_FLOWS_OUT\"").arg(bin).args(args).env("SOCKFLOW_FLOWS_OUT", &out);
    (spawn_cmd(cmd, input), out)
}

/// The bytes written to `path` so far (empty if it does not exist yet).
pub fn file_bytes(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_default()
}

/// Shows bytes for assertion messages: printable ASCII as is, the rest
/// escaped, long runs elided.
pub fn show(b: &[u8]) -> String {
    let s: String = b.escape_ascii().to_string();
    if s.len() > 400 {
        format!("{}...({} bytes)...{}", &s[..200], b.len(), &s[s.len() - 200..])
    } else {
        s
    }
}

/// Asserts two byte strings are equal, showing them escaped.
#[track_caller]
pub fn assert_bytes(got: &[u8], want: &[u8], what: &str) {
    assert!(got == want, "{what}: bytes differ\n  got:  {}\n  want: {}", show(got), show(want));
}

/// How many established TCP connections process `pid` holds.
pub fn established_count(pid: u32) -> usize {
    const TCP_ESTABLISHED: u8 = 0x01;
    let inodes = socket_inodes(pid);
    proc_net(Proto::Tcp).iter().filter(|&&(_, state, inode)| state == TCP_ESTABLISHED && inodes.contains(&inode)).count()
}
