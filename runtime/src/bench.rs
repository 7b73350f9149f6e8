//! Benchmarks behind `tcanet-infer bench` and `tcanet-infer bench-post`:
//! per-video latency percentiles, throughput and peak memory of a model on a
//! device, and the speed of fusion + Soft-NMS alone.
use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;
use tcanet_models::cpu::{CpuInfo, NominalPeak};
use tcanet_models::data::{FeatureLayout, PreparedVideo, Proposal, TimeMap};
use tcanet_models::flops::multiply_adds;
use tcanet_models::rand::SplitMix64;
use tcanet_models::stats::{percentile, sort_samples};
use tcanet_models::ModelConfig;

use crate::infer::{prepare_video_input, InferSettings, VideoError, VideoInput};
use crate::postprocess::{fuse_scores, postprocess_video, PostProcessOptions};
use crate::refiner::finish_video;
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
    /// The network's arithmetic per timed call (mean), GFLOP
    /// (`tcanet_models::flops::multiply_adds` of the model's config).
    pub gflop_per_call: f64,
    /// Achieved rate of the model calls: all their FLOP over all their time.
    pub gflops: f64,
    /// Vector ISA of the nominal peak (detected).
    pub isa: String,
    /// Nominal float32 peak of this host on the threads used, GFLOP/s
    /// (`tcanet_models::cpu`; NaN without a known clock).
    pub nominal_peak_gflops: f64,
    /// `gflops` over the nominal peak (meaningful on the CPU device only).
    pub fraction_of_peak: f64,
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
        writeln!(
            f,
            "throughput: {:.2} videos/s, {:.0} proposals/s; CPU {:.0} ms per video; peak RSS {:.1} MiB",
            self.videos_per_s, self.proposals_per_s, self.cpu_ms_per_video, self.peak_rss_mb
        )?;
        write!(
            f,
            "arithmetic: {:.3} GFLOP per call, {:.1} GFLOP/s in the model calls, {:.1}% of the \
             nominal {:.0} GFLOP/s ({})",
            self.gflop_per_call,
            self.gflops,
            100.0 * self.fraction_of_peak,
            self.nominal_peak_gflops,
            self.isa
        )
    }
}

/// Peak resident memory of this process so far, in MiB (NaN where unknown).
pub fn peak_rss_mib() -> f64 {
    tcanet_models::cpu::peak_rss_mib().unwrap_or(f64::NAN)
}

/// CPU time (user + system) of this process so far, in seconds
/// (`/proc/self/stat`, in clock ticks of 1/100 s).
pub fn process_cpu_seconds() -> f64 {
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            // Fields after the command name in parentheses; utime, stime are 14 and 15.
            let rest = s.get(s.rfind(')')? + 2..)?;
            let f: Vec<&str> = rest.split_whitespace().collect();
            let utime: f64 = f.get(11)?.parse().ok()?;
            let stime: f64 = f.get(12)?.parse().ok()?;
            Some((utime + stime) / 100.0)
        })
        .unwrap_or(f64::NAN)
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
    let mut inputs = Vec::with_capacity(proposals);
    for _ in 0..proposals {
        let len = video_span * (0.02 + 0.5 * rng.uniform());
        let start = (video_span - len) * rng.uniform();
        segs.push([start as f32, (start + len) as f32]);
        inputs.push(Proposal {
            start: time.to_seconds(start),
            end: time.to_seconds(start + len),
            score: rng.uniform(),
        });
    }
    VideoInput {
        prepared: PreparedVideo {
            video: format!("random_{i}"),
            features,
            proposals: segs,
            inputs,
            time,
        },
        duration,
    }
}

