//! The training loop: deterministic batches on worker threads, AdamW with
//! the TCANet schedule, validation each epoch, JSON-lines log, checkpoints
//! (safetensors + training state, atomically) and exact resumption.
use crate::adamw::{copy_into, to_host, AdamW, AdamWConfig};
use crate::dataset::{load_sample, DataOptions, Split, VideoEntry};
use crate::schedule::LrSchedule;
use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;
pub use tcanet_models::checkpoint::Position;
use tcanet_models::checkpoint::{
    write_checkpoint, Checkpoint, CheckpointContents, ConfigOverride, TrainState, KEY_CONFIG,
};
use tcanet_models::data::matching::segment_iou;
use tcanet_models::data::prepare::{TrainingBatch, TrainingSample};
use tcanet_models::data::{DataError, Prefetcher};
use tcanet_models::{param_specs, ModelConfig};
use tcanet_nn::{tcanet_loss, Forward, LossTerms, TcaNet};
use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};

/// Parses `auto`, `cpu`, `cuda` or `cuda:N`; `auto` is CUDA device 0 when
/// `tch::Cuda::is_available()`, else the CPU.
pub fn parse_device(s: &str) -> Result<Device> {
    let cuda = |i: usize| -> Result<Device> {
        if !tch::Cuda::is_available() {
            bail!(
                "--device {s}: CUDA is not available (no GPU visible to libtorch, or a CPU-only libtorch); use --device cpu or auto"
            );
        }
        let n = tch::Cuda::device_count() as usize;
        if i >= n {
            bail!("--device {s}: only {n} CUDA device(s) are visible");
        }
        Ok(Device::Cuda(i))
    };
    match s {
        "auto" => Ok(if tch::Cuda::is_available() {
            Device::Cuda(0)
        } else {
            Device::Cpu
        }),
        "cpu" => Ok(Device::Cpu),
        "cuda" => cuda(0),
        other => match other.strip_prefix("cuda:").map(str::parse::<usize>) {
            Some(Ok(i)) => cuda(i),
            _ => bail!("--device {other}: use auto, cpu, cuda or cuda:N"),
        },
    }
}

/// Everything about a run except the model config and the data paths; also
/// the JSON of `--train-config` (absent fields take the defaults).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct TrainOptions {
    /// Epochs (9).
    pub epochs: u64,
    /// Videos per batch (16).
    pub batch_size: usize,
    /// Learning-rate schedule.
    pub schedule: LrSchedule,
    /// AdamW weight decay (1e-5).
    pub weight_decay: f64,
    /// Seed of every random choice (init, shuffling, dropout, loss sampling).
    pub seed: u64,
    /// Stop (with a checkpoint) once this many steps are done in total.
    pub max_steps: Option<u64>,
    /// Also write `last.safetensors` every this many steps.
    pub save_every: Option<u64>,
    /// Threads preparing batches.
    pub workers: usize,
    /// Subset to train on (`training`).
    pub train_subset: String,
    /// Subset to validate on each epoch (`validation`).
    pub val_subset: String,
    /// Input proposals per video (64).
    pub max_proposals: usize,
    /// Ground-truth instances shorter than this are dropped (1 s).
    pub min_instance_seconds: f64,
    /// Resample long feature sequences.
    pub resample: bool,
    /// Feature file layout: `auto` (detected from C), `tc` ([T, C]) or `ct` ([C, T]).
    pub feature_layout: String,
}

impl Default for TrainOptions {
    fn default() -> Self {
        Self {
            epochs: 9,
            batch_size: 16,
            schedule: LrSchedule::default(),
            weight_decay: 1e-5,
            seed: 0,
            max_steps: None,
            save_every: None,
            workers: 2,
            train_subset: "training".into(),
            val_subset: "validation".into(),
            max_proposals: 64,
            min_instance_seconds: 1.0,
            resample: false,
            feature_layout: "auto".into(),
        }
    }
}

/// Validation figures of one epoch.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Validation {
    /// Mean total loss per batch.
    pub loss: f64,
    /// Mean (se, xw, iou) loss per stage.
    pub stage_losses: Vec<[f64; 3]>,
    /// Mean IoU with the matched ground truth of P_1 (input) .. P_4 (final).
    pub mean_iou: Vec<f64>,
    /// Fraction of proposals with IoU ≥ 0.7, P_1 .. P_4.
    pub frac_iou_07: Vec<f64>,
    /// Proposals evaluated.
    pub proposals: usize,
    /// Videos evaluated.
    pub videos: usize,
}

