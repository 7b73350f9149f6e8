//! `tcanet-infer postprocess`: the input proposals through the
//! post-processing alone (no network), a baseline for `run`.
use anyhow::Result;
use clap::Args;
use tcanet_cli::{ExitStatus, Log, Output};
use tcanet_models::data::Dataset;
use tcanet_runtime::infer::{postprocess_input_dataset, InferSettings, RunSummary};
use tcanet_runtime::output::{
    inputs_digest, videos_digest, Leaderboard, LeaderboardEntry, OutputKind, ResultSettings,
    RunIdentity, RunStamp,
};

use super::args::{self, DataArgs, PostArgs};
use super::inputs::{load_dataset, refuse_stdin_twice_in, subset_videos};
use super::outputs::{publish, BoardOut, InputGuard};
use super::report::{failure_report, finish_status, print_failures, stop_early};

/// `postprocess`'s flags.
#[derive(Args)]
pub struct PostprocessArgs {
    /// The dataset (features are not read; --features, --layout and
    /// --resample are accepted and ignored).
    #[command(flatten)]
    pub data: DataArgs,
    /// Output: the input proposals after Soft-NMS, leaderboard JSON (`-`:
    /// standard output).
    #[arg(short, long, value_name = "FILE")]
    pub output: Output,
    /// Use only the best N input proposals of each video, 1 to 10^9
    /// (default: all).
    #[arg(long, value_name = "N", allow_negative_numbers = true, value_parser = args::count())]
    pub max_proposals: Option<usize>,
    #[command(flatten)]
    pub post: PostArgs,
    /// Go on past videos with bad data: write the others, report the failed
    /// ones, exit with 3.
    #[arg(long)]
    pub keep_going: bool,
    /// Write the per-video error report (JSON) here (`-`: standard output).
    #[arg(long, value_name = "FILE")]
    pub report: Option<Output>,
}

/// Post-processes every video's input proposals and writes the file.
pub fn cmd_postprocess(args: &PostprocessArgs, log: Log) -> Result<ExitStatus> {
    let paths = args.data.paths_for(false)?;
    refuse_stdin_twice_in(&[
        ("--annotations", Some(&paths.annotations)),
        ("--proposals", Some(&paths.proposals)),
    ])?;
    let mut outputs: Vec<(&str, &Output)> = vec![("-o", &args.output)];
    if let Some(r) = &args.report {
        outputs.push(("--report", r));
    }
    InputGuard::default()
        .dataset(&paths, false)
        .check(&outputs)?;
    let (dataset, _) = load_dataset(&paths)?;
    let videos = subset_videos(&dataset, args.data.subset.as_deref())?;
    let settings = InferSettings {
        post: args.post.options(),
        max_proposals: args.max_proposals,
        keep_going: args.keep_going,
        ..InferSettings::default()
    };
    let summary = postprocess_input_dataset(&dataset, &videos, &settings, |_, _| {});
    print_failures(&summary, log);
    if summary.stopped_early {
        return Err(stop_early(args.report.as_ref(), &summary, videos.len()));
    }
    let board = BoardOut {
        output: args.output.clone(),
        board: board(args, &dataset, &videos, &summary),
    };
    let report = failure_report(&summary, videos.len())?;
    publish(args.report.as_ref().map(|r| (r, report)), vec![board])?;
    log.info(format_args!(
        "wrote {} ({} videos, input proposals + Soft-NMS)",
        args.output,
        summary.results.len()
    ));
    Ok(finish_status(
        &summary,
        videos.len(),
        args.report.as_ref(),
        log,
    ))
}

/// The leaderboard of the post-processed input proposals.
fn board(
    args: &PostprocessArgs,
    dataset: &Dataset,
    videos: &[String],
    summary: &RunSummary,
) -> Leaderboard {
    let identity = RunIdentity {
        kind: OutputKind::Proposals,
        command: "postprocess".into(),
        model_sha256: None,
        subset: args.data.subset.clone(),
        videos: videos.len(),
        videos_sha256: videos_digest(videos),
        inputs_sha256: inputs_digest(dataset, videos),
        classifier_sha256: None,
        settings: ResultSettings {
            soft_nms_alpha: args.post.soft_nms_alpha,
            soft_nms_t1: args.post.soft_nms_t1,
            soft_nms_t2: args.post.soft_nms_t2,
            top_k: args.post.top_k,
            max_proposals: args.max_proposals,
            layout: None,
            resample: None,
            top_classes: None,
            max_detections: None,
        },
    };
    Leaderboard {
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
        run: Some(RunStamp {
            identity,
            generation: String::new(),
            outputs: Vec::new(),
        }),
        shard: None,
    }
}
