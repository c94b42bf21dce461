//! `sockflow_server`: the multi-client TCP and UDP servers.

use super::args::{core_args, sockflow_args};
use super::cenum::CEnum;
use super::error::{fail, rc};
use super::handler::{connect, connect_args, in_callback_of, sockflow_handler, to_core};
use super::stdio::CFile;
use super::{bytes_arg, give, limit_arg, limit_value, put, Zero, SOCKFLOW_FOREVER};
use crate::error::{Code, Error};
use crate::server::event_loop::{run_to_end, Loop};
use crate::server::tcp::TcpServer;
use crate::server::udp::UdpServer;
use crate::server::{Config, LogLevel, LogTo, Mode, ServerHandle, UdpMode};
use std::ffi::{c_char, c_int, c_void};
use std::io::Write;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

c_enum!(Mode, "sockflow_mode": EventLoop, ThreadPerConnection);
c_enum!(LogLevel, "sockflow_log_level": Error, Warn, Info);

/// The C name of [`Mode`], exported by cbindgen under this name
/// (`[export.rename]` in cbindgen.toml): one list of modes.
pub use crate::server::Mode as sockflow_mode;

/// Server settings. Fill with `sockflow_server_config_init`, then change
/// fields. Framing and the quit word come from the `sockflow_args` (no
/// quit word after `sockflow_args_init`; "quit" after `sockflow_args_parse`
/// unless `--quit` says otherwise).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct sockflow_server_config {
    /// Most simultaneous connections (default 10000); more are closed at once
    /// with a log line. With `udp_peers`, the most peers at once: a datagram
    /// from a new sender past it is dropped, with a log line (at most one a
    /// second); the peers already known stay.
    pub max_conns: c_int,
    /// Close a connection after this many ms without traffic (default
    /// `SOCKFLOW_FOREVER`: the `--timeout` of the `sockflow_args` if it was
    /// given, else never). With `udp_peers`: a peer is closed (`on_close`
    /// with IDLE) after this many ms without a datagram from it; when no
    /// limit is given here or by `--timeout`, after 60000 ms (a UDP peer
    /// never says goodbye). 0 is `SOCKFLOW_EINVAL`.
    pub idle_timeout_ms: c_int,
    /// Per-connection queue bound (default 1 MiB). A client's own replies
    /// past half of it stop reading from that client until it has taken
    /// them (backpressure: nothing is dropped); messages pushed to it by
    /// `sockflow_server_send_to`/`_broadcast`/`sockflow_conn_send_to` past it
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
    /// errors). NULL = stderr. Ignored when `log_fn` is set.
    pub log: *mut libc::FILE,
    /// Non-zero: no log lines at all.
    pub quiet: c_int,
    /// Your logger (default NULL): gets every log line instead of `log`,
    /// with its `sockflow_log_level` and without the `NAME: ` prefix.
    pub log_fn: sockflow_log_fn,
    /// Passed first to `log_fn`.
    pub log_userdata: *mut c_void,
    /// Most connections at once from one address (IPv6: one /64); more are
    /// closed at once with a log line. Default 0 = the `--max-per-ip` of the
    /// `sockflow_args`, or 256 when it was not given.
    pub max_per_ip: c_int,
    /// Close a connection that holds an incomplete message for this many ms
    /// (slowloris); the clock restarts at each complete message. Default
    /// 60000; `SOCKFLOW_FOREVER` = never; 0 is `SOCKFLOW_EINVAL`.
    pub incomplete_timeout_ms: c_int,
    /// Most bytes all connections together may hold in partial messages and
    /// queues (default 256 MiB). Over it, clients holding data are not read
    /// until memory frees up, and a `len32`/`fixed` message whose length
    /// cannot be reserved closes its connection (reason ERROR, logged).
    pub memory_budget: usize,
    /// UDP servers only. 0 (default): each datagram is a message on its
    /// own (`on_connect`/`on_close` are not called, the user pointer lasts
    /// one datagram). Non-zero: each sender address is a connection, a
    /// "peer": `on_connect` at its first datagram, then `on_message` for
    /// each; one id and user pointer while it stays; `on_close` with IDLE
    /// once it has been silent for `idle_timeout_ms`, with STOPPING when the
    /// server stops, or with HANDLER/ERROR after a callback returned CLOSE or
    /// a negative value (its next datagram then makes a new peer, with a new
    /// id). `sockflow_server_send_to`, `_broadcast` and `sockflow_conn_send_to`
    /// send datagrams to peers by id, from any thread. At most `max_conns`
    /// peers.
    pub udp_peers: c_int,
    /// Event-loop threads, 1-256. Default 0 = the `--workers` of the
    /// `sockflow_args`, or 1 when it was not given. With N > 1 each worker
    /// thread has its own socket on the same address (`SO_REUSEPORT`), the
    /// kernel spreads new connections over them, and a connection's
    /// callbacks all run on its worker's thread (`sockflow_conn_worker`):
    /// callbacks of different connections may run at the same time, so data
    /// the handler shares between connections needs a lock (or one slot per
    /// worker). Stopping the server, sending to a connection by id,
    /// broadcasting, closing by id, and the connection count, ids and peers
    /// work across all workers, from any thread and any callback.
    /// Timers and signal handling run on worker 0, the thread that calls
    /// `sockflow_server_run` (or the one `sockflow_server_start` starts).
    /// `max_conns` and `memory_budget` are split evenly between the workers
    /// (rounded up); `max_per_ip` counts over all of them. UDP: each worker
    /// has its own socket and the kernel keeps a sender on one worker, so
    /// with `udp_peers` a peer stays with the worker that knows it. A
    /// program's own loop (`sockflow_server_turn`, `_fd`, `_timeout`) and a
    /// `sockflow_client_loop_new` loop run one worker only: the turn calls
    /// return `SOCKFLOW_EINVAL` for a server with more.
    pub workers: c_int,
}

