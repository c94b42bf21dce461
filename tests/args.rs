//! The tutorials' command lines: every row is one argv with the exact result
//! it gives, checked through the Rust parser and through the C entry point
//! `sockflow_args_parse` (whose struct must carry the same fields).

#[path = "common/cerror.rs"]
mod cerror;
use cerror::last_error;
use sockflow::args::{self, Role};
use sockflow::ffi::args::{
    sockflow_args, sockflow_args_init, sockflow_args_parse, sockflow_args_set_frame, sockflow_role, SOCKFLOW_ARGS_QUIET,
};
use sockflow::ffi::error::{code_of, code_value, sockflow_exit_code, sockflow_last_error_code};
use sockflow::frame::{Frame, DEFAULT_LEN32_MAX, DEFAULT_MAX, LIMIT_MAX};
use sockflow::net::Family;
use sockflow::Code;
use std::ffi::{c_char, c_int, CStr, CString};

/// The fields a successful parse must give (role and prog are checked too).
#[derive(Clone, Debug, PartialEq, Eq)]
struct Fields {
    host: String,
    port: u16,
    family: Family,
    frame: Frame,
    quit: String,
    timeout_ms: u32,
    max_per_ip: Option<u32>,
    workers: Option<u32>,
}

#[derive(Clone, Debug)]
enum Want {
    Ok(Fields),
    /// This code and exactly this message.
    Err(Code, String),
    /// This code and a message starting so (the resolver's reason varies).
    ErrPrefix(Code, String),
}

#[derive(Clone, Debug)]
struct Row {
    role: Role,
    argv: &'static [&'static str],
    want: Want,
}

struct Start(Role, &'static [&'static str]);

fn srv(argv: &'static [&'static str]) -> Start {
    Start(Role::Server, argv)
}

fn cli(argv: &'static [&'static str]) -> Start {
    Start(Role::Client, argv)
}

impl Start {
    fn ok(self, host: &str, port: u16) -> Row {
        let f = Fields {
            host: host.into(),
            port,
            family: Family::Any,
            frame: Frame::Line { max: DEFAULT_MAX },
            quit: "quit".into(),
            timeout_ms: 0,
            max_per_ip: None,
            workers: None,
        };
        Row { role: self.0, argv: self.1, want: Want::Ok(f) }
    }

    fn err(self, code: Code, msg: impl Into<String>) -> Row {
        Row { role: self.0, argv: self.1, want: Want::Err(code, msg.into()) }
    }

    fn usage(self, msg: impl Into<String>) -> Row {
        self.err(Code::Usage, msg)
    }

    fn err_prefix(self, code: Code, prefix: &str) -> Row {
        Row { role: self.0, argv: self.1, want: Want::ErrPrefix(code, prefix.into()) }
    }
}

impl Row {
    fn fields(mut self, f: impl FnOnce(&mut Fields)) -> Row {
        match &mut self.want {
            Want::Ok(fields) => f(fields),
            _ => panic!("only a good row has fields"),
        }
        self
    }
    fn v4(self) -> Row {
        self.fields(|f| f.family = Family::V4)
    }
    fn v6(self) -> Row {
        self.fields(|f| f.family = Family::V6)
    }
    fn frame(self, frame: Frame) -> Row {
        self.fields(|f| f.frame = frame)
    }
    fn quit(self, q: &str) -> Row {
        self.fields(|f| f.quit = q.into())
    }
    fn timeout(self, ms: u32) -> Row {
        self.fields(|f| f.timeout_ms = ms)
    }
    fn max_per_ip(self, n: u32) -> Row {
        self.fields(|f| f.max_per_ip = Some(n))
    }
    fn workers(self, n: u32) -> Row {
        self.fields(|f| f.workers = Some(n))
    }
}

fn port_err(s: &str, lo: u16) -> String {
    format!("port \"{s}\" is not a number in {lo}-65535")
}

fn timeout_err(s: &str) -> String {
    format!("timeout \"{s}\" is not a number of milliseconds in 0-86400000")
}

const SIZE_ERR_TAIL: &str = "is not a number in 1-67108864";

