//! The reference data carried in `tests/data/`: the ActivityNet-1.3
//! ground truth and the two golden submissions (xz-compressed), and the
//! official code's numbers on them (`golden_expected.json`).
//!
//! The `.xz` files are decompressed once into a directory of the system's
//! temporary folder named after a hash of their content, and reused by
//! later runs and test binaries.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The carried data directory.
pub fn carried() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data")
}

const COMPRESSED: [&str; 3] = [
    "activitynet13_gt.json",
    "golden_proposals.json",
    "golden_detections.json",
];

/// FNV-1a of the compressed files: names the decompressed directory.
fn content_hash() -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for name in COMPRESSED {
        let bytes = std::fs::read(carried().join(format!("{name}.xz")))
            .unwrap_or_else(|e| panic!("tests/data/{name}.xz: {e}"));
        for b in bytes.iter().chain(name.as_bytes()) {
            h = (h ^ *b as u64).wrapping_mul(0x100_0000_01b3);
        }
    }
    h
}

fn decompress_all() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tcanet-eval-testdata-{:016x}", content_hash()));
    if dir.join("complete").exists() {
        return dir;
    }
    let tmp = std::env::temp_dir().join(format!(
        "tcanet-eval-testdata-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).unwrap();
    for name in COMPRESSED {
        let xz = std::fs::read(carried().join(format!("{name}.xz"))).unwrap();
        let mut out = Vec::with_capacity(xz.len() * 8);
        lzma_rs::xz_decompress(&mut &xz[..], &mut out)
            .unwrap_or_else(|e| panic!("tests/data/{name}.xz does not decompress: {e}"));
        std::fs::write(tmp.join(name), &out).unwrap();
    }
    std::fs::write(tmp.join("complete"), b"").unwrap();
    // Another process may have finished first: then use its copy.
    if std::fs::rename(&tmp, &dir).is_err() {
        let _ = std::fs::remove_dir_all(&tmp);
        assert!(
            dir.join("complete").exists(),
            "cannot create {}",
            dir.display()
        );
    }
    dir
}

/// The decompressed directory (decompressed on first use).
pub fn data_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(decompress_all)
}

/// The decompressed ActivityNet-1.3 ground truth.
pub fn gt_path() -> PathBuf {
    data_dir().join("activitynet13_gt.json")
}

/// The decompressed golden proposals.
pub fn proposals_path() -> PathBuf {
    data_dir().join("golden_proposals.json")
}

/// The decompressed golden detections.
pub fn detections_path() -> PathBuf {
    data_dir().join("golden_detections.json")
}

/// The official code's numbers on the golden files.
pub fn expected() -> serde_json::Value {
    let text = std::fs::read_to_string(carried().join("golden_expected.json"))
        .expect("tests/data/golden_expected.json is readable");
    serde_json::from_str(&text).expect("golden_expected.json is JSON")
}
