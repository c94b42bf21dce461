//! Framing over a byte stream (粘包/拆包): whatever way TCP glues or splits the
//! bytes, `Decoder::feed` must give back exactly the messages `Frame::encode`
//! wrote, report each over-long message once and then carry on, and never
//! hold more than one partial message.

use proptest::prelude::*;
use proptest::test_runner::Config;
use sockflow::frame::{Decoder, Ending, Flow, Frame, DEFAULT_MAX};
use sockflow::Code;

/// What the decoder produced, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Ev {
    Msg(Vec<u8>),
    TooLong,
}

fn msgs(v: &[&[u8]]) -> Vec<Ev> {
    v.iter().map(|m| Ev::Msg(m.to_vec())).collect()
}

/// How the stream is cut into reads.
#[derive(Clone, Debug)]
enum Cut {
    /// Everything in one read (粘包).
    Whole,
    /// One byte per read.
    Bytes,
    /// Reads of these sizes, cycled (拆包).
    Sizes(Vec<usize>),
}

fn cut<'a>(data: &'a [u8], how: &Cut) -> Vec<&'a [u8]> {
    match how {
        Cut::Whole => vec![data],
        Cut::Bytes => data.chunks(1).collect(),
        Cut::Sizes(sizes) => {
            let mut out = Vec::new();
            let mut rest = data;
            for &n in sizes.iter().cycle() {
                if rest.is_empty() {
                    break;
                }
                let (a, b) = rest.split_at(n.clamp(1, rest.len()));
                out.push(a);
                rest = b;
            }
            out
        }
    }
}

/// The most a decoder may hold after a read it fully processed: one
/// incomplete message (a line of `max` bytes plus a `\r` awaiting its `\n`;
/// a length header and all but one byte of the body; a frame minus a byte).
fn partial_max(frame: Frame) -> usize {
    match frame {
        Frame::Line { max } => max + 1,
        Frame::Raw { .. } => 0,
        Frame::Fixed(n) => n - 1,
        Frame::Len32 { max } => 4 + max - 1,
    }
}

/// Feeds `reads` in order. The callback stops after message `i` when
/// `stops[i % len]` is true; the caller then resumes with `feed(&[])` as
/// documented. Each `MsgSize` error is recorded and decoding resumed the
/// same way. Checks the memory bound after every completed read.
fn decode_with(d: &mut Decoder, reads: &[&[u8]], stops: &[bool]) -> Vec<Ev> {
    let mut out = Vec::new();
    let mut n = 0usize;
    for read in reads {
        let mut data: &[u8] = read;
        let mut rounds = 0;
        loop {
            rounds += 1;
            assert!(rounds < 1_000_000, "decoder makes no progress");
            let r = d.feed(data, &mut |m, _| {
                out.push(Ev::Msg(m.to_vec()));
                let stop = !stops.is_empty() && stops[n % stops.len()];
                n += 1;
                if stop {
                    Flow::Stop
                } else {
                    Flow::Continue
                }
            });
            data = &[];
            match r {
                Ok(Flow::Continue) => break,
                Ok(Flow::Stop) => assert!(matches!(out.last(), Some(Ev::Msg(_))), "Stop without a message"),
                Err(e) => {
                    assert_eq!(e.code, Code::MsgSize, "unexpected error: {e}");
                    out.push(Ev::TooLong);
                }
            }
        }
        let held = d.buffered();
        assert!(held <= partial_max(d.frame()), "{} holds {held} bytes after a read", d.frame());
        assert_eq!(d.has_pending(), held > 0);
    }
    out
}

fn decode(frame: Frame, reads: &[&[u8]], stops: &[bool]) -> Vec<Ev> {
    decode_with(&mut Decoder::new(frame), reads, stops)
}

fn encode_all(frame: Frame, messages: &[Vec<u8>]) -> Vec<u8> {
    let mut wire = Vec::new();
    for m in messages {
        frame.encode(m, &mut wire).unwrap_or_else(|e| panic!("{frame} refused {m:?}: {e}"));
    }
    wire
}

// ---- strategies ---------------------------------------------------------

/// Bytes biased toward the ones framing cares about.
fn byte() -> impl Strategy<Value = u8> {
    prop_oneof![
        4 => any::<u8>(),
        2 => b'a'..=b'z',
        1 => Just(b'\n'),
        1 => Just(b'\r'),
        1 => Just(0u8),
        1 => Just(0xffu8),
    ]
}

fn cuts() -> impl Strategy<Value = Cut> {
    prop_oneof![
        1 => Just(Cut::Whole),
        1 => Just(Cut::Bytes),
        4 => prop::collection::vec(1usize..=13, 1..12).prop_map(Cut::Sizes),
    ]
}

fn stops() -> impl Strategy<Value = Vec<bool>> {
    prop_oneof![Just(vec![]), Just(vec![true]), prop::collection::vec(any::<bool>(), 1..8),]
}

