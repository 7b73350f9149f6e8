//! Finding and loading ONNX Runtime, and building sessions on a chosen device.
//!
//! ONNX Runtime is loaded at run time (`ort` feature `load-dynamic`), so the
//! binaries carry no ONNX Runtime (and no libtorch) link dependency. The
//! library is looked up, in this order:
//!
//! 1. an explicit path (`--ort-lib FILE|DIR`),
//! 2. the `ORT_DYLIB_PATH` environment variable,
//! 3. `libonnxruntime.so*` beside the running executable,
//! 4. the project venv: `$TCANET_VENV/onnxruntime/libonnxruntime.so.1.31.1`
//!    (`TCANET_VENV` read at run time, else the value baked in at compile time
//!    by `.cargo/config.toml`).
//!
//! When none is found, [`OrtSetupError::NotFound`] lists every path tried.
//!
//! Typical use:
//!
//! ```no_run
//! use tcanet_runtime::ort_setup::{init_ort, build_session, SessionSettings, Device};
//! let loaded = init_ort(None)?;
//! let settings = SessionSettings { device: Device::Cpu, intra_threads: Some(2), ..Default::default() };
//! let built = build_session(std::path::Path::new("model.onnx"), &settings)?;
//! for w in &built.warnings { eprintln!("warning: {w}"); }
//! # Ok::<(), tcanet_runtime::ort_setup::OrtSetupError>(())
//! ```
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Mutex, OnceLock};

use ort::environment::Environment;
use ort::ep::{self, ExecutionProvider};
use ort::session::builder::{GraphOptimizationLevel, SessionBuilder};
use ort::session::Session;

/// The ONNX Runtime version the project's venv ships (its library file suffix).
pub const VENV_ORT_VERSION: &str = "1.31.1";

/// Errors of locating ONNX Runtime or building a session.
#[derive(Debug, thiserror::Error)]
pub enum OrtSetupError {
    /// No ONNX Runtime library at any of the looked-up places.
    #[error(
        "could not find the ONNX Runtime library (libonnxruntime.so); tried:\n{}\n\
         Pass --ort-lib /path/to/libonnxruntime.so, set ORT_DYLIB_PATH, or run `make setup` \
         to create the project venv with onnxruntime {VENV_ORT_VERSION}",
        format_tried(.tried)
    )]
    NotFound {
        /// Every candidate with where it came from and why it was not used.
        tried: Vec<TriedPath>,
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

/// One candidate library path and the outcome of looking at it.
#[derive(Debug, Clone)]
pub struct TriedPath {
    /// The path looked at.
    pub path: PathBuf,
    /// Where it came from (`--ort-lib`, `ORT_DYLIB_PATH`, `beside the executable`, `project venv`).
    pub source_name: String,
    /// Why it was not used (e.g. `does not exist`).
    pub outcome: String,
}

fn format_tried(tried: &[TriedPath]) -> String {
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

/// A library found by [`find_ort_library`].
#[derive(Debug, Clone)]
pub struct FoundLibrary {
    /// The library file.
    pub path: PathBuf,
    /// Where the path came from.
    pub source_name: String,
    /// The candidates looked at before it (not usable).
    pub tried: Vec<TriedPath>,
}

/// Is this file name an ONNX Runtime core library (`libonnxruntime.so`, `.so.1`, `.so.1.31.1`)?
fn is_core_library_name(name: &str) -> bool {
    name == "libonnxruntime.so" || name.starts_with("libonnxruntime.so.")
}

/// The core library inside a directory: the shortest matching name wins
/// (`libonnxruntime.so` before `libonnxruntime.so.1.31.1`).
fn library_in_dir(dir: &Path) -> Option<PathBuf> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| is_core_library_name(n))
        .collect();
    names.sort_by_key(|n| (n.len(), n.clone()));
    names.first().map(|n| dir.join(n))
}

/// The project venv directory: `TCANET_VENV` at run time, else the compile-time value.
pub fn venv_dir() -> Option<PathBuf> {
    std::env::var_os("TCANET_VENV")
        .map(PathBuf::from)
        .or_else(|| option_env!("TCANET_VENV").map(PathBuf::from))
}

