//! The TensorRT flags of `run`, `bench` and `serve` (clap), turned into
//! [`tcanet_ort::TensorRtOptions`].
use std::path::PathBuf;

use tcanet_cli::range;
use tcanet_ort::{DimRange, TensorRtOptions};

/// A clap parser for `MIN:OPT:MAX` (or `N`) profile ranges.
fn dim_range(text: &str) -> Result<DimRange, String> {
    text.parse()
        .map_err(|e: tcanet_ort::ProfileError| e.to_string())
}

/// TensorRT options (used with `--device tensorrt`).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct TrtFlags {
    /// TensorRT: build fp16 engines.
    #[arg(long)]
    pub trt_fp16: bool,
    /// TensorRT: keep built engines and the timing cache in this directory
    /// and reuse them (the first run builds, later runs load in seconds).
    #[arg(long, value_name = "DIR")]
    pub trt_engine_cache: Option<PathBuf>,
    /// TensorRT: workspace for building engines, in MiB (1 to 1048576;
    /// default: ONNX Runtime's).
    #[arg(long, value_name = "MIB", value_parser = range::int_in::<u64>(1, 1 << 20))]
    pub trt_workspace_mib: Option<u64>,
    /// TensorRT optimization profile: videos per call, MIN:OPT:MAX or N
    /// (default 1:1:8; serve: 1:B:B with B = --max-batch-size). One engine
    /// covers the whole range: no rebuild when the size changes.
    #[arg(long, value_name = "MIN:OPT:MAX", value_parser = dim_range)]
    pub trt_profile_batch: Option<DimRange>,
    /// TensorRT optimization profile: proposals per video, MIN:OPT:MAX or N
    /// (default 1:100:1024). Videos with more proposals are run in calls of
    /// at most MAX.
    #[arg(long, value_name = "MIN:OPT:MAX", value_parser = dim_range)]
    pub trt_profile_proposals: Option<DimRange>,
    /// TensorRT optimization profile: time steps, for models exported with
    /// --dynamic-time only, MIN:OPT:MAX or N (default 1:T:4T with T the
    /// config's temporal_scale).
    #[arg(long, value_name = "MIN:OPT:MAX", value_parser = dim_range)]
    pub trt_profile_steps: Option<DimRange>,
}

impl TrtFlags {
    /// The options these flags ask for.
    pub fn options(&self) -> TensorRtOptions {
        TensorRtOptions {
            fp16: self.trt_fp16,
            cache_dir: self.trt_engine_cache.clone(),
            workspace_bytes: self.trt_workspace_mib.map(|m| m << 20),
            batch: self.trt_profile_batch,
            proposals: self.trt_profile_proposals,
            steps: self.trt_profile_steps,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        trt: TrtFlags,
    }

    #[test]
    fn flags_become_options() {
        let cli = Cli::try_parse_from([
            "x",
            "--trt-fp16",
            "--trt-engine-cache",
            "cache",
            "--trt-workspace-mib",
            "2048",
            "--trt-profile-batch",
            "1:4:16",
            "--trt-profile-proposals",
            "100",
        ])
        .unwrap();
        let o = cli.trt.options();
        assert!(o.fp16);
        assert_eq!(o.cache_dir, Some(PathBuf::from("cache")));
        assert_eq!(o.workspace_bytes, Some(2048 << 20));
        assert_eq!(o.batch, Some(DimRange::new(1, 4, 16).unwrap()));
        assert_eq!(o.proposals, Some(DimRange::fixed(100).unwrap()));
        assert_eq!(o.steps, None);
        for bad in [
            &["x", "--trt-workspace-mib", "0"][..],
            &["x", "--trt-profile-batch", "4:2:8"],
            &["x", "--trt-profile-proposals", "0:1:2"],
            &["x", "--trt-profile-steps", "1:2"],
        ] {
            let e = Cli::try_parse_from(bad).err().expect("refused").to_string();
            assert!(e.contains(bad[1]), "{e}");
        }
    }
}
