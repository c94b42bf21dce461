//! `include/sockflow.h`: committed copy is fresh, every name it declares is
//! `sockflow_`/`SOCKFLOW_`-prefixed, it compiles as C99 and C++17 under
//! `-Wall -Wextra -Werror -pedantic` (gcc, and clang when installed), and it
//! matches what the shared library exports.

mod common;

use common::*;
use std::collections::BTreeSet;
use std::process::Command;

fn committed() -> String {
    let p = include_dir().join("sockflow.h");
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
}

#[test]
fn committed_header_is_fresh() {
    let fresh_path = env!("SOCKFLOW_GENERATED_HEADER");
    let fresh = std::fs::read_to_string(fresh_path).unwrap_or_else(|e| panic!("read {fresh_path}: {e}"));
    let committed = committed();
    if fresh == committed {
        return;
    }
    let first = fresh
        .lines()
        .zip(committed.lines())
        .position(|(a, b)| a != b)
        .unwrap_or_else(|| fresh.lines().count().min(committed.lines().count()));
    panic!(
        "include/sockflow.h differs from the header cbindgen generates from src/ffi ({fresh_path}).\n\
         First difference at line {}:\n  committed: {:?}\n  generated: {:?}\n\
         Fix: run `cargo build` (or `make`) outside CI, which rewrites include/sockflow.h, and commit it.",
        first + 1,
        committed.lines().nth(first).unwrap_or("<end of file>"),
        fresh.lines().nth(first).unwrap_or("<end of file>"),
    );
}

#[test]
fn header_version_matches_cargo() {
    let h = committed();
    let v = env!("CARGO_PKG_VERSION");
    assert!(h.contains(&format!("#define SOCKFLOW_VERSION \"{v}\"\n")), "SOCKFLOW_VERSION is not \"{v}\"");
    for (name, val) in
        [("MAJOR", env!("CARGO_PKG_VERSION_MAJOR")), ("MINOR", env!("CARGO_PKG_VERSION_MINOR")), ("PATCH", env!("CARGO_PKG_VERSION_PATCH"))]
    {
        assert!(h.contains(&format!("#define SOCKFLOW_VERSION_{name} {val}\n")), "SOCKFLOW_VERSION_{name} is not {val}");
    }
}

// ---------------------------------------------------------------------------
// A small declaration scanner for cbindgen's C output
// ---------------------------------------------------------------------------

/// What the header declares at file scope.
#[derive(Debug, Default)]
struct Decls {
    macros: BTreeSet<String>,
    functions: BTreeSet<String>,
    variables: BTreeSet<String>,
    /// struct/enum/union tags and typedef names.
    types: BTreeSet<String>,
    enum_constants: BTreeSet<String>,
}

impl Decls {
    fn all(&self) -> impl Iterator<Item = (&'static str, &String)> {
        self.macros
            .iter()
            .map(|n| ("macro", n))
            .chain(self.functions.iter().map(|n| ("function", n)))
            .chain(self.variables.iter().map(|n| ("variable", n)))
            .chain(self.types.iter().map(|n| ("type", n)))
            .chain(self.enum_constants.iter().map(|n| ("enum constant", n)))
    }
}

/// Removes `/* */` and `//` comments (string literals in the header hold
/// no comment markers).
fn strip_comments(src: &str) -> String {
    let mut out = String::with_capacity(src.len());
    let mut rest = src;
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix("/*") {
            let end = r.find("*/").map(|i| i + 2).unwrap_or(r.len());
            // Keep line structure for the preprocessor pass.
            out.extend(r[..end].chars().filter(|&c| c == '\n'));
            rest = &r[end..];
        } else if let Some(r) = rest.strip_prefix("//") {
            let end = r.find('\n').unwrap_or(r.len());
            rest = &r[end..];
        } else {
            let c = rest.chars().next().unwrap();
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    out
}

/// Splits C code into identifiers/numbers/strings and single punctuators.
fn tokens(code: &str) -> Vec<String> {
    let mut v = Vec::new();
    let b: Vec<char> = code.chars().collect();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c.is_whitespace() {
            i += 1;
        } else if c.is_ascii_alphanumeric() || c == '_' {
            let s = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == '_') {
                i += 1;
            }
            v.push(b[s..i].iter().collect());
        } else if c == '"' {
            let s = i;
            i += 1;
            while i < b.len() && b[i] != '"' {
                i += if b[i] == '\\' { 2 } else { 1 };
            }
            i += 1;
            v.push(b[s..i.min(b.len())].iter().collect());
        } else {
            v.push(c.to_string());
            i += 1;
        }
    }
    v
}

