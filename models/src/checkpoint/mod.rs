//! The checkpoint format, read and written without libtorch: the one home of
//! its keys, its reader and its writer.
//!
//! A checkpoint (`tcanet-checkpoint/2`) is one `.safetensors` file:
//!
//! * the network's parameters as f32, named as [`crate::param_specs`] (the
//!   authors' state_dict keys);
//! * optionally the training state, so a run can resume from the file alone:
//!   the optimiser's tensors under [`TRAIN_STATE_PREFIX`] and the settings
//!   exact resumption depends on ([`TrainState`]);
//! * `__metadata__`: [`KEY_FORMAT`], [`KEY_CONFIG`] (the [`ModelConfig`]
//!   JSON), the position ([`KEY_EPOCH`], [`KEY_STEP_IN_EPOCH`], [`KEY_STEP`])
//!   and any extra entries (sorted; the bytes depend only on the content).
//!
//! Being one file, a checkpoint and its training state become visible
//! together, by one rename. [`Checkpoint::load`] also accepts
//! `tcanet-checkpoint/1` files (no training state) and plain state_dicts
//! converted from the authors' release (keys with DataParallel's `module.`,
//! `mask_matrix` buffers, no metadata) when the config is supplied.
mod tensor_file;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::{param_specs, release_key, shape_fields, ConfigError, ModelConfig};

pub use tensor_file::{
    parse_tensor_file, read_tensor_file, tensor_file_bytes, write_tensor_file, NamedTensor,
    TensorFile,
};
use tensor_file::{read_file_bytes, views_file_bytes, TensorView};

/// File names inside a training run directory (`tcanet-train train --out
/// DIR`), which the trainer writes and the exporter and the demo read.
pub mod run_dir {
    /// The resumable checkpoint, rewritten during training.
    pub const LAST: &str = "last.safetensors";
    /// The checkpoint of the best epoch on the held-out videos.
    pub const BEST: &str = "best.safetensors";
    /// The JSON-lines log.
    pub const LOG: &str = "train.jsonl";
}

/// The format tag this crate writes (value of [`KEY_FORMAT`]).
pub const CHECKPOINT_FORMAT: &str = "tcanet-checkpoint/2";
/// The format tags this crate reads.
pub const READABLE_FORMATS: [&str; 2] = ["tcanet-checkpoint/1", CHECKPOINT_FORMAT];
/// Metadata key of the format tag.
pub const KEY_FORMAT: &str = "tcanet.format";
/// Metadata key of the model config JSON.
pub const KEY_CONFIG: &str = "tcanet.config";
/// Metadata key of the epochs completed ([`Position::epoch`]).
pub const KEY_EPOCH: &str = "tcanet.epoch";
/// Metadata key of the steps done in the current epoch.
pub const KEY_STEP_IN_EPOCH: &str = "tcanet.step_in_epoch";
/// Metadata key of the steps done in total ([`Position::global_step`]).
pub const KEY_STEP: &str = "tcanet.step";
/// Metadata key of the training settings (the trainer's options as JSON).
pub const KEY_TRAIN_OPTIONS: &str = "tcanet.train.options";
/// Metadata key of the optimiser's step count.
pub const KEY_OPTIMIZER_STEPS: &str = "tcanet.train.optimizer_steps";
/// Metadata key of the training data's fingerprint.
pub const KEY_DATA_FINGERPRINT: &str = "tcanet.train.data_fingerprint";
/// Metadata key of the best epoch so far and its score (the trainer's
/// best-checkpoint selection, JSON), so that a resumed run keeps selecting.
pub const KEY_TRAIN_BEST: &str = "tcanet.train.best";
/// Name prefix of the training-state tensors.
pub const TRAIN_STATE_PREFIX: &str = "train_state.";

