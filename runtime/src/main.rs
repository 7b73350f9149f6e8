//! `tcanet-infer`: TCANet inference, sharding, merging and benchmarking on ONNX Runtime.
fn main() {}
