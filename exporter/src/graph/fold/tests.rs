//! Each folded form against the unfolded computation it replaces, on random
//! weights and inputs (the convolutions unfolded by the f64 reference's
//! `conv1d`).
use std::collections::BTreeMap;
use std::path::PathBuf;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tcanet_models::checkpoint::Checkpoint;
use tcanet_models::ModelConfig;

use super::*;
use crate::random_weights::random_weights;
use crate::reference::conv1d;

/// A checkpoint in memory with random weights for `cfg`.
fn checkpoint(cfg: &ModelConfig, seed: u64) -> Checkpoint {
    Checkpoint {
        path: PathBuf::from("random.safetensors"),
        config: cfg.clone(),
        config_embedded: true,
        position: Default::default(),
        tensors: random_weights(cfg, seed).unwrap(),
        train_state: None,
        sha256: String::new(),
        metadata: BTreeMap::new(),
    }
}

/// A config unlike the presets in the folded dimensions: 2 groups, unequal
/// region sizes, an odd action count.
fn odd_config() -> ModelConfig {
    ModelConfig {
        feat_dim: 12,
        temporal_scale: 30,
        temporal_interval: 0.5,
        normalize_by_duration: false,
        hidden_dim: 16,
        conv_groups: 2,
        heads: 4,
        ffn_dim: 24,
        start_sample_num: 6,
        end_sample_num: 6,
        action_sample_num: 11,
        prop_boundary_ratio: 0.3,
        se_hidden_dim: 8,
        ..ModelConfig::tiny()
    }
}

fn random_vec(rng: &mut ChaCha8Rng, n: usize) -> Vec<f64> {
    (0..n).map(|_| rng.gen_range(-1.0..1.0)).collect()
}

fn assert_close(a: &[f64], b: &[f64], what: &str) {
    assert_eq!(a.len(), b.len(), "{what}: sizes");
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!(
            (x - y).abs() <= 1e-5 * (1.0 + y.abs()),
            "{what}[{i}]: folded {x} vs unfolded {y}"
        );
    }
}

/// `x [rows, in] @ weight_t + bias`.
fn apply_linear(l: &Linear, x: &[f64]) -> Vec<f64> {
    let (inp, out) = (l.weight_t.dims[0], l.weight_t.dims[1]);
    let rows = x.len() / inp;
    let mut y = vec![0.0; rows * out];
    for r in 0..rows {
        for o in 0..out {
            y[r * out + o] = l.bias.data[o] as f64
                + (0..inp)
                    .map(|i| x[r * inp + i] * l.weight_t.data[i * out + o] as f64)
                    .sum::<f64>();
        }
    }
    y
}

/// `x [T, H] @ p.weight[head]` (+ bias): `[T, hd]`.
fn project(p: &HeadProjection, head: usize, x: &[f64]) -> Vec<f64> {
    let (h, hd) = (p.weight.dims[1], p.weight.dims[2]);
    let t = x.len() / h;
    let mut y = vec![0.0; t * hd];
    for r in 0..t {
        for d in 0..hd {
            let bias = p
                .bias
                .as_ref()
                .map_or(0.0, |b| b.data[head * hd + d] as f64);
            y[r * hd + d] = bias
                + (0..h)
                    .map(|i| x[r * h + i] * p.weight.data[(head * h + i) * hd + d] as f64)
                    .sum::<f64>();
        }
    }
    y
}

/// The folded attention as the graph computes it: per head group, q/k/v
/// projections (no key or value bias), softmax over the window keys
/// (local) or all keys (global), heads merged, output projection.
fn folded_attention(a: &Attention, cfg: &ModelConfig, x: &[f64]) -> Vec<f64> {
    let (t, h, hd) = (cfg.temporal_scale, cfg.hidden_dim, cfg.head_dim());
    let mut ctx = vec![0.0; t * h];
    for (group, first_head) in [(0, 0), (1, cfg.local_heads())] {
        for hh in 0..a.query[group].weight.dims[0] {
            let (q, k, v) = (
                project(&a.query[group], hh, x),
                project(&a.key[group], hh, x),
                project(&a.value[group], hh, x),
            );
            for j in 0..t {
                let keys: Vec<usize> = if group == 0 {
                    tcanet_models::window::local_window_keys(j, t, cfg.window_size)
                } else {
                    (0..t).collect()
                };
                let scores: Vec<f64> = keys
                    .iter()
                    .map(|&m| (0..hd).map(|d| q[j * hd + d] * k[m * hd + d]).sum())
                    .collect();
                let max = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let e: Vec<f64> = scores.iter().map(|s| (s - max).exp()).collect();
                let sum: f64 = e.iter().sum();
                for (&m, w) in keys.iter().zip(&e) {
                    for d in 0..hd {
                        ctx[j * h + (first_head + hh) * hd + d] += w / sum * v[m * hd + d];
                    }
                }
            }
        }
    }
    apply_linear(&a.out_proj, &ctx)
}

