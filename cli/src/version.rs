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

/// Parses the command line with clap, for binaries whose `--version` says
/// more than [`LONG_VERSION`]: `--version` prints `PROGRAM LONG_VERSION`,
/// then the lines `more` gives (e.g. the ONNX Runtime found), and ends with
/// status 0; `--help` and usage errors are clap's (standard output and 0,
/// standard error and 2). A closed pipe is ignored. `Err` is the status to
/// end with.
pub fn parse_args<P: clap::Parser>(
    program: &str,
    more: impl FnOnce() -> String,
) -> Result<P, std::process::ExitCode> {
    match P::try_parse() {
        Ok(parsed) => Ok(parsed),
        Err(e) if e.kind() == clap::error::ErrorKind::DisplayVersion => {
            let text = format!("{program} {LONG_VERSION}\n{}\n", more());
            let _ = crate::write_stdout(|w| w.write_all(text.as_bytes()));
            Err(std::process::ExitCode::SUCCESS)
        }
        Err(e) => {
            let _ = e.print();
            Err(std::process::ExitCode::from(
                e.exit_code().clamp(0, 255) as u8
            ))
        }
    }
}

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
