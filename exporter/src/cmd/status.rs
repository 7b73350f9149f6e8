//! Which exit status an error ends `tcanet-export` with (see
//! `tcanet_cli::ExitStatus`): 2 for a usage error or invalid input, 1 for
//! anything else, read from the first typed error in the chain.
use tcanet_cli::ExitStatus;
use tcanet_exporter::inspect::InspectError;
use tcanet_exporter::profile::ProfileError;
use tcanet_exporter::triton_repo::RepoError;
use tcanet_exporter::ExportError;
use tcanet_models::checkpoint::CheckpointError;
use tcanet_models::pytorch::convert::ConvertError;
use tcanet_models::pytorch::PytorchError;
use tcanet_models::ConfigError;
use tcanet_ort::{ModelError, OrtSetupError};

pub use tcanet_cli::Usage;

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

/// Usage (2) when `bad_input`, failure (1) otherwise.
fn input(bad_input: bool) -> ExitStatus {
    ExitStatus::usage_if(bad_input)
}

/// The status of one known error type, `None` for others (the `typed`
/// argument of [`tcanet_cli::exit_status_of`]).
pub fn typed_status(cause: &(dyn std::error::Error + 'static)) -> Option<ExitStatus> {
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
        return Some(input(e.is_bad_input()));
    }
    if let Some(e) = cause.downcast_ref::<OrtSetupError>() {
        return Some(input(e.is_bad_input()));
    }
    let usage = cause.is::<InspectError>()
        || cause.is::<CheckpointError>()
        || cause.is::<PytorchError>()
        || cause.is::<ConfigError>();
    usage.then_some(ExitStatus::Usage)
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;
    use tcanet_cli::OutputError;

    /// The exit status of `err` as the binary reports it.
    fn status_of(err: &anyhow::Error) -> (ExitStatus, bool) {
        tcanet_cli::exit_status_of(err.as_ref(), typed_status)
    }

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
        assert_eq!(tcanet_cli::one_line(wrapped.as_ref()), "reading: bad");
    }
}
