//! A training or validation split: videos with their ground truth, input
//! proposals and feature files, checked up front; skips counted.
use serde::Serialize;
use std::path::PathBuf;
use tcanet_models::data::features::load_features;
use tcanet_models::data::npy::read_npy_shape;
use tcanet_models::data::prepare::{prepare_video, FitOptions, TrainingSample, VideoData};
use tcanet_models::data::proposals::{top_by_score, InvalidProposals, ValidationReport};
use tcanet_models::data::{DataError, Dataset, DatasetPaths, ErrorKind, FeatureLayout, Proposal};
use tcanet_models::ModelConfig;

/// How videos are selected and prepared.
#[derive(Debug, Clone, Serialize)]
pub struct DataOptions {
    /// Input proposals per video, best scores first (64).
    pub max_proposals: usize,
    /// Ground-truth instances shorter than this (seconds) are dropped (1.0).
    pub min_instance_seconds: f64,
    /// Feature file layout.
    #[serde(skip)]
    pub layout: FeatureLayout,
    /// Interpolate feature sequences longer than T (HACS style) instead of failing.
    pub resample: bool,
    /// Drop invalid proposals (counted) instead of failing.
    pub skip_invalid_proposals: bool,
}

impl Default for DataOptions {
    fn default() -> Self {
        Self {
            max_proposals: 64,
            min_instance_seconds: 1.0,
            layout: FeatureLayout::Auto,
            resample: false,
            skip_invalid_proposals: false,
        }
    }
}

/// One usable video of a split.
#[derive(Debug, Clone)]
pub struct VideoEntry {
    /// Video id.
    pub id: String,
    /// Duration (s).
    pub duration: f64,
    /// Kept ground-truth instances `[start, end]` in seconds.
    pub instances: Vec<[f64; 2]>,
    /// The top `max_proposals` input proposals.
    pub proposals: Vec<Proposal>,
    /// Its `.npy` file.
    pub features: PathBuf,
}

/// Why videos or instances were left out of a split (reported, never silent).
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct SkipCounts {
    /// Instances shorter than `min_instance_seconds`, dropped.
    pub short_instances: usize,
    /// Videos left without any instance, skipped.
    pub videos_without_instances: usize,
    /// Videos without any (valid) input proposal, skipped.
    pub videos_without_proposals: usize,
    /// Invalid proposals dropped (with `skip_invalid_proposals`).
    pub invalid_proposals: usize,
    /// Proposals overshooting the video slightly, clamped to it.
    pub clamped_proposals: usize,
}

/// The usable videos of one subset.
#[derive(Debug, Clone)]
pub struct Split {
    /// Subset name (`training`, `validation`).
    pub subset: String,
    /// Usable videos in annotation-file order.
    pub videos: Vec<VideoEntry>,
    /// What was left out.
    pub skipped: SkipCounts,
}

/// A dataset opened for training: its proposals validated once, and the
/// splits built from it.
pub struct TrainingData {
    /// The dataset (annotations, validated proposals, paths).
    pub dataset: Dataset,
    /// Proposal validation counts.
    pub proposal_report: ValidationReport,
}

impl TrainingData {
    /// Reads the annotations and proposals and validates the proposals
    /// against the durations (invalid ones skipped or an error, as `opts` says).
    pub fn open(paths: &DatasetPaths, opts: &DataOptions) -> Result<Self, DataError> {
        let mut dataset = Dataset::load(paths)?;
        let policy = if opts.skip_invalid_proposals {
            InvalidProposals::Skip
        } else {
            InvalidProposals::Error
        };
        let proposal_report = dataset.validate_proposals(policy)?;
        Ok(Self {
            dataset,
            proposal_report,
        })
    }

    /// The usable videos of `subset`: instances shorter than the minimum are
    /// dropped and videos left without instances or without proposals are
    /// skipped (counted); each kept video's feature file must exist and have
    /// `cfg.feat_dim` channels (checked from its header), else an error
    /// naming the file and video.
    pub fn split(
        &self,
        subset: &str,
        cfg: &ModelConfig,
        opts: &DataOptions,
    ) -> Result<Split, DataError> {
        let mut skipped = SkipCounts {
            invalid_proposals: self.proposal_report.skipped,
            clamped_proposals: self.proposal_report.clamped,
            ..SkipCounts::default()
        };
        let mut videos = Vec::new();
        for v in self.dataset.annotations.subset(subset) {
            let instances: Vec<[f64; 2]> = v
                .instances
                .iter()
                .filter(|a| a.length() >= opts.min_instance_seconds)
                .map(|a| [a.start, a.end])
                .collect();
            skipped.short_instances += v.instances.len() - instances.len();
            if instances.is_empty() {
                skipped.videos_without_instances += 1;
                continue;
            }
            let props = self.dataset.proposals.get(&v.id).unwrap_or(&[]);
            if props.is_empty() {
                skipped.videos_without_proposals += 1;
                continue;
            }
            let features = self.dataset.feature_path(&v.id);
            let shape = read_npy_shape(&features).map_err(|e| e.video(v.id.clone()))?;
            if shape[0] != cfg.feat_dim && shape[1] != cfg.feat_dim {
                return Err(DataError::new(
                    &features,
                    ErrorKind::WrongChannels {
                        shape,
                        expected: cfg.feat_dim,
                    },
                )
                .video(v.id.clone()));
            }
            videos.push(VideoEntry {
                id: v.id.clone(),
                duration: v.duration,
                instances,
                proposals: top_by_score(props, opts.max_proposals),
                features,
            });
        }
        Ok(Split {
            subset: subset.to_string(),
            videos,
            skipped,
        })
    }
}

/// Loads one video's features and builds its training sample.
pub fn load_sample(
    v: &VideoEntry,
    cfg: &ModelConfig,
    opts: &DataOptions,
) -> Result<TrainingSample, DataError> {
    let feats = load_features(&v.features, &v.id, cfg.feat_dim, opts.layout)?;
    let data = VideoData {
        video: &v.id,
        features: &feats,
        features_path: &v.features,
        proposals: &v.proposals,
        duration: v.duration,
    };
    let fit = FitOptions::fixed(cfg, opts.resample);
    let input = prepare_video(&data, cfg, fit, Some(opts.max_proposals))?;
    TrainingSample::new(input, &v.instances).ok_or_else(|| {
        DataError::invalid(&v.features, "no proposals or instances left").video(v.id.clone())
    })
}
