//! The loop's clock: read once per turn, not per read or send.
//!
//! A connection records when it last had traffic, for its idle timeout.
//! Reading the clock at every read and send costs a `clock_gettime` each
//! (a vDSO call, but per message); a turn of the loop takes well under a
//! millisecond, so the time the turn began is as good. It is kept as a
//! [`Tick`]: milliseconds since the loop started, in 4 bytes instead of an
//! `Instant`'s 16, which matters at 10,000 idle connections. Ticks wrap
//! after 49 days; idle times are compared with wrapping arithmetic, so an
//! idle timeout longer than that acts as no timeout at all.

use std::time::{Duration, Instant};

/// Milliseconds since the loop's clock started (wrapping).
pub(super) type Tick = u32;

pub(super) struct Clock {
    epoch: Instant,
    now: Instant,
    tick: Tick,
}

impl Clock {
    pub(super) fn new() -> Clock {
        let now = Instant::now();
        Clock { epoch: now, now, tick: 0 }
    }

    /// Reads the clock: the time of this turn.
    pub(super) fn update(&mut self) {
        self.now = Instant::now();
        // Wrapping u32 arithmetic: no 128-bit product per turn.
        let d = self.now.duration_since(self.epoch);
        self.tick = (d.as_secs() as Tick).wrapping_mul(1000).wrapping_add(d.subsec_millis());
    }

    /// The time of this turn.
    pub(super) fn now(&self) -> Instant {
        self.now
    }

    /// The time of this turn as a tick.
    pub(super) fn tick(&self) -> Tick {
        self.tick
    }

    /// True when at least `t` passed from `since` to this turn.
    pub(super) fn passed(&self, since: Tick, t: Duration) -> bool {
        u128::from(self.tick.wrapping_sub(since)) >= t.as_millis()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_times_survive_the_wrap() {
        let mut c = Clock::new();
        c.tick = 5;
        assert!(c.passed(Tick::MAX - 4, Duration::from_millis(10)));
        assert!(!c.passed(Tick::MAX - 4, Duration::from_millis(11)));
        assert!(!c.passed(0, Duration::from_secs(60 * 24 * 3600)), "longer than a wrap: never");
    }
}
