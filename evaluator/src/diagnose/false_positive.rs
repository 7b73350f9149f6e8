//! The false-positive profile of the top `k·G` detections and the gain of
//! removing each error type.

use rayon::prelude::*;
use serde::Serialize;

use super::prepare::{ap_n, Prepared};
use super::DiagnoseOptions;
use crate::detections::ClassPred;
use crate::numeric::{np_mean, tiou};

/// What a detection is at one threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorType {
    /// Matched to an instance.
    TruePositive,
    /// tIoU ≥ t with an instance of its class, which another detection took.
    DoubleDetection,
    /// tIoU ≥ t with an instance of another class.
    WrongLabel,
    /// `min_tiou` ≤ tIoU < t with an instance of its class.
    Localization,
    /// `min_tiou` ≤ tIoU < t with an instance of another class.
    Confusion,
    /// tIoU < `min_tiou` with every instance, or a video without instances.
    Background,
}

impl ErrorType {
    /// All types, true positive first, in DETAD's order.
    pub const ALL: [ErrorType; 6] = [
        ErrorType::TruePositive,
        ErrorType::DoubleDetection,
        ErrorType::WrongLabel,
        ErrorType::Localization,
        ErrorType::Confusion,
        ErrorType::Background,
    ];

    /// The name in figures.
    pub fn title(self) -> &'static str {
        match self {
            ErrorType::TruePositive => "True positive",
            ErrorType::DoubleDetection => "Double detection",
            ErrorType::WrongLabel => "Wrong label",
            ErrorType::Localization => "Localization",
            ErrorType::Confusion => "Confusion",
            ErrorType::Background => "Background",
        }
    }
}

/// A share per type (fractions of a bar's detections); serializes as an
/// object keyed by the type's snake-case name.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct ErrorFractions {
    /// True positives.
    pub true_positive: f64,
    /// Double detections.
    pub double_detection: f64,
    /// Wrong labels.
    pub wrong_label: f64,
    /// Localization errors.
    pub localization: f64,
    /// Confusions.
    pub confusion: f64,
    /// Background errors.
    pub background: f64,
}

impl ErrorFractions {
    /// The share of one type.
    pub fn get(&self, t: ErrorType) -> f64 {
        self.as_array()[t as usize]
    }

    /// The shares in [`ErrorType::ALL`] order.
    pub fn as_array(&self) -> [f64; 6] {
        [
            self.true_positive,
            self.double_detection,
            self.wrong_label,
            self.localization,
            self.confusion,
            self.background,
        ]
    }

    fn from_array(a: [f64; 6]) -> Self {
        ErrorFractions {
            true_positive: a[0],
            double_detection: a[1],
            wrong_label: a[2],
            localization: a[3],
            confusion: a[4],
            background: a[5],
        }
    }
}

/// The average-mAP_N gain of removing each error type (fractions, not
/// percent).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct ErrorGains {
    /// Without double detections.
    pub double_detection: f64,
    /// Without wrong labels.
    pub wrong_label: f64,
    /// Without localization errors.
    pub localization: f64,
    /// Without confusions.
    pub confusion: f64,
    /// Without background errors.
    pub background: f64,
}

impl ErrorGains {
    /// The gain of removing one error type (0 for true positives).
    pub fn get(&self, t: ErrorType) -> f64 {
        match t {
            ErrorType::TruePositive => 0.0,
            ErrorType::DoubleDetection => self.double_detection,
            ErrorType::WrongLabel => self.wrong_label,
            ErrorType::Localization => self.localization,
            ErrorType::Confusion => self.confusion,
            ErrorType::Background => self.background,
        }
    }
}

/// One bar of the profile: each class's detections ranked
/// `(k-1)·G_c + 1 ..= k·G_c`.
#[derive(Debug, Clone, Serialize)]
pub struct ProfileBar {
    /// k.
    pub k: usize,
    /// Detections in the bar.
    pub n_detections: usize,
    /// Shares averaged over thresholds (they sum to 1 when the bar has
    /// detections).
    pub fractions: ErrorFractions,
    /// Shares at each threshold.
    pub fractions_per_tiou: Vec<ErrorFractions>,
}

