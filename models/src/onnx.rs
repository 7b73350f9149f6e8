//! The ONNX interface of an exported TCANet model: the one definition of its
//! input and output names, its metadata keys and what they hold. The exporter
//! writes a model through [`ModelInterface::to_metadata`]; the runtime reads
//! it back with [`ModelInterface::from_metadata`].
//!
//! Inputs: [`INPUT_FEATURES`] `[B, C, T]` and [`INPUT_PROPOSALS`] `[B, N, 2]`
//! (float32, network time units). Outputs per stage k = 1..=3:
//! [`PROPOSAL_OUTPUTS`] `[B, N, 2]` (P_{k+1}) and [`IOU_OUTPUTS`] `[B, N]`
//! (the IoU estimate of P_k). B and N are symbolic; C is fixed by the config;
//! T is fixed to `temporal_scale` unless the model was exported with a
//! symbolic T ([`TimeSteps::Dynamic`]).
use std::fmt;
use std::str::FromStr;

use crate::checkpoint::KEY_CONFIG;
use crate::{ConfigError, ModelConfig, NUM_STAGES};

/// Name of the features input, `[B, C, T]`.
pub const INPUT_FEATURES: &str = "features";
/// Name of the proposals input, `[B, N, 2]`.
pub const INPUT_PROPOSALS: &str = "proposals";
/// Both inputs, in the graph's order.
pub const INPUT_NAMES: [&str; 2] = [INPUT_FEATURES, INPUT_PROPOSALS];
/// The refined-proposal outputs of stages 1..=3 (`[B, N, 2]`).
pub const PROPOSAL_OUTPUTS: [&str; NUM_STAGES] = ["proposals_1", "proposals_2", "proposals_3"];
/// The IoU-estimate outputs of stages 1..=3 (`[B, N]`).
pub const IOU_OUTPUTS: [&str; NUM_STAGES] = ["iou_1", "iou_2", "iou_3"];

/// Metadata key: the model config as JSON (the same key as in checkpoints).
pub const META_CONFIG: &str = KEY_CONFIG;
/// Metadata key: hex SHA-256 of the checkpoint file the model came from.
pub const META_CHECKPOINT_SHA256: &str = "tcanet.checkpoint_sha256";
/// Metadata key: the exporter's version.
pub const META_EXPORTER_VERSION: &str = "tcanet.exporter_version";
/// Metadata key: [`Precision`] (`fp32` or `fp16`).
pub const META_PRECISION: &str = "tcanet.precision";
/// Metadata key: [`TimeSteps`] (the fixed T, or `dynamic`).
pub const META_TIME_STEPS: &str = "tcanet.time_steps";
/// Metadata key of an `--int8` model: how it is quantized (absent otherwise).
pub const META_QUANTIZATION: &str = "tcanet.quantization";
/// [`META_QUANTIZATION`] of an `--int8` model.
pub const QUANTIZATION_INT8: &str =
    "int8 per-channel weights (7-bit), dynamic uint8 activations: LGTE projections and FFN, reg_1d_o.0";
/// [`META_QUANTIZATION`] of an `--int8=all` model (the TBR tap tables
/// quantized too).
pub const QUANTIZATION_INT8_ALL: &str =
    "int8 per-channel weights (7-bit), dynamic uint8 activations: LGTE projections and FFN, TBR tap tables, reg_1d_o.0";

