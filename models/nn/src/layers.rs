//! Small building blocks with the release's parameter layout and PyTorch's
//! default initialisation.
use tcanet_models::LAYER_NORM_EPSILON;
use tch::nn::{Init, Path};
use tch::Tensor;

/// Uniform bound PyTorch uses for Conv1d/Linear weights and biases
/// (`kaiming_uniform(a=√5)` = U(±1/√fan_in)).
fn torch_default_bound(fan_in: i64) -> f64 {
    1.0 / (fan_in as f64).sqrt()
}

/// A Conv1d whose variables are `weight` [out, in/groups, k] and `bias` [out]
/// under its path, initialised like `torch.nn.Conv1d`.
#[derive(Debug)]
pub(crate) struct Conv1d {
    pub(crate) weight: Tensor,
    pub(crate) bias: Tensor,
    stride: i64,
    padding: i64,
    groups: i64,
}

impl Conv1d {
    /// Conv1d(in → out, kernel `k`) with the given padding, stride and groups.
    pub(crate) fn new(
        p: &Path,
        cin: usize,
        cout: usize,
        k: usize,
        padding: usize,
        stride: usize,
        groups: usize,
    ) -> Self {
        let (cin, cout, k, g) = (cin as i64, cout as i64, k as i64, groups as i64);
        let bound = torch_default_bound(cin / g * k);
        let init = Init::Uniform {
            lo: -bound,
            up: bound,
        };
        Self {
            weight: p.var("weight", &[cout, cin / g, k], init),
            bias: p.var("bias", &[cout], init),
            stride: stride as i64,
            padding: padding as i64,
            groups: g,
        }
    }

    /// Applies the convolution to `x` [B, in, L].
    pub(crate) fn forward(&self, x: &Tensor) -> Tensor {
        x.conv1d(
            &self.weight,
            Some(&self.bias),
            [self.stride],
            [self.padding],
            [1],
            self.groups,
        )
    }
}

/// A Linear layer (`weight` [out, in], `bias` [out]) initialised like
/// `torch.nn.Linear`, or with zero bias when `zero_bias`.
#[derive(Debug)]
pub(crate) struct Linear {
    pub(crate) weight: Tensor,
    pub(crate) bias: Tensor,
}

impl Linear {
    /// Linear(in → out).
    pub(crate) fn new(p: &Path, cin: usize, cout: usize, zero_bias: bool) -> Self {
        let bound = torch_default_bound(cin as i64);
        let init = Init::Uniform {
            lo: -bound,
            up: bound,
        };
        let bias_init = if zero_bias { Init::Const(0.0) } else { init };
        Self {
            weight: p.var("weight", &[cout as i64, cin as i64], init),
            bias: p.var("bias", &[cout as i64], bias_init),
        }
    }

    /// `x W^T + b` on the last dimension.
    pub(crate) fn forward(&self, x: &Tensor) -> Tensor {
        x.linear(&self.weight, Some(&self.bias))
    }
}

/// LayerNorm over the last dimension (`weight` ones, `bias` zeros, ε
/// [`LAYER_NORM_EPSILON`]).
#[derive(Debug)]
pub(crate) struct LayerNorm {
    weight: Tensor,
    bias: Tensor,
    dim: i64,
}

impl LayerNorm {
    /// LayerNorm of width `dim`.
    pub(crate) fn new(p: &Path, dim: usize) -> Self {
        Self {
            weight: p.var("weight", &[dim as i64], Init::Const(1.0)),
            bias: p.var("bias", &[dim as i64], Init::Const(0.0)),
            dim: dim as i64,
        }
    }

    /// Normalises `x` over its last dimension.
    pub(crate) fn forward(&self, x: &Tensor) -> Tensor {
        x.layer_norm(
            [self.dim],
            Some(&self.weight),
            Some(&self.bias),
            LAYER_NORM_EPSILON,
            true,
        )
    }
}