fn rows() -> Vec<Row> {
    let long_host: &'static str = "h".repeat(256).leak();
    let long_quit: &'static str = "q".repeat(64).leak();
    let max_quit: &'static str = "q".repeat(63).leak();
    let long_host_argv: &'static [&'static str] = vec![long_host, "80"].leak();
    let long_quit_argv: &'static [&'static str] = vec!["--quit", long_quit, "80"].leak();
    let max_quit_argv: &'static [&'static str] = vec!["--quit", max_quit, "80"].leak();
    vec![
        // ---- server positionals
        srv(&["80"]).ok("0.0.0.0", 80),
        srv(&["0"]).ok("0.0.0.0", 0), // any free port
        srv(&["65535"]).ok("0.0.0.0", 65535),
        srv(&["00080"]).ok("0.0.0.0", 80),
        srv(&["000080"]).ok("0.0.0.0", 80),
        srv(&["127.0.0.1", "8080"]).ok("127.0.0.1", 8080),
        srv(&["0.0.0.0", "0"]).ok("0.0.0.0", 0),
        srv(&["::1", "80"]).ok("::1", 80),
        srv(&["[::1]", "80"]).ok("::1", 80),
        srv(&["::", "80"]).ok("::", 80),
        srv(&["localhost", "80"]).ok("localhost", 80),
        srv(&["-6", "80"]).ok("::", 80).v6(),
        srv(&["-4", "80"]).ok("0.0.0.0", 80).v4(),
        srv(&["80", "-6"]).ok("::", 80).v6(),
        srv(&["-4", "127.0.0.1", "80"]).ok("127.0.0.1", 80).v4(),
        srv(&["-6", "::1", "80"]).ok("::1", 80).v6(),
        srv(&[]).usage("missing <port>"),
        srv(&["80a"]).usage(port_err("80a", 0)),
        srv(&["-1"]).usage(port_err("-1", 0)),
        srv(&["65536"]).usage(port_err("65536", 0)),
        srv(&["99999999999999999999"]).usage(port_err("99999999999999999999", 0)),
        srv(&[""]).usage(port_err("", 0)),
        srv(&[" 80"]).usage(port_err(" 80", 0)),
        srv(&["80 "]).usage(port_err("80 ", 0)),
        srv(&["+80"]).usage(port_err("+80", 0)),
        srv(&["0x50"]).usage(port_err("0x50", 0)),
        srv(&["８０"]).usage(port_err("８０", 0)), // full-width digits
        srv(&["1.2.3.4", "80", "extra"]).usage("unexpected argument \"extra\""),
        srv(&["", "80"]).usage("host is empty"),
        srv(long_host_argv).usage("host is longer than 255 bytes"),
        srv(&["no-such-host.invalid", "80"]).err_prefix(Code::Resolve, "resolve \"no-such-host.invalid\": "),
        srv(&["-4", "::1", "80"]).err(Code::Addr, "\"::1\" is not an IPv4 address"),
        srv(&["-4", "-6", "80"]).usage("-4 and -6 cannot be used together"),
        srv(&["--", "80"]).ok("0.0.0.0", 80),
        srv(&["--", "-4"]).usage(port_err("-4", 0)),
        srv(&["--", "--help"]).usage(port_err("--help", 0)),
        // ---- client positionals
        cli(&["127.0.0.1", "80"]).ok("127.0.0.1", 80),
        cli(&["::1", "9000"]).ok("::1", 9000),
        cli(&["[::1]", "9000"]).ok("::1", 9000),
        cli(&["localhost", "1"]).ok("localhost", 1),
        cli(&["-4", "localhost", "80"]).ok("localhost", 80).v4(),
        cli(&["127.0.0.1", "80", "-4"]).ok("127.0.0.1", 80).v4(),
        cli(&["-6", "[::1]", "80"]).ok("::1", 80).v6(),
        cli(&["127.0.0.1", "80a"]).usage(port_err("80a", 1)),
        cli(&["127.0.0.1", "0"]).usage(port_err("0", 1)),
        cli(&["127.0.0.1", "-1"]).usage(port_err("-1", 1)),
        cli(&["127.0.0.1", "65536"]).usage(port_err("65536", 1)),
        cli(&["127.0.0.1", ""]).usage(port_err("", 1)),
        cli(&["127.0.0.1"]).usage("missing <port>"),
        cli(&[]).usage("missing <port>"),
        cli(&["127.0.0.1", "80", "x"]).usage("unexpected argument \"x\""),
        cli(&["no-such-host.invalid", "80"]).err_prefix(Code::Resolve, "resolve \"no-such-host.invalid\": "),
        cli(&["-4", "::1", "80"]).err(Code::Addr, "\"::1\" is not an IPv4 address"),
        cli(&["-4", "[::1]", "80"]).err(Code::Addr, "\"[::1]\" is not an IPv4 address"),
        cli(&["-6", "127.0.0.1", "80"]).err(Code::Addr, "\"127.0.0.1\" is not an IPv6 address"),
        cli(&["-6", "-4", "::1", "80"]).usage("-4 and -6 cannot be used together"),
        cli(&["bad host", "80"]).err(Code::Addr, "\"bad host\" is not a valid host name"),
        cli(&["é", "80"]).err_prefix(Code::Resolve, "resolve \"é\": "),
        // ---- --frame
        srv(&["--frame", "line", "80"]).ok("0.0.0.0", 80),
        srv(&["--frame", "raw", "80"]).ok("0.0.0.0", 80).frame(Frame::Raw { max: DEFAULT_MAX }),
        srv(&["--frame", "fixed:32", "80"]).ok("0.0.0.0", 80).frame(Frame::Fixed(32)),
        srv(&["--frame", "len32", "80"]).ok("0.0.0.0", 80).frame(Frame::Len32 { max: DEFAULT_LEN32_MAX }),
        srv(&["--frame=len32", "80"]).ok("0.0.0.0", 80).frame(Frame::Len32 { max: DEFAULT_LEN32_MAX }),
        srv(&["80", "--frame=fixed:2"]).ok("0.0.0.0", 80).frame(Frame::Fixed(2)),
        srv(&["--frame", "line:1024", "80"]).ok("0.0.0.0", 80).frame(Frame::Line { max: 1024 }),
        srv(&["--frame", "len32:67108864", "80"]).ok("0.0.0.0", 80).frame(Frame::Len32 { max: LIMIT_MAX }),
        srv(&["--frame", "raw", "--frame", "fixed:8", "80"]).ok("0.0.0.0", 80).frame(Frame::Fixed(8)),
        srv(&["--frame", "fixed", "80"]).usage("fixed needs a size, e.g. fixed:32"),
        srv(&["--frame", "fixed:0", "80"]).usage(format!("frame size \"0\" {SIZE_ERR_TAIL}")),
        srv(&["--frame", "fixed:1", "80"]).usage("fixed frames need N >= 2 (a byte of text and its NUL)"),
        srv(&["--frame", "fixed:abc", "80"]).usage(format!("frame size \"abc\" {SIZE_ERR_TAIL}")),
        srv(&["--frame", "fixed:-3", "80"]).usage(format!("frame size \"-3\" {SIZE_ERR_TAIL}")),
        srv(&["--frame", "len32:67108865", "80"]).usage(format!("frame size \"67108865\" {SIZE_ERR_TAIL}")),
        srv(&["--frame", "line:", "80"]).usage(format!("frame size \"\" {SIZE_ERR_TAIL}")),
        srv(&["--frame", "bogus", "80"]).usage("unknown frame \"bogus\" (line, raw, fixed:N or len32)"),
        srv(&["--frame", "LINE", "80"]).usage("unknown frame \"LINE\" (line, raw, fixed:N or len32)"),
        srv(&["--frame=", "80"]).usage("unknown frame \"\" (line, raw, fixed:N or len32)"),
        srv(&["80", "--frame"]).usage("--frame needs a frame (line, raw, fixed:N, len32)"),
        // ---- --quit
        cli(&["--quit", "bye", "::1", "80"]).ok("::1", 80).quit("bye"),
        cli(&["::1", "80", "--quit=exit"]).ok("::1", 80).quit("exit"),
        srv(&["--quit", "", "80"]).ok("0.0.0.0", 80).quit(""),
        srv(&["--quit=", "80"]).ok("0.0.0.0", 80).quit(""),
        srv(&["--quit", "-4", "80"]).ok("0.0.0.0", 80).quit("-4"),
        srv(&["--quit", "再见", "80"]).ok("0.0.0.0", 80).quit("再见"),
        srv(max_quit_argv).ok("0.0.0.0", 80).quit(max_quit),
        srv(long_quit_argv).usage("quit word must be one line of at most 63 bytes"),
        srv(&["--quit", "a\nb", "80"]).usage("quit word must be one line of at most 63 bytes"),
        srv(&["80", "--quit"]).usage("--quit needs a word"),
        // ---- --timeout
        cli(&["--timeout", "500", "127.0.0.1", "80"]).ok("127.0.0.1", 80).timeout(500),
        cli(&["127.0.0.1", "80", "--timeout=250"]).ok("127.0.0.1", 80).timeout(250),
        srv(&["--timeout", "0", "80"]).ok("0.0.0.0", 80),
        srv(&["--timeout", "86400000", "80"]).ok("0.0.0.0", 80).timeout(86_400_000),
        srv(&["--timeout", "0000000500", "80"]).ok("0.0.0.0", 80).timeout(500),
        srv(&["--timeout", "86400001", "80"]).usage(timeout_err("86400001")),
        srv(&["--timeout", "-5", "80"]).usage(timeout_err("-5")),
        srv(&["--timeout", "abc", "80"]).usage(timeout_err("abc")),
        srv(&["--timeout", "1.5", "80"]).usage(timeout_err("1.5")),
        srv(&["--timeout", "", "80"]).usage(timeout_err("")),
        srv(&["--timeout", "99999999999999999999", "80"]).usage(timeout_err("99999999999999999999")),
        srv(&["80", "--timeout"]).usage("--timeout needs milliseconds"),
        // ---- --max-per-ip (servers only)
        srv(&["--max-per-ip", "10", "80"]).ok("0.0.0.0", 80).max_per_ip(10),
        srv(&["80", "--max-per-ip=1000000"]).ok("0.0.0.0", 80).max_per_ip(1_000_000),
        srv(&["--max-per-ip", "0", "80"]).usage("--max-per-ip \"0\" is not a number in 1-1000000"),
        srv(&["--max-per-ip", "1000001", "80"]).usage("--max-per-ip \"1000001\" is not a number in 1-1000000"),
        srv(&["--max-per-ip", "-3", "80"]).usage("--max-per-ip \"-3\" is not a number in 1-1000000"),
        srv(&["80", "--max-per-ip"]).usage("--max-per-ip needs a number of connections"),
        cli(&["--max-per-ip", "10", "127.0.0.1", "80"]).usage("--max-per-ip is a server option"),
        // ---- --workers (servers only)
        srv(&["--workers", "2", "80"]).ok("0.0.0.0", 80).workers(2),
        srv(&["80", "--workers=256"]).ok("0.0.0.0", 80).workers(256),
        srv(&["--workers", "0", "80"]).usage("--workers \"0\" is not a number in 1-256"),
        srv(&["--workers", "257", "80"]).usage("--workers \"257\" is not a number in 1-256"),
        srv(&["--workers", "+2", "80"]).usage("--workers \"+2\" is not a number in 1-256"),
        srv(&["80", "--workers"]).usage("--workers needs a number of threads"),
        cli(&["--workers", "2", "127.0.0.1", "80"]).usage("--workers is a server option"),
        // ---- everything at once, flags before and after the positionals
        cli(&["--timeout", "500", "--frame", "fixed:32", "127.0.0.1", "--quit", "bye", "9000", "-4"])
            .ok("127.0.0.1", 9000)
            .v4()
            .frame(Frame::Fixed(32))
            .quit("bye")
            .timeout(500),
        // ---- unknown options, help
        srv(&["-x", "80"]).usage("unknown option \"-x\""),
        srv(&["--bogus=1", "80"]).usage("unknown option \"--bogus=1\""),
        srv(&["--port", "80"]).usage("unknown option \"--port\""),
        // `-<digits>` other than -4/-6 is a (negative) positional, never an option.
        srv(&["-46", "80"]).err_prefix(Code::Resolve, "resolve \"-46\": "),
        srv(&["--=x", "80"]).usage("-- takes no value"),
        srv(&["-4=x", "80"]).usage("unknown option \"-4=x\""),
        srv(&["--help=x"]).usage("--help takes no value"),
        srv(&["---", "80"]).usage("unknown option \"---\""),
        srv(&["-h"]).err(Code::Help, args::help("prog", Role::Server)),
        cli(&["--help"]).err(Code::Help, args::help("prog", Role::Client)),
        cli(&["127.0.0.1", "80a", "-h"]).err(Code::Help, args::help("prog", Role::Client)),
        srv(&["--frame", "bogus", "-h"]).usage("unknown frame \"bogus\" (line, raw, fixed:N or len32)"),
    ]
}

