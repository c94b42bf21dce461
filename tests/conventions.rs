//! The API conventions of README's "API conventions", checked from C's side:
//! one timeout rule for every millisecond argument and field, C enums
//! checked (an unknown value is `SOCKFLOW_EINVAL` naming the enum, never
//! undefined behaviour), and the naming rules read off the header (one
//! destroy verb, one spelling of send-to).

#[path = "common/cerror.rs"]
mod cerror;
use cerror::last_error;
use sockflow::ffi::args::*;
use sockflow::ffi::control::*;
use sockflow::ffi::error::*;
use sockflow::ffi::handler::*;
use sockflow::ffi::server::*;
use sockflow::ffi::tcp::*;
use sockflow::ffi::udp::*;
use sockflow::ffi::SOCKFLOW_FOREVER;
use std::ffi::{c_char, c_int, c_void};
use std::ptr::{null, null_mut};

/// `rc` is `SOCKFLOW_EINVAL` and the message contains `says`.
fn refused(rc: c_int, says: &str) {
    assert_eq!(rc, SOCKFLOW_EINVAL, "expected EINVAL ({says}), got {rc}: {}", last_error());
    assert!(last_error().contains(says), "message {:?} does not say {says:?}", last_error());
}

unsafe extern "C" fn on_message(_: *mut c_void, _: *mut sockflow_conn, _: *const c_char, _: usize) -> c_int {
    0
}

fn handler() -> sockflow_handler {
    sockflow_handler { on_connect: None, on_message: Some(on_message), on_close: None, builtin: 0 }
}

fn server_args() -> sockflow_args {
    // SAFETY: a plain C struct, filled by sockflow_args_init.
    let mut a: sockflow_args = unsafe { std::mem::zeroed() };
    assert_eq!(sockflow_args_init(&mut a, sockflow_role::Server as c_int, c"127.0.0.1".as_ptr(), 0), 0);
    a
}

fn config() -> sockflow_server_config {
    // SAFETY: a plain C struct, filled by sockflow_server_config_init.
    let mut c: sockflow_server_config = unsafe { std::mem::zeroed() };
    assert_eq!(sockflow_server_config_init(&mut c), 0);
    c.quiet = 1;
    c
}

fn new_server(a: &sockflow_args, c: &sockflow_server_config) -> (c_int, *mut sockflow_server) {
    let mut s = null_mut();
    let rc = sockflow_tcp_server_new(a, c, handler(), null_mut(), &mut s);
    (rc, s)
}

#[test]
fn defaults_say_forever_not_zero() {
    let a = server_args();
    assert_eq!(a.timeout_ms, SOCKFLOW_FOREVER, "no --timeout is SOCKFLOW_FOREVER");
    let c = config();
    assert_eq!(c.idle_timeout_ms, SOCKFLOW_FOREVER);
    assert!(c.incomplete_timeout_ms > 0);
    // The parsed command line: `--timeout` absent is FOREVER, given is kept.
    let argv = [c"prog".as_ptr(), c"5000".as_ptr(), null()];
    let mut p: sockflow_args = unsafe { std::mem::zeroed() };
    assert_eq!(sockflow_args_parse(&mut p, 2, argv.as_ptr().cast(), sockflow_role::Server as c_int), 0);
    assert_eq!(p.timeout_ms, SOCKFLOW_FOREVER);
    let argv = [c"prog".as_ptr(), c"--timeout".as_ptr(), c"250".as_ptr(), c"5000".as_ptr(), null()];
    assert_eq!(sockflow_args_parse(&mut p, 4, argv.as_ptr().cast(), sockflow_role::Server as c_int), 0);
    assert_eq!(p.timeout_ms, 250);
}

