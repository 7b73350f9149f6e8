//! Dataset inference: annotations + features + input proposals → refined
//! proposals (and detections), pipelined.
//!
//! Worker threads read and prepare the next videos ([`tcanet_models::data`],
//! the same loader and preparation as the trainer) while the model runs on
//! the current one; every video's proposals go through the model in one call
//! (or chunks of `max_batch`), then [`crate::postprocess`].
use std::path::PathBuf;
use std::sync::Arc;

use tcanet_models::data::features::load_features;
use tcanet_models::data::prepare::{choose_proposals, prepare_video, FitOptions, VideoData};
use tcanet_models::data::proposals::{InvalidProposals, Proposal};
use tcanet_models::data::{
    DataError, Dataset, FeatureLayout, Prefetcher, PreparedVideo, ProposalSet,
};
use tcanet_models::onnx::ModelInterface;

use crate::classifier::{detections_for_video, ClassScores, Detection};
use crate::postprocess::{postprocess_video, PostProcessOptions, ScoredSegment};
use crate::refiner::RefineError;
use tcanet_ort::TcanetModel;

/// Options of [`run_dataset`].
#[derive(Debug, Clone)]
pub struct InferSettings {
    /// Post-processing (Soft-NMS, top-k).
    pub post: PostProcessOptions,
    /// Cap on proposals per model call (`None`: all of a video in one call).
    pub max_batch: Option<usize>,
    /// Use only the best `n` input proposals of each video (`None`: all).
    pub max_proposals: Option<usize>,
    /// Feature layout of the `.npy` files.
    pub layout: FeatureLayout,
    /// Interpolate features longer than T to T (HACS-style configs).
    pub resample: bool,
    /// Threads reading and preparing videos ahead of the model.
    pub workers: usize,
    /// Prepared videos held ready at most.
    pub prefetch: usize,
    /// Go on past failed videos (they are reported); otherwise stop at the first.
    pub keep_going: bool,
    /// Detections: classes per video (3).
    pub top_classes: usize,
    /// Detections: kept per video (200).
    pub max_detections: usize,
}

impl Default for InferSettings {
    fn default() -> Self {
        Self {
            post: PostProcessOptions::default(),
            max_batch: None,
            max_proposals: None,
            layout: FeatureLayout::Auto,
            resample: false,
            workers: 1,
            prefetch: 4,
            keep_going: false,
            top_classes: 3,
            max_detections: 200,
        }
    }
}

