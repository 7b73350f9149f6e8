//! Property tests of the readers of user files: annotations JSON, proposals
//! (JSON and per-video CSV), `.npy` features and safetensors tensor files
//! and checkpoints. Inputs are arbitrary bytes, and small valid files of
//! each kind with random damage (bits flipped, bytes set, inserted or
//! deleted, JSON tokens inserted, the file truncated). Whatever the bytes,
//! a reader returns `Ok` or an error whose message is one plain sentence
//! naming the file: never a panic, never Rust's debug output.
//!
//! 256 cases per property (`PROPTEST_CASES=N` runs more).
use std::collections::BTreeMap;
use std::fmt::Display;
use std::path::{Path, PathBuf};

use proptest::prelude::*;
use proptest::sample::Index;
use tcanet_models::checkpoint::{
    checkpoint_bytes, read_tensor_file, tensor_file_bytes, Checkpoint, CheckpointContents,
    ConfigOverride, NamedTensor, Position,
};
use tcanet_models::data::features::load_features;
use tcanet_models::data::npy::{npy_bytes_f32, read_npy, read_npy_shape};
use tcanet_models::data::proposals::InvalidProposals;
use tcanet_models::data::{Annotations, FeatureLayout, ProposalSet};
use tcanet_models::{param_specs, ModelConfig};

/// An error's message must be a plain, non-empty sentence naming `file`.
fn check_error(message: &str, file: &Path) {
    assert!(!message.trim().is_empty(), "empty message");
    for debug in ["Some(", "Os {", "Error {", "Custom {"] {
        assert!(
            !message.contains(debug),
            "debug output `{debug}` in: {message}"
        );
    }
    let name = file.file_name().unwrap().to_string_lossy();
    assert!(message.contains(&*name), "{name} not named in: {message}");
}

/// Checks a reader's outcome; returns the value when `Ok`.
fn outcome<T, E: Display>(r: Result<T, E>, file: &Path) -> Option<T> {
    match r {
        Ok(v) => Some(v),
        Err(e) => {
            check_error(&e.to_string(), file);
            None
        }
    }
}

/// One edit of a file's bytes.
#[derive(Debug, Clone)]
enum Edit {
    Flip(Index, u8),
    Set(Index, u8),
    Insert(Index, u8),
    Delete(Index),
    Token(Index, Index),
}

/// Tokens that steer JSON and CSV past the first syntax check.
const TOKENS: &[&str] = &[
    "-1",
    "0",
    "1e400",
    "-1e400",
    "NaN",
    "inf",
    "null",
    "true",
    "\"",
    "[",
    "]",
    "{",
    "}",
    ",",
    ":",
    "\"x\"",
    "[]",
    "{}",
    "1e-320",
    "18446744073709551616",
    "\n",
    ",,",
    "\u{feff}",
    "\\u0000",
    "99999999999",
];

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<Index>(), 0u8..8).prop_map(|(i, b)| Edit::Flip(i, b)),
        (any::<Index>(), any::<u8>()).prop_map(|(i, b)| Edit::Set(i, b)),
        (any::<Index>(), any::<u8>()).prop_map(|(i, b)| Edit::Insert(i, b)),
        any::<Index>().prop_map(Edit::Delete),
        (any::<Index>(), any::<Index>()).prop_map(|(i, t)| Edit::Token(i, t)),
    ]
}

/// Edits plus an optional truncation point.
fn damage() -> impl Strategy<Value = (Vec<Edit>, Option<Index>)> {
    (
        proptest::collection::vec(edit(), 1..6),
        proptest::option::weighted(0.2, any::<Index>()),
    )
}

/// `bytes` with the edits applied within `region` (a prefix length; the
/// whole file when `None`), then truncated.
fn mutate(
    mut bytes: Vec<u8>,
    edits: &[Edit],
    cut: Option<&Index>,
    region: Option<usize>,
) -> Vec<u8> {
    for e in edits {
        let span = region.unwrap_or(bytes.len()).min(bytes.len()).max(1);
        match e {
            Edit::Flip(i, bit) if !bytes.is_empty() => bytes[i.index(span)] ^= 1 << bit,
            Edit::Set(i, b) if !bytes.is_empty() => bytes[i.index(span)] = *b,
            Edit::Insert(i, b) => bytes.insert(i.index(span + 1).min(bytes.len()), *b),
            Edit::Delete(i) if !bytes.is_empty() => {
                bytes.remove(i.index(span));
            }
            Edit::Token(i, t) => {
                let at = i.index(span + 1).min(bytes.len());
                let token = TOKENS[t.index(TOKENS.len())].as_bytes();
                bytes.splice(at..at, token.iter().copied());
            }
            _ => {}
        }
    }
    if let Some(c) = cut {
        bytes.truncate(c.index(bytes.len() + 1));
    }
    bytes
}

