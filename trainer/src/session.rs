//! `tcanet-train train` as a library: the settings of a run (defaults, a
//! `--train-config` file, flags, and on `--resume` the checkpoint's), the
//! data (splits, held-out videos, fingerprint), the checks a resume makes,
//! and the run directory, all settled before the first step.
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tcanet_cli::Log;
use tcanet_models::calibration::RELEASE_DECODE_SCALE;
use tcanet_models::checkpoint::{Checkpoint, ConfigOverride, Position};
use tcanet_models::data::{DataError, Dataset, DatasetPaths, FeatureLayout};
use tcanet_models::ModelConfig;
use tch::Device;

use crate::calibrate::CalibrationSet;
use crate::dataset::{data_fingerprint, DataOptions, Split, TrainingData, VideoEntry};
use crate::error::{Result, TrainError};
use crate::inference::InferenceInput;
use crate::options::{changed_settings, DataSummary, DecodeScale, SavedSettings, TrainOptions};
use crate::run::{RunControl, RunOutcome, RunSetup};
use crate::rundir::RunDir;
use crate::runlog::RunLog;
use crate::schedule::LrSchedule;
use crate::trainer::{first_network_difference, saved_settings, steps_per_epoch, Trainer};

/// How a run starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Start {
    /// A new run; `overwrite` allows replacing a previous run's files.
    Fresh {
        /// Replace a run found in the directory.
        overwrite: bool,
    },
    /// Continue the run of this checkpoint exactly.
    Resume(PathBuf),
    /// A new run from this checkpoint's weights.
    Init {
        /// The checkpoint.
        path: PathBuf,
        /// Replace a run found in the directory.
        overwrite: bool,
    },
}

impl Start {
    fn overwrite(&self) -> bool {
        matches!(
            self,
            Self::Fresh { overwrite: true }
                | Self::Init {
                    overwrite: true,
                    ..
                }
        )
    }
}

/// Options given on the command line; each overrides the file's and the checkpoint's.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OptionOverrides {
    /// `--epochs`.
    pub epochs: Option<u64>,
    /// `--batch-size`.
    pub batch_size: Option<usize>,
    /// `--lr`.
    pub lr: Option<f64>,
    /// `--weight-decay`.
    pub weight_decay: Option<f64>,
    /// `--warmup-iters`.
    pub warmup_iters: Option<u64>,
    /// `--lr-decay-epoch`.
    pub lr_decay_epoch: Option<u64>,
    /// `--lr-decay`.
    pub lr_decay: Option<f64>,
    /// `--seed`.
    pub seed: Option<u64>,
    /// `--workers`.
    pub workers: Option<usize>,
    /// `--max-proposals`.
    pub max_proposals: Option<usize>,
    /// `--min-instance-seconds`.
    pub min_instance_seconds: Option<f64>,
    /// `--train-subset`.
    pub train_subset: Option<String>,
    /// `--val-subset`.
    pub val_subset: Option<String>,
    /// `--max-steps` (a checkpoint's is not inherited: the run it stopped is continued).
    pub max_steps: Option<u64>,
    /// `--save-every`.
    pub save_every: Option<u64>,
    /// `--resample` (only switches it on).
    pub resample: bool,
    /// `--feature-layout`.
    pub feature_layout: Option<FeatureLayout>,
    /// `--decode-scale`.
    pub decode_scale: Option<DecodeScale>,
    /// `--decode-grid`.
    pub decode_grid: Option<Vec<f64>>,
    /// `--calibration-fraction`.
    pub calibration_fraction: Option<f64>,
}

impl OptionOverrides {
    /// Applies the given flags to `o`.
    pub fn apply(&self, o: &mut TrainOptions) {
        fn set<T: Clone>(field: &mut T, v: &Option<T>) {
            if let Some(v) = v {
                *field = v.clone();
            }
        }
        set(&mut o.epochs, &self.epochs);
        set(&mut o.batch_size, &self.batch_size);
        let s: &mut LrSchedule = &mut o.schedule;
        set(&mut s.base, &self.lr);
        set(&mut s.warmup_iters, &self.warmup_iters);
        set(&mut s.decay_epoch, &self.lr_decay_epoch);
        set(&mut s.decay, &self.lr_decay);
        set(&mut o.weight_decay, &self.weight_decay);
        set(&mut o.seed, &self.seed);
        set(&mut o.workers, &self.workers);
        set(&mut o.max_proposals, &self.max_proposals);
        set(&mut o.min_instance_seconds, &self.min_instance_seconds);
        set(&mut o.train_subset, &self.train_subset);
        set(&mut o.val_subset, &self.val_subset);
        set(&mut o.decode_scale, &self.decode_scale);
        set(&mut o.decode_grid, &self.decode_grid);
        if self.calibration_fraction.is_some() {
            o.calibration_fraction = self.calibration_fraction;
        }
        if self.max_steps.is_some() {
            o.max_steps = self.max_steps;
        }
        if self.save_every.is_some() {
            o.save_every = self.save_every;
        }
        o.resample |= self.resample;
        set(&mut o.feature_layout, &self.feature_layout);
    }
}

