//! A run killed mid-epoch and resumed ends with exactly the weights of an
//! uninterrupted run (CPU).
use std::path::{Path, PathBuf};
use tcanet_models::checkpoint::{Checkpoint, ConfigOverride};

fn read_checkpoint(path: &std::path::Path) -> Checkpoint {
    Checkpoint::load(path, &ConfigOverride::Embedded).unwrap()
}
use tcanet_models::data::DatasetPaths;
use tcanet_models::ModelConfig;
use tcanet_trainer::dataset::{DataOptions, TrainingData};
use tcanet_trainer::schedule::LrSchedule;
use tcanet_trainer::synth::{write_dataset, SynthOptions};
use tcanet_trainer::train::{RunControl, TrainOptions, Trainer};
use tch::Device;

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("tcanet-resume-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

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

fn opts() -> TrainOptions {
    TrainOptions {
        epochs: 2,
        batch_size: 4,
        schedule: LrSchedule {
            base: 1e-3,
            warmup_iters: 2,
            decay_epoch: 2,
            decay: 0.1,
        },
        seed: 11,
        workers: 2,
        max_proposals: 16,
        save_every: Some(2),
        ..TrainOptions::default()
    }
}

fn run(data: &Path, out: &Path, resume: bool, kill_after: Option<u64>) -> Trainer {
    let cfg = small_cfg();
    let d = DataOptions {
        max_proposals: 16,
        ..DataOptions::default()
    };
    let ds = TrainingData::open(&DatasetPaths::in_dir(data), &d).unwrap();
    let train = ds.split("training", &cfg, &d).unwrap();
    let val = ds.split("validation", &cfg, &d).unwrap();
    let mut tr = Trainer::new(&cfg, opts(), Device::Cpu);
    if resume {
        tr.load(&out.join("last.safetensors"), true).unwrap();
    }
    let ctl = RunControl {
        kill_after_step: kill_after,
        progress: false,
    };
    tr.run(&train, Some(&val), &d, out, ctl).unwrap();
    tr
}

#[test]
fn killed_and_resumed_run_ends_with_the_same_weights() {
    tch::set_num_threads(1);
    let data = tmp("data");
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
    // 12 videos / batch 4 = 3 steps per epoch, 6 in all.
    let full_dir = tmp("full");
    let full = run(&data, &full_dir, false, None);
    assert_eq!(full.pos.global_step, 6);
    // Killed after step 5 (mid epoch 2): the last save was at step 4 (save_every 2).
    let cut_dir = tmp("cut");
    let cut = run(&data, &cut_dir, false, Some(5));
    assert_eq!(cut.pos.global_step, 5);
    let saved = read_checkpoint(&cut_dir.join("last.safetensors"));
    assert_eq!(saved.position.global_step, 4);
    assert_eq!(saved.position.epoch, 1);
    assert!(saved.train_state.is_some());
    let resumed = run(&data, &cut_dir, true, None);
    assert_eq!(resumed.pos, full.pos);
    let a = read_checkpoint(&full_dir.join("last.safetensors"));
    let b = read_checkpoint(&cut_dir.join("last.safetensors"));
    assert_eq!(a.position.global_step, 6);
    assert_eq!(a.tensors.len(), b.tensors.len());
    let mut max_diff = 0f32;
    for (name, va) in &a.tensors {
        let vb = &b.tensors[name];
        assert_eq!(va.len(), vb.len());
        for (x, y) in va.iter().zip(vb) {
            max_diff = max_diff.max((x - y).abs());
        }
    }
    assert!(max_diff <= 1e-7, "resumed weights differ by {max_diff}");
    // Training moved the weights (the comparison is not vacuous).
    let init = Trainer::new(&small_cfg(), opts(), Device::Cpu);
    let first = &a.tensors["x_1d_b_f.0.weight"];
    let init_w =
        Vec::<f32>::try_from(init.vs.variables()["x_1d_b_f.0.weight"].flatten(0, -1)).unwrap();
    assert!(first.iter().zip(&init_w).any(|(x, y)| (x - y).abs() > 1e-6));
    // The log has every loss term of every step and a validation per epoch.
    let log = std::fs::read_to_string(full_dir.join("train.jsonl")).unwrap();
    let lines: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let steps: Vec<_> = lines.iter().filter(|l| l["event"] == "step").collect();
    assert_eq!(steps.len(), 6);
    for s in &steps {
        for key in ["loss", "stage1_se", "stage2_xw", "stage3_iou", "lr"] {
            assert!(s[key].as_f64().unwrap().is_finite(), "{key} in {s}");
        }
    }
    let vals: Vec<_> = lines
        .iter()
        .filter(|l| l["event"] == "validation")
        .collect();
    assert_eq!(vals.len(), 2);
    assert_eq!(vals[1]["mean_iou"].as_array().unwrap().len(), 4);
    assert!(
        full_dir.join("epoch-1.safetensors").exists()
            && full_dir.join("epoch-2.safetensors").exists()
    );
    // lr of the first steps follows the warm-up; epoch 2 is decayed.
    let s = opts().schedule;
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-12 * b.abs();
    assert!(close(steps[0]["lr"].as_f64().unwrap(), s.lr(0, 0)));
    assert!(close(steps[1]["lr"].as_f64().unwrap(), s.lr(0, 1)));
    assert!(close(steps[4]["lr"].as_f64().unwrap(), s.lr(1, 1)));
    assert!(close(steps[4]["lr"].as_f64().unwrap(), 1e-4));
}