fn defaults() -> sockflow_server_config {
    let d = Config::default();
    sockflow_server_config {
        max_conns: d.max_conns as c_int,
        idle_timeout_ms: SOCKFLOW_FOREVER,
        max_queue: d.max_queue,
        mode: sockflow_mode::EventLoop as c_int,
        handle_signals: 0,
        backlog: d.backlog,
        log: std::ptr::null_mut(),
        log_fn: None,
        log_userdata: std::ptr::null_mut(),
        quiet: 0,
        max_per_ip: 0,
        incomplete_timeout_ms: limit_value(d.incomplete_timeout),
        memory_budget: d.memory_budget,
        udp_peers: 0,
        workers: 0,
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
    let idle = limit_arg(c.idle_timeout_ms, "cfg.idle_timeout_ms", Zero::Invalid)?;
    if c.max_queue == 0 {
        return Err(Error::inval("cfg.max_queue is 0"));
    }
    if c.max_per_ip < 0 {
        return Err(Error::inval(format!("cfg.max_per_ip {} is negative", c.max_per_ip)));
    }
    let incomplete = limit_arg(c.incomplete_timeout_ms, "cfg.incomplete_timeout_ms", Zero::Invalid)?;
    if c.memory_budget == 0 {
        return Err(Error::inval("cfg.memory_budget is 0"));
    }
    if c.workers < 0 || c.workers as u32 > crate::args::WORKERS_MAX {
        return Err(Error::inval(format!("cfg.workers {} is not in 0-{}", c.workers, crate::args::WORKERS_MAX)));
    }
    cfg.max_conns = c.max_conns as usize;
    // No limit / 0 keeps what the arguments gave (`--timeout`, `--max-per-ip`).
    if idle.is_some() {
        cfg.idle_timeout = idle;
    }
    if c.max_per_ip > 0 {
        cfg.max_per_ip = c.max_per_ip as usize;
    }
    if c.workers > 0 {
        cfg.workers = c.workers as usize;
    }
    cfg.incomplete_timeout = incomplete;
    cfg.max_queue = c.max_queue;
    cfg.memory_budget = c.memory_budget;
    cfg.mode = Mode::arg(c.mode, "cfg.mode")?;
    cfg.handle_signals = c.handle_signals != 0;
    cfg.udp = if c.udp_peers != 0 { UdpMode::Peers } else { UdpMode::Datagrams };
    cfg.backlog = if c.backlog > 0 { c.backlog } else { crate::tcp::DEFAULT_BACKLOG };
    cfg.log = if c.quiet != 0 {
        None
    } else if c.log.is_null() {
        Some(LogTo::writer(CFile::stderr()))
    } else {
        Some(LogTo::writer(CFile(c.log)))
    };
    if let (Some(f), false) = (c.log_fn, c.quiet != 0) {
        cfg.log = Some(log_to_fn(f, c.log_userdata));
    }
    Ok(cfg)
}

/// A program's log function: gets each log line, with its level and
/// without the `NAME: ` prefix, as a NUL-terminated string valid during the
/// call. It runs on the server's log thread (never the loop's, so a slow
/// logger does not slow the server: lines queue up, and past 1024 are
/// counted and reported as dropped), one call at a time; `userdata` must
/// be usable from that thread. It is not called after
/// `sockflow_server_close` returns, except for a call already running
/// then (a call that takes more than 2 s is left running).
pub type sockflow_log_fn = Option<unsafe extern "C" fn(userdata: *mut c_void, level: c_int, msg: *const c_char)>;

/// The core's [`LogTo::Lines`] for a C log function.
fn log_to_fn(f: unsafe extern "C" fn(*mut c_void, c_int, *const c_char), ud: *mut c_void) -> LogTo {
    struct Userdata(*mut c_void);
    // SAFETY: the caller promises (documented on sockflow_log_fn) that its
    // userdata may be used from the log thread.
    unsafe impl Send for Userdata {}
    impl Userdata {
        // A method, so the closure captures the Send wrapper, not the pointer.
        fn get(&self) -> *mut c_void {
            self.0
        }
    }
    let ud = Userdata(ud);
    let mut text = Vec::new();
    LogTo::Lines(Box::new(move |level, line| {
        text.clear();
        text.extend(line.bytes().filter(|&b| b != 0));
        text.push(0);
        // SAFETY: a C function with the documented signature; the text is
        // NUL-terminated and lives for the call.
        unsafe { f(ud.get(), level as c_int, text.as_ptr().cast()) };
    }))
}

/// The server behind a handle: its TCP or UDP loop.
type Engine = Box<dyn Loop>;

/// Where a server handle is in its one run.
enum State {
    /// Bound, not run yet.
    Ready(Engine),
    /// Driven by the program's own loop (`sockflow_server_turn`), between
    /// two turns: announced, holding its connections.
    Driven(Engine),
    /// A run (`sockflow_server_run`, `_start`) or one turn is using it on some thread.
    Running,
    /// Running, and `sockflow_server_close` was called from one of its own
    /// callbacks (which cannot wait for the run): the run frees the handle
    /// when it returns.
    RunningThenFree,
    /// The run ended (a server runs once), with its result for `join`.
    Done(crate::Result<()>),
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
/// `sockflow_udp_server_new`, `sockflow_server_run` (on this thread),
/// `sockflow_server_start` + `sockflow_server_join` (on a thread of its
/// own), `sockflow_server_turn` + `sockflow_server_fd` +
/// `sockflow_server_timeout` (from the program's own event loop),
/// `sockflow_server_stop`, `sockflow_server_port`, `sockflow_server_send_to`,
/// `sockflow_server_broadcast`, `sockflow_server_timer_add`,
/// `sockflow_server_timer_cancel`, `sockflow_server_close`. `stop`, `send_to`,
/// `broadcast`, `port`, `fd` and the timer calls may be called from any
/// thread while it runs; so may `close`, which stops the server and waits
/// for the run to return. A server runs once, one of the three ways.
pub struct sockflow_server {
    handle: ServerHandle,
    /// The loop's epoll descriptor (`sockflow_server_fd`), fixed for its life.
    fd: c_int,
    run: Arc<Run>,
}

impl sockflow_server {
    /// The server's thread-safe control handle.
    pub(crate) fn handle(&self) -> &ServerHandle {
        &self.handle
    }
}

fn new_server(
    args: *const sockflow_args,
    cfg: *const sockflow_server_config,
    handler: sockflow_handler,
    userdata: *mut c_void,
    udp: bool,
) -> crate::Result<sockflow_server> {
    let a = core_args(args)?;
    let (config, h) = config_and_handler(&a, cfg, handler, userdata)?;
    let engine =
        if udp { Box::new(UdpServer::from_args(&a, config, h)?) as Engine } else { Box::new(TcpServer::from_args(&a, config, h)?) };
    Ok(ready(engine))
}

/// The core config (`cfg` NULL = the defaults) and handler of a new loop:
/// the part every constructor shares.
fn config_and_handler(
    a: &crate::args::Args,
    cfg: *const sockflow_server_config,
    handler: sockflow_handler,
    userdata: *mut c_void,
) -> crate::Result<(Config, Arc<dyn crate::server::Handler>)> {
    // SAFETY: NULL or a valid struct, per contract.
    let c = unsafe { cfg.as_ref() }.copied().unwrap_or_else(defaults);
    Ok((core_config(a, &c)?, to_core(handler, userdata)?))
}

/// A handle for a bound (or listener-less) engine, ready to run or turn.
fn ready(engine: Engine) -> sockflow_server {
    let (handle, fd) = (engine.base().handle(), engine.base().fd());
    sockflow_server { handle, fd, run: Arc::new(Run { state: Mutex::new(State::Ready(engine)), ended: Condvar::new() }) }
}

/// Binds a TCP server on the host and port of `args` (with their frame and
/// quit word) for `handler`/`userdata`. `cfg` may be NULL for the defaults.
/// Writes the server to `*out` (free it with `sockflow_server_close` after
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
/// `on_message`, and `sockflow_conn_send` replies to its sender.
/// `on_connect`/`on_close` are called only when `cfg->udp_peers` is set
/// (each sender is then a connection: see `sockflow_server_config.udp_peers`).
/// The quit word has no effect on UDP. Otherwise as `sockflow_tcp_server_new`.
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
/// stop it with `sockflow_server_stop`, free it with `sockflow_server_close`;
/// `sockflow_server_port` gives 0. `args` gives the frame, quit word and
/// program name (its host and port are not used); NULL means line frames,
/// no quit word. `cfg` may be NULL for the defaults. Writes the loop to
/// `*out` and returns 0.
///
/// TLS is per connection, not per loop: a connect made with
/// `sockflow_server_connect_args`/`sockflow_conn_connect_args` carries its
/// own `sockflow_args` and so its own TLS options; `sockflow_server_connect`
/// and `sockflow_conn_connect` are plaintext. So that no connection is
/// plaintext by mistake, `args` with client TLS options (`tls`, `tls_ca`,
/// `tls_cert`) is `SOCKFLOW_EINVAL`: pass those to the `_args` connects.
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
        if a.tls.on(crate::tls::Side::Client) {
            return fail(Error::inval(
                "args: a client loop takes TLS options per connection (sockflow_server_connect_args), not for the loop",
            ));
        }
        let (config, h) = try_ok!(config_and_handler(&a, cfg, handler, userdata));
        let server = try_ok!(TcpServer::without_listener(config, h));
        give(out, ready(Box::new(server)))
    }
}