#[test]
fn zero_ms_is_refused_where_a_call_cannot_check_without_waiting() {
    // Connects.
    let mut t = null_mut();
    refused(sockflow_tcp_connect(c"127.0.0.1".as_ptr(), 9, 0, &mut t), "timeout_ms is 0");
    assert!(t.is_null());
    // Socket timeouts.
    let mut l = null_mut();
    assert_eq!(sockflow_tcp_listen(c"127.0.0.1".as_ptr(), 0, 0, &mut l), 0, "{}", last_error());
    let port = sockflow_tcp_listener_port(l);
    assert_eq!(sockflow_tcp_connect(c"127.0.0.1".as_ptr(), port, SOCKFLOW_FOREVER, &mut t), 0, "{}", last_error());
    refused(sockflow_tcp_set_timeouts(t, 0, 1000), "recv_ms is 0");
    refused(sockflow_tcp_set_timeouts(t, 1000, 0), "send_ms is 0");
    assert_eq!(sockflow_tcp_set_timeouts(t, SOCKFLOW_FOREVER, -7), 0, "any negative is no limit");
    assert_eq!(sockflow_tcp_set_timeouts(t, 1000, 1000), 0);
    let mut u = null_mut();
    assert_eq!(sockflow_udp_bind(c"127.0.0.1".as_ptr(), 0, &mut u), 0);
    refused(sockflow_udp_set_timeouts(u, 0, SOCKFLOW_FOREVER), "recv_ms is 0");
    assert_eq!(sockflow_udp_set_timeouts(u, 50, SOCKFLOW_FOREVER), 0);
    let mut buf = [0u8; 16];
    let got = sockflow_udp_recv_from(u, buf.as_mut_ptr().cast(), buf.len(), null_mut());
    assert_eq!(got, SOCKFLOW_ETIMEDOUT as isize, "the 50 ms receive timeout applies: {}", last_error());
    sockflow_udp_close(u);
    sockflow_tcp_close(t);
    sockflow_tcp_listener_close(l);

    // Config fields and the args' timeout.
    let a = server_args();
    let mut c = config();
    c.idle_timeout_ms = 0;
    let (rc, s) = new_server(&a, &c);
    refused(rc, "cfg.idle_timeout_ms is 0");
    assert!(s.is_null());
    let mut c = config();
    c.incomplete_timeout_ms = 0;
    refused(new_server(&a, &c).0, "cfg.incomplete_timeout_ms is 0");
    let mut zeroed_timeout = server_args();
    zeroed_timeout.timeout_ms = 0;
    refused(new_server(&zeroed_timeout, &config()).0, "args.timeout_ms is 0");

    // Calls on a server.
    let (rc, s) = new_server(&a, &config());
    assert_eq!(rc, 0, "{}", last_error());
    refused(sockflow_server_set_idle_timeout(s, 1, 0), "timeout_ms is 0");
    assert_eq!(sockflow_server_set_idle_timeout(s, 1, SOCKFLOW_FOREVER), 0);
    let mut id = 0u64;
    refused(sockflow_server_connect(s, c"127.0.0.1".as_ptr(), 9, 0, null_mut(), &mut id), "timeout_ms is 0");
    sockflow_server_close(s);
}

#[test]
fn zero_ms_checks_once_where_a_call_can() {
    let mut l = null_mut();
    assert_eq!(sockflow_tcp_listen(c"127.0.0.1".as_ptr(), 0, 0, &mut l), 0);
    let mut t = null_mut();
    assert_eq!(sockflow_tcp_accept(l, 0, &mut t, null_mut()), SOCKFLOW_ETIMEDOUT, "nobody connected: at once");
    assert!(t.is_null());
    sockflow_tcp_listener_close(l);

    let (rc, s) = new_server(&server_args(), &config());
    assert_eq!(rc, 0, "{}", last_error());
    assert_eq!(sockflow_server_turn(s, 0), sockflow_turn::Running as c_int, "{}", last_error());
    sockflow_server_close(s);
}

