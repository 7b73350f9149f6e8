//! Loading ONNX Runtime (dynamically, no download) and running an exported
//! TCANet model on the CPU.
//!
//! The library is looked up in this order: an explicit path (`--ort-lib`),
//! `ORT_DYLIB_PATH`, a `libonnxruntime.so*` beside the executable, then
//! `$TCANET_VENV/onnxruntime/libonnxruntime.so.1.31.1` (TCANET_VENV as seen
//! at compile time, i.e. the project's `.venv`).
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use ort::environment::Environment;
use ort::session::Session;
use ort::value::TensorRef;
use tcanet_models::onnx::{INPUT_FEATURES, INPUT_PROPOSALS, IOU_OUTPUTS, PROPOSAL_OUTPUTS};
use tcanet_models::NUM_STAGES;

/// The library file name in the project venv.
pub const VENV_LIBRARY: &str = "onnxruntime/libonnxruntime.so.1.31.1";

/// Why ONNX Runtime could not load or run a model.
#[derive(Debug, thiserror::Error)]
pub enum OrtError {
    /// No library was found.
    #[error(
        "ONNX Runtime library not found (tried: {}): pass --ort-lib PATH or set ORT_DYLIB_PATH \
         to a libonnxruntime.so (e.g. the onnxruntime wheel's capi folder)",
        tried.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
    )]
    NotFound {
        /// The paths looked at.
        tried: Vec<PathBuf>,
    },
    /// The library failed to load or initialise.
    #[error("cannot load ONNX Runtime from {path}: {reason}")]
    Load {
        /// The library path.
        path: PathBuf,
        /// The loader's complaint.
        reason: String,
    },
    /// The model could not be opened as a session.
    #[error("ONNX Runtime cannot load model {path}: {reason}")]
    Session {
        /// The model path.
        path: PathBuf,
        /// ONNX Runtime's complaint.
        reason: String,
    },
    /// Running the model failed (e.g. wrong input shape).
    #[error("ONNX Runtime failed to run {path}: {reason}")]
    Run {
        /// The model path.
        path: PathBuf,
        /// ONNX Runtime's complaint.
        reason: String,
    },
}

/// Finds the ONNX Runtime shared library (see the module documentation).
pub fn find_library(explicit: Option<&Path>) -> Result<PathBuf, OrtError> {
    let mut tried = Vec::new();
    if let Some(p) = explicit {
        if p.is_file() {
            return Ok(p.to_path_buf());
        }
        tried.push(p.to_path_buf());
        return Err(OrtError::NotFound { tried });
    }
    if let Some(p) = std::env::var_os("ORT_DYLIB_PATH") {
        let p = PathBuf::from(p);
        if p.is_file() {
            return Ok(p);
        }
        tried.push(p);
    }
    if let Some(dir) = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(Path::to_path_buf))
    {
        if let Ok(entries) = std::fs::read_dir(&dir) {
            let mut found: Vec<PathBuf> = entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with("libonnxruntime.so"))
                })
                .collect();
            found.sort();
            if let Some(p) = found.pop() {
                return Ok(p);
            }
        }
        tried.push(dir.join("libonnxruntime.so*"));
    }
    if let Some(venv) = option_env!("TCANET_VENV") {
        let p = Path::new(venv).join(VENV_LIBRARY);
        if p.is_file() {
            return Ok(p);
        }
        tried.push(p);
    }
    Err(OrtError::NotFound { tried })
}

static ENVIRONMENT: OnceLock<Result<(PathBuf, Environment), String>> = OnceLock::new();

/// Loads ONNX Runtime once per process (later calls return the first result;
/// `explicit` only matters on the first call) and returns its path.
pub fn init(explicit: Option<&Path>) -> Result<PathBuf, OrtError> {
    let path = match ENVIRONMENT.get() {
        Some(_) => None,
        None => Some(find_library(explicit)?),
    };
    let result = ENVIRONMENT.get_or_init(|| {
        let path = path.clone().expect("looked up before first init");
        let env = ort::init_from(&path)
            .map_err(|e| e.to_string())?
            .with_name("tcanet")
            .build()
            .map_err(|e| e.to_string())?;
        Ok((path, env))
    });
    match result {
        Ok((p, _)) => Ok(p.clone()),
        Err(reason) => Err(OrtError::Load {
            path: path.unwrap_or_default(),
            reason: reason.clone(),
        }),
    }
}