/// Why a benchmark could not run.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// A setting out of its range (nothing to time, min > max, ...).
    #[error("{0}")]
    Settings(String),
    /// A dataset video could not be prepared.
    #[error(transparent)]
    Video(#[from] VideoError),
    /// ONNX Runtime failed.
    #[error(transparent)]
    Model(#[from] ModelError),
}

/// Most proposals `bench-post` holds in memory (videos × max proposals).
pub const MAX_POST_BENCH_PROPOSALS: usize = 100_000_000;

/// Times `model` on `inputs`: warm-up, then every video `repeat` times, one
/// call per video with all its proposals, plus the post-processing.
pub fn bench_model(
    model: &mut TcanetModel,
    inputs: &BenchInputs,
    settings: &BenchSettings,
) -> Result<BenchResult, BenchError> {
    let count = check_bench_inputs(inputs, settings)?;
    // Videos are made (or read) one at a time, untimed, so that the process's
    // peak memory is the model's, not that of a pile of prepared inputs.
    for i in 0..settings.warmup {
        let input = bench_input(model, inputs, i % count)?;
        time_call(model, &input)?;
    }
    let mut timings = Timings::default();
    for _ in 0..settings.repeat {
        for i in 0..count {
            let input = bench_input(model, inputs, i)?;
            let cpu0 = process_cpu_seconds();
            let (m, p) = time_call(model, &input)?;
            timings.add(
                m,
                p,
                process_cpu_seconds() - cpu0,
                input.prepared.proposals.len(),
            );
            timings.flop += call_flop(model.config(), &input.prepared);
        }
    }
    Ok(timings.result(model, settings, count))
}

/// The number of distinct videos, after checking that there is something
/// to time.
fn check_bench_inputs(inputs: &BenchInputs, settings: &BenchSettings) -> Result<usize, BenchError> {
    let count = match inputs {
        BenchInputs::Random {
            videos, proposals, ..
        } => {
            if *proposals == 0 {
                return Err(BenchError::Settings(
                    "--proposals must be at least 1".into(),
                ));
            }
            *videos
        }
        BenchInputs::Dataset { videos, .. } => videos.len(),
    };
    if count == 0 {
        return Err(BenchError::Settings("no videos to time".into()));
    }
    if settings.repeat == 0 {
        return Err(BenchError::Settings("--repeat must be at least 1".into()));
    }
    Ok(count)
}

/// Video `i` of the benchmark: random, or read and prepared from the dataset.
fn bench_input(
    model: &TcanetModel,
    inputs: &BenchInputs,
    i: usize,
) -> Result<VideoInput, BenchError> {
    match inputs {
        BenchInputs::Random {
            proposals, seed, ..
        } => {
            let mut rng = SplitMix64(seed.wrapping_mul(0x1000_0000_01B3).wrapping_add(i as u64));
            Ok(random_video(model, *proposals, &mut rng, i))
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
            Ok(prepare_video_input(
                dataset,
                &videos[i],
                &model.interface,
                &infer,
                None,
            )?)
        }
    }
}

/// One timed video: the model call, then what `tcanet-infer run` does with
/// its outputs ([`finish_video`]: the finiteness check, score fusion and
/// post-processing); returns the seconds of each.
fn time_call(model: &mut TcanetModel, input: &VideoInput) -> Result<(f64, f64), BenchError> {
    let v = &input.prepared;
    let t0 = Instant::now();
    let out = model.run(&v.features, &v.proposals, 1)?;
    let t1 = Instant::now();
    let kept = finish_video(&model.path, input, &out, &PostProcessOptions::default())
        .map_err(VideoError::from)?;
    std::hint::black_box(kept);
    let t2 = Instant::now();
    Ok(((t1 - t0).as_secs_f64(), (t2 - t1).as_secs_f64()))
}

/// The network's FLOP for one video (one call with all its proposals), at
/// the video's own number of steps (a model with a symbolic T).
pub fn call_flop(cfg: &ModelConfig, video: &PreparedVideo) -> f64 {
    let steps = video.features.len() / cfg.feat_dim.max(1);
    let flop = |cfg: &ModelConfig| multiply_adds(cfg, 1, video.proposals.len()).flops();
    if steps == cfg.temporal_scale || steps == 0 {
        flop(cfg)
    } else {
        flop(&ModelConfig {
            temporal_scale: steps,
            ..cfg.clone()
        })
    }
}

/// The timed calls' measurements.
#[derive(Default)]
struct Timings {
    total_ms: Vec<f64>,
    model_ms: Vec<f64>,
    post_ms: Vec<f64>,
    proposals: usize,
    busy_s: f64,
    cpu_s: f64,
    /// FLOP of the timed model calls.
    flop: f64,
}

impl Timings {
    fn add(&mut self, model_s: f64, post_s: f64, cpu_s: f64, proposals: usize) {
        self.model_ms.push(model_s * 1e3);
        self.post_ms.push(post_s * 1e3);
        self.total_ms.push((model_s + post_s) * 1e3);
        self.busy_s += model_s + post_s;
        self.cpu_s += cpu_s;
        self.proposals += proposals;
    }

    /// Percentiles and rates (at least one call was timed).
    fn result(
        mut self,
        model: &TcanetModel,
        settings: &BenchSettings,
        videos: usize,
    ) -> BenchResult {
        for v in [&mut self.total_ms, &mut self.model_ms, &mut self.post_ms] {
            sort_samples(v);
        }
        let calls = self.total_ms.len().max(1) as f64;
        let model_s = self.model_ms.iter().sum::<f64>() / 1e3;
        let gflops = self.flop / model_s / 1e9;
        // ONNX Runtime's default is one thread per core: count them all.
        let peak = NominalPeak::of_host(&CpuInfo::read(), settings.threads, None, None);
        let total = &self.total_ms;
        BenchResult {
            model: model.path.display().to_string(),
            requested_device: model.requested_device.to_string(),
            device: model.device.to_string(),
            threads: settings.threads,
            feat_dim: model.config().feat_dim,
            temporal_scale: model.config().temporal_scale,
            precision: Some(model.interface.precision.to_string()),
            videos,
            proposals_per_video: self.proposals as f64 / calls,
            timed_calls: total.len(),
            warmup: settings.warmup,
            p50_ms: percentile(total, 0.5),
            p90_ms: percentile(total, 0.9),
            p99_ms: percentile(total, 0.99),
            mean_ms: total.iter().sum::<f64>() / calls,
            model_p50_ms: percentile(&self.model_ms, 0.5),
            post_p50_ms: percentile(&self.post_ms, 0.5),
            videos_per_s: calls / self.busy_s,
            proposals_per_s: self.proposals as f64 / self.busy_s,
            peak_rss_mb: peak_rss_mib(),
            cpu_ms_per_video: 1e3 * self.cpu_s / calls,
            gflop_per_call: self.flop / calls / 1e9,
            gflops,
            isa: peak.isa.to_string(),
            nominal_peak_gflops: peak.gflops(),
            fraction_of_peak: peak.fraction(gflops),
        }
    }
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
/// Every count must be at least 1, `min <= max`, and `videos × max` at most
/// [`MAX_POST_BENCH_PROPOSALS`].
pub fn bench_postprocess(
    videos: usize,
    min: usize,
    max: usize,
    threads: usize,
    repeat: usize,
) -> Result<PostBenchResult, BenchError> {
    check_post_bench(videos, min, max, threads, repeat)?;
    let cases = random_post_cases(videos, min, max);
    let proposals = cases.iter().map(|c| c.0.len()).sum();
    let opts = PostProcessOptions::default();
    let one = |c: &PostCase| {
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
    sort_samples(&mut times);
    Ok(PostBenchResult {
        videos,
        proposals,
        threads,
        median_s: percentile(&times, 0.5),
        min_s: times.first().copied().unwrap_or(f64::NAN),
    })
}

/// The settings of [`bench_postprocess`], checked.
fn check_post_bench(
    videos: usize,
    min: usize,
    max: usize,
    threads: usize,
    repeat: usize,
) -> Result<(), BenchError> {
    let bad = |m: String| Err(BenchError::Settings(m));
    if videos == 0 || min == 0 || threads == 0 || repeat == 0 {
        return bad(
            "--videos, --min-proposals, --threads and --repeat must each be at least 1".into(),
        );
    }
    if min > max {
        return bad(format!(
            "--min-proposals {min} is above --max-proposals {max}"
        ));
    }
    if videos.saturating_mul(max) > MAX_POST_BENCH_PROPOSALS {
        return bad(format!(
            "--videos {videos} x --max-proposals {max} exceeds {MAX_POST_BENCH_PROPOSALS} proposals in memory; lower either"
        ));
    }
    Ok(())
}

/// One random video of `bench-post`: segments, input scores, IoU, duration.
type PostCase = (Vec<(f64, f64)>, Vec<f64>, Vec<f32>, f64);

/// `videos` random videos of `min..=max` proposals (a fixed seed).
fn random_post_cases(videos: usize, min: usize, max: usize) -> Vec<PostCase> {
    let mut rng = SplitMix64(42);
    let span = (max - min) as u64 + 1;
    (0..videos)
        .map(|_| {
            let n = min + (rng.next_u64() % span) as usize;
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
        .collect()
}
