//! Reading (and, for tests and benchmarks, writing) the trainer's safetensors
//! checkpoints without libtorch, with every tensor checked against
//! [`tcanet_models::param_specs`].
//!
//! Format (`tcanet-checkpoint/1`): one `.safetensors` file whose tensors are
//! named as the release's state_dict keys, and whose `__metadata__` carries
//! `tcanet.format`, `tcanet.config` (ModelConfig JSON), `tcanet.epoch` and
//! `tcanet.step`. A plain state_dict converted from the authors' release
//! (keys with `module.`, `mask_matrix` buffers, no metadata) is accepted when
//! the caller supplies the config.
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use rand::{Rng, SeedableRng};
use safetensors::{tensor::TensorView, Dtype, SafeTensors};
use sha2::{Digest, Sha256};
use tcanet_models::{param_specs, release_key, ModelConfig};

/// Metadata key of the checkpoint format tag.
pub const FORMAT_KEY: &str = "tcanet.format";
/// The format tag this crate reads and writes.
pub const FORMAT: &str = "tcanet-checkpoint/1";
/// Metadata key of the embedded ModelConfig JSON.
pub const CONFIG_KEY: &str = "tcanet.config";

/// Why a checkpoint cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// The file cannot be read.
    #[error("cannot read checkpoint {path}: {cause}")]
    Io {
        /// The checkpoint path.
        path: PathBuf,
        /// The I/O error.
        cause: std::io::Error,
    },
    /// The file is not a valid safetensors file.
    #[error("{path} is not a valid safetensors file: {reason}")]
    Format {
        /// The checkpoint path.
        path: PathBuf,
        /// The parser's complaint.
        reason: String,
    },
    /// The file has no config and none was supplied.
    #[error(
        "{path} carries no model config (metadata key `tcanet.config`): \
         pass --preset NAME (hacs, anet, tiny) or --config FILE"
    )]
    NoConfig {
        /// The checkpoint path.
        path: PathBuf,
    },
    /// The embedded or supplied config is invalid.
    #[error("{path}: {cause}")]
    Config {
        /// The checkpoint path.
        path: PathBuf,
        /// The config error.
        cause: tcanet_models::ConfigError,
    },
    /// The file is tagged with an unknown format.
    #[error("{path}: unsupported checkpoint format `{found}` (expected `{FORMAT}`)")]
    UnknownFormat {
        /// The checkpoint path.
        path: PathBuf,
        /// The tag found.
        found: String,
    },
    /// A parameter the config needs is absent.
    #[error("{path}: missing tensor `{name}` (shape {expected:?}) required by the config")]
    Missing {
        /// The checkpoint path.
        path: PathBuf,
        /// The parameter name.
        name: String,
        /// Its expected shape.
        expected: Vec<usize>,
    },
    /// A parameter has the wrong shape.
    #[error(
        "{path}: tensor `{name}` has shape {found:?} but the config expects {expected:?} \
         ({hint}): the config does not match the weights"
    )]
    Shape {
        /// The checkpoint path.
        path: PathBuf,
        /// The parameter name.
        name: String,
        /// Its expected shape.
        expected: Vec<usize>,
        /// Its shape in the file.
        found: Vec<usize>,
        /// The config fields that decide the shape, with their values.
        hint: String,
    },
    /// A tensor the config has no place for.
    #[error(
        "{path}: unexpected tensor `{name}`: not a parameter of this config \
         (lgte_num {lgte_num}): the config does not match the weights"
    )]
    Unexpected {
        /// The checkpoint path.
        path: PathBuf,
        /// The tensor name.
        name: String,
        /// The config's LGTE layer count (the usual culprit).
        lgte_num: usize,
    },
    /// The same parameter appears twice (with and without `module.`).
    #[error("{path}: tensor `{name}` appears twice (with and without `module.`)")]
    Duplicate {
        /// The checkpoint path.
        path: PathBuf,
        /// The parameter name.
        name: String,
    },
    /// A tensor has an element type other than a float.
    #[error("{path}: tensor `{name}` has element type {dtype}; expected F32 (or F16/BF16/F64)")]
    Dtype {
        /// The checkpoint path.
        path: PathBuf,
        /// The tensor name.
        name: String,
        /// The type found.
        dtype: String,
    },
    /// A tensor holds NaN or infinity.
    #[error("{path}: tensor `{name}` holds a non-finite value at flat index {index}")]
    NonFinite {
        /// The checkpoint path.
        path: PathBuf,
        /// The tensor name.
        name: String,
        /// First offending element.
        index: usize,
    },
}

