//! Autograd of the whole network and loss (tiny config, f64) against central
//! finite differences, for entries of parameters spread over every part:
//! base encoder, both LGTE layers, the three TBR stages. The TBR-1 entries
//! also reach stages 2 and 3 through the decoded proposals (TTN sampling
//! positions), so the backward of the index-based sampling is checked too.
use tcanet_models::ModelConfig;
use tcanet_nn::{tcanet_loss, TcaNet};
use tch::{nn::VarStore, Device, Kind, Tensor};

#[test]
fn gradients_match_finite_differences() {
    tch::set_num_threads(1); // small tensors on a shared machine
    let mut cfg = ModelConfig::tiny();
    cfg.dropout = 0.0; // training mode (g = 1.0) but deterministic
    tch::manual_seed(17);
    let mut vs = VarStore::new(Device::Cpu);
    let net = TcaNet::new(&vs.root(), &cfg);
    vs.double();
    let opts = (Kind::Double, Device::Cpu);
    let (b, n) = (2i64, 6i64);
    let feats = Tensor::randn([b, cfg.feat_dim as i64, cfg.temporal_scale as i64], opts);
    let gt = Tensor::from_slice(&[
        0.2f64, 0.5, 0.2, 0.5, 0.2, 0.5, 0.6, 0.9, 0.6, 0.9, 0.6, 0.9, //
        0.1, 0.3, 0.1, 0.3, 0.45, 0.8, 0.45, 0.8, 0.45, 0.8, 0.45, 0.8,
    ])
    .view([b, n, 2]);
    let props = Tensor::from_slice(&[
        0.22f64, 0.48, 0.15, 0.52, 0.3, 0.7, 0.58, 0.93, 0.65, 0.85, 0.4, 0.95, //
        0.12, 0.33, 0.0, 0.25, 0.47, 0.79, 0.5, 0.9, 0.2, 0.6, 0.43, 0.83,
    ])
    .view([b, n, 2]);
    let valid = Tensor::ones([b, n], (Kind::Bool, Device::Cpu));
    let loss = || {
        tch::manual_seed(99); // same IoU-loss draws every time
        let fwd = net.forward(&feats, &props, true);
        tcanet_loss(&fwd, &gt, &valid, &cfg).total
    };
    let l0 = loss();
    assert!(f64::try_from(&l0).unwrap() > 0.0);
    l0.backward();
    let vars = vs.variables();
    let checks = [
        ("x_1d_b_f.0.weight", [0, 777, 1500]),
        ("x_1d_b_f.2.bias", [3, 17, 60]),
        (
            "lgtes.0.self_atten.scale_attention.in_proj_weight",
            [5, 4200, 9000],
        ),
        (
            "lgtes.1.self_atten.scale_attention.out_proj.weight",
            [1, 2000, 4000],
        ),
        ("lgtes.0.linear1.weight", [9, 1111, 3000]),
        ("lgtes.1.norm1.weight", [0, 31, 63]),
        ("tbr1.reg1se.start_reg_conv.0.weight", [2, 500, 1400]),
        ("tbr1.reg1xw.reg_1d_b.0.weight", [10, 1000, 2900]),
        ("tbr1.reg1xw.reg_1d_o.2.weight", [0, 64, 150]),
        ("tbr2.reg1se.end_reg_conv.4.weight", [0, 7, 20]),
        ("tbr2.reg1xw.reg_1d_o.0.weight", [3, 5000, 9000]),
        ("tbr3.reg1xw.reg_1d_o.2.bias", [0, 1, 2]),
        ("tbr3.reg1se.start_reg_conv.2.weight", [1, 300, 700]),
    ];
    let eps = 1e-6;
    let mut worst = 0.0f64;
    for (name, entries) in checks {
        let var = &vars[name];
        let grad = var.grad().view([-1]);
        let flat = var.view([-1]);
        for i in entries {
            let i = i.min(flat.size()[0] - 1);
            let analytic = f64::try_from(grad.get(i)).unwrap();
            let shift = |d: f64| {
                tch::no_grad(|| {
                    let mut el = flat.get(i);
                    el += d;
                });
            };
            shift(eps);
            let up = f64::try_from(loss()).unwrap();
            shift(-2.0 * eps);
            let down = f64::try_from(loss()).unwrap();
            shift(eps);
            let numeric = (up - down) / (2.0 * eps);
            let err = (analytic - numeric).abs() / (1e-6 + analytic.abs().max(numeric.abs()));
            assert!(
                err < 1e-4,
                "{name}[{i}]: autograd {analytic:e} vs finite differences {numeric:e}"
            );
            worst = worst.max(err);
        }
    }
    // The checks must have covered non-zero gradients.
    let nonzero = checks
        .iter()
        .filter(|(name, _)| {
            f64::try_from(vars[*name].grad().abs().sum(Kind::Double)).unwrap() > 0.0
        })
        .count();
    assert_eq!(
        nonzero,
        checks.len(),
        "every checked parameter gets a gradient"
    );
    eprintln!("worst relative error {worst:e}");
}