/// The ONNX domain of the model's own functions: model-local
/// `FunctionProto`s whose bodies are standard operators, so that any ONNX
/// runtime can run them, and that the project's runtime runs with its own
/// CPU kernels.
pub const FUNCTION_DOMAIN: &str = "ai.tcanet";
/// The version of [`FUNCTION_DOMAIN`] a model imports.
pub const FUNCTION_DOMAIN_VERSION: i64 = 1;
/// The IR version a model with functions needs at least: each call site
/// names the overload (the body for its shapes) it calls.
pub const FUNCTION_IR_VERSION: i64 = 10;
/// The function that reads the TBR first convs' outputs from a tap table:
/// `TapSum(table, rows, weights, shape)` with `table` `[B, g, R, C/g]`
/// (float32 or float16; g channel groups, each R rows of C/g), `rows`
/// int64 `[B, M, 1]` (M a multiple of 6; negative rows count from the end,
/// as in `GatherND`), `weights` `[K, 1, 6]` (the table's type) with K =
/// B·M/6, and `shape` int64, the output's shape (one entry may be −1).
/// Row r of batch b is the C values `table[b, :, r, :]` (groups side by
/// side). Output k (of batch b = ⌊6k/M⌋) is `ReLU(Σ_i weights[k, 0, i] ·
/// row(b, rows[b, m_i, 0]))` over its six rows m_i = 6k + i − b·M, a
/// `[K, C]` result reshaped to `shape`.
pub const TAP_SUM: &str = "TapSum";
/// Rows (and weights) per [`TAP_SUM`] output: the 3 taps of the first conv
/// × the 2 neighbours each tap's sample is interpolated from.
pub const TAP_SUM_ROWS: usize = 6;
/// The function that runs the LGTE local heads over their key windows:
/// `LocalAttention(query, key, value, window_index, window_mask)` with
/// `query`, `key` and `value` `[B, heads, T, hd]` (float32 or float16),
/// `window_index` int64 `[T, w]` (the key positions of each query;
/// negative ones count from the end, as in `Gather`) and `window_mask`
/// `[T, w]` (the query's type; added to the scores, −inf drops a key).
/// Output `[B, heads, T, hd]`: query t of head h attends to its w keys,
/// `softmax_m(query[t] · key[index[t, m]] + mask[t, m])`, and sums their
/// values with those weights. (The query is already scaled.)
pub const LOCAL_ATTENTION: &str = "LocalAttention";
/// The function that cuts a kernel-3 convolution's input into Winograd
/// tiles: `WinogradTiles(x, transform)` with `x` `[B, T, G, C/G]` (float32
/// or float16; time-major, G channel groups) and `transform` `[points, n]`
/// (3 ≤ n ≤ 10, 1 ≤ points ≤ 10; e.g. the input transform Bᵀ of F(m, 3),
/// n = m + 2). Tiles start s = n − 2 steps apart. Output `[G, points, B,
/// P, C/G]` with P = ⌈T/s⌉ (so that a `MatMul` per group and point takes
/// every batch's tiles as rows): point ξ of tile p of batch b is `Σ_j
/// transform[ξ, j] · x[b, p·s + j − 1]`, x being zero outside `0..T` (the
/// conv's zero padding of 1).
pub const WINOGRAD_TILES: &str = "WinogradTiles";
/// The function that turns Winograd products back into a kernel-3
/// convolution's outputs, with its bias and a ReLU:
/// `WinogradUntileRelu(products, transform, bias, steps)` with `products`
/// `[G, n, B, P, C/G]`, `transform` `[m, n]` (the output transform Aᵀ),
/// `bias` `[C]` and `steps` int64 `[1]`, the output steps T (m·(P − 1) < T
/// ≤ m·P). Output `[B, T, C]` (time-major): step p·m + r, channel g·C/G +
/// o is `ReLU(Σ_ξ transform[r, ξ] · products[g, ξ, b, p, o] + bias)`.
pub const WINOGRAD_UNTILE_RELU: &str = "WinogradUntileRelu";

/// A model whose metadata breaks the contract.
#[derive(Debug, thiserror::Error)]
pub enum ContractError {
    /// A required metadata entry is absent.
    #[error("no {key} in the model's metadata (not written by tcanet-export?): {hint}")]
    Missing {
        /// The key.
        key: &'static str,
        /// What to do about it.
        hint: &'static str,
    },
    /// A metadata entry has a value that cannot be read.
    #[error("metadata `{key}`: {reason}")]
    Invalid {
        /// The key.
        key: &'static str,
        /// What is wrong with the value.
        reason: String,
    },
}

/// Numeric precision of an exported network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Precision {
    /// float32 weights and compute.
    #[default]
    Fp32,
    /// float16 weights and compute (inputs and outputs stay float32; proposal
    /// coordinates, sampling positions and decoding stay float32).
    Fp16,
}

