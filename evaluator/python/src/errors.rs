//! The evaluator's errors as Python exceptions, message unchanged: a file
//! that cannot be read is an `OSError` (`FileNotFoundError`,
//! `PermissionError`, `IsADirectoryError` where they apply); everything else
//! (malformed JSON, bad content, bad options) is a `ValueError`.

use std::io::ErrorKind;

use pyo3::exceptions::{
    PyFileNotFoundError, PyIsADirectoryError, PyOSError, PyPermissionError, PyValueError,
};
use pyo3::PyErr;
use tcanet_evaluator::Error;

/// Converts an evaluator error into the Python exception that fits it.
pub(crate) fn to_py(e: Error) -> PyErr {
    let message = e.to_string();
    match &e {
        Error::Read { cause, .. } => match cause.kind() {
            ErrorKind::NotFound => PyFileNotFoundError::new_err(message),
            ErrorKind::PermissionDenied => PyPermissionError::new_err(message),
            ErrorKind::IsADirectory => PyIsADirectoryError::new_err(message),
            _ => PyOSError::new_err(message),
        },
        _ => PyValueError::new_err(message),
    }
}
