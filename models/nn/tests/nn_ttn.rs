//! TTN sampling against a direct f64 implementation of docs/MODEL.md's formula,
//! and against libtorch's own affine_grid + grid_sample, including regions
//! partly or wholly outside the timeline.
use tcanet_models::ModelConfig;
use tcanet_nn::ttn_sample;
use tch::{Device, Kind, Tensor};

/// docs/MODEL.md "TTN", written out sample by sample in plain f64.
/// `feats[b][h][t]`, `props[b][n] = (s, e)` → `out[b][n][h][sample]`.
fn reference(
    feats: &[Vec<Vec<f64>>],
    props: &[Vec<(f64, f64)>],
    cfg: &ModelConfig,
) -> Vec<Vec<Vec<Vec<f64>>>> {
    let t = feats[0][0].len();
    let d = t as f64 * cfg.temporal_interval;
    let norm = |x: f64| 2.0 * (x / d).clamp(0.0, 1.0) - 1.0;
    let mut out = Vec::new();
    for (b, video) in props.iter().enumerate() {
        let mut vo = Vec::new();
        for &(s, e) in video {
            let l = e - s;
            let r = cfg.prop_boundary_ratio;
            let regions = [
                (s - r * l, s, cfg.start_sample_num),
                (s, e, cfg.action_sample_num),
                (e, e + r * l, cfg.end_sample_num),
            ];
            let mut per_h = vec![Vec::new(); feats[b].len()];
            for (a, bb, n) in regions {
                let (a, bb) = (norm(a), norm(bb));
                for i in 0..n {
                    let x = (a + bb) / 2.0 + (bb - a) / 2.0 * ((2 * i + 1) as f64 / n as f64 - 1.0);
                    let u = ((x + 1.0) * t as f64 - 1.0) / 2.0;
                    let i0 = u.floor();
                    let frac = u - i0;
                    for (h, row) in feats[b].iter().enumerate() {
                        let at = |idx: f64| {
                            if idx >= 0.0 && idx <= (t - 1) as f64 {
                                row[idx as usize]
                            } else {
                                0.0
                            }
                        };
                        per_h[h].push((1.0 - frac) * at(i0) + frac * at(i0 + 1.0));
                    }
                }
            }
            vo.push(per_h);
        }
        out.push(vo);
    }
    out
}

