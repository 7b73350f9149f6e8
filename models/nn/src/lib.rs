//! The TCANet network in tch (libtorch): base encoder, LGTE layers, three
//! cascaded TBR stages (each with its TTN sampling), decoding and losses,
//! exactly as docs/MODEL.md describes the authors' release.
//!
//! Variables are created under the given [`tch::nn::Path`] with exactly the
//! names and shapes of [`tcanet_models::param_specs`] (the release's state_dict keys),
//! so a safetensors file of those keys loads with `VarStore::load` /
//! `read_safetensors` as is, and what the trainer saves the exporter reads.
//!
//! # Converting a checkpoint of the authors' release
//!
//! The release saves a PyTorch state_dict through DataParallel. With Python
//! and torch (the project's `.venv` has both):
//!
//! ```python
//! import torch, safetensors.torch
//! ckpt = torch.load("TCA_best.pth.tar", map_location="cpu")
//! # TCA_best/TCA_checkpoint.pth.tar hold "state_dict" (DataParallel keys),
//! # epoch-N.pth.tar holds "model_state"; a bare state_dict works too.
//! sd = ckpt.get("state_dict") or ckpt.get("model_state") or ckpt
//! out = {}
//! for k, v in sd.items():
//!     k = k[len("module."):] if k.startswith("module.") else k   # strip DataParallel
//!     if k.endswith("mask_matrix"):                                # not a parameter
//!         continue
//!     out[k] = v.float().contiguous()
//! safetensors.torch.save_file(out, "tcanet_release.safetensors")
//! ```
//!
//! [`tcanet_models::release_key`] does the same renaming in Rust. The `mask_matrix`
//! buffers follow from the config ([`lgte_allowed_mask`] is their negation).
//!
//! # Precision and devices
//!
//! The model runs in the kind and on the device of its VarStore: f32 by
//! default, f64 after `vs.double()`. Features and proposals are converted to
//! the features' kind, which must be the VarStore's.
mod boxes;
mod layers;
mod lgte;
mod loss;
mod tbr;
mod ttn;

pub use boxes::{decode_proposals, encode_targets, segment_iou};
pub use lgte::{lgte_allowed_mask, Lgte};
pub use loss::{iou_loss_selection, regression_loss, tcanet_loss, LossTerms, StageLoss};
pub use tbr::{Tbr, TbrHeads};
pub use ttn::{ttn_positions, ttn_sample};

use layers::Conv1d;
use tcanet_models::params::{lgte_prefix, tbr_prefix, NUM_STAGES};
use tcanet_models::ModelConfig;
use tch::nn::Path;
use tch::Tensor;

/// Inputs that do not fit the network.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// A tensor has the wrong number of dimensions or a wrong size.
    #[error("{what} has shape {got:?}, expected {expected}")]
    Shape {
        /// Which input.
        what: &'static str,
        /// Its shape.
        got: Vec<i64>,
        /// The expected shape, in words.
        expected: String,
    },
    /// An input's dtype or device differs from the network's variables.
    #[error(
        "{what} are {got} but the network's variables are {expected} \
         (move or convert the input, or the VarStore with vs.double()/vs.float())"
    )]
    KindOrDevice {
        /// Which input.
        what: &'static str,
        /// The features' kind and device.
        got: String,
        /// The variables' kind and device.
        expected: String,
    },
}

/// The sub-path of `vs` for a `.`-separated prefix such as `lgtes.0`.
fn sub_path<'a>(vs: &Path<'a>, prefix: &str) -> Path<'a> {
    let mut parts = prefix.split('.');
    let first = vs / parts.next().unwrap_or_default();
    parts.fold(first, |p, part| p / part)
}

/// What one TBR stage computed.
#[derive(Debug)]
pub struct StageOutput {
    /// The stage's input proposals P_k [B, N, 2].
    pub input: Tensor,
    /// Raw start/end regression (ds, de) [B, N, 2].
    pub se: Tensor,
    /// Raw centre/width regression (dx, dw) [B, N, 2].
    pub xw: Tensor,
    /// IoU estimate of P_k, `sigmoid(t)` [B, N].
    pub iou: Tensor,
    /// Refined proposals P_{k+1} [B, N, 2].
    pub refined: Tensor,
}

/// The outputs of a forward pass: one [`StageOutput`] per TBR stage.
#[derive(Debug)]
pub struct Forward {
    /// Stages 1, 2, 3 in order.
    pub stages: Vec<StageOutput>,
}

impl Forward {
    /// The final proposals P_4 [B, N, 2] (output of the last stage).
    pub fn final_proposals(&self) -> &Tensor {
        &self.stages.last().expect("three stages").refined
    }

    /// The IoU estimate the release scores P_4 with: stage 3's [B, N].
    pub fn final_iou(&self) -> &Tensor {
        &self.stages.last().expect("three stages").iou
    }
}

/// The whole network: base encoder (`x_1d_b_f`), LGTE layers (`lgtes.i`) and
/// the TBR stages (`tbr1..3`).
#[derive(Debug)]
pub struct TcaNet {
    base0: Conv1d,
    base2: Conv1d,
    lgtes: Vec<Lgte>,
    tbrs: Vec<Tbr>,
    cfg: ModelConfig,
}

