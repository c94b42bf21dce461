//! Thread-per-connection mode: the loop keeps doing all I/O and hands each
//! connection's events, in order, to a thread of its own that may block.
//! Replies come back through the command queue. A worker that falls behind
//! pauses reading from its connection (backpressure) instead of queueing
//! without bound.

use super::control::{Command, Shared};
use super::{Action, CloseReason, Conn, Handler, Sink};
use crate::frame::Ending;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;

enum Event {
    Connect,
    Message(Vec<u8>, Ending),
    End(CloseReason),
    Close(CloseReason),
}

/// The loop's side of one connection's thread.
pub(crate) struct Worker {
    tx: mpsc::Sender<Event>,
    queued: Arc<AtomicUsize>,
    join: Option<JoinHandle<()>>,
}

impl Worker {
    /// Starts the thread and delivers `on_connect` to it.
    pub(crate) fn spawn(
        id: u64,
        peer: SocketAddr,
        handler: Arc<dyn Handler>,
        shared: Arc<Shared>,
        resume_below: usize,
    ) -> std::io::Result<Worker> {
        let (tx, rx) = mpsc::channel();
        let queued = Arc::new(AtomicUsize::new(0));
        let q = queued.clone();
        let join = std::thread::Builder::new().name(format!("sockflow-conn-{}", id & 0xffff_ffff)).spawn(move || {
            let mut user = 0usize;
            for ev in rx {
                let mut c = Conn { id, peer, user: &mut user, sink: Sink::Queue { ending: Ending::Lf }, shared: &shared };
                let action = match ev {
                    Event::Connect => handler.on_connect(&mut c),
                    Event::Message(m, ending) => {
                        c.sink = Sink::Queue { ending };
                        let before = q.fetch_sub(m.len(), Ordering::SeqCst);
                        if before > resume_below && before - m.len() <= resume_below {
                            shared.push(Command::Resume { id });
                        }
                        handler.on_message(&mut c, &m)
                    }
                    Event::End(reason) => {
                        shared.push(Command::Finish { id, reason });
                        continue;
                    }
                    Event::Close(r) => {
                        c.sink = Sink::Closed;
                        handler.on_close(&mut c, r);
                        return;
                    }
                };
                match action {
                    Action::Continue => {}
                    Action::Close => shared.close(id),
                    Action::Abort => shared.abort(id),
                    Action::Stop => shared.stop(),
                }
            }
        })?;
        let _ = tx.send(Event::Connect);
        Ok(Worker { tx, queued, join: Some(join) })
    }

    /// Hands one message over; returns the bytes now waiting for the thread.
    pub(crate) fn message(&self, m: &[u8], ending: Ending) -> usize {
        let n = self.queued.fetch_add(m.len(), Ordering::SeqCst) + m.len();
        let _ = self.tx.send(Event::Message(m.to_vec(), ending));
        n
    }

    /// The peer is done: once the thread has handled every earlier message
    /// it asks the loop to close.
    pub(crate) fn end(&self, reason: CloseReason) {
        let _ = self.tx.send(Event::End(reason));
    }

    /// Bytes waiting for the thread.
    pub(crate) fn queued(&self) -> usize {
        self.queued.load(Ordering::SeqCst)
    }

    /// Delivers `on_close`; the thread ends after it.
    pub(crate) fn close(mut self, reason: CloseReason) -> Option<JoinHandle<()>> {
        let _ = self.tx.send(Event::Close(reason));
        self.join.take()
    }
}
