//! Interactive sessions: the tutorials' stdin clients and the two-way chat.
//!
//! One loop polls the input and the socket together, so replies are printed
//! while the user is still typing and neither side can deadlock the other
//! (the tutorial's lock-step chat hangs on an empty line). Lines are read
//! through the same line decoder as the network: no 32-byte limit, a line
//! over the frame's maximum is refused with a message, never split.
//!
//! Nothing received is lost to an error: the socket is read whenever it is
//! readable (POLLIN, POLLHUP or POLLERR: data first, errors after), until
//! EAGAIN, and a failed send does not end the session but stops sending
//! and reads the socket to its end; at end of stream or a reset the decoder
//! gives up what it still holds (a last line without its newline). Linux
//! keeps every byte that reached our receive queue before a reset readable
//! and reports the reset only after it (measured: a 113 KiB queue read
//! whole, then ECONNRESET); what the peer's kernel had not transmitted yet
//! dies with the reset on its side, which no reader can recover. How a session ends maps to the exit status scripts rely
//! on (see `sockflow_tcp_client_run`): [`End`] is status 0 (a peer that
//! closed first is noted on stderr), an error is 1.

use crate::error::{Code, Error, Result};
use crate::frame::{Decoder, Ending, Flow, Frame, Quit};
use crate::net;
use crate::tcp::Stream;
use crate::udp::Udp;
use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
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
    /// The peer closed the connection cleanly (FIN) while the input was
    /// still open; said on stderr. Not an error: every reply was printed.
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
    /// Prints one message, unflushed: the caller flushes once per batch
    /// (all the replies one socket read brought), so a stream of replies
    /// costs one `write(2)` per read, not one per line, while each batch
    /// still shows at once.
    fn print(&mut self, msg: &[u8]) {
        let o = &mut self.out;
        let _ = o.write_all(self.opts.prefix.as_bytes()).and_then(|_| o.write_all(msg)).and_then(|_| o.write_all(b"\n"));
    }

    fn flush(&mut self) {
        let _ = self.out.flush();
    }

    /// A note on stderr, after what was printed before it.
    fn note(&mut self, text: std::fmt::Arguments<'_>) {
        self.flush();
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

/// Waits on the socket (for `sock_events`) and, when `input` is given, on
/// the input too (for reading); EINTR is an empty wake-up. Returns what
/// each got (the input's empty when not polled). On the stack: a session
/// polls once per wake-up.
fn poll_session(
    sock: BorrowedFd<'_>,
    sock_events: PollFlags,
    input: Option<BorrowedFd<'_>>,
    timeout: Option<Duration>,
) -> Result<(PollFlags, PollFlags)> {
    let t = match timeout {
        None => PollTimeout::NONE,
        Some(d) => PollTimeout::try_from(d.as_millis().min(i32::MAX as u128) as i32).unwrap_or(PollTimeout::MAX),
    };
    let mut fds = [PollFd::new(sock, sock_events), PollFd::new(input.unwrap_or(sock), PollFlags::POLLIN)];
    let n = if input.is_some() { 2 } else { 1 };
    match poll(&mut fds[..n], t) {
        Ok(_) | Err(Errno::EINTR) => {}
        Err(e) => return Err(Error::errno("poll", e)),
    }
    let got = |i: usize| if i < n { fds[i].revents().unwrap_or(PollFlags::empty()) } else { PollFlags::empty() };
    Ok((got(0), got(1)))
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

/// Where a read's complete lines may go as they are, without a call per
/// line: to `out` when the session's frame is `line`, whose framing of a
/// line is the line and its newline (see [`Decoder::span`], which also
/// says when a read must still go line by line: the quit word, a `\r`, an
/// over-long line).
struct Whole<'a> {
    quit: &'a Quit,
    out: &'a mut Vec<u8>,
}

/// Hands input lines to `f` (or, when `whole` is given and allows it, a
/// read's complete lines at once to its `out`): first any already
/// buffered, then one read's worth; on EOF a last line without its newline
/// too. False once the input is exhausted.
fn input_lines(
    input: BorrowedFd<'_>,
    lines: &mut Decoder,
    buf: &mut [u8],
    io: &mut Io<'_>,
    f: &mut LineFn<'_>,
    whole: Option<Whole<'_>>,
) -> Result<bool> {
    if feed_lines(lines, Some(&[]), io, f)? {
        return Ok(true);
    }
    let Some(n) = read_fd(input, buf)? else { return Ok(true) };
    if n == 0 {
        feed_lines(lines, None, io, f)?;
        return Ok(false);
    }
    if let Some(w) = whole {
        if let Some(span) = lines.span(&buf[..n], w.quit, w.out) {
            w.out.extend_from_slice(&buf[..span.used]);
            return Ok(true);
        }
    }
    feed_lines(lines, Some(&buf[..n]), io, f)?;
    Ok(true)
}

/// Where the sending half of a TCP session stands. Whatever the state,
/// the socket is always polled and read: replies are printed as they
/// come, and nothing that arrived is lost to an error seen on the way out.
enum Out {
    /// Reading the input; framed lines wait in `pending` for the socket.
    Open,
    /// The input ended (EOF or the quit word): send what is pending, then
    /// half-close.
    Flushing(End),
    /// Half-closed: replies are printed until the peer closes or has been
    /// quiet for the drain time.
    Shut(End),
    /// A send failed: nothing more is sent, and the socket is read to its
    /// end so that every reply that arrived is printed before the failure
    /// is reported. None: the peer had already closed its side (EPIPE), so
    /// its end of stream comes next and is the outcome; Some: the reset or
    /// error to report.
    Broken(Option<Error>),
}

/// True if the input is at its end right now (checked without blocking).
/// When the peer closes, a pipe or file whose EOF is already there means
/// the input ended first, whichever of the two the loop saw first.
fn input_ended(input: BorrowedFd<'_>) -> bool {
    let mut fds = [PollFd::new(input, PollFlags::POLLIN)];
    if poll(&mut fds, PollTimeout::ZERO).unwrap_or(0) == 0 {
        return false;
    }
    matches!(read_fd(input, &mut [0u8; 1]), Ok(Some(0)))
}

/// Reads per wake-up before the input gets a turn (reads stop earlier at
/// EAGAIN); the socket stays readable, so the next poll returns at once.
const READS_PER_TURN: usize = 16;

/// What the socket said when read.
enum Heard {
    /// Nothing was waiting (a spurious wake-up).
    Nothing,
    /// Replies (printed); nothing more for now.
    Data,
    /// End of stream: the peer closed (everything before it was printed).
    Eof,
    /// A reset or another error (everything before it was printed).
    Failed(Error),
}

type Step<'a> = dyn FnMut(&mut dyn FnMut(&[u8], Ending) -> Flow) -> Result<Flow> + 'a;

/// Prints every message a decoder step (`feed` or `finish`) gives; an
/// over-long or cut-short message is noted, and decoding goes on.
fn print_all(io: &mut Io<'_>, step: &mut Step<'_>) {
    for _ in 0..1000 {
        match step(&mut |m, _| {
            io.print(m);
            Flow::Continue
        }) {
            Ok(_) => break,
            Err(e) => io.note(format_args!("{e}")),
        }
    }
    io.flush();
}

/// Reads what the socket holds, printing each decoded message; at end of
/// stream or an error, also what the decoder still holds (a last line
/// without its newline; a cut-short frame is noted), so nothing received
/// is left unprinted.
///
/// With `line` frames and no prefix, printing a reply is writing it with
/// its newline: a read's complete lines are then written as they came
/// (through `held`, which takes a line begun by the previous read), not
/// line by line ([`Decoder::span`] says when a read still goes line by
/// line).
fn read_replies(s: &Stream, replies: &mut Decoder, buf: &mut [u8], held: &mut Vec<u8>, io: &mut Io<'_>) -> Heard {
    let mut heard = Heard::Nothing;
    let whole = matches!(replies.frame(), Frame::Line { .. }) && io.opts.prefix.is_empty();
    for _ in 0..READS_PER_TURN {
        let end = match s.try_recv(buf) {
            Ok(0) => Heard::Eof,
            Ok(n) => {
                heard = Heard::Data;
                if let Some(span) = whole.then(|| replies.span(&buf[..n], &Quit::default(), held)).flatten() {
                    let _ = io.out.write_all(held).and_then(|_| io.out.write_all(&buf[..span.used]));
                    held.clear();
                    io.flush();
                    continue;
                }
                let mut data = &buf[..n];
                print_all(io, &mut |f| {
                    let r = replies.feed(data, f);
                    data = &[];
                    r
                });
                continue;
            }
            Err(e) if e.code == Code::WouldBlock => return heard,
            Err(e) => Heard::Failed(e),
        };
        print_all(io, &mut |f| replies.finish(f));
        return end;
    }
    heard
}

fn tcp_session(s: &mut Stream, input: BorrowedFd<'_>, io: &mut Io<'_>) -> Result<End> {
    let frame = s.frame();
    let mut lines = Decoder::new(Frame::Line { max: line_max(frame) });
    let mut replies = Decoder::new(frame);
    let mut inbuf = vec![0u8; 64 * 1024];
    let mut netbuf = vec![0u8; crate::tcp::READ_CHUNK];
    let mut pending: Vec<u8> = Vec::new();
    // How much of `pending` the socket has taken (all of it: cleared).
    let mut sent = 0;
    let mut held: Vec<u8> = Vec::new();
    // A read's complete input lines, taken at once (see `Whole`).
    let mut spanned: Vec<u8> = Vec::new();
    let quit = Quit::new(io.opts.quit.as_bytes());
    let mut out = Out::Open;
    let mut quiet_since = Instant::now();
    let peer = net::show(&s.peer());
    loop {
        let waiting = matches!(out, Out::Shut(_) | Out::Broken(_));
        let left = io.opts.drain.saturating_sub(quiet_since.elapsed());
        if waiting && left.is_zero() {
            // Quiet for the drain time: done (a broken session with no end
            // of stream in sight is reported as it broke).
            return match out {
                Out::Shut(end) => Ok(end),
                Out::Broken(Some(e)) => Err(e),
                _ => Ok(End::PeerClosed),
            };
        }
        // TLS records the socket did not take yet count as pending too.
        let sending = matches!(out, Out::Open | Out::Flushing(_)) && (!pending.is_empty() || s.unsent() > 0);
        let read_input = matches!(out, Out::Open) && pending.is_empty();
        let wanted = PollFlags::POLLIN | if sending { PollFlags::POLLOUT } else { PollFlags::empty() };
        let (sock_ev, in_ev) = poll_session(s.as_fd(), wanted, read_input.then_some(input), if waiting { Some(left) } else { None })?;
        // Read before looking at errors or sending: POLLERR/POLLHUP may
        // come with replies still unread, and a reset is reported only
        // after them.
        if sock_ev.intersects(PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR) {
            match read_replies(s, &mut replies, &mut netbuf, &mut held, io) {
                Heard::Nothing => {}
                Heard::Data => quiet_since = Instant::now(),
                Heard::Eof => {
                    return match out {
                        Out::Shut(end) => Ok(end),
                        Out::Broken(Some(e)) => Err(e),
                        // The input had ended too, just not been read yet:
                        // the usual end, not the server leaving first.
                        Out::Open if input_ended(input) => Ok(End::Eof),
                        Out::Open | Out::Flushing(_) | Out::Broken(None) => {
                            io.note(format_args!("{peer} closed the connection"));
                            Ok(End::PeerClosed)
                        }
                    };
                }
                Heard::Failed(e) => {
                    return Err(match out {
                        Out::Broken(Some(first)) => first,
                        _ => e,
                    })
                }
            }
        }
        if sending && sock_ev.contains(PollFlags::POLLOUT) {
            match s.try_send(&pending[sent..]) {
                // What the socket took is skipped, not moved out (a partial
                // send of a large pending span would move the rest each time).
                Ok(n) if sent + n == pending.len() => {
                    pending.clear();
                    sent = 0;
                }
                Ok(n) => sent += n,
                Err(e) if e.code == Code::WouldBlock => {}
                Err(e) => {
                    // Stop sending, not reading: what the peer sent before
                    // is still to be printed.
                    pending.clear();
                    sent = 0;
                    out = Out::Broken((e.errno != libc::EPIPE).then_some(e));
                    quiet_since = Instant::now();
                }
            }
            if let (Out::Flushing(end), true) = (&out, pending.is_empty() && s.unsent() == 0) {
                let _ = s.shutdown_write();
                out = Out::Shut(*end);
                quiet_since = Instant::now();
            }
        }
        if read_input && in_ev.intersects(PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR) {
            let mut quit_seen = false;
            let whole = matches!(frame, Frame::Line { .. }).then_some(Whole { quit: &quit, out: &mut spanned });
            let more = input_lines(
                input,
                &mut lines,
                &mut inbuf,
                io,
                &mut |line, io| {
                    if frame_is_raw(frame) && line.is_empty() {
                        return Ok(Flow::Continue); // nothing to send in a raw stream
                    }
                    if let Err(e) = frame.encode(line, &mut pending) {
                        io.note(format_args!("line not sent: {e}"));
                        return Ok(Flow::Continue);
                    }
                    if quit.is(line) {
                        quit_seen = true;
                        return Ok(Flow::Stop);
                    }
                    Ok(Flow::Continue)
                },
                whole,
            )?;
            // Lines sent one by one came first (held from an earlier read).
            if pending.is_empty() {
                std::mem::swap(&mut pending, &mut spanned);
            } else {
                pending.append(&mut spanned);
            }
            if quit_seen || !more {
                let end = if quit_seen { End::Quit } else { End::Eof };
                quiet_since = Instant::now();
                out = if pending.is_empty() {
                    let _ = s.shutdown_write();
                    Out::Shut(end)
                } else {
                    Out::Flushing(end)
                };
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
    // A datagram refused (ICMP: nothing listens there) does not stop the
    // input, but the session then ends in that error.
    let mut refused: Option<Error> = None;
    let quit = Quit::new(io.opts.quit.as_bytes());
    let ufd = u.as_fd();
    loop {
        if let Some(deadline) = awaiting {
            if Instant::now() >= deadline {
                io.note(format_args!("no reply within {} ms", io.opts.reply_timeout.unwrap_or_default().as_millis()));
                awaiting = None;
            }
        }
        if !input_open && awaiting.is_none() && quiet_since.elapsed() >= io.opts.drain {
            return refused.map_or(Ok(end), Err);
        }
        let read_input = input_open && awaiting.is_none();
        let timeout = match awaiting {
            Some(d) => Some(d.saturating_duration_since(Instant::now())),
            None if input_open => None,
            None => Some(io.opts.drain.saturating_sub(quiet_since.elapsed())),
        };
        let (sock_ev, in_ev) = poll_session(ufd, PollFlags::POLLIN, read_input.then_some(input), timeout)?;
        if sock_ev.intersects(PollFlags::POLLIN | PollFlags::POLLERR) {
            match u.recv_from(&mut netbuf) {
                Ok((n, _)) => {
                    quiet_since = Instant::now();
                    awaiting = None;
                    io.print(u.msg_of(&netbuf[..n]));
                    io.flush();
                }
                Err(e) if e.code == Code::Refused => {
                    io.note(format_args!("no server is listening (connection refused)"));
                    refused = Some(e);
                    awaiting = None;
                }
                Err(e) if e.code == Code::TimedOut => {}
                Err(e) => return Err(e),
            }
        }
        if read_input && in_ev.intersects(PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR) {
            let wait = io.opts.reply_timeout;
            let mut quit_seen = false;
            let more = input_lines(
                input,
                &mut lines,
                &mut inbuf,
                io,
                &mut |line, io| {
                    match u.send_msg(line, None) {
                        Ok(()) => {}
                        Err(e) if e.code == Code::Refused => {
                            io.note(format_args!("no server is listening (connection refused)"));
                            refused = Some(e);
                        }
                        Err(e) => io.note(format_args!("line not sent: {e}")),
                    }
                    if quit.is(line) {
                        quit_seen = true;
                        return Ok(Flow::Stop);
                    }
                    if let Some(w) = wait {
                        awaiting = Some(Instant::now() + w);
                        // One line at a time: the rest waits for the reply.
                        return Ok(Flow::Stop);
                    }
                    Ok(Flow::Continue)
                },
                None,
            )?;
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
