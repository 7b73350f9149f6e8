//! Tests of the reader on hand-written pickles and on small zip and legacy
//! files assembled here byte by byte, and property tests: no bytes (random,
//! or a valid file mutated) make it panic.
use std::io::Write;
use std::path::Path;

use proptest::prelude::*;

use super::pickle::{unpickle, Arena};
use super::torch::TorchHooks;
use super::value::freeze;
use super::*;

/// Runs one pickle (no storages) and returns its value or the error text.
fn eval(bytes: &[u8]) -> Result<Value, String> {
    let mut arena = Arena::default();
    let mut hooks = TorchHooks::default();
    let (item, _) = unpickle(bytes, &mut arena, &mut hooks).map_err(|e| e.reason)?;
    freeze(&arena, &item, &Default::default())
}

fn s(x: &str) -> Value {
    Value::Str(x.into())
}

#[test]
fn scalars_strings_and_bytes() {
    let p = b"\x80\x02(N\x88\x89K\x05M\x00\x01J\xff\xff\xff\xffG?\xf8\x00\x00\x00\x00\x00\x00\
              X\x03\x00\x00\x00abcC\x02xy\x8a\x01\xff\x8a\x02\xff\x00\x8a\x00t.";
    let v = eval(p).unwrap();
    assert_eq!(
        v,
        Value::Tuple(vec![
            Value::None,
            Value::Bool(true),
            Value::Bool(false),
            Value::Int(5),
            Value::Int(256),
            Value::Int(-1),
            Value::Float(1.5),
            s("abc"),
            Value::Bytes(b"xy".to_vec()),
            Value::Int(-1),
            Value::Int(255),
            Value::Int(0),
        ])
    );
}

#[test]
fn the_legacy_magic_number_is_a_big_int() {
    let mut p = b"\x80\x02\x8a\x0a".to_vec();
    p.extend([
        0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, b'.',
    ]);
    let v = eval(&p).unwrap();
    assert_eq!(
        v,
        Value::BigInt(vec![
            0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19
        ])
    );
}

#[test]
fn memoized_containers_stay_shared_when_mutated_later() {
    // outer = [L, L]; then L.append(7): both entries see it, as in Python.
    let p = b"\x80\x02]q\x00(]q\x01h\x01eh\x01K\x07a0.";
    let l = Value::List(vec![Value::Int(7)]);
    assert_eq!(eval(p).unwrap(), Value::List(vec![l.clone(), l]));
}

#[test]
fn a_list_that_contains_itself_is_a_cycle() {
    let p = b"\x80\x02]q\x00h\x00a.";
    assert_eq!(eval(p).unwrap(), Value::List(vec![Value::Cycle]));
}

#[test]
fn dicts_keep_order_and_a_repeated_key_replaces_its_value() {
    let p = b"\x80\x02}(X\x01\x00\x00\x00bK\x01X\x01\x00\x00\x00aK\x02X\x01\x00\x00\x00bK\x03u.";
    assert_eq!(
        eval(p).unwrap(),
        Value::Dict(vec![(s("b"), Value::Int(3)), (s("a"), Value::Int(2))])
    );
}

#[test]
fn ordered_dict_with_metadata_state() {
    // OrderedDict() filled by SETITEMS, then BUILD with {'_metadata': OrderedDict()}.
    let p = b"\x80\x02ccollections\nOrderedDict\nq\x00)R(X\x01\x00\x00\x00kK\x01u\
              }X\x09\x00\x00\x00_metadatah\x00)Rsb.";
    assert_eq!(eval(p).unwrap(), Value::Dict(vec![(s("k"), Value::Int(1))]));
}

#[test]
fn protocol_4_frames_memoize_and_stack_global() {
    let body = b"\x8c\x0bcollections\x94\x8c\x0bOrderedDict\x94\x93\x94)R\x94h\x03\x85.";
    let mut p = b"\x80\x04\x95".to_vec();
    p.extend((body.len() as u64).to_le_bytes());
    p.extend(body);
    let d = Value::Dict(vec![]);
    assert_eq!(eval(&p).unwrap(), Value::Tuple(vec![d]));
}

