//! A model, its optimiser and its position in a run: one training step
//! (with its non-finite checks), validation, and the checkpoints' contents
//! (`last` with the training state, `best` without).
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use tcanet_models::calibration::{Calibration, KEY_CALIBRATION};
use tcanet_models::checkpoint::{
    checkpoint_bytes, Checkpoint, CheckpointContents, NamedTensor, Position, TrainState,
    KEY_OPTIMIZER_STEPS, KEY_STEP, KEY_STEP_IN_EPOCH, KEY_TRAIN_BEST, KEY_TRAIN_OPTIONS,
};
use tcanet_models::data::matching::segment_iou;
use tcanet_models::data::prepare::TrainingBatch;
use tcanet_models::rand::splitmix64;
use tcanet_models::{param_specs, ModelConfig};
use tcanet_nn::{tcanet_loss, Forward, LossTerms, TcaNet};
use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};

use crate::adamw::{to_host, AdamW, AdamWConfig};
use crate::error::{NonFinite, Result, TrainError};
use crate::inference::copy_weights;
use crate::limits::DECODE_SCALE;
use crate::options::{DataSummary, DecodeScale, SavedSettings, TrainOptions};

/// The best epoch so far on the held-out videos.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BestSoFar {
    /// Epochs completed at that point.
    pub epoch: u64,
    /// Its score: the AUC at its chosen decode scale.
    pub auc: f64,
    /// Its decode scale.
    pub scale: f64,
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

/// A model, its optimiser and its position in the run.
pub struct Trainer {
    /// The model config the weights are trained with (its
    /// `se_decode_scale_infer` is the one validation uses).
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
    /// The training data, as recorded in checkpoints.
    pub data: DataSummary,
    /// The latest calibration (of the last completed epoch).
    pub calibration: Option<Calibration>,
    /// The best epoch so far.
    pub best: Option<BestSoFar>,
}

/// Steps in an epoch of `videos` training videos in batches of `batch_size`.
pub fn steps_per_epoch(videos: usize, batch_size: usize) -> u64 {
    videos.div_ceil(batch_size.max(1)) as u64
}

/// torch's seed before global step `step`: a hash of (seed, step).
pub fn step_seed(seed: u64, step: u64) -> i64 {
    (splitmix64(splitmix64(seed) ^ step) >> 1) as i64
}

/// The training order of epoch `epoch`: a permutation of `0..n` from ChaCha8 seeded by (seed, epoch).
pub fn epoch_order(seed: u64, epoch: u64, n: usize) -> Vec<usize> {
    use rand::seq::SliceRandom;
    use rand::SeedableRng;
    let mut order: Vec<usize> = (0..n).collect();
    let mut rng =
        rand_chacha::ChaCha8Rng::seed_from_u64(splitmix64(seed ^ 0x5348_5546_464C_4521) ^ epoch);
    order.shuffle(&mut rng);
    order
}

/// The batch as tensors on `device`: features, proposals, ground truth, validity.
pub fn batch_tensors(b: &TrainingBatch, device: Device) -> (Tensor, Tensor, Tensor, Tensor) {
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
    Vec::<f64>::try_from(t).unwrap_or_else(|_| vec![f64::NAN; parts.len()])
}

/// The first non-finite loss term of [`loss_values`], named `stage K TERM`
/// (or `total`).
pub fn non_finite_term(values: &[f64]) -> Option<NonFinite> {
    const TERMS: [&str; 3] = ["se", "xw", "iou"];
    let per_stage = values
        .iter()
        .enumerate()
        .skip(1)
        .find(|(_, v)| !v.is_finite());
    if let Some((i, &value)) = per_stage {
        let term = format!("stage {} {}", (i - 1) / 3 + 1, TERMS[(i - 1) % 3]);
        return Some(NonFinite::Loss { term, value });
    }
    let total = values.first().copied().unwrap_or(f64::NAN);
    (!total.is_finite()).then(|| NonFinite::Loss {
        term: "total".into(),
        value: total,
    })
}

