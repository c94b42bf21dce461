//! C enums arrive as plain `int`s: a C caller may store any value in an enum
//! field or return one from a callback, and turning an unknown value
//! straight into a Rust enum would be undefined behaviour. [`CEnum`] gives
//! each C-facing enum one checked conversion, derived from its variant list
//! by [`c_enum!`], which also makes the compiler refuse a list that misses
//! a variant.

use std::ffi::c_int;

use crate::error::Error;

/// A `#[repr(C)]` enum seen by C.
pub(crate) trait CEnum: Copy + 'static {
    /// Every variant (checked exhaustive by [`c_enum!`]).
    const ALL: &'static [Self];
    /// The C type's name, for messages.
    const C_NAME: &'static str;
    /// The value C sees.
    fn value(self) -> c_int;

    /// The variant for a C value, or `None`.
    fn from_c(v: c_int) -> Option<Self> {
        Self::ALL.iter().copied().find(|e| e.value() == v)
    }

    /// The variant for a C value, or `SOCKFLOW_EINVAL` naming `what`.
    fn arg(v: c_int, what: &str) -> crate::Result<Self> {
        Self::from_c(v).ok_or_else(|| Error::inval(format!("{what} {v} is not a {}", Self::C_NAME)))
    }
}

/// `c_enum!(Type, "c_name": A, B, C)`: implements [`CEnum`]. The match
/// below fails to compile when the list misses a variant, so the list and
/// the enum cannot drift apart.
macro_rules! c_enum {
    ($t:ident, $name:literal: $($v:ident),+ $(,)?) => {
        impl $crate::ffi::cenum::CEnum for $t {
            const ALL: &'static [$t] = &[$($t::$v),+];
            const C_NAME: &'static str = $name;
            fn value(self) -> ::std::ffi::c_int {
                self as ::std::ffi::c_int
            }
        }
        const _: fn($t) = |e| match e {
            $($t::$v)|+ => {}
        };
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::{Action, CloseMode, CloseReason, Mode};

    fn round_trips<E: CEnum + PartialEq + std::fmt::Debug>() {
        for &e in E::ALL {
            assert_eq!(E::from_c(e.value()), Some(e), "{}", E::C_NAME);
        }
        let mut values: Vec<c_int> = E::ALL.iter().map(|e| e.value()).collect();
        values.sort();
        values.dedup();
        assert_eq!(values.len(), E::ALL.len(), "{}: two variants share a value", E::C_NAME);
        assert!(E::from_c(12345).is_none());
        assert!(E::arg(12345, "x").unwrap_err().msg.contains(E::C_NAME));
    }

    #[test]
    fn every_c_enum_round_trips() {
        round_trips::<Action>();
        round_trips::<CloseReason>();
        round_trips::<Mode>();
        round_trips::<CloseMode>();
        round_trips::<super::super::args::sockflow_frame>();
        round_trips::<super::super::args::sockflow_role>();
        round_trips::<super::super::args::sockflow_family>();
        round_trips::<super::super::handler::sockflow_builtin>();
    }
}
