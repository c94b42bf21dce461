//! Command-line parsing for the tutorials' programs: `./server <port>`,
//! `./server <host> <port>` and `./client <host> <port>`, plus the flags every
//! example shares. Never `atoi`: every bad input gets its own message.

use crate::error::{Code, Error, Result};
use crate::frame::Frame;
use crate::net::{self, Family};
use crate::tls::{Side, TlsArgs};

/// Which positional form the program takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// `[<host>] <port>`; port 0 means "any free port".
    Server,
    /// `<host> <port>`.
    Client,
}

/// Longest host accepted (a DNS name is at most 253 bytes).
pub const HOST_MAX: usize = 255;
/// Longest quit word accepted.
pub const QUIT_MAX: usize = 63;
/// Longest timeout accepted: one day.
pub const TIMEOUT_MAX_MS: u32 = 86_400_000;
/// Largest `--max-per-ip` accepted.
pub const MAX_PER_IP_MAX: u32 = 1_000_000;
/// Largest `--workers` accepted.
pub const WORKERS_MAX: u32 = 256;
/// The default quit word.
pub const DEFAULT_QUIT: &str = "quit";

/// The parsed command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Args {
    pub role: Role,
    /// Host as given (brackets removed), or the wildcard for a server.
    pub host: String,
    pub port: u16,
    pub family: Family,
    pub frame: Frame,
    /// A message equal to this ends a session (empty = no quit word).
    pub quit: String,
    /// Milliseconds; 0 = no timeout. A client's connect/reply timeout, a
    /// server's idle timeout (TCP connections, UDP peers).
    pub timeout_ms: u32,
    /// `--max-per-ip` (servers): most connections from one address; None =
    /// the server's default.
    pub max_per_ip: Option<u32>,
    /// `--workers` (servers): event-loop threads; None = the server's
    /// default (1).
    pub workers: Option<u32>,
    /// `--stats` (servers): log the server's counters when it stops.
    pub stats: bool,
    /// `--mode OCTAL` (servers on a `unix:` path): the socket file's
    /// permissions; None = as the umask leaves them.
    pub mode: Option<u32>,
    /// `--tls`, `--tls-ca`, `--tls-cert`, `--tls-key`, `--tls-client-ca`:
    /// all empty = plaintext (see [`crate::tls`]).
    pub tls: TlsArgs,
    /// Program name for messages (basename of argv[0]).
    pub prog: String,
}

impl Args {
    /// Defaults for `role` with no arguments given yet.
    pub fn new(role: Role, prog: &str) -> Args {
        Args {
            role,
            host: String::new(),
            port: 0,
            family: Family::Any,
            frame: Frame::default(),
            quit: DEFAULT_QUIT.into(),
            timeout_ms: 0,
            max_per_ip: None,
            workers: None,
            stats: false,
            mode: None,
            tls: TlsArgs::default(),
            prog: prog.into(),
        }
    }

    /// Every address the host resolves to (the wildcard of the family for a
    /// server given no host).
    pub fn addrs(&self) -> Result<Vec<std::net::SocketAddr>> {
        net::resolve(&self.host, self.port, self.family)
    }

    /// The local socket when the host is `unix:PATH` or `unix:@NAME`.
    pub fn unix(&self) -> Option<Result<crate::unix::Place>> {
        crate::unix::Place::parse(&self.host)
    }

    /// Which end of a TLS connection this program is.
    pub fn side(&self) -> Side {
        match self.role {
            Role::Server => Side::Server,
            Role::Client => Side::Client,
        }
    }

    /// The timeout as a duration, if any.
    pub fn timeout(&self) -> Option<std::time::Duration> {
        (self.timeout_ms > 0).then(|| std::time::Duration::from_millis(self.timeout_ms.into()))
    }
}

/// `<host> <port>` or `[<host>] <port>`.
pub fn synopsis(role: Role) -> &'static str {
    match role {
        Role::Server => "[options] [<host>] <port>",
        Role::Client => "[options] <host> <port>",
    }
}