/// Why one video could not be processed; every message names the file,
/// the video and the field where there is one.
#[derive(Debug, thiserror::Error)]
pub enum VideoError {
    /// The video is not in the annotations.
    #[error("{}: video '{video}' is not in the annotations", annotations.display())]
    NotInAnnotations {
        /// The annotations file.
        annotations: PathBuf,
        /// The video id.
        video: String,
    },
    /// The proposals file has no entry for the video.
    #[error("{}: video '{video}': no input proposals for this video", file.display())]
    NoProposals {
        /// The proposals file.
        file: PathBuf,
        /// The video id.
        video: String,
    },
    /// The video's list of proposals is empty.
    #[error("{}: video '{video}': the list of input proposals is empty", file.display())]
    EmptyProposals {
        /// The proposals file.
        file: PathBuf,
        /// The video id.
        video: String,
    },
    /// No proposal is left after clamping to the video.
    #[error("{}: video '{video}': no usable input proposal", file.display())]
    NoUsableProposal {
        /// The proposals file.
        file: PathBuf,
        /// The video id.
        video: String,
    },
    /// The classifier file has no scores for the video.
    #[error("{}: video '{video}': the classifier file has no scores for this video", classifier.display())]
    NotInClassifier {
        /// The classifier file.
        classifier: PathBuf,
        /// The video id.
        video: String,
    },
    /// A feature file or a proposal is unusable (the message of
    /// [`tcanet_models::data`], naming file, video and field).
    #[error(transparent)]
    Data(#[from] DataError),
    /// A failure of the per-video path shared with [`crate::refiner`]: an
    /// in-memory input that is malformed, ONNX Runtime failing on the video,
    /// or a non-finite model output (the message of [`RefineError`]).
    #[error(transparent)]
    Refine(#[from] RefineError),
}

impl VideoError {
    /// Whether the video's input data is at fault (as opposed to the model
    /// or ONNX Runtime): a usage-or-input error for the exit status.
    pub fn is_bad_input(&self) -> bool {
        match self {
            VideoError::Refine(e) => e.is_input_error(),
            _ => true,
        }
    }
}

/// A video that could not be processed, and why (serialised as
/// `{"video", "error"}` with the error's message).
#[derive(Debug)]
pub struct VideoFailure {
    /// The video id.
    pub video: String,
    /// The error, naming file and field.
    pub error: VideoError,
}

impl serde::Serialize for VideoFailure {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("VideoFailure", 2)?;
        st.serialize_field("video", &self.video)?;
        st.serialize_field("error", &self.error.to_string())?;
        st.end()
    }
}

/// One processed video.
#[derive(Debug, Clone, PartialEq)]
pub struct VideoResult {
    /// The video id.
    pub video: String,
    /// Refined proposals in seconds, best first (at most `top_k`).
    pub proposals: Vec<ScoredSegment>,
    /// Detections, when a classifier was given.
    pub detections: Option<Vec<Detection>>,
}

/// What [`run_dataset`] did.
#[derive(Debug, Default)]
pub struct RunSummary {
    /// Processed videos, in the given order.
    pub results: Vec<VideoResult>,
    /// Failed videos, in the given order.
    pub failures: Vec<VideoFailure>,
    /// True when the run stopped at a failure (no `keep_going`).
    pub stopped_early: bool,
    /// Seconds spent inside the model.
    pub model_seconds: f64,
}

impl RunSummary {
    /// Adds one video's outcome and calls `on_video` with whether it
    /// succeeded; returns false when the run stops here (a failure without
    /// `keep_going`).
    fn record(
        &mut self,
        video: &str,
        outcome: Result<VideoResult, VideoError>,
        keep_going: bool,
        on_video: &mut impl FnMut(&str, bool),
    ) -> bool {
        match outcome {
            Ok(result) => {
                on_video(video, true);
                self.results.push(result);
                true
            }
            Err(error) => {
                on_video(video, false);
                self.failures.push(VideoFailure {
                    video: video.to_string(),
                    error,
                });
                if !keep_going {
                    self.stopped_early = true;
                }
                keep_going
            }
        }
    }
}

/// One video ready for [`infer_video`].
#[derive(Debug, Clone)]
pub struct VideoInput {
    /// The network's inputs (features `[C, T]`, proposals in network units
    /// and, with their full-precision scores, in seconds).
    pub prepared: PreparedVideo,
    /// The video's duration in seconds.
    pub duration: f64,
}

/// Reads one video's input proposals and checks them against its duration
/// (invalid ones are an error, small overshoots clamped), and that the
/// classifier, if any, has the video: the common start of
/// [`prepare_video_input`] and [`postprocess_input_video`]. Returns the
/// duration and the proposals in seconds. An error names the file, video and
/// field.
fn checked_input_proposals(
    dataset: &Dataset,
    video: &str,
    classifier: Option<&ClassScores>,
) -> Result<(f64, Vec<Proposal>), VideoError> {
    let file = || dataset.proposals.source.file_of(video);
    let info = dataset
        .annotations
        .get(video)
        .ok_or_else(|| VideoError::NotInAnnotations {
            annotations: dataset.paths.annotations.clone(),
            video: video.to_string(),
        })?;
    let props = dataset
        .proposals
        .get(video)
        .ok_or_else(|| VideoError::NoProposals {
            file: file(),
            video: video.to_string(),
        })?;
    if props.is_empty() {
        return Err(VideoError::EmptyProposals {
            file: file(),
            video: video.to_string(),
        });
    }
    if let Some(c) = classifier {
        if !c.videos.contains_key(video) {
            return Err(VideoError::NotInClassifier {
                classifier: c.path.clone(),
                video: video.to_string(),
            });
        }
    }
    let mut one = ProposalSet::new(
        dataset.proposals.source.clone(),
        vec![(video.to_string(), props.to_vec())],
    );
    one.validate(|_| Some(info.duration), InvalidProposals::Error)?;
    let props = one.videos.swap_remove(0).1;
    if props.is_empty() {
        return Err(VideoError::NoUsableProposal {
            file: file(),
            video: video.to_string(),
        });
    }
    Ok((info.duration, props))
}

/// Reads, checks and prepares one video for the model (what the worker
/// threads of [`run_dataset`] do): its proposals validated against the
/// duration, its features loaded and fitted to T. An error names the file,
/// video and field.
pub fn prepare_video_input(
    dataset: &Dataset,
    video: &str,
    model: &ModelInterface,
    settings: &InferSettings,
    classifier: Option<&ClassScores>,
) -> Result<VideoInput, VideoError> {
    let cfg = &model.config;
    let (duration, props) = checked_input_proposals(dataset, video, classifier)?;
    let path = dataset.feature_path(video);
    let feats = load_features(&path, video, cfg.feat_dim, settings.layout)?;
    let data = VideoData {
        video,
        features: &feats,
        features_path: &path,
        proposals: &props,
        duration,
    };
    let fit = FitOptions {
        time_steps: model.time_steps,
        resample: settings.resample,
    };
    let prepared = prepare_video(&data, cfg, fit, settings.max_proposals)?;
    Ok(VideoInput { prepared, duration })
}

/// Runs the model on one prepared video and post-processes the result.
pub fn infer_video(
    model: &mut TcanetModel,
    input: &VideoInput,
    settings: &InferSettings,
    classifier: Option<&ClassScores>,
) -> Result<VideoResult, VideoError> {
    let prepared = &input.prepared;
    // The library's per-video path (crate::refiner), so that `run` and
    // `Refiner::refine` compute the same numbers.
    let (proposals, _) =
        crate::refiner::refine_prepared(model, input, &settings.post, settings.max_batch)?;
    let detections = classifier.map(|c| {
        let classes = c
            .top_classes(&prepared.video, settings.top_classes)
            .unwrap_or_default();
        detections_for_video(&proposals, &classes, settings.max_detections)
    });
    Ok(VideoResult {
        video: prepared.video.clone(),
        proposals,
        detections,
    })
}

/// Runs inference over `videos` of `dataset`: preparation on worker threads,
/// the model on this thread, one call per video.
///
/// Data problems (missing features, NaN, wrong channels, bad or missing
/// proposals, a video the classifier lacks) become [`VideoFailure`]s; without
/// `keep_going` the run stops at the first. `on_video` is called after each
/// video (for progress).
pub fn run_dataset(
    model: &mut TcanetModel,
    dataset: Arc<Dataset>,
    videos: &[String],
    classifier: Option<Arc<ClassScores>>,
    settings: &InferSettings,
    mut on_video: impl FnMut(&str, bool),
) -> RunSummary {
    let interface = model.interface.clone();
    let jobs: Arc<Vec<String>> = Arc::new(videos.to_vec());
    let prefetcher = {
        let (dataset, jobs, settings, classifier) = (
            dataset.clone(),
            jobs.clone(),
            settings.clone(),
            classifier.clone(),
        );
        Prefetcher::new(jobs.len(), settings.workers, settings.prefetch, move |i| {
            prepare_video_input(
                &dataset,
                &jobs[i],
                &interface,
                &settings,
                classifier.as_deref(),
            )
        })
    };
    let mut summary = RunSummary::default();
    for (i, prepared) in prefetcher.enumerate() {
        let video = &jobs[i];
        let outcome = prepared.and_then(|input| {
            let start = std::time::Instant::now();
            let r = infer_video(model, &input, settings, classifier.as_deref());
            summary.model_seconds += start.elapsed().as_secs_f64();
            r
        });
        if !summary.record(video, outcome, settings.keep_going, &mut on_video) {
            break;
        }
    }
    summary
}

/// The post-processing alone on one video's input proposals, without the
/// network (a baseline for TCANet): the input proposals checked as
/// [`prepare_video_input`] checks them (the best `max_proposals` if set), their
/// input scores as they are (no fusion), then [`postprocess_video`]
/// (Soft-NMS, top-k, clipping to the video). Features are not read.
pub fn postprocess_input_video(
    dataset: &Dataset,
    video: &str,
    settings: &InferSettings,
) -> Result<VideoResult, VideoError> {
    let (duration, props) = checked_input_proposals(dataset, video, None)?;
    let chosen = choose_proposals(&props, settings.max_proposals);
    let segments: Vec<(f64, f64)> = chosen.iter().map(|p| (p.start, p.end)).collect();
    let scores: Vec<f64> = chosen.iter().map(|p| p.score).collect();
    Ok(VideoResult {
        video: video.to_string(),
        proposals: postprocess_video(&segments, &scores, duration, &settings.post),
        detections: None,
    })
}

/// [`postprocess_input_video`] over `videos` of `dataset`, in order, with the
/// failure handling of [`run_dataset`] (`keep_going`); `on_video` is called
/// after each video. `model_seconds` stays 0.
pub fn postprocess_input_dataset(
    dataset: &Dataset,
    videos: &[String],
    settings: &InferSettings,
    mut on_video: impl FnMut(&str, bool),
) -> RunSummary {
    let mut summary = RunSummary::default();
    for video in videos {
        let outcome = postprocess_input_video(dataset, video, settings);
        if !summary.record(video, outcome, settings.keep_going, &mut on_video) {
            break;
        }
    }
    summary
}

#[cfg(test)]
mod tests {
    use super::*;
    use tcanet_ort::ModelError;

