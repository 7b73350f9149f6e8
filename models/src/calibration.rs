//! The decode-scale calibration record: which start/end decode scale
//! (`se_decode_scale_infer`) a model was given after training, and the
//! evidence for it. The trainer writes it into checkpoints (metadata
//! [`KEY_CALIBRATION`]); anyone reading a checkpoint (the demo, a user) can
//! show it.
//!
//! The release damps the start/end moves at inference by 0.2
//! ([`RELEASE_DECODE_SCALE`]); on data other than the paper's a larger scale
//! often refines better. Calibration scores each scale of a small grid on
//! videos held out of training and keeps the best.
use serde::{Deserialize, Serialize};

/// Metadata key of the calibration record (JSON of [`Calibration`]).
pub const KEY_CALIBRATION: &str = "tcanet.calibration";

/// The release's start/end decode scale at inference.
pub const RELEASE_DECODE_SCALE: f64 = 0.2;

/// The largest start/end decode scale a config, flag or grid may give:
/// scales lie in (0, `MAX_DECODE_SCALE`].
pub const MAX_DECODE_SCALE: f64 = 2.0;

/// The scales tried by default: the release's 0.2 up to the training scale 1.0.
pub const DEFAULT_DECODE_GRID: [f64; 5] = [0.2, 0.35, 0.5, 0.75, 1.0];

/// How a decode scale was chosen, and how each candidate scored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Calibration {
    /// The scales tried, in the order tried.
    pub grid: Vec<f64>,
    /// AUC (percent, tIoU 0.5:0.95, up to 100 proposals per video) of the
    /// refined proposals after the paper's post-processing, per grid point.
    pub auc: Vec<f64>,
    /// The scale chosen: the grid point of highest AUC (the first on ties).
    pub chosen: f64,
    /// Where the videos came from: `held-out N% of SUBSET (seed S)` or a subset name.
    pub source: String,
    /// Videos scored.
    pub videos: usize,
    /// Ground-truth instances of those videos.
    pub instances: usize,
    /// The epochs completed by the model when it was scored (0 when unknown).
    pub epoch: u64,
    /// AUC of the same videos' input proposals as given (no network, up to
    /// 100 per video by score), to compare with; absent in older records.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_auc: Option<f64>,
}

impl Calibration {
    /// The AUC of the chosen scale.
    pub fn chosen_auc(&self) -> f64 {
        self.auc_at(self.chosen).unwrap_or(f64::NAN)
    }

    /// How much the chosen scale's AUC exceeds the input proposals' (negative
    /// when refinement loses to the input), when the input was scored.
    pub fn gain_over_input(&self) -> Option<f64> {
        self.input_auc.map(|input| self.chosen_auc() - input)
    }

    /// A warning when the refined proposals do not beat the input
    /// proposals on the scored videos, saying what to do.
    pub fn warning(&self) -> Option<String> {
        let (input, refined) = (self.input_auc?, self.chosen_auc());
        (refined <= input).then(|| {
            format!(
                "on the {} held-out videos the refined proposals (AUC {refined:.2}) do not beat \
                 the input proposals (AUC {input:.2}): train longer or with more data, or use \
                 the input proposals as they are",
                self.videos
            )
        })
    }

    /// The AUC at `scale`, if it was on the grid.
    pub fn auc_at(&self, scale: f64) -> Option<f64> {
        let i = self.grid.iter().position(|&g| g == scale)?;
        self.auc.get(i).copied()
    }

    /// The record as one line of JSON (what the checkpoint metadata holds).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a calibration record serialises")
    }

    /// Parses a record written by [`Calibration::to_json`].
    pub fn from_json(text: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(text)
    }

    /// `0.2 → 70.12, 0.35 → 72.40, ...` (AUC per scale, for messages).
    pub fn describe_grid(&self) -> String {
        self.grid
            .iter()
            .zip(&self.auc)
            .map(|(g, a)| format!("{g} → {a:.2}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The index of the highest value (the first of equal maxima); `None` for
/// an empty slice or when every value is NaN.
pub fn best_index(values: &[f64]) -> Option<usize> {
    let mut best: Option<usize> = None;
    for (i, &v) in values.iter().enumerate() {
        if v.is_nan() {
            continue;
        }
        if best.is_none_or(|b| v > values[b]) {
            best = Some(i);
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_best_is_the_first_maximum_and_nan_never_wins() {
        assert_eq!(best_index(&[70.0, 72.5, 72.5, 71.0]), Some(1));
        assert_eq!(best_index(&[f64::NAN, 1.0, 0.5]), Some(1));
        assert_eq!(best_index(&[f64::NAN]), None);
        assert_eq!(best_index(&[]), None);
        assert_eq!(best_index(&[3.0, 2.0]), Some(0));
    }

    #[test]
    fn a_record_round_trips_and_reports_its_choice() {
        let c = Calibration {
            grid: DEFAULT_DECODE_GRID.to_vec(),
            auc: vec![70.0, 71.0, 73.5, 74.25, 73.0],
            chosen: 0.75,
            source: "held-out 10% of training (seed 0)".into(),
            videos: 32,
            instances: 51,
            epoch: 6,
            input_auc: Some(66.5),
        };
        let back = Calibration::from_json(&c.to_json()).unwrap();
        assert_eq!(back, c);
        assert_eq!(back.gain_over_input(), Some(74.25 - 66.5));
        assert_eq!(back.warning(), None);
        let losing = Calibration {
            input_auc: Some(75.0),
            ..c.clone()
        };
        let w = losing.warning().unwrap();
        assert!(
            w.contains("74.25") && w.contains("75.00") && w.contains("32"),
            "{w}"
        );
        // Records written before the input was scored still read.
        let mut old: serde_json::Value = serde_json::from_str(&c.to_json()).unwrap();
        old.as_object_mut().unwrap().remove("input_auc");
        let old = Calibration::from_json(&old.to_string()).unwrap();
        assert_eq!((old.input_auc, old.warning()), (None, None));
        assert_eq!(back.chosen_auc(), 74.25);
        assert_eq!(back.auc_at(RELEASE_DECODE_SCALE), Some(70.0));
        assert_eq!(back.auc_at(0.9), None);
        assert!(c.describe_grid().starts_with("0.2 → 70.00, 0.35 → 71.00"));
        assert!(Calibration::from_json(r#"{"grid": []}"#).is_err());
    }
}
