//! What `torch.save` puts in its pickles: persistent ids naming storages,
//! the tensor and parameter rebuild functions, and the few Python builtins a
//! checkpoint uses (OrderedDict, set, bytes through `_codecs.encode`).
use std::collections::BTreeMap;

use super::pickle::{Arena, DictNode, Hooks, Item, Node, StorageRef, TensorNode};
use super::DType;

/// A storage the pickle declared: what the container must then provide.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct StorageDecl {
    pub dtype: DType,
    pub numel: usize,
}

/// Largest tensor rank accepted.
const MAX_RANK: usize = 64;

/// The hooks of both container formats; `declared` collects the storages.
#[derive(Debug, Default)]
pub(crate) struct TorchHooks {
    pub declared: BTreeMap<String, StorageDecl>,
}

impl Hooks for TorchHooks {
    /// `('storage', torch.<T>Storage, key, location, numel[, view])`.
    fn persistent_load(&mut self, arena: &mut Arena, pid: Item) -> Result<Item, String> {
        let fields = arena
            .sequence(&pid)
            .ok_or("persistent id is not a tuple")?
            .to_vec();
        match fields.first() {
            Some(Item::Str(s)) if &**s == "storage" => {}
            Some(Item::Str(s)) if &**s == "module" => {
                // Legacy files of whole modules carry their source: keep opaque.
                return arena.push(Node::Object {
                    class: "torch.nn.Module source".into(),
                    args: Item::None,
                    state: None,
                    items: Vec::new(),
                    entries: Vec::new(),
                });
            }
            _ => return Err("persistent id is not a storage".into()),
        }
        if fields.len() != 5 && fields.len() != 6 {
            return Err(format!(
                "storage id has {} fields, not 5 or 6",
                fields.len()
            ));
        }
        let dtype = storage_dtype(arena, &fields[1])?;
        let key = string(&fields[2]).ok_or("storage key is not a string")?;
        let numel = count(&fields[4]).ok_or("storage size is not a count")?;
        self.declare(&key, dtype, numel)?;
        let (base, len) = match fields.get(5) {
            None | Some(Item::None) => (0, numel),
            Some(view) => legacy_view(arena, view, numel)?,
        };
        arena.push(Node::Storage(StorageRef {
            key,
            dtype,
            base,
            len,
        }))
    }

    fn reduce(
        &mut self,
        arena: &mut Arena,
        module: &str,
        name: &str,
        args: &Item,
    ) -> Result<Option<Item>, String> {
        let args_v = || arena_args(arena, args);
        match (module, name) {
            ("torch._utils", "_rebuild_tensor_v2" | "_rebuild_tensor") => {
                let t = rebuild_tensor(arena, &args_v()?)?;
                arena.push(Node::Tensor(t)).map(Some)
            }
            ("torch._utils", "_rebuild_parameter" | "_rebuild_parameter_with_state") => {
                match args_v()?.first() {
                    Some(t @ Item::Node(id))
                        if matches!(arena.nodes.get(*id), Some(Node::Tensor(_))) =>
                    {
                        Ok(Some(t.clone()))
                    }
                    _ => Err(format!("{name}: its data is not a tensor")),
                }
            }
            ("torch._tensor", "_rebuild_from_type_v2") => {
                let a = args_v()?;
                let (Some(func), Some(inner)) = (a.first(), a.get(2)) else {
                    return Err("_rebuild_from_type_v2 needs (func, type, args, state)".into());
                };
                match arena.global(func) {
                    Some((m, n)) if &*m != module || &*n != name => {
                        self.reduce(arena, &m, &n, inner)
                    }
                    _ => Ok(None),
                }
            }
            ("collections", "OrderedDict") => ordered_dict(arena, &args_v()?).map(Some),
            ("builtins" | "__builtin__", "set" | "frozenset") => {
                let a = args_v()?;
                let items = match a.first() {
                    Some(seq) => arena.sequence(seq).ok_or("set of a non-list")?.to_vec(),
                    None => Vec::new(),
                };
                arena.push(Node::Set(items)).map(Some)
            }
            ("_codecs", "encode") => match args_v()?.first() {
                Some(Item::Str(s)) => Ok(Some(Item::Bytes(
                    s.chars().map(|c| c as u32 as u8).collect::<Vec<_>>().into(),
                ))),
                _ => Ok(None),
            },
            _ => Ok(None),
        }
    }
}

