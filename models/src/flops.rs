//! The network's arithmetic: multiply-adds per region for a config, B videos
//! and N proposals per video, counted as the exported ONNX graph computes
//! them (what runs, and what a measured time is divided by):
//!
//! * the local LGTE heads attend over their w window keys only (scores
//!   `[T, w]`), the global heads over all T;
//! * the first conv of each TBR branch is applied to the (zero-padded,
//!   T + 2 steps) features once per video (the tap tables), and per
//!   proposal only its interpolation at the samples is left: 3 taps × 2
//!   neighbours per output;
//! * element-wise work (activations, norms, softmax, decoding) is not counted;
//! * the base encoder's convs count as direct convs (3 taps per output and
//!   input channel). Exported as Winograd F(m, 3) (the default), the graph
//!   does (m + 2)/m of those instead (F(4, 3): half), plus the tiles'
//!   transforms, so the encoder's rate is an effective one, comparable
//!   with a direct-conv engine's on the same count.
//!
//! One multiply-add is two floating-point operations.
use crate::{ModelConfig, NUM_STAGES};

/// Multiply-adds of one forward pass, per region.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RegionMacs {
    /// Base encoder: two grouped convs over T steps.
    pub encoder: u64,
    /// LGTE in- and output projections, all layers.
    pub lgte_projections: u64,
    /// LGTE attention scores and context (local window + global), all layers.
    pub lgte_attention: u64,
    /// LGTE feed-forward, all layers.
    pub lgte_ffn: u64,
    /// TBR first convs as tap tables (once per video and stage).
    pub tbr_tap_tables: u64,
    /// TBR work per proposal: the tap interpolation and the remaining convs.
    pub tbr_proposals: u64,
}

impl RegionMacs {
    /// Sum over the regions.
    pub fn total(&self) -> u64 {
        self.rows().iter().map(|r| r.1).sum()
    }

    /// Floating-point operations (2 per multiply-add).
    pub fn flops(&self) -> f64 {
        2.0 * self.total() as f64
    }

