#!/usr/bin/env python3
"""Regenerates README.md's flag table from `shardquant --help-markdown` (tests/cli checks it).
usage: scripts/readme_flags.py [SHARDQUANT]   (default build/shardquant)"""
import subprocess
import sys

exe = sys.argv[1] if len(sys.argv) > 1 else "build/shardquant"
md = subprocess.run([exe, "--help-markdown"], capture_output=True, text=True, check=True).stdout
lines = open("README.md").read().split("\n")
start = next(i for i, l in enumerate(lines) if l.startswith("| flag | value | default | env |"))
end = start
while end < len(lines) and lines[end].startswith("|"):
    end += 1
lines[start:end] = md.strip("\n").split("\n")
open("README.md", "w").write("\n".join(lines))