/// Looks for the ONNX Runtime library in the documented order (see the module
/// docs), without loading it.
///
/// An explicit path (`explicit`, or `ORT_DYLIB_PATH`) that does not exist is an
/// error at once: the user asked for that file.
pub fn find_ort_library(explicit: Option<&Path>) -> Result<FoundLibrary, OrtSetupError> {
    let mut tried = Vec::new();
    let env_path = std::env::var_os("ORT_DYLIB_PATH").filter(|v| !v.is_empty());
    let explicit_sources: [(Option<PathBuf>, &str); 2] = [
        (explicit.map(Path::to_path_buf), "--ort-lib"),
        (env_path.map(PathBuf::from), "ORT_DYLIB_PATH"),
    ];
    for (candidate, source_name) in explicit_sources {
        let Some(path) = candidate else { continue };
        if path.is_dir() {
            if let Some(lib) = library_in_dir(&path) {
                return Ok(FoundLibrary {
                    path: lib,
                    source_name: source_name.into(),
                    tried,
                });
            }
            tried.push(TriedPath {
                path,
                source_name: source_name.into(),
                outcome: "is a directory without libonnxruntime.so*".into(),
            });
        } else if path.is_file() {
            return Ok(FoundLibrary {
                path,
                source_name: source_name.into(),
                tried,
            });
        } else {
            tried.push(TriedPath {
                path,
                source_name: source_name.into(),
                outcome: "does not exist".into(),
            });
        }
        return Err(OrtSetupError::NotFound { tried });
    }

    if let Some(dir) = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(Path::to_path_buf))
    {
        match library_in_dir(&dir) {
            Some(lib) => {
                return Ok(FoundLibrary {
                    path: lib,
                    source_name: "beside the executable".into(),
                    tried,
                })
            }
            None => tried.push(TriedPath {
                path: dir.join("libonnxruntime.so*"),
                source_name: "beside the executable".into(),
                outcome: "no such file".into(),
            }),
        }
    }

    if let Some(venv) = venv_dir() {
        let lib = venv
            .join("onnxruntime")
            .join(format!("libonnxruntime.so.{VENV_ORT_VERSION}"));
        if lib.is_file() {
            return Ok(FoundLibrary {
                path: lib,
                source_name: "project venv".into(),
                tried,
            });
        }
        tried.push(TriedPath {
            path: lib,
            source_name: "project venv".into(),
            outcome: "does not exist".into(),
        });
    }
    Err(OrtSetupError::NotFound { tried })
}

/// ONNX Runtime as loaded in this process.
#[derive(Debug)]
pub struct LoadedOrt {
    /// The library file in use.
    pub path: PathBuf,
    /// Where its path came from.
    pub source_name: String,
    /// ONNX Runtime's build-info string (git commit, build type).
    pub build_info: String,
    /// The process-wide environment every session is built in.
    pub environment: Environment,
}

static LOADED: OnceLock<LoadedOrt> = OnceLock::new();
static LOAD_LOCK: Mutex<()> = Mutex::new(());

/// Finds ([`find_ort_library`]) and loads ONNX Runtime once per process, and
/// creates the shared environment. Later calls return the same library; a
/// later call asking explicitly for another file is an error.
pub fn init_ort(explicit: Option<&Path>) -> Result<&'static LoadedOrt, OrtSetupError> {
    let _guard = LOAD_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(loaded) = LOADED.get() {
        if let Some(requested) = explicit {
            let same =
                std::fs::canonicalize(requested).ok() == std::fs::canonicalize(&loaded.path).ok();
            if !same && !requested.is_dir() {
                return Err(OrtSetupError::AlreadyLoaded {
                    loaded: loaded.path.clone(),
                    requested: requested.to_path_buf(),
                });
            }
        }
        return Ok(loaded);
    }
    let found = find_ort_library(explicit)?;
    let load_err = |message: String| OrtSetupError::Load {
        path: found.path.clone(),
        source_name: found.source_name.clone(),
        message,
    };
    let builder = ort::init_from(&found.path).map_err(|e| load_err(e.to_string()))?;
    let environment = builder
        .with_name("tcanet")
        .build()
        .map_err(|e| load_err(e.to_string()))?;
    let loaded = LoadedOrt {
        path: found.path,
        source_name: found.source_name,
        build_info: ort::info().to_string(),
        environment,
    };
    Ok(LOADED.get_or_init(|| loaded))
}

/// The execution provider a session should run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Device {
    /// ONNX Runtime's CPU provider.
    #[default]
    Cpu,
    /// The CUDA provider on this GPU.
    Cuda(u32),
    /// The TensorRT provider on this GPU (CUDA, then CPU, for what TensorRT cannot run).
    TensorRt(u32),
}

impl fmt::Display for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Device::Cpu => f.write_str("cpu"),
            Device::Cuda(id) => write!(f, "cuda:{id}"),
            Device::TensorRt(id) => write!(f, "tensorrt:{id}"),
        }
    }
}

impl FromStr for Device {
    type Err = OrtSetupError;

