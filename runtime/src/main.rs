//! `tcanet-infer`: TCANet inference on ONNX Runtime (no libtorch): dataset
//! runs with the paper's post-processing, shard merging, and benchmarks.
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tcanet_cli::CommonFlags;
use tcanet_models::data::FeatureLayout;
use tcanet_models::data::{Dataset, DatasetPaths, GivenPaths};
use tcanet_models::ModelConfig;
use tcanet_ort::{init_ort, Device, DimRange, SessionSettings, TcanetModel};
use tcanet_runtime::bench::{bench_model, bench_postprocess, BenchInputs, BenchSettings};
use tcanet_runtime::classifier::ClassScores;
use tcanet_runtime::infer::{postprocess_input_dataset, run_dataset, InferSettings, RunSummary};
use tcanet_runtime::output::{merge_partials, Leaderboard, LeaderboardEntry, Shard, ShardInfo};
use tcanet_runtime::postprocess::{PostProcessOptions, SoftNmsParams};
use tcanet_runtime::refiner::{Refiner, RefinerOptions};
use tcanet_runtime::serve::{serve, ServeFlags};
use tcanet_runtime::tensorrt_flags::TrtFlags;

#[derive(Parser)]
#[command(
    name = "tcanet-infer",
    version,
    about = "Run an exported TCANet ONNX model on a dataset and write leaderboard files",
    long_about = "Run an exported TCANet ONNX model (from tcanet-export) with ONNX Runtime on \
                  CPU, CUDA or TensorRT, apply the paper's post-processing (score fusion, \
                  Soft-NMS, top 100) and write leaderboard-format JSON.\n\n\
                  Examples:\n  \
                  tcanet-infer run --model model.onnx --data synth/ --subset validation -o refined.json\n  \
                  tcanet-infer run --model model.onnx --data synth/ --shard 0/4 -o refined.json\n  \
                  tcanet-infer merge refined.shard-*-of-4.json -o refined.json\n  \
                  tcanet-infer postprocess --data synth/ --subset validation -o input_soft_nms.json\n  \
                  tcanet-infer bench model.onnx --proposals 100 --videos 20 --threads 2 --json\n  \
                  tcanet-infer serve --model model.onnx --listen 127.0.0.1:8000"
)]
struct Cli {
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
struct ServeArgs {
    /// The exported model (.onnx, from tcanet-export).
    #[arg(long, value_name = "MODEL.onnx")]
    model: PathBuf,
    #[command(flatten)]
    engine: EngineArgs,
    #[command(flatten)]
    post: PostArgs,
    #[command(flatten)]
    server: ServeFlags,
    #[command(flatten)]
    common: CommonFlags,
}

/// Where ONNX Runtime is and which device to run on.
#[derive(Args, Clone)]
struct EngineArgs {
    /// ONNX Runtime library (file or directory). Default: ORT_DYLIB_PATH, then
    /// libonnxruntime.so* beside this binary, then the project venv.
    #[arg(long, value_name = "PATH")]
    ort_lib: Option<PathBuf>,
    /// Execution provider: cpu, cuda[:ID] or tensorrt[:ID]. An unusable GPU
    /// provider falls back to the CPU with a warning.
    #[arg(long, default_value = "cpu", value_name = "DEVICE")]
    device: String,
    /// Fail instead of falling back to the CPU when the device is unusable.
    #[arg(long)]
    strict_device: bool,
    /// CPU threads inside one operator (default: ONNX Runtime's, all cores).
    #[arg(long, value_name = "N")]
    threads: Option<usize>,
    /// CPU threads across independent operators (default: sequential).
    #[arg(long, value_name = "N")]
    inter_threads: Option<usize>,
    /// Turn off ONNX Runtime's CPU memory arena: lower peak memory (hacs:
    /// about 200 instead of 280 MB), but slower (hacs: about 250 instead of
    /// 155 ms per video on 2 threads), as large buffers are mapped afresh.
    #[arg(long)]
    no_cpu_arena: bool,
    /// Idle CPU threads sleep instead of spinning (often faster on a machine
    /// shared with other work).
    #[arg(long)]
    no_spin: bool,
    #[command(flatten)]
    trt: TrtFlags,
    /// Network config preset, when the model has no tcanet.config metadata.
    #[arg(long, value_name = "NAME", conflicts_with = "config")]
    preset: Option<String>,
    /// Network config JSON, when the model has no tcanet.config metadata.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
}

impl EngineArgs {
    fn settings(&self) -> Result<SessionSettings> {
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
        })
    }

    fn config_override(&self) -> Result<Option<ModelConfig>> {
        if let Some(p) = &self.preset {
            return Ok(Some(ModelConfig::preset(p)?));
        }
        if let Some(path) = &self.config {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read config {}", path.display()))?;
            return Ok(Some(
                ModelConfig::from_json(&text).with_context(|| path.display().to_string())?,
            ));
        }
        Ok(None)
    }

    /// Loads ONNX Runtime and the model, printing warnings.
    fn load_model(&self, model: &Path) -> Result<TcanetModel> {
        let loaded = init_ort(self.ort_lib.as_deref())?;
        eprintln!(
            "onnx runtime: {} ({})",
            loaded.path.display(),
            loaded.source_name
        );
        let model = TcanetModel::load(model, &self.settings()?, self.config_override()?)?;
        for w in &model.warnings {
            eprintln!("warning: {w}");
        }
        Ok(model)
    }
}

