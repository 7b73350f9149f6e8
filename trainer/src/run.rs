//! The training loop: deterministic batches prepared on worker threads,
//! one step each, and at each epoch's end validation, scoring on the
//! held-out videos (calibration and best-checkpoint selection) and the
//! checkpoints.
//!
//! Every file is written to a temporary sibling and renamed, and an epoch's
//! files in the order `best`, `epoch-N`, `last`: `last.safetensors` is the
//! one a resume continues from, so whatever is written before it is written
//! again (with the same bytes) by a run resumed after a kill at any point.
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tcanet_cli::Log;
use tcanet_models::calibration::Calibration;
use tcanet_models::checkpoint::Position;
use tcanet_models::data::prepare::{TrainingBatch, TrainingSample};
use tcanet_models::data::{DataError, Prefetcher};
use tcanet_models::ModelConfig;

use crate::calibrate::CalibrationSet;
use crate::dataset::{load_sample, DataOptions, Split, VideoEntry};
use crate::device::device_name;
use crate::error::{NonFinite, Result, TrainError};
use crate::options::DecodeScale;
use crate::rundir::{write_file, RunDir};
use crate::runlog::RunLog;
use crate::trainer::{epoch_order, steps_per_epoch, BestSoFar, Trainer, Validation};

/// What the loop works on.
pub struct RunSetup<'a> {
    /// The videos trained on.
    pub train: &'a Split,
    /// The videos validated on after each epoch, if any.
    pub val: Option<&'a Split>,
    /// The held-out videos scored after each epoch, if any.
    pub held_out: Option<&'a CalibrationSet>,
    /// How videos are prepared.
    pub data: &'a DataOptions,
    /// Where the files go.
    pub dir: &'a RunDir,
    /// The checkpoint a resumed run continues (its `last.safetensors` only
    /// when resumed in place).
    pub resumed_from: Option<&'a Path>,
}

/// How the loop reports, and a simulated kill for tests.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunControl {
    /// Return right after this global step, writing nothing more (a simulated kill).
    pub kill_after_step: Option<u64>,
    /// Draw a progress bar on stderr (when it is a terminal).
    pub progress: bool,
    /// Notes and warnings on stderr.
    pub log: Log,
}

/// What a run ended with.
#[derive(Debug, Clone, Default)]
pub struct RunOutcome {
    /// The last validation.
    pub validation: Option<Validation>,
    /// The last scoring on the held-out videos.
    pub calibration: Option<Calibration>,
    /// The best epoch.
    pub best: Option<BestSoFar>,
    /// Whether every epoch is done.
    pub complete: bool,
}

/// How an epoch's steps ended.
enum EpochSteps {
    /// Every step of the epoch is done.
    Complete,
    /// `max_steps` was reached (or a simulated kill).
    Stopped,
}

/// The loop's state besides the trainer's.
struct Loop<'a, 'b> {
    setup: &'a RunSetup<'b>,
    log: &'a mut RunLog,
    ctl: RunControl,
    bar: ProgressBar,
    started: Instant,
    /// The position the run started at.
    start: Position,
    /// The position of `RUNDIR/last.safetensors`, once it holds this run's state.
    saved_at: Option<Position>,
    per_epoch: u64,
    stop_at: u64,
    outcome: RunOutcome,
    killed: bool,
}

fn load_batch(
    videos: &[VideoEntry],
    idx: &[usize],
    cfg: &ModelConfig,
    d: &DataOptions,
) -> Result<TrainingBatch, DataError> {
    let samples = idx
        .iter()
        .map(|&i| load_sample(&videos[i], cfg, d))
        .collect::<Result<Vec<TrainingSample>, _>>()?;
    Ok(TrainingBatch::collate(
        &samples,
        batch_slots(&samples, d),
        cfg,
    ))
}

/// The proposal slots of a batch: its largest video's count (at most
/// `max_proposals`), not `max_proposals` itself, which may be far larger
/// than any video's. Padding is masked out of every loss term (`valid`);
/// the IoU loss's random draws are laid out over the slots, so a batch
/// whose videos all have fewer than `max_proposals` draws other numbers
/// than when it was padded to `max_proposals`.
fn batch_slots(samples: &[TrainingSample], d: &DataOptions) -> usize {
    let largest = samples.iter().map(|s| s.input.proposals.len()).max();
    largest.unwrap_or(0).min(d.max_proposals)
}

