//! Parameter names and shapes: one contract for the trainer (tch variable
//! paths), the exporter (safetensors keys → ONNX initializers) and checkpoint
//! conversion. The names are the authors' release's state_dict keys without
//! the DataParallel `module.` prefix; its `mask_matrix` buffers are not
//! parameters (they follow from the config).
use crate::ModelConfig;

/// One named parameter tensor and its shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamSpec {
    /// The release's state_dict key, e.g. `lgtes.0.linear1.weight`.
    pub name: String,
    /// Its shape, e.g. `[256, 512]`.
    pub shape: Vec<usize>,
}

/// Number of TBR stages (cascaded refinements).
pub const NUM_STAGES: usize = 3;

/// The ε of every layer norm of the network (PyTorch's `nn.LayerNorm`
/// default, which the authors' release keeps).
pub const LAYER_NORM_EPSILON: f64 = 1e-5;

/// Path prefix of TBR stage `k` (1-based): `tbr1`, `tbr2`, `tbr3`.
pub fn tbr_prefix(k: usize) -> String {
    format!("tbr{k}")
}

/// Path prefix of LGTE layer `i` (0-based): `lgtes.0`, `lgtes.1`, ...
pub fn lgte_prefix(i: usize) -> String {
    format!("lgtes.{i}")
}

/// The number of parameters of `cfg`: the values of all [`param_specs`].
pub fn parameter_count(cfg: &ModelConfig) -> usize {
    param_specs(cfg)
        .iter()
        .map(|p| p.shape.iter().product::<usize>())
        .sum()
}

/// Every parameter of the network for `cfg`, in a fixed order.
pub fn param_specs(cfg: &ModelConfig) -> Vec<ParamSpec> {
    let (c, h, g) = (cfg.feat_dim, cfg.hidden_dim, cfg.conv_groups);
    let se = cfg.se_hidden_dim;
    let mut out = Vec::new();
    let mut push = |name: String, shape: &[usize]| {
        out.push(ParamSpec {
            name,
            shape: shape.to_vec(),
        })
    };
    let conv = |push: &mut dyn FnMut(String, &[usize]), p: String, o: usize, i: usize, k: usize| {
        push(format!("{p}.weight"), &[o, i, k]);
        push(format!("{p}.bias"), &[o]);
    };
    conv(&mut push, "x_1d_b_f.0".into(), h, c / g, 3);
    conv(&mut push, "x_1d_b_f.2".into(), h, h / g, 3);
    for i in 0..cfg.lgte_num {
        let p = lgte_prefix(i);
        push(
            format!("{p}.self_atten.scale_attention.in_proj_weight"),
            &[3 * h, h],
        );
        push(
            format!("{p}.self_atten.scale_attention.in_proj_bias"),
            &[3 * h],
        );
        push(
            format!("{p}.self_atten.scale_attention.out_proj.weight"),
            &[h, h],
        );
        push(
            format!("{p}.self_atten.scale_attention.out_proj.bias"),
            &[h],
        );
        push(format!("{p}.linear1.weight"), &[cfg.ffn_dim, h]);
        push(format!("{p}.linear1.bias"), &[cfg.ffn_dim]);
        push(format!("{p}.linear2.weight"), &[h, cfg.ffn_dim]);
        push(format!("{p}.linear2.bias"), &[h]);
        for norm in ["norm1", "norm2"] {
            push(format!("{p}.{norm}.weight"), &[h]);
            push(format!("{p}.{norm}.bias"), &[h]);
        }
    }
    for k in 1..=NUM_STAGES {
        let p = tbr_prefix(k);
        for side in ["start_reg_conv", "end_reg_conv"] {
            let s = format!("{p}.reg1se.{side}");
            conv(&mut push, format!("{s}.0"), se, h / g, 3);
            conv(&mut push, format!("{s}.2"), se, se / g, 3);
            conv(&mut push, format!("{s}.4"), 1, se, cfg.se_final_kernel());
        }
        let x = format!("{p}.reg1xw");
        conv(&mut push, format!("{x}.reg_1d_b.0"), h, h / g, 3);
        conv(&mut push, format!("{x}.reg_1d_b.2"), h, h / g, 3);
        conv(
            &mut push,
            format!("{x}.reg_1d_o.0"),
            h,
            h / g,
            cfg.xw_final_kernel(),
        );
        conv(&mut push, format!("{x}.reg_1d_o.2"), 3, h, 1);
    }
    out
}

/// Maps a key of the authors' release to ours: strips DataParallel's
/// `module.` prefix; `None` for keys that are not parameters (`mask_matrix`).
pub fn release_key(key: &str) -> Option<&str> {
    let key = key.strip_prefix("module.").unwrap_or(key);
    if key.ends_with("mask_matrix") {
        None
    } else {
        Some(key)
    }
}

