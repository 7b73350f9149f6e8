//! Weight folding, done before any node is emitted: pure functions from a
//! checked checkpoint (and its config) to the float32 arrays the graph
//! stores. Each folding is exact in real arithmetic:
//!
//! * the packed in-projection split per part and head group, head-major,
//!   with the query scaling `head_dim^−½` folded in, the key bias dropped
//!   (softmax-invariant) and the value bias moved into the output
//!   projection's bias ([`attention`]);
//! * torch Linear weights transposed to `[in, out]` ([`linear`]);
//! * Conv1d weights as Conv2d weights of height 1 ([`conv`]); the start and
//!   end SE convs stacked on the output channels, run as one conv with twice
//!   the groups ([`stacked_se_conv`]), the inference decode scale g folded
//!   into the last one;
//! * the first conv of each TBR branch, per stage, as tap weights applied
//!   to the features before sampling, its bias folded into the middle tap
//!   ([`tap_table`]); which sample and row each output tap
//!   reads, also as constant selection matrices that give every tap's rows
//!   and interpolation weights in one matrix product ([`tap_conv`],
//!   [`TapReadMaps`]);
//! * the kernel-spans-the-input `reg_1d_o.0` as per-group matmul weights
//!   ([`full_conv`]); the decode factors 0.1 and 0.2 into the dx and dw rows
//!   of `reg_1d_o.2` ([`xw_output`]);
//! * TTN's region bounds and sample positions as two matrices
//!   ([`ttn_tables`]), and the local attention window ([`local_window`]);
//! * the base encoder's convs for Winograd's minimal filtering
//!   ([`winograd`]).
//!
//! The unit tests compare each folded form with the unfolded computation.
use std::collections::HashMap;

use tcanet_models::checkpoint::Checkpoint;
use tcanet_models::onnx::TAP_SUM_ROWS;
use tcanet_models::params::{lgte_prefix, tbr_prefix};
use tcanet_models::window::window_table;
use tcanet_models::{param_specs, ModelConfig, NUM_STAGES};

use crate::builder::Conv2dSpec;
use crate::ExportOptions;
use winograd::{winograd_conv, WinogradConv, WinogradTile};

pub mod winograd;

/// The base encoder's Winograd tile by default.
pub const ENCODER_TILE: Option<WinogradTile> = Some(WinogradTile::F4);

/// A constant tensor: its dimensions and row-major float32 values.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    /// Dimensions.
    pub dims: Vec<usize>,
    /// Row-major values (`dims.iter().product()` of them).
    pub data: Vec<f32>,
}

impl Tensor {
    /// A tensor of `dims` holding `data`.
    pub fn new(dims: &[usize], data: Vec<f32>) -> Self {
        assert_eq!(dims.iter().product::<usize>(), data.len(), "{dims:?}");
        Self {
            dims: dims.to_vec(),
            data,
        }
    }
}

/// A Conv1d written as a Conv2d of height 1.
#[derive(Debug, Clone, PartialEq)]
pub struct Conv {
    /// `[O, I/groups, 1, K]`.
    pub weight: Tensor,
    /// `[O]`.
    pub bias: Tensor,
    /// Kernel, padding, stride and groups.
    pub spec: Conv2dSpec,
}

/// `x @ weight_t + bias`.
#[derive(Debug, Clone, PartialEq)]
pub struct Linear {
    /// `[in, out]` (a torch Linear's weight transposed).
    pub weight_t: Tensor,
    /// `[out]`.
    pub bias: Tensor,
}

/// LayerNorm's affine parameters, `[H]` each.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerNorm {
    /// γ.
    pub scale: Tensor,
    /// β.
    pub bias: Tensor,
}

/// The projection of one group of heads, head-major:
/// `x [B, 1, T, H] @ weight [heads', H, hd] (+ bias [heads', 1, hd])`.
#[derive(Debug, Clone, PartialEq)]
pub struct HeadProjection {
    /// `[heads', H, hd]`.
    pub weight: Tensor,
    /// `[heads', 1, hd]`, or none when the bias is folded elsewhere.
    pub bias: Option<Tensor>,
}