/// Where the model config comes from when the checkpoint may lack one.
#[derive(Debug, Clone, Default)]
pub enum ConfigOverride {
    /// Use the config embedded in the checkpoint (required then).
    #[default]
    Embedded,
    /// Use this config (a preset or a file the caller parsed) instead.
    Given(ModelConfig),
}

/// A checked checkpoint: its config and every parameter as f32.
#[derive(Debug, Clone)]
pub struct Checkpoint {
    /// The file it was read from.
    pub path: PathBuf,
    /// The model config the weights were checked against.
    pub config: ModelConfig,
    /// Whether the config came from the file (`false`: supplied by the caller).
    pub config_embedded: bool,
    /// Parameter name (release key) → row-major f32 values.
    pub tensors: BTreeMap<String, Vec<f32>>,
    /// Hex SHA-256 of the file's bytes.
    pub sha256: String,
    /// The file's `__metadata__` (empty for plain state_dicts).
    pub metadata: HashMap<String, String>,
}

impl Checkpoint {
    /// The values of parameter `name`; it exists once the checkpoint is loaded.
    pub fn get(&self, name: &str) -> &[f32] {
        self.tensors
            .get(name)
            .unwrap_or_else(|| panic!("parameter {name} checked at load time"))
    }

    /// Reads and checks a checkpoint. `config` supplies or overrides the model
    /// config; every parameter of `param_specs(config)` must be present with
    /// its shape, and no other tensor (besides `mask_matrix`) may be.
    pub fn load(path: &Path, config: &ConfigOverride) -> Result<Self, CheckpointError> {
        let bytes = std::fs::read(path).map_err(|cause| CheckpointError::Io {
            path: path.to_path_buf(),
            cause,
        })?;
        Self::from_bytes(path, &bytes, config)
    }

    /// [`Checkpoint::load`] on bytes already in memory (`path` names them in errors).
    pub fn from_bytes(
        path: &Path,
        bytes: &[u8],
        config: &ConfigOverride,
    ) -> Result<Self, CheckpointError> {
        let p = || path.to_path_buf();
        let format_err = |e: safetensors::SafeTensorError| CheckpointError::Format {
            path: p(),
            reason: e.to_string(),
        };
        let (_, header) = SafeTensors::read_metadata(bytes).map_err(format_err)?;
        let metadata = header.metadata().clone().unwrap_or_default();
        if let Some(tag) = metadata.get(FORMAT_KEY) {
            if tag != FORMAT {
                return Err(CheckpointError::UnknownFormat {
                    path: p(),
                    found: tag.clone(),
                });
            }
        }
        let (cfg, config_embedded) = match (config, metadata.get(CONFIG_KEY)) {
            (ConfigOverride::Given(c), _) => {
                c.validate()
                    .map_err(|cause| CheckpointError::Config { path: p(), cause })?;
                (c.clone(), false)
            }
            (ConfigOverride::Embedded, Some(json)) => (
                ModelConfig::from_json(json)
                    .map_err(|cause| CheckpointError::Config { path: p(), cause })?,
                true,
            ),
            (ConfigOverride::Embedded, None) => {
                return Err(CheckpointError::NoConfig { path: p() })
            }
        };
        let st = SafeTensors::deserialize(bytes).map_err(format_err)?;
        let mut found: HashMap<String, TensorView<'_>> = HashMap::new();
        for (key, view) in st.iter() {
            let Some(name) = release_key(key) else {
                continue;
            };
            if found.insert(name.to_string(), view).is_some() {
                return Err(CheckpointError::Duplicate {
                    path: p(),
                    name: name.into(),
                });
            }
        }
        let mut tensors = BTreeMap::new();
        for spec in param_specs(&cfg) {
            let Some(view) = found.remove(&spec.name) else {
                return Err(CheckpointError::Missing {
                    path: p(),
                    name: spec.name,
                    expected: spec.shape,
                });
            };
            if view.shape() != spec.shape.as_slice() {
                return Err(CheckpointError::Shape {
                    path: p(),
                    hint: shape_hint(&spec.name, &cfg),
                    name: spec.name,
                    expected: spec.shape,
                    found: view.shape().to_vec(),
                });
            }
            let values = to_f32(&view).ok_or_else(|| CheckpointError::Dtype {
                path: p(),
                name: spec.name.clone(),
                dtype: format!("{:?}", view.dtype()),
            })?;
            if let Some(index) = values.iter().position(|v| !v.is_finite()) {
                return Err(CheckpointError::NonFinite {
                    path: p(),
                    name: spec.name,
                    index,
                });
            }
            tensors.insert(spec.name, values);
        }
        if let Some(name) = found.into_keys().min() {
            return Err(CheckpointError::Unexpected {
                path: p(),
                name,
                lgte_num: cfg.lgte_num,
            });
        }
        Ok(Self {
            path: p(),
            config: cfg,
            config_embedded,
            tensors,
            sha256: sha256_hex(bytes),
            metadata,
        })
    }
}

/// Hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The config fields that decide the shape of parameter `name`.
fn shape_hint(name: &str, c: &ModelConfig) -> String {
    let g = c.conv_groups;
    let h = c.hidden_dim;
    if name.starts_with("x_1d_b_f.0") {
        format!("hidden_dim {h}, feat_dim {} / conv_groups {g}", c.feat_dim)
    } else if name.starts_with("x_1d_b_f") || name.contains("reg1xw") {
        let k = if name.contains("reg_1d_o.0") {
            format!(
                ", kernel = all {} samples after two stride-2 convs",
                c.total_sample_num()
            )
        } else {
            String::new()
        };
        format!("hidden_dim {h}, conv_groups {g}{k}")
    } else if name.contains("linear") {
        format!("hidden_dim {h}, ffn_dim {}", c.ffn_dim)
    } else if name.starts_with("lgtes") {
        format!("hidden_dim {h}")
    } else if name.contains("reg1se") {
        format!(
            "hidden_dim {h}, se_hidden_dim {}, conv_groups {g}, start_sample_num {}",
            c.se_hidden_dim, c.start_sample_num
        )
    } else {
        "model config".into()
    }
}

/// The tensor's values as f32, for the float element types.
fn to_f32(view: &TensorView<'_>) -> Option<Vec<f32>> {
    let d = view.data();
    Some(match view.dtype() {
        Dtype::F32 => d
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
        Dtype::F64 => d
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")) as f32)
            .collect(),
        Dtype::F16 => d
            .chunks_exact(2)
            .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
        Dtype::BF16 => d
            .chunks_exact(2)
            .map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
        _ => return None,
    })
}

/// Random weights for `cfg` in PyTorch's default initialisation ranges
/// (uniform ±1/√fan_in; LayerNorm near 1 and 0), deterministic in `seed`.
/// For tests and benchmarks: the network they define is a fair numerical
/// workout, not a trained model.
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
            let fan_in = if spec.shape.len() > 1 {
                spec.shape[1..].iter().product::<usize>()
            } else {
                // A bias: its weight's fan-in is not known here; use the layer width.
                cfg.hidden_dim
            };
            let bound = 1.0 / (fan_in as f32).sqrt();
            (0..n).map(|_| rng.gen_range(-bound..bound)).collect()
        };
        out.insert(spec.name, values);
    }
    out
}

/// Writes `tensors` (shapes from `param_specs(cfg)`, or as given in `shapes`)
/// as a safetensors checkpoint, atomically. With `embed_config` the metadata
/// carries the trainer's `tcanet-checkpoint/1` header; without it the file is
/// a plain state_dict like a converted release checkpoint. `key_prefix`
/// (e.g. `module.`) is prepended to every key.
pub fn write_checkpoint(
    path: &Path,
    cfg: &ModelConfig,
    tensors: &BTreeMap<String, Vec<f32>>,
    shapes: &HashMap<String, Vec<usize>>,
    embed_config: bool,
    key_prefix: &str,
) -> std::io::Result<()> {
    let spec_shapes: HashMap<String, Vec<usize>> = param_specs(cfg)
        .into_iter()
        .map(|s| (s.name, s.shape))
        .collect();
    let bytes: Vec<(String, Vec<u8>, Vec<usize>)> = tensors
        .iter()
        .map(|(name, v)| {
            let shape = shapes
                .get(name)
                .or_else(|| spec_shapes.get(name))
                .cloned()
                .unwrap_or_else(|| vec![v.len()]);
            let raw = v.iter().flat_map(|x| x.to_le_bytes()).collect();
            (format!("{key_prefix}{name}"), raw, shape)
        })
        .collect();
    let views: Vec<(String, TensorView<'_>)> = bytes
        .iter()
        .map(|(name, raw, shape)| {
            let view =
                TensorView::new(Dtype::F32, shape.clone(), raw).map_err(std::io::Error::other)?;
            Ok((name.clone(), view))
        })
        .collect::<std::io::Result<_>>()?;
    let metadata = embed_config.then(|| {
        HashMap::from([
            (FORMAT_KEY.to_string(), FORMAT.to_string()),
            (CONFIG_KEY.to_string(), cfg.to_json()),
            ("tcanet.epoch".to_string(), "0".to_string()),
            ("tcanet.step".to_string(), "0".to_string()),
        ])
    });
    let data = safetensors::serialize(views, metadata).map_err(std::io::Error::other)?;
    tcanet_models::io::write_atomic_bytes(path, &data)
}
