//! `tcanet-train`: checks the command line, finds libtorch, then runs
//! `tcanet-train-core` (the trainer, beside this executable) with it.
//!
//! The command line is the trainer's own definition (`tcanet-train-args`,
//! no libtorch): a bad flag is a usage error (exit 2), and `--help` and
//! `--version` answer, without libtorch.
//!
//! The trainer links libtorch's shared libraries; when the dynamic loader
//! cannot find them it stops the program before `main` with a bare
//! "cannot open shared object file". This launcher links nothing of
//! libtorch, so it can say where it looked and what to set instead.
//!
//! Where it looks, in order (the first directory holding
//! `libtorch_cpu.so` wins):
//! 1. `$LIBTORCH/lib` when `LIBTORCH` is set (then nowhere else: a wrong
//!    `LIBTORCH` is an error, not silently overridden);
//! 2. the directories of `$LD_LIBRARY_PATH`;
//! 3. beside the executable: `libtorch/lib`, then `../lib`;
//! 4. the project's libtorch as seen from the build's target directory
//!    (the path the trainer's RUNPATH holds, relative to the executable).
//!
//! The directory found is put first on `LD_LIBRARY_PATH` for the trainer.
use std::ffi::{OsStr, OsString};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

/// The trainer binary, beside this one.
const CORE: &str = "tcanet-train-core";
/// The library whose presence marks a libtorch `lib/` directory.
const MARKER: &str = "libtorch_cpu.so";
/// The build's libtorch relative to the executable's directory (set by the build script).
const BUILD_RELATIVE: Option<&str> = option_env!("TCANET_LIBTORCH_RELATIVE");

/// Where libtorch was found, or every place tried.
enum Lookup {
    Found(PathBuf),
    NotFound(Vec<(PathBuf, &'static str)>),
    BadLibtorchVar(PathBuf),
}

fn has_libtorch(dir: &Path) -> bool {
    dir.join(MARKER).is_file()
}

/// The places of the module documentation, in order.
fn candidates(exe_dir: &Path, ld_path: Option<&OsStr>) -> Vec<(PathBuf, &'static str)> {
    let mut out: Vec<(PathBuf, &'static str)> = Vec::new();
    if let Some(paths) = ld_path {
        for d in std::env::split_paths(paths).filter(|d| !d.as_os_str().is_empty()) {
            out.push((d, "LD_LIBRARY_PATH"));
        }
    }
    out.push((exe_dir.join("libtorch/lib"), "beside the executable"));
    out.push((exe_dir.join("../lib"), "beside the executable"));
    if let Some(rel) = BUILD_RELATIVE {
        out.push((exe_dir.join(rel), "the build's .venv/libtorch"));
    }
    out
}

fn lookup(exe_dir: &Path) -> Lookup {
    if let Some(root) = std::env::var_os("LIBTORCH").filter(|v| !v.is_empty()) {
        let lib = Path::new(&root).join("lib");
        return if has_libtorch(&lib) {
            Lookup::Found(lib)
        } else {
            Lookup::BadLibtorchVar(lib)
        };
    }
    let tried = candidates(exe_dir, std::env::var_os("LD_LIBRARY_PATH").as_deref());
    match tried.iter().find(|(d, _)| has_libtorch(d)) {
        Some((d, _)) => Lookup::Found(d.clone()),
        None => Lookup::NotFound(tried),
    }
}

const HOW_TO: &str = "set LIBTORCH to a libtorch 2.11 directory (the one holding \
lib/libtorch_cpu.so; a Python torch 2.11 install is one: \
LIBTORCH=$(python3 -c 'import torch, os; print(os.path.dirname(torch.__file__))')), \
or add its lib/ directory to LD_LIBRARY_PATH, or run `make setup` in the repository";

fn fail(message: String) -> ExitCode {
    eprintln!("tcanet-train: error: {message}");
    ExitCode::from(1)
}

fn main() -> ExitCode {
    // Exits with 2 on a bad command line, 0 after --help or --version.
    let _: tcanet_train_args::cli::Cli =
        tcanet_cli::parse_with_version(tcanet_version::long_version!());
    let exe = match std::env::current_exe().and_then(|p| p.canonicalize()) {
        Ok(p) => p,
        Err(e) => return fail(format!("cannot find this executable's path: {e}")),
    };
    let exe_dir = exe.parent().unwrap_or(Path::new("/")).to_path_buf();
    let core = exe_dir.join(CORE);
    if !core.is_file() {
        return fail(format!(
            "{} is missing: tcanet-train starts the trainer binary {CORE} from its own \
             directory; copy both together",
            core.display()
        ));
    }
    let lib = match lookup(&exe_dir) {
        Lookup::Found(lib) => lib,
        Lookup::BadLibtorchVar(lib) => {
            return fail(format!(
                "LIBTORCH is set, but {} holds no {MARKER}: {HOW_TO}",
                lib.display()
            ))
        }
        Lookup::NotFound(tried) => {
            let list: Vec<String> = tried
                .iter()
                .map(|(d, why)| format!("  {} ({why})", d.display()))
                .collect();
            return fail(format!(
                "cannot find libtorch ({MARKER}); looked in:\n{}\n{HOW_TO}",
                list.join("\n")
            ));
        }
    };
    let mut ld = OsString::from(lib.as_os_str());
    if let Some(old) = std::env::var_os("LD_LIBRARY_PATH").filter(|v| !v.is_empty()) {
        ld.push(":");
        ld.push(old);
    }
    let mut cmd = Command::new(&core);
    cmd.args(std::env::args_os().skip(1))
        .env("LD_LIBRARY_PATH", ld);
    if let Some(arg0) = std::env::args_os().next() {
        cmd.arg0(arg0);
    }
    let err = cmd.exec();
    fail(format!("cannot run {}: {err}", core.display()))
}
