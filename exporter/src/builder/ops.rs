//! Typed operator helpers: one method per ONNX operator the graph uses, with
//! its attributes as arguments and its constant operands (shapes, axes,
//! perms) created beside the node, named `leaf/shape`, `leaf/axes`, ...
//!
//! Each takes the node's `leaf` name (the scope is prepended) and returns the
//! node's output value(s).
use super::{Attr, GraphBuilder, Value};

/// The attributes of a `Conv` on `[N, C, 1, W]` (a Conv1d written as a
/// Conv2d of height 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Conv2dSpec {
    /// Kernel width (the height is 1).
    pub kernel: usize,
    /// Zero padding on both sides of the width.
    pub pad: usize,
    /// Stride along the width.
    pub stride: usize,
    /// Groups.
    pub group: usize,
}

macro_rules! binary_ops {
    ($($(#[$doc:meta])* $name:ident => $op:literal),* $(,)?) => {
        $(
            $(#[$doc])*
            pub fn $name(&mut self, leaf: &str, a: &Value, b: &Value) -> Value {
                self.op($op, leaf, &[a, b], vec![])
            }
        )*
    };
}

macro_rules! unary_ops {
    ($($(#[$doc:meta])* $name:ident => $op:literal),* $(,)?) => {
        $(
            $(#[$doc])*
            pub fn $name(&mut self, leaf: &str, x: &Value) -> Value {
                self.op($op, leaf, &[x], vec![])
            }
        )*
    };
}

impl GraphBuilder {
    binary_ops! {
        /// `a @ b` (numpy matmul semantics: batched, broadcast).
        matmul => "MatMul",
        /// `a + b` (broadcast).
        add => "Add",
        /// `a - b` (broadcast).
        sub => "Sub",
        /// `a * b` (broadcast).
        mul => "Mul",
        /// `a / b` (broadcast).
        div => "Div",
        /// Element-wise maximum.
        max => "Max",
        /// Element-wise minimum.
        min => "Min",
        /// Element-wise equality (bool).
        equal => "Equal",
        /// `a` broadcast to the shape held by `b` (int64).
        expand => "Expand",
        /// Reshape `a` to the run-time shape `b` (int64, 0 keeps a dimension).
        reshape_to => "Reshape",
    }

    unary_ops! {
        /// max(x, 0).
        relu => "Relu",
        /// e^x.
        exp => "Exp",
        /// 1 / (1 + e^−x).
        sigmoid => "Sigmoid",
        /// ⌊x⌋.
        floor => "Floor",
    }

    /// Element-wise sum of several tensors (`Sum`; unlike `Add`, ONNX Runtime
    /// does not fuse it with a following `LayerNormalization` into its slower
    /// `SkipLayerNormalization`).
    pub fn sum(&mut self, leaf: &str, xs: &[&Value]) -> Value {
        self.op("Sum", leaf, xs, vec![])
    }

    /// Reshape to a constant shape (0 keeps the input's dimension, −1 is inferred).
    pub fn reshape(&mut self, leaf: &str, x: &Value, shape: &[i64]) -> Value {
        let s = self.const_i64(&format!("{leaf}/shape"), &[shape.len()], shape);
        self.op("Reshape", leaf, &[x, &s], vec![])
    }

    /// Permutes the axes.
    pub fn transpose(&mut self, leaf: &str, x: &Value, perm: &[i64]) -> Value {
        self.op("Transpose", leaf, &[x], vec![Attr::ints("perm", perm)])
    }

    /// Inserts size-1 axes.
    pub fn unsqueeze(&mut self, leaf: &str, x: &Value, axes: &[i64]) -> Value {
        let a = self.const_i64(&format!("{leaf}/axes"), &[axes.len()], axes);
        self.op("Unsqueeze", leaf, &[x, &a], vec![])
    }

    /// Removes size-1 axes.
    pub fn squeeze(&mut self, leaf: &str, x: &Value, axes: &[i64]) -> Value {
        let a = self.const_i64(&format!("{leaf}/axes"), &[axes.len()], axes);
        self.op("Squeeze", leaf, &[x, &a], vec![])
    }

    /// Splits `x` along `axis` into pieces of the given sizes.
    pub fn split(&mut self, leaf: &str, x: &Value, sizes: &[i64], axis: i64) -> Vec<Value> {
        let s = self.const_i64(&format!("{leaf}/sizes"), &[sizes.len()], sizes);
        self.op_multi(
            "Split",
            leaf,
            &[x, &s],
            sizes.len(),
            vec![Attr::int("axis", axis)],
        )
    }

    /// Concatenates along `axis`.
    pub fn concat(&mut self, leaf: &str, xs: &[&Value], axis: i64) -> Value {
        self.op("Concat", leaf, xs, vec![Attr::int("axis", axis)])
    }

    /// `x[..., indices, ...]` along `axis` (`Gather`).
    pub fn gather(&mut self, leaf: &str, x: &Value, indices: &Value, axis: i64) -> Value {
        self.op("Gather", leaf, &[x, indices], vec![Attr::int("axis", axis)])
    }

    /// `GatherND` with `batch_dims` leading batch axes.
    pub fn gather_nd(&mut self, leaf: &str, x: &Value, indices: &Value, batch_dims: i64) -> Value {
        self.op(
            "GatherND",
            leaf,
            &[x, indices],
            vec![Attr::int("batch_dims", batch_dims)],
        )
    }

    /// `x[starts:ends]` on `axes` (constant bounds, step 1).
    pub fn slice(
        &mut self,
        leaf: &str,
        x: &Value,
        starts: &[i64],
        ends: &[i64],
        axes: &[i64],
    ) -> Value {
        let n = axes.len();
        let s = self.const_i64(&format!("{leaf}/starts"), &[n], starts);
        let e = self.const_i64(&format!("{leaf}/ends"), &[n], ends);
        let a = self.const_i64(&format!("{leaf}/axes"), &[n], axes);
        self.op("Slice", leaf, &[x, &s, &e, &a], vec![])
    }

    /// Softmax along `axis`.
    pub fn softmax(&mut self, leaf: &str, x: &Value, axis: i64) -> Value {
        self.op("Softmax", leaf, &[x], vec![Attr::int("axis", axis)])
    }

    /// Sum over `axes`.
    pub fn reduce_sum(&mut self, leaf: &str, x: &Value, axes: &[i64], keepdims: bool) -> Value {
        let a = self.const_i64(&format!("{leaf}/axes"), &[axes.len()], axes);
        self.op(
            "ReduceSum",
            leaf,
            &[x, &a],
            vec![Attr::int("keepdims", keepdims as i64)],
        )
    }

    /// `LayerNormalization` over the last axis.
    pub fn layer_norm(
        &mut self,
        leaf: &str,
        x: &Value,
        scale: &Value,
        bias: &Value,
        epsilon: f32,
    ) -> Value {
        self.op(
            "LayerNormalization",
            leaf,
            &[x, scale, bias],
            vec![Attr::int("axis", -1), Attr::float("epsilon", epsilon)],
        )
    }

    /// Converts to the ONNX data type `to` (`onnx_proto::data_type`).
    pub fn cast(&mut self, leaf: &str, x: &Value, to: i32) -> Value {
        self.op("Cast", leaf, &[x], vec![Attr::int("to", to as i64)])
    }

    /// clamp(x, lo, hi).
    pub fn clip(&mut self, leaf: &str, x: &Value, lo: &Value, hi: &Value) -> Value {
        self.op("Clip", leaf, &[x, lo, hi], vec![])
    }

    /// Constant padding: `pads` as ONNX orders them (all begins, then all
    /// ends); `value` (a scalar) or zero.
    pub fn pad(&mut self, leaf: &str, x: &Value, pads: &[i64], value: Option<&Value>) -> Value {
        let p = self.const_i64(&format!("{leaf}/pads"), &[pads.len()], pads);
        match value {
            Some(v) => self.op("Pad", leaf, &[x, &p, v], vec![]),
            None => self.op("Pad", leaf, &[x, &p], vec![]),
        }
    }

    /// The shape of `x` (int64), dimensions `start..end` when given.
    pub fn shape(&mut self, leaf: &str, x: &Value, start: Option<i64>, end: Option<i64>) -> Value {
        let mut attrs = Vec::new();
        if let Some(s) = start {
            attrs.push(Attr::int("start", s));
        }
        if let Some(e) = end {
            attrs.push(Attr::int("end", e));
        }
        self.op("Shape", leaf, &[x], attrs)
    }

    /// `start, start + delta, ... < limit` (scalars).
    pub fn range(&mut self, leaf: &str, start: &Value, limit: &Value, delta: &Value) -> Value {
        self.op("Range", leaf, &[start, limit, delta], vec![])
    }

    /// `cond ? a : b` element-wise.
    pub fn where_(&mut self, leaf: &str, cond: &Value, a: &Value, b: &Value) -> Value {
        self.op("Where", leaf, &[cond, a, b], vec![])
    }

    /// A 2-D `Conv` on `[N, C, 1, W]` with weight `[O, C/group, 1, kernel]`
    /// and bias `[O]`.
    pub fn conv2d(
        &mut self,
        leaf: &str,
        x: &Value,
        w: &Value,
        b: &Value,
        spec: Conv2dSpec,
    ) -> Value {
        let (k, p, s) = (spec.kernel as i64, spec.pad as i64, spec.stride as i64);
        self.op(
            "Conv",
            leaf,
            &[x, w, b],
            vec![
                Attr::ints("kernel_shape", &[1, k]),
                Attr::ints("pads", &[0, p, 0, p]),
                Attr::ints("strides", &[1, s]),
                Attr::int("group", spec.group as i64),
            ],
        )
    }

    /// `DynamicQuantizeLinear`: (uint8 values, float scale, uint8 zero
    /// point) of `x` over its whole range.
    pub fn dynamic_quantize_linear(&mut self, leaf: &str, x: &Value) -> [Value; 3] {
        let out = self.op_multi("DynamicQuantizeLinear", leaf, &[x], 3, vec![]);
        out.try_into().expect("three outputs")
    }

    /// `MatMulInteger` (int32 result) of quantized `a` and `b` with their
    /// zero points.
    pub fn matmul_integer(
        &mut self,
        leaf: &str,
        (a, a_zero): (&Value, &Value),
        (b, b_zero): (&Value, &Value),
    ) -> Value {
        self.op("MatMulInteger", leaf, &[a, b, a_zero, b_zero], vec![])
    }
}
