//! UDP primitives: `sockflow_udp`.
//!
//! Threads: one thread may receive while another sends (every call but
//! `set_frame` and `close` only reads the handle). A handle is owned by the
//! caller and freed by `sockflow_udp_close` (NULL is fine; never call it twice).

use super::addr::sockflow_addr;
use super::args::{core_args, sockflow_args};
use super::error::rc;
use super::{buf_arg, bytes_arg, frame_arg, give, limit_arg, port_arg, str_arg, Zero};
use crate::error::{Code, Error};
use crate::net::{self, Family};
use crate::udp::Udp;
use std::ffi::{c_char, c_int, c_void};
use std::net::IpAddr;

/// A UDP socket. Methods: `sockflow_udp_bind`, `sockflow_udp_bind_args`,
/// `sockflow_udp_connect`, `sockflow_udp_connect_args`, `sockflow_udp_send_to`,
/// `sockflow_udp_send`, `sockflow_udp_recv_from`, `sockflow_udp_set_frame`,
/// `sockflow_udp_set_timeouts`, `sockflow_udp_set_broadcast`,
/// `sockflow_udp_join`, `sockflow_udp_leave`, `sockflow_udp_port`,
/// `sockflow_udp_fd`, `sockflow_udp_close`.
///
/// Threads: one thread may receive (`recvfrom`) while another sends;
/// `set_frame` and `close` need the handle to themselves.
pub struct sockflow_udp {
    inner: Udp,
}

/// Binds a UDP socket to `host`:`port` (`port` 0 = any free port; "::" is
/// dual-stack). `host` "unix:PATH" or "unix:@NAME" with `port` 0 binds a
/// Unix domain datagram socket instead (the socket file as for
/// `sockflow_tcp_listen`: a stale one replaced, a live one
/// `SOCKFLOW_EADDRINUSE`, removed at close); its senders read `ip` "unix"
/// and a `port` number that `sockflow_udp_send_to(u, "unix", port)` replies
/// to (the last 4096 senders are remembered).
/// Writes it to `*out` (free with `sockflow_udp_close`); returns 0.
#[no_mangle]
pub extern "C" fn sockflow_udp_bind(host: *const c_char, port: c_int, out: *mut *mut sockflow_udp) -> c_int {
    ffi_boundary! {
        check_out!(out, "out");
        let host = try_ok!(str_arg(host, "host"));
        let port = try_ok!(port_arg(port, 0));
        give(out, sockflow_udp { inner: try_ok!(Udp::bind_host(host, port)) })
    }
}

/// Binds to the host and port of parsed arguments, with their frame.
#[no_mangle]
pub extern "C" fn sockflow_udp_bind_args(args: *const sockflow_args, out: *mut *mut sockflow_udp) -> c_int {
    ffi_boundary! {
        check_out!(out, "out");
        let a = try_ok!(core_args(args));
        give(out, sockflow_udp { inner: try_ok!(Udp::from_args(&a)) })
    }
}

/// Opens a UDP socket on a free port connected to `host`:`port` (first
/// address that works): `sockflow_udp_send` goes there, only its datagrams
/// are received, and a closed port shows as `SOCKFLOW_ECONNREFUSED`.
/// `host` "unix:PATH" or "unix:@NAME" with `port` 0 connects a Unix domain
/// datagram socket, bound to a temporary socket file of its own in
/// `$TMPDIR` (removed by `sockflow_udp_close`), or for a `unix:@NAME` server
/// to an abstract name the kernel picks.
#[no_mangle]
pub extern "C" fn sockflow_udp_connect(host: *const c_char, port: c_int, out: *mut *mut sockflow_udp) -> c_int {
    ffi_boundary! {
        check_out!(out, "out");
        let host = try_ok!(str_arg(host, "host"));
        let port = try_ok!(port_arg(port, if crate::unix::Place::parse(host).is_some() { 0 } else { 1 }));
        give(out, sockflow_udp { inner: try_ok!(Udp::connect_host(host, port)) })
    }
}

/// `sockflow_udp_connect` to the host and port of parsed arguments, with their frame.
#[no_mangle]
pub extern "C" fn sockflow_udp_connect_args(args: *const sockflow_args, out: *mut *mut sockflow_udp) -> c_int {
    ffi_boundary! {
        check_out!(out, "out");
        let a = try_ok!(core_args(args));
        give(out, sockflow_udp { inner: try_ok!(Udp::connect_args(&a)) })
    }
}

/// Sets the frame: with "fixed:N" every datagram sent is NUL-padded to N
/// bytes and `sockflow_udp_recv_from` returns the text before the first NUL
/// (the tutorial's 32-byte datagrams); with "line" one trailing newline of
/// a received datagram is dropped; "raw" (the default) sends and receives as is.
#[no_mangle]
pub extern "C" fn sockflow_udp_set_frame(u: *mut sockflow_udp, spec: *const c_char) -> c_int {
    ffi_boundary! {
        let u = try_mut!(u, "udp");
        u.inner.set_frame(try_ok!(frame_arg(spec)));
        0
    }
}

