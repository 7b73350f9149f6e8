//! The run directory (`--out RUNDIR`): its files' names, the checks made
//! before any work (a directory we can write in), the atomic writer of its
//! files, and the removal of the temporary files a killed save leaves behind.
use std::path::{Path, PathBuf};

use crate::error::{Result, TrainError};

pub use tcanet_models::checkpoint::run_dir::{BEST, LAST, LOG};

/// Writes a file atomically ([`tcanet_cli::write_atomic_bytes`]): a
/// checkpoint, the log when it is started or trimmed.
pub fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    tcanet_cli::write_atomic_bytes(path, bytes).map_err(|cause| TrainError::Write {
        path: path.to_path_buf(),
        cause,
    })
}

/// A run directory that exists and accepts new files.
#[derive(Debug, Clone)]
pub struct RunDir {
    path: PathBuf,
}

impl RunDir {
    /// Checks, before any work, that `path` is a directory in which files
    /// can be created, or that it can be created (its nearest existing
    /// ancestor is a writable directory). Creates nothing that stays: a
    /// probe file is created and removed at once.
    pub fn check(path: &Path) -> Result<Self> {
        let fail = |reason: String| TrainError::RunDir {
            path: path.to_path_buf(),
            reason,
        };
        if path.exists() && !path.is_dir() {
            return Err(fail("exists and is not a directory".into()));
        }
        let existing = path
            .ancestors()
            .find(|a| a.as_os_str().is_empty() || a.exists())
            .map(|a| {
                if a.as_os_str().is_empty() {
                    Path::new(".")
                } else {
                    a
                }
            })
            .unwrap_or(Path::new("."));
        if !existing.is_dir() {
            return Err(fail(format!(
                "cannot be created: {} is not a directory",
                existing.display()
            )));
        }
        let probe = tcanet_cli::temp_sibling(&existing.join(".tcanet-probe"));
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&probe)
            .map_err(|e| {
                fail(format!(
                    "cannot create files in {}: {e}",
                    existing.display()
                ))
            })?;
        let _ = std::fs::remove_file(&probe);
        Ok(Self {
            path: path.to_path_buf(),
        })
    }

    /// Creates the directory (and its parents) once the run is settled.
    pub fn create(&self) -> Result<()> {
        std::fs::create_dir_all(&self.path).map_err(|e| TrainError::RunDir {
            path: self.path.clone(),
            reason: format!("cannot create it: {e}"),
        })
    }

    /// Whether the directory holds a run's checkpoint.
    pub fn holds_run(&self) -> bool {
        self.last().exists() || self.best().exists()
    }

    /// Removes a previous run's files (`last`, `best`, `epoch-N`, the log;
    /// `--overwrite`). Returns the files removed.
    pub fn remove_run_files(&self) -> Result<Vec<PathBuf>> {
        let Ok(entries) = std::fs::read_dir(&self.path) else {
            return Ok(Vec::new());
        };
        let mut removed = Vec::new();
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if !is_run_file(&name) {
                continue;
            }
            std::fs::remove_file(e.path()).map_err(|cause| TrainError::Write {
                path: e.path(),
                cause,
            })?;
            removed.push(e.path());
        }
        removed.sort();
        Ok(removed)
    }

    /// The file of the run (a checkpoint or the log, see `is_run_file`)
    /// that is the same file as `path` (through links or another
    /// spelling), if any: a new run replaces it.
    pub fn run_file_same_as(&self, path: &Path) -> Option<PathBuf> {
        let entries = std::fs::read_dir(&self.path).ok()?;
        entries
            .flatten()
            .filter(|e| is_run_file(&e.file_name().to_string_lossy()))
            .map(|e| e.path())
            .find(|f| tcanet_cli::same_file(f, path))
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `RUNDIR/last.safetensors`.
    pub fn last(&self) -> PathBuf {
        self.path.join(LAST)
    }

    /// `RUNDIR/best.safetensors`.
    pub fn best(&self) -> PathBuf {
        self.path.join(BEST)
    }

    /// `RUNDIR/epoch-N.safetensors`.
    pub fn epoch(&self, n: u64) -> PathBuf {
        self.path.join(format!("epoch-{n}.safetensors"))
    }

    /// `RUNDIR/train.jsonl`.
    pub fn log(&self) -> PathBuf {
        self.path.join(LOG)
    }

    /// Removes the temporary files (`.NAME.tmp-PID-N`) of the run's files
    /// that a killed save left, unless their process still runs. Returns
    /// the files removed.
    pub fn remove_stale_temps(&self) -> Vec<PathBuf> {
        let Ok(entries) = std::fs::read_dir(&self.path) else {
            return Vec::new();
        };
        let mut removed = Vec::new();
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let Some(pid) = stale_temp_pid(&name) else {
                continue;
            };
            if pid != std::process::id() && process_alive(pid) {
                continue;
            }
            if std::fs::remove_file(e.path()).is_ok() {
                removed.push(e.path());
            }
        }
        removed.sort();
        removed
    }
}

