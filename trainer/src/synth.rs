//! A synthetic dataset in the real formats: ActivityNet-style annotations,
//! per-video `.npy` features in which actions are visible through noise,
//! leaderboard-format input proposals with realistic errors, and video-level
//! class scores. Deterministic from the seed.
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::io::Write;
use std::path::{Path, PathBuf};
use tcanet_cli::write_atomic_bytes;
use tcanet_models::data::dataset::{
    ANNOTATIONS_FILE, CLASSIFIER_FILE, FEATURES_DIR, PROPOSALS_FILE,
};
use tcanet_models::data::matching::segment_iou;
use tcanet_models::data::npy::write_npy_f32;
use tcanet_models::data::proposals::{ProposalSet, ProposalSource};
use tcanet_models::data::{Annotations, DataError, Instance, Proposal, VideoInfo};

/// Why a synthetic dataset could not be written.
#[derive(Debug, thiserror::Error)]
pub enum SynthError {
    /// The output directory holds something else.
    #[error(
        "--out {}: not empty and not a dataset written by synth (no README.txt of ours); \
         choose a new or empty directory", path.display()
    )]
    NotOurs {
        /// The directory.
        path: PathBuf,
    },
    /// A file or directory could not be created or written.
    #[error("cannot write {}: {cause}", path.display())]
    Write {
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        cause: std::io::Error,
    },
    /// A feature file could not be written.
    #[error(transparent)]
    Features(#[from] DataError),
    /// The flags ask for videos larger than a feature file may be.
    #[error(
        "the longest video would have {steps} steps × {channels} channels = {} feature \
         values, more than {MAX_VIDEO_VALUES} (1 GiB of float32): lower --channels, --steps or \
         --max-duration, or raise --interval",
        *steps as f64 * *channels as f64
    )]
    TooLarge {
        /// Steps of the longest video.
        steps: usize,
        /// Channels.
        channels: usize,
    },
}

/// The most feature values one synthetic video may have (1 GiB of float32).
pub const MAX_VIDEO_VALUES: f64 = (1u64 << 28) as f64;

impl SynthOptions {
    /// Refuses options whose longest video would not fit in memory
    /// ([`MAX_VIDEO_VALUES`]), before anything is written.
    pub fn check_size(&self) -> Result<(), SynthError> {
        let steps = self.video_steps(self.duration_range.1);
        if steps as f64 * self.channels as f64 > MAX_VIDEO_VALUES {
            return Err(SynthError::TooLarge {
                steps,
                channels: self.channels,
            });
        }
        Ok(())
    }

    /// Feature steps of a video of `duration` seconds: `--steps`, or one
    /// every `--interval` seconds (at least one; saturating).
    fn video_steps(&self, duration: f64) -> usize {
        match self.interval {
            Some(iv) => (duration / iv).ceil().max(1.0) as usize,
            None => self.steps,
        }
    }
}

impl SynthError {
    /// The exit status: 2 for an unusable `--out`, 1 when writing failed.
    pub fn exit_status(&self) -> tcanet_cli::ExitStatus {
        match self {
            Self::NotOurs { .. } | Self::TooLarge { .. } => tcanet_cli::ExitStatus::Usage,
            Self::Write { cause, .. }
                if matches!(
                    cause.kind(),
                    std::io::ErrorKind::PermissionDenied
                        | std::io::ErrorKind::NotADirectory
                        | std::io::ErrorKind::ReadOnlyFilesystem
                ) =>
            {
                tcanet_cli::ExitStatus::Usage
            }
            _ => tcanet_cli::ExitStatus::Failure,
        }
    }
}

/// The first line of the README synth writes: how a previous synth output is recognised.
const README_FIRST_LINE: &str = "Synthetic TCANet dataset written by `tcanet-train synth`";

/// What to generate.
#[derive(Debug, Clone, PartialEq)]
pub struct SynthOptions {
    /// Training videos.
    pub train_videos: usize,
    /// Validation videos.
    pub val_videos: usize,
    /// Action classes.
    pub classes: usize,
    /// Feature channels C.
    pub channels: usize,
    /// ActivityNet style: this many feature steps per video, spread over its duration.
    pub steps: usize,
    /// HACS style instead: one feature step every this many seconds.
    pub interval: Option<f64>,
    /// Standard deviation of the per-step feature noise (difficulty).
    pub noise: f64,
    /// Typical boundary error of the input proposals, as a fraction of the action's length.
    pub boundary_error: f64,
    /// Input proposals per video.
    pub proposals_per_video: usize,
    /// Shortest and longest video (s).
    pub duration_range: (f64, f64),
    /// Seed of everything.
    pub seed: u64,
}