/// The six outputs of a TCANet model, float32, row-major.
#[derive(Debug, Clone)]
pub struct ModelOutputs {
    /// `proposals_1..3`, each `[B, N, 2]`.
    pub proposals: [Vec<f32>; NUM_STAGES],
    /// `iou_1..3`, each `[B, N]`.
    pub iou: [Vec<f32>; NUM_STAGES],
}

/// An exported TCANet model opened in ONNX Runtime (CPU).
pub struct OnnxModel {
    session: Session,
    path: PathBuf,
}

impl OnnxModel {
    /// Opens `path` with `threads` intra-op threads (0: ONNX Runtime's default).
    /// Call [`init`] first (this calls it with no explicit path otherwise).
    pub fn load(path: &Path, threads: usize) -> Result<Self, OrtError> {
        Self::load_with(path, threads, None)
    }

    /// [`OnnxModel::load`] with ONNX Runtime's profiler on: it records every
    /// node's kernel time and writes `<profile_prefix>_<date>.json`, whose
    /// path [`OnnxModel::end_profiling`] returns.
    pub fn load_profiled(
        path: &Path,
        threads: usize,
        profile_prefix: &Path,
    ) -> Result<Self, OrtError> {
        Self::load_with(path, threads, Some(profile_prefix))
    }

    /// Stops profiling and returns the profile file's path.
    pub fn end_profiling(&mut self) -> Result<PathBuf, OrtError> {
        self.session
            .end_profiling()
            .map(PathBuf::from)
            .map_err(|e| OrtError::Run {
                path: self.path.clone(),
                reason: e.to_string(),
            })
    }

    fn load_with(path: &Path, threads: usize, profile: Option<&Path>) -> Result<Self, OrtError> {
        init(None)?;
        let env = match ENVIRONMENT.get() {
            Some(Ok((_, env))) => env,
            _ => unreachable!("init succeeded"),
        };
        let err = |e: String| OrtError::Session {
            path: path.to_path_buf(),
            reason: e,
        };
        let mut builder = Session::builder(env).map_err(|e| err(e.to_string()))?;
        if threads > 0 {
            builder = builder
                .with_intra_threads(threads)
                .map_err(|e| err(e.to_string()))?;
        }
        if let Some(prefix) = profile {
            builder = builder
                .with_profiling(prefix)
                .map_err(|e| err(e.to_string()))?;
        }
        let session = builder
            .commit_from_file(path)
            .map_err(|e| err(e.to_string()))?;
        Ok(Self {
            session,
            path: path.to_path_buf(),
        })
    }

    /// Runs the model on `features` `[b, c, t]` and `proposals` `[b, n, 2]`.
    pub fn run(
        &mut self,
        features: &[f32],
        [b, c, t]: [usize; 3],
        proposals: &[f32],
        n: usize,
    ) -> Result<ModelOutputs, OrtError> {
        let path = self.path.clone();
        let err = |e: String| OrtError::Run {
            path: path.clone(),
            reason: e,
        };
        let f =
            TensorRef::from_array_view(([b, c, t], features)).map_err(|e| err(e.to_string()))?;
        let p =
            TensorRef::from_array_view(([b, n, 2], proposals)).map_err(|e| err(e.to_string()))?;
        let outputs = self
            .session
            .run(ort::inputs![INPUT_FEATURES => f, INPUT_PROPOSALS => p])
            .map_err(|e| err(e.to_string()))?;
        let get = |name: &str| -> Result<Vec<f32>, OrtError> {
            let value = outputs
                .get(name)
                .ok_or_else(|| err(format!("the model has no output `{name}`")))?;
            let (_, data) = value
                .try_extract_tensor::<f32>()
                .map_err(|e| err(format!("output `{name}`: {e}")))?;
            Ok(data.to_vec())
        };
        Ok(ModelOutputs {
            proposals: [
                get(PROPOSAL_OUTPUTS[0])?,
                get(PROPOSAL_OUTPUTS[1])?,
                get(PROPOSAL_OUTPUTS[2])?,
            ],
            iou: [
                get(IOU_OUTPUTS[0])?,
                get(IOU_OUTPUTS[1])?,
                get(IOU_OUTPUTS[2])?,
            ],
        })
    }
}