/// Why a checkpoint cannot be read, used or written.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// The file cannot be read or written.
    #[error("{}: {cause}", path.display())]
    Io {
        /// The checkpoint path.
        path: PathBuf,
        /// The I/O error.
        cause: std::io::Error,
    },
    /// The file is not a valid safetensors file.
    #[error("{}: not a valid safetensors file: {reason}", path.display())]
    Format {
        /// The checkpoint path.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The file has no config and none was supplied.
    #[error(
        "{}: carries no model config (metadata `{KEY_CONFIG}`): pass --preset NAME \
         (hacs, anet, tiny) or --config FILE", path.display()
    )]
    NoConfig {
        /// The checkpoint path.
        path: PathBuf,
    },
    /// The embedded or supplied config is invalid.
    #[error("{}: {cause}", path.display())]
    Config {
        /// The checkpoint path.
        path: PathBuf,
        /// The config error.
        cause: ConfigError,
    },
    /// The file is tagged with a format this crate does not read.
    #[error("{}: unsupported checkpoint format `{found}` (this build reads {})", path.display(), READABLE_FORMATS.join(", "))]
    UnknownFormat {
        /// The checkpoint path.
        path: PathBuf,
        /// The tag found.
        found: String,
    },
    /// A metadata entry cannot be read.
    #[error("{}: metadata `{key}`: {reason}", path.display())]
    Metadata {
        /// The checkpoint path.
        path: PathBuf,
        /// The key.
        key: String,
        /// What is wrong with its value.
        reason: String,
    },
    /// A parameter the config needs is absent.
    #[error("{}: missing tensor `{name}` (shape {expected:?}) required by the config", path.display())]
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
        "{}: tensor `{name}` has shape {found:?} but the config expects {expected:?} \
         ({hint}): the config does not match the weights", path.display()
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
        "{}: unexpected tensor `{name}`: not a parameter of this config \
         (lgte_num {lgte_num}): the config does not match the weights", path.display()
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
    #[error("{}: tensor `{name}` appears twice (with and without `module.`)", path.display())]
    Duplicate {
        /// The checkpoint path.
        path: PathBuf,
        /// The parameter name.
        name: String,
    },
    /// A tensor has an element type other than a float.
    #[error("{}: tensor `{name}` has element type {dtype}; expected F32 (or F16, BF16, F64)", path.display())]
    Dtype {
        /// The checkpoint path.
        path: PathBuf,
        /// The tensor name.
        name: String,
        /// The type found.
        dtype: String,
    },
    /// A tensor holds NaN or infinity.
    #[error("{}: tensor `{name}` holds a non-finite value at flat index {index}", path.display())]
    NonFinite {
        /// The checkpoint path.
        path: PathBuf,
        /// The tensor name.
        name: String,
        /// First offending element.
        index: usize,
    },
    /// The content handed to the writer is inconsistent.
    #[error("cannot write a checkpoint: {reason}")]
    Write {
        /// What is inconsistent.
        reason: String,
    },
    /// The header could not be encoded.
    #[error("cannot encode a safetensors header: {0}")]
    Header(#[from] serde_json::Error),
}

/// Where a run stands: the next step is step `step_in_epoch` of epoch `epoch` (0-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct Position {
    /// Current epoch, 0-based (= epochs completed).
    pub epoch: u64,
    /// Steps done in the current epoch.
    pub step_in_epoch: u64,
    /// Steps done in total.
    pub global_step: u64,
}

/// What a run needs, besides the parameters, to continue exactly.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TrainState {
    /// The training settings exactness depends on, as JSON (the trainer's options).
    pub options: String,
    /// A fingerprint of the training data.
    pub data_fingerprint: String,
    /// Optimiser steps taken.
    pub optimizer_steps: u64,
    /// The optimiser's tensors by name (without [`TRAIN_STATE_PREFIX`]).
    pub tensors: BTreeMap<String, (Vec<usize>, Vec<f32>)>,
}

/// Where the model config comes from when a checkpoint may lack one.
#[derive(Debug, Clone, Default)]
pub enum ConfigOverride {
    /// Use the config embedded in the checkpoint (required then).
    #[default]
    Embedded,
    /// Use this config (a preset or a file the caller parsed) instead.
    Given(ModelConfig),
}

