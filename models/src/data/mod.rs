//! Dataset formats as users have them, in plain Rust (no libtorch): the
//! trainer and the runtime both read their inputs through this module.
//!
//! * [`dataset`]: where a dataset's files are, and the dataset opened.
//! * [`annotations`]: ActivityNet / HACS ground truth (`database` JSON).
//! * [`npy`] and [`features`]: one `.npy` per video, f32 or f16, `[T, C]` or
//!   `[C, T]`, checked for NaN/Inf and the channel count.
//! * [`proposals`]: input proposals from a leaderboard-format JSON or a
//!   directory of per-video CSV files, validated against the video.
//! * [`matching`]: temporal IoU and the matched ground truth of proposals.
//! * [`prepare`]: one video's features and proposals → the network's inputs
//!   (and back to seconds); training samples and batches.
//! * [`prefetch`]: ordered prefetching on worker threads.
//!
//! Every error is a [`DataError`] that names the file, the video and the field.
pub mod annotations;
pub mod dataset;
mod error;
pub mod features;
mod guard;
pub mod matching;
pub mod npy;
mod ordered;
pub use ordered::{json_error_message, repeated_video_reason, Ordered};
pub mod prefetch;
pub mod prepare;
pub mod proposals;

pub use annotations::{duration_problem, Annotations, Instance, VideoInfo};
pub use dataset::{Dataset, DatasetPaths, GivenPaths};
pub use error::{DataError, ErrorKind, INVALID_JSON};
pub use features::{FeatureLayout, FeatureMatrix};
pub use guard::InputGuard;
pub use matching::{matched_ground_truth, segment_iou};
pub use prefetch::Prefetcher;
pub use prepare::{FitOptions, PreparedVideo, TimeMap, TrainingBatch, TrainingSample, VideoData};
pub use proposals::{Proposal, ProposalPart, ProposalSet, ProposalSource};
