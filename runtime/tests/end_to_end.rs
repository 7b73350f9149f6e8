//! `tcanet-infer run` on a small synthetic dataset in the real formats, with a
//! model written by the real exporter from random `tiny` weights. Expected
//! values come from an independent computation: the exporter's f64 reference
//! forward pass and the plain post-processing of `common`.
mod common;

use common::*;
use tcanet_exporter::reference;
use tcanet_models::data::features::load_features;
use tcanet_models::data::prepare::{prepare_video, FitOptions, VideoData};
use tcanet_models::data::{FeatureLayout, Proposal};
use tcanet_models::onnx::TimeSteps;
use tcanet_models::ModelConfig;

/// softmax(2 × scores), plainly.
fn plain_softmax2(scores: &[f64]) -> Vec<f64> {
    let e: Vec<f64> = scores.iter().map(|s| (2.0 * s).exp()).collect();
    let sum: f64 = e.iter().sum();
    e.iter().map(|x| x / sum).collect()
}

/// What the run must produce for `v`: reference forward + plain post-processing.
fn expected_for(
    v: &SynthVideo,
    dir: &std::path::Path,
    ckpt: &tcanet_models::checkpoint::Checkpoint,
) -> Vec<(f64, f64, f64)> {
    expected_with(v, dir, ckpt, FitOptions::fixed(&ckpt.config, false))
}

/// [`expected_for`] with the features fitted as `fit` says (a model with a
/// symbolic T runs each video at its own length).
fn expected_with(
    v: &SynthVideo,
    dir: &std::path::Path,
    ckpt: &tcanet_models::checkpoint::Checkpoint,
    fit: FitOptions,
) -> Vec<(f64, f64, f64)> {
    let cfg = &ckpt.config;
    let path = dir.join("features").join(format!("{}.npy", v.id));
    let feats = load_features(&path, &v.id, cfg.feat_dim, FeatureLayout::Auto).unwrap();
    let props: Vec<Proposal> = v
        .proposals
        .iter()
        .map(|&(start, end, score)| Proposal { start, end, score })
        .collect();
    let data = VideoData {
        video: &v.id,
        features: &feats,
        features_path: &path,
        proposals: &props,
        duration: v.duration,
    };
    let prepared = prepare_video(&data, cfg, fit, None).unwrap();
    let n = prepared.proposals.len();
    let flat: Vec<f32> = prepared
        .proposals
        .iter()
        .flat_map(|p| [p[0], p[1]])
        .collect();
    let steps = prepared.features.len() / cfg.feat_dim;
    let out = reference::forward_with_steps(ckpt, steps, &prepared.features, &flat, 1, n);
    // Network units (fractions of the video, or seconds) → seconds.
    let seg: Vec<(f64, f64)> = out.proposals[2]
        .chunks_exact(2)
        .map(|p| {
            (
                prepared.time.to_seconds(p[0]),
                prepared.time.to_seconds(p[1]),
            )
        })
        .collect();
    // Input scores at full precision, in the prepared (best-first, stable) order.
    let scores = prepared.input_scores();
    plain_postprocess(&seg, &scores, &out.iou[2], v.duration, 0.4, 0.0, 0.0)
}