impl Trainer {
    /// A freshly initialised model (torch seeded with `opts.seed` first).
    pub fn new(cfg: &ModelConfig, opts: TrainOptions, device: Device) -> Self {
        tch::manual_seed(step_seed(opts.seed, u64::MAX));
        let vs = VarStore::new(device);
        let net = TcaNet::new(&vs.root(), cfg);
        let vars = vs.variables();
        // TcaNet creates exactly the variables of param_specs (tested in tcanet-nn).
        let params = param_specs(cfg)
            .into_iter()
            .filter_map(|s| vars.get(&s.name).map(|t| (s.name, t.shallow_clone())))
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
            data: DataSummary::default(),
            calibration: None,
            best: None,
        }
    }

    /// Copies the parameters of a checkpoint checked against this config.
    pub fn load_weights(&mut self, ck: &Checkpoint) {
        copy_weights(&self.vs, ck);
    }

    /// Continues the run of `ck` (read with this trainer's config): weights,
    /// optimiser moments, position, latest calibration and best epoch. The
    /// position must lie inside an epoch of `steps_per_epoch` steps and the
    /// scales in the range a config accepts (else an error naming the field).
    pub fn resume_from(&mut self, ck: &Checkpoint, steps_per_epoch: u64) -> Result<()> {
        let path = &ck.path;
        let state = ck
            .train_state
            .as_ref()
            .ok_or_else(|| TrainError::NoTrainState { path: path.clone() })?;
        let pos = checked_position(ck, steps_per_epoch, state.optimizer_steps)?;
        let calibration = saved_calibration(ck)?;
        let best = saved_best(ck)?;
        self.load_weights(ck);
        self.opt
            .load_state(&state.tensors, state.optimizer_steps)
            .map_err(|cause| TrainError::State {
                path: path.clone(),
                cause,
            })?;
        self.pos = pos;
        self.calibration = calibration;
        self.best = best;
        Ok(())
    }

    /// The config checkpoints carry: the training config, with the latest
    /// calibrated decode scale when calibrating.
    pub fn published_config(&self) -> ModelConfig {
        let mut cfg = self.cfg.clone();
        if self.opts.decode_scale == DecodeScale::Calibrate {
            if let Some(c) = &self.calibration {
                cfg.se_decode_scale_infer = c.chosen;
            }
        }
        cfg
    }

    /// What the checkpoints record about the run.
    pub fn saved_settings(&self) -> SavedSettings {
        SavedSettings {
            options: self.opts.clone(),
            model: self.cfg.clone(),
            data: self.data.clone(),
        }
    }

    /// The parameters copied to host memory, once for every checkpoint
    /// written at one position ([`Trainer::last_bytes`], [`Trainer::best_bytes`]).
    pub fn host_params(&self) -> Vec<NamedTensor> {
        let vars = self.vs.variables();
        param_specs(&self.cfg)
            .iter()
            .filter_map(|s| vars.get(&s.name).map(|t| to_host(&s.name, t)))
            .collect()
    }

    /// The bytes of `last.safetensors`: parameters, published config,
    /// position, training state (settings, data digest, AdamW moments), the
    /// latest calibration and the best epoch so far. They depend only on
    /// the tensors and the settings; `params` are [`Trainer::host_params`].
    pub fn last_bytes(&self, params: &[NamedTensor]) -> Result<Vec<u8>> {
        let state = TrainState {
            options: serde_json::to_string(&self.saved_settings()).unwrap_or_default(),
            data_fingerprint: self.data.digest.clone(),
            optimizer_steps: self.opt.steps_done,
            tensors: self
                .opt
                .state_tensors()
                .into_iter()
                .map(|t| (t.name, (t.shape, t.data)))
                .collect(),
        };
        let mut extra = BTreeMap::new();
        if let Some(c) = &self.calibration {
            extra.insert(KEY_CALIBRATION.to_string(), c.to_json());
        }
        if let Some(b) = &self.best {
            extra.insert(
                KEY_TRAIN_BEST.to_string(),
                serde_json::to_string(b).unwrap_or_default(),
            );
        }
        self.bytes(params, Some(&state), &extra)
    }

    /// The bytes of `best.safetensors`: parameters, published config,
    /// position, the calibration and the run's settings (so that
    /// `calibrate` finds the held-out videos again); no training state.
    /// `params` are [`Trainer::host_params`].
    pub fn best_bytes(&self, params: &[NamedTensor]) -> Result<Vec<u8>> {
        let mut extra = BTreeMap::new();
        if let Some(c) = &self.calibration {
            extra.insert(KEY_CALIBRATION.to_string(), c.to_json());
        }
        extra.insert(
            KEY_TRAIN_OPTIONS.to_string(),
            serde_json::to_string(&self.saved_settings()).unwrap_or_default(),
        );
        self.bytes(params, None, &extra)
    }

    fn bytes(
        &self,
        params: &[NamedTensor],
        state: Option<&TrainState>,
        extra: &BTreeMap<String, String>,
    ) -> Result<Vec<u8>> {
        let config = self.published_config();
        Ok(checkpoint_bytes(&CheckpointContents {
            config: &config,
            position: self.pos,
            params,
            train_state: state,
            extra,
        })?)
    }

    /// One optimisation step on `batch` at the current position; returns
    /// the loss terms. A non-finite loss term, gradient or updated weight
    /// is an error (the weights may then be spoilt: save nothing after it).
    pub fn step(&mut self, batch: &TrainingBatch) -> Result<Vec<f64>, NonFinite> {
        tch::manual_seed(step_seed(self.opts.seed, self.pos.global_step));
        let lr = self
            .opts
            .schedule
            .lr(self.pos.epoch, self.pos.step_in_epoch);
        let (f, p, g, v) = batch_tensors(batch, self.device);
        let fwd = self.net.forward(&f, &p, true);
        let loss = tcanet_loss(&fwd, &g, &v, &self.cfg);
        let values = loss_values(&loss);
        if let Some(bad) = non_finite_term(&values) {
            return Err(bad);
        }
        self.opt.zero_grad();
        loss.total.backward();
        if let Some(param) = self.opt.first_non_finite_grad() {
            return Err(NonFinite::Gradient {
                param: param.to_string(),
            });
        }
        self.opt.config.lr = lr;
        self.opt.step();
        if let Some(param) = self.opt.first_non_finite_param() {
            return Err(NonFinite::Weight {
                param: param.to_string(),
            });
        }
        self.pos.step_in_epoch += 1;
        self.pos.global_step += 1;
        Ok(values)
    }

    /// Validation loss and IoU figures on prepared batches (no dropout,
    /// inference decoding with the training config's scale).
    pub fn validate(
        &self,
        batches: impl Iterator<Item = Result<TrainingBatch>>,
    ) -> Result<Validation> {
        let mut out = Validation {
            mean_iou: vec![0.0; 4],
            frac_iou_07: vec![0.0; 4],
            stage_losses: vec![[0.0; 3]; 3],
            ..Validation::default()
        };
        tch::manual_seed(step_seed(
            self.opts.seed ^ 0x7661_6C69_6461_7465,
            self.pos.epoch,
        ));
        let mut sums = [0.0; 10];
        let mut nb = 0usize;
        for b in batches {
            let b = b?;
            let (f, p, g, v) = batch_tensors(&b, self.device);
            let (fwd, loss) = tch::no_grad(|| {
                let fwd = self.net.forward(&f, &p, false);
                let loss = tcanet_loss(&fwd, &g, &v, &self.cfg);
                (fwd, loss)
            });
            for (s, x) in sums.iter_mut().zip(loss_values(&loss)) {
                *s += x;
            }
            nb += 1;
            accumulate_iou(&fwd, &b, &mut out);
            out.videos += b.len();
        }
        let nb = nb.max(1) as f64;
        out.loss = sums[0] / nb;
        for k in 0..3 {
            for j in 0..3 {
                out.stage_losses[k][j] = sums[1 + 3 * k + j] / nb;
            }
        }
        if out.proposals > 0 {
            for k in 0..4 {
                out.mean_iou[k] /= out.proposals as f64;
                out.frac_iou_07[k] /= out.proposals as f64;
            }
        }
        Ok(out)
    }
}

