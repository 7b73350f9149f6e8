//! The command line of `tcanet-train`: every numeric flag is range-checked
//! when it is parsed (the ranges of [`crate::limits`]), so a bad value is a
//! usage error (exit 2) naming the flag and its range.
use std::path::PathBuf;
use std::str::FromStr;

use clap::{Args, Parser, Subcommand};
use tcanet_cli::{CommonFlags, Output};
use tcanet_models::data::FeatureLayout;

use crate::decode::DecodeScale;
use crate::device::DeviceSpec;
use crate::limits as l;
use crate::synth_defaults as d;

/// Where libtorch comes from; shown at the end of `--help`.
const LIBTORCH_HELP: &str = "\
libtorch: `tcanet-train` is a small launcher that finds libtorch and starts
`tcanet-train-core` (beside it). It looks in this order: $LIBTORCH/lib;
the directories of $LD_LIBRARY_PATH; `libtorch/lib` and `../lib` beside the
executable; the project's `.venv/libtorch/lib` as seen from the build's
target directory. To use another libtorch (a GPU machine's torch 2.11), set
LIBTORCH to the directory holding lib/libtorch_cpu.so, e.g.
  LIBTORCH=$(python3 -c 'import torch, os; print(os.path.dirname(torch.__file__))')

Exit status: 0 done, 2 bad usage or input (nothing written), 1 other failures.";

/// Train TCANet (temporal action proposal refinement) with libtorch.
///
/// Quick start:
///   tcanet-train synth --out data/synth
///   tcanet-train train --data data/synth --preset tiny --out runs/tiny
///   tcanet-export runs/tiny/best.safetensors -o model.onnx
// No `version`: the binaries give it (`tcanet_cli::parse_with_version`), so
// that a new commit recompiles them and not this crate and the trainer.
#[derive(Parser)]
#[command(
    name = "tcanet-train",
    verbatim_doc_comment,
    after_help = LIBTORCH_HELP
)]
pub struct Cli {
    /// The subcommand.
    #[command(subcommand)]
    pub command: Command,
    /// `--quiet`.
    #[command(flatten)]
    pub common: CommonFlags,
}

/// The subcommands.
#[derive(Subcommand)]
#[allow(clippy::large_enum_variant)]
pub enum Command {
    /// Train a model; writes RUNDIR/last.safetensors, best.safetensors, epoch-N.safetensors and train.jsonl.
    Train(TrainArgs),
    /// Choose the decode scale of an existing checkpoint on held-out videos; writes a new checkpoint.
    Calibrate(CalibrateArgs),
    /// Write a synthetic dataset (annotations, features, proposals, classifier scores).
    Synth(SynthArgs),
    /// Time training steps of a preset on random inputs and report peak memory.
    Bench(BenchArgs),
    /// Refine a subset's proposals with a checkpoint (libtorch; no Soft-NMS) into leaderboard JSON.
    Predict(PredictArgs),
}

/// `--preset` / `--config`.
#[derive(Args)]
pub struct ModelArgs {
    /// Model preset: tiny (CPU demo), anet (C=400, T=100), hacs (C=2304, T=1000).
    #[arg(long, conflicts_with = "config")]
    pub preset: Option<String>,
    /// Model config JSON (fields of ModelConfig; absent ones take the hacs values).
    #[arg(long)]
    pub config: Option<PathBuf>,
}

/// The dataset's files.
#[derive(Args)]
pub struct DataArgs {
    /// Dataset directory: DIR/annotations.json, DIR/features/, DIR/proposals.json.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Annotations JSON (ActivityNet/HACS `database`); overrides --data's.
    #[arg(long)]
    pub annotations: Option<PathBuf>,
    /// Directory of <video>.npy features (f32/f16, [T, C] or [C, T]); overrides --data's.
    #[arg(long)]
    pub features: Option<PathBuf>,
    /// Input proposals: leaderboard JSON or a directory of <video>.csv (xmin,xmax,score in s).
    #[arg(long)]
    pub proposals: Option<PathBuf>,
}

/// libtorch threads and device.
#[derive(Args)]
pub struct DeviceArgs {
    /// auto (CUDA when libtorch sees a GPU), cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto", value_parser = DeviceSpec::from_str)]
    pub device: DeviceSpec,
    /// libtorch intra-op threads, 1 to 1024 (default: libtorch's choice).
    #[arg(long, value_parser = l::THREADS.parser::<i32>(), allow_negative_numbers = true)]
    pub threads: Option<i32>,
}

