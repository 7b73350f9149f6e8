//! Property tests of the classifier-file reader (all three formats):
//! arbitrary bytes and valid files with random damage (bytes flipped, set,
//! inserted or deleted, JSON tokens inserted, the file truncated) give `Ok`
//! or an error naming the file without Rust's debug output; never a panic.
//! 256 cases per property (`PROPTEST_CASES=N` runs more).
use std::path::Path;

use proptest::prelude::*;
use proptest::sample::Index;
use tcanet_runtime::classifier::ClassScores;

const RELEASE: &str =
    r#"{"class_names": ["a", "b", "c"], "results": {"v1": [0.1, 2.0, -1.0], "v2": [1, 1, 1]}}"#;
const AUTHORS: &str = r#"{"class": ["a", "b"], "results": {"v1": [[0.1, 2.0]], "v2": [[3, -3]]}}"#;
const ACTIVITYNET: &str = r#"{"results": {"v1": [{"label": "x", "score": 0.2}, {"label": "y", "score": 0.7}], "v2": [{"label": "x", "score": 1}]}}"#;

/// Tokens that keep damaged JSON close to valid.
const TOKENS: &[&str] = &[
    "-1",
    "1e400",
    "NaN",
    "null",
    "\"",
    "[",
    "]",
    "{",
    "}",
    ",",
    "\"x\"",
    "[]",
    "{}",
    "[[",
    "\"label\"",
];

/// Reads `bytes` as `cls.json`; checks the error or uses the result.
fn read(bytes: &[u8]) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cls.json");
    std::fs::write(&path, bytes).unwrap();
    match ClassScores::load(&path) {
        Ok(c) => {
            for v in ["v1", "v2", "v3"] {
                let _ = c.top_classes(v, 3);
            }
        }
        Err(e) => check_error(&e.to_string(), &path),
    }
}

fn check_error(message: &str, path: &Path) {
    assert!(!message.trim().is_empty());
    for debug in ["Some(", "Os {", "Error {", "Custom {"] {
        assert!(!message.contains(debug), "`{debug}` in: {message}");
    }
    assert!(
        message.contains("cls.json"),
        "{} not named in: {message}",
        path.display()
    );
}

fn damaged(valid: &str, edits: &[(u8, Index, u8)], cut: Option<&Index>) -> Vec<u8> {
    let mut b = valid.as_bytes().to_vec();
    for (kind, i, x) in edits {
        let at = i.index(b.len().max(1)).min(b.len().saturating_sub(1));
        match kind % 4 {
            0 if !b.is_empty() => b[at] ^= 1 << (x % 8),
            1 if !b.is_empty() => b[at] = *x,
            2 if !b.is_empty() => {
                b.remove(at);
            }
            _ => {
                let token = TOKENS[usize::from(*x) % TOKENS.len()].as_bytes();
                b.splice(at..at, token.iter().copied());
            }
        }
    }
    if let Some(c) = cut {
        b.truncate(c.index(b.len() + 1));
    }
    b
}

#[test]
fn the_valid_samples_are_read() {
    for text in [RELEASE, AUTHORS, ACTIVITYNET] {
        let c = ClassScores::parse(text, Path::new("cls.json")).unwrap();
        assert!(c.top_classes("v1", 2).is_some());
    }
}

proptest! {
    #![proptest_config(tcanet_testkit::proptest_config())]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        read(&bytes);
    }

    #[test]
    fn damaged_files_never_panic(
        edits in proptest::collection::vec((any::<u8>(), any::<Index>(), any::<u8>()), 1..6),
        cut in proptest::option::weighted(0.2, any::<Index>()),
    ) {
        for valid in [RELEASE, AUTHORS, ACTIVITYNET] {
            read(&damaged(valid, &edits, cut.as_ref()));
        }
    }
}
