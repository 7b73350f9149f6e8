//! Finding and loading the ONNX Runtime library, once per process.
//!
//! ONNX Runtime is loaded at run time (`ort` feature `load-dynamic`), so the
//! binaries carry no ONNX Runtime (and no libtorch) link dependency and no
//! path of the machine they were built on. The library is looked up, in this
//! order (the first that names a usable file wins):
//!
//! 1. an explicit path, `--ort-lib FILE|DIR`;
//! 2. the `ORT_DYLIB_PATH` environment variable (`FILE|DIR`);
//! 3. `libonnxruntime.so*` beside the running executable (a release tarball);
//! 4. `$TCANET_VENV/onnxruntime/` (`TCANET_VENV` read at run time; cargo sets
//!    it for `cargo run` and `cargo test` from `.cargo/config.toml`);
//! 5. the repository's `.venv/onnxruntime/` seen from a development build
//!    (an executable in `<repo>/target/<profile>/`).
//!
//! In a directory, the shortest matching name wins (`libonnxruntime.so`
//! before `libonnxruntime.so.1.31.1`). A path given explicitly (1 or 2) that
//! is unusable is an error at once: the user asked for that file. When none
//! is found, [`OrtSetupError::NotFound`] lists every candidate tried.
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use ort::environment::Environment;

use crate::OrtSetupError;

/// The ONNX Runtime version this project is built and tested against.
pub const ORT_VERSION: &str = "1.31.1";

/// Where a library path came from, one name per rule of the lookup order
/// (see the module docs), in that order.
pub const LOOKUP_RULES: [&str; 5] = [
    "--ort-lib",
    "ORT_DYLIB_PATH",
    "beside the executable",
    "TCANET_VENV",
    "the repository's .venv",
];

/// The rule number (1 to 5) of a [`FoundLibrary::source_name`].
pub fn lookup_rule(source_name: &str) -> Option<usize> {
    LOOKUP_RULES
        .iter()
        .position(|r| *r == source_name)
        .map(|i| i + 1)
}

/// One candidate library path and the outcome of looking at it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TriedPath {
    /// The path looked at.
    pub path: PathBuf,
    /// Where it came from (`--ort-lib`, `ORT_DYLIB_PATH`, ...).
    pub source_name: String,
    /// Why it was not used (e.g. `does not exist`).
    pub outcome: String,
}

/// A library found by [`find_ort_library`].
#[derive(Debug, Clone)]
pub struct FoundLibrary {
    /// The library file.
    pub path: PathBuf,
    /// Where the path came from.
    pub source_name: String,
    /// The candidates looked at before it.
    pub tried: Vec<TriedPath>,
}

/// Where [`find_ort_library`] looks, besides an explicit path: the values
/// the process sees (separate so that the order can be tested).
#[derive(Debug, Clone, Default)]
pub struct LookupPlaces {
    /// `ORT_DYLIB_PATH`, if set and not empty.
    pub ort_dylib_path: Option<PathBuf>,
    /// The running executable's directory.
    pub exe_dir: Option<PathBuf>,
    /// `TCANET_VENV`, if set and not empty.
    pub venv: Option<PathBuf>,
}

impl LookupPlaces {
    /// The places of this process.
    pub fn of_process() -> Self {
        let env = |name: &str| {
            std::env::var_os(name)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        Self {
            ort_dylib_path: env("ORT_DYLIB_PATH"),
            exe_dir: std::env::current_exe()
                .ok()
                .and_then(|e| e.parent().map(Path::to_path_buf)),
            venv: env("TCANET_VENV"),
        }
    }
}

/// Is this file name an ONNX Runtime core library (`libonnxruntime.so`, `.so.1`, `.so.1.31.1`)?
fn is_core_library_name(name: &str) -> bool {
    name == "libonnxruntime.so" || name.starts_with("libonnxruntime.so.")
}

/// The core library inside a directory: the shortest matching name wins.
fn library_in_dir(dir: &Path) -> Option<PathBuf> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| is_core_library_name(n))
        .collect();
    names.sort_by_key(|n| (n.len(), n.clone()));
    names.first().map(|n| dir.join(n))
}

/// Looks at one candidate (a file, or a directory holding the library).
fn look_at(path: &Path) -> Result<PathBuf, &'static str> {
    if path.is_dir() {
        library_in_dir(path).ok_or("is a directory without libonnxruntime.so*")
    } else if path.is_file() {
        Ok(path.to_path_buf())
    } else {
        Err("does not exist")
    }
}

/// Looks for the ONNX Runtime library in the documented order (see the
/// module docs), without loading it.
pub fn find_ort_library(explicit: Option<&Path>) -> Result<FoundLibrary, OrtSetupError> {
    find_in(explicit, &LookupPlaces::of_process())
}

