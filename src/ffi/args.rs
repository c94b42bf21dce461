//! `sockflow_args`: the tutorials' command lines, parsed once, used by every flow.

use super::cenum::CEnum;
use super::error::fail;
use super::stdio::CFile;
use super::{copy_field, limit_arg, read_field, Zero, SOCKFLOW_FOREVER};
use crate::args::{self, Args, Role};
use crate::error::{Code, Error};
use crate::frame::Frame;
use crate::net::Family;
use std::ffi::{c_char, c_int, c_uint, CStr};
use std::io::Write;

/// Size of `sockflow_args.host` (a host of at most 255 bytes and its NUL).
pub const SOCKFLOW_HOST_MAX: usize = 256;
/// Size of `sockflow_args.quit` (a word of at most 63 bytes and its NUL).
pub const SOCKFLOW_QUIT_MAX: usize = 64;
/// Size of `sockflow_args.prog`.
pub const SOCKFLOW_PROG_MAX: usize = 64;
/// Size of the `sockflow_args.tls_*` paths (a path of at most 1023 bytes
/// and its NUL).
pub const SOCKFLOW_TLS_PATH_MAX: usize = 1024;
/// Flag for `sockflow_args_parse`: print nothing on error or `--help`.
pub const SOCKFLOW_ARGS_QUIET: c_int = 0x100;
/// Flag for `sockflow_args_parse`: without `--frame`, the frame is
/// `SOCKFLOW_FRAME_RAW` (bytes passed on as they come) instead of
/// `SOCKFLOW_FRAME_LINE`. The echo servers use it: their echo is byte-exact
/// whatever the client sends (no newline needed, `\r\n` kept).
pub const SOCKFLOW_ARGS_RAW: c_int = 0x200;

/// Which command-line form a program takes.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum sockflow_role {
    /// `./server [<host>] <port>`: host defaults to 0.0.0.0 (`::` with -6);
    /// port 0 means "any free port".
    Server = 1,
    /// `./client <host> <port>`.
    Client = 2,
}
c_enum!(sockflow_role, "sockflow_role": Server, Client);

/// Which address family a host name may resolve to (`-4`, `-6`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum sockflow_family {
    /// IPv4 or IPv6, in the resolver's order.
    Any = 0,
    /// IPv4 only (`-4`).
    V4 = 4,
    /// IPv6 only (`-6`).
    V6 = 6,
}
c_enum!(sockflow_family, "sockflow_family": Any, V4, V6);

/// How messages are delimited on a TCP stream (`--frame`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum sockflow_frame {
    /// `\n`-terminated lines; a trailing `\r` is stripped. `frame_size` is the
    /// longest line (default 65536).
    Line = 0,
    /// Whatever one read returns; `frame_size` is the largest read.
    Raw = 1,
    /// `frame_size`-byte frames holding a NUL-padded string (the tutorials'
    /// `send(buf, sizeof buf)` with `char buf[32]`: use 32).
    Fixed = 2,
    /// 4-byte big-endian length, then the bytes; `frame_size` is the longest
    /// (default 4 MiB).
    Len32 = 3,
}
c_enum!(sockflow_frame, "sockflow_frame": Line, Raw, Fixed, Len32);

