//! Through the CLI: a training run stopped mid-epoch (`--max-steps`) and
//! continued with `--resume` ends with bit-identical weights (and optimizer
//! state) to an uninterrupted run of the same flags.
mod common;

use std::path::Path;

use common::{run_ok, synth, tool};
use tcanet_models::checkpoint::{Checkpoint, ConfigOverride};

fn read_checkpoint(path: &std::path::Path) -> Checkpoint {
    Checkpoint::load(path, &ConfigOverride::Embedded).unwrap()
}

/// 40 training videos in batches of 8: 5 steps per epoch, 10 in all.
const TRAIN_FLAGS: [&str; 22] = [
    "train",
    "--preset",
    "tiny",
    "--device",
    "cpu",
    "--threads",
    "1",
    "--workers",
    "2",
    "--epochs",
    "2",
    "--batch-size",
    "8",
    "--lr",
    "1e-3",
    "--warmup-iters",
    "3",
    "--lr-decay-epoch",
    "2",
    "--seed",
    "7",
    "--max-proposals",
];

fn train(data: &Path, out: &Path, extra: &[&str]) {
    run_ok(
        tool("tcanet-train")
            .args(TRAIN_FLAGS)
            .args(["16", "--quiet", "--no-validation"])
            .arg("--data")
            .arg(data)
            .arg("--out")
            .arg(out)
            .args(extra),
    );
}

#[test]
fn stopped_mid_epoch_and_resumed_equals_uninterrupted() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    synth(
        &data,
        &[
            "--train-videos",
            "40",
            "--val-videos",
            "4",
            "--proposals-per-video",
            "20",
            "--seed",
            "3",
        ],
    );
    let full = tmp.path().join("full");
    let cut = tmp.path().join("cut");
    train(&data, &full, &[]);
    // Stopped after step 3 of epoch 1's 5.
    train(&data, &cut, &["--max-steps", "3"]);
    let stopped = read_checkpoint(&cut.join("last.safetensors"));
    assert_eq!(
        stopped.position.global_step, 3,
        "the stopped run's checkpoint step"
    );
    assert_eq!(stopped.position.epoch, 0, "stopped within the first epoch");
    train(&data, &cut, &["--resume"]);

    let a = read_checkpoint(&full.join("last.safetensors"));
    let b = read_checkpoint(&cut.join("last.safetensors"));
    assert_eq!((a.position.global_step, a.position.epoch), (10, 2));
    assert_eq!(b.position, a.position);
    assert_eq!(a.config, b.config);
    assert_eq!(
        a.tensors.keys().collect::<Vec<_>>(),
        b.tensors.keys().collect::<Vec<_>>()
    );
    let mut moved = false;
    for (name, va) in &a.tensors {
        let vb = &b.tensors[name];
        assert_eq!(va.len(), vb.len(), "{name}: size");
        let differ = va
            .iter()
            .zip(vb)
            .filter(|(x, y)| x.to_bits() != y.to_bits())
            .count();
        assert_eq!(
            differ,
            0,
            "{name}: {differ} of {} values differ after resume",
            va.len()
        );
        let vs = &stopped.tensors[name];
        moved |= va.iter().zip(vs).any(|(x, y)| x != y);
    }
    assert!(
        moved,
        "steps 4..10 changed no weight: the comparison would be vacuous"
    );
    // The AdamW moments (train state) are identical too.
    let sa = a.train_state.as_ref().expect("a training state");
    let sb = b.train_state.as_ref().expect("a training state");
    assert_eq!(sa.optimizer_steps, sb.optimizer_steps);
    assert_eq!(sa.tensors.len(), sb.tensors.len());
    for (name, (_, va)) in &sa.tensors {
        let vb = &sb.tensors[name].1;
        assert!(
            va.iter().zip(vb).all(|(x, y)| x.to_bits() == y.to_bits()),
            "train state {name} differs after resume"
        );
    }
    // The resumed run logged steps 4..10 only.
    let log = std::fs::read_to_string(cut.join("train.jsonl")).unwrap();
    let steps: Vec<u64> = log
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["event"] == "step")
        .map(|v| v["global_step"].as_u64().unwrap())
        .collect();
    assert_eq!(
        steps,
        (1..=10).collect::<Vec<_>>(),
        "steps logged across both runs"
    );
}
