//! TTN: the sampling positions of every proposal, as fractional indices
//! into the encoded features (affine_grid + grid_sample with
//! align_corners=False, folded into two constant matrices).
use super::fold::TtnTables;
use super::Net;
use crate::builder::Value;

/// Per sample of every proposal (S = start ‖ action ‖ end, plus one
/// sentinel sample): the index of its left neighbour in the zero-padded
/// timeline (float32, floor(u) + 1) and the weight of the right neighbour
/// (u − floor(u)); both `[B, N, S+1]`.
pub(super) struct SamplePositions {
    pub(super) left: Value,
    pub(super) frac: Value,
}

impl Net<'_> {
    /// Region bounds (`[B, N, 6]`, clamped to the timeline), then the
    /// fractional index u of every sample, then its neighbours and weight.
    /// With a symbolic T, the bounds are divided by the run-time D (seconds
    /// configs) and the positions multiplied by the run-time T.
    pub(super) fn ttn(&mut self, props: &Value, tables: &TtnTables) -> SamplePositions {
        let time = self.time.clone();
        let b = &mut self.b;
        let bounds_m = b.const_f32("region_bounds", &[2, 6], &tables.region_bounds.data);
        let mut bounds = b.matmul("regions", props, &bounds_m);
        if let Some(d) = time.as_ref().and_then(|t| t.timeline.as_ref()) {
            bounds = b.div("regions_over_timeline", &bounds, d);
        }
        let zero = b.const_f32("zero", &[], &[0.0]);
        let one = b.const_f32("one", &[], &[1.0]);
        let minus_one = b.const_f32("minus_one", &[], &[-1.0]);
        let bounds = b.clip("clamp_to_timeline", &bounds, &zero, &one);
        let p = &tables.sample_positions;
        let pm = b.const_f32("sample_positions", &p.dims, &p.data);
        let mut u = b.matmul("positions", &bounds, &pm);
        if let Some(time) = &time {
            u = b.mul("positions_times_steps", &u, &time.steps);
        }
        let minus_half = b.const_f32("minus_half", &[], &[-0.5]);
        let u = b.add("fractional_index", &u, &minus_half);
        // One sentinel sample after the last, at u = −1: left neighbour 0 of
        // the padded timeline (a zero step) with weight 1, right weight 0.
        let u = b.pad("sentinel_sample", &u, &[0, 0, 0, 0, 0, 1], Some(&minus_one));
        let fl = b.floor("floor", &u);
        let frac = b.sub("frac", &u, &fl);
        // Padded index of the left neighbour: floor(u) + 1.
        let left = b.add("left_padded", &fl, &one);
        SamplePositions { left, frac }
    }
}
