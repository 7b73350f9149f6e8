//! Exported models checked by the real `onnx.checker` and run by the real
//! ONNX Runtime (CPU), against the independent f64 reference forward:
//! several configs, batch sizes and proposal counts, proposals partly (and
//! wholly) outside the timeline, a synthetic dataset, fp32 and fp16, every
//! supported opset.
mod common;

use common::*;
use rand::{Rng, SeedableRng};
use tcanet_exporter::inspect::inspect_file;
use tcanet_exporter::ort_run::{ModelOutputs, OnnxModel, OpenOptions};
use tcanet_exporter::reference;
use tcanet_exporter::verify::{compare, random_inputs, Tolerances};
use tcanet_exporter::{
    export_to_file, ExportOptions, Int8Parts, Precision, WinogradTile, SUPPORTED_OPSETS,
};
use tcanet_models::checkpoint::Checkpoint;
use tcanet_models::onnx::{TAP_SUM, WINOGRAD_TILES};
use tcanet_models::ModelConfig;

/// Exports `ckpt` and asserts parity on random inputs for each (B, N).
fn export_and_check(
    ckpt: &Checkpoint,
    dir: &std::path::Path,
    precision: Precision,
    cases: &[(usize, usize)],
) {
    let model_path = dir.join(format!("model-{}.onnx", precision.as_str()));
    let opts = ExportOptions {
        precision,
        ..Default::default()
    };
    export_to_file(ckpt, &opts, &model_path).unwrap();
    assert_onnx_checker_accepts(&model_path);
    if precision == Precision::Fp16 && !cpu_runs_fp16() {
        return assert_fp16_refused(&model_path);
    }
    // The project's TapSum kernel, then the function's standard-op body.
    for standard_ops in [false, true] {
        let mut model = open_one_thread(&model_path, standard_ops);
        check_cases(ckpt, &mut model, precision, cases, standard_ops);
    }
}

/// `path` on one thread, its TapSum calls run by the project's kernel or,
/// with `standard_ops`, as the function's standard-op body.
fn open_one_thread(path: &std::path::Path, standard_ops: bool) -> OnnxModel {
    let options = OpenOptions {
        threads: 1,
        standard_ops,
        ..OpenOptions::default()
    };
    OnnxModel::open(path, &options).unwrap()
}

/// Parity with the reference on random inputs for each (B, N).
fn check_cases(
    ckpt: &Checkpoint,
    model: &mut OnnxModel,
    precision: Precision,
    cases: &[(usize, usize)],
    standard_ops: bool,
) {
    let cfg = &ckpt.config;
    for (seed, &(b, n)) in cases.iter().enumerate() {
        let (features, proposals) = random_inputs(cfg, b, n, seed as u64);
        let onnx = model
            .run(
                &features,
                [b, cfg.feat_dim, cfg.temporal_scale],
                &proposals,
                n,
            )
            .unwrap();
        let reference = reference::forward(ckpt, &features, &proposals, b, n);
        let report = compare(
            &format!(
                "B={b} N={n} {} standard ops {standard_ops}",
                precision.as_str()
            ),
            &onnx,
            &reference,
            Tolerances::for_precision(precision),
        )
        .unwrap();
        assert!(report.passed(), "{report}");
        // The refinement must do something measurable, or parity proves little.
        let moved = onnx.proposals[2]
            .iter()
            .zip(&proposals)
            .any(|(a, b)| (a - b).abs() > 1e-4);
        assert!(moved, "stage 3 left every proposal where it was");
    }
}

#[test]
fn tiny_fp32_matches_the_reference_for_several_batches() {
    let dir = tempfile::tempdir().unwrap();
    let (_, ckpt) = random_checkpoint(dir.path(), "tiny", &ModelConfig::tiny(), 1);
    export_and_check(
        &ckpt,
        dir.path(),
        Precision::Fp32,
        &[(1, 1), (2, 16), (3, 37), (1, 100)],
    );
}

