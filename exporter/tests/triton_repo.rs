//! `tcanet-export triton-repo`: the written config.pbtxt is parsed against
//! Triton's own schema (`tritonclient.grpc.model_config_pb2`, protobuf's
//! strict text parser: an unknown field or a wrong value fails), and its
//! values are those asked for; the model beside it is the export.
mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::*;
use tcanet_models::ModelConfig;

fn export(args: &[&dyn AsRef<std::ffi::OsStr>]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tcanet-export"))
        .args(args.iter().map(|a| a.as_ref()))
        .output()
        .unwrap()
}

/// Parses `config` with Triton's ModelConfig message; returns it as JSON
/// (protobuf's own conversion), or the parser's error.
fn parse_with_triton_schema(config: &Path) -> Result<serde_json::Value, String> {
    let script = "import sys\n\
from google.protobuf import text_format, json_format\n\
from tritonclient.grpc import model_config_pb2\n\
cfg = text_format.Parse(open(sys.argv[1]).read(), model_config_pb2.ModelConfig())\n\
print(json_format.MessageToJson(cfg, preserving_proto_field_name=True))\n";
    let out = Command::new(venv().join("bin/python"))
        .args(["-c", script])
        .arg(config)
        .output()
        .expect("the venv's python runs (make setup)");
    if out.status.success() {
        Ok(serde_json::from_slice(&out.stdout).unwrap())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

#[test]
fn repository_from_a_checkpoint_parses_with_tritons_schema() {
    let dir = tempfile::tempdir().unwrap();
    let (ckpt, _) = random_checkpoint(dir.path(), "tiny", &ModelConfig::tiny(), 1);
    let repo = dir.path().join("repo");
    let out = export(&[
        &"triton-repo",
        &ckpt,
        &"--out",
        &repo,
        &"--max-batch",
        &"16",
        &"--instances",
        &"2",
        &"--tensorrt",
        &"--fp16",
        &"--trt-workspace-mib",
        &"512",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let model = repo.join("tcanet/1/model.onnx");
    assert_onnx_checker_accepts(&model);
    let config = repo.join("tcanet/config.pbtxt");
    let cfg = parse_with_triton_schema(&config).unwrap();
    assert_eq!(cfg["name"], "tcanet");
    assert_eq!(cfg["platform"], "onnxruntime_onnx");
    assert_eq!(cfg["max_batch_size"], 16);
    assert_eq!(cfg["input"][0]["name"], "features");
    assert_eq!(cfg["input"][0]["data_type"], "TYPE_FP32");
    // int64 fields come back as strings from protobuf's JSON.
    assert_eq!(cfg["input"][0]["dims"], serde_json::json!(["32", "64"]));
    assert_eq!(cfg["input"][1]["dims"], serde_json::json!(["-1", "2"]));
    let outputs: Vec<&str> = cfg["output"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["name"].as_str().unwrap())
        .collect();
    // In the ONNX file's order.
    let want = [
        "proposals_1",
        "iou_1",
        "proposals_2",
        "iou_2",
        "proposals_3",
        "iou_3",
    ];
    assert_eq!(outputs, want);
    assert_eq!(cfg["output"][5]["dims"], serde_json::json!(["-1"]));
    assert_eq!(
        cfg["dynamic_batching"]["max_queue_delay_microseconds"],
        "1000"
    );
    assert_eq!(cfg["instance_group"][0]["count"], 2);
    assert_eq!(cfg["instance_group"][0]["kind"], "KIND_GPU");
    let trt = &cfg["optimization"]["execution_accelerators"]["gpu_execution_accelerator"][0];
    assert_eq!(trt["name"], "tensorrt");
    assert_eq!(trt["parameters"]["precision_mode"], "FP16");
    assert_eq!(
        trt["parameters"]["max_workspace_size_bytes"],
        (512u64 << 20).to_string()
    );

    // The schema check can fail: an unknown field is refused.
    let text = std::fs::read_to_string(&config).unwrap();
    let broken = dir.path().join("broken.pbtxt");
    std::fs::write(&broken, text.replace("max_batch_size:", "max_batch_sise:")).unwrap();
    let e = parse_with_triton_schema(&broken).unwrap_err();
    assert!(e.contains("max_batch_sise"), "{e}");
}

#[test]
fn onnx_input_without_batching_on_cpu_and_refusals() {
    let dir = tempfile::tempdir().unwrap();
    let (ckpt, _) = random_checkpoint(dir.path(), "tiny", &ModelConfig::tiny(), 2);
    let onnx = dir.path().join("m.onnx");
    let out = export(&[&ckpt, &"-o", &onnx, &"--dynamic-time"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let repo = dir.path().join("repo");
    let out = export(&[
        &"triton-repo",
        &onnx,
        &"--out",
        &repo,
        &"--max-batch",
        &"0",
        &"--cpu",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::read(repo.join("tcanet/1/model.onnx")).unwrap(),
        std::fs::read(&onnx).unwrap(),
        "the model is copied as it is"
    );
    let cfg = parse_with_triton_schema(&repo.join("tcanet/config.pbtxt")).unwrap();
    assert!(
        cfg.get("max_batch_size").is_none(),
        "0 is protobuf's default: {cfg}"
    );
    assert!(cfg.get("dynamic_batching").is_none());
    // No batching: B is in the dims; a symbolic T is -1.
    assert_eq!(
        cfg["input"][0]["dims"],
        serde_json::json!(["-1", "32", "-1"])
    );
    assert_eq!(cfg["instance_group"][0]["kind"], "KIND_CPU");
    assert!(cfg.get("optimization").is_none());

    for (args, needle) in [
        (vec!["--fp16"], "--tensorrt"),
        (vec!["--cpu", "--tensorrt"], "--tensorrt"),
        (vec!["--max-batch", "2000"], "--max-batch"),
        (vec!["--instances", "0"], "--instances"),
    ] {
        let mut all: Vec<&dyn AsRef<std::ffi::OsStr>> =
            vec![&"triton-repo", &onnx, &"--out", &repo];
        for a in &args {
            all.push(a);
        }
        let out = export(&all);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(needle),
            "{args:?}"
        );
    }
    // Not a TCANet model: named.
    let not = dir.path().join("not.onnx");
    std::fs::write(&not, b"not an onnx file").unwrap();
    let out = export(&[&"triton-repo", &not, &"--out", &repo]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not.onnx"));
}
