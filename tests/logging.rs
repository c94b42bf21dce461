//! A program's own log function (`LogTo::Lines`, C `log_fn`) gets every
//! log line with its level and without the `NAME: ` prefix, instead of
//! stderr; `quiet` silences it too; nothing arrives after the server is
//! closed.

mod common;
#[path = "server/kit.rs"]
mod skit;

use skit::*;
use sockflow::ffi::args::*;
use sockflow::ffi::server::*;
use sockflow::server::builtin::Echo;
use sockflow::server::{Config, LogLevel, LogTo};
use std::ffi::{c_char, c_int, c_void, CStr};
use std::io::Read;
use std::net::TcpStream;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

type Lines = Arc<Mutex<Vec<(LogLevel, String)>>>;

/// Waits (bounded) until a line containing `needle` arrived.
fn wait_line(lines: &Mutex<Vec<(LogLevel, String)>>, needle: &str) -> (LogLevel, String) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(l) = lines.lock().unwrap().iter().find(|(_, l)| l.contains(needle)) {
            return l.clone();
        }
        assert!(Instant::now() < deadline, "no log line with {needle:?}: {:?}", lines.lock().unwrap());
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Two connections from 127.0.0.1 with `max_per_ip` 1: the second is
/// refused, which logs a warning.
fn refuse_one(addr: std::net::SocketAddr) -> TcpStream {
    let first = TcpStream::connect(addr).unwrap();
    let mut second = TcpStream::connect(addr).unwrap();
    second.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let _ = second.read(&mut [0u8; 16]); // closed by the server
    first
}

#[test]
fn lines_go_to_the_programs_function_with_levels() {
    let lines: Lines = Arc::default();
    let l = lines.clone();
    let to = LogTo::Lines(Box::new(move |level, line| l.lock().unwrap().push((level, line.to_string()))));
    let cfg = Config { log: Some(to), max_per_ip: 1, name: "prog".into(), ..Config::default() };
    let srv = start_tcp(cfg, Arc::new(Echo));
    let (level, line) = wait_line(&lines, "listening on");
    assert_eq!(level, LogLevel::Info);
    assert!(line.starts_with("listening on 127.0.0.1 port "), "no NAME: prefix: {line:?}");
    let _first = refuse_one(srv.addr);
    assert_eq!(wait_line(&lines, "closing").0, LogLevel::Warn);
    srv.stop().unwrap();
    assert_eq!(wait_line(&lines, "stopped").0, LogLevel::Info);
}

unsafe extern "C" fn c_log(ud: *mut c_void, level: c_int, msg: *const c_char) {
    let lines = &*(ud as *const Mutex<Vec<(c_int, String)>>);
    lines.lock().unwrap().push((level, CStr::from_ptr(msg).to_string_lossy().into_owned()));
}

unsafe extern "C" fn on_message(_: *mut c_void, _: *mut sockflow::ffi::handler::sockflow_conn, _: *const c_char, _: usize) -> c_int {
    0
}

fn c_server(cfg: &sockflow_server_config) -> *mut sockflow_server {
    let mut a: sockflow_args = unsafe { std::mem::zeroed() };
    assert_eq!(sockflow_args_init(&mut a, sockflow_role::Server as c_int, c"127.0.0.1".as_ptr(), 0), 0);
    let h = sockflow::ffi::handler::sockflow_handler { on_connect: None, on_message: Some(on_message), on_close: None, builtin: 0 };
    let mut s = std::ptr::null_mut();
    assert_eq!(sockflow_tcp_server_new(&a, cfg, h, std::ptr::null_mut(), &mut s), 0);
    s
}

#[test]
fn c_log_fn_gets_levels_and_nothing_after_close() {
    let lines: &'static Mutex<Vec<(c_int, String)>> = Box::leak(Box::default());
    let mut cfg: sockflow_server_config = unsafe { std::mem::zeroed() };
    sockflow_server_config_init(&mut cfg);
    cfg.log_fn = Some(c_log);
    cfg.log_userdata = lines as *const _ as *mut c_void;
    cfg.max_per_ip = 1;
    let s = c_server(&cfg);
    assert_eq!(sockflow_server_start(s), 0);
    let port = sockflow_server_port(s) as u16;
    let _first = refuse_one(([127, 0, 0, 1], port).into());
    let deadline = Instant::now() + Duration::from_secs(30);
    while !lines.lock().unwrap().iter().any(|(_, l)| l.contains("closing")) {
        assert!(Instant::now() < deadline, "{:?}", lines.lock().unwrap());
        std::thread::sleep(Duration::from_millis(10));
    }
    sockflow_server_close(s);
    let got = lines.lock().unwrap().clone();
    let level_of = |needle: &str| got.iter().find(|(_, l)| l.contains(needle)).map(|(lv, _)| *lv);
    assert_eq!(level_of("listening on 127.0.0.1"), Some(LogLevel::Info as c_int), "{got:?}");
    assert_eq!(level_of("closing"), Some(LogLevel::Warn as c_int), "{got:?}");
    assert_eq!(level_of("stopped"), Some(LogLevel::Info as c_int), "the stop line is written before close returns: {got:?}");
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(lines.lock().unwrap().len(), got.len(), "a line arrived after sockflow_server_close returned");

    // quiet silences the function too.
    lines.lock().unwrap().clear();
    cfg.quiet = 1;
    let s = c_server(&cfg);
    assert_eq!(sockflow_server_start(s), 0);
    sockflow_server_close(s);
    assert!(lines.lock().unwrap().is_empty(), "{:?}", lines.lock().unwrap());
}
