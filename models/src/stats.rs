//! Percentiles of benchmark samples, one rule for every bench command
//! (`tcanet-infer bench`, `tcanet-infer bench-post`, `tcanet-export bench`).
//!
//! The rule is the nearest rank: the `q` percentile of `n` sorted samples is
//! the sample of 1-based rank `⌈q·n⌉` (rank 1 when `q·n` is 0), the smallest
//! sample with at least a fraction `q` of all samples at or below it. It is
//! always a measured sample, never a value between two; `q = 0` is the
//! minimum and `q = 1` the maximum.

/// Sorts samples ascending as [`percentile`] expects them: a total order in
/// which every NaN (of either sign) comes after `+∞`, so a NaN sample never
/// panics the sort and only the top percentiles can be NaN.
pub fn sort_samples(samples: &mut [f64]) {
    samples.sort_by(|a, b| a.is_nan().cmp(&b.is_nan()).then(a.total_cmp(b)));
}

/// The `q` percentile of `sorted` (ascending, as [`sort_samples`] leaves
/// them) by the nearest-rank rule of this module: the sample of rank
/// `⌈q·n⌉`, at least 1. `q` is clamped to `[0, 1]`; a product `q·n` within
/// 1e-9 of a whole number counts as that number (so 0.07 × 100 is rank 7,
/// whatever the rounding of the product). NaN when there is no sample or
/// `q` is NaN.
pub fn percentile(sorted: &[f64], q: f64) -> f64 {
    let n = sorted.len();
    if n == 0 || q.is_nan() {
        return f64::NAN;
    }
    let rank = (q.clamp(0.0, 1.0) * n as f64 - 1e-9).ceil();
    // `as` saturates: a rank below 1 (q = 0) becomes 0 before the clamp.
    sorted[(rank as usize).clamp(1, n) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_of_hand_computed_cases() {
        // n = 5: ranks ⌈5q⌉.
        let s = [15.0, 20.0, 35.0, 40.0, 50.0];
        assert_eq!(percentile(&s, 0.0), 15.0); // rank 0 → 1
        assert_eq!(percentile(&s, 0.05), 15.0); // ⌈0.25⌉ = 1
        assert_eq!(percentile(&s, 0.3), 20.0); // ⌈1.5⌉ = 2
        assert_eq!(percentile(&s, 0.4), 20.0); // exactly 2
        assert_eq!(percentile(&s, 0.5), 35.0); // ⌈2.5⌉ = 3
        assert_eq!(percentile(&s, 0.9), 50.0); // ⌈4.5⌉ = 5
        assert_eq!(percentile(&s, 1.0), 50.0);
        // n = 4: the median is the lower middle sample (rank 2), not a mean.
        let s = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(percentile(&s, 0.5), 2.0);
        // ⌈3.6⌉ = 4.
        assert_eq!(percentile(&s, 0.9), 4.0);
        // n = 100, values 1..=100: the percentile is its own rank, even where
        // q·n carries rounding error (0.07 × 100 = 7.000000000000001).
        let s: Vec<f64> = (1..=100).map(f64::from).collect();
        for (q, want) in [(0.07, 7.0), (0.5, 50.0), (0.9, 90.0), (0.99, 99.0)] {
            assert_eq!(percentile(&s, q), want, "q = {q}");
        }
    }

    #[test]
    fn one_sample_empty_and_out_of_range() {
        for q in [0.0, 0.5, 0.99, 1.0] {
            assert_eq!(percentile(&[7.5], q), 7.5);
        }
        assert!(percentile(&[], 0.5).is_nan());
        assert!(percentile(&[1.0, 2.0], f64::NAN).is_nan());
        assert_eq!(percentile(&[1.0, 2.0], -0.5), 1.0);
        assert_eq!(percentile(&[1.0, 2.0], 1.5), 2.0);
    }

    #[test]
    fn nan_samples_sort_last_without_panicking() {
        let mut s = vec![3.0, f64::NAN, 1.0, -f64::NAN, f64::INFINITY, 2.0];
        sort_samples(&mut s);
        assert_eq!(&s[..4], &[1.0, 2.0, 3.0, f64::INFINITY]);
        assert!(s[4].is_nan() && s[5].is_nan());
        assert_eq!(percentile(&s, 0.5), 3.0); // ⌈3⌉ = 3
        assert!(percentile(&s, 1.0).is_nan());
    }
}