/// Opens an outgoing TCP connection on the server's loop (a client loop's,
/// or a listening server's) to `host` (a name or an address) and `port`
/// — or to a Unix domain socket: `host` "unix:PATH" or "unix:@NAME" with
/// `port` 0 (served like any other connection; its peer reads as `ip`
/// "unix", see `sockflow_conn_peer_cred`). Plaintext: for TLS use
/// `sockflow_server_connect_args`. The connect gives up after `timeout_ms`
/// (`SOCKFLOW_FOREVER`: the OS's own limit, about two minutes on Linux).
/// Writes the new connection's id to `*id` at once and returns 0; the
/// loop then calls `on_connect` once it is connected, or `on_close` with
/// `SOCKFLOW_CLOSE_REASON_CONNECT_FAILED` (see `sockflow_conn_error`) if it
/// cannot be made. `on_close` comes exactly once for every id either way.
/// `user` is the connection's user pointer from the start
/// (`sockflow_conn_user`); sockflow never frees it: free it in that
/// `on_close`. Never blocks: a numeric host is used as is, a name is
/// resolved on a short-lived thread of its own. `host` is only read during
/// the call. Returns `SOCKFLOW_EINVAL` for a `timeout_ms` of 0,
/// `SOCKFLOW_EADDR` for a port outside 1-65535 (not 0 with a unix: host)
/// or an empty host, `SOCKFLOW_EBADHANDLE` for a UDP server (then no id
/// is made and no callback comes). Safe from any thread, before or during
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
        put(id, try_ok!(connect(&s.handle, host, port, timeout_ms, user)))
    }
}

