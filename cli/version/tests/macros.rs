//! The macros' text, checked against `git log` run here (the crate is
//! compiled in the same checkout).
use std::process::Command;

/// The 12-digit prefix of HEAD's commit as `git log` shows it, or
/// `unknown` outside a git checkout.
fn head_commit() -> String {
    Command::new("git")
        .args(["-C", env!("CARGO_MANIFEST_DIR"), "log", "-1", "--format=%H"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8(o.stdout).unwrap().trim()[..12].to_string())
        .unwrap_or_else(|| "unknown".into())
}

#[test]
fn git_commit_is_heads_short_commit() {
    assert_eq!(tcanet_version::git_commit!(), head_commit());
}

#[test]
fn long_version_names_version_and_commit() {
    let expected = format!("{} (commit {})", env!("CARGO_PKG_VERSION"), head_commit());
    assert_eq!(tcanet_version::long_version!(), expected);
    // Usable where a constant is needed.
    const LONG: &str = tcanet_version::long_version!();
    assert_eq!(LONG, expected);
}
