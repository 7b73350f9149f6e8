//! Fixtures shared by the tests of several crates, so that each is written
//! once: the property tests' settings, a small network configuration
//! unlike the presets, and reproducible test values. A dev-dependency only.
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

/// `n` reproducible values in [−1, 1) from `seed` (Marsaglia's xorshift64,
/// shifts 13, 7, 17; 24 bits per value, so exact in float32).
pub fn pseudo_random(n: usize, seed: u64) -> Vec<f32> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            ((x >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
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
