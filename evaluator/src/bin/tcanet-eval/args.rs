//! The command line: subcommands, flags, their ranges and help.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use tcanet_cli::{range, CommonFlags, Input, Output};

const ABOUT: &str = "Scores temporal action proposals (AR@AN, AUC) and detections (mAP) \
exactly as the ActivityNet challenge's official evaluation code, and diagnoses detections \
as DETAD does.";

const LONG_ABOUT: &str = "Scores temporal action proposals (AR@AN, AUC) and detections (mAP) \
exactly as the ActivityNet challenge's official evaluation code (eval_proposal.py, \
eval_detection.py), to many decimals, in milliseconds, without the network; and diagnoses \
detections as DETAD does (false-positive profile, sensitivity, false negatives).

GT is a ground-truth file in the ActivityNet format:
  {\"database\": {VIDEO: {\"subset\": \"validation\", \"duration\": D, \"annotations\": [{\"segment\": [s, e], \"label\": NAME}]}}}
PRED is a submission:
  {\"results\": {VIDEO: [{\"segment\": [s, e], \"score\": x, \"label\": NAME}]}}   (label: detections only)
Either may be '-' for standard input (except for bench, which reads them on every run).

Results (a table, or JSON with --json) go to standard output, or to -o FILE (written \
atomically); progress and warnings go to standard error (--quiet keeps only warnings and \
errors; NO_COLOR turns colour off). A reader that closes the pipe early (| head) ends the run \
quietly.

Ties: detections and proposals with equal scores are ranked in file order. The official code \
sorts with numpy's unstable sort, whose order among equal scores is an accident of the \
implementation; when ranking the tied entries in reverse file order would change a result, a \
warning gives both numbers (the official code's lies between or near them). Without ties the \
numbers agree with the official code's to 1e-9.

Examples:
  tcanet-eval proposals activitynet13_gt.json proposals.json
  tcanet-eval proposals gt.json refined.json --baseline input.json --plot cmp.png
  tcanet-eval detections gt.json detections.json --json -o scores.json
  tcanet-eval detections thumos_gt.json dets.json --subset Test --preset thumos14 --recall-topk 1,5
  tcanet-eval diagnose gt.json detections.json --plot figures/
  cat dets.json | tcanet-eval detections gt.json - --exclude blocked.txt

Exit status: 0 success; 2 usage error or invalid input (the message names the file, line, \
video and field); 1 any other failure (an output that cannot be written, a full disk, a \
closed pipe).";

/// `tcanet-eval`'s command line.
#[derive(Parser)]
#[command(name = "tcanet-eval", version = tcanet_version::long_version!(), about = ABOUT, long_about = LONG_ABOUT)]
pub struct Cli {
    #[command(flatten)]
    pub common: CommonFlags,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Average recall vs average number of proposals (AR@AN), AR@1/5/10/100 and AUC.
    #[command(
        long_about = "Average recall vs average number of proposals per video (AR@AN), \
as eval_proposal.py: recall per tIoU threshold at 100 points of AN, the AR curve (mean over \
thresholds), AR@1, AR@5, AR@10, AR@100 and the AUC (percent). Each video keeps its \
highest-scoring proposals (ties in file order) so that the average per video is at most \
--max-proposals; proposals of videos outside the subset count in that average, as in the \
official code."
    )]
    Proposals(ProposalArgs),
    /// Average precision per class and tIoU threshold, mAP and average mAP.
    #[command(
        long_about = "Average precision of every class at every tIoU threshold, mAP per \
threshold and the average mAP, as eval_detection.py (VOC-2011 interpolated AP; each ground-truth \
instance matches at most one detection per threshold, best tIoU first; ties in score in file \
order). With --recall-topk, also OpenTAD's top-k× recall."
    )]
    Detections(DetectionArgs),
    /// DETAD's diagnosis of detections: false-positive profile, sensitivity, false negatives.
    #[command(long_about = DIAGNOSE_ABOUT)]
    Diagnose(DiagnoseArgs),
    /// Times whole runs (reading both files + evaluating) in this process.
    #[command(
        long_about = "Times whole runs in this process: reading and parsing both JSON \
files and evaluating, repeated --runs times; prints the fastest, median and slowest run."
    )]
    Bench(BenchArgs),
}

const DIAGNOSE_ABOUT: &str = "DETAD's analyses (Alwassel et al., \"Diagnosing Error in \
Temporal Action Detectors\", ECCV 2018) of a detection submission:

