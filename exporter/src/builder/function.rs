//! Model-local ONNX functions: a subgraph of standard operators that graph
//! nodes call like an operator. Every ONNX runtime inlines the body; a
//! runtime with a kernel registered for the function's domain and name runs
//! that kernel instead (ONNX Runtime does).
use super::{GraphBuilder, Value};
use crate::onnx_proto::{attribute_type, AttributeProto, FunctionProto, NodeProto};

/// Which function a call runs: domain, name and overload (one body per
/// overload, e.g. per set of shapes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionId {
    /// The operator domain (not the default one).
    pub domain: &'static str,
    /// The operator name within the domain.
    pub name: &'static str,
    /// Which body of `name`: calls with the same overload share one body.
    pub overload: String,
}

impl GraphBuilder {
    /// A node `scope/leaf` calling function `id` on `inputs`, each given
    /// with the name of its formal input. The body is built by `body` on a
    /// fresh builder from the formal inputs and returns the body's output;
    /// its constants become `Constant` nodes (functions hold no
    /// initializers). The first call of an overload defines it; later calls
    /// must build the same body.
    pub fn call_function(
        &mut self,
        id: &FunctionId,
        leaf: &str,
        inputs: &[(&str, &Value)],
        body: impl FnOnce(&mut GraphBuilder, &[Value]) -> Value,
    ) -> Value {
        let name = self.unique_name(leaf);
        let call = NodeProto {
            input: inputs.iter().map(|(_, v)| v.0.clone()).collect(),
            output: vec![name.clone()],
            name: name.clone(),
            op_type: id.name.into(),
            domain: id.domain.into(),
            overload: id.overload.clone(),
            ..Default::default()
        };
        let function = self.function_body(id, inputs, body);
        match self.functions.iter().find(|f| f.is_called_by(&call)) {
            Some(defined) => assert!(
                *defined == function,
                "function {}.{} overload {} built with two different bodies",
                id.domain,
                id.name,
                id.overload
            ),
            None => self.functions.push(function),
        }
        self.nodes.push(call);
        Value(name)
    }

    fn function_body(
        &self,
        id: &FunctionId,
        inputs: &[(&str, &Value)],
        body: impl FnOnce(&mut GraphBuilder, &[Value]) -> Value,
    ) -> FunctionProto {
        let mut sub = GraphBuilder::with_weight_precision(self.weight_precision);
        let formals: Vec<Value> = inputs
            .iter()
            .map(|(formal, _)| {
                sub.used_names.insert(formal.to_string());
                Value(formal.to_string())
            })
            .collect();
        let output = body(&mut sub, &formals);
        let constants = sub.initializers.into_iter().map(|t| NodeProto {
            output: vec![t.name.clone()],
            name: t.name.clone(),
            op_type: "Constant".into(),
            attribute: vec![AttributeProto {
                name: "value".into(),
                r#type: attribute_type::TENSOR,
                t: Some(t),
                ..Default::default()
            }],
            ..Default::default()
        });
        FunctionProto {
            name: id.name.into(),
            domain: id.domain.into(),
            overload: id.overload.clone(),
            input: formals.into_iter().map(|v| v.0).collect(),
            output: vec![output.0],
            node: constants.chain(sub.nodes).collect(),
            ..Default::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builder::Dim;
    use crate::onnx_proto::data_type;

    fn double(b: &mut GraphBuilder, formal: &[Value]) -> Value {
        let two = b.const_f32("two", &[], &[2.0]);
        b.op("Mul", "double", &[&formal[0], &two], vec![])
    }

    fn id(overload: &str) -> FunctionId {
        FunctionId {
            domain: "test.domain",
            name: "Double",
            overload: overload.into(),
        }
    }

    #[test]
    fn calls_share_one_body_per_overload_and_unused_bodies_are_dropped() {
        let mut b = GraphBuilder::new();
        let x = b.input("x", data_type::FLOAT, &[Dim::Fixed(2)]);
        let y = b.scoped("s", |b| {
            b.call_function(&id("a"), "f", &[("x", &x)], double)
        });
        let y = b.call_function(&id("a"), "f", &[("x", &y)], double);
        let _unused = b.call_function(&id("b"), "g", &[("x", &x)], double);
        b.output(&y, "y", data_type::FLOAT, &[Dim::Fixed(2)]);
        let finished = b.finish("g");
        let calls: Vec<_> = finished
            .graph
            .node
            .iter()
            .map(|n| (n.name.as_str(), n.domain.as_str(), n.overload.as_str()))
            .collect();
        assert_eq!(
            calls,
            [("s/f", "test.domain", "a"), ("f", "test.domain", "a")]
        );
        assert_eq!(finished.functions.len(), 1);
        let f = &finished.functions[0];
        assert_eq!((f.name.as_str(), f.overload.as_str()), ("Double", "a"));
        assert_eq!(f.input, ["x"]);
        assert_eq!(f.output, ["double"]);
        // The body's constant is a Constant node, not an initializer.
        let ops: Vec<_> = f.node.iter().map(|n| n.op_type.as_str()).collect();
        assert_eq!(ops, ["Constant", "Mul"]);
        assert_eq!(
            f.node[0].attribute[0].t.as_ref().unwrap().raw_data,
            2f32.to_le_bytes()
        );
        assert!(finished.graph.initializer.is_empty());
    }

    #[test]
    #[should_panic(expected = "two different bodies")]
    fn one_overload_with_two_bodies_is_a_bug() {
        let mut b = GraphBuilder::new();
        let x = b.input("x", data_type::FLOAT, &[Dim::Fixed(2)]);
        b.call_function(&id("a"), "f", &[("x", &x)], double);
        b.call_function(&id("a"), "f", &[("x", &x)], |b, formal| {
            b.op("Relu", "relu", &[&formal[0]], vec![])
        });
    }
}
