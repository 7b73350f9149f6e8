//! LGTE: the local–global temporal encoder layer (a post-norm transformer
//! encoder layer whose first half of heads attend only within a window).
use super::layers::{LayerNorm, Linear};
use tcanet_models::ModelConfig;
use tch::nn::{Init, Path};
use tch::{Device, Kind, Tensor};

/// The attention mask of an LGTE layer: bool [heads, t, t], `true` where query
/// `j` (dim 1) may attend to key `i` (dim 2). Heads `0..local_heads` allow
/// exactly `tcanet_models::window::local_window_keys(j, t, w)` (the table of
/// [`tcanet_models::window::window_table`]), the rest allow every key. This
/// is the negation of the release's `mask_matrix` (which marks disallowed
/// positions) without its leading batch dimension.
pub fn lgte_allowed_mask(
    t: usize,
    window: usize,
    heads: usize,
    local_heads: usize,
    device: Device,
) -> Tensor {
    let (ti, wi) = (t as i64, window as i64);
    let table = tcanet_models::window::window_table(t, window);
    let idx = Tensor::from_slice(&table.index)
        .view([ti, wi])
        .to_device(device);
    let local = Tensor::zeros([ti, ti], (Kind::Bool, device)).scatter_value(1, &idx, 1);
    let global = Tensor::ones([ti, ti], (Kind::Bool, device));
    let mut per_head = Vec::with_capacity(heads);
    for h in 0..heads {
        per_head.push(if h < local_heads {
            local.shallow_clone()
        } else {
            global.shallow_clone()
        });
    }
    Tensor::stack(&per_head, 0)
}

/// One LGTE layer with variables named `self_atten.scale_attention.*`,
/// `linear1`, `linear2`, `norm1`, `norm2` under its path.
#[derive(Debug)]
pub struct Lgte {
    in_proj_weight: Tensor,
    in_proj_bias: Tensor,
    out_proj: Linear,
    linear1: Linear,
    linear2: Linear,
    norm1: LayerNorm,
    norm2: LayerNorm,
    /// [heads, T, T] bool, true = disallowed (the release's `mask_matrix`).
    blocked: Tensor,
    heads: i64,
    hidden: i64,
    dropout: f64,
}

impl Lgte {
    /// Builds the layer for `cfg` (its mask for `cfg.temporal_scale` steps).
    pub fn new(p: &Path, cfg: &ModelConfig) -> Self {
        let h = cfg.hidden_dim;
        let att = p / "self_atten" / "scale_attention";
        // torch.nn.MultiheadAttention: xavier_uniform in-projection, zero biases.
        let bound = (6.0 / (h + 3 * h) as f64).sqrt();
        let in_proj_weight = att.var(
            "in_proj_weight",
            &[3 * h as i64, h as i64],
            Init::Uniform {
                lo: -bound,
                up: bound,
            },
        );
        let in_proj_bias = att.var("in_proj_bias", &[3 * h as i64], Init::Const(0.0));
        Self {
            in_proj_weight,
            in_proj_bias,
            out_proj: Linear::new(&(&att / "out_proj"), h, h, true),
            linear1: Linear::new(&(p / "linear1"), h, cfg.ffn_dim, false),
            linear2: Linear::new(&(p / "linear2"), cfg.ffn_dim, h, false),
            norm1: LayerNorm::new(&(p / "norm1"), h),
            norm2: LayerNorm::new(&(p / "norm2"), h),
            blocked: lgte_allowed_mask(
                cfg.temporal_scale,
                cfg.window_size,
                cfg.heads,
                cfg.local_heads(),
                p.device(),
            )
            .logical_not(),
            heads: cfg.heads as i64,
            hidden: h as i64,
            dropout: cfg.dropout,
        }
    }

    /// Attention probabilities [B, heads, T, T] (query dim 2, key dim 3) of
    /// `x` [B, H, T], after the softmax and (in training) its dropout.
    pub fn attention_probs(&self, x: &Tensor, train: bool) -> Tensor {
        self.attention(&x.transpose(1, 2), train).1
    }

    /// Multi-head self-attention of `src` [B, T, H]: (output [B, T, H], probs).
    fn attention(&self, src: &Tensor, train: bool) -> (Tensor, Tensor) {
        let (b, t, _) = src.size3().expect("LGTE input is [B, T, H]");
        let (nh, hd) = (self.heads, self.hidden / self.heads);
        assert_eq!(
            self.blocked.size()[1],
            t,
            "LGTE: the features have {t} steps but the model was built for {} \
             (features must be zero-padded to temporal_scale)",
            self.blocked.size()[1]
        );
        let qkv = src.linear(&self.in_proj_weight, Some(&self.in_proj_bias));
        let parts = qkv.chunk(3, -1);
        let heads = |x: &Tensor| x.reshape([b, t, nh, hd]).permute([0, 2, 1, 3]);
        let q = heads(&(&parts[0] * (hd as f64).powf(-0.5)));
        let k = heads(&parts[1]);
        let v = heads(&parts[2]);
        let scores = q
            .matmul(&k.transpose(-2, -1))
            .masked_fill(&self.blocked.to_device(src.device()), f64::NEG_INFINITY);
        let probs = scores
            .softmax(-1, None::<Kind>)
            .dropout(self.dropout, train);
        let out = probs
            .matmul(&v)
            .permute([0, 2, 1, 3])
            .reshape([b, t, self.hidden]);
        (self.out_proj.forward(&out), probs)
    }

    /// The layer on `x` [B, H, T] → [B, H, T]; dropout only when `train`.
    pub fn forward(&self, x: &Tensor, train: bool) -> Tensor {
        let src = x.transpose(1, 2);
        let (att, _) = self.attention(&src, train);
        let src = self
            .norm1
            .forward(&(src + att.dropout(self.dropout, train)));
        let ffn = self.linear2.forward(
            &self
                .linear1
                .forward(&src)
                .relu()
                .dropout(self.dropout, train),
        );
        let src = self
            .norm2
            .forward(&(&src + ffn.dropout(self.dropout, train)));
        src.transpose(1, 2)
    }
}