/// Sends one datagram of `len` bytes to `host`:`port` (framed as set by
/// `sockflow_udp_set_frame`). On a Unix domain socket, `host` "unix" and
/// the `port` of a sender's `sockflow_addr` reply to that sender. Returns 0
/// or a negative code.
#[no_mangle]
pub extern "C" fn sockflow_udp_send_to(u: *mut sockflow_udp, data: *const c_void, len: usize, host: *const c_char, port: c_int) -> c_int {
    ffi_boundary! {
        let u = try_ref!(u, "udp");
        let data = try_ok!(bytes_arg(data, len, "data"));
        let host = try_ok!(str_arg(host, "host"));
        let port = try_ok!(port_arg(port, 1));
        if host == "unix" {
            return rc(u.inner.send_msg(data, Some(crate::unix::sender_addr(port))));
        }
        let addrs = try_ok!(net::resolve(host, port, Family::Any));
        rc(net::try_each(&addrs, |a| u.inner.send_msg(data, Some(a))))
    }
}

/// Sends one datagram on a connected socket. Returns 0 or a negative code.
#[no_mangle]
pub extern "C" fn sockflow_udp_send(u: *mut sockflow_udp, data: *const c_void, len: usize) -> c_int {
    ffi_boundary! {
        let u = try_ref!(u, "udp");
        rc(u.inner.send_msg(try_ok!(bytes_arg(data, len, "data")), None))
    }
}

/// Receives one datagram into `buf` (NUL-terminated when there is room)
/// and, when `from` is not NULL, the sender's address. Returns the message
/// length; `SOCKFLOW_EMSGSIZE` when the datagram was longer than `cap` (its
/// first `cap` bytes are in `buf`: never a silent cut); `SOCKFLOW_ETIMEDOUT`
/// after the timeout; `SOCKFLOW_EAGAIN` when the descriptor is non-blocking
/// and no datagram is waiting.
#[no_mangle]
pub extern "C" fn sockflow_udp_recv_from(u: *mut sockflow_udp, buf: *mut c_void, cap: usize, from: *mut sockflow_addr) -> libc::ssize_t {
    ffi_boundary! {
        let u = try_ref!(u, "udp");
        let buf = try_ok!(buf_arg(buf, cap, "buf"));
        let (n, peer) = try_ok!(u.inner.recv_from(buf));
        sockflow_addr::write_opt(from, peer);
        let m = u.inner.msg_of(&buf[..n]).len();
        if m < cap {
            buf[m] = 0;
        }
        m as isize
    }
}

/// Receive and send timeouts in milliseconds (`SOCKFLOW_FOREVER` = none,
/// 0 = `SOCKFLOW_EINVAL`). An expired timeout makes a call return
/// `SOCKFLOW_ETIMEDOUT`.
#[no_mangle]
pub extern "C" fn sockflow_udp_set_timeouts(u: *mut sockflow_udp, recv_ms: c_int, send_ms: c_int) -> c_int {
    ffi_boundary! {
        let u = try_ref!(u, "udp");
        let recv = try_ok!(limit_arg(recv_ms, "recv_ms", Zero::Invalid));
        rc(u.inner.set_timeouts(recv, try_ok!(limit_arg(send_ms, "send_ms", Zero::Invalid))))
    }
}

/// Turns SO_BROADCAST on (`on` != 0) or off.
#[no_mangle]
pub extern "C" fn sockflow_udp_set_broadcast(u: *mut sockflow_udp, on: c_int) -> c_int {
    ffi_boundary! {
        rc(try_ref!(u, "udp").inner.set_broadcast(on != 0))
    }
}

fn membership(u: *mut sockflow_udp, group: *const c_char, iface: *const c_char, join: bool) -> c_int {
    let u = try_ref!(u, "udp");
    let g = try_ok!(str_arg(group, "group"));
    let ip: IpAddr =
        try_ok!(net::strip_brackets(g).parse().map_err(|_| Error::new(Code::Addr, format!("group \"{g}\" is not an IP address"))));
    let iface = if iface.is_null() { None } else { Some(try_ok!(str_arg(iface, "iface"))) };
    rc(u.inner.membership(ip, iface, join))
}

/// Joins multicast `group` (IPv4 "239.1.2.3" or IPv6 "ff02::1"). `iface`
/// may be NULL (the default interface), an IPv4 interface address for IPv4
/// groups, or an interface index ("2") for IPv6 groups.
#[no_mangle]
pub extern "C" fn sockflow_udp_join(u: *mut sockflow_udp, group: *const c_char, iface: *const c_char) -> c_int {
    ffi_boundary! {
        membership(u, group, iface, true)
    }
}

/// Leaves a multicast group joined with `sockflow_udp_join`.
#[no_mangle]
pub extern "C" fn sockflow_udp_leave(u: *mut sockflow_udp, group: *const c_char, iface: *const c_char) -> c_int {
    ffi_boundary! {
        membership(u, group, iface, false)
    }
}

/// The bound port, or a negative error code.
#[no_mangle]
pub extern "C" fn sockflow_udp_port(u: *const sockflow_udp) -> c_int {
    ffi_boundary! {
        c_int::from(try_ok!(try_ref!(u, "udp").inner.local_addr()).port())
    }
}

/// The socket's descriptor (still owned by the handle: do not close it).
#[no_mangle]
pub extern "C" fn sockflow_udp_fd(u: *const sockflow_udp) -> c_int {
    ffi_boundary! {
        try_ref!(u, "udp").inner.fd()
    }
}

/// Closes and frees the socket. NULL is fine; do not call twice.
#[no_mangle]
pub extern "C" fn sockflow_udp_close(u: *mut sockflow_udp) {
    ffi_boundary! {
        if !u.is_null() {
            // SAFETY: created by Box::into_raw in this module, freed once.
            drop(unsafe { Box::from_raw(u) });
        }
    }
}