/// Opens an outgoing connection on the server's loop as `a` (a client's
/// `sockflow_args`: `SOCKFLOW_ROLE_CLIENT`) describes: its `host` (a name,
/// an address, or "unix:PATH" / "unix:@NAME" with `port` 0) and `port`,
/// `family`, `timeout_ms` (bounds the connect and the TLS handshake;
/// `SOCKFLOW_FOREVER`: the OS's limit for the connect, 10 s for the
/// handshake) and its client TLS options (`tls`, `tls_ca`, `tls_cert` +
/// `tls_key`; `--tls`, `--tls-ca`, `--tls-cert`, `--tls-key` on its command
/// line): with any of them the loop runs the client side of TLS once
/// connected, verifying the server for `host` (also sent as SNI;
/// "localhost" over a unix: socket), and calls `on_connect` only once the
/// handshake is done. A failed handshake ends, as a failed connect does,
/// in `on_close` with `SOCKFLOW_CLOSE_REASON_CONNECT_FAILED`, where
/// `sockflow_conn_error` gives `SOCKFLOW_ETLS` and rustls's reason
/// (`tls handshake with 127.0.0.1:9000: invalid peer certificate:
/// UnknownIssuer`), or `SOCKFLOW_ETIMEDOUT` when it does not end in time.
/// A graceful close sends close_notify. Everything else is as
/// `sockflow_server_connect`: the id is written to `*id` at once, `user`
/// is the connection's user pointer, `on_close` comes once for every id.
///
/// The TLS configuration is built at the first connect with a given set of
/// TLS options (its files read, the system roots loaded: this call then
/// takes that long) and kept for the server's life, so a proxy opening one
/// connection per client reads them once; a file changed later is not read
/// again. A bad or missing file is an error here (`SOCKFLOW_ETLS` naming
/// the file), with no id made and no callback. `SOCKFLOW_EINVAL` for
/// arguments that are not a client's or do not check; `a` is only read
/// during the call. Safe from any thread; from callbacks use
/// `sockflow_conn_connect_args`.
#[no_mangle]
pub extern "C" fn sockflow_server_connect_args(s: *mut sockflow_server, a: *const sockflow_args, user: *mut c_void, id: *mut u64) -> c_int {
    ffi_boundary! {
        let s = try_ref!(s, "server");
        check_out!(id, "id");
        put(id, try_ok!(connect_args(&s.handle, a, user)))
    }
}

