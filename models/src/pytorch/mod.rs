//! Reading PyTorch checkpoints (`torch.save` files) in plain Rust, without
//! libtorch or Python, and converting the authors' TCANet checkpoints to
//! ours.
//!
//! * [`read_torch_file`]: a `torch.save` file, zip or legacy format, as a
//!   tree of [`Value`]s whose tensors ([`Tensor`]) view shared storages.
//!   Only data is read: classes the reader does not know are kept as opaque
//!   [`Object`]s and no code is ever run.
//! * [`release`]: where the state dict sits in the release's files
//!   (`TCA_best.pth.tar`, `epoch-N.pth.tar`, a bare state dict).
//! * [`convert`]: that state dict → a `tcanet-checkpoint/1` safetensors file,
//!   the model config inferred from the shapes or given.
//!
//! ```no_run
//! use tcanet_models::pytorch::convert::{convert_file, ConfigChoice};
//! let done = convert_file(
//!     "TCA_best.pth.tar".as_ref(),
//!     "model.safetensors".as_ref(),
//!     &ConfigChoice::Infer,
//! )?;
//! println!("config {:?}, epoch {}", done.preset, done.epoch);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
mod archive;
pub mod convert;
#[cfg(test)]
mod convert_tests;
mod infer;
mod pickle;
pub mod release;
mod tensor;
#[cfg(test)]
mod tests;
mod torch;
mod value;

use std::path::{Path, PathBuf};

pub use tensor::{DType, Storage, Tensor};
pub use value::{Object, Value};

/// Which container a file was written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// The zip archive of PyTorch ≥ 1.6.
    Zip,
    /// The older stream of pickles followed by raw storages.
    Legacy,
}

/// A `torch.save` file read into memory.
#[derive(Debug, Clone)]
pub struct TorchFile {
    /// Its container format.
    pub format: Format,
    /// The object that was saved.
    pub root: Value,
}

/// What is wrong with a file that cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadProblem {
    /// The file could not be read.
    #[error("cannot read the file: {0}")]
    Io(#[source] std::io::Error),
    /// The bytes are not a torch.save file.
    #[error("not a PyTorch checkpoint: {0}")]
    NotPytorch(String),
    /// The zip archive is damaged or not as torch.save writes it.
    #[error("damaged zip archive: {0}")]
    Zip(String),
    /// A pickle could not be read.
    #[error("damaged pickle ({part}) at byte {offset}: {reason}")]
    Pickle {
        /// Which pickle (`data.pkl`, or the part of a legacy file).
        part: String,
        /// Byte offset of the failing opcode (in the file for legacy files,
        /// in `data.pkl` for zip files).
        offset: usize,
        /// What is wrong.
        reason: String,
    },
    /// A storage is missing or has the wrong size.
    #[error("storage '{key}': {reason}")]
    Storage {
        /// The storage key.
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// The objects are inconsistent (a tensor outside its storage, nesting too deep).
    #[error("{0}")]
    Structure(String),
}

/// A file that could not be read: which one and why.
#[derive(Debug, thiserror::Error)]
#[error("{}: {problem}", path.display())]
pub struct PytorchError {
    /// The file.
    pub path: PathBuf,
    /// What is wrong with it.
    pub problem: ReadProblem,
}

/// Reads a `torch.save` file (zip or legacy format).
pub fn read_torch_file(path: &Path) -> Result<TorchFile, PytorchError> {
    let bytes = std::fs::read(path).map_err(|e| PytorchError {
        path: path.to_path_buf(),
        problem: ReadProblem::Io(e),
    })?;
    parse_torch_bytes(path, &bytes)
}

/// [`read_torch_file`] on bytes in memory; `path` names them in errors.
pub fn parse_torch_bytes(path: &Path, bytes: &[u8]) -> Result<TorchFile, PytorchError> {
    archive::parse(bytes).map_err(|problem| PytorchError {
        path: path.to_path_buf(),
        problem,
    })
}
