//! `tcanet-infer merge`: the partial files of a sharded run into one
//! leaderboard file, after checking that they belong together.
use std::path::{Path, PathBuf};

use anyhow::Result;
use clap::Args;
use tcanet_cli::{ExitStatus, Log, Output};
use tcanet_runtime::output::{check_generation, merge_boards, Leaderboard, Merged};

use super::inputs::{is_stdin, read_stdin, refuse_stdin_twice_in, STDIN_NAME};
use super::outputs::{publish, BoardOut, InputGuard};

/// `merge`'s flags.
#[derive(Args)]
pub struct MergeArgs {
    /// Partial files written by `run --shard K/N` (all N of them; one may be
    /// `-`, standard input).
    #[arg(required = true, value_name = "PARTIAL")]
    pub partials: Vec<PathBuf>,
    /// The merged leaderboard file (`-`: standard output).
    #[arg(short, long, value_name = "FILE")]
    pub output: Output,
    /// Merge even when videos are missing from the results (failed in their
    /// shard, or removed) or a partial holds videos not assigned to it: they
    /// are listed and left out.
    #[arg(long, alias = "allow-failed")]
    pub allow_missing: bool,
}

/// Checks and joins the partials, then writes the merged file.
pub fn cmd_merge(args: &MergeArgs, log: Log) -> Result<ExitStatus> {
    let named: Vec<(String, Option<&Path>)> = args
        .partials
        .iter()
        .enumerate()
        .map(|(i, p)| (format!("PARTIAL {}", i + 1), Some(p.as_path())))
        .collect();
    let pairs: Vec<(&str, Option<&Path>)> = named.iter().map(|(n, p)| (n.as_str(), *p)).collect();
    refuse_stdin_twice_in(&pairs)?;
    let mut guard = InputGuard::default();
    for p in &args.partials {
        guard.file(p);
    }
    guard.check(&[("-o", &args.output)])?;
    let mut boards = Vec::with_capacity(args.partials.len());
    for p in &args.partials {
        boards.push(read_partial(p)?);
    }
    let merged = merge_boards(boards, args.allow_missing)?;
    warn_left_out(&merged, log);
    let n = merged.board.results.len();
    publish(
        None,
        vec![BoardOut {
            output: args.output.clone(),
            board: merged.board,
        }],
    )?;
    log.info(format_args!(
        "wrote {} ({n} videos from {} partials)",
        args.output,
        args.partials.len()
    ));
    Ok(ExitStatus::Success)
}

/// One partial (`-`: standard input), checked against the other files of
/// its own write.
fn read_partial(path: &Path) -> Result<(PathBuf, Leaderboard)> {
    if is_stdin(path) {
        let shown = PathBuf::from(STDIN_NAME);
        let board = Leaderboard::parse(&read_stdin()?, &shown)?;
        return Ok((shown, board));
    }
    let board = Leaderboard::read(path)?;
    check_generation(path, &board)?;
    Ok((path.to_path_buf(), board))
}

/// With `--allow-missing`: what was left out.
fn warn_left_out(merged: &Merged, log: Log) {
    let show = |items: &[(String, PathBuf)]| -> String {
        let shown: Vec<String> = items
            .iter()
            .take(10)
            .map(|(v, p)| format!("'{v}' ({})", p.display()))
            .collect();
        let more = items.len().saturating_sub(10);
        if more > 0 {
            format!("{} and {more} more", shown.join(", "))
        } else {
            shown.join(", ")
        }
    };
    if !merged.missing.is_empty() {
        log.warn(format_args!(
            "{} video(s) missing from the results, left out: {}",
            merged.missing.len(),
            show(&merged.missing)
        ));
    }
    if !merged.extra.is_empty() {
        log.warn(format_args!(
            "{} video(s) not assigned to the partial that holds them, dropped: {}",
            merged.extra.len(),
            show(&merged.extra)
        ));
    }
}
