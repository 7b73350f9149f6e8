//! An exported TCANet ONNX model: its contract checked before any video, and
//! one reusable session to run it.
//!
//! The contract (written by `tcanet-export`): inputs `features` `[B, C, T]`
//! and `proposals` `[B, N, 2]` (f32, network time units); outputs
//! `proposals_1..3` `[B, N, 2]` and `iou_1..3` `[B, N]`; metadata
//! `tcanet.config` (the [`ModelConfig`] JSON), `tcanet.checkpoint_sha256`,
//! `tcanet.exporter_version`, `tcanet.precision`.
use std::path::{Path, PathBuf};

use ort::session::Session;
use ort::value::{TensorElementType, TensorRef, ValueType};
use tcanet_models::ModelConfig;

use crate::ort_setup::{build_session, Device, OrtSetupError, SessionSettings};

/// Names of the model's inputs.
pub const INPUT_NAMES: [&str; 2] = ["features", "proposals"];
/// Names of the refined-proposal outputs of stages 1–3.
pub const PROPOSAL_OUTPUTS: [&str; 3] = ["proposals_1", "proposals_2", "proposals_3"];
/// Names of the IoU-estimate outputs of stages 1–3.
pub const IOU_OUTPUTS: [&str; 3] = ["iou_1", "iou_2", "iou_3"];

/// An ONNX file that is not a TCANet model this runtime can use, or a failed run.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// Loading ONNX Runtime or creating the session failed.
    #[error(transparent)]
    Setup(#[from] OrtSetupError),
    /// The model's inputs/outputs/metadata break the contract.
    #[error("{}: not a usable TCANet model: {reason}", path.display())]
    Contract {
        /// The model file.
        path: PathBuf,
        /// What does not match, naming the input/output and dimension.
        reason: String,
    },
    /// ONNX Runtime failed while running the model.
    #[error("{}: inference failed: {message}", path.display())]
    Run {
        /// The model file.
        path: PathBuf,
        /// ONNX Runtime's message.
        message: String,
    },
}

/// What the exporter recorded in the model's `metadata_props`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExportInfo {
    /// `tcanet.checkpoint_sha256`.
    pub checkpoint_sha256: Option<String>,
    /// `tcanet.exporter_version`.
    pub exporter_version: Option<String>,
    /// `tcanet.precision` (`fp32` or `fp16`).
    pub precision: Option<String>,
}

/// The model's outputs for one call, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct StageOutputs {
    /// Batch size B.
    pub batch: usize,
    /// Proposals per item N.
    pub proposals_per_item: usize,
    /// `proposals_1..3`, each `[B, N, 2]` flattened.
    pub proposals: [Vec<f32>; 3],
    /// `iou_1..3`, each `[B, N]` flattened.
    pub iou: [Vec<f32>; 3],
}

/// A loaded, checked TCANet model with one session reused for every call.
pub struct TcanetModel {
    session: Session,
    /// The model file.
    pub path: PathBuf,
    /// The network's configuration (from `tcanet.config`, or the override).
    pub config: ModelConfig,
    /// The exporter's metadata.
    pub export_info: ExportInfo,
    /// The device asked for.
    pub requested_device: Device,
    /// The device in use (CPU after a fallback).
    pub device: Device,
    /// Warnings for the user (device fallback, config override).
    pub warnings: Vec<String>,
}

impl std::fmt::Debug for TcanetModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TcanetModel")
            .field("path", &self.path)
            .field("device", &self.device)
            .field("export_info", &self.export_info)
            .finish()
    }
}

fn dims_of(ty: &ValueType) -> Option<(TensorElementType, Vec<i64>)> {
    match ty {
        ValueType::Tensor { ty, shape, .. } => Some((*ty, shape.iter().copied().collect())),
        _ => None,
    }
}

fn show_dims(dims: &[i64]) -> String {
    let parts: Vec<String> = dims
        .iter()
        .map(|d| if *d < 0 { "?".into() } else { d.to_string() })
        .collect();
    format!("[{}]", parts.join(", "))
}

