//! Message framing over a byte stream: the one implementation every TCP path
//! (blocking primitives, the event-loop server, the stdin clients) shares.
//!
//! TCP delivers bytes, not messages: one `recv` can hold several messages
//! glued together or a piece of one (粘包/拆包). A [`Decoder`] turns any
//! sequence of reads back into exactly the messages that were sent, and
//! [`Frame::encode`] writes them. Every buffer is bounded by the frame's
//! maximum message length.
//!
//! End of stream belongs here too ([`Decoder::finish`]), so that every path
//! treats the bytes left at EOF the same way: a last line without its
//! newline is still a line; a cut-short fixed or len32 frame is reported,
//! never silently dropped. And each line says how it ended ([`Ending`]), so
//! a reply can end the same way (an echo gives back the very bytes it got).

use crate::error::{Code, Error, Result};
use std::fmt;

/// Default longest message for `line`, and the read size of `raw`.
pub const DEFAULT_MAX: usize = 64 * 1024;
/// Default longest message for `len32` (binary messages run larger; 4 MiB
/// as gRPC's default cap).
pub const DEFAULT_LEN32_MAX: usize = 4 * 1024 * 1024;
/// The largest maximum anyone may configure (also bounds `fixed:N`).
pub const LIMIT_MAX: usize = 64 * 1024 * 1024;

/// How messages are delimited on a stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Frame {
    /// `\n`-terminated; a trailing `\r` is stripped; at most `max` bytes.
    Line { max: usize },
    /// Whatever one read returns (at most `max` bytes).
    Raw { max: usize },
    /// N-byte frames holding a NUL-padded C string (the tutorial's
    /// `send(buf, sizeof buf)`); the message is the bytes before the first NUL.
    Fixed(usize),
    /// A 4-byte big-endian length, then that many bytes (binary-safe).
    Len32 { max: usize },
}

impl Default for Frame {
    fn default() -> Frame {
        Frame::Line { max: DEFAULT_MAX }
    }
}

impl fmt::Display for Frame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Frame::Line { max } if max == DEFAULT_MAX => write!(f, "line"),
            Frame::Line { max } => write!(f, "line:{max}"),
            Frame::Raw { max } if max == DEFAULT_MAX => write!(f, "raw"),
            Frame::Raw { max } => write!(f, "raw:{max}"),
            Frame::Fixed(n) => write!(f, "fixed:{n}"),
            Frame::Len32 { max } if max == DEFAULT_LEN32_MAX => write!(f, "len32"),
            Frame::Len32 { max } => write!(f, "len32:{max}"),
        }
    }
}

/// Parses a decimal size in `1..=LIMIT_MAX` (no sign, no spaces).
fn parse_size(s: &str) -> Option<usize> {
    if s.is_empty() || s.len() > 9 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok().filter(|&n| (1..=LIMIT_MAX).contains(&n))
}

impl Frame {
    /// Parses `line`, `line:MAX`, `raw`, `raw:MAX`, `fixed:N`, `len32`,
    /// `len32:MAX`. The error text says what is wrong.
    pub fn parse(spec: &str) -> std::result::Result<Frame, String> {
        let (kind, size) = match spec.split_once(':') {
            Some((k, s)) => (k, Some(s)),
            None => (spec, None),
        };
        let size = match size {
            None => None,
            Some(s) => Some(parse_size(s).ok_or_else(|| format!("frame size \"{s}\" is not a number in 1-{LIMIT_MAX}"))?),
        };
        let max = size.unwrap_or(DEFAULT_MAX);
        match kind {
            "line" => Ok(Frame::Line { max }),
            "raw" => Ok(Frame::Raw { max }),
            "len32" => Ok(Frame::Len32 { max: size.unwrap_or(DEFAULT_LEN32_MAX) }),
            "fixed" => match size {
                Some(n) if n >= 2 => Ok(Frame::Fixed(n)),
                Some(_) => Err("fixed frames need N >= 2 (a byte of text and its NUL)".into()),
                None => Err("fixed needs a size, e.g. fixed:32".into()),
            },
            _ => Err(format!("unknown frame \"{spec}\" (line, raw, fixed:N or len32)")),
        }
    }

    /// The longest message this frame can carry.
    pub fn max_len(&self) -> usize {
        match *self {
            Frame::Line { max } | Frame::Raw { max } | Frame::Len32 { max } => max,
            // fixed:0 built by hand (parse refuses it) acts as fixed:1.
            Frame::Fixed(n) => n.max(1) - 1,
        }
    }