/// The false-positive analysis.
#[derive(Debug, Clone, Serialize)]
pub struct FalsePositiveAnalysis {
    /// Bars: the top `max_k·G_c` detections of each class are analysed.
    pub max_k: usize,
    /// The background tIoU.
    pub min_tiou: f64,
    /// Detections analysed (the top `max_k·G_c` of each class).
    pub n_detections: usize,
    /// Average-mAP_N of these detections.
    #[serde(rename = "average_mAP_N")]
    pub average_map_n: f64,
    /// The profile, k = 1..=max_k.
    pub profile: Vec<ProfileBar>,
    /// Average-mAP_N gain of removing each error type.
    pub removed_error_gain: ErrorGains,
}

/// The type of each of a class's kept detections at each threshold
/// (`types[t][rank]`).
fn class_types(p: &Prepared, c: usize, limit: usize, min_tiou: f64) -> Vec<Vec<ErrorType>> {
    let nt = p.thresholds.len();
    // The best-overlapping instance of the video (any class): tIoU, label.
    let best: Vec<Option<(f64, u32)>> = p.ranked[c][..limit]
        .iter()
        .map(|d| best_overlap(p, d))
        .collect();
    (0..nt)
        .map(|t| {
            let thr = p.thresholds[t];
            let mut types: Vec<ErrorType> = best
                .iter()
                .map(|b| classify(*b, c as u32, thr, min_tiou))
                .collect();
            for &(r, _) in &p.tp[c][t] {
                if (r as usize) < limit {
                    types[r as usize] = ErrorType::TruePositive;
                }
            }
            types
        })
        .collect()
}

/// The instance of the detection's video with the highest tIoU (the first
/// one on ties, NaN winning as numpy's `argmax` does), or `None` for a
/// video without instances.
fn best_overlap(p: &Prepared, d: &ClassPred) -> Option<(f64, u32)> {
    if d.video == u32::MAX {
        return None;
    }
    let mut best: Option<(f64, u32)> = None;
    for g in &p.gt.videos[d.video as usize].instances {
        let iou = tiou(d.segment, g.segment);
        match best {
            Some((b, _)) if b.is_nan() || !(iou > b || iou.is_nan()) => {}
            _ => best = Some((iou, g.label as u32)),
        }
    }
    best
}

/// DETAD's rule for a detection that matched nothing at threshold `thr`.
fn classify(best: Option<(f64, u32)>, label: u32, thr: f64, min_tiou: f64) -> ErrorType {
    let Some((iou, best_label)) = best else {
        return ErrorType::Background;
    };
    let same = best_label == label;
    if iou >= thr {
        if same {
            ErrorType::DoubleDetection
        } else {
            ErrorType::WrongLabel
        }
    } else if iou >= min_tiou {
        if same {
            ErrorType::Localization
        } else {
            ErrorType::Confusion
        }
    } else {
        ErrorType::Background
    }
}

/// AP_N of a class's kept detections at threshold `t`, without those of
/// type `removed`.
fn ap_without(
    p: &Prepared,
    c: usize,
    t: usize,
    types: &[ErrorType],
    removed: Option<ErrorType>,
) -> f64 {
    let mut tp_ranks = p.tp[c][t]
        .iter()
        .map(|&(r, _)| r as usize)
        .filter(|&r| r < types.len());
    let mut next_tp = tp_ranks.next();
    let (mut kept, mut tps) = (0usize, 0usize);
    let mut fp_before = Vec::new();
    for (r, &ty) in types.iter().enumerate() {
        if Some(ty) == removed {
            continue;
        }
        if next_tp == Some(r) {
            fp_before.push(kept - tps);
            tps += 1;
            next_tp = tp_ranks.next();
        }
        kept += 1;
    }
    ap_n(fp_before.into_iter(), p.npos[c], p.n_avg)
}

