//! A Triton Inference Server model repository for an exported model:
//! `REPO/tcanet/config.pbtxt` and `REPO/tcanet/1/model.onnx`, served by
//! Triton's ONNX Runtime backend (platform `onnxruntime_onnx`), with
//! dynamic batching, instance groups and, optionally, the TensorRT
//! execution accelerator.
//!
//! The inputs and outputs are written as the ONNX file declares them
//! (a symbolic dimension is -1); with batching (`max_batch_size` > 0) the
//! leading batch dimension B is left out, as Triton expects.
use std::fmt::Write;
use std::path::{Path, PathBuf};

use tcanet_cli::write_atomic_bytes;
use tcanet_models::onnx::{ModelInterface, INPUT_NAMES, IOU_OUTPUTS, PROPOSAL_OUTPUTS};

use crate::inspect::{inspect_file, IoDesc, ModelSummary};

/// The model's name in the repository (and in Triton's URLs).
pub const MODEL_NAME: &str = "tcanet";

/// Where Triton's instances run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InstanceKind {
    /// `KIND_GPU`: `count` instances on each visible GPU.
    Gpu,
    /// `KIND_CPU`.
    Cpu,
}

/// What the configuration asks Triton for.
#[derive(Debug, Clone, PartialEq)]
pub struct RepoOptions {
    /// Videos per batch at most; 0 disables batching (B is then part of the dims).
    pub max_batch: usize,
    /// Dynamic batching: how long a request may wait for others (µs).
    pub max_queue_delay_us: u64,
    /// Model instances (per GPU for [`InstanceKind::Gpu`]).
    pub instances: usize,
    /// Where the instances run.
    pub kind: InstanceKind,
    /// Run through the TensorRT execution accelerator.
    pub tensorrt: bool,
    /// TensorRT precision FP16 (else FP32).
    pub fp16: bool,
    /// TensorRT build workspace in bytes.
    pub workspace_bytes: u64,
}

impl Default for RepoOptions {
    fn default() -> Self {
        Self {
            max_batch: 8,
            max_queue_delay_us: 1000,
            instances: 1,
            kind: InstanceKind::Gpu,
            tensorrt: false,
            fp16: false,
            workspace_bytes: 1 << 30,
        }
    }
}

/// Why a repository could not be written.
#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    /// The ONNX file could not be read.
    #[error(transparent)]
    Inspect(#[from] crate::inspect::InspectError),
    /// The ONNX file is not a TCANet export.
    #[error("{path}: {reason}")]
    NotTcanet {
        /// The file.
        path: PathBuf,
        /// What is missing or wrong.
        reason: String,
    },
    /// Contradictory options.
    #[error("{0}")]
    Options(String),
    /// A file could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

/// Triton's name of an ONNX element type.
fn triton_type(elem: &str) -> Option<&'static str> {
    Some(match elem {
        "float32" => "TYPE_FP32",
        "float16" => "TYPE_FP16",
        "float64" => "TYPE_FP64",
        "int32" => "TYPE_INT32",
        "int64" => "TYPE_INT64",
        _ => return None,
    })
}

/// One `input`/`output` entry: name, data_type, dims.
fn tensor_entry(io: &IoDesc, batched: bool, path: &Path) -> Result<String, RepoError> {
    let not = |reason: String| RepoError::NotTcanet {
        path: path.to_path_buf(),
        reason,
    };
    let ty = triton_type(&io.elem_type)
        .ok_or_else(|| not(format!("'{}' has element type {}", io.name, io.elem_type)))?;
    let mut dims: Vec<i64> = io
        .dims
        .iter()
        .map(|d| d.parse::<i64>().unwrap_or(-1))
        .collect();
    if batched {
        if dims.first() != Some(&-1) {
            return Err(not(format!(
                "'{}' has no symbolic batch dimension first ({:?}); use --max-batch 0",
                io.name, io.dims
            )));
        }
        dims.remove(0);
    }
    let dims: Vec<String> = dims.iter().map(i64::to_string).collect();
    Ok(format!(
        "  {{\n    name: \"{}\"\n    data_type: {ty}\n    dims: [ {} ]\n  }}",
        io.name,
        dims.join(", ")
    ))
}

/// Checks that `summary` is a TCANet export (the contract's inputs and
/// outputs, its metadata) and returns its interface.
pub fn check_tcanet(summary: &ModelSummary, path: &Path) -> Result<ModelInterface, RepoError> {
    let not = |reason: String| RepoError::NotTcanet {
        path: path.to_path_buf(),
        reason,
    };
    let inputs: Vec<&str> = summary.inputs.iter().map(|i| i.name.as_str()).collect();
    if inputs != INPUT_NAMES {
        return Err(not(format!(
            "inputs are {inputs:?}, expected {INPUT_NAMES:?}"
        )));
    }
    for name in PROPOSAL_OUTPUTS.iter().chain(&IOU_OUTPUTS) {
        if !summary.outputs.iter().any(|o| o.name == *name) {
            return Err(not(format!("no output '{name}'")));
        }
    }
    summary.interface(None).map_err(|e| not(e.to_string()))
}

