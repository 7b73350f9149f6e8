//! `tcanet-infer`: TCANet inference on ONNX Runtime (no libtorch): dataset
//! runs with the paper's post-processing, shard merging, and benchmarks.
//! The subcommands live in [`cmd`]; exit statuses, outputs and messages
//! follow `tcanet_cli`'s convention.
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use tcanet_cli::{CommonFlags, ExitStatus, Log};
use tcanet_models::ModelConfig;
use tcanet_ort::{init_ort, Device, SessionSettings, TcanetModel};
use tcanet_runtime::serve::ServeFlags;
use tcanet_runtime::tensorrt_flags::TrtFlags;

mod cmd;

use cmd::args::threads;
use cmd::bench::{cmd_bench, cmd_bench_post, BenchArgs, BenchPostArgs};
use cmd::doctor::{cmd_doctor, DoctorArgs};
use cmd::merge::{cmd_merge, MergeArgs};
use cmd::postprocess::{cmd_postprocess, PostprocessArgs};
use cmd::run::{cmd_run, RunArgs};
use cmd::serve::cmd_serve;
use cmd::status::{typed_status, usage};

#[derive(Parser)]
#[command(
    name = "tcanet-infer",
    version = tcanet_version::long_version!(),
    about = "Run an exported TCANet ONNX model on a dataset and write leaderboard files",
    long_about = "Run an exported TCANet ONNX model (from tcanet-export) with ONNX Runtime on \
                  CPU, CUDA or TensorRT, apply the paper's post-processing (score fusion, \
                  Soft-NMS, top 100) and write leaderboard-format JSON.\n\n\
                  Exit status: 0 success; 2 usage error or invalid input (nothing written); \
                  1 any other failure; 3 finished with --keep-going, but some videos failed.\n\n\
                  Examples:\n  \
                  tcanet-infer run --model model.onnx --data synth/ --subset validation -o refined.json\n  \
                  tcanet-infer run --model model.onnx --data synth/ --shard 0/4 -o refined.json\n  \
                  tcanet-infer merge refined.shard-*-of-4.json -o refined.json\n  \
                  tcanet-infer postprocess --data synth/ --subset validation -o input_soft_nms.json\n  \
                  tcanet-infer bench model.onnx --proposals 100 --videos 20 --threads 2 --json\n  \
                  tcanet-infer serve --model model.onnx --listen 127.0.0.1:8000\n  \
                  tcanet-infer doctor"
)]
struct Cli {
    #[command(flatten)]
    common: CommonFlags,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Refine a dataset's input proposals and write the leaderboard file(s).
    Run(Box<RunArgs>),
    /// The post-processing alone on the input proposals (no network): Soft-NMS
    /// on the input scores, top-k, clipping; a baseline for `run`.
    Postprocess(PostprocessArgs),
    /// Join the partial files of a sharded run into one leaderboard file.
    Merge(MergeArgs),
    /// Measure latency, throughput and peak memory of a model.
    Bench(Box<BenchArgs>),
    /// Measure score fusion + Soft-NMS alone on random videos.
    BenchPost(BenchPostArgs),
    /// Serve the model over HTTP with the KServe v2 protocol (as Triton):
    /// models `tcanet` (the network) and `tcanet_refine` (with run's
    /// preparation and post-processing), dynamic batching, /metrics.
    #[command(long_about = SERVE_ABOUT)]
    Serve(Box<ServeArgs>),
    /// Check this host: the ONNX Runtime library found (where, how, its
    /// version), its execution providers and whether each works here, the
    /// CPU's vector ISA and nominal peak. Exit 1 when no library is usable.
    Doctor(DoctorArgs),
}

