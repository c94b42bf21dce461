//! Interactive sessions: the tutorials' stdin clients and the two-way chat.
//!
//! One loop polls the input and the socket together, so replies are printed
//! while the user is still typing and neither side can deadlock the other
//! (the tutorial's lock-step chat hangs on an empty line). Lines are read
//! through the same line decoder as the network: no 32-byte limit, a line
//! over the frame's maximum is refused with a message, never split.

use crate::error::{Code, Error, Result};
use crate::frame::{Decoder, Flow, Frame};
use crate::net;
use crate::tcp::Stream;
use crate::udp::Udp;
use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{self, MsgFlags};
use std::io::Write;
use std::os::fd::{AsFd, BorrowedFd};
use std::time::{Duration, Instant};

/// Longest stdin line sent on a `raw` frame (other frames have their own maximum).
pub const RAW_LINE_MAX: usize = 1 << 20;

/// How a session ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    /// The input ended (EOF).
    Eof,
    /// The user typed the quit word (it was sent first).
    Quit,
    /// The peer closed the connection while the input was still open.
    PeerClosed,
}

/// Session settings.
#[derive(Clone, Debug)]
pub struct Options {
    /// A line equal to this is sent, then ends the input. Empty = none.
    pub quit: String,
    /// Printed before each received message (`"Server: "` in the chat).
    pub prefix: String,
    /// After the input ends, how long to keep printing replies once the
    /// peer goes quiet.
    pub drain: Duration,
    /// UDP: after each line, wait this long for a reply before reading on.
    pub reply_timeout: Option<Duration>,
    /// Program name for messages on `err`.
    pub name: String,
}

impl Options {
    /// Settings from parsed arguments: their quit word and name; the timeout
    /// (if any) is the drain time and, for UDP, the per-line reply wait.
    pub fn from_args(a: &crate::args::Args) -> Options {
        Options {
            quit: a.quit.clone(),
            prefix: String::new(),
            drain: a.timeout().unwrap_or(Duration::from_millis(1000)),
            reply_timeout: a.timeout(),
            name: a.prog.clone(),
        }
    }
}

/// The socket side of a session.
pub enum Link<'a> {
    Tcp(&'a mut Stream),
    Udp(&'a Udp),
}

struct Io<'a> {
    out: &'a mut dyn Write,
    err: &'a mut dyn Write,
    opts: &'a Options,
}

impl Io<'_> {
    fn print(&mut self, msg: &[u8]) {
        let o = &mut self.out;
        let _ = o
            .write_all(self.opts.prefix.as_bytes())
            .and_then(|_| o.write_all(msg))
            .and_then(|_| o.write_all(b"\n"))
            .and_then(|_| o.flush());
    }

    fn note(&mut self, text: std::fmt::Arguments<'_>) {
        let _ = writeln!(self.err, "{}: {}", self.opts.name, text);
        let _ = self.err.flush();
    }
}

/// The frame's longest message, for stdin lines.
fn line_max(frame: Frame) -> usize {
    match frame {
        Frame::Raw { .. } => RAW_LINE_MAX,
        f => f.max_len(),
    }
}

fn poll_fds(fds: &mut [PollFd<'_>], timeout: Option<Duration>) -> Result<()> {
    let t = match timeout {
        None => PollTimeout::NONE,
        Some(d) => PollTimeout::try_from(d.as_millis().min(i32::MAX as u128) as i32).unwrap_or(PollTimeout::MAX),
    };
    match poll(fds, t) {
        Ok(_) | Err(Errno::EINTR) => Ok(()),
        Err(e) => Err(Error::errno("poll", e)),
    }
}

fn read_fd(fd: BorrowedFd<'_>, buf: &mut [u8]) -> Result<Option<usize>> {
    loop {
        match nix::unistd::read(fd, buf) {
            Ok(n) => return Ok(Some(n)),
            Err(Errno::EINTR) => continue,
            Err(Errno::EAGAIN) => return Ok(None),
            Err(e) => return Err(Error::errno("read input", e)),
        }
    }
}

/// Runs a session until the input ends (then drains replies) or the peer
/// closes. `input` is read raw (not through stdio buffers).
pub fn run(link: Link<'_>, input: BorrowedFd<'_>, out: &mut dyn Write, err: &mut dyn Write, opts: &Options) -> Result<End> {
    let mut io = Io { out, err, opts };
    match link {
        Link::Tcp(s) => tcp_session(s, input, &mut io),
        Link::Udp(u) => udp_session(u, input, &mut io),
    }
}

type LineFn<'f> = dyn FnMut(&[u8], &mut Io<'_>) -> Result<Flow> + 'f;

