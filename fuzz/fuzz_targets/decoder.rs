//! The stream decoder (`sockflow::frame::Decoder`) in every frame mode, with
//! small maxima, against an independent model written straight from the
//! documented rules, whatever the read boundaries and wherever the callback
//! says `Flow::Stop`.
//!
//! Input: `mode` `size` `n` `ctrl[n]` `stream...`
//! * `mode % 4`: line, raw, fixed, len32; bit 7 set = that frame's default
//!   maximum instead of a small one taken from `size`;
//! * `ctrl` bytes cycle: bits 0-4 give the length of each read (0 = an empty
//!   read), bit 5 makes the callback stop at that message, bit 6 makes the
//!   driver go on with the next read after a `Stop` or an error instead of
//!   resuming with `feed(&[])` (both must work).
//!
//! Checked: the same messages and over-long reports in the same order; no
//! callback after a `Stop`; errors are `MsgSize` with a message; between
//! reads the decoder holds no more than one partial message; at the end it
//! holds exactly the model's unfinished message, which `finish` delivers as
//! the last line or reports (too long, truncated frame).
#![no_main]

use libfuzzer_sys::fuzz_target;
use sockflow::frame::{Decoder, Flow, Frame, DEFAULT_LEN32_MAX, DEFAULT_MAX};
use sockflow::Code;
use sockflow_fuzz::{model, split, Event, Input};

/// The frame the input asks for. Maxima of 0 and `fixed:0`/`fixed:1` are
/// included: `Frame::parse` refuses them, but the enum is public and the
/// decoder documents how it treats them.
fn frame_of(mode: u8, size: u8) -> Frame {
    let default = mode & 0x80 != 0;
    let small = usize::from(size % 24);
    match mode % 4 {
        0 => Frame::Line { max: if default { DEFAULT_MAX } else { small } },
        1 => Frame::Raw { max: if default { DEFAULT_MAX } else { small } },
        2 => Frame::Fixed(if default { 32 } else { small }),
        _ => Frame::Len32 { max: if default { DEFAULT_LEN32_MAX } else { small } },
    }
}

/// The most a decoder may hold after a read it fully consumed: one
/// unfinished message.
fn bound(frame: Frame) -> usize {
    match frame {
        Frame::Line { max } => max + 1,
        Frame::Raw { .. } => 0,
        Frame::Fixed(n) => n.max(1) - 1,
        Frame::Len32 { max } => max + 3,
    }
}

/// What `Decoder::finish` must report at end of stream for the unfinished
/// bytes `held`: nothing, the last line (its `\r`, if any, is data), a line
/// over the maximum, or a truncated frame.
#[derive(Debug, PartialEq, Eq)]
enum End {
    Clean,
    LastLine(Vec<u8>),
    TooLong,
    Truncated,
}

fn expected_end(frame: Frame, held: &[u8]) -> End {
    match frame {
        _ if held.is_empty() => End::Clean,
        Frame::Line { max } if held.len() > max => End::TooLong,
        Frame::Line { .. } => End::LastLine(held.to_vec()),
        _ => End::Truncated,
    }
}

/// The decoder's one `feed` call (message endings are checked by the
/// framing tests; here the messages themselves).
fn feed(dec: &mut Decoder, data: &[u8], cb: &mut dyn FnMut(&[u8]) -> Flow) -> sockflow::Result<Flow> {
    dec.feed(data, &mut |m, _| cb(m))
}

/// End of stream: the decoder holds exactly the model's unfinished
/// message, and `finish` delivers it as the last line, refuses it as too
/// long, or reports a truncated frame (`Closed`, with a message); after
/// it the decoder holds nothing.
fn end_of_stream(dec: &mut Decoder, held: &[u8]) {
    assert_eq!(dec.buffered(), held.len(), "bytes held at end of stream");
    let frame = dec.frame();
    let mut last = None;
    let got = match dec.finish(&mut |m, _| {
        assert!(last.is_none(), "finish delivered two messages");
        last = Some(m.to_vec());
        Flow::Continue
    }) {
        Ok(_) => last.map_or(End::Clean, End::LastLine),
        Err(e) if e.code == Code::MsgSize => End::TooLong,
        Err(e) => {
            assert_eq!(e.code, Code::Closed, "{}", e.msg);
            assert!(!e.msg.is_empty());
            End::Truncated
        }
    };
    assert_eq!(got, expected_end(frame, held), "{frame}: end of stream");
    assert_eq!(dec.buffered(), 0, "finish leaves nothing held");
}

/// Feeds `reads` as the input says and returns what the decoder reported.
fn drive(dec: &mut Decoder, reads: &[&[u8]], ctrl: &[u8]) -> Vec<Event> {
    let bit = |i: usize, mask: u8| !ctrl.is_empty() && ctrl[i % ctrl.len()] & mask != 0;
    let mut events = Vec::new();
    let mut msgs = 0usize;
    let mut resumes = 0usize;
    let budget: usize = reads.iter().map(|r| r.len()).sum::<usize>() + reads.len() + 8;
    let mut feed = |dec: &mut Decoder, data: &[u8], events: &mut Vec<Event>| -> bool {
        let mut stopped = false;
        let r = feed(dec, data, &mut |m| {
            assert!(!stopped, "callback called again after it returned Stop");
            events.push(Event::Msg(m.to_vec()));
            msgs += 1;
            if bit(msgs, 0x20) {
                stopped = true;
                Flow::Stop
            } else {
                Flow::Continue
            }
        });
        assert_eq!(dec.has_pending(), dec.buffered() > 0);
        match r {
            Ok(Flow::Continue) => {
                assert!(!stopped, "feed returned Continue after the callback stopped");
                assert!(dec.buffered() <= bound(dec.frame()), "holds {} bytes after a full read ({})", dec.buffered(), dec.frame());
                false
            }
            Ok(Flow::Stop) => {
                assert!(stopped, "feed returned Stop but the callback never did");
                true
            }
            Err(e) => {
                assert_eq!(e.code, Code::MsgSize, "{}", e.msg);
                assert!(!e.msg.is_empty());
                events.push(Event::TooLong);
                true
            }
        }
    };
    for (i, data) in reads.iter().enumerate() {
        let mut more = feed(dec, data, &mut events);
        // Resume now, or (bit 6) let the next read carry on.
        while more && (i + 1 == reads.len() || !bit(i, 0x40)) {
            resumes += 1;
            assert!(resumes <= budget, "the decoder makes no progress");
            more = feed(dec, &[], &mut events);
        }
    }
    events
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let frame = frame_of(input.byte(), input.byte());
    let n = usize::from(input.byte() % 32);
    let ctrl = input.take(n);
    let stream = input.rest();
    let sizes: Vec<u8> = ctrl.iter().map(|c| c & 0x1f).collect();
    let reads = split(stream, &sizes);

    let mut dec = Decoder::new(frame);
    assert_eq!(dec.frame(), frame);
    let got = drive(&mut dec, &reads, ctrl);
    let (want, held) = model(frame, stream);
    if let Frame::Raw { max } = frame {
        // Raw: each message is 1..=max bytes (max 0 acts as 1), and together
        // they are the stream, in order.
        let mut all = Vec::new();
        for e in &got {
            let Event::Msg(m) = e else { panic!("raw reported an over-long message") };
            assert!(!m.is_empty() && m.len() <= max.max(1), "raw message of {} bytes (max {max})", m.len());
            all.extend_from_slice(m);
        }
        assert_eq!(all, stream);
    } else {
        assert_eq!(got, want, "{frame}: decoder vs model");
    }
    end_of_stream(&mut dec, held);
});
