//! A C handler for client loops that records what it saw, shared by the
//! tests of outgoing connections through the C API: each connection sends
//! `ping` at on_connect and closes at its first reply; every reply and
//! every close is recorded with the connection's user slot (the number the
//! test gave at connect), and a close with `sockflow_conn_error` and this
//! thread's last error message.
//!
//! Include with `#[path = "common/cloop.rs"] mod cloop;` beside
//! `#[path = "common/cerror.rs"] mod cerror;`.

use super::cerror::last_error;
use sockflow::ffi::handler::*;
use std::ffi::{c_char, c_int, c_void};
use std::sync::{Condvar, Mutex};
use std::time::Duration;

/// What the callbacks saw.
#[derive(Default)]
pub struct CSeen {
    /// (user, reply).
    pub replies: Mutex<Vec<(usize, String)>>,
    /// (user, reason, sockflow_conn_error, last error message when < 0).
    pub closes: Mutex<Vec<(usize, c_int, c_int, String)>>,
    changed: Condvar,
}

impl CSeen {
    /// The handler, and the user data pointer to `self` it expects.
    pub fn handler(&self) -> (sockflow_handler, *mut c_void) {
        let h = sockflow_handler { on_connect: Some(c_connect), on_message: Some(c_message), on_close: Some(c_close), builtin: 0 };
        (h, self as *const CSeen as *mut c_void)
    }

    /// The closes, sorted, once there are `n` of them (or `wait` passed).
    pub fn closes_sorted(&self, n: usize, wait: Duration) -> Vec<(usize, c_int, c_int, String)> {
        let g = self.closes.lock().unwrap();
        let (g, _) = self.changed.wait_timeout_while(g, wait, |c| c.len() < n).unwrap();
        let mut closes = g.clone();
        closes.sort();
        closes
    }
}

unsafe extern "C" fn c_connect(_ud: *mut c_void, c: *mut sockflow_conn) -> c_int {
    sockflow_conn_send(c, b"ping".as_ptr().cast(), 4)
}

unsafe extern "C" fn c_message(ud: *mut c_void, c: *mut sockflow_conn, msg: *const c_char, len: usize) -> c_int {
    let seen = unsafe { &*ud.cast::<CSeen>() };
    let m = unsafe { std::slice::from_raw_parts(msg.cast::<u8>(), len) };
    seen.replies.lock().unwrap().push((sockflow_conn_user(c) as usize, String::from_utf8_lossy(m).into()));
    sockflow_action::Close as c_int
}

unsafe extern "C" fn c_close(ud: *mut c_void, c: *mut sockflow_conn, reason: c_int) {
    let seen = unsafe { &*ud.cast::<CSeen>() };
    let err = sockflow_conn_error(c);
    let msg = if err < 0 { last_error() } else { String::new() };
    seen.closes.lock().unwrap().push((sockflow_conn_user(c) as usize, reason, err, msg));
    seen.changed.notify_all();
}