/// The full `--help` text.
pub fn help(prog: &str, role: Role) -> String {
    help_with(prog, role, Frame::default())
}

/// The `--help` text of a program whose frame defaults to `frame` (`raw`
/// for the echo servers, `line` for the rest).
pub fn help_with(prog: &str, role: Role, frame: Frame) -> String {
    let port0 = if role == Role::Server { " (0 = any free port)" } else { "" };
    let frames = match frame {
        Frame::Raw { .. } => "raw (default: the bytes as they come), line (at most 64 KiB)",
        _ => "line (default, at most 64 KiB), raw",
    };
    let per_role = match role {
        Role::Server => {
            "--timeout MS     close a connection (TCP, or a UDP peer) after MS ms without traffic (0 = never, the default)\n  \
             --max-per-ip N   at most N connections at once from one address (IPv6: one /64; default 256)\n  \
             --workers N      serve on N event-loop threads, each accepting its share of the clients (default 1)\n  \
             --stats          print the server's counters (connections, messages, bytes, closes) when it stops\n  \
             --mode OCTAL     permissions of a unix:PATH socket file (e.g. 660; default: as the umask leaves them)\n  \
             --tls-cert FILE  serve TLS with this certificate chain (PEM; with --tls-key FILE, its private key)\n  \
             --tls-client-ca FILE  require client certificates signed by this CA (PEM)\n  "
        }
        Role::Client => {
            "--timeout MS     connect/reply timeout in milliseconds (0 = none)\n  \
             --tls            connect with TLS, verifying the server against the system roots and <host>\n  \
             --tls-ca FILE    with TLS, trust this CA (PEM) instead of the system roots\n  \
             --tls-cert FILE  with TLS, present this client certificate (PEM; with --tls-key FILE)\n  "
        }
    };
    format!(
        "usage: {prog} {}\n\
         \n  <host>           IPv4, IPv6 (::1 or [::1]) or a name{}\n  <port>           1-65535{port0}\n  \
         unix:PATH        a Unix domain socket file instead of host and port (unix:@NAME: Linux abstract name)\n\
         \noptions:\n  --frame F        {frames}, fixed:N, len32 (at most 4 MiB); line:MAX, len32:MAX set the longest message\n  \
         --quit WORD      a message equal to WORD ends the session (default \"quit\"; \"\" for none)\n  \
         {per_role}-4, -6           use IPv4 or IPv6 only\n  -h, --help       show this help\n",
        synopsis(role),
        if role == Role::Server { " (default 0.0.0.0, or :: with -6)" } else { "" },
    )
}

/// `/usr/bin/tcp_server` -> `tcp_server`.
pub fn prog_name(argv0: Option<&str>) -> String {
    let a = argv0.unwrap_or("").rsplit('/').next().unwrap_or("");
    // At most 63 bytes (sockflow_args.prog holds 64 with the NUL), cut
    // between characters so the C field stays valid UTF-8.
    let mut end = a.len().min(63);
    while !a.is_char_boundary(end) {
        end -= 1;
    }
    if a.is_empty() {
        "sockflow".into()
    } else {
        a[..end].into()
    }
}

/// Parses a port: decimal digits only, 1-65535 (0 too for a server).
pub fn parse_port(s: &str, role: Role) -> Result<u16> {
    let lo = if role == Role::Server { 0 } else { 1 };
    // Digits only (no sign, no spaces); leading zeros are fine, and
    // overflow is caught by the parse.
    let ok = !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    match s.parse::<u32>() {
        Ok(n) if ok && n >= lo && n <= 65535 => Ok(n as u16),
        _ => Err(Error::new(Code::Usage, format!("port \"{s}\" is not a number in {lo}-65535"))),
    }
}

fn parse_timeout(s: &str) -> Result<u32> {
    let ok = !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    match s.parse::<u32>() {
        Ok(n) if ok && n <= TIMEOUT_MAX_MS => Ok(n),
        _ => Err(Error::new(Code::Usage, format!("timeout \"{s}\" is not a number of milliseconds in 0-{TIMEOUT_MAX_MS}"))),
    }
}