/// The position of `ck` if a run of `per_epoch` steps per epoch can
/// continue it: inside an epoch, and as many steps in all as the optimiser
/// took (at least one per epoch done).
fn checked_position(ck: &Checkpoint, per_epoch: u64, optimizer_steps: u64) -> Result<Position> {
    let p = ck.position;
    if p.step_in_epoch >= per_epoch {
        return Err(TrainError::SavedSettings {
            path: ck.path.clone(),
            key: KEY_STEP_IN_EPOCH,
            reason: format!(
                "{} steps done in epoch {}, but an epoch has {per_epoch} steps with this run's \
                 training videos and batch size: resume with the data and --batch-size the \
                 checkpoint was written with, or from another checkpoint of its run",
                p.step_in_epoch,
                p.epoch.saturating_add(1)
            ),
        });
    }
    let what = if p.global_step != optimizer_steps {
        format!(
            "{} steps done in all, but the optimiser's state ({KEY_OPTIMIZER_STEPS}) has taken \
             {optimizer_steps}",
            p.global_step
        )
    } else if p.global_step < p.epoch.saturating_add(p.step_in_epoch) {
        format!(
            "{} steps done in all, fewer than the {} epoch(s) done (each at least one step) and \
             the {} steps of the current one",
            p.global_step, p.epoch, p.step_in_epoch
        )
    } else {
        return Ok(p);
    };
    Err(damaged(ck, KEY_STEP, what))
}