Normalized precision: with N the average number of instances per class, precision at a rank \
is R·N / (R·N + FP) (R the class's recall, FP its false positives so far); AP_N is the \
VOC-2011 interpolated area under it, average-mAP_N the mean over classes and thresholds. \
Matching is the official code's.

False-positive profile: each class c keeps its top K·G_c detections (G_c its instances, K = \
--max-k); bar k holds each class's detections ranked (k-1)·G_c+1 .. k·G_c. At each threshold \
t a detection is a true positive, or is judged by the instance of its video (any class) with \
the highest tIoU: tIoU >= t and same label: double detection; another label: wrong label; \
--min-tiou <= tIoU < t and same label: localization; another label: confusion; otherwise (or \
a video without instances): background. Shares are averaged over thresholds. Removing error \
impact: the average-mAP_N of the kept detections recomputed without one error type, minus \
the average-mAP_N with it.

Sensitivity: average-mAP_N counting only the instances of one bucket of a characteristic, \
leaving out detections matched (at any threshold) to instances of other buckets. False \
negatives: the share of a bucket's instances that no detection matches, averaged over \
thresholds, where a match at a normalized precision <= --fn-min-precision does not count.

Characteristics (buckets right-closed, the first also holding its lower bound): coverage = \
length / video duration (a \"duration\" that is not a positive number is an error; activitynet: XS [0,.2] S (.2,.4] M (.4,.6] L (.6,.8] XL (.8,1]; \
thumos14: edges 0, .02, .04, .06, .08, 1); length in seconds (activitynet: edges 0, 30, 60, \
120, 180, inf; thumos14: 0, 3, 6, 12, 18, inf); instances per video, any class (activitynet: \
XS [-1,1] S (1,4] M (4,8] L (8,inf); thumos14: edges -1, 1, 40, 80, inf). With \
--characteristics FILE (DETAD's format: the ground truth with, in each annotation, \
\"context-size\" 0..6 and \"context-distance\" 0..3 (whole numbers) and \"agreement\" 0..1, \
each or null, as many annotations as GT in the same order): context size (buckets 0..6), context distance \
(Inf [-1,0], N (0,1], M (1,2], F (2,3]) and agreement (XW, W, M, H, XH: fifths of [0, 1]).

As DETAD does, instances of zero or negative length or longer than their video are set \
aside first. Output: a summary table, or every number with --json; --plot DIR writes \
false_positive_analysis, sensitivity_analysis and false_negative_analysis (.png, or .svg \
with --plot-format svg).";

/// Threshold presets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Preset {
    /// 0.5:0.95:0.05 (and DETAD's ActivityNet buckets).
    #[value(alias = "anet", alias = "hacs")]
    Activitynet,
    /// 0.3,0.4,0.5,0.6,0.7 (and DETAD's THUMOS-14 buckets).
    #[value(alias = "thumos")]
    Thumos14,
}

/// tIoU thresholds parsed from `--tiou`.
#[derive(Clone, Debug, PartialEq)]
pub struct Thresholds(pub Vec<f64>);

fn parse_tiou(text: &str) -> Result<Thresholds, String> {
    tcanet_evaluator::threshold_list(text)
        .map(Thresholds)
        .map_err(|why| format!("{why}; use a list like 0.3,0.5,0.7 or a range like 0.5:0.95:0.05"))
}

/// The k values of `--recall-topk`.
#[derive(Clone, Debug, PartialEq)]
pub struct TopK(pub Vec<usize>);

fn parse_topk(text: &str) -> Result<TopK, String> {
    let one = range::int_in::<usize>(1, 1000);
    let ks = text
        .split(',')
        .map(|k| one(k).map_err(|e| format!("'{}' {e}", k.trim())))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(TopK(ks))
}

fn parse_input(text: &str) -> Result<Input, String> {
    if text.is_empty() {
        return Err("an empty path".into());
    }
    Ok(text.parse().unwrap_or(Input::Stdin))
}

/// A file `bench` reads on every run: standard input can be read only once.
fn parse_timed_file(text: &str) -> Result<PathBuf, String> {
    match parse_input(text)? {
        Input::Stdin => Err("standard input can be read only once, and bench reads its \
                             files on every run; give a file"
            .into()),
        Input::Path(path) => Ok(path),
    }
}

fn parse_output(text: &str) -> Result<Output, String> {
    if text.is_empty() {
        return Err("an empty path; give a file or '-' for standard output".into());
    }
    Ok(text.parse().unwrap_or(Output::Stdout))
}

/// Flags of every scoring subcommand.
#[derive(Args, Clone)]
pub struct CommonArgs {
    /// Ground-truth file ({"database": ...}), or '-' for standard input.
    #[arg(value_parser = parse_input)]
    pub gt: Input,
    /// Submission file ({"results": ...}), or '-' for standard input.
    #[arg(value_parser = parse_input)]
    pub pred: Input,
    /// Subset of the ground truth to evaluate ("validation", "testing", "Test", ...).
    #[arg(long, default_value = "validation")]
    pub subset: String,
    /// tIoU thresholds, each in (0, 1]: a list (0.3,0.5,0.7) or start:stop:step with stop
    /// included (0.5:0.95:0.05; the step is adjusted to end on stop, as numpy's
    /// linspace(start, stop, round((stop-start)/step)+1); a step over twice stop-start is an
    /// error).
    #[arg(long, value_name = "LIST|RANGE", allow_negative_numbers = true, value_parser = parse_tiou, conflicts_with = "preset")]
    pub tiou: Option<Thresholds>,
    /// Threshold preset: activitynet (0.5:0.95:0.05, the default) or thumos14 (0.3:0.7:0.1).
    #[arg(long, value_name = "NAME", value_enum)]
    pub preset: Option<Preset>,
    /// Leave these videos out of the ground truth and the submission (the official code's
    /// blocked videos): one id per line ('#' starts a comment) or a JSON list of ids.
    #[arg(long, value_name = "FILE", value_parser = parse_input)]
    pub exclude: Option<Input>,
    /// Print one JSON object (values as fractions, AUC in percent) instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Where the results (table or JSON) go: a file (written atomically) or '-' for standard
    /// output.
    #[arg(short, long, value_name = "FILE|-", default_value = "-", value_parser = parse_output)]
    pub output: Output,
}

/// Flags of `proposals` and `detections` (not `diagnose`).
#[derive(Args, Clone)]
pub struct CompareArgs {
    /// Draw the figure to FILE (.svg or .png): proposals, the AR-AN curve per tIoU and the
    /// average (with --baseline, both average curves); detections, mAP per tIoU threshold.
    #[arg(long, value_name = "FILE")]
    pub plot: Option<PathBuf>,
    /// Another submission evaluated the same way and shown beside PRED (table, JSON and plot).
    #[arg(long, value_name = "OTHER.json", value_parser = parse_input)]
    pub baseline: Option<Input>,
    /// Name of PRED in the plot and table.
    #[arg(long, value_name = "NAME", default_value = "result")]
    pub label: String,
    /// Name of the baseline in the plot and table.
    #[arg(long, value_name = "NAME", default_value = "baseline")]
    pub baseline_label: String,
}

#[derive(Args)]
pub struct ProposalArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    #[command(flatten)]
    pub compare: CompareArgs,
    /// M: the maximum average number of proposals per video (1 to 1000000).
    #[arg(long, value_name = "M", default_value_t = 100,
          allow_negative_numbers = true, value_parser = range::int_in::<u32>(1, 1_000_000))]
    pub max_proposals: u32,
}