/// A message `frame` can carry (and that comes back unchanged).
fn message(frame: Frame) -> BoxedStrategy<Vec<u8>> {
    let upto = frame.max_len().min(40);
    match frame {
        // No `\n`; a trailing `\r` would be stripped as part of a `\r\n`.
        Frame::Line { .. } => prop::collection::vec(byte(), 0..=upto)
            .prop_map(|mut m| {
                m.retain(|&b| b != b'\n');
                while m.last() == Some(&b'\r') {
                    m.pop();
                }
                m
            })
            .boxed(),
        // A C string: no NUL, at most N - 1 bytes.
        Frame::Fixed(_) => prop::collection::vec(byte(), 0..=upto)
            .prop_map(|mut m| {
                m.retain(|&b| b != 0);
                m
            })
            .boxed(),
        Frame::Len32 { .. } | Frame::Raw { .. } => prop::collection::vec(byte(), 0..=upto).boxed(),
    }
}

fn line_frames() -> impl Strategy<Value = Frame> {
    prop_oneof![3 => (1usize..=8).prop_map(|max| Frame::Line { max }), 1 => Just(Frame::Line { max: DEFAULT_MAX })]
}

fn fixed_frames() -> impl Strategy<Value = Frame> {
    prop::sample::select(vec![2usize, 3, 5, 32, 100]).prop_map(Frame::Fixed)
}

fn len32_frames() -> impl Strategy<Value = Frame> {
    prop_oneof![3 => (1usize..=8).prop_map(|max| Frame::Len32 { max }), 1 => Just(Frame::Len32 { max: DEFAULT_MAX })]
}

fn raw_frames() -> impl Strategy<Value = Frame> {
    prop_oneof![3 => (1usize..=8).prop_map(|max| Frame::Raw { max }), 1 => Just(Frame::Raw { max: DEFAULT_MAX })]
}

/// A frame, messages for it, a way to cut the stream and where to stop.
fn session(frames: impl Strategy<Value = Frame>) -> impl Strategy<Value = (Frame, Vec<Vec<u8>>, Cut, Vec<bool>)> {
    frames.prop_flat_map(|f| (Just(f), prop::collection::vec(message(f), 0..16), cuts(), stops()))
}

/// A line over `max` bytes (after a trailing-`\r` strip), without its `\n`.
fn long_line(max: usize) -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(byte(), max + 1..=max * 4 + 3).prop_map(|mut m| {
        for b in &mut m {
            if *b == b'\n' {
                *b = b'N';
            }
        }
        if m.last() == Some(&b'\r') {
            *m.last_mut().unwrap() = b'R';
        }
        m
    })
}

#[derive(Clone, Debug)]
enum Item {
    Ok(Vec<u8>),
    TooLong(Vec<u8>),
}

fn config() -> Config {
    Config { cases: 200, failure_persistence: None, ..Config::default() }
}

// ---- round trips --------------------------------------------------------

