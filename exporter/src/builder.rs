//! A small ONNX graph builder, kept apart from the protobuf messages: values,
//! constant initializers and nodes named after the model part they belong to
//! (`lgtes.0/attention/softmax`). A constant equal to an earlier one (type,
//! dimensions and bytes) is stored once, under the earlier name.
//! [`GraphBuilder::finish`] drops anything the outputs do not depend on and
//! yields a [`GraphProto`]. The typed operator
//! helpers (`matmul`, `reshape`, `conv2d`, ...) are in [`ops`].
use std::collections::hash_map::DefaultHasher;
use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};

use tcanet_models::onnx::Precision;

use crate::onnx_proto::{
    attribute_type, data_type, AttributeProto, Dimension, DimensionValue, FunctionProto,
    GraphProto, NodeProto, TensorProto, TensorShapeProto, TypeProto, TypeProtoTensor,
    ValueInfoProto,
};

mod function;
mod ops;
pub use function::FunctionId;
pub use ops::Conv2dSpec;

/// The name of a value (tensor) in the graph under construction.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Value(pub String);

/// One dimension of a graph input or output: fixed or symbolic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dim {
    /// A fixed size.
    Fixed(i64),
    /// A named dynamic size (`B`, `N`).
    Sym(&'static str),
}

/// An operator attribute.
pub struct Attr(AttributeProto);

impl Attr {
    /// An int64 attribute.
    pub fn int(name: &str, v: i64) -> Self {
        Attr(AttributeProto {
            name: name.into(),
            r#type: attribute_type::INT,
            i: v,
            ..Default::default()
        })
    }

    /// A list-of-int64 attribute.
    pub fn ints(name: &str, v: &[i64]) -> Self {
        Attr(AttributeProto {
            name: name.into(),
            r#type: attribute_type::INTS,
            ints: v.to_vec(),
            ..Default::default()
        })
    }

    /// A float attribute.
    pub fn float(name: &str, v: f32) -> Self {
        Attr(AttributeProto {
            name: name.into(),
            r#type: attribute_type::FLOAT,
            f: v,
            ..Default::default()
        })
    }
}

/// Builds one ONNX graph; see the module documentation.
pub struct GraphBuilder {
    nodes: Vec<NodeProto>,
    initializers: Vec<TensorProto>,
    inputs: Vec<ValueInfoProto>,
    outputs: Vec<ValueInfoProto>,
    scope: Vec<String>,
    used_names: HashSet<String>,
    weight_precision: Precision,
    /// Initializers (indices) by a hash of their type, dimensions and bytes.
    constants: HashMap<u64, Vec<usize>>,
    /// The functions nodes call ([`GraphBuilder::call_function`]).
    functions: Vec<FunctionProto>,
}

/// A finished graph and the model-local functions its nodes call.
#[derive(Debug, Clone)]
pub struct FinishedGraph {
    /// The graph.
    pub graph: GraphProto,
    /// The functions called by the graph's nodes (for `ModelProto.functions`).
    pub functions: Vec<FunctionProto>,
}

impl Default for GraphBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl GraphBuilder {
    /// An empty graph.
    pub fn new() -> Self {
        Self {
            nodes: Vec::new(),
            initializers: Vec::new(),
            inputs: Vec::new(),
            outputs: Vec::new(),
            scope: Vec::new(),
            used_names: HashSet::new(),
            weight_precision: Precision::Fp32,
            constants: HashMap::new(),
            functions: Vec::new(),
        }
    }

    /// An empty graph whose [`GraphBuilder::weight`]s are stored in `precision`.
    pub fn with_weight_precision(precision: Precision) -> Self {
        Self {
            weight_precision: precision,
            ..Self::new()
        }
    }

    /// The precision [`GraphBuilder::weight`] stores in.
    pub fn weight_precision(&self) -> Precision {
        self.weight_precision
    }

    /// Runs `f` with `name` appended to the naming scope (`tbr1`, `xw`, ...).
    pub fn scoped<R>(&mut self, name: &str, f: impl FnOnce(&mut Self) -> R) -> R {
        self.push_scope(name);
        let r = f(self);
        self.pop_scope();
        r
    }

    /// Appends `name` to the naming scope (undo with [`GraphBuilder::pop_scope`]).
    pub fn push_scope(&mut self, name: &str) {
        self.scope.push(name.to_string());
    }

