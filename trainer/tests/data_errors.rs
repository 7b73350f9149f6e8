//! Bad input through the trainer's dataset loading: each error names the
//! file, the video and the field; skips are counted.
use std::path::{Path, PathBuf};
use tcanet_models::data::npy::{npy_bytes_f32, write_npy_f32};
use tcanet_models::data::DatasetPaths;
use tcanet_models::ModelConfig;
use tcanet_trainer::dataset::{load_sample, DataOptions, TrainingData};

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("tcanet-derr-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(d.join("features")).unwrap();
    d
}

fn cfg() -> ModelConfig {
    ModelConfig::tiny()
}

/// Two training videos: `a` (one 20 s action, one 0.5 s action), `b` (only a 0.5 s action).
fn write_base(d: &Path, proposals: &str) {
    std::fs::write(
        d.join("annotations.json"),
        r#"{"database": {
          "a": {"subset": "training", "duration": 100.0, "annotations": [
                {"segment": [10.0, 30.0], "label": "x"}, {"segment": [50.0, 50.5], "label": "x"}]},
          "b": {"subset": "training", "duration": 50.0, "annotations": [{"segment": [5.0, 5.5], "label": "x"}]},
          "c": {"subset": "training", "duration": 40.0, "annotations": [{"segment": [5.0, 25.0], "label": "x"}]}}}"#,
    )
    .unwrap();
    std::fs::write(d.join("proposals.json"), proposals).unwrap();
    let feats: Vec<f32> = (0..64 * 32).map(|i| (i % 7) as f32).collect();
    for v in ["a", "b", "c"] {
        write_npy_f32(
            &d.join("features").join(format!("{v}.npy")),
            [64, 32],
            &feats,
        )
        .unwrap();
    }
}

const GOOD: &str = r#"{"results": {"a": [{"segment": [12.0, 28.0], "score": 0.9}, {"segment": [40.0, 60.0], "score": 0.3}],
    "b": [{"segment": [1.0, 9.0], "score": 0.5}]}}"#;

#[test]
fn skips_are_counted_and_samples_match_ground_truth() {
    let d = tmp("ok");
    write_base(&d, GOOD);
    let opts = DataOptions::default();
    let ds = TrainingData::open(&DatasetPaths::in_dir(&d), &opts).unwrap();
    let s = ds.split("training", &cfg(), &opts).unwrap();
    // a: kept (the 0.5 s instance dropped); b: no instance left; c: no proposals.
    assert_eq!(s.videos.len(), 1);
    assert_eq!(s.skipped.short_instances, 2);
    assert_eq!(s.skipped.videos_without_instances, 1);
    assert_eq!(s.skipped.videos_without_proposals, 1);
    let sample = load_sample(&s.videos[0], &cfg(), &opts).unwrap();
    // Normalised by the 100 s duration; best score first; both match [10, 30].
    assert_eq!(sample.input.proposals, vec![[0.12, 0.28], [0.4, 0.6]]);
    assert_eq!(sample.gt, vec![[0.1, 0.3], [0.1, 0.3]]);
}

#[test]
fn bad_inputs_name_file_video_and_field() {
    let opts = DataOptions::default();
    // Proposal with start >= end.
    let d = tmp("se");
    write_base(
        &d,
        r#"{"results": {"a": [{"segment": [30.0, 20.0], "score": 0.9}]}}"#,
    );
    let e = TrainingData::open(&DatasetPaths::in_dir(&d), &opts)
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("proposals.json") && e.contains("'a'") && e.contains("results.a[0].segment"),
        "{e}"
    );
    // Proposal beyond the video; skipped on request.
    write_base(
        &d,
        r#"{"results": {"a": [{"segment": [90.0, 150.0], "score": 0.9}, {"segment": [10.0, 20.0], "score": 0.9}]}}"#,
    );
    let e = TrainingData::open(&DatasetPaths::in_dir(&d), &opts)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("beyond the video") && e.contains("'a'"), "{e}");
    let skip = DataOptions {
        skip_invalid_proposals: true,
        ..DataOptions::default()
    };
    let ds = TrainingData::open(&DatasetPaths::in_dir(&d), &skip).unwrap();
    let s = ds.split("training", &cfg(), &skip).unwrap();
    assert_eq!(s.skipped.invalid_proposals, 1);
    assert_eq!(s.videos[0].proposals.len(), 1);
    // Missing feature file.
    write_base(&d, GOOD);
    std::fs::remove_file(d.join("features/a.npy")).unwrap();
    let ds = TrainingData::open(&DatasetPaths::in_dir(&d), &opts).unwrap();
    let e = ds
        .split("training", &cfg(), &opts)
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("features/a.npy") && e.contains("'a'") && e.contains("not found"),
        "{e}"
    );
    // Wrong channel count.
    std::fs::write(
        d.join("features/a.npy"),
        npy_bytes_f32([64, 31], &vec![0.0; 64 * 31]),
    )
    .unwrap();
    let e = ds
        .split("training", &cfg(), &opts)
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("a.npy") && e.contains("'a'") && e.contains("32 channels"),
        "{e}"
    );
    // NaN in the features: found when the sample is loaded.
    let mut f = vec![0.5f32; 64 * 32];
    f[3 * 32 + 7] = f32::NAN;
    write_npy_f32(&d.join("features/a.npy"), [64, 32], &f).unwrap();
    let s = ds.split("training", &cfg(), &opts).unwrap();
    let e = load_sample(&s.videos[0], &cfg(), &opts)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("a.npy") && e.contains("'a'") && e.contains("step 3, channel 7"),
        "{e}"
    );
    // Missing annotations file.
    let e = TrainingData::open(
        &DatasetPaths {
            annotations: d.join("nope.json"),
            ..DatasetPaths::in_dir(&d)
        },
        &opts,
    )
    .err()
    .unwrap()
    .to_string();
    assert!(e.contains("nope.json") && e.contains("not found"), "{e}");
}