/// Everything `train` was asked.
#[derive(Debug, Clone)]
pub struct TrainRequest {
    /// The dataset's files.
    pub paths: DatasetPaths,
    /// `--preset` / `--config`.
    pub model: Option<ModelConfig>,
    /// `--train-config FILE`, read.
    pub options_file: Option<(PathBuf, TrainOptions)>,
    /// The flags.
    pub overrides: OptionOverrides,
    /// Fresh, resumed or initialised.
    pub start: Start,
    /// `--out RUNDIR`.
    pub out: PathBuf,
    /// The device.
    pub device: Device,
    /// `--skip-invalid-proposals`.
    pub skip_invalid_proposals: bool,
    /// `--no-validation`.
    pub no_validation: bool,
    /// `--allow-changed-settings`.
    pub allow_changed_settings: bool,
}

/// A run ready to train.
pub struct Session {
    /// The model, optimiser and position.
    pub trainer: Trainer,
    /// The videos trained on.
    pub train: Split,
    /// The videos validated on.
    pub val: Option<Split>,
    /// The held-out videos.
    pub held_out: Option<CalibrationSet>,
    /// How videos are prepared.
    pub data: DataOptions,
    /// The run directory.
    pub dir: RunDir,
    /// The log.
    pub log: RunLog,
    /// The checkpoint the run continues, if any.
    resumed_from: Option<PathBuf>,
    /// Whether this run created the run directory.
    created_dir: bool,
}

impl Session {
    /// Settles everything before the first step (see the module's doc);
    /// notes go to `log`.
    pub fn prepare(req: &TrainRequest, log: &Log) -> Result<Self> {
        let dir = RunDir::check(&req.out)?;
        refuse_init_from_run_dir(&req.start, &dir)?;
        let resumed = match &req.start {
            Start::Resume(p) => Some(Checkpoint::load(p, &ConfigOverride::Embedded)?),
            other => {
                if !other.overwrite() {
                    refuse_existing_run(&dir)?;
                }
                None
            }
        };
        let saved = resumed.as_ref().map(saved_settings).transpose()?;
        let (cfg, opts, init) = settle_settings(req, saved.as_ref())?;
        let data = data_options(&opts, req.skip_invalid_proposals);
        let opened = open_data(req, &cfg, &opts, &data)?;
        let mut trainer = Trainer::new(&cfg, opts, req.device);
        trainer.data = opened.summary.clone();
        if let (Some(ck), Some(saved)) = (resumed, &saved) {
            check_resume(req, saved, &trainer.saved_settings(), &ck.path, log)?;
            let per_epoch = steps_per_epoch(opened.train.videos.len(), trainer.opts.batch_size);
            trainer.resume_from(&checked_against(ck, &cfg)?, per_epoch)?;
        }
        if let Start::Init { path, .. } = &req.start {
            init_from(&mut trainer, path, init)?;
        }
        let created_dir = !dir.path().exists();
        let run_log = start_files(&dir, req, trainer.pos, log)?;
        Ok(Self {
            resumed_from: match &req.start {
                Start::Resume(p) => Some(p.clone()),
                _ => None,
            },
            created_dir,
            trainer,
            train: opened.train,
            val: opened.val,
            held_out: opened.held_out,
            data,
            dir,
            log: run_log,
        })
    }

    /// Trains (see [`Trainer::run`]). A run that fails before its first
    /// checkpoint in the run directory removes what it wrote (its log, and
    /// the run directory when that is then empty and was created by it); a
    /// run resumed into a directory it did not create keeps the log there.
    pub fn run(&mut self, ctl: RunControl) -> Result<RunOutcome> {
        let setup = RunSetup {
            train: &self.train,
            val: self.val.as_ref(),
            held_out: self.held_out.as_ref(),
            data: &self.data,
            dir: &self.dir,
            resumed_from: self.resumed_from.as_deref(),
        };
        let result = self.trainer.run(&setup, &mut self.log, ctl);
        let log_is_ours = self.resumed_from.is_none() || self.created_dir;
        if result.is_err() && log_is_ours && !self.dir.last().exists() {
            let _ = std::fs::remove_file(self.dir.log());
            if self.created_dir {
                let _ = std::fs::remove_dir(self.dir.path());
            }
        }
        result
    }
}

