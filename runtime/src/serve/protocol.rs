//! The KServe v2 inference protocol over HTTP/REST, as Triton speaks it:
//! the JSON request and response, and the binary tensor data extension
//! (`Inference-Header-Content-Length`: a JSON header followed by the raw
//! little-endian tensors of the inputs with `binary_data_size`, and of the
//! outputs asked for with `binary_data`).
use std::fmt;

use axum::http::StatusCode;
use serde_json::value::RawValue;
use serde_json::{json, Map, Value};

use super::json_data::{json_values, parse_request_json, InputJson, RequestJson};

/// The header giving the length of the JSON part of a binary request or response.
pub const HEADER_LENGTH: &str = "inference-header-content-length";

/// An error answered as `{"error": message}` with an HTTP status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// The message (names the model and the input where one is concerned).
    pub message: String,
}

impl ApiError {
    /// A 400 Bad Request.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    /// A 500 Internal Server Error.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, message)
    }

    /// An error with `status`.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    /// The JSON body, `{"error": "..."}`.
    pub fn body(&self) -> String {
        json!({ "error": self.message }).to_string()
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.status.as_u16(), self.message)
    }
}

/// Tensor element types of the protocol that the served models use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataType {
    /// 32-bit float.
    Fp32,
    /// 64-bit float.
    Fp64,
    /// 32-bit signed integer.
    Int32,
}

impl DataType {
    /// The protocol's name (`FP32`, ...).
    pub fn name(self) -> &'static str {
        match self {
            DataType::Fp32 => "FP32",
            DataType::Fp64 => "FP64",
            DataType::Int32 => "INT32",
        }
    }

    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            DataType::Fp32 | DataType::Int32 => 4,
            DataType::Fp64 => 8,
        }
    }

    /// Triton's config name (`TYPE_FP32`, ...).
    pub fn config_name(self) -> &'static str {
        match self {
            DataType::Fp32 => "TYPE_FP32",
            DataType::Fp64 => "TYPE_FP64",
            DataType::Int32 => "TYPE_INT32",
        }
    }
}

/// Where an input tensor's values are.
#[derive(Debug, Clone)]
pub enum TensorData {
    /// In the JSON `data` field (flat or nested lists), as text.
    Json(Box<RawValue>),
    /// In the binary part of the body: this byte range of the body.
    Binary(std::ops::Range<usize>),
}

/// One input tensor of a request, not yet decoded.
#[derive(Debug, Clone)]
pub struct InputTensor {
    /// Its name.
    pub name: String,
    /// The datatype the client declared.
    pub datatype: String,
    /// The shape the client declared.
    pub shape: Vec<i64>,
    /// The values.
    pub data: TensorData,
}

/// An output the client asked for.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestedOutput {
    /// Its name.
    pub name: String,
    /// `parameters.binary_data`, when given.
    pub binary: Option<bool>,
}

/// A parsed inference request.
#[derive(Debug, Clone)]
pub struct InferRequest {
    /// The client's request id (echoed in the response).
    pub id: Option<String>,
    /// The inputs, in the request's order.
    pub inputs: Vec<InputTensor>,
    /// The outputs asked for (`None`: all).
    pub outputs: Option<Vec<RequestedOutput>>,
    /// `parameters.binary_data_output`: outputs binary unless they say otherwise.
    pub binary_output: bool,
}

/// Replaces the JSON tokens `NaN`, `Infinity` and `-Infinity` outside
/// strings by `null` (Python's `json` writes them), so that a tensor
/// holding them is reported by name instead of as unparsable JSON.
fn null_out_non_finite(text: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    let (mut i, mut in_string) = (0, false);
    while i < text.len() {
        let c = text[i];
        if in_string {
            out.push(c);
            if c == b'\\' && i + 1 < text.len() {
                out.push(text[i + 1]);
                i += 1;
            } else if c == b'"' {
                in_string = false;
            }
            i += 1;
            continue;
        }
        let token = [&b"-Infinity"[..], b"Infinity", b"NaN"]
            .into_iter()
            .find(|t| text[i..].starts_with(t));
        match token {
            Some(t) => {
                out.extend_from_slice(b"null");
                i += t.len();
            }
            None => {
                in_string = c == b'"';
                out.push(c);
                i += 1;
            }
        }
    }
    out
}

