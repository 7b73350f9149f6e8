//! Parity figures: ONNX Runtime's outputs against the f64 reference forward
//! (what `tcanet-export verify` prints, and what the tests assert on).
use std::fmt;

use rand::{Rng, SeedableRng};
use tcanet_models::{ModelConfig, NUM_STAGES};

use crate::ort_run::ModelOutputs;
use crate::reference::StageOutputs;
use tcanet_models::onnx::{Precision, IOU_OUTPUTS, PROPOSAL_OUTPUTS};

/// Acceptance limits of a precision.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tolerances {
    /// Maximum ‖onnx − ref‖₂ / ‖ref‖₂ of each `proposals_k`.
    pub proposals_rel: f64,
    /// Maximum |onnx − ref| of each `iou_k`.
    pub iou_abs: f64,
}

impl Tolerances {
    /// 1e-5 / 1e-5 for fp32, 1e-2 / 5e-3 for fp16.
    pub fn for_precision(p: Precision) -> Self {
        match p {
            Precision::Fp32 => Self {
                proposals_rel: 1e-5,
                iou_abs: 1e-5,
            },
            Precision::Fp16 => Self {
                proposals_rel: 1e-2,
                iou_abs: 5e-3,
            },
        }
    }
}

impl Tolerances {
    /// 2e-3 / 5e-3 for an `--int8` model (its weights and activations are
    /// quantized, so it is compared with quantization's error in mind).
    pub fn int8() -> Self {
        Self {
            proposals_rel: 2e-3,
            iou_abs: 5e-3,
        }
    }
}

/// The figure of one output.
#[derive(Debug, Clone, PartialEq)]
pub struct ParityRow {
    /// The output's name (`proposals_2`, `iou_3`, ...).
    pub output: String,
    /// Relative L2 error (proposals) or max absolute error (IoU).
    pub error: f64,
    /// Max absolute error (reported for both kinds).
    pub max_abs: f64,
    /// The limit `error` is held to.
    pub limit: f64,
    /// `true` for relative L2 figures, `false` for absolute ones.
    pub relative: bool,
    /// How far the reference itself moves (the same measure as `error`)
    /// when the input proposals move by one float32 step, when measured
    /// ([`ParityReport::floor_at_input_rounding`]).
    pub input_rounding: Option<f64>,
}

impl ParityRow {
    /// Whether the output is within its limit (NaN never is).
    pub fn passed(&self) -> bool {
        self.error <= self.limit
    }
}

/// Parity of all six outputs.
#[derive(Debug, Clone)]
pub struct ParityReport {
    /// What was compared (shown as a heading).
    pub label: String,
    /// One row per output.
    pub rows: Vec<ParityRow>,
}

/// A limit is never below this many times how far the reference moves when
/// the input proposals move by one float32 step: an error of that size is
/// the network's own sensitivity to float32 positions, which no float32
/// model avoids (the sampling positions are float32 numbers of T's size).
pub const INPUT_ROUNDING_FACTOR: f64 = 4.0;

impl ParityReport {
    /// Raises each row's limit to [`INPUT_ROUNDING_FACTOR`] × how far
    /// `reference` moves to `nudged`, the reference on the same inputs with
    /// every proposal one float32 step up (`nudged_proposals`).
    pub fn floor_at_input_rounding(
        mut self,
        reference: &StageOutputs,
        nudged: &StageOutputs,
    ) -> Self {
        for row in &mut self.rows {
            let Some(moved) = reference_move(&row.output, reference, nudged) else {
                continue;
            };
            row.input_rounding = Some(moved);
            row.limit = row.limit.max(INPUT_ROUNDING_FACTOR * moved);
        }
        self
    }

    /// Whether every output is within its limit.
    pub fn passed(&self) -> bool {
        self.rows.iter().all(ParityRow::passed)
    }
}

/// How far output `name` moves from `reference` to `nudged`, in the
/// measure its row uses (relative L2 for proposals, max absolute for IoU);
/// `None` for a name that is not a stage output.
fn reference_move(name: &str, reference: &StageOutputs, nudged: &StageOutputs) -> Option<f64> {
    if let Some(k) = PROPOSAL_OUTPUTS.iter().position(|&o| o == name) {
        return Some(rel_l2_and_max_abs(&reference.proposals[k], &nudged.proposals[k]).0);
    }
    let k = IOU_OUTPUTS.iter().position(|&o| o == name)?;
    Some(rel_l2_and_max_abs(&reference.iou[k], &nudged.iou[k]).1)
}

