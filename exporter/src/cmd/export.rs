//! The commands that write a file from a checkpoint: the export itself,
//! `convert` (a PyTorch release checkpoint) and `random-checkpoint`.
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Result;
use clap::Args;
use prost::Message;
use tcanet_cli::{range, Log, Output, OutputError};
use tcanet_exporter::random_weights::{random_weights, write_weights};
use tcanet_exporter::{
    build_model, ExportOptions, Int8Parts, Precision, WinogradTile, DEFAULT_OPSET,
};
use tcanet_models::checkpoint::{Checkpoint, CheckpointError, ConfigOverride, KEY_CONFIG};
use tcanet_models::pytorch::convert::{convert_file, ConfigChoice, ConvertError};
use tcanet_models::ModelConfig;

use super::args::{opset, seed, ConfigArgs};
use super::outputs::check_outputs;
use super::status::{usage, WriteFailed};

/// The export's arguments (the command without a subcommand).
#[derive(Args)]
pub struct ExportArgs {
    /// The checkpoint (.safetensors) to export.
    pub checkpoint: Option<PathBuf>,
    /// Output ONNX file (`-`: standard output); a regular file is written
    /// atomically (nothing is left behind on error), a device or pipe in
    /// place; never the checkpoint itself.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<Output>,
    #[command(flatten)]
    pub config: ConfigArgs,
    /// ONNX opset to target, 17 to 25.
    #[arg(long, default_value_t = DEFAULT_OPSET, value_name = "N",
          allow_negative_numbers = true, value_parser = opset())]
    pub opset: i64,
    /// float16 weights and compute (inputs and outputs stay float32), for
    /// GPUs. CPUs compute most of it in float32 anyway, and on AArch64 CPUs
    /// with float16 arithmetic the runtime refuses it: export float32 (or
    /// --int8) for CPUs.
    #[arg(long)]
    pub fp16: bool,
    /// Accept any number of feature steps T (the local attention window and
    /// the sampling positions are computed in the graph). Default: T fixed to the
    /// config's temporal_scale, as the release (which zero-pads to T).
    #[arg(long)]
    pub dynamic_time: bool,
    /// MiB one gather of the TBR heads' first convs may fetch at 100
    /// proposals per video, 1 to 1024 (smaller suits smaller caches; the
    /// outputs are the same).
    #[arg(long, value_name = "MIB", default_value_t = 10, allow_negative_numbers = true,
          value_parser = range::int_in::<u32>(1, 1024))]
    pub gather_chunk_mib: u32,
    /// int8 weights and dynamically quantized activations for the large
    /// matrix products: the LGTE projections and FFN and reg_1d_o.0
    /// (`--int8`), or those and the TBR tap tables (`--int8=all`: a few percent
    /// faster, about twice the error). Faster on CPUs; outputs within ~1e-3
    /// of float32 (see docs/BENCHMARKS.md). float32 only.
    #[arg(
        long,
        value_enum,
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "no-tap-tables",
        value_name = "PARTS",
        conflicts_with = "fp16"
    )]
    pub int8: Option<Int8Parts>,
    /// How the base encoder's two convs run: as Winograd's minimal
    /// filtering with tiles of 4 outputs (half the multiply-adds; rounds a
    /// few times more than a direct conv, which does not show at the
    /// outputs), of 2 (a third fewer, rounding as the direct conv's), or as
    /// direct convs. A --dynamic-time model always runs them direct.
    #[arg(long, value_enum, default_value_t = EncoderConvs::Winograd4, value_name = "HOW")]
    pub encoder_convs: EncoderConvs,
}

/// `--encoder-convs`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum EncoderConvs {
    /// Winograd F(2, 3).
    #[value(name = "winograd2")]
    Winograd2,
    /// Winograd F(4, 3).
    #[value(name = "winograd4")]
    Winograd4,
    /// ONNX `Conv`s.
    Direct,
}

impl EncoderConvs {
    fn tile(self) -> Option<WinogradTile> {
        match self {
            Self::Winograd2 => Some(WinogradTile::F2),
            Self::Winograd4 => Some(WinogradTile::F4),
            Self::Direct => None,
        }
    }
}

