//! Failed videos of `run` and `postprocess`: printed, written to
//! `--report`, and the exit status they lead to.
use anyhow::Result;
use tcanet_cli::{ExitStatus, Log, Output};
use tcanet_runtime::infer::RunSummary;

use super::status::StoppedEarly;

/// Prints every failed video's error.
pub fn print_failures(summary: &RunSummary, log: Log) {
    for f in &summary.failures {
        log.error(&f.error);
    }
}

/// The `--report` file: `{"videos", "processed", "failed": [{video, error}], "stopped_early"}`.
pub fn failure_report(summary: &RunSummary, total: usize) -> Result<Vec<u8>> {
    let report = serde_json::json!({
        "videos": total,
        "processed": summary.results.len(),
        "failed": summary.failures,
        "stopped_early": summary.stopped_early,
    });
    let mut bytes = serde_json::to_vec_pretty(&report)?;
    bytes.push(b'\n');
    Ok(bytes)
}

/// A run that stopped at its first failure (no `--keep-going`): writes the
/// report alone (nothing else is written) and returns the stop as the
/// error (exit 2 for bad data, 1 for a model failure).
pub fn stop_early(report: Option<&Output>, summary: &RunSummary, total: usize) -> anyhow::Error {
    if let Some(r) = report {
        let written = failure_report(summary, total).and_then(|b| Ok(r.write_bytes(&b)?));
        if let Err(e) = written {
            return e;
        }
    }
    let first = summary.failures.first();
    anyhow::Error::new(StoppedEarly {
        video: first.map(|f| f.video.clone()).unwrap_or_default(),
        report: report.map(ToString::to_string),
        bad_input: first.is_none_or(|f| f.error.is_bad_input()),
    })
}

/// The status of a finished run: 0, or 3 (with a count) when videos failed
/// under `--keep-going`.
pub fn finish_status(
    summary: &RunSummary,
    total: usize,
    report: Option<&Output>,
    log: Log,
) -> ExitStatus {
    if summary.failures.is_empty() {
        return ExitStatus::Success;
    }
    let failed = summary.failures.len();
    let listed = report.map(|r| format!(" and in {r}")).unwrap_or_default();
    if failed >= total {
        log.warn(format_args!(
            "all {total} videos failed (listed above{listed}); the outputs hold no results"
        ));
    } else {
        log.warn(format_args!(
            "{failed} of {total} videos failed (listed above{listed}); the others were written"
        ));
    }
    ExitStatus::PartialFailure
}
