//! The base encoder's convs (kernel 3, stride 1, padding 1) as Winograd's
//! minimal filtering F(m, 3) (Lavin and Gray, "Fast Algorithms for
//! Convolutional Neural Networks", 2016): m outputs of a tile of n = m + 2
//! inputs d are `Aᵀ [(G w) ⊙ (Bᵀ d)]`, so that with many channels the
//! conv becomes n matrix products per channel group of the transformed
//! tiles by the transformed weights U = G w: n/m multiply-adds per output
//! and input channel instead of 3 (F(2, 3): 2, F(4, 3): 1.5). Exact in real
//! arithmetic; in float32 F(2, 3) rounds about as the direct conv does and
//! F(4, 3) a few times more (docs/ARCHITECTURE.md).
use super::{Conv, Tensor};

/// Output steps per Winograd tile of the base encoder's convs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WinogradTile {
    /// F(2, 3): tiles of 4 steps.
    F2,
    /// F(4, 3): tiles of 6 steps.
    F4,
}

/// The three matrices of F(m, 3), row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct WinogradMatrices {
    /// Outputs per tile, m.
    pub outputs: usize,
    /// Steps per tile, n = m + 2.
    pub tile: usize,
    /// Bᵀ, `[n, n]`: the input transform.
    pub input: Vec<f64>,
    /// G, `[n, 3]`: the weight transform.
    pub weight: Vec<f64>,
    /// Aᵀ, `[m, n]`: the output transform.
    pub output: Vec<f64>,
}

impl WinogradTile {
    /// Outputs per tile, m.
    pub fn outputs(self) -> usize {
        match self {
            Self::F2 => 2,
            Self::F4 => 4,
        }
    }

    /// Bᵀ, G and Aᵀ (points 0, ±1 and ∞ for F(2, 3); 0, ±1, ±2 and ∞ for
    /// F(4, 3)).
    pub fn matrices(self) -> WinogradMatrices {
        let (input, weight, output): (&[f64], &[f64], &[f64]) = match self {
            Self::F2 => (
                &[
                    1., 0., -1., 0., //
                    0., 1., 1., 0., //
                    0., -1., 1., 0., //
                    0., 1., 0., -1.,
                ],
                &[
                    1., 0., 0., //
                    0.5, 0.5, 0.5, //
                    0.5, -0.5, 0.5, //
                    0., 0., 1.,
                ],
                &[
                    1., 1., 1., 0., //
                    0., 1., -1., -1.,
                ],
            ),
            Self::F4 => (
                &[
                    4., 0., -5., 0., 1., 0., //
                    0., -4., -4., 1., 1., 0., //
                    0., 4., -4., -1., 1., 0., //
                    0., -2., -1., 2., 1., 0., //
                    0., 2., -1., -2., 1., 0., //
                    0., 4., 0., -5., 0., 1.,
                ],
                &[
                    1. / 4.,
                    0.,
                    0., //
                    -1. / 6.,
                    -1. / 6.,
                    -1. / 6., //
                    -1. / 6.,
                    1. / 6.,
                    -1. / 6., //
                    1. / 24.,
                    1. / 12.,
                    1. / 6., //
                    1. / 24.,
                    -1. / 12.,
                    1. / 6., //
                    0.,
                    0.,
                    1.,
                ],
                &[
                    1., 1., 1., 1., 1., 0., //
                    0., 1., -1., 2., -2., 0., //
                    0., 1., 1., 4., 4., 0., //
                    0., 1., -1., 8., -8., 1.,
                ],
            ),
        };
        WinogradMatrices {
            outputs: self.outputs(),
            tile: self.outputs() + 2,
            input: input.to_vec(),
            weight: weight.to_vec(),
            output: output.to_vec(),
        }
    }
}

/// A kernel-3 conv (stride 1, padding 1) and its ReLU, folded for F(m, 3).
#[derive(Debug, Clone, PartialEq)]
pub struct WinogradConv {
    /// `[G, n, C_in/G, C_out/G]`: point ξ of group g is the matrix
    /// U[c, o] = Σ_k G[ξ, k] · w[g·C_out/G + o, c, k].
    pub weight: Tensor,
    /// `[C_out]`.
    pub bias: Tensor,
    /// Bᵀ, `[n, n]`.
    pub input_transform: Tensor,
    /// Aᵀ, `[m, n]`.
    pub output_transform: Tensor,
}