    /// Appends `msg`, framed, to `out` (a line ends with `\n`). Fails (and
    /// appends nothing) when the message cannot be framed: too long, a `\n`
    /// inside a line, a NUL inside a fixed frame.
    pub fn encode(&self, msg: &[u8], out: &mut Vec<u8>) -> Result<()> {
        self.encode_ending(msg, Ending::Lf, out)
    }

    /// As [`encode`](Frame::encode), a line ending with `ending` (the one of
    /// the message being answered); other frames have no ending to choose.
    pub fn encode_ending(&self, msg: &[u8], ending: Ending, out: &mut Vec<u8>) -> Result<()> {
        if msg.len() > self.max_len() {
            return Err(Error::new(
                Code::MsgSize,
                format!("message of {} bytes is longer than {} allows ({} bytes)", msg.len(), self, self.max_len()),
            ));
        }
        match *self {
            Frame::Line { .. } if memchr(b'\n', msg).is_some() => Err(Error::inval("a line message cannot contain a newline")),
            Frame::Fixed(_) if memchr(0, msg).is_some() => Err(Error::inval("a fixed-frame message cannot contain a NUL byte")),
            _ => {
                self.append(msg, ending, out);
                Ok(())
            }
        }
    }

    /// Appends `msg` framed, without the checks of
    /// [`encode_ending`](Frame::encode_ending): for a message known to fit,
    /// such as (a part of) one this frame's decoder delivered (an echo need
    /// not scan its message for a newline a second time).
    pub(crate) fn append(&self, msg: &[u8], ending: Ending, out: &mut Vec<u8>) {
        match *self {
            Frame::Line { .. } => {
                out.reserve(msg.len() + 2);
                out.extend_from_slice(msg);
                out.extend_from_slice(ending.bytes());
            }
            Frame::Raw { .. } => out.extend_from_slice(msg),
            Frame::Fixed(n) => {
                let n = n.max(1);
                out.reserve(n);
                out.extend_from_slice(msg);
                out.resize(out.len() + n - msg.len(), 0);
            }
            Frame::Len32 { .. } => {
                out.reserve(msg.len() + 4);
                out.extend_from_slice(&(msg.len() as u32).to_be_bytes());
                out.extend_from_slice(msg);
            }
        }
    }

    /// Looks for one message at the start of `buf`.
    fn parse_one(&self, buf: &[u8]) -> Step {
        match *self {
            Frame::Line { max } => match memchr(b'\n', buf) {
                Some(i) => {
                    let (end, ending) = if i > 0 && buf[i - 1] == b'\r' { (i - 1, Ending::CrLf) } else { (i, Ending::Lf) };
                    if end > max {
                        Step::TooLong { used: i + 1, skip: Skip::None, len: end }
                    } else {
                        Step::Msg { start: 0, end, used: i + 1, ending }
                    }
                }
                // max + 1: room for a `\r` that will be stripped.
                None if buf.len() > max + 1 => Step::TooLong { used: buf.len(), skip: Skip::Line, len: buf.len() },
                None => Step::Need,
            },
            // A maximum of 0 (built by hand) would never make progress.
            Frame::Raw { max } if !buf.is_empty() => {
                let end = buf.len().min(max.max(1));
                Step::Msg { start: 0, end, used: end, ending: Ending::None }
            }
            Frame::Raw { .. } => Step::Need,
            Frame::Fixed(n) if buf.len() >= n.max(1) => {
                let n = n.max(1);
                match memchr(0, &buf[..n]) {
                    Some(end) => Step::Msg { start: 0, end, used: n, ending: Ending::None },
                    // No NUL: a C reader would run past the frame; refuse it.
                    None => Step::TooLong { used: n, skip: Skip::None, len: n },
                }
            }
            Frame::Fixed(_) => Step::Need,
            Frame::Len32 { max } if buf.len() >= 4 => {
                let len = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
                if len > max {
                    Step::TooLong { used: 4, skip: Skip::Bytes(len), len }
                } else if buf.len() >= 4 + len {
                    Step::Msg { start: 4, end: 4 + len, used: 4 + len, ending: Ending::None }
                } else {
                    Step::Need
                }
            }
            Frame::Len32 { .. } => Step::Need,
        }
    }
}

