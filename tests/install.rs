//! `make install`: the installed tree (soname, symlinks, header, archive,
//! `sockflow.pc`, `sockflow-static.pc`, the CMake package, man pages), what
//! it says or does about the dynamic linker, and programs built from it the
//! ways README's "Building and linking" says: pkg-config (shared with an
//! rpath, static, fully static) and CMake (both targets, version checks).
//! Runs `cargo build --release` through make, in this test run's target
//! directory (slow the first time only).

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

/// The target directory of this test run (`CARGO_TARGET_TMPDIR` is `<it>/tmp`).
fn target_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).parent().expect("CARGO_TARGET_TMPDIR has a parent").to_path_buf()
}

/// `make install PREFIX=prefix [DESTDIR=destdir]` in the crate root; its
/// output. One at a time: every install writes the same build/doc.
fn make_install(prefix: &str, destdir: Option<&Path>) -> String {
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
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
    run_ok(cmd, secs(1200))
}

/// A fresh prefix with `make install` done once per test process, and what
/// the install printed.
fn installed_with_output() -> &'static (PathBuf, String) {
    static PREFIX: OnceLock<(PathBuf, String)> = OnceLock::new();
    PREFIX.get_or_init(|| {
        let p = tmp_dir("install").join("prefix");
        let _ = std::fs::remove_dir_all(&p);
        let out = make_install(p.to_str().unwrap(), None);
        (p, out)
    })
}

fn installed() -> PathBuf {
    installed_with_output().0.clone()
}

/// The system libraries the static library needs, as the install writes
/// them: rustc's list without `-lgcc_s`, which the compiler driver adds
/// itself and which has no static version for `-static`.
fn static_system_libs() -> Vec<String> {
    native_static_libs().into_iter().filter(|l| l != "-lgcc_s").collect()
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
    assert_eq!(private.split_whitespace().collect::<Vec<_>>(), static_system_libs(), "{pc}");

    let pc = std::fs::read_to_string(lib.join("pkgconfig/sockflow-static.pc")).expect("lib/pkgconfig/sockflow-static.pc installed");
    let libs = pc.lines().find_map(|l| l.strip_prefix("Libs: ")).unwrap_or_else(|| panic!("no Libs\n{pc}"));
    let mut want = vec!["${libdir}/libsockflow.a".to_string()];
    want.extend(static_system_libs());
    assert_eq!(libs.split_whitespace().collect::<Vec<_>>(), want, "{pc}");

    for f in ["sockflowConfig.cmake", "sockflowConfigVersion.cmake"] {
        assert!(lib.join("cmake/sockflow").join(f).is_file(), "lib/cmake/sockflow/{f} missing");
    }
    // The C++ header goes beside the C one when the tree has it.
    let hpp = include_dir().join("sockflow.hpp");
    assert_eq!(p.join("include/sockflow.hpp").is_file(), hpp.is_file(), "include/sockflow.hpp installed iff it exists");
}

/// Section names of `file` (`readelf -S -W`; for an archive, of every
/// member, repeated).
fn sections(file: &Path) -> Vec<String> {
    let mut cmd = Command::new("readelf");
    cmd.args(["-S", "-W"]).arg(file);
    let out = run_ok(cmd, default_timeout());
    out.lines().filter_map(|l| l.split(']').nth(1)?.split_whitespace().next().map(String::from)).collect()
}

