//! The training losses of docs/MODEL.md "Training", per stage and in total.
use super::boxes::{encode_targets, segment_iou};
use super::Forward;
use tcanet_models::ModelConfig;
use tch::{Kind, Reduction, Tensor};

/// IoU at or below which a proposal counts as "low" for the IoU loss.
const LOW_IOU: f64 = 0.3;

/// The three loss terms of one TBR stage (scalar tensors).
#[derive(Debug)]
pub struct StageLoss {
    /// Start/end regression loss.
    pub se: Tensor,
    /// Centre/width regression loss.
    pub xw: Tensor,
    /// IoU-estimate loss.
    pub iou: Tensor,
}

/// All loss terms: `total` = Σ over stages of `se + xw + iou`.
#[derive(Debug)]
pub struct LossTerms {
    /// The sum to minimise (scalar).
    pub total: Tensor,
    /// One entry per TBR stage, stage 1 first.
    pub per_stage: Vec<StageLoss>,
}

/// Element-wise smooth-L1 with beta 1 (no reduction).
fn smooth_l1(x: &Tensor, target: &Tensor) -> Tensor {
    x.smooth_l1_loss(target, Reduction::None, 1.0)
}

/// `Σ where(mask, values, 0) / max(Σ mask, 1)`: the mean over the masked
/// entries, 0 when none (a count is an integer, so `max(·, 1)` only acts on 0).
fn masked_mean(values: &Tensor, mask: &Tensor) -> Tensor {
    let picked = values.where_self(mask, &values.zeros_like());
    picked.sum(values.kind())
        / mask
            .to_kind(values.kind())
            .sum(values.kind())
            .clamp_min(1.0)
}

/// Regression loss: smooth-L1 summed over both coordinates, averaged over
/// the proposals with `mask` (valid and IoU ≥ threshold); 0 if none.
pub fn regression_loss(pred: &Tensor, target: &Tensor, mask: &Tensor) -> Tensor {
    masked_mean(
        &smooth_l1(pred, target).sum_dim_intlist(-1, false, pred.kind()),
        mask,
    )
}

/// The proposals the IoU loss uses, [B, N] bool: every valid one with
/// IoU > `threshold` ("high"), plus each valid "medium" one (0.3 < IoU ≤
/// threshold) kept with probability min(1, n_high/n_medium), plus each valid
/// "low" one (IoU ≤ 0.3) kept with probability min(1, n_high/n_low); counts
/// over the whole batch.
///
/// Draws from torch's global RNG: first `rand([B, N])` for the medium ones,
/// then `rand([B, N])` for the low ones (on `iou`'s device, in `iou`'s
/// dtype); a proposal with draw u is kept when `u > 1 - p` (as the release).
pub fn iou_loss_selection(iou: &Tensor, valid: &Tensor, threshold: f64) -> Tensor {
    let kind = iou.kind();
    let high = iou.gt(threshold).logical_and(valid);
    let medium = iou
        .le(threshold)
        .logical_and(&iou.gt(LOW_IOU))
        .logical_and(valid);
    let low = iou.le(LOW_IOU).logical_and(valid);
    let count = |m: &Tensor| m.to_kind(kind).sum(kind);
    let n_high = count(&high);
    let keep_prob = |m: &Tensor| (&n_high / count(m).clamp_min(1.0)).clamp_max(1.0);
    let u_medium = Tensor::rand(iou.size(), (kind, iou.device()));
    let u_low = Tensor::rand(iou.size(), (kind, iou.device()));
    let keep_medium = medium.logical_and(&u_medium.gt_tensor(&(1.0 - keep_prob(&medium))));
    let keep_low = low.logical_and(&u_low.gt_tensor(&(1.0 - keep_prob(&low))));
    high.logical_or(&keep_medium).logical_or(&keep_low)
}

/// Losses of docs/MODEL.md "Training" for a forward pass in training mode.
///
/// `gt` [B, N, 2]: the ground-truth instance matched to each *input* proposal
/// (the one of highest IoU with it), used as the target of that proposal in
/// every stage; `valid` [B, N] bool: false for padding. Stage k compares its
/// input P_k with `gt`: regression targets [`encode_targets`], IoU
/// [`segment_iou`], thresholds `cfg.iou_thresholds[k]`; counts and means are
/// over the whole batch, as the release (which flattens the batch).
///
/// As in the release the targets and the true IoU are computed from P_k
/// without detaching it, so in stages 2 and 3 gradients also reach the
/// earlier stages through the targets. Padding entries are replaced by a
/// harmless segment before the targets are computed, so they never produce
/// NaN or inf, and are excluded from every term. Random draws:
/// [`iou_loss_selection`] per stage, stage 1 first.
pub fn tcanet_loss(fwd: &Forward, gt: &Tensor, valid: &Tensor, cfg: &ModelConfig) -> LossTerms {
    let valid = valid.to_kind(Kind::Bool);
    let mut per_stage = Vec::with_capacity(fwd.stages.len());
    let mut total: Option<Tensor> = None;
    for (k, stage) in fwd.stages.iter().enumerate() {
        let thr = cfg.iou_thresholds[k];
        let kind = stage.input.kind();
        let gt = gt.to_kind(kind);
        let pad = valid.unsqueeze(-1);
        let unit = Tensor::from_slice(&[0.0f64, 1.0])
            .to_kind(kind)
            .to_device(gt.device());
        let gt = gt.where_self(&pad, &unit);
        let input = stage.input.where_self(&pad, &unit);
        let iou = segment_iou(&input, &gt);
        let (t_se, t_xw) = encode_targets(&input, &gt);
        let reg_mask = iou.ge(thr).logical_and(&valid);
        let se = regression_loss(&stage.se, &t_se, &reg_mask);
        let xw = regression_loss(&stage.xw, &t_xw, &reg_mask);
        let chosen = iou_loss_selection(&iou.detach(), &valid, thr);
        let iou_term = masked_mean(&smooth_l1(&stage.iou, &iou), &chosen);
        let sum = &se + &xw + &iou_term;
        total = Some(match total {
            Some(t) => t + sum,
            None => sum,
        });
        per_stage.push(StageLoss {
            se,
            xw,
            iou: iou_term,
        });
    }
    LossTerms {
        total: total.expect("a forward pass has stages"),
        per_stage,
    }
}