/// What stops a run early (besides `max_steps`); used by tests to simulate a kill.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunControl {
    /// Return right after this global step, writing nothing (a simulated kill).
    pub kill_after_step: Option<u64>,
    /// Draw a progress bar on stderr (when it is a terminal).
    pub progress: bool,
}

/// A model, its optimiser and its position in the run.
pub struct Trainer {
    /// The model config.
    pub cfg: ModelConfig,
    /// Run options.
    pub opts: TrainOptions,
    /// Where tensors live.
    pub device: Device,
    /// The variables (named as `param_specs`).
    pub vs: VarStore,
    /// The network.
    pub net: TcaNet,
    /// The optimiser.
    pub opt: AdamW,
    /// The position.
    pub pos: Position,
}

fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// torch's seed before global step `step`: a hash of (seed, step).
pub fn step_seed(seed: u64, step: u64) -> i64 {
    (splitmix64(splitmix64(seed) ^ step) >> 1) as i64
}

/// The training order of epoch `epoch`: a permutation of `0..n` from ChaCha8 seeded by (seed, epoch).
pub fn epoch_order(seed: u64, epoch: u64, n: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    let mut rng =
        rand_chacha::ChaCha8Rng::seed_from_u64(splitmix64(seed ^ 0x5348_5546_464C_4521) ^ epoch);
    order.shuffle(&mut rng);
    order
}

/// A JSON-lines log, appended to and flushed line by line.
pub struct JsonLog {
    file: Option<std::fs::File>,
}

impl JsonLog {
    /// Appends to `path` (created if absent); `None` logs nothing.
    pub fn open(path: Option<&Path>) -> Result<Self> {
        let file = match path {
            Some(p) => Some(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(p)
                    .with_context(|| format!("cannot open the log {}", p.display()))?,
            ),
            None => None,
        };
        Ok(Self { file })
    }

    /// Writes one JSON value as a line.
    pub fn write(&mut self, value: &serde_json::Value) -> Result<()> {
        if let Some(f) = &mut self.file {
            writeln!(f, "{value}")?;
            f.flush()?;
        }
        Ok(())
    }
}

fn batch_tensors(b: &TrainingBatch, device: Device) -> (Tensor, Tensor, Tensor, Tensor) {
    let n = b.len() as i64;
    let f = Tensor::from_slice(&b.features)
        .view([n, b.channels as i64, b.steps as i64])
        .to_device(device);
    let p = Tensor::from_slice(&b.proposals)
        .view([n, b.slots as i64, 2])
        .to_device(device);
    let g = Tensor::from_slice(&b.gt)
        .view([n, b.slots as i64, 2])
        .to_device(device);
    let v = Tensor::from_slice(&b.valid)
        .view([n, b.slots as i64])
        .to_device(device)
        .to_kind(Kind::Bool);
    (f, p, g, v)
}

/// The loss terms as host numbers: `[total, s1.se, s1.xw, s1.iou, s2.se, ...]`.
fn loss_values(l: &LossTerms) -> Vec<f64> {
    let mut parts = vec![l.total.detach()];
    for s in &l.per_stage {
        parts.extend([s.se.detach(), s.xw.detach(), s.iou.detach()]);
    }
    let t = Tensor::stack(&parts, 0)
        .to_device(Device::Cpu)
        .to_kind(Kind::Double);
    Vec::<f64>::try_from(t).expect("a double tensor converts")
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
    Ok(TrainingBatch::collate(&samples, d.max_proposals, cfg))
}

