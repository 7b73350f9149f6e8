//! `tcanet-eval`: leaderboard-exact evaluation of temporal action proposals
//! (AR@AN, AUC) and detections (mAP) from JSON files.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use tcanet_evaluator::plot::{self, PlotFormat};
use tcanet_evaluator::{
    evaluate_detections, evaluate_proposals, parse_thresholds, preset_thresholds, DetectionOptions,
    DetectionReport, DetectionSet, Error, GroundTruth, ProposalOptions, ProposalReport,
    ProposalSet,
};

const ABOUT: &str = "Scores temporal action proposals (AR@AN, AUC) and detections (mAP) \
exactly as the ActivityNet challenge's official evaluation code, in milliseconds.";

const LONG_ABOUT: &str = "Scores temporal action proposals (AR@AN, AUC) and detections (mAP) \
exactly as the ActivityNet challenge's official evaluation code (eval_proposal.py, \
eval_detection.py), to many decimals, in milliseconds, without the network.

GT is a ground-truth file in the ActivityNet format:
  {\"database\": {VIDEO: {\"subset\": \"validation\", \"annotations\": [{\"segment\": [s, e], \"label\": NAME}]}}}
PRED is a submission:
  {\"results\": {VIDEO: [{\"segment\": [s, e], \"score\": x, \"label\": NAME}]}}   (label: detections only)

Examples:
  tcanet-eval proposals activitynet13_gt.json proposals.json
  tcanet-eval proposals gt.json refined.json --baseline input.json --plot cmp.png
  tcanet-eval detections gt.json detections.json --json
  tcanet-eval detections thumos_gt.json dets.json --subset Test --preset thumos14

Exit status: 0 on success, 2 on bad input or usage, 1 when an output cannot be written.";

#[derive(Parser)]
#[command(name = "tcanet-eval", version = tcanet_cli::LONG_VERSION, about = ABOUT, long_about = LONG_ABOUT)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Average recall vs average number of proposals (AR@AN), AR@1/5/10/100 and AUC.
    #[command(
        long_about = "Average recall vs average number of proposals per video (AR@AN), \
as eval_proposal.py: recall per tIoU threshold at 100 points of AN, the AR curve (mean over \
thresholds), AR@1, AR@5, AR@10, AR@100 and the AUC (percent). Each video keeps its \
highest-scoring proposals so that the average per video is at most --max-proposals."
    )]
    Proposals(ProposalArgs),
    /// Average precision per class and tIoU threshold, mAP and average mAP.
    #[command(
        long_about = "Average precision of every class at every tIoU threshold, mAP per \
threshold and the average mAP, as eval_detection.py (VOC-2011 interpolated AP; each ground-truth \
instance matches at most one detection per threshold, best tIoU first)."
    )]
    Detections(DetectionArgs),
    /// Times whole runs (reading both files + evaluating), for docs/BENCHMARKS.md.
    #[command(
        long_about = "Times whole runs in this process: reading and parsing both JSON \
files and evaluating, repeated --runs times; prints the fastest, median and slowest run."
    )]
    Bench(BenchArgs),
}

#[derive(Args, Clone)]
struct CommonArgs {
    /// Ground-truth file ({"database": ...}).
    gt: PathBuf,
    /// Submission file ({"results": ...}).
    pred: PathBuf,
    /// Subset of the ground truth to evaluate ("validation", "testing", "Test", ...).
    #[arg(long, default_value = "validation")]
    subset: String,
    /// tIoU thresholds: a list (0.3,0.5,0.7) or start:stop:step with stop included (0.5:0.95:0.05).
    #[arg(long, value_name = "LIST|RANGE", conflicts_with = "preset")]
    tiou: Option<String>,
    /// Threshold preset: activitynet (0.5:0.95:0.05, the default) or thumos14 (0.3,0.4,0.5,0.6,0.7).
    #[arg(long, value_name = "NAME")]
    preset: Option<String>,
    /// Print one JSON object (values as fractions, AUC in percent) instead of the table.
    #[arg(long)]
    json: bool,
    /// Draw the figure to FILE (.svg or .png): proposals, the AR-AN curve per tIoU and the average
    /// (with --baseline, both average curves); detections, mAP per tIoU threshold.
    #[arg(long, value_name = "FILE")]
    plot: Option<PathBuf>,
    /// Another submission evaluated the same way and shown beside PRED (table, JSON and plot).
    #[arg(long, value_name = "OTHER.json")]
    baseline: Option<PathBuf>,
    /// Name of PRED in the plot and table.
    #[arg(long, value_name = "NAME", default_value = "result")]
    label: String,
    /// Name of the baseline in the plot and table.
    #[arg(long, value_name = "NAME", default_value = "baseline")]
    baseline_label: String,
}

