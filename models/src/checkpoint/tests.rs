use super::*;

fn params(cfg: &ModelConfig) -> Vec<NamedTensor> {
    param_specs(cfg)
        .into_iter()
        .enumerate()
        .map(|(i, s)| {
            let n: usize = s.shape.iter().product();
            NamedTensor {
                data: (0..n).map(|j| (i * 1000 + j) as f32 * 1e-3).collect(),
                name: s.name,
                shape: s.shape,
            }
        })
        .collect()
}

fn state() -> TrainState {
    let mut tensors = BTreeMap::new();
    tensors.insert(
        "exp_avg.x_1d_b_f.0.bias".to_string(),
        (vec![2], vec![0.5, -0.5]),
    );
    TrainState {
        options: "{\"seed\":3}".into(),
        data_fingerprint: "abc".into(),
        optimizer_steps: 12,
        tensors,
    }
}

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tcanet-ckpt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

fn contents<'a>(
    cfg: &'a ModelConfig,
    params: &'a [NamedTensor],
    train_state: Option<&'a TrainState>,
    extra: &'a BTreeMap<String, String>,
) -> CheckpointContents<'a> {
    CheckpointContents {
        config: cfg,
        position: Position {
            epoch: 3,
            step_in_epoch: 4,
            global_step: 120,
        },
        params,
        train_state,
        extra,
    }
}

#[test]
fn round_trip_with_config_position_and_state() {
    let cfg = ModelConfig::tiny();
    let p = params(&cfg);
    let st = state();
    let extra = BTreeMap::from([("note".to_string(), "x".to_string())]);
    let path = tmp("round_trip.safetensors");
    write_checkpoint(&path, &contents(&cfg, &p, Some(&st), &extra)).unwrap();
    let ck = Checkpoint::load(&path, &ConfigOverride::Embedded).unwrap();
    assert_eq!(ck.config, cfg);
    assert!(ck.config_embedded);
    assert_eq!(
        ck.position,
        Position {
            epoch: 3,
            step_in_epoch: 4,
            global_step: 120
        }
    );
    assert_eq!(ck.metadata[KEY_FORMAT], CHECKPOINT_FORMAT);
    assert_eq!(ck.metadata["note"], "x");
    assert_eq!(ck.train_state.as_ref(), Some(&st));
    for t in &p {
        assert_eq!(ck.get(&t.name), t.data.as_slice());
    }
    assert_eq!(ck.sha256, sha256_hex(&std::fs::read(&path).unwrap()));
    let hacs = Checkpoint::load(&path, &ConfigOverride::Given(ModelConfig::hacs()));
    assert!(
        matches!(hacs, Err(CheckpointError::Shape { .. })),
        "{hacs:?}"
    );
}

#[test]
fn same_content_same_bytes() {
    let cfg = ModelConfig::tiny();
    let mut p = params(&cfg);
    let extra = BTreeMap::new();
    let a = checkpoint_bytes(&contents(&cfg, &p, Some(&state()), &extra)).unwrap();
    p.reverse();
    let b = checkpoint_bytes(&contents(&cfg, &p, Some(&state()), &extra)).unwrap();
    assert_eq!(a, b, "parameter order given does not matter");
    let c = checkpoint_bytes(&contents(&cfg, &p, None, &extra)).unwrap();
    assert_ne!(a, c);
}

#[test]
fn release_state_dict_loads_with_a_given_config() {
    let cfg = ModelConfig::tiny();
    let mut tensors: Vec<NamedTensor> = params(&cfg)
        .into_iter()
        .map(|t| NamedTensor {
            name: format!("module.{}", t.name),
            ..t
        })
        .collect();
    tensors.push(NamedTensor {
        name: "module.lgtes.0.self_atten.mask_matrix".into(),
        shape: vec![1],
        data: vec![1.0],
    });
    let path = tmp("release.safetensors");
    write_tensor_file(&path, &tensors, &BTreeMap::new()).unwrap();
    let e = Checkpoint::load(&path, &ConfigOverride::Embedded).unwrap_err();
    assert!(matches!(e, CheckpointError::NoConfig { .. }), "{e}");
    assert!(e.to_string().contains("--preset"), "{e}");
    let given = ConfigOverride::Given(cfg.clone());
    let ck = Checkpoint::load(&path, &given).unwrap();
    assert!(!ck.config_embedded);
    assert_eq!(ck.tensors.len(), param_specs(&cfg).len());
    assert_eq!(ck.train_state, None);
    // The fallback config applies where the embedded one is missing.
    let either = Checkpoint::load_with_fallback(&path, &ConfigOverride::Embedded, &given).unwrap();
    assert!(!either.config_embedded);
    assert_eq!(either.tensors, ck.tensors);
}