/// The false-positive profile and the removal gains.
pub(super) fn analyse(p: &Prepared, opts: &DiagnoseOptions) -> FalsePositiveAnalysis {
    let nt = p.thresholds.len();
    let nc = p.npos.len();
    let limits: Vec<usize> = (0..nc)
        .map(|c| p.ranked[c].len().min(opts.max_k * p.npos[c]))
        .collect();
    let types: Vec<Vec<Vec<ErrorType>>> = (0..nc)
        .into_par_iter()
        .map(|c| class_types(p, c, limits[c], opts.min_tiou))
        .collect();
    let profile = (1..=opts.max_k)
        .map(|k| profile_bar(p, &types, k))
        .collect();
    // Average-mAP_N of the kept detections, with and without each error.
    let average = |removed: Option<ErrorType>| -> f64 {
        let map: Vec<f64> = (0..nt)
            .map(|t| {
                let aps: Vec<f64> = (0..nc)
                    .map(|c| ap_without(p, c, t, &types[c][t], removed))
                    .collect();
                np_mean(&aps)
            })
            .collect();
        np_mean(&map)
    };
    let base = average(None);
    let gain = |e: ErrorType| average(Some(e)) - base;
    FalsePositiveAnalysis {
        max_k: opts.max_k,
        min_tiou: opts.min_tiou,
        n_detections: limits.iter().sum(),
        average_map_n: base,
        profile,
        removed_error_gain: ErrorGains {
            double_detection: gain(ErrorType::DoubleDetection),
            wrong_label: gain(ErrorType::WrongLabel),
            localization: gain(ErrorType::Localization),
            confusion: gain(ErrorType::Confusion),
            background: gain(ErrorType::Background),
        },
    }
}

/// Bar `k`: each class's detections ranked `(k-1)·G_c .. k·G_c` (0-based,
/// end excluded), counted by type per threshold.
fn profile_bar(p: &Prepared, types: &[Vec<Vec<ErrorType>>], k: usize) -> ProfileBar {
    let nt = p.thresholds.len();
    let mut counts = vec![[0usize; 6]; nt];
    let mut n = 0usize;
    for (c, class_types) in types.iter().enumerate() {
        let g = p.npos[c];
        let len = class_types.first().map_or(0, Vec::len);
        let (lo, hi) = (((k - 1) * g).min(len), (k * g).min(len));
        n += hi - lo;
        for (t, row) in class_types.iter().enumerate() {
            for ty in &row[lo..hi] {
                counts[t][*ty as usize] += 1;
            }
        }
    }
    let share = |c: usize| if n == 0 { 0.0 } else { c as f64 / n as f64 };
    let fractions_per_tiou: Vec<ErrorFractions> = counts
        .iter()
        .map(|row| ErrorFractions::from_array(row.map(share)))
        .collect();
    let mut mean = [0.0; 6];
    for (i, m) in mean.iter_mut().enumerate() {
        let per_t: Vec<f64> = fractions_per_tiou.iter().map(|f| f.as_array()[i]).collect();
        *m = np_mean(&per_t);
    }
    debug_assert!(nt == fractions_per_tiou.len());
    ProfileBar {
        k,
        n_detections: n,
        fractions: ErrorFractions::from_array(mean),
        fractions_per_tiou,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification_rule() {
        use ErrorType::*;
        let (t, m) = (0.5, 0.1);
        assert_eq!(classify(None, 0, t, m), Background);
        assert_eq!(classify(Some((0.7, 0)), 0, t, m), DoubleDetection);
        assert_eq!(classify(Some((0.5, 1)), 0, t, m), WrongLabel);
        assert_eq!(classify(Some((0.3, 0)), 0, t, m), Localization);
        assert_eq!(classify(Some((0.1, 2)), 0, t, m), Confusion);
        assert_eq!(classify(Some((0.09, 0)), 0, t, m), Background);
        assert_eq!(classify(Some((f64::NAN, 0)), 0, t, m), Background);
    }
}
