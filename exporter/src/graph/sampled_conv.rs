//! The first (linear) conv of a TBR branch applied to the TTN samples
//! without forming them.
//!
//! The samples are linear interpolations of the features F, so tap k of a
//! Conv1d (kernel 3, stride 2, padding 1) over the samples equals the same
//! interpolation of G_k = W_k ⊛ F: the tap table, computed once per video
//! for every stage's conv of the branch by one `MatMul` per conv group
//! ([`Net::tap_table`]). Per stage, output j of a region sums, over k, G_k
//! interpolated at the region's sample 2j + k − 1 (the sentinel sample,
//! i.e. zero, outside the region: the conv's zero padding in sample space):
//! one `GatherND` fetches the 3 taps × 2 neighbour rows of every output and
//! one batched `MatMul` [.., 1, 6] @ [.., 6, C] weights and sums them. The
//! bias is in the table (tap 1), and the result stays channels-last, which
//! ONNX Runtime folds into the next conv's input reorder.
use super::fold::{TapConv, TapTable};
use super::ttn::SamplePositions;
use super::Net;
use crate::builder::Value;
use crate::onnx_proto::data_type;

/// Where every output tap reads the tap table: row indices `[B, M·2, 1]`
/// (left and right neighbour; M = N·J·regions·3) and interpolation weights
/// `[B·N·J·regions, 1, 6]`.
struct TapReads {
    rows: Value,
    weights: Value,
}