/// `train`.
#[derive(Args)]
pub struct TrainArgs {
    #[command(flatten)]
    pub data: DataArgs,
    #[command(flatten)]
    pub model: ModelArgs,
    /// Training options JSON (fields of TrainOptions: epochs, batch_size, schedule {base,
    /// warmup_iters, decay_epoch, decay}, weight_decay, seed, workers, max_proposals,
    /// min_instance_seconds, resample, feature_layout, decode_scale, decode_grid,
    /// calibration_fraction, ...); flags override it.
    #[arg(long, value_name = "FILE")]
    pub train_config: Option<PathBuf>,
    /// Run directory for checkpoints and the train.jsonl log.
    #[arg(long)]
    pub out: PathBuf,
    /// Epochs, 1 to 1000000 [default: 9].
    #[arg(long, value_parser = l::EPOCHS.parser::<u64>(), allow_negative_numbers = true)]
    pub epochs: Option<u64>,
    /// Videos per batch, 1 to 65536 [default: 16].
    #[arg(long, value_parser = l::BATCH_SIZE.parser::<usize>(), allow_negative_numbers = true)]
    pub batch_size: Option<usize>,
    /// Base learning rate of AdamW, in (0, 1] [default: 4e-4].
    #[arg(long, value_parser = l::LR.parser(), allow_negative_numbers = true)]
    pub lr: Option<f64>,
    /// AdamW weight decay, in [0, 1] [default: 1e-5].
    #[arg(long, value_parser = l::WEIGHT_DECAY.parser(), allow_negative_numbers = true)]
    pub weight_decay: Option<f64>,
    /// Cosine warm-up iterations at the start of epoch 1, 0 (none) to 1e9 [default: 1000].
    #[arg(long, value_parser = l::WARMUP_ITERS.parser::<u64>(), allow_negative_numbers = true)]
    pub warmup_iters: Option<u64>,
    /// First epoch (1-based) at lr x --lr-decay, 1 to 1000000 [default: 7].
    #[arg(long, value_parser = l::LR_DECAY_EPOCH.parser::<u64>(), allow_negative_numbers = true)]
    pub lr_decay_epoch: Option<u64>,
    /// Learning-rate factor from --lr-decay-epoch on, in (0, 1] [default: 0.1].
    #[arg(long, value_parser = l::LR_DECAY.parser(), allow_negative_numbers = true)]
    pub lr_decay: Option<f64>,
    /// Seed of initialisation, shuffling, dropout, loss sampling and the held-out slice [default: 0].
    #[arg(long, value_parser = l::SEED.parser::<u64>(), allow_negative_numbers = true)]
    pub seed: Option<u64>,
    #[command(flatten)]
    pub device: DeviceArgs,
    /// Continue a run exactly: from CKPT, or RUNDIR/last.safetensors when no value is given.
    /// The settings results depend on must be the checkpoint's (see --allow-changed-settings).
    #[arg(long, num_args = 0..=1, value_name = "CKPT", conflicts_with = "init")]
    pub resume: Option<Option<PathBuf>>,
    /// Resume even though settings differ from the checkpoint's (each change is printed).
    #[arg(long, requires = "resume")]
    pub allow_changed_settings: bool,
    /// Start a new run from the weights of CKPT (e.g. a converted release checkpoint).
    #[arg(long, value_name = "CKPT")]
    pub init: Option<PathBuf>,
    /// Start afresh in a run directory holding a previous run (its checkpoints and log are removed).
    #[arg(long, conflicts_with = "resume")]
    pub overwrite: bool,
    /// Stop after this many steps in total, 1 to 1e12 (a checkpoint is written).
    #[arg(long, value_parser = l::MAX_STEPS.parser::<u64>(), allow_negative_numbers = true)]
    pub max_steps: Option<u64>,
    /// Also write RUNDIR/last.safetensors every N steps, 1 to 1e12 (always at each epoch end).
    #[arg(long, value_parser = l::SAVE_EVERY.parser::<u64>(), allow_negative_numbers = true)]
    pub save_every: Option<u64>,
    /// Threads loading and preparing batches, 1 to 256 [default: 2].
    #[arg(long, value_parser = l::WORKERS.parser::<usize>(), allow_negative_numbers = true)]
    pub workers: Option<usize>,
    /// Interpolate feature sequences longer than the model's T instead of failing (HACS style).
    #[arg(long)]
    pub resample: bool,
    /// Layout of the feature files: auto (from the channel count), tc ([T, C]) or ct ([C, T]) [default: auto].
    #[arg(long)]
    pub feature_layout: Option<FeatureLayout>,
    /// Input proposals per video, best scores first, 1 to 100000 [default: 64].
    #[arg(long, value_parser = l::MAX_PROPOSALS.parser::<usize>(), allow_negative_numbers = true)]
    pub max_proposals: Option<usize>,
    /// Ground-truth instances shorter than this (s) are dropped, in [0, 1e6] [default: 1].
    #[arg(long, value_parser = l::MIN_INSTANCE_SECONDS.parser(), allow_negative_numbers = true)]
    pub min_instance_seconds: Option<f64>,
    /// Drop invalid proposals (start >= end, beyond the video) and count them, instead of failing.
    #[arg(long)]
    pub skip_invalid_proposals: bool,
    /// Subset trained on [default: training].
    #[arg(long)]
    pub train_subset: Option<String>,
    /// Subset validated on after each epoch [default: validation].
    #[arg(long)]
    pub val_subset: Option<String>,
    /// Skip the per-epoch validation.
    #[arg(long)]
    pub no_validation: bool,
    /// Inference decode scale of the start/end moves: `calibrate` (chosen on held-out training
    /// videos after each epoch), `release` (the paper's 0.2, no held-out videos by default) or
    /// a fixed scale in (0, 2] [default: calibrate].
    #[arg(long, value_name = "calibrate|release|X", value_parser = DecodeScale::parse, allow_negative_numbers = true)]
    pub decode_scale: Option<DecodeScale>,
    /// The scales calibration tries, comma-separated, each in (0, 2]
    /// [default: 0.2,0.35,0.5,0.75,1.0].
    #[arg(long, value_delimiter = ',', value_parser = l::DECODE_SCALE.parser(), allow_negative_numbers = true)]
    pub decode_grid: Option<Vec<f64>>,
    /// Fraction of the training videos held out of training for calibration and the choice of
    /// best.safetensors, in [0, 0.5]; deterministic per --seed [default: 0.1; 0 with release].
    #[arg(long, value_parser = l::CALIBRATION_FRACTION.parser(), allow_negative_numbers = true)]
    pub calibration_fraction: Option<f64>,
}

