//! The host CPU's vector instruction set (detected at run time) and a
//! nominal float32 peak, to put a measured speed in proportion.
//!
//! Peak model: `threads × FMA units × f32 lanes × 2 FLOP × clock`, with
//! * lanes and FMA units per ISA: AVX-512F 16 lanes × 2 units (AMD family
//!   0x19, Zen 4, executes 512-bit operations as two 256-bit halves: 8
//!   effective lanes); AVX2 + FMA 8 × 2; AVX without FMA 8 lanes, one
//!   multiply and one add port (counted as 1 unit); SSE2 4 × 1; NEON 4 × 2;
//! * the clock from `/proc/cpuinfo` (`cpu MHz` of the first CPU: the
//!   nominal or current frequency as the kernel or hypervisor reports it,
//!   not the boost clock), else cpufreq's `cpuinfo_max_freq` (AArch64
//!   kernels give no clock in `/proc/cpuinfo`), or given explicitly.
//!
//! It is nominal: CPUs with a single 512-bit FMA unit, boost or throttled
//! clocks and SMT siblings sharing one core's units all make the true figure
//! differ. Give the clock (and, where known, the ISA) to override.
use std::fmt;
use std::str::FromStr;

/// Whether this processor has float16 arithmetic in its vector unit
/// (AArch64's FEAT_FP16, ARMv8.2-A and later: Neoverse, Graviton 2 and
/// later, Cortex-A55/A75 and later). ONNX Runtime's CPU provider then runs
/// a float16 model's convolutions and matrix products in float16; on other
/// processors it computes them in float32.
pub fn has_fp16_arithmetic() -> bool {
    #[cfg(target_arch = "aarch64")]
    {
        std::arch::is_aarch64_feature_detected!("fp16")
    }
    #[cfg(not(target_arch = "aarch64"))]
    {
        false
    }
}

/// The widest float32 vector instruction set usable on this host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VectorIsa {
    /// AVX-512 Foundation (x86-64).
    Avx512f,
    /// AVX2 with FMA3 (x86-64).
    Avx2Fma,
    /// AVX without FMA (x86-64).
    Avx,
    /// SSE2 (the x86-64 baseline).
    Sse2,
    /// Advanced SIMD (AArch64).
    Neon,
    /// No vector unit known.
    Scalar,
}

impl VectorIsa {
    /// The detected ISA of this host (run time, `is_x86_feature_detected!`).
    pub fn detect() -> Self {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f") {
                return Self::Avx512f;
            }
            if std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
            {
                return Self::Avx2Fma;
            }
            if std::arch::is_x86_feature_detected!("avx") {
                return Self::Avx;
            }
            Self::Sse2
        }
        #[cfg(target_arch = "aarch64")]
        {
            if std::arch::is_aarch64_feature_detected!("neon") {
                return Self::Neon;
            }
            Self::Scalar
        }
        #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
        {
            Self::Scalar
        }
    }

    /// The short name (`avx512f`, `avx2`, `avx`, `sse2`, `neon`, `scalar`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Avx512f => "avx512f",
            Self::Avx2Fma => "avx2",
            Self::Avx => "avx",
            Self::Sse2 => "sse2",
            Self::Neon => "neon",
            Self::Scalar => "scalar",
        }
    }

    /// float32 lanes of one vector register.
    pub fn f32_lanes(self) -> usize {
        match self {
            Self::Avx512f => 16,
            Self::Avx2Fma | Self::Avx => 8,
            Self::Sse2 | Self::Neon => 4,
            Self::Scalar => 1,
        }
    }
}

impl fmt::Display for VectorIsa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for VectorIsa {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "avx512f" | "avx512" => Self::Avx512f,
            "avx2" => Self::Avx2Fma,
            "avx" => Self::Avx,
            "sse2" => Self::Sse2,
            "neon" => Self::Neon,
            "scalar" => Self::Scalar,
            _ => {
                return Err(format!(
                    "unknown ISA `{s}`: avx512f, avx2, avx, sse2, neon or scalar"
                ))
            }
        })
    }
}

