//! Time and peak memory of training steps on random inputs of a config's
//! shape (the data pipeline excluded): what `tcanet-train bench` reports.
use crate::error::{NonFinite, TrainError};
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

/// The memory for `bench`'s random batch could not be allocated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "bench: a random batch of {batch} videos × {proposals} proposals for the config needs {} of \
     memory, which could not be allocated (lower --batch-size or --proposals, choose a smaller \
     config, or free some memory)",
    gib(*values)
)]
pub struct BatchOutOfMemory {
    /// Videos per batch.
    pub batch: usize,
    /// Proposals per video.
    pub proposals: usize,
    /// float32 values the batch holds (saturating).
    pub values: u128,
}

/// `values` float32 values in GiB, as text.
fn gib(values: u128) -> String {
    format!("{:.1} GiB", values as f64 * 4.0 / f64::from(1u32 << 30))
}

/// Why `bench` stopped.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// The random batch does not fit in memory (exit 1).
    #[error(transparent)]
    OutOfMemory(#[from] BatchOutOfMemory),
    /// A training step failed (the cause keeps its exit status).
    #[error("{0}")]
    Train(#[from] TrainError),
}

/// A random batch of `cfg`'s shape: uniform features in [-1, 1), proposals
/// and matched ground truth inside the timeline. Memory the batch needs and
/// cannot have is an error, not an abort.
pub fn random_batch(
    cfg: &ModelConfig,
    batch: usize,
    proposals: usize,
    seed: u64,
) -> Result<TrainingBatch, BatchOutOfMemory> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let (c, t) = (cfg.feat_dim, cfg.temporal_scale);
    let d = cfg.timeline_seconds();
    let seg = |rng: &mut rand_chacha::ChaCha8Rng| {
        let len = d * rng.gen_range(0.05..0.6);
        let s = rng.gen_range(0.0..d - len);
        [s as f32, (s + len) as f32]
    };
    let [features, proposal_values, gt, valid] = reserve_batch(cfg, batch, proposals)?;
    let mut b = TrainingBatch {
        videos: (0..batch).map(|i| format!("bench_{i}")).collect(),
        features,
        proposals: proposal_values,
        gt,
        valid,
        channels: c,
        steps: t,
        slots: proposals,
    };
    let slots = batch * proposals; // reserved above, so it did not overflow
    b.features
        .extend((0..batch * c * t).map(|_| rng.gen_range(-1.0f32..1.0)));
    b.valid.resize(slots, 1.0);
    for _ in 0..slots {
        let p = seg(&mut rng);
        b.proposals.extend(p);
        let g = seg(&mut rng);
        b.gt.extend(g);
    }
    Ok(b)
}

/// Empty vectors with room for a batch's features, proposals, ground truth
/// and mask, sized with checked arithmetic and reserved fallibly.
fn reserve_batch(
    cfg: &ModelConfig,
    batch: usize,
    proposals: usize,
) -> Result<[Vec<f32>; 4], BatchOutOfMemory> {
    let features = [cfg.feat_dim, cfg.temporal_scale]
        .iter()
        .try_fold(batch, |n, &k| n.checked_mul(k));
    let slots = batch.checked_mul(proposals);
    let pairs = slots.and_then(|n| n.checked_mul(2));
    let sizes = [features, pairs, pairs, slots];
    let oom = || BatchOutOfMemory {
        batch,
        proposals,
        values: sizes
            .iter()
            .map(|n| n.map_or(u128::MAX, |n| n as u128))
            .fold(0, u128::saturating_add),
    };
    let mut out: [Vec<f32>; 4] = Default::default();
    for (v, n) in out.iter_mut().zip(sizes) {
        n.and_then(|n| v.try_reserve_exact(n).ok())
            .ok_or_else(oom)?;
    }
    Ok(out)
}

/// Runs `warmup` untimed then `steps` timed training steps.
pub fn bench_steps(
    cfg: &ModelConfig,
    device: Device,
    batch: usize,
    proposals: usize,
    warmup: usize,
    steps: usize,
) -> Result<BenchResult, BenchError> {
    let opts = TrainOptions {
        batch_size: batch,
        ..TrainOptions::default()
    };
    let mut tr = Trainer::new(cfg, opts, device);
    tr.pos.epoch = 1; // past the warm-up: the full learning rate
    let b = random_batch(cfg, batch, proposals, 7)?;
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
