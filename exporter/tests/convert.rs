//! `tcanet-export convert` on checkpoints written by the real torch in every
//! layout of the authors' release (zip and legacy format, DataParallel keys
//! with `mask_matrix`, a real AdamW state, non-contiguous strides, a storage
//! offset, pickle protocol 4): the converted weights are exported to ONNX and
//! run by ONNX Runtime, and must reproduce PyTorch's own outputs. Bad inputs
//! fail with exit 2, a message naming the file and what is wrong, and no
//! output left behind.
mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use common::*;
use tcanet_exporter::ort_run::OnnxModel;
use tcanet_exporter::reference::StageOutputs;
use tcanet_exporter::verify::{compare, Tolerances};
use tcanet_exporter::Precision;
use tcanet_models::checkpoint::{Checkpoint, ConfigOverride};

fn read_checkpoint(path: &Path) -> Checkpoint {
    Checkpoint::load(path, &ConfigOverride::Embedded).unwrap()
}
use tcanet_models::pytorch::convert::KEY_CONVERTED_FROM;
use tcanet_models::ModelConfig;

/// Videos and proposals per video of the saved inputs.
const B: usize = 2;
const N: usize = 12;

/// Files the script writes for one config.
struct Release {
    dir: PathBuf,
    cfg: ModelConfig,
    cfg_file: PathBuf,
}

/// The release files of the tiny preset and of a seconds-timeline config,
/// written once per test run by tests/data/release_checkpoint.py.
fn releases() -> &'static [Release; 2] {
    static FILES: OnceLock<[Release; 2]> = OnceLock::new();
    FILES.get_or_init(|| {
        let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("convert-release");
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).unwrap();
        let make = |name: &str, cfg: ModelConfig| {
            let cfg_file = root.join(format!("{name}.json"));
            std::fs::write(&cfg_file, cfg.to_json()).unwrap();
            Release {
                dir: root.join(name),
                cfg,
                cfg_file,
            }
        };
        let files = [
            make("tiny", ModelConfig::tiny()),
            make("seconds", small_seconds_config()),
        ];
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/release_checkpoint.py");
        let mut cmd = Command::new(venv().join("bin/python"));
        cmd.arg(script);
        for (seed, r) in files.iter().enumerate() {
            cmd.arg(&r.cfg_file)
                .arg(&r.dir)
                .arg((seed + 11).to_string())
                .arg(B.to_string())
                .arg(N.to_string());
        }
        let out = cmd.output().expect("the venv's python runs");
        assert!(
            out.status.success(),
            "release_checkpoint.py failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        files
    })
}

