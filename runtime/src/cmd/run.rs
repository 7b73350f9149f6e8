//! `tcanet-infer run`: refine a dataset's proposals (and detections) with
//! the model and write the leaderboard file(s).
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::Result;
use clap::Args;
use tcanet_cli::{range, ExitStatus, Log, Output};
use tcanet_evaluator::GroundTruth;
use tcanet_models::data::{Dataset, DatasetPaths};
use tcanet_ort::TcanetModel;
use tcanet_runtime::classifier::ClassScores;
use tcanet_runtime::infer::{run_dataset, InferSettings, RunSummary};
use tcanet_runtime::output::{
    inputs_digest, videos_digest, Leaderboard, LeaderboardEntry, OutputKind, ResultSettings,
    RunIdentity, RunStamp, Shard, ShardInfo,
};

use super::args::{self, DataArgs, PostArgs, MAX_WORKERS};
use super::inputs::{
    check_features_dir, load_classifier, load_dataset, model_sha256, refuse_stdin_twice_in,
    subset_videos,
};
use super::outputs::{publish, BoardOut, InputGuard};
use super::report::{failure_report, finish_status, print_failures, stop_early};
use super::status::usage;
use crate::EngineArgs;

/// `run`'s flags.
#[derive(Args)]
pub struct RunArgs {
    /// The exported model (tcanet-export).
    #[arg(long, value_name = "MODEL.onnx")]
    pub model: PathBuf,
    #[command(flatten)]
    pub data: DataArgs,
    /// Output: refined proposals, leaderboard JSON (`-`: standard output).
    /// With --shard, the partial goes to OUT's stem + `.shard-K-of-N.json`.
    #[arg(short, long, value_name = "FILE")]
    pub output: Output,
    /// Video-level class scores (release format, the authors' own file, or
    /// an ActivityNet classification submission; `-`: standard input) →
    /// also write detections.
    #[arg(long, value_name = "FILE")]
    pub classifier: Option<PathBuf>,
    /// Detections output (default: OUT's stem + `.detections.json`; with
    /// --shard, the partial's stem + `.detections.json`; `-`: standard output).
    #[arg(long, value_name = "FILE", requires = "classifier")]
    pub detections_output: Option<Output>,
    /// Detections: classes per video, 1 to 10^9.
    #[arg(long, default_value_t = 3, value_name = "K", allow_negative_numbers = true,
          value_parser = args::count())]
    pub top_classes: usize,
    /// Detections: kept per video, 1 to 10^9.
    #[arg(long, default_value_t = 200, value_name = "N", allow_negative_numbers = true,
          value_parser = args::count())]
    pub max_detections: usize,
    #[command(flatten)]
    pub engine: EngineArgs,
    /// Cap on proposals per model call, 1 to 10^9 (default: all of a video
    /// in one call).
    #[arg(long, value_name = "N", allow_negative_numbers = true, value_parser = args::count())]
    pub max_batch: Option<usize>,
    /// Use only the best N input proposals of each video, 1 to 10^9
    /// (default: all).
    #[arg(long, value_name = "N", allow_negative_numbers = true, value_parser = args::count())]
    pub max_proposals: Option<usize>,
    #[command(flatten)]
    pub post: PostArgs,
    /// Threads reading and preparing the next videos while the model runs,
    /// 1 to 256.
    #[arg(long, default_value_t = 1, value_name = "N", allow_negative_numbers = true,
          value_parser = range::int_in::<usize>(1, MAX_WORKERS))]
    pub workers: usize,
    /// Go on past videos with bad data: write the others, report the failed
    /// ones, exit with 3.
    #[arg(long)]
    pub keep_going: bool,
    /// Write the per-video error report (JSON) here (`-`: standard output).
    #[arg(long, value_name = "FILE")]
    pub report: Option<Output>,
    /// Process shard K of N (0 <= K < N; a deterministic round-robin slice)
    /// and write a partial file. Default: from
    /// SLURM_ARRAY_TASK_ID/SLURM_ARRAY_TASK_COUNT, or JOB_COMPLETION_INDEX
    /// with --shard-count, when set.
    #[arg(long, value_name = "K/N", allow_hyphen_values = true, value_parser = args::shard)]
    pub shard: Option<Shard>,
    /// Number of shards for JOB_COMPLETION_INDEX (Kubernetes Indexed Jobs),
    /// 1 to 10^6.
    #[arg(long, value_name = "N", allow_negative_numbers = true,
          value_parser = range::int_in::<usize>(1, 1_000_000))]
    pub shard_count: Option<usize>,
    /// Print the evaluator's scores at the end (needs ground truth of
    /// --subset in the annotations; on standard error when an output is
    /// standard output).
    #[arg(long)]
    pub eval: bool,
}

