//! The stdin client flow: `c_examples/tcp_client` (sockflow_tcp_client_run)
//! fed a file of 100,000 64-byte lines, against `benches/baseline/hand_client`
//! (the same calls written by hand), both talking to a fresh epoll C line
//! echo server, runs interleaved. Measured: the client's wall time (spawn to
//! exit, once the server closed after the last echo) and its CPU time
//! (wait4's rusage). The output must be the input, byte for byte in length.

use super::Ctx;
use crate::binaries::{Impl, Mode};
use crate::report::{self, Better, Row, Target, Unit};
use crate::server::Server;
use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const LINES: usize = 100_000;
/// Runs per client per round (see `run`).
const RUNS_PER_ROUND: usize = 5;
/// Longest a client may take before it is killed (and the run fails).
const CLIENT_LIMIT: Duration = Duration::from_secs(60);

struct Ran {
    wall_ms: f64,
    cpu_ms: f64,
}

/// Runs `exe host port < input > output`, waiting at most `CLIENT_LIMIT`.
fn run_client(exe: &Path, server: &Server, input: &Path, output: &Path) -> Result<Ran, String> {
    let stdin = File::open(input).map_err(|e| format!("open {}: {e}", input.display()))?;
    let stdout = File::create(output).map_err(|e| format!("create {}: {e}", output.display()))?;
    let t = Instant::now();
    let mut child = Command::new(exe)
        .args(["127.0.0.1", &server.port().to_string()])
        .stdin(stdin)
        .stdout(stdout)
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("start {}: {e}", exe.display()))?;
    let pid = child.id() as libc::pid_t;
    // Woken the moment the child exits (a pidfd polls readable then), not
    // by polling its status: these runs last about 10 ms, so a 2 ms poll
    // step was a fifth of the figure. The child stays unreaped (and its PID
    // ours) until wait4 below.
    // SAFETY: pidfd_open on our own unreaped child; the descriptor is
    // closed by OwnedFd.
    let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if pidfd >= 0 {
        let pidfd = unsafe { OwnedFd::from_raw_fd(pidfd as i32) };
        let mut p = libc::pollfd { fd: pidfd.as_raw_fd(), events: libc::POLLIN, revents: 0 };
        let ms = CLIENT_LIMIT.as_millis() as i32;
        // SAFETY: poll on one pollfd we own. Interrupted: again; another
        // failure or the time limit: the loop below decides.
        while unsafe { libc::poll(&mut p, 1, ms) } < 0 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {}
    }
    loop {
        let mut status = 0;
        // SAFETY: wait4 on our own child, filling locals.
        let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
        let r = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut ru) };
        if r == pid {
            let wall_ms = t.elapsed().as_secs_f64() * 1e3;
            let tv = |x: libc::timeval| x.tv_sec as f64 * 1e3 + x.tv_usec as f64 / 1e3;
            if !libc::WIFEXITED(status) || libc::WEXITSTATUS(status) != 0 {
                return Err(format!("{} ended with status {status:#x}", exe.display()));
            }
            return Ok(Ran { wall_ms, cpu_ms: tv(ru.ru_utime) + tv(ru.ru_stime) });
        }
        if r < 0 {
            return Err(format!("wait4: {}", std::io::Error::last_os_error()));
        }
        if t.elapsed() > CLIENT_LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("{} still running after {CLIENT_LIMIT:?}: killed", exe.display()));
        }
        // Without a pidfd (an old kernel), or woken early: check again soon.
        std::thread::sleep(Duration::from_millis(2));
    }
}

pub fn run(ctx: &mut Ctx<'_>) -> Vec<Row> {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("echo-bench");
    let input = dir.join("client-input.txt");
    let data = crate::gen::lines(64, LINES);
    std::fs::write(&input, &data).unwrap_or_else(|e| panic!("write {}: {e}", input.display()));
    let output = dir.join(format!("client-output.{}.txt", std::process::id()));
    let label = "stdin client, 100,000 lines";
    let mut wall = Row::new("client", label, "wall time", "wall_ms", Unit::Millis, Better::Lower, Target::None);
    let mut cpu = Row::new("client", label, "client CPU", "cpu_ms", Unit::Millis, Better::Lower, Target::None);
    // The tcp_client goes in the sockflow column, the hand-written client in
    // the baseline column.
    let clients = [(Impl::Sockflow, "tcp_client", &ctx.bins.tcp_client), (Impl::Epoll, "hand_client", &ctx.bins.hand_client)];
    for round in 1..=ctx.cfg.rounds {
        // A run is about 10 ms: each round's figure is the median of a few,
        // the two clients alternating.
        let mut runs: [Vec<Ran>; 2] = [Vec::new(), Vec::new()];
        let mut failed = [false; 2];
        for _ in 0..RUNS_PER_ROUND {
            for (i, (_, name, exe)) in clients.iter().enumerate() {
                if failed[i] {
                    continue;
                }
                let server = Server::start(ctx.bins, Impl::Epoll, Mode::Line, None);
                let ran = run_client(exe, &server, &input, &output);
                drop(server);
                let got = std::fs::metadata(&output).map(|m| m.len()).unwrap_or(0);
                match ran.and_then(|r| {
                    if got == data.len() as u64 {
                        Ok(r)
                    } else {
                        Err(format!("printed {got} bytes for {} sent", data.len()))
                    }
                }) {
                    Ok(r) => runs[i].push(r),
                    Err(e) => {
                        eprintln!("    WARNING (client {name}): {e}");
                        ctx.note(format!("client {name}: {e} (round {round})"));
                        failed[i] = true;
                    }
                }
            }
        }
        for (i, (imp, name, _)) in clients.iter().enumerate() {
            let (w, c) = if failed[i] {
                (f64::NAN, f64::NAN)
            } else {
                (
                    report::median(&runs[i].iter().map(|r| r.wall_ms).collect::<Vec<_>>()),
                    report::median(&runs[i].iter().map(|r| r.cpu_ms).collect::<Vec<_>>()),
                )
            };
            eprintln!("  client round {round} {name:<11}: wall {w:.1} ms, CPU {c:.1} ms (median of {RUNS_PER_ROUND} runs)");
            wall.push(*imp, w);
            cpu.push(*imp, c);
        }
    }
    let _ = std::fs::remove_file(&output);
    ctx.note(
        "client: the sockflow column is c_examples/tcp_client, the baseline column benches/baseline/hand_client.c, both against epoll C",
    );
    vec![wall, cpu]
}
