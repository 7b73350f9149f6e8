//! `tcanet-infer doctor`: what this host offers the runtime, one fact per
//! line (or one JSON object): the toolkit's version, the ONNX Runtime
//! library found (where, by which lookup rule, its version), the execution
//! providers it was built with and whether each works here, and the CPU
//! with its nominal float32 peak.
use std::fmt;
use std::path::Path;

use serde::Serialize;
use tcanet_models::cpu::{logical_cores, CpuInfo, NominalPeak};
use tcanet_ort::{
    cpu_refuses_float16, init_ort, lookup_rule, provider_statuses, OrtSetupError, LOOKUP_RULES,
};

/// Everything `doctor` reports (the `--json` object).
#[derive(Debug, Clone, Serialize)]
pub struct DoctorReport {
    /// The toolkit's version.
    pub tcanet_version: String,
    /// The git commit the binary was built from.
    pub git_commit: String,
    /// The ONNX Runtime library, `null` when none could be loaded.
    pub onnxruntime: Option<OrtFacts>,
    /// Why no library could be loaded, with what to do.
    pub onnxruntime_error: Option<String>,
    /// The host CPU.
    pub cpu: CpuFacts,
}

/// The ONNX Runtime library in use.
#[derive(Debug, Clone, Serialize)]
pub struct OrtFacts {
    /// The library file.
    pub path: String,
    /// The lookup rule that found it (`--ort-lib`, `ORT_DYLIB_PATH`, ...).
    pub found_by: String,
    /// Its number in the lookup order (1 to 5).
    pub rule: Option<usize>,
    /// The library's version.
    pub version: String,
    /// The version the toolkit is built and tested against.
    pub expected_version: String,
    /// ONNX Runtime's build-info string.
    pub build_info: String,
    /// CPU, CUDA and TensorRT.
    pub providers: Vec<ProviderFacts>,
    /// Float16 models are refused on this CPU with this library
    /// (`tcanet_ort::cpu_refuses_float16`).
    pub float16_refused_on_cpu: bool,
}

/// One execution provider.
#[derive(Debug, Clone, Serialize)]
pub struct ProviderFacts {
    /// ONNX Runtime's name (`CUDAExecutionProvider`).
    pub name: String,
    /// The `--device` value selecting it.
    pub device: String,
    /// Built into the library.
    pub compiled_in: bool,
    /// A session could be created with it here.
    pub usable: bool,
    /// Why it is not usable.
    pub reason: Option<String>,
}

/// The host CPU and its nominal float32 peak (see `tcanet_models::cpu`).
#[derive(Debug, Clone, Serialize)]
pub struct CpuFacts {
    /// `model name` of /proc/cpuinfo.
    pub model: Option<String>,
    /// Logical cores this process may use.
    pub logical_cores: usize,
    /// The widest float32 vector ISA detected.
    pub isa: String,
    /// Dot-product, matrix and float16 extensions present (`avx512_vnni`,
    /// `amx_tile`, `asimdhp`, ...).
    pub extensions: Vec<String>,
    /// Float16 arithmetic (AArch64 FEAT_FP16), where ONNX Runtime's CPU
    /// provider computes float16 models in float16.
    pub fp16_arithmetic: bool,
    /// Clock in GHz (`cpu MHz`), if known.
    pub clock_ghz: Option<f64>,
    /// Nominal float32 peak over all logical cores, GFLOP/s (`null` without a clock).
    pub nominal_peak_gflops: Option<f64>,
    /// How the peak is counted.
    pub peak_formula: String,
}

impl DoctorReport {
    /// Looks (loading ONNX Runtime from `ort_lib` or the lookup order);
    /// also returns the error when no library could be loaded. `git_commit`
    /// is the binary's (`tcanet_version::git_commit!()`).
    pub fn gather(ort_lib: Option<&Path>, git_commit: &str) -> (Self, Option<OrtSetupError>) {
        let (onnxruntime, error) = match ort_facts(ort_lib) {
            Ok(facts) => (Some(facts), None),
            Err(e) => (None, Some(e)),
        };
        let report = Self {
            tcanet_version: env!("CARGO_PKG_VERSION").into(),
            git_commit: git_commit.into(),
            onnxruntime,
            onnxruntime_error: error.as_ref().map(ToString::to_string),
            cpu: CpuFacts::of_host(),
        };
        (report, error)
    }
}

