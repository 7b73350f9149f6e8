//! The two models the server serves, their tensors as Triton describes
//! them (name, datatype, shape with -1 for a dynamic dimension, the batch
//! dimension first), and the checks and conversions of their requests.
//!
//! * `tcanet`: the network as exported — `features` FP32 `[B, C, T]`,
//!   `proposals` FP32 `[B, N, 2]` in the network's units; outputs
//!   `proposals_1..3` FP32 `[B, N, 2]`, `iou_1..3` FP32 `[B, N]`.
//! * `tcanet_refine`: a video as `tcanet-infer run` reads it — `features`
//!   FP32 `[B, C, steps]` (the video's own length, fitted to T as `run`
//!   does), `proposals` FP64 `[B, N, 2]` in seconds, `proposal_scores`
//!   FP64 `[B, N]`, `duration` FP64 `[B, 1]` seconds; outputs the refined
//!   proposals after the post-processing: `segments` FP64 `[B, K, 2]`
//!   seconds, `scores` FP64 `[B, K]` (best first), `count` INT32 `[B, 1]`
//!   (a video's valid rows; rows past it are zeros).
use serde_json::{json, Value};
use tcanet_models::data::{PreparedVideo, TimeMap};
use tcanet_models::onnx::{
    ModelInterface, TimeSteps, INPUT_FEATURES, INPUT_PROPOSALS, IOU_OUTPUTS, PROPOSAL_OUTPUTS,
};
use tcanet_ort::StageOutputs;

use super::protocol::{decode_rows, ApiError, DataType, InferRequest, OutputTensor, OutputValues};
use crate::infer::VideoInput;
use crate::refiner::{Refined, Refiner, VideoArrays};

/// The raw network.
pub const RAW_MODEL: &str = "tcanet";
/// The network with the preparation and post-processing of `tcanet-infer run`.
pub const REFINE_MODEL: &str = "tcanet_refine";
/// The only version served.
pub const VERSION: &str = "1";
/// `tcanet_refine`'s input of the input proposals' scores.
pub const INPUT_SCORES: &str = "proposal_scores";
/// `tcanet_refine`'s input of the videos' durations.
pub const INPUT_DURATION: &str = "duration";

/// Which served model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ModelKind {
    /// `tcanet`.
    Raw,
    /// `tcanet_refine`.
    Refine,
}

impl ModelKind {
    /// Both, in a fixed order.
    pub const ALL: [ModelKind; 2] = [ModelKind::Raw, ModelKind::Refine];

    /// The model's name.
    pub fn name(self) -> &'static str {
        match self {
            ModelKind::Raw => RAW_MODEL,
            ModelKind::Refine => REFINE_MODEL,
        }
    }

    /// The model called `name`, if served.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }
}

/// One tensor of a model: name, datatype and dims after the batch dimension
/// (-1: any size).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorSpec {
    /// Its name.
    pub name: &'static str,
    /// Its datatype.
    pub datatype: DataType,
    /// Its dims, batch dimension excluded.
    pub dims: Vec<i64>,
}

impl TensorSpec {
    fn new(name: &'static str, datatype: DataType, dims: &[i64]) -> Self {
        Self {
            name,
            datatype,
            dims: dims.to_vec(),
        }
    }

    /// As Triton's model metadata lists it (batch dimension -1 first).
    fn metadata(&self) -> Value {
        let mut shape = vec![-1];
        shape.extend_from_slice(&self.dims);
        json!({"name": self.name, "datatype": self.datatype.name(), "shape": shape})
    }

    /// As Triton's model configuration (JSON) lists it.
    fn config(&self) -> Value {
        json!({"name": self.name, "data_type": self.datatype.config_name(), "dims": self.dims})
    }
}