/// The calibration record of a checkpoint, if it has one; its scales must
/// lie in the range a model config accepts ([`DECODE_SCALE`]), so that the
/// checkpoints written from it can be exported.
pub fn saved_calibration(ck: &Checkpoint) -> Result<Option<Calibration>> {
    let c: Option<Calibration> = metadata_json(ck, KEY_CALIBRATION)?;
    if let Some(c) = &c {
        let scales = std::iter::once(&c.chosen).chain(&c.grid);
        if let Some(&g) = scales.clone().find(|g| !DECODE_SCALE.contains(**g)) {
            return Err(damaged(ck, KEY_CALIBRATION, scale_out_of_range(g)));
        }
        if c.auc.len() != c.grid.len() {
            let reason = format!("{} AUC values for {} scales", c.auc.len(), c.grid.len());
            return Err(damaged(ck, KEY_CALIBRATION, reason));
        }
    }
    Ok(c)
}

/// The best epoch so far a checkpoint records, if any; its scale checked as
/// [`saved_calibration`]'s.
fn saved_best(ck: &Checkpoint) -> Result<Option<BestSoFar>> {
    let best: Option<BestSoFar> = metadata_json(ck, KEY_TRAIN_BEST)?;
    match best {
        Some(b) if !DECODE_SCALE.contains(b.scale) => {
            Err(damaged(ck, KEY_TRAIN_BEST, scale_out_of_range(b.scale)))
        }
        _ => Ok(best),
    }
}

fn scale_out_of_range(scale: f64) -> String {
    format!(
        "decode scale {scale} is out of range: must be {} (the scales a model config, and so \
         the exporter, accepts)",
        DECODE_SCALE.describe()
    )
}