    /// Removes the innermost naming scope.
    pub fn pop_scope(&mut self) {
        self.scope.pop();
    }

    /// `scope/leaf`, made unique with a numeric suffix if needed.
    fn unique_name(&mut self, leaf: &str) -> String {
        let base = if self.scope.is_empty() {
            leaf.to_string()
        } else {
            format!("{}/{leaf}", self.scope.join("/"))
        };
        let mut name = base.clone();
        let mut i = 2;
        while !self.used_names.insert(name.clone()) {
            name = format!("{base}_{i}");
            i += 1;
        }
        name
    }

    /// Declares a graph input.
    pub fn input(&mut self, name: &str, elem_type: i32, dims: &[Dim]) -> Value {
        self.used_names.insert(name.to_string());
        self.inputs.push(value_info(name, elem_type, dims));
        Value(name.to_string())
    }

    /// Declares `value` a graph output. The value must be the output of a
    /// node: that node's output is renamed to `name`.
    pub fn output(&mut self, value: &Value, name: &str, elem_type: i32, dims: &[Dim]) {
        for node in &mut self.nodes {
            for out in &mut node.output {
                if *out == value.0 {
                    *out = name.to_string();
                }
            }
            for inp in &mut node.input {
                if *inp == value.0 {
                    *inp = name.to_string();
                }
            }
        }
        self.used_names.insert(name.to_string());
        self.outputs.push(value_info(name, elem_type, dims));
    }

    /// A constant initializer named `scope/leaf` from little-endian bytes, or
    /// the earlier one with the same type, dimensions and bytes.
    fn initializer(&mut self, leaf: &str, data_type: i32, dims: &[usize], raw: Vec<u8>) -> Value {
        let dims: Vec<i64> = dims.iter().map(|&d| d as i64).collect();
        let mut hasher = DefaultHasher::new();
        (data_type, &dims, &raw).hash(&mut hasher);
        let candidates = self.constants.entry(hasher.finish()).or_default();
        if let Some(&i) = candidates.iter().find(|&&i| {
            let t = &self.initializers[i];
            t.data_type == data_type && t.dims == dims && t.raw_data == raw
        }) {
            return Value(self.initializers[i].name.clone());
        }
        candidates.push(self.initializers.len());
        let name = self.unique_name(leaf);
        self.initializers.push(TensorProto {
            dims,
            data_type,
            name: name.clone(),
            raw_data: raw,
            ..Default::default()
        });
        Value(name)
    }

    /// A float32 constant.
    pub fn const_f32(&mut self, leaf: &str, dims: &[usize], data: &[f32]) -> Value {
        assert_eq!(dims.iter().product::<usize>(), data.len(), "{leaf}");
        let raw = data.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.initializer(leaf, data_type::FLOAT, dims, raw)
    }

    /// A float16 constant (values rounded to nearest).
    pub fn const_f16(&mut self, leaf: &str, dims: &[usize], data: &[f32]) -> Value {
        assert_eq!(dims.iter().product::<usize>(), data.len(), "{leaf}");
        let raw = data
            .iter()
            .flat_map(|v| half::f16::from_f32(*v).to_le_bytes())
            .collect();
        self.initializer(leaf, data_type::FLOAT16, dims, raw)
    }

    /// A weight-like constant in the graph's weight precision (float32 or
    /// float16, see [`GraphBuilder::with_weight_precision`]).
    pub fn weight(&mut self, leaf: &str, dims: &[usize], data: &[f32]) -> Value {
        match self.weight_precision {
            Precision::Fp32 => self.const_f32(leaf, dims, data),
            Precision::Fp16 => self.const_f16(leaf, dims, data),
        }
    }

    /// A boolean constant.
    pub fn const_bool(&mut self, leaf: &str, dims: &[usize], data: &[bool]) -> Value {
        assert_eq!(dims.iter().product::<usize>(), data.len(), "{leaf}");
        let raw = data.iter().map(|&v| v as u8).collect();
        self.initializer(leaf, data_type::BOOL, dims, raw)
    }

    /// An int64 constant (shapes, axes, indices).
    pub fn const_i64(&mut self, leaf: &str, dims: &[usize], data: &[i64]) -> Value {
        assert_eq!(dims.iter().product::<usize>(), data.len(), "{leaf}");
        let raw = data.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.initializer(leaf, data_type::INT64, dims, raw)
    }

