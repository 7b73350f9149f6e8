//! Temporal IoU and the matched ground truth of proposals.

/// IoU of two segments `[start, end]`: `inter / union` (0 when the union is 0).
pub fn segment_iou(a: [f64; 2], b: [f64; 2]) -> f64 {
    let inter = (a[1].min(b[1]) - a[0].max(b[0])).max(0.0);
    let union = (a[1] - a[0]) + (b[1] - b[0]) - inter;
    if union > 0.0 {
        inter / union
    } else {
        0.0
    }
}

/// For each proposal, the index of the ground-truth instance of highest IoU
/// with it (the first one on ties, so instance 0 when none overlaps), or
/// `None` when there is no instance at all.
pub fn matched_ground_truth(proposals: &[[f64; 2]], instances: &[[f64; 2]]) -> Vec<Option<usize>> {
    proposals
        .iter()
        .map(|&p| {
            let mut best: Option<(usize, f64)> = None;
            for (j, &g) in instances.iter().enumerate() {
                let iou = segment_iou(p, g);
                if best.is_none_or(|(_, b)| iou > b) {
                    best = Some((j, iou));
                }
            }
            best.map(|(j, _)| j)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iou_by_hand() {
        assert_eq!(segment_iou([0.0, 2.0], [1.0, 3.0]), 1.0 / 3.0);
        assert_eq!(segment_iou([0.0, 1.0], [2.0, 3.0]), 0.0);
        assert_eq!(segment_iou([1.0, 3.0], [1.0, 3.0]), 1.0);
        assert_eq!(segment_iou([0.0, 4.0], [1.0, 2.0]), 0.25);
    }

    #[test]
    fn matches_highest_iou_first_on_ties() {
        let gts = [[0.0, 10.0], [20.0, 30.0], [22.0, 28.0]];
        let props = [
            [1.0, 9.0],
            [21.0, 29.0],
            [23.0, 27.5],
            [40.0, 50.0],
            [10.0, 20.0],
        ];
        // [21,29]: iou with [20,30] = 0.8, with [22,28] = 0.75.
        // [23,27.5]: with [20,30] = 0.45, with [22,28] = 0.75.
        // [40,50] overlaps nothing: instance 0. [10,20] touches 0 and 1: IoU 0, first.
        assert_eq!(
            matched_ground_truth(&props, &gts),
            vec![Some(0), Some(1), Some(2), Some(0), Some(0)]
        );
        assert_eq!(matched_ground_truth(&props[..1], &[]), vec![None]);
    }
}
