//! A command's outputs, checked before any work: no two the same file, none
//! onto an input, every directory writable (exit 2, nothing written).
use std::path::{Path, PathBuf};

use tcanet_cli::{refuse_duplicate_outputs, refuse_output_onto_inputs, Output, OutputError};

/// Refuses two outputs on one file and an output onto an input, then checks
/// that every output can be created. `outputs` are `(flag, output)` pairs.
pub fn check_outputs(outputs: &[(&str, &Output)], inputs: &[&Path]) -> Result<(), OutputError> {
    refuse_duplicate_outputs(outputs)?;
    for (_, output) in outputs {
        refuse_output_onto_inputs(output, inputs)?;
    }
    for (_, output) in outputs {
        output.check_writable()?;
    }
    Ok(())
}

/// Checks that files can be created in `dir`, or, where it does not exist
/// yet, in its nearest existing ancestor (where it would be created).
pub fn check_dir_writable(dir: &Path) -> Result<(), OutputError> {
    let mut existing: PathBuf = dir.to_path_buf();
    while !existing.as_os_str().is_empty() && !existing.exists() {
        existing = existing.parent().map(Path::to_path_buf).unwrap_or_default();
    }
    if existing.as_os_str().is_empty() {
        existing = PathBuf::from(".");
    }
    if !existing.is_dir() {
        return Err(OutputError::NotWritable {
            target: dir.display().to_string(),
            reason: format!("{} is not a directory", existing.display()),
        });
    }
    let probe = existing.join(".tcanet-export-probe");
    Output::Path(probe).check_writable().map_err(|e| match e {
        OutputError::NotWritable { reason, .. } => OutputError::NotWritable {
            target: dir.display().to_string(),
            reason,
        },
        other => other,
    })
}