/// Takes the engine for a run or a turn, leaving `Running`; `announce`
/// says whether it still has to log its readiness line.
fn take_engine(run: &Run) -> crate::Result<(Engine, bool)> {
    let mut st = run.lock();
    match std::mem::replace(&mut *st, State::Running) {
        State::Ready(e) => Ok((e, true)),
        State::Driven(e) => Ok((e, false)),
        busy @ (State::Running | State::RunningThenFree) => {
            *st = busy;
            Err(Error::new(Code::Busy, "server is already running (on another thread): a server runs once"))
        }
        State::Done(r) => {
            *st = State::Done(r);
            Err(Error::new(Code::BadHandle, "server already ran (a server runs once)"))
        }
    }
}

/// Leaves `Running` for `next` (`Driven` after a turn, `Done` at the end),
/// wakes `free`/`join` waiters, and frees the handle if `free` was called
/// from a callback meanwhile (the engine, if still there, is finished first).
fn put_back(p: *mut sockflow_server, run: &Run, next: State) {
    let mut st = run.lock();
    let free = matches!(*st, State::RunningThenFree);
    *st = match next {
        State::Driven(e) if free => {
            e.finish();
            State::Done(Ok(()))
        }
        other => other,
    };
    run.ended.notify_all();
    drop(st);
    if free {
        // SAFETY: `free` was called from one of this server's callbacks and
        // left the handle to us; nothing else frees it.
        drop(unsafe { Box::from_raw(p) });
    }
}

/// Runs the server behind `p` (checked non-NULL) to its end, on this thread.
fn run_server(p: *mut sockflow_server) -> crate::Result<()> {
    // SAFETY: a live handle from `give`, per contract; only read here, before
    // the state says Running (from then on `free` waits for this run).
    let run = Arc::clone(&unsafe { &*p }.run);
    let (engine, announce) = take_engine(&run)?;
    run_engine(p, &run, engine, announce)
}

