//! JSON tensor data read straight into numbers. A request's JSON is parsed
//! with each input's `data` kept as text ([`parse_request_json`]); the text
//! is then read into a `Vec` of the input's type against its checked shape
//! ([`json_values`]). A `serde_json::Value` per number would take up to
//! about twenty times the text (32 bytes a value, for numbers such as
//! `0,`); this keeps the text once and 4 or 8 bytes a number.
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::protocol::{ApiError, Element};

/// A request body's JSON object: its fields but `inputs`, and `inputs`.
pub struct RequestJson {
    /// Every field but `inputs`.
    pub fields: Map<String, Value>,
    /// `inputs`, when present: a list of [`InputJson`], or `None` when it is
    /// not a list.
    pub inputs: Option<Option<Vec<InputJson>>>,
}

/// One entry of `inputs`: an object's fields but `data`, and `data` as
/// text; `None` when the entry is not an object.
pub type InputJson = Option<(Map<String, Value>, Option<Box<RawValue>>)>;

/// Parses a request's JSON: `Ok(None)` when it is valid JSON but not an
/// object.
pub fn parse_request_json(text: &[u8]) -> serde_json::Result<Option<RequestJson>> {
    let mut de = serde_json::Deserializer::from_slice(text);
    let top = de.deserialize_any(RequestVisitor)?;
    de.end()?;
    Ok(top)
}

/// The `visit_*` methods of a visitor whose value is `None` for anything
/// but what it reads itself (lists and objects are skipped whole).
macro_rules! none_for_others {
    ($($method:ident($($arg:ty)?)),*) => {
        $(fn $method<E: de::Error>(self $(, _: $arg)?) -> Result<Self::Value, E> {
            Ok(None)
        })*
    };
}

macro_rules! scalars_are_none {
    () => {
        none_for_others!(
            visit_bool(bool),
            visit_i64(i64),
            visit_u64(u64),
            visit_f64(f64),
            visit_str(&str),
            visit_unit()
        );
    };
}

struct RequestVisitor;

impl<'de> Visitor<'de> for RequestVisitor {
    type Value = Option<RequestJson>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a request")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut fields = Map::new();
        let mut inputs = None;
        while let Some(key) = map.next_key::<String>()? {
            if key == "inputs" {
                inputs = Some(map.next_value::<InputList>()?.0);
            } else {
                fields.insert(key, map.next_value::<Value>()?);
            }
        }
        Ok(Some(RequestJson { fields, inputs }))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(None)
    }

    scalars_are_none!();
}

/// `inputs`: its entries when it is a list.
struct InputList(Option<Vec<InputJson>>);

impl<'de> Deserialize<'de> for InputList {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(InputListVisitor).map(InputList)
    }
}

struct InputListVisitor;

impl<'de> Visitor<'de> for InputListVisitor {
    type Value = Option<Vec<InputJson>>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of inputs")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut list = Vec::new();
        while let Some(input) = seq.next_element::<Input>()? {
            list.push(input.0);
        }
        Ok(Some(list))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(None)
    }

    scalars_are_none!();
}

/// One entry of `inputs`.
struct Input(InputJson);

impl<'de> Deserialize<'de> for Input {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(InputVisitor).map(Input)
    }
}

struct InputVisitor;

impl<'de> Visitor<'de> for InputVisitor {
    type Value = InputJson;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an input")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut fields = Map::new();
        let mut data = None;
        while let Some(key) = map.next_key::<String>()? {
            if key == "data" {
                data = Some(map.next_value::<Box<RawValue>>()?);
            } else {
                fields.insert(key, map.next_value::<Value>()?);
            }
        }
        Ok(Some((fields, data)))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(None)
    }

    scalars_are_none!();
}

