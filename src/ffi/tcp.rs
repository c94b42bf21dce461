//! TCP primitives: `sockflow_tcp_listener` and `sockflow_tcp`.
//!
//! A handle may be used by one thread at a time. Every handle returned
//! through an out-parameter is owned by the caller and freed by its close
//! function (which accepts NULL; never call it twice).

use super::addr::sockflow_addr;
use super::args::{core_args, sockflow_args};
use super::error::{fail, rc};
use super::{buf_arg, bytes_arg, copy_out, frame_arg, give, port_arg, str_arg};
use crate::error::{Code, Error};
use crate::net::{self, Family};
use crate::tcp::{Listener, Stream, DEFAULT_BACKLOG};
use std::ffi::{c_char, c_int, c_void};

/// A listening TCP socket. Methods: `sockflow_tcp_listen`,
/// `sockflow_tcp_listen_args`, `sockflow_tcp_accept`,
/// `sockflow_tcp_listener_port`, `sockflow_tcp_listener_fd`,
/// `sockflow_tcp_listener_close`.
pub struct sockflow_tcp_listener {
    inner: Listener,
}

/// A connected TCP stream with a framing for messages (line by default).
/// Methods: `sockflow_tcp_connect`, `sockflow_tcp_connect_args`,
/// `sockflow_tcp_send`, `sockflow_tcp_recv`, `sockflow_tcp_send_msg`,
/// `sockflow_tcp_recv_msg`, `sockflow_tcp_set_frame`,
/// `sockflow_tcp_set_timeouts`, `sockflow_tcp_peer`, `sockflow_tcp_fd`,
/// `sockflow_tcp_shutdown`, `sockflow_tcp_close`.
pub struct sockflow_tcp {
    inner: Stream,
}

/// Listens on `host`:`port` (`port` 0 = any free port; read it back with
/// `sockflow_tcp_listener_port`). SO_REUSEADDR is set, so a restarted server
/// binds at once; "::" listens on IPv4 and IPv6. `backlog` <= 0 means 128.
/// On success writes a new listener to `*out` (free it with
/// `sockflow_tcp_listener_close`) and returns 0.
#[no_mangle]
pub extern "C" fn sockflow_tcp_listen(host: *const c_char, port: c_int, backlog: c_int, out: *mut *mut sockflow_tcp_listener) -> c_int {
    ffi_boundary! {
        check_out!(out, "out");
        let host = try_ok!(str_arg(host, "host"));
        let port = try_ok!(port_arg(port, 0));
        let addrs = try_ok!(net::resolve(host, port, Family::Any));
        let backlog = if backlog <= 0 { DEFAULT_BACKLOG } else { backlog };
        give(out, sockflow_tcp_listener { inner: try_ok!(Listener::bind(&addrs, backlog)) })
    }
}

/// Listens on the host and port of parsed arguments (see `sockflow_tcp_listen`);
/// connections it accepts start with the arguments' frame.
#[no_mangle]
pub extern "C" fn sockflow_tcp_listen_args(args: *const sockflow_args, out: *mut *mut sockflow_tcp_listener) -> c_int {
    ffi_boundary! {
        check_out!(out, "out");
        let a = try_ok!(core_args(args));
        give(out, sockflow_tcp_listener { inner: try_ok!(Listener::from_args(&a, DEFAULT_BACKLOG)) })
    }
}

/// Waits up to `timeout_ms` (< 0 = forever, 0 = just check) for a client.
/// The connection starts with the listener's frame (line frames, or the
/// `--frame` of `sockflow_tcp_listen_args`).
/// On success writes the new connection to `*out` (free it with
/// `sockflow_tcp_close`) and, when `peer` is not NULL, its address; returns
/// 0. `SOCKFLOW_ETIMEDOUT` when nobody came in time.
#[no_mangle]
pub extern "C" fn sockflow_tcp_accept(
    l: *const sockflow_tcp_listener,
    timeout_ms: c_int,
    out: *mut *mut sockflow_tcp,
    peer: *mut sockflow_addr,
) -> c_int {
    ffi_boundary! {
        let l = try_ref!(l, "listener");
        check_out!(out, "out");
        let t = if timeout_ms < 0 { None } else { Some(std::time::Duration::from_millis(timeout_ms as u64)) };
        let s = try_ok!(l.inner.accept(t));
        sockflow_addr::write_opt(peer, s.peer());
        give(out, sockflow_tcp { inner: s })
    }
}

