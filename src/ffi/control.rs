//! Server controls by connection id, from any thread: close, count, list,
//! peer address, per-connection idle timeout. The answers come from a
//! registry the loop keeps, so none waits for the loop and all are safe
//! inside the server's own callbacks.

use super::addr::sockflow_addr;
use super::cenum::CEnum;
use super::error::fail;
use super::server::sockflow_server;
use super::{limit_arg, Zero};
use crate::error::{Code, Error};
use crate::server::{CloseMode, IdleTimeout};
use std::ffi::c_int;

c_enum!(CloseMode, "sockflow_close_mode": Flush, Now);

/// The C name of [`CloseMode`], exported by cbindgen under this name
/// (`[export.rename]` in cbindgen.toml): one list of close modes.
pub use crate::server::CloseMode as sockflow_close_mode;

/// Closes connection `id` (from `sockflow_conn_id`) of server `s`, after
/// sending what is queued for it (`SOCKFLOW_CLOSE_FLUSH`) or at once
/// (`SOCKFLOW_CLOSE_NOW`); its `on_close` gets reason HANDLER. Queued for
/// the loop: safe from any thread and from callbacks, and returns at once.
/// An id that is gone is ignored. Returns 0, or `SOCKFLOW_EINVAL` for a
/// NULL `s` or a `mode` that is not a `sockflow_close_mode`.
#[no_mangle]
pub extern "C" fn sockflow_server_close_id(s: *mut sockflow_server, id: u64, mode: c_int) -> c_int {
    ffi_boundary! {
        let server = try_ref!(s, "server");
        let mode = try_ok!(CloseMode::arg(mode, "mode"));
        server.handle().close_conn(id, mode);
        0
    }
}

/// The number of open connections of server `s` (connected, `on_close` not
/// yet called), or `SOCKFLOW_EINVAL` for NULL. Safe from any thread and
/// from callbacks. TCP only (0 for a UDP server).
#[no_mangle]
pub extern "C" fn sockflow_server_conn_count(s: *const sockflow_server) -> libc::ssize_t {
    ffi_boundary! {
        try_ref!(s, "server").handle().conn_count() as isize
    }
}

/// Writes the ids of server `s`'s open connections, oldest first, to
/// `ids[0..cap]` and returns how many are open (snprintf-style: when that
/// is more than `cap`, only `cap` were written; call again with a larger
/// array). `ids` may be NULL when `cap` is 0. A snapshot: connections may
/// come and go right after. Safe from any thread and from callbacks.
#[no_mangle]
pub extern "C" fn sockflow_server_conn_ids(s: *const sockflow_server, ids: *mut u64, cap: usize) -> libc::ssize_t {
    ffi_boundary! {
        let server = try_ref!(s, "server");
        let buf = try_ok!(super::buf_arg(ids.cast(), cap.saturating_mul(8), "ids"));
        let all = server.handle().conn_ids();
        for (chunk, id) in buf.chunks_exact_mut(8).zip(&all) {
            chunk.copy_from_slice(&id.to_ne_bytes());
        }
        all.len() as isize
    }
}

/// Writes the peer address of open connection `id` of server `s` to `*out`.
/// Returns 0, `SOCKFLOW_EBADHANDLE` if no such connection is open (`*out`
/// untouched), `SOCKFLOW_EINVAL` for NULL. Safe from any thread and from callbacks.
#[no_mangle]
pub extern "C" fn sockflow_server_peer(s: *const sockflow_server, id: u64, out: *mut sockflow_addr) -> c_int {
    ffi_boundary! {
        let server = try_ref!(s, "server");
        check_out!(out, "out");
        match server.handle().conn_peer(id) {
            Some(a) => {
                sockflow_addr::write_opt(out, a);
                0
            }
            None => fail(Error::new(Code::BadHandle, format!("connection {id} is not open"))),
        }
    }
}

/// Gives connection `id` of server `s` its own idle timeout, overriding the
/// server's `idle_timeout_ms`: closed (reason IDLE) after `timeout_ms` ms
/// without traffic (`SOCKFLOW_FOREVER` = never; 0 = `SOCKFLOW_EINVAL`).
/// Counted from its
/// last traffic; checked a few times a second. Queued for the loop: safe
/// from any thread and from callbacks (e.g. in `on_connect`). An id that is
/// gone is ignored. Returns 0 or `SOCKFLOW_EINVAL`.
#[no_mangle]
pub extern "C" fn sockflow_server_set_idle_timeout(s: *mut sockflow_server, id: u64, timeout_ms: c_int) -> c_int {
    ffi_boundary! {
        let server = try_ref!(s, "server");
        let idle = match try_ok!(limit_arg(timeout_ms, "timeout_ms", Zero::Invalid)) {
            None => IdleTimeout::Never,
            Some(t) => IdleTimeout::After(t),
        };
        server.handle().set_idle_timeout(id, idle);
        0
    }
}