impl Precision {
    /// `fp32` or `fp16` (the [`META_PRECISION`] value).
    pub fn as_str(self) -> &'static str {
        match self {
            Precision::Fp32 => "fp32",
            Precision::Fp16 => "fp16",
        }
    }
}

impl fmt::Display for Precision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Precision {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "fp32" => Ok(Precision::Fp32),
            "fp16" => Ok(Precision::Fp16),
            other => Err(format!("'{other}' is not fp32 or fp16")),
        }
    }
}

/// How many time steps a model's `features` input takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeSteps {
    /// Exactly this T (the config's `temporal_scale`; the release's behaviour:
    /// features are zero-padded or rescaled to it).
    Fixed(usize),
    /// Any T: each video runs with its own feature length.
    Dynamic,
}

impl TimeSteps {
    /// The T a video's features must be fitted to, given its own length.
    pub fn steps_for(self, video_steps: usize) -> usize {
        match self {
            TimeSteps::Fixed(t) => t,
            TimeSteps::Dynamic => video_steps,
        }
    }
}

impl fmt::Display for TimeSteps {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TimeSteps::Fixed(t) => write!(f, "{t}"),
            TimeSteps::Dynamic => f.write_str("dynamic"),
        }
    }
}

impl FromStr for TimeSteps {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "dynamic" => Ok(TimeSteps::Dynamic),
            n => match n.parse::<usize>() {
                Ok(t) if t > 0 => Ok(TimeSteps::Fixed(t)),
                _ => Err(format!(
                    "'{n}' is neither a positive step count nor `dynamic`"
                )),
            },
        }
    }
}

/// What an exported model declares about itself in its metadata.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelInterface {
    /// The network's configuration (its C, T and decoding).
    pub config: ModelConfig,
    /// Weights and compute precision.
    pub precision: Precision,
    /// The T the `features` input takes.
    pub time_steps: TimeSteps,
    /// Hex SHA-256 of the source checkpoint, when known.
    pub checkpoint_sha256: Option<String>,
    /// The exporter's version, when known.
    pub exporter_version: Option<String>,
}

impl ModelInterface {
    /// A model of `config` in `precision` taking `time_steps`, with no
    /// checkpoint digest or exporter version.
    pub fn new(config: ModelConfig, precision: Precision, time_steps: TimeSteps) -> Self {
        Self {
            config,
            precision,
            time_steps,
            checkpoint_sha256: None,
            exporter_version: None,
        }
    }

    /// The metadata entries that describe this model, in a fixed order.
    pub fn to_metadata(&self) -> Vec<(&'static str, String)> {
        let mut out = vec![
            (META_CONFIG, self.config.to_json()),
            (META_PRECISION, self.precision.as_str().to_string()),
            (META_TIME_STEPS, self.time_steps.to_string()),
        ];
        if let Some(sha) = &self.checkpoint_sha256 {
            out.push((META_CHECKPOINT_SHA256, sha.clone()));
        }
        if let Some(v) = &self.exporter_version {
            out.push((META_EXPORTER_VERSION, v.clone()));
        }
        out
    }

