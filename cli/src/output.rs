//! Where results go: standard output or a file, written so that nothing is
//! ever half-written or written onto an input.

use std::ffi::OsStr;
use std::fmt;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::temporary::PendingTemp;
use crate::ExitStatus;

/// Why an output could not be written, or may not be.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    /// Standard output was closed by its reader (`| head`): end quietly.
    #[error("standard output was closed by its reader")]
    BrokenPipe,
    /// Writing failed (disk full, permission denied, ...).
    #[error("cannot write {target}: {cause}")]
    Write {
        /// The file, or `standard output`.
        target: String,
        /// The OS error.
        cause: io::Error,
    },
    /// The output is the same file as an input.
    #[error("refusing to write {output}: it is the same file as the input {input}")]
    OntoInput {
        /// The output as given.
        output: String,
        /// The input as given.
        input: String,
    },
    /// Two outputs of one command are the same file.
    #[error("{first_flag} and {second_flag} name the same file ({path}); give each its own")]
    DuplicateOutput {
        /// The flag of the first output.
        first_flag: String,
        /// The flag of the second output.
        second_flag: String,
        /// The file.
        path: String,
    },
    /// Publishing several outputs together ([`crate::OutputSet`]) failed
    /// after some of them had been replaced.
    #[error(
        "cannot write {target}: {cause}; {published} already replaced, so the outputs now come \
         from different runs: run the command again"
    )]
    Incomplete {
        /// The output that could not be renamed into place.
        target: String,
        /// The OS error.
        cause: io::Error,
        /// The outputs already replaced, comma-separated.
        published: String,
    },
    /// The output cannot be created where it was asked for.
    #[error("cannot write {target}: {reason}")]
    NotWritable {
        /// The file.
        target: String,
        /// What is wrong (no such directory, a directory, permission).
        reason: String,
    },
}

impl OutputError {
    /// The exit status for this error: usage (2) for an output that may not
    /// or cannot be created, failure (1) when writing failed or the pipe
    /// was closed.
    pub fn exit_status(&self) -> ExitStatus {
        match self {
            OutputError::BrokenPipe
            | OutputError::Write { .. }
            | OutputError::Incomplete { .. } => ExitStatus::Failure,
            OutputError::OntoInput { .. }
            | OutputError::DuplicateOutput { .. }
            | OutputError::NotWritable { .. } => ExitStatus::Usage,
        }
    }

    /// Whether the error should end the program without a message (a
    /// closed pipe: the reader wanted no more).
    pub fn is_quiet(&self) -> bool {
        matches!(self, OutputError::BrokenPipe)
    }

    /// A failed write of `target`: [`OutputError::BrokenPipe`] when the
    /// reader closed the pipe, else [`OutputError::Write`].
    pub fn write(target: &str, cause: io::Error) -> Self {
        if cause.kind() == io::ErrorKind::BrokenPipe {
            OutputError::BrokenPipe
        } else {
            OutputError::Write {
                target: target.to_string(),
                cause,
            }
        }
    }
}

/// An output target: `-` is standard output, anything else a path.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Output {
    /// Standard output.
    Stdout,
    /// A file (or a device or FIFO, written in place).
    Path(PathBuf),
}

impl Output {
    /// `-` → [`Output::Stdout`], and so are the kernel's names for this
    /// process's standard output (`/dev/stdout`, `/dev/fd/1`,
    /// `/proc/self/fd/1`); anything else is a path (also usable as a clap
    /// value parser through `From<&OsStr>`).
    pub fn parse(text: &OsStr) -> Output {
        if text == "-" || descriptor_alias(Path::new(text)) == Some(1) {
            Output::Stdout
        } else {
            Output::Path(PathBuf::from(text))
        }
    }

    /// Whether this is standard output.
    pub fn is_stdout(&self) -> bool {
        matches!(self, Output::Stdout)
    }

    /// The path, unless standard output.
    pub fn path(&self) -> Option<&Path> {
        match self {
            Output::Stdout => None,
            Output::Path(p) => Some(p),
        }
    }

    /// The path [`write_atomic`] writes this output to: the file, or for
    /// standard output `/dev/stdout`, which it writes through the open
    /// descriptor (for writers that take a path).
    pub fn write_path(&self) -> PathBuf {
        match self {
            Output::Stdout => PathBuf::from("/dev/stdout"),
            Output::Path(p) => p.clone(),
        }
    }

