//! `sockflow_handler`: the callbacks a server drives, the built-in handlers,
//! and `sockflow_conn`, the connection a callback is given.

use super::addr::sockflow_addr;
use super::bytes_arg;
use super::error::rc;
use super::stdio::CFile;
use crate::error::Error;
use crate::server::{builtin, Action, CloseReason, Conn, Handler};
use std::cell::RefCell;
use std::ffi::{c_char, c_int, c_void};

/// What a callback returns.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum sockflow_action {
    /// Keep the connection.
    Continue = 0,
    /// Send what was queued, then close this connection.
    Close = 1,
    /// Stop the whole server gracefully (the run call then returns 0).
    Stop = 2,
}

/// Why a connection ended (the `reason` of `on_close`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum sockflow_close_reason {
    /// The client closed its side.
    Peer = 1,
    /// The client sent the quit word.
    Quit = 2,
    /// No traffic for the idle timeout.
    Idle = 3,
    /// A socket error, a reset, or an over-long message.
    Error = 4,
    /// The server is stopping.
    Stopping = 5,
    /// A callback returned `SOCKFLOW_ACTION_CLOSE`.
    Handler = 6,
    /// The client did not read its replies and its queue hit `max_queue`.
    Overflow = 7,
}

fn reason_code(r: CloseReason) -> c_int {
    (match r {
        CloseReason::Peer => sockflow_close_reason::Peer,
        CloseReason::Quit => sockflow_close_reason::Quit,
        CloseReason::Idle => sockflow_close_reason::Idle,
        CloseReason::Error => sockflow_close_reason::Error,
        CloseReason::Stopping => sockflow_close_reason::Stopping,
        CloseReason::Handler => sockflow_close_reason::Handler,
        CloseReason::Overflow => sockflow_close_reason::Overflow,
    }) as c_int
}

/// A connection as a callback sees it. Valid only during the callback
/// that received it: keep `sockflow_conn_id()` to refer to it later.
pub struct sockflow_conn {
    _private: [u8; 0],
}

/// Called when a TCP client connects; may send a greeting. Returns a
/// `sockflow_action` (negative = close with reason ERROR).
pub type sockflow_on_connect = Option<unsafe extern "C" fn(userdata: *mut c_void, conn: *mut sockflow_conn) -> c_int>;
/// Called for each message (each datagram for UDP). `msg` holds `len`
/// bytes followed by a NUL (so it prints with `%s`; binary frames may hold
/// NULs too); it is valid only during the call. May send zero or more
/// replies. Returns a `sockflow_action` (negative = close with reason ERROR).
pub type sockflow_on_message =
    Option<unsafe extern "C" fn(userdata: *mut c_void, conn: *mut sockflow_conn, msg: *const c_char, len: usize) -> c_int>;
/// Called once when a TCP connection has ended, with a
/// `sockflow_close_reason`; nothing can be sent any more.
pub type sockflow_on_close = Option<unsafe extern "C" fn(userdata: *mut c_void, conn: *mut sockflow_conn, reason: c_int)>;

/// A server's callbacks, passed by value. Any callback may be NULL except
/// `on_message`. `userdata` (given with the handler to the server call) is
/// passed first to every callback; callbacks run on the server's loop
/// thread, or, in `SOCKFLOW_MODE_THREAD_PER_CONNECTION`, on each
/// connection's own thread, so callbacks of different connections may run
/// at the same time there. Methods: `sockflow_handler_print`,
/// `sockflow_handler_echo`, `sockflow_handler_hello`, `sockflow_handler_upper`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct sockflow_handler {
    pub on_connect: sockflow_on_connect,
    pub on_message: sockflow_on_message,
    pub on_close: sockflow_on_close,
    /// 0 for your own callbacks. Set by `sockflow_handler_print()` and the
    /// other built-ins, which ignore the callback fields.
    pub builtin: c_int,
}

const PRINT: c_int = 1;
const ECHO: c_int = 2;
const HELLO: c_int = 3;
const UPPER: c_int = 4;

fn builtin_handler(id: c_int) -> sockflow_handler {
    sockflow_handler { on_connect: None, on_message: None, on_close: None, builtin: id }
}