/// An LGTE layer's attention weights, per head group `[local, global]`.
///
/// The packed in-projection is split by part and head group. Queries carry
/// the scaling `head_dim^−½` (weight and bias). Keys have no bias: it adds
/// `q·b_k` to every score of a query, which the softmax removes. Values
/// have no bias: the attention weights of a query sum to 1, so it adds
/// `b_v` to every context row, i.e. `W_o b_v` after the output projection,
/// folded into that projection's bias.
#[derive(Debug, Clone, PartialEq)]
pub struct Attention {
    /// Queries of the local and the global heads (scaled, with bias).
    pub query: [HeadProjection; 2],
    /// Keys (no bias).
    pub key: [HeadProjection; 2],
    /// Values (no bias).
    pub value: [HeadProjection; 2],
    /// Output projection `[H, H]`, bias `b_o + W_o b_v`.
    pub out_proj: Linear,
}

/// One LGTE layer.
#[derive(Debug, Clone, PartialEq)]
pub struct Lgte {
    /// Self-attention.
    pub attention: Attention,
    /// FFN `[H, ffn]`.
    pub linear1: Linear,
    /// FFN `[ffn, H]`.
    pub linear2: Linear,
    /// After attention.
    pub norm1: LayerNorm,
    /// After the FFN.
    pub norm2: LayerNorm,
}

/// The first convs (kernel 3, stride 2, padding 1) of one TBR stage's
/// branch (SE: start and end; XW: one), in the form applied before sampling:
/// one matmul per conv group on the features gives for every time step tap
/// k of output channel o of conv c in column `(c·3 + k)·C/g + o`; each
/// conv's bias is added to its tap-1 columns: tap 1 always reads a sample
/// inside its region, whose interpolation weights sum to 1, so the bias is
/// added exactly once.
#[derive(Debug, Clone, PartialEq)]
pub struct TapTable {
    /// `[groups, H/groups, convs·3·C/groups]`.
    pub weight: Tensor,
    /// `[groups, 1, convs·3·C/groups]`: the biases in the tap-1 columns.
    pub bias: Tensor,
    /// Convs in the table (the branch's regions), in column order.
    pub convs: usize,
    /// Output channels C of one conv.
    pub channels: usize,
    /// Conv groups.
    pub groups: usize,
}

impl TapTable {
    /// `[groups, H/groups + 1, cols]`: the weights with the biases as a last
    /// row, for features with a last column of ones.
    pub fn weight_with_bias_row(&self) -> Tensor {
        let [g, rows, cols] = [
            self.weight.dims[0],
            self.weight.dims[1],
            self.weight.dims[2],
        ];
        let mut data = Vec::with_capacity(g * (rows + 1) * cols);
        for gi in 0..g {
            data.extend_from_slice(&self.weight.data[gi * rows * cols..(gi + 1) * rows * cols]);
            data.extend_from_slice(&self.bias.data[gi * cols..(gi + 1) * cols]);
        }
        Tensor::new(&[g, rows + 1, cols], data)
    }
}

/// One stage's branch's first convs: its [`TapTable`] and how it reads it.
/// Output j of region r sums its taps k = 0, 1, 2 read at the region's
/// sample `2j + k − 1` (the sentinel sample S, i.e. zero, when that is
/// outside the region: the conv's zero padding in sample space). Each
/// stage has tables of its own, so that a stage's reads stay within the
/// rows it needs (a third of one table for all stages: fewer pages and
/// cache lines touched per output).
#[derive(Debug, Clone, PartialEq)]
pub struct TapConv {
    /// The tap weights of the branch's convs, one per region.
    pub table: TapTable,
    /// `[J, regions, 3]`: the sample (0..S, or S for the sentinel) each
    /// output tap reads.
    pub sample_index: Vec<i64>,
    /// Regions (convs with their own weights) of this stage's branch.
    pub regions: usize,
    /// Outputs per region, J.
    pub outputs: usize,
    /// Output channels of one region's conv, C.
    pub channels: usize,
    /// Outputs whose rows one `GatherND` fetches ([`outputs_per_gather`]).
    pub outputs_per_gather: usize,
    /// The reads above as one affine map of the S+1 samples' left
    /// neighbours ([`TapReadMaps`]).
    pub reads: TapReadMaps,
}

