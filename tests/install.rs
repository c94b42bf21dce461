//! `make install`: the installed tree (soname, symlinks, header, archive,
//! `sockflow.pc`) and programs built from it with pkg-config, linked
//! dynamically and statically. Runs `cargo build --release` through make, in
//! this test run's target directory (slow the first time only).

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The target directory of this test run (`CARGO_TARGET_TMPDIR` is `<it>/tmp`).
fn target_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).parent().expect("CARGO_TARGET_TMPDIR has a parent").to_path_buf()
}

/// `make install PREFIX=prefix [DESTDIR=destdir]` in the crate root.
fn make_install(prefix: &str, destdir: Option<&Path>) {
    let mut cmd = Command::new("make");
    cmd.current_dir(root()).arg("install").arg(format!("PREFIX={prefix}"));
    cmd.arg(format!("CARGO_TARGET_DIR={}", target_dir().display()));
    if let Some(d) = destdir {
        cmd.arg(format!("DESTDIR={}", d.display()));
    }
    // Not a sub-make of whatever make may have started `cargo test`.
    for v in ["MAKEFLAGS", "MFLAGS", "MAKELEVEL"] {
        cmd.env_remove(v);
    }
    // A release build from scratch takes a few minutes on 2 cores.
    run_ok(cmd, secs(1200));
}

/// A fresh prefix with `make install` done once per test process.
fn installed() -> PathBuf {
    static PREFIX: OnceLock<PathBuf> = OnceLock::new();
    PREFIX
        .get_or_init(|| {
            let p = tmp_dir("install").join("prefix");
            let _ = std::fs::remove_dir_all(&p);
            make_install(p.to_str().unwrap(), None);
            p
        })
        .clone()
}

fn version() -> &'static str {
    env!("CARGO_PKG_VERSION")
}

/// `readelf -d` output for `file`.
fn dynamic_section(file: &Path) -> String {
    let mut cmd = Command::new("readelf");
    cmd.arg("-d").arg(file);
    run_ok(cmd, default_timeout())
}

#[test]
fn installs_library_links_header_and_pc() {
    let p = installed();
    let lib = p.join("lib");
    let real = lib.join(format!("libsockflow.so.{}", version()));
    assert!(real.is_file(), "{} missing", real.display());
    let d = dynamic_section(&real);
    assert!(d.contains(&format!("Library soname: [{}]", soname())), "soname of {} is not {}:\n{d}", real.display(), soname());

    let link = |name: &str| std::fs::read_link(lib.join(name)).unwrap_or_else(|e| panic!("{name} is not a symlink: {e}"));
    assert_eq!(link(&soname()), PathBuf::from(format!("libsockflow.so.{}", version())));
    assert_eq!(link("libsockflow.so"), PathBuf::from(soname()));
    assert!(lib.join("libsockflow.so").metadata().is_ok(), "libsockflow.so dangles");

    assert!(lib.join("libsockflow.a").is_file(), "libsockflow.a missing");
    let header = std::fs::read_to_string(p.join("include/sockflow.h")).expect("include/sockflow.h installed");
    assert_eq!(header, std::fs::read_to_string(include_dir().join("sockflow.h")).unwrap(), "installed header differs");

    let pc = std::fs::read_to_string(lib.join("pkgconfig/sockflow.pc")).expect("lib/pkgconfig/sockflow.pc installed");
    assert!(pc.contains(&format!("prefix={}\n", p.display())), "{pc}");
    assert!(pc.contains(&format!("Version: {}\n", version())), "{pc}");
    assert!(pc.contains("Libs: -L${libdir} -lsockflow\n"), "{pc}");
    assert!(pc.contains("Cflags: -I${includedir}\n"), "{pc}");
    let private = pc.lines().find_map(|l| l.strip_prefix("Libs.private: ")).unwrap_or_else(|| panic!("no Libs.private\n{pc}"));
    assert_eq!(private.split_whitespace().collect::<Vec<_>>(), native_static_libs(), "{pc}");
}

/// Prints the header's and the library's versions and where
/// `sockflow_version` was loaded from (the executable itself when static).
const PROGRAM: &str = r#"#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

#include <sockflow.h>

int main(void)
{
    Dl_info info;
    const char *where = "?";
    if (dladdr((void *)sockflow_version, &info) != 0 && info.dli_fname != NULL)
        where = info.dli_fname;
    printf("%s %s %s\n", SOCKFLOW_VERSION, sockflow_version(), where);
    return strcmp(SOCKFLOW_VERSION, sockflow_version()) != 0;
}
"#;

/// `pkg-config ARGS sockflow` against the installed prefix.
fn pkg_config(prefix: &Path, args: &[&str]) -> Vec<String> {
    let mut cmd = Command::new("pkg-config");
    cmd.env("PKG_CONFIG_PATH", prefix.join("lib/pkgconfig")).env_remove("PKG_CONFIG_LIBDIR").args(args).arg("sockflow");
    run_ok(cmd, default_timeout()).split_whitespace().map(String::from).collect()
}

