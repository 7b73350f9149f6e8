//! The learning-rate schedule of docs/MODEL.md: a cosine warm-up over the first
//! iterations of epoch 1, then the base rate, ×`decay` from epoch `decay_epoch` on.
use serde::{Deserialize, Serialize};

/// Learning rate as a function of (epoch, iteration within the epoch).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LrSchedule {
    /// Base learning rate (4e-4).
    pub base: f64,
    /// Warm-up iterations at the start of epoch 1 (1000; 0 disables it).
    pub warmup_iters: u64,
    /// First epoch (1-based) at the decayed rate (7).
    pub decay_epoch: u64,
    /// Factor applied from `decay_epoch` on (0.1).
    pub decay: f64,
}

impl Default for LrSchedule {
    fn default() -> Self {
        Self {
            base: 4e-4,
            warmup_iters: 1000,
            decay_epoch: 7,
            decay: 0.1,
        }
    }
}

impl LrSchedule {
    /// The rate for iteration `iter` (0-based) of epoch `epoch` (0-based):
    /// `base · 0.5 · (cos(π + π·iter/warmup) + 1.000001)` while
    /// `epoch == 0 && iter < warmup_iters`, times `decay` once
    /// `epoch + 1 >= decay_epoch`.
    pub fn lr(&self, epoch: u64, iter: u64) -> f64 {
        let mut lr = self.base;
        if epoch == 0 && iter < self.warmup_iters {
            let x = std::f64::consts::PI
                + std::f64::consts::PI * iter as f64 / self.warmup_iters as f64;
            lr *= 0.5 * (x.cos() + 1.000001);
        }
        if epoch + 1 >= self.decay_epoch {
            lr *= self.decay;
        }
        lr
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_at_hand_computed_points() {
        let s = LrSchedule::default();
        let close = |a: f64, b: f64| (a - b).abs() <= 1e-15 + 1e-12 * b.abs();
        // iter 0: cos(π) = -1 → 0.5 · 1e-6 · 4e-4 = 2e-10.
        assert!(close(s.lr(0, 0), 2e-10), "{}", s.lr(0, 0));
        // iter 500: cos(1.5π) = 0 → 0.5 · 1.000001 · 4e-4.
        assert!(close(s.lr(0, 500), 2.000002e-4), "{}", s.lr(0, 500));
        // iter 250: cos(1.25π) = -√2/2.
        let want = 4e-4 * 0.5 * (1.000001 - std::f64::consts::FRAC_1_SQRT_2);
        assert!(close(s.lr(0, 250), want));
        assert_eq!(s.lr(0, 1000), 4e-4);
        assert_eq!(s.lr(1, 0), 4e-4, "no warm-up after epoch 1");
        assert_eq!(s.lr(5, 3), 4e-4, "epoch 6 still at the base rate");
        assert!(close(s.lr(6, 0), 4e-5), "epoch 7 decays");
        assert!(close(s.lr(8, 99), 4e-5));
        let none = LrSchedule {
            warmup_iters: 0,
            ..s
        };
        assert_eq!(none.lr(0, 0), 4e-4);
    }
}
