//! Tests of finding the state dict, inferring the preset and checking a
//! state dict against a config, on tensors built in memory.
use std::sync::Arc;

use super::convert::{convert, ConfigChoice, Problem};
use super::release::{find_state_dict, Layout, ReleaseCheckpoint};
use super::*;
use crate::{param_specs, ModelConfig};

fn contiguous(shape: &[usize]) -> Vec<usize> {
    let mut stride = vec![1; shape.len()];
    for d in (0..shape.len().saturating_sub(1)).rev() {
        stride[d] = stride[d + 1] * shape[d + 1];
    }
    stride
}

/// A float32 tensor holding `values` (cycled to fill the shape).
fn tensor(shape: &[usize], values: &[f32]) -> Tensor {
    let n: usize = shape.iter().product();
    let bytes = values
        .iter()
        .cycle()
        .take(n)
        .flat_map(|v| v.to_le_bytes())
        .collect();
    let storage = Arc::new(Storage {
        key: "0".into(),
        dtype: DType::F32,
        bytes,
    });
    Tensor::new(storage, 0, n, 0, shape.to_vec(), contiguous(shape)).unwrap()
}

/// A tensor of any size repeating one value (zero strides), cheap for HACS shapes.
fn constant(shape: &[usize], v: f32) -> Tensor {
    let storage = Arc::new(Storage {
        key: "c".into(),
        dtype: DType::F32,
        bytes: v.to_le_bytes().to_vec(),
    });
    Tensor::new(storage, 0, 1, 0, shape.to_vec(), vec![0; shape.len()]).unwrap()
}

/// The release's mask: 1.0 where a query may not attend, local heads first.
fn release_mask(heads: usize, t: usize, w: usize) -> Tensor {
    let mut m = vec![1.0f32; heads * t * t];
    for h in 0..heads {
        for j in 0..t {
            for k in 0..w {
                let i = (j as i64 - (w / 2) as i64 + k as i64).clamp(0, t as i64 - 1) as usize;
                if h < heads / 2 {
                    m[(h * t + j) * t + i] = 0.0;
                }
            }
            if h >= heads / 2 {
                m[(h * t + j) * t..(h * t + j + 1) * t].fill(0.0);
            }
        }
    }
    tensor(&[1, heads, t, t], &m)
}

/// A release state dict for `cfg`: `module.` keys, masks included.
fn release_entries(cfg: &ModelConfig, expand: bool) -> Vec<(String, Tensor)> {
    let mut out: Vec<(String, Tensor)> = param_specs(cfg)
        .into_iter()
        .enumerate()
        .map(|(i, s)| {
            let t = if expand {
                constant(&s.shape, 0.01)
            } else {
                tensor(&s.shape, &[i as f32 * 0.1, -0.5, 0.25])
            };
            (format!("module.{}", s.name), t)
        })
        .collect();
    for i in 0..cfg.lgte_num {
        let t = cfg.temporal_scale;
        let mask = if expand {
            constant(&[1, cfg.heads, t, t], 0.0)
        } else {
            release_mask(cfg.heads, t, cfg.window_size)
        };
        out.push((format!("module.lgtes.{i}.self_atten.mask_matrix"), mask));
    }
    out
}

fn ckpt(entries: Vec<(String, Tensor)>) -> ReleaseCheckpoint {
    ReleaseCheckpoint {
        layout: Layout::StateDict,
        epoch: Some(4),
        entries,
    }
}

fn dict(entries: Vec<(&str, Value)>) -> Value {
    Value::Dict(
        entries
            .into_iter()
            .map(|(k, v)| (Value::Str(k.into()), v))
            .collect(),
    )
}

#[test]
fn each_release_layout_is_found() {
    let t = || Value::Tensor(tensor(&[2], &[1.0]));
    let sd = dict(vec![("module.a", t())]);
    let f = find_state_dict(&dict(vec![
        ("epoch", Value::Int(7)),
        ("state_dict", sd.clone()),
    ]))
    .unwrap();
    assert_eq!(
        (f.layout, f.epoch, f.entries[0].0.as_str()),
        (Layout::StateDict, Some(7), "module.a")
    );
    let opt = dict(vec![
        ("state", dict(vec![])),
        ("param_groups", Value::List(vec![])),
    ]);
    let f = find_state_dict(&dict(vec![
        ("epoch", Value::Int(5)),
        ("model_state", sd.clone()),
        ("optimizer_dict", opt),
    ]))
    .unwrap();
    assert_eq!((f.layout, f.epoch), (Layout::ModelState, Some(5)));
    let f = find_state_dict(&sd).unwrap();
    assert_eq!((f.layout, f.epoch), (Layout::Bare, None));

    let err = |v: Value| find_state_dict(&v).unwrap_err().to_string();
    assert!(err(Value::List(vec![])).contains("a list, not a dict"));
    assert!(err(dict(vec![
        ("epoch", Value::Int(-1)),
        ("state_dict", sd.clone())
    ]))
    .contains("'epoch' is -1"));
    assert!(err(dict(vec![("model", sd.clone()), ("x", Value::Int(1))]))
        .contains("keys ['model', 'x']"));
    let bad = dict(vec![("state_dict", dict(vec![("w", Value::Float(1.0))]))]);
    assert!(err(bad).contains("`w` is a float, not a tensor"));
}

