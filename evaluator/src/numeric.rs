//! The official code's numerics, operation for operation: tIoU, numpy's
//! `linspace`, numpy's pairwise summation (used by `np.sum`, `np.mean` and
//! `np.trapz`), and the VOC-2011 interpolated average precision.

/// tIoU of a predicted segment with a ground-truth segment, computed as the
/// official `segment_iou`: `max(0, min(e1,e2) - max(s1,s2)) / ((ge - gs) +
/// (pe - ps) - intersection)`, also for reversed or zero-length segments
/// (a zero union gives NaN, which compares false).
#[inline]
pub fn tiou(pred: [f64; 2], gt: [f64; 2]) -> f64 {
    let tt1 = np_maximum(pred[0], gt[0]);
    let tt2 = np_minimum(pred[1], gt[1]);
    let inter = clip0(tt2 - tt1);
    let union = (gt[1] - gt[0]) + (pred[1] - pred[0]) - inter;
    inter / union
}

/// [`tiou`] for four finite numbers, where numpy's NaN rules never apply:
/// the same value from the same operations, without their checks.
#[inline]
pub(crate) fn tiou_finite(pred: [f64; 2], gt: [f64; 2]) -> f64 {
    let tt1 = if pred[0] >= gt[0] { pred[0] } else { gt[0] };
    let tt2 = if pred[1] <= gt[1] { pred[1] } else { gt[1] };
    let d = tt2 - tt1;
    let inter = if d >= 0.0 { d } else { 0.0 };
    let union = (gt[1] - gt[0]) + (pred[1] - pred[0]) - inter;
    inter / union
}

#[inline]
fn np_maximum(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else if a >= b {
        a
    } else {
        b
    }
}

#[inline]
fn np_minimum(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else if a <= b {
        a
    } else {
        b
    }
}

/// numpy's `clip(0)` of one value (`maximum(x, 0)`; NaN stays NaN).
#[inline]
fn clip0(x: f64) -> f64 {
    np_maximum(x, 0.0)
}

/// `np.linspace(start, stop, num)` (endpoint included), bit for bit.
pub fn linspace(start: f64, stop: f64, num: usize) -> Vec<f64> {
    match num {
        0 => Vec::new(),
        1 => vec![start],
        _ => {
            let div = (num - 1) as f64;
            let delta = stop - start;
            let step = delta / div;
            let mut y: Vec<f64> = if step == 0.0 {
                (0..num).map(|i| (i as f64 / div) * delta + start).collect()
            } else {
                (0..num).map(|i| i as f64 * step + start).collect()
            };
            y[num - 1] = stop;
            y
        }
    }
}

/// numpy's pairwise summation of a contiguous float64 array, as `np.sum`
/// computes it (`0.0 + pairwise(a)`).
pub fn np_sum(a: &[f64]) -> f64 {
    0.0 + pairwise_sum(a)
}

fn pairwise_sum(a: &[f64]) -> f64 {
    let n = a.len();
    if n < 8 {
        let mut res = 0.0;
        for &x in a {
            res += x;
        }
        res
    } else if n <= 128 {
        let mut r = [0.0f64; 8];
        r.copy_from_slice(&a[..8]);
        let mut i = 8;
        while i < n - (n % 8) {
            for j in 0..8 {
                r[j] += a[i + j];
            }
            i += 8;
        }
        let mut res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        while i < n {
            res += a[i];
            i += 1;
        }
        res
    } else {
        let mut n2 = n / 2;
        n2 -= n2 % 8;
        pairwise_sum(&a[..n2]) + pairwise_sum(&a[n2..])
    }
}

/// `np.mean` of a contiguous array: pairwise sum over the length.
pub fn np_mean(a: &[f64]) -> f64 {
    np_sum(a) / a.len() as f64
}

/// `np.trapz(y, x)`: `sum((x[i+1]-x[i]) * (y[i+1]+y[i]) / 2.0)`.
pub fn np_trapz(y: &[f64], x: &[f64]) -> f64 {
    let terms: Vec<f64> = (0..y.len().saturating_sub(1))
        .map(|i| ((x[i + 1] - x[i]) * (y[i + 1] + y[i])) / 2.0)
        .collect();
    np_sum(&terms)
}

/// The official `interpolated_prec_rec` (VOC 2011): precision 0 / recall 0
/// prepended, precision 0 / recall 1 appended, precision made
/// non-increasing from the right, `sum(Δrecall × precision)` where recall
/// changes.
pub fn interpolated_ap(prec: &[f64], rec: &[f64]) -> f64 {
    let n = prec.len() + 2;
    let mut mprec = Vec::with_capacity(n);
    mprec.push(0.0);
    mprec.extend_from_slice(prec);
    mprec.push(0.0);
    let mut mrec = Vec::with_capacity(n);
    mrec.push(0.0);
    mrec.extend_from_slice(rec);
    mrec.push(1.0);
    for i in (0..n - 1).rev() {
        // Python's max(a, b): b only if b > a.
        if mprec[i + 1] > mprec[i] {
            mprec[i] = mprec[i + 1];
        }
    }
    let terms: Vec<f64> = (1..n)
        .filter(|&i| mrec[i] != mrec[i - 1])
        .map(|i| (mrec[i] - mrec[i - 1]) * mprec[i])
        .collect();
    np_sum(&terms)
}

