"""Writes TCANet checkpoints the way the authors' release does, with real torch,
and the network's outputs on fixed inputs, for exporter/tests/convert.rs.

Usage: release_checkpoint.py CONFIG.json OUT_DIR SEED B N [CONFIG2 OUT_DIR2 SEED2 B2 N2 ...]

CONFIG is a ModelConfig JSON. The network is built from torch modules under the
release's module names (x_1d_b_f, lgtes.i.self_atten.scale_attention with a
`mask_matrix` parameter [1, heads, T, T] that marks blocked keys with 1.0,
linear1/2, norm1/2, tbr1..3 with reg1se.{start,end}_reg_conv and
reg1xw.reg_1d_{b,o}), initialised at random (seeded; every parameter then
shifted a little so that no bias is zero). OUT_DIR gets:

  TCA_best.pth.tar         {'epoch': 7, 'state_dict'}: nn.DataParallel keys
                           (`module.`), zip format; one weight saved with
                           non-contiguous strides, one bias as a view at an
                           offset into a larger storage
  TCA_best_legacy.pth.tar  the same, legacy format
  TCA_best_p4.pth.tar      the same, zip format, pickle protocol 4
  epoch-5.pth.tar          {'epoch': 5, 'model_state', 'optimizer_dict'}:
                           plain keys and a real AdamW state_dict, zip format
  epoch-5_legacy.pth.tar   the same, legacy format
  bare.pth                 the bare state dict (no `module.`)
  mmaction2.pth            a state dict named as MMAction2's TCANet
                           (mmengine-style {'meta', 'state_dict'})
  not_a_checkpoint.pth     torch.save of {'foo': [1, 2, 3]}
  features.f32             [B, C, T] float32 inputs
  proposals.f32            [B, N, 2] float32 inputs (network units; some
                           partly or wholly outside the timeline)
  proposals_{1,2,3}.f64    [B, N, 2] refined proposals of each stage
  iou_{1,2,3}.f64          [B, N] IoU estimates of each stage

The outputs are computed in float64 from the float32 weights, at inference
(start/end decode scale se_decode_scale_infer). Raw files are little-endian.
"""
import copy, json, os, sys
import numpy as np, torch, torch.nn as nn, torch.nn.functional as F


def stride2(n):
    return (n + 2 - 3) // 2 + 1


class Holder(nn.Module):
    pass


