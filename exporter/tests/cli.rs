//! The `tcanet-export` binary: export, inspect, verify, and its errors on bad
//! input (a clear message naming the tensor or option, a non-zero exit, no
//! `.onnx` left behind).
mod common;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::process::{Command, Output};

use common::*;
use prost::Message;
use tcanet_exporter::inspect::inspect_file;
use tcanet_exporter::onnx_proto::ModelProto;
use tcanet_exporter::random_weights::random_weights;
use tcanet_exporter::{META_QUANTIZATION, QUANTIZATION_INT8, QUANTIZATION_INT8_ALL};
use tcanet_models::{param_specs, parameter_count, ModelConfig};

fn run(args: &[&dyn AsRef<std::ffi::OsStr>]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tcanet-export"))
        .args(args.iter().map(|a| a.as_ref()))
        .output()
        .unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Asserts a failed export that names `needle` and left no file (nor temp file).
fn assert_export_fails(ckpt: &Path, extra: &[&str], needle: &str) {
    let dir = ckpt.parent().unwrap();
    let out = dir.join("out.onnx");
    let mut args: Vec<&dyn AsRef<std::ffi::OsStr>> = vec![&ckpt, &"-o", &out];
    for e in extra {
        args.push(e);
    }
    let o = run(&args);
    assert!(!o.status.success(), "export should fail");
    let err = stderr(&o);
    assert!(err.contains(needle), "error should name `{needle}`: {err}");
    assert!(!out.exists(), "no partial .onnx");
    let leftovers: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains("onnx"))
        .collect();
    assert!(leftovers.is_empty(), "left behind: {leftovers:?}");
}

