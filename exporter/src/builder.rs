//! A small ONNX graph builder, kept apart from the protobuf messages: values,
//! constant initializers and nodes named after the model part they belong to
//! (`lgtes.0/attention/softmax`). [`GraphBuilder::finish`] drops anything the
//! outputs do not depend on and yields a [`GraphProto`].
use std::collections::HashSet;

use crate::onnx_proto::{
    attribute_type, data_type, AttributeProto, Dimension, DimensionValue, GraphProto, NodeProto,
    TensorProto, TensorShapeProto, TypeProto, TypeProtoTensor, ValueInfoProto,
};

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
        }
    }

    /// Runs `f` with `name` appended to the naming scope (`tbr1`, `xw`, ...).
    pub fn scoped<R>(&mut self, name: &str, f: impl FnOnce(&mut Self) -> R) -> R {
        self.scope.push(name.to_string());
        let r = f(self);
        self.scope.pop();
        r
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

    /// A constant initializer named `scope/leaf` from little-endian bytes.
    fn initializer(&mut self, leaf: &str, data_type: i32, dims: &[usize], raw: Vec<u8>) -> Value {
        let name = self.unique_name(leaf);
        self.initializers.push(TensorProto {
            dims: dims.iter().map(|&d| d as i64).collect(),
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

    /// A node with one output, named `scope/leaf`; returns its output.
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

    /// The graph, without nodes and initializers the outputs do not need.
    pub fn finish(self, name: &str) -> GraphProto {
        let mut needed: HashSet<String> = self.outputs.iter().map(|o| o.name.clone()).collect();
        let mut keep = vec![false; self.nodes.len()];
        // Nodes are in topological order: walk backwards once.
        for (i, node) in self.nodes.iter().enumerate().rev() {
            if node.output.iter().any(|o| needed.contains(o)) {
                keep[i] = true;
                needed.extend(node.input.iter().filter(|s| !s.is_empty()).cloned());
            }
        }
        let node = self
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
        GraphProto {
            node,
            name: name.into(),
            initializer,
            input: self.inputs,
            output: self.outputs,
            ..Default::default()
        }
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
        let g = b.finish("g");
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
}
