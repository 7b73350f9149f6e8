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

/// A usage error or invalid input found by the binary itself (exit 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Usage(pub String);

/// A [`Usage`] error.
pub fn usage(message: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(Usage(message.into()))
}

/// A run stopped at its first failed video (no `--keep-going`).
#[derive(Debug, thiserror::Error)]
#[error(
    "stopped at video '{video}' (pass --keep-going to skip failing videos and report them); nothing was written"
)]
pub struct StoppedEarly {
    /// The video.
    pub video: String,
    /// Whether its data was at fault (exit 2) rather than the model (exit 1).
    pub bad_input: bool,
}

/// The one-line message of `err`: each cause in the chain after a colon,
/// except causes whose text the message already holds (errors that quote
/// their source).
pub fn message_of(err: &anyhow::Error) -> String {
    let mut message = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if message.is_empty() {
            message = text;
        } else if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
    }
    message
}

/// The exit status of `err`, and whether it ends the program without a
/// message (a closed standard output).
pub fn status_of(err: &anyhow::Error) -> (ExitStatus, bool) {
    for cause in err.chain() {
        if let Some(e) = cause.downcast_ref::<tcanet_cli::OutputError>() {
            return (e.exit_status(), e.is_quiet());
        }
        if let Some(status) = typed_status(cause) {
            return (status, false);
        }
    }
    (ExitStatus::Failure, false)
}

/// The status of one known error type, `None` for others.
fn typed_status(cause: &(dyn std::error::Error + 'static)) -> Option<ExitStatus> {
    let input = |bad: bool| {
        if bad {
            ExitStatus::Usage
        } else {
            ExitStatus::Failure
        }
    };
    if let Some(e) = cause.downcast_ref::<StoppedEarly>() {
        return Some(input(e.bad_input));
    }
    if let Some(e) = cause.downcast_ref::<VideoError>() {
        return Some(input(e.is_bad_input()));
    }
    if let Some(e) = cause.downcast_ref::<ModelError>() {
        return Some(model_status(e));
    }
    if let Some(e) = cause.downcast_ref::<OrtSetupError>() {
        return Some(ort_status(e));
    }
    if let Some(e) = cause.downcast_ref::<BenchError>() {
        return Some(match e {
            BenchError::Settings(_) => ExitStatus::Usage,
            BenchError::Video(v) => input(v.is_bad_input()),
            BenchError::Model(m) => model_status(m),
        });
    }
    let usage = cause.is::<Usage>()
        || cause.is::<DataError>()
        || cause.is::<ClassifierError>()
        || cause.is::<LeaderboardError>()
        || cause.is::<ShardError>()
        || cause.is::<ConfigError>();
    usage.then_some(ExitStatus::Usage)
}

/// An unusable model file is invalid input; a failed run is not.
fn model_status(e: &ModelError) -> ExitStatus {
    match e {
        ModelError::Contract { .. } => ExitStatus::Usage,
        ModelError::Run { .. } => ExitStatus::Failure,
        ModelError::Setup(o) => ort_status(o),
    }
}

/// A bad `--device` or a model ONNX Runtime refuses is invalid input; a
/// missing library or an unusable GPU is a failure of the environment.
fn ort_status(e: &OrtSetupError) -> ExitStatus {
    match e {
        OrtSetupError::BadDevice(_) | OrtSetupError::Session { .. } => ExitStatus::Usage,
        _ => ExitStatus::Failure,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

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
        assert_eq!(message_of(&err), "cfg.json: bad config: no such key");
        let plain = Err::<(), _>(usage("x")).context("reading").unwrap_err();
        assert_eq!(message_of(&plain), "reading: x");
    }
}
