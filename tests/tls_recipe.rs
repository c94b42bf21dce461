//! README's TLS recipe, run as written: its `openssl req` command makes the
//! certificate, its server and client lines run (port 5000 replaced by the
//! one the server got). Found by a user following it: the recipe made a
//! certificate marked as a CA, which rustls refuses as a server's own
//! (`CaUsedAsEndEntity`) while OpenSSL accepts it. And such a certificate,
//! made without the recipe's `CA:FALSE`, fails with an error that says what
//! to do. Skipped with a note without openssl.

mod common;
#[path = "flows/kit.rs"]
mod kit;

use common::*;
use kit::*;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The shell lines of README's "### TLS" code block, continuation lines
/// joined.
fn recipe() -> Vec<String> {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let section = &readme[readme.find("\n### TLS\n").expect("README has a TLS section")..];
    let block = section.split("```sh\n").nth(1).and_then(|b| b.split("```").next()).expect("a sh block in the TLS section");
    let mut lines = Vec::new();
    let mut cur = String::new();
    for l in block.lines() {
        match l.strip_suffix('\\') {
            Some(part) => cur.push_str(part),
            None => lines.push(std::mem::take(&mut cur) + l),
        }
    }
    lines
}

/// A fresh directory for this test's files.
fn dir(name: &str) -> PathBuf {
    let d = tmp_dir("tls-recipe").join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Runs a shell line in `dir` (bounded), checking it succeeds.
fn sh(dir: &Path, line: &str) {
    let mut cmd = Command::new("sh");
    cmd.current_dir(dir).args(["-c", line]);
    run_ok(cmd, default_timeout());
}

/// The example and its arguments from a `./build/NAME ARGS...` line, with
/// file arguments made absolute in `dir` and port 5000 replaced by `port`.
fn example_line(line: &str, dir: &Path, port: &str) -> (PathBuf, Vec<String>) {
    let mut words = line.split_whitespace();
    let prog = words.next().unwrap().strip_prefix("./build/").unwrap_or_else(|| panic!("not an example line: {line}"));
    let args = words
        .take_while(|w| !w.starts_with('#'))
        .map(|w| match w {
            "5000" => port.to_string(),
            f if f.ends_with(".pem") => dir.join(f).to_string_lossy().into_owned(),
            w => w.to_string(),
        })
        .collect();
    (example(prog, Link::Static), args)
}

#[test]
fn readme_tls_recipe_works_as_written() {
    if which("openssl").is_none() {
        eprintln!("skipped: no openssl to run README's recipe");
        return;
    }
    let lines = recipe();
    assert_eq!(lines.len(), 3, "README's TLS recipe: certificate, server, client: {lines:?}");
    let d = dir("as-written");
    sh(&d, &lines[0]);
    let (bin, mut args) = example_line(&lines[1], &d, "0");
    args.retain(|a| a != "0");
    args.extend(["127.0.0.1".into(), "0".into()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (mut srv, port) = start(&bin, &args);
    let (bin, args) = example_line(&lines[2], &d, &port.to_string());
    assert!(args.iter().any(|a| a == "localhost"), "the client verifies the name localhost: {args:?}");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut c = spawn(bin, &args, Input::Bytes(b"over tls\nquit\n".to_vec()));
    exits_with(&mut c, 0);
    assert!(c.stdout_text().contains("over tls"), "{}", c.transcript());
    stop(&mut srv, libc::SIGTERM);
}

#[test]
fn a_ca_certificate_as_the_servers_own_fails_with_a_hint() {
    if which("openssl").is_none() {
        eprintln!("skipped: no openssl");
        return;
    }
    let d = dir("ca-as-leaf");
    // The recipe without its CA:FALSE: openssl's default marks it a CA.
    let line = recipe()[0].replace("-addext basicConstraints=critical,CA:FALSE", "");
    assert!(!line.contains("CA:FALSE"), "{line}");
    sh(&d, &line);
    let (cert, key) = (d.join("cert.pem"), d.join("key.pem"));
    let (mut srv, port) = server("echo_server", Link::Static, &["--tls-cert", cert.to_str().unwrap(), "--tls-key", key.to_str().unwrap()]);
    let mut c = spawn(
        example("tcp_client", Link::Static),
        &["--tls-ca", cert.to_str().unwrap(), "localhost", &port.to_string()],
        Input::Bytes(b"x\n".to_vec()),
    );
    let st = c.wait_exit(default_timeout());
    assert!(!st.success(), "{}", c.transcript());
    let err = c.stderr_text();
    assert!(err.contains("CaUsedAsEndEntity"), "{}", c.transcript());
    assert!(err.contains("-addext basicConstraints=critical,CA:FALSE"), "the error should say how to make it:\n{}", c.transcript());
    stop(&mut srv, libc::SIGTERM);
}
