//! `tcanet-export`: writes a TCANet checkpoint as an ONNX model, checks an
//! exported model against the checkpoint, and describes ONNX files.
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use tcanet_cli::range;
use tcanet_exporter::inspect::inspect_file;
use tcanet_exporter::ort_run::{self, OnnxModel};
use tcanet_exporter::profile::RegionSummary;
use tcanet_exporter::random_weights::{random_weights, write_weights};
use tcanet_exporter::triton_repo::{self, InstanceKind, RepoOptions};
use tcanet_exporter::verify::{compare, random_inputs, Tolerances};
use tcanet_exporter::{
    export_to_file, reference, ExportOptions, Precision, DEFAULT_OPSET, SUPPORTED_OPSETS,
};
use tcanet_models::checkpoint::{read_tensor_file, Checkpoint, ConfigOverride, KEY_CONFIG};
use tcanet_models::cpu::{CpuInfo, NominalPeak, VectorIsa};
use tcanet_models::flops::multiply_adds;
use tcanet_models::onnx::{
    INPUT_FEATURES, INPUT_PROPOSALS, META_CHECKPOINT_SHA256, META_CONFIG, META_PRECISION,
};
use tcanet_models::pytorch::convert::{convert_file, ConfigChoice};
use tcanet_models::ModelConfig;

/// Export a TCANet checkpoint (safetensors) to ONNX, verify an export, or inspect an ONNX file.
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
    version = tcanet_cli::LONG_VERSION,
    verbatim_doc_comment,
    args_conflicts_with_subcommands = true
)]
struct Cli {
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
    Inspect {
        /// The .onnx file.
        model: PathBuf,
        /// Also list every node name.
        #[arg(long)]
        nodes: bool,
    },
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
    RandomCheckpoint {
        /// Output .safetensors file.
        #[arg(short, long)]
        output: PathBuf,
        #[command(flatten)]
        config: ConfigArgs,
        /// Random seed.
        #[arg(long, default_value_t = 0)]
        seed: u64,
    },
}

#[derive(Args, Clone, Default)]
struct ConfigArgs {
    /// Model config preset for checkpoints without an embedded config
    /// (hacs, anet, tiny); overrides an embedded one.
    #[arg(long, value_name = "NAME", conflicts_with = "config")]
    preset: Option<String>,
    /// Model config JSON file (ModelConfig; absent fields take the hacs values);
    /// overrides an embedded one.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
}

impl ConfigArgs {
    fn resolve(&self) -> Result<ConfigOverride> {
        Ok(match (&self.preset, &self.config) {
            (Some(name), _) => {
                ConfigOverride::Given(ModelConfig::preset(name).context("--preset")?)
            }
            (None, Some(path)) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read --config {}", path.display()))?;
                ConfigOverride::Given(
                    ModelConfig::from_json(&text)
                        .with_context(|| format!("--config {}", path.display()))?,
                )
            }
            (None, None) => ConfigOverride::Embedded,
        })
    }

    fn resolve_required(&self) -> Result<ModelConfig> {
        match self.resolve()? {
            ConfigOverride::Given(c) => Ok(c),
            ConfigOverride::Embedded => {
                bail!("give the model config with --preset NAME or --config FILE")
            }
        }
    }
}

#[derive(Args)]
struct ExportArgs {
    /// The checkpoint (.safetensors) to export.
    checkpoint: Option<PathBuf>,
    /// Output ONNX file (written atomically: nothing is left behind on error).
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
    #[command(flatten)]
    config: ConfigArgs,
    /// ONNX opset to target.
    #[arg(long, default_value_t = DEFAULT_OPSET)]
    opset: i64,
    /// float16 weights and compute (inputs and outputs stay float32).
    #[arg(long)]
    fp16: bool,
    /// Accept any number of feature steps T (the local attention window and
    /// the sampling positions are computed in the graph). Default: T fixed to the
    /// config's temporal_scale, as the release (which zero-pads to T).
    #[arg(long)]
    dynamic_time: bool,
    /// MiB one gather of the TBR heads' first convs may fetch at 100
    /// proposals per video (1..=1024; smaller suits smaller caches; the
    /// outputs are the same).
    #[arg(long, value_name = "MIB", default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=1024))]
    gather_chunk_mib: u32,
    /// int8 weights and dynamically quantized activations for the large
    /// matrix products (LGTE projections and FFN, TBR tap tables,
    /// reg_1d_o.0); faster on CPUs, outputs within ~1e-3 of float32 (see
    /// docs/BENCHMARKS.md). float32 only.
    #[arg(long, conflicts_with = "fp16")]
    int8: bool,
}

