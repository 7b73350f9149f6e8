//! TBR: one temporal boundary regression stage (start/end and centre/width
//! heads on the TTN samples of its proposals).
use super::layers::Conv1d;
use super::ttn::ttn_sample;
use tcanet_models::ModelConfig;
use tch::nn::Path;
use tch::Tensor;

/// The raw outputs of one stage's heads for proposals [B, N, 2].
#[derive(Debug)]
pub struct TbrHeads {
    /// (ds, de) [B, N, 2].
    pub se: Tensor,
    /// (dx, dw) [B, N, 2].
    pub xw: Tensor,
    /// The IoU logit t [B, N]; the estimate is `sigmoid(t)`.
    pub iou_logit: Tensor,
}

/// Start or end regression branch: `{0,2,4}` convs under its path.
#[derive(Debug)]
struct BoundaryBranch {
    c0: Conv1d,
    c2: Conv1d,
    c4: Conv1d,
}

impl BoundaryBranch {
    fn new(p: &Path, cfg: &ModelConfig) -> Self {
        let (h, se, g) = (cfg.hidden_dim, cfg.se_hidden_dim, cfg.conv_groups);
        Self {
            c0: Conv1d::new(&(p / 0), h, se, 3, 1, 2, g),
            c2: Conv1d::new(&(p / 2), se, se, 3, 1, 2, g),
            c4: Conv1d::new(&(p / 4), se, 1, cfg.se_final_kernel(), 0, 1, 1),
        }
    }

    /// [B·N, H, n] → [B·N] (the region's regression).
    fn forward(&self, x: &Tensor) -> Tensor {
        let y = self.c0.forward(x).relu();
        let y = self.c2.forward(&y).relu();
        self.c4.forward(&y).view([-1])
    }
}

/// One TBR stage with variables `reg1se.{start,end}_reg_conv.*` and
/// `reg1xw.reg_1d_{b,o}.*` under its path (`tbr1`, `tbr2`, `tbr3`).
#[derive(Debug)]
pub struct Tbr {
    start: BoundaryBranch,
    end: BoundaryBranch,
    xw_b0: Conv1d,
    xw_b2: Conv1d,
    xw_o0: Conv1d,
    xw_o2: Conv1d,
    cfg: ModelConfig,
}

impl Tbr {
    /// Builds a stage for `cfg`.
    pub fn new(p: &Path, cfg: &ModelConfig) -> Self {
        let (h, g) = (cfg.hidden_dim, cfg.conv_groups);
        let se = p / "reg1se";
        let xw = p / "reg1xw";
        Self {
            start: BoundaryBranch::new(&(&se / "start_reg_conv"), cfg),
            end: BoundaryBranch::new(&(&se / "end_reg_conv"), cfg),
            xw_b0: Conv1d::new(&(&xw / "reg_1d_b" / 0), h, h, 3, 1, 2, g),
            xw_b2: Conv1d::new(&(&xw / "reg_1d_b" / 2), h, h, 3, 1, 2, g),
            xw_o0: Conv1d::new(
                &(&xw / "reg_1d_o" / 0),
                h,
                h,
                cfg.xw_final_kernel(),
                0,
                1,
                g,
            ),
            xw_o2: Conv1d::new(&(&xw / "reg_1d_o" / 2), h, 3, 1, 0, 1, 1),
            cfg: cfg.clone(),
        }
    }

    /// The heads on `encoded` [B, H, T] for `proposals` [B, N, 2] (same dtype).
    pub fn heads(&self, encoded: &Tensor, proposals: &Tensor) -> TbrHeads {
        let (b, n) = (proposals.size()[0], proposals.size()[1]);
        let samples = ttn_sample(encoded, proposals, &self.cfg); // [B·N, H, S]
        let (ns, na) = (
            self.cfg.start_sample_num as i64,
            self.cfg.action_sample_num as i64,
        );
        let ne = self.cfg.end_sample_num as i64;
        let ds = self.start.forward(&samples.narrow(2, 0, ns));
        let de = self.end.forward(&samples.narrow(2, ns + na, ne));
        let se = Tensor::stack(&[ds, de], -1).view([b, n, 2]);
        let y = self.xw_b0.forward(&samples).relu();
        let y = self.xw_b2.forward(&y).relu();
        let y = self.xw_o0.forward(&y).relu();
        let out = self.xw_o2.forward(&y).view([b, n, 3]);
        TbrHeads {
            xw: out.narrow(2, 0, 2),
            iou_logit: out.select(2, 2),
            se,
        }
    }
}