/// Parses a request body: all JSON, or (`header_length` given) a JSON
/// header of that many bytes followed by the binary tensors.
pub fn parse_request(body: &[u8], header_length: Option<usize>) -> Result<InferRequest, ApiError> {
    let json_len = header_length.unwrap_or(body.len());
    if json_len > body.len() {
        return Err(ApiError::bad_request(format!(
            "{HEADER_LENGTH} is {json_len} but the body has only {} bytes",
            body.len()
        )));
    }
    let text = &body[..json_len];
    let parsed = match parse_request_json(text) {
        Ok(v) => v,
        Err(first) => parse_request_json(&null_out_non_finite(text)).map_err(|_| {
            ApiError::bad_request(format!("the request is not valid JSON: {first}"))
        })?,
    };
    let Some(RequestJson {
        fields: header,
        inputs,
    }) = parsed
    else {
        return Err(ApiError::bad_request("the request must be a JSON object"));
    };
    let id = match header.get("id") {
        None => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err(ApiError::bad_request("'id' must be a string")),
    };
    let params = object_field(&header, "parameters", "the request")?;
    let binary_output = match params.and_then(|p| p.get("binary_data_output")) {
        None => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            return Err(ApiError::bad_request(
                "parameter 'binary_data_output' must be a boolean",
            ))
        }
    };
    let Some(Some(inputs)) = inputs else {
        return Err(ApiError::bad_request("the request has no 'inputs' list"));
    };
    let mut offset = json_len;
    let mut parsed = Vec::with_capacity(inputs.len());
    for (i, input) in inputs.into_iter().enumerate() {
        parsed.push(parse_input(input, i, body.len(), &mut offset)?);
    }
    if offset != body.len() {
        return Err(ApiError::bad_request(format!(
            "the body has {} bytes after the JSON header, but the inputs' binary_data_size add up to {}",
            body.len() - json_len,
            offset - json_len
        )));
    }
    let outputs = match header.get("outputs") {
        None => None,
        Some(Value::Array(list)) => Some(
            list.iter()
                .map(parse_requested_output)
                .collect::<Result<Vec<_>, _>>()?,
        ),
        Some(_) => return Err(ApiError::bad_request("'outputs' must be a list")),
    };
    Ok(InferRequest {
        id,
        inputs: parsed,
        outputs,
        binary_output,
    })
}

fn object_field<'a>(
    obj: &'a Map<String, Value>,
    key: &str,
    what: &str,
) -> Result<Option<&'a Map<String, Value>>, ApiError> {
    match obj.get(key) {
        None => Ok(None),
        Some(Value::Object(m)) => Ok(Some(m)),
        Some(_) => Err(ApiError::bad_request(format!(
            "'{key}' of {what} must be an object"
        ))),
    }
}

/// The parameters of the shared memory extension, on inputs and outputs.
const SHARED_MEMORY_PARAMETERS: [&str; 3] = [
    "shared_memory_region",
    "shared_memory_byte_size",
    "shared_memory_offset",
];

/// A 400 naming the tensor (`what`) when its `params` ask for shared
/// memory, which this server does not support.
fn refuse_shared_memory(params: Option<&Map<String, Value>>, what: &str) -> Result<(), ApiError> {
    let asked = params.is_some_and(|p| SHARED_MEMORY_PARAMETERS.iter().any(|k| p.contains_key(*k)));
    if asked {
        return Err(ApiError::bad_request(format!(
            "{what}: shared memory is not supported by this server; tensors travel in the request and response bodies"
        )));
    }
    Ok(())
}

