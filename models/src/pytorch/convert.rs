//! A release state dict → our checkpoint (`tcanet-checkpoint/1`).
//!
//! Keys lose DataParallel's `module.` prefix ([`release_key`]); the
//! `mask_matrix` buffers are checked against the config (heads, T, window)
//! and dropped; every other tensor must be exactly a parameter of
//! [`param_specs`] with its shape, a float type and finite values. The config
//! is given, or is the preset whose values agree with the shapes.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::infer::{check_masks, evidence, pick_preset};
use super::release::{find_state_dict, Layout, ReleaseCheckpoint};
use super::{read_torch_file, PytorchError, Tensor};
use crate::checkpoint::{write_checkpoint, CheckpointContents, NamedTensor, Position};
use crate::{param_specs, release_key, shape_fields, ConfigError, ModelConfig};

/// Metadata key naming what a converted checkpoint was converted from.
pub const KEY_CONVERTED_FROM: &str = "tcanet.converted_from";

/// Where the model config comes from.
#[derive(Debug, Clone, Default)]
pub enum ConfigChoice {
    /// The preset (hacs, anet, tiny) whose values agree with the shapes.
    #[default]
    Infer,
    /// This config (a preset or a file the caller chose).
    Given(ModelConfig),
}

/// Why a state dict cannot become a checkpoint of the config.
#[derive(Debug, thiserror::Error)]
pub enum Problem {
    /// No state dict where the release puts it.
    #[error(
        "no TCANet state dict: {0}; expected {{'epoch', 'state_dict'}} (TCA_best.pth.tar), \
         {{'epoch', 'model_state', 'optimizer_dict'}} (epoch-N.pth.tar) or a bare state dict"
    )]
    NoStateDict(String),
    /// The `epoch` entry is not a count.
    #[error("its 'epoch' is {0}, not a count of epochs")]
    BadEpoch(String),
    /// A state dict entry is not a tensor.
    #[error("state dict entry `{key}` is {found}, not a tensor")]
    NotTensor {
        /// The key.
        key: String,
        /// What it is.
        found: String,
    },
    /// None of the keys is a TCANet parameter.
    #[error("not a TCANet state dict: no key names a TCANet parameter (keys: {0})")]
    NotTcanet(String),
    /// The keys are those of MMAction2's TCANet, whose layout differs.
    #[error(
        "this is an MMAction2 TCANet state dict (key `{0}`): its layout differs from the \
         authors' release (start/end regressors fused into one grouped convolution, \
         LayerNorm eps 1e-6) and is not converted"
    )]
    MmAction2(String),
    /// A parameter appears twice (with and without `module.`).
    #[error("tensor `{0}` appears twice (with and without `module.`)")]
    Duplicate(String),
    /// A parameter of the config is absent.
    #[error("missing tensor `{name}` (shape {expected:?}) required by the config")]
    Missing {
        /// The parameter name.
        name: String,
        /// Its shape under the config.
        expected: Vec<usize>,
    },
    /// A parameter has another shape than the config gives it.
    #[error(
        "tensor `{name}` has shape {found:?} but the config expects {expected:?} \
         ({fields}): the config does not match the weights"
    )]
    Shape {
        /// The parameter name.
        name: String,
        /// Its shape in the file.
        found: Vec<usize>,
        /// Its shape under the config.
        expected: Vec<usize>,
        /// The config fields that decide it, with their values.
        fields: String,
    },
    /// A tensor the config has no place for.
    #[error(
        "unexpected tensor `{name}`: not a parameter of this config (lgte_num {lgte_num}): \
         the config does not match the weights"
    )]
    Unexpected {
        /// The key.
        name: String,
        /// The config's LGTE layer count (the usual culprit).
        lgte_num: usize,
    },
    /// A parameter is not a float tensor.
    #[error("tensor `{name}` has element type {dtype}; expected a float type")]
    Dtype {
        /// The key.
        name: String,
        /// Its type.
        dtype: String,
    },
    /// A parameter holds NaN or infinity.
    #[error("tensor `{name}` holds a non-finite value at flat index {index}")]
    NonFinite {
        /// The key.
        name: String,
        /// First offending element.
        index: usize,
    },
    /// A `mask_matrix` buffer disagrees with the config.
    #[error("attention mask `{key}` {detail}: the config does not match the weights")]
    Mask {
        /// The key.
        key: String,
        /// What disagrees, naming the config field.
        detail: String,
    },
    /// No preset agrees with the shapes.
    #[error(
        "no preset matches the weights: they show {inferred}; but {presets}. \
         Give the config the weights were trained with (a ModelConfig JSON file)"
    )]
    NoPreset {
        /// The fields read from the weights.
        inferred: String,
        /// Each preset's first disagreeing field.
        presets: String,
    },
    /// The given config is invalid.
    #[error("{0}")]
    Config(#[from] ConfigError),
}

