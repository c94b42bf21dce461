//! Timers on a server's loop: `sockflow_server_timer_add` and
//! `sockflow_server_timer_cancel`.

use super::error::{fail, rc};
use super::handler::sockflow_action;
use super::server::sockflow_server;
use crate::error::Error;
use crate::server::TimerAction;
use std::ffi::{c_int, c_void};
use std::time::Duration;

/// A timer's callback. Runs on the server's loop thread — worker 0's, with
/// several workers — (never on the thread that added it, never at the same
/// time as another callback of the same loop), so it must not block; it may call `sockflow_server_send_to`,
/// `_broadcast`, `_stop`, `_timer_add` and `_timer_cancel` on `server`.
/// `userdata` is the pointer given to `sockflow_server_timer_add`; sockflow
/// never frees it. Returns a `sockflow_action`: `SOCKFLOW_ACTION_CONTINUE`
/// keeps a repeating timer, `SOCKFLOW_ACTION_CLOSE` (or any negative value)
/// cancels it, `SOCKFLOW_ACTION_STOP` cancels it and stops the server. A
/// one-shot timer ends after its call whatever it returns.
pub type sockflow_timer_fn = Option<unsafe extern "C" fn(userdata: *mut c_void, server: *mut sockflow_server, timer_id: u64) -> c_int>;

/// A C timer callback, its userdata and its server, sent to the loop thread.
struct CTimer {
    f: unsafe extern "C" fn(*mut c_void, *mut sockflow_server, u64) -> c_int,
    ud: *mut c_void,
    server: *mut sockflow_server,
}

// SAFETY: the caller promises (documented on sockflow_server_timer_add)
// that the callback and userdata may be used from the loop thread; the
// server handle outlives every run of its loop (`free` waits for the run).
unsafe impl Send for CTimer {}

impl CTimer {
    fn call(&self, id: u64) -> c_int {
        // SAFETY: a C callback with the documented signature.
        unsafe { (self.f)(self.ud, self.server, id) }
    }
}

/// Runs `cb(userdata, s, id)` on server `s`'s loop thread once `after_ms`
/// milliseconds have passed (never earlier; later when the machine is busy),
/// then, if `repeat_ms` > 0, every `repeat_ms` ms while `cb` returns
/// `SOCKFLOW_ACTION_CONTINUE` (see `sockflow_timer_fn`). A late repeating
/// timer is not called again to catch up: it goes on one period after the
/// late call. Writes the timer's id (never 0) to `*id_out` if it is not NULL.
///
/// Safe from any thread and from callbacks, before or while the server
/// runs; timers fire only while it runs (`sockflow_server_run`, `_start`,
/// `_turn`). Returns 0, or `SOCKFLOW_EINVAL` for a NULL `s` or `cb`
/// or a negative `after_ms`/`repeat_ms`.
#[no_mangle]
pub extern "C" fn sockflow_server_timer_add(
    s: *mut sockflow_server,
    after_ms: c_int,
    repeat_ms: c_int,
    cb: sockflow_timer_fn,
    userdata: *mut c_void,
    id_out: *mut u64,
) -> c_int {
    ffi_boundary! {
        let server = try_ref!(s, "server");
        let Some(f) = cb else { return fail(Error::inval("cb is NULL")) };
        if after_ms < 0 || repeat_ms < 0 {
            return fail(Error::inval(format!("after_ms {after_ms} or repeat_ms {repeat_ms} is negative")));
        }
        let t = CTimer { f, ud: userdata, server: s };
        let call = move |ctx: &crate::server::TimerCtx| {
            let r = t.call(ctx.id());
            if r == sockflow_action::Stop as c_int {
                ctx.server().stop();
            }
            if r == sockflow_action::Continue as c_int {
                TimerAction::Continue
            } else {
                TimerAction::Cancel
            }
        };
        let repeat = (repeat_ms > 0).then(|| Duration::from_millis(repeat_ms as u64));
        let id = try_ok!(server.handle().add_timer(Duration::from_millis(after_ms as u64), repeat, Box::new(call)));
        if !id_out.is_null() {
            // SAFETY: non-NULL, a writable uint64_t per contract.
            unsafe { *id_out = id };
        }
        0
    }
}

/// Cancels a timer of server `s` by the id `sockflow_server_timer_add` wrote:
/// from any thread, it does not fire after the loop's next turn begins;
/// from one of the server's callbacks (its own included), it does not fire
/// again at all. An id that already ended (or never was) is ignored.
/// Returns 0 or `SOCKFLOW_EINVAL` for a NULL `s`.
#[no_mangle]
pub extern "C" fn sockflow_server_timer_cancel(s: *mut sockflow_server, timer_id: u64) -> c_int {
    ffi_boundary! {
        try_ref!(s, "server").handle().cancel_timer(timer_id);
        rc(Ok(()))
    }
}
