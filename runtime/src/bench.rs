//! Benchmarks behind `tcanet-infer bench` and `tcanet-infer bench-post`:
//! per-video latency percentiles, throughput and peak memory of a model on a
//! device, and the speed of fusion + Soft-NMS alone.
use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;
use tcanet_models::data::{FeatureLayout, PreparedVideo, TimeMap};

use crate::infer::{prepare_video_input, InferSettings, VideoInput};
use crate::postprocess::{fuse_scores, postprocess_video, PostProcessOptions};
use tcanet_models::data::Dataset;
use tcanet_ort::{ModelError, TcanetModel};

/// What to feed the model.
#[derive(Debug, Clone)]
pub enum BenchInputs {
    /// Random features and proposals shaped from the model's config.
    Random {
        /// Distinct videos.
        videos: usize,
        /// Proposals per video.
        proposals: usize,
        /// Seed.
        seed: u64,
    },
    /// Real videos of a dataset (prepared before timing).
    Dataset {
        /// The dataset.
        dataset: Arc<Dataset>,
        /// The videos to time.
        videos: Vec<String>,
        /// Feature layout.
        layout: FeatureLayout,
        /// Resample long features.
        resample: bool,
    },
}

/// Timing settings.
#[derive(Debug, Clone)]
pub struct BenchSettings {
    /// Untimed calls first.
    pub warmup: usize,
    /// Timed passes over the videos.
    pub repeat: usize,
    /// The CPU thread count the session was built with (for the record).
    pub threads: Option<usize>,
}

/// The result of [`bench_model`] (the `--json` object).
#[derive(Debug, Clone, Serialize)]
pub struct BenchResult {
    /// The model file.
    pub model: String,
    /// The device asked for.
    pub requested_device: String,
    /// The device used.
    pub device: String,
    /// Intra-op threads (`null`: ONNX Runtime's default).
    pub threads: Option<usize>,
    /// Feature channels C.
    pub feat_dim: usize,
    /// Feature steps T.
    pub temporal_scale: usize,
    /// `tcanet.precision` of the model.
    pub precision: Option<String>,
    /// Distinct videos.
    pub videos: usize,
    /// Mean proposals per video.
    pub proposals_per_video: f64,
    /// Timed calls (videos × repeat).
    pub timed_calls: usize,
    /// Untimed warm-up calls.
    pub warmup: usize,
    /// Median latency per video (model + post-processing), ms.
    pub p50_ms: f64,
    /// 90th percentile, ms.
    pub p90_ms: f64,
    /// 99th percentile, ms.
    pub p99_ms: f64,
    /// Mean, ms.
    pub mean_ms: f64,
    /// Median of the model call alone, ms.
    pub model_p50_ms: f64,
    /// Median of fusion + Soft-NMS + top-k alone, ms.
    pub post_p50_ms: f64,
    /// Videos per second over the timed calls (one session, one call at a time;
    /// input preparation excluded).
    pub videos_per_s: f64,
    /// Proposals per second over the timed calls.
    pub proposals_per_s: f64,
    /// Peak resident memory of the process (VmHWM), MiB.
    pub peak_rss_mb: f64,
    /// CPU time (user + system, all threads) per timed call, ms: on a machine
    /// shared with other work, the steadier figure.
    pub cpu_ms_per_video: f64,
}

impl fmt::Display for BenchResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "model {} (C={}, T={}, {}) on {} (asked {}), threads {}",
            self.model,
            self.feat_dim,
            self.temporal_scale,
            self.precision.as_deref().unwrap_or("?"),
            self.device,
            self.requested_device,
            self.threads
                .map(|t| t.to_string())
                .unwrap_or_else(|| "default".into())
        )?;
        writeln!(
            f,
            "{} timed calls ({} videos, {:.0} proposals each), {} warm-up",
            self.timed_calls, self.videos, self.proposals_per_video, self.warmup
        )?;
        writeln!(
            f,
            "latency per video: p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, mean {:.2} ms (model p50 {:.2} ms, post {:.3} ms)",
            self.p50_ms, self.p90_ms, self.p99_ms, self.mean_ms, self.model_p50_ms, self.post_p50_ms
        )?;
        write!(
            f,
            "throughput: {:.2} videos/s, {:.0} proposals/s; CPU {:.0} ms per video; peak RSS {:.1} MiB",
            self.videos_per_s, self.proposals_per_s, self.cpu_ms_per_video, self.peak_rss_mb
        )
    }
}

/// Peak resident set size of this process in MiB (`VmHWM` of `/proc/self/status`).
pub fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