/// A parsed command line. Fill it with `sockflow_args_parse` (or
/// `sockflow_args_init`); the fields are plain data the program may read and
/// change before passing it to a flow, which checks them again.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct sockflow_args {
    /// `SOCKFLOW_ROLE_SERVER` or `SOCKFLOW_ROLE_CLIENT`.
    pub role: c_int,
    /// Host name or address, NUL-terminated (brackets of `[::1]` removed).
    pub host: [c_char; SOCKFLOW_HOST_MAX],
    /// Port, 0-65535 (0 only for a server: any free port).
    pub port: c_int,
    /// A `sockflow_family` value (`-4`, `-6`; default `SOCKFLOW_FAMILY_ANY`).
    pub family: c_int,
    /// A `sockflow_frame` value (`--frame`; default `SOCKFLOW_FRAME_LINE`).
    pub frame: c_int,
    /// N of `fixed:N`, or the longest message for the other frames.
    pub frame_size: c_uint,
    /// A message equal to this ends a session (`--quit`; default "quit" from
    /// `sockflow_args_parse`, none from `sockflow_args_init`; empty = none).
    /// On a TCP server it closes the connection (reason QUIT) without
    /// reaching `on_message`; it has no effect on UDP servers.
    pub quit: [c_char; SOCKFLOW_QUIT_MAX],
    /// `--timeout` in milliseconds (`SOCKFLOW_FOREVER` when not given): a client's connect/reply
    /// timeout, a server's idle timeout (TCP connections, UDP peers with
    /// `udp_peers`).
    pub timeout_ms: c_int,
    /// The program's name (basename of argv[0]) for messages.
    pub prog: [c_char; SOCKFLOW_PROG_MAX],
    /// `--max-per-ip` (servers): most connections at once from one address;
    /// 0 = not given (the server's default, 256).
    pub max_per_ip: c_int,
    /// `--workers` (servers): event-loop threads, 1-256; 0 = not given
    /// (the server's default, 1). See `sockflow_server_config.workers`.
    pub workers: c_int,
    /// `--stats` (servers): non-zero logs the server's counters (see
    /// `sockflow_server_stats`) when it stops.
    pub stats: c_int,
    /// `--mode OCTAL` (servers on a "unix:PATH" host): the socket file's
    /// permissions, e.g. 0660; 0 = not given (as the umask leaves them).
    pub mode: c_int,
    /// `--tls` (clients): non-zero connects with TLS, verifying the server
    /// against the system roots (or `tls_ca`) and `host`, which is also
    /// sent as SNI. Any client `tls_*` path turns TLS on too.
    pub tls: c_int,
    /// `--tls-ca` (clients): a PEM file of the CA to trust instead of the
    /// system roots; empty = the system roots.
    pub tls_ca: [c_char; SOCKFLOW_TLS_PATH_MAX],
    /// `--tls-cert`: a PEM certificate chain, the server's own (a non-empty
    /// one makes a TCP server TLS-only) or a client's certificate.
    pub tls_cert: [c_char; SOCKFLOW_TLS_PATH_MAX],
    /// `--tls-key`: the PEM private key of `tls_cert`.
    pub tls_key: [c_char; SOCKFLOW_TLS_PATH_MAX],
    /// `--tls-client-ca` (servers): a PEM CA file; clients must present a
    /// certificate it signed. Empty = no client certificates asked.
    pub tls_client_ca: [c_char; SOCKFLOW_TLS_PATH_MAX],
}

fn role_of(r: c_int) -> crate::Result<Role> {
    Ok(match sockflow_role::arg(r & 0xff, "role")? {
        sockflow_role::Server => Role::Server,
        sockflow_role::Client => Role::Client,
    })
}

