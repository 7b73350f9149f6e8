//! `tcanet-train-core` (run through the `tcanet-train` launcher, which
//! finds libtorch): train TCANet (`train`), choose a checkpoint's decode
//! scale (`calibrate`), write a synthetic dataset (`synth`), refine with a
//! checkpoint (`predict`) or time a training step (`bench`).
//!
//! Exit status: 0 done; 2 bad usage or input (nothing written); 1 other
//! failures. Progress and notes on stderr (`--quiet` silences them).
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use tcanet_cli::{ExitStatus, Log, Usage};
use tcanet_models::calibration::DEFAULT_DECODE_GRID;
use tcanet_models::checkpoint::{Checkpoint, CheckpointError, ConfigOverride};
use tcanet_models::data::{DataError, DatasetPaths, GivenPaths, InputGuard};
use tcanet_models::{ConfigError, ModelConfig};
use tcanet_train_args::cli::{
    BenchArgs, CalibrateArgs, Cli, Command, DataArgs, ModelArgs, PredictArgs, SynthArgs, TrainArgs,
};
use tcanet_trainer::bench::bench_steps;
use tcanet_trainer::calibrate::{calibrated_checkpoint_bytes, run_held_out_videos, CalibrationSet};
use tcanet_trainer::dataset::{DataOptions, TrainingData};
use tcanet_trainer::device::{device_name, resolve, DeviceError};
use tcanet_trainer::error::{libtorch_failure, TrainError};
use tcanet_trainer::inference::{checkpoint_network, InferenceInput};
use tcanet_trainer::options::{OptionsError, TrainOptions};
use tcanet_trainer::predict::predict_subset;
use tcanet_trainer::run::{progress_bar, RunControl, RunOutcome};
use tcanet_trainer::session::{
    held_out_source, require_subset, OptionOverrides, Session, Start, TrainRequest,
};
use tcanet_trainer::synth::{write_dataset, SynthError, SynthOptions};
use tcanet_trainer::trainer::{run_settings, Trainer};

fn main() -> ExitCode {
    let cli: Cli = tcanet_cli::parse_with_version(tcanet_version::long_version!());
    let log = cli.common.log();
    quiet_libtorch_panics();
    // A libtorch failure (tch panics on it) unwinds to here: its temporary
    // files are removed on the way, and it ends as a one-line error.
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match cli.command {
        Command::Train(a) => train(a, log),
        Command::Calibrate(a) => calibrate(a, log),
        Command::Synth(a) => synth(a, log),
        Command::Bench(a) => bench(a),
        Command::Predict(a) => predict(a, log),
    }))
    .unwrap_or_else(|payload| match libtorch_failure(&*payload) {
        Some(message) => Err(TrainError::Libtorch { message }.into()),
        None => std::panic::resume_unwind(payload),
    });
    match result {
        Ok(()) => ExitStatus::Success.into(),
        Err(e) => tcanet_cli::report_error(e.as_ref(), typed_status, &log).into(),
    }
}

/// Panics that are libtorch failures print nothing (main reports them);
/// any other panic prints as usual.
fn quiet_libtorch_panics() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if libtorch_failure(info.payload()).is_none() {
            default(info);
        }
    }));
}