#[derive(Args)]
struct ConvertArgs {
    /// The PyTorch checkpoint (a torch.save file, e.g. TCA_best.pth.tar).
    input: PathBuf,
    /// Output checkpoint (.safetensors, format tcanet-checkpoint/1); written
    /// atomically, never onto INPUT.
    #[arg(short, long, value_name = "FILE")]
    output: PathBuf,
    /// Use this preset (hacs, anet, tiny) instead of the one matching the shapes.
    #[arg(long, value_name = "NAME", conflicts_with = "config")]
    preset: Option<String>,
    /// Use this model config JSON file (ModelConfig; absent fields take the hacs
    /// values): for weights trained with other settings than a preset's.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
}

#[derive(Args)]
struct TritonRepoArgs {
    /// A checkpoint (.safetensors: exported to ONNX first) or an exported
    /// model (.onnx: copied).
    input: PathBuf,
    /// The repository directory (created if needed).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// max_batch_size: videos per batch (0 to 1024; 0 turns batching off and
    /// puts B into the dims).
    #[arg(long, default_value_t = 8, value_name = "N",
          value_parser = range::int_in::<usize>(0, 1024))]
    max_batch: usize,
    /// Dynamic batching: microseconds a request may wait for others (0 to 10000000).
    #[arg(long, default_value_t = 1000, value_name = "US",
          value_parser = range::int_in::<u64>(0, 10_000_000))]
    max_queue_delay_us: u64,
    /// Model instances per GPU (or in all, with --cpu), 1 to 64.
    #[arg(long, default_value_t = 1, value_name = "K",
          value_parser = range::int_in::<usize>(1, 64))]
    instances: usize,
    /// Run the instances on the CPU (KIND_CPU) instead of the GPUs (KIND_GPU).
    #[arg(long, conflicts_with = "tensorrt")]
    cpu: bool,
    /// Use the TensorRT execution accelerator (GPU).
    #[arg(long)]
    tensorrt: bool,
    /// TensorRT precision FP16 (default FP32).
    #[arg(long, requires = "tensorrt")]
    fp16: bool,
    /// TensorRT build workspace in MiB (1 to 1048576).
    #[arg(long, default_value_t = 1024, value_name = "MIB",
          value_parser = range::int_in::<u64>(1, 1 << 20))]
    trt_workspace_mib: u64,
    #[command(flatten)]
    config: ConfigArgs,
    /// For a checkpoint: export with a symbolic T (see the export's --dynamic-time).
    #[arg(long)]
    dynamic_time: bool,
}

#[derive(Args)]
struct BenchArgs {
    /// The exported .onnx file.
    model: PathBuf,
    /// Videos per run.
    #[arg(long, default_value_t = 1)]
    batch: usize,
    /// Proposals per video.
    #[arg(long, default_value_t = 100)]
    proposals: usize,
    /// Timed runs (after 2 warm-up runs).
    #[arg(long, default_value_t = 20)]
    runs: usize,
    /// ONNX Runtime intra-op threads (0: its default, all cores).
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// ONNX Runtime library (default: ORT_DYLIB_PATH, beside the executable, the project venv).
    #[arg(long, value_name = "PATH")]
    ort_lib: Option<PathBuf>,
    /// Also profile `--runs` runs in a second session with ONNX Runtime's
    /// profiler, write its JSON to FILE and print the time per network region.
    #[arg(long, value_name = "FILE")]
    profile: Option<PathBuf>,
    /// Clock in GHz for the nominal peak (default: `cpu MHz` of /proc/cpuinfo).
    #[arg(long, value_name = "GHZ", value_parser = parse_ghz)]
    cpu_ghz: Option<f64>,
    /// Vector ISA assumed for the nominal peak (avx512f, avx2, avx, sse2,
    /// neon, scalar; default: detected).
    #[arg(long, value_name = "ISA")]
    isa: Option<VectorIsa>,
    /// Print the figures as one JSON object.
    #[arg(long)]
    json: bool,
}

