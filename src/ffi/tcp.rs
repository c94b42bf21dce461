//! TCP primitives: `sockflow_tcp_listener` and `sockflow_tcp`.
//!
//! Threads: a `sockflow_tcp` may be used by one receiving thread and one
//! sending thread at the same time (the core keeps the two sides under
//! separate locks); a listener by one thread at a time. Every handle
//! returned through an out-parameter is owned by the caller and freed by
//! its close function (which accepts NULL; never call it twice).

use super::addr::sockflow_addr;
use super::args::{core_args, sockflow_args};
use super::error::{fail, rc};
use super::{buf_arg, bytes_arg, copy_cstr, frame_arg, give, limit_arg, port_arg, str_arg, Zero};
use crate::error::{Code, Error};
use crate::net::Family;
use crate::tcp::{Listener, Stream, DEFAULT_BACKLOG};
use std::ffi::{c_char, c_int, c_uint, c_void};

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
/// `sockflow_tcp_recv_msg`, `sockflow_tcp_flush`, `sockflow_tcp_set_frame`,
/// `sockflow_tcp_set_timeouts`, `sockflow_tcp_peer`, `sockflow_tcp_fd`,
/// `sockflow_tcp_shutdown`, `sockflow_tcp_close`.
///
/// Threads: one thread may receive (`recv`, `recv_msg`) while another sends
/// (`send`, `send_msg`, `flush`, `shutdown`), e.g. a client with a reader
/// thread and a writer thread; `peer`, `fd` and `set_timeouts` may be
/// called from either. `set_frame` waits for a receive in progress.
/// `close` only when no other thread is using the handle.
///
/// Non-blocking use: after `fcntl(sockflow_tcp_fd(t), F_SETFL, O_NONBLOCK)`
/// a call that cannot go on now returns `SOCKFLOW_EAGAIN` (poll the
/// descriptor, then call again); a receive or send timeout still gives
/// `SOCKFLOW_ETIMEDOUT`. A message is never cut, lost or sent twice: see
/// `sockflow_tcp_send_msg` and `sockflow_tcp_flush`.
pub struct sockflow_tcp {
    inner: Stream,
}

/// Listens on `host`:`port` (`port` 0 = any free port; read it back with
/// `sockflow_tcp_listener_port`). SO_REUSEADDR is set, so a restarted server
/// binds at once; "::" listens on IPv4 and IPv6. `backlog` <= 0 means 128.
/// A Unix domain socket: `host` "unix:/run/app.sock" (a socket file: a
/// stale one is replaced, one a live server answers on is
/// `SOCKFLOW_EADDRINUSE`; the file is removed when the listener is closed)
/// or "unix:@name" (Linux abstract namespace), with `port` 0.
/// On success writes a new listener to `*out` (free it with
/// `sockflow_tcp_listener_close`) and returns 0.
#[no_mangle]
pub extern "C" fn sockflow_tcp_listen(host: *const c_char, port: c_int, backlog: c_int, out: *mut *mut sockflow_tcp_listener) -> c_int {
    ffi_boundary! {
        check_out!(out, "out");
        let host = try_ok!(str_arg(host, "host"));
        let port = try_ok!(port_arg(port, 0));
        let backlog = if backlog <= 0 { DEFAULT_BACKLOG } else { backlog };
        give(out, sockflow_tcp_listener { inner: try_ok!(Listener::bind_host(host, port, Family::Any, backlog)) })
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

/// Waits up to `timeout_ms` (`SOCKFLOW_FOREVER` = no limit, 0 = just check) for a client.
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
        let t = try_ok!(limit_arg(timeout_ms, "timeout_ms", Zero::Check));
        let s = try_ok!(l.inner.accept(t));
        sockflow_addr::write_opt(peer, s.peer());
        give(out, sockflow_tcp { inner: s })
    }
}

/// The port the listener is bound to, or a negative error code.
#[no_mangle]
pub extern "C" fn sockflow_tcp_listener_port(l: *const sockflow_tcp_listener) -> c_int {
    ffi_boundary! {
        c_int::from(try_ref!(l, "listener").inner.local_addr().port())
    }
}

