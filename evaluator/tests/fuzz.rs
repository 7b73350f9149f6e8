//! Property tests: no input makes a reader (or an evaluation of what it
//! read) panic. Arbitrary bytes, and valid files mutated at random
//! (bytes deleted, inserted, replaced by JSON's own characters), small and
//! large enough to be parsed in parallel pieces. Bounded to a few seconds.

use proptest::prelude::*;
use tcanet_evaluator::diagnose::{diagnose, DiagnoseOptions, ExtraCharacteristics};
use tcanet_evaluator::{
    evaluate_detections, evaluate_proposals, read_video_list, DetectionOptions, DetectionSet,
    GroundTruth, ProposalOptions, ProposalSet,
};

const GT: &str = r#"{"version": "x", "database": {
 "v_a": {"subset": "validation", "duration": 30.5, "annotations": [{"segment": [0, 10.5], "label": "Run"}, {"segment": [12, 14], "label": "Jump"}]},
 "v_b": {"subset": "validation", "annotations": [{"segment": [5, 20], "label": "Jump"}]},
 "v_c": {"subset": "training", "annotations": []}}}"#;

const PRED: &str = r#"{"version": "x", "external_data": {}, "results": {
 "v_a": [{"segment": [0, 10], "score": 0.9, "label": "Run"}, {"segment": [11.5, 14.25], "score": 0.5e0, "label": "Jump"}],
 "v_b": [{"segment": [4, 21], "score": 0.8, "label": "Jump"}, {"segment": [-1, 2], "score": 1E-3, "label": "Run"}],
 "x\u00e9": [{"segment": [1, 2], "score": 0.1, "label": "Run"}]}}"#;

/// A submission of `n` videos, large enough to be cut into pieces.
fn big_pred(n: usize) -> String {
    let mut s = String::from("{\"results\": {");
    for v in 0..n {
        if v > 0 {
            s.push_str(", ");
        }
        s.push_str(&format!(
            "\"v_{v}\": [{{\"segment\": [{v}.5, {}.25], \"score\": 0.{v}, \"label\": \"Run\"}}, \
             {{\"segment\": [1, 2], \"score\": 0.5, \"label\": \"Jump\"}}]",
            v + 3
        ));
    }
    s.push_str("}}");
    s
}

/// Everything that reads bytes, and evaluations of whatever parses.
fn read_all_ways(bytes: &[u8]) {
    let gt = GroundTruth::from_slice(bytes, "x.json", "validation");
    let props = ProposalSet::from_slice(bytes, "x.json");
    let dets = DetectionSet::from_slice(bytes, "x.json");
    let _ = read_video_list(bytes, "x.txt");
    let _ = ExtraCharacteristics::from_slice(bytes, "x.json");
    for e in [gt.as_ref().err(), props.as_ref().err(), dets.as_ref().err()]
        .into_iter()
        .flatten()
    {
        let msg = e.to_string();
        assert!(msg.starts_with("x.json"), "{msg}");
        assert!(!msg.contains("Some(") && !msg.contains("Os {"), "{msg}");
    }
    let reference = GroundTruth::from_json_str(GT, "validation").unwrap();
    let gt = gt.unwrap_or(reference);
    if let Ok(p) = props {
        let _ = evaluate_proposals(&gt, &p, &ProposalOptions::default());
    }
    if let Ok(d) = dets {
        let opts = DetectionOptions {
            ignore_unknown_labels: true,
            ..Default::default()
        };
        let _ = evaluate_detections(&gt, &d, &opts);
        let o = DiagnoseOptions {
            ignore_unknown_labels: true,
            ..Default::default()
        };
        let _ = diagnose(&gt, &d, &o, None);
    }
}

/// One edit of a text: delete a range, insert bytes, or overwrite with
/// one of JSON's structural characters.
#[derive(Debug, Clone)]
enum Edit {
    Delete(usize, usize),
    Insert(usize, Vec<u8>),
    Replace(usize, u8),
}

fn edit() -> impl Strategy<Value = Edit> {
    let structural = prop::sample::select(b"{}[]:,\"\\-+.eE0123456789 nNtfI\x00\xff\n".to_vec());
    prop_oneof![
        (any::<usize>(), 1usize..40).prop_map(|(a, n)| Edit::Delete(a, n)),
        (any::<usize>(), prop::collection::vec(any::<u8>(), 1..8))
            .prop_map(|(a, b)| Edit::Insert(a, b)),
        (any::<usize>(), structural).prop_map(|(a, c)| Edit::Replace(a, c)),
    ]
}

