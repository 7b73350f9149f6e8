//! The library call `Refiner::refine` on in-memory arrays against
//! `tcanet-infer run` on the same videos written to files: identical
//! numbers (the same preparation, model call and post-processing);
//! `refine_batch` (padded batches) within 1e-6; errors name the field.
mod common;

use common::*;
use tcanet_models::ModelConfig;
use tcanet_ort::{init_ort, SessionSettings};
use tcanet_runtime::refiner::{RefineError, Refiner, RefinerOptions, VideoArrays};

/// The video as arrays: features `[C, steps]` from the `[steps, C]` rows.
fn arrays(v: &SynthVideo, c: usize) -> VideoArrays {
    let mut features = vec![0f32; c * v.steps];
    for t in 0..v.steps {
        for ch in 0..c {
            features[ch * v.steps + t] = v.features[t * c + ch];
        }
    }
    VideoArrays {
        video: v.id.clone(),
        features,
        steps: v.steps,
        proposals: v.proposals.iter().map(|p| [p.0, p.1]).collect(),
        scores: v.proposals.iter().map(|p| p.2).collect(),
        duration: v.duration,
    }
}

#[test]
fn refine_equals_run_and_batches_agree() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = ModelConfig::tiny();
    let (model, _) = export_model(dir.path(), "tiny", &cfg, 3);
    let videos = synth_videos(&cfg, 12, 9);
    write_dataset(&dir.path().join("data"), &videos, cfg.feat_dim);
    let refined = dir.path().join("refined.json");
    let out = infer(&[
        &"run",
        &"--model",
        &model,
        &"--data",
        &dir.path().join("data"),
        &"--threads",
        &"1",
        &"-o",
        &refined,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let expected = read_results(&refined);

    init_ort(None).unwrap();
    let settings = SessionSettings {
        intra_threads: Some(1),
        ..SessionSettings::default()
    };
    let refiner = std::sync::Arc::new(
        Refiner::load(&model, &settings, None, RefinerOptions::default(), 2).unwrap(),
    );
    // From two threads at once, sharing the handle.
    let results: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = videos
            .chunks(6)
            .map(|part| {
                let refiner = refiner.clone();
                s.spawn(move || {
                    part.iter()
                        .map(|v| refiner.refine(arrays(v, cfg.feat_dim)).unwrap())
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    for (r, (video, want)) in results.iter().zip(&expected) {
        assert_eq!(&r.video, video);
        let got: Vec<(f64, f64, f64)> = r
            .proposals
            .iter()
            .map(|p| (p.start, p.end, p.score))
            .collect();
        let want: Vec<(f64, f64, f64)> = want.iter().map(|e| (e.0, e.1, e.2)).collect();
        assert_eq!(got, want, "{video}: not the numbers of run");
        assert_eq!(r.network.inputs.len(), r.network.stages.proposals_per_item);
        assert_eq!(r.network.refined_seconds(2).len(), r.network.inputs.len());
    }
    let batch = refiner.refine_batch(videos.iter().map(|v| arrays(v, cfg.feat_dim)).collect());
    let mut worst = 0f64;
    for (b, r) in batch.iter().zip(&results) {
        let b = b.as_ref().unwrap();
        assert_eq!(b.proposals.len(), r.proposals.len());
        for (x, y) in b.proposals.iter().zip(&r.proposals) {
            worst = worst
                .max((x.start - y.start).abs())
                .max((x.end - y.end).abs());
            worst = worst.max((x.score - y.score).abs());
        }
    }
    assert!(worst <= 1e-6, "padded batches differ by {worst}");

    // A bad video fails alone, naming the field; the others go through.
    let mut bad = arrays(&videos[0], cfg.feat_dim);
    bad.proposals[2] = [5.0, 1.0];
    let mut list: Vec<VideoArrays> = videos[1..3]
        .iter()
        .map(|v| arrays(v, cfg.feat_dim))
        .collect();
    list.insert(1, bad);
    let out = refiner.refine_batch(list);
    assert!(out[0].is_ok() && out[2].is_ok());
    match &out[1] {
        Err(e @ RefineError::Input { field, .. }) => {
            assert_eq!(field, "proposals[2]");
            assert!(e.to_string().contains("start >= end"), "{e}");
        }
        other => panic!("{other:?}"),
    }
}

/// A `--dynamic-time` model: each video at its own length, as `run` does;
/// `refine_batch` (videos of equal length share a call) agrees to 1e-6.
#[test]
fn dynamic_time_models_refine_at_each_videos_length() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = ModelConfig::tiny();
    let (_, ckpt) = export_model(dir.path(), "tiny", &cfg, 4);
    let model = dir.path().join("dynamic.onnx");
    let opts = tcanet_exporter::ExportOptions {
        dynamic_time: true,
        ..Default::default()
    };
    tcanet_exporter::export_to_file(&ckpt, &opts, &model).unwrap();
    let mut videos = synth_videos(&cfg, 6, 17);
    for v in &mut videos {
        v.subset = "validation".into();
    }
    // Two videos of the same length, so that one batch holds both.
    let twin = SynthVideo {
        id: "v_twin".into(),
        ..videos[0].clone()
    };
    videos.push(twin);
    write_dataset(&dir.path().join("data"), &videos, cfg.feat_dim);
    let refined = dir.path().join("refined.json");
    let out = infer(&[
        &"run",
        &"--model",
        &model,
        &"--data",
        &dir.path().join("data"),
        &"--threads",
        &"1",
        &"-o",
        &refined,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let expected = read_results(&refined);
    init_ort(None).unwrap();
    let settings = SessionSettings {
        intra_threads: Some(1),
        ..SessionSettings::default()
    };
    let refiner = Refiner::load(&model, &settings, None, RefinerOptions::default(), 1).unwrap();
    let single: Vec<_> = videos
        .iter()
        .map(|v| refiner.refine(arrays(v, cfg.feat_dim)).unwrap())
        .collect();
    let batch = refiner.refine_batch(videos.iter().map(|v| arrays(v, cfg.feat_dim)).collect());
    for ((r, b), (video, want)) in single.iter().zip(&batch).zip(&expected) {
        assert_eq!(&r.video, video);
        // run (tested against the f64 reference at each video's length) and
        // the library call agree exactly.
        let steps = videos.iter().find(|v| &v.id == video).unwrap().steps;
        assert_eq!(r.network.stages.batch, 1);
        assert_eq!(
            r.network.time.scale,
            1.0 / videos.iter().find(|v| &v.id == video).unwrap().duration
        );
        let got: Vec<(f64, f64, f64)> = r
            .proposals
            .iter()
            .map(|p| (p.start, p.end, p.score))
            .collect();
        let want: Vec<(f64, f64, f64)> = want.iter().map(|e| (e.0, e.1, e.2)).collect();
        assert_eq!(got, want, "{video} ({steps} steps): not the numbers of run");
        let b = b.as_ref().unwrap();
        for (x, y) in b.proposals.iter().zip(&r.proposals) {
            let d = (x.start - y.start)
                .abs()
                .max((x.end - y.end).abs())
                .max((x.score - y.score).abs());
            assert!(d <= 1e-6, "{video}: batch differs by {d}");
        }
    }
}
