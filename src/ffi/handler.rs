//! `sockflow_handler`: the callbacks a server drives, the built-in handlers,
//! and `sockflow_conn`, the connection a callback is given.

use super::addr::sockflow_addr;
use super::cenum::CEnum;
use super::error::{fail, rc};
use super::stdio::CFile;
use super::{bytes_arg, limit_arg, put, Zero};
use crate::error::{Code, Error};
use crate::server::{builtin, Action, CloseReason, Conn, Handler, Shared};
use std::cell::RefCell;
use std::ffi::{c_char, c_int, c_uint, c_void};
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

/// The C name of [`Action`], exported by cbindgen under this name
/// (`[export.rename]` in cbindgen.toml): one list of actions.
pub use crate::server::Action as sockflow_action;

/// The C name of [`CloseReason`]: the core enum is the one list of close
/// reasons (`#[repr(C)]`, explicit values); cbindgen exports it under this
/// name (`[export.rename]` in cbindgen.toml), so `on_close` is given
/// `reason as c_int` with no table between the two.
pub use crate::server::CloseReason as sockflow_close_reason;

/// A connection as a callback sees it. Valid only during the callback
/// that received it, on that callback's thread: keep `sockflow_conn_id()`
/// to refer to it later (`sockflow_conn_send_to`, `sockflow_server_send_to`).
/// It is an opaque token, never a pointer to memory: a `sockflow_conn *`
/// used anywhere else (kept from an earlier callback, passed to another
/// thread) returns `SOCKFLOW_EBADHANDLE` and never acts on a connection.
pub struct sockflow_conn {
    _private: [u8; 0],
}

/// Called when a TCP client connects, when an outgoing connection
/// (`sockflow_server_connect`, `sockflow_conn_connect`) is connected, or at
/// the first datagram of a UDP sender with `udp_peers` (before `on_message`
/// for it); may send a greeting. Returns a
/// `sockflow_action` (negative = close with reason ERROR).
pub type sockflow_on_connect = Option<unsafe extern "C" fn(userdata: *mut c_void, conn: *mut sockflow_conn) -> c_int>;
/// Called for each message (each datagram for UDP). `msg` holds `len`
/// bytes followed by a NUL (so it prints with `%s`; binary frames may hold
/// NULs too); it is valid only during the call. May send zero or more
/// replies. Returns a `sockflow_action` (negative = close with reason ERROR).
pub type sockflow_on_message =
    Option<unsafe extern "C" fn(userdata: *mut c_void, conn: *mut sockflow_conn, msg: *const c_char, len: usize) -> c_int>;
/// Called once when a TCP connection (or a UDP peer, with `udp_peers`) has
/// ended, with a `sockflow_close_reason`; nothing can be sent any more.
/// Outgoing connections get it too, also those that never connected
/// (`SOCKFLOW_CLOSE_REASON_CONNECT_FAILED`, see `sockflow_conn_error`; in
/// `SOCKFLOW_MODE_THREAD_PER_CONNECTION` that one runs on the loop thread,
/// the connection having no thread yet): free its user pointer here.
pub type sockflow_on_close = Option<unsafe extern "C" fn(userdata: *mut c_void, conn: *mut sockflow_conn, reason: c_int)>;

/// A server's callbacks, passed by value. Any callback may be NULL except
/// `on_message`. `userdata` (given with the handler to the server call) is
/// passed first to every callback; callbacks run on the server's loop
/// thread — with `sockflow_server_config.workers` > 1, on the thread of the
/// connection's worker (`sockflow_conn_worker`) — or, in
/// `SOCKFLOW_MODE_THREAD_PER_CONNECTION`, on each connection's own thread.
/// So with several workers or that mode, callbacks of different connections
/// may run at the same time; those of one connection never do. Methods: `sockflow_handler_print`,
/// `sockflow_handler_echo`, `sockflow_handler_hello`, `sockflow_handler_upper`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct sockflow_handler {
    /// See `sockflow_on_connect`; NULL: nothing happens at a connect.
    pub on_connect: sockflow_on_connect,
    /// See `sockflow_on_message`; required unless `builtin` names a built-in.
    pub on_message: sockflow_on_message,
    /// See `sockflow_on_close`; NULL: nothing happens at a close.
    pub on_close: sockflow_on_close,
    /// A `sockflow_builtin`: `SOCKFLOW_BUILTIN_NONE` (0) for your own
    /// callbacks. Set by `sockflow_handler_print()` and the other built-ins,
    /// which ignore the callback fields.
    pub builtin: c_int,
}