/// Where `run` writes.
struct Targets {
    refined: Output,
    detections: Option<Output>,
}

/// What `run` reads before the model.
struct Inputs {
    dataset: Arc<Dataset>,
    classifier: Option<(Arc<ClassScores>, String)>,
    /// The whole run's videos (all shards).
    all_videos: Vec<String>,
    /// This shard's videos.
    videos: Vec<String>,
    ground_truth: Option<GroundTruth>,
}

/// Refines the videos and writes the outputs; every usage error and bad
/// input file is found before the model is loaded.
pub fn cmd_run(args: &RunArgs, log: Log) -> Result<ExitStatus> {
    args.engine.settings()?;
    args.engine.config_override()?;
    let shard = resolve_shard(args, log)?;
    let paths = args.data.paths_for(true)?;
    let targets = plan_targets(args, shard)?;
    check_io(args, &paths, &targets)?;
    let inputs = load_inputs(args, &paths, shard)?;
    let mut model = args.engine.load_model(&args.model, log)?;
    log.info(format_args!(
        "model: {} (C={}, T={}, {}; device {})",
        args.model.display(),
        model.config().feat_dim,
        model.interface.time_steps,
        model.interface.precision,
        model.device
    ));
    let model_sha = model_sha256(&args.model)?;
    let started = Instant::now();
    let summary = infer_all(&mut model, &inputs, args, log);
    print_failures(&summary, log);
    if summary.stopped_early {
        return Err(stop_early(
            args.report.as_ref(),
            &summary,
            inputs.videos.len(),
        ));
    }
    let boards = boards(args, &targets, &inputs, &summary, &model_sha, shard);
    let report = failure_report(&summary, inputs.videos.len())?;
    publish(args.report.as_ref().map(|r| (r, report)), boards)?;
    log_written(&targets, &summary, started, log);
    if args.eval {
        print_eval(args, &inputs, &summary, &targets, shard, log)?;
    }
    Ok(finish_status(
        &summary,
        inputs.videos.len(),
        args.report.as_ref(),
        log,
    ))
}

/// `--shard`, or the scheduler's environment.
fn resolve_shard(args: &RunArgs, log: Log) -> Result<Option<Shard>> {
    if let Some(shard) = args.shard {
        return Ok(Some(shard));
    }
    match Shard::from_env(|k| std::env::var(k).ok(), args.shard_count)? {
        Some((shard, var)) => {
            log.info(format_args!(
                "shard {}/{} (from {var})",
                shard.index, shard.count
            ));
            Ok(Some(shard))
        }
        None => Ok(None),
    }
}

/// The refined and detections outputs, with shard and default names (a
/// device, FIFO or standard output is written as it is, without them).
fn plan_targets(args: &RunArgs, shard: Option<Shard>) -> Result<Targets> {
    for (flag, o) in [
        ("-o", Some(&args.output)),
        ("--detections-output", args.detections_output.as_ref()),
    ] {
        if let Some(p) = o.and_then(Output::path).filter(|p| p.is_dir()) {
            return Err(usage(format!(
                "{flag} {} is a directory: give a file name in it",
                p.display()
            )));
        }
    }
    let partial = |o: &Output| match (shard, file_path(o)) {
        (Some(s), Some(p)) => Output::Path(s.partial_path(p)),
        _ => o.clone(),
    };
    let refined = partial(&args.output);
    let detections = match (&args.classifier, &args.detections_output) {
        (None, _) => None,
        (Some(_), Some(d)) => Some(partial(d)),
        (Some(_), None) => match file_path(&args.output) {
            Some(_) => Some(default_detections_path(&refined)),
            None => {
                return Err(usage(format!(
                    "the refined proposals go to {}, which cannot name the detections file: give --detections-output FILE",
                    args.output
            )))
            }
        },
    };
    Ok(Targets {
        refined,
        detections,
    })
}

/// The path of an output that is a regular file or none yet (not standard
/// output, a device or a FIFO).
fn file_path(output: &Output) -> Option<&Path> {
    let path = output.path()?;
    match std::fs::metadata(path) {
        Ok(m) if !m.is_file() && !m.is_dir() => None,
        _ => Some(path),
    }
}