#[test]
fn hacs_style_long_features_need_resample() {
    let d = tmp("hacs");
    write_base(&d, GOOD);
    let cfg = ModelConfig {
        feat_dim: 32,
        temporal_scale: 64,
        temporal_interval: 2.0,
        normalize_by_duration: false,
        ..ModelConfig::tiny()
    };
    write_npy_f32(&d.join("features/a.npy"), [80, 32], &vec![1.0; 80 * 32]).unwrap();
    let opts = DataOptions::default();
    let ds = TrainingData::open(&DatasetPaths::in_dir(&d), &opts).unwrap();
    let s = ds.split("training", &cfg, &opts).unwrap();
    let e = load_sample(&s.videos[0], &cfg, &opts)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("80 feature steps") && e.contains("--resample") && e.contains("'a'"),
        "{e}"
    );
    let r = DataOptions {
        resample: true,
        ..DataOptions::default()
    };
    let sample = load_sample(&s.videos[0], &cfg, &r).unwrap();
    // Times scaled by T/steps = 0.8 (seconds stay seconds otherwise).
    assert_eq!(sample.input.time.scale, 0.8);
    assert_eq!(sample.input.proposals[0], [12.0 * 0.8, 28.0 * 0.8]);
}

/// A batch is padded to its largest video's proposal count (at most
/// `max_proposals`), not to `max_proposals`: `--max-proposals 100000`
/// does not allocate 100000 slots per video. Padding is marked invalid.
#[test]
fn batches_are_padded_to_their_largest_video() {
    let d = tmp("pad");
    write_base(
        &d,
        r#"{"results": {"a": [{"segment": [12.0, 28.0], "score": 0.9}, {"segment": [40.0, 60.0], "score": 0.3},
            {"segment": [11.0, 29.0], "score": 0.5}], "c": [{"segment": [6.0, 24.0], "score": 0.5}]}}"#,
    );
    let slots = |max_proposals: usize, batches: Vec<Vec<usize>>| {
        let opts = DataOptions {
            max_proposals,
            ..DataOptions::default()
        };
        let ds = TrainingData::open(&DatasetPaths::in_dir(&d), &opts).unwrap();
        let split = ds.split("training", &cfg(), &opts).unwrap();
        let ids: Vec<&str> = split.videos.iter().map(|v| v.id.as_str()).collect();
        assert_eq!(ids, ["a", "c"]);
        tcanet_trainer::run::prefetch_batches(&split, batches, 0, &cfg(), &opts, 1)
            .map(|b| {
                let b = b.unwrap();
                assert_eq!(b.valid.len(), b.len() * b.slots);
                assert_eq!(b.proposals.len(), 2 * b.len() * b.slots);
                (b.slots, b.valid)
            })
            .collect::<Vec<_>>()
    };
    let got = slots(100_000, vec![vec![0, 1], vec![1]]);
    assert_eq!((got[0].0, got[1].0), (3, 1), "slots");
    assert_eq!(got[0].1, [1.0, 1.0, 1.0, 1.0, 0.0, 0.0]);
    assert_eq!(got[1].1, [1.0]);
    assert_eq!(slots(64, vec![vec![1, 0]])[0].0, 3);
    // At most max_proposals: a's best two.
    let two = slots(2, vec![vec![0, 1]]);
    assert_eq!(two[0].0, 2);
    assert_eq!(two[0].1, [1.0, 1.0, 1.0, 0.0]);
}
