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

impl ParityReport {
    /// Whether every output is within its limit.
    pub fn passed(&self) -> bool {
        self.rows.iter().all(ParityRow::passed)
    }
}

/// ‖a − b‖₂ / ‖b‖₂ (‖a − b‖₂ if b is all zero) and max |a − b|; `a` and
/// `b` must have one length (panics otherwise; [`compare`] checks first).
pub fn rel_l2_and_max_abs(a: &[f32], b: &[f64]) -> (f64, f64) {
    assert_eq!(a.len(), b.len(), "compared outputs differ in size");
    let (mut num, mut den, mut max) = (0.0f64, 0.0f64, 0.0f64);
    for (&x, &y) in a.iter().zip(b) {
        let d = x as f64 - y;
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
        writeln!(
            f,
            "  {:<12} {:>12} {:>12} {:>10}  verdict",
            "output", "error", "max |diff|", "limit"
        )?;
        for r in &self.rows {
            let kind = if r.relative { "rel L2" } else { "abs" };
            writeln!(
                f,
                "  {:<12} {:>12.3e} {:>12.3e} {:>10.0e}  {} ({kind})",
                r.output,
                r.error,
                r.max_abs,
                r.limit,
                if r.passed() { "ok" } else { "FAIL" }
            )?;
        }
        Ok(())
    }
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
