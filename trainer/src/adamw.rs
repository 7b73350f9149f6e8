//! AdamW over tch tensors with PyTorch's math (`torch.optim.AdamW`,
//! single-tensor path), written out so that its moments can be saved and a
//! resumed run continues exactly. tch's built-in optimisers hide their state.
use tcanet_models::checkpoint::NamedTensor;
use tch::{Kind, Tensor};

/// AdamW hyper-parameters (PyTorch defaults except the learning rate).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamWConfig {
    /// Learning rate (updated per step by the schedule).
    pub lr: f64,
    /// β1, β2.
    pub betas: (f64, f64),
    /// ε added to the denominator.
    pub eps: f64,
    /// Decoupled weight decay λ: `p -= lr * λ * p` before the Adam update.
    pub weight_decay: f64,
}

impl Default for AdamWConfig {
    fn default() -> Self {
        Self {
            lr: 4e-4,
            betas: (0.9, 0.999),
            eps: 1e-8,
            weight_decay: 1e-5,
        }
    }
}

/// One parameter with its moments.
struct Slot {
    name: String,
    param: Tensor,
    exp_avg: Tensor,
    exp_avg_sq: Tensor,
}

/// The AdamW optimiser over named parameters.
pub struct AdamW {
    /// Hyper-parameters; `lr` may change between steps.
    pub config: AdamWConfig,
    /// Updates done so far (PyTorch's `state["step"]`, shared by all parameters).
    pub steps_done: u64,
    slots: Vec<Slot>,
}

/// A training-state tensor that does not fit the parameters.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StateError {
    /// The moment tensor of a parameter is absent.
    #[error("optimizer state: tensor `{name}` is missing")]
    Missing {
        /// The tensor's name (`exp_avg.<param>` or `exp_avg_sq.<param>`).
        name: String,
    },
    /// A moment tensor's shape differs from its parameter's.
    #[error(
        "optimizer state: tensor `{name}` has shape {}, the parameter has {}",
        shape_text(found),
        shape_text(expected)
    )]
    Shape {
        /// The tensor's name.
        name: String,
        /// Its shape in the file.
        found: Vec<usize>,
        /// The parameter's shape.
        expected: Vec<usize>,
    },
}

/// `[3, 4]`-style text of a shape.
pub fn shape_text(shape: &[usize]) -> String {
    let dims: Vec<String> = shape.iter().map(usize::to_string).collect();
    format!("[{}]", dims.join(", "))
}

impl AdamW {
    /// An optimiser over `params` (name, tensor requiring grad) with zero moments.
    pub fn new(params: Vec<(String, Tensor)>, config: AdamWConfig) -> Self {
        let slots = params
            .into_iter()
            .map(|(name, param)| Slot {
                exp_avg: param.zeros_like(),
                exp_avg_sq: param.zeros_like(),
                name,
                param,
            })
            .collect();
        Self {
            config,
            steps_done: 0,
            slots,
        }
    }

    /// Zeroes every parameter's gradient.
    pub fn zero_grad(&mut self) {
        for s in &mut self.slots {
            s.param.zero_grad();
        }
    }

    /// One update with the current `config.lr`, using the parameters' gradients
    /// (a parameter without a gradient is left alone, as PyTorch does):
    ///
    /// ```text
    /// p ← p·(1 − lr·λ);  m ← m + (1−β1)(g − m);  v ← β2·v + (1−β2)·g²
    /// p ← p − lr/(1−β1^t) · m / (√v / √(1−β2^t) + ε)
    /// ```
    pub fn step(&mut self) {
        self.steps_done += 1;
        let c = self.config;
        let t = self.steps_done as i32;
        let bias1 = 1.0 - c.betas.0.powi(t);
        let bias2_sqrt = (1.0 - c.betas.1.powi(t)).sqrt();
        let step_size = c.lr / bias1;
        tch::no_grad(|| {
            for s in &mut self.slots {
                let grad = s.param.grad();
                if !grad.defined() {
                    continue;
                }
                let _ = s.param.g_mul_scalar_(1.0 - c.lr * c.weight_decay);
                let _ = s.exp_avg.lerp_(&grad, 1.0 - c.betas.0);
                let _ = s.exp_avg_sq.g_mul_scalar_(c.betas.1);
                let _ = s.exp_avg_sq.g_add_(&(&grad * &grad * (1.0 - c.betas.1)));
                let denom = s
                    .exp_avg_sq
                    .sqrt()
                    .g_div_scalar(bias2_sqrt)
                    .g_add_scalar(c.eps);
                let _ = s.param.g_sub_(&(s.exp_avg.g_div(&denom) * step_size));
            }
        });
    }

    /// The name of the first parameter whose gradient holds NaN or ±inf
    /// (parameters without a gradient count as finite).
    pub fn first_non_finite_grad(&self) -> Option<&str> {
        self.first_non_finite(|s| {
            let g = s.param.grad();
            g.defined().then_some(g)
        })
    }

    /// The name of the first parameter holding NaN or ±inf.
    pub fn first_non_finite_param(&self) -> Option<&str> {
        self.first_non_finite(|s| Some(s.param.detach()))
    }

    /// One host transfer for all slots: whether each chosen tensor is finite.
    fn first_non_finite(&self, pick: impl Fn(&Slot) -> Option<Tensor>) -> Option<&str> {
        let flags: Vec<Tensor> = self
            .slots
            .iter()
            .map(|s| match pick(s) {
                Some(t) => t.isfinite().all(),
                None => Tensor::from(true).to_device(s.param.device()),
            })
            .collect();
        if flags.is_empty() {
            return None;
        }
        let all = Tensor::stack(&flags, 0)
            .to_device(tch::Device::Cpu)
            .to_kind(Kind::Uint8);
        let finite = Vec::<u8>::try_from(all).unwrap_or_default();
        finite
            .iter()
            .position(|&f| f == 0)
            .map(|i| self.slots[i].name.as_str())
    }

