//! A kernel-3 conv (stride 1, padding 1) and its ReLU as Winograd tiles
//! (see `fold::winograd`), on time-major `[B, T, C]`: one call of
//! [`WINOGRAD_TILES`], one batched `MatMul` per channel group and point,
//! one call of [`WINOGRAD_UNTILE_RELU`], giving time-major `[B, T,
//! C_out]`.
use super::fold::winograd::WinogradConv;
use super::Net;
use crate::builder::{FunctionId, GraphBuilder, Value};
use tcanet_models::onnx::{FUNCTION_DOMAIN, WINOGRAD_TILES, WINOGRAD_UNTILE_RELU};

impl Net<'_> {
    /// The conv `wc` and its ReLU on `x` `[B, steps, C]`, giving `[B,
    /// steps, C_out]`.
    pub(super) fn winograd_conv(&mut self, x: &Value, wc: &WinogradConv, steps: usize) -> Value {
        let [groups, points, ci, co] = wc.weight.dims[..] else {
            unreachable!("Winograd weights are [G, points, C_in/G, C_out/G]")
        };
        let [outputs_per_tile, _] = wc.output_transform.dims[..] else {
            unreachable!("the output transform is [m, points]")
        };
        let shapes = WinogradShapes {
            steps,
            span: wc.input_transform.dims[1],
            points,
            outputs_per_tile,
            groups,
        };
        let x = self
            .b
            .reshape("per_group", x, &[0, steps as i64, groups as i64, ci as i64]);
        let input_transform = self.weight("input_transform", &wc.input_transform);
        let tiles = self.b.call_function(
            &shapes.id(WINOGRAD_TILES, ci),
            "tiles",
            &[("x", &x), ("transform", &input_transform)],
            |b, formal| tiles_body(b, &formal[0], &formal[1], &shapes),
        );
        // [G, points, B, P, C/G] as [G, points, B·P, C/G]: every batch's
        // tiles are rows of one product per group and point.
        let (g, points_i, p) = (groups as i64, points as i64, shapes.tiles() as i64);
        let rows = self
            .b
            .reshape("tile_rows", &tiles, &[g, points_i, -1, ci as i64]);
        // Never quantized: the encoder's convs stay float with `--int8`.
        let products = self.float_weight_matmul("products", &rows, &wc.weight, "weight");
        let products = self
            .b
            .reshape("per_batch", &products, &[g, points_i, -1, p, co as i64]);
        let output_transform = self.weight("output_transform", &wc.output_transform);
        let bias = self.weight("bias", &wc.bias);
        let steps = self.b.const_i64("steps", &[1], &[steps as i64]);
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
}

/// What the Winograd functions' bodies are built for (one overload each).
struct WinogradShapes {
    /// Input steps T.
    steps: usize,
    /// Steps per tile, n (tiles start n − 2 apart).
    span: usize,
    /// Points per tile.
    points: usize,
    /// Outputs per tile, m.
    outputs_per_tile: usize,
    /// Channel groups G.
    groups: usize,
}

impl WinogradShapes {
    /// Steps between tiles.
    fn stride(&self) -> usize {
        self.span - 2
    }

    /// Tiles, P.
    fn tiles(&self) -> usize {
        self.steps.div_ceil(self.stride())
    }

    /// Function `name`'s overload for these shapes and `channels` per group.
    fn id(&self, name: &'static str, channels: usize) -> FunctionId {
        FunctionId {
            domain: FUNCTION_DOMAIN,
            name,
            overload: format!(
                "t{}_n{}_p{}_m{}_g{}_c{channels}",
                self.steps, self.span, self.points, self.outputs_per_tile, self.groups
            ),
        }
    }
}

/// The standard-op body of [`WINOGRAD_TILES`] for fixed shapes: `x` `[B,
/// T, G, C/G]` zero-padded to s·P + 2 steps (s = n − 2), every tile's n
/// steps gathered (`[B, P, n, G·C/G]`), the transform applied to them
/// (`transform @ tile`, batched over the tiles), then laid out `[G,
/// points, B, P, C/G]` (a transpose that moves whole C/G blocks, which
/// ONNX Runtime does as copies).
fn tiles_body(b: &mut GraphBuilder, x: &Value, transform: &Value, s: &WinogradShapes) -> Value {
    let (stride, n, p) = (s.stride(), s.span, s.tiles());
    let after = (stride * p + 1 - s.steps) as i64;
    let x = b.pad("zero_pad", x, &[0, 1, 0, 0, 0, after, 0, 0], None);
    let index: Vec<i64> = (0..p)
        .flat_map(|tile| (0..n).map(move |j| (tile * stride + j) as i64))
        .collect();
    let index = b.const_i64("tile_steps", &[p, n], &index);
    let tiles = b.gather("tiles", &x, &index, 1);
    let (g, p, n, points) = (s.groups as i64, p as i64, n as i64, s.points as i64);
    let tiles = b.reshape("tile_rows", &tiles, &[0, p, n, -1]);
    let v = b.matmul("transformed", transform, &tiles);
    let v = b.reshape("per_group", &v, &[0, p, points, g, -1]);
    b.transpose("points_first", &v, &[3, 2, 0, 1, 4])
}

/// The standard-op body of [`WINOGRAD_UNTILE_RELU`] for fixed shapes: the
/// products laid out tile by tile (`[B, P, points, C]`, moving whole C/G
/// blocks), the transform applied (`transform @ tile`), time-major `[B,
/// m·P, C]`, cut to the output steps, plus the bias, ReLU.
fn untile_body(b: &mut GraphBuilder, formal: &[Value], s: &WinogradShapes) -> Value {
    let [products, transform, bias, steps] = formal else {
        unreachable!("four formal inputs")
    };
    let (m, p, points) = (s.outputs_per_tile as i64, s.tiles() as i64, s.points as i64);
    let x = b.transpose("tiles_first", products, &[2, 3, 1, 0, 4]);
    let x = b.reshape("tile_rows", &x, &[0, p, points, -1]);
    let y = b.matmul("outputs", transform, &x);
    let y = b.reshape("steps", &y, &[0, m * p, -1]);
    let zero = b.const_i64("first_step", &[1], &[0]);
    let axis = b.const_i64("time_axis", &[1], &[1]);
    let y = b.op("Slice", "cut", &[&y, &zero, steps, &axis], vec![]);
    let y = b.add("bias", &y, bias);
    b.relu("relu", &y)
}
