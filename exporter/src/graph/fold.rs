//! Weight folding, done before any node is emitted: pure functions from a
//! checked checkpoint (and its config) to the float32 arrays the graph
//! stores. Each folding is exact in real arithmetic:
//!
//! * the query scaling `head_dim^−½` into the first H rows of the packed
//!   in-projection ([`in_projection`]);
//! * torch Linear weights transposed to `[in, out]` ([`linear`]);
//! * Conv1d weights as Conv2d weights of height 1 ([`conv`]); the start and
//!   end SE convs stacked on the output channels, run as one conv with twice
//!   the groups ([`stacked_se_conv`]), the inference decode scale g folded
//!   into the last one;
//! * the first conv of each TBR branch rearranged into tap weights applied to
//!   the features before sampling, and the table of which sample each output
//!   tap reads ([`tap_conv`]);
//! * the kernel-spans-the-input `reg_1d_o.0` as per-group matmul weights
//!   ([`full_conv`]); the decode factors 0.1 and 0.2 into the dx and dw rows
//!   of `reg_1d_o.2` ([`xw_output`]);
//! * TTN's region bounds and sample positions as two matrices
//!   ([`ttn_tables`]), and the local attention window ([`local_window`]).
//!
//! The unit tests compare each folded form with the unfolded computation.
use std::collections::HashMap;

use tcanet_models::checkpoint::Checkpoint;
use tcanet_models::params::{lgte_prefix, tbr_prefix};
use tcanet_models::window::window_table;
use tcanet_models::{param_specs, ModelConfig, NUM_STAGES};

use crate::builder::Conv2dSpec;

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

/// One LGTE layer.
#[derive(Debug, Clone, PartialEq)]
pub struct Lgte {
    /// Packed q/k/v in-projection `[H, 3H]`, queries pre-scaled.
    pub in_proj: Linear,
    /// Output projection `[H, H]`.
    pub out_proj: Linear,
    /// FFN `[H, ffn]`.
    pub linear1: Linear,
    /// FFN `[ffn, H]`.
    pub linear2: Linear,
    /// After attention.
    pub norm1: LayerNorm,
    /// After the FFN.
    pub norm2: LayerNorm,
}

/// The first conv (kernel 3, stride 2, padding 1) of a TBR branch, in the
/// form applied before sampling: tap k of output channel o is the matmul
/// column `(region, k, o)` of the features per conv group, and output j of
/// a region reads its sample `2j + k − 1` for tap k (the sentinel sample S
/// when that is outside the region: the conv's zero padding).
#[derive(Debug, Clone, PartialEq)]
pub struct TapConv {
    /// `[groups, H/groups, regions·3·C/groups]`: per group, columns
    /// ordered (region, tap, output channel within the group).
    pub tap_weight: Tensor,
    /// `[regions, 1, C]`.
    pub bias: Tensor,
    /// `[regions, J, 3]`: the sample (0..S, or S for the sentinel) each
    /// output tap reads.
    pub sample_index: Vec<i64>,
    /// Regions (convs with their own weights) sharing this table.
    pub regions: usize,
    /// Outputs per region, J.
    pub outputs: usize,
    /// Output channels of one region's conv, C.
    pub channels: usize,
    /// Conv groups.
    pub groups: usize,
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
    /// Start and end `.0` convs, before sampling (two regions).
    pub se_first: TapConv,
    /// Start and end `.2` convs stacked (twice the groups).
    pub se_mid: Conv,
    /// Start and end `.4` convs stacked (2 groups), × the decode scale g.
    pub se_last: Conv,
    /// `reg_1d_b.0`, before sampling (one region: all samples).
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
    /// The LGTE layers.
    pub lgtes: Vec<Lgte>,
    /// The window table (fixed T only; built in the graph otherwise).
    pub window: Option<LocalWindow>,
    /// TTN's matrices (shared by the stages).
    pub ttn: TtnTables,
    /// The TBR stages 1..=NUM_STAGES.
    pub stages: Vec<Stage>,
}

