//! Sessions on a chosen execution provider (CPU, CUDA, TensorRT), falling
//! back to the CPU with a warning unless asked not to.
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use ort::ep::{self, ExecutionProvider};
use ort::session::builder::{GraphOptimizationLevel, SessionBuilder};
use ort::session::Session;

use crate::library::loaded;
use crate::tensorrt::TensorRtOptions;
use crate::OrtSetupError;
use ep::ArbitrarilyConfigurableExecutionProvider;
use tcanet_models::onnx::ModelInterface;

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
    /// TensorRT options (precision, caches, workspace, optimization profile).
    pub tensorrt: TensorRtOptions,
    /// Graph optimisation level 0..=3 (3 = all, the default).
    pub optimization_level: u8,
    /// Keep freed CPU buffers in ONNX Runtime's arena for reuse (faster
    /// repeated calls, higher peak memory). On by default: see docs/BENCHMARKS.md.
    pub cpu_arena: bool,
    /// Let idle intra-op threads spin (lower latency on an idle machine; on a
    /// machine shared with other work, turning it off is often faster).
    pub intra_op_spinning: bool,
    /// Turn on ONNX Runtime's profiler, writing `<prefix>_<date>.json`
    /// (every node's kernel time; see `TcanetModel::end_profiling`).
    pub profile_prefix: Option<PathBuf>,
    /// On the CPU, run the model's own functions with the project's kernels
    /// ([`crate::kernels`]); off, ONNX Runtime runs their standard-op bodies
    /// (the same outputs within float32 rounding, slower). On by default.
    pub tcanet_kernels: bool,
}

impl Default for SessionSettings {
    fn default() -> Self {
        Self {
            device: Device::Cpu,
            strict_device: false,
            intra_threads: None,
            inter_threads: None,
            tensorrt: TensorRtOptions::default(),
            optimization_level: 3,
            cpu_arena: true,
            intra_op_spinning: true,
            profile_prefix: None,
            tcanet_kernels: true,
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
    let loaded = loaded().ok_or_else(|| OrtSetupError::Session {
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
    if let Some(prefix) = &settings.profile_prefix {
        builder = builder
            .with_profiling(prefix)
            .map_err(|e| session_err(e.to_string()))?;
    }
    Ok(builder)
}

/// Held while a session with the project's kernels is created: ONNX Runtime
/// then adds their domain to ONNX's process-wide schema table, and of two
/// sessions created at the same moment the second would fail ("the domain
/// is already exist"), so they are created one at a time.
static KERNEL_SESSIONS: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Registers the requested provider on `builder`; `Err(reason)` when it cannot.
fn register_device(
    builder: &mut SessionBuilder,
    settings: &SessionSettings,
    model: Option<&ModelInterface>,
) -> Result<(), String> {
    match settings.device {
        Device::Cpu => Ok(()),
        Device::Cuda(id) => {
            if !ep::CUDA::is_available().unwrap_or(false) {
                return Err(format!(
                    "this ONNX Runtime ({}) has no CUDA execution provider; use the onnxruntime-gpu \
                     libraries (see scripts/gpu-stage.sh)",
                    loaded().map(|l| l.path.display().to_string()).unwrap_or_default()
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
                    loaded()
                        .map(|l| l.path.display().to_string())
                        .unwrap_or_default()
                ));
            }
            let mut trt = ep::TensorRT::default();
            let options = settings
                .tensorrt
                .provider_options(id, model)
                .map_err(|e| e.to_string())?;
            for (key, value) in options {
                trt = trt.with_arbitrary_config(key, value);
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
    build_session_for(model, settings, None)
}

/// [`build_session`] for a model whose interface is known: the TensorRT
/// provider then gets an optimization profile for its inputs
/// ([`TensorRtOptions::profile`]).
pub fn build_session_for(
    model: &Path,
    settings: &SessionSettings,
    interface: Option<&ModelInterface>,
) -> Result<BuiltSession, OrtSetupError> {
    let session_err = |message: String| OrtSetupError::Session {
        model: model.to_path_buf(),
        message,
    };
    let mut warnings = Vec::new();
    if settings.device != Device::Cpu {
        let mut builder = base_builder(settings, model)?;
        let attempt = register_device(&mut builder, settings, interface).and_then(|()| {
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
    let mut builder = base_builder(settings, model)?;
    let mut _one_at_a_time = None;
    if settings.tcanet_kernels {
        _one_at_a_time = Some(
            KERNEL_SESSIONS
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        let kernels = crate::kernels::cpu_kernels().map_err(|e| session_err(e.to_string()))?;
        builder = builder
            .with_operators(kernels)
            .map_err(|e| session_err(e.to_string()))?;
    }
    let session = builder
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
}