/// What `/proc/cpuinfo` says about the first CPU (Linux; empty elsewhere).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CpuInfo {
    /// `vendor_id` (`AuthenticAMD`, `GenuineIntel`).
    pub vendor: Option<String>,
    /// `cpu family`.
    pub family: Option<u32>,
    /// `model name`, or on AArch64 the core named by `CPU implementer` and
    /// `CPU part` (`Neoverse-N1`).
    pub model_name: Option<String>,
    /// `cpu MHz`.
    pub mhz: Option<f64>,
    /// `flags`, on AArch64 `Features` (the kernel's names: `avx2`,
    /// `avx512_vnni`, `amx_tile`, ...; `asimdhp`, `asimddp`, `sve`, ...).
    pub flags: Vec<String>,
}

/// CPU flags worth reporting beside the float32 ISA, which ONNX Runtime's
/// kernels use when present: on x86-64 the int8 and bf16 dot products and
/// the AMX tile units; on AArch64 float16 arithmetic, the int8 dot product
/// and matrix multiply, bf16, SVE and SME.
pub const NOTABLE_FLAGS: [&str; 12] = [
    "avx_vnni",
    "avx512_vnni",
    "avx512_bf16",
    "amx_tile",
    "amx_int8",
    "amx_bf16",
    "asimdhp",
    "asimddp",
    "i8mm",
    "bf16",
    "sve",
    "sme",
];

/// The name of an AArch64 core from `CPU implementer` and `CPU part`.
fn arm_core_name(implementer: u32, part: u32) -> String {
    let known = match (implementer, part) {
        (0x41, 0xd03) => "Cortex-A53",
        (0x41, 0xd04) => "Cortex-A35",
        (0x41, 0xd05) => "Cortex-A55",
        (0x41, 0xd07) => "Cortex-A57",
        (0x41, 0xd08) => "Cortex-A72",
        (0x41, 0xd09) => "Cortex-A73",
        (0x41, 0xd0a) => "Cortex-A75",
        (0x41, 0xd0b) => "Cortex-A76",
        (0x41, 0xd0c) => "Neoverse-N1",
        (0x41, 0xd0d) => "Cortex-A77",
        (0x41, 0xd40) => "Neoverse-V1",
        (0x41, 0xd41) => "Cortex-A78",
        (0x41, 0xd44) => "Cortex-X1",
        (0x41, 0xd46) => "Cortex-A510",
        (0x41, 0xd47) => "Cortex-A710",
        (0x41, 0xd48) => "Cortex-X2",
        (0x41, 0xd49) => "Neoverse-N2",
        (0x41, 0xd4f) => "Neoverse-V2",
        (0x41, 0xd80) => "Cortex-A520",
        (0x41, 0xd81) => "Cortex-A720",
        (0x41, 0xd84) => "Neoverse-V3",
        (0x41, 0xd8e) => "Neoverse-N3",
        (0xc0, 0xac3) => "Ampere-1",
        (0xc0, 0xac4) => "Ampere-1A",
        _ => "",
    };
    if known.is_empty() {
        format!("AArch64 core (implementer {implementer:#x}, part {part:#x})")
    } else {
        known.to_string()
    }
}

/// A `/proc/cpuinfo` number written in decimal or as `0x` hex.
fn parse_number(value: &str) -> Option<u32> {
    match value.strip_prefix("0x") {
        Some(hex) => u32::from_str_radix(hex, 16).ok(),
        None => value.parse().ok(),
    }
}

impl CpuInfo {
    /// Reads `/proc/cpuinfo` (an empty record when it cannot be read), and
    /// the clock from cpufreq when that file gives none.
    pub fn read() -> Self {
        let mut info = std::fs::read_to_string("/proc/cpuinfo")
            .map(|s| Self::parse(&s))
            .unwrap_or_default();
        if info.mhz.is_none() {
            info.mhz =
                std::fs::read_to_string("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq")
                    .ok()
                    .and_then(|khz| khz.trim().parse::<f64>().ok())
                    .map(|khz| khz / 1e3);
        }
        info
    }