/// The exit status of one of the trainer's error types, `None` for others.
fn typed_status(cause: &(dyn std::error::Error + 'static)) -> Option<ExitStatus> {
    if let Some(t) = cause.downcast_ref::<TrainError>() {
        return Some(t.exit_status());
    }
    if let Some(s) = cause.downcast_ref::<SynthError>() {
        return Some(s.exit_status());
    }
    let usage = cause.is::<DataError>()
        || cause.is::<CheckpointError>()
        || cause.is::<ConfigError>()
        || cause.is::<OptionsError>()
        || cause.is::<DeviceError>();
    usage.then_some(ExitStatus::Usage)
}

fn set_threads(threads: Option<i32>) {
    if let Some(n) = threads {
        tch::set_num_threads(n);
    }
}

fn model_config(m: &ModelArgs) -> Result<Option<ModelConfig>> {
    if let Some(p) = &m.preset {
        return Ok(Some(ModelConfig::preset(p)?));
    }
    let Some(path) = &m.config else {
        return Ok(None);
    };
    let text = std::fs::read_to_string(path).map_err(|cause| TrainError::Read {
        path: path.clone(),
        cause,
    })?;
    let cfg = ModelConfig::from_json(&text).map_err(|e| TrainError::BadFile {
        path: path.clone(),
        reason: e.to_string(),
    })?;
    Ok(Some(cfg))
}

fn dataset_paths(d: &DataArgs) -> Result<DatasetPaths> {
    let given = GivenPaths {
        data: d.data.clone(),
        annotations: d.annotations.clone(),
        features: d.features.clone(),
        proposals: d.proposals.clone(),
    };
    Ok(DatasetPaths::resolve(&given, true)?)
}

fn read_train_config(path: &Option<PathBuf>) -> Result<Option<(PathBuf, TrainOptions)>> {
    let Some(path) = path else {
        return Ok(None);
    };
    let text = std::fs::read_to_string(path).map_err(|cause| TrainError::Read {
        path: path.clone(),
        cause,
    })?;
    let bad = |reason: String| TrainError::BadFile {
        path: path.clone(),
        reason: format!("invalid training options: {reason}"),
    };
    let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
    // serde would read a list as the fields in order, names unchecked.
    if !value.is_object() {
        let kind = tcanet_models::config::json_kind(&value);
        return Err(bad(format!("a JSON object of fields is needed, not {kind}")).into());
    }
    let opts = serde_json::from_value(value).map_err(|e| bad(e.to_string()))?;
    Ok(Some((path.clone(), opts)))
}

fn overrides(a: &TrainArgs) -> OptionOverrides {
    OptionOverrides {
        epochs: a.epochs,
        batch_size: a.batch_size,
        lr: a.lr,
        weight_decay: a.weight_decay,
        warmup_iters: a.warmup_iters,
        lr_decay_epoch: a.lr_decay_epoch,
        lr_decay: a.lr_decay,
        seed: a.seed,
        workers: a.workers,
        max_proposals: a.max_proposals,
        min_instance_seconds: a.min_instance_seconds,
        train_subset: a.train_subset.clone(),
        val_subset: a.val_subset.clone(),
        max_steps: a.max_steps,
        save_every: a.save_every,
        resample: a.resample,
        feature_layout: a.feature_layout,
        decode_scale: a.decode_scale,
        decode_grid: a.decode_grid.clone(),
        calibration_fraction: a.calibration_fraction,
    }
}

fn start(a: &TrainArgs) -> Start {
    match (&a.resume, &a.init) {
        (Some(given), _) => Start::Resume(
            given
                .clone()
                .unwrap_or_else(|| a.out.join(tcanet_trainer::rundir::LAST)),
        ),
        (None, Some(init)) => Start::Init {
            path: init.clone(),
            overwrite: a.overwrite,
        },
        (None, None) => Start::Fresh {
            overwrite: a.overwrite,
        },
    }
}

fn train(a: TrainArgs, log: Log) -> Result<()> {
    set_threads(a.device.threads);
    let req = TrainRequest {
        paths: dataset_paths(&a.data)?,
        model: model_config(&a.model)?,
        options_file: read_train_config(&a.train_config)?,
        overrides: overrides(&a),
        start: start(&a),
        out: a.out.clone(),
        device: resolve(a.device.device)?,
        skip_invalid_proposals: a.skip_invalid_proposals,
        no_validation: a.no_validation,
        allow_changed_settings: a.allow_changed_settings,
    };
    let mut session = Session::prepare(&req, &log)?;
    report_start(&session, &log);
    let ctl = RunControl {
        kill_after_step: None,
        progress: !log.quiet,
        log,
    };
    let outcome = session.run(ctl)?;
    report_end(&session, &outcome, &log);
    Ok(())
}

fn report_start(s: &Session, log: &Log) {
    let t = &s.trainer;
    for split in std::iter::once(&s.train).chain(s.val.as_ref()) {
        log.info(format!(
            "{}: {} videos usable (skipped: {})",
            split.subset,
            split.videos.len(),
            split.skipped
        ));
    }
    if let Some(h) = &s.held_out {
        log.info(format!(
            "{} video(s) held out of training ({}) to choose the decode scale and best.safetensors",
            h.len(),
            h.source()
        ));
    }
    if t.pos.global_step > 0 {
        log.info(format!(
            "resuming at epoch {}, step {} of the epoch ({} steps done)",
            t.pos.epoch + 1,
            t.pos.step_in_epoch,
            t.pos.global_step
        ));
    }
    if let Some(why) = nothing_left(t) {
        log.info(format!("nothing left to train: {why}"));
    }
    log.info(format!(
        "training on {}: {} videos, batch {}, {} epochs, decode scale {}",
        device_name(t.device),
        s.train.videos.len(),
        t.opts.batch_size,
        t.opts.epochs,
        t.opts.decode_scale
    ));
}

/// Why a resumed run has no step to take, if it has none.
fn nothing_left(t: &Trainer) -> Option<String> {
    if t.pos.epoch >= t.opts.epochs {
        return Some(format!(
            "{} of {} epochs are done (to train more, resume with a larger --epochs and \
             --allow-changed-settings)",
            t.pos.epoch, t.opts.epochs
        ));
    }
    let max = t.opts.max_steps.filter(|&m| t.pos.global_step >= m)?;
    Some(format!(
        "--max-steps {max} is reached ({} steps done); raise it to continue",
        t.pos.global_step
    ))
}

fn report_end(s: &Session, o: &RunOutcome, log: &Log) {
    if let Some(v) = &o.validation {
        log.info(format!(
            "validation loss {:.4}; mean IoU with matched GT P1 {:.4}, P2 {:.4}, P3 {:.4}, P4 {:.4}",
            v.loss, v.mean_iou[0], v.mean_iou[1], v.mean_iou[2], v.mean_iou[3]
        ));
    }
    if let Some(c) = &o.calibration {
        log.info(format!(
            "decode scale {} on {} held-out videos (AUC per scale: {}; input proposals: {:.2})",
            c.chosen,
            c.videos,
            c.describe_grid(),
            c.input_auc.unwrap_or(f64::NAN)
        ));
        if let Some(w) = c.warning() {
            log.warn(w);
        }
    }
    if let Some(b) = &o.best {
        let best = s.dir.best();
        // A run resumed from another directory writes best.safetensors
        // only when one of its epochs improves on the recorded best.
        let place = if best.exists() {
            format!(": {}", best.display())
        } else {
            format!(
                ", written by the run resumed from (no epoch of this run improved on it, so {} \
                 holds no best.safetensors)",
                s.dir.path().display()
            )
        };
        log.info(format!(
            "best: epoch {} (held-out AUC {:.2}, decode scale {}){place}",
            b.epoch, b.auc, b.scale
        ));
    }
    log.info(format!("checkpoint: {}", s.dir.last().display()));
}

fn calibrate(a: CalibrateArgs, log: Log) -> Result<()> {
    set_threads(a.device.threads);
    let device = resolve(a.device.device)?;
    let paths = dataset_paths(&a.data)?;
    let mut guard = InputGuard::default();
    guard.file(&a.checkpoint).dataset(&paths, true);
    if let Some(config) = &a.model.config {
        guard.file(config);
    }
    guard.check(&[("-o", &a.output)])?;
    let cfg_override =
        model_config(&a.model)?.map_or(ConfigOverride::Embedded, ConfigOverride::Given);
    let ck = Checkpoint::load(&a.checkpoint, &cfg_override)?;
    let d = DataOptions {
        layout: a.feature_layout,
        resample: a.resample,
        skip_invalid_proposals: a.skip_invalid_proposals,
        ..DataOptions::default()
    };
    let ds = TrainingData::open(&paths, &d)?;
    let (ids, source) = calibration_videos(&a, &ck, &ds, &d, &log)?;
    let input = InferenceInput {
        layout: d.layout,
        resample: d.resample,
        max_proposals: None,
    };
    let set = CalibrationSet::new(ds.dataset.clone(), &ids, source, input)?;
    let net = checkpoint_network(&ck, device);
    let grid = a
        .decode_grid
        .clone()
        .unwrap_or(DEFAULT_DECODE_GRID.to_vec());
    let c = set.score(&net, device, &grid, a.workers, ck.position.epoch)?;
    drop(net);
    a.output
        .write_bytes(&calibrated_checkpoint_bytes(ck, &c)?)?;
    log.info(format!(
        "decode scale {} on {} videos, {} (AUC per scale: {}; input proposals: {:.2}); wrote {}",
        c.chosen,
        c.videos,
        c.source,
        c.describe_grid(),
        c.input_auc.unwrap_or(f64::NAN),
        a.output
    ));
    if let Some(w) = c.warning() {
        log.warn(w);
    }
    Ok(())
}

/// `--subset`'s usable videos, or the videos the checkpoint's run held out.
fn calibration_videos(
    a: &CalibrateArgs,
    ck: &Checkpoint,
    ds: &TrainingData,
    d: &DataOptions,
    log: &Log,
) -> Result<(Vec<String>, String)> {
    if let Some(subset) = &a.subset {
        let split = ds.split(subset, &ck.config, d)?;
        let ids = split.videos.into_iter().map(|v| v.id).collect();
        return Ok((ids, format!("subset {subset}")));
    }
    let Some(settings) = run_settings(ck)? else {
        bail!(Usage(format!(
            "{} carries no record of a training run, so its held-out videos are unknown: pass \
             --subset NAME (a subset the model was not trained on, and not the one you evaluate on)",
            ck.path.display()
        )));
    };
    let data = DataOptions {
        max_proposals: settings.options.max_proposals,
        min_instance_seconds: settings.options.min_instance_seconds,
        ..d.clone()
    };
    let (ids, digest) = run_held_out_videos(ds, &settings, &data)?;
    if digest != settings.data.digest {
        log.warn(
            "the data differs from the run's (its fingerprint changed): the held-out videos \
             found now may include videos the model was trained on",
        );
    }
    Ok((ids, held_out_source(&settings.options)))
}

fn synth(a: SynthArgs, log: Log) -> Result<()> {
    if a.min_duration > a.max_duration {
        bail!(Usage(format!(
            "--min-duration {} exceeds --max-duration {}",
            a.min_duration, a.max_duration
        )));
    }
    let o = SynthOptions {
        train_videos: a.train_videos,
        val_videos: a.val_videos,
        classes: a.classes,
        channels: a.channels,
        steps: a.steps,
        interval: a.interval,
        noise: a.noise,
        boundary_error: a.boundary_error,
        proposals_per_video: a.proposals_per_video,
        duration_range: (a.min_duration, a.max_duration),
        seed: a.seed,
    };
    let bar = progress_bar(!log.quiet, (o.train_videos + o.val_videos) as u64, "videos");
    let s = write_dataset(&a.out, &o, |i, _| bar.set_position(i as u64))?;
    bar.finish_and_clear();
    log.info(format!(
        "wrote {}: {} videos, {} instances, {} proposals (mean best IoU {:.3})",
        a.out.display(),
        s.videos,
        s.instances,
        s.proposals,
        s.mean_best_iou
    ));
    Ok(())
}

fn bench(a: BenchArgs) -> Result<()> {
    set_threads(a.device.threads);
    let device = resolve(a.device.device)?;
    let cfg = model_config(&a.model)?.unwrap_or_else(ModelConfig::tiny);
    let r = bench_steps(&cfg, device, a.batch_size, a.proposals, a.warmup, a.steps)?;
    let json = serde_json::json!({
        "device": device_name(device), "threads": tch::get_num_threads(),
        "feat_dim": cfg.feat_dim, "temporal_scale": cfg.temporal_scale, "hidden_dim": cfg.hidden_dim,
        "result": r,
    });
    tcanet_cli::write_stdout(|w| writeln!(w, "{json}"))?;
    Ok(())
}

fn predict(a: PredictArgs, log: Log) -> Result<()> {
    set_threads(a.device.threads);
    let paths = DatasetPaths::in_dir(&a.data);
    let mut outputs = vec![("--out", &a.out)];
    outputs.extend(a.input_out.as_ref().map(|o| ("--input-out", o)));
    InputGuard::default()
        .file(&a.checkpoint)
        .dataset(&paths, true)
        .check(&outputs)?;
    let device = resolve(a.device.device)?;
    let net = checkpoint_network(
        &Checkpoint::load(&a.checkpoint, &ConfigOverride::Embedded)?,
        device,
    );
    let d = DataOptions {
        skip_invalid_proposals: true,
        ..DataOptions::default()
    };
    let ds = TrainingData::open(&paths, &d)?.dataset;
    require_subset(&ds, "--subset", &a.subset)?;
    let input = InferenceInput {
        layout: a.feature_layout,
        resample: a.resample,
        max_proposals: Some(a.max_proposals),
    };
    let bar = progress_bar(!log.quiet, 0, "videos");
    let p = predict_subset(&net, device, &ds, &a.subset, input, |i, n| {
        bar.set_length(n as u64);
        bar.set_position(i as u64);
    })
    .with_context(|| format!("predicting subset '{}'", a.subset))?;
    bar.finish_and_clear();
    a.out.write_bytes(p.refined.to_json().as_bytes())?;
    if let Some(o) = &a.input_out {
        o.write_bytes(p.input.to_json().as_bytes())?;
    }
    log.info(format!(
        "wrote {} ({} videos)",
        a.out,
        p.refined.videos.len()
    ));
    Ok(())
}
