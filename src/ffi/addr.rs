//! `sockflow_addr`: a peer's address as text and port.

use super::copy_field;
use std::ffi::{c_char, c_int, c_uint};
use std::net::SocketAddr;

/// Size of `sockflow_addr.ip` (INET6_ADDRSTRLEN).
pub const SOCKFLOW_IP_MAX: usize = 46;

/// An address as C programs print it: `printf("client ip = %s port = %d\n",
/// a.ip, a.port)`. IPv4-mapped IPv6 addresses are shown as IPv4.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct sockflow_addr {
    /// "127.0.0.1" or "::1", NUL-terminated.
    pub ip: [c_char; SOCKFLOW_IP_MAX],
    /// The port.
    pub port: c_int,
    /// 4 or 6; 0 for a peer on a Unix domain socket (`unix:`), whose `ip`
    /// reads "unix": a stream client has `port` 0 (its process comes from
    /// `sockflow_conn_peer_cred` / `sockflow_tcp_peer_cred`), a datagram
    /// sender a number `sockflow_udp_send_to(u, "unix", port)` replies to.
    pub family: c_int,
}

impl sockflow_addr {
    pub(crate) fn from_std(a: SocketAddr) -> sockflow_addr {
        if crate::unix::cred(a).is_some() || crate::unix::sender(a).is_some() {
            let mut out = sockflow_addr { ip: [0; SOCKFLOW_IP_MAX], port: crate::unix::sender(a).map_or(0, c_int::from), family: 0 };
            copy_field("unix", &mut out.ip);
            return out;
        }
        let a = crate::net::canonical(a);
        let mut out = sockflow_addr { ip: [0; SOCKFLOW_IP_MAX], port: a.port() as c_int, family: if a.is_ipv4() { 4 } else { 6 } };
        copy_field(&a.ip().to_string(), &mut out.ip);
        out
    }

    /// Writes a local peer's credentials through the pointers that are
    /// not NULL; `EINVAL` for a peer that is not local.
    pub(crate) fn write_cred(peer: SocketAddr, pid: *mut c_int, uid: *mut c_uint, gid: *mut c_uint) -> crate::Result<()> {
        let c = crate::unix::cred(peer).ok_or_else(|| {
            crate::Error::inval(format!("peer {} is not on a unix socket: it has no credentials", crate::net::show(&peer)))
        })?;
        // SAFETY: each NULL or valid, per contract.
        unsafe {
            if let Some(p) = pid.as_mut() {
                *p = c.pid as c_int;
            }
            if let Some(u) = uid.as_mut() {
                *u = c.uid;
            }
            if let Some(g) = gid.as_mut() {
                *g = c.gid;
            }
        }
        Ok(())
    }

    /// Writes `a` to `out` when `out` is not NULL.
    pub(crate) fn write_opt(out: *mut sockflow_addr, a: SocketAddr) {
        // SAFETY: NULL or valid, per contract.
        if let Some(o) = unsafe { out.as_mut() } {
            *o = sockflow_addr::from_std(a);
        }
    }
}
