//! The ONNX protobuf messages: what the exporter writes and `inspect`
//! reads, and what the runtime's probes read (a model's metadata) and write
//! (the provider probe's one-node model). Hand-written as prost structs with the field numbers of `onnx.proto3`
//! (no protoc, no generated code). Only the fields TCANet's graph needs are
//! declared; unknown fields of other producers' files are skipped on decode.
#![allow(missing_docs)] // field names are the ONNX spec's; see onnx.proto3

/// `TensorProto.DataType` values used by the exporter.
pub mod data_type {
    /// 32-bit IEEE float.
    pub const FLOAT: i32 = 1;
    /// 8-bit signed integer.
    pub const INT8: i32 = 3;
    /// 32-bit signed integer.
    pub const INT32: i32 = 6;
    /// 64-bit signed integer.
    pub const INT64: i32 = 7;
    /// Boolean.
    pub const BOOL: i32 = 9;
    /// 16-bit IEEE float.
    pub const FLOAT16: i32 = 10;
    /// 64-bit IEEE float.
    pub const DOUBLE: i32 = 11;

    /// The spec's name of a data type, for `inspect`.
    pub fn name(t: i32) -> &'static str {
        match t {
            1 => "float32",
            2 => "uint8",
            3 => "int8",
            4 => "uint16",
            5 => "int16",
            6 => "int32",
            7 => "int64",
            8 => "string",
            9 => "bool",
            10 => "float16",
            11 => "float64",
            12 => "uint32",
            13 => "uint64",
            16 => "bfloat16",
            _ => "other",
        }
    }
}

/// `AttributeProto.AttributeType` values.
pub mod attribute_type {
    /// A single float.
    pub const FLOAT: i32 = 1;
    /// A single int64.
    pub const INT: i32 = 2;
    /// A byte string.
    pub const STRING: i32 = 3;
    /// A tensor.
    pub const TENSOR: i32 = 4;
    /// A list of floats.
    pub const FLOATS: i32 = 6;
    /// A list of int64.
    pub const INTS: i32 = 7;
}

/// `ModelProto`: the top-level file.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ModelProto {
    #[prost(int64, tag = "1")]
    pub ir_version: i64,
    #[prost(message, repeated, tag = "8")]
    pub opset_import: Vec<OperatorSetIdProto>,
    #[prost(string, tag = "2")]
    pub producer_name: String,
    #[prost(string, tag = "3")]
    pub producer_version: String,
    #[prost(string, tag = "4")]
    pub domain: String,
    #[prost(int64, tag = "5")]
    pub model_version: i64,
    #[prost(string, tag = "6")]
    pub doc_string: String,
    #[prost(message, optional, tag = "7")]
    pub graph: Option<GraphProto>,
    #[prost(message, repeated, tag = "14")]
    pub metadata_props: Vec<StringStringEntryProto>,
    /// Model-local functions, called by nodes of their domain and name.
    #[prost(message, repeated, tag = "25")]
    pub functions: Vec<FunctionProto>,
}

/// `FunctionProto`: a model-local function, a named subgraph of standard
/// operators that nodes call like an operator (IR ≥ 8; overloads IR ≥ 10).
#[derive(Clone, PartialEq, prost::Message)]
pub struct FunctionProto {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(string, repeated, tag = "4")]
    pub input: Vec<String>,
    #[prost(string, repeated, tag = "5")]
    pub output: Vec<String>,
    #[prost(message, repeated, tag = "7")]
    pub node: Vec<NodeProto>,
    #[prost(string, tag = "8")]
    pub doc_string: String,
    #[prost(message, repeated, tag = "9")]
    pub opset_import: Vec<OperatorSetIdProto>,
    #[prost(string, tag = "10")]
    pub domain: String,
    #[prost(string, tag = "13")]
    pub overload: String,
}

impl FunctionProto {
    /// Whether `node` calls this function: the same domain, name and
    /// overload.
    pub fn is_called_by(&self, node: &NodeProto) -> bool {
        node.domain == self.domain && node.op_type == self.name && node.overload == self.overload
    }
}

/// A `ModelProto` read for its metadata only: decoding skips the graph and
/// its weights without copying them, and [`ModelMetadataProto::read_from`]
/// without reading them.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ModelMetadataProto {
    #[prost(message, repeated, tag = "14")]
    pub metadata_props: Vec<StringStringEntryProto>,
}