/// A clock in GHz: finite, in (0, 20].
fn parse_ghz(s: &str) -> Result<f64, String> {
    let v: f64 = s.parse().map_err(|_| format!("`{s}` is not a number"))?;
    if v.is_finite() && v > 0.0 && v <= 20.0 {
        Ok(v)
    } else {
        Err(format!("{v} GHz is outside (0, 20]"))
    }
}

#[derive(Args)]
struct VerifyArgs {
    /// The checkpoint the model was exported from.
    checkpoint: PathBuf,
    /// The exported .onnx file.
    model: PathBuf,
    #[command(flatten)]
    config: ConfigArgs,
    /// Videos per random batch.
    #[arg(long, default_value_t = 2)]
    batch: usize,
    /// Proposals per video in the random batch.
    #[arg(long, default_value_t = 16)]
    proposals: usize,
    /// Seed of the random inputs.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Also compare on your own inputs: a safetensors file with `features`
    /// [B, C, T] and `proposals` [B, N, 2] (float32, the network's units).
    #[arg(long, value_name = "FILE")]
    inputs: Option<PathBuf>,
    /// ONNX Runtime library (default: ORT_DYLIB_PATH, beside the executable, the project venv).
    #[arg(long, value_name = "PATH")]
    ort_lib: Option<PathBuf>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Command::Verify(args)) => verify(&args),
        Some(Command::Inspect { model, nodes }) => inspect(&model, nodes).map(|_| true),
        Some(Command::Bench(args)) => bench(&args).map(|_| true),
        Some(Command::Convert(args)) => convert(&args).map(|_| true),
        Some(Command::TritonRepo(args)) => triton_repo(&args).map(|_| true),
        Some(Command::RandomCheckpoint {
            output,
            config,
            seed,
        }) => random_checkpoint(&output, &config, seed).map(|_| true),
        None => export(&cli.export).map(|_| true),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn export(args: &ExportArgs) -> Result<()> {
    let Some(ckpt_path) = &args.checkpoint else {
        bail!("give a checkpoint to export: tcanet-export CHECKPOINT -o model.onnx (see --help)");
    };
    let Some(out) = &args.output else {
        bail!("give the output file with -o model.onnx");
    };
    if !SUPPORTED_OPSETS.contains(&args.opset) {
        bail!(
            "unsupported --opset {}: choose one of {}..={}",
            args.opset,
            SUPPORTED_OPSETS.start(),
            SUPPORTED_OPSETS.end()
        );
    }
    let start = Instant::now();
    let ckpt = Checkpoint::load(ckpt_path, &args.config.resolve()?)?;
    if let Some(embedded) = ckpt.metadata.get(KEY_CONFIG) {
        if !ckpt.config_embedded
            && ModelConfig::from_json(embedded).ok().as_ref() != Some(&ckpt.config)
        {
            eprintln!(
                "warning: {} carries a different model config; using the one from --preset/--config",
                ckpt_path.display()
            );
        }
    }
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
    };
    let summary = export_to_file(&ckpt, &opts, out)?;
    eprintln!(
        "wrote {} ({:.1} MB, {} nodes, {} initializers, opset {}, {}) from {} (config {}) in {:.2} s",
        out.display(),
        summary.bytes as f64 / 1e6,
        summary.nodes,
        summary.initializers,
        opts.opset,
        if opts.int8 { "fp32 + int8" } else { opts.precision.as_str() },
        ckpt_path.display(),
        if ckpt.config_embedded { "embedded" } else { "given" },
        start.elapsed().as_secs_f64()
    );
    Ok(())
}

fn inspect(model: &Path, nodes: bool) -> Result<()> {
    let summary = inspect_file(model)?;
    print!("{summary}");
    if nodes {
        println!("node names:");
        for n in &summary.node_names {
            println!("  {n}");
        }
    }
    Ok(())
}

