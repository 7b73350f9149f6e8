//! The human-readable results (tables) and the JSON objects.

use std::io::{self, Write};

use tcanet_evaluator::diagnose::{Diagnosis, ErrorType};
use tcanet_evaluator::{DetectionReport, GroundTruth, ProposalReport, TopKRecall};

use crate::args::CommonArgs;

fn pct(x: f64) -> String {
    format!("{:.2}", 100.0 * x)
}

/// Names of the rows of a comparison table.
pub struct Names<'a> {
    pub result: &'a str,
    pub baseline: &'a str,
}

/// The proposal results as a table.
pub fn proposals(
    w: &mut dyn Write,
    c: &CommonArgs,
    gt: &GroundTruth,
    names: &Names,
    r: &ProposalReport,
    baseline: Option<&ProposalReport>,
) -> io::Result<()> {
    writeln!(
        w,
        "Proposals {} against {} (subset {}): {} videos, {} instances, {} proposals, {} kept \
         (M = {})\n",
        c.pred,
        c.gt,
        gt.subset,
        r.n_videos,
        r.n_instances,
        r.n_proposals,
        r.n_kept,
        r.max_avg_proposals
    )?;
    writeln!(
        w,
        "{:<12} {:>8} {:>8} {:>8} {:>8} {:>8}",
        "(percent)", "AR@1", "AR@5", "AR@10", "AR@100", "AUC"
    )?;
    let row = |w: &mut dyn Write, name: &str, r: &ProposalReport| {
        writeln!(
            w,
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
        row(w, names.baseline, b)?;
    }
    row(w, names.result, r)?;
    writeln!(
        w,
        "\nRecall (percent) per tIoU at the curve's points 1, 5, 10 and 100:"
    )?;
    writeln!(
        w,
        "{:<12} {:>8} {:>8} {:>8} {:>8}",
        "tIoU", "@1", "@5", "@10", "@100"
    )?;
    for (t, rec) in r.tiou_thresholds.iter().zip(&r.recall) {
        writeln!(
            w,
            "{:<12.2} {:>8} {:>8} {:>8} {:>8}",
            t,
            pct(rec[0]),
            pct(rec[4]),
            pct(rec[9]),
            pct(rec[99])
        )?;
    }
    let an = &r.average_nr_proposals;
    writeln!(
        w,
        "AN at those points: {:.2}, {:.2}, {:.2}, {:.2}",
        an[0], an[4], an[9], an[99]
    )
}

/// The detection results as a table.
pub fn detections(
    w: &mut dyn Write,
    c: &CommonArgs,
    gt: &GroundTruth,
    names: &Names,
    r: &DetectionReport,
    baseline: Option<&DetectionReport>,
    topk: Option<&TopKRecall>,
) -> io::Result<()> {
    writeln!(
        w,
        "Detections {} against {} (subset {}): {} videos, {} instances, {} classes, {} detections",
        c.pred,
        c.gt,
        gt.subset,
        r.n_videos,
        r.n_instances,
        gt.labels.len(),
        r.n_detections
    )?;
    if r.n_dropped > 0 {
        writeln!(w, "{} detections with unknown labels dropped", r.n_dropped)?;
    }
    let mut head = format!("\n{:<16}", "mAP (percent)");
    for t in &r.tiou_thresholds {
        head.push_str(&format!(" {:>6.2}", t));
    }
    writeln!(w, "{head} {:>8}", "average")?;
    let row = |w: &mut dyn Write, name: &str, r: &DetectionReport| {
        let mut line = format!("{:<16}", name);
        for m in &r.map {
            line.push_str(&format!(" {:>6}", pct(*m)));
        }
        writeln!(w, "{line} {:>8}", pct(r.average_map))
    };
    if let Some(b) = baseline {
        row(w, names.baseline, b)?;
    }
    row(w, names.result, r)?;
    if let Some(k) = topk {
        top_k(w, k)?;
    }
    writeln!(w, "\nAP of every class: add --json")
}

fn top_k(w: &mut dyn Write, k: &TopKRecall) -> io::Result<()> {
    let mut head = format!("\n{:<16}", "Top-k× recall");
    for kk in &k.k {
        head.push_str(&format!(" {:>7}", format!("R@{kk}x")));
    }
    writeln!(w, "{head}")?;
    for (t, row) in k.tiou_thresholds.iter().zip(&k.recall) {
        let mut line = format!("tIoU {:<11.2}", t);
        for v in row {
            line.push_str(&format!(" {:>7}", pct(*v)));
        }
        writeln!(w, "{line}")?;
    }
    Ok(())
}

/// The diagnosis as a summary table.
pub fn diagnosis(w: &mut dyn Write, c: &CommonArgs, d: &Diagnosis) -> io::Result<()> {
    writeln!(
        w,
        "DETAD diagnosis of {} against {}: {} instances ({} set aside), {} classes, N = {:.2} \
         instances per class, {} detections\naverage-mAP_N {} (percent)\n",
        c.pred,
        c.gt,
        d.n_instances,
        d.n_instances_set_aside,
        d.n_classes,
        d.average_instances_per_class,
        d.n_detections,
        pct(d.average_map_n)
    )?;
    let fp = &d.false_positive;
    writeln!(
        w,
        "False-positive profile (percent of each bar, averaged over thresholds; top {}·G: {} \
         detections, average-mAP_N {}):",
        fp.max_k,
        fp.n_detections,
        pct(fp.average_map_n)
    )?;
    let mut head = format!("{:<18}", "");
    for bar in &fp.profile {
        head.push_str(&format!(" {:>6}", format!("{}G", bar.k)));
    }
    writeln!(w, "{head} {:>10}", "gain if removed")?;
    for ty in ErrorType::ALL {
        let mut line = format!("{:<18}", ty.title());
        for bar in &fp.profile {
            line.push_str(&format!(" {:>6}", pct(bar.fractions.get(ty))));
        }
        if ty != ErrorType::TruePositive {
            line.push_str(&format!(
                " {:>+10.2}",
                100.0 * fp.removed_error_gain.get(ty)
            ));
        }
        writeln!(w, "{line}")?;
    }
    writeln!(
        w,
        "\nPer characteristic: average-mAP_N / false-negative rate (percent) per bucket:"
    )?;
    for ch in &d.characteristics {
        let cells: Vec<String> = ch
            .buckets
            .iter()
            .map(|b| {
                let f = |x: Option<f64>| x.map_or("-".to_string(), pct);
                format!(
                    "{} {}/{}",
                    b.label,
                    f(b.average_map_n),
                    f(b.false_negative_rate)
                )
            })
            .collect();
        writeln!(w, "{:<18} {}", ch.title, cells.join("  "))?;
    }
    writeln!(w, "\nEvery number: add --json; figures: --plot DIR")
}