/// Runs a taken engine to its end and records the result.
fn run_engine(p: *mut sockflow_server, run: &Run, engine: Engine, announce: bool) -> crate::Result<()> {
    let r = run_to_end(engine, announce);
    put_back(p, run, State::Done(r.clone()));
    r
}

/// Runs the server on the calling thread until it is stopped (a callback
/// returning `SOCKFLOW_ACTION_STOP`, `sockflow_server_stop`,
/// `sockflow_server_close`, or a signal when `handle_signals` is set); then
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
    ffi_boundary! {
        c_int::from(try_ref!(s, "server").handle.local_addr().port())
    }
}

/// Queues one message for connection `id` (from `sockflow_conn_id`); safe
/// from any thread. An id that is gone is ignored. TCP, or a UDP server
/// with `udp_peers` (one datagram to that peer); `SOCKFLOW_EBADHANDLE` for
/// a UDP server without.
#[no_mangle]
pub extern "C" fn sockflow_server_send_to(s: *mut sockflow_server, id: u64, msg: *const c_void, len: usize) -> c_int {
    ffi_boundary! {
        let s = try_ref!(s, "server");
        rc(s.handle.send(id, try_ok!(bytes_arg(msg, len, "msg"))))
    }
}

/// Queues one message for every connection; safe from any thread. TCP, or
/// a UDP server with `udp_peers` (one datagram to each peer).
#[no_mangle]
pub extern "C" fn sockflow_server_broadcast(s: *mut sockflow_server, msg: *const c_void, len: usize) -> c_int {
    ffi_boundary! {
        let s = try_ref!(s, "server");
        rc(s.handle.broadcast(try_ok!(bytes_arg(msg, len, "msg")), None))
    }
}

/// What `sockflow_server_turn` returns on success.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum sockflow_turn {
    /// The server goes on: call `sockflow_server_turn` again when its
    /// descriptor is readable or its timeout has passed.
    Running = 0,
    /// A stop was asked (a callback, `sockflow_server_stop`, a signal): this
    /// turn closed every connection, and the server is done (close it).
    Stopped = 1,
}

/// Runs one bounded turn of the server on the calling thread, for a program
/// with its own event loop: waits at most `timeout_ms` (0 = not at all,
/// `SOCKFLOW_FOREVER` = until something happens) for network events, commands from other
/// threads and timers, and handles what is ready. The first turn logs the
/// readiness line. Returns `SOCKFLOW_TURN_RUNNING` (0) while the server
/// goes on, `SOCKFLOW_TURN_STOPPED` (1) from the turn that saw a stop
/// (it has flushed, bounded, and closed every connection), or a negative
/// code (`SOCKFLOW_EBUSY` while `sockflow_server_run`/`_start` runs it,
/// `SOCKFLOW_EBADHANDLE` after it stopped, `SOCKFLOW_EINVAL` for a server
/// of more than one worker: see `sockflow_server_config.workers`).
///
/// Use it with `sockflow_server_fd` and `sockflow_server_timeout`: poll the
/// descriptor for reading with the timeout, then turn. One thread at a
/// time; callbacks run inside the turn, on the calling thread.
#[no_mangle]
pub extern "C" fn sockflow_server_turn(s: *mut sockflow_server, timeout_ms: c_int) -> c_int {
    ffi_boundary! {
        let server = try_ref!(s, "server");
        try_ok!(one_worker(server, "sockflow_server_turn"));
        let run = Arc::clone(&server.run);
        let (mut engine, announce) = try_ok!(take_engine(&run));
        if announce {
            engine.base().announce();
        }
        match engine.turn(try_ok!(limit_arg(timeout_ms, "timeout_ms", Zero::Check))) {
            Ok(true) => {
                put_back(s, &run, State::Driven(engine));
                sockflow_turn::Running as c_int
            }
            r => {
                engine.finish();
                let r = r.map(|_| ());
                put_back(s, &run, State::Done(r.clone()));
                match r {
                    Ok(()) => sockflow_turn::Stopped as c_int,
                    Err(e) => fail(e),
                }
            }
        }
    }
}

