//! `tcanet-demo`: the main job end to end, as a user would run it.
//!
//! synth → train (`tiny`) → export → `tcanet-infer` (ONNX Runtime, CPU) →
//! `tcanet-eval`, each stage the real binary found beside this one, timed,
//! with its progress shown; then a before/after report of the input, the
//! input through the post-processing alone (`tcanet-infer postprocess`) and
//! the refined proposals under `runs/<name>/`.
mod pipeline;
mod report;
mod rundir;
mod ui;

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::Parser;

#[derive(Parser, Debug)]
#[command(
    name = "tcanet-demo",
    version = tcanet_version::long_version!(),
    about = "The main job end to end on synthetic data, on the CPU: synth -> train (tiny) -> export -> \
             tcanet-infer (ONNX Runtime) -> tcanet-eval, with a before/after report",
    long_about = "The main job end to end on synthetic data, on the CPU: \
        tcanet-train synth -> tcanet-train train (preset tiny) -> tcanet-export -> \
        tcanet-infer run (ONNX Runtime, CPU, with a synthetic classifier) -> tcanet-eval. \
        Each stage is the real binary, found beside this one, run as a user would run it.\n\n\
        Prints AR@1, AR@10, AR@100 and AUC of the input and of the refined proposals (validation \
        subset) and the detection mAP, and writes under RUNS/NAME/: summary.json, report.md, \
        ar_an.png (input vs refined AR-AN curves), detections_map.png, the dataset (data/), the \
        training run (train/), model.onnx, refined.json, detections.json and the evaluator's JSON.\n\n\
        Example: tcanet-demo --name try2 --seed 1 --epochs 12"
)]
pub struct Args {
    /// Run name: outputs go to RUNS/NAME/ (a previous demo run of that name is replaced)
    #[arg(long, default_value = "demo")]
    pub name: String,
    /// Directory holding the runs
    #[arg(long, default_value = "runs")]
    pub runs_dir: PathBuf,
    /// Seed of the synthetic dataset and of the training
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Synthetic training videos
    #[arg(long, default_value_t = 320)]
    pub train_videos: usize,
    /// Synthetic validation videos (the ones refined and scored)
    #[arg(long, default_value_t = 160)]
    pub val_videos: usize,
    /// Typical boundary error of the input proposals, as a fraction of the action length
    #[arg(long, default_value_t = 0.35)]
    pub boundary_error: f64,
    /// Feature noise standard deviation of the synthetic dataset (higher = harder)
    #[arg(long, default_value_t = 0.5)]
    pub noise: f64,
    /// Training epochs
    #[arg(long, default_value_t = 6)]
    pub epochs: u64,
    /// Videos per training batch
    #[arg(long, default_value_t = 16)]
    pub batch_size: usize,
    /// Base learning rate (AdamW)
    #[arg(long, default_value_t = 1e-3)]
    pub lr: f64,
    /// Warm-up iterations at the start of training
    #[arg(long, default_value_t = 20)]
    pub warmup_iters: u64,
    /// CPU threads inside one libtorch / ONNX Runtime operator (1 is fastest for `tiny` on a small machine)
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// Run the trainer's per-epoch validation (slower; prints the mean IoU per epoch)
    #[arg(long)]
    pub validate_each_epoch: bool,
    /// Directory of the tcanet-* binaries (default: the one holding this executable)
    #[arg(long)]
    pub bin_dir: Option<PathBuf>,
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    match pipeline::run(&args) {
        Ok(()) => tcanet_cli::ExitStatus::Success.into(),
        Err(e) => {
            eprintln!("tcanet-demo: error: {e:#}");
            tcanet_cli::ExitStatus::Failure.into()
        }
    }
}

/// The four binaries of the toolkit, found beside this executable.
pub struct Binaries {
    /// tcanet-train.
    pub train: PathBuf,
    /// tcanet-export.
    pub export: PathBuf,
    /// tcanet-infer.
    pub infer: PathBuf,
    /// tcanet-eval.
    pub eval: PathBuf,
}

impl Binaries {
    /// The binaries in `dir`, or beside this executable.
    pub fn locate(dir: Option<&Path>) -> Result<Self> {
        let dir = match dir {
            Some(d) => d.to_path_buf(),
            None => std::env::current_exe()
                .context("cannot find this executable's path")?
                .parent()
                .context("this executable has no parent directory")?
                .to_path_buf(),
        };
        let find = |name: &str| -> Result<PathBuf> {
            let p = dir.join(name);
            if p.is_file() {
                Ok(p)
            } else {
                bail!(
                    "{} not found: the demo runs the toolkit's binaries from the directory of \
                     tcanet-demo. Build them with `cargo build --release -p tcanet-trainer -p \
                     tcanet-exporter -p tcanet-runtime -p tcanet-evaluator -p tcanet-demo --bins` \
                     (or run `make demo`), or pass --bin-dir",
                    p.display()
                )
            }
        };
        Ok(Self {
            train: find("tcanet-train")?,
            export: find("tcanet-export")?,
            infer: find("tcanet-infer")?,
            eval: find("tcanet-eval")?,
        })
    }
}

#[cfg(test)]
mod command_line {
    use clap::CommandFactory;

    /// No flag defined twice in one subcommand (clap would take the first).
    #[test]
    fn the_command_line_is_well_formed() {
        tcanet_cli::assert_command_line_well_formed(super::Args::command());
    }
}