    /// Reads the interface from a model's metadata (`get(key)` returns an
    /// entry's value). `config` replaces the embedded config when given (a
    /// model without one needs it). A model without [`META_PRECISION`] is
    /// fp32 and one without [`META_TIME_STEPS`] takes the config's T.
    pub fn from_metadata(
        get: impl Fn(&str) -> Option<String>,
        config: Option<ModelConfig>,
    ) -> Result<Self, ContractError> {
        let overridden = config.is_some();
        let config = match (config, get(META_CONFIG)) {
            (Some(c), _) => c,
            (None, Some(json)) => {
                ModelConfig::from_json(&json).map_err(|e: ConfigError| ContractError::Invalid {
                    key: META_CONFIG,
                    reason: e.to_string(),
                })?
            }
            (None, None) => {
                return Err(ContractError::Missing {
                    key: META_CONFIG,
                    hint: "pass --preset or --config with the network's configuration",
                })
            }
        };
        let invalid =
            |key: &'static str| move |reason: String| ContractError::Invalid { key, reason };
        let precision = get(META_PRECISION)
            .map(|v| v.parse().map_err(invalid(META_PRECISION)))
            .transpose()?
            .unwrap_or_default();
        let declared = get(META_TIME_STEPS)
            .map(|v| v.parse().map_err(invalid(META_TIME_STEPS)))
            .transpose()?;
        // A given config brings its own T (the graph is checked against it).
        let time_steps = match declared {
            Some(TimeSteps::Dynamic) => TimeSteps::Dynamic,
            Some(TimeSteps::Fixed(_)) if overridden => TimeSteps::Fixed(config.temporal_scale),
            Some(fixed) => fixed,
            None => TimeSteps::Fixed(config.temporal_scale),
        };
        if let TimeSteps::Fixed(t) = time_steps {
            if t != config.temporal_scale {
                return Err(ContractError::Invalid {
                    key: META_TIME_STEPS,
                    reason: format!(
                        "{t} steps, but the config's temporal_scale is {}",
                        config.temporal_scale
                    ),
                });
            }
        }
        Ok(Self {
            config,
            precision,
            time_steps,
            checkpoint_sha256: get(META_CHECKPOINT_SHA256),
            exporter_version: get(META_EXPORTER_VERSION),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn round_trip(i: &ModelInterface) -> ModelInterface {
        let meta: BTreeMap<&str, String> = i.to_metadata().into_iter().collect();
        ModelInterface::from_metadata(|k| meta.get(k).cloned(), None).unwrap()
    }

    #[test]
    fn metadata_round_trips() {
        let mut i = ModelInterface {
            config: ModelConfig::tiny(),
            precision: Precision::Fp16,
            time_steps: TimeSteps::Dynamic,
            checkpoint_sha256: Some("ab".into()),
            exporter_version: Some("0.1.0".into()),
        };
        assert_eq!(round_trip(&i), i);
        i.time_steps = TimeSteps::Fixed(i.config.temporal_scale);
        i.precision = Precision::Fp32;
        assert_eq!(round_trip(&i), i);
        let plain = ModelInterface::new(ModelConfig::tiny(), Precision::Fp32, TimeSteps::Dynamic);
        assert_eq!(round_trip(&plain), plain);
    }

    #[test]
    fn missing_and_bad_entries_are_named() {
        let e = ModelInterface::from_metadata(|_| None, None).unwrap_err();
        assert!(e.to_string().contains(META_CONFIG), "{e}");
        let cfg = ModelConfig::tiny();
        let bad = |key: &'static str, value: &'static str| {
            let cfg = cfg.clone();
            ModelInterface::from_metadata(move |k| (k == key).then(|| value.to_string()), Some(cfg))
                .unwrap_err()
                .to_string()
        };
        assert!(bad(META_PRECISION, "int4").contains("int4"));
        assert!(bad(META_TIME_STEPS, "0").contains(META_TIME_STEPS));
        let embedded = cfg.to_json();
        let e = ModelInterface::from_metadata(
            |k| match k {
                META_CONFIG => Some(embedded.clone()),
                META_TIME_STEPS => Some("7".into()),
                _ => None,
            },
            None,
        )
        .unwrap_err();
        assert!(e.to_string().contains("temporal_scale"), "{e}");
        let given = ModelInterface::from_metadata(
            |k| (k == META_TIME_STEPS).then(|| "7".to_string()),
            Some(cfg.clone()),
        )
        .unwrap();
        assert_eq!(given.time_steps, TimeSteps::Fixed(cfg.temporal_scale));
        let plain = ModelInterface::from_metadata(|_| None, Some(cfg.clone())).unwrap();
        assert_eq!(plain.time_steps, TimeSteps::Fixed(cfg.temporal_scale));
        assert_eq!(plain.precision, Precision::Fp32);
        assert_eq!(TimeSteps::Dynamic.steps_for(37), 37);
        assert_eq!(TimeSteps::Fixed(100).steps_for(37), 100);
    }
}