#[test]
fn tiny_fp16_matches_the_reference_within_fp16_tolerance() {
    let dir = tempfile::tempdir().unwrap();
    let (_, ckpt) = random_checkpoint(dir.path(), "tiny", &ModelConfig::tiny(), 2);
    export_and_check(
        &ckpt,
        dir.path(),
        Precision::Fp16,
        &[(1, 3), (2, 24), (4, 9)],
    );
    let summary = inspect_file(&dir.path().join("model-fp16.onnx")).unwrap();
    assert_eq!(summary.metadata_value("tcanet.precision"), Some("fp16"));
    assert!(summary
        .inputs
        .iter()
        .chain(&summary.outputs)
        .all(|io| io.elem_type == "float32"));
}

/// Each form of the base encoder's convs (direct `Conv`s, Winograd F(2, 3)
/// and F(4, 3)) matches the reference, with the project's kernels and as
/// standard ops, at a T that no tile size divides (the last tile reads the
/// padding).
#[test]
fn every_encoder_conv_form_matches_the_reference() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = ModelConfig {
        temporal_scale: 51,
        temporal_interval: 1.0 / 51.0,
        ..ModelConfig::tiny()
    };
    let (_, ckpt) = random_checkpoint(dir.path(), "t51", &cfg, 7);
    let forms = [
        ("direct", None),
        ("winograd2", Some(WinogradTile::F2)),
        ("winograd4", Some(WinogradTile::F4)),
    ];
    for (name, tile) in forms {
        let path = dir.path().join(format!("{name}.onnx"));
        let opts = ExportOptions {
            encoder_tile: tile,
            ..Default::default()
        };
        export_to_file(&ckpt, &opts, &path).unwrap();
        assert_onnx_checker_accepts(&path);
        let winograd = inspect_file(&path)
            .unwrap()
            .functions
            .iter()
            .any(|f| f.name.ends_with(WINOGRAD_TILES));
        assert_eq!(winograd, tile.is_some(), "{name}");
        for standard_ops in [false, true] {
            let mut model = open_one_thread(&path, standard_ops);
            check_cases(&ckpt, &mut model, Precision::Fp32, &[(2, 9)], standard_ops);
        }
    }
}

#[test]
fn other_configs_match_the_reference() {
    for (i, cfg) in [small_seconds_config(), six_heads_config()]
        .into_iter()
        .enumerate()
    {
        let dir = tempfile::tempdir().unwrap();
        let (_, ckpt) = random_checkpoint(dir.path(), "cfg", &cfg, 10 + i as u64);
        export_and_check(&ckpt, dir.path(), Precision::Fp32, &[(1, 5), (3, 11)]);
        export_and_check(&ckpt, dir.path(), Precision::Fp16, &[(2, 7)]);
    }
}

#[test]
fn every_supported_opset_passes_the_checker_and_runs() {
    let dir = tempfile::tempdir().unwrap();
    let (_, ckpt) = random_checkpoint(dir.path(), "tiny", &ModelConfig::tiny(), 3);
    let cfg = &ckpt.config;
    let (features, proposals) = random_inputs(cfg, 2, 6, 7);
    let reference = reference::forward(&ckpt, &features, &proposals, 2, 6);
    for opset in SUPPORTED_OPSETS {
        let path = dir.path().join(format!("opset{opset}.onnx"));
        export_to_file(
            &ckpt,
            &ExportOptions {
                opset,
                ..Default::default()
            },
            &path,
        )
        .unwrap();
        assert_onnx_checker_accepts(&path);
        let summary = inspect_file(&path).unwrap();
        assert_eq!(summary.opset(), Some(opset));
        assert!(summary.ir_version <= 13, "ONNX Runtime 1.31 reads IR ≤ 13");
        let mut model = OnnxModel::load(&path, 1).unwrap();
        let onnx = model
            .run(
                &features,
                [2, cfg.feat_dim, cfg.temporal_scale],
                &proposals,
                6,
            )
            .unwrap();
        let report = compare(
            &format!("opset {opset}"),
            &onnx,
            &reference,
            Tolerances::for_precision(Precision::Fp32),
        )
        .unwrap();
        assert!(report.passed(), "{report}");
    }
}