/// `STEM.detections.json` beside the refined output.
fn default_detections_path(refined: &Output) -> Output {
    let path = refined.path().unwrap_or(Path::new("results.json"));
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "results".into());
    Output::Path(path.with_file_name(format!("{stem}.detections.json")))
}

/// Standard input once at most; no output onto another or onto an input;
/// every output creatable.
fn check_io(args: &RunArgs, paths: &DatasetPaths, targets: &Targets) -> Result<()> {
    refuse_stdin_twice_in(&[
        ("--annotations", Some(&paths.annotations)),
        ("--proposals", Some(&paths.proposals)),
        ("--classifier", args.classifier.as_deref()),
    ])?;
    let mut guard = InputGuard::default();
    guard.dataset(paths, true).file(&args.model);
    for p in [&args.classifier, &args.engine.config, &args.engine.ort_lib]
        .into_iter()
        .flatten()
    {
        guard.file(p);
    }
    let mut outputs: Vec<(&str, &Output)> = vec![("-o", &targets.refined)];
    if let Some(d) = &targets.detections {
        outputs.push(("--detections-output", d));
    }
    if let Some(r) = &args.report {
        outputs.push(("--report", r));
    }
    guard.check(&outputs)?;
    Ok(())
}

/// The dataset, classifier, videos and (with `--eval`) ground truth.
fn load_inputs(args: &RunArgs, paths: &DatasetPaths, shard: Option<Shard>) -> Result<Inputs> {
    let (dataset, annotations_text) = load_dataset(paths)?;
    check_features_dir(paths)?;
    let classifier = args
        .classifier
        .as_deref()
        .map(load_classifier)
        .transpose()?
        .map(|(c, sha)| (Arc::new(c), sha));
    let all_videos = subset_videos(&dataset, args.data.subset.as_deref())?;
    let shard = shard.unwrap_or(Shard::WHOLE);
    let videos = shard
        .indices(all_videos.len())
        .map(|i| all_videos[i].clone())
        .collect();
    let ground_truth = args
        .eval
        .then(|| load_ground_truth(paths, annotations_text.as_deref(), eval_subset(args)))
        .transpose()?;
    Ok(Inputs {
        dataset: Arc::new(dataset),
        classifier,
        all_videos,
        videos,
        ground_truth,
    })
}

/// The subset `--eval` scores: `--subset`, else validation.
fn eval_subset(args: &RunArgs) -> &str {
    args.data.subset.as_deref().unwrap_or("validation")
}

/// The ground truth for `--eval`, read before any video (a usage error).
fn load_ground_truth(
    paths: &DatasetPaths,
    text: Option<&str>,
    subset: &str,
) -> Result<GroundTruth> {
    let gt = match text {
        Some(t) => GroundTruth::from_json_str(t, subset),
        None => GroundTruth::from_path(&paths.annotations, subset),
    };
    gt.map_err(|e| usage(format!("--eval: {e}")))
}

/// Runs every video of the shard, with a progress bar on a terminal.
fn infer_all(model: &mut TcanetModel, inputs: &Inputs, args: &RunArgs, log: Log) -> RunSummary {
    let settings = InferSettings {
        post: args.post.options(),
        max_batch: args.max_batch,
        max_proposals: args.max_proposals,
        layout: args.data.layout.into(),
        resample: args.data.resample,
        workers: args.workers,
        prefetch: args.workers + 1,
        keep_going: args.keep_going,
        top_classes: args.top_classes,
        max_detections: args.max_detections,
    };
    let bar = super::progress_bar(inputs.videos.len(), "videos", log);
    let summary = run_dataset(
        model,
        inputs.dataset.clone(),
        &inputs.videos,
        inputs.classifier.as_ref().map(|c| c.0.clone()),
        &settings,
        |_, _| bar.inc(1),
    );
    bar.finish_and_clear();
    summary
}

