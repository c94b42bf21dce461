//! The command-line parser (`sockflow::args::parse`): never panics; every
//! error has a message and a command-line code; what it accepts makes sense
//! and parses again to the same thing when written back as a command line.
//!
//! Input: `role` then the arguments, separated by NUL bytes (invalid UTF-8
//! is replaced, as a C caller's argv would be by `sockflow_args_parse`).
//! Arguments that would be looked up in DNS are replaced by `localhost`
//! first (see [`no_dns`]): a fuzzer must not query the network, and name
//! resolution is the system's code, not ours.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sockflow::args::{self, Args, Role};
use sockflow::frame::Frame;
use sockflow::net::Family;
use sockflow::Code;
use std::net::IpAddr;

/// True when the parser would hand `s`, as a host, to the resolver: not
/// empty, not too long, not all digits, not an IP literal (brackets
/// allowed), no blank or control character.
fn would_resolve(s: &str) -> bool {
    let bare = s.strip_prefix('[').and_then(|t| t.strip_suffix(']')).unwrap_or(s);
    !s.is_empty()
        && s.len() <= args::HOST_MAX
        && !s.bytes().all(|b| b.is_ascii_digit())
        && bare.parse::<IpAddr>().is_err()
        && !bare.contains(|c: char| c.is_whitespace() || c.is_control())
}

/// Replaces every argument the parser could resolve with `localhost`,
/// except the values of the options that take one (they are never hosts).
fn no_dns(argv: &mut [String]) {
    let mut flags_done = false;
    let mut value_next = false;
    for a in argv.iter_mut() {
        if value_next {
            value_next = false;
            continue;
        }
        if !flags_done && a == "--" {
            flags_done = true;
            continue;
        }
        if !flags_done && matches!(a.as_str(), "--frame" | "--quit" | "--timeout" | "--max-per-ip") {
            value_next = true;
            continue;
        }
        // The parser's rule for what is not an option: `-1` is a (bad)
        // positional, `-4`/`-6` are options.
        let negative_number = a.len() > 1 && a.starts_with('-') && a[1..].bytes().all(|b| b.is_ascii_digit()) && a != "-4" && a != "-6";
        if would_resolve(a) && (flags_done || !a.starts_with('-') || a == "-" || negative_number) {
            *a = "localhost".into();
        }
    }
}

/// An accepted command line written back as one (every field explicit).
fn rebuild(a: &Args) -> Vec<String> {
    let mut v = vec![format!("--frame={}", a.frame), format!("--quit={}", a.quit), format!("--timeout={}", a.timeout_ms)];
    if let Some(n) = a.max_per_ip {
        v.push(format!("--max-per-ip={n}"));
    }
    if let Some(n) = a.workers {
        v.push(format!("--workers={n}"));
    }
    if a.stats {
        v.push("--stats".into());
    }
    if let Some(m) = a.mode {
        v.push(format!("--mode={m:o}"));
    }
    if a.tls.enabled {
        v.push("--tls".into());
    }
    for (flag, path) in [("--tls-ca", &a.tls.ca), ("--tls-cert", &a.tls.cert), ("--tls-key", &a.tls.key), ("--tls-client-ca", &a.tls.client_ca)] {
        if !path.is_empty() {
            v.push(format!("{flag}={path}"));
        }
    }
    match a.family {
        Family::V4 => v.push("-4".into()),
        Family::V6 => v.push("-6".into()),
        Family::Any => {}
    }
    v.push("--".into());
    v.push(a.host.clone());
    if !a.host.starts_with("unix:") {
        // A unix: address stands for host and port.
        v.push(a.port.to_string());
    }
    v
}

/// What must hold of anything the parser accepts.
fn check_accepted(a: &Args, role: Role, prog: &str, argv: &[&str]) {
    assert_eq!(a.role, role);
    assert_eq!(a.prog, prog);
    assert!(!a.host.is_empty() && a.host.len() <= args::HOST_MAX, "host {:?}", a.host);
    assert!(!a.host.starts_with('['), "brackets kept: {:?}", a.host);
    if a.host.starts_with("unix:") {
        assert_eq!(a.port, 0, "a unix: address has no port");
    } else {
        if role == Role::Client {
            assert_ne!(a.port, 0, "a client accepted port 0");
        }
        assert!(argv.iter().any(|s| s.parse::<u32>() == Ok(u32::from(a.port))), "port {} is none of {argv:?}", a.port);
    }
    assert!(a.mode.is_none() || (role == Role::Server && a.host.starts_with("unix:")), "--mode {:?} for {:?}", a.mode, a.host);
    assert!(a.quit.len() <= args::QUIT_MAX && !a.quit.contains(['\n', '\r', '\0']), "quit {:?}", a.quit);
    assert!(a.timeout_ms <= args::TIMEOUT_MAX_MS);
    if let Some(n) = a.max_per_ip {
        assert!(role == Role::Server && (1..=args::MAX_PER_IP_MAX).contains(&n), "--max-per-ip {n} for a {role:?}");
    }
    assert!(!a.stats || role == Role::Server, "--stats for a {role:?}");
    if let Some(n) = a.workers {
        assert!(role == Role::Server && (1..=args::WORKERS_MAX).contains(&n), "--workers {n} for a {role:?}");
    }
    assert_eq!(Frame::parse(&a.frame.to_string()), Ok(a.frame), "frame {} does not round-trip", a.frame);
    assert!(a.frame.max_len() >= 1, "frame {} carries nothing", a.frame);
    let again: Vec<String> = rebuild(a);
    let again: Vec<&str> = again.iter().map(String::as_str).collect();
    match args::parse(role, prog, &again) {
        Ok(b) => assert_eq!(&b, a, "{argv:?} -> {again:?} parses differently"),
        Err(e) => panic!("{argv:?} was accepted, but its rebuilt form {again:?} is refused: {}", e.msg),
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&r, rest)) = data.split_first() else { return };
    let role = if r & 1 == 0 { Role::Server } else { Role::Client };
    let prog = args::prog_name(Some("/usr/bin/fuzz_prog"));
    let mut argv: Vec<String> =
        if rest.is_empty() { Vec::new() } else { rest.split(|&b| b == 0).map(|s| String::from_utf8_lossy(s).into_owned()).collect() };
    if argv.len() > 16 {
        return; // argv length adds nothing past a few
    }
    no_dns(&mut argv);
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    match args::parse(role, &prog, &argv) {
        Ok(a) => check_accepted(&a, role, &prog, &argv),
        Err(e) => {
            assert!(!e.msg.trim().is_empty(), "{argv:?}: error {:?} without a message", e.code);
            match e.code {
                Code::Help => assert!(e.msg.starts_with("usage: "), "help text {:?}", e.msg),
                // A host that is not an address of the family asked, or does
                // not resolve, keeps the resolver's code (documented).
                Code::Usage | Code::Addr | Code::Resolve => {
                    let line = args::usage_line(&prog, role, &e.msg);
                    assert!(line.ends_with(&e.msg) && line.starts_with("usage: "));
                }
                other => panic!("{argv:?}: unexpected code {other:?}: {}", e.msg),
            }
        }
    }
});