/// Prefetches the batches `batches[start..]` (lists of video indices) on worker threads.
fn prefetch_batches(
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

impl Trainer {
    /// A freshly initialised model (torch seeded with `opts.seed` first).
    pub fn new(cfg: &ModelConfig, opts: TrainOptions, device: Device) -> Self {
        tch::manual_seed(step_seed(opts.seed, u64::MAX));
        let vs = VarStore::new(device);
        let net = TcaNet::new(&vs.root(), cfg);
        let vars = vs.variables();
        let params = param_specs(cfg)
            .into_iter()
            .map(|s| {
                let t = vars
                    .get(&s.name)
                    .unwrap_or_else(|| panic!("the model has no variable '{}'", s.name))
                    .shallow_clone();
                (s.name, t)
            })
            .collect();
        let opt = AdamW::new(
            params,
            AdamWConfig {
                lr: opts.schedule.base,
                weight_decay: opts.weight_decay,
                ..AdamWConfig::default()
            },
        );
        Self {
            cfg: cfg.clone(),
            opts,
            device,
            vs,
            net,
            opt,
            pos: Position::default(),
        }
    }

    /// The data options implied by the run options.
    pub fn data_options(&self, base: &DataOptions) -> DataOptions {
        DataOptions {
            max_proposals: self.opts.max_proposals,
            min_instance_seconds: self.opts.min_instance_seconds,
            resample: self.opts.resample,
            ..base.clone()
        }
    }

    /// Writes `path`: parameters, config, position and training state in one
    /// file, through a temporary file and one rename.
    pub fn save(&self, path: &Path) -> Result<()> {
        let vars = self.vs.variables();
        let params: Vec<_> = param_specs(&self.cfg)
            .iter()
            .map(|s| to_host(&s.name, &vars[&s.name]))
            .collect();
        let state = TrainState {
            options: serde_json::to_string(&self.opts)?,
            data_fingerprint: String::new(),
            optimizer_steps: self.opt.steps_done,
            tensors: self
                .opt
                .state_tensors()
                .into_iter()
                .map(|t| (t.name, (t.shape, t.data)))
                .collect(),
        };
        write_checkpoint(
            path,
            &CheckpointContents {
                config: &self.cfg,
                position: self.pos,
                params: &params,
                train_state: Some(&state),
                extra: &BTreeMap::new(),
            },
        )?;
        Ok(())
    }

    /// Loads the parameters of `path` (which must be of this config) and,
    /// if `with_state`, the optimiser moments and position it carries.
    pub fn load(&mut self, path: &Path, with_state: bool) -> Result<()> {
        let ck = Checkpoint::load(path, &ConfigOverride::Given(self.cfg.clone()))?;
        if let Some(json) = ck.metadata.get(KEY_CONFIG) {
            if ModelConfig::from_json(json).ok().as_ref() != Some(&self.cfg) {
                bail!(
                    "{}: the checkpoint was trained with another model config; drop --preset/--config to use its own",
                    path.display()
                );
            }
        }
        let mut vars = self.vs.variables();
        for (name, data) in &ck.tensors {
            copy_into(vars.get_mut(name).expect("checked names"), data);
        }
        if !with_state {
            return Ok(());
        }
        let state = ck.train_state.with_context(|| {
            format!(
                "{} carries no training state (an exported or converted checkpoint?): it cannot be resumed; start a new run from it with --init",
                path.display()
            )
        })?;
        self.opt
            .load_state(&state.tensors, state.optimizer_steps)
            .with_context(|| path.display().to_string())?;
        self.pos = ck.position;
        Ok(())
    }

    /// The model config and training options saved in checkpoint `path`.
    pub fn saved_settings(path: &Path) -> Result<(ModelConfig, TrainOptions)> {
        let ck = Checkpoint::load(path, &ConfigOverride::Embedded)?;
        let state = ck.train_state.with_context(|| {
            format!(
                "{} carries no training state: it cannot be resumed",
                path.display()
            )
        })?;
        let opts = serde_json::from_str(&state.options)
            .with_context(|| format!("{}: the saved training options", path.display()))?;
        Ok((ck.config, opts))
    }

    /// One optimisation step on `batch` at the current position; returns the loss terms.
    pub fn step(&mut self, batch: &TrainingBatch) -> Result<Vec<f64>> {
        tch::manual_seed(step_seed(self.opts.seed, self.pos.global_step));
        let lr = self
            .opts
            .schedule
            .lr(self.pos.epoch, self.pos.step_in_epoch);
        let (f, p, g, v) = batch_tensors(batch, self.device);
        let fwd = self.net.forward(&f, &p, true);
        let loss = tcanet_loss(&fwd, &g, &v, &self.cfg);
        self.opt.zero_grad();
        loss.total.backward();
        let values = loss_values(&loss);
        if !values[0].is_finite() {
            bail!(
                "the loss is {} at step {} (videos {:?}); lower --lr or check the data",
                values[0],
                self.pos.global_step + 1,
                batch.videos
            );
        }
        self.opt.config.lr = lr;
        self.opt.step();
        self.pos.step_in_epoch += 1;
        self.pos.global_step += 1;
        Ok(values)
    }

    /// Validation loss and IoU figures on `split` (no dropout, inference decoding).
    pub fn validate(&self, split: &Split, d: &DataOptions, workers: usize) -> Result<Validation> {
        let batches: Vec<Vec<usize>> = (0..split.videos.len())
            .collect::<Vec<_>>()
            .chunks(self.opts.batch_size)
            .map(<[usize]>::to_vec)
            .collect();
        let mut out = Validation {
            mean_iou: vec![0.0; 4],
            frac_iou_07: vec![0.0; 4],
            stage_losses: vec![[0.0; 3]; 3],
            ..Validation::default()
        };
        let nb = batches.len();
        tch::manual_seed(step_seed(
            self.opts.seed ^ 0x7661_6C69_6461_7465,
            self.pos.epoch,
        ));
        for b in prefetch_batches(split, batches, 0, &self.cfg, d, workers) {
            let b = b?;
            let (f, p, g, v) = batch_tensors(&b, self.device);
            let (fwd, loss) = tch::no_grad(|| {
                let fwd = self.net.forward(&f, &p, false);
                let loss = tcanet_loss(&fwd, &g, &v, &self.cfg);
                (fwd, loss)
            });
            let lv = loss_values(&loss);
            out.loss += lv[0] / nb as f64;
            for k in 0..3 {
                for j in 0..3 {
                    out.stage_losses[k][j] += lv[1 + 3 * k + j] / nb as f64;
                }
            }
            accumulate_iou(&fwd, &b, &mut out);
            out.videos += b.len();
        }
        if out.proposals > 0 {
            for k in 0..4 {
                out.mean_iou[k] /= out.proposals as f64;
                out.frac_iou_07[k] /= out.proposals as f64;
            }
        }
        Ok(out)
    }

    /// Trains until `opts.epochs` are done (or `max_steps`), validating after
    /// each epoch and writing `out/last.safetensors`, `out/epoch-N.safetensors`
    /// and `out/train.jsonl`. Returns the last validation, if any.
    pub fn run(
        &mut self,
        train: &Split,
        val: Option<&Split>,
        d: &DataOptions,
        out: &Path,
        ctl: RunControl,
    ) -> Result<Option<Validation>> {
        std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
        if train.videos.is_empty() {
            bail!(
                "no usable training video in subset '{}' (skipped: {:?})",
                train.subset,
                train.skipped
            );
        }
        let mut log = JsonLog::open(Some(&out.join("train.jsonl")))?;
        let last = out.join("last.safetensors");
        let b = self.opts.batch_size.max(1);
        let n = train.videos.len();
        let per_epoch = n.div_ceil(b) as u64;
        let total = per_epoch * self.opts.epochs;
        let stop_at = self.opts.max_steps.map_or(total, |m| m.min(total));
        log.write(&serde_json::json!({
            "event": "start", "position": self.pos, "train_videos": n,
            "val_videos": val.map_or(0, |v| v.videos.len()), "steps_per_epoch": per_epoch,
            "total_steps": total, "skipped_train": train.skipped,
            "skipped_val": val.map(|v| v.skipped.clone()), "options": self.opts,
            "device": format!("{:?}", self.device),
        }))?;
        let bar = if ctl.progress {
            ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr())
        } else {
            ProgressBar::hidden()
        };
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} steps  {msg}  eta {eta}",
            )
            .expect("valid template"),
        );
        bar.set_position(self.pos.global_step);
        let started = Instant::now();
        let mut last_val = None;
        while self.pos.epoch < self.opts.epochs {
            if self.pos.global_step >= stop_at {
                break;
            }
            let order = epoch_order(self.opts.seed, self.pos.epoch, n);
            let batches: Vec<Vec<usize>> = order.chunks(b).map(<[usize]>::to_vec).collect();
            let start = self.pos.step_in_epoch as usize;
            for batch in prefetch_batches(train, batches, start, &self.cfg, d, self.opts.workers) {
                if self.pos.global_step >= stop_at {
                    break;
                }
                let batch = batch?;
                let lr = self
                    .opts
                    .schedule
                    .lr(self.pos.epoch, self.pos.step_in_epoch);
                let v = self.step(&batch)?;
                let mut rec = serde_json::json!({
                    "event": "step", "epoch": self.pos.epoch + 1, "step": self.pos.step_in_epoch,
                    "global_step": self.pos.global_step, "lr": lr, "loss": v[0],
                    "videos": batch.len(), "elapsed_s": started.elapsed().as_secs_f64(),
                });
                for k in 0..3 {
                    for (j, term) in ["se", "xw", "iou"].iter().enumerate() {
                        rec[format!("stage{}_{term}", k + 1)] = serde_json::json!(v[1 + 3 * k + j]);
                    }
                }
                log.write(&rec)?;
                bar.set_position(self.pos.global_step);
                bar.set_message(format!(
                    "epoch {}/{}  loss {:.4}",
                    self.pos.epoch + 1,
                    self.opts.epochs,
                    v[0]
                ));
                if ctl.kill_after_step == Some(self.pos.global_step) {
                    return Ok(None);
                }
                if self
                    .opts
                    .save_every
                    .is_some_and(|s| s > 0 && self.pos.global_step.is_multiple_of(s))
                {
                    self.save(&last)?;
                }
            }
            if self.pos.step_in_epoch < per_epoch {
                break; // stopped by max_steps mid-epoch
            }
            self.pos.epoch += 1;
            self.pos.step_in_epoch = 0;
            if let Some(val) = val.filter(|v| !v.videos.is_empty()) {
                let r = self.validate(val, d, self.opts.workers)?;
                log.write(&serde_json::json!({
                    "event": "validation", "epoch": self.pos.epoch, "global_step": self.pos.global_step,
                    "loss": r.loss, "stage_losses": r.stage_losses, "mean_iou": r.mean_iou,
                    "frac_iou_0.7": r.frac_iou_07, "videos": r.videos, "proposals": r.proposals,
                }))?;
                let line = format!(
                    "epoch {}/{}: validation loss {:.4}, mean IoU with matched GT: input {:.4} -> refined {:.4}",
                    self.pos.epoch, self.opts.epochs, r.loss, r.mean_iou[0], r.mean_iou[3]
                );
                if bar.is_hidden() {
                    if ctl.progress {
                        eprintln!("{line}");
                    }
                } else {
                    bar.println(line);
                }
                last_val = Some(r);
            }
            self.save(&last)?;
            let copy = out.join(format!("epoch-{}.safetensors", self.pos.epoch));
            tcanet_cli::write_atomic_bytes(&copy, &std::fs::read(&last)?)?;
        }
        if self.pos.step_in_epoch != 0 || self.pos.global_step == 0 {
            self.save(&last)?;
        }
        bar.finish_and_clear();
        log.write(&serde_json::json!({
            "event": "end", "position": self.pos, "elapsed_s": started.elapsed().as_secs_f64(),
        }))?;
        Ok(last_val)
    }
}