fn run(args: &[&dyn AsRef<std::ffi::OsStr>]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tcanet-export"))
        .args(args.iter().map(|a| a.as_ref()))
        .output()
        .unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn read_raw<T, const W: usize>(path: &Path, f: fn([u8; W]) -> T) -> Vec<T> {
    std::fs::read(path)
        .unwrap()
        .chunks_exact(W)
        .map(|c| f(c.try_into().unwrap()))
        .collect()
}

/// Exports `ckpt` with the CLI, runs it on the saved inputs in ONNX Runtime
/// and compares with the outputs PyTorch computed.
fn assert_matches_pytorch(ckpt: &Path, r: &Release, work: &Path) {
    let model = work.join("model.onnx");
    let o = run(&[&ckpt, &"-o", &model]);
    assert!(o.status.success(), "{}", stderr(&o));
    let features = read_raw(&r.dir.join("features.f32"), f32::from_le_bytes);
    let proposals = read_raw(&r.dir.join("proposals.f32"), f32::from_le_bytes);
    let stage =
        |name: &str, k: usize| read_raw(&r.dir.join(format!("{name}_{k}.f64")), f64::from_le_bytes);
    let torch = StageOutputs {
        proposals: [1, 2, 3].map(|k| stage("proposals", k)),
        iou: [1, 2, 3].map(|k| stage("iou", k)),
    };
    let mut m = OnnxModel::load(&model, 1).unwrap();
    let shape = [B, r.cfg.feat_dim, r.cfg.temporal_scale];
    let onnx = m.run(&features, shape, &proposals, N).unwrap();
    let report = compare(
        &format!("{} vs PyTorch", ckpt.display()),
        &onnx,
        &torch,
        Tolerances::for_precision(Precision::Fp32),
    )
    .unwrap();
    eprint!("{report}");
    assert!(report.passed(), "{report}");
    // The refinement must move the proposals, or parity proves little.
    let moved = torch.proposals[2]
        .iter()
        .zip(&proposals)
        .filter(|(a, b)| (**a - **b as f64).abs() > 1e-3)
        .count();
    assert!(moved > N, "stage 3 left most proposals where they were");
}

#[test]
fn every_release_layout_converts_to_the_same_weights_and_matches_pytorch() {
    let r = &releases()[0];
    let work = tempfile::tempdir().unwrap();
    let files = [
        ("TCA_best.pth.tar", 7),
        ("TCA_best_legacy.pth.tar", 7),
        ("TCA_best_p4.pth.tar", 7),
        ("epoch-5.pth.tar", 5),
        ("epoch-5_legacy.pth.tar", 5),
        ("bare.pth", 0),
    ];
    let mut first = None;
    for (name, epoch) in files {
        let out = work.path().join(format!("{name}.safetensors"));
        // No --preset: the tiny preset is recognised from the shapes.
        let o = run(&[&"convert", &r.dir.join(name), &"-o", &out]);
        assert!(o.status.success(), "{name}: {}", stderr(&o));
        assert!(stderr(&o).contains("preset tiny"), "{}", stderr(&o));
        let ck = read_checkpoint(&out);
        assert_eq!(ck.config, r.cfg, "{name}");
        assert!(ck.config_embedded, "{name}");
        assert_eq!(
            (ck.position.epoch, ck.position.global_step),
            (epoch, 0),
            "{name}"
        );
        assert!(ck.metadata[KEY_CONVERTED_FROM].contains(name));
        assert!(ck.train_state.is_none(), "{name}");
        match &first {
            None => first = Some(ck.tensors),
            Some(t) => assert!(*t == ck.tensors, "{name} converts to other weights"),
        }
    }
    assert_matches_pytorch(
        &work.path().join("TCA_best.pth.tar.safetensors"),
        r,
        work.path(),
    );
}

#[test]
fn a_seconds_timeline_config_converts_with_its_config_file() {
    let r = &releases()[1];
    let work = tempfile::tempdir().unwrap();
    let out = work.path().join("seconds.safetensors");
    let input = r.dir.join("TCA_best_legacy.pth.tar");
    // No preset has these shapes: the error lists what the weights show.
    let o = run(&[&"convert", &input, &"-o", &out]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(
        err.contains("no preset matches") && err.contains("feat_dim 12"),
        "{err}"
    );
    assert!(err.contains("TCA_best_legacy.pth.tar"), "{err}");
    assert!(!out.exists());
    let o = run(&[&"convert", &input, &"--config", &r.cfg_file, &"-o", &out]);
    assert!(o.status.success(), "{}", stderr(&o));
    let ck = read_checkpoint(&out);
    assert_eq!(ck.config, r.cfg);
    assert!(!r.cfg.normalize_by_duration);
    assert_matches_pytorch(&out, r, work.path());
}

/// Asserts a failed conversion: exit 2, `needles` in the message, no output.
fn assert_convert_fails(input: &Path, extra: &[&dyn AsRef<std::ffi::OsStr>], needles: &[&str]) {
    let work = tempfile::tempdir().unwrap();
    let out = work.path().join("out.safetensors");
    let mut args: Vec<&dyn AsRef<std::ffi::OsStr>> = vec![&"convert", &input, &"-o", &out];
    args.extend_from_slice(extra);
    let o = run(&args);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let err = stderr(&o);
    for n in needles {
        assert!(err.contains(n), "error should name `{n}`: {err}");
    }
    assert!(!err.contains("panicked"), "{err}");
    let left: Vec<_> = std::fs::read_dir(work.path()).unwrap().collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[test]
fn damaged_and_foreign_files_fail_with_a_clear_message() {
    let r = &releases()[0];
    let work = tempfile::tempdir().unwrap();
    for (name, keep) in [
        ("TCA_best.pth.tar", 2),
        ("TCA_best_legacy.pth.tar", 2),
        ("epoch-5_legacy.pth.tar", 3),
    ] {
        let bytes = std::fs::read(r.dir.join(name)).unwrap();
        let cut = work.path().join(format!("cut-{name}"));
        std::fs::write(&cut, &bytes[..bytes.len() * keep / 4]).unwrap();
        assert_convert_fails(&cut, &[], &[format!("cut-{name}").as_str()]);
    }
    let legacy = std::fs::read(r.dir.join("TCA_best_legacy.pth.tar")).unwrap();
    let cut = work.path().join("cut-in-storage.pth.tar");
    std::fs::write(&cut, &legacy[..legacy.len() - 10]).unwrap();
    assert_convert_fails(&cut, &[], &["storage", "ends inside its data"]);
    assert_convert_fails(
        &r.dir.join("not_a_checkpoint.pth"),
        &[],
        &["no TCANet state dict", "'foo'"],
    );
    assert_convert_fails(
        &r.dir.join("features.f32"),
        &[],
        &["not a PyTorch checkpoint"],
    );
    assert_convert_fails(&r.dir.join("mmaction2.pth"), &[], &["MMAction2"]);
    let empty = work.path().join("empty.pth");
    std::fs::write(&empty, b"").unwrap();
    assert_convert_fails(&empty, &[], &["empty"]);
}

#[test]
fn a_config_that_does_not_match_the_weights_is_named() {
    let r = &releases()[0];
    let input = r.dir.join("TCA_best.pth.tar");
    assert_convert_fails(
        &input,
        &[&"--preset", &"hacs"],
        &["x_1d_b_f.0.weight", "feat_dim 2304", "does not match"],
    );
    assert_convert_fails(&input, &[&"--preset", &"bmn"], &["unknown preset"]);
    let work = tempfile::tempdir().unwrap();
    let with = |name: &str, cfg: ModelConfig| {
        let p = work.path().join(name);
        std::fs::write(&p, cfg.to_json()).unwrap();
        p
    };
    let window = with(
        "window.json",
        ModelConfig {
            window_size: 7,
            ..ModelConfig::tiny()
        },
    );
    assert_convert_fails(
        &input,
        &[&"--config", &window],
        &["mask_matrix", "window_size 7"],
    );
    let heads = with(
        "heads.json",
        ModelConfig {
            heads: 8,
            ..ModelConfig::tiny()
        },
    );
    assert_convert_fails(&input, &[&"--config", &heads], &["mask_matrix", "heads"]);
    let steps = with(
        "steps.json",
        ModelConfig {
            temporal_scale: 32,
            temporal_interval: 1.0 / 32.0,
            ..ModelConfig::tiny()
        },
    );
    assert_convert_fails(&input, &[&"--config", &steps], &["temporal_scale"]);
    let layers = with(
        "layers.json",
        ModelConfig {
            lgte_num: 1,
            ..ModelConfig::tiny()
        },
    );
    assert_convert_fails(
        &input,
        &[&"--config", &layers],
        &["unexpected tensor", "lgtes.1", "lgte_num 1"],
    );
    let samples = with(
        "samples.json",
        ModelConfig {
            start_sample_num: 8,
            end_sample_num: 8,
            ..ModelConfig::tiny()
        },
    );
    assert_convert_fails(
        &input,
        &[&"--config", &samples],
        &["reg1se", "start_sample_num 8"],
    );
}

#[test]
fn damaged_real_checkpoints_never_panic() {
    use rand::{Rng, SeedableRng};
    use tcanet_models::pytorch::{convert, parse_torch_bytes, release};
    let r = &releases()[0];
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
    for name in ["TCA_best_legacy.pth.tar", "epoch-5_legacy.pth.tar"] {
        let valid = std::fs::read(r.dir.join(name)).unwrap();
        // The pickles sit at the start of a legacy file: damage lands there.
        let head = valid.len().min(6000);
        for _ in 0..150 {
            let mut bytes = valid.clone();
            for _ in 0..rng.gen_range(1..6) {
                bytes[rng.gen_range(0..head)] = rng.gen();
            }
            if rng.gen_bool(0.3) {
                bytes.truncate(rng.gen_range(0..bytes.len()));
            }
            // Whatever parses goes through the whole conversion check too.
            if let Ok(file) = parse_torch_bytes(Path::new(name), &bytes) {
                if let Ok(ckpt) = release::find_state_dict(&file.root) {
                    let _ = convert::convert(&ckpt, &convert::ConfigChoice::Infer);
                }
            }
        }
    }
}

#[test]
fn the_output_never_replaces_the_input() {
    let r = &releases()[0];
    let work = tempfile::tempdir().unwrap();
    let input = work.path().join("TCA_best.pth.tar");
    std::fs::copy(r.dir.join("TCA_best.pth.tar"), &input).unwrap();
    let before = std::fs::read(&input).unwrap();
    let same = work.path().join(".").join("TCA_best.pth.tar");
    let o = run(&[&"convert", &input, &"-o", &same]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("same file as the input"),
        "{}",
        stderr(&o)
    );
    assert_eq!(std::fs::read(&input).unwrap(), before);
    let names: Vec<_> = std::fs::read_dir(work.path()).unwrap().collect();
    assert_eq!(names.len(), 1, "left behind: {names:?}");
}