    /// `(region name, multiply-adds)` in network order.
    pub fn rows(&self) -> [(&'static str, u64); 6] {
        [
            ("encoder", self.encoder),
            ("lgte projections", self.lgte_projections),
            ("lgte attention", self.lgte_attention),
            ("lgte ffn", self.lgte_ffn),
            ("tbr tap tables", self.tbr_tap_tables),
            ("tbr per proposal", self.tbr_proposals),
        ]
    }
}

/// Multiply-adds of one forward pass of `b` videos with `n` proposals each.
pub fn multiply_adds(cfg: &ModelConfig, b: usize, n: usize) -> RegionMacs {
    let u = |v: usize| v as u64;
    let (c, t, h, g) = (
        u(cfg.feat_dim),
        u(cfg.temporal_scale),
        u(cfg.hidden_dim),
        u(cfg.conv_groups),
    );
    let (hd, e, layers) = (u(cfg.head_dim()), u(cfg.se_hidden_dim), u(cfg.lgte_num));
    let local = u(cfg.local_heads());
    let global = u(cfg.heads) - local;
    let (b, n, stages) = (u(b), u(n), u(NUM_STAGES));
    let per_video = RegionMacs {
        encoder: t * h * (c / g) * 3 + t * h * (h / g) * 3,
        lgte_projections: layers * (t * h * 3 * h + t * h * h),
        lgte_attention: layers * 2 * hd * t * (global * t + local * u(cfg.window_size)),
        lgte_ffn: layers * 2 * t * h * u(cfg.ffn_dim),
        tbr_tap_tables: stages * (t + 2) * (h / g) * 3 * (h + 2 * e),
        tbr_proposals: stages * n * per_proposal_stage(cfg),
    };
    RegionMacs {
        encoder: b * per_video.encoder,
        lgte_projections: b * per_video.lgte_projections,
        lgte_attention: b * per_video.lgte_attention,
        lgte_ffn: b * per_video.lgte_ffn,
        tbr_tap_tables: b * per_video.tbr_tap_tables,
        tbr_proposals: b * per_video.tbr_proposals,
    }
}

/// One proposal in one TBR stage: the first convs' interpolation (6 rows per
/// output), the XW `reg_1d_b.2`, `reg_1d_o.0` and `reg_1d_o.2`, the SE `.2`
/// and `.4` convs of both sides.
fn per_proposal_stage(cfg: &ModelConfig) -> u64 {
    let u = |v: usize| v as u64;
    let (h, g, e) = (u(cfg.hidden_dim), u(cfg.conv_groups), u(cfg.se_hidden_dim));
    let xw_j = u(cfg.total_sample_num().div_ceil(2));
    let se_j = u(cfg.start_sample_num.div_ceil(2));
    let (xw_k, se_k) = (u(cfg.xw_final_kernel()), u(cfg.se_final_kernel()));
    let interpolation = xw_j * 6 * h + 2 * se_j * 6 * e;
    let xw = xw_k * h * (h / g) * 3 + h * (h / g) * xw_k + 3 * h;
    let se = 2 * (se_k * e * (e / g) * 3 + e * se_k);
    interpolation + xw + se
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Counted by hand for `tiny` (C 32, T 64, H 64, g 4, 4 heads of 16,
    /// FFN 64, w 9, samples 16/32/16, SE 32, 2 layers), 1 video, 10 proposals.
    #[test]
    fn tiny_matches_a_hand_count() {
        let m = multiply_adds(&ModelConfig::tiny(), 1, 10);
        // 64·64·8·3 + 64·64·16·3
        assert_eq!(m.encoder, 98_304 + 196_608);
        // 2 × (64·64·192 + 64·64·64)
        assert_eq!(m.lgte_projections, 2 * (786_432 + 262_144));
        // 2 × (global 2·64·64·16·2 + local 2·64·9·16·2)
        assert_eq!(m.lgte_attention, 2 * (262_144 + 36_864));
        // 2 × 2·64·64·64
        assert_eq!(m.lgte_ffn, 2 * 524_288);
        // 3 × 66·16·3·(64 + 64)
        assert_eq!(m.tbr_tap_tables, 3 * (202_752 + 202_752));
        // per proposal and stage: interpolation 32·6·64 + 2·8·6·32,
        // reg_1d_b.2 16·64·16·3, reg_1d_o.0 64·16·16, reg_1d_o.2 3·64,
        // SE 2 × (4·32·8·3 + 32·4)
        let one = (12_288 + 3_072) + 49_152 + 16_384 + 192 + 2 * (3_072 + 128);
        assert_eq!(m.tbr_proposals, 3 * 10 * one);
        assert_eq!(m.total(), 7_879_808);
        assert_eq!(m.flops(), 2.0 * 7_879_808.0);
        // Linear in B; the per-video part does not grow with N.
        let m2 = multiply_adds(&ModelConfig::tiny(), 2, 20);
        assert_eq!(m2.encoder, 2 * m.encoder);
        assert_eq!(m2.tbr_proposals, 4 * m.tbr_proposals);
    }

    /// The hacs figures of docs/BENCHMARKS.md: about 1.1 G encoder, 3.6 G
    /// for two LGTE layers, 0.9 G tap tables and 2.6 G for 100 proposals.
    #[test]
    fn hacs_regions_are_the_documented_sizes() {
        let m = multiply_adds(&ModelConfig::hacs(), 1, 100);
        assert_eq!(m.encoder, 1_000 * 512 * 576 * 3 + 1_000 * 512 * 128 * 3);
        let lgte = m.lgte_projections + m.lgte_attention + m.lgte_ffn;
        assert!((3.6e9..3.7e9).contains(&(lgte as f64)), "{lgte}");
        assert!((0.88e9..0.9e9).contains(&(m.tbr_tap_tables as f64)));
        assert!((2.6e9..2.7e9).contains(&(m.tbr_proposals as f64)));
        assert!((8.2e9..8.3e9).contains(&(m.total() as f64)));
    }
}
