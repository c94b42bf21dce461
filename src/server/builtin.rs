//! The tutorials' servers as ready-made handlers.

use super::{Action, CloseReason, Conn, Handler};
use std::io::Write;
use std::sync::Mutex;

/// The C TCP/UDP servers of the tutorial: prints `client ip = … port = …`
/// when a client connects (TCP, or a UDP peer) or before each datagram
/// (plain UDP), each message on its own line, and `client closed ip = …
/// port = … (reason)` when a client goes. Every line is flushed at once.
pub struct Print {
    out: Mutex<Box<dyn Write + Send>>,
}

impl Print {
    /// Prints to `out`.
    pub fn new(out: Box<dyn Write + Send>) -> Print {
        Print { out: Mutex::new(out) }
    }

    fn emit(&self, parts: &[&[u8]]) {
        let mut o = self.out.lock().unwrap_or_else(|p| p.into_inner());
        let _ = parts.iter().try_for_each(|p| o.write_all(p)).and_then(|_| o.write_all(b"\n")).and_then(|_| o.flush());
    }
}

/// `ip = 127.0.0.1 port = 5000`; for a local stream client `unix pid =
/// 4242 uid = 1000 gid = 1000`, for a local datagram sender `ip = unix
/// port = 3` (its number, as `sockflow_addr` has it).
fn who(c: &Conn<'_>) -> String {
    match (c.peer_cred(), crate::unix::sender(c.peer())) {
        (Some(u), _) => format!("unix pid = {} uid = {} gid = {}", u.pid, u.uid, u.gid),
        (None, Some(n)) => format!("ip = unix port = {n}"),
        (None, None) => format!("ip = {} port = {}", c.peer().ip(), c.peer().port()),
    }
}

impl Handler for Print {
    fn on_connect(&self, c: &mut Conn<'_>) -> Action {
        self.emit(&[b"client ", who(c).as_bytes()]);
        Action::Continue
    }

    fn on_message(&self, c: &mut Conn<'_>, msg: &[u8]) -> Action {
        if c.is_datagram() && !c.is_peer() {
            // One write under the lock: with several workers another
            // worker's pair must not come between the sender and its datagram.
            self.emit(&[b"client ", who(c).as_bytes(), b"\n", msg]);
        } else {
            self.emit(&[msg]);
        }
        Action::Continue
    }

    fn on_close(&self, c: &mut Conn<'_>, reason: CloseReason) {
        self.emit(&[format!("client closed {} ({})", who(c), reason.describe()).as_bytes()]);
    }
}

/// A handler whose reply to each message is that message mapped byte for
/// byte ([`Handler::mirror`]): same length, framing bytes (`\n`) mapped to
/// themselves, no state and no other effect per message. Its replies to
/// the complete messages of one read are then that read's bytes, mapped:
/// the loop maps them in its read buffer and sends them from there (or
/// copies them once behind replies already queued), as a hand-written echo
/// server sends a whole read back with one `send`, instead of a call and
/// a framed send per message. The loop still validates every message as it
/// would otherwise (maximum length, the quit word: it takes the per-message
/// path whenever either could apply) and counts each one in the stats.
pub type Mirror = fn(&mut [u8]);

/// The echo server: every message goes back to its sender.
pub struct Echo;

impl Handler for Echo {
    fn on_message(&self, c: &mut Conn<'_>, msg: &[u8]) -> Action {
        reply(c, msg)
    }

    fn mirror(&self) -> Option<Mirror> {
        Some(|_| {})
    }
}

/// The threaded server of the tutorial: greets `welcome`, answers
/// `Hello <msg>`, closes the connection on `exit`.
pub struct Hello;

impl Handler for Hello {
    fn on_connect(&self, c: &mut Conn<'_>) -> Action {
        reply(c, b"welcome")
    }

    fn on_message(&self, c: &mut Conn<'_>, msg: &[u8]) -> Action {
        if msg == b"exit" {
            return Action::Close;
        }
        let mut r = Vec::with_capacity(6 + msg.len());
        r.extend_from_slice(b"Hello ");
        r.extend_from_slice(msg);
        reply(c, &r)
    }
}

/// The UDP uppercase server: replies with the message in upper case (ASCII
/// letters only; other bytes, UTF-8 included, pass unchanged).
pub struct Upper;

impl Handler for Upper {
    fn on_message(&self, c: &mut Conn<'_>, msg: &[u8]) -> Action {
        reply(c, &msg.to_ascii_uppercase())
    }

    fn mirror(&self) -> Option<Mirror> {
        Some(<[u8]>::make_ascii_uppercase)
    }
}

/// Sends, and closes the connection when the reply cannot be framed (e.g.
/// "Hello " pushed a message over the frame's maximum).
fn reply(c: &mut Conn<'_>, msg: &[u8]) -> Action {
    match c.send(msg) {
        Ok(()) => Action::Continue,
        Err(_) if c.is_datagram() => Action::Continue,
        Err(_) => Action::Close,
    }
}