/// Whether `name` is one of a run's files: `last` or `best` checkpoint,
/// `epoch-N.safetensors`, the log.
fn is_run_file(name: &str) -> bool {
    name == LAST
        || name == BEST
        || name == LOG
        || name
            .strip_prefix("epoch-")
            .and_then(|f| f.strip_suffix(".safetensors"))
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// Whether `name` is a temporary file of one of the run's own files, and
/// the process that wrote it.
fn stale_temp_pid(name: &str) -> Option<u32> {
    let rest = name.strip_prefix('.')?;
    let (file, tail) = rest.rsplit_once(".tmp-")?;
    let (pid, counter) = tail.split_once('-')?;
    if !is_run_file(file) || counter.is_empty() || !counter.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    pid.parse().ok()
}

/// Whether a process of this id exists (Linux: `/proc/PID`; elsewhere
/// assumed gone).
fn process_alive(pid: u32) -> bool {
    Path::new("/proc").join(pid.to_string()).exists()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_runs_own_temporaries_are_stale() {
        assert_eq!(stale_temp_pid(".last.safetensors.tmp-123-0"), Some(123));
        assert_eq!(stale_temp_pid(".epoch-12.safetensors.tmp-7-3"), Some(7));
        assert_eq!(stale_temp_pid(".train.jsonl.tmp-9-10"), Some(9));
        assert_eq!(stale_temp_pid(".best.safetensors.tmp-9-1"), Some(9));
        for other in [
            "last.safetensors",
            ".notes.txt.tmp-1-0",
            ".epoch-.safetensors.tmp-1-0",
            ".last.safetensors.tmp-x-0",
            ".last.safetensors.tmp-1-",
            ".epoch-1a.safetensors.tmp-1-0",
        ] {
            assert_eq!(stale_temp_pid(other), None, "{other}");
        }
    }

    #[test]
    fn stale_files_are_removed_and_live_ones_kept() {
        let dir = std::env::temp_dir().join(format!("tcanet-rundir-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let run = RunDir::check(&dir).unwrap();
        run.create().unwrap();
        // PID 2^31 - 2 is beyond Linux's pid_max: no such process.
        let dead = dir.join(".last.safetensors.tmp-2147483646-0");
        let live = dir.join(format!(".best.safetensors.tmp-{}-0", std::process::id()));
        let parent_pid = std::os::unix::process::parent_id();
        let other_live = dir.join(format!(".train.jsonl.tmp-{parent_pid}-4"));
        let foreign = dir.join(".mine.tmp-2147483646-0");
        for f in [&dead, &live, &other_live, &foreign] {
            std::fs::write(f, b"x").unwrap();
        }
        let removed = run.remove_stale_temps();
        let mut want = vec![dead.clone(), live.clone()];
        want.sort();
        assert_eq!(removed, want);
        assert!(other_live.exists() && foreign.exists());
        let file = dir.join("plain");
        std::fs::write(&file, b"x").unwrap();
        let e = RunDir::check(&file).unwrap_err().to_string();
        assert!(e.contains("not a directory"), "{e}");
        let e = RunDir::check(&file.join("sub")).unwrap_err().to_string();
        assert!(e.contains("cannot be created"), "{e}");
        assert!(!dir.join("new/deeper").exists());
        RunDir::check(&dir.join("new/deeper")).unwrap();
        assert!(!dir.join("new").exists(), "check creates nothing");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