/// [`find_ort_library`] with the places given.
pub fn find_in(
    explicit: Option<&Path>,
    places: &LookupPlaces,
) -> Result<FoundLibrary, OrtSetupError> {
    let mut tried = Vec::new();
    let [flag_rule, env_rule, exe_rule, venv_rule, repo_rule] = LOOKUP_RULES;
    let asked = [
        (explicit.map(Path::to_path_buf), flag_rule),
        (places.ort_dylib_path.clone(), env_rule),
    ];
    if let Some((Some(path), source)) = asked.into_iter().find(|(p, _)| p.is_some()) {
        return match look_at(&path) {
            Ok(lib) => Ok(FoundLibrary {
                path: lib,
                source_name: source.into(),
                tried,
            }),
            Err(outcome) => {
                tried.push(TriedPath {
                    path,
                    source_name: source.into(),
                    outcome: outcome.into(),
                });
                Err(OrtSetupError::NotFound { tried })
            }
        };
    }
    let mut candidates: Vec<(PathBuf, &str)> = Vec::new();
    if let Some(dir) = &places.exe_dir {
        candidates.push((dir.clone(), exe_rule));
    }
    if let Some(venv) = &places.venv {
        candidates.push((venv.join("onnxruntime"), venv_rule));
    }
    if let Some(repo) = places.exe_dir.as_deref().and_then(development_repository) {
        candidates.push((repo.join(".venv").join("onnxruntime"), repo_rule));
    }
    for (path, source) in candidates {
        match look_at(&path) {
            Ok(lib) => {
                return Ok(FoundLibrary {
                    path: lib,
                    source_name: source.into(),
                    tried,
                })
            }
            Err(outcome) => tried.push(TriedPath {
                path,
                source_name: source.into(),
                outcome: outcome.into(),
            }),
        }
    }
    Err(OrtSetupError::NotFound { tried })
}

/// The repository of a development build: `<repo>` for an executable in
/// `<repo>/target/<profile>/` (or `<repo>/target/<triple>/<profile>/`).
fn development_repository(exe_dir: &Path) -> Option<PathBuf> {
    exe_dir
        .ancestors()
        .skip(1)
        .take(2)
        .find(|d| d.file_name().is_some_and(|n| n == "target"))
        .and_then(Path::parent)
        .map(Path::to_path_buf)
}

/// ONNX Runtime as loaded in this process.
#[derive(Debug)]
pub struct LoadedOrt {
    /// The library file in use.
    pub path: PathBuf,
    /// Where its path came from.
    pub source_name: String,
    /// The library's version (`GetVersionString`, e.g. `1.31.1`).
    pub version: String,
    /// ONNX Runtime's build-info string (git commit, build type).
    pub build_info: String,
    /// The process-wide environment every session is built in.
    pub environment: Environment,
}

static LOADED: OnceLock<LoadedOrt> = OnceLock::new();
static LOAD_LOCK: Mutex<()> = Mutex::new(());

/// ONNX Runtime, if [`init_ort`] has loaded it.
pub fn loaded() -> Option<&'static LoadedOrt> {
    LOADED.get()
}

/// The line `--version` prints about ONNX Runtime: the version and file the
/// lookup finds, or that none was found (`hint` says where to learn more).
pub fn version_line(hint: &str) -> String {
    match init_ort(None) {
        Ok(loaded) => format!(
            "ONNX Runtime: {} ({})",
            loaded.version,
            loaded.path.display()
        ),
        Err(_) => format!("ONNX Runtime: not found ({hint})"),
    }
}

