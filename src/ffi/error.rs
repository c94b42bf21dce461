//! Error codes, `sockflow_strerror`, and the thread-local last error.

use crate::error::{Code, Error};
use std::cell::RefCell;
use std::ffi::{c_char, c_int, CString};
use std::sync::OnceLock;

/// Success.
pub const SOCKFLOW_OK: c_int = 0;
/// Invalid argument, including a NULL pointer.
pub const SOCKFLOW_EINVAL: c_int = -1;
/// Not a valid address or port.
pub const SOCKFLOW_EADDR: c_int = -2;
/// Host name resolution failed.
pub const SOCKFLOW_ERESOLVE: c_int = -3;
/// Address already in use.
pub const SOCKFLOW_EADDRINUSE: c_int = -4;
/// Permission denied.
pub const SOCKFLOW_EACCES: c_int = -5;
/// Connection refused.
pub const SOCKFLOW_ECONNREFUSED: c_int = -6;
/// Timed out.
pub const SOCKFLOW_ETIMEDOUT: c_int = -7;
/// The peer closed the connection.
pub const SOCKFLOW_ECLOSED: c_int = -8;
/// Message too long (for the frame, the buffer, or a datagram truncated).
pub const SOCKFLOW_EMSGSIZE: c_int = -9;
/// The operation would block.
pub const SOCKFLOW_EAGAIN: c_int = -10;
/// The handle is closed or the connection no longer exists.
pub const SOCKFLOW_EBADHANDLE: c_int = -11;
/// A panic inside sockflow was caught; the library state is still sound.
pub const SOCKFLOW_EPANIC: c_int = -12;
/// Another OS error: `sockflow_last_errno()` gives the errno.
pub const SOCKFLOW_EOS: c_int = -13;
/// The peer reset the connection.
pub const SOCKFLOW_ECONNRESET: c_int = -14;
/// Bad command line (a usage line was printed unless quiet).
pub const SOCKFLOW_EUSAGE: c_int = -15;
/// `-h`/`--help` was given and help was printed: exit with status 0.
pub const SOCKFLOW_EHELP: c_int = -16;
/// The object is busy: `sockflow_server_run` on a server already running.
pub const SOCKFLOW_EBUSY: c_int = -17;
/// A TLS handshake or certificate verification failed, or the peer broke
/// the TLS protocol (the message has the reason, e.g. `tls handshake with
/// 127.0.0.1:5000: invalid peer certificate: UnknownIssuer`).
pub const SOCKFLOW_ETLS: c_int = -18;

/// The negative value C sees for a core [`Code`].
pub fn code_value(c: Code) -> c_int {
    -(c as c_int)
}

/// The core [`Code`] of a negative C value, if it is one of ours.
pub fn code_of(rc: c_int) -> Option<Code> {
    Code::ALL.iter().copied().find(|&c| code_value(c) == rc)
}

/// The `sockflow_strerror` texts, NUL-terminated, in `Code::ALL` order:
/// made once from the core's table (which holds plain `str`s, as the core
/// knows nothing of C).
fn texts() -> &'static [CString] {
    static TEXTS: OnceLock<Vec<CString>> = OnceLock::new();
    TEXTS.get_or_init(|| Code::ALL.iter().map(|c| CString::new(c.describe()).unwrap_or_default()).collect())
}

struct Last {
    code: c_int,
    errno: c_int,
    msg: Vec<u8>,
}

thread_local! {
    static LAST: RefCell<Last> = const { RefCell::new(Last { code: 0, errno: 0, msg: Vec::new() }) };
}

/// Records `e` as this thread's last error and returns its negative code.
pub(crate) fn fail(e: Error) -> c_int {
    let code = code_value(e.code);
    LAST.with(|l| {
        let mut l = l.borrow_mut();
        l.code = code;
        l.errno = e.errno;
        l.msg = e.msg.into_bytes();
        l.msg.retain(|&b| b != 0);
    });
    code
}

/// Records "NAME is NULL" and returns `SOCKFLOW_EINVAL`.
pub(crate) fn null_arg(name: &str) -> c_int {
    fail(Error::inval(format!("{name} is NULL")))
}

/// Records a caught panic.
pub(crate) fn record_panic(p: Box<dyn std::any::Any + Send>) {
    let what = p
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into());
    fail(Error::new(Code::Panic, format!("internal error (panic caught): {what}")));
}

/// `0` for `Ok`, else records the error and returns its code.
pub(crate) fn rc(r: crate::Result<()>) -> c_int {
    match r {
        Ok(()) => 0,
        Err(e) => fail(e),
    }
}

/// A static, NUL-terminated description of `code` (any int is accepted;
/// unknown codes get "unknown error", 0 gets "success"). Never NULL; do not free.
#[no_mangle]
pub extern "C" fn sockflow_strerror(code: c_int) -> *const c_char {
    ffi_boundary! {
        match code {
            0 => c"success".as_ptr(),
            _ => match Code::ALL.iter().position(|&c| code_value(c) == code) {
                Some(i) => texts()[i].as_ptr(),
                None => c"unknown error".as_ptr(),
            },
        }
    }
}