// ---- the C side -----------------------------------------------------------

fn field(a: &[c_char]) -> String {
    let bytes: Vec<u8> = a.iter().take_while(|&&c| c != 0).map(|&c| c as u8).collect();
    assert!(bytes.len() < a.len(), "field not NUL-terminated");
    String::from_utf8(bytes).expect("field is UTF-8")
}

fn role_flag(role: Role) -> c_int {
    match role {
        Role::Server => sockflow_role::Server as c_int,
        Role::Client => sockflow_role::Client as c_int,
    }
}

/// A struct full of junk, to see that a failed parse leaves it alone.
fn junk_args() -> sockflow_args {
    let mut a: sockflow_args = unsafe { std::mem::zeroed() };
    a.port = -7;
    a.frame = 99;
    a.host[0] = b'J' as c_char;
    a
}

/// Calls `sockflow_args_parse` with `argv0` and `argv`.
fn c_parse(role: Role, argv0: &str, argv: &[&str], quiet: bool) -> (c_int, sockflow_args) {
    let owned: Vec<CString> = std::iter::once(argv0).chain(argv.iter().copied()).map(|s| CString::new(s).unwrap()).collect();
    let mut ptrs: Vec<*mut c_char> = owned.iter().map(|s| s.as_ptr() as *mut c_char).collect();
    ptrs.push(std::ptr::null_mut());
    let mut out = junk_args();
    let flags = role_flag(role) | if quiet { SOCKFLOW_ARGS_QUIET } else { 0 };
    let rc = sockflow_args_parse(&mut out, owned.len() as c_int, ptrs.as_ptr().cast(), flags);
    (rc, out)
}