/// `conv` (a Conv2d of height 1: weight `[O, I/G, 1, 3]`) for F(m, 3).
pub fn winograd_conv(conv: &Conv, tile: WinogradTile) -> WinogradConv {
    let s = conv.spec;
    assert!(
        s.kernel == 3 && s.pad == 1 && s.stride == 1,
        "Winograd F(m, 3) needs kernel 3, padding 1, stride 1: {s:?}"
    );
    let mx = tile.matrices();
    let n = mx.tile;
    let [o, ci, _, k] = conv.weight.dims[..] else {
        panic!("conv weight {:?} is not [O, I/G, 1, K]", conv.weight.dims)
    };
    let (g, w) = (s.group, &conv.weight.data);
    let co = o / g;
    let mut u = Vec::with_capacity(g * n * ci * co);
    for gi in 0..g {
        for xi in 0..n {
            for c in 0..ci {
                for oi in 0..co {
                    let at = ((gi * co + oi) * ci + c) * k;
                    let v: f64 = (0..3)
                        .map(|kk| mx.weight[xi * 3 + kk] * w[at + kk] as f64)
                        .sum();
                    u.push(v as f32);
                }
            }
        }
    }
    let f32s = |v: &[f64]| v.iter().map(|&x| x as f32).collect();
    WinogradConv {
        weight: Tensor::new(&[g, n, ci, co], u),
        bias: conv.bias.clone(),
        input_transform: Tensor::new(&[n, n], f32s(&mx.input)),
        output_transform: Tensor::new(&[mx.outputs, n], f32s(&mx.output)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builder::Conv2dSpec;

    /// Aᵀ [(G w) ⊙ (Bᵀ d)] is the correlation y_i = Σ_k w_k d_{i+k}.
    #[test]
    fn the_matrices_compute_the_correlation() {
        for tile in [WinogradTile::F2, WinogradTile::F4] {
            let mx = tile.matrices();
            let (m, n) = (mx.outputs, mx.tile);
            let w = [0.3, -1.7, 0.45];
            let d: Vec<f64> = (0..n).map(|i| (i as f64 * 0.77).sin() + 0.1).collect();
            let gw: Vec<f64> = (0..n)
                .map(|x| (0..3).map(|k| mx.weight[x * 3 + k] * w[k]).sum())
                .collect();
            let bd: Vec<f64> = (0..n)
                .map(|x| (0..n).map(|j| mx.input[x * n + j] * d[j]).sum())
                .collect();
            for i in 0..m {
                let y: f64 = (0..n).map(|x| mx.output[i * n + x] * gw[x] * bd[x]).sum();
                let want: f64 = (0..3).map(|k| w[k] * d[i + k]).sum();
                assert!(
                    (y - want).abs() < 1e-12,
                    "{tile:?} output {i}: {y} vs {want}"
                );
            }
        }
    }

    #[test]
    fn weights_are_transformed_per_group_and_point() {
        // 2 groups, 2 outputs and 1 input channel per group.
        let data: Vec<f32> = (0..4 * 3).map(|i| i as f32 - 5.0).collect();
        let conv = Conv {
            weight: Tensor::new(&[4, 1, 1, 3], data.clone()),
            bias: Tensor::new(&[4], vec![0.5; 4]),
            spec: Conv2dSpec {
                kernel: 3,
                pad: 1,
                stride: 1,
                group: 2,
            },
        };
        let wc = winograd_conv(&conv, WinogradTile::F2);
        assert_eq!(wc.weight.dims, [2, 4, 1, 2]);
        assert_eq!(wc.output_transform.dims, [2, 4]);
        // Group 1, point 1 (G row ½, ½, ½), output 0 = conv output 2.
        let w2 = &data[2 * 3..3 * 3];
        let want = 0.5 * (w2[0] + w2[1] + w2[2]);
        assert_eq!(wc.weight.data[(4 + 1) * 2], want);
        // Point 3 (G row 0, 0, 1) of group 0, output 1 = w[1][2].
        assert_eq!(wc.weight.data[3 * 2 + 1], data[3 + 2]);
    }
}
