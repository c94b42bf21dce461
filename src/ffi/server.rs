//! `sockflow_server`: the multi-client TCP and UDP servers.

use super::args::{core_args, sockflow_args};
use super::error::{fail, rc};
use super::handler::{connect, in_callback_of, sockflow_handler, to_core};
use super::stdio::CFile;
use super::{bytes_arg, give};
use crate::error::{Code, Error};
use crate::server::tcp::TcpServer;
use crate::server::udp::UdpServer;
use crate::server::{Config, Mode, ServerHandle};
use std::ffi::{c_char, c_int, c_void};
use std::io::Write;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

/// How a server runs its callbacks (`sockflow_server_config.mode`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum sockflow_mode {
    /// Every callback on the one event-loop thread: callbacks must not block.
    EventLoop = 0,
    /// Each TCP connection's callbacks run in order on a thread of its own,
    /// so they may block (wait for a keyboard, a database). I/O stays on the
    /// event loop; a connection whose thread falls behind stops being read.
    /// A stop does not wait for queued messages: those not yet handed to a
    /// callback are dropped (each connection still gets `on_close` with
    /// STOPPING), and a thread still inside a callback 2 s after the
    /// connections closed is left to finish on its own and gets no further
    /// callback, so `sockflow_server_run` returns in bounded time.
    ThreadPerConnection = 1,
}

/// Server settings. Fill with `sockflow_server_config_init`, then change
/// fields. Framing and the quit word come from the `sockflow_args`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct sockflow_server_config {
    /// Most simultaneous connections (default 10000); more are closed at once
    /// with a log line.
    pub max_conns: c_int,
    /// Close a connection after this many ms without traffic (default 0 =
    /// the `--timeout` of the `sockflow_args`, whose 0 means never).
    pub idle_timeout_ms: c_int,
    /// Per-connection queue bound (default 1 MiB). A client's own replies
    /// past half of it stop reading from that client until it has taken
    /// them (backpressure: nothing is dropped); messages pushed to it by
    /// `sockflow_server_send`/`_broadcast`/`sockflow_conn_send_to` past it
    /// drop the client with reason OVERFLOW. Also bounds the messages
    /// waiting for a connection's thread (64 bytes + length each).
    pub max_queue: usize,
    /// A `sockflow_mode` (default `SOCKFLOW_MODE_EVENT_LOOP`).
    pub mode: c_int,
    /// Non-zero: SIGINT/SIGTERM stop the server gracefully (stop accepting,
    /// flush replies, close, return 0). Default 0: signals untouched.
    pub handle_signals: c_int,
    /// listen(2) backlog (default 128).
    pub backlog: c_int,
    /// Where log lines go (readiness `NAME: listening on HOST port N`, drops,
    /// errors). NULL = stderr.
    pub log: *mut libc::FILE,
    /// Non-zero: no log lines at all.
    pub quiet: c_int,
    /// Most connections at once from one address (IPv6: one /64); more are
    /// closed at once with a log line. Default 0 = the `--max-per-ip` of the
    /// `sockflow_args`, or 256 when it was not given.
    pub max_per_ip: c_int,
    /// Close a connection that holds an incomplete message for this many ms
    /// (slowloris); the clock restarts at each complete message. Default
    /// 60000; 0 = never.
    pub incomplete_timeout_ms: c_int,
    /// Most bytes all connections together may hold in partial messages and
    /// queues (default 256 MiB). Over it, clients holding data are not read
    /// until memory frees up, and a `len32`/`fixed` message whose length
    /// cannot be reserved closes its connection (reason ERROR, logged).
    pub memory_budget: usize,
}

fn defaults() -> sockflow_server_config {
    let d = Config::default();
    sockflow_server_config {
        max_conns: d.max_conns as c_int,
        idle_timeout_ms: 0,
        max_queue: d.max_queue,
        mode: sockflow_mode::EventLoop as c_int,
        handle_signals: 0,
        backlog: d.backlog,
        log: std::ptr::null_mut(),
        quiet: 0,
        max_per_ip: 0,
        incomplete_timeout_ms: d.incomplete_timeout.map_or(0, |t| t.as_millis() as c_int),
        memory_budget: d.memory_budget,
    }
}

