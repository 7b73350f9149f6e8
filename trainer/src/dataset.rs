//! A training or validation split: videos with their ground truth, input
//! proposals and feature files, checked up front; skips counted.
use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde::Serialize;
use std::fmt;
use std::path::PathBuf;
use tcanet_models::checkpoint::sha256_hex;
use tcanet_models::data::features::load_features;
use tcanet_models::data::npy::read_npy_shape;
use tcanet_models::data::prepare::{prepare_video, FitOptions, TrainingSample, VideoData};
use tcanet_models::data::proposals::{top_by_score, InvalidProposals, ValidationReport};
use tcanet_models::data::{DataError, Dataset, DatasetPaths, ErrorKind, FeatureLayout, Proposal};
use tcanet_models::ModelConfig;

use crate::error::{Result, TrainError};

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
    /// The `.npy` file's size in bytes.
    pub feature_bytes: u64,
    /// The `.npy` array's shape.
    pub feature_shape: [usize; 2],
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

impl fmt::Display for SkipCounts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} video(s) without instances >= the minimum length, {} without proposals; \
             {} short instance(s) dropped; {} invalid proposal(s) dropped, {} clamped to the video",
            self.videos_without_instances,
            self.videos_without_proposals,
            self.short_instances,
            self.invalid_proposals,
            self.clamped_proposals
        )
    }
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
    /// The dataset (annotations, validated proposals, paths), shared with
    /// the threads that read videos.
    pub dataset: std::sync::Arc<Dataset>,
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
            dataset: std::sync::Arc::new(dataset),
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
            let (feature_shape, feature_bytes) = checked_feature_file(&features, &v.id, cfg)?;
            videos.push(VideoEntry {
                id: v.id.clone(),
                duration: v.duration,
                instances,
                proposals: top_by_score(props, opts.max_proposals),
                features,
                feature_bytes,
                feature_shape,
            });
        }
        Ok(Split {
            subset: subset.to_string(),
            videos,
            skipped,
        })
    }
}

/// The shape (from the header) and size of a video's feature file; an
/// error names the file and video when it is missing, unreadable or has
/// no dimension of `cfg.feat_dim` channels.
fn checked_feature_file(
    path: &std::path::Path,
    video: &str,
    cfg: &ModelConfig,
) -> Result<([usize; 2], u64), DataError> {
    let shape = read_npy_shape(path).map_err(|e| e.video(video))?;
    if shape[0] != cfg.feat_dim && shape[1] != cfg.feat_dim {
        return Err(DataError::new(
            path,
            ErrorKind::WrongChannels {
                shape,
                expected: cfg.feat_dim,
            },
        )
        .video(video));
    }
    let bytes = std::fs::metadata(path)
        .map_err(|e| DataError::io(path, e).video(video))?
        .len();
    Ok((shape, bytes))
}

impl Split {
    /// Holds `fraction` of the videos out (at least one when `fraction > 0`,
    /// and at least one is left): a permutation from ChaCha8 seeded by
    /// `seed` picks them, so the slice depends only on the seed and the
    /// split's videos. Returns the videos kept (in order) and those held out
    /// (in order); fewer than two videos cannot be divided (an error naming
    /// the subset). Training and `calibrate` both find the slice here.
    pub fn hold_out(&self, fraction: f64, seed: u64) -> Result<(Split, Vec<VideoEntry>)> {
        let n = self.videos.len();
        if fraction <= 0.0 {
            return Ok((self.clone(), Vec::new()));
        }
        if n < 2 {
            return Err(TrainError::TooFewToHoldOut {
                subset: self.subset.clone(),
                videos: n,
                fraction,
            });
        }
        let k = ((fraction * n as f64).round() as usize).clamp(1, n - 1);
        let mut order: Vec<usize> = (0..n).collect();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed ^ 0x6361_6C69_6272_6174);
        order.shuffle(&mut rng);
        let mut held = vec![false; n];
        for &i in &order[..k] {
            held[i] = true;
        }
        let (mut kept, mut out) = (Vec::new(), Vec::new());
        for (v, h) in self.videos.iter().zip(held) {
            if h {
                out.push(v.clone())
            } else {
                kept.push(v.clone())
            }
        }
        let split = Split {
            subset: self.subset.clone(),
            videos: kept,
            skipped: self.skipped.clone(),
        };
        Ok((split, out))
    }
}

/// The digest of the data a run trains on, for `--resume`'s check: a
/// SHA-256 over, per video of the training split and then of the held-out
/// slice, its id, duration, kept instances, the input proposals used
/// (after the per-video cut; start, end and score bit for bit), and its
/// feature file's size and array shape. Feature values are not read: a
/// file rewritten in place with the same size and shape is not noticed
/// (reading every feature file before each resume would cost an epoch's
/// I/O on large datasets); moving or copying the dataset changes nothing.
pub fn data_fingerprint(train: &[VideoEntry], held_out: &[VideoEntry]) -> String {
    let mut text = String::new();
    for (tag, videos) in [("train", train), ("held-out", held_out)] {
        for v in videos {
            text += &format!("{tag}\t{}\t{:016x}", v.id, v.duration.to_bits());
            for i in &v.instances {
                text += &format!("\ti{:016x},{:016x}", i[0].to_bits(), i[1].to_bits());
            }
            for p in &v.proposals {
                text += &format!(
                    "\tp{:016x},{:016x},{:016x}",
                    p.start.to_bits(),
                    p.end.to_bits(),
                    p.score.to_bits()
                );
            }
            text += &format!(
                "\tf{},{}x{}\n",
                v.feature_bytes, v.feature_shape[0], v.feature_shape[1]
            );
        }
    }
    sha256_hex(text.as_bytes())
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
