//! The demo's stages, in pipeline order: each one the real binary run as a
//! user would run it, timed.
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::Result;
use serde_json::json;

use crate::report::{
    before_after_table, calibration_line, parse, seconds_line, seconds_table, ComparedScores,
    DetectionScores, ProposalScores, Row,
};
use crate::rundir::{prepare_run_dir, write_input_subset, write_release_config, write_text};
use crate::ui::Ui;
use crate::{Args, Binaries};
use tcanet_models::calibration::Calibration;
use tcanet_models::checkpoint::run_dir;
use tcanet_models::data::dataset::{ANNOTATIONS_FILE, CLASSIFIER_FILE, PROPOSALS_FILE};

/// The files of one run, under `runs/<name>/`: the one place their names
/// are set (the report and `summary.json` list them from here).
struct RunFiles {
    dir: PathBuf,
    data: PathBuf,
    train: PathBuf,
    model: PathBuf,
    model_release: PathBuf,
    release_config: PathBuf,
    refined: PathBuf,
    refined_release: PathBuf,
    detections: PathBuf,
    input: PathBuf,
    input_soft_nms: PathBuf,
    eval_proposals: PathBuf,
    eval_detections: PathBuf,
    eval_refined_release: PathBuf,
    eval_input_soft_nms: PathBuf,
    ar_an_plot: PathBuf,
    detections_plot: PathBuf,
    summary: PathBuf,
    report: PathBuf,
}

impl RunFiles {
    fn new(dir: PathBuf) -> Self {
        let file = |name: &str| dir.join(name);
        Self {
            data: file("data"),
            train: file("train"),
            model: file("model.onnx"),
            model_release: file("model_release.onnx"),
            release_config: file("release_config.json"),
            refined: file("refined.json"),
            refined_release: file("refined_release.json"),
            detections: file("detections.json"),
            input: file("input.json"),
            input_soft_nms: file("input_soft_nms.json"),
            eval_proposals: file("eval_proposals.json"),
            eval_detections: file("eval_detections.json"),
            eval_refined_release: file("eval_refined_release.json"),
            eval_input_soft_nms: file("eval_input_soft_nms.json"),
            ar_an_plot: file("ar_an.png"),
            detections_plot: file("detections_map.png"),
            summary: file("summary.json"),
            report: file("report.md"),
            dir,
        }
    }

    fn annotations(&self) -> PathBuf {
        self.data.join(ANNOTATIONS_FILE)
    }

    fn input_proposals(&self) -> PathBuf {
        self.data.join(PROPOSALS_FILE)
    }

    fn classifier(&self) -> PathBuf {
        self.data.join(CLASSIFIER_FILE)
    }

    /// The checkpoint exported: the best epoch on the held-out videos,
    /// with its calibrated decode scale.
    fn checkpoint(&self) -> PathBuf {
        self.train.join(run_dir::BEST)
    }

    fn train_log(&self) -> PathBuf {
        self.train.join(run_dir::LOG)
    }

    /// Every file and directory of the run as (key, path relative to the
    /// run directory, directories ending in `/`): `summary.json`'s
    /// `files`, in the order the report lists them.
    fn listing(&self) -> Vec<(&'static str, String)> {
        let checkpoint = self.checkpoint();
        let files = [
            ("summary", &self.summary),
            ("report", &self.report),
            ("eval_proposals", &self.eval_proposals),
            ("eval_detections", &self.eval_detections),
            ("eval_input_soft_nms", &self.eval_input_soft_nms),
            ("eval_refined_release", &self.eval_refined_release),
            ("ar_an_plot", &self.ar_an_plot),
            ("detections_plot", &self.detections_plot),
            ("input_proposals", &self.input),
            ("input_soft_nms", &self.input_soft_nms),
            ("refined", &self.refined),
            ("refined_release", &self.refined_release),
            ("detections", &self.detections),
            ("model", &self.model),
            ("model_release", &self.model_release),
            ("release_config", &self.release_config),
            ("checkpoint", &checkpoint),
        ];
        let dirs = [("train", &self.train), ("data", &self.data)];
        let files = files.map(|(key, path)| (key, self.relative(path)));
        let dirs = dirs.map(|(key, path)| (key, format!("{}/", self.relative(path))));
        files.into_iter().chain(dirs).collect()
    }