/// `calibrate`.
#[derive(Args)]
pub struct CalibrateArgs {
    /// The checkpoint to calibrate (its weights are kept; a new file is written).
    pub checkpoint: PathBuf,
    #[command(flatten)]
    pub data: DataArgs,
    /// Model config for a checkpoint without one (a converted release checkpoint).
    #[command(flatten)]
    pub model: ModelArgs,
    /// Calibrate on every usable video of this subset (never the one you evaluate on).
    /// Default: the videos the checkpoint's run held out of training.
    #[arg(long)]
    pub subset: Option<String>,
    /// The calibrated checkpoint to write (`-`: standard output).
    #[arg(short = 'o', long = "output", value_name = "OUT")]
    pub output: Output,
    /// The scales tried, comma-separated, each in (0, 2] [default: 0.2,0.35,0.5,0.75,1.0].
    #[arg(long, value_delimiter = ',', value_parser = l::DECODE_SCALE.parser(), allow_negative_numbers = true)]
    pub decode_grid: Option<Vec<f64>>,
    #[command(flatten)]
    pub device: DeviceArgs,
    /// Threads reading videos, 1 to 256.
    #[arg(long, default_value_t = 2, value_parser = l::WORKERS.parser::<usize>(), allow_negative_numbers = true)]
    pub workers: usize,
    /// Layout of the feature files: auto, tc or ct.
    #[arg(long, default_value = "auto")]
    pub feature_layout: FeatureLayout,
    /// Interpolate feature sequences longer than the model's T.
    #[arg(long)]
    pub resample: bool,
    /// Drop invalid proposals instead of failing.
    #[arg(long)]
    pub skip_invalid_proposals: bool,
}

/// `predict`.
#[derive(Args)]
pub struct PredictArgs {
    /// Dataset directory: DIR/annotations.json, DIR/features/, DIR/proposals.json.
    #[arg(long)]
    pub data: PathBuf,
    /// Checkpoint (.safetensors written by `train`).
    #[arg(long)]
    pub checkpoint: PathBuf,
    /// Subset to refine.
    #[arg(long, default_value = "validation")]
    pub subset: String,
    /// Refined proposals (leaderboard JSON) to write; `-` for standard output.
    #[arg(long, value_parser = clap::value_parser!(Output))]
    pub out: Output,
    /// Also write the input proposals used (top --max-proposals by score), for comparison.
    #[arg(long, value_parser = clap::value_parser!(Output))]
    pub input_out: Option<Output>,
    /// Input proposals per video, best scores first, 1 to 100000.
    #[arg(long, default_value_t = 100, value_parser = l::MAX_PROPOSALS.parser::<usize>(), allow_negative_numbers = true)]
    pub max_proposals: usize,
    #[command(flatten)]
    pub device: DeviceArgs,
    /// Interpolate feature sequences longer than the model's T.
    #[arg(long)]
    pub resample: bool,
    /// Layout of the feature files: auto (from the channel count), tc ([T, C]) or ct ([C, T]).
    #[arg(long, default_value = "auto")]
    pub feature_layout: FeatureLayout,
}