/// Prefetches the batches `batches[start..]` (lists of video indices) on worker threads.
pub fn prefetch_batches(
    split: &Split,
    batches: Vec<Vec<usize>>,
    start: usize,
    cfg: &ModelConfig,
    d: &DataOptions,
    workers: usize,
) -> Prefetcher<Result<TrainingBatch, DataError>> {
    let videos = Arc::new(split.videos.clone());
    let batches = Arc::new(batches);
    let (cfg, d) = (cfg.clone(), d.clone());
    let n = batches.len().saturating_sub(start);
    Prefetcher::new(n, workers, 2 * workers.max(1) + 1, move |i| {
        load_batch(&videos, &batches[start + i], &cfg, &d)
    })
}

/// The progress bar of the trainer's long commands: `total` `unit`s on
/// stderr, drawn when `show` and stderr is a terminal (hidden otherwise).
pub fn progress_bar(show: bool, total: u64, unit: &str) -> ProgressBar {
    let bar = if show {
        ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr())
    } else {
        ProgressBar::hidden()
    };
    let template = format!(
        "{{spinner}} [{{elapsed_precise}}] {{bar:30}} {{pos}}/{{len}} {unit}  {{msg}}  eta {{eta}}"
    );
    if let Ok(style) = ProgressStyle::with_template(&template) {
        bar.set_style(style);
    }
    bar
}

impl Trainer {
    /// Trains until `opts.epochs` are done (or `max_steps`), writing
    /// `last.safetensors` (every `save_every` steps, at each epoch's end,
    /// and at the end if it does not hold the final position: a run
    /// resumed from another directory writes its own), `epoch-N.safetensors`,
    /// `best.safetensors` (when there are held-out videos) and the records
    /// of `log`.
    pub fn run(
        &mut self,
        setup: &RunSetup<'_>,
        log: &mut RunLog,
        ctl: RunControl,
    ) -> Result<RunOutcome> {
        let n = setup.train.videos.len();
        if n == 0 {
            return Err(TrainError::NoTrainingVideos {
                subset: setup.train.subset.clone(),
                skipped: setup.train.skipped.clone(),
            });
        }
        let per_epoch = steps_per_epoch(n, self.opts.batch_size);
        let total = self
            .pos
            .global_step
            .saturating_add(self.steps_left(per_epoch));
        // Only RUNDIR/last.safetensors counts as saved: a run resumed from
        // elsewhere writes its own before it ends.
        let in_place = setup
            .resumed_from
            .is_some_and(|p| tcanet_cli::same_file(p, &setup.dir.last()));
        let mut lp = Loop {
            setup,
            log,
            ctl,
            bar: progress_bar(ctl.progress && !ctl.log.quiet, total, "steps"),
            started: Instant::now(),
            start: self.pos,
            saved_at: Some(self.pos).filter(|_| in_place),
            per_epoch,
            stop_at: self.opts.max_steps.map_or(total, |m| m.min(total)),
            outcome: RunOutcome::default(),
            killed: false,
        };
        lp.bar.set_position(self.pos.global_step);
        self.log_start(&mut lp, total)?;
        while self.pos.epoch < self.opts.epochs && self.pos.global_step < lp.stop_at {
            match self.train_epoch(&mut lp)? {
                EpochSteps::Complete => self.finish_epoch(&mut lp)?,
                EpochSteps::Stopped => break,
            }
        }
        if lp.killed {
            return Ok(lp.outcome);
        }
        if lp.saved_at != Some(self.pos) {
            self.save_last(&mut lp)?;
        }
        lp.bar.finish_and_clear();
        lp.outcome.complete = self.pos.epoch >= self.opts.epochs;
        lp.outcome.best = self.best;
        // A run killed after logging its end and resumed logs it once.
        if !lp.log.ends_at(self.pos.global_step) {
            lp.log.write(&serde_json::json!({
                "event": "end", "position": self.pos, "elapsed_s": lp.started.elapsed().as_secs_f64(),
            }))?;
        }
        Ok(lp.outcome)
    }

    /// The steps from the current position to the end of the last epoch
    /// (the position's own epoch and step, not its total of steps, which a
    /// run resumed with another batch size counted in other epochs).
    pub fn steps_left(&self, per_epoch: u64) -> u64 {
        let epochs = self.opts.epochs.saturating_sub(self.pos.epoch);
        epochs
            .saturating_mul(per_epoch)
            .saturating_sub(self.pos.step_in_epoch)
    }

