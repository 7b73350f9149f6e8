//! A run's settings: [`TrainOptions`] (also the JSON of `--train-config`),
//! their checks, the decode-scale policy, and what a checkpoint records so
//! that `--resume` can refuse a change that would break exactness
//! ([`SavedSettings`], [`changed_settings`]).
use std::fmt;

use serde::{Deserialize, Serialize};
use tcanet_models::calibration::DEFAULT_DECODE_GRID;
use tcanet_models::data::FeatureLayout;
use tcanet_models::ModelConfig;
pub use tcanet_train_args::decode::DecodeScale;

use crate::limits::{self, FloatRange, IntRange};
use crate::schedule::LrSchedule;

/// Everything about a run except the model config and the data paths; also
/// the JSON of `--train-config` (absent fields take the defaults).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct TrainOptions {
    /// Epochs (9).
    pub epochs: u64,
    /// Videos per batch (16).
    pub batch_size: usize,
    /// Learning-rate schedule.
    pub schedule: LrSchedule,
    /// AdamW weight decay (1e-5).
    pub weight_decay: f64,
    /// Seed of every random choice (init, shuffling, dropout, loss sampling,
    /// the calibration slice).
    pub seed: u64,
    /// Stop (with a checkpoint) once this many steps are done in total.
    pub max_steps: Option<u64>,
    /// Also write `last.safetensors` every this many steps.
    pub save_every: Option<u64>,
    /// Threads preparing batches.
    pub workers: usize,
    /// Subset to train on (`training`).
    pub train_subset: String,
    /// Subset to validate on each epoch (`validation`).
    pub val_subset: String,
    /// Input proposals per video (64).
    pub max_proposals: usize,
    /// Ground-truth instances shorter than this are dropped (1 s).
    pub min_instance_seconds: f64,
    /// Resample long feature sequences.
    pub resample: bool,
    /// Feature file layout: `auto` (detected from C), `tc` ([T, C]) or `ct` ([C, T]).
    pub feature_layout: FeatureLayout,
    /// How the inference decode scale is set (`calibrate`).
    pub decode_scale: DecodeScale,
    /// The scales calibration tries.
    pub decode_grid: Vec<f64>,
    /// Fraction of the training videos held out for calibration and
    /// best-checkpoint selection; `None`: 0.1, or 0 with `release`.
    pub calibration_fraction: Option<f64>,
}

impl Default for TrainOptions {
    fn default() -> Self {
        Self {
            epochs: 9,
            batch_size: 16,
            schedule: LrSchedule::default(),
            weight_decay: 1e-5,
            seed: 0,
            max_steps: None,
            save_every: None,
            workers: 2,
            train_subset: "training".into(),
            val_subset: "validation".into(),
            max_proposals: 64,
            min_instance_seconds: 1.0,
            resample: false,
            feature_layout: FeatureLayout::Auto,
            decode_scale: DecodeScale::Calibrate,
            decode_grid: DEFAULT_DECODE_GRID.to_vec(),
            calibration_fraction: None,
        }
    }
}

/// A setting out of its range (from a `--train-config` file, or a
/// combination the flags cannot check alone).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum OptionsError {
    /// A numeric field out of its range.
    #[error("{field}: {value} is out of range: must be {range}")]
    OutOfRange {
        /// The field (`batch_size`, `schedule.base`).
        field: &'static str,
        /// The value given.
        value: String,
        /// The range in words.
        range: String,
    },
    /// Calibration without videos to calibrate on.
    #[error(
        "--decode-scale calibrate needs held-out videos: set --calibration-fraction above 0, \
         or use --decode-scale release or a fixed scale"
    )]
    CalibrateWithoutVideos,
    /// An empty or out-of-range decode grid.
    #[error("decode grid: must be 1 to 32 scales, each {}", limits::DECODE_SCALE.describe())]
    Grid,
}

fn check_int(field: &'static str, v: u64, r: IntRange) -> Result<(), OptionsError> {
    if r.contains(v) {
        return Ok(());
    }
    Err(OptionsError::OutOfRange {
        field,
        value: v.to_string(),
        range: r.describe(),
    })
}

fn check_float(field: &'static str, v: f64, r: FloatRange) -> Result<(), OptionsError> {
    if r.contains(v) {
        return Ok(());
    }
    Err(OptionsError::OutOfRange {
        field,
        value: v.to_string(),
        range: r.describe(),
    })
}

impl TrainOptions {
    /// The calibration fraction in effect: as given, else 0.1 (0 with `release`).
    pub fn calibration_fraction(&self) -> f64 {
        self.calibration_fraction
            .unwrap_or(match self.decode_scale {
                DecodeScale::Release => 0.0,
                _ => 0.1,
            })
    }

