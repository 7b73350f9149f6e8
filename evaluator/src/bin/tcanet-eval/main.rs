//! `tcanet-eval`: leaderboard-exact evaluation of temporal action proposals
//! (AR@AN, AUC) and detections (mAP) from JSON files, and DETAD's diagnosis
//! of detections.

mod alloc;
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

fn main() -> ExitCode {
    alloc::tune_allocator();
    alloc::start_thread_pool();
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