fn bench(args: &BenchArgs) -> Result<()> {
    if args.runs == 0 || args.batch == 0 || args.proposals == 0 {
        bail!("--runs, --batch and --proposals must be at least 1");
    }
    let summary = inspect_file(&args.model)?;
    let cfg_json = summary.metadata_value(META_CONFIG).with_context(|| {
        format!(
            "{} has no tcanet.config metadata: not a tcanet export",
            args.model.display()
        )
    })?;
    let cfg = ModelConfig::from_json(cfg_json).context("metadata tcanet.config")?;
    ort_run::init(args.ort_lib.as_deref())?;
    let mut model = OnnxModel::load(&args.model, args.threads)?;
    let times = time_runs(&mut model, &cfg, args)?;
    let figures = BenchFigures::new(&cfg, args, &times);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&figures.to_json())?);
    } else {
        print!("{figures}");
    }
    if let Some(out) = &args.profile {
        let regions = profile_runs(&cfg, args, out)?;
        print!("{regions}");
        eprintln!("ONNX Runtime profile written to {}", out.display());
    }
    Ok(())
}

/// Latencies (ms, sorted) of `--runs` runs after 2 warm-up runs.
fn time_runs(model: &mut OnnxModel, cfg: &ModelConfig, args: &BenchArgs) -> Result<Vec<f64>> {
    let (b, n) = (args.batch, args.proposals);
    let (features, proposals) = random_inputs(cfg, b, n, 0);
    let shape = [b, cfg.feat_dim, cfg.temporal_scale];
    for _ in 0..2 {
        model.run(&features, shape, &proposals, n)?;
    }
    let bar = indicatif::ProgressBar::new(args.runs as u64);
    let mut times = Vec::with_capacity(args.runs);
    for _ in 0..args.runs {
        let start = Instant::now();
        model.run(&features, shape, &proposals, n)?;
        times.push(start.elapsed().as_secs_f64() * 1e3);
        bar.inc(1);
    }
    bar.finish_and_clear();
    times.sort_by(f64::total_cmp);
    Ok(times)
}

/// Runs `--runs` runs in a profiled session, moves the profile to `out` and
/// sums it by region.
fn profile_runs(cfg: &ModelConfig, args: &BenchArgs, out: &Path) -> Result<RegionSummary> {
    let dir = tempfile_dir(out)?;
    let mut model = OnnxModel::load_profiled(&args.model, args.threads, &dir.join("ort"))?;
    time_runs(&mut model, cfg, args)?;
    let written = model.end_profiling()?;
    let json = std::fs::read_to_string(&written)
        .with_context(|| format!("cannot read the profile {}", written.display()))?;
    tcanet_cli::write_atomic_bytes(out, json.as_bytes())
        .with_context(|| format!("cannot write {}", out.display()))?;
    let _ = std::fs::remove_dir_all(&dir);
    let nodes = tcanet_exporter::profile::node_times(&json)?;
    Ok(RegionSummary::new(&nodes, 12))
}

/// A fresh directory beside `out` for ONNX Runtime's profile file.
fn tempfile_dir(out: &Path) -> Result<PathBuf> {
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let dir = parent.join(format!(".tcanet-profile-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    Ok(dir)
}

/// What `bench` reports: latency percentiles, arithmetic rate, peak memory.
struct BenchFigures {
    model: String,
    batch: usize,
    proposals: usize,
    threads: usize,
    times: Vec<f64>,
    gflop: f64,
    peak: NominalPeak,
    peak_rss_mib: f64,
}

impl BenchFigures {
    fn new(cfg: &ModelConfig, args: &BenchArgs, times: &[f64]) -> Self {
        let threads = (args.threads > 0).then_some(args.threads);
        let peak = NominalPeak::of_host(&CpuInfo::read(), threads, args.cpu_ghz, args.isa);
        Self {
            model: args.model.display().to_string(),
            batch: args.batch,
            proposals: args.proposals,
            threads: peak.threads,
            times: times.to_vec(),
            gflop: multiply_adds(cfg, args.batch, args.proposals).flops() / 1e9,
            peak,
            peak_rss_mib: peak_rss_mib(),
        }
    }

    fn percentile(&self, p: f64) -> f64 {
        let i = ((self.times.len() - 1) as f64 * p).round() as usize;
        self.times[i]
    }

    fn gflops(&self) -> f64 {
        self.gflop / (self.percentile(0.5) / 1e3)
    }

    fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "model": self.model, "batch": self.batch, "proposals": self.proposals,
            "threads": self.threads, "runs": self.times.len(),
            "p50_ms": self.percentile(0.5), "p90_ms": self.percentile(0.9),
            "min_ms": self.times[0], "p50_ms_per_video": self.percentile(0.5) / self.batch as f64,
            "times_ms": self.times,
            "gflop_per_call": self.gflop, "gflops": self.gflops(),
            "isa": self.peak.isa.as_str(), "cpu_ghz": self.peak.ghz,
            "nominal_peak_gflops": self.peak.gflops(),
            "fraction_of_peak": self.peak.fraction(self.gflops()),
            "peak_rss_mib": self.peak_rss_mib,
        })
    }
}

