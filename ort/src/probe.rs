//! What the loaded ONNX Runtime offers on this host: its version, and for
//! each execution provider the project uses, whether the library was built
//! with it and whether a session can be created with it here (the facts
//! `tcanet-infer doctor` prints).
use std::fmt;
use std::path::Path;

use ort::ep::{self, ExecutionProvider};
use ort::session::Session;
use prost::Message;
use tcanet_models::onnx_proto::{
    data_type, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, ValueInfoProto,
};

use crate::LoadedOrt;

/// The version string of the ONNX Runtime library at `path`
/// (`OrtGetApiBase()->GetVersionString()`, e.g. `1.31.1`).
///
/// The library is opened again by path: for a library already loaded this
/// is the same handle, so nothing new is loaded or initialized.
pub fn library_version(path: &Path) -> Result<String, String> {
    // SAFETY: opening a shared library runs its initializers; this is the
    // same ONNX Runtime library `init_ort` loads (or has loaded).
    let lib = unsafe { libloading::Library::new(path) }.map_err(|e| e.to_string())?;
    // SAFETY: `OrtGetApiBase` has this signature in every ONNX Runtime
    // release (the C API's stable entry point).
    let get_base: libloading::Symbol<unsafe extern "C" fn() -> *const ort::sys::OrtApiBase> =
        unsafe { lib.get(b"OrtGetApiBase") }
            .map_err(|_| "no OrtGetApiBase symbol: not an ONNX Runtime library".to_string())?;
    // SAFETY: the entry point takes no arguments and returns a static table.
    let base = unsafe { get_base() };
    if base.is_null() {
        return Err("OrtGetApiBase returned nothing".into());
    }
    // SAFETY: `base` points at the library's static API table, whose
    // version string is a static NUL-terminated string.
    let version = unsafe { std::ffi::CStr::from_ptr(((*base).GetVersionString)()) };
    Ok(version.to_string_lossy().into_owned())
}

/// An execution provider the project can run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    /// `CPUExecutionProvider`.
    Cpu,
    /// `CUDAExecutionProvider`.
    Cuda,
    /// `TensorrtExecutionProvider`.
    TensorRt,
}

impl Provider {
    /// Every provider, in the order they are reported.
    pub const ALL: [Provider; 3] = [Provider::Cpu, Provider::Cuda, Provider::TensorRt];

    /// ONNX Runtime's name of the provider.
    pub fn ort_name(self) -> &'static str {
        match self {
            Provider::Cpu => ep::CPU::NAME,
            Provider::Cuda => ep::CUDA::NAME,
            Provider::TensorRt => ep::TensorRT::NAME,
        }
    }

    /// The `--device` value that selects it.
    pub fn device_name(self) -> &'static str {
        match self {
            Provider::Cpu => "cpu",
            Provider::Cuda => "cuda",
            Provider::TensorRt => "tensorrt",
        }
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.ort_name())
    }
}

/// What one execution provider can do in this process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderStatus {
    /// The provider.
    pub provider: Provider,
    /// Whether the loaded library was built with it (ONNX Runtime's
    /// available-providers list).
    pub compiled_in: bool,
    /// `Ok` when a session of a one-node model was created with it (its
    /// libraries load and a device is there); `Err` says why not.
    pub usable: Result<(), String>,
}

/// The status of every [`Provider`] in the library [`crate::init_ort`] loaded.
pub fn provider_statuses(loaded: &LoadedOrt) -> Vec<ProviderStatus> {
    Provider::ALL
        .into_iter()
        .map(|p| provider_status(loaded, p))
        .collect()
}

fn provider_status(loaded: &LoadedOrt, provider: Provider) -> ProviderStatus {
    let compiled_in = match provider {
        Provider::Cpu => ep::CPU::is_available(),
        Provider::Cuda => ep::CUDA::is_available(),
        Provider::TensorRt => ep::TensorRT::is_available(),
    }
    .unwrap_or(false);
    let usable = if compiled_in {
        try_session(loaded, provider)
    } else {
        Err("not compiled into this library".into())
    };
    ProviderStatus {
        provider,
        compiled_in,
        usable,
    }
}