const SERVE_ABOUT: &str = "Serve the model over HTTP with the KServe v2 protocol, as Triton \
Inference Server does, so that Triton's clients (tritonclient.http, curl) work unchanged.\n\n\
Models:\n\
\x20 tcanet: the network as exported.\n\
\x20   in:  features FP32 [B, C, T], proposals FP32 [B, N, 2] (network units)\n\
\x20   out: proposals_1..3 FP32 [B, N, 2], iou_1..3 FP32 [B, N]\n\
\x20 tcanet_refine: what `run` computes for a video.\n\
\x20   in:  features FP32 [B, C, steps] (the video's own length), proposals FP64 [B, N, 2]\n\
\x20        (seconds), proposal_scores FP64 [B, N], duration FP64 [B, 1] (seconds)\n\
\x20   out: segments FP64 [B, K, 2] (seconds), scores FP64 [B, K], count INT32 [B, 1]\n\n\
Endpoints: GET /v2/health/live, /v2/health/ready, /v2, /v2/models/NAME,\n\
/v2/models/NAME/ready, /v2/models/NAME/config, POST /v2/models/NAME/infer (JSON or\n\
binary tensors), GET /metrics (Prometheus). Requests arriving together are batched\n\
(--max-batch-size, --max-queue-delay-us); a full queue answers 503, an oversize request\n\
413, a slow one 504, a bad one 400 naming the input. SIGTERM or SIGINT: no new\n\
connections, the requests in flight finish, exit 0. One line per request on stderr.\n\n\
Examples:\n\
\x20 tcanet-infer serve --model model.onnx --listen 127.0.0.1:8000 --threads 2\n\
\x20 tcanet-infer serve --model model.onnx --listen 0.0.0.0:8000 --device tensorrt \\\n\
\x20     --trt-fp16 --trt-engine-cache /var/cache/tcanet --max-batch-size 16 --instances 2\n\
\x20 curl -s localhost:8000/v2/models/tcanet_refine";

/// `serve`'s arguments.
#[derive(Args)]
pub(crate) struct ServeArgs {
    /// The exported model (.onnx, from tcanet-export).
    #[arg(long, value_name = "MODEL.onnx")]
    pub(crate) model: PathBuf,
    #[command(flatten)]
    pub(crate) engine: EngineArgs,
    #[command(flatten)]
    pub(crate) post: cmd::args::PostArgs,
    #[command(flatten)]
    pub(crate) server: ServeFlags,
    #[command(flatten)]
    pub(crate) common: CommonFlags,
}

/// Where ONNX Runtime is and which device to run on.
#[derive(Args, Clone)]
pub(crate) struct EngineArgs {
    /// ONNX Runtime library (file or directory). Default: ORT_DYLIB_PATH, then
    /// libonnxruntime.so* beside this binary, then the project venv.
    #[arg(long, value_name = "PATH")]
    pub(crate) ort_lib: Option<PathBuf>,
    /// Execution provider: cpu, cuda[:ID] or tensorrt[:ID]. An unusable GPU
    /// provider falls back to the CPU with a warning.
    #[arg(long, default_value = "cpu", value_name = "DEVICE")]
    pub(crate) device: String,
    /// Fail instead of falling back to the CPU when the device is unusable.
    #[arg(long)]
    pub(crate) strict_device: bool,
    /// CPU threads inside one operator, 1 to 1024 (default: ONNX Runtime's,
    /// all cores).
    #[arg(long, value_name = "N", allow_negative_numbers = true, value_parser = threads())]
    pub(crate) threads: Option<usize>,
    /// CPU threads across independent operators, 1 to 1024 (default:
    /// sequential).
    #[arg(long, value_name = "N", allow_negative_numbers = true, value_parser = threads())]
    pub(crate) inter_threads: Option<usize>,
    /// Turn off ONNX Runtime's CPU memory arena: lower peak memory (hacs:
    /// about 200 instead of 280 MB), but slower (hacs: about 250 instead of
    /// 155 ms per video on 2 threads), as large buffers are mapped afresh.
    #[arg(long)]
    pub(crate) no_cpu_arena: bool,
    /// Idle CPU threads sleep instead of spinning (often faster on a machine
    /// shared with other work).
    #[arg(long)]
    pub(crate) no_spin: bool,
    /// On the CPU, run the model's own ONNX functions (ai.tcanet.TapSum,
    /// LocalAttention, WinogradTiles, WinogradUntileRelu) as their
    /// standard-op bodies, as other ONNX runtimes do, instead of this
    /// program's kernels: the same outputs within float32 rounding, slower.
    #[arg(long)]
    pub(crate) standard_ops: bool,
    #[command(flatten)]
    pub(crate) trt: TrtFlags,
    /// Network config preset, when the model has no tcanet.config metadata.
    #[arg(long, value_name = "NAME", conflicts_with = "config")]
    pub(crate) preset: Option<String>,
    /// Network config JSON, when the model has no tcanet.config metadata.
    #[arg(long, value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,
}