    /// An int8 constant (quantized weights, zero points).
    pub fn const_i8(&mut self, leaf: &str, dims: &[usize], data: &[i8]) -> Value {
        assert_eq!(dims.iter().product::<usize>(), data.len(), "{leaf}");
        let raw = data.iter().map(|v| v.to_le_bytes()[0]).collect();
        self.initializer(leaf, data_type::INT8, dims, raw)
    }

    /// A node with one output, named `scope/leaf`; returns its output. The
    /// typed helpers below cover the operators the graph uses; this is the
    /// escape hatch for others.
    pub fn op(&mut self, op_type: &str, leaf: &str, inputs: &[&Value], attrs: Vec<Attr>) -> Value {
        self.op_multi(op_type, leaf, inputs, 1, attrs)
            .pop()
            .expect("one output")
    }

    /// A node with `n_outputs` outputs (`scope/leaf:0`, `scope/leaf:1`, ...).
    pub fn op_multi(
        &mut self,
        op_type: &str,
        leaf: &str,
        inputs: &[&Value],
        n_outputs: usize,
        attrs: Vec<Attr>,
    ) -> Vec<Value> {
        let name = self.unique_name(leaf);
        let outputs: Vec<String> = if n_outputs == 1 {
            vec![name.clone()]
        } else {
            (0..n_outputs).map(|i| format!("{name}:{i}")).collect()
        };
        self.nodes.push(NodeProto {
            input: inputs.iter().map(|v| v.0.clone()).collect(),
            output: outputs.clone(),
            name,
            op_type: op_type.into(),
            attribute: attrs.into_iter().map(|a| a.0).collect(),
            ..Default::default()
        });
        outputs.into_iter().map(Value).collect()
    }

    /// The graph, without nodes, initializers and functions the outputs do
    /// not need.
    pub fn finish(self, name: &str) -> FinishedGraph {
        let mut needed: HashSet<String> = self.outputs.iter().map(|o| o.name.clone()).collect();
        let mut keep = vec![false; self.nodes.len()];
        // Nodes are in topological order: walk backwards once.
        for (i, node) in self.nodes.iter().enumerate().rev() {
            if node.output.iter().any(|o| needed.contains(o)) {
                keep[i] = true;
                needed.extend(node.input.iter().filter(|s| !s.is_empty()).cloned());
            }
        }
        let node: Vec<NodeProto> = self
            .nodes
            .into_iter()
            .zip(keep)
            .filter_map(|(n, k)| k.then_some(n))
            .collect();
        let initializer = self
            .initializers
            .into_iter()
            .filter(|t| needed.contains(&t.name))
            .collect();
        let functions = self
            .functions
            .into_iter()
            .filter(|f| node.iter().any(|n| f.is_called_by(n)))
            .collect();
        let graph = GraphProto {
            node,
            name: name.into(),
            initializer,
            input: self.inputs,
            output: self.outputs,
            ..Default::default()
        };
        FinishedGraph { graph, functions }
    }
}

