//! TCANet trainer (tch): datasets, training loop, checkpoints, synthetic data.
//!
//! * [`adamw`]: AdamW with PyTorch's math and savable moments.
//! * [`schedule`]: the learning-rate schedule (warm-up, step decay).
//! * [`dataset`]: training/validation splits from annotations, features and proposals.
//! * [`train`]: the loop, validation, checkpoints and exact resumption.
//! * [`predict`]: refined proposals of a checkpoint (libtorch, no Soft-NMS) for quick checks.
//! * [`synth`]: a synthetic dataset in the real formats.
//! * [`bench`]: time and memory of a training step.
pub mod adamw;
pub mod bench;
pub mod dataset;
pub mod predict;
pub mod schedule;
pub mod synth;
pub mod train;
