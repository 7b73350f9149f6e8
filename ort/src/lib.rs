//! TCANet models on ONNX Runtime, for every program of the toolkit that runs
//! one: finding and loading the library ([`library`], one documented lookup
//! order), sessions on a chosen device with a CPU fallback ([`session`]), and
//! an exported model with its contract checked before it runs ([`model`]),
//! and the CPU kernels of the model's own ONNX functions ([`kernels`]).
//!
//! ```no_run
//! use tcanet_ort::{init_ort, SessionSettings, TcanetModel};
//! init_ort(None)?;
//! let mut model = TcanetModel::load("model.onnx".as_ref(), &SessionSettings::default(), None)?;
//! let (c, t) = (model.config().feat_dim, model.config().temporal_scale);
//! let out = model.run(&vec![0.0; c * t], &[[1.0, 5.0]], 1)?;
//! println!("refined: {:?}, IoU {}", &out.proposals[2][..2], out.iou[2][0]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
pub mod kernels;
pub mod library;
pub mod model;
pub mod probe;
pub mod session;
pub mod tensorrt;

use std::path::PathBuf;

pub use library::{
    init_ort, loaded, lookup_rule, version_line, LoadedOrt, TriedPath, LOOKUP_RULES, ORT_VERSION,
};
pub use model::{cpu_refuses_float16, CallLimit, ModelError, StageOutputs, TcanetModel};
pub use probe::{library_version, provider_statuses, Provider, ProviderStatus};
pub use session::{build_session, build_session_for, BuiltSession, Device, SessionSettings};
pub use tensorrt::{DimRange, ProfileError, TensorRtOptions};

use library::TriedPath as Tried;

/// Errors of locating ONNX Runtime or building a session.
#[derive(Debug, thiserror::Error)]
pub enum OrtSetupError {
    /// No ONNX Runtime library at any of the looked-up places.
    #[error(
        "could not find the ONNX Runtime library (libonnxruntime.so); tried:\n{}\n\
         Pass --ort-lib /path/to/libonnxruntime.so (or its directory), set ORT_DYLIB_PATH, \
         or put libonnxruntime.so beside this program (ONNX Runtime {ORT_VERSION}: the \
         onnxruntime wheel's onnxruntime/capi folder has it; `make setup` makes one in .venv)",
        format_tried(.tried)
    )]
    NotFound {
        /// Every candidate with where it came from and why it was not used.
        tried: Vec<Tried>,
    },
    /// A library was found but could not be loaded (wrong file, wrong version).
    #[error("could not load ONNX Runtime from {path} ({source_name}): {message}")]
    Load {
        /// The library file.
        path: PathBuf,
        /// Where the path came from (`--ort-lib`, `ORT_DYLIB_PATH`, ...).
        source_name: String,
        /// ONNX Runtime's or the loader's message.
        message: String,
    },
    /// ONNX Runtime was already loaded in this process from another file.
    #[error("ONNX Runtime is already loaded from {loaded}; cannot switch to {requested} in the same process")]
    AlreadyLoaded {
        /// The library in use.
        loaded: PathBuf,
        /// The library asked for now.
        requested: PathBuf,
    },
    /// A device string that is not `cpu`, `cuda[:ID]` or `tensorrt[:ID]`.
    #[error("invalid device '{0}': use cpu, cuda, cuda:ID, tensorrt or tensorrt:ID")]
    BadDevice(String),
    /// The requested execution provider could not be used and `strict` was set.
    #[error(
        "device {device} is not usable: {reason} (drop --strict-device to fall back to the CPU)"
    )]
    DeviceUnavailable {
        /// The requested device.
        device: Device,
        /// Why it could not be registered.
        reason: String,
    },
    /// ONNX Runtime refused the model or an option.
    #[error("ONNX Runtime could not create a session for {model}: {message}")]
    Session {
        /// The model file.
        model: PathBuf,
        /// ONNX Runtime's message.
        message: String,
    },
}

impl OrtSetupError {
    /// Whether the user's input is at fault (a bad `--device`, a model ONNX
    /// Runtime refuses) rather than the environment (a missing library, an
    /// unusable GPU).
    pub fn is_bad_input(&self) -> bool {
        matches!(self, Self::BadDevice(_) | Self::Session { .. })
    }
}

fn format_tried(tried: &[Tried]) -> String {
    if tried.is_empty() {
        return "  (no candidate: no --ort-lib, no ORT_DYLIB_PATH, no executable directory, no TCANET_VENV)"
            .into();
    }
    tried
        .iter()
        .map(|t| format!("  {} ({}): {}", t.path.display(), t.source_name, t.outcome))
        .collect::<Vec<_>>()
        .join("\n")
}