#[test]
fn export_inspect_and_verify_succeed_on_a_trainer_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let (ckpt, _) = random_checkpoint(dir.path(), "tiny", &ModelConfig::tiny(), 1);
    let model = dir.path().join("tiny.onnx");
    let o = run(&[&ckpt, &"-o", &model]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_onnx_checker_accepts(&model);

    let o = run(&[&"inspect", &model]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    for needle in [
        "features",
        "float32  [B, 32, 64]",
        "proposals_3",
        "[B, N]",
        "ai.onnx:17",
        "tcanet.checkpoint_sha256",
        "GatherND",
        "nodes:",
    ] {
        assert!(text.contains(needle), "inspect lacks `{needle}`:\n{text}");
    }

    let o = run(&[
        &"verify",
        &ckpt,
        &model,
        &"--batch",
        &"2",
        &"--proposals",
        &"9",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("iou_3") && text.contains("parity: ok"),
        "{text}"
    );
}

#[test]
fn metadata_names_and_graph_are_clean() {
    let dir = tempfile::tempdir().unwrap();
    let (ckpt_path, ckpt) = random_checkpoint(dir.path(), "tiny", &ModelConfig::tiny(), 2);
    let model = dir.path().join("tiny.onnx");
    assert!(run(&[&ckpt_path, &"-o", &model]).status.success());
    let summary = inspect_file(&model).unwrap();
    let cfg = ModelConfig::from_json(summary.metadata_value("tcanet.config").unwrap()).unwrap();
    assert_eq!(cfg, ModelConfig::tiny());
    let sha = tcanet_models::checkpoint::sha256_hex(&std::fs::read(&ckpt_path).unwrap());
    assert_eq!(
        summary.metadata_value("tcanet.checkpoint_sha256"),
        Some(sha.as_str())
    );
    assert_eq!(ckpt.sha256, sha);
    assert_eq!(
        summary.metadata_value("tcanet.exporter_version"),
        Some(env!("CARGO_PKG_VERSION"))
    );
    assert_eq!(summary.metadata_value("tcanet.precision"), Some("fp32"));
    // Every node name says which part of the model it belongs to.
    let parts = [
        "input/",
        "x_1d_b_f/",
        "lgtes.0/",
        "lgtes.1/",
        "ttn/",
        "taps/",
        "shapes/",
        "tbr1/",
        "tbr2/",
        "tbr3/",
    ];
    for name in &summary.node_names {
        assert!(
            parts.iter().any(|p| name.starts_with(p)),
            "unscoped node {name}"
        );
    }
    // No dead nodes: every output is consumed or is a graph output; every
    // initializer is used.
    let proto = ModelProto::decode(std::fs::read(&model).unwrap().as_slice()).unwrap();
    let graph = proto.graph.unwrap();
    let consumed: std::collections::HashSet<&str> = graph
        .node
        .iter()
        .flat_map(|n| n.input.iter().map(String::as_str))
        .chain(graph.output.iter().map(|o| o.name.as_str()))
        .collect();
    for n in &graph.node {
        assert!(
            n.output.iter().all(|o| consumed.contains(o.as_str())),
            "dead node {}",
            n.name
        );
    }
    for t in &graph.initializer {
        assert!(
            consumed.contains(t.name.as_str()),
            "unused initializer {}",
            t.name
        );
    }
    // Folded constants: no node computes from constants alone.
    let inits: std::collections::HashSet<&str> =
        graph.initializer.iter().map(|t| t.name.as_str()).collect();
    for n in &graph.node {
        assert!(
            !n.input.iter().all(|i| inits.contains(i.as_str())),
            "foldable node {}",
            n.name
        );
    }
    // The node count documented in docs/ARCHITECTURE.md: 13 (the encoder's
    // Winograd convs) + 28 per LGTE layer + 7 shared + 70 per TBR stage
    // (fp32).
    assert_eq!(summary.node_count, 13 + 28 * 2 + 7 + 70 * 3);
    // Every call of a model-local function calls one the file defines, and
    // every defined function is called.
    for n in graph.node.iter().filter(|n| !n.domain.is_empty()) {
        let defined = proto.functions.iter().any(|f| f.is_called_by(n));
        assert!(defined, "{} calls an undefined function", n.name);
    }
    // TapSum for each branch, once per stage; LocalAttention once per
    // layer; the encoder's two convs' tiles (one body per input width) and
    // their untiling (one body: both give 128 channels per group).
    let mut calls: Vec<(&str, &str, usize)> = summary
        .functions
        .iter()
        .map(|f| (f.name.as_str(), f.overload.as_str(), f.calls))
        .collect();
    calls.sort();
    assert_eq!(
        calls,
        [
            ("ai.tcanet.LocalAttention", "", 2),
            ("ai.tcanet.TapSum", "c32_j8_regions2_chunk8", 3),
            ("ai.tcanet.TapSum", "c64_j32_regions1_chunk32", 3),
            ("ai.tcanet.WinogradTiles", "t64_n6_p6_m4_g4_c16", 1),
            ("ai.tcanet.WinogradTiles", "t64_n6_p6_m4_g4_c8", 1),
            ("ai.tcanet.WinogradUntileRelu", "t64_n6_p6_m4_g4_c16", 2),
        ],
        "{:?}",
        summary.functions
    );
}

#[test]
fn release_style_state_dict_needs_and_takes_a_preset() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = ModelConfig::tiny();
    let weights = random_weights(&cfg, 3).unwrap();
    // The authors' keys: `module.` prefix and the mask_matrix buffers.
    let mut tensors: BTreeMap<String, Vec<f32>> = weights
        .iter()
        .map(|(k, v)| (format!("module.{k}"), v.clone()))
        .collect();
    let mut shapes: HashMap<String, Vec<usize>> = param_specs(&cfg)
        .into_iter()
        .map(|s| (format!("module.{}", s.name), s.shape))
        .collect();
    let t = cfg.temporal_scale;
    for i in 0..cfg.lgte_num {
        let name = format!("module.lgtes.{i}.self_atten.mask_matrix");
        tensors.insert(name.clone(), vec![1.0; cfg.heads * t * t]);
        shapes.insert(name, vec![1, cfg.heads, t, t]);
    }
    let ckpt = dir.path().join("release.safetensors");
    write_plain(&ckpt, &cfg, &tensors, &shapes, false);
    assert_export_fails(&ckpt, &[], "--preset");
    let model = dir.path().join("release.onnx");
    let o = run(&[&ckpt, &"--preset", &"tiny", &"-o", &model]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = run(&[&"verify", &ckpt, &model, &"--preset", &"tiny"]);
    assert!(o.status.success(), "{}", stderr(&o));
    // --config FILE works the same way.
    let cfg_file = dir.path().join("tiny.json");
    std::fs::write(&cfg_file, cfg.to_json()).unwrap();
    let model2 = dir.path().join("release2.onnx");
    let o = run(&[&ckpt, &"--config", &cfg_file, &"-o", &model2, &"--fp16"]);
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn bad_checkpoints_are_named_errors_and_leave_nothing() {
    let cfg = ModelConfig::tiny();
    let specs: HashMap<String, Vec<usize>> = param_specs(&cfg)
        .into_iter()
        .map(|s| (s.name, s.shape))
        .collect();

    // A missing tensor.
    let dir = tempfile::tempdir().unwrap();
    let mut w = random_weights(&cfg, 4).unwrap();
    w.remove("tbr2.reg1xw.reg_1d_o.0.weight");
    let ckpt = dir.path().join("missing.safetensors");
    write_plain(&ckpt, &cfg, &w, &specs, true);
    assert_export_fails(&ckpt, &[], "missing tensor `tbr2.reg1xw.reg_1d_o.0.weight`");

    // A tensor of the wrong shape.
    let dir = tempfile::tempdir().unwrap();
    let w = random_weights(&cfg, 4).unwrap();
    let mut shapes = specs.clone();
    let n = w["lgtes.1.linear1.weight"].len();
    shapes.insert("lgtes.1.linear1.weight".into(), vec![n]);
    let ckpt = dir.path().join("shape.safetensors");
    write_plain(&ckpt, &cfg, &w, &shapes, true);
    assert_export_fails(&ckpt, &[], "`lgtes.1.linear1.weight` has shape");

    // A config that does not match the weights (feat_dim).
    let dir = tempfile::tempdir().unwrap();
    let other = ModelConfig {
        feat_dim: 48,
        ..cfg.clone()
    };
    let w = random_weights(&other, 4).unwrap();
    let ckpt = dir.path().join("featdim.safetensors");
    write_plain(&ckpt, &other, &w, &HashMap::new(), false);
    assert_export_fails(&ckpt, &["--preset", "tiny"], "x_1d_b_f.0.weight");
    assert_export_fails(&ckpt, &["--preset", "tiny"], "feat_dim 32");

    // More LGTE layers in the weights than in the config.
    let dir = tempfile::tempdir().unwrap();
    let deeper = ModelConfig {
        lgte_num: 3,
        ..cfg.clone()
    };
    let w = random_weights(&deeper, 4).unwrap();
    let ckpt = dir.path().join("deeper.safetensors");
    write_plain(&ckpt, &deeper, &w, &HashMap::new(), false);
    assert_export_fails(&ckpt, &["--preset", "tiny"], "unexpected tensor `lgtes.2.");

    // A NaN weight.
    let dir = tempfile::tempdir().unwrap();
    let mut w = random_weights(&cfg, 4).unwrap();
    w.get_mut("lgtes.0.norm2.bias").unwrap()[5] = f32::NAN;
    let ckpt = dir.path().join("nan.safetensors");
    write_plain(&ckpt, &cfg, &w, &specs, true);
    assert_export_fails(
        &ckpt,
        &[],
        "`lgtes.0.norm2.bias` holds a non-finite value at flat index 5",
    );

    // Another format tag.
    let dir = tempfile::tempdir().unwrap();
    let (ok_ckpt, _) = random_checkpoint(dir.path(), "tagged", &cfg, 4);
    let bytes = std::fs::read(&ok_ckpt).unwrap();
    let patched: Vec<u8> = {
        let pos = bytes
            .windows(19)
            .position(|w| w == b"tcanet-checkpoint/2")
            .unwrap();
        let mut b = bytes.clone();
        b[pos + 18] = b'9';
        b
    };
    let ckpt = dir.path().join("format9.safetensors");
    std::fs::write(&ckpt, patched).unwrap();
    assert_export_fails(
        &ckpt,
        &[],
        "unsupported checkpoint format `tcanet-checkpoint/9`",
    );

    // An unsupported opset, an unknown preset, a file that is not safetensors.
    let dir = tempfile::tempdir().unwrap();
    let (ckpt, _) = random_checkpoint(dir.path(), "ok", &cfg, 4);
    assert_export_fails(
        &ckpt,
        &["--opset", "11"],
        "'11' for '--opset <N>': must be an integer from 17 to 25",
    );
    assert_export_fails(&ckpt, &["--preset", "bmn"], "unknown preset 'bmn'");
    let junk = dir.path().join("junk.safetensors");
    std::fs::write(&junk, b"not a safetensors file").unwrap();
    assert_export_fails(&junk, &[], "junk.safetensors");
    assert_export_fails(
        &dir.path().join("absent.safetensors"),
        &[],
        "absent.safetensors",
    );
}

#[test]
fn an_existing_model_survives_a_failed_export() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = ModelConfig::tiny();
    let (ckpt, _) = random_checkpoint(dir.path(), "ok", &cfg, 5);
    let model = dir.path().join("model.onnx");
    assert!(run(&[&ckpt, &"-o", &model]).status.success());
    let before = std::fs::read(&model).unwrap();
    let o = run(&[&ckpt, &"-o", &model, &"--opset", &"99"]);
    assert!(!o.status.success());
    assert_eq!(std::fs::read(&model).unwrap(), before);
}

#[test]
fn verify_fails_on_a_model_from_other_weights() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = ModelConfig::tiny();
    let (a, _) = random_checkpoint(dir.path(), "a", &cfg, 6);
    let (b, _) = random_checkpoint(dir.path(), "b", &cfg, 7);
    let model = dir.path().join("b.onnx");
    assert!(run(&[&b, &"-o", &model]).status.success());
    let o = run(&[&"verify", &a, &model]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("FAIL"));
    assert!(stderr(&o).contains("different file"));
}

#[test]
fn verify_takes_the_users_own_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = ModelConfig::tiny();
    let (ckpt, _) = random_checkpoint(dir.path(), "tiny", &cfg, 8);
    let model = dir.path().join("tiny.onnx");
    assert!(run(&[&ckpt, &"-o", &model, &"--fp16"]).status.success());
    let (b, n) = (2, 5);
    let (features, proposals) = tcanet_exporter::verify::random_inputs(&cfg, b, n, 3);
    let tensors: BTreeMap<String, Vec<f32>> = [
        ("features".to_string(), features),
        ("proposals".to_string(), proposals),
    ]
    .into();
    let shapes: HashMap<String, Vec<usize>> = [
        (
            "features".to_string(),
            vec![b, cfg.feat_dim, cfg.temporal_scale],
        ),
        ("proposals".to_string(), vec![b, n, 2]),
    ]
    .into();
    let inputs = dir.path().join("inputs.safetensors");
    write_plain(&inputs, &cfg, &tensors, &shapes, false);
    let o = run(&[&"verify", &ckpt, &model, &"--inputs", &inputs]);
    if !cpu_runs_fp16() {
        return assert_fp16_refused_exit(&o);
    }
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("inputs from") && text.contains("B=2 N=5") && text.contains("fp16"),
        "{text}"
    );
    // Inputs of the wrong temporal length are refused with the expected shape.
    let shapes: HashMap<String, Vec<usize>> = [
        (
            "features".to_string(),
            vec![b, cfg.feat_dim * 2, cfg.temporal_scale / 2],
        ),
        ("proposals".to_string(), vec![b, n, 2]),
    ]
    .into();
    write_plain(&inputs, &cfg, &tensors, &shapes, false);
    let o = run(&[&"verify", &ckpt, &model, &"--inputs", &inputs]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("[B, 32, 64]"), "{}", stderr(&o));
}

