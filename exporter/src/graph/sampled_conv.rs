//! The first (linear) conv of a TBR branch applied to the TTN samples
//! without forming them.
//!
//! The samples are linear interpolations of the features F, so tap k of a
//! Conv1d (kernel 3, stride 2, padding 1) over the samples equals the same
//! interpolation of G_k = W_k ⊛ F: the tap table, computed once per video
//! and stage for the branch's convs by one `MatMul` per conv group
//! ([`Net::tap_table`]), just before the stage reads it. Per stage, output
//! j of a region sums, over k, G_k interpolated at the region's sample
//! 2j + k − 1 (the sentinel sample, i.e. zero, outside the region: the
//! conv's zero padding in sample space): one call of the model-local
//! function [`TAP_SUM`] reads the 3 taps × 2
//! neighbour rows of every output, weights and sums them (its standard-op
//! body: a `GatherND` and a batched `MatMul` [.., 1, 6] @ [.., 6, C] per
//! chunk of outputs). The bias is in the table (tap 1), and the result
//! stays channels-last, which ONNX Runtime folds into the next conv's input
//! reorder.

use super::fold::{TapConv, TapTable};
use super::ttn::SamplePositions;
use super::Net;
use crate::builder::{FunctionId, GraphBuilder, Value};
use crate::onnx_proto::data_type;
use crate::Int8Parts;
use tcanet_models::onnx::{FUNCTION_DOMAIN, TAP_SUM, TAP_SUM_ROWS};

/// [`TAP_SUM_ROWS`] as a dimension of the graph's shapes.
const ROWS: i64 = TAP_SUM_ROWS as i64;

/// Where every output tap reads the tap table: row indices `[B, M·2, 1]`
/// (left and right neighbour; M = N·J·regions·3) and interpolation weights
/// `[B·N·J·regions, 1, 6]`.
struct TapReads {
    rows: Value,
    weights: Value,
}

impl Net<'_> {
    /// What every stage's tap tables ([`Net::tap_table`]) are computed
    /// from: `features` `[B, g, T+2, H/g]`. In float models the biases ride
    /// in the matmuls: the features get a last column of ones (here, once)
    /// and the weights a last row of biases (one pass over each table
    /// instead of a matmul and an `Add`); `--int8=all`, which quantizes the
    /// tables, keeps the `Add`, since quantizing a bias row with the
    /// weights would cost it precision.
    pub(super) fn tap_features(&mut self, features: &Value) -> Value {
        if self.quantized_tap_tables() {
            return features.clone();
        }
        let one = self.b.weight("ones_column/value", &[], &[1.0]);
        self.b.pad(
            "ones_column",
            features,
            &[0, 0, 0, 0, 0, 0, 0, 1],
            Some(&one),
        )
    }

    /// `[B, g, (T+2)·convs·3, C/g]`: row (t·convs + c)·3 + k of group gi
    /// holds channels gi·C/g.. of G_k[t] of conv c (+ its bias for k = 1),
    /// from `features` ([`Net::tap_features`]): one matmul per group. (The
    /// rows are read group by group: [`TAP_SUM`]'s kernel reads this layout
    /// as it is, its standard-op body moves whole C/g blocks first.)
    fn tap_table(&mut self, features: &Value, table: &TapTable) -> Value {
        let (g, c) = (table.groups as i64, table.channels as i64);
        // The biases: an `Add` after the quantized matmul, or a row of its
        // weights against the features' column of ones.
        // [B, g, T+2, convs·3·C/g] = [B, g, (T+2)·convs·3, C/g]
        let t = if self.quantized_tap_tables() {
            let bias = self.weight("tap_bias", &table.bias);
            let t = self.weight_matmul("taps", features, &table.weight, "weight");
            self.b.add("taps_bias", &t, &bias)
        } else {
            let weight = table.weight_with_bias_row();
            self.float_weight_matmul("taps", features, &weight, "weight")
        };
        self.b.reshape("group_rows", &t, &[0, g, -1, c / g])
    }

    /// Whether the tap tables' matmuls are quantized (`--int8=all`).
    fn quantized_tap_tables(&self) -> bool {
        self.int8.is_some_and(Int8Parts::tap_tables)
    }

    /// The conv `tc` on the samples at `pos`: its tap table from `features`
    /// ([`Net::tap_table`]), read at the samples, and the ReLU after it.
    /// Returns `[B·N, 1, J, regions·C]` (channels last), in scope `leaf`.
    pub(super) fn sampled_conv(
        &mut self,
        leaf: &str,
        features: &Value,
        pos: &SamplePositions,
        tc: &TapConv,
    ) -> Value {
        self.scoped(leaf, |n| {
            let table = n.tap_table(features, &tc.table);
            let reads = n.tap_reads(pos, tc);
            n.interpolate_taps(&table, &reads, tc)
        })
    }

    /// The table rows and weights of every output tap: one `MatMul` of the
    /// samples' left neighbours (fractions) by a constant selection matrix,
    /// plus each column's offset ([`super::fold::TapReadMaps`]).
    fn tap_reads(&mut self, pos: &SamplePositions, tc: &TapConv) -> TapReads {
        let m = &tc.reads;
        let b = &mut self.b;
        let select = b.const_f32("row_select", &m.row_select.dims, &m.row_select.data);
        let offset = b.const_f32("row_offset", &m.row_offset.dims, &m.row_offset.data);
        // [B, N, J·regions·6]: left and right neighbour rows of every tap.
        let rows = b.matmul("tap_rows", &pos.left, &select);
        let rows = b.add("neighbours", &rows, &offset);
        let rows = b.cast("row_index", &rows, data_type::INT64);
        // A NaN position (values that overflowed upstream) casts to
        // i64::MIN on x86-64: read row 0 instead, and let the NaN weights
        // below carry the NaN to the outputs, where the runtime reports it.
        let first_row = b.const_i64("first_row", &[], &[0]);
        let rows = b.op("Clip", "row_index_in_table", &[&rows, &first_row], vec![]);
        let rows = b.reshape("gather_index", &rows, &[0, -1, 1]);
        let select = b.const_f32(
            "weight_select",
            &m.weight_select.dims,
            &m.weight_select.data,
        );
        let offset = b.const_f32(
            "weight_offset",
            &m.weight_offset.dims,
            &m.weight_offset.data,
        );
        // (1 − frac, frac) of every tap: [B·N·J·regions, 1, 6].
        let wts = b.matmul("tap_weights", &pos.frac, &select);
        let wts = b.add("weights", &wts, &offset);
        let wts = b.reshape("weights_per_output", &wts, &[-1, 1, ROWS]);
        let weights = self.cast_to_compute(&wts, "weights_to_compute");
        TapReads { rows, weights }
    }

    /// Gathers the 6 rows of every output, weights and sums them, then the
    /// ReLU: `[B·N, 1, J, regions·C]`, as one call of the model-local
    /// function [`TAP_SUM`] (one overload per set of shapes), which the
    /// project's runtime runs with its own fused CPU kernel and any other
    /// runtime as the body below.
    fn interpolate_taps(&mut self, table: &Value, r: &TapReads, tc: &TapConv) -> Value {
        let (nb, j, c) = (tc.regions as i64, tc.outputs as i64, tc.channels as i64);
        let chunk = tc.outputs_per_gather.min(tc.outputs);
        let id = FunctionId {
            domain: FUNCTION_DOMAIN,
            name: TAP_SUM,
            overload: format!("c{c}_j{j}_regions{nb}_chunk{chunk}"),
        };
        let shape = self.b.const_i64("output_shape", &[4], &[-1, 1, j, nb * c]);
        let inputs = [
            ("table", table),
            ("rows", &r.rows),
            ("weights", &r.weights),
            ("shape", &shape),
        ];
        self.b.call_function(&id, "tap_sum", &inputs, |b, formal| {
            let [table, rows, weights, shape] = formal else {
                unreachable!("four formal inputs")
            };
            let y = tap_sum_body(b, table, rows, weights, tc);
            b.op("Reshape", "channels_last", &[&y, shape], vec![])
        })
    }
}

