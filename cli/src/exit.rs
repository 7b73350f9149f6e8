//! Exit statuses shared by every binary.

/// How a command ended; `main` returns it as its [`std::process::ExitCode`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum ExitStatus {
    /// 0: everything asked was done.
    Success = 0,
    /// 1: a failure other than bad usage or input (an output could not be
    /// written, a disk is full, a closed pipe, an internal error).
    Failure = 1,
    /// 2: a usage error or invalid input (bad flag, unreadable or malformed
    /// file, output onto an input); nothing was written.
    Usage = 2,
    /// 3: finished, but some videos failed (with `--keep-going`); the
    /// others' results were written.
    PartialFailure = 3,
}

impl ExitStatus {
    /// [`ExitStatus::Usage`] when the user's input is at fault, else
    /// [`ExitStatus::Failure`].
    pub fn usage_if(bad_input: bool) -> ExitStatus {
        if bad_input {
            ExitStatus::Usage
        } else {
            ExitStatus::Failure
        }
    }

    /// The numeric status.
    pub fn code(self) -> u8 {
        self as u8
    }

    /// The more severe of two statuses (usage > failure > partial > success),
    /// for commands that finish several steps.
    pub fn worst(self, other: ExitStatus) -> ExitStatus {
        let rank = |s: ExitStatus| match s {
            ExitStatus::Success => 0,
            ExitStatus::PartialFailure => 1,
            ExitStatus::Failure => 2,
            ExitStatus::Usage => 3,
        };
        if rank(other) > rank(self) {
            other
        } else {
            self
        }
    }
}

impl From<ExitStatus> for std::process::ExitCode {
    fn from(s: ExitStatus) -> Self {
        std::process::ExitCode::from(s.code())
    }
}

#[cfg(test)]
mod tests {
    use super::ExitStatus;

    #[test]
    fn codes_are_the_documented_ones() {
        assert_eq!(ExitStatus::Success.code(), 0);
        assert_eq!(ExitStatus::Failure.code(), 1);
        assert_eq!(ExitStatus::Usage.code(), 2);
        assert_eq!(ExitStatus::PartialFailure.code(), 3);
    }

    #[test]
    fn worst_prefers_usage_then_failure_then_partial() {
        use ExitStatus::*;
        assert_eq!(Success.worst(PartialFailure), PartialFailure);
        assert_eq!(PartialFailure.worst(Failure), Failure);
        assert_eq!(Usage.worst(Failure), Usage);
        assert_eq!(Failure.worst(Success), Failure);
    }
}