fn ort_facts(ort_lib: Option<&Path>) -> Result<OrtFacts, OrtSetupError> {
    let loaded = init_ort(ort_lib)?;
    let providers = provider_statuses(loaded)
        .into_iter()
        .map(|s| ProviderFacts {
            name: s.provider.ort_name().into(),
            device: s.provider.device_name().into(),
            compiled_in: s.compiled_in,
            usable: s.usable.is_ok(),
            reason: s.usable.err(),
        })
        .collect();
    Ok(OrtFacts {
        path: loaded.path.display().to_string(),
        found_by: loaded.source_name.clone(),
        rule: lookup_rule(&loaded.source_name),
        version: loaded.version.clone(),
        expected_version: tcanet_ort::ORT_VERSION.into(),
        build_info: loaded.build_info.clone(),
        providers,
        float16_refused_on_cpu: cpu_refuses_float16(),
    })
}

impl CpuFacts {
    /// This host's CPU.
    pub fn of_host() -> Self {
        let info = CpuInfo::read();
        let peak = NominalPeak::of_host(&info, None, None, None);
        Self {
            model: info.model_name.clone(),
            logical_cores: logical_cores(),
            isa: peak.isa.to_string(),
            extensions: info.notable_flags().iter().map(|f| f.to_string()).collect(),
            fp16_arithmetic: tcanet_models::cpu::has_fp16_arithmetic(),
            clock_ghz: info.ghz(),
            nominal_peak_gflops: Some(peak.gflops()).filter(|g| g.is_finite()),
            peak_formula: peak.to_string(),
        }
    }
}

impl fmt::Display for DoctorReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "tcanet: {} (commit {})",
            self.tcanet_version, self.git_commit
        )?;
        match &self.onnxruntime {
            Some(ort) => write!(f, "{ort}")?,
            None => writeln!(
                f,
                "onnxruntime: not found (the reason follows on standard error)"
            )?,
        }
        write!(f, "{}", self.cpu)
    }
}

impl fmt::Display for OrtFacts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "onnxruntime library: {}", self.path)?;
        let rule = self
            .rule
            .map(|r| format!("rule {r} of {}: ", LOOKUP_RULES.len()));
        writeln!(
            f,
            "onnxruntime found by: {}{} (order: {})",
            rule.unwrap_or_default(),
            self.found_by,
            LOOKUP_RULES.join(", ")
        )?;
        let note = if self.version == self.expected_version {
            "the version this build is tested with".to_string()
        } else {
            format!("this build is tested with {}", self.expected_version)
        };
        writeln!(f, "onnxruntime version: {} ({note})", self.version)?;
        writeln!(f, "onnxruntime build: {}", self.build_info)?;
        for p in &self.providers {
            let state = match (p.compiled_in, &p.reason) {
                (false, _) => "not compiled in".to_string(),
                (true, None) => "compiled in, usable".to_string(),
                (true, Some(why)) => format!("compiled in, not usable: {}", one_line(why)),
            };
            writeln!(f, "provider {} (--device {}): {state}", p.name, p.device)?;
        }
        if self.float16_refused_on_cpu {
            writeln!(
                f,
                "float16 models on the cpu: refused (this ONNX Runtime computes float16 \
                 grouped convolutions wrongly on processors with float16 arithmetic: \
                 export float32 or --int8 models for this CPU)"
            )?;
        }
        Ok(())
    }
}

impl fmt::Display for CpuFacts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "cpu: {}", self.model.as_deref().unwrap_or("unknown"))?;
        writeln!(f, "logical cores: {}", self.logical_cores)?;
        let ext = if self.extensions.is_empty() {
            String::new()
        } else {
            format!(" (with {})", self.extensions.join(", "))
        };
        writeln!(f, "vector isa: {}{ext}", self.isa)?;
        match self.nominal_peak_gflops {
            Some(_) => writeln!(f, "nominal peak: {}", self.peak_formula),
            None => writeln!(
                f,
                "nominal peak: unknown (no clock in /proc/cpuinfo or cpufreq)"
            ),
        }
    }
}

/// ONNX Runtime's messages can span lines; a fact is one line.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}
