//! LGTE layers on `[B, T, H]`: post-norm transformer layers whose first
//! `heads/2` heads attend over a local window of w keys and the others over
//! the whole sequence.
//!
//! q, k and v are projected head-major, `[B, heads/2, T, hd]` per head group
//! (local, global), by batched matmuls of `[B, 1, T, H]` with `[heads/2, H,
//! hd]` weights: no split or transpose of a packed projection. Global heads:
//! full attention, no mask. Local heads: only their w window keys are
//! read, so the scores are `[T, w]` instead of `[T, T]`, with −inf on
//! clamped repeats (each allowed key counts once, as the release's boolean
//! mask), in one call of the model-local function [`LOCAL_ATTENTION`]. The
//! key and value biases are folded away (see `fold::Attention`).
use super::fold::{self, Attention, HeadProjection, LayerNorm, Lgte};
use super::Net;
use crate::builder::{FunctionId, GraphBuilder, Value};
use tcanet_models::onnx::{FUNCTION_DOMAIN, LOCAL_ATTENTION};
use tcanet_models::LAYER_NORM_EPSILON;

/// The keys of the local heads: for query j the w positions
/// clamp(j − w/2 + m, 0, T−1) (`index`, int64 `[T, w]`) and the additive
/// mask (`[T, w]`), shared by every layer.
pub(super) struct LocalWindow {
    pub(super) index: Value,
    pub(super) mask: Value,
}

/// One head group's queries, keys and values, `[B, heads/2, T, hd]` each.
struct Heads {
    q: Value,
    k: Value,
    v: Value,
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
        let attn = self.scoped("attention", |n| n.attention(x, &w.attention, window));
        // `Sum`, not `Add`: see `GraphBuilder::sum`.
        let x1 = self.b.sum("residual1", &[x, &attn]);
        let x1 = self.layer_norm("norm1", &x1, &w.norm1);
        let ffn = self.scoped("ffn", |n| {
            let y = n.large_linear("linear1", &x1, &w.linear1);
            let y = n.b.relu("relu", &y);
            n.large_linear("linear2", &y, &w.linear2)
        });
        let x2 = self.b.sum("residual2", &[&x1, &ffn]);
        self.layer_norm("norm2", &x2, &w.norm2)
    }

    fn layer_norm(&mut self, leaf: &str, x: &Value, p: &LayerNorm) -> Value {
        let scale = self.weight(&format!("{leaf}.weight"), &p.scale);
        let bias = self.weight(&format!("{leaf}.bias"), &p.bias);
        self.b
            .layer_norm(leaf, x, &scale, &bias, LAYER_NORM_EPSILON as f32)
    }

    /// Multi-head self-attention with local and global heads, `[B, T, H]`.
    fn attention(&mut self, x: &Value, w: &Attention, window: &LocalWindow) -> Value {
        let x4 = self.b.unsqueeze("heads_axis", x, &[1]);
        let local = self.scoped("local", |n| {
            let heads = n.project_heads(&x4, w, 0);
            n.local_heads(&heads, window)
        });
        let global = self.scoped("global", |n| {
            let heads = n.project_heads(&x4, w, 1);
            n.global_heads(&heads)
        });
        let h = self.cfg.hidden_dim as i64;
        let b = &mut self.b;
        // [B, heads, T, hd] → [B, T, heads, hd] → [B, T, H]
        let ctx = b.concat("local_global", &[&local, &global], 1);
        let ctx = b.transpose("time_first", &ctx, &[0, 2, 1, 3]);
        let ctx = b.reshape("merge_heads", &ctx, &[0, 0, h]);
        self.large_linear("out_proj", &ctx, &w.out_proj)
    }

    /// q, k and v of head group `group` (0 local, 1 global) from `x4`
    /// `[B, 1, T, H]`.
    fn project_heads(&mut self, x4: &Value, w: &Attention, group: usize) -> Heads {
        Heads {
            q: self.head_projection("query", x4, &w.query[group]),
            k: self.head_projection("key", x4, &w.key[group]),
            v: self.head_projection("value", x4, &w.value[group]),
        }
    }

    /// `x4 @ weight (+ bias)`: `[B, heads', T, hd]`.
    fn head_projection(&mut self, leaf: &str, x4: &Value, p: &HeadProjection) -> Value {
        let y = self.weight_matmul(leaf, x4, &p.weight, "weight");
        match &p.bias {
            Some(bias) => {
                let bias = self.weight(&format!("{leaf}.bias"), bias);
                self.b.add(&format!("{leaf}/bias"), &y, &bias)
            }
            None => y,
        }
    }

    /// Full attention of the global heads: softmax(q kᵀ) v.
    fn global_heads(&mut self, h: &Heads) -> Value {
        let b = &mut self.b;
        let kt = b.transpose("k_transposed", &h.k, &[0, 1, 3, 2]);
        let scores = b.matmul("scores", &h.q, &kt);
        let probs = b.softmax("softmax", &scores, -1);
        b.matmul("context", &probs, &h.v)
    }

    /// The local heads over their w window keys, `[B, heads/2, T, hd]`,
    /// as one call of the model-local function [`LOCAL_ATTENTION`], which
    /// the project's runtime runs with its own CPU kernel and any other
    /// runtime as [`local_attention_body`].
    fn local_heads(&mut self, h: &Heads, window: &LocalWindow) -> Value {
        let id = FunctionId {
            domain: FUNCTION_DOMAIN,
            name: LOCAL_ATTENTION,
            overload: String::new(),
        };
        let inputs = [
            ("query", &h.q),
            ("key", &h.k),
            ("value", &h.v),
            ("window_index", &window.index),
            ("window_mask", &window.mask),
        ];
        self.b
            .call_function(&id, "local_attention", &inputs, |b, formal| {
                let [q, k, v, index, mask] = formal else {
                    unreachable!("five formal inputs")
                };
                local_attention_body(b, q, k, v, index, mask)
            })
    }
}

/// The standard-op body of [`LOCAL_ATTENTION`]: the window's keys and
/// values gathered (`[B, heads/2, T, w, hd]`), the scores as a product and
/// a sum over hd, the mask added, softmax, and the values weighted by a
/// batched `MatMul` `[.., 1, w] @ [.., w, hd]`.
fn local_attention_body(
    b: &mut GraphBuilder,
    q: &Value,
    k: &Value,
    v: &Value,
    index: &Value,
    mask: &Value,
) -> Value {
    let kw = b.gather("window_keys", k, index, 2);
    let vw = b.gather("window_values", v, index, 2);
    let q = b.unsqueeze("query_row", q, &[3]);
    let qk = b.mul("query_key", &q, &kw);
    let scores = b.reduce_sum("scores", &qk, &[-1], false);
    let scores = b.add("masked_scores", &scores, mask);
    let probs = b.softmax("softmax", &scores, -1);
    let probs = b.unsqueeze("probs_row", &probs, &[3]);
    let ctx = b.matmul("context", &probs, &vw);
    b.squeeze("context_rows", &ctx, &[3])
}
