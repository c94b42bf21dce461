//! Two of README's guarantees that no other test file shows on its own:
//!
//! * every exported function is a panic boundary: its body is wrapped in
//!   `ffi_boundary!` (a source check over `src/ffi/`, so a new export cannot
//!   forget it; what the macro does with a panic is the unit test
//!   `ffi::error::tests::panics_become_codes`);
//! * `unsafe` lives only where `src/lib.rs` allows it: `ffi/` and `sys.rs`
//!   (the crate denies it, and a source scan catches any other module that
//!   lifts the ban or uses it);
//! * the process's signal dispositions are untouched unless a server is
//!   configured to handle SIGINT/SIGTERM: serving, resets and sends to a
//!   vanished peer change no `sigaction`.
//!
//! One test per concern; this file runs as its own process, so no other
//! test changes the dispositions it reads.

use sockflow::ffi::args::*;
use sockflow::ffi::handler::*;
use sockflow::ffi::server::*;
use std::ffi::c_int;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::ptr::null_mut;
use std::time::Duration;

#[test]
fn every_export_is_a_panic_boundary() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/ffi");
    let mut exports = 0;
    let mut missing = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let src = std::fs::read_to_string(&path).unwrap();
        let mut rest = src.as_str();
        while let Some(at) = rest.find("pub extern \"C\" fn ") {
            rest = &rest[at + "pub extern \"C\" fn ".len()..];
            let name: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
            // The body starts at the first `{` after the signature's `)`.
            let sig_end = rest.find(')').unwrap();
            let body = rest[sig_end..].find('{').map(|i| &rest[sig_end + i + 1..]).unwrap();
            exports += 1;
            if !body.trim_start().starts_with("ffi_boundary!") {
                missing.push(format!("{}: {name}", path.file_name().unwrap().to_string_lossy()));
            }
        }
    }
    assert!(exports >= 70, "found only {exports} exports: is the scan broken?");
    assert!(missing.is_empty(), "exports without ffi_boundary!: {missing:?}");
}

/// The only places `unsafe` may appear: the C boundary and the core's
/// OS-call module. The crate root's `#![deny(unsafe_code)]` stops `unsafe`
/// anywhere else at compile time, but a module could lift the ban with its
/// own `allow`; this scan catches that.
const UNSAFE_ALLOWED: [&str; 2] = ["src/ffi/", "src/sys.rs"];

fn rust_sources(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn unsafe_only_in_ffi_and_sys() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let lib = std::fs::read_to_string(root.join("src/lib.rs")).unwrap();
    assert!(lib.contains("#![deny(unsafe_code)]"), "src/lib.rs must deny unsafe_code");
    let mut files = Vec::new();
    rust_sources(&root.join("src"), &mut files);
    assert!(files.len() >= 30, "found only {} sources: is the scan broken?", files.len());
    let mut found = Vec::new();
    for path in files {
        let rel = path.strip_prefix(root).unwrap().to_string_lossy().into_owned();
        if UNSAFE_ALLOWED.iter().any(|a| rel.starts_with(a)) {
            continue;
        }
        let src = std::fs::read_to_string(&path).unwrap();
        for (n, line) in src.lines().enumerate() {
            let code = line.split("//").next().unwrap();
            // lib.rs itself names the lint to deny it and to allow the two modules.
            let allowed_here = rel == "src/lib.rs" && (code.contains("deny(unsafe_code)") || code.trim() == "#[allow(unsafe_code)]");
            if !allowed_here && code.contains("unsafe") {
                found.push(format!("{rel}:{}: {}", n + 1, line.trim()));
            }
        }
    }
    let allows = lib.matches("#[allow(unsafe_code)]").count();
    assert_eq!(allows, UNSAFE_ALLOWED.len(), "src/lib.rs allows unsafe_code on {allows} modules, expected ffi and sys only");
    assert!(lib.contains("#[allow(unsafe_code)]\nmod sys;") && lib.contains("#[allow(unsafe_code)]\npub mod ffi;"));
    assert!(found.is_empty(), "unsafe outside {UNSAFE_ALLOWED:?}: {found:#?}");
}

fn disposition(sig: c_int) -> (usize, c_int) {
    // SAFETY: sigaction with a NULL new action only reads the current one.
    unsafe {
        let mut old: libc::sigaction = std::mem::zeroed();
        assert_eq!(libc::sigaction(sig, std::ptr::null(), &mut old), 0);
        (old.sa_sigaction, old.sa_flags)
    }
}

fn dispositions() -> Vec<(usize, c_int)> {
    [libc::SIGINT, libc::SIGTERM, libc::SIGPIPE, libc::SIGHUP, libc::SIGCHLD].into_iter().map(disposition).collect()
}

struct Ptr(*mut sockflow_server);
// SAFETY: sockflow_server_run/stop/free are documented as callable from
// any thread.
unsafe impl Send for Ptr {}

#[test]
fn signal_dispositions_are_untouched_unless_asked() {
    let before = dispositions();

    // SAFETY: plain C structs, filled by their init functions.
    let mut args: sockflow_args = unsafe { std::mem::zeroed() };
    assert_eq!(sockflow_args_init(&mut args, sockflow_role::Server as c_int, c"127.0.0.1".as_ptr(), 0), 0);
    let mut cfg: sockflow_server_config = unsafe { std::mem::zeroed() };
    assert_eq!(sockflow_server_config_init(&mut cfg), 0);
    assert_eq!(cfg.handle_signals, 0, "the default must leave signals alone");
    cfg.quiet = 1;
    let mut srv = null_mut();
    assert_eq!(sockflow_tcp_server_new(&args, &cfg, sockflow_handler_echo(), null_mut(), &mut srv), 0);
    let port = sockflow_server_port(srv) as u16;
    let p = Ptr(srv);
    let run = std::thread::spawn(move || {
        let p = p;
        sockflow_server_run(p.0)
    });

    // Serve, then make the server write to peers that are gone: one reset,
    // one that closed without reading a large reply.
    let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    c.write_all(b"hello\n").unwrap();
    let mut got = [0u8; 6];
    c.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"hello\n");
    let big = vec![b'x'; 4 << 20];
    let mut gone = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let _ = gone.write_all(&big);
    drop(gone);
    let reset = TcpStream::connect(("127.0.0.1", port)).unwrap();
    // SAFETY: SO_LINGER 0 on our own socket, so its close is a reset.
    unsafe {
        let l = libc::linger { l_onoff: 1, l_linger: 0 };
        libc::setsockopt(
            std::os::fd::AsRawFd::as_raw_fd(&reset),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&l as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as u32,
        );
    }
    (&reset).write_all(b"bye\n").unwrap();
    drop(reset);
    c.write_all(b"still\n").unwrap();
    let mut got = [0u8; 6];
    c.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"still\n");

    assert_eq!(dispositions(), before, "a running server changed a signal disposition");
    let srv = Ptr(srv);
    assert_eq!(sockflow_server_stop(srv.0), 0);
    assert_eq!(run.join().unwrap(), 0);
    sockflow_server_close(srv.0);
    assert_eq!(dispositions(), before, "a server changed a signal disposition");
}
