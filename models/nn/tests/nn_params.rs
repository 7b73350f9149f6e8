//! The tch variables are exactly the parameter contract, and the forward pass
//! has the documented shapes in f32 and f64.
use std::collections::BTreeMap;
use tcanet_models::{param_specs, ModelConfig};
use tcanet_nn::TcaNet;
use tch::{nn::VarStore, Device, Kind, Tensor};

fn names_and_shapes(cfg: &ModelConfig) {
    let vs = VarStore::new(Device::Cpu);
    let _net = TcaNet::new(&vs.root(), cfg);
    let got: BTreeMap<String, Vec<i64>> = vs
        .variables()
        .into_iter()
        .map(|(k, v)| (k, v.size()))
        .collect();
    let want: BTreeMap<String, Vec<i64>> = param_specs(cfg)
        .into_iter()
        .map(|p| (p.name, p.shape.iter().map(|&d| d as i64).collect()))
        .collect();
    assert_eq!(got, want);
}

#[test]
fn variables_match_param_specs_tiny_and_hacs() {
    names_and_shapes(&ModelConfig::tiny());
    names_and_shapes(&ModelConfig::hacs());
    let mut odd = ModelConfig::tiny();
    odd.lgte_num = 3;
    odd.start_sample_num = 8;
    odd.end_sample_num = 8;
    odd.action_sample_num = 20;
    names_and_shapes(&odd);
}

#[test]
fn forward_shapes_in_f32_and_f64() {
    let cfg = ModelConfig::tiny();
    for kind in [Kind::Float, Kind::Double] {
        tch::manual_seed(0);
        let mut vs = VarStore::new(Device::Cpu);
        let net = TcaNet::new(&vs.root(), &cfg);
        if kind == Kind::Double {
            vs.double();
        }
        let (b, n) = (2, 5);
        let feats = Tensor::randn(
            [b, cfg.feat_dim as i64, cfg.temporal_scale as i64],
            (kind, Device::Cpu),
        );
        let props = Tensor::from_slice(&[0.1f64, 0.4, 0.5, 0.9, 0.0, 1.0, 0.2, 0.25, 0.7, 0.72])
            .view([1, n, 2])
            .repeat([b, 1, 1]);
        for train in [true, false] {
            let f = net.forward(&feats, &props, train);
            assert_eq!(f.stages.len(), 3);
            for s in &f.stages {
                assert_eq!(s.input.size(), [b, n, 2]);
                assert_eq!(s.se.size(), [b, n, 2]);
                assert_eq!(s.xw.size(), [b, n, 2]);
                assert_eq!(s.iou.size(), [b, n]);
                assert_eq!(s.refined.size(), [b, n, 2]);
                assert_eq!(s.refined.kind(), kind);
                assert!(bool::try_from(s.refined.isfinite().all()).unwrap());
                assert!(f64::try_from(s.refined.min()).unwrap() >= 0.0);
            }
        }
    }
}

#[test]
fn inputs_that_do_not_fit_are_named() {
    let cfg = ModelConfig::tiny();
    let vs = VarStore::new(Device::Cpu);
    let net = TcaNet::new(&vs.root(), &cfg);
    let opts = (Kind::Float, Device::Cpu);
    let props = Tensor::zeros([2, 3, 2], opts);
    let short = Tensor::zeros([2, 32, 50], opts);
    let err = net.check_inputs(&short, &props).unwrap_err().to_string();
    assert!(
        err.contains("features") && err.contains("[2, 32, 50]") && err.contains("64"),
        "{err}"
    );
    let feats = Tensor::zeros([2, 32, 64], opts);
    let err = net
        .check_inputs(&feats, &Tensor::zeros([3, 3, 2], opts))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("proposals") && err.contains("[3, 3, 2]"),
        "{err}"
    );
    let err = net
        .check_inputs(&feats.to_kind(Kind::Double), &props)
        .unwrap_err()
        .to_string();
    assert!(err.contains("Double") && err.contains("Float"), "{err}");
    net.check_inputs(&feats, &props).unwrap();
    let panic = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        net.forward(&short, &props, false);
    }))
    .unwrap_err();
    let msg = panic.downcast_ref::<String>().unwrap();
    assert!(msg.contains("temporal_scale"), "{msg}");
}
