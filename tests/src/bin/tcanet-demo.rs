//! `tcanet-demo`: the main job end to end, as a user would run it.
//!
//! synth → train (`tiny`) → export → `tcanet-infer` (ONNX Runtime, CPU) →
//! `tcanet-eval`, each stage the real binary found beside this one, timed,
//! with its progress shown; then a before/after report of the input, the
//! input through the post-processing alone (`tcanet-infer postprocess`) and
//! the refined proposals under `runs/<name>/`.
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, IsTerminal, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Parser;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::{json, Value};

/// Marks a run directory as written by tcanet-demo (safe to replace).
const MARKER: &str = ".tcanet-demo";

#[derive(Parser, Debug)]
#[command(
    name = "tcanet-demo",
    version,
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
struct Args {
    /// Run name: outputs go to RUNS/NAME/ (a previous demo run of that name is replaced)
    #[arg(long, default_value = "demo")]
    name: String,
    /// Directory holding the runs
    #[arg(long, default_value = "runs")]
    runs_dir: PathBuf,
    /// Seed of the synthetic dataset and of the training
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Synthetic training videos
    #[arg(long, default_value_t = 320)]
    train_videos: usize,
    /// Synthetic validation videos (the ones refined and scored)
    #[arg(long, default_value_t = 160)]
    val_videos: usize,
    /// Typical boundary error of the input proposals, as a fraction of the action length
    #[arg(long, default_value_t = 0.35)]
    boundary_error: f64,
    /// Feature noise standard deviation of the synthetic dataset (higher = harder)
    #[arg(long, default_value_t = 0.5)]
    noise: f64,
    /// Training epochs
    #[arg(long, default_value_t = 6)]
    epochs: u64,
    /// Videos per training batch
    #[arg(long, default_value_t = 16)]
    batch_size: usize,
    /// Base learning rate (AdamW)
    #[arg(long, default_value_t = 1e-3)]
    lr: f64,
    /// Warm-up iterations at the start of training
    #[arg(long, default_value_t = 20)]
    warmup_iters: u64,
    /// CPU threads inside one libtorch / ONNX Runtime operator (1 is fastest for `tiny` on a small machine)
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Run the trainer's per-epoch validation (slower; prints the mean IoU per epoch)
    #[arg(long)]
    validate_each_epoch: bool,
    /// Directory of the tcanet-* binaries (default: the one holding this executable)
    #[arg(long)]
    bin_dir: Option<PathBuf>,
}

fn main() {
    let args = Args::parse();
    if let Err(e) = run(&args) {
        eprintln!("tcanet-demo: error: {e:#}");
        std::process::exit(1);
    }
}

/// The four binaries of the toolkit, found beside this executable.
struct Binaries {
    train: PathBuf,
    export: PathBuf,
    infer: PathBuf,
    eval: PathBuf,
}