/// The inputs and outputs of `kind` for a model with this interface.
pub fn tensors(kind: ModelKind, model: &ModelInterface) -> (Vec<TensorSpec>, Vec<TensorSpec>) {
    let c = model.config.feat_dim as i64;
    match kind {
        ModelKind::Raw => {
            let t = match model.time_steps {
                TimeSteps::Fixed(t) => t as i64,
                TimeSteps::Dynamic => -1,
            };
            let inputs = vec![
                TensorSpec::new(INPUT_FEATURES, DataType::Fp32, &[c, t]),
                TensorSpec::new(INPUT_PROPOSALS, DataType::Fp32, &[-1, 2]),
            ];
            let proposals = PROPOSAL_OUTPUTS
                .iter()
                .map(|n| TensorSpec::new(n, DataType::Fp32, &[-1, 2]));
            let ious = IOU_OUTPUTS
                .iter()
                .map(|n| TensorSpec::new(n, DataType::Fp32, &[-1]));
            (inputs, proposals.chain(ious).collect())
        }
        ModelKind::Refine => (
            vec![
                TensorSpec::new(INPUT_FEATURES, DataType::Fp32, &[c, -1]),
                TensorSpec::new(INPUT_PROPOSALS, DataType::Fp64, &[-1, 2]),
                TensorSpec::new(INPUT_SCORES, DataType::Fp64, &[-1]),
                TensorSpec::new(INPUT_DURATION, DataType::Fp64, &[1]),
            ],
            vec![
                TensorSpec::new("segments", DataType::Fp64, &[-1, 2]),
                TensorSpec::new("scores", DataType::Fp64, &[-1]),
                TensorSpec::new("count", DataType::Int32, &[1]),
            ],
        ),
    }
}

/// `GET /v2/models/<name>`: name, versions, platform, inputs and outputs.
pub fn metadata(kind: ModelKind, model: &ModelInterface) -> Value {
    let (inputs, outputs) = tensors(kind, model);
    json!({
        "name": kind.name(),
        "versions": [VERSION],
        "platform": match kind {
            ModelKind::Raw => "onnxruntime_onnx",
            ModelKind::Refine => "tcanet",
        },
        "inputs": inputs.iter().map(TensorSpec::metadata).collect::<Vec<_>>(),
        "outputs": outputs.iter().map(TensorSpec::metadata).collect::<Vec<_>>(),
    })
}

/// `GET /v2/models/<name>/config`: the configuration, in the JSON form of
/// Triton's model configuration.
pub fn config(kind: ModelKind, model: &ModelInterface, max_batch: usize, delay_us: u64) -> Value {
    let (inputs, outputs) = tensors(kind, model);
    json!({
        "name": kind.name(),
        "platform": match kind {
            ModelKind::Raw => "onnxruntime_onnx",
            ModelKind::Refine => "tcanet",
        },
        "max_batch_size": max_batch,
        "input": inputs.iter().map(TensorSpec::config).collect::<Vec<_>>(),
        "output": outputs.iter().map(TensorSpec::config).collect::<Vec<_>>(),
        "dynamic_batching": {"max_queue_delay_microseconds": delay_us},
    })
}

/// One input's values in its datatype, one row per batch item.
enum Rows {
    F32(Vec<Vec<f32>>),
    F64(Vec<Vec<f64>>),
}

/// A request's inputs checked against the model's tensors, decoded.
struct Decoded {
    batch: usize,
    /// Per input spec, in spec order: its shape and values.
    tensors: Vec<(Vec<usize>, Rows)>,
}

