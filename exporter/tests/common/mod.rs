//! Helpers shared by the exporter's integration tests.
#![allow(dead_code)]
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;

use tcanet_exporter::random_weights::{random_weights, write_weights};
use tcanet_models::checkpoint::{
    write_tensor_file, Checkpoint, ConfigOverride, NamedTensor, CHECKPOINT_FORMAT, KEY_CONFIG,
    KEY_FORMAT,
};
use tcanet_models::{param_specs, ModelConfig};

/// Whether this host's CPU provider runs float16 models. On processors with
/// float16 arithmetic (AArch64 FEAT_FP16) the runtime refuses them, because
/// ONNX Runtime's float16 grouped convolutions are wrong there; tests then
/// check the refusal ([`assert_fp16_refused`]) instead of the outputs.
pub fn cpu_runs_fp16() -> bool {
    tcanet_ort::init_ort(None).expect("ONNX Runtime of the project venv");
    !tcanet_ort::cpu_refuses_float16()
}

/// Asserts that the float16 model at `path` is refused on this host's CPU
/// provider, with a reason that says what to do.
pub fn assert_fp16_refused(path: &Path) {
    let Err(err) = tcanet_exporter::ort_run::OnnxModel::load(path, 1) else {
        panic!(
            "the float16 model {} is not refused on this processor",
            path.display()
        );
    };
    assert!(
        matches!(err, tcanet_ort::ModelError::Unsupported { .. })
            && err.to_string().contains("without --fp16"),
        "{err}"
    );
}

/// Asserts that a command given a float16 model exited 2 with the refusal.
pub fn assert_fp16_refused_exit(o: &std::process::Output) {
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("cannot run here") && err.contains("without --fp16"),
        "{err}"
    );
}

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
    write_weights(&path, cfg, random_weights(cfg, seed).unwrap()).unwrap();
    let ckpt = Checkpoint::load(&path, &ConfigOverride::Embedded).unwrap();
    (path, ckpt)
}

/// Writes arbitrary tensors as a safetensors file: shapes from `shapes`,
/// else from `param_specs(cfg)`, else flat. With `embed` the metadata names
/// the checkpoint format and carries `cfg`; without, it is a plain state_dict.
pub fn write_plain(
    path: &Path,
    cfg: &ModelConfig,
    tensors: &BTreeMap<String, Vec<f32>>,
    shapes: &HashMap<String, Vec<usize>>,
    embed: bool,
) {
    let spec_shapes: HashMap<String, Vec<usize>> = param_specs(cfg)
        .into_iter()
        .map(|s| (s.name, s.shape))
        .collect();
    let named: Vec<NamedTensor> = tensors
        .iter()
        .map(|(name, data)| NamedTensor {
            shape: shapes
                .get(name)
                .or_else(|| spec_shapes.get(name))
                .cloned()
                .unwrap_or_else(|| vec![data.len()]),
            name: name.clone(),
            data: data.clone(),
        })
        .collect();
    let mut meta = BTreeMap::new();
    if embed {
        meta.insert(KEY_FORMAT.to_string(), CHECKPOINT_FORMAT.to_string());
        meta.insert(KEY_CONFIG.to_string(), cfg.to_json());
    }
    write_tensor_file(path, &named, &meta).unwrap();
}

// Not every test file of the exporter uses it.
#[allow(unused_imports)]
pub use tcanet_testkit::small_seconds_config;

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