    /// Writes the output: `fill` writes the content, to standard output
    /// ([`write_stdout`]) or to the file ([`write_atomic`]).
    pub fn write_with<F>(&self, fill: F) -> Result<(), OutputError>
    where
        F: FnOnce(&mut dyn Write) -> io::Result<()>,
    {
        match self {
            Output::Stdout => write_stdout(fill),
            Output::Path(p) => write_atomic(p, |w| fill(w))
                .map_err(|e| OutputError::write(&p.display().to_string(), e)),
        }
    }

    /// [`Output::write_with`] for content already in memory.
    pub fn write_bytes(&self, bytes: &[u8]) -> Result<(), OutputError> {
        self.write_with(|w| w.write_all(bytes))
    }

    /// Checks, before long work, that the output can be created: its
    /// directory exists and accepts a new file (tried with a temporary file
    /// that is removed at once), and it is not a directory. Standard output
    /// and existing devices, FIFOs and sockets pass.
    pub fn check_writable(&self) -> Result<(), OutputError> {
        let Output::Path(path) = self else {
            return Ok(());
        };
        if descriptor_alias(path).is_some() {
            return Ok(());
        }
        let target = path.display().to_string();
        let fail = |reason: String| OutputError::NotWritable {
            target: target.clone(),
            reason,
        };
        if path.as_os_str().is_empty() {
            return Err(OutputError::NotWritable {
                target: "''".into(),
                reason: "an empty path names no file".into(),
            });
        }
        match fs::metadata(path) {
            Ok(m) if m.is_dir() => return Err(fail("it is a directory".into())),
            Ok(m) if !m.is_file() => return Ok(()),
            _ => {}
        }
        let real = resolve_link(path);
        let dir = parent_dir(&real);
        match fs::metadata(&dir) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => return Err(fail(format!("{} is not a directory", dir.display()))),
            Err(_) => return Err(fail(format!("no directory {}", dir.display()))),
        }
        let probe = temp_sibling(&real);
        match fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&probe)
        {
            Ok(_) => {
                let _ = fs::remove_file(&probe);
                Ok(())
            }
            Err(e) => Err(fail(format!(
                "cannot create a file in {}: {e}",
                dir.display()
            ))),
        }
    }
}

impl From<&OsStr> for Output {
    fn from(text: &OsStr) -> Self {
        Output::parse(text)
    }
}

impl std::str::FromStr for Output {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Output::parse(OsStr::new(s)))
    }
}

impl fmt::Display for Output {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Output::Stdout => f.write_str("standard output"),
            Output::Path(p) => write!(f, "{}", p.display()),
        }
    }
}

/// Writes to standard output through one buffer and flushes it. A reader
/// that closed the pipe gives [`OutputError::BrokenPipe`] (end quietly);
/// any other error (a full disk) [`OutputError::Write`].
pub fn write_stdout<F>(fill: F) -> Result<(), OutputError>
where
    F: FnOnce(&mut dyn Write) -> io::Result<()>,
{
    let stdout = io::stdout();
    let mut w = io::BufWriter::with_capacity(1 << 16, stdout.lock());
    fill(&mut w)
        .and_then(|_| w.flush())
        .map_err(|e| OutputError::write("standard output", e))
}

/// The directory a file is created in (`.` for a bare name).
pub(crate) fn parent_dir(path: &Path) -> PathBuf {
    path.parent()
        .filter(|d| !d.as_os_str().is_empty())
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// A symbolic link's final target (so that the link is kept and its target
/// replaced), also when that target does not exist yet (it is then created
/// where the link points, never in the link's place); other paths as given.
pub(crate) fn resolve_link(path: &Path) -> PathBuf {
    let mut current = path.to_path_buf();
    // As the kernel, give up after 40 links (a loop): the path is then
    // written as given and fails there.
    for _ in 0..40 {
        match fs::symlink_metadata(&current) {
            Ok(m) if m.file_type().is_symlink() => {}
            _ => return current,
        }
        if let Ok(real) = fs::canonicalize(&current) {
            return real;
        }
        match fs::read_link(&current) {
            Ok(target) if target.is_absolute() => current = target,
            Ok(target) => current = parent_dir(&current).join(target),
            Err(_) => return current,
        }
    }
    path.to_path_buf()
}

/// The temporary name used for `path` while it is being written:
/// `.NAME.tmp-PID-N` beside it (N counts within the process).
pub fn temp_sibling(path: &Path) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    path.with_file_name(format!(".{name}.tmp-{}-{n}", std::process::id()))
}

