//! A command's outputs: checked before any work (no two the same file, none
//! onto an input, every directory writable), then published together.
use std::path::{Path, PathBuf};

use anyhow::Result;
use tcanet_cli::{Output, OutputError, OutputSet};
pub use tcanet_models::data::InputGuard;
use tcanet_runtime::output::{new_generation, relative_path, Leaderboard};

/// A leaderboard and where it goes.
pub struct BoardOut {
    /// The target.
    pub output: Output,
    /// The file.
    pub board: Leaderboard,
}

/// Writes the files of one invocation together ([`OutputSet`]): the report
/// (if any) first, then the leaderboards in the given order, so the primary
/// one goes last. Every leaderboard with a `tcanet_run` gets one new
/// generation and the list of the regular files among them, which readers
/// compare to detect a set stopped half-way.
pub fn publish(
    report: Option<(&Output, Vec<u8>)>,
    boards: Vec<BoardOut>,
) -> Result<(), OutputError> {
    let generation = new_generation();
    let files: Vec<PathBuf> = boards
        .iter()
        .filter_map(|b| regular_file(&b.output))
        .collect();
    let mut set = OutputSet::new();
    if let Some((output, bytes)) = report {
        set.stage(output, bytes)?;
    }
    for BoardOut { output, mut board } in boards {
        if let Some(run) = &mut board.run {
            let dir = directory_of(&output);
            run.generation = generation.clone();
            run.outputs = files
                .iter()
                .map(|f| relative_path(&dir, f).display().to_string())
                .collect();
        }
        set.stage(&output, board.to_json().into_bytes())?;
    }
    set.commit()
}

/// The path of an output that is (or will be) a regular file.
fn regular_file(output: &Output) -> Option<PathBuf> {
    let path = output.path()?;
    match std::fs::metadata(path) {
        Ok(m) if !m.is_file() => None,
        _ => Some(path.to_path_buf()),
    }
}

/// The directory an output's `outputs` list is relative to.
fn directory_of(output: &Output) -> PathBuf {
    output
        .path()
        .and_then(Path::parent)
        .filter(|d| !d.as_os_str().is_empty())
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}
