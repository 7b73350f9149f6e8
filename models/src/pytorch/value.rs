//! The objects of a PyTorch file as a tree of [`Value`]s, and the step that
//! turns the pickle machine's arena into that tree (attaching storages to
//! tensors and checking their bounds).
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use super::pickle::{Arena, Item, Node, NodeId};
use super::{Storage, Tensor};

/// A Python object read from the file.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `None`.
    None,
    /// A bool.
    Bool(bool),
    /// An int that fits in i64.
    Int(i64),
    /// A larger int: little-endian two's complement bytes.
    BigInt(Vec<u8>),
    /// A float.
    Float(f64),
    /// A str.
    Str(String),
    /// bytes or bytearray.
    Bytes(Vec<u8>),
    /// A list.
    List(Vec<Value>),
    /// A tuple.
    Tuple(Vec<Value>),
    /// A set or frozenset.
    Set(Vec<Value>),
    /// A dict or `collections.OrderedDict`, in insertion order.
    Dict(Vec<(Value, Value)>),
    /// A tensor (or `torch.nn.Parameter`).
    Tensor(Tensor),
    /// A class or function named in the file, e.g. `torch.FloatStorage`.
    Global(String),
    /// An instance of a class this reader does not rebuild, kept opaque.
    Object(Box<Object>),
    /// A container that contains itself: the inner reference is not followed.
    Cycle,
}

/// An object this reader keeps without rebuilding it.
#[derive(Debug, Clone, PartialEq)]
pub struct Object {
    /// `module.name` of its class or constructor.
    pub class: String,
    /// The constructor's arguments.
    pub args: Value,
    /// The state given to it (`BUILD`), if any.
    pub state: Option<Value>,
}

impl Value {
    /// The value under string key `key`, if this is a dict that has it.
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Dict(entries) => entries
                .iter()
                .find(|(k, _)| matches!(k, Value::Str(s) if s == key))
                .map(|(_, v)| v),
            _ => None,
        }
    }

    /// A short description of its kind, for error messages.
    pub fn kind(&self) -> String {
        match self {
            Value::None => "None".into(),
            Value::Bool(_) => "a bool".into(),
            Value::Int(_) | Value::BigInt(_) => "an int".into(),
            Value::Float(_) => "a float".into(),
            Value::Str(_) => "a str".into(),
            Value::Bytes(_) => "bytes".into(),
            Value::List(_) => "a list".into(),
            Value::Tuple(_) => "a tuple".into(),
            Value::Set(_) => "a set".into(),
            Value::Dict(_) => "a dict".into(),
            Value::Tensor(_) => "a tensor".into(),
            Value::Global(g) => format!("the name {g}"),
            Value::Object(o) => format!("an object of {}", o.class),
            Value::Cycle => "a recursive reference".into(),
        }
    }
}

/// Limits of the tree: nesting depth and total values (shared objects are
/// copied, so the total bounds what sharing could blow up).
const MAX_DEPTH: usize = 200;
const MAX_VALUES: usize = 1 << 24;

/// Turns the arena into a tree rooted at `root`; a tensor whose storage is
/// missing or too small is an error naming where it sits (`['state_dict']['w']`).
pub(crate) fn freeze(
    arena: &Arena,
    root: &Item,
    storages: &HashMap<String, Arc<Storage>>,
) -> Result<Value, String> {
    let mut f = Freezer {
        arena,
        storages,
        open: HashSet::new(),
        path: Vec::new(),
        count: 0,
    };
    f.value(root)
}

struct Freezer<'a> {
    arena: &'a Arena,
    storages: &'a HashMap<String, Arc<Storage>>,
    /// Containers being converted: a revisit is a cycle, and their number is
    /// the nesting depth.
    open: HashSet<NodeId>,
    /// Where we are, for error messages.
    path: Vec<String>,
    count: usize,
}

