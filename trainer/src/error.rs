//! What can stop `train`, `calibrate`, `predict` and `bench`, with the exit
//! status each deserves: 2 for bad input or usage (nothing was written), 1
//! for other failures (training diverged, a file could not be written).
use std::fmt;
use std::path::PathBuf;

use tcanet_cli::{ExitStatus, OutputError};
use tcanet_models::checkpoint::CheckpointError;
use tcanet_models::data::DataError;
use tcanet_models::ConfigError;

use crate::adamw::StateError;
use crate::dataset::SkipCounts;
use crate::device::DeviceError;
use crate::options::{Change, OptionsError};

/// Where a non-finite value appeared during a training step.
#[derive(Debug, Clone, PartialEq)]
pub enum NonFinite {
    /// A loss term (`stage 2 xw`, or `total` when every term is finite but the sum is not).
    Loss {
        /// The term.
        term: String,
        /// Its value.
        value: f64,
    },
    /// The gradient of a parameter.
    Gradient {
        /// The parameter.
        param: String,
    },
    /// A parameter after the update.
    Weight {
        /// The parameter.
        param: String,
    },
}

impl fmt::Display for NonFinite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Loss { term, value } => write!(f, "the loss term {term} is {value}"),
            Self::Gradient { param } => write!(f, "the gradient of {param} is not finite"),
            Self::Weight { param } => {
                write!(f, "the weight {param} is not finite after the update")
            }
        }
    }
}

/// Why a trainer command stopped.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// A dataset file is missing, unreadable or invalid (names file, video, field).
    #[error(transparent)]
    Data(#[from] DataError),
    /// A checkpoint cannot be read or written.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// `train` without a model config.
    #[error("no model: pass --preset tiny|anet|hacs or --config model.json")]
    NoModel,
    /// A model config is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A file given by the user cannot be read.
    #[error("cannot read {}: {cause}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        cause: std::io::Error,
    },
    /// A `--train-config` or `--config` file is not valid.
    #[error("{}: {reason}", path.display())]
    BadFile {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A training option is out of range.
    #[error(transparent)]
    Options(#[from] OptionsError),
    /// An option given in a file is out of range.
    #[error("{}: {cause}", path.display())]
    OptionsIn {
        /// The `--train-config` file.
        path: PathBuf,
        /// The problem.
        cause: OptionsError,
    },
    /// The device is not usable.
    #[error(transparent)]
    Device(#[from] DeviceError),
    /// An output cannot be created or written.
    #[error(transparent)]
    Output(#[from] OutputError),
    /// The run directory cannot be used.
    #[error("--out {}: {reason}", path.display())]
    RunDir {
        /// The directory.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A fresh run would replace another run's checkpoints.
    #[error(
        "--out {}: holds a run already (last.safetensors at step {step}): continue it with \
         --resume, start afresh there with --overwrite, or choose another --out", path.display()
    )]
    RunExists {
        /// The run directory.
        path: PathBuf,
        /// The step of its last checkpoint.
        step: u64,
    },
    /// Writing a run's file failed (disk full, permission).
    #[error("cannot write {}: {cause}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// The OS error.
        cause: std::io::Error,
    },
    /// No video of the training subset can be used.
    #[error("no usable training video in subset '{subset}' (skipped: {skipped})")]
    NoTrainingVideos {
        /// The subset.
        subset: String,
        /// Why videos were left out.
        skipped: SkipCounts,
    },
    /// Too few training videos to hold some out.
    #[error(
        "subset '{subset}' has {videos} usable training video(s): too few to hold out \
         {fraction} for calibration; use --calibration-fraction 0 with --decode-scale \
         release or a fixed scale"
    )]
    TooFewToHoldOut {
        /// The subset.
        subset: String,
        /// Usable videos.
        videos: usize,
        /// The fraction asked for.
        fraction: f64,
    },
    /// No video to calibrate on.
    #[error("no video to calibrate on: {reason}")]
    NothingToCalibrate {
        /// Why.
        reason: String,
    },
    /// A non-finite value stopped training.
    #[error(
        "training stopped at step {step} (epoch {epoch}; videos {videos}): {problem}. {kept}; \
         lower --lr or check these videos' features"
    )]
    NonFinite {
        /// The global step (1-based) that failed.
        step: u64,
        /// The epoch (1-based).
        epoch: u64,
        /// What was not finite.
        problem: NonFinite,
        /// The batch's videos.
        videos: String,
        /// What happened to the checkpoint.
        kept: String,
    },
    /// The checkpoint cannot be resumed: no training state.
    #[error(
        "{}: carries no training state (a converted, exported or best checkpoint): it cannot \
         be resumed; start a new run from its weights with --init", path.display()
    )]
    NoTrainState {
        /// The checkpoint.
        path: PathBuf,
    },
    /// The optimizer state does not fit the model.
    #[error("{}: {cause}", path.display())]
    State {
        /// The checkpoint.
        path: PathBuf,
        /// The mismatch.
        cause: StateError,
    },
    /// The checkpoint's recorded settings cannot be read.
    #[error("{}: metadata `{key}`: {reason}", path.display())]
    SavedSettings {
        /// The checkpoint.
        path: PathBuf,
        /// The metadata key.
        key: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The settings differ from the checkpoint's and the run would not be exact.
    #[error(
        "{}: cannot resume with changed settings (the result would differ from an \
         uninterrupted run); changed:\n  {}\nrerun with the checkpoint's settings, or pass \
         --allow-changed-settings to continue anyway", path.display(), list(changes)
    )]
    SettingsChanged {
        /// The checkpoint.
        path: PathBuf,
        /// What changed.
        changes: Vec<Change>,
    },
    /// The weights of `--init` or `predict` are of another model config.
    #[error(
        "{}: the checkpoint holds another model config than the one given ({field} differs); \
         drop --preset/--config to use its own", path.display()
    )]
    OtherConfig {
        /// The checkpoint.
        path: PathBuf,
        /// The first field that differs.
        field: String,
    },
    /// The evaluator refused the calibration videos (should not happen).
    #[error("scoring the calibration videos failed: {0}")]
    Evaluate(#[from] tcanet_evaluator::Error),
    /// The network refused its input (should not happen after the checks).
    #[error("the network refused its input: {0}")]
    Network(#[from] tcanet_nn::InputError),
    /// libtorch failed inside an operation (tch turns its C++ exceptions
    /// into panics; [`libtorch_failure`] reads them back).
    #[error("libtorch failed: {message}{}", libtorch_hint(message))]
    Libtorch {
        /// The first line of libtorch's message.
        message: String,
    },
}

/// What to do about a libtorch failure, by its message.
fn libtorch_hint(message: &str) -> &'static str {
    if message.contains("allocate memory") || message.contains("out of memory") {
        " (the step does not fit in memory: use fewer videos or proposals per batch, or a \
         smaller model)"
    } else {
        ""
    }
}