impl std::fmt::Display for BenchFigures {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "{}: B={} N={}, {} runs, {} threads: p50 {:.2} ms, p90 {:.2} ms, min {:.2} ms ({:.2} ms per video); peak RSS {:.0} MiB",
            self.model, self.batch, self.proposals, self.times.len(), self.threads,
            self.percentile(0.5), self.percentile(0.9), self.times[0],
            self.percentile(0.5) / self.batch as f64, self.peak_rss_mib
        )?;
        writeln!(
            f,
            "{:.2} GFLOP per call: {:.1} GFLOP/s at p50, {:.0}% of {}",
            self.gflop,
            self.gflops(),
            100.0 * self.peak.fraction(self.gflops()),
            self.peak
        )
    }
}

/// Peak resident memory of this process (`VmHWM`), MiB (NaN if unknown).
fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn convert(args: &ConvertArgs) -> Result<()> {
    let given = ConfigArgs {
        preset: args.preset.clone(),
        config: args.config.clone(),
    }
    .resolve()?;
    let choice = match given {
        ConfigOverride::Given(cfg) => ConfigChoice::Given(cfg),
        ConfigOverride::Embedded => ConfigChoice::Infer,
    };
    let done = convert_file(&args.input, &args.output, &choice)?;
    eprintln!(
        "wrote {} ({} parameters, epoch {}, config {}) from {} ({}; {} mask_matrix buffers checked and dropped)",
        args.output.display(),
        done.params.len(),
        done.epoch,
        done.preset.map_or("given".to_string(), |p| format!("preset {p}")),
        args.input.display(),
        done.layout,
        done.dropped.len()
    );
    Ok(())
}

fn triton_repo(args: &TritonRepoArgs) -> Result<()> {
    let opts = RepoOptions {
        max_batch: args.max_batch,
        max_queue_delay_us: args.max_queue_delay_us,
        instances: args.instances,
        kind: if args.cpu {
            InstanceKind::Cpu
        } else {
            InstanceKind::Gpu
        },
        tensorrt: args.tensorrt,
        fp16: args.fp16,
        workspace_bytes: args.trt_workspace_mib << 20,
    };
    let is_onnx = args
        .input
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("onnx"));
    let model = if is_onnx {
        args.input.clone()
    } else {
        let ckpt = Checkpoint::load(&args.input, &args.config.resolve()?)?;
        let out = triton_repo::model_file(&args.out);
        let dir = out
            .parent()
            .expect("the model file is inside the repository");
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let export = ExportOptions {
            dynamic_time: args.dynamic_time,
            ..ExportOptions::default()
        };
        export_to_file(&ckpt, &export, &out)?;
        out
    };
    let written = triton_repo::write_repository(&args.out, &model, &opts)?;
    eprintln!(
        "wrote {} and {} (max_batch_size {}, {} instance(s){})",
        written.config.display(),
        written.model.display(),
        opts.max_batch,
        opts.instances,
        if opts.tensorrt { ", TensorRT" } else { "" }
    );
    Ok(())
}

fn random_checkpoint(out: &Path, config: &ConfigArgs, seed: u64) -> Result<()> {
    let cfg = config.resolve_required()?;
    let weights = random_weights(&cfg, seed);
    write_weights(out, &cfg, &weights)
        .with_context(|| format!("cannot write {}", out.display()))?;
    eprintln!("wrote random weights for the config to {}", out.display());
    Ok(())
}

