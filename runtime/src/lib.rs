//! Lean TCANet inference on ONNX Runtime with the paper's post-processing (no libtorch)