impl sockflow_args {
    /// The C struct for parsed arguments.
    pub(crate) fn from_core(a: &Args) -> sockflow_args {
        let mut c = sockflow_args {
            role: match a.role {
                Role::Server => sockflow_role::Server as c_int,
                Role::Client => sockflow_role::Client as c_int,
            },
            host: [0; SOCKFLOW_HOST_MAX],
            port: a.port as c_int,
            family: match a.family {
                Family::Any => sockflow_family::Any,
                Family::V4 => sockflow_family::V4,
                Family::V6 => sockflow_family::V6,
            } as c_int,
            frame: 0,
            frame_size: 0,
            quit: [0; SOCKFLOW_QUIT_MAX],
            timeout_ms: if a.timeout_ms == 0 { SOCKFLOW_FOREVER } else { a.timeout_ms as c_int },
            prog: [0; SOCKFLOW_PROG_MAX],
            max_per_ip: a.max_per_ip.map_or(0, |n| n as c_int),
            workers: a.workers.map_or(0, |n| n as c_int),
            stats: c_int::from(a.stats),
            mode: a.mode.map_or(0, |m| m as c_int),
            tls: c_int::from(a.tls.enabled),
            tls_ca: [0; SOCKFLOW_TLS_PATH_MAX],
            tls_cert: [0; SOCKFLOW_TLS_PATH_MAX],
            tls_key: [0; SOCKFLOW_TLS_PATH_MAX],
            tls_client_ca: [0; SOCKFLOW_TLS_PATH_MAX],
        };
        let (kind, size) = match a.frame {
            Frame::Line { max } => (sockflow_frame::Line, max),
            Frame::Raw { max } => (sockflow_frame::Raw, max),
            Frame::Fixed(n) => (sockflow_frame::Fixed, n),
            Frame::Len32 { max } => (sockflow_frame::Len32, max),
        };
        c.frame = kind as c_int;
        c.frame_size = size as c_uint;
        copy_field(&a.host, &mut c.host);
        copy_field(&a.quit, &mut c.quit);
        copy_field(&a.prog, &mut c.prog);
        copy_field(&a.tls.ca, &mut c.tls_ca);
        copy_field(&a.tls.cert, &mut c.tls_cert);
        copy_field(&a.tls.key, &mut c.tls_key);
        copy_field(&a.tls.client_ca, &mut c.tls_client_ca);
        c
    }

    /// Checks every field (C may have changed them) and converts.
    pub(crate) fn to_core(self) -> crate::Result<Args> {
        let a = self.fields()?;
        a.tls.check(a.side()).map_err(|e| Error::inval(format!("args.tls: {}", e.msg)))?;
        Ok(a)
    }

    /// [`to_core`](sockflow_args::to_core) but for the TLS files, which
    /// are not read here: for a caller that builds (and keeps) their
    /// configuration itself.
    fn fields(self) -> crate::Result<Args> {
        let role = role_of(self.role)?;
        let prog = read_field(&self.prog, "args.prog")?;
        let mut a = Args::new(role, &prog);
        a.host = read_field(&self.host, "args.host")?;
        if a.host.is_empty() {
            return Err(Error::new(Code::Addr, "args.host is empty"));
        }
        // A unix: host has no port (0).
        let lo = if role == Role::Server || a.unix().is_some() { 0 } else { 1 };
        if !(lo..=65535).contains(&self.port) {
            return Err(Error::new(Code::Addr, format!("args.port {} is not in {lo}-65535", self.port)));
        }
        a.port = self.port as u16;
        a.family = match sockflow_family::arg(self.family, "args.family")? {
            sockflow_family::Any => Family::Any,
            sockflow_family::V4 => Family::V4,
            sockflow_family::V6 => Family::V6,
        };
        let size = self.frame_size as usize;
        let spec = match sockflow_frame::arg(self.frame, "args.frame")? {
            sockflow_frame::Line => "line",
            sockflow_frame::Raw => "raw",
            sockflow_frame::Fixed => "fixed",
            sockflow_frame::Len32 => "len32",
        };
        // frame_size 0 (a zeroed struct) means the kind's default.
        let spec = if size == 0 { spec.to_string() } else { format!("{spec}:{size}") };
        a.frame = Frame::parse(&spec).map_err(|m| Error::inval(format!("args.frame_size: {m}")))?;
        a.quit = read_field(&self.quit, "args.quit")?;
        let timeout = limit_arg(self.timeout_ms, "args.timeout_ms", Zero::Invalid)?;
        a.timeout_ms = timeout.map_or(0, |t| t.as_millis() as u32);
        a.max_per_ip = match self.max_per_ip {
            0 => None,
            n if n > 0 && n as u32 <= args::MAX_PER_IP_MAX => Some(n as u32),
            n => return Err(Error::inval(format!("args.max_per_ip {n} is not in 0-{}", args::MAX_PER_IP_MAX))),
        };
        a.stats = self.stats != 0;
        a.mode = match self.mode {
            0 => None,
            m if (1..=0o7777).contains(&m) => Some(m as u32),
            m => return Err(Error::inval(format!("args.mode {m:#o} is not 0 or an octal mode in 1-7777"))),
        };
        a.workers = match self.workers {
            0 => None,
            n if n > 0 && n as u32 <= args::WORKERS_MAX => Some(n as u32),
            n => return Err(Error::inval(format!("args.workers {n} is not in 0-{}", args::WORKERS_MAX))),
        };
        a.tls = crate::tls::TlsArgs {
            enabled: self.tls != 0,
            ca: read_field(&self.tls_ca, "args.tls_ca")?,
            cert: read_field(&self.tls_cert, "args.tls_cert")?,
            key: read_field(&self.tls_key, "args.tls_key")?,
            client_ca: read_field(&self.tls_client_ca, "args.tls_client_ca")?,
        };
        a.tls.check_options(a.side()).map_err(|e| Error::inval(format!("args.tls: {}", e.msg)))?;
        Ok(a)
    }
}