proptest! {
    #![proptest_config(config())]

    #[test]
    fn line_round_trips((frame, ms, how, stops) in session(line_frames()), crlf in prop::collection::vec(any::<bool>(), 1..8)) {
        let mut wire = Vec::new();
        for (i, m) in ms.iter().enumerate() {
            frame.encode(m, &mut wire).unwrap();
            if crlf[i % crlf.len()] {
                wire.insert(wire.len() - 1, b'\r');
            }
        }
        let want: Vec<Ev> = ms.iter().cloned().map(Ev::Msg).collect();
        prop_assert_eq!(decode(frame, &cut(&wire, &how), &stops), want);
    }

    #[test]
    fn fixed_round_trips((frame, ms, how, stops) in session(fixed_frames())) {
        let wire = encode_all(frame, &ms);
        prop_assert_eq!(wire.len(), ms.len() * frame.max_len() + ms.len());
        let want: Vec<Ev> = ms.iter().cloned().map(Ev::Msg).collect();
        prop_assert_eq!(decode(frame, &cut(&wire, &how), &stops), want);
    }

    /// The C clients' frames: after the string's NUL come stale bytes of
    /// earlier lines (anything, NULs included); only the string counts.
    #[test]
    fn fixed_ignores_bytes_after_the_nul(
        (frame, ms, how, stops) in session(fixed_frames()),
        junk in prop::collection::vec(any::<u8>(), 1..64),
    ) {
        let mut wire = Vec::new();
        let mut k = 0;
        for m in &ms {
            let start = wire.len();
            frame.encode(m, &mut wire).unwrap();
            for b in &mut wire[start + m.len() + 1..] {
                *b = junk[k % junk.len()];
                k += 1;
            }
        }
        let want: Vec<Ev> = ms.iter().cloned().map(Ev::Msg).collect();
        prop_assert_eq!(decode(frame, &cut(&wire, &how), &stops), want);
    }

    #[test]
    fn len32_round_trips((frame, ms, how, stops) in session(len32_frames())) {
        let wire = encode_all(frame, &ms);
        let want: Vec<Ev> = ms.iter().cloned().map(Ev::Msg).collect();
        prop_assert_eq!(decode(frame, &cut(&wire, &how), &stops), want);
    }

    #[test]
    fn raw_keeps_the_bytes((frame, ms, how, stops) in session(raw_frames())) {
        let wire = encode_all(frame, &ms);
        prop_assert_eq!(&wire, &ms.concat());
        let got = decode(frame, &cut(&wire, &how), &stops);
        let mut joined = Vec::new();
        for ev in got {
            match ev {
                Ev::Msg(m) => {
                    prop_assert!(!m.is_empty() && m.len() <= frame.max_len(), "raw message of {} bytes", m.len());
                    joined.extend_from_slice(&m);
                }
                Ev::TooLong => prop_assert!(false, "raw reported an over-long message"),
            }
        }
        prop_assert_eq!(joined, wire);
    }

    /// Over-long lines (with `\n` or `\r\n`, shorter or longer than a read)
    /// are reported once each; the messages around them come through.
    #[test]
    fn line_too_long_once_then_resync(
        (max, items) in (1usize..=8).prop_flat_map(|max| {
            let f = Frame::Line { max };
            let item = prop_oneof![
                2 => message(f).prop_map(Item::Ok),
                1 => long_line(max).prop_map(Item::TooLong),
            ];
            (Just(max), prop::collection::vec(item, 0..12))
        }),
        how in cuts(),
        stops in stops(),
        crlf in prop::collection::vec(any::<bool>(), 1..8),
    ) {
        let frame = Frame::Line { max };
        let mut wire = Vec::new();
        let mut want = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let body = match item {
                Item::Ok(m) => { want.push(Ev::Msg(m.clone())); m }
                Item::TooLong(m) => { want.push(Ev::TooLong); m }
            };
            wire.extend_from_slice(body);
            wire.extend_from_slice(if crlf[i % crlf.len()] { b"\r\n" } else { b"\n" });
        }
        prop_assert_eq!(decode(frame, &cut(&wire, &how), &stops), want);
    }

    /// A length header over the maximum is reported once; its body is
    /// skipped (never parsed as frames) and the next frame decodes.
    #[test]
    fn len32_too_long_once_then_resync(
        (max, items) in (1usize..=8).prop_flat_map(|max| {
            let f = Frame::Len32 { max };
            let item = prop_oneof![
                2 => message(f).prop_map(Item::Ok),
                1 => prop::collection::vec(byte(), max + 1..=max + 40).prop_map(Item::TooLong),
            ];
            (Just(max), prop::collection::vec(item, 0..12))
        }),
        how in cuts(),
        stops in stops(),
    ) {
        let frame = Frame::Len32 { max };
        let mut wire = Vec::new();
        let mut want = Vec::new();
        for item in &items {
            let body = match item {
                Item::Ok(m) => { want.push(Ev::Msg(m.clone())); m }
                Item::TooLong(m) => { want.push(Ev::TooLong); m }
            };
            wire.extend_from_slice(&(body.len() as u32).to_be_bytes());
            wire.extend_from_slice(body);
        }
        prop_assert_eq!(decode(frame, &cut(&wire, &how), &stops), want);
    }

    /// `encode` refuses exactly what could not come back unchanged, and
    /// appends nothing when it refuses.
    #[test]
    fn encode_refuses_exactly_what_cannot_round_trip(
        frame in prop_oneof![line_frames(), fixed_frames(), len32_frames(), raw_frames()],
        m in prop::collection::vec(byte(), 0..48),
    ) {
        let mut out = b"prefix".to_vec();
        let r = frame.encode(&m, &mut out);
        let (too_long, bad_byte) = match frame {
            Frame::Line { max } => (m.len() > max, m.contains(&b'\n')),
            Frame::Fixed(n) => (m.len() >= n, m.contains(&0)),
            Frame::Len32 { max } | Frame::Raw { max } => (m.len() > max, false),
        };
        match r {
            Err(e) => {
                prop_assert_eq!(&out, b"prefix");
                let want = if too_long { Code::MsgSize } else { Code::Inval };
                prop_assert!(too_long || bad_byte, "refused a good message: {}", e);
                prop_assert_eq!(e.code, want);
            }
            Ok(()) => {
                prop_assert!(!too_long && !bad_byte, "accepted a bad message");
                if let Frame::Raw { .. } = frame {
                    prop_assert_eq!(&out[6..], &m[..]);
                } else {
                    let got = decode(frame, &[&out[6..]], &[]);
                    let mut want = m.clone();
                    // A line's trailing `\r` reads as part of a `\r\n` ending.
                    if matches!(frame, Frame::Line { .. }) && want.last() == Some(&b'\r') {
                        want.pop();
                    }
                    prop_assert_eq!(got, vec![Ev::Msg(want)]);
                }
            }
        }
    }

    #[test]
    fn frame_spec_round_trips(frame in prop_oneof![
        (1usize..=sockflow::frame::LIMIT_MAX).prop_map(|max| Frame::Line { max }),
        (1usize..=sockflow::frame::LIMIT_MAX).prop_map(|max| Frame::Raw { max }),
        (2usize..=sockflow::frame::LIMIT_MAX).prop_map(Frame::Fixed),
        (1usize..=sockflow::frame::LIMIT_MAX).prop_map(|max| Frame::Len32 { max }),
    ]) {
        prop_assert_eq!(Frame::parse(&frame.to_string()), Ok(frame));
    }
}