/// Feeds `data` to the line decoder (None: the input ended, so a last line
/// without its newline counts), calling `f` per line; true if `f` stopped.
fn feed_lines(lines: &mut Decoder, data: Option<&[u8]>, io: &mut Io<'_>, f: &mut LineFn<'_>) -> Result<bool> {
    let mut failure = None;
    let mut stop = false;
    let mut data = data;
    loop {
        let mut each = |line: &[u8], _| match f(line, io) {
            Ok(Flow::Continue) => Flow::Continue,
            Ok(Flow::Stop) => {
                stop = true;
                Flow::Stop
            }
            Err(e) => {
                failure = Some(e);
                stop = true;
                Flow::Stop
            }
        };
        let r = match data {
            Some(d) => lines.feed(d, &mut each),
            None => lines.finish(&mut each),
        };
        data = data.map(|_| &[][..]);
        match r {
            Ok(_) => break,
            Err(_) => {
                let max = lines.frame().max_len();
                io.note(format_args!("line not sent: longer than {max} bytes, the most one message may carry"));
            }
        }
    }
    match failure {
        Some(e) => Err(e),
        None => Ok(stop),
    }
}

/// Hands input lines to `f`: first any already buffered, then one read's
/// worth; on EOF a last line without its newline too. False once the input
/// is exhausted.
fn input_lines(input: BorrowedFd<'_>, lines: &mut Decoder, buf: &mut [u8], io: &mut Io<'_>, f: &mut LineFn<'_>) -> Result<bool> {
    if feed_lines(lines, Some(&[]), io, f)? {
        return Ok(true);
    }
    let Some(n) = read_fd(input, buf)? else { return Ok(true) };
    if n == 0 {
        feed_lines(lines, None, io, f)?;
        return Ok(false);
    }
    feed_lines(lines, Some(&buf[..n]), io, f)?;
    Ok(true)
}

