//! An independent f64 forward pass (inference) in plain Rust, written from
//! docs/MODEL.md with straightforward loops and none of the graph's folding or
//! layout tricks: `verify` and the tests compare ONNX Runtime against it.
use tcanet_models::params::{lgte_prefix, tbr_prefix};
use tcanet_models::{ModelConfig, NUM_STAGES};

use tcanet_models::checkpoint::Checkpoint;
use tcanet_models::window::local_window_keys;
use tcanet_models::LAYER_NORM_EPSILON;

/// Outputs of the three TBR stages for `B` videos of `N` proposals.
#[derive(Debug, Clone, PartialEq)]
pub struct StageOutputs {
    /// Refined proposals P_2, P_3, P_4, each `[B, N, 2]` row-major.
    pub proposals: [Vec<f64>; NUM_STAGES],
    /// IoU estimates of stages 1..3, each `[B, N]`.
    pub iou: [Vec<f64>; NUM_STAGES],
}

/// Runs the network on `features` `[B, C, T]` and `proposals` `[B, N, 2]`
/// (row-major; proposals in the network's units: seconds, or fractions of the
/// video with `normalize_by_duration`).
pub fn forward(
    ckpt: &Checkpoint,
    features: &[f32],
    proposals: &[f32],
    b: usize,
    n: usize,
) -> StageOutputs {
    forward_with_steps(ckpt, ckpt.config.temporal_scale, features, proposals, b, n)
}

/// The config a model exported with a symbolic T computes with for `t`
/// feature steps: `temporal_scale = t`, and with `normalize_by_duration` the
/// interval `1/t` (the timeline stays one video); otherwise the interval is
/// unchanged (the timeline spans `t * temporal_interval` seconds).
pub fn config_for_steps(cfg: &ModelConfig, t: usize) -> ModelConfig {
    let mut c = cfg.clone();
    c.temporal_scale = t;
    if c.normalize_by_duration {
        c.temporal_interval = 1.0 / t as f64;
    }
    c
}

/// [`forward`] on features of `t` steps `[B, C, t]`, as a model exported
/// with a symbolic T computes it ([`config_for_steps`]).
pub fn forward_with_steps(
    ckpt: &Checkpoint,
    t: usize,
    features: &[f32],
    proposals: &[f32],
    b: usize,
    n: usize,
) -> StageOutputs {
    let cfg = &config_for_steps(&ckpt.config, t);
    let c = cfg.feat_dim;
    assert_eq!(features.len(), b * c * t, "features must be [B, C, T]");
    assert_eq!(proposals.len(), b * n * 2, "proposals must be [B, N, 2]");
    let mut out = StageOutputs {
        proposals: Default::default(),
        iou: Default::default(),
    };
    for v in 0..b {
        let x: Vec<f64> = features[v * c * t..(v + 1) * c * t]
            .iter()
            .map(|&f| f as f64)
            .collect();
        let enc = encode(ckpt, cfg, &x);
        let mut props: Vec<[f64; 2]> = (0..n)
            .map(|i| {
                let o = (v * n + i) * 2;
                [proposals[o] as f64, proposals[o + 1] as f64]
            })
            .collect();
        for k in 1..=NUM_STAGES {
            let mut next = Vec::with_capacity(n);
            for p in &props {
                let (refined, iou) = tbr(ckpt, cfg, k, &enc, *p);
                out.proposals[k - 1].extend_from_slice(&refined);
                out.iou[k - 1].push(iou);
                next.push(refined);
            }
            props = next;
        }
    }
    out
}

/// Conv1d on `x` `[cin, len]` with torch weights `w` `[cout, cin/groups, k]`;
/// returns `[cout, out_len]` and `out_len`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn conv1d(
    x: &[f64],
    cin: usize,
    len: usize,
    w: &[f32],
    bias: &[f32],
    cout: usize,
    k: usize,
    groups: usize,
    pad: usize,
    stride: usize,
) -> (Vec<f64>, usize) {
    let out_len = (len + 2 * pad - k) / stride + 1;
    let (gin, gout) = (cin / groups, cout / groups);
    let mut y = vec![0.0; cout * out_len];
    for o in 0..cout {
        let g = o / gout;
        for j in 0..out_len {
            let mut acc = bias[o] as f64;
            for ci in 0..gin {
                let xrow = &x[(g * gin + ci) * len..(g * gin + ci + 1) * len];
                for kk in 0..k {
                    let pos = (j * stride + kk) as i64 - pad as i64;
                    if pos >= 0 && (pos as usize) < len {
                        acc += w[(o * gin + ci) * k + kk] as f64 * xrow[pos as usize];
                    }
                }
            }
            y[o * out_len + j] = acc;
        }
    }
    (y, out_len)
}

