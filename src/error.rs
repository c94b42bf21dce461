//! The one error type of the core, and the codes it maps to at the C boundary.
//!
//! Every failure carries a [`Code`] (which becomes a negative `SOCKFLOW_E…`
//! value in C), the OS errno when there is one, and a message that says what
//! failed and why, e.g. `bind 0.0.0.0:80: Permission denied`.

use std::fmt;
use std::io;

/// Defines [`Code`] from one table, so that every code has its value and
/// its `sockflow_strerror` text in one line and [`Code::ALL`] cannot miss
/// one. (The C names, `SOCKFLOW_E…` in `src/ffi/error.rs`, must be literal
/// constants for cbindgen, which expands no macros; a test there checks
/// they are exactly these values.)
macro_rules! codes {
    ($($(#[$doc:meta])* $name:ident = $value:literal, $text:literal;)*) => {
        /// What kind of failure happened. The discriminant is the negated C code.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum Code {
            $($(#[$doc])* $name = $value,)*
        }

        impl Code {
            /// Every code, in order (used by `sockflow_strerror` and the tests).
            pub const ALL: [Code; [$($value),*].len()] = [$(Code::$name),*];

            /// A short static description: the `sockflow_strerror` text.
            pub fn describe(self) -> &'static str {
                match self {
                    $(Code::$name => $text,)*
                }
            }
        }
    };
}

codes! {
    /// Invalid argument, including a NULL pointer.
    Inval = 1, "invalid argument";
    /// An address that is not a valid IPv4/IPv6 address or port.
    Addr = 2, "bad address";
    /// A host name could not be resolved.
    Resolve = 3, "name resolution failed";
    /// The address is already in use.
    AddrInUse = 4, "address already in use";
    /// Permission denied (e.g. binding a port below 1024).
    Access = 5, "permission denied";
    /// The peer refused the connection.
    Refused = 6, "connection refused";
    /// An operation did not finish within its timeout.
    TimedOut = 7, "timed out";
    /// The peer closed the connection.
    Closed = 8, "peer closed the connection";
    /// A message is longer than the frame or buffer allows.
    MsgSize = 9, "message too long";
    /// A non-blocking operation would block.
    WouldBlock = 10, "operation would block";
    /// The handle (connection, server) is closed or no longer exists.
    BadHandle = 11, "handle is closed";
    /// A panic inside sockflow was caught at the boundary.
    Panic = 12, "internal error (panic caught)";
    /// Another OS error; its errno is kept.
    Os = 13, "operating system error";
    /// The peer reset the connection.
    Reset = 14, "connection reset by peer";
    /// A bad command line.
    Usage = 15, "bad command line";
    /// `-h`/`--help` was given; usage was printed.
    Help = 16, "help requested";
    /// The object is busy: e.g. a server that is already running.
    Busy = 17, "busy (already running)";
    /// A TLS handshake or certificate verification failed, or the peer
    /// broke the TLS protocol; the message has the reason.
    Tls = 18, "TLS failure";
}

/// A failure: code, errno (0 if none) and a message naming what failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    pub code: Code,
    pub errno: i32,
    pub msg: String,
}

/// The core's result type.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// An error with a message and no errno.
    pub fn new(code: Code, msg: impl Into<String>) -> Error {
        Error { code, errno: 0, msg: msg.into() }
    }

    /// An `Inval` error.
    pub fn inval(msg: impl Into<String>) -> Error {
        Error::new(Code::Inval, msg)
    }

    /// Wraps an OS error: `what` says what failed (`"bind 0.0.0.0:80"`), the
    /// errno picks the code and supplies the reason.
    pub fn io(what: impl fmt::Display, e: &io::Error) -> Error {
        let errno = e.raw_os_error().unwrap_or(0);
        let code = match e.kind() {
            io::ErrorKind::AddrInUse => Code::AddrInUse,
            io::ErrorKind::PermissionDenied => Code::Access,
            io::ErrorKind::ConnectionRefused => Code::Refused,
            io::ErrorKind::ConnectionReset => Code::Reset,
            io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionAborted => Code::Closed,
            io::ErrorKind::TimedOut => Code::TimedOut,
            io::ErrorKind::WouldBlock => Code::WouldBlock,
            io::ErrorKind::AddrNotAvailable => Code::Addr,
            io::ErrorKind::InvalidInput => Code::Inval,
            _ if errno == libc::EMSGSIZE => Code::MsgSize,
            _ => Code::Os,
        };
        let why = if errno != 0 { nix::errno::Errno::from_raw(errno).desc().to_string() } else { e.to_string() };
        Error { code, errno, msg: format!("{what}: {why}") }
    }

    /// Like [`Error::io`] for a nix errno.
    pub fn errno(what: impl fmt::Display, e: nix::errno::Errno) -> Error {
        Error::io(what, &io::Error::from_raw_os_error(e as i32))
    }

    /// The same error with `what: ` put in front of its message.
    pub fn context(mut self, what: impl fmt::Display) -> Error {
        self.msg = format!("{what}: {}", self.msg);
        self
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.msg)
    }
}

impl std::error::Error for Error {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_distinct_positive_and_described() {
        for c in Code::ALL {
            assert!(c as i32 > 0);
            assert!(!c.describe().is_empty(), "{c:?} has no text");
        }
        let values: std::collections::BTreeSet<i32> = Code::ALL.iter().map(|&c| c as i32).collect();
        assert_eq!(values.len(), Code::ALL.len(), "two codes share a value");
    }

    #[test]
    fn io_errors_name_what_failed() {
        let e = Error::io("bind 0.0.0.0:80", &io::Error::from_raw_os_error(libc::EACCES));
        assert_eq!(e.code, Code::Access);
        assert_eq!(e.errno, libc::EACCES);
        assert_eq!(e.msg, "bind 0.0.0.0:80: Permission denied");
        let e = Error::io("bind", &io::Error::from_raw_os_error(libc::EADDRINUSE));
        assert_eq!(e.code, Code::AddrInUse);
    }
}