impl Default for SynthOptions {
    fn default() -> Self {
        use tcanet_train_args::synth_defaults as d;
        Self {
            train_videos: d::TRAIN_VIDEOS,
            val_videos: d::VAL_VIDEOS,
            classes: d::CLASSES,
            channels: d::CHANNELS,
            steps: d::STEPS,
            interval: None,
            noise: d::NOISE,
            boundary_error: d::BOUNDARY_ERROR,
            proposals_per_video: d::PROPOSALS_PER_VIDEO,
            duration_range: (d::MIN_DURATION, d::MAX_DURATION),
            seed: 0,
        }
    }
}

/// Counts of what was written.
#[derive(Debug, Clone, Default)]
pub struct SynthSummary {
    /// Videos written.
    pub videos: usize,
    /// Ground-truth instances.
    pub instances: usize,
    /// Input proposals.
    pub proposals: usize,
    /// Mean IoU of each input proposal with its best instance.
    pub mean_best_iou: f64,
}

fn normal(rng: &mut ChaCha8Rng) -> f64 {
    // Box–Muller.
    let u1: f64 = rng.gen_range(f64::EPSILON..1.0);
    let u2: f64 = rng.gen();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// Per-class and background feature patterns shared by all videos.
struct Patterns {
    classes: Vec<Vec<f64>>,
    backgrounds: Vec<Vec<f64>>,
    /// Per class, a second pattern whose weight drifts through the action.
    drift: Vec<Vec<f64>>,
}

impl Patterns {
    fn new(o: &SynthOptions) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(o.seed ^ 0x7061_7474);
        let mut vecs = |n: usize| -> Vec<Vec<f64>> {
            (0..n)
                .map(|_| (0..o.channels).map(|_| normal(&mut rng)).collect())
                .collect()
        };
        Self {
            classes: vecs(o.classes),
            backgrounds: vecs(4),
            drift: vecs(o.classes),
        }
    }
}

fn class_name(k: usize) -> String {
    format!("class_{k:03}")
}

/// One generated video.
struct Video {
    info: VideoInfo,
    features: Vec<f32>,
    steps: usize,
    proposals: Vec<Proposal>,
    class_scores: Vec<f64>,
}

/// The ground truth of one video: duration, 1 (most videos) to 5 instances
/// covering 15-85% of it, and its class.
fn video_truth(o: &SynthOptions, rng: &mut ChaCha8Rng) -> (f64, Vec<Instance>, usize) {
    let (lo, hi) = o.duration_range;
    let duration = ((lo + (hi - lo) * rng.gen::<f64>()) * 100.0).round() / 100.0;
    let k = match rng.gen::<f64>() {
        x if x < 0.55 => 1,
        x if x < 0.80 => 2,
        x if x < 0.92 => 3,
        x if x < 0.97 => 4,
        _ => 5,
    };
    let coverage = rng.gen_range(0.15..0.85);
    let mut parts: Vec<f64> = (0..k).map(|_| rng.gen_range(0.3..1.0)).collect();
    let ps: f64 = parts.iter().sum();
    parts.iter_mut().for_each(|p| *p *= coverage / ps);
    let mut gaps: Vec<f64> = (0..=k)
        .map(|_| -rng.gen_range(f64::EPSILON..1.0f64).ln())
        .collect();
    let gs: f64 = gaps.iter().sum();
    gaps.iter_mut().for_each(|g| *g *= (1.0 - coverage) / gs);
    let class = rng.gen_range(0..o.classes);
    let mut instances = Vec::with_capacity(k);
    let mut t = 0.0;
    for i in 0..k {
        t += gaps[i];
        let (s, e) = (t * duration, (t + parts[i]) * duration);
        t += parts[i];
        instances.push(Instance {
            start: (s * 100.0).round() / 100.0,
            end: (e * 100.0).round() / 100.0,
            label: class_name(class),
        });
    }
    (duration, instances, class)
}