/// ‖a − b‖₂ / ‖b‖₂ (‖a − b‖₂ if b is all zero) and max |a − b|; `a` and
/// `b` must have one length (panics otherwise; [`compare`] checks first).
pub fn rel_l2_and_max_abs<A: Copy + Into<f64>>(a: &[A], b: &[f64]) -> (f64, f64) {
    assert_eq!(a.len(), b.len(), "compared outputs differ in size");
    let (mut num, mut den, mut max) = (0.0f64, 0.0f64, 0.0f64);
    for (&x, &y) in a.iter().zip(b) {
        let d = x.into() - y;
        num += d * d;
        den += y * y;
        max = if d.is_nan() {
            f64::NAN
        } else {
            max.max(d.abs())
        };
    }
    let rel = if den > 0.0 {
        (num / den).sqrt()
    } else {
        num.sqrt()
    };
    (if max.is_nan() { f64::NAN } else { rel }, max)
}

/// An output of the model whose size differs from the reference's.
#[derive(Debug, thiserror::Error)]
#[error(
    "output `{output}` has {model_values} values, the f64 reference {reference_values} \
     ({shape}): the model does not compute the network of the checkpoint; export it again"
)]
pub struct SizeMismatch {
    /// The output's name.
    pub output: String,
    /// Values the model returned.
    pub model_values: usize,
    /// Values the reference computed.
    pub reference_values: usize,
    /// The shape expected, e.g. `[B=2, N=16, 2]`.
    pub shape: String,
}

/// Refuses outputs whose sizes differ from the reference's.
fn check_sizes(onnx: &ModelOutputs, reference: &StageOutputs) -> Result<(), SizeMismatch> {
    let (b, n) = (onnx.batch, onnx.proposals_per_item);
    for k in 0..NUM_STAGES {
        let pairs = [
            (
                PROPOSAL_OUTPUTS[k],
                onnx.proposals[k].len(),
                reference.proposals[k].len(),
                2,
            ),
            (IOU_OUTPUTS[k], onnx.iou[k].len(), reference.iou[k].len(), 1),
        ];
        for (name, model_values, reference_values, last) in pairs {
            if model_values != reference_values {
                let tail = if last == 2 { ", 2" } else { "" };
                return Err(SizeMismatch {
                    output: name.to_string(),
                    model_values,
                    reference_values,
                    shape: format!("[B={b}, N={n}{tail}]"),
                });
            }
        }
    }
    Ok(())
}

/// Compares ONNX Runtime's outputs with the reference's (an output of
/// another size is an error naming it).
pub fn compare(
    label: &str,
    onnx: &ModelOutputs,
    reference: &StageOutputs,
    tol: Tolerances,
) -> Result<ParityReport, SizeMismatch> {
    check_sizes(onnx, reference)?;
    let mut rows = Vec::new();
    let stages = PROPOSAL_OUTPUTS
        .iter()
        .zip(&onnx.proposals)
        .zip(&reference.proposals);
    for ((name, got), want) in stages {
        let (rel, max) = rel_l2_and_max_abs(got, want);
        rows.push(ParityRow {
            output: name.to_string(),
            error: rel,
            max_abs: max,
            limit: tol.proposals_rel,
            relative: true,
            input_rounding: None,
        });
    }
    for ((name, got), want) in IOU_OUTPUTS.iter().zip(&onnx.iou).zip(&reference.iou) {
        let (_, max) = rel_l2_and_max_abs(got, want);
        rows.push(ParityRow {
            output: name.to_string(),
            error: max,
            max_abs: max,
            limit: tol.iou_abs,
            relative: false,
            input_rounding: None,
        });
    }
    Ok(ParityReport {
        label: label.to_string(),
        rows,
    })
}

impl fmt::Display for ParityReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}", self.label)?;
        let rounding = self.rows.iter().any(|r| r.input_rounding.is_some());
        writeln!(
            f,
            "  {:<12} {:>12} {:>12} {:>10}{}  verdict",
            "output",
            "error",
            "max |diff|",
            "limit",
            if rounding { "  ref moves by" } else { "" }
        )?;
        for r in &self.rows {
            let kind = if r.relative { "rel L2" } else { "abs" };
            let moved = match r.input_rounding {
                Some(m) => format!("  {m:>13.3e}"),
                None => String::new(),
            };
            writeln!(
                f,
                "  {:<12} {:>12.3e} {:>12.3e} {:>10.1e}{moved}  {} ({kind})",
                r.output,
                r.error,
                r.max_abs,
                r.limit,
                if r.passed() { "ok" } else { "FAIL" }
            )?;
        }
        if rounding {
            writeln!(
                f,
                "  (ref moves by: how far the f64 reference moves when every input proposal moves by one float32 step; no limit is below {INPUT_ROUNDING_FACTOR} times it)"
            )?;
        }
        Ok(())
    }
}

/// `proposals` each moved one float32 step up: inputs for the reference's
/// sensitivity to float32 positions ([`ParityReport::floor_at_input_rounding`]).
pub fn nudged_proposals(proposals: &[f32]) -> Vec<f32> {
    proposals.iter().map(|p| p.next_up()).collect()
}

