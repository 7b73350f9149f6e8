//! Lean TCANet inference on ONNX Runtime with the paper's post-processing (no libtorch).
//!
//! Loading ONNX Runtime, sessions and the model contract are the crate
//! `tcanet-ort` ([`tcanet_ort`]), shared with the exporter.
//! * [`postprocess`]: score fusion, the release's Soft-NMS, top-100 and clipping.
//! * [`bench`]: latency/throughput/peak-memory benchmarks.
//! * [`doctor`]: what the host offers (ONNX Runtime, providers, CPU).
//! * [`classifier`]: video-level class scores (three file shapes) and detections.
//! * [`eval`]: end-of-run scores through `tcanet-evaluator`.
//! * [`infer`]: pipelined dataset inference with typed per-video failures.
//! * [`output`]: leaderboard files with the run's identity and generation,
//!   shards, partials and a merge that checks them against each other.
//! * [`refiner`]: refinement of in-memory arrays as a library call
//!   ([`refiner::Refiner`], `Send + Sync`), the per-video path `run` uses.
//! * [`serve`]: `tcanet-infer serve`, the KServe v2 (Triton) HTTP server.
//! * [`tensorrt_flags`]: the TensorRT flags shared by `run`, `bench`, `serve`.
pub mod bench;
pub mod classifier;
pub mod doctor;
pub mod eval;
pub mod infer;
pub mod output;
/// The paper's post-processing (defined in `tcanet-models`, shared with the trainer).
pub use tcanet_models::postprocess;
pub mod refiner;
pub mod serve;
pub mod tensorrt_flags;
