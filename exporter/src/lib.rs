//! Writes the TCANet inference graph to ONNX from a safetensors checkpoint (no libtorch)
