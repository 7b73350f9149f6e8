//! TTN: sampling the encoded features of each proposal's own video at the
//! start, action and end regions of the proposal (docs/MODEL.md "TTN").
use tcanet_models::ModelConfig;
use tch::{Kind, Tensor};

/// Fractional feature indices `u` [B, N, S] of every sample of every proposal,
/// S = start ‖ action ‖ end samples, on a timeline of `t` steps.
///
/// Region [a, b] → `a' = 2 clamp(a/D, 0, 1) - 1` (likewise b'), sample i of n
/// at `x_i = (a'+b')/2 + (b'-a')/2 ((2i+1)/n - 1)`, index
/// `u = ((x_i + 1) t - 1) / 2`, with `D = t * temporal_interval`.
pub fn ttn_positions(proposals: &Tensor, cfg: &ModelConfig, t: i64) -> Tensor {
    let kind = proposals.kind();
    let device = proposals.device();
    let d = t as f64 * cfg.temporal_interval;
    let s = proposals.select(-1, 0);
    let e = proposals.select(-1, 1);
    let len = &e - &s;
    let r = cfg.prop_boundary_ratio;
    let regions = [
        (&s - &len * r, s.shallow_clone(), cfg.start_sample_num),
        (s.shallow_clone(), e.shallow_clone(), cfg.action_sample_num),
        (e.shallow_clone(), &e + &len * r, cfg.end_sample_num),
    ];
    let mut parts = Vec::with_capacity(3);
    for (a, b, n) in regions {
        let a = (a / d).clamp(0.0, 1.0) * 2.0 - 1.0;
        let b = (b / d).clamp(0.0, 1.0) * 2.0 - 1.0;
        let centre = ((&a + &b) * 0.5).unsqueeze(-1);
        let half = ((&b - &a) * 0.5).unsqueeze(-1);
        // (2i+1)/n - 1 for i in 0..n
        let base =
            Tensor::arange(n as i64, (kind, device)) * (2.0 / n as f64) + (1.0 / n as f64 - 1.0);
        let x = centre + half * base;
        parts.push(((x + 1.0) * t as f64 - 1.0) * 0.5);
    }
    Tensor::cat(&parts, -1)
}

/// Samples `encoded` [B, H, T] for `proposals` [B, N, 2] (the proposal of
/// video b reads only video b's features): returns [B·N, H, S], S =
/// `cfg.total_sample_num()`, in the order start (`start_sample_num`) ‖ action
/// (`action_sample_num`) ‖ end (`end_sample_num`); row `b·N + n` is proposal
/// n of video b.
///
/// This is `affine_grid` + `grid_sample` (bilinear, zero padding,
/// align_corners=False) of the release, computed by index: the features are
/// laid out as rows [B·T, H], each sample gathers its two neighbouring rows
/// `b·T + i` with `index_select` (whose backward is an `index_add`), weighted
/// by the linear-interpolation weights, zero for a neighbour outside 0..T-1.
/// No per-proposal copy of the feature map is ever made, forward or
/// backward. Gradients flow to `encoded` and to `proposals` (through the
/// interpolation weights, as in grid_sample).
pub fn ttn_sample(encoded: &Tensor, proposals: &Tensor, cfg: &ModelConfig) -> Tensor {
    let (b, h, t) = encoded
        .size3()
        .expect("TTN: encoded features are [B, H, T]");
    let (pb, n, two) = proposals.size3().expect("TTN: proposals are [B, N, 2]");
    assert!(
        pb == b && two == 2,
        "TTN: proposals {:?} do not match features {:?}",
        proposals.size(),
        encoded.size()
    );
    let u = ttn_positions(proposals, cfg, t); // [B, N, S]
    let s = u.size()[2];
    let lo = u.floor();
    let w_hi = &u - &lo;
    let w_lo = w_hi.neg() + 1.0;
    let lo_i = lo.to_kind(Kind::Int64);
    let hi_i = &lo_i + 1;
    let inside = |i: &Tensor| i.ge(0).logical_and(&i.le(t - 1));
    let w_lo = w_lo * inside(&lo_i).to_kind(u.kind());
    let w_hi = w_hi * inside(&hi_i).to_kind(u.kind());
    let offset = (Tensor::arange(b, (Kind::Int64, u.device())) * t).view([b, 1, 1]);
    let rows = encoded.transpose(1, 2).reshape([b * t, h]);
    let gather = |i: &Tensor| {
        let flat = (i.clamp(0, t - 1) + &offset).reshape([-1]);
        rows.index_select(0, &flat)
    };
    let sampled = gather(&lo_i) * w_lo.reshape([-1, 1]) + gather(&hi_i) * w_hi.reshape([-1, 1]);
    sampled.view([b * n, s, h]).transpose(1, 2)
}
