//! Model configuration (every number of docs/MODEL.md's configuration table) and
//! its named presets.
use serde::{Deserialize, Serialize};

use tcanet_cli::range::shown;

use crate::calibration::MAX_DECODE_SCALE;

/// An invalid configuration or an unknown preset.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The preset name is not one of [`ModelConfig::PRESETS`].
    #[error("unknown preset '{0}': choose one of hacs, anet, tiny")]
    UnknownPreset(String),
    /// A field has a value the network cannot be built with.
    #[error("invalid model config: {field}: {reason}")]
    Invalid {
        /// The offending field.
        field: &'static str,
        /// Why it is invalid.
        reason: String,
    },
    /// The config file could not be parsed.
    #[error("invalid model config JSON: {0}")]
    Json(#[from] serde_json::Error),
}

/// Every hyper-parameter of the TCANet network, its sampling and decoding.
///
/// Defaults are the HACS setting of docs/MODEL.md ([`ModelConfig::hacs`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModelConfig {
    /// Input feature channels C.
    pub feat_dim: usize,
    /// T: feature steps; features are zero-padded at the end to this length.
    pub temporal_scale: usize,
    /// Seconds between two feature steps (8/15 for HACS), in
    /// [[`MIN_TEMPORAL_INTERVAL`], [`MAX_TEMPORAL_INTERVAL`]]. The padded
    /// timeline spans `D = temporal_scale * temporal_interval` seconds.
    pub temporal_interval: f64,
    /// ActivityNet style: each video's features are rescaled to exactly T
    /// steps, so the interval differs per video. The data pipeline (trainer and
    /// runtime) then divides proposal times by the video duration before the
    /// network and multiplies them back after, and `temporal_interval` must be
    /// `1 / temporal_scale` (the timeline spans one video, D = 1).
    pub normalize_by_duration: bool,
    /// Hidden channels H.
    pub hidden_dim: usize,
    /// Groups of every grouped Conv1d (4 in the release).
    pub conv_groups: usize,
    /// Number of LGTE layers.
    pub lgte_num: usize,
    /// Local attention window w.
    pub window_size: usize,
    /// Attention heads; the first `heads / 2` are local, the rest global.
    pub heads: usize,
    /// LGTE feed-forward width.
    pub ffn_dim: usize,
    /// LGTE dropout (attention weights, residual branches, FFN), training only.
    pub dropout: f64,
    /// Samples in the start region.
    pub start_sample_num: usize,
    /// Samples in the end region.
    pub end_sample_num: usize,
    /// Samples inside the proposal.
    pub action_sample_num: usize,
    /// Boundary regions are this fraction of the proposal length, in
    /// (0, [`MAX_PROP_BOUNDARY_RATIO`]].
    pub prop_boundary_ratio: f64,
    /// Channels of the start/end regression branch (128 in the release).
    pub se_hidden_dim: usize,
    /// IoU thresholds of the three TBR stages, used by the losses.
    pub iou_thresholds: [f64; 3],
    /// Start/end decode scale g in training (1.0 in the release).
    pub se_decode_scale_train: f64,
    /// Start/end decode scale g at inference (0.2 in the release).
    pub se_decode_scale_infer: f64,
}

impl Default for ModelConfig {
    fn default() -> Self {
        Self::hacs()
    }
}