// ---- fixed cases ----------------------------------------------------------

/// Every way to cut `wire` into two reads, plus one read and 1-byte reads.
fn all_two_cuts(wire: &[u8]) -> Vec<Vec<&[u8]>> {
    let mut v: Vec<Vec<&[u8]>> = (0..=wire.len()).map(|k| vec![&wire[..k], &wire[k..]]).collect();
    v.push(cut(wire, &Cut::Bytes));
    v
}

/// The wire dump of the tutorial's C client (see the peers README): five
/// 32-byte frames, stale bytes of earlier lines after each NUL.
#[test]
fn tutorial_c_client_frames() {
    fn frame(parts: &[&[u8]]) -> Vec<u8> {
        let f = parts.concat();
        assert_eq!(f.len(), 32, "{:?}", String::from_utf8_lossy(&f));
        f
    }
    let mut wire = Vec::new();
    wire.extend(frame(&[b"hello world long", &[0; 16]]));
    wire.extend(frame(&[b"hi\0\0o world long", &[0; 16]]));
    wire.extend(frame(&[b"0123456789012345678901234567890\0"]));
    wire.extend(frame(&[b"123456789", &[0, 0], b"12345678901234567890", &[0]]));
    wire.extend(frame(&[b"quit", &[0, 0], b"789", &[0, 0], b"12345678901234567890", &[0]]));
    assert_eq!(wire.len(), 160);
    let want = msgs(&[b"hello world long", b"hi", b"0123456789012345678901234567890", b"123456789", b"quit"]);
    for reads in all_two_cuts(&wire) {
        assert_eq!(decode(Frame::Fixed(32), &reads, &[]), want);
        assert_eq!(decode(Frame::Fixed(32), &reads, &[true]), want);
    }
    // The brief's example: one frame, read as 10 + 22 bytes.
    let mut f = b"hi\0\0o world long\0".to_vec();
    f.resize(32, 0);
    assert_eq!(decode(Frame::Fixed(32), &[&f[..10], &f[10..]], &[]), msgs(&[b"hi"]));
    // A frame with no NUL at all is refused (a C reader would run past it),
    // once, and the next frame decodes.
    let mut two = vec![b'A'; 32];
    two.extend(frame(&[b"ok", &[0; 30]]));
    let mut d = Decoder::new(Frame::Fixed(32));
    let mut got = Vec::new();
    let e = d.feed(&two, &mut |m, _| {
        got.push(m.to_vec());
        Flow::Continue
    });
    assert_eq!(e.unwrap_err().code, sockflow::Code::MsgSize);
    d.feed(&[], &mut |m, _| {
        got.push(m.to_vec());
        Flow::Continue
    })
    .unwrap();
    assert_eq!(got, vec![b"ok".to_vec()]);
}

#[test]
fn crlf_and_lf_lines() {
    let wire: &[u8] = b"a\r\nb\n\r\n\n\r\r\nx\ry\r\n";
    let want = msgs(&[b"a", b"b", b"", b"", b"\r", b"x\ry"]);
    for reads in all_two_cuts(wire) {
        assert_eq!(decode(Frame::default(), &reads, &[]), want);
    }
    // Exactly max bytes with `\r\n` fits; max + 1 does not.
    let f = Frame::Line { max: 3 };
    for reads in all_two_cuts(b"abc\r\nabcd\r\nok\n") {
        assert_eq!(decode(f, &reads, &[]), vec![Ev::Msg(b"abc".to_vec()), Ev::TooLong, Ev::Msg(b"ok".to_vec())]);
    }
    // A line without its end is held, not delivered.
    let mut d = Decoder::new(Frame::default());
    assert_eq!(decode_with(&mut d, &[b"partial\r"], &[]), vec![]);
    assert!(d.has_pending());
    assert_eq!(d.buffered(), 8);
}

#[test]
fn nul_bytes() {
    let want = msgs(&[b"a\0b", b"\0", b""]);
    assert_eq!(decode(Frame::default(), &[b"a\0b\n\0\n\n"], &[]), want);
    let wire = encode_all(Frame::Len32 { max: 8 }, &[b"a\0b".to_vec(), b"\0".to_vec(), vec![]]);
    assert_eq!(wire, b"\0\0\0\x03a\0b\0\0\0\x01\0\0\0\0\0");
    assert_eq!(decode(Frame::Len32 { max: 8 }, &[&wire], &[]), want);
    // fixed: a NUL cannot be sent (it would end the string early).
    let mut out = Vec::new();
    let e = Frame::Fixed(32).encode(b"a\0b", &mut out).unwrap_err();
    assert_eq!(e.code, Code::Inval);
    assert_eq!(e.msg, "a fixed-frame message cannot contain a NUL byte");
    assert!(out.is_empty());
}