fn family_c(f: Family) -> c_int {
    match f {
        Family::Any => 0,
        Family::V4 => 4,
        Family::V6 => 6,
    }
}

fn frame_c(f: Frame) -> (c_int, u32) {
    match f {
        Frame::Line { max } => (0, max as u32),
        Frame::Raw { max } => (1, max as u32),
        Frame::Fixed(n) => (2, n as u32),
        Frame::Len32 { max } => (3, max as u32),
    }
}

fn check_c_fields(what: &str, c: &sockflow_args, role: Role, prog: &str, f: &Fields) {
    assert_eq!(c.role, role_flag(role), "{what}: role");
    assert_eq!(field(&c.host), f.host, "{what}: host");
    assert_eq!(c.port, c_int::from(f.port), "{what}: port");
    assert_eq!(c.family, family_c(f.family), "{what}: family");
    assert_eq!((c.frame, c.frame_size), frame_c(f.frame), "{what}: frame");
    assert_eq!(field(&c.quit), f.quit, "{what}: quit");
    assert_eq!(c.timeout_ms, if f.timeout_ms == 0 { -1 } else { f.timeout_ms as c_int }, "{what}: timeout_ms");
    assert_eq!(c.max_per_ip, f.max_per_ip.map_or(0, |n| n as c_int), "{what}: max_per_ip");
    assert_eq!(c.workers, f.workers.map_or(0, |n| n as c_int), "{what}: workers");
    assert_eq!(field(&c.prog), prog, "{what}: prog");
}

