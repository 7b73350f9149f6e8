//! Build script shared by every crate whose binaries or tests link libtorch
//! (`models/nn` = tcanet-nn, `trainer`, `tests`): link arguments apply to
//! the crate's own binaries and tests only, so each of them runs it.
//!
//! * A RUNPATH relative to the executable (`$ORIGIN/<path from the target
//!   directory to $LIBTORCH/lib>`, and the same one level up for test
//!   executables in `deps/`), so that a build finds the project's libtorch
//!   without `LD_LIBRARY_PATH` and carries no absolute path of the machine
//!   it was built on. The same relative path is given to the crate as the
//!   compile-time variable `TCANET_LIBTORCH_RELATIVE` (the trainer's launcher
//!   looks there too). `LD_LIBRARY_PATH` wins over a RUNPATH, which is how
//!   a GPU machine's own libtorch gets loaded.
//! * `libtorch_cuda.so` kept as a NEEDED library: nothing references it
//!   directly, so the linker would drop it and CUDA would never be available.
//! * For the trainer: only `tcanet-train-core` (and the tests) link
//!   libtorch; the `tcanet-train` launcher must not need it, so the CUDA
//!   argument is per binary; both binaries are linked without debug
//!   information, which holds the build directory's path.
use std::path::{Component, Path, PathBuf};

fn main() {
    // No `rerun-if-changed` of this script: cargo reruns a script it has
    // recompiled anyway, and a path here would be relative to each using
    // package (trainer/, tests/), where the file is missing: cargo would
    // rerun it, and recompile the package, on every build.
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    let trainer = std::env::var("CARGO_PKG_NAME").as_deref() == Ok("tcanet-trainer");
    if trainer {
        for bin in ["tcanet-train", "tcanet-train-core"] {
            println!("cargo:rustc-link-arg-bin={bin}=-Wl,--strip-debug");
        }
    }
    let Ok(libtorch) = std::env::var("LIBTORCH") else {
        return;
    };
    let lib = absolute(&Path::new(&libtorch).join("lib"));
    let Some(bin_dir) = std::env::var_os("OUT_DIR")
        .map(PathBuf::from)
        .and_then(|out| out.ancestors().nth(3).map(Path::to_path_buf))
        .and_then(|d| d.canonicalize().ok())
    else {
        return;
    };
    let rel = relative(&bin_dir, &lib);
    println!("cargo:rustc-env=TCANET_LIBTORCH_RELATIVE={rel}");
    // Harmless for the launcher, which needs no library of libtorch.
    println!("cargo:rustc-link-arg=-Wl,-rpath,$ORIGIN/{rel}:$ORIGIN/../{rel}");
    if !lib.join("libtorch_cuda.so").exists() {
        return;
    }
    for arg in [
        format!("-L{}", lib.display()),
        "-Wl,--no-as-needed,-ltorch_cuda,--as-needed".to_string(),
    ] {
        if trainer {
            println!("cargo:rustc-link-arg-bin=tcanet-train-core={arg}");
            println!("cargo:rustc-link-arg-tests={arg}");
        } else {
            println!("cargo:rustc-link-arg={arg}");
        }
    }
}

/// `p` made absolute against the current directory, `.` and `..` resolved
/// lexically (symbolic links are kept: the loader follows them).
fn absolute(p: &Path) -> PathBuf {
    let joined = std::env::current_dir().map_or_else(|_| p.to_path_buf(), |cwd| cwd.join(p));
    let mut out = PathBuf::new();
    for c in joined.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// The path from directory `from` to `to` (both absolute), `/`-separated.
fn relative(from: &Path, to: &Path) -> String {
    let a: Vec<Component> = from.components().collect();
    let b: Vec<Component> = to.components().collect();
    let common = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let mut parts: Vec<String> = vec!["..".to_string(); a.len() - common];
    parts.extend(
        b[common..]
            .iter()
            .map(|c| c.as_os_str().to_string_lossy().into_owned()),
    );
    if parts.is_empty() {
        ".".into()
    } else {
        parts.join("/")
    }
}