/// Checks and converts a `const sockflow_args *` from C.
pub(crate) fn core_args(p: *const sockflow_args) -> crate::Result<Args> {
    // SAFETY: NULL or a valid struct, per contract.
    match unsafe { p.as_ref() } {
        Some(a) => a.to_core(),
        None => Err(Error::inval("args is NULL")),
    }
}

/// [`core_args`] for an outgoing connection (`sockflow_server_connect_args`,
/// `sockflow_conn_connect_args`): a client's arguments, their TLS files
/// left for the loop's cache of configurations to read once.
pub(crate) fn connect_args(p: *const sockflow_args) -> crate::Result<Args> {
    // SAFETY: NULL or a valid struct, per contract.
    let a = unsafe { p.as_ref() }.ok_or_else(|| Error::inval("args is NULL"))?.fields()?;
    if a.role != Role::Client {
        return Err(Error::inval("args.role: a connect takes a client's arguments (SOCKFLOW_ROLE_CLIENT)"));
    }
    Ok(a)
}

/// Parses a program's command line into `*args`.
///
/// `flags` is `SOCKFLOW_ROLE_SERVER` (`[<host>] <port>`, port 0 = any free
/// port) or `SOCKFLOW_ROLE_CLIENT` (`<host> <port>`), optionally OR-ed with
/// `SOCKFLOW_ARGS_QUIET` and `SOCKFLOW_ARGS_RAW` (raw frames unless
/// `--frame` says otherwise). Options may come before or after the positional
/// arguments: `--frame line|raw|fixed:N|len32`, `--quit WORD`,
/// `--timeout MS`, `-4`, `-6`, `-h`/`--help`, and `--` to end options;
/// servers also take `--max-per-ip N` and `--workers N`. TLS: clients take
/// `--tls`, `--tls-ca FILE`, `--tls-cert FILE --tls-key FILE`; servers
/// `--tls-cert FILE --tls-key FILE` and `--tls-client-ca FILE` (the files
/// are loaded here, so a bad one is `SOCKFLOW_EUSAGE` naming it).
///
/// Returns 0 on success. On a bad command line returns `SOCKFLOW_EUSAGE`
/// (or `SOCKFLOW_ERESOLVE`/`SOCKFLOW_EADDR` for a host that does not
/// resolve) and, unless quiet, prints e.g.
/// `usage: tcp_client [options] <host> <port>: port "80a" is not a number in 1-65535`
/// to stderr. `-h` prints the help to stdout and returns `SOCKFLOW_EHELP`.
/// `sockflow_exit_code(rc)` turns any of these into an exit status.
/// `*args` is written only on success. `argv` is only read during the call.
#[no_mangle]
pub extern "C" fn sockflow_args_parse(args: *mut sockflow_args, argc: c_int, argv: *const *mut c_char, flags: c_int) -> c_int {
    ffi_boundary! {
        check_out!(args, "args");
        let role = try_ok!(role_of(flags));
        let quiet = flags & SOCKFLOW_ARGS_QUIET != 0;
        let frame = if flags & SOCKFLOW_ARGS_RAW != 0 { Frame::Raw { max: crate::frame::DEFAULT_MAX } } else { Frame::default() };
        if argc < 0 || (argc > 0 && argv.is_null()) {
            return fail(Error::inval("argc/argv: argv is NULL or argc is negative"));
        }
        let mut strs: Vec<&str> = Vec::with_capacity(argc as usize);
        for i in 0..argc as usize {
            // SAFETY: argv holds argc pointers, per contract.
            let p = unsafe { *argv.add(i) };
            if p.is_null() {
                return fail(Error::inval(format!("argv[{i}] is NULL")));
            }
            // SAFETY: non-NULL, NUL-terminated by contract.
            match unsafe { CStr::from_ptr(p) }.to_str() {
                Ok(s) => strs.push(s),
                Err(_) => return fail(Error::new(Code::Usage, format!("argument {i} is not valid UTF-8"))),
            }
        }
        let prog = args::prog_name(strs.first().copied());
        let rest = if strs.is_empty() { &strs[..] } else { &strs[1..] };
        match args::parse_with(role, &prog, rest, frame) {
            Ok(a) => {
                // SAFETY: checked non-NULL above.
                unsafe { *args = sockflow_args::from_core(&a) };
                0
            }
            Err(e) => {
                if !quiet {
                    if e.code == Code::Help {
                        let mut out = CFile::or_stdout(std::ptr::null_mut());
                        let _ = out.write_all(e.msg.as_bytes()).and_then(|_| out.flush());
                    } else {
                        let line = args::usage_line(&prog, role, &e.msg);
                        let _ = writeln!(CFile::stderr(), "{line}\n(try {prog} --help)");
                    }
                }
                fail(e)
            }
        }
    }
}