impl TapConv {
    /// Rows per time step in the table: (region r, tap k) is row `r·3 + k`
    /// of its time step.
    pub fn rows_per_step(&self) -> usize {
        self.regions * 3
    }
}

/// Where every output tap reads the tap table, as affine maps of a
/// proposal's samples, so that one `MatMul` + `Add` gives them for all
/// outputs (columns in the order (output j, region, tap k, neighbour): left,
/// then right one time step on).
#[derive(Debug, Clone, PartialEq)]
pub struct TapReadMaps {
    /// `[S+1, J·regions·6]`: `rows_per_step` where the column's tap reads
    /// the sample (one per column), else 0. Left neighbours (padded time
    /// indices, whole numbers) @ this = the time step's first row.
    pub row_select: Tensor,
    /// `[J·regions·6]`: the tap's row within a time step, + `rows_per_step`
    /// for the right neighbour.
    pub row_offset: Tensor,
    /// `[S+1, J·regions·6]`: −1 (left) or +1 (right) where the column's tap
    /// reads the sample, else 0. Fractions @ this + `weight_offset` =
    /// the interpolation weights 1 − frac and frac.
    pub weight_select: Tensor,
    /// `[J·regions·6]`: 1 for the left neighbours, 0 for the right.
    pub weight_offset: Tensor,
}

impl TapReadMaps {
    /// The maps of output taps reading `sample_index` (`[J, regions, 3]`,
    /// among `samples` = S+1), (region r, tap k) at row `r·3 + k` of time
    /// steps of `rows_per_step` = regions·3 rows.
    fn new(samples: usize, sample_index: &[i64], rows_per_step: usize) -> Self {
        let cols = sample_index.len() * 2;
        let step = rows_per_step as f32;
        let mut row_select = vec![0.0; samples * cols];
        let mut weight_select = vec![0.0; samples * cols];
        let mut row_offsets = Vec::with_capacity(cols);
        let mut weight_offset = Vec::with_capacity(cols);
        for (i, &s) in sample_index.iter().enumerate() {
            let offset = (i % rows_per_step) as f32;
            for side in 0..2 {
                let col = 2 * i + side;
                row_select[s as usize * cols + col] = step;
                weight_select[s as usize * cols + col] = if side == 0 { -1.0 } else { 1.0 };
                row_offsets.push(offset + side as f32 * step);
                weight_offset.push(if side == 0 { 1.0 } else { 0.0 });
            }
        }
        Self {
            row_select: Tensor::new(&[samples, cols], row_select),
            row_offset: Tensor::new(&[cols], row_offsets),
            weight_select: Tensor::new(&[samples, cols], weight_select),
            weight_offset: Tensor::new(&[cols], weight_offset),
        }
    }
}

/// Gathered bytes one `GatherND` (and the weighted sum reading it) should
/// stay under at [`NOMINAL_PROPOSALS`] proposals per video, by default:
/// small enough to stay in the last-level cache between the two, instead of
/// a round trip through memory (the XW gather of hacs is 79 MB at 100
/// proposals unchunked).
pub const GATHER_CHUNK_BYTES: usize = 10 << 20;
/// The proposal count [`GATHER_CHUNK_BYTES`] is sized for.
pub const NOMINAL_PROPOSALS: usize = 100;

/// Outputs per gather chunk of at most `chunk_bytes` for `regions` convs of
/// `channels` channels ([`TAP_SUM_ROWS`] float rows per output and
/// region), 1..=`outputs`.
pub fn outputs_per_gather(
    regions: usize,
    channels: usize,
    outputs: usize,
    chunk_bytes: usize,
) -> usize {
    let per_output = NOMINAL_PROPOSALS * regions * TAP_SUM_ROWS * channels * 4;
    (chunk_bytes / per_output).clamp(1, outputs)
}

/// A grouped Conv1d whose kernel spans the whole input (one output step),
/// as one batched matmul over the groups.
#[derive(Debug, Clone, PartialEq)]
pub struct FullConv {
    /// `[groups, I/groups·K, O/groups]`: row `i·K + t`, column o of group gi
    /// is the conv weight `[gi·O/groups + o, i, t]`.
    pub weight: Tensor,
    /// `[O]`.
    pub bias: Tensor,
}

