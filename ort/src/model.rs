//! An exported TCANet ONNX model: its contract ([`tcanet_models::onnx`])
//! checked before any video, and one reusable session to run it.
use std::path::{Path, PathBuf};

use ort::session::Session;
use ort::value::{TensorElementType, TensorRef, ValueType};
use tcanet_models::onnx::{
    ModelInterface, Precision, TimeSteps, INPUT_FEATURES, INPUT_NAMES, INPUT_PROPOSALS,
    IOU_OUTPUTS, PROPOSAL_OUTPUTS,
};
use tcanet_models::onnx_proto::ModelMetadataProto;
use tcanet_models::{ModelConfig, NUM_STAGES};

use crate::session::{build_session, build_session_for, Device, SessionSettings};
use crate::OrtSetupError;

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
    /// The model cannot run correctly on the device in use (a known ONNX
    /// Runtime defect on this processor).
    #[error("{}: cannot run here: {reason}", path.display())]
    Unsupported {
        /// The model file.
        path: PathBuf,
        /// Why, and what to do instead.
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

impl ModelError {
    /// Whether the model file (or the device asked for) is at fault rather
    /// than a run or the environment: an unusable model is invalid input.
    pub fn is_bad_input(&self) -> bool {
        match self {
            Self::Setup(e) => e.is_bad_input(),
            Self::Contract { .. } | Self::Unsupported { .. } => true,
            Self::Run { .. } => false,
        }
    }
}

/// The model's outputs for one call, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct StageOutputs {
    /// Batch size B.
    pub batch: usize,
    /// Proposals per item N.
    pub proposals_per_item: usize,
    /// [`PROPOSAL_OUTPUTS`] of stages 1..=3, each `[B, N, 2]` flattened.
    pub proposals: [Vec<f32>; NUM_STAGES],
    /// [`IOU_OUTPUTS`] of stages 1..=3, each `[B, N]` flattened.
    pub iou: [Vec<f32>; NUM_STAGES],
}

/// A loaded, checked TCANet model with one session reused for every call.
pub struct TcanetModel {
    session: Session,
    /// The model file.
    pub path: PathBuf,
    /// What the model declares (config, precision, T), or the override.
    pub interface: ModelInterface,
    /// The device asked for.
    pub requested_device: Device,
    /// The device in use (CPU after a fallback).
    pub device: Device,
    /// Warnings for the user (device fallback, config override).
    pub warnings: Vec<String>,
    /// The largest call the session accepts (TensorRT: its optimization
    /// profile's maximum B and N); `None`: any size.
    pub call_limit: Option<CallLimit>,
}

/// The largest batch and proposals-per-video count one call may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallLimit {
    /// Videos per call, B.
    pub batch: usize,
    /// Proposals per video, N.
    pub proposals: usize,
}

