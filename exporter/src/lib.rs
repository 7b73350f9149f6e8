//! Writes the TCANet inference graph to ONNX from a safetensors checkpoint,
//! without libtorch and without protoc.
//!
//! * [`random_weights`]: random weights for trying the toolchain and tests.
//! * [`builder`]: a small graph builder (values, initializers, named nodes).
//! * [`graph`]: the TCANet inference graph.
//! * [`onnx_proto`]: the ONNX protobuf messages, as prost structs.
//! * [`reference`]: an independent f64 forward pass in plain Rust.
//! * [`ort_run`]: loads ONNX Runtime and runs an exported model.
//! * [`inspect`] and [`verify`]: what `tcanet-export inspect` and `verify` print.
//! * [`triton_repo`]: a Triton Inference Server model repository.
//! * [`profile`]: an ONNX Runtime profile summed by network region (`bench --profile`).
//!
//! ```no_run
//! use tcanet_exporter::{export_to_file, ExportOptions};
//! use tcanet_models::checkpoint::{Checkpoint, ConfigOverride};
//! let ckpt = Checkpoint::load("model.safetensors".as_ref(), &ConfigOverride::Embedded)?;
//! export_to_file(&ckpt, &ExportOptions::default(), "model.onnx".as_ref())?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
pub mod builder;
pub mod graph;
pub mod inspect;
pub use tcanet_models::onnx_proto;
pub mod ort_run;
pub mod profile;
pub mod random_weights;
pub mod reference;
pub mod triton_repo;
pub mod verify;

use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};

use prost::Message;

use crate::onnx_proto::{FunctionProto, ModelProto, OperatorSetIdProto, StringStringEntryProto};
pub use graph::fold::winograd::WinogradTile;
use tcanet_models::checkpoint::Checkpoint;
pub use tcanet_models::onnx::Precision;
use tcanet_models::onnx::{
    ModelInterface, TimeSteps, FUNCTION_DOMAIN, FUNCTION_DOMAIN_VERSION, FUNCTION_IR_VERSION,
};

/// This crate's version, written to `tcanet.exporter_version`.
pub const EXPORTER_VERSION: &str = env!("CARGO_PKG_VERSION");
/// The default ONNX opset.
pub const DEFAULT_OPSET: i64 = 17;
/// The opsets the exporter can write (the graph uses the same operators in each).
pub const SUPPORTED_OPSETS: RangeInclusive<i64> = 17..=25;

/// The IR version of the ONNX release that introduced `opset` (all ≤ 13,
/// ONNX Runtime 1.31's limit). A model is written with this or
/// [`FUNCTION_IR_VERSION`], whichever is higher, when it has functions
/// (every export does: `ai.tcanet.TapSum`, `ai.tcanet.LocalAttention`, and
/// the Winograd encoder's two functions).
pub fn ir_version_for_opset(opset: i64) -> Option<i64> {
    Some(match opset {
        17 | 18 => 8,
        19 | 20 => 9,
        21 | 22 => 10,
        23 => 11,
        24 => 12,
        25 => 13,
        _ => return None,
    })
}

pub use tcanet_models::onnx::{META_QUANTIZATION, QUANTIZATION_INT8, QUANTIZATION_INT8_ALL};

/// The largest finite float16 value.
fn f16_max() -> f32 {
    half::f16::MAX.to_f32()
}

/// What to export.
#[derive(Debug, Clone, Copy)]
pub struct ExportOptions {
    /// ONNX opset (default 17), one of [`SUPPORTED_OPSETS`].
    pub opset: i64,
    /// Weights and compute precision.
    pub precision: Precision,
    /// Make T symbolic (mask and sampling positions computed in the graph)
    /// instead of fixed to `temporal_scale` (the default, as the release).
    pub dynamic_time: bool,
    /// Bytes one gather of the TBR first convs may fetch at 100 proposals
    /// per video (smaller: more, smaller gathers; a tuning for the cache
    /// size, the outputs are the same).
    pub gather_chunk_bytes: usize,
    /// int8 weights and dynamically quantized activations for these large
    /// matrix products (float32 only; see `graph::quant`), or none.
    pub int8: Option<Int8Parts>,
    /// The base encoder's convs as Winograd F(m, 3) with this tile, or
    /// (`None`) as `Conv`s; fixed T only (a `--dynamic-time` model keeps
    /// the `Conv`s).
    pub encoder_tile: Option<WinogradTile>,
}

impl Default for ExportOptions {
    fn default() -> Self {
        Self {
            opset: DEFAULT_OPSET,
            precision: Precision::Fp32,
            dynamic_time: false,
            gather_chunk_bytes: graph::fold::GATHER_CHUNK_BYTES,
            int8: None,
            encoder_tile: graph::fold::ENCODER_TILE,
        }
    }
}

/// Which large matrix products an int8 export quantizes (also the values
/// of `tcanet-export --int8=PARTS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Int8Parts {
    /// The LGTE projections and FFN and reg_1d_o.0 (what `--int8` alone
    /// means). The TBR tap tables stay float32: they carry the proposals'
    /// boundaries, and quantizing them about doubles the outputs' error
    /// for a few percent more speed (docs/BENCHMARKS.md).
    NoTapTables,
    /// Those and the TBR tap tables.
    All,
}

impl Int8Parts {
    /// Whether the TBR tap tables are quantized.
    pub fn tap_tables(self) -> bool {
        self == Self::All
    }