/// The built-in handlers, as found in `sockflow_handler.builtin`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum sockflow_builtin {
    /// Your own callbacks.
    None = 0,
    /// `sockflow_handler_print()`.
    Print = 1,
    /// `sockflow_handler_echo()`.
    Echo = 2,
    /// `sockflow_handler_hello()`.
    Hello = 3,
    /// `sockflow_handler_upper()`.
    Upper = 4,
}
c_enum!(sockflow_builtin, "sockflow_builtin": None, Print, Echo, Hello, Upper);
c_enum!(Action, "sockflow_action": Continue, Close, Stop, Abort);
c_enum!(CloseReason, "sockflow_close_reason": Peer, Quit, Idle, Error, Stopping, Handler, Overflow, ConnectFailed);

fn builtin_handler(id: sockflow_builtin) -> sockflow_handler {
    sockflow_handler { on_connect: None, on_message: None, on_close: None, builtin: id as c_int }
}

/// The tutorials' C servers: prints `client ip = … port = …` on connect (TCP)
/// or before each datagram (UDP), each message on its own line, and
/// `client closed ip = … port = … (reason)`. Prints to the `FILE *` given as
/// userdata, or stdout when it is NULL; every line is flushed.
#[no_mangle]
pub extern "C" fn sockflow_handler_print() -> sockflow_handler {
    ffi_boundary! {
        builtin_handler(sockflow_builtin::Print)
    }
}

/// Echo: every message is sent back to its sender.
#[no_mangle]
pub extern "C" fn sockflow_handler_echo() -> sockflow_handler {
    ffi_boundary! {
        builtin_handler(sockflow_builtin::Echo)
    }
}

/// Greets `welcome` on connect, replies `Hello <msg>`, closes on `exit`.
#[no_mangle]
pub extern "C" fn sockflow_handler_hello() -> sockflow_handler {
    ffi_boundary! {
        builtin_handler(sockflow_builtin::Hello)
    }
}

/// Replies with the message in upper case (ASCII letters; other bytes unchanged).
#[no_mangle]
pub extern "C" fn sockflow_handler_upper() -> sockflow_handler {
    ffi_boundary! {
        builtin_handler(sockflow_builtin::Upper)
    }
}

impl super::PanicValue for sockflow_handler {
    fn panic_value() -> sockflow_handler {
        builtin_handler(sockflow_builtin::None)
    }
}

impl super::PanicValue for u64 {
    fn panic_value() -> u64 {
        0
    }
}

impl<T> super::PanicValue for *mut T {
    fn panic_value() -> *mut T {
        std::ptr::null_mut()
    }
}

/// A C handler: function pointers and userdata.
struct CHandler {
    h: sockflow_handler,
    ud: *mut c_void,
}

// SAFETY: the caller promises (documented on sockflow_handler) that its
// callbacks and userdata may be used from the server's threads.
unsafe impl Send for CHandler {}
unsafe impl Sync for CHandler {}

/// The action a C callback returned: the values are [`Action`]'s own.
fn action_of(rc: c_int) -> Action {
    match rc {
        r if r < 0 => Action::Abort,
        r => Action::from_c(r).unwrap_or_else(|| {
            unknown_action(r);
            Action::Close
        }),
    }
}

/// Reports the first value a callback returned that is no
/// `sockflow_action`, once per process: a bug the programmer should see,
/// without a line per message.
fn unknown_action(r: c_int) {
    static REPORTED: AtomicBool = AtomicBool::new(false);
    if !REPORTED.swap(true, Ordering::Relaxed) {
        let _ = writeln!(
            CFile::stderr(),
            "sockflow: a callback returned {r}, which is not a sockflow_action: treated as SOCKFLOW_ACTION_CLOSE \
             (reported once per process)"
        );
    }
}

/// The callback running on this thread, as its `sockflow_conn *` stands for it.
struct Call {
    token: usize,
    /// The `&mut Conn` the callback was given, lifetime erased.
    conn: *mut c_void,
    id: u64,
    /// The server's control block, to tell its own callbacks from others'.
    server: *const Shared,
}

thread_local! {
    /// Callbacks running on this thread, innermost last (a callback may run
    /// a server of its own, so this is a stack; only the innermost is usable).
    static CALLS: RefCell<Vec<Call>> = const { RefCell::new(Vec::new()) };
}

/// Serial number of callback invocations, process-wide, so a token is never
/// valid on another thread or in a later callback.
static SERIAL: AtomicUsize = AtomicUsize::new(0);

