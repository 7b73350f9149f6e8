//! `tcanet-infer bench` and `bench-post`: speed of a model, and of the
//! post-processing alone; results on standard output.
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Result;
use clap::Args;
use tcanet_cli::{range, write_stdout, ExitStatus, Log};
use tcanet_runtime::bench::{bench_model, bench_postprocess, BenchInputs, BenchSettings};

use super::args::{self, DataArgs};
use super::inputs::{check_features_dir, load_dataset, subset_videos};
use super::status::usage;
use crate::EngineArgs;

/// `bench`'s flags. `--proposals` is the dataset's flag, given a second
/// meaning for random inputs (a count), so that one flag is not defined
/// twice.
#[derive(Args)]
#[command(mut_arg("proposals", |a| a
    .value_name("N|FILE|DIR")
    .allow_negative_numbers(true)
    .help(proposals_help())))]
pub struct BenchArgs {
    /// The exported model.
    #[arg(value_name = "MODEL.onnx")]
    pub model: PathBuf,
    #[command(flatten)]
    pub engine: EngineArgs,
    /// Distinct videos to time (each run once after warm-up, cycling with
    /// --repeat), 1 to 10^6.
    #[arg(long, default_value_t = 20, value_name = "K", allow_negative_numbers = true,
          value_parser = range::int_in::<usize>(1, 1_000_000))]
    pub videos: usize,
    /// Timed passes over the videos, 1 to 10^5.
    #[arg(long, default_value_t = 1, value_name = "R", allow_negative_numbers = true,
          value_parser = range::int_in::<usize>(1, 100_000))]
    pub repeat: usize,
    /// Untimed warm-up calls, 0 to 10^5.
    #[arg(long, default_value_t = 3, value_name = "W", allow_negative_numbers = true,
          value_parser = range::int_in::<usize>(0, 100_000))]
    pub warmup: usize,
    /// Seed of the random inputs (any integer from 0 to 2^64 - 1).
    #[arg(long, default_value_t = 0, allow_negative_numbers = true,
          value_parser = range::int_in::<u64>(0, u64::MAX))]
    pub seed: u64,
    /// Time real videos instead of random inputs (the first K of --subset).
    #[command(flatten)]
    pub data: DataArgs,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Proposals per random video when `--proposals` is absent.
const RANDOM_PROPOSALS: usize = 100;
/// The most proposals per random video `--proposals` may ask for.
const MAX_RANDOM_PROPOSALS: u64 = 10_000;

/// `bench`'s help for `--proposals`, with the count's range and default.
fn proposals_help() -> String {
    format!(
        "Random inputs: proposals per video, 1 to {MAX_RANDOM_PROPOSALS} (default \
         {RANDOM_PROPOSALS}). Real videos (--data, --annotations): the input proposals, \
         leaderboard JSON (`-`: standard input) or a directory of `<video>.csv` (default: \
         DIR/proposals.json)"
    )
}

/// The proposals per random video that `--proposals` asks for
/// ([`RANDOM_PROPOSALS`] when absent); any other value is a usage error
/// that says what it means.
fn random_proposal_count(given: Option<&std::path::Path>) -> Result<usize> {
    let Some(given) = given else {
        return Ok(RANDOM_PROPOSALS);
    };
    let text = given.to_string_lossy();
    range::int_in::<usize>(1, MAX_RANDOM_PROPOSALS)(&text).map_err(|why| {
        usage(format!(
            "invalid value '{text}' for --proposals: with random inputs it is the proposals per \
             video and {why} \
             (a proposals file needs real videos: --data or --annotations and --features)"
        ))
    })
}

/// `bench-post`'s flags.
#[derive(Args)]
pub struct BenchPostArgs {
    /// Videos, 1 to 10^6 (videos × --max-proposals at most 10^8).
    #[arg(long, default_value_t = 4700, allow_negative_numbers = true,
          value_parser = range::int_in::<usize>(1, 1_000_000))]
    pub videos: usize,
    /// Fewest proposals per video, 1 to 10^6 (at most --max-proposals).
    #[arg(long, default_value_t = 100, allow_negative_numbers = true,
          value_parser = range::int_in::<usize>(1, 1_000_000))]
    pub min_proposals: usize,
    /// Most proposals per video, 1 to 10^6.
    #[arg(long, default_value_t = 400, allow_negative_numbers = true,
          value_parser = range::int_in::<usize>(1, 1_000_000))]
    pub max_proposals: usize,
    /// Threads (videos are independent), 1 to 1024.
    #[arg(long, default_value_t = 1, allow_negative_numbers = true, value_parser = args::threads())]
    pub threads: usize,
    /// Timed repetitions (the median is reported), 1 to 1000.
    #[arg(long, default_value_t = 5, allow_negative_numbers = true,
          value_parser = range::int_in::<usize>(1, 1000))]
    pub repeat: usize,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Times the model on random or real videos.
pub fn cmd_bench(args: &BenchArgs, log: Log) -> Result<ExitStatus> {
    args.engine.settings()?;
    args.engine.config_override()?;
    let inputs = if args.data.data.is_some() || args.data.annotations.is_some() {
        refuse_count_as_file(args.data.proposals.as_deref())?;
        let paths = args.data.paths_for(true)?;
        let (dataset, _) = load_dataset(&paths)?;
        check_features_dir(&paths)?;
        let videos = subset_videos(&dataset, args.data.subset.as_deref())?;
        BenchInputs::Dataset {
            dataset: Arc::new(dataset),
            videos: videos.into_iter().take(args.videos).collect(),
            layout: args.data.layout.into(),
            resample: args.data.resample,
        }
    } else {
        BenchInputs::Random {
            videos: args.videos,
            proposals: random_proposal_count(args.data.proposals.as_deref())?,
            seed: args.seed,
        }
    };
    let mut model = args.engine.load_model(&args.model, log)?;
    let settings = BenchSettings {
        warmup: args.warmup,
        repeat: args.repeat,
        threads: args.engine.threads,
    };
    let result = bench_model(&mut model, &inputs, &settings)?;
    print_result(&result, args.json)?;
    Ok(ExitStatus::Success)
}

/// With real videos `--proposals` names a file; a bare count there (and no
/// file of that name) is the random inputs' meaning, refused rather than
/// read as a missing file.
fn refuse_count_as_file(given: Option<&std::path::Path>) -> Result<()> {
    let Some(given) = given else {
        return Ok(());
    };
    let text = given.to_string_lossy();
    if text.trim().parse::<u64>().is_ok() && !given.exists() {
        return Err(usage(format!(
            "invalid value '{text}' for --proposals: with real videos it names the input proposals \
             (a JSON file or a directory of CSVs); a count applies to random inputs only"
        )));
    }
    Ok(())
}

/// Times fusion + Soft-NMS alone.
pub fn cmd_bench_post(args: &BenchPostArgs) -> Result<ExitStatus> {
    let result = bench_postprocess(
        args.videos,
        args.min_proposals,
        args.max_proposals,
        args.threads,
        args.repeat,
    )?;
    print_result(&result, args.json)?;
    Ok(ExitStatus::Success)
}

/// One JSON object, or the text form, on standard output.
fn print_result<T: serde::Serialize + std::fmt::Display>(result: &T, json: bool) -> Result<()> {
    let text = if json {
        serde_json::to_string(result)?
    } else {
        result.to_string()
    };
    write_stdout(|w| writeln!(w, "{text}"))?;
    Ok(())
}