fn relu(v: &mut [f64]) {
    v.iter_mut().for_each(|x| *x = x.max(0.0));
}

/// Base encoder and LGTE layers: `[C, T]` → `[T, H]` (time-major).
fn encode(ckpt: &Checkpoint, cfg: &ModelConfig, x: &[f64]) -> Vec<f64> {
    let (c, t, h, g) = (
        cfg.feat_dim,
        cfg.temporal_scale,
        cfg.hidden_dim,
        cfg.conv_groups,
    );
    let p = |s: &str| ckpt.get(s);
    let (mut y, _) = conv1d(
        x,
        c,
        t,
        p("x_1d_b_f.0.weight"),
        p("x_1d_b_f.0.bias"),
        h,
        3,
        g,
        1,
        1,
    );
    relu(&mut y);
    let (mut y, _) = conv1d(
        &y,
        h,
        t,
        p("x_1d_b_f.2.weight"),
        p("x_1d_b_f.2.bias"),
        h,
        3,
        g,
        1,
        1,
    );
    relu(&mut y);
    let mut seq = vec![0.0; t * h];
    for ch in 0..h {
        for j in 0..t {
            seq[j * h + ch] = y[ch * t + j];
        }
    }
    for i in 0..cfg.lgte_num {
        seq = lgte(ckpt, cfg, i, &seq);
    }
    seq
}

/// `x W^T + b` for `x` `[rows, inp]`, torch `W` `[out, inp]`.
fn linear(x: &[f64], rows: usize, inp: usize, w: &[f32], bias: &[f32], out: usize) -> Vec<f64> {
    let mut y = vec![0.0; rows * out];
    for r in 0..rows {
        let xr = &x[r * inp..(r + 1) * inp];
        for o in 0..out {
            let wr = &w[o * inp..(o + 1) * inp];
            let mut acc = bias[o] as f64;
            for (a, b) in xr.iter().zip(wr) {
                acc += a * *b as f64;
            }
            y[r * out + o] = acc;
        }
    }
    y
}

fn layer_norm(x: &mut [f64], h: usize, w: &[f32], b: &[f32]) {
    for row in x.chunks_mut(h) {
        let mean = row.iter().sum::<f64>() / h as f64;
        let var = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / h as f64;
        let inv = 1.0 / (var + LAYER_NORM_EPSILON).sqrt();
        for (i, v) in row.iter_mut().enumerate() {
            *v = (*v - mean) * inv * w[i] as f64 + b[i] as f64;
        }
    }
}

/// One post-norm LGTE layer on `[T, H]`.
fn lgte(ckpt: &Checkpoint, cfg: &ModelConfig, i: usize, x: &[f64]) -> Vec<f64> {
    let h = cfg.hidden_dim;
    let lp = lgte_prefix(i);
    let p = |s: &str| ckpt.get(&format!("{lp}.{s}"));
    let attn = attention(ckpt, cfg, i, x);
    let mut x1: Vec<f64> = x.iter().zip(&attn).map(|(a, b)| a + b).collect();
    layer_norm(&mut x1, h, p("norm1.weight"), p("norm1.bias"));
    let t = cfg.temporal_scale;
    let mut f = linear(
        &x1,
        t,
        h,
        p("linear1.weight"),
        p("linear1.bias"),
        cfg.ffn_dim,
    );
    relu(&mut f);
    let f = linear(
        &f,
        t,
        cfg.ffn_dim,
        p("linear2.weight"),
        p("linear2.bias"),
        h,
    );
    let mut x2: Vec<f64> = x1.iter().zip(&f).map(|(a, b)| a + b).collect();
    layer_norm(&mut x2, h, p("norm2.weight"), p("norm2.bias"));
    x2
}