fn parse_input(
    input: InputJson,
    index: usize,
    body_len: usize,
    offset: &mut usize,
) -> Result<InputTensor, ApiError> {
    let Some((obj, json_data)) = input else {
        return Err(ApiError::bad_request(format!(
            "inputs[{index}] must be an object"
        )));
    };
    let Some(Value::String(name)) = obj.get("name") else {
        return Err(ApiError::bad_request(format!(
            "inputs[{index}] has no 'name'"
        )));
    };
    let what = format!("input '{name}'");
    let Some(Value::String(datatype)) = obj.get("datatype") else {
        return Err(ApiError::bad_request(format!("{what} has no 'datatype'")));
    };
    let shape = match obj.get("shape") {
        Some(Value::Array(dims)) => dims
            .iter()
            .map(|d| d.as_i64())
            .collect::<Option<Vec<i64>>>()
            .ok_or_else(|| {
                ApiError::bad_request(format!("{what}: 'shape' must be a list of integers"))
            })?,
        _ => return Err(ApiError::bad_request(format!("{what} has no 'shape' list"))),
    };
    let params = object_field(&obj, "parameters", &what)?;
    refuse_shared_memory(params, &what)?;
    let binary_size = params.and_then(|p| p.get("binary_data_size"));
    let data = match (binary_size, json_data) {
        (Some(size), None) => {
            let size = size.as_u64().ok_or_else(|| {
                ApiError::bad_request(format!(
                    "{what}: 'binary_data_size' must be a non-negative integer"
                ))
            })? as usize;
            let end = offset
                .checked_add(size)
                .filter(|&e| e <= body_len)
                .ok_or_else(|| {
                    ApiError::bad_request(format!(
                        "{what}: binary_data_size {size} runs past the end of the body"
                    ))
                })?;
            let range = *offset..end;
            *offset = end;
            TensorData::Binary(range)
        }
        (None, Some(values)) => TensorData::Json(values),
        (Some(_), Some(_)) => {
            return Err(ApiError::bad_request(format!(
                "{what} has both 'data' and 'binary_data_size'"
            )))
        }
        (None, None) => {
            return Err(ApiError::bad_request(format!(
                "{what} has no 'data' and no 'binary_data_size'"
            )))
        }
    };
    Ok(InputTensor {
        name: name.clone(),
        datatype: datatype.clone(),
        shape,
        data,
    })
}

fn parse_requested_output(v: &Value) -> Result<RequestedOutput, ApiError> {
    let Value::Object(obj) = v else {
        return Err(ApiError::bad_request(
            "every entry of 'outputs' must be an object",
        ));
    };
    let Some(Value::String(name)) = obj.get("name") else {
        return Err(ApiError::bad_request("an entry of 'outputs' has no 'name'"));
    };
    let what = format!("output '{name}'");
    let params = object_field(obj, "parameters", &what)?;
    refuse_shared_memory(params, &what)?;
    if params.is_some_and(|p| p.contains_key("classification")) {
        return Err(ApiError::bad_request(format!(
            "{what}: the classification extension is not supported"
        )));
    }
    let binary = match params.and_then(|p| p.get("binary_data")) {
        None => None,
        Some(Value::Bool(b)) => Some(*b),
        Some(_) => {
            return Err(ApiError::bad_request(format!(
                "{what}: 'binary_data' must be a boolean"
            )))
        }
    };
    Ok(RequestedOutput {
        name: name.clone(),
        binary,
    })
}

/// An element type that input tensors decode to, without widening: FP32
/// inputs to `f32`, FP64 inputs to `f64`.
pub trait Element: Copy + fmt::Display {
    /// The protocol datatype it holds.
    const DATATYPE: DataType;
    /// The value of its little-endian bytes (`DATATYPE.size()` of them).
    fn from_le(bytes: &[u8]) -> Self;
    /// A JSON number (NaN for `null`) in this type: rounded to nearest for
    /// FP32, so a number beyond its range becomes an infinity.
    fn from_json(x: f64) -> Self;
    /// False for NaN and the infinities.
    fn is_finite(self) -> bool;
}

impl Element for f32 {
    const DATATYPE: DataType = DataType::Fp32;
    fn from_le(b: &[u8]) -> Self {
        f32::from_le_bytes([b[0], b[1], b[2], b[3]])
    }
    fn from_json(x: f64) -> Self {
        x as f32
    }
    fn is_finite(self) -> bool {
        f32::is_finite(self)
    }
}

impl Element for f64 {
    const DATATYPE: DataType = DataType::Fp64;
    fn from_le(b: &[u8]) -> Self {
        f64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
    }
    fn from_json(x: f64) -> Self {
        x
    }
    fn is_finite(self) -> bool {
        f64::is_finite(self)
    }
}