/// The weights of one TBR stage.
#[derive(Debug, Clone, PartialEq)]
pub struct Stage {
    /// The start and end `.0` convs (two regions) as tap reads.
    pub se_first: TapConv,
    /// Start and end `.2` convs stacked (twice the groups).
    pub se_mid: Conv,
    /// Start and end `.4` convs (kernel = their whole input) as one Linear
    /// `[2·E·K, 2]` (block-diagonal), × the decode scale g: (ds, de).
    pub se_last: Linear,
    /// `reg_1d_b.0` (one region: all samples) as tap reads.
    pub xw_first: TapConv,
    /// `reg_1d_b.2`.
    pub xw_mid: Conv,
    /// `reg_1d_o.0`.
    pub xw_full: FullConv,
    /// `reg_1d_o.2` as a Linear `[H, 3]`, rows dx and dw × 0.1 and 0.2.
    pub xw_out: Linear,
}

/// TTN's constant matrices.
#[derive(Debug, Clone, PartialEq)]
pub struct TtnTables {
    /// `[2, 6]`: proposal (s, e) → region bounds (start a, b, action a, b,
    /// end a, b) over the timeline length D.
    pub region_bounds: Tensor,
    /// `[6, S]`: clamped bounds → fractional feature index + ½ of every
    /// sample (per unit of T when T is symbolic).
    pub sample_positions: Tensor,
}

/// The local heads' window for a fixed T.
#[derive(Debug, Clone, PartialEq)]
pub struct LocalWindow {
    /// `[T, w]` key positions.
    pub index: Vec<i64>,
    /// `[T, w]` additive mask: −inf where a clamped position repeats.
    pub mask: Vec<f32>,
    /// (T, w).
    pub dims: [usize; 2],
}

/// Everything the graph stores, folded.
#[derive(Debug, Clone, PartialEq)]
pub struct Network {
    /// `x_1d_b_f.0` and `x_1d_b_f.2`.
    pub encoder: [Conv; 2],
    /// The same for Winograd F(m, 3) ([`ExportOptions::encoder_tile`]).
    pub encoder_winograd: Option<[WinogradConv; 2]>,
    /// The LGTE layers.
    pub lgtes: Vec<Lgte>,
    /// The window table (fixed T only; built in the graph otherwise).
    pub window: Option<LocalWindow>,
    /// TTN's matrices (shared by the stages).
    pub ttn: TtnTables,
    /// The TBR stages 1..=NUM_STAGES.
    pub stages: Vec<Stage>,
}

/// Folds every weight of `ckpt` (see the module documentation) for the
/// graph `opts` asks for: with `dynamic_time` no window table and the TTN
/// matrices per unit of T and D; the gather chunks of
/// `gather_chunk_bytes`; the encoder's Winograd tile (fixed T only).
pub fn fold_network(ckpt: &Checkpoint, opts: &ExportOptions) -> Network {
    let dynamic_time = opts.dynamic_time;
    let params = Params::new(ckpt);
    let cfg = &ckpt.config;
    let g = cfg.conv_groups;
    let same = |group| Conv2dSpec {
        kernel: 3,
        pad: 1,
        stride: 1,
        group,
    };
    let encoder = [
        conv(&params, "x_1d_b_f.0", same(g)),
        conv(&params, "x_1d_b_f.2", same(g)),
    ];
    let encoder_winograd = opts
        .encoder_tile
        .filter(|_| !dynamic_time)
        .map(|tile| encoder.each_ref().map(|c| winograd_conv(c, tile)));
    Network {
        encoder,
        encoder_winograd,
        lgtes: (0..cfg.lgte_num).map(|i| lgte(&params, i)).collect(),
        window: (!dynamic_time).then(|| local_window(cfg.temporal_scale, cfg.window_size)),
        ttn: ttn_tables(cfg, dynamic_time),
        stages: (1..=NUM_STAGES)
            .map(|k| stage(&params, k, opts.gather_chunk_bytes))
            .collect(),
    }
}