impl Net<'_> {
    /// `[B, (T+2)·convs·3, C]`: row (t·convs + c)·3 + k holds G_k[t] of conv
    /// c (+ its bias for k = 1), from `features` `[B, g, T+2, H/g]`: one
    /// matmul per group, then whole C/g blocks moved (a cheap transpose).
    /// In scope `leaf`.
    pub(super) fn tap_table(&mut self, leaf: &str, features: &Value, table: &TapTable) -> Value {
        let bias = self.weight(&format!("{leaf}.tap_bias"), &table.bias);
        let (g, c) = (table.groups as i64, table.channels as i64);
        self.scoped(leaf, |n| {
            // [B, g, T+2, convs·3·C/g] = [B, g, (T+2)·convs·3, C/g]
            let t = n.weight_matmul("taps", features, &table.weight, "weight");
            let b = &mut n.b;
            let t = b.add("bias", &t, &bias);
            let t = b.reshape("group_rows", &t, &[0, g, -1, c / g]);
            let t = b.transpose("groups_last", &t, &[0, 2, 1, 3]);
            b.reshape("rows", &t, &[0, -1, c])
        })
    }

    /// The conv `tc` on the samples at `pos`, read from `table`
    /// ([`Net::tap_table`]). Returns `[B·N, 1, J, regions·C]` (channels
    /// last, before the ReLU), in scope `leaf`.
    pub(super) fn sampled_conv(
        &mut self,
        leaf: &str,
        table: &Value,
        pos: &SamplePositions,
        tc: &TapConv,
    ) -> Value {
        self.scoped(leaf, |n| {
            let reads = n.tap_reads(pos, tc);
            n.interpolate_taps(table, &reads, tc)
        })
    }

    /// The table rows and weights of every output tap, from the sample
    /// positions and the constant sample table.
    fn tap_reads(&mut self, pos: &SamplePositions, tc: &TapConv) -> TapReads {
        let (nb, j) = (tc.regions, tc.outputs);
        // Rows between one time step and the next in the tap table.
        let step = tc.rows_per_step as f32;
        let b = &mut self.b;
        let sample = b.const_i64("sample_index", &[j, nb, 3], &tc.sample_index);
        // [B, N, J, regions, 3] per tap: left neighbour and its weight.
        let tl = b.gather("tap_left", &pos.left, &sample, 2);
        let tf = b.gather("tap_frac", &pos.frac, &sample, 2);
        let stride = b.const_f32("row_stride", &[], &[step]);
        let offset = b.const_f32("row_offset", &[nb, 3], &tc.row_offset);
        let tl = b.mul("time_rows", &tl, &stride);
        let tl = b.add("tap_rows", &tl, &offset);
        let tl = b.reshape("rows_per_tap", &tl, &[0, -1, 1]);
        // Left and right neighbour rows [B, M, 2] (right = one time step on).
        let nbr = b.const_f32("neighbour_rows", &[2], &[0.0, step]);
        let rows = b.add("neighbours", &tl, &nbr);
        let rows = b.cast("row_index", &rows, data_type::INT64);
        let rows = b.reshape("gather_index", &rows, &[0, -1, 1]);
        // Weights (1 − frac, frac) = frac·(−1, 1) + (1, 0), [B·N·J·regions, 1, 6].
        let tf = b.reshape("frac_per_tap", &tf, &[0, -1, 1]);
        let sign = b.const_f32("minus_plus_one", &[2], &[-1.0, 1.0]);
        let base = b.const_f32("one_zero", &[2], &[1.0, 0.0]);
        let tf = b.mul("signed_frac", &tf, &sign);
        let wts = b.add("weights", &tf, &base);
        let wts = b.reshape("weights_per_output", &wts, &[-1, 1, 6]);
        let weights = self.cast_to_compute(&wts, "weights_to_compute");
        TapReads { rows, weights }
    }

    /// Gathers the 6 rows of every output, weights and sums them:
    /// `[B·N, 1, J, regions·C]`. The outputs are taken in chunks of
    /// `tc.outputs_per_gather` (gather, weighted sum, next chunk), so that
    /// each chunk's gathered rows are still in cache when they are summed;
    /// ONNX Runtime runs each chunk's pair back to back.
    fn interpolate_taps(&mut self, table: &Value, r: &TapReads, tc: &TapConv) -> Value {
        let (nb, j, c) = (tc.regions as i64, tc.outputs as i64, tc.channels as i64);
        let sizes: Vec<i64> = (0..tc.outputs)
            .step_by(tc.outputs_per_gather)
            .map(|first| (tc.outputs - first).min(tc.outputs_per_gather) as i64)
            .collect();
        let b = &mut self.b;
        if sizes.len() == 1 {
            let gathered = b.gather_nd("gather", table, &r.rows, 1);
            let gathered = b.reshape("six_rows", &gathered, &[-1, 6, c]);
            // Σ over 3 taps × 2 neighbours: [B·N·J·regions, 1, C].
            let y = b.matmul("interpolate_sum", &r.weights, &gathered);
            return b.reshape("channels_last", &y, &[-1, 1, j, nb * c]);
        }
        let rows = b.reshape("rows_by_output", &r.rows, &[0, -1, j, nb * 6, 1]);
        let rows = b.split("rows_chunks", &rows, &sizes, 2);
        let wts = b.reshape("weights_by_output", &r.weights, &[-1, j, nb, 6]);
        let wts = b.split("weights_chunks", &wts, &sizes, 1);
        let mut parts = Vec::with_capacity(sizes.len());
        for (i, ((rows, wts), jc)) in rows.iter().zip(&wts).zip(&sizes).enumerate() {
            let rows = b.reshape(&format!("gather_index_{i}"), rows, &[0, -1, 1]);
            let g = b.gather_nd(&format!("gather_{i}"), table, &rows, 1);
            let g = b.reshape(&format!("six_rows_{i}"), &g, &[-1, 6, c]);
            let w = b.reshape(&format!("weights_{i}"), wts, &[-1, 1, 6]);
            let y = b.matmul(&format!("interpolate_sum_{i}"), &w, &g);
            parts.push(b.reshape(&format!("part_{i}"), &y, &[-1, *jc, nb * c]));
        }
        let refs: Vec<&Value> = parts.iter().collect();
        let y = b.concat("outputs", &refs, 1);
        b.reshape("channels_last", &y, &[-1, 1, j, nb * c])
    }
}
