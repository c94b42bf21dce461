//! What the fuzz targets share: a cursor that turns the fuzzer's bytes into
//! the decisions a target makes (sizes, split points, choices), so that every
//! decision is in the input and a crash reproduces from its file alone; and
//! the model of the frame rules that the decoder and the server are checked
//! against.

use sockflow::frame::Frame;

/// Reads decisions from the front of the fuzz input; the unread rest is the
/// payload. Running out is fine: every read then gives 0.
pub struct Input<'a> {
    data: &'a [u8],
}

impl<'a> Input<'a> {
    pub fn new(data: &'a [u8]) -> Input<'a> {
        Input { data }
    }

    /// One byte (0 when the input is used up).
    pub fn byte(&mut self) -> u8 {
        match self.data.split_first() {
            Some((&b, rest)) => {
                self.data = rest;
                b
            }
            None => 0,
        }
    }

    /// Up to `n` bytes (fewer when the input runs out).
    pub fn take(&mut self, n: usize) -> &'a [u8] {
        let (head, rest) = self.data.split_at(n.min(self.data.len()));
        self.data = rest;
        head
    }

    /// Everything not read yet.
    pub fn rest(self) -> &'a [u8] {
        self.data
    }
}

/// Cuts `data` into consecutive pieces whose lengths cycle through `sizes`
/// (an empty `sizes` means one piece). A size of 0 yields an empty piece,
/// which is a legal read too; every piece is bounded so the loop ends.
pub fn split<'d>(data: &'d [u8], sizes: &[u8]) -> Vec<&'d [u8]> {
    if sizes.is_empty() {
        return vec![data];
    }
    let mut out = Vec::new();
    let mut rest = data;
    let mut i = 0;
    // Empty pieces are capped so that an all-zero `sizes` still ends.
    const MAX_EMPTIES: usize = 64;
    let mut empties = 0;
    while !rest.is_empty() {
        let n = usize::from(sizes[i % sizes.len()]).min(rest.len());
        i += 1;
        if n == 0 {
            empties += 1;
            if empties > MAX_EMPTIES {
                out.push(rest);
                break;
            }
        }
        let (piece, tail) = rest.split_at(n);
        out.push(piece);
        rest = tail;
    }
    out
}

/// One thing a decoder reports.
#[derive(Debug, PartialEq, Eq)]
pub enum Event {
    Msg(Vec<u8>),
    TooLong,
}

/// The model: what a decoder must report for the whole `stream`, and the
/// bytes of an unfinished message it must still hold at the end. Raw frames
/// have no boundaries of their own, so they are checked separately.
pub fn model(frame: Frame, stream: &[u8]) -> (Vec<Event>, &[u8]) {
    let mut ev = Vec::new();
    let mut pos = 0;
    let held = loop {
        let rest = &stream[pos..];
        match frame {
            // A line ends at `\n`; one `\r` before it is not part of it; a
            // line longer than max is reported (once) and skipped. An
            // unfinished line is reported as soon as it cannot fit any more
            // (more than max + 1 bytes: room for a `\r`).
            Frame::Line { max } => match rest.iter().position(|&b| b == b'\n') {
                Some(i) => {
                    let line = rest[..i].strip_suffix(b"\r").unwrap_or(&rest[..i]);
                    ev.push(if line.len() > max { Event::TooLong } else { Event::Msg(line.to_vec()) });
                    pos += i + 1;
                }
                None if rest.len() > max + 1 => {
                    ev.push(Event::TooLong);
                    break &rest[..0];
                }
                None => break rest,
            },
            Frame::Raw { .. } => break &rest[..0],
            // N-byte frames (fixed:0 acts as fixed:1); the message is the
            // text before the first NUL; a frame without one is refused.
            Frame::Fixed(n) => {
                let n = n.max(1);
                if rest.len() < n {
                    break rest;
                }
                ev.push(match rest[..n].iter().position(|&b| b == 0) {
                    Some(end) => Event::Msg(rest[..end].to_vec()),
                    None => Event::TooLong,
                });
                pos += n;
            }
            // A 4-byte big-endian length, then the message; one over max is
            // reported at its header and its bytes skipped.
            Frame::Len32 { max } => {
                if rest.len() < 4 {
                    break rest;
                }
                let len = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
                if len > max {
                    ev.push(Event::TooLong);
                    if rest.len() < 4 + len {
                        break &rest[..0]; // still skipping: nothing held
                    }
                    pos += 4 + len;
                } else if rest.len() < 4 + len {
                    break rest;
                } else {
                    ev.push(Event::Msg(rest[4..4 + len].to_vec()));
                    pos += 4 + len;
                }
            }
        }
    };
    (ev, held)
}
