//! This thread's last sockflow error message, read through the C call
//! (`sockflow_last_error`) as a C program reads it: asked for its length
//! first, then copied whole (the copy must report the same length).

use sockflow::ffi::error::sockflow_last_error;
use std::ffi::{c_char, CStr};

pub fn last_error() -> String {
    let n = sockflow_last_error(std::ptr::null_mut(), 0);
    let mut buf = vec![0 as c_char; n + 1];
    assert_eq!(sockflow_last_error(buf.as_mut_ptr(), buf.len()), n, "the message changed between two reads");
    // SAFETY: NUL-terminated by sockflow_last_error (buf holds n + 1 bytes).
    unsafe { CStr::from_ptr(buf.as_ptr()) }.to_string_lossy().into_owned()
}
