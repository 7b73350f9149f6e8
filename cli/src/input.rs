//! Where inputs come from: a file, or `-` for standard input.

use std::ffi::OsStr;
use std::fmt;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

/// An input: `-` is standard input, anything else a path.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Input {
    /// Standard input (read once, to its end).
    Stdin,
    /// A file.
    Path(PathBuf),
}

impl Input {
    /// `-` → [`Input::Stdin`], else the path.
    pub fn parse(text: &OsStr) -> Input {
        if text == "-" {
            Input::Stdin
        } else {
            Input::Path(PathBuf::from(text))
        }
    }

    /// Whether this is standard input.
    pub fn is_stdin(&self) -> bool {
        matches!(self, Input::Stdin)
    }

    /// The path, unless standard input.
    pub fn path(&self) -> Option<&Path> {
        match self {
            Input::Stdin => None,
            Input::Path(p) => Some(p),
        }
    }

    /// The name used in messages: the path as given, or `<stdin>`.
    pub fn name(&self) -> String {
        self.to_string()
    }

    /// Reads the whole input into memory; a stream (standard input, a
    /// pipe, a device) at most [`MAX_STREAM_BYTES`] ([`read_stream`]).
    pub fn read_all(&self) -> io::Result<Vec<u8>> {
        match self {
            Input::Stdin => read_stream(io::stdin().lock()),
            Input::Path(p) => read_opened(std::fs::File::open(p)?),
        }
    }

    /// Opens the input for streaming.
    pub fn open(&self) -> io::Result<Box<dyn Read>> {
        match self {
            Input::Stdin => Ok(Box::new(io::stdin())),
            Input::Path(p) => Ok(Box::new(std::fs::File::open(p)?)),
        }
    }
}

/// The most bytes read from a stream whose length is not known in advance
/// (standard input, a pipe, a device): 2 GiB, far more than any results or
/// annotations file, so that a stream without an end (`/dev/zero`) is an
/// error instead of filling the memory.
pub const MAX_STREAM_BYTES: u64 = 2 << 30;

/// Reads `reader` to its end, or fails with [`io::ErrorKind::InvalidData`]
/// after [`MAX_STREAM_BYTES`].
pub fn read_stream(reader: impl Read) -> io::Result<Vec<u8>> {
    read_bounded(reader, MAX_STREAM_BYTES)
}

/// Reads an opened `file` to its end: a regular file whole (its size known
/// in advance), anything else (a pipe, a device) as a [`read_stream`].
pub fn read_opened(mut file: std::fs::File) -> io::Result<Vec<u8>> {
    let meta = file.metadata()?;
    if !meta.is_file() {
        return read_stream(file);
    }
    let mut buf = Vec::new();
    buf.try_reserve_exact(usize::try_from(meta.len()).unwrap_or(usize::MAX))
        .map_err(|_| io::Error::from(io::ErrorKind::OutOfMemory))?;
    file.read_to_end(&mut buf)?;
    Ok(buf)
}

/// [`read_stream`] with a bound of `limit` bytes.
fn read_bounded(reader: impl Read, limit: u64) -> io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    reader.take(limit + 1).read_to_end(&mut buf)?;
    if buf.len() as u64 > limit {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "more than {} bytes without an end: not a file of annotations or results (a \
                 device such as /dev/zero?)",
                limit
            ),
        ));
    }
    Ok(buf)
}

impl From<&OsStr> for Input {
    fn from(text: &OsStr) -> Self {
        Input::parse(text)
    }
}

impl std::str::FromStr for Input {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Input::parse(OsStr::new(s)))
    }
}

impl fmt::Display for Input {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Input::Stdin => f.write_str("<stdin>"),
            Input::Path(p) => write!(f, "{}", p.display()),
        }
    }
}

/// Standard input given for more than one input of a command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{} all read standard input ('-'); it can be read only once, so give at most one of them as '-'",
    names.join(" and ")
)]
pub struct StdinTwice {
    /// The argument names given as `-`, in order.
    pub names: Vec<String>,
}

/// Refuses standard input given for more than one input of a command
/// (`(argument name, input)` pairs): it can be read only once.
pub fn refuse_stdin_twice(inputs: &[(&str, &Input)]) -> Result<(), StdinTwice> {
    let names: Vec<String> = inputs
        .iter()
        .filter(|(_, i)| i.is_stdin())
        .map(|(n, _)| n.to_string())
        .collect();
    if names.len() > 1 {
        return Err(StdinTwice { names });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_read_within_a_bound() {
        assert_eq!(read_bounded(&b"abc"[..], 3).unwrap(), b"abc");
        let e = read_bounded(io::repeat(0), 1000).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        assert!(
            e.to_string()
                .contains("more than 1000 bytes without an end"),
            "{e}"
        );
        #[cfg(unix)]
        assert!(Input::parse(OsStr::new("/dev/null"))
            .read_all()
            .unwrap()
            .is_empty());
    }

    #[test]
    fn dash_is_stdin() {
        assert_eq!(Input::parse(OsStr::new("-")), Input::Stdin);
        assert_eq!(Input::Stdin.name(), "<stdin>");
        let p = Input::parse(OsStr::new("gt.json"));
        assert_eq!(p.path(), Some(Path::new("gt.json")));
        assert_eq!(p.name(), "gt.json");
    }

    #[test]
    fn files_are_read_whole_and_missing_ones_fail() {
        let path = std::env::temp_dir().join(format!("tcanet-cli-input-{}", std::process::id()));
        std::fs::write(&path, b"{\"a\": 1}").unwrap();
        let input = Input::Path(path.clone());
        assert_eq!(input.read_all().unwrap(), b"{\"a\": 1}");
        let mut s = String::new();
        input.open().unwrap().read_to_string(&mut s).unwrap();
        assert_eq!(s, "{\"a\": 1}");
        std::fs::remove_file(&path).unwrap();
        assert_eq!(
            input.read_all().unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
    }

    #[cfg(unix)]
    #[test]
    fn stdin_is_read_to_its_end() {
        // Standard input pointed at a file for the duration of the read.
        let path = std::env::temp_dir().join(format!("tcanet-cli-stdin-{}", std::process::id()));
        std::fs::write(&path, b"from stdin").unwrap();
        let file = std::fs::File::open(&path).unwrap();
        // SAFETY: descriptor juggling on descriptors this test owns;
        // standard input is restored before returning.
        let got = unsafe {
            let saved = libc::dup(0);
            libc::dup2(std::os::fd::AsRawFd::as_raw_fd(&file), 0);
            let got = Input::Stdin.read_all();
            libc::dup2(saved, 0);
            libc::close(saved);
            got
        };
        std::fs::remove_file(&path).unwrap();
        assert_eq!(got.unwrap(), b"from stdin");
    }

    #[test]
    fn stdin_only_once() {
        let a = Input::Stdin;
        let b = Input::Path("x".into());
        refuse_stdin_twice(&[("GT", &a), ("PRED", &b)]).unwrap();
        let e = refuse_stdin_twice(&[("GT", &a), ("PRED", &a)]).unwrap_err();
        assert!(e.to_string().contains("GT and PRED"), "{e}");
    }
}
