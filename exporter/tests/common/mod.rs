//! Helpers shared by the exporter's integration tests.
#![allow(dead_code)]
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;

use tcanet_exporter::checkpoint::{random_weights, write_checkpoint, Checkpoint, ConfigOverride};
use tcanet_models::ModelConfig;

/// The project's Python venv (onnx, onnxruntime), as configured for cargo.
pub fn venv() -> PathBuf {
    PathBuf::from(env!("TCANET_VENV"))
}

/// Runs the real `onnx.checker.check_model(full_check=True)` on `model`.
pub fn assert_onnx_checker_accepts(model: &Path) {
    let out = Command::new(venv().join("bin/python"))
        .arg("-c")
        .arg("import onnx,sys; onnx.checker.check_model(onnx.load(sys.argv[1]), full_check=True)")
        .arg(model)
        .output()
        .expect("the venv's python runs");
    assert!(
        out.status.success(),
        "onnx.checker rejects {}: {}",
        model.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A checkpoint with random weights for `cfg` (trainer format, config embedded).
pub fn random_checkpoint(
    dir: &Path,
    name: &str,
    cfg: &ModelConfig,
    seed: u64,
) -> (PathBuf, Checkpoint) {
    let path = dir.join(format!("{name}.safetensors"));
    write_checkpoint(
        &path,
        cfg,
        &random_weights(cfg, seed),
        &HashMap::new(),
        true,
        "",
    )
    .unwrap();
    let ckpt = Checkpoint::load(&path, &ConfigOverride::Embedded).unwrap();
    (path, ckpt)
}

/// Writes arbitrary tensors (shapes given) as a plain safetensors state_dict.
pub fn write_plain(
    path: &Path,
    cfg: &ModelConfig,
    tensors: &BTreeMap<String, Vec<f32>>,
    shapes: &HashMap<String, Vec<usize>>,
    embed: bool,
) {
    write_checkpoint(path, cfg, tensors, shapes, embed, "").unwrap();
}

/// A small config unlike the presets: 2 heads, window 5, one LGTE layer,
/// times in seconds (no per-video normalisation), 2 conv groups.
pub fn small_seconds_config() -> ModelConfig {
    ModelConfig {
        feat_dim: 12,
        temporal_scale: 40,
        temporal_interval: 0.5,
        normalize_by_duration: false,
        hidden_dim: 16,
        conv_groups: 2,
        lgte_num: 1,
        window_size: 5,
        heads: 2,
        ffn_dim: 24,
        start_sample_num: 8,
        end_sample_num: 8,
        action_sample_num: 12,
        prop_boundary_ratio: 0.3,
        se_hidden_dim: 8,
        ..ModelConfig::tiny()
    }
}

/// Another small config: 6 heads, even window 4, three LGTE layers, T = 24.
pub fn six_heads_config() -> ModelConfig {
    ModelConfig {
        feat_dim: 8,
        temporal_scale: 24,
        temporal_interval: 1.0 / 24.0,
        hidden_dim: 24,
        lgte_num: 3,
        window_size: 4,
        heads: 6,
        ffn_dim: 16,
        start_sample_num: 4,
        end_sample_num: 4,
        action_sample_num: 8,
        se_hidden_dim: 8,
        ..ModelConfig::tiny()
    }
}
