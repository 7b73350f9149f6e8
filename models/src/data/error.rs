//! The one error type of [`crate::data`]: what went wrong, and where.
use std::fmt;
use std::path::{Path, PathBuf};

/// How every message about a file that is not the JSON it should be begins.
pub const INVALID_JSON: &str = "invalid JSON: ";

/// What went wrong while reading or checking a dataset file.
#[derive(Debug)]
pub enum ErrorKind {
    /// The file could not be read or written.
    Io(std::io::Error),
    /// The file is not valid JSON of the expected shape.
    Json(String),
    /// The file is not a `.npy` array we can read.
    Npy(String),
    /// A feature value is NaN or infinite.
    NonFinite {
        /// Feature step (row in time).
        step: usize,
        /// Channel.
        channel: usize,
        /// The value found.
        value: f32,
    },
    /// The features' channel count is not the model's `feat_dim`.
    WrongChannels {
        /// Shape of the array in the file.
        shape: [usize; 2],
        /// The channel count the model expects.
        expected: usize,
    },
    /// More feature steps than the model's `temporal_scale`.
    TooLong {
        /// Steps in the file.
        steps: usize,
        /// The model's T.
        max: usize,
    },
    /// A value is out of range or inconsistent (e.g. start ≥ end).
    Invalid(String),
    /// A file the dataset refers to does not exist.
    Missing,
}

/// A dataset error naming the file, the video and the field concerned.
#[derive(Debug)]
pub struct DataError {
    /// The file being read.
    pub path: Option<PathBuf>,
    /// The video concerned, if any.
    pub video: Option<String>,
    /// The field concerned (e.g. `annotations[2].segment`), if any.
    pub field: Option<String>,
    /// What went wrong.
    pub kind: ErrorKind,
}

impl DataError {
    /// An error of `kind` about `path`.
    pub fn new(path: impl AsRef<Path>, kind: ErrorKind) -> Self {
        Self {
            path: Some(path.as_ref().to_path_buf()),
            video: None,
            field: None,
            kind,
        }
    }

    /// An error of `kind` with no file attached.
    pub fn bare(kind: ErrorKind) -> Self {
        Self {
            path: None,
            video: None,
            field: None,
            kind,
        }
    }

    /// A usage error (a missing or contradictory flag), about no file.
    pub fn usage(reason: impl Into<String>) -> Self {
        Self::bare(ErrorKind::Invalid(reason.into()))
    }

    /// An [`ErrorKind::Invalid`] error about `path`.
    pub fn invalid(path: impl AsRef<Path>, reason: impl Into<String>) -> Self {
        Self::new(path, ErrorKind::Invalid(reason.into()))
    }

    /// Names the video concerned.
    pub fn video(mut self, video: impl Into<String>) -> Self {
        self.video = Some(video.into());
        self
    }

    /// Names the field concerned.
    pub fn field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    /// An I/O error about `path`; a missing file becomes [`ErrorKind::Missing`].
    pub fn io(path: impl AsRef<Path>, err: std::io::Error) -> Self {
        if err.kind() == std::io::ErrorKind::NotFound {
            Self::new(path, ErrorKind::Missing)
        } else {
            Self::new(path, ErrorKind::Io(err))
        }
    }
}

impl fmt::Display for DataError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut sep = "";
        if let Some(p) = &self.path {
            write!(f, "{}", p.display())?;
            sep = ": ";
        }
        if let Some(v) = &self.video {
            write!(f, "{sep}video '{v}'")?;
            sep = ": ";
        }
        if let Some(fl) = &self.field {
            write!(f, "{sep}field '{fl}'")?;
            sep = ": ";
        }
        write!(f, "{sep}")?;
        match &self.kind {
            ErrorKind::Io(e) => write!(f, "{e}"),
            ErrorKind::Json(e) => write!(f, "{INVALID_JSON}{e}"),
            ErrorKind::Npy(e) => write!(f, "not a readable .npy array: {e}"),
            ErrorKind::NonFinite {
                step,
                channel,
                value,
            } => write!(
                f,
                "feature value {value} at step {step}, channel {channel} is not finite; \
                 fix or drop this video's features"
            ),
            ErrorKind::WrongChannels { shape, expected } => write!(
                f,
                "features have shape [{}, {}] but the model expects {expected} channels \
                 (feat_dim); neither dimension matches",
                shape[0], shape[1]
            ),
            ErrorKind::TooLong { steps, max } => write!(
                f,
                "{steps} feature steps exceed the model's temporal_scale {max}; \
                 pass --resample to interpolate them to {max} steps"
            ),
            ErrorKind::Invalid(r) => write!(f, "{r}"),
            ErrorKind::Missing => write!(f, "file not found"),
        }
    }
}

impl std::error::Error for DataError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.kind {
            ErrorKind::Io(e) => Some(e),
            _ => None,
        }
    }
}
