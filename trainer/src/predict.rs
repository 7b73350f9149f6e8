//! Refined proposals from a checkpoint with libtorch, without export: the
//! network's P_4 scored by input score × stage-3 IoU estimate (docs/MODEL.md
//! "Inference", steps 1–2; no Soft-NMS), in leaderboard format. For checking
//! a run with `tcanet-eval`; the deployed path is exporter + runtime.
use tcanet_models::data::proposals::{ProposalSet, ProposalSource};
use tcanet_models::data::{Dataset, Proposal};
use tcanet_models::ModelConfig;
use tcanet_nn::TcaNet;
use tch::Device;

use crate::error::Result;
use crate::inference::{
    prepare_inference_video, refine_video, InferenceInput, InferenceVideo, Refined,
};

/// Refined and input proposals of one subset.
pub struct Predictions {
    /// P_4 with scores input × IoU estimate, clamped to the video.
    pub refined: ProposalSet,
    /// The same top-`max_proposals` input proposals, unchanged.
    pub input: ProposalSet,
}

/// Runs the network (inference mode, the config's decode scale) on every
/// video of `subset` that has proposals.
pub fn predict_subset(
    net: &TcaNet,
    device: Device,
    ds: &Dataset,
    subset: &str,
    input: InferenceInput,
    mut progress: impl FnMut(usize, usize),
) -> Result<Predictions> {
    let cfg: &ModelConfig = net.config();
    let videos: Vec<_> = ds
        .annotations
        .subset(subset)
        .filter(|v| ds.proposals.get(&v.id).is_some_and(|p| !p.is_empty()))
        .collect();
    let (mut refined, mut inputs) = (Vec::new(), Vec::new());
    for (i, v) in videos.iter().enumerate() {
        let prepared = prepare_inference_video(ds, &v.id, v.duration, cfg, input)?;
        let r = refine_video(net, device, &prepared, &[cfg.se_decode_scale_infer])?;
        if let Some(r) = r.first() {
            refined.push((v.id.clone(), clamped(&prepared, r)));
        }
        inputs.push((v.id.clone(), input_proposals(&prepared)));
        progress(i + 1, videos.len());
    }
    Ok(Predictions {
        refined: ProposalSet::new(ProposalSource::Json("refined".into()), refined),
        input: ProposalSet::new(ProposalSource::Json("input".into()), inputs),
    })
}

/// P_4 clamped to the video, scored input × IoU estimate.
fn clamped(v: &InferenceVideo, r: &Refined) -> Vec<Proposal> {
    r.segments
        .iter()
        .zip(&r.iou3)
        .zip(&v.prepared.inputs)
        .map(|((&(s, e), &iou), input)| Proposal {
            start: s.clamp(0.0, v.duration),
            end: e.clamp(0.0, v.duration),
            score: input.score * f64::from(iou),
        })
        .collect()
}

/// The input proposals the network saw, in seconds.
fn input_proposals(v: &InferenceVideo) -> Vec<Proposal> {
    let p = &v.prepared;
    p.proposals
        .iter()
        .zip(&p.inputs)
        .map(|(q, input)| Proposal {
            start: p.time.to_seconds(f64::from(q[0])),
            end: p.time.to_seconds(f64::from(q[1])),
            score: input.score,
        })
        .collect()
}
