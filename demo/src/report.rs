//! What the demo reports: the evaluator's scores (read from its `--json`
//! output), the before/after table, `report.md` and `summary.json`.
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

/// Proposal scores of one submission, as `tcanet-eval proposals --json`
/// prints them (AR@k as fractions, AUC in percent).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ProposalScores {
    /// AR at 1 proposal per video.
    #[serde(rename = "AR@1")]
    pub ar1: f64,
    /// AR at 5.
    #[serde(rename = "AR@5")]
    pub ar5: f64,
    /// AR at 10.
    #[serde(rename = "AR@10")]
    pub ar10: f64,
    /// AR at 100.
    #[serde(rename = "AR@100")]
    pub ar100: f64,
    /// Area under the AR-AN curve, percent.
    #[serde(rename = "AUC")]
    pub auc: f64,
}

/// `tcanet-eval proposals --json` with `--baseline`: the refined scores and
/// the baseline's under `baseline`.
#[derive(Debug, Deserialize)]
pub struct ComparedScores {
    /// The submission's scores.
    #[serde(flatten)]
    pub refined: ProposalScores,
    /// The baseline's scores.
    pub baseline: ProposalScores,
}

/// The part of `tcanet-eval detections --json` the demo reports.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DetectionScores {
    /// Mean of the mAPs over the thresholds.
    #[serde(rename = "average_mAP")]
    pub average_map: f64,
    /// mAP per threshold.
    #[serde(rename = "mAP")]
    pub map: Vec<f64>,
    /// The thresholds.
    pub tiou_thresholds: Vec<f64>,
}

/// Parses an evaluator's `--json` output (`what` names it in errors).
pub fn parse<T: for<'de> Deserialize<'de>>(json: &str, what: &str) -> Result<T> {
    serde_json::from_str(json).with_context(|| format!("{what}: not the evaluator's --json output"))
}

/// One row of the before/after table.
pub struct Row<'a> {
    /// Its label.
    pub label: &'a str,
    /// Its scores.
    pub scores: &'a ProposalScores,
}

/// The before/after table in percent (AR@1, AR@10, AR@100, AUC).
pub fn before_after_table(rows: &[Row<'_>]) -> String {
    let mut s = String::from(
        "| proposals (validation, %) | AR@1 | AR@10 | AR@100 | AUC |\n| --- | ---: | ---: | ---: | ---: |\n",
    );
    for r in rows {
        let m = r.scores;
        s += &format!(
            "| {} | {:.2} | {:.2} | {:.2} | {:.2} |\n",
            r.label,
            100.0 * m.ar1,
            100.0 * m.ar10,
            100.0 * m.ar100,
            m.auc
        );
    }
    s
}

/// The calibration in one line: the scale chosen on the held-out videos
/// and what it gives on the validation videos beside the release's 0.2.
pub fn calibration_line(
    c: &tcanet_models::calibration::Calibration,
    calibrated: &ProposalScores,
    release: &ProposalScores,
) -> String {
    let input = c
        .input_auc
        .map(|a| format!(", input proposals {a:.2}"))
        .unwrap_or_default();
    format!(
        "decode scale {} chosen on {} held-out training videos (their AUC per scale: {}{input}); \
         validation AUC {:.2} with it vs {:.2} with the release's 0.2 ({:+.2} points)",
        c.chosen,
        c.videos,
        c.describe_grid(),
        calibrated.auc,
        release.auc,
        calibrated.auc - release.auc
    )
}

/// Seconds per stage, as a markdown table.
pub fn seconds_table(seconds: &[(&str, f64)]) -> String {
    let mut s = String::from("| stage | seconds |\n| --- | ---: |\n");
    for (k, v) in seconds {
        s += &format!("| {k} | {v:.1} |\n");
    }
    s
}

/// The one-line summary of `seconds`.
pub fn seconds_line(seconds: &[(&str, f64)]) -> String {
    seconds
        .iter()
        .map(|(k, v)| format!("{k} {v:.1}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scores(ar: f64, auc: f64) -> ProposalScores {
        ProposalScores {
            ar1: ar,
            ar5: ar,
            ar10: ar,
            ar100: ar,
            auc,
        }
    }

    #[test]
    fn table_is_in_percent() {
        let (a, b, c) = (scores(0.5, 60.0), scores(0.55, 62.5), scores(0.625, 70.125));
        let t = before_after_table(&[
            Row {
                label: "input",
                scores: &a,
            },
            Row {
                label: "input + Soft-NMS (no network)",
                scores: &b,
            },
            Row {
                label: "refined (TCANet)",
                scores: &c,
            },
        ]);
        assert!(
            t.contains("| input | 50.00 | 50.00 | 50.00 | 60.00 |"),
            "{t}"
        );
        assert!(
            t.contains("| refined (TCANet) | 62.50 | 62.50 | 62.50 | 70.12 |"),
            "{t}"
        );
        assert!(
            t.contains("| input + Soft-NMS (no network) | 55.00 | 55.00 | 55.00 | 62.50 |"),
            "{t}"
        );
        assert_eq!(t.lines().count(), 5, "{t}");
    }

    #[test]
    fn the_calibration_line_compares_with_the_release() {
        let c = tcanet_models::calibration::Calibration {
            grid: vec![0.2, 1.0],
            auc: vec![60.0, 64.5],
            chosen: 1.0,
            source: "held-out".into(),
            videos: 32,
            instances: 40,
            epoch: 6,
            input_auc: Some(58.25),
        };
        let l = calibration_line(&c, &scores(0.6, 80.96), &scores(0.5, 72.18));
        assert!(l.contains("1 → 64.50, input proposals 58.25)"), "{l}");
        assert!(
            l.starts_with("decode scale 1 chosen on 32 held-out training videos"),
            "{l}"
        );
        assert!(l.contains("0.2 → 60.00, 1 → 64.50"), "{l}");
        assert!(
            l.ends_with(
                "validation AUC 80.96 with it vs 72.18 with the release's 0.2 (+8.78 points)"
            ),
            "{l}"
        );
    }

    #[test]
    fn evaluator_json_is_read_by_name() {
        let json = r#"{"AR@1": 0.1, "AR@5": 0.2, "AR@10": 0.3, "AR@100": 0.4, "AUC": 55.5,
            "average_recall": [0.1], "baseline": {"AR@1": 0.05, "AR@5": 0.1, "AR@10": 0.2,
            "AR@100": 0.3, "AUC": 44.4}}"#;
        let c: ComparedScores = parse(json, "x").unwrap();
        assert_eq!(c.refined.auc, 55.5);
        assert_eq!(c.baseline.ar100, 0.3);
        let e = parse::<ComparedScores>("{}", "eval_proposals.json").unwrap_err();
        assert!(format!("{e:#}").contains("eval_proposals.json"), "{e:#}");
    }
}