/// Random inputs for `cfg`: features uniform in [-1.7, 1.7] (about unit
/// variance) `[b, C, T]`, and `[b, n, 2]` proposals in the network's units
/// of which some start before 0, some end after the timeline and some lie
/// wholly beyond it. Deterministic in `seed`.
pub fn random_inputs(cfg: &ModelConfig, b: usize, n: usize, seed: u64) -> (Vec<f32>, Vec<f32>) {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let features = (0..b * cfg.feat_dim * cfg.temporal_scale)
        .map(|_| rng.gen_range(-1.7f32..1.7))
        .collect();
    let d = cfg.timeline_seconds() as f32;
    let mut proposals = Vec::with_capacity(b * n * 2);
    for i in 0..b * n {
        let (s, len) = match i % 8 {
            // Wholly after the timeline.
            7 => (d * rng.gen_range(1.01..1.2), d * rng.gen_range(0.01..0.2)),
            // Starting before 0.
            6 => (-d * rng.gen_range(0.01..0.1), d * rng.gen_range(0.05..0.3)),
            // Ending after the timeline.
            5 => (d * rng.gen_range(0.7..0.95), d * rng.gen_range(0.1..0.4)),
            _ => (d * rng.gen_range(0.0..0.9), d * rng.gen_range(0.005..0.4)),
        };
        proposals.push(s);
        proposals.push(s + len);
    }
    (features, proposals)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Stage outputs with every value `v` (2 videos of 1 proposal).
    fn stages(v: f64) -> StageOutputs {
        StageOutputs {
            proposals: std::array::from_fn(|_| vec![v; 4]),
            iou: std::array::from_fn(|_| vec![v; 2]),
        }
    }

    fn model(v: f32) -> ModelOutputs {
        ModelOutputs {
            proposals: std::array::from_fn(|_| vec![v; 4]),
            iou: std::array::from_fn(|_| vec![v; 2]),
            batch: 2,
            proposals_per_item: 1,
        }
    }

    /// An IoU error of 3e-5 fails the fp32 limit of 1e-5, and passes once
    /// the reference is shown to move by 1e-5 (limit 4e-5) when its input
    /// proposals move by one float32 step; an error beyond 4× that still
    /// fails, and a reference that does not move leaves the limits alone.
    #[test]
    fn limits_never_fall_below_the_references_own_input_rounding() {
        let tol = Tolerances::for_precision(Precision::Fp32);
        let (reference, onnx) = (stages(0.5), model(0.5 + 3e-5));
        let strict = compare("t", &onnx, &reference, tol).unwrap();
        assert!(!strict.passed());
        let moved = stages(0.5 + 1e-5);
        let floored = strict.clone().floor_at_input_rounding(&reference, &moved);
        let iou = &floored.rows[NUM_STAGES];
        let moved_by = iou.input_rounding.unwrap();
        assert!((moved_by - 1e-5).abs() < 1e-12, "{moved_by}");
        assert!((iou.limit - 4e-5).abs() < 1e-12, "{}", iou.limit);
        assert!(floored.passed(), "{floored}");
        assert!(floored.to_string().contains("ref moves by"));
        let worse = compare("t", &model(0.5 + 5e-5), &reference, tol)
            .unwrap()
            .floor_at_input_rounding(&reference, &moved);
        assert!(!worse.passed());
        let unmoved = strict.floor_at_input_rounding(&reference, &reference);
        assert!(!unmoved.passed());
        assert!(unmoved.rows.iter().all(|r| r.limit == 1e-5));
    }

    /// Each row is floored by its own output's move, found by name: when
    /// only `proposals_2` and `iou_3` move, only their rows change.
    #[test]
    fn each_row_is_floored_by_its_own_outputs_move() {
        let tol = Tolerances::for_precision(Precision::Fp32);
        let reference = stages(0.5);
        let report = compare("t", &model(0.5), &reference, tol).unwrap();
        let mut moved = stages(0.5);
        moved.proposals[1] = vec![0.5 + 1e-3; 4];
        moved.iou[2] = vec![0.5 + 1e-3; 2];
        let floored = report.floor_at_input_rounding(&reference, &moved);
        for row in &floored.rows {
            let by = row.input_rounding.unwrap();
            let expect = ["proposals_2", "iou_3"].contains(&row.output.as_str());
            assert_eq!(by > 0.0, expect, "{}: {by}", row.output);
            assert_eq!(row.limit > 1e-5, expect, "{}: {}", row.output, row.limit);
        }
    }

    /// One step up is the next representable float32: the bit pattern one
    /// further from zero for positive values, one nearer for negative ones,
    /// the smallest subnormal from zero.
    #[test]
    fn nudged_proposals_move_by_one_float32_step() {
        let p = [0.0f32, 1.0, -3.5, 532.9];
        let n = nudged_proposals(&p);
        assert_eq!(n[0].to_bits(), 1);
        assert_eq!(n[1].to_bits(), 1.0f32.to_bits() + 1);
        assert_eq!(n[2].to_bits(), (-3.5f32).to_bits() - 1);
        assert_eq!(n[3].to_bits(), 532.9f32.to_bits() + 1);
        assert!(p.iter().zip(&n).all(|(a, b)| b > a));
    }
}