#[test]
fn folded_attention_equals_the_reference_attention() {
    for cfg in [ModelConfig::tiny(), odd_config()] {
        let ckpt = checkpoint(&cfg, 1);
        let params = Params::new(&ckpt);
        let x = random_vec(
            &mut ChaCha8Rng::seed_from_u64(2),
            cfg.temporal_scale * cfg.hidden_dim,
        );
        // Biases large enough that dropping or moving one would show.
        let folded = folded_attention(&attention(&params, 1), &cfg, &x);
        let unfolded = crate::reference::attention(&ckpt, &cfg, 1, &x);
        assert_close(&folded, &unfolded, "attention");
        let a = attention(&params, 1);
        assert!(a.key.iter().chain(&a.value).all(|p| p.bias.is_none()));
        assert!(a.query.iter().all(|p| p.bias.is_some()));
    }
}

#[test]
fn xw_output_has_the_decode_factors_folded_in() {
    let cfg = odd_config();
    let ckpt = checkpoint(&cfg, 3);
    let params = Params::new(&ckpt);
    let h = cfg.hidden_dim;
    let x = random_vec(&mut ChaCha8Rng::seed_from_u64(4), h);
    let p = "tbr2.reg1xw.reg_1d_o.2";
    let (y, _) = conv1d(
        &x,
        h,
        1,
        ckpt.get(&format!("{p}.weight")),
        ckpt.get(&format!("{p}.bias")),
        3,
        1,
        1,
        0,
        1,
    );
    let unfolded = [y[0] * 0.1, y[1] * 0.2, y[2]];
    assert_close(
        &apply_linear(&xw_output(&params, 2), &x),
        &unfolded,
        "dx dw t",
    );
}

#[test]
fn stacked_se_convs_equal_the_two_branches() {
    let cfg = odd_config();
    let ckpt = checkpoint(&cfg, 5);
    let params = Params::new(&ckpt);
    let (e, g) = (cfg.se_hidden_dim, cfg.conv_groups);
    let mut rng = ChaCha8Rng::seed_from_u64(6);
    let len = 7;
    let x = random_vec(&mut rng, 2 * e * len); // start channels, then end
    let se = cfg.se_decode_scale_infer;
    for (layer, k, pad, stride, groups, scale) in [
        (2, 3, 1, 2, g, 1.0),
        (4, cfg.se_final_kernel(), 0, 1, 1, se),
    ] {
        let len_in = if layer == 4 { k } else { len };
        let x = &x[..2 * e * len_in];
        let mut unfolded = Vec::new();
        for (side, half) in ["start_reg_conv", "end_reg_conv"]
            .iter()
            .zip(x.chunks(e * len_in))
        {
            let p = format!("tbr3.reg1se.{side}.{layer}");
            let out = ckpt.get(&format!("{p}.bias")).len();
            let (y, _) = conv1d(
                half,
                e,
                len_in,
                ckpt.get(&format!("{p}.weight")),
                ckpt.get(&format!("{p}.bias")),
                out,
                k,
                groups,
                pad,
                stride,
            );
            unfolded.extend(y.iter().map(|v| v * scale));
        }
        let folded = if layer == 4 {
            // The last convs as one Linear on the stacked, flattened inputs.
            apply_linear(&se_output(&params, 3, scale as f32), x)
        } else {
            let spec = Conv2dSpec {
                kernel: k,
                pad,
                stride,
                group: 2 * groups,
            };
            let c = stacked_se_conv(&params, 3, layer, scale as f32, spec);
            conv1d(
                x,
                2 * e,
                len_in,
                &c.weight.data,
                &c.bias.data,
                c.weight.dims[0],
                k,
                2 * groups,
                pad,
                stride,
            )
            .0
        };
        assert_close(&folded, &unfolded, &format!("layer {layer}"));
    }
}