/// CPU time (user + system) of this process so far, in seconds
/// (`/proc/self/stat`, in clock ticks of 1/100 s).
pub fn process_cpu_seconds() -> f64 {
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            // Fields after the command name in parentheses; utime, stime are 14 and 15.
            let rest = &s[s.rfind(')')? + 2..];
            let f: Vec<&str> = rest.split_whitespace().collect();
            let utime: f64 = f.get(11)?.parse().ok()?;
            let stime: f64 = f.get(12)?.parse().ok()?;
            Some((utime + stime) / 100.0)
        })
        .unwrap_or(f64::NAN)
}

/// Nearest-rank percentile of sorted values.
pub fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// SplitMix64: reproducible random inputs without a dependency.
#[derive(Debug, Clone)]
pub struct SplitMix64(pub u64);

impl SplitMix64 {
    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// A random video shaped for `model`: features in [-1, 1), `proposals`
/// segments inside the timeline, and its duration in seconds.
fn random_video(
    model: &TcanetModel,
    proposals: usize,
    rng: &mut SplitMix64,
    i: usize,
) -> VideoInput {
    let cfg = model.config();
    let features: Vec<f32> = (0..cfg.feat_dim * cfg.temporal_scale)
        .map(|_| (rng.uniform() * 2.0 - 1.0) as f32)
        .collect();
    // Network units: seconds over D = T * interval, or fractions of the video.
    let (duration, time) = if cfg.normalize_by_duration {
        let duration = 30.0 + rng.uniform() * 200.0;
        (
            duration,
            TimeMap {
                scale: 1.0 / duration,
            },
        )
    } else {
        let d = cfg.timeline_seconds();
        (d * (0.3 + 0.7 * rng.uniform()), TimeMap { scale: 1.0 })
    };
    // The video in network units: [0, 1] or [0, duration] seconds.
    let video_span = time.to_network(duration);
    let mut segs = Vec::with_capacity(proposals);
    let mut scores = Vec::with_capacity(proposals);
    for _ in 0..proposals {
        let len = video_span * (0.02 + 0.5 * rng.uniform());
        let start = (video_span - len) * rng.uniform();
        segs.push([start as f32, (start + len) as f32]);
        scores.push(rng.uniform());
    }
    VideoInput {
        prepared: PreparedVideo {
            video: format!("random_{i}"),
            features,
            proposals: segs,
            scores: scores.iter().map(|&s| s as f32).collect(),
            time,
        },
        duration,
        input_scores: scores,
    }
}

/// Times `model` on `inputs`: warm-up, then every video `repeat` times, one
/// call per video with all its proposals, plus the post-processing.
pub fn bench_model(
    model: &mut TcanetModel,
    inputs: &BenchInputs,
    settings: &BenchSettings,
) -> Result<BenchResult, ModelError> {
    // Videos are made (or read) one at a time, untimed, so that the process's
    // peak memory is the model's, not that of a pile of prepared inputs.
    let count = match inputs {
        BenchInputs::Random { videos, .. } => (*videos).max(1),
        BenchInputs::Dataset { videos, .. } => videos.len(),
    };
    if count == 0 {
        return Err(ModelError::Run {
            path: model.path.clone(),
            message: "no videos to time".into(),
        });
    }
    let make = |model: &TcanetModel, i: usize| -> Result<VideoInput, ModelError> {
        match inputs {
            BenchInputs::Random {
                proposals, seed, ..
            } => {
                let mut rng =
                    SplitMix64(seed.wrapping_mul(0x1000_0000_01B3).wrapping_add(i as u64));
                Ok(random_video(model, (*proposals).max(1), &mut rng, i))
            }
            BenchInputs::Dataset {
                dataset,
                videos,
                layout,
                resample,
            } => {
                let infer = InferSettings {
                    layout: *layout,
                    resample: *resample,
                    ..InferSettings::default()
                };
                prepare_video_input(dataset, &videos[i], &model.interface, &infer, None).map_err(
                    |message| ModelError::Run {
                        path: model.path.clone(),
                        message,
                    },
                )
            }
        }
    };
    let post = PostProcessOptions::default();
    let call = |model: &mut TcanetModel, input: &VideoInput| -> Result<(f64, f64), ModelError> {
        let (v, duration) = (&input.prepared, input.duration);
        let t0 = Instant::now();
        let out = model.run(&v.features, &v.proposals, 1)?;
        let t1 = Instant::now();
        let refined: Vec<(f64, f64)> = out.proposals[2]
            .chunks_exact(2)
            .map(|p| {
                (
                    v.time.to_seconds(f64::from(p[0])),
                    v.time.to_seconds(f64::from(p[1])),
                )
            })
            .collect();
        let fused = fuse_scores(&input.input_scores, &out.iou[2]);
        let kept = postprocess_video(&refined, &fused, duration, &post);
        std::hint::black_box(kept);
        let t2 = Instant::now();
        Ok(((t1 - t0).as_secs_f64(), (t2 - t1).as_secs_f64()))
    };
    for i in 0..settings.warmup {
        let input = make(model, i % count)?;
        call(model, &input)?;
    }
    let mut total = Vec::new();
    let mut model_t = Vec::new();
    let mut post_t = Vec::new();
    let mut proposals_done = 0usize;
    let mut busy_s = 0.0;
    let mut cpu_s = 0.0;
    for _ in 0..settings.repeat {
        for i in 0..count {
            let input = make(model, i)?;
            let cpu0 = process_cpu_seconds();
            let (m, p) = call(model, &input)?;
            cpu_s += process_cpu_seconds() - cpu0;
            model_t.push(m * 1e3);
            post_t.push(p * 1e3);
            total.push((m + p) * 1e3);
            busy_s += m + p;
            proposals_done += input.prepared.proposals.len();
        }
    }
    let sort = |v: &mut Vec<f64>| v.sort_by(f64::total_cmp);
    sort(&mut total);
    sort(&mut model_t);
    sort(&mut post_t);
    let calls = total.len();
    Ok(BenchResult {
        model: model.path.display().to_string(),
        requested_device: model.requested_device.to_string(),
        device: model.device.to_string(),
        threads: settings.threads,
        feat_dim: model.config().feat_dim,
        temporal_scale: model.config().temporal_scale,
        precision: Some(model.interface.precision.to_string()),
        videos: count,
        proposals_per_video: proposals_done as f64 / calls as f64,
        timed_calls: calls,
        warmup: settings.warmup,
        p50_ms: percentile(&total, 0.5),
        p90_ms: percentile(&total, 0.9),
        p99_ms: percentile(&total, 0.99),
        mean_ms: total.iter().sum::<f64>() / calls as f64,
        model_p50_ms: percentile(&model_t, 0.5),
        post_p50_ms: percentile(&post_t, 0.5),
        videos_per_s: calls as f64 / busy_s,
        proposals_per_s: proposals_done as f64 / busy_s,
        peak_rss_mb: peak_rss_mib(),
        cpu_ms_per_video: 1e3 * cpu_s / calls as f64,
    })
}

/// The result of [`bench_postprocess`].
#[derive(Debug, Clone, Serialize)]
pub struct PostBenchResult {
    /// Videos processed per repetition.
    pub videos: usize,
    /// Proposals in all videos.
    pub proposals: usize,
    /// Threads.
    pub threads: usize,
    /// Median wall time of one pass over all videos, s.
    pub median_s: f64,
    /// Fastest pass, s.
    pub min_s: f64,
}

impl fmt::Display for PostBenchResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "fusion + Soft-NMS + top-100 of {} videos ({} proposals) on {} thread(s): median {:.3} s, best {:.3} s",
            self.videos, self.proposals, self.threads, self.median_s, self.min_s
        )
    }
}

