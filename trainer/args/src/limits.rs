//! The valid range of every numeric setting, in one place: the command
//! line's parsers (through `tcanet_cli::range`) and the checks of a
//! `--train-config` file use the same bounds, so a value is refused the same
//! way wherever it comes from.
use tcanet_cli::range;

/// An inclusive integer range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IntRange {
    /// Smallest value.
    pub min: u64,
    /// Largest value.
    pub max: u64,
}

/// A float range; every value must also be finite.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FloatRange {
    /// Lower bound.
    pub min: f64,
    /// Whether `min` itself is allowed.
    pub min_inclusive: bool,
    /// Upper bound (infinite: none).
    pub max: f64,
    /// Whether `max` itself is allowed.
    pub max_inclusive: bool,
}

const fn int(min: u64, max: u64) -> IntRange {
    IntRange { min, max }
}

const fn closed(min: f64, max: f64) -> FloatRange {
    FloatRange {
        min,
        min_inclusive: true,
        max,
        max_inclusive: true,
    }
}

const fn open_closed(min: f64, max: f64) -> FloatRange {
    FloatRange {
        min,
        min_inclusive: false,
        max,
        max_inclusive: true,
    }
}

/// Epochs: 1 to 1,000,000.
pub const EPOCHS: IntRange = int(1, 1_000_000);
/// Videos per batch: 1 to 65,536.
pub const BATCH_SIZE: IntRange = int(1, 65_536);
/// Warm-up iterations: 0 (none) to 10^9.
pub const WARMUP_ITERS: IntRange = int(0, 1_000_000_000);
/// First decayed epoch (1-based): 1 to 1,000,000.
pub const LR_DECAY_EPOCH: IntRange = int(1, 1_000_000);
/// Steps in total: 1 to 10^12.
pub const MAX_STEPS: IntRange = int(1, 1_000_000_000_000);
/// Steps between saves: 1 to 10^12.
pub const SAVE_EVERY: IntRange = int(1, 1_000_000_000_000);
/// Data-loading threads: 1 to 256.
pub const WORKERS: IntRange = int(1, 256);
/// libtorch threads: 1 to 1024.
pub const THREADS: IntRange = int(1, 1024);
/// Input proposals per video: 1 to 100,000.
pub const MAX_PROPOSALS: IntRange = int(1, 100_000);
/// Seeds: any 64-bit unsigned integer.
pub const SEED: IntRange = int(0, u64::MAX);
/// Base learning rate: in (0, 1].
pub const LR: FloatRange = open_closed(0.0, 1.0);
/// AdamW weight decay: in [0, 1].
pub const WEIGHT_DECAY: FloatRange = closed(0.0, 1.0);
/// Learning-rate decay factor: in (0, 1].
pub const LR_DECAY: FloatRange = open_closed(0.0, 1.0);
/// Shortest ground-truth instance kept (s): in [0, 10^6].
pub const MIN_INSTANCE_SECONDS: FloatRange = closed(0.0, 1e6);
/// Training videos held out for calibration: in [0, 0.5].
pub const CALIBRATION_FRACTION: FloatRange = closed(0.0, 0.5);
/// A start/end decode scale: in (0, 2].
pub const DECODE_SCALE: FloatRange = open_closed(0.0, tcanet_models::calibration::MAX_DECODE_SCALE);

/// `synth`: videos per subset, 1 to 1,000,000.
pub const SYNTH_VIDEOS: IntRange = int(1, 1_000_000);
/// `synth`: action classes, 1 to 100,000.
pub const SYNTH_CLASSES: IntRange = int(1, 100_000);
/// `synth`: feature channels, 1 to 65,536.
pub const SYNTH_CHANNELS: IntRange = int(1, 65_536);
/// `synth`: feature steps per video, 1 to 1,000,000.
pub const SYNTH_STEPS: IntRange = int(1, 1_000_000);
/// `synth`: proposals per video, 1 to 100,000.
pub const SYNTH_PROPOSALS: IntRange = int(1, 100_000);
/// `synth`: seconds per feature step, in (0, 3600].
pub const SYNTH_INTERVAL: FloatRange = open_closed(0.0, 3600.0);
/// `synth`: feature noise standard deviation, in [0, 100].
pub const SYNTH_NOISE: FloatRange = closed(0.0, 100.0);
/// `synth`: boundary error as a fraction of the action, in [0, 10].
pub const SYNTH_BOUNDARY_ERROR: FloatRange = closed(0.0, 10.0);
/// `synth`: video durations (s), in (1, 86400].
pub const SYNTH_DURATION: FloatRange = open_closed(1.0, 86_400.0);

/// `bench`: timed steps, 1 to 1,000,000.
pub const BENCH_STEPS: IntRange = int(1, 1_000_000);
/// `bench`: untimed steps, 0 to 1,000,000.
pub const BENCH_WARMUP: IntRange = int(0, 1_000_000);
/// `bench`: proposals per video, 1 to 100,000.
pub const BENCH_PROPOSALS: IntRange = int(1, 100_000);

impl IntRange {
    /// A clap value parser for this range.
    pub fn parser<T>(self) -> impl Fn(&str) -> Result<T, String> + Clone + Send + Sync + 'static
    where
        T: TryFrom<u64> + Clone + Send + Sync + 'static,
    {
        range::int_in::<T>(self.min, self.max)
    }

    /// The range in words, as the parser's message says it.
    pub fn describe(self) -> String {
        format!("an integer from {} to {}", self.min, self.max)
    }

    /// Whether `v` lies in the range.
    pub fn contains(self, v: u64) -> bool {
        (self.min..=self.max).contains(&v)
    }
}

impl FloatRange {
    /// A clap value parser for this range.
    pub fn parser(self) -> impl Fn(&str) -> Result<f64, String> + Clone + Send + Sync + 'static {
        range::float_in(self.min, self.min_inclusive, self.max, self.max_inclusive)
    }

    /// The range in words, as the parser's message says it.
    pub fn describe(self) -> String {
        format!(
            "a finite number {}",
            range::describe_float(self.min, self.min_inclusive, self.max, self.max_inclusive)
        )
    }

    /// Whether `v` is finite and lies in the range.
    pub fn contains(self, v: f64) -> bool {
        let above = if self.min_inclusive {
            v >= self.min
        } else {
            v > self.min
        };
        let below = if self.max_inclusive {
            v <= self.max
        } else {
            v < self.max
        };
        v.is_finite() && above && below
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parser_and_check_agree() {
        for (r, good, bad) in [
            (LR, ["1", "4e-4"], ["0", "1.5"]),
            (LR_DECAY, ["0.1", "1"], ["0", "-1"]),
            (CALIBRATION_FRACTION, ["0", "0.5"], ["0.51", "nan"]),
        ] {
            for g in good {
                let v = r.parser()(g).unwrap();
                assert!(r.contains(v), "{g}");
            }
            for b in bad {
                let e = r.parser()(b).unwrap_err();
                assert!(e.contains(&r.describe()), "{e} vs {}", r.describe());
                assert!(b.parse::<f64>().map_or(true, |v| !r.contains(v)));
            }
        }
        assert!(EPOCHS.parser::<u64>()("0")
            .unwrap_err()
            .contains(&EPOCHS.describe()));
        assert!(!EPOCHS.contains(0) && EPOCHS.contains(9));
        assert!(!LR.contains(f64::INFINITY) && !LR.contains(f64::NAN));
    }
}