/// The standard-op body of [`TAP_SUM`]: the group-major table's C/g blocks
/// moved side by side (`[B, R, C]`; ONNX Runtime's common-subexpression
/// pass merges the stages' equal transposes), then `[B·N·J·regions, 1, C]`
/// after the ReLU (or `[B·N, J, regions·C]` when chunked). The outputs are
/// taken in chunks of `tc.outputs_per_gather` (gather, weighted sum, next
/// chunk), so that each chunk's gathered rows are still in cache when they
/// are summed; ONNX Runtime runs each chunk's pair back to back. (A ReLU per
/// chunk saved about 0.45 ms per video on hacs but raised the peak memory
/// by tens of MiB: ONNX Runtime keeps every chunk's sums and rectified sums
/// until the `Concat`; docs/BENCHMARKS.md.)
fn tap_sum_body(
    b: &mut GraphBuilder,
    table: &Value,
    rows: &Value,
    weights: &Value,
    tc: &TapConv,
) -> Value {
    let (nb, j, c) = (tc.regions as i64, tc.outputs as i64, tc.channels as i64);
    let table = b.transpose("groups_last", table, &[0, 2, 1, 3]);
    let table = &b.reshape("rows", &table, &[0, -1, c]);
    let sizes: Vec<i64> = (0..tc.outputs)
        .step_by(tc.outputs_per_gather)
        .map(|first| (tc.outputs - first).min(tc.outputs_per_gather) as i64)
        .collect();
    if sizes.len() == 1 {
        let gathered = b.gather_nd("gather", table, rows, 1);
        let gathered = b.reshape("six_rows", &gathered, &[-1, ROWS, c]);
        // Σ over 3 taps × 2 neighbours: [B·N·J·regions, 1, C].
        let y = b.matmul("interpolate_sum", weights, &gathered);
        return b.relu("relu", &y);
    }
    let rows = b.reshape("rows_by_output", rows, &[0, -1, j, nb * ROWS, 1]);
    let rows = b.split("rows_chunks", &rows, &sizes, 2);
    let wts = b.reshape("weights_by_output", weights, &[-1, j, nb, ROWS]);
    let wts = b.split("weights_chunks", &wts, &sizes, 1);
    let mut parts = Vec::with_capacity(sizes.len());
    for (i, ((rows, wts), jc)) in rows.iter().zip(&wts).zip(&sizes).enumerate() {
        let rows = b.reshape(&format!("gather_index_{i}"), rows, &[0, -1, 1]);
        let g = b.gather_nd(&format!("gather_{i}"), table, &rows, 1);
        let g = b.reshape(&format!("six_rows_{i}"), &g, &[-1, ROWS, c]);
        let w = b.reshape(&format!("weights_{i}"), wts, &[-1, 1, ROWS]);
        let y = b.matmul(&format!("interpolate_sum_{i}"), &w, &g);
        parts.push(b.reshape(&format!("part_{i}"), &y, &[-1, *jc, nb * c]));
    }
    let refs: Vec<&Value> = parts.iter().collect();
    let y = b.concat("outputs", &refs, 1);
    b.relu("relu", &y)
}