/// Installed libraries carry no debug info (issue 8: 6.7 MB .so and 28 MB
/// .a with it): the .so is stripped with its debug info in
/// lib/.debug/libsockflow.so.VERSION.debug, named by its .gnu_debuglink; the
/// archive keeps its symbol tables (profilers, linker messages) but neither
/// debug info nor the LLVM bitcode std's objects carry, and stays under
/// 16 MiB. The stripped libraries are the ones the other tests here link
/// and run. Sizes are printed for the closing note.
#[test]
fn installed_libraries_are_stripped_with_debug_info_kept_apart() {
    let lib = installed().join("lib");
    let so = lib.join(format!("libsockflow.so.{}", version()));
    let debug = lib.join(".debug").join(format!("libsockflow.so.{}.debug", version()));
    let a = lib.join("libsockflow.a");
    let so_sections = sections(&so);
    assert!(!so_sections.iter().any(|s| s.starts_with(".debug_")), "installed .so has debug sections: {so_sections:?}");
    assert!(so_sections.iter().any(|s| s == ".gnu_debuglink"), "installed .so names no debug file: {so_sections:?}");
    assert!(sections(&debug).iter().any(|s| s == ".debug_info"), "{} holds no .debug_info", debug.display());
    let mut cmd = Command::new("readelf");
    cmd.args(["--string-dump=.gnu_debuglink"]).arg(&so);
    let link = run_ok(cmd, default_timeout());
    assert!(link.contains(&format!("libsockflow.so.{}.debug", version())), "{link}");
    let a_sections = sections(&a);
    assert!(!a_sections.iter().any(|s| s.starts_with(".debug_") || s == ".llvmbc"), "installed .a keeps debug info or bitcode");
    assert!(a_sections.iter().any(|s| s == ".symtab"), "installed .a lost its symbol tables");
    let size = |p: &Path| p.metadata().unwrap().len();
    eprintln!("installed sizes: libsockflow.so {} B, libsockflow.a {} B, .debug {} B", size(&so), size(&a), size(&debug));
    assert!(size(&a) < 16 << 20, "installed libsockflow.a is {} B (target: under 16 MiB)", size(&a));
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

/// `pkg-config ARGS` against the installed prefix; the package is
/// `sockflow` unless the last argument names one (`sockflow-static`).
fn pkg_config(prefix: &Path, args: &[&str]) -> Vec<String> {
    let mut cmd = Command::new("pkg-config");
    cmd.env("PKG_CONFIG_PATH", prefix.join("lib/pkgconfig")).env_remove("PKG_CONFIG_LIBDIR").args(args);
    if args.last().map_or(true, |a| a.starts_with('-')) {
        cmd.arg("sockflow");
    }
    run_ok(cmd, default_timeout()).split_whitespace().map(String::from).collect()
}

/// Builds PROGRAM with gcc and `flags`, runs it with `LD_LIBRARY_PATH` set
/// to `ld_path` only, and returns (its output line's fields, the binary).
fn build_and_run(name: &str, flags: &[String], ld_path: Option<&Path>) -> (Vec<String>, PathBuf) {
    let dir = tmp_dir("install").join("programs");
    std::fs::create_dir_all(&dir).unwrap();
    let src = dir.join(format!("{name}.c"));
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

/// README: a prefix the dynamic linker does not search (this one) needs
/// `-Wl,-rpath,$(pkg-config --variable=libdir sockflow)`; the first run then
/// works without LD_LIBRARY_PATH.
#[test]
fn pkg_config_dynamic_link_with_rpath() {
    let p = installed();
    let mut flags = pkg_config(&p, &["--cflags", "--libs"]);
    assert_eq!(flags, vec![format!("-I{}/include", p.display()), format!("-L{}/lib", p.display()), "-lsockflow".into()]);
    let libdir = pkg_config(&p, &["--variable=libdir"]);
    assert_eq!(libdir, vec![p.join("lib").display().to_string()]);
    flags.push(format!("-Wl,-rpath,{}", libdir[0]));
    let (out, bin) = build_and_run("version_dynamic", &flags, None);
    assert_eq!(out[..2], [version(), version()], "{out:?}");
    // Loaded by soname from the installed lib directory.
    assert_eq!(Path::new(&out[2]), p.join("lib").join(soname()), "{out:?}");
    let d = dynamic_section(&bin);
    assert!(d.contains(&format!("Shared library: [{}]", soname())), "{d}");
}

/// With LD_LIBRARY_PATH instead of an rpath (README's other way).
#[test]
fn pkg_config_dynamic_link_with_ld_library_path() {
    let p = installed();
    let flags = pkg_config(&p, &["--cflags", "--libs"]);
    let (out, _) = build_and_run("version_dynamic_ld_path", &flags, Some(&p.join("lib")));
    assert_eq!(Path::new(&out[2]), p.join("lib").join(soname()), "{out:?}");
}

/// `make install` into a directory the dynamic linker does not search says
/// so, and how to link (the rpath the test above uses) or run.
#[test]
fn install_to_an_unsearched_prefix_says_how_to_run() {
    let (p, out) = installed_with_output();
    let lib = p.join("lib");
    assert!(out.contains(&format!("note: {} is not searched by the dynamic linker", lib.display())), "{out}");
    assert!(out.contains(&format!("-Wl,-rpath,{}", lib.display())), "{out}");
    assert!(out.contains(&format!("LD_LIBRARY_PATH={}", lib.display())), "{out}");
}

/// `scripts/after-install.sh` (the end of `make install`) with a stand-in
/// ldconfig: runs it for a directory ld.so searches when root and not
/// staging, says to run it when not root, says how to link otherwise, and
/// does nothing under DESTDIR.
#[test]
fn after_install_runs_ldconfig_only_for_a_searched_libdir() {
    let dir = tmp_dir("install").join("ldconfig");
    let _ = std::fs::remove_dir_all(&dir);
    let searched = dir.join("searched");
    let other = dir.join("other");
    std::fs::create_dir_all(&searched).unwrap();
    std::fs::create_dir_all(&other).unwrap();
    let log = dir.join("ldconfig.log");
    let fake = dir.join("ldconfig");
    // `-v -N -X` lists the configured directories; no argument rebuilds the cache.
    std::fs::write(
        &fake,
        format!(
            "#!/bin/sh\nif [ \"$*\" = \"-v -N -X\" ]; then echo '{}: (from fake.conf:1)'; echo '\tlibc.so.6 -> libc.so.6'; exit 0; fi\necho \"ran $*\" >> '{}'\n",
            searched.display(),
            log.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let run = |libdir: &Path, destdir: &str| {
        let mut cmd = Command::new(root().join("scripts/after-install.sh"));
        cmd.arg(libdir).arg(soname()).arg(destdir).env("LDCONFIG", &fake);
        run_ok(cmd, default_timeout())
    };
    let ran = || std::fs::read_to_string(&log).unwrap_or_default();
    let mut id = Command::new("id");
    id.arg("-u");
    let root_user = run_ok(id, default_timeout()).trim() == "0";

    let out = run(&other, "");
    assert!(out.contains("is not searched by the dynamic linker") && out.contains("-Wl,-rpath,"), "{out}");
    assert_eq!(ran(), "", "ldconfig run for a directory it does not search");

    let out = run(&searched, "/stage");
    assert_eq!((out.as_str(), ran()), ("", String::new()), "a staged install must leave ldconfig to the package");

    let out = run(&searched, "");
    if root_user {
        assert_eq!(ran(), "ran \n", "{out}");
        assert!(!out.contains("note:"), "{out}");
    } else {
        assert_eq!(ran(), "", "{out}");
        assert!(out.contains("run 'ldconfig' as root"), "{out}");
    }
}

/// `pkg-config --libs sockflow-static`: libsockflow.a named by its path (so
/// the linker cannot pick the .so) plus its system libraries; the program
/// needs no libsockflow.so.
#[test]
fn pkg_config_static_pc_links_the_archive() {
    let p = installed();
    let flags = pkg_config(&p, &["--cflags", "--libs", "sockflow-static"]);
    assert!(flags.contains(&p.join("lib/libsockflow.a").display().to_string()), "{flags:?}");
    let (out, bin) = build_and_run("version_static_pc", &flags, None);
    assert_eq!(out[..2], [version(), version()], "{out:?}");
    assert_eq!(Path::new(&out[2]).file_name(), bin.file_name(), "sockflow_version should live in the executable: {out:?}");
    let d = dynamic_section(&bin);
    assert!(!d.contains("libsockflow"), "statically linked program still needs libsockflow:\n{d}");
}

/// `cc -static` with either static recipe: no shared library at all (this
/// failed on `-lgcc_s` while Libs.private listed it).
#[test]
fn fully_static_link_with_either_recipe() {
    let p = installed();
    for (name, args) in [
        ("version_full_static_pc", vec!["--cflags", "--libs", "sockflow-static"]),
        ("version_full_static", vec!["--static", "--cflags", "--libs"]),
    ] {
        let mut flags = vec!["-static".to_string()];
        flags.extend(pkg_config(&p, &args));
        let (out, bin) = build_and_run(name, &flags, None);
        assert_eq!(out[..2], [version(), version()], "{out:?}");
        let d = dynamic_section(&bin);
        assert!(!d.contains("(NEEDED)"), "{name}: a -static program needs shared libraries:\n{d}");
    }
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
    let mut staged = vec![
        "lib/libsockflow.a",
        "lib/libsockflow.so",
        "include/sockflow.h",
        "lib/pkgconfig/sockflow.pc",
        "lib/pkgconfig/sockflow-static.pc",
        "lib/cmake/sockflow/sockflowConfig.cmake",
        "lib/cmake/sockflow/sockflowConfigVersion.cmake",
    ];
    if which("doxygen").is_some() {
        staged.extend(["share/man/man3/sockflow.3", "share/man/man3/sockflow_tcp_connect.3"]);
    }
    for f in staged {
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

/// `make install` puts the manual's man pages under share/man: `man 3
/// sockflow` (the overview), one page per function family, and every
/// function's name as a link to its family's page; nothing named outside
/// sockflow's prefixes (doxygen also writes a link per struct field).
#[test]
fn man_pages_installed() {
    if which("doxygen").is_none() {
        eprintln!("note: doxygen is not installed, so make install installs no man pages; skipped (.ci/run installs it)");
        return;
    }
    let p = installed();
    let man3 = p.join("share/man/man3");
    let names: Vec<String> = std::fs::read_dir(&man3)
        .unwrap_or_else(|e| panic!("{}: {e}", man3.display()))
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let stray: Vec<_> = names.iter().filter(|n| !n.starts_with("sockflow") && !n.starts_with("SOCKFLOW")).collect();
    assert!(stray.is_empty(), "man pages outside sockflow's names: {stray:?}");
    let overview = std::fs::read_to_string(man3.join("sockflow.3")).expect("sockflow.3 (the overview)");
    for needle in ["Conventions", "Return codes", "Threads", "sockflow_tcp_server_run"] {
        assert!(overview.contains(needle), "sockflow.3 lacks {needle:?}");
    }
    for family in
        ["sockflow_tcp", "sockflow_udp", "sockflow_server", "sockflow_conn", "sockflow_cmdline", "sockflow_errors", "sockflow_flows"]
    {
        let page = std::fs::read_to_string(man3.join(format!("{family}.3"))).unwrap_or_else(|e| panic!("{family}.3: {e}"));
        assert!(page.starts_with(&format!(".TH \"{family}\" 3")), "{family}.3 is not its family's page:\n{}", &page[..page.len().min(300)]);
    }
    assert_eq!(std::fs::read_to_string(man3.join("sockflow_tcp_connect.3")).unwrap().trim(), ".so man3/sockflow_tcp.3");
    if which("man").is_some() {
        let mut cmd = Command::new("man");
        cmd.arg("-M").arg(p.join("share/man")).args(["-P", "cat", "3", "sockflow_tcp_connect"]).env("MANWIDTH", "200");
        let text = run_ok(cmd, default_timeout());
        assert!(text.contains("int sockflow_tcp_connect (const char * host, int port, int timeout_ms"), "{text}");
    }
}

/// tests/cmake: `find_package(sockflow <ask> REQUIRED)` against the
/// installed prefix in a fresh build directory; the configure's output.
fn cmake_configure(ask: &str) -> Result<(PathBuf, String), String> {
    let p = installed();
    // A directory per call: tests configure the same version at the same time.
    static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let build = tmp_dir("install").join(format!("cmake-{ask}-{n}"));
    let _ = std::fs::remove_dir_all(&build);
    let out = Command::new("cmake")
        .arg("-S")
        .arg(root().join("tests/cmake"))
        .arg("-B")
        .arg(&build)
        .arg(format!("-DCMAKE_PREFIX_PATH={}", p.display()))
        .arg(format!("-DSOCKFLOW_ASK={ask}"))
        .output()
        .expect("run cmake");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    if out.status.success() {
        Ok((build, text))
    } else {
        Err(text)
    }
}

fn have_cmake() -> bool {
    if which("cmake").is_none() {
        eprintln!("note: cmake is not installed; the CMake package test is skipped (.ci/run installs it)");
        return false;
    }
    true
}

/// The installed CMake package: `sockflow::sockflow` and
/// `sockflow::sockflow_static` build tests/cmake's echo, which runs (the
/// shared one by the runpath CMake sets, no LD_LIBRARY_PATH).
#[test]
fn cmake_package_builds_and_runs_both_targets() {
    if !have_cmake() {
        return;
    }
    let (build, _) = cmake_configure("0.2").unwrap_or_else(|e| panic!("find_package(sockflow 0.2) failed:\n{e}"));
    let mut cmd = Command::new("cmake");
    cmd.arg("--build").arg(&build);
    run_ok(cmd, secs(300));
    for (target, needs_so) in [("echo_shared", true), ("echo_static", false)] {
        let bin = build.join(target);
        let mut run = Command::new(&bin);
        run.env_remove("LD_LIBRARY_PATH");
        assert_eq!(run_ok(run, default_timeout()).trim(), format!("{} echo: ping", version()), "{target}");
        let d = dynamic_section(&bin);
        assert_eq!(d.contains(&format!("Shared library: [{}]", soname())), needs_so, "{target}:\n{d}");
        assert!(needs_so || !d.contains("libsockflow"), "{target} needs libsockflow:\n{d}");
    }
}

/// sockflowConfigVersion.cmake: before 1.0 a minor version is an ABI (the
/// soname is libsockflow.so.0.MINOR), so 0.2.0 satisfies 0.2 and 0.2.0 but
/// not 0.1, 0.3, 1.0, or a newer patch than installed.
#[test]
fn cmake_package_version_is_same_minor() {
    if !have_cmake() {
        return;
    }
    let v = version();
    let minor = format!("{}.{}", env!("CARGO_PKG_VERSION_MAJOR"), env!("CARGO_PKG_VERSION_MINOR"));
    for ok in [minor.as_str(), v] {
        cmake_configure(ok).unwrap_or_else(|e| panic!("find_package(sockflow {ok}) failed:\n{e}"));
    }
    let minor_n: u32 = env!("CARGO_PKG_VERSION_MINOR").parse().unwrap();
    let patch_n: u32 = env!("CARGO_PKG_VERSION_PATCH").parse().unwrap();
    let next_patch = format!("{minor}.{}", patch_n + 1);
    let next_minor = format!("0.{}", minor_n + 1);
    let mut refused = vec![next_patch.as_str(), next_minor.as_str(), "1.0"];
    let prev_minor = format!("0.{}", minor_n.saturating_sub(1));
    if minor_n > 0 {
        refused.push(prev_minor.as_str());
    }
    for bad in refused {
        match cmake_configure(bad) {
            Ok((_, out)) => panic!("find_package(sockflow {bad} REQUIRED) accepted {v}:\n{out}"),
            Err(out) => assert!(out.contains("compatible with requested version"), "{bad}: not refused for its version:\n{out}"),
        }
    }
}

/// The probe behind `native_static_libs` (an empty staticlib that rustc
/// builds to report the system libraries) leaves nothing behind: it used to
/// keep a ~21 MB archive per test process in `target/tmp`, which filled the
/// disk after a few hundred test runs.
#[test]
fn native_static_libs_probe_leaves_no_files() {
    assert!(!native_static_libs().is_empty());
    let dir = tmp_dir("native-static-libs");
    let pid = std::process::id();
    for name in [format!("libnslprobe{pid}.a"), format!("probe{pid}.rs")] {
        assert!(!dir.join(&name).exists(), "{} left behind", dir.join(&name).display());
    }
}
