//! The subcommands.

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use tcanet_cli::{Log, Output};
use tcanet_evaluator::diagnose::{self, BucketPreset, DiagnoseOptions, ExtraCharacteristics};
use tcanet_evaluator::plot::{self, PlotFormat};
use tcanet_evaluator::{
    evaluate_detections, evaluate_proposals, numeric, recall_at_top_k, DetectionOptions,
    DetectionSet, GroundTruth, ProposalOptions, ProposalSet,
};

use crate::args::{
    BenchArgs, CommonArgs, CompareArgs, DetectionArgs, DiagnoseArgs, FigureFormat, Preset,
    ProposalArgs, Task,
};
use crate::tables::{self, Names};
use crate::{inputs, Failure};

fn thresholds(c: &CommonArgs) -> Vec<f64> {
    match (&c.tiou, c.preset) {
        (Some(t), _) => t.0.clone(),
        (None, Some(Preset::Thumos14)) => vec![0.3, 0.4, 0.5, 0.6, 0.7],
        (None, _) => numeric::linspace(0.5, 0.95, 10),
    }
}

/// Prints warnings to standard error, each once.
fn warn(log: &Log, warnings: &[String], more: Option<&[String]>) {
    let mut seen = HashSet::new();
    for w in warnings.iter().chain(more.unwrap_or(&[])) {
        if seen.insert(w) {
            log.warn(w);
        }
    }
}

fn file_name(input: &tcanet_cli::Input) -> String {
    match input.path() {
        Some(p) => p
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| p.display().to_string()),
        None => input.name(),
    }
}

/// The inputs and outputs of `proposals` and `detections`, checked.
fn check_compare(c: &CommonArgs, k: &CompareArgs) -> Result<Option<Output>, Failure> {
    let mut named = inputs::common_inputs(c);
    if let Some(b) = &k.baseline {
        named.push(("--baseline", b));
    }
    let plot = match &k.plot {
        Some(p) => {
            PlotFormat::of(p).map_err(Failure::usage)?;
            Some(Output::Path(p.clone()))
        }
        None => None,
    };
    let mut outputs = vec![("-o", &c.output)];
    if let Some(p) = &plot {
        outputs.push(("--plot", p));
    }
    inputs::check_before_work(&named, &outputs)?;
    Ok(plot)
}

/// Writes one JSON object (with the baseline's under `baseline`, and
/// `extra` keys added) and a newline.
fn write_json<T: serde::Serialize>(
    w: &mut dyn Write,
    report: &T,
    baseline: Option<serde_json::Value>,
    extra: &[(&str, serde_json::Value)],
) -> std::io::Result<()> {
    let mut value = serde_json::to_value(report).map_err(std::io::Error::other)?;
    if let Some(obj) = value.as_object_mut() {
        for (k, v) in extra {
            obj.insert(k.to_string(), v.clone());
        }
        if let Some(b) = baseline {
            obj.insert("baseline".into(), b);
        }
    }
    serde_json::to_writer(&mut *w, &value).map_err(std::io::Error::other)?;
    writeln!(w)
}

fn to_value<T: serde::Serialize>(v: &T) -> Result<serde_json::Value, Failure> {
    serde_json::to_value(v).map_err(Failure::other)
}

/// `proposals`: AR@AN and AUC.
pub fn proposals(a: ProposalArgs, log: &Log) -> Result<(), Failure> {
    let c = &a.common;
    let plot_out = check_compare(c, &a.compare)?;
    let opts = ProposalOptions {
        tiou_thresholds: thresholds(c),
        max_avg_proposals: a.max_proposals as f64,
    };
    let (gt, pred, base): (_, ProposalSet, _) =
        inputs::scoring_inputs(c, a.compare.baseline.as_ref(), log)?;
    let report = evaluate_proposals(&gt, &pred, &opts)?;
    let baseline = base
        .map(|b| evaluate_proposals(&gt, &b, &opts))
        .transpose()?;
    warn(
        log,
        &report.warnings,
        baseline.as_ref().map(|b| &b.warnings[..]),
    );
    let names = Names {
        result: &a.compare.label,
        baseline: &a.compare.baseline_label,
    };
    let base_json = baseline.as_ref().map(to_value).transpose()?;
    c.output.write_with(|w| {
        if c.json {
            write_json(w, &report, base_json, &[])
        } else {
            tables::proposals(w, c, &gt, &names, &report, baseline.as_ref())
        }
    })?;
    if let Some(Output::Path(path)) = &plot_out {
        let result = match &baseline {
            Some(b) => plot::plot_proposal_comparison(
                path,
                "Average recall vs average number of proposals",
                &[(names.baseline, b), (names.result, &report)],
            ),
            None => plot::plot_proposals(path, &format!("AR–AN: {}", file_name(&c.pred)), &report),
        };
        result.map_err(Failure::other)?;
        log.info(format!("wrote {}", path.display()));
    }
    leak_at_exit((gt, pred, report, baseline));
    Ok(())
}

