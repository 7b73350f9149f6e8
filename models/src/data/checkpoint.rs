//! The checkpoint format, `tcanet-checkpoint/1`, read and written without
//! libtorch: one `.safetensors` file of f32 parameters named as
//! [`crate::param_specs`], whose `__metadata__` carries `tcanet.format`,
//! `tcanet.config` (the [`ModelConfig`] JSON), `tcanet.epoch` and
//! `tcanet.step`. The trainer's state (AdamW moments, schedule and RNG
//! positions) sits beside it in `<stem>.train-state.safetensors`.
use super::{DataError, ErrorKind};
use crate::{param_specs, ModelConfig};
use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

/// Value of the `tcanet.format` metadata key.
pub const CHECKPOINT_FORMAT: &str = "tcanet-checkpoint/1";
/// Metadata key of the format tag.
pub const KEY_FORMAT: &str = "tcanet.format";
/// Metadata key of the model config JSON.
pub const KEY_CONFIG: &str = "tcanet.config";
/// Metadata key of the epochs completed (0-based epoch of the position).
pub const KEY_EPOCH: &str = "tcanet.epoch";
/// Metadata key of the global optimisation step.
pub const KEY_STEP: &str = "tcanet.step";

/// A named f32 tensor in host memory.
#[derive(Debug, Clone, PartialEq)]
pub struct NamedTensor {
    /// Its name.
    pub name: String,
    /// Its shape.
    pub shape: Vec<usize>,
    /// Values, row-major.
    pub data: Vec<f32>,
}

/// A safetensors file read into host memory (every tensor as f32).
#[derive(Debug, Clone, Default)]
pub struct TensorFile {
    /// The `__metadata__` map.
    pub metadata: BTreeMap<String, String>,
    /// Tensors by name: shape and row-major values.
    pub tensors: BTreeMap<String, (Vec<usize>, Vec<f32>)>,
}

/// A checkpoint: the parameters with the config and position they carry.
#[derive(Debug, Clone)]
pub struct Checkpoint {
    /// The model config from `tcanet.config`, if the file has one.
    pub config: Option<ModelConfig>,
    /// `tcanet.epoch`, if present.
    pub epoch: Option<u64>,
    /// `tcanet.step`, if present.
    pub step: Option<u64>,
    /// Every metadata entry.
    pub metadata: BTreeMap<String, String>,
    /// Parameters by name: shape and values.
    pub tensors: BTreeMap<String, (Vec<usize>, Vec<f32>)>,
}

fn st_err(path: &Path, msg: impl Into<String>) -> DataError {
    DataError::new(path, ErrorKind::Safetensors(msg.into()))
}