#[test]
fn invalid_utf8_passes_through() {
    let bad: &[u8] = b"\xff\xfe\xc3(\xe4\xbd\x80\xed\xa0\x80";
    for frame in [Frame::default(), Frame::Fixed(32), Frame::Len32 { max: DEFAULT_MAX }] {
        let wire = encode_all(frame, &[bad.to_vec(), "你好".as_bytes().to_vec()]);
        for reads in all_two_cuts(&wire) {
            assert_eq!(decode(frame, &reads, &[]), msgs(&[bad, "你好".as_bytes()]), "{frame}");
        }
    }
    assert_eq!(decode(Frame::Raw { max: DEFAULT_MAX }, &[bad], &[]), msgs(&[bad]));
}

#[test]
fn encode_errors_say_why() {
    let mut out = Vec::new();
    let e = Frame::default().encode(b"a\nb", &mut out).unwrap_err();
    assert_eq!((e.code, e.msg.as_str()), (Code::Inval, "a line message cannot contain a newline"));
    let e = Frame::Line { max: 3 }.encode(b"abcd", &mut out).unwrap_err();
    assert_eq!((e.code, e.msg.as_str()), (Code::MsgSize, "message of 4 bytes is longer than line:3 allows (3 bytes)"));
    let e = Frame::Fixed(32).encode(&[b'x'; 32], &mut out).unwrap_err();
    assert_eq!((e.code, e.msg.as_str()), (Code::MsgSize, "message of 32 bytes is longer than fixed:32 allows (31 bytes)"));
    let e = Frame::Len32 { max: DEFAULT_MAX }.encode(&vec![0; DEFAULT_MAX + 1], &mut out).unwrap_err();
    assert_eq!(e.msg, "message of 65537 bytes is longer than len32:65536 allows (65536 bytes)");
    assert!(out.is_empty());
    Frame::Fixed(4).encode(b"abc", &mut out).unwrap();
    Frame::Fixed(4).encode(b"", &mut out).unwrap();
    assert_eq!(out, b"abc\0\0\0\0\0");
}

#[test]
fn over_long_line_with_and_without_newline() {
    let f = Frame::Line { max: 4 };
    // Longer than max, then a newline, in one read and byte by byte.
    for reads in all_two_cuts(b"abcdefgh\nok\n") {
        assert_eq!(decode(f, &reads, &[]), vec![Ev::TooLong, Ev::Msg(b"ok".to_vec())]);
    }
    // max + 1 bytes and `\n`: too long, detected only at the newline.
    for reads in all_two_cuts(b"abcde\nok\n") {
        assert_eq!(decode(f, &reads, &[]), vec![Ev::TooLong, Ev::Msg(b"ok".to_vec())]);
    }
    // No newline yet: reported as soon as it cannot fit, once, and the
    // rest of that line is dropped as it arrives.
    let mut d = Decoder::new(f);
    assert_eq!(decode_with(&mut d, &[b"abcdefgh"], &[]), vec![Ev::TooLong]);
    assert_eq!(decode_with(&mut d, &[b"ijklmnop", b"qrst"], &[]), vec![]);
    assert!(!d.has_pending());
    assert_eq!(decode_with(&mut d, &[b"uv\r\nnext\r\n"], &[]), msgs(&[b"next"]));
    let e = Decoder::new(f).feed(b"abcdefgh", &mut |_, _| Flow::Continue).unwrap_err();
    assert_eq!(e.code, Code::MsgSize);
    assert_eq!(e.msg, "incoming message of more than 8 bytes is longer than line:4 allows (4 bytes)");
    let e = Decoder::new(f).feed(b"abcdef\n", &mut |_, _| Flow::Continue).unwrap_err();
    assert_eq!(e.msg, "incoming message of 6 bytes is longer than line:4 allows (4 bytes)");
}

#[test]
fn len32_header_over_max() {
    let f = Frame::Len32 { max: 4 };
    let mut wire = b"\0\0\0\x05abcde".to_vec();
    wire.extend_from_slice(b"\0\0\0\x04\0\0\0\x01"); // a body that looks like a header
    for reads in all_two_cuts(&wire) {
        assert_eq!(decode(f, &reads, &[]), vec![Ev::TooLong, Ev::Msg(b"\0\0\0\x01".to_vec())]);
    }
    let e = Decoder::new(f).feed(b"\0\0\0\x05", &mut |_, _| Flow::Continue).unwrap_err();
    assert_eq!(e.code, Code::MsgSize);
    assert_eq!(e.msg, "incoming message of 5 bytes is longer than len32:4 allows (4 bytes)");
}