/// A synthetic dataset: features where a few channels rise inside the
/// videos' action segments, and proposals jittered around those segments
/// (some pushed past the ends of the video).
#[test]
fn synthetic_dataset_matches_the_reference() {
    let cfg = ModelConfig::tiny();
    let dir = tempfile::tempdir().unwrap();
    let (_, ckpt) = random_checkpoint(dir.path(), "tiny", &cfg, 4);
    let (c, t) = (cfg.feat_dim, cfg.temporal_scale);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(99);
    let (b, n) = (4, 30);
    let mut features = vec![0.0f32; b * c * t];
    let mut proposals = Vec::new();
    for v in 0..b {
        let segments: Vec<(f32, f32)> = (0..1 + v % 3)
            .map(|_| {
                let s: f32 = rng.gen_range(0.0..0.7);
                (s, s + rng.gen_range(0.05..0.3))
            })
            .collect();
        for ch in 0..c {
            for step in 0..t {
                let time = (step as f32 + 0.5) / t as f32;
                let inside = segments.iter().any(|&(s, e)| time >= s && time <= e);
                let signal = if inside == (ch < c / 2) { 1.0 } else { 0.0 };
                features[(v * c + ch) * t + step] = signal + rng.gen_range(-0.2..0.2);
            }
        }
        for i in 0..n {
            let (s, e) = segments[i % segments.len()];
            let len = e - s;
            let js = rng.gen_range(-0.4..0.4) * len;
            let je = rng.gen_range(-0.4..0.6) * len;
            proposals.push(s + js - if i % 7 == 0 { 0.2 } else { 0.0 });
            proposals.push(e + je + if i % 5 == 0 { 0.3 } else { 0.0 });
        }
    }
    for precision in [Precision::Fp32, Precision::Fp16] {
        let path = dir
            .path()
            .join(format!("synth-{}.onnx", precision.as_str()));
        export_to_file(
            &ckpt,
            &ExportOptions {
                precision,
                ..Default::default()
            },
            &path,
        )
        .unwrap();
        if precision == Precision::Fp16 && !cpu_runs_fp16() {
            assert_fp16_refused(&path);
            continue;
        }
        let mut model = OnnxModel::load(&path, 1).unwrap();
        let onnx = model.run(&features, [b, c, t], &proposals, n).unwrap();
        let reference = reference::forward(&ckpt, &features, &proposals, b, n);
        let report = compare(
            "synthetic dataset",
            &onnx,
            &reference,
            Tolerances::for_precision(precision),
        )
        .unwrap();
        assert!(report.passed(), "{report}");
    }
}

/// `tiny.onnx` in `dir`: random `tiny` weights from `seed`, exported with
/// the default options.
fn export_tiny(dir: &std::path::Path, seed: u64) -> std::path::PathBuf {
    let (_, ckpt) = random_checkpoint(dir, "tiny", &ModelConfig::tiny(), seed);
    let path = dir.join("tiny.onnx");
    export_to_file(&ckpt, &ExportOptions::default(), &path).unwrap();
    path
}

#[test]
fn a_wrong_temporal_length_is_a_clear_runtime_error() {
    let cfg = ModelConfig::tiny();
    let dir = tempfile::tempdir().unwrap();
    let path = export_tiny(dir.path(), 5);
    let mut model = OnnxModel::load(&path, 1).unwrap();
    let t = cfg.temporal_scale - 1;
    let features = vec![0.0f32; cfg.feat_dim * t];
    let err = model
        .run(&features, [1, cfg.feat_dim, t], &[0.1, 0.2], 1)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("features") && err.contains(&cfg.temporal_scale.to_string()),
        "{err}"
    );
}