/// `synth`.
#[derive(Args)]
pub struct SynthArgs {
    /// Output directory (new, empty, or a previous synth dataset).
    #[arg(long)]
    pub out: PathBuf,
    /// Training videos, 1 to 1000000.
    #[arg(long, default_value_t = d::TRAIN_VIDEOS,
          value_parser = l::SYNTH_VIDEOS.parser::<usize>(), allow_negative_numbers = true)]
    pub train_videos: usize,
    /// Validation videos, 1 to 1000000.
    #[arg(long, default_value_t = d::VAL_VIDEOS,
          value_parser = l::SYNTH_VIDEOS.parser::<usize>(), allow_negative_numbers = true)]
    pub val_videos: usize,
    /// Action classes, 1 to 100000.
    #[arg(long, default_value_t = d::CLASSES,
          value_parser = l::SYNTH_CLASSES.parser::<usize>(), allow_negative_numbers = true)]
    pub classes: usize,
    /// Feature channels C (tiny: 32, anet: 400, hacs: 2304), 1 to 65536.
    #[arg(long, default_value_t = d::CHANNELS,
          value_parser = l::SYNTH_CHANNELS.parser::<usize>(), allow_negative_numbers = true)]
    pub channels: usize,
    /// ActivityNet style: feature steps per video (tiny: 64, anet: 100), 1 to 1000000.
    #[arg(long, default_value_t = d::STEPS,
          value_parser = l::SYNTH_STEPS.parser::<usize>(), allow_negative_numbers = true)]
    pub steps: usize,
    /// HACS style instead: one feature step every SECONDS (e.g. 0.5333), in (0, 3600]; T varies per video.
    #[arg(long, value_name = "SECONDS", value_parser = l::SYNTH_INTERVAL.parser(), allow_negative_numbers = true)]
    pub interval: Option<f64>,
    /// Feature noise standard deviation (higher = harder), in [0, 100].
    #[arg(long, default_value_t = d::NOISE,
          value_parser = l::SYNTH_NOISE.parser(), allow_negative_numbers = true)]
    pub noise: f64,
    /// Typical proposal boundary error as a fraction of the action length, in [0, 10].
    #[arg(long, default_value_t = d::BOUNDARY_ERROR,
          value_parser = l::SYNTH_BOUNDARY_ERROR.parser(), allow_negative_numbers = true)]
    pub boundary_error: f64,
    /// Input proposals per video, 1 to 100000.
    #[arg(long, default_value_t = d::PROPOSALS_PER_VIDEO,
          value_parser = l::SYNTH_PROPOSALS.parser::<usize>(), allow_negative_numbers = true)]
    pub proposals_per_video: usize,
    /// Shortest video (s), in (1, 86400].
    #[arg(long, default_value_t = d::MIN_DURATION,
          value_parser = l::SYNTH_DURATION.parser(), allow_negative_numbers = true)]
    pub min_duration: f64,
    /// Longest video (s), in (1, 86400], at least --min-duration.
    #[arg(long, default_value_t = d::MAX_DURATION,
          value_parser = l::SYNTH_DURATION.parser(), allow_negative_numbers = true)]
    pub max_duration: f64,
    /// Seed.
    #[arg(long, default_value_t = 0, value_parser = l::SEED.parser::<u64>(), allow_negative_numbers = true)]
    pub seed: u64,
}

/// `bench`.
#[derive(Args)]
pub struct BenchArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Timed steps, 1 to 1000000.
    #[arg(long, default_value_t = 20, value_parser = l::BENCH_STEPS.parser::<usize>(), allow_negative_numbers = true)]
    pub steps: usize,
    /// Untimed steps first, 0 to 1000000.
    #[arg(long, default_value_t = 2, value_parser = l::BENCH_WARMUP.parser::<usize>(), allow_negative_numbers = true)]
    pub warmup: usize,
    /// Videos per batch, 1 to 65536.
    #[arg(long, default_value_t = 16, value_parser = l::BATCH_SIZE.parser::<usize>(), allow_negative_numbers = true)]
    pub batch_size: usize,
    /// Proposals per video, 1 to 100000.
    #[arg(long, default_value_t = 64, value_parser = l::BENCH_PROPOSALS.parser::<usize>(), allow_negative_numbers = true)]
    pub proposals: usize,
    #[command(flatten)]
    pub device: DeviceArgs,
}

#[cfg(test)]
mod command_line {
    use clap::CommandFactory;

    /// No flag defined twice in one subcommand (clap would take the first).
    #[test]
    fn the_command_line_is_well_formed() {
        tcanet_cli::assert_command_line_well_formed(super::Cli::command());
    }
}
