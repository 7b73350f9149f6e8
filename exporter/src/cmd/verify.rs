//! `verify`: an exported model (run by ONNX Runtime on the CPU) against an
//! independent f64 forward pass of the checkpoint.
use std::path::{Path, PathBuf};

use anyhow::Result;
use clap::Args;
use tcanet_cli::{range, write_stdout, ExitStatus, Log};
use tcanet_exporter::inspect::{inspect_file, ModelSummary};
use tcanet_exporter::ort_run::{self, OnnxModel};
use tcanet_exporter::reference;
use tcanet_exporter::verify::{compare, nudged_proposals, random_inputs, Tolerances};
use tcanet_exporter::Precision;
use tcanet_models::checkpoint::{read_tensor_file, Checkpoint};
use tcanet_models::onnx::{
    TimeSteps, INPUT_FEATURES, INPUT_PROPOSALS, META_CHECKPOINT_SHA256, META_CONFIG,
    META_QUANTIZATION,
};
use tcanet_models::ModelConfig;

use super::args::{seed, tolerance, ConfigArgs, MAX_VERIFY_BATCH, MAX_VERIFY_PROPOSALS};
use super::status::usage;

/// `verify`'s arguments.
#[derive(Args)]
pub struct VerifyArgs {
    /// The checkpoint the model was exported from.
    pub checkpoint: PathBuf,
    /// The exported .onnx file.
    pub model: PathBuf,
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Videos per random batch, 1 to 64.
    #[arg(long, default_value_t = 2, value_name = "B", allow_negative_numbers = true,
          value_parser = range::int_in::<usize>(1, MAX_VERIFY_BATCH))]
    pub batch: usize,
    /// Proposals per video in the random batch, 1 to 1000.
    #[arg(long, default_value_t = 16, value_name = "N", allow_negative_numbers = true,
          value_parser = range::int_in::<usize>(1, MAX_VERIFY_PROPOSALS))]
    pub proposals: usize,
    /// Seed of the random inputs, any unsigned 64-bit integer.
    #[arg(long, default_value_t = 0, allow_negative_numbers = true, value_parser = seed())]
    pub seed: u64,
    /// Largest relative L2 error of each `proposals_k`, in (0, 1] (default
    /// 1e-5 for float32 models, 1e-2 for float16, 2e-3 for --int8 ones).
    #[arg(long, value_name = "TOL", allow_negative_numbers = true, value_parser = tolerance())]
    pub proposals_tol: Option<f64>,
    /// Largest absolute error of each `iou_k`, in (0, 1] (default 1e-5 for
    /// float32 models, 5e-3 for float16 and --int8 ones). Neither limit is
    /// below 4 times how far the f64 reference itself moves when the input
    /// proposals move by one float32 step (shown as `ref moves by`).
    #[arg(long, value_name = "TOL", allow_negative_numbers = true, value_parser = tolerance())]
    pub iou_tol: Option<f64>,
    /// Also compare on your own inputs: a safetensors file with `features`
    /// [B, C, T] and `proposals` [B, N, 2] (float32, the network's units).
    #[arg(long, value_name = "FILE")]
    pub inputs: Option<PathBuf>,
    /// ONNX Runtime library (default: ORT_DYLIB_PATH, beside the executable, the project venv).
    #[arg(long, value_name = "PATH")]
    pub ort_lib: Option<PathBuf>,
}

/// One comparison: its heading, the inputs and `[B, N, T]`.
struct Case {
    label: String,
    features: Vec<f32>,
    proposals: Vec<f32>,
    dims: [usize; 3],
}

/// Compares the model with the reference; exit 1 beyond tolerance.
pub fn cmd_verify(args: &VerifyArgs, log: Log) -> Result<ExitStatus> {
    let ckpt = Checkpoint::load(&args.checkpoint, &args.config.resolve()?)?;
    let summary = inspect_file(&args.model)?;
    check_origin(&summary, &ckpt, args, log)?;
    // The checkpoint's config stands for the model's (check_origin refused
    // another); precision and T are what the model's metadata declares.
    let interface = summary
        .interface(Some(ckpt.config.clone()))
        .map_err(|e| usage(format!("{}: {e}", args.model.display())))?;
    let precision = interface.precision;
    let quantized = summary.metadata_value(META_QUANTIZATION).is_some();
    let dynamic_time = interface.time_steps == TimeSteps::Dynamic;
    let mut cases = random_cases(args, &ckpt.config, precision, dynamic_time);
    if let Some(path) = &args.inputs {
        cases.push(read_inputs(path, &ckpt.config, dynamic_time)?);
    }
    let lib = ort_run::init(args.ort_lib.as_deref())?;
    log.info(format_args!("ONNX Runtime: {}", lib.display()));
    let mut model = OnnxModel::load(&args.model, 0)?;
    let defaults = if quantized {
        Tolerances::int8()
    } else {
        Tolerances::for_precision(precision)
    };
    let tol = Tolerances {
        proposals_rel: args.proposals_tol.unwrap_or(defaults.proposals_rel),
        iou_abs: args.iou_tol.unwrap_or(defaults.iou_abs),
    };
    let mut ok = true;
    for case in cases {
        ok &= run_case(&mut model, &ckpt, &case, tol, &args.model)?;
    }
    write_stdout(|w| writeln!(w, "parity: {}", if ok { "ok" } else { "FAILED" }))?;
    Ok(if ok {
        ExitStatus::Success
    } else {
        ExitStatus::Failure
    })
}