/// The port the listener is bound to, or a negative error code.
#[no_mangle]
pub extern "C" fn sockflow_tcp_listener_port(l: *const sockflow_tcp_listener) -> c_int {
    ffi_boundary! { c_int::from(try_ref!(l, "listener").inner.local_addr().port()) }
}

/// The listener's descriptor, for programs that poll it themselves (still
/// owned by the listener: do not close it). Negative error code for NULL.
#[no_mangle]
pub extern "C" fn sockflow_tcp_listener_fd(l: *const sockflow_tcp_listener) -> c_int {
    ffi_boundary! { try_ref!(l, "listener").inner.fd() }
}

/// Closes and frees the listener. NULL is fine; do not call twice.
#[no_mangle]
pub extern "C" fn sockflow_tcp_listener_close(l: *mut sockflow_tcp_listener) {
    ffi_boundary! {
        if !l.is_null() {
            // SAFETY: created by Box::into_raw in this module, freed once.
            drop(unsafe { Box::from_raw(l) });
        }
    }
}

/// Connects to `host`:`port`, trying every address the name resolves to,
/// each attempt bounded by `timeout_ms` (<= 0 = the OS's limit). Writes the
/// new connection to `*out` (free it with `sockflow_tcp_close`); returns 0,
/// or e.g. `SOCKFLOW_ECONNREFUSED`, `SOCKFLOW_ETIMEDOUT`, `SOCKFLOW_ERESOLVE`.
#[no_mangle]
pub extern "C" fn sockflow_tcp_connect(host: *const c_char, port: c_int, timeout_ms: c_int, out: *mut *mut sockflow_tcp) -> c_int {
    ffi_boundary! {
        check_out!(out, "out");
        let host = try_ok!(str_arg(host, "host"));
        let port = try_ok!(port_arg(port, 1));
        let addrs = try_ok!(net::resolve(host, port, Family::Any));
        give(out, sockflow_tcp { inner: try_ok!(Stream::connect(&addrs, net::millis(timeout_ms.into()))) })
    }
}

/// Connects to the host and port of parsed arguments, with their timeout
/// and frame (see `sockflow_tcp_connect`).
#[no_mangle]
pub extern "C" fn sockflow_tcp_connect_args(args: *const sockflow_args, out: *mut *mut sockflow_tcp) -> c_int {
    ffi_boundary! {
        check_out!(out, "out");
        let a = try_ok!(core_args(args));
        give(out, sockflow_tcp { inner: try_ok!(Stream::from_args(&a)) })
    }
}

/// Sets the framing used by `sockflow_tcp_send_msg`/`sockflow_tcp_recv_msg`:
/// "line", "raw", "fixed:N", "len32" (":MAX" sets the longest message).
/// Bytes already buffered are dropped. Returns 0 or `SOCKFLOW_EINVAL`.
#[no_mangle]
pub extern "C" fn sockflow_tcp_set_frame(t: *mut sockflow_tcp, spec: *const c_char) -> c_int {
    ffi_boundary! {
        let t = try_mut!(t, "tcp");
                t.inner.set_frame(try_ok!(frame_arg(spec)));
        0
    }
}

/// Read and write timeouts in milliseconds (<= 0 = none). An expired
/// timeout makes a call return `SOCKFLOW_ETIMEDOUT`.
#[no_mangle]
pub extern "C" fn sockflow_tcp_set_timeouts(t: *mut sockflow_tcp, read_ms: c_int, write_ms: c_int) -> c_int {
    ffi_boundary! {
        let t = try_ref!(t, "tcp");
        rc(t.inner.set_timeouts(net::millis(read_ms.into()), net::millis(write_ms.into())))
    }
}

/// Sends all `len` bytes of `data` (partial writes completed, EINTR
/// retried, no SIGPIPE: a closed peer gives `SOCKFLOW_ECLOSED` or
/// `SOCKFLOW_ECONNRESET`). Returns 0 or a negative code.
#[no_mangle]
pub extern "C" fn sockflow_tcp_send(t: *mut sockflow_tcp, data: *const c_void, len: usize) -> c_int {
    ffi_boundary! {
        let t = try_ref!(t, "tcp");
        rc(t.inner.send(try_ok!(bytes_arg(data, len, "data"))))
    }
}