/// The listener's descriptor, for programs that poll it themselves (still
/// owned by the listener: do not close it). Negative error code for NULL.
#[no_mangle]
pub extern "C" fn sockflow_tcp_listener_fd(l: *const sockflow_tcp_listener) -> c_int {
    ffi_boundary! {
        try_ref!(l, "listener").inner.fd()
    }
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
/// each attempt bounded by `timeout_ms` (`SOCKFLOW_FOREVER` = the OS's limit;
/// 0 = `SOCKFLOW_EINVAL`). `host` "unix:PATH" or "unix:@NAME" with
/// `port` 0 connects to a Unix domain socket (see `sockflow_tcp_listen`).
/// Writes the
/// new connection to `*out` (free it with `sockflow_tcp_close`); returns 0,
/// or e.g. `SOCKFLOW_ECONNREFUSED`, `SOCKFLOW_ETIMEDOUT`, `SOCKFLOW_ERESOLVE`.
#[no_mangle]
pub extern "C" fn sockflow_tcp_connect(host: *const c_char, port: c_int, timeout_ms: c_int, out: *mut *mut sockflow_tcp) -> c_int {
    ffi_boundary! {
        check_out!(out, "out");
        let host = try_ok!(str_arg(host, "host"));
        let port = try_ok!(port_arg(port, if crate::unix::Place::parse(host).is_some() { 0 } else { 1 }));
        let timeout = try_ok!(limit_arg(timeout_ms, "timeout_ms", Zero::Invalid));
        give(out, sockflow_tcp { inner: try_ok!(Stream::connect_host(host, port, Family::Any, timeout)) })
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
        let t = try_ref!(t, "tcp");
        t.inner.set_frame(try_ok!(frame_arg(spec)));
        0
    }
}

/// Receive and send timeouts in milliseconds (`SOCKFLOW_FOREVER` = none,
/// 0 = `SOCKFLOW_EINVAL`). An expired
/// timeout makes a call return `SOCKFLOW_ETIMEDOUT`.
#[no_mangle]
pub extern "C" fn sockflow_tcp_set_timeouts(t: *mut sockflow_tcp, recv_ms: c_int, send_ms: c_int) -> c_int {
    ffi_boundary! {
        let t = try_ref!(t, "tcp");
        rc(t.inner
            .set_timeouts(try_ok!(limit_arg(recv_ms, "recv_ms", Zero::Invalid)), try_ok!(limit_arg(send_ms, "send_ms", Zero::Invalid))))
    }
}

/// Sends all `len` bytes of `data` (partial writes completed, EINTR
/// retried, no SIGPIPE: a closed peer gives `SOCKFLOW_ECLOSED` or
/// `SOCKFLOW_ECONNRESET`). Returns 0 or a negative code. On a non-blocking
/// descriptor or after a send timeout, the rules of `sockflow_tcp_send_msg`
/// apply: 0 = taken, `SOCKFLOW_EAGAIN`/`SOCKFLOW_ETIMEDOUT` = not taken.
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
/// line frames). Returns 0 when the message was taken; `SOCKFLOW_EMSGSIZE`
/// when it does not fit the frame, `SOCKFLOW_EINVAL` for a newline in a
/// line (or a NUL in a fixed frame): nothing is sent then.
///
/// On a non-blocking descriptor (or when a send timeout expires) a message
/// is never cut, lost or sent twice: 0 means it was taken, either all sent
/// or sent in part with the rest kept in the handle, to go out before
/// anything else on the next `send`, `send_msg` or `sockflow_tcp_flush`.
/// `SOCKFLOW_EAGAIN` (`SOCKFLOW_ETIMEDOUT` after a timeout) means it was NOT
/// taken, nothing of it was sent: either the socket took nothing, or bytes
/// kept from an earlier message could not all go out yet. Wait for POLLOUT
/// on `sockflow_tcp_fd()` and call again with the same message.
#[no_mangle]
pub extern "C" fn sockflow_tcp_send_msg(t: *mut sockflow_tcp, msg: *const c_void, len: usize) -> c_int {
    ffi_boundary! {
        let t = try_ref!(t, "tcp");
        rc(t.inner.send_msg(try_ok!(bytes_arg(msg, len, "msg"))))
    }
}

/// Receives exactly one message (messages glued or split by TCP come out
/// as sent) into `buf` of `cap` bytes. Returns its length `n`, less than
/// `cap`, with a NUL at `buf[n]` (binary messages may hold NULs too), so a
/// buffer needs one byte more than the longest message.
///
/// A message that does not fit with its NUL (length >= `cap`) is not lost:
/// the call returns `SOCKFLOW_EMSGSIZE` with the first `cap - 1` bytes and a
/// NUL in `buf`, and the whole message is kept for the next call. With
/// `cap` 0 (`buf` may then be NULL) the call waits for the next message and
/// returns its length without taking it, so a caller can size a buffer:
/// `n = sockflow_tcp_recv_msg(t, NULL, 0); buf = malloc(n + 1);`
/// then `sockflow_tcp_recv_msg(t, buf, n + 1)`.
///
/// At end of stream a last line without its newline is returned first, as
/// a message; the call after it is `SOCKFLOW_ECLOSED`. A fixed/len32 frame
/// cut short by the end of stream is `SOCKFLOW_ECLOSED` with a message
/// saying how many of its bytes arrived.
///
/// Other errors: `SOCKFLOW_EMSGSIZE` also for a message longer than the
/// frame allows (that one is dropped as it arrives and never stored);
/// `SOCKFLOW_ETIMEDOUT` after the read timeout; `SOCKFLOW_EAGAIN` on a
/// non-blocking descriptor with no whole message yet (bytes of a partial
/// one stay buffered in the handle).
#[no_mangle]
pub extern "C" fn sockflow_tcp_recv_msg(t: *mut sockflow_tcp, buf: *mut c_void, cap: usize) -> libc::ssize_t {
    ffi_boundary! {
        let t = try_ref!(t, "tcp");
        let buf = try_ok!(buf_arg(buf, cap, "buf"));
        let got = try_ok!(t.inner.recv_msg_or_keep(|m| {
            copy_cstr(m, buf);
            if m.len() < cap {
                Ok(m.len())
            } else {
                Err(m.len())
            }
        }));
        match got {
            Ok(n) => n as isize,
            Err(n) if cap == 0 => n as isize,
            Err(n) => fail(Error::new(
                Code::MsgSize,
                format!(
                    "message of {n} bytes does not fit the buffer of {cap} bytes with its NUL: it is kept for the next call \
                     (a cap of 0 returns its length)"
                ),
            )) as isize,
        }
    }
}

/// Sends the bytes a `send`/`send_msg` on a non-blocking descriptor (or
/// after a send timeout) kept in the handle. Returns 0 once nothing is
/// kept (at once when nothing was), `SOCKFLOW_EAGAIN`/`SOCKFLOW_ETIMEDOUT`
/// while some bytes still are, or another negative code for a broken
/// connection. Call it before closing a non-blocking handle.
#[no_mangle]
pub extern "C" fn sockflow_tcp_flush(t: *mut sockflow_tcp) -> c_int {
    ffi_boundary! {
        rc(try_ref!(t, "tcp").inner.flush())
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

/// The credentials of the process at the other end of a Unix domain
/// socket connection (see `sockflow_conn_peer_cred`): for a client, the
/// server's. Returns 0, or `SOCKFLOW_EINVAL` for a TCP connection.
#[no_mangle]
pub extern "C" fn sockflow_tcp_peer_cred(t: *const sockflow_tcp, pid: *mut c_int, uid: *mut c_uint, gid: *mut c_uint) -> c_int {
    ffi_boundary! {
        let t = try_ref!(t, "tcp");
        rc(sockflow_addr::write_cred(t.inner.peer(), pid, uid, gid))
    }
}

/// The connection's descriptor, for programs that poll it themselves (still
/// owned by the handle: do not close it; bytes the handle has buffered for
/// `recv_msg` are not visible to poll).
#[no_mangle]
pub extern "C" fn sockflow_tcp_fd(t: *const sockflow_tcp) -> c_int {
    ffi_boundary! {
        try_ref!(t, "tcp").inner.fd()
    }
}

/// Half-closes: the peer sees end of stream, receiving goes on. Bytes kept
/// by a non-blocking send go out first; while they cannot, returns
/// `SOCKFLOW_EAGAIN` without shutting down (call again after POLLOUT).
#[no_mangle]
pub extern "C" fn sockflow_tcp_shutdown(t: *mut sockflow_tcp) -> c_int {
    ffi_boundary! {
        rc(try_ref!(t, "tcp").inner.shutdown_write())
    }
}

/// Shuts the connection down, closes it and frees the handle (bytes kept
/// by a non-blocking send get one last try: use `sockflow_tcp_flush` to
/// know they went out). NULL is fine; do not call twice, nor while another
/// thread is using the handle.
#[no_mangle]
pub extern "C" fn sockflow_tcp_close(t: *mut sockflow_tcp) {
    ffi_boundary! {
        if !t.is_null() {
            // SAFETY: created by Box::into_raw in this module, freed once.
            unsafe { Box::from_raw(t) }.inner.close();
        }
    }
}
