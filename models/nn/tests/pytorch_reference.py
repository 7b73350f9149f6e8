"""TCANet as PyTorch computes it, written from docs/MODEL.md with torch's own modules
(Conv1d, MultiheadAttention with the release's boolean mask, LayerNorm,
affine_grid + grid_sample, smooth_l1_loss), in float64.

Used by nn_pytorch_parity.rs: usage `pytorch_reference.py IN.npz CONFIG.json OUT.npz [IN2 CONFIG2 OUT2 ...]`.
IN holds the tch model's parameters as `param/<state_dict key>` (loaded with
strict=True, so every name and shape must be the release's), the inputs
`feats`, `props`, `gt`, `valid`, and `seed`; OUT gets the inference outputs
`inf_refined{k}`, `inf_iou{k}` and the training losses `loss_{se,xw,iou}{k}`,
`loss_total` (IoU-loss draws from torch's global RNG seeded with `seed`, medium
then low per stage, stage 1 first).
"""
import json, sys
import numpy as np, torch, torch.nn as nn, torch.nn.functional as F
torch.set_default_dtype(torch.float64)


def run(inp, cfgp, outp):
    z = np.load(inp)
    cfg = json.load(open(cfgp))
    C, T, H, g = cfg['feat_dim'], cfg['temporal_scale'], cfg['hidden_dim'], cfg['conv_groups']
    heads, w, ffn = cfg['heads'], cfg['window_size'], cfg['ffn_dim']
    ns, na, ne, seh = cfg['start_sample_num'], cfg['action_sample_num'], cfg['end_sample_num'], cfg['se_hidden_dim']
    class Holder(nn.Module):
        pass
    class LGTE(nn.Module):
        def __init__(s):
            super().__init__()
            s.self_atten = Holder(); s.self_atten.scale_attention = nn.MultiheadAttention(H, heads, dropout=0.0)
            s.linear1 = nn.Linear(H, ffn); s.linear2 = nn.Linear(ffn, H); s.norm1 = nn.LayerNorm(H); s.norm2 = nn.LayerNorm(H)
            m = torch.ones(heads, T, T, dtype=torch.bool)
            for h in range(heads // 2):
                for j in range(T):
                    for k in range(w):
                        m[h, j, min(max(j - w // 2 + k, 0), T - 1)] = False
            m[heads // 2:] = False
            s.blocked = m
        def forward(s, x):
            src = x.permute(2, 0, 1)
            B = src.shape[1]
            a = s.self_atten.scale_attention(src, src, src, attn_mask=s.blocked.repeat(B, 1, 1), need_weights=False)[0]
            src = s.norm1(src + a)
            src = s.norm2(src + s.linear2(F.relu(s.linear1(src))))
            return src.permute(1, 2, 0)
    def se_branch():
        k = ((ns + 2 - 3) // 2 + 1 + 2 - 3) // 2 + 1
        return nn.Sequential(nn.Conv1d(H, seh, 3, padding=1, groups=g, stride=2), nn.ReLU(),
                             nn.Conv1d(seh, seh, 3, padding=1, groups=g, stride=2), nn.ReLU(), nn.Conv1d(seh, 1, k))
    class TBR(nn.Module):
        def __init__(s):
            super().__init__()
            s.reg1se = Holder(); s.reg1se.start_reg_conv = se_branch(); s.reg1se.end_reg_conv = se_branch()
            s.reg1xw = Holder()
            tot = ns + na + ne
            k = ((tot + 2 - 3) // 2 + 1 + 2 - 3) // 2 + 1
            s.reg1xw.reg_1d_b = nn.Sequential(nn.Conv1d(H, H, 3, padding=1, groups=g, stride=2), nn.ReLU(),
                                              nn.Conv1d(H, H, 3, padding=1, groups=g, stride=2), nn.ReLU())
            s.reg1xw.reg_1d_o = nn.Sequential(nn.Conv1d(H, H, k, groups=g), nn.ReLU(), nn.Conv1d(H, 3, 1))
    class Net(nn.Module):
        def __init__(s):
            super().__init__()
            s.x_1d_b_f = nn.Sequential(nn.Conv1d(C, H, 3, padding=1, groups=g), nn.ReLU(), nn.Conv1d(H, H, 3, padding=1, groups=g), nn.ReLU())
            s.lgtes = nn.ModuleList([LGTE() for _ in range(cfg['lgte_num'])])
            s.tbr1, s.tbr2, s.tbr3 = TBR(), TBR(), TBR()
    net = Net()
    sd = {k[len('param/'):]: torch.from_numpy(z[k]) for k in z.files if k.startswith('param/')}
    net.load_state_dict(sd, strict=True)
    D = T * cfg['temporal_interval']
    def sample(feat, a, b, n):  # feat [M, H, T]; a, b [M]
        a = (a / D).clamp(0, 1) * 2 - 1; b = (b / D).clamp(0, 1) * 2 - 1
        theta = torch.zeros(a.shape[0], 2, 3); theta[:, 0, 0] = (b - a) / 2; theta[:, 0, 2] = (a + b) / 2; theta[:, 1, 1] = 1
        grid = F.affine_grid(theta, (a.shape[0], feat.shape[1], 1, n), align_corners=False)
        return F.grid_sample(feat.unsqueeze(2), grid, mode='bilinear', padding_mode='zeros', align_corners=False).squeeze(2)
    def forward(feats, props, gscale):
        x = net.x_1d_b_f(feats)
        for l in net.lgtes: x = l(x)
        B, N, _ = props.shape
        per = x[torch.arange(B).repeat_interleave(N)]
        p = props.reshape(-1, 2)
        out = []
        for tbr in (net.tbr1, net.tbr2, net.tbr3):
            s, e = p[:, 0], p[:, 1]; L = e - s; r = cfg['prop_boundary_ratio']
            fs, fa, fe = sample(per, s - r * L, s, ns), sample(per, s, e, na), sample(per, e, e + r * L, ne)
            se = torch.cat([tbr.reg1se.start_reg_conv(fs), tbr.reg1se.end_reg_conv(fe)], 1).squeeze(2)
            o = tbr.reg1xw.reg_1d_o(tbr.reg1xw.reg_1d_b(torch.cat([fs, fa, fe], 2))).squeeze(2)
            iou, xw = o[:, 2].sigmoid(), o[:, :2]
            wd = e - s; c = s + wd / 2
            c2 = c + 0.1 * xw[:, 0] * wd; w2 = wd * torch.exp(0.2 * xw[:, 1])
            pxw = torch.stack([c2 - w2 / 2, c2 + w2 / 2], 1)
            pse = torch.stack([s + se[:, 0] * wd * gscale, e + se[:, 1] * wd * gscale], 1)
            nxt = ((pse + pxw) / 2).clamp(min=0)
            out.append(dict(input=p, se=se, xw=xw, iou=iou, refined=nxt))
            p = nxt
        return out
    feats, props, gt = [torch.from_numpy(z[k]) for k in ('feats', 'props', 'gt')]
    valid = torch.from_numpy(z['valid']).bool()
    out = {}
    with torch.no_grad():
        o = forward(feats, props, cfg['se_decode_scale_infer'])
        for k in range(3):
            out[f'inf_refined{k}'] = o[k]['refined'].reshape(props.shape).numpy()
            out[f'inf_iou{k}'] = o[k]['iou'].reshape(props.shape[:2]).numpy()
        o = forward(feats, props, cfg['se_decode_scale_train'])
    def iou_of(p, q):
        inter = (torch.min(p[:, 1], q[:, 1]) - torch.max(p[:, 0], q[:, 0])).clamp(min=0)
        return inter / ((p[:, 1] - p[:, 0]) - inter + (q[:, 1] - q[:, 0]) + 1e-5)
    torch.manual_seed(int(z['seed']))
    gtf, vf = gt.reshape(-1, 2), valid.reshape(-1)
    total = 0
    for k in range(3):
        thr = cfg['iou_thresholds'][k]
        p = o[k]['input']
        iou = iou_of(p, gtf)
        wc = (p[:, 1] - p[:, 0]).clamp(min=1e-5)
        gw = (gtf[:, 1] - gtf[:, 0]).clamp(min=1e-5)
        tse = torch.stack([(gtf[:, 0] - p[:, 0]) / wc, (gtf[:, 1] - p[:, 1]) / wc], 1)
        txw = torch.stack([((gtf[:, 0] + gw / 2) - (p[:, 0] + wc / 2)) / wc, torch.log(gw / wc)], 1)
        m = ((iou >= thr) & vf).double()
        def reg(pred, t):
            return (F.smooth_l1_loss(pred, t, reduction='none').sum(1) * m).sum() / max(m.sum().item(), 1)
        lse, lxw = reg(o[k]['se'], tse), reg(o[k]['xw'], txw)
        hi = (iou > thr) & vf
        me = (iou <= thr) & (iou > 0.3) & vf
        lo = (iou <= 0.3) & vf
        pm = min(1.0, hi.sum().item() / max(me.sum().item(), 1))
        pl = min(1.0, hi.sum().item() / max(lo.sum().item(), 1))
        um = torch.rand(valid.shape).reshape(-1)
        ul = torch.rand(valid.shape).reshape(-1)
        keep = hi | (me & (um > 1 - pm)) | (lo & (ul > 1 - pl))
        li = (F.smooth_l1_loss(o[k]['iou'], iou, reduction='none') * keep.double()).sum() / max(keep.sum().item(), 1)
        for name, v in (('se', lse), ('xw', lxw), ('iou', li)):
            out[f'loss_{name}{k}'] = v.detach().numpy()
        total = total + lse + lxw + li
    out['loss_total'] = total.detach().numpy()
    np.savez(outp, **out)


args = sys.argv[1:]
for i in range(0, len(args), 3):
    run(*args[i:i + 3])
