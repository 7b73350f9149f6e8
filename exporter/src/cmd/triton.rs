//! `triton-repo`: a Triton Inference Server model repository.
use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use tcanet_cli::{range, refuse_output_onto_inputs, Log, Output};
use tcanet_exporter::triton_repo::{self, InstanceKind, RepoOptions};
use tcanet_exporter::{export_to_file, ExportOptions};
use tcanet_models::checkpoint::Checkpoint;

use super::args::ConfigArgs;
use super::outputs::check_dir_writable;
use super::status::WriteFailed;

/// `triton-repo`'s arguments.
#[derive(Args)]
pub struct TritonRepoArgs {
    /// A checkpoint (.safetensors: exported to ONNX first) or an exported
    /// model (.onnx: copied).
    pub input: PathBuf,
    /// The repository directory (created if needed).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// max_batch_size: videos per batch (0 to 1024; 0 turns batching off and
    /// puts B into the dims).
    #[arg(long, default_value_t = 8, value_name = "N", allow_negative_numbers = true,
          value_parser = range::int_in::<usize>(0, 1024))]
    pub max_batch: usize,
    /// Dynamic batching: microseconds a request may wait for others (0 to 10000000).
    #[arg(long, default_value_t = 1000, value_name = "US", allow_negative_numbers = true,
          value_parser = range::int_in::<u64>(0, 10_000_000))]
    pub max_queue_delay_us: u64,
    /// Model instances per GPU (or in all, with --cpu), 1 to 64.
    #[arg(long, default_value_t = 1, value_name = "K", allow_negative_numbers = true,
          value_parser = range::int_in::<usize>(1, 64))]
    pub instances: usize,
    /// Run the instances on the CPU (KIND_CPU) instead of the GPUs (KIND_GPU).
    #[arg(long, conflicts_with = "tensorrt")]
    pub cpu: bool,
    /// Use the TensorRT execution accelerator (GPU).
    #[arg(long)]
    pub tensorrt: bool,
    /// TensorRT precision FP16 (default FP32).
    #[arg(long, requires = "tensorrt")]
    pub fp16: bool,
    /// TensorRT build workspace in MiB (1 to 1048576).
    #[arg(long, default_value_t = 1024, value_name = "MIB", allow_negative_numbers = true,
          value_parser = range::int_in::<u64>(1, 1 << 20))]
    pub trt_workspace_mib: u64,
    #[command(flatten)]
    pub config: ConfigArgs,
    /// For a checkpoint: export with a symbolic T (see the export's --dynamic-time).
    #[arg(long)]
    pub dynamic_time: bool,
}

impl TritonRepoArgs {
    fn options(&self) -> RepoOptions {
        RepoOptions {
            max_batch: self.max_batch,
            max_queue_delay_us: self.max_queue_delay_us,
            instances: self.instances,
            kind: if self.cpu {
                InstanceKind::Cpu
            } else {
                InstanceKind::Gpu
            },
            tensorrt: self.tensorrt,
            fp16: self.fp16,
            workspace_bytes: self.trt_workspace_mib << 20,
        }
    }
}

/// Writes the repository (exporting a checkpoint first).
pub fn cmd_triton_repo(args: &TritonRepoArgs, log: Log) -> Result<()> {
    let opts = args.options();
    let is_onnx = args
        .input
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("onnx"));
    let model_out = triton_repo::model_file(&args.out);
    let config_out = model_out
        .parent()
        .and_then(|d| d.parent())
        .map(|d| d.join("config.pbtxt"))
        .unwrap_or_default();
    let mut inputs = vec![args.input.as_path()];
    inputs.extend(args.config.file());
    // An .onnx input already in place as the repository's model is kept.
    let onnx_in_place = is_onnx && tcanet_cli::same_file(&args.input, &model_out);
    if !onnx_in_place {
        refuse_output_onto_inputs(&Output::Path(model_out.clone()), &inputs)?;
    }
    refuse_output_onto_inputs(&Output::Path(config_out), &inputs)?;
    check_dir_writable(&args.out)?;
    let model = if is_onnx {
        args.input.clone()
    } else {
        let ckpt = Checkpoint::load(&args.input, &args.config.resolve()?)?;
        let dir = model_out.parent().unwrap_or(&args.out);
        std::fs::create_dir_all(dir).map_err(|e| WriteFailed {
            what: dir.display().to_string(),
            cause: e.to_string(),
        })?;
        let export = ExportOptions {
            dynamic_time: args.dynamic_time,
            ..ExportOptions::default()
        };
        export_to_file(&ckpt, &export, &model_out)?;
        model_out
    };
    let written = triton_repo::write_repository(&args.out, &model, &opts)?;
    log.info(format_args!(
        "wrote {} and {} (max_batch_size {}, {} instance(s){})",
        written.config.display(),
        written.model.display(),
        opts.max_batch,
        opts.instances,
        if opts.tensorrt { ", TensorRT" } else { "" }
    ));
    Ok(())
}