/// Folds every weight of `ckpt` (see the module documentation). With
/// `dynamic_time` T is symbolic: no window table, and the TTN matrices are
/// per unit of T and D.
pub fn fold_network(ckpt: &Checkpoint, dynamic_time: bool) -> Network {
    let params = Params::new(ckpt);
    let cfg = &ckpt.config;
    let g = cfg.conv_groups;
    let same = |group| Conv2dSpec {
        kernel: 3,
        pad: 1,
        stride: 1,
        group,
    };
    Network {
        encoder: [
            conv(&params, "x_1d_b_f.0", same(g)),
            conv(&params, "x_1d_b_f.2", same(g)),
        ],
        lgtes: (0..cfg.lgte_num).map(|i| lgte(&params, i)).collect(),
        window: (!dynamic_time).then(|| local_window(cfg.temporal_scale, cfg.window_size)),
        ttn: ttn_tables(cfg, dynamic_time),
        stages: (1..=NUM_STAGES).map(|k| stage(&params, k)).collect(),
    }
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

/// LGTE layer `i`'s packed in-projection with the query scaling
/// `head_dim^−½` folded into its first H rows (weight and bias).
pub fn in_projection(params: &Params, i: usize) -> Linear {
    let cfg = params.config();
    let h = cfg.hidden_dim;
    let p = format!("{}.self_atten.scale_attention", lgte_prefix(i));
    let mut w = params.get(&format!("{p}.in_proj_weight"));
    let mut b = params.get(&format!("{p}.in_proj_bias"));
    let scale = (cfg.head_dim() as f64).powf(-0.5) as f32;
    w.data[..h * h].iter_mut().for_each(|v| *v *= scale);
    b.data[..h].iter_mut().for_each(|v| *v *= scale);
    linear_from(w, b)
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
        in_proj: in_projection(params, i),
        out_proj: linear(params, &format!("{lp}.self_atten.scale_attention.out_proj")),
        linear1: linear(params, &format!("{lp}.linear1")),
        linear2: linear(params, &format!("{lp}.linear2")),
        norm1: layer_norm(params, &format!("{lp}.norm1")),
        norm2: layer_norm(params, &format!("{lp}.norm2")),
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

/// The first convs `prefixes` (kernel 3, `[C, H/g, 3]` each) of the sample
/// `regions` ((first sample, count) in the S samples, one per conv) as a
/// [`TapConv`].
pub fn tap_conv(params: &Params, prefixes: &[String], regions: &[(usize, usize)]) -> TapConv {
    let cfg = params.config();
    let g = cfg.conv_groups;
    let nb = regions.len();
    assert_eq!(prefixes.len(), nb);
    let w0 = params.get(&format!("{}.weight", prefixes[0]));
    let (c, inp_g, taps) = (w0.dims[0], w0.dims[1], w0.dims[2]);
    assert_eq!(taps, 3, "{}: kernel 3", prefixes[0]);
    let cg = c / g;
    let j_out = regions[0].1.div_ceil(2);
    assert!(regions.iter().all(|r| r.1.div_ceil(2) == j_out));
    let cols = nb * 3 * cg;
    let mut wt = vec![0.0f32; g * inp_g * cols];
    let mut bias = vec![0.0f32; nb * c];
    for (r, p) in prefixes.iter().enumerate() {
        let w = params.get(&format!("{p}.weight")).data;
        let bs = params.get(&format!("{p}.bias")).data;
        bias[r * c..(r + 1) * c].copy_from_slice(&bs);
        for gi in 0..g {
            for o in 0..cg {
                for k in 0..3 {
                    let col = (r * 3 + k) * cg + o;
                    for i in 0..inp_g {
                        wt[(gi * inp_g + i) * cols + col] = w[((gi * cg + o) * inp_g + i) * 3 + k];
                    }
                }
            }
        }
    }
    TapConv {
        tap_weight: Tensor::new(&[g, inp_g, cols], wt),
        bias: Tensor::new(&[nb, 1, c], bias),
        sample_index: sample_index(regions, j_out, cfg.total_sample_num()),
        regions: nb,
        outputs: j_out,
        channels: c,
        groups: g,
    }
}

/// `[regions, J, 3]`: sample `first + 2j + k − 1` of each region, or
/// `sentinel` where that is outside the region.
fn sample_index(regions: &[(usize, usize)], j_out: usize, sentinel: usize) -> Vec<i64> {
    let mut index = Vec::with_capacity(regions.len() * j_out * 3);
    for &(first, count) in regions {
        for j in 0..j_out {
            for k in 0..3 {
                let s = (2 * j + k) as i64 - 1;
                index.push(if (0..count as i64).contains(&s) {
                    first as i64 + s
                } else {
                    sentinel as i64
                });
            }
        }
    }
    index
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

fn stage(params: &Params, k: usize) -> Stage {
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
    let se_last = Conv2dSpec {
        kernel: cfg.se_final_kernel(),
        pad: 0,
        stride: 1,
        group: 2,
    };
    let se_first = tap_conv(
        params,
        &[
            format!("{p}.reg1se.start_reg_conv.0"),
            format!("{p}.reg1se.end_reg_conv.0"),
        ],
        &[(0, ns), (ns + na, s_total - ns - na)],
    );
    Stage {
        se_first,
        se_mid: stacked_se_conv(params, k, 2, 1.0, down(2 * g)),
        se_last: stacked_se_conv(params, k, 4, cfg.se_decode_scale_infer as f32, se_last),
        xw_first: tap_conv(params, &[format!("{p}.reg1xw.reg_1d_b.0")], &[(0, s_total)]),
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