#[test]
fn refined_proposals_and_detections_match_an_independent_computation() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = ModelConfig::tiny();
    let (model, ckpt) = export_model(dir.path(), "tiny", &cfg, 5);
    let videos = synth_videos(&cfg, 8, 17);
    let data = dir.path().join("data");
    write_dataset(&data, &videos, cfg.feat_dim);
    // Release-format classifier: raw scores per class.
    let mut rng = Rng(99);
    let class_scores: Vec<(String, Vec<f64>)> = videos
        .iter()
        .map(|v| {
            (
                v.id.clone(),
                LABELS.iter().map(|_| rng.uniform() * 3.0).collect(),
            )
        })
        .collect();
    let classifier = dir.path().join("classifier.json");
    std::fs::write(
        &classifier,
        serde_json::to_string(&serde_json::json!({
            "class_names": LABELS,
            "results": class_scores
                .iter()
                .map(|(v, s)| (v.clone(), serde_json::json!(s)))
                .collect::<serde_json::Map<String, serde_json::Value>>(),
        }))
        .unwrap(),
    )
    .unwrap();
    let out = dir.path().join("refined.json");
    let o = infer(&[
        &"run",
        &"--model",
        &model,
        &"--data",
        &data,
        &"--subset",
        &"validation",
        &"-o",
        &out,
        &"--threads",
        &"1",
        &"--workers",
        &"2",
        &"--classifier",
        &classifier,
        &"--eval",
    ]);
    assert!(o.status.success(), "run failed: {}", stderr(&o));
    let got = read_results(&out);
    let validation: Vec<&SynthVideo> = videos.iter().filter(|v| v.subset == "validation").collect();
    assert_eq!(
        got.iter().map(|(v, _)| v.as_str()).collect::<Vec<_>>(),
        validation.iter().map(|v| v.id.as_str()).collect::<Vec<_>>(),
        "the validation videos, in the annotations' order"
    );
    let mut expected_all = Vec::new();
    for ((id, entries), v) in got.iter().zip(&validation) {
        let want = expected_for(v, &data, &ckpt);
        assert_eq!(entries.len(), want.len(), "{id}: number of proposals kept");
        for (i, (g, w)) in entries.iter().zip(&want).enumerate() {
            let tol = 1e-4 * v.duration;
            assert!(
                (g.0 - w.0).abs() < tol && (g.1 - w.1).abs() < tol,
                "{id}[{i}]: segment [{}, {}] vs reference [{}, {}]",
                g.0,
                g.1,
                w.0,
                w.1
            );
            assert!(
                (g.2 - w.2).abs() < 1e-5,
                "{id}[{i}]: score {} vs {}",
                g.2,
                w.2
            );
            assert!(
                g.0 >= 0.0 && g.1 <= v.duration,
                "{id}[{i}]: clipped to the video"
            );
        }
        expected_all.push((id.clone(), want));
    }

    // Detections: top 3 classes of softmax(2 × scores), class_prob × proposal score, 200 best.
    let det_path = dir.path().join("refined.detections.json");
    let dets = read_results(&det_path);
    assert_eq!(dets.len(), validation.len());
    for ((id, entries), (_, props)) in dets.iter().zip(&expected_all) {
        let raw = &class_scores.iter().find(|(v, _)| v == id).unwrap().1;
        let probs = plain_softmax2(raw);
        let mut classes: Vec<usize> = (0..LABELS.len()).collect();
        classes.sort_by(|&a, &b| probs[b].partial_cmp(&probs[a]).unwrap());
        let mut want: Vec<(f64, f64, f64, String)> = Vec::new();
        for p in props {
            for &c in classes.iter().take(3) {
                want.push((p.0, p.1, probs[c] * p.2, LABELS[c].to_string()));
            }
        }
        want.sort_by(|a, b| b.2.partial_cmp(&a.2).unwrap());
        want.truncate(200);
        assert_eq!(entries.len(), want.len(), "{id}: detections kept");
        for (g, w) in entries.iter().zip(&want) {
            assert!(
                (g.2 - w.2).abs() < 1e-5,
                "{id}: detection score {} vs {}",
                g.2,
                w.2
            );
            assert_eq!(g.3.as_deref(), Some(w.3.as_str()), "{id}: label");
        }
    }

    // --eval prints the evaluator's AUC; it equals the evaluator on the written file.
    let stdout = String::from_utf8_lossy(&o.stdout);
    let gt = tcanet_evaluator::GroundTruth::from_path(data.join("annotations.json"), "validation")
        .unwrap();
    let preds = tcanet_evaluator::ProposalSet::from_path(&out).unwrap();
    let report = tcanet_evaluator::evaluate_proposals(&gt, &preds, &Default::default()).unwrap();
    assert!(
        stdout.contains(&format!("AUC {:.2}", report.auc)),
        "--eval output {stdout:?} should show AUC {:.2}",
        report.auc
    );
    assert!(stdout.contains("mAP@0.5"), "{stdout}");
}

