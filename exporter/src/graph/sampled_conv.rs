//! The first (linear) conv of a TBR branch applied to the TTN samples
//! without forming them.
//!
//! The samples are linear interpolations of the features F, so tap k of a
//! Conv1d (kernel 3, stride 2, padding 1) over the samples equals the same
//! interpolation of G_k = W_k ⊛ F, computed once per video by one `MatMul`
//! per conv group (the tap table). Output j of a region sums, over k, G_k
//! interpolated at the region's sample 2j + k − 1 (the sentinel sample,
//! i.e. zero, outside the region: the conv's zero padding in sample space),
//! then adds the bias: one `GatherND` fetches the 3 taps × 2 neighbour rows
//! of every output and one batched `MatMul` [.., 1, 6] @ [.., 6, C] weights
//! and sums them.
use super::fold::TapConv;
use super::ttn::SamplePositions;
use super::Net;
use crate::builder::Value;
use crate::onnx_proto::data_type;

/// Where every output tap reads the tap table: row indices `[B, M, 2, 1]`
/// (left and right neighbour; M = N·regions·J·3) and interpolation weights
/// `[B·N·regions·J, 1, 6]`.
struct TapReads {
    rows: Value,
    weights: Value,
}

impl Net<'_> {
    /// The conv `tc` on the samples at `pos` of `features` `[B, g, T+2, H/g]`.
    /// Returns `[B·N, regions·C, J]` (before the ReLU), in scope `leaf`.
    pub(super) fn sampled_conv(
        &mut self,
        leaf: &str,
        features: &Value,
        pos: &SamplePositions,
        tc: &TapConv,
    ) -> Value {
        let w = self.weight(&format!("{leaf}.tap_weight"), &tc.tap_weight);
        let bias = self.weight(&format!("{leaf}.bias"), &tc.bias);
        self.scoped(leaf, |n| {
            let table = n.tap_table(features, &w, tc);
            let reads = n.tap_reads(pos, tc);
            n.interpolate_taps(&table, &reads, &bias, tc)
        })
    }

    /// `[B, (T+2)·regions·3, C]`: row (t·regions + r)·3 + k holds G_k[t] of
    /// region r (one matmul per group, then whole C/g blocks moved: a cheap
    /// transpose).
    fn tap_table(&mut self, features: &Value, w: &Value, tc: &TapConv) -> Value {
        let (g, c) = (tc.groups as i64, tc.channels as i64);
        let b = &mut self.b;
        // [B, g, T+2, regions·3·C/g] = [B, g, (T+2)·regions·3, C/g]
        let table = b.matmul("taps", features, w);
        let table = b.reshape("group_rows", &table, &[0, g, -1, c / g]);
        let table = b.transpose("groups_last", &table, &[0, 2, 1, 3]);
        b.reshape("rows", &table, &[0, -1, c])
    }

    /// The table rows and weights of every output tap, from the sample
    /// positions and the constant sample table.
    fn tap_reads(&mut self, pos: &SamplePositions, tc: &TapConv) -> TapReads {
        let (nb, j) = (tc.regions, tc.outputs);
        let row_offset: Vec<f32> = (0..nb * 3).map(|v| v as f32).collect();
        // Rows between one time step and the next in the tap table.
        let step = (nb * 3) as f32;
        let b = &mut self.b;
        let sample = b.const_i64("sample_index", &[nb, j, 3], &tc.sample_index);
        // [B, N, regions, J, 3] per tap: left neighbour and its weight.
        let tl = b.gather("tap_left", &pos.left, &sample, 2);
        let tf = b.gather("tap_frac", &pos.frac, &sample, 2);
        let stride = b.const_f32("row_stride", &[], &[step]);
        let offset = b.const_f32("row_offset", &[nb, 1, 3], &row_offset);
        let tl = b.mul("time_rows", &tl, &stride);
        let tl = b.add("tap_rows", &tl, &offset);
        let tl = b.reshape("rows_per_tap", &tl, &[0, -1, 1]);
        // Left and right neighbour rows [B, M, 2] (right = one time step on).
        let nbr = b.const_f32("neighbour_rows", &[2], &[0.0, step]);
        let rows = b.add("neighbours", &tl, &nbr);
        let rows = b.cast("row_index", &rows, data_type::INT64);
        let rows = b.reshape("gather_index", &rows, &[0, -1, 1]);
        // Weights (1 − frac, frac) = frac·(−1, 1) + (1, 0), [B·N·regions·J, 1, 6].
        let tf = b.reshape("frac_per_tap", &tf, &[0, -1, 1]);
        let sign = b.const_f32("minus_plus_one", &[2], &[-1.0, 1.0]);
        let base = b.const_f32("one_zero", &[2], &[1.0, 0.0]);
        let tf = b.mul("signed_frac", &tf, &sign);
        let wts = b.add("weights", &tf, &base);
        let wts = b.reshape("weights_per_output", &wts, &[-1, 1, 6]);
        let weights = self.cast_to_compute(&wts, "weights_to_compute");
        TapReads { rows, weights }
    }

    /// Gathers the 6 rows of every output, weights and sums them, adds the
    /// bias and puts the channels first.
    fn interpolate_taps(
        &mut self,
        table: &Value,
        r: &TapReads,
        bias: &Value,
        tc: &TapConv,
    ) -> Value {
        let (nb, j, c) = (tc.regions as i64, tc.outputs as i64, tc.channels as i64);
        let b = &mut self.b;
        let gathered = b.gather_nd("gather", table, &r.rows, 1);
        let gathered = b.reshape("six_rows", &gathered, &[-1, 6, c]);
        // Σ over 3 taps × 2 neighbours: [B·N·regions·J, 1, C].
        let y = b.matmul("interpolate_sum", &r.weights, &gathered);
        let y = b.reshape("outputs", &y, &[-1, nb, j, c]);
        let y = b.add("bias", &y, bias);
        let y = b.transpose("channels_first", &y, &[0, 1, 3, 2]);
        b.reshape("merge_regions", &y, &[-1, nb * c, j])
    }
}