#[test]
fn the_first_config_that_fits_is_used_and_a_missing_file_is_named() {
    let cfg = ModelConfig::tiny();
    let p = params(&cfg);
    let extra = BTreeMap::new();
    let path = tmp("first-fits.safetensors");
    write_checkpoint(&path, &contents(&cfg, &p, None, &extra)).unwrap();
    let mut other = cfg.clone();
    other.hidden_dim = 32;
    let given = ConfigOverride::Given(other);
    let ck = Checkpoint::load_with_fallback(&path, &ConfigOverride::Embedded, &given).unwrap();
    assert!(ck.config_embedded);
    assert_eq!(ck.config, cfg);
    // Neither fits: the fallback's error.
    let e = Checkpoint::load_with_fallback(&path, &given, &given).unwrap_err();
    assert!(matches!(e, CheckpointError::Shape { .. }), "{e}");
    let missing = tmp("never-written.safetensors");
    let e =
        Checkpoint::load_with_fallback(&missing, &ConfigOverride::Embedded, &given).unwrap_err();
    assert!(matches!(e, CheckpointError::Io { .. }), "{e}");
    assert!(e.to_string().contains("never-written.safetensors"), "{e}");
}

/// Writes `tensors` with the config embedded and returns the load error.
fn load_error(name: &str, tensors: &[NamedTensor], meta: &[(&str, &str)]) -> CheckpointError {
    let cfg = ModelConfig::tiny();
    let mut m: BTreeMap<String, String> = meta
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    m.entry(KEY_CONFIG.into()).or_insert_with(|| cfg.to_json());
    let path = tmp(name);
    write_tensor_file(&path, tensors, &m).unwrap();
    Checkpoint::load(&path, &ConfigOverride::Embedded).unwrap_err()
}

#[test]
fn every_defect_is_named() {
    let cfg = ModelConfig::tiny();
    let good = params(&cfg);
    let mut missing = good.clone();
    let gone = missing.remove(5).name;
    let e = load_error("missing.safetensors", &missing, &[]);
    assert!(
        matches!(&e, CheckpointError::Missing { name, .. } if *name == gone),
        "{e}"
    );

    let mut nan = good.clone();
    nan[2].data[1] = f32::NAN;
    let e = load_error("nan.safetensors", &nan, &[]);
    assert!(
        matches!(&e, CheckpointError::NonFinite { index: 1, .. }),
        "{e}"
    );

    let mut extra = good.clone();
    extra.push(NamedTensor {
        name: "lgtes.9.linear1.bias".into(),
        shape: vec![1],
        data: vec![0.0],
    });
    let e = load_error("extra.safetensors", &extra, &[]);
    assert!(matches!(&e, CheckpointError::Unexpected { .. }), "{e}");

    let mut dup = good.clone();
    let first = dup[0].clone();
    dup.push(NamedTensor {
        name: format!("module.{}", first.name),
        ..first
    });
    let e = load_error("dup.safetensors", &dup, &[]);
    assert!(matches!(&e, CheckpointError::Duplicate { .. }), "{e}");

    let e = load_error(
        "format.safetensors",
        &good,
        &[(KEY_FORMAT, "tcanet-checkpoint/9")],
    );
    assert!(matches!(&e, CheckpointError::UnknownFormat { .. }), "{e}");
    let e = load_error("epoch.safetensors", &good, &[(KEY_EPOCH, "-1")]);
    assert!(e.to_string().contains(KEY_EPOCH), "{e}");
    let e = load_error(
        "config.safetensors",
        &good,
        &[(KEY_CONFIG, "{\"heads\": 0}")],
    );
    assert!(matches!(&e, CheckpointError::Config { .. }), "{e}");

    let mut orphan = good.clone();
    orphan.push(NamedTensor {
        name: format!("{TRAIN_STATE_PREFIX}exp_avg.x"),
        shape: vec![1],
        data: vec![0.0],
    });
    let e = load_error("orphan.safetensors", &orphan, &[]);
    assert!(e.to_string().contains(KEY_OPTIMIZER_STEPS), "{e}");

    let e = load_error("state.safetensors", &good, &[(KEY_OPTIMIZER_STEPS, "3")]);
    assert!(e.to_string().contains(KEY_TRAIN_OPTIONS), "{e}");
    let msg = e.to_string();
    assert!(!msg.contains("Some(") && !msg.contains("{ "), "{msg}");
}

#[test]
fn writer_refuses_inconsistent_content() {
    let cfg = ModelConfig::tiny();
    let mut p = params(&cfg);
    p.pop();
    let extra = BTreeMap::new();
    let e = checkpoint_bytes(&contents(&cfg, &p, None, &extra)).unwrap_err();
    assert!(e.to_string().contains("missing"), "{e}");
    let mut p = params(&cfg);
    p.push(p[0].clone());
    assert!(checkpoint_bytes(&contents(&cfg, &p, None, &extra)).is_err());
}
