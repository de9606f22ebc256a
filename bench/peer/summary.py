#!/usr/bin/env python3
"""Multi-seed means of bench/peer/run.sh's PEER lines against the REFERENCE.md §7 AWQ anchors.
usage: python3 bench/peer/summary.py FILE..."""
import collections
import re
import statistics as st
import sys

REF = {"w4": (111.17, 37.30), "w3": (115.82, 39.17)}
runs = collections.defaultdict(list)
for path in sys.argv[1:]:
    for line in open(path):
        m = re.match(r"PEER seed=(\S+) variant=(\S+) brown (\S+) pydoc (\S+)", line)
        if m and m.group(1) != "-":
            runs[m.group(2)].append((float(m.group(3)), float(m.group(4))))
print("| variant | seeds | brown mean ± sd | Δ % | pydoc mean ± sd | Δ % | worst b / p |")
print("|---|---|---|---|---|---|---|")
for k, v in sorted(runs.items()):
    b, p = [x[0] for x in v], [x[1] for x in v]
    rb, rp = REF[k[-2:]]
    sd = lambda xs: st.stdev(xs) if len(xs) > 1 else 0.0
    print(f"| {k} | {len(v)} | {st.mean(b):.2f} ± {sd(b):.2f} | {100 * (st.mean(b) / rb - 1):+.2f} "
          f"| {st.mean(p):.2f} ± {sd(p):.2f} | {100 * (st.mean(p) / rp - 1):+.2f} "
          f"| {max(b):.2f} / {max(p):.2f} |")
