//! TCANet trainer (tch): datasets, training loop, checkpoints, synthetic data