/// The descriptor a program's own loop polls for reading (`POLLIN`): it
/// becomes readable when the server has work for `sockflow_server_turn`
/// (a connection, data, a command or stop from another thread). Timers do
/// not make it readable: poll with `sockflow_server_timeout`. Owned by the
/// server: do not read, close or change it. Returns the descriptor, or
/// `SOCKFLOW_EINVAL` for NULL or a server of more than one worker.
#[no_mangle]
pub extern "C" fn sockflow_server_fd(s: *const sockflow_server) -> c_int {
    ffi_boundary! {
        let server = try_ref!(s, "server");
        try_ok!(one_worker(server, "sockflow_server_fd"));
        server.fd
    }
}

/// The program's own loop drives one loop: a server of several workers
/// must run with `sockflow_server_run` or `_start`.
fn one_worker(s: &sockflow_server, call: &str) -> crate::Result<()> {
    match s.handle.workers() {
        1 => Ok(()),
        n => Err(Error::inval(format!(
            "{call}: the server has {n} workers; a program's own loop drives one (cfg.workers = 1): run it with sockflow_server_run or sockflow_server_start"
        ))),
    }
}

/// Writes to `*timeout_ms` how many ms a program's own loop may wait on
/// `sockflow_server_fd` before the next `sockflow_server_turn` is due even
/// without an event (a timer, an idle check): `SOCKFLOW_FOREVER` = no such
/// deadline, 0 = now (rounded up, so a turn after the wait finds the timer
/// due); pass it to `poll()` as is. Call it right before polling, from the
/// thread that turns the server. Returns 0, or (and `*timeout_ms` is left
/// alone) `SOCKFLOW_EBUSY` while a run or a turn uses the server on another
/// thread, `SOCKFLOW_EBADHANDLE` after it stopped, `SOCKFLOW_EINVAL` for
/// NULL or a server of more than one worker. (An out-parameter, because
/// `SOCKFLOW_FOREVER` and `SOCKFLOW_EINVAL` are both -1.)
#[no_mangle]
pub extern "C" fn sockflow_server_timeout(s: *mut sockflow_server, timeout_ms: *mut c_int) -> c_int {
    ffi_boundary! {
        let server = try_ref!(s, "server");
        let out = try_mut!(timeout_ms, "timeout_ms");
        try_ok!(one_worker(server, "sockflow_server_timeout"));
        let mut st = server.run.lock();
        let d = match &mut *st {
            State::Ready(e) | State::Driven(e) => e.next_deadline(),
            State::Running | State::RunningThenFree => return fail(Error::new(Code::Busy, "server is running on another thread")),
            State::Done(_) => return fail(Error::new(Code::BadHandle, "server has stopped")),
        };
        *out = match d {
            None => SOCKFLOW_FOREVER,
            Some(d) => d.as_nanos().div_ceil(1_000_000).min(c_int::MAX as u128) as c_int,
        };
        0
    }
}

/// A `*mut sockflow_server` handed to the run thread of `sockflow_server_start`.
struct Started(*mut sockflow_server);
// SAFETY: the handle stays valid while the run uses it (`free` waits for
// the run, or leaves the freeing to it), as for `sockflow_server_run`.
unsafe impl Send for Started {}

/// Runs the server on a new background thread, as `sockflow_server_run`
/// would, and returns at once: 0, or `SOCKFLOW_EBUSY`/`SOCKFLOW_EBADHANDLE`
/// as `run`, `SOCKFLOW_EOS` if no thread could be started. Stop it with
/// `sockflow_server_stop` (or a callback's STOP) and wait for it with
/// `sockflow_server_join`, or just `sockflow_server_close` it (stops and waits).
#[no_mangle]
pub extern "C" fn sockflow_server_start(s: *mut sockflow_server) -> c_int {
    ffi_boundary! {
        let server = try_ref!(s, "server");
        let run = Arc::clone(&server.run);
        let (engine, announce) = try_ok!(take_engine(&run));
        // The engine goes with the thread; if none starts, it comes back.
        let slot = Arc::new(Mutex::new(Some(engine)));
        let (p, theirs) = (Started(s), slot.clone());
        let started = std::thread::Builder::new().name("sockflow-server".into()).spawn(move || {
            let p = p;
            let engine = theirs.lock().unwrap_or_else(|p| p.into_inner()).take();
            if let Some(e) = engine {
                let _ = run_engine(p.0, &run, e, announce);
            }
        });
        if let Err(e) = started {
            if let Some(engine) = slot.lock().unwrap_or_else(|p| p.into_inner()).take() {
                put_back(s, &server.run, if announce { State::Ready(engine) } else { State::Driven(engine) });
            }
            return fail(Error::io("thread", &e));
        }
        0
    }
}