/// Fills `*cfg` with the defaults documented on each field. Returns 0.
#[no_mangle]
pub extern "C" fn sockflow_server_config_init(cfg: *mut sockflow_server_config) -> c_int {
    ffi_boundary! {
        let cfg = try_mut!(cfg, "cfg");
        *cfg = defaults();
        0
    }
}

fn core_config(a: &crate::args::Args, c: &sockflow_server_config) -> crate::Result<Config> {
    let mut cfg = Config::from_args(a);
    if c.max_conns <= 0 {
        return Err(Error::inval(format!("cfg.max_conns {} is not positive", c.max_conns)));
    }
    if c.idle_timeout_ms < 0 {
        return Err(Error::inval(format!("cfg.idle_timeout_ms {} is negative", c.idle_timeout_ms)));
    }
    if c.max_queue == 0 {
        return Err(Error::inval("cfg.max_queue is 0"));
    }
    if c.max_per_ip < 0 {
        return Err(Error::inval(format!("cfg.max_per_ip {} is negative", c.max_per_ip)));
    }
    if c.incomplete_timeout_ms < 0 {
        return Err(Error::inval(format!("cfg.incomplete_timeout_ms {} is negative", c.incomplete_timeout_ms)));
    }
    if c.memory_budget == 0 {
        return Err(Error::inval("cfg.memory_budget is 0"));
    }
    cfg.max_conns = c.max_conns as usize;
    // 0 keeps what the arguments gave (`--timeout`, `--max-per-ip`).
    if c.idle_timeout_ms > 0 {
        cfg.idle_timeout = Some(Duration::from_millis(c.idle_timeout_ms as u64));
    }
    if c.max_per_ip > 0 {
        cfg.max_per_ip = c.max_per_ip as usize;
    }
    cfg.incomplete_timeout = (c.incomplete_timeout_ms > 0).then(|| Duration::from_millis(c.incomplete_timeout_ms as u64));
    cfg.max_queue = c.max_queue;
    cfg.memory_budget = c.memory_budget;
    cfg.mode = match c.mode {
        0 => Mode::EventLoop,
        1 => Mode::ThreadPerConnection,
        m => return Err(Error::inval(format!("cfg.mode {m} is not a sockflow_mode"))),
    };
    cfg.handle_signals = c.handle_signals != 0;
    cfg.backlog = if c.backlog > 0 { c.backlog } else { crate::tcp::DEFAULT_BACKLOG };
    cfg.log = if c.quiet != 0 {
        None
    } else if c.log.is_null() {
        Some(Box::new(CFile::stderr()))
    } else {
        Some(Box::new(CFile(c.log)))
    };
    Ok(cfg)
}

enum Engine {
    Tcp(Box<TcpServer>),
    Udp(UdpServer),
}

impl Engine {
    fn run(self) -> crate::Result<()> {
        match self {
            Engine::Tcp(t) => t.run(),
            Engine::Udp(u) => u.run(),
        }
    }
}

/// Where a server handle is in its one run.
enum State {
    /// Bound, not run yet.
    Ready(Engine),
    /// `sockflow_server_run` is running it on some thread.
    Running,
    /// Running, and `sockflow_server_free` was called from one of its own
    /// callbacks (which cannot wait for the run): the run frees the handle
    /// when it returns.
    RunningThenFree,
    /// `run` returned (a server runs once).
    Done,
}

/// The run state, shared (through an `Arc`) by the handle and a running
/// `run`, so the run never touches the handle's memory once it has started
/// and `free` can wait on `ended` for it to finish.
struct Run {
    state: Mutex<State>,
    ended: Condvar,
}

