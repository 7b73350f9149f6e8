//! safetensors files, read with the `safetensors` crate and written by a
//! writer of our own whose bytes depend only on the tensors and metadata
//! (keys sorted, tensors in the given order): the same checkpoint written
//! twice is the same file.
use std::collections::BTreeMap;
use std::path::Path;

use safetensors::tensor::{Dtype, SafeTensors};

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
    let mut out = Vec::with_capacity(8 + text.len() + offset);
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
    let (_, header) = SafeTensors::read_metadata(bytes).map_err(|e| format_err(describe(&e)))?;
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

/// A user-facing sentence for a safetensors parse error.
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
            "the data offsets of tensor `{name}` do not fit the file (truncated or corrupted)"
        ),
        E::InvalidTensorView(dtype, shape, len) => format!(
            "a tensor of type {} and shape {shape:?} cannot hold {len} bytes",
            dtype_name(*dtype)
        ),
        E::MetadataIncompleteBuffer => {
            "the data section is shorter than the header says (truncated?)".into()
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
}