fn verify(args: &VerifyArgs) -> Result<bool> {
    let ckpt = Checkpoint::load(&args.checkpoint, &args.config.resolve()?)?;
    let summary = inspect_file(&args.model)?;
    let precision = match summary.metadata_value(META_PRECISION) {
        Some("fp16") => Precision::Fp16,
        _ => Precision::Fp32,
    };
    if let Some(cfg_json) = summary.metadata_value(META_CONFIG) {
        let model_cfg = ModelConfig::from_json(cfg_json)
            .with_context(|| format!("{}: metadata tcanet.config", args.model.display()))?;
        if model_cfg != ckpt.config {
            bail!(
                "{} was exported with another model config than {} has",
                args.model.display(),
                args.checkpoint.display()
            );
        }
    }
    if let Some(sha) = summary.metadata_value(META_CHECKPOINT_SHA256) {
        if sha != ckpt.sha256 {
            eprintln!(
                "note: {} was exported from a different file (SHA-256 {sha}, this one {})",
                args.model.display(),
                ckpt.sha256
            );
        }
    }
    let lib = ort_run::init(args.ort_lib.as_deref())?;
    eprintln!("ONNX Runtime: {}", lib.display());
    let mut model = OnnxModel::load(&args.model, 0)?;
    let tol = Tolerances::for_precision(precision);
    let cfg = &ckpt.config;
    let dynamic_time = summary
        .inputs
        .iter()
        .find(|i| i.name == "features")
        .and_then(|i| i.dims.get(2))
        .is_some_and(|d| d.parse::<usize>().is_err());
    let mut steps = vec![cfg.temporal_scale];
    if dynamic_time {
        steps.push(cfg.temporal_scale * 3 / 4 + 1);
    }
    let mut cases = Vec::new();
    for &t in &steps {
        let cfg_t = reference::config_for_steps(cfg, t);
        let (features, proposals) = random_inputs(&cfg_t, args.batch, args.proposals, args.seed);
        cases.push((
            format!(
                "random inputs: B={} N={} T={t} seed {} ({}; proposals partly outside the timeline)",
                args.batch,
                args.proposals,
                args.seed,
                precision.as_str()
            ),
            features,
            proposals,
            [args.batch, args.proposals, t],
        ));
    }
    if let Some(path) = &args.inputs {
        let (f, p, [b, n, t]) = read_inputs(path, cfg, dynamic_time)?;
        cases.push((
            format!("inputs from {} (B={b} N={n} T={t})", path.display()),
            f,
            p,
            [b, n, t],
        ));
    }
    let mut ok = true;
    for (label, features, proposals, [b, n, t]) in cases {
        let onnx = model.run(&features, [b, cfg.feat_dim, t], &proposals, n)?;
        let spinner = indicatif::ProgressBar::new_spinner()
            .with_message(format!("f64 reference forward of {b} video(s)"));
        spinner.enable_steady_tick(std::time::Duration::from_millis(120));
        let reference = reference::forward_with_steps(&ckpt, t, &features, &proposals, b, n);
        spinner.finish_and_clear();
        let report = compare(&label, &onnx, &reference, tol);
        print!("{report}");
        ok &= report.passed();
    }
    println!("{}", if ok { "parity: ok" } else { "parity: FAILED" });
    Ok(ok)
}

/// Reads `features` and `proposals` (float32) from a safetensors file.
fn read_inputs(
    path: &Path,
    cfg: &ModelConfig,
    dynamic_time: bool,
) -> Result<(Vec<f32>, Vec<f32>, [usize; 3])> {
    let mut file = read_tensor_file(path).context("--inputs")?;
    let mut get = |name: &str| {
        file.tensors
            .remove(name)
            .with_context(|| format!("{}: no tensor `{name}`", path.display()))
    };
    let (fs, f) = get(INPUT_FEATURES)?;
    let (ps, p) = get(INPUT_PROPOSALS)?;
    let t_ok = |t: usize| {
        if dynamic_time {
            t > 0
        } else {
            t == cfg.temporal_scale
        }
    };
    if fs.len() != 3 || fs[1] != cfg.feat_dim || !t_ok(fs[2]) {
        let t = if dynamic_time {
            "T".to_string()
        } else {
            cfg.temporal_scale.to_string()
        };
        bail!(
            "{}: `features` has shape {fs:?}, the model needs [B, {}, {t}]",
            path.display(),
            cfg.feat_dim,
        );
    }
    if ps.len() != 3 || ps[0] != fs[0] || ps[2] != 2 {
        bail!(
            "{}: `proposals` has shape {ps:?}, the model needs [{}, N, 2]",
            path.display(),
            fs[0]
        );
    }
    Ok((f, p, [fs[0], ps[1], fs[2]]))
}