    /// Parses `cpu`, `cuda`, `cuda:ID`, `tensorrt`, `tensorrt:ID` (also `trt`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let lower = s.trim().to_ascii_lowercase();
        let (kind, id) = match lower.split_once(':') {
            Some((k, id)) => (
                k.to_string(),
                Some(
                    id.parse::<u32>()
                        .map_err(|_| OrtSetupError::BadDevice(s.to_string()))?,
                ),
            ),
            None => (lower.clone(), None),
        };
        match (kind.as_str(), id) {
            ("cpu", None) => Ok(Device::Cpu),
            ("cuda", id) => Ok(Device::Cuda(id.unwrap_or(0))),
            ("tensorrt" | "trt", id) => Ok(Device::TensorRt(id.unwrap_or(0))),
            _ => Err(OrtSetupError::BadDevice(s.to_string())),
        }
    }
}

/// How to build a session: device, fallback policy, threads, TensorRT options.
#[derive(Debug, Clone)]
pub struct SessionSettings {
    /// The execution provider asked for.
    pub device: Device,
    /// Fail instead of falling back to the CPU when the device cannot be used.
    pub strict_device: bool,
    /// Threads inside one operator (CPU provider); `None` = ONNX Runtime's default (all cores).
    pub intra_threads: Option<usize>,
    /// Threads across independent operators; `None` = sequential execution.
    pub inter_threads: Option<usize>,
    /// TensorRT: build fp16 engines.
    pub trt_fp16: bool,
    /// TensorRT: keep built engines in this directory and reuse them.
    pub trt_engine_cache: Option<PathBuf>,
    /// Graph optimisation level 0..=3 (3 = all, the default).
    pub optimization_level: u8,
    /// Keep freed CPU buffers in ONNX Runtime's arena for reuse (faster
    /// repeated calls, higher peak memory). On by default: see docs/BENCHMARKS.md.
    pub cpu_arena: bool,
    /// Let idle intra-op threads spin (lower latency on an idle machine; on a
    /// machine shared with other work, turning it off is often faster).
    pub intra_op_spinning: bool,
}

impl Default for SessionSettings {
    fn default() -> Self {
        Self {
            device: Device::Cpu,
            strict_device: false,
            intra_threads: None,
            inter_threads: None,
            trt_fp16: false,
            trt_engine_cache: None,
            optimization_level: 3,
            cpu_arena: true,
            intra_op_spinning: true,
        }
    }
}

/// A session and what it actually runs on.
pub struct BuiltSession {
    /// The ONNX Runtime session (reuse it for every call).
    pub session: Session,
    /// The device asked for.
    pub requested: Device,
    /// The device in use: `requested`, or [`Device::Cpu`] after a fallback.
    pub used: Device,
    /// Warnings for the user (e.g. why the device fell back to the CPU).
    pub warnings: Vec<String>,
}

impl fmt::Debug for BuiltSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BuiltSession")
            .field("requested", &self.requested)
            .field("used", &self.used)
            .field("warnings", &self.warnings)
            .finish()
    }
}

fn base_builder(settings: &SessionSettings, model: &Path) -> Result<SessionBuilder, OrtSetupError> {
    let loaded = LOADED.get().ok_or_else(|| OrtSetupError::Session {
        model: model.to_path_buf(),
        message: "ONNX Runtime is not loaded: call init_ort first".into(),
    })?;
    let session_err = |message: String| OrtSetupError::Session {
        model: model.to_path_buf(),
        message,
    };
    let level = match settings.optimization_level {
        0 => GraphOptimizationLevel::Disable,
        1 => GraphOptimizationLevel::Level1,
        2 => GraphOptimizationLevel::Level2,
        _ => GraphOptimizationLevel::All,
    };
    let mut builder = Session::builder(&loaded.environment)
        .map_err(|e| session_err(e.to_string()))?
        .with_optimization_level(level)
        .map_err(|e| session_err(e.to_string()))?;
    ep::CPU::default()
        .with_arena_allocator(settings.cpu_arena)
        .register(&mut builder)
        .map_err(|e| session_err(e.to_string()))?;
    if !settings.intra_op_spinning {
        builder = builder
            .with_intra_op_spinning(false)
            .map_err(|e| session_err(e.to_string()))?;
    }
    if let Some(n) = settings.intra_threads {
        builder = builder
            .with_intra_threads(n)
            .map_err(|e| session_err(e.to_string()))?;
    }
    if let Some(n) = settings.inter_threads {
        builder = builder
            .with_parallel_execution(true)
            .map_err(|e| session_err(e.to_string()))?
            .with_inter_threads(n)
            .map_err(|e| session_err(e.to_string()))?;
    }
    Ok(builder)
}

