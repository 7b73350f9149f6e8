//! A dataset as the trainer and the runtime both open it: where its files
//! are ([`DatasetPaths`], one resolution rule for `--data DIR` and the
//! per-file flags) and its annotations and input proposals in memory
//! ([`Dataset`]); features are read per video.
use std::path::{Path, PathBuf};

use super::proposals::{InvalidProposals, ValidationReport};
use super::{Annotations, DataError, ProposalSet};

/// File name of the annotations inside a dataset directory.
pub const ANNOTATIONS_FILE: &str = "annotations.json";
/// Directory name of the features inside a dataset directory.
pub const FEATURES_DIR: &str = "features";
/// File name of the input proposals inside a dataset directory.
pub const PROPOSALS_FILE: &str = "proposals.json";
/// File name of the video-level class scores that a synthetic dataset
/// directory carries (for `tcanet-infer --classifier`; not read through
/// [`DatasetPaths`]).
pub const CLASSIFIER_FILE: &str = "classifier.json";

/// Where a dataset's files are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatasetPaths {
    /// ActivityNet/HACS `database` JSON (subset and duration per video).
    pub annotations: PathBuf,
    /// Directory of `<video>.npy` features.
    pub features: PathBuf,
    /// Input proposals: leaderboard JSON, or a directory of `<video>.csv`.
    pub proposals: PathBuf,
}

/// The paths a user gave: a dataset directory and/or each file.
#[derive(Debug, Clone, Default)]
pub struct GivenPaths {
    /// `--data DIR`.
    pub data: Option<PathBuf>,
    /// `--annotations FILE`.
    pub annotations: Option<PathBuf>,
    /// `--features DIR`.
    pub features: Option<PathBuf>,
    /// `--proposals FILE|DIR`.
    pub proposals: Option<PathBuf>,
}

impl DatasetPaths {
    /// `DIR/annotations.json`, `DIR/features`, `DIR/proposals.json`.
    pub fn in_dir(dir: &Path) -> Self {
        Self {
            annotations: dir.join(ANNOTATIONS_FILE),
            features: dir.join(FEATURES_DIR),
            proposals: dir.join(PROPOSALS_FILE),
        }
    }

    /// Each path as given, else inside `--data DIR`; a path neither given
    /// nor implied is an error naming the flag. Without `need_features`, a
    /// missing features directory is no error (the path is then empty and
    /// must not be read).
    pub fn resolve(given: &GivenPaths, need_features: bool) -> Result<Self, DataError> {
        let base = given.data.as_deref().map(Self::in_dir);
        let pick = |path: &Option<PathBuf>, implied: Option<PathBuf>, flag: &str| {
            path.clone().or(implied).ok_or_else(|| {
                DataError::usage(format!("missing {flag} (or --data DIR with the dataset)"))
            })
        };
        let features = match (&given.features, &base, need_features) {
            (None, None, false) => PathBuf::new(),
            _ => pick(
                &given.features,
                base.as_ref().map(|b| b.features.clone()),
                "--features DIR",
            )?,
        };
        Ok(Self {
            annotations: pick(
                &given.annotations,
                base.as_ref().map(|b| b.annotations.clone()),
                "--annotations FILE",
            )?,
            features,
            proposals: pick(
                &given.proposals,
                base.as_ref().map(|b| b.proposals.clone()),
                "--proposals FILE|DIR",
            )?,
        })
    }
}

/// A dataset opened for training or inference: annotations and input
/// proposals in memory, features read per video.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// The files.
    pub paths: DatasetPaths,
    /// The annotations.
    pub annotations: Annotations,
    /// The input proposals of every video (as read; see [`Dataset::validate_proposals`]).
    pub proposals: ProposalSet,
}

impl Dataset {
    /// Reads the annotations and the input proposals (a broken file is an error).
    pub fn load(paths: &DatasetPaths) -> Result<Self, DataError> {
        Ok(Self {
            annotations: Annotations::load(&paths.annotations)?,
            proposals: ProposalSet::load(&paths.proposals)?,
            paths: paths.clone(),
        })
    }

    /// Checks every video's proposals against its duration (see
    /// [`ProposalSet::validate`]): invalid ones are an error or skipped.
    pub fn validate_proposals(
        &mut self,
        policy: InvalidProposals,
    ) -> Result<ValidationReport, DataError> {
        let annotations = &self.annotations;
        self.proposals
            .validate(|v| annotations.get(v).map(|a| a.duration), policy)
    }

    /// Video ids of `subset` (all videos if `None`), in the annotations' order.
    pub fn videos(&self, subset: Option<&str>) -> Vec<String> {
        self.annotations
            .videos
            .iter()
            .filter(|v| subset.is_none_or(|s| v.subset == s))
            .map(|v| v.id.clone())
            .collect()
    }

    /// The features file of `video`.
    pub fn feature_path(&self, video: &str) -> PathBuf {
        super::features::feature_path(&self.paths.features, video)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_from_a_directory_and_from_flags() {
        let dir = GivenPaths {
            data: Some("d".into()),
            ..Default::default()
        };
        assert_eq!(
            DatasetPaths::resolve(&dir, true).unwrap(),
            DatasetPaths::in_dir(Path::new("d"))
        );
        let mixed = GivenPaths {
            proposals: Some("p/".into()),
            ..dir.clone()
        };
        let p = DatasetPaths::resolve(&mixed, true).unwrap();
        assert_eq!(p.proposals, PathBuf::from("p/"));
        assert_eq!(p.features, PathBuf::from("d/features"));
        let bare = GivenPaths {
            annotations: Some("a.json".into()),
            proposals: Some("p.json".into()),
            ..Default::default()
        };
        let e = DatasetPaths::resolve(&bare, true).unwrap_err().to_string();
        assert!(e.contains("--features DIR"), "{e}");
        assert_eq!(
            DatasetPaths::resolve(&bare, false).unwrap().features,
            PathBuf::new()
        );
        let e = DatasetPaths::resolve(&GivenPaths::default(), false)
            .unwrap_err()
            .to_string();
        assert!(e.contains("--annotations FILE"), "{e}");
    }
}
