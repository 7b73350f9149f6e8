//! DETAD's diagnosis of a detection submission (Alwassel et al., "Diagnosing
//! Error in Temporal Action Detectors", ECCV 2018), in our own words:
//!
//! - **Normalized precision.** With `N` the average number of instances per
//!   class, a class's precision at a rank is `R·N / (R·N + FP)` (`R` its
//!   recall, `FP` its false positives so far), so that classes with many or
//!   few instances weigh alike; `AP_N` is the VOC-2011 interpolated area
//!   under it and average-mAP_N its mean over classes and thresholds.
//!   Matching is the official code's (best free instance of the class).
//! - **False-positive profile.** Each class `c` keeps its `max_k·G_c`
//!   best detections (`G_c` its instances). Bar `k` (1..=max_k) holds each
//!   class's detections ranked `(k-1)·G_c + 1 ..= k·G_c`, split into true
//!   positives and five errors, judged per threshold `t` by the instance of
//!   the same video (any class) with the highest tIoU: tIoU ≥ `t` with the
//!   same label is a double detection (the instance was taken), with another
//!   label a wrong label; `min_tiou` ≤ tIoU < `t` is a localization error
//!   (same label) or a confusion (another label); below `min_tiou`, or a video
//!   without instances, is background. Fractions are averaged over the
//!   thresholds.
//! - **Removing an error.** The average-mAP_N of the kept detections
//!   recomputed without the detections of one error type (per threshold),
//!   minus the average-mAP_N with them: what fixing that error would gain.
//! - **Sensitivity.** Instances fall into buckets of a characteristic
//!   (coverage, length, instances per video, and optionally context size,
//!   context distance, agreement). A bucket's average-mAP_N counts only its
//!   instances, and leaves out detections matched (at any threshold) to an
//!   instance outside it; classes without instances in the bucket are left
//!   out of the mean.
//! - **False negatives.** The share of a bucket's instances that no
//!   detection matches, averaged over thresholds; a match where the
//!   normalized precision is at most `fn_min_precision` does not count.
//!
//! Before all this, as DETAD does, instances of zero or negative length and
//! instances longer than their video (coverage > 1) are set aside.

mod characteristics;
mod false_positive;
mod prepare;
mod sensitivity;

use serde::Serialize;

use crate::numeric::linspace;
use crate::{DetectionSet, Error, GroundTruth};

pub use characteristics::{Bucket, ExtraCharacteristics};
pub use false_positive::{
    ErrorFractions, ErrorGains, ErrorType, FalsePositiveAnalysis, ProfileBar,
};
pub use sensitivity::{BucketReport, CharacteristicReport};

/// Which bucket boundaries to use: DETAD's for ActivityNet or THUMOS-14.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BucketPreset {
    /// Coverage 0, .2, .4, .6, .8, 1; length 0, 30, 60, 120, 180, ∞ s;
    /// instances per video -1, 1, 4, 8, ∞.
    ActivityNet,
    /// Coverage 0, .02, .04, .06, .08, 1; length 0, 3, 6, 12, 18, ∞ s;
    /// instances per video -1, 1, 40, 80, ∞.
    Thumos14,
}

/// Options of [`diagnose`].
#[derive(Debug, Clone, PartialEq)]
pub struct DiagnoseOptions {
    /// tIoU thresholds (default `linspace(0.5, 0.95, 10)`).
    pub tiou_thresholds: Vec<f64>,
    /// Bucket boundaries of the characteristics.
    pub buckets: BucketPreset,
    /// Bars of the false-positive profile: the top `max_k·G` (default 10).
    pub max_k: usize,
    /// The tIoU below which a false positive is a background error
    /// (default 0.1).
    pub min_tiou: f64,
    /// False-negative analysis: matches where the normalized precision is
    /// at most this do not count (default 0.05).
    pub fn_min_precision: f64,
    /// Drop detections whose label is not a ground-truth class instead of
    /// failing.
    pub ignore_unknown_labels: bool,
}

