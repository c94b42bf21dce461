//! Shared harness for the integration tests: builds C/C++ programs against
//! the library the test run just built, runs them as child processes and
//! waits on their output, with a timeout on every wait.
//!
//! * [`lib_dir`], [`link_dir`], [`native_static_libs`]: where
//!   `libsockflow.{a,so}` are and how to link them.
//! * [`CProgram`] (or the shortcuts [`build_c`], [`build_cpp`]): compiles
//!   `c_examples/<name>.c` (or any path) with the `cc` crate at
//!   `-std=c99 -Wall -Wextra -Werror -pedantic` (C++: `-std=c++17`), gcc or
//!   clang, linked statically or dynamically. Each distinct build happens once
//!   per test process, even when tests ask for it concurrently.
//! * [`CProgram::sanitized`]: the same build with ASan and UBSan
//!   ([`SANITIZE_FLAGS`], run under [`SANITIZE_ENV`]).
//! * [`spawn`] / [`Proc`]: a child whose stdout and stderr are collected by
//!   background threads; [`Proc::wait_for_line`], [`Proc::wait_listening`]
//!   (the port of a server's `... listening on HOST port N` line),
//!   [`Proc::wait_exit`]. Dropping a `Proc` kills the child (by PID) and reaps it.
//!
//! Environment knobs: `SOCKFLOW_TEST_WRAPPER` runs every spawned program under
//! a wrapper (e.g. `valgrind -q --error-exitcode=99`), which also multiplies
//! every timeout by 10 (override with `SOCKFLOW_TEST_TIMEOUT_SCALE`).
//! `CFLAGS`/`CXXFLAGS` are honoured by the `cc` crate.
#![allow(dead_code)]

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fmt;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::{Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------
// Paths and link settings
// ---------------------------------------------------------------------------

/// The crate root (where `Cargo.toml`, `include/` and `c_examples/` are).
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The committed header's directory (`-I` for every build).
pub fn include_dir() -> PathBuf {
    root().join("include")
}

/// Scratch space of this package's integration tests (created on demand).
pub fn tmp_dir(sub: &str) -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(sub);
    std::fs::create_dir_all(&d).unwrap_or_else(|e| panic!("create {}: {e}", d.display()));
    d
}

/// Where `cargo test` put `libsockflow.so` and `libsockflow.a`: next to the
/// test executable (`target/<profile>/deps`) or, failing that, its parent.
pub fn lib_dir() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let exe = std::env::current_exe().expect("current_exe");
        let deps = exe.parent().expect("test executable has a directory").to_path_buf();
        let mut tried = Vec::new();
        for d in [Some(deps.as_path()), deps.parent()].into_iter().flatten() {
            if d.join("libsockflow.a").is_file() && d.join("libsockflow.so").is_file() {
                return d.to_path_buf();
            }
            tried.push(d.display().to_string());
        }
        panic!("libsockflow.a/libsockflow.so not found in {tried:?} (is crate-type cdylib+staticlib?)")
    })
    .clone()
}

/// The shared library's soname, `libsockflow.so.0.<minor>` before 1.0 and
/// `libsockflow.so.<major>` after (the rule build.rs applies).
pub fn soname() -> String {
    let major = env!("CARGO_PKG_VERSION_MAJOR");
    let minor = env!("CARGO_PKG_VERSION_MINOR");
    if major == "0" {
        format!("libsockflow.so.0.{minor}")
    } else {
        format!("libsockflow.so.{major}")
    }
}

