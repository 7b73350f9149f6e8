//! The synthetic dataset parses with our own loaders, is deterministic, and
//! has the documented structure.
use std::path::PathBuf;
use tcanet_models::data::features::load_features;
use tcanet_models::data::matching::segment_iou;
use tcanet_models::data::{Annotations, FeatureLayout, ProposalSet};
use tcanet_trainer::synth::{write_dataset, SynthOptions};

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("tcanet-synth-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn small() -> SynthOptions {
    SynthOptions {
        train_videos: 20,
        val_videos: 6,
        seed: 3,
        ..SynthOptions::default()
    }
}

#[test]
fn deterministic_and_valid() {
    let (a, b) = (tmp("a"), tmp("b"));
    write_dataset(&a, &small(), |_, _| {}).unwrap();
    write_dataset(&b, &small(), |_, _| {}).unwrap();
    for f in [
        "annotations.json",
        "proposals.json",
        "classifier.json",
        "features/synth_00007.npy",
    ] {
        assert_eq!(
            std::fs::read(a.join(f)).unwrap(),
            std::fs::read(b.join(f)).unwrap(),
            "{f}"
        );
    }
    let other = tmp("c");
    write_dataset(&other, &SynthOptions { seed: 4, ..small() }, |_, _| {}).unwrap();
    assert_ne!(
        std::fs::read(a.join("proposals.json")).unwrap(),
        std::fs::read(other.join("proposals.json")).unwrap()
    );

    let ann = Annotations::load(&a.join("annotations.json")).unwrap();
    assert_eq!(ann.subset("training").count(), 20);
    assert_eq!(ann.subset("validation").count(), 6);
    let mut props = ProposalSet::load(&a.join("proposals.json")).unwrap();
    let report = props
        .validate(|v| ann.get(v).map(|x| x.duration), Default::default())
        .unwrap();
    assert_eq!(report.unknown_videos, 0);
    let mut ious = Vec::new();
    for v in &ann.videos {
        assert!(!v.instances.is_empty());
        for i in &v.instances {
            assert!(
                i.start >= 0.0 && i.end <= v.duration && i.length() >= 1.0,
                "{v:?}"
            );
        }
        let p = props.get(&v.id).unwrap();
        assert_eq!(p.len(), 100);
        let f = load_features(
            &a.join("features").join(format!("{}.npy", v.id)),
            &v.id,
            32,
            FeatureLayout::TimeChannels,
        )
        .unwrap();
        assert_eq!(f.steps, 64);
        for q in p {
            let best = v
                .instances
                .iter()
                .map(|g| segment_iou([q.start, q.end], [g.start, g.end]))
                .fold(0.0, f64::max);
            ious.push(best);
        }
    }
    // Realistic errors: most proposals overlap an action, few are already tight.
    let mean = ious.iter().sum::<f64>() / ious.len() as f64;
    let tight = ious.iter().filter(|&&x| x >= 0.9).count() as f64 / ious.len() as f64;
    assert!((0.3..0.8).contains(&mean), "mean best IoU {mean}");
    assert!(tight < 0.25, "{tight} of proposals are already tight");
    // The classifier file is the ActivityNet classification format.
    let cls: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(a.join("classifier.json")).unwrap()).unwrap();
    let first = &cls["results"]["synth_00000"];
    assert_eq!(first.as_array().unwrap().len(), 10);
    assert!(first[0]["label"].as_str().unwrap().starts_with("class_"));
    assert!(first[0]["score"].as_f64().unwrap() >= first[1]["score"].as_f64().unwrap());
    assert!(a.join("README.txt").exists());
}

#[test]
fn hacs_style_interval() {
    let d = tmp("hacs");
    let o = SynthOptions {
        train_videos: 3,
        val_videos: 1,
        interval: Some(0.5),
        ..SynthOptions::default()
    };
    write_dataset(&d, &o, |_, _| {}).unwrap();
    let ann = Annotations::load(&d.join("annotations.json")).unwrap();
    for v in &ann.videos {
        let f = load_features(
            &d.join("features").join(format!("{}.npy", v.id)),
            &v.id,
            32,
            FeatureLayout::Auto,
        )
        .unwrap();
        assert_eq!(f.steps, (v.duration / 0.5).ceil() as usize);
    }
}