/// Waits until the server's run has ended (started with `sockflow_server_start`
/// or run by `sockflow_server_run` on another thread; stop it first, or
/// from a callback) and returns its result: 0 or the negative code of the
/// error that ended it (with its message as this thread's last error).
/// `SOCKFLOW_EBUSY` when called from one of the server's own callbacks (it
/// would wait for itself), `SOCKFLOW_EBADHANDLE` if it is not running.
/// Free the handle afterwards with `sockflow_server_close`.
#[no_mangle]
pub extern "C" fn sockflow_server_join(s: *mut sockflow_server) -> c_int {
    ffi_boundary! {
        let server = try_ref!(s, "server");
        if in_callback_of(&server.handle.0) || server.handle.on_loop_thread() {
            return fail(Error::new(Code::Busy, "sockflow_server_join from the server's own callback would wait forever"));
        }
        let mut st = server.run.lock();
        loop {
            match &*st {
                State::Running | State::RunningThenFree => st = server.run.ended.wait(st).unwrap_or_else(|p| p.into_inner()),
                State::Done(r) => return rc(r.clone()),
                State::Ready(_) | State::Driven(_) => {
                    return fail(Error::new(Code::BadHandle, "server is not running: start it with sockflow_server_start first"))
                }
            }
        }
    }
}

/// Frees a server. If `sockflow_server_run`, `_start` or a
/// `sockflow_server_turn` is running it on another thread, stops it first
/// and waits for that to return (its connections closed, their `on_close`
/// called); between two turns of the program's own loop, it closes the
/// connections itself (flushing, bounded). Called from one of the server's
/// own callbacks (timers included), it stops the server and the handle is
/// freed when the run or turn returns. NULL is fine; do not call twice, nor
/// race it with the start of a `run` or `turn` (one called after `free`
/// uses freed memory).
#[no_mangle]
pub extern "C" fn sockflow_server_close(s: *mut sockflow_server) {
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
                State::Running if in_callback_of(&server.handle.0) || server.handle.on_loop_thread() => {
                    *st = State::RunningThenFree;
                    return;
                }
                State::Running => st = run.ended.wait(st).unwrap_or_else(|p| p.into_inner()),
                // Freed already, from a callback: the run will free it.
                State::RunningThenFree => return,
                // Between two turns of the program's own loop: finish it
                // here (flush, close, bounded), as a run would.
                State::Driven(_) => {
                    if let State::Driven(e) = std::mem::replace(&mut *st, State::Running) {
                        drop(st);
                        e.finish();
                        st = run.lock();
                        *st = State::Done(Ok(()));
                    }
                }
                State::Ready(_) | State::Done(_) => break,
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
        sockflow_server_close(p);
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
    ffi_boundary! {
        run_once(args, handler, userdata, false)
    }
}

/// The whole UDP server in one call (see `sockflow_tcp_server_run`).
#[no_mangle]
pub extern "C" fn sockflow_udp_server_run(args: *const sockflow_args, handler: sockflow_handler, userdata: *mut c_void) -> c_int {
    ffi_boundary! {
        run_once(args, handler, userdata, true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `cfg.mode` takes exactly the values of [`Mode`], the one list of modes.
    #[test]
    fn mode_values_are_the_modes_own() {
        let a = crate::args::Args::new(crate::args::Role::Server, "t");
        for m in [Mode::EventLoop, Mode::ThreadPerConnection] {
            let c = sockflow_server_config { mode: m as c_int, ..defaults() };
            assert_eq!(core_config(&a, &c).unwrap().mode, m);
        }
        let c = sockflow_server_config { mode: 2, ..defaults() };
        assert_eq!(core_config(&a, &c).err().map(|e| e.code), Some(Code::Inval));
    }
}