    /// The model's [`META_QUANTIZATION`] value.
    pub fn description(self) -> &'static str {
        match self {
            Self::NoTapTables => QUANTIZATION_INT8,
            Self::All => QUANTIZATION_INT8_ALL,
        }
    }
}

/// Why an export failed.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The requested opset is not one the exporter writes.
    #[error("unsupported --opset {opset}: choose one of {}..={}", SUPPORTED_OPSETS.start(), SUPPORTED_OPSETS.end())]
    UnsupportedOpset {
        /// The requested opset.
        opset: i64,
    },
    /// A weight does not fit float16 (|value| > 65504) for `--fp16`.
    #[error(
        "tensor `{name}` holds {value}, beyond float16's range (±65504): export it without --fp16"
    )]
    Fp16Range {
        /// The parameter name.
        name: String,
        /// The offending value.
        value: f32,
    },
    /// `--int8` asks for float32 compute around the quantized products.
    #[error("--int8 quantizes a float32 model: drop --fp16")]
    Int8NeedsFp32,
    /// The output file could not be written (nothing is left behind).
    #[error("cannot write {path}: {cause}")]
    Write {
        /// The output path.
        path: PathBuf,
        /// The I/O error.
        cause: std::io::Error,
    },
}

/// Facts about a written model.
#[derive(Debug, Clone)]
pub struct ExportSummary {
    /// Size of the `.onnx` file in bytes.
    pub bytes: usize,
    /// Number of graph nodes.
    pub nodes: usize,
    /// Number of initializers (constant tensors).
    pub initializers: usize,
}

/// The complete ONNX model for a checked checkpoint.
pub fn build_model(ckpt: &Checkpoint, opts: &ExportOptions) -> Result<ModelProto, ExportError> {
    let ir_version = ir_version_for_opset(opts.opset)
        .ok_or(ExportError::UnsupportedOpset { opset: opts.opset })?;
    if opts.int8.is_some() && opts.precision != Precision::Fp32 {
        return Err(ExportError::Int8NeedsFp32);
    }
    if opts.precision == Precision::Fp16 {
        for (name, values) in &ckpt.tensors {
            if let Some(&value) = values.iter().find(|v| v.abs() > f16_max()) {
                return Err(ExportError::Fp16Range {
                    name: name.clone(),
                    value,
                });
            }
        }
    }
    let built = graph::build_graph(ckpt, opts);
    let interface = ModelInterface {
        config: ckpt.config.clone(),
        precision: opts.precision,
        time_steps: if opts.dynamic_time {
            TimeSteps::Dynamic
        } else {
            TimeSteps::Fixed(ckpt.config.temporal_scale)
        },
        checkpoint_sha256: Some(ckpt.sha256.clone()),
        exporter_version: Some(EXPORTER_VERSION.to_string()),
    };
    let standard = OperatorSetIdProto {
        domain: String::new(),
        version: opts.opset,
    };
    let mut opset_import = vec![standard.clone()];
    let mut ir_version = ir_version;
    if !built.functions.is_empty() {
        opset_import.push(OperatorSetIdProto {
            domain: FUNCTION_DOMAIN.into(),
            version: FUNCTION_DOMAIN_VERSION,
        });
        ir_version = ir_version.max(FUNCTION_IR_VERSION);
    }
    let functions = built
        .functions
        .into_iter()
        .map(|f| FunctionProto {
            opset_import: vec![standard.clone()],
            ..f
        })
        .collect();
    Ok(ModelProto {
        ir_version,
        opset_import,
        producer_name: "tcanet-export".into(),
        producer_version: EXPORTER_VERSION.into(),
        model_version: 1,
        doc_string: "TCANet temporal action proposal refinement: three cascaded TBR stages".into(),
        graph: Some(built.graph),
        functions,
        metadata_props: interface
            .to_metadata()
            .into_iter()
            .chain(
                opts.int8
                    .map(|parts| (META_QUANTIZATION, parts.description().to_string())),
            )
            .map(|(k, v)| StringStringEntryProto {
                key: k.into(),
                value: v,
            })
            .collect(),
        ..Default::default()
    })
}

/// Builds the model and writes it to `out` atomically (temporary file, then
/// rename): on any error no partial `.onnx` is left behind.
pub fn export_to_file(
    ckpt: &Checkpoint,
    opts: &ExportOptions,
    out: &Path,
) -> Result<ExportSummary, ExportError> {
    let model = build_model(ckpt, opts)?;
    let graph = model.graph.as_ref().expect("built with a graph");
    let summary = ExportSummary {
        bytes: model.encoded_len(),
        nodes: graph.node.len(),
        initializers: graph.initializer.len(),
    };
    let bytes = model.encode_to_vec();
    tcanet_cli::write_atomic_bytes(out, &bytes).map_err(|cause| ExportError::Write {
        path: out.to_path_buf(),
        cause,
    })?;
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_supported_opset_has_an_ir_version_ort_reads() {
        for opset in SUPPORTED_OPSETS {
            let ir = ir_version_for_opset(opset).unwrap();
            assert!((8..=13).contains(&ir), "opset {opset} → IR {ir}");
        }
        assert_eq!(ir_version_for_opset(DEFAULT_OPSET), Some(8));
        assert_eq!(ir_version_for_opset(16), None);
        assert_eq!(ir_version_for_opset(SUPPORTED_OPSETS.end() + 1), None);
    }
}