/// A header of 0xFFFFFFFF: reported once at once (no 4 GiB allocation); its
/// body is dropped as it arrives, and the frame after it decodes.
#[test]
fn len32_huge_header() {
    let mut d = Decoder::new(Frame::Len32 { max: DEFAULT_MAX });
    let mut got = Vec::new();
    for (i, b) in [0xffu8; 4].iter().enumerate() {
        let r = d.feed(std::slice::from_ref(b), &mut |m, _| {
            got.push(m.to_vec());
            Flow::Continue
        });
        if i < 3 {
            assert_eq!(r.unwrap(), Flow::Continue);
        } else {
            let e = r.unwrap_err();
            assert_eq!(e.code, Code::MsgSize);
            assert_eq!(e.msg, "incoming message of 4294967295 bytes is longer than len32:65536 allows (65536 bytes)");
        }
    }
    let chunk = vec![b'z'; 1 << 20];
    let mut left: u64 = 0xffff_ffff;
    while left > 0 {
        let n = left.min(chunk.len() as u64) as usize;
        // The last piece of the body comes glued to the next frame.
        if n == left as usize {
            let mut tail = chunk[..n].to_vec();
            tail.extend_from_slice(b"\0\0\0\x02ok\0\0\0");
            assert_eq!(decode_with(&mut d, &[&tail], &[]), msgs(&[b"ok"]));
            break;
        }
        assert_eq!(d.feed(&chunk[..n], &mut |_, _| panic!("a message inside the skipped body")).unwrap(), Flow::Continue);
        assert_eq!(d.buffered(), 0);
        left -= n as u64;
    }
    assert_eq!(d.buffered(), 3);
    assert_eq!(decode_with(&mut d, &[b"\x01!"], &[]), msgs(&[b"!"]));
    assert!(got.is_empty());
}

/// An 8 MiB line with no end in sight, fed in small reads, never makes the
/// decoder hold more than one maximum-length line.
#[test]
fn over_long_line_memory_stays_bounded() {
    for ending in [&b"\n"[..], b"\r\n", b""] {
        let f = Frame::default();
        let mut d = Decoder::new(f);
        let mut events = Vec::new();
        let piece = vec![b'x'; 1000];
        let mut high = 0;
        // A few tiny reads first, then 1000-byte reads.
        for _ in 0..50 {
            events.extend(decode_with(&mut d, &[b"x"], &[]));
            high = high.max(d.buffered());
        }
        for _ in 0..8 * 1024 {
            events.extend(decode_with(&mut d, &[&piece], &[]));
            high = high.max(d.buffered());
        }
        assert!(high <= DEFAULT_MAX + 1, "held {high} bytes");
        if ending.is_empty() {
            // The stream ends inside the line: one error, nothing held.
            assert_eq!(events, vec![Ev::TooLong]);
            assert!(!d.has_pending());
            continue;
        }
        events.extend(decode_with(&mut d, &[ending, b"after\n"], &[]));
        assert_eq!(events, vec![Ev::TooLong, Ev::Msg(b"after".to_vec())], "ending {ending:?}");
    }
    // The same line in one big read is dropped whole, nothing kept.
    let mut big = vec![b'y'; 8 << 20];
    big.extend_from_slice(b"\nafter\npart");
    let mut d = Decoder::new(Frame::default());
    assert_eq!(decode_with(&mut d, &[&big], &[]), vec![Ev::TooLong, Ev::Msg(b"after".to_vec())]);
    assert_eq!(d.buffered(), 4);
}

#[test]
fn stop_keeps_the_rest_for_the_next_feed() {
    let mut d = Decoder::new(Frame::default());
    let mut seen: Vec<Vec<u8>> = Vec::new();
    fn take_one(d: &mut Decoder, data: &[u8], seen: &mut Vec<Vec<u8>>) -> sockflow::Result<Flow> {
        d.feed(data, &mut |m, _| {
            seen.push(m.to_vec());
            Flow::Stop
        })
    }
    assert_eq!(take_one(&mut d, b"one\ntwo\nthr", &mut seen).unwrap(), Flow::Stop);
    assert_eq!(seen, [b"one"]);
    assert!(d.has_pending());
    assert_eq!(d.buffered(), 7);
    assert_eq!(take_one(&mut d, &[], &mut seen).unwrap(), Flow::Stop);
    assert_eq!(seen, [&b"one"[..], b"two"]);
    // Only a partial message is left: nothing to deliver.
    assert_eq!(take_one(&mut d, &[], &mut seen).unwrap(), Flow::Continue);
    assert_eq!(seen.len(), 2);
    assert_eq!(take_one(&mut d, b"ee\n", &mut seen).unwrap(), Flow::Stop);
    assert_eq!(seen.last().unwrap(), b"three");
    // Stopping on the last message of a read leaves nothing behind.
    assert!(!d.has_pending());
    assert_eq!(take_one(&mut d, &[], &mut seen).unwrap(), Flow::Continue);
    assert_eq!(seen.len(), 3);

    // A stop just before an over-long message: the error comes on resume.
    let mut d = Decoder::new(Frame::Line { max: 2 });
    let mut seen = Vec::new();
    assert_eq!(take_one(&mut d, b"ok\ntoolong\nye\n", &mut seen).unwrap(), Flow::Stop);
    assert_eq!(take_one(&mut d, &[], &mut seen).unwrap_err().code, Code::MsgSize);
    assert_eq!(take_one(&mut d, &[], &mut seen).unwrap(), Flow::Stop);
    assert_eq!(seen, [&b"ok"[..], b"ye"]);
    assert!(!d.has_pending());
}

