//! One video's features and proposals → the network's inputs, and the
//! network's segments → seconds. The trainer and the runtime both call
//! [`prepare_video`], so training and inference see identical inputs.
use super::features::FeatureMatrix;
use super::matching::matched_ground_truth;
use super::proposals::{top_by_score, Proposal};
use super::{DataError, ErrorKind};
use crate::onnx::TimeSteps;
use crate::ModelConfig;
use std::path::Path;

/// The linear map between seconds and the network's time units:
/// `network = seconds * scale`.
///
/// * `normalize_by_duration` (ActivityNet style): `scale = 1 / duration`.
/// * HACS style: `scale = 1` (seconds), or `T / steps` when a longer feature
///   sequence was resampled to T steps (the timeline was compressed).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TimeMap {
    /// Network units per second.
    pub scale: f64,
}

impl TimeMap {
    /// Seconds → network units.
    pub fn to_network(&self, seconds: f64) -> f64 {
        seconds * self.scale
    }

    /// Network units → seconds.
    pub fn to_seconds(&self, network: f64) -> f64 {
        network / self.scale
    }

    /// Maps `[start, end]` segments from network units back to seconds.
    pub fn segments_to_seconds(&self, segments: &[[f32; 2]]) -> Vec<[f64; 2]> {
        segments
            .iter()
            .map(|s| [self.to_seconds(s[0] as f64), self.to_seconds(s[1] as f64)])
            .collect()
    }
}

/// A video ready for the network.
#[derive(Debug, Clone, PartialEq)]
pub struct PreparedVideo {
    /// Video id.
    pub video: String,
    /// Features `[C, T]`, channel-major, exactly the model's C and T.
    pub features: Vec<f32>,
    /// Proposals `[N, 2]` in network units, in the order of `inputs`.
    pub proposals: Vec<[f32; 2]>,
    /// The input proposals the network is given (see [`choose_proposals`]),
    /// in seconds with their scores at full precision: row `i` of
    /// `proposals` is `inputs[i]` in network units.
    pub inputs: Vec<Proposal>,
    /// Seconds ↔ network units for this video.
    pub time: TimeMap,
}

impl PreparedVideo {
    /// The scores of `inputs`, in order, in f64 (score fusion is computed
    /// in f64, as the release computes it).
    pub fn input_scores(&self) -> Vec<f64> {
        self.inputs.iter().map(|p| p.score).collect()
    }
}

/// How a video's features are fitted to the network's time axis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FitOptions {
    /// The T the model takes: fixed (the config's `temporal_scale`, the
    /// release's behaviour) or the video's own length.
    pub time_steps: TimeSteps,
    /// Interpolate features longer than a fixed T to T (seconds configs).
    pub resample: bool,
}

impl FitOptions {
    /// Features fitted to `cfg`'s fixed T.
    pub fn fixed(cfg: &ModelConfig, resample: bool) -> Self {
        Self {
            time_steps: TimeSteps::Fixed(cfg.temporal_scale),
            resample,
        }
    }
}

/// One video's data as read from a dataset.
#[derive(Debug, Clone, Copy)]
pub struct VideoData<'a> {
    /// Video id.
    pub video: &'a str,
    /// Its features.
    pub features: &'a FeatureMatrix,
    /// The file the features were read from (for messages).
    pub features_path: &'a Path,
    /// Its input proposals, in seconds.
    pub proposals: &'a [Proposal],
    /// Its duration in seconds.
    pub duration: f64,
}

/// Fits a video's features to the model's T and returns them `[C, T]` with
/// the video's [`TimeMap`].
///
/// With a fixed T: resampled to exactly T with `normalize_by_duration`;
/// otherwise zero-padded, and a longer sequence is an error unless
/// `resample` (then interpolated to T). With a symbolic T the features are
/// used as they are (times still divided by the duration with
/// `normalize_by_duration`).
pub fn fit_features(
    v: &VideoData<'_>,
    cfg: &ModelConfig,
    fit: FitOptions,
) -> Result<(Vec<f32>, TimeMap), DataError> {
    let (features, path, video) = (v.features, v.features_path, v.video);
    if features.channels != cfg.feat_dim {
        return Err(DataError::new(
            path,
            ErrorKind::WrongChannels {
                shape: [features.steps, features.channels],
                expected: cfg.feat_dim,
            },
        )
        .video(video));
    }
    if cfg.normalize_by_duration {
        if let Some(problem) = super::duration_problem(v.duration) {
            return Err(DataError::invalid(path, format!("duration {problem}"))
                .video(video)
                .field("duration"));
        }
        let scale = 1.0 / v.duration;
        return Ok(match fit.time_steps {
            TimeSteps::Fixed(t) => (features.resampled(t), TimeMap { scale }),
            TimeSteps::Dynamic => (features.padded(features.steps), TimeMap { scale }),
        });
    }
    let t = fit.time_steps.steps_for(features.steps);
    if features.steps <= t {
        Ok((features.padded(t), TimeMap { scale: 1.0 }))
    } else if fit.resample {
        Ok((
            features.resampled(t),
            TimeMap {
                scale: t as f64 / features.steps as f64,
            },
        ))
    } else {
        Err(DataError::new(
            path,
            ErrorKind::TooLong {
                steps: features.steps,
                max: t,
            },
        )
        .video(video))
    }
}

