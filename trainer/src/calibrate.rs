//! Calibrated decoding: score each start/end decode scale of a grid on
//! videos the model was not trained on and keep the best.
//!
//! Each video goes through the network in inference mode and the paper's
//! post-processing exactly as `tcanet-infer` computes them
//! ([`crate::inference`]); the refined proposals of all videos are scored
//! by the evaluator's library (AUC of the AR–AN curve, tIoU 0.5:0.95, up to
//! 100 proposals per video) against every ground-truth instance of those
//! videos. The chosen scale is the grid point of highest AUC, the first on
//! ties (so the release's 0.2, first in the default grid, wins a tie).
use std::sync::Arc;

use tcanet_evaluator::{
    evaluate_proposals, GroundTruth, Proposal as EvalProposal, ProposalOptions,
    ProposalSet as EvalSet,
};
use tcanet_models::calibration::{best_index, Calibration, KEY_CALIBRATION};
use tcanet_models::checkpoint::{checkpoint_bytes, Checkpoint, CheckpointContents, NamedTensor};
use tcanet_models::data::{Dataset, Prefetcher};
use tcanet_models::{param_specs, ModelConfig};
use tcanet_nn::TcaNet;
use tch::Device;

use crate::dataset::{data_fingerprint, DataOptions, TrainingData};
use crate::error::{Result, TrainError};
use crate::inference::{prepare_inference_video, refine_video, InferenceInput};
use crate::options::SavedSettings;

/// The videos calibration scores, with their ground truth.
pub struct CalibrationSet {
    dataset: Arc<Dataset>,
    videos: Vec<(String, f64)>,
    truth: GroundTruth,
    source: String,
    input: InferenceInput,
    input_auc: f64,
}

impl CalibrationSet {
    /// The videos `ids` of `dataset` (each must be in its annotations);
    /// `source` says where they come from (for the record and messages).
    pub fn new(
        dataset: Arc<Dataset>,
        ids: &[String],
        source: String,
        input: InferenceInput,
    ) -> Result<Self> {
        let mut videos = Vec::with_capacity(ids.len());
        let mut truth = Vec::with_capacity(ids.len());
        for id in ids {
            let info =
                dataset
                    .annotations
                    .get(id)
                    .ok_or_else(|| TrainError::NothingToCalibrate {
                        reason: format!("video '{id}' is not in the annotations"),
                    })?;
            videos.push((id.clone(), info.duration));
            let instances: Vec<([f64; 2], &str)> = info
                .instances
                .iter()
                .map(|a| ([a.start, a.end], a.label.as_str()))
                .collect();
            truth.push((id.as_str(), instances));
        }
        if videos.is_empty() {
            return Err(TrainError::NothingToCalibrate { reason: source });
        }
        let truth = GroundTruth::from_videos("calibration", truth);
        let input_auc = input_proposals_auc(&dataset, &videos, &truth)?;
        Ok(Self {
            dataset,
            videos,
            truth,
            source,
            input,
            input_auc,
        })
    }

    /// Videos in the set.
    pub fn len(&self) -> usize {
        self.videos.len()
    }

    /// Whether the set has no video (never, once built).
    pub fn is_empty(&self) -> bool {
        self.videos.is_empty()
    }

    /// Ground-truth instances of the set's videos.
    pub fn instances(&self) -> usize {
        self.truth.n_instances()
    }

    /// Where the videos come from.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The AUC of `net` at every scale of `grid` (videos read on `workers`
    /// threads), and the scale chosen; `epoch` is recorded.
    pub fn score(
        &self,
        net: &TcaNet,
        device: Device,
        grid: &[f64],
        workers: usize,
        epoch: u64,
    ) -> Result<Calibration> {
        let sets = self.refined_sets(net, device, grid, workers)?;
        let options = ProposalOptions::default();
        // No proposal left at all (every video had a single input proposal,
        // which Soft-NMS drops): nothing is recalled.
        let auc = sets
            .iter()
            .map(|set| {
                if set.is_empty() {
                    Ok(0.0)
                } else {
                    evaluate_proposals(&self.truth, set, &options).map(|r| r.auc)
                }
            })
            .collect::<Result<Vec<f64>, _>>()?;
        let chosen = best_index(&auc).map_or(grid[0], |i| grid[i]);
        Ok(Calibration {
            grid: grid.to_vec(),
            auc,
            chosen,
            source: self.source.clone(),
            videos: self.videos.len(),
            instances: self.instances(),
            epoch,
            input_auc: Some(self.input_auc),
        })
    }

