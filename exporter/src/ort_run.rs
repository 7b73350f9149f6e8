//! Running an exported model for `verify`, `bench` and the tests, through
//! the toolkit's one ONNX Runtime layer (`tcanet-ort`: library lookup,
//! sessions, the model contract).
use std::path::{Path, PathBuf};

use tcanet_ort::{init_ort, ModelError, OrtSetupError, SessionSettings, TcanetModel};

/// The six outputs of a TCANet model, float32, row-major.
pub type ModelOutputs = tcanet_ort::StageOutputs;

/// Loads ONNX Runtime once per process (see `tcanet_ort::library` for the
/// lookup order) and returns the library's path.
pub fn init(explicit: Option<&Path>) -> Result<PathBuf, OrtSetupError> {
    Ok(init_ort(explicit)?.path.clone())
}

/// How [`OnnxModel::open`] sets up its ONNX Runtime session.
#[derive(Debug, Clone, Default)]
pub struct OpenOptions {
    /// Intra-op threads (0: ONNX Runtime's default).
    pub threads: usize,
    /// Turn ONNX Runtime's profiler on: it records every node's kernel time
    /// and writes `<prefix>_<date>.json`, whose path
    /// [`OnnxModel::end_profiling`] returns.
    pub profile_prefix: Option<PathBuf>,
    /// Run the model's own functions (`ai.tcanet`) as their standard-op
    /// bodies, as other ONNX runtimes do, instead of the project's kernels.
    pub standard_ops: bool,
}

/// An exported TCANet model opened in ONNX Runtime (CPU).
#[derive(Debug)]
pub struct OnnxModel(TcanetModel);

impl OnnxModel {
    /// Opens `path` with `threads` intra-op threads (0: ONNX Runtime's
    /// default), loading ONNX Runtime first if needed.
    pub fn load(path: &Path, threads: usize) -> Result<Self, ModelError> {
        Self::open(
            path,
            &OpenOptions {
                threads,
                ..OpenOptions::default()
            },
        )
    }

    /// Opens `path` as `options` say, loading ONNX Runtime first if needed.
    pub fn open(path: &Path, options: &OpenOptions) -> Result<Self, ModelError> {
        init_ort(None)?;
        let settings = SessionSettings {
            intra_threads: (options.threads > 0).then_some(options.threads),
            profile_prefix: options.profile_prefix.clone(),
            tcanet_kernels: !options.standard_ops,
            ..SessionSettings::default()
        };
        Ok(Self(TcanetModel::load(path, &settings, None)?))
    }

    /// Stops profiling and returns the profile file's path.
    pub fn end_profiling(&mut self) -> Result<PathBuf, ModelError> {
        self.0.end_profiling()
    }

    /// Runs the model on `features` `[b, c, t]` and `proposals` `[b, n, 2]`
    /// (flat). `c` and `t` must be the model's. The inputs are handed to
    /// ONNX Runtime as they are (the proposals viewed as pairs, not copied),
    /// so a timed call times the model.
    pub fn run(
        &mut self,
        features: &[f32],
        [b, _c, _t]: [usize; 3],
        proposals: &[f32],
        n: usize,
    ) -> Result<ModelOutputs, ModelError> {
        let (pairs, odd) = proposals.as_chunks::<2>();
        if !odd.is_empty() || pairs.len() != b * n {
            return Err(ModelError::Run {
                path: self.0.path.clone(),
                message: format!(
                    "{} proposal values do not fit B={b}, N={n}",
                    proposals.len()
                ),
            });
        }
        self.0.run(features, pairs, b)
    }
}