impl ModelConfig {
    /// Names accepted by [`ModelConfig::preset`].
    pub const PRESETS: [&'static str; 3] = ["hacs", "anet", "tiny"];

    /// The HACS setting: docs/MODEL.md's defaults (C=2304, T=1000, 8/15 s steps).
    pub fn hacs() -> Self {
        Self {
            feat_dim: 2304,
            temporal_scale: 1000,
            temporal_interval: 8.0 / 15.0,
            normalize_by_duration: false,
            hidden_dim: 512,
            conv_groups: 4,
            lgte_num: 2,
            window_size: 9,
            heads: 8,
            ffn_dim: 256,
            dropout: 0.1,
            start_sample_num: 32,
            end_sample_num: 32,
            action_sample_num: 64,
            prop_boundary_ratio: 0.5,
            se_hidden_dim: 128,
            iou_thresholds: [0.5, 0.6, 0.7],
            se_decode_scale_train: 1.0,
            se_decode_scale_infer: 0.2,
        }
    }

    /// ActivityNet-style setting: features rescaled to 100 steps (C=400).
    ///
    /// The per-video interval is handled by `normalize_by_duration`: proposal
    /// times are divided by the video duration, and the timeline spans D = 1.
    pub fn anet() -> Self {
        Self {
            feat_dim: 400,
            temporal_scale: 100,
            temporal_interval: 0.01,
            normalize_by_duration: true,
            ..Self::hacs()
        }
    }

    /// A small network for CPU tests and the demo (C=32, T=64, H=64), with
    /// ActivityNet-style per-video rescaling like [`ModelConfig::anet`].
    pub fn tiny() -> Self {
        Self {
            feat_dim: 32,
            temporal_scale: 64,
            temporal_interval: 1.0 / 64.0,
            normalize_by_duration: true,
            hidden_dim: 64,
            heads: 4,
            ffn_dim: 64,
            start_sample_num: 16,
            end_sample_num: 16,
            action_sample_num: 32,
            se_hidden_dim: 32,
            ..Self::hacs()
        }
    }

    /// The preset called `name` (`hacs`, `anet` or `tiny`).
    pub fn preset(name: &str) -> Result<Self, ConfigError> {
        match name {
            "hacs" => Ok(Self::hacs()),
            "anet" => Ok(Self::anet()),
            "tiny" => Ok(Self::tiny()),
            other => Err(ConfigError::UnknownPreset(other.to_string())),
        }
    }

    /// Parses and validates a config from JSON; absent fields take the HACS defaults.
    pub fn from_json(text: &str) -> Result<Self, ConfigError> {
        let value: serde_json::Value = serde_json::from_str(text)?;
        if !value.is_object() {
            return Err(ConfigError::Invalid {
                field: "config",
                reason: format!(
                    "a config is a JSON object of fields, not {}",
                    json_kind(&value)
                ),
            });
        }
        let cfg: Self = serde_json::from_value(value)?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// The config as pretty JSON (what checkpoints and ONNX metadata carry).
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("config serialises")
    }

    /// Length in seconds of the padded timeline, `D = T * temporal_interval`.
    pub fn timeline_seconds(&self) -> f64 {
        self.temporal_scale as f64 * self.temporal_interval
    }

    /// Local heads (the first half); the rest attend globally.
    pub fn local_heads(&self) -> usize {
        self.heads / 2
    }

    /// Width of one attention head, `H / heads`.
    pub fn head_dim(&self) -> usize {
        self.hidden_dim / self.heads
    }

    /// Samples in the concatenation start‖action‖end fed to the XW branch.
    pub fn total_sample_num(&self) -> usize {
        self.start_sample_num + self.action_sample_num + self.end_sample_num
    }

    /// Kernel of the last SE conv: the boundary region after two stride-2 convs.
    pub fn se_final_kernel(&self) -> usize {
        stride2_len(stride2_len(self.start_sample_num))
    }

    /// Kernel of the XW `reg_1d_o.0` conv: all samples after two stride-2 convs.
    pub fn xw_final_kernel(&self) -> usize {
        stride2_len(stride2_len(self.total_sample_num()))
    }

    /// Checks that the network can be built with these numbers.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.validate_widths()?;
        self.validate_timeline()?;
        self.validate_layers()?;
        self.validate_decoding()?;
        self.validate_size()
    }

    /// Sizes a machine can hold: each width, count and T within its limit
    /// (so that the shapes' products cannot overflow), and at most
    /// [`MAX_PARAMETERS`] parameters in all (TCANet has about 11 million).
    fn validate_size(&self) -> Result<(), ConfigError> {
        let limits = [
            ("feat_dim", self.feat_dim, 1 << 16),
            ("hidden_dim", self.hidden_dim, 1 << 16),
            ("se_hidden_dim", self.se_hidden_dim, 1 << 16),
            ("ffn_dim", self.ffn_dim, 1 << 18),
            ("temporal_scale", self.temporal_scale, 1 << 22),
            ("lgte_num", self.lgte_num, 64),
            ("window_size", self.window_size, 1 << 16),
            ("start_sample_num", self.start_sample_num, 1 << 16),
            ("action_sample_num", self.action_sample_num, 1 << 16),
        ];
        for (field, value, max) in limits {
            if value > max {
                return invalid(field, format!("{value} is more than the limit, {max}"));
            }
        }
        let total = crate::parameter_count(self);
        if total > MAX_PARAMETERS {
            return invalid(
                "hidden_dim",
                format!(
                    "the config makes {total} parameters, more than the limit of {MAX_PARAMETERS}"
                ),
            );
        }
        Ok(())
    }