#[derive(Clone, Copy, ValueEnum)]
enum LayoutArg {
    /// Decide from the channel count C.
    Auto,
    /// `[T, C]` (time-major).
    Tc,
    /// `[C, T]` (channel-major).
    Ct,
}

impl From<LayoutArg> for FeatureLayout {
    fn from(l: LayoutArg) -> Self {
        match l {
            LayoutArg::Auto => FeatureLayout::Auto,
            LayoutArg::Tc => FeatureLayout::TimeChannels,
            LayoutArg::Ct => FeatureLayout::ChannelsTime,
        }
    }
}

/// The dataset's files.
#[derive(Args, Clone)]
struct DataArgs {
    /// Dataset directory: shorthand for DIR/annotations.json, DIR/features,
    /// DIR/proposals.json.
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
    /// Annotations JSON (ActivityNet/HACS `database`: subset, duration).
    #[arg(long, value_name = "FILE")]
    annotations: Option<PathBuf>,
    /// Directory of per-video features `<video>.npy` (f32/f16, [T, C] or [C, T]).
    #[arg(long, value_name = "DIR")]
    features: Option<PathBuf>,
    /// Input proposals: leaderboard JSON, or a directory of `<video>.csv` (xmin,xmax,score).
    #[arg(long, value_name = "FILE|DIR")]
    proposals: Option<PathBuf>,
    /// Only the videos of this subset (e.g. validation); default: all videos.
    #[arg(long, value_name = "NAME")]
    subset: Option<String>,
    /// Layout of the .npy features.
    #[arg(long, value_enum, default_value = "auto")]
    layout: LayoutArg,
    /// Interpolate features longer than the model's T to T (HACS-style configs).
    #[arg(long)]
    resample: bool,
}

impl DataArgs {
    fn paths(&self) -> Result<DatasetPaths> {
        self.paths_for(true)
    }

    /// The dataset's paths; without `need_features` a missing `--features`
    /// is no error (the path is then empty and never read).
    fn paths_for(&self, need_features: bool) -> Result<DatasetPaths> {
        let given = GivenPaths {
            data: self.data.clone(),
            annotations: self.annotations.clone(),
            features: self.features.clone(),
            proposals: self.proposals.clone(),
        };
        Ok(DatasetPaths::resolve(&given, need_features)?)
    }
}