    /// `path` relative to the run directory.
    fn relative(&self, path: &Path) -> String {
        path.strip_prefix(&self.dir)
            .unwrap_or(path)
            .display()
            .to_string()
    }
}

/// The scores the demo reports.
struct Scores {
    input: ProposalScores,
    refined: ProposalScores,
    refined_release: ProposalScores,
    input_soft_nms: ProposalScores,
    detections: DetectionScores,
    calibration: Calibration,
}

/// One run of the demo: its settings, binaries, files and timings.
struct Demo<'a> {
    args: &'a Args,
    bins: Binaries,
    files: RunFiles,
    ui: Ui,
    /// Seconds per stage, in pipeline order.
    seconds: Vec<(&'static str, f64)>,
}

/// Runs the whole demo.
pub fn run(args: &Args) -> Result<()> {
    let started = Instant::now();
    let bins = Binaries::locate(args.bin_dir.as_deref())?;
    let dir = prepare_run_dir(&args.runs_dir.join(&args.name))?;
    let mut demo = Demo {
        args,
        bins,
        files: RunFiles::new(dir),
        ui: Ui::new(),
        seconds: Vec::new(),
    };
    demo.ui.line(format!(
        "tcanet-demo: synthetic data -> train (tiny, CPU) -> export -> ONNX Runtime -> evaluate, in {}",
        demo.files.dir.display()
    ));
    demo.synth()?;
    demo.train()?;
    let calibration = demo.export()?;
    demo.infer()?;
    let (input, refined, detections, refined_release) = demo.evaluate()?;
    let input_soft_nms = demo.input_soft_nms()?;
    demo.seconds
        .push(("total", started.elapsed().as_secs_f64()));
    demo.report(&Scores {
        input,
        refined,
        refined_release,
        input_soft_nms,
        detections,
        calibration,
    })
}

