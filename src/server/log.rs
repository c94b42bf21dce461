//! The server's log, written so that it can never stop the server.
//!
//! A log line used to be a blocking `write(2)` on the loop thread: when
//! nobody read the server's stderr pipe, clients could fill it (every
//! over-long line logs a line) and the whole server stopped in `write`. Now
//! the loop only appends to a bounded in-memory queue and a thread of the
//! log's own does the writing, so a stuck reader stalls that thread alone:
//!
//! * the queue holds at most [`QUEUE_LINES`] lines and [`QUEUE_BYTES`]
//!   bytes; a line that does not fit is counted and dropped, and the writer
//!   says `N log lines dropped` once it gets through again;
//! * lines that repeat (the same text once digits are ignored, so the same
//!   event for another port or count) are let through [`BURST`] times per
//!   [`WINDOW`], then summarised once per window as
//!   `last message repeated N more times: <line>` (running out of
//!   descriptors used to log ten lines a second for as long as it lasted);
//! * when the server ends, the queue is written out within [`FLUSH_WAIT`];
//!   a writer still blocked after that is left behind (its thread ends when
//!   its write does) rather than holding up the return of `run`.
//!
//! Every line is flushed as it is written, so a killed server loses only
//! what was still queued. Lines go to a writer as `NAME: text`, or, with
//! [`LogTo::Lines`], to the program's own function with their [`LogLevel`]
//! (called on the log's thread, never on the loop's).

use super::Config;
use std::collections::{HashMap, VecDeque};
use std::io::Write;
use std::sync::{mpsc, Arc, Condvar, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

/// Most lines waiting for the writer.
pub(crate) const QUEUE_LINES: usize = 1024;
/// Most bytes waiting for the writer.
pub(crate) const QUEUE_BYTES: usize = 256 * 1024;
/// Lines of one kind written per window before the rest are summarised.
pub(crate) const BURST: u32 = 5;
/// The rate-limit window.
pub(crate) const WINDOW: Duration = Duration::from_secs(5);
/// How long the end of a server waits for its log to be written out.
pub(crate) const FLUSH_WAIT: Duration = Duration::from_secs(2);
/// Most kinds of line remembered per window; past it, lines are not limited
/// (the map must stay bounded whatever clients do).
const MAX_KINDS: usize = 256;

/// How serious a log line is.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    /// Something failed that the server cannot fix: `accept`, `recvfrom`,
    /// starting a connection's thread.
    Error = 1,
    /// A client was refused, dropped or closed for misbehaving, a datagram
    /// was dropped, log lines were lost.
    Warn = 2,
    /// The server's life: listening, stopped, signal received.
    Info = 3,
}

/// A program's log function: level and text of one line.
pub type LogFn = Box<dyn FnMut(LogLevel, &str) + Send>;

/// Where a server's log lines go.
pub enum LogTo {
    /// Written as `NAME: text` lines, each flushed.
    Writer(Box<dyn Write + Send>),
    /// Handed to the program's function, without the name (the program's
    /// own logger adds what it wants). Called on the log's thread, one line
    /// at a time; a slow function delays only later log lines.
    Lines(LogFn),
}

impl LogTo {
    /// Lines written to `w`.
    pub fn writer(w: impl Write + Send + 'static) -> LogTo {
        LogTo::Writer(Box::new(w))
    }

    /// The one way lines leave the log: a function of level and text.
    fn into_fn(self, name: String) -> LogFn {
        match self {
            LogTo::Lines(f) => f,
            LogTo::Writer(mut w) => Box::new(move |_, line| {
                let _ = writeln!(w, "{name}: {line}").and_then(|_| w.flush());
            }),
        }
    }
}

/// The loop's side: cheap, never blocks for longer than a queue push.
pub(crate) struct Log {
    /// None when the configuration asked for no log.
    shared: Option<Arc<Shared>>,
    writer: Option<thread::JoinHandle<()>>,
    /// Signalled by the writer thread when it has written everything and ended.
    done: Option<mpsc::Receiver<()>>,
}

struct Shared {
    state: Mutex<State>,
    wake: Condvar,
}

#[derive(Default)]
struct State {
    queue: VecDeque<(LogLevel, String)>,
    bytes: usize,
    /// Lines refused because the queue was full, not yet reported.
    dropped: u64,
    /// False once the server has ended: write what is left, then stop.
    open: bool,
    /// The server gave up waiting for the writer: write nothing more.
    abandoned: bool,
    window_start: Option<Instant>,
    /// Per kind of line (its text without digits): lines seen this window
    /// and the last one suppressed.
    kinds: HashMap<String, Kind>,
}

struct Kind {
    level: LogLevel,
    seen: u32,
    suppressed: u64,
    last: String,
}

fn lock(s: &Shared) -> MutexGuard<'_, State> {
    s.state.lock().unwrap_or_else(|p| p.into_inner())
}

