//! Thread-per-connection mode: the loop keeps doing all I/O and hands each
//! connection's events, in order, to a thread of its own that may block.
//! Replies come back through the command queue.
//!
//! Bounds. A worker that falls behind pauses reading from its connection
//! (backpressure) instead of queueing without bound. What it has waiting is
//! counted in bytes with a fixed overhead per message ([`MSG_OVERHEAD`]):
//! counting payload bytes alone let a flood of empty lines queue millions
//! of messages (1.6 GB). The same cost is charged to the server's memory
//! budget and released by the thread as it takes each message. While the
//! connection's own replies are over their high-water mark the thread
//! waits before handling its next message ([`Worker::replies`]): pausing the
//! socket alone would still let every message already queued add replies.
//!
//! Stopping. A handler may block for as long as it likes, so a stop cannot
//! wait for every queued message: once the server stops, undelivered
//! messages are dropped unhandled (each connection still gets `on_close`
//! with `Stopping`), and a thread still inside a handler after a grace
//! period is left to finish on its own ([`Parting::abandon`]); it then calls
//! nothing more.

use super::budget::Budget;
use super::control::{Command, Shared};
use super::{CloseReason, Conn, Handler, Sink};
use crate::frame::Ending;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

/// What each queued message costs beyond its bytes (the event, its
/// allocation, the channel slot), so the bound holds for empty messages too.
pub(crate) const MSG_OVERHEAD: usize = 64;

enum Event {
    Connect,
    Message(Vec<u8>, Ending),
    End(CloseReason),
    Close(CloseReason),
}

/// Where the thread is in the server's life (an `AtomicU8` in [`Inbox`]).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Life {
    /// Deliver everything.
    Serving = 0,
    /// The server is stopping: drop undelivered messages, still call
    /// `on_connect` (if pending) and `on_close`.
    Stopping = 1,
    /// The server returned without waiting for this thread: call nothing.
    Abandoned = 2,
}

/// State the loop and the thread share.
struct Inbox {
    /// Cost of the messages waiting for the thread.
    cost: AtomicUsize,
    life: AtomicU8,
    /// True while the connection's replies are over high water.
    held: Mutex<bool>,
    wake: Condvar,
}

impl Inbox {
    fn life(&self) -> Life {
        match self.life.load(Ordering::SeqCst) {
            0 => Life::Serving,
            1 => Life::Stopping,
            _ => Life::Abandoned,
        }
    }

    fn set(&self, l: Life) {
        self.life.fetch_max(l as u8, Ordering::SeqCst);
        // Under the lock: a thread about to wait sees the new life or the wakeup.
        let _g = self.held.lock().unwrap_or_else(|p| p.into_inner());
        self.wake.notify_all();
    }

    fn hold(&self, on: bool) {
        *self.held.lock().unwrap_or_else(|p| p.into_inner()) = on;
        self.wake.notify_all();
    }

    /// Waits while held, unless the server is stopping.
    fn wait_unheld(&self) {
        let mut g = self.held.lock().unwrap_or_else(|p| p.into_inner());
        while *g && self.life() == Life::Serving {
            g = self.wake.wait(g).unwrap_or_else(|p| p.into_inner());
        }
    }
}

/// The loop's side of one connection's thread.
pub(crate) struct Worker {
    tx: mpsc::Sender<Event>,
    inbox: Arc<Inbox>,
    budget: Arc<Budget>,
    join: JoinHandle<()>,
    /// The loop's copy of `inbox.held`.
    held: bool,
}

