//! [`InputGuard`]: the inputs of a command (files, and directories whose
//! files of one extension are read, such as a dataset's features) that no
//! output may be written onto, checked before any work.
use std::path::{Path, PathBuf};

use tcanet_cli::{
    refuse_duplicate_outputs, refuse_output_onto_inputs, same_file, Output, OutputError,
};

use super::DatasetPaths;

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
        if path.as_os_str() != "-" {
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
