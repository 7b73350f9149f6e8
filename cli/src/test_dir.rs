//! Test helpers shared by the unit tests of this crate: a scratch directory
//! and a listing of it.

use std::fs;
use std::path::{Path, PathBuf};

/// A fresh directory removed at the end of the test.
pub(crate) struct TempDir(pub(crate) PathBuf);

impl TempDir {
    /// `tcanet-cli-<prefix>-<pid>-<name>` under the system's temporary
    /// directory, emptied first.
    pub(crate) fn new(prefix: &str, name: &str) -> Self {
        let d =
            std::env::temp_dir().join(format!("tcanet-cli-{prefix}-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        TempDir(d)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// The names of the entries of `dir`, sorted.
pub(crate) fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}