/// Features `[T, C]`: background ↔ class pattern through soft transitions,
/// noise on top. Returns them and T.
fn video_features(
    o: &SynthOptions,
    pat: &Patterns,
    truth: (f64, &[Instance], usize),
    rng: &mut ChaCha8Rng,
) -> (Vec<f32>, usize) {
    let (duration, instances, class) = truth;
    let steps = o.video_steps(duration);
    let step_time = |j: usize| match o.interval {
        Some(iv) => (j as f64 + 0.5) * iv,
        None => (j as f64 + 0.5) / steps as f64 * duration,
    };
    let bg_kind = rng.gen_range(0..pat.backgrounds.len());
    let bg: Vec<f64> = pat.backgrounds[bg_kind]
        .iter()
        .map(|v| 0.8 * v + 0.4 * normal(rng))
        .collect();
    let width = 0.01 * duration + 0.5; // transition width (s)
    let mut features = vec![0f32; steps * o.channels];
    for j in 0..steps {
        let tau = step_time(j);
        let (mut a, mut phase) = (0.0f64, 0.0);
        for inst in instances {
            let w = sigmoid((tau - inst.start) / width) * sigmoid((inst.end - tau) / width);
            if w > a {
                a = w;
                phase = ((tau - inst.start) / inst.length()).clamp(0.0, 1.0);
            }
        }
        for c in 0..o.channels {
            let action = pat.classes[class][c] + 0.5 * (phase - 0.5) * pat.drift[class][c];
            let v = (1.0 - a) * bg[c] + a * action + o.noise * normal(rng);
            features[j * o.channels + c] = v as f32;
        }
    }
    (features, steps)
}

/// Video-level class probabilities: informative but noisy.
fn class_scores(o: &SynthOptions, class: usize, rng: &mut ChaCha8Rng) -> Vec<f64> {
    let logits: Vec<f64> = (0..o.classes)
        .map(|c| if c == class { 2.0 } else { 0.0 } + normal(rng))
        .collect();
    let m = logits.iter().cloned().fold(f64::MIN, f64::max);
    let exps: Vec<f64> = logits.iter().map(|l| (l - m).exp()).collect();
    let z: f64 = exps.iter().sum();
    exps.iter().map(|e| e / z).collect()
}

fn make_video(o: &SynthOptions, pat: &Patterns, index: usize, subset: &str) -> Video {
    let mut rng =
        ChaCha8Rng::seed_from_u64(o.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (index as u64 + 1));
    let (duration, instances, class) = video_truth(o, &mut rng);
    let (features, steps) = video_features(o, pat, (duration, &instances, class), &mut rng);
    let proposals = make_proposals(o, &instances, duration, &mut rng);
    let class_scores = class_scores(o, class, &mut rng);
    Video {
        info: VideoInfo {
            id: format!("synth_{index:05}"),
            subset: subset.to_string(),
            duration,
            instances,
        },
        features,
        steps,
        proposals,
        class_scores,
    }
}

