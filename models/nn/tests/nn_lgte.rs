//! The local heads of an LGTE layer see exactly the clamped window; the
//! global heads see everything.
use std::collections::BTreeSet;
use tcanet_models::ModelConfig;
use tcanet_nn::{lgte_allowed_mask, Lgte};
use tch::{nn::VarStore, Device, Kind, Tensor};

/// `{clamp(j - w/2 + k, 0, t-1) : k in 0..w}`, written out here.
fn window(j: usize, t: usize, w: usize) -> BTreeSet<usize> {
    let mut set = BTreeSet::new();
    for k in 0..w {
        let pos = j as i64 - (w / 2) as i64 + k as i64;
        set.insert(pos.max(0).min(t as i64 - 1) as usize);
    }
    set
}

fn check_layer(cfg: &ModelConfig) {
    tch::manual_seed(3);
    let mut vs = VarStore::new(Device::Cpu);
    let layer = Lgte::new(&vs.root(), cfg);
    vs.double();
    let (t, heads) = (cfg.temporal_scale, cfg.heads);
    let x = Tensor::randn(
        [2, cfg.hidden_dim as i64, t as i64],
        (Kind::Double, Device::Cpu),
    );
    let probs = layer.attention_probs(&x, false);
    assert_eq!(probs.size(), [2, heads as i64, t as i64, t as i64]);
    let p: Vec<f64> = Vec::try_from(probs.reshape([-1])).unwrap();
    for b in 0..2 {
        for h in 0..heads {
            for j in 0..t {
                let row = &p[((b * heads + h) * t + j) * t..][..t];
                let seen: BTreeSet<usize> = (0..t).filter(|&i| row[i] > 0.0).collect();
                let want: BTreeSet<usize> = if h < heads / 2 {
                    window(j, t, cfg.window_size)
                } else {
                    (0..t).collect()
                };
                assert_eq!(seen, want, "head {h}, query {j}");
                let total: f64 = row.iter().sum();
                assert!(
                    (total - 1.0).abs() < 1e-12,
                    "head {h}, query {j}: sum {total}"
                );
            }
        }
    }
    let mask = lgte_allowed_mask(t, cfg.window_size, heads, heads / 2, Device::Cpu);
    let m: Vec<bool> = Vec::try_from(mask.reshape([-1])).unwrap();
    for h in 0..heads {
        for j in 0..t {
            let allowed: BTreeSet<usize> = (0..t).filter(|&i| m[(h * t + j) * t + i]).collect();
            let want: BTreeSet<usize> = if h < heads / 2 {
                window(j, t, cfg.window_size)
            } else {
                (0..t).collect()
            };
            assert_eq!(allowed, want, "mask head {h}, query {j}");
        }
    }
}

#[test]
fn local_heads_see_exactly_the_clamped_window() {
    let mut cfg = ModelConfig::tiny();
    cfg.temporal_scale = 24;
    cfg.temporal_interval = 1.0 / 24.0;
    check_layer(&cfg); // w = 9
    cfg.window_size = 4; // even window: j-2 ..= j+1
    check_layer(&cfg);
    cfg.window_size = 1;
    cfg.heads = 8;
    check_layer(&cfg);
}

#[test]
fn release_window_at_the_edges() {
    // Spelled out for w = 9, T = 24: the release's mask loop gives these sets.
    let m = lgte_allowed_mask(24, 9, 2, 1, Device::Cpu);
    let row = |j: i64| -> Vec<i64> {
        let r: Vec<bool> = Vec::try_from(m.get(0).get(j)).unwrap();
        (0..24).filter(|&i| r[i as usize]).collect()
    };
    assert_eq!(row(0), vec![0, 1, 2, 3, 4]);
    assert_eq!(row(2), vec![0, 1, 2, 3, 4, 5, 6]);
    assert_eq!(row(10), (6..=14).collect::<Vec<_>>());
    assert_eq!(row(23), vec![19, 20, 21, 22, 23]);
}

