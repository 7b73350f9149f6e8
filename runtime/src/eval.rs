//! End-of-run scores with the project's evaluator (`tcanet-evaluator`), on
//! the in-memory results of a run.
use std::fmt;
use std::path::Path;

use tcanet_evaluator::{
    evaluate_detections, evaluate_proposals, DetectionOptions, DetectionReport, DetectionSet,
    GroundTruth, ProposalOptions, ProposalReport, ProposalSet,
};

use crate::infer::RunSummary;

/// The evaluator's reports for a run.
#[derive(Debug, Clone)]
pub struct RunScores {
    /// The subset scored.
    pub subset: String,
    /// AR@AN / AUC of the refined proposals.
    pub proposals: ProposalReport,
    /// mAP of the detections, when a classifier was given.
    pub detections: Option<DetectionReport>,
}

impl fmt::Display for RunScores {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = &self.proposals;
        write!(
            f,
            "{}: proposals AR@1 {:.4}, AR@5 {:.4}, AR@10 {:.4}, AR@100 {:.4}, AUC {:.2}",
            self.subset, p.ar_at_1, p.ar_at_5, p.ar_at_10, p.ar_at_100, p.auc
        )?;
        if let Some(d) = &self.detections {
            let at = |i: usize| d.map.get(i).copied().unwrap_or(f64::NAN);
            write!(
                f,
                "\n{}: detections mAP@0.5 {:.4}, mAP@0.75 {:.4}, average mAP {:.4}",
                self.subset,
                at(0),
                at(5),
                d.average_map
            )?;
        }
        Ok(())
    }
}

/// Scores `summary` against the ground truth of `subset` in `annotations`
/// (proposals always, detections when the run made them).
pub fn evaluate_run(
    annotations: &Path,
    subset: &str,
    summary: &RunSummary,
) -> Result<RunScores, tcanet_evaluator::Error> {
    let gt = GroundTruth::from_path(annotations, subset)?;
    evaluate_run_against(&gt, subset, summary)
}

/// [`evaluate_run`] with the ground truth of `subset` already read (so that
/// a run can check it before any video).
pub fn evaluate_run_against(
    gt: &GroundTruth,
    subset: &str,
    summary: &RunSummary,
) -> Result<RunScores, tcanet_evaluator::Error> {
    let mut proposals = ProposalSet::new();
    for r in &summary.results {
        proposals.push(
            r.video.clone(),
            r.proposals
                .iter()
                .map(|p| tcanet_evaluator::Proposal {
                    segment: [p.start, p.end],
                    score: p.score,
                })
                .collect(),
        );
    }
    let proposal_report = evaluate_proposals(gt, &proposals, &ProposalOptions::default())?;
    let detections = if summary.results.iter().any(|r| r.detections.is_some()) {
        let mut set = DetectionSet::new();
        for r in &summary.results {
            let dets = r.detections.as_deref().unwrap_or_default();
            let entries = dets
                .iter()
                .map(|d| tcanet_evaluator::Detection {
                    segment: [d.start, d.end],
                    score: d.score,
                    label: set.label_id(&d.label),
                })
                .collect();
            set.push(r.video.clone(), entries);
        }
        let opts = DetectionOptions {
            ignore_unknown_labels: true,
            ..DetectionOptions::default()
        };
        Some(evaluate_detections(gt, &set, &opts)?)
    } else {
        None
    };
    Ok(RunScores {
        subset: subset.to_string(),
        proposals: proposal_report,
        detections,
    })
}
