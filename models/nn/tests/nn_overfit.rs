//! Overfitting a handful of synthetic videos with clear boundaries: the loss
//! falls more than 10× and the refined proposals' IoU with the ground truth
//! rises.
use tcanet_models::ModelConfig;
use tcanet_nn::{segment_iou, tcanet_loss, TcaNet};
use tch::nn::{OptimizerConfig, VarStore};
use tch::{Device, Kind, Tensor};

/// Ground-truth instances (fractions of the video) of the synthetic videos.
fn instances() -> Vec<Vec<(f64, f64)>> {
    vec![
        vec![(0.2, 0.45)],
        vec![(0.1, 0.3), (0.6, 0.85)],
        vec![(0.35, 0.75)],
        vec![(0.05, 0.2), (0.5, 0.62)],
    ]
}

/// Features [B, C, T]: channels 0..8 are 1 inside an action, 8..16 a bump at
/// each start, 16..24 a bump at each end, 24..32 a fixed texture.
fn features(cfg: &ModelConfig, videos: &[Vec<(f64, f64)>]) -> Tensor {
    let (c, t) = (cfg.feat_dim, cfg.temporal_scale);
    let mut data = Vec::with_capacity(videos.len() * c * t);
    for (v, inst) in videos.iter().enumerate() {
        for ch in 0..c {
            for step in 0..t {
                let x = (step as f64 + 0.5) / t as f64;
                let bump = |at: f64| (-((x - at) * t as f64 / 1.5).powi(2)).exp();
                let value = match ch / 8 {
                    0 => inst.iter().any(|&(s, e)| x >= s && x < e) as u8 as f64,
                    1 => inst.iter().map(|&(s, _)| bump(s)).sum(),
                    2 => inst.iter().map(|&(_, e)| bump(e)).sum(),
                    _ => 0.2 * ((v * 13 + ch * 5 + step * 3) as f64).sin(),
                };
                data.push(value as f32);
            }
        }
    }
    Tensor::from_slice(&data).view([videos.len() as i64, c as i64, t as i64])
}

fn iou(a: (f64, f64), b: (f64, f64)) -> f64 {
    let inter = (a.1.min(b.1) - a.0.max(b.0)).max(0.0);
    inter / (a.1 - a.0 + b.1 - b.0 - inter)
}

#[test]
fn overfits_a_few_synthetic_videos() {
    // One intra-op thread: these tensors are small, and on a shared 2-core
    // machine libtorch's thread pool mostly waits on the other processes.
    tch::set_num_threads(1);
    tch::manual_seed(2);
    let cfg = ModelConfig::tiny();
    let vs = VarStore::new(Device::Cpu);
    let net = TcaNet::new(&vs.root(), &cfg);
    let videos = instances();
    let feats = features(&cfg, &videos);
    // 8 jittered proposals per video around its instances, each matched to
    // the instance of highest IoU.
    let n = 8;
    let (mut props, mut gts) = (Vec::new(), Vec::new());
    let mut state = 12345u64;
    let mut rnd = || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    for inst in &videos {
        for k in 0..n {
            let (s, e) = inst[k % inst.len()];
            let l = e - s;
            let c = (s + e) / 2.0 + (rnd() - 0.5) * 0.5 * l;
            let w = l * (0.6 + 0.8 * rnd());
            let p = ((c - w / 2.0).max(0.0), (c + w / 2.0).min(1.0));
            let best = inst
                .iter()
                .copied()
                .max_by(|a, b| iou(p, *a).total_cmp(&iou(p, *b)))
                .unwrap();
            props.extend([p.0, p.1]);
            gts.extend([best.0, best.1]);
        }
    }
    let b = videos.len() as i64;
    let props = Tensor::from_slice(&props)
        .view([b, n as i64, 2])
        .to_kind(Kind::Float);
    let gt = Tensor::from_slice(&gts)
        .view([b, n as i64, 2])
        .to_kind(Kind::Float);
    let valid = Tensor::ones([b, n as i64], (Kind::Bool, Device::Cpu));

    let eval_loss = || {
        tch::manual_seed(1000);
        let fwd = net.forward(&feats, &props, true);
        f64::try_from(tcanet_loss(&fwd, &gt, &valid, &cfg).total).unwrap()
    };
    let refined_iou = || {
        let fwd = tch::no_grad(|| net.forward(&feats, &props, false));
        f64::try_from(segment_iou(fwd.final_proposals(), &gt).mean(Kind::Double)).unwrap()
    };
    let input_iou = f64::try_from(segment_iou(&props, &gt).mean(Kind::Double)).unwrap();
    let (loss0, iou0) = (eval_loss(), refined_iou());

    let mut opt = tch::nn::Adam::default().build(&vs, 1e-3).unwrap();
    for step in 0..150 {
        tch::manual_seed(step);
        let fwd = net.forward(&feats, &props, true);
        let loss = tcanet_loss(&fwd, &gt, &valid, &cfg).total;
        opt.backward_step(&loss);
    }
    let (loss1, iou1) = (eval_loss(), refined_iou());
    eprintln!(
        "loss {loss0:.4} -> {loss1:.5} ({:.1}x); mean IoU input {input_iou:.3}, refined {iou0:.3} -> {iou1:.3}",
        loss0 / loss1
    );
    assert!(loss1 * 10.0 < loss0, "loss {loss0} -> {loss1}");
    assert!(iou1 > iou0 + 0.05, "refined IoU {iou0} -> {iou1}");
    assert!(
        iou1 > input_iou + 0.05,
        "refined IoU {iou1} vs input {input_iou}"
    );
}