fn is_ident(t: &str) -> bool {
    t.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
}

const KEYWORDS: &[&str] = &[
    "const",
    "volatile",
    "struct",
    "enum",
    "union",
    "typedef",
    "extern",
    "static",
    "inline",
    "unsigned",
    "signed",
    "int",
    "char",
    "short",
    "long",
    "float",
    "double",
    "void",
    "_Bool",
    "bool",
    "restrict",
    "__restrict",
];

/// Scans a header as C (with `__cplusplus` undefined): macros from
/// `#define`, then the declarations of the active code.
fn scan(header: &str) -> Decls {
    let mut d = Decls::default();
    let text = strip_comments(header).replace("\\\n", " ");
    // (is this conditional about __cplusplus, is its branch active)
    let mut stack: Vec<(bool, bool)> = Vec::new();
    let mut code = String::new();
    for line in text.lines() {
        let t = line.trim_start();
        if let Some(pp) = t.strip_prefix('#') {
            let pp = pp.trim_start();
            let (dir, arg) = pp.split_once(char::is_whitespace).unwrap_or((pp, ""));
            let arg = arg.trim();
            let about_cpp = arg.contains("__cplusplus");
            match dir {
                "ifdef" => stack.push((about_cpp, !about_cpp)),
                "ifndef" => stack.push((about_cpp, true)),
                // `#if defined(__cplusplus)` is false here, `#if !defined(__cplusplus)` true.
                "if" => stack.push((about_cpp, !about_cpp || arg.starts_with('!'))),
                "elif" | "else" => {
                    if let Some(top) = stack.last_mut() {
                        if top.0 {
                            top.1 = !top.1;
                        }
                    }
                }
                "endif" => {
                    stack.pop();
                }
                "define" if stack.iter().all(|s| s.1) => {
                    let name: String = arg.chars().take_while(|&c| c.is_ascii_alphanumeric() || c == '_').collect();
                    d.macros.insert(name);
                }
                _ => {}
            }
            continue;
        }
        if stack.iter().all(|s| s.1) {
            code.push_str(line);
            code.push('\n');
        }
    }

    // Split the active code into file-scope declarations.
    let toks = tokens(&code);
    let mut decl: Vec<String> = Vec::new();
    let mut depth = 0i32;
    for t in toks {
        match t.as_str() {
            "{" => depth += 1,
            "}" => depth -= 1,
            _ => {}
        }
        if t == ";" && depth == 0 {
            declaration(&decl, &mut d);
            decl.clear();
        } else {
            decl.push(t);
        }
    }
    assert!(decl.iter().all(|t| t.trim().is_empty()), "unterminated declaration at end of header: {decl:?}");
    d
}

/// Records what one file-scope declaration (tokens before its `;`) declares.
fn declaration(t: &[String], d: &mut Decls) {
    if t.is_empty() {
        return;
    }
    // Drop __attribute__((...)) groups.
    let mut toks: Vec<&str> = Vec::new();
    let mut i = 0;
    while i < t.len() {
        if t[i] == "__attribute__" {
            i += 1;
            let mut p = 0;
            while i < t.len() {
                if t[i] == "(" {
                    p += 1;
                } else if t[i] == ")" {
                    p -= 1;
                    if p == 0 {
                        i += 1;
                        break;
                    }
                }
                i += 1;
            }
            continue;
        }
        toks.push(&t[i]);
        i += 1;
    }
    // Tags and enum constants, wherever a body appears.
    let mut i = 0;
    while i < toks.len() {
        if matches!(toks[i], "struct" | "enum" | "union") {
            let is_enum = toks[i] == "enum";
            let mut j = i + 1;
            if j < toks.len() && is_ident(toks[j]) {
                d.types.insert(toks[j].to_string());
                j += 1;
            }
            if j < toks.len() && toks[j] == "{" {
                let mut depth = 0;
                let start = j + 1;
                let mut end = start;
                for (k, tk) in toks.iter().enumerate().skip(j) {
                    if *tk == "{" {
                        depth += 1;
                    } else if *tk == "}" {
                        depth -= 1;
                        if depth == 0 {
                            end = k;
                            break;
                        }
                    }
                }
                if is_enum {
                    let body = &toks[start..end];
                    for item in body.split(|t| *t == ",") {
                        if let Some(name) = item.first() {
                            d.enum_constants.insert(name.to_string());
                        }
                    }
                }
                i = end;
            }
        }
        i += 1;
    }
    // Strip any braces' contents to find the declarator.
    let mut outer: Vec<&str> = Vec::new();
    let mut depth = 0;
    for tk in &toks {
        match *tk {
            "{" => depth += 1,
            "}" => depth -= 1,
            _ if depth == 0 => outer.push(tk),
            _ => {}
        }
    }
    let typedef = outer.first() == Some(&"typedef");
    let paren = outer.iter().position(|t| *t == "(");
    // A function pointer declarator: `( * name ) ( ... )`.
    if let Some(k) = paren {
        if outer.get(k + 1) == Some(&"*") && outer.get(k + 2).is_some_and(|t| is_ident(t)) {
            let name = outer[k + 2].to_string();
            if typedef {
                d.types.insert(name);
            } else {
                d.variables.insert(name);
            }
            return;
        }
    }
    let head = &outer[..paren.unwrap_or(outer.len())];
    // The declarator is the last identifier that is not a keyword (before
    // `(` for a function; array brackets may follow it).
    let mut head_no_array: Vec<&str> = Vec::new();
    let mut in_brackets = false;
    for tk in head {
        match *tk {
            "[" => in_brackets = true,
            "]" => in_brackets = false,
            _ if !in_brackets => head_no_array.push(tk),
            _ => {}
        }
    }
    let Some(name) = head_no_array.iter().rev().find(|t| is_ident(t) && !KEYWORDS.contains(t)) else {
        return; // e.g. a bare `struct x { ... };`, already recorded as a tag
    };
    // `struct x;` or `enum x {..};` alone declares only the tag.
    if !typedef && head_no_array.len() == 2 && matches!(head_no_array[0], "struct" | "enum" | "union") {
        return;
    }
    let name = name.to_string();
    if typedef {
        d.types.insert(name);
    } else if paren.is_some() {
        d.functions.insert(name);
    } else {
        d.variables.insert(name);
    }
}