    fn log_start(&self, lp: &mut Loop<'_, '_>, total: u64) -> Result<()> {
        let s = lp.setup;
        lp.log.write(&serde_json::json!({
            "event": "start", "position": self.pos, "train_videos": s.train.videos.len(),
            "val_videos": s.val.map_or(0, |v| v.videos.len()),
            "held_out_videos": s.held_out.map_or(0, CalibrationSet::len),
            "steps_per_epoch": lp.per_epoch, "total_steps": total,
            "skipped_train": s.train.skipped, "skipped_val": s.val.map(|v| v.skipped.clone()),
            "options": self.opts, "device": device_name(self.device),
            "data_digest": self.data.digest,
        }))
    }

    /// The steps of the current epoch from its current step on.
    fn train_epoch(&mut self, lp: &mut Loop<'_, '_>) -> Result<EpochSteps> {
        let setup = lp.setup;
        let order = epoch_order(self.opts.seed, self.pos.epoch, setup.train.videos.len());
        let batches: Vec<Vec<usize>> = order
            .chunks(self.opts.batch_size)
            .map(<[usize]>::to_vec)
            .collect();
        let start = self.pos.step_in_epoch as usize;
        let cfg = self.cfg.clone();
        let workers = self.opts.workers;
        for batch in prefetch_batches(setup.train, batches, start, &cfg, setup.data, workers) {
            if self.pos.global_step >= lp.stop_at {
                return Ok(EpochSteps::Stopped);
            }
            let batch = batch?;
            self.logged_step(lp, &batch)?;
            if lp.ctl.kill_after_step == Some(self.pos.global_step) {
                lp.killed = true;
                return Ok(EpochSteps::Stopped);
            }
            let last_of_epoch = self.pos.step_in_epoch == lp.per_epoch;
            let due = self
                .opts
                .save_every
                .is_some_and(|s| self.pos.global_step.is_multiple_of(s));
            if due && !last_of_epoch {
                self.save_last(lp)?;
            }
        }
        Ok(if self.pos.step_in_epoch >= lp.per_epoch {
            EpochSteps::Complete
        } else {
            EpochSteps::Stopped
        })
    }

    /// One step, its log record and progress; a non-finite value becomes
    /// an error saying what happened to the checkpoint.
    fn logged_step(&mut self, lp: &mut Loop<'_, '_>, batch: &TrainingBatch) -> Result<()> {
        let lr = self
            .opts
            .schedule
            .lr(self.pos.epoch, self.pos.step_in_epoch);
        let v = self
            .step(batch)
            .map_err(|problem| self.non_finite(lp, batch, problem))?;
        let mut rec = serde_json::json!({
            "event": "step", "epoch": self.pos.epoch + 1, "step": self.pos.step_in_epoch,
            "global_step": self.pos.global_step, "lr": lr, "loss": v[0],
            "videos": batch.len(), "elapsed_s": lp.started.elapsed().as_secs_f64(),
        });
        for k in 0..3 {
            for (j, term) in ["se", "xw", "iou"].iter().enumerate() {
                rec[format!("stage{}_{term}", k + 1)] = serde_json::json!(v[1 + 3 * k + j]);
            }
        }
        lp.log.write(&rec)?;
        lp.bar.set_position(self.pos.global_step);
        lp.bar.set_message(format!(
            "epoch {}/{}  loss {:.4}",
            self.pos.epoch + 1,
            self.opts.epochs,
            v[0]
        ));
        Ok(())
    }

    fn non_finite(
        &self,
        lp: &Loop<'_, '_>,
        batch: &TrainingBatch,
        problem: NonFinite,
    ) -> TrainError {
        let kept = kept_checkpoint(lp);
        let mut videos: Vec<&str> = batch.videos.iter().map(String::as_str).take(8).collect();
        if batch.videos.len() > 8 {
            videos.push("...");
        }
        TrainError::NonFinite {
            step: self.pos.global_step + 1,
            epoch: self.pos.epoch + 1,
            problem,
            videos: videos.join(", "),
            kept,
        }
    }

    /// An epoch's end: validation, scoring on the held-out videos, and the
    /// checkpoints (`best` if improved, `epoch-N`, `last`).
    fn finish_epoch(&mut self, lp: &mut Loop<'_, '_>) -> Result<()> {
        self.pos.epoch += 1;
        self.pos.step_in_epoch = 0;
        if let Some(val) = lp.setup.val.filter(|v| !v.videos.is_empty()) {
            self.validation_record(lp, val)?;
        }
        let improved = match lp.setup.held_out {
            Some(set) => self.score_held_out(lp, set)?,
            None => false,
        };
        let params = self.host_params();
        let bytes = self.last_bytes(&params)?;
        if improved {
            write_file(&lp.setup.dir.best(), &self.best_bytes(&params)?)?;
        }
        write_file(&lp.setup.dir.epoch(self.pos.epoch), &bytes)?;
        write_file(&lp.setup.dir.last(), &bytes)?;
        lp.saved_at = Some(self.pos);
        Ok(())
    }

