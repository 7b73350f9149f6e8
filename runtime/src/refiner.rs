//! Refinement as a library call: one video's arrays in memory (features,
//! input proposals in seconds with their scores, duration) → the refined
//! proposals after the paper's post-processing, exactly as `tcanet-infer run`
//! computes them (the same preparation, [`tcanet_models::data::prepare`], and
//! the same model call and post-processing, [`refine_prepared`]).
//!
//! [`Refiner`] is `Send + Sync`: it holds a pool of ONNX Runtime sessions
//! (a session runs one call at a time), so threads can share one handle.
//!
//! ```no_run
//! use tcanet_ort::{init_ort, SessionSettings};
//! use tcanet_runtime::refiner::{Refiner, RefinerOptions, VideoArrays};
//!
//! init_ort(None)?;
//! let refiner = Refiner::load(
//!     "model.onnx".as_ref(),
//!     &SessionSettings::default(),
//!     None,                       // the config comes from the model's metadata
//!     RefinerOptions::default(),  // the release's Soft-NMS, top 100
//!     2,                          // sessions: two videos can run at once
//! )?;
//! let c = refiner.config().feat_dim;
//! let steps = 120; // the video's own length; fitted to the model's T as `run` does
//! let refined = refiner.refine(VideoArrays {
//!     video: "v_demo".into(),
//!     features: vec![0.0; c * steps], // [C, steps], channel-major
//!     steps,
//!     proposals: vec![[1.5, 9.0], [4.0, 30.0], [20.0, 55.0]], // seconds
//!     scores: vec![0.9, 0.6, 0.4],
//!     duration: 60.0,
//! })?;
//! for p in &refined.proposals {
//!     println!("[{:.2}, {:.2}] {:.4}", p.start, p.end, p.score);
//! }
//! // The network's own outputs for the same call (stage 3, seconds):
//! let stage3 = refined.network.refined_seconds(2);
//! # let _ = stage3;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};

use tcanet_models::data::prepare::{prepare_video, FitOptions, VideoData};
use tcanet_models::data::proposals::{InvalidProposals, Proposal};
use tcanet_models::data::{DataError, ErrorKind, FeatureMatrix, ProposalSet, ProposalSource};
use tcanet_models::data::{PreparedVideo, TimeMap};
use tcanet_models::onnx::ModelInterface;
use tcanet_models::{ModelConfig, NUM_STAGES};
use tcanet_ort::{ModelError, SessionSettings, StageOutputs, TcanetModel};

use crate::infer::VideoInput;
use crate::postprocess::{fuse_scores, postprocess_video, PostProcessOptions, ScoredSegment};

/// One video's inputs, in memory.
#[derive(Debug, Clone, PartialEq)]
pub struct VideoArrays {
    /// A name for messages (the video id).
    pub video: String,
    /// Features `[C, steps]`, channel-major (row `c` is channel `c` over
    /// time), at the video's own length: they are fitted to the model's T
    /// as `tcanet-infer run` fits a `.npy` file's.
    pub features: Vec<f32>,
    /// Time steps of `features`.
    pub steps: usize,
    /// Input proposals `[start, end]` in seconds.
    pub proposals: Vec<[f64; 2]>,
    /// Their scores, one per proposal.
    pub scores: Vec<f64>,
    /// The video's duration in seconds.
    pub duration: f64,
}

/// How [`Refiner`] prepares and post-processes videos (`run`'s flags).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RefinerOptions {
    /// Soft-NMS and top-k.
    pub post: PostProcessOptions,
    /// Use only the best `n` input proposals of a video (`None`: all).
    pub max_proposals: Option<usize>,
    /// Interpolate features longer than a fixed T to T (seconds configs).
    pub resample: bool,
    /// Cap on proposals per model call for one video (`None`: all at once).
    pub max_call_proposals: Option<usize>,
    /// Videos per model call in [`Refiner::refine_batch`].
    pub batch_videos: usize,
}

impl Default for RefinerOptions {
    fn default() -> Self {
        Self {
            post: PostProcessOptions::default(),
            max_proposals: None,
            resample: false,
            max_call_proposals: None,
            batch_videos: 8,
        }
    }
}