#[test]
fn unknown_classes_are_kept_opaque() {
    let p = b"\x80\x02cnumpy\ndtype\nX\x02\x00\x00\x00f4\x85R}b.";
    match eval(p).unwrap() {
        Value::Object(o) => {
            assert_eq!(o.class, "numpy.dtype");
            assert_eq!(o.args, Value::Tuple(vec![s("f4")]));
            assert_eq!(o.state, Some(Value::Dict(vec![])));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn malformed_pickles_are_errors_that_say_why() {
    for (p, why) in [
        (&b"\x80\x02X\x05\x00\x00\x00ab"[..], "truncated"),
        (b"\x80\x02\xff", "opcode 0xff"),
        (b"\x80\x02a", "underflow"),
        (b"\x80\x02h\x05.", "memo entry 5"),
        (b"\x80\x06N.", "protocol 6"),
        (b"\x80\x02N", "truncated"),
        (b"\x80\x02](K\x01K\x02u.", "not a dict"),
        (b"\x80\x02}(K\x01u.", "odd number"),
        (b"\x80\x02(.", "underflow"),
        (b"\x80\x02\x8b\xff\xff\xff\xff.", "negative length"),
        (
            b"\x80\x02\x8d\xff\xff\xff\xff\xff\xff\xff\x7f.",
            "truncated",
        ),
        (b"\x80\x02X\x02\x00\x00\x00\xff\xfe.", "UTF-8"),
        (b"\x80\x02NN\x93.", "STACK_GLOBAL"),
    ] {
        let err = eval(p).unwrap_err();
        assert!(err.contains(why), "{p:?}: {err}");
    }
    // Nesting beyond the limit is an error, not a stack overflow.
    let mut deep = b"\x80\x02".to_vec();
    deep.extend(std::iter::repeat_n(b']', 1000));
    deep.extend(std::iter::repeat_n(b'a', 999));
    deep.push(b'.');
    assert!(eval(&deep).unwrap_err().contains("deeper"));
}

/// Writes pickle opcodes for the test files.
#[derive(Default)]
struct Pickle(Vec<u8>);

impl Pickle {
    fn op(&mut self, bytes: &[u8]) -> &mut Self {
        self.0.extend_from_slice(bytes);
        self
    }
    fn str(&mut self, v: &str) -> &mut Self {
        self.0.push(b'X');
        self.0.extend((v.len() as u32).to_le_bytes());
        self.op(v.as_bytes())
    }
    fn int(&mut self, v: i32) -> &mut Self {
        self.0.push(b'J');
        self.op(&v.to_le_bytes())
    }
    fn global(&mut self, module: &str, name: &str) -> &mut Self {
        self.op(format!("c{module}\n{name}\n").as_bytes())
    }
    fn ints(&mut self, v: &[i32]) -> &mut Self {
        self.op(b"(");
        for &x in v {
            self.int(x);
        }
        self.op(b"t")
    }
    /// `_rebuild_tensor_v2(storage, offset, size, stride, False, OrderedDict())`.
    fn tensor(
        &mut self,
        storage: (&str, &str, i32),
        offset: i32,
        size: &[i32],
        stride: &[i32],
    ) -> &mut Self {
        self.global("torch._utils", "_rebuild_tensor_v2").op(b"((");
        self.str("storage")
            .global("torch", storage.0)
            .str(storage.1)
            .str("cpu")
            .int(storage.2);
        self.op(b"tQ").int(offset).ints(size).ints(stride);
        self.op(b"\x89")
            .global("collections", "OrderedDict")
            .op(b")Rt")
            .op(b"R")
    }
}

/// `{'epoch': 3, 'state_dict': OrderedDict(w=<2x3 view>, b=<f16 [2]>)}`;
/// `w` is storage '0' (7 float32) at offset 1 with strides (1, 2).
fn checkpoint_pickle(legacy_view: bool) -> Vec<u8> {
    let mut p = Pickle::default();
    p.op(b"\x80\x02}(").str("epoch").int(3).str("state_dict");
    p.global("collections", "OrderedDict").op(b")R(");
    p.str("w");
    if legacy_view {
        // Legacy storage view: elements 1..8 of storage '0' (8 elements).
        p.global("torch._utils", "_rebuild_tensor_v2").op(b"((");
        p.str("storage")
            .global("torch", "FloatStorage")
            .str("0")
            .str("cpu")
            .int(8);
        p.op(b"(").str("v").int(1).int(7).op(b"t").op(b"tQ");
        p.int(1)
            .ints(&[2, 3])
            .ints(&[1, 2])
            .op(b"\x89N")
            .op(b"t")
            .op(b"R");
    } else {
        p.tensor(("FloatStorage", "0", 7), 1, &[2, 3], &[1, 2]);
    }
    p.str("b").tensor(("HalfStorage", "1", 2), 0, &[2], &[1]);
    p.op(b"u").op(b"u.");
    p.0
}

fn storage_bytes(big_endian: bool, legacy_view: bool) -> (Vec<u8>, Vec<u8>) {
    let first = if legacy_view { -1.0 } else { 0.0 };
    let w: Vec<f32> = std::iter::once(first)
        .chain((0..7).map(|i| i as f32))
        .collect();
    let w = if legacy_view { &w[..] } else { &w[1..] };
    let f = |x: f32| {
        if big_endian {
            x.to_be_bytes()
        } else {
            x.to_le_bytes()
        }
    };
    let h = |x: f32| {
        let v = half::f16::from_f32(x);
        if big_endian {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    };
    (
        w.iter().flat_map(|&x| f(x)).collect(),
        [0.5, -2.0].iter().flat_map(|&x| h(x)).collect(),
    )
}

fn zip_file(byteorder: Option<&str>, pickle: &[u8], storages: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    let mut z = zip::ZipWriter::new(&mut out);
    let opts =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    z.start_file("ckpt/data.pkl", opts).unwrap();
    z.write_all(pickle).unwrap();
    if let Some(order) = byteorder {
        z.start_file("ckpt/byteorder", opts).unwrap();
        z.write_all(order.as_bytes()).unwrap();
    }
    for (key, bytes) in storages {
        z.start_file(format!("ckpt/data/{key}"), opts).unwrap();
        z.write_all(bytes).unwrap();
    }
    z.finish().unwrap();
    out.into_inner()
}

fn legacy_file(pickle: &[u8], storages: &[(&str, usize, Vec<u8>)]) -> Vec<u8> {
    let mut out = b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19.".to_vec();
    out.extend(b"\x80\x02M\xe9\x03.");
    out.extend(b"\x80\x02}X\x0d\x00\x00\x00little_endian\x88s.");
    out.extend(pickle);
    let mut keys = Pickle::default();
    keys.op(b"\x80\x02(");
    for (k, _, _) in storages {
        keys.str(k);
    }
    out.extend(keys.op(b"l.").0.iter());
    for (_, numel, bytes) in storages {
        out.extend((*numel as i64).to_le_bytes());
        out.extend(bytes);
    }
    out
}

fn valid_zip() -> Vec<u8> {
    let (w, b) = storage_bytes(false, false);
    zip_file(
        Some("little"),
        &checkpoint_pickle(false),
        &[("0", w), ("1", b)],
    )
}

fn valid_legacy() -> Vec<u8> {
    let (w, b) = storage_bytes(false, true);
    legacy_file(&checkpoint_pickle(true), &[("0", 8, w), ("1", 2, b)])
}

fn parse(bytes: &[u8]) -> Result<TorchFile, PytorchError> {
    parse_torch_bytes(Path::new("ckpt.pth"), bytes)
}

/// Checks the tensors of [`checkpoint_pickle`].
fn assert_checkpoint(file: &TorchFile) {
    assert_eq!(file.root.get("epoch"), Some(&Value::Int(3)));
    let sd = file.root.get("state_dict").unwrap();
    let Some(Value::Tensor(w)) = sd.get("w") else {
        panic!("{sd:?}")
    };
    assert_eq!(w.shape(), [2, 3]);
    assert_eq!(w.dtype(), DType::F32);
    assert!(!w.is_contiguous());
    // Element (i, j) is storage[1 + i + 2j] = 1 + i + 2j.
    assert_eq!(w.to_f32(), [1.0, 3.0, 5.0, 2.0, 4.0, 6.0]);
    let Some(Value::Tensor(b)) = sd.get("b") else {
        panic!("{sd:?}")
    };
    assert_eq!((b.dtype(), b.to_f32()), (DType::F16, vec![0.5, -2.0]));
}

#[test]
fn zip_files_are_read_with_strides_offsets_and_both_byte_orders() {
    let f = parse(&valid_zip()).unwrap();
    assert_eq!(f.format, Format::Zip);
    assert_checkpoint(&f);
    let (w, b) = storage_bytes(true, false);
    let big = zip_file(
        Some("big"),
        &checkpoint_pickle(false),
        &[("0", w), ("1", b)],
    );
    assert_checkpoint(&parse(&big).unwrap());
    // Files written before the byteorder record are little-endian.
    let (w, b) = storage_bytes(false, false);
    let old = zip_file(None, &checkpoint_pickle(false), &[("0", w), ("1", b)]);
    assert_checkpoint(&parse(&old).unwrap());
}

#[test]
fn legacy_files_are_read_with_storage_views() {
    let f = parse(&valid_legacy()).unwrap();
    assert_eq!(f.format, Format::Legacy);
    assert_checkpoint(&f);
}

#[test]
fn broken_files_name_the_storage_or_tensor() {
    let err = |bytes: &[u8]| parse(bytes).unwrap_err().to_string();
    let (w, b) = storage_bytes(false, false);
    let e = err(&zip_file(
        Some("little"),
        &checkpoint_pickle(false),
        &[("0", w.clone())],
    ));
    assert!(
        e.starts_with("ckpt.pth: ") && e.contains("storage '1'") && e.contains("missing"),
        "{e}"
    );
    let e = err(&zip_file(
        Some("little"),
        &checkpoint_pickle(false),
        &[("0", w[4..].to_vec()), ("1", b.clone())],
    ));
    assert!(e.contains("storage '0'") && e.contains("24 bytes"), "{e}");
    let e = err(&zip_file(Some("middle"), &checkpoint_pickle(false), &[]));
    assert!(e.contains("byteorder"), "{e}");
    // A view reaching past its storage.
    let mut p = Pickle::default();
    p.op(b"\x80\x02}(")
        .str("w")
        .tensor(("FloatStorage", "0", 4), 2, &[3], &[1])
        .op(b"u.");
    let e = err(&zip_file(None, &p.0, &[("0", vec![0; 16])]));
    assert!(e.contains("[\"w\"]") && e.contains("reach past"), "{e}");
    let mut p = Pickle::default();
    p.op(b"\x80\x02")
        .tensor(("ComplexFloatStorage", "0", 4), 0, &[4], &[1])
        .op(b".");
    let e = err(&zip_file(None, &p.0, &[("0", vec![0; 32])]));
    assert!(
        e.contains("unsupported storage type torch.ComplexFloatStorage"),
        "{e}"
    );
    let legacy = valid_legacy();
    let e = err(&legacy[..legacy.len() - 3]);
    assert!(
        e.contains("storage '1'") && e.contains("ends inside"),
        "{e}"
    );
    assert!(err(b"").contains("empty"));
    assert!(err(b"PK\x03\x04garbage").contains("zip"));
}

fn no_panic(bytes: &[u8]) {
    let _ = parse(bytes);
}

/// The opcodes torch.save emits, to steer random pickles past the first byte.
const OPCODES: &[u8] = b"\x80\x95(012pqr\x94ghjQPc\x93R\x81\x92oib]})\x8fldt\x91\x85\x86\x87aes\x90uN\x88\x89JKM\x8a\x8bGXILFTUBC\x8c\x8d\x8e\x96.";

proptest! {
    #![proptest_config(tcanet_testkit::proptest_config())]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        no_panic(&bytes);
        for head in [&b"PK\x03\x04"[..], b"\x80\x02\x8a\x0a"] {
            no_panic(&[head, &bytes].concat());
        }
    }

    #[test]
    fn random_opcode_streams_never_panic(
        ops in proptest::collection::vec((proptest::sample::select(OPCODES), any::<[u8; 3]>(), 0..4usize), 0..200)
    ) {
        let mut p = b"\x80\x02".to_vec();
        for (op, arg, n) in ops {
            p.push(op);
            p.extend_from_slice(&arg[..n.min(3)]);
        }
        let _ = eval(&p);
        let mut legacy = valid_legacy();
        legacy.truncate(40);
        no_panic(&[legacy, p].concat());
    }

    #[test]
    fn mutated_zip_files_never_panic(
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in any::<prop::sample::Index>(),
        truncate in any::<bool>(),
    ) {
        no_panic(&mutate(valid_zip(), &edits, truncate.then_some(cut)));
    }

    #[test]
    fn mutated_pickles_in_valid_zip_archives_never_panic(
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in any::<prop::sample::Index>(),
        truncate in any::<bool>(),
    ) {
        // The archive's CRCs are right, so the damage reaches the pickle machine.
        let pickle = mutate(checkpoint_pickle(false), &edits, truncate.then_some(cut));
        let (w, b) = storage_bytes(false, false);
        no_panic(&zip_file(Some("little"), &pickle, &[("0", w), ("1", b)]));
    }

    #[test]
    fn mutated_legacy_files_never_panic(
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in any::<prop::sample::Index>(),
        truncate in any::<bool>(),
    ) {
        no_panic(&mutate(valid_legacy(), &edits, truncate.then_some(cut)));
    }
}

fn mutate(
    mut bytes: Vec<u8>,
    edits: &[(prop::sample::Index, u8)],
    cut: Option<prop::sample::Index>,
) -> Vec<u8> {
    for (at, v) in edits {
        let i = at.index(bytes.len());
        bytes[i] = *v;
    }
    if let Some(c) = cut {
        bytes.truncate(c.index(bytes.len()));
    }
    bytes
}