#[test]
fn full_conv_is_the_grouped_conv_spanning_its_input() {
    let cfg = odd_config();
    let ckpt = checkpoint(&cfg, 7);
    let params = Params::new(&ckpt);
    let (h, g, k) = (cfg.hidden_dim, cfg.conv_groups, cfg.xw_final_kernel());
    let p = "tbr1.reg1xw.reg_1d_o.0";
    let fc = full_conv(&params, p);
    let mut rng = ChaCha8Rng::seed_from_u64(8);
    for _ in 0..3 {
        let x = random_vec(&mut rng, h * k); // [H, K]
        let (unfolded, _) = conv1d(
            &x,
            h,
            k,
            ckpt.get(&format!("{p}.weight")),
            ckpt.get(&format!("{p}.bias")),
            h,
            k,
            g,
            0,
            1,
        );
        let (rows, og) = (fc.weight.dims[1], fc.weight.dims[2]);
        let folded: Vec<f64> = (0..h)
            .map(|oc| {
                let (gi, o) = (oc / og, oc % og);
                fc.bias.data[oc] as f64
                    + (0..rows)
                        .map(|r| x[gi * rows + r] * fc.weight.data[(gi * rows + r) * og + o] as f64)
                        .sum::<f64>()
            })
            .collect();
        assert_close(&folded, &unfolded, "reg_1d_o.0");
    }
}

/// `table [rows, cols]` linearly interpolated at `u` along the rows, zero
/// outside (grid_sample's zero padding).
fn interpolate(table: &[f64], cols: usize, u: f64) -> Vec<f64> {
    let rows = table.len() / cols;
    let i0 = u.floor();
    let f = u - i0;
    let mut out = vec![0.0; cols];
    for (i, w) in [(i0 as i64, 1.0 - f), (i0 as i64 + 1, f)] {
        if (0..rows as i64).contains(&i) {
            for c in 0..cols {
                out[c] += w * table[i as usize * cols + c];
            }
        }
    }
    out
}

/// The graph's way: the tap table (per group, on the features padded with
/// one zero step on each side and a column of ones, against the weights
/// with their bias row), read at the rows and with the weights that the
/// read maps give from the samples' left neighbours and fractions (the
/// sentinel sits at u = −1), summed over the 6 reads of each output.
/// Returns `[regions, C, J]` (as the unfolded convs).
fn tap_conv_output(tc: &TapConv, feats: &[f64], t: usize, u: &[f64]) -> Vec<f64> {
    let table = &tc.table;
    let weight = table.weight_with_bias_row();
    let (g, inp_g, cols) = (table.groups, table.weight.dims[1], table.weight.dims[2]);
    assert_eq!(weight.dims, [g, inp_g + 1, cols]);
    let h = g * inp_g;
    // [(T+2), g, H/g + 1]: zero steps around the timeline, ones last.
    let mut padded = vec![0.0; (t + 2) * g * (inp_g + 1)];
    for step in 0..t + 2 {
        for gi in 0..g {
            let row = &mut padded[(step * g + gi) * (inp_g + 1)..][..inp_g + 1];
            if (1..=t).contains(&step) {
                row[..inp_g].copy_from_slice(&feats[(step - 1) * h + gi * inp_g..][..inp_g]);
            }
            row[inp_g] = 1.0;
        }
    }
    // G[gi]: [(T+2), cols]
    let tables: Vec<Vec<f64>> = (0..g)
        .map(|gi| {
            let mut tab = vec![0.0; (t + 2) * cols];
            for step in 0..t + 2 {
                let x = &padded[(step * g + gi) * (inp_g + 1)..][..inp_g + 1];
                for col in 0..cols {
                    tab[step * cols + col] = (0..=inp_g)
                        .map(|i| x[i] * weight.data[(gi * (inp_g + 1) + i) * cols + col] as f64)
                        .sum::<f64>();
                }
            }
            tab
        })
        .collect();
    // The samples' padded left neighbours and fractions, the sentinel last.
    let mut left: Vec<f64> = u.iter().map(|x| x.floor() + 1.0).collect();
    let mut frac: Vec<f64> = u.iter().map(|x| x - x.floor()).collect();
    left.push(0.0);
    frac.push(0.0);
    let m = &tc.reads;
    let n_cols = m.row_offset.data.len();
    let affine = |x: &[f64], select: &Tensor, offset: &Tensor, col: usize| -> f64 {
        let sum: f64 = x
            .iter()
            .enumerate()
            .map(|(s, v)| v * select.data[s * n_cols + col] as f64)
            .sum();
        sum + offset.data[col] as f64
    };
    let (c, j_out, nb, cg) = (tc.channels, tc.outputs, tc.regions, tc.channels / g);
    assert_eq!(n_cols, j_out * nb * 6);
    let mut out = vec![0.0; nb * c * j_out];
    for j in 0..j_out {
        for r in 0..nb {
            for oc in 0..c {
                let (gi, o) = (oc / cg, oc % cg);
                let mut acc = 0.0;
                for read in 0..6 {
                    let col = (j * nb + r) * 6 + read;
                    let row = affine(&left, &m.row_select, &m.row_offset, col);
                    let w = affine(&frac, &m.weight_select, &m.weight_offset, col);
                    assert_eq!(row, row.round(), "whole row numbers");
                    let (step, row_in_step) = (
                        row as usize / tc.rows_per_step(),
                        row as usize % tc.rows_per_step(),
                    );
                    acc += w * tables[gi][step * cols + row_in_step * cg + o];
                }
                out[(r * c + oc) * j_out + j] = acc;
            }
        }
    }
    out
}

