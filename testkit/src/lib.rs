//! Fixtures shared by the tests of several crates, so that each is written
//! once: the property tests' settings and a small network configuration
//! unlike the presets. A dev-dependency only.
use proptest::test_runner::Config as ProptestConfig;
use tcanet_models::ModelConfig;

/// Property-test settings: 256 cases per property (`PROPTEST_CASES=N` runs
/// more), no failure files written into the source tree.
pub fn proptest_config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256);
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// A small config unlike the presets: 2 heads, window 5, one LGTE layer,
/// times in seconds (no per-video normalisation), 2 conv groups, boundary
/// ratio 0.3.
pub fn small_seconds_config() -> ModelConfig {
    ModelConfig {
        feat_dim: 12,
        temporal_scale: 40,
        temporal_interval: 0.5,
        normalize_by_duration: false,
        hidden_dim: 16,
        conv_groups: 2,
        lgte_num: 1,
        window_size: 5,
        heads: 2,
        ffn_dim: 24,
        start_sample_num: 8,
        end_sample_num: 8,
        action_sample_num: 12,
        prop_boundary_ratio: 0.3,
        se_hidden_dim: 8,
        ..ModelConfig::tiny()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_small_config_is_valid_and_unlike_the_presets() {
        let cfg = small_seconds_config();
        cfg.validate().unwrap();
        for preset in ["hacs", "anet", "tiny"] {
            assert_ne!(cfg, ModelConfig::preset(preset).unwrap());
        }
        assert!(!cfg.normalize_by_duration && cfg.heads == 2 && cfg.window_size == 5);
    }
}