/// The input proposals the network is given for a video, in the network's
/// order: the `max_proposals` best by score (all if `None`; the
/// `--max-proposals` flag), best first, ties in their given order.
/// [`prepare_video`] chooses through here, and so does a caller that reads
/// no features (the post-processing baseline), so both keep the same ones.
pub fn choose_proposals(proposals: &[Proposal], max_proposals: Option<usize>) -> Vec<Proposal> {
    top_by_score(proposals, max_proposals.unwrap_or(proposals.len()))
}

/// Turns one video's features and proposals into the network's inputs:
/// features fitted to T (see [`fit_features`]), the proposals of
/// [`choose_proposals`] in network units (and in seconds, as `inputs`).
pub fn prepare_video(
    v: &VideoData<'_>,
    cfg: &ModelConfig,
    fit: FitOptions,
    max_proposals: Option<usize>,
) -> Result<PreparedVideo, DataError> {
    let (feats, time) = fit_features(v, cfg, fit)?;
    let inputs = choose_proposals(v.proposals, max_proposals);
    Ok(PreparedVideo {
        video: v.video.to_string(),
        features: feats,
        proposals: inputs
            .iter()
            .map(|p| {
                [
                    time.to_network(p.start) as f32,
                    time.to_network(p.end) as f32,
                ]
            })
            .collect(),
        inputs,
        time,
    })
}

/// A prepared video with the matched ground truth of each proposal.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainingSample {
    /// The network's inputs.
    pub input: PreparedVideo,
    /// Per proposal, its matched instance `[start, end]` in network units.
    pub gt: Vec<[f32; 2]>,
}

impl TrainingSample {
    /// Builds the sample from a prepared video and the video's instances in
    /// seconds (each proposal gets the instance of highest IoU with it).
    /// `None` when there is no instance or no proposal.
    pub fn new(input: PreparedVideo, instances_s: &[[f64; 2]]) -> Option<Self> {
        if instances_s.is_empty() || input.proposals.is_empty() {
            return None;
        }
        let net: Vec<[f64; 2]> = instances_s
            .iter()
            .map(|g| [input.time.to_network(g[0]), input.time.to_network(g[1])])
            .collect();
        let props: Vec<[f64; 2]> = input
            .proposals
            .iter()
            .map(|p| [p[0] as f64, p[1] as f64])
            .collect();
        let gt = matched_ground_truth(&props, &net)
            .into_iter()
            .map(|m| {
                let g = net[m.expect("instances are not empty")];
                [g[0] as f32, g[1] as f32]
            })
            .collect();
        Some(Self { input, gt })
    }
}

/// Training samples stacked into flat row-major tensors, proposals padded to
/// `slots` per video (padding repeats `[0, timeline]` and is masked out).
#[derive(Debug, Clone, PartialEq)]
pub struct TrainingBatch {
    /// Video ids, one per row.
    pub videos: Vec<String>,
    /// Features `[B, C, T]`.
    pub features: Vec<f32>,
    /// Input proposals `[B, slots, 2]`.
    pub proposals: Vec<f32>,
    /// Matched ground truth `[B, slots, 2]`.
    pub gt: Vec<f32>,
    /// 1 for a real proposal, 0 for padding, `[B, slots]`.
    pub valid: Vec<f32>,
    /// C.
    pub channels: usize,
    /// T.
    pub steps: usize,
    /// Proposal slots per video N.
    pub slots: usize,
}

impl TrainingBatch {
    /// Stacks samples (each with at most `slots` proposals) for `cfg`.
    pub fn collate(samples: &[TrainingSample], slots: usize, cfg: &ModelConfig) -> Self {
        let (c, t) = (cfg.feat_dim, cfg.temporal_scale);
        let b = samples.len();
        let pad = [0.0f32, cfg.timeline_seconds() as f32];
        let mut out = Self {
            videos: Vec::with_capacity(b),
            features: Vec::with_capacity(b * c * t),
            proposals: Vec::with_capacity(b * slots * 2),
            gt: Vec::with_capacity(b * slots * 2),
            valid: Vec::with_capacity(b * slots),
            channels: c,
            steps: t,
            slots,
        };
        for s in samples {
            assert_eq!(s.input.features.len(), c * t, "features fitted to [C, T]");
            out.videos.push(s.input.video.clone());
            out.features.extend_from_slice(&s.input.features);
            for i in 0..slots {
                match (s.input.proposals.get(i), s.gt.get(i)) {
                    (Some(p), Some(g)) => {
                        out.proposals.extend_from_slice(p);
                        out.gt.extend_from_slice(g);
                        out.valid.push(1.0);
                    }
                    _ => {
                        out.proposals.extend_from_slice(&pad);
                        out.gt.extend_from_slice(&pad);
                        out.valid.push(0.0);
                    }
                }
            }
        }
        out
    }