impl EngineArgs {
    /// The session settings (an unknown `--device` is a usage error).
    pub(crate) fn settings(&self) -> Result<SessionSettings> {
        let device: Device = self.device.parse()?;
        Ok(SessionSettings {
            device,
            strict_device: self.strict_device,
            intra_threads: self.threads,
            inter_threads: self.inter_threads,
            tensorrt: self.trt.options(),
            optimization_level: 3,
            cpu_arena: !self.no_cpu_arena,
            intra_op_spinning: !self.no_spin,
            profile_prefix: None,
            tcanet_kernels: !self.standard_ops,
        })
    }

    /// `--preset` or `--config` (a bad one is a usage error).
    pub(crate) fn config_override(&self) -> Result<Option<ModelConfig>> {
        if let Some(p) = &self.preset {
            return Ok(Some(ModelConfig::preset(p).context("--preset")?));
        }
        if let Some(path) = &self.config {
            let text = std::fs::read_to_string(path)
                .map_err(|e| usage(format!("--config: cannot read {}: {e}", path.display())))?;
            return Ok(Some(
                ModelConfig::from_json(&text).with_context(|| path.display().to_string())?,
            ));
        }
        Ok(None)
    }

    /// Loads ONNX Runtime and the model, printing warnings.
    pub(crate) fn load_model(&self, model: &Path, log: Log) -> Result<TcanetModel> {
        let loaded = init_ort(self.ort_lib.as_deref())?;
        log.info(format_args!(
            "onnx runtime: {} ({})",
            loaded.path.display(),
            loaded.source_name
        ));
        let model = TcanetModel::load(model, &self.settings()?, self.config_override()?)?;
        for w in &model.warnings {
            log.warn(w);
        }
        Ok(model)
    }
}

/// Makes glibc serve large buffers (ONNX Runtime's intermediate tensors) with
/// mmap and give them back when freed, instead of raising its mmap threshold
/// and keeping them on the heap: about 85 MiB less peak memory for the hacs
/// model at the same speed (docs/BENCHMARKS.md). `MALLOC_MMAP_THRESHOLD_`
/// in the environment still wins.
fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_MMAP_THRESHOLD_").is_none() {
        // SAFETY: mallopt only changes allocator parameters; called before any thread starts.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, 256 * 1024);
        }
    }
}

fn main() -> ExitCode {
    tune_allocator();
    // `--version` also names the ONNX Runtime found (`not found` is no failure).
    let more = || tcanet_ort::version_line("`tcanet-infer doctor` says where it looked");
    let cli: Cli = match tcanet_cli::parse_args("tcanet-infer", more) {
        Ok(cli) => cli,
        Err(status) => return status,
    };
    let log = cli.common.log();
    let outcome = match &cli.command {
        Command::Run(args) => cmd_run(args, log),
        Command::Postprocess(args) => cmd_postprocess(args, log),
        Command::Merge(args) => cmd_merge(args, log),
        Command::Bench(args) => cmd_bench(args, log),
        Command::BenchPost(args) => cmd_bench_post(args),
        Command::Serve(args) => cmd_serve(args, log),
        Command::Doctor(args) => cmd_doctor(args),
    };
    let status = match outcome {
        Ok(status) => status,
        Err(err) => tcanet_cli::report_error(err.as_ref(), typed_status, &log),
    };
    ExitStatus::into(status)
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