fn check_err(what: &str, code: Code, msg: &str, want: &Want) {
    match want {
        Want::Ok(_) => panic!("{what}: failed with {code:?}: {msg}"),
        Want::Err(c, m) => {
            assert_eq!(code, *c, "{what}: code ({msg})");
            assert_eq!(msg, m, "{what}: message");
        }
        Want::ErrPrefix(c, p) => {
            assert_eq!(code, *c, "{what}: code ({msg})");
            assert!(msg.starts_with(p.as_str()) && msg.len() > p.len(), "{what}: message {msg:?} should start with {p:?}");
        }
    }
}

#[test]
fn table_through_rust_and_c() {
    let rows = rows();
    assert!(rows.len() >= 40, "{} rows", rows.len());
    let failed: Vec<String> = rows
        .iter()
        .filter(|row| std::panic::catch_unwind(|| check_row(row)).is_err())
        .map(|row| format!("{:?} {:?}", row.role, row.argv))
        .collect();
    assert!(failed.is_empty(), "{} of {} rows failed (see above):\n{}", failed.len(), rows.len(), failed.join("\n"));
}

fn check_row(row: &Row) {
    {
        let what = format!("{:?} {:?}", row.role, row.argv);
        // Rust.
        match (args::parse(row.role, "prog", row.argv), &row.want) {
            (Ok(a), Want::Ok(f)) => {
                let got = Fields {
                    host: a.host.clone(),
                    port: a.port,
                    family: a.family,
                    frame: a.frame,
                    quit: a.quit.clone(),
                    timeout_ms: a.timeout_ms,
                    max_per_ip: a.max_per_ip,
                    workers: a.workers,
                };
                assert_eq!(&got, f, "{what}");
                assert_eq!((a.role, a.prog.as_str()), (row.role, "prog"), "{what}");
            }
            (Ok(a), want) => panic!("{what}: parsed as {a:?}, wanted {want:?}"),
            (Err(e), want) => {
                check_err(&what, e.code, &e.msg, want);
                assert_eq!(e.errno, 0, "{what}: errno");
            }
        }
        // C, with argv[0] a path whose basename becomes prog.
        let (rc, c) = c_parse(row.role, "/usr/local/bin/prog", row.argv, true);
        match &row.want {
            Want::Ok(f) => {
                assert_eq!(rc, 0, "{what}: C rc ({})", last_error());
                check_c_fields(&what, &c, row.role, "prog", f);
                assert_eq!(sockflow_exit_code(rc), 0);
            }
            want => {
                let code = code_of(rc).unwrap_or_else(|| panic!("{what}: rc {rc}"));
                assert_eq!(sockflow_last_error_code(), rc, "{what}");
                check_err(&format!("C {what}"), code, &last_error(), want);
                // *args is written only on success.
                assert_eq!((c.port, c.frame, c.host[0]), (-7, 99, b'J' as c_char), "{what}: args written on failure");
                let exit = if code == Code::Help {
                    0
                } else if code == Code::Usage {
                    2
                } else {
                    1
                };
                assert_eq!(sockflow_exit_code(rc), exit, "{what}: exit code");
            }
        }
    }
}

