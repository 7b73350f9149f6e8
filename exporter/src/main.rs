//! `tcanet-export`: writes a TCANet checkpoint as an ONNX model, checks an
//! exported model against the checkpoint, and describes ONNX files. The
//! subcommands live in [`cmd`]; exit statuses, outputs and messages follow
//! `tcanet_cli`'s convention.
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tcanet_cli::{CommonFlags, ExitStatus};

mod cmd;

use cmd::bench::{cmd_bench, BenchArgs};
use cmd::export::{
    cmd_convert, cmd_export, cmd_random_checkpoint, ConvertArgs, ExportArgs, RandomCheckpointArgs,
};
use cmd::inspect::{cmd_inspect, InspectArgs};
use cmd::status::typed_status;
use cmd::triton::{cmd_triton_repo, TritonRepoArgs};
use cmd::verify::{cmd_verify, VerifyArgs};

/// Export a TCANet checkpoint (safetensors) to ONNX, verify an export, or inspect an ONNX file.
///
/// Exit status: 0 success; 2 usage error or invalid input (a bad flag or
/// file, an output onto an input; nothing written); 1 any other failure
/// (ONNX Runtime missing, a full disk, a closed output pipe, verify beyond
/// tolerance).
///
/// Examples:
///   tcanet-export run/checkpoint.safetensors -o model.onnx
///   tcanet-export authors.safetensors --preset hacs -o model.onnx --fp16
///   tcanet-export verify run/checkpoint.safetensors model.onnx
///   tcanet-export convert TCA_best.pth.tar -o model.safetensors
///   tcanet-export inspect model.onnx
///   tcanet-export triton-repo model.onnx --out repo/ --tensorrt --fp16
#[derive(Parser)]
#[command(
    name = "tcanet-export",
    version = tcanet_version::long_version!(),
    verbatim_doc_comment,
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(flatten)]
    common: CommonFlags,
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    export: ExportArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Compare an exported model (run by ONNX Runtime on the CPU) with an
    /// independent f64 forward pass of the checkpoint; exits 1 beyond tolerance.
    Verify(VerifyArgs),
    /// Print an ONNX file's inputs, outputs, opset, metadata, node count and op histogram.
    Inspect(InspectArgs),
    /// Measure ONNX Runtime (CPU) latency of an exported model on random inputs.
    Bench(BenchArgs),
    /// Convert a PyTorch checkpoint of the authors' TCANet release
    /// (TCA_best.pth.tar, epoch-N.pth.tar) to a tcanet checkpoint, without Python.
    ///
    /// Reads files written by torch.save, in the zip format (PyTorch >= 1.6)
    /// or the legacy one (_use_new_zipfile_serialization=False), laid out as:
    ///   {'epoch': N, 'state_dict': {...}}            TCA_best.pth.tar, TCA_checkpoint.pth.tar
    ///                                                (keys with DataParallel's `module.`)
    ///   {'epoch': N, 'model_state': {...},           epoch-N.pth.tar
    ///    'optimizer_dict': {...}}                    (the optimizer state is not kept)
    ///   {name: tensor, ...}                          a bare state dict
    ///
    /// Every parameter is checked against the model config (names and shapes);
    /// the `mask_matrix` buffers are checked (heads, T, window) and dropped.
    /// The config is the preset (hacs, anet, tiny) that matches the shapes, or
    /// the one given with --preset or --config; it is embedded in the output,
    /// with the file's epoch. No code from the file is run.
    ///
    /// Examples:
    ///   tcanet-export convert TCA_best.pth.tar -o model.safetensors
    ///   tcanet-export convert epoch-9.pth.tar --config my_config.json -o model.safetensors
    ///   tcanet-export model.safetensors -o model.onnx
    #[command(verbatim_doc_comment)]
    Convert(ConvertArgs),
    /// Write a Triton Inference Server model repository: OUT/tcanet/config.pbtxt
    /// and OUT/tcanet/1/model.onnx (Triton's ONNX Runtime backend, dynamic
    /// batching, instance groups, optionally TensorRT).
    ///
    /// Triton then serves the network (model `tcanet`, the raw outputs); the
    /// post-processing runs in the client (tcanet_runtime's postprocess
    /// functions) or in front of Triton. Requests batch together in Triton
    /// only when their N agree: pad each video's proposals to a fixed N.
    ///
    /// Examples:
    ///   tcanet-export triton-repo runs/anet/last.safetensors --out repo/
    ///   tcanet-export triton-repo model.onnx --out repo/ --max-batch 16 --instances 2 --tensorrt --fp16
    ///   tritonserver --model-repository=$PWD/repo
    #[command(verbatim_doc_comment)]
    TritonRepo(TritonRepoArgs),
    /// Write a checkpoint with random weights (PyTorch's init ranges) for a
    /// preset or config: for trying the toolchain and benchmarks, not a trained model.
    RandomCheckpoint(RandomCheckpointArgs),
}

fn main() -> ExitCode {
    // `--version` also names the ONNX Runtime `verify` and `bench` would use.
    let more = || tcanet_ort::version_line("`tcanet-infer doctor` says where it looks");
    let cli: Cli = match tcanet_cli::parse_args("tcanet-export", more) {
        Ok(cli) => cli,
        Err(status) => return status,
    };
    let log = cli.common.log();
    let done = |r: anyhow::Result<()>| r.map(|_| ExitStatus::Success);
    let outcome = match &cli.command {
        Some(Command::Verify(args)) => cmd_verify(args, log),
        Some(Command::Inspect(args)) => done(cmd_inspect(args)),
        Some(Command::Bench(args)) => done(cmd_bench(args, log)),
        Some(Command::Convert(args)) => done(cmd_convert(args, log)),
        Some(Command::TritonRepo(args)) => done(cmd_triton_repo(args, log)),
        Some(Command::RandomCheckpoint(args)) => done(cmd_random_checkpoint(args, log)),
        None => done(cmd_export(&cli.export, log)),
    };
    let status = match outcome {
        Ok(status) => status,
        Err(err) => tcanet_cli::report_error(err.as_ref(), typed_status, &log),
    };
    status.into()
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
