//! Several outputs of one command made visible together, or not at all.
//!
//! [`OutputSet::stage`] writes each regular-file output to a temporary
//! sibling at once (synced, the old file's permissions kept), and keeps the
//! content of standard output, devices and FIFOs in memory.
//! [`OutputSet::commit`] first writes those in place, then renames the
//! temporaries over their targets in the order they were staged. Until the
//! first rename nothing visible has changed: any error before it (a full
//! disk, a closed pipe) removes the temporaries and leaves every old output
//! as it was.
//!
//! Renames of several files cannot be one atomic step, so a process killed
//! between two renames leaves the first outputs new and the others old.
//! Commands stage their primary output last and put a generation marker in
//! every file, which a reader compares (tcanet-infer does; see its
//! `output` module): a mixed set is then detected, never mistaken for one
//! run's results.
//!
//! Testing hook: with `TCANET_FAULT_ABORT_AFTER_RENAMES=N` in the
//! environment, the process ends at once with status 137 right after the
//! N-th rename of a commit, running no destructor (as a kill between two
//! renames would stop it, without leaving a core file).

use std::collections::BTreeSet;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::output::{parent_dir, resolve_link, sync_dir, temp_sibling, write_in_place};
use crate::temporary::PendingTemp;
use crate::{write_stdout, Output, OutputError};

/// The environment variable of the testing hook (see the module docs).
pub const FAULT_ABORT_AFTER_RENAMES: &str = "TCANET_FAULT_ABORT_AFTER_RENAMES";

/// Outputs staged for one [`OutputSet::commit`]; temporaries left by an
/// uncommitted set are removed when it is dropped.
#[derive(Debug, Default)]
pub struct OutputSet {
    staged: Vec<Staged>,
}

#[derive(Debug)]
enum Staged {
    /// A regular file, written and synced to `tmp`, renamed onto `target`.
    Rename {
        shown: String,
        tmp: PendingTemp,
        target: PathBuf,
    },
    /// Standard output, a device or a FIFO, written at commit.
    InPlace { output: Output, bytes: Vec<u8> },
}

impl OutputSet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Stages `bytes` for `output`: a regular file (existing or new) is
    /// written to a temporary sibling now; standard output and an existing
    /// device, FIFO or socket are written in place by [`OutputSet::commit`].
    pub fn stage(&mut self, output: &Output, bytes: Vec<u8>) -> Result<(), OutputError> {
        let Output::Path(path) = output else {
            self.staged.push(Staged::InPlace {
                output: output.clone(),
                bytes,
            });
            return Ok(());
        };
        let shown = path.display().to_string();
        let existing = fs::metadata(path).ok();
        match &existing {
            Some(m) if m.is_dir() => {
                return Err(OutputError::NotWritable {
                    target: shown,
                    reason: "it is a directory".into(),
                })
            }
            Some(m) if !m.is_file() => {
                self.staged.push(Staged::InPlace {
                    output: output.clone(),
                    bytes,
                });
                return Ok(());
            }
            _ => {}
        }
        let target = resolve_link(path);
        let tmp = PendingTemp::new(temp_sibling(&target));
        let written = write_temporary(&tmp, &bytes, existing.as_ref());
        if let Err(cause) = written {
            return Err(OutputError::write(&shown, cause));
        }
        self.staged.push(Staged::Rename { shown, tmp, target });
        Ok(())
    }

    /// Publishes every staged output: the in-place ones are written first,
    /// then the temporaries are renamed in staging order. An error before
    /// the first rename leaves every old output as it was; an error after
    /// it is [`OutputError::Incomplete`], naming what was replaced.
    pub fn commit(mut self) -> Result<(), OutputError> {
        for staged in &self.staged {
            if let Staged::InPlace { output, bytes } = staged {
                write_now(output, bytes)?;
            }
        }
        let abort_after = fault_abort_after();
        let mut published: Vec<String> = Vec::new();
        let mut dirs = BTreeSet::new();
        let staged = std::mem::take(&mut self.staged);
        let mut rest = staged.into_iter();
        while let Some(s) = rest.next() {
            let Staged::Rename { shown, tmp, target } = s else {
                continue;
            };
            if let Err(cause) = fs::rename(&tmp, &target) {
                self.staged = rest.collect();
                return Err(if published.is_empty() {
                    OutputError::write(&shown, cause)
                } else {
                    OutputError::Incomplete {
                        target: shown,
                        cause,
                        published: published.join(", "),
                    }
                });
            }
            dirs.insert(parent_dir(&target));
            published.push(shown);
            if abort_after == Some(published.len()) {
                std::process::exit(137);
            }
        }
        for d in &dirs {
            sync_dir(d);
        }
        Ok(())
    }
}