/// Registers the requested provider on `builder`; `Err(reason)` when it cannot.
fn register_device(builder: &mut SessionBuilder, settings: &SessionSettings) -> Result<(), String> {
    match settings.device {
        Device::Cpu => Ok(()),
        Device::Cuda(id) => {
            if !ep::CUDA::is_available().unwrap_or(false) {
                return Err(format!(
                    "this ONNX Runtime ({}) has no CUDA execution provider; use the onnxruntime-gpu \
                     libraries (see scripts/gpu-stage.sh)",
                    LOADED.get().map(|l| l.path.display().to_string()).unwrap_or_default()
                ));
            }
            ep::CUDA::default()
                .with_device_id(id as i32)
                .register(builder)
                .map_err(|e| e.to_string())
        }
        Device::TensorRt(id) => {
            if !ep::TensorRT::is_available().unwrap_or(false) {
                return Err(format!(
                    "this ONNX Runtime ({}) has no TensorRT execution provider",
                    LOADED
                        .get()
                        .map(|l| l.path.display().to_string())
                        .unwrap_or_default()
                ));
            }
            let mut trt = ep::TensorRT::default()
                .with_device_id(id as i32)
                .with_fp16(settings.trt_fp16);
            if let Some(dir) = &settings.trt_engine_cache {
                trt = trt
                    .with_engine_cache(true)
                    .with_engine_cache_path(dir.display().to_string())
                    .with_timing_cache(true)
                    .with_timing_cache_path(dir.display().to_string());
            }
            trt.register(builder).map_err(|e| e.to_string())?;
            // Whatever TensorRT cannot run goes to CUDA, then to the CPU.
            if ep::CUDA::is_available().unwrap_or(false) {
                ep::CUDA::default()
                    .with_device_id(id as i32)
                    .register(builder)
                    .map_err(|e| e.to_string())?;
            }
            Ok(())
        }
    }
}

/// Builds one session for `model` on `settings.device` (after [`init_ort`]).
///
/// When the device's provider cannot be registered or the session cannot be
/// created with it, this falls back to the CPU with a warning in
/// [`BuiltSession::warnings`], or fails with
/// [`OrtSetupError::DeviceUnavailable`] under `strict_device`.
pub fn build_session(
    model: &Path,
    settings: &SessionSettings,
) -> Result<BuiltSession, OrtSetupError> {
    let session_err = |message: String| OrtSetupError::Session {
        model: model.to_path_buf(),
        message,
    };
    let mut warnings = Vec::new();
    if settings.device != Device::Cpu {
        let mut builder = base_builder(settings, model)?;
        let attempt = register_device(&mut builder, settings).and_then(|()| {
            builder
                .commit_from_file(model)
                .map_err(|e| format!("session creation failed: {e}"))
        });
        match attempt {
            Ok(session) => {
                return Ok(BuiltSession {
                    session,
                    requested: settings.device,
                    used: settings.device,
                    warnings,
                })
            }
            Err(reason) if settings.strict_device => {
                return Err(OrtSetupError::DeviceUnavailable {
                    device: settings.device,
                    reason,
                })
            }
            Err(reason) => warnings.push(format!(
                "device {} is not usable, falling back to cpu: {reason}",
                settings.device
            )),
        }
    }
    let session = base_builder(settings, model)?
        .commit_from_file(model)
        .map_err(|e| session_err(e.to_string()))?;
    Ok(BuiltSession {
        session,
        requested: settings.device,
        used: Device::Cpu,
        warnings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_strings_parse() {
        assert_eq!("cpu".parse::<Device>().unwrap(), Device::Cpu);
        assert_eq!("cuda".parse::<Device>().unwrap(), Device::Cuda(0));
        assert_eq!("CUDA:3".parse::<Device>().unwrap(), Device::Cuda(3));
        assert_eq!("tensorrt:1".parse::<Device>().unwrap(), Device::TensorRt(1));
        assert_eq!("trt".parse::<Device>().unwrap(), Device::TensorRt(0));
        for bad in ["gpu", "cuda:x", "cpu:1", ""] {
            let err = bad.parse::<Device>().unwrap_err().to_string();
            assert!(err.contains("invalid device"), "{err}");
        }
        assert_eq!(Device::Cuda(2).to_string(), "cuda:2");
    }

    #[test]
    fn explicit_missing_library_names_what_was_tried() {
        let err = find_ort_library(Some(Path::new("/nonexistent/libonnxruntime.so"))).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("/nonexistent/libonnxruntime.so"), "{msg}");
        assert!(msg.contains("--ort-lib"), "{msg}");
        assert!(msg.contains("does not exist"), "{msg}");
    }

    #[test]
    fn explicit_directory_finds_the_core_library() {
        let dir = tempfile::tempdir().unwrap();
        for name in [
            "libonnxruntime.so.1.31.1",
            "libonnxruntime_providers_shared.so",
            "libonnxruntime.so.1",
        ] {
            std::fs::write(dir.path().join(name), b"").unwrap();
        }
        let found = find_ort_library(Some(dir.path())).unwrap();
        assert_eq!(found.path, dir.path().join("libonnxruntime.so.1"));
        assert_eq!(found.source_name, "--ort-lib");
    }
}