/// The config fields (with their values in `cfg`) that decide the shape of
/// parameter `name`: what an error about a wrong shape should point at.
pub fn shape_fields(name: &str, cfg: &ModelConfig) -> String {
    let (h, g, se) = (cfg.hidden_dim, cfg.conv_groups, cfg.se_hidden_dim);
    if name.starts_with("x_1d_b_f.0.") {
        format!(
            "hidden_dim {h}, feat_dim {} / conv_groups {g}",
            cfg.feat_dim
        )
    } else if name.starts_with("x_1d_b_f.") || name.contains(".reg1xw.reg_1d_b.") {
        format!("hidden_dim {h}, conv_groups {g}")
    } else if name.contains(".reg1xw.reg_1d_o.0.") {
        format!(
            "hidden_dim {h}, conv_groups {g}, kernel {} from start/action/end_sample_num {}/{}/{}",
            cfg.xw_final_kernel(),
            cfg.start_sample_num,
            cfg.action_sample_num,
            cfg.end_sample_num
        )
    } else if name.contains(".reg1xw.") {
        format!("hidden_dim {h}")
    } else if name.contains(".reg1se.") && name.contains(".4.") {
        format!(
            "se_hidden_dim {se}, kernel {} from start_sample_num {}",
            cfg.se_final_kernel(),
            cfg.start_sample_num
        )
    } else if name.contains(".reg1se.") {
        format!("se_hidden_dim {se}, hidden_dim {h}, conv_groups {g}")
    } else if name.contains(".linear") {
        format!("hidden_dim {h}, ffn_dim {}", cfg.ffn_dim)
    } else if name.starts_with("lgtes.") {
        format!("hidden_dim {h}")
    } else {
        "the model config".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape_of<'a>(specs: &'a [ParamSpec], name: &str) -> &'a [usize] {
        &specs
            .iter()
            .find(|s| s.name == name)
            .unwrap_or_else(|| panic!("no {name}"))
            .shape
    }

    #[test]
    fn hacs_shapes_match_the_release_table() {
        let s = param_specs(&ModelConfig::hacs());
        assert_eq!(shape_of(&s, "x_1d_b_f.0.weight"), [512, 576, 3]);
        assert_eq!(shape_of(&s, "x_1d_b_f.2.weight"), [512, 128, 3]);
        assert_eq!(
            shape_of(&s, "lgtes.1.self_atten.scale_attention.in_proj_weight"),
            [1536, 512]
        );
        assert_eq!(shape_of(&s, "lgtes.0.linear2.weight"), [512, 256]);
        assert_eq!(
            shape_of(&s, "tbr3.reg1se.start_reg_conv.0.weight"),
            [128, 128, 3]
        );
        assert_eq!(
            shape_of(&s, "tbr1.reg1se.end_reg_conv.2.weight"),
            [128, 32, 3]
        );
        assert_eq!(
            shape_of(&s, "tbr2.reg1se.start_reg_conv.4.weight"),
            [1, 128, 8]
        );
        assert_eq!(
            shape_of(&s, "tbr1.reg1xw.reg_1d_o.0.weight"),
            [512, 128, 32]
        );
        assert_eq!(shape_of(&s, "tbr1.reg1xw.reg_1d_o.2.weight"), [3, 512, 1]);
        // 4 base + 12 per LGTE layer + 3 stages × (2 sides × 6 + 8).
        assert_eq!(s.len(), 4 + 2 * 12 + 3 * 20);
        let mut names: Vec<_> = s.iter().map(|p| &p.name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), s.len(), "names are unique");
    }

    #[test]
    fn release_keys_are_mapped() {
        assert_eq!(
            release_key("module.tbr1.reg1xw.reg_1d_b.0.bias"),
            Some("tbr1.reg1xw.reg_1d_b.0.bias")
        );
        assert_eq!(release_key("module.lgtes.0.self_atten.mask_matrix"), None);
    }

    #[test]
    fn shape_fields_name_what_decides_each_shape() {
        let c = ModelConfig::hacs();
        assert!(shape_fields("x_1d_b_f.0.weight", &c).contains("feat_dim 2304"));
        assert!(shape_fields("lgtes.1.linear2.weight", &c).contains("ffn_dim 256"));
        let k = shape_fields("tbr2.reg1se.end_reg_conv.4.weight", &c);
        assert!(
            k.contains("kernel 8") && k.contains("start_sample_num 32"),
            "{k}"
        );
        let k = shape_fields("tbr1.reg1xw.reg_1d_o.0.weight", &c);
        assert!(k.contains("kernel 32"), "{k}");
        // Every parameter gets a specific answer.
        for s in param_specs(&c) {
            assert_ne!(shape_fields(&s.name, &c), "the model config", "{}", s.name);
        }
    }
}
