//! Which exit status an error ends the program with: 2 for a usage error or
//! invalid input, 1 for anything else (see `tcanet_cli::ExitStatus`), read
//! from the first typed error in the chain.
use tcanet_cli::ExitStatus;
use tcanet_models::data::DataError;
use tcanet_models::ConfigError;
use tcanet_ort::{ModelError, OrtSetupError};
use tcanet_runtime::bench::BenchError;
use tcanet_runtime::classifier::ClassifierError;
use tcanet_runtime::infer::VideoError;
use tcanet_runtime::output::{LeaderboardError, ShardError};

pub use tcanet_cli::Usage;

/// A [`Usage`] error.
pub fn usage(message: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(Usage(message.into()))
}

/// A run stopped at its first failed video (no `--keep-going`).
#[derive(Debug, thiserror::Error)]
#[error(
    "stopped at video '{video}' (pass --keep-going to skip failing videos and report them); {}",
    match report {
        Some(r) => format!("no results were written, only the failure report {r}"),
        None => "nothing was written".to_string(),
    }
)]
pub struct StoppedEarly {
    /// The video.
    pub video: String,
    /// The failure report written (`--report`), if any.
    pub report: Option<String>,
    /// Whether its data was at fault (exit 2) rather than the model (exit 1).
    pub bad_input: bool,
}

/// The status of one known error type, `None` for others (the `typed`
/// argument of [`tcanet_cli::exit_status_of`]).
pub fn typed_status(cause: &(dyn std::error::Error + 'static)) -> Option<ExitStatus> {
    let input = ExitStatus::usage_if;
    if let Some(e) = cause.downcast_ref::<StoppedEarly>() {
        return Some(input(e.bad_input));
    }
    if let Some(e) = cause.downcast_ref::<VideoError>() {
        return Some(input(e.is_bad_input()));
    }
    if let Some(e) = cause.downcast_ref::<ModelError>() {
        return Some(input(e.is_bad_input()));
    }
    if let Some(e) = cause.downcast_ref::<OrtSetupError>() {
        return Some(input(e.is_bad_input()));
    }
    if let Some(e) = cause.downcast_ref::<BenchError>() {
        return Some(match e {
            BenchError::Settings(_) => ExitStatus::Usage,
            BenchError::Video(v) => input(v.is_bad_input()),
            BenchError::Model(m) => input(m.is_bad_input()),
        });
    }
    let usage = cause.is::<DataError>()
        || cause.is::<ClassifierError>()
        || cause.is::<LeaderboardError>()
        || cause.is::<ShardError>()
        || cause.is::<ConfigError>();
    usage.then_some(ExitStatus::Usage)
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    /// The exit status of `err` as the binary reports it.
    fn status_of(err: &anyhow::Error) -> (ExitStatus, bool) {
        tcanet_cli::exit_status_of(err.as_ref(), typed_status)
    }

    #[test]
    fn statuses_come_from_the_first_typed_cause() {
        assert_eq!(status_of(&usage("bad")).0, ExitStatus::Usage);
        let wrapped = Err::<(), _>(usage("bad"))
            .context("while reading")
            .unwrap_err();
        assert_eq!(status_of(&wrapped).0, ExitStatus::Usage);
        assert_eq!(status_of(&anyhow::anyhow!("other")).0, ExitStatus::Failure);
        let pipe = anyhow::Error::new(tcanet_cli::OutputError::BrokenPipe);
        assert_eq!(status_of(&pipe), (ExitStatus::Failure, true));
        let early = anyhow::Error::new(StoppedEarly {
            video: "v".into(),
            report: None,
            bad_input: false,
        });
        assert_eq!(status_of(&early).0, ExitStatus::Failure);
    }

    #[test]
    fn messages_do_not_repeat_a_quoted_cause() {
        #[derive(Debug, thiserror::Error)]
        #[error("bad config: {0}")]
        struct Quoting(#[source] std::io::Error);
        let inner = std::io::Error::other("no such key");
        let err = anyhow::Error::new(Quoting(inner)).context("cfg.json");
        assert_eq!(
            tcanet_cli::one_line(err.as_ref()),
            "cfg.json: bad config: no such key"
        );
        let plain = Err::<(), _>(usage("x")).context("reading").unwrap_err();
        assert_eq!(tcanet_cli::one_line(plain.as_ref()), "reading: x");
    }
}
