//! Random weights for trying the toolchain, benchmarks and tests: a fair
//! numerical workout for the exported graph, not a trained model.
use std::collections::BTreeMap;
use std::path::Path;

use rand::{Rng, SeedableRng};
use tcanet_models::checkpoint::{
    write_checkpoint, CheckpointContents, CheckpointError, NamedTensor, Position,
};
use tcanet_models::{param_specs, ModelConfig};

/// Random weights for `cfg` in PyTorch's default initialisation ranges
/// (uniform ±1/√fan_in; LayerNorm near 1 and 0), deterministic in `seed`.
pub fn random_weights(cfg: &ModelConfig, seed: u64) -> BTreeMap<String, Vec<f32>> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut out = BTreeMap::new();
    for spec in param_specs(cfg) {
        let n: usize = spec.shape.iter().product();
        let values: Vec<f32> = if spec.name.contains(".norm") {
            let centre = if spec.name.ends_with("weight") {
                1.0
            } else {
                0.0
            };
            (0..n).map(|_| centre + rng.gen_range(-0.1..0.1)).collect()
        } else {
            // A bias's fan-in is its weight's; the layer width stands in for it.
            let fan_in = match spec.shape.len() {
                1 => cfg.hidden_dim,
                _ => spec.shape[1..].iter().product::<usize>(),
            };
            let bound = 1.0 / (fan_in as f32).sqrt();
            (0..n).map(|_| rng.gen_range(-bound..bound)).collect()
        };
        out.insert(spec.name, values);
    }
    out
}

/// `weights` (named as `param_specs(cfg)`) as named tensors with their shapes.
pub fn as_named_tensors(
    cfg: &ModelConfig,
    weights: &BTreeMap<String, Vec<f32>>,
) -> Vec<NamedTensor> {
    param_specs(cfg)
        .into_iter()
        .filter_map(|s| {
            weights.get(&s.name).map(|data| NamedTensor {
                data: data.clone(),
                name: s.name,
                shape: s.shape,
            })
        })
        .collect()
}

/// Writes a checkpoint of `weights` for `cfg` (config embedded, position 0).
pub fn write_weights(
    path: &Path,
    cfg: &ModelConfig,
    weights: &BTreeMap<String, Vec<f32>>,
) -> Result<(), CheckpointError> {
    write_checkpoint(
        path,
        &CheckpointContents {
            config: cfg,
            position: Position::default(),
            params: &as_named_tensors(cfg, weights),
            train_state: None,
            extra: &BTreeMap::new(),
        },
    )
}
