//! `tcanet-eval`: leaderboard-exact evaluation of temporal action proposals
//! (AR@AN, AUC) and detections (mAP) from JSON files, and DETAD's diagnosis
//! of detections.

mod args;
mod commands;
mod inputs;
mod tables;

use std::process::ExitCode;

use clap::Parser;
use tcanet_cli::{ExitStatus, Log, OutputError};

use args::{Cli, Command};

/// An error with its exit status.
pub struct Failure {
    status: ExitStatus,
    error: anyhow::Error,
    /// End without a message (a closed pipe).
    quiet: bool,
}

impl Failure {
    /// A usage error or invalid input (exit 2).
    pub fn usage(e: impl Into<anyhow::Error>) -> Self {
        Failure {
            status: ExitStatus::Usage,
            error: e.into(),
            quiet: false,
        }
    }

    /// Any other failure (exit 1).
    pub fn other(e: impl Into<anyhow::Error>) -> Self {
        Failure {
            status: ExitStatus::Failure,
            error: e.into(),
            quiet: false,
        }
    }
}

impl From<tcanet_evaluator::Error> for Failure {
    fn from(e: tcanet_evaluator::Error) -> Self {
        Failure::usage(e)
    }
}

impl From<OutputError> for Failure {
    fn from(e: OutputError) -> Self {
        Failure {
            status: e.exit_status(),
            quiet: e.is_quiet(),
            error: e.into(),
        }
    }
}

/// Tunes glibc's allocator for one short run over tens of megabytes: one
/// arena grown in large steps, large blocks kept in it (fewer system calls
/// and page faults; a fifth of a run's time otherwise), and its memory in
/// transparent huge pages where the kernel offers them on request.
fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets allocator parameters; called before any
    // other thread exists.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
        libc::mallopt(libc::M_TOP_PAD, 64 << 20);
        libc::mallopt(libc::M_MMAP_THRESHOLD, 256 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 512 << 20);
        advise_huge_heap();
    }
}

/// Grows the heap once now (by the top pad) and asks for transparent huge
/// pages over it: a run's vectors then fault in 2 MiB at a time, not 4 KiB
/// (a few hundred page faults instead of thousands, a tenth of a run's CPU
/// time). Nothing happens where the kernel does not offer them, or where
/// the heap is not one `brk` region.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
unsafe fn advise_huge_heap() {
    const HUGE: usize = 2 << 20;
    let block = libc::malloc(1 << 20);
    if block.is_null() {
        return;
    }
    let top = libc::sbrk(0) as usize;
    let start = (block as usize).next_multiple_of(HUGE);
    if top > start {
        libc::madvise(start as *mut libc::c_void, top - start, libc::MADV_HUGEPAGE);
    }
    // Freed into the heap, which keeps it (the trim threshold is higher).
    libc::free(block);
}

fn main() -> ExitCode {
    tune_allocator();
    let cli = Cli::parse();
    let log = cli.common.log();
    let result = match cli.command {
        Command::Proposals(a) => commands::proposals(a, &log),
        Command::Detections(a) => commands::detections(a, &log),
        Command::Diagnose(a) => commands::diagnose(a, &log),
        Command::Bench(a) => commands::bench(a, &log),
    };
    match result {
        Ok(()) => ExitStatus::Success.into(),
        Err(f) => {
            if !f.quiet {
                Log::error(&log, format!("{:#}", f.error));
            }
            f.status.into()
        }
    }
}
