#!/usr/bin/env python3
"""Multi-seed means of bench/quality_sweep.sh output against the REFERENCE.md §7 anchors.

    grep ^SWEEP device.log | python3 bench/sweep_summary.py [-]

Reads SWEEP lines (one per dtype, run tag, cell and seed) from stdin or the files given, groups
them by (dtype, run tag, cell) and prints, per group, the number of seeds, the mean and sample
standard deviation of both perplexities, their distance from the reference, the worst seed, and
whether the mean is inside the 0.2 % bar on both test files. Markdown table on stdout.
The anchors only mean something for runs of the full protocol (128x512 / 128x2048 calibration,
all eval windows); reduced runs (GPTQ_N, EVAL_MAX_WINDOWS, ...) are compared all the same.
"""
import collections
import fileinput
import re
import statistics

REF = {  # REFERENCE.md §7 (brown, pydoc)
    "awq-w4": (111.17, 37.30), "awq-w3": (115.82, 39.17),
    "gptq-w4": (110.89, 37.42), "gptq-w3": (114.81, 39.07),
    "gptq-act-w4": (110.77, 37.56), "gptq-act-w3": (114.97, 39.23),
}
# bench/quality.sh's knob cells share their method's reference row.
for knob, base in (("awq-gptq", "awq"), ("gptq-mse", "gptq"), ("gptq-act-mse", "gptq-act")):
    for w in ("w4", "w3"):
        REF[f"{knob}-{w}"] = REF[f"{base}-{w}"]
BAR = 0.002
LINE = re.compile(r"SWEEP dtype=(\S+)\s+run=(\d+)-(\S*)\s+(\S+)\s+brown (\S+) pydoc (\S+)")

groups = collections.OrderedDict()
for line in fileinput.input():
    m = LINE.search(line)
    if not m or m.group(5) == "-" or m.group(6) == "-":
        continue
    dt, seed, run, cell, b, p = m.groups()
    groups.setdefault((dt, run, cell), {})[int(seed)] = (float(b), float(p))  # last line wins

print("| dtype | run | cell | seeds | brown mean ± sd | Δ % | pydoc mean ± sd | Δ % | worst seed b / p | mean inside bar |")
print("|---|---|---|---|---|---|---|---|---|---|")
for (dt, run, cell), by_seed in groups.items():
    if cell not in REF:
        continue
    rb, rp = REF[cell]
    bs = [v[0] for v in by_seed.values()]
    ps = [v[1] for v in by_seed.values()]
    sd = lambda xs: statistics.stdev(xs) if len(xs) > 1 else 0.0
    mb, mp = statistics.mean(bs), statistics.mean(ps)
    inside = mb <= rb * (1 + BAR) and mp <= rp * (1 + BAR)
    print(f"| {dt} | {run} | {cell} | {len(bs)} | {mb:.2f} ± {sd(bs):.2f} | {100 * (mb / rb - 1):+.2f} "
          f"| {mp:.2f} ± {sd(ps):.2f} | {100 * (mp / rp - 1):+.2f} | {max(bs):.2f} / {max(ps):.2f} "
          f"| {'yes' if inside else '**no**'} |")