/// SIMD byte search (the memchr crate): the hot loop of line decoding.
fn memchr(b: u8, s: &[u8]) -> Option<usize> {
    memchr::memchr(b, s)
}

/// How a message ended on the wire. Only `line` frames have endings; a
/// reply to a message is framed with the ending of that message, so
/// `hello\r\n` is answered `...\r\n` and an unterminated last line (or a
/// datagram without a newline) is answered without one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Ending {
    /// `\n` (also what messages sent on their own initiative use).
    #[default]
    Lf,
    /// `\r\n`.
    CrLf,
    /// Nothing: the stream (or datagram) ended first; other frames too.
    None,
}

impl Ending {
    /// The bytes that end a line this way.
    pub fn bytes(self) -> &'static [u8] {
        match self {
            Ending::Lf => b"\n",
            Ending::CrLf => b"\r\n",
            Ending::None => b"",
        }
    }
}

/// What [`Frame::parse_one`] found.
enum Step {
    Need,
    Msg { start: usize, end: usize, used: usize, ending: Ending },
    TooLong { used: usize, skip: Skip, len: usize },
}

/// Bytes still to drop after an over-long message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Skip {
    None,
    /// Drop up to and including the next `\n`.
    Line,
    /// Drop this many bytes.
    Bytes(usize),
}

/// What a message callback wants next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flow {
    /// Go on with the next message.
    Continue,
    /// Stop here; unread bytes stay in the decoder for the next `feed`.
    Stop,
}

/// What [`Decoder::span`] took: the first `used` bytes of the data (after
/// the bytes of a line begun by an earlier read, when it held one).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span {
    pub used: usize,
    held: usize,
    count: Count,
}

/// How a span's messages are counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Count {
    /// A raw read: one message, all of it.
    Raw,
    /// One line (lock-step traffic): no count needed.
    OneLine,
    /// The lines ending in the span: counted only when asked.
    Lines,
}

impl Span {
    /// The span's messages and their bytes (endings excluded), as stats
    /// count them; `data` is the read the span was taken from. Counting
    /// the lines is a pass over the read that a caller which only forwards
    /// the bytes (a stdin client) does not pay.
    pub fn counts(&self, data: &[u8]) -> (u64, u64) {
        let line = |msgs: usize| (msgs as u64, (self.held + self.used - msgs) as u64);
        match self.count {
            Count::Raw => (1, self.used as u64),
            Count::OneLine => line(1),
            Count::Lines => line(bytecount::count(&data[..self.used], b'\n')),
        }
    }
}

/// A quit word: a message that is exactly this word ends the input (empty:
/// none). Kept with a searcher for the word as a whole line (the word and
/// its `\n`), built once: [`Decoder::span`] looks for it in every read, and
/// building a searcher per read, or searching for the bare word (whose
/// first letters are in much ordinary text), cost more than the rest of
/// the span's checks.
#[derive(Clone, Debug, Default)]
pub struct Quit {
    word: Vec<u8>,
    line: Option<memchr::memmem::Finder<'static>>,
}

impl Quit {
    pub fn new(word: &[u8]) -> Quit {
        let line = (!word.is_empty()).then(|| memchr::memmem::Finder::new(&[word, b"\n"].concat()).into_owned());
        Quit { word: word.to_vec(), line }
    }

    /// Whether `msg` is the quit word (never, when there is none).
    pub fn is(&self, msg: &[u8]) -> bool {
        !self.word.is_empty() && msg == self.word
    }

    /// Whether a line of `lines` (complete lines; the first one starts at
    /// 0 only when `first_starts` says so) is the word followed by `\n`.
    fn in_lines(&self, lines: &[u8], first_starts: bool) -> bool {
        let Some(f) = &self.line else { return false };
        f.find_iter(lines).any(|at| if at == 0 { first_starts } else { lines[at - 1] == b'\n' })
    }
}

/// Turns a stream of reads into messages. Holds at most one partial message
/// (bounded by the frame's maximum); an idle decoder holds no heap memory.
#[derive(Debug)]
pub struct Decoder {
    frame: Frame,
    pending: Vec<u8>,
    skip: Skip,
}

/// A decoder that held more than this returns the memory once it is empty,
/// so idle connections stay small.
const KEEP_CAPACITY: usize = 512;

impl Decoder {
    /// A decoder for `frame`.
    pub fn new(frame: Frame) -> Decoder {
        Decoder { frame, pending: Vec::new(), skip: Skip::None }
    }

