//! Temporary files of atomic outputs, removed when a terminating signal
//! (SIGINT, SIGTERM, SIGHUP) ends the process while they are being
//! written: Ctrl-C during a long write leaves neither a half-written output
//! nor a `.NAME.tmp-PID-N` file behind.
//!
//! The first temporary file registered starts one thread that waits for
//! those of the signals whose action is still the default one (ending the
//! process); on one, it removes every registered file and ends the process
//! as the signal would have. A signal the program handles itself (the
//! server's graceful shutdown, Python's KeyboardInterrupt around the
//! evaluator's package) is left alone.

use std::fs;
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, Once};

/// The temporary files being written, of every thread.
static PENDING: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// A registered temporary file: removed when this guard is dropped (an
/// error, a panic, an output set never committed; after a rename there is
/// nothing left to remove) or by a terminating signal before that.
#[derive(Debug)]
pub(crate) struct PendingTemp(PathBuf);

impl PendingTemp {
    /// Registers `path` (not yet created).
    pub(crate) fn new(path: PathBuf) -> Self {
        static HANDLER: Once = Once::new();
        HANDLER.call_once(remove_on_signal);
        lock().push(path.clone());
        PendingTemp(path)
    }
}

impl Deref for PendingTemp {
    type Target = Path;

    fn deref(&self) -> &Path {
        &self.0
    }
}

impl AsRef<Path> for PendingTemp {
    fn as_ref(&self) -> &Path {
        &self.0
    }
}

impl Drop for PendingTemp {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
        let mut pending = lock();
        if let Some(i) = pending.iter().rposition(|p| *p == self.0) {
            pending.swap_remove(i);
        }
    }
}

fn lock() -> std::sync::MutexGuard<'static, Vec<PathBuf>> {
    PENDING
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Starts the thread that removes the pending files on a terminating
/// signal, then ends the process by that signal (its exit status says so).
#[cfg(unix)]
fn remove_on_signal() {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let ending = [SIGINT, SIGTERM, SIGHUP]
        .into_iter()
        .filter(|&s| has_default_action(s));
    let Ok(mut signals) = signal_hook::iterator::Signals::new(ending) else {
        return;
    };
    let _ = std::thread::Builder::new()
        .name("tcanet-temporaries".into())
        .spawn(move || {
            if let Some(signal) = signals.forever().next() {
                // The lock stays held: no new temporary file from here on.
                let pending = lock();
                for path in pending.iter() {
                    let _ = fs::remove_file(path);
                }
                let _ = signal_hook::low_level::emulate_default_handler(signal);
                std::process::exit(128 + signal);
            }
        });
}

/// Whether `signal`'s action is the default one (not handled, not ignored).
#[cfg(unix)]
fn has_default_action(signal: i32) -> bool {
    // SAFETY: sigaction(2) with a null new action only reads the current
    // one into a zeroed struct that outlives the call.
    unsafe {
        let mut current: libc::sigaction = std::mem::zeroed();
        libc::sigaction(signal, std::ptr::null(), &mut current) == 0
            && current.sa_sigaction == libc::SIG_DFL
    }
}

#[cfg(not(unix))]
fn remove_on_signal() {}