/// The values of JSON `data` (as text) for an input of checked `shape`:
/// either a flat list of exactly as many numbers as the shape holds, or
/// lists nested exactly as the shape at every level (as the protocol allows
/// both); `null` (NaN or an infinity in the client's JSON) is read as NaN,
/// to be reported. A mismatch is reported where the first list that does
/// not match is, the lists' lengths checked before their entries.
pub fn json_values<E: Element>(
    data: &RawValue,
    shape: &[usize],
    what: &str,
) -> Result<Vec<E>, ApiError> {
    let text = data.get();
    if !text.starts_with('[') {
        return Err(ApiError::bad_request(format!(
            "{what}: 'data' must be a list, got {text}"
        )));
    }
    let mut reader = Reader {
        shape,
        path: Vec::with_capacity(shape.len()),
        out: Vec::new(),
        first_number: None,
        nested: false,
        problem: None,
    };
    let mut de = serde_json::Deserializer::from_str(text);
    let top_count = (&mut de)
        .deserialize_seq(Top(&mut reader))
        .map_err(|e| ApiError::bad_request(format!("{what}: 'data': {e}")))?;
    if let Some(problem) = reader.first_problem(top_count) {
        return Err(reader.error(problem, what));
    }
    let count: usize = shape.iter().product();
    if reader.out.len() != count {
        return Err(ApiError::bad_request(format!(
            "{what}: 'data' has {top_count} values, but shape {shape:?} needs {count}"
        )));
    }
    Ok(reader.out)
}

/// What was found wrong, and where (the path of the entry concerned).
enum Problem {
    /// `data` holds a value that is not a number (flat or at the leaves).
    NotANumber(String),
    /// A list at `path` has `found` entries instead of the shape's.
    Count {
        path: Vec<usize>,
        found: usize,
        expected: usize,
    },
    /// The entry at `path` is `found` (shown) where a list was expected.
    NotAList { path: Vec<usize>, found: String },
    /// The entry at `path` is a list where a number was expected.
    AList { path: Vec<usize> },
}

/// The state of one `data` being read.
struct Reader<'a, E> {
    shape: &'a [usize],
    /// Where the entry being read is (one index per list level above it).
    path: Vec<usize>,
    /// The numbers read so far, in row-major order.
    out: Vec<E>,
    /// The first top-level number, shown, with its index (flat data that
    /// turns out to hold lists is nested data with a wrong entry there).
    first_number: Option<(usize, String)>,
    /// Whether a top-level entry is a list.
    nested: bool,
    /// The first problem found (reading goes on only to count entries).
    problem: Option<Problem>,
}

impl<E: Element> Reader<'_, E> {
    /// The problem to report, in the order a walk from the top finds them:
    /// nested data's top-level count, then a number among its top-level
    /// lists, then the first problem found inside.
    fn first_problem(&mut self, top_count: usize) -> Option<Problem> {
        if self.nested {
            if top_count != self.shape[0] {
                let (found, expected) = (top_count, self.shape[0]);
                return Some(Problem::Count {
                    path: vec![],
                    found,
                    expected,
                });
            }
            if let Some((i, found)) = self.first_number.take() {
                return Some(Problem::NotAList {
                    path: vec![i],
                    found,
                });
            }
        }
        self.problem.take()
    }

    fn error(&self, problem: Problem, what: &str) -> ApiError {
        let shown = |path: &[usize]| -> String { path.iter().map(|i| format!("[{i}]")).collect() };
        let (path, wrong) = match problem {
            Problem::NotANumber(found) => {
                return ApiError::bad_request(format!(
                    "{what}: 'data' holds {found}, expected numbers"
                ))
            }
            Problem::Count {
                path,
                found,
                expected,
            } => (
                shown(&path),
                format!("has {found} entries, expected {expected}"),
            ),
            Problem::NotAList { path, found } => {
                let expected = self.shape.get(path.len()).copied().unwrap_or(0);
                (
                    shown(&path),
                    format!("is {found}, expected a list of {expected}"),
                )
            }
            Problem::AList { path } => (shown(&path), "is a list, expected a number".into()),
        };
        ApiError::bad_request(format!(
            "{what}: nested 'data' does not match shape {:?}: data{path} {wrong}",
            self.shape
        ))
    }

    /// Notes `problem` unless one came first.
    fn found(&mut self, problem: Problem) {
        self.problem.get_or_insert(problem);
    }
}

/// Reads the top-level list; its value is the number of entries.
struct Top<'r, 'a, E>(&'r mut Reader<'a, E>);

