//! The TCANet inference graph (docs/MODEL.md, "Forward pass" and "TBR
//! decoding" with the inference decode scale).
//!
//! Every weight is folded first ([`fold`], pure functions of the checkpoint),
//! then the graph is emitted region by region, as `models/nn` computes it:
//! [`encoder`] (base encoder), [`lgte`] (LGTE layers, local heads over their
//! gathered w-key window), and per TBR stage [`ttn`] (sampling positions),
//! [`tbr`] (SE and XW heads; their first convs via [`sampled_conv`]: applied
//! to the features before sampling and interpolated at the samples, which are
//! never formed) and [`decode`] (float32 in both precisions). [`time`] holds
//! what a symbolic T adds, [`quant`] the int8 products of `--int8`.
pub mod fold;

mod decode;
mod encoder;
mod lgte;
pub mod quant;
mod sampled_conv;
mod tbr;
mod time;
mod ttn;
mod winograd;

use tcanet_models::checkpoint::Checkpoint;
use tcanet_models::onnx::{
    Precision, INPUT_FEATURES, INPUT_PROPOSALS, IOU_OUTPUTS, PROPOSAL_OUTPUTS,
};
use tcanet_models::params::{lgte_prefix, tbr_prefix};
use tcanet_models::ModelConfig;

use crate::builder::{Dim, FinishedGraph, GraphBuilder, Value};
use crate::onnx_proto::data_type;
use crate::{ExportOptions, Int8Parts};
use fold::{Conv, Linear, Tensor};
use time::TimeValues;

/// Builds the graph for a checked checkpoint.
///
/// With `opts.dynamic_time` the input's T is symbolic: the local window
/// (key indices and duplicate mask) and the sampling positions are computed
/// in the graph from the input length (the timeline spans
/// `T * temporal_interval` seconds, or the whole video with
/// `normalize_by_duration`). With `opts.int8` (float32 only) the large
/// matrix products take int8 weights and dynamically quantized inputs
/// ([`quant`]). (`opts.opset` is the caller's: it does not change the
/// graph.)
pub fn build_graph(ckpt: &Checkpoint, opts: &ExportOptions) -> FinishedGraph {
    let precision = opts.precision;
    assert!(
        opts.int8.is_none() || precision == Precision::Fp32,
        "int8 needs float32"
    );
    let dynamic_time = opts.dynamic_time;
    let folded = fold::fold_network(ckpt, opts);
    let mut net = Net {
        b: GraphBuilder::with_weight_precision(precision),
        cfg: &ckpt.config,
        time: None,
        int8: opts.int8,
        quantized: quant::InputCache::new(),
    };
    net.build(&folded, dynamic_time);
    net.b.finish("tcanet")
}

/// The graph under construction and what every region needs to know.
struct Net<'a> {
    b: GraphBuilder,
    cfg: &'a ModelConfig,
    /// The run-time T (and D), with a symbolic T.
    time: Option<TimeValues>,
    /// Which large matrix products to quantize ([`quant`]), if any.
    int8: Option<Int8Parts>,
    /// Activations already quantized, by value name.
    quantized: quant::InputCache,
}

/// Shapes computed once from the proposals input: `[B, N, 2]` and `[B, N, 3]`.
struct ProposalShapes {
    b_n_2: Value,
    b_n_3: Value,
}

