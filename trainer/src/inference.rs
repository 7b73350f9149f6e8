//! The network in inference mode on one video, exactly as `tcanet-infer`
//! prepares and post-processes it (the same loader, preparation, score
//! fusion and post-processing from `tcanet_models`), with libtorch instead
//! of ONNX Runtime. Used by calibration and `predict`, which build only the
//! network ([`checkpoint_network`]), not a trainer with its optimiser.
use tcanet_models::checkpoint::Checkpoint;
use tcanet_models::data::features::load_features;
use tcanet_models::data::prepare::{prepare_video, FitOptions, PreparedVideo, VideoData};
use tcanet_models::data::{DataError, Dataset, FeatureLayout};
use tcanet_models::postprocess::{
    fuse_scores, postprocess_video, PostProcessOptions, ScoredSegment,
};
use tcanet_models::ModelConfig;
use tcanet_nn::TcaNet;
use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};

use crate::adamw::copy_into;

/// The network of `ck` on `device` for inference: its variables hold the
/// checkpoint's weights; nothing for training (optimiser, moments) is made.
pub fn checkpoint_network(ck: &Checkpoint, device: Device) -> TcaNet {
    let vs = VarStore::new(device);
    let net = TcaNet::new(&vs.root(), &ck.config);
    copy_weights(&vs, ck);
    net
}

/// Copies the parameters of `ck` (checked against the network's config)
/// into the variables of `vs` of the same names.
pub fn copy_weights(vs: &VarStore, ck: &Checkpoint) {
    let mut vars = vs.variables();
    for (name, data) in &ck.tensors {
        if let Some(t) = vars.get_mut(name) {
            copy_into(t, data);
        }
    }
}

/// One video ready for the network.
#[derive(Debug, Clone)]
pub struct InferenceVideo {
    /// The network's inputs.
    pub prepared: PreparedVideo,
    /// Duration (s).
    pub duration: f64,
}

/// How videos are read for inference.
#[derive(Debug, Clone, Copy)]
pub struct InferenceInput {
    /// Feature file layout.
    pub layout: FeatureLayout,
    /// Interpolate feature sequences longer than T.
    pub resample: bool,
    /// Only the best this many input proposals (`None`: all, as the runtime).
    pub max_proposals: Option<usize>,
}

/// Reads and prepares `video` of `ds` (its proposals as the dataset holds
/// them, already validated): features fitted to the config's T, the
/// proposals sorted by score. An error names the file and video.
pub fn prepare_inference_video(
    ds: &Dataset,
    video: &str,
    duration: f64,
    cfg: &ModelConfig,
    input: InferenceInput,
) -> Result<InferenceVideo, DataError> {
    let props = ds.proposals.get(video).unwrap_or(&[]);
    if props.is_empty() {
        return Err(DataError::invalid(
            ds.proposals.source.file_of(video),
            "no usable input proposal for this video",
        )
        .video(video));
    }
    let path = ds.feature_path(video);
    let features = load_features(&path, video, cfg.feat_dim, input.layout)?;
    let data = VideoData {
        video,
        features: &features,
        features_path: &path,
        proposals: props,
        duration,
    };
    let fit = FitOptions::fixed(cfg, input.resample);
    let prepared = prepare_video(&data, cfg, fit, input.max_proposals)?;
    Ok(InferenceVideo { prepared, duration })
}

/// The network's final proposals for one video at one decode scale.
#[derive(Debug, Clone, PartialEq)]
pub struct Refined {
    /// P_4 in seconds, not clipped.
    pub segments: Vec<(f64, f64)>,
    /// Stage 3's IoU estimate, per proposal.
    pub iou3: Vec<f32>,
}

impl Refined {
    /// Score fusion, the release's Soft-NMS, the top 100 and clipping, as
    /// `tcanet-infer` does them.
    pub fn postprocessed(&self, v: &InferenceVideo) -> Vec<ScoredSegment> {
        let fused = fuse_scores(&v.prepared.input_scores(), &self.iou3);
        postprocess_video(
            &self.segments,
            &fused,
            v.duration,
            &PostProcessOptions::default(),
        )
    }
}

fn host(t: &Tensor) -> Vec<f32> {
    Vec::<f32>::try_from(
        t.to_device(Device::Cpu)
            .to_kind(Kind::Float)
            .contiguous()
            .flatten(0, -1),
    )
    .unwrap_or_default()
}

/// Runs the network without dropout on one video: the features are
/// encoded once, then the three stages run once per decode scale in `scales`.
pub fn refine_video(
    net: &TcaNet,
    device: Device,
    v: &InferenceVideo,
    scales: &[f64],
) -> Result<Vec<Refined>, tcanet_nn::InputError> {
    let cfg = net.config();
    let p = &v.prepared;
    let n = p.proposals.len() as i64;
    let f = Tensor::from_slice(&p.features)
        .view([1, cfg.feat_dim as i64, cfg.temporal_scale as i64])
        .to_device(device);
    let flat: Vec<f32> = p.proposals.iter().flatten().copied().collect();
    let props = Tensor::from_slice(&flat).view([1, n, 2]).to_device(device);
    net.check_inputs(&f, &props)?;
    Ok(tch::no_grad(|| {
        let encoded = net.encode(&f, false);
        scales
            .iter()
            .map(|&g| {
                let fwd = net.refine(&encoded, &props, g);
                let segs = host(fwd.final_proposals());
                Refined {
                    segments: segs
                        .chunks_exact(2)
                        .map(|s| {
                            (
                                p.time.to_seconds(f64::from(s[0])),
                                p.time.to_seconds(f64::from(s[1])),
                            )
                        })
                        .collect(),
                    iou3: host(fwd.final_iou()),
                }
            })
            .collect()
    }))
}