    fn validation_record(&mut self, lp: &mut Loop<'_, '_>, val: &Split) -> Result<()> {
        let batches: Vec<Vec<usize>> = (0..val.videos.len())
            .collect::<Vec<_>>()
            .chunks(self.opts.batch_size)
            .map(<[usize]>::to_vec)
            .collect();
        let cfg = self.cfg.clone();
        let data = lp.setup.data;
        let prefetch = prefetch_batches(val, batches, 0, &cfg, data, self.opts.workers);
        let r = self.validate(prefetch.map(|b| b.map_err(TrainError::from)))?;
        lp.log.write(&serde_json::json!({
            "event": "validation", "epoch": self.pos.epoch, "global_step": self.pos.global_step,
            "loss": r.loss, "stage_losses": r.stage_losses, "mean_iou": r.mean_iou,
            "frac_iou_0.7": r.frac_iou_07, "videos": r.videos, "proposals": r.proposals,
        }))?;
        note(
            lp,
            format!(
                "epoch {}/{}: validation loss {:.4}, mean IoU with matched GT: input {:.4} -> refined {:.4}",
                self.pos.epoch, self.opts.epochs, r.loss, r.mean_iou[0], r.mean_iou[3]
            ),
        );
        lp.outcome.validation = Some(r);
        Ok(())
    }

    /// Scores the model on the held-out videos: the whole grid when
    /// calibrating, else the fixed scale. Returns whether the epoch is the
    /// best so far (strictly higher AUC than the best before).
    fn score_held_out(&mut self, lp: &mut Loop<'_, '_>, set: &CalibrationSet) -> Result<bool> {
        let grid = match self.opts.decode_scale {
            DecodeScale::Calibrate => self.opts.decode_grid.clone(),
            other => vec![other.initial_scale()],
        };
        let c = set.score(
            &self.net,
            self.device,
            &grid,
            self.opts.workers,
            self.pos.epoch,
        )?;
        let auc = c.chosen_auc();
        let improved = self.best.is_none_or(|b| auc > b.auc);
        if improved {
            self.best = Some(BestSoFar {
                epoch: self.pos.epoch,
                auc,
                scale: c.chosen,
            });
        }
        let best_epoch = self.best.map_or(self.pos.epoch, |b| b.epoch);
        lp.log.write(&serde_json::json!({
            "event": "calibration", "epoch": self.pos.epoch, "global_step": self.pos.global_step,
            "grid": c.grid, "auc": c.auc, "chosen": c.chosen, "auc_chosen": auc,
            "videos": c.videos, "instances": c.instances, "best_epoch": best_epoch,
            "improved": improved, "input_auc": c.input_auc,
        }))?;
        note(
            lp,
            format!(
                "epoch {}/{}: held-out AUC {auc:.2} at decode scale {} ({}; input proposals {:.2}); best epoch {best_epoch}",
                self.pos.epoch,
                self.opts.epochs,
                c.chosen,
                c.describe_grid(),
                c.input_auc.unwrap_or(f64::NAN)
            ),
        );
        self.calibration = Some(c.clone());
        lp.outcome.calibration = Some(c);
        Ok(improved)
    }

    fn save_last(&self, lp: &mut Loop<'_, '_>) -> Result<()> {
        write_file(&lp.setup.dir.last(), &self.last_bytes(&self.host_params())?)?;
        lp.saved_at = Some(self.pos);
        Ok(())
    }
}

/// What a run that stops on an error leaves, in words.
fn kept_checkpoint(lp: &Loop<'_, '_>) -> String {
    let dir = lp.setup.dir;
    match (lp.saved_at, lp.setup.resumed_from) {
        (Some(p), _) => format!(
            "The last checkpoint, {} (step {}), is untouched",
            dir.last().display(),
            p.global_step
        ),
        (None, Some(from)) => format!(
            "No checkpoint was written to {}; {} (step {}), resumed from, is untouched",
            dir.path().display(),
            from.display(),
            lp.start.global_step
        ),
        (None, None) => "No checkpoint was written".to_string(),
    }
}

/// A progress note: above the bar, or on stderr when there is none.
fn note(lp: &Loop<'_, '_>, line: String) {
    if lp.bar.is_hidden() {
        lp.ctl.log.info(line);
    } else {
        lp.bar.println(line);
    }
}