/// A tensor-typed `ValueInfoProto`.
fn value_info(name: &str, elem_type: i32, dims: &[Dim]) -> ValueInfoProto {
    ValueInfoProto {
        name: name.into(),
        r#type: Some(TypeProto {
            tensor_type: Some(TypeProtoTensor {
                elem_type,
                shape: Some(TensorShapeProto {
                    dim: dims
                        .iter()
                        .map(|d| Dimension {
                            value: Some(match d {
                                Dim::Fixed(v) => DimensionValue::DimValue(*v),
                                Dim::Sym(s) => DimensionValue::DimParam((*s).into()),
                            }),
                            ..Default::default()
                        })
                        .collect(),
                }),
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finish_drops_what_the_outputs_do_not_need() {
        let mut b = GraphBuilder::new();
        let x = b.input("x", data_type::FLOAT, &[Dim::Sym("B")]);
        let two = b.const_f32("two", &[], &[2.0]);
        let unused = b.const_f32("unused", &[], &[3.0]);
        let (y, dead) = b.scoped("part", |b| {
            let y = b.op("Mul", "double", &[&x, &two], vec![]);
            let dead = b.op("Add", "dead", &[&x, &unused], vec![]);
            (y, dead)
        });
        let _ = b.op("Relu", "dead_too", &[&dead], vec![]);
        b.output(&y, "y", data_type::FLOAT, &[Dim::Sym("B")]);
        let g = b.finish("g").graph;
        assert_eq!(g.node.len(), 1);
        assert_eq!(g.node[0].name, "part/double");
        assert_eq!(g.node[0].output, vec!["y".to_string()]);
        let inits: Vec<_> = g.initializer.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(inits, ["two"]);
    }

    #[test]
    fn names_are_unique_within_a_scope() {
        let mut b = GraphBuilder::new();
        let x = b.input("x", data_type::FLOAT, &[Dim::Fixed(1)]);
        let a = b.scoped("s", |b| b.op("Relu", "r", &[&x], vec![]));
        let c = b.scoped("s", |b| b.op("Relu", "r", &[&a], vec![]));
        assert_eq!(a.0, "s/r");
        assert_eq!(c.0, "s/r_2");
    }

    #[test]
    fn equal_constants_are_stored_once() {
        let mut b = GraphBuilder::new();
        let x = b.input("x", data_type::FLOAT, &[Dim::Fixed(2)]);
        let first = b.scoped("a", |b| b.const_f32("w", &[2], &[1.0, 2.0]));
        let same = b.scoped("b", |b| b.const_f32("w", &[2], &[1.0, 2.0]));
        let other_dims = b.const_f32("w", &[1, 2], &[1.0, 2.0]);
        let other_type = b.const_f16("w", &[2], &[1.0, 2.0]);
        let other_bytes = b.const_f32("w", &[2], &[1.0, -2.0]);
        assert_eq!(same, first);
        let distinct = [&first, &other_dims, &other_type, &other_bytes];
        let names: HashSet<&str> = distinct.iter().map(|v| v.0.as_str()).collect();
        assert_eq!(names.len(), 4);
        let mut y = x;
        for (i, w) in [&first, &same, &other_bytes].into_iter().enumerate() {
            y = b.op("Mul", &format!("m{i}"), &[&y, w], vec![]);
        }
        let f = b.op(
            "Cast",
            "f",
            &[&other_type],
            vec![Attr::int("to", data_type::FLOAT.into())],
        );
        let y = b.op("Add", "out", &[&y, &f, &other_dims], vec![]);
        b.output(&y, "y", data_type::FLOAT, &[Dim::Fixed(1), Dim::Fixed(2)]);
        let g = b.finish("g").graph;
        assert_eq!(
            g.initializer.len(),
            4,
            "{:?}",
            g.initializer.iter().map(|t| &t.name).collect::<Vec<_>>()
        );
    }

    #[test]
    fn typed_ops_create_their_constant_operands_beside_the_node() {
        let mut b = GraphBuilder::with_weight_precision(Precision::Fp16);
        let x = b.input("x", data_type::FLOAT, &[Dim::Sym("B"), Dim::Fixed(6)]);
        let y = b.scoped("s", |b| {
            let y = b.reshape("r", &x, &[0, 2, 3]);
            let y = b.transpose("t", &y, &[0, 2, 1]);
            let w = b.weight("w", &[2], &[1.0, 2.0]);
            b.mul("m", &y, &w)
        });
        b.output(
            &y,
            "y",
            data_type::FLOAT16,
            &[Dim::Sym("B"), Dim::Fixed(3), Dim::Fixed(2)],
        );
        let g = b.finish("g").graph;
        let ops: Vec<_> = g
            .node
            .iter()
            .map(|n| (n.name.as_str(), n.op_type.as_str()))
            .collect();
        assert_eq!(
            ops,
            [("s/r", "Reshape"), ("s/t", "Transpose"), ("s/m", "Mul")]
        );
        assert_eq!(g.node[0].input, ["x", "s/r/shape"]);
        let shape = g
            .initializer
            .iter()
            .find(|t| t.name == "s/r/shape")
            .unwrap();
        assert_eq!(shape.dims, [3]);
        assert_eq!(shape.data_type, data_type::INT64);
        let perm = &g.node[1].attribute[0];
        assert_eq!(
            (perm.name.as_str(), perm.ints.as_slice()),
            ("perm", &[0i64, 2, 1][..])
        );
        let w = g.initializer.iter().find(|t| t.name == "s/w").unwrap();
        assert_eq!(w.data_type, data_type::FLOAT16);
        assert_eq!(w.raw_data.len(), 4);
    }
}
