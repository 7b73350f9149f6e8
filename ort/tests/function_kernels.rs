//! The kernels of the model-local functions (`ai.tcanet.TapSum`,
//! `LocalAttention`, `WinogradTiles`, `WinogradUntileRelu`) inside the real
//! ONNX Runtime: a one-node
//! model that calls one on its graph inputs, run through `build_session`
//! (which registers the kernels), with good inputs (checked against values
//! worked out apart) and with inputs a hostile model could feed it: rows or
//! key positions outside their tensor, counts, shapes and transforms that
//! do not fit.
//! Each must be an error naming the problem, never a crash.
use std::path::Path;

use ort::value::Tensor;
use prost::Message;
use tcanet_models::onnx::{
    FUNCTION_DOMAIN, FUNCTION_DOMAIN_VERSION, LOCAL_ATTENTION, TAP_SUM, WINOGRAD_TILES,
    WINOGRAD_UNTILE_RELU,
};
use tcanet_models::onnx_proto::{
    data_type, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TypeProto, TypeProtoTensor,
    ValueInfoProto,
};
use tcanet_ort::{build_session, init_ort, SessionSettings};
use tcanet_testkit::pseudo_random;

/// A graph input or output of element type `elem_type` and unknown shape.
fn value(name: &str, elem_type: i32) -> ValueInfoProto {
    ValueInfoProto {
        name: name.into(),
        r#type: Some(TypeProto {
            tensor_type: Some(TypeProtoTensor {
                elem_type,
                shape: None,
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// `y = op(inputs…)` (inputs named and typed as given, output of type
/// `output`), written to `path`.
fn write_call_model(path: &Path, op: &str, inputs: &[(&str, i32)], output: i32) {
    let node = NodeProto {
        input: inputs.iter().map(|(n, _)| n.to_string()).collect(),
        output: vec!["y".into()],
        name: "call".into(),
        op_type: op.into(),
        domain: FUNCTION_DOMAIN.into(),
        ..Default::default()
    };
    let graph = GraphProto {
        node: vec![node],
        name: op.into(),
        input: inputs.iter().map(|&(n, t)| value(n, t)).collect(),
        output: vec![value("y", output)],
        ..Default::default()
    };
    let model = ModelProto {
        ir_version: 10,
        graph: Some(graph),
        opset_import: vec![
            OperatorSetIdProto {
                domain: String::new(),
                version: 17,
            },
            OperatorSetIdProto {
                domain: FUNCTION_DOMAIN.into(),
                version: FUNCTION_DOMAIN_VERSION,
            },
        ],
        ..Default::default()
    };
    std::fs::write(path, model.encode_to_vec()).unwrap();
}

/// A session with the project's kernels, on 2 threads.
fn session(path: &Path) -> Result<ort::session::Session, String> {
    let settings = SessionSettings {
        intra_threads: Some(2),
        ..SessionSettings::default()
    };
    build_session(path, &settings)
        .map(|s| s.session)
        .map_err(|e| e.to_string())
}

/// The float32 output `y` of a run.
fn output(out: &ort::session::SessionOutputs) -> Result<Vec<f32>, String> {
    let (_, y) = out["y"]
        .try_extract_tensor::<f32>()
        .map_err(|e| e.to_string())?;
    Ok(y.to_vec())
}

/// Runs the model on `table` `[1, 2, 3, 2]` (2 groups of 3 rows of 2
/// channels), the given rows `[1, M, 1]` and weights `[M/6, 1, 6]`, and
/// `shape`.
fn run(path: &Path, rows: &[i64], weights: &[f32], shape: &[i64]) -> Result<Vec<f32>, String> {
    let mut session = session(path)?;
    // Row r, group g, channel i holds 100·g + 10·r + i.
    let table: Vec<f32> = (0..12)
        .map(|at| (100 * (at / 6) + 10 * (at / 2 % 3) + at % 2) as f32)
        .collect();
    let inputs = ort::inputs![
        "table" => Tensor::from_array(([1usize, 2, 3, 2], table)).unwrap(),
        "rows" => Tensor::from_array(([1usize, rows.len(), 1], rows.to_vec())).unwrap(),
        "weights" => Tensor::from_array(([weights.len() / 6, 1, 6], weights.to_vec())).unwrap(),
        "shape" => Tensor::from_array(([shape.len()], shape.to_vec())).unwrap(),
    ];
    let out = session.run(inputs).map_err(|e| e.to_string())?;
    output(&out)
}

#[test]
fn tap_sum_runs_in_onnx_runtime_and_refuses_what_does_not_fit() {
    init_ort(None).expect("ONNX Runtime of the project venv");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tap_sum.onnx");
    let (float, int) = (data_type::FLOAT, data_type::INT64);
    let inputs = [
        ("table", float),
        ("rows", int),
        ("weights", float),
        ("shape", int),
    ];
    write_call_model(&path, TAP_SUM, &inputs, float);

    // Two outputs: rows 0,1,2,0,1,2 weighted 1..6; rows 2,2,2,2,2,−1 (−1 =
    // row 2) weighted −1 each (a negative sum: ReLU gives 0).
    let rows = [0, 1, 2, 0, 1, 2, 2, 2, 2, 2, 2, -1];
    let weights = [
        1.0, 2.0, 3.0, 4.0, 5.0, 6.0, -1.0, -1.0, -1.0, -1.0, -1.0, -1.0,
    ];
    let y = run(&path, &rows, &weights, &[2, -1]).unwrap();
    // Channel (g, i) of row r is 100g + 10r + i; Σ w·r over rows 0,1,2,0,1,2
    // with w = 1..6 is 10·(2 + 3·2 + 5 + 2·6) = 250, Σ w = 21.
    let want = |g: f32, i: f32| 21.0 * (100.0 * g + i) + 250.0;
    assert_eq!(
        y,
        [
            want(0., 0.),
            want(0., 1.),
            want(1., 0.),
            want(1., 1.),
            0.0,
            0.0,
            0.0,
            0.0
        ]
    );

    let refused = [
        (
            &[0, 1, 2, 3, 0, 0][..],
            &[1.0; 6][..],
            &[1, -1][..],
            "row index 3",
        ),
        (&[0, 1, 2, 0, 0, -4], &[1.0; 6], &[1, -1], "row index -4"),
        (&[0, 1, 2, 0, 1], &[1.0; 6], &[1, -1], "not a multiple of 6"),
        (
            &[0, 1, 2, 0, 1, 2],
            &[1.0; 6],
            &[3, -1],
            "cannot hold 4 values",
        ),
        (&[0, 1, 2, 0, 1, 2], &[1.0; 6], &[-1, -1], "cannot hold"),
    ];
    for (rows, weights, shape, needle) in refused {
        let err = run(&path, rows, weights, shape).unwrap_err();
        assert!(
            err.contains("TapSum") && err.contains(needle),
            "{needle}: {err}"
        );
    }
}

/// One `LocalAttention` call: query, key and value of shape `qkv`, the
/// window's index and mask of shape `window`.
struct Attention {
    qkv: [usize; 4],
    key_shape: [usize; 4],
    q: Vec<f32>,
    k: Vec<f32>,
    v: Vec<f32>,
    window: [usize; 2],
    index: Vec<i64>,
    mask: Vec<f32>,
}

impl Attention {
    /// B 2, 2 heads, T 12, hd 64, w 9: windows clamped at both ends, each
    /// repeat masked with −inf (as the exporter builds them), one position
    /// given from the end.
    fn new() -> Self {
        let (t, w) = (12i64, 9i64);
        let mut index = Vec::new();
        let mut mask = Vec::new();
        for step in 0..t {
            let keys: Vec<i64> = (0..w).map(|m| (step + m - w / 2).clamp(0, t - 1)).collect();
            for m in 0..w as usize {
                let repeat = m > 0 && keys[m] == keys[m - 1];
                mask.push(if repeat { f32::NEG_INFINITY } else { 0.0 });
                index.push(keys[m]);
            }
        }
        index[5 * 9 + 4] -= t;
        let n = 2 * 2 * 12 * 64;
        Self {
            qkv: [2, 2, 12, 64],
            key_shape: [2, 2, 12, 64],
            q: pseudo_random(n, 1),
            k: pseudo_random(n, 2),
            v: pseudo_random(n, 3),
            window: [12, 9],
            index,
            mask,
        }
    }

    /// softmax(q · k[index] + mask) · v[index] in f64, query by query.
    fn expected(&self) -> Vec<f32> {
        let [b, h, t, d] = self.qkv;
        let w = self.window[1];
        let mut out = Vec::new();
        for query in 0..b * h * t {
            let (seq, step) = (query / t, query % t);
            let key = |m: usize| seq * t + self.index[step * w + m].rem_euclid(t as i64) as usize;
            let scores: Vec<f64> = (0..w)
                .map(|m| {
                    let dot: f64 = (0..d)
                        .map(|c| self.q[query * d + c] as f64 * self.k[key(m) * d + c] as f64)
                        .sum();
                    dot + self.mask[step * w + m] as f64
                })
                .collect();
            let e: Vec<f64> = scores.iter().map(|s| s.exp()).collect();
            let sum: f64 = e.iter().sum();
            for c in 0..d {
                let y: f64 = (0..w).map(|m| e[m] * self.v[key(m) * d + c] as f64).sum();
                out.push((y / sum) as f32);
            }
        }
        out
    }

    fn run(&self, path: &Path) -> Result<Vec<f32>, String> {
        let mut session = session(path)?;
        let f = |shape: [usize; 4], x: &Vec<f32>| Tensor::from_array((shape, x.clone())).unwrap();
        let inputs = ort::inputs![
            "query" => f(self.qkv, &self.q),
            "key" => f(self.key_shape, &self.k),
            "value" => f(self.qkv, &self.v),
            "window_index" => Tensor::from_array((self.window, self.index.clone())).unwrap(),
            "window_mask" => Tensor::from_array((self.window, self.mask.clone())).unwrap(),
        ];
        let out = session.run(inputs).map_err(|e| e.to_string())?;
        output(&out)
    }
}

#[test]
fn local_attention_runs_in_onnx_runtime_and_refuses_what_does_not_fit() {
    init_ort(None).expect("ONNX Runtime of the project venv");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("local_attention.onnx");
    let (float, int) = (data_type::FLOAT, data_type::INT64);
    let inputs = [
        ("query", float),
        ("key", float),
        ("value", float),
        ("window_index", int),
        ("window_mask", float),
    ];
    write_call_model(&path, LOCAL_ATTENTION, &inputs, float);

    let good = Attention::new();
    let y = good.run(&path).unwrap();
    let want = good.expected();
    assert_eq!(y.len(), want.len());
    let worst = y
        .iter()
        .zip(&want)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    assert!(worst <= 1e-5, "max |diff| {worst}");

    let mut refused = Vec::new();
    for bad in [12, -13] {
        let mut a = Attention::new();
        a.index[7] = bad;
        refused.push((
            a,
            format!("key position {bad} is outside a sequence of 12 steps"),
        ));
    }
    let mut a = Attention::new();
    a.key_shape = [2, 2, 6, 128];
    refused.push((a, "key has shape [2, 2, 6, 128]".into()));
    let mut a = Attention::new();
    a.window = [9, 12];
    refused.push((a, "window_index has shape [9, 12]".into()));
    let mut a = Attention::new();
    a.mask.truncate(12 * 8);
    a.window = [12, 8];
    a.index.truncate(12 * 8);
    a.key_shape = [4, 1, 12, 64];
    refused.push((a, "key has shape [4, 1, 12, 64]".into()));
    for (attention, needle) in refused {
        let err = attention.run(&path).unwrap_err();
        assert!(
            err.contains("LocalAttention") && err.contains(&needle),
            "{needle}: {err}"
        );
    }
}

/// Bᵀ of Winograd F(2, 3).
const TILES_F2: [f32; 16] = [
    1., 0., -1., 0., 0., 1., 1., 0., 0., -1., 1., 0., 0., 1., 0., -1.,
];
/// Aᵀ of Winograd F(2, 3).
const UNTILE_F2: [f32; 8] = [1., 1., 1., 0., 0., 1., -1., -1.];

/// Runs a one-node `WinogradTiles` model on `x` of `shape` with `transform`
/// `[n, n]`.
fn run_tiles(
    path: &Path,
    shape: [usize; 4],
    x: &[f32],
    transform: &[f32],
    n: usize,
) -> Result<Vec<f32>, String> {
    let mut session = session(path)?;
    let inputs = ort::inputs![
        "x" => Tensor::from_array((shape, x.to_vec())).unwrap(),
        "transform" => Tensor::from_array(([n, transform.len() / n], transform.to_vec())).unwrap(),
    ];
    let out = session.run(inputs).map_err(|e| e.to_string())?;
    output(&out)
}

/// Runs a one-node `WinogradUntileRelu` model on `products` `[1 group, 4
/// points, 1 batch, 2 tiles, 1 channel]`.
fn run_untile(
    path: &Path,
    products: &[f32],
    transform: ([usize; 2], &[f32]),
    bias: &[f32],
    steps: i64,
) -> Result<Vec<f32>, String> {
    let mut session = session(path)?;
    let inputs = ort::inputs![
        "products" => Tensor::from_array(([1usize, 4, 1, 2, 1], products.to_vec())).unwrap(),
        "transform" => Tensor::from_array((transform.0, transform.1.to_vec())).unwrap(),
        "bias" => Tensor::from_array(([bias.len()], bias.to_vec())).unwrap(),
        "steps" => Tensor::from_array(([1usize], vec![steps])).unwrap(),
    ];
    let out = session.run(inputs).map_err(|e| e.to_string())?;
    output(&out)
}

#[test]
fn winograd_tiles_and_untiling_run_in_onnx_runtime_and_refuse_what_does_not_fit() {
    init_ort(None).expect("ONNX Runtime of the project venv");
    let dir = tempfile::tempdir().unwrap();
    let float = data_type::FLOAT;
    let tiles = dir.path().join("tiles.onnx");
    write_call_model(
        &tiles,
        WINOGRAD_TILES,
        &[("x", float), ("transform", float)],
        float,
    );
    let untile = dir.path().join("untile.onnx");
    let inputs = [
        ("products", float),
        ("transform", float),
        ("bias", float),
        ("steps", data_type::INT64),
    ];
    write_call_model(&untile, WINOGRAD_UNTILE_RELU, &inputs, float);

    // x [1, T 5, 2 groups, 2 channels]: step t, group g, channel i holds
    // 100g + 10i + t + 1. F(2, 3) tile p reads steps 2p − 1 .. 2p + 2
    // (zero outside 0..5): d0 − d2, d1 + d2, d2 − d1, d1 − d3.
    let x: Vec<f32> = (0..20)
        .map(|at| (100 * (at / 2 % 2) + 10 * (at % 2) + at / 4 + 1) as f32)
        .collect();
    let v = run_tiles(&tiles, [1, 5, 2, 2], &x, &TILES_F2, 4).unwrap();
    assert_eq!(v.len(), 2 * 4 * 3 * 2);
    let step = |g: usize, i: usize, t: i64| {
        if (0..5).contains(&t) {
            (100 * g + 10 * i) as f32 + t as f32 + 1.0
        } else {
            0.0
        }
    };
    for (at, &got) in v.iter().enumerate() {
        let (i, p, xi, g) = (at % 2, at / 2 % 3, at / 6 % 4, at / 24);
        let d = |j: i64| step(g, i, 2 * p as i64 + j - 1);
        let want = [d(0) - d(2), d(1) + d(2), d(2) - d(1), d(1) - d(3)][xi];
        assert_eq!(got, want, "group {g} point {xi} tile {p} channel {i}");
    }

    // Untiling: products [1 group, 4 points, 1 batch, 2 tiles, 1 channel]; step
    // 2p is m0 + m1 + m2, step 2p + 1 is m1 − m2 − m3, plus the bias, ReLU;
    // T 3 drops the last tile's second step.
    let products = [1., 2., 3., 4., 5., 6., 7., 8.];
    let f2 = ([2, 4], &UNTILE_F2[..]);
    let y = run_untile(&untile, &products, f2, &[0.5], 3).unwrap();
    assert_eq!(y, [1. + 3. + 5. + 0.5, 0.0, 2. + 4. + 6. + 0.5]);

    let refused = [
        run_tiles(&tiles, [1, 5, 2, 2], &x, &TILES_F2[..8], 4),
        run_tiles(&tiles, [1, 5, 2, 2], &x, &[0.0; 121], 11),
        run_untile(&untile, &products, f2, &[0.5], 5),
        run_untile(&untile, &products, f2, &[0.5], 2),
        run_untile(&untile, &products, f2, &[0.5, 0.5], 3),
        run_untile(&untile, &products, ([2, 3], &UNTILE_F2[..6]), &[0.5], 3),
    ];
    let needles = [
        "transform has shape [4, 2]",
        "transform has shape [11, 11]",
        "5 output steps do not fit 2 tiles of 2",
        "2 output steps do not fit 2 tiles of 2",
        "bias has shape [2], not [1 × 1]",
        "transform has shape [2, 3]",
    ];
    for (result, needle) in refused.into_iter().zip(needles) {
        let err = result.unwrap_err();
        assert!(
            err.contains("Winograd") && err.contains(needle),
            "{needle}: {err}"
        );
    }
}
