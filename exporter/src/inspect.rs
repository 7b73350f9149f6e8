//! A summary of an ONNX file (any producer's): inputs, outputs, opset, IR
//! version, metadata, node count, operator histogram and model-local
//! functions.
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use prost::Message;
use tcanet_models::onnx::{ContractError, ModelInterface};
use tcanet_models::ModelConfig;

use crate::onnx_proto::{
    data_type, DimensionValue, FunctionProto, ModelProto, NodeProto, ValueInfoProto,
};

/// Why a file could not be inspected.
#[derive(Debug, thiserror::Error)]
pub enum InspectError {
    /// The file cannot be read.
    #[error("cannot read {path}: {cause}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        cause: std::io::Error,
    },
    /// The file is not an ONNX ModelProto.
    #[error("{path} is not an ONNX model: {reason}")]
    Decode {
        /// The file.
        path: PathBuf,
        /// The protobuf decoder's complaint.
        reason: String,
    },
}

/// One graph input or output.
#[derive(Debug, Clone, PartialEq)]
pub struct IoDesc {
    /// Its name.
    pub name: String,
    /// Element type (`float32`, ...).
    pub elem_type: String,
    /// Dimensions: numbers, or symbolic names such as `B`.
    pub dims: Vec<String>,
}

/// What `tcanet-export inspect` prints.
#[derive(Debug, Clone)]
pub struct ModelSummary {
    /// IR version.
    pub ir_version: i64,
    /// (domain, version) of every imported opset; "" is the default domain.
    pub opsets: Vec<(String, i64)>,
    /// Producer name and version.
    pub producer: String,
    /// Graph inputs.
    pub inputs: Vec<IoDesc>,
    /// Graph outputs.
    pub outputs: Vec<IoDesc>,
    /// metadata_props, in file order.
    pub metadata: Vec<(String, String)>,
    /// Number of nodes.
    pub node_count: usize,
    /// Number of initializers and their total element count.
    pub initializers: (usize, usize),
    /// Nodes per operator type.
    pub op_histogram: BTreeMap<String, usize>,
    /// Node names, in graph order.
    pub node_names: Vec<String>,
    /// The model-local functions, in file order.
    pub functions: Vec<FunctionDesc>,
}

/// One model-local function.
#[derive(Debug, Clone, PartialEq)]
pub struct FunctionDesc {
    /// `domain.name`.
    pub name: String,
    /// The overload (empty when the function has one body).
    pub overload: String,
    /// Number of nodes in its body.
    pub node_count: usize,
    /// Body nodes per operator type.
    pub op_histogram: BTreeMap<String, usize>,
    /// Graph nodes that call it.
    pub calls: usize,
}

impl ModelSummary {
    /// The default-domain opset version, if imported.
    pub fn opset(&self) -> Option<i64> {
        self.opsets
            .iter()
            .find(|(d, _)| d.is_empty() || d == "ai.onnx")
            .map(|(_, v)| *v)
    }

