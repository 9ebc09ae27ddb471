//! ringnet's log lines captured for the tests that read them back: [`capture`] installs
//! the process's logger (before any world is built, so that it is the one installed),
//! clears the lines and holds the tests of one binary to one at a time, since the
//! logger is the process's. Only the capturing test's own thread is recorded: the
//! binary's tests that do not capture still run beside it and log through the same
//! logger.

use std::sync::{Mutex, MutexGuard};
use std::thread::{self, ThreadId};

static LINES: Mutex<Vec<String>> = Mutex::new(Vec::new());
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
static CAPTURING: Mutex<Option<ThreadId>> = Mutex::new(None);

struct Capture;

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, record: &log::Record<'_>) {
        let ours = *lock(&CAPTURING) == Some(thread::current().id());
        if ours && record.target().starts_with("ringnet") {
            lock(&LINES).push(record.args().to_string());
        }
    }
    fn flush(&self) {}
}

static CAPTURE: Capture = Capture;

/// A test that failed while holding a lock leaves it poisoned; the lines are still good.
fn lock<T>(mutex: &'static Mutex<T>) -> MutexGuard<'static, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// Starts capturing ringnet's lines at `debug` and below, from none, logged by the
/// calling thread; the guard keeps the binary's other capturing tests waiting until this
/// one ends.
pub fn capture() -> MutexGuard<'static, ()> {
    let guard = lock(&ONE_AT_A_TIME);
    // Fails only when a logger is installed already: this one, by an earlier test.
    let _ = log::set_logger(&CAPTURE);
    log::set_max_level(log::LevelFilter::Debug);
    *lock(&CAPTURING) = Some(thread::current().id());
    lock(&LINES).clear();
    guard
}

/// Every line captured since [`capture`] (or [`clear`]).
pub fn lines() -> Vec<String> {
    lock(&LINES).clone()
}

/// The lines that contain `text`.
pub fn lines_with(text: &str) -> Vec<String> {
    lock(&LINES)
        .iter()
        .filter(|l| l.contains(text))
        .cloned()
        .collect()
}

/// Forgets the lines captured so far.
pub fn clear() {
    lock(&LINES).clear();
}