/// The full-size HACS network: exported, accepted by the checker, and equal
/// to the reference on one video with a few proposals.
#[test]
fn hacs_export_passes_the_checker_and_matches_the_reference() {
    let cfg = ModelConfig::hacs();
    let dir = tempfile::tempdir().unwrap();
    let (_, ckpt) = random_checkpoint(dir.path(), "hacs", &cfg, 6);
    let path = dir.path().join("hacs.onnx");
    let summary = export_to_file(&ckpt, &ExportOptions::default(), &path).unwrap();
    assert_onnx_checker_accepts(&path);
    let mut model = OnnxModel::load(&path, 2).unwrap();
    let (features, proposals) = random_inputs(&cfg, 1, 4, 8);
    let onnx = model
        .run(
            &features,
            [1, cfg.feat_dim, cfg.temporal_scale],
            &proposals,
            4,
        )
        .unwrap();
    let reference = reference::forward(&ckpt, &features, &proposals, 1, 4);
    let report = compare(
        "hacs",
        &onnx,
        &reference,
        Tolerances::for_precision(Precision::Fp32),
    )
    .unwrap();
    assert!(report.passed(), "{report}");
    // docs/ARCHITECTURE.md: 286 nodes, the XW first conv's gather in 8
    // chunks of 8 outputs inside its TapSum body.
    assert_eq!(summary.nodes, 286);
    let functions = inspect_file(&path).unwrap().functions;
    let xw = functions
        .iter()
        .find(|f| f.overload.contains("c512"))
        .unwrap();
    assert_eq!((xw.calls, xw.op_histogram["GatherND"]), (3, 8));
}

/// `--dynamic-time`: one model for every T, equal to the reference at each
/// length (timeline T·interval seconds, or the whole video with
/// normalize_by_duration), and to the fixed-T model at T = temporal_scale.
#[test]
fn dynamic_time_models_match_the_reference_at_several_lengths() {
    use tcanet_exporter::reference::{config_for_steps, forward_with_steps};
    for (i, cfg) in [ModelConfig::tiny(), small_seconds_config()]
        .into_iter()
        .enumerate()
    {
        let dir = tempfile::tempdir().unwrap();
        let (_, ckpt) = random_checkpoint(dir.path(), "cfg", &cfg, 20 + i as u64);
        let fixed_path = dir.path().join("fixed.onnx");
        export_to_file(&ckpt, &ExportOptions::default(), &fixed_path).unwrap();
        let mut fixed = OnnxModel::load(&fixed_path, 1).unwrap();
        for precision in [Precision::Fp32, Precision::Fp16] {
            let path = dir
                .path()
                .join(format!("dynamic-{}.onnx", precision.as_str()));
            let opts = ExportOptions {
                precision,
                dynamic_time: true,
                ..Default::default()
            };
            export_to_file(&ckpt, &opts, &path).unwrap();
            assert_onnx_checker_accepts(&path);
            let summary = inspect_file(&path).unwrap();
            assert_eq!(summary.inputs[0].dims[2], "T");
            assert_eq!(summary.metadata_value("tcanet.time_steps"), Some("dynamic"));
            if precision == Precision::Fp16 && !cpu_runs_fp16() {
                assert_fp16_refused(&path);
                continue;
            }
            let mut model = OnnxModel::load(&path, 1).unwrap();
            let base = cfg.temporal_scale;
            for (j, t) in [base, base / 2 + 3, base + base / 3, 5]
                .into_iter()
                .enumerate()
            {
                let (b, n) = (2, 9);
                let (features, proposals) =
                    random_inputs(&config_for_steps(&cfg, t), b, n, j as u64);
                let onnx = model
                    .run(&features, [b, cfg.feat_dim, t], &proposals, n)
                    .unwrap();
                let reference = forward_with_steps(&ckpt, t, &features, &proposals, b, n);
                let label = format!("{} T={t} {}", i, precision.as_str());
                let report = compare(
                    &label,
                    &onnx,
                    &reference,
                    Tolerances::for_precision(precision),
                )
                .unwrap();
                assert!(report.passed(), "{report}");
                if t == base && precision == Precision::Fp32 {
                    let same = fixed
                        .run(&features, [b, cfg.feat_dim, t], &proposals, n)
                        .unwrap();
                    for k in 0..3 {
                        let (rel, _) = tcanet_exporter::verify::rel_l2_and_max_abs(
                            &onnx.proposals[k],
                            &same.proposals[k]
                                .iter()
                                .map(|&v| v as f64)
                                .collect::<Vec<_>>(),
                        );
                        assert!(rel < 1e-6, "dynamic vs fixed T, stage {}: {rel:e}", k + 1);
                    }
                }
            }
        }
    }
}