    /// The losses' IoU thresholds, in (0, 1), and the start/end decode
    /// scales, in (0, [`MAX_DECODE_SCALE`]] (a scale far outside moves
    /// proposals off the timeline and the sampling positions with them).
    fn validate_decoding(&self) -> Result<(), ConfigError> {
        if let Some(t) = self
            .iou_thresholds
            .iter()
            .find(|t| !(**t > 0.0 && **t < 1.0))
        {
            return invalid("iou_thresholds", format!("{} must be in (0, 1)", shown(*t)));
        }
        let scales = [
            ("se_decode_scale_train", self.se_decode_scale_train),
            ("se_decode_scale_infer", self.se_decode_scale_infer),
        ];
        for (field, g) in scales {
            if !(g > 0.0 && g <= MAX_DECODE_SCALE) {
                return invalid(
                    field,
                    format!("{} must be in (0, {MAX_DECODE_SCALE}]", shown(g)),
                );
            }
        }
        Ok(())
    }

    /// Channel widths and heads: conv groups divide the widths, heads are
    /// even and divide `hidden_dim`.
    fn validate_widths(&self) -> Result<(), ConfigError> {
        let g = self.conv_groups;
        if g == 0 {
            return invalid("conv_groups", "must be positive".into());
        }
        let widths = [
            ("feat_dim", self.feat_dim),
            ("hidden_dim", self.hidden_dim),
            ("se_hidden_dim", self.se_hidden_dim),
        ];
        for (field, width) in widths {
            if width == 0 || !width.is_multiple_of(g) {
                let reason = format!("{width} must be a positive multiple of conv_groups ({g})");
                return invalid(field, reason);
            }
        }
        if self.heads < 2
            || !self.heads.is_multiple_of(2)
            || !self.hidden_dim.is_multiple_of(self.heads)
        {
            return invalid(
                "heads",
                format!(
                    "{} must be even, at least 2, and divide hidden_dim ({})",
                    self.heads, self.hidden_dim
                ),
            );
        }
        Ok(())
    }

    /// The timeline: steps, and seconds per step: 1/T with
    /// `normalize_by_duration` (a unit timeline), else in
    /// [[`MIN_TEMPORAL_INTERVAL`], [`MAX_TEMPORAL_INTERVAL`]], so that D and
    /// 1/D are finite, non-zero float32 numbers with room to spare.
    fn validate_timeline(&self) -> Result<(), ConfigError> {
        if self.temporal_scale == 0 {
            return invalid("temporal_scale", "must be positive".into());
        }
        let interval = self.temporal_interval;
        if !self.normalize_by_duration {
            let range = [MIN_TEMPORAL_INTERVAL, MAX_TEMPORAL_INTERVAL];
            return in_range(
                "temporal_interval",
                interval,
                range,
                "seconds per feature step",
            );
        }
        let off = (self.timeline_seconds() - 1.0).abs();
        if !(off.is_finite() && off <= 1e-9) {
            return invalid(
                "temporal_interval",
                format!(
                    "{} must be 1/temporal_scale = {} with normalize_by_duration",
                    shown(interval),
                    1.0 / self.temporal_scale as f64
                ),
            );
        }
        Ok(())
    }

