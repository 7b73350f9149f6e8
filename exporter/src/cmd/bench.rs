//! `bench`: ONNX Runtime (CPU) latency of an exported model on random inputs.
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Args;
use tcanet_cli::{range, write_stdout, Log, Output};
use tcanet_exporter::inspect::inspect_file;
use tcanet_exporter::ort_run::{self, OnnxModel, OpenOptions};
use tcanet_exporter::profile::RegionSummary;
use tcanet_exporter::verify::random_inputs;
use tcanet_models::cpu::{CpuInfo, NominalPeak, VectorIsa};
use tcanet_models::flops::multiply_adds;
use tcanet_models::onnx::META_CONFIG;
use tcanet_models::stats::{percentile, sort_samples};
use tcanet_models::ModelConfig;

use super::args::{MAX_BENCH_BATCH, MAX_BENCH_PROPOSALS, MAX_RUNS, MAX_THREADS};
use super::outputs::check_outputs;
use super::status::{usage, WriteFailed};

/// `bench`'s arguments.
#[derive(Args)]
pub struct BenchArgs {
    /// The exported .onnx file.
    pub model: PathBuf,
    /// Videos per run, 1 to 1024.
    #[arg(long, default_value_t = 1, value_name = "B", allow_negative_numbers = true,
          value_parser = range::int_in::<usize>(1, MAX_BENCH_BATCH))]
    pub batch: usize,
    /// Proposals per video, 1 to 10000.
    #[arg(long, default_value_t = 100, value_name = "N", allow_negative_numbers = true,
          value_parser = range::int_in::<usize>(1, MAX_BENCH_PROPOSALS))]
    pub proposals: usize,
    /// Timed runs, 1 to 100000.
    #[arg(long, default_value_t = 20, value_name = "N", allow_negative_numbers = true,
          value_parser = range::int_in::<usize>(1, MAX_RUNS))]
    pub runs: usize,
    /// Untimed warm-up runs before the timed ones, 0 to 100000.
    #[arg(long, default_value_t = 2, value_name = "N", allow_negative_numbers = true,
          value_parser = range::int_in::<usize>(0, MAX_RUNS))]
    pub warmup: usize,
    /// ONNX Runtime intra-op threads, 0 to 1024 (0: its default, all cores).
    #[arg(long, default_value_t = 0, value_name = "N", allow_negative_numbers = true,
          value_parser = range::int_in::<usize>(0, MAX_THREADS))]
    pub threads: usize,
    /// ONNX Runtime library (default: ORT_DYLIB_PATH, beside the executable, the project venv).
    #[arg(long, value_name = "PATH")]
    pub ort_lib: Option<PathBuf>,
    /// Also profile `--runs` runs in a second session with ONNX Runtime's
    /// profiler, write its JSON to FILE and print the time per network region.
    #[arg(long, value_name = "FILE")]
    pub profile: Option<Output>,
    /// Clock in GHz for the nominal peak, a finite number in (0, 20]
    /// (default: `cpu MHz` of /proc/cpuinfo).
    #[arg(long, value_name = "GHZ", allow_negative_numbers = true,
          value_parser = range::float_in(0.0, false, 20.0, true))]
    pub cpu_ghz: Option<f64>,
    /// Vector ISA assumed for the nominal peak (avx512f, avx2, avx, sse2,
    /// neon, scalar; default: detected).
    #[arg(long, value_name = "ISA")]
    pub isa: Option<VectorIsa>,
    /// Run the model's own functions (`ai.tcanet.TapSum`, `LocalAttention`,
    /// `WinogradTiles`, `WinogradUntileRelu`) as their standard ONNX
    /// bodies, as other ONNX runtimes do, instead of the project's kernels
    /// (to compare the two).
    #[arg(long)]
    pub standard_ops: bool,
    /// Print the figures as one JSON object.
    #[arg(long)]
    pub json: bool,
}

/// Times the model and prints the figures (and the profile by region).
pub fn cmd_bench(args: &BenchArgs, log: Log) -> Result<()> {
    if let Some(profile) = &args.profile {
        let figures = Output::Stdout;
        check_outputs(
            &[
                ("the figures (standard output)", &figures),
                ("--profile", profile),
            ],
            &[args.model.as_path()],
        )?;
    }
    let summary = inspect_file(&args.model)?;
    let cfg_json = summary.metadata_value(META_CONFIG).ok_or_else(|| {
        usage(format!(
            "{} has no tcanet.config metadata: not a tcanet export (export it with tcanet-export)",
            args.model.display()
        ))
    })?;
    let cfg = ModelConfig::from_json(cfg_json).map_err(|e| {
        usage(format!(
            "{}: metadata tcanet.config: {e} (export the model again)",
            args.model.display()
        ))
    })?;
    ort_run::init(args.ort_lib.as_deref())?;
    let mut model = OnnxModel::open(&args.model, &open_options(args, None))?;
    let times = time_runs(&mut model, &cfg, args)?;
    let figures = BenchFigures::new(&cfg, args, &times);
    let text = if args.json {
        serde_json::to_string_pretty(&figures.to_json())? + "\n"
    } else {
        figures.to_string()
    };
    write_stdout(|w| w.write_all(text.as_bytes()))?;
    if let Some(out) = &args.profile {
        let regions = profile_runs(&cfg, args, out)?;
        write_stdout(|w| write!(w, "{regions}"))?;
        log.info(format_args!("ONNX Runtime profile written to {out}"));
    }
    Ok(())
}