/// Writes f32 tensors and metadata as one safetensors file (temp file, then rename).
pub fn write_tensor_file(
    path: &Path,
    tensors: &[NamedTensor],
    metadata: &BTreeMap<String, String>,
) -> Result<(), DataError> {
    let bytes: Vec<(String, Vec<u8>, &[usize])> = tensors
        .iter()
        .map(|t| {
            assert_eq!(
                t.shape.iter().product::<usize>(),
                t.data.len(),
                "shape of {} matches its data",
                t.name
            );
            let b = t.data.iter().flat_map(|v| v.to_le_bytes()).collect();
            (t.name.clone(), b, t.shape.as_slice())
        })
        .collect();
    let views = bytes
        .iter()
        .map(|(n, b, s)| {
            TensorView::new(Dtype::F32, s.to_vec(), b)
                .map(|v| (n.clone(), v))
                .map_err(|e| st_err(path, format!("{n}: {e:?}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let meta: HashMap<String, String> = metadata.clone().into_iter().collect();
    let out = safetensors::tensor::serialize(views, &Some(meta))
        .map_err(|e| st_err(path, format!("{e:?}")))?;
    crate::io::write_atomic_bytes(path, &out).map_err(|e| DataError::io(path, e))
}

/// Reads a safetensors file; f32, f16, bf16 and f64 tensors come back as f32.
pub fn read_tensor_file(path: &Path) -> Result<TensorFile, DataError> {
    let bytes = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
    let (_, meta) =
        SafeTensors::read_metadata(&bytes).map_err(|e| st_err(path, format!("{e:?}")))?;
    let st = SafeTensors::deserialize(&bytes).map_err(|e| st_err(path, format!("{e:?}")))?;
    let metadata = meta
        .metadata()
        .clone()
        .unwrap_or_default()
        .into_iter()
        .collect();
    let mut tensors = BTreeMap::new();
    for (name, view) in st.tensors() {
        let d = view.data();
        let data: Vec<f32> = match view.dtype() {
            Dtype::F32 => d
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
            Dtype::F16 => d
                .chunks_exact(2)
                .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
            Dtype::BF16 => d
                .chunks_exact(2)
                .map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
            Dtype::F64 => d
                .chunks_exact(8)
                .map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")) as f32)
                .collect(),
            other => {
                return Err(st_err(
                    path,
                    format!("tensor '{name}' has dtype {other:?}; expected a float type"),
                ))
            }
        };
        tensors.insert(name, (view.shape().to_vec(), data));
    }
    Ok(TensorFile { metadata, tensors })
}

/// Writes a checkpoint of `cfg`'s parameters at `(epoch, step)`, with any
/// `extra` metadata. The names and shapes must be exactly `param_specs(cfg)`.
pub fn write_checkpoint(
    path: &Path,
    cfg: &ModelConfig,
    epoch: u64,
    step: u64,
    params: &[NamedTensor],
    extra: &BTreeMap<String, String>,
) -> Result<(), DataError> {
    let by_name: HashMap<&str, &NamedTensor> =
        params.iter().map(|t| (t.name.as_str(), t)).collect();
    let mut ordered = Vec::with_capacity(params.len());
    for spec in param_specs(cfg) {
        let t = by_name.get(spec.name.as_str()).ok_or_else(|| {
            st_err(path, format!("parameter '{}' is missing", spec.name)).field(spec.name.clone())
        })?;
        if t.shape != spec.shape {
            return Err(st_err(
                path,
                format!(
                    "parameter '{}' has shape {:?}, expected {:?}",
                    spec.name, t.shape, spec.shape
                ),
            ));
        }
        ordered.push((*t).clone());
    }
    if params.len() != ordered.len() {
        return Err(st_err(
            path,
            "parameters outside param_specs(cfg) were given",
        ));
    }
    let mut meta = extra.clone();
    meta.insert(KEY_FORMAT.into(), CHECKPOINT_FORMAT.into());
    meta.insert(KEY_CONFIG.into(), cfg.to_json());
    meta.insert(KEY_EPOCH.into(), epoch.to_string());
    meta.insert(KEY_STEP.into(), step.to_string());
    write_tensor_file(path, &ordered, &meta)
}

/// Reads a checkpoint (ours, or any safetensors of parameters: then `config`
/// is `None`). A file tagged with another `tcanet.format` is an error.
pub fn read_checkpoint(path: &Path) -> Result<Checkpoint, DataError> {
    let file = read_tensor_file(path)?;
    if let Some(f) = file.metadata.get(KEY_FORMAT) {
        if f != CHECKPOINT_FORMAT {
            return Err(
                st_err(path, format!("format '{f}' is not {CHECKPOINT_FORMAT}")).field(KEY_FORMAT),
            );
        }
    }
    let config = match file.metadata.get(KEY_CONFIG) {
        Some(j) => Some(
            ModelConfig::from_json(j).map_err(|e| st_err(path, e.to_string()).field(KEY_CONFIG))?,
        ),
        None => None,
    };
    let num = |k: &str| -> Result<Option<u64>, DataError> {
        file.metadata
            .get(k)
            .map(|v| {
                v.parse::<u64>()
                    .map_err(|_| st_err(path, format!("'{v}' is not a count")).field(k.to_string()))
            })
            .transpose()
    };
    Ok(Checkpoint {
        config,
        epoch: num(KEY_EPOCH)?,
        step: num(KEY_STEP)?,
        metadata: file.metadata,
        tensors: file.tensors,
    })
}

impl Checkpoint {
    /// Checks that the tensors are exactly `param_specs(cfg)` (names and shapes).
    pub fn check_params(&self, cfg: &ModelConfig, path: &Path) -> Result<(), DataError> {
        let specs = param_specs(cfg);
        for spec in &specs {
            match self.tensors.get(&spec.name) {
                None => {
                    return Err(st_err(
                        path,
                        format!("parameter '{}' is missing", spec.name),
                    ));
                }
                Some((shape, _)) if *shape != spec.shape => {
                    return Err(st_err(
                        path,
                        format!(
                            "parameter '{}' has shape {shape:?}, the config needs {:?}",
                            spec.name, spec.shape
                        ),
                    ));
                }
                Some(_) => {}
            }
        }
        if let Some(extra) = self
            .tensors
            .keys()
            .find(|k| !specs.iter().any(|s| &s.name == *k))
        {
            return Err(st_err(
                path,
                format!("unexpected tensor '{extra}' for this config"),
            ));
        }
        Ok(())
    }
}

/// `<dir>/<stem>.train-state.safetensors`: the training state beside a checkpoint.
pub fn train_state_path(checkpoint: &Path) -> PathBuf {
    let stem = checkpoint
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    checkpoint.with_file_name(format!("{stem}.train-state.safetensors"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_with_config_and_position() {
        let cfg = ModelConfig::tiny();
        let params: Vec<NamedTensor> = param_specs(&cfg)
            .into_iter()
            .enumerate()
            .map(|(i, s)| {
                let n: usize = s.shape.iter().product();
                NamedTensor {
                    data: (0..n).map(|j| (i * 1000 + j) as f32 * 1e-3).collect(),
                    name: s.name,
                    shape: s.shape,
                }
            })
            .collect();
        let dir = std::env::temp_dir().join(format!("tcanet-ckpt-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("last.safetensors");
        let mut extra = BTreeMap::new();
        extra.insert("note".to_string(), "x".to_string());
        write_checkpoint(&path, &cfg, 3, 120, &params, &extra).unwrap();
        let ck = read_checkpoint(&path).unwrap();
        assert_eq!(ck.config.as_ref(), Some(&cfg));
        assert_eq!((ck.epoch, ck.step), (Some(3), Some(120)));
        assert_eq!(ck.metadata[KEY_FORMAT], CHECKPOINT_FORMAT);
        assert_eq!(ck.metadata["note"], "x");
        ck.check_params(&cfg, &path).unwrap();
        for p in &params {
            assert_eq!(ck.tensors[&p.name], (p.shape.clone(), p.data.clone()));
        }
        assert!(ck.check_params(&ModelConfig::hacs(), &path).is_err());
        let mut missing = params.clone();
        missing.pop();
        let e = write_checkpoint(&path, &cfg, 0, 0, &missing, &extra).unwrap_err();
        assert!(e.to_string().contains("missing"), "{e}");
        assert_eq!(
            train_state_path(&path),
            dir.join("last.train-state.safetensors")
        );
    }
}
