#!/usr/bin/env python3
"""The Unraid template (docker/unraid/shardquant.xml) against what shardquant really maps.

  tests/docker/unraid_test.py BINARY TEMPLATE SHARED_DIR

Checks: well-formed (xmllint when present, else Python's parser); every Variable it offers is an
environment variable shardquant maps (the `env` column of `shardquant --help-markdown`, plus
EXTRA_ARGS which the parser reads itself) or one of the NVIDIA container runtime's variables;
the model folder is a Path mapped to /models; GPU passthrough is set up (--runtime=nvidia or
--gpus in ExtraParams, NVIDIA_VISIBLE_DEVICES offered); the image it names is the GPU image the
README builds; and a dry run of the binary with the template's default values (MODEL_PATH set
to the house model) is accepted, so no default is a value shardquant refuses.
Exit 0 pass, 1 fail, 77 skip (no binary or house model).
"""
import os
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET

NVIDIA_VARS = {"NVIDIA_VISIBLE_DEVICES", "NVIDIA_DRIVER_CAPABILITIES"}


def fail(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


def main():
    binary, template, shared = sys.argv[1:4]
    house = os.path.join(shared, "models", "house-llama-13m")
    if not os.access(binary, os.X_OK):
        print(f"SKIP: binary {binary} not built")
        sys.exit(77)

    if shutil.which("xmllint"):
        r = subprocess.run(["xmllint", "--noout", template], capture_output=True, text=True)
        if r.returncode != 0:
            fail(f"xmllint: {r.stderr.strip()}")
    root = ET.parse(template).getroot()  # raises on malformed XML either way
    if root.tag != "Container":
        fail(f"root element is <{root.tag}>, expected <Container>")

    helpmd = subprocess.run([binary, "--help-markdown"], capture_output=True, text=True, check=True)
    mapped = {"EXTRA_ARGS"}
    for line in helpmd.stdout.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 4 and re.fullmatch(r"[A-Z_]+", cells[3] or "-"):
            mapped.add(cells[3])
    if "MODEL_PATH" not in mapped or "SEQ_LEN" not in mapped:
        fail(f"could not read the env column of --help-markdown (got {sorted(mapped)})")

    configs = root.findall("Config")
    variables = {c.get("Target"): c for c in configs if c.get("Type") == "Variable"}
    paths = [c for c in configs if c.get("Type") == "Path"]
    for name in variables:
        if name not in mapped and name not in NVIDIA_VARS:
            fail(f"template variable {name} is not one shardquant maps ({sorted(mapped)})")
    if not any(p.get("Target") == "/models" for p in paths):
        fail("no Path config maps a host folder to /models")
    extra = root.findtext("ExtraParams") or ""
    if "--runtime=nvidia" not in extra and "--gpus" not in extra:
        fail(f"GPU passthrough not set up (ExtraParams: {extra!r})")
    if "NVIDIA_VISIBLE_DEVICES" not in variables:
        fail("NVIDIA_VISIBLE_DEVICES is not offered (which GPUs the container sees)")
    repo = root.findtext("Repository") or ""
    if not repo.startswith("shardquant:"):
        fail(f"Repository {repo!r} is not a shardquant image tag")
    overview = root.findtext("Overview") or ""
    if "GPU" not in overview and "gpu" not in overview:
        fail("the Overview does not say how the GPU is passed through")

    if not os.path.isdir(house):
        print(f"SKIP: house model not at {house}; template structure checked")
        sys.exit(77)
    env = {k: v for k, v in os.environ.items() if k not in mapped}
    for name, c in variables.items():
        value = (c.text or c.get("Default") or "").strip()
        if value and name not in NVIDIA_VARS:
            env[name] = value
    env["MODEL_PATH"] = house
    env.pop("OUTPUT_DIR", None)
    r = subprocess.run([binary, "--dry-run", "--log-file", os.devnull], env=env,
                       capture_output=True, text=True)
    if r.returncode != 0:
        fail(f"dry run with the template's defaults exited {r.returncode}: {r.stdout}{r.stderr}")
    offered = ", ".join(sorted(variables))
    print(f"PASS: template well-formed; variables {offered} all mapped; /models; GPU passthrough; "
          "defaults accepted by a dry run")


if __name__ == "__main__":
    main()