#[derive(Args)]
pub struct DetectionArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    #[command(flatten)]
    pub compare: CompareArgs,
    /// Also OpenTAD's top-k× recall for each k (1 to 1000, e.g. 1,5): per class and video with
    /// x instances, its k·x best detections of the class are kept, and an instance counts when
    /// one of them reaches the threshold (no one-to-one matching); the mean over classes.
    /// JSON key "recall_topk".
    #[arg(long, value_name = "K,...", allow_negative_numbers = true, value_parser = parse_topk)]
    pub recall_topk: Option<TopK>,
    /// Drop detections whose label is not a class of the ground truth (and say how many)
    /// instead of failing.
    #[arg(long)]
    pub ignore_unknown_labels: bool,
}

#[derive(Args)]
pub struct DiagnoseArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// Bars of the false-positive profile: the top K·G detections per class (1 to 100).
    #[arg(long, value_name = "K", default_value_t = 10, allow_negative_numbers = true, value_parser = range::int_in::<usize>(1, 100))]
    pub max_k: usize,
    /// tIoU below which a false positive is a background error, in [0, 1].
    #[arg(long, value_name = "T", default_value_t = 0.1,
          allow_negative_numbers = true, value_parser = range::float_in(0.0, true, 1.0, true))]
    pub min_tiou: f64,
    /// False negatives: a match where the normalized precision is at most this, in [0, 1),
    /// does not count.
    #[arg(long, value_name = "P", default_value_t = 0.05,
          allow_negative_numbers = true, value_parser = range::float_in(0.0, true, 1.0, false))]
    pub fn_min_precision: f64,
    /// DETAD characteristics file (context size, context distance, agreement); see above.
    #[arg(long, value_name = "FILE", value_parser = parse_input)]
    pub characteristics: Option<Input>,
    /// Write the three figures into DIR (created if its parent exists).
    #[arg(long, value_name = "DIR")]
    pub plot: Option<PathBuf>,
    /// Image format of the figures.
    #[arg(long, value_name = "FORMAT", value_enum, default_value_t = FigureFormat::Png)]
    pub plot_format: FigureFormat,
    /// Drop detections whose label is not a class of the ground truth (and say how many)
    /// instead of failing.
    #[arg(long)]
    pub ignore_unknown_labels: bool,
}

/// Image formats of `diagnose --plot`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum FigureFormat {
    /// PNG bitmaps.
    Png,
    /// Scalable vector graphics.
    Svg,
}

/// What `bench` times.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Task {
    /// AR@AN and AUC.
    Proposals,
    /// mAP.
    Detections,
}

#[derive(Args)]
pub struct BenchArgs {
    /// What to evaluate.
    #[arg(value_enum)]
    pub task: Task,
    /// Ground-truth file (a file: every run reads it again).
    #[arg(value_parser = parse_timed_file)]
    pub gt: PathBuf,
    /// Submission file (a file: every run reads it again).
    #[arg(value_parser = parse_timed_file)]
    pub pred: PathBuf,
    /// Number of timed runs (1 to 100000).
    #[arg(long, default_value_t = 10, allow_negative_numbers = true, value_parser = range::int_in::<usize>(1, 100_000))]
    pub runs: usize,
    /// Subset of the ground truth.
    #[arg(long, default_value = "validation")]
    pub subset: String,
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