#[test]
fn csv_proposals_and_capped_batches_give_the_same_output() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = ModelConfig::tiny();
    let (model, _) = export_model(dir.path(), "tiny", &cfg, 8);
    let videos = synth_videos(&cfg, 4, 23);
    let data = dir.path().join("data");
    write_dataset(&data, &videos, cfg.feat_dim);
    let csv_dir = dir.path().join("csv");
    std::fs::create_dir_all(&csv_dir).unwrap();
    for v in &videos {
        let mut text = String::from("xmin,xmax,score\n");
        for (s, e, sc) in &v.proposals {
            text.push_str(&format!("{s:?},{e:?},{sc:?}\n"));
        }
        std::fs::write(csv_dir.join(format!("{}.csv", v.id)), text).unwrap();
    }
    let json_out = dir.path().join("a.json");
    let csv_out = dir.path().join("b.json");
    let o = infer(&[
        &"run",
        &"--model",
        &model,
        &"--data",
        &data,
        &"-o",
        &json_out,
        &"--threads",
        &"1",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = infer(&[
        &"run",
        &"--model",
        &model,
        &"--data",
        &data,
        &"--proposals",
        &csv_dir,
        &"-o",
        &csv_out,
        &"--threads",
        &"1",
        &"--max-batch",
        &"5",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let a = read_results(&json_out);
    let b = read_results(&csv_out);
    assert_eq!(a.len(), videos.len());
    assert_eq!(a.len(), b.len());
    for ((va, ea), (vb, eb)) in a.iter().zip(&b) {
        assert_eq!(va, vb);
        assert_eq!(ea.len(), eb.len(), "{va}");
        for (x, y) in ea.iter().zip(eb) {
            assert!(
                (x.0 - y.0).abs() < 1e-6 && (x.1 - y.1).abs() < 1e-6 && (x.2 - y.2).abs() < 1e-7,
                "{va}: {x:?} vs {y:?}"
            );
        }
    }
}

/// Compares a run's refined proposals with the reference, video by video.
/// A video and its expected (start, end, score) rows.
type Expected<'a> = (&'a SynthVideo, Vec<(f64, f64, f64)>);

fn assert_run_matches(got: &[(String, Vec<Entry>)], want: &[Expected]) {
    assert_eq!(got.len(), want.len(), "videos written");
    for ((id, entries), (v, want)) in got.iter().zip(want) {
        assert_eq!(id, &v.id);
        assert_eq!(entries.len(), want.len(), "{id}: number of proposals kept");
        for (i, (g, w)) in entries.iter().zip(want).enumerate() {
            let tol = 1e-4 * v.duration;
            assert!(
                (g.0 - w.0).abs() < tol && (g.1 - w.1).abs() < tol && (g.2 - w.2).abs() < 1e-5,
                "{id}[{i}]: {g:?} vs reference {w:?}"
            );
        }
    }
}

/// A model exported with `--dynamic-time` runs every video at its own
/// number of feature steps (no padding, no resampling), for a config that
/// normalises times by the duration and for one in seconds.
#[test]
fn a_dynamic_time_model_runs_each_video_at_its_own_length() {
    let dir = tempfile::tempdir().unwrap();
    let seconds = ModelConfig {
        normalize_by_duration: false,
        temporal_interval: 0.5,
        ..ModelConfig::tiny()
    };
    for (name, cfg) in [("tiny", ModelConfig::tiny()), ("seconds", seconds)] {
        let (_, ckpt) = export_model(dir.path(), name, &cfg, 6);
        let model = dir.path().join(format!("{name}-dynamic.onnx"));
        let opts = tcanet_exporter::ExportOptions {
            dynamic_time: true,
            ..Default::default()
        };
        tcanet_exporter::export_to_file(&ckpt, &opts, &model).unwrap();
        let mut videos = synth_videos(&cfg, 6, 31);
        for v in &mut videos {
            v.subset = "validation".into();
        }
        let lengths: std::collections::BTreeSet<usize> = videos.iter().map(|v| v.steps).collect();
        assert!(lengths.len() > 2, "{name}: videos of several lengths");
        let data = dir.path().join(format!("{name}-data"));
        write_dataset(&data, &videos, cfg.feat_dim);
        let out = dir.path().join(format!("{name}-refined.json"));
        let o = infer(&[
            &"run",
            &"--model",
            &model,
            &"--data",
            &data,
            &"-o",
            &out,
            &"--threads",
            &"1",
        ]);
        assert!(o.status.success(), "{name}: {}", stderr(&o));
        let fit = FitOptions {
            time_steps: TimeSteps::Dynamic,
            resample: false,
        };
        let want: Vec<_> = videos
            .iter()
            .map(|v| (v, expected_with(v, &data, &ckpt, fit)))
            .collect();
        assert_run_matches(&read_results(&out), &want);
    }
}