/// The tutorials' C servers: prints `client ip = … port = …` on connect (TCP)
/// or before each datagram (UDP), each message on its own line, and
/// `client closed ip = … port = … (reason)`. Prints to the `FILE *` given as
/// userdata, or stdout when it is NULL; every line is flushed.
#[no_mangle]
pub extern "C" fn sockflow_handler_print() -> sockflow_handler {
    ffi_boundary! { builtin_handler(PRINT) }
}

/// Echo: every message is sent back to its sender.
#[no_mangle]
pub extern "C" fn sockflow_handler_echo() -> sockflow_handler {
    ffi_boundary! { builtin_handler(ECHO) }
}

/// Greets `welcome` on connect, replies `Hello <msg>`, closes on `exit`.
#[no_mangle]
pub extern "C" fn sockflow_handler_hello() -> sockflow_handler {
    ffi_boundary! { builtin_handler(HELLO) }
}

/// Replies with the message in upper case (ASCII letters; other bytes unchanged).
#[no_mangle]
pub extern "C" fn sockflow_handler_upper() -> sockflow_handler {
    ffi_boundary! { builtin_handler(UPPER) }
}

impl super::PanicValue for sockflow_handler {
    fn panic_value() -> sockflow_handler {
        builtin_handler(0)
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

fn action_of(rc: c_int) -> Action {
    match rc {
        0 => Action::Continue,
        2 => Action::Stop,
        r if r < 0 => Action::Abort,
        _ => Action::Close,
    }
}

fn conn_ptr(c: &mut Conn<'_>) -> *mut sockflow_conn {
    (c as *mut Conn<'_>).cast()
}

thread_local! {
    /// Message copies with a trailing NUL, reused across callbacks.
    static MSG: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

impl Handler for CHandler {
    fn on_connect(&self, c: &mut Conn<'_>) -> Action {
        match self.h.on_connect {
            // SAFETY: a C callback with the documented signature.
            Some(f) => action_of(unsafe { f(self.ud, conn_ptr(c)) }),
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
        // SAFETY: a C callback with the documented signature; `buf` outlives the call.
        let rc = unsafe { f(self.ud, conn_ptr(c), buf.as_ptr().cast(), msg.len()) };
        if buf.capacity() <= 64 * 1024 {
            MSG.with(|m| *m.borrow_mut() = buf);
        }
        action_of(rc)
    }

    fn on_close(&self, c: &mut Conn<'_>, reason: CloseReason) {
        if let Some(f) = self.h.on_close {
            // SAFETY: a C callback with the documented signature.
            unsafe { f(self.ud, conn_ptr(c), reason_code(reason)) }
        }
    }
}

/// The core handler for a C `sockflow_handler` + userdata.
pub(crate) fn to_core(h: sockflow_handler, ud: *mut c_void) -> crate::Result<std::sync::Arc<dyn Handler>> {
    Ok(match h.builtin {
        0 => {
            if h.on_message.is_none() {
                return Err(Error::inval("handler.on_message is NULL"));
            }
            std::sync::Arc::new(CHandler { h, ud })
        }
        PRINT => std::sync::Arc::new(builtin::Print::new(Box::new(CFile::or_stdout(ud.cast())))),
        ECHO => std::sync::Arc::new(builtin::Echo),
        HELLO => std::sync::Arc::new(builtin::Hello),
        UPPER => std::sync::Arc::new(builtin::Upper),
        b => return Err(Error::inval(format!("handler.builtin {b} is not a built-in handler"))),
    })
}

/// The `Conn` behind a callback's `sockflow_conn *`.
fn conn<'a>(c: *mut sockflow_conn) -> Option<&'a mut Conn<'a>> {
    // SAFETY: a sockflow_conn* is only ever handed out as a cast &mut Conn,
    // valid for the duration of the callback (documented).
    unsafe { c.cast::<Conn<'a>>().as_mut() }
}

/// Sends one message to this connection (framed) or, for UDP, one datagram
/// back to the sender. With line frames, inside `on_message` the reply ends
/// like the message it answers (`\n`, `\r\n`, or nothing after a last line
/// or datagram without one), so an echo is byte-exact; in `on_connect` a
/// `\n` is added. Replies are queued
/// and written without blocking. Returns 0, `SOCKFLOW_EMSGSIZE` if it does
/// not fit the frame, `SOCKFLOW_EBADHANDLE` inside `on_close`.
#[no_mangle]
pub extern "C" fn sockflow_conn_send(c: *mut sockflow_conn, msg: *const c_void, len: usize) -> c_int {
    ffi_boundary! {
        let Some(c) = conn(c) else { return super::error::null_arg("conn") };
        rc(c.send(try_ok!(bytes_arg(msg, len, "msg"))))
    }
}

/// `sockflow_conn_send` of a NUL-terminated string (without its NUL).
#[no_mangle]
pub extern "C" fn sockflow_conn_send_str(c: *mut sockflow_conn, s: *const c_char) -> c_int {
    ffi_boundary! {
        let Some(c) = conn(c) else { return super::error::null_arg("conn") };
        if s.is_null() {
            return super::error::null_arg("s");
        }
        // SAFETY: non-NULL, NUL-terminated by contract.
        rc(c.send(unsafe { std::ffi::CStr::from_ptr(s) }.to_bytes()))
    }
}

/// Sends one message to every connection of the server (this one too
/// when `include_self` is non-zero), e.g. a chat room. Delivered after the
/// callback returns. TCP only.
#[no_mangle]
pub extern "C" fn sockflow_conn_broadcast(c: *mut sockflow_conn, msg: *const c_void, len: usize, include_self: c_int) -> c_int {
    ffi_boundary! {
        let Some(c) = conn(c) else { return super::error::null_arg("conn") };
        rc(c.broadcast(try_ok!(bytes_arg(msg, len, "msg")), include_self != 0))
    }
}

/// Sends one message to another connection of the same server, by id
/// (from `sockflow_conn_id`). An id that is gone is ignored. TCP only.
#[no_mangle]
pub extern "C" fn sockflow_conn_send_to(c: *mut sockflow_conn, id: u64, msg: *const c_void, len: usize) -> c_int {
    ffi_boundary! {
        let Some(c) = conn(c) else { return super::error::null_arg("conn") };
        rc(c.server().send(id, try_ok!(bytes_arg(msg, len, "msg"))))
    }
}

/// Asks the server to stop gracefully once this callback returns.
#[no_mangle]
pub extern "C" fn sockflow_conn_stop_server(c: *mut sockflow_conn) -> c_int {
    ffi_boundary! {
        let Some(c) = conn(c) else { return super::error::null_arg("conn") };
        c.server().stop();
        0
    }
}

/// The connection's id: unique for the server's life, never reused, never
/// 0. Returns 0 (and sets the last error) for NULL.
#[no_mangle]
pub extern "C" fn sockflow_conn_id(c: *const sockflow_conn) -> u64 {
    ffi_boundary! {
        match conn(c.cast_mut()) {
            Some(c) => c.id(),
            None => {
                super::error::null_arg("conn");
                0
            }
        }
    }
}

/// Writes the peer's address (for UDP, the datagram's sender) to `*out`.
#[no_mangle]
pub extern "C" fn sockflow_conn_peer(c: *const sockflow_conn, out: *mut sockflow_addr) -> c_int {
    ffi_boundary! {
        let Some(c) = conn(c.cast_mut()) else { return super::error::null_arg("conn") };
        check_out!(out, "out");
        sockflow_addr::write_opt(out, c.peer());
        0
    }
}

/// The per-connection user pointer (NULL until set). For UDP it lasts one datagram.
#[no_mangle]
pub extern "C" fn sockflow_conn_user(c: *const sockflow_conn) -> *mut c_void {
    ffi_boundary! {
        match conn(c.cast_mut()) {
            Some(c) => c.user() as *mut c_void,
            None => {
                super::error::null_arg("conn");
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
        let Some(c) = conn(c) else { return super::error::null_arg("conn") };
        c.set_user(user as usize);
        0
    }
}