#[test]
fn usage_lines() {
    assert_eq!(
        args::usage_line("tcp_client", Role::Client, &port_err("80a", 1)),
        "usage: tcp_client [options] <host> <port>: port \"80a\" is not a number in 1-65535"
    );
    assert_eq!(
        args::usage_line("tcp_server", Role::Server, "missing <port>"),
        "usage: tcp_server [options] [<host>] <port>: missing <port>"
    );
    let e = args::parse(Role::Client, "tcp_client", &["localhost", "80a"]).unwrap_err();
    assert_eq!(
        args::usage_line("tcp_client", Role::Client, &e.msg),
        "usage: tcp_client [options] <host> <port>: port \"80a\" is not a number in 1-65535"
    );
    let help = args::help("srv", Role::Server);
    assert!(help.starts_with("usage: srv [options] [<host>] <port>\n"), "{help}");
    assert!(help.contains("(0 = any free port)"));
    for opt in ["--frame F", "--quit WORD", "--timeout MS", "--max-per-ip N", "--workers N", "-4, -6", "-h, --help"] {
        assert!(help.contains(opt), "help lacks {opt}");
    }
    // --timeout means an idle timeout on a server, connect/reply on a client.
    assert!(help.contains("--timeout MS     close a connection (TCP, or a UDP peer) after MS ms without traffic"), "{help}");
    let cli_help = args::help("cli", Role::Client);
    assert!(cli_help.starts_with("usage: cli [options] <host> <port>\n"));
    assert!(
        cli_help.contains("--timeout MS     connect/reply timeout")
            && !cli_help.contains("--max-per-ip")
            && !cli_help.contains("--workers"),
        "{cli_help}"
    );
}

#[test]
fn prog_names() {
    for (argv0, prog) in [
        (Some("/usr/bin/tcp_server"), "tcp_server"),
        (Some("./client"), "client"),
        (Some("server"), "server"),
        (Some(""), "sockflow"),
        (Some("/usr/bin/"), "sockflow"),
        (None, "sockflow"),
    ] {
        assert_eq!(args::prog_name(argv0), prog, "{argv0:?}");
    }
    // Long names are cut to fit sockflow_args.prog (63 bytes), never inside
    // a UTF-8 character.
    assert_eq!(args::prog_name(Some(&"p".repeat(100))), "p".repeat(63));
    let wide = "服".repeat(30); // 90 bytes
    assert_eq!(args::prog_name(Some(&wide)), "服".repeat(21));
    let (rc, c) = c_parse(Role::Server, &format!("/bin/{wide}"), &["80"], true);
    assert_eq!(rc, 0);
    assert_eq!(field(&c.prog), "服".repeat(21));
}