#[derive(Args)]
struct ProposalArgs {
    #[command(flatten)]
    common: CommonArgs,
    /// M: the maximum average number of proposals per video.
    #[arg(long, value_name = "M", default_value_t = 100)]
    max_proposals: u32,
}

#[derive(Args)]
struct DetectionArgs {
    #[command(flatten)]
    common: CommonArgs,
    /// Drop detections whose label is not a class of the ground truth (and say how many) instead of failing.
    #[arg(long)]
    ignore_unknown_labels: bool,
}

#[derive(Args)]
struct BenchArgs {
    /// What to evaluate: proposals or detections.
    #[arg(value_parser = ["proposals", "detections"])]
    task: String,
    /// Ground-truth file.
    gt: PathBuf,
    /// Submission file.
    pred: PathBuf,
    /// Number of timed runs.
    #[arg(long, default_value_t = 10)]
    runs: usize,
    /// Subset of the ground truth.
    #[arg(long, default_value = "validation")]
    subset: String,
}

/// An error with its exit status.
struct Failure {
    code: u8,
    error: anyhow::Error,
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Failure {
            code: 2,
            error: e.into(),
        }
    }
}

fn output_failure(e: impl Into<anyhow::Error>) -> Failure {
    Failure {
        code: 1,
        error: e.into(),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Proposals(a) => run_proposals(a),
        Command::Detections(a) => run_detections(a),
        Command::Bench(a) => run_bench(a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("error: {:#}", f.error);
            ExitCode::from(f.code)
        }
    }
}

fn thresholds(c: &CommonArgs) -> Result<Vec<f64>, Error> {
    match (&c.tiou, &c.preset) {
        (Some(t), _) => parse_thresholds(t),
        (None, Some(p)) => preset_thresholds(p),
        (None, None) => preset_thresholds("activitynet"),
    }
}

fn check_plot_path(c: &CommonArgs) -> Result<(), Failure> {
    if let Some(p) = &c.plot {
        PlotFormat::of(p).map_err(|e| Failure {
            code: 2,
            error: e.into(),
        })?;
    }
    Ok(())
}

/// Prints warnings to stderr, each once.
fn warn(warnings: &[String], more: Option<&[String]>) {
    let mut seen = std::collections::HashSet::new();
    for w in warnings.iter().chain(more.unwrap_or(&[])) {
        if seen.insert(w) {
            eprintln!("warning: {w}");
        }
    }
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| p.display().to_string())
}

