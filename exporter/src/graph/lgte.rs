//! LGTE layers on `[B, T, H]`: post-norm transformer layers whose first
//! `heads/2` heads attend over a local window of w keys and the others over
//! the whole sequence.
//!
//! Heads are laid out `[3·2, B, heads/2, T, hd]` (q/k/v × local/global).
//! Global heads: full attention, no mask. Local heads: only their w window
//! keys are gathered, so the scores are `[T, w]` instead of `[T, T]`, with
//! −inf on clamped repeats (each allowed key counts once, as the release's
//! boolean mask).
use super::fold::{self, LayerNorm, Lgte};
use super::Net;
use crate::builder::Value;

/// The keys of the local heads: for query j the w positions
/// clamp(j − w/2 + m, 0, T−1) (`index`, int64 `[T, w]`) and the additive
/// mask (`[T, w]`), shared by every layer.
pub(super) struct LocalWindow {
    pub(super) index: Value,
    pub(super) mask: Value,
}

/// A layer's q, k and v, each split into its local and global heads
/// (`[1, 1, B, heads/2, T, hd]` each).
struct Heads {
    q: [Value; 2],
    k: [Value; 2],
    v: [Value; 2],
}

impl Net<'_> {
    /// The window as constants (fixed T) or built in the graph (symbolic T).
    pub(super) fn local_window(&mut self, table: Option<&fold::LocalWindow>) -> LocalWindow {
        match table {
            Some(w) => LocalWindow {
                index: self.b.const_i64("local_window_index", &w.dims, &w.index),
                mask: self.b.weight("local_window_mask", &w.dims, &w.mask),
            },
            None => {
                let t = self.time.as_ref().expect("symbolic T").steps_i64.clone();
                self.dynamic_window(&t)
            }
        }
    }

    /// One post-norm LGTE layer: attention, residual + norm1, FFN, residual + norm2.
    pub(super) fn lgte(&mut self, x: &Value, w: &Lgte, window: &LocalWindow) -> Value {
        let attn = self.scoped("attention", |n| n.attention(x, w, window));
        let x1 = self.b.add("residual1", x, &attn);
        let x1 = self.layer_norm("norm1", &x1, &w.norm1);
        let ffn = self.scoped("ffn", |n| {
            let y = n.linear("linear1", &x1, &w.linear1);
            let y = n.b.relu("relu", &y);
            n.linear("linear2", &y, &w.linear2)
        });
        let x2 = self.b.add("residual2", &x1, &ffn);
        self.layer_norm("norm2", &x2, &w.norm2)
    }

    fn layer_norm(&mut self, leaf: &str, x: &Value, p: &LayerNorm) -> Value {
        let scale = self.weight(&format!("{leaf}.weight"), &p.scale);
        let bias = self.weight(&format!("{leaf}.bias"), &p.bias);
        self.b.layer_norm(leaf, x, &scale, &bias, 1e-5)
    }

    /// Multi-head self-attention with local and global heads, `[B, T, H]`.
    fn attention(&mut self, x: &Value, w: &Lgte, window: &LocalWindow) -> Value {
        let heads = self.split_heads(x, w);
        let global = self.scoped("global", |n| n.global_heads(&heads));
        let local = self.scoped("local", |n| n.local_heads(&heads, window));
        let h = self.cfg.hidden_dim as i64;
        let b = &mut self.b;
        let ctx = b.concat("local_global", &[&local, &global], 1);
        // [1, 2, B, heads/2, T, hd] → [B, T, 1, 2, heads/2, hd] → [B, T, H]
        let ctx = b.transpose("time_first", &ctx, &[2, 4, 0, 1, 3, 5]);
        let ctx = b.reshape("merge_heads", &ctx, &[0, 0, h]);
        self.linear("out_proj", &ctx, &w.out_proj)
    }

    /// The packed in-projection, split into q/k/v × local/global heads.
    fn split_heads(&mut self, x: &Value, w: &Lgte) -> Heads {
        let cfg = self.cfg;
        let (half, hd) = ((cfg.heads / 2) as i64, cfg.head_dim() as i64);
        let qkv = self.linear("in_proj", x, &w.in_proj);
        let b = &mut self.b;
        let qkv = b.reshape("split_heads", &qkv, &[0, 0, 3, 2, half, hd]);
        // [3·2, B, heads/2, T, hd]: (q, k, v) × (local, global).
        let qkv = b.transpose("heads_first", &qkv, &[2, 3, 0, 4, 1, 5]);
        let qkv = b.split("q_k_v", &qkv, &[1, 1, 1], 0);
        let parts: Vec<[Value; 2]> = qkv
            .iter()
            .zip(["q", "k", "v"])
            .map(|(t, name)| {
                let lg = b.split(&format!("{name}_local_global"), t, &[1, 1], 1);
                [lg[0].clone(), lg[1].clone()]
            })
            .collect();
        let [q, k, v]: [[Value; 2]; 3] = parts.try_into().expect("q, k and v");
        Heads { q, k, v }
    }

    /// Full attention of the global heads: softmax(q kᵀ) v.
    fn global_heads(&mut self, h: &Heads) -> Value {
        let b = &mut self.b;
        let kt = b.transpose("k_transposed", &h.k[1], &[0, 1, 2, 3, 5, 4]);
        let scores = b.matmul("scores", &h.q[1], &kt);
        let probs = b.softmax("softmax", &scores, -1);
        b.matmul("context", &probs, &h.v[1])
    }

    /// The local heads over their gathered window keys
    /// (`[1, 1, B, heads/2, T, w, hd]`).
    fn local_heads(&mut self, h: &Heads, window: &LocalWindow) -> Value {
        let b = &mut self.b;
        let kw = b.gather("window_keys", &h.k[0], &window.index, 4);
        let vw = b.gather("window_values", &h.v[0], &window.index, 4);
        let q = b.unsqueeze("query_row", &h.q[0], &[5]);
        let qk = b.mul("query_key", &q, &kw);
        let scores = b.reduce_sum("scores", &qk, &[-1], false);
        let scores = b.add("masked_scores", &scores, &window.mask);
        let probs = b.softmax("softmax", &scores, -1);
        let probs = b.unsqueeze("probs_row", &probs, &[5]);
        let ctx = b.matmul("context", &probs, &vw);
        b.squeeze("context_rows", &ctx, &[5])
    }
}