/// Writes `bytes` as `name` in a fresh directory.
fn file(name: &str, bytes: &[u8]) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, bytes).unwrap();
    (dir, path)
}

const ANNOTATIONS: &str = r#"{"version": "1.3", "database": {
  "v1": {"subset": "validation", "duration": 12.5, "annotations": [
    {"segment": [1.0, 4.5], "label": "jump"}, {"segment": [6, 9.25], "label": "run"}]},
  "v2": {"subset": "training", "duration": 30, "annotations": []}}}"#;

const PROPOSALS: &str = r#"{"version": "1.3", "results": {
  "v1": [{"segment": [0.5, 3.0], "score": 0.9}, {"segment": [2, 12.6], "score": 0.25}],
  "v2": [{"segment": [10, 20], "score": 1}]}}"#;

const CSV: &str = "xmin,xmax,score\n0.5,3.0,0.9\n2,12.6,0.25\n";

/// Reads annotations (and, when they parse, walks them as callers do).
fn annotations(bytes: &[u8]) {
    let (_d, path) = file("gt.json", bytes);
    if let Some(a) = outcome(Annotations::load(&path), &path) {
        for v in a.subset("validation") {
            for i in &v.instances {
                let _ = i.length();
            }
        }
        let _ = a.to_json();
    }
}

/// Validates read proposals against a duration, under both policies.
fn validated(set: Option<ProposalSet>, path: &Path) {
    let Some(set) = set else { return };
    for policy in [InvalidProposals::Error, InvalidProposals::Skip] {
        let mut set = set.clone();
        let _ = outcome(set.validate(|_| Some(12.5), policy), path);
    }
    let _ = set.to_json();
}

fn proposals_json(bytes: &[u8]) {
    let (_d, path) = file("proposals.json", bytes);
    validated(outcome(ProposalSet::load(&path), &path), &path);
}

fn proposals_csv(bytes: &[u8]) {
    let (d, path) = file("v1.csv", bytes);
    // The directory is what is read; errors name the file in it.
    validated(outcome(ProposalSet::load(d.path()), &path), &path);
}

/// A `.npy` read whole, by its shape alone, and as the features of 4
/// channels in every layout.
fn npy(bytes: &[u8]) {
    let (_d, path) = file("v1.npy", bytes);
    let _ = outcome(read_npy_shape(&path), &path);
    if outcome(read_npy(&path), &path).is_some() {
        for layout in [
            FeatureLayout::Auto,
            FeatureLayout::TimeChannels,
            FeatureLayout::ChannelsTime,
        ] {
            let _ = outcome(load_features(&path, "v1", 4, layout), &path);
        }
    }
}

fn valid_npy() -> Vec<u8> {
    npy_bytes_f32([3, 4], &(0..12).map(|i| i as f32 * 0.5).collect::<Vec<_>>())
}