    /// Videos in the batch, B.
    pub fn len(&self) -> usize {
        self.videos.len()
    }

    /// Whether the batch is empty.
    pub fn is_empty(&self) -> bool {
        self.videos.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matrix(steps: usize, channels: usize) -> FeatureMatrix {
        FeatureMatrix {
            steps,
            channels,
            data: (0..steps * channels).map(|i| i as f32).collect(),
        }
    }

    fn hacs_small() -> ModelConfig {
        ModelConfig {
            feat_dim: 4,
            temporal_scale: 8,
            temporal_interval: 0.5,
            ..ModelConfig::hacs()
        }
    }

    #[test]
    fn hacs_pads_errors_or_resamples() {
        let cfg = hacs_small();
        let p = Path::new("f/v.npy");
        let fit = |m: &FeatureMatrix, duration: f64, resample: bool| {
            let v = VideoData {
                video: "v",
                features: m,
                features_path: p,
                proposals: &[],
                duration,
            };
            fit_features(&v, &cfg, FitOptions::fixed(&cfg, resample))
        };
        let (f, tm) = fit(&matrix(5, 4), 2.5, false).unwrap();
        assert_eq!(f.len(), 32);
        assert_eq!(&f[..8], &[0., 1., 2., 3., 4., 0., 0., 0.]);
        assert_eq!(tm.scale, 1.0);
        let e = fit(&matrix(16, 4), 8.0, false).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("v.npy") && msg.contains("'v'") && msg.contains("--resample"),
            "{msg}"
        );
        let (f, tm) = fit(&matrix(16, 4), 8.0, true).unwrap();
        assert_eq!(tm.scale, 0.5);
        // Halving: step j reads u = 2j + 0.5.
        assert_eq!(f[0], 0.5);
        assert_eq!(f[7], 14.5);
        let e = fit(&matrix(5, 3), 2.5, false).unwrap_err();
        assert!(e.to_string().contains("4 channels"), "{e}");
        // A symbolic T takes the video as it is, even longer than temporal_scale.
        let long = matrix(16, 4);
        let v = VideoData {
            video: "v",
            features: &long,
            features_path: p,
            proposals: &[],
            duration: 8.0,
        };
        let dynamic = FitOptions {
            time_steps: TimeSteps::Dynamic,
            resample: false,
        };
        let (f, tm) = fit_features(&v, &cfg, dynamic).unwrap();
        assert_eq!((f.len(), tm.scale), (64, 1.0));
        assert_eq!(f[..16], long.padded(16)[..16]);
    }

    #[test]
    fn the_choice_of_proposals_is_capped_and_stable() {
        let p = |start: f64, score: f64| Proposal {
            start,
            end: start + 1.0,
            score,
        };
        let props = [
            p(0.0, 0.5),
            p(1.0, 0.9),
            p(2.0, 0.5),
            p(3.0, 0.7),
            p(4.0, 0.5),
        ];
        // Best first; the three 0.5s keep their file order.
        let all = [props[1], props[3], props[0], props[2], props[4]];
        assert_eq!(choose_proposals(&props, None), all);
        assert_eq!(choose_proposals(&props, Some(3)), all[..3]);
        assert_eq!(choose_proposals(&props, Some(4)), all[..4]);
        assert_eq!(choose_proposals(&props, Some(99)), all);
    }

    #[test]
    fn anet_style_normalises_by_duration_and_maps_back() {
        let cfg = ModelConfig::tiny();
        let m = matrix(100, 32);
        let props = [
            Proposal {
                start: 10.0,
                end: 30.0,
                score: 0.2,
            },
            Proposal {
                start: 0.0,
                end: 50.0,
                score: 0.9,
            },
            Proposal {
                start: 40.0,
                end: 45.0,
                score: 0.5,
            },
        ];
        let data = VideoData {
            video: "v",
            features: &m,
            features_path: Path::new("v.npy"),
            proposals: &props,
            duration: 50.0,
        };
        let v = prepare_video(&data, &cfg, FitOptions::fixed(&cfg, false), Some(2)).unwrap();
        assert_eq!(v.features.len(), 32 * 64);
        assert_eq!(v.proposals, vec![[0.0, 1.0], [0.8, 0.9]]);
        assert_eq!(v.inputs, vec![props[1], props[2]]);
        assert_eq!(v.input_scores(), vec![0.9, 0.5]);
        let back = v.time.segments_to_seconds(&v.proposals);
        assert!((back[1][0] - 40.0).abs() < 1e-5 && (back[1][1] - 45.0).abs() < 1e-5);
        let s = TrainingSample::new(v, &[[38.0, 46.0], [0.0, 45.0]]).unwrap();
        assert_eq!(s.gt, vec![[0.0, 0.9], [0.76, 0.92]]);
        let b = TrainingBatch::collate(&[s.clone(), s], 3, &cfg);
        assert_eq!(b.len(), 2);
        assert_eq!(b.valid, vec![1., 1., 0., 1., 1., 0.]);
        assert_eq!(&b.proposals[4..6], &[0.0, 1.0]);
        assert_eq!(b.features.len(), 2 * 32 * 64);
    }
}