    /// The first CPU's record of a `/proc/cpuinfo` text.
    pub fn parse(text: &str) -> Self {
        let mut info = Self::default();
        let (mut implementer, mut part) = (None, None);
        for line in text.lines() {
            if line.trim().is_empty() && (info != Self::default() || part.is_some()) {
                break;
            }
            let Some((key, value)) = line.split_once(':') else {
                continue;
            };
            let value = value.trim();
            match key.trim() {
                "vendor_id" => info.vendor = Some(value.to_string()),
                "cpu family" => info.family = value.parse().ok(),
                "model name" => info.model_name = Some(value.to_string()),
                "cpu MHz" => info.mhz = value.parse().ok(),
                "flags" | "Features" => {
                    info.flags = value.split_whitespace().map(str::to_string).collect()
                }
                "CPU implementer" => implementer = parse_number(value),
                "CPU part" => part = parse_number(value),
                _ => {}
            }
        }
        if let (None, Some(implementer), Some(part)) = (&info.model_name, implementer, part) {
            info.model_name = Some(arm_core_name(implementer, part));
        }
        info
    }

    /// The [`NOTABLE_FLAGS`] this CPU has, in that order.
    pub fn notable_flags(&self) -> Vec<&'static str> {
        NOTABLE_FLAGS
            .into_iter()
            .filter(|f| self.flags.iter().any(|g| g == f))
            .collect()
    }

    /// The clock in GHz (`cpu MHz` / 1000), if known.
    pub fn ghz(&self) -> Option<f64> {
        self.mhz.map(|m| m / 1e3)
    }
}

/// Logical cores this process may run on (1 when unknown).
pub fn logical_cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// A nominal float32 peak: `threads × fma_units × lanes × 2 × ghz` GFLOP/s.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NominalPeak {
    /// The ISA assumed.
    pub isa: VectorIsa,
    /// Cores (threads) counted.
    pub threads: usize,
    /// FMA (or multiply + add) units per core.
    pub fma_units: usize,
    /// Effective float32 lanes per unit.
    pub lanes: usize,
    /// Clock in GHz.
    pub ghz: f64,
}

impl NominalPeak {
    /// The model for `isa` on `threads` cores at `ghz`, adjusted for what
    /// `info` says (AMD family 0x19 runs AVX-512 on 256-bit units).
    pub fn new(isa: VectorIsa, info: &CpuInfo, threads: usize, ghz: f64) -> Self {
        let zen4 = info.vendor.as_deref() == Some("AuthenticAMD") && info.family == Some(0x19);
        let lanes = match isa {
            VectorIsa::Avx512f if zen4 => 8,
            other => other.f32_lanes(),
        };
        let fma_units = match isa {
            VectorIsa::Avx512f | VectorIsa::Avx2Fma | VectorIsa::Neon => 2,
            VectorIsa::Avx | VectorIsa::Sse2 | VectorIsa::Scalar => 1,
        };
        Self {
            isa,
            threads,
            fma_units,
            lanes,
            ghz,
        }
    }

    /// This host's peak: `isa` or the detected one, on `threads` cores (all
    /// logical cores when `None`) at `ghz` or the clock `info` reports (NaN,
    /// and so a NaN peak, when neither is known).
    pub fn of_host(
        info: &CpuInfo,
        threads: Option<usize>,
        ghz: Option<f64>,
        isa: Option<VectorIsa>,
    ) -> Self {
        Self::new(
            isa.unwrap_or_else(VectorIsa::detect),
            info,
            threads.unwrap_or_else(logical_cores),
            ghz.or(info.ghz()).unwrap_or(f64::NAN),
        )
    }

    /// The share of this peak that `gflops` achieved GFLOP/s is.
    pub fn fraction(&self, gflops: f64) -> f64 {
        gflops / self.gflops()
    }

    /// The peak in GFLOP/s.
    pub fn gflops(&self) -> f64 {
        (self.threads * self.fma_units * self.lanes * 2) as f64 * self.ghz
    }
}

impl fmt::Display for NominalPeak {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:.0} GFLOP/s nominal ({} threads × {} FMA units × {} f32 lanes ({}) × 2 × {:.2} GHz)",
            self.gflops(),
            self.threads,
            self.fma_units,
            self.lanes,
            self.isa,
            self.ghz
        )
    }
}

