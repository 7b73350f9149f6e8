//! Calibrated decoding from the trainer to the runtime: a model whose
//! stage-1 start/end moves land exactly on the ground truth at decode scale
//! 1.0 (the rest of its weights zero; see trainer/tests/calibration.rs) is
//! calibrated by `tcanet-train calibrate`, exported by `tcanet-export`, run
//! by `tcanet-infer` (which takes the config from the model) and scored by
//! `tcanet-eval`: the exported model decodes with the chosen scale (its AUC
//! is the one calibration measured at 1.0, through libtorch), and the same
//! weights exported uncalibrated decode with the release's 0.2.
mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::{run_ok, tool};
use tcanet_models::calibration::{Calibration, KEY_CALIBRATION};
use tcanet_models::checkpoint::{
    write_checkpoint, Checkpoint, CheckpointContents, ConfigOverride, NamedTensor, Position,
};
use tcanet_models::data::npy::write_npy_f32;
use tcanet_models::{param_specs, ModelConfig};

fn config() -> ModelConfig {
    ModelConfig {
        feat_dim: 16,
        temporal_scale: 32,
        temporal_interval: 1.0 / 32.0,
        hidden_dim: 32,
        lgte_num: 1,
        window_size: 5,
        ffn_dim: 32,
        start_sample_num: 8,
        end_sample_num: 8,
        action_sample_num: 16,
        se_hidden_dim: 16,
        ..ModelConfig::tiny()
    }
}

/// Eight training videos, one action each; the best proposal is the action
/// widened by 20% of its length on each side.
fn write_data(dir: &Path, cfg: &ModelConfig) {
    std::fs::create_dir_all(dir.join("features")).unwrap();
    let (mut db, mut results) = (serde_json::Map::new(), serde_json::Map::new());
    for i in 0..8 {
        let id = format!("v{i}");
        let (gs, ge) = (8.0 + 5.0 * i as f64, 35.0 + 7.0 * i as f64);
        let l = ge - gs;
        db.insert(
            id.clone(),
            serde_json::json!({"subset": "training", "duration": 120.0,
                "annotations": [{"segment": [gs, ge], "label": "a"}]}),
        );
        results.insert(
            id.clone(),
            serde_json::json!([
                {"segment": [gs - 0.2 * l, ge + 0.2 * l], "score": 0.9},
                {"segment": [0.0, 15.0], "score": 0.4},
                {"segment": [90.0, 119.0], "score": 0.2},
            ]),
        );
        let n = cfg.temporal_scale * cfg.feat_dim;
        let path = dir.join("features").join(format!("{id}.npy"));
        write_npy_f32(&path, [cfg.temporal_scale, cfg.feat_dim], &vec![0.5; n]).unwrap();
    }
    let db = serde_json::json!({"database": db}).to_string();
    std::fs::write(dir.join("annotations.json"), db).unwrap();
    let results = serde_json::json!({"results": results}).to_string();
    std::fs::write(dir.join("proposals.json"), results).unwrap();
}

/// Stage 1 moves start and end by ±bias·width·G/2 (after averaging with
/// the unchanged XW box): exact at G = 1 for bias = 2/7.
fn write_model(path: &Path, cfg: &ModelConfig) {
    let bias = (2.0 / 7.0) as f32;
    let params: Vec<NamedTensor> = param_specs(cfg)
        .into_iter()
        .map(|s| {
            let mut data = vec![0f32; s.shape.iter().product()];
            match s.name.as_str() {
                "tbr1.reg1se.start_reg_conv.4.bias" => data[0] = bias,
                "tbr1.reg1se.end_reg_conv.4.bias" => data[0] = -bias,
                n if n.ends_with("reg1xw.reg_1d_o.2.bias") => data[2] = 2.0,
                _ => {}
            }
            NamedTensor {
                name: s.name,
                shape: s.shape,
                data,
            }
        })
        .collect();
    let contents = CheckpointContents {
        config: cfg,
        position: Position::default(),
        params: &params,
        train_state: None,
        extra: &BTreeMap::new(),
    };
    write_checkpoint(path, &contents).unwrap();
}

/// Exports `ckpt`, runs it with tcanet-infer on the training videos and
/// returns tcanet-eval's AUC and the model's config (from its metadata).
fn exported_auc(dir: &Path, data: &Path, ckpt: &Path, name: &str) -> (f64, ModelConfig) {
    let onnx = dir.join(format!("{name}.onnx"));
    run_ok(tool("tcanet-export").arg(ckpt).arg("-o").arg(&onnx));
    let summary = tcanet_exporter::inspect::inspect_file(&onnx).unwrap();
    let config = summary
        .metadata_value(tcanet_models::onnx::META_CONFIG)
        .map(|json| ModelConfig::from_json(json).unwrap())
        .expect("the model's tcanet.config");
    let refined = dir.join(format!("{name}.json"));
    run_ok(
        tool("tcanet-infer")
            .args([
                "run",
                "--subset",
                "training",
                "--device",
                "cpu",
                "--threads",
                "1",
            ])
            .arg("--model")
            .arg(&onnx)
            .arg("--data")
            .arg(data)
            .arg("-o")
            .arg(&refined),
    );
    let out = run_ok(
        tool("tcanet-eval")
            .arg("proposals")
            .arg(data.join("annotations.json"))
            .arg(&refined)
            .args(["--subset", "training", "--json"]),
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    (v["AUC"].as_f64().unwrap(), config)
}

#[test]
fn the_calibrated_scale_reaches_the_runtime_through_the_onnx_model() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let cfg = config();
    let data = dir.join("data");
    write_data(&data, &cfg);
    let model = dir.join("model.safetensors");
    write_model(&model, &cfg);
    let calibrated = dir.join("calibrated.safetensors");
    run_ok(
        tool("tcanet-train")
            .args(["calibrate", "--quiet", "--device", "cpu", "--threads", "1"])
            .args(["--subset", "training"])
            .arg(&model)
            .arg("--data")
            .arg(&data)
            .arg("-o")
            .arg(&calibrated),
    );
    let ck = Checkpoint::load(&calibrated, &ConfigOverride::Embedded).unwrap();
    assert_eq!(ck.config.se_decode_scale_infer, 1.0);
    let rec = Calibration::from_json(&ck.metadata[KEY_CALIBRATION]).unwrap();
    assert_eq!(rec.chosen, 1.0, "{}", rec.describe_grid());
    let (auc_cal, meta_cal) = exported_auc(dir, &data, &calibrated, "calibrated");
    let (auc_rel, meta_rel) = exported_auc(dir, &data, &model, "release");
    assert_eq!(meta_cal.se_decode_scale_infer, 1.0);
    assert_eq!(meta_rel.se_decode_scale_infer, 0.2);
    // The runtime's AUC is calibration's (libtorch) at the same scale.
    let at = |g: f64| rec.auc_at(g).unwrap();
    assert!(
        (auc_cal - at(1.0)).abs() < 1e-6,
        "{auc_cal} vs {}",
        rec.describe_grid()
    );
    assert!(
        (auc_rel - at(0.2)).abs() < 1e-6,
        "{auc_rel} vs {}",
        rec.describe_grid()
    );
    assert!(
        auc_cal > 98.9 && auc_cal > auc_rel + 10.0,
        "{auc_cal} vs {auc_rel}"
    );
}
