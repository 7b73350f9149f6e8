//! safetensors files, read with the `safetensors` crate and written by a
//! writer of our own whose bytes depend only on the tensors and metadata
//! (keys sorted, tensors in the given order): the same checkpoint written
//! twice is the same file.
use std::collections::BTreeMap;
use std::path::Path;

use safetensors::tensor::{Dtype, SafeTensors, TensorInfo};
use serde::Deserialize;
use serde_json::Value;

use super::CheckpointError;

/// A named f32 tensor in host memory.
#[derive(Debug, Clone, PartialEq)]
pub struct NamedTensor {
    /// Its name.
    pub name: String,
    /// Its shape.
    pub shape: Vec<usize>,
    /// Values, row-major.
    pub data: Vec<f32>,
}

/// A safetensors file read into host memory (every tensor as f32).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TensorFile {
    /// The `__metadata__` map.
    pub metadata: BTreeMap<String, String>,
    /// Tensors by name: shape and row-major values.
    pub tensors: BTreeMap<String, (Vec<usize>, Vec<f32>)>,
}

/// A tensor to write, borrowed: the writer copies its values once, into
/// the file's bytes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TensorView<'a> {
    /// Its name.
    pub name: &'a str,
    /// Its shape.
    pub shape: &'a [usize],
    /// Values, row-major.
    pub data: &'a [f32],
}

impl NamedTensor {
    /// The tensor, borrowed for writing.
    pub(crate) fn view(&self) -> TensorView<'_> {
        TensorView {
            name: &self.name,
            shape: &self.shape,
            data: &self.data,
        }
    }
}

/// The safetensors bytes of `tensors` (in this order) and `metadata`.
///
/// The header is JSON with sorted keys, padded with spaces to a multiple of
/// 8 bytes; each tensor's data follows the previous one.
pub fn tensor_file_bytes(
    tensors: &[NamedTensor],
    metadata: &BTreeMap<String, String>,
) -> Result<Vec<u8>, CheckpointError> {
    let views: Vec<TensorView<'_>> = tensors.iter().map(NamedTensor::view).collect();
    views_file_bytes(&views, metadata)
}