/// Why a conversion failed.
#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    /// The file is not a readable torch.save file.
    #[error(transparent)]
    Read(#[from] PytorchError),
    /// The file's contents are not a TCANet checkpoint of the config.
    #[error("{}: {problem}", path.display())]
    Checkpoint {
        /// The input file.
        path: PathBuf,
        /// What is wrong.
        problem: Problem,
    },
    /// The output would replace the input.
    #[error("refusing to write {} onto the input file", path.display())]
    SameFile {
        /// The output path.
        path: PathBuf,
    },
    /// The output could not be written.
    #[error("cannot write the checkpoint: {0}")]
    Write(#[source] crate::checkpoint::CheckpointError),
}

/// A converted state dict, ready to write.
#[derive(Debug, Clone)]
pub struct Converted {
    /// The config the weights were checked against (and that is embedded).
    pub config: ModelConfig,
    /// The preset the weights matched, when the config was inferred.
    pub preset: Option<&'static str>,
    /// The layout the state dict was found in.
    pub layout: Layout,
    /// The file's `epoch` as it is (0 when it records none): TCA_best.pth.tar
    /// records the epochs completed, epoch-N.pth.tar the 0-based index N of
    /// the epoch just trained.
    pub epoch: u64,
    /// Every parameter of `param_specs(config)`, as f32.
    pub params: Vec<NamedTensor>,
    /// The keys left out: the `mask_matrix` buffers.
    pub dropped: Vec<String>,
}

/// Checks a release state dict against the chosen config and converts it.
pub fn convert(ckpt: &ReleaseCheckpoint, choice: &ConfigChoice) -> Result<Converted, Problem> {
    if let Some((key, _)) = ckpt.entries.iter().find(|(k, _)| is_mmaction2_key(k)) {
        return Err(Problem::MmAction2(key.clone()));
    }
    let mut params: BTreeMap<String, (String, Tensor)> = BTreeMap::new();
    let mut masks = Vec::new();
    for (key, t) in &ckpt.entries {
        match release_key(key) {
            None => masks.push((key.clone(), t.clone())),
            Some(name) => {
                if params
                    .insert(name.to_string(), (key.clone(), t.clone()))
                    .is_some()
                {
                    return Err(Problem::Duplicate(name.to_string()));
                }
            }
        }
    }
    if !params.keys().any(|k| is_tcanet_name(k)) {
        let keys: Vec<&str> = ckpt
            .entries
            .iter()
            .take(8)
            .map(|(k, _)| k.as_str())
            .collect();
        return Err(Problem::NotTcanet(keys.join(", ")));
    }
    let (config, preset) = match choice {
        ConfigChoice::Given(cfg) => {
            cfg.validate()?;
            (cfg.clone(), None)
        }
        ConfigChoice::Infer => {
            let (name, cfg) = pick_preset(&evidence(&params, &masks))?;
            (cfg, Some(name))
        }
    };
    let tensors = check_params(&config, params)?;
    check_masks(&config, &masks)?;
    Ok(Converted {
        config,
        preset,
        layout: ckpt.layout,
        epoch: ckpt.epoch.unwrap_or(0),
        params: tensors,
        dropped: masks.into_iter().map(|(k, _)| k).collect(),
    })
}

/// Every parameter of the config, in `param_specs` order, checked.
fn check_params(
    cfg: &ModelConfig,
    mut found: BTreeMap<String, (String, Tensor)>,
) -> Result<Vec<NamedTensor>, Problem> {
    let mut out = Vec::new();
    for spec in param_specs(cfg) {
        let Some((key, t)) = found.remove(&spec.name) else {
            return Err(Problem::Missing {
                name: spec.name,
                expected: spec.shape,
            });
        };
        if t.shape() != spec.shape.as_slice() {
            return Err(Problem::Shape {
                fields: shape_fields(&spec.name, cfg),
                name: key,
                found: t.shape().to_vec(),
                expected: spec.shape,
            });
        }
        if !t.dtype().is_float() {
            return Err(Problem::Dtype {
                name: key,
                dtype: t.dtype().to_string(),
            });
        }
        let data = t.to_f32();
        if let Some(index) = data.iter().position(|v| !v.is_finite()) {
            return Err(Problem::NonFinite { name: key, index });
        }
        out.push(NamedTensor {
            name: spec.name,
            shape: spec.shape,
            data,
        });
    }
    if let Some((_, (key, _))) = found.into_iter().next() {
        return Err(Problem::Unexpected {
            name: key,
            lgte_num: cfg.lgte_num,
        });
    }
    Ok(out)
}

/// Whether `name` (without `module.`) belongs to the release's TCANet.
fn is_tcanet_name(name: &str) -> bool {
    ["x_1d_b_f.", "lgtes.", "tbr1.", "tbr2.", "tbr3."]
        .iter()
        .any(|p| name.starts_with(p))
}

/// Whether `key` is named as in MMAction2's TCANet (not the release's).
fn is_mmaction2_key(key: &str) -> bool {
    let k = key.strip_prefix("module.").unwrap_or(key);
    (k.starts_with("lgtes.") && (k.contains(".atten.attn.") || k.contains(".ffn.layers.")))
        || (k.starts_with("tbr") && (k.contains(".reg1se.0.") || k.contains(".reg1xw.0.")))
}

/// Reads a release checkpoint at `input`, converts it and writes it to
/// `output` atomically (epoch from the file, step 0). `output` must not be
/// the input file.
pub fn convert_file(
    input: &Path,
    output: &Path,
    choice: &ConfigChoice,
) -> Result<Converted, ConvertError> {
    if same_file(input, output) {
        return Err(ConvertError::SameFile {
            path: output.to_path_buf(),
        });
    }
    let file = read_torch_file(input)?;
    let problem = |problem| ConvertError::Checkpoint {
        path: input.to_path_buf(),
        problem,
    };
    let ckpt = find_state_dict(&file.root).map_err(problem)?;
    let done = convert(&ckpt, choice).map_err(problem)?;
    let source = input
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let extra = BTreeMap::from([(
        KEY_CONVERTED_FROM.to_string(),
        format!(
            "{source} (PyTorch {:?} format, {})",
            file.format, done.layout
        ),
    )]);
    let contents = CheckpointContents {
        config: &done.config,
        position: Position {
            epoch: done.epoch,
            ..Position::default()
        },
        params: &done.params,
        train_state: None,
        extra: &extra,
    };
    write_checkpoint(output, &contents).map_err(ConvertError::Write)?;
    Ok(done)
}

/// Whether `a` and `b` name the same existing file.
fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(x), Ok(y)) => x == y,
        _ => false,
    }
}