/// Input proposals: boundary-perturbed copies of the instances, near
/// duplicates, and false positives, each scored noisily by its true IoU.
fn make_proposals(
    o: &SynthOptions,
    gts: &[Instance],
    duration: f64,
    rng: &mut ChaCha8Rng,
) -> Vec<Proposal> {
    let n = o.proposals_per_video;
    let n_fp = n / 4;
    let n_dup = n * 3 / 20;
    let n_tp = n - n_fp - n_dup;
    let min_len = 0.5f64.min(duration / 4.0);
    let clip = |s: f64, e: f64| -> Option<(f64, f64)> {
        let (s, e) = (s.max(0.0), e.min(duration));
        (e - s >= min_len).then_some((s, e))
    };
    // A generator locks onto wrong feature edges: each instance's proposals
    // share a boundary bias (~boundary_error of the length), plus their own
    // smaller jitter; one in ten errs independently and by much more.
    let bias: Vec<(f64, f64)> = gts
        .iter()
        .map(|g| {
            let l = g.length() * o.boundary_error;
            (l * normal(rng), l * normal(rng))
        })
        .collect();
    let mut segs: Vec<(f64, f64)> = Vec::with_capacity(n);
    let mut guard = 0;
    while segs.len() < n_tp && guard < 100 * n {
        guard += 1;
        let i = segs.len() % gts.len();
        let (g, b) = (&gts[i], bias[i]);
        let len = g.length();
        let (s, e) = if rng.gen::<f64>() < 0.1 {
            let sigma = 2.5 * o.boundary_error * len;
            (g.start + sigma * normal(rng), g.end + sigma * normal(rng))
        } else {
            let sigma = 0.25 * o.boundary_error * len;
            (
                g.start + b.0 + sigma * normal(rng),
                g.end + b.1 + sigma * normal(rng),
            )
        };
        if let Some(seg) = clip(s.min(e), s.max(e)) {
            segs.push(seg);
        }
    }
    while segs.len() < n_tp + n_dup && !segs.is_empty() {
        let (s, e) = segs[rng.gen_range(0..segs.len())];
        let j = 0.01 * (e - s);
        if let Some(seg) = clip(s + j * normal(rng), e + j * normal(rng)) {
            segs.push(seg);
        }
    }
    while segs.len() < n {
        let len = duration * rng.gen_range(0.05..0.9);
        let s = rng.gen_range(0.0..(duration - len).max(1e-9));
        if let Some(seg) = clip(s, s + len) {
            segs.push(seg);
        }
    }
    segs.into_iter()
        .map(|(s, e)| {
            let best = gts
                .iter()
                .map(|g| segment_iou([s, e], [g.start, g.end]))
                .fold(0.0, f64::max);
            Proposal {
                start: (s * 1000.0).round() / 1000.0,
                end: (e * 1000.0).round() / 1000.0,
                score: sigmoid(4.0 * (best - 0.5) + 0.8 * normal(rng)),
            }
        })
        .collect()
}

/// What the loop over videos collected for the index files.
#[derive(Default)]
struct Written {
    infos: Vec<VideoInfo>,
    props: Vec<(String, Vec<Proposal>)>,
    classifier: serde_json::Map<String, serde_json::Value>,
    summary: SynthSummary,
}

fn write_err(path: &Path) -> impl FnOnce(std::io::Error) -> SynthError + '_ {
    move |cause| SynthError::Write {
        path: path.to_path_buf(),
        cause,
    }
}

/// Refuses an `--out` that holds anything but a previous synth dataset.
fn check_out(out: &Path) -> Result<(), SynthError> {
    let Ok(mut entries) = std::fs::read_dir(out) else {
        return Ok(());
    };
    if entries.next().is_none() {
        return Ok(());
    }
    let readme = std::fs::read_to_string(out.join("README.txt")).unwrap_or_default();
    if readme.starts_with(README_FIRST_LINE) {
        return Ok(());
    }
    Err(SynthError::NotOurs {
        path: out.to_path_buf(),
    })
}

/// Writes the dataset under `out`: `annotations.json`, `features/<video>.npy`
/// (f32 `[T, C]`), `proposals.json`, `classifier.json` and `README.txt`. An
/// `out` holding anything but a previous synth dataset is refused.
pub fn write_dataset(
    out: &Path,
    o: &SynthOptions,
    progress: impl FnMut(usize, usize),
) -> Result<SynthSummary, SynthError> {
    o.check_size()?;
    check_out(out)?;
    let feat_dir = out.join(FEATURES_DIR);
    std::fs::create_dir_all(&feat_dir).map_err(write_err(&feat_dir))?;
    let w = write_videos(&feat_dir, o, progress)?;
    write_index_files(out, o, &w)?;
    Ok(w.summary)
}