#[derive(Args)]
struct RunArgs {
    /// The exported model (tcanet-export).
    #[arg(long, value_name = "MODEL.onnx")]
    model: PathBuf,
    #[command(flatten)]
    data: DataArgs,
    /// Output: refined proposals, leaderboard JSON. With --shard, the partial
    /// goes to OUT's stem + `.shard-K-of-N.json`.
    #[arg(short, long, value_name = "FILE")]
    output: PathBuf,
    /// Video-level class scores (release format or ActivityNet classification
    /// submission) → also write detections.
    #[arg(long, value_name = "FILE")]
    classifier: Option<PathBuf>,
    /// Detections output (default: OUT's stem + `.detections.json`; with
    /// --shard, the partial's stem + `.detections.json`).
    #[arg(long, value_name = "FILE", requires = "classifier")]
    detections_output: Option<PathBuf>,
    /// Detections: classes per video.
    #[arg(long, default_value_t = 3, value_name = "K")]
    top_classes: usize,
    /// Detections: kept per video.
    #[arg(long, default_value_t = 200, value_name = "N")]
    max_detections: usize,
    #[command(flatten)]
    engine: EngineArgs,
    /// Cap on proposals per model call (default: all of a video in one call).
    #[arg(long, value_name = "N")]
    max_batch: Option<usize>,
    /// Use only the best N input proposals of each video (default: all).
    #[arg(long, value_name = "N")]
    max_proposals: Option<usize>,
    #[command(flatten)]
    post: PostArgs,
    /// Threads reading and preparing the next videos while the model runs.
    #[arg(long, default_value_t = 1, value_name = "N")]
    workers: usize,
    /// Go on past videos with bad data (they are reported; exit code 2).
    #[arg(long)]
    keep_going: bool,
    /// Write the per-video error report (JSON) here.
    #[arg(long, value_name = "FILE")]
    report: Option<PathBuf>,
    /// Process shard K of N (a deterministic round-robin slice) and write a
    /// partial file. Default: from SLURM_ARRAY_TASK_ID/SLURM_ARRAY_TASK_COUNT,
    /// or JOB_COMPLETION_INDEX with --shard-count, when set.
    #[arg(long, value_name = "K/N")]
    shard: Option<String>,
    /// Number of shards, for JOB_COMPLETION_INDEX (Kubernetes Indexed Jobs).
    #[arg(long, value_name = "N")]
    shard_count: Option<usize>,
    /// Print the evaluator's scores at the end (needs ground truth of --subset
    /// in the annotations).
    #[arg(long)]
    eval: bool,
}

/// The Soft-NMS options shared by `run` and `postprocess`.
#[derive(Args, Clone, Copy)]
struct PostArgs {
    /// Soft-NMS alpha of exp(-IoU^2.5 / alpha).
    #[arg(long, default_value_t = 0.4)]
    soft_nms_alpha: f64,
    /// Soft-NMS threshold t1 (threshold = t1 + (t2 - t1) * width).
    #[arg(long, default_value_t = 0.0)]
    soft_nms_t1: f64,
    /// Soft-NMS threshold t2.
    #[arg(long, default_value_t = 0.0)]
    soft_nms_t2: f64,
    /// Proposals kept per video.
    #[arg(long, default_value_t = 100)]
    top_k: usize,
}

impl PostArgs {
    fn options(&self) -> PostProcessOptions {
        PostProcessOptions {
            soft_nms: SoftNmsParams {
                alpha: self.soft_nms_alpha,
                t1: self.soft_nms_t1,
                t2: self.soft_nms_t2,
                ..SoftNmsParams::default()
            },
            top_k: self.top_k,
        }
    }
}

#[derive(Args)]
struct PostprocessArgs {
    /// The dataset (features are not read; --features, --layout and
    /// --resample are accepted and ignored).
    #[command(flatten)]
    data: DataArgs,
    /// Output: the input proposals after Soft-NMS, leaderboard JSON.
    #[arg(short, long, value_name = "FILE")]
    output: PathBuf,
    /// Use only the best N input proposals of each video (default: all).
    #[arg(long, value_name = "N")]
    max_proposals: Option<usize>,
    #[command(flatten)]
    post: PostArgs,
    /// Go on past videos with bad data (they are reported; exit code 2).
    #[arg(long)]
    keep_going: bool,
    /// Write the per-video error report (JSON) here.
    #[arg(long, value_name = "FILE")]
    report: Option<PathBuf>,
}

#[derive(Args)]
struct MergeArgs {
    /// Partial files written by `run --shard K/N` (all N of them).
    #[arg(required = true, value_name = "PARTIAL")]
    partials: Vec<PathBuf>,
    /// The merged leaderboard file.
    #[arg(short, long, value_name = "FILE")]
    output: PathBuf,
    /// Accept videos that failed in their shard (left out of the output).
    #[arg(long)]
    allow_failed: bool,
}