    /// Checks every field against the ranges of its flag, and the
    /// combinations (calibration needs held-out videos).
    pub fn validate(&self) -> Result<(), OptionsError> {
        check_int("epochs", self.epochs, limits::EPOCHS)?;
        check_int("batch_size", self.batch_size as u64, limits::BATCH_SIZE)?;
        check_float("schedule.base", self.schedule.base, limits::LR)?;
        check_int(
            "schedule.warmup_iters",
            self.schedule.warmup_iters,
            limits::WARMUP_ITERS,
        )?;
        check_int(
            "schedule.decay_epoch",
            self.schedule.decay_epoch,
            limits::LR_DECAY_EPOCH,
        )?;
        check_float("schedule.decay", self.schedule.decay, limits::LR_DECAY)?;
        check_float("weight_decay", self.weight_decay, limits::WEIGHT_DECAY)?;
        if let Some(m) = self.max_steps {
            check_int("max_steps", m, limits::MAX_STEPS)?;
        }
        if let Some(s) = self.save_every {
            check_int("save_every", s, limits::SAVE_EVERY)?;
        }
        check_int("workers", self.workers as u64, limits::WORKERS)?;
        check_int(
            "max_proposals",
            self.max_proposals as u64,
            limits::MAX_PROPOSALS,
        )?;
        check_float(
            "min_instance_seconds",
            self.min_instance_seconds,
            limits::MIN_INSTANCE_SECONDS,
        )?;
        self.validate_decoding()
    }

    fn validate_decoding(&self) -> Result<(), OptionsError> {
        let fraction = self.calibration_fraction();
        check_float(
            "calibration_fraction",
            fraction,
            limits::CALIBRATION_FRACTION,
        )?;
        if self.decode_grid.is_empty()
            || self.decode_grid.len() > 32
            || !self
                .decode_grid
                .iter()
                .all(|&g| limits::DECODE_SCALE.contains(g))
        {
            return Err(OptionsError::Grid);
        }
        if self.decode_scale == DecodeScale::Calibrate && fraction == 0.0 {
            return Err(OptionsError::CalibrateWithoutVideos);
        }
        Ok(())
    }
}

/// What a resumable checkpoint records about its run (the JSON of
/// `tcanet.train.options`): the options, the model config as trained (the
/// checkpoint's `tcanet.config` may carry a calibrated decode scale), and a
/// summary of the training data beside its digest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SavedSettings {
    /// The run's options.
    pub options: TrainOptions,
    /// The model config the weights are trained with.
    pub model: ModelConfig,
    /// The training data.
    pub data: DataSummary,
}

/// Counts of the training data, recorded beside its digest so that a
/// refused resume can say what changed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataSummary {
    /// Videos trained on.
    pub videos: usize,
    /// Videos held out for calibration.
    pub calibration_videos: usize,
    /// Ground-truth instances of the training videos.
    pub instances: usize,
    /// Input proposals used (after the per-video cut).
    pub proposals: usize,
    /// The digest ([`crate::dataset::data_fingerprint`]).
    pub digest: String,
}

/// One setting that differs between a checkpoint and the present run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The field (`batch_size`, `schedule.base`, `model.hidden_dim`, `data`).
    pub field: String,
    /// Its value in the checkpoint.
    pub saved: String,
    /// Its value now.
    pub now: String,
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {} -> {}", self.field, self.saved, self.now)
    }
}

/// Options that only change how a run is carried out, never its results:
/// they may differ on `--resume`.
const FREE_OPTIONS: [&str; 4] = ["max_steps", "save_every", "workers", "val_subset"];

/// The settings exactness depends on that differ between `saved` and `now`,
/// field by field: every option except [`FREE_OPTIONS`] (the calibration
/// fraction as in effect), the model config as trained except
/// `se_decode_scale_infer` (which only decoding uses), and the data.
pub fn changed_settings(saved: &SavedSettings, now: &SavedSettings) -> Vec<Change> {
    let mut out = Vec::new();
    let options = |s: &SavedSettings| {
        let mut v = serde_json::to_value(&s.options).expect("options serialise");
        v["calibration_fraction"] = serde_json::json!(s.options.calibration_fraction());
        for k in FREE_OPTIONS {
            v.as_object_mut().map(|m| m.remove(k));
        }
        v
    };
    diff_values("", &options(saved), &options(now), &mut out);
    let model = |s: &SavedSettings| {
        let mut v = serde_json::to_value(&s.model).expect("config serialises");
        v.as_object_mut().map(|m| m.remove("se_decode_scale_infer"));
        v
    };
    diff_values("model.", &model(saved), &model(now), &mut out);
    if saved.data.digest != now.data.digest {
        out.push(Change {
            field: "data".into(),
            saved: data_text(&saved.data),
            now: data_text(&now.data),
        });
    }
    out
}