/// Fills `*args` for a program that does not parse argv: `role` as for
/// `sockflow_args_parse`, `host` (NULL = the server wildcard 0.0.0.0) and
/// `port`; other fields get their defaults (line frames, no timeout) and
/// no quit word: unlike `sockflow_args_parse`, whose default quit word
/// "quit" is a command-line convenience, a program built on this call sees
/// every message, "quit" included (set `args.quit` to have one). Nothing is
/// resolved yet. Returns 0 or `SOCKFLOW_EINVAL`/`SOCKFLOW_EADDR`.
#[no_mangle]
pub extern "C" fn sockflow_args_init(args: *mut sockflow_args, role: c_int, host: *const c_char, port: c_int) -> c_int {
    ffi_boundary! {
        check_out!(args, "args");
        let role = try_ok!(role_of(role));
        // No quit word: a custom server must not silently close a client
        // that types "quit" (the command line's default is for the examples).
        let mut a = Args { quit: String::new(), ..Args::new(role, "sockflow") };
        a.host = if host.is_null() && role == Role::Server { "0.0.0.0".into() } else { try_ok!(super::str_arg(host, "host")).to_string() };
        if a.host.is_empty() || a.host.len() > args::HOST_MAX {
            return fail(Error::new(Code::Addr, "host is empty or too long"));
        }
        let lo = if role == Role::Server { 0 } else { 1 };
        if !(lo..=65535).contains(&port) {
            return fail(Error::new(Code::Addr, format!("port {port} is not in {lo}-65535")));
        }
        a.port = port as u16;
        // SAFETY: checked non-NULL above.
        unsafe { *args = sockflow_args::from_core(&a) };
        0
    }
}

/// Sets `args->frame`/`frame_size` from a spec as `--frame` takes it:
/// "line", "raw", "fixed:32", "len32", "line:1024". Returns 0 or `SOCKFLOW_EINVAL`.
#[no_mangle]
pub extern "C" fn sockflow_args_set_frame(args: *mut sockflow_args, spec: *const c_char) -> c_int {
    ffi_boundary! {
        let a = try_mut!(args, "args");
        let spec = try_ok!(super::str_arg(spec, "spec"));
        let f = try_ok!(Frame::parse(spec).map_err(Error::inval));
        let tmp = sockflow_args::from_core(&Args { frame: f, ..Args::new(Role::Client, "") });
        a.frame = tmp.frame;
        a.frame_size = tmp.frame_size;
        0
    }
}