impl Demo<'_> {
    fn threads(&self) -> String {
        self.args.threads.max(1).to_string()
    }

    /// Runs stage `index` and records its time under `name`.
    fn timed(&mut self, index: usize, name: &'static str, cmd: &mut Command) -> Result<String> {
        let r = self.ui.stage(index, name, cmd, None)?;
        self.seconds.push((name, r.seconds));
        Ok(r.stdout)
    }

    fn synth(&mut self) -> Result<()> {
        let a = self.args;
        let mut cmd = Command::new(&self.bins.train);
        cmd.arg("synth")
            .arg("--out")
            .arg(&self.files.data)
            .args(["--seed", &a.seed.to_string()])
            .args(["--train-videos", &a.train_videos.to_string()])
            .args(["--val-videos", &a.val_videos.to_string()])
            .args(["--boundary-error", &a.boundary_error.to_string()])
            .args(["--noise", &a.noise.to_string()])
            // The `tiny` preset's C and T, and the rest of the demo's
            // dataset, whatever synth's defaults become.
            .args(["--channels", "32", "--steps", "64", "--classes", "10"])
            .args(["--proposals-per-video", "100"]);
        self.timed(1, "synth", &mut cmd).map(drop)
    }

    fn train(&mut self) -> Result<()> {
        let a = self.args;
        let mut cmd = Command::new(&self.bins.train);
        cmd.arg("train")
            .arg("--data")
            .arg(&self.files.data)
            .args(["--preset", "tiny"])
            .arg("--out")
            .arg(&self.files.train)
            .args(["--epochs", &a.epochs.to_string()])
            .args(["--batch-size", &a.batch_size.to_string()])
            .args(["--lr", &a.lr.to_string()])
            .args(["--warmup-iters", &a.warmup_iters.to_string()])
            // Decay for the last third of the epochs (at least the last one).
            .args(["--lr-decay-epoch", &lr_decay_epoch(a.epochs).to_string()])
            .args(["--seed", &a.seed.to_string()])
            .args([
                "--device",
                "cpu",
                "--threads",
                &self.threads(),
                "--workers",
                "1",
            ]);
        if !a.validate_each_epoch {
            cmd.arg("--no-validation");
        }
        let log = self.files.train_log();
        let r = self.ui.stage(2, "train", &mut cmd, Some(&log))?;
        self.seconds.push(("train", r.seconds));
        Ok(())
    }

    /// Exports the best checkpoint (its calibrated decode scale) and the
    /// same weights with the release's decode scale 0.2; returns the
    /// checkpoint's calibration record.
    fn export(&mut self) -> Result<Calibration> {
        let started = Instant::now();
        let f = &self.files;
        let calibration = write_release_config(&f.checkpoint(), &f.release_config)?;
        let mut calibrated = Command::new(&self.bins.export);
        calibrated.arg(f.checkpoint()).arg("-o").arg(&f.model);
        self.ui.stage(3, "export", &mut calibrated, None)?;
        let mut release = Command::new(&self.bins.export);
        release
            .arg(f.checkpoint())
            .arg("--config")
            .arg(&f.release_config)
            .arg("-o")
            .arg(&f.model_release);
        self.ui
            .stage(3, "export (release decode scale 0.2)", &mut release, None)?;
        self.seconds
            .push(("export", started.elapsed().as_secs_f64()));
        Ok(calibration)
    }

    /// Refines the validation videos with the calibrated model (with
    /// detections) and with the release-scale one.
    fn infer(&mut self) -> Result<()> {
        let started = Instant::now();
        let f = &self.files;
        let mut cmd = self.infer_command(&f.model, &f.refined);
        cmd.arg("--classifier")
            .arg(f.classifier())
            .arg("--detections-output")
            .arg(&f.detections);
        self.ui.stage(4, "infer", &mut cmd, None)?;
        let mut release = self.infer_command(&f.model_release, &f.refined_release);
        self.ui
            .stage(4, "infer (release decode scale 0.2)", &mut release, None)?;
        self.seconds
            .push(("infer", started.elapsed().as_secs_f64()));
        Ok(())
    }

    fn infer_command(&self, model: &std::path::Path, out: &std::path::Path) -> Command {
        let mut cmd = Command::new(&self.bins.infer);
        cmd.args(["run", "--subset", "validation", "--device", "cpu"])
            .arg("--model")
            .arg(model)
            .arg("--data")
            .arg(&self.files.data)
            .arg("-o")
            .arg(out)
            .args(["--threads", &self.threads()]);
        cmd
    }

    /// Scores the input and the refined proposals on the validation videos,
    /// the detections, and the release-scale refined proposals.
    fn evaluate(
        &mut self,
    ) -> Result<(
        ProposalScores,
        ProposalScores,
        DetectionScores,
        ProposalScores,
    )> {
        let started = Instant::now();
        let f = &self.files;
        let n = write_input_subset(
            &f.input_proposals(),
            &f.annotations(),
            "validation",
            &f.input,
        )?;
        self.ui.line(format!(
            "      wrote {} (the input proposals of the {n} validation videos, scored beside the refined ones)",
            f.input.display()
        ));
        let mut proposals = Command::new(&self.bins.eval);
        proposals
            .arg("proposals")
            .arg(f.annotations())
            .arg(&f.refined)
            .arg("--baseline")
            .arg(&f.input)
            .args(["--label", "refined", "--baseline-label", "input", "--json"])
            .arg("--plot")
            .arg(&f.ar_an_plot);
        let proposals_json = self
            .ui
            .stage(5, "evaluate proposals", &mut proposals, None)?
            .stdout;
        let mut detections = Command::new(&self.bins.eval);
        detections
            .arg("detections")
            .arg(f.annotations())
            .arg(&f.detections)
            // A class of the synthetic classifier may have no validation
            // instance; the official code would stop on its detections.
            .args(["--json", "--ignore-unknown-labels"])
            .arg("--plot")
            .arg(&f.detections_plot);
        let detections_json = self
            .ui
            .stage(5, "evaluate detections", &mut detections, None)?
            .stdout;
        let mut release = Command::new(&self.bins.eval);
        release
            .arg("proposals")
            .arg(f.annotations())
            .arg(&f.refined_release)
            .arg("--json");
        let release_json = self
            .ui
            .stage(5, "evaluate release decode scale", &mut release, None)?
            .stdout;
        self.seconds
            .push(("evaluate", started.elapsed().as_secs_f64()));
        write_text(&f.eval_proposals, &proposals_json)?;
        write_text(&f.eval_detections, &detections_json)?;
        write_text(&f.eval_refined_release, &release_json)?;
        let compared: ComparedScores = parse(&proposals_json, &f.relative(&f.eval_proposals))?;
        let dets: DetectionScores = parse(&detections_json, &f.relative(&f.eval_detections))?;
        let rel: ProposalScores = parse(&release_json, &f.relative(&f.eval_refined_release))?;
        Ok((compared.baseline, compared.refined, dets, rel))
    }

    /// The same post-processing on the input proposals, without the
    /// network: how much of the gain is Soft-NMS alone.
    fn input_soft_nms(&mut self) -> Result<ProposalScores> {
        let started = Instant::now();
        let f = &self.files;
        let mut post = Command::new(&self.bins.infer);
        post.args(["postprocess", "--subset", "validation"])
            .arg("--data")
            .arg(&f.data)
            .arg("-o")
            .arg(&f.input_soft_nms);
        self.ui.stage(6, "input + Soft-NMS", &mut post, None)?;
        let mut eval = Command::new(&self.bins.eval);
        eval.arg("proposals")
            .arg(f.annotations())
            .arg(&f.input_soft_nms)
            .arg("--json");
        let json = self
            .ui
            .stage(6, "evaluate input + Soft-NMS", &mut eval, None)?
            .stdout;
        self.seconds
            .push(("input_soft_nms", started.elapsed().as_secs_f64()));
        write_text(&f.eval_input_soft_nms, &json)?;
        parse(&json, &f.relative(&f.eval_input_soft_nms))
    }

    /// Writes `summary.json` and `report.md` and prints the table.
    fn report(&self, s: &Scores) -> Result<()> {
        let summary = serde_json::to_string_pretty(&self.summary(s))? + "\n";
        write_text(&self.files.summary, &summary)?;
        let table = before_after_table(&[
            Row {
                label: "input",
                scores: &s.input,
            },
            Row {
                label: "input + Soft-NMS (no network)",
                scores: &s.input_soft_nms,
            },
            Row {
                label: "refined (TCANet, release decode scale 0.2)",
                scores: &s.refined_release,
            },
            Row {
                label: &refined_label(&s.calibration),
                scores: &s.refined,
            },
        ]);
        write_text(&self.files.report, &self.markdown(&table, s))?;
        println!("\n{table}");
        println!(
            "detection average mAP (synthetic classifier, tIoU 0.5:0.95): {:.2} %",
            100.0 * s.detections.average_map
        );
        let gain =
            |a: &ProposalScores, b: &ProposalScores| (b.auc - a.auc, 100.0 * (b.ar100 - a.ar100));
        let (d_auc, d_ar100) = gain(&s.input, &s.refined);
        let claim = if d_auc >= 5.0 && d_ar100 > 0.0 {
            ""
        } else {
            "  (below the demo's claim of AUC +5 and a higher AR@100)"
        };
        println!("refinement: AUC {d_auc:+.2} points, AR@100 {d_ar100:+.2} points{claim}");
        println!(
            "{}",
            calibration_line(&s.calibration, &s.refined, &s.refined_release)
        );
        let (s_auc, s_ar100) = gain(&s.input, &s.input_soft_nms);
        println!(
            "post-processing alone (input + Soft-NMS, no network): AUC {s_auc:+.2} points, AR@100 {s_ar100:+.2} points"
        );
        println!("seconds: {}", seconds_line(&self.seconds));
        let f = &self.files;
        let shown = [&f.summary, &f.report, &f.ar_an_plot, &f.detections_plot];
        let names: Vec<String> = shown.iter().map(|p| f.relative(p)).collect();
        println!("wrote {}/{{{}}}", f.dir.display(), names.join(", "));
        Ok(())
    }

    fn summary(&self, s: &Scores) -> serde_json::Value {
        let a = self.args;
        json!({
            "name": a.name,
            "units": "AR@k as fractions, AUC in percent, average_mAP as a fraction (as tcanet-eval --json)",
            "subset": "validation",
            "input": s.input,
            "refined": s.refined,
            "refined_release": s.refined_release,
            "calibration": s.calibration,
            "input_soft_nms": s.input_soft_nms,
            "detection": s.detections,
            "seconds": self.seconds.iter().map(|(k, v)| (k.to_string(), json!(v))).collect::<serde_json::Map<_, _>>(),
            "settings": {
                "seed": a.seed, "train_videos": a.train_videos, "val_videos": a.val_videos,
                "boundary_error": a.boundary_error, "noise": a.noise, "epochs": a.epochs,
                "batch_size": a.batch_size, "lr": a.lr, "warmup_iters": a.warmup_iters,
                "threads": a.threads, "preset": "tiny", "device": "cpu",
            },
            "files": self.files.listing().into_iter()
                .map(|(k, v)| (k.to_string(), json!(v)))
                .collect::<serde_json::Map<_, _>>(),
        })
    }

    fn markdown(&self, table: &str, s: &Scores) -> String {
        let a = self.args;
        let f = &self.files;
        let files: Vec<String> = f
            .listing()
            .into_iter()
            .map(|(_, p)| format!("`{p}`"))
            .collect();
        format!(
            "# tcanet demo: {}\n\nSynthetic dataset (seed {}, {} training and {} validation videos, \
             input boundary error {} of the action length, feature noise {}), TCANet `tiny` trained \
             {} epochs on the CPU (its best epoch on held-out training videos), exported to ONNX, \
             run by ONNX Runtime (CPU) with the paper's post-processing, scored by tcanet-eval on \
             the validation videos (tIoU 0.5:0.95). `input + Soft-NMS (no network)` is the input \
             through the same post-processing (Soft-NMS on the input scores, top 100, clipping) \
             without the network; the release decode scale row is the same weights with the \
             release's start/end damping 0.2.\n\n{table}\n{}\n\n\
             Detection average mAP (refined proposals × the synthetic video-level classifier): \
             **{:.2} %**\n\n![AR-AN, input vs refined]({})\n\n![mAP per tIoU]({})\n\n\
             {}\nFiles (`{}` holds these numbers and names each file; the `eval_` files hold \
             the evaluator's full output): {}.\n",
            a.name,
            a.seed,
            a.train_videos,
            a.val_videos,
            a.boundary_error,
            a.noise,
            a.epochs,
            calibration_line(&s.calibration, &s.refined, &s.refined_release),
            100.0 * s.detections.average_map,
            f.relative(&f.ar_an_plot),
            f.relative(&f.detections_plot),
            seconds_table(&self.seconds),
            f.relative(&f.summary),
            files.join(", "),
        )
    }
}

/// The table's label of the calibrated row.
fn refined_label(c: &Calibration) -> String {
    format!("refined (TCANet, calibrated decode scale {})", c.chosen)
}

/// The epoch (1-based) from which the learning rate is decayed: the last third.
fn lr_decay_epoch(epochs: u64) -> u64 {
    (epochs - epochs / 3 + 1).clamp(1, epochs.max(1))
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
}