/// Tokens look nothing like heap pointers: the top bits form a non-canonical
/// address on 64-bit machines (dereferencing one faults at once instead of
/// reading another connection's memory) and the low bit is set.
#[cfg(target_pointer_width = "64")]
const TAG: usize = 0x5F0C << 48;
#[cfg(target_pointer_width = "64")]
const SERIAL_MASK: usize = (1 << 47) - 1;
#[cfg(not(target_pointer_width = "64"))]
const TAG: usize = 0;
#[cfg(not(target_pointer_width = "64"))]
const SERIAL_MASK: usize = (1 << 31) - 1;

/// Marks a callback as running on this thread until dropped.
struct InCallback;

impl InCallback {
    /// Records `c` as the running callback's connection and returns the
    /// token C is given for it.
    fn enter(c: &mut Conn<'_>) -> (InCallback, *mut sockflow_conn) {
        let token = TAG | ((SERIAL.fetch_add(1, Ordering::Relaxed) & SERIAL_MASK) << 1) | 1;
        let call = Call { token, conn: (c as *mut Conn<'_>).cast(), id: c.id(), server: Arc::as_ptr(c.shared) };
        CALLS.with(|s| s.borrow_mut().push(call));
        (InCallback, token as *mut sockflow_conn)
    }
}

impl Drop for InCallback {
    fn drop(&mut self) {
        CALLS.with(|s| s.borrow_mut().pop());
    }
}

/// True when this thread is inside a callback of the server whose control
/// block is `server` (`sockflow_server_close` cannot wait for that server).
pub(crate) fn in_callback_of(server: &Arc<Shared>) -> bool {
    CALLS.with(|s| s.borrow().iter().any(|c| std::ptr::eq(c.server, Arc::as_ptr(server))))
}

/// The one way from a `sockflow_conn *` to its connection: the token must
/// be the one of the callback running now on this thread. Anything else
/// (a token kept from an earlier callback, one from another thread, a
/// garbage pointer) is refused without being dereferenced.
fn with_conn<R>(c: *const sockflow_conn, f: impl FnOnce(&mut Conn<'_>) -> R) -> crate::Result<R> {
    if c.is_null() {
        return Err(Error::inval("conn is NULL"));
    }
    let top = CALLS.with(|s| s.borrow().last().map(|k| (k.token, k.conn, k.id)));
    match top {
        Some((token, conn, _)) if token == c as usize => {
            // SAFETY: `conn` is the `&mut Conn` given to the callback now
            // running on this thread (its Rust frame is suspended in C below
            // us and does not touch it); `InCallback` removes it before that
            // frame uses the connection again.
            Ok(f(unsafe { &mut *conn.cast::<Conn<'_>>() }))
        }
        Some((_, _, id)) => Err(Error::new(
            Code::BadHandle,
            format!(
                "conn handle is stale: it was given to an earlier callback or on another thread, not to the \
                 callback running now (of connection {id}); a sockflow_conn * is valid only during the callback \
                 that received it: keep sockflow_conn_id() and use sockflow_conn_send_to()"
            ),
        )),
        None => Err(Error::new(
            Code::BadHandle,
            "conn handle used outside its callback: no callback is running on this thread; a sockflow_conn * is \
             valid only during the callback that received it: keep sockflow_conn_id() and use sockflow_server_send_to()",
        )),
    }
}

thread_local! {
    /// Message copies with a trailing NUL, reused across callbacks.
    static MSG: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

impl Handler for CHandler {
    fn on_connect(&self, c: &mut Conn<'_>) -> Action {
        match self.h.on_connect {
            Some(f) => {
                let (_in, conn) = InCallback::enter(c);
                // SAFETY: a C callback with the documented signature.
                action_of(unsafe { f(self.ud, conn) })
            }
            None => Action::Continue,
        }
    }

    fn on_message(&self, c: &mut Conn<'_>, msg: &[u8]) -> Action {
        let Some(f) = self.h.on_message else { return Action::Continue };
        // Take the buffer out, so a callback that somehow re-enters gets its own.
        let mut buf = MSG.with(|m| std::mem::take(&mut *m.borrow_mut()));
        buf.clear();
        buf.extend_from_slice(msg);
        buf.push(0);
        // An echo of (part of) the copy is framed as one of the message itself.
        c.answering_copy(&buf[..msg.len()]);
        let (in_cb, conn) = InCallback::enter(c);
        // SAFETY: a C callback with the documented signature; `buf` outlives the call.
        let rc = unsafe { f(self.ud, conn, buf.as_ptr().cast(), msg.len()) };
        drop(in_cb);
        if buf.capacity() <= 64 * 1024 {
            MSG.with(|m| *m.borrow_mut() = buf);
        }
        action_of(rc)
    }

    fn on_close(&self, c: &mut Conn<'_>, reason: CloseReason) {
        if let Some(f) = self.h.on_close {
            let (_in, conn) = InCallback::enter(c);
            // SAFETY: a C callback with the documented signature.
            unsafe { f(self.ud, conn, reason as c_int) }
        }
    }
}

/// The core handler for a C `sockflow_handler` + userdata.
pub(crate) fn to_core(h: sockflow_handler, ud: *mut c_void) -> crate::Result<std::sync::Arc<dyn Handler>> {
    Ok(match sockflow_builtin::arg(h.builtin, "handler.builtin")? {
        sockflow_builtin::None => {
            if h.on_message.is_none() {
                return Err(Error::inval("handler.on_message is NULL"));
            }
            std::sync::Arc::new(CHandler { h, ud })
        }
        sockflow_builtin::Print => std::sync::Arc::new(builtin::Print::new(Box::new(CFile::or_stdout(ud.cast())))),
        sockflow_builtin::Echo => std::sync::Arc::new(builtin::Echo),
        sockflow_builtin::Hello => std::sync::Arc::new(builtin::Hello),
        sockflow_builtin::Upper => std::sync::Arc::new(builtin::Upper),
    })
}

/// Sends one message to this connection (framed) or, for UDP, one datagram
/// back to the sender. With line frames, inside `on_message` the reply ends
/// like the message it answers (`\n`, `\r\n`, or nothing after a last line
/// or datagram without one), so an echo is byte-exact; in `on_connect` a
/// `\n` is added. Replies are queued
/// and written without blocking. A UDP reply leaves with those of the
/// whole batch of datagrams the loop received (one `sendmmsg`); one the
/// kernel refuses then (its buffer full) is dropped and logged, as the
/// datagram could have been lost on the way anyway. Returns 0,
/// `SOCKFLOW_EMSGSIZE` if it does not fit the frame, `SOCKFLOW_EBADHANDLE`
/// inside `on_close` or for a `conn` that is not the running callback's.
#[no_mangle]
pub extern "C" fn sockflow_conn_send(c: *mut sockflow_conn, msg: *const c_void, len: usize) -> c_int {
    ffi_boundary! {
        rc(with_conn(c, |c| c.send(bytes_arg(msg, len, "msg")?)).and_then(|r| r))
    }
}

/// `sockflow_conn_send` of a NUL-terminated string (without its NUL).
#[no_mangle]
pub extern "C" fn sockflow_conn_send_str(c: *mut sockflow_conn, s: *const c_char) -> c_int {
    ffi_boundary! {
        let send = |c: &mut Conn<'_>| {
            if s.is_null() {
                return Err(Error::inval("s is NULL"));
            }
            // SAFETY: non-NULL, NUL-terminated by contract.
            c.send(unsafe { std::ffi::CStr::from_ptr(s) }.to_bytes())
        };
        rc(with_conn(c, send).and_then(|r| r))
    }
}

/// Sends one message to every connection of the server (this one too
/// when `include_self` is non-zero), e.g. a chat room. Delivered after the
/// callback returns. TCP, or UDP with `udp_peers` (every peer).
#[no_mangle]
pub extern "C" fn sockflow_conn_broadcast(c: *mut sockflow_conn, msg: *const c_void, len: usize, include_self: c_int) -> c_int {
    ffi_boundary! {
        rc(with_conn(c, |c| c.broadcast(bytes_arg(msg, len, "msg")?, include_self != 0)).and_then(|r| r))
    }
}

/// Sends one message to another connection of the same server, by id
/// (from `sockflow_conn_id`). An id that is gone is ignored. TCP, or UDP
/// with `udp_peers` (a datagram to that peer).
#[no_mangle]
pub extern "C" fn sockflow_conn_send_to(c: *mut sockflow_conn, id: u64, msg: *const c_void, len: usize) -> c_int {
    ffi_boundary! {
        rc(with_conn(c, |c| c.server().send(id, bytes_arg(msg, len, "msg")?)).and_then(|r| r))
    }
}

/// Relays one message to connection `id` of the same server: what a proxy
/// does between its two sides. Unlike `sockflow_conn_send_to`, nothing is
/// ever dropped for `max_queue`: while connection `id` holds more than half
/// of `max_queue` unsent, this connection is not read (TCP slows its peer)
/// until `id` is down to a quarter, so memory stays bounded by the slower
/// side. With line frames the message keeps the line ending it came with.
/// An id that is gone is ignored. TCP only; from callbacks (on their
/// thread) only. With several workers both connections must be on one
/// worker (one opened by `sockflow_conn_connect` from this callback is):
/// else `SOCKFLOW_EBADHANDLE`.
#[no_mangle]
pub extern "C" fn sockflow_conn_relay(c: *mut sockflow_conn, id: u64, msg: *const c_void, len: usize) -> c_int {
    ffi_boundary! {
        rc(with_conn(c, |c| c.relay(id, bytes_arg(msg, len, "msg")?)).and_then(|r| r))
    }
}

/// Closes connection `id` of the same server once what is queued for it
/// has been sent (reason `SOCKFLOW_CLOSE_REASON_HANDLER`); one still connecting
/// closes at once. An id that is gone is ignored. Returns 0.
#[no_mangle]
pub extern "C" fn sockflow_conn_close_id(c: *mut sockflow_conn, id: u64) -> c_int {
    ffi_boundary! {
        rc(with_conn(c, |c| c.server().close(id)))
    }
}

/// Opens an outgoing TCP connection from this server's loop to `host`
/// (a name or an address) and `port`, as `sockflow_server_connect` does
/// (same arguments, same errors, `user` owned by the caller and handed to
/// the new connection's callbacks), and writes its id to `*id` at once.
/// Callable from any callback; never blocks.
#[no_mangle]
pub extern "C" fn sockflow_conn_connect(
    c: *mut sockflow_conn,
    host: *const c_char,
    port: c_int,
    timeout_ms: c_int,
    user: *mut c_void,
    id: *mut u64,
) -> c_int {
    ffi_boundary! {
        let server = try_ok!(with_conn(c, |c| c.server()));
        check_out!(id, "id");
        put(id, try_ok!(connect(&server, host, port, timeout_ms, user)))
    }
}

/// Opens an outgoing connection from this server's loop as `a` describes,
/// TLS included: see `sockflow_server_connect_args` (same arguments, same
/// errors), and writes its id to `*id` at once. Callable from any
/// callback; never blocks on the network (the first connect with a given
/// set of TLS files reads them, see there).
#[no_mangle]
pub extern "C" fn sockflow_conn_connect_args(
    c: *mut sockflow_conn,
    a: *const super::args::sockflow_args,
    user: *mut c_void,
    id: *mut u64,
) -> c_int {
    ffi_boundary! {
        let server = try_ok!(with_conn(c, |c| c.server()));
        check_out!(id, "id");
        put(id, try_ok!(connect_args(&server, a, user)))
    }
}

/// The checks and the call shared by `sockflow_conn_connect` and
/// `sockflow_server_connect`.
pub(crate) fn connect(
    s: &crate::server::ServerHandle,
    host: *const c_char,
    port: c_int,
    timeout_ms: c_int,
    user: *mut c_void,
) -> crate::Result<u64> {
    let host = super::str_arg(host, "host")?;
    let port = super::port_arg(port, if crate::unix::Place::parse(host).is_some() { 0 } else { 1 })?;
    let timeout = limit_arg(timeout_ms, "timeout_ms", Zero::Invalid)?;
    s.connect_to(&crate::server::Remote { timeout, ..crate::server::Remote::new(host, port) }, user as usize)
}

/// The checks and the call shared by `sockflow_conn_connect_args` and
/// `sockflow_server_connect_args`.
pub(crate) fn connect_args(s: &crate::server::ServerHandle, a: *const super::args::sockflow_args, user: *mut c_void) -> crate::Result<u64> {
    s.connect_args(&super::args::connect_args(a)?, user as usize)
}

/// Inside `on_close` with `SOCKFLOW_CLOSE_REASON_CONNECT_FAILED`: why the connect
/// failed, as a negative `SOCKFLOW_E…` code (`SOCKFLOW_ECONNREFUSED`,
/// `SOCKFLOW_ETIMEDOUT`, `SOCKFLOW_ERESOLVE`, ...), with this thread's last
/// error set to the message (`connect 127.0.0.1:9: Connection refused`).
/// 0 in any other callback (nothing failed); `SOCKFLOW_EBADHANDLE` for a
/// `conn` that is not the running callback's.
#[no_mangle]
pub extern "C" fn sockflow_conn_error(c: *const sockflow_conn) -> c_int {
    ffi_boundary! {
        match try_ok!(with_conn(c, |c| c.error().cloned())) {
            Some(e) => fail(e),
            None => 0,
        }
    }
}

/// Asks the server to stop gracefully once this callback returns.
#[no_mangle]
pub extern "C" fn sockflow_conn_stop_server(c: *mut sockflow_conn) -> c_int {
    ffi_boundary! {
        rc(with_conn(c, |c| c.server().stop()))
    }
}

/// The connection's id: unique for the server's life, never reused, never
/// 0. It is an opaque 64-bit value: keep it whole (a `uint64_t`, a hash or
/// map key) and pass it to `sockflow_conn_send_to`/`sockflow_server_send_to`
/// to reach that connection from anywhere; do not assume ids are small,
/// dense or ordered. To show users a number they can type (a chat room's
/// `/who`), keep your own small counter in the user pointer and a table from
/// it to the id. Returns 0 (and sets the last error: `SOCKFLOW_EINVAL` for NULL,
/// `SOCKFLOW_EBADHANDLE` for a `conn` that is not the running callback's).
#[no_mangle]
pub extern "C" fn sockflow_conn_id(c: *const sockflow_conn) -> u64 {
    ffi_boundary! {
        match with_conn(c, |c| c.id()) {
            Ok(id) => id,
            Err(e) => {
                fail(e);
                0
            }
        }
    }
}

/// The worker (event-loop thread, 0 to `workers - 1`, see
/// `sockflow_server_config.workers`) that `conn` lives on and this callback
/// runs on, for state kept per worker without a lock: every callback of
/// one connection runs on the same worker. 0 for a server of one worker.
/// Returns `SOCKFLOW_EINVAL` for NULL, `SOCKFLOW_EBADHANDLE` for a `conn`
/// that is not the running callback's.
#[no_mangle]
pub extern "C" fn sockflow_conn_worker(c: *const sockflow_conn) -> c_int {
    ffi_boundary! {
        match with_conn(c, |c| c.worker() as c_int) {
            Ok(w) => w,
            Err(e) => fail(e),
        }
    }
}

/// Writes the peer's address (for UDP, the datagram's sender) to `*out`.
#[no_mangle]
pub extern "C" fn sockflow_conn_peer(c: *const sockflow_conn, out: *mut sockflow_addr) -> c_int {
    ffi_boundary! {
        let peer = try_ok!(with_conn(c, |c| c.peer()));
        check_out!(out, "out");
        sockflow_addr::write_opt(out, peer);
        0
    }
}

/// The credentials of a client on a Unix domain socket (`unix:` servers),
/// read with `SO_PEERCRED` when it connected: its process id, user id and
/// group id, written through the pointers that are not NULL. For local
/// access control: `if (uid != getuid()) return SOCKFLOW_CLOSE;`. Returns 0,
/// or `SOCKFLOW_EINVAL` for a peer that is not local (TCP, UDP).
#[no_mangle]
pub extern "C" fn sockflow_conn_peer_cred(c: *const sockflow_conn, pid: *mut c_int, uid: *mut c_uint, gid: *mut c_uint) -> c_int {
    ffi_boundary! {
        let peer = try_ok!(with_conn(c, |c| c.peer()));
        rc(sockflow_addr::write_cred(peer, pid, uid, gid))
    }
}

/// The per-connection user pointer (NULL until set). For UDP it lasts one
/// datagram, or as long as the peer with `udp_peers`. NULL (and the last error set) for a `conn` that is not the
/// running callback's.
#[no_mangle]
pub extern "C" fn sockflow_conn_user(c: *const sockflow_conn) -> *mut c_void {
    ffi_boundary! {
        match with_conn(c, |c| c.user()) {
            Ok(u) => u as *mut c_void,
            Err(e) => {
                fail(e);
                std::ptr::null_mut()
            }
        }
    }
}

/// Sets the per-connection user pointer. sockflow never frees it: free
/// what it points to in `on_close`.
#[no_mangle]
pub extern "C" fn sockflow_conn_set_user(c: *mut sockflow_conn, user: *mut c_void) -> c_int {
    ffi_boundary! {
        rc(with_conn(c, |c| c.set_user(user as usize)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn callback_values_are_the_actions_own() {
        for a in [Action::Continue, Action::Close, Action::Stop, Action::Abort] {
            assert_eq!(action_of(a as c_int), a, "{a:?}");
        }
        assert_eq!(action_of(-7), Action::Abort);
        assert_eq!(action_of(7), Action::Close);
    }
}
