//! The TCANet inference graph (TCANET.md, "Forward pass" and "TBR decoding"
//! with the inference decode scale) written with [`GraphBuilder`].
//!
//! Layout: the base encoder runs on `[B, C, T]`, the LGTE layers on
//! `[B, T, H]`; the local heads attend over their gathered w-key window only.
//! TTN sampling turns each proposal into 128 fractional indices with two
//! constant matrices (region bounds, then sample positions); the samples are
//! never formed: the first conv of each TBR branch is linear, so its taps are
//! applied to the (zero-padded) encoded features once per video and the
//! results interpolated at the sample positions (`Net::sampled_conv`). The
//! rest of the TBR heads run as grouped Conv1d on `[B·N, C, J]` (the start
//! and end branches fused into one grouped conv stack, weights stacked along
//! the output channels, twice the groups) and batched MatMuls. Decoding stays
//! in float32 in both precisions. Constants are folded at export time: the
//! query scaling into the in-projection, the decode factors (0.1, 0.2, g)
//! into the last convs, the local window, the sampling matrices.
use tcanet_models::checkpoint::Checkpoint;
use tcanet_models::onnx::{
    Precision, INPUT_FEATURES, INPUT_PROPOSALS, IOU_OUTPUTS, PROPOSAL_OUTPUTS,
};
use tcanet_models::params::{lgte_prefix, tbr_prefix};
use tcanet_models::window::{window_offsets, window_table};
use tcanet_models::{ModelConfig, NUM_STAGES};

use crate::builder::{Attr, Dim, GraphBuilder, Value};
use crate::onnx_proto::{data_type, GraphProto};

/// Builds the graph for a checked checkpoint.
///
/// With `dynamic_time` the input's T is symbolic: the local window (key
/// indices and duplicate mask) and the sampling positions are computed in
/// the graph from the input length (the timeline spans `T * temporal_interval` seconds, or the whole video
/// with `normalize_by_duration`).
pub fn build_graph(ckpt: &Checkpoint, precision: Precision, dynamic_time: bool) -> GraphProto {
    let mut g = Net {
        b: GraphBuilder::new(),
        ckpt,
        cfg: &ckpt.config,
        precision,
        dynamic_time,
        time: None,
    };
    g.build();
    g.b.finish("tcanet")
}

/// Graph values that describe a symbolic T.
#[derive(Clone)]
struct TimeValues {
    /// T as int64, shape [1].
    steps_i64: Value,
    /// T as float32, shape [1].
    steps: Value,
    /// D = T · temporal_interval as float32, shape [1] (seconds configs only).
    timeline: Option<Value>,
}

struct Net<'a> {
    dynamic_time: bool,
    time: Option<TimeValues>,
    b: GraphBuilder,
    ckpt: &'a Checkpoint,
    cfg: &'a ModelConfig,
    precision: Precision,
}

/// The keys of the local heads: for query j, the w positions
/// clamp(j − w/2 + m, 0, T−1) (`index`, int64 `[T, w]`) and an additive mask
/// (`[T, w]`) that is −inf where a clamped position repeats the one before, so
/// that each allowed key counts once, as with the release's boolean mask.
struct LocalWindow {
    index: Value,
    mask: Value,
}

/// [`LocalWindow`] for a fixed T: (indices, mask), row-major `[t, w]`.
fn local_window(t: usize, w: usize) -> (Vec<i64>, Vec<f32>) {
    let table = window_table(t, w);
    let mask = table
        .repeated
        .iter()
        .map(|&r| if r { f32::NEG_INFINITY } else { 0.0 })
        .collect();
    (table.index, mask)
}

/// Row-major transpose of a `[rows, cols]` matrix.
fn transpose(m: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut t = vec![0.0; m.len()];
    for r in 0..rows {
        for c in 0..cols {
            t[c * rows + r] = m[r * cols + c];
        }
    }
    t
}