/// This process's peak resident memory so far in MiB (`VmHWM` of
/// `/proc/self/status`); `None` where the kernel does not say.
pub fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find_map(|l| l.strip_prefix("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().next()?.parse().ok()?;
    Some(kib / 1024.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ZEN4: &str = "processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: 25\n\
        model\t\t: 17\nmodel name\t: AMD EPYC\ncpu MHz\t\t: 2596.146\n\
        flags\t\t: fpu avx2 avx512f amx_tile avx512_vnni\n\nprocessor\t: 1\n\
        vendor_id\t: AuthenticAMD\ncpu MHz\t\t: 1.0\n";

    #[test]
    fn cpuinfo_of_the_first_cpu_is_read() {
        let info = CpuInfo::parse(ZEN4);
        assert_eq!(info.vendor.as_deref(), Some("AuthenticAMD"));
        assert_eq!(info.family, Some(25));
        assert_eq!(info.model_name.as_deref(), Some("AMD EPYC"));
        assert_eq!(info.mhz, Some(2596.146));
        assert_eq!(info.ghz(), Some(2.596146));
        // In NOTABLE_FLAGS' order, not the file's; avx2 is not one of them.
        assert_eq!(info.notable_flags(), ["avx512_vnni", "amx_tile"]);
        assert_eq!(CpuInfo::parse(""), CpuInfo::default());
    }

    #[test]
    fn aarch64_cpuinfo_names_the_core_and_its_features() {
        let record = |part: &str| {
            format!(
                "processor\t: 0\nBogoMIPS\t: 50.00\nFeatures\t: fp asimd sve asimdhp asimddp\n\
                 CPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: 0x3\n\
                 CPU part\t: {part}\nCPU revision\t: 1\n\nprocessor\t: 1\nCPU part\t: 0xd05\n"
            )
        };
        let n1 = CpuInfo::parse(&record("0xd0c"));
        assert_eq!(n1.model_name.as_deref(), Some("Neoverse-N1"));
        assert_eq!(n1.notable_flags(), ["asimdhp", "asimddp", "sve"]);
        assert_eq!((n1.mhz, n1.vendor), (None, None));
        let other = CpuInfo::parse(&record("0xfff"));
        assert_eq!(
            other.model_name.as_deref(),
            Some("AArch64 core (implementer 0x41, part 0xfff)")
        );
    }

    #[test]
    fn peak_is_threads_units_lanes_two_and_clock() {
        let intel = CpuInfo::default();
        // Two AVX2 cores, 2 FMA units, 8 lanes at 2.4 GHz: 153.6 GFLOP/s.
        let p = NominalPeak::new(VectorIsa::Avx2Fma, &intel, 2, 2.4);
        assert!((p.gflops() - 153.6).abs() < 1e-9);
        assert!(
            (NominalPeak::new(VectorIsa::Avx512f, &intel, 1, 2.0).gflops() - 128.0).abs() < 1e-9
        );
        // Zen 4: AVX-512 at the AVX2 rate.
        let zen4 = CpuInfo::parse(ZEN4);
        let z = NominalPeak::new(VectorIsa::Avx512f, &zen4, 2, 2.6);
        assert!((z.gflops() - 2.0 * 2.0 * 8.0 * 2.0 * 2.6).abs() < 1e-9);
        assert!(z.to_string().contains("8 f32 lanes (avx512f)"));
        // The host form takes what is given over what is read.
        let h = NominalPeak::of_host(&zen4, Some(3), Some(1.5), Some(VectorIsa::Avx2Fma));
        assert_eq!(h, NominalPeak::new(VectorIsa::Avx2Fma, &zen4, 3, 1.5));
        assert!((h.fraction(h.gflops() / 4.0) - 0.25).abs() < 1e-12);
        let read = NominalPeak::of_host(&zen4, Some(1), None, Some(VectorIsa::Sse2));
        assert!((read.ghz - 2.596146).abs() < 1e-12);
        assert!(NominalPeak::of_host(&intel, Some(1), None, None)
            .gflops()
            .is_nan());
    }

    #[test]
    fn isa_names_round_trip_and_detection_runs() {
        for isa in [
            VectorIsa::Avx512f,
            VectorIsa::Avx2Fma,
            VectorIsa::Avx,
            VectorIsa::Sse2,
            VectorIsa::Neon,
            VectorIsa::Scalar,
        ] {
            assert_eq!(isa.as_str().parse::<VectorIsa>(), Ok(isa));
        }
        assert!("avx3".parse::<VectorIsa>().is_err());
        let isa = VectorIsa::detect();
        #[cfg(target_arch = "x86_64")]
        assert!(matches!(
            isa,
            VectorIsa::Avx512f | VectorIsa::Avx2Fma | VectorIsa::Avx | VectorIsa::Sse2
        ));
        assert!(isa.f32_lanes() >= 1);
    }
}