/// Finds ([`find_ort_library`]) and loads ONNX Runtime once per process, and
/// creates the shared environment. Later calls return the same library; a
/// later call asking explicitly for another file is an error.
pub fn init_ort(explicit: Option<&Path>) -> Result<&'static LoadedOrt, OrtSetupError> {
    let _guard = LOAD_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(loaded) = LOADED.get() {
        if let Some(requested) = explicit {
            let same =
                std::fs::canonicalize(requested).ok() == std::fs::canonicalize(&loaded.path).ok();
            if !same && !requested.is_dir() {
                return Err(OrtSetupError::AlreadyLoaded {
                    loaded: loaded.path.clone(),
                    requested: requested.to_path_buf(),
                });
            }
        }
        return Ok(loaded);
    }
    let found = find_ort_library(explicit)?;
    let load_err = |message: String| OrtSetupError::Load {
        path: found.path.clone(),
        source_name: found.source_name.clone(),
        message,
    };
    let builder = ort::init_from(&found.path).map_err(|e| load_err(e.to_string()))?;
    let environment = builder
        .with_name("tcanet")
        .build()
        .map_err(|e| load_err(e.to_string()))?;
    let version = crate::probe::library_version(&found.path).map_err(load_err)?;
    let loaded = LoadedOrt {
        path: found.path,
        source_name: found.source_name,
        version,
        build_info: ort::info().to_string(),
        environment,
    };
    Ok(LOADED.get_or_init(|| loaded))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(dir: &Path, names: &[&str]) {
        std::fs::create_dir_all(dir).unwrap();
        for n in names {
            std::fs::write(dir.join(n), b"").unwrap();
        }
    }

    fn found(explicit: Option<&Path>, places: &LookupPlaces) -> (PathBuf, String) {
        let f = find_in(explicit, places).unwrap();
        (f.path, f.source_name)
    }

    fn not_found(explicit: Option<&Path>, places: &LookupPlaces) -> String {
        find_in(explicit, places).unwrap_err().to_string()
    }

    /// The documented order, each rule and each failure, on one directory tree.
    #[test]
    fn lookup_order() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        let exe = r.join("repo/target/release");
        let venv = r.join("venv/onnxruntime");
        let repo_venv = r.join("repo/.venv/onnxruntime");
        let flag = r.join("flag");
        let env = r.join("env");
        touch(
            &exe,
            &["tcanet-infer", "libonnxruntime_providers_shared.so"],
        );
        touch(&venv, &["libonnxruntime.so.1.31.1"]);
        touch(
            &repo_venv,
            &["libonnxruntime.so.1.31.1", "libonnxruntime.so.1"],
        );
        touch(&flag, &["libonnxruntime.so.1.31.1", "libonnxruntime.so"]);
        touch(&env, &["libonnxruntime.so.1.31.1"]);
        let mut places = LookupPlaces {
            ort_dylib_path: Some(env.clone()),
            exe_dir: Some(exe.clone()),
            venv: Some(r.join("venv")),
        };
        // 1. --ort-lib wins (a directory: the shortest name).
        assert_eq!(
            found(Some(&flag), &places),
            (flag.join("libonnxruntime.so"), "--ort-lib".into())
        );
        // A given file that is missing is an error even when others exist.
        let msg = not_found(Some(&flag.join("nope.so")), &places);
        assert!(
            msg.contains("nope.so") && msg.contains("--ort-lib") && msg.contains("does not exist"),
            "{msg}"
        );
        // 2. ORT_DYLIB_PATH next; set but missing is an error.
        assert_eq!(
            found(None, &places),
            (
                env.join("libonnxruntime.so.1.31.1"),
                "ORT_DYLIB_PATH".into()
            )
        );
        places.ort_dylib_path = Some(r.join("missing.so"));
        assert!(not_found(None, &places).contains("ORT_DYLIB_PATH"));
        places.ort_dylib_path = None;
        // 4. TCANET_VENV (nothing usable beside the executable).
        assert_eq!(
            found(None, &places),
            (venv.join("libonnxruntime.so.1.31.1"), "TCANET_VENV".into())
        );
        // 5. The repository's .venv seen from target/release.
        places.venv = None;
        assert_eq!(
            found(None, &places),
            (
                repo_venv.join("libonnxruntime.so.1"),
                "the repository's .venv".into()
            )
        );
        // 3. Beside the executable wins over both.
        touch(&exe, &["libonnxruntime.so.1.31.1"]);
        places.venv = Some(r.join("venv"));
        assert_eq!(
            found(None, &places),
            (
                exe.join("libonnxruntime.so.1.31.1"),
                "beside the executable".into()
            )
        );
        // Nothing anywhere: every place is listed.
        let empty = LookupPlaces {
            exe_dir: Some(r.join("elsewhere/bin")),
            venv: Some(r.join("novenv")),
            ..Default::default()
        };
        let msg = not_found(None, &empty);
        for needle in ["beside the executable", "TCANET_VENV", "--ort-lib"] {
            assert!(msg.contains(needle), "{needle}: {msg}");
        }
    }

    #[test]
    fn rules_are_numbered_in_the_documented_order() {
        assert_eq!(lookup_rule("--ort-lib"), Some(1));
        assert_eq!(lookup_rule("beside the executable"), Some(3));
        assert_eq!(lookup_rule("the repository's .venv"), Some(5));
        assert_eq!(lookup_rule("elsewhere"), None);
    }

    #[test]
    fn development_repository_of_target_dirs() {
        assert_eq!(
            development_repository(Path::new("/x/repo/target/release")),
            Some(PathBuf::from("/x/repo"))
        );
        assert_eq!(
            development_repository(Path::new("/x/repo/target/x86_64-unknown-linux-gnu/debug")),
            Some(PathBuf::from("/x/repo"))
        );
        assert_eq!(development_repository(Path::new("/opt/tcanet/bin")), None);
    }
}