/// `convert`'s arguments.
#[derive(Args)]
pub struct ConvertArgs {
    /// The PyTorch checkpoint (a torch.save file, e.g. TCA_best.pth.tar).
    pub input: PathBuf,
    /// Output checkpoint (.safetensors, format tcanet-checkpoint/1); written
    /// atomically, never onto INPUT; `-` is standard output.
    #[arg(short, long, value_name = "FILE")]
    pub output: Output,
    /// Use this preset (hacs, anet, tiny) instead of the one matching the shapes.
    #[arg(long, value_name = "NAME", conflicts_with = "config")]
    pub preset: Option<String>,
    /// Use this model config JSON file (ModelConfig; absent fields take the hacs
    /// values): for weights trained with other settings than a preset's.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

/// `random-checkpoint`'s arguments.
#[derive(Args)]
pub struct RandomCheckpointArgs {
    /// Output .safetensors file (written atomically; `-` is standard output).
    #[arg(short, long, value_name = "FILE")]
    pub output: Output,
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Random seed, any unsigned 64-bit integer.
    #[arg(long, default_value_t = 0, allow_negative_numbers = true, value_parser = seed())]
    pub seed: u64,
}

/// Writes the checkpoint as ONNX.
pub fn cmd_export(args: &ExportArgs, log: Log) -> Result<()> {
    let Some(ckpt_path) = &args.checkpoint else {
        return Err(usage(
            "give a checkpoint to export: tcanet-export CHECKPOINT -o model.onnx (see --help)",
        ));
    };
    let Some(out) = &args.output else {
        return Err(usage("give the output file with -o model.onnx"));
    };
    let mut inputs = vec![ckpt_path.as_path()];
    inputs.extend(args.config.file());
    check_outputs(&[("-o", out)], &inputs)?;
    let start = Instant::now();
    let ckpt = Checkpoint::load(ckpt_path, &args.config.resolve()?)?;
    warn_on_config_override(&ckpt, ckpt_path, log);
    let opts = ExportOptions {
        opset: args.opset,
        precision: if args.fp16 {
            Precision::Fp16
        } else {
            Precision::Fp32
        },
        dynamic_time: args.dynamic_time,
        gather_chunk_bytes: (args.gather_chunk_mib as usize) << 20,
        int8: args.int8,
        encoder_tile: args.encoder_convs.tile(),
    };
    let model = build_model(&ckpt, &opts)?;
    let bytes = model.encode_to_vec();
    out.write_bytes(&bytes)?;
    let graph = model.graph.unwrap_or_default();
    log.info(format_args!(
        "wrote {out} ({:.1} MB, {} nodes, {} initializers, opset {}, {}) from {} (config {}) in {:.2} s",
        bytes.len() as f64 / 1e6,
        graph.node.len(),
        graph.initializer.len(),
        opts.opset,
        if opts.int8.is_some() { "fp32 + int8" } else { opts.precision.as_str() },
        ckpt_path.display(),
        if ckpt.config_embedded { "embedded" } else { "given" },
        start.elapsed().as_secs_f64()
    ));
    Ok(())
}

/// Warns when `--preset`/`--config` replaced a different embedded config.
fn warn_on_config_override(ckpt: &Checkpoint, path: &Path, log: Log) {
    if let Some(embedded) = ckpt.metadata.get(KEY_CONFIG) {
        if !ckpt.config_embedded
            && ModelConfig::from_json(embedded).ok().as_ref() != Some(&ckpt.config)
        {
            log.warn(format_args!(
                "{} carries a different model config; using the one from --preset/--config",
                path.display()
            ));
        }
    }
}

/// Converts a PyTorch release checkpoint.
pub fn cmd_convert(args: &ConvertArgs, log: Log) -> Result<()> {
    let out = &args.output;
    let mut inputs = vec![args.input.as_path()];
    inputs.extend(args.config.as_deref());
    check_outputs(&[("-o", out)], &inputs)?;
    let given = ConfigArgs {
        preset: args.preset.clone(),
        config: args.config.clone(),
    }
    .resolve()?;
    let choice = match given {
        ConfigOverride::Given(cfg) => ConfigChoice::Given(cfg),
        ConfigOverride::Embedded => ConfigChoice::Infer,
    };
    let done = convert_file(&args.input, &out.write_path(), &choice).map_err(|e| match e {
        ConvertError::Write(cause) => checkpoint_write_failed(out, cause),
        other => anyhow::Error::new(other),
    })?;
    log.info(format_args!(
        "wrote {} ({} parameters, epoch {}, config {}) from {} ({}; {} mask_matrix buffers checked and dropped)",
        out,
        done.params.len(),
        done.epoch,
        done.preset.map_or("given".to_string(), |p| format!("preset {p}")),
        args.input.display(),
        done.layout,
        done.dropped.len()
    ));
    Ok(())
}

/// A failed checkpoint write to `out` as the output convention has it: a
/// reader that closed the pipe ends quietly, any other failure is exit 1
/// with a message naming the output.
fn checkpoint_write_failed(out: &Output, e: CheckpointError) -> anyhow::Error {
    match e {
        CheckpointError::Io { cause, .. } => {
            anyhow::Error::new(OutputError::write(&out.to_string(), cause))
        }
        other => anyhow::Error::new(WriteFailed {
            what: out.to_string(),
            cause: other.to_string(),
        }),
    }
}

/// Writes a checkpoint of random weights.
pub fn cmd_random_checkpoint(args: &RandomCheckpointArgs, log: Log) -> Result<()> {
    let out = &args.output;
    let inputs: Vec<&Path> = args.config.file().into_iter().collect();
    check_outputs(&[("-o", out)], &inputs)?;
    let cfg = args.config.resolve_required()?;
    let weights = random_weights(&cfg, args.seed)?;
    write_weights(&out.write_path(), &cfg, weights).map_err(|e| checkpoint_write_failed(out, e))?;
    log.info(format_args!("wrote random weights for the config to {out}"));
    Ok(())
}