fn data_text(d: &DataSummary) -> String {
    let short: String = d.digest.chars().take(12).collect();
    format!(
        "{} videos (+{} held out), {} instances, {} proposals, digest {short}",
        d.videos, d.calibration_videos, d.instances, d.proposals
    )
}

/// Appends a [`Change`] for every leaf that differs between two JSON values.
fn diff_values(prefix: &str, a: &serde_json::Value, b: &serde_json::Value, out: &mut Vec<Change>) {
    use serde_json::Value;
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for k in keys {
                let (va, vb) = (
                    x.get(k).unwrap_or(&Value::Null),
                    y.get(k).unwrap_or(&Value::Null),
                );
                diff_values(&format!("{prefix}{k}."), va, vb, out);
            }
        }
        _ if a != b => out.push(Change {
            field: prefix.trim_end_matches('.').to_string(),
            saved: a.to_string(),
            now: b.to_string(),
        }),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> SavedSettings {
        SavedSettings {
            options: TrainOptions::default(),
            model: ModelConfig::tiny(),
            data: DataSummary {
                videos: 10,
                digest: "abc".into(),
                ..DataSummary::default()
            },
        }
    }

    #[test]
    fn changes_are_listed_field_by_field_and_free_ones_ignored() {
        let a = settings();
        let mut b = a.clone();
        assert!(changed_settings(&a, &b).is_empty());
        b.options.batch_size = 8;
        b.options.schedule.base = 1e-3;
        b.options.workers = 7;
        b.options.max_steps = Some(3);
        b.model.se_decode_scale_infer = 1.0;
        b.model.hidden_dim = 32;
        b.data.digest = "def".into();
        let c: Vec<String> = changed_settings(&a, &b)
            .iter()
            .map(|c| c.to_string())
            .collect();
        assert_eq!(
            c,
            [
                "batch_size: 16 -> 8",
                "schedule.base: 0.0004 -> 0.001",
                "model.hidden_dim: 64 -> 32",
                "data: 10 videos (+0 held out), 0 instances, 0 proposals, digest abc -> \
                 10 videos (+0 held out), 0 instances, 0 proposals, digest def",
            ]
        );
    }

    #[test]
    fn the_fraction_in_effect_is_compared() {
        let a = settings();
        let mut b = a.clone();
        b.options.calibration_fraction = Some(0.1);
        assert!(changed_settings(&a, &b).is_empty(), "0.1 is the default");
        b.options.decode_scale = DecodeScale::Release;
        let c: Vec<String> = changed_settings(&a, &b)
            .iter()
            .map(|c| c.field.clone())
            .collect();
        assert_eq!(c, ["decode_scale"]);
    }

    #[test]
    fn decode_scale_in_options_json() {
        let o: TrainOptions = serde_json::from_str(r#"{"decode_scale": 0.75}"#).unwrap();
        assert_eq!(o.decode_scale, DecodeScale::Fixed(0.75));
        let back: TrainOptions = serde_json::from_str(&serde_json::to_string(&o).unwrap()).unwrap();
        assert_eq!(back, o);
        assert!(serde_json::from_str::<TrainOptions>(r#"{"decode_scale": "best"}"#).is_err());
    }

    #[test]
    fn validation_names_the_field_and_range() {
        let mut o = TrainOptions {
            epochs: 0,
            ..TrainOptions::default()
        };
        let e = o.validate().unwrap_err().to_string();
        assert_eq!(
            e,
            "epochs: 0 is out of range: must be an integer from 1 to 1000000"
        );
        o.epochs = 1;
        o.schedule.base = f64::INFINITY;
        assert!(o
            .validate()
            .unwrap_err()
            .to_string()
            .contains("schedule.base: inf"));
        o.schedule.base = 1e-3;
        o.calibration_fraction = Some(0.0);
        assert_eq!(o.validate(), Err(OptionsError::CalibrateWithoutVideos));
        o.decode_scale = DecodeScale::Release;
        assert_eq!(o.validate(), Ok(()));
        assert_eq!(
            TrainOptions {
                decode_scale: DecodeScale::Release,
                ..TrainOptions::default()
            }
            .calibration_fraction(),
            0.0
        );
    }
}