#[test]
fn fp16_refuses_weights_beyond_its_range() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = ModelConfig::tiny();
    let mut w = random_weights(&cfg, 9).unwrap();
    w.get_mut("tbr1.reg1xw.reg_1d_b.2.bias").unwrap()[3] = 1e6;
    let ckpt = dir.path().join("big.safetensors");
    write_plain(&ckpt, &cfg, &w, &HashMap::new(), true);
    assert_export_fails(
        &ckpt,
        &["--fp16"],
        "`tbr1.reg1xw.reg_1d_b.2.bias` holds 1000000",
    );
    let model = dir.path().join("fp32.onnx");
    assert!(
        run(&[&ckpt, &"-o", &model]).status.success(),
        "fp32 takes it"
    );
}

#[test]
fn bench_reports_the_arithmetic_rate_and_a_profile_by_region() {
    let dir = tempfile::tempdir().unwrap();
    let (ckpt, _) = random_checkpoint(dir.path(), "tiny", &ModelConfig::tiny(), 10);
    let model = dir.path().join("tiny.onnx");
    assert!(run(&[&ckpt, &"-o", &model]).status.success());
    let profile = dir.path().join("profile.json");
    let o = run(&[
        &"bench",
        &model,
        &"--runs",
        &"4",
        &"--proposals",
        &"7",
        &"--threads",
        &"1",
        &"--cpu-ghz",
        &"2.5",
        &"--isa",
        &"avx2",
        &"--profile",
        &profile,
        &"--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    let json_end = text.find("\n}").unwrap() + 2;
    let figures: serde_json::Value = serde_json::from_str(&text[..json_end]).unwrap();
    let flops = tcanet_models::flops::multiply_adds(&ModelConfig::tiny(), 1, 7).flops();
    assert_eq!(figures["gflop_per_call"].as_f64().unwrap(), flops / 1e9);
    // One thread, 2 FMA units × 8 lanes × 2 × 2.5 GHz.
    assert_eq!(figures["nominal_peak_gflops"].as_f64().unwrap(), 80.0);
    let p50 = figures["p50_ms"].as_f64().unwrap();
    // Nearest rank of the 4 sorted latencies: p50 is rank ⌈2⌉ = 2, p90
    // rank ⌈3.6⌉ = 4, the minimum rank 1.
    let times: Vec<f64> = figures["times_ms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_f64().unwrap())
        .collect();
    assert_eq!(times.len(), 4);
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
    assert_eq!(p50, times[1]);
    assert_eq!(figures["p90_ms"].as_f64().unwrap(), times[3]);
    assert_eq!(figures["min_ms"].as_f64().unwrap(), times[0]);
    let rate = figures["gflops"].as_f64().unwrap();
    assert!((rate - flops / 1e9 / (p50 / 1e3)).abs() < 1e-9 * rate);
    for region in [
        "| encoder |",
        "| LGTE attention |",
        "| TBR tap tables |",
        "| decoding |",
    ] {
        assert!(text.contains(region), "no {region} row:\n{text}");
    }
    // The profile is ONNX Runtime's JSON, with every node of the graph.
    let nodes =
        tcanet_exporter::profile::node_times(&std::fs::read_to_string(&profile).unwrap()).unwrap();
    assert!(nodes.keys().any(|n| n.starts_with("tbr3/decode/")));
    assert!(
        nodes.values().all(|t| t.micros.len() == 6),
        "2 warm-up + 4 runs"
    );
    let leftovers = std::fs::read_dir(dir.path())
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with('.')
        })
        .count();
    assert_eq!(leftovers, 0, "the profiler's scratch directory is removed");
    let o = run(&[&"bench", &model, &"--cpu-ghz", &"-1"]);
    assert_eq!(o.status.code(), Some(2));
}

