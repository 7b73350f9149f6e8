"""Sums an ONNX Runtime profile (`tcanet-export bench MODEL --profile FILE`)
by node kind: each node's minimum kernel time over the profiled runs, added
up over the nodes that differ only in their stage, layer or chunk number
(`tbr1`/`tbr2`/`tbr3` -> `tbrK`, `lgtes.0`/`lgtes.1` -> `lgtesL`, a trailing
`_3` -> `_i`). Prints ms, node count, operator and name, largest first;
REGEX keeps the kinds whose "operator name" line it matches.

Usage: python3 scripts/profile_nodes.py PROFILE.json [REGEX]
"""
import collections
import json
import re
import signal
import sys


def kinds(events):
    """{(op, name pattern): (ms, nodes)} from the profile's node events."""
    minima, op = collections.defaultdict(list), {}
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
            name = e["name"][: -len("_kernel_time")]
            minima[name].append(e["dur"])
            op[name] = e["args"].get("op_name", "?")
    out = collections.defaultdict(lambda: [0.0, 0])
    for name, times in minima.items():
        kind = re.sub(r"_\d+$", "_i", name)
        kind = re.sub(r"lgtes\.\d", "lgtesL", re.sub(r"tbr\d", "tbrK", kind))
        out[(op[name], kind)][0] += min(times) / 1000
        out[(op[name], kind)][1] += 1
    return out


def between_nodes(events):
    """One line: the median run (`model_run`) against the sum of the nodes'
    median times, whose difference is the time between the nodes."""
    runs = sorted(e["dur"] for e in events if e.get("cat") == "Session" and e["name"] == "model_run")
    times = collections.defaultdict(list)
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
            times[e["name"]].append(e["dur"])
    medians = sum(sorted(t)[len(t) // 2] for t in times.values()) / 1000
    if not runs:
        return f"sum of per-node medians: {medians:.2f} ms (no model_run events)"
    run = runs[len(runs) // 2] / 1000
    return f"median run: {run:.2f} ms; sum of per-node medians: {medians:.2f} ms; between nodes: {run - medians:.2f} ms"


def main():
    # A closed pipe (`| head`) ends the listing quietly.
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__.strip().splitlines()[-1])
    pattern = re.compile(sys.argv[2] if len(sys.argv) == 3 else "")
    with open(sys.argv[1]) as f:
        events = json.load(f)
    totals = kinds(events)
    shown = [(ms, n, k) for k, (ms, n) in totals.items() if pattern.search(f"{k[0]} {k[1]}")]
    print(f"all nodes: {sum(ms for ms, _ in totals.values()):.2f} ms; shown: {sum(s[0] for s in shown):.2f} ms")
    print(between_nodes(events))
    for ms, n, (op, kind) in sorted(shown, reverse=True):
        print(f"{ms:7.2f} {n:3d} {op:20s} {kind}")


if __name__ == "__main__":
    main()