/// Leaves `x`'s memory to the system, which takes it back all at once
/// when the process ends (next), instead of freeing its tens of thousands
/// of blocks one by one (a millisecond on a 470K-entry run).
fn leak_at_exit<T>(x: T) {
    std::mem::forget(x);
}

/// `detections`: mAP (and top-k× recall).
pub fn detections(a: DetectionArgs, log: &Log) -> Result<(), Failure> {
    let c = &a.common;
    let plot_out = check_compare(c, &a.compare)?;
    let opts = DetectionOptions {
        tiou_thresholds: thresholds(c),
        ignore_unknown_labels: a.ignore_unknown_labels,
    };
    let (gt, pred, base): (_, DetectionSet, _) =
        inputs::scoring_inputs(c, a.compare.baseline.as_ref(), log)?;
    let report = evaluate_detections(&gt, &pred, &opts)?;
    let baseline = base
        .as_ref()
        .map(|b| evaluate_detections(&gt, b, &opts))
        .transpose()?;
    let ks = a.recall_topk.as_ref().map(|k| k.0.as_slice());
    let topk = ks
        .map(|ks| recall_at_top_k(&gt, &pred, &opts, ks))
        .transpose()?;
    warn(
        log,
        &report.warnings,
        baseline.as_ref().map(|b| &b.warnings[..]),
    );
    write_detections(
        c,
        &a.compare,
        &gt,
        (&report, baseline.as_ref()),
        topk.as_ref(),
        base.as_ref(),
        &opts,
        ks,
    )?;
    if let Some(Output::Path(path)) = &plot_out {
        let mut series = Vec::new();
        if let Some(b) = &baseline {
            series.push((a.compare.baseline_label.as_str(), b));
        }
        series.push((a.compare.label.as_str(), &report));
        let title = format!("mAP per tIoU threshold: {}", file_name(&c.pred));
        plot::plot_detections(path, &title, &series).map_err(Failure::other)?;
        log.info(format!("wrote {}", path.display()));
    }
    leak_at_exit((gt, pred, base, report, baseline, topk));
    Ok(())
}

/// Writes the detection results (JSON or table) where `-o` says.
#[allow(clippy::too_many_arguments)]
fn write_detections(
    c: &CommonArgs,
    k: &CompareArgs,
    gt: &GroundTruth,
    (report, baseline): (
        &tcanet_evaluator::DetectionReport,
        Option<&tcanet_evaluator::DetectionReport>,
    ),
    topk: Option<&tcanet_evaluator::TopKRecall>,
    base_set: Option<&DetectionSet>,
    opts: &DetectionOptions,
    ks: Option<&[usize]>,
) -> Result<(), Failure> {
    let mut extra = Vec::new();
    if let Some(t) = topk {
        extra.push(("recall_topk", to_value(t)?));
    }
    let base_json = match baseline {
        Some(b) => {
            let mut v = to_value(b)?;
            if let (Some(ks), Some(set), Some(obj)) = (ks, base_set, v.as_object_mut()) {
                let t = recall_at_top_k(gt, set, opts, ks)?;
                obj.insert("recall_topk".into(), to_value(&t)?);
            }
            Some(v)
        }
        None => None,
    };
    let names = Names {
        result: &k.label,
        baseline: &k.baseline_label,
    };
    c.output.write_with(|w| {
        if c.json {
            write_json(w, report, base_json, &extra)
        } else {
            tables::detections(w, c, gt, &names, report, baseline, topk)
        }
    })?;
    Ok(())
}

/// The figure directory of `diagnose --plot`: created when its parent
/// exists; the three figure paths checked like any output.
fn figure_outputs(dir: &Path, format: PlotFormat) -> Result<Vec<Output>, Failure> {
    if !dir.is_dir() {
        if dir.exists() {
            return Err(Failure::usage(anyhow::anyhow!(
                "--plot {}: not a directory",
                dir.display()
            )));
        }
        std::fs::create_dir(dir).map_err(|e| {
            Failure::usage(anyhow::anyhow!(
                "--plot {}: cannot create it: {e}",
                dir.display()
            ))
        })?;
    }
    let ext = if format == PlotFormat::Svg {
        "svg"
    } else {
        "png"
    };
    Ok([
        "false_positive_analysis",
        "sensitivity_analysis",
        "false_negative_analysis",
    ]
    .iter()
    .map(|n| Output::Path(dir.join(format!("{n}.{ext}"))))
    .collect())
}

