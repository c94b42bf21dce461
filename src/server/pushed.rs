//! Which of a connection's queued outgoing bytes others pushed to it.
//!
//! A connection's queue holds two kinds of bytes in one stream: its own
//! replies (what its handler sent while handling its messages) and bytes
//! pushed to it by others (`send_to`, broadcasts, `ServerHandle::send`).
//! They need different bounds: the peer controls its own replies by how
//! fast it sends, so past a high-water mark the loop simply stops reading
//! it (backpressure, nothing lost); it does not control what others push,
//! so only those bytes are held against `max_queue` and drop a peer that
//! will not take them. This records the pushed ranges by stream offset so
//! both counts stay exact as bytes leave in order.

use std::collections::VecDeque;
use std::ops::Range;

/// Nothing allocated while no pushed bytes are queued (the usual case), so
/// idle connections stay small.
#[derive(Default)]
pub(crate) struct Pushed(Option<Box<Ranges>>);

#[derive(Default)]
struct Ranges {
    /// Stream offset of the first unsent byte of the queue (counted from
    /// when the first of these ranges was pushed).
    head: u64,
    /// Pushed ranges not yet fully sent, in order; adjacent ones merged, so
    /// there are at most as many as own-reply runs between them.
    ranges: VecDeque<Range<u64>>,
    /// Sum of the ranges' lengths.
    total: u64,
}

impl Pushed {
    /// `len` pushed bytes were appended behind `queued` unsent bytes.
    pub(crate) fn add(&mut self, queued: usize, len: usize) {
        let r = self.0.get_or_insert_with(Box::default);
        let start = r.head + queued as u64;
        let end = start + len as u64;
        r.total += len as u64;
        match r.ranges.back_mut() {
            Some(last) if last.end == start => last.end = end,
            _ => r.ranges.push_back(start..end),
        }
    }

    /// `n` bytes left the front of the queue.
    pub(crate) fn sent(&mut self, n: usize) {
        let Some(r) = self.0.as_deref_mut() else { return };
        r.head += n as u64;
        while r.ranges.front().is_some_and(|f| f.end <= r.head) {
            let f = r.ranges.pop_front().unwrap_or_default();
            r.total -= f.end - f.start;
        }
        if r.ranges.is_empty() {
            self.0 = None;
        }
    }

    /// Pushed bytes still queued.
    pub(crate) fn bytes(&self) -> usize {
        let Some(r) = self.0.as_deref() else { return 0 };
        let sent_of_first = r.ranges.front().map_or(0, |f| r.head.saturating_sub(f.start));
        (r.total - sent_of_first) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::Pushed;

    #[test]
    fn counts_follow_sent_bytes_across_own_and_pushed_runs() {
        let mut p = Pushed::default();
        // queue: 10 own, 5 pushed, 3 own, 4 pushed (merged with nothing)
        p.add(10, 5);
        p.add(18, 4);
        assert_eq!(p.bytes(), 9);
        p.sent(12); // into the first pushed run
        assert_eq!(p.bytes(), 7);
        p.sent(3); // first run done
        assert_eq!(p.bytes(), 4);
        p.add(7, 2); // right behind the second run: merged
        assert_eq!(p.0.as_ref().unwrap().ranges.len(), 1);
        p.sent(3); // own bytes
        assert_eq!(p.bytes(), 6);
        p.sent(6);
        assert_eq!(p.bytes(), 0);
        assert!(p.0.is_none(), "freed once every pushed byte is sent");
    }
}
