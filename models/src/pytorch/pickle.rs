//! A small pickle virtual machine: the opcodes of protocols 2 to 5 that
//! `torch.save` emits (and the few simple ones of protocols 0 and 1).
//!
//! It builds objects in an [`Arena`] (so that containers shared through the
//! memo and mutated later stay shared, and cycles cannot recurse), asks its
//! [`Hooks`] to resolve persistent ids and `REDUCE` calls, and keeps every
//! other class it meets as an opaque object. Every length and index read from
//! the data is checked; the stack, the mark stack, the memo and the arena
//! have fixed limits, so no input makes it panic or allocate without bound.
use std::collections::HashMap;
use std::rc::Rc;

/// Limits of one machine (far above what a checkpoint's pickle needs).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// Items on the stack.
    pub stack: usize,
    /// Open MARKs.
    pub marks: usize,
    /// Memo entries.
    pub memo: usize,
    /// Objects in the arena.
    pub nodes: usize,
}

/// The limits used for checkpoints.
pub(crate) const LIMITS: Limits = Limits {
    stack: 1 << 20,
    marks: 1 << 16,
    memo: 1 << 20,
    nodes: 1 << 22,
};

/// Index of an object in the [`Arena`].
pub(crate) type NodeId = usize;

/// A value on the stack or in the memo: a scalar, or an object in the arena.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Item {
    None,
    Bool(bool),
    Int(i64),
    /// An integer beyond i64: little-endian two's complement.
    BigInt(Rc<[u8]>),
    Float(f64),
    Str(Rc<str>),
    Bytes(Rc<[u8]>),
    Node(NodeId),
}

/// A dictionary key that can be looked up (strings and integers).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Str(Rc<str>),
    Int(i64),
}

impl Key {
    fn of(item: &Item) -> Option<Key> {
        match item {
            Item::Str(s) => Some(Key::Str(s.clone())),
            Item::Int(i) => Some(Key::Int(*i)),
            _ => None,
        }
    }
}

/// A dict (or OrderedDict) in insertion order; a repeated key replaces the value.
#[derive(Debug, Default)]
pub(crate) struct DictNode {
    pub entries: Vec<(Item, Item)>,
    index: HashMap<Key, usize>,
}

impl DictNode {
    /// Sets `key` to `value`, keeping the first insertion's position.
    pub fn insert(&mut self, key: Item, value: Item) {
        match Key::of(&key) {
            Some(k) => match self.index.get(&k) {
                Some(&i) => self.entries[i].1 = value,
                None => {
                    self.index.insert(k, self.entries.len());
                    self.entries.push((key, value));
                }
            },
            None => self.entries.push((key, value)),
        }
    }
}

/// A storage a tensor refers to: which one, its element type, and the range
/// of elements (a legacy storage view starts past 0).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct StorageRef {
    pub key: String,
    pub dtype: super::DType,
    pub base: usize,
    pub len: usize,
}

/// A tensor as its rebuild function describes it (data not yet attached).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TensorNode {
    pub storage: StorageRef,
    pub offset: usize,
    pub shape: Vec<usize>,
    pub stride: Vec<usize>,
}

/// An object built by the machine.
#[derive(Debug)]
pub(crate) enum Node {
    List(Vec<Item>),
    Tuple(Vec<Item>),
    Set(Vec<Item>),
    Dict(DictNode),
    /// A class or function named by GLOBAL / STACK_GLOBAL.
    Global {
        module: Rc<str>,
        name: Rc<str>,
    },
    /// An instance of a class the hooks do not rebuild.
    Object {
        class: String,
        args: Item,
        state: Option<Item>,
        items: Vec<Item>,
        entries: Vec<(Item, Item)>,
    },
    Storage(StorageRef),
    Tensor(TensorNode),
}

/// Every object built while reading one file.
#[derive(Debug, Default)]
pub(crate) struct Arena {
    pub nodes: Vec<Node>,
}

impl Arena {
    /// Adds `node`, failing past the node limit.
    pub fn push(&mut self, node: Node) -> Result<Item, String> {
        if self.nodes.len() >= LIMITS.nodes {
            return Err(format!("more than {} objects", LIMITS.nodes));
        }
        self.nodes.push(node);
        Ok(Item::Node(self.nodes.len() - 1))
    }

    /// The node `item` refers to, if it is one.
    pub fn node(&self, item: &Item) -> Option<&Node> {
        match item {
            Item::Node(id) => self.nodes.get(*id),
            _ => None,
        }
    }