fn parse_max_per_ip(s: &str) -> Result<u32> {
    let ok = !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    match s.parse::<u32>() {
        Ok(n) if ok && (1..=MAX_PER_IP_MAX).contains(&n) => Ok(n),
        _ => Err(Error::new(Code::Usage, format!("--max-per-ip \"{s}\" is not a number in 1-{MAX_PER_IP_MAX}"))),
    }
}

fn parse_mode(s: &str) -> Result<u32> {
    let ok = !s.is_empty() && s.len() <= 4 && s.bytes().all(|b| (b'0'..=b'7').contains(&b));
    match u32::from_str_radix(s, 8) {
        Ok(n) if ok && n > 0 => Ok(n),
        _ => Err(Error::new(Code::Usage, format!("--mode \"{s}\" is not an octal mode in 1-7777"))),
    }
}

fn parse_workers(s: &str) -> Result<u32> {
    let ok = !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    match s.parse::<u32>() {
        Ok(n) if ok && (1..=WORKERS_MAX).contains(&n) => Ok(n),
        _ => Err(Error::new(Code::Usage, format!("--workers \"{s}\" is not a number in 1-{WORKERS_MAX}"))),
    }
}

fn check_host(h: &str, family: Family) -> Result<String> {
    if h.is_empty() {
        return Err(Error::new(Code::Usage, "host is empty"));
    }
    if h.len() > HOST_MAX {
        return Err(Error::new(Code::Usage, format!("host is longer than {HOST_MAX} bytes")));
    }
    if h.bytes().all(|b| b.is_ascii_digit()) {
        // inet_aton would take "8080" as 0.0.31.144; nobody means that.
        return Err(Error::new(Code::Usage, format!("host \"{h}\" is a number, not an address (a port goes last)")));
    }
    // Resolve now so a typo is reported before anything starts; the flows
    // resolve again when they connect (names can change).
    net::resolve(h, 1, family).map_err(|e| Error::new(Code::Usage, e.msg).with_code_of(e.code))?;
    Ok(net::strip_brackets(h).to_string())
}

impl Error {
    /// Keeps the resolver's code (`Resolve`/`Addr`) rather than `Usage`.
    fn with_code_of(mut self, code: Code) -> Error {
        self.code = code;
        self
    }
}

/// Parses `argv[1..]` for `role`. The error's message is the problem alone
/// (`port "80a" is not a number in 1-65535`); [`usage_line`] puts it in the
/// usage line. `-h`/`--help` gives `Code::Help`.
pub fn parse(role: Role, prog: &str, argv: &[&str]) -> Result<Args> {
    parse_with(role, prog, argv, Frame::default())
}

