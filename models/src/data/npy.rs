//! A minimal reader and writer of NumPy `.npy` files holding one 2-D array
//! of f32, f16 or f64 (little-endian, C or Fortran order).
use super::{DataError, ErrorKind};
use std::path::Path;

/// Element type of a `.npy` array.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NpyDtype {
    /// `<f2`
    F16,
    /// `<f4`
    F32,
    /// `<f8`
    F64,
}

/// A 2-D array read from a `.npy` file, converted to f32, in C (row-major)
/// order: `data[r * shape[1] + c]`.
#[derive(Debug, Clone, PartialEq)]
pub struct NpyArray {
    /// `[rows, cols]` as the file declares it.
    pub shape: [usize; 2],
    /// The element type stored in the file.
    pub dtype: NpyDtype,
    /// Values, row-major.
    pub data: Vec<f32>,
}

/// The parsed header: dtype, Fortran order, shape, offset of the data.
struct Header {
    dtype: NpyDtype,
    fortran: bool,
    shape: Vec<usize>,
    data_offset: usize,
}

fn npy_err(path: &Path, msg: impl Into<String>) -> DataError {
    DataError::new(path, ErrorKind::Npy(msg.into()))
}

fn parse_header(bytes: &[u8], path: &Path) -> Result<Header, DataError> {
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        return Err(npy_err(path, "missing the \\x93NUMPY magic"));
    }
    let major = bytes[6];
    let (len, start) = match major {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 => {
            if bytes.len() < 12 {
                return Err(npy_err(path, "truncated header"));
            }
            (
                u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
                12,
            )
        }
        v => return Err(npy_err(path, format!("unsupported format version {v}"))),
    };
    let end = start + len;
    if bytes.len() < end {
        return Err(npy_err(path, "truncated header"));
    }
    let text =
        std::str::from_utf8(&bytes[start..end]).map_err(|_| npy_err(path, "header is not text"))?;
    let value_of = |key: &str| -> Option<&str> {
        let i = text.find(&format!("'{key}'"))?;
        let rest = &text[i + key.len() + 2..];
        let rest = rest.trim_start().strip_prefix(':')?.trim_start();
        Some(rest)
    };
    let descr = value_of("descr").ok_or_else(|| npy_err(path, "header has no 'descr'"))?;
    let descr = descr
        .strip_prefix('\'')
        .and_then(|d| d.split('\'').next())
        .ok_or_else(|| npy_err(path, "unreadable 'descr'"))?;
    let dtype = match descr {
        "<f4" => NpyDtype::F32,
        "<f2" => NpyDtype::F16,
        "<f8" => NpyDtype::F64,
        other => {
            return Err(npy_err(
                path,
                format!("dtype '{other}' is not supported: store features as float32 or float16 (little-endian)"),
            ))
        }
    };
    let fortran = value_of("fortran_order")
        .ok_or_else(|| npy_err(path, "header has no 'fortran_order'"))?
        .starts_with("True");
    let shape_text = value_of("shape").ok_or_else(|| npy_err(path, "header has no 'shape'"))?;
    let inner = shape_text
        .strip_prefix('(')
        .and_then(|s| s.split(')').next())
        .ok_or_else(|| npy_err(path, "unreadable 'shape'"))?;
    let shape = inner
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<usize>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| npy_err(path, format!("unreadable shape ({inner})")))?;
    Ok(Header {
        dtype,
        fortran,
        shape,
        data_offset: end,
    })
}

/// Reads only the shape of a 2-D `.npy` file (cheap: the header alone).
pub fn read_npy_shape(path: &Path) -> Result<[usize; 2], DataError> {
    use std::io::Read;
    let mut f = std::fs::File::open(path).map_err(|e| DataError::io(path, e))?;
    let mut buf = vec![0u8; 4096];
    let mut n = 0;
    while n < buf.len() {
        let k = f.read(&mut buf[n..]).map_err(|e| DataError::io(path, e))?;
        if k == 0 {
            break;
        }
        n += k;
    }
    let h = parse_header(&buf[..n], path)?;
    two_d(&h.shape, path)
}

fn two_d(shape: &[usize], path: &Path) -> Result<[usize; 2], DataError> {
    match shape {
        [a, b] => Ok([*a, *b]),
        other => Err(npy_err(
            path,
            format!("expected a 2-D array ([T, C] or [C, T]), found shape {other:?}"),
        )),
    }
}

