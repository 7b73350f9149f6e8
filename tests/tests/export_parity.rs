//! The exported ONNX model, run by ONNX Runtime (CPU), against the tch
//! model's inference forward (`TcaNet::forward(.., train = false)`) on the
//! same weights: the trainer's checkpoint format is the hand-off. Several
//! B and N, proposals partly outside the timeline, fp32 and fp16.
use std::collections::BTreeMap;

use tcanet_exporter::ort_run::OnnxModel;
use tcanet_exporter::verify::{random_inputs, rel_l2_and_max_abs, Tolerances};
use tcanet_exporter::{export_to_file, ExportOptions, Precision};
use tcanet_models::checkpoint::{
    write_checkpoint, Checkpoint, CheckpointContents, ConfigOverride, NamedTensor, Position,
};
use tcanet_models::{ModelConfig, NUM_STAGES};
use tcanet_nn::TcaNet;
use tch::{nn, Device, Kind, Tensor};

fn to_vec(t: &Tensor) -> Vec<f32> {
    let t = t.to_kind(Kind::Float).contiguous().view([-1]);
    Vec::<f32>::try_from(&t).unwrap()
}

/// A tch TcaNet with its own (release-like) initialisation, saved with the
/// trainer's checkpoint writer.
fn tch_model(cfg: &ModelConfig, seed: i64, path: &std::path::Path) -> (nn::VarStore, TcaNet) {
    // libtorch's generator is global: tests running in parallel must not
    // interleave their draws, or the weights change from run to run.
    static TORCH_RNG: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _rng = TORCH_RNG.lock().unwrap_or_else(|e| e.into_inner());
    tch::manual_seed(seed);
    let vs = nn::VarStore::new(Device::Cpu);
    let net = TcaNet::new(&vs.root(), cfg);
    // Perturb the zero-initialised biases and unit LayerNorms so every
    // parameter matters to the comparison, at a scale relative to each
    // tensor's own spread (absolute noise would make the wide HACS layers
    // explode and the cascade chaotic: float32 rounding alone then moves
    // the third stage by 1e-4, in tch as in any runtime).
    tch::no_grad(|| {
        // In name order: `variables()` is a HashMap, whose order changes
        // from one process to the next.
        let mut vars: Vec<_> = vs.variables().into_iter().collect();
        vars.sort_by(|a, b| a.0.cmp(&b.0));
        for (_, mut v) in vars {
            let spread = if v.numel() > 1 {
                v.std(true).double_value(&[])
            } else {
                0.0
            };
            let scale = if spread > 0.0 { 0.2 * spread } else { 0.02 };
            let noise = Tensor::randn_like(&v) * scale;
            let _ = v.g_add_(&noise);
        }
    });
    let params: Vec<NamedTensor> = vs
        .variables()
        .into_iter()
        .map(|(name, t)| NamedTensor {
            shape: t.size().iter().map(|&d| d as usize).collect(),
            data: to_vec(&t),
            name,
        })
        .collect();
    let contents = CheckpointContents {
        config: cfg,
        position: Position {
            epoch: 1,
            step_in_epoch: 0,
            global_step: 10,
        },
        params: &params,
        train_state: None,
        extra: &BTreeMap::new(),
    };
    write_checkpoint(path, &contents).unwrap();
    (vs, net)
}