/// The run's identity for files of `kind`.
fn identity(args: &RunArgs, inputs: &Inputs, model_sha: &str, kind: OutputKind) -> RunIdentity {
    let detections = kind == OutputKind::Detections;
    RunIdentity {
        kind,
        command: "run".into(),
        model_sha256: Some(model_sha.to_string()),
        subset: args.data.subset.clone(),
        videos: inputs.all_videos.len(),
        videos_sha256: videos_digest(&inputs.all_videos),
        inputs_sha256: inputs_digest(&inputs.dataset, &inputs.all_videos),
        classifier_sha256: inputs
            .classifier
            .as_ref()
            .filter(|_| detections)
            .map(|c| c.1.clone()),
        settings: ResultSettings {
            soft_nms_alpha: args.post.soft_nms_alpha,
            soft_nms_t1: args.post.soft_nms_t1,
            soft_nms_t2: args.post.soft_nms_t2,
            top_k: args.post.top_k,
            max_proposals: args.max_proposals,
            layout: Some(args.data.layout.name().into()),
            resample: Some(args.data.resample),
            top_classes: detections.then_some(args.top_classes),
            max_detections: detections.then_some(args.max_detections),
        },
    }
}

/// The leaderboards to write: detections first, the refined proposals (the
/// primary output) last.
fn boards(
    args: &RunArgs,
    targets: &Targets,
    inputs: &Inputs,
    summary: &RunSummary,
    model_sha: &str,
    shard: Option<Shard>,
) -> Vec<BoardOut> {
    let details = format!(
        "TCANet refined proposals (tcanet-infer {}, model sha256 {model_sha})",
        env!("CARGO_PKG_VERSION"),
    );
    let shard_info = shard.map(|s| ShardInfo {
        index: s.index,
        count: s.count,
        assigned: inputs.videos.clone(),
        failed: summary.failures.iter().map(|f| f.video.clone()).collect(),
    });
    let stamp = |kind| {
        Some(RunStamp {
            identity: identity(args, inputs, model_sha, kind),
            generation: String::new(),
            outputs: Vec::new(),
        })
    };
    let mut out = Vec::with_capacity(2);
    if let Some(det) = &targets.detections {
        let results = summary
            .results
            .iter()
            .map(|r| {
                let dets = r.detections.as_deref().unwrap_or_default();
                (
                    r.video.clone(),
                    dets.iter().map(LeaderboardEntry::from).collect(),
                )
            })
            .collect();
        out.push(BoardOut {
            output: det.clone(),
            board: Leaderboard {
                results,
                details: details.replace("refined proposals", "detections"),
                run: stamp(OutputKind::Detections),
                shard: shard_info.clone(),
            },
        });
    }
    let results = summary
        .results
        .iter()
        .map(|r| {
            (
                r.video.clone(),
                r.proposals.iter().map(LeaderboardEntry::from).collect(),
            )
        })
        .collect();
    out.push(BoardOut {
        output: targets.refined.clone(),
        board: Leaderboard {
            results,
            details,
            run: stamp(OutputKind::Proposals),
            shard: shard_info,
        },
    });
    out
}

/// The "wrote ..." notes.
fn log_written(targets: &Targets, summary: &RunSummary, started: Instant, log: Log) {
    let n = summary.results.len();
    log.info(format_args!(
        "wrote {} ({n} videos, {:.1} s, {:.1} ms/video in the model)",
        targets.refined,
        started.elapsed().as_secs_f64(),
        1e3 * summary.model_seconds / n.max(1) as f64
    ));
    if let Some(d) = &targets.detections {
        log.info(format_args!("wrote {d}"));
    }
}

/// `--eval`: the evaluator's scores, on standard output (standard error
/// when an output took standard output).
fn print_eval(
    args: &RunArgs,
    inputs: &Inputs,
    summary: &RunSummary,
    targets: &Targets,
    shard: Option<Shard>,
    log: Log,
) -> Result<()> {
    if let Some(s) = shard {
        log.info(format_args!(
            "note: --eval scores shard {}/{} only (its videos against the whole subset's ground truth); evaluate the merged file for the real figures",
            s.index, s.count
        ));
    }
    let Some(gt) = &inputs.ground_truth else {
        return Ok(());
    };
    let scores = tcanet_runtime::eval::evaluate_run_against(gt, eval_subset(args), summary)?;
    let stdout_taken = [
        Some(&targets.refined),
        targets.detections.as_ref(),
        args.report.as_ref(),
    ]
    .into_iter()
    .flatten()
    .any(Output::is_stdout);
    if stdout_taken {
        let _ = writeln!(std::io::stderr().lock(), "{scores}");
        Ok(())
    } else {
        Ok(tcanet_cli::write_stdout(|w| writeln!(w, "{scores}"))?)
    }
}