impl std::fmt::Debug for TcanetModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TcanetModel")
            .field("path", &self.path)
            .field("device", &self.device)
            .field("interface", &self.interface)
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
        return Err(format!("{what} has element type {elem}, expected float32"));
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
    /// Loads `path` on `settings.device` (after [`crate::init_ort`]) and
    /// checks the contract: input and output names, ranks, element types,
    /// and C, T against the config. `config_override` replaces the config of
    /// the metadata (needed when the file has none).
    pub fn load(
        path: &Path,
        settings: &SessionSettings,
        config_override: Option<ModelConfig>,
    ) -> Result<Self, ModelError> {
        let contract = |reason: String| ModelError::Contract {
            path: path.to_path_buf(),
            reason,
        };
        if path.is_dir() {
            return Err(contract("is a directory; give the .onnx file".into()));
        }
        if !path.exists() {
            return Err(contract("no such file".into()));
        }
        if !path.is_file() {
            return Err(contract(
                "is not a regular file (a device, pipe or socket); give the .onnx file".into(),
            ));
        }
        let built = match settings.device {
            Device::TensorRt(_) => {
                // TensorRT's optimization profile needs C and T: read them
                // from the file's metadata before building the session.
                let interface = file_interface(path, config_override.clone()).map_err(contract)?;
                settings
                    .tensorrt
                    .profile(&interface)
                    .map_err(|e| contract(format!("TensorRT profile: {e}")))?;
                build_session_for(path, settings, Some(&interface))?
            }
            _ => build_session(path, settings)?,
        };
        let mut warnings = built.warnings;
        // Why the device asked for was not used (the fallback's warnings).
        let fallback = (built.requested != built.used).then(|| warnings.join("; "));
        let interface = read_interface(&built.session, config_override, &mut warnings, path)
            .map_err(contract)?;
        check_io(&built.session, &interface).map_err(contract)?;
        match fp16_on_cpu(
            interface.precision,
            built.used,
            tcanet_models::cpu::has_fp16_arithmetic(),
            loaded_version(),
        ) {
            Fp16OnCpu::Fine => {}
            Fp16OnCpu::Warn(warning) => warnings.push(warning),
            Fp16OnCpu::Refuse(reason) => {
                let reason = match fallback {
                    Some(why) => format!("{reason} ({why})"),
                    None => reason,
                };
                return Err(ModelError::Unsupported {
                    path: path.to_path_buf(),
                    reason,
                });
            }
        }
        let call_limit = matches!(built.used, Device::TensorRt(_)).then(|| CallLimit {
            batch: settings.tensorrt.batch_range().max as usize,
            proposals: settings.tensorrt.proposals_range().max as usize,
        });
        Ok(Self {
            session: built.session,
            path: path.to_path_buf(),
            interface,
            requested_device: built.requested,
            device: built.used,
            warnings,
            call_limit,
        })
    }

    /// Stops ONNX Runtime's profiler (on with
    /// `SessionSettings::profile_prefix`) and returns the profile's path.
    pub fn end_profiling(&mut self) -> Result<PathBuf, ModelError> {
        self.session
            .end_profiling()
            .map(PathBuf::from)
            .map_err(|e| ModelError::Run {
                path: self.path.clone(),
                message: format!("cannot end profiling: {e}"),
            })
    }

    /// The network's configuration.
    pub fn config(&self) -> &ModelConfig {
        &self.interface.config
    }

    /// The time steps T of a call with `features_len` values for `batch` items.
    fn steps_of(&self, features_len: usize, batch: usize) -> Option<usize> {
        let per_step = batch.checked_mul(self.config().feat_dim)?;
        match self.interface.time_steps {
            TimeSteps::Fixed(t) => (features_len == per_step.checked_mul(t)?).then_some(t),
            TimeSteps::Dynamic => {
                (per_step > 0 && features_len > 0 && features_len.is_multiple_of(per_step))
                    .then(|| features_len / per_step)
            }
        }
    }

    /// Runs the network on `batch` items: `features` `[B, C, T]` and
    /// `proposals` `[B, N, 2]` (network units), both row-major. T is the
    /// model's fixed T, or any length for a model with a symbolic T.
    pub fn run(
        &mut self,
        features: &[f32],
        proposals: &[[f32; 2]],
        batch: usize,
    ) -> Result<StageOutputs, ModelError> {
        let c = self.config().feat_dim;
        let run_err = |message: String| ModelError::Run {
            path: self.path.clone(),
            message,
        };
        let steps = self.steps_of(features.len(), batch);
        let (Some(t), false) = (steps, batch == 0 || !proposals.len().is_multiple_of(batch)) else {
            return Err(run_err(format!(
                "input '{INPUT_FEATURES}' has {} values and '{INPUT_PROPOSALS}' {} pairs: \
                 they do not fit [B={batch}, C={c}, T={}] and [B, N, 2]",
                features.len(),
                proposals.len(),
                self.interface.time_steps,
            )));
        };
        let n = proposals.len() / batch;
        let feats = TensorRef::from_array_view(([batch, c, t], features))
            .map_err(|e| run_err(e.to_string()))?;
        let props = TensorRef::from_array_view(([batch, n, 2], proposals.as_flattened()))
            .map_err(|e| run_err(e.to_string()))?;
        let path = self.path.clone();
        let outputs = self
            .session
            .run(ort::inputs![INPUT_FEATURES => feats, INPUT_PROPOSALS => props])
            .map_err(|e| run_err(e.to_string()))?;
        let take = |name: &str, expected: usize, shape: &str| -> Result<Vec<f32>, ModelError> {
            let err = |message: String| ModelError::Run {
                path: path.clone(),
                message,
            };
            let value = outputs
                .get(name)
                .ok_or_else(|| err(format!("no output '{name}'")))?;
            let (_, data) = value
                .try_extract_tensor::<f32>()
                .map_err(|e| err(format!("output '{name}': {e}")))?;
            if data.len() != expected {
                return Err(err(format!(
                    "output '{name}' has {} values, expected {expected} (shape {shape}): \
                     the model does not follow the TCANet contract; export it again",
                    data.len()
                )));
            }
            Ok(data.to_vec())
        };
        let mut proposals_out: [Vec<f32>; NUM_STAGES] = Default::default();
        let mut iou_out: [Vec<f32>; NUM_STAGES] = Default::default();
        for k in 0..NUM_STAGES {
            let pairs = format!("[B={batch}, N={n}, 2]");
            proposals_out[k] = take(PROPOSAL_OUTPUTS[k], batch * n * 2, &pairs)?;
            iou_out[k] = take(IOU_OUTPUTS[k], batch * n, &format!("[B={batch}, N={n}]"))?;
        }
        Ok(StageOutputs {
            batch,
            proposals_per_item: n,
            proposals: proposals_out,
            iou: iou_out,
        })
    }
}