impl TcaNet {
    /// Creates the variables under `vs`, named exactly as
    /// [`tcanet_models::param_specs`]`(cfg)`, initialised like the release's PyTorch
    /// modules (Conv1d/Linear defaults, xavier in-projection, zero attention
    /// biases, unit LayerNorms).
    pub fn new(vs: &Path, cfg: &ModelConfig) -> Self {
        let (c, h, g) = (cfg.feat_dim, cfg.hidden_dim, cfg.conv_groups);
        let base = vs / "x_1d_b_f";
        Self {
            base0: Conv1d::new(&(&base / 0), c, h, 3, 1, 1, g),
            base2: Conv1d::new(&(&base / 2), h, h, 3, 1, 1, g),
            lgtes: (0..cfg.lgte_num)
                .map(|i| Lgte::new(&sub_path(vs, &lgte_prefix(i)), cfg))
                .collect(),
            tbrs: (1..=NUM_STAGES)
                .map(|k| Tbr::new(&sub_path(vs, &tbr_prefix(k)), cfg))
                .collect(),
            cfg: cfg.clone(),
        }
    }

    /// The configuration the network was built with.
    pub fn config(&self) -> &ModelConfig {
        &self.cfg
    }

    /// The LGTE layers, first to last.
    pub fn lgtes(&self) -> &[Lgte] {
        &self.lgtes
    }

    /// Checks `features` [B, C, T] (C = feat_dim, T = temporal_scale, the
    /// variables' kind and device) and `proposals` [B, N, 2] before a
    /// forward pass, which panics with the same message otherwise.
    pub fn check_inputs(&self, features: &Tensor, proposals: &Tensor) -> Result<(), InputError> {
        let (c, t) = (self.cfg.feat_dim as i64, self.cfg.temporal_scale as i64);
        let fs = features.size();
        if fs.len() != 3 || fs[1] != c || fs[2] != t {
            return Err(InputError::Shape {
                what: "features",
                got: fs,
                expected: format!(
                    "[B, {c}, {t}] (feat_dim, temporal_scale; pad the features at the end with zeros)"
                ),
            });
        }
        let ps = proposals.size();
        if ps.len() != 3 || ps[0] != fs[0] || ps[2] != 2 {
            return Err(InputError::Shape {
                what: "proposals",
                got: ps,
                expected: format!("[{}, N, 2] (start, end per proposal)", fs[0]),
            });
        }
        let w = &self.base0.weight;
        let expected = || format!("{:?} on {:?}", w.kind(), w.device());
        if features.kind() != w.kind() || features.device() != w.device() {
            return Err(InputError::KindOrDevice {
                what: "features",
                got: format!("{:?} on {:?}", features.kind(), features.device()),
                expected: expected(),
            });
        }
        if !proposals.is_floating_point() || proposals.device() != w.device() {
            return Err(InputError::KindOrDevice {
                what: "proposals",
                got: format!("{:?} on {:?}", proposals.kind(), proposals.device()),
                expected: expected(),
            });
        }
        Ok(())
    }

    /// Base encoder output [B, H, T] of `features` [B, C, T].
    pub fn base_encode(&self, features: &Tensor) -> Tensor {
        self.base2
            .forward(&self.base0.forward(features).relu())
            .relu()
    }

    /// Encoded features [B, H, T]: base encoder then every LGTE layer.
    pub fn encode(&self, features: &Tensor, train: bool) -> Tensor {
        let mut x = self.base_encode(features);
        for layer in &self.lgtes {
            x = layer.forward(&x, train);
        }
        x
    }

    /// The three TBR stages on encoded features [B, H, T] for proposals
    /// [B, N, 2]; `se_scale` is the start/end decode scale g.
    pub fn refine(&self, encoded: &Tensor, proposals: &Tensor, se_scale: f64) -> Forward {
        let mut p = proposals.to_kind(encoded.kind());
        let mut stages = Vec::with_capacity(self.tbrs.len());
        for tbr in &self.tbrs {
            let heads = tbr.heads(encoded, &p);
            let refined = decode_proposals(&p, &heads.se, &heads.xw, se_scale);
            stages.push(StageOutput {
                input: p,
                se: heads.se,
                xw: heads.xw,
                iou: heads.iou_logit.sigmoid(),
                refined: refined.shallow_clone(),
            });
            p = refined;
        }
        Forward { stages }
    }

    /// The full network. `features` [B, C, T] (C = feat_dim, T =
    /// temporal_scale, in the VarStore's kind), `proposals` [B, N, 2] in
    /// seconds, or fractions of the video when `cfg.normalize_by_duration`.
    /// `train`: dropout on and decode scale `cfg.se_decode_scale_train`;
    /// otherwise no dropout and `cfg.se_decode_scale_infer`.
    ///
    /// Other combinations go through [`TcaNet::encode`] and
    /// [`TcaNet::refine`]: the release's validation loss, for instance, runs
    /// without dropout but with the training decode scale,
    /// `net.refine(&net.encode(f, false), p, cfg.se_decode_scale_train)`.
    ///
    /// Panics with [`TcaNet::check_inputs`]'s message on inputs that do not fit.
    pub fn forward(&self, features: &Tensor, proposals: &Tensor, train: bool) -> Forward {
        if let Err(e) = self.check_inputs(features, proposals) {
            panic!("TcaNet::forward: {e}");
        }
        let encoded = self.encode(features, train);
        let g = if train {
            self.cfg.se_decode_scale_train
        } else {
            self.cfg.se_decode_scale_infer
        };
        self.refine(&encoded, proposals, g)
    }
}