/// Builds PROGRAM with gcc and `flags`, runs it with `LD_LIBRARY_PATH` set
/// to `ld_path` only, and returns (its output line's fields, the binary).
fn build_and_run(name: &str, flags: &[String], ld_path: Option<&Path>) -> (Vec<String>, PathBuf) {
    let dir = tmp_dir("install").join("programs");
    std::fs::create_dir_all(&dir).unwrap();
    let src = dir.join("version.c");
    std::fs::write(&src, PROGRAM).unwrap();
    let bin = dir.join(name);
    let mut cc = Command::new("gcc");
    cc.args(["-std=c99", "-Wall", "-Wextra", "-Werror"]).arg(&src).arg("-o").arg(&bin).args(flags).arg("-ldl");
    run_ok(cc, secs(60));
    let mut run = Command::new(&bin);
    match ld_path {
        Some(p) => run.env("LD_LIBRARY_PATH", p),
        None => run.env_remove("LD_LIBRARY_PATH"),
    };
    let out = run_ok(run, default_timeout());
    (out.split_whitespace().map(String::from).collect(), bin)
}

#[test]
fn pkg_config_dynamic_link() {
    let p = installed();
    let flags = pkg_config(&p, &["--cflags", "--libs"]);
    assert_eq!(flags, vec![format!("-I{}/include", p.display()), format!("-L{}/lib", p.display()), "-lsockflow".into()]);
    let (out, bin) = build_and_run("version_dynamic", &flags, Some(&p.join("lib")));
    assert_eq!(out[..2], [version(), version()], "{out:?}");
    // Loaded by soname from the installed lib directory.
    assert_eq!(Path::new(&out[2]), p.join("lib").join(soname()), "{out:?}");
    let d = dynamic_section(&bin);
    assert!(d.contains(&format!("Shared library: [{}]", soname())), "{d}");
}

#[test]
fn pkg_config_static_link() {
    let p = installed();
    let flags = pkg_config(&p, &["--static", "--cflags", "--libs"]);
    assert!(flags.contains(&"-lsockflow".to_string()), "{flags:?}");
    // -lsockflow from the archive; the system libraries stay dynamic.
    let flags: Vec<String> = flags
        .into_iter()
        .flat_map(|f| if f == "-lsockflow" { vec!["-Wl,-Bstatic".into(), f, "-Wl,-Bdynamic".into()] } else { vec![f] })
        .collect();
    let (out, bin) = build_and_run("version_static", &flags, None);
    assert_eq!(out[..2], [version(), version()], "{out:?}");
    assert_eq!(Path::new(&out[2]).file_name(), bin.file_name(), "sockflow_version should live in the executable: {out:?}");
    let d = dynamic_section(&bin);
    assert!(!d.contains("libsockflow"), "statically linked program still needs libsockflow:\n{d}");
}

#[test]
fn destdir_stages_and_uninstall_removes() {
    let stage = tmp_dir("install").join("stage");
    let _ = std::fs::remove_dir_all(&stage);
    make_install("/opt/sockflow", Some(&stage));
    let root_dir = stage.join("opt/sockflow");
    for f in ["lib/libsockflow.a", "lib/libsockflow.so", "include/sockflow.h", "lib/pkgconfig/sockflow.pc"] {
        assert!(root_dir.join(f).exists(), "{f} not staged under {}", root_dir.display());
    }
    let pc = std::fs::read_to_string(root_dir.join("lib/pkgconfig/sockflow.pc")).unwrap();
    assert!(pc.starts_with("prefix=/opt/sockflow\n"), "DESTDIR must not leak into the .pc:\n{pc}");
    // Relocatable: pkg-config can find the staged tree from the .pc's place.
    let cflags = pkg_config(&root_dir, &["--define-prefix", "--cflags"]);
    assert_eq!(cflags, vec![format!("-I{}/include", root_dir.display())]);

    let mut cmd = Command::new("make");
    cmd.current_dir(root()).args(["uninstall", "PREFIX=/opt/sockflow"]).arg(format!("DESTDIR={}", stage.display()));
    for v in ["MAKEFLAGS", "MFLAGS", "MAKELEVEL"] {
        cmd.env_remove(v);
    }
    run_ok(cmd, secs(60));
    let left: Vec<_> = walk(&root_dir).into_iter().filter(|p| !p.is_dir()).collect();
    assert!(left.is_empty(), "make uninstall left {left:?}");
}

/// Every path under `dir` (bounded depth).
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![(dir.to_path_buf(), 0)];
    while let Some((d, depth)) = todo.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else { continue };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() && depth < 8 {
                todo.push((p.clone(), depth + 1));
            }
            out.push(p);
        }
    }
    out
}
