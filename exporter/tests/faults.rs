//! The fault corpus of `tcanet-export`: damaged ONNX files and checkpoints,
//! a model whose output has the wrong size, outputs that must not be
//! written (onto an input, into a missing or unwritable directory), special
//! outputs (/dev/null, /dev/full, a closed pipe), and every numeric flag of
//! every subcommand with 0, -1, NaN, inf and huge values. Each case runs the
//! real binary on real files and asserts the exit status, what the message
//! names, that nothing panicked or died of a signal, that the message has no
//! Debug formatting, and that the inputs are unchanged. A property test
//! decodes arbitrary and mutated ONNX bytes with `inspect`'s decoder.
mod common;

use std::ffi::OsString;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

use common::*;
use proptest::prelude::*;
use prost::Message;
use tcanet_exporter::inspect::inspect_bytes;
use tcanet_exporter::onnx_proto::{attribute_type, AttributeProto, ModelProto, NodeProto};
use tcanet_models::ModelConfig;

/// Texts no user-facing message may hold (Debug formatting, panics).
const FORBIDDEN: [&str; 4] = ["Some(", "{ ", "Os {", "panicked"];

/// Where standard output goes.
#[derive(Clone, Copy, PartialEq)]
enum Stdout {
    Captured,
    /// A pipe whose reader is gone before the program writes.
    Closed,
    /// `/dev/full`: every write fails with ENOSPC.
    Full,
}

fn exe() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tcanet-export"))
}

fn run_to(args: &[OsString], stdout: Stdout) -> Output {
    let mut cmd = exe();
    cmd.args(args).stdin(Stdio::null()).stderr(Stdio::piped());
    match stdout {
        Stdout::Captured => cmd.output().unwrap(),
        Stdout::Full => {
            let full = std::fs::OpenOptions::new()
                .write(true)
                .open("/dev/full")
                .unwrap();
            cmd.stdout(full).output().unwrap()
        }
        Stdout::Closed => {
            // The read end is closed before the program starts (not after,
            // when a process forked meanwhile by another test thread could
            // still hold it and take the write).
            let (reader, writer) = std::io::pipe().unwrap();
            drop(reader);
            cmd.stdout(writer).output().unwrap()
        }
    }
}

