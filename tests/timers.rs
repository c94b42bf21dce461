//! Timers on a server's loop: from Rust (`ServerHandle::add_timer`), from C
//! (`sockflow_server_timer_add`/`_cancel`) and in the `time_server` example.
//!
//! Timing is checked only one way: a timer never fires before its
//! deadline, and it fires within a generous bound (`WAIT`); the order of
//! timers with different deadlines is exact.

mod common;
#[path = "flows/kit.rs"]
mod kit;
#[path = "server/kit.rs"]
mod skit;

use common::*;
use skit::{start_tcp, start_udp, until, Running, WAIT};
use sockflow::ffi::handler::sockflow_action;
use sockflow::ffi::server::*;
use sockflow::ffi::timer::*;
use sockflow::server::{Action, Config, Conn, Handler, TimerAction, TimerCtx, TimerId};
use std::ffi::{c_int, c_void};
use std::io::BufReader;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

struct Nothing;
impl Handler for Nothing {
    fn on_message(&self, _: &mut Conn<'_>, _: &[u8]) -> Action {
        Action::Continue
    }
}

fn quiet() -> Config {
    Config { log: None, ..Config::default() }
}

/// Timer firings: (name, when), in the order they happened.
type Fired = Arc<Mutex<Vec<(&'static str, Instant)>>>;

fn recorder(fired: &Fired, name: &'static str) -> Box<dyn FnMut(&TimerCtx) -> TimerAction + Send> {
    let fired = fired.clone();
    Box::new(move |_| {
        fired.lock().unwrap().push((name, Instant::now()));
        TimerAction::Continue
    })
}

fn names(f: &Fired) -> Vec<&'static str> {
    f.lock().unwrap().iter().map(|(n, _)| *n).collect()
}

/// One-shots added out of order fire in deadline order, never early;
/// a cancelled one never fires; one added from another thread fires.
fn order_cancel_and_threads(s: &Running) {
    let fired: Fired = Arc::default();
    let t0 = Instant::now();
    let ms = Duration::from_millis;
    s.handle.add_timer(ms(300), None, recorder(&fired, "c")).unwrap();
    s.handle.add_timer(ms(100), None, recorder(&fired, "a")).unwrap();
    let gone = s.handle.add_timer(ms(150), None, recorder(&fired, "cancelled")).unwrap();
    s.handle.add_timer(ms(200), None, recorder(&fired, "b")).unwrap();
    s.handle.cancel_timer(gone);
    let h = s.handle.clone();
    let f2 = fired.clone();
    thread::spawn(move || h.add_timer(ms(400), None, recorder(&f2, "d")).unwrap()).join().unwrap();
    until("four timers", || fired.lock().unwrap().len() >= 4);
    // Anything still to come (the cancelled one) would be due long before this.
    thread::sleep(ms(300));
    assert_eq!(names(&fired), ["a", "b", "c", "d"]);
    for ((_, at), after) in fired.lock().unwrap().iter().zip([100, 200, 300, 400]) {
        assert!(*at >= t0 + ms(after), "a timer fired before its deadline");
    }
}

#[test]
fn tcp_timers_fire_in_order_never_early_and_cancel_works() {
    let s = start_tcp(quiet(), Arc::new(Nothing));
    order_cancel_and_threads(&s);
    s.stop().unwrap();
}

#[test]
fn udp_timers_fire_in_order_never_early_and_cancel_works() {
    let s = start_udp(quiet(), Arc::new(Nothing));
    order_cancel_and_threads(&s);
    s.stop().unwrap();
}

#[test]
fn repeating_timer_repeats_until_cancelled_from_its_callback_or_outside() {
    let s = start_tcp(quiet(), Arc::new(Nothing));
    let ms = Duration::from_millis;
    // Cancelled by its own answer after three calls.
    let calls = Arc::new(Mutex::new(Vec::new()));
    let c = calls.clone();
    let t0 = Instant::now();
    s.handle
        .add_timer(
            ms(20),
            Some(ms(30)),
            Box::new(move |_| {
                let mut c = c.lock().unwrap();
                c.push(Instant::now());
                if c.len() == 3 {
                    TimerAction::Cancel
                } else {
                    TimerAction::Continue
                }
            }),
        )
        .unwrap();
    // Cancelled from outside once it has fired twice.
    let fired: Fired = Arc::default();
    let id: TimerId = s.handle.add_timer(ms(10), Some(ms(10)), recorder(&fired, "r")).unwrap();
    until("two repeats", || fired.lock().unwrap().len() >= 2);
    s.handle.cancel_timer(id);
    until("three calls", || calls.lock().unwrap().len() >= 3);
    let after_cancel = fired.lock().unwrap().len();
    thread::sleep(ms(200));
    assert_eq!(calls.lock().unwrap().len(), 3, "Cancel from the callback ends the timer");
    // At most one call may have been under way when the cancel was queued.
    assert!(fired.lock().unwrap().len() <= after_cancel + 1, "cancel ends a repeating timer");
    for (i, at) in calls.lock().unwrap().iter().enumerate() {
        assert!(*at >= t0 + ms(20 + 30 * i as u64), "repeat {i} fired early");
    }
    assert!(s.handle.add_timer(ms(1), Some(Duration::ZERO), recorder(&fired, "z")).is_err(), "a zero period is refused");
    s.stop().unwrap();
}