/// A snapshot of the library for linking: `libsockflow.a`, `libsockflow.so`
/// and the soname link `libsockflow.so.<sover>` -> `libsockflow.so`, copied
/// from [`lib_dir`] once per test process into
/// `$CARGO_TARGET_TMPDIR/sockflow-lib`. Programs record the soname as NEEDED
/// and cargo writes only `libsockflow.so`, hence the link; the copy keeps
/// programs working while another cargo command rebuilds `target/`. Files
/// are replaced by rename, so concurrent test processes are fine.
pub fn link_dir() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tmp_dir("sockflow-lib");
        let src = lib_dir();
        let pid = std::process::id();
        for name in ["libsockflow.a", "libsockflow.so"] {
            let tmp = dir.join(format!(".{name}.{pid}"));
            std::fs::copy(src.join(name), &tmp).unwrap_or_else(|e| panic!("copy {name} to {}: {e}", tmp.display()));
            std::fs::rename(&tmp, dir.join(name)).unwrap_or_else(|e| panic!("rename {}: {e}", tmp.display()));
        }
        let tmp = dir.join(format!(".soname.{pid}"));
        let _ = std::fs::remove_file(&tmp);
        std::os::unix::fs::symlink("libsockflow.so", &tmp).unwrap_or_else(|e| panic!("symlink {}: {e}", tmp.display()));
        std::fs::rename(&tmp, dir.join(soname())).unwrap_or_else(|e| panic!("rename {}: {e}", tmp.display()));
        dir
    })
    .clone()
}

/// The system libraries a program linking `libsockflow.a` also needs, as
/// `rustc --print native-static-libs` reports them for a staticlib (computed
/// once per process from an empty crate: sockflow's own dependencies add no
/// native libraries beyond libc). Falls back to the list rustc 1.95 prints on
/// Linux/glibc if rustc cannot be run.
pub fn native_static_libs() -> Vec<String> {
    static LIBS: OnceLock<Vec<String>> = OnceLock::new();
    LIBS.get_or_init(|| {
        const FALLBACK: &str = "-lgcc_s -lutil -lrt -lpthread -lm -ldl -lc";
        let probe = || -> Option<String> {
            let dir = tmp_dir("native-static-libs");
            let src = dir.join(format!("probe{}.rs", std::process::id()));
            let lib = dir.join(format!("libnslprobe{}.a", std::process::id()));
            std::fs::write(&src, "").ok()?;
            let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
            let out = Command::new(rustc)
                .args(["--crate-type", "staticlib", "--crate-name", "nslprobe", "--print", "native-static-libs", "--target"])
                .arg(env!("SOCKFLOW_TARGET"))
                .arg("-o")
                .arg(&lib)
                .arg(&src)
                .output();
            // Only rustc's report is wanted: the archive (about 21 MB, the
            // standard library) kept per test process filled the disk.
            let _ = std::fs::remove_file(&lib);
            let _ = std::fs::remove_file(&src);
            let out = out.ok()?;
            let text = String::from_utf8_lossy(&out.stderr).into_owned();
            text.lines().find_map(|l| l.split_once("native-static-libs:").map(|(_, libs)| libs.trim().to_string()))
        };
        probe().unwrap_or_else(|| FALLBACK.into()).split_whitespace().map(String::from).collect()
    })
    .clone()
}

/// `prog` found in `PATH` (like `which`).
pub fn which(prog: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join(prog)).find(|p| {
        use std::os::unix::fs::PermissionsExt;
        p.metadata().map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0).unwrap_or(false)
    })
}

/// Whether `::1` can be bound here (containers often lack IPv6 loopback).
pub fn has_ipv6_loopback() -> bool {
    static V6: OnceLock<bool> = OnceLock::new();
    *V6.get_or_init(|| std::net::TcpListener::bind("[::1]:0").is_ok())
}

// ---------------------------------------------------------------------------
// Building C and C++ programs
// ---------------------------------------------------------------------------

/// How a program links the library.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Link {
    /// `libsockflow.a` (by path) plus [`native_static_libs`].
    Static,
    /// `-L<dir> -lsockflow -Wl,-rpath,<dir>` (see [`link_dir`]).
    Dynamic,
}

/// Source language.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Lang {
    /// C99.
    C,
    /// C++17.
    Cpp,
}

/// Which compiler family builds the program.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Compiler {
    /// gcc / g++.
    Gcc,
    /// clang / clang++ (optional: check [`Compiler::available`]).
    Clang,
}

