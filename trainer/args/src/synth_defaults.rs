//! The defaults of `tcanet-train synth` (the trainer's `SynthOptions::default()`
//! takes them from here).

/// Training videos.
pub const TRAIN_VIDEOS: usize = 480;
/// Validation videos.
pub const VAL_VIDEOS: usize = 120;
/// Action classes.
pub const CLASSES: usize = 10;
/// Feature channels (the `tiny` preset's C).
pub const CHANNELS: usize = 32;
/// Feature steps per video (the `tiny` preset's T).
pub const STEPS: usize = 64;
/// Feature noise standard deviation.
pub const NOISE: f64 = 1.0;
/// Boundary error of the input proposals, as a fraction of the action.
pub const BOUNDARY_ERROR: f64 = 0.3;
/// Input proposals per video.
pub const PROPOSALS_PER_VIDEO: usize = 100;
/// Shortest video (s).
pub const MIN_DURATION: f64 = 20.0;
/// Longest video (s).
pub const MAX_DURATION: f64 = 230.0;