/// The text of `config.pbtxt` for the model `summary` describes.
pub fn config_pbtxt(
    summary: &ModelSummary,
    path: &Path,
    opts: &RepoOptions,
) -> Result<String, RepoError> {
    if opts.fp16 && !opts.tensorrt {
        return Err(RepoError::Options(
            "--fp16 sets TensorRT's precision: give --tensorrt too".into(),
        ));
    }
    if opts.tensorrt && opts.kind == InstanceKind::Cpu {
        return Err(RepoError::Options(
            "TensorRT runs on GPUs: --tensorrt with CPU instances".into(),
        ));
    }
    if opts.instances == 0 {
        return Err(RepoError::Options("instances must be at least 1".into()));
    }
    let interface = check_tcanet(summary, path)?;
    let batched = opts.max_batch > 0;
    let list = |ios: &[IoDesc]| -> Result<String, RepoError> {
        Ok(ios
            .iter()
            .map(|io| tensor_entry(io, batched, path))
            .collect::<Result<Vec<_>, _>>()?
            .join(",\n"))
    };
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Written by tcanet-export triton-repo: TCANet (C={}, T={}, {}).",
        interface.config.feat_dim, interface.time_steps, interface.precision
    );
    let _ = writeln!(out, "name: \"{MODEL_NAME}\"");
    let _ = writeln!(out, "platform: \"onnxruntime_onnx\"");
    let _ = writeln!(out, "max_batch_size: {}", opts.max_batch);
    let _ = writeln!(out, "input [\n{}\n]", list(&summary.inputs)?);
    let _ = writeln!(out, "output [\n{}\n]", list(&summary.outputs)?);
    if batched {
        let _ = writeln!(
            out,
            "dynamic_batching {{\n  max_queue_delay_microseconds: {}\n}}",
            opts.max_queue_delay_us
        );
    }
    let kind = match opts.kind {
        InstanceKind::Gpu => "KIND_GPU",
        InstanceKind::Cpu => "KIND_CPU",
    };
    let _ = writeln!(
        out,
        "instance_group [\n  {{\n    count: {}\n    kind: {kind}\n  }}\n]",
        opts.instances
    );
    if opts.tensorrt {
        let precision = if opts.fp16 { "FP16" } else { "FP32" };
        let _ = writeln!(
            out,
            "optimization {{\n  execution_accelerators {{\n    gpu_execution_accelerator: [\n      {{\n        \
             name: \"tensorrt\"\n        parameters {{ key: \"precision_mode\" value: \"{precision}\" }}\n        \
             parameters {{ key: \"max_workspace_size_bytes\" value: \"{}\" }}\n      }}\n    ]\n  }}\n}}",
            opts.workspace_bytes
        );
    }
    Ok(out)
}

/// What [`write_repository`] wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct RepoSummary {
    /// `REPO/tcanet/config.pbtxt`.
    pub config: PathBuf,
    /// `REPO/tcanet/1/model.onnx`.
    pub model: PathBuf,
}

/// Writes `REPO/tcanet/config.pbtxt` for the ONNX file at `model_path`,
/// which must already be at `REPO/tcanet/1/model.onnx` or is copied there.
pub fn write_repository(
    repo: &Path,
    model_path: &Path,
    opts: &RepoOptions,
) -> Result<RepoSummary, RepoError> {
    let summary = inspect_file(model_path)?;
    let text = config_pbtxt(&summary, model_path, opts)?;
    let dir = repo.join(MODEL_NAME);
    let model = model_file(repo);
    let write = |path: &Path, bytes: &[u8]| {
        write_atomic_bytes(path, bytes).map_err(|source| RepoError::Write {
            path: path.to_path_buf(),
            source,
        })
    };
    std::fs::create_dir_all(dir.join("1")).map_err(|source| RepoError::Write {
        path: dir.join("1"),
        source,
    })?;
    if !same_file(model_path, &model) {
        let bytes =
            std::fs::read(model_path).map_err(|cause| crate::inspect::InspectError::Io {
                path: model_path.to_path_buf(),
                cause,
            })?;
        write(&model, &bytes)?;
    }
    let config = dir.join("config.pbtxt");
    write(&config, text.as_bytes())?;
    Ok(RepoSummary { config, model })
}

/// `REPO/tcanet/1/model.onnx`.
pub fn model_file(repo: &Path) -> PathBuf {
    repo.join(MODEL_NAME).join("1").join("model.onnx")
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(x), Ok(y)) => x == y,
        _ => false,
    }
}
