//! `tcanet-train`: train TCANet (`train`), write a synthetic dataset
//! (`synth`), or time a training step (`bench`).
use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use tcanet_models::checkpoint::{Checkpoint, ConfigOverride};
use tcanet_models::data::FeatureLayout;
use tcanet_models::data::{DatasetPaths, GivenPaths};
use tcanet_models::ModelConfig;
use tcanet_trainer::bench::bench_steps;
use tcanet_trainer::dataset::{DataOptions, TrainingData};
use tcanet_trainer::synth::{write_dataset, SynthOptions};
use tcanet_trainer::train::{parse_device, resume_path, RunControl, TrainOptions, Trainer};

/// Train TCANet (temporal action proposal refinement) with libtorch.
///
/// Quick start:
///   tcanet-train synth --out data/synth
///   tcanet-train train --data data/synth --preset tiny --out runs/tiny
#[derive(Parser)]
#[command(name = "tcanet-train", version = tcanet_cli::LONG_VERSION, verbatim_doc_comment)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
#[allow(clippy::large_enum_variant)]
enum Command {
    /// Train a model; writes RUNDIR/last.safetensors, epoch-N.safetensors and train.jsonl.
    Train(TrainArgs),
    /// Write a synthetic dataset (annotations, features, proposals, classifier scores).
    Synth(SynthArgs),
    /// Time training steps of a preset on random inputs and report peak memory.
    Bench(BenchArgs),
    /// Refine a subset's proposals with a checkpoint (libtorch; no Soft-NMS) into leaderboard JSON.
    Predict(PredictArgs),
}

#[derive(Args)]
struct PredictArgs {
    /// Dataset directory: DIR/annotations.json, DIR/features/, DIR/proposals.json.
    #[arg(long)]
    data: PathBuf,
    /// Checkpoint (.safetensors written by `train`).
    #[arg(long)]
    checkpoint: PathBuf,
    /// Subset to refine.
    #[arg(long, default_value = "validation")]
    subset: String,
    /// Refined proposals (leaderboard JSON) to write.
    #[arg(long)]
    out: PathBuf,
    /// Also write the input proposals used (top --max-proposals by score), for comparison.
    #[arg(long)]
    input_out: Option<PathBuf>,
    /// Input proposals per video, best scores first.
    #[arg(long, default_value_t = 100)]
    max_proposals: usize,
    /// auto, cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    device: String,
    /// Interpolate feature sequences longer than the model's T.
    #[arg(long)]
    resample: bool,
}

#[derive(Args)]
struct ModelArgs {
    /// Model preset: tiny (CPU demo), anet (C=400, T=100), hacs (C=2304, T=1000).
    #[arg(long, conflicts_with = "config")]
    preset: Option<String>,
    /// Model config JSON (fields of ModelConfig; absent ones take the hacs values).
    #[arg(long)]
    config: Option<PathBuf>,
}

impl ModelArgs {
    fn resolve(&self) -> Result<Option<ModelConfig>> {
        if let Some(p) = &self.preset {
            return Ok(Some(ModelConfig::preset(p)?));
        }
        if let Some(path) = &self.config {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            return Ok(Some(
                ModelConfig::from_json(&text).with_context(|| path.display().to_string())?,
            ));
        }
        Ok(None)
    }
}

