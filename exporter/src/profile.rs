//! Where the time goes: an ONNX Runtime profile (the JSON its
//! `enable_profiling` session option writes) summed by network region,
//! using the node name scopes the exporter writes (`x_1d_b_f/…`,
//! `lgtes.0/attention/…`, `tbr2/reg1xw/reg_1d_b.0/gather`, …).
//!
//! Each node's time is its kernel time (`<node>_kernel_time` events); over
//! several runs the minimum per node is taken, which discounts the runs in
//! which the process was preempted (the sum of the minima is what a quiet
//! machine would show), and the mean is kept beside it.
use std::collections::BTreeMap;
use std::fmt;

/// A part of the network a node's time is counted in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Region {
    /// Base encoder convs (and the input cast).
    Encoder,
    /// LGTE in- and output projections.
    LgteProjections,
    /// LGTE attention core: head layout, scores, masks, softmax, context.
    LgteAttention,
    /// LGTE feed-forward, residuals and LayerNorms.
    LgteFfnNorms,
    /// The TBR first convs' tap tables (once per video and stage).
    TapTables,
    /// TTN sampling positions and which tap-table rows (and weights) every
    /// output reads.
    TtnTapIndices,
    /// Reading, weighting and summing the tap rows: `TapSum` (the project's
    /// kernel, or its inlined standard-op body: gathers, batched `MatMul`s,
    /// `Concat`, `Relu`).
    TapSums,
    /// The remaining TBR convs (SE and XW heads).
    TbrConvs,
    /// Decoding the proposals and the IoU.
    Decode,
    /// Layout changes ONNX Runtime inserts around its blocked convs.
    ConvReorders,
    /// Anything else (shared shapes, the per-group feature layout).
    Other,
}

impl Region {
    /// Every region, in network order.
    pub const ALL: [Region; 11] = [
        Region::Encoder,
        Region::LgteProjections,
        Region::LgteAttention,
        Region::LgteFfnNorms,
        Region::TapTables,
        Region::TtnTapIndices,
        Region::TapSums,
        Region::TbrConvs,
        Region::Decode,
        Region::ConvReorders,
        Region::Other,
    ];

