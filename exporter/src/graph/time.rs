//! What a symbolic T (`--dynamic-time`) adds: T (and D) read from the
//! features' shape once per run, and the local window built in the graph.
use tcanet_models::window::window_offsets;

use super::lgte::LocalWindow;
use super::Net;
use crate::builder::Value;
use crate::onnx_proto::data_type;

/// Graph values that describe a symbolic T.
#[derive(Clone)]
pub(super) struct TimeValues {
    /// T as int64, shape [1].
    pub(super) steps_i64: Value,
    /// T as float32, shape [1].
    pub(super) steps: Value,
    /// D = T · temporal_interval as float32, shape [1] (seconds configs only).
    pub(super) timeline: Option<Value>,
}

impl Net<'_> {
    /// T (and D for seconds configs) from the features' shape.
    pub(super) fn time_values(&mut self, features: &Value) -> TimeValues {
        let cfg = self.cfg;
        let b = &mut self.b;
        let t = b.shape("time_steps", features, Some(2), Some(3));
        let steps = b.cast("time_steps_f32", &t, data_type::FLOAT);
        let timeline = (!cfg.normalize_by_duration).then(|| {
            let dt = cfg.temporal_interval as f32;
            let interval = b.const_f32("temporal_interval", &[], &[dt]);
            b.mul("timeline_seconds", &steps, &interval)
        });
        TimeValues {
            steps_i64: t,
            steps,
            timeline,
        }
    }

    /// The local window for a symbolic T (`tcanet_models::window`, built in
    /// the graph): index clamp(j + offset, 0, T−1), and −inf where it equals
    /// the index before (a clamped repeat).
    pub(super) fn dynamic_window(&mut self, t: &Value) -> LocalWindow {
        let w = self.cfg.window_size;
        let b = &mut self.b;
        let t = b.squeeze("time_steps_scalar", t, &[0]);
        let zero = b.const_i64("zero", &[], &[0]);
        let one = b.const_i64("one", &[], &[1]);
        let steps = b.range("positions", &zero, &t, &one);
        let query = b.unsqueeze("query_positions", &steps, &[1]);
        let offsets = b.const_i64("window_offsets", &[w], &window_offsets(w));
        let raw = b.add("window_positions", &query, &offsets);
        let last = b.sub("last_position", &t, &one);
        let index = b.max("clamp_below", &raw, &zero);
        let index = b.min("local_window_index", &index, &last);
        // Duplicates (clamped at an edge) are consecutive in the window.
        let w = w as i64;
        let later = b.slice("later_keys", &index, &[1], &[w], &[1]);
        let earlier = b.slice("earlier_keys", &index, &[0], &[w - 1], &[1]);
        let repeat = b.equal("repeated_key", &later, &earlier);
        let first = b.const_bool("first_key", &[1, 1], &[false]);
        let shape = b.shape("query_count", &query, None, None);
        let first = b.expand("first_keys", &first, &shape);
        let repeat = b.concat("duplicate_key", &[&first, &repeat], 1);
        let zero_f = b.weight("zero_score", &[], &[0.0]);
        let minus_inf = b.weight("minus_inf", &[], &[f32::NEG_INFINITY]);
        let mask = b.where_("local_window_mask", &repeat, &minus_inf, &zero_f);
        LocalWindow { index, mask }
    }
}