/// Whether [`TcanetModel::load`] refuses float16 models on this host's CPU
/// provider with the ONNX Runtime loaded (after [`crate::init_ort`]; before
/// it, as with the release known to be wrong): on processors with float16
/// arithmetic, where ONNX Runtime up to 1.31 computes float16 grouped
/// convolutions wrongly.
pub fn cpu_refuses_float16() -> bool {
    let arithmetic = tcanet_models::cpu::has_fp16_arithmetic();
    let verdict = fp16_on_cpu(Precision::Fp16, Device::Cpu, arithmetic, loaded_version());
    matches!(verdict, Fp16OnCpu::Refuse(_))
}

/// The loaded ONNX Runtime's version, empty before [`crate::init_ort`].
fn loaded_version() -> &'static str {
    crate::loaded().map_or("", |l| l.version.as_str())
}

/// The last ONNX Runtime release known to compute float16 grouped
/// convolutions wrongly on processors with float16 arithmetic.
const FP16_GROUPED_CONV_BROKEN_UP_TO: (u32, u32) = (1, 31);

/// Whether a model of some precision can run on the CPU provider here.
#[derive(Debug, Clone, PartialEq)]
enum Fp16OnCpu {
    /// Nothing known against it.
    Fine,
    /// Run it, with this warning.
    Warn(String),
    /// Do not run it: this reason, with what to do instead.
    Refuse(String),
}

/// Whether a `precision` model runs correctly on `device` of a host with
/// (`fp16_arithmetic`) or without float16 arithmetic, under ONNX Runtime
/// `ort_version`.
///
/// On processors with float16 arithmetic (AArch64 FEAT_FP16) ONNX Runtime's
/// CPU provider runs float16 convolutions with its own float16 kernel,
/// whose grouped path gives every group after the first the first group's
/// bias and the wrong weights (seen in 1.31.1; the TBR convs are grouped),
/// so the refined proposals come out wrong or NaN. Elsewhere it computes
/// them in float32 and the model is exact to float16 rounding.
fn fp16_on_cpu(
    precision: Precision,
    device: Device,
    fp16_arithmetic: bool,
    ort_version: &str,
) -> Fp16OnCpu {
    if precision != Precision::Fp16 || device != Device::Cpu || !fp16_arithmetic {
        return Fp16OnCpu::Fine;
    }
    let mut parts = ort_version.split('.').map(|p| p.parse::<u32>().ok());
    let known_broken = match (parts.next().flatten(), parts.next().flatten()) {
        (Some(major), Some(minor)) => (major, minor) <= FP16_GROUPED_CONV_BROKEN_UP_TO,
        _ => true,
    };
    let (major, minor) = FP16_GROUPED_CONV_BROKEN_UP_TO;
    if known_broken {
        Fp16OnCpu::Refuse(format!(
            "a float16 model on the CPU of a processor with float16 arithmetic \
             (AArch64 FEAT_FP16): ONNX Runtime {ort_version}'s float16 grouped \
             convolutions give wrong results there. Export the checkpoint without \
             --fp16 for the CPU (--int8 for speed), or run this model on a GPU \
             (--device cuda or tensorrt)"
        ))
    } else {
        Fp16OnCpu::Warn(format!(
            "a float16 model on the CPU of a processor with float16 arithmetic: ONNX \
             Runtime up to {major}.{minor} computes float16 grouped convolutions wrongly \
             there, and {ort_version} has not been checked; check this model with \
             `tcanet-export verify` before trusting its outputs, or export it without --fp16"
        ))
    }
}