#[test]
fn empty_reads_and_fresh_decoders() {
    for f in [Frame::default(), Frame::Raw { max: 4 }, Frame::Fixed(2), Frame::Len32 { max: 1 }] {
        let mut d = Decoder::new(f);
        assert_eq!(d.feed(&[], &mut |_, _| panic!("no message in nothing")).unwrap(), Flow::Continue);
        assert!(!d.has_pending());
        assert_eq!(d.buffered(), 0);
        assert_eq!(d.frame(), f);
    }
    // Raw hands out at most max bytes per message, even from one big read.
    assert_eq!(decode(Frame::Raw { max: 4 }, &[b"abcdefghij"], &[]), msgs(&[b"abcd", b"efgh", b"ij"]));
    // fixed:2 carries one byte of text.
    assert_eq!(decode(Frame::Fixed(2), &[b"a\0\0\0b"], &[]), msgs(&[b"a", b""]));
}

/// Frames built by hand past `Frame::parse`'s limits (raw:0, fixed:0,
/// fixed:1) must neither hang the decoder nor panic: raw:0 and fixed:0 act
/// as raw:1 and fixed:1.
#[test]
fn hand_built_degenerate_frames_terminate() {
    for f in [Frame::Raw { max: 0 }, Frame::Fixed(0), Frame::Fixed(1)] {
        let mut n = 0;
        let mut got = Vec::new();
        let mut d = Decoder::new(f);
        // fixed:1 frames without their NUL ("a", "b") are refused, one error each.
        let mut errors = 0;
        let mut data: &[u8] = b"ab\0";
        loop {
            let r = d.feed(data, &mut |m, _| {
                n += 1;
                assert!(n < 100, "{f:?} makes no progress");
                got.push(Ev::Msg(m.to_vec()));
                Flow::Continue
            });
            data = &[];
            match r {
                Ok(flow) => {
                    assert_eq!(flow, Flow::Continue);
                    break;
                }
                Err(_) => {
                    errors += 1;
                    assert!(errors < 10, "{f:?} makes no progress");
                }
            }
        }
        let (want, want_errors) = if let Frame::Raw { .. } = f { (msgs(&[b"a", b"b", b"\0"]), 0) } else { (msgs(&[b""]), 2) };
        assert_eq!((got, errors), (want, want_errors), "{f:?}");
    }
    assert_eq!(Frame::Fixed(0).max_len(), 0);
    let mut out = Vec::new();
    Frame::Fixed(0).encode(b"", &mut out).unwrap();
    assert_eq!(out, b"\0");
}

// ---- line endings and end of stream -------------------------------------

/// Everything a decoder gives for `reads` followed by end of stream: the
/// messages with their endings, each over-long one as `Err(MsgSize)`, and
/// what `finish` reported.
fn decode_to_end(frame: Frame, reads: &[&[u8]]) -> Vec<Result<(Vec<u8>, Ending), sockflow::Error>> {
    let mut d = Decoder::new(frame);
    let mut out = Vec::new();
    for read in reads {
        let mut data: &[u8] = read;
        for _ in 0..1000 {
            let r = d.feed(data, &mut |m, e| {
                out.push(Ok((m.to_vec(), e)));
                Flow::Continue
            });
            data = &[];
            match r {
                Ok(_) => break,
                Err(e) => out.push(Err(e)),
            }
        }
    }
    for _ in 0..1000 {
        let r = d.finish(&mut |m, e| {
            out.push(Ok((m.to_vec(), e)));
            Flow::Continue
        });
        match r {
            Ok(_) => break,
            Err(e) => out.push(Err(e)),
        }
    }
    assert!(!d.has_pending(), "{frame} holds {} bytes after finish", d.buffered());
    assert_eq!(d.finish(&mut |_, _| panic!("a message after the end")).unwrap(), Flow::Continue);
    out
}

fn endings() -> impl Strategy<Value = Ending> {
    prop_oneof![Just(Ending::Lf), Just(Ending::CrLf)]
}