/// A record of `ck` no run writes: `what`, and what to do.
fn damaged(ck: &Checkpoint, key: &'static str, what: String) -> TrainError {
    TrainError::SavedSettings {
        path: ck.path.clone(),
        key,
        reason: format!(
            "{what}: the checkpoint is damaged; resume from another checkpoint of its run \
             (epoch-N.safetensors)"
        ),
    }
}

/// The settings of the run that wrote `ck`: its training state's, or, for
/// a checkpoint without one (`best.safetensors`), the copy in its metadata;
/// `None` for a checkpoint no training run wrote (a converted release).
pub fn run_settings(ck: &Checkpoint) -> Result<Option<SavedSettings>> {
    if ck.train_state.is_some() {
        return saved_settings(ck).map(Some);
    }
    metadata_json(ck, KEY_TRAIN_OPTIONS)
}

/// What a checkpoint records about its run (its training state's settings).
pub fn saved_settings(ck: &Checkpoint) -> Result<SavedSettings> {
    let state = ck
        .train_state
        .as_ref()
        .ok_or_else(|| TrainError::NoTrainState {
            path: ck.path.clone(),
        })?;
    serde_json::from_str(&state.options).map_err(|e| TrainError::SavedSettings {
        path: ck.path.clone(),
        key: KEY_TRAIN_OPTIONS,
        reason: format!("{e} (written by another version of tcanet-train?)"),
    })
}

fn metadata_json<T: serde::de::DeserializeOwned>(
    ck: &Checkpoint,
    key: &'static str,
) -> Result<Option<T>> {
    ck.metadata
        .get(key)
        .map(|text| {
            serde_json::from_str(text).map_err(|e| TrainError::SavedSettings {
                path: ck.path.clone(),
                key,
                reason: e.to_string(),
            })
        })
        .transpose()
}

/// The first field (in declaration order) in which two configs differ,
/// ignoring `se_decode_scale_infer` (which only decoding uses).
pub fn first_network_difference(a: &ModelConfig, b: &ModelConfig) -> Option<String> {
    let (va, vb) = (
        serde_json::to_value(a).unwrap_or_default(),
        serde_json::to_value(b).unwrap_or_default(),
    );
    let (Some(ma), Some(mb)) = (va.as_object(), vb.as_object()) else {
        return None;
    };
    ma.iter()
        .find(|(k, v)| k.as_str() != "se_decode_scale_infer" && mb.get(*k) != Some(v))
        .map(|(k, _)| k.clone())
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
        .unwrap_or_default()
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
            let Some(seg) = s.get(2 * i..2 * i + 2) else {
                continue;
            };
            let iou = segment_iou([seg[0] as f64, seg[1] as f64], g);
            out.mean_iou[k] += iou;
            if iou >= 0.7 {
                out.frac_iou_07[k] += 1.0;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_bad_term_is_named() {
        let ok = [1.0, 0.1, 0.2, 0.3, 0.1, 0.2, 0.3, 0.1, 0.2, 0.3];
        assert_eq!(non_finite_term(&ok), None);
        let mut v = ok;
        v[5] = f64::NAN;
        v[0] = f64::NAN;
        assert_eq!(
            non_finite_term(&v).unwrap().to_string(),
            "the loss term stage 2 xw is NaN"
        );
        let mut t = ok;
        t[0] = f64::INFINITY;
        assert_eq!(
            non_finite_term(&t).unwrap().to_string(),
            "the loss term total is inf"
        );
        t[9] = f64::NEG_INFINITY;
        assert_eq!(
            non_finite_term(&t).unwrap().to_string(),
            "the loss term stage 3 iou is -inf"
        );
    }

    #[test]
    fn configs_differ_by_network_fields_only() {
        let a = ModelConfig::tiny();
        let mut b = a.clone();
        b.se_decode_scale_infer = 1.0;
        assert_eq!(first_network_difference(&a, &b), None);
        b.hidden_dim = 32;
        assert_eq!(
            first_network_difference(&a, &b).as_deref(),
            Some("hidden_dim")
        );
    }
}