/// Asserts parity of ONNX Runtime with tch on `cases` (B, N), fp32 and
/// fp16. With `tch_f64` the tch model runs in float64 on the same
/// (float32-exact) weights.
fn check(cfg: &ModelConfig, seed: i64, cases: &[(usize, usize)], tch_f64: bool) {
    let dir = tempfile::tempdir().unwrap();
    let ckpt_path = dir.path().join("checkpoint.safetensors");
    let (mut vs, net) = tch_model(cfg, seed, &ckpt_path);
    let kind = if tch_f64 {
        vs.double();
        Kind::Double
    } else {
        Kind::Float
    };
    let ckpt = Checkpoint::load(&ckpt_path, &ConfigOverride::Embedded).unwrap();
    assert_eq!(&ckpt.config, cfg);
    for precision in [Precision::Fp32, Precision::Fp16] {
        let model_path = dir
            .path()
            .join(format!("model-{}.onnx", precision.as_str()));
        export_to_file(
            &ckpt,
            &ExportOptions {
                precision,
                ..Default::default()
            },
            &model_path,
        )
        .unwrap();
        let loaded = OnnxModel::load(&model_path, 1);
        if precision == Precision::Fp16 && tcanet_ort::cpu_refuses_float16() {
            // Refused on processors with float16 arithmetic, whose ONNX
            // Runtime float16 grouped convolutions are wrong.
            let Err(err) = loaded else {
                panic!("the float16 model is not refused on this processor");
            };
            assert!(err.to_string().contains("without --fp16"), "{err}");
            continue;
        }
        let mut model = loaded.unwrap();
        let tol = Tolerances::for_precision(precision);
        for (i, &(b, n)) in cases.iter().enumerate() {
            let (features, proposals) = random_inputs(cfg, b, n, 100 + i as u64);
            let (c, t) = (cfg.feat_dim, cfg.temporal_scale);
            let onnx = model.run(&features, [b, c, t], &proposals, n).unwrap();
            let f = Tensor::from_slice(&features)
                .view([b as i64, c as i64, t as i64])
                .to_kind(kind);
            let p = Tensor::from_slice(&proposals)
                .view([b as i64, n as i64, 2])
                .to_kind(kind);
            let fwd = tch::no_grad(|| net.forward(&f, &p, false));
            // TCANET_DEBUG_REF=1: also print tch and ONNX Runtime against
            // the exporter's f64 reference (which of the two drifts).
            if std::env::var_os("TCANET_DEBUG_REF").is_some() {
                let r = tcanet_exporter::reference::forward(&ckpt, &features, &proposals, b, n);
                for k in 0..NUM_STAGES {
                    let tp = to_vec(&fwd.stages[k].refined);
                    let ti = to_vec(&fwd.stages[k].iou);
                    eprintln!(
                        "stage {}: tch-ref {:?} {:?} ort-ref {:?} {:?}",
                        k + 1,
                        rel_l2_and_max_abs(&tp, &r.proposals[k]),
                        rel_l2_and_max_abs(&ti, &r.iou[k]).1,
                        rel_l2_and_max_abs(&onnx.proposals[k], &r.proposals[k]),
                        rel_l2_and_max_abs(&onnx.iou[k], &r.iou[k]).1
                    );
                }
            }
            assert_eq!(fwd.stages.len(), NUM_STAGES);
            for k in 0..NUM_STAGES {
                let tp: Vec<f64> = to_vec(&fwd.stages[k].refined)
                    .iter()
                    .map(|&v| v as f64)
                    .collect();
                let ti: Vec<f64> = to_vec(&fwd.stages[k].iou)
                    .iter()
                    .map(|&v| v as f64)
                    .collect();
                let (rel, _) = rel_l2_and_max_abs(&onnx.proposals[k], &tp);
                let (_, abs) = rel_l2_and_max_abs(&onnx.iou[k], &ti);
                let what = format!("{} B={b} N={n} stage {}", precision.as_str(), k + 1);
                eprintln!("{what}: proposals rel {rel:.2e}, IoU abs {abs:.2e}");
                assert!(
                    rel <= tol.proposals_rel,
                    "{what}: proposals rel error {rel:e}"
                );
                assert!(abs <= tol.iou_abs, "{what}: IoU abs error {abs:e}");
                if k == NUM_STAGES - 1 {
                    let moved = tp
                        .iter()
                        .zip(&proposals)
                        .any(|(a, b)| (a - *b as f64).abs() > 1e-4);
                    assert!(moved, "{what}: the refinement moved nothing");
                }
            }
        }
    }
}

#[test]
fn onnx_matches_tch_on_the_tiny_config() {
    check(&ModelConfig::tiny(), 1, &[(1, 1), (2, 16), (3, 41)], false);
}

#[test]
fn onnx_matches_tch_with_seconds_two_heads_and_window_5() {
    let cfg = tcanet_testkit::small_seconds_config();
    check(&cfg, 2, &[(1, 7), (4, 13)], false);
}

/// The full-size HACS network (C 2304, T 1000, H 512), against tch in
/// float64 on the same (float32-exact) weights. At this size float32
/// rounding alone moves the stage-3 IoU by a few 1e-6 on random features (a
/// rounding-level shift of a refined proposal moves its 1000-step sampling
/// positions, and the cascade compounds it), in tch as in ONNX Runtime: a
/// float32 tch would spend the 1e-5 budget twice.
#[test]
fn onnx_matches_tch_on_the_hacs_config() {
    check(&ModelConfig::hacs(), 3, &[(1, 6)], true);
}