#[derive(Args)]
struct BenchArgs {
    /// The exported model.
    #[arg(value_name = "MODEL.onnx")]
    model: PathBuf,
    #[command(flatten)]
    engine: EngineArgs,
    /// Proposals per video (random inputs).
    #[arg(long, default_value_t = 100, value_name = "N")]
    proposals: usize,
    /// Distinct videos to time (each run once after warm-up, cycling with --repeat).
    #[arg(long, default_value_t = 20, value_name = "K")]
    videos: usize,
    /// Timed passes over the videos.
    #[arg(long, default_value_t = 1, value_name = "R")]
    repeat: usize,
    /// Untimed warm-up calls.
    #[arg(long, default_value_t = 3, value_name = "W")]
    warmup: usize,
    /// Seed of the random inputs.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Time real videos instead of random inputs (the first K of --subset).
    #[command(flatten)]
    data: DataArgs,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct BenchPostArgs {
    /// Videos.
    #[arg(long, default_value_t = 4700)]
    videos: usize,
    /// Fewest proposals per video.
    #[arg(long, default_value_t = 100)]
    min_proposals: usize,
    /// Most proposals per video.
    #[arg(long, default_value_t = 400)]
    max_proposals: usize,
    /// Threads (videos are independent).
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Timed repetitions (the median is reported).
    #[arg(long, default_value_t = 5)]
    repeat: usize,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

fn progress_bar(len: usize, what: &str) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(len as u64), ProgressDrawTarget::stderr());
    if !std::io::stderr().is_terminal() {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    bar.set_style(
        ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {per_sec} eta {eta} {msg}")
            .expect("template")
            .progress_chars("=> "),
    );
    bar.set_prefix(what.to_string());
    bar
}

fn resolve_shard(args: &RunArgs) -> Result<Option<Shard>> {
    if let Some(text) = &args.shard {
        return Ok(Some(Shard::parse(text).map_err(anyhow::Error::msg)?));
    }
    match Shard::from_env(|k| std::env::var(k).ok(), args.shard_count)
        .map_err(anyhow::Error::msg)?
    {
        Some((shard, var)) => {
            eprintln!("shard {}/{} (from {var})", shard.index, shard.count);
            Ok(Some(shard))
        }
        None => Ok(None),
    }
}

fn default_detections_path(output: &Path) -> PathBuf {
    let stem = output
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "results".into());
    output.with_file_name(format!("{stem}.detections.json"))
}

fn cmd_run(args: &RunArgs) -> Result<ExitCode> {
    let paths = args.data.paths()?;
    let shard = resolve_shard(args)?;
    let mut model = args.engine.load_model(&args.model)?;
    eprintln!(
        "model: {} (C={}, T={}, {}; device {})",
        args.model.display(),
        model.config().feat_dim,
        model.interface.time_steps,
        model.interface.precision,
        model.device
    );
    let dataset = Arc::new(Dataset::load(&paths)?);
    let classifier = args
        .classifier
        .as_deref()
        .map(ClassScores::load)
        .transpose()?
        .map(Arc::new);
    let all_videos = subset_videos(&dataset, &paths.annotations, args.data.subset.as_deref())?;
    let shard_used = shard.unwrap_or(Shard::WHOLE);
    let videos: Vec<String> = shard_used
        .indices(all_videos.len())
        .map(|i| all_videos[i].clone())
        .collect();
    let settings = InferSettings {
        post: args.post.options(),
        max_batch: args.max_batch,
        max_proposals: args.max_proposals,
        layout: args.data.layout.into(),
        resample: args.data.resample,
        workers: args.workers.max(1),
        prefetch: args.workers.max(1) + 1,
        keep_going: args.keep_going,
        top_classes: args.top_classes,
        max_detections: args.max_detections,
    };
    let bar = progress_bar(videos.len(), "videos");
    let started = Instant::now();
    let summary = run_dataset(
        &mut model,
        dataset.clone(),
        &videos,
        classifier.clone(),
        &settings,
        |_, _| bar.inc(1),
    );
    bar.finish_and_clear();
    let elapsed = started.elapsed().as_secs_f64();

    report_failures(&summary, videos.len(), args.report.as_deref())?;

    let details = format!(
        "TCANet refined proposals (tcanet-infer {}, model sha256 {})",
        env!("CARGO_PKG_VERSION"),
        model
            .interface
            .checkpoint_sha256
            .as_deref()
            .unwrap_or("unknown")
    );
    let shard_info = shard.map(|s| ShardInfo {
        index: s.index,
        count: s.count,
        assigned: videos.clone(),
        failed: summary.failures.iter().map(|f| f.video.clone()).collect(),
    });
    let proposals = Leaderboard {
        results: summary
            .results
            .iter()
            .map(|r| {
                (
                    r.video.clone(),
                    r.proposals.iter().map(LeaderboardEntry::from).collect(),
                )
            })
            .collect(),
        details: details.clone(),
        shard: shard_info.clone(),
    };
    let out_path = match shard {
        Some(s) => s.partial_path(&args.output),
        None => args.output.clone(),
    };
    proposals.write(&out_path)?;
    eprintln!(
        "wrote {} ({} videos, {:.1} s, {:.1} ms/video in the model)",
        out_path.display(),
        summary.results.len(),
        elapsed,
        1e3 * summary.model_seconds / summary.results.len().max(1) as f64
    );
    if classifier.is_some() {
        // Default: STEM.detections.json, or STEM.shard-K-of-N.detections.json.
        let det_path = match (&args.detections_output, shard) {
            (Some(d), Some(s)) => s.partial_path(d),
            (Some(d), None) => d.clone(),
            (None, _) => default_detections_path(&out_path),
        };
        let detections = Leaderboard {
            results: summary
                .results
                .iter()
                .map(|r| {
                    (
                        r.video.clone(),
                        r.detections
                            .as_deref()
                            .unwrap_or_default()
                            .iter()
                            .map(LeaderboardEntry::from)
                            .collect(),
                    )
                })
                .collect(),
            details: details.replace("refined proposals", "detections"),
            shard: shard_info,
        };
        detections.write(&det_path)?;
        eprintln!("wrote {}", det_path.display());
    }
    if args.eval {
        if let Some(s) = shard {
            eprintln!(
                "note: --eval scores shard {}/{} only (its videos against the whole subset's ground truth); evaluate the merged file for the real figures",
                s.index, s.count
            );
        }
        print_eval(args, &summary, &paths)?;
    }
    Ok(exit_status(&summary, videos.len(), args.report.as_deref()))
}