fn os(args: &[&dyn AsRef<std::ffi::OsStr>]) -> Vec<OsString> {
    args.iter().map(|a| a.as_ref().to_os_string()).collect()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Asserts what every run must satisfy: an exit status (no signal), no
/// panic, no Debug formatting in the messages.
fn assert_clean(name: &str, o: &Output) {
    let err = stderr(o);
    assert!(
        o.status.code().is_some(),
        "{name}: killed by a signal: {err}"
    );
    for f in FORBIDDEN {
        assert!(!err.contains(f), "{name}: message holds `{f}`: {err}");
    }
}

/// The shared inputs.
struct Fx {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    ckpt: PathBuf,
    model: PathBuf,
    dynamic: PathBuf,
    /// A checkpoint of another config than `model`'s.
    other_ckpt: PathBuf,
}

fn fixture() -> Fx {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().to_path_buf();
    let (ckpt, _) = random_checkpoint(&root, "tiny", &ModelConfig::tiny(), 31);
    let (other_ckpt, _) = random_checkpoint(&root, "other", &six_heads_config(), 32);
    let model = root.join("tiny.onnx");
    let dynamic = root.join("dynamic.onnx");
    for (out, extra) in [(&model, None), (&dynamic, Some("--dynamic-time"))] {
        let mut args = os(&[&ckpt, &"-o", out]);
        args.extend(extra.map(OsString::from));
        let o = run_to(&args, Stdout::Captured);
        assert!(o.status.success(), "{}", stderr(&o));
    }
    Fx {
        _tmp: tmp,
        root,
        ckpt,
        model,
        dynamic,
        other_ckpt,
    }
}

/// One fault: the command, the status it must end with (`None`: any
/// status, only cleanliness is checked), and what the message names.
struct Case {
    name: &'static str,
    args: Vec<OsString>,
    stdout: Stdout,
    status: Option<i32>,
    needles: Vec<String>,
}

fn case(name: &'static str, status: i32, needles: &[&str], args: Vec<OsString>) -> Case {
    Case {
        name,
        args,
        stdout: Stdout::Captured,
        status: Some(status),
        needles: needles.iter().map(|s| s.to_string()).collect(),
    }
}

impl Case {
    fn stdout(mut self, s: Stdout) -> Self {
        self.stdout = s;
        self
    }

    fn any_status(mut self) -> Self {
        self.status = None;
        self
    }
}

/// Writes `bytes` to `dir/name`.
fn file(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

/// A copy of `model` whose `iou_1` is twice as long as the contract says
/// (the real output concatenated with itself along N).
fn wrong_shaped_model(model: &Path, out: &Path) {
    let mut proto = ModelProto::decode(std::fs::read(model).unwrap().as_slice()).unwrap();
    let graph = proto.graph.as_mut().unwrap();
    let node = graph
        .node
        .iter_mut()
        .find(|n| n.output.iter().any(|o| o == "iou_1"))
        .unwrap();
    for o in &mut node.output {
        if o == "iou_1" {
            *o = "iou_1_raw".into();
        }
    }
    graph.node.push(NodeProto {
        input: vec!["iou_1_raw".into(), "iou_1_raw".into()],
        output: vec!["iou_1".into()],
        name: "fault/double_iou_1".into(),
        op_type: "Concat".into(),
        attribute: vec![AttributeProto {
            name: "axis".into(),
            r#type: attribute_type::INT,
            i: 1,
            ..Default::default()
        }],
        ..Default::default()
    });
    std::fs::write(out, proto.encode_to_vec()).unwrap();
}

/// A copy of `model` with metadata entry `key` set to `value`.
fn with_metadata(model: &Path, out: &Path, key: &str, value: &str) {
    let mut proto = ModelProto::decode(std::fs::read(model).unwrap().as_slice()).unwrap();
    let entry = proto
        .metadata_props
        .iter_mut()
        .find(|e| e.key == key)
        .unwrap();
    entry.value = value.into();
    std::fs::write(out, proto.encode_to_vec()).unwrap();
}

/// An inputs file for `verify --inputs` with the given shapes.
fn inputs_file(path: &Path, features: Vec<usize>, proposals: Vec<usize>, with_proposals: bool) {
    let cfg = ModelConfig::tiny();
    let mut tensors = std::collections::BTreeMap::new();
    let mut shapes = std::collections::HashMap::new();
    let nf: usize = features.iter().product();
    tensors.insert("features".to_string(), vec![0.25f32; nf]);
    shapes.insert("features".to_string(), features);
    if with_proposals {
        let np: usize = proposals.iter().product();
        let values = (0..np).map(|i| (i % 7) as f32 / 10.0).collect();
        tensors.insert("proposals".to_string(), values);
        shapes.insert("proposals".to_string(), proposals);
    }
    write_plain(path, &cfg, &tensors, &shapes, false);
}

/// The damaged files of the corpus, in `dir`.
struct Damaged {
    garbage_onnx: PathBuf,
    truncated_onnx: PathBuf,
    empty_onnx: PathBuf,
    garbage_ckpt: PathBuf,
    truncated_ckpt: PathBuf,
    huge_header_ckpt: PathBuf,
    bad_header_ckpt: PathBuf,
    garbage_pth: PathBuf,
    wrong_shape: PathBuf,
    bad_precision: PathBuf,
    bad_config: PathBuf,
}

fn damaged(fx: &Fx, dir: &Path) -> Damaged {
    let model = std::fs::read(&fx.model).unwrap();
    let ckpt = std::fs::read(&fx.ckpt).unwrap();
    let noise: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let mut huge = u64::MAX.to_le_bytes().to_vec();
    huge.extend_from_slice(b"{}");
    let mut bad = 12u64.to_le_bytes().to_vec();
    bad.extend_from_slice(b"{\"a\": [1, 2");
    let wrong_shape = dir.join("wrong_shape.onnx");
    wrong_shaped_model(&fx.model, &wrong_shape);
    let bad_precision = dir.join("bad_precision.onnx");
    with_metadata(&fx.model, &bad_precision, "tcanet.precision", "int4");
    Damaged {
        garbage_onnx: file(dir, "garbage.onnx", &noise),
        truncated_onnx: file(dir, "truncated.onnx", &model[..model.len() / 2]),
        empty_onnx: file(dir, "empty.onnx", b""),
        garbage_ckpt: file(dir, "garbage.safetensors", &noise),
        truncated_ckpt: file(dir, "truncated.safetensors", &ckpt[..ckpt.len() / 3]),
        huge_header_ckpt: file(dir, "huge_header.safetensors", &huge),
        bad_header_ckpt: file(dir, "bad_header.safetensors", &bad),
        garbage_pth: file(dir, "garbage.pth.tar", &noise),
        wrong_shape,
        bad_precision,
        bad_config: file(dir, "bad_config.json", b"{\"feat_dim\": -3"),
    }
}

/// Damaged and hostile input files.
fn input_cases(fx: &Fx, d: &Damaged) -> Vec<Case> {
    let (ckpt, model, out) = (&fx.ckpt, &fx.model, fx.root.join("out.onnx"));
    vec![
        case(
            "inspect garbage",
            2,
            &["garbage.onnx", "not an ONNX model"],
            os(&[&"inspect", &d.garbage_onnx]),
        ),
        case(
            "inspect truncated",
            2,
            &["truncated.onnx", "not an ONNX model"],
            os(&[&"inspect", &d.truncated_onnx]),
        ),
        case(
            "inspect missing",
            2,
            &["missing.onnx", "cannot read"],
            os(&[&"inspect", &fx.root.join("missing.onnx")]),
        ),
        case(
            "inspect directory",
            2,
            &["cannot read"],
            os(&[&"inspect", &fx.root]),
        ),
        case(
            "verify garbage model",
            2,
            &["garbage.onnx"],
            os(&[&"verify", ckpt, &d.garbage_onnx]),
        ),
        case(
            "verify truncated model",
            2,
            &["truncated.onnx"],
            os(&[&"verify", ckpt, &d.truncated_onnx]),
        ),
        case(
            "verify empty model",
            2,
            &["empty.onnx"],
            os(&[&"verify", ckpt, &d.empty_onnx]),
        ),
        case(
            "inspect empty model",
            2,
            &["empty.onnx", "it holds no graph (0 bytes)"],
            os(&[&"inspect", &d.empty_onnx]),
        ),
        case(
            "verify a device as the model",
            2,
            &["/dev/null", "it holds no graph"],
            os(&[&"verify", ckpt, &"/dev/null"]),
        ),
        case(
            "bench garbage model",
            2,
            &["garbage.onnx"],
            os(&[&"bench", &d.garbage_onnx]),
        ),
        case(
            "bench truncated model",
            2,
            &["truncated.onnx"],
            os(&[&"bench", &d.truncated_onnx]),
        ),
        case(
            "bench empty model",
            2,
            &["empty.onnx", "it holds no graph"],
            os(&[&"bench", &d.empty_onnx]),
        ),
        case(
            "export garbage checkpoint",
            2,
            &["garbage.safetensors"],
            os(&[&d.garbage_ckpt, &"-o", &out]),
        ),
        case(
            "export truncated checkpoint",
            2,
            &["truncated.safetensors"],
            os(&[&d.truncated_ckpt, &"-o", &out]),
        ),
        case(
            "export huge header",
            2,
            &["huge_header.safetensors", "header"],
            os(&[&d.huge_header_ckpt, &"-o", &out]),
        ),
        case(
            "export bad header",
            2,
            &["bad_header.safetensors"],
            os(&[&d.bad_header_ckpt, &"-o", &out]),
        ),
        case(
            "export model as checkpoint",
            2,
            &["tiny.onnx"],
            os(&[model, &"-o", &out]),
        ),
        case(
            "verify garbage checkpoint",
            2,
            &["garbage.safetensors"],
            os(&[&"verify", &d.garbage_ckpt, model]),
        ),
        case(
            "verify unreadable precision",
            2,
            &["bad_precision.onnx", "tcanet.precision", "'int4'"],
            os(&[&"verify", ckpt, &d.bad_precision]),
        ),
        case(
            "verify other config",
            2,
            &["another model config", "tiny.onnx"],
            os(&[&"verify", &fx.other_ckpt, model]),
        ),
        case(
            "convert garbage",
            2,
            &["garbage.pth.tar"],
            os(&[
                &"convert",
                &d.garbage_pth,
                &"-o",
                &fx.root.join("c.safetensors"),
            ]),
        ),
        case(
            "triton garbage",
            2,
            &["garbage.onnx"],
            os(&[
                &"triton-repo",
                &d.garbage_onnx,
                &"--out",
                &fx.root.join("repo"),
            ]),
        ),
        case(
            "bad config file",
            2,
            &["--config", "bad_config.json"],
            os(&[ckpt, &"--config", &d.bad_config, &"-o", &out]),
        ),
        case(
            "unknown preset",
            2,
            &["--preset", "nope"],
            os(&[ckpt, &"--preset", &"nope", &"-o", &out]),
        ),
        case("no output", 2, &["-o"], os(&[ckpt])),
        case("no checkpoint", 2, &["checkpoint"], os(&[&"-o", &out])),
        case(
            "random-checkpoint without config",
            2,
            &["--preset"],
            os(&[&"random-checkpoint", &"-o", &fx.root.join("r.safetensors")]),
        ),
        case(
            "missing ONNX Runtime",
            1,
            &["ONNX Runtime", "nowhere"],
            os(&[
                &"bench",
                model,
                &"--ort-lib",
                &fx.root.join("nowhere/libonnxruntime.so"),
            ]),
        ),
        case(
            "verify wrong-shaped output",
            1,
            &["iou_1", "6 values, expected 3 (shape [B=1, N=3])"],
            os(&[
                &"verify",
                ckpt,
                &d.wrong_shape,
                &"--batch",
                &"1",
                &"--proposals",
                &"3",
            ]),
        ),
    ]
}

/// `verify --inputs` files of bad shapes.
fn verify_input_cases(fx: &Fx, dir: &Path) -> Vec<Case> {
    let c = ModelConfig::tiny().feat_dim;
    let t = ModelConfig::tiny().temporal_scale;
    let mk = |name: &str, f: Vec<usize>, p: Vec<usize>, with_p: bool| {
        let path = dir.join(name);
        inputs_file(&path, f, p, with_p);
        path
    };
    let no_n = mk("no_n.safetensors", vec![1, c, t], vec![1, 0, 2], true);
    let batch = mk("batch.safetensors", vec![2, c, t], vec![1, 3, 2], true);
    let missing = mk("missing.safetensors", vec![1, c, t], vec![], false);
    let one_step = mk("one_step.safetensors", vec![1, c, 1], vec![1, 3, 2], true);
    let no_steps = mk("no_steps.safetensors", vec![1, c, 0], vec![1, 3, 2], true);
    let nan = dir.join("nan.safetensors");
    {
        let cfg = ModelConfig::tiny();
        let mut proposals: Vec<f32> = (0..6).map(|i| i as f32 / 10.0).collect();
        proposals[4] = f32::NAN;
        let tensors = std::collections::BTreeMap::from([
            ("features".to_string(), vec![0.25f32; c * t]),
            ("proposals".to_string(), proposals),
        ]);
        let shapes = std::collections::HashMap::from([
            ("features".to_string(), vec![1, c, t]),
            ("proposals".to_string(), vec![1, 3, 2]),
        ]);
        write_plain(&nan, &cfg, &tensors, &shapes, false);
    }
    let garbage = file(
        dir,
        "inputs_garbage.safetensors",
        b"\x08\0\0\0\0\0\0\0garbage!",
    );
    let v = |inputs: &Path, model: &Path| {
        os(&[
            &"verify",
            &fx.ckpt,
            &model,
            &"--batch",
            &"1",
            &"--proposals",
            &"2",
            &"--inputs",
            &inputs,
        ])
    };
    vec![
        case(
            "inputs with N = 0",
            2,
            &["no_n.safetensors", "proposals", "[1, 0, 2]"],
            v(&no_n, &fx.model),
        ),
        case(
            "inputs with a NaN proposal",
            2,
            &[
                "nan.safetensors",
                "`proposals`",
                "non-finite value at flat index 4",
            ],
            v(&nan, &fx.model),
        ),
        case(
            "inputs with two B",
            2,
            &["batch.safetensors", "proposals"],
            v(&batch, &fx.model),
        ),
        case(
            "inputs without proposals",
            2,
            &["missing.safetensors", "`proposals`"],
            v(&missing, &fx.model),
        ),
        case(
            "inputs not safetensors",
            2,
            &["--inputs", "inputs_garbage.safetensors"],
            v(&garbage, &fx.model),
        ),
        case(
            "inputs with T = 0, dynamic",
            2,
            &["no_steps.safetensors", "features"],
            v(&no_steps, &fx.dynamic),
        ),
        case(
            "inputs with T = 1, dynamic",
            0,
            &[],
            v(&one_step, &fx.dynamic),
        )
        .any_status(),
    ]
}

/// Outputs that must not be written, and special outputs.
fn output_cases(fx: &Fx, dir: &Path) -> Vec<Case> {
    let (ckpt, model) = (&fx.ckpt, &fx.model);
    let link = dir.join("link.safetensors");
    std::fs::hard_link(ckpt, &link).unwrap();
    let cfg = file(dir, "cfg.json", ModelConfig::tiny().to_json().as_bytes());
    let a_file = file(dir, "a_file", b"x");
    vec![
        case(
            "export onto its checkpoint",
            2,
            &["same file", "tiny.safetensors"],
            os(&[ckpt, &"-o", ckpt]),
        ),
        case(
            "export onto a hard link of it",
            2,
            &["same file", "link.safetensors"],
            os(&[&link, &"-o", ckpt]),
        ),
        case(
            "export onto its --config",
            2,
            &["same file", "cfg.json"],
            os(&[ckpt, &"--config", &cfg, &"-o", &cfg]),
        ),
        case(
            "convert onto its input",
            2,
            &["same file"],
            os(&[&"convert", &link, &"-o", ckpt]),
        ),
        case(
            "random-checkpoint onto --config",
            2,
            &["same file", "cfg.json"],
            os(&[&"random-checkpoint", &"--config", &cfg, &"-o", &cfg]),
        ),
        case(
            "bench --profile onto the model",
            2,
            &["same file", "tiny.onnx"],
            os(&[&"bench", model, &"--profile", model]),
        ),
        case(
            "bench --profile on stdout",
            2,
            &["--profile", "standard output"],
            os(&[&"bench", model, &"--profile", &"-"]),
        ),
        case(
            "triton-repo onto a file",
            2,
            &["a_file", "not a directory"],
            os(&[&"triton-repo", model, &"--out", &a_file]),
        ),
        case(
            "export into a missing directory",
            2,
            &["no directory"],
            os(&[ckpt, &"-o", &dir.join("missing/x.onnx")]),
        ),
        case(
            "export onto a directory",
            2,
            &["directory"],
            os(&[ckpt, &"-o", &dir]),
        ),
        case(
            "inspect to /dev/full",
            1,
            &["standard output"],
            os(&[&"inspect", model]),
        )
        .stdout(Stdout::Full),
        case(
            "export to /dev/full",
            1,
            &["standard output"],
            os(&[ckpt, &"-o", &"-"]),
        )
        .stdout(Stdout::Full),
        case(
            "inspect to a closed pipe",
            1,
            &[],
            os(&[&"inspect", model, &"--nodes"]),
        )
        .stdout(Stdout::Closed),
        case("export to a closed pipe", 1, &[], os(&[ckpt, &"-o", &"-"])).stdout(Stdout::Closed),
        case(
            "verify to a closed pipe",
            1,
            &[],
            os(&[
                &"verify",
                ckpt,
                model,
                &"--batch",
                &"1",
                &"--proposals",
                &"2",
            ]),
        )
        .stdout(Stdout::Closed),
    ]
}

/// Every file under `dir` with its content.
fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(snapshot(&p));
        } else {
            out.push((p.clone(), std::fs::read(&p).unwrap()));
        }
    }
    out.sort();
    out
}