impl Worker {
    /// Starts the thread and delivers `on_connect` to it; the user slot
    /// starts as `user` (an outgoing connection's is given to `connect`).
    /// Once the queued cost falls to `resume_below` the thread asks the loop
    /// to read again.
    pub(crate) fn spawn(
        (id, peer, user): (u64, SocketAddr, usize),
        handler: Arc<dyn Handler>,
        shared: Arc<Shared>,
        budget: Arc<Budget>,
        resume_below: usize,
    ) -> std::io::Result<Worker> {
        let (tx, rx) = mpsc::channel();
        let inbox = Arc::new(Inbox {
            cost: AtomicUsize::new(0),
            life: AtomicU8::new(Life::Serving as u8),
            held: Mutex::new(false),
            wake: Condvar::new(),
        });
        let (ib, b) = (inbox.clone(), budget.clone());
        let join = std::thread::Builder::new().name(format!("sockflow-conn-{}", id & 0xffff_ffff)).spawn(move || {
            let mut user = user;
            for ev in rx {
                let life = ib.life();
                let mut c = Conn { id, peer, user: &mut user, sink: Sink::Queue { ending: Ending::Lf }, shared: &shared };
                let action = match ev {
                    Event::Connect if life != Life::Abandoned => handler.on_connect(&mut c),
                    Event::Message(m, ending) => {
                        c.sink = Sink::Queue { ending };
                        ib.wait_unheld();
                        let life = ib.life();
                        let cost = MSG_OVERHEAD + m.len();
                        b.sub(cost);
                        let before = ib.cost.fetch_sub(cost, Ordering::SeqCst);
                        if before > resume_below && before - cost <= resume_below {
                            shared.push(Command::Resume { id });
                        }
                        if life != Life::Serving {
                            continue;
                        }
                        handler.on_message(&mut c, &m)
                    }
                    Event::End(reason) => {
                        shared.push(Command::Finish { id, reason });
                        continue;
                    }
                    Event::Close(r) => {
                        if life != Life::Abandoned {
                            c.sink = Sink::Closed;
                            handler.on_close(&mut c, r);
                        }
                        return;
                    }
                    Event::Connect => continue,
                };
                shared.apply(id, action.effect());
            }
        })?;
        let _ = tx.send(Event::Connect);
        Ok(Worker { tx, inbox, budget, join, held: false })
    }

    /// Hands one message over; returns the cost now waiting for the thread.
    pub(crate) fn message(&self, m: &[u8], ending: Ending) -> usize {
        let cost = MSG_OVERHEAD + m.len();
        self.budget.add(cost);
        let n = self.inbox.cost.fetch_add(cost, Ordering::SeqCst) + cost;
        let _ = self.tx.send(Event::Message(m.to_vec(), ending));
        n
    }

    /// The peer is done: once the thread has handled every earlier message
    /// it asks the loop to close.
    pub(crate) fn end(&self, reason: CloseReason) {
        let _ = self.tx.send(Event::End(reason));
    }

    /// Cost of the messages waiting for the thread.
    pub(crate) fn queued(&self) -> usize {
        self.inbox.cost.load(Ordering::SeqCst)
    }

    /// The connection has `own` reply bytes queued: above `high` the thread
    /// handles no further message until they are down to `low`.
    pub(crate) fn replies(&mut self, own: usize, high: usize, low: usize) {
        let held = if self.held { own > low } else { own > high };
        if held != self.held {
            self.held = held;
            self.inbox.hold(held);
        }
    }

    /// The server is stopping: messages not yet handled are dropped.
    pub(crate) fn stop_delivering(&self) {
        self.inbox.set(Life::Stopping);
    }

    /// Delivers `on_close`; the thread ends after it.
    pub(crate) fn close(self, reason: CloseReason) -> Parting {
        // Nothing more will be flushed: a held thread must go on to on_close.
        self.inbox.hold(false);
        let _ = self.tx.send(Event::Close(reason));
        Parting { join: self.join, inbox: self.inbox }
    }
}

/// A thread that was sent `on_close` and has not been joined yet.
pub(crate) struct Parting {
    join: JoinHandle<()>,
    inbox: Arc<Inbox>,
}

impl Parting {
    pub(crate) fn is_finished(&self) -> bool {
        self.join.is_finished()
    }

    pub(crate) fn join(self) {
        let _ = self.join.join();
    }

    /// Leaves the thread running (it is stuck in a handler): when the
    /// handler returns it calls nothing more and ends.
    pub(crate) fn abandon(self) {
        self.inbox.set(Life::Abandoned);
    }
}
