//! Which exit status an error ends `tcanet-export` with (see
//! `tcanet_cli::ExitStatus`): 2 for a usage error or invalid input, 1 for
//! anything else, read from the first typed error in the chain.
use tcanet_cli::{ExitStatus, OutputError};
use tcanet_exporter::inspect::InspectError;
use tcanet_exporter::profile::ProfileError;
use tcanet_exporter::triton_repo::RepoError;
use tcanet_exporter::ExportError;
use tcanet_models::checkpoint::CheckpointError;
use tcanet_models::pytorch::convert::ConvertError;
use tcanet_models::pytorch::PytorchError;
use tcanet_models::ConfigError;
use tcanet_ort::{ModelError, OrtSetupError};

/// A usage error or invalid input found by the binary itself (exit 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Usage(pub String);

/// A [`Usage`] error.
pub fn usage(message: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(Usage(message.into()))
}

/// A file that could not be written (exit 1), with its cause.
#[derive(Debug, thiserror::Error)]
#[error("cannot write {what}: {cause}")]
pub struct WriteFailed {
    /// The file.
    pub what: String,
    /// Why.
    pub cause: String,
}

/// The one-line message of `err`: each cause after a colon, except causes
/// whose text the message already holds (errors that quote their source).
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
        if let Some(e) = cause.downcast_ref::<OutputError>() {
            return (e.exit_status(), e.is_quiet());
        }
        if let Some(status) = typed_status(cause) {
            return (status, false);
        }
    }
    (ExitStatus::Failure, false)
}

/// Usage (2) when `bad_input`, failure (1) otherwise.
fn input(bad_input: bool) -> ExitStatus {
    if bad_input {
        ExitStatus::Usage
    } else {
        ExitStatus::Failure
    }
}

/// The status of one known error type, `None` for others.
fn typed_status(cause: &(dyn std::error::Error + 'static)) -> Option<ExitStatus> {
    if cause.is::<WriteFailed>() || cause.is::<ProfileError>() {
        return Some(ExitStatus::Failure);
    }
    if let Some(e) = cause.downcast_ref::<ExportError>() {
        return Some(input(!matches!(e, ExportError::Write { .. })));
    }
    if let Some(e) = cause.downcast_ref::<ConvertError>() {
        return Some(input(!matches!(e, ConvertError::Write(_))));
    }
    if let Some(e) = cause.downcast_ref::<RepoError>() {
        return Some(input(!matches!(e, RepoError::Write { .. })));
    }
    if let Some(e) = cause.downcast_ref::<ModelError>() {
        return Some(model_status(e));
    }
    if let Some(e) = cause.downcast_ref::<OrtSetupError>() {
        return Some(ort_status(e));
    }
    let usage = cause.is::<Usage>()
        || cause.is::<InspectError>()
        || cause.is::<CheckpointError>()
        || cause.is::<PytorchError>()
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

/// A model ONNX Runtime refuses is invalid input; a missing library is a
/// failure of the environment.
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
        let wrapped = Err::<(), _>(usage("bad")).context("reading").unwrap_err();
        assert_eq!(status_of(&wrapped).0, ExitStatus::Usage);
        assert_eq!(status_of(&anyhow::anyhow!("other")).0, ExitStatus::Failure);
        let write = anyhow::Error::new(WriteFailed {
            what: "x".into(),
            cause: "disk full".into(),
        });
        assert_eq!(status_of(&write).0, ExitStatus::Failure);
        let pipe = anyhow::Error::new(OutputError::BrokenPipe);
        assert_eq!(status_of(&pipe), (ExitStatus::Failure, true));
        assert_eq!(message_of(&wrapped), "reading: bad");
    }
}