    /// The encoder's layers and the refinement stages' sampling.
    fn validate_layers(&self) -> Result<(), ConfigError> {
        if self.window_size == 0 {
            return invalid("window_size", "must be positive".into());
        }
        if self.lgte_num == 0 || self.ffn_dim == 0 {
            return invalid("lgte_num", "lgte_num and ffn_dim must be positive".into());
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return invalid(
                "dropout",
                format!("{} must be in [0, 1)", shown(self.dropout)),
            );
        }
        if self.start_sample_num != self.end_sample_num || self.start_sample_num < 4 {
            return invalid(
                "start_sample_num",
                "start and end sample counts must be equal and at least 4".into(),
            );
        }
        if self.action_sample_num == 0 {
            return invalid("action_sample_num", "must be positive".into());
        }
        let r = self.prop_boundary_ratio;
        if !(r > 0.0 && r <= MAX_PROP_BOUNDARY_RATIO) {
            return invalid(
                "prop_boundary_ratio",
                format!(
                    "{} must be in (0, {MAX_PROP_BOUNDARY_RATIO}] (each boundary region is this \
                     many proposal widths)",
                    shown(r)
                ),
            );
        }
        Ok(())
    }
}

/// The shortest `temporal_interval` without `normalize_by_duration`, in
/// seconds (10 million feature steps a second).
pub const MIN_TEMPORAL_INTERVAL: f64 = 1e-7;

/// The longest `temporal_interval` without `normalize_by_duration`, in
/// seconds (a day per feature step).
pub const MAX_TEMPORAL_INTERVAL: f64 = 86_400.0;

/// The largest `prop_boundary_ratio` (the release uses 0.5).
pub const MAX_PROP_BOUNDARY_RATIO: f64 = 10.0;

/// The most parameters a config may make (4 GiB of float32 weights).
pub const MAX_PARAMETERS: usize = 1 << 30;

/// What kind of JSON value `v` is, for messages ("a list", "a number").
pub fn json_kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "a list",
        serde_json::Value::Object(_) => "an object",
    }
}

/// `Ok` if `value` is in `[lo, hi]` (so finite), else an error naming
/// `field`, the value, the range and its `unit`.
fn in_range(
    field: &'static str,
    value: f64,
    [lo, hi]: [f64; 2],
    unit: &str,
) -> Result<(), ConfigError> {
    if value >= lo && value <= hi {
        return Ok(());
    }
    invalid(
        field,
        format!(
            "{} must be in [{}, {}] {unit}",
            shown(value),
            shown(lo),
            shown(hi)
        ),
    )
}

/// A [`ConfigError::Invalid`] for `field`.
fn invalid(field: &'static str, reason: String) -> Result<(), ConfigError> {
    Err(ConfigError::Invalid { field, reason })
}