/// As [`parse`], for a program whose frame defaults to `frame` when no
/// `--frame` is given (the echo servers: `raw`, a byte-exact echo).
pub fn parse_with(role: Role, prog: &str, argv: &[&str], frame: Frame) -> Result<Args> {
    let mut a = Args { frame, ..Args::new(role, prog) };
    let mut pos: Vec<&str> = Vec::new();
    let mut v4 = false;
    let mut v6 = false;
    let mut it = argv.iter().copied();
    let mut flags_done = false;
    while let Some(arg) = it.next() {
        // `-1` is a (bad) port, not an option; `-4`/`-6` are options. Bytes,
        // not `&arg[1..]`: the first character may be multi-byte (`é`).
        let is_negative_number =
            arg.len() > 1 && arg.starts_with('-') && arg.bytes().skip(1).all(|b| b.is_ascii_digit()) && arg != "-4" && arg != "-6";
        if flags_done || !arg.starts_with('-') || arg == "-" || is_negative_number {
            pos.push(arg);
            continue;
        }
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n, Some(v)),
            _ => (arg, None),
        };
        let mut value = |what: &str| -> Result<&str> {
            match inline {
                Some(v) => Ok(v),
                None => it.next().ok_or_else(|| Error::new(Code::Usage, format!("{name} needs {what}"))),
            }
        };
        if inline.is_some() && matches!(name, "--" | "-h" | "--help" | "--tls") {
            return Err(Error::new(Code::Usage, format!("{name} takes no value")));
        }
        match name {
            "--" => flags_done = true,
            "-h" | "--help" => return Err(Error::new(Code::Help, help_with(prog, role, frame))),
            "-4" => v4 = true,
            "-6" => v6 = true,
            "--frame" => a.frame = Frame::parse(value("a frame (line, raw, fixed:N, len32)")?).map_err(|m| Error::new(Code::Usage, m))?,
            "--quit" => {
                let w = value("a word")?;
                if w.len() > QUIT_MAX || w.contains(['\n', '\r', '\0']) {
                    return Err(Error::new(Code::Usage, format!("quit word must be one line of at most {QUIT_MAX} bytes")));
                }
                a.quit = w.into();
            }
            "--timeout" => a.timeout_ms = parse_timeout(value("milliseconds")?)?,
            "--max-per-ip" if role == Role::Server => a.max_per_ip = Some(parse_max_per_ip(value("a number of connections")?)?),
            "--max-per-ip" => return Err(Error::new(Code::Usage, "--max-per-ip is a server option")),
            "--workers" if role == Role::Server => a.workers = Some(parse_workers(value("a number of threads")?)?),
            "--workers" => return Err(Error::new(Code::Usage, "--workers is a server option")),
            "--stats" if role == Role::Server => a.stats = true,
            "--stats" => return Err(Error::new(Code::Usage, "--stats is a server option")),
            "--mode" if role == Role::Server => a.mode = Some(parse_mode(value("an octal mode")?)?),
            "--mode" => return Err(Error::new(Code::Usage, "--mode is a server option")),
            "--tls" => a.tls.enabled = true,
            "--tls-ca" => a.tls.ca = value("a PEM file")?.into(),
            "--tls-cert" => a.tls.cert = value("a PEM file")?.into(),
            "--tls-key" => a.tls.key = value("a PEM file")?.into(),
            "--tls-client-ca" => a.tls.client_ca = value("a PEM file")?.into(),
            _ => return Err(Error::new(Code::Usage, format!("unknown option \"{arg}\""))),
        }
    }
    if v4 && v6 {
        return Err(Error::new(Code::Usage, "-4 and -6 cannot be used together"));
    }
    a.family = if v4 {
        Family::V4
    } else if v6 {
        Family::V6
    } else {
        Family::Any
    };
    // A local address stands for host and port both.
    if let [host] = pos.as_slice() {
        if let Some(place) = crate::unix::Place::parse(host) {
            place.map_err(|e| Error::new(Code::Usage, e.msg))?;
            a.host = host.to_string();
            return Ok(a);
        }
    }
    match pos.as_slice() {
        [host, port, ..] if host.starts_with(crate::unix::PREFIX) => {
            return Err(Error::new(Code::Usage, format!("unexpected argument \"{port}\" (a unix: address has no port)")));
        }
        _ if a.mode.is_some() => return Err(Error::new(Code::Usage, "--mode is for a unix:PATH socket file")),
        _ => {}
    }
    let (host, port) = match (role, pos.as_slice()) {
        (Role::Server, [port]) => (None, *port),
        (_, [host, port]) => (Some(*host), *port),
        (_, []) => return Err(Error::new(Code::Usage, "missing <port>")),
        (Role::Client, [_]) => return Err(Error::new(Code::Usage, "missing <port>")),
        (_, [_, _, extra, ..]) => return Err(Error::new(Code::Usage, format!("unexpected argument \"{extra}\""))),
    };
    a.port = parse_port(port, role)?;
    a.tls.check(a.side())?;
    a.host = match host {
        Some(h) => check_host(h, a.family)?,
        None if a.family == Family::V6 => "::".into(),
        None => "0.0.0.0".into(),
    };
    Ok(a)
}

/// `usage: tcp_client [options] <host> <port>: port "80a" is not a number in 1-65535`.
pub fn usage_line(prog: &str, role: Role, problem: &str) -> String {
    format!("usage: {prog} {}: {problem}", synopsis(role))
}