/// Why a model's metadata could not be read.
#[derive(Debug, thiserror::Error)]
pub enum MetadataReadError {
    /// The file could not be read or seeked.
    #[error("cannot read: {0}")]
    Io(#[from] std::io::Error),
    /// The bytes are not a protobuf `ModelProto`.
    #[error("not an ONNX model: {0}")]
    Malformed(String),
}

/// `ModelProto.metadata_props`' field number.
const METADATA_PROPS: u64 = 14;

impl ModelMetadataProto {
    /// Reads the metadata of the `ModelProto` in `file`, seeking past every
    /// other top-level field (the graph and its weights are never read, so
    /// a model of any size costs a few small reads).
    pub fn read_from<R: std::io::Read + std::io::Seek>(
        mut file: R,
    ) -> Result<Self, MetadataReadError> {
        use prost::Message;
        let malformed = |what: &str| MetadataReadError::Malformed(what.to_string());
        let mut meta = Self::default();
        while let Some(key) = read_varint(&mut file, true)? {
            let (field, wire_type) = (key >> 3, key & 7);
            match wire_type {
                0 => {
                    read_varint(&mut file, false)?;
                }
                1 => skip(&mut file, 8)?,
                5 => skip(&mut file, 4)?,
                2 => {
                    let len =
                        read_varint(&mut file, false)?.ok_or_else(|| malformed("cut short"))?;
                    if field == METADATA_PROPS {
                        let len = usize::try_from(len).map_err(|_| malformed("entry too long"))?;
                        let mut bytes = vec![0u8; len.min(1 << 24)];
                        if bytes.len() != len {
                            return Err(malformed("metadata entry longer than 16 MiB"));
                        }
                        file.read_exact(&mut bytes).map_err(cut_short)?;
                        let entry = StringStringEntryProto::decode(bytes.as_slice())
                            .map_err(|e| MetadataReadError::Malformed(e.to_string()))?;
                        meta.metadata_props.push(entry);
                    } else {
                        skip(&mut file, len)?;
                    }
                }
                _ => {
                    return Err(malformed(&format!(
                        "field {field} has wire type {wire_type}"
                    )))
                }
            }
        }
        Ok(meta)
    }
}

/// An early end of file as a malformed model, other errors as they are.
fn cut_short(e: std::io::Error) -> MetadataReadError {
    if e.kind() == std::io::ErrorKind::UnexpectedEof {
        MetadataReadError::Malformed("cut short".into())
    } else {
        MetadataReadError::Io(e)
    }
}

/// A base-128 varint; `None` at a clean end of file where `at_key` (between
/// fields).
fn read_varint<R: std::io::Read>(
    file: &mut R,
    at_key: bool,
) -> Result<Option<u64>, MetadataReadError> {
    let mut value = 0u64;
    for i in 0..10 {
        let mut byte = [0u8];
        if file.read(&mut byte)? == 0 {
            return if i == 0 && at_key {
                Ok(None)
            } else {
                Err(MetadataReadError::Malformed("cut short".into()))
            };
        }
        value |= u64::from(byte[0] & 0x7f) << (7 * i);
        if byte[0] & 0x80 == 0 {
            return Ok(Some(value));
        }
    }
    Err(MetadataReadError::Malformed(
        "varint longer than 10 bytes".into(),
    ))
}

/// Seeks `len` bytes on, refusing to pass the end of the file.
fn skip<R: std::io::Seek>(file: &mut R, len: u64) -> Result<(), MetadataReadError> {
    let at = file.stream_position()?;
    let end = file.seek(std::io::SeekFrom::End(0))?;
    let to = at.checked_add(len).filter(|&to| to <= end);
    let to = to.ok_or_else(|| MetadataReadError::Malformed("cut short".into()))?;
    file.seek(std::io::SeekFrom::Start(to))?;
    Ok(())
}

/// `OperatorSetIdProto`: an operator set the model uses.
#[derive(Clone, PartialEq, prost::Message)]
pub struct OperatorSetIdProto {
    #[prost(string, tag = "1")]
    pub domain: String,
    #[prost(int64, tag = "2")]
    pub version: i64,
}

/// `StringStringEntryProto`: one metadata key/value pair.
#[derive(Clone, PartialEq, prost::Message)]
pub struct StringStringEntryProto {
    #[prost(string, tag = "1")]
    pub key: String,
    #[prost(string, tag = "2")]
    pub value: String,
}

/// `GraphProto`: nodes in topological order, initializers, inputs, outputs.
#[derive(Clone, PartialEq, prost::Message)]
pub struct GraphProto {
    #[prost(message, repeated, tag = "1")]
    pub node: Vec<NodeProto>,
    #[prost(string, tag = "2")]
    pub name: String,
    #[prost(message, repeated, tag = "5")]
    pub initializer: Vec<TensorProto>,
    #[prost(string, tag = "10")]
    pub doc_string: String,
    #[prost(message, repeated, tag = "11")]
    pub input: Vec<ValueInfoProto>,
    #[prost(message, repeated, tag = "12")]
    pub output: Vec<ValueInfoProto>,
    #[prost(message, repeated, tag = "13")]
    pub value_info: Vec<ValueInfoProto>,
}

/// `NodeProto`: one operator application.
#[derive(Clone, PartialEq, prost::Message)]
pub struct NodeProto {
    #[prost(string, repeated, tag = "1")]
    pub input: Vec<String>,
    #[prost(string, repeated, tag = "2")]
    pub output: Vec<String>,
    #[prost(string, tag = "3")]
    pub name: String,
    #[prost(string, tag = "4")]
    pub op_type: String,
    #[prost(string, tag = "7")]
    pub domain: String,
    /// Which of a function's overloads the node calls (IR ≥ 10).
    #[prost(string, tag = "8")]
    pub overload: String,
    #[prost(message, repeated, tag = "5")]
    pub attribute: Vec<AttributeProto>,
    #[prost(string, tag = "6")]
    pub doc_string: String,
}

/// `AttributeProto`: a named operator attribute.
#[derive(Clone, PartialEq, prost::Message)]
pub struct AttributeProto {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(int32, tag = "20")]
    pub r#type: i32,
    #[prost(float, tag = "2")]
    pub f: f32,
    #[prost(int64, tag = "3")]
    pub i: i64,
    #[prost(bytes = "vec", tag = "4")]
    pub s: Vec<u8>,
    #[prost(message, optional, tag = "5")]
    pub t: Option<TensorProto>,
    #[prost(float, repeated, tag = "7")]
    pub floats: Vec<f32>,
    #[prost(int64, repeated, tag = "8")]
    pub ints: Vec<i64>,
}

