//! TensorRT execution provider options, built as data (key, value) before
//! they are handed to ONNX Runtime, so they can be checked without a GPU.
//!
//! The optimization profile covers the model's dynamic dimensions — the
//! batch B, the proposals per video N and, for a model exported with a
//! symbolic T (`--dynamic-time`), the time steps T — with a min/opt/max
//! range each. C (and a fixed T) come from the model's metadata. With an
//! explicit profile TensorRT builds one engine for the whole range, so a
//! video with another N than the previous one does not trigger a rebuild.
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use tcanet_models::onnx::{ModelInterface, TimeSteps, INPUT_FEATURES, INPUT_PROPOSALS};

/// The largest value a profile dimension may take.
pub const MAX_PROFILE_DIM: u32 = 1 << 20;

/// Default batch range (videos per call): `run` and `bench` call with one video.
pub const DEFAULT_BATCH: DimRange = DimRange {
    min: 1,
    opt: 1,
    max: 8,
};

/// Default proposals-per-video range: the release feeds 100 at a time.
pub const DEFAULT_PROPOSALS: DimRange = DimRange {
    min: 1,
    opt: 100,
    max: 1024,
};

/// Why a TensorRT profile range or a model's profile cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProfileError {
    /// A bound below 1 or above [`MAX_PROFILE_DIM`].
    #[error("{min}:{opt}:{max}: sizes must be from 1 to {MAX_PROFILE_DIM}")]
    OutOfRange {
        /// Smallest size asked.
        min: u32,
        /// Size to tune for.
        opt: u32,
        /// Largest size asked.
        max: u32,
    },
    /// Bounds not in the order MIN <= OPT <= MAX.
    #[error("{min}:{opt}:{max}: need MIN <= OPT <= MAX")]
    Unordered {
        /// Smallest size asked.
        min: u32,
        /// Size to tune for.
        opt: u32,
        /// Largest size asked.
        max: u32,
    },
    /// Text that is not `MIN:OPT:MAX` or `N`.
    #[error("'{0}': expected MIN:OPT:MAX (or N) with integers from 1 to {MAX_PROFILE_DIM}, e.g. 1:100:1024")]
    Syntax(String),
    /// A time-step range for a model whose T is fixed.
    #[error(
        "a time-step profile applies to models exported with --dynamic-time; \
         this model's T is fixed at {0}"
    )]
    StepsOnFixedModel(usize),
    /// A model's T beyond what a profile can hold.
    #[error("T = {0} is too large for a TensorRT profile (at most {MAX_PROFILE_DIM})")]
    TooLarge(usize),
}

/// The range of one dynamic dimension in a TensorRT optimization profile:
/// `1 <= min <= opt <= max <= MAX_PROFILE_DIM`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DimRange {
    /// Smallest size accepted.
    pub min: u32,
    /// The size TensorRT tunes its kernels for.
    pub opt: u32,
    /// Largest size accepted.
    pub max: u32,
}

impl DimRange {
    /// A checked range; the message says which bound is wrong.
    pub fn new(min: u32, opt: u32, max: u32) -> Result<Self, ProfileError> {
        if min < 1 || max > MAX_PROFILE_DIM {
            return Err(ProfileError::OutOfRange { min, opt, max });
        }
        if !(min <= opt && opt <= max) {
            return Err(ProfileError::Unordered { min, opt, max });
        }
        Ok(Self { min, opt, max })
    }

    /// One size only (`n:n:n`).
    pub fn fixed(n: u32) -> Result<Self, ProfileError> {
        Self::new(n, n, n)
    }
}

impl fmt::Display for DimRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.min, self.opt, self.max)
    }
}

impl FromStr for DimRange {
    type Err = ProfileError;

    /// `MIN:OPT:MAX`, or `N` for `N:N:N`.
    fn from_str(s: &str) -> Result<Self, ProfileError> {
        let part = |p: &str| {
            p.trim()
                .parse::<u32>()
                .map_err(|_| ProfileError::Syntax(s.to_string()))
        };
        let parts: Vec<&str> = s.split(':').collect();
        match parts.as_slice() {
            [n] => Self::fixed(part(n)?),
            [min, opt, max] => Self::new(part(min)?, part(opt)?, part(max)?),
            _ => Err(ProfileError::Syntax(s.to_string())),
        }
    }
}

