//! What the binaries share about their errors: a usage error raised by a
//! binary itself, the one-line message of an error chain, and the exit
//! status read from the first cause whose type says it.
use std::error::Error;

use crate::{ExitStatus, Log, OutputError};

/// A usage error or invalid input found by a binary itself (exit 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Usage(pub String);

/// The one-line message of `err`: each cause in the chain after a colon,
/// except causes whose text the message already holds (errors that quote
/// their source).
pub fn one_line(err: &(dyn Error + 'static)) -> String {
    let mut message = String::new();
    let mut cause = Some(err);
    while let Some(e) = cause {
        let text = e.to_string();
        if message.is_empty() {
            message = text;
        } else if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        cause = e.source();
    }
    message
}

/// The exit status of `err`, and whether the program ends without a
/// message (a closed standard output). The first cause that says decides:
/// an [`OutputError`], a [`Usage`], or whatever `typed` knows about the
/// binary's own error types; without one, [`ExitStatus::Failure`].
pub fn exit_status_of(
    err: &(dyn Error + 'static),
    typed: impl Fn(&(dyn Error + 'static)) -> Option<ExitStatus>,
) -> (ExitStatus, bool) {
    let mut cause = Some(err);
    while let Some(e) = cause {
        if let Some(o) = e.downcast_ref::<OutputError>() {
            return (o.exit_status(), o.is_quiet());
        }
        if e.is::<Usage>() {
            return (ExitStatus::Usage, false);
        }
        if let Some(status) = typed(e) {
            return (status, false);
        }
        cause = e.source();
    }
    (ExitStatus::Failure, false)
}

/// Ends a binary's run on `err`: prints its [`one_line`] message on `log`
/// unless the program ends quietly (a closed standard output), and returns
/// its exit status (see [`exit_status_of`]).
pub fn report_error(
    err: &(dyn Error + 'static),
    typed: impl Fn(&(dyn Error + 'static)) -> Option<ExitStatus>,
    log: &Log,
) -> ExitStatus {
    let (status, quiet) = exit_status_of(err, typed);
    if !quiet {
        log.error(one_line(err));
    }
    status
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("reading gt.json")]
    struct Reading(#[source] Usage);

    #[test]
    fn the_first_typed_cause_decides_and_messages_join_the_chain() {
        let err = Reading(Usage("line 3: bad".into()));
        assert_eq!(exit_status_of(&err, |_| None), (ExitStatus::Usage, false));
        assert_eq!(one_line(&err), "reading gt.json: line 3: bad");
        let plain = std::io::Error::other("disk");
        assert_eq!(exit_status_of(&plain, |_| None).0, ExitStatus::Failure);
        let pipe = OutputError::BrokenPipe;
        assert_eq!(exit_status_of(&pipe, |_| None), (ExitStatus::Failure, true));
        let typed = exit_status_of(&plain, |e| {
            e.is::<std::io::Error>().then_some(ExitStatus::Usage)
        });
        assert_eq!(typed.0, ExitStatus::Usage);
        let log = Log {
            quiet: true,
            color: false,
        };
        assert_eq!(report_error(&err, |_| None, &log), ExitStatus::Usage);
        assert_eq!(report_error(&pipe, |_| None, &log), ExitStatus::Failure);
    }
}