/// Writes a file so that an interrupted or failed run never leaves it
/// half-written: `fill` writes to a temporary sibling, which is synced to
/// disk and renamed over `path`; on any error it is removed and `path` is
/// left as it was. An existing regular file keeps its permissions; a
/// symbolic link keeps pointing at its (replaced) target.
///
/// An existing device, FIFO or socket (`/dev/null`, a named pipe) cannot be
/// replaced and is written in place instead. A name of one of this
/// process's open descriptors (`/dev/stdout`, `/dev/stderr`, `/dev/fd/N`,
/// `/proc/self/fd/N`) is written through that descriptor, whatever it is
/// open on: a regular file behind `>>` is appended to, not replaced. A
/// directory is an error.
pub fn write_atomic<F>(path: &Path, fill: F) -> io::Result<()>
where
    F: FnOnce(&mut io::BufWriter<fs::File>) -> io::Result<()>,
{
    if let Some(fd) = descriptor_alias(path) {
        return write_descriptor(fd, fill);
    }
    let existing = fs::metadata(path).ok();
    if let Some(m) = &existing {
        if m.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::IsADirectory,
                "it is a directory",
            ));
        }
        if !m.is_file() {
            return write_in_place(path, fill);
        }
    }
    let real = resolve_link(path);
    // Removed when dropped, on an error or a panic of `fill` alike.
    let tmp = PendingTemp::new(temp_sibling(&real));
    (|| {
        let file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)?;
        let mut w = io::BufWriter::new(file);
        fill(&mut w)?;
        let file = w.into_inner().map_err(|e| e.into_error())?;
        if let Some(m) = &existing {
            file.set_permissions(m.permissions())?;
        }
        file.sync_all()?;
        fs::rename(&tmp, &real)?;
        sync_dir(&parent_dir(&real));
        Ok(())
    })()
}

/// [`write_atomic`] for content already in memory.
pub fn write_atomic_bytes(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_atomic(path, |w| w.write_all(bytes))
}

/// Writes an existing non-regular file (device, FIFO, socket) in place.
pub(crate) fn write_in_place<F>(path: &Path, fill: F) -> io::Result<()>
where
    F: FnOnce(&mut io::BufWriter<fs::File>) -> io::Result<()>,
{
    let file = fs::OpenOptions::new().write(true).open(path)?;
    let mut w = io::BufWriter::new(file);
    fill(&mut w)?;
    w.flush()
}

/// The descriptor a path names when it is one of the kernel's names for an
/// open descriptor of this process: `/dev/stdout` (1), `/dev/stderr` (2),
/// `/dev/fd/N`, `/proc/self/fd/N` and `/proc/PID/fd/N` with this process's
/// PID. Opening such a name would open the file anew (at offset 0, and a
/// rename would replace it); writing through the descriptor keeps the
/// caller's redirection as it is.
pub(crate) fn descriptor_alias(path: &Path) -> Option<i32> {
    if !cfg!(unix) {
        return None;
    }
    let text = path.to_str()?;
    match text {
        "/dev/stdout" => return Some(1),
        "/dev/stderr" => return Some(2),
        _ => {}
    }
    let own = format!("/proc/{}/fd/", std::process::id());
    let number = text
        .strip_prefix("/dev/fd/")
        .or_else(|| text.strip_prefix("/proc/self/fd/"))
        .or_else(|| text.strip_prefix(own.as_str()))?;
    if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    number.parse().ok()
}

/// Writes through open descriptor `fd` (a duplicate of it, so that the
/// caller's offset and flags are shared and the descriptor stays open).
#[cfg(unix)]
fn write_descriptor<F>(fd: i32, fill: F) -> io::Result<()>
where
    F: FnOnce(&mut io::BufWriter<fs::File>) -> io::Result<()>,
{
    use std::os::fd::FromRawFd;
    // SAFETY: `dup` only reads the descriptor table; a negative result is
    // an error (EBADF for a descriptor that is not open).
    let copy = unsafe { libc::dup(fd) };
    if copy < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `copy` is a fresh descriptor that nothing else owns.
    let file = unsafe { fs::File::from_raw_fd(copy) };
    let mut w = io::BufWriter::new(file);
    fill(&mut w)?;
    w.flush()
}