proptest! {
    #![proptest_config(config())]

    /// Each line comes with the ending it had (the last one may have none)
    /// and encoding every message back with its ending gives the very bytes
    /// that arrived: what an echo needs to be byte-exact.
    #[test]
    fn line_endings_come_back_exactly(
        (frame, ms) in line_frames().prop_flat_map(|f| (Just(f), prop::collection::vec(message(f), 0..12))),
        ends in prop::collection::vec(endings(), 1..8),
        unterminated in any::<bool>(),
        how in cuts(),
    ) {
        let mut wire = Vec::new();
        let mut want = Vec::new();
        for (i, m) in ms.iter().enumerate() {
            // An unterminated empty last line is no line at all.
            let e = if unterminated && i + 1 == ms.len() && !m.is_empty() { Ending::None } else { ends[i % ends.len()] };
            frame.encode_ending(m, e, &mut wire).unwrap();
            want.push((m.clone(), e));
        }
        let got: Vec<_> = decode_to_end(frame, &cut(&wire, &how)).into_iter().map(|r| r.unwrap()).collect();
        prop_assert_eq!(&got, &want);
        let mut again = Vec::new();
        for (m, e) in &got {
            frame.encode_ending(m, *e, &mut again).unwrap();
        }
        prop_assert_eq!(again, wire);
    }

    /// A stream that ends inside a fixed or len32 frame: every whole frame
    /// before the cut is delivered, then one `Closed` error that says how
    /// many of the frame's bytes arrived; a cut on a boundary is a clean end.
    #[test]
    fn end_of_stream_inside_a_frame_is_reported(
        (frame, ms) in prop_oneof![fixed_frames(), len32_frames()].prop_flat_map(|f| (Just(f), prop::collection::vec(message(f), 1..8))),
        at in any::<prop::sample::Index>(),
        how in cuts(),
    ) {
        let mut wire = Vec::new();
        let mut bounds = vec![0];
        for m in &ms {
            frame.encode(m, &mut wire).unwrap();
            bounds.push(wire.len());
        }
        let k = at.index(wire.len() + 1);
        let whole = bounds.iter().filter(|&&b| b <= k).count() - 1;
        let got = decode_to_end(frame, &cut(&wire[..k], &how));
        let msgs: Vec<Vec<u8>> = got.iter().filter_map(|r| r.as_ref().ok().map(|(m, _)| m.clone())).collect();
        prop_assert_eq!(&msgs[..], &ms[..whole]);
        let errs: Vec<&sockflow::Error> = got.iter().filter_map(|r| r.as_ref().err()).collect();
        let start = bounds[whole];
        if k == start {
            prop_assert!(errs.is_empty(), "clean end reported as {:?}", errs);
        } else {
            prop_assert_eq!(errs.len(), 1);
            prop_assert_eq!(errs[0].code, Code::Closed);
            let have = k - start;
            let said = match frame {
                Frame::Len32 { .. } if have < 4 => format!("{have} of the 4 length bytes arrived"),
                _ => format!("{have} of {} bytes arrived", bounds[whole + 1] - start),
            };
            prop_assert!(errs[0].msg.contains(&said), "{:?} does not say {:?}", errs[0].msg, said);
            prop_assert!(matches!(got.last(), Some(Err(_))), "the error comes after every message");
        }
    }
}

#[test]
fn finish_gives_the_last_unterminated_line_once() {
    let got: Vec<_> = decode_to_end(Frame::default(), &[b"one\r\ntwo\nthr", b"ee"]).into_iter().map(|r| r.unwrap()).collect();
    assert_eq!(got, vec![(b"one".to_vec(), Ending::CrLf), (b"two".to_vec(), Ending::Lf), (b"three".to_vec(), Ending::None)]);
    // A trailing `\r` without its `\n` is data, so the echo stays exact.
    let got = decode_to_end(Frame::default(), &[b"x\r"]);
    assert_eq!(got.into_iter().map(|r| r.unwrap()).collect::<Vec<_>>(), vec![(b"x\r".to_vec(), Ending::None)]);
    // An over-long line cut by the end is reported once, as it arrived.
    let got = decode_to_end(Frame::Line { max: 3 }, &[b"abcdefgh"]);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].as_ref().unwrap_err().code, Code::MsgSize);
    // max + 1 bytes ending in `\r`: held for a `\n` that never comes.
    let got = decode_to_end(Frame::Line { max: 3 }, &[b"abc\r"]);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].as_ref().unwrap_err().code, Code::MsgSize);
    // Raw holds nothing: every read is a message.
    let got = decode_to_end(Frame::Raw { max: 4 }, &[b"abcdef"]);
    assert_eq!(got.into_iter().map(|r| r.unwrap().0).collect::<Vec<_>>(), vec![b"abcd".to_vec(), b"ef".to_vec()]);
    // Messages a `Stop` left are delivered by `finish` before the last line.
    let mut d = Decoder::new(Frame::default());
    d.feed(b"a\nb\nc", &mut |_, _| Flow::Stop).unwrap();
    let mut seen = Vec::new();
    while d.has_pending() {
        d.finish(&mut |m, e| {
            seen.push((m.to_vec(), e));
            Flow::Stop
        })
        .unwrap();
    }
    assert_eq!(seen, vec![(b"b".to_vec(), Ending::Lf), (b"c".to_vec(), Ending::None)]);
}

#[test]
fn end_of_stream_messages_say_what_was_cut() {
    let got = decode_to_end(Frame::Len32 { max: 100 }, &[b"\0\0\0\x64abc"]);
    let e = got[0].as_ref().unwrap_err();
    assert_eq!(e.code, Code::Closed);
    assert!(e.msg.contains("len32:100") && e.msg.contains("7 of 104 bytes arrived"), "{}", e.msg);
    let got = decode_to_end(Frame::Fixed(32), &[b"hello"]);
    let e = got[0].as_ref().unwrap_err();
    assert!(e.msg.contains("fixed:32") && e.msg.contains("5 of 32 bytes arrived"), "{}", e.msg);
}