impl Default for DiagnoseOptions {
    fn default() -> Self {
        DiagnoseOptions {
            tiou_thresholds: linspace(0.5, 0.95, 10),
            buckets: BucketPreset::ActivityNet,
            max_k: 10,
            min_tiou: 0.1,
            fn_min_precision: 0.05,
            ignore_unknown_labels: false,
        }
    }
}

/// Everything [`diagnose`] finds; serializes to the `--json` shape.
#[derive(Debug, Clone, Serialize)]
pub struct Diagnosis {
    /// The thresholds.
    pub tiou_thresholds: Vec<f64>,
    /// The bucket boundaries used.
    pub buckets: BucketPreset,
    /// Instances analysed (after setting aside those DETAD ignores).
    pub n_instances: usize,
    /// Instances set aside: zero or negative length, or coverage > 1.
    pub n_instances_set_aside: usize,
    /// Classes with instances.
    pub n_classes: usize,
    /// N: instances per class on average, the normalization of precision.
    pub average_instances_per_class: f64,
    /// Detections analysed (labels of ground-truth classes).
    pub n_detections: usize,
    /// Average-mAP_N of all detections.
    #[serde(rename = "average_mAP_N")]
    pub average_map_n: f64,
    /// mAP_N of all detections per threshold.
    #[serde(rename = "mAP_N")]
    pub map_n: Vec<f64>,
    /// The false-positive profile and the gain of removing each error.
    pub false_positive: FalsePositiveAnalysis,
    /// Per characteristic: average-mAP_N and false-negative rate per bucket.
    pub characteristics: Vec<CharacteristicReport>,
    /// Non-fatal findings, not in JSON.
    #[serde(skip)]
    pub warnings: Vec<String>,
}

/// Runs DETAD's analyses on a detection submission; `extra` adds the
/// characteristics only annotators can give (context size, context
/// distance, agreement).
pub fn diagnose(
    gt: &GroundTruth,
    preds: &DetectionSet,
    opts: &DiagnoseOptions,
    extra: Option<&ExtraCharacteristics>,
) -> Result<Diagnosis, Error> {
    check_options(opts)?;
    gt.check_durations()?;
    let prepared = prepare::prepare(gt, preds, opts)?;
    let mut warnings = prepared.warnings.clone();
    let characteristics =
        characteristics::compute(gt, &prepared, opts.buckets, extra, &mut warnings)?;
    let map_n = prepared.map_n_all();
    let average_map_n = crate::numeric::np_mean(&map_n);
    let false_positive = false_positive::analyse(&prepared, opts);
    let characteristics = sensitivity::analyse(&prepared, &characteristics, opts);
    Ok(Diagnosis {
        tiou_thresholds: opts.tiou_thresholds.clone(),
        buckets: opts.buckets,
        n_instances: prepared.n_instances(),
        n_instances_set_aside: prepared.n_set_aside,
        n_classes: prepared.gt.labels.len(),
        average_instances_per_class: prepared.n_avg,
        n_detections: prepared.n_detections,
        average_map_n,
        map_n,
        false_positive,
        characteristics,
        warnings,
    })
}

fn check_options(opts: &DiagnoseOptions) -> Result<(), Error> {
    crate::proposals::check_thresholds(&opts.tiou_thresholds)?;
    if !(1..=1000).contains(&opts.max_k) {
        return Err(Error::Options(format!(
            "the false-positive profile needs 1 to 1000 bars, got {}",
            opts.max_k
        )));
    }
    if !(opts.min_tiou.is_finite() && (0.0..=1.0).contains(&opts.min_tiou)) {
        return Err(Error::Options(format!(
            "the background tIoU must lie in [0, 1], got {}",
            opts.min_tiou
        )));
    }
    if !(opts.fn_min_precision.is_finite() && (0.0..1.0).contains(&opts.fn_min_precision)) {
        return Err(Error::Options(format!(
            "the false-negative precision floor must lie in [0, 1), got {}",
            opts.fn_min_precision
        )));
    }
    Ok(())
}
