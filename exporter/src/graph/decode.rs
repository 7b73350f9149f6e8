//! TBR decoding in float32 (docs/MODEL.md, "TBR decoding", inference
//! scale): SE boxes [s + ds·w·g, e + de·w·g], XW boxes around
//! c' = c + 0.1·dx·w with width w·exp(0.2·dw) (g, 0.1 and 0.2 folded into
//! the heads' last weights), their mean clamped at 0, and the IoU estimate.
use super::Net;
use crate::builder::Value;

impl Net<'_> {
    /// Returns (next proposals `[B, N, 2]`, IoU estimate `[B, N]`).
    pub(super) fn decode(&mut self, props: &Value, se: &Value, xw: &Value) -> (Value, Value) {
        let b = &mut self.b;
        let parts = b.split("dx_dw_t", xw, &[1, 1, 1], 2);
        let (dx, dw, logit) = (&parts[0], &parts[1], &parts[2]);
        let se_pt = b.split("start_end", props, &[1, 1], 2);
        let (s, e) = (&se_pt[0], &se_pt[1]);
        let w = b.sub("width", e, s);
        // SE: [s + ds·w·g, e + de·w·g].
        let dsw = b.mul("se_delta", se, &w);
        let se_dec = b.add("se_proposal", props, &dsw);
        // XW: c' = c + 0.1·dx·w, w' = w·exp(0.2·dw).
        let half = b.const_f32("half", &[], &[0.5]);
        let hw = b.mul("half_width", &w, &half);
        let c = b.add("centre", s, &hw);
        let dxw = b.mul("centre_delta", dx, &w);
        let c2 = b.add("new_centre", &c, &dxw);
        let ew = b.exp("width_factor", dw);
        let w2 = b.mul("new_width", &w, &ew);
        let halves = b.const_f32("minus_plus_half", &[2], &[-0.5, 0.5]);
        let ext = b.mul("half_extent", &w2, &halves);
        let xw_dec = b.add("xw_proposal", &c2, &ext);
        let sum = b.add("se_plus_xw", &se_dec, &xw_dec);
        let mean = b.mul("mean", &sum, &half);
        let next = b.relu("clamp_at_zero", &mean);
        let t = b.squeeze("iou_logit", logit, &[2]);
        let iou = b.sigmoid("iou", &t);
        (next, iou)
    }
}
