//! Calibrated decoding picks the better scale where one is clearly better.
//!
//! A model is built whose only non-zero weights move every proposal's start
//! and end in stage 1 by a fixed fraction of its width (the SE branch's
//! output biases; the XW branch and stages 2-3 leave proposals alone, the
//! IoU estimate is a constant). Each video's best input proposal is its
//! ground truth widened by 20% of the action's length on each side, so the
//! stage-1 move brings it exactly onto the ground truth at one decode scale
//! G (the move is `bias · width · G / 2` after averaging with the XW box):
//! that scale must be chosen, with an AUC of ~100, and the others score
//! less. Checked through the library and through `tcanet-train calibrate`,
//! and `--decode-scale release` keeps the release's 0.2.
mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use common::{bin, run, run_ok, small_config, synth_small, tmp};
use tcanet_models::calibration::{Calibration, DEFAULT_DECODE_GRID, KEY_CALIBRATION};
use tcanet_models::checkpoint::{
    write_checkpoint, Checkpoint, CheckpointContents, ConfigOverride, NamedTensor, Position,
};
use tcanet_models::data::npy::write_npy_f32;
use tcanet_models::data::DatasetPaths;
use tcanet_models::{param_specs, ModelConfig};
use tcanet_trainer::calibrate::CalibrationSet;
use tcanet_trainer::dataset::{DataOptions, TrainingData};
use tcanet_trainer::inference::{checkpoint_network, InferenceInput};
use tch::Device;