/// Refuses `--init` from a file of the run directory: the new run replaces
/// its files (`--overwrite` removes them first), and never an input.
fn refuse_init_from_run_dir(start: &Start, dir: &RunDir) -> Result<()> {
    let Start::Init { path, .. } = start else {
        return Ok(());
    };
    let Some(file) = dir.run_file_same_as(path) else {
        return Ok(());
    };
    Err(TrainError::RunDir {
        path: dir.path().to_path_buf(),
        reason: format!(
            "--init {} is {}, a file of this run directory, which a new run replaces \
             (--overwrite removes it first): copy the checkpoint out of the directory, or \
             choose another --out",
            path.display(),
            file.display()
        ),
    })
}

/// Refuses a fresh run where a run's checkpoints are.
fn refuse_existing_run(dir: &RunDir) -> Result<()> {
    if !dir.holds_run() {
        return Ok(());
    }
    let step = Checkpoint::load(&dir.last(), &ConfigOverride::Embedded)
        .map(|c| c.position.global_step)
        .unwrap_or(0);
    Err(TrainError::RunExists {
        path: dir.path().to_path_buf(),
        step,
    })
}

/// The model config and options of the run: the checkpoint's (on resume)
/// or the defaults, then the file, then the flags; the decode scale
/// policy applied to the config; everything range-checked. With `--init`
/// and no model given, the config is the checkpoint's, and the checkpoint
/// read for it comes back too.
fn settle_settings(
    req: &TrainRequest,
    saved: Option<&SavedSettings>,
) -> Result<(ModelConfig, TrainOptions, Option<Checkpoint>)> {
    let mut opts = saved.map_or_else(TrainOptions::default, |s| TrainOptions {
        max_steps: None,
        ..s.options.clone()
    });
    if let Some((_, file)) = &req.options_file {
        opts = file.clone();
    }
    req.overrides.apply(&mut opts);
    opts.validate().map_err(|cause| match &req.options_file {
        Some((path, _)) => TrainError::OptionsIn {
            path: path.clone(),
            cause,
        },
        None => TrainError::Options(cause),
    })?;
    let (mut cfg, init) = match (&req.model, saved, &req.start) {
        (Some(c), _, _) => (c.clone(), None),
        (None, Some(s), _) => (s.model.clone(), None),
        (None, None, Start::Init { path, .. }) => {
            let ck = Checkpoint::load(path, &ConfigOverride::Embedded)?;
            (ck.config.clone(), Some(ck))
        }
        (None, None, _) => return Err(TrainError::NoModel),
    };
    cfg.se_decode_scale_infer = match opts.decode_scale {
        DecodeScale::Release => RELEASE_DECODE_SCALE,
        DecodeScale::Fixed(v) => v,
        DecodeScale::Calibrate => cfg.se_decode_scale_infer,
    };
    Ok((cfg, opts, init))
}

fn data_options(opts: &TrainOptions, skip_invalid: bool) -> DataOptions {
    DataOptions {
        max_proposals: opts.max_proposals,
        min_instance_seconds: opts.min_instance_seconds,
        layout: opts.feature_layout,
        resample: opts.resample,
        skip_invalid_proposals: skip_invalid,
    }
}

/// The splits, the held-out videos and the data's summary.
struct OpenedData {
    train: Split,
    val: Option<Split>,
    held_out: Option<CalibrationSet>,
    summary: DataSummary,
}

fn open_data(
    req: &TrainRequest,
    cfg: &ModelConfig,
    opts: &TrainOptions,
    d: &DataOptions,
) -> Result<OpenedData> {
    let ds = TrainingData::open(&req.paths, d)?;
    require_subset(&ds.dataset, "--train-subset", &opts.train_subset)?;
    let all = ds.split(&opts.train_subset, cfg, d)?;
    if all.videos.is_empty() {
        return Err(TrainError::NoTrainingVideos {
            subset: all.subset.clone(),
            skipped: all.skipped.clone(),
        });
    }
    let fraction = opts.calibration_fraction();
    let (train, held) = all.hold_out(fraction, opts.seed)?;
    let val = if req.no_validation {
        None
    } else {
        require_subset(&ds.dataset, "--val-subset", &opts.val_subset)?;
        Some(ds.split(&opts.val_subset, cfg, d)?)
    };
    let summary = summarise(&train.videos, &held);
    let held_out = held_out_set(&ds, &held, opts, d)?;
    Ok(OpenedData {
        train,
        val,
        held_out,
        summary,
    })
}