#[test]
fn c_argv_edge_cases() {
    let mut a = junk_args();
    let server = role_flag(Role::Server) | SOCKFLOW_ARGS_QUIET;
    // argc 0 (a program exec'd with an empty argv): no port.
    assert_eq!(sockflow_args_parse(&mut a, 0, std::ptr::null(), server), code_value(Code::Usage));
    assert_eq!(last_error(), "missing <port>");
    // A role that is neither.
    let argv = [c"prog".as_ptr() as *mut c_char, c"80".as_ptr() as *mut c_char, std::ptr::null_mut()];
    for flags in [0, 3, SOCKFLOW_ARGS_QUIET, 0xff] {
        assert_eq!(sockflow_args_parse(&mut a, 2, argv.as_ptr().cast(), flags), code_value(Code::Inval), "flags {flags}");
        assert_eq!(last_error(), format!("role {} is not a sockflow_role", flags & 0xff));
    }
    assert_eq!(sockflow_args_parse(&mut a, -1, argv.as_ptr().cast(), server), code_value(Code::Inval));
    assert_eq!(last_error(), "argc/argv: argv is NULL or argc is negative");
    // argc says 2, the vector agrees: fine; argc counts only what is read.
    assert_eq!(sockflow_args_parse(&mut a, 2, argv.as_ptr().cast(), server), 0);
    assert_eq!(a.port, 80);
    // Not UTF-8.
    let bad = CString::new(vec![b'8', 0xff]).unwrap();
    let argv = [c"prog".as_ptr() as *mut c_char, bad.as_ptr() as *mut c_char, std::ptr::null_mut()];
    let mut a = junk_args();
    assert_eq!(sockflow_args_parse(&mut a, 2, argv.as_ptr().cast(), server), code_value(Code::Usage));
    assert_eq!(last_error(), "argument 1 is not valid UTF-8");
    assert_eq!(a.port, -7);
}