/// Runs the cases; returns how many ran.
fn run_cases(cases: &[Case], watched: &Path) -> usize {
    for c in cases {
        let before = snapshot(watched);
        let o = run_to(&c.args, c.stdout);
        assert_clean(c.name, &o);
        let err = stderr(&o);
        if let Some(s) = c.status {
            assert_eq!(o.status.code(), Some(s), "{}: {err}", c.name);
        }
        for n in &c.needles {
            assert!(
                err.contains(n.as_str()),
                "{}: message lacks `{n}`: {err}",
                c.name
            );
        }
        if c.status != Some(0) {
            assert_eq!(snapshot(watched), before, "{}: files changed", c.name);
        }
        if std::env::var_os("TCANET_FAULTS_SHOW").is_some() {
            eprintln!("{}: {:?}\n{err}", c.name, o.status.code());
        }
    }
    cases.len()
}

#[test]
fn every_fault_is_a_clean_error() {
    let fx = fixture();
    let dir = fx.root.join("faults");
    std::fs::create_dir_all(&dir).unwrap();
    let d = damaged(&fx, &dir);
    let mut cases = input_cases(&fx, &d);
    cases.extend(verify_input_cases(&fx, &dir));
    cases.extend(output_cases(&fx, &dir));
    let n = run_cases(&cases, &fx.root);
    eprintln!("{n} fault cases: each a clean error with the documented status");
    assert!(n >= 30);
}

