//! The C boundary. Every exported function lives here, one file per concept,
//! and every body runs inside [`ffi_boundary!`]: a panic becomes
//! `SOCKFLOW_EPANIC` (or NULL/0), never an unwind into C or an abort.
//!
//! `unsafe` is confined to this module (and the core's OS-call module
//! `sys.rs`; the crate root denies it elsewhere): turning C pointers into
//! references and slices (each checked for NULL first) and calling libc's
//! stdio.
//!
//! Exported functions take raw pointers by design (that is the C ABI) and
//! check each one before use, so they are safe `extern "C" fn`s to Rust's
//! eyes; clippy's lint for pointer-taking safe functions does not apply here.
#![allow(clippy::not_unsafe_ptr_arg_deref)]

use std::ffi::{c_char, c_int, CStr};

#[macro_use]
mod macros;
#[macro_use]
pub(crate) mod cenum;
pub mod addr;
pub mod args;
pub mod client;
pub mod control;
pub mod error;
pub mod handler;
pub mod server;
pub mod stats;
pub mod stdio;
pub mod tcp;
pub mod timer;
pub mod udp;
pub mod version;

/// A value returned to C when a panic was caught.
pub trait PanicValue {
    fn panic_value() -> Self;
}

/// A value returned to C for an error code.
pub trait FromCode {
    fn from_code(code: c_int) -> Self;
}

impl PanicValue for c_int {
    fn panic_value() -> c_int {
        error::code_value(crate::Code::Panic)
    }
}
impl FromCode for c_int {
    fn from_code(code: c_int) -> c_int {
        code
    }
}
impl PanicValue for isize {
    fn panic_value() -> isize {
        error::code_value(crate::Code::Panic) as isize
    }
}
impl FromCode for isize {
    fn from_code(code: c_int) -> isize {
        code as isize
    }
}
impl PanicValue for usize {
    fn panic_value() -> usize {
        0
    }
}
impl PanicValue for () {
    fn panic_value() {}
}
impl FromCode for () {
    fn from_code(_: c_int) {}
}
impl<T> PanicValue for *const T {
    fn panic_value() -> *const T {
        std::ptr::null()
    }
}

/// Borrows a C string argument as UTF-8, or fails naming the argument.
pub(crate) fn str_arg<'a>(p: *const c_char, name: &str) -> crate::Result<&'a str> {
    if p.is_null() {
        return Err(crate::Error::inval(format!("{name} is NULL")));
    }
    // SAFETY: non-NULL and, per every function's contract, NUL-terminated.
    let s = unsafe { CStr::from_ptr(p) };
    s.to_str().map_err(|_| crate::Error::inval(format!("{name} is not valid UTF-8")))
}

/// A port from C: `lo`-65535 (0 allowed for binding).
pub(crate) fn port_arg(port: c_int, lo: c_int) -> crate::Result<u16> {
    if (lo..=65535).contains(&port) {
        Ok(port as u16)
    } else {
        Err(crate::Error::new(crate::Code::Addr, format!("port {port} is not in {lo}-65535")))
    }
}

/// "No limit", for any `*_ms` argument or field (every negative value
/// means the same).
pub const SOCKFLOW_FOREVER: c_int = -1;

/// What 0 ms means to a call (see [`limit_arg`]).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Zero {
    /// Check once without waiting (`accept`, a server turn).
    Check,
    /// Rejected: the call cannot do its work without waiting (a connect, a
    /// socket timeout, an idle limit), and a 0 there is most often a
    /// zeroed struct or a confusion with "none".
    Invalid,
}

/// The one rule for every millisecond limit C passes: negative
/// (`SOCKFLOW_FOREVER`) = no limit (`None`); positive = that many ms; 0 =
/// "do not wait", accepted only by calls that can check without waiting.
pub(crate) fn limit_arg(ms: c_int, what: &str, zero: Zero) -> crate::Result<Option<std::time::Duration>> {
    match ms {
        m if m < 0 => Ok(None),
        0 if zero == Zero::Invalid => {
            Err(crate::Error::inval(format!("{what} is 0: give a positive number of ms, or SOCKFLOW_FOREVER for no limit")))
        }
        m => Ok(Some(std::time::Duration::from_millis(m as u64))),
    }
}