/// What [`write_checkpoint`] writes.
#[derive(Debug, Clone, Copy)]
pub struct CheckpointContents<'a> {
    /// The model config (embedded as [`KEY_CONFIG`]).
    pub config: &'a ModelConfig,
    /// The run's position.
    pub position: Position,
    /// Exactly the parameters of `param_specs(config)`, any order.
    pub params: &'a [NamedTensor],
    /// The training state, for a resumable checkpoint.
    pub train_state: Option<&'a TrainState>,
    /// Extra metadata entries (not overriding the format's keys).
    pub extra: &'a BTreeMap<String, String>,
}

/// A checked checkpoint: its config, every parameter as f32, the position
/// and training state it carries.
#[derive(Debug, Clone)]
pub struct Checkpoint {
    /// The file it was read from.
    pub path: PathBuf,
    /// The model config the weights were checked against.
    pub config: ModelConfig,
    /// Whether the config came from the file (`false`: supplied by the caller).
    pub config_embedded: bool,
    /// The position (zero when the file has none).
    pub position: Position,
    /// Parameter name → row-major f32 values (shapes: `param_specs(config)`).
    pub tensors: BTreeMap<String, Vec<f32>>,
    /// The training state, when the file carries one.
    pub train_state: Option<TrainState>,
    /// Hex SHA-256 of the file's bytes.
    pub sha256: String,
    /// The file's `__metadata__` (empty for plain state_dicts).
    pub metadata: BTreeMap<String, String>,
}

/// Writes a checkpoint atomically (temporary file, then rename). The
/// parameters must be exactly `param_specs(config)` (names and shapes).
pub fn write_checkpoint(path: &Path, c: &CheckpointContents<'_>) -> Result<(), CheckpointError> {
    let bytes = checkpoint_bytes(c)?;
    tcanet_cli::write_atomic_bytes(path, &bytes).map_err(|cause| CheckpointError::Io {
        path: path.to_path_buf(),
        cause,
    })
}

/// The bytes [`write_checkpoint`] writes. Each tensor's values are copied
/// once, into the bytes.
pub fn checkpoint_bytes(c: &CheckpointContents<'_>) -> Result<Vec<u8>, CheckpointError> {
    let params = ordered_params(c.config, c.params)?;
    let mut tensors: Vec<TensorView<'_>> = params.iter().map(|t| t.view()).collect();
    let mut meta = c.extra.clone();
    let pos = c.position;
    for (k, v) in [
        (KEY_FORMAT, CHECKPOINT_FORMAT.to_string()),
        (KEY_CONFIG, c.config.to_json()),
        (KEY_EPOCH, pos.epoch.to_string()),
        (KEY_STEP_IN_EPOCH, pos.step_in_epoch.to_string()),
        (KEY_STEP, pos.global_step.to_string()),
    ] {
        meta.insert(k.to_string(), v);
    }
    let state_names: Vec<String> = c.train_state.map_or_else(Vec::new, |state| {
        state
            .tensors
            .keys()
            .map(|name| format!("{TRAIN_STATE_PREFIX}{name}"))
            .collect()
    });
    if let Some(state) = c.train_state {
        meta.insert(KEY_TRAIN_OPTIONS.into(), state.options.clone());
        meta.insert(KEY_DATA_FINGERPRINT.into(), state.data_fingerprint.clone());
        meta.insert(
            KEY_OPTIMIZER_STEPS.into(),
            state.optimizer_steps.to_string(),
        );
        tensors.extend(
            state
                .tensors
                .values()
                .zip(&state_names)
                .map(|((shape, data), name)| TensorView { name, shape, data }),
        );
    }
    views_file_bytes(&tensors, &meta)
}

