//! The `ai.tcanet.TapSum` kernel inside the real ONNX Runtime: a one-node
//! model that calls it on its graph inputs, run through `build_session`
//! (which registers the kernel), with good inputs (checked against the sums
//! done by hand) and with inputs a hostile model could feed it: rows
//! outside the table, a row count that is not a multiple of 6, an output
//! shape that does not fit. Each must be an error naming the problem, never
//! a crash.
use std::path::Path;

use ort::value::Tensor;
use prost::Message;
use tcanet_models::onnx::{FUNCTION_DOMAIN, FUNCTION_DOMAIN_VERSION, TAP_SUM};
use tcanet_models::onnx_proto::{
    data_type, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TypeProto, TypeProtoTensor,
    ValueInfoProto,
};
use tcanet_ort::{build_session, init_ort, SessionSettings};

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

/// `y = TapSum(table, rows, weights, shape)`, written to `path`.
fn write_tap_sum_model(path: &Path) {
    let names = ["table", "rows", "weights", "shape"];
    let node = NodeProto {
        input: names.iter().map(|n| n.to_string()).collect(),
        output: vec!["y".into()],
        name: "tap_sum".into(),
        op_type: TAP_SUM.into(),
        domain: FUNCTION_DOMAIN.into(),
        ..Default::default()
    };
    let types = [
        data_type::FLOAT,
        data_type::INT64,
        data_type::FLOAT,
        data_type::INT64,
    ];
    let graph = GraphProto {
        node: vec![node],
        name: "tap_sum".into(),
        input: names.iter().zip(types).map(|(n, t)| value(n, t)).collect(),
        output: vec![value("y", data_type::FLOAT)],
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

/// Runs the model on `table` `[1, 2, 3, 2]` (2 groups of 3 rows of 2
/// channels), the given rows `[1, M, 1]` and weights `[M/6, 1, 6]`, and
/// `shape`.
fn run(path: &Path, rows: &[i64], weights: &[f32], shape: &[i64]) -> Result<Vec<f32>, String> {
    let settings = SessionSettings {
        intra_threads: Some(2),
        ..SessionSettings::default()
    };
    let mut session = build_session(path, &settings)
        .map_err(|e| e.to_string())?
        .session;
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
    let (_, y) = out["y"]
        .try_extract_tensor::<f32>()
        .map_err(|e| e.to_string())?;
    Ok(y.to_vec())
}

#[test]
fn tap_sum_runs_in_onnx_runtime_and_refuses_what_does_not_fit() {
    init_ort(None).expect("ONNX Runtime of the project venv");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tap_sum.onnx");
    write_tap_sum_model(&path);

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
