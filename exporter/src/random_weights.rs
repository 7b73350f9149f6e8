//! Random weights for trying the toolchain, benchmarks and tests: a fair
//! numerical workout for the exported graph, not a trained model.
use std::collections::BTreeMap;
use std::path::Path;

use rand::{Rng, SeedableRng};
use tcanet_models::checkpoint::{
    write_checkpoint, CheckpointContents, CheckpointError, NamedTensor, Position,
};
use tcanet_models::{param_specs, parameter_count, ModelConfig};

/// The memory for a config's random weights could not be allocated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "random weights for the config: its {parameters} parameters need {} of memory, which could \
     not be allocated (free some memory or raise the process's limit, or choose a smaller config)",
    gib(*parameters)
)]
pub struct OutOfMemory {
    /// The config's parameter count.
    pub parameters: usize,
}

/// `parameters` float32 values in GiB, as text.
fn gib(parameters: usize) -> String {
    format!("{:.1} GiB", parameters as f64 * 4.0 / f64::from(1u32 << 30))
}

/// Random weights for `cfg` in PyTorch's default initialisation ranges
/// (uniform ±1/√fan_in; LayerNorm near 1 and 0), deterministic in `seed`.
/// Memory the config needs and cannot have is an error, not an abort.
pub fn random_weights(
    cfg: &ModelConfig,
    seed: u64,
) -> Result<BTreeMap<String, Vec<f32>>, OutOfMemory> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let parameters = parameter_count(cfg);
    let mut out = BTreeMap::new();
    for spec in param_specs(cfg) {
        let n: usize = spec.shape.iter().product();
        let mut values: Vec<f32> = Vec::new();
        values
            .try_reserve_exact(n)
            .map_err(|_| OutOfMemory { parameters })?;
        if spec.name.contains(".norm") {
            let centre = if spec.name.ends_with("weight") {
                1.0
            } else {
                0.0
            };
            values.extend((0..n).map(|_| centre + rng.gen_range(-0.1..0.1)));
        } else {
            // A bias's fan-in is its weight's; the layer width stands in for it.
            let fan_in = match spec.shape.len() {
                1 => cfg.hidden_dim,
                _ => spec.shape[1..].iter().product::<usize>(),
            };
            let bound = 1.0 / (fan_in as f32).sqrt();
            values.extend((0..n).map(|_| rng.gen_range(-bound..bound)));
        }
        out.insert(spec.name, values);
    }
    Ok(out)
}

/// `weights` (named as `param_specs(cfg)`) as named tensors with their
/// shapes; their values are moved, not copied.
pub fn into_named_tensors(
    cfg: &ModelConfig,
    mut weights: BTreeMap<String, Vec<f32>>,
) -> Vec<NamedTensor> {
    param_specs(cfg)
        .into_iter()
        .filter_map(|s| {
            weights.remove(&s.name).map(|data| NamedTensor {
                data,
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
    weights: BTreeMap<String, Vec<f32>>,
) -> Result<(), CheckpointError> {
    write_checkpoint(
        path,
        &CheckpointContents {
            config: cfg,
            position: Position::default(),
            params: &into_named_tensors(cfg, weights),
            train_state: None,
            extra: &BTreeMap::new(),
        },
    )
}