#[derive(Args)]
struct TrainArgs {
    /// Dataset directory: DIR/annotations.json, DIR/features/, DIR/proposals.json.
    #[arg(long)]
    data: Option<PathBuf>,
    /// Annotations JSON (ActivityNet/HACS `database`); overrides --data's.
    #[arg(long)]
    annotations: Option<PathBuf>,
    /// Directory of <video>.npy features (f32/f16, [T, C] or [C, T]); overrides --data's.
    #[arg(long)]
    features: Option<PathBuf>,
    /// Input proposals: leaderboard JSON or a directory of <video>.csv (xmin,xmax,score in s).
    #[arg(long)]
    proposals: Option<PathBuf>,
    #[command(flatten)]
    model: ModelArgs,
    /// Training options JSON (fields of TrainOptions: epochs, batch_size, schedule {base,
    /// warmup_iters, decay_epoch, decay}, weight_decay, seed, workers, max_proposals,
    /// min_instance_seconds, resample, feature_layout, ...); flags override it.
    #[arg(long, value_name = "FILE")]
    train_config: Option<PathBuf>,
    /// Run directory for checkpoints and the train.jsonl log.
    #[arg(long)]
    out: PathBuf,
    /// Epochs [default: 9].
    #[arg(long)]
    epochs: Option<u64>,
    /// Videos per batch [default: 16].
    #[arg(long)]
    batch_size: Option<usize>,
    /// Base learning rate of AdamW [default: 4e-4].
    #[arg(long)]
    lr: Option<f64>,
    /// AdamW weight decay [default: 1e-5].
    #[arg(long)]
    weight_decay: Option<f64>,
    /// Cosine warm-up iterations at the start of epoch 1 [default: 1000].
    #[arg(long)]
    warmup_iters: Option<u64>,
    /// First epoch (1-based) at lr x --lr-decay [default: 7].
    #[arg(long)]
    lr_decay_epoch: Option<u64>,
    /// Learning-rate factor from --lr-decay-epoch on [default: 0.1].
    #[arg(long)]
    lr_decay: Option<f64>,
    /// Seed of initialisation, shuffling, dropout and loss sampling [default: 0].
    #[arg(long)]
    seed: Option<u64>,
    /// auto (CUDA when available), cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    device: String,
    /// Continue a run exactly: from CKPT, or RUNDIR/last.safetensors when no value is given.
    #[arg(long, num_args = 0..=1, value_name = "CKPT")]
    resume: Option<Option<PathBuf>>,
    /// Stop after this many steps in total (a checkpoint is written).
    #[arg(long)]
    max_steps: Option<u64>,
    /// Also write RUNDIR/last.safetensors every N steps (always at each epoch end).
    #[arg(long)]
    save_every: Option<u64>,
    /// Threads loading and preparing batches [default: 2].
    #[arg(long)]
    workers: Option<usize>,
    /// libtorch intra-op threads (default: libtorch's choice).
    #[arg(long)]
    threads: Option<i32>,
    /// Interpolate feature sequences longer than the model's T instead of failing (HACS style).
    #[arg(long)]
    resample: bool,
    /// Layout of the feature files: auto (from the channel count), tc ([T, C]) or ct ([C, T]) [default: auto].
    #[arg(long)]
    feature_layout: Option<FeatureLayout>,
    /// Input proposals per video, best scores first [default: 64].
    #[arg(long)]
    max_proposals: Option<usize>,
    /// Ground-truth instances shorter than this (s) are dropped [default: 1].
    #[arg(long)]
    min_instance_seconds: Option<f64>,
    /// Drop invalid proposals (start >= end, beyond the video) and count them, instead of failing.
    #[arg(long)]
    skip_invalid_proposals: bool,
    /// Subset trained on [default: training].
    #[arg(long)]
    train_subset: Option<String>,
    /// Subset validated on after each epoch [default: validation].
    #[arg(long)]
    val_subset: Option<String>,
    /// Skip the per-epoch validation.
    #[arg(long)]
    no_validation: bool,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
}

#[derive(Args)]
struct SynthArgs {
    /// Output directory.
    #[arg(long)]
    out: PathBuf,
    /// Training videos.
    #[arg(long, default_value_t = SynthOptions::default().train_videos)]
    train_videos: usize,
    /// Validation videos.
    #[arg(long, default_value_t = SynthOptions::default().val_videos)]
    val_videos: usize,
    /// Action classes.
    #[arg(long, default_value_t = SynthOptions::default().classes)]
    classes: usize,
    /// Feature channels C (tiny: 32, anet: 400, hacs: 2304).
    #[arg(long, default_value_t = SynthOptions::default().channels)]
    channels: usize,
    /// ActivityNet style: feature steps per video (tiny: 64, anet: 100).
    #[arg(long, default_value_t = SynthOptions::default().steps)]
    steps: usize,
    /// HACS style instead: one feature step every SECONDS (e.g. 0.5333); T varies per video.
    #[arg(long, value_name = "SECONDS")]
    interval: Option<f64>,
    /// Feature noise standard deviation (higher = harder).
    #[arg(long, default_value_t = SynthOptions::default().noise)]
    noise: f64,
    /// Typical proposal boundary error as a fraction of the action length (higher = more to refine).
    #[arg(long, default_value_t = SynthOptions::default().boundary_error)]
    boundary_error: f64,
    /// Input proposals per video.
    #[arg(long, default_value_t = SynthOptions::default().proposals_per_video)]
    proposals_per_video: usize,
    /// Shortest video (s).
    #[arg(long, default_value_t = SynthOptions::default().duration_range.0)]
    min_duration: f64,
    /// Longest video (s).
    #[arg(long, default_value_t = SynthOptions::default().duration_range.1)]
    max_duration: f64,
    /// Seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

#[derive(Args)]
struct BenchArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Timed steps.
    #[arg(long, default_value_t = 20)]
    steps: usize,
    /// Untimed steps first.
    #[arg(long, default_value_t = 2)]
    warmup: usize,
    /// Videos per batch.
    #[arg(long, default_value_t = 16)]
    batch_size: usize,
    /// Proposals per video.
    #[arg(long, default_value_t = 64)]
    proposals: usize,
    /// auto, cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    device: String,
    /// libtorch intra-op threads.
    #[arg(long)]
    threads: Option<i32>,
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Train(a) => train(a),
        Command::Synth(a) => synth(a),
        Command::Bench(a) => bench(a),
        Command::Predict(a) => predict(a),
    };
    if let Err(e) = result {
        eprintln!("error: {e}");
        for cause in e.chain().skip(1) {
            eprintln!("  caused by: {cause}");
        }
        std::process::exit(1);
    }
}