fn prefixed(name: &str) -> bool {
    name.starts_with("sockflow_") || name.starts_with("SOCKFLOW_")
}

fn unprefixed(d: &Decls) -> Vec<String> {
    d.all().filter(|(_, n)| !prefixed(n)).map(|(k, n)| format!("{k} {n}")).collect()
}

#[test]
fn scanner_finds_every_kind_of_name() {
    let sample = r#"
#ifndef SOCKFLOW_H
#define SOCKFLOW_H
#include <stdint.h>
#define BAD_MACRO 1 /* a comment with sockflow_x( in it */
#define SOCKFLOW_FN(x) ((x) + 1)
typedef struct Code Code;
typedef enum sockflow_e {
    SOCKFLOW_E_A = 0,
    OTHER_B = (1 << 2),
} sockflow_e;
enum bad_tag { SOCKFLOW_T_C };
typedef struct sockflow_s {
    int field_name;
    char buf[SOCKFLOW_FN(3)];
} sockflow_s;
typedef void (*cb_t)(void *userdata, int n);
#ifdef __cplusplus
extern "C" {
#endif // __cplusplus
extern int global_var;
int helper(int x);
#if defined(__GNUC__)
__attribute__((visibility("default"))) const char *sockflow_ok(const struct sockflow_s *s, int (*f)(int));
#endif
struct sockflow_s *other_fn(void);
#ifdef __cplusplus
}  // extern "C"
#endif
#endif
"#;
    let d = scan(sample);
    let mut bad = unprefixed(&d);
    bad.sort();
    let mut want = vec![
        "macro BAD_MACRO",
        "type Code",
        "enum constant OTHER_B",
        "type bad_tag",
        "type cb_t",
        "variable global_var",
        "function helper",
        "function other_fn",
    ];
    want.sort();
    assert_eq!(bad, want, "{d:#?}");
    assert!(d.functions.contains("sockflow_ok"), "{d:#?}");
    assert!(d.macros.contains("SOCKFLOW_FN") && d.macros.contains("SOCKFLOW_H"), "{d:#?}");
    assert!(d.enum_constants.contains("SOCKFLOW_E_A") && d.enum_constants.contains("SOCKFLOW_T_C"), "{d:#?}");
}

#[test]
fn every_declared_name_is_prefixed() {
    let d = scan(&committed());
    assert!(d.functions.len() >= 10 && d.macros.len() >= 10 && !d.types.is_empty(), "the scanner found too little: {d:#?}");
    let bad = unprefixed(&d);
    assert!(
        bad.is_empty(),
        "include/sockflow.h declares names without the sockflow_/SOCKFLOW_ prefix: {bad:?}\n\
         (fix the Rust item's name, or exclude it in cbindgen.toml [export])"
    );
}

