//! Building every program the bench runs, in this run: sockflow's example
//! programs linked statically against the release `libsockflow.a` that
//! `cargo bench` just built, and the hand-written C baselines in
//! `benches/baseline/` (gcc -O2). libuv's baseline is built only when its
//! headers are installed; otherwise it is skipped with a note.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The echo server implementations compared.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Impl {
    /// `c_examples/echo_server.c` / `udp_echo_server.c` on libsockflow.a.
    Sockflow,
    /// `benches/baseline/epoll_echo.c` (TCP) / `udp_echo.c` (UDP): the
    /// hand-written single-threaded C servers; the baseline of every ratio.
    Epoll,
    /// `benches/baseline/thread_echo.c`: one blocking thread per client.
    Threads,
    /// `benches/baseline/uv_echo.c`: libuv's echo example.
    Libuv,
}

/// Every implementation, in table and run order.
pub const IMPLS: [Impl; 4] = [Impl::Sockflow, Impl::Epoll, Impl::Threads, Impl::Libuv];

impl Impl {
    pub fn name(self) -> &'static str {
        match self {
            Impl::Sockflow => "sockflow",
            Impl::Epoll => "epoll C",
            Impl::Threads => "threads C",
            Impl::Libuv => "libuv",
        }
    }

    /// The key of this implementation in the `BENCH` lines.
    pub fn key(self) -> &'static str {
        match self {
            Impl::Sockflow => "sockflow",
            Impl::Epoll => "baseline",
            Impl::Threads => "threads",
            Impl::Libuv => "libuv",
        }
    }

    pub fn index(self) -> usize {
        IMPLS.iter().position(|&i| i == self).expect("listed")
    }
}

/// What a server speaks.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Mode {
    /// TCP, echoing complete `\n`-terminated lines.
    Line,
    /// TCP, echoing bytes as they come.
    Raw,
    /// UDP, echoing each datagram to its sender.
    Udp,
}

/// The built programs.
pub struct Bins {
    sockflow_tcp: PathBuf,
    /// `benches/sockflow/many_echo.c`: echo_server with `max_conns` raised
    /// past its default 10,000 (for `idle_100k`).
    pub sockflow_many: PathBuf,
    sockflow_udp: PathBuf,
    epoll: PathBuf,
    udp_c: PathBuf,
    threads: PathBuf,
    libuv: Result<PathBuf, String>,
    pub tcp_client: PathBuf,
    pub hand_client: PathBuf,
    /// Whether echo_server takes `--workers N` (see `scenarios::load::workers`).
    pub sockflow_workers: bool,
    /// How each program was compiled, for the record.
    pub commands: Vec<String>,
}

impl Bins {
    /// The command line that starts `imp` in `mode` on any free port, or why
    /// there is none (no UDP flavour of a TCP-only baseline, libuv missing).
    /// `workers`: sockflow's `--workers N`, when its example has it.
    pub fn server(&self, imp: Impl, mode: Mode, workers: Option<u32>) -> Result<(PathBuf, Vec<String>), String> {
        let c_server = |p: &Path, m: Mode| {
            let mut a: Vec<String> = if m == Mode::Raw { vec!["--raw".into()] } else { vec![] };
            a.push("0".into());
            (p.to_path_buf(), a)
        };
        match (imp, mode) {
            (Impl::Sockflow, Mode::Udp) => Ok((self.sockflow_udp.clone(), vec!["0".into()])),
            (Impl::Sockflow, m) => {
                let frame = if m == Mode::Line { "line" } else { "raw" };
                let mut a = sockflow_tcp_args(frame);
                if let Some(n) = workers {
                    a.extend(["--workers".to_string(), n.to_string()]);
                }
                a.push("0".into());
                Ok((self.sockflow_tcp.clone(), a))
            }
            (Impl::Epoll, Mode::Udp) => Ok((self.udp_c.clone(), vec!["0".into()])),
            (Impl::Epoll, m) => Ok(c_server(&self.epoll, m)),
            (Impl::Threads, Mode::Udp) | (Impl::Libuv, Mode::Udp) => Err("TCP only".into()),
            (Impl::Threads, m) => Ok(c_server(&self.threads, m)),
            (Impl::Libuv, m) => self.libuv.as_ref().map(|p| c_server(p, m)).map_err(Clone::clone),
        }
    }

    /// Why libuv is not in this run, if it is not.
    pub fn libuv_note(&self) -> Option<&str> {
        self.libuv.as_ref().err().map(String::as_str)
    }
}

/// echo_server's options for `frame`, port last. Every bench connection
/// comes from a 127.x address: the per-address cap (default 256) is lifted.
pub fn sockflow_tcp_args(frame: &str) -> Vec<String> {
    ["--frame", frame, "--max-per-ip", "1000000"].map(String::from).to_vec()
}

