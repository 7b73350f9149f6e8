//! The subcommands of `tcanet-infer` (the binary's code; the library is
//! `tcanet_runtime`).
//!
//! Every command follows `tcanet_cli`'s convention: exit 0 on success, 2 for
//! a usage error or invalid input (found before any work where possible), 1
//! for other failures, 3 when `--keep-going` finished with failed videos;
//! results on standard output or in files written so that nothing is
//! half-written or written onto an input; progress and errors on standard
//! error.
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tcanet_cli::Log;

pub mod args;
pub mod bench;
pub mod doctor;
pub mod inputs;
pub mod merge;
pub mod outputs;
pub mod postprocess;
pub mod report;
pub mod run;
pub mod serve;
pub mod status;

/// A progress bar on standard error, drawn only on a terminal and without
/// `--quiet`.
pub fn progress_bar(len: usize, what: &str, log: Log) -> ProgressBar {
    use std::io::IsTerminal;
    let bar = ProgressBar::with_draw_target(Some(len as u64), ProgressDrawTarget::hidden());
    if !log.quiet && std::io::stderr().is_terminal() {
        bar.set_draw_target(ProgressDrawTarget::stderr());
    }
    if let Ok(style) =
        ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {per_sec} eta {eta} {msg}")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_prefix(what.to_string());
    bar
}
