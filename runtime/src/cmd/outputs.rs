//! A command's outputs: checked before any work (no two the same file, none
//! onto an input, every directory writable), then published together.
use std::path::{Path, PathBuf};

use anyhow::Result;
use tcanet_cli::{
    refuse_duplicate_outputs, refuse_output_onto_inputs, same_file, Output, OutputError, OutputSet,
};
use tcanet_models::data::DatasetPaths;
use tcanet_runtime::output::{new_generation, relative_path, Leaderboard};

use super::inputs::is_stdin;

/// The inputs of a command that no output may be written onto: files, and
/// directories whose files of one extension are read (features, CSV
/// proposals).
#[derive(Default)]
pub struct InputGuard {
    files: Vec<PathBuf>,
    dirs: Vec<(PathBuf, &'static str)>,
}

impl InputGuard {
    /// An input file (`-`, standard input, is skipped).
    pub fn file(&mut self, path: &Path) -> &mut Self {
        if !is_stdin(path) {
            self.files.push(path.to_path_buf());
        }
        self
    }

    /// The dataset's annotations, proposals (a file, or a directory of
    /// `.csv`) and, with `features`, the `.npy` files of the features directory.
    pub fn dataset(&mut self, paths: &DatasetPaths, features: bool) -> &mut Self {
        self.file(&paths.annotations);
        if paths.proposals.is_dir() {
            self.dirs.push((paths.proposals.clone(), "csv"));
        } else {
            self.file(&paths.proposals);
        }
        if features && !paths.features.as_os_str().is_empty() {
            self.dirs.push((paths.features.clone(), "npy"));
        }
        self
    }

    /// Refuses two outputs on one file and an output onto an input, then
    /// checks that every output can be created: all before any work, so
    /// that a refused command has changed nothing (exit 2).
    pub fn check(&self, outputs: &[(&str, &Output)]) -> Result<(), OutputError> {
        refuse_duplicate_outputs(outputs)?;
        let files: Vec<&Path> = self.files.iter().map(PathBuf::as_path).collect();
        for (_, output) in outputs {
            refuse_output_onto_inputs(output, &files)?;
            self.refuse_into_input_dirs(output)?;
        }
        for (_, output) in outputs {
            output.check_writable()?;
        }
        Ok(())
    }

    /// An output named like the input files of a directory, in it.
    fn refuse_into_input_dirs(&self, output: &Output) -> Result<(), OutputError> {
        let Output::Path(path) = output else {
            return Ok(());
        };
        let parent = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        for (dir, ext) in &self.dirs {
            if path.extension().is_some_and(|e| e == *ext) && same_file(parent, dir) {
                return Err(OutputError::OntoInput {
                    output: path.display().to_string(),
                    input: format!("{}/*.{ext}", dir.display()),
                });
            }
        }
        Ok(())
    }
}

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
