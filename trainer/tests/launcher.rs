//! Where the trainer finds libtorch: the binaries carry no absolute path of
//! the build (RUNPATH relative to the executable), and `tcanet-train`
//! copied elsewhere says where it looked and what to set, or runs with
//! `LIBTORCH` / `LD_LIBRARY_PATH`.
mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{bin_dir, run, tmp};

/// The project's libtorch `lib/` directory, as the build used it.
fn libtorch_lib() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    root.join(".venv/libtorch/lib")
}

fn copy_binaries(to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for name in ["tcanet-train", "tcanet-train-core"] {
        std::fs::copy(bin_dir().join(name), to.join(name)).unwrap();
    }
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[test]
fn binaries_carry_no_absolute_build_path() {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let workspace = workspace.canonicalize().unwrap().display().to_string();
    let target = bin_dir().canonicalize().unwrap().display().to_string();
    for name in ["tcanet-train", "tcanet-train-core"] {
        let bytes = std::fs::read(bin_dir().join(name)).unwrap();
        for path in [&workspace, &target] {
            assert!(!contains(&bytes, path), "{name} holds the path {path}");
        }
    }
    let Ok(o) = Command::new("readelf")
        .args(["-d"])
        .arg(bin_dir().join("tcanet-train-core"))
        .output()
    else {
        return; // binutils absent: the byte search above covers the RUNPATH too
    };
    let dynamic = String::from_utf8_lossy(&o.stdout);
    let runpath = dynamic
        .lines()
        .find(|l| l.contains("RUNPATH") || l.contains("RPATH"))
        .unwrap_or_default();
    assert!(runpath.contains("[$ORIGIN/"), "{dynamic}");
    assert!(!runpath.contains(":/"), "an absolute entry: {runpath}");
    let launcher = Command::new("readelf")
        .args(["-d"])
        .arg(bin_dir().join("tcanet-train"))
        .output()
        .unwrap();
    let needed = String::from_utf8_lossy(&launcher.stdout)
        .lines()
        .filter(|l| l.contains("NEEDED") && (l.contains("torch") || l.contains("c10")))
        .map(str::to_string)
        .collect::<Vec<_>>();
    assert!(
        needed.is_empty(),
        "the launcher must not need libtorch: {needed:?}"
    );
}

#[test]
fn a_moved_trainer_says_where_it_looked_and_runs_with_libtorch_set() {
    let dir = tmp();
    let moved = dir.path().join("opt/bin");
    copy_binaries(&moved);
    let launcher = moved.join("tcanet-train");
    // A command that needs the trainer (--help and --version do not).
    let bare = || {
        let mut c = Command::new(&launcher);
        c.args([
            "bench",
            "--preset",
            "tiny",
            "--device",
            "cpu",
            "--threads",
            "1",
        ])
        .args([
            "--steps",
            "1",
            "--warmup",
            "0",
            "--batch-size",
            "1",
            "--proposals",
            "2",
        ])
        .env_remove("LIBTORCH")
        .env_remove("LD_LIBRARY_PATH");
        c
    };
    let help = run(Command::new(&launcher).arg("--help").env_remove("LIBTORCH"));
    assert!(help.status.success(), "--help needs no libtorch");
    assert!(String::from_utf8_lossy(&help.stdout).contains("LIBTORCH"));
    let o = run(&mut bare());
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    for needle in [
        "cannot find libtorch (libtorch_cpu.so); looked in:",
        "opt/bin/libtorch/lib (beside the executable)",
        "LIBTORCH",
        "LD_LIBRARY_PATH",
    ] {
        assert!(err.contains(needle), "{needle:?} in {err}");
    }
    // A wrong LIBTORCH is named, not silently passed over.
    let o = run(bare().env("LIBTORCH", dir.path()));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("LIBTORCH is set") && err.contains("holds no libtorch_cpu.so"),
        "{err}"
    );
    // LIBTORCH, or LD_LIBRARY_PATH, or libtorch beside the executable: it runs.
    let lib = libtorch_lib();
    let root = lib.parent().unwrap();
    for (key, value) in [("LIBTORCH", root), ("LD_LIBRARY_PATH", lib.as_path())] {
        let o = run(bare().env(key, value));
        assert!(
            o.status.success(),
            "{key}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(String::from_utf8_lossy(&o.stdout).contains("\"mean_s\""));
    }
    std::os::unix::fs::symlink(root, moved.join("libtorch")).unwrap();
    let o = run(&mut bare());
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // Without its trainer beside it, the launcher says so.
    std::fs::remove_file(moved.join("tcanet-train-core")).unwrap();
    let o = run(&mut bare());
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1));
    assert!(err.contains("tcanet-train-core is missing"), "{err}");
}

#[test]
fn the_build_itself_finds_its_libtorch() {
    let o = run(Command::new(bin_dir().join("tcanet-train"))
        .arg("--version")
        .env_remove("LIBTORCH")
        .env_remove("LD_LIBRARY_PATH"));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // The trainer itself, without the launcher: its RUNPATH finds libtorch.
    let o = run(Command::new(bin_dir().join("tcanet-train-core"))
        .arg("--help")
        .env_remove("LD_LIBRARY_PATH"));
    let help = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        help.contains("LIBTORCH") && help.contains("LD_LIBRARY_PATH"),
        "{help}"
    );
}

/// `--version` (no libtorch needed) from both binaries: the program, the
/// toolkit version and the commit, which each binary gives its library's
/// command line.
#[test]
fn both_binaries_print_the_version_and_commit() {
    let expected = format!("tcanet-train {}\n", tcanet_version::long_version!());
    for name in ["tcanet-train", "tcanet-train-core"] {
        let o = run(Command::new(bin_dir().join(name)).arg("--version"));
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        assert_eq!(String::from_utf8_lossy(&o.stdout), expected, "{name}");
    }
}
