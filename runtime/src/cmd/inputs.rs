//! Reading a command's inputs: the dataset (its annotations or proposals
//! JSON may be `-`, standard input), the classifier, the subset's videos.
use std::path::{Path, PathBuf};

use anyhow::Result;
use tcanet_cli::{refuse_stdin_twice, Input};
use tcanet_models::checkpoint::sha256_hex;
use tcanet_models::data::{Annotations, DataError, Dataset, DatasetPaths, ProposalSet};
use tcanet_runtime::classifier::{ClassScores, ClassifierError};

use super::status::usage;

/// How standard input is named in messages.
pub const STDIN_NAME: &str = "<stdin>";

/// Whether a path flag's value is `-` (standard input).
pub fn is_stdin(path: &Path) -> bool {
    path.as_os_str() == "-"
}

/// Refuses `-` for more than one input (standard input is read once);
/// `inputs` are `(flag, path)` pairs.
pub fn refuse_stdin_twice_in(inputs: &[(&str, Option<&Path>)]) -> Result<()> {
    let given: Vec<(&str, Input)> = inputs
        .iter()
        .filter_map(|(flag, p)| p.map(|p| (*flag, Input::parse(p.as_os_str()))))
        .collect();
    let pairs: Vec<(&str, &Input)> = given.iter().map(|(f, i)| (*f, i)).collect();
    refuse_stdin_twice(&pairs).map_err(|e| usage(e.to_string()))
}

/// Standard input as UTF-8 text.
pub fn read_stdin() -> Result<String> {
    let bytes = Input::Stdin
        .read_all()
        .map_err(|e| usage(format!("cannot read standard input: {e}")))?;
    String::from_utf8(bytes).map_err(|_| usage("standard input is not UTF-8 text"))
}

/// A dataset read from `paths` (annotations or proposals `-`: standard
/// input), and the annotations' text when it came from standard input (for
/// `--eval`).
pub fn load_dataset(paths: &DatasetPaths) -> Result<(Dataset, Option<String>)> {
    let stdin = Path::new(STDIN_NAME);
    let mut shown = paths.clone();
    let (annotations, text) = if is_stdin(&paths.annotations) {
        shown.annotations = stdin.to_path_buf();
        let text = read_stdin()?;
        (Annotations::parse(&text, stdin)?, Some(text))
    } else {
        (Annotations::load(&paths.annotations)?, None)
    };
    let proposals = if is_stdin(&paths.proposals) {
        shown.proposals = stdin.to_path_buf();
        ProposalSet::parse_json(&read_stdin()?, stdin)?
    } else {
        ProposalSet::load(&paths.proposals)?
    };
    Ok((
        Dataset {
            paths: shown,
            annotations,
            proposals,
        },
        text,
    ))
}

/// The features directory must exist before any video is read.
pub fn check_features_dir(paths: &DatasetPaths) -> Result<()> {
    let dir = &paths.features;
    if dir.is_dir() {
        return Ok(());
    }
    let what = if dir.exists() {
        "is not a directory"
    } else {
        "does not exist"
    };
    Err(usage(format!(
        "{}: the features directory {what} (give --features DIR, or --data DIR with DIR/features)",
        dir.display()
    )))
}

/// The videos of `subset` (all when `None`) in file order; an error naming
/// the annotations file when there are none.
pub fn subset_videos(dataset: &Dataset, subset: Option<&str>) -> Result<Vec<String>> {
    let videos = dataset.videos(subset);
    if videos.is_empty() {
        let what = subset
            .map(|s| {
                let known = dataset.annotations.subset_names();
                format!(" in subset '{s}' (the file has: {known})")
            })
            .unwrap_or_default();
        return Err(usage(format!(
            "{}: no videos{what}",
            dataset.paths.annotations.display()
        )));
    }
    Ok(videos)
}

/// A classifier file (`-`: standard input) and the SHA-256 of its text.
pub fn load_classifier(path: &Path) -> Result<(ClassScores, String)> {
    let (text, shown) = if is_stdin(path) {
        (read_stdin()?, PathBuf::from(STDIN_NAME))
    } else {
        let text = std::fs::read_to_string(path).map_err(|e| ClassifierError {
            path: path.to_path_buf(),
            message: format!("cannot read: {e}"),
        })?;
        (text, path.to_path_buf())
    };
    let scores = ClassScores::parse(&text, &shown)?;
    Ok((scores, sha256_hex(text.as_bytes())))
}

/// The SHA-256 of a model file (its identity in the outputs).
pub fn model_sha256(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
    Ok(sha256_hex(&bytes))
}