    /// The elements of a tuple or list item.
    pub fn sequence(&self, item: &Item) -> Option<&[Item]> {
        match self.node(item)? {
            Node::Tuple(v) | Node::List(v) => Some(v),
            _ => None,
        }
    }

    /// `(module, name)` of a GLOBAL item.
    pub fn global(&self, item: &Item) -> Option<(Rc<str>, Rc<str>)> {
        match self.node(item)? {
            Node::Global { module, name } => Some((module.clone(), name.clone())),
            _ => None,
        }
    }
}

/// What the file format decides: persistent ids and the calls it rebuilds.
pub(crate) trait Hooks {
    /// Resolves the persistent id `pid` (BINPERSID).
    fn persistent_load(&mut self, arena: &mut Arena, pid: Item) -> Result<Item, String>;
    /// `module.name(*args)`, or `None` to keep the call as an opaque object.
    fn reduce(
        &mut self,
        arena: &mut Arena,
        module: &str,
        name: &str,
        args: &Item,
    ) -> Result<Option<Item>, String>;
}

/// Why a pickle could not be read: the byte offset of the opcode and the reason.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PickleError {
    pub offset: usize,
    pub reason: String,
}

/// Runs the pickle starting at `data[0]`; returns its value and the bytes it used.
pub(crate) fn unpickle(
    data: &[u8],
    arena: &mut Arena,
    hooks: &mut dyn Hooks,
) -> Result<(Item, usize), PickleError> {
    let mut m = Machine {
        data,
        pos: 0,
        stack: Vec::new(),
        marks: Vec::new(),
        memo: HashMap::new(),
        arena,
        hooks,
    };
    loop {
        let start = m.pos;
        let step = m.byte().and_then(|op| m.step(op));
        match step {
            Ok(Some(value)) => return Ok((value, m.pos)),
            Ok(None) => {}
            Err(reason) => {
                return Err(PickleError {
                    offset: start,
                    reason,
                })
            }
        }
    }
}

struct Machine<'a> {
    data: &'a [u8],
    pos: usize,
    stack: Vec<Item>,
    /// Stack lengths at each open MARK.
    marks: Vec<usize>,
    memo: HashMap<u32, Item>,
    arena: &'a mut Arena,
    hooks: &'a mut dyn Hooks,
}