impl Compiler {
    /// The driver for `lang`.
    pub fn program(self, lang: Lang) -> &'static str {
        match (self, lang) {
            (Compiler::Gcc, Lang::C) => "gcc",
            (Compiler::Gcc, Lang::Cpp) => "g++",
            (Compiler::Clang, Lang::C) => "clang",
            (Compiler::Clang, Lang::Cpp) => "clang++",
        }
    }

    /// Whether the driver for `lang` is installed.
    pub fn available(self, lang: Lang) -> bool {
        which(self.program(lang)).is_some()
    }

    /// gcc, plus clang when installed (for `lang`); prints a note when clang is skipped.
    pub fn all(lang: Lang) -> Vec<Compiler> {
        let mut v = vec![Compiler::Gcc];
        if Compiler::Clang.available(lang) {
            v.push(Compiler::Clang);
        } else {
            eprintln!("note: {} not found, testing with gcc only", Compiler::Clang.program(lang));
        }
        v
    }
}

impl fmt::Display for Compiler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Compiler::Gcc => "gcc",
            Compiler::Clang => "clang",
        })
    }
}

impl fmt::Display for Link {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Link::Static => "static",
            Link::Dynamic => "dynamic",
        })
    }
}

/// One program to build. `CProgram::new("prim_tcp_server")` means
/// `c_examples/prim_tcp_server.c`; a path with a `/` is used as it is.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CProgram {
    sources: Vec<PathBuf>,
    lang: Lang,
    compiler: Compiler,
    link: Link,
    flags: Vec<String>,
    name: String,
}

impl CProgram {
    /// A C program from `c_examples/<src>.c` (or the path `src`), gcc, dynamic.
    pub fn new(src: &str) -> CProgram {
        CProgram::with_lang(Lang::C, &[src])
    }

    /// A C++ program from `c_examples/<src>.cpp` (or the path `src`); the
    /// binary is `<stem>_cpp`, as `make` names it.
    pub fn new_cpp(src: &str) -> CProgram {
        CProgram::with_lang(Lang::Cpp, &[src])
    }

    /// A program made of several sources (the first one names it).
    pub fn with_lang(lang: Lang, sources: &[&str]) -> CProgram {
        assert!(!sources.is_empty(), "CProgram needs at least one source");
        let ext = match lang {
            Lang::C => "c",
            Lang::Cpp => "cpp",
        };
        let sources: Vec<PathBuf> = sources
            .iter()
            .map(|s| {
                let p = Path::new(s);
                if s.contains('/') {
                    p.to_path_buf()
                } else if p.extension().is_some() {
                    root().join("c_examples").join(p)
                } else {
                    root().join("c_examples").join(format!("{s}.{ext}"))
                }
            })
            .collect();
        let stem = sources[0].file_stem().unwrap().to_string_lossy().into_owned();
        let name = if lang == Lang::Cpp { format!("{stem}_cpp") } else { stem };
        CProgram { sources, lang, compiler: Compiler::Gcc, link: Link::Dynamic, flags: Vec::new(), name }
    }

    pub fn compiler(mut self, c: Compiler) -> CProgram {
        self.compiler = c;
        self
    }

    pub fn link(mut self, l: Link) -> CProgram {
        self.link = l;
        self
    }

    /// An extra compiler flag (e.g. `-fsanitize=address`).
    pub fn flag(mut self, f: &str) -> CProgram {
        self.flags.push(f.to_string());
        self
    }

    /// Built with AddressSanitizer and UndefinedBehaviorSanitizer (see
    /// [`SANITIZE_FLAGS`]); run it with [`SANITIZE_ENV`] set.
    pub fn sanitized(self) -> CProgram {
        SANITIZE_FLAGS.iter().fold(self, |p, f| p.flag(f))
    }

    /// The binary's file name (default: the first source's stem).
    pub fn name(mut self, n: &str) -> CProgram {
        self.name = n.to_string();
        self
    }

    /// The compiler command with every compile flag set (standard, warnings,
    /// `-I include`, `CFLAGS`), before sources, output and libraries.
    pub fn compiler_command(&self) -> Command {
        let out_dir = tmp_dir("cc-out");
        let mut b = cc::Build::new();
        b.target(env!("SOCKFLOW_TARGET"))
            .host(env!("SOCKFLOW_TARGET"))
            .opt_level(0)
            .debug(true)
            .out_dir(&out_dir)
            .cargo_metadata(false)
            .cargo_warnings(false)
            .cargo_debug(false)
            .emit_rerun_if_env_changed(false)
            .compiler(self.compiler.program(self.lang))
            .cpp(self.lang == Lang::Cpp)
            .std(match self.lang {
                Lang::C => "c99",
                Lang::Cpp => "c++17",
            })
            .warnings(true)
            .extra_warnings(true)
            .flag("-Werror")
            .flag("-pedantic")
            .include(include_dir());
        for f in &self.flags {
            b.flag(f);
        }
        b.get_compiler().to_command()
    }

