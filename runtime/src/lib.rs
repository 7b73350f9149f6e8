//! Lean TCANet inference on ONNX Runtime with the paper's post-processing (no libtorch).
//!
//! * [`ort_setup`]: finding and loading `libonnxruntime.so`, devices with CPU fallback, sessions.
//! * [`model`]: an exported model, its contract checked before any video, one reused session.
//! * [`postprocess`]: score fusion, the release's Soft-NMS, top-100 and clipping.
//! * [`bench`]: latency/throughput/peak-memory benchmarks.
//! * [`classifier`]: video-level class scores (two formats) and detections.
//! * [`eval`]: end-of-run scores through `tcanet-evaluator`.
//! * [`infer`]: pipelined dataset inference with per-video failures.
//! * [`output`]: leaderboard files, shards, partials and merging.
pub mod bench;
pub mod classifier;
pub mod eval;
pub mod infer;
pub mod model;
pub mod ort_setup;
pub mod output;
pub mod postprocess;