impl Freezer<'_> {
    fn value(&mut self, item: &Item) -> Result<Value, String> {
        self.count += 1;
        if self.count > MAX_VALUES {
            return Err(format!("more than {MAX_VALUES} values"));
        }
        Ok(match item {
            Item::None => Value::None,
            Item::Bool(b) => Value::Bool(*b),
            Item::Int(i) => Value::Int(*i),
            Item::BigInt(b) => Value::BigInt(b.to_vec()),
            Item::Float(x) => Value::Float(*x),
            Item::Str(s) => Value::Str(s.to_string()),
            Item::Bytes(b) => Value::Bytes(b.to_vec()),
            Item::Node(id) => {
                if self.open.contains(id) {
                    return Ok(Value::Cycle);
                }
                if self.open.len() >= MAX_DEPTH {
                    return Err(format!("objects nested deeper than {MAX_DEPTH}"));
                }
                self.open.insert(*id);
                let v = self.node(*id);
                self.open.remove(id);
                v?
            }
        })
    }

    fn node(&mut self, id: NodeId) -> Result<Value, String> {
        let arena = self.arena;
        let Some(node) = arena.nodes.get(id) else {
            return Err(format!("object {id} does not exist"));
        };
        Ok(match node {
            Node::List(v) => Value::List(self.items(v)?),
            Node::Tuple(v) => Value::Tuple(self.items(v)?),
            Node::Set(v) => Value::Set(self.items(v)?),
            Node::Dict(d) => Value::Dict(self.entries(&d.entries)?),
            Node::Global { module, name } => Value::Global(format!("{module}.{name}")),
            Node::Object {
                class,
                args,
                state,
                items,
                entries,
            } => {
                self.path.push(format!("<{class}>"));
                let args = self.value(args);
                let state = state.as_ref().map(|s| self.value(s)).transpose();
                let extra = (self.items(items), self.entries(entries));
                self.path.pop();
                let (args, mut state) = (args?, state?);
                let (items, entries) = (extra.0?, extra.1?);
                if !items.is_empty() || !entries.is_empty() {
                    let extra = Value::Tuple(vec![Value::List(items), Value::Dict(entries)]);
                    state = Some(Value::Tuple(vec![state.unwrap_or(Value::None), extra]));
                }
                Value::Object(Box::new(Object {
                    class: class.clone(),
                    args,
                    state,
                }))
            }
            Node::Storage(s) => Value::Object(Box::new(Object {
                class: format!("torch.storage ({})", s.dtype),
                args: Value::Str(s.key.clone()),
                state: None,
            })),
            Node::Tensor(t) => {
                let storage = self
                    .storages
                    .get(&t.storage.key)
                    .ok_or_else(|| self.at(format!("storage '{}' is missing", t.storage.key)))?;
                let tensor = Tensor::new(
                    storage.clone(),
                    t.storage.base,
                    t.storage.len,
                    t.offset,
                    t.shape.clone(),
                    t.stride.clone(),
                )
                .map_err(|e| self.at(e))?;
                Value::Tensor(tensor)
            }
        })
    }

    fn items(&mut self, items: &[Item]) -> Result<Vec<Value>, String> {
        let mut out = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            self.path.push(format!("[{i}]"));
            let v = self.value(item);
            self.path.pop();
            out.push(v?);
        }
        Ok(out)
    }

    fn entries(&mut self, entries: &[(Item, Item)]) -> Result<Vec<(Value, Value)>, String> {
        let mut out = Vec::with_capacity(entries.len());
        for (k, v) in entries {
            let key = self.value(k)?;
            self.path.push(match &key {
                Value::Str(s) => format!("[{s:?}]"),
                Value::Int(i) => format!("[{i}]"),
                _ => "[key]".into(),
            });
            let v = self.value(v);
            self.path.pop();
            out.push((key, v?));
        }
        Ok(out)
    }

    fn at(&self, reason: String) -> String {
        format!("tensor at {}: {reason}", self.path.concat())
    }
}