/// Why a video could not be refined.
#[derive(Debug, thiserror::Error)]
pub enum RefineError {
    /// An input array is malformed or holds an invalid value.
    #[error("video '{video}': {field}: {reason}")]
    Input {
        /// The video.
        video: String,
        /// The input concerned (`features`, `proposals[3]`, `scores`, `duration`).
        field: String,
        /// What is wrong.
        reason: String,
    },
    /// ONNX Runtime failed (or the model could not be loaded).
    #[error("video '{video}': {source}")]
    Model {
        /// The video (empty when loading).
        video: String,
        /// ONNX Runtime's error.
        #[source]
        source: ModelError,
    },
    /// The network produced NaN or an infinity.
    #[error(
        "{}: video '{video}': the model produced a non-finite value for proposal {index} (the \
         video's features reach {} in magnitude; values far larger than the training data's \
         overflow float32 inside the network)",
        model.display(),
        tcanet_cli::range::shown(*largest_feature)
    )]
    NonFinite {
        /// The model file.
        model: PathBuf,
        /// The video.
        video: String,
        /// The proposal (in the network's best-first order).
        index: usize,
        /// The largest magnitude among the video's (finite) features.
        largest_feature: f32,
    },
}

impl RefineError {
    fn input(video: &str, field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Input {
            video: video.to_string(),
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// A data-layer error about `video` as an input error (its field and reason).
    fn from_data(video: &str, default_field: &str, e: DataError) -> Self {
        let field = e.field.clone().unwrap_or_else(|| default_field.to_string());
        let reason = DataError::bare(e.kind).to_string();
        Self::input(video, field, reason)
    }

    /// True for errors in the caller's data (rather than in the model).
    pub fn is_input_error(&self) -> bool {
        matches!(self, Self::Input { .. })
    }
}

/// A refined video.
#[derive(Debug, Clone, PartialEq)]
pub struct Refined {
    /// The video.
    pub video: String,
    /// Refined proposals in seconds after score fusion, Soft-NMS, top-k and
    /// clipping, best first.
    pub proposals: Vec<ScoredSegment>,
    /// What the network returned for this video.
    pub network: NetworkOutputs,
}

/// The network's raw outputs for one video, before post-processing.
#[derive(Debug, Clone, PartialEq)]
pub struct NetworkOutputs {
    /// The input proposals the network saw, in seconds (checked, clamped to
    /// the video, best score first, at most `max_proposals`), with their scores.
    pub inputs: Vec<Proposal>,
    /// The six outputs (B = 1, N = `inputs.len()`), network units.
    pub stages: StageOutputs,
    /// Seconds ↔ network units for this video.
    pub time: TimeMap,
}

impl NetworkOutputs {
    /// The proposals refined by stage `k` (0, 1 or 2), in seconds.
    pub fn refined_seconds(&self, k: usize) -> Vec<[f64; 2]> {
        self.stages.proposals[k]
            .chunks_exact(2)
            .map(|p| {
                [
                    self.time.to_seconds(f64::from(p[0])),
                    self.time.to_seconds(f64::from(p[1])),
                ]
            })
            .collect()
    }
}

/// The post-processing of one video from its model outputs (B = 1, the
/// video's proposals in the prepared order): segments back to seconds, a
/// check that everything is finite, score fusion, Soft-NMS, top-k, clipping.
pub fn finish_video(
    model_path: &Path,
    input: &VideoInput,
    out: &StageOutputs,
    post: &PostProcessOptions,
) -> Result<Vec<ScoredSegment>, RefineError> {
    let prepared = &input.prepared;
    let refined: Vec<(f64, f64)> = out.proposals[NUM_STAGES - 1]
        .chunks_exact(2)
        .map(|p| {
            (
                prepared.time.to_seconds(f64::from(p[0])),
                prepared.time.to_seconds(f64::from(p[1])),
            )
        })
        .collect();
    let iou3 = &out.iou[NUM_STAGES - 1];
    if let Some(index) = iou3
        .iter()
        .zip(&refined)
        .position(|(u, r)| !(u.is_finite() && r.0.is_finite() && r.1.is_finite()))
    {
        return Err(RefineError::NonFinite {
            model: model_path.to_path_buf(),
            video: prepared.video.clone(),
            index,
            largest_feature: prepared.features.iter().fold(0.0, |m, x| m.max(x.abs())),
        });
    }
    let fused = fuse_scores(&prepared.input_scores(), iou3);
    Ok(postprocess_video(&refined, &fused, input.duration, post))
}

/// Runs one prepared video through `model` — all its proposals in one call,
/// or calls of at most `max_call` (and of the session's [`tcanet_ort::CallLimit`])
/// — and returns the concatenated outputs (B = 1). `tcanet-infer run` and
/// [`Refiner::refine`] both go through here. The first call's outputs are
/// returned as they are (one call: nothing copied); later calls append.
pub fn run_video(
    model: &mut TcanetModel,
    prepared: &PreparedVideo,
    max_call: Option<usize>,
) -> Result<StageOutputs, RefineError> {
    let n = prepared.proposals.len();
    let limit = model.call_limit.map(|l| l.proposals).unwrap_or(usize::MAX);
    let chunk = max_call.unwrap_or(n).min(limit).max(1);
    let mut all: Option<StageOutputs> = None;
    for part in prepared.proposals.chunks(chunk) {
        let out = model
            .run(&prepared.features, part, 1)
            .map_err(|source| RefineError::Model {
                video: prepared.video.clone(),
                source,
            })?;
        match &mut all {
            None => all = Some(out),
            Some(all) => {
                for k in 0..NUM_STAGES {
                    all.proposals[k].extend_from_slice(&out.proposals[k]);
                    all.iou[k].extend_from_slice(&out.iou[k]);
                }
            }
        }
    }
    let mut all = all.unwrap_or_else(|| StageOutputs {
        batch: 1,
        proposals_per_item: 0,
        proposals: Default::default(),
        iou: Default::default(),
    });
    all.proposals_per_item = n;
    Ok(all)
}

/// [`run_video`] then [`finish_video`]: what `tcanet-infer run` does per video.
pub fn refine_prepared(
    model: &mut TcanetModel,
    input: &VideoInput,
    post: &PostProcessOptions,
    max_call: Option<usize>,
) -> Result<(Vec<ScoredSegment>, StageOutputs), RefineError> {
    let out = run_video(model, &input.prepared, max_call)?;
    let proposals = finish_video(&model.path, input, &out, post)?;
    Ok((proposals, out))
}

/// Several prepared videos with the same T in one model call: features
/// stacked `[B, C, T]`, each video's proposals padded to the largest N with
/// copies of its first one (proposals do not interact in the network), the
/// outputs split per video with the padding dropped. A single video is
/// passed to ONNX Runtime as it is, without a copy.
pub fn run_padded(
    model: &mut TcanetModel,
    items: &[&PreparedVideo],
) -> Result<Vec<StageOutputs>, ModelError> {
    if let [one] = items {
        return Ok(vec![model.run(&one.features, &one.proposals, 1)?]);
    }
    let b = items.len();
    let n_max = items.iter().map(|p| p.proposals.len()).max().unwrap_or(0);
    let mut features = Vec::with_capacity(items.iter().map(|p| p.features.len()).sum());
    let mut proposals = Vec::with_capacity(b * n_max);
    for p in items {
        features.extend_from_slice(&p.features);
        proposals.extend_from_slice(&p.proposals);
        let pad = p.proposals.first().copied().unwrap_or([0.0, 1.0]);
        proposals.extend(std::iter::repeat_n(pad, n_max - p.proposals.len()));
    }
    let out = model.run(&features, &proposals, b)?;
    Ok(items
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let n = p.proposals.len();
            let rows =
                |v: &Vec<f32>, width: usize| v[i * n_max * width..(i * n_max + n) * width].to_vec();
            StageOutputs {
                batch: 1,
                proposals_per_item: n,
                proposals: std::array::from_fn(|k| rows(&out.proposals[k], 2)),
                iou: std::array::from_fn(|k| rows(&out.iou[k], 1)),
            }
        })
        .collect())
}