fn cmd_postprocess(args: &PostprocessArgs) -> Result<ExitCode> {
    let paths = args.data.paths_for(false)?;
    let dataset = Dataset::load(&paths)?;
    let videos = subset_videos(&dataset, &paths.annotations, args.data.subset.as_deref())?;
    let settings = InferSettings {
        post: args.post.options(),
        max_proposals: args.max_proposals,
        keep_going: args.keep_going,
        ..InferSettings::default()
    };
    let summary = postprocess_input_dataset(&dataset, &videos, &settings, |_, _| {});
    report_failures(&summary, videos.len(), args.report.as_deref())?;
    let board = Leaderboard {
        results: summary
            .results
            .iter()
            .map(|r| {
                (
                    r.video.clone(),
                    r.proposals.iter().map(LeaderboardEntry::from).collect(),
                )
            })
            .collect(),
        details: format!(
            "input proposals after Soft-NMS, no network (tcanet-infer {} postprocess)",
            env!("CARGO_PKG_VERSION")
        ),
        shard: None,
    };
    board.write(&args.output)?;
    eprintln!(
        "wrote {} ({} videos, input proposals + Soft-NMS)",
        args.output.display(),
        summary.results.len()
    );
    Ok(exit_status(&summary, videos.len(), args.report.as_deref()))
}

/// The videos of `subset` (all when `None`) in file order; an error naming the
/// annotations file when there are none.
fn subset_videos(
    dataset: &Dataset,
    annotations: &Path,
    subset: Option<&str>,
) -> Result<Vec<String>> {
    let videos = dataset.videos(subset);
    if videos.is_empty() {
        bail!(
            "{}: no videos{}",
            annotations.display(),
            subset
                .map(|s| format!(" in subset '{s}'"))
                .unwrap_or_default()
        );
    }
    Ok(videos)
}

/// Prints every failed video, writes the `--report` file, and stops (nothing
/// written) when the run stopped at the first failure (no `--keep-going`).
fn report_failures(summary: &RunSummary, total: usize, report: Option<&Path>) -> Result<()> {
    for f in &summary.failures {
        eprintln!("error: {}", f.error);
    }
    if let Some(report) = report {
        write_report(report, summary, total)?;
    }
    if summary.stopped_early {
        bail!(
            "stopped at video '{}' (pass --keep-going to skip failing videos and report them); nothing was written",
            summary.failures[0].video
        );
    }
    Ok(())
}

/// Exit status of a batch run: 0, or 2 (with a count) when any video failed.
fn exit_status(summary: &RunSummary, total: usize, report: Option<&Path>) -> ExitCode {
    if summary.failures.is_empty() {
        return ExitCode::SUCCESS;
    }
    eprintln!(
        "{} of {} videos failed (listed above{})",
        summary.failures.len(),
        total,
        report
            .map(|r| format!(" and in {}", r.display()))
            .unwrap_or_default()
    );
    ExitCode::from(2)
}