    /// Compiles and links the program once per test process (concurrent
    /// callers of the same build wait for it) and returns the binary's path:
    /// `$CARGO_TARGET_TMPDIR/c/<name>-<lang>-<compiler>-<link>[-<flags hash>]/<name>`.
    /// Panics with the compiler's output when it fails.
    pub fn build(&self) -> PathBuf {
        type Slot = Arc<OnceLock<Result<PathBuf, String>>>;
        static BUILDS: OnceLock<Mutex<HashMap<CProgram, Slot>>> = OnceLock::new();
        let slot = BUILDS.get_or_init(Default::default).lock().unwrap_or_else(|e| e.into_inner()).entry(self.clone()).or_default().clone();
        match slot.get_or_init(|| self.build_now()) {
            Ok(p) => p.clone(),
            Err(e) => panic!("{e}"),
        }
    }

    fn build_now(&self) -> Result<PathBuf, String> {
        let lang = match self.lang {
            Lang::C => "c",
            Lang::Cpp => "cpp",
        };
        let mut dir = format!("{}-{lang}-{}-{}", self.name, self.compiler, self.link);
        if !self.flags.is_empty() || self.sources.len() > 1 {
            let mut h = DefaultHasher::new();
            (&self.flags, &self.sources).hash(&mut h);
            dir.push_str(&format!("-{:08x}", h.finish() as u32));
        }
        let dir = tmp_dir("c").join(dir);
        std::fs::create_dir_all(&dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
        let bin = dir.join(&self.name);
        // Link to a private name, then rename: other test processes may be
        // running or building the same binary.
        let tmp = dir.join(format!(".{}.{}", self.name, std::process::id()));
        let mut cmd = self.compiler_command();
        cmd.args(&self.sources).arg("-o").arg(&tmp);
        match self.link {
            Link::Static => {
                cmd.arg(link_dir().join("libsockflow.a")).args(native_static_libs());
            }
            Link::Dynamic => {
                let d = link_dir();
                cmd.arg(format!("-L{}", d.display())).arg("-lsockflow").arg(format!("-Wl,-rpath,{}", d.display()));
            }
        }
        let shown = std::iter::once(cmd.get_program()).chain(cmd.get_args()).map(|a| a.to_string_lossy()).collect::<Vec<_>>().join(" ");
        let out = cmd.output().map_err(|e| format!("cannot run the compiler ({shown}): {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "building {} failed ({}):\n{shown}\n--- stdout\n{}--- stderr\n{}",
                self.name,
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        std::fs::rename(&tmp, &bin).map_err(|e| format!("rename {}: {e}", tmp.display()))?;
        Ok(bin)
    }
}

/// Compile and link flags of a sanitized build: ASan and UBSan on the C
/// side, undefined behaviour made fatal so that it cannot scroll by.
pub const SANITIZE_FLAGS: [&str; 3] = ["-fsanitize=address,undefined", "-fno-omit-frame-pointer", "-fno-sanitize-recover=all"];

/// The environment a sanitized program runs with: every report ends the
/// program with a status of its own (ASan 86, UBSan aborts), stacks are
/// printed, and leaks are checked at exit.
pub const SANITIZE_ENV: [(&str, &str); 2] = [
    ("ASAN_OPTIONS", "exitcode=86:detect_leaks=1:abort_on_error=0:halt_on_error=1"),
    ("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1"),
];

/// `c_examples/<src>.c` (or the path `src`) built with gcc, C99.
pub fn build_c(src: &str, link: Link) -> PathBuf {
    CProgram::new(src).link(link).build()
}

/// Like [`build_c`] with the given compiler.
pub fn build_c_with(compiler: Compiler, src: &str, link: Link) -> PathBuf {
    CProgram::new(src).compiler(compiler).link(link).build()
}

/// `c_examples/<src>.cpp` (or the path `src`) built with g++, C++17.
pub fn build_cpp(src: &str, link: Link) -> PathBuf {
    CProgram::new_cpp(src).link(link).build()
}

/// Like [`build_cpp`] with the given compiler.
pub fn build_cpp_with(compiler: Compiler, src: &str, link: Link) -> PathBuf {
    CProgram::new_cpp(src).compiler(compiler).link(link).build()
}

// ---------------------------------------------------------------------------
// Timeouts
// ---------------------------------------------------------------------------

/// Multiplier for every timeout: `SOCKFLOW_TEST_TIMEOUT_SCALE`, else 10
/// under `SOCKFLOW_TEST_WRAPPER`, else 1.
pub fn timeout_scale() -> u32 {
    if let Some(s) = std::env::var("SOCKFLOW_TEST_TIMEOUT_SCALE").ok().and_then(|s| s.parse().ok()) {
        return s;
    }
    if wrapper().is_empty() {
        1
    } else {
        10
    }
}

/// `secs` seconds, scaled by [`timeout_scale`].
pub fn secs(secs: u64) -> Duration {
    Duration::from_secs(secs) * timeout_scale()
}

/// The default time any single wait may take (10 s, scaled).
pub fn default_timeout() -> Duration {
    secs(10)
}

fn wrapper() -> Vec<String> {
    std::env::var("SOCKFLOW_TEST_WRAPPER").map(|w| w.split_whitespace().map(String::from).collect()).unwrap_or_default()
}

// ---------------------------------------------------------------------------
// Child processes
// ---------------------------------------------------------------------------

/// What a child reads on stdin.
pub enum Input {
    /// `/dev/null`.
    Null,
    /// A pipe the test writes with [`Proc::write_stdin`] and closes with
    /// [`Proc::close_stdin`] (or by dropping the `Proc`).
    Piped,
    /// These bytes, written by a background thread, then end of file.
    Bytes(Vec<u8>),
}

impl From<&str> for Input {
    fn from(s: &str) -> Input {
        Input::Bytes(s.as_bytes().to_vec())
    }
}

impl From<&[u8]> for Input {
    fn from(s: &[u8]) -> Input {
        Input::Bytes(s.to_vec())
    }
}

impl From<Vec<u8>> for Input {
    fn from(s: Vec<u8>) -> Input {
        Input::Bytes(s)
    }
}

/// Which output stream of a child.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

#[derive(Default)]
struct CaptureState {
    bytes: Vec<u8>,
    /// Complete lines already returned by `wait_for_line`.
    consumed: usize,
    closed: bool,
}

#[derive(Default)]
struct Capture {
    state: Mutex<CaptureState>,
    cv: Condvar,
}

impl Capture {
    fn lock(&self) -> std::sync::MutexGuard<'_, CaptureState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn reader(self: Arc<Self>, mut r: impl Read + Send + 'static) -> JoinHandle<()> {
        std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            loop {
                match r.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        self.lock().bytes.extend_from_slice(&buf[..n]);
                        self.cv.notify_all();
                    }
                }
            }
            self.lock().closed = true;
            self.cv.notify_all();
        })
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.lock().bytes).into_owned()
    }
}