/// Refuses a subset (given by `flag`) that no video of the annotations is
/// in, naming the subsets the file has.
pub fn require_subset(ds: &Dataset, flag: &str, subset: &str) -> Result<(), DataError> {
    let a = &ds.annotations;
    if a.subset(subset).next().is_some() {
        return Ok(());
    }
    let has = a.subset_names();
    let skip = if flag == "--val-subset" {
        ", or pass --no-validation"
    } else {
        ""
    };
    Err(DataError::invalid(
        &a.path,
        format!(
            "{flag} '{subset}': no video is in this subset (the file has: {has}); give one of \
             them{skip}"
        ),
    ))
}

fn summarise(train: &[VideoEntry], held: &[VideoEntry]) -> DataSummary {
    DataSummary {
        videos: train.len(),
        calibration_videos: held.len(),
        instances: train.iter().map(|v| v.instances.len()).sum(),
        proposals: train.iter().map(|v| v.proposals.len()).sum(),
        digest: data_fingerprint(train, held),
    }
}

fn held_out_set(
    ds: &TrainingData,
    held: &[VideoEntry],
    opts: &TrainOptions,
    d: &DataOptions,
) -> Result<Option<CalibrationSet>> {
    if held.is_empty() {
        return Ok(None);
    }
    let ids: Vec<String> = held.iter().map(|v| v.id.clone()).collect();
    let source = held_out_source(opts);
    let input = InferenceInput {
        layout: d.layout,
        resample: d.resample,
        max_proposals: None,
    };
    CalibrationSet::new(Arc::clone(&ds.dataset), &ids, source, input).map(Some)
}

/// How the held-out slice is described in records and messages.
pub fn held_out_source(opts: &TrainOptions) -> String {
    let percent = (opts.calibration_fraction() * 1e4).round() / 100.0;
    format!(
        "held-out {percent}% of {} (seed {})",
        opts.train_subset, opts.seed
    )
}

/// On resume: the settings exactness depends on must be the checkpoint's,
/// unless `--allow-changed-settings` (then each change is a warning).
fn check_resume(
    req: &TrainRequest,
    saved: &SavedSettings,
    now: &SavedSettings,
    path: &Path,
    log: &Log,
) -> Result<()> {
    let changes = changed_settings(saved, now);
    if changes.is_empty() {
        return Ok(());
    }
    if !req.allow_changed_settings {
        return Err(TrainError::SettingsChanged {
            path: path.to_path_buf(),
            changes,
        });
    }
    for c in &changes {
        log.warn(format!("resuming with a changed setting: {c}"));
    }
    Ok(())
}

/// `--init`: the weights of a checkpoint of the same network (`read`:
/// the checkpoint, when it was read for its config already).
fn init_from(trainer: &mut Trainer, path: &Path, read: Option<Checkpoint>) -> Result<()> {
    let ck = match read {
        Some(ck) => ck,
        None => Checkpoint::load_with_fallback(
            path,
            &ConfigOverride::Embedded,
            &ConfigOverride::Given(trainer.cfg.clone()),
        )?,
    };
    if let Some(field) = first_network_difference(&ck.config, &trainer.cfg) {
        return Err(TrainError::OtherConfig {
            path: path.to_path_buf(),
            field,
        });
    }
    trainer.load_weights(&ck);
    Ok(())
}

/// The resumed checkpoint checked against the run's network (read again
/// only when an allowed change made it differ from its own config).
fn checked_against(ck: Checkpoint, cfg: &ModelConfig) -> Result<Checkpoint> {
    if first_network_difference(&ck.config, cfg).is_none() {
        return Ok(ck);
    }
    Ok(Checkpoint::load(
        &ck.path,
        &ConfigOverride::Given(cfg.clone()),
    )?)
}

/// Creates the run directory, clears what a killed save (or, with
/// `--overwrite`, a previous run) left, and opens the log.
fn start_files(dir: &RunDir, req: &TrainRequest, pos: Position, log: &Log) -> Result<RunLog> {
    dir.create()?;
    for f in dir.remove_stale_temps() {
        log.info(format!("removed {} (left by a killed save)", f.display()));
    }
    if req.start.overwrite() {
        for f in dir.remove_run_files()? {
            log.info(format!(
                "removed {} of the previous run (--overwrite)",
                f.display()
            ));
        }
    }
    if !matches!(req.start, Start::Resume(_)) {
        return RunLog::create(&dir.log());
    }
    let (run_log, t) = RunLog::resume(&dir.log(), pos)?;
    if t.dropped + t.unreadable > 0 {
        log.info(format!(
            "{}: kept {} records up to step {}, dropped {} past the checkpoint and {} unreadable",
            dir.log().display(),
            t.kept,
            pos.global_step,
            t.dropped,
            t.unreadable
        ));
    }
    Ok(run_log)
}