    /// The moments as host tensors keyed `exp_avg.<param>` / `exp_avg_sq.<param>`.
    pub fn state_tensors(&self) -> Vec<NamedTensor> {
        let mut out = Vec::with_capacity(2 * self.slots.len());
        for s in &self.slots {
            for (prefix, t) in [("exp_avg", &s.exp_avg), ("exp_avg_sq", &s.exp_avg_sq)] {
                out.push(to_host(&format!("{prefix}.{}", s.name), t));
            }
        }
        out
    }

    /// Restores the moments written by [`AdamW::state_tensors`] and the step count.
    pub fn load_state(
        &mut self,
        tensors: &std::collections::BTreeMap<String, (Vec<usize>, Vec<f32>)>,
        steps_done: u64,
    ) -> Result<(), StateError> {
        for s in &mut self.slots {
            for (prefix, t) in [
                ("exp_avg", &mut s.exp_avg),
                ("exp_avg_sq", &mut s.exp_avg_sq),
            ] {
                let key = format!("{prefix}.{}", s.name);
                let (shape, data) = tensors
                    .get(&key)
                    .ok_or_else(|| StateError::Missing { name: key.clone() })?;
                let want: Vec<usize> = t.size().iter().map(|&d| d as usize).collect();
                if *shape != want {
                    return Err(StateError::Shape {
                        name: key,
                        found: shape.clone(),
                        expected: want,
                    });
                }
                copy_into(t, data);
            }
        }
        self.steps_done = steps_done;
        Ok(())
    }
}

/// A tensor copied to host memory as f32.
pub fn to_host(name: &str, t: &Tensor) -> NamedTensor {
    let host = t
        .detach()
        .to_device(tch::Device::Cpu)
        .to_kind(Kind::Float)
        .contiguous();
    let shape: Vec<usize> = host.size().iter().map(|&d| d as usize).collect();
    let data = Vec::<f32>::try_from(host.flatten(0, -1)).expect("a float tensor converts");
    NamedTensor {
        name: name.to_string(),
        shape,
        data,
    }
}

/// Copies host values into `t` in place (any device and float kind).
pub fn copy_into(t: &mut Tensor, data: &[f32]) {
    let src = Tensor::from_slice(data)
        .view(t.size().as_slice())
        .to_kind(t.kind())
        .to_device(t.device());
    tch::no_grad(|| t.copy_(&src));
}

#[cfg(test)]
mod tests {
    use super::*;

    /// PyTorch's AdamW formula in plain f64.
    fn reference(p: &mut [f64], m: &mut [f64], v: &mut [f64], g: &[f64], t: i32, c: AdamWConfig) {
        for i in 0..p.len() {
            p[i] *= 1.0 - c.lr * c.weight_decay;
            m[i] = c.betas.0 * m[i] + (1.0 - c.betas.0) * g[i];
            v[i] = c.betas.1 * v[i] + (1.0 - c.betas.1) * g[i] * g[i];
            let mhat = m[i] / (1.0 - c.betas.0.powi(t));
            let denom = v[i].sqrt() / (1.0 - c.betas.1.powi(t)).sqrt() + c.eps;
            p[i] -= c.lr * mhat / denom;
        }
    }

    #[test]
    fn matches_the_pytorch_formula_in_f64() {
        let c = AdamWConfig {
            lr: 0.05,
            weight_decay: 0.1,
            ..AdamWConfig::default()
        };
        let init = [0.5f64, -1.25, 2.0, 0.0, 3.5];
        let p = Tensor::from_slice(&init).set_requires_grad(true);
        let mut opt = AdamW::new(vec![("w".into(), p.shallow_clone())], c);
        let (mut rp, mut rm, mut rv) = (init.to_vec(), vec![0.0; 5], vec![0.0; 5]);
        for step in 1..=6 {
            // Loss Σ coef·p²/2 + Σ lin·p: gradient coef·p + lin, varying per step.
            let coef: Vec<f64> = (0..5)
                .map(|i| 0.3 + 0.2 * ((i + step) % 3) as f64)
                .collect();
            let lin: Vec<f64> = (0..5)
                .map(|i| (i as f64 - 2.0) * 0.1 * step as f64)
                .collect();
            let g: Vec<f64> = (0..5).map(|i| coef[i] * rp[i] + lin[i]).collect();
            opt.zero_grad();
            let loss = (Tensor::from_slice(&coef) * &p * &p * 0.5 + Tensor::from_slice(&lin) * &p)
                .sum(Kind::Double);
            loss.backward();
            opt.step();
            reference(&mut rp, &mut rm, &mut rv, &g, step, c);
            let got = Vec::<f64>::try_from(&p.detach()).unwrap();
            for i in 0..5 {
                assert!(
                    (got[i] - rp[i]).abs() < 1e-12,
                    "step {step} [{i}]: {} vs {}",
                    got[i],
                    rp[i]
                );
            }
        }
        assert_eq!(opt.steps_done, 6);
        // Moments round trip through host tensors.
        let st = opt.state_tensors();
        assert_eq!(st[0].name, "exp_avg.w");
        assert_eq!(st[1].name, "exp_avg_sq.w");
        for i in 0..5 {
            assert!((st[0].data[i] as f64 - rm[i]).abs() <= 1e-6 * rm[i].abs().max(1e-3));
            assert!((st[1].data[i] as f64 - rv[i]).abs() <= 1e-6 * rv[i].abs().max(1e-6));
        }
    }
}
