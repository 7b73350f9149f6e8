//! The command line of `tcanet-train`, in a crate without libtorch: the
//! `tcanet-train` launcher parses it before it looks for libtorch, so bad
//! flags (exit 2), `--help` and `--version` never need libtorch; the trainer
//! (`tcanet-train-core`) parses the same definition.
//!
//! * [`cli`]: the subcommands and flags (clap).
//! * [`limits`]: the valid range of every numeric setting (flags and the
//!   `--train-config` file's checks share them).
//! * [`device`]: the spellings of `--device`.
//! * [`decode`]: `--decode-scale` (calibrate, release or a scale).
//! * [`synth_defaults`]: the defaults of `synth`.
pub mod cli;
pub mod decode;
pub mod device;
pub mod limits;
pub mod synth_defaults;
