//! The tch network against PyTorch itself: `pytorch_reference.py` builds
//! TCANet from docs/MODEL.md with torch's own modules (MultiheadAttention with the
//! release's mask, affine_grid + grid_sample, ...), loads our parameters with
//! `load_state_dict(strict=True)` — so our names and shapes are the release's
//! state_dict — and recomputes the inference outputs and the training losses
//! (same seed, same draws) in float64. Needs the project's `.venv` (`make setup`).
use std::path::PathBuf;
use std::process::Command;
use tcanet_models::ModelConfig;
use tcanet_nn::{tcanet_loss, TcaNet};
use tch::{nn::VarStore, Device, Kind, Tensor};

fn python() -> PathBuf {
    let venv = std::env::var("TCANET_VENV")
        .ok()
        .or_else(|| option_env!("TCANET_VENV").map(String::from))
        .expect("TCANET_VENV is not set: run from the repository (see .cargo/config.toml)");
    let python = PathBuf::from(&venv).join("bin/python");
    assert!(
        python.exists(),
        "{} not found: run `make setup` to create the project's .venv",
        python.display()
    );
    python
}

/// Our outputs for one case, and the files handed to PyTorch.
struct Case {
    name: &'static str,
    scale: f64,
    ours: Vec<(String, Tensor)>,
    files: [PathBuf; 3],
}

fn prepare(name: &'static str, mut cfg: ModelConfig, seed: i64) -> Case {
    cfg.dropout = 0.0; // the training forward is then deterministic
    tch::manual_seed(seed);
    let mut vs = VarStore::new(Device::Cpu);
    let net = TcaNet::new(&vs.root(), &cfg);
    vs.double();
    tch::no_grad(|| {
        for (_, mut v) in vs.variables() {
            let noise = Tensor::randn_like(&v) * 0.05;
            let _ = v.g_add_(&noise);
        }
    });
    let (b, n) = (3i64, 10i64);
    let opts = (Kind::Double, Device::Cpu);
    let d = cfg.timeline_seconds();
    let feats = Tensor::randn([b, cfg.feat_dim as i64, cfg.temporal_scale as i64], opts);
    // Starts from -0.1 D to 1.0 D, lengths up to 0.4 D: some regions leave the timeline.
    let s = (Tensor::rand([b, n, 1], opts) * 1.1 - 0.1) * d;
    let props = Tensor::cat(&[&s, &(&s + Tensor::rand([b, n, 1], opts) * (0.4 * d))], 2);
    // Noise enough for all three IoU classes, so the loss draws matter.
    let gt = &props + Tensor::randn([b, n, 2], opts) * (0.08 * d);
    let valid = Tensor::rand([b, n], opts).gt(0.15);
    let inf = tch::no_grad(|| net.forward(&feats, &props, false));
    let tr = net.forward(&feats, &props, true);
    let loss_seed = 77;
    tch::manual_seed(loss_seed);
    let loss = tcanet_loss(&tr, &gt, &valid, &cfg);

    let dir = std::env::temp_dir().join(format!("tcanet-pt-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut named: Vec<(String, Tensor)> = vs
        .variables()
        .into_iter()
        .map(|(k, v)| (format!("param/{k}"), v.detach()))
        .collect();
    named.push(("feats".into(), feats));
    named.push(("props".into(), props));
    named.push(("gt".into(), gt));
    named.push(("valid".into(), valid.to_kind(Kind::Double)));
    named.push(("seed".into(), Tensor::from(loss_seed)));
    let input = dir.join("in.npz");
    let output = dir.join("out.npz");
    let config = dir.join("config.json");
    Tensor::write_npz(&named, &input).unwrap();
    std::fs::write(&config, cfg.to_json()).unwrap();
    let mut ours = Vec::new();
    for k in 0..3 {
        ours.push((
            format!("inf_refined{k}"),
            inf.stages[k].refined.shallow_clone(),
        ));
        ours.push((format!("inf_iou{k}"), inf.stages[k].iou.shallow_clone()));
        ours.push((format!("loss_se{k}"), loss.per_stage[k].se.detach()));
        ours.push((format!("loss_xw{k}"), loss.per_stage[k].xw.detach()));
        ours.push((format!("loss_iou{k}"), loss.per_stage[k].iou.detach()));
    }
    ours.push(("loss_total".into(), loss.total.detach()));
    Case {
        name,
        scale: d.max(1.0),
        ours,
        files: [input, config, output],
    }
}

fn compare(case: &Case) {
    let theirs: std::collections::HashMap<String, Tensor> = Tensor::read_npz(&case.files[2])
        .unwrap()
        .into_iter()
        .collect();
    for (what, ours) in &case.ours {
        let t = &theirs[what];
        assert_eq!(ours.size(), t.size(), "{}: {what} shape", case.name);
        let tol = if what.starts_with("inf_refined") {
            1e-9 * case.scale
        } else {
            1e-9
        };
        let err = f64::try_from((ours - t).abs().max()).unwrap();
        assert!(
            err < tol,
            "{}: {what} differs from PyTorch by {err:e}",
            case.name
        );
    }
}

#[test]
fn matches_pytorch() {
    let seconds = tcanet_testkit::small_seconds_config();
    let cases = [
        prepare("tiny", ModelConfig::tiny(), 4),
        prepare("seconds-2-heads-window-5", seconds, 5),
    ];
    // One Python process for all cases (importing torch is the slow part).
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/pytorch_reference.py");
    let mut cmd = Command::new(python());
    cmd.arg(script);
    for case in &cases {
        cmd.args(&case.files);
    }
    let run = cmd.output().unwrap();
    assert!(
        run.status.success(),
        "pytorch_reference.py failed:\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    for case in &cases {
        compare(case);
        let _ = std::fs::remove_dir_all(case.files[0].parent().unwrap());
    }
}