    /// The frame this decoder reads.
    pub fn frame(&self) -> Frame {
        self.frame
    }

    /// True when bytes of an unfinished (or not yet delivered) message are held.
    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// How many bytes the decoder holds right now (a partial message, or
    /// what a `Stop` left unread). Never more than the frame's maximum plus
    /// one read: an over-long line is dropped as it arrives, not stored.
    pub fn buffered(&self) -> usize {
        self.pending.len()
    }

    /// Bytes still to arrive before the held message is complete, when the
    /// frame says how long it is (`len32` once its header is in, `fixed:N`);
    /// 0 when that is unknown (`line`, `raw`, a partial header) or nothing is
    /// partial. Lets a server reserve memory for a message before it arrives.
    pub fn missing(&self) -> usize {
        let held = self.pending.len();
        match (self.frame, self.pending.get(..4)) {
            (Frame::Len32 { max }, Some(h)) => {
                let len = u32::from_be_bytes([h[0], h[1], h[2], h[3]]) as usize;
                if len > max {
                    0
                } else {
                    (4 + len).saturating_sub(held)
                }
            }
            (Frame::Fixed(n), _) if held > 0 => n.max(1).saturating_sub(held),
            _ => 0,
        }
    }

    /// True when the decoder holds nothing and is in the middle of nothing
    /// (no over-long message being skipped): a fresh decoder would do.
    pub fn is_idle(&self) -> bool {
        self.pending.is_empty() && self.skip == Skip::None
    }

    /// True when the decoder has a buffer (holding something or not).
    pub fn has_buffer(&self) -> bool {
        self.pending.capacity() > 0
    }

    /// Gives a decoder without a buffer ([`has_buffer`](Decoder::has_buffer)
    /// false) an empty one to hold its next partial message in: a server
    /// lends buffers from a pool so that keeping a partial message
    /// allocates nothing. A decoder that has a buffer hands `buf` back.
    pub fn lend(&mut self, buf: Vec<u8>) -> Option<Vec<u8>> {
        if self.has_buffer() {
            return Some(buf);
        }
        self.pending = buf;
        self.pending.clear();
        None
    }

    /// The buffer of a decoder that holds nothing (None if it holds
    /// something or has no buffer): an idle decoder then holds no memory,
    /// and the buffer can go back to a pool.
    pub fn take_buffer(&mut self) -> Option<Vec<u8>> {
        if self.pending.is_empty() && self.pending.capacity() > 0 {
            return Some(std::mem::take(&mut self.pending));
        }
        None
    }

    /// Allocates room for the rest of the held message ([`missing`]) at
    /// once, so that a large message does not grow by doubling (which can
    /// leave up to twice its size allocated, and copies it each time).
    ///
    /// [`missing`]: Decoder::missing
    pub fn reserve_missing(&mut self) {
        self.pending.reserve_exact(self.missing());
    }

    /// Feeds the bytes of one read and calls `f` with each complete message
    /// and how it ended, in order. Returns `Stop` if `f` stopped (the rest is
    /// kept for the next call; `feed(&[], f)` resumes), or a `MsgSize` error
    /// for a message over the maximum: that message is dropped and decoding
    /// resumes after it on the next call.
    pub fn feed(&mut self, mut data: &[u8], f: &mut dyn FnMut(&[u8], Ending) -> Flow) -> Result<Flow> {
        if !self.pending.is_empty() {
            // Only the bytes that complete the held message join it; the
            // rest of the read is parsed where it is (below), so the held
            // buffer never grows past one message.
            let take = self.completion(data);
            self.pending.extend_from_slice(&data[..take]);
            data = &data[take..];
            let buf = std::mem::take(&mut self.pending);
            let (used, res) = self.run(&buf, f);
            self.pending = buf;
            self.pending.drain(..used);
            let done = self.pending.is_empty() && matches!(res, Ok(Flow::Continue));
            if !done {
                // Still incomplete, stopped or failed: the rest waits behind it.
                self.pending.extend_from_slice(data);
            }
            if self.pending.is_empty() && self.pending.capacity() > KEEP_CAPACITY {
                self.pending = Vec::new();
            }
            if !done {
                return res;
            }
        }
        // Parse straight from the caller's buffer and copy only a trailing
        // partial message.
        let (used, res) = self.run(data, f);
        self.pending.extend_from_slice(&data[used..]);
        res
    }