#[test]
fn the_preset_is_recognised_from_the_shapes() {
    let tiny = ModelConfig::tiny();
    let done = convert(&ckpt(release_entries(&tiny, false)), &ConfigChoice::Infer).unwrap();
    assert_eq!(
        (done.preset, &done.config, done.epoch),
        (Some("tiny"), &tiny, 4)
    );
    assert_eq!(done.dropped.len(), tiny.lgte_num);
    assert_eq!(done.params.len(), param_specs(&tiny).len());
    assert_eq!(done.params[0].name, "x_1d_b_f.0.weight");
    assert_eq!(done.params[1].data[..3], [0.1, -0.5, 0.25]);
    // The full-size presets, with repeated values (and all-global masks, so
    // the window cannot be read from them).
    for name in ["hacs", "anet"] {
        let cfg = ModelConfig::preset(name).unwrap();
        let c = ckpt(release_entries(&cfg, true));
        let ev = super::infer::evidence(
            &c.entries
                .iter()
                .filter_map(|(k, t)| {
                    Some((crate::release_key(k)?.to_string(), (k.clone(), t.clone())))
                })
                .collect(),
            &c.entries
                .iter()
                .filter(|(k, _)| k.ends_with("mask_matrix"))
                .cloned()
                .collect::<Vec<_>>(),
        );
        assert_eq!(super::infer::pick_preset(&ev).unwrap().0, name);
        assert!(ev
            .iter()
            .any(|e| e.field == "temporal_scale" && e.value == cfg.temporal_scale));
    }
}

#[test]
fn weights_no_preset_fits_list_what_they_show() {
    let cfg = ModelConfig {
        feat_dim: 48,
        ..ModelConfig::tiny()
    };
    let err = convert(&ckpt(release_entries(&cfg, false)), &ConfigChoice::Infer).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, Problem::NoPreset { .. }), "{text}");
    assert!(
        text.contains("feat_dim 48 (from x_1d_b_f.0.weight)")
            && text.contains("tiny has feat_dim 32"),
        "{text}"
    );
    // With the config given it converts.
    let done = convert(
        &ckpt(release_entries(&cfg, false)),
        &ConfigChoice::Given(cfg.clone()),
    )
    .unwrap();
    assert_eq!((done.preset, done.config), (None, cfg));
}

#[test]
fn masks_are_checked_for_heads_steps_and_window() {
    let tiny = ModelConfig::tiny();
    let entries = release_entries(&tiny, false);
    let window7 = ModelConfig {
        window_size: 7,
        ..tiny.clone()
    };
    let err = convert(&ckpt(entries.clone()), &ConfigChoice::Given(window7))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("allows 9 keys per query") && err.contains("window_size 7"),
        "{err}"
    );
    // A window as long as T shows no width: any window_size >= T agrees.
    let wide = ModelConfig {
        window_size: 64,
        ..tiny.clone()
    };
    let mut wide_entries = release_entries(&wide, false);
    assert!(convert(&ckpt(wide_entries.clone()), &ConfigChoice::Given(wide)).is_ok());
    let err = convert(
        &ckpt(wide_entries.clone()),
        &ConfigChoice::Given(tiny.clone()),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("all 64 keys") && err.contains("window_size 9"),
        "{err}"
    );
    // A global head that blocks keys.
    let last = wide_entries.len() - 1;
    wide_entries[last].1 = tensor(&[1, 4, 64, 64], &[1.0]);
    let err = convert(
        &ckpt(wide_entries),
        &ConfigChoice::Given(ModelConfig {
            window_size: 64,
            ..tiny.clone()
        }),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("head 2 blocks keys"), "{err}");
    let err = convert(
        &ckpt(entries),
        &ConfigChoice::Given(ModelConfig { heads: 8, ..tiny }),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("shape [1, 4, 64, 64]") && err.contains("(heads)"),
        "{err}"
    );
}

#[test]
fn state_dicts_that_are_not_the_configs_parameters_are_refused() {
    let tiny = ModelConfig::tiny();
    let given = ConfigChoice::Given(tiny.clone());
    let err =
        |entries: Vec<(String, Tensor)>| convert(&ckpt(entries), &given).unwrap_err().to_string();
    let base = release_entries(&tiny, false);

    let mut dup = base.clone();
    dup.push(("x_1d_b_f.0.bias".into(), tensor(&[64], &[0.0])));
    assert!(err(dup).contains("`x_1d_b_f.0.bias` appears twice"));
    let mut missing = base.clone();
    missing.retain(|(k, _)| k != "module.tbr3.reg1xw.reg_1d_o.2.bias");
    assert!(err(missing).contains("missing tensor `tbr3.reg1xw.reg_1d_o.2.bias` (shape [3])"));
    let mut extra = base.clone();
    extra.push(("module.lgtes.0.extra".into(), tensor(&[1], &[0.0])));
    assert!(err(extra).contains("unexpected tensor `module.lgtes.0.extra`"));
    let mut nan = base.clone();
    nan[3].1 = tensor(&[64], &[0.0, f32::NAN]);
    assert!(err(nan).contains("`module.x_1d_b_f.2.bias` holds a non-finite value at flat index 1"));
    let mut ints = base.clone();
    let storage = Arc::new(Storage {
        key: "i".into(),
        dtype: DType::I64,
        bytes: vec![0; 64 * 8],
    });
    ints[1].1 = Tensor::new(storage, 0, 64, 0, vec![64], vec![1]).unwrap();
    assert!(err(ints).contains("element type int64"));
    let foreign = vec![("encoder.weight".to_string(), tensor(&[2], &[0.0]))];
    assert!(err(foreign).contains("not a TCANet state dict"));
    let mm = vec![(
        "tbr1.reg1se.0.weight".to_string(),
        tensor(&[256, 128, 3], &[0.0]),
    )];
    assert!(err(mm).contains("MMAction2"));
}
