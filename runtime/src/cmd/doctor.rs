//! `tcanet-infer doctor` and the ONNX Runtime line of `--version`.
use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use tcanet_cli::{write_stdout, ExitStatus};
use tcanet_runtime::doctor::DoctorReport;

/// `doctor`'s flags.
#[derive(Args)]
pub struct DoctorArgs {
    /// ONNX Runtime library (file or directory) to check instead of the
    /// lookup order (ORT_DYLIB_PATH, beside this binary, the project venv).
    #[arg(long, value_name = "PATH")]
    pub ort_lib: Option<PathBuf>,
    /// Print one JSON object instead of one fact per line.
    #[arg(long)]
    pub json: bool,
}

/// Prints the facts; exit 1 (with what to do on standard error) when no
/// usable ONNX Runtime library was found.
pub fn cmd_doctor(args: &DoctorArgs) -> Result<ExitStatus> {
    let (report, error) =
        DoctorReport::gather(args.ort_lib.as_deref(), tcanet_version::git_commit!());
    let text = if args.json {
        format!("{}\n", serde_json::to_string(&report)?)
    } else {
        report.to_string()
    };
    write_stdout(|w| w.write_all(text.as_bytes()))?;
    match error {
        Some(e) => Err(e.into()),
        None => Ok(ExitStatus::Success),
    }
}