fn tcp_session(s: &mut Stream, input: BorrowedFd<'_>, io: &mut Io<'_>) -> Result<End> {
    let frame = s.frame();
    let mut lines = Decoder::new(Frame::Line { max: line_max(frame) });
    let mut replies = Decoder::new(frame);
    let mut inbuf = vec![0u8; 64 * 1024];
    let mut netbuf = vec![0u8; crate::tcp::READ_CHUNK];
    let mut pending: Vec<u8> = Vec::new();
    let mut input_open = true;
    let mut end = End::Eof;
    let mut quiet_since = Instant::now();
    let sock = s.fd();
    loop {
        if !input_open && pending.is_empty() {
            let left = io.opts.drain.saturating_sub(quiet_since.elapsed());
            if left.is_zero() {
                return Ok(end);
            }
        }
        let mut fds =
            vec![PollFd::new(s.as_fd(), PollFlags::POLLIN | if pending.is_empty() { PollFlags::empty() } else { PollFlags::POLLOUT })];
        if input_open && pending.is_empty() {
            fds.push(PollFd::new(input, PollFlags::POLLIN));
        }
        let timeout = if input_open || !pending.is_empty() { None } else { Some(io.opts.drain.saturating_sub(quiet_since.elapsed())) };
        poll_fds(&mut fds, timeout)?;
        let sock_ev = fds[0].revents().unwrap_or(PollFlags::empty());
        let in_ev = fds.get(1).and_then(|f| f.revents()).unwrap_or(PollFlags::empty());
        if sock_ev.intersects(PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR) {
            match socket::recv(sock, &mut netbuf, MsgFlags::MSG_DONTWAIT) {
                Ok(0) => {
                    // The server's last line may lack its newline.
                    if let Err(e) = replies.finish(&mut |m, _| {
                        io.print(m);
                        Flow::Continue
                    }) {
                        io.note(format_args!("{e}"));
                    }
                    if input_open {
                        io.note(format_args!("{} closed the connection", net::show(&s.peer())));
                        return Ok(End::PeerClosed);
                    }
                    return Ok(end);
                }
                Ok(n) => {
                    quiet_since = Instant::now();
                    let mut data = &netbuf[..n];
                    loop {
                        let r = replies.feed(data, &mut |m, _| {
                            io.print(m);
                            Flow::Continue
                        });
                        data = &[];
                        match r {
                            Ok(_) => break,
                            Err(e) => io.note(format_args!("{e}")),
                        }
                    }
                }
                Err(Errno::EAGAIN) | Err(Errno::EINTR) => {}
                Err(e) => return Err(Error::errno(format!("recv from {}", net::show(&s.peer())), e)),
            }
        }
        if !pending.is_empty() && sock_ev.contains(PollFlags::POLLOUT) {
            match socket::send(sock, &pending, MsgFlags::MSG_NOSIGNAL | MsgFlags::MSG_DONTWAIT) {
                Ok(n) => {
                    pending.drain(..n);
                }
                Err(Errno::EAGAIN) | Err(Errno::EINTR) => {}
                Err(e) => return Err(Error::errno(format!("send to {}", net::show(&s.peer())), e)),
            }
            if pending.is_empty() && !input_open {
                let _ = s.shutdown_write();
                quiet_since = Instant::now();
            }
        }
        if input_open && pending.is_empty() && in_ev.intersects(PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR) {
            let quit = io.opts.quit.as_bytes().to_vec();
            let mut quit_seen = false;
            let more = input_lines(input, &mut lines, &mut inbuf, io, &mut |line, io| {
                if frame_is_raw(frame) && line.is_empty() {
                    return Ok(Flow::Continue); // nothing to send in a raw stream
                }
                if let Err(e) = frame.encode(line, &mut pending) {
                    io.note(format_args!("line not sent: {e}"));
                    return Ok(Flow::Continue);
                }
                if !quit.is_empty() && line == &quit[..] {
                    quit_seen = true;
                    return Ok(Flow::Stop);
                }
                Ok(Flow::Continue)
            })?;
            if quit_seen {
                end = End::Quit;
            }
            if quit_seen || !more {
                input_open = false;
                quiet_since = Instant::now();
                if pending.is_empty() {
                    let _ = s.shutdown_write();
                }
            }
        }
    }
}

fn frame_is_raw(f: Frame) -> bool {
    matches!(f, Frame::Raw { .. })
}

