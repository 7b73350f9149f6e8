//! The command-line convention of tcanet's binaries, in one place.
//!
//! - [`ExitStatus`]: 0 success, 2 usage error or invalid input, 1 any other
//!   failure, 3 finished but some videos failed (`--keep-going`).
//! - [`Output`]: `-` for standard output, otherwise a path written
//!   atomically ([`write_atomic`]: a temporary sibling, fsync, rename), or in
//!   place when it is an existing device, FIFO or socket (`/dev/null`, a
//!   pipe); [`refuse_output_onto_inputs`], [`refuse_duplicate_outputs`] and
//!   [`Output::check_writable`] run before long work.
//! - [`OutputSet`]: several outputs of one command made visible together
//!   (temporaries first, then renames in a fixed order). A terminating
//!   signal (Ctrl-C) removes the temporaries being written.
//! - [`write_stdout`]: results to standard output, where a closed pipe ends
//!   quietly ([`OutputError::BrokenPipe`]) and a full disk is a one-line
//!   error, never a panic (unlike `println!`).
//! - [`Input`]: `-` for standard input where a file is read.
//! - [`CommonFlags`] (`--quiet`, for `#[command(flatten)]`) and [`Log`]:
//!   progress and warnings on standard error, coloured only on a terminal
//!   and when `NO_COLOR` is unset.
//! - [`Usage`], [`one_line`], [`exit_status_of`], [`report_error`]: a
//!   binary's own usage errors, the one-line message of an error chain, the
//!   exit status read from the first cause whose type says it, and both
//!   together at the end of a run.
//! - [`parse_args`] for a `--version` that says more, and
//!   [`parse_with_version`] for a command line defined in a library: the
//!   version text itself, with the git commit, is the binary's
//!   (`tcanet_version::long_version!()`), so a commit recompiles only the
//!   binaries.
//! - [`non_finite_literal`], [`found_non_finite`]: what the JSON readers
//!   say about `NaN` and the infinities, which Python writes and JSON lacks.
//! - [`range`]: clap value parsers for numeric flags with a documented range
//!   (finite, bounds named in the message).

#![warn(missing_docs)]

mod error;
mod exit;
mod flags;
mod input;
mod json;
mod output;
pub mod range;
mod staged;
mod temporary;
#[cfg(test)]
mod test_dir;
mod version;

pub use error::{exit_status_of, one_line, report_error, Usage};
pub use exit::ExitStatus;
pub use flags::{
    assert_command_line_well_formed, color_allowed, duplicate_flags, CommonFlags, Log,
};
pub use input::{
    read_opened, read_stream, refuse_stdin_twice, Input, StdinTwice, MAX_STREAM_BYTES,
};
pub use json::{found_non_finite, non_finite_literal};
pub use output::{
    refuse_duplicate_outputs, refuse_output_onto_inputs, same_file, temp_sibling, write_atomic,
    write_atomic_bytes, write_stdout, Output, OutputError,
};
pub use staged::{OutputSet, FAULT_ABORT_AFTER_RENAMES};
pub use version::{parse_args, parse_with_version};