impl Net<'_> {
    /// A weight-like constant in the model's precision.
    fn weight(&mut self, leaf: &str, dims: &[usize], data: &[f32]) -> Value {
        match self.precision {
            Precision::Fp32 => self.b.const_f32(leaf, dims, data),
            Precision::Fp16 => self.b.const_f16(leaf, dims, data),
        }
    }

    /// The parameter `name` of the checkpoint as a weight constant.
    fn param(&mut self, name: &str, leaf: &str, dims: &[usize]) -> Value {
        let data = self.ckpt.get(name).to_vec();
        self.weight(leaf, dims, &data)
    }

    /// Casts a compute-precision value to float32 (a no-op in fp32).
    fn cast_to_f32(&mut self, v: Value, leaf: &str) -> Value {
        match self.precision {
            Precision::Fp32 => v,
            Precision::Fp16 => self.b.op(
                "Cast",
                leaf,
                &[&v],
                vec![Attr::int("to", data_type::FLOAT as i64)],
            ),
        }
    }

    /// Casts a float32 value to the compute precision (a no-op in fp32).
    fn cast_to_compute(&mut self, v: Value, leaf: &str) -> Value {
        match self.precision {
            Precision::Fp32 => v,
            Precision::Fp16 => self.b.op(
                "Cast",
                leaf,
                &[&v],
                vec![Attr::int("to", data_type::FLOAT16 as i64)],
            ),
        }
    }

    /// Conv1d with the given weights (already in ONNX layout `[O, I/g, K]`),
    /// written as a Conv2d of height 1 between `Unsqueeze` and `Squeeze`:
    /// ONNX Runtime's CPU provider then runs it with its blocked (NCHWc)
    /// kernels, which it does not use for 1-D convolutions.
    #[allow(clippy::too_many_arguments)]
    fn conv(
        &mut self,
        leaf: &str,
        x: &Value,
        w: (&[usize], Vec<f32>),
        bias: Vec<f32>,
        group: usize,
        pad: usize,
        stride: usize,
    ) -> Value {
        let (dims, wdata) = w;
        let dims2 = [dims[0], dims[1], 1, dims[2]];
        let wv = self.weight(&format!("{leaf}.weight"), &dims2, &wdata);
        let bv = self.weight(&format!("{leaf}.bias"), &[dims[0]], &bias);
        let axis = self.b.const_i64(&format!("{leaf}/height_axis"), &[1], &[2]);
        let x = self
            .b
            .op("Unsqueeze", &format!("{leaf}/as_2d"), &[x, &axis], vec![]);
        let y = self.b.op(
            "Conv",
            leaf,
            &[&x, &wv, &bv],
            vec![
                Attr::ints("kernel_shape", &[1, dims[2] as i64]),
                Attr::ints("pads", &[0, pad as i64, 0, pad as i64]),
                Attr::ints("strides", &[1, stride as i64]),
                Attr::int("group", group as i64),
            ],
        );
        self.b
            .op("Squeeze", &format!("{leaf}/as_1d"), &[&y, &axis], vec![])
    }

    /// Conv1d of checkpoint parameter prefix `p` (shape from the checkpoint).
    fn conv_param(
        &mut self,
        leaf: &str,
        x: &Value,
        p: &str,
        group: usize,
        pad: usize,
        stride: usize,
    ) -> Value {
        let dims = self.shape_of(&format!("{p}.weight"));
        let w = self.ckpt.get(&format!("{p}.weight")).to_vec();
        let bias = self.ckpt.get(&format!("{p}.bias")).to_vec();
        self.conv(leaf, x, (&dims, w), bias, group, pad, stride)
    }

    /// A grouped Conv1d whose kernel spans the whole input `[M, H_in, K]`
    /// (no padding, one output step) as one batched `MatMul` over the groups:
    /// `[g, M, H_in/g·K] @ [g, H_in/g·K, H_out/g]`, giving `[M, H_out]`. ONNX
    /// Runtime runs a `Conv` of this shape as M·g matrix–vector products that
    /// each read the whole weight again; the `MatMul` reads it once.
    fn grouped_full_conv(&mut self, leaf: &str, x: &Value, p: &str) -> Value {
        let g = self.cfg.conv_groups;
        let dims = self.shape_of(&format!("{p}.weight"));
        let (out, inp_g, k) = (dims[0], dims[1], dims[2]);
        let out_g = out / g;
        let w = self.ckpt.get(&format!("{p}.weight"));
        // [g, inp_g·k, out_g]: w_t[gi][i·k + t][o] = w[gi·out_g + o][i][t].
        let mut wt = vec![0.0f32; g * inp_g * k * out_g];
        for gi in 0..g {
            for o in 0..out_g {
                for r in 0..inp_g * k {
                    wt[(gi * inp_g * k + r) * out_g + o] = w[(gi * out_g + o) * inp_g * k + r];
                }
            }
        }
        let bias = self.ckpt.get(&format!("{p}.bias")).to_vec();
        let wv = self.weight(&format!("{leaf}.weight_t"), &[g, inp_g * k, out_g], &wt);
        let bv = self.weight(&format!("{leaf}.bias"), &[out], &bias);
        let b = &mut self.b;
        let per_group = b.const_i64(
            &format!("{leaf}/per_group_shape"),
            &[3],
            &[-1, g as i64, (inp_g * k) as i64],
        );
        let x = b.op(
            "Reshape",
            &format!("{leaf}/per_group"),
            &[x, &per_group],
            vec![],
        );
        let swap = || vec![Attr::ints("perm", &[1, 0, 2])];
        let x = b.op("Transpose", &format!("{leaf}/groups_first"), &[&x], swap());
        let y = b.op("MatMul", &format!("{leaf}/matmul"), &[&x, &wv], vec![]);
        let y = b.op("Transpose", &format!("{leaf}/groups_last"), &[&y], swap());
        let flat = b.const_i64(&format!("{leaf}/merged_shape"), &[2], &[-1, out as i64]);
        let y = b.op(
            "Reshape",
            &format!("{leaf}/merge_groups"),
            &[&y, &flat],
            vec![],
        );
        b.op("Add", &format!("{leaf}/bias"), &[&y, &bv], vec![])
    }

    fn shape_of(&self, name: &str) -> Vec<usize> {
        tcanet_models::param_specs(self.cfg)
            .into_iter()
            .find(|s| s.name == name)
            .map(|s| s.shape)
            .unwrap_or_else(|| panic!("{name} is a parameter"))
    }

    fn relu(&mut self, leaf: &str, x: &Value) -> Value {
        self.b.op("Relu", leaf, &[x], vec![])
    }

    /// `x @ W^T + b` for a torch Linear `W [out, in]`.
    fn linear(
        &mut self,
        leaf: &str,
        x: &Value,
        w: &[f32],
        bias: &[f32],
        out: usize,
        inp: usize,
    ) -> Value {
        let wt = transpose(w, out, inp);
        let wv = self.weight(&format!("{leaf}.weight_t"), &[inp, out], &wt);
        let bv = self.weight(&format!("{leaf}.bias"), &[out], bias);
        let m = self
            .b
            .op("MatMul", &format!("{leaf}/matmul"), &[x, &wv], vec![]);
        self.b
            .op("Add", &format!("{leaf}/bias"), &[&m, &bv], vec![])
    }

    fn build(&mut self) {
        let cfg = self.cfg;
        let f32t = data_type::FLOAT;
        let feats_in = self.b.input(
            INPUT_FEATURES,
            f32t,
            &[
                Dim::Sym("B"),
                Dim::Fixed(cfg.feat_dim as i64),
                if self.dynamic_time {
                    Dim::Sym("T")
                } else {
                    Dim::Fixed(cfg.temporal_scale as i64)
                },
            ],
        );
        let props_in = self.b.input(
            INPUT_PROPOSALS,
            f32t,
            &[Dim::Sym("B"), Dim::Sym("N"), Dim::Fixed(2)],
        );

        if self.dynamic_time {
            let time = self.scoped("shapes", |n| n.time_values(&feats_in));
            self.time = Some(time);
        }
        let x = self.scoped("input", |n| {
            n.cast_to_compute(feats_in.clone(), "cast_features")
        });
        let x = self.scoped("x_1d_b_f", |n| {
            let g = n.cfg.conv_groups;
            let x = n.conv_param("0", &x, "x_1d_b_f.0", g, 1, 1);
            let x = n.relu("1", &x);
            let x = n.conv_param("2", &x, "x_1d_b_f.2", g, 1, 1);
            let x = n.relu("3", &x);
            n.b.op(
                "Transpose",
                "to_time_major",
                &[&x],
                vec![Attr::ints("perm", &[0, 2, 1])],
            )
        });
        // The local heads' key window (indices and duplicate mask), shared
        // by every LGTE layer.
        let window = if self.dynamic_time {
            let t = self.time.as_ref().expect("set above").steps_i64.clone();
            self.scoped("lgtes", |n| n.dynamic_window(&t))
        } else {
            let (t, w) = (cfg.temporal_scale, cfg.window_size);
            let (index, mask) = local_window(t, w);
            self.scoped("lgtes", |n| LocalWindow {
                index: n.b.const_i64("local_window_index", &[t, w], &index),
                mask: n.weight("local_window_mask", &[t, w], &mask),
            })
        };
        let mut x = x;
        for i in 0..cfg.lgte_num {
            x = self.scoped(&lgte_prefix(i), |n| n.lgte(i, &x, &window));
        }
        // [B, g, T+2, H/g]: the features per conv group, time-major, with one
        // zero step before and after the timeline (what the TBR heads' first
        // convs read).
        let padded = self.scoped("ttn", |n| {
            let g = n.cfg.conv_groups as i64;
            let per_group = n.b.const_i64("per_group_shape", &[4], &[0, 0, g, -1]);
            let x = n.b.op("Reshape", "per_group", &[&x, &per_group], vec![]);
            let x = n.b.op(
                "Transpose",
                "groups_first",
                &[&x],
                vec![Attr::ints("perm", &[0, 2, 1, 3])],
            );
            let pads = n.b.const_i64("pads", &[8], &[0, 0, 1, 0, 0, 0, 1, 0]);
            n.b.op("Pad", "zero_pad_time", &[&x, &pads], vec![])
        });
        let (shape_bn2, shape_bn3) = self.scoped("shapes", |n| {
            let bn2 = n.b.op("Shape", "b_n_2", &[&props_in], vec![]);
            let bn =
                n.b.op("Shape", "b_n", &[&props_in], vec![Attr::int("end", 2)]);
            let three = n.b.const_i64("three", &[1], &[3]);
            let bn3 = n.b.op(
                "Concat",
                "b_n_3",
                &[&bn, &three],
                vec![Attr::int("axis", 0)],
            );
            (bn2, bn3)
        });
        let mut props = props_in;
        for k in 1..=NUM_STAGES {
            let (next, iou) = self.scoped(&tbr_prefix(k), |n| {
                n.tbr(k, &props, &padded, &shape_bn2, &shape_bn3)
            });
            let dims = [Dim::Sym("B"), Dim::Sym("N"), Dim::Fixed(2)];
            self.b.output(&next, PROPOSAL_OUTPUTS[k - 1], f32t, &dims);
            self.b.output(
                &iou,
                IOU_OUTPUTS[k - 1],
                f32t,
                &[Dim::Sym("B"), Dim::Sym("N")],
            );
            props = Value(PROPOSAL_OUTPUTS[k - 1].to_string());
        }
    }

    /// T (and D for seconds configs) from the features' shape.
    fn time_values(&mut self, features: &Value) -> TimeValues {
        let b = &mut self.b;
        let t = b.op(
            "Shape",
            "time_steps",
            &[features],
            vec![Attr::int("start", 2), Attr::int("end", 3)],
        );
        let steps = b.op(
            "Cast",
            "time_steps_f32",
            &[&t],
            vec![Attr::int("to", data_type::FLOAT as i64)],
        );
        let timeline = (!self.cfg.normalize_by_duration).then(|| {
            let interval = b.const_f32(
                "temporal_interval",
                &[],
                &[self.cfg.temporal_interval as f32],
            );
            b.op("Mul", "timeline_seconds", &[&steps, &interval], vec![])
        });
        TimeValues {
            steps_i64: t,
            steps,
            timeline,
        }
    }

    /// [`local_window`] built in the graph for a symbolic T: index
    /// clamp(j − w/2 + m, 0, T−1), and −inf where it equals the index before.
    fn dynamic_window(&mut self, t: &Value) -> LocalWindow {
        let w = self.cfg.window_size;
        let b = &mut self.b;
        let axis0 = b.const_i64("axis_0", &[1], &[0]);
        let axis1 = b.const_i64("axis_1", &[1], &[1]);
        let t = b.op("Squeeze", "time_steps_scalar", &[t, &axis0], vec![]);
        let zero = b.const_i64("zero", &[], &[0]);
        let one = b.const_i64("one", &[], &[1]);
        let steps = b.op("Range", "positions", &[&zero, &t, &one], vec![]);
        let query = b.op("Unsqueeze", "query_positions", &[&steps, &axis1], vec![]);
        let offsets = b.const_i64("window_offsets", &[w], &window_offsets(w));
        let raw = b.op("Add", "window_positions", &[&query, &offsets], vec![]);
        let last = b.op("Sub", "last_position", &[&t, &one], vec![]);
        let index = b.op("Max", "clamp_below", &[&raw, &zero], vec![]);
        let index = b.op("Min", "local_window_index", &[&index, &last], vec![]);
        // Duplicates (clamped at an edge) are consecutive in the window.
        let begin = b.const_i64("from_second", &[1], &[1]);
        let end = b.const_i64("to_end", &[1], &[w as i64]);
        let before_end = b.const_i64("to_last", &[1], &[w as i64 - 1]);
        let later = b.op(
            "Slice",
            "later_keys",
            &[&index, &begin, &end, &axis1],
            vec![],
        );
        let start = b.const_i64("from_first", &[1], &[0]);
        let earlier = b.op(
            "Slice",
            "earlier_keys",
            &[&index, &start, &before_end, &axis1],
            vec![],
        );
        let repeat = b.op("Equal", "repeated_key", &[&later, &earlier], vec![]);
        let first = b.const_bool("first_key", &[1, 1], &[false]);
        let shape = b.op("Shape", "query_count", &[&query], vec![]);
        let first = b.op("Expand", "first_keys", &[&first, &shape], vec![]);
        let repeat = b.op(
            "Concat",
            "duplicate_key",
            &[&first, &repeat],
            vec![Attr::int("axis", 1)],
        );
        let zero_f = self.weight("zero_score", &[], &[0.0]);
        let minus_inf = self.weight("minus_inf", &[], &[f32::NEG_INFINITY]);
        let mask = self.b.op(
            "Where",
            "local_window_mask",
            &[&repeat, &minus_inf, &zero_f],
            vec![],
        );
        LocalWindow { index, mask }
    }

    fn scoped<R>(&mut self, name: &str, f: impl FnOnce(&mut Self) -> R) -> R {
        let mut b = std::mem::take(&mut self.b);
        let mut out = None;
        b.scoped(name, |b| {
            self.b = std::mem::take(b);
            out = Some(f(self));
            *b = std::mem::take(&mut self.b);
        });
        self.b = b;
        out.expect("scope ran")
    }

    /// One post-norm LGTE layer on `[B, T, H]`.
    fn lgte(&mut self, i: usize, x: &Value, window: &LocalWindow) -> Value {
        let cfg = self.cfg;
        let (h, heads, hd) = (cfg.hidden_dim, cfg.heads, cfg.head_dim());
        let half = heads / 2;
        let p = format!("{}.self_atten.scale_attention", lgte_prefix(i));
        let attn = self.scoped("attention", |n| {
            // Packed in-projection with the query scaling folded in.
            let mut w = n.ckpt.get(&format!("{p}.in_proj_weight")).to_vec();
            let mut bias = n.ckpt.get(&format!("{p}.in_proj_bias")).to_vec();
            let scale = (hd as f64).powf(-0.5) as f32;
            w[..h * h].iter_mut().for_each(|v| *v *= scale);
            bias[..h].iter_mut().for_each(|v| *v *= scale);
            let qkv = n.linear("in_proj", x, &w, &bias, 3 * h, h);
            let shape =
                n.b.const_i64("qkv_shape", &[6], &[0, 0, 3, 2, half as i64, hd as i64]);
            let qkv = n.b.op("Reshape", "split_heads", &[&qkv, &shape], vec![]);
            // [3·2, B, heads/2, T, hd]: (q, k, v) × (local, global).
            let qkv = n.b.op(
                "Transpose",
                "heads_first",
                &[&qkv],
                vec![Attr::ints("perm", &[2, 3, 0, 4, 1, 5])],
            );
            let split = n.b.const_i64("qkv_split", &[3], &[1, 1, 1]);
            let qkv = n.b.op_multi(
                "Split",
                "q_k_v",
                &[&qkv, &split],
                3,
                vec![Attr::int("axis", 0)],
            );
            let halves = n.b.const_i64("local_global_split", &[2], &[1, 1]);
            let mut parts = Vec::new();
            for (t, name) in qkv.iter().zip(["q", "k", "v"]) {
                parts.push(n.b.op_multi(
                    "Split",
                    &format!("{name}_local_global"),
                    &[t, &halves],
                    2,
                    vec![Attr::int("axis", 1)],
                ));
            }
            // Global heads: full attention, no mask. [1, 1, B, heads/2, T, hd]
            let kt = n.b.op(
                "Transpose",
                "global/k_transposed",
                &[&parts[1][1]],
                vec![Attr::ints("perm", &[0, 1, 2, 3, 5, 4])],
            );
            let scores =
                n.b.op("MatMul", "global/scores", &[&parts[0][1], &kt], vec![]);
            let probs = n.b.op(
                "Softmax",
                "global/softmax",
                &[&scores],
                vec![Attr::int("axis", -1)],
            );
            let ctx_global =
                n.b.op("MatMul", "global/context", &[&probs, &parts[2][1]], vec![]);
            // Local heads: the w window keys of each query, gathered:
            // [1, 1, B, heads/2, T, w, hd].
            let axis_t = || vec![Attr::int("axis", 4)];
            let kw = n.b.op(
                "Gather",
                "local/window_keys",
                &[&parts[1][0], &window.index],
                axis_t(),
            );
            let vw = n.b.op(
                "Gather",
                "local/window_values",
                &[&parts[2][0], &window.index],
                axis_t(),
            );
            let axis5 = n.b.const_i64("local/query_axis", &[1], &[5]);
            let q = n.b.op(
                "Unsqueeze",
                "local/query_row",
                &[&parts[0][0], &axis5],
                vec![],
            );
            let qk = n.b.op("Mul", "local/query_key", &[&q, &kw], vec![]);
            let last = n.b.const_i64("local/head_dim_axis", &[1], &[-1]);
            let scores = n.b.op(
                "ReduceSum",
                "local/scores",
                &[&qk, &last],
                vec![Attr::int("keepdims", 0)],
            );
            let scores = n.b.op(
                "Add",
                "local/masked_scores",
                &[&scores, &window.mask],
                vec![],
            );
            let probs = n.b.op(
                "Softmax",
                "local/softmax",
                &[&scores],
                vec![Attr::int("axis", -1)],
            );
            let probs =
                n.b.op("Unsqueeze", "local/probs_row", &[&probs, &axis5], vec![]);
            let ctx_local = n.b.op("MatMul", "local/context", &[&probs, &vw], vec![]);
            let ctx_local = n.b.op(
                "Squeeze",
                "local/context_rows",
                &[&ctx_local, &axis5],
                vec![],
            );
            let ctx = n.b.op(
                "Concat",
                "local_global",
                &[&ctx_local, &ctx_global],
                vec![Attr::int("axis", 1)],
            );
            // [1, 2, B, heads/2, T, hd] → [B, T, 1, 2, heads/2, hd] → [B, T, H]
            let ctx = n.b.op(
                "Transpose",
                "time_first",
                &[&ctx],
                vec![Attr::ints("perm", &[2, 4, 0, 1, 3, 5])],
            );
            let merged = n.b.const_i64("merged_shape", &[3], &[0, 0, h as i64]);
            let ctx = n.b.op("Reshape", "merge_heads", &[&ctx, &merged], vec![]);
            let wo = n.ckpt.get(&format!("{p}.out_proj.weight")).to_vec();
            let bo = n.ckpt.get(&format!("{p}.out_proj.bias")).to_vec();
            n.linear("out_proj", &ctx, &wo, &bo, h, h)
        });
        let lp = lgte_prefix(i);
        let x1 = self.b.op("Add", "residual1", &[x, &attn], vec![]);
        let x1 = self.layer_norm("norm1", &x1, &format!("{lp}.norm1"));
        let ffn = self.scoped("ffn", |n| {
            let f = n.cfg.ffn_dim;
            let w1 = n.ckpt.get(&format!("{lp}.linear1.weight")).to_vec();
            let b1 = n.ckpt.get(&format!("{lp}.linear1.bias")).to_vec();
            let y = n.linear("linear1", &x1, &w1, &b1, f, h);
            let y = n.relu("relu", &y);
            let w2 = n.ckpt.get(&format!("{lp}.linear2.weight")).to_vec();
            let b2 = n.ckpt.get(&format!("{lp}.linear2.bias")).to_vec();
            n.linear("linear2", &y, &w2, &b2, h, f)
        });
        let x2 = self.b.op("Add", "residual2", &[&x1, &ffn], vec![]);
        self.layer_norm("norm2", &x2, &format!("{lp}.norm2"))
    }

    fn layer_norm(&mut self, leaf: &str, x: &Value, p: &str) -> Value {
        let h = self.cfg.hidden_dim;
        let w = self.param(&format!("{p}.weight"), &format!("{leaf}.weight"), &[h]);
        let bias = self.param(&format!("{p}.bias"), &format!("{leaf}.bias"), &[h]);
        self.b.op(
            "LayerNormalization",
            leaf,
            &[x, &w, &bias],
            vec![Attr::int("axis", -1), Attr::float("epsilon", 1e-5)],
        )
    }

    /// One TBR stage: TTN sampling, SE and XW heads, decoding.
    /// Returns (refined proposals `[B, N, 2]`, IoU estimate `[B, N]`), float32.
    fn tbr(
        &mut self,
        k: usize,
        props: &Value,
        padded: &Value,
        shape_bn2: &Value,
        shape_bn3: &Value,
    ) -> (Value, Value) {
        let cfg = self.cfg;
        let p = tbr_prefix(k);
        let (h, g) = (cfg.hidden_dim, cfg.conv_groups);
        let (ns, na) = (cfg.start_sample_num, cfg.action_sample_num);
        let s_total = cfg.total_sample_num();
        let (left, frac) = self.scoped("ttn", |n| n.ttn(props));
        let se = self.scoped("reg1se", |n| {
            // [B·N, 2·se, ns/2]: start channels then end channels.
            let x = n.sampled_conv(
                "start_end_conv.0",
                padded,
                (&left, &frac),
                &[(0, ns), (ns + na, s_total - ns - na)],
                &[
                    format!("{p}.reg1se.start_reg_conv.0"),
                    format!("{p}.reg1se.end_reg_conv.0"),
                ],
            );
            let fused = |n: &Net, layer: usize, scale: f32| -> (Vec<usize>, Vec<f32>, Vec<f32>) {
                let mut w = Vec::new();
                let mut bias = Vec::new();
                let mut dims = Vec::new();
                for side in ["start_reg_conv", "end_reg_conv"] {
                    let q = format!("{p}.reg1se.{side}.{layer}");
                    dims = n.shape_of(&format!("{q}.weight"));
                    w.extend(n.ckpt.get(&format!("{q}.weight")).iter().map(|v| v * scale));
                    bias.extend(n.ckpt.get(&format!("{q}.bias")).iter().map(|v| v * scale));
                }
                dims[0] *= 2;
                (dims, w, bias)
            };
            let x = n.relu("start_end_conv.1", &x);
            let (d2, w2, b2) = fused(n, 2, 1.0);
            let x = n.conv("start_end_conv.2", &x, (&d2, w2), b2, 2 * g, 1, 2);
            let x = n.relu("start_end_conv.3", &x);
            // The inference decode scale g folded into the last conv.
            let (d4, w4, b4) = fused(n, 4, cfg.se_decode_scale_infer as f32);
            let x = n.conv("start_end_conv.4", &x, (&d4, w4), b4, 2, 0, 1);
            let x = n.b.op("Reshape", "ds_de", &[&x, shape_bn2], vec![]);
            n.cast_to_f32(x, "ds_de_f32")
        });
        let xw = self.scoped("reg1xw", |n| {
            let q = format!("{p}.reg1xw");
            let x = n.sampled_conv(
                "reg_1d_b.0",
                padded,
                (&left, &frac),
                &[(0, s_total)],
                &[format!("{q}.reg_1d_b.0")],
            );
            let x = n.relu("reg_1d_b.1", &x);
            let x = n.conv_param("reg_1d_b.2", &x, &format!("{q}.reg_1d_b.2"), g, 1, 2);
            let x = n.relu("reg_1d_b.3", &x);
            let x = n.grouped_full_conv("reg_1d_o.0", &x, &format!("{q}.reg_1d_o.0"));
            let x = n.relu("reg_1d_o.1", &x);
            // Rows (dx, dw, t) scaled by the decode factors (0.1, 0.2, 1).
            let mut w = n.ckpt.get(&format!("{q}.reg_1d_o.2.weight")).to_vec();
            let mut bias = n.ckpt.get(&format!("{q}.reg_1d_o.2.bias")).to_vec();
            for (row, scale) in [0.1f32, 0.2, 1.0].into_iter().enumerate() {
                w[row * h..(row + 1) * h]
                    .iter_mut()
                    .for_each(|v| *v *= scale);
                bias[row] *= scale;
            }
            // The 1×1 conv on a length-1 signal is a Linear on [B·N, H].
            let x = n.linear("reg_1d_o.2", &x, &w, &bias, 3, h);
            let x = n.b.op("Reshape", "dx_dw_t", &[&x, shape_bn3], vec![]);
            n.cast_to_f32(x, "dx_dw_t_f32")
        });
        self.scoped("decode", |n| {
            let b = &mut n.b;
            let ones3 = b.const_i64("split_3", &[3], &[1, 1, 1]);
            let parts = b.op_multi(
                "Split",
                "dx_dw_t",
                &[&xw, &ones3],
                3,
                vec![Attr::int("axis", 2)],
            );
            let ones2 = b.const_i64("split_2", &[2], &[1, 1]);
            let se_pt = b.op_multi(
                "Split",
                "start_end",
                &[props, &ones2],
                2,
                vec![Attr::int("axis", 2)],
            );
            let (s, e) = (&se_pt[0], &se_pt[1]);
            let w = b.op("Sub", "width", &[e, s], vec![]);
            // SE: [s + ds·w·g, e + de·w·g] (g folded into the conv).
            let dsw = b.op("Mul", "se_delta", &[&se, &w], vec![]);
            let se_dec = b.op("Add", "se_proposal", &[props, &dsw], vec![]);
            // XW: c' = c + 0.1·dx·w, w' = w·exp(0.2·dw) (factors folded).
            let half_c = b.const_f32("half", &[], &[0.5]);
            let hw = b.op("Mul", "half_width", &[&w, &half_c], vec![]);
            let c = b.op("Add", "centre", &[s, &hw], vec![]);
            let dxw = b.op("Mul", "centre_delta", &[&parts[0], &w], vec![]);
            let c2 = b.op("Add", "new_centre", &[&c, &dxw], vec![]);
            let ew = b.op("Exp", "width_factor", &[&parts[1]], vec![]);
            let w2 = b.op("Mul", "new_width", &[&w, &ew], vec![]);
            let halves = b.const_f32("minus_plus_half", &[2], &[-0.5, 0.5]);
            let ext = b.op("Mul", "half_extent", &[&w2, &halves], vec![]);
            let xw_dec = b.op("Add", "xw_proposal", &[&c2, &ext], vec![]);
            let sum = b.op("Add", "se_plus_xw", &[&se_dec, &xw_dec], vec![]);
            let mean = b.op("Mul", "mean", &[&sum, &half_c], vec![]);
            let next = b.op("Relu", "clamp_at_zero", &[&mean], vec![]);
            let axis = b.const_i64("last_axis", &[1], &[2]);
            let t = b.op("Squeeze", "iou_logit", &[&parts[2], &axis], vec![]);
            let iou = b.op("Sigmoid", "iou", &[&t], vec![]);
            (next, iou)
        })
    }

    /// TTN: for every sample of every proposal (S = start‖action‖end, plus
    /// one sentinel sample), the index of its left neighbour in the padded
    /// timeline (float32, floor(u) + 1) and the interpolation weight of the
    /// right neighbour (u − floor(u)); both `[B, N, S+1]`.
    fn ttn(&mut self, props: &Value) -> (Value, Value) {
        let cfg = self.cfg;
        let t = cfg.temporal_scale as f64;
        let s_total = cfg.total_sample_num();
        let r = cfg.prop_boundary_ratio;
        // With a symbolic T, D and T enter at run time: the constants hold
        // 1/D = 1 (normalize_by_duration) or are divided by D in the graph,
        // and the positions are per unit of T.
        let time = self.time.clone();
        let d = if time.is_some() {
            1.0
        } else {
            cfg.timeline_seconds()
        };
        let t = if time.is_some() { 1.0 } else { t };
        // Region bounds over D: (start a, start b, action a, action b, end a, end b).
        let bounds_m: Vec<f64> = vec![
            (1.0 + r) / d,
            1.0 / d,
            1.0 / d,
            0.0,
            0.0,
            -r / d, // row s
            -r / d,
            0.0,
            0.0,
            1.0 / d,
            1.0 / d,
            (1.0 + r) / d, // row e
        ];
        let bounds_m: Vec<f32> = bounds_m.iter().map(|&v| v as f32).collect();
        // Fractional index u_i = α·T(1-r_i)/2 + β·T(1+r_i)/2 - 1/2 for a region
        // [α, β] of the unit timeline, r_i = (2i+1)/n - 1.
        let mut pos = vec![0.0f32; 6 * s_total];
        let mut offset = 0;
        for (region, n) in [
            cfg.start_sample_num,
            cfg.action_sample_num,
            cfg.end_sample_num,
        ]
        .into_iter()
        .enumerate()
        {
            for i in 0..n {
                let ri = (2 * i + 1) as f64 / n as f64 - 1.0;
                pos[(2 * region) * s_total + offset + i] = (t * (1.0 - ri) / 2.0) as f32;
                pos[(2 * region + 1) * s_total + offset + i] = (t * (1.0 + ri) / 2.0) as f32;
            }
            offset += n;
        }
        let b = &mut self.b;
        let bm = b.const_f32("region_bounds", &[2, 6], &bounds_m);
        let mut bounds = b.op("MatMul", "regions", &[props, &bm], vec![]);
        if let Some(d) = time.as_ref().and_then(|t| t.timeline.as_ref()) {
            bounds = b.op("Div", "regions_over_timeline", &[&bounds, d], vec![]);
        }
        let zero = b.const_f32("zero", &[], &[0.0]);
        let one = b.const_f32("one", &[], &[1.0]);
        let minus_one = b.const_f32("minus_one", &[], &[-1.0]);
        let bounds = b.op("Clip", "clamp_to_timeline", &[&bounds, &zero, &one], vec![]);
        let pm = b.const_f32("sample_positions", &[6, s_total], &pos);
        let mut u = b.op("MatMul", "positions", &[&bounds, &pm], vec![]);
        if let Some(time) = &time {
            u = b.op("Mul", "positions_times_steps", &[&u, &time.steps], vec![]);
        }
        let minus_half = b.const_f32("minus_half", &[], &[-0.5]);
        let u = b.op("Add", "fractional_index", &[&u, &minus_half], vec![]);
        // One sentinel sample after the last, at u = -1: left neighbour 0 of
        // the padded timeline (a zero step) with weight 1, right weight 0.
        let pads = b.const_i64("sentinel_pads", &[6], &[0, 0, 0, 0, 0, 1]);
        let u = b.op("Pad", "sentinel_sample", &[&u, &pads, &minus_one], vec![]);
        let fl = b.op("Floor", "floor", &[&u], vec![]);
        let frac = b.op("Sub", "frac", &[&u, &fl], vec![]);
        // Padded index of the left neighbour: floor(u) + 1.
        let left = b.op("Add", "left_padded", &[&fl, &one], vec![]);
        (left, frac)
    }

    /// The first (linear) conv of a TBR branch applied to TTN samples without
    /// forming the samples: the samples are linear interpolations of the
    /// features F, so tap k of a Conv1d (kernel 3, stride 2, padding 1) over
    /// the samples equals the same interpolation of G_k = W_k ⊛ F, computed
    /// once per video by one `MatMul` per conv group (before the bias). Output j
    /// sums, over k, G_k interpolated at region sample s = 2j + k − 1 (the
    /// sentinel sample, i.e. zero, when s is outside the region: the conv's
    /// zero padding in sample space), then adds the bias.
    ///
    /// `regions` are (first sample, count) in the S samples; each has its own
    /// conv `params` (prefix of `[C, H/g, 3]` weights), all on `features`
    /// `[B, g, T+2, H/g]`. `left`/`frac` are `[B, N, S+1]` (sentinel last).
    /// Returns `[B·N, regions·C, J]` (J = outputs per region) before the ReLU.
    fn sampled_conv(
        &mut self,
        leaf: &str,
        features: &Value,
        (left, frac): (&Value, &Value),
        regions: &[(usize, usize)],
        params: &[String],
    ) -> Value {
        let cfg = self.cfg;
        let g = cfg.conv_groups;
        let s_total = cfg.total_sample_num();
        let nb = regions.len();
        let dims = self.shape_of(&format!("{}.weight", params[0]));
        let (c, inp_g, taps) = (dims[0], dims[1], dims[2]);
        assert_eq!(taps, 3, "{leaf}: kernel 3");
        let cg = c / g;
        let j_out = regions[0].1.div_ceil(2);
        assert!(regions.iter().all(|r| r.1.div_ceil(2) == j_out), "{leaf}");
        // Per group [H/g, regions·3·C/g]: columns ordered (region, tap, o).
        let mut wt = vec![0.0f32; g * inp_g * nb * 3 * cg];
        let mut bias = vec![0.0f32; nb * c];
        for (r, p) in params.iter().enumerate() {
            let w = self.ckpt.get(&format!("{p}.weight"));
            let bs = self.ckpt.get(&format!("{p}.bias"));
            for gi in 0..g {
                for o in 0..cg {
                    bias[r * c + gi * cg + o] = bs[gi * cg + o];
                    for k in 0..3 {
                        let col = (r * 3 + k) * cg + o;
                        for i in 0..inp_g {
                            wt[(gi * inp_g + i) * nb * 3 * cg + col] =
                                w[((gi * cg + o) * inp_g + i) * 3 + k];
                        }
                    }
                }
            }
        }
        let wv = self.weight(&format!("{leaf}.tap_weight"), &[g, inp_g, nb * 3 * cg], &wt);
        let bv = self.weight(&format!("{leaf}.bias"), &[nb, 1, c], &bias);
        // Sample of region r, output j, tap k (sentinel S outside the region).
        let mut sample = Vec::with_capacity(nb * j_out * 3);
        for &(first, count) in regions {
            for j in 0..j_out {
                for k in 0..3 {
                    let s = (2 * j + k) as i64 - 1;
                    sample.push(if (0..count as i64).contains(&s) {
                        (first as i64) + s
                    } else {
                        s_total as i64
                    });
                }
            }
        }
        let row_offset: Vec<f32> = (0..nb * 3).map(|v| v as f32).collect();
        let b = &mut self.b;
        // [B, g, T+2, regions·3·C/g] = [B, g, (T+2)·regions·3, C/g], then
        // [B, (T+2)·regions·3, C]: row (t·regions + r)·3 + k holds G_k[t] of
        // region r (moving whole C/g blocks: a cheap transpose).
        let table = b.op("MatMul", &format!("{leaf}/taps"), &[features, &wv], vec![]);
        let split = b.const_i64(
            &format!("{leaf}/group_rows_shape"),
            &[4],
            &[0, g as i64, -1, cg as i64],
        );
        let table = b.op(
            "Reshape",
            &format!("{leaf}/group_rows"),
            &[&table, &split],
            vec![],
        );
        let table = b.op(
            "Transpose",
            &format!("{leaf}/groups_last"),
            &[&table],
            vec![Attr::ints("perm", &[0, 2, 1, 3])],
        );
        let rows_shape = b.const_i64(&format!("{leaf}/rows_shape"), &[3], &[0, -1, c as i64]);
        let table = b.op(
            "Reshape",
            &format!("{leaf}/rows"),
            &[&table, &rows_shape],
            vec![],
        );
        let sample = b.const_i64(&format!("{leaf}/sample_index"), &[nb, j_out, 3], &sample);
        let axis2 = || vec![Attr::int("axis", 2)];
        // [B, N, regions, J, 3] per tap: left neighbour and its weight.
        let tl = b.op(
            "Gather",
            &format!("{leaf}/tap_left"),
            &[left, &sample],
            axis2(),
        );
        let tf = b.op(
            "Gather",
            &format!("{leaf}/tap_frac"),
            &[frac, &sample],
            axis2(),
        );
        let per_tap = b.const_i64(&format!("{leaf}/per_tap_shape"), &[3], &[0, -1, 1]);
        let stride = b.const_f32(&format!("{leaf}/row_stride"), &[], &[(nb * 3) as f32]);
        let offset = b.const_f32(&format!("{leaf}/row_offset"), &[nb, 1, 3], &row_offset);
        let tl = b.op("Mul", &format!("{leaf}/time_rows"), &[&tl, &stride], vec![]);
        let tl = b.op("Add", &format!("{leaf}/tap_rows"), &[&tl, &offset], vec![]);
        let tl = b.op(
            "Reshape",
            &format!("{leaf}/rows_per_tap"),
            &[&tl, &per_tap],
            vec![],
        );
        // Left and right neighbour rows [B, M, 2] (right = one time step on).
        let nbr = b.const_f32(
            &format!("{leaf}/neighbour_rows"),
            &[2],
            &[0.0, (nb * 3) as f32],
        );
        let rows = b.op("Add", &format!("{leaf}/neighbours"), &[&tl, &nbr], vec![]);
        let rows = b.op(
            "Cast",
            &format!("{leaf}/row_index"),
            &[&rows],
            vec![Attr::int("to", data_type::INT64 as i64)],
        );
        let rows = b.op(
            "Reshape",
            &format!("{leaf}/gather_index"),
            &[&rows, &per_tap],
            vec![],
        );
        // Weights (1 - frac, frac) = frac·(-1, 1) + (1, 0), [B·N·regions·J, 1, 6].
        let tf = b.op(
            "Reshape",
            &format!("{leaf}/frac_per_tap"),
            &[&tf, &per_tap],
            vec![],
        );
        let sign = b.const_f32(&format!("{leaf}/minus_plus_one"), &[2], &[-1.0, 1.0]);
        let base = b.const_f32(&format!("{leaf}/one_zero"), &[2], &[1.0, 0.0]);
        let tf = b.op("Mul", &format!("{leaf}/signed_frac"), &[&tf, &sign], vec![]);
        let wts = b.op("Add", &format!("{leaf}/weights"), &[&tf, &base], vec![]);
        let per_out = b.const_i64(&format!("{leaf}/per_output_shape"), &[3], &[-1, 1, 6]);
        let wts = b.op(
            "Reshape",
            &format!("{leaf}/weights_per_output"),
            &[&wts, &per_out],
            vec![],
        );
        let wts = self.cast_to_compute(wts, &format!("{leaf}/weights_to_compute"));
        let b = &mut self.b;
        let gathered = b.op(
            "GatherND",
            &format!("{leaf}/gather"),
            &[&table, &rows],
            vec![Attr::int("batch_dims", 1)],
        );
        let six = b.const_i64(&format!("{leaf}/six_rows_shape"), &[3], &[-1, 6, c as i64]);
        let gathered = b.op(
            "Reshape",
            &format!("{leaf}/six_rows"),
            &[&gathered, &six],
            vec![],
        );
        // Σ over 3 taps × 2 neighbours: [B·N·regions·J, 1, C].
        let y = b.op(
            "MatMul",
            &format!("{leaf}/interpolate_sum"),
            &[&wts, &gathered],
            vec![],
        );
        let out_shape = b.const_i64(
            &format!("{leaf}/outputs_shape"),
            &[4],
            &[-1, nb as i64, j_out as i64, c as i64],
        );
        let y = b.op(
            "Reshape",
            &format!("{leaf}/outputs"),
            &[&y, &out_shape],
            vec![],
        );
        let y = b.op("Add", &format!("{leaf}/bias"), &[&y, &bv], vec![]);
        let y = b.op(
            "Transpose",
            &format!("{leaf}/channels_first"),
            &[&y],
            vec![Attr::ints("perm", &[0, 1, 3, 2])],
        );
        let cf = b.const_i64(
            &format!("{leaf}/channels_shape"),
            &[3],
            &[-1, (nb * c) as i64, j_out as i64],
        );
        b.op(
            "Reshape",
            &format!("{leaf}/merge_regions"),
            &[&y, &cf],
            vec![],
        )
    }
}
