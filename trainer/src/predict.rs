//! Refined proposals from a checkpoint with libtorch, without export: the
//! network's P_4 scored by input score × stage-3 IoU estimate (TCANET.md
//! "Inference", steps 1–2; no Soft-NMS), in leaderboard format. For checking
//! a run with `tcanet-eval`; the deployed path is exporter + runtime.
use crate::dataset::DataOptions;
use anyhow::Result;
use tcanet_models::data::features::load_features;
use tcanet_models::data::prepare::{prepare_video, FitOptions, VideoData};
use tcanet_models::data::proposals::{ProposalSet, ProposalSource};
use tcanet_models::data::Dataset;
use tcanet_models::data::Proposal;
use tcanet_models::ModelConfig;
use tcanet_nn::TcaNet;
use tch::{Device, Kind, Tensor};

/// Refined and input proposals of one subset.
pub struct Predictions {
    /// P_4 with scores input × IoU estimate, clamped to the video.
    pub refined: ProposalSet,
    /// The same top-`max_proposals` input proposals, unchanged.
    pub input: ProposalSet,
}

/// Runs the network (inference mode) on every video of `subset` that has proposals.
pub fn predict_subset(
    net: &TcaNet,
    device: Device,
    ds: &Dataset,
    subset: &str,
    cfg: &ModelConfig,
    d: &DataOptions,
    mut progress: impl FnMut(usize, usize),
) -> Result<Predictions> {
    let videos: Vec<_> = ds
        .annotations
        .subset(subset)
        .filter(|v| ds.proposals.get(&v.id).is_some_and(|p| !p.is_empty()))
        .collect();
    let (mut refined, mut input) = (Vec::new(), Vec::new());
    for (i, v) in videos.iter().enumerate() {
        let path = ds.feature_path(&v.id);
        let feats = load_features(&path, &v.id, cfg.feat_dim, d.layout)?;
        let props = ds.proposals.get(&v.id).unwrap_or(&[]);
        let data = VideoData {
            video: &v.id,
            features: &feats,
            features_path: &path,
            proposals: props,
            duration: v.duration,
        };
        let fit = FitOptions::fixed(cfg, d.resample);
        let p = prepare_video(&data, cfg, fit, Some(d.max_proposals))?;
        let n = p.proposals.len() as i64;
        let f = Tensor::from_slice(&p.features)
            .view([1, cfg.feat_dim as i64, cfg.temporal_scale as i64])
            .to_device(device);
        let flat: Vec<f32> = p.proposals.iter().flatten().copied().collect();
        let pr = Tensor::from_slice(&flat).view([1, n, 2]).to_device(device);
        let (segs, ious) = tch::no_grad(|| {
            let fwd = net.forward(&f, &pr, false);
            let host = |t: &Tensor| {
                Vec::<f32>::try_from(
                    t.to_device(Device::Cpu)
                        .to_kind(Kind::Float)
                        .contiguous()
                        .flatten(0, -1),
                )
                .expect("float tensor")
            };
            (host(fwd.final_proposals()), host(fwd.final_iou()))
        });
        let mut out = Vec::with_capacity(n as usize);
        for j in 0..n as usize {
            let s = p.time.to_seconds(segs[2 * j] as f64).clamp(0.0, v.duration);
            let e = p
                .time
                .to_seconds(segs[2 * j + 1] as f64)
                .clamp(0.0, v.duration);
            out.push(Proposal {
                start: s,
                end: e,
                score: p.scores[j] as f64 * ious[j] as f64,
            });
        }
        let inp = p
            .proposals
            .iter()
            .zip(&p.scores)
            .map(|(q, &sc)| Proposal {
                start: p.time.to_seconds(q[0] as f64),
                end: p.time.to_seconds(q[1] as f64),
                score: sc as f64,
            })
            .collect();
        refined.push((v.id.clone(), out));
        input.push((v.id.clone(), inp));
        progress(i + 1, videos.len());
    }
    Ok(Predictions {
        refined: ProposalSet::new(ProposalSource::Json("refined".into()), refined),
        input: ProposalSet::new(ProposalSource::Json("input".into()), input),
    })
}