/// Creates a session of [`probe_model`] with only `provider` registered
/// before the CPU.
fn try_session(loaded: &LoadedOrt, provider: Provider) -> Result<(), String> {
    let mut builder = Session::builder(&loaded.environment).map_err(|e| e.to_string())?;
    let registered = match provider {
        Provider::Cpu => ep::CPU::default().register(&mut builder),
        Provider::Cuda => ep::CUDA::default().register(&mut builder),
        Provider::TensorRt => ep::TensorRT::default().register(&mut builder),
    };
    registered.map_err(|e| format!("cannot register: {e}"))?;
    builder
        .commit_from_memory(&probe_model())
        .map(drop)
        .map_err(|e| format!("cannot create a session: {e}"))
}

/// The smallest model every provider can take: `y = Identity(x)` on a float
/// `[1]` (ONNX IR 8, opset 13), as serialized `ModelProto` bytes.
pub fn probe_model() -> Vec<u8> {
    let node = NodeProto {
        input: vec!["x".into()],
        output: vec!["y".into()],
        op_type: "Identity".into(),
        ..Default::default()
    };
    let graph = GraphProto {
        node: vec![node],
        name: "probe".into(),
        input: vec![ValueInfoProto::fixed_tensor("x", data_type::FLOAT, &[1])],
        output: vec![ValueInfoProto::fixed_tensor("y", data_type::FLOAT, &[1])],
        ..Default::default()
    };
    ModelProto {
        ir_version: 8,
        graph: Some(graph),
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: 13,
        }],
        ..Default::default()
    }
    .encode_to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The version the onnxruntime Python package of the project venv
    /// reports (its wheel ships the library the tests load).
    fn python_ort_version() -> String {
        let python = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python");
        let out = std::process::Command::new(python)
            .args(["-c", "import onnxruntime; print(onnxruntime.__version__)"])
            .output()
            .expect("the project venv's python runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }

    #[test]
    fn version_matches_the_python_package_and_the_cpu_is_usable() {
        let loaded = crate::init_ort(None).expect("ONNX Runtime of the project venv");
        assert_eq!(loaded.version, python_ort_version());
        assert_eq!(library_version(&loaded.path).unwrap(), loaded.version);
        let statuses = provider_statuses(loaded);
        assert_eq!(statuses.len(), Provider::ALL.len());
        let cpu = &statuses[0];
        assert_eq!(cpu.provider, Provider::Cpu);
        assert!(cpu.compiled_in && cpu.usable.is_ok(), "{cpu:?}");
        for s in &statuses[1..] {
            // A provider not built in is never usable.
            assert!(s.compiled_in || s.usable.is_err(), "{s:?}");
        }
    }

    #[test]
    fn a_file_that_is_not_onnx_runtime_has_no_version() {
        let err = library_version(Path::new("/nonexistent/libonnxruntime.so")).unwrap_err();
        assert!(!err.is_empty());
        // A real shared library without the entry point: this platform's libc.
        let multiarch = format!("/lib/{}-linux-gnu/libc.so.6", std::env::consts::ARCH);
        let libc = [multiarch.as_str(), "/lib64/libc.so.6", "/lib/libc.so.6"]
            .into_iter()
            .find(|p| Path::new(p).exists());
        if let Some(libc) = libc {
            let err = library_version(Path::new(libc)).unwrap_err();
            assert!(err.contains("OrtGetApiBase"), "{err}");
        }
    }

    #[test]
    fn the_probe_model_is_the_identity() {
        let loaded = crate::init_ort(None).expect("ONNX Runtime of the project venv");
        let mut session = Session::builder(&loaded.environment)
            .unwrap()
            .commit_from_memory(&probe_model())
            .unwrap();
        let x = ort::value::TensorRef::from_array_view(([1usize], &[2.5f32][..])).unwrap();
        let out = session.run(ort::inputs!["x" => x]).unwrap();
        let (shape, y) = out["y"].try_extract_tensor::<f32>().unwrap();
        assert_eq!((shape.to_vec(), y.to_vec()), (vec![1i64], vec![2.5f32]));
    }
}
