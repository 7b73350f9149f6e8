//! Segment arithmetic of the TBR stages: decoding regressions into proposals,
//! encoding ground truth into regression targets, and IoU. Every function
//! works element-wise on tensors whose last dimension is (start, end).
use tch::Tensor;

/// Width clamp of the target encoding (`max(w, 1e-5)`).
const MIN_WIDTH: f64 = 1e-5;

fn start_end(x: &Tensor) -> (Tensor, Tensor) {
    (x.select(-1, 0), x.select(-1, 1))
}

/// Refined proposals from `proposals` [.., 2] and the raw regressions `se` =
/// (ds, de) and `xw` = (dx, dw) [.., 2] (docs/MODEL.md "TBR decoding"): with
/// w = e - s and c = s + w/2, XW gives c' = c + 0.1 dx w, w' = w exp(0.2 dw);
/// SE gives [s + ds w g, e + de w g]; the result is max(0, (SE + XW) / 2).
/// `se_scale` is g (1.0 in training, 0.2 at inference in the release).
pub fn decode_proposals(proposals: &Tensor, se: &Tensor, xw: &Tensor, se_scale: f64) -> Tensor {
    let (s, e) = start_end(proposals);
    let w = &e - &s;
    let c = &s + &w * 0.5;
    let (dx, dw) = start_end(xw);
    let c2 = c + dx * 0.1 * &w;
    let w2 = &w * (dw * 0.2).exp();
    let (ds, de) = start_end(se);
    let start = (&s + ds * &w * se_scale + &c2 - &w2 * 0.5) * 0.5;
    let end = (&e + de * &w * se_scale + &c2 + &w2 * 0.5) * 0.5;
    Tensor::stack(&[start, end], -1).clamp_min(0.0)
}

/// Regression targets of `proposals` for their matched ground truth `gt`
/// (both [.., 2]): (SE targets, XW targets), each [.., 2]. With
/// w_c = max(e - s, 1e-5) and gw_c likewise: SE = ((gs - s)/w_c, (ge - e)/w_c),
/// XW = ((gc - c)/w_c, ln(gw_c / w_c)) with c = s + w_c/2, gc = gs + gw_c/2.
/// Not divided by the 0.1/0.2 decode factors (release behaviour).
pub fn encode_targets(proposals: &Tensor, gt: &Tensor) -> (Tensor, Tensor) {
    let (s, e) = start_end(proposals);
    let (gs, ge) = start_end(gt);
    let w = (&e - &s).clamp_min(MIN_WIDTH);
    let gw = (&ge - &gs).clamp_min(MIN_WIDTH);
    let se = Tensor::stack(&[(&gs - &s) / &w, (&ge - &e) / &w], -1);
    let c = &s + &w * 0.5;
    let gc = &gs + &gw * 0.5;
    let xw = Tensor::stack(&[(gc - c) / &w, (gw / &w).log()], -1);
    (se, xw)
}

/// IoU of `a` and `b` ([.., 2] each, paired element-wise) as the release
/// computes it: `inter / (union + 1e-5)`, inter clamped at 0. Shape [..].
pub fn segment_iou(a: &Tensor, b: &Tensor) -> Tensor {
    let (as_, ae) = start_end(a);
    let (bs, be) = start_end(b);
    let inter = (ae.minimum(&be) - as_.maximum(&bs)).clamp_min(0.0);
    let union = (&ae - &as_) - &inter + (&be - &bs);
    inter / (union + 1e-5)
}
