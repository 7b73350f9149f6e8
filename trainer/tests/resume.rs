//! The library: a run stopped mid-epoch without saving (a simulated kill)
//! and resumed from its last checkpoint ends with exactly the files of an
//! uninterrupted run (CPU): the same bytes of `last`, `best` and the epoch
//! checkpoints, and the same log records.
use std::path::{Path, PathBuf};

use tcanet_cli::Log;
use tcanet_models::calibration::KEY_CALIBRATION;
use tcanet_models::checkpoint::{sha256_hex, Checkpoint, ConfigOverride};
use tcanet_models::data::DatasetPaths;
use tcanet_models::ModelConfig;
use tcanet_trainer::run::RunControl;
use tcanet_trainer::session::{OptionOverrides, Session, Start, TrainRequest};
use tcanet_trainer::synth::{write_dataset, SynthOptions};
use tch::Device;

fn small_cfg() -> ModelConfig {
    ModelConfig {
        hidden_dim: 32,
        ffn_dim: 32,
        se_hidden_dim: 16,
        start_sample_num: 8,
        end_sample_num: 8,
        action_sample_num: 16,
        temporal_scale: 32,
        temporal_interval: 1.0 / 32.0,
        feat_dim: 16,
        ..ModelConfig::tiny()
    }
}

fn request(data: &Path, out: &Path, start: Start) -> TrainRequest {
    TrainRequest {
        paths: DatasetPaths::in_dir(data),
        model: Some(small_cfg()),
        options_file: None,
        overrides: OptionOverrides {
            epochs: Some(2),
            batch_size: Some(4),
            lr: Some(1e-3),
            warmup_iters: Some(2),
            lr_decay_epoch: Some(2),
            seed: Some(11),
            workers: Some(2),
            max_proposals: Some(16),
            save_every: Some(2),
            ..OptionOverrides::default()
        },
        start,
        out: out.to_path_buf(),
        device: Device::Cpu,
        skip_invalid_proposals: false,
        no_validation: false,
        allow_changed_settings: false,
    }
}

fn quiet() -> Log {
    Log {
        quiet: true,
        color: false,
    }
}

fn train(req: &TrainRequest, kill_after: Option<u64>) -> Session {
    let mut s = Session::prepare(req, &quiet()).unwrap();
    let ctl = RunControl {
        kill_after_step: kill_after,
        progress: false,
        log: quiet(),
    };
    s.run(ctl).unwrap();
    s
}

fn sha(p: PathBuf) -> String {
    sha256_hex(&std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display())))
}

/// The log without the run-dependent fields (times, start records).
fn records(dir: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(dir.join("train.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["event"] != "start")
        .map(|mut v| {
            v.as_object_mut().unwrap().remove("elapsed_s");
            v
        })
        .collect()
}

#[test]
fn killed_and_resumed_run_ends_with_the_same_files() {
    tch::set_num_threads(1);
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let synth = SynthOptions {
        train_videos: 12,
        val_videos: 4,
        channels: 16,
        steps: 32,
        proposals_per_video: 20,
        seed: 5,
        ..SynthOptions::default()
    };
    write_dataset(&data, &synth, |_, _| {}).unwrap();
    // 12 videos, 1 held out: 11 in batches of 4 = 3 steps per epoch, 6 in all.
    let full_dir = tmp.path().join("full");
    let full = train(
        &request(&data, &full_dir, Start::Fresh { overwrite: false }),
        None,
    );
    assert_eq!(full.trainer.pos.global_step, 6);
    assert_eq!(full.held_out.as_ref().map(|h| h.len()), Some(1));
    // Killed after step 5 (mid epoch 2): the last save was at step 4 (save_every 2).
    let cut_dir = tmp.path().join("cut");
    let cut = train(
        &request(&data, &cut_dir, Start::Fresh { overwrite: false }),
        Some(5),
    );
    assert_eq!(cut.trainer.pos.global_step, 5);
    let last = cut_dir.join("last.safetensors");
    let saved = Checkpoint::load(&last, &ConfigOverride::Embedded).unwrap();
    assert_eq!((saved.position.global_step, saved.position.epoch), (4, 1));
    assert!(saved.train_state.is_some());
    assert!(
        saved.metadata.contains_key(KEY_CALIBRATION),
        "epoch 1's calibration is carried by later saves"
    );
    let resumed = train(&request(&data, &cut_dir, Start::Resume(last)), None);
    assert_eq!(resumed.trainer.pos, full.trainer.pos);
    for f in [
        "last.safetensors",
        "best.safetensors",
        "epoch-1.safetensors",
        "epoch-2.safetensors",
    ] {
        assert_eq!(sha(full_dir.join(f)), sha(cut_dir.join(f)), "{f}");
    }
    assert_eq!(records(&full_dir), records(&cut_dir));
    // Training moved the weights (the comparison is not vacuous).
    let a = Checkpoint::load(
        &full_dir.join("last.safetensors"),
        &ConfigOverride::Embedded,
    )
    .unwrap();
    let init = tcanet_trainer::trainer::Trainer::new(
        &small_cfg(),
        tcanet_trainer::options::TrainOptions {
            seed: 11,
            ..Default::default()
        },
        Device::Cpu,
    );
    let init_w =
        Vec::<f32>::try_from(init.vs.variables()["x_1d_b_f.0.weight"].flatten(0, -1)).unwrap();
    assert!(a.tensors["x_1d_b_f.0.weight"]
        .iter()
        .zip(&init_w)
        .any(|(x, y)| (x - y).abs() > 1e-6));
    check_log(&full_dir);
}

/// Every loss term of every step, a validation and a calibration per
/// epoch, the learning rate of the schedule.
fn check_log(dir: &Path) {
    let lines = records(dir);
    let steps: Vec<_> = lines.iter().filter(|l| l["event"] == "step").collect();
    assert_eq!(steps.len(), 6);
    for s in &steps {
        for key in ["loss", "stage1_se", "stage2_xw", "stage3_iou", "lr"] {
            assert!(s[key].as_f64().unwrap().is_finite(), "{key} in {s}");
        }
    }
    for event in ["validation", "calibration"] {
        assert_eq!(
            lines.iter().filter(|l| l["event"] == event).count(),
            2,
            "{event}"
        );
    }
    let cal = lines.iter().find(|l| l["event"] == "calibration").unwrap();
    assert_eq!(cal["grid"].as_array().unwrap().len(), 5);
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-12 * b.abs();
    let lr = |i: usize| steps[i]["lr"].as_f64().unwrap();
    // Warm-up over the first 2 iterations of epoch 1; epoch 2 decayed to 1e-4.
    assert!(close(
        lr(0),
        1e-3 * 0.5 * ((std::f64::consts::PI).cos() + 1.000001)
    ));
    assert!(close(lr(4), 1e-4));
}