/// What `sockflow_args_parse` prints when not quiet: run in a child process
/// (this same test binary) so its C stdout/stderr can be captured.
#[test]
fn not_quiet_prints_usage_and_help() {
    if std::env::var_os("SOCKFLOW_ARGS_CHILD").is_some() {
        return;
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_prints", "--nocapture", "--test-threads=1"])
        .env("SOCKFLOW_ARGS_CHILD", "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "child failed:\n{stdout}\n{stderr}");
    let usage = "usage: tcp_client [options] <host> <port>: port \"80a\" is not a number in 1-65535\n\
                 (try tcp_client --help)\n";
    let usage2 = "usage: tcp_server [options] [<host>] <port>: missing <port>\n(try tcp_server --help)\n";
    assert!(stderr.contains(&format!("{usage}{usage2}")), "stderr:\n{stderr}");
    assert!(stdout.contains(&args::help("tcp_server", Role::Server)), "stdout:\n{stdout}");
    assert!(!stderr.contains("usage: tcp_server [options] [<host>] <port>\n"), "help went to stderr");
}

#[test]
fn child_prints() {
    if std::env::var_os("SOCKFLOW_ARGS_CHILD").is_none() {
        return;
    }
    assert_eq!(c_parse(Role::Client, "./tcp_client", &["127.0.0.1", "80a"], false).0, code_value(Code::Usage));
    assert_eq!(c_parse(Role::Server, "tcp_server", &[], false).0, code_value(Code::Usage));
    assert_eq!(c_parse(Role::Server, "tcp_server", &["-h"], false).0, code_value(Code::Help));
    // Quiet prints nothing (checked by the parent: only the lines above).
    assert_eq!(c_parse(Role::Server, "quiet_server", &["x"], true).0, code_value(Code::Usage));
}

#[test]
fn init_and_set_frame() {
    let mut a = junk_args();
    assert_eq!(sockflow_args_init(&mut a, role_flag(Role::Server), std::ptr::null(), 0), 0);
    let f = Fields {
        host: "0.0.0.0".into(),
        port: 0,
        family: Family::Any,
        frame: Frame::Line { max: DEFAULT_MAX },
        // No quit word: that default is sockflow_args_parse's alone.
        quit: "".into(),
        timeout_ms: 0,
        max_per_ip: None,
        workers: None,
    };
    check_c_fields("init server", &a, Role::Server, "sockflow", &f);
    assert_eq!(sockflow_args_init(&mut a, role_flag(Role::Client), c"::1".as_ptr(), 9000), 0);
    check_c_fields("init client", &a, Role::Client, "sockflow", &Fields { host: "::1".into(), port: 9000, ..f.clone() });

    for (role, host, port, rc, msg) in [
        (Role::Client, None, 80, Code::Inval, "host is NULL"),
        (Role::Client, Some(c""), 80, Code::Addr, "host is empty or too long"),
        (Role::Client, Some(c"::1"), 0, Code::Addr, "port 0 is not in 1-65535"),
        (Role::Server, Some(c"::1"), -1, Code::Addr, "port -1 is not in 0-65535"),
        (Role::Server, Some(c"::1"), 65536, Code::Addr, "port 65536 is not in 0-65535"),
    ] {
        let mut a = junk_args();
        let h = host.map_or(std::ptr::null(), CStr::as_ptr);
        assert_eq!(sockflow_args_init(&mut a, role_flag(role), h, port), code_value(rc), "{host:?} {port}");
        assert_eq!(last_error(), msg);
        assert_eq!(a.port, -7, "written on failure");
    }
    assert_eq!(sockflow_args_init(&mut a, 0, c"::1".as_ptr(), 80), code_value(Code::Inval));

    for (spec, frame) in [
        (c"line", Frame::Line { max: DEFAULT_MAX }),
        (c"raw:512", Frame::Raw { max: 512 }),
        (c"fixed:32", Frame::Fixed(32)),
        (c"len32", Frame::Len32 { max: DEFAULT_LEN32_MAX }),
        (c"line:1024", Frame::Line { max: 1024 }),
    ] {
        assert_eq!(sockflow_args_set_frame(&mut a, spec.as_ptr()), 0, "{spec:?}");
        assert_eq!((a.frame, a.frame_size), frame_c(frame), "{spec:?}");
    }
    let before = (a.frame, a.frame_size);
    assert_eq!(sockflow_args_set_frame(&mut a, c"fixed".as_ptr()), code_value(Code::Inval));
    assert_eq!(last_error(), "fixed needs a size, e.g. fixed:32");
    assert_eq!((a.frame, a.frame_size), before);
}

/// What `sockflow_args_parse` writes is what the flows accept: a server's
/// args listen, a client's args connect to it (with their frame).
#[test]
fn parsed_args_drive_the_primitives() {
    use sockflow::ffi::tcp::*;
    let (rc, sargs) = c_parse(Role::Server, "srv", &["-4", "127.0.0.1", "0"], true);
    assert_eq!(rc, 0);
    let mut l = std::ptr::null_mut();
    assert_eq!(sockflow_tcp_listen_args(&sargs, &mut l), 0, "{}", last_error());
    let port = sockflow_tcp_listener_port(l);
    assert!(port > 0);
    let port_s: &'static str = port.to_string().leak();
    let argv: &'static [&'static str] = vec!["--frame", "fixed:8", "--timeout", "2000", "127.0.0.1", port_s].leak();
    let (rc, cargs) = c_parse(Role::Client, "cli", argv, true);
    assert_eq!(rc, 0);
    let (mut c, mut s) = (std::ptr::null_mut(), std::ptr::null_mut());
    assert_eq!(sockflow_tcp_connect_args(&cargs, &mut c), 0, "{}", last_error());
    assert_eq!(sockflow_tcp_accept(l, 2000, &mut s, std::ptr::null_mut()), 0);
    assert_eq!(sockflow_tcp_send_msg(c, b"hi".as_ptr().cast(), 2), 0);
    // The client sends fixed:8 frames: 8 bytes on the wire.
    let mut buf = [0xffu8; 16];
    let mut got = 0;
    while got < 8 {
        let n = sockflow_tcp_recv(s, buf[got..].as_mut_ptr().cast(), 16 - got);
        assert!(n > 0, "{}", last_error());
        got += n as usize;
    }
    assert_eq!(&buf[..8], b"hi\0\0\0\0\0\0");
    sockflow_tcp_close(c);
    sockflow_tcp_close(s);
    sockflow_tcp_listener_close(l);
}
