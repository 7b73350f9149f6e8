//! Tensors read from a PyTorch file: an element type, a shape and strides
//! into a shared storage, gathered into row-major values on demand.
use std::fmt;
use std::sync::Arc;

/// Element type of a storage (from its `torch.*Storage` class).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DType {
    /// float64 (`DoubleStorage`).
    F64,
    /// float32 (`FloatStorage`).
    F32,
    /// float16 (`HalfStorage`).
    F16,
    /// bfloat16 (`BFloat16Storage`).
    BF16,
    /// int64 (`LongStorage`).
    I64,
    /// int32 (`IntStorage`).
    I32,
    /// int16 (`ShortStorage`).
    I16,
    /// int8 (`CharStorage`).
    I8,
    /// uint8 (`ByteStorage`, `UntypedStorage`).
    U8,
    /// bool (`BoolStorage`).
    Bool,
}

impl DType {
    /// The type of the storage class `torch.<name>`, if this reader knows it.
    pub fn from_storage_class(name: &str) -> Option<Self> {
        Some(match name {
            "DoubleStorage" => Self::F64,
            "FloatStorage" => Self::F32,
            "HalfStorage" => Self::F16,
            "BFloat16Storage" => Self::BF16,
            "LongStorage" => Self::I64,
            "IntStorage" => Self::I32,
            "ShortStorage" => Self::I16,
            "CharStorage" => Self::I8,
            "ByteStorage" | "UntypedStorage" => Self::U8,
            "BoolStorage" => Self::Bool,
            _ => return None,
        })
    }

    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            Self::F64 | Self::I64 => 8,
            Self::F32 | Self::I32 => 4,
            Self::F16 | Self::BF16 | Self::I16 => 2,
            Self::I8 | Self::U8 | Self::Bool => 1,
        }
    }

    /// Whether it is a floating-point type.
    pub fn is_float(self) -> bool {
        matches!(self, Self::F64 | Self::F32 | Self::F16 | Self::BF16)
    }

    /// Decodes one little-endian element as f32 (`b` has [`DType::size`] bytes).
    fn decode(self, b: &[u8]) -> f32 {
        let a = |n: usize| -> [u8; 8] {
            let mut x = [0u8; 8];
            x[..n].copy_from_slice(&b[..n]);
            x
        };
        match self {
            Self::F64 => f64::from_le_bytes(a(8)) as f32,
            Self::F32 => f32::from_le_bytes([b[0], b[1], b[2], b[3]]),
            Self::F16 => half::f16::from_le_bytes([b[0], b[1]]).to_f32(),
            Self::BF16 => half::bf16::from_le_bytes([b[0], b[1]]).to_f32(),
            Self::I64 => i64::from_le_bytes(a(8)) as f32,
            Self::I32 => i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f32,
            Self::I16 => i16::from_le_bytes([b[0], b[1]]) as f32,
            Self::I8 => b[0] as i8 as f32,
            Self::U8 => b[0] as f32,
            Self::Bool => (b[0] != 0) as u8 as f32,
        }
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            Self::F64 => "float64",
            Self::F32 => "float32",
            Self::F16 => "float16",
            Self::BF16 => "bfloat16",
            Self::I64 => "int64",
            Self::I32 => "int32",
            Self::I16 => "int16",
            Self::I8 => "int8",
            Self::U8 => "uint8",
            Self::Bool => "bool",
        };
        f.write_str(s)
    }
}

/// One storage of the file: its key, element type and bytes (little-endian).
#[derive(Debug, Clone, PartialEq)]
pub struct Storage {
    /// The key it is stored under (`data/<key>` in the zip format).
    pub key: String,
    /// Element type.
    pub dtype: DType,
    /// Raw little-endian elements.
    pub bytes: Vec<u8>,
}

impl Storage {
    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.bytes.len() / self.dtype.size()
    }
}

/// A tensor: a strided view of (part of) a storage, checked to lie inside it.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    pub(crate) storage: Arc<Storage>,
    /// First element (in elements of the storage).
    pub(crate) offset: usize,
    pub(crate) shape: Vec<usize>,
    pub(crate) stride: Vec<usize>,
}

/// Largest number of elements a tensor may have beyond its storage's size
/// (tensors with zero strides repeat elements).
const MAX_EXPANDED: usize = 1 << 24;

impl Tensor {
    /// Builds a tensor after checking that every element it addresses lies in
    /// `storage[base .. base + len]`.
    pub(crate) fn new(
        storage: Arc<Storage>,
        base: usize,
        len: usize,
        offset: usize,
        shape: Vec<usize>,
        stride: Vec<usize>,
    ) -> Result<Self, String> {
        if shape.len() != stride.len() {
            return Err(format!(
                "size {shape:?} and stride {stride:?} differ in length"
            ));
        }
        let avail = storage.numel();
        if base.checked_add(len).is_none_or(|end| end > avail) {
            return Err(format!(
                "storage view {base}..+{len} lies outside storage '{}' of {avail} elements",
                storage.key
            ));
        }
        let numel = shape
            .iter()
            .try_fold(1usize, |a, &d| a.checked_mul(d))
            .ok_or("element count overflows")?;
        if numel > len.max(MAX_EXPANDED) {
            return Err(format!(
                "{numel} elements from a storage of {len}: too large"
            ));
        }
        if numel > 0 {
            let last = shape.iter().zip(&stride).try_fold(offset, |a, (&d, &s)| {
                (d - 1).checked_mul(s).and_then(|x| a.checked_add(x))
            });
            if last.is_none_or(|l| l >= len) {
                return Err(format!(
                    "offset {offset}, size {shape:?}, stride {stride:?} reach past the {len} elements of storage '{}'",
                    storage.key
                ));
            }
        }
        Ok(Self {
            storage,
            offset: base + offset,
            shape,
            stride,
        })
    }

    /// Element type.
    pub fn dtype(&self) -> DType {
        self.storage.dtype
    }

    /// Shape.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }

    /// The key of the storage it views.
    pub fn storage_key(&self) -> &str {
        &self.storage.key
    }

    /// The values in row-major order as f32 (any element type; integers and
    /// booleans become their numeric value), gathering non-contiguous strides.
    pub fn to_f32(&self) -> Vec<f32> {
        let dt = self.storage.dtype;
        let size = dt.size();
        let bytes = &self.storage.bytes;
        let at = |i: usize| dt.decode(&bytes[i * size..(i + 1) * size]);
        let n = self.numel();
        let mut out = Vec::with_capacity(n);
        if n == 0 {
            return out;
        }
        if self.is_contiguous() {
            out.extend((self.offset..self.offset + n).map(at));
            return out;
        }
        // Odometer over the index, tracking the storage position.
        let rank = self.shape.len();
        let mut idx = vec![0usize; rank];
        let mut pos = self.offset;
        for _ in 0..n {
            out.push(at(pos));
            for d in (0..rank).rev() {
                // Wrapping: a size-1 dimension may carry any stride; the net
                // step is exact.
                idx[d] += 1;
                pos = pos.wrapping_add(self.stride[d]);
                if idx[d] < self.shape[d] {
                    break;
                }
                pos = pos.wrapping_sub(self.stride[d].wrapping_mul(self.shape[d]));
                idx[d] = 0;
            }
        }
        out
    }

    /// Whether the strides are the row-major ones (size-1 dimensions ignored).
    pub fn is_contiguous(&self) -> bool {
        let mut expected = 1usize;
        for (&d, &s) in self.shape.iter().zip(&self.stride).rev() {
            if d != 1 && s != expected {
                return false;
            }
            expected = expected.saturating_mul(d);
        }
        true
    }
}