/// Gathers of the TBR first convs split into chunks inside the TapSum
/// bodies, one of them shorter (tiny at 1 MiB: XW 32 outputs as
/// 6+6+6+6+6+2, SE 8 as 6+2): the same outputs as unchunked, in both
/// precisions, run as standard ops and by the project's kernel.
#[test]
fn chunked_gathers_match_the_reference() {
    let cfg = ModelConfig::tiny();
    let dir = tempfile::tempdir().unwrap();
    let (_, ckpt) = random_checkpoint(dir.path(), "tiny", &cfg, 30);
    let (b, n) = (2, 13);
    let (features, proposals) = random_inputs(&cfg, b, n, 31);
    let reference = reference::forward(&ckpt, &features, &proposals, b, n);
    let shape = [b, cfg.feat_dim, cfg.temporal_scale];
    let plain = dir.path().join("plain.onnx");
    let plain_nodes = export_to_file(&ckpt, &ExportOptions::default(), &plain)
        .unwrap()
        .nodes;
    let unchunked = OnnxModel::load(&plain, 1)
        .unwrap()
        .run(&features, shape, &proposals, n)
        .unwrap();
    for precision in [Precision::Fp32, Precision::Fp16] {
        let path = dir
            .path()
            .join(format!("chunked-{}.onnx", precision.as_str()));
        let opts = ExportOptions {
            precision,
            gather_chunk_bytes: 1 << 20,
            ..Default::default()
        };
        let summary = export_to_file(&ckpt, &opts, &path).unwrap();
        assert_onnx_checker_accepts(&path);
        if precision == Precision::Fp32 {
            // The chunks are inside the function bodies: XW 6 gathers, SE 2.
            assert_eq!(summary.nodes, plain_nodes);
            let gathers: Vec<usize> = inspect_file(&path)
                .unwrap()
                .functions
                .iter()
                .filter(|f| f.name.ends_with(TAP_SUM))
                .map(|f| f.op_histogram["GatherND"])
                .collect();
            assert_eq!(gathers, [2, 6]);
        }
        if precision == Precision::Fp16 && !cpu_runs_fp16() {
            assert_fp16_refused(&path);
            continue;
        }
        for standard_ops in [true, false] {
            let mut model = open_one_thread(&path, standard_ops);
            let onnx = model.run(&features, shape, &proposals, n).unwrap();
            let report = compare(
                &format!("chunked {} standard ops {standard_ops}", precision.as_str()),
                &onnx,
                &reference,
                Tolerances::for_precision(precision),
            )
            .unwrap();
            assert!(report.passed(), "{report}");
            assert_same_as_unchunked(&onnx, &unchunked, precision);
        }
    }
}

/// In float32, `onnx` equals the unchunked model's outputs within rounding.
fn assert_same_as_unchunked(onnx: &ModelOutputs, unchunked: &ModelOutputs, precision: Precision) {
    if precision != Precision::Fp32 {
        return;
    }
    for k in 0..3 {
        let same = onnx.proposals[k]
            .iter()
            .zip(&unchunked.proposals[k])
            .all(|(a, b)| (a - b).abs() <= 1e-6 * (1.0 + b.abs()));
        assert!(same, "stage {}: chunked differs from unchunked", k + 1);
    }
}