/// Sessions of one model, each used by one call at a time.
struct SessionPool {
    free: Mutex<Vec<TcanetModel>>,
    returned: Condvar,
}

/// A session taken from the pool; it goes back when dropped.
struct Lease<'a> {
    pool: &'a SessionPool,
    model: Option<TcanetModel>,
}

impl SessionPool {
    fn lock(&self) -> MutexGuard<'_, Vec<TcanetModel>> {
        self.free.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits for a free session.
    fn take(&self) -> Lease<'_> {
        let mut free = self.lock();
        loop {
            if let Some(model) = free.pop() {
                return Lease {
                    pool: self,
                    model: Some(model),
                };
            }
            free = self
                .returned
                .wait(free)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }
}

impl Lease<'_> {
    fn model(&mut self) -> &mut TcanetModel {
        self.model
            .as_mut()
            .expect("a lease holds its session until dropped")
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        if let Some(m) = self.model.take() {
            self.pool.lock().push(m);
            self.pool.returned.notify_one();
        }
    }
}

/// A loaded model that refines videos held in memory; `Send + Sync`, to
/// share between threads (each call takes one of its sessions).
pub struct Refiner {
    pool: SessionPool,
    sessions: usize,
    interface: ModelInterface,
    path: PathBuf,
    options: RefinerOptions,
    device: tcanet_ort::Device,
    warnings: Vec<String>,
    call_limit: Option<tcanet_ort::CallLimit>,
}

