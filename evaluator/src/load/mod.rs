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

/// The warning for a top-level `key` given again at `key_at` of `bytes`:
/// the last one is used, as Python's `json` does.
fn repeated_top_level_key(bytes: &[u8], file: &str, key: &str, key_at: usize) -> String {
    let (line, _) = line_column(bytes, key_at);
    format!(
        "{file}:{line}: \"{key}\" appears twice at the top level; the last one is used, \
         as Python's json does"
    )
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

/// Where JSON text first fails to parse, as an [`Error::Syntax`] whose
/// message starts with the path to the value at fault
/// (`database["v"].annotations[0].agreement: expected a JSON value, found
/// NaN, ...`); `None` when the crate's parser finds no fault. For readers
/// built on `serde_json`, whose errors have a position but no path.
pub(crate) fn locate_syntax_error(bytes: &[u8], file: &str) -> Option<Error> {
    let mut p = Parser::new(bytes, 0);
    let mut path = Vec::new();
    let result = skip_traced(&mut p, &mut path).and_then(|()| p.end());
    result.err().map(|e| syntax(bytes, file, e))
}

/// Skips one value as [`Parser::skip_value`] does, prefixing an error with
/// the path to where it happened; `path` holds the steps down to the value
/// (top-level keys bare, the keys below them `["id"]`, deeper keys
/// `.field`, array items `[i]`).
fn skip_traced(p: &mut Parser, path: &mut Vec<String>) -> JResult<()> {
    let at = |path: &[String]| {
        let path = path.concat();
        move |e: JsonError| {
            if path.is_empty() {
                e
            } else {
                within(|| path)(e)
            }
        }
    };
    if path.len() > crate::json::MAX_DEPTH {
        return Err(at(path)(p.error("nested too deeply")));
    }
    let mut first = true;
    match p.peek() {
        Some(b'{') => {
            p.pos += 1;
            while let Some(key) = p.next_key(&mut first).map_err(at(path))? {
                path.push(match path.len() {
                    0 => key.into_owned(),
                    1 => format!("[\"{key}\"]"),
                    _ => format!(".{key}"),
                });
                skip_traced(p, path)?;
                path.pop();
            }
            Ok(())
        }
        Some(b'[') => {
            p.pos += 1;
            let mut i = 0usize;
            while p.next_element(&mut first).map_err(at(path))? {
                path.push(format!("[{i}]"));
                skip_traced(p, path)?;
                path.pop();
                i += 1;
            }
            Ok(())
        }
        _ => p.skip_value().map_err(at(path)),
    }
}