#[test]
fn dev_null_stays_a_device() {
    let fx = fixture();
    for args in [
        os(&[&fx.ckpt, &"-o", &"/dev/null"]),
        os(&[
            &"random-checkpoint",
            &"--preset",
            &"tiny",
            &"-o",
            &"/dev/null",
        ]),
        os(&[
            &"bench",
            &fx.model,
            &"--runs",
            &"1",
            &"--proposals",
            &"2",
            &"--profile",
            &"/dev/null",
        ]),
    ] {
        let o = run_to(&args, Stdout::Captured);
        assert_clean("/dev/null", &o);
        assert!(o.status.success(), "{}", stderr(&o));
        let t = std::fs::metadata("/dev/null").unwrap().file_type();
        assert!(t.is_char_device(), "/dev/null is no longer a device");
    }
}

#[test]
fn an_unwritable_directory_is_refused_before_any_work() {
    use std::os::unix::fs::PermissionsExt;
    let fx = fixture();
    let dir = fx.root.join("locked");
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o555)).unwrap();
    if std::fs::write(dir.join("probe"), b"").is_ok() {
        eprintln!("skipped: running as root, a read-only directory is still writable");
        return;
    }
    for args in [
        os(&[&fx.ckpt, &"-o", &dir.join("x.onnx")]),
        os(&[
            &"random-checkpoint",
            &"--preset",
            &"tiny",
            &"-o",
            &dir.join("r.safetensors"),
        ]),
        os(&[&"triton-repo", &fx.model, &"--out", &dir.join("repo")]),
    ] {
        let o = run_to(&args, Stdout::Captured);
        assert_clean("locked", &o);
        assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
        assert!(stderr(&o).contains("locked"), "{}", stderr(&o));
    }
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
}