/// LGTE layer `i`'s multi-head self-attention on `[T, H]` (projections
/// included): per head, a full `[T, T]` softmax with −inf on the keys the
/// head may not attend to.
pub(crate) fn attention(ckpt: &Checkpoint, cfg: &ModelConfig, i: usize, x: &[f64]) -> Vec<f64> {
    let (t, h, hd) = (cfg.temporal_scale, cfg.hidden_dim, cfg.head_dim());
    let lp = lgte_prefix(i);
    let p = |s: &str| ckpt.get(&format!("{lp}.self_atten.scale_attention.{s}"));
    let qkv = linear(x, t, h, p("in_proj_weight"), p("in_proj_bias"), 3 * h);
    let scale = (hd as f64).powf(-0.5);
    let mut ctx = vec![0.0; t * h];
    let mut scores = vec![0.0; t];
    for head in 0..cfg.heads {
        let local = head < cfg.local_heads();
        for j in 0..t {
            let allowed = allowed_keys(cfg, local, j);
            let q = &qkv[j * 3 * h + head * hd..j * 3 * h + (head + 1) * hd];
            let mut max = f64::NEG_INFINITY;
            for (m, s) in scores.iter_mut().enumerate() {
                *s = if allowed[m] {
                    let kv = &qkv[m * 3 * h + h + head * hd..m * 3 * h + h + (head + 1) * hd];
                    q.iter().zip(kv).map(|(a, b)| a * scale * b).sum()
                } else {
                    f64::NEG_INFINITY
                };
                max = max.max(*s);
            }
            let mut denom = 0.0;
            for s in scores.iter_mut() {
                *s = (*s - max).exp();
                denom += *s;
            }
            for (m, s) in scores.iter().enumerate() {
                if *s == 0.0 {
                    continue;
                }
                let wgt = s / denom;
                let vv = &qkv[m * 3 * h + 2 * h + head * hd..m * 3 * h + 2 * h + (head + 1) * hd];
                for d in 0..hd {
                    ctx[j * h + head * hd + d] += wgt * vv[d];
                }
            }
        }
    }
    linear(&ctx, t, h, p("out_proj.weight"), p("out_proj.bias"), h)
}

/// Which keys query `j` may attend to: its local window, or all of them.
fn allowed_keys(cfg: &ModelConfig, local: bool, j: usize) -> Vec<bool> {
    let t = cfg.temporal_scale;
    if !local {
        return vec![true; t];
    }
    let mut a = vec![false; t];
    for key in local_window_keys(j, t, cfg.window_size) {
        a[key] = true;
    }
    a
}

/// Samples `n` points of region `[a, b]` (seconds) from `enc` `[T, H]`,
/// as affine_grid + grid_sample (bilinear, zero padding, align_corners=False).
/// Returns `[H, n]`.
fn sample_region(cfg: &ModelConfig, enc: &[f64], a: f64, b: f64, n: usize) -> Vec<f64> {
    let (t, h) = (cfg.temporal_scale, cfg.hidden_dim);
    let d = cfg.timeline_seconds();
    let an = 2.0 * (a / d).clamp(0.0, 1.0) - 1.0;
    let bn = 2.0 * (b / d).clamp(0.0, 1.0) - 1.0;
    let mut out = vec![0.0; h * n];
    for i in 0..n {
        let x = (an + bn) / 2.0 + (bn - an) / 2.0 * ((2 * i + 1) as f64 / n as f64 - 1.0);
        let u = ((x + 1.0) * t as f64 - 1.0) / 2.0;
        let i0 = u.floor();
        let frac = u - i0;
        for (idx, wgt) in [(i0 as i64, 1.0 - frac), (i0 as i64 + 1, frac)] {
            if idx >= 0 && (idx as usize) < t {
                let row = &enc[idx as usize * h..(idx as usize + 1) * h];
                for ch in 0..h {
                    out[ch * n + i] += wgt * row[ch];
                }
            }
        }
    }
    out
}