/// `TensorProto`: a constant tensor (initializer or attribute), little-endian
/// `raw_data`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TensorProto {
    #[prost(int64, repeated, tag = "1")]
    pub dims: Vec<i64>,
    #[prost(int32, tag = "2")]
    pub data_type: i32,
    #[prost(float, repeated, tag = "4")]
    pub float_data: Vec<f32>,
    #[prost(int32, repeated, tag = "5")]
    pub int32_data: Vec<i32>,
    #[prost(int64, repeated, tag = "7")]
    pub int64_data: Vec<i64>,
    #[prost(string, tag = "8")]
    pub name: String,
    #[prost(bytes = "vec", tag = "9")]
    pub raw_data: Vec<u8>,
    #[prost(double, repeated, tag = "10")]
    pub double_data: Vec<f64>,
    #[prost(string, tag = "12")]
    pub doc_string: String,
}

/// `ValueInfoProto`: a graph input, output or intermediate value's type.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ValueInfoProto {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(message, optional, tag = "2")]
    pub r#type: Option<TypeProto>,
    #[prost(string, tag = "3")]
    pub doc_string: String,
}

impl ValueInfoProto {
    /// A tensor value of element type `elem_type` (a [`data_type`]) and
    /// fixed shape `dims`.
    pub fn fixed_tensor(name: &str, elem_type: i32, dims: &[i64]) -> Self {
        let dim = dims
            .iter()
            .map(|&d| Dimension {
                value: Some(DimensionValue::DimValue(d)),
                ..Default::default()
            })
            .collect();
        Self {
            name: name.into(),
            r#type: Some(TypeProto {
                tensor_type: Some(TypeProtoTensor {
                    elem_type,
                    shape: Some(TensorShapeProto { dim }),
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }
}

/// `TypeProto`, restricted to its `tensor_type` case.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TypeProto {
    #[prost(message, optional, tag = "1")]
    pub tensor_type: Option<TypeProtoTensor>,
    #[prost(string, tag = "6")]
    pub denotation: String,
}

/// `TypeProto.Tensor`: element type and shape.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TypeProtoTensor {
    #[prost(int32, tag = "1")]
    pub elem_type: i32,
    #[prost(message, optional, tag = "2")]
    pub shape: Option<TensorShapeProto>,
}

/// `TensorShapeProto`: a list of dimensions.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TensorShapeProto {
    #[prost(message, repeated, tag = "1")]
    pub dim: Vec<Dimension>,
}