impl<'de, E: Element> Visitor<'de> for Top<'_, '_, E> {
    type Value = usize;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<usize, A::Error> {
        let r = self.0;
        let mut n = 0;
        loop {
            r.path.clear();
            r.path.push(n);
            let more = if r.problem.is_some() {
                seq.next_element::<IgnoredAny>()?.is_some()
            } else {
                seq.next_element_seed(TopEntry(r))?.is_some()
            };
            if !more {
                break;
            }
            n += 1;
        }
        r.path.clear();
        Ok(n)
    }
}

/// One top-level entry: a number (flat data) or a list (nested data).
struct TopEntry<'r, 'a, E>(&'r mut Reader<'a, E>);

impl<'de, E: Element> DeserializeSeed<'de> for TopEntry<'_, '_, E> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(Entry {
            reader: self.0,
            top: true,
        })
    }
}

/// An entry below the top (or at it, with `top`): read into the numbers,
/// checked against the shape.
struct Entry<'r, 'a, E> {
    reader: &'r mut Reader<'a, E>,
    top: bool,
}

impl<E: Element> Entry<'_, '_, E> {
    /// Whether this entry must be a number.
    fn is_leaf(&self) -> bool {
        self.reader.path.len() == self.reader.shape.len()
    }

    /// A number (or `null`, read as NaN) `shown` as the client wrote it.
    fn number<Er: de::Error>(self, x: f64, shown: impl FnOnce() -> String) -> Result<(), Er> {
        let r = self.reader;
        if self.top && !r.nested {
            let index = r.path[0];
            r.first_number.get_or_insert_with(|| (index, shown()));
            r.out.push(E::from_json(x));
        } else if r.path.len() == r.shape.len() {
            r.out.push(E::from_json(x));
        } else {
            let path = r.path.clone();
            r.found(Problem::NotAList {
                path,
                found: shown(),
            });
        }
        Ok(())
    }

    /// Something that is neither a number nor a list, `shown`.
    fn other<Er: de::Error>(self, shown: String) -> Result<(), Er> {
        let r = self.reader;
        let leaf = r.path.len() == r.shape.len();
        if (self.top && !r.nested) || leaf {
            r.found(Problem::NotANumber(shown));
        } else {
            let path = r.path.clone();
            r.found(Problem::NotAList { path, found: shown });
        }
        Ok(())
    }
}

impl<'de, E: Element> Visitor<'de> for Entry<'_, '_, E> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a number or a list")
    }

    fn visit_f64<Er: de::Error>(self, x: f64) -> Result<(), Er> {
        self.number(x, || Value::from(x).to_string())
    }

    fn visit_u64<Er: de::Error>(self, x: u64) -> Result<(), Er> {
        self.number(x as f64, || x.to_string())
    }

    fn visit_i64<Er: de::Error>(self, x: i64) -> Result<(), Er> {
        self.number(x as f64, || x.to_string())
    }

    fn visit_unit<Er: de::Error>(self) -> Result<(), Er> {
        self.number(f64::NAN, || "null".into())
    }

    fn visit_bool<Er: de::Error>(self, b: bool) -> Result<(), Er> {
        self.other(b.to_string())
    }

    fn visit_str<Er: de::Error>(self, s: &str) -> Result<(), Er> {
        self.other(Value::from(s).to_string())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        self.other("an object".into())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        if self.top {
            self.reader.nested = true;
        }
        if self.is_leaf() {
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            let path = self.reader.path.clone();
            self.reader.found(Problem::AList { path });
            return Ok(());
        }
        let r = self.reader;
        let expected = r.shape[r.path.len()];
        let mut n = 0;
        loop {
            r.path.push(n);
            let more = if r.problem.is_some() {
                seq.next_element::<IgnoredAny>()?.is_some()
            } else {
                seq.next_element_seed(Nested(r))?.is_some()
            };
            r.path.pop();
            if !more {
                break;
            }
            n += 1;
        }
        // A list's length is checked before its entries: a wrong count
        // here replaces a problem found inside it.
        if n != expected {
            let path = r.path.clone();
            r.problem = Some(Problem::Count {
                path,
                found: n,
                expected,
            });
        }
        Ok(())
    }
}

/// An entry inside a nested list.
struct Nested<'r, 'a, E>(&'r mut Reader<'a, E>);

impl<'de, E: Element> DeserializeSeed<'de> for Nested<'_, '_, E> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(Entry {
            reader: self.0,
            top: false,
        })
    }
}