fn check(cfg: &ModelConfig, props: Vec<Vec<(f64, f64)>>) {
    let (b, h, t) = (props.len(), 5usize, cfg.temporal_scale);
    let n = props[0].len();
    let feats: Vec<Vec<Vec<f64>>> = (0..b)
        .map(|bi| {
            (0..h)
                .map(|hi| {
                    (0..t)
                        .map(|ti| ((bi * 31 + hi * 7 + ti) as f64 * 0.37).sin() + bi as f64)
                        .collect()
                })
                .collect()
        })
        .collect();
    let flat_f: Vec<f64> = feats.iter().flatten().flatten().copied().collect();
    let flat_p: Vec<f64> = props.iter().flatten().flat_map(|&(s, e)| [s, e]).collect();
    let ft = Tensor::from_slice(&flat_f).view([b as i64, h as i64, t as i64]);
    let pt = Tensor::from_slice(&flat_p).view([b as i64, n as i64, 2]);
    let got = ttn_sample(&ft, &pt, cfg);
    let s_total = cfg.total_sample_num();
    assert_eq!(got.size(), [(b * n) as i64, h as i64, s_total as i64]);
    let want = reference(&feats, &props, cfg);
    let got: Vec<f64> = Vec::try_from(got.reshape([-1])).unwrap();
    let mut max_err: f64 = 0.0;
    for bi in 0..b {
        for ni in 0..n {
            for hi in 0..h {
                for si in 0..s_total {
                    let g = got[((bi * n + ni) * h + hi) * s_total + si];
                    max_err = max_err.max((g - want[bi][ni][hi][si]).abs());
                }
            }
        }
    }
    assert!(max_err < 1e-12, "TTN differs from the formula by {max_err}");

    // Second opinion: libtorch's affine_grid + grid_sample, one region at a
    // time, with the feature map of each proposal's own video.
    let d = t as f64 * cfg.temporal_interval;
    let got = ttn_sample(&ft, &pt, cfg);
    let mut offset = 0;
    for (region, count) in [
        (0, cfg.start_sample_num),
        (1, cfg.action_sample_num),
        (2, cfg.end_sample_num),
    ] {
        let s = pt.select(2, 0);
        let e = pt.select(2, 1);
        let l = &e - &s;
        let r = cfg.prop_boundary_ratio;
        let (a, bb) = match region {
            0 => (&s - &l * r, s.shallow_clone()),
            1 => (s.shallow_clone(), e.shallow_clone()),
            _ => (e.shallow_clone(), &e + &l * r),
        };
        let a = (a / d).clamp(0.0, 1.0) * 2.0 - 1.0;
        let bb = (bb / d).clamp(0.0, 1.0) * 2.0 - 1.0;
        let theta = Tensor::zeros([(b * n) as i64, 2, 3], (Kind::Double, Device::Cpu));
        theta
            .select(1, 0)
            .select(1, 0)
            .copy_(&((&bb - &a) / 2.0).reshape([-1]));
        theta
            .select(1, 0)
            .select(1, 2)
            .copy_(&((&bb + &a) / 2.0).reshape([-1]));
        let _ = theta.select(1, 1).select(1, 1).fill_(1.0);
        let grid = Tensor::affine_grid_generator(
            &theta,
            [(b * n) as i64, h as i64, 1, count as i64],
            false,
        );
        let idx = Tensor::arange(b as i64, (Kind::Int64, Device::Cpu))
            .repeat_interleave_self_int(n as i64, 0, None);
        let per_prop = ft.index_select(0, &idx).unsqueeze(2);
        let want = per_prop.grid_sampler(&grid, 0, 0, false).view([
            (b * n) as i64,
            h as i64,
            count as i64,
        ]);
        let part = got.narrow(2, offset, count as i64);
        let err = f64::try_from((part - want).abs().max()).unwrap();
        assert!(
            err < 1e-12,
            "region {region}: TTN differs from grid_sample by {err}"
        );
        offset += count as i64;
    }
}

fn cases(d: f64) -> Vec<Vec<(f64, f64)>> {
    vec![
        vec![
            (0.2 * d, 0.5 * d),   // inside
            (0.0, 0.1 * d),       // start region wholly before 0
            (-0.1 * d, 0.3 * d),  // starts before the timeline
            (0.8 * d, 1.05 * d),  // ends after the timeline
            (1.2 * d, 1.5 * d),   // wholly after the timeline
            (-0.5 * d, -0.2 * d), // wholly before the timeline
            (0.3 * d, 0.3 * d),   // zero length
            (0.013 * d, 0.9 * d),
        ],
        vec![
            (0.6 * d, 0.61 * d),
            (0.05 * d, 0.95 * d),
            (0.5 * d, 0.25 * d), // reversed
            (0.99 * d, 1.0 * d),
            (0.0, d),
            (-2.0 * d, 3.0 * d),
            (0.33 * d, 0.7 * d),
            (0.71 * d, 0.92 * d),
        ],
    ]
}

#[test]
fn ttn_matches_the_formula_fractions_of_the_video() {
    let cfg = ModelConfig::tiny(); // D = 1
    check(&cfg, cases(1.0));
}

#[test]
fn ttn_matches_the_formula_in_seconds() {
    let mut cfg = ModelConfig::tiny();
    cfg.normalize_by_duration = false;
    cfg.temporal_scale = 40;
    cfg.temporal_interval = 8.0 / 15.0;
    cfg.start_sample_num = 8;
    cfg.end_sample_num = 8;
    cfg.action_sample_num = 13;
    cfg.prop_boundary_ratio = 0.3;
    check(&cfg, cases(cfg.timeline_seconds()));
}