/// The SE branches' first convs of a stage, in table order.
const SE_FIRST_CONVS: &[&str] = &["reg1se.start_reg_conv.0", "reg1se.end_reg_conv.0"];
/// The XW branch's first conv of a stage.
const XW_FIRST_CONVS: &[&str] = &["reg1xw.reg_1d_b.0"];

/// Stage `k`'s `convs` (parameter prefixes).
fn first_convs(k: usize, convs: &[&str]) -> Vec<String> {
    convs
        .iter()
        .map(|c| format!("{}.{c}", tbr_prefix(k)))
        .collect()
}

/// A checkpoint's parameters with their shapes (from `param_specs`).
pub struct Params<'a> {
    ckpt: &'a Checkpoint,
    shapes: HashMap<String, Vec<usize>>,
}

impl<'a> Params<'a> {
    /// The parameters of a checked checkpoint.
    pub fn new(ckpt: &'a Checkpoint) -> Self {
        let shapes = param_specs(&ckpt.config)
            .into_iter()
            .map(|s| (s.name, s.shape))
            .collect();
        Self { ckpt, shapes }
    }

    /// The config the checkpoint was checked against.
    pub fn config(&self) -> &ModelConfig {
        &self.ckpt.config
    }

    /// Parameter `name` with its shape.
    pub fn get(&self, name: &str) -> Tensor {
        let dims = self
            .shapes
            .get(name)
            .unwrap_or_else(|| panic!("{name} is a parameter of the config"));
        Tensor::new(dims, self.ckpt.get(name).to_vec())
    }
}