/// Refuses a model exported with another config; notes another checkpoint.
fn check_origin(
    summary: &ModelSummary,
    ckpt: &Checkpoint,
    args: &VerifyArgs,
    log: Log,
) -> Result<()> {
    if let Some(cfg_json) = summary.metadata_value(META_CONFIG) {
        let model_cfg = ModelConfig::from_json(cfg_json).map_err(|e| {
            usage(format!(
                "{}: metadata tcanet.config: {e} (export the model again)",
                args.model.display()
            ))
        })?;
        if model_cfg != ckpt.config {
            return Err(usage(format!(
                "{} was exported with another model config than {} has: give the checkpoint it was exported from",
                args.model.display(),
                args.checkpoint.display()
            )));
        }
    }
    if let Some(sha) = summary.metadata_value(META_CHECKPOINT_SHA256) {
        if sha != ckpt.sha256 {
            log.info(format_args!(
                "note: {} was exported from a different file (SHA-256 {sha}, this one {})",
                args.model.display(),
                ckpt.sha256
            ));
        }
    }
    Ok(())
}

/// The random batches: at the config's T, and for a model with a symbolic
/// T also at about 3/4 of it.
fn random_cases(
    args: &VerifyArgs,
    cfg: &ModelConfig,
    precision: Precision,
    dynamic_time: bool,
) -> Vec<Case> {
    let mut steps = vec![cfg.temporal_scale];
    if dynamic_time {
        steps.push(cfg.temporal_scale * 3 / 4 + 1);
    }
    let (b, n, seed) = (args.batch, args.proposals, args.seed);
    steps
        .into_iter()
        .map(|t| {
            let cfg_t = reference::config_for_steps(cfg, t);
            let (features, proposals) = random_inputs(&cfg_t, b, n, seed);
            Case {
                label: format!(
                    "random inputs: B={b} N={n} T={t} seed {seed} ({}; proposals partly outside the timeline)",
                    precision.as_str()
                ),
                features,
                proposals,
                dims: [b, n, t],
            }
        })
        .collect()
}

/// Runs one case through the model and the reference and prints the
/// report; whether it passed.
fn run_case(
    model: &mut OnnxModel,
    ckpt: &Checkpoint,
    case: &Case,
    tol: Tolerances,
    path: &Path,
) -> Result<bool> {
    let [b, n, t] = case.dims;
    let c = ckpt.config.feat_dim;
    let onnx = model.run(&case.features, [b, c, t], &case.proposals, n)?;
    let spinner = indicatif::ProgressBar::new_spinner().with_message(format!(
        "f64 reference forward of {b} video(s), twice (the second with the proposals one float32 step up)"
    ));
    spinner.enable_steady_tick(std::time::Duration::from_millis(120));
    let reference = reference::forward_with_steps(ckpt, t, &case.features, &case.proposals, b, n);
    let nudged = nudged_proposals(&case.proposals);
    let nudged = reference::forward_with_steps(ckpt, t, &case.features, &nudged, b, n);
    spinner.finish_and_clear();
    let report = compare(&case.label, &onnx, &reference, tol)
        .map_err(|e| usage(format!("{}: {e}", path.display())))?
        .floor_at_input_rounding(&reference, &nudged);
    write_stdout(|w| write!(w, "{report}"))?;
    Ok(report.passed())
}

/// `[B, C, T]` as text.
fn show(shape: &[usize]) -> String {
    let parts: Vec<String> = shape.iter().map(usize::to_string).collect();
    format!("[{}]", parts.join(", "))
}

/// Reads `features` and `proposals` (float32) from a safetensors file.
fn read_inputs(path: &Path, cfg: &ModelConfig, dynamic_time: bool) -> Result<Case> {
    let mut file = read_tensor_file(path).map_err(|e| usage(format!("--inputs: {e}")))?;
    let mut get = |name: &str| {
        file.tensors.remove(name).ok_or_else(|| {
            usage(format!(
                "--inputs {}: no tensor `{name}` (the file needs `{INPUT_FEATURES}` [B, C, T] and `{INPUT_PROPOSALS}` [B, N, 2])",
                path.display()
            ))
        })
    };
    let (fs, features) = get(INPUT_FEATURES)?;
    let (ps, proposals) = get(INPUT_PROPOSALS)?;
    let t_ok = |t: usize| t > 0 && (dynamic_time || t == cfg.temporal_scale);
    if fs.len() != 3 || fs[0] == 0 || fs[1] != cfg.feat_dim || !t_ok(fs[2]) {
        let t = if dynamic_time {
            "T".to_string()
        } else {
            cfg.temporal_scale.to_string()
        };
        return Err(usage(format!(
            "--inputs {}: `{INPUT_FEATURES}` has shape {}, the model needs [B, {}, {t}] with B at least 1",
            path.display(),
            show(&fs),
            cfg.feat_dim,
        )));
    }
    if ps.len() != 3 || ps[0] != fs[0] || ps[1] == 0 || ps[2] != 2 {
        return Err(usage(format!(
            "--inputs {}: `{INPUT_PROPOSALS}` has shape {}, the model needs [{}, N, 2] with N at least 1",
            path.display(),
            show(&ps),
            fs[0]
        )));
    }
    for (name, values) in [(INPUT_FEATURES, &features), (INPUT_PROPOSALS, &proposals)] {
        if let Some(i) = values.iter().position(|x| !x.is_finite()) {
            return Err(usage(format!(
                "--inputs {}: tensor `{name}` holds a non-finite value at flat index {i}",
                path.display()
            )));
        }
    }
    let dims = [fs[0], ps[1], fs[2]];
    Ok(Case {
        label: format!(
            "inputs from {} (B={} N={} T={})",
            path.display(),
            dims[0],
            dims[1],
            dims[2]
        ),
        features,
        proposals,
        dims,
    })
}