/// The interface from the metadata of the model file at `path`, read
/// without ONNX Runtime and without the weights (the override replaces the
/// embedded config).
fn file_interface(
    path: &Path,
    config_override: Option<ModelConfig>,
) -> Result<ModelInterface, String> {
    let file = std::fs::File::open(path).map_err(|e| format!("cannot read: {e}"))?;
    let meta =
        ModelMetadataProto::read_from(std::io::BufReader::new(file)).map_err(|e| e.to_string())?;
    let get = |key: &str| {
        meta.metadata_props
            .iter()
            .find(|p| p.key == key)
            .map(|p| p.value.clone())
    };
    ModelInterface::from_metadata(get, config_override).map_err(|e| e.to_string())
}

/// The interface from the session's metadata (or the override, with a
/// warning when it differs from an embedded config).
fn read_interface(
    session: &Session,
    config_override: Option<ModelConfig>,
    warnings: &mut Vec<String>,
    path: &Path,
) -> Result<ModelInterface, String> {
    let meta = session
        .metadata()
        .map_err(|e| format!("cannot read metadata: {e}"))?;
    let get = |key: &str| meta.custom(key);
    if let Some(given) = &config_override {
        let embedded = ModelInterface::from_metadata(get, None).ok();
        if embedded.is_some_and(|e| e.config != *given) {
            warnings.push(format!(
                "the given config differs from the one in {}; using the given one",
                path.display()
            ));
        }
    }
    ModelInterface::from_metadata(get, config_override).map_err(|e| e.to_string())
}