#[test]
fn a_timer_can_broadcast_and_add_timers() {
    let s = start_tcp(quiet(), Arc::new(Nothing));
    let mut client = kit::connect(s.addr.port());
    let mut r = BufReader::new(client.try_clone().unwrap());
    // The client connected before the timer was added: the loop has it
    // by the time the broadcast is run.
    s.handle
        .add_timer(
            Duration::from_millis(50),
            None,
            Box::new(move |ctx| {
                ctx.server().broadcast(b"tick", None).unwrap();
                let again = Box::new(|ctx: &TimerCtx| {
                    ctx.server().broadcast(b"tock", None).unwrap();
                    TimerAction::Continue
                });
                ctx.server().add_timer(Duration::from_millis(10), None, again).unwrap();
                TimerAction::Continue
            }),
        )
        .unwrap();
    assert_eq!(kit::read_line(&mut r), "tick");
    assert_eq!(kit::read_line(&mut r), "tock");
    use std::io::Write;
    client.write_all(b"bye\n").unwrap();
    s.stop().unwrap();
}

// ---- the C API ---------------------------------------------------------------

struct CState {
    calls: Mutex<Vec<(u64, Instant)>>,
    stop_after: usize,
}

unsafe extern "C" fn c_tick(ud: *mut c_void, server: *mut sockflow_server, id: u64) -> c_int {
    let st = &*(ud as *const CState);
    let mut calls = st.calls.lock().unwrap();
    calls.push((id, Instant::now()));
    assert!(!server.is_null());
    if calls.len() == st.stop_after {
        sockflow_action::Stop as c_int
    } else {
        sockflow_action::Continue as c_int
    }
}

unsafe extern "C" fn c_on_message(
    _: *mut c_void,
    _: *mut sockflow::ffi::handler::sockflow_conn,
    _: *const std::ffi::c_char,
    _: usize,
) -> c_int {
    0
}

fn c_server() -> *mut sockflow_server {
    use sockflow::ffi::args::*;
    let mut a: sockflow_args = unsafe { std::mem::zeroed() };
    assert_eq!(sockflow_args_init(&mut a, sockflow_role::Server as c_int, c"127.0.0.1".as_ptr(), 0), 0);
    let mut cfg: sockflow_server_config = unsafe { std::mem::zeroed() };
    sockflow_server_config_init(&mut cfg);
    cfg.quiet = 1;
    let h = sockflow::ffi::handler::sockflow_handler { on_connect: None, on_message: Some(c_on_message), on_close: None, builtin: 0 };
    let mut s = std::ptr::null_mut();
    assert_eq!(sockflow_tcp_server_new(&a, &cfg, h, std::ptr::null_mut(), &mut s), 0);
    s
}

