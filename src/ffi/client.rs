//! The interactive flows: stdin clients and the two-way chat, one call each.

use super::args::{core_args, sockflow_args};
use super::server::report;
use super::stdio::CFile;
use crate::client::{self, End};
use crate::error::{Code, Error};
use std::ffi::c_int;
use std::os::fd::BorrowedFd;

type Flow = fn(&crate::args::Args, BorrowedFd<'_>, &mut dyn std::io::Write, &mut dyn std::io::Write) -> crate::Result<End>;

extern "C" {
    static mut stdin: *mut libc::FILE;
}

fn run(args: *const sockflow_args, input: *mut libc::FILE, output: *mut libc::FILE, flow: Flow, peer_close_is_error: bool) -> c_int {
    let a = match core_args(args) {
        Ok(a) => a,
        Err(e) => return report("sockflow", e),
    };
    // SAFETY: reading libc's global `stdin` pointer.
    let input = if input.is_null() { unsafe { stdin } } else { input };
    // SAFETY: a valid FILE* per contract; fileno does not take ownership.
    let fd = unsafe { libc::fileno(input) };
    if fd < 0 {
        return report(&a.prog, Error::inval("input has no file descriptor"));
    }
    // SAFETY: the FILE (and so its descriptor) stays open for the whole call.
    let fd = unsafe { BorrowedFd::borrow_raw(fd) };
    let mut out = CFile::or_stdout(output);
    let mut err = CFile::stderr();
    match flow(&a, fd, &mut out, &mut err) {
        Ok(End::PeerClosed) if peer_close_is_error => super::error::fail(Error::new(Code::Closed, "the server closed the connection")),
        Ok(_) => 0,
        Err(e) => report(&a.prog, e),
    }
}

/// The tutorial's TCP client in one call: connects to the host and port of
/// `args`, reads `in` line by line (any length up to the frame's maximum;
/// a longer line is refused with a message on stderr, never split), strips
/// the newline, sends each line framed, and prints every reply to `out` as it
/// arrives, one per line, even while the user is typing. The quit word is
/// sent, then ends the input; so does EOF. It then half-closes and prints
/// the replies still coming until the server closes or is quiet for the
/// timeout (default 1 s). `in`/`out` NULL mean stdin/stdout; `in` is read
/// through its descriptor, so do not read it with stdio before.
/// Returns 0, `SOCKFLOW_ECLOSED` if the server closed first (said on
/// stderr), or a negative code after printing `PROG: what failed: why`.
#[no_mangle]
pub extern "C" fn sockflow_tcp_client_run(args: *const sockflow_args, r#in: *mut libc::FILE, out: *mut libc::FILE) -> c_int {
    ffi_boundary! { run(args, r#in, out, client::tcp_client, true) }
}

/// The tutorial's UDP client in one call: each input line is one datagram
/// (fixed frames padded), replies are printed as they arrive; with a timeout
/// in `args`, each line waits that long for its reply and says so on stderr
/// when none came. The quit word (sent) and EOF end it. As `sockflow_tcp_client_run`.
#[no_mangle]
pub extern "C" fn sockflow_udp_client_run(args: *const sockflow_args, r#in: *mut libc::FILE, out: *mut libc::FILE) -> c_int {
    ffi_boundary! { run(args, r#in, out, client::udp_client, false) }
}

/// The chat server: listens on `args`, prints `PROG: listening on HOST port
/// N` to stderr, waits for one client, prints `client ip = … port = …
/// connected`, then both sides type whenever they like: lines from `in` are
/// sent, the client's lines are printed as `Client: …`. Ends on EOF, the
/// quit word, or when the client leaves; returns 0 or a negative code.
#[no_mangle]
pub extern "C" fn sockflow_chat_server_run(args: *const sockflow_args, r#in: *mut libc::FILE, out: *mut libc::FILE) -> c_int {
    ffi_boundary! { run(args, r#in, out, client::chat_server, false) }
}

/// The chat client: connects to `args`, then both sides type whenever they
/// like; the server's lines are printed as `Server: …`. Ends on EOF, the
/// quit word, or when the server leaves; returns 0 or a negative code.
#[no_mangle]
pub extern "C" fn sockflow_chat_client_run(args: *const sockflow_args, r#in: *mut libc::FILE, out: *mut libc::FILE) -> c_int {
    ffi_boundary! { run(args, r#in, out, client::chat_client, false) }
}