/// Copies this thread's last error message (what failed and why, e.g.
/// `bind 0.0.0.0:80: Permission denied`) into `buf`, snprintf-style: at most
/// `len - 1` bytes and always a NUL when `len > 0`. Returns the message's full
/// length, so a return `>= len` means it was cut. `buf` may be NULL when
/// `len` is 0. Any `len` works, `SIZE_MAX` too: no more than the message and
/// its NUL is ever written. The message stays until the next failure on
/// this thread; successful calls do not clear it.
#[no_mangle]
pub extern "C" fn sockflow_last_error(buf: *mut c_char, len: usize) -> usize {
    ffi_boundary! {
        LAST.with(|l| {
            let l = l.borrow();
            // Only the message and its NUL are written, so a larger `len`
            // (SIZE_MAX: "big enough") is cut to that before making a slice.
            let len = len.min(l.msg.len() + 1);
            match super::buf_arg(buf.cast(), len, "buf") {
                Ok(dst) => super::copy_cstr(&l.msg, dst),
                Err(_) => l.msg.len(),
            }
        })
    }
}

/// This thread's last error code (0 if nothing failed yet).
#[no_mangle]
pub extern "C" fn sockflow_last_error_code() -> c_int {
    ffi_boundary! {
        LAST.with(|l| l.borrow().code)
    }
}

/// The errno behind this thread's last error (0 when it was not an OS error).
#[no_mangle]
pub extern "C" fn sockflow_last_errno() -> c_int {
    ffi_boundary! {
        LAST.with(|l| l.borrow().errno)
    }
}

/// A process exit status for a sockflow return code: 0 for success (`rc >= 0`)
/// and for `SOCKFLOW_EHELP`, 2 for `SOCKFLOW_EUSAGE` (and the address errors
/// of a command line), 1 for any other error.
#[no_mangle]
pub extern "C" fn sockflow_exit_code(rc: c_int) -> c_int {
    ffi_boundary! {
        match rc {
            r if r >= 0 || r == SOCKFLOW_EHELP => 0,
            SOCKFLOW_EUSAGE => 2,
            _ => 1,
        }
    }
}

/// perror for sockflow: prints `PREFIX: <this thread's last error message>`
/// (just the message when `prefix` is NULL or empty) and a newline to
/// stderr, then returns `sockflow_exit_code(rc)`, so a program can end with
/// `return sockflow_perror(args.prog, rc);`.
#[no_mangle]
pub extern "C" fn sockflow_perror(prefix: *const c_char, rc: c_int) -> c_int {
    ffi_boundary! {
        use std::io::Write;
        let prefix = if prefix.is_null() {
            String::new()
        } else {
            // SAFETY: non-NULL and NUL-terminated by contract.
            unsafe { std::ffi::CStr::from_ptr(prefix) }.to_string_lossy().into_owned()
        };
        let msg = LAST.with(|l| String::from_utf8_lossy(&l.borrow().msg).into_owned());
        let mut err = super::stdio::CFile::stderr();
        let _ = if prefix.is_empty() { writeln!(err, "{msg}") } else { writeln!(err, "{prefix}: {msg}") };
        sockflow_exit_code(rc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `SOCKFLOW_E…` constants are literal (cbindgen needs them so):
    /// the header cbindgen made from them must hold exactly the values of
    /// `Code::ALL`, each with its own strerror text.
    #[test]
    fn header_codes_are_the_core_codes() {
        let header = std::fs::read_to_string(env!("SOCKFLOW_GENERATED_HEADER")).unwrap();
        let mut defined: Vec<c_int> = header
            .lines()
            .filter_map(|l| l.strip_prefix("#define SOCKFLOW_E"))
            .filter_map(|l| l.split_whitespace().nth(1)?.parse().ok())
            .collect();
        defined.sort_unstable_by(|a, b| b.cmp(a));
        let core: Vec<c_int> = Code::ALL.iter().map(|&c| code_value(c)).collect();
        assert_eq!(defined, core);
        for c in Code::ALL {
            // SAFETY: sockflow_strerror returns a static C string.
            let text = unsafe { std::ffi::CStr::from_ptr(sockflow_strerror(code_value(c))) };
            assert_eq!(text.to_str(), Ok(c.describe()));
            assert_eq!(code_of(code_value(c)), Some(c));
            assert_ne!(text, c"unknown error");
        }
    }

    #[test]
    fn last_error_is_snprintf_like() {
        fail(Error::inval("abcdef"));
        let mut buf = [0x55 as c_char; 4];
        assert_eq!(sockflow_last_error(buf.as_mut_ptr(), 4), 6);
        assert_eq!(buf, [b'a' as c_char, b'b' as c_char, b'c' as c_char, 0]);
        assert_eq!(sockflow_last_error(std::ptr::null_mut(), 0), 6);
        assert_eq!(sockflow_last_error_code(), SOCKFLOW_EINVAL);
    }

    #[test]
    fn panics_become_codes() {
        let r: c_int = ffi_boundary! {
            panic!("boom")
        };
        assert_eq!(r, SOCKFLOW_EPANIC);
        let mut buf = [0 as c_char; 64];
        sockflow_last_error(buf.as_mut_ptr(), 64);
        let s = unsafe { std::ffi::CStr::from_ptr(buf.as_ptr()) };
        assert!(s.to_str().unwrap().contains("boom"));
        // Functions returning a pointer give NULL.
        let p: *mut u8 = ffi_boundary! {
            panic!("boom {}", 2)
        };
        assert!(p.is_null());
    }
}
