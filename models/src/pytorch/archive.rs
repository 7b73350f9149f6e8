//! The two containers of `torch.save`:
//!
//! * zip (the default since PyTorch 1.6): `<name>/data.pkl` is the pickle,
//!   `<name>/data/<key>` holds each storage's raw bytes, `<name>/byteorder`
//!   says `little` or `big` (absent in older files: little). Entries are
//!   stored uncompressed.
//! * legacy (`_use_new_zipfile_serialization=False`): five pickles in a row
//!   (the magic number, the protocol version 1001, a system-info dict, the
//!   object, the sorted list of storage keys), then each listed storage as an
//!   int64 element count followed by its little-endian bytes.
use std::collections::HashMap;
use std::io::{Cursor, Read};
use std::sync::Arc;

use super::pickle::{unpickle, Arena, Item, Node};
use super::torch::{StorageDecl, TorchHooks};
use super::value::freeze;
use super::{Format, ReadProblem, Storage, TorchFile, Value};

/// The legacy format's magic number, as the LONG1 bytes of its pickle.
const LEGACY_MAGIC: [u8; 10] = [0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19];
/// The legacy format's protocol version.
const LEGACY_PROTOCOL: i64 = 1001;

/// Reads a file's bytes in whichever container they are.
pub(crate) fn parse(bytes: &[u8]) -> Result<TorchFile, ReadProblem> {
    if bytes.starts_with(b"PK\x03\x04") || bytes.starts_with(b"PK\x05\x06") {
        parse_zip(bytes)
    } else if bytes.first() == Some(&0x80) {
        parse_legacy(bytes)
    } else {
        Err(ReadProblem::NotPytorch(what_it_is(bytes)))
    }
}

/// A hint at what a file that is not a torch.save file is.
fn what_it_is(bytes: &[u8]) -> String {
    let safetensors = bytes.len() >= 9
        && u64::from_le_bytes(bytes[..8].try_into().unwrap_or([0; 8])) < bytes.len() as u64
        && bytes[8] == b'{';
    if safetensors {
        "it is a safetensors file (already converted?)".into()
    } else if bytes.len() > 262 && &bytes[257..262] == b"ustar" {
        "it is a tar archive (the format of PyTorch before 0.4 is not supported)".into()
    } else if bytes.is_empty() {
        "the file is empty".into()
    } else {
        let head: Vec<String> = bytes.iter().take(8).map(|b| format!("{b:02x}")).collect();
        format!(
            "neither a zip archive nor a legacy torch.save stream (first bytes {})",
            head.join(" ")
        )
    }
}

fn parse_zip(bytes: &[u8]) -> Result<TorchFile, ReadProblem> {
    let zip_err = |e: zip::result::ZipError| ReadProblem::Zip(e.to_string());
    let mut zip = zip::ZipArchive::new(Cursor::new(bytes)).map_err(zip_err)?;
    let names: Vec<String> = zip
        .file_names()
        .map(|n| n.map(|n| n.into_owned()))
        .collect::<Result<_, _>>()
        .map_err(zip_err)?;
    let pkl = names
        .iter()
        .filter(|n| {
            n.strip_suffix("data.pkl")
                .is_some_and(|p| p.is_empty() || (p.ends_with('/') && p.matches('/').count() == 1))
        })
        .min_by_key(|n| n.len())
        .cloned()
        .ok_or_else(|| {
            ReadProblem::NotPytorch(
                "a zip archive without a data.pkl (not written by torch.save)".into(),
            )
        })?;
    let prefix = pkl.trim_end_matches("data.pkl").to_string();
    let big_endian = match read_entry(&mut zip, &format!("{prefix}byteorder"), None) {
        Ok(b) => match b.as_slice() {
            b"little" => false,
            b"big" => true,
            other => {
                let s = String::from_utf8_lossy(other);
                return Err(ReadProblem::Zip(format!(
                    "byteorder record is {s:?}, not little or big"
                )));
            }
        },
        Err(EntryError::Missing) => false,
        Err(EntryError::Bad(e)) => return Err(ReadProblem::Zip(e)),
    };
    let data = read_entry(&mut zip, &pkl, None).map_err(|e| ReadProblem::Zip(e.to_string()))?;
    let mut arena = Arena::default();
    let mut hooks = TorchHooks::default();
    let (root, _) = unpickle(&data, &mut arena, &mut hooks).map_err(|e| ReadProblem::Pickle {
        part: "data.pkl".into(),
        offset: e.offset,
        reason: e.reason,
    })?;
    let mut storages = HashMap::new();
    for (key, decl) in &hooks.declared {
        let name = format!("{prefix}data/{key}");
        let expected = decl.numel.checked_mul(decl.dtype.size());
        let mut raw =
            read_entry(&mut zip, &name, Some(expected)).map_err(|e| ReadProblem::Storage {
                key: key.clone(),
                reason: e.to_string(),
            })?;
        if big_endian {
            raw.chunks_exact_mut(decl.dtype.size())
                .for_each(<[u8]>::reverse);
        }
        storages.insert(key.clone(), storage(key, decl, raw));
    }
    finish(Format::Zip, &arena, &root, &storages)
}

/// Why an archive entry could not be read.
#[derive(Debug)]
enum EntryError {
    Missing,
    Bad(String),
}

impl std::fmt::Display for EntryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EntryError::Missing => f.write_str("its archive entry is missing"),
            EntryError::Bad(s) => f.write_str(s),
        }
    }
}