    /// The post-processed refined proposals of every video, one set per scale.
    fn refined_sets(
        &self,
        net: &TcaNet,
        device: Device,
        grid: &[f64],
        workers: usize,
    ) -> Result<Vec<EvalSet>> {
        let cfg: ModelConfig = net.config().clone();
        let (dataset, videos, input) = (self.dataset.clone(), self.videos.clone(), self.input);
        let jobs = Prefetcher::new(videos.len(), workers, 2 * workers + 1, move |i| {
            let (id, duration) = &videos[i];
            prepare_inference_video(&dataset, id, *duration, &cfg, input)
        });
        let mut sets: Vec<EvalSet> = grid.iter().map(|_| EvalSet::new()).collect();
        for (i, prepared) in jobs.enumerate() {
            let v = prepared?;
            let refined = refine_video(net, device, &v, grid)?;
            for (set, r) in sets.iter_mut().zip(&refined) {
                let kept = r
                    .postprocessed(&v)
                    .into_iter()
                    .map(|s| EvalProposal {
                        segment: [s.start, s.end],
                        score: s.score,
                    })
                    .collect();
                set.push(self.videos[i].0.clone(), kept);
            }
        }
        Ok(sets)
    }
}

/// The AUC of the input proposals of `videos` as given (no network, no
/// post-processing), scored like the refined ones.
fn input_proposals_auc(
    dataset: &Dataset,
    videos: &[(String, f64)],
    truth: &GroundTruth,
) -> Result<f64> {
    let mut set = EvalSet::new();
    for (id, _) in videos {
        let given = dataset.proposals.get(id).unwrap_or_default();
        let kept = given
            .iter()
            .map(|p| EvalProposal {
                segment: [p.start, p.end],
                score: p.score,
            })
            .collect();
        set.push(id.clone(), kept);
    }
    if set.is_empty() {
        return Ok(0.0);
    }
    Ok(evaluate_proposals(truth, &set, &ProposalOptions::default())?.auc)
}

/// The checkpoint `ck` with the calibrated decode scale: the same weights,
/// position, training state and extra metadata, its config's
/// `se_decode_scale_infer` set to `c.chosen`, and the record `c`. The
/// parameters move from `ck` into the bytes (no copy in between).
pub fn calibrated_checkpoint_bytes(mut ck: Checkpoint, c: &Calibration) -> Result<Vec<u8>> {
    let mut config = ck.config.clone();
    config.se_decode_scale_infer = c.chosen;
    let params: Vec<NamedTensor> = param_specs(&ck.config)
        .into_iter()
        .map(|s| NamedTensor {
            data: ck.tensors.remove(&s.name).unwrap_or_default(),
            name: s.name,
            shape: s.shape,
        })
        .collect();
    // The writer sets its own keys (format, config, position, training
    // state) over these; the rest, the run's settings of a best.safetensors
    // among them, carry over.
    let mut extra = ck.metadata.clone();
    extra.insert(KEY_CALIBRATION.to_string(), c.to_json());
    Ok(checkpoint_bytes(&CheckpointContents {
        config: &config,
        position: ck.position,
        params: &params,
        train_state: ck.train_state.as_ref(),
        extra: &extra,
    })?)
}

/// The videos a run held out of training, found again from the data and
/// the run's recorded settings (the same split, fraction and seed), with
/// the digest of the data as it is now (to compare with the recorded one).
pub fn run_held_out_videos(
    ds: &TrainingData,
    settings: &SavedSettings,
    d: &DataOptions,
) -> Result<(Vec<String>, String)> {
    let o = &settings.options;
    let all = ds.split(&o.train_subset, &settings.model, d)?;
    let fraction = o.calibration_fraction();
    let (train, held) = all.hold_out(fraction, o.seed)?;
    let digest = data_fingerprint(&train.videos, &held);
    Ok((held.into_iter().map(|v| v.id).collect(), digest))
}