/// `nm -D --defined-only` names of the shared library.
fn exported_symbols() -> Option<BTreeSet<String>> {
    let nm = which("nm")?;
    let out = Command::new(nm).args(["-D", "--defined-only", "--format=posix"]).arg(lib_dir().join("libsockflow.so")).output().ok()?;
    assert!(out.status.success(), "nm failed: {}", String::from_utf8_lossy(&out.stderr));
    Some(String::from_utf8_lossy(&out.stdout).lines().filter_map(|l| l.split_whitespace().next()).map(String::from).collect())
}

#[test]
fn header_functions_match_library_exports() {
    let Some(syms) = exported_symbols() else {
        eprintln!("note: nm not found, skipped");
        return;
    };
    let d = scan(&committed());
    let missing: Vec<&String> = d.functions.iter().filter(|f| !syms.contains(*f)).collect();
    assert!(missing.is_empty(), "declared in sockflow.h but not exported by libsockflow.so: {missing:?}");
    let undeclared: Vec<&String> = syms.iter().filter(|s| s.starts_with("sockflow_") && !d.functions.contains(*s)).collect();
    assert!(undeclared.is_empty(), "exported by libsockflow.so but missing from sockflow.h: {undeclared:?}");
}

// ---------------------------------------------------------------------------
// Compiling the header
// ---------------------------------------------------------------------------

/// Valid C99 and C++17: includes the header twice (include guard), uses
/// types, enum constants, macros and functions, and checks that the header
/// and the library agree on the version.
const TU: &str = r#"#include "sockflow.h"
#include "sockflow.h"

#include <stdio.h>
#include <string.h>

int main(void)
{
    sockflow_args a;
    sockflow_addr addr;
    sockflow_tcp *t = NULL;
    sockflow_udp *u = NULL;
    sockflow_tcp_listener *l = NULL;
    enum sockflow_frame f = SOCKFLOW_FRAME_LEN32;
    sockflow_role r = SOCKFLOW_ROLE_CLIENT;
    char msg[64];

    memset(&addr, 0, sizeof addr);
    if (sockflow_args_init(&a, (int)r, "127.0.0.1", 7) != SOCKFLOW_OK)
        return 10;
    if (sockflow_args_set_frame(&a, "len32") != SOCKFLOW_OK || a.frame != (int)f)
        return 11;
    if (sockflow_tcp_connect(NULL, 1, 0, &t) != SOCKFLOW_EINVAL || t != NULL)
        return 12;
    (void)sockflow_last_error(msg, sizeof msg);
    sockflow_tcp_close(t);
    sockflow_udp_close(u);
    sockflow_tcp_listener_close(l);
    printf("%s %s %d %d %d [%s] %s\n", SOCKFLOW_VERSION, sockflow_version(), SOCKFLOW_VERSION_NUMBER,
           (int)sizeof a.host, (int)sizeof addr.ip, msg, sockflow_strerror(SOCKFLOW_ECLOSED));
    return strcmp(SOCKFLOW_VERSION, sockflow_version()) != 0;
}
"#;

fn compile_and_run_tu(lang: Lang) {
    let dir = tmp_dir("header-tu");
    let ext = if lang == Lang::C { "c" } else { "cpp" };
    let src = dir.join(format!("header_tu.{ext}"));
    std::fs::write(&src, TU).unwrap();
    let v = env!("CARGO_PKG_VERSION");
    let num = |s: &str| s.parse::<u32>().unwrap();
    let n =
        (num(env!("CARGO_PKG_VERSION_MAJOR")) << 16) | (num(env!("CARGO_PKG_VERSION_MINOR")) << 8) | num(env!("CARGO_PKG_VERSION_PATCH"));
    for compiler in Compiler::all(lang) {
        for link in [Link::Dynamic, Link::Static] {
            let bin = CProgram::with_lang(lang, &[src.to_str().unwrap()]).compiler(compiler).link(link).build();
            let mut p = spawn(&bin, &[], Input::Null);
            let st = p.wait_exit(default_timeout());
            assert_exit(&p, st, 0);
            let out = p.stdout_text();
            let want = format!("{v} {v} {n} 256 46 [host is NULL] ");
            assert!(out.starts_with(&want), "{} {compiler} {link}: expected {want:?}...\n{}", compiler.program(lang), p.transcript());
        }
    }
}

#[test]
fn header_compiles_as_c99() {
    compile_and_run_tu(Lang::C);
}

#[test]
fn header_compiles_as_cpp17() {
    compile_and_run_tu(Lang::Cpp);
}
