//! Defaults and edges of the callback API (issue 7): a server set up
//! without a command line has no quit word (the `quit` default belongs to
//! `sockflow_args_parse`), and a callback result that is no
//! `sockflow_action` is treated as CLOSE and reported once per process.

mod common;

use common::*;
use sockflow::server::tcp::TcpServer;
use sockflow::server::{Action, Config, Conn, Handler};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::sync::Arc;

fn connect(port: u16) -> (TcpStream, BufReader<TcpStream>) {
    let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(default_timeout())).unwrap();
    let r = BufReader::new(s.try_clone().unwrap());
    (s, r)
}

fn line(r: &mut BufReader<TcpStream>) -> String {
    let mut l = String::new();
    r.read_line(&mut l).unwrap();
    l
}

/// `tests/c/callback_edges.c`: "quit" echoed by a server made with
/// `sockflow_args_init`; a callback's 7 closes (reason HANDLER) each time
/// it is returned; the report on stderr comes once.
#[test]
fn args_init_has_no_quit_word_and_unknown_actions_close_reported_once() {
    let src = root().join("tests/c/callback_edges.c");
    let bin = CProgram::new(&src.to_string_lossy()).flag("-pthread").build();
    let mut p = spawn(&bin, &[], Input::Null);
    let st = p.wait_exit(secs(60));
    assert_exit(&p, st, 0);
    assert!(p.stdout_text().starts_with("OK"), "{}", p.transcript());
    let reports: Vec<String> = p.stderr_text().lines().filter(|l| l.contains("not a sockflow_action")).map(String::from).collect();
    assert_eq!(
        reports,
        ["sockflow: a callback returned 7, which is not a sockflow_action: treated as SOCKFLOW_ACTION_CLOSE (reported once per process)"],
        "\n{}",
        p.transcript()
    );
}

struct Echo;
impl Handler for Echo {
    fn on_message(&self, c: &mut Conn<'_>, msg: &[u8]) -> Action {
        let _ = c.send(msg);
        Action::Continue
    }
}

/// The Rust `Config::default()`, like `sockflow_server_config_init`, has no
/// quit word; `Config::from_args` keeps the command line's.
#[test]
fn default_config_has_no_quit_word() {
    assert_eq!(Config::default().quit, "");
    let a = sockflow::args::parse(sockflow::args::Role::Server, "t", &["0"]).unwrap();
    assert_eq!(Config::from_args(&a).quit, "quit");
    let s = TcpServer::bind(&["127.0.0.1:0".parse().unwrap()], Config { log: None, ..Config::default() }, Arc::new(Echo)).unwrap();
    let (h, port) = (s.handle(), s.local_addr().port());
    let t = std::thread::spawn(move || s.run());
    let (mut c, mut r) = connect(port);
    c.write_all(b"quit\nquit\n").unwrap();
    assert_eq!(line(&mut r), "quit\n");
    assert_eq!(line(&mut r), "quit\n");
    h.stop();
    t.join().unwrap().unwrap();
}