fn run_proposals(a: ProposalArgs) -> Result<(), Failure> {
    let c = &a.common;
    let opts = ProposalOptions {
        tiou_thresholds: thresholds(c)?,
        max_avg_proposals: a.max_proposals as f64,
    };
    if a.max_proposals == 0 {
        return Err(Error::Options("--max-proposals must be at least 1".into()).into());
    }
    check_plot_path(c)?;
    let (gt, (pred, base)) = rayon::join(
        || GroundTruth::from_path(&c.gt, &c.subset),
        || {
            rayon::join(
                || ProposalSet::from_path(&c.pred),
                || c.baseline.as_ref().map(ProposalSet::from_path),
            )
        },
    );
    let gt = gt?;
    let report = evaluate_proposals(&gt, &pred?, &opts)?;
    let baseline = match base {
        Some(b) => Some(evaluate_proposals(&gt, &b?, &opts)?),
        None => None,
    };
    warn(&report.warnings, baseline.as_ref().map(|b| &b.warnings[..]));
    if c.json {
        print_json(&report, baseline.as_ref())?;
    } else {
        print_proposal_table(c, &gt, &report, baseline.as_ref());
    }
    if let Some(path) = &c.plot {
        let result = match &baseline {
            Some(b) => plot::plot_proposal_comparison(
                path,
                "Average recall vs average number of proposals",
                &[(c.baseline_label.as_str(), b), (c.label.as_str(), &report)],
            ),
            None => plot::plot_proposals(path, &format!("AR–AN: {}", file_name(&c.pred)), &report),
        };
        result.map_err(output_failure)?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

fn run_detections(a: DetectionArgs) -> Result<(), Failure> {
    let c = &a.common;
    let opts = DetectionOptions {
        tiou_thresholds: thresholds(c)?,
        ignore_unknown_labels: a.ignore_unknown_labels,
    };
    check_plot_path(c)?;
    let (gt, (pred, base)) = rayon::join(
        || GroundTruth::from_path(&c.gt, &c.subset),
        || {
            rayon::join(
                || DetectionSet::from_path(&c.pred),
                || c.baseline.as_ref().map(DetectionSet::from_path),
            )
        },
    );
    let gt = gt?;
    let report = evaluate_detections(&gt, &pred?, &opts)?;
    let baseline = match base {
        Some(b) => Some(evaluate_detections(&gt, &b?, &opts)?),
        None => None,
    };
    warn(&report.warnings, baseline.as_ref().map(|b| &b.warnings[..]));
    if c.json {
        print_json(&report, baseline.as_ref())?;
    } else {
        print_detection_table(c, &gt, &report, baseline.as_ref());
    }
    if let Some(path) = &c.plot {
        let mut series = Vec::new();
        if let Some(b) = &baseline {
            series.push((c.baseline_label.as_str(), b));
        }
        series.push((c.label.as_str(), &report));
        plot::plot_detections(
            path,
            &format!("mAP per tIoU threshold: {}", file_name(&c.pred)),
            &series,
        )
        .map_err(output_failure)?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

fn print_json<T: serde::Serialize>(report: &T, baseline: Option<&T>) -> Result<(), Failure> {
    let mut value = serde_json::to_value(report).map_err(output_failure)?;
    if let (Some(b), Some(obj)) = (baseline, value.as_object_mut()) {
        obj.insert(
            "baseline".into(),
            serde_json::to_value(b).map_err(output_failure)?,
        );
    }
    println!("{}", serde_json::to_string(&value).map_err(output_failure)?);
    Ok(())
}

fn pct(x: f64) -> String {
    format!("{:.2}", 100.0 * x)
}

fn print_proposal_table(
    c: &CommonArgs,
    gt: &GroundTruth,
    r: &ProposalReport,
    baseline: Option<&ProposalReport>,
) {
    println!(
        "Proposals {} against {} (subset {}): {} videos, {} instances, {} proposals, {} kept \
         (M = {})",
        c.pred.display(),
        c.gt.display(),
        gt.subset,
        r.n_videos,
        r.n_instances,
        r.n_proposals,
        r.n_kept,
        r.max_avg_proposals
    );
    println!();
    println!(
        "{:<12} {:>8} {:>8} {:>8} {:>8} {:>8}",
        "(percent)", "AR@1", "AR@5", "AR@10", "AR@100", "AUC"
    );
    let row = |name: &str, r: &ProposalReport| {
        println!(
            "{:<12} {:>8} {:>8} {:>8} {:>8} {:>8.2}",
            name,
            pct(r.ar_at_1),
            pct(r.ar_at_5),
            pct(r.ar_at_10),
            pct(r.ar_at_100),
            r.auc
        )
    };
    if let Some(b) = baseline {
        row(&c.baseline_label, b);
    }
    row(&c.label, r);
    println!();
    println!("Recall (percent) per tIoU at the curve's points 1, 5, 10 and 100:");
    println!(
        "{:<12} {:>8} {:>8} {:>8} {:>8}",
        "tIoU", "@1", "@5", "@10", "@100"
    );
    for (t, rec) in r.tiou_thresholds.iter().zip(&r.recall) {
        println!(
            "{:<12.2} {:>8} {:>8} {:>8} {:>8}",
            t,
            pct(rec[0]),
            pct(rec[4]),
            pct(rec[9]),
            pct(rec[99])
        );
    }
    println!(
        "AN at those points: {:.2}, {:.2}, {:.2}, {:.2}",
        r.average_nr_proposals[0],
        r.average_nr_proposals[4],
        r.average_nr_proposals[9],
        r.average_nr_proposals[99]
    );
}

fn print_detection_table(
    c: &CommonArgs,
    gt: &GroundTruth,
    r: &DetectionReport,
    baseline: Option<&DetectionReport>,
) {
    println!(
        "Detections {} against {} (subset {}): {} videos, {} instances, {} classes, {} detections",
        c.pred.display(),
        c.gt.display(),
        gt.subset,
        r.n_videos,
        r.n_instances,
        gt.labels.len(),
        r.n_detections
    );
    if r.n_dropped > 0 {
        println!("{} detections with unknown labels dropped", r.n_dropped);
    }
    println!();
    let mut head = format!("{:<16}", "mAP (percent)");
    for t in &r.tiou_thresholds {
        head.push_str(&format!(" {:>6.2}", t));
    }
    head.push_str(&format!(" {:>8}", "average"));
    println!("{head}");
    let row = |name: &str, r: &DetectionReport| {
        let mut line = format!("{:<16}", name);
        for m in &r.map {
            line.push_str(&format!(" {:>6}", pct(*m)));
        }
        line.push_str(&format!(" {:>8}", pct(r.average_map)));
        println!("{line}");
    };
    if let Some(b) = baseline {
        row(&c.baseline_label, b);
    }
    row(&c.label, r);
    println!();
    println!("AP of every class: add --json");
}

fn run_bench(a: BenchArgs) -> Result<(), Failure> {
    if a.runs == 0 {
        return Err(Error::Options("--runs must be at least 1".into()).into());
    }
    let mut times = Vec::with_capacity(a.runs);
    let mut summary = String::new();
    for _ in 0..a.runs {
        let start = Instant::now();
        let (gt, pred_ok) = if a.task == "proposals" {
            let (gt, pred) = rayon::join(
                || GroundTruth::from_path(&a.gt, &a.subset),
                || ProposalSet::from_path(&a.pred),
            );
            let gt = gt?;
            let r = evaluate_proposals(&gt, &pred?, &ProposalOptions::default())?;
            summary = format!("AR@100 {:.6}, AUC {:.6}", r.ar_at_100, r.auc);
            (gt, true)
        } else {
            let (gt, pred) = rayon::join(
                || GroundTruth::from_path(&a.gt, &a.subset),
                || DetectionSet::from_path(&a.pred),
            );
            let gt = gt?;
            let r = evaluate_detections(&gt, &pred?, &DetectionOptions::default())?;
            summary = format!("average mAP {:.6}", r.average_map);
            (gt, true)
        };
        times.push(start.elapsed().as_secs_f64());
        drop((gt, pred_ok));
    }
    let mut sorted = times.clone();
    sorted.sort_by(f64::total_cmp);
    let size = std::fs::metadata(&a.pred)
        .map(|m| m.len())
        .with_context(|| format!("cannot read {}", a.pred.display()))
        .map_err(|e| Failure { code: 2, error: e })?;
    println!(
        "{} {} ({:.1} MB) on {} thread(s), {} runs: min {:.1} ms, median {:.1} ms, max {:.1} ms; {}",
        a.task,
        a.pred.display(),
        size as f64 / 1e6,
        rayon::current_num_threads(),
        a.runs,
        1e3 * sorted[0],
        1e3 * sorted[sorted.len() / 2],
        1e3 * sorted[sorted.len() - 1],
        summary
    );
    Ok(())
}
