//! The base encoder: two grouped convs with ReLU on `[B, C, T]`, then the
//! features time-major `[B, T, H]` for the LGTE layers; either as `Conv`s
//! or as Winograd's minimal filtering (see `fold::winograd`) on the
//! features made time-major first: per conv, one call of
//! [`WINOGRAD_TILES`], one batched `MatMul` per channel group and
//! transformed point, one call of [`WINOGRAD_UNTILE_RELU`].
use super::fold::winograd::WinogradConv;
use super::fold::{Conv, Tensor};
use super::Net;
use crate::builder::{FunctionId, GraphBuilder, Value};
use tcanet_models::onnx::{FUNCTION_DOMAIN, WINOGRAD_TILES, WINOGRAD_UNTILE_RELU};

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
            let x = self.b.transpose("to_time_major", x, &[0, 2, 1]);
            let x = self.scoped("0", |n| n.winograd_conv_relu(&x, first));
            return self.scoped("2", |n| n.winograd_conv_relu(&x, second));
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

    /// A kernel-3 conv and its ReLU on time-major `[B, T, C]` (fixed T),
    /// giving `[B, T, C_out]`.
    fn winograd_conv_relu(&mut self, x: &Value, wc: &WinogradConv) -> Value {
        let t = self.cfg.temporal_scale;
        let [groups, n, ci, co] = wc.weight.dims[..] else {
            unreachable!("Winograd weights are [G, n, C_in/G, C_out/G]")
        };
        let shapes = WinogradShapes {
            steps: t,
            tile: n,
            groups,
        };
        let x = self
            .b
            .reshape("per_group", x, &[0, 0, groups as i64, ci as i64]);
        let input_transform = self.weight("input_transform", &wc.input_transform);
        let tiles = self.b.call_function(
            &shapes.id(WINOGRAD_TILES, ci),
            "tiles",
            &[("x", &x), ("transform", &input_transform)],
            |b, formal| tiles_body(b, &formal[0], &formal[1], &shapes),
        );
        let products = self.plain_weight_matmul("products", &tiles, &wc.weight);
        let output_transform = self.weight("output_transform", &wc.output_transform);
        let bias = self.weight("bias", &wc.bias);
        let steps = self.b.const_i64("steps", &[1], &[t as i64]);
        let inputs = [
            ("products", &products),
            ("transform", &output_transform),
            ("bias", &bias),
            ("steps", &steps),
        ];
        self.b.call_function(
            &shapes.id(WINOGRAD_UNTILE_RELU, co),
            "untile_relu",
            &inputs,
            |b, formal| untile_body(b, formal, &shapes),
        )
    }

    /// `x @ weight`, never quantized.
    fn plain_weight_matmul(&mut self, leaf: &str, x: &Value, w: &Tensor) -> Value {
        let w = self.weight(&format!("{leaf}.weight"), w);
        self.b.matmul(&format!("{leaf}/matmul"), x, &w)
    }
}

/// What the Winograd functions' bodies are built for (one overload each).
struct WinogradShapes {
    /// T.
    steps: usize,
    /// n.
    tile: usize,
    /// G.
    groups: usize,
}

impl WinogradShapes {
    /// Outputs per tile, m.
    fn outputs(&self) -> usize {
        self.tile - 2
    }

    /// Tiles, P.
    fn tiles(&self) -> usize {
        self.steps.div_ceil(self.outputs())
    }

    /// Function `name`'s overload for these shapes and `channels` per group.
    fn id(&self, name: &'static str, channels: usize) -> FunctionId {
        FunctionId {
            domain: FUNCTION_DOMAIN,
            name,
            overload: format!(
                "t{}_n{}_g{}_c{channels}",
                self.steps, self.tile, self.groups
            ),
        }
    }
}

/// The standard-op body of [`WINOGRAD_TILES`] for fixed shapes: `x` `[B,
/// T, G, C/G]` zero-padded to m·P + 2 steps, every tile's n steps gathered
/// (`[B, P, n, G·C/G]`), Bᵀ applied to them (`Bᵀ @ tile`, batched over
/// the tiles), then laid out `[B, G, n, P, C/G]` (a transpose that moves
/// whole C/G blocks, which ONNX Runtime does as copies).
fn tiles_body(b: &mut GraphBuilder, x: &Value, transform: &Value, s: &WinogradShapes) -> Value {
    let (m, n, p) = (s.outputs(), s.tile, s.tiles());
    let after = (m * p + 1 - s.steps) as i64;
    let x = b.pad("zero_pad", x, &[0, 1, 0, 0, 0, after, 0, 0], None);
    let index: Vec<i64> = (0..p)
        .flat_map(|tile| (0..n).map(move |j| (tile * m + j) as i64))
        .collect();
    let index = b.const_i64("tile_steps", &[p, n], &index);
    let tiles = b.gather("tiles", &x, &index, 1);
    let (g, p, n) = (s.groups as i64, p as i64, n as i64);
    let tiles = b.reshape("tile_rows", &tiles, &[0, p, n, -1]);
    let v = b.matmul("transformed", transform, &tiles);
    let v = b.reshape("per_group", &v, &[0, p, n, g, -1]);
    b.transpose("points_first", &v, &[0, 3, 2, 1, 4])
}

/// The standard-op body of [`WINOGRAD_UNTILE_RELU`] for fixed shapes: the
/// products laid out tile by tile (`[B, P, n, C]`, moving whole C/G
/// blocks), Aᵀ applied (`Aᵀ @ tile`), time-major `[B, m·P, C]`, cut to T
/// steps, plus the bias, ReLU.
fn untile_body(b: &mut GraphBuilder, formal: &[Value], s: &WinogradShapes) -> Value {
    let [products, transform, bias, steps] = formal else {
        unreachable!("four formal inputs")
    };
    let (m, n, p) = (s.outputs() as i64, s.tile as i64, s.tiles() as i64);
    let x = b.transpose("tiles_first", products, &[0, 3, 2, 1, 4]);
    let x = b.reshape("tile_rows", &x, &[0, p, n, -1]);
    let y = b.matmul("outputs", transform, &x);
    let y = b.reshape("steps", &y, &[0, m * p, -1]);
    let zero = b.const_i64("first_step", &[1], &[0]);
    let axis = b.const_i64("time_axis", &[1], &[1]);
    let y = b.op("Slice", "cut", &[&y, &zero, steps, &axis], vec![]);
    let y = b.add("bias", &y, bias);
    b.relu("relu", &y)
}
