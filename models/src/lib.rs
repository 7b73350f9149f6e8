//! The definition of TCANet shared by every stage of the toolkit.
//!
//! * [`config`]: [`ModelConfig`] and its named presets (`hacs`, `anet`, `tiny`).
//! * [`params`]: every parameter's name (the authors' state_dict keys) and shape,
//!   defined once for the trainer, the exporter and checkpoint conversion;
//!   [`NUM_STAGES`], [`LAYER_NORM_EPSILON`], [`parameter_count`].
//! * [`window`]: the local heads' attention window.
//! * [`calibration`]: the decode-scale calibration record checkpoints carry.
//! * [`checkpoint`]: the checkpoint format (parameters, config, position and
//!   training state in one safetensors file): its keys, reader and writer.
//! * [`onnx`]: the ONNX interface of an exported model (names, metadata).
//! * [`onnx_proto`]: the ONNX protobuf messages, as prost structs.
//! * [`data`]: the dataset formats, their validation and per-video preparation.
//! * [`postprocess`]: the paper's post-processing (score fusion, the release's
//!   Soft-NMS, top-k, clipping), shared by the runtime and the trainer.
//! * [`pytorch`]: reads `torch.save` files (no libtorch, no Python) and
//!   converts the authors' TCANet checkpoints to ours.
//! * [`flops`]: the network's multiply-adds per region for a config, B and N.
//! * [`cpu`]: the host's vector ISA and a nominal float32 peak.
//! * [`stats`]: the percentiles every bench command reports (nearest rank).
//! * [`rand`]: SplitMix64, the one generator of reproducible inputs and seeds.
//!
//! Everything here is plain Rust, so the exporter and the runtime use this
//! crate without linking libtorch. The tch modules (base encoder, LGTE, TTN,
//! TBR, losses) are the crate `tcanet-nn` in `models/nn/`: a crate of its own,
//! not a cargo feature, because features unify across a workspace build and
//! would put libtorch into every binary of `cargo build --workspace`.
pub mod calibration;
pub mod checkpoint;
pub mod config;
pub mod cpu;
pub mod data;
pub mod flops;
pub mod onnx;
pub mod onnx_proto;
pub mod params;
pub mod postprocess;
pub mod pytorch;
pub mod rand;
pub mod stats;
pub mod window;

pub use config::{ConfigError, ModelConfig};
pub use params::{
    param_specs, parameter_count, release_key, shape_fields, ParamSpec, LAYER_NORM_EPSILON,
    NUM_STAGES,
};