/// Checks names, datatypes and shapes, and decodes every input. Errors name
/// the model and the input.
fn decode_inputs(
    kind: ModelKind,
    specs: &[TensorSpec],
    request: &InferRequest,
    body: &[u8],
    limits: RequestLimits,
) -> Result<Decoded, ApiError> {
    let model = kind.name();
    for (i, t) in request.inputs.iter().enumerate() {
        if !specs.iter().any(|s| s.name == t.name) {
            let names: Vec<&str> = specs.iter().map(|s| s.name).collect();
            return Err(ApiError::bad_request(format!(
                "unexpected input '{}' for model '{model}'; its inputs are {names:?}",
                t.name
            )));
        }
        if request.inputs[..i].iter().any(|u| u.name == t.name) {
            return Err(ApiError::bad_request(format!(
                "input '{}' is given twice",
                t.name
            )));
        }
    }
    let mut batch = None;
    let mut tensors = Vec::with_capacity(specs.len());
    for spec in specs {
        let what = format!("input '{}' of model '{model}'", spec.name);
        let Some(t) = request.inputs.iter().find(|t| t.name == spec.name) else {
            return Err(ApiError::bad_request(format!(
                "missing input '{}' for model '{model}' (it needs {})",
                spec.name,
                specs
                    .iter()
                    .map(|s| format!("'{}'", s.name))
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        };
        if t.datatype != spec.datatype.name() {
            return Err(ApiError::bad_request(format!(
                "{what} has datatype {}, expected {}",
                t.datatype,
                spec.datatype.name()
            )));
        }
        let shape = check_shape(&what, &t.shape, spec, limits.max_batch)?;
        let steps = shape.last().copied().unwrap_or(0);
        if let Some(max) = limits
            .max_steps
            .filter(|&m| spec.name == INPUT_FEATURES && steps > m)
        {
            return Err(ApiError::bad_request(format!(
                "{what} has {steps} feature steps per video, more than --max-request-steps {max} \
                 (the model's T is dynamic, and its attention's memory grows with T²); send \
                 shorter videos, or start the server with a larger limit"
            )));
        }
        if spec.name == INPUT_PROPOSALS && shape[1] > limits.max_proposals {
            return Err(ApiError::bad_request(format!(
                "{what} has {} proposals per video, more than --max-request-proposals {} (the \
                 network's memory grows with them); send fewer, or start the server with a \
                 larger limit",
                shape[1], limits.max_proposals
            )));
        }
        if *batch.get_or_insert(shape[0]) != shape[0] {
            return Err(ApiError::bad_request(format!(
                "{what} has batch size {}, but the other inputs have {}",
                shape[0],
                batch.unwrap_or(0)
            )));
        }
        let values = match spec.datatype {
            DataType::Fp32 => Rows::F32(decode_rows(t, &shape, body, &what)?),
            DataType::Fp64 => Rows::F64(decode_rows(t, &shape, body, &what)?),
            DataType::Int32 => {
                return Err(ApiError::internal(format!(
                    "internal error: {what}: no served model has INT32 inputs"
                )))
            }
        };
        tensors.push((shape, values));
    }
    Ok(Decoded {
        batch: batch.unwrap_or(0),
        tensors,
    })
}

/// The shape of an input checked against its spec: the batch dimension in
/// 1..=max_batch, fixed dims equal, dynamic ones at least 1.
fn check_shape(
    what: &str,
    shape: &[i64],
    spec: &TensorSpec,
    max_batch: usize,
) -> Result<Vec<usize>, ApiError> {
    let mut expected = vec![-1];
    expected.extend_from_slice(&spec.dims);
    let wrong = || {
        ApiError::bad_request(format!(
            "{what} has shape {shape:?}, expected {expected:?} (-1: any size from 1; batch size at most {max_batch})"
        ))
    };
    if shape.len() != expected.len() {
        return Err(wrong());
    }
    let fits = shape
        .iter()
        .zip(&expected)
        .enumerate()
        .all(|(i, (&d, &e))| {
            d >= 1 && (e == -1 || d == e) && (i > 0 || d as u64 <= max_batch as u64)
        });
    if !fits {
        return Err(wrong());
    }
    let dims: Vec<usize> = shape.iter().map(|&d| d as usize).collect();
    dims.iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .filter(|&n| n <= 1 << 32)
        .ok_or_else(wrong)?;
    Ok(dims)
}

/// What a checked request asks the batcher to run: one item per video.
pub enum Work {
    /// `tcanet`: the network's inputs as given.
    Raw {
        /// One per video.
        items: Vec<PreparedVideo>,
    },
    /// `tcanet_refine`: videos prepared as `run` prepares them.
    Refine {
        /// One per video.
        videos: Vec<VideoInput>,
    },
}

impl Work {
    /// Videos.
    pub fn len(&self) -> usize {
        match self {
            Work::Raw { items } => items.len(),
            Work::Refine { videos } => videos.len(),
        }
    }

    /// True without videos.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The network inputs of video `i`.
    pub fn item(&self, i: usize) -> Option<&PreparedVideo> {
        match self {
            Work::Raw { items } => items.get(i),
            Work::Refine { videos } => videos.get(i).map(|v| &v.prepared),
        }
    }

    /// The network inputs, one per video, borrowed.
    pub fn items(&self) -> impl Iterator<Item = &PreparedVideo> {
        (0..self.len()).filter_map(|i| self.item(i))
    }
}

/// What one request may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestLimits {
    /// Videos: the batch dimension's largest size.
    pub max_batch: usize,
    /// Proposals per video: the `proposals` input's largest N.
    pub max_proposals: usize,
    /// Feature steps per video, for a model whose T is dynamic (its
    /// attention's memory grows with T²); `None` for a fixed T.
    pub max_steps: Option<usize>,
}

/// Checks and decodes a request for `kind` into work for the batcher.
pub fn prepare_request(
    kind: ModelKind,
    refiner: &Refiner,
    request: &InferRequest,
    body: &[u8],
    limits: RequestLimits,
) -> Result<Work, ApiError> {
    let (specs, outputs) = tensors(kind, refiner.interface());
    if let Some(asked) = &request.outputs {
        if let Some(o) = asked
            .iter()
            .find(|o| !outputs.iter().any(|s| s.name == o.name))
        {
            let names: Vec<&str> = outputs.iter().map(|s| s.name).collect();
            return Err(ApiError::bad_request(format!(
                "unexpected output '{}' for model '{}'; its outputs are {names:?}",
                o.name,
                kind.name()
            )));
        }
    }
    let decoded = decode_inputs(kind, &specs, request, body, limits)?;
    match kind {
        ModelKind::Raw => Ok(Work::Raw {
            items: raw_items(decoded)?,
        }),
        ModelKind::Refine => {
            let label = request.id.as_deref().unwrap_or("request");
            let videos = refine_videos(decoded, label)?
                .into_iter()
                .map(|v| {
                    refiner
                        .prepare(v)
                        .map_err(|e| ApiError::bad_request(format!("model '{REFINE_MODEL}': {e}")))
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Work::Refine { videos })
        }
    }
}

/// The error of inputs decoded in other types than the model's specs (a bug).
fn not_as_specified(model: &str) -> ApiError {
    ApiError::internal(format!(
        "internal error: model '{model}': inputs decoded in other types than its specs"
    ))
}

/// `[start, end]` pairs of a row of a `[N, 2]` tensor.
fn pairs<T: Copy>(row: &[T]) -> Vec<[T; 2]> {
    row.as_chunks::<2>().0.to_vec()
}

/// The videos of a `tcanet` request; each video's features are moved, not copied.
fn raw_items(d: Decoded) -> Result<Vec<PreparedVideo>, ApiError> {
    let mut inputs = d.tensors.into_iter().map(|(_, rows)| rows);
    let (Some(Rows::F32(features)), Some(Rows::F32(proposals))) = (inputs.next(), inputs.next())
    else {
        return Err(not_as_specified(RAW_MODEL));
    };
    Ok(features
        .into_iter()
        .zip(proposals)
        .enumerate()
        .map(|(b, (features, proposals))| PreparedVideo {
            video: format!("batch item {b}"),
            features,
            proposals: pairs(&proposals),
            inputs: vec![],
            time: TimeMap { scale: 1.0 },
        })
        .collect())
}

/// The videos of a `tcanet_refine` request; each video's features are
/// moved, not copied.
fn refine_videos(d: Decoded, label: &str) -> Result<Vec<VideoArrays>, ApiError> {
    let batch = d.batch;
    let mut inputs = d.tensors.into_iter();
    let (
        Some((fshape, Rows::F32(features))),
        Some((_, Rows::F64(proposals))),
        Some((_, Rows::F64(scores))),
        Some((_, Rows::F64(duration))),
    ) = (inputs.next(), inputs.next(), inputs.next(), inputs.next())
    else {
        return Err(not_as_specified(REFINE_MODEL));
    };
    let steps = fshape.get(2).copied().unwrap_or(0);
    Ok(features
        .into_iter()
        .zip(proposals)
        .zip(scores)
        .zip(duration)
        .enumerate()
        .map(
            |(b, (((features, proposals), scores), duration))| VideoArrays {
                video: if batch == 1 {
                    label.to_string()
                } else {
                    format!("{label}[{b}]")
                },
                features,
                steps,
                proposals: pairs(&proposals),
                scores,
                duration: duration.first().copied().unwrap_or(f64::NAN),
            },
        )
        .collect())
}

/// A 500 naming the first NaN or infinity among the network's outputs (its
/// batch item, output and proposal), as `tcanet_refine` refuses them: JSON
/// has no number for them.
pub fn check_finite(per_video: &[StageOutputs]) -> Result<(), ApiError> {
    for (b, out) in per_video.iter().enumerate() {
        let named = (out
            .proposals
            .iter()
            .zip(PROPOSAL_OUTPUTS)
            .map(|(v, n)| (v, n, 2)))
        .chain(out.iou.iter().zip(IOU_OUTPUTS).map(|(v, n)| (v, n, 1)));
        for (values, name, width) in named {
            if let Some(i) = values.iter().position(|x| !x.is_finite()) {
                return Err(ApiError::internal(format!(
                    "model '{RAW_MODEL}': batch item {b}: the network produced a non-finite \
                     value in '{name}' for proposal {} (features or proposals far beyond the \
                     training data's range overflow float32 inside the network)",
                    i / width
                )));
            }
        }
    }
    Ok(())
}

/// The output tensors of `tcanet` from the per-video outputs.
pub fn raw_outputs(per_video: &[StageOutputs]) -> Vec<OutputTensor> {
    let b = per_video.len();
    let n = per_video.first().map_or(0, |o| o.proposals_per_item);
    let proposals = PROPOSAL_OUTPUTS
        .iter()
        .enumerate()
        .map(|(k, &name)| OutputTensor {
            name,
            shape: vec![b, n, 2],
            values: OutputValues::F32(
                per_video
                    .iter()
                    .flat_map(|o| o.proposals[k].iter().copied())
                    .collect(),
            ),
        });
    let ious = IOU_OUTPUTS
        .iter()
        .enumerate()
        .map(|(k, &name)| OutputTensor {
            name,
            shape: vec![b, n],
            values: OutputValues::F32(
                per_video
                    .iter()
                    .flat_map(|o| o.iou[k].iter().copied())
                    .collect(),
            ),
        });
    proposals.chain(ious).collect()
}

/// The output tensors of `tcanet_refine`: rows padded with zeros to the
/// longest video's count K.
pub fn refine_outputs(videos: &[Refined]) -> Vec<OutputTensor> {
    let b = videos.len();
    let k = videos.iter().map(|v| v.proposals.len()).max().unwrap_or(0);
    let mut segments = vec![0.0; b * k * 2];
    let mut scores = vec![0.0; b * k];
    for (i, v) in videos.iter().enumerate() {
        for (j, p) in v.proposals.iter().enumerate() {
            segments[(i * k + j) * 2] = p.start;
            segments[(i * k + j) * 2 + 1] = p.end;
            scores[i * k + j] = p.score;
        }
    }
    vec![
        OutputTensor {
            name: "segments",
            shape: vec![b, k, 2],
            values: OutputValues::F64(segments),
        },
        OutputTensor {
            name: "scores",
            shape: vec![b, k],
            values: OutputValues::F64(scores),
        },
        OutputTensor {
            name: "count",
            shape: vec![b, 1],
            values: OutputValues::I32(videos.iter().map(|v| v.proposals.len() as i32).collect()),
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use tcanet_models::onnx::Precision;
    use tcanet_models::ModelConfig;

    fn tiny(time_steps: TimeSteps) -> ModelInterface {
        ModelInterface::new(ModelConfig::tiny(), Precision::Fp32, time_steps)
    }

    #[test]
    fn metadata_lists_tensors_as_triton_does() {
        let m = metadata(ModelKind::Raw, &tiny(TimeSteps::Fixed(64)));
        assert_eq!(m["name"], "tcanet");
        assert_eq!(m["versions"], json!(["1"]));
        assert_eq!(
            m["inputs"][0],
            json!({"name": "features", "datatype": "FP32", "shape": [-1, 32, 64]})
        );
        assert_eq!(
            m["inputs"][1],
            json!({"name": "proposals", "datatype": "FP32", "shape": [-1, -1, 2]})
        );
        assert_eq!(m["outputs"].as_array().unwrap().len(), 6);
        assert_eq!(
            m["outputs"][5],
            json!({"name": "iou_3", "datatype": "FP32", "shape": [-1, -1]})
        );
        let d = metadata(ModelKind::Raw, &tiny(TimeSteps::Dynamic));
        assert_eq!(d["inputs"][0]["shape"], json!([-1, 32, -1]));
        let r = metadata(ModelKind::Refine, &tiny(TimeSteps::Fixed(64)));
        assert_eq!(r["inputs"][0]["shape"], json!([-1, 32, -1]));
        assert_eq!(
            r["inputs"][3],
            json!({"name": "duration", "datatype": "FP64", "shape": [-1, 1]})
        );
        assert_eq!(
            r["outputs"][2],
            json!({"name": "count", "datatype": "INT32", "shape": [-1, 1]})
        );
    }

    #[test]
    fn shapes_are_checked_against_the_spec() {
        let spec = TensorSpec::new("features", DataType::Fp32, &[32, 64]);
        assert_eq!(
            check_shape("f", &[2, 32, 64], &spec, 8).unwrap(),
            vec![2, 32, 64]
        );
        for bad in [
            &[9, 32, 64][..],
            &[0, 32, 64],
            &[1, 32, 63],
            &[1, 32],
            &[1, -1, 64],
        ] {
            let e = check_shape("input 'features'", bad, &spec, 8).unwrap_err();
            assert!(
                e.message.contains("input 'features'") && e.message.contains("[-1, 32, 64]"),
                "{e}"
            );
        }
        let huge = TensorSpec::new("p", DataType::Fp32, &[-1, -1]);
        assert!(check_shape("p", &[1, 1 << 30, 1 << 30], &huge, 8).is_err());
    }
}
