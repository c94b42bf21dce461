//! The interactive flows: stdin clients and the two-way chat, one call each.

use super::args::{core_args, sockflow_args};
use super::server::report;
use super::stdio::CFile;
use crate::client::{self, End};
use crate::error::Error;
use std::ffi::c_int;
use std::os::fd::BorrowedFd;

type Flow = fn(&crate::args::Args, BorrowedFd<'_>, &mut dyn std::io::Write, &mut dyn std::io::Write) -> crate::Result<End>;

extern "C" {
    static mut stdin: *mut libc::FILE;
}

fn run(args: *const sockflow_args, input: *mut libc::FILE, output: *mut libc::FILE, flow: Flow) -> c_int {
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
    // A peer that closed cleanly was said on stderr already; it is no error.
    match flow(&a, fd, &mut out, &mut err) {
        Ok(End::Eof | End::Quit | End::PeerClosed) => 0,
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
///
/// Every reply received is printed before anything else is reported, even
/// when the connection then fails. How it ends (with
/// `sockflow_exit_code(rc)` as the exit status):
///
/// | what happened                                      | prints                            | returns  | exit |
/// |----------------------------------------------------|-----------------------------------|----------|------|
/// | input ended (EOF or quit word), server then closed | every reply                       | 0        | 0    |
/// | server closed cleanly (FIN) first                  | every reply, then a note on stderr| 0        | 0    |
/// | reset or another error                             | every reply, then `PROG: error`   | < 0      | 1    |
/// | bad command line (from `sockflow_args_parse`)      | usage on stderr                   | EUSAGE   | 2    |
#[no_mangle]
pub extern "C" fn sockflow_tcp_client_run(args: *const sockflow_args, r#in: *mut libc::FILE, out: *mut libc::FILE) -> c_int {
    ffi_boundary! {
        run(args, r#in, out, client::tcp_client)
    }
}

/// The tutorial's UDP client in one call: each input line is one datagram
/// (fixed frames padded), replies are printed as they arrive; with a timeout
/// in `args`, each line waits that long for its reply and says so on stderr
/// when none came. The quit word (sent) and EOF end it. Returns 0 (exit
/// 0) once the input ended; notes on stderr for replies that did not come.
/// If a datagram was refused (ICMP: no server listening on that port), it
/// goes on with the input, then returns `SOCKFLOW_EREFUSED` (exit 1);
/// another socket error ends it at once (exit 1); a bad command line is
/// exit 2. Every reply received is printed first.
#[no_mangle]
pub extern "C" fn sockflow_udp_client_run(args: *const sockflow_args, r#in: *mut libc::FILE, out: *mut libc::FILE) -> c_int {
    ffi_boundary! {
        run(args, r#in, out, client::udp_client)
    }
}

/// The chat server: listens on `args`, prints `PROG: listening on HOST port
/// N` to stderr, waits for one client, prints `client ip = … port = …
/// connected`, then both sides type whenever they like: lines from `in` are
/// sent, the client's lines are printed as `Client: …`. Ends on EOF, the
/// quit word, or when the client leaves; returns (and exits) as
/// `sockflow_tcp_client_run`: 0 when either side ended cleanly, a negative
/// code (exit 1) after every line received is printed on a reset or error.
#[no_mangle]
pub extern "C" fn sockflow_chat_server_run(args: *const sockflow_args, r#in: *mut libc::FILE, out: *mut libc::FILE) -> c_int {
    ffi_boundary! {
        run(args, r#in, out, client::chat_server)
    }
}

/// The chat client: connects to `args`, then both sides type whenever they
/// like; the server's lines are printed as `Server: …`. Ends on EOF, the
/// quit word, or when the server leaves; returns (and exits) as
/// `sockflow_tcp_client_run`: 0 when the server closed cleanly (noted on
/// stderr), a negative code (exit 1) after every line received is printed
/// on a reset or error.
#[no_mangle]
pub extern "C" fn sockflow_chat_client_run(args: *const sockflow_args, r#in: *mut libc::FILE, out: *mut libc::FILE) -> c_int {
    ffi_boundary! {
        run(args, r#in, out, client::chat_client)
    }
}