/// [`tensor_file_bytes`] of borrowed tensors.
pub(crate) fn views_file_bytes(
    tensors: &[TensorView<'_>],
    metadata: &BTreeMap<String, String>,
) -> Result<Vec<u8>, CheckpointError> {
    let mut header = serde_json::Map::new();
    if !metadata.is_empty() {
        header.insert("__metadata__".into(), serde_json::to_value(metadata)?);
    }
    let mut offset = 0usize;
    for t in tensors {
        let n: usize = t.shape.iter().product();
        if n != t.data.len() {
            return Err(CheckpointError::Write {
                reason: format!(
                    "tensor `{}` has shape {:?} but {} values",
                    t.name,
                    t.shape,
                    t.data.len()
                ),
            });
        }
        if t.name == "__metadata__" || header.contains_key(t.name) {
            return Err(CheckpointError::Write {
                reason: format!("tensor name `{}` is used twice or reserved", t.name),
            });
        }
        let end = offset + 4 * n;
        header.insert(
            t.name.to_string(),
            serde_json::json!({"dtype": "F32", "shape": t.shape, "data_offsets": [offset, end]}),
        );
        offset = end;
    }
    // serde_json's Map is a BTreeMap here (no `preserve_order`): sorted keys.
    let mut text = serde_json::to_vec(&header)?;
    while text.len() % 8 != 0 {
        text.push(b' ');
    }
    let size = 8 + text.len() + offset;
    let mut out = Vec::new();
    out.try_reserve_exact(size)
        .map_err(|_| CheckpointError::Write {
            reason: format!(
                "the file's {size} bytes could not be allocated (free some memory or raise the \
                 process's limit)"
            ),
        })?;
    out.extend_from_slice(&(text.len() as u64).to_le_bytes());
    out.extend_from_slice(&text);
    for t in tensors {
        for v in t.data {
            out.extend_from_slice(&v.to_le_bytes());
        }
    }
    Ok(out)
}

/// Writes `tensors` and `metadata` as one safetensors file, atomically.
pub fn write_tensor_file(
    path: &Path,
    tensors: &[NamedTensor],
    metadata: &BTreeMap<String, String>,
) -> Result<(), CheckpointError> {
    let bytes = tensor_file_bytes(tensors, metadata)?;
    tcanet_cli::write_atomic_bytes(path, &bytes).map_err(|cause| CheckpointError::Io {
        path: path.to_path_buf(),
        cause,
    })
}

/// Reads a safetensors file; f32, f16, bf16 and f64 tensors come back as f32.
pub fn read_tensor_file(path: &Path) -> Result<TensorFile, CheckpointError> {
    parse_tensor_file(path, &read_file_bytes(path)?)
}

/// A file's bytes; an error names the file.
pub(crate) fn read_file_bytes(path: &Path) -> Result<Vec<u8>, CheckpointError> {
    std::fs::read(path).map_err(|cause| CheckpointError::Io {
        path: path.to_path_buf(),
        cause,
    })
}

/// [`read_tensor_file`] on bytes in memory (`path` names them in errors).
pub fn parse_tensor_file(path: &Path, bytes: &[u8]) -> Result<TensorFile, CheckpointError> {
    let format_err = |reason: String| CheckpointError::Format {
        path: path.to_path_buf(),
        reason,
    };
    // Our own checks first: they name the tensor and field at fault, and they
    // keep offsets the crate would add up with wrapping arithmetic from
    // reaching it.
    check_header(bytes).map_err(format_err)?;
    let (_, header) = SafeTensors::read_metadata(bytes).map_err(|e| {
        format_err(match e {
            safetensors::SafeTensorError::InvalidHeaderDeserialization => {
                duplicate_field(bytes).unwrap_or_else(|| describe(&e))
            }
            e => describe(&e),
        })
    })?;
    let metadata = header
        .metadata()
        .clone()
        .unwrap_or_default()
        .into_iter()
        .collect();
    let st = SafeTensors::deserialize(bytes).map_err(|e| format_err(describe(&e)))?;
    let mut tensors = BTreeMap::new();
    for (name, view) in st.tensors() {
        let data = to_f32(view.dtype(), view.data()).ok_or_else(|| CheckpointError::Dtype {
            path: path.to_path_buf(),
            name: name.clone(),
            dtype: dtype_name(view.dtype()),
        })?;
        tensors.insert(name, (view.shape().to_vec(), data));
    }
    Ok(TensorFile { metadata, tensors })
}

/// The values of a float tensor's raw bytes as f32 (`None` for other types).
fn to_f32(dtype: Dtype, d: &[u8]) -> Option<Vec<f32>> {
    Some(match dtype {
        Dtype::F32 => d
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
        Dtype::F16 => d
            .chunks_exact(2)
            .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
        Dtype::BF16 => d
            .chunks_exact(2)
            .map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
        Dtype::F64 => d
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]) as f32)
            .collect(),
        _ => return None,
    })
}

/// The safetensors name of an element type (`I64`, `U8`, ...).
fn dtype_name(dtype: Dtype) -> String {
    let debug = format!("{dtype:?}");
    debug.to_ascii_uppercase()
}

/// The largest header the `safetensors` crate reads.
const MAX_HEADER_SIZE: usize = 100_000_000;

/// The header's JSON text and the data section, where the file has them;
/// `None` where the crate's own error already says what is wrong (too short,
/// header length out of range, not UTF-8, not starting with `{`).
fn header_and_data(bytes: &[u8]) -> Option<(&str, &[u8])> {
    let n = usize::try_from(u64::from_le_bytes(bytes.get(..8)?.try_into().ok()?)).ok()?;
    if n > MAX_HEADER_SIZE {
        return None;
    }
    let stop = n.checked_add(8)?;
    let text = std::str::from_utf8(bytes.get(8..stop)?).ok()?;
    text.starts_with('{').then(|| (text, &bytes[stop..]))
}