/// A spawned child process. Dropping it kills the child (SIGKILL, by PID)
/// and reaps it, so a failing test never leaves a server behind.
pub struct Proc {
    name: String,
    child: Child,
    stdin: Option<ChildStdin>,
    out: Arc<Capture>,
    err: Arc<Capture>,
    status: Option<ExitStatus>,
    threads: Vec<JoinHandle<()>>,
}

/// Runs `bin args...` with stdout/stderr captured (under
/// `SOCKFLOW_TEST_WRAPPER` if set).
pub fn spawn(bin: impl AsRef<Path>, args: &[&str], stdin: impl Into<Input>) -> Proc {
    let bin = bin.as_ref();
    let w = wrapper();
    let mut cmd = match w.split_first() {
        Some((first, rest)) => {
            let mut c = Command::new(first);
            c.args(rest).arg(bin);
            c
        }
        None => Command::new(bin),
    };
    cmd.args(args);
    spawn_cmd(cmd, stdin)
}

/// Runs a prepared command (environment, directory, ...) with stdout and
/// stderr captured; stdin as given.
pub fn spawn_cmd(mut cmd: Command, stdin: impl Into<Input>) -> Proc {
    let input = stdin.into();
    let name = {
        let prog = Path::new(cmd.get_program()).file_name().unwrap_or(OsStr::new("?")).to_string_lossy().into_owned();
        let args: Vec<String> = cmd.get_args().map(|a| a.to_string_lossy().into_owned()).collect();
        format!("{prog} {}", args.join(" "))
    };
    cmd.stdin(match input {
        Input::Null => Stdio::null(),
        _ => Stdio::piped(),
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
    let out = Arc::new(Capture::default());
    let err = Arc::new(Capture::default());
    let mut threads = vec![out.clone().reader(child.stdout.take().unwrap()), err.clone().reader(child.stderr.take().unwrap())];
    let mut stdin = child.stdin.take();
    if let Input::Bytes(bytes) = input {
        let mut w = stdin.take().unwrap();
        // A child that exits early gives EPIPE here, which is fine.
        threads.push(std::thread::spawn(move || {
            let _ = w.write_all(&bytes);
        }));
    }
    Proc { name, child, stdin, out, err, status: None, threads }
}

/// Runs a command to completion (bounded by `timeout`) and returns its stdout;
/// panics with both transcripts when it fails or times out.
pub fn run_ok(cmd: Command, timeout: Duration) -> String {
    let mut p = spawn_cmd(cmd, Input::Null);
    let st = p.wait_exit(timeout);
    assert!(st.success(), "{} failed: {st}\n{}", p.name, p.transcript());
    p.stdout_text()
}

impl Proc {
    /// The child's PID.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The command line, for messages.
    pub fn name(&self) -> &str {
        &self.name
    }

    fn capture(&self, s: Stream) -> &Arc<Capture> {
        match s {
            Stream::Stdout => &self.out,
            Stream::Stderr => &self.err,
        }
    }

    /// Writes to a piped stdin (see [`Input::Piped`]). Errors (the child
    /// exited) are returned, not panicked on.
    pub fn write_stdin(&mut self, data: &[u8]) -> std::io::Result<()> {
        let w = self.stdin.as_mut().expect("stdin is not Input::Piped or was closed");
        w.write_all(data)?;
        w.flush()
    }

    /// Closes a piped stdin: the child reads end of file.
    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// Everything the child wrote to stdout so far.
    pub fn stdout_text(&self) -> String {
        self.out.text()
    }

    /// Everything the child wrote to stderr so far.
    pub fn stderr_text(&self) -> String {
        self.err.text()
    }

    /// Both outputs, labelled, for failure messages.
    pub fn transcript(&self) -> String {
        format!("--- {} stdout:\n{}--- {} stderr:\n{}---", self.name, self.stdout_text(), self.name, self.stderr_text())
    }

    /// Waits until `stream` has a line containing `needle` and returns it
    /// (without its newline). Lines are consumed: each call only looks at
    /// the lines after the last one a previous call on that stream returned.
    /// Panics (with the transcript) on timeout or when the stream ends first.
    pub fn wait_for_line(&self, stream: Stream, needle: &str, timeout: Duration) -> String {
        self.wait_for_line_matching(stream, |l| l.contains(needle), &format!("a line containing {needle:?}"), timeout)
    }

    /// Like [`Proc::wait_for_line`] with a predicate; `what` describes it.
    pub fn wait_for_line_matching(&self, stream: Stream, pred: impl Fn(&str) -> bool, what: &str, timeout: Duration) -> String {
        let cap = self.capture(stream);
        let deadline = Instant::now() + timeout;
        let mut st = cap.lock();
        loop {
            let text = String::from_utf8_lossy(&st.bytes).into_owned();
            let mut lines: Vec<&str> = text.split_inclusive('\n').collect();
            if !st.closed && lines.last().is_some_and(|l| !l.ends_with('\n')) {
                lines.pop(); // an incomplete last line may still grow
            }
            for (i, l) in lines.iter().enumerate().skip(st.consumed) {
                let l = l.strip_suffix('\n').unwrap_or(l);
                if pred(l) {
                    st.consumed = i + 1;
                    return l.to_string();
                }
            }
            let now = Instant::now();
            if st.closed || now >= deadline {
                drop(st);
                let why = if now >= deadline { format!("timed out after {timeout:?}") } else { "the stream ended".into() };
                panic!("waiting for {what} on {stream:?} of {}: {why}\n{}", self.name, self.transcript());
            }
            st = cap.cv.wait_timeout(st, deadline - now).unwrap_or_else(|e| e.into_inner()).0;
        }
    }

    /// Waits for a server's readiness line on stderr (`... listening on
    /// HOST port N`) and returns N.
    pub fn wait_listening(&self) -> u16 {
        let l = self.wait_for_line_matching(
            Stream::Stderr,
            |l| l.contains("listening") && parse_port(l).is_some(),
            "a readiness line (\"... listening ... port N\")",
            default_timeout(),
        );
        parse_port(&l).unwrap()
    }

    /// The exit status if the child has exited (without waiting).
    pub fn try_status(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            self.status = self.child.try_wait().unwrap_or_else(|e| panic!("wait {}: {e}", self.name));
        }
        self.status
    }

    /// Waits up to `timeout` for the child to exit, then up to 2 s more for
    /// its output to be read to the end. Panics (killing the child) on timeout.
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        let st = loop {
            if let Some(st) = self.try_status() {
                break st;
            }
            if Instant::now() >= deadline {
                self.kill();
                panic!("{} did not exit within {timeout:?}\n{}", self.name, self.transcript());
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        self.drain(secs(2));
        st
    }

    /// Waits (bounded) until both output readers reached end of file.
    fn drain(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        for cap in [&self.out, &self.err] {
            let mut st = cap.lock();
            while !st.closed {
                let now = Instant::now();
                if now >= deadline {
                    break; // a grandchild keeps the pipe open; what we have is enough
                }
                st = cap.cv.wait_timeout(st, deadline - now).unwrap_or_else(|e| e.into_inner()).0;
            }
        }
    }

    /// Sends `sig` to the child (by PID) if it is still running.
    pub fn signal(&mut self, sig: i32) {
        if self.try_status().is_none() {
            // SAFETY: kill(2) on our own child's PID, which is not reaped yet
            // (try_status returned None), so the PID cannot have been reused.
            unsafe { libc::kill(self.child.id() as libc::pid_t, sig) };
        }
    }

    /// SIGKILLs the child if it is running, reaps it and returns its status.
    pub fn kill(&mut self) -> ExitStatus {
        if let Some(st) = self.try_status() {
            return st;
        }
        let _ = self.child.kill();
        let st = self.child.wait().unwrap_or_else(|e| panic!("wait {}: {e}", self.name));
        self.status = Some(st);
        self.drain(secs(2));
        st
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.stdin = None;
        if self.status.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        // Readers end when the pipes close; do not block on a grandchild.
        for t in self.threads.drain(..) {
            if t.is_finished() {
                let _ = t.join();
            }
        }
    }
}

/// The N of the last `port N` in `line`.
pub fn parse_port(line: &str) -> Option<u16> {
    line.match_indices("port ")
        .filter_map(|(i, m)| {
            let digits: String = line[i + m.len()..].chars().take_while(|c| c.is_ascii_digit()).collect();
            digits.parse().ok()
        })
        .last()
}

/// Describes an exit status: "exit 0", "signal 13 (SIGPIPE)".
pub fn describe(st: ExitStatus) -> String {
    match (st.code(), st.signal()) {
        (Some(c), _) => format!("exit {c}"),
        (None, Some(13)) => "signal 13 (SIGPIPE)".into(),
        (None, Some(s)) => format!("signal {s}"),
        _ => format!("{st}"),
    }
}

/// Asserts that `st` is a normal exit with `code`.
#[track_caller]
pub fn assert_exit(p: &Proc, st: ExitStatus, code: i32) {
    assert_eq!(st.code(), Some(code), "{} ended with {}, expected exit {code}\n{}", p.name(), describe(st), p.transcript());
}