/// Reads a 2-D f32/f16/f64 `.npy` file as f32, row-major.
pub fn read_npy(path: &Path) -> Result<NpyArray, DataError> {
    let bytes = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
    let h = parse_header(&bytes, path)?;
    let shape = two_d(&h.shape, path)?;
    let width = match h.dtype {
        NpyDtype::F16 => 2,
        NpyDtype::F32 => 4,
        NpyDtype::F64 => 8,
    };
    // Checked: a huge declared shape must not wrap around to the body's size.
    let needed = shape[0]
        .checked_mul(shape[1])
        .and_then(|count| count.checked_mul(width));
    let body = &bytes[h.data_offset..];
    if needed != Some(body.len()) {
        return Err(npy_err(
            path,
            format!(
                "data holds {} bytes but shape [{}, {}] needs {}",
                body.len(),
                shape[0],
                shape[1],
                needed.map_or("at least 2^64".to_string(), |n| n.to_string())
            ),
        ));
    }
    let count = shape[0] * shape[1];
    let mut data: Vec<f32> = match h.dtype {
        NpyDtype::F32 => body
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
        NpyDtype::F16 => body
            .chunks_exact(2)
            .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
        NpyDtype::F64 => body
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")) as f32)
            .collect(),
    };
    if h.fortran {
        // Column-major storage: element (r, c) sits at c * rows + r.
        let (rows, cols) = (shape[0], shape[1]);
        let mut out = vec![0f32; count];
        for c in 0..cols {
            for r in 0..rows {
                out[r * cols + c] = data[c * rows + r];
            }
        }
        data = out;
    }
    Ok(NpyArray {
        shape,
        dtype: h.dtype,
        data,
    })
}

fn header_bytes(descr: &str, shape: [usize; 2]) -> Vec<u8> {
    let dict = format!(
        "{{'descr': '{descr}', 'fortran_order': False, 'shape': ({}, {}), }}",
        shape[0], shape[1]
    );
    // Magic (6) + version (2) + length (2) + dict + padding + '\n' ≡ 0 mod 64.
    let unpadded = 10 + dict.len() + 1;
    let pad = (64 - unpadded % 64) % 64;
    let mut header = dict.into_bytes();
    header.extend(std::iter::repeat_n(b' ', pad));
    header.push(b'\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend((header.len() as u16).to_le_bytes());
    out.extend(header);
    out
}

/// The bytes of a row-major 2-D f32 `.npy` file.
pub fn npy_bytes_f32(shape: [usize; 2], data: &[f32]) -> Vec<u8> {
    assert_eq!(shape[0] * shape[1], data.len(), "shape matches data");
    let mut out = header_bytes("<f4", shape);
    out.reserve(data.len() * 4);
    for v in data {
        out.extend(v.to_le_bytes());
    }
    out
}

/// The bytes of a row-major 2-D f16 `.npy` file (values rounded to f16).
pub fn npy_bytes_f16(shape: [usize; 2], data: &[f32]) -> Vec<u8> {
    assert_eq!(shape[0] * shape[1], data.len(), "shape matches data");
    let mut out = header_bytes("<f2", shape);
    for v in data {
        out.extend(half::f16::from_f32(*v).to_le_bytes());
    }
    out
}

/// Writes a row-major 2-D f32 array as `.npy`, atomically.
pub fn write_npy_f32(path: &Path, shape: [usize; 2], data: &[f32]) -> Result<(), DataError> {
    let bytes = npy_bytes_f32(shape, data);
    tcanet_cli::write_atomic_bytes(path, &bytes).map_err(|e| DataError::io(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("tcanet-npy-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d.join(name)
    }

    #[test]
    fn f32_and_f16_round_trip() {
        let data: Vec<f32> = (0..12).map(|i| i as f32 * 0.25 - 1.0).collect();
        let p = tmp("a.npy");
        write_npy_f32(&p, [3, 4], &data).unwrap();
        let a = read_npy(&p).unwrap();
        assert_eq!(a.shape, [3, 4]);
        assert_eq!(a.dtype, NpyDtype::F32);
        assert_eq!(a.data, data);
        assert_eq!(read_npy_shape(&p).unwrap(), [3, 4]);
        let p16 = tmp("b.npy");
        std::fs::write(&p16, npy_bytes_f16([4, 3], &data)).unwrap();
        let b = read_npy(&p16).unwrap();
        assert_eq!(b.dtype, NpyDtype::F16);
        assert_eq!(b.shape, [4, 3]);
        assert_eq!(b.data, data, "quarter steps are exact in f16");
    }

    #[test]
    fn fortran_order_is_transposed_back() {
        // shape (2, 3), column-major storage of [[1,2,3],[4,5,6]].
        let dict = "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }";
        let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
        let mut h = dict.as_bytes().to_vec();
        h.push(b'\n');
        bytes.extend((h.len() as u16).to_le_bytes());
        bytes.extend(h);
        for v in [1f32, 4., 2., 5., 3., 6.] {
            bytes.extend(v.to_le_bytes());
        }
        let p = tmp("f.npy");
        std::fs::write(&p, bytes).unwrap();
        assert_eq!(read_npy(&p).unwrap().data, vec![1., 2., 3., 4., 5., 6.]);
    }

    #[test]
    fn bad_files_are_named() {
        let p = tmp("bad.npy");
        std::fs::write(&p, b"not numpy").unwrap();
        let e = read_npy(&p).unwrap_err().to_string();
        assert!(e.contains("bad.npy") && e.contains("magic"), "{e}");
        let mut bytes = npy_bytes_f32([2, 2], &[1., 2., 3., 4.]);
        bytes.truncate(bytes.len() - 4);
        std::fs::write(&p, bytes).unwrap();
        let e = read_npy(&p).unwrap_err().to_string();
        assert!(e.contains("needs 16"), "{e}");
    }
}