/// The session `bench` asks for, profiled to `profile_prefix` if given.
fn open_options(args: &BenchArgs, profile_prefix: Option<PathBuf>) -> OpenOptions {
    OpenOptions {
        threads: args.threads,
        profile_prefix,
        standard_ops: args.standard_ops,
    }
}

/// Latencies (ms, sorted) of `--runs` runs after `--warmup` runs.
fn time_runs(model: &mut OnnxModel, cfg: &ModelConfig, args: &BenchArgs) -> Result<Vec<f64>> {
    let (b, n) = (args.batch, args.proposals);
    let (features, proposals) = random_inputs(cfg, b, n, 0);
    let shape = [b, cfg.feat_dim, cfg.temporal_scale];
    for _ in 0..args.warmup {
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
    sort_samples(&mut times);
    Ok(times)
}

/// Runs `--runs` runs in a profiled session, writes the profile to `out`
/// and sums it by region.
fn profile_runs(cfg: &ModelConfig, args: &BenchArgs, out: &Output) -> Result<RegionSummary> {
    let dir = scratch_dir()?;
    let result = (|| {
        let options = open_options(args, Some(dir.join("ort")));
        let mut model = OnnxModel::open(&args.model, &options)?;
        time_runs(&mut model, cfg, args)?;
        let written = model.end_profiling()?;
        std::fs::read_to_string(&written)
            .with_context(|| format!("cannot read ONNX Runtime's profile {}", written.display()))
    })();
    let _ = std::fs::remove_dir_all(&dir);
    let json = result?;
    out.write_bytes(json.as_bytes())?;
    let nodes = tcanet_exporter::profile::node_times(&json)?;
    Ok(RegionSummary::new(&nodes, 12))
}

/// A fresh directory in the temporary directory for ONNX Runtime's profile.
fn scratch_dir() -> Result<PathBuf> {
    let dir: PathBuf = std::env::temp_dir().join(format!(".tcanet-profile-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| WriteFailed {
        what: dir.display().to_string(),
        cause: e.to_string(),
    })?;
    Ok(dir)
}

/// What `bench` reports: latency percentiles, arithmetic rate, peak memory.
struct BenchFigures {
    model: String,
    batch: usize,
    proposals: usize,
    threads: usize,
    /// Latencies in ms, sorted; never empty (`--runs` is at least 1).
    times: Vec<f64>,
    gflop: f64,
    peak: NominalPeak,
    peak_rss_mib: f64,
    /// The model's functions ran as standard-op bodies (`--standard-ops`).
    standard_ops: bool,
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
            peak_rss_mib: tcanet_models::cpu::peak_rss_mib().unwrap_or(f64::NAN),
            standard_ops: args.standard_ops,
        }
    }

    /// The `q` percentile of the latencies ([`percentile`]'s nearest rank).
    fn percentile(&self, q: f64) -> f64 {
        percentile(&self.times, q)
    }

    fn min(&self) -> f64 {
        self.percentile(0.0)
    }

    fn gflops(&self) -> f64 {
        self.gflop / (self.percentile(0.5) / 1e3)
    }

    fn per_video(&self) -> f64 {
        self.percentile(0.5) / self.batch.max(1) as f64
    }

    fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "model": self.model, "batch": self.batch, "proposals": self.proposals,
            "threads": self.threads, "runs": self.times.len(),
            "p50_ms": self.percentile(0.5), "p90_ms": self.percentile(0.9),
            "min_ms": self.min(), "p50_ms_per_video": self.per_video(),
            "times_ms": self.times,
            "gflop_per_call": self.gflop, "gflops": self.gflops(),
            "isa": self.peak.isa.as_str(), "cpu_ghz": self.peak.ghz,
            "nominal_peak_gflops": self.peak.gflops(),
            "fraction_of_peak": self.peak.fraction(self.gflops()),
            "peak_rss_mib": self.peak_rss_mib,
            "functions": if self.standard_ops { "standard ops" } else { "tcanet kernels" },
        })
    }
}

impl std::fmt::Display for BenchFigures {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "{}{}: B={} N={}, {} runs, {} threads: p50 {:.2} ms, p90 {:.2} ms, min {:.2} ms ({:.2} ms per video); peak RSS {:.0} MiB",
            self.model, if self.standard_ops { " (standard ops)" } else { "" },
            self.batch, self.proposals, self.times.len(), self.threads,
            self.percentile(0.5), self.percentile(0.9), self.min(),
            self.per_video(), self.peak_rss_mib
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
