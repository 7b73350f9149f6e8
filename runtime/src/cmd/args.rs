//! Flags shared by several subcommands, and the documented range of every
//! numeric flag (checked when the command line is parsed: exit 2 naming the
//! flag and the range).
use std::path::PathBuf;

use clap::{Args, ValueEnum};
use tcanet_cli::range;
use tcanet_models::data::{DatasetPaths, FeatureLayout, GivenPaths};
use tcanet_runtime::output::Shard;
use tcanet_runtime::postprocess::{PostProcessOptions, SoftNmsParams};

/// Upper bound of count flags that size nothing in memory (`--top-k`,
/// `--max-detections`, ...): a larger value means "all" anyway.
pub const MAX_COUNT: u64 = 1_000_000_000;
/// Upper bound of thread-count flags.
pub const MAX_THREADS: u64 = 1024;
/// Upper bound of `--workers` (threads preparing videos).
pub const MAX_WORKERS: u64 = 256;

/// `1..=MAX_COUNT` as a clap value parser.
pub fn count() -> impl Fn(&str) -> Result<usize, String> + Clone + Send + Sync + 'static {
    range::int_in::<usize>(1, MAX_COUNT)
}

/// Thread counts, `1..=MAX_THREADS`.
pub fn threads() -> impl Fn(&str) -> Result<usize, String> + Clone + Send + Sync + 'static {
    range::int_in::<usize>(1, MAX_THREADS)
}

/// `--shard K/N` as a clap value parser.
pub fn shard(text: &str) -> Result<Shard, String> {
    Shard::parse(text).map_err(|e| e.to_string())
}

/// `--layout`.
#[derive(Clone, Copy, ValueEnum)]
pub enum LayoutArg {
    /// Decide from the channel count C (a square [C, C] file is an error).
    Auto,
    /// `[T, C]` (time-major).
    Tc,
    /// `[C, T]` (channel-major).
    Ct,
}

impl LayoutArg {
    /// The name as written on the command line.
    pub fn name(self) -> &'static str {
        match self {
            LayoutArg::Auto => "auto",
            LayoutArg::Tc => "tc",
            LayoutArg::Ct => "ct",
        }
    }
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
pub struct DataArgs {
    /// Dataset directory: shorthand for DIR/annotations.json, DIR/features,
    /// DIR/proposals.json.
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// Annotations JSON (ActivityNet/HACS `database`: subset, duration);
    /// `-` reads standard input.
    #[arg(long, value_name = "FILE")]
    pub annotations: Option<PathBuf>,
    /// Directory of per-video features `<video>.npy` (f32/f16, [T, C] or [C, T]).
    #[arg(long, value_name = "DIR")]
    pub features: Option<PathBuf>,
    /// Input proposals: leaderboard JSON (`-`: standard input), or a
    /// directory of `<video>.csv` (xmin,xmax,score).
    #[arg(long, value_name = "FILE|DIR")]
    pub proposals: Option<PathBuf>,
    /// Only the videos of this subset (e.g. validation); default: all videos.
    #[arg(long, value_name = "NAME")]
    pub subset: Option<String>,
    /// Layout of the .npy features. `auto` decides from the model's channel
    /// count C; a file whose two dimensions both equal C is an error asking
    /// for tc or ct.
    #[arg(long, value_enum, default_value = "auto")]
    pub layout: LayoutArg,
    /// Interpolate features longer than the model's T to T (HACS-style configs).
    #[arg(long)]
    pub resample: bool,
}

impl DataArgs {
    /// The dataset's paths; without `need_features` a missing `--features`
    /// is no error (the path is then empty and never read).
    pub fn paths_for(
        &self,
        need_features: bool,
    ) -> Result<DatasetPaths, tcanet_models::data::DataError> {
        let given = GivenPaths {
            data: self.data.clone(),
            annotations: self.annotations.clone(),
            features: self.features.clone(),
            proposals: self.proposals.clone(),
        };
        DatasetPaths::resolve(&given, need_features)
    }
}

/// The Soft-NMS options shared by `run` and `postprocess`.
#[derive(Args, Clone, Copy)]
pub struct PostArgs {
    /// Soft-NMS alpha of exp(-IoU^2.5 / alpha): a finite number > 0.
    #[arg(long, default_value_t = 0.4, value_name = "A", allow_negative_numbers = true,
          value_parser = range::float_in(0.0, false, f64::INFINITY, false))]
    pub soft_nms_alpha: f64,
    /// Soft-NMS threshold t1 (threshold = t1 + (t2 - t1) * width), in [0, 1].
    #[arg(long, default_value_t = 0.0, value_name = "T", allow_negative_numbers = true,
          value_parser = range::float_in(0.0, true, 1.0, true))]
    pub soft_nms_t1: f64,
    /// Soft-NMS threshold t2, in [0, 1].
    #[arg(long, default_value_t = 0.0, value_name = "T", allow_negative_numbers = true,
          value_parser = range::float_in(0.0, true, 1.0, true))]
    pub soft_nms_t2: f64,
    /// Proposals kept per video, 1 to 10^9.
    #[arg(long, default_value_t = 100, value_name = "K", allow_negative_numbers = true,
          value_parser = count())]
    pub top_k: usize,
}

impl PostArgs {
    /// The library's options.
    pub fn options(&self) -> PostProcessOptions {
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