impl Binaries {
    fn locate(dir: Option<&Path>) -> Result<Self> {
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
                     tcanet-exporter -p tcanet-runtime -p tcanet-evaluator -p tcanet-tests --bins` \
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

/// Proposal scores kept in the summary (evaluator units: AR as a fraction, AUC in percent).
const PROPOSAL_KEYS: [&str; 5] = ["AR@1", "AR@5", "AR@10", "AR@100", "AUC"];

fn run(args: &Args) -> Result<()> {
    let total_started = Instant::now();
    let bins = Binaries::locate(args.bin_dir.as_deref())?;
    let dir = prepare_run_dir(&args.runs_dir.join(&args.name))?;
    let data = dir.join("data");
    let train_dir = dir.join("train");
    let model = dir.join("model.onnx");
    let refined = dir.join("refined.json");
    let detections = dir.join("detections.json");
    let input = dir.join("input.json");
    let input_soft_nms = dir.join("input_soft_nms.json");
    let annotations = data.join("annotations.json");
    let threads = args.threads.max(1).to_string();
    let ui = Ui::new();
    ui.line(format!(
        "tcanet-demo: synthetic data -> train (tiny, CPU) -> export -> ONNX Runtime -> evaluate, in {}",
        dir.display()
    ));
    // Seconds per stage, in pipeline order.
    let mut seconds: Vec<(&str, f64)> = Vec::new();

    let mut synth = Command::new(&bins.train);
    synth
        .arg("synth")
        .arg("--out")
        .arg(&data)
        .args(["--seed", &args.seed.to_string()])
        .args(["--train-videos", &args.train_videos.to_string()])
        .args(["--val-videos", &args.val_videos.to_string()])
        .args(["--boundary-error", &args.boundary_error.to_string()])
        .args(["--noise", &args.noise.to_string()])
        // The `tiny` preset's C and T, and the rest of the demo's dataset,
        // whatever synth's defaults become.
        .args(["--channels", "32", "--steps", "64", "--classes", "10"])
        .args(["--proposals-per-video", "100"]);
    seconds.push(("synth", ui.stage(1, "synth", &mut synth, None)?.seconds));

    let mut train = Command::new(&bins.train);
    train
        .arg("train")
        .arg("--data")
        .arg(&data)
        .args(["--preset", "tiny"])
        .arg("--out")
        .arg(&train_dir)
        .args(["--epochs", &args.epochs.to_string()])
        .args(["--batch-size", &args.batch_size.to_string()])
        .args(["--lr", &args.lr.to_string()])
        .args(["--warmup-iters", &args.warmup_iters.to_string()])
        // Decay for the last third of the epochs (at least the last one).
        .args(["--lr-decay-epoch", &lr_decay_epoch(args.epochs).to_string()])
        .args(["--seed", &args.seed.to_string()])
        .args(["--device", "cpu", "--threads", &threads, "--workers", "1"]);
    if !args.validate_each_epoch {
        train.arg("--no-validation");
    }
    let log = train_dir.join("train.jsonl");
    seconds.push((
        "train",
        ui.stage(2, "train", &mut train, Some(&log))?.seconds,
    ));
    let checkpoint = train_dir.join("last.safetensors");

    let mut export = Command::new(&bins.export);
    export.arg(&checkpoint).arg("-o").arg(&model);
    seconds.push(("export", ui.stage(3, "export", &mut export, None)?.seconds));

    let mut infer = Command::new(&bins.infer);
    infer
        .args(["run", "--subset", "validation", "--device", "cpu"])
        .arg("--model")
        .arg(&model)
        .arg("--data")
        .arg(&data)
        .arg("-o")
        .arg(&refined)
        .arg("--classifier")
        .arg(data.join("classifier.json"))
        .arg("--detections-output")
        .arg(&detections)
        .args(["--threads", &threads]);
    seconds.push(("infer", ui.stage(4, "infer", &mut infer, None)?.seconds));

    let eval_started = Instant::now();
    let n_input = write_input_subset(
        &data.join("proposals.json"),
        &annotations,
        "validation",
        &input,
    )?;
    ui.line(format!(
        "      wrote {} (the input proposals of the {n_input} validation videos, scored beside the refined ones)",
        input.display()
    ));
    let mut eval_p = Command::new(&bins.eval);
    eval_p
        .arg("proposals")
        .arg(&annotations)
        .arg(&refined)
        .arg("--baseline")
        .arg(&input)
        .args(["--label", "refined", "--baseline-label", "input", "--json"])
        .arg("--plot")
        .arg(dir.join("ar_an.png"));
    let proposals_json = ui.stage(5, "evaluate proposals", &mut eval_p, None)?.stdout;
    let mut eval_d = Command::new(&bins.eval);
    eval_d
        .arg("detections")
        .arg(&annotations)
        .arg(&detections)
        // A class of the synthetic classifier may have no validation
        // instance; the official code would stop on its detections.
        .args(["--json", "--ignore-unknown-labels"])
        .arg("--plot")
        .arg(dir.join("detections_map.png"));
    let detections_json = ui
        .stage(5, "evaluate detections", &mut eval_d, None)?
        .stdout;
    seconds.push(("evaluate", eval_started.elapsed().as_secs_f64()));
    write_text(&dir.join("eval_proposals.json"), &proposals_json)?;
    write_text(&dir.join("eval_detections.json"), &detections_json)?;

    // The same post-processing on the input proposals, without the network:
    // how much of the gain is Soft-NMS alone.
    let soft_nms_started = Instant::now();
    let mut post = Command::new(&bins.infer);
    post.args(["postprocess", "--subset", "validation"])
        .arg("--data")
        .arg(&data)
        .arg("-o")
        .arg(&input_soft_nms);
    ui.stage(6, "input + Soft-NMS", &mut post, None)?;
    let mut eval_s = Command::new(&bins.eval);
    eval_s
        .arg("proposals")
        .arg(&annotations)
        .arg(&input_soft_nms)
        .arg("--json");
    let soft_nms_json = ui
        .stage(6, "evaluate input + Soft-NMS", &mut eval_s, None)?
        .stdout;
    seconds.push(("input_soft_nms", soft_nms_started.elapsed().as_secs_f64()));
    write_text(&dir.join("eval_input_soft_nms.json"), &soft_nms_json)?;

    let proposals: Value = serde_json::from_str(&proposals_json)
        .context("tcanet-eval proposals --json printed something that is not JSON")?;
    let dets: Value = serde_json::from_str(&detections_json)
        .context("tcanet-eval detections --json printed something that is not JSON")?;
    let refined_scores = pick(&proposals, &PROPOSAL_KEYS, "eval_proposals.json")?;
    let input_scores = pick(
        proposals
            .get("baseline")
            .context("eval_proposals.json has no \"baseline\" object")?,
        &PROPOSAL_KEYS,
        "eval_proposals.json baseline",
    )?;
    let soft_nms: Value = serde_json::from_str(&soft_nms_json).context(
        "tcanet-eval proposals --json (input + Soft-NMS) printed something that is not JSON",
    )?;
    let soft_nms_scores = pick(&soft_nms, &PROPOSAL_KEYS, "eval_input_soft_nms.json")?;
    let average_map = number(&dets, "average_mAP", "eval_detections.json")?;
    let total = total_started.elapsed().as_secs_f64();
    seconds.push(("total", total));

    let summary = json!({
        "name": args.name,
        "units": "AR@k as fractions, AUC in percent, average_mAP as a fraction (as tcanet-eval --json)",
        "subset": "validation",
        "input": input_scores,
        "refined": refined_scores,
        "input_soft_nms": soft_nms_scores,
        "detection": {
            "average_mAP": average_map,
            "mAP": dets.get("mAP"),
            "tiou_thresholds": dets.get("tiou_thresholds"),
        },
        "seconds": seconds.iter().map(|(k, v)| (k.to_string(), json!(v))).collect::<serde_json::Map<_, _>>(),
        "settings": {
            "seed": args.seed, "train_videos": args.train_videos, "val_videos": args.val_videos,
            "boundary_error": args.boundary_error, "noise": args.noise, "epochs": args.epochs,
            "batch_size": args.batch_size, "lr": args.lr, "warmup_iters": args.warmup_iters,
            "threads": args.threads, "preset": "tiny", "device": "cpu",
        },
        "files": {
            "data": "data/", "train": "train/", "checkpoint": "train/last.safetensors",
            "model": "model.onnx", "input_proposals": "input.json", "refined": "refined.json",
            "input_soft_nms": "input_soft_nms.json", "eval_input_soft_nms": "eval_input_soft_nms.json",
            "detections": "detections.json", "eval_proposals": "eval_proposals.json",
            "eval_detections": "eval_detections.json", "ar_an_plot": "ar_an.png",
            "detections_plot": "detections_map.png", "report": "report.md",
        },
    });
    let summary_text = serde_json::to_string_pretty(&summary)? + "\n";
    write_text(&dir.join("summary.json"), &summary_text)?;
    let table = before_after_table(&input_scores, &soft_nms_scores, &refined_scores);
    let report = report_markdown(args, &table, average_map, &seconds);
    write_text(&dir.join("report.md"), &report)?;

    println!();
    println!("{table}");
    println!(
        "detection average mAP (synthetic classifier, tIoU 0.5:0.95): {:.2} %",
        100.0 * average_map
    );
    let d_auc = refined_scores["AUC"] - input_scores["AUC"];
    let d_ar100 = 100.0 * (refined_scores["AR@100"] - input_scores["AR@100"]);
    println!(
        "refinement: AUC {d_auc:+.2} points, AR@100 {d_ar100:+.2} points{}",
        if d_auc >= 5.0 && d_ar100 > 0.0 {
            ""
        } else {
            "  (below the demo's claim of AUC +5 and a higher AR@100)"
        }
    );
    let s_auc = soft_nms_scores["AUC"] - input_scores["AUC"];
    let s_ar100 = 100.0 * (soft_nms_scores["AR@100"] - input_scores["AR@100"]);
    println!(
        "post-processing alone (input + Soft-NMS, no network): AUC {s_auc:+.2} points, AR@100 {s_ar100:+.2} points"
    );
    println!(
        "seconds: {}",
        seconds
            .iter()
            .map(|(k, v)| format!("{k} {v:.1}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "wrote {}/{{summary.json, report.md, ar_an.png, detections_map.png}}",
        dir.display()
    );
    Ok(())
}

/// The epoch (1-based) from which the learning rate is decayed: the last third.
fn lr_decay_epoch(epochs: u64) -> u64 {
    (epochs - epochs / 3 + 1).clamp(1, epochs.max(1))
}

/// Creates `dir`, replacing a previous demo run there; refuses to touch a
/// non-empty directory that the demo did not write.
fn prepare_run_dir(dir: &Path) -> Result<PathBuf> {
    if dir.exists() {
        let empty = std::fs::read_dir(dir)
            .with_context(|| format!("cannot read {}", dir.display()))?
            .next()
            .is_none();
        if !empty && !dir.join(MARKER).exists() {
            bail!(
                "{} exists and was not written by tcanet-demo; choose another --name or remove it",
                dir.display()
            );
        }
        std::fs::remove_dir_all(dir)
            .with_context(|| format!("cannot remove the previous run {}", dir.display()))?;
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    write_text(
        &dir.join(MARKER),
        "written by tcanet-demo; the next run of the same name replaces this directory\n",
    )?;
    Ok(dir.to_path_buf())
}

/// Writes `text` through a temporary sibling renamed into place, so that an
/// interrupted run never leaves a half-written file (as
/// `tcanet_models::io::write_atomic`; the demo depends on no crate of the
/// workspace: it runs the binaries as a user would).
fn write_text(path: &Path, text: &str) -> Result<()> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.tmp-{}", std::process::id()));
    let result = (|| -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.with_context(|| format!("cannot write {}", path.display()))
}

/// Writes the proposals of `subset`'s videos only, so that the input is
/// scored on the same videos as the refined output (the evaluator's
/// per-video cut counts every video of a submission). Returns the number
/// of videos written.
fn write_input_subset(
    proposals: &Path,
    annotations: &Path,
    subset: &str,
    out: &Path,
) -> Result<usize> {
    let read = |p: &Path| -> Result<Value> {
        let text =
            std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))?;
        serde_json::from_str(&text).with_context(|| format!("{}: not valid JSON", p.display()))
    };
    let ann = read(annotations)?;
    let database = ann
        .get("database")
        .and_then(Value::as_object)
        .with_context(|| format!("{}: no \"database\" object", annotations.display()))?;
    let mut props = read(proposals)?;
    let results = props
        .get_mut("results")
        .and_then(Value::as_object_mut)
        .with_context(|| format!("{}: no \"results\" object", proposals.display()))?;
    results.retain(|video, _| {
        database
            .get(video)
            .and_then(|v| v.get("subset"))
            .and_then(Value::as_str)
            == Some(subset)
    });
    let n = results.len();
    if n == 0 {
        bail!(
            "{}: no proposals for the videos of subset {subset:?} of {}",
            proposals.display(),
            annotations.display()
        );
    }
    let text = serde_json::to_string(&props)?;
    write_text(out, &text)?;
    Ok(n)
}

fn number(v: &Value, key: &str, what: &str) -> Result<f64> {
    v.get(key)
        .and_then(Value::as_f64)
        .with_context(|| format!("{what}: no number {key:?}"))
}

fn pick(v: &Value, keys: &[&str], what: &str) -> Result<BTreeMap<String, f64>> {
    keys.iter()
        .map(|&k| Ok((k.to_string(), number(v, k, what)?)))
        .collect()
}

/// The before/after table in percent: the input, the input through the
/// post-processing alone, and the refined proposals.
fn before_after_table(
    input: &BTreeMap<String, f64>,
    input_soft_nms: &BTreeMap<String, f64>,
    refined: &BTreeMap<String, f64>,
) -> String {
    let pct = |m: &BTreeMap<String, f64>, k: &str| if k == "AUC" { m[k] } else { 100.0 * m[k] };
    let mut s = String::from("| proposals (validation, %) | AR@1 | AR@10 | AR@100 | AUC |\n| --- | ---: | ---: | ---: | ---: |\n");
    for (label, m) in [
        ("input", input),
        ("input + Soft-NMS (no network)", input_soft_nms),
        ("refined (TCANet)", refined),
    ] {
        s += &format!(
            "| {label} | {:.2} | {:.2} | {:.2} | {:.2} |\n",
            pct(m, "AR@1"),
            pct(m, "AR@10"),
            pct(m, "AR@100"),
            pct(m, "AUC")
        );
    }
    s
}

fn report_markdown(args: &Args, table: &str, average_map: f64, seconds: &[(&str, f64)]) -> String {
    let mut s = format!(
        "# tcanet demo: {}\n\nSynthetic dataset (seed {}, {} training and {} validation videos, \
         input boundary error {} of the action length, feature noise {}), TCANet `tiny` trained \
         {} epochs on the CPU, exported to ONNX, run by ONNX Runtime (CPU) with the paper's \
         post-processing, scored by tcanet-eval on the validation videos (tIoU 0.5:0.95). \
         `input + Soft-NMS (no network)` is the input through the same post-processing \
         (Soft-NMS on the input scores, top 100, clipping) without the network.\n\n",
        args.name,
        args.seed,
        args.train_videos,
        args.val_videos,
        args.boundary_error,
        args.noise,
        args.epochs
    );
    s += table;
    s += &format!(
        "\nDetection average mAP (refined proposals × the synthetic video-level classifier): \
         **{:.2} %**\n\n![AR-AN, input vs refined](ar_an.png)\n\n![mAP per tIoU](detections_map.png)\n\n\
         | stage | seconds |\n| --- | ---: |\n",
        100.0 * average_map
    );
    for (k, v) in seconds {
        s += &format!("| {k} | {v:.1} |\n");
    }
    s += "\nFiles: `summary.json` (these numbers), `eval_proposals.json`, `eval_detections.json` \
          (the evaluator's full output), `eval_input_soft_nms.json`, `input.json`, \
          `input_soft_nms.json`, `refined.json`, `detections.json`, \
          `model.onnx`, `train/` (checkpoints, `train.jsonl`), `data/` (the dataset).\n";
    s
}

/// What a finished stage gives back.
struct StageResult {
    seconds: f64,
    stdout: String,
}

/// Progress display: one spinner per stage on stderr (hidden when stderr is
/// not a terminal), with the stage's own output printed above it.
struct Ui {
    tty: bool,
}

/// Number of numbered stages.
const STAGES: usize = 6;

enum Event {
    Stdout(String),
    Stderr(String),
    Done,
}

impl Ui {
    fn new() -> Self {
        Self {
            tty: std::io::stderr().is_terminal(),
        }
    }

    fn line(&self, s: String) {
        eprintln!("{s}");
    }

    /// Runs `cmd` as stage `index`, showing its output and progress, and
    /// fails with the command line and exit status when it fails.
    /// `train_log` is a train.jsonl to follow for a step progress bar.
    fn stage(
        &self,
        index: usize,
        name: &str,
        cmd: &mut Command,
        train_log: Option<&Path>,
    ) -> Result<StageResult> {
        let shown = format!("{} {}", cmd.get_program().to_string_lossy(), join_args(cmd));
        eprintln!("[{index}/{STAGES}] {name}: {shown}");
        let bar = if self.tty {
            ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr())
        } else {
            ProgressBar::hidden()
        };
        bar.set_style(
            ProgressStyle::with_template("{spinner} [{prefix}] {elapsed:>4} {msg}")
                .expect("valid template"),
        );
        bar.set_prefix(format!("{index}/{STAGES} {name}"));
        bar.enable_steady_tick(Duration::from_millis(120));
        let started = Instant::now();
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("cannot start {shown}"))?;
        let (tx, rx) = mpsc::channel();
        let readers = [
            spawn_reader(
                child.stdout.take().expect("piped"),
                tx.clone(),
                Event::Stdout,
            ),
            spawn_reader(child.stderr.take().expect("piped"), tx, Event::Stderr),
        ];
        let mut stdout = String::new();
        let mut follower = train_log.map(TrainLogFollower::new);
        let mut done = 0;
        let mut tail: Vec<String> = Vec::new();
        while done < readers.len() {
            match rx.recv_timeout(Duration::from_millis(250)) {
                Ok(Event::Stdout(l)) => {
                    stdout.push_str(&l);
                    stdout.push('\n');
                }
                Ok(Event::Stderr(l)) => {
                    if !l.trim().is_empty() {
                        let l = format!("      {l}");
                        if bar.is_hidden() {
                            eprintln!("{l}");
                        } else {
                            bar.println(&l);
                        }
                        tail.push(l);
                    }
                }
                Ok(Event::Done) => done += 1,
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
            if let Some(f) = follower.as_mut() {
                if let Some(p) = f.poll() {
                    if bar.is_hidden() {
                        if let Some(l) = p.epoch_line {
                            eprintln!("      {l}");
                        }
                    } else {
                        bar.set_message(p.message);
                    }
                }
            }
        }
        for r in readers {
            let _ = r.join();
        }
        let status = child
            .wait()
            .with_context(|| format!("waiting for {shown}"))?;
        let seconds = started.elapsed().as_secs_f64();
        bar.finish_and_clear();
        if !status.success() {
            bail!("stage {name} failed ({status}): {shown}");
        }
        eprintln!("      {name} done in {seconds:.1} s");
        if name.starts_with("evaluate") || stdout.is_empty() {
            return Ok(StageResult { seconds, stdout });
        }
        for l in stdout.lines() {
            eprintln!("      {l}");
        }
        Ok(StageResult { seconds, stdout })
    }
}

fn join_args(cmd: &Command) -> String {
    cmd.get_args()
        .map(|a| {
            let a = a.to_string_lossy();
            if a.contains(' ') {
                format!("'{a}'")
            } else {
                a.into_owned()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Forwards the lines of a child's stream (split on `\n` and `\r`, so that
/// progress redraws arrive as lines) to the stage loop.
fn spawn_reader<R: Read + Send + 'static>(
    stream: R,
    tx: mpsc::Sender<Event>,
    wrap: fn(String) -> Event,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut r = BufReader::new(stream);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match read_until_any(&mut r, &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let line = String::from_utf8_lossy(&buf)
                        .trim_end_matches(['\n', '\r'])
                        .to_string();
                    if tx.send(wrap(line)).is_err() {
                        break;
                    }
                }
            }
        }
        let _ = tx.send(Event::Done);
    })
}

/// Reads up to and including the next `\n` or `\r`.
fn read_until_any<R: BufRead>(r: &mut R, buf: &mut Vec<u8>) -> std::io::Result<usize> {
    let mut n = 0;
    loop {
        let available = r.fill_buf()?;
        if available.is_empty() {
            return Ok(n);
        }
        if let Some(i) = available.iter().position(|&b| b == b'\n' || b == b'\r') {
            buf.extend_from_slice(&available[..=i]);
            r.consume(i + 1);
            return Ok(n + i + 1);
        }
        let len = available.len();
        buf.extend_from_slice(available);
        r.consume(len);
        n += len;
    }
}

/// Follows the trainer's `train.jsonl` for the demo's progress line.
struct TrainLogFollower {
    path: PathBuf,
    offset: u64,
    partial: String,
    total_steps: Option<u64>,
    last_epoch: u64,
}

struct TrainProgress {
    message: String,
    /// Set when a new epoch started (for a non-terminal stderr).
    epoch_line: Option<String>,
}

impl TrainLogFollower {
    fn new(path: &Path) -> Self {
        Self {
            path: path.to_path_buf(),
            offset: 0,
            partial: String::new(),
            total_steps: None,
            last_epoch: 0,
        }
    }

    fn poll(&mut self) -> Option<TrainProgress> {
        let mut f = std::fs::File::open(&self.path).ok()?;
        f.seek(SeekFrom::Start(self.offset)).ok()?;
        let mut new = String::new();
        let n = f.read_to_string(&mut new).ok()?;
        if n == 0 {
            return None;
        }
        self.offset += n as u64;
        self.partial.push_str(&new);
        let mut last_step: Option<Value> = None;
        while let Some(i) = self.partial.find('\n') {
            let line: String = self.partial.drain(..=i).collect();
            let Ok(v) = serde_json::from_str::<Value>(&line) else {
                continue;
            };
            match v.get("event").and_then(Value::as_str) {
                Some("start") => self.total_steps = v.get("total_steps").and_then(Value::as_u64),
                Some("step") => last_step = Some(v),
                _ => {}
            }
        }
        let v = last_step?;
        let step = v.get("global_step").and_then(Value::as_u64).unwrap_or(0);
        let epoch = v.get("epoch").and_then(Value::as_u64).unwrap_or(0);
        let loss = v.get("loss").and_then(Value::as_f64).unwrap_or(f64::NAN);
        let total = self.total_steps.map_or("?".to_string(), |t| t.to_string());
        let message = format!("step {step}/{total}  epoch {epoch}  loss {loss:.4}");
        let epoch_line = (epoch != self.last_epoch).then(|| format!("train: {message}"));
        self.last_epoch = epoch;
        Some(TrainProgress {
            message,
            epoch_line,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decay_starts_in_the_last_third() {
        // 9 epochs: epoch 7, as the release schedule.
        assert_eq!(lr_decay_epoch(9), 7);
        assert_eq!(lr_decay_epoch(6), 5);
        assert_eq!(lr_decay_epoch(2), 2);
        assert_eq!(lr_decay_epoch(1), 1);
    }

    #[test]
    fn lines_split_on_newlines_and_carriage_returns() {
        let mut r = BufReader::new(&b"a\rbc\nd"[..]);
        let mut got = Vec::new();
        loop {
            let mut buf = Vec::new();
            if read_until_any(&mut r, &mut buf).unwrap() == 0 {
                break;
            }
            got.push(String::from_utf8(buf).unwrap());
        }
        assert_eq!(got, ["a\r", "bc\n", "d"]);
    }

    #[test]
    fn input_subset_keeps_the_subset_videos_only() {
        let dir = std::env::temp_dir().join(format!("tcanet-demo-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let ann = dir.join("a.json");
        let props = dir.join("p.json");
        let out = dir.join("o.json");
        std::fs::write(
            &ann,
            r#"{"database": {"v1": {"subset": "training"}, "v2": {"subset": "validation"}}}"#,
        )
        .unwrap();
        std::fs::write(
            &props,
            r#"{"version": "x", "results": {"v1": [], "v2": [{"segment": [1, 2], "score": 0.5}], "v3": []}}"#,
        )
        .unwrap();
        assert_eq!(
            write_input_subset(&props, &ann, "validation", &out).unwrap(),
            1
        );
        let v: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
        assert_eq!(
            v,
            json!({"version": "x", "results": {"v2": [{"segment": [1, 2], "score": 0.5}]}})
        );
        let err = write_input_subset(&props, &ann, "testing", &out).unwrap_err();
        assert!(err
            .to_string()
            .contains("no proposals for the videos of subset \"testing\""));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn table_is_in_percent() {
        let m = |ar: f64, auc: f64| -> BTreeMap<String, f64> {
            ["AR@1", "AR@10", "AR@100"]
                .iter()
                .map(|k| (k.to_string(), ar))
                .chain([("AUC".to_string(), auc)])
                .collect()
        };
        let t = before_after_table(&m(0.5, 60.0), &m(0.55, 62.5), &m(0.625, 70.125));
        assert!(
            t.contains("| input | 50.00 | 50.00 | 50.00 | 60.00 |"),
            "{t}"
        );
        assert!(
            t.contains("| refined (TCANet) | 62.50 | 62.50 | 62.50 | 70.12 |"),
            "{t}"
        );
        assert!(
            t.contains("| input + Soft-NMS (no network) | 55.00 | 55.00 | 55.00 | 62.50 |"),
            "{t}"
        );
        assert_eq!(t.lines().count(), 5, "{t}");
    }
}
