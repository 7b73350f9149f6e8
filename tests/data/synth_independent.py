#!/usr/bin/env python3
"""An independent synthetic dataset for measuring proposal refinement.

Written without looking at the trainer's own generator (`tcanet-train synth`),
so that a model tuned on one is checked on data it was not shaped by. It writes
the formats users have, exactly as the toolkit's binaries read them:

  DIR/annotations.json   ActivityNet 1.3 style `database` (subset training or
                         validation, duration, url, resolution, annotations
                         with segment and label), videos of both subsets
                         interleaved in the file
  DIR/features/<id>.npy  float32 [C, T]: channel-major, T varies per video
                         (one step every 0.5-2 s, as when features are taken
                         at a video's own frame rate), never equal to C
  DIR/proposals.json     leaderboard format {"results": {id: [{"segment",
                         "score"}]}}, 40-100 proposals per video
  DIR/classifier.json    video-level class scores in the release's format
                         {"class_names": [...], "results": {id: [raw scores]}}
                         (class probabilities are softmax(2 x scores))
  DIR/README.txt         the settings and a few statistics

Feature model (per video): a background of scene vectors with hard scene cuts
(some of them on action boundaries, most not), slow per-channel drift, actions
drawn from per-class templates (a shared actionness direction, one to three
class phases blended in sequence, a class rhythm) switched on and off by
logistic onset and offset ramps whose sharpness varies per boundary, weak
look-alike segments in the background, temporally correlated (AR(1)) noise
mixed across channels, a per-video gain and channel offsets, junk channels
(random walks and spikes) that carry nothing, and box pooling of a fine
timeline into each step. Annotations are the signal's boundaries plus a small
annotator jitter.

Proposal model (per video, seconds): for every instance a shared error and an
individual one, both Student-t (heavy-tailed) and proportional to the
instance's length, starts biased late; fragments of instances; merges of
neighbouring instances (over-extensions when there is one); near duplicates;
false positives anywhere (some on the look-alike segments, some the whole
video). Scores are a noisy, per-video offset function of the best IoU.

Deterministic for a given seed and numpy version. Usage:

  python3 tests/data/synth_independent.py --out DIR --seed 0 --videos 480 \
      --difficulty moderate
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import string
import sys
import tempfile
from dataclasses import dataclass

import numpy as np

MARKER = "README.txt"
MARKER_FIRST_LINE = "Independent synthetic TCANet dataset"

CLASS_NAMES = [
    "Rope skipping", "Painting a fence", "Washing dishes", "Playing bagpipes",
    "Shoveling snow", "Kite flying", "Ironing clothes", "Pole vault",
    "Making a sandwich", "Rock climbing", "Bathing a dog", "Tug of war",
    "Sharpening knives", "Hula hoop", "Raking leaves", "Windsurfing",
]


@dataclass(frozen=True)
class Difficulty:
    """Every knob that differs between the two difficulty levels."""

    # features
    noise_sd: float          # sd of the mixed AR(1) noise per channel
    noise_rho: float         # AR(1) coefficient per feature step
    drift_amp: float         # amplitude of the slow drift per channel
    scene_sd: float          # how far a scene's background departs from the video's
    cut_rate: float          # scene cuts per second, anywhere
    cut_at_boundary: float   # chance that an action boundary is also a cut
    junk_channels: int       # channels that carry nothing (of --channels)
    ramp: tuple              # onset/offset ramp width, fraction of the length (log-uniform)
    action_amp: tuple        # per-instance action amplitude range
    lookalike_amp: tuple     # amplitude of look-alike background segments
    gain_sd: float           # log-sd of the per-video gain
    annot_jitter: float      # annotator jitter, fraction of the length
    # proposals
    late_bias: float         # mean start delay, fraction of the length
    shared_sd: float         # per-instance shared boundary error scale
    own_sd: float            # per-proposal boundary error scale
    dof: float               # Student-t degrees of freedom (heavier tails when lower)
    mix: tuple               # fractions: instance, fragment, merge, duplicate, false positive
    score_slope: float       # score logit per unit of IoU
    score_sd: float          # noise of the score logit
    classifier_margin: float  # raw classifier score added to a video's true class


DIFFICULTIES = {
    "moderate": Difficulty(
        noise_sd=1.0, noise_rho=0.65, drift_amp=0.35, scene_sd=0.45,
        cut_rate=1 / 30, cut_at_boundary=0.3, junk_channels=8,
        ramp=(0.02, 0.2), action_amp=(0.6, 1.25), lookalike_amp=(0.3, 0.5),
        gain_sd=0.3, annot_jitter=0.035,
        late_bias=0.06, shared_sd=0.19, own_sd=0.13, dof=2.5,
        mix=(0.30, 0.14, 0.09, 0.17, 0.30), score_slope=5.0, score_sd=0.8,
        classifier_margin=2.2,
    ),
    "hard": Difficulty(
        noise_sd=1.1, noise_rho=0.72, drift_amp=0.5, scene_sd=0.6,
        cut_rate=1 / 18, cut_at_boundary=0.2, junk_channels=10,
        ramp=(0.025, 0.25), action_amp=(0.5, 1.2), lookalike_amp=(0.35, 0.6),
        gain_sd=0.4, annot_jitter=0.045,
        late_bias=0.12, shared_sd=0.24, own_sd=0.16, dof=2.0,
        mix=(0.26, 0.16, 0.10, 0.17, 0.31), score_slope=3.0, score_sd=1.1,
        classifier_margin=1.5,
    ),
}


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} must be a positive integer")
    return value


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Write an independent synthetic dataset (annotations.json, features/*.npy "
        "[C, T], proposals.json, classifier.json) in the toolkit's real formats.")
    p.add_argument("--out", required=True, help="output directory (must be empty or absent, "
                   "or a previous output of this script, which is replaced)")
    p.add_argument("--seed", type=int, default=0, help="seed (default 0)")
    p.add_argument("--videos", type=positive_int, default=480,
                   help="videos in all (default 480)")
    p.add_argument("--val-fraction", type=float, default=1 / 3,
                   help="fraction of the videos in the validation subset (default 1/3)")
    p.add_argument("--difficulty", choices=sorted(DIFFICULTIES), default="moderate")
    p.add_argument("--channels", type=positive_int, default=32,
                   help="feature channels C (default 32, the tiny preset)")
    p.add_argument("--classes", type=positive_int, default=12,
                   help=f"action classes (default 12, at most {len(CLASS_NAMES)})")
    p.add_argument("--min-steps", type=positive_int, default=40,
                   help="fewest feature steps of a video (default 40)")
    p.add_argument("--max-steps", type=positive_int, default=400,
                   help="most feature steps of a video (default 400)")
    p.add_argument("--min-duration", type=float, default=15.0, help="shortest video, s (15)")
    p.add_argument("--max-duration", type=float, default=240.0, help="longest video, s (240)")
    p.add_argument("--min-proposals", type=positive_int, default=40,
                   help="fewest input proposals of a video (default 40)")
    p.add_argument("--max-proposals", type=positive_int, default=100,
                   help="most input proposals of a video (default 100)")
    a = p.parse_args(argv)
    problems = []
    if not 0.0 < a.val_fraction < 1.0:
        problems.append("--val-fraction must be in (0, 1)")
    if a.videos < 2:
        problems.append("--videos must be at least 2 (one per subset)")
    if a.classes > len(CLASS_NAMES):
        problems.append(f"--classes must be at most {len(CLASS_NAMES)}")
    if a.channels <= DIFFICULTIES[a.difficulty].junk_channels + 4:
        problems.append("--channels leaves fewer than 5 informative channels")
    if a.min_steps > a.max_steps:
        problems.append("--min-steps must not exceed --max-steps")
    if not 5.0 <= a.min_duration < a.max_duration:
        problems.append("need 5 <= --min-duration < --max-duration")
    if a.min_proposals > a.max_proposals:
        problems.append("--min-proposals must not exceed --max-proposals")
    if problems:
        p.error("; ".join(problems))
    return a


# ---------------------------------------------------------------- class templates

@dataclass
class ClassTemplate:
    phases: np.ndarray     # [P, C_inf] phase vectors, blended in order
    rhythm: np.ndarray     # [C_inf] rhythm direction
    rhythm_hz: float       # rhythm frequency


def make_templates(rng, n_classes: int, c_inf: int):
    """The shared actionness direction and one template per class."""
    actionness = rng.normal(0.0, 1.0, c_inf)
    actionness *= 0.6 / np.sqrt(np.mean(actionness ** 2))
    templates = []
    for _ in range(n_classes):
        n_phases = int(rng.integers(1, 4))
        phases = rng.normal(0.0, 1.0, (n_phases, c_inf))
        phases *= rng.random((n_phases, c_inf)) < 0.5  # sparse: half the channels
        phases /= np.sqrt(np.mean(phases ** 2, axis=1, keepdims=True)) + 1e-9
        rhythm = rng.normal(0.0, 1.0, c_inf) * (rng.random(c_inf) < 0.3)
        templates.append(ClassTemplate(phases * 0.8, rhythm * 0.4,
                                       float(rng.uniform(0.05, 0.6))))
    return actionness, templates


# ---------------------------------------------------------------- videos

def video_ids(rng, n: int) -> list[str]:
    alphabet = np.array(list(string.ascii_letters + string.digits + "_-"))
    ids, seen = [], set()
    while len(ids) < n:
        vid = "v_" + "".join(rng.choice(alphabet, 11))
        if vid not in seen:
            seen.add(vid)
            ids.append(vid)
    return ids


def draw_instances(rng, duration: float, n_classes: int):
    """Instances [(start, end, class)] of the signal, in seconds, ordered."""
    k = int(min(rng.geometric(0.5), 8))
    coverage = rng.uniform(0.15, 0.95) if k == 1 else rng.uniform(0.2, 0.8)
    lengths = rng.dirichlet(np.full(k, 1.5)) * coverage * duration
    gaps = rng.dirichlet(np.ones(k + 1)) * (1.0 - coverage) * duration
    if rng.random() < 0.15:   # the action is under way when the video starts
        gaps[1:] += gaps[0] / k
        gaps[0] = 0.0
    if rng.random() < 0.15:   # ... or still going when it ends
        gaps[:-1] += gaps[-1] / k
        gaps[-1] = 0.0
    main = int(rng.integers(n_classes))
    other = int(rng.integers(n_classes))
    out, t = [], 0.0
    for i in range(k):
        t += gaps[i]
        start, end = t, t + lengths[i]
        t = end
        if end - start >= 2.0:
            cls = other if rng.random() < 0.15 else main
            out.append((start, end, cls))
    if not out:   # every drawn instance was too short: one in the middle
        length = max(2.0, coverage * duration)
        start = (duration - length) / 2
        out.append((start, start + length, main))
    return out


def ramp(t, centre, width):
    return 1.0 / (1.0 + np.exp(-np.clip((t - centre) / width, -60, 60)))


def ar1_mixed_noise(rng, steps: int, c: int, d: Difficulty, mix: np.ndarray):
    innov = rng.standard_normal((steps, c)) @ mix
    noise = np.empty_like(innov)
    noise[0] = innov[0]
    scale = np.sqrt(1.0 - d.noise_rho ** 2)
    for t in range(1, steps):
        noise[t] = d.noise_rho * noise[t - 1] + scale * innov[t]
    return noise * d.noise_sd


def junk(rng, steps: int, n: int):
    walk = np.cumsum(rng.standard_normal((steps, n)), axis=0)
    walk = (walk - walk.mean(0)) / (walk.std(0) + 1e-9)
    spikes = (rng.random((steps, n)) < 0.03) * rng.standard_t(1.5, (steps, n))
    return 1.5 * walk + np.clip(spikes, -8, 8)


def features_for(rng, duration, instances, lookalikes, steps, world, d: Difficulty):
    """[C, steps] float32 features of one video."""
    c, junk_idx, inf_idx, actionness, templates, mix = world
    c_inf = len(inf_idx)
    sub = 4   # fine samples pooled into each step
    t = (np.arange(steps * sub) + 0.5) * duration / (steps * sub)
    # background: scenes separated by cuts, some cuts on action boundaries
    n_cuts = rng.poisson(d.cut_rate * duration)
    cuts = list(rng.uniform(0, duration, n_cuts))
    for s, e, _ in instances:
        for b in (s, e):
            if rng.random() < d.cut_at_boundary:
                cuts.append(b)
    cuts = np.sort(np.array(cuts))
    base = rng.normal(0.0, 0.6, c_inf)
    scenes = base + rng.normal(0.0, d.scene_sd, (len(cuts) + 1, c_inf))
    x = scenes[np.searchsorted(cuts, t)]
    # slow drift
    for _ in range(2):
        period = rng.uniform(0.5, 3.0, c_inf) * duration
        phase = rng.uniform(0, 2 * np.pi, c_inf)
        x += d.drift_amp / np.sqrt(2) * np.sin(2 * np.pi * t[:, None] / period + phase)
    # actions and look-alikes: templates under onset/offset ramps
    events = [(s, e, cls, rng.uniform(*d.action_amp), True) for s, e, cls in instances]
    events += [(s, e, cls, rng.uniform(*d.lookalike_amp), False) for s, e, cls in lookalikes]
    for s, e, cls, amp, real in events:
        length = e - s
        w_on, w_off = length * np.exp(rng.uniform(*np.log(d.ramp), 2))
        act = ramp(t, s, w_on) * ramp(-t, -e, w_off)
        tpl = templates[cls]
        n_ph = len(tpl.phases)
        cuts_ph = np.sort(rng.uniform(0.15, 0.85, n_ph - 1))
        u = np.clip((t - s) / length, 0.0, 1.0)
        sig = np.zeros((len(t), c_inf))
        for p in range(n_ph):   # phase p between its cut points, soft edges
            lo = cuts_ph[p - 1] if p > 0 else -1.0
            hi = cuts_ph[p] if p < n_ph - 1 else 2.0
            w = ramp(u, lo, 0.03) * ramp(-u, -hi, 0.03)
            sig += w[:, None] * tpl.phases[p]
        sig += np.sin(2 * np.pi * tpl.rhythm_hz * t + rng.uniform(0, 6.3))[:, None] * tpl.rhythm
        if real:
            sig += actionness
        x += amp * act[:, None] * sig
    pooled = x.reshape(steps, sub, c_inf).mean(1)
    out = np.empty((steps, c))
    out[:, inf_idx] = pooled + ar1_mixed_noise(rng, steps, c_inf, d, mix)
    out[:, junk_idx] = junk(rng, steps, len(junk_idx))
    gain = np.exp(rng.normal(0.0, d.gain_sd))
    out = gain * out + rng.normal(0.0, 0.3, c)
    return np.ascontiguousarray(out.T, dtype=np.float32)


# ---------------------------------------------------------------- proposals

def iou_matrix(segs: np.ndarray, gt: np.ndarray) -> np.ndarray:
    inter = np.clip(np.minimum(segs[:, None, 1], gt[None, :, 1])
                    - np.maximum(segs[:, None, 0], gt[None, :, 0]), 0, None)
    union = (segs[:, 1] - segs[:, 0])[:, None] + (gt[:, 1] - gt[:, 0])[None, :] - inter
    return inter / union


def heavy(rng, d: Difficulty, size=None):
    """Student-t with unit scale, clipped: heavy tails without absurd outliers."""
    return np.clip(rng.standard_t(d.dof, size), -8.0, 8.0)


def proposals_for(rng, duration, gt, lookalikes, d: Difficulty, n_total: int):
    """[(start, end, score)] for one video; `gt` is [K, 2] seconds."""
    k = len(gt)
    lengths = gt[:, 1] - gt[:, 0]
    counts = np.floor(np.array(d.mix) * n_total).astype(int)
    counts[4] += n_total - counts.sum()   # the rest are false positives
    n_inst, n_frag, n_merge, n_dup, n_fp = counts
    segs = []
    # per instance: a shared error (starts late) and the proposal's own
    shared = np.stack([lengths * (d.late_bias + d.shared_sd * heavy(rng, d, k)),
                       lengths * d.shared_sd * heavy(rng, d, k)], 1)
    weights = np.sqrt(lengths / duration)
    owner = rng.choice(k, n_inst, p=weights / weights.sum())
    owner[:min(k, n_inst)] = np.arange(min(k, n_inst))   # every instance gets one
    for i in owner:
        own = lengths[i] * d.own_sd * heavy(rng, d, 2)
        if own[0] < 0:   # starts err late more often than early
            own[0] *= 0.5
        segs.append(gt[i] + shared[i] + own)
    for _ in range(n_frag):
        i = int(rng.integers(k))
        f = rng.uniform(0.15, 0.55)
        u = rng.uniform(0.0, 1.0 - f)
        segs.append(gt[i, 0] + lengths[i] * np.array([u, u + f]))
    for _ in range(n_merge):
        i = int(rng.integers(k))
        if k > 1:
            j = min(k - 1, i + int(rng.integers(1, 3)))
            i = min(i, j - 1)
            seg = np.array([gt[i, 0], gt[j, 1]])
        else:   # over-extension into the background
            extra = lengths[i] * rng.uniform(0.3, 1.2)
            side = rng.random()
            seg = gt[i] + np.array([-extra * side, extra * (1 - side)])
        span = seg[1] - seg[0]
        segs.append(seg + span * d.own_sd * heavy(rng, d, 2))
    for _ in range(n_fp):
        r = rng.random()
        if r < 0.05:
            seg = np.array([0.0, duration])
        elif r < 0.3 and lookalikes:
            s, e, _ = lookalikes[int(rng.integers(len(lookalikes)))]
            seg = np.array([s, e]) + (e - s) * 0.15 * heavy(rng, d, 2)
        else:
            length = np.exp(rng.uniform(np.log(1.5), np.log(0.9 * duration)))
            start = rng.uniform(-0.1 * length, duration - 0.9 * length)
            seg = np.array([start, start + length])
        segs.append(seg)
    segs = np.array(segs, dtype=float).reshape(-1, 2)
    segs = fix_segments(segs, duration)
    best = iou_matrix(segs, gt).max(1)
    offset = rng.normal(0.0, 0.5)
    logit = d.score_slope * (best - 0.5) + offset + rng.normal(0.0, d.score_sd, len(segs))
    scores = 1.0 / (1.0 + np.exp(-logit))
    # near duplicates of proposals drawn by score (a generator's multiple hits)
    if n_dup:
        src = rng.choice(len(segs), n_dup, p=scores / scores.sum())
        span = (segs[src, 1] - segs[src, 0])[:, None]
        dups = fix_segments(segs[src] + span * rng.uniform(-0.02, 0.02, (n_dup, 2)), duration)
        segs = np.concatenate([segs, dups])
        scores = np.concatenate([scores, scores[src] * rng.uniform(0.85, 1.0, n_dup)])
    order = rng.permutation(len(segs))   # files are not sorted by score
    return [(float(segs[i, 0]), float(segs[i, 1]), float(scores[i])) for i in order]


def fix_segments(segs: np.ndarray, duration: float) -> np.ndarray:
    """Clipped to the video, ordered, at least 0.5 s (or 2% of the video) long."""
    segs = np.sort(segs, axis=1)
    segs = np.clip(segs, 0.0, duration)
    min_len = min(0.5, 0.02 * duration)
    short = segs[:, 1] - segs[:, 0] < min_len
    centre = np.clip(segs[short].mean(1), min_len / 2, duration - min_len / 2)
    segs[short] = np.stack([centre - min_len / 2, centre + min_len / 2], 1)
    return np.round(segs, 2)


# ---------------------------------------------------------------- classifier

def classifier_scores(rng, classes_present: set, n_classes: int, d: Difficulty):
    raw = rng.normal(0.0, 0.8, n_classes)
    for cls in classes_present:
        raw[cls] += d.classifier_margin * rng.uniform(0.6, 1.2)
    if rng.random() < 0.1:   # a confusable class
        raw[int(rng.integers(n_classes))] += d.classifier_margin
    return [round(float(v), 4) for v in raw]


# ---------------------------------------------------------------- writing

def fail(message: str) -> None:
    """Invalid input or usage: the message on stderr, exit status 2."""
    print(f"synth_independent: {message}", file=sys.stderr)
    sys.exit(2)


def prepare_out(path: str) -> None:
    if os.path.isdir(path) and os.listdir(path):
        marker = os.path.join(path, MARKER)
        ok = os.path.isfile(marker)
        if ok:
            with open(marker, encoding="utf-8") as f:
                ok = f.readline().startswith(MARKER_FIRST_LINE)
        if not ok:
            fail(f"{path} is not empty and was not written by this script; choose another --out")
        shutil.rmtree(path)
    elif os.path.exists(path) and not os.path.isdir(path):
        fail(f"{path} exists and is not a directory")
    os.makedirs(os.path.join(path, "features"), exist_ok=True)


def write_json(path: str, obj) -> None:
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".tmp-")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(obj, f, allow_nan=False)
        f.write("\n")
    os.replace(tmp, path)


def main(argv: list[str]) -> int:
    a = parse_args(argv)
    d = DIFFICULTIES[a.difficulty]
    root = np.random.SeedSequence([a.seed, 0x7CA])
    world_seq, ids_seq, videos_seq = root.spawn(3)
    wrng = np.random.default_rng(world_seq)
    junk_idx = np.sort(wrng.choice(a.channels, d.junk_channels, replace=False))
    inf_idx = np.setdiff1d(np.arange(a.channels), junk_idx)
    actionness, templates = make_templates(wrng, a.classes, len(inf_idx))
    # channel mixing of the noise: identity plus a few shared factors, unit sd per channel
    loadings = wrng.normal(0.0, 0.5, (3, len(inf_idx)))
    mix = np.eye(len(inf_idx)) + loadings.T @ loadings / len(inf_idx) ** 0.5
    mix /= np.sqrt((mix ** 2).sum(0, keepdims=True))
    world = (a.channels, junk_idx, inf_idx, actionness, templates, mix)

    irng = np.random.default_rng(ids_seq)
    ids = video_ids(irng, a.videos)
    n_val = min(a.videos - 1, max(1, round(a.videos * a.val_fraction)))
    is_val = np.zeros(a.videos, bool)
    is_val[irng.choice(a.videos, n_val, replace=False)] = True

    prepare_out(a.out)
    database, results, cls_results = {}, {}, {}
    names = CLASS_NAMES[:a.classes]
    stats = {"instances": 0, "proposals": 0, "best_iou": [], "steps": []}
    for vid, val, seq in zip(ids, is_val, videos_seq.spawn(a.videos)):
        rng = np.random.default_rng(seq)
        duration = float(np.clip(np.exp(rng.normal(np.log(100.0), 0.6)),
                                 a.min_duration, a.max_duration))
        duration = round(duration, 2)
        true_inst = draw_instances(rng, duration, a.classes)
        # look-alikes: weak template segments in the background gaps
        lookalikes = []
        for _ in range(int(rng.poisson(0.8))):
            length = rng.uniform(0.05, 0.25) * duration
            start = rng.uniform(0, duration - length)
            if all(start > e + 1 or start + length < s - 1 for s, e, _ in true_inst):
                lookalikes.append((start, start + length, int(rng.integers(a.classes))))
        steps = int(round(duration / rng.uniform(0.5, 2.0)))
        steps = int(np.clip(steps, a.min_steps, a.max_steps))
        if steps == a.channels:
            steps += 1   # a square array would be read as [T, C]
        feats = features_for(rng, duration, true_inst, lookalikes, steps, world, d)
        np.save(os.path.join(a.out, "features", f"{vid}.npy"), feats)
        # annotations: the signal's boundaries with annotator jitter
        ann, gt = [], []
        for s, e, cls in true_inst:
            jit = (e - s) * d.annot_jitter * rng.standard_normal(2)
            s2, e2 = float(np.clip(s + jit[0], 0, duration)), float(np.clip(e + jit[1], 0, duration))
            if e2 - s2 < 1.5:
                s2, e2 = s, e
            ann.append({"segment": [round(s2, 2), round(e2, 2)], "label": names[cls]})
            gt.append([round(s2, 2), round(e2, 2)])
        gt = np.array(gt)
        database[vid] = {
            "subset": "validation" if val else "training",
            "duration": duration,
            "url": f"https://www.youtube.com/watch?v={vid[2:]}",
            "resolution": ["640x360", "1280x720", "480x360"][int(rng.integers(3))],
            "annotations": ann,
        }
        n_props = int(rng.integers(a.min_proposals, a.max_proposals + 1))
        props = proposals_for(rng, duration, gt, lookalikes, d, n_props)
        results[vid] = [{"score": round(sc, 4), "segment": [s, e]} for s, e, sc in props]
        cls_results[vid] = classifier_scores(rng, {c for _, _, c in true_inst}, a.classes, d)
        segs = np.array([[s, e] for s, e, _ in props])
        stats["instances"] += len(gt)
        stats["proposals"] += len(props)
        stats["best_iou"].extend(iou_matrix(gt, segs).max(1).tolist())
        stats["steps"].append(steps)

    write_json(os.path.join(a.out, "annotations.json"),
               {"version": "VERSION 1.3", "database": database})
    write_json(os.path.join(a.out, "proposals.json"),
               {"version": "VERSION 1.3", "external_data": {"used": False, "details": ""},
                "results": results})
    write_json(os.path.join(a.out, "classifier.json"),
               {"class_names": names, "results": cls_results})
    mean_best = float(np.mean(stats["best_iou"]))
    readme = (
        f"{MARKER_FIRST_LINE} (tests/data/synth_independent.py), seed {a.seed}, "
        f"difficulty {a.difficulty}.\n\n"
        f"videos: {a.videos} ({a.videos - n_val} training, {n_val} validation); "
        f"classes: {a.classes}; channels: {a.channels} ({d.junk_channels} junk)\n"
        f"feature steps per video: {min(stats['steps'])}-{max(stats['steps'])} "
        f"(features/<video>.npy, float32 [C, T])\n"
        f"instances: {stats['instances']}; proposals: {stats['proposals']} "
        f"({a.min_proposals}-{a.max_proposals} per video); mean best IoU of an instance "
        f"with a proposal: {mean_best:.3f}\n"
        "classifier.json: release format (class_names, raw scores; softmax(2 x scores))\n")
    with open(os.path.join(a.out, MARKER), "w", encoding="utf-8") as f:
        f.write(readme)
    print(f"synth_independent: wrote {a.out}: {a.videos} videos, {stats['instances']} instances, "
          f"{stats['proposals']} proposals (mean best IoU {mean_best:.3f})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