/// Where cargo put `libsockflow.a` for this (release) build: next to the
/// bench executable (`target/release/deps`) or its parent.
fn find_static_lib() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let deps = exe.parent().expect("bench executable has a directory").to_path_buf();
    for d in [Some(deps.as_path()), deps.parent()].into_iter().flatten() {
        let a = d.join("libsockflow.a");
        if a.is_file() {
            return a;
        }
    }
    panic!("libsockflow.a not found next to {} (is crate-type staticlib?)", exe.display())
}

fn show(cmd: &Command) -> String {
    let args: Vec<String> = cmd.get_args().map(|a| a.to_string_lossy().into_owned()).collect();
    format!("{} {}", cmd.get_program().to_string_lossy(), args.join(" "))
}

/// Runs a compiler; the error output if it failed.
fn try_cc(cmd: &mut Command) -> Result<(), String> {
    let out = cmd.output().map_err(|e| format!("cannot run {}: {e}", show(cmd)))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("{} failed ({}):\n{}", show(cmd), out.status, String::from_utf8_lossy(&out.stderr)))
    }
}

/// Compiles every program into `$CARGO_TARGET_TMPDIR/echo-bench`. The
/// static library is copied first, so a concurrent `cargo build` cannot
/// change it under the linker. Panics when a required program does not
/// build (the bench cannot run without it).
pub fn build() -> Bins {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("echo-bench");
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
    let lib = dir.join(format!("libsockflow.{}.a", std::process::id()));
    std::fs::copy(find_static_lib(), &lib).unwrap_or_else(|e| panic!("copy libsockflow.a: {e}"));
    let cc = std::env::var("CC").unwrap_or_else(|_| "gcc".into());
    let mut commands = Vec::new();
    let mut compile = |src: &str, out: &str, sockflow: bool, libs: &[&str]| -> Result<PathBuf, String> {
        let exe = dir.join(out);
        let mut cmd = Command::new(&cc);
        cmd.args(["-O2", "-std=c99"]);
        if sockflow {
            cmd.arg("-I").arg(root.join("include")).arg(root.join(src)).arg(&lib);
            cmd.args("-lgcc_s -lutil -lrt -lpthread -lm -ldl -lc".split(' '));
        } else {
            cmd.args(["-Wall", "-Wextra", "-Werror"]).arg(root.join(src));
            cmd.args(libs);
        }
        cmd.arg("-o").arg(&exe);
        try_cc(&mut cmd)?;
        // Shown relative to the repository, the library as what it is a
        // copy of.
        let shown = show(&cmd).replace(&lib.display().to_string(), "target/release/libsockflow.a");
        commands.push(shown.replace(&format!("{}/", root.display()), "").replace(&format!("{}/", dir.display()), ""));
        Ok(exe)
    };
    let must = |r: Result<PathBuf, String>| r.unwrap_or_else(|e| panic!("{e}"));
    let sockflow_tcp = must(compile("c_examples/echo_server.c", "sockflow_echo_server", true, &[]));
    let sockflow_many = must(compile("benches/sockflow/many_echo.c", "sockflow_many_echo", true, &[]));
    let sockflow_udp = must(compile("c_examples/udp_echo_server.c", "sockflow_udp_echo_server", true, &[]));
    let tcp_client = must(compile("c_examples/tcp_client.c", "sockflow_tcp_client", true, &[]));
    let epoll = must(compile("benches/baseline/epoll_echo.c", "epoll_echo", false, &[]));
    let udp_c = must(compile("benches/baseline/udp_echo.c", "udp_echo", false, &[]));
    let threads = must(compile("benches/baseline/thread_echo.c", "thread_echo", false, &["-lpthread"]));
    let hand_client = must(compile("benches/baseline/hand_client.c", "hand_client", false, &[]));
    let libuv = compile("benches/baseline/uv_echo.c", "uv_echo", false, &["-luv"]).map_err(|e| {
        let first = e.lines().find(|l| l.contains("uv.h") || l.contains("-luv")).unwrap_or("does not compile");
        format!("libuv baseline skipped: benches/baseline/uv_echo.c did not build ({}); install libuv1-dev", first.trim())
    });
    let _ = std::fs::remove_file(&lib);
    let sockflow_workers = Command::new(&sockflow_tcp)
        .arg("--help")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains("--workers") || String::from_utf8_lossy(&o.stderr).contains("--workers"))
        .unwrap_or(false);
    Bins { sockflow_tcp, sockflow_many, sockflow_udp, epoll, udp_c, threads, libuv, tcp_client, hand_client, sockflow_workers, commands }
}