/// Conv1d `prefix` (`[O, I/g, K]`) as a Conv2d of height 1.
pub fn conv(params: &Params, prefix: &str, spec: Conv2dSpec) -> Conv {
    let w = params.get(&format!("{prefix}.weight"));
    let (o, i, k) = (w.dims[0], w.dims[1], w.dims[2]);
    assert_eq!(k, spec.kernel, "{prefix}: kernel");
    Conv {
        weight: Tensor::new(&[o, i, 1, k], w.data),
        bias: params.get(&format!("{prefix}.bias")),
        spec,
    }
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

/// A torch Linear (`weight [out, in]`, `bias [out]`) as `[in, out]` and bias.
fn linear_from(weight: Tensor, bias: Tensor) -> Linear {
    let (out, inp) = (weight.dims[0], weight.dims[1]);
    Linear {
        weight_t: Tensor::new(&[inp, out], transpose(&weight.data, out, inp)),
        bias,
    }
}

/// The torch Linear `prefix` (`.weight`, `.bias`).
pub fn linear(params: &Params, prefix: &str) -> Linear {
    linear_from(
        params.get(&format!("{prefix}.weight")),
        params.get(&format!("{prefix}.bias")),
    )
}

/// LGTE layer `i`'s attention weights ([`Attention`]).
pub fn attention(params: &Params, i: usize) -> Attention {
    let cfg = params.config();
    let (h, hd, local) = (cfg.hidden_dim, cfg.head_dim(), cfg.local_heads());
    let p = format!("{}.self_atten.scale_attention", lgte_prefix(i));
    let w = params.get(&format!("{p}.in_proj_weight")).data;
    let b = params.get(&format!("{p}.in_proj_bias")).data;
    let scale = (hd as f64).powf(-0.5) as f32;
    // Part `part` (q, k, v) of heads `heads`, × `s`, with its bias or not.
    let project = |part: usize, heads: std::ops::Range<usize>, s: f32, bias: bool| {
        let n = heads.len();
        let mut wt = vec![0.0f32; n * h * hd];
        let mut bt = vec![0.0f32; n * hd];
        for (hh, head) in heads.enumerate() {
            for d in 0..hd {
                let row = part * h + head * hd + d;
                for i in 0..h {
                    wt[(hh * h + i) * hd + d] = w[row * h + i] * s;
                }
                bt[hh * hd + d] = b[row] * s;
            }
        }
        HeadProjection {
            weight: Tensor::new(&[n, h, hd], wt),
            bias: bias.then(|| Tensor::new(&[n, 1, hd], bt)),
        }
    };
    let groups = [0..local, local..cfg.heads];
    let mut out_proj = linear(params, &format!("{p}.out_proj"));
    // b_o + W_o b_v, with W_o stored transposed ([in, out]).
    for o in 0..h {
        let wb: f64 = (0..h)
            .map(|c| out_proj.weight_t.data[c * h + o] as f64 * b[2 * h + c] as f64)
            .sum();
        out_proj.bias.data[o] = (out_proj.bias.data[o] as f64 + wb) as f32;
    }
    Attention {
        query: groups.clone().map(|g| project(0, g, scale, true)),
        key: groups.clone().map(|g| project(1, g, 1.0, false)),
        value: groups.map(|g| project(2, g, 1.0, false)),
        out_proj,
    }
}

fn layer_norm(params: &Params, prefix: &str) -> LayerNorm {
    LayerNorm {
        scale: params.get(&format!("{prefix}.weight")),
        bias: params.get(&format!("{prefix}.bias")),
    }
}

fn lgte(params: &Params, i: usize) -> Lgte {
    let lp = lgte_prefix(i);
    Lgte {
        attention: attention(params, i),
        linear1: linear(params, &format!("{lp}.linear1")),
        linear2: linear(params, &format!("{lp}.linear2")),
        norm1: layer_norm(params, &format!("{lp}.norm1")),
        norm2: layer_norm(params, &format!("{lp}.norm2")),
    }
}

/// Stage `k`'s last start and end SE convs (`[1, E, K]` each, kernel = the
/// whole input) as one Linear on the stacked, flattened inputs
/// `[2·E·K]` (start first): a block-diagonal `[2·E·K, 2]` weight, every value
/// × `scale` (the inference decode scale g). Output: (ds, de) × g.
pub fn se_output(params: &Params, k: usize, scale: f32) -> Linear {
    let mut weight = Vec::new();
    let mut bias = Vec::new();
    for side in ["start_reg_conv", "end_reg_conv"] {
        let p = format!("{}.reg1se.{side}.4", tbr_prefix(k));
        weight.push(params.get(&format!("{p}.weight")).data);
        bias.push(params.get(&format!("{p}.bias")).data[0] * scale);
    }
    let len = weight[0].len();
    let mut w = vec![0.0f32; 2 * len * 2];
    for (side, values) in weight.iter().enumerate() {
        for (i, v) in values.iter().enumerate() {
            w[(side * len + i) * 2 + side] = v * scale;
        }
    }
    Linear {
        weight_t: Tensor::new(&[2 * len, 2], w),
        bias: Tensor::new(&[2], bias),
    }
}

/// The start and end SE convs `layer` of stage `k` stacked on the output
/// channels (start first), every value × `scale`: one conv with twice the
/// groups of either side on the stacked inputs.
pub fn stacked_se_conv(
    params: &Params,
    k: usize,
    layer: usize,
    scale: f32,
    spec: Conv2dSpec,
) -> Conv {
    let mut weight = Vec::new();
    let mut bias = Vec::new();
    let mut dims = Vec::new();
    for side in ["start_reg_conv", "end_reg_conv"] {
        let one = conv(
            params,
            &format!("{}.reg1se.{side}.{layer}", tbr_prefix(k)),
            spec,
        );
        dims = one.weight.dims;
        weight.extend(one.weight.data.iter().map(|v| v * scale));
        bias.extend(one.bias.data.iter().map(|v| v * scale));
    }
    dims[0] *= 2;
    let out = dims[0];
    Conv {
        weight: Tensor::new(&dims, weight),
        bias: Tensor::new(&[out], bias),
        spec,
    }
}

/// The first convs `prefixes` (kernel 3, `[C, H/g, 3]` each) as one
/// [`TapTable`], in the given column order.
pub fn tap_table(params: &Params, prefixes: &[String]) -> TapTable {
    let g = params.config().conv_groups;
    let w0 = params.get(&format!("{}.weight", prefixes[0]));
    let (c, inp_g, taps) = (w0.dims[0], w0.dims[1], w0.dims[2]);
    assert_eq!(taps, 3, "{}: kernel 3", prefixes[0]);
    let cg = c / g;
    let cols = prefixes.len() * 3 * cg;
    let rows = inp_g;
    let mut wt = vec![0.0f32; g * rows * cols];
    let mut bt = vec![0.0f32; g * cols];
    for (conv, p) in prefixes.iter().enumerate() {
        let w = params.get(&format!("{p}.weight")).data;
        let bias = params.get(&format!("{p}.bias")).data;
        for gi in 0..g {
            for o in 0..cg {
                for k in 0..3 {
                    let col = (conv * 3 + k) * cg + o;
                    for i in 0..inp_g {
                        wt[(gi * rows + i) * cols + col] = w[((gi * cg + o) * inp_g + i) * 3 + k];
                    }
                }
                bt[gi * cols + (conv * 3 + 1) * cg + o] = bias[gi * cg + o];
            }
        }
    }
    TapTable {
        weight: Tensor::new(&[g, rows, cols], wt),
        bias: Tensor::new(&[g, 1, cols], bt),
        convs: prefixes.len(),
        channels: c,
        groups: g,
    }
}

/// How the convs of `table`, one per region, read their sample `regions`
/// ((first sample, count) in the S samples), with gathers of at most
/// `chunk_bytes` at [`NOMINAL_PROPOSALS`] proposals.
pub fn tap_conv(
    cfg: &ModelConfig,
    table: TapTable,
    regions: &[(usize, usize)],
    chunk_bytes: usize,
) -> TapConv {
    let j_out = regions[0].1.div_ceil(2);
    assert!(regions.iter().all(|r| r.1.div_ceil(2) == j_out));
    assert_eq!(table.convs, regions.len(), "one conv per region");
    let sentinel = cfg.total_sample_num() as i64;
    let mut sample_index = Vec::with_capacity(j_out * regions.len() * 3);
    for j in 0..j_out {
        for &(first, count) in regions {
            for k in 0..3 {
                let s = (2 * j + k) as i64 - 1;
                sample_index.push(if (0..count as i64).contains(&s) {
                    first as i64 + s
                } else {
                    sentinel
                });
            }
        }
    }
    let samples = sentinel as usize + 1;
    let reads = TapReadMaps::new(samples, &sample_index, regions.len() * 3);
    TapConv {
        outputs_per_gather: outputs_per_gather(regions.len(), table.channels, j_out, chunk_bytes),
        channels: table.channels,
        table,
        sample_index,
        reads,
        regions: regions.len(),
        outputs: j_out,
    }
}

/// The grouped conv `prefix` whose kernel spans its input, as [`FullConv`].
pub fn full_conv(params: &Params, prefix: &str) -> FullConv {
    let g = params.config().conv_groups;
    let w = params.get(&format!("{prefix}.weight"));
    let (out, inp_g, k) = (w.dims[0], w.dims[1], w.dims[2]);
    let out_g = out / g;
    let rows = inp_g * k;
    let mut wt = vec![0.0f32; g * rows * out_g];
    for gi in 0..g {
        for o in 0..out_g {
            for r in 0..rows {
                wt[(gi * rows + r) * out_g + o] = w.data[(gi * out_g + o) * rows + r];
            }
        }
    }
    FullConv {
        weight: Tensor::new(&[g, rows, out_g], wt),
        bias: params.get(&format!("{prefix}.bias")),
    }
}

/// The decode factors of the XW outputs (dx, dw, IoU logit).
pub const XW_DECODE_FACTORS: [f32; 3] = [0.1, 0.2, 1.0];

/// Stage `k`'s `reg_1d_o.2` (a 1×1 conv on a length-1 signal) as a Linear
/// `[H, 3]` whose dx and dw outputs are pre-multiplied by 0.1 and 0.2.
pub fn xw_output(params: &Params, k: usize) -> Linear {
    let p = format!("{}.reg1xw.reg_1d_o.2", tbr_prefix(k));
    let w = params.get(&format!("{p}.weight"));
    let (out, h) = (w.dims[0], w.dims[1]);
    let mut w = Tensor::new(&[out, h], w.data);
    let mut b = params.get(&format!("{p}.bias"));
    for (row, scale) in XW_DECODE_FACTORS.into_iter().enumerate() {
        w.data[row * h..(row + 1) * h]
            .iter_mut()
            .for_each(|v| *v *= scale);
        b.data[row] *= scale;
    }
    linear_from(w, b)
}

fn stage(params: &Params, k: usize, chunk_bytes: usize) -> Stage {
    let cfg = params.config();
    let g = cfg.conv_groups;
    let p = tbr_prefix(k);
    let (ns, na) = (cfg.start_sample_num, cfg.action_sample_num);
    let s_total = cfg.total_sample_num();
    let down = |group| Conv2dSpec {
        kernel: 3,
        pad: 1,
        stride: 2,
        group,
    };
    let se_regions = [(0, ns), (ns + na, s_total - ns - na)];
    let taps = |convs| tap_table(params, &first_convs(k, convs));
    Stage {
        se_first: tap_conv(cfg, taps(SE_FIRST_CONVS), &se_regions, chunk_bytes),
        se_mid: stacked_se_conv(params, k, 2, 1.0, down(2 * g)),
        se_last: se_output(params, k, cfg.se_decode_scale_infer as f32),
        xw_first: tap_conv(cfg, taps(XW_FIRST_CONVS), &[(0, s_total)], chunk_bytes),
        xw_mid: conv(params, &format!("{p}.reg1xw.reg_1d_b.2"), down(g)),
        xw_full: full_conv(params, &format!("{p}.reg1xw.reg_1d_o.0")),
        xw_out: xw_output(params, k),
    }
}

/// TTN's matrices. Region bounds over D: start [s − rL, s], action [s, e],
/// end [e, e + rL]; sample i of n in a clamped region [α, β] of the unit
/// timeline sits at the fractional index + ½
/// `α·T(1 − r_i)/2 + β·T(1 + r_i)/2` with `r_i = (2i + 1)/n − 1` (affine_grid
/// and grid_sample with align_corners=False, unnormalised). With
/// `dynamic_time`, D and T are applied in the graph (both taken as 1 here).
pub fn ttn_tables(cfg: &ModelConfig, dynamic_time: bool) -> TtnTables {
    let (t, d) = if dynamic_time {
        (1.0, 1.0)
    } else {
        (cfg.temporal_scale as f64, cfg.timeline_seconds())
    };
    let r = cfg.prop_boundary_ratio;
    // Rows: s, e; columns: start a, b, action a, b, end a, b.
    let bounds = [
        [1.0 + r, 1.0, 1.0, 0.0, 0.0, -r],
        [-r, 0.0, 0.0, 1.0, 1.0, 1.0 + r],
    ];
    let bounds: Vec<f32> = bounds.iter().flatten().map(|v| (v / d) as f32).collect();
    let s_total = cfg.total_sample_num();
    let mut pos = vec![0.0f32; 6 * s_total];
    let mut offset = 0;
    let counts = [
        cfg.start_sample_num,
        cfg.action_sample_num,
        cfg.end_sample_num,
    ];
    for (region, n) in counts.into_iter().enumerate() {
        for i in 0..n {
            let ri = (2 * i + 1) as f64 / n as f64 - 1.0;
            pos[(2 * region) * s_total + offset + i] = (t * (1.0 - ri) / 2.0) as f32;
            pos[(2 * region + 1) * s_total + offset + i] = (t * (1.0 + ri) / 2.0) as f32;
        }
        offset += n;
    }
    TtnTables {
        region_bounds: Tensor::new(&[2, 6], bounds),
        sample_positions: Tensor::new(&[6, s_total], pos),
    }
}

/// The local window for `t` steps and window `w` (`tcanet_models::window`):
/// key positions and an additive mask, −inf on repeated (clamped) keys.
pub fn local_window(t: usize, w: usize) -> LocalWindow {
    let table = window_table(t, w);
    LocalWindow {
        index: table.index,
        mask: table
            .repeated
            .iter()
            .map(|&r| if r { f32::NEG_INFINITY } else { 0.0 })
            .collect(),
        dims: [t, w],
    }
}

#[cfg(test)]
mod tests;