/// `params` in `param_specs(cfg)` order, checked to be exactly those.
fn ordered_params<'a>(
    cfg: &ModelConfig,
    params: &'a [NamedTensor],
) -> Result<Vec<&'a NamedTensor>, CheckpointError> {
    let by_name: HashMap<&str, &NamedTensor> =
        params.iter().map(|t| (t.name.as_str(), t)).collect();
    let specs = param_specs(cfg);
    let mut ordered = Vec::with_capacity(specs.len());
    for spec in specs {
        let t = by_name
            .get(spec.name.as_str())
            .ok_or_else(|| CheckpointError::Write {
                reason: format!("parameter `{}` is missing", spec.name),
            })?;
        if t.shape != spec.shape {
            return Err(CheckpointError::Write {
                reason: format!(
                    "parameter `{}` has shape {:?}, the config needs {:?}",
                    spec.name, t.shape, spec.shape
                ),
            });
        }
        ordered.push(*t);
    }
    if by_name.len() != ordered.len() || params.len() != ordered.len() {
        return Err(CheckpointError::Write {
            reason: "parameters outside param_specs(config), or repeated, were given".into(),
        });
    }
    Ok(ordered)
}

impl Checkpoint {
    /// The values of parameter `name` (every parameter of the config is
    /// present once the checkpoint is loaded; others give an empty slice).
    pub fn get(&self, name: &str) -> &[f32] {
        self.tensors.get(name).map(Vec::as_slice).unwrap_or(&[])
    }

    /// Reads and checks a checkpoint. `config` supplies or overrides the
    /// model config; every parameter of `param_specs(config)` must be present
    /// with its shape and finite values, and no other tensor (besides
    /// `mask_matrix` and the training state) may be.
    pub fn load(path: &Path, config: &ConfigOverride) -> Result<Self, CheckpointError> {
        Self::from_bytes(path, &read_file_bytes(path)?, config)
    }

    /// [`Checkpoint::load`] with `first`, or when the file does not fit it,
    /// with `fallback` (the error is then the fallback's); the file is read once.
    pub fn load_with_fallback(
        path: &Path,
        first: &ConfigOverride,
        fallback: &ConfigOverride,
    ) -> Result<Self, CheckpointError> {
        let bytes = read_file_bytes(path)?;
        Self::from_bytes(path, &bytes, first).or_else(|_| Self::from_bytes(path, &bytes, fallback))
    }

    /// [`Checkpoint::load`] on bytes in memory (`path` names them in errors).
    pub fn from_bytes(
        path: &Path,
        bytes: &[u8],
        config: &ConfigOverride,
    ) -> Result<Self, CheckpointError> {
        let file = parse_tensor_file(path, bytes)?;
        let meta = Metadata {
            path,
            map: &file.metadata,
        };
        meta.check_format()?;
        let (cfg, config_embedded) = meta.config(config)?;
        let position = meta.position()?;
        let (tensors, state_tensors) = split_tensors(path, &cfg, file.tensors)?;
        let train_state = meta.train_state(state_tensors)?;
        Ok(Self {
            path: path.to_path_buf(),
            config: cfg,
            config_embedded,
            position,
            tensors,
            train_state,
            sha256: sha256_hex(bytes),
            metadata: file.metadata,
        })
    }
}

/// A checkpoint's metadata, read with errors naming the file and key.
struct Metadata<'a> {
    path: &'a Path,
    map: &'a BTreeMap<String, String>,
}