/// `.npy` bytes of a header dictionary and a body, written by hand.
fn npy_with(dict: &str, body: &[u8]) -> Vec<u8> {
    let mut header = dict.as_bytes().to_vec();
    while !(10 + header.len() + 1).is_multiple_of(64) {
        header.push(b' ');
    }
    header.push(b'\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend((header.len() as u16).to_le_bytes());
    out.extend(header);
    out.extend(body);
    out
}

/// A Fortran-order f64 array `[4, 2]`.
fn valid_npy_fortran() -> Vec<u8> {
    let body: Vec<u8> = (0..8)
        .flat_map(|i| (i as f64 - 3.0).to_le_bytes())
        .collect();
    npy_with(
        "{'descr': '<f8', 'fortran_order': True, 'shape': (4, 2), }",
        &body,
    )
}

fn tensor_file(bytes: &[u8]) {
    let (_d, path) = file("weights.safetensors", bytes);
    let _ = outcome(read_tensor_file(&path), &path);
}

fn checkpoint(bytes: &[u8]) {
    let (_d, path) = file("ckpt.safetensors", bytes);
    let _ = outcome(Checkpoint::load(&path, &ConfigOverride::Embedded), &path);
    let given = ConfigOverride::Given(ModelConfig::tiny());
    let _ = outcome(Checkpoint::load(&path, &given), &path);
}

fn valid_tensor_file() -> Vec<u8> {
    let tensors = [
        NamedTensor {
            name: "a".into(),
            shape: vec![2, 3],
            data: vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
        },
        NamedTensor {
            name: "b.bias".into(),
            shape: vec![1],
            data: vec![-0.5],
        },
    ];
    let meta = BTreeMap::from([("note".to_string(), "x".to_string())]);
    tensor_file_bytes(&tensors, &meta).unwrap()
}

fn valid_checkpoint() -> Vec<u8> {
    let cfg = ModelConfig::tiny();
    let params: Vec<NamedTensor> = param_specs(&cfg)
        .into_iter()
        .map(|s| NamedTensor {
            data: vec![0.01; s.shape.iter().product()],
            name: s.name,
            shape: s.shape,
        })
        .collect();
    let extra = BTreeMap::new();
    checkpoint_bytes(&CheckpointContents {
        config: &cfg,
        position: Position::default(),
        params: &params,
        train_state: None,
        extra: &extra,
    })
    .unwrap()
}

/// The safetensors header's length (8-byte length + JSON).
fn header_len(bytes: &[u8]) -> usize {
    8 + u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize
}

#[test]
fn the_valid_samples_are_read() {
    let (_d, p) = file("gt.json", ANNOTATIONS.as_bytes());
    assert_eq!(
        Annotations::load(&p).unwrap().subset("validation").count(),
        1
    );
    let (_d, p) = file("proposals.json", PROPOSALS.as_bytes());
    assert_eq!(ProposalSet::load(&p).unwrap().get("v1").unwrap().len(), 2);
    let (d, _) = file("v1.csv", CSV.as_bytes());
    assert_eq!(
        ProposalSet::load(d.path())
            .unwrap()
            .get("v1")
            .unwrap()
            .len(),
        2
    );
    let (_d, p) = file("v1.npy", &valid_npy());
    assert_eq!(read_npy(&p).unwrap().shape, [3, 4]);
    let (_d, p) = file("v1.npy", &valid_npy_fortran());
    let a = read_npy(&p).unwrap();
    // Column-major [4, 2] of -3..=4: element (r, c) is r + 4c - 3.
    assert_eq!(a.data, [-3.0, 1.0, -2.0, 2.0, -1.0, 3.0, 0.0, 4.0]);
    let (_d, p) = file("w.safetensors", &valid_tensor_file());
    assert_eq!(read_tensor_file(&p).unwrap().tensors.len(), 2);
    let (_d, p) = file("c.safetensors", &valid_checkpoint());
    Checkpoint::load(&p, &ConfigOverride::Embedded).unwrap();
}

proptest! {
    #![proptest_config(tcanet_testkit::proptest_config())]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        annotations(&bytes);
        proposals_json(&bytes);
        proposals_csv(&bytes);
        npy(&bytes);
        npy(&[&b"\x93NUMPY\x01\x00"[..], &bytes].concat());
        tensor_file(&bytes);
        // A plausible length prefix, so that the bytes reach the JSON header.
        let n = (bytes.len() as u64).to_le_bytes();
        tensor_file(&[&n[..], &bytes].concat());
    }

    #[test]
    fn damaged_annotations_never_panic((edits, cut) in damage()) {
        annotations(&mutate(ANNOTATIONS.into(), &edits, cut.as_ref(), None));
    }

    #[test]
    fn damaged_proposals_never_panic((edits, cut) in damage()) {
        proposals_json(&mutate(PROPOSALS.into(), &edits, cut.as_ref(), None));
        proposals_csv(&mutate(CSV.into(), &edits, cut.as_ref(), None));
    }

    #[test]
    fn damaged_npy_files_never_panic((edits, cut) in damage()) {
        npy(&mutate(valid_npy(), &edits, cut.as_ref(), None));
        npy(&mutate(valid_npy_fortran(), &edits, cut.as_ref(), None));
        // The header alone (magic, length, dictionary): where the parsing is.
        npy(&mutate(valid_npy(), &edits, cut.as_ref(), Some(64)));
    }

    #[test]
    fn damaged_tensor_files_never_panic((edits, cut) in damage()) {
        let valid = valid_tensor_file();
        let header = header_len(&valid);
        tensor_file(&mutate(valid.clone(), &edits, cut.as_ref(), None));
        tensor_file(&mutate(valid, &edits, cut.as_ref(), Some(header)));
    }

    #[test]
    fn damaged_checkpoints_never_panic((edits, cut) in damage()) {
        let valid = valid_checkpoint();
        let header = header_len(&valid);
        checkpoint(&mutate(valid, &edits, cut.as_ref(), Some(header)));
    }
}

/// A shape whose element count overflows (2^62 × 4 × 4 bytes wraps to 0)
/// with an empty body: once read as a valid empty array that the feature
/// loader then indexed out of bounds.
#[test]
fn an_overflowing_shape_is_an_error() {
    for (shape, descr) in [
        ("(4611686018427387904, 4)", "<f4"),
        ("(4294967296, 4294967296)", "<f2"),
        ("(18446744073709551615, 2)", "<f8"),
    ] {
        let dict = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
        let (_d, path) = file("v1.npy", &npy_with(&dict, b""));
        let e = read_npy(&path).unwrap_err().to_string();
        check_error(&e, &path);
        assert!(e.contains("needs"), "{e}");
        for layout in [FeatureLayout::TimeChannels, FeatureLayout::ChannelsTime] {
            assert!(load_features(&path, "v1", 4, layout).is_err());
        }
    }
}