impl Machine<'_> {
    /// Executes one opcode; `Some(value)` at STOP.
    fn step(&mut self, op: u8) -> Result<Option<Item>, String> {
        match op {
            b'.' => return self.pop().map(Some),
            0x80 => self.proto()?,
            0x95 => {
                self.take(8)?;
            }
            b'(' => self.mark()?,
            b'0' => self.pop_or_mark()?,
            b'1' => {
                self.pop_mark()?;
            }
            b'2' => {
                let top = self.top()?.clone();
                self.push(top)?;
            }
            b'p' | b'q' | b'r' | 0x94 => self.put(op)?,
            b'g' | b'h' | b'j' => self.get(op)?,
            b'Q' => {
                let pid = self.pop()?;
                let v = self.hooks.persistent_load(self.arena, pid)?;
                self.push(v)?;
            }
            b'P' => {
                let pid = Item::Str(self.line_str()?.into());
                let v = self.hooks.persistent_load(self.arena, pid)?;
                self.push(v)?;
            }
            b'c' | 0x93 => self.global(op)?,
            b'R' | 0x81 | 0x92 | b'o' | b'i' => self.call(op)?,
            b'b' => self.build()?,
            _ if self.container(op)? => {}
            _ => {
                let v = self.scalar(op)?;
                self.push(v)?;
            }
        }
        Ok(None)
    }

    fn proto(&mut self) -> Result<(), String> {
        let v = self.byte()?;
        if v > 5 {
            return Err(format!("pickle protocol {v} is not supported (at most 5)"));
        }
        Ok(())
    }

    /// Constants: numbers, strings, bytes, None and booleans.
    fn scalar(&mut self, op: u8) -> Result<Item, String> {
        Ok(match op {
            b'N' => Item::None,
            0x88 => Item::Bool(true),
            0x89 => Item::Bool(false),
            b'J' => Item::Int(i32::from_le_bytes(self.array()?) as i64),
            b'K' => Item::Int(self.byte()? as i64),
            b'M' => Item::Int(u16::from_le_bytes(self.array()?) as i64),
            0x8a => {
                let n = self.byte()? as usize;
                long_item(self.take(n)?)
            }
            0x8b => {
                let n = self.len_i32()?;
                long_item(self.take(n)?)
            }
            b'G' => Item::Float(f64::from_be_bytes(self.array()?)),
            b'I' => text_int(&self.line_str()?)?,
            b'L' => {
                let s = self.line_str()?;
                let s = s.strip_suffix('L').unwrap_or(&s);
                Item::Int(s.parse().map_err(|_| format!("bad LONG literal {s:?}"))?)
            }
            b'F' => {
                let s = self.line_str()?;
                Item::Float(s.parse().map_err(|_| format!("bad FLOAT literal {s:?}"))?)
            }
            b'X' => {
                let n = self.len_u32()?;
                self.unicode(n)?
            }
            0x8c => {
                let n = self.byte()? as usize;
                self.unicode(n)?
            }
            0x8d => {
                let n = self.len_u64()?;
                self.unicode(n)?
            }
            b'T' => {
                let n = self.len_i32()?;
                Item::Str(latin1_or_utf8(self.take(n)?).into())
            }
            b'U' => {
                let n = self.byte()? as usize;
                Item::Str(latin1_or_utf8(self.take(n)?).into())
            }
            b'B' => {
                let n = self.len_u32()?;
                Item::Bytes(self.take(n)?.into())
            }
            b'C' => {
                let n = self.byte()? as usize;
                Item::Bytes(self.take(n)?.into())
            }
            0x8e | 0x96 => {
                let n = self.len_u64()?;
                Item::Bytes(self.take(n)?.into())
            }
            0x82..=0x84 => return Err("extension registry opcodes (EXT*) are not supported".into()),
            0x97 | 0x98 => return Err("out-of-band buffers (protocol 5) are not supported".into()),
            _ => return Err(format!("unknown or unsupported opcode 0x{op:02x}")),
        })
    }

    /// Container opcodes; `false` if `op` is not one.
    fn container(&mut self, op: u8) -> Result<bool, String> {
        match op {
            b']' => self.new_node(Node::List(Vec::new()))?,
            b')' => self.new_node(Node::Tuple(Vec::new()))?,
            b'}' => self.new_node(Node::Dict(DictNode::default()))?,
            0x8f => self.new_node(Node::Set(Vec::new()))?,
            b'l' => {
                let items = self.pop_mark()?;
                self.new_node(Node::List(items))?
            }
            b't' => {
                let items = self.pop_mark()?;
                self.new_node(Node::Tuple(items))?
            }
            0x91 => {
                let items = self.pop_mark()?;
                self.new_node(Node::Set(items))?
            }
            0x85..=0x87 => {
                let n = (op - 0x84) as usize;
                let items = self.pop_n(n)?;
                self.new_node(Node::Tuple(items))?
            }
            b'd' => {
                let items = self.pop_mark()?;
                let mut dict = DictNode::default();
                for (k, v) in pairs(items)? {
                    dict.insert(k, v);
                }
                self.new_node(Node::Dict(dict))?
            }
            b'a' => {
                let v = self.pop()?;
                self.extend(vec![v])?
            }
            b'e' | 0x90 => {
                let items = self.pop_mark()?;
                self.extend(items)?
            }
            b's' => {
                let v = self.pop()?;
                let k = self.pop()?;
                self.set_items(vec![(k, v)])?
            }
            b'u' => {
                let items = self.pop_mark()?;
                self.set_items(pairs(items)?)?
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// APPEND(S) / ADDITEMS onto the list, set or object on top of the stack.
    fn extend(&mut self, items: Vec<Item>) -> Result<(), String> {
        let target = self.top_node()?;
        match &mut self.arena.nodes[target] {
            Node::List(v) | Node::Set(v) => v.extend(items),
            Node::Object { items: v, .. } => v.extend(items),
            _ => return Err("APPEND onto an object that is not a list".into()),
        }
        Ok(())
    }

    /// SETITEM(S) onto the dict or object on top of the stack.
    fn set_items(&mut self, kv: Vec<(Item, Item)>) -> Result<(), String> {
        let target = self.top_node()?;
        match &mut self.arena.nodes[target] {
            Node::Dict(d) => kv.into_iter().for_each(|(k, v)| d.insert(k, v)),
            Node::Object { entries, .. } => entries.extend(kv),
            _ => return Err("SETITEM onto an object that is not a dict".into()),
        }
        Ok(())
    }

    fn global(&mut self, op: u8) -> Result<(), String> {
        let (module, name) = if op == b'c' {
            (self.line_str()?, self.line_str()?)
        } else {
            let name = self.pop()?;
            let module = self.pop()?;
            match (module, name) {
                (Item::Str(m), Item::Str(n)) => (m.to_string(), n.to_string()),
                _ => return Err("STACK_GLOBAL needs two strings".into()),
            }
        };
        self.new_node(Node::Global {
            module: module.into(),
            name: name.into(),
        })
    }

    /// REDUCE, NEWOBJ, NEWOBJ_EX, OBJ and INST: a call the hooks may rebuild.
    fn call(&mut self, op: u8) -> Result<(), String> {
        let (callable, args) = match op {
            b'R' | 0x81 => {
                let args = self.pop()?;
                (self.pop()?, args)
            }
            0x92 => {
                let _kwargs = self.pop()?;
                let args = self.pop()?;
                (self.pop()?, args)
            }
            b'o' => {
                let mut items = self.pop_mark()?;
                if items.is_empty() {
                    return Err("OBJ without a class".into());
                }
                let cls = items.remove(0);
                (cls, self.arena.push(Node::Tuple(items))?)
            }
            _ => {
                let (module, name) = (self.line_str()?, self.line_str()?);
                let items = self.pop_mark()?;
                let cls = self.arena.push(Node::Global {
                    module: module.into(),
                    name: name.into(),
                })?;
                (cls, self.arena.push(Node::Tuple(items))?)
            }
        };
        let result = match self.arena.global(&callable) {
            Some((module, name)) => match self.hooks.reduce(self.arena, &module, &name, &args)? {
                Some(v) => v,
                None => self.opaque(format!("{module}.{name}"), args)?,
            },
            None => self.opaque("<object>".into(), args)?,
        };
        self.push(result)
    }

    fn opaque(&mut self, class: String, args: Item) -> Result<Item, String> {
        self.arena.push(Node::Object {
            class,
            args,
            state: None,
            items: Vec::new(),
            entries: Vec::new(),
        })
    }

    /// BUILD: an object's state. Kept for opaque objects; ignored elsewhere
    /// (an OrderedDict's `_metadata`, a tensor's Python attributes).
    fn build(&mut self) -> Result<(), String> {
        let state = self.pop()?;
        let target = self.top()?.clone();
        if let Item::Node(id) = target {
            if let Some(Node::Object { state: s, .. }) = self.arena.nodes.get_mut(id) {
                *s = Some(state);
            }
        }
        Ok(())
    }

    fn put(&mut self, op: u8) -> Result<(), String> {
        let index = match op {
            b'q' => self.byte()? as u32,
            b'r' => u32::from_le_bytes(self.array()?),
            b'p' => self.line_index()?,
            _ => u32::try_from(self.memo.len()).map_err(|_| "memo too large".to_string())?,
        };
        if self.memo.len() >= LIMITS.memo && !self.memo.contains_key(&index) {
            return Err(format!("more than {} memo entries", LIMITS.memo));
        }
        let top = self.top()?.clone();
        self.memo.insert(index, top);
        Ok(())
    }

    fn get(&mut self, op: u8) -> Result<(), String> {
        let index = match op {
            b'h' => self.byte()? as u32,
            b'j' => u32::from_le_bytes(self.array()?),
            _ => self.line_index()?,
        };
        let v = self
            .memo
            .get(&index)
            .cloned()
            .ok_or_else(|| format!("memo entry {index} was never stored"))?;
        self.push(v)
    }

    fn new_node(&mut self, node: Node) -> Result<(), String> {
        let item = self.arena.push(node)?;
        self.push(item)
    }

    fn push(&mut self, item: Item) -> Result<(), String> {
        if self.stack.len() >= LIMITS.stack {
            return Err(format!("stack deeper than {} items", LIMITS.stack));
        }
        self.stack.push(item);
        Ok(())
    }

    /// Pops from the items above the last MARK (like Python's unpickler).
    fn pop(&mut self) -> Result<Item, String> {
        let floor = self.marks.last().copied().unwrap_or(0);
        if self.stack.len() <= floor {
            return Err("stack underflow".into());
        }
        self.stack.pop().ok_or_else(|| "stack underflow".into())
    }

    fn pop_n(&mut self, n: usize) -> Result<Vec<Item>, String> {
        let floor = self.marks.last().copied().unwrap_or(0);
        if self.stack.len() < floor + n {
            return Err("stack underflow".into());
        }
        Ok(self.stack.split_off(self.stack.len() - n))
    }

    fn top(&self) -> Result<&Item, String> {
        let floor = self.marks.last().copied().unwrap_or(0);
        if self.stack.len() <= floor {
            return Err("stack underflow".into());
        }
        self.stack.last().ok_or_else(|| "stack underflow".into())
    }

    fn top_node(&self) -> Result<NodeId, String> {
        match self.top()? {
            Item::Node(id) => Ok(*id),
            _ => Err("the target of the opcode is not a container".into()),
        }
    }

    fn mark(&mut self) -> Result<(), String> {
        if self.marks.len() >= LIMITS.marks {
            return Err(format!("more than {} open MARKs", LIMITS.marks));
        }
        self.marks.push(self.stack.len());
        Ok(())
    }

    fn pop_mark(&mut self) -> Result<Vec<Item>, String> {
        let at = self.marks.pop().ok_or("no MARK to pop to")?;
        Ok(self.stack.split_off(at.min(self.stack.len())))
    }

    fn pop_or_mark(&mut self) -> Result<(), String> {
        let floor = self.marks.last().copied().unwrap_or(0);
        if self.stack.len() > floor {
            self.stack.pop();
            Ok(())
        } else {
            self.pop_mark().map(|_| ())
        }
    }

    fn byte(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], String> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn take(&mut self, n: usize) -> Result<&[u8], String> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.data.len())
            .ok_or_else(|| format!("truncated: {n} more bytes needed"))?;
        let s = &self.data[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn len_u32(&mut self) -> Result<usize, String> {
        Ok(u32::from_le_bytes(self.array()?) as usize)
    }

    fn len_i32(&mut self) -> Result<usize, String> {
        let n = i32::from_le_bytes(self.array()?);
        usize::try_from(n).map_err(|_| format!("negative length {n}"))
    }

    fn len_u64(&mut self) -> Result<usize, String> {
        let n = u64::from_le_bytes(self.array()?);
        usize::try_from(n).map_err(|_| format!("length {n} too large"))
    }

    fn unicode(&mut self, n: usize) -> Result<Item, String> {
        let bytes = self.take(n)?;
        let s = std::str::from_utf8(bytes).map_err(|_| "string is not valid UTF-8".to_string())?;
        Ok(Item::Str(s.into()))
    }

    /// A newline-terminated text argument (at most 4096 bytes).
    fn line_str(&mut self) -> Result<String, String> {
        let rest = &self.data[self.pos..];
        let n = rest
            .iter()
            .take(4096)
            .position(|&b| b == b'\n')
            .ok_or("text argument without a newline")?;
        let s = latin1_or_utf8(&rest[..n]);
        self.pos += n + 1;
        Ok(s)
    }

    fn line_index(&mut self) -> Result<u32, String> {
        let s = self.line_str()?;
        s.trim()
            .parse()
            .map_err(|_| format!("bad memo index {s:?}"))
    }
}

/// Key/value pairs from a flat list (SETITEMS, DICT).
fn pairs(items: Vec<Item>) -> Result<Vec<(Item, Item)>, String> {
    if !items.len().is_multiple_of(2) {
        return Err("odd number of items for a dict".into());
    }
    let mut it = items.into_iter();
    let mut out = Vec::new();
    while let (Some(k), Some(v)) = (it.next(), it.next()) {
        out.push((k, v));
    }
    Ok(out)
}

/// LONG1/LONG4 bytes (little-endian two's complement) as an item.
fn long_item(bytes: &[u8]) -> Item {
    let mut b = bytes.to_vec();
    // Drop sign-extension bytes that carry no information.
    while b.len() > 1 {
        let (last, prev) = (b[b.len() - 1], b[b.len() - 2]);
        if (last == 0 && prev < 0x80) || (last == 0xff && prev >= 0x80) {
            b.pop();
        } else {
            break;
        }
    }
    if b.len() <= 8 {
        let fill = if b.last().is_some_and(|&x| x >= 0x80) {
            0xff
        } else {
            0
        };
        let mut full = [fill; 8];
        full[..b.len()].copy_from_slice(&b);
        Item::Int(i64::from_le_bytes(full))
    } else {
        Item::BigInt(b.into())
    }
}

/// The protocol-0 INT literal: `01`/`00` are booleans.
fn text_int(s: &str) -> Result<Item, String> {
    match s {
        "01" => Ok(Item::Bool(true)),
        "00" => Ok(Item::Bool(false)),
        _ => s
            .parse()
            .map(Item::Int)
            .map_err(|_| format!("bad INT literal {s:?}")),
    }
}

/// Python 2 byte strings: UTF-8 when valid, else Latin-1.
fn latin1_or_utf8(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(s) => s.to_string(),
        Err(_) => bytes.iter().map(|&b| b as char).collect(),
    }
}