class LGTE(nn.Module):
    def __init__(s, c):
        super().__init__()
        H, heads, T, w = c['hidden_dim'], c['heads'], c['temporal_scale'], c['window_size']
        s.self_atten = Holder()
        s.self_atten.scale_attention = nn.MultiheadAttention(H, heads, dropout=0.0)
        blocked = torch.ones(1, heads, T, T)
        for h in range(heads // 2):
            for j in range(T):
                for k in range(w):
                    blocked[0, h, j, min(max(j - w // 2 + k, 0), T - 1)] = 0.0
        blocked[0, heads // 2:] = 0.0
        s.self_atten.mask_matrix = nn.Parameter(blocked, requires_grad=False)
        s.linear1 = nn.Linear(H, c['ffn_dim'])
        s.linear2 = nn.Linear(c['ffn_dim'], H)
        s.norm1, s.norm2 = nn.LayerNorm(H), nn.LayerNorm(H)

    def forward(s, x):
        src = x.permute(2, 0, 1)
        mask = s.self_atten.mask_matrix[0].bool().repeat(src.shape[1], 1, 1)
        a = s.self_atten.scale_attention(src, src, src, attn_mask=mask, need_weights=False)[0]
        src = s.norm1(src + a)
        src = s.norm2(src + s.linear2(F.relu(s.linear1(src))))
        return src.permute(1, 2, 0)


def se_branch(c):
    H, g, se = c['hidden_dim'], c['conv_groups'], c['se_hidden_dim']
    k = stride2(stride2(c['start_sample_num']))
    return nn.Sequential(nn.Conv1d(H, se, 3, padding=1, groups=g, stride=2), nn.ReLU(),
                         nn.Conv1d(se, se, 3, padding=1, groups=g, stride=2), nn.ReLU(),
                         nn.Conv1d(se, 1, k))


class TBR(nn.Module):
    def __init__(s, c):
        super().__init__()
        H, g = c['hidden_dim'], c['conv_groups']
        total = c['start_sample_num'] + c['action_sample_num'] + c['end_sample_num']
        s.reg1se = Holder()
        s.reg1se.start_reg_conv, s.reg1se.end_reg_conv = se_branch(c), se_branch(c)
        s.reg1xw = Holder()
        s.reg1xw.reg_1d_b = nn.Sequential(nn.Conv1d(H, H, 3, padding=1, groups=g, stride=2), nn.ReLU(),
                                          nn.Conv1d(H, H, 3, padding=1, groups=g, stride=2), nn.ReLU())
        s.reg1xw.reg_1d_o = nn.Sequential(nn.Conv1d(H, H, stride2(stride2(total)), groups=g), nn.ReLU(),
                                          nn.Conv1d(H, 3, 1))


class TCANet(nn.Module):
    def __init__(s, c):
        super().__init__()
        C, H, g = c['feat_dim'], c['hidden_dim'], c['conv_groups']
        s.x_1d_b_f = nn.Sequential(nn.Conv1d(C, H, 3, padding=1, groups=g), nn.ReLU(),
                                   nn.Conv1d(H, H, 3, padding=1, groups=g), nn.ReLU())
        s.tbr1, s.tbr2, s.tbr3 = TBR(c), TBR(c), TBR(c)
        s.lgtes = nn.ModuleList([LGTE(c) for _ in range(c['lgte_num'])])


def sample(feat, a, b, n, D):
    """Bilinear samples of feat [M, H, T] at n points spread over [a, b] (seconds)."""
    a = (a / D).clamp(0, 1) * 2 - 1
    b = (b / D).clamp(0, 1) * 2 - 1
    theta = torch.zeros(a.shape[0], 2, 3, dtype=feat.dtype)
    theta[:, 0, 0], theta[:, 0, 2], theta[:, 1, 1] = (b - a) / 2, (a + b) / 2, 1
    grid = F.affine_grid(theta, (a.shape[0], feat.shape[1], 1, n), align_corners=False)
    return F.grid_sample(feat.unsqueeze(2), grid, mode='bilinear', padding_mode='zeros',
                         align_corners=False).squeeze(2)


def forward(net, c, feats, props):
    D = c['temporal_scale'] * c['temporal_interval']
    g = c['se_decode_scale_infer']
    r = c['prop_boundary_ratio']
    ns, na, ne = c['start_sample_num'], c['action_sample_num'], c['end_sample_num']
    x = net.x_1d_b_f(feats)
    for layer in net.lgtes:
        x = layer(x)
    B, N, _ = props.shape
    per = x[torch.arange(B).repeat_interleave(N)]
    p = props.reshape(-1, 2)
    out = []
    for tbr in (net.tbr1, net.tbr2, net.tbr3):
        s, e = p[:, 0], p[:, 1]
        L = e - s
        fs, fa, fe = sample(per, s - r * L, s, ns, D), sample(per, s, e, na, D), sample(per, e, e + r * L, ne, D)
        se = torch.cat([tbr.reg1se.start_reg_conv(fs), tbr.reg1se.end_reg_conv(fe)], 1).squeeze(2)
        o = tbr.reg1xw.reg_1d_o(tbr.reg1xw.reg_1d_b(torch.cat([fs, fa, fe], 2))).squeeze(2)
        iou, xw = o[:, 2].sigmoid(), o[:, :2]
        c_new = s + L / 2 + 0.1 * xw[:, 0] * L
        w_new = L * torch.exp(0.2 * xw[:, 1])
        pxw = torch.stack([c_new - w_new / 2, c_new + w_new / 2], 1)
        pse = torch.stack([s + se[:, 0] * L * g, e + se[:, 1] * L * g], 1)
        p = ((pse + pxw) / 2).clamp(min=0)
        out.append((p.reshape(B, N, 2), iou.reshape(B, N)))
    return out


def inputs(c, B, N, gen):
    D = c['temporal_scale'] * c['temporal_interval']
    feats = (torch.rand(B, c['feat_dim'], c['temporal_scale'], generator=gen) * 3.4 - 1.7)
    start = torch.rand(B, N, generator=gen) * 1.1 * D - 0.05 * D
    length = torch.rand(B, N, generator=gen) * 0.4 * D + 0.01 * D
    props = torch.stack([start, start + length], 2)
    return feats.float(), props.float()


def mmaction2_state_dict(c):
    """The parameter names and shapes of MMAction2's TCANet for the same sizes."""
    H, C, g, T, heads = c['hidden_dim'], c['feat_dim'], c['conv_groups'], c['temporal_scale'], c['heads']
    n_se, n_a = c['start_sample_num'], c['action_sample_num']
    net = nn.Module()
    net.x_1d_b_f = nn.Sequential(nn.Conv1d(C, H, 3, padding=1, groups=g), nn.ReLU(),
                                 nn.Conv1d(H, H, 3, padding=1, groups=g), nn.ReLU())
    for i in (1, 2, 3):
        tbr = nn.Module()
        tbr.reg1se = nn.Sequential(nn.Conv1d(2 * H, 2 * c['se_hidden_dim'], 3, padding=1, groups=2 * g, stride=2), nn.ReLU(),
                                   nn.Conv1d(2 * c['se_hidden_dim'], 2 * c['se_hidden_dim'], 3, padding=1, groups=2 * g, stride=2),
                                   nn.ReLU(), nn.Conv1d(2 * c['se_hidden_dim'], 2, n_se // 4, groups=2), nn.Flatten())
        tbr.reg1xw = nn.Sequential(nn.Conv1d(H, H, 3, padding=1, groups=g, stride=2), nn.ReLU(),
                                   nn.Conv1d(H, H, 3, padding=1, groups=g, stride=2), nn.ReLU(),
                                   nn.Conv1d(H, H, (2 * n_se + n_a) // 4, groups=g), nn.ReLU(), nn.Conv1d(H, 3, 1))
        setattr(net, f'tbr{i}', tbr)
    layers = []
    for _ in range(c['lgte_num']):
        lgte = nn.Module()
        lgte.atten = nn.Module()
        lgte.atten.attn = nn.MultiheadAttention(H, heads)
        lgte.ffn = nn.Module()
        lgte.ffn.layers = nn.Sequential(nn.Sequential(nn.Linear(H, c['ffn_dim']), nn.ReLU(), nn.Dropout()),
                                        nn.Linear(c['ffn_dim'], H), nn.Dropout())
        lgte.norm1, lgte.norm2 = nn.LayerNorm(H, eps=1e-6), nn.LayerNorm(H, eps=1e-6)
        lgte.register_buffer('mask', torch.zeros(1, heads, T, T, dtype=torch.bool))
        layers.append(lgte)
    net.lgtes = nn.ModuleList(layers)
    return net.state_dict()


def write(cfg_path, out, seed, B, N):
    c = json.load(open(cfg_path))
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(seed)
    net = TCANet(c)
    with torch.no_grad():
        for name, p in net.named_parameters():
            if not name.endswith('mask_matrix'):
                p.add_(0.05 * torch.randn_like(p))
    net.eval()

    gen = torch.Generator().manual_seed(seed + 1)
    feats, props = inputs(c, B, N, gen)
    with torch.no_grad():
        ref = copy.deepcopy(net).double()
        outs = forward(ref, c, feats.double(), props.double())
    feats.numpy().astype('<f4').tofile(os.path.join(out, 'features.f32'))
    props.numpy().astype('<f4').tofile(os.path.join(out, 'proposals.f32'))
    for k, (p, iou) in enumerate(outs, 1):
        p.numpy().astype('<f8').tofile(os.path.join(out, f'proposals_{k}.f64'))
        iou.numpy().astype('<f8').tofile(os.path.join(out, f'iou_{k}.f64'))

    # TCA_best: saved through DataParallel (keys `module.`), as the release does.
    sd = nn.DataParallel(net).state_dict()
    w = sd['module.lgtes.0.linear1.weight']
    sd['module.lgtes.0.linear1.weight'] = w.t().contiguous().t()  # column-major strides
    assert not sd['module.lgtes.0.linear1.weight'].is_contiguous()
    b = sd['module.x_1d_b_f.0.bias']
    big = torch.cat([torch.full((5,), 9.0), b, torch.full((3,), 9.0)])
    sd['module.x_1d_b_f.0.bias'] = big[5:5 + b.numel()]  # a view at storage offset 5
    best = {'epoch': 7, 'state_dict': sd}
    torch.save(best, os.path.join(out, 'TCA_best.pth.tar'))
    torch.save(best, os.path.join(out, 'TCA_best_legacy.pth.tar'), _use_new_zipfile_serialization=False)
    torch.save(best, os.path.join(out, 'TCA_best_p4.pth.tar'), pickle_protocol=4)

    # epoch-N: plain keys and the optimizer's state (of a copy that took a step).
    stepped = copy.deepcopy(net)
    opt = torch.optim.AdamW([p for p in stepped.parameters() if p.requires_grad], lr=1e-3, weight_decay=1e-4)
    for p in stepped.parameters():
        if p.requires_grad:
            p.grad = torch.randn_like(p)
    opt.step()
    epoch = {'epoch': 5, 'model_state': net.state_dict(), 'optimizer_dict': opt.state_dict()}
    torch.save(epoch, os.path.join(out, 'epoch-5.pth.tar'))
    torch.save(epoch, os.path.join(out, 'epoch-5_legacy.pth.tar'), _use_new_zipfile_serialization=False)
    torch.save(net.state_dict(), os.path.join(out, 'bare.pth'))

    torch.save({'meta': {'epoch': 9}, 'state_dict': mmaction2_state_dict(c)}, os.path.join(out, 'mmaction2.pth'))
    torch.save({'foo': [1, 2, 3]}, os.path.join(out, 'not_a_checkpoint.pth'))


args = sys.argv[1:]
for i in range(0, len(args), 5):
    cfg, out, seed, B, N = args[i:i + 5]
    write(cfg, out, int(seed), int(B), int(N))