/// Output length of Conv1d(k=3, pad=1, stride=2) on `n` steps.
fn stride2_len(n: usize) -> usize {
    (n + 2 - 3) / 2 + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_validate_and_round_trip() {
        for name in ModelConfig::PRESETS {
            let cfg = ModelConfig::preset(name).unwrap();
            cfg.validate().unwrap();
            assert_eq!(ModelConfig::from_json(&cfg.to_json()).unwrap(), cfg);
        }
        assert!(ModelConfig::preset("bmn").is_err());
    }

    #[test]
    fn a_config_is_an_object_of_sizes_a_machine_can_hold() {
        for text in ["[]", "3", "null", "\"hacs\""] {
            let e = ModelConfig::from_json(text).unwrap_err().to_string();
            assert!(e.contains("a config is a JSON object"), "{text}: {e}");
        }
        let huge = ModelConfig {
            temporal_scale: 4_000_000,
            temporal_interval: 2.5e-7,
            ..ModelConfig::hacs()
        };
        huge.validate().unwrap();
        let too_long = ModelConfig {
            temporal_scale: (1 << 22) + 1,
            temporal_interval: 1.0 / ((1 << 22) + 1) as f64,
            ..ModelConfig::hacs()
        };
        let e = too_long.validate().unwrap_err().to_string();
        assert!(e.contains("temporal_scale") && e.contains("limit"), "{e}");
        let wide = ModelConfig {
            hidden_dim: 1 << 14,
            ffn_dim: 1 << 14,
            ..ModelConfig::hacs()
        };
        let e = wide.validate().unwrap_err().to_string();
        assert!(e.contains("parameters, more than the limit"), "{e}");
    }

    #[test]
    fn decode_scales_and_iou_thresholds_are_range_checked() {
        let field_of = |cfg: &ModelConfig| match cfg.validate() {
            Err(ConfigError::Invalid { field, .. }) => field,
            other => panic!("{other:?}"),
        };
        for g in [0.0, -1.0, 2.000001, 1e39, f64::NAN, f64::INFINITY] {
            let cfg = ModelConfig {
                se_decode_scale_infer: g,
                ..ModelConfig::tiny()
            };
            assert_eq!(field_of(&cfg), "se_decode_scale_infer", "{g}");
            let cfg = ModelConfig {
                se_decode_scale_train: g,
                ..ModelConfig::tiny()
            };
            assert_eq!(field_of(&cfg), "se_decode_scale_train", "{g}");
        }
        for t in [0.0, 1.0, 1.5, -0.1, f64::NAN] {
            let cfg = ModelConfig {
                iou_thresholds: [0.5, t, 0.7],
                ..ModelConfig::tiny()
            };
            assert_eq!(field_of(&cfg), "iou_thresholds", "{t}");
        }
        let edge = ModelConfig {
            se_decode_scale_infer: MAX_DECODE_SCALE,
            iou_thresholds: [0.01, 0.5, 0.99],
            ..ModelConfig::tiny()
        };
        edge.validate().unwrap();
    }

    #[test]
    fn timeline_and_boundary_ratio_are_range_checked() {
        let field_of = |cfg: &ModelConfig| match cfg.validate() {
            Err(ConfigError::Invalid { field, .. }) => field,
            other => panic!("{other:?}"),
        };
        let seconds = ModelConfig {
            normalize_by_duration: false,
            ..ModelConfig::tiny()
        };
        for dt in [
            1e300,
            1e-300,
            9.9e-8,
            86_400.1,
            0.0,
            -1.0,
            f64::NAN,
            f64::INFINITY,
        ] {
            let cfg = ModelConfig {
                temporal_interval: dt,
                ..seconds.clone()
            };
            assert_eq!(field_of(&cfg), "temporal_interval", "{dt}");
            let cfg = ModelConfig {
                temporal_interval: dt,
                ..ModelConfig::tiny()
            };
            assert_eq!(field_of(&cfg), "temporal_interval", "{dt}");
        }
        for r in [1e300, 10.000001, 0.0, -0.5, f64::NAN, f64::INFINITY] {
            let cfg = ModelConfig {
                prop_boundary_ratio: r,
                ..ModelConfig::tiny()
            };
            assert_eq!(field_of(&cfg), "prop_boundary_ratio", "{r}");
        }
        for dropout in [1.0, -0.1, f64::NAN] {
            let cfg = ModelConfig {
                dropout,
                ..ModelConfig::tiny()
            };
            assert_eq!(field_of(&cfg), "dropout", "{dropout}");
        }
        for (dt, r) in [
            (MIN_TEMPORAL_INTERVAL, MAX_PROP_BOUNDARY_RATIO),
            (MAX_TEMPORAL_INTERVAL, 1e-9),
        ] {
            let cfg = ModelConfig {
                temporal_interval: dt,
                prop_boundary_ratio: r,
                ..seconds.clone()
            };
            cfg.validate().unwrap();
        }
        let text = r#"{"normalize_by_duration": false, "temporal_interval": 1e300}"#;
        let e = ModelConfig::from_json(text).unwrap_err().to_string();
        assert_eq!(
            e,
            "invalid model config: temporal_interval: 1e300 must be in [1e-7, 86400] \
             seconds per feature step"
        );
        let e = ModelConfig::from_json(r#"{"prop_boundary_ratio": 1e300}"#)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("prop_boundary_ratio: 1e300 must be in (0, 10]"),
            "{e}"
        );
    }

    #[test]
    fn kernels_follow_the_release() {
        let c = ModelConfig::hacs();
        assert_eq!(c.se_final_kernel(), 8);
        assert_eq!(c.xw_final_kernel(), 32);
        assert!((c.timeline_seconds() - 533.333_333).abs() < 1e-3);
    }

    #[test]
    fn invalid_fields_are_named() {
        let err = ModelConfig::from_json(r#"{"feat_dim": 2303}"#).unwrap_err();
        assert!(err.to_string().contains("feat_dim"), "{err}");
        let err = ModelConfig::from_json(r#"{"feat_dims": 4}"#).unwrap_err();
        assert!(err.to_string().contains("feat_dims"), "{err}");
    }
}