/// What makes two lines "the same": their text with the digits left out.
fn kind_of(line: &str) -> String {
    line.chars().filter(|c| !c.is_ascii_digit()).collect()
}

impl State {
    /// Queues a line unless the queue is full (then counts it as dropped).
    fn push(&mut self, level: LogLevel, line: String) {
        if self.queue.len() >= QUEUE_LINES || self.bytes + line.len() > QUEUE_BYTES {
            self.dropped += 1;
            return;
        }
        self.bytes += line.len();
        self.queue.push_back((level, line));
    }

    /// Applies the rate limit; true if the line may be queued.
    fn admit(&mut self, level: LogLevel, line: &str, now: Instant) -> bool {
        self.roll(now);
        let kinds = self.kinds.len();
        let k = kind_of(line);
        match self.kinds.get_mut(&k) {
            Some(kind) if kind.seen >= BURST => {
                kind.suppressed += 1;
                kind.last.clear();
                kind.last.push_str(line);
                false
            }
            Some(kind) => {
                kind.seen += 1;
                true
            }
            None if kinds >= MAX_KINDS => true,
            None => {
                self.kinds.insert(k, Kind { level, seen: 1, suppressed: 0, last: String::new() });
                true
            }
        }
    }

    /// At the end of a window: one summary line per kind that was cut, and
    /// a fresh window.
    fn roll(&mut self, now: Instant) {
        let start = *self.window_start.get_or_insert(now);
        if now.duration_since(start) < WINDOW {
            return;
        }
        self.window_start = Some(now);
        let mut summaries: Vec<(LogLevel, String)> = self
            .kinds
            .drain()
            .filter(|(_, k)| k.suppressed > 0)
            .map(|(_, k)| (k.level, format!("last message repeated {} more times: {}", k.suppressed, k.last)))
            .collect();
        summaries.sort();
        for (level, s) in summaries {
            self.push(level, s);
        }
    }

    /// When the writer should next look at the window (None: no summary pending).
    fn summary_due(&self) -> Option<Instant> {
        let pending = self.kinds.values().any(|k| k.suppressed > 0);
        self.window_start.filter(|_| pending).map(|s| s + WINDOW)
    }
}

impl Log {
    /// Takes the destination out of `cfg` and starts the thread that
    /// writes to it.
    pub(crate) fn new(cfg: &mut Config) -> Log {
        let Some(to) = cfg.log.take() else { return Log { shared: None, writer: None, done: None } };
        let out = to.into_fn(cfg.name.clone());
        let shared = Arc::new(Shared { state: Mutex::new(State { open: true, ..State::default() }), wake: Condvar::new() });
        let (tx, rx) = mpsc::channel();
        let s = shared.clone();
        let spawned = thread::Builder::new().name("sockflow-log".into()).spawn(move || {
            write_loop(&s, out);
            let _ = tx.send(());
        });
        match spawned {
            Ok(writer) => Log { shared: Some(shared), writer: Some(writer), done: Some(rx) },
            // No thread, no log: a server must not fail for want of its log.
            Err(_) => Log { shared: None, writer: None, done: None },
        }
    }

    /// Another handle on the same log (a worker's, see `workers.rs`): its
    /// lines join the same queue, and dropping it does not end the log.
    pub(crate) fn share(&self) -> Log {
        Log { shared: self.shared.clone(), writer: None, done: None }
    }

    /// Queues one line (rate-limited; dropped and counted when the queue is full).
    pub(crate) fn line(&self, level: LogLevel, text: std::fmt::Arguments<'_>) {
        let Some(s) = &self.shared else { return };
        let line = text.to_string();
        let mut st = lock(s);
        if st.admit(level, &line, Instant::now()) {
            st.push(level, line);
        }
        drop(st);
        s.wake.notify_one();
    }

    /// An [`LogLevel::Info`] line.
    pub(crate) fn info(&self, text: std::fmt::Arguments<'_>) {
        self.line(LogLevel::Info, text)
    }

    /// A [`LogLevel::Warn`] line.
    pub(crate) fn warn(&self, text: std::fmt::Arguments<'_>) {
        self.line(LogLevel::Warn, text)
    }

    /// A [`LogLevel::Error`] line.
    pub(crate) fn error(&self, text: std::fmt::Arguments<'_>) {
        self.line(LogLevel::Error, text)
    }
}

impl Drop for Log {
    /// Writes out what is queued, waiting at most [`FLUSH_WAIT`]. A writer
    /// still busy after that writes nothing more once its call returns (a
    /// program's log function is never called after its server is gone,
    /// except for the one call already running). A share ([`Log::share`])
    /// leaves all that to the log's owner.
    fn drop(&mut self) {
        let (Some(s), Some(w)) = (&self.shared, self.writer.take()) else { return };
        lock(s).open = false;
        s.wake.notify_one();
        if self.done.as_ref().is_some_and(|d| d.recv_timeout(FLUSH_WAIT).is_ok()) {
            let _ = w.join();
        } else {
            let mut st = lock(s);
            st.abandoned = true;
            st.queue.clear();
        }
        // else: detached; it ends when its blocked write returns.
    }
}