/// The first line of libtorch's message when a panic's `payload` is a
/// libtorch error that tch unwrapped (`called Result::unwrap() on an Err
/// value: Torch("...")`); `None` for any other panic.
pub fn libtorch_failure(payload: &(dyn std::any::Any + Send)) -> Option<String> {
    let text = payload
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| payload.downcast_ref::<&str>().copied())?;
    let (_, message) = text.split_once("Torch(\"")?;
    // The message is shown as Rust debug-formats a string: its line breaks
    // are the two characters `\n`.
    let first = match message.split_once("\\n") {
        Some((first, _)) => first,
        None => message.strip_suffix("\")").unwrap_or(message),
    };
    Some(first.trim().to_string())
}

fn list(changes: &[Change]) -> String {
    changes
        .iter()
        .map(Change::to_string)
        .collect::<Vec<_>>()
        .join("\n  ")
}

impl TrainError {
    /// The exit status: 2 for bad input or usage, 1 for other failures.
    pub fn exit_status(&self) -> ExitStatus {
        match self {
            Self::Output(e) => e.exit_status(),
            // Checkpoints are only read through CheckpointError::Io (the
            // trainer writes them itself, as Write): a reading problem is
            // the input's.
            Self::Checkpoint(CheckpointError::Write { .. } | CheckpointError::Header(_))
            | Self::Write { .. }
            | Self::NonFinite { .. }
            | Self::Evaluate(_)
            | Self::Network(_)
            | Self::Libtorch { .. } => ExitStatus::Failure,
            _ => ExitStatus::Usage,
        }
    }
}

/// A result of the trainer's library.
pub type Result<T, E = TrainError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libtorch_failures_are_read_from_tch_s_panics() {
        let panic = |text: &str| -> Box<dyn std::any::Any + Send> { Box::new(text.to_string()) };
        let memory = "called `Result::unwrap()` on an `Err` value: Torch(\"[enforce fail at \
            alloc_cpu.cpp:127] err == 0. DefaultCPUAllocator: can't allocate memory: you tried \
            to allocate 1048576000 bytes. Error code 12 (Cannot allocate memory)\\nframe #0: \
            c10::ThrowEnforceNotMet\")";
        let message = libtorch_failure(&*panic(memory)).unwrap();
        assert!(
            message.ends_with("Error code 12 (Cannot allocate memory)"),
            "{message}"
        );
        let shown = TrainError::Libtorch { message }.to_string();
        assert!(shown.contains("does not fit in memory"), "{shown}");
        let one_line = "called `Result::unwrap()` on an `Err` value: Torch(\"shape mismatch\")";
        assert_eq!(
            libtorch_failure(&*panic(one_line)).unwrap(),
            "shape mismatch"
        );
        assert_eq!(libtorch_failure(&*panic("index out of bounds")), None);
        let static_str: Box<dyn std::any::Any + Send> = Box::new("Torch(\"x\")");
        assert_eq!(libtorch_failure(&*static_str).unwrap(), "x");
    }
}
