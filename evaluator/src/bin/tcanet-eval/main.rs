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

/// The size in bytes of the command's input files (standard input, or a
/// file that cannot be read, counts 0: the command reports it).
fn input_size(command: &Command) -> u64 {
    let common = match command {
        Command::Proposals(a) => &a.common,
        Command::Detections(a) => &a.common,
        Command::Diagnose(a) => &a.common,
        Command::Bench(a) => return file_sizes([a.gt.as_path(), a.pred.as_path()]),
    };
    file_sizes(
        [&common.gt, &common.pred]
            .into_iter()
            .filter_map(|i| i.path()),
    )
}

/// The sizes of files, summed.
fn file_sizes<'a>(paths: impl IntoIterator<Item = &'a std::path::Path>) -> u64 {
    paths
        .into_iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum()
}

fn main() -> ExitCode {
    alloc::tune_allocator();
    let cli = Cli::parse();
    alloc::start_thread_pool(input_size(&cli.command) >= alloc::LARGE_INPUTS);
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