/// One TBR stage on one proposal: (refined proposal, IoU estimate).
fn tbr(
    ckpt: &Checkpoint,
    cfg: &ModelConfig,
    k: usize,
    enc: &[f64],
    p: [f64; 2],
) -> ([f64; 2], f64) {
    let (ns, na, ne) = (
        cfg.start_sample_num,
        cfg.action_sample_num,
        cfg.end_sample_num,
    );
    let [s, e] = p;
    let len = e - s;
    let r = cfg.prop_boundary_ratio;
    let start = sample_region(cfg, enc, s - r * len, s, ns);
    let action = sample_region(cfg, enc, s, e, na);
    let end = sample_region(cfg, enc, e, e + r * len, ne);
    let ds = se_branch(ckpt, cfg, k, &start, "start_reg_conv");
    let de = se_branch(ckpt, cfg, k, &end, "end_reg_conv");
    let h = cfg.hidden_dim;
    let total = ns + na + ne;
    let mut cat = vec![0.0; h * total];
    for ch in 0..h {
        cat[ch * total..ch * total + ns].copy_from_slice(&start[ch * ns..(ch + 1) * ns]);
        cat[ch * total + ns..ch * total + ns + na].copy_from_slice(&action[ch * na..(ch + 1) * na]);
        cat[ch * total + ns + na..(ch + 1) * total].copy_from_slice(&end[ch * ne..(ch + 1) * ne]);
    }
    let xw = xw_branch(ckpt, cfg, k, &cat);
    decode(cfg, p, [ds, de], xw)
}

/// A start or end regression branch of stage `k` on its region's samples
/// `[H, n]`: ds or de.
fn se_branch(ckpt: &Checkpoint, cfg: &ModelConfig, k: usize, x: &[f64], side: &str) -> f64 {
    let (h, g, se_h) = (cfg.hidden_dim, cfg.conv_groups, cfg.se_hidden_dim);
    let q = format!("{}.reg1se.{side}", tbr_prefix(k));
    let w = |s: &str| ckpt.get(&format!("{q}.{s}"));
    let n = x.len() / h;
    let (mut y, l) = conv1d(x, h, n, w("0.weight"), w("0.bias"), se_h, 3, g, 1, 2);
    relu(&mut y);
    let (mut y, l) = conv1d(&y, se_h, l, w("2.weight"), w("2.bias"), se_h, 3, g, 1, 2);
    relu(&mut y);
    let (y, _) = conv1d(&y, se_h, l, w("4.weight"), w("4.bias"), 1, l, 1, 0, 1);
    y[0]
}

/// The centre/width branch of stage `k` on all samples `[H, S]`: (dx, dw, t).
fn xw_branch(ckpt: &Checkpoint, cfg: &ModelConfig, k: usize, x: &[f64]) -> [f64; 3] {
    let (h, g) = (cfg.hidden_dim, cfg.conv_groups);
    let q = format!("{}.reg1xw", tbr_prefix(k));
    let w = |s: &str| ckpt.get(&format!("{q}.{s}"));
    let n = x.len() / h;
    let (mut y, l) = conv1d(
        x,
        h,
        n,
        w("reg_1d_b.0.weight"),
        w("reg_1d_b.0.bias"),
        h,
        3,
        g,
        1,
        2,
    );
    relu(&mut y);
    let (mut y, l) = conv1d(
        &y,
        h,
        l,
        w("reg_1d_b.2.weight"),
        w("reg_1d_b.2.bias"),
        h,
        3,
        g,
        1,
        2,
    );
    relu(&mut y);
    let (mut y, l) = conv1d(
        &y,
        h,
        l,
        w("reg_1d_o.0.weight"),
        w("reg_1d_o.0.bias"),
        h,
        l,
        g,
        0,
        1,
    );
    relu(&mut y);
    let (y, _) = conv1d(
        &y,
        h,
        l,
        w("reg_1d_o.2.weight"),
        w("reg_1d_o.2.bias"),
        3,
        1,
        1,
        0,
        1,
    );
    [y[0], y[1], y[2]]
}

/// Inference decoding of one proposal `p` from (ds, de) and (dx, dw, t):
/// (refined proposal, IoU estimate).
fn decode(cfg: &ModelConfig, p: [f64; 2], [ds, de]: [f64; 2], xw: [f64; 3]) -> ([f64; 2], f64) {
    let [s, e] = p;
    let len = e - s;
    let [dx, dw, logit] = xw;
    let gdec = cfg.se_decode_scale_infer;
    let se = [s + ds * len * gdec, e + de * len * gdec];
    let c = s + len / 2.0;
    let c2 = c + 0.1 * dx * len;
    let w2 = len * (0.2 * dw).exp();
    let xw = [c2 - w2 / 2.0, c2 + w2 / 2.0];
    let refined = [
        ((se[0] + xw[0]) / 2.0).max(0.0),
        ((se[1] + xw[1]) / 2.0).max(0.0),
    ];
    (refined, 1.0 / (1.0 + (-logit).exp()))
}