fn train(a: TrainArgs) -> Result<()> {
    if let Some(n) = a.threads {
        tch::set_num_threads(n);
    }
    let device = parse_device(&a.device)?;
    let paths = DatasetPaths::resolve(
        &GivenPaths {
            data: a.data.clone(),
            annotations: a.annotations.clone(),
            features: a.features.clone(),
            proposals: a.proposals.clone(),
        },
        true,
    )?;
    let given_cfg = a.model.resolve()?;
    let resume = a.resume.as_ref().map(|p| resume_path(p.as_deref(), &a.out));
    let (cfg, mut opts) = match &resume {
        Some(path) => {
            let (saved_cfg, opts) = Trainer::saved_settings(path)
                .with_context(|| format!("cannot resume from {}", path.display()))?;
            (given_cfg.unwrap_or(saved_cfg), opts)
        }
        None => (
            given_cfg.context("no model: pass --preset tiny|anet|hacs or --config model.json")?,
            TrainOptions::default(),
        ),
    };
    if let Some(path) = &a.train_config {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        opts = serde_json::from_str(&text)
            .with_context(|| format!("{}: invalid training options", path.display()))?;
    }
    macro_rules! set {
        ($field:expr, $arg:expr) => {
            if let Some(v) = $arg.clone() {
                $field = v;
            }
        };
    }
    set!(opts.epochs, a.epochs);
    set!(opts.batch_size, a.batch_size);
    set!(opts.schedule.base, a.lr);
    set!(opts.weight_decay, a.weight_decay);
    set!(opts.schedule.warmup_iters, a.warmup_iters);
    set!(opts.schedule.decay_epoch, a.lr_decay_epoch);
    set!(opts.schedule.decay, a.lr_decay);
    set!(opts.seed, a.seed);
    set!(opts.workers, a.workers);
    set!(opts.max_proposals, a.max_proposals);
    set!(opts.min_instance_seconds, a.min_instance_seconds);
    set!(opts.train_subset, a.train_subset);
    set!(opts.val_subset, a.val_subset);
    opts.max_steps = a.max_steps;
    if a.save_every.is_some() {
        opts.save_every = a.save_every;
    }
    opts.resample |= a.resample;
    if let Some(l) = a.feature_layout {
        opts.feature_layout = match l {
            FeatureLayout::Auto => "auto",
            FeatureLayout::TimeChannels => "tc",
            FeatureLayout::ChannelsTime => "ct",
        }
        .into();
    }
    let layout: FeatureLayout = opts
        .feature_layout
        .parse()
        .map_err(|e: String| anyhow::anyhow!("feature_layout: {e}"))?;
    if opts.batch_size == 0 {
        bail!("--batch-size must be at least 1");
    }
    let data_opts = DataOptions {
        max_proposals: opts.max_proposals,
        min_instance_seconds: opts.min_instance_seconds,
        layout,
        resample: opts.resample,
        skip_invalid_proposals: a.skip_invalid_proposals,
    };
    let ds = TrainingData::open(&paths, &data_opts)?;
    let train_split = ds.split(&opts.train_subset, &cfg, &data_opts)?;
    let val_split = if a.no_validation {
        None
    } else {
        Some(ds.split(&opts.val_subset, &cfg, &data_opts)?)
    };
    report_split(&train_split);
    if let Some(v) = &val_split {
        report_split(v);
    }
    let mut trainer = Trainer::new(&cfg, opts, device);
    if let Some(path) = &resume {
        trainer.load(path, true)?;
        eprintln!(
            "resuming {} at epoch {}, step {} of the epoch ({} steps done)",
            path.display(),
            trainer.pos.epoch + 1,
            trainer.pos.step_in_epoch,
            trainer.pos.global_step
        );
    }
    eprintln!(
        "training on {:?}: {} videos, batch {}, {} epochs",
        device,
        train_split.videos.len(),
        trainer.opts.batch_size,
        trainer.opts.epochs
    );
    let ctl = RunControl {
        kill_after_step: None,
        progress: !a.quiet,
    };
    let val = trainer.run(&train_split, val_split.as_ref(), &data_opts, &a.out, ctl)?;
    if let Some(v) = val {
        eprintln!(
            "done: validation loss {:.4}; mean IoU with matched GT P1 {:.4}, P2 {:.4}, P3 {:.4}, P4 {:.4}",
            v.loss, v.mean_iou[0], v.mean_iou[1], v.mean_iou[2], v.mean_iou[3]
        );
    }
    eprintln!("checkpoint: {}", a.out.join("last.safetensors").display());
    Ok(())
}