fn udp_session(u: &Udp, input: BorrowedFd<'_>, io: &mut Io<'_>) -> Result<End> {
    let mut lines = Decoder::new(Frame::Line { max: line_max(u.frame()).min(crate::udp::MAX_DATAGRAM) });
    let mut inbuf = vec![0u8; 64 * 1024];
    let mut netbuf = vec![0u8; 65536];
    let mut input_open = true;
    let mut end = End::Eof;
    let mut quiet_since = Instant::now();
    let mut awaiting: Option<Instant> = None;
    let ufd = u.as_fd();
    loop {
        if let Some(deadline) = awaiting {
            if Instant::now() >= deadline {
                io.note(format_args!("no reply within {} ms", io.opts.reply_timeout.unwrap_or_default().as_millis()));
                awaiting = None;
            }
        }
        if !input_open && awaiting.is_none() && quiet_since.elapsed() >= io.opts.drain {
            return Ok(end);
        }
        let read_input = input_open && awaiting.is_none();
        let mut fds = vec![PollFd::new(ufd, PollFlags::POLLIN)];
        if read_input {
            fds.push(PollFd::new(input, PollFlags::POLLIN));
        }
        let timeout = match awaiting {
            Some(d) => Some(d.saturating_duration_since(Instant::now())),
            None if input_open => None,
            None => Some(io.opts.drain.saturating_sub(quiet_since.elapsed())),
        };
        poll_fds(&mut fds, timeout)?;
        let sock_ev = fds[0].revents().unwrap_or(PollFlags::empty());
        let in_ev = fds.get(1).and_then(|f| f.revents()).unwrap_or(PollFlags::empty());
        if sock_ev.intersects(PollFlags::POLLIN | PollFlags::POLLERR) {
            match u.recv_from(&mut netbuf) {
                Ok((n, _)) => {
                    quiet_since = Instant::now();
                    awaiting = None;
                    io.print(u.msg_of(&netbuf[..n]));
                }
                Err(e) if e.code == Code::Refused => {
                    io.note(format_args!("no server is listening (connection refused)"));
                    awaiting = None;
                }
                Err(e) if e.code == Code::TimedOut => {}
                Err(e) => io.note(format_args!("{e}")),
            }
        }
        if read_input && in_ev.intersects(PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR) {
            let quit = io.opts.quit.clone();
            let wait = io.opts.reply_timeout;
            let mut quit_seen = false;
            let more = input_lines(input, &mut lines, &mut inbuf, io, &mut |line, io| {
                match u.send_msg(line, None) {
                    Ok(()) => {}
                    Err(e) if e.code == Code::Refused => io.note(format_args!("no server is listening (connection refused)")),
                    Err(e) => io.note(format_args!("line not sent: {e}")),
                }
                if !quit.is_empty() && line == quit.as_bytes() {
                    quit_seen = true;
                    return Ok(Flow::Stop);
                }
                if let Some(w) = wait {
                    awaiting = Some(Instant::now() + w);
                    // One line at a time: the rest waits for the reply.
                    return Ok(Flow::Stop);
                }
                Ok(Flow::Continue)
            })?;
            if quit_seen {
                end = End::Quit;
                input_open = false;
            } else if !more && awaiting.is_none() {
                input_open = false;
            }
            quiet_since = Instant::now();
        }
    }
}

/// The tutorial's TCP client: connect, send each input line, print replies.
pub fn tcp_client(a: &crate::args::Args, input: BorrowedFd<'_>, out: &mut dyn Write, err: &mut dyn Write) -> Result<End> {
    let mut s = Stream::from_args(a)?;
    run(Link::Tcp(&mut s), input, out, err, &Options::from_args(a))
}

/// The tutorial's UDP client: each input line is one datagram; replies are
/// printed (with `--timeout`, each line waits that long for its reply).
pub fn udp_client(a: &crate::args::Args, input: BorrowedFd<'_>, out: &mut dyn Write, err: &mut dyn Write) -> Result<End> {
    let u = Udp::connect_args(a)?;
    run(Link::Udp(&u), input, out, err, &Options::from_args(a))
}

/// The chat server: waits for one client, then both sides type freely; the
/// client's lines are printed as `Client: …`.
pub fn chat_server(a: &crate::args::Args, input: BorrowedFd<'_>, out: &mut dyn Write, err: &mut dyn Write) -> Result<End> {
    let l = crate::tcp::Listener::from_args(a, 1)?;
    let local = l.local_addr();
    let _ = writeln!(err, "{}: listening on {} port {}", a.prog, local.ip(), local.port());
    let _ = err.flush();
    let mut s = l.accept(None)?;
    drop(l);
    s.set_frame(a.frame);
    let _ = writeln!(out, "client ip = {} port = {} connected", s.peer().ip(), s.peer().port());
    let _ = out.flush();
    let opts = Options { prefix: "Client: ".into(), ..Options::from_args(a) };
    run(Link::Tcp(&mut s), input, out, err, &opts)
}

/// The chat client: both sides type freely; the server's lines are printed
/// as `Server: …`.
pub fn chat_client(a: &crate::args::Args, input: BorrowedFd<'_>, out: &mut dyn Write, err: &mut dyn Write) -> Result<End> {
    let mut s = Stream::from_args(a)?;
    let opts = Options { prefix: "Server: ".into(), ..Options::from_args(a) };
    run(Link::Tcp(&mut s), input, out, err, &opts)
}