/// The values of an input of checked `shape` (batch dimension first), one
/// row per batch item, decoded straight into `E` (the input's datatype):
/// binary data is read once from the body, JSON data is moved when the
/// batch holds one item. The value count must match the shape (JSON data
/// flat, or nested exactly as the shape) and every value must be finite.
pub fn decode_rows<E: Element>(
    tensor: &InputTensor,
    shape: &[usize],
    body: &[u8],
    what: &str,
) -> Result<Vec<Vec<E>>, ApiError> {
    let datatype = E::DATATYPE;
    let rows = shape.first().copied().unwrap_or(1);
    let per_row: usize = shape.iter().skip(1).product();
    let count = rows * per_row;
    let values = match &tensor.data {
        TensorData::Binary(range) => {
            let bytes = &body[range.clone()];
            if bytes.len() != count * datatype.size() {
                return Err(ApiError::bad_request(format!(
                    "{what}: binary_data_size is {} bytes, but shape {:?} of {} needs {}",
                    bytes.len(),
                    tensor.shape,
                    datatype.name(),
                    count * datatype.size()
                )));
            }
            let row_bytes = per_row * datatype.size();
            (0..rows)
                .map(|r| {
                    bytes[r * row_bytes..(r + 1) * row_bytes]
                        .chunks_exact(datatype.size())
                        .map(E::from_le)
                        .collect()
                })
                .collect()
        }
        TensorData::Json(v) => {
            let out = json_values(v, shape, what)?;
            if rows == 1 {
                vec![out]
            } else {
                let row = |r: usize| out[r * per_row..(r + 1) * per_row].to_vec();
                (0..rows).map(row).collect()
            }
        }
    };
    let bad = values
        .iter()
        .flatten()
        .enumerate()
        .find(|(_, x)| !x.is_finite());
    if let Some((i, x)) = bad {
        let value = match &tensor.data {
            TensorData::Binary(_) => format!("value {x}"),
            // NaN, Infinity and null are all null by now.
            TensorData::Json(_) => "the value (NaN, an infinity or null)".to_string(),
        };
        return Err(ApiError::bad_request(format!(
            "{what}: {value} at flat index {i} is not finite"
        )));
    }
    Ok(values)
}

/// An output tensor of a response.
#[derive(Debug, Clone, PartialEq)]
pub struct OutputTensor {
    /// Its name.
    pub name: &'static str,
    /// Its shape.
    pub shape: Vec<usize>,
    /// Its values.
    pub values: OutputValues,
}

/// The values of an output tensor.
#[derive(Debug, Clone, PartialEq)]
pub enum OutputValues {
    /// FP32.
    F32(Vec<f32>),
    /// FP64.
    F64(Vec<f64>),
    /// INT32.
    I32(Vec<i32>),
}

impl OutputValues {
    fn datatype(&self) -> DataType {
        match self {
            OutputValues::F32(_) => DataType::Fp32,
            OutputValues::F64(_) => DataType::Fp64,
            OutputValues::I32(_) => DataType::Int32,
        }
    }

    /// Bytes of its binary form.
    fn byte_len(&self) -> usize {
        let n = match self {
            OutputValues::F32(v) => v.len(),
            OutputValues::F64(v) => v.len(),
            OutputValues::I32(v) => v.len(),
        };
        n * self.datatype().size()
    }

    fn json(&self) -> Value {
        match self {
            OutputValues::F32(v) => json!(v),
            OutputValues::F64(v) => json!(v),
            OutputValues::I32(v) => json!(v),
        }
    }

    fn append_bytes(&self, out: &mut Vec<u8>) {
        match self {
            OutputValues::F32(v) => v
                .iter()
                .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
            OutputValues::F64(v) => v
                .iter()
                .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
            OutputValues::I32(v) => v
                .iter()
                .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
        }
    }
}

/// A response body: its bytes, and the JSON header's length when the body
/// carries binary tensors (for `Inference-Header-Content-Length`).
#[derive(Debug, Clone, PartialEq)]
pub struct ResponseBody {
    /// The body.
    pub bytes: Vec<u8>,
    /// `Some(n)`: the first n bytes are the JSON header, binary data follow.
    pub header_length: Option<usize>,
}

