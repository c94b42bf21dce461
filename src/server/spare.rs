//! Buffers lent to connections: a loop's small pool of empty byte buffers.
//!
//! Two goals pull against each other. An idle connection should hold no
//! buffer (10,000 idle clients must not keep 10,000 reply buffers), so a
//! buffer is given up as soon as it empties. But a busy connection empties
//! and refills its buffers on every message (a partial message left by one
//! read, replies the socket did not take at once), and a malloc plus a free
//! per message is what a hand-written server does not pay. So an emptied
//! buffer goes back to this pool instead of to the allocator, and the next
//! connection that needs one takes it from here: in steady state nothing is
//! allocated, and idle connections hold nothing. The pool is bounded, in
//! buffers and in each buffer's size, so what it keeps is small.

/// Most buffers kept: about as many as connections hold at once under load
/// (pipelining clients often leave a partial message between reads).
const KEEP: usize = 1024;
/// Most bytes kept in all.
const KEEP_BYTES: usize = 1 << 20;
/// Buffers larger than this go back to the allocator.
const KEEP_CAPACITY: usize = 16 * 1024;
/// A new buffer's room: most messages and reply runs fit, so a kept buffer
/// seldom has to grow.
const NEW_CAPACITY: usize = 512;

pub(super) struct Spare {
    kept: Vec<Vec<u8>>,
    /// Sum of the kept buffers' capacities.
    bytes: usize,
}

/// Room reserved in the list up front: its first growths would otherwise
/// fall at the first moments several buffers come back at once, which can
/// be long after start (the allocation test caught one in 100,000 echoes).
const LIST_ROOM: usize = 64;

impl Default for Spare {
    fn default() -> Spare {
        Spare { kept: Vec::with_capacity(LIST_ROOM), bytes: 0 }
    }
}

impl Spare {
    /// An empty buffer: a kept one, or a new one.
    pub(super) fn take(&mut self) -> Vec<u8> {
        match self.kept.pop() {
            Some(b) => {
                self.bytes -= b.capacity();
                b
            }
            None => Vec::with_capacity(NEW_CAPACITY),
        }
    }

    /// Takes `buf` back (emptied) when it is worth keeping and there is room.
    pub(super) fn give(&mut self, mut buf: Vec<u8>) {
        let cap = buf.capacity();
        if cap > 0 && cap <= KEEP_CAPACITY && self.kept.len() < KEEP && self.bytes + cap <= KEEP_BYTES {
            buf.clear();
            self.bytes += cap;
            // The list's own room grows by doubling: a few times in a
            // server's life, never in steady state.
            self.kept.push(buf);
        }
    }

    /// Appends `bytes` to `buf`, first lending it a kept buffer if it has none.
    pub(super) fn append(&mut self, buf: &mut Vec<u8>, bytes: &[u8]) {
        if buf.capacity() == 0 {
            *buf = self.take();
        }
        buf.extend_from_slice(bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_bounded_buffers_and_lends_them_again() {
        let mut s = Spare::default();
        s.give(Vec::with_capacity(100));
        s.give(Vec::new()); // no memory: nothing to keep
        s.give(Vec::with_capacity(KEEP_CAPACITY + 1)); // too large
        assert_eq!(s.kept.len(), 1);
        let b = s.take();
        assert!(b.is_empty() && b.capacity() >= 100);
        assert_eq!(s.bytes, 0);
        assert_eq!(s.take().capacity(), NEW_CAPACITY, "a new buffer when none is kept");
        for _ in 0..KEEP + 5 {
            s.give(Vec::with_capacity(8));
        }
        assert_eq!(s.kept.len(), KEEP);
        for _ in 0..KEEP_BYTES / KEEP_CAPACITY + 5 {
            s.give(Vec::with_capacity(KEEP_CAPACITY));
        }
        assert!(s.bytes <= KEEP_BYTES);
        let mut buf = Vec::new();
        s.append(&mut buf, b"abc");
        assert_eq!(buf.as_slice(), &b"abc"[..]);
    }
}