    /// The complete messages of `data` as one span, without a callback per
    /// message: for a caller whose answer to every message is that
    /// message's own bytes, framed as they came (an echo). Only for `line`
    /// and `raw` frames, whose messages with their endings are exactly the
    /// wire bytes; and only when no message can be over the maximum, none
    /// can be `quit` (a word the caller must see on its own; empty: none)
    /// and no `line` holds a `\r` (whose ending would have to be told
    /// apart). A `line` begun by an earlier read (a partial line held) is
    /// part of the span: its held bytes are appended to `held`, and the
    /// span's bytes are those plus `data[..used]`. The trailing partial
    /// message is kept, exactly as [`feed`](Decoder::feed) would keep it.
    /// None (nothing consumed, nothing appended) when any of that does not
    /// hold: decode with `feed`.
    pub fn span(&mut self, data: &[u8], quit: &Quit, held: &mut Vec<u8>) -> Option<Span> {
        // No message can be over the maximum: none in `data` can when
        // `data` fits (a full read is often exactly the maximum), and the
        // first line, which may continue a held one, is checked below.
        if self.skip != Skip::None || data.is_empty() || data.len() > self.frame.max_len() {
            return None;
        }
        let (used, count) = match self.frame {
            Frame::Line { .. } => {
                // A held partial line must be one (no newline: not what a
                // `Stop` left) and hold no `\r` nor the quit word's start.
                let odd = |held: &[u8]| match quit.word.first() {
                    Some(&q) => memchr::memchr3(b'\n', b'\r', q, held).is_some(),
                    None => memchr::memchr2(b'\n', b'\r', held).is_some(),
                };
                if !self.pending.is_empty() && odd(&self.pending) {
                    return None;
                }
                let first = memchr(b'\n', data)?;
                if self.pending.len() + first >= self.frame.max_len() {
                    return None; // the line a held part begins may be too long: let `feed` judge
                }
                let used = memchr::memrchr(b'\n', data)? + 1;
                let whole = &data[..used];
                // One pass looks for both a `\r` and where the quit word
                // could start; the exact searches run only after a hit.
                let suspect = match quit.word.first() {
                    Some(&q) => memchr::memchr2(b'\r', q, whole).is_some(),
                    None => memchr(b'\r', whole).is_some(),
                };
                if suspect && (memchr(b'\r', whole).is_some() || quit.in_lines(whole, self.pending.is_empty())) {
                    return None;
                }
                // A read of one line (lock-step traffic) needs no count.
                (used, if first + 1 == used { Count::OneLine } else { Count::Lines })
            }
            Frame::Raw { .. } if !self.pending.is_empty() || quit.is(data) => return None,
            Frame::Raw { .. } => (data.len(), Count::Raw),
            Frame::Fixed(_) | Frame::Len32 { .. } => return None,
        };
        let held_len = self.pending.len();
        if !self.pending.is_empty() {
            held.extend_from_slice(&self.pending);
            self.pending.clear();
        }
        if used < data.len() {
            self.pending.extend_from_slice(&data[used..]);
        }
        Some(Span { used, held: held_len, count })
    }

    /// How many bytes at the start of `data` complete the one partial
    /// message held; all of `data` when that is unknown (what is held is
    /// more than one partial message, or an over-long one is being skipped).
    fn completion(&self, data: &[u8]) -> usize {
        let held = &self.pending[..];
        if self.skip != Skip::None || !matches!(self.frame.parse_one(held), Step::Need) {
            return data.len();
        }
        let want = match self.frame {
            Frame::Line { .. } => memchr(b'\n', data).map_or(data.len(), |i| i + 1),
            Frame::Raw { .. } => data.len(),
            Frame::Fixed(n) => n.max(1) - held.len(),
            Frame::Len32 { .. } => {
                let mut h = [0u8; 4];
                let from_held = held.len().min(4);
                h[..from_held].copy_from_slice(&held[..from_held]);
                let from_data = 4 - from_held;
                if data.len() < from_data {
                    return data.len();
                }
                h[from_held..].copy_from_slice(&data[..from_data]);
                (4 + u32::from_be_bytes(h) as usize).saturating_sub(held.len())
            }
        };
        want.min(data.len())
    }