impl Net<'_> {
    /// Inputs, the encoder, the LGTE layers, the three TBR stages, outputs.
    fn build(&mut self, net: &fold::Network, dynamic_time: bool) {
        let (features, proposals) = self.inputs(dynamic_time);
        if dynamic_time {
            self.time = Some(self.scoped("shapes", |n| n.time_values(&features)));
        }
        let x = self.scoped("input", |n| n.cast_to_compute(&features, "cast_features"));
        let x = self.scoped("x_1d_b_f", |n| {
            n.base_encoder(&x, &net.encoder, net.encoder_winograd.as_ref())
        });
        let window = self.scoped("lgtes", |n| n.local_window(net.window.as_ref()));
        let mut x = x;
        for (i, layer) in net.lgtes.iter().enumerate() {
            x = self.scoped(&lgte_prefix(i), |n| n.lgte(&x, layer, &window));
        }
        let padded = self.scoped("ttn", |n| n.padded_groups(&x));
        let tap_features = self.scoped("taps", |n| n.tap_features(&padded));
        let shapes = self.scoped("shapes", |n| n.proposal_shapes(&proposals));
        let mut props = proposals;
        for (i, stage) in net.stages.iter().enumerate() {
            let (next, iou) = self.scoped(&tbr_prefix(i + 1), |n| {
                n.tbr(stage, &net.ttn, &props, &tap_features, &shapes)
            });
            self.outputs(i, &next, &iou);
            props = Value(PROPOSAL_OUTPUTS[i].to_string());
        }
    }

    /// `features` `[B, C, T]` and `proposals` `[B, N, 2]`, float32.
    fn inputs(&mut self, dynamic_time: bool) -> (Value, Value) {
        let cfg = self.cfg;
        let t = if dynamic_time {
            Dim::Sym("T")
        } else {
            Dim::Fixed(cfg.temporal_scale as i64)
        };
        let f32t = data_type::FLOAT;
        let c = Dim::Fixed(cfg.feat_dim as i64);
        let features = self.b.input(INPUT_FEATURES, f32t, &[Dim::Sym("B"), c, t]);
        let bn2 = [Dim::Sym("B"), Dim::Sym("N"), Dim::Fixed(2)];
        let proposals = self.b.input(INPUT_PROPOSALS, f32t, &bn2);
        (features, proposals)
    }

    /// Stage `i`'s outputs: `proposals_{i+1}` and `iou_{i+1}`.
    fn outputs(&mut self, i: usize, next: &Value, iou: &Value) {
        let f32t = data_type::FLOAT;
        let bn2 = [Dim::Sym("B"), Dim::Sym("N"), Dim::Fixed(2)];
        self.b.output(next, PROPOSAL_OUTPUTS[i], f32t, &bn2);
        let bn = [Dim::Sym("B"), Dim::Sym("N")];
        self.b.output(iou, IOU_OUTPUTS[i], f32t, &bn);
    }

    /// `[B, N, 2]` and `[B, N, 3]` for reshaping per-proposal results.
    fn proposal_shapes(&mut self, proposals: &Value) -> ProposalShapes {
        let b = &mut self.b;
        let b_n_2 = b.shape("b_n_2", proposals, None, None);
        let b_n = b.shape("b_n", proposals, None, Some(2));
        let three = b.const_i64("three", &[1], &[3]);
        let b_n_3 = b.concat("b_n_3", &[&b_n, &three], 0);
        ProposalShapes { b_n_2, b_n_3 }
    }

    /// Runs `f` with `name` appended to the naming scope.
    fn scoped<R>(&mut self, name: &str, f: impl FnOnce(&mut Self) -> R) -> R {
        self.b.push_scope(name);
        let r = f(self);
        self.b.pop_scope();
        r
    }

    /// A weight constant (in the model's precision) from a folded tensor.
    fn weight(&mut self, leaf: &str, t: &Tensor) -> Value {
        self.b.weight(leaf, &t.dims, &t.data)
    }

    /// float32 → the compute precision (a no-op in fp32).
    fn cast_to_compute(&mut self, v: &Value, leaf: &str) -> Value {
        match self.b.weight_precision() {
            Precision::Fp32 => v.clone(),
            Precision::Fp16 => self.b.cast(leaf, v, data_type::FLOAT16),
        }
    }

    /// The compute precision → float32 (a no-op in fp32).
    fn cast_to_f32(&mut self, v: &Value, leaf: &str) -> Value {
        match self.b.weight_precision() {
            Precision::Fp32 => v.clone(),
            Precision::Fp16 => self.b.cast(leaf, v, data_type::FLOAT),
        }
    }

    /// A Conv1d and its ReLU on `[N, C, 1, W]` (a Conv2d of height 1:
    /// ONNX Runtime's CPU provider runs 2-D convs with its blocked (NCHWc)
    /// kernels, which it does not use for 1-D ones). The ReLU follows the
    /// `Conv` directly, so that ONNX Runtime fuses it into the conv, and
    /// consecutive convs stay in the blocked layout between them. `{leaf}`
    /// names the conv, `{relu}` the ReLU.
    fn conv2d_relu(&mut self, leaf: &str, relu: &str, x: &Value, conv: &Conv) -> Value {
        let w = self.weight(&format!("{leaf}.weight"), &conv.weight);
        let bias = self.weight(&format!("{leaf}.bias"), &conv.bias);
        let y = self.b.conv2d(leaf, x, &w, &bias, conv.spec);
        self.b.relu(relu, &y)
    }

    /// `x @ W + b` (`MatMul`, `Add`), float32 whatever `--int8` says.
    fn linear(&mut self, leaf: &str, x: &Value, l: &Linear) -> Value {
        let w = self.weight(&format!("{leaf}.weight_t"), &l.weight_t);
        let bias = self.weight(&format!("{leaf}.bias"), &l.bias);
        let y = self.b.matmul(&format!("{leaf}/matmul"), x, &w);
        self.b.add(&format!("{leaf}/bias"), &y, &bias)
    }

    /// [`Net::linear`] for the large products: quantized with `--int8`.
    fn large_linear(&mut self, leaf: &str, x: &Value, l: &Linear) -> Value {
        let y = self.weight_matmul(leaf, x, &l.weight_t, "weight_t");
        let bias = self.weight(&format!("{leaf}.bias"), &l.bias);
        self.b.add(&format!("{leaf}/bias"), &y, &bias)
    }
}