#[test]
fn tap_convs_equal_the_convs_over_interpolated_samples() {
    for cfg in [ModelConfig::tiny(), odd_config()] {
        let ckpt = checkpoint(&cfg, 9);
        let (t, h, g) = (cfg.temporal_scale, cfg.hidden_dim, cfg.conv_groups);
        let s_total = cfg.total_sample_num();
        let mut rng = ChaCha8Rng::seed_from_u64(10);
        let feats = random_vec(&mut rng, t * h); // [T, H], time-major
                                                 // Sample positions anywhere in [−1, T − ½], some on the grid.
        let u: Vec<f64> = (0..s_total)
            .map(|i| match i % 5 {
                0 => (i % t) as f64,
                1 => -1.0 + rng.gen_range(0.0..1.0),
                _ => rng.gen_range(-1.0..t as f64 - 0.5),
            })
            .collect();
        let samples: Vec<Vec<f64>> = u.iter().map(|&x| interpolate(&feats, h, x)).collect();
        let net = fold_network(&ckpt, &ExportOptions::default());
        let (ns, na) = (cfg.start_sample_num, cfg.action_sample_num);
        for k in 1..=NUM_STAGES {
            let stage = &net.stages[k - 1];
            let cases = [
                (
                    &stage.se_first,
                    vec![
                        ("reg1se.start_reg_conv.0", 0, ns),
                        ("reg1se.end_reg_conv.0", ns + na, s_total - ns - na),
                    ],
                ),
                (&stage.xw_first, vec![("reg1xw.reg_1d_b.0", 0, s_total)]),
            ];
            for (tc, regions) in cases {
                let mut unfolded = Vec::new();
                for (name, first, count) in regions {
                    let p = format!("tbr{k}.{name}");
                    // Channels-first [H, count] samples of the region.
                    let mut x = vec![0.0; h * count];
                    for (i, s) in samples[first..first + count].iter().enumerate() {
                        for ch in 0..h {
                            x[ch * count + i] = s[ch];
                        }
                    }
                    let w = ckpt.get(&format!("{p}.weight"));
                    let b = ckpt.get(&format!("{p}.bias"));
                    let (y, _) = conv1d(&x, h, count, w, b, b.len(), 3, g, 1, 2);
                    unfolded.extend(y);
                }
                let folded = tap_conv_output(tc, &feats, t, &u);
                assert_close(&folded, &unfolded, &format!("stage {k} first conv"));
            }
        }
    }
}