#[test]
fn c_timers_repeat_cancel_and_stop_the_server() {
    let s = c_server();
    let st = Box::new(CState { calls: Mutex::new(Vec::new()), stop_after: 4 });
    let other = Box::new(CState { calls: Mutex::new(Vec::new()), stop_after: usize::MAX });
    let ud = &*st as *const CState as *mut c_void;
    let (mut id, mut gone) = (0u64, 0u64);
    let t0 = Instant::now();
    assert_eq!(sockflow_server_timer_add(s, 30, 20, Some(c_tick), ud, &mut id), 0);
    assert_eq!(sockflow_server_timer_add(s, 60, 0, Some(c_tick), &*other as *const CState as *mut c_void, &mut gone), 0);
    assert_ne!(id, 0);
    assert_ne!(id, gone);
    assert_eq!(sockflow_server_timer_cancel(s, gone), 0);
    assert_eq!(sockflow_server_timer_add(s, -1, 0, Some(c_tick), ud, std::ptr::null_mut()), sockflow::ffi::error::SOCKFLOW_EINVAL);
    assert_eq!(sockflow_server_timer_add(s, 1, 0, None, ud, std::ptr::null_mut()), sockflow::ffi::error::SOCKFLOW_EINVAL);
    // The run ends by itself: the fourth call returns STOP.
    let p = s as usize;
    let run = thread::spawn(move || sockflow_server_run(p as *mut sockflow_server));
    let deadline = Instant::now() + WAIT;
    while !run.is_finished() {
        assert!(Instant::now() < deadline, "STOP from a timer did not stop the server");
        thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(run.join().unwrap(), 0);
    let calls = st.calls.lock().unwrap().clone();
    assert_eq!(calls.len(), 4);
    for (i, (cid, at)) in calls.iter().enumerate() {
        assert_eq!(*cid, id);
        assert!(*at >= t0 + Duration::from_millis(30 + 20 * i as u64), "call {i} was early");
    }
    assert!(other.calls.lock().unwrap().is_empty(), "a cancelled timer fired");
    sockflow_server_close(s);
}

#[test]
fn c_timer_added_from_another_thread_while_running() {
    let s = c_server();
    let st = Box::new(CState { calls: Mutex::new(Vec::new()), stop_after: 1 });
    let p = s as usize;
    let run = thread::spawn(move || sockflow_server_run(p as *mut sockflow_server));
    let ud = &*st as *const CState as usize;
    thread::spawn(move || {
        thread::sleep(Duration::from_millis(50));
        assert_eq!(sockflow_server_timer_add(p as *mut sockflow_server, 10, 0, Some(c_tick), ud as *mut c_void, std::ptr::null_mut()), 0);
    })
    .join()
    .unwrap();
    let deadline = Instant::now() + WAIT;
    while !run.is_finished() {
        assert!(Instant::now() < deadline, "the timer added from another thread did not fire");
        thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(run.join().unwrap(), 0);
    assert_eq!(st.calls.lock().unwrap().len(), 1);
    sockflow_server_close(s);
}

// ---- time_server -------------------------------------------------------------

fn is_iso_utc(s: &str) -> bool {
    let b = s.as_bytes();
    let digits = |r: std::ops::Range<usize>| r.clone().all(|i| b[i].is_ascii_digit());
    b.len() == 20
        && digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && b[10] == b'T'
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19)
        && b[19] == b'Z'
}

#[test]
fn time_server_sends_iso_lines_to_every_client() {
    let (mut srv, port) = kit::server("time_server", Link::Dynamic, &["--interval", "100"]);
    let clients: Vec<_> = (0..2).map(|_| kit::connect(port)).collect();
    for c in &clients {
        let mut r = BufReader::new(c.try_clone().unwrap());
        for _ in 0..3 {
            let line = kit::read_line(&mut r);
            assert!(is_iso_utc(&line), "not an ISO 8601 UTC time: {line:?}");
        }
    }
    kit::stop(&mut srv, libc::SIGTERM);
}

#[test]
fn time_server_refuses_a_bad_interval() {
    let mut p = spawn(kit::example("time_server", Link::Dynamic), &["--interval", "soon", "0"], Input::Null);
    kit::exits_with(&mut p, 2);
    assert!(p.stderr_text().contains("--interval \"soon\" is not a number"), "{}", p.transcript());
}

unsafe extern "C" fn free_it(_: *mut c_void, server: *mut sockflow_server, _: u64) -> c_int {
    // From the loop thread: must not wait for the run it is inside of.
    sockflow_server_close(server);
    sockflow_action::Continue as c_int
}

#[test]
fn free_from_a_timer_callback_stops_the_run_without_deadlock() {
    let s = c_server();
    assert_eq!(sockflow_server_timer_add(s, 10, 0, Some(free_it), std::ptr::null_mut(), std::ptr::null_mut()), 0);
    let p = s as usize;
    let run = thread::spawn(move || sockflow_server_run(p as *mut sockflow_server));
    let deadline = Instant::now() + WAIT;
    while !run.is_finished() {
        assert!(Instant::now() < deadline, "free from a timer callback did not stop the run (deadlock?)");
        thread::sleep(Duration::from_millis(5));
    }
    // The run freed the handle when it returned: `s` is gone now.
    assert_eq!(run.join().unwrap(), 0);
}