    /// The stream ended: delivers what is left, like `feed`: first complete
    /// messages a `Stop` left, then a last line without its newline (ending
    /// [`Ending::None`]). A fixed or len32 frame cut short is a `Closed`
    /// error saying how many of its bytes arrived. Afterwards the decoder is
    /// empty, so calling `finish` again (end of stream is sticky) gives
    /// nothing more. On `Stop` or an error, call it again to go on.
    pub fn finish(&mut self, f: &mut dyn FnMut(&[u8], Ending) -> Flow) -> Result<Flow> {
        if self.feed(&[], f)? == Flow::Stop {
            return Ok(Flow::Stop);
        }
        // An over-long message being skipped was reported already.
        self.skip = Skip::None;
        let rest = std::mem::take(&mut self.pending);
        let cut = |what: String| Err(Error::new(Code::Closed, format!("the stream ended in the middle of a {} frame: {what}", self.frame)));
        match self.frame {
            _ if rest.is_empty() => Ok(Flow::Continue),
            // Only max + 1 bytes ending in `\r` can be over (parse_one
            // reports longer ones as they arrive); the `\r` is data here.
            Frame::Line { max } if rest.len() > max => Err(Error::new(
                Code::MsgSize,
                format!("incoming message of {} bytes is longer than {} allows ({max} bytes)", rest.len(), self.frame),
            )),
            Frame::Line { .. } | Frame::Raw { .. } => Ok(f(&rest, Ending::None)),
            Frame::Fixed(n) => cut(format!("{} of {n} bytes arrived", rest.len())),
            Frame::Len32 { .. } if rest.len() < 4 => cut(format!("{} of the 4 length bytes arrived", rest.len())),
            Frame::Len32 { .. } => {
                let len = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
                cut(format!("{} of {} bytes arrived (4 of them the length)", rest.len(), 4 + len))
            }
        }
    }

