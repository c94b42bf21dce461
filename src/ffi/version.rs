//! The library version.

use std::ffi::c_char;

/// The library's version, e.g. "0.2.0" (static; do not free). Compare with
/// the header's `SOCKFLOW_VERSION` to detect a header/library mismatch.
#[no_mangle]
pub extern "C" fn sockflow_version() -> *const c_char {
    ffi_boundary! {
        concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
    }
}