/// Checks the inputs and outputs against the contract and the interface.
fn check_io(session: &Session, interface: &ModelInterface) -> Result<(), String> {
    let input_names: Vec<&str> = session.inputs().iter().map(|o| o.name()).collect();
    let output_names: Vec<&str> = session.outputs().iter().map(|o| o.name()).collect();
    let (found, expected) = (input_names.join(", "), INPUT_NAMES.join(", "));
    if let Some(name) = INPUT_NAMES.iter().find(|n| !input_names.contains(n)) {
        return Err(format!(
            "missing input '{name}' (inputs are {found}; expected {expected})"
        ));
    }
    if input_names.len() != INPUT_NAMES.len() {
        return Err(format!("inputs are {found}; expected exactly {expected}"));
    }
    if let Some(name) = PROPOSAL_OUTPUTS
        .iter()
        .chain(&IOU_OUTPUTS)
        .find(|n| !output_names.contains(n))
    {
        return Err(format!(
            "missing output '{name}' (outputs are {})",
            output_names.join(", ")
        ));
    }
    let find = |outlets: &[ort::value::Outlet], name: &str| {
        outlets
            .iter()
            .find(|o| o.name() == name)
            .map(|o| o.dtype().clone())
    };
    let cfg = &interface.config;
    let (c, t) = (cfg.feat_dim as i64, cfg.temporal_scale as i64);
    let t_dim = match interface.time_steps {
        TimeSteps::Fixed(_) => Some(t),
        TimeSteps::Dynamic => None,
    };
    let io: Vec<(String, Option<ValueType>, ExpectedDims)> = vec![
        (
            format!("input '{INPUT_FEATURES}'"),
            find(session.inputs(), INPUT_FEATURES),
            vec![(None, "B"), (Some(c), "C"), (t_dim, "T")],
        ),
        (
            format!("input '{INPUT_PROPOSALS}'"),
            find(session.inputs(), INPUT_PROPOSALS),
            vec![(None, "B"), (None, "N"), (Some(2), "start/end")],
        ),
    ];
    let outputs = PROPOSAL_OUTPUTS.iter().map(|name| {
        let dims: ExpectedDims = vec![(None, "B"), (None, "N"), (Some(2), "start/end")];
        (
            format!("output '{name}'"),
            find(session.outputs(), name),
            dims,
        )
    });
    let ious = IOU_OUTPUTS.iter().map(|name| {
        let dims: ExpectedDims = vec![(None, "B"), (None, "N")];
        (
            format!("output '{name}'"),
            find(session.outputs(), name),
            dims,
        )
    });
    for (what, ty, expected) in io.into_iter().chain(outputs).chain(ious) {
        let ty = ty.ok_or_else(|| format!("{what} is missing"))?;
        check_shape(&what, &ty, &expected).map_err(|r| {
            format!(
                "{r}; the config (feat_dim C={c}, T={}) does not match this model",
                interface.time_steps
            )
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;
    use tcanet_models::onnx::{Precision, TimeSteps};
    use tcanet_models::onnx_proto::{
        data_type, GraphProto, ModelProto, StringStringEntryProto, TensorProto,
    };

    /// A model file holding `interface`'s metadata and a weight of `weights` floats.
    fn model_file(interface: &ModelInterface, weights: usize) -> tempfile::NamedTempFile {
        let weight = TensorProto {
            dims: vec![weights as i64],
            data_type: data_type::FLOAT,
            name: "w".into(),
            raw_data: vec![7; 4 * weights],
            ..Default::default()
        };
        let model = ModelProto {
            ir_version: 8,
            graph: Some(GraphProto {
                initializer: vec![weight],
                ..Default::default()
            }),
            metadata_props: interface
                .to_metadata()
                .into_iter()
                .map(|(key, value)| StringStringEntryProto {
                    key: key.into(),
                    value,
                })
                .collect(),
            ..Default::default()
        };
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), model.encode_to_vec()).unwrap();
        file
    }

    #[test]
    fn the_file_metadata_gives_the_interface_written_into_it() {
        let interface = ModelInterface {
            config: ModelConfig::preset("anet").unwrap(),
            precision: Precision::Fp16,
            time_steps: TimeSteps::Dynamic,
            checkpoint_sha256: Some("ab".repeat(32)),
            exporter_version: Some("0.1.0".into()),
        };
        let file = model_file(&interface, 1 << 16);
        assert_eq!(file_interface(file.path(), None).unwrap(), interface);
        let given = ModelConfig::preset("tiny").unwrap();
        let overridden = file_interface(file.path(), Some(given.clone())).unwrap();
        assert_eq!(
            (overridden.config, overridden.precision),
            (given, Precision::Fp16)
        );
    }

    #[test]
    fn float16_models_are_refused_on_the_cpu_only_where_ort_computes_them_wrongly() {
        use Precision::{Fp16, Fp32};
        let refused = |v| {
            matches!(
                fp16_on_cpu(Fp16, Device::Cpu, true, v),
                Fp16OnCpu::Refuse(_)
            )
        };
        // Float16 arithmetic, the CPU provider, ONNX Runtime up to 1.31.
        for version in ["1.31.1", "1.31.0", "1.24.4", "1.9.0", "", "dev"] {
            assert!(refused(version), "{version}");
        }
        let Fp16OnCpu::Refuse(reason) = fp16_on_cpu(Fp16, Device::Cpu, true, "1.31.1") else {
            unreachable!()
        };
        assert!(
            reason.contains("1.31.1") && reason.contains("without --fp16"),
            "{reason}"
        );
        // Later releases: a warning to check the model.
        for version in ["1.32.0", "2.0.1"] {
            assert!(matches!(
                fp16_on_cpu(Fp16, Device::Cpu, true, version),
                Fp16OnCpu::Warn(w) if w.contains("tcanet-export verify") && w.contains(version)
            ));
        }
        // Float32 models, GPUs and processors without float16 arithmetic.
        for (precision, device, fp16) in [
            (Fp32, Device::Cpu, true),
            (Fp16, Device::Cuda(0), true),
            (Fp16, Device::TensorRt(1), true),
            (Fp16, Device::Cpu, false),
        ] {
            assert_eq!(
                fp16_on_cpu(precision, device, fp16, "1.31.1"),
                Fp16OnCpu::Fine
            );
        }
    }

    #[test]
    fn a_file_that_is_not_onnx_is_an_error_not_a_panic() {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), [0xff_u8; 64]).unwrap();
        let err = file_interface(file.path(), None).unwrap_err();
        assert!(err.starts_with("not an ONNX model"), "{err}");
        let missing = file.path().with_extension("missing");
        assert!(file_interface(&missing, None)
            .unwrap_err()
            .starts_with("cannot read"));
    }
}
