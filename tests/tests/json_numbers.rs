//! JSON numbers are read to the nearest float64 by every crate, however it
//! is built. serde_json rounds correctly only with its `float_roundtrip`
//! feature, and cargo unifies features per build: a crate built alone
//! (`cargo build -p tcanet-trainer`, the Python package under maturin) gets
//! only the features its own dependency tree asks for. Without the feature,
//! a trainer built alone read the demo's proposals a unit in the last place
//! off and computed another data fingerprint than the workspace's build.
use std::path::{Path, PathBuf};
use std::process::Command;

/// The repository root (this package's parent).
fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the repository")
        .to_path_buf()
}

/// `cargo` with the arguments, run in the repository root without network.
fn cargo(args: &[&str]) -> std::process::Output {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    Command::new(cargo)
        .current_dir(repo())
        .args(args)
        .arg("--offline")
        .output()
        .expect("cargo runs")
}

/// The workspace's member packages, from `cargo metadata`.
fn members() -> Vec<String> {
    let o = cargo(&["metadata", "--no-deps", "--format-version", "1"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let meta: serde_json::Value = serde_json::from_slice(&o.stdout).expect("metadata JSON");
    meta["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .map(|p| p["name"].as_str().expect("name").to_string())
        .collect()
}

/// serde_json's features in a build of `package` alone (normal
/// dependencies), or `None` when the package does not use serde_json.
fn serde_json_features(manifest: &[&str], package: Option<&str>) -> Option<String> {
    let mut args = vec!["tree", "-e", "normal,features", "-i", "serde_json"];
    args.extend(["--prefix", "none"]);
    args.extend(manifest);
    if let Some(p) = package {
        args.extend(["-p", p]);
    }
    let o = cargo(&args);
    let err = String::from_utf8_lossy(&o.stderr);
    if !o.status.success() && err.contains("did not match any packages") {
        return None;
    }
    assert!(o.status.success(), "cargo {args:?}: {err}");
    let tree = String::from_utf8_lossy(&o.stdout).into_owned();
    // Empty: serde_json only among the package's dev-dependencies.
    (!tree.trim().is_empty()).then_some(tree)
}

#[test]
fn every_crate_built_alone_parses_json_numbers_correctly_rounded() {
    let wanted = "serde_json feature \"float_roundtrip\"";
    let mut checked = Vec::new();
    for p in members() {
        if let Some(tree) = serde_json_features(&[], Some(&p)) {
            assert!(
                tree.contains(wanted),
                "{p} built alone uses serde_json without float_roundtrip:\n{tree}"
            );
            checked.push(p);
        }
    }
    for must in [
        "tcanet-models",
        "tcanet-trainer",
        "tcanet-evaluator",
        "tcanet-runtime",
    ] {
        assert!(
            checked.iter().any(|p| p == must),
            "{must} not checked: {checked:?}"
        );
    }
    let python = ["--manifest-path", "evaluator/python/Cargo.toml"];
    let tree = serde_json_features(&python, None).expect("the Python package uses serde_json");
    assert!(tree.contains(wanted), "the Python package: {tree}");
}

#[test]
fn the_feature_gives_the_nearest_float() {
    // Numbers as Python writes them (shortest round trip) that serde_json's
    // fast path, without the feature, reads one unit in the last place off.
    for text in [
        "231.40097516489666",
        "98.78108702314461",
        "127.77222560814259",
    ] {
        let parsed: f64 = serde_json::from_str(text).expect("a number");
        let nearest: f64 = text.parse().expect("a number");
        assert_eq!(parsed.to_bits(), nearest.to_bits(), "{text}");
    }
}