impl std::fmt::Debug for Refiner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Refiner")
            .field("path", &self.path)
            .field("sessions", &self.sessions)
            .field("device", &self.device)
            .finish()
    }
}

impl Refiner {
    /// Loads `sessions` sessions of the model at `path` (after
    /// [`tcanet_ort::init_ort`]); `config` replaces the model's embedded config.
    pub fn load(
        path: &Path,
        settings: &SessionSettings,
        config: Option<ModelConfig>,
        options: RefinerOptions,
        sessions: usize,
    ) -> Result<Self, RefineError> {
        let models = (0..sessions.max(1))
            .map(|_| TcanetModel::load(path, settings, config.clone()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|source| RefineError::Model {
                video: String::new(),
                source,
            })?;
        Ok(Self::from_models(models, options))
    }

    /// A refiner over already loaded sessions of one model (at least one).
    pub fn from_models(models: Vec<TcanetModel>, options: RefinerOptions) -> Self {
        let first = models.first().expect("at least one session");
        let (interface, path, device) = (first.interface.clone(), first.path.clone(), first.device);
        let (warnings, call_limit) = (first.warnings.clone(), first.call_limit);
        Self {
            sessions: models.len(),
            pool: SessionPool {
                free: Mutex::new(models),
                returned: Condvar::new(),
            },
            interface,
            path,
            options,
            device,
            warnings,
            call_limit,
        }
    }

    /// The network's configuration.
    pub fn config(&self) -> &ModelConfig {
        &self.interface.config
    }

    /// What the model declares (config, precision, T).
    pub fn interface(&self) -> &ModelInterface {
        &self.interface
    }

    /// The model file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The device in use (CPU after a fallback).
    pub fn device(&self) -> tcanet_ort::Device {
        self.device
    }

    /// Warnings from loading (device fallback, config override).
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// Sessions in the pool.
    pub fn sessions(&self) -> usize {
        self.sessions
    }

    /// The largest call the sessions accept (TensorRT profiles), if limited.
    pub fn call_limit(&self) -> Option<tcanet_ort::CallLimit> {
        self.call_limit
    }

    /// The options in use.
    pub fn options(&self) -> &RefinerOptions {
        &self.options
    }

    /// Refines one video: [`Self::prepare`], one model call for all its
    /// proposals (as `run`), post-processing. Same numbers as `run`.
    pub fn refine(&self, video: VideoArrays) -> Result<Refined, RefineError> {
        let prepared = self.prepare(video)?;
        let out = run_video(
            self.pool.take().model(),
            &prepared.prepared,
            self.options.max_call_proposals,
        )?;
        self.finish(prepared, out)
    }

    /// Refines several videos, `batch_videos` of the same T per model call
    /// (proposals padded per call); one result per video, in order. A call
    /// that fails is retried video by video, so each error is a video's own.
    pub fn refine_batch(&self, videos: Vec<VideoArrays>) -> Vec<Result<Refined, RefineError>> {
        let mut prepared: Vec<Option<Result<VideoInput, RefineError>>> =
            videos.into_iter().map(|v| Some(self.prepare(v))).collect();
        let mut results: Vec<Option<Result<Refined, RefineError>>> =
            (0..prepared.len()).map(|_| None).collect();
        let ready: Vec<usize> = (0..prepared.len())
            .filter(|&i| matches!(prepared[i], Some(Ok(_))))
            .collect();
        for group in self.groups(&prepared, &ready) {
            let items: Vec<&PreparedVideo> = group
                .iter()
                .map(|&i| match &prepared[i] {
                    Some(Ok(p)) => &p.prepared,
                    _ => unreachable!("groups hold prepared videos only"),
                })
                .collect();
            // Each video's outputs are moved to it, in the group's order.
            let mut outputs = self.run_prepared(&items).map(Vec::into_iter).ok();
            for &i in &group {
                let Some(Ok(p)) = prepared[i].take() else {
                    unreachable!()
                };
                results[i] = Some(match outputs.as_mut().and_then(Iterator::next) {
                    Some(out) => self.finish(p, out),
                    None => run_video(
                        self.pool.take().model(),
                        &p.prepared,
                        self.options.max_call_proposals,
                    )
                    .and_then(|out| self.finish(p, out)),
                });
            }
        }
        for (i, p) in prepared.into_iter().enumerate() {
            if let Some(Err(e)) = p {
                results[i] = Some(Err(e));
            }
        }
        results
            .into_iter()
            .map(|r| r.expect("every video has a result"))
            .collect()
    }

    /// Indices of `ready` videos grouped by T, at most `batch_videos` (and
    /// the call limit) per group, in order of first appearance.
    fn groups(
        &self,
        prepared: &[Option<Result<VideoInput, RefineError>>],
        ready: &[usize],
    ) -> Vec<Vec<usize>> {
        let cap = self
            .options
            .batch_videos
            .min(self.call_limit.map(|l| l.batch).unwrap_or(usize::MAX))
            .max(1);
        let len = |i: usize| match &prepared[i] {
            Some(Ok(p)) => p.prepared.features.len(),
            _ => 0,
        };
        let mut groups: Vec<Vec<usize>> = Vec::new();
        for &i in ready {
            match groups
                .iter_mut()
                .find(|g| g.len() < cap && len(g[0]) == len(i))
            {
                Some(g) => g.push(i),
                None => groups.push(vec![i]),
            }
        }
        groups
    }

    /// Checks a video's arrays and prepares them for the network exactly as
    /// `run` prepares a video read from files: proposals checked against the
    /// duration (small overshoots clamped), features fitted to T, the best
    /// `max_proposals` proposals in network units.
    pub fn prepare(&self, v: VideoArrays) -> Result<VideoInput, RefineError> {
        let cfg = &self.interface.config;
        let video = v.video.as_str();
        check_arrays(&v, cfg.feat_dim)?;
        let proposals: Vec<Proposal> = v
            .proposals
            .iter()
            .zip(&v.scores)
            .map(|(p, &score)| Proposal {
                start: p[0],
                end: p[1],
                score,
            })
            .collect();
        let mut one = ProposalSet::new(
            ProposalSource::Memory("proposals".into()),
            vec![(v.video.clone(), proposals)],
        );
        one.validate(|_| Some(v.duration), InvalidProposals::Error)
            .map_err(|e| RefineError::from_data(video, "proposals", e))?;
        let props = one.videos.swap_remove(0).1;
        if props.is_empty() {
            return Err(RefineError::input(video, "proposals", "no usable proposal"));
        }
        let feats = FeatureMatrix {
            steps: v.steps,
            channels: cfg.feat_dim,
            data: v.features,
        };
        let data = VideoData {
            video,
            features: &feats,
            features_path: Path::new("features"),
            proposals: &props,
            duration: v.duration,
        };
        let fit = FitOptions {
            time_steps: self.interface.time_steps,
            resample: self.options.resample,
        };
        let prepared = prepare_video(&data, cfg, fit, self.options.max_proposals)
            .map_err(|e| RefineError::from_data(video, "features", e))?;
        Ok(VideoInput {
            prepared,
            duration: v.duration,
        })
    }

    /// One padded model call for prepared videos of the same T (see
    /// [`run_padded`]); the outputs per video, padding dropped. Beyond the
    /// session's call limit (TensorRT's profile) the videos run one by one,
    /// in calls of at most the limit's proposals.
    pub fn run_prepared(&self, items: &[&PreparedVideo]) -> Result<Vec<StageOutputs>, ModelError> {
        let mut lease = self.pool.take();
        let model = lease.model();
        let over = |l: tcanet_ort::CallLimit| {
            items.len() > l.batch || items.iter().any(|p| p.proposals.len() > l.proposals)
        };
        if !self.call_limit.is_some_and(over) {
            return run_padded(model, items);
        }
        items
            .iter()
            .map(|p| {
                run_video(model, p, None).map_err(|e| match e {
                    RefineError::Model { source, .. } => source,
                    other => ModelError::Run {
                        path: self.path.clone(),
                        message: other.to_string(),
                    },
                })
            })
            .collect()
    }

    /// The raw network on `features` `[B, C, T]` and `proposals` `[B, N, 2]`
    /// (network units), as the ONNX model takes them.
    pub fn run_raw(
        &self,
        features: &[f32],
        proposals: &[[f32; 2]],
        batch: usize,
    ) -> Result<StageOutputs, ModelError> {
        self.pool.take().model().run(features, proposals, batch)
    }

    /// Post-processes a prepared video's model outputs ([`finish_video`]).
    pub fn finish(&self, input: VideoInput, out: StageOutputs) -> Result<Refined, RefineError> {
        let proposals = finish_video(&self.path, &input, &out, &self.options.post)?;
        let PreparedVideo {
            video,
            inputs,
            time,
            ..
        } = input.prepared;
        Ok(Refined {
            video,
            proposals,
            network: NetworkOutputs {
                inputs,
                stages: out,
                time,
            },
        })
    }
}

/// The checks [`Refiner::prepare`] makes before the shared preparation:
/// sizes that agree, finite features, a positive duration.
fn check_arrays(v: &VideoArrays, channels: usize) -> Result<(), RefineError> {
    let video = v.video.as_str();
    if v.steps == 0 || v.features.len() != channels * v.steps {
        return Err(RefineError::input(
            video,
            "features",
            format!(
                "{} values do not make [C={channels}, steps={}] (the model's C is {channels})",
                v.features.len(),
                v.steps
            ),
        ));
    }
    if let Some(i) = v.features.iter().position(|x| !x.is_finite()) {
        let kind = ErrorKind::NonFinite {
            step: i % v.steps,
            channel: i / v.steps,
            value: v.features[i],
        };
        return Err(RefineError::input(
            video,
            "features",
            DataError::bare(kind).to_string(),
        ));
    }
    if v.proposals.is_empty() {
        return Err(RefineError::input(video, "proposals", "no input proposal"));
    }
    if v.scores.len() != v.proposals.len() {
        return Err(RefineError::input(
            video,
            "scores",
            format!(
                "{} scores for {} proposals",
                v.scores.len(),
                v.proposals.len()
            ),
        ));
    }
    if let Some(problem) = tcanet_models::data::duration_problem(v.duration) {
        return Err(RefineError::input(video, "duration", problem));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refiner_is_send_and_sync() {
        fn shareable<T: Send + Sync>() {}
        shareable::<Refiner>();
        shareable::<RefineError>();
    }

    fn arrays() -> VideoArrays {
        VideoArrays {
            video: "v".into(),
            features: vec![0.5; 32 * 10],
            steps: 10,
            proposals: vec![[1.0, 5.0], [2.0, 8.0]],
            scores: vec![0.9, 0.1],
            duration: 10.0,
        }
    }

    #[test]
    fn malformed_arrays_name_the_field() {
        let check = |v: VideoArrays| check_arrays(&v, 32).unwrap_err().to_string();
        let e = check(VideoArrays {
            steps: 9,
            ..arrays()
        });
        assert!(e.contains("features") && e.contains("320 values"), "{e}");
        let mut nan = arrays();
        nan.features[3 * 10 + 7] = f32::NAN;
        let e = check(nan);
        assert!(
            e.contains("features") && e.contains("step 7, channel 3"),
            "{e}"
        );
        let e = check(VideoArrays {
            scores: vec![0.5],
            ..arrays()
        });
        assert!(e.contains("scores") && e.contains("1 scores for 2"), "{e}");
        let e = check(VideoArrays {
            duration: f64::NAN,
            ..arrays()
        });
        assert!(e.contains("duration"), "{e}");
        assert!(check_arrays(&arrays(), 32).is_ok());
    }
}
