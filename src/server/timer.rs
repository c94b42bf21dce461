//! Timers on a server's loop thread: one-shot and repeating callbacks,
//! added and cancelled from any thread through the command queue.
//!
//! A binary heap ordered by deadline gives the loop its poll timeout (it
//! sleeps exactly until the earliest timer or an event, never polls).
//! Cancelled timers leave their heap entry behind (removing from the middle
//! of a heap costs a scan) and are skipped when they come up; the entry map
//! is the truth about which timers live.

use super::ServerHandle;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::time::{Duration, Instant};

/// A timer's id: unique for the server's life, never 0.
pub type TimerId = u64;

/// What a timer's callback wants next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimerAction {
    /// A repeating timer fires again after its period (a one-shot timer is done anyway).
    Continue,
    /// The timer is done: it does not fire again.
    Cancel,
}

/// What a timer's callback is given.
pub struct TimerCtx {
    pub(crate) id: TimerId,
    pub(crate) server: ServerHandle,
}

impl TimerCtx {
    /// The id [`ServerHandle::add_timer`] returned for this timer.
    pub fn id(&self) -> TimerId {
        self.id
    }

    /// The server whose loop runs the timer: send, broadcast, stop, more timers.
    pub fn server(&self) -> &ServerHandle {
        &self.server
    }
}

/// A timer's callback; runs on the loop thread, so it must not block.
pub type TimerFn = Box<dyn FnMut(&TimerCtx) -> TimerAction + Send>;

/// One timer as the loop keeps it.
pub(crate) struct Timer {
    pub(crate) at: Instant,
    pub(crate) repeat: Option<Duration>,
    pub(crate) f: TimerFn,
}

/// The sooner of two optional waits (None: no limit).
pub(crate) fn sooner(a: Option<Duration>, b: Option<Duration>) -> Option<Duration> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// A timer change queued by another thread (or a callback).
pub(crate) enum TimerCommand {
    /// Start a timer (its deadline was fixed when it was added).
    Add { id: TimerId, timer: Timer },
    /// Drop a timer; it does not fire again.
    Cancel { id: TimerId },
}

/// The timers of one loop.
#[derive(Default)]
pub(crate) struct Timers {
    heap: BinaryHeap<Reverse<(Instant, TimerId)>>,
    live: HashMap<TimerId, Timer>,
}

impl Timers {
    pub(crate) fn apply(&mut self, c: TimerCommand) {
        match c {
            TimerCommand::Add { id, timer } => self.add(id, timer),
            TimerCommand::Cancel { id } => self.cancel(id),
        }
    }

    pub(crate) fn add(&mut self, id: TimerId, t: Timer) {
        self.heap.push(Reverse((t.at, id)));
        self.live.insert(id, t);
    }

    pub(crate) fn cancel(&mut self, id: TimerId) {
        self.live.remove(&id);
    }

    /// The earliest deadline of a live timer (dropping cancelled entries on the way).
    #[inline]
    pub(crate) fn next(&mut self) -> Option<Instant> {
        if self.heap.is_empty() {
            return None; // most loops have no timers: no hash lookup per turn
        }
        while let Some(&Reverse((at, id))) = self.heap.peek() {
            match self.live.get(&id) {
                Some(t) if t.at == at => return Some(at),
                _ => {
                    self.heap.pop();
                }
            }
        }
        None
    }

    /// Takes the earliest timer if it is due at `now` (never before its deadline).
    pub(crate) fn due(&mut self, now: Instant) -> Option<(TimerId, Timer)> {
        let at = self.next()?;
        if at > now {
            return None;
        }
        let Reverse((_, id)) = self.heap.pop()?;
        self.live.remove(&id).map(|t| (id, t))
    }

    /// Puts back a repeating timer that fired at its deadline: next at one
    /// period later (no drift), or one period from now if the loop fell
    /// behind (no burst of catch-up calls).
    pub(crate) fn again(&mut self, id: TimerId, mut t: Timer, now: Instant) {
        let Some(period) = t.repeat else { return };
        t.at += period;
        if t.at <= now {
            t.at = now + period;
        }
        self.add(id, t);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timer(at: Instant, repeat: Option<Duration>) -> Timer {
        Timer { at, repeat, f: Box::new(|_| TimerAction::Continue) }
    }

    #[test]
    fn due_in_deadline_order_never_early_and_cancel_skips() {
        let t0 = Instant::now();
        let mut ts = Timers::default();
        ts.add(1, timer(t0 + Duration::from_millis(30), None));
        ts.add(2, timer(t0 + Duration::from_millis(10), None));
        ts.add(3, timer(t0 + Duration::from_millis(20), None));
        ts.cancel(3);
        assert_eq!(ts.next(), Some(t0 + Duration::from_millis(10)));
        assert!(ts.due(t0 + Duration::from_millis(9)).is_none(), "not before its deadline");
        assert_eq!(ts.due(t0 + Duration::from_millis(100)).map(|(id, _)| id), Some(2));
        assert_eq!(ts.due(t0 + Duration::from_millis(100)).map(|(id, _)| id), Some(1));
        assert!(ts.due(t0 + Duration::from_millis(100)).is_none());
        assert!(ts.next().is_none());
    }

    #[test]
    fn repeating_timer_keeps_its_phase_or_skips_when_late() {
        let t0 = Instant::now();
        let p = Duration::from_millis(10);
        let mut ts = Timers::default();
        ts.add(1, timer(t0 + p, Some(p)));
        let (id, t) = ts.due(t0 + p).unwrap();
        ts.again(id, t, t0 + p + Duration::from_millis(3));
        assert_eq!(ts.next(), Some(t0 + 2 * p), "no drift");
        let (id, t) = ts.due(t0 + 10 * p).unwrap();
        ts.again(id, t, t0 + 10 * p);
        assert_eq!(ts.next(), Some(t0 + 11 * p), "no catch-up burst");
    }
}