/// One read of at most `cap` bytes into `buf`. Returns the byte count (> 0),
/// `SOCKFLOW_ECLOSED` when the peer closed, or another negative code.
#[no_mangle]
pub extern "C" fn sockflow_tcp_recv(t: *mut sockflow_tcp, buf: *mut c_void, cap: usize) -> libc::ssize_t {
    ffi_boundary! {
        let t = try_ref!(t, "tcp");
        let buf = try_ok!(buf_arg(buf, cap, "buf"));
        if buf.is_empty() {
            return fail(Error::inval("cap is 0")) as isize;
        }
        try_ok!(t.inner.recv(buf)) as isize
    }
}

/// Sends one message through the connection's frame (e.g. appends `\n` for
/// line frames). Returns 0, `SOCKFLOW_EMSGSIZE` when it does not fit the
/// frame, `SOCKFLOW_EINVAL` for a newline in a line (or a NUL in a fixed
/// frame); nothing is sent then.
#[no_mangle]
pub extern "C" fn sockflow_tcp_send_msg(t: *mut sockflow_tcp, msg: *const c_void, len: usize) -> c_int {
    ffi_boundary! {
        let t = try_ref!(t, "tcp");
        rc(t.inner.send_msg(try_ok!(bytes_arg(msg, len, "msg"))))
    }
}

/// Receives exactly one message (messages glued or split by TCP come out
/// as sent) into `buf`, NUL-terminated when there is room. Returns its
/// length; `SOCKFLOW_EMSGSIZE` if it is longer than `cap` (the first `cap`
/// bytes are in `buf`) or than the frame allows; `SOCKFLOW_ECLOSED` at end
/// of stream (a last line without its newline is returned first, as a
/// message; a fixed/len32 frame cut short is `SOCKFLOW_ECLOSED` with a
/// message saying how many of its bytes arrived); `SOCKFLOW_ETIMEDOUT`
/// after the read timeout.
#[no_mangle]
pub extern "C" fn sockflow_tcp_recv_msg(t: *mut sockflow_tcp, buf: *mut c_void, cap: usize) -> libc::ssize_t {
    ffi_boundary! {
        let t = try_mut!(t, "tcp");
        let buf = try_ok!(buf_arg(buf, cap, "buf"));
        if buf.is_empty() {
            return fail(Error::inval("cap is 0")) as libc::ssize_t;
        }
        let n = try_ok!(t.inner.recv_msg(|m| copy_out(m, buf)));
        if n > cap {
            return fail(Error::new(Code::MsgSize, format!("message of {n} bytes is longer than the buffer ({cap})"))) as isize;
        }
        n as isize
    }
}

/// Writes the peer's address to `*out`. Returns 0 or `SOCKFLOW_EINVAL`.
#[no_mangle]
pub extern "C" fn sockflow_tcp_peer(t: *const sockflow_tcp, out: *mut sockflow_addr) -> c_int {
    ffi_boundary! {
        let t = try_ref!(t, "tcp");
        check_out!(out, "out");
        sockflow_addr::write_opt(out, t.inner.peer());
        0
    }
}

/// The connection's descriptor, for programs that poll it themselves (still
/// owned by the handle: do not close it; bytes the handle has buffered for
/// `recv_msg` are not visible to poll).
#[no_mangle]
pub extern "C" fn sockflow_tcp_fd(t: *const sockflow_tcp) -> c_int {
    ffi_boundary! { try_ref!(t, "tcp").inner.fd() }
}

/// Half-closes: the peer sees end of stream, receiving goes on.
#[no_mangle]
pub extern "C" fn sockflow_tcp_shutdown(t: *mut sockflow_tcp) -> c_int {
    ffi_boundary! { rc(try_ref!(t, "tcp").inner.shutdown_write()) }
}

/// Shuts the connection down, closes it and frees the handle. NULL is fine;
/// do not call twice.
#[no_mangle]
pub extern "C" fn sockflow_tcp_close(t: *mut sockflow_tcp) {
    ffi_boundary! {
        if !t.is_null() {
            // SAFETY: created by Box::into_raw in this module, freed once.
            unsafe { Box::from_raw(t) }.inner.close();
        }
    }
}