#[test]
fn ttn_tables_give_the_grid_sample_positions() {
    for cfg in [ModelConfig::tiny(), odd_config(), ModelConfig::hacs()] {
        let tables = ttn_tables(&cfg, false);
        let (t, d, r) = (
            cfg.temporal_scale as f64,
            cfg.timeline_seconds(),
            cfg.prop_boundary_ratio,
        );
        let s_total = cfg.total_sample_num();
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        for _ in 0..20 {
            let s = rng.gen_range(-0.2 * d..d);
            let e = s + rng.gen_range(0.0..0.6 * d);
            // Unfolded: normalise each region to [−1, 1], place the samples,
            // unnormalise with align_corners=False.
            let mut unfolded = Vec::new();
            let len = e - s;
            for (a, b, n) in [
                (s - r * len, s, cfg.start_sample_num),
                (s, e, cfg.action_sample_num),
                (e, e + r * len, cfg.end_sample_num),
            ] {
                let an = 2.0 * (a / d).clamp(0.0, 1.0) - 1.0;
                let bn = 2.0 * (b / d).clamp(0.0, 1.0) - 1.0;
                for i in 0..n {
                    let x =
                        (an + bn) / 2.0 + (bn - an) / 2.0 * ((2 * i + 1) as f64 / n as f64 - 1.0);
                    unfolded.push(((x + 1.0) * t - 1.0) / 2.0);
                }
            }
            // Folded: bounds = [s, e] @ M, clamped; u + ½ = bounds @ P.
            let bounds: Vec<f64> = (0..6)
                .map(|c| {
                    (s * tables.region_bounds.data[c] as f64
                        + e * tables.region_bounds.data[6 + c] as f64)
                        .clamp(0.0, 1.0)
                })
                .collect();
            let folded: Vec<f64> = (0..s_total)
                .map(|i| {
                    (0..6)
                        .map(|c| bounds[c] * tables.sample_positions.data[c * s_total + i] as f64)
                        .sum::<f64>()
                        - 0.5
                })
                .collect();
            for (f, u) in folded.iter().zip(&unfolded) {
                // float32 constants: a few 1e-7 of T.
                assert!((f - u).abs() <= 1e-6 * t, "{f} vs {u}");
            }
        }
    }
}

#[test]
fn local_window_masks_exactly_the_repeated_keys() {
    let w = local_window(6, 5);
    assert_eq!(w.dims, [6, 5]);
    assert_eq!(&w.index[..5], &[0, 0, 0, 1, 2]);
    assert_eq!(
        &w.mask[..5],
        &[0.0, f32::NEG_INFINITY, f32::NEG_INFINITY, 0.0, 0.0]
    );
    assert!(w.mask[10..15].iter().all(|&m| m == 0.0));
}

#[test]
fn every_folded_tensor_has_consistent_dimensions() {
    let cfg = ModelConfig::hacs();
    let net = fold_network(&checkpoint(&cfg, 12), &ExportOptions::default());
    let (h, g) = (cfg.hidden_dim, cfg.conv_groups);
    assert_eq!(net.encoder[0].weight.dims, [h, cfg.feat_dim / g, 1, 3]);
    assert_eq!(net.lgtes.len(), cfg.lgte_num);
    let hd = cfg.head_dim();
    assert_eq!(
        net.lgtes[0].attention.query[1].weight.dims,
        [cfg.heads - cfg.local_heads(), h, hd]
    );
    assert_eq!(
        net.window.as_ref().unwrap().dims,
        [cfg.temporal_scale, cfg.window_size]
    );
    let st = &net.stages[2];
    assert_eq!(st.xw_first.table.weight.dims, [g, h / g, 3 * h / g]);
    assert_eq!(
        st.se_first.table.weight.dims,
        [g, h / g, 2 * 3 * cfg.se_hidden_dim / g]
    );
    assert_eq!(st.se_first.rows_per_step(), 6);
    assert_eq!(st.se_first.outputs, 16);
    assert_eq!(st.xw_first.outputs, 64);
    assert_eq!(
        st.se_mid.weight.dims,
        [2 * cfg.se_hidden_dim, cfg.se_hidden_dim / g, 1, 3]
    );
    assert_eq!(st.se_last.weight_t.dims, [2 * cfg.se_hidden_dim * 8, 2]);
    assert_eq!(st.xw_full.weight.dims, [g, h / g * 32, h / g]);
    assert_eq!(st.xw_out.weight_t.dims, [h, 3]);
    assert!(fold_network(
        &checkpoint(&cfg, 12),
        &ExportOptions {
            dynamic_time: true,
            ..Default::default()
        }
    )
    .window
    .is_none());
}