    /// A short label.
    pub fn label(self) -> &'static str {
        match self {
            Region::Encoder => "encoder",
            Region::LgteProjections => "LGTE projections",
            Region::LgteAttention => "LGTE attention",
            Region::LgteFfnNorms => "LGTE FFN + norms",
            Region::TapTables => "TBR tap tables",
            Region::TtnTapIndices => "TTN + tap indices",
            Region::TapSums => "tap gathers + sums",
            Region::TbrConvs => "TBR convs",
            Region::Decode => "decoding",
            Region::ConvReorders => "conv layout reorders",
            Region::Other => "other",
        }
    }

    /// The region of node `name` (as written by the exporter, possibly with
    /// a suffix ONNX Runtime adds when it fuses or rewrites the node) whose
    /// operator is `op`.
    pub fn of(name: &str, op: &str) -> Region {
        match op {
            "SkipLayerNormalization" | "LayerNormalization" => return Region::LgteFfnNorms,
            "ReorderInput" | "ReorderOutput" => return Region::ConvReorders,
            "TapSum" => return Region::TapSums,
            _ => {}
        }
        // ONNX Runtime names the nodes of an inlined function after it.
        if name.starts_with("_inlfunc_TapSum") {
            return Region::TapSums;
        }
        if name.starts_with("_inlfunc_LocalAttention") {
            return Region::LgteAttention;
        }
        if name.starts_with("_inlfunc_Winograd") {
            return Region::Encoder;
        }
        let parts: Vec<&str> = name.split('/').collect();
        let first = parts[0];
        if first == "input" || first == "x_1d_b_f" {
            return Region::Encoder;
        }
        // The tap tables' ones column (and, in earlier exports, the tables).
        if first == "taps" {
            return Region::TapTables;
        }
        if first.starts_with("lgtes.") {
            return match parts.get(1).copied() {
                Some("attention") => match (parts.get(2).copied(), parts.get(3).copied()) {
                    // `in_proj`: the packed projection of earlier exports.
                    (Some("out_proj" | "in_proj"), _) => Region::LgteProjections,
                    (Some("local" | "global"), Some("query" | "key" | "value")) => {
                        Region::LgteProjections
                    }
                    _ => Region::LgteAttention,
                },
                _ => Region::LgteFfnNorms,
            };
        }
        if first.starts_with("tbr") {
            return Self::of_stage(&parts[1..], op);
        }
        Region::Other
    }

    /// The region of a node inside a TBR stage (`parts` after `tbrK`).
    fn of_stage(parts: &[&str], op: &str) -> Region {
        match parts.first().copied() {
            Some("ttn") => return Region::TtnTapIndices,
            Some("decode") => return Region::Decode,
            _ => {}
        }
        let first_conv = parts
            .get(1)
            .is_some_and(|p| *p == "start_end_conv.0" || *p == "reg_1d_b.0");
        if !first_conv || parts.len() < 3 {
            return Region::TbrConvs;
        }
        let leaf = parts[2];
        // Each stage's tap table is computed in its first conv (`taps`,
        // `taps_bias` with --int8=all, `group_rows`; `groups_last` and `rows`
        // in the `TapSum` bodies of earlier exports).
        if ["taps", "taps_bias", "group_rows", "groups_last", "rows"].contains(&leaf) {
            return Region::TapTables;
        }
        let index_math = [
            "tap_",
            "time_rows",
            "rows_",
            "neighbours",
            "row_index",
            "gather_index",
        ];
        if index_math.iter().any(|p| leaf.starts_with(p)) && !op.starts_with("Gather") {
            Region::TtnTapIndices
        } else {
            Region::TapSums
        }
    }
}

/// One node's kernel times over the profiled runs.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeTimes {
    /// The operator (`MatMul`, `GatherND`, ...).
    pub op: String,
    /// Kernel time of each run, µs.
    pub micros: Vec<f64>,
}

impl NodeTimes {
    fn min(&self) -> f64 {
        self.micros.iter().copied().fold(f64::INFINITY, f64::min)
    }

    fn mean(&self) -> f64 {
        self.micros.iter().sum::<f64>() / self.micros.len().max(1) as f64
    }
}

/// Why a profile could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    /// Not the JSON array of events ONNX Runtime writes.
    #[error("not an ONNX Runtime profile (a JSON array of events): {0}")]
    Format(String),
}

/// The node kernel times of a profile, by node name.
pub fn node_times(json: &str) -> Result<BTreeMap<String, NodeTimes>, ProfileError> {
    let events: Vec<serde_json::Value> =
        serde_json::from_str(json).map_err(|e| ProfileError::Format(e.to_string()))?;
    let mut nodes: BTreeMap<String, NodeTimes> = BTreeMap::new();
    for e in &events {
        if e.get("cat").and_then(|c| c.as_str()) != Some("Node") {
            continue;
        }
        let Some(name) = e
            .get("name")
            .and_then(|n| n.as_str())
            .and_then(|n| n.strip_suffix("_kernel_time"))
        else {
            continue;
        };
        let dur = e.get("dur").and_then(|d| d.as_f64()).unwrap_or(0.0);
        let op = e
            .pointer("/args/op_name")
            .and_then(|o| o.as_str())
            .unwrap_or("?");
        nodes
            .entry(name.to_string())
            .or_insert_with(|| NodeTimes {
                op: op.to_string(),
                micros: Vec::new(),
            })
            .micros
            .push(dur);
    }
    if nodes.is_empty() {
        return Err(ProfileError::Format("no node kernel times".into()));
    }
    Ok(nodes)
}

