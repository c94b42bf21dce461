//! The boundary macros. They wrap only function *bodies*, so cbindgen reads
//! ordinary `extern "C" fn` signatures.

/// Runs the body under `catch_unwind`; a panic is recorded as the thread's
/// last error and the function returns its type's [`PanicValue`].
macro_rules! ffi_boundary {
    ($($body:tt)*) => {{
        match ::std::panic::catch_unwind(::std::panic::AssertUnwindSafe(|| { $($body)* })) {
            Ok(v) => v,
            Err(p) => {
                $crate::ffi::error::record_panic(p);
                $crate::ffi::PanicValue::panic_value()
            }
        }
    }};
}

/// `try_ok!(expr)`: the value of an `Ok`, or records the error and returns
/// its negative code (as the function's return type).
macro_rules! try_ok {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(e) => return $crate::ffi::FromCode::from_code($crate::ffi::error::fail(e)),
        }
    };
}

/// `try_ref!(ptr, "name")`: `&T` from a non-NULL pointer, else `EINVAL`.
macro_rules! try_ref {
    ($p:expr, $name:expr) => {
        // SAFETY: handles and structs passed from C are valid or NULL, per
        // the documented contract; NULL is rejected here.
        match unsafe { ($p).as_ref() } {
            Some(r) => r,
            None => return $crate::ffi::FromCode::from_code($crate::ffi::error::null_arg($name)),
        }
    };
}

/// `try_mut!(ptr, "name")`: `&mut T` from a non-NULL pointer, else `EINVAL`.
macro_rules! try_mut {
    ($p:expr, $name:expr) => {
        // SAFETY: as for try_ref!, and the caller does not share the object
        // with another thread during the call (documented per handle).
        match unsafe { ($p).as_mut() } {
            Some(r) => r,
            None => return $crate::ffi::FromCode::from_code($crate::ffi::error::null_arg($name)),
        }
    };
}

/// `check_out!(out, "name")`: rejects a NULL out-parameter.
macro_rules! check_out {
    ($p:expr, $name:expr) => {
        if ($p).is_null() {
            return $crate::ffi::FromCode::from_code($crate::ffi::error::null_arg($name));
        }
    };
}