    /// The per-video path's failures reach `run` with the refiner's message,
    /// the model's error as their source, and only an input error counts as
    /// bad input (exit 2) among them.
    #[test]
    fn refine_errors_keep_their_message_source_and_status() {
        let model_error = || ModelError::Run {
            path: "m.onnx".into(),
            message: "boom".into(),
        };
        let cases = [
            (
                RefineError::Input {
                    video: "v".into(),
                    field: "scores".into(),
                    reason: "1 scores for 2 proposals".into(),
                },
                true,
                "video 'v': scores: 1 scores for 2 proposals",
            ),
            (
                RefineError::NonFinite {
                    model: "m.onnx".into(),
                    video: "v".into(),
                    index: 3,
                    largest_feature: 1e30,
                },
                false,
                "m.onnx: video 'v': the model produced a non-finite value for proposal 3 (the \
                 video's features reach 1e30 in magnitude; values far larger than the training \
                 data's overflow float32 inside the network)",
            ),
            (
                RefineError::Model {
                    video: "v".into(),
                    source: model_error(),
                },
                false,
                "video 'v': m.onnx: inference failed: boom",
            ),
        ];
        for (e, bad_input, message) in cases {
            let is_model = matches!(e, RefineError::Model { .. });
            let v = VideoError::from(e);
            assert_eq!(v.to_string(), message);
            assert_eq!(v.is_bad_input(), bad_input, "{message}");
            let source = std::error::Error::source(&v);
            assert_eq!(
                source.is_some_and(|s| s.is::<ModelError>()),
                is_model,
                "{message}"
            );
        }
        let missing = VideoError::NotInAnnotations {
            annotations: "a.json".into(),
            video: "v".into(),
        };
        assert!(missing.is_bad_input());
    }
}