/// Encodes the outputs: those asked for (all when `request.outputs` is
/// `None`), each binary or JSON as the request says.
pub fn encode_response(
    model: &str,
    request: &InferRequest,
    outputs: Vec<OutputTensor>,
) -> ResponseBody {
    let mut entries = Vec::with_capacity(outputs.len());
    // The binary outputs, written straight after the header once its length is known.
    let (mut binary, mut binary_len) = (Vec::new(), 0);
    for out in &outputs {
        let as_binary = match &request.outputs {
            None => request.binary_output,
            Some(list) => match list.iter().find(|o| o.name == out.name) {
                Some(o) => o.binary.unwrap_or(request.binary_output),
                None => continue,
            },
        };
        let mut entry = json!({
            "name": out.name,
            "datatype": out.values.datatype().name(),
            "shape": out.shape,
        });
        if as_binary {
            let size = out.values.byte_len();
            entry["parameters"] = json!({ "binary_data_size": size });
            binary.push(&out.values);
            binary_len += size;
        } else {
            entry["data"] = out.values.json();
        }
        entries.push(entry);
    }
    let mut header = json!({
        "model_name": model,
        "model_version": "1",
        "outputs": entries,
    });
    if let Some(id) = &request.id {
        header["id"] = json!(id);
    }
    let mut bytes = header.to_string().into_bytes();
    if binary_len == 0 {
        return ResponseBody {
            bytes,
            header_length: None,
        };
    }
    let header_length = bytes.len();
    bytes.reserve_exact(binary_len);
    for values in binary {
        values.append_bytes(&mut bytes);
    }
    ResponseBody {
        bytes,
        header_length: Some(header_length),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binary_request(values: &[f32]) -> Vec<u8> {
        let header = json!({
            "id": "r1",
            "inputs": [
                {"name": "a", "datatype": "FP32", "shape": [1, values.len()],
                 "parameters": {"binary_data_size": values.len() * 4}},
                {"name": "b", "datatype": "FP64", "shape": [2], "data": [1.5, 2.5]}
            ],
            "outputs": [{"name": "x", "parameters": {"binary_data": true}}]
        })
        .to_string();
        let mut body = header.into_bytes();
        for v in values {
            body.extend_from_slice(&v.to_le_bytes());
        }
        body
    }

    #[test]
    fn binary_and_json_inputs_decode() {
        let body = binary_request(&[1.0, -2.5, 3.25]);
        let header_len = body.len() - 12;
        let req = parse_request(&body, Some(header_len)).unwrap();
        assert_eq!(req.id.as_deref(), Some("r1"));
        assert_eq!(req.inputs.len(), 2);
        let a = decode_rows::<f32>(&req.inputs[0], &[1, 3], &body, "input 'a'").unwrap();
        assert_eq!(a, vec![vec![1.0, -2.5, 3.25]]);
        let b = decode_rows::<f64>(&req.inputs[1], &[2], &body, "input 'b'").unwrap();
        assert_eq!(b, vec![vec![1.5], vec![2.5]]);
        assert_eq!(
            req.outputs,
            Some(vec![RequestedOutput {
                name: "x".into(),
                binary: Some(true)
            }])
        );
        // The declared sizes must account for the whole body.
        let e = parse_request(&body, Some(header_len - 1)).unwrap_err();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        let e = parse_request(&body[..body.len() - 4], Some(header_len)).unwrap_err();
        assert!(e.message.contains("runs past the end"), "{e}");
    }

    #[test]
    fn rows_are_batch_items_in_the_declared_type() {
        // Six FP32 values, binary, decoded as the checked shape [2, 3]: one
        // row per batch item, bit for bit.
        let values = [1.0f32, f32::MIN_POSITIVE, -3.5, 0.1, 7.0, f32::MAX];
        let body = binary_request(&values);
        let req = parse_request(&body, Some(body.len() - 24)).unwrap();
        let rows = decode_rows::<f32>(&req.inputs[0], &[2, 3], &body, "input 'a'").unwrap();
        assert_eq!(rows, vec![values[..3].to_vec(), values[3..].to_vec()]);
        // JSON FP32 rounds each number to the nearest f32, as binary data
        // would carry it; one beyond f32's range is an infinity, refused.
        let text = br#"{"inputs": [{"name": "q", "datatype": "FP32", "shape": [2, 2], "data": [[0.1, 2], [1e-3, 3]]}]}"#;
        let req = parse_request(text, None).unwrap();
        let rows = decode_rows::<f32>(&req.inputs[0], &[2, 2], text, "input 'q'").unwrap();
        assert_eq!(rows, vec![vec![0.1f32, 2.0], vec![1e-3f32, 3.0]]);
        let text = br#"{"inputs": [{"name": "q", "datatype": "FP32", "shape": [1, 2], "data": [1.0, 1e39]}]}"#;
        let req = parse_request(text, None).unwrap();
        let e = decode_rows::<f32>(&req.inputs[0], &[1, 2], text, "input 'q'").unwrap_err();
        assert!(e.message.contains("flat index 1"), "{e}");
        // The same number as FP64 keeps its full precision.
        let text = br#"{"inputs": [{"name": "q", "datatype": "FP64", "shape": [1, 2], "data": [0.1, 1e39]}]}"#;
        let req = parse_request(text, None).unwrap();
        let rows = decode_rows::<f64>(&req.inputs[0], &[1, 2], text, "input 'q'").unwrap();
        assert_eq!(rows, vec![vec![0.1f64, 1e39]]);
    }

    #[test]
    fn nested_data_must_nest_as_the_shape() {
        let decode = |data: &str| {
            let text = format!(
                r#"{{"inputs": [{{"name": "q", "datatype": "FP64", "shape": [1, 2, 2], "data": {data}}}]}}"#
            );
            let req = parse_request(text.as_bytes(), None).unwrap();
            decode_rows::<f64>(&req.inputs[0], &[1, 2, 2], text.as_bytes(), "input 'q'")
        };
        for good in ["[1, 2, 3, 4]", "[[[1, 2], [3, 4]]]"] {
            assert_eq!(
                decode(good).unwrap(),
                vec![vec![1.0, 2.0, 3.0, 4.0]],
                "{good}"
            );
        }
        for (bad, why) in [
            ("[[[1, 2], [3]], [4]]", "data has 2 entries, expected 1"),
            (
                "[[[1, 2], [3, 4, 5]]]",
                "data[0][1] has 3 entries, expected 2",
            ),
            ("[[1, 2, 3, 4]]", "data[0] has 4 entries, expected 2"),
            ("[[[1, 2], 3]]", "data[0][1] is 3, expected a list of 2"),
            (
                "[[[1, [2]], [3, 4]]]",
                "data[0][0][1] is a list, expected a number",
            ),
            (
                "[[[1, 2], [3, \"x\"]]]",
                "'data' holds \"x\", expected numbers",
            ),
            ("4", "'data' must be a list"),
        ] {
            let e = decode(bad).unwrap_err();
            assert_eq!(e.status, StatusCode::BAD_REQUEST);
            assert!(
                e.message.starts_with("input 'q': ") && e.message.contains(why),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn nested_data_is_not_reserved_from_the_declared_shape() {
        // A shape of 2^41 numbers (16 TiB) with one pair of data: a 400,
        // not an allocation of the declared size.
        let text = br#"{"inputs": [{"name": "q", "datatype": "FP64", "shape": [1, 2, 2], "data": [[[0, 1]]]}]}"#;
        let req = parse_request(text, None).unwrap();
        let shape = [1, 1 << 40, 2];
        let e = decode_rows::<f64>(&req.inputs[0], &shape, text, "input 'q'").unwrap_err();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        assert!(
            e.message
                .contains("data[0] has 1 entries, expected 1099511627776"),
            "{e}"
        );
    }

    #[test]
    fn shared_memory_is_refused_on_inputs_and_outputs() {
        for (tensors, what) in [
            (
                r#""inputs": [{"name": "a", "datatype": "FP32", "shape": [1], "data": [1], "parameters": {"shared_memory_region": "r"}}]"#,
                "input 'a'",
            ),
            (
                r#""inputs": [], "outputs": [{"name": "b", "parameters": {"shared_memory_region": "r", "shared_memory_byte_size": 8}}]"#,
                "output 'b'",
            ),
            (
                r#""inputs": [], "outputs": [{"name": "c", "parameters": {"shared_memory_offset": 0}}]"#,
                "output 'c'",
            ),
        ] {
            let text = format!("{{{tensors}}}");
            let e = parse_request(text.as_bytes(), None).unwrap_err();
            assert_eq!(e.status, StatusCode::BAD_REQUEST);
            assert!(
                e.message
                    .starts_with(&format!("{what}: shared memory is not supported")),
                "{e}"
            );
        }
    }

    #[test]
    fn non_finite_values_are_named() {
        let body = binary_request(&[1.0, f32::NAN]);
        let req = parse_request(&body, Some(body.len() - 8)).unwrap();
        let e = decode_rows::<f32>(&req.inputs[0], &[1, 2], &body, "input 'a'").unwrap_err();
        assert!(
            e.message.contains("input 'a'") && e.message.contains("index 1"),
            "{e}"
        );
        // Python's json writes NaN; it is reported by input, not as bad JSON.
        let text = br#"{"inputs": [{"name": "q", "datatype": "FP64", "shape": [3], "data": [1.0, NaN, -Infinity]}], "id": "NaN"}"#;
        let req = parse_request(text, None).unwrap();
        assert_eq!(req.id.as_deref(), Some("NaN"));
        let e = decode_rows::<f64>(&req.inputs[0], &[3], text, "input 'q'").unwrap_err();
        assert!(
            e.message.contains("input 'q'") && e.message.contains("index 1"),
            "{e}"
        );
    }

    #[test]
    fn counts_and_malformed_requests_are_refused() {
        let text = br#"{"inputs": [{"name": "q", "datatype": "FP32", "shape": [2, 2], "data": [[1, 2], [3]]}]}"#;
        let req = parse_request(text, None).unwrap();
        let e = decode_rows::<f32>(&req.inputs[0], &[2, 2], text, "input 'q'").unwrap_err();
        assert!(
            e.message.contains("data[1] has 1 entries, expected 2"),
            "{e}"
        );
        let text = br#"{"inputs": [{"name": "q", "datatype": "FP32", "shape": [2, 2], "data": [1, 2, 3]}]}"#;
        let req = parse_request(text, None).unwrap();
        let e = decode_rows::<f32>(&req.inputs[0], &[2, 2], text, "input 'q'").unwrap_err();
        assert!(e.message.contains("has 3 values"), "{e}");
        for bad in [
            &br#"[1, 2]"#[..],
            br#"{"inputs": 3}"#,
            br#"{"inputs": [{"datatype": "FP32", "shape": [1], "data": [1]}]}"#,
            br#"{"inputs": [{"name": "a", "datatype": "FP32", "shape": [1]}]}"#,
            br#"{"inputs": [{"name": "a", "datatype": "FP32", "shape": ["x"], "data": [1]}]}"#,
            br#"{"inputs": [], "parameters": {"binary_data_output": 1}}"#,
            br#"{"inputs": [], "outputs": [{"name": "a", "parameters": {"classification": 2}}]}"#,
            br#"{"inputs": [ "#,
        ] {
            let e = parse_request(bad, None).unwrap_err();
            assert_eq!(
                e.status,
                StatusCode::BAD_REQUEST,
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn responses_mix_binary_and_json_outputs() {
        let req = InferRequest {
            id: Some("7".into()),
            inputs: vec![],
            outputs: Some(vec![
                RequestedOutput {
                    name: "x".into(),
                    binary: Some(true),
                },
                RequestedOutput {
                    name: "y".into(),
                    binary: None,
                },
            ]),
            binary_output: false,
        };
        let outs = vec![
            OutputTensor {
                name: "x",
                shape: vec![1, 2],
                values: OutputValues::F32(vec![0.5, 1.5]),
            },
            OutputTensor {
                name: "y",
                shape: vec![1],
                values: OutputValues::I32(vec![3]),
            },
            OutputTensor {
                name: "z",
                shape: vec![1],
                values: OutputValues::F64(vec![9.0]),
            },
        ];
        let body = encode_response("m", &req, outs);
        let n = body.header_length.unwrap();
        let header: Value = serde_json::from_slice(&body.bytes[..n]).unwrap();
        assert_eq!(header["id"], "7");
        assert_eq!(
            header["outputs"].as_array().unwrap().len(),
            2,
            "z was not asked for"
        );
        assert_eq!(header["outputs"][0]["parameters"]["binary_data_size"], 8);
        assert_eq!(header["outputs"][1]["data"], json!([3]));
        let tail = &body.bytes[n..];
        assert_eq!(tail.len(), 8);
        assert_eq!(f32::from_le_bytes(tail[4..8].try_into().unwrap()), 1.5);
    }
}
