//! Time and peak memory of training steps on random inputs of a config's
//! shape (the data pipeline excluded): what `tcanet-train bench` reports.
use crate::error::{NonFinite, Result, TrainError};
use crate::options::TrainOptions;
use crate::trainer::Trainer;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use std::time::Instant;
use tcanet_models::data::prepare::TrainingBatch;
use tcanet_models::ModelConfig;
use tch::Device;

/// Step-time figures.
#[derive(Debug, Clone, Serialize)]
pub struct BenchResult {
    /// Timed steps.
    pub steps: usize,
    /// Videos per batch.
    pub batch: usize,
    /// Proposals per video.
    pub proposals: usize,
    /// Mean seconds per step.
    pub mean_s: f64,
    /// Median seconds per step.
    pub median_s: f64,
    /// Fastest step.
    pub min_s: f64,
    /// Peak resident memory of the process (MiB), from /proc/self/status VmHWM
    /// (host memory; on a GPU read device memory with `nvidia-smi`).
    pub peak_rss_mib: Option<f64>,
}

/// A random batch of `cfg`'s shape: N(0,1) features, proposals and matched
/// ground truth inside the timeline.
pub fn random_batch(cfg: &ModelConfig, batch: usize, proposals: usize, seed: u64) -> TrainingBatch {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let (c, t) = (cfg.feat_dim, cfg.temporal_scale);
    let d = cfg.timeline_seconds();
    let seg = |rng: &mut rand_chacha::ChaCha8Rng| {
        let len = d * rng.gen_range(0.05..0.6);
        let s = rng.gen_range(0.0..d - len);
        [s as f32, (s + len) as f32]
    };
    let mut b = TrainingBatch {
        videos: (0..batch).map(|i| format!("bench_{i}")).collect(),
        features: (0..batch * c * t)
            .map(|_| rng.gen_range(-1.0f32..1.0))
            .collect(),
        proposals: Vec::new(),
        gt: Vec::new(),
        valid: vec![1.0; batch * proposals],
        channels: c,
        steps: t,
        slots: proposals,
    };
    for _ in 0..batch * proposals {
        let p = seg(&mut rng);
        b.proposals.extend(p);
        let g = seg(&mut rng);
        b.gt.extend(g);
    }
    b
}

/// Runs `warmup` untimed then `steps` timed training steps.
pub fn bench_steps(
    cfg: &ModelConfig,
    device: Device,
    batch: usize,
    proposals: usize,
    warmup: usize,
    steps: usize,
) -> Result<BenchResult> {
    let opts = TrainOptions {
        batch_size: batch,
        ..TrainOptions::default()
    };
    let mut tr = Trainer::new(cfg, opts, device);
    tr.pos.epoch = 1; // past the warm-up: the full learning rate
    let b = random_batch(cfg, batch, proposals, 7);
    let failed = |tr: &Trainer, problem: NonFinite| TrainError::NonFinite {
        step: tr.pos.global_step + 1,
        epoch: 1,
        problem,
        videos: "random inputs".into(),
        kept: "bench writes no file".into(),
    };
    for _ in 0..warmup {
        tr.step(&b).map_err(|p| failed(&tr, p))?;
    }
    let mut times = Vec::with_capacity(steps);
    for _ in 0..steps {
        let t0 = Instant::now();
        tr.step(&b).map_err(|p| failed(&tr, p))?;
        if let Device::Cuda(i) = device {
            tch::Cuda::synchronize(i as i64);
        }
        times.push(t0.elapsed().as_secs_f64());
    }
    let mut sorted = times.clone();
    sorted.sort_by(f64::total_cmp);
    Ok(BenchResult {
        steps,
        batch,
        proposals,
        mean_s: times.iter().sum::<f64>() / steps.max(1) as f64,
        median_s: sorted.get(steps / 2).copied().unwrap_or(f64::NAN),
        min_s: sorted.first().copied().unwrap_or(f64::NAN),
        peak_rss_mib: tcanet_models::cpu::peak_rss_mib(),
    })
}