/// One stored entry's bytes; `expected` is the size it must have.
fn read_entry(
    zip: &mut zip::ZipArchive<Cursor<&[u8]>>,
    name: &str,
    expected: Option<Option<usize>>,
) -> Result<Vec<u8>, EntryError> {
    let mut entry = match zip.by_name(name) {
        Ok(e) => e,
        Err(zip::result::ZipError::FileNotFound) => return Err(EntryError::Missing),
        Err(e) => return Err(EntryError::Bad(format!("{name}: {e}"))),
    };
    if entry.compression() != zip::CompressionMethod::Stored {
        return Err(EntryError::Bad(format!(
            "{name} is compressed ({}); torch.save stores entries uncompressed",
            entry.compression()
        )));
    }
    let size = entry.size();
    if let Some(exp) = expected {
        if exp.is_none_or(|e| e as u64 != size) {
            return Err(EntryError::Bad(format!(
                "{name} holds {size} bytes, not the {} its declaration needs",
                exp.map_or("(overflowing)".to_string(), |e| e.to_string())
            )));
        }
    }
    let mut out = Vec::new();
    // An uncompressed entry cannot be larger than the archive holding it.
    (&mut entry)
        .take(size)
        .read_to_end(&mut out)
        .map_err(|e| EntryError::Bad(format!("{name}: {e}")))?;
    if out.len() as u64 != size {
        return Err(EntryError::Bad(format!("{name} is truncated")));
    }
    Ok(out)
}

fn parse_legacy(bytes: &[u8]) -> Result<TorchFile, ReadProblem> {
    let mut arena = Arena::default();
    let mut pos = 0usize;
    let mut next = |part: &str, hooks: &mut TorchHooks, arena: &mut Arena| {
        let rest = bytes.get(pos..).unwrap_or_default();
        let (v, used) = unpickle(rest, arena, hooks).map_err(|e| ReadProblem::Pickle {
            part: part.into(),
            offset: pos + e.offset,
            reason: e.reason,
        })?;
        pos += used;
        Ok::<_, ReadProblem>(v)
    };
    let mut header = TorchHooks::default();
    let magic = next("magic number", &mut header, &mut arena)?;
    if !matches!(&magic, Item::BigInt(b) if **b == LEGACY_MAGIC) {
        return Err(ReadProblem::NotPytorch(
            "wrong magic number for the legacy format".into(),
        ));
    }
    let version = next("protocol version", &mut header, &mut arena)?;
    if version != Item::Int(LEGACY_PROTOCOL) {
        return Err(ReadProblem::NotPytorch(format!(
            "legacy protocol version {version:?}, expected {LEGACY_PROTOCOL}"
        )));
    }
    let sys_info = next("system info", &mut header, &mut arena)?;
    if !matches!(arena.node(&sys_info), Some(Node::Dict(_))) {
        return Err(ReadProblem::NotPytorch("system info is not a dict".into()));
    }
    let mut hooks = TorchHooks::default();
    let root = next("object", &mut hooks, &mut arena)?;
    let keys_item = next("storage keys", &mut header, &mut arena)?;
    let keys: Vec<String> = match arena.sequence(&keys_item) {
        Some(items) => items
            .iter()
            .map(|k| match k {
                Item::Str(s) => Ok(s.to_string()),
                _ => Err(ReadProblem::Structure(
                    "a storage key is not a string".into(),
                )),
            })
            .collect::<Result<_, _>>()?,
        None => return Err(ReadProblem::Structure("storage keys are not a list".into())),
    };
    let storages = legacy_storages(bytes, pos, &keys, &hooks)?;
    finish(Format::Legacy, &arena, &root, &storages)
}

/// The raw storages after the pickles, in the order of `keys`.
fn legacy_storages(
    bytes: &[u8],
    mut pos: usize,
    keys: &[String],
    hooks: &TorchHooks,
) -> Result<HashMap<String, Arc<Storage>>, ReadProblem> {
    let mut out = HashMap::new();
    for key in keys {
        let bad = |reason: String| ReadProblem::Storage {
            key: key.clone(),
            reason,
        };
        let decl = hooks
            .declared
            .get(key)
            .ok_or_else(|| bad("listed but no tensor declares it".into()))?;
        let head = bytes
            .get(pos..pos.saturating_add(8))
            .filter(|h| h.len() == 8)
            .ok_or_else(|| bad("the file ends before its size".into()))?;
        let numel = i64::from_le_bytes(head.try_into().unwrap_or([0; 8]));
        if usize::try_from(numel).ok() != Some(decl.numel) {
            return Err(bad(format!(
                "holds {numel} elements, its declaration says {}",
                decl.numel
            )));
        }
        let start = pos + 8;
        let len = decl
            .numel
            .checked_mul(decl.dtype.size())
            .filter(|&n| start.checked_add(n).is_some_and(|e| e <= bytes.len()))
            .ok_or_else(|| bad("the file ends inside its data".into()))?;
        out.insert(
            key.clone(),
            storage(key, decl, bytes[start..start + len].to_vec()),
        );
        pos = start + len;
    }
    if let Some(key) = hooks.declared.keys().find(|k| !out.contains_key(*k)) {
        return Err(ReadProblem::Storage {
            key: key.clone(),
            reason: "a tensor uses it but the file does not list it".into(),
        });
    }
    Ok(out)
}

fn storage(key: &str, decl: &StorageDecl, bytes: Vec<u8>) -> Arc<Storage> {
    Arc::new(Storage {
        key: key.to_string(),
        dtype: decl.dtype,
        bytes,
    })
}

fn finish(
    format: Format,
    arena: &Arena,
    root: &Item,
    storages: &HashMap<String, Arc<Storage>>,
) -> Result<TorchFile, ReadProblem> {
    let root: Value = freeze(arena, root, storages).map_err(ReadProblem::Structure)?;
    Ok(TorchFile { format, root })
}
