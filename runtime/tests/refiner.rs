//! The library call `Refiner::refine` on in-memory arrays against
//! `tcanet-infer run` on the same videos written to files: identical
//! numbers (the same preparation, model call and post-processing);
//! `refine_batch` (padded batches) within 1e-6; errors name the field.
mod common;

use std::ffi::OsStr;
use std::path::Path;

use common::*;
use tcanet_models::ModelConfig;
use tcanet_ort::{init_ort, SessionSettings};
use tcanet_runtime::postprocess::ScoredSegment;
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

/// `tcanet-infer run` of `model` over the dataset `data` on one thread,
/// with `extra` flags, written to `out`; its results.
fn run_results(model: &Path, data: &Path, out: &Path, extra: &[&str]) -> Vec<(String, Vec<Entry>)> {
    let mut args: Vec<&dyn AsRef<OsStr>> = vec![
        &"run",
        &"--model",
        &model,
        &"--data",
        &data,
        &"--threads",
        &"1",
        &"-o",
        &out,
    ];
    args.extend(extra.iter().map(|a| a as &dyn AsRef<OsStr>));
    let o = infer(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    read_results(out)
}

/// (start, end, score) of refined proposals.
fn triples(proposals: &[ScoredSegment]) -> Vec<(f64, f64, f64)> {
    proposals
        .iter()
        .map(|p| (p.start, p.end, p.score))
        .collect()
}

/// (start, end, score) of leaderboard entries.
fn entry_triples(entries: &[Entry]) -> Vec<(f64, f64, f64)> {
    entries.iter().map(|e| (e.0, e.1, e.2)).collect()
}

#[test]
fn refine_equals_run_and_batches_agree() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = ModelConfig::tiny();
    let (model, _) = export_model(dir.path(), "tiny", &cfg, 3);
    let videos = synth_videos(&cfg, 12, 9);
    write_dataset(&dir.path().join("data"), &videos, cfg.feat_dim);
    let refined = dir.path().join("refined.json");
    let expected = run_results(&model, &dir.path().join("data"), &refined, &[]);

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
        assert_eq!(
            triples(&r.proposals),
            entry_triples(want),
            "{video}: not the numbers of run"
        );
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
    let expected = run_results(&model, &dir.path().join("data"), &refined, &[]);
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
        assert_eq!(
            triples(&r.proposals),
            entry_triples(want),
            "{video} ({steps} steps): not the numbers of run"
        );
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

/// Indices of the `k` best of `props` by score, ties in file order, picked
/// plainly: the first of the highest remaining scores, `k` times.
fn plain_choice(props: &[(f64, f64, f64)], k: usize) -> Vec<usize> {
    let mut used = vec![false; props.len()];
    let mut chosen = Vec::new();
    for _ in 0..k.min(props.len()) {
        let mut best: Option<usize> = None;
        for j in 0..props.len() {
            if !used[j] && best.is_none_or(|b| props[j].2 > props[b].2) {
                best = Some(j);
            }
        }
        let b = best.unwrap();
        used[b] = true;
        chosen.push(b);
    }
    chosen
}

/// `--max-proposals K` end to end: the library call gives the network the K
/// best input proposals, ties in file order (checked against a plain
/// choice); `run` refines exactly what the library call refines; and
/// `postprocess` (no network) keeps the same K.
#[test]
fn max_proposals_is_one_stable_choice_in_refine_run_and_postprocess() {
    const K: usize = 5;
    let dir = tempfile::tempdir().unwrap();
    let cfg = ModelConfig::tiny();
    let (model, _) = export_model(dir.path(), "tiny", &cfg, 8);
    let mut videos = synth_videos(&cfg, 4, 23);
    for v in &mut videos {
        v.subset = "validation".into();
        // Scores on a grid of four values: five chosen always hold a tie.
        for p in v.proposals.iter_mut() {
            p.2 = (p.2 * 4.0).ceil() / 4.0;
        }
        assert!(v.proposals.len() > K);
    }
    let data = dir.path().join("data");
    write_dataset(&data, &videos, cfg.feat_dim);

    init_ort(None).unwrap();
    let settings = SessionSettings {
        intra_threads: Some(1),
        ..SessionSettings::default()
    };
    let options = RefinerOptions {
        max_proposals: Some(K),
        ..RefinerOptions::default()
    };
    let refiner = Refiner::load(&model, &settings, None, options, 1).unwrap();
    let refined: Vec<_> = videos
        .iter()
        .map(|v| refiner.refine(arrays(v, cfg.feat_dim)).unwrap())
        .collect();
    for (v, r) in videos.iter().zip(&refined) {
        let want: Vec<(f64, f64, f64)> = plain_choice(&v.proposals, K)
            .into_iter()
            .map(|i| v.proposals[i])
            .collect();
        let got: Vec<(f64, f64, f64)> = r
            .network
            .inputs
            .iter()
            .map(|p| (p.start, p.end, p.score))
            .collect();
        assert_eq!(got, want, "{}: the network's inputs", v.id);
        assert_eq!(r.network.stages.proposals_per_item, K);
    }

    let k = K.to_string();
    let out = dir.path().join("refined.json");
    let run = run_results(&model, &data, &out, &["--max-proposals", &k]);
    for ((video, entries), r) in run.iter().zip(&refined) {
        assert_eq!(video, &r.video);
        assert_eq!(
            entry_triples(entries),
            triples(&r.proposals),
            "{video}: run and the library call differ"
        );
    }

    let out = dir.path().join("post.json");
    let o = infer(&[
        &"postprocess",
        &"--data",
        &data,
        &"--max-proposals",
        &k,
        &"-o",
        &out,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    for ((video, entries), v) in read_results(&out).iter().zip(&videos) {
        assert_eq!(video, &v.id);
        let chosen: Vec<(f64, f64, f64)> = plain_choice(&v.proposals, K)
            .into_iter()
            .map(|i| v.proposals[i])
            .collect();
        let seg: Vec<(f64, f64)> = chosen.iter().map(|p| (p.0, p.1)).collect();
        let scores: Vec<f64> = chosen.iter().map(|p| p.2).collect();
        let plain = plain_postprocess(&seg, &scores, &[1.0; K], v.duration, 0.4, 0.0, 0.0);
        assert_eq!(entries.len(), plain.len(), "{video}: number kept");
        for (e, p) in entries.iter().zip(&plain) {
            let d = (e.0 - p.0)
                .abs()
                .max((e.1 - p.1).abs())
                .max((e.2 - p.2).abs());
            assert!(d <= 1e-12, "{video}: {e:?} vs {p:?}");
        }
    }
}