impl Metadata<'_> {
    fn err(&self, key: &str, reason: impl Into<String>) -> CheckpointError {
        CheckpointError::Metadata {
            path: self.path.to_path_buf(),
            key: key.to_string(),
            reason: reason.into(),
        }
    }

    fn check_format(&self) -> Result<(), CheckpointError> {
        match self.map.get(KEY_FORMAT) {
            Some(tag) if !READABLE_FORMATS.contains(&tag.as_str()) => {
                Err(CheckpointError::UnknownFormat {
                    path: self.path.to_path_buf(),
                    found: tag.clone(),
                })
            }
            _ => Ok(()),
        }
    }

    fn config(&self, given: &ConfigOverride) -> Result<(ModelConfig, bool), CheckpointError> {
        let config_err = |cause| CheckpointError::Config {
            path: self.path.to_path_buf(),
            cause,
        };
        match (given, self.map.get(KEY_CONFIG)) {
            (ConfigOverride::Given(c), _) => {
                c.validate().map_err(config_err)?;
                Ok((c.clone(), false))
            }
            (ConfigOverride::Embedded, Some(json)) => {
                Ok((ModelConfig::from_json(json).map_err(config_err)?, true))
            }
            (ConfigOverride::Embedded, None) => Err(CheckpointError::NoConfig {
                path: self.path.to_path_buf(),
            }),
        }
    }

    fn count(&self, key: &str) -> Result<Option<u64>, CheckpointError> {
        self.map
            .get(key)
            .map(|v| {
                v.parse::<u64>()
                    .map_err(|_| self.err(key, format!("'{v}' is not a count")))
            })
            .transpose()
    }

    fn position(&self) -> Result<Position, CheckpointError> {
        Ok(Position {
            epoch: self.count(KEY_EPOCH)?.unwrap_or(0),
            step_in_epoch: self.count(KEY_STEP_IN_EPOCH)?.unwrap_or(0),
            global_step: self.count(KEY_STEP)?.unwrap_or(0),
        })
    }

    fn train_state(
        &self,
        tensors: BTreeMap<String, (Vec<usize>, Vec<f32>)>,
    ) -> Result<Option<TrainState>, CheckpointError> {
        let Some(optimizer_steps) = self.count(KEY_OPTIMIZER_STEPS)? else {
            if let Some(name) = tensors.keys().next() {
                return Err(self.err(
                    KEY_OPTIMIZER_STEPS,
                    format!("absent, but tensor `{TRAIN_STATE_PREFIX}{name}` is present"),
                ));
            }
            return Ok(None);
        };
        let text = |key: &str| {
            self.map
                .get(key)
                .cloned()
                .ok_or_else(|| self.err(key, "missing"))
        };
        Ok(Some(TrainState {
            options: text(KEY_TRAIN_OPTIONS)?,
            data_fingerprint: text(KEY_DATA_FINGERPRINT)?,
            optimizer_steps,
            tensors,
        }))
    }
}

/// Parameters of `cfg` (checked) and training-state tensors of a file's tensors.
type SplitTensors = (
    BTreeMap<String, Vec<f32>>,
    BTreeMap<String, (Vec<usize>, Vec<f32>)>,
);

/// Separates the training state, maps release keys, and checks the
/// parameters against `param_specs(cfg)`.
fn split_tensors(
    path: &Path,
    cfg: &ModelConfig,
    all: BTreeMap<String, (Vec<usize>, Vec<f32>)>,
) -> Result<SplitTensors, CheckpointError> {
    let p = || path.to_path_buf();
    let mut found: HashMap<String, (Vec<usize>, Vec<f32>)> = HashMap::new();
    let mut state = BTreeMap::new();
    for (key, value) in all {
        check_finite(path, &key, &value.1)?;
        if let Some(name) = key.strip_prefix(TRAIN_STATE_PREFIX) {
            state.insert(name.to_string(), value);
            continue;
        }
        let Some(name) = release_key(&key) else {
            continue;
        };
        if found.insert(name.to_string(), value).is_some() {
            return Err(CheckpointError::Duplicate {
                path: p(),
                name: name.into(),
            });
        }
    }
    let mut params = BTreeMap::new();
    for spec in param_specs(cfg) {
        let Some((shape, values)) = found.remove(&spec.name) else {
            return Err(CheckpointError::Missing {
                path: p(),
                name: spec.name,
                expected: spec.shape,
            });
        };
        if shape != spec.shape {
            return Err(CheckpointError::Shape {
                path: p(),
                hint: shape_fields(&spec.name, cfg),
                name: spec.name,
                expected: spec.shape,
                found: shape,
            });
        }
        params.insert(spec.name, values);
    }
    if let Some(name) = found.into_keys().min() {
        return Err(CheckpointError::Unexpected {
            path: p(),
            name,
            lgte_num: cfg.lgte_num,
        });
    }
    Ok((params, state))
}

fn check_finite(path: &Path, name: &str, values: &[f32]) -> Result<(), CheckpointError> {
    match values.iter().position(|v| !v.is_finite()) {
        Some(index) => Err(CheckpointError::NonFinite {
            path: path.to_path_buf(),
            name: name.to_string(),
            index,
        }),
        None => Ok(()),
    }
}

/// Hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests;