/// A tensor's entry in the header, as the crate reads it.
struct Entry<'a> {
    name: &'a str,
    info: TensorInfo,
}

impl Entry<'_> {
    fn start(&self) -> usize {
        self.info.data_offsets.0
    }
    fn end(&self) -> usize {
        self.info.data_offsets.1
    }
    /// `tensor `NAME` (data_offsets [S, E])`.
    fn at(&self) -> String {
        format!(
            "tensor `{}` (data_offsets [{}, {}])",
            self.name,
            self.start(),
            self.end()
        )
    }
}

/// Checks the header of a safetensors file the way the `safetensors` crate
/// does, with a message that names the tensor and field at fault. Rejects
/// no file the crate accepts, except ones whose offsets the crate adds up
/// with overflow (it would panic on them); files this cannot read as far
/// as the header pass, for the crate's own error to describe.
fn check_header(bytes: &[u8]) -> Result<(), String> {
    let Some((text, data)) = header_and_data(bytes) else {
        return Ok(());
    };
    let header: BTreeMap<String, Value> =
        serde_json::from_str(text).map_err(|e| format!("the header is not valid JSON: {e}"))?;
    let entries = header_entries(&header)?;
    check_extent(&entries, data.len())?;
    check_layout(&entries, data.len())
}

/// The header's tensors, each checked on its own (fields, size), sorted by
/// their offsets (the order the crate checks them in).
fn header_entries(header: &BTreeMap<String, Value>) -> Result<Vec<Entry<'_>>, String> {
    let mut entries = Vec::with_capacity(header.len());
    for (name, value) in header {
        if name == "__metadata__" {
            check_metadata(value)?;
        } else {
            let info = tensor_info(name, value).map_err(|reason| {
                format!("the header is not the JSON a safetensors file has: {reason}")
            })?;
            entries.push(Entry { name, info });
        }
    }
    entries.sort_by(|a, b| (a.info.data_offsets, a.name).cmp(&(b.info.data_offsets, b.name)));
    for t in &entries {
        check_size(t)?;
    }
    Ok(entries)
}