#[cfg(not(unix))]
fn write_descriptor<F>(_fd: i32, _fill: F) -> io::Result<()>
where
    F: FnOnce(&mut io::BufWriter<fs::File>) -> io::Result<()>,
{
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "no descriptors here",
    ))
}

/// Makes a rename durable (best effort: not every file system allows
/// syncing a directory).
pub(crate) fn sync_dir(dir: &Path) {
    #[cfg(unix)]
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
    #[cfg(not(unix))]
    let _ = dir;
}

/// The identity of an existing file: device and inode on Unix, the
/// canonical path elsewhere.
#[derive(PartialEq, Eq)]
enum FileId {
    #[cfg(unix)]
    Inode(u64, u64),
    #[cfg(not(unix))]
    Canonical(PathBuf),
}

fn file_id(path: &Path) -> Option<FileId> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        fs::metadata(path)
            .ok()
            .map(|m| FileId::Inode(m.dev(), m.ino()))
    }
    #[cfg(not(unix))]
    {
        fs::canonicalize(path).ok().map(FileId::Canonical)
    }
}

/// Whether two paths name the same existing file (through links, `..` or
/// another spelling); `false` when either does not exist.
pub fn same_file(a: &Path, b: &Path) -> bool {
    match (file_id(a), file_id(b)) {
        (Some(x), Some(y)) => x == y,
        _ => false,
    }
}

/// Refuses an output that is the same file as one of the inputs (run it
/// before reading, so that nothing is destroyed). Devices such as
/// `/dev/null` may be both.
pub fn refuse_output_onto_inputs(output: &Output, inputs: &[&Path]) -> Result<(), OutputError> {
    let Output::Path(out) = output else {
        return Ok(());
    };
    if fs::metadata(out).is_ok_and(|m| !m.is_file()) {
        return Ok(());
    }
    for input in inputs {
        if input.as_os_str() != "-" && same_file(out, input) {
            return Err(OutputError::OntoInput {
                output: out.display().to_string(),
                input: input.display().to_string(),
            });
        }
    }
    Ok(())
}

/// Refuses two outputs of one command that are the same file (or both
/// standard output); `outputs` are `(flag, output)` pairs. New files are
/// compared by their spelled path; devices may repeat.
pub fn refuse_duplicate_outputs(outputs: &[(&str, &Output)]) -> Result<(), OutputError> {
    for (i, (flag_a, a)) in outputs.iter().enumerate() {
        for (flag_b, b) in &outputs[i + 1..] {
            let clash = match (a, b) {
                (Output::Stdout, Output::Stdout) => true,
                (Output::Path(x), Output::Path(y)) => {
                    let device = fs::metadata(x).is_ok_and(|m| !m.is_file());
                    !device && (x == y || same_file(x, y) || same_new_file(x, y))
                }
                _ => false,
            };
            if clash {
                return Err(OutputError::DuplicateOutput {
                    first_flag: flag_a.to_string(),
                    second_flag: flag_b.to_string(),
                    path: a.to_string(),
                });
            }
        }
    }
    Ok(())
}