/// `--version`: the version and commit, then the ONNX Runtime that `verify`
/// and `bench` would load, its version checked against the onnxruntime
/// Python package the library comes from.
#[test]
fn version_names_the_onnx_runtime_found() {
    let o = run(&[&"--version"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8(o.stdout).unwrap();
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some(format!("tcanet-export {}", tcanet_version::long_version!()).as_str())
    );
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python");
    let version = Command::new(python)
        .args(["-c", "import onnxruntime; print(onnxruntime.__version__)"])
        .output()
        .expect("the project venv's python runs (make setup)");
    let version = String::from_utf8(version.stdout).unwrap();
    let ort = lines.next().unwrap_or_default();
    assert!(
        ort.starts_with(&format!("ONNX Runtime: {} (", version.trim())),
        "{text}"
    );
}

/// `verify` judges an `--int8` model (`--int8` alone: the tap tables stay
/// float; `--int8=all`) by quantization's tolerances (read from its
/// metadata), and still by the user's when given. `--int8` takes its value
/// only after `=`, so a checkpoint after it is not read as one.
#[test]
fn verify_knows_an_int8_model() {
    let dir = tempfile::tempdir().unwrap();
    let ckpt = dir.path().join("random.safetensors");
    let o = run(&[&"random-checkpoint", &"--preset", &"tiny", &"-o", &ckpt]);
    assert!(o.status.success(), "{}", stderr(&o));
    let parts = [("int8.onnx", None), ("int8-all.onnx", Some("--int8=all"))];
    for (file, flag) in parts {
        let model = dir.path().join(file);
        let o = match flag {
            None => run(&[&"--int8", &ckpt, &"-o", &model]),
            Some(flag) => run(&[&ckpt, &"-o", &model, &flag]),
        };
        assert!(o.status.success(), "{}", stderr(&o));
        let want = if flag.is_some() {
            QUANTIZATION_INT8_ALL
        } else {
            QUANTIZATION_INT8
        };
        let summary = inspect_file(&model).unwrap();
        assert_eq!(summary.metadata_value(META_QUANTIZATION), Some(want));
        let o = run(&[&"verify", &ckpt, &model]);
        let out = String::from_utf8_lossy(&o.stdout);
        assert_eq!(o.status.code(), Some(0), "{out}{}", stderr(&o));
        assert!(out.contains("parity: ok"), "{out}");
        let o = run(&[&"verify", &ckpt, &model, &"--iou-tol", &"1e-7"]);
        assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
        assert!(String::from_utf8_lossy(&o.stdout).contains("FAILED"));
    }
    let o = run(&[&ckpt, &"-o", &dir.path().join("x.onnx"), &"--int8=some"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("no-tap-tables"), "{}", stderr(&o));
}

/// `verify` takes the precision and T from the model's metadata: an fp16
/// model with a symbolic T is checked at T and at about 3/4 of T, by fp16's
/// tolerances; a fixed-T fp32 model at T only.
#[test]
fn verify_reads_precision_and_time_steps_from_the_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let (ckpt, _) = random_checkpoint(dir.path(), "tiny", &ModelConfig::tiny(), 11);
    let dynamic = dir.path().join("dynamic.onnx");
    let o = run(&[&ckpt, &"-o", &dynamic, &"--fp16", &"--dynamic-time"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = run(&[&"verify", &ckpt, &dynamic, &"--batch", &"1"]);
    let out = String::from_utf8_lossy(&o.stdout);
    if cpu_runs_fp16() {
        assert_eq!(o.status.code(), Some(0), "{out}{}", stderr(&o));
        // tiny: T = 64, and 64 * 3 / 4 + 1 = 49.
        assert!(out.contains("T=64 seed 0 (fp16;"), "{out}");
        assert!(out.contains("T=49 seed 0 (fp16;"), "{out}");
    } else {
        assert_fp16_refused_exit(&o);
    }
    let fixed = dir.path().join("fixed.onnx");
    assert!(run(&[&ckpt, &"-o", &fixed]).status.success());
    let o = run(&[&"verify", &ckpt, &fixed, &"--batch", &"1"]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{out}{}", stderr(&o));
    assert!(out.contains("T=64 seed 0 (fp32;"), "{out}");
    assert!(!out.contains("T=49"), "{out}");
}

/// `-o -` writes a checkpoint to standard output (as every `-o` of the
/// project does), the same bytes as to a file, and never to a file named
/// `-`; an empty `-o` is a usage error.
#[test]
fn checkpoints_go_to_standard_output_for_dash() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("-"), "precious").unwrap();
    let file = dir.path().join("r.safetensors");
    let o = run(&[
        &"random-checkpoint",
        &"--preset",
        &"tiny",
        &"--seed",
        &"3",
        &"-o",
        &file,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = Command::new(env!("CARGO_BIN_EXE_tcanet-export"))
        .current_dir(dir.path())
        .args([
            "random-checkpoint",
            "--preset",
            "tiny",
            "--seed",
            "3",
            "-o",
            "-",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(o.stdout, std::fs::read(&file).unwrap());
    assert_eq!(
        std::fs::read_to_string(dir.path().join("-")).unwrap(),
        "precious"
    );
    let o = run(&[&"random-checkpoint", &"--preset", &"tiny", &"-o", &""]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("an empty path names no file"),
        "{}",
        stderr(&o)
    );
}

/// `random-checkpoint` for a config of `hidden_dim`, under a limit of
/// `limit_kib` of virtual memory (`ulimit -v`).
fn random_checkpoint_limited(dir: &Path, hidden_dim: usize, limit_kib: u64) -> Output {
    let config = dir.join(format!("h{hidden_dim}.json"));
    std::fs::write(&config, format!("{{\"hidden_dim\": {hidden_dim}}}")).unwrap();
    let out = dir.join(format!("h{hidden_dim}.safetensors"));
    Command::new("sh")
        .arg("-c")
        .arg(format!("ulimit -v {limit_kib} && exec \"$0\" \"$@\""))
        .arg(env!("CARGO_BIN_EXE_tcanet-export"))
        .args(["random-checkpoint", "--config"])
        .arg(&config)
        .arg("-o")
        .arg(&out)
        .output()
        .unwrap()
}

#[test]
fn a_config_beyond_the_memory_at_hand_is_an_error_not_an_abort() {
    let dir = tempfile::tempdir().unwrap();
    let parameters = |hidden_dim: usize| {
        parameter_count(&ModelConfig {
            hidden_dim,
            ..ModelConfig::hacs()
        })
    };
    // About 1 GiB of weights under a 600 MiB limit: the weights fail.
    let params = parameters(2560);
    assert!(params * 4 > 900 << 20, "{params}");
    let o = random_checkpoint_limited(dir.path(), 2560, 600 << 10);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!("its {params} parameters need"))
            && err.contains("could not be allocated"),
        "{err}"
    );
    // About 500 MiB of weights under an 800 MiB limit: the weights fit
    // (with up to 300 MiB for the process itself, as under emulation), the
    // file's bytes (as many again) do not.
    let params = parameters(1792);
    assert!((450 << 20..550 << 20).contains(&(params * 4)), "{params}");
    let o = random_checkpoint_limited(dir.path(), 1792, 800 << 10);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("bytes could not be allocated"), "{err}");
    // Nothing is left behind.
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".safetensors") || n.contains(".tmp"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}