/// Times fusion + Soft-NMS + top-100 + clipping over `videos` random videos
/// of `min..=max` proposals, on `threads` threads; median of `repeat` passes.
pub fn bench_postprocess(
    videos: usize,
    min: usize,
    max: usize,
    threads: usize,
    repeat: usize,
) -> PostBenchResult {
    type Case = (Vec<(f64, f64)>, Vec<f64>, Vec<f32>, f64);
    let mut rng = SplitMix64(42);
    let cases: Vec<Case> = (0..videos)
        .map(|_| {
            let n = min + (rng.next_u64() % (max - min + 1) as u64) as usize;
            let duration = 20.0 + rng.uniform() * 200.0;
            let mut seg = Vec::with_capacity(n);
            let mut score = Vec::with_capacity(n);
            let mut iou = Vec::with_capacity(n);
            for _ in 0..n {
                let len = duration * (0.02 + 0.5 * rng.uniform());
                let start = (duration - len) * rng.uniform();
                seg.push((start, start + len));
                score.push(rng.uniform());
                iou.push(rng.uniform() as f32);
            }
            (seg, score, iou, duration)
        })
        .collect();
    let proposals = cases.iter().map(|c| c.0.len()).sum();
    let opts = PostProcessOptions::default();
    let one = |c: &Case| {
        let fused = fuse_scores(&c.1, &c.2);
        std::hint::black_box(postprocess_video(&c.0, &fused, c.3, &opts));
    };
    let mut times = Vec::with_capacity(repeat);
    for _ in 0..repeat {
        let t = Instant::now();
        if threads <= 1 {
            cases.iter().for_each(one);
        } else {
            let chunk = cases.len().div_ceil(threads);
            std::thread::scope(|s| {
                for part in cases.chunks(chunk.max(1)) {
                    s.spawn(move || part.iter().for_each(one));
                }
            });
        }
        times.push(t.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    PostBenchResult {
        videos,
        proposals,
        threads,
        median_s: percentile(&times, 0.5),
        min_s: times[0],
    }
}