/// A profile summed by [`Region`].
#[derive(Debug, Clone, PartialEq)]
pub struct RegionSummary {
    /// (region, sum of per-node minima in ms, sum of per-node means in ms, nodes).
    pub rows: Vec<(Region, f64, f64, usize)>,
    /// The slowest nodes: (name, op, min ms).
    pub top_nodes: Vec<(String, String, f64)>,
}

impl RegionSummary {
    /// Sums `nodes` by region; keeps the `top` slowest nodes.
    pub fn new(nodes: &BTreeMap<String, NodeTimes>, top: usize) -> Self {
        let mut acc: BTreeMap<Region, (f64, f64, usize)> = BTreeMap::new();
        for (name, t) in nodes {
            let e = acc.entry(Region::of(name, &t.op)).or_default();
            e.0 += t.min() / 1e3;
            e.1 += t.mean() / 1e3;
            e.2 += 1;
        }
        let rows = Region::ALL
            .iter()
            .filter_map(|r| acc.get(r).map(|&(min, mean, n)| (*r, min, mean, n)))
            .collect();
        let mut top_nodes: Vec<(String, String, f64)> = nodes
            .iter()
            .map(|(n, t)| (n.clone(), t.op.clone(), t.min() / 1e3))
            .collect();
        top_nodes.sort_by(|a, b| b.2.total_cmp(&a.2));
        top_nodes.truncate(top);
        Self { rows, top_nodes }
    }

    /// Sum of the per-node minima, ms.
    pub fn total_min_ms(&self) -> f64 {
        self.rows.iter().map(|r| r.1).sum()
    }
}

