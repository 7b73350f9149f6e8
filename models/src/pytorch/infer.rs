//! What the weights say about the model config: the fields their shapes
//! decide (and the `mask_matrix` buffers: heads, T and the window), the
//! preset they match, and the check of the masks against a config.
use std::collections::BTreeMap;

use super::convert::Problem;
use super::Tensor;
use crate::ModelConfig;

/// One config field as a tensor's shape (or a mask's contents) shows it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Evidence {
    pub field: &'static str,
    pub value: usize,
    /// The tensor it comes from.
    pub source: String,
}

/// The value of an inferable field in `cfg`.
fn field_value(cfg: &ModelConfig, field: &str) -> usize {
    match field {
        "feat_dim" => cfg.feat_dim,
        "hidden_dim" => cfg.hidden_dim,
        "conv_groups" => cfg.conv_groups,
        "lgte_num" => cfg.lgte_num,
        "ffn_dim" => cfg.ffn_dim,
        "se_hidden_dim" => cfg.se_hidden_dim,
        "heads" => cfg.heads,
        "temporal_scale" => cfg.temporal_scale,
        "window_size" => cfg.window_size,
        _ => 0,
    }
}

/// Reads the fields the parameters (named as ours) and the masks decide.
pub(crate) fn evidence(
    params: &BTreeMap<String, (String, Tensor)>,
    masks: &[(String, Tensor)],
) -> Vec<Evidence> {
    let shape = |name: &str| params.get(name).map(|(_, t)| t.shape().to_vec());
    let mut ev = Vec::new();
    let mut add = |field, value, source: &str| {
        ev.push(Evidence {
            field,
            value,
            source: source.to_string(),
        })
    };
    if let Some([h, cg, _]) = shape("x_1d_b_f.0.weight").as_deref() {
        add("hidden_dim", *h, "x_1d_b_f.0.weight");
        if let Some([_, hg, _]) = shape("x_1d_b_f.2.weight").as_deref() {
            if *hg > 0 && h % hg == 0 {
                add("conv_groups", h / hg, "x_1d_b_f.2.weight");
                add("feat_dim", cg * (h / hg), "x_1d_b_f.0.weight");
            }
        }
    }
    let layers = params
        .keys()
        .filter_map(|k| {
            k.strip_prefix("lgtes.")?
                .split('.')
                .next()?
                .parse::<usize>()
                .ok()
        })
        .max();
    if let Some(last) = layers {
        add("lgte_num", last + 1, "lgtes.*");
    }
    if let Some([f, _]) = shape("lgtes.0.linear1.weight").as_deref() {
        add("ffn_dim", *f, "lgtes.0.linear1.weight");
    }
    if let Some([s, _, _]) = shape("tbr1.reg1se.start_reg_conv.0.weight").as_deref() {
        add("se_hidden_dim", *s, "tbr1.reg1se.start_reg_conv.0.weight");
    }
    if let Some((key, t)) = masks.first() {
        if let [1, heads, t1, t2] = t.shape() {
            if t1 == t2 {
                add("heads", *heads, key);
                add("temporal_scale", *t1, key);
                if let Some(w) = mask_window(t) {
                    add("window_size", w, key);
                }
            }
        }
    }
    ev
}

/// The preset every piece of evidence agrees with.
pub(crate) fn pick_preset(ev: &[Evidence]) -> Result<(&'static str, ModelConfig), Problem> {
    let mut misses = Vec::new();
    for name in ModelConfig::PRESETS {
        let cfg = ModelConfig::preset(name).map_err(Problem::Config)?;
        match ev.iter().find(|e| field_value(&cfg, e.field) != e.value) {
            None => return Ok((name, cfg)),
            Some(e) => misses.push(format!(
                "{name} has {} {}",
                e.field,
                field_value(&cfg, e.field)
            )),
        }
    }
    let inferred: Vec<String> = ev
        .iter()
        .map(|e| format!("{} {} (from {})", e.field, e.value, e.source))
        .collect();
    Err(Problem::NoPreset {
        inferred: inferred.join(", "),
        presets: misses.join("; "),
    })
}

/// The local window the first head of a mask allows: the most keys a query
/// may attend to. `None` when nothing is blocked (the window covers all of T).
fn mask_window(mask: &Tensor) -> Option<usize> {
    let [1, _, t, _] = mask.shape() else {
        return None;
    };
    let t = *t;
    let head0 = mask.to_f32();
    let rows = head0.get(..t * t)?;
    let most = rows
        .chunks_exact(t)
        .map(|r| r.iter().filter(|&&v| v == 0.0).count())
        .max()?;
    (most < t).then_some(most)
}

/// Checks the release's `mask_matrix` buffers against `cfg`: one per LGTE
/// layer, `[1, heads, T, T]`, the first `heads / 2` heads local with the
/// config's window, the others global.
pub(crate) fn check_masks(cfg: &ModelConfig, masks: &[(String, Tensor)]) -> Result<(), Problem> {
    for (key, t) in masks {
        let layer = mask_layer(key);
        if layer.is_none_or(|i| i >= cfg.lgte_num) {
            return Err(Problem::Unexpected {
                name: key.clone(),
                lgte_num: cfg.lgte_num,
            });
        }
        let expected = vec![1, cfg.heads, cfg.temporal_scale, cfg.temporal_scale];
        let s = t.shape();
        if s != expected.as_slice() {
            let field = match s {
                [1, h, a, b] if a == b && *h != cfg.heads => "heads",
                [1, _, a, b] if a == b => "temporal_scale",
                _ => "heads and temporal_scale",
            };
            return Err(Problem::Mask {
                key: key.clone(),
                detail: format!("has shape {s:?}, the config needs {expected:?} ({field})"),
            });
        }
        check_mask_heads(cfg, key, t)?;
    }
    Ok(())
}

/// The local/global split and the window of one mask of the right shape:
/// the local heads block keys and are all alike, the global ones block none,
/// and the widest row of a local head is the config's window (or all of T
/// when the window is at least T).
fn check_mask_heads(cfg: &ModelConfig, key: &str, t: &Tensor) -> Result<(), Problem> {
    let n = cfg.temporal_scale * cfg.temporal_scale;
    let values = t.to_f32();
    let heads: Vec<&[f32]> = values.chunks_exact(n.max(1)).collect();
    let bad = |detail: String| Problem::Mask {
        key: key.to_string(),
        detail,
    };
    for (h, head) in heads.iter().enumerate() {
        if h >= cfg.local_heads() && head.iter().any(|&v| v != 0.0) {
            return Err(bad(format!(
                "head {h} blocks keys, but with heads {} only the first {} are local (heads)",
                cfg.heads,
                cfg.local_heads()
            )));
        }
        if h > 0 && h < cfg.local_heads() && head != &heads[0] {
            return Err(bad(format!("local head {h} differs from head 0")));
        }
    }
    match mask_window(t) {
        Some(w) if w != cfg.window_size => Err(bad(format!(
            "allows {w} keys per query, the config has window_size {}",
            cfg.window_size
        ))),
        None if cfg.window_size < cfg.temporal_scale => Err(bad(format!(
            "lets some queries see all {} keys (a window of at least T), the config has window_size {}",
            cfg.temporal_scale, cfg.window_size
        ))),
        _ => Ok(()),
    }
}

/// The LGTE layer of a release mask key `[module.]lgtes.{i}.self_atten.mask_matrix`.
fn mask_layer(key: &str) -> Option<usize> {
    let key = key.strip_prefix("module.").unwrap_or(key);
    key.strip_prefix("lgtes.")?
        .strip_suffix(".self_atten.mask_matrix")?
        .parse()
        .ok()
}
