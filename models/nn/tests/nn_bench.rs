//! Timings of the tch network on this machine (not a test: `#[ignore]`d).
//!
//! ```text
//! cargo test --release -p tcanet-nn --test nn_bench -- --ignored --nocapture
//! ```
//! Prints the median of a few runs of: a training step (forward, loss,
//! backward) and an inference forward pass for the `tiny` and `hacs`
//! configs, and TTN sampling by index against the release's way (a copy of
//! the feature map per proposal, then affine_grid + grid_sample).
use std::time::Instant;
use tcanet_models::ModelConfig;
use tcanet_nn::{tcanet_loss, ttn_sample, TcaNet};
use tch::{nn::VarStore, Device, Kind, Tensor};

fn median_ms(runs: usize, mut f: impl FnMut()) -> f64 {
    f(); // warm-up
    let mut times: Vec<f64> = (0..runs)
        .map(|_| {
            let t0 = Instant::now();
            f();
            t0.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[runs / 2]
}

fn proposals(b: i64, n: i64, d: f64) -> Tensor {
    let s = Tensor::rand([b, n, 1], (Kind::Float, Device::Cpu)) * (0.8 * d);
    let l = Tensor::rand([b, n, 1], (Kind::Float, Device::Cpu)) * (0.2 * d) + 0.01 * d;
    Tensor::cat(&[&s, &(&s + l)], 2)
}

fn network(name: &str, cfg: &ModelConfig, b: i64, n: i64, runs: usize) {
    tch::manual_seed(0);
    let vs = VarStore::new(Device::Cpu);
    let net = TcaNet::new(&vs.root(), cfg);
    let feats = Tensor::randn(
        [b, cfg.feat_dim as i64, cfg.temporal_scale as i64],
        (Kind::Float, Device::Cpu),
    );
    let props = proposals(b, n, cfg.timeline_seconds());
    let gt = &props + 0.01 * cfg.timeline_seconds();
    let valid = Tensor::ones([b, n], (Kind::Bool, Device::Cpu));
    let train = median_ms(runs, || {
        let fwd = net.forward(&feats, &props, true);
        tcanet_loss(&fwd, &gt, &valid, cfg).total.backward();
    });
    let infer = median_ms(runs, || {
        tch::no_grad(|| net.forward(&feats, &props, false));
    });
    println!(
        "{name}: B={b} N={n} T={} C={} H={}: train step {train:.1} ms, inference {infer:.1} ms",
        cfg.temporal_scale, cfg.feat_dim, cfg.hidden_dim
    );
}

#[test]
#[ignore]
fn bench_network() {
    let default_threads = tch::get_num_threads();
    for threads in [default_threads, 1] {
        tch::set_num_threads(threads);
        println!("intra-op threads: {threads}");
        network("tiny", &ModelConfig::tiny(), 4, 8, 20);
        network("tiny", &ModelConfig::tiny(), 16, 64, 5);
        network("hacs", &ModelConfig::hacs(), 2, 64, 3);
    }
    tch::set_num_threads(default_threads);
}

#[test]
#[ignore]
fn bench_ttn_index_vs_copy() {
    let cfg = ModelConfig::hacs();
    let (b, n, h, t) = (2i64, 64i64, 512i64, 1000i64);
    let enc = Tensor::randn([b, h, t], (Kind::Float, Device::Cpu)).set_requires_grad(true);
    let props = proposals(b, n, cfg.timeline_seconds());
    let by_index = median_ms(5, || {
        ttn_sample(&enc, &props, &cfg).sum(Kind::Float).backward();
    });
    // The release: features[batch_idx] (one [H, T] copy per proposal), then
    // affine_grid + grid_sample per region.
    let d = cfg.timeline_seconds();
    let release = median_ms(5, || {
        let idx =
            Tensor::arange(b, (Kind::Int64, Device::Cpu)).repeat_interleave_self_int(n, 0, None);
        let per_prop = enc.index_select(0, &idx).unsqueeze(2); // [B·N, H, 1, T]
        let s = props.select(2, 0).reshape([-1]);
        let e = props.select(2, 1).reshape([-1]);
        let l = &e - &s;
        let mut out = Vec::new();
        for (a, bb, count) in [
            (&s - &l * 0.5, s.shallow_clone(), cfg.start_sample_num),
            (s.shallow_clone(), e.shallow_clone(), cfg.action_sample_num),
            (e.shallow_clone(), &e + &l * 0.5, cfg.end_sample_num),
        ] {
            let a = (a / d).clamp(0.0, 1.0) * 2.0 - 1.0;
            let bb = (bb / d).clamp(0.0, 1.0) * 2.0 - 1.0;
            let row0 = Tensor::stack(&[(&bb - &a) / 2.0, a.zeros_like(), (&bb + &a) / 2.0], 1);
            let row1 = Tensor::stack(&[a.zeros_like(), a.ones_like(), a.zeros_like()], 1);
            let theta = Tensor::stack(&[row0, row1], 1);
            let grid = Tensor::affine_grid_generator(&theta, [b * n, h, 1, count as i64], false);
            out.push(per_prop.grid_sampler(&grid, 0, 0, false));
        }
        Tensor::cat(&out, 3).sum(Kind::Float).backward();
    });
    let copy_mb = (b * n * h * t * 4) as f64 / 1e6;
    println!(
        "TTN hacs shapes B={b} N={n} H={h} T={t}, forward+backward: by index {by_index:.1} ms; \
         release (per-proposal copy of {copy_mb:.0} MB + grid_sample) {release:.1} ms"
    );
}