/// No tensor ends past the data section (`data_len` bytes): a file cut
/// short when the tensors follow each other, else the tensor at fault.
fn check_extent(entries: &[Entry<'_>], data_len: usize) -> Result<(), String> {
    let Some(t) = entries.iter().find(|t| t.end() > data_len) else {
        return Ok(());
    };
    let contiguous = entries
        .iter()
        .scan(0, |end, t| {
            let follows = t.start() == *end;
            *end = t.end();
            Some(follows)
        })
        .all(|f| f);
    Err(if contiguous {
        format!(
            "the data section is shorter than the header says (truncated?): it has {data_len} \
             bytes, {} ends at byte {}",
            t.at(),
            t.end()
        )
    } else {
        format!(
            "{} ends past the data section, which has {data_len} bytes",
            t.at()
        )
    })
}

/// The tensors (sorted by offsets) cover the data section exactly: no
/// gap, no overlap, no bytes after the last.
fn check_layout(entries: &[Entry<'_>], data_len: usize) -> Result<(), String> {
    let mut previous: Option<&Entry<'_>> = None;
    for t in entries {
        let end = previous.map_or(0, Entry::end);
        match (previous, t.start().cmp(&end)) {
            (_, std::cmp::Ordering::Equal) => {}
            (None, _) => {
                return Err(format!(
                    "bytes 0..{} of the data section belong to no tensor: the first, {}, \
                     does not start at 0",
                    t.start(),
                    t.at()
                ))
            }
            (Some(p), std::cmp::Ordering::Greater) => {
                return Err(format!(
                    "bytes {end}..{} of the data section belong to no tensor: {} ends at \
                     byte {end}, the next, {}, starts at byte {}",
                    t.start(),
                    p.at(),
                    t.at(),
                    t.start()
                ))
            }
            (Some(p), std::cmp::Ordering::Less) => {
                return Err(format!(
                    "the data of two tensors overlap: {} and {}{}",
                    p.at(),
                    t.at(),
                    first_uncovered(entries, data_len)
                ));
            }
        }
        previous = Some(t);
    }
    let end = previous.map_or(0, Entry::end);
    if end < data_len {
        let after = match previous {
            Some(p) => format!("after the last tensor, {}", p.at()),
            None => "and the header names no tensor".into(),
        };
        return Err(format!(
            "the data section is longer than the header says: it has {data_len} bytes, {} \
             of them {after}",
            data_len - end
        ));
    }
    Ok(())
}

/// Where a misplaced tensor's data may be, for an overlap's message: the
/// first bytes no tensor covers (" (and bytes A..B belong to no tensor)"),
/// or nothing.
fn first_uncovered(entries: &[Entry<'_>], data_len: usize) -> String {
    let mut covered = 0;
    let mut hole = None;
    for u in entries {
        if u.start() > covered {
            hole = Some((covered, u.start()));
            break;
        }
        covered = covered.max(u.end());
    }
    hole.or((covered < data_len).then_some((covered, data_len)))
        .map_or(String::new(), |(a, b)| {
            format!(" (and bytes {a}..{b} belong to no tensor)")
        })
}

/// Which field of which tensor the header gives twice (the one header
/// error [`check_header`] does not see: its JSON maps keep the last).
fn duplicate_field(bytes: &[u8]) -> Option<String> {
    /// A tensor's fields, only to find one given twice.
    #[derive(Deserialize)]
    #[allow(dead_code)]
    struct Fields {
        dtype: Option<serde::de::IgnoredAny>,
        shape: Option<serde::de::IgnoredAny>,
        data_offsets: Option<serde::de::IgnoredAny>,
    }
    let (text, _) = header_and_data(bytes)?;
    let header: BTreeMap<String, Box<serde_json::value::RawValue>> =
        serde_json::from_str(text).ok()?;
    let mut duplicate = header.iter().filter_map(|(name, raw)| {
        let e = serde_json::from_str::<Fields>(raw.get()).err()?;
        let e = e.to_string();
        let field = e.strip_prefix("duplicate field `")?.split('`').next()?;
        Some(format!(
            "the header is not the JSON a safetensors file has: tensor `{name}` has field \
             `{field}` twice"
        ))
    });
    /// The header's keys, only to find `__metadata__` given twice.
    #[derive(Deserialize)]
    #[allow(dead_code)]
    struct Top {
        #[serde(rename = "__metadata__")]
        metadata: Option<serde::de::IgnoredAny>,
        #[serde(flatten)]
        tensors: BTreeMap<String, serde::de::IgnoredAny>,
    }
    duplicate.next().or_else(|| {
        let e = serde_json::from_str::<Top>(text).err()?;
        e.to_string()
            .starts_with("duplicate field `__metadata__`")
            .then(|| {
                "the header is not the JSON a safetensors file has: `__metadata__` appears twice"
                    .to_string()
            })
    })
}

/// The `__metadata__` entry must be null or a map of strings.
fn check_metadata(value: &Value) -> Result<(), String> {
    let fail = |what: String| {
        format!("the header is not the JSON a safetensors file has: `__metadata__`{what}")
    };
    if let Value::Object(map) = value {
        for (key, v) in map {
            String::deserialize(v).map_err(|e| fail(format!(", entry `{key}`: {e}")))?;
        }
    }
    Option::<std::collections::HashMap<String, String>>::deserialize(value)
        .map_err(|e| fail(format!(": {e}")))?;
    Ok(())
}

/// A tensor's header entry, or why it is not one (naming the field).
fn tensor_info(name: &str, value: &Value) -> Result<TensorInfo, String> {
    let whole = match TensorInfo::deserialize(value) {
        Ok(info) => return Ok(info),
        Err(e) => e,
    };
    if let Value::Object(map) = value {
        for field in ["dtype", "shape", "data_offsets"] {
            let Some(v) = map.get(field) else {
                return Err(format!("tensor `{name}` has no field `{field}`"));
            };
            let e = match field {
                "dtype" => Dtype::deserialize(v).err(),
                "shape" => Vec::<usize>::deserialize(v).err(),
                _ => <(usize, usize)>::deserialize(v).err(),
            };
            if let Some(e) = e {
                // The value as written, cut short if long.
                let mut shown: String = v.to_string().chars().take(60).collect();
                if shown.len() < v.to_string().len() {
                    shown.push_str("...");
                }
                return Err(format!("tensor `{name}`, field `{field}` ({shown}): {e}"));
            }
        }
    }
    Err(format!("tensor `{name}`: {whole}"))
}

/// A tensor's offsets must span the bytes its dtype and shape need.
fn check_size(t: &Entry<'_>) -> Result<(), String> {
    let (dtype, shape) = (dtype_name(t.info.dtype), &t.info.shape);
    if t.end() < t.start() {
        return Err(format!(
            "{}: the data offsets end before they start",
            t.at()
        ));
    }
    let need = shape
        .iter()
        .try_fold(1usize, |n, &d| n.checked_mul(d))
        .and_then(|n| n.checked_mul(t.info.dtype.size()));
    let Some(need) = need else {
        return Err(format!(
            "tensor sizes in the header overflow: tensor `{}` has dtype {dtype} and shape \
             {shape:?}, more bytes than a 64-bit count holds",
            t.name
        ));
    };
    let span = t.end() - t.start();
    if span != need {
        return Err(format!(
            "a tensor's type, shape and offsets disagree: tensor `{}` has dtype {dtype} and \
             shape {shape:?}, which need {need} bytes, but its data_offsets [{}, {}] span \
             {span} bytes",
            t.name,
            t.start(),
            t.end()
        ));
    }
    Ok(())
}

/// A user-facing sentence for a safetensors parse error (the errors
/// [`check_header`] has not already reported with more detail).
fn describe(e: &safetensors::SafeTensorError) -> String {
    use safetensors::SafeTensorError as E;
    match e {
        E::HeaderTooLarge => {
            "the header length is larger than allowed (not a safetensors file?)".into()
        }
        E::HeaderTooSmall => "the file is shorter than a safetensors header (truncated?)".into(),
        E::InvalidHeaderLength => "the header length exceeds the file (truncated?)".into(),
        E::InvalidHeader => "the header is not valid UTF-8".into(),
        E::InvalidHeaderDeserialization => {
            "the header is not the JSON a safetensors file has".into()
        }
        E::TensorNotFound(name) => format!("tensor `{name}` not found"),
        E::InvalidOffset(name) => format!(
            "the tensors' data offsets do not follow one another (the sequence breaks at \
             tensor `{name}`)"
        ),
        E::InvalidTensorView(dtype, shape, len) => format!(
            "a tensor of type {} and shape {shape:?} cannot hold {len} bytes",
            dtype_name(*dtype)
        ),
        E::MetadataIncompleteBuffer => {
            "the data section's length is not the one the header's offsets say".into()
        }
        E::ValidationOverflow => "tensor sizes in the header overflow".into(),
        E::InvalidHeaderStart => {
            "the header does not start with `{` (not a safetensors file?)".into()
        }
        E::TensorInvalidInfo => "a tensor's type, shape and offsets disagree".into(),
        E::IoError(e) => e.to_string(),
        E::JsonError(e) => format!("the header is not valid JSON: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> (Vec<NamedTensor>, BTreeMap<String, String>) {
        let t = |name: &str, shape: Vec<usize>| NamedTensor {
            data: (0..shape.iter().product::<usize>())
                .map(|i| i as f32 * 0.5)
                .collect(),
            name: name.into(),
            shape,
        };
        let meta = [("z", "last"), ("a", "first"), ("m", "{\"json\": 1}")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        (
            vec![t("w", vec![2, 3]), t("b", vec![3]), t("s", vec![])],
            meta,
        )
    }

    #[test]
    fn written_bytes_are_deterministic_and_read_back() {
        let (tensors, meta) = sample();
        let a = tensor_file_bytes(&tensors, &meta).unwrap();
        let mut reversed = tensors.clone();
        reversed.reverse();
        let b = tensor_file_bytes(&tensors, &meta.clone().into_iter().rev().collect()).unwrap();
        assert_eq!(a, b, "metadata order does not change the bytes");
        let header_len = u64::from_le_bytes(a[..8].try_into().unwrap()) as usize;
        assert_eq!(header_len % 8, 0);
        let back = parse_tensor_file(Path::new("x.safetensors"), &a).unwrap();
        assert_eq!(back.metadata, meta);
        for t in &tensors {
            assert_eq!(back.tensors[&t.name], (t.shape.clone(), t.data.clone()));
        }
        assert_ne!(tensor_file_bytes(&reversed, &meta).unwrap(), a);
    }

    #[test]
    fn bad_inputs_are_errors_not_panics() {
        let (mut tensors, meta) = sample();
        tensors[0].data.pop();
        assert!(tensor_file_bytes(&tensors, &meta).is_err());
        let (tensors, meta) = sample();
        let good = tensor_file_bytes(&tensors, &meta).unwrap();
        for cut in [0, 3, 8, 20, good.len() - 1] {
            let e = parse_tensor_file(Path::new("cut.safetensors"), &good[..cut]).unwrap_err();
            let msg = e.to_string();
            assert!(msg.contains("cut.safetensors"), "{msg}");
            assert!(!msg.contains("Some(") && !msg.contains("{ "), "{msg}");
        }
    }

    /// The sample file with its header edited by `edit` and its data
    /// section by `data`.
    fn edited(edit: impl FnOnce(&mut Value), data: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
        let (tensors, meta) = sample();
        let good = tensor_file_bytes(&tensors, &meta).unwrap();
        let n = u64::from_le_bytes(good[..8].try_into().unwrap()) as usize;
        let mut header: Value = serde_json::from_slice(&good[8..8 + n]).unwrap();
        edit(&mut header);
        let mut body = good[8 + n..].to_vec();
        data(&mut body);
        let text = serde_json::to_vec(&header).unwrap();
        let mut out = (text.len() as u64).to_le_bytes().to_vec();
        out.extend_from_slice(&text);
        out.extend_from_slice(&body);
        out
    }

    /// The edited sample's header edited: `header[name][field] = value`.
    fn with(name: &str, field: &str, value: Value) -> Vec<u8> {
        edited(|h| h[name][field] = value, |_| {})
    }

    /// The message reading `bytes` fails with, checked to name the file and
    /// to contain each of `parts`.
    fn message(bytes: &[u8], parts: &[&str]) -> String {
        let e = parse_tensor_file(Path::new("bad.safetensors"), bytes).unwrap_err();
        assert!(matches!(e, CheckpointError::Format { .. }), "{e:?}");
        let msg = e.to_string();
        assert!(msg.starts_with("bad.safetensors: "), "{msg}");
        for part in parts {
            assert!(msg.contains(part), "`{part}` not in: {msg}");
        }
        msg
    }

    // The sample's layout: `w` F32 [2, 3] at [0, 24], `b` F32 [3] at
    // [24, 36], `s` F32 [] at [36, 40].

    #[test]
    fn type_shape_and_offsets_that_disagree_name_the_tensor() {
        message(
            &with("w", "shape", serde_json::json!([2, 4])),
            &[
                "disagree",
                "tensor `w`",
                "dtype F32",
                "shape [2, 4]",
                "need 32 bytes",
                "data_offsets [0, 24] span 24 bytes",
            ],
        );
        message(
            &with("b", "dtype", "F64".into()),
            &[
                "tensor `b`",
                "dtype F64",
                "shape [3]",
                "need 24 bytes",
                "[24, 36] span 12",
            ],
        );
        message(
            &with("b", "data_offsets", serde_json::json!([36, 24])),
            &["tensor `b`", "[36, 24]", "end before they start"],
        );
        message(
            &with("b", "shape", serde_json::json!([1u64 << 40, 1u64 << 40])),
            &[
                "overflow",
                "tensor `b`",
                "shape [1099511627776, 1099511627776]",
            ],
        );
    }

    #[test]
    fn header_fields_of_the_wrong_kind_name_the_tensor_and_field() {
        let not_json = "the header is not the JSON a safetensors file has";
        message(
            &with("b", "dtype", "Q7".into()),
            &[
                not_json,
                "tensor `b`",
                "field `dtype`",
                "unknown variant `Q7`, expected one of",
            ],
        );
        message(
            &with("w", "shape", serde_json::json!([2, -3])),
            &[
                not_json,
                "tensor `w`",
                "field `shape`",
                "[2,-3]",
                "integer `-3`",
            ],
        );
        message(
            &edited(|h| h["s"].as_object_mut().unwrap().clear(), |_| {}),
            &[not_json, "tensor `s` has no field `dtype`"],
        );
        message(
            &edited(
                |h| {
                    h["s"].as_object_mut().unwrap().remove("data_offsets");
                },
                |_| {},
            ),
            &[not_json, "tensor `s` has no field `data_offsets`"],
        );
        message(
            &with("s", "data_offsets", serde_json::json!([36])),
            &[not_json, "tensor `s`", "field `data_offsets`", "[36]"],
        );
        message(
            &with("s", "data_offsets", serde_json::json!([36, 1e30])),
            &[
                not_json,
                "tensor `s`",
                "field `data_offsets`",
                "floating point",
            ],
        );
        message(
            &edited(|h| h["b"] = 3.into(), |_| {}),
            &[not_json, "tensor `b`", "invalid type: integer `3`"],
        );
        message(
            &edited(|h| h["__metadata__"]["a"] = 1.into(), |_| {}),
            &[not_json, "`__metadata__`, entry `a`", "expected a string"],
        );
    }

    #[test]
    fn a_field_given_twice_is_named() {
        let good = edited(|_| {}, |_| {});
        let n = u64::from_le_bytes(good[..8].try_into().unwrap()) as usize;
        let text = std::str::from_utf8(&good[8..8 + n]).unwrap();
        let twice = |from: &str, to: &str| {
            let text = text.replacen(from, to, 1);
            let mut out = (text.len() as u64).to_le_bytes().to_vec();
            out.extend_from_slice(text.as_bytes());
            out.extend_from_slice(&good[8 + n..]);
            out
        };
        let not_json = "the header is not the JSON a safetensors file has";
        message(
            &twice("\"s\":{", "\"s\":{\"shape\":[],"),
            &[not_json, "tensor `s` has field `shape` twice"],
        );
        message(
            &twice("{", "{\"__metadata__\":{},"),
            &[not_json, "`__metadata__` appears twice"],
        );
    }

    #[test]
    fn a_data_section_too_long_or_too_short_says_which() {
        let msg = message(
            &edited(|_| {}, |d| d.extend_from_slice(&[0; 5])),
            &[
                "longer than the header says",
                "45 bytes, 5 of them after the last tensor",
                "tensor `s` (data_offsets [36, 40])",
            ],
        );
        assert!(!msg.contains("shorter"), "{msg}");
        let msg = message(
            &edited(|_| {}, |d| d.truncate(38)),
            &[
                "shorter than the header says (truncated?)",
                "38 bytes",
                "tensor `s` (data_offsets [36, 40]) ends at byte 40",
            ],
        );
        assert!(!msg.contains("longer"), "{msg}");
        message(
            &edited(|h| *h = serde_json::json!({}), |_| {}),
            &["longer", "40 bytes, 40 of them", "names no tensor"],
        );
    }

    #[test]
    fn wrong_offsets_name_the_tensor_they_belong_to() {
        // `b` moved past the end: the crate named `s`, where its sequence breaks.
        let msg = message(
            &with("b", "data_offsets", serde_json::json!([40, 52])),
            &[
                "tensor `b` (data_offsets [40, 52]) ends past the data section",
                "40 bytes",
            ],
        );
        assert!(!msg.contains("`s`") && !msg.contains("truncated"), "{msg}");
        let huge = u64::MAX;
        message(
            &with("b", "data_offsets", serde_json::json!([huge - 12, huge])),
            &[
                "tensor `b`",
                &format!("[{}, {huge}]", huge - 12),
                "ends past",
            ],
        );
        message(
            &with("s", "data_offsets", serde_json::json!([20, 24])),
            &[
                "overlap",
                "tensor `w` (data_offsets [0, 24])",
                "tensor `s` (data_offsets [20, 24])",
            ],
        );
        message(
            &with("s", "data_offsets", serde_json::json!([0, 4])),
            &[
                "overlap",
                "tensor `s` (data_offsets [0, 4]) and tensor `w` (data_offsets [0, 24])",
                "(and bytes 36..40 belong to no tensor)",
            ],
        );
        message(
            &with("w", "data_offsets", serde_json::json!([4, 28])),
            &[
                "bytes 0..4 of the data section belong to no tensor",
                "the first, tensor `w` (data_offsets [4, 28]), does not start at 0",
            ],
        );
        message(
            &edited(
                |h| h["s"]["data_offsets"] = serde_json::json!([40, 44]),
                |d| d.extend_from_slice(&[0; 4]),
            ),
            &[
                "bytes 36..40 of the data section belong to no tensor",
                "tensor `b` (data_offsets [24, 36]) ends at byte 36",
                "the next, tensor `s` (data_offsets [40, 44]), starts at byte 40",
            ],
        );
    }

    #[test]
    fn the_checks_accept_what_the_crate_accepts() {
        let files = [
            edited(|_| {}, |_| {}),
            // Data in another order than the names.
            edited(
                |h| {
                    h["s"]["data_offsets"] = serde_json::json!([0, 4]);
                    h["w"]["data_offsets"] = serde_json::json!([4, 28]);
                    h["b"]["data_offsets"] = serde_json::json!([28, 40]);
                },
                |_| {},
            ),
            edited(|h| h["s"]["extra"] = "field".into(), |_| {}),
            edited(|h| h["__metadata__"] = Value::Null, |_| {}),
            edited(
                |h| h["s"] = serde_json::json!(["F32", [], [36, 40]]),
                |_| {},
            ),
            edited(
                |h| {
                    h["z"] =
                        serde_json::json!({"dtype": "F32", "shape": [0], "data_offsets": [40, 40]})
                },
                |_| {},
            ),
            edited(|h| h["w"]["shape"] = serde_json::json!([6]), |_| {}),
            edited(|h| h["w"]["dtype"] = "F16".into(), |_| {}),
            with("w", "shape", serde_json::json!([2, 4])),
            with("w", "data_offsets", serde_json::json!([0, 24, 1])),
            edited(|_| {}, |d| d.push(0)),
            edited(|h| *h = serde_json::json!({}), |d| d.clear()),
        ];
        for (i, bytes) in files.iter().enumerate() {
            let ours = parse_tensor_file(Path::new("x.safetensors"), bytes);
            let crate_ok = SafeTensors::deserialize(bytes).is_ok();
            assert_eq!(ours.is_ok(), crate_ok, "file {i}: {ours:?}");
        }
    }

    #[test]
    fn offsets_near_the_integer_limit_are_errors_not_panics() {
        // Offsets the crate would add up with wrapping arithmetic.
        let (tensors, meta) = sample();
        let n = tensor_file_bytes(&tensors, &meta).unwrap().len();
        for big in [u64::MAX, u64::MAX - 7, u64::MAX - n as u64 + 40, 1 << 63] {
            let bytes = edited(
                |h| {
                    *h = serde_json::json!({
                        "t": {"dtype": "U8", "shape": [big], "data_offsets": [0, big]}
                    })
                },
                |_| {},
            );
            message(&bytes, &["tensor `t`", &format!("[0, {big}]")]);
        }
    }
}