/// `diagnose`: DETAD's analyses.
pub fn diagnose(a: DiagnoseArgs, log: &Log) -> Result<(), Failure> {
    let c = &a.common;
    let mut named = inputs::common_inputs(c);
    if let Some(x) = &a.characteristics {
        named.push(("--characteristics", x));
    }
    let format = match a.plot_format {
        FigureFormat::Png => PlotFormat::Png,
        FigureFormat::Svg => PlotFormat::Svg,
    };
    // -o first, then the figure directory (created here) and its files.
    inputs::check_before_work(&named, &[("-o", &c.output)])?;
    let mut outputs: Vec<(&str, Output)> = vec![("-o", c.output.clone())];
    let figures = match &a.plot {
        Some(dir) => figure_outputs(dir, format)?,
        None => Vec::new(),
    };
    outputs.extend(figures.iter().map(|f| ("--plot", f.clone())));
    let refs: Vec<(&str, &Output)> = outputs.iter().map(|(n, o)| (*n, o)).collect();
    inputs::check_before_work(&named, &refs)?;
    let opts = DiagnoseOptions {
        tiou_thresholds: thresholds(c),
        buckets: match c.preset {
            Some(Preset::Thumos14) => BucketPreset::Thumos14,
            _ => BucketPreset::ActivityNet,
        },
        max_k: a.max_k,
        min_tiou: a.min_tiou,
        fn_min_precision: a.fn_min_precision,
        ignore_unknown_labels: a.ignore_unknown_labels,
    };
    let extra = match &a.characteristics {
        Some(x) => Some(ExtraCharacteristics::from_slice(
            &inputs::bytes(x)?,
            &x.name(),
        )?),
        None => None,
    };
    let (gt, pred, _): (_, DetectionSet, _) = inputs::scoring_inputs(c, None, log)?;
    let d = diagnose::diagnose(&gt, &pred, &opts, extra.as_ref())?;
    warn(log, &d.warnings, None);
    c.output.write_with(|w| {
        if c.json {
            write_json(w, &d, None, &[])
        } else {
            tables::diagnosis(w, c, &d)
        }
    })?;
    if let Some(dir) = &a.plot {
        let written: Vec<PathBuf> =
            plot::plot_diagnosis(dir, format, &d).map_err(Failure::other)?;
        for p in written {
            log.info(format!("wrote {}", p.display()));
        }
    }
    Ok(())
}

/// `bench`: whole runs timed in this process.
pub fn bench(a: BenchArgs, _log: &Log) -> Result<(), Failure> {
    let mut times = Vec::with_capacity(a.runs);
    let mut summary = String::new();
    for _ in 0..a.runs {
        let start = Instant::now();
        match a.task {
            Task::Proposals => {
                let (gt, pred) = rayon::join(
                    || GroundTruth::from_path(&a.gt, &a.subset),
                    || ProposalSet::from_path(&a.pred),
                );
                let r = evaluate_proposals(&gt?, &pred?, &ProposalOptions::default())?;
                summary = format!("AR@100 {:.6}, AUC {:.6}", r.ar_at_100, r.auc);
            }
            Task::Detections => {
                let (gt, pred) = rayon::join(
                    || GroundTruth::from_path(&a.gt, &a.subset),
                    || DetectionSet::from_path(&a.pred),
                );
                let r = evaluate_detections(&gt?, &pred?, &DetectionOptions::default())?;
                summary = format!("average mAP {:.6}", r.average_map);
            }
        }
        times.push(start.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    let size = std::fs::metadata(&a.pred).map(|m| m.len()).unwrap_or(0);
    let task = match a.task {
        Task::Proposals => "proposals",
        Task::Detections => "detections",
    };
    let line = format!(
        "{task} {} ({:.1} MB) on {} thread(s), {} runs: min {:.1} ms, median {:.1} ms, max {:.1} ms; {summary}\n",
        a.pred.display(),
        size as f64 / 1e6,
        rayon::current_num_threads(),
        a.runs,
        1e3 * times[0],
        1e3 * times[times.len() / 2],
        1e3 * times[times.len() - 1],
    );
    Output::Stdout.write_bytes(line.as_bytes())?;
    Ok(())
}