/// [`interpolated_ap`] of a ranked list of `n` predictions whose true
/// positives are at the (increasing) positions `tp`, with `npos` instances,
/// computed from the true positives only and bit for bit equal: recall
/// changes only at a true positive, and the running maximum of precision
/// from the right is reached at one (precision falls at every false
/// positive). The terms and their order are those of the full computation.
pub fn ap_from_true_positives(tp: &[u32], npos: usize) -> f64 {
    let k = tp.len();
    let mut terms = Vec::with_capacity(k + 1);
    // Recall after each true positive; precision there.
    let rec = |c: usize| c as f64 / npos as f64;
    let mut best = 0.0f64; // mprec of the appended point
    let mut mprec = vec![0.0; k];
    for j in (0..k).rev() {
        let ctp = (j + 1) as f64;
        let cfp = (tp[j] as usize - j) as f64;
        let prec = ctp / (ctp + cfp);
        if prec > best {
            best = prec;
        }
        mprec[j] = best;
    }
    for (j, &m) in mprec.iter().enumerate() {
        let before = if j == 0 { 0.0 } else { rec(j) };
        terms.push((rec(j + 1) - before) * m);
    }
    let last = rec(k);
    if last != 1.0 {
        terms.push((1.0 - last) * 0.0);
    }
    np_sum(&terms)
}

/// One step of Marsaglia's xorshift64 (shifts 13, 7, 17) on `x`, returning
/// the new state: the pseudo-random inputs of the unit tests.
#[cfg(test)]
pub(crate) fn xorshift64(x: &mut u64) -> u64 {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    *x
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linspace_matches_numpy_bits() {
        // np.linspace(0.5, 0.95, 10).tolist() printed by numpy 2.4.
        let want = [
            0.5,
            0.55,
            0.6,
            0.65,
            0.7,
            0.75,
            0.8,
            0.85,
            0.8999999999999999,
            0.95,
        ];
        assert_eq!(linspace(0.5, 0.95, 10), want);
        assert_eq!(
            linspace(0.3, 0.7, 5),
            [0.3, 0.39999999999999997, 0.5, 0.6, 0.7]
        );
    }

    #[test]
    fn pairwise_sum_matches_numpy_bits() {
        // float(np.sum(a)) printed by numpy 2.4 for
        // a = 1/(arange(n)+1) * where(arange(n) % 3 == 0, -1, 1).
        let cases = [
            (5, -0.21666666666666667),
            (9, 0.04325396825396827),
            (100, 0.7516997282476884),
            (129, 0.8479836279507644),
            (1000, 1.5236868469933391),
            (5000, 2.060699057806926),
        ];
        for (n, want) in cases {
            let a: Vec<f64> = (0..n)
                .map(|i| {
                    let sign = if i % 3 == 0 { -1.0 } else { 1.0 };
                    1.0 / (i as f64 + 1.0) * sign
                })
                .collect();
            assert_eq!(np_sum(&a), want, "n = {n}");
        }
        let ints: Vec<f64> = (1..=300).map(|i| i as f64).collect();
        assert_eq!(np_sum(&ints), 45150.0);
        assert_eq!(np_sum(&[]), 0.0);
    }

    #[test]
    fn ap_from_true_positives_equals_the_full_computation() {
        let mut x: u64 = 99;
        for case in 0..3000 {
            crate::numeric::xorshift64(&mut x);
            let n = 1 + (x % 400) as usize;
            let npos = 1 + (x >> 20) as usize % 150;
            let p_tp = (x >> 40) % 100;
            let mut flags = Vec::with_capacity(n);
            let mut taken = 0;
            for i in 0..n {
                let r = (x.rotate_left(i as u32 % 64) ^ (i as u64 * 2654435761)) % 100;
                let is_tp = r < p_tp && taken < npos;
                taken += is_tp as usize;
                flags.push(is_tp);
            }
            let (mut prec, mut rec, mut tp) = (vec![], vec![], vec![]);
            let mut ctp = 0u64;
            for (i, &f) in flags.iter().enumerate() {
                if f {
                    ctp += 1;
                    tp.push(i as u32);
                }
                let cfp = i as u64 + 1 - ctp;
                prec.push(ctp as f64 / (ctp as f64 + cfp as f64));
                rec.push(ctp as f64 / npos as f64);
            }
            assert_eq!(
                ap_from_true_positives(&tp, npos).to_bits(),
                interpolated_ap(&prec, &rec).to_bits(),
                "case {case}: n {n}, npos {npos}, tp {tp:?}"
            );
        }
    }

    #[test]
    fn tiou_of_finite_segments_is_tiou() {
        // Equal, touching, nested, reversed, zero-length and signed-zero
        // endpoints, bit for bit (NaN for NaN).
        let values = [-3.5, -0.0, 0.0, 1.0, 1.0 + f64::EPSILON, 2.5, 7.25, 1e300];
        for &a in &values {
            for &b in &values {
                for &c in &values {
                    for &d in &values {
                        let (x, y) = (tiou([a, b], [c, d]), tiou_finite([a, b], [c, d]));
                        assert!(x.to_bits() == y.to_bits() || x.is_nan() && y.is_nan());
                    }
                }
            }
        }
    }

    #[test]
    fn tiou_as_written() {
        assert_eq!(tiou([0.0, 10.0], [5.0, 15.0]), 5.0 / 15.0);
        assert_eq!(tiou([0.0, 1.0], [2.0, 3.0]), 0.0);
        assert!(tiou([1.0, 1.0], [1.0, 1.0]).is_nan());
        // Reversed prediction: intersection 0, union 10 - 5.
        assert_eq!(tiou([10.0, 5.0], [0.0, 10.0]), 0.0);
    }

    #[test]
    fn interpolated_ap_by_hand() {
        // Two predictions: TP then FP, one instance: recall [1, 1],
        // precision [1, 0.5] -> AP 1.
        assert_eq!(interpolated_ap(&[1.0, 0.5], &[1.0, 1.0]), 1.0);
        // FP then TP: precision [0, 0.5], recall [0, 1] -> 0.5.
        assert_eq!(interpolated_ap(&[0.0, 0.5], &[0.0, 1.0]), 0.5);
    }
}