/// A numeric flag, the base command it is tried in, and which of the tried
/// values it accepts (a documented meaning: 0 warm-up runs, ...).
struct Flag {
    name: &'static str,
    accepts: &'static [&'static str],
}

const VALUES: [&str; 6] = ["0", "-1", "nan", "inf", "1e30", "99999999999999999999999"];

const fn flag(name: &'static str, accepts: &'static [&'static str]) -> Flag {
    Flag { name, accepts }
}

#[test]
fn every_numeric_flag_refuses_out_of_range_values() {
    let fx = fixture();
    let out = fx.root.join("flags");
    std::fs::create_dir_all(&out).unwrap();
    let ckpt = fx.ckpt.as_os_str();
    let model = fx.model.as_os_str();
    let onnx_out = out.join("x.onnx");
    let repo = out.join("repo");
    let random_out = out.join("r.safetensors");
    let table: Vec<(Vec<&std::ffi::OsStr>, Vec<Flag>)> = vec![
        (
            vec![ckpt, "-o".as_ref(), onnx_out.as_os_str()],
            vec![flag("--opset", &[]), flag("--gather-chunk-mib", &[])],
        ),
        (
            vec![
                "verify".as_ref(),
                ckpt,
                model,
                "--batch".as_ref(),
                "1".as_ref(),
                "--proposals".as_ref(),
                "2".as_ref(),
            ],
            vec![
                flag("--seed", &["0"]),
                flag("--proposals-tol", &[]),
                flag("--iou-tol", &[]),
            ],
        ),
        (
            vec!["verify".as_ref(), ckpt, model],
            vec![flag("--batch", &[]), flag("--proposals", &[])],
        ),
        (
            vec![
                "bench".as_ref(),
                model,
                "--runs".as_ref(),
                "1".as_ref(),
                "--proposals".as_ref(),
                "2".as_ref(),
            ],
            vec![
                flag("--warmup", &["0"]),
                flag("--threads", &["0"]),
                flag("--cpu-ghz", &[]),
                flag("--batch", &[]),
            ],
        ),
        (
            vec!["bench".as_ref(), model],
            vec![flag("--runs", &[]), flag("--proposals", &[])],
        ),
        (
            vec![
                "triton-repo".as_ref(),
                model,
                "--out".as_ref(),
                repo.as_os_str(),
            ],
            vec![
                flag("--max-batch", &["0"]),
                flag("--max-queue-delay-us", &["0"]),
                flag("--instances", &[]),
                flag("--trt-workspace-mib", &[]),
            ],
        ),
        (
            vec![
                "random-checkpoint".as_ref(),
                "--preset".as_ref(),
                "tiny".as_ref(),
                "-o".as_ref(),
                random_out.as_os_str(),
            ],
            vec![flag("--seed", &["0"])],
        ),
    ];
    let (mut flags, mut runs) = (0, 0);
    for (base, list) in &table {
        for f in list {
            flags += 1;
            for v in VALUES {
                runs += 1;
                let mut args: Vec<OsString> = base.iter().map(|a| a.to_os_string()).collect();
                args.push(f.name.into());
                args.push(v.into());
                let o = run_to(&args, Stdout::Captured);
                let what = format!("{} {v}", f.name);
                assert_clean(&what, &o);
                let err = stderr(&o);
                if f.accepts.contains(&v) {
                    assert_eq!(o.status.code(), Some(0), "{what}: {err}");
                } else {
                    assert_eq!(o.status.code(), Some(2), "{what}: {err}");
                    assert!(
                        err.contains(f.name) && err.contains("must be"),
                        "{what}: {err}"
                    );
                }
            }
        }
    }
    eprintln!(
        "{flags} numeric flags × {} values: {runs} runs",
        VALUES.len()
    );
}

/// The bytes of a valid model, built in this process.
fn valid_model_bytes() -> &'static [u8] {
    static BYTES: OnceLock<Vec<u8>> = OnceLock::new();
    BYTES.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let (_, ckpt) = random_checkpoint(dir.path(), "p", &ModelConfig::tiny(), 33);
        let opts = tcanet_exporter::ExportOptions::default();
        tcanet_exporter::build_model(&ckpt, &opts)
            .unwrap()
            .encode_to_vec()
    })
}

proptest! {
    #![proptest_config(tcanet_testkit::proptest_config())]

    #[test]
    fn arbitrary_bytes_decode_or_fail_without_panic(
        bytes in proptest::collection::vec(any::<u8>(), 0..2048)
    ) {
        if let Ok(summary) = inspect_bytes(Path::new("x.onnx"), &bytes) {
            let _ = summary.to_string();
        }
    }

    #[test]
    fn mutated_models_decode_or_fail_without_panic(
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..24),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut bytes = valid_model_bytes().to_vec();
        for (at, value) in edits {
            let i = at.index(bytes.len());
            bytes[i] = value;
        }
        let keep = cut.index(bytes.len() + 1);
        for b in [&bytes[..], &bytes[..keep]] {
            match inspect_bytes(Path::new("m.onnx"), b) {
                Ok(summary) => { let _ = summary.to_string(); }
                Err(e) => {
                    let text = e.to_string();
                    prop_assert!(text.contains("m.onnx"), "{}", text);
                    for f in FORBIDDEN {
                        prop_assert!(!text.contains(f), "{}", text);
                    }
                }
            }
        }
    }
}
