//! Flags shared by several subcommands, and the documented range of every
//! numeric flag (checked when the command line is parsed: exit 2 naming the
//! flag and the range; NaN, infinities and negative numbers are refused).
use std::path::{Path, PathBuf};

use anyhow::Result;
use clap::Args;
use tcanet_cli::range;
use tcanet_exporter::SUPPORTED_OPSETS;
use tcanet_models::checkpoint::ConfigOverride;
use tcanet_models::ModelConfig;

use super::status::usage;

/// Upper bound of thread-count flags.
pub const MAX_THREADS: u64 = 1024;
/// Upper bound of `bench --runs` and `--warmup`.
pub const MAX_RUNS: u64 = 100_000;
/// Upper bound of `bench --batch` (videos per call).
pub const MAX_BENCH_BATCH: u64 = 1024;
/// Upper bound of `bench --proposals` (as `tcanet-infer bench`).
pub const MAX_BENCH_PROPOSALS: u64 = 10_000;
/// Upper bound of `verify --batch`: the f64 reference runs video by video.
pub const MAX_VERIFY_BATCH: u64 = 64;
/// Upper bound of `verify --proposals`.
pub const MAX_VERIFY_PROPOSALS: u64 = 1000;

/// `--opset`: the opsets the exporter writes.
pub fn opset() -> impl Fn(&str) -> Result<i64, String> + Clone + Send + Sync + 'static {
    range::int_in::<i64>(
        *SUPPORTED_OPSETS.start() as u64,
        *SUPPORTED_OPSETS.end() as u64,
    )
}

/// Any unsigned 64-bit seed.
pub fn seed() -> impl Fn(&str) -> Result<u64, String> + Clone + Send + Sync + 'static {
    range::int_in::<u64>(0, u64::MAX)
}

/// A tolerance: a finite number in (0, 1].
pub fn tolerance() -> impl Fn(&str) -> Result<f64, String> + Clone + Send + Sync + 'static {
    range::float_in(0.0, false, 1.0, true)
}

/// `--preset` or `--config`: the model config for checkpoints without one.
#[derive(Args, Clone, Default)]
pub struct ConfigArgs {
    /// Model config preset for checkpoints without an embedded config
    /// (hacs, anet, tiny); overrides an embedded one.
    #[arg(long, value_name = "NAME", conflicts_with = "config")]
    pub preset: Option<String>,
    /// Model config JSON file (ModelConfig; absent fields take the hacs values);
    /// overrides an embedded one.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

impl ConfigArgs {
    /// The config given on the command line, or the embedded one (a bad
    /// preset or config file is a usage error naming it).
    pub fn resolve(&self) -> Result<ConfigOverride> {
        Ok(match (&self.preset, &self.config) {
            (Some(name), _) => ConfigOverride::Given(
                ModelConfig::preset(name).map_err(|e| usage(format!("--preset {name}: {e}")))?,
            ),
            (None, Some(path)) => ConfigOverride::Given(read_config(path)?),
            (None, None) => ConfigOverride::Embedded,
        })
    }

    /// The config given on the command line (required).
    pub fn resolve_required(&self) -> Result<ModelConfig> {
        match self.resolve()? {
            ConfigOverride::Given(c) => Ok(c),
            ConfigOverride::Embedded => Err(usage(
                "give the model config with --preset NAME (hacs, anet, tiny) or --config FILE",
            )),
        }
    }

    /// The `--config` file, if given (an input no output may replace).
    pub fn file(&self) -> Option<&Path> {
        self.config.as_deref()
    }
}

/// Reads a `--config` JSON file.
fn read_config(path: &Path) -> Result<ModelConfig> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| usage(format!("--config: cannot read {}: {e}", path.display())))?;
    ModelConfig::from_json(&text).map_err(|e| {
        usage(format!(
            "--config {}: {e} (fix the file or use --preset)",
            path.display()
        ))
    })
}