/// Takes a program's own option `name` (`--interval 500` or
/// `--interval=500`) out of `argv[1..]` so the common parser never sees
/// it, and returns its value (the last one when given twice). Options end
/// at `--`. A `name` without its value is an error.
pub fn take_option(argv: &mut Vec<&str>, name: &str) -> Result<Option<String>> {
    let mut found = None;
    let mut i = 1;
    while i < argv.len() {
        let arg = argv[i];
        if arg == "--" {
            break;
        }
        if arg == name {
            let Some(v) = argv.get(i + 1) else { return Err(Error::new(Code::Usage, format!("{name} needs a value"))) };
            found = Some(v.to_string());
            argv.drain(i..i + 2);
        } else if let Some(v) = arg.strip_prefix(name).and_then(|r| r.strip_prefix('=')) {
            found = Some(v.to_string());
            argv.remove(i);
        } else {
            i += 1;
        }
    }
    Ok(found)
}

/// [`take_option`] for a whole number in 0-`i32::MAX` (milliseconds, counts).
pub fn take_int_option(argv: &mut Vec<&str>, name: &str) -> Result<Option<i32>> {
    let Some(v) = take_option(argv, name)? else { return Ok(None) };
    let ok = !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit());
    match v.parse::<i32>() {
        Ok(n) if ok => Ok(Some(n)),
        _ => Err(Error::new(Code::Usage, format!("{name} \"{v}\" is not a number in 0-{}", i32::MAX))),
    }
}

#[cfg(test)]
mod take_tests {
    use super::*;

    #[test]
    fn takes_both_spellings_and_leaves_the_rest() {
        let mut v = vec!["p", "--interval", "500", "127.0.0.1", "--frame=raw", "0", "--interval=7", "--", "--interval", "9"];
        assert_eq!(take_int_option(&mut v, "--interval").unwrap(), Some(7));
        assert_eq!(v, ["p", "127.0.0.1", "--frame=raw", "0", "--", "--interval", "9"]);
        assert_eq!(take_int_option(&mut vec!["p", "0"], "--interval").unwrap(), None);
        assert_eq!(take_int_option(&mut vec!["p", "--interval"], "--interval").unwrap_err().code, Code::Usage);
        assert_eq!(take_int_option(&mut vec!["p", "--interval", "-5"], "--interval").unwrap_err().code, Code::Usage);
        assert_eq!(take_int_option(&mut vec!["p", "--intervals=5"], "--interval").unwrap(), None);
    }
}

#[cfg(test)]
mod unix_tests {
    use super::*;

    #[test]
    fn a_unix_address_takes_the_place_of_host_and_port() {
        for role in [Role::Server, Role::Client] {
            let a = parse(role, "p", &["unix:/tmp/a.sock"]).unwrap();
            assert_eq!((a.host.as_str(), a.port), ("unix:/tmp/a.sock", 0));
            assert_eq!(a.unix().unwrap().unwrap(), crate::unix::Place::Path("/tmp/a.sock".into()));
            assert_eq!(parse(role, "p", &["unix:@app"]).unwrap().host, "unix:@app");
            let e = parse(role, "p", &["unix:/tmp/a.sock", "80"]).unwrap_err();
            assert!(e.msg.contains("has no port"), "{}", e.msg);
            assert_eq!(parse(role, "p", &["unix:"]).unwrap_err().code, Code::Usage);
        }
        let a = parse(Role::Server, "p", &["--mode", "660", "unix:a.sock"]).unwrap();
        assert_eq!(a.mode, Some(0o660));
        for bad in [&["--mode", "8", "unix:a"][..], &["--mode", "0", "unix:a"], &["--mode", "660", "0"], &["--mode", "12345", "unix:a"]] {
            assert_eq!(parse(Role::Server, "p", bad).unwrap_err().code, Code::Usage, "{bad:?}");
        }
        assert!(parse(Role::Client, "p", &["--mode", "660", "unix:a"]).unwrap_err().msg.contains("server option"));
    }
}
