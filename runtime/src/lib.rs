//! Lean TCANet inference on ONNX Runtime with the paper's post-processing (no libtorch).
//!
//! * [`ort_setup`]: finding and loading `libonnxruntime.so`, devices with CPU fallback, sessions.
//! * [`postprocess`]: score fusion, the release's Soft-NMS, top-100 and clipping; detections.
pub mod ort_setup;
