//! `--int8`: the large matrix products with int8 weights, dynamically
//! quantized activations (ONNX `DynamicQuantizeLinear` + `MatMulInteger`,
//! which ONNX Runtime fuses into its `MatMulIntegerToFloat` and runs on its
//! u8×s8 integer kernels: VNNI where the CPU has it, AVX2 otherwise).
//!
//! Weights are quantized per output channel (and per group or head of a
//! batched weight), symmetric, to ±63 (7 bits): without VNNI the AVX2
//! kernel adds pairs of u8×s8 products in 16 bits, which full 8-bit
//! weights can saturate. Activations get one scale and zero point per
//! tensor and run. Which products are quantized: the LGTE projections and
//! FFN and `reg_1d_o.0`, and with `--int8=all` the TBR tap tables
//! ([`crate::Int8Parts`]); the convolutions, the small heads, TTN and
//! decoding stay float32.
use std::collections::HashMap;

use super::fold::Tensor;
use super::Net;
use crate::builder::Value;
use crate::onnx_proto::data_type;

/// The largest quantized weight magnitude (7 bits).
pub const WEIGHT_LEVELS: f32 = 63.0;

/// A weight `[.., K, N]` quantized per output channel: `q · scale ≈ w`.
#[derive(Debug, Clone, PartialEq)]
pub struct QuantizedWeight {
    /// Same dims as the weight, values in ±[`WEIGHT_LEVELS`].
    pub values: Vec<i8>,
    /// The weight's dims.
    pub dims: Vec<usize>,
    /// `[.., 1, N]`: one scale per output channel of each batch entry.
    pub scale: Tensor,
}

/// Quantizes `w` (`[.., K, N]`): per output column n of each leading-index
/// entry, scale = max |w| / [`WEIGHT_LEVELS`] (1 for an all-zero column) and
/// values round(w / scale).
pub fn quantize_weight(w: &Tensor) -> QuantizedWeight {
    let nd = w.dims.len();
    let (k, n) = (w.dims[nd - 2], w.dims[nd - 1]);
    let batch = w.data.len() / (k * n);
    let mut scale = vec![0.0f32; batch * n];
    for b in 0..batch {
        for col in 0..n {
            let max = (0..k)
                .map(|r| w.data[(b * k + r) * n + col].abs())
                .fold(0.0f32, f32::max);
            scale[b * n + col] = if max > 0.0 { max / WEIGHT_LEVELS } else { 1.0 };
        }
    }
    let values = w
        .data
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let (b, col) = (i / (k * n), i % n);
            (v / scale[b * n + col])
                .round()
                .clamp(-WEIGHT_LEVELS, WEIGHT_LEVELS) as i8
        })
        .collect();
    let mut scale_dims = w.dims[..nd - 2].to_vec();
    scale_dims.extend([1, n]);
    QuantizedWeight {
        values,
        dims: w.dims.clone(),
        scale: Tensor::new(&scale_dims, scale),
    }
}

/// An activation quantized once for all its products.
#[derive(Clone)]
pub(super) struct QuantizedInput {
    values: Value,
    scale: Value,
    zero_point: Value,
}

/// Per-activation cache of [`QuantizedInput`]s, by value name.
pub(super) type InputCache = HashMap<String, QuantizedInput>;

impl Net<'_> {
    /// `x @ w` for a constant weight `leaf.name`, in the model's float
    /// precision whatever `--int8` says (`leaf/matmul`).
    pub(super) fn float_weight_matmul(
        &mut self,
        leaf: &str,
        x: &Value,
        w: &Tensor,
        name: &str,
    ) -> Value {
        let wv = self.weight(&format!("{leaf}.{name}"), w);
        self.b.matmul(&format!("{leaf}/matmul"), x, &wv)
    }

    /// `x @ w` for a constant weight: float32, or with `--int8` the
    /// quantized product (names `leaf.weight_q`, `leaf/matmul`, ...).
    pub(super) fn weight_matmul(&mut self, leaf: &str, x: &Value, w: &Tensor, name: &str) -> Value {
        if self.int8.is_none() {
            return self.float_weight_matmul(leaf, x, w, name);
        }
        let q = quantize_weight(w);
        let input = self.quantized_input(leaf, x);
        let b = &mut self.b;
        let wq = b.const_i8(&format!("{leaf}.{name}_q"), &q.dims, &q.values);
        let wz = b.const_i8(&format!("{leaf}.{name}_zero_point"), &[], &[0]);
        let ws = b.const_f32(
            &format!("{leaf}.{name}_scale"),
            &q.scale.dims,
            &q.scale.data,
        );
        let scale = b.mul(&format!("{leaf}/scales"), &input.scale, &ws);
        let y = b.matmul_integer(
            &format!("{leaf}/matmul_integer"),
            (&input.values, &input.zero_point),
            (&wq, &wz),
        );
        let y = b.cast(&format!("{leaf}/to_float"), &y, data_type::FLOAT);
        b.mul(&format!("{leaf}/matmul"), &y, &scale)
    }

    /// `x` quantized (once per activation; the first product names it).
    fn quantized_input(&mut self, leaf: &str, x: &Value) -> QuantizedInput {
        if let Some(q) = self.quantized.get(&x.0) {
            return q.clone();
        }
        let [values, scale, zero_point] = self
            .b
            .dynamic_quantize_linear(&format!("{leaf}/quantize_input"), x);
        let q = QuantizedInput {
            values,
            scale,
            zero_point,
        };
        self.quantized.insert(x.0.clone(), q.clone());
        q
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_are_quantized_per_output_channel_within_half_a_step() {
        // [2 groups, K 3, N 2]; group 1 column 0 all zero.
        let w = Tensor::new(
            &[2, 3, 2],
            vec![
                0.5, -2.0, -1.0, 1.0, 0.25, 0.1, 0.0, 3.0, 0.0, -6.0, 0.0, 0.01,
            ],
        );
        let q = quantize_weight(&w);
        assert_eq!(q.scale.dims, [2, 1, 2]);
        assert_eq!(q.scale.data, [1.0 / 63.0, 2.0 / 63.0, 1.0, 6.0 / 63.0]);
        assert!(q.values.iter().all(|v| (-63..=63).contains(v)));
        for (i, (&v, &x)) in q.values.iter().zip(&w.data).enumerate() {
            let s = q.scale.data[(i / 6) * 2 + i % 2];
            assert!(
                (v as f32 * s - x).abs() <= s / 2.0 + 1e-7,
                "{i}: {v} × {s} vs {x}"
            );
        }
        // The largest magnitude of a column maps to ±63 exactly.
        assert_eq!((q.values[2], q.values[1], q.values[9]), (-63, -63, -63));
        assert_eq!(q.values[6], 0);
    }
}