fn apply(text: &str, edits: &[Edit]) -> Vec<u8> {
    let mut b = text.as_bytes().to_vec();
    for e in edits {
        if b.is_empty() {
            break;
        }
        match e {
            Edit::Delete(a, n) => {
                let a = a % b.len();
                let end = (a + n).min(b.len());
                b.drain(a..end);
            }
            Edit::Insert(a, bytes) => {
                let a = a % (b.len() + 1);
                b.splice(a..a, bytes.iter().copied());
            }
            Edit::Replace(a, c) => {
                let a = a % b.len();
                b[a] = *c;
            }
        }
    }
    b
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        read_all_ways(&bytes);
    }

    #[test]
    fn mutated_ground_truth_never_panics(edits in prop::collection::vec(edit(), 1..6)) {
        read_all_ways(&apply(GT, &edits));
    }

    #[test]
    fn mutated_submissions_never_panic(edits in prop::collection::vec(edit(), 1..6)) {
        read_all_ways(&apply(PRED, &edits));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, failure_persistence: None, ..ProptestConfig::default() })]

    /// Large files are cut into pieces parsed in parallel: a mutation in
    /// any piece is reported (or parsed) the same way.
    #[test]
    fn mutated_large_submissions_never_panic(edits in prop::collection::vec(edit(), 1..4)) {
        let text = big_pred(6000);
        let bytes = apply(&text, &edits);
        let pool = rayon::ThreadPoolBuilder::new().num_threads(4).build().unwrap();
        let (a, b) = pool.install(|| {
            (DetectionSet::from_slice(&bytes, "x.json"), ProposalSet::from_slice(&bytes, "x.json"))
        });
        if let Err(e) = &a {
            prop_assert!(e.to_string().starts_with("x.json"));
        }
        // Proposals ignore labels: whatever fails as proposals fails as
        // detections too.
        if b.is_err() {
            prop_assert!(a.is_err());
        }
    }
}

/// A label with quotes, backslashes and non-ASCII text at times.
fn label() -> impl Strategy<Value = String> {
    prop::sample::select(vec!["Run", "Long jump", "a\"b", "c\\d", "é ü", "x/y", ""])
        .prop_map(str::to_string)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, failure_persistence: None, ..ProptestConfig::default() })]

    /// Entries in the usual layout (read without matching keys) and in a
    /// compact one (read by the general reader) give the same values.
    #[test]
    fn the_usual_layout_reads_like_any_other(
        entries in prop::collection::vec(
            (-1e6f64..1e6, -1e6f64..1e6, -10.0f64..10.0, label()), 1..20)
    ) {
        let quote = |s: &str| serde_json::to_string(s).unwrap();
        let usual: Vec<String> = entries.iter().map(|(s, e, x, l)| {
            format!("{{\"segment\": [{s:?}, {e:?}], \"score\": {x:?}, \"label\": {}}}", quote(l))
        }).collect();
        let compact: Vec<String> = entries.iter().map(|(s, e, x, l)| {
            format!("{{\"segment\":[{s:?},{e:?}],\"score\":{x:?},\"label\":{}}}", quote(l))
        }).collect();
        let a = DetectionSet::from_slice(
            format!("{{\"results\": {{\"v\": [{}]}}}}", usual.join(", ")).as_bytes(), "a.json").unwrap();
        let b = DetectionSet::from_slice(
            format!("{{\"results\":{{\"v\":[{}]}}}}", compact.join(",")).as_bytes(), "b.json").unwrap();
        prop_assert_eq!(&a.labels, &b.labels);
        prop_assert_eq!(&a.videos, &b.videos);
        let p = ProposalSet::from_slice(
            format!("{{\"results\": {{\"v\": [{}]}}}}", usual.join(", ")).as_bytes(), "a.json").unwrap();
        for (x, y) in p.videos[0].entries.iter().zip(&a.videos[0].entries) {
            prop_assert_eq!(x.segment, y.segment);
            prop_assert_eq!(x.score.to_bits(), y.score.to_bits());
        }
        for ((s, e, x, l), d) in entries.iter().zip(&a.videos[0].entries) {
            prop_assert_eq!(d.segment, [*s, *e]);
            prop_assert_eq!(d.score.to_bits(), x.to_bits());
            prop_assert_eq!(&a.labels[d.label], l);
        }
    }
}
