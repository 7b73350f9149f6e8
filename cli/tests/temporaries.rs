//! A terminating signal during an atomic write removes the temporary file:
//! this test runs itself again as a child process that writes slowly, and
//! sends the child SIGINT or SIGTERM once its temporary file exists.
#![cfg(unix)]

use std::io::Write;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// Set in the child: the output it writes.
const CHILD_OUTPUT: &str = "TCANET_TEMPORARIES_TEST_OUTPUT";

/// In the child (run by the test below): writes `CHILD_OUTPUT` atomically,
/// with a fill that never ends on its own; in a plain test run: nothing.
#[test]
fn child_writes_slowly() {
    let Some(path) = std::env::var_os(CHILD_OUTPUT) else {
        return;
    };
    let _ = tcanet_cli::write_atomic(Path::new(&path), |w| {
        w.write_all(b"partial")?;
        w.flush()?;
        std::thread::sleep(Duration::from_secs(60));
        Ok(())
    });
}

/// Files in `dir` whose names start with `prefix`.
fn named(dir: &Path, prefix: &str) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with(prefix))
        .collect()
}

/// This test binary again, running only the child test `name` with `env`
/// set to `output`; returned once the child's temporary file exists.
fn writing_child(name: &str, env: &str, output: &Path) -> std::process::Child {
    let child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", name, "--nocapture"])
        .env(env, output)
        .spawn()
        .unwrap();
    let dir = output.parent().unwrap();
    let prefix = format!(".{}.tmp-", output.file_name().unwrap().to_string_lossy());
    let start = Instant::now();
    while named(dir, &prefix).is_empty() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no temporary file"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    child
}

#[test]
fn a_terminating_signal_removes_the_temporary_file() {
    for signal in [libc::SIGINT, libc::SIGTERM] {
        let dir = tempfile::tempdir().unwrap();
        let output = dir.path().join("out.json");
        let mut child = writing_child("child_writes_slowly", CHILD_OUTPUT, &output);
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(child.id() as i32, signal) };
        let status = child.wait().unwrap();
        assert_eq!(status.signal(), Some(signal), "{status}");
        assert!(
            named(dir.path(), ".out.json.tmp-").is_empty(),
            "left behind"
        );
        assert!(!output.exists());
    }
}

/// In the child: SIGINT is ignored (as a program with its own handling),
/// so the write goes on and ends with the file written.
#[test]
fn child_ignores_sigint_and_writes() {
    let Some(path) = std::env::var_os(CHILD_OUTPUT_IGNORING) else {
        return;
    };
    // SAFETY: setting SIGINT's action to "ignore" in this child process.
    unsafe { libc::signal(libc::SIGINT, libc::SIG_IGN) };
    tcanet_cli::write_atomic(Path::new(&path), |w| {
        w.write_all(b"partial")?;
        w.flush()?;
        std::thread::sleep(Duration::from_millis(500));
        w.write_all(b" and whole")
    })
    .unwrap();
}

/// Set in the child that ignores SIGINT: the output it writes.
const CHILD_OUTPUT_IGNORING: &str = "TCANET_TEMPORARIES_TEST_OUTPUT_IGNORING";

#[test]
fn a_signal_the_program_handles_itself_is_left_to_it() {
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("out.json");
    let mut child = writing_child(
        "child_ignores_sigint_and_writes",
        CHILD_OUTPUT_IGNORING,
        &output,
    );
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}");
    assert_eq!(std::fs::read(&output).unwrap(), b"partial and whole");
}

/// A panic while the output is being written (libtorch's failures are
/// panics) leaves neither the output nor its temporary file.
#[test]
fn a_panic_in_the_writer_removes_the_temporary_file() {
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("out.json");
    let unwound = std::panic::catch_unwind(|| {
        let _ = tcanet_cli::write_atomic(&output, |w| {
            w.write_all(b"partial")?;
            w.flush()?;
            panic!("the writer fails");
        });
    });
    assert!(unwound.is_err());
    assert!(
        named(dir.path(), ".out.json.tmp-").is_empty(),
        "left behind"
    );
    assert!(!output.exists());
}