/// `--int8`: the large products quantized (per-channel 7-bit weights,
/// dynamic activations), accepted by the checker, within quantization error
/// of the reference (proposals 2e-3 relative, IoU 5e-3; float32 holds 1e-5;
/// these small configs measure about 1e-4 and 5e-4); `--int8=all`
/// quantizes the six tap tables' products too.
#[test]
fn int8_models_stay_within_quantization_error_of_the_reference() {
    let cases = [
        (ModelConfig::tiny(), Int8Parts::NoTapTables),
        (ModelConfig::tiny(), Int8Parts::All),
        (small_seconds_config(), Int8Parts::NoTapTables),
        (small_seconds_config(), Int8Parts::All),
    ];
    let mut quantized_products = Vec::new();
    for (i, (cfg, parts)) in cases.into_iter().enumerate() {
        let dir = tempfile::tempdir().unwrap();
        let (_, ckpt) = random_checkpoint(dir.path(), "cfg", &cfg, 40 + i as u64 / 2);
        let path = dir.path().join("int8.onnx");
        let opts = ExportOptions {
            int8: Some(parts),
            ..Default::default()
        };
        export_to_file(&ckpt, &opts, &path).unwrap();
        assert_onnx_checker_accepts(&path);
        let summary = inspect_file(&path).unwrap();
        assert_eq!(
            summary.metadata_value("tcanet.quantization"),
            Some(parts.description())
        );
        quantized_products.push(summary.op_histogram["MatMulInteger"]);
        let (b, n) = (2, 11);
        let (features, proposals) = random_inputs(&cfg, b, n, 41);
        let mut model = OnnxModel::load(&path, 1).unwrap();
        let shape = [b, cfg.feat_dim, cfg.temporal_scale];
        let onnx = model.run(&features, shape, &proposals, n).unwrap();
        let reference = reference::forward(&ckpt, &features, &proposals, b, n);
        let report = compare("int8", &onnx, &reference, Tolerances::int8()).unwrap();
        assert!(report.passed(), "{report}");
        // Not float32 by accident: quantization shows.
        let exact = compare(
            "int8",
            &onnx,
            &reference,
            Tolerances::for_precision(Precision::Fp32),
        )
        .unwrap();
        assert!(
            !exact.passed(),
            "int8 outputs equal float32 to 1e-5:\n{exact}"
        );
    }
    // Two tap tables (SE, XW) per stage.
    for pair in quantized_products.chunks(2) {
        assert_eq!(pair[1], pair[0] + 2 * 3, "{quantized_products:?}");
    }
    let dir = tempfile::tempdir().unwrap();
    let (_, ckpt) = random_checkpoint(dir.path(), "tiny", &ModelConfig::tiny(), 42);
    let both = ExportOptions {
        int8: Some(Int8Parts::NoTapTables),
        precision: Precision::Fp16,
        ..Default::default()
    };
    let err = export_to_file(&ckpt, &both, &dir.path().join("x.onnx")).unwrap_err();
    assert!(err.to_string().contains("--int8"), "{err}");
}

/// Sessions with the project's kernels opened from many threads at once
/// (as a server's session pool may): ONNX Runtime registers the kernels'
/// domain in a process-wide table when it creates a session, so creating
/// two at the same moment must not fail.
#[test]
fn models_open_from_many_threads_at_once() {
    let cfg = ModelConfig::tiny();
    let dir = tempfile::tempdir().unwrap();
    let path = export_tiny(dir.path(), 7);
    let (features, proposals) = random_inputs(&cfg, 1, 3, 7);
    let shape = [1, cfg.feat_dim, cfg.temporal_scale];
    let outputs: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|_| s.spawn(|| OnnxModel::load(&path, 1)?.run(&features, shape, &proposals, 3)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap().unwrap())
            .collect()
    });
    for o in &outputs[1..] {
        assert_eq!(o.proposals, outputs[0].proposals);
    }
}