    /// The value of metadata key `key`.
    pub fn metadata_value(&self, key: &str) -> Option<&str> {
        self.metadata
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// What the model declares about itself in its metadata (config,
    /// precision, T), read by [`ModelInterface::from_metadata`]; `config`
    /// replaces the embedded config when given.
    pub fn interface(&self, config: Option<ModelConfig>) -> Result<ModelInterface, ContractError> {
        ModelInterface::from_metadata(|k| self.metadata_value(k).map(str::to_string), config)
    }
}

fn describe(v: &ValueInfoProto) -> IoDesc {
    let tensor = v.r#type.as_ref().and_then(|t| t.tensor_type.as_ref());
    IoDesc {
        name: v.name.clone(),
        elem_type: tensor
            .map(|t| data_type::name(t.elem_type).to_string())
            .unwrap_or_else(|| "non-tensor".into()),
        dims: tensor
            .and_then(|t| t.shape.as_ref())
            .map(|s| {
                s.dim
                    .iter()
                    .map(|d| match &d.value {
                        Some(DimensionValue::DimValue(v)) => v.to_string(),
                        Some(DimensionValue::DimParam(p)) => p.clone(),
                        None => "?".into(),
                    })
                    .collect()
            })
            .unwrap_or_default(),
    }
}

/// Nodes per operator type.
fn histogram(nodes: &[NodeProto]) -> BTreeMap<String, usize> {
    let mut op_histogram = BTreeMap::new();
    for n in nodes {
        *op_histogram.entry(n.op_type.clone()).or_insert(0) += 1;
    }
    op_histogram
}

fn describe_function(f: &FunctionProto, graph: &[NodeProto]) -> FunctionDesc {
    FunctionDesc {
        name: format!("{}.{}", f.domain, f.name),
        overload: f.overload.clone(),
        node_count: f.node.len(),
        op_histogram: histogram(&f.node),
        calls: graph.iter().filter(|n| f.is_called_by(n)).count(),
    }
}

/// Summarises a decoded model.
pub fn summarize(model: &ModelProto) -> ModelSummary {
    let graph = model.graph.clone().unwrap_or_default();
    let op_histogram = histogram(&graph.node);
    // Hostile files may declare any dims: negative ones count as 0, and
    // the counts saturate instead of overflowing.
    let elements = graph
        .initializer
        .iter()
        .map(|t| {
            t.dims
                .iter()
                .try_fold(1u64, |acc, &d| acc.checked_mul(d.max(0) as u64))
                .unwrap_or(u64::MAX)
        })
        .fold(0u64, u64::saturating_add)
        .try_into()
        .unwrap_or(usize::MAX);
    ModelSummary {
        ir_version: model.ir_version,
        opsets: model
            .opset_import
            .iter()
            .map(|o| (o.domain.clone(), o.version))
            .collect(),
        producer: format!("{} {}", model.producer_name, model.producer_version),
        inputs: graph.input.iter().map(describe).collect(),
        outputs: graph.output.iter().map(describe).collect(),
        metadata: model
            .metadata_props
            .iter()
            .map(|e| (e.key.clone(), e.value.clone()))
            .collect(),
        node_count: graph.node.len(),
        initializers: (graph.initializer.len(), elements),
        op_histogram,
        node_names: graph.node.iter().map(|n| n.name.clone()).collect(),
        functions: model
            .functions
            .iter()
            .map(|f| describe_function(f, &graph.node))
            .collect(),
    }
}

/// Reads and summarises an ONNX file.
pub fn inspect_file(path: &Path) -> Result<ModelSummary, InspectError> {
    let bytes = std::fs::read(path).map_err(|cause| InspectError::Io {
        path: path.to_path_buf(),
        cause,
    })?;
    inspect_bytes(path, &bytes)
}

/// Decodes and summarises the bytes of an ONNX file (`path` names them in
/// errors); any bytes give a summary or an error, never a panic.
pub fn inspect_bytes(path: &Path, bytes: &[u8]) -> Result<ModelSummary, InspectError> {
    let model = ModelProto::decode(bytes).map_err(|e| InspectError::Decode {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    // Protobuf decodes an empty file (and some other bytes) as an empty
    // message: without a graph it is no model.
    if model.graph.is_none() {
        return Err(InspectError::Decode {
            path: path.to_path_buf(),
            reason: format!("it holds no graph ({} bytes)", bytes.len()),
        });
    }
    Ok(summarize(&model))
}

impl fmt::Display for ModelSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "producer:     {}", self.producer)?;
        writeln!(f, "IR version:   {}", self.ir_version)?;
        let opsets: Vec<String> = self
            .opsets
            .iter()
            .map(|(d, v)| format!("{}:{v}", if d.is_empty() { "ai.onnx" } else { d }))
            .collect();
        writeln!(f, "opset:        {}", opsets.join(", "))?;
        for (title, list) in [("inputs:", &self.inputs), ("outputs:", &self.outputs)] {
            writeln!(f, "{title}")?;
            for io in list {
                writeln!(
                    f,
                    "  {:<14} {:<8} [{}]",
                    io.name,
                    io.elem_type,
                    io.dims.join(", ")
                )?;
            }
        }
        writeln!(f, "metadata:")?;
        for (k, v) in &self.metadata {
            let first = v.lines().next().unwrap_or("");
            let more = if v.lines().count() > 1 { " ..." } else { "" };
            writeln!(f, "  {k} = {first}{more}")?;
        }
        writeln!(
            f,
            "initializers: {} tensors, {} elements",
            self.initializers.0, self.initializers.1
        )?;
        writeln!(f, "nodes:        {}", self.node_count)?;
        writeln!(f, "op histogram:")?;
        let mut ops: Vec<_> = self.op_histogram.iter().collect();
        ops.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        for (op, count) in ops {
            writeln!(f, "  {op:<20} {count}")?;
        }
        if !self.functions.is_empty() {
            writeln!(
                f,
                "functions (standard-op bodies; a runtime may run its own kernel):"
            )?;
        }
        for func in &self.functions {
            let body: Vec<String> = func
                .op_histogram
                .iter()
                .map(|(op, n)| format!("{op} {n}"))
                .collect();
            let overload = match func.overload.as_str() {
                "" => String::new(),
                o => format!(" [{o}]"),
            };
            writeln!(
                f,
                "  {}{overload}: {} calls, {} body nodes ({})",
                func.name,
                func.calls,
                func.node_count,
                body.join(", ")
            )?;
        }
        Ok(())
    }
}