fn report_split(s: &tcanet_trainer::dataset::Split) {
    let k = &s.skipped;
    eprintln!(
        "{}: {} videos usable; skipped {} without instances >= min length, {} without proposals; \
         {} short instances dropped; {} invalid proposals dropped, {} clamped to the video",
        s.subset,
        s.videos.len(),
        k.videos_without_instances,
        k.videos_without_proposals,
        k.short_instances,
        k.invalid_proposals,
        k.clamped_proposals
    );
}

fn synth(a: SynthArgs) -> Result<()> {
    let o = SynthOptions {
        train_videos: a.train_videos,
        val_videos: a.val_videos,
        classes: a.classes.max(1),
        channels: a.channels,
        steps: a.steps,
        interval: a.interval,
        noise: a.noise,
        boundary_error: a.boundary_error,
        proposals_per_video: a.proposals_per_video,
        duration_range: (a.min_duration, a.max_duration),
        seed: a.seed,
    };
    if o.channels == 0 || o.steps == 0 || o.proposals_per_video == 0 {
        bail!("--channels, --steps and --proposals-per-video must be positive");
    }
    if !(o.duration_range.0 > 1.0 && o.duration_range.1 >= o.duration_range.0) {
        bail!("durations must satisfy 1 < --min-duration <= --max-duration");
    }
    if o.interval.is_some_and(|i| i.is_nan() || i <= 0.0) {
        bail!("--interval must be a positive number of seconds");
    }
    let bar = indicatif::ProgressBar::with_draw_target(
        Some((o.train_videos + o.val_videos) as u64),
        indicatif::ProgressDrawTarget::stderr(),
    );
    let s = write_dataset(&a.out, &o, |i, _| bar.set_position(i as u64))?;
    bar.finish_and_clear();
    eprintln!(
        "wrote {}: {} videos, {} instances, {} proposals (mean best IoU {:.3})",
        a.out.display(),
        s.videos,
        s.instances,
        s.proposals,
        s.mean_best_iou
    );
    Ok(())
}

fn bench(a: BenchArgs) -> Result<()> {
    if let Some(n) = a.threads {
        tch::set_num_threads(n);
    }
    let device = parse_device(&a.device)?;
    let cfg = a.model.resolve()?.unwrap_or_else(ModelConfig::tiny);
    let r = bench_steps(&cfg, device, a.batch_size, a.proposals, a.warmup, a.steps)?;
    println!(
        "{}",
        serde_json::to_string(&serde_json::json!({
            "device": format!("{device:?}"), "threads": tch::get_num_threads(),
            "feat_dim": cfg.feat_dim, "temporal_scale": cfg.temporal_scale, "hidden_dim": cfg.hidden_dim,
            "result": r,
        }))?
    );
    Ok(())
}

fn predict(a: PredictArgs) -> Result<()> {
    let device = parse_device(&a.device)?;
    let cfg = Checkpoint::load(&a.checkpoint, &ConfigOverride::Embedded)?.config;
    let mut trainer = Trainer::new(&cfg, TrainOptions::default(), device);
    trainer.load(&a.checkpoint, false)?;
    let d = DataOptions {
        max_proposals: a.max_proposals,
        resample: a.resample,
        skip_invalid_proposals: true,
        ..DataOptions::default()
    };
    let ds = TrainingData::open(&DatasetPaths::in_dir(&a.data), &d)?.dataset;
    let bar =
        indicatif::ProgressBar::with_draw_target(None, indicatif::ProgressDrawTarget::stderr());
    let p = tcanet_trainer::predict::predict_subset(
        &trainer.net,
        device,
        &ds,
        &a.subset,
        &cfg,
        &d,
        |i, n| {
            bar.set_length(n as u64);
            bar.set_position(i as u64)
        },
    )?;
    bar.finish_and_clear();
    tcanet_cli::write_atomic_bytes(&a.out, p.refined.to_json().as_bytes())?;
    if let Some(path) = &a.input_out {
        tcanet_cli::write_atomic_bytes(path, p.input.to_json().as_bytes())?;
    }
    eprintln!(
        "wrote {} ({} videos)",
        a.out.display(),
        p.refined.videos.len()
    );
    Ok(())
}