impl fmt::Display for RegionSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let total = self.total_min_ms();
        writeln!(
            f,
            "| region | nodes | ms (sum of per-node minima) | share | ms (mean) |"
        )?;
        writeln!(f, "| --- | ---: | ---: | ---: | ---: |")?;
        for (region, min, mean, n) in &self.rows {
            writeln!(
                f,
                "| {} | {n} | {min:.1} | {:.1}% | {mean:.1} |",
                region.label(),
                100.0 * min / total.max(1e-12)
            )?;
        }
        writeln!(f, "| total | | {total:.1} | 100% | |")?;
        writeln!(f, "slowest nodes (min ms):")?;
        for (name, op, ms) in &self.top_nodes {
            writeln!(f, "  {ms:7.2}  {op:<22} {name}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_names_map_to_their_regions() {
        let cases = [
            ("x_1d_b_f/0_nchwc", "Conv", Region::Encoder),
            ("input/cast_features", "Cast", Region::Encoder),
            (
                "lgtes.0/attention/local/query/matmul",
                "MatMul",
                Region::LgteProjections,
            ),
            (
                "lgtes.0/attention/out_proj/bias",
                "Add",
                Region::LgteProjections,
            ),
            (
                "lgtes.1/attention/local/softmax",
                "Softmax",
                Region::LgteAttention,
            ),
            ("lgtes.1/ffn/linear1/matmul", "MatMul", Region::LgteFfnNorms),
            (
                "SkipLayerNormalization_token_27",
                "SkipLayerNormalization",
                Region::LgteFfnNorms,
            ),
            ("ReorderInput_token_3", "ReorderInput", Region::ConvReorders),
            ("taps/reg1xw/taps/matmul", "MatMul", Region::TapTables),
            ("tbr1/reg1xw/reg_1d_b.0/taps", "MatMul", Region::TapTables),
            (
                "tbr2/reg1se/start_end_conv.0/taps/matmul",
                "MatMul",
                Region::TapTables,
            ),
            ("tbr3/reg1xw/reg_1d_b.0/taps_bias", "Add", Region::TapTables),
            (
                "tbr3/reg1xw/reg_1d_b.0/group_rows",
                "Reshape",
                Region::TapTables,
            ),
            ("taps/ones_column", "Pad", Region::TapTables),
            (
                "lgtes.1/attention/in_proj/matmul",
                "MatMul",
                Region::LgteProjections,
            ),
            ("taps/reg1se/groups_last", "Transpose", Region::TapTables),
            (
                "tbr2/reg1se/start_end_conv.0/gather",
                "GatherND",
                Region::TapSums,
            ),
            ("tbr2/ttn/positions", "MatMul", Region::TtnTapIndices),
            (
                "tbr2/reg1xw/reg_1d_b.0/tap_rows",
                "MatMul",
                Region::TtnTapIndices,
            ),
            (
                "tbr3/reg1xw/reg_1d_b.0/interpolate_sum",
                "MatMul",
                Region::TapSums,
            ),
            (
                "tbr3/reg1xw/reg_1d_b.0/channels_first",
                "Transpose",
                Region::TapSums,
            ),
            ("tbr1/reg1xw/reg_1d_b.0/tap_sum", "TapSum", Region::TapSums),
            (
                "_inlfunc_TapSum_token_0_gather_3",
                "GatherND",
                Region::TapSums,
            ),
            (
                "lgtes.0/attention/local/local_attention",
                "LocalAttention",
                Region::LgteAttention,
            ),
            (
                "_inlfunc_LocalAttention_token_1_window_keys",
                "Gather",
                Region::LgteAttention,
            ),
            ("x_1d_b_f/0/tiles", "WinogradTiles", Region::Encoder),
            (
                "_inlfunc_WinogradUntileRelu_token_4_outputs",
                "MatMul",
                Region::Encoder,
            ),
            ("tbr3/reg1xw/reg_1d_b.2_nchwc", "Conv", Region::TbrConvs),
            ("tbr3/reg1xw/reg_1d_o.0/matmul", "MatMul", Region::TbrConvs),
            ("tbr1/decode/iou", "Sigmoid", Region::Decode),
            ("ttn/zero_pad_time", "Pad", Region::Other),
        ];
        for (name, op, region) in cases {
            assert_eq!(Region::of(name, op), region, "{name}");
        }
    }

    #[test]
    fn a_profile_is_summed_by_region_with_per_node_minima() {
        let json = r#"[
          {"cat":"Session","name":"model_run","dur":900},
          {"cat":"Node","name":"x_1d_b_f/0_nchwc_kernel_time","dur":300,"args":{"op_name":"Conv"}},
          {"cat":"Node","name":"x_1d_b_f/0_nchwc_fence_before","dur":1,"args":{"op_name":"Conv"}},
          {"cat":"Node","name":"x_1d_b_f/0_nchwc_kernel_time","dur":100,"args":{"op_name":"Conv"}},
          {"cat":"Node","name":"tbr1/decode/iou_kernel_time","dur":50,"args":{"op_name":"Sigmoid"}},
          {"cat":"Node","name":"tbr1/decode/iou_kernel_time","dur":70,"args":{"op_name":"Sigmoid"}}
        ]"#;
        let nodes = node_times(json).unwrap();
        assert_eq!(nodes.len(), 2);
        assert_eq!(nodes["x_1d_b_f/0_nchwc"].micros, [300.0, 100.0]);
        let s = RegionSummary::new(&nodes, 1);
        assert_eq!(s.rows.len(), 2);
        assert_eq!(s.rows[0], (Region::Encoder, 0.1, 0.2, 1));
        assert_eq!(s.rows[1].0, Region::Decode);
        assert!((s.rows[1].1 - 0.05).abs() < 1e-12);
        assert!((s.total_min_ms() - 0.15).abs() < 1e-12);
        assert_eq!(s.top_nodes[0].0, "x_1d_b_f/0_nchwc");
        let text = s.to_string();
        assert!(
            text.contains("| encoder | 1 | 0.1 | 66.7% | 0.2 |"),
            "{text}"
        );
        assert!(node_times("{}").is_err());
        assert!(node_times("[]").is_err());
    }
}