#[test]
fn unknown_enum_values_are_refused_by_name() {
    let mut a = server_args();
    a.family = 5;
    refused(new_server(&a, &config()).0, "args.family 5 is not a sockflow_family");
    let mut a = server_args();
    a.frame = 9;
    refused(new_server(&a, &config()).0, "args.frame 9 is not a sockflow_frame");
    let mut c = config();
    c.mode = 3;
    refused(new_server(&server_args(), &c).0, "cfg.mode 3 is not a sockflow_mode");
    let mut s = null_mut();
    let h = sockflow_handler { builtin: 9, ..handler() };
    refused(sockflow_tcp_server_new(&server_args(), &config(), h, null_mut(), &mut s), "handler.builtin 9 is not a sockflow_builtin");
    assert!(s.is_null());
    let mut p: sockflow_args = unsafe { std::mem::zeroed() };
    refused(sockflow_args_init(&mut p, 3, c"127.0.0.1".as_ptr(), 0), "role 3 is not a sockflow_role");

    let (rc, s) = new_server(&server_args(), &config());
    assert_eq!(rc, 0);
    refused(sockflow_server_close_id(s, 1, 2), "mode 2 is not a sockflow_close_mode");
    sockflow_server_close(s);

    // The named values work, built-ins included.
    for b in [sockflow_builtin::Print, sockflow_builtin::Echo, sockflow_builtin::Hello, sockflow_builtin::Upper] {
        let h = sockflow_handler { builtin: b as c_int, ..handler() };
        let mut s = null_mut();
        assert_eq!(sockflow_tcp_server_new(&server_args(), &config(), h, null_mut(), &mut s), 0, "{b:?}: {}", last_error());
        sockflow_server_close(s);
    }
}

/// The exported function names, read off the header.
fn header_functions() -> Vec<String> {
    let h = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/include/sockflow.h")).unwrap();
    let mut names = Vec::new();
    for w in h.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
        if w.starts_with("sockflow_") && h.contains(&format!("{w}(")) && !names.contains(&w.to_string()) {
            names.push(w.to_string());
        }
    }
    assert!(names.len() > 80, "read only {} functions off the header", names.len());
    names
}

#[test]
fn every_handle_has_one_close_and_send_to_has_one_spelling() {
    let h = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/include/sockflow.h")).unwrap();
    let fns = header_functions();
    // Opaque handles: `typedef struct sockflow_X sockflow_X;` with no body.
    let handles: Vec<&str> = h
        .lines()
        .filter_map(|l| l.strip_prefix("typedef struct "))
        .filter_map(|l| l.strip_suffix(';'))
        .filter_map(|l| l.split_once(' ').map(|(a, _)| a))
        .collect();
    assert!(handles.contains(&"sockflow_server") && handles.contains(&"sockflow_tcp"), "{handles:?}");
    for handle in handles {
        if handle == "sockflow_conn" {
            continue; // a per-callback token, owned by the loop: nothing to close
        }
        assert!(fns.contains(&format!("{handle}_close")), "{handle} has no {handle}_close");
    }
    for f in &fns {
        assert!(!f.ends_with("_free") && !f.ends_with("_destroy"), "{f}: the destroy verb is _close");
        assert!(!f.contains("sendto") && !f.contains("recvfrom"), "{f}: spelled send_to / recv_from");
        assert!(!f.ends_with("_set_timeout"), "{f}: set_timeouts(recv_ms, send_ms) everywhere");
    }
}

/// The examples stay as short as issue 7 and README promise: a chat room
/// in at most 50 lines of C, a proxy in at most 60, every flow's one-call
/// example about ten lines (at most 15).
#[test]
fn examples_stay_as_short_as_promised() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/c_examples");
    let lines = |name: &str| std::fs::read_to_string(format!("{dir}/{name}")).unwrap_or_else(|e| panic!("{name}: {e}")).lines().count();
    for (name, max) in [
        ("chat_room.c", 50),
        ("proxy.c", 60),
        ("prim_tcp_server.c", 50),
        ("prim_tcp_client.c", 50),
        ("prim_udp_server.c", 50),
        ("prim_udp_client.c", 50),
    ] {
        assert!(lines(name) <= max, "{name} has {} lines (at most {max})", lines(name));
    }
    for name in ["tcp_server.c", "tcp_client.c", "echo_server.c", "udp_server.c", "udp_client.c"] {
        assert!(lines(name) <= 15, "{name} has {} lines: a one-call flow is about ten", lines(name));
    }
}
