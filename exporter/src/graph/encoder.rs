//! The base encoder: two grouped convs with ReLU on `[B, C, T]`, then the
//! features time-major `[B, T, H]` for the LGTE layers; either as `Conv`s
//! or as Winograd's minimal filtering (see `fold::winograd`) on the
//! features made time-major first: per conv, one call of
//! [`WINOGRAD_TILES`], one batched `MatMul` per channel group and
//! transformed point, one call of [`WINOGRAD_UNTILE_RELU`].
use super::fold::winograd::WinogradConv;
use super::fold::Conv;
use super::Net;
use crate::builder::Value;
#[cfg(doc)]
use tcanet_models::onnx::{WINOGRAD_TILES, WINOGRAD_UNTILE_RELU};

impl Net<'_> {
    /// `x_1d_b_f`: Conv, ReLU, Conv, ReLU (as Conv2d of height 1), to
    /// time-major.
    pub(super) fn base_encoder(
        &mut self,
        x: &Value,
        convs: &[Conv; 2],
        winograd: Option<&[WinogradConv; 2]>,
    ) -> Value {
        if let Some([first, second]) = winograd {
            let t = self.cfg.temporal_scale;
            let x = self.b.transpose("to_time_major", x, &[0, 2, 1]);
            let x = self.scoped("0", |n| n.winograd_conv(&x, first, t));
            return self.scoped("2", |n| n.winograd_conv(&x, second, t));
        }
        let x = self.b.unsqueeze("as_2d", x, &[2]);
        let x = self.conv2d_relu("0", "1", &x, &convs[0]);
        let x = self.conv2d_relu("2", "3", &x, &convs[1]);
        let x = self.b.squeeze("as_1d", &x, &[2]);
        self.b.transpose("to_time_major", &x, &[0, 2, 1])
    }

    /// `[B, g, T+2, H/g]`: the encoded features per conv group, time-major,
    /// with one zero step before and after the timeline: what the TBR
    /// heads' tap tables are computed from.
    pub(super) fn padded_groups(&mut self, x: &Value) -> Value {
        let g = self.cfg.conv_groups as i64;
        let b = &mut self.b;
        let x = b.reshape("per_group", x, &[0, 0, g, -1]);
        let x = b.transpose("groups_first", &x, &[0, 2, 1, 3]);
        b.pad("zero_pad_time", &x, &[0, 0, 1, 0, 0, 0, 1, 0], None)
    }
}