/// Writes and syncs a new temporary file, with the permissions of the file
/// it will replace.
fn write_temporary(tmp: &Path, bytes: &[u8], existing: Option<&fs::Metadata>) -> io::Result<()> {
    let file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(tmp)?;
    let mut w = io::BufWriter::new(file);
    w.write_all(bytes)?;
    let file = w.into_inner().map_err(|e| e.into_error())?;
    if let Some(m) = existing {
        file.set_permissions(m.permissions())?;
    }
    file.sync_all()
}

/// Writes an in-place output now.
fn write_now(output: &Output, bytes: &[u8]) -> Result<(), OutputError> {
    match output {
        Output::Stdout => write_stdout(|w| w.write_all(bytes)),
        Output::Path(p) => write_in_place(p, |w| w.write_all(bytes))
            .map_err(|e| OutputError::write(&p.display().to_string(), e)),
    }
}

/// The testing hook's N, when set.
fn fault_abort_after() -> Option<usize> {
    std::env::var(FAULT_ABORT_AFTER_RENAMES)
        .ok()
        .and_then(|v| v.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_dir::{names, TempDir};

    #[test]
    fn nothing_is_visible_before_commit_and_everything_after() {
        let d = TempDir::new("staged", "commit");
        let (a, b) = (d.0.join("a.json"), d.0.join("b.json"));
        fs::write(&a, "old a").unwrap();
        let mut set = OutputSet::new();
        set.stage(&Output::Path(a.clone()), b"new a".to_vec())
            .unwrap();
        set.stage(&Output::Path(b.clone()), b"new b".to_vec())
            .unwrap();
        assert_eq!(fs::read_to_string(&a).unwrap(), "old a");
        assert!(!b.exists());
        assert_eq!(names(&d.0).len(), 3, "two temporaries beside a.json");
        set.commit().unwrap();
        assert_eq!(fs::read_to_string(&a).unwrap(), "new a");
        assert_eq!(fs::read_to_string(&b).unwrap(), "new b");
        assert_eq!(names(&d.0), ["a.json", "b.json"]);
    }

    #[test]
    fn a_dropped_set_changes_nothing() {
        let d = TempDir::new("staged", "drop");
        let a = d.0.join("a.json");
        fs::write(&a, "old").unwrap();
        let mut set = OutputSet::new();
        set.stage(&Output::Path(a.clone()), b"new".to_vec())
            .unwrap();
        drop(set);
        assert_eq!(fs::read_to_string(&a).unwrap(), "old");
        assert_eq!(names(&d.0), ["a.json"]);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_failing_in_place_output_leaves_the_files_as_they_were() {
        let d = TempDir::new("staged", "full");
        let a = d.0.join("a.json");
        fs::write(&a, "old").unwrap();
        let mut set = OutputSet::new();
        set.stage(&Output::Path(a.clone()), b"new".to_vec())
            .unwrap();
        set.stage(&Output::Path("/dev/full".into()), vec![b'x'; 1 << 17])
            .unwrap();
        let e = set.commit().unwrap_err();
        assert!(e.to_string().starts_with("cannot write /dev/full"), "{e}");
        assert_eq!(fs::read_to_string(&a).unwrap(), "old");
        assert_eq!(names(&d.0), ["a.json"]);
    }

    #[test]
    fn a_directory_cannot_be_staged() {
        let d = TempDir::new("staged", "dir");
        let e = OutputSet::new()
            .stage(&Output::Path(d.0.clone()), b"x".to_vec())
            .unwrap_err();
        assert!(e.to_string().contains("is a directory"), "{e}");
    }
}