/// The writer thread: takes every queued line at once (so the loop never
/// waits on the lock for long), writes them, and reports drops.
fn write_loop(s: &Shared, mut out: LogFn) {
    loop {
        let (batch, dropped, open) = {
            let mut st = lock(s);
            loop {
                st.roll(Instant::now());
                if !st.queue.is_empty() || st.dropped > 0 || !st.open {
                    break;
                }
                st = match st.summary_due() {
                    Some(due) => {
                        let wait = due.saturating_duration_since(Instant::now()).max(Duration::from_millis(1));
                        s.wake.wait_timeout(st, wait).unwrap_or_else(|p| p.into_inner()).0
                    }
                    None => s.wake.wait(st).unwrap_or_else(|p| p.into_inner()),
                };
            }
            if !st.open {
                // Last call: summaries of this window too.
                st.window_start = st.window_start.map(|t| t - WINDOW);
                st.roll(Instant::now());
            }
            st.bytes = 0;
            (std::mem::take(&mut st.queue), std::mem::take(&mut st.dropped), st.open)
        };
        for (level, line) in batch {
            if lock(s).abandoned {
                return;
            }
            out(level, &line);
        }
        if dropped > 0 && !lock(s).abandoned {
            out(LogLevel::Warn, &format!("{dropped} log lines dropped (the log could not keep up)"));
        }
        if !open {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};

    /// A writer that blocks until released, then records.
    #[derive(Clone, Default)]
    struct Gate {
        open: Arc<(Mutex<bool>, Condvar)>,
        text: Arc<Mutex<String>>,
    }

    impl Gate {
        fn release(&self) {
            *self.open.0.lock().unwrap() = true;
            self.open.1.notify_all();
        }
        fn text(&self) -> String {
            self.text.lock().unwrap().clone()
        }
    }

    impl Write for Gate {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            let mut g = self.open.0.lock().unwrap();
            while !*g {
                g = self.open.1.wait(g).unwrap();
            }
            self.text.lock().unwrap().push_str(&String::from_utf8_lossy(b));
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn log_to(w: impl Write + Send + 'static) -> Log {
        let mut cfg = Config { log: Some(LogTo::writer(w)), name: "t".into(), ..Config::default() };
        Log::new(&mut cfg)
    }

    #[test]
    fn a_blocked_writer_never_blocks_the_caller_and_drops_are_reported() {
        let gate = Gate::default();
        let log = log_to(gate.clone());
        let (tx, rx) = mpsc::channel();
        let t = thread::spawn(move || {
            // Distinct kinds (letters differ), so the rate limit does not apply.
            for i in 0..5000u32 {
                let tag: String = i.to_string().bytes().map(|b| (b'a' + (b - b'0')) as char).collect();
                log.warn(format_args!("line {tag}"));
            }
            tx.send(log).unwrap();
        });
        let log = rx.recv_timeout(Duration::from_secs(60)).expect("log.line blocked on a stuck writer");
        t.join().unwrap();
        gate.release();
        drop(log);
        let text = gate.text();
        assert!(text.starts_with("t: line a\n"), "{}", &text[..text.len().min(200)]);
        assert!(text.contains(" log lines dropped"), "no drop report");
        let written = text.lines().filter(|l| l.starts_with("t: line ")).count();
        assert!((QUEUE_LINES..5000).contains(&written), "{written} lines written");
    }

    #[test]
    fn repeated_lines_are_limited_and_summarised() {
        let gate = Gate::default();
        gate.release();
        let log = log_to(gate.clone());
        for i in 0..100 {
            log.warn(format_args!("accept: Too many open files (try {i})"));
        }
        log.warn(format_args!("something else"));
        drop(log);
        let text = gate.text();
        assert_eq!(text.lines().filter(|l| l.starts_with("t: accept:")).count(), BURST as usize, "{text}");
        assert!(text.contains("t: something else\n"));
        assert!(text.contains("last message repeated 95 more times: accept: Too many open files (try 99)"), "{text}");
    }

    #[test]
    fn drop_returns_even_when_the_writer_never_does() {
        let gate = Gate::default(); // never released
        let log = log_to(gate.clone());
        log.warn(format_args!("stuck"));
        let done = Arc::new(AtomicBool::new(false));
        let d = done.clone();
        let t = thread::spawn(move || {
            drop(log);
            d.store(true, Ordering::SeqCst);
        });
        let deadline = Instant::now() + Duration::from_secs(60);
        while !done.load(Ordering::SeqCst) && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(20));
        }
        assert!(done.load(Ordering::SeqCst), "dropping the log waited for a stuck writer");
        t.join().unwrap();
        gate.release();
    }
}