/// Takes a program's own numeric option out of the command line, before
/// `sockflow_args_parse` (which refuses options it does not know): finds
/// `NAME VALUE` or `NAME=VALUE` (e.g. `name` "--interval") among the
/// arguments before any `--`, removes it from `argv` (shifting the rest
/// down, `argv[*argc]` stays NULL) and lowers `*argc`, and writes its value
/// to `*out` — or `default_value` when it is not there. Given twice, the
/// last wins. The value is a whole number in 0-INT_MAX.
///
/// Returns 0, or `SOCKFLOW_EUSAGE` (after printing `PROG: --interval "x" is
/// not a number in 0-2147483647` to stderr; `sockflow_exit_code` makes it
/// 2) for a bad or missing value; `*out` and `argv` are then unchanged.
/// `SOCKFLOW_EINVAL` for NULL arguments. `argv` is modified in place (only
/// its pointers, never the strings); call it on one thread.
#[no_mangle]
pub extern "C" fn sockflow_args_take_int(
    argc: *mut c_int,
    argv: *mut *mut c_char,
    name: *const c_char,
    default_value: c_int,
    out: *mut c_int,
) -> c_int {
    ffi_boundary! {
        let n = *try_mut!(argc, "argc");
        let name = try_ok!(super::str_arg(name, "name"));
        check_out!(out, "out");
        if n < 0 || (n > 0 && argv.is_null()) {
            return fail(Error::inval("argc/argv: argv is NULL or argc is negative"));
        }
        let mut ptrs: Vec<*mut c_char> = Vec::with_capacity(n as usize);
        let mut strs: Vec<&str> = Vec::with_capacity(n as usize);
        for i in 0..n as usize {
            // SAFETY: argv holds argc pointers, per contract.
            let p = unsafe { *argv.add(i) };
            if p.is_null() {
                return fail(Error::inval(format!("argv[{i}] is NULL")));
            }
            // SAFETY: non-NULL, NUL-terminated by contract. Not UTF-8:
            // never our option, left for sockflow_args_parse to judge.
            strs.push(unsafe { CStr::from_ptr(p) }.to_str().unwrap_or(""));
            ptrs.push(p);
        }
        let before = strs.clone();
        let v = match args::take_int_option(&mut strs, name) {
            Ok(v) => v,
            Err(e) => {
                let _ = writeln!(CFile::stderr(), "{}: {}", args::prog_name(before.first().copied()), e.msg);
                return fail(e);
            }
        };
        // Keep the pointers of the arguments left, in order (taking only
        // removes, so a left-to-right match recovers them).
        let mut kept = Vec::with_capacity(strs.len());
        let mut j = 0;
        for (i, s) in before.iter().enumerate() {
            if j < strs.len() && std::ptr::eq(*s, strs[j]) {
                kept.push(ptrs[i]);
                j += 1;
            }
        }
        for (i, p) in kept.iter().enumerate() {
            // SAFETY: i < argc, within argv.
            unsafe { *argv.add(i) = *p };
        }
        if kept.len() < n as usize {
            // SAFETY: kept.len() < argc: within argv (argv[argc] is C's NULL).
            unsafe { *argv.add(kept.len()) = std::ptr::null_mut() };
        }
        // SAFETY: checked non-NULL above.
        unsafe {
            *argc = kept.len() as c_int;
            *out = v.unwrap_or(default_value);
        }
        0
    }
}

#[cfg(test)]
mod tls_path_tests {
    /// cbindgen needs the literal; the core's limit must fit it with the NUL.
    #[test]
    fn tls_path_field_holds_the_longest_path() {
        assert_eq!(super::SOCKFLOW_TLS_PATH_MAX, crate::tls::PATH_MAX + 1);
    }
}