fn config(dir: &Path) -> ModelConfig {
    let path = small_config(&dir.join("small.json"));
    ModelConfig::from_json(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Six training videos of 100 s, one action each, and proposals: the action
/// widened by 20% of its length on each side (score 0.9), and three others.
fn write_data(dir: &Path, cfg: &ModelConfig) {
    std::fs::create_dir_all(dir.join("features")).unwrap();
    let (mut db, mut results) = (serde_json::Map::new(), serde_json::Map::new());
    for i in 0..6 {
        let id = format!("v{i}");
        let (gs, ge) = (10.0 + 7.0 * i as f64, 40.0 + 9.0 * i as f64);
        let l = ge - gs;
        db.insert(
            id.clone(),
            serde_json::json!({"subset": "training", "duration": 100.0,
            "annotations": [{"segment": [gs, ge], "label": "a"}]}),
        );
        results.insert(
            id.clone(),
            serde_json::json!([
                {"segment": [gs - 0.2 * l, ge + 0.2 * l], "score": 0.9},
                {"segment": [0.0, 12.0], "score": 0.3},
                {"segment": [70.0, 99.0], "score": 0.2},
                {"segment": [gs + 0.4 * l, ge + 0.1 * l], "score": 0.1},
            ]),
        );
        let feats = vec![0.25f32; cfg.temporal_scale * cfg.feat_dim];
        write_npy_f32(
            &dir.join("features").join(format!("{id}.npy")),
            [cfg.temporal_scale, cfg.feat_dim],
            &feats,
        )
        .unwrap();
    }
    std::fs::write(
        dir.join("annotations.json"),
        serde_json::json!({"database": db}).to_string(),
    )
    .unwrap();
    std::fs::write(
        dir.join("proposals.json"),
        serde_json::json!({"results": results}).to_string(),
    )
    .unwrap();
}

/// The model: stage 1's start and end move by `bias` (in widths, times G),
/// the IoU logit 2 everywhere, everything else zero.
fn write_model(path: &Path, cfg: &ModelConfig, bias: f32) {
    let params: Vec<NamedTensor> = param_specs(cfg)
        .into_iter()
        .map(|s| {
            let n: usize = s.shape.iter().product();
            let mut data = vec![0f32; n];
            match s.name.as_str() {
                "tbr1.reg1se.start_reg_conv.4.bias" => data[0] = bias,
                "tbr1.reg1se.end_reg_conv.4.bias" => data[0] = -bias,
                name if name.ends_with("reg1xw.reg_1d_o.2.bias") => data[2] = 2.0,
                _ => {}
            }
            NamedTensor {
                name: s.name,
                shape: s.shape,
                data,
            }
        })
        .collect();
    write_checkpoint(
        path,
        &CheckpointContents {
            config: cfg,
            position: Position::default(),
            params: &params,
            train_state: None,
            extra: &BTreeMap::new(),
        },
    )
    .unwrap();
}

fn score(data: &Path, model: &Path) -> Calibration {
    let d = DataOptions::default();
    let ds = TrainingData::open(&DatasetPaths::in_dir(data), &d).unwrap();
    let ids: Vec<String> = (0..6).map(|i| format!("v{i}")).collect();
    let input = InferenceInput {
        layout: d.layout,
        resample: false,
        max_proposals: None,
    };
    let set = CalibrationSet::new(Arc::clone(&ds.dataset), &ids, "test".into(), input).unwrap();
    let ck = Checkpoint::load(model, &ConfigOverride::Embedded).unwrap();
    let net = checkpoint_network(&ck, Device::Cpu);
    set.score(&net, Device::Cpu, &DEFAULT_DECODE_GRID, 2, 0)
        .unwrap()
}

#[test]
fn the_scale_that_lands_on_the_ground_truth_is_chosen() {
    tch::set_num_threads(1);
    let dir = tmp();
    let cfg = config(dir.path());
    let data = dir.path().join("data");
    write_data(&data, &cfg);
    // bias · G / 2 · 1.4 L = 0.2 L: exact at G = 2/7 / bias.
    for (bias, want) in [(2.0 / 7.0, 1.0), (4.0 / 7.0, 0.5)] {
        let model = dir.path().join(format!("model-{want}.safetensors"));
        write_model(&model, &cfg, bias as f32);
        let c = score(&data, &model);
        assert_eq!(c.chosen, want, "{}", c.describe_grid());
        // A perfect first proposal everywhere: recall 1 from AN = 1 on, AUC 99.
        assert!(c.chosen_auc() > 98.9, "{}", c.describe_grid());
        let others = c.grid.iter().zip(&c.auc).filter(|(g, _)| **g != want);
        for (g, a) in others {
            assert!(
                *a < c.chosen_auc() - 1.0,
                "scale {g}: {}",
                c.describe_grid()
            );
        }
        assert_eq!((c.videos, c.instances), (6, 6));
        // The input alone: each video's best proposal has tIoU 1/1.4 = 0.714
        // with its action (5 of the 10 thresholds 0.5..0.95), the others add
        // no threshold, so recall is 0.5 at every AN: AUC 0.5 · 99 = 49.5.
        let input = c.input_auc.unwrap();
        assert!((input - 49.5).abs() < 0.01, "input AUC {input}");
        assert_eq!(c.warning(), None);
    }
}

#[test]
fn calibrate_writes_the_chosen_scale_and_keeps_the_weights() {
    let dir = tmp();
    let cfg = config(dir.path());
    let data = dir.path().join("data");
    write_data(&data, &cfg);
    let model = dir.path().join("model.safetensors");
    write_model(&model, &cfg, (2.0 / 7.0) as f32);
    let out = dir.path().join("calibrated.safetensors");
    let calibrate = |extra: &[&str]| {
        let mut c = bin();
        c.args(["calibrate", "--quiet", "--device", "cpu", "--threads", "1"])
            .arg(&model)
            .arg("--data")
            .arg(&data)
            .arg("-o")
            .arg(&out)
            .args(extra);
        c
    };
    // A checkpoint without a training run's record needs --subset.
    let o = run(&mut calibrate(&[]));
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("--subset") && err.contains("model.safetensors"),
        "{err}"
    );
    assert!(!out.exists());
    run_ok(&mut calibrate(&["--subset", "training"]));
    let before = Checkpoint::load(&model, &ConfigOverride::Embedded).unwrap();
    let after = Checkpoint::load(&out, &ConfigOverride::Embedded).unwrap();
    assert_eq!(after.config.se_decode_scale_infer, 1.0);
    assert_eq!(before.config.se_decode_scale_infer, 0.2);
    assert_eq!(after.tensors, before.tensors);
    let rec = Calibration::from_json(&after.metadata[KEY_CALIBRATION]).unwrap();
    assert_eq!((rec.chosen, rec.videos), (1.0, 6));
    assert_eq!(rec.source, "subset training");
    // `-o -`: the same checkpoint on standard output, no file named `-`.
    let mut to_stdout = bin();
    to_stdout
        .current_dir(dir.path())
        .args(["calibrate", "--quiet", "--device", "cpu", "--threads", "1"])
        .arg(&model)
        .arg("--data")
        .arg(&data)
        .args(["-o", "-", "--subset", "training"]);
    let o = run(&mut to_stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(o.stdout, std::fs::read(&out).unwrap());
    assert!(!dir.path().join("-").exists());
}

/// A model that moves every proposal away from its action at any scale
/// (a negative start/end bias widens the already too wide proposals):
/// calibration records that the input beats it and says so, even with
/// --quiet (a warning).
#[test]
fn calibration_warns_when_the_input_beats_the_refined_proposals() {
    let dir = tmp();
    let cfg = config(dir.path());
    let data = dir.path().join("data");
    write_data(&data, &cfg);
    let model = dir.path().join("worse.safetensors");
    write_model(&model, &cfg, (-8.0 / 7.0) as f32);
    let c = score(&data, &model);
    assert!(
        c.chosen_auc() < c.input_auc.unwrap(),
        "{}",
        c.describe_grid()
    );
    let out = dir.path().join("calibrated.safetensors");
    let o = run(bin()
        .args(["calibrate", "--quiet", "--device", "cpu", "--threads", "1"])
        .arg(&model)
        .args(["--subset", "training", "--data"])
        .arg(&data)
        .arg("-o")
        .arg(&out));
    assert_eq!(o.status.code(), Some(0));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("do not beat the input proposals (AUC 49.50)"),
        "{err}"
    );
}

fn trained(dir: &Path, data: &Path, config: &Path, name: &str, extra: &[&str]) -> PathBuf {
    let out = dir.join(name);
    run_ok(
        bin()
            .args(["train", "--quiet", "--device", "cpu", "--threads", "1"])
            .args(["--epochs", "1", "--batch-size", "4", "--warmup-iters", "1"])
            .arg("--config")
            .arg(config)
            .arg("--data")
            .arg(data)
            .arg("--out")
            .arg(&out)
            .args(extra),
    );
    out
}

#[test]
fn release_keeps_0_2_and_trains_on_every_video() {
    let dir = tmp();
    let data = dir.path().join("data");
    synth_small(&data, 8, 2, 1);
    let config = small_config(&dir.path().join("small.json"));
    let release = trained(
        dir.path(),
        &data,
        &config,
        "release",
        &["--decode-scale", "release"],
    );
    let ck =
        Checkpoint::load(&release.join("last.safetensors"), &ConfigOverride::Embedded).unwrap();
    assert_eq!(ck.config.se_decode_scale_infer, 0.2);
    assert!(!ck.metadata.contains_key(KEY_CALIBRATION));
    assert_eq!(
        ck.position.global_step, 2,
        "8 videos in batches of 4: none held out"
    );
    assert!(!release.join("best.safetensors").exists());
    let fixed = trained(
        dir.path(),
        &data,
        &config,
        "fixed",
        &["--decode-scale", "0.75"],
    );
    let best =
        Checkpoint::load(&fixed.join("best.safetensors"), &ConfigOverride::Embedded).unwrap();
    assert_eq!(best.config.se_decode_scale_infer, 0.75);
    assert!(
        best.train_state.is_none(),
        "best.safetensors holds no training state"
    );
    let rec = Calibration::from_json(&best.metadata[KEY_CALIBRATION]).unwrap();
    assert_eq!(rec.grid, [0.75], "a fixed scale is only scored");
    let cal = trained(dir.path(), &data, &config, "calibrated", &[]);
    let last = Checkpoint::load(&cal.join("last.safetensors"), &ConfigOverride::Embedded).unwrap();
    let rec = Calibration::from_json(&last.metadata[KEY_CALIBRATION]).unwrap();
    assert_eq!(rec.grid, DEFAULT_DECODE_GRID);
    assert_eq!(last.config.se_decode_scale_infer, rec.chosen);
    assert_eq!(
        last.position.global_step, 2,
        "1 of 8 held out: 7 in batches of 4"
    );
    assert_eq!(rec.videos, 1);
    // best.safetensors knows its run: `calibrate` finds the same held-out
    // video again without --subset, and scores it as training did.
    let out = dir.path().join("recalibrated.safetensors");
    run_ok(
        bin()
            .args(["calibrate", "--quiet", "--device", "cpu", "--threads", "1"])
            .arg(cal.join("best.safetensors"))
            .arg("--data")
            .arg(&data)
            .arg("-o")
            .arg(&out),
    );
    let again = Checkpoint::load(&out, &ConfigOverride::Embedded).unwrap();
    let again = Calibration::from_json(&again.metadata[KEY_CALIBRATION]).unwrap();
    let best = Checkpoint::load(&cal.join("best.safetensors"), &ConfigOverride::Embedded).unwrap();
    let at_best = Calibration::from_json(&best.metadata[KEY_CALIBRATION]).unwrap();
    assert_eq!(
        (again.source.as_str(), again.videos),
        (at_best.source.as_str(), 1)
    );
    assert_eq!(
        (again.auc.clone(), again.input_auc),
        (at_best.auc.clone(), at_best.input_auc)
    );
    // The calibrated copy still knows its run: calibrating it again works.
    run_ok(
        bin()
            .args(["calibrate", "--quiet", "--device", "cpu", "--threads", "1"])
            .arg(&out)
            .arg("--data")
            .arg(&data)
            .arg("-o")
            .arg(dir.path().join("twice.safetensors")),
    );
}