/// `TensorShapeProto.Dimension`: a fixed size or a symbolic name.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Dimension {
    #[prost(oneof = "DimensionValue", tags = "1, 2")]
    pub value: Option<DimensionValue>,
    #[prost(string, tag = "3")]
    pub denotation: String,
}

/// The `value` oneof of [`Dimension`].
#[derive(Clone, PartialEq, prost::Oneof)]
pub enum DimensionValue {
    /// A fixed size.
    #[prost(int64, tag = "1")]
    DimValue(i64),
    /// A symbolic size such as `B`.
    #[prost(string, tag = "2")]
    DimParam(String),
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;
    use std::io::{Cursor, Read, Seek, SeekFrom};

    /// A reader that counts the bytes it hands out.
    struct Counting<R> {
        inner: R,
        read: usize,
    }

    impl<R: Read> Read for Counting<R> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = self.inner.read(buf)?;
            self.read += n;
            Ok(n)
        }
    }

    impl<R: Seek> Seek for Counting<R> {
        fn seek(&mut self, pos: SeekFrom) -> std::io::Result<u64> {
            self.inner.seek(pos)
        }
    }

    fn entry(key: &str, value: &str) -> StringStringEntryProto {
        StringStringEntryProto {
            key: key.into(),
            value: value.into(),
        }
    }

    /// A model with 2 MB of weights before, and functions after, its two
    /// metadata entries.
    fn model_bytes() -> Vec<u8> {
        let weights = TensorProto {
            name: "w".into(),
            raw_data: vec![7; 2 << 20],
            ..Default::default()
        };
        let model = ModelProto {
            ir_version: 10,
            producer_name: "test".into(),
            model_version: -3,
            graph: Some(GraphProto {
                name: "g".into(),
                initializer: vec![weights],
                ..Default::default()
            }),
            metadata_props: vec![entry("tcanet.config", "{\"a\": 1}"), entry("k", "")],
            functions: vec![FunctionProto {
                name: "f".into(),
                ..Default::default()
            }],
            ..Default::default()
        };
        model.encode_to_vec()
    }

    #[test]
    fn metadata_is_read_without_reading_the_weights() {
        let bytes = model_bytes();
        let mut file = Counting {
            inner: Cursor::new(&bytes),
            read: 0,
        };
        let meta = ModelMetadataProto::read_from(&mut file).unwrap();
        assert_eq!(meta, ModelMetadataProto::decode(bytes.as_slice()).unwrap());
        assert_eq!(meta.metadata_props[0], entry("tcanet.config", "{\"a\": 1}"));
        assert_eq!(meta.metadata_props.len(), 2);
        assert!(
            file.read < 200,
            "read {} of {} bytes",
            file.read,
            bytes.len()
        );
    }

    #[test]
    fn cut_or_garbled_files_are_refused() {
        let bytes = model_bytes();
        let graph_cut = &bytes[..bytes.len() / 2];
        let tail_cut = &bytes[..bytes.len() - 1];
        let bad_wire_type = [0x0b, 0x00]; // field 1, wire type 3 (group)
        let long_varint = [
            0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        ];
        for bad in [graph_cut, tail_cut, &bad_wire_type, &long_varint] {
            let err = ModelMetadataProto::read_from(Cursor::new(bad)).unwrap_err();
            assert!(matches!(err, MetadataReadError::Malformed(_)), "{err}");
        }
        let empty = ModelMetadataProto::read_from(Cursor::new(&[][..])).unwrap();
        assert!(empty.metadata_props.is_empty());
    }
}