/// Expected dimensions: a size (`None`: any) and a name for messages.
type ExpectedDims = Vec<(Option<i64>, &'static str)>;

/// Checks a declared shape against the expected one (`None` = any size;
/// a dynamic dimension in the model matches anything).
fn check_shape(what: &str, ty: &ValueType, expected: &[(Option<i64>, &str)]) -> Result<(), String> {
    let (elem, dims) = dims_of(ty).ok_or_else(|| format!("{what} is not a tensor"))?;
    if elem != TensorElementType::Float32 {
        return Err(format!(
            "{what} has element type {elem:?}, expected float32"
        ));
    }
    if dims.len() != expected.len() {
        let names: Vec<&str> = expected.iter().map(|e| e.1).collect();
        return Err(format!(
            "{what} has rank {} {}, expected rank {} [{}]",
            dims.len(),
            show_dims(&dims),
            expected.len(),
            names.join(", ")
        ));
    }
    for (i, (d, (want, name))) in dims.iter().zip(expected).enumerate() {
        if let Some(w) = want {
            if *d >= 0 && d != w {
                return Err(format!(
                    "{what} dimension {i} ({name}) is {d}, expected {w} (shape {})",
                    show_dims(&dims)
                ));
            }
        }
    }
    Ok(())
}

impl TcanetModel {
    /// Loads `path` on `settings.device` (after [`crate::ort_setup::init_ort`])
    /// and checks the contract: input and output names, ranks, element types,
    /// and C, T against the config. `config_override` replaces the config of
    /// the metadata (needed when the file has none).
    pub fn load(
        path: &Path,
        settings: &SessionSettings,
        config_override: Option<ModelConfig>,
    ) -> Result<Self, ModelError> {
        if !path.is_file() {
            return Err(ModelError::Contract {
                path: path.to_path_buf(),
                reason: "no such file".into(),
            });
        }
        let built = build_session(path, settings)?;
        let contract = |reason: String| ModelError::Contract {
            path: path.to_path_buf(),
            reason,
        };
        let session = built.session;
        let mut warnings = built.warnings;
        let meta = session
            .metadata()
            .map_err(|e| contract(format!("cannot read metadata: {e}")))?;
        let meta_config = meta.custom("tcanet.config");
        let export_info = ExportInfo {
            checkpoint_sha256: meta.custom("tcanet.checkpoint_sha256"),
            exporter_version: meta.custom("tcanet.exporter_version"),
            precision: meta.custom("tcanet.precision"),
        };
        drop(meta);
        let config = match (config_override, meta_config) {
            (Some(cfg), meta) => {
                if let Some(text) = meta {
                    if let Ok(m) = ModelConfig::from_json(&text) {
                        if m != cfg {
                            warnings.push(format!(
                                "the given config differs from the one in {} (tcanet.config); using the given one",
                                path.display()
                            ));
                        }
                    }
                }
                cfg
            }
            (None, Some(text)) => ModelConfig::from_json(&text)
                .map_err(|e| contract(format!("metadata tcanet.config: {e}")))?,
            (None, None) => {
                return Err(contract(
                    "no tcanet.config in metadata_props (not written by tcanet-export?); \
                     pass --preset or --config with the network's configuration"
                        .into(),
                ))
            }
        };
        let c = config.feat_dim as i64;
        let t = config.temporal_scale as i64;
        let find = |outlets: &[ort::value::Outlet], name: &str| {
            outlets
                .iter()
                .find(|o| o.name() == name)
                .map(|o| o.dtype().clone())
        };
        let input_names: Vec<&str> = session.inputs().iter().map(|o| o.name()).collect();
        let output_names: Vec<&str> = session.outputs().iter().map(|o| o.name()).collect();
        for name in INPUT_NAMES {
            if !input_names.contains(&name) {
                return Err(contract(format!(
                    "missing input '{name}' (inputs are {input_names:?}; expected features, proposals)"
                )));
            }
        }
        if input_names.len() != INPUT_NAMES.len() {
            return Err(contract(format!(
                "inputs are {input_names:?}; expected exactly features, proposals"
            )));
        }
        for name in PROPOSAL_OUTPUTS.iter().chain(IOU_OUTPUTS.iter()) {
            if !output_names.contains(name) {
                return Err(contract(format!(
                    "missing output '{name}' (outputs are {output_names:?})"
                )));
            }
        }
        let checks: Vec<(&str, ValueType, ExpectedDims)> = vec![
            (
                "input 'features'",
                find(session.inputs(), "features").expect("checked"),
                vec![(None, "B"), (Some(c), "C"), (Some(t), "T")],
            ),
            (
                "input 'proposals'",
                find(session.inputs(), "proposals").expect("checked"),
                vec![(None, "B"), (None, "N"), (Some(2), "start/end")],
            ),
        ];
        for (what, ty, expected) in &checks {
            check_shape(what, ty, expected).map_err(|r| {
                contract(format!(
                    "{r}; the config (feat_dim C={c}, temporal_scale T={t}) does not match this model"
                ))
            })?;
        }
        for name in PROPOSAL_OUTPUTS {
            let ty = find(session.outputs(), name).expect("checked");
            check_shape(
                &format!("output '{name}'"),
                &ty,
                &[(None, "B"), (None, "N"), (Some(2), "start/end")],
            )
            .map_err(contract)?;
        }
        for name in IOU_OUTPUTS {
            let ty = find(session.outputs(), name).expect("checked");
            check_shape(
                &format!("output '{name}'"),
                &ty,
                &[(None, "B"), (None, "N")],
            )
            .map_err(contract)?;
        }
        Ok(Self {
            session,
            path: path.to_path_buf(),
            config,
            export_info,
            requested_device: built.requested,
            device: built.used,
            warnings,
        })
    }

    /// Runs the network on `batch` items: `features` `[B, C, T]` and
    /// `proposals` `[B, N, 2]` (network units), both row-major.
    pub fn run(
        &mut self,
        features: &[f32],
        proposals: &[[f32; 2]],
        batch: usize,
    ) -> Result<StageOutputs, ModelError> {
        let (c, t) = (self.config.feat_dim, self.config.temporal_scale);
        let run_err = |message: String| ModelError::Run {
            path: self.path.clone(),
            message,
        };
        if batch == 0 || features.len() != batch * c * t || !proposals.len().is_multiple_of(batch) {
            return Err(run_err(format!(
                "inputs do not fit B={batch}, C={c}, T={t}: {} feature values, {} proposals",
                features.len(),
                proposals.len()
            )));
        }
        let n = proposals.len() / batch;
        let flat: &[f32] = proposals.as_flattened();
        let feats = TensorRef::from_array_view(([batch, c, t], features))
            .map_err(|e| run_err(e.to_string()))?;
        let props = TensorRef::from_array_view(([batch, n, 2], flat))
            .map_err(|e| run_err(e.to_string()))?;
        let path = self.path.clone();
        let outputs = self
            .session
            .run(ort::inputs!["features" => feats, "proposals" => props])
            .map_err(|e| ModelError::Run {
                path: path.clone(),
                message: e.to_string(),
            })?;
        let take = |name: &str, expected: usize| -> Result<Vec<f32>, ModelError> {
            let value = outputs.get(name).ok_or_else(|| ModelError::Run {
                path: path.clone(),
                message: format!("no output '{name}'"),
            })?;
            let (_, data) = value
                .try_extract_tensor::<f32>()
                .map_err(|e| ModelError::Run {
                    path: path.clone(),
                    message: format!("output '{name}': {e}"),
                })?;
            if data.len() != expected {
                return Err(ModelError::Run {
                    path: path.clone(),
                    message: format!(
                        "output '{name}' has {} values, expected {expected}",
                        data.len()
                    ),
                });
            }
            Ok(data.to_vec())
        };
        Ok(StageOutputs {
            batch,
            proposals_per_item: n,
            proposals: [
                take(PROPOSAL_OUTPUTS[0], batch * n * 2)?,
                take(PROPOSAL_OUTPUTS[1], batch * n * 2)?,
                take(PROPOSAL_OUTPUTS[2], batch * n * 2)?,
            ],
            iou: [
                take(IOU_OUTPUTS[0], batch * n)?,
                take(IOU_OUTPUTS[1], batch * n)?,
                take(IOU_OUTPUTS[2], batch * n)?,
            ],
        })
    }
}
