//! The Python package (`python/`) under `make test`: runs its pytest suite
//! (`python3 -m pytest -q python/tests`) against the library this test run
//! built (`SOCKFLOW_LIB`) and the C examples built here (`SOCKFLOW_EXAMPLES`),
//! so the cross-language tests run both ways: Python handlers serving the C
//! clients, Python clients of the C servers.
//!
//! Skipped, with a note, when python3 or pytest is not installed (`.ci/run`
//! installs pytest).

mod common;

use common::*;
use std::process::Command;

/// The C examples the Python tests talk to.
const EXAMPLES: &[&str] = &[
    "tcp_client",
    "udp_client",
    "chat_client",
    "chat_server",
    "chat_room",
    "echo_server",
    "hello_server",
    "udp_echo_server",
    "udp_upper_server",
];

#[test]
fn python_package_tests() {
    let Some(python) = which("python3") else {
        eprintln!("note: python3 not found: the Python package's tests are skipped");
        return;
    };
    let probe = Command::new(&python).args(["-c", "import pytest"]).output().expect("run python3");
    if !probe.status.success() {
        eprintln!(
            "note: pytest is not installed for {}: the Python package's tests are skipped \
             (pip install pytest, or apt-get install python3-pytest)",
            python.display()
        );
        return;
    }

    // Every example built against this run's library, linked into one directory.
    let dir = tmp_dir(&format!("python-examples-{}", std::process::id()));
    for name in EXAMPLES {
        let bin = build_c(name, Link::Dynamic);
        let link = dir.join(name);
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(&bin, &link).unwrap_or_else(|e| panic!("symlink {}: {e}", link.display()));
    }

    let mut cmd = Command::new(&python);
    cmd.current_dir(root())
        .args(["-m", "pytest", "-q", "-p", "no:cacheprovider", "python/tests"])
        .env("SOCKFLOW_LIB", link_dir().join("libsockflow.so"))
        .env("SOCKFLOW_EXAMPLES", &dir)
        .env("SOCKFLOW_TEST_TIMEOUT_SCALE", timeout_scale().to_string())
        .env("PYTHONDONTWRITEBYTECODE", "1");
    let mut p = spawn_cmd(cmd, Input::Null);
    let status = p.wait_exit(secs(600));
    let out = p.stdout_text();
    println!("{out}");
    assert!(status.success(), "python3 -m pytest -q python/tests failed: {status}\n{}", p.transcript());
    // pytest's closing line, e.g. "150 passed in 9.1s": tests did run.
    let last = out.lines().rev().find(|l| l.contains(" passed")).unwrap_or("");
    assert!(!last.is_empty() && !last.contains("failed") && !last.contains("error"), "pytest ran no test:\n{out}");
    let _ = std::fs::remove_dir_all(&dir);
}
