//! `train.jsonl`: one JSON record per line, each line written with one
//! write call. A resumed run first rewrites the log (atomically) to the
//! records up to the checkpoint's position, so that steps redone after a
//! kill are not logged twice.
use std::io::Write;
use std::path::{Path, PathBuf};

use tcanet_models::checkpoint::Position;

use crate::error::{Result, TrainError};
use crate::rundir::write_file;

/// The run's JSON-lines log, appended to line by line.
pub struct RunLog {
    path: PathBuf,
    file: std::fs::File,
    /// The position (global step) of the last record (`start` records
    /// aside) when it is an `end` record: a run killed after logging its end
    /// and then resumed has nothing left to log.
    ended_at: Option<u64>,
}

/// What [`RunLog::resume`] kept of an existing log.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Trimmed {
    /// Records kept.
    pub kept: usize,
    /// Records past the checkpoint, dropped (they will be written again).
    pub dropped: usize,
    /// Lines that were not JSON (a line cut by a kill), dropped.
    pub unreadable: usize,
}

impl RunLog {
    /// Starts an empty log at `path` (replacing an old one atomically).
    pub fn create(path: &Path) -> Result<Self> {
        write_file(path, b"")?;
        Self::append_to(path)
    }

    /// Keeps the records of `path` up to position `pos` (see [`keep_record`]),
    /// rewrites the file atomically, and appends after them. A missing log
    /// starts empty.
    pub fn resume(path: &Path, pos: Position) -> Result<(Self, Trimmed)> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(cause) => {
                return Err(TrainError::Read {
                    path: path.to_path_buf(),
                    cause,
                })
            }
        };
        let mut trimmed = Trimmed::default();
        let mut kept = String::new();
        let mut ended_at = None;
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            match serde_json::from_str::<serde_json::Value>(line) {
                Ok(v) if keep_record(&v, pos) => {
                    trimmed.kept += 1;
                    kept.push_str(line);
                    kept.push('\n');
                    if v["event"].as_str() != Some("start") {
                        ended_at = end_position(&v);
                    }
                }
                Ok(_) => trimmed.dropped += 1,
                Err(_) => trimmed.unreadable += 1,
            }
        }
        write_file(path, kept.as_bytes())?;
        let mut log = Self::append_to(path)?;
        log.ended_at = ended_at;
        Ok((log, trimmed))
    }

    /// Whether the log already ends with an `end` record at `global_step`.
    pub fn ends_at(&self, global_step: u64) -> bool {
        self.ended_at == Some(global_step)
    }

    fn append_to(path: &Path) -> Result<Self> {
        let file = std::fs::OpenOptions::new()
            .append(true)
            .open(path)
            .map_err(|cause| TrainError::Write {
                path: path.to_path_buf(),
                cause,
            })?;
        Ok(Self {
            path: path.to_path_buf(),
            file,
            ended_at: None,
        })
    }

    /// Appends one record as a line, with one write call.
    pub fn write(&mut self, value: &serde_json::Value) -> Result<()> {
        let line = format!("{value}\n");
        self.file
            .write_all(line.as_bytes())
            .map_err(|cause| TrainError::Write {
                path: self.path.clone(),
                cause,
            })?;
        // A resumed run logs its start first; what came before still counts.
        if value["event"].as_str() != Some("start") {
            self.ended_at = end_position(value);
        }
        Ok(())
    }
}

/// The global step of an `end` record, `None` for other records.
fn end_position(v: &serde_json::Value) -> Option<u64> {
    (v["event"].as_str() == Some("end"))
        .then(|| v["position"]["global_step"].as_u64())
        .flatten()
}

/// Whether a record belongs to the run up to position `pos`: a `step`
/// record up to `pos.global_step`; an epoch's `validation` or
/// `calibration` record when that epoch is complete at `pos`; a `start` or
/// `end` record when its position is not beyond `pos`. Other records are kept.
pub fn keep_record(v: &serde_json::Value, pos: Position) -> bool {
    let num = |key: &str| v[key].as_u64();
    match v["event"].as_str() {
        Some("step") => num("global_step").is_some_and(|g| g <= pos.global_step),
        Some("validation" | "calibration") => num("epoch").is_some_and(|e| e <= pos.epoch),
        Some("start" | "end") => v["position"]["global_step"]
            .as_u64()
            .is_some_and(|g| g <= pos.global_step),
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_resumed_log_keeps_what_the_checkpoint_covers() {
        let dir = std::env::temp_dir().join(format!("tcanet-runlog-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("train.jsonl");
        let mut log = RunLog::create(&path).unwrap();
        let start = json!({"event": "start", "position": {"epoch": 0, "step_in_epoch": 0, "global_step": 0}});
        log.write(&start).unwrap();
        for g in 1..=5 {
            log.write(&json!({"event": "step", "global_step": g, "epoch": 1 + (g - 1) / 2}))
                .unwrap();
            if g % 2 == 0 {
                log.write(&json!({"event": "validation", "epoch": g / 2, "global_step": g}))
                    .unwrap();
            }
        }
        drop(log);
        // A line cut by a kill.
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b"{\"event\":\"st")
            .unwrap();
        // The checkpoint is at the end of epoch 1 (step 2 done, epoch 2 not started).
        let pos = Position {
            epoch: 1,
            step_in_epoch: 0,
            global_step: 2,
        };
        let (mut log, t) = RunLog::resume(&path, pos).unwrap();
        assert_eq!(
            t,
            Trimmed {
                kept: 4,
                dropped: 4,
                unreadable: 1
            }
        );
        log.write(&json!({"event": "step", "global_step": 3}))
            .unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let events: Vec<String> = text
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .map(|v| format!("{}{}", v["event"].as_str().unwrap(), v["global_step"]))
            .collect();
        assert_eq!(
            events,
            ["startnull", "step1", "step2", "validation2", "step3"]
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_log_that_ended_at_the_checkpoint_says_so() {
        let dir = std::env::temp_dir().join(format!("tcanet-runlog-end-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("train.jsonl");
        let pos = |g| Position {
            epoch: 1,
            step_in_epoch: 0,
            global_step: g,
        };
        let end = |g: u64| json!({"event": "end", "position": {"epoch": 1, "step_in_epoch": 0, "global_step": g}});
        let mut log = RunLog::create(&path).unwrap();
        log.write(&json!({"event": "step", "global_step": 2}))
            .unwrap();
        assert!(!log.ends_at(2));
        log.write(&end(2)).unwrap();
        assert!(log.ends_at(2) && !log.ends_at(3));
        drop(log);
        // Resumed at the end: nothing left to log.
        let (mut log, _) = RunLog::resume(&path, pos(2)).unwrap();
        assert!(log.ends_at(2));
        log.write(&json!({"event": "start", "position": {"global_step": 2}}))
            .unwrap();
        assert!(log.ends_at(2));
        drop(log);
        // Resumed at the end of a stop (e.g. --max-steps), then more steps:
        // the stop's end record stays, and a new one is due.
        let (mut log, _) = RunLog::resume(&path, pos(2)).unwrap();
        assert!(
            log.ends_at(2),
            "the start record of a resume does not count"
        );
        log.write(&json!({"event": "step", "global_step": 3}))
            .unwrap();
        assert!(!log.ends_at(3));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
