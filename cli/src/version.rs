//! What `--version` prints: the toolkit's version and the git commit it was
//! built from.

/// The toolkit's version (all binaries share it).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The git commit the binaries were built from (`unknown` outside a git
/// checkout).
pub const GIT_COMMIT: &str = env!("TCANET_GIT_COMMIT");

/// `VERSION (commit GIT_COMMIT)`, for clap's `version`.
pub const LONG_VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("TCANET_GIT_COMMIT"),
    ")"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_version_names_version_and_commit() {
        assert!(LONG_VERSION.starts_with(VERSION));
        assert!(LONG_VERSION.contains(GIT_COMMIT));
        assert!(!GIT_COMMIT.is_empty());
    }
}
