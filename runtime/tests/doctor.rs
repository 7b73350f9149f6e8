//! `tcanet-infer doctor` and `--version` on the real binary with the real
//! ONNX Runtime of the project venv: the version it reports is checked
//! against the onnxruntime Python package's own.
mod common;

use std::process::Command;

use common::{infer, stderr, venv};

/// `onnxruntime.__version__` of the venv's Python package (whose wheel
/// ships the library the binary loads).
fn python_ort_version() -> String {
    let out = Command::new(venv().join("bin/python"))
        .args(["-c", "import onnxruntime; print(onnxruntime.__version__)"])
        .output()
        .expect("the venv's python runs");
    assert!(out.status.success(), "{}", stderr(&out));
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

#[test]
fn doctor_finds_the_library_and_its_version() {
    let o = infer(&[&"doctor"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    let version = python_ort_version();
    let line = |prefix: &str| {
        text.lines()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no `{prefix}` line in:\n{text}"))
            .to_string()
    };
    assert!(line("onnxruntime version: ").starts_with(&format!("onnxruntime version: {version} ")));
    // cargo test sets TCANET_VENV: rule 4 of the lookup order.
    assert!(
        line("onnxruntime found by: ").contains("rule 4 of 5: TCANET_VENV"),
        "{text}"
    );
    assert!(line("onnxruntime library: ").contains("libonnxruntime.so"));
    assert_eq!(
        line("provider CPUExecutionProvider"),
        "provider CPUExecutionProvider (--device cpu): compiled in, usable"
    );
    for p in ["CUDAExecutionProvider", "TensorrtExecutionProvider"] {
        line(&format!("provider {p}"));
    }
    assert!(line("tcanet: ").contains(tcanet_version::git_commit!()));
    let cores = std::thread::available_parallelism().unwrap().get();
    assert_eq!(line("logical cores: "), format!("logical cores: {cores}"));
    let isa = tcanet_models::cpu::VectorIsa::detect();
    assert!(line("vector isa: ").starts_with(&format!("vector isa: {isa}")));
    line("nominal peak: ");
    line("cpu: ");
    // Where float16 models are refused, a line says so.
    tcanet_ort::init_ort(None).unwrap();
    assert_eq!(
        text.contains("float16 models on the cpu: refused"),
        tcanet_ort::cpu_refuses_float16(),
        "{text}"
    );
}

#[test]
fn doctor_json_has_every_fact() {
    let o = infer(&[&"doctor", &"--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    for key in ["tcanet_version", "git_commit", "onnxruntime", "cpu"] {
        assert!(v.get(key).is_some(), "{key} in {v}");
    }
    let ort = &v["onnxruntime"];
    assert_eq!(ort["version"], python_ort_version().as_str());
    assert_eq!(ort["found_by"], "TCANET_VENV");
    assert_eq!(ort["rule"], 4);
    assert!(v["onnxruntime_error"].is_null());
    let names: Vec<&str> = ort["providers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "CPUExecutionProvider",
            "CUDAExecutionProvider",
            "TensorrtExecutionProvider"
        ]
    );
    let cpu_ep = &ort["providers"][0];
    assert_eq!(
        (&cpu_ep["compiled_in"], &cpu_ep["usable"]),
        (&true.into(), &true.into())
    );
    let cpu = &v["cpu"];
    for key in [
        "model",
        "logical_cores",
        "isa",
        "extensions",
        "nominal_peak_gflops",
    ] {
        assert!(cpu.get(key).is_some(), "cpu.{key} in {v}");
    }
    assert_eq!(cpu["isa"], tcanet_models::cpu::VectorIsa::detect().as_str());
    assert_eq!(
        cpu["fp16_arithmetic"],
        tcanet_models::cpu::has_fp16_arithmetic()
    );
    tcanet_ort::init_ort(None).unwrap();
    assert_eq!(
        ort["float16_refused_on_cpu"],
        tcanet_ort::cpu_refuses_float16()
    );
}

#[test]
fn doctor_without_a_library_exits_1_with_the_advice() {
    for json in [false, true] {
        let mut args: Vec<&dyn AsRef<std::ffi::OsStr>> =
            vec![&"doctor", &"--ort-lib", &"/nonexistent"];
        if json {
            args.push(&"--json");
        }
        let o = infer(&args);
        assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
        let err = stderr(&o);
        for needle in [
            "/nonexistent",
            "does not exist",
            "--ort-lib",
            "ORT_DYLIB_PATH",
            "beside this program",
        ] {
            assert!(err.contains(needle), "{needle}: {err}");
        }
        assert!(!err.contains("Os {") && !err.contains("Some("), "{err}");
        // The facts found are still printed.
        if json {
            let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
            assert!(v["onnxruntime"].is_null());
            assert!(v["onnxruntime_error"]
                .as_str()
                .unwrap()
                .contains("/nonexistent"));
            assert!(v["cpu"]["logical_cores"].as_u64().unwrap() >= 1);
        } else {
            assert!(
                stdout(&o).contains("onnxruntime: not found"),
                "{}",
                stdout(&o)
            );
        }
    }
    // A file that is not ONNX Runtime: found, but not loadable.
    let here = std::env::current_exe().unwrap();
    let o = infer(&[&"doctor", &"--ort-lib", &here]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("could not load ONNX Runtime"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn version_names_the_onnx_runtime_found_or_its_absence() {
    let o = infer(&[&"--version"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some(format!("tcanet-infer {}", tcanet_version::long_version!()).as_str())
    );
    let ort = lines.next().unwrap_or_default();
    assert!(
        ort.starts_with(&format!("ONNX Runtime: {} (", python_ort_version())),
        "{text}"
    );
    // No library anywhere (a copy of the binary outside any repository, an
    // empty TCANET_VENV): still exit 0, saying so.
    let empty = tempfile::tempdir().unwrap();
    let alone = empty.path().join("tcanet-infer");
    std::fs::copy(env!("CARGO_BIN_EXE_tcanet-infer"), &alone).unwrap();
    let o = Command::new(&alone)
        .arg("--version")
        .env("TCANET_VENV", empty.path())
        .env_remove("ORT_DYLIB_PATH")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("ONNX Runtime: not found"),
        "{}",
        stdout(&o)
    );
}