/// What the TensorRT provider is asked for (used with `--device tensorrt`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TensorRtOptions {
    /// Build fp16 engines.
    pub fp16: bool,
    /// Keep built engines and the timing cache in this directory and reuse them.
    pub cache_dir: Option<PathBuf>,
    /// Workspace TensorRT may use while building (bytes); `None`: ONNX Runtime's default.
    pub workspace_bytes: Option<u64>,
    /// Batch range; `None`: [`DEFAULT_BATCH`].
    pub batch: Option<DimRange>,
    /// Proposals-per-video range; `None`: [`DEFAULT_PROPOSALS`].
    pub proposals: Option<DimRange>,
    /// Time-step range, for models with a symbolic T only; `None`:
    /// `1 : temporal_scale : 4 · temporal_scale`.
    pub steps: Option<DimRange>,
}

/// The optimization profile of one model: per bound, the shapes of both
/// inputs in ONNX Runtime's `name:AxBxC,name:...` syntax.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileShapes {
    /// `trt_profile_min_shapes`.
    pub min: String,
    /// `trt_profile_opt_shapes`.
    pub opt: String,
    /// `trt_profile_max_shapes`.
    pub max: String,
    /// The ranges used (B, N, T).
    pub batch: DimRange,
    /// Proposals per video.
    pub proposals: DimRange,
    /// Time steps (fixed models: `T:T:T`).
    pub steps: DimRange,
}

impl TensorRtOptions {
    /// The batch range in use.
    pub fn batch_range(&self) -> DimRange {
        self.batch.unwrap_or(DEFAULT_BATCH)
    }

    /// The proposals range in use.
    pub fn proposals_range(&self) -> DimRange {
        self.proposals.unwrap_or(DEFAULT_PROPOSALS)
    }

    /// The profile for `model`: B, N and (symbolic T only) T from these
    /// options or the defaults, C and a fixed T from the model's config.
    pub fn profile(&self, model: &ModelInterface) -> Result<ProfileShapes, ProfileError> {
        let cfg = &model.config;
        let too_large = |t: usize| move |_| ProfileError::TooLarge(t);
        let t = u32::try_from(cfg.temporal_scale).map_err(too_large(cfg.temporal_scale))?;
        let steps = match (model.time_steps, self.steps) {
            (TimeSteps::Fixed(fixed), Some(_)) => {
                return Err(ProfileError::StepsOnFixedModel(fixed))
            }
            (TimeSteps::Fixed(fixed), None) => {
                DimRange::fixed(u32::try_from(fixed).map_err(too_large(fixed))?)?
            }
            (TimeSteps::Dynamic, Some(r)) => r,
            (TimeSteps::Dynamic, None) => {
                DimRange::new(1, t, t.saturating_mul(4).min(MAX_PROFILE_DIM))?
            }
        };
        let (batch, proposals) = (self.batch_range(), self.proposals_range());
        let c = cfg.feat_dim;
        let shapes = |pick: fn(&DimRange) -> u32| {
            let (b, n, t) = (pick(&batch), pick(&proposals), pick(&steps));
            format!("{INPUT_FEATURES}:{b}x{c}x{t},{INPUT_PROPOSALS}:{b}x{n}x2")
        };
        Ok(ProfileShapes {
            min: shapes(|r| r.min),
            opt: shapes(|r| r.opt),
            max: shapes(|r| r.max),
            batch,
            proposals,
            steps,
        })
    }