    /// Decodes from `buf`; returns how many bytes were consumed.
    fn run(&mut self, buf: &[u8], f: &mut dyn FnMut(&[u8], Ending) -> Flow) -> (usize, Result<Flow>) {
        let mut pos = 0;
        loop {
            match self.skip {
                Skip::None => {}
                Skip::Line => match memchr(b'\n', &buf[pos..]) {
                    Some(i) => {
                        pos += i + 1;
                        self.skip = Skip::None;
                    }
                    None => return (buf.len(), Ok(Flow::Continue)),
                },
                Skip::Bytes(n) => {
                    let k = n.min(buf.len() - pos);
                    pos += k;
                    self.skip = if k == n { Skip::None } else { Skip::Bytes(n - k) };
                }
            }
            if pos == buf.len() {
                return (pos, Ok(Flow::Continue));
            }
            match self.frame.parse_one(&buf[pos..]) {
                Step::Need => return (pos, Ok(Flow::Continue)),
                Step::Msg { start, end, used, ending } => {
                    let flow = f(&buf[pos + start..pos + end], ending);
                    pos += used;
                    if flow == Flow::Stop {
                        return (pos, Ok(Flow::Stop));
                    }
                }
                Step::TooLong { used, skip, len } => {
                    pos += used;
                    self.skip = skip;
                    let err = Error::new(
                        Code::MsgSize,
                        format!(
                            "incoming message of {}{len} bytes is longer than {} allows ({} bytes)",
                            if skip == Skip::Line { "more than " } else { "" },
                            self.frame,
                            self.frame.max_len()
                        ),
                    );
                    return (pos, Err(err));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(frame: Frame, chunks: &[&[u8]]) -> Vec<std::result::Result<Vec<u8>, Code>> {
        let mut d = Decoder::new(frame);
        let mut out = Vec::new();
        for c in chunks {
            let mut data: &[u8] = c;
            loop {
                let r = d.feed(data, &mut |m, _| {
                    out.push(Ok(m.to_vec()));
                    Flow::Continue
                });
                data = &[];
                match r {
                    Ok(_) => break,
                    Err(e) => out.push(Err(e.code)),
                }
            }
        }
        out
    }

    #[test]
    fn line_glued_split_and_crlf() {
        let got = decode_all(Frame::default(), &[b"he", b"llo\r\nwor", b"ld\n\nx"]);
        assert_eq!(got, vec![Ok(b"hello".to_vec()), Ok(b"world".to_vec()), Ok(vec![])]);
    }

    #[test]
    fn line_too_long_is_reported_once_and_resyncs() {
        let f = Frame::Line { max: 4 };
        let got = decode_all(f, &[b"abcdefgh", b"ijk\nok\n"]);
        assert_eq!(got, vec![Err(Code::MsgSize), Ok(b"ok".to_vec())]);
    }

    #[test]
    fn fixed_takes_text_before_nul() {
        let mut frame = b"hi\0\0o world long".to_vec();
        frame.resize(32, 0);
        let got = decode_all(Frame::Fixed(32), &[&frame[..10], &frame[10..]]);
        assert_eq!(got, vec![Ok(b"hi".to_vec())]);
    }

    #[test]
    fn len32_rejects_oversize_and_skips_it() {
        let f = Frame::Len32 { max: 3 };
        let got = decode_all(f, &[b"\0\0\0\x05abcde\0\0\0\x02ok"]);
        assert_eq!(got, vec![Err(Code::MsgSize), Ok(b"ok".to_vec())]);
    }

    #[test]
    fn encode_refuses_what_cannot_round_trip() {
        let mut out = Vec::new();
        assert_eq!(Frame::default().encode(b"a\nb", &mut out).unwrap_err().code, Code::Inval);
        assert_eq!(Frame::Fixed(4).encode(b"abcd", &mut out).unwrap_err().code, Code::MsgSize);
        assert_eq!(Frame::Fixed(4).encode(b"a\0", &mut out).unwrap_err().code, Code::Inval);
        assert!(out.is_empty());
        Frame::Fixed(4).encode(b"abc", &mut out).unwrap();
        assert_eq!(out, b"abc\0");
    }

    #[test]
    fn missing_counts_what_a_declared_message_still_needs() {
        let mut d = Decoder::new(Frame::Len32 { max: 100 });
        let mut none = |_: &[u8], _| Flow::Continue;
        d.feed(b"\0\0", &mut none).unwrap();
        assert_eq!(d.missing(), 0); // header incomplete: unknown
        d.feed(b"\0\x0aabc", &mut none).unwrap();
        assert_eq!(d.missing(), 7);
        d.feed(b"defghij", &mut none).unwrap();
        assert_eq!(d.missing(), 0);
        let mut f = Decoder::new(Frame::Fixed(8));
        f.feed(b"ab", &mut none).unwrap();
        assert_eq!(f.missing(), 6);
        assert_eq!(Decoder::new(Frame::default()).missing(), 0);
    }

    #[test]
    fn stop_keeps_the_rest() {
        let mut d = Decoder::new(Frame::default());
        let mut seen = Vec::new();
        let r = d.feed(b"a\nb\nc", &mut |m, _| {
            seen.push(m.to_vec());
            Flow::Stop
        });
        assert_eq!(r.unwrap(), Flow::Stop);
        assert_eq!(seen, vec![b"a".to_vec()]);
        d.feed(b"\n", &mut |m, _| {
            seen.push(m.to_vec());
            Flow::Continue
        })
        .unwrap();
        assert_eq!(seen, vec![b"a".to_vec(), b"b".to_vec(), b"c".to_vec()]);
    }

    /// What an echo of `chunks` sends back, message by message (`feed`)
    /// or with [`Decoder::span`] where it applies: the replies' bytes,
    /// messages, message bytes; decoding stops at an error or the quit word.
    fn echo(frame: Frame, quit: &[u8], chunks: &[Vec<u8>], spans: bool) -> (Vec<u8>, u64, u64, Vec<usize>) {
        let word = Quit::new(quit);
        let mut d = Decoder::new(frame);
        let (mut out, mut msgs, mut bytes, mut held) = (Vec::new(), 0, 0, Vec::new());
        for c in chunks {
            if let Some(s) = spans.then(|| d.span(c, &word, &mut out)).flatten() {
                out.extend_from_slice(&c[..s.used]);
                let (m, b) = s.counts(c);
                (msgs, bytes) = (msgs + m, bytes + b);
            } else {
                let mut stop = false;
                let r = d.feed(c, &mut |m, ending| {
                    if !quit.is_empty() && m == quit {
                        stop = true;
                        return Flow::Stop;
                    }
                    frame.append(m, ending, &mut out);
                    (msgs, bytes) = (msgs + 1, bytes + m.len() as u64);
                    Flow::Continue
                });
                if r.is_err() || stop {
                    break;
                }
            }
            held.push(d.buffered());
        }
        (out, msgs, bytes, held)
    }

    proptest::proptest! {
        #[test]
        fn a_span_answers_as_message_by_message_does(
            chunks in proptest::collection::vec(proptest::collection::vec(proptest::sample::select(b"ab\n\rquit".to_vec()), 0..24), 1..8),
            max in 1usize..12,
            line in proptest::bool::ANY,
            quit in proptest::bool::ANY,
        ) {
            let frame = if line { Frame::Line { max } } else { Frame::Raw { max } };
            let quit: &[u8] = if quit { b"quit" } else { b"" };
            proptest::prop_assert_eq!(echo(frame, quit, &chunks, true), echo(frame, quit, &chunks, false));
        }
    }

    /// A span's bytes taken, messages and message bytes.
    fn taken(d: &mut Decoder, data: &[u8], quit: &Quit, held: &mut Vec<u8>) -> Option<(usize, u64, u64)> {
        d.span(data, quit, held).map(|s| {
            let (msgs, bytes) = s.counts(data);
            (s.used, msgs, bytes)
        })
    }

    /// A read as long as the maximum after a held partial line is still a
    /// span when no line in it is too long (a client reading a file gets
    /// full reads and a held line almost every time: they all went line by
    /// line before), and not when the held line it completes is.
    #[test]
    fn a_full_read_after_a_held_line_is_a_span() {
        let mut held = Vec::new();
        let mut d = Decoder::new(Frame::Line { max: 8 });
        d.feed(b"abc", &mut |_, _| Flow::Continue).unwrap();
        assert_eq!(taken(&mut d, b"de\nfghi\n", &Quit::default(), &mut held), Some((8, 2, 9)));
        assert_eq!(held, b"abc");
        let mut d = Decoder::new(Frame::Line { max: 8 });
        d.feed(b"abcdef", &mut |_, _| Flow::Continue).unwrap();
        assert_eq!(taken(&mut d, b"gh\nij\n", &Quit::default(), &mut held), None, "abcdefgh is the maximum: feed judges it");
        assert_eq!(taken(&mut d, b"abcdefghi\n", &Quit::default(), &mut held), None, "longer than the maximum");
    }

    #[test]
    fn a_span_takes_every_complete_line_held_ones_first_and_keeps_the_rest() {
        let mut held = Vec::new();
        let mut d = Decoder::new(Frame::default());
        let s = taken(&mut d, b"ab\n\ncd\nef", &Quit::new(b"quit"), &mut held).unwrap();
        assert_eq!(s, (7, 3, 4));
        assert_eq!(d.buffered(), 2);
        // The held "ef" completes: it comes first, appended to `held`.
        assert_eq!(taken(&mut d, b"g\nh", &Quit::default(), &mut held), Some((2, 1, 3)));
        assert_eq!((&held[..], d.buffered()), (&b"ef"[..], 1));
        let mut d = Decoder::new(Frame::default());
        assert_eq!(taken(&mut d, b"a\r\n", &Quit::default(), &mut held), None, "an ending to tell apart");
        assert_eq!(taken(&mut d, b"a\nquit\n", &Quit::new(b"quit"), &mut held), None, "the quit word");
        assert_eq!(taken(&mut d, b"quiet\n", &Quit::new(b"quit"), &mut held), Some((6, 1, 5)));
        assert_eq!(taken(&mut d, b"quit\nb\n", &Quit::new(b"quit"), &mut held), None, "the quit word first");
        let s = taken(&mut d, b"aquit\nquitx\nquit", &Quit::new(b"quit"), &mut held);
        assert_eq!(s, Some((12, 2, 10)), "in lines, not lines");
        assert_eq!(
            taken(&mut Decoder::new(Frame::Line { max: 3 }), b"ab\ncd\n", &Quit::default(), &mut held),
            None,
            "longer than a line may be"
        );
        assert_eq!(taken(&mut Decoder::new(Frame::Fixed(4)), b"abc\0", &Quit::default(), &mut held), None);
        assert_eq!(held, b"ef", "nothing appended when there is no span");
    }

    #[test]
    fn parse_specs() {
        assert_eq!(Frame::parse("line"), Ok(Frame::Line { max: DEFAULT_MAX }));
        assert_eq!(Frame::parse("fixed:32"), Ok(Frame::Fixed(32)));
        assert_eq!(Frame::parse("len32:10"), Ok(Frame::Len32 { max: 10 }));
        assert!(Frame::parse("fixed").is_err());
        assert!(Frame::parse("fixed:1").is_err());
        assert!(Frame::parse("fixed:-3").is_err());
        assert!(Frame::parse("lines").is_err());
        assert_eq!(Frame::parse("fixed:32").unwrap().to_string(), "fixed:32");
    }
}
