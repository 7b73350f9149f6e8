//! Reading ground-truth and submission files into the crate's types.
//!
//! Submissions are pre-scanned once (bracket matching) to cut `results`
//! into per-video byte ranges, which are then parsed on all cores.

mod gt;
mod results;

pub(crate) use gt::ground_truth;
pub(crate) use results::{detections, proposals};

use crate::json::{line_column, JResult, JsonError, Parser};
use crate::Error;

/// A JSON error at a byte offset of `bytes`, as an [`Error::Syntax`] with
/// its line and column.
fn syntax(bytes: &[u8], file: &str, e: JsonError) -> Error {
    let (line, column) = line_column(bytes, e.offset);
    Error::Syntax {
        file: file.to_string(),
        line,
        column,
        message: e.message,
    }
}

/// Prefixes an error's message with where it is (`results["v"][3].score`).
fn within(path: impl FnOnce() -> String) -> impl FnOnce(JsonError) -> JsonError {
    move |e| JsonError {
        offset: e.offset,
        message: format!("{}: {}", path(), e.message),
    }
}

/// Reads `[start, end]`: two finite numbers.
fn segment(p: &mut Parser, path: &dyn Fn() -> String) -> JResult<[f64; 2]> {
    let start_at = p.pos;
    p.begin_array("an array [start, end]")
        .map_err(within(|| format!("{}.segment", path())))?;
    let mut first = true;
    let mut out = [0.0; 2];
    for (i, slot) in out.iter_mut().enumerate() {
        if !p.next_element(&mut first)? {
            return Err(p.error_at(
                start_at,
                format!(
                    "{}.segment has {i} number(s); it must be two finite numbers [start, end]",
                    path()
                ),
            ));
        }
        let at = p.pos;
        let v = p
            .number("a number")
            .map_err(within(|| format!("{}.segment[{i}]", path())))?;
        if !v.is_finite() {
            return Err(p.error_at(
                at,
                format!("{}.segment[{i}] is not a finite number", path()),
            ));
        }
        *slot = v;
    }
    if p.next_element(&mut first)? {
        return Err(p.error_at(
            start_at,
            format!(
                "{}.segment has more than two values; it must be two finite numbers [start, end]",
                path()
            ),
        ));
    }
    Ok(out)
}