/// One LGTE layer in plain f64 (docs/MODEL.md "LGTE"), x [H][T] → [H][T].
fn lgte_reference(
    x: &[Vec<f64>],
    p: &dyn Fn(&str) -> Vec<f64>,
    heads: usize,
    window: usize,
    ffn: usize,
) -> Vec<Vec<f64>> {
    let (h, t) = (x.len(), x[0].len());
    let hd = h / heads;
    let (w_in, b_in) = (p("in_proj_weight"), p("in_proj_bias"));
    let (w_out, b_out) = (p("out_proj.weight"), p("out_proj.bias"));
    let lin = |w: &[f64], b: &[f64], v: &[f64], rows: usize| -> Vec<f64> {
        (0..rows)
            .map(|r| b[r] + (0..v.len()).map(|c| w[r * v.len() + c] * v[c]).sum::<f64>())
            .collect()
    };
    let norm = |v: &[f64], g: &[f64], b: &[f64]| -> Vec<f64> {
        let n = v.len() as f64;
        let mean = v.iter().sum::<f64>() / n;
        let var = v.iter().map(|a| (a - mean).powi(2)).sum::<f64>() / n;
        v.iter()
            .enumerate()
            .map(|(i, a)| (a - mean) / (var + 1e-5).sqrt() * g[i] + b[i])
            .collect()
    };
    let tokens: Vec<Vec<f64>> = (0..t).map(|j| (0..h).map(|c| x[c][j]).collect()).collect();
    let qkv: Vec<Vec<f64>> = tokens.iter().map(|v| lin(&w_in, &b_in, v, 3 * h)).collect();
    let mut out_tokens = Vec::new();
    for j in 0..t {
        let mut att = vec![0.0; h];
        for head in 0..heads {
            let allowed: Vec<usize> = if head < heads / 2 {
                window_set(j, t, window)
            } else {
                (0..t).collect()
            };
            let scores: Vec<f64> = allowed
                .iter()
                .map(|&i| {
                    (0..hd)
                        .map(|d| {
                            qkv[j][head * hd + d] / (hd as f64).sqrt() * qkv[i][h + head * hd + d]
                        })
                        .sum()
                })
                .collect();
            let m = scores.iter().cloned().fold(f64::MIN, f64::max);
            let z: f64 = scores.iter().map(|s| (s - m).exp()).sum();
            for (a, &i) in allowed.iter().enumerate() {
                let pr = (scores[a] - m).exp() / z;
                for d in 0..hd {
                    att[head * hd + d] += pr * qkv[i][2 * h + head * hd + d];
                }
            }
        }
        let att = lin(&w_out, &b_out, &att, h);
        let r1: Vec<f64> = tokens[j].iter().zip(&att).map(|(a, b)| a + b).collect();
        let n1 = norm(&r1, &p("norm1.weight"), &p("norm1.bias"));
        let f1: Vec<f64> = lin(&p("linear1.weight"), &p("linear1.bias"), &n1, ffn)
            .into_iter()
            .map(|v| v.max(0.0))
            .collect();
        let f2 = lin(&p("linear2.weight"), &p("linear2.bias"), &f1, h);
        let r2: Vec<f64> = n1.iter().zip(&f2).map(|(a, b)| a + b).collect();
        out_tokens.push(norm(&r2, &p("norm2.weight"), &p("norm2.bias")));
    }
    (0..h)
        .map(|c| (0..t).map(|j| out_tokens[j][c]).collect())
        .collect()
}

fn window_set(j: usize, t: usize, w: usize) -> Vec<usize> {
    window(j, t, w).into_iter().collect()
}

#[test]
fn lgte_layer_matches_a_plain_f64_reference() {
    let mut cfg = ModelConfig::tiny();
    cfg.temporal_scale = 12;
    cfg.temporal_interval = 1.0 / 12.0;
    cfg.hidden_dim = 8;
    cfg.heads = 4;
    cfg.ffn_dim = 6;
    cfg.window_size = 5;
    tch::manual_seed(9);
    let mut vs = VarStore::new(Device::Cpu);
    let layer = Lgte::new(&vs.root(), &cfg);
    vs.double();
    // Non-trivial biases and norms, so each parameter matters.
    tch::no_grad(|| {
        for (_, mut v) in vs.variables() {
            let noise = Tensor::randn_like(&v) * 0.3;
            let _ = v.g_add_(&noise);
        }
    });
    let vars = vs.variables();
    let get = |name: &str| -> Vec<f64> {
        let key = if name.starts_with("in_proj") || name.starts_with("out_proj") {
            format!("self_atten.scale_attention.{name}")
        } else {
            name.to_string()
        };
        Vec::try_from(vars[&key].reshape([-1])).unwrap()
    };
    let (h, t) = (cfg.hidden_dim, cfg.temporal_scale);
    let x = Tensor::randn([1, h as i64, t as i64], (Kind::Double, Device::Cpu));
    let got: Vec<f64> = Vec::try_from(layer.forward(&x, false).reshape([-1])).unwrap();
    let xv: Vec<f64> = Vec::try_from(x.reshape([-1])).unwrap();
    let x2: Vec<Vec<f64>> = (0..h).map(|c| xv[c * t..(c + 1) * t].to_vec()).collect();
    let want = lgte_reference(&x2, &get, cfg.heads, cfg.window_size, cfg.ffn_dim);
    for c in 0..h {
        for j in 0..t {
            let (g, w) = (got[c * t + j], want[c][j]);
            assert!((g - w).abs() < 1e-10, "channel {c}, step {j}: {g} vs {w}");
        }
    }
}
