//! Sharded inference: `tcanet-infer run --shard 0/2` and `--shard 1/2`,
//! joined by `tcanet-infer merge`, give exactly the file of one unsharded run
//! (proposals and detections), through the real binaries and ONNX Runtime.
mod common;

use std::path::Path;

use common::{read_json, run_ok, synth, tool};

/// `tcanet-infer run` on every video of `data`, with the shard flags `extra`.
fn infer(model: &Path, data: &Path, out: &Path, extra: &[&str]) {
    run_ok(
        tool("tcanet-infer")
            .args(["run", "--device", "cpu", "--threads", "1"])
            .arg("--model")
            .arg(model)
            .arg("--data")
            .arg(data)
            .arg("--classifier")
            .arg(data.join("classifier.json"))
            .arg("-o")
            .arg(out)
            .args(extra)
            // A scheduler's variables would shard the unsharded run.
            .env_remove("SLURM_ARRAY_TASK_ID")
            .env_remove("SLURM_ARRAY_TASK_COUNT")
            .env_remove("JOB_COMPLETION_INDEX"),
    );
}

fn merge(parts: &[std::path::PathBuf], out: &Path) {
    run_ok(
        tool("tcanet-infer")
            .arg("merge")
            .args(parts)
            .arg("-o")
            .arg(out),
    );
}

#[test]
fn two_shards_merged_equal_one_run() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let data = dir.join("data");
    // 13 videos: the two shards get 7 and 6.
    synth(
        &data,
        &[
            "--train-videos",
            "8",
            "--val-videos",
            "5",
            "--proposals-per-video",
            "40",
            "--seed",
            "4",
        ],
    );
    let ckpt = dir.join("random.safetensors");
    let model = dir.join("model.onnx");
    run_ok(
        tool("tcanet-export")
            .args(["random-checkpoint", "--preset", "tiny", "-o"])
            .arg(&ckpt),
    );
    run_ok(tool("tcanet-export").arg(&ckpt).arg("-o").arg(&model));

    let whole = dir.join("whole.json");
    infer(&model, &data, &whole, &[]);
    let sharded = dir.join("refined.json");
    infer(&model, &data, &sharded, &["--shard", "0/2"]);
    infer(&model, &data, &sharded, &["--shard", "1/2"]);
    let parts: Vec<_> = (0..2)
        .map(|k| dir.join(format!("refined.shard-{k}-of-2.json")))
        .collect();
    let det_parts: Vec<_> = (0..2)
        .map(|k| dir.join(format!("refined.shard-{k}-of-2.detections.json")))
        .collect();
    for p in parts.iter().chain(&det_parts) {
        assert!(p.is_file(), "{} was not written", p.display());
    }
    // The partials split the videos.
    let n: Vec<usize> = parts
        .iter()
        .map(|p| read_json(p)["results"].as_object().unwrap().len())
        .collect();
    assert_eq!(n, vec![7, 6], "videos per shard");

    let merged = dir.join("merged.json");
    merge(&parts, &merged);
    let merged_dets = dir.join("merged.detections.json");
    merge(&det_parts, &merged_dets);

    let a = without_write_marks(read_json(&whole));
    let b = without_write_marks(read_json(&merged));
    assert_eq!(a["results"].as_object().unwrap().len(), 13);
    assert_eq!(a, b, "merged shards vs one run: proposals");
    assert_eq!(
        without_write_marks(read_json(&dir.join("whole.detections.json"))),
        without_write_marks(read_json(&merged_dets)),
        "merged shards vs one run: detections"
    );
    // Byte for byte too (same videos in the same order, same numbers) up
    // to the run's identity, which each write stamps with its own generation.
    let results_text = |p: &Path| {
        let text = std::fs::read_to_string(p).unwrap();
        text[..text.find(", \"tcanet_run\"").unwrap()].to_string()
    };
    assert_eq!(results_text(&whole), results_text(&merged));
}

/// A file's JSON without what differs between two writes of the same
/// results: `tcanet_run.generation` and `tcanet_run.outputs`.
fn without_write_marks(mut v: serde_json::Value) -> serde_json::Value {
    let run = v["tcanet_run"].as_object_mut().expect("tcanet_run");
    run.remove("generation");
    run.remove("outputs");
    v
}