/// Adds the IoU of every valid proposal of P_1..P_4 with its matched ground truth.
fn accumulate_iou(fwd: &Forward, b: &TrainingBatch, out: &mut Validation) {
    let host = |t: &Tensor| {
        Vec::<f32>::try_from(
            t.detach()
                .to_device(Device::Cpu)
                .to_kind(Kind::Float)
                .contiguous()
                .flatten(0, -1),
        )
        .expect("float tensor")
    };
    let mut sets: Vec<Vec<f32>> = fwd.stages.iter().map(|s| host(&s.input)).collect();
    sets.push(host(fwd.final_proposals()));
    for (i, &valid) in b.valid.iter().enumerate() {
        if valid == 0.0 {
            continue;
        }
        out.proposals += 1;
        let g = [b.gt[2 * i] as f64, b.gt[2 * i + 1] as f64];
        for (k, s) in sets.iter().enumerate() {
            let iou = segment_iou([s[2 * i] as f64, s[2 * i + 1] as f64], g);
            out.mean_iou[k] += iou;
            if iou >= 0.7 {
                out.frac_iou_07[k] += 1.0;
            }
        }
    }
}

/// Path of the checkpoint `--resume` continues from: the given file, or `out/last.safetensors`.
pub fn resume_path(given: Option<&Path>, out: &Path) -> PathBuf {
    given.map_or_else(|| out.join("last.safetensors"), Path::to_path_buf)
}