/// A limit for C: `None` is `SOCKFLOW_FOREVER`.
pub(crate) fn limit_value(d: Option<std::time::Duration>) -> c_int {
    d.map_or(SOCKFLOW_FOREVER, |d| d.as_millis().min(c_int::MAX as u128) as c_int)
}

/// A frame spec from C ("line", "fixed:32", ...).
pub(crate) fn frame_arg(spec: *const c_char) -> crate::Result<crate::frame::Frame> {
    crate::frame::Frame::parse(str_arg(spec, "spec")?).map_err(crate::Error::inval)
}

/// Checks a C buffer before a slice is made of it: non-NULL unless `len`
/// is 0, `len` at most `isize::MAX` and `p + len` not past the end of the
/// address space. No real buffer breaks these, but a wrong length (a
/// negative `ssize_t` passed as `size_t`) does, and making a slice of it
/// would already be undefined behaviour, before any byte is touched.
fn span(p: *const std::ffi::c_void, len: usize, name: &str) -> crate::Result<()> {
    if p.is_null() {
        return Err(crate::Error::inval(format!("{name} is NULL")));
    }
    if len > isize::MAX as usize || (p as usize).checked_add(len).is_none() {
        return Err(crate::Error::inval(format!("{name} length {len} is too large (it runs past the end of memory)")));
    }
    Ok(())
}

/// Borrows `len` bytes at `p` (NULL allowed only when `len` is 0).
pub(crate) fn bytes_arg<'a>(p: *const std::ffi::c_void, len: usize, name: &str) -> crate::Result<&'a [u8]> {
    if len == 0 {
        return Ok(&[]);
    }
    span(p, len, name)?;
    // SAFETY: checked by `span`; the caller promises `len` readable bytes.
    Ok(unsafe { std::slice::from_raw_parts(p as *const u8, len) })
}

/// Borrows `cap` writable bytes at `p` (NULL allowed only when `cap` is 0).
pub(crate) fn buf_arg<'a>(p: *mut std::ffi::c_void, cap: usize, name: &str) -> crate::Result<&'a mut [u8]> {
    if cap == 0 {
        return Ok(&mut []);
    }
    span(p, cap, name)?;
    // SAFETY: checked by `span`; the caller promises `cap` writable bytes.
    Ok(unsafe { std::slice::from_raw_parts_mut(p as *mut u8, cap) })
}

/// snprintf-style copy: at most `dst.len() - 1` bytes and always a NUL
/// (when `dst` is not empty); returns `src.len()`.
pub(crate) fn copy_cstr(src: &[u8], dst: &mut [u8]) -> usize {
    if let Some(room) = dst.len().checked_sub(1) {
        let n = src.len().min(room);
        dst[..n].copy_from_slice(&src[..n]);
        dst[n] = 0;
    }
    src.len()
}

/// Copies a string into a fixed `char[N]` field, always NUL-terminated.
pub(crate) fn copy_field(src: &str, dst: &mut [c_char]) {
    let n = src.len().min(dst.len() - 1);
    for (d, s) in dst.iter_mut().zip(src.as_bytes()[..n].iter()) {
        *d = *s as c_char;
    }
    dst[n] = 0;
}

/// Reads a fixed `char[N]` field (which C may have filled without a NUL).
pub(crate) fn read_field(src: &[c_char], name: &str) -> crate::Result<String> {
    let bytes: Vec<u8> = src.iter().take_while(|&&c| c != 0).map(|&c| c as u8).collect();
    if bytes.len() == src.len() {
        return Err(crate::Error::inval(format!("{name} is not NUL-terminated")));
    }
    String::from_utf8(bytes).map_err(|_| crate::Error::inval(format!("{name} is not valid UTF-8")))
}

/// Writes a result to `*out` (only on success) and returns 0.
pub(crate) fn put<T>(out: *mut T, v: T) -> c_int {
    // SAFETY: `out` was checked non-NULL by the caller (`check_out!`).
    unsafe { *out = v };
    0
}

/// Writes a new boxed handle to `*out` (only on success).
pub(crate) fn give<T>(out: *mut *mut T, v: T) -> c_int {
    put(out, Box::into_raw(Box::new(v)))
}
