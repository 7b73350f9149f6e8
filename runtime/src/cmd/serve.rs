//! `tcanet-infer serve`: the model behind the KServe v2 (Triton) HTTP
//! protocol (the server is `tcanet_runtime::serve`).
use std::sync::Arc;

use anyhow::Result;
use tcanet_cli::{ExitStatus, Log};
use tcanet_ort::{init_ort, DimRange, TcanetModel};
use tcanet_runtime::refiner::{Refiner, RefinerOptions};
use tcanet_runtime::serve::serve;

use crate::ServeArgs;

/// Loads the model once per instance and serves until SIGTERM or SIGINT.
pub fn cmd_serve(args: &ServeArgs, log: Log) -> Result<ExitStatus> {
    let loaded = init_ort(args.engine.ort_lib.as_deref())?;
    log.info(format!(
        "onnx runtime: {} ({})",
        loaded.path.display(),
        loaded.source_name
    ));
    let mut settings = args.engine.settings()?;
    let b = args.server.max_batch_size as u32;
    // TensorRT: one engine for every batch the batcher can form.
    settings.tensorrt.batch = settings
        .tensorrt
        .batch
        .or(Some(DimRange::new(1, b, b).map_err(anyhow::Error::msg)?));
    let config = args.engine.config_override()?;
    let models = (0..args.server.instances)
        .map(|_| TcanetModel::load(&args.model, &settings, config.clone()))
        .collect::<Result<Vec<_>, _>>()?;
    let options = RefinerOptions {
        post: args.post.options(),
        max_proposals: args.server.max_proposals,
        resample: args.server.resample,
        max_call_proposals: None,
        batch_videos: args.server.max_batch_size,
    };
    let refiner = Refiner::from_models(models, options);
    for w in refiner.warnings() {
        log.warn(w);
    }
    log.info(format!(
        "model: {} (C={}, T={}, {}; device {}; {} instance(s))",
        args.model.display(),
        refiner.config().feat_dim,
        refiner.interface().time_steps,
        refiner.interface().precision,
        refiner.device(),
        refiner.sessions()
    ));
    serve(Arc::new(refiner), &args.server, log)?;
    Ok(ExitStatus::Success)
}