    /// Every option handed to the TensorRT provider, as ONNX Runtime's keys
    /// and string values, in a fixed order. Without `model` (its metadata
    /// unknown) no profile is given and TensorRT derives one per shape seen.
    pub fn provider_options(
        &self,
        device_id: u32,
        model: Option<&ModelInterface>,
    ) -> Result<Vec<(&'static str, String)>, ProfileError> {
        let flag = |b: bool| if b { "1" } else { "0" }.to_string();
        let mut out = vec![
            ("device_id", device_id.to_string()),
            ("trt_fp16_enable", flag(self.fp16)),
        ];
        if let Some(bytes) = self.workspace_bytes {
            out.push(("trt_max_workspace_size", bytes.to_string()));
        }
        if let Some(dir) = &self.cache_dir {
            let dir = dir.display().to_string();
            out.push(("trt_engine_cache_enable", flag(true)));
            out.push(("trt_engine_cache_path", dir.clone()));
            out.push(("trt_timing_cache_enable", flag(true)));
            out.push(("trt_timing_cache_path", dir));
        }
        if let Some(model) = model {
            let p = self.profile(model)?;
            out.push(("trt_profile_min_shapes", p.min));
            out.push(("trt_profile_opt_shapes", p.opt));
            out.push(("trt_profile_max_shapes", p.max));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tcanet_models::onnx::Precision;
    use tcanet_models::ModelConfig;

    fn interface(time_steps: TimeSteps) -> ModelInterface {
        ModelInterface::new(ModelConfig::tiny(), Precision::Fp32, time_steps)
    }

    #[test]
    fn ranges_parse_and_are_checked() {
        assert_eq!("1:100:1024".parse::<DimRange>().unwrap(), DEFAULT_PROPOSALS);
        assert_eq!(
            "8".parse::<DimRange>().unwrap(),
            DimRange {
                min: 8,
                opt: 8,
                max: 8
            }
        );
        for bad in [
            "0:1:2",
            "2:1:3",
            "1:5:4",
            "1:2",
            "a:b:c",
            "",
            "1:1:2000000",
            "-1",
        ] {
            assert!(bad.parse::<DimRange>().is_err(), "{bad}");
        }
        assert!("2:1:3"
            .parse::<DimRange>()
            .unwrap_err()
            .to_string()
            .contains("MIN <= OPT <= MAX"));
    }

    #[test]
    fn defaults_for_a_fixed_t_model() {
        let opts = TensorRtOptions::default();
        let got = opts
            .provider_options(0, Some(&interface(TimeSteps::Fixed(64))))
            .unwrap();
        let want: Vec<(&str, String)> = vec![
            ("device_id", "0".into()),
            ("trt_fp16_enable", "0".into()),
            (
                "trt_profile_min_shapes",
                "features:1x32x64,proposals:1x1x2".into(),
            ),
            (
                "trt_profile_opt_shapes",
                "features:1x32x64,proposals:1x100x2".into(),
            ),
            (
                "trt_profile_max_shapes",
                "features:8x32x64,proposals:8x1024x2".into(),
            ),
        ];
        assert_eq!(got, want);
        // Without the model's metadata there is no profile.
        assert_eq!(opts.provider_options(0, None).unwrap(), want[..2].to_vec());
    }

    #[test]
    fn every_option_reaches_the_list() {
        let opts = TensorRtOptions {
            fp16: true,
            cache_dir: Some(PathBuf::from("/tmp/trt cache")),
            workspace_bytes: Some(2 << 30),
            batch: Some(DimRange::new(1, 4, 16).unwrap()),
            proposals: Some(DimRange::new(10, 50, 200).unwrap()),
            steps: Some(DimRange::new(32, 64, 256).unwrap()),
        };
        let got = opts
            .provider_options(3, Some(&interface(TimeSteps::Dynamic)))
            .unwrap();
        let want: Vec<(&str, String)> = vec![
            ("device_id", "3".into()),
            ("trt_fp16_enable", "1".into()),
            ("trt_max_workspace_size", "2147483648".into()),
            ("trt_engine_cache_enable", "1".into()),
            ("trt_engine_cache_path", "/tmp/trt cache".into()),
            ("trt_timing_cache_enable", "1".into()),
            ("trt_timing_cache_path", "/tmp/trt cache".into()),
            (
                "trt_profile_min_shapes",
                "features:1x32x32,proposals:1x10x2".into(),
            ),
            (
                "trt_profile_opt_shapes",
                "features:4x32x64,proposals:4x50x2".into(),
            ),
            (
                "trt_profile_max_shapes",
                "features:16x32x256,proposals:16x200x2".into(),
            ),
        ];
        assert_eq!(got, want);
    }

    #[test]
    fn dynamic_t_defaults_and_fixed_t_refuses_a_steps_range() {
        let opts = TensorRtOptions::default();
        let p = opts.profile(&interface(TimeSteps::Dynamic)).unwrap();
        assert_eq!(p.steps, DimRange::new(1, 64, 256).unwrap());
        assert_eq!(p.max, "features:8x32x256,proposals:8x1024x2");
        let with_steps = TensorRtOptions {
            steps: Some(DimRange::fixed(64).unwrap()),
            ..TensorRtOptions::default()
        };
        let e = with_steps
            .profile(&interface(TimeSteps::Fixed(64)))
            .unwrap_err()
            .to_string();
        assert!(e.contains("--dynamic-time") && e.contains("64"), "{e}");
    }
}
