//! TCANet trainer (tch): datasets, training loop, checkpoints, calibrated
//! decoding, synthetic data.
//!
//! * [`session`]: `train` as a library: settings, data, resume checks, run directory.
//! * [`run`]: the loop, validation, held-out scoring and checkpoints.
//! * [`trainer`]: model, optimiser, position; one step with its non-finite
//!   checks; the checkpoints' contents.
//! * [`calibrate`]: the decode scale chosen on held-out videos.
//! * [`inference`]: one video through the network and the paper's
//!   post-processing, as the runtime computes it.
//! * [`options`]: the run's options, what a checkpoint records, what may change on resume.
//! * [`limits`]: the valid range of every numeric setting.
//! * [`dataset`]: training/validation splits, the held-out slice, the data's fingerprint.
//! * [`rundir`], [`runlog`]: the run directory and `train.jsonl`.
//! * [`adamw`], [`schedule`]: AdamW with savable moments; the learning rate.
//! * [`device`]: whether the device of `--device` is usable; device names.
//! * [`predict`]: refined proposals of a checkpoint (libtorch, no Soft-NMS) for quick checks.
//! * [`synth`]: a synthetic dataset in the real formats.
//! * [`bench`]: time and memory of a training step.
//! * [`error`]: the errors, with their exit statuses.
pub use tcanet_train_args::limits;

pub mod adamw;
pub mod bench;
pub mod calibrate;
pub mod dataset;
pub mod device;
pub mod error;
pub mod inference;
pub mod options;
pub mod predict;
pub mod run;
pub mod rundir;
pub mod runlog;
pub mod schedule;
pub mod session;
pub mod synth;
pub mod trainer;