impl TorchHooks {
    fn declare(&mut self, key: &str, dtype: DType, numel: usize) -> Result<(), String> {
        let decl = StorageDecl { dtype, numel };
        match self.declared.get(key) {
            Some(d) if *d != decl => Err(format!(
                "storage '{key}' is declared twice, as {} x {} and {} x {}",
                d.numel, d.dtype, numel, dtype
            )),
            Some(_) => Ok(()),
            None => {
                self.declared.insert(key.to_string(), decl);
                Ok(())
            }
        }
    }
}

fn arena_args(arena: &Arena, args: &Item) -> Result<Vec<Item>, String> {
    arena
        .sequence(args)
        .map(<[Item]>::to_vec)
        .ok_or_else(|| "call arguments are not a tuple".to_string())
}

/// The element type of a `torch.<T>Storage` class item.
fn storage_dtype(arena: &Arena, item: &Item) -> Result<DType, String> {
    let (module, name) = arena
        .global(item)
        .ok_or("storage type is not a class name")?;
    if &*module != "torch" {
        return Err(format!("unknown storage type {module}.{name}"));
    }
    DType::from_storage_class(&name).ok_or_else(|| format!("unsupported storage type torch.{name}"))
}

/// A legacy storage view `(view_key, offset, size)` of a storage of `numel` elements.
fn legacy_view(arena: &Arena, view: &Item, numel: usize) -> Result<(usize, usize), String> {
    let v = arena.sequence(view).ok_or("storage view is not a tuple")?;
    let (Some(off), Some(len)) = (v.get(1).and_then(count), v.get(2).and_then(count)) else {
        return Err("storage view needs (key, offset, size)".into());
    };
    if off.checked_add(len).is_none_or(|e| e > numel) {
        return Err(format!(
            "storage view {off}..+{len} exceeds its {numel} elements"
        ));
    }
    Ok((off, len))
}

/// `_rebuild_tensor_v2(storage, offset, size, stride, ...)`.
fn rebuild_tensor(arena: &Arena, a: &[Item]) -> Result<TensorNode, String> {
    if a.len() < 4 {
        return Err("tensor rebuild needs (storage, offset, size, stride)".into());
    }
    let storage = match arena.node(&a[0]) {
        Some(Node::Storage(s)) => s.clone(),
        _ => return Err("tensor rebuilt from something that is not a storage".into()),
    };
    let offset = count(&a[1]).ok_or("tensor storage offset is not a count")?;
    let dims = |item: &Item, what: &str| -> Result<Vec<usize>, String> {
        let seq = arena
            .sequence(item)
            .ok_or_else(|| format!("tensor {what} is not a tuple"))?;
        if seq.len() > MAX_RANK {
            return Err(format!("tensor {what} has more than {MAX_RANK} dimensions"));
        }
        seq.iter()
            .map(|d| count(d).ok_or_else(|| format!("tensor {what} holds a non-count")))
            .collect()
    };
    Ok(TensorNode {
        storage,
        offset,
        shape: dims(&a[2], "size")?,
        stride: dims(&a[3], "stride")?,
    })
}

/// `OrderedDict()` or `OrderedDict([(k, v), ...])`.
fn ordered_dict(arena: &mut Arena, a: &[Item]) -> Result<Item, String> {
    let mut dict = DictNode::default();
    if let Some(seq) = a.first() {
        let pairs = arena
            .sequence(seq)
            .ok_or("OrderedDict of a non-list")?
            .to_vec();
        for p in pairs {
            match arena.sequence(&p) {
                Some([k, v]) => dict.insert(k.clone(), v.clone()),
                _ => return Err("OrderedDict item is not a pair".into()),
            }
        }
    }
    arena.push(Node::Dict(dict))
}

fn string(item: &Item) -> Option<String> {
    match item {
        Item::Str(s) => Some(s.to_string()),
        _ => None,
    }
}

fn count(item: &Item) -> Option<usize> {
    match item {
        Item::Int(i) => usize::try_from(*i).ok(),
        _ => None,
    }
}
