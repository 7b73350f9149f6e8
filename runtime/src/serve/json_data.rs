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
    let count: usize = shape.iter().product();
    if !reader.nested && top_count != count {
        return Err(ApiError::bad_request(format!(
            "{what}: 'data' has {top_count} values, but shape {shape:?} needs {count}"
        )));
    }
    if let Some(problem) = reader.first_problem(top_count) {
        return Err(reader.error(problem, what));
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
    /// The first top-level entry that is not a list, shown, with its index
    /// (flat data that turns out to hold lists is nested data with a wrong
    /// entry there).
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
            let expected = self.shape.first().copied().unwrap_or(0);
            if top_count != expected {
                let found = top_count;
                return Some(Problem::Count {
                    path: vec![],
                    found,
                    expected,
                });
            }
            // (With one dimension the top-level entries are the numbers.)
            let first_number = self.first_number.take().filter(|_| self.shape.len() > 1);
            if let Some((i, found)) = first_number {
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
                seq.next_element_seed(Skim(r))?.is_some()
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

/// A top-level entry after a problem: skipped, noting only whether it is
/// a list (which makes the data nested, and so its problems the walk's).
struct Skim<'r, 'a, E>(&'r mut Reader<'a, E>);

impl<'de, E: Element> DeserializeSeed<'de> for Skim<'_, '_, E> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        let is_list = d.deserialize_any(IsList)?;
        self.0.nested |= is_list;
        Ok(())
    }
}

/// Skips a value; whether it was a list.
struct IsList;

impl<'de> Visitor<'de> for IsList {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any value")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<bool, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(true)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<bool, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(false)
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<bool, E> {
        Ok(false)
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<bool, E> {
        Ok(false)
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<bool, E> {
        Ok(false)
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<bool, E> {
        Ok(false)
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<bool, E> {
        Ok(false)
    }

    fn visit_unit<E: de::Error>(self) -> Result<bool, E> {
        Ok(false)
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
    /// Whether this entry must be a number (or lies below where one must).
    fn is_leaf(&self) -> bool {
        self.reader.path.len() >= self.reader.shape.len()
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
        if self.top && !r.nested {
            let index = r.path[0];
            r.first_number.get_or_insert_with(|| (index, shown.clone()));
            r.found(Problem::NotANumber(shown));
        } else if leaf {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The reading these functions replaced, over a parsed `Value` (flat
    /// when no top-level entry is a list, else a walk from the top that
    /// checks each list's length before its entries): the oracle.
    fn by_value(data: &Value, shape: &[usize], what: &str) -> Result<Vec<f64>, String> {
        let number = |v: &Value| match v {
            Value::Number(n) => Ok(n.as_f64().unwrap_or(f64::NAN)),
            Value::Null => Ok(f64::NAN),
            other => Err(format!("{what}: 'data' holds {other}, expected numbers")),
        };
        let Value::Array(items) = data else {
            return Err(format!("{what}: 'data' must be a list, got {data}"));
        };
        let count: usize = shape.iter().product();
        if !items.iter().any(Value::is_array) {
            if items.len() != count {
                return Err(format!(
                    "{what}: 'data' has {} values, but shape {shape:?} needs {count}",
                    items.len()
                ));
            }
            return items.iter().map(number).collect();
        }
        fn walk(
            v: &Value,
            shape: &[usize],
            index: &mut Vec<usize>,
            out: &mut Vec<f64>,
            number: &dyn Fn(&Value) -> Result<f64, String>,
        ) -> Result<(), String> {
            let at: String = index.iter().map(|i| format!("[{i}]")).collect();
            let wrong = |w: String| {
                Err(format!(
                    "nested 'data' does not match shape {shape:?}: data{at} {w}"
                ))
            };
            match (shape.get(index.len()).copied(), v) {
                (Some(n), Value::Array(items)) if items.len() == n => {
                    for (i, item) in items.iter().enumerate() {
                        index.push(i);
                        walk(item, shape, index, out, number)?;
                        index.pop();
                    }
                    Ok(())
                }
                (Some(n), Value::Array(items)) => {
                    wrong(format!("has {} entries, expected {n}", items.len()))
                }
                (Some(n), other) => wrong(format!("is {other}, expected a list of {n}")),
                (None, Value::Array(_)) => wrong("is a list, expected a number".into()),
                (None, other) => {
                    out.push(number(other)?);
                    Ok(())
                }
            }
        }
        let mut out = Vec::new();
        walk(data, shape, &mut Vec::new(), &mut out, &number).map_err(|e| {
            if e.starts_with("nested") {
                format!("{what}: {e}")
            } else {
                e
            }
        })?;
        Ok(out)
    }

    /// A small random generator (xorshift).
    struct Rng(u64);

    impl Rng {
        fn below(&mut self, n: u64) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0 % n
        }
    }

    /// Data for `shape` (nested or flat), with a few random faults.
    fn data(shape: &[usize], rng: &mut Rng) -> Value {
        fn nested(shape: &[usize], rng: &mut Rng) -> Value {
            let Some((&n, rest)) = shape.split_first() else {
                return match rng.below(40) {
                    0 => Value::Null,
                    1 => Value::from("x"),
                    2 => serde_json::json!([1]),
                    3 => Value::from(-3),
                    _ => Value::from(rng.below(1000) as f64 / 8.0),
                };
            };
            let n = match rng.below(12) {
                0 => n + 1,
                1 => n.saturating_sub(1),
                _ => n,
            };
            let items = (0..n)
                .map(|_| match rng.below(25) {
                    0 => Value::from(7),
                    1 => Value::Null,
                    2 => Value::from("y"),
                    _ => nested(rest, rng),
                })
                .collect();
            Value::Array(items)
        }
        let flat = rng.below(3) == 0;
        if flat {
            let count: usize = shape.iter().product::<usize>() + (rng.below(6) == 0) as usize;
            let mut items: Vec<Value> = (0..count).map(|i| Value::from(i as f64 / 4.0)).collect();
            let k = rng.below(items.len().max(1) as u64) as usize;
            match rng.below(8) {
                0 => items.push(serde_json::json!([1.5, 2])),
                1 if !items.is_empty() => items[k] = Value::Null,
                2 if !items.is_empty() => items[k] = Value::from("x"),
                3 if !items.is_empty() => items[k] = serde_json::json!([]),
                _ => {}
            }
            return Value::Array(items);
        }
        nested(shape, rng)
    }

    #[test]
    fn random_data_reads_as_the_value_walk_did() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let what = "input 'q'";
        for case in 0..20_000 {
            let rank = 1 + rng.below(3) as usize;
            let shape: Vec<usize> = (0..rank).map(|_| 1 + rng.below(3) as usize).collect();
            let value = data(&shape, &mut rng);
            let text = value.to_string();
            let raw: Box<RawValue> = serde_json::from_str(&text).unwrap();
            let got = json_values::<f64>(&raw, &shape, what).map_err(|e| e.message);
            let want = by_value(&value, &shape, what);
            let same = match (&got, &want) {
                (Ok(a), Ok(b)) => {
                    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
                }
                (Err(a), Err(b)) => a == b,
                _ => false,
            };
            assert!(
                same,
                "case {case}: shape {shape:?}, data {text}: got {got:?}, want {want:?}"
            );
        }
    }
}