fn write_report(path: &Path, summary: &RunSummary, total: usize) -> Result<()> {
    let report = serde_json::json!({
        "videos": total,
        "processed": summary.results.len(),
        "failed": summary.failures,
        "stopped_early": summary.stopped_early,
    });
    let text = serde_json::to_string_pretty(&report)? + "\n";
    tcanet_models::io::write_atomic_bytes(path, text.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

fn print_eval(args: &RunArgs, summary: &RunSummary, paths: &DatasetPaths) -> Result<()> {
    let subset = args.data.subset.as_deref().unwrap_or("validation");
    let report = tcanet_runtime::eval::evaluate_run(&paths.annotations, subset, summary)?;
    println!("{report}");
    Ok(())
}

fn cmd_merge(args: &MergeArgs) -> Result<ExitCode> {
    let merged = merge_partials(&args.partials, args.allow_failed)?;
    merged.write(&args.output)?;
    eprintln!(
        "wrote {} ({} videos from {} partials)",
        args.output.display(),
        merged.results.len(),
        args.partials.len()
    );
    Ok(ExitCode::SUCCESS)
}

fn cmd_bench(args: &BenchArgs) -> Result<ExitCode> {
    let mut model = args.engine.load_model(&args.model)?;
    let inputs = if args.data.data.is_some() || args.data.annotations.is_some() {
        let dataset = Dataset::load(&args.data.paths()?)?;
        let videos = dataset.videos(args.data.subset.as_deref());
        BenchInputs::Dataset {
            dataset: Arc::new(dataset),
            videos: videos.into_iter().take(args.videos).collect(),
            layout: args.data.layout.into(),
            resample: args.data.resample,
        }
    } else {
        BenchInputs::Random {
            videos: args.videos,
            proposals: args.proposals,
            seed: args.seed,
        }
    };
    let settings = BenchSettings {
        warmup: args.warmup,
        repeat: args.repeat.max(1),
        threads: args.engine.threads,
    };
    let result = bench_model(&mut model, &inputs, &settings)?;
    if args.json {
        println!("{}", serde_json::to_string(&result)?);
    } else {
        println!("{result}");
    }
    Ok(ExitCode::SUCCESS)
}

fn cmd_bench_post(args: &BenchPostArgs) -> Result<ExitCode> {
    let result = bench_postprocess(
        args.videos,
        args.min_proposals,
        args.max_proposals.max(args.min_proposals),
        args.threads.max(1),
        args.repeat.max(1),
    );
    if args.json {
        println!("{}", serde_json::to_string(&result)?);
    } else {
        println!("{result}");
    }
    Ok(ExitCode::SUCCESS)
}

fn cmd_serve(args: &ServeArgs) -> Result<ExitCode> {
    let log = args.common.log();
    let loaded = init_ort(args.engine.ort_lib.as_deref())?;
    log.info(format!(
        "onnx runtime: {} ({})",
        loaded.path.display(),
        loaded.source_name
    ));
    let mut settings = args.engine.settings()?;
    let b = args.server.max_batch_size as u32;
    // TensorRT: one engine for every batch the batcher can form.
    settings.tensorrt.batch = settings
        .tensorrt
        .batch
        .or(Some(DimRange::new(1, b, b).map_err(anyhow::Error::msg)?));
    let config = args.engine.config_override()?;
    let models = (0..args.server.instances)
        .map(|_| TcanetModel::load(&args.model, &settings, config.clone()))
        .collect::<Result<Vec<_>, _>>()?;
    let options = RefinerOptions {
        post: args.post.options(),
        max_proposals: args.server.max_proposals,
        resample: args.server.resample,
        max_call_proposals: None,
        batch_videos: args.server.max_batch_size,
    };
    let refiner = Refiner::from_models(models, options);
    for w in refiner.warnings() {
        log.warn(w);
    }
    log.info(format!(
        "model: {} (C={}, T={}, {}; device {}; {} instance(s))",
        args.model.display(),
        refiner.config().feat_dim,
        refiner.interface().time_steps,
        refiner.interface().precision,
        refiner.device(),
        refiner.sessions()
    ));
    serve(Arc::new(refiner), &args.server, log)?;
    Ok(ExitCode::SUCCESS)
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
    let cli = Cli::parse();
    let outcome = match &cli.command {
        Command::Run(args) => cmd_run(args),
        Command::Postprocess(args) => cmd_postprocess(args),
        Command::Merge(args) => cmd_merge(args),
        Command::Bench(args) => cmd_bench(args),
        Command::BenchPost(args) => cmd_bench_post(args),
        Command::Serve(args) => cmd_serve(args),
    };
    match outcome {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
