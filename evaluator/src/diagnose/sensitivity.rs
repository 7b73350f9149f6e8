//! Sensitivity of average-mAP_N to instance characteristics, and the
//! false-negative rate per bucket.

use rayon::prelude::*;
use serde::Serialize;

use super::characteristics::Characteristic;
use super::prepare::{ap_n, Prepared};
use super::DiagnoseOptions;
use crate::numeric::np_mean;

/// One bucket's figures.
#[derive(Debug, Clone, Serialize)]
pub struct BucketReport {
    /// The bucket's name (`XS`, ...).
    pub label: String,
    /// Its interval (`(0.2, 0.4]`).
    pub range: String,
    /// Instances in it.
    pub n_instances: usize,
    /// Average-mAP_N counting only its instances (null without instances).
    #[serde(rename = "average_mAP_N")]
    pub average_map_n: Option<f64>,
    /// Share of its instances that no detection matches, averaged over
    /// thresholds (null without instances).
    pub false_negative_rate: Option<f64>,
    /// The same share at each threshold.
    pub false_negative_rate_per_tiou: Vec<f64>,
}

/// One characteristic's buckets.
#[derive(Debug, Clone, Serialize)]
pub struct CharacteristicReport {
    /// Its key: `coverage`, `length`, `num-instances`, `context-size`,
    /// `context-distance` or `agreement`.
    pub name: String,
    /// Its name in figures.
    pub title: String,
    /// Instances with a bucket.
    pub n_instances: usize,
    /// The buckets in order.
    pub buckets: Vec<BucketReport>,
}

/// How a detection's matches fall in a characteristic's buckets.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Matches {
    /// It matches nothing at any threshold.
    Never,
    /// Every match is an instance of this bucket.
    Bucket(u8),
    /// It matches instances of several buckets, or without a bucket.
    Mixed,
}

/// Sensitivity and false negatives for every characteristic.
pub(super) fn analyse(
    p: &Prepared,
    characteristics: &[Characteristic],
    opts: &DiagnoseOptions,
) -> Vec<CharacteristicReport> {
    let matched = fn_matches(p, opts.fn_min_precision);
    characteristics
        .iter()
        .map(|ch| {
            let sensitivity = bucket_maps(p, ch);
            let buckets = ch
                .buckets
                .iter()
                .enumerate()
                .map(|(b, bucket)| {
                    let members: Vec<usize> = (0..p.n_instances())
                        .filter(|&i| ch.bucket_of[i] == Some(b as u8))
                        .collect();
                    let per_t: Vec<f64> = matched
                        .iter()
                        .map(|m| {
                            let missed = members.iter().filter(|&&i| !m[i]).count();
                            missed as f64 / members.len().max(1) as f64
                        })
                        .collect();
                    let any = !members.is_empty();
                    BucketReport {
                        label: bucket.label.clone(),
                        range: bucket.range(),
                        n_instances: members.len(),
                        average_map_n: sensitivity[b],
                        false_negative_rate: any.then(|| np_mean(&per_t)),
                        false_negative_rate_per_tiou: if any { per_t } else { Vec::new() },
                    }
                })
                .collect();
            CharacteristicReport {
                name: ch.name.to_string(),
                title: ch.title.to_string(),
                n_instances: ch.bucket_of.iter().filter(|b| b.is_some()).count(),
                buckets,
            }
        })
        .collect()
}

/// Per threshold, per instance: whether a detection matches it where the
/// normalized precision is above `min_precision` (DETAD's rule for the
/// false-negative analysis).
fn fn_matches(p: &Prepared, min_precision: f64) -> Vec<Vec<bool>> {
    (0..p.thresholds.len())
        .map(|t| {
            let mut matched = vec![false; p.n_instances()];
            for (c, tp) in p.tp.iter().enumerate() {
                for (j, &(r, inst)) in tp[t].iter().enumerate() {
                    let rec = (j + 1) as f64 / p.npos[c] as f64;
                    let fp = (r as usize - j) as f64;
                    let prec = rec * p.n_avg / (rec * p.n_avg + fp);
                    if prec > min_precision {
                        matched[inst as usize] = true;
                    }
                }
            }
            matched
        })
        .collect()
}

/// Average-mAP_N of each bucket (`None` without instances).
fn bucket_maps(p: &Prepared, ch: &Characteristic) -> Vec<Option<f64>> {
    let nb = ch.buckets.len();
    // Per class: per bucket, the class's AP_N averaged over thresholds.
    let per_class: Vec<Vec<Option<f64>>> = (0..p.npos.len())
        .into_par_iter()
        .map(|c| class_bucket_aps(p, ch, c))
        .collect();
    (0..nb)
        .map(|b| {
            let vals: Vec<f64> = per_class.iter().filter_map(|v| v[b]).collect();
            (!vals.is_empty()).then(|| np_mean(&vals))
        })
        .collect()
}

/// One class's AP_N (mean over thresholds) per bucket: only the bucket's
/// instances count, and detections matched to others are left out.
fn class_bucket_aps(p: &Prepared, ch: &Characteristic, c: usize) -> Vec<Option<f64>> {
    let n = p.ranked[c].len();
    let nt = p.thresholds.len();
    let mut state = vec![Matches::Never; n];
    for tp in &p.tp[c] {
        for &(r, inst) in tp {
            let s = &mut state[r as usize];
            *s = match (*s, ch.bucket_of[inst as usize]) {
                (_, None) | (Matches::Mixed, _) => Matches::Mixed,
                (Matches::Never, Some(b)) => Matches::Bucket(b),
                (Matches::Bucket(a), Some(b)) if a == b => Matches::Bucket(a),
                (Matches::Bucket(_), Some(_)) => Matches::Mixed,
            };
        }
    }
    // never[r]: detections ranked before r that match nothing.
    let mut never = Vec::with_capacity(n + 1);
    never.push(0usize);
    for s in &state {
        never.push(never.last().copied().unwrap_or(0) + (*s == Matches::Never) as usize);
    }
    let mut npos = vec![0usize; ch.buckets.len()];
    for (i, b) in ch.bucket_of.iter().enumerate() {
        if let Some(b) = b {
            if p.inst_label[i] as usize == c {
                npos[*b as usize] += 1;
            }
        }
    }
    (0..ch.buckets.len())
        .map(|b| {
            if npos[b] == 0 {
                return None;
            }
            let own: Vec<usize> = (0..n)
                .filter(|&r| state[r] == Matches::Bucket(b as u8))
                .collect();
            let aps: Vec<f64> = (0..nt)
                .map(|t| {
                    let fp = p.tp[c][t]
                        .iter()
                        .map(|&(r, _)| r as usize)
                        .filter(|&r| state[r] == Matches::Bucket(b as u8))
                        .enumerate()
                        .map(|(j, r)| never[r] + own.partition_point(|&x| x < r) - j);
                    ap_n(fp, npos[b], p.n_avg)
                })
                .collect();
            Some(np_mean(&aps))
        })
        .collect()
}