/// Generates every video, writes its features and collects the rest.
fn write_videos(
    feat_dir: &Path,
    o: &SynthOptions,
    mut progress: impl FnMut(usize, usize),
) -> Result<Written, SynthError> {
    let pat = Patterns::new(o);
    let total = o.train_videos + o.val_videos;
    let mut w = Written::default();
    let mut iou_sum = 0.0;
    for i in 0..total {
        let subset = if i < o.train_videos {
            "training"
        } else {
            "validation"
        };
        let v = make_video(o, &pat, i, subset);
        let path = feat_dir.join(format!("{}.npy", v.info.id));
        write_npy_f32(&path, [v.steps, o.channels], &v.features)?;
        for p in &v.proposals {
            iou_sum += v
                .info
                .instances
                .iter()
                .map(|g| segment_iou([p.start, p.end], [g.start, g.end]))
                .fold(0.0, f64::max);
        }
        w.summary.videos += 1;
        w.summary.instances += v.info.instances.len();
        w.summary.proposals += v.proposals.len();
        w.classifier
            .insert(v.info.id.clone(), ranked_classes(&v.class_scores));
        w.props.push((v.info.id.clone(), v.proposals));
        w.infos.push(v.info);
        progress(i + 1, total);
    }
    w.summary.mean_best_iou = iou_sum / w.summary.proposals.max(1) as f64;
    Ok(w)
}

/// `[{label, score}, ...]`, best first (ActivityNet classification format).
fn ranked_classes(scores: &[f64]) -> serde_json::Value {
    let mut ranked: Vec<(usize, f64)> = scores.iter().cloned().enumerate().collect();
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
    serde_json::Value::Array(
        ranked
            .iter()
            .map(|(c, s)| serde_json::json!({"label": class_name(*c), "score": s}))
            .collect(),
    )
}

/// `annotations.json`, `proposals.json`, `classifier.json`, `README.txt`.
fn write_index_files(out: &Path, o: &SynthOptions, w: &Written) -> Result<(), SynthError> {
    let ann = Annotations {
        path: out.join(ANNOTATIONS_FILE),
        videos: w.infos.clone(),
    };
    write_atomic_bytes(&ann.path, ann.to_json().as_bytes()).map_err(write_err(&ann.path))?;
    let path = out.join(PROPOSALS_FILE);
    let set = ProposalSet::new(ProposalSource::Json(path.clone()), w.props.clone());
    write_atomic_bytes(&path, set.to_json().as_bytes()).map_err(write_err(&path))?;
    let cls = serde_json::json!({"version": "VERSION 1.3", "results": w.classifier, "external_data": {"used": false, "details": "synthetic"}});
    let path = out.join(CLASSIFIER_FILE);
    write_atomic_bytes(&path, cls.to_string().as_bytes()).map_err(write_err(&path))?;
    let path: PathBuf = out.join("README.txt");
    let readme = readme_text(o, &w.summary);
    tcanet_cli::write_atomic(&path, |f| f.write_all(readme.as_bytes())).map_err(write_err(&path))
}

fn readme_text(o: &SynthOptions, summary: &SynthSummary) -> String {
    let layout = match o.interval {
        Some(iv) => format!("HACS style: one step every {iv} s (T varies with the duration)"),
        None => format!(
            "ActivityNet style: {} steps per video spread over its duration",
            o.steps
        ),
    };
    format!(
        "{README_FIRST_LINE} (seed {seed}).\n\n\
         annotations.json  ActivityNet `database` JSON: {tr} training + {va} validation videos,\n                  \
         {inst} instances of {k} classes (class_000..), durations {d0}-{d1} s\n\
         features/         one <video>.npy per video, float32 [T, C] with C = {c}; {layout}\n                  \
         actions: class patterns over per-video backgrounds, soft transitions, noise sd {noise}\n\
         proposals.json    leaderboard format, {ppv} input proposals per video: boundary errors of\n                  \
         ~{be}% of the action length shared by an instance's proposals (plus jitter; one in\n                  \
         ten errs 2.5x more on its own), ~15% near duplicates, ~25% false\n                  \
         positives, scores noisy in their IoU; mean best IoU {miou:.3}\n\
         classifier.json   video-level class scores ({{\"results\": {{video: [{{label, score}}]}}}})\n\n\
         Train: tcanet-train train --data DIR --preset tiny --out RUNDIR\n",
        seed = o.seed,
        tr = o.train_videos,
        va = o.val_videos,
        inst = summary.instances,
        k = o.classes,
        d0 = o.duration_range.0,
        d1 = o.duration_range.1,
        c = o.channels,
        noise = o.noise,
        ppv = o.proposals_per_video,
        be = (o.boundary_error * 100.0).round(),
        miou = summary.mean_best_iou,
    )
}