/// Two not-yet-existing paths that would be the same file: same name in
/// the same (existing) directory.
fn same_new_file(x: &Path, y: &Path) -> bool {
    x.file_name().is_some()
        && x.file_name() == y.file_name()
        && same_file(&parent_dir(x), &parent_dir(y))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_dir::{names, TempDir};

    #[test]
    fn dash_is_stdout_and_anything_else_a_path() {
        assert_eq!(Output::parse(OsStr::new("-")), Output::Stdout);
        assert_eq!(
            Output::parse(OsStr::new("a.json")),
            Output::Path("a.json".into())
        );
        assert_eq!(Output::Stdout.to_string(), "standard output");
        assert!("-".parse::<Output>().unwrap().is_stdout());
        #[cfg(unix)]
        for name in ["/dev/stdout", "/dev/fd/1", "/proc/self/fd/1"] {
            assert!(Output::parse(OsStr::new(name)).is_stdout(), "{name}");
        }
        for name in ["/dev/fd/", "/dev/fd/x", "/dev/stdout2", "dev/stdout"] {
            assert!(!Output::parse(OsStr::new(name)).is_stdout(), "{name}");
        }
    }

    /// `-o /dev/fd/N >> FILE`: the file is appended to through the
    /// descriptor, neither replaced nor truncated.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_descriptor_name_is_written_through_the_descriptor() {
        use std::os::fd::AsRawFd;
        use std::os::unix::fs::MetadataExt;
        let d = TempDir::new("output", "descriptor");
        let path = d.0.join("log.txt");
        fs::write(&path, b"KEEP\n").unwrap();
        let inode = fs::metadata(&path).unwrap().ino();
        let appending = fs::OpenOptions::new().append(true).open(&path).unwrap();
        for name in [
            format!("/dev/fd/{}", appending.as_raw_fd()),
            format!("/proc/self/fd/{}", appending.as_raw_fd()),
        ] {
            let out = Output::parse(OsStr::new(&name));
            assert_eq!(out, Output::Path(name.clone().into()));
            out.check_writable().unwrap();
            out.write_bytes(name.as_bytes()).unwrap();
        }
        let fd = appending.as_raw_fd();
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            format!("KEEP\n/dev/fd/{fd}/proc/self/fd/{fd}")
        );
        assert_eq!(fs::metadata(&path).unwrap().ino(), inode, "not replaced");
        assert_eq!(names(&d.0), ["log.txt"], "no temporary file");
        drop(appending);
        // A descriptor that is not open is an error, not a new file.
        let e = Output::Path("/dev/fd/987654".into())
            .write_bytes(b"x")
            .unwrap_err();
        assert!(
            e.to_string().starts_with("cannot write /dev/fd/987654: "),
            "{e}"
        );
    }

    #[test]
    fn atomic_write_replaces_or_leaves_the_old_file() {
        let d = TempDir::new("output", "atomic");
        let path = d.0.join("out.json");
        write_atomic_bytes(&path, b"old").unwrap();
        let err = write_atomic(&path, |w| {
            w.write_all(b"partial")?;
            Err(io::Error::other("interrupted"))
        });
        assert!(err.is_err());
        assert_eq!(fs::read(&path).unwrap(), b"old");
        assert_eq!(names(&d.0), ["out.json"], "no temporary file is left");
        write_atomic_bytes(&path, b"new").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"new");
        assert_eq!(names(&d.0), ["out.json"]);
    }

    #[cfg(unix)]
    #[test]
    fn atomic_write_keeps_permissions_and_symlinks() {
        use std::os::unix::fs::PermissionsExt;
        let d = TempDir::new("output", "perm");
        let target = d.0.join("target.json");
        write_atomic_bytes(&target, b"one").unwrap();
        fs::set_permissions(&target, fs::Permissions::from_mode(0o640)).unwrap();
        let link = d.0.join("link.json");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        write_atomic_bytes(&link, b"two").unwrap();
        assert!(fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(fs::read(&target).unwrap(), b"two");
        let mode = fs::metadata(&target).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o640);
    }

    /// A dangling link: its target is created where it points (the link is
    /// kept), or, in a missing directory, the output is refused up front.
    #[cfg(unix)]
    #[test]
    fn a_dangling_symlink_is_followed_not_replaced() {
        let d = TempDir::new("output", "dangling");
        let link = d.0.join("link.json");
        std::os::unix::fs::symlink("target.json", &link).unwrap();
        let out = Output::Path(link.clone());
        out.check_writable().unwrap();
        out.write_bytes(b"data").unwrap();
        assert!(fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(fs::read(d.0.join("target.json")).unwrap(), b"data");
        let nowhere = d.0.join("nowhere.json");
        std::os::unix::fs::symlink(d.0.join("no").join("dir").join("x.json"), &nowhere).unwrap();
        let e = Output::Path(nowhere.clone()).check_writable().unwrap_err();
        assert!(e.to_string().contains("no directory"), "{e}");
        assert_eq!(e.exit_status(), ExitStatus::Usage);
        assert!(fs::symlink_metadata(&nowhere)
            .unwrap()
            .file_type()
            .is_symlink());
    }

    #[test]
    fn a_directory_is_not_an_output() {
        let d = TempDir::new("output", "dir");
        let err = write_atomic_bytes(&d.0, b"x").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::IsADirectory);
        let e = Output::Path(d.0.clone()).check_writable().unwrap_err();
        assert!(e.to_string().contains("is a directory"), "{e}");
        assert_eq!(e.exit_status(), ExitStatus::Usage);
    }

    #[cfg(unix)]
    #[test]
    fn dev_null_is_written_in_place() {
        let out = Output::Path("/dev/null".into());
        out.check_writable().unwrap();
        out.write_bytes(b"discarded").unwrap();
        assert!(fs::metadata("/dev/null")
            .unwrap()
            .file_type()
            .is_char_device_like());
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn dev_full_is_a_one_line_error_with_status_1() {
        let e = Output::Path("/dev/full".into())
            .write_with(|w| w.write_all(&vec![b'x'; 1 << 17]))
            .unwrap_err();
        let msg = e.to_string();
        assert!(msg.starts_with("cannot write /dev/full: "), "{msg}");
        assert!(!msg.contains('\n') && !msg.contains("Os {"), "{msg}");
        assert_eq!(e.exit_status(), ExitStatus::Failure);
        assert!(!e.is_quiet());
    }

    #[cfg(unix)]
    #[test]
    fn a_fifo_is_written_in_place() {
        use std::io::Read;
        let d = TempDir::new("output", "fifo");
        let fifo = d.0.join("pipe");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let reader = {
            let fifo = fifo.clone();
            std::thread::spawn(move || {
                let mut s = String::new();
                fs::File::open(fifo)
                    .unwrap()
                    .read_to_string(&mut s)
                    .unwrap();
                s
            })
        };
        let out = Output::Path(fifo.clone());
        out.check_writable().unwrap();
        out.write_bytes(b"through the pipe").unwrap();
        assert_eq!(reader.join().unwrap(), "through the pipe");
        assert_eq!(names(&d.0), ["pipe"], "written in place, no temporary");
    }

    #[test]
    fn output_onto_an_input_is_refused() {
        let d = TempDir::new("output", "onto");
        let input = d.0.join("gt.json");
        fs::write(&input, b"{}").unwrap();
        // Another spelling of the same file.
        let other = d.0.join(".").join("gt.json");
        let e =
            refuse_output_onto_inputs(&Output::Path(other), &[Path::new("x"), &input]).unwrap_err();
        assert!(e.to_string().contains("same file as the input"), "{e}");
        assert_eq!(e.exit_status(), ExitStatus::Usage);
        refuse_output_onto_inputs(&Output::Path(d.0.join("new.json")), &[&input]).unwrap();
        refuse_output_onto_inputs(&Output::Stdout, &[&input]).unwrap();
        #[cfg(unix)]
        refuse_output_onto_inputs(&Output::Path("/dev/null".into()), &[Path::new("/dev/null")])
            .unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn output_onto_a_hard_link_of_an_input_is_refused() {
        let d = TempDir::new("output", "hardlink");
        let input = d.0.join("a.json");
        fs::write(&input, b"{}").unwrap();
        let link = d.0.join("b.json");
        fs::hard_link(&input, &link).unwrap();
        assert!(same_file(&input, &link));
        assert!(refuse_output_onto_inputs(&Output::Path(link), &[&input]).is_err());
    }

    #[test]
    fn two_outputs_on_one_file_are_refused() {
        let d = TempDir::new("output", "dup");
        let a = Output::Path(d.0.join("r.json"));
        let b = Output::Path(d.0.join(".").join("r.json"));
        let c = Output::Path(d.0.join("s.json"));
        let e =
            refuse_duplicate_outputs(&[("-o", &a), ("--plot", &c), ("--json", &b)]).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("-o and --json name the same file"), "{msg}");
        assert!(
            refuse_duplicate_outputs(&[("-o", &Output::Stdout), ("--x", &Output::Stdout)]).is_err()
        );
        refuse_duplicate_outputs(&[("-o", &a), ("--plot", &c), ("--x", &Output::Stdout)]).unwrap();
        #[cfg(unix)]
        {
            let dev_stdout = Output::parse(OsStr::new("/dev/stdout"));
            assert!(
                refuse_duplicate_outputs(&[("-o", &dev_stdout), ("--x", &Output::Stdout)]).is_err()
            );
        }
        #[cfg(unix)]
        {
            let null = Output::Path("/dev/null".into());
            refuse_duplicate_outputs(&[("-o", &null), ("--x", &null)]).unwrap();
        }
    }

    #[test]
    fn an_empty_path_is_not_writable() {
        let e = Output::parse(OsStr::new("")).check_writable().unwrap_err();
        assert_eq!(
            e.to_string(),
            "cannot write '': an empty path names no file"
        );
        assert_eq!(e.exit_status(), ExitStatus::Usage);
    }

    #[test]
    fn check_writable_names_a_missing_directory() {
        let d = TempDir::new("output", "missing");
        let out = Output::Path(d.0.join("no").join("such").join("out.json"));
        let e = out.check_writable().unwrap_err();
        assert!(e.to_string().contains("no directory"), "{e}");
        Output::Path(d.0.join("fine.json"))
            .check_writable()
            .unwrap();
        assert!(names(&d.0).is_empty(), "the probe is removed");
    }

    #[cfg(unix)]
    #[test]
    fn broken_pipe_is_quiet_with_status_1() {
        // A pipe whose reading end is closed: writing gives EPIPE (Rust
        // ignores SIGPIPE in its programs, so the write returns an error).
        // Close-on-exec ends: a child another test spawns meanwhile drops
        // them at its exec instead of keeping the reader alive.
        let (reader, mut w) = std::io::pipe().unwrap();
        drop(reader);
        let cause = w.write_all(b"x").unwrap_err();
        let e = OutputError::write("standard output", cause);
        assert!(matches!(e, OutputError::BrokenPipe));
        assert!(e.is_quiet());
        assert_eq!(e.exit_status(), ExitStatus::Failure);
    }

    /// Runs `f` with file descriptor 1 pointing at `fd`, then restores it.
    #[cfg(unix)]
    fn with_stdout_on<T>(fd: i32, f: impl FnOnce() -> T) -> T {
        // SAFETY: plain descriptor juggling on descriptors this test owns;
        // standard output is restored before returning.
        unsafe {
            let saved = libc::dup(1);
            assert!(saved >= 0);
            assert!(libc::dup2(fd, 1) >= 0);
            let out = f();
            assert!(libc::dup2(saved, 1) >= 0);
            libc::close(saved);
            out
        }
    }

    /// The child half of [`stdout_closed_pipe_and_full_disk`]: runs only in
    /// a child process (alone, so that no other test prints while standard
    /// output is redirected).
    #[cfg(target_os = "linux")]
    #[test]
    fn stdout_child() {
        if std::env::var_os("TCANET_CLI_STDOUT_CHILD").is_none() {
            return;
        }
        let big = vec![b'x'; 1 << 18];
        // A closed pipe: quiet, status 1.
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let fd = std::os::fd::AsRawFd::as_raw_fd(&writer);
        let e = with_stdout_on(fd, || write_stdout(|w| w.write_all(&big))).unwrap_err();
        drop(writer);
        assert!(e.is_quiet(), "{e}");
        assert_eq!(e.exit_status(), ExitStatus::Failure);
        // /dev/full: one line naming standard output, status 1.
        let full = fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap();
        let e = with_stdout_on(std::os::fd::AsRawFd::as_raw_fd(&full), || {
            write_stdout(|w| w.write_all(&big))
        })
        .unwrap_err();
        let msg = e.to_string();
        assert!(msg.starts_with("cannot write standard output: "), "{msg}");
        assert!(!msg.contains('\n') && !msg.contains("Os {"), "{msg}");
        assert_eq!(e.exit_status(), ExitStatus::Failure);
        eprintln!("stdout child: both cases checked");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn stdout_closed_pipe_and_full_disk() {
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "output::tests::stdout_child", "--nocapture"])
            .args(["--test-threads", "1"])
            .env("TCANET_CLI_STDOUT_CHILD", "1")
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{err}");
        assert!(err.contains("both cases checked"), "{err}");
    }

    /// `FileType::is_char_device` behind a name that also compiles where
    /// the extension trait is missing.
    trait CharDevice {
        fn is_char_device_like(&self) -> bool;
    }

    impl CharDevice for fs::FileType {
        fn is_char_device_like(&self) -> bool {
            #[cfg(unix)]
            {
                std::os::unix::fs::FileTypeExt::is_char_device(self)
            }
            #[cfg(not(unix))]
            {
                false
            }
        }
    }
}
