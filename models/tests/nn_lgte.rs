//! The local heads of an LGTE layer see exactly the clamped window; the
//! global heads see everything.
#![cfg(feature = "tch")]
use std::collections::BTreeSet;
use tcanet_models::nn::{lgte_allowed_mask, Lgte};
use tcanet_models::ModelConfig;
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
