//! The `--version` flag. Its text, with the git commit, comes from the
//! binary (`tcanet_version::long_version!()`), so that a new commit
//! recompiles the binaries and not this crate and everything above it.

use clap::Parser;

/// Parses the command line like clap's `P::parse()`, with `long_version` as
/// the version `--version` prints: for a `P` defined in a library, whose
/// binary alone knows the commit. Exits on `--help`, `--version` and usage
/// errors as clap does.
pub fn parse_with_version<P: Parser>(long_version: &'static str) -> P {
    let mut matches = P::command().version(long_version).get_matches();
    P::from_arg_matches_mut(&mut matches)
        .unwrap_or_else(|e| e.format(&mut P::command().version(long_version)).exit())
}

/// Parses the command line with clap, for binaries whose `--version` says
/// more than its version (`#[command(version = ...)]`): `--version` prints
/// `PROGRAM VERSION`, then the lines `more` gives (e.g. the ONNX Runtime
/// found), and ends with status 0; `--help` and usage errors are clap's
/// (standard output and 0, standard error and 2). A closed pipe is ignored.
/// `Err` is the status to end with.
pub fn parse_args<P: Parser>(
    program: &str,
    more: impl FnOnce() -> String,
) -> Result<P, std::process::ExitCode> {
    match P::try_parse() {
        Ok(parsed) => Ok(parsed),
        Err(e) if e.kind() == clap::error::ErrorKind::DisplayVersion => {
            let command = P::command();
            let version = command.get_version().unwrap_or_default();
            let text = format!("{program} {version}\n{}\n", more());
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