impl Run {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A server, bound and ready to run. Methods: `sockflow_tcp_server_new`,
/// `sockflow_udp_server_new`, `sockflow_server_run`, `sockflow_server_stop`,
/// `sockflow_server_port`, `sockflow_server_send`,
/// `sockflow_server_broadcast`, `sockflow_server_free`. `stop`, `send`,
/// `broadcast` and `port` may be called from any thread while `run` runs;
/// so may `free`, which stops the server and waits for `run` to return.
pub struct sockflow_server {
    handle: ServerHandle,
    run: Arc<Run>,
}

fn new_server(
    args: *const sockflow_args,
    cfg: *const sockflow_server_config,
    handler: sockflow_handler,
    userdata: *mut c_void,
    udp: bool,
) -> crate::Result<sockflow_server> {
    let a = core_args(args)?;
    // SAFETY: NULL or a valid struct, per contract.
    let c = unsafe { cfg.as_ref() }.copied().unwrap_or_else(defaults);
    let config = core_config(&a, &c)?;
    let h = to_core(handler, userdata)?;
    let engine =
        if udp { Engine::Udp(UdpServer::from_args(&a, config, h)?) } else { Engine::Tcp(Box::new(TcpServer::from_args(&a, config, h)?)) };
    Ok(ready(engine))
}

fn ready(engine: Engine) -> sockflow_server {
    let handle = match &engine {
        Engine::Tcp(s) => s.handle(),
        Engine::Udp(s) => s.handle(),
    };
    sockflow_server { handle, run: Arc::new(Run { state: Mutex::new(State::Ready(engine)), ended: Condvar::new() }) }
}

/// Binds a TCP server on the host and port of `args` (with their frame and
/// quit word) for `handler`/`userdata`. `cfg` may be NULL for the defaults.
/// Writes the server to `*out` (free it with `sockflow_server_free` after
/// `sockflow_server_run` returned) and returns 0; e.g.
/// `SOCKFLOW_EADDRINUSE` with the message `bind 0.0.0.0:8080: Address already in use`.
#[no_mangle]
pub extern "C" fn sockflow_tcp_server_new(
    args: *const sockflow_args,
    cfg: *const sockflow_server_config,
    handler: sockflow_handler,
    userdata: *mut c_void,
    out: *mut *mut sockflow_server,
) -> c_int {
    ffi_boundary! {
        check_out!(out, "out");
        give(out, try_ok!(new_server(args, cfg, handler, userdata, false)))
    }
}

/// Binds a UDP server: each datagram is one message for `handler`'s
/// `on_message` (`on_connect`/`on_close` are not called), and
/// `sockflow_conn_send` replies to its sender. Otherwise as `sockflow_tcp_server_new`.
#[no_mangle]
pub extern "C" fn sockflow_udp_server_new(
    args: *const sockflow_args,
    cfg: *const sockflow_server_config,
    handler: sockflow_handler,
    userdata: *mut c_void,
    out: *mut *mut sockflow_server,
) -> c_int {
    ffi_boundary! {
        check_out!(out, "out");
        give(out, try_ok!(new_server(args, cfg, handler, userdata, true)))
    }
}

/// A loop with no listener: an event-driven client of many servers. Its
/// connections are the ones it opens with `sockflow_server_connect` (from
/// any thread, before or during `sockflow_server_run`) or
/// `sockflow_conn_connect` (from its callbacks), driven by `handler` as a
/// server's are: `on_connect` when connected, `on_message`, `on_close`
/// (with `SOCKFLOW_CLOSE_REASON_CONNECT_FAILED` when a connect fails). It is a
/// `sockflow_server` like any other: run it with `sockflow_server_run`,
/// stop it with `sockflow_server_stop`, free it with `sockflow_server_free`;
/// `sockflow_server_port` gives 0. `args` gives the frame, quit word and
/// program name (its host and port are not used); NULL means line frames,
/// no quit word. `cfg` may be NULL for the defaults. Writes the loop to
/// `*out` and returns 0.
#[no_mangle]
pub extern "C" fn sockflow_client_loop_new(
    args: *const sockflow_args,
    cfg: *const sockflow_server_config,
    handler: sockflow_handler,
    userdata: *mut c_void,
    out: *mut *mut sockflow_server,
) -> c_int {
    ffi_boundary! {
        check_out!(out, "out");
        let a = if args.is_null() {
            crate::args::Args { quit: String::new(), ..crate::args::Args::new(crate::args::Role::Client, "sockflow") }
        } else {
            try_ok!(core_args(args))
        };
        // SAFETY: NULL or a valid struct, per contract.
        let c = unsafe { cfg.as_ref() }.copied().unwrap_or_else(defaults);
        let config = try_ok!(core_config(&a, &c));
        let h = try_ok!(to_core(handler, userdata));
        let server = try_ok!(TcpServer::without_listener(config, h));
        give(out, ready(Engine::Tcp(Box::new(server))))
    }
}

/// Opens an outgoing TCP connection on the server's loop (a client loop's,
/// or a listening server's) to `host` (a name or an address) and `port`,
/// giving up after `timeout_ms` (0: the OS's own limit, about two minutes
/// on Linux). Writes the new connection's id to `*id` at once and returns
/// 0; the loop then calls `on_connect` once it is connected, or `on_close`
/// with `SOCKFLOW_CLOSE_REASON_CONNECT_FAILED` (see `sockflow_conn_error`) if it
/// cannot be made. `on_close` comes exactly once for every id either way.
/// `user` is the connection's user pointer from the start
/// (`sockflow_conn_user`); sockflow never frees it: free it in that
/// `on_close`. Never blocks: a numeric host is used as is, a name is
/// resolved on a short-lived thread of its own. `host` is only read during
/// the call. Returns `SOCKFLOW_EINVAL` for a negative `timeout_ms`,
/// `SOCKFLOW_EADDR` for a port outside 1-65535 or an empty host,
/// `SOCKFLOW_EBADHANDLE` for a UDP server (then no id is made and no
/// callback comes). Safe from any thread, before or during
/// `sockflow_server_run`; from callbacks use `sockflow_conn_connect`.
#[no_mangle]
pub extern "C" fn sockflow_server_connect(
    s: *mut sockflow_server,
    host: *const c_char,
    port: c_int,
    timeout_ms: c_int,
    user: *mut c_void,
    id: *mut u64,
) -> c_int {
    ffi_boundary! {
        let s = try_ref!(s, "server");
        check_out!(id, "id");
        let new = try_ok!(connect(&s.handle, host, port, timeout_ms, user));
        // SAFETY: checked non-NULL above.
        unsafe { *id = new };
        0
    }
}

/// Runs the server behind `p` (checked non-NULL) once, on this thread.
fn run_server(p: *mut sockflow_server) -> crate::Result<()> {
    // SAFETY: a live handle from `give`, per contract; only read here, before
    // the state says Running (from then on `free` waits for this run).
    let run = Arc::clone(&unsafe { &*p }.run);
    let engine = {
        let mut st = run.lock();
        match std::mem::replace(&mut *st, State::Running) {
            State::Ready(e) => e,
            busy @ (State::Running | State::RunningThenFree) => {
                *st = busy;
                return Err(Error::new(Code::Busy, "server is already running (on another thread): a server runs once"));
            }
            State::Done => {
                *st = State::Done;
                return Err(Error::new(Code::BadHandle, "server already ran (a server runs once)"));
            }
        }
    };
    let r = engine.run();
    let mut st = run.lock();
    let free = matches!(*st, State::RunningThenFree);
    *st = State::Done;
    run.ended.notify_all();
    drop(st);
    if free {
        // SAFETY: `free` was called from one of this server's callbacks and
        // left the handle to us; nothing else frees it.
        drop(unsafe { Box::from_raw(p) });
    }
    r
}

/// Runs the server on the calling thread until it is stopped (a callback
/// returning `SOCKFLOW_ACTION_STOP`, `sockflow_server_stop`,
/// `sockflow_server_free`, or a signal when `handle_signals` is set); then
/// stops accepting, flushes queued replies, closes every connection and
/// returns 0. A server runs once: `SOCKFLOW_EBUSY` while it is running on
/// another thread, `SOCKFLOW_EBADHANDLE` after it ran.
#[no_mangle]
pub extern "C" fn sockflow_server_run(s: *mut sockflow_server) -> c_int {
    ffi_boundary! {
        try_ref!(s, "server");
        rc(run_server(s))
    }
}

/// Asks a running server to stop gracefully; returns at once. Safe from any
/// thread and from callbacks.
#[no_mangle]
pub extern "C" fn sockflow_server_stop(s: *mut sockflow_server) -> c_int {
    ffi_boundary! {
        try_ref!(s, "server").handle.stop();
        0
    }
}

/// The port the server is bound to (the chosen one when 0 was asked).
#[no_mangle]
pub extern "C" fn sockflow_server_port(s: *const sockflow_server) -> c_int {
    ffi_boundary! { c_int::from(try_ref!(s, "server").handle.local_addr().port()) }
}

/// Queues one message for connection `id` (from `sockflow_conn_id`); safe
/// from any thread. An id that is gone is ignored. TCP only.
#[no_mangle]
pub extern "C" fn sockflow_server_send(s: *mut sockflow_server, id: u64, msg: *const c_void, len: usize) -> c_int {
    ffi_boundary! {
        let s = try_ref!(s, "server");
        rc(s.handle.send(id, try_ok!(bytes_arg(msg, len, "msg"))))
    }
}

/// Queues one message for every connection; safe from any thread. TCP only.
#[no_mangle]
pub extern "C" fn sockflow_server_broadcast(s: *mut sockflow_server, msg: *const c_void, len: usize) -> c_int {
    ffi_boundary! {
        let s = try_ref!(s, "server");
        rc(s.handle.broadcast(try_ok!(bytes_arg(msg, len, "msg")), None))
    }
}

/// Frees a server. If `sockflow_server_run` is running it on another
/// thread, stops it first and waits for `run` to return (its connections
/// closed, their `on_close` called). Called from one of the server's own
/// callbacks, it stops the server and the handle is freed when `run`
/// returns. NULL is fine; do not call twice, nor race it with the start of
/// a `run` (a `run` called after `free` uses freed memory).
#[no_mangle]
pub extern "C" fn sockflow_server_free(s: *mut sockflow_server) {
    ffi_boundary! {
        if s.is_null() {
            return;
        }
        // SAFETY: a live handle from `give`, per contract.
        let server = unsafe { &*s };
        server.handle.stop();
        let run = Arc::clone(&server.run);
        let mut st = run.lock();
        loop {
            match *st {
                State::Running if in_callback_of(&server.handle.0) => {
                    *st = State::RunningThenFree;
                    return;
                }
                State::Running => st = run.ended.wait(st).unwrap_or_else(|p| p.into_inner()),
                // Freed already, from a callback: the run will free it.
                State::RunningThenFree => return,
                State::Ready(_) | State::Done => break,
            }
        }
        drop(st);
        // SAFETY: created by Box::into_raw in this module, freed once, and
        // no run is using it any more.
        drop(unsafe { Box::from_raw(s) });
    }
}

/// The one-call flows print their failure as `prog: message` on stderr.
pub(crate) fn report(prog: &str, e: Error) -> c_int {
    let _ = writeln!(CFile::stderr(), "{prog}: {e}");
    fail(e)
}

fn run_once(args: *const sockflow_args, handler: sockflow_handler, userdata: *mut c_void, udp: bool) -> c_int {
    let prog = core_args(args).map(|a| a.prog).unwrap_or_else(|_| "sockflow".into());
    let mut cfg = defaults();
    cfg.handle_signals = 1;
    let r = new_server(args, &cfg, handler, userdata, udp).and_then(|s| {
        let p = Box::into_raw(Box::new(s));
        let r = run_server(p);
        sockflow_server_free(p);
        r
    });
    match r {
        Ok(()) => 0,
        Err(e) => report(&prog, e),
    }
}

/// The whole TCP server in one call: binds the host and port of `args`,
/// prints `PROG: listening on HOST port N` to stderr, serves any number of
/// clients at once through `handler` (e.g. `sockflow_handler_print()`), and
/// on SIGINT/SIGTERM stops gracefully and returns 0. On failure prints
/// `PROG: what failed: why` to stderr and returns the negative code.
#[no_mangle]
pub extern "C" fn sockflow_tcp_server_run(args: *const sockflow_args, handler: sockflow_handler, userdata: *mut c_void) -> c_int {
    ffi_boundary! { run_once(args, handler, userdata, false) }
}

/// The whole UDP server in one call (see `sockflow_tcp_server_run`).
#[no_mangle]
pub extern "C" fn sockflow_udp_server_run(args: *const sockflow_args, handler: sockflow_handler, userdata: *mut c_void) -> c_int {
    ffi_boundary! { run_once(args, handler, userdata, true) }
}
