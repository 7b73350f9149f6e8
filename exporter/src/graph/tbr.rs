//! One TBR stage: TTN sampling positions, the start/end (SE) and
//! centre/width (XW) heads on `[B·N, C, J]`, and decoding.
//!
//! The SE start and end branches run as one grouped conv stack (weights
//! stacked on the output channels, twice the groups); `reg_1d_o.0`, whose
//! kernel spans its whole input, is one batched `MatMul` over the groups
//! (as a `Conv`, ONNX Runtime runs it as B·N·g matrix–vector products that
//! each re-read the weights); `reg_1d_o.2` is a Linear on `[B·N, H]`.
use super::fold::{Conv, FullConv, Stage, TapConv, TtnTables};
use super::ttn::SamplePositions;
use super::{Net, ProposalShapes};
use crate::builder::Value;

impl Net<'_> {
    /// Stage `w` on proposals `props` `[B, N, 2]`, its first convs applied
    /// to `features` ([`Net::tap_features`]) before sampling.
    /// Returns (refined proposals `[B, N, 2]`, IoU
    /// estimate `[B, N]`), float32.
    pub(super) fn tbr(
        &mut self,
        w: &Stage,
        ttn: &TtnTables,
        props: &Value,
        features: &Value,
        shapes: &ProposalShapes,
    ) -> (Value, Value) {
        let pos = self.scoped("ttn", |n| n.ttn(props, ttn));
        let se = self.scoped("reg1se", |n| n.start_end_head(w, features, &pos, shapes));
        let xw = self.scoped("reg1xw", |n| n.centre_width_head(w, features, &pos, shapes));
        self.scoped("decode", |n| n.decode(props, &se, &xw))
    }

    /// `(ds, de)` × g, `[B, N, 2]` float32.
    fn start_end_head(
        &mut self,
        w: &Stage,
        features: &Value,
        pos: &SamplePositions,
        shapes: &ProposalShapes,
    ) -> Value {
        // [B·N, 1, ns/2, 2·se]: start channels then end channels.
        let x = self.first_convs("start_end_conv", features, pos, &w.se_first, &w.se_mid);
        let k = (2 * self.cfg.se_hidden_dim * self.cfg.se_final_kernel()) as i64;
        let x = self.b.reshape("start_end_flat", &x, &[-1, k]);
        let x = self.linear("start_end_conv.4", &x, &w.se_last);
        self.head_output("ds_de", &x, &shapes.b_n_2)
    }

    /// `(0.1·dx, 0.2·dw, t)`, `[B, N, 3]` float32.
    // Alike start_end_head in signature only: the layers after first_convs differ.
    fn centre_width_head(
        &mut self,
        w: &Stage,
        features: &Value,
        pos: &SamplePositions,
        shapes: &ProposalShapes,
    ) -> Value {
        let x = self.first_convs("reg_1d_b", features, pos, &w.xw_first, &w.xw_mid);
        let x = self.full_conv("reg_1d_o.0", &x, &w.xw_full);
        let x = self.b.relu("reg_1d_o.1", &x);
        let x = self.linear("reg_1d_o.2", &x, &w.xw_out);
        self.head_output("dx_dw_t", &x, &shapes.b_n_3)
    }

    /// A head's first four layers, `{prefix}.0` to `{prefix}.3`: the conv
    /// sampling its tap table with its ReLU, a channels-last conv, ReLU.
    fn first_convs(
        &mut self,
        prefix: &str,
        features: &Value,
        pos: &SamplePositions,
        first: &TapConv,
        mid: &Conv,
    ) -> Value {
        let x = self.sampled_conv(&format!("{prefix}.0"), features, pos, first);
        self.conv_relu_channels_last(&format!("{prefix}.2"), &format!("{prefix}.3"), &x, mid)
    }

    /// A head's output `name`: `x` reshaped to `shape`, as float32
    /// (`{name}_f32` where the weights are float16).
    fn head_output(&mut self, name: &str, x: &Value, shape: &Value) -> Value {
        let x = self.b.reshape_to(name, x, shape);
        self.cast_to_f32(&x, &format!("{name}_f32"))
    }

    /// A Conv1d and its ReLU on channels-last `[M, 1, W, C]`: `Transpose`
    /// to `[M, C, 1, W]` (ONNX Runtime folds it into the blocked conv's
    /// input reorder), `Conv` + `Relu` (fused), `Squeeze` to `[M, C_out,
    /// W_out]`.
    fn conv_relu_channels_last(&mut self, leaf: &str, relu: &str, x: &Value, conv: &Conv) -> Value {
        let x = self
            .b
            .transpose(&format!("{leaf}/channels_first"), x, &[0, 3, 1, 2]);
        let y = self.conv2d_relu(leaf, relu, &x, conv);
        self.b.squeeze(&format!("{leaf}/as_1d"), &y, &[2])
    }

    /// A grouped conv whose kernel spans the input `[M, H_in, K]`, as
    /// `[g, M, H_in/g·K] @ [g, H_in/g·K, H_out/g]`, giving `[M, H_out]`.
    fn full_conv(&mut self, leaf: &str, x: &Value, fc: &FullConv) -> Value {
        let (g, rows, out_g) = (fc.weight.dims[0], fc.weight.dims[1], fc.weight.dims[2]);
        let bias = self.weight(&format!("{leaf}.bias"), &fc.bias);
        let (g, rows, out) = (g as i64, rows as i64, (g * out_g) as i64);
        self.scoped(leaf, |n| {
            let b = &mut n.b;
            let x = b.reshape("per_group", x, &[-1, g, rows]);
            let x = b.transpose("groups_first", &x, &[1, 0, 2]);
            let y = n.weight_matmul("full", &x, &fc.weight, "weight_t");
            let b = &mut n.b;
            let y = b.transpose("groups_last", &y, &[1, 0, 2]);
            let y = b.reshape("merge_groups", &y, &[-1, out]);
            b.add("bias", &y, &bias)
        })
    }
}
