//! The reference manual (`make doc`: doxygen over include/sockflow.h and
//! docs/): builds with no warning at all (any warning fails it), documents
//! every function, type and constant of the header on a man page of its
//! family, and fails when a declaration belongs to no family or when a
//! member of the C++ header (include/sockflow.hpp, in the HTML only) has no
//! doc comment. Skipped, with a note, without doxygen (`.ci/run` installs it).

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;

fn have_doxygen() -> bool {
    if which("doxygen").is_none() {
        eprintln!("note: doxygen is not installed; the manual's tests are skipped (.ci/run installs it)");
        return false;
    }
    true
}

/// `make doc DOC_BUILD=out [VAR=path...]` (VAR: HEADER, CPP_HEADER):
/// (succeeded, stdout + stderr).
fn make_doc(out: &Path, vars: &[(&str, &Path)]) -> (bool, String) {
    let _ = std::fs::remove_dir_all(out);
    let mut cmd = Command::new("make");
    cmd.current_dir(root()).arg("doc").arg(format!("DOC_BUILD={}", out.display()));
    for (var, path) in vars {
        cmd.arg(format!("{var}={}", path.display()));
    }
    for v in ["MAKEFLAGS", "MFLAGS", "MAKELEVEL"] {
        cmd.env_remove(v);
    }
    let o = cmd.output().expect("run make doc");
    (o.status.success(), format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr)))
}

/// What the committed header declares at file scope with a name of its
/// own: functions, typedefs, enum constants and macros (cbindgen's layout:
/// declarations start in column 0, enum constants are indented once).
fn declared_names() -> Vec<String> {
    let h = std::fs::read_to_string(include_dir().join("sockflow.h")).unwrap();
    let ident = |s: &str| s.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect::<String>();
    let mut names = Vec::new();
    for line in h.lines() {
        let name = if let Some(rest) = line.strip_prefix("#define ") {
            ident(rest)
        } else if let Some(rest) = line.strip_prefix("typedef ") {
            match rest.find("(*") {
                Some(i) => ident(&rest[i + 2..]),
                None => ident(rest.split_whitespace().nth(1).unwrap_or("")),
            }
        } else if let Some(rest) = line.strip_prefix("    SOCKFLOW_") {
            format!("SOCKFLOW_{}", ident(rest))
        } else if line.starts_with(|c: char| c.is_ascii_alphabetic()) && line.contains("sockflow_") && line.contains('(') {
            let before = &line[..line.find('(').unwrap()];
            ident(before.rsplit([' ', '*']).next().unwrap_or(""))
        } else {
            continue;
        };
        // The include guard and the attribute macro are not API.
        if name.starts_with("sockflow_") || (name.starts_with("SOCKFLOW_") && name != "SOCKFLOW_H" && name != "SOCKFLOW_MUST_USE") {
            names.push(name);
        }
    }
    names.sort();
    names.dedup();
    names
}

#[test]
fn make_doc_builds_html_and_man_pages_without_warnings() {
    if !have_doxygen() {
        return;
    }
    let out = tmp_dir("doc").join("clean");
    let (ok, log) = make_doc(&out, &[]);
    assert!(ok, "make doc failed (a warning is an error):\n{log}");
    assert!(!log.contains("warning:") && !log.contains("error:"), "make doc printed warnings:\n{log}");
    assert!(out.join("html/index.html").is_file(), "no html/index.html");

    let man3 = out.join("man/man3");
    let names = declared_names();
    assert!(names.len() > 100, "the header scanner found only {names:?}");
    assert!(names.iter().any(|n| n == "sockflow_tcp_connect") && names.iter().any(|n| n == "SOCKFLOW_EINVAL"), "{names:?}");
    let missing: Vec<_> = names.iter().filter(|n| !man3.join(format!("{n}.3")).is_file()).collect();
    assert!(missing.is_empty(), "declared in the header but on no man page (undocumented, or in no group): {missing:?}");

    // Each name opens its family's page, which documents it.
    for name in &names {
        let link = std::fs::read_to_string(man3.join(format!("{name}.3"))).unwrap();
        let page: PathBuf = match link.trim().strip_prefix(".so ") {
            Some(target) => out.join("man").join(target),
            None => man3.join(format!("{name}.3")),
        };
        let text = std::fs::read_to_string(&page).unwrap_or_else(|e| panic!("{name}.3 -> {}: {e}", page.display()));
        assert!(text.contains(name.as_str()), "{} does not mention {name}", page.display());
    }
    let overview = std::fs::read_to_string(man3.join("sockflow.3")).expect("man3/sockflow.3");
    // README's API conventions, included rather than copied.
    assert!(overview.contains("Milliseconds") && overview.contains("SOCKFLOW_FOREVER"), "{overview}");
}

/// A documented declaration that docs/doxygen-groups.awk has no rule for
/// fails `make doc`, naming it and the file to fix.
#[test]
fn a_declaration_in_no_group_fails_make_doc() {
    if !have_doxygen() {
        return;
    }
    let dir = tmp_dir("doc");
    let h = std::fs::read_to_string(include_dir().join("sockflow.h")).unwrap();
    let end = h.rfind("#ifdef __cplusplus").expect("the header's closing extern \"C\"");
    let header = dir.join("ungrouped.h");
    std::fs::write(&header, format!("{}/**\n * A call no rule places.\n */\nint sockflow_frobnicate(void);\n\n{}", &h[..end], &h[end..]))
        .unwrap();
    let (ok, log) = make_doc(&dir.join("ungrouped"), &[("HEADER", &header)]);
    assert!(!ok, "make doc succeeded with an ungrouped function:\n{log}");
    assert!(log.contains("sockflow_frobnicate belongs to no group: add a rule for it"), "{log}");
}

/// The C++ header is held to the same rule as the C one: a public member
/// of a class of include/sockflow.hpp without a doc comment fails
/// `make doc`, naming it (the HTML run once let C++ members go undocumented).
#[test]
fn an_undocumented_cpp_member_fails_make_doc() {
    if !have_doxygen() {
        return;
    }
    let dir = tmp_dir("doc");
    let hpp = std::fs::read_to_string(include_dir().join("sockflow.hpp")).unwrap();
    let class = "class tcp_stream {\npublic:\n";
    assert!(hpp.contains(class), "no `{class}` in sockflow.hpp");
    let header = dir.join("undocumented.hpp");
    std::fs::write(&header, hpp.replacen(class, &format!("{class}    int frobnicate() const {{ return 0; }}\n"), 1)).unwrap();
    let (ok, log) = make_doc(&dir.join("undocumented"), &[("CPP_HEADER", &header)]);
    assert!(!ok, "make doc succeeded with an undocumented C++ member:\n{log}");
    assert!(log.contains("frobnicate() const (function) of class sockflow::tcp_stream is not documented"), "{log}");
}
