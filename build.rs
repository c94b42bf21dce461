//! Generates `include/sockflow.h` with cbindgen (pinned in Cargo.toml).
//!
//! The header is always written to `$OUT_DIR/sockflow.h`; the test
//! `header_is_fresh` compares that copy with the committed one. Outside CI
//! (`CI` unset) the committed copy is refreshed too, so a developer's build
//! keeps it current; in CI it is left alone so that drift fails the test.
use std::{env, fs, path::PathBuf};

fn main() {
    let dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    let out = PathBuf::from(env::var("OUT_DIR").unwrap());
    println!("cargo:rerun-if-changed=src/ffi");
    // Enums exported from the core under their C names (cbindgen.toml [export.rename]).
    println!("cargo:rerun-if-changed=src/server/mod.rs");
    println!("cargo:rerun-if-changed=src/server/control.rs");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    println!("cargo:rerun-if-env-changed=CI");
    // Forward the target triple: integration tests build C programs with `cc`,
    // which needs it and does not get it from cargo there.
    println!("cargo:rustc-env=SOCKFLOW_TARGET={}", env::var("TARGET").unwrap());
    println!("cargo:rustc-env=SOCKFLOW_GENERATED_HEADER={}", out.join("sockflow.h").display());
    // Give the shared library a soname so `make install` can ship the usual
    // libsockflow.so -> libsockflow.so.0.2 (the soname) -> libsockflow.so.0.2.0 links.
    let major = env::var("CARGO_PKG_VERSION_MAJOR").unwrap();
    let minor = env::var("CARGO_PKG_VERSION_MINOR").unwrap();
    let sover = if major == "0" { format!("0.{minor}") } else { major.clone() };
    if env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libsockflow.so.{sover}");
    }

    let version = env::var("CARGO_PKG_VERSION").unwrap();
    let patch = env::var("CARGO_PKG_VERSION_PATCH").unwrap();
    let macros = format!(
        "\n/** This header's version, \"MAJOR.MINOR.PATCH\" (the library's is `sockflow_version()`). */\n\
         #define SOCKFLOW_VERSION \"{version}\"\n\
         /** This header's major version. */\n#define SOCKFLOW_VERSION_MAJOR {major}\n\
         /** This header's minor version (before 1.0 a new minor version may break the ABI). */\n\
         #define SOCKFLOW_VERSION_MINOR {minor}\n\
         /** This header's patch version. */\n#define SOCKFLOW_VERSION_PATCH {patch}\n\
         /** (major << 16) | (minor << 8) | patch */\n\
         #define SOCKFLOW_VERSION_NUMBER (({major} << 16) | ({minor} << 8) | {patch})\n\n\
         #if defined(__GNUC__) || defined(__clang__)\n\
         #define SOCKFLOW_MUST_USE __attribute__((warn_unused_result))\n#else\n\
         #define SOCKFLOW_MUST_USE\n#endif\n"
    );
    let config = cbindgen::Config::from_file(dir.join("cbindgen.toml")).expect("cbindgen.toml");
    let header = cbindgen::Builder::new()
        .with_crate(&dir)
        .with_config(config)
        .with_after_include(macros)
        .generate()
        .expect("cbindgen could not generate include/sockflow.h");
    let fresh = out.join("sockflow.h");
    header.write_to_file(&fresh);
    if env::var_os("CI").is_none() {
        let committed = dir.join("include/sockflow.h");
        let new = fs::read(&fresh).unwrap();
        if fs::read(&committed).ok().as_deref() != Some(&new[..]) {
            fs::create_dir_all(dir.join("include")).unwrap();
            fs::write(committed, new).unwrap();
        }
    }
}
