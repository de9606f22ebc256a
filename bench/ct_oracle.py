#!/usr/bin/env python3
"""The compressed-tensors library as judge of shardquant's --format compressed-tensors output.

Not part of CI: it needs torch, compressed-tensors (+ pydantic) and, for the load check,
transformers. It fetches nothing. How to run it on the GPU machine: bench/NOTES.md,
"compressed-tensors oracle".

usage: bench/ct_oracle.py [--ct-src DIR] [--fp] [--device DEV] [--text FILE] [--no-load]
                          [--layout-only] [--json FILE] CT_DIR[=REF_DIR] ...

  CT_DIR      a shardquant --format compressed-tensors output directory
  REF_DIR     the --format awq or gptq output of the same run options (the same solve): every
              weight the library decompresses must equal (q - z) * s of REF_DIR, unpacked here
              from REFERENCE.md 3.1/3.2, computed in weight_scale's dtype as the library does
  --ct-src    a compressed-tensors source tree (a git archive of a tag); its src/ goes on
              sys.path when the package is not installed. version.py (written by setuptools-scm
              at build time) is stubbed, and loguru / psutil too when absent (logging only).
  --fp        also load the unquantized model CT_DIR was made from (shardquant_summary.json's
              model_path): transformers' forward of CT_DIR must equal its forward with the
              library's decompressed weights put in its quantized modules
  --text      a text file: perplexity of CT_DIR (and with --fp of the unquantized model) on its
              first 4096 tokens, for directories that carry a tokenizer_config.json
  --layout-only  only the layout check, from --ct-src's pack_quantized/helpers.py loaded alone
              (needs nothing but torch: for a machine without transformers or a recent torch)

Checks per CT_DIR, each printed as PASS/FAIL/SKIP with numbers:
  layout      the library's unpack_from_int32 reads weight_packed and weight_zero_point; with
              REF_DIR, (q - z) * s in weight_scale's dtype equals REF_DIR's weights, and
              pack_to_int32 of the codes and zero points gives the stored words back
  config      QuantizationConfig parses quantization_config (pydantic validation): pack-quantized,
              compressed, one config group
  modules     transformers' module tree of the model (built on the meta device from config.json):
              match_named_modules(targets, ignore) selects exactly the modules whose packed
              tensors are stored (compression_param_names of the scheme, no .weight); every other
              Linear stores .weight or is the tied output head; no packed tensor is left over
  decompress  the library decompresses every packed module to weight_shape in weight_scale's
              dtype; with REF_DIR, equal element for element to REF_DIR's weights
  recompress  the library compresses its decompressed weight (computed in float32, with the
              scales and zero points it read) back to every stored tensor, bit for bit
  load        AutoModelForCausalLM.from_pretrained(CT_DIR) and a forward on 64 token ids: finite
              logits; each quantized module's weight (after the decompression the first forward
              triggers) equals the library's decompression; with --fp, equal logits
Exit status: 0 when nothing failed, 1 when a check failed, 2 on bad usage or missing packages.
"""
import argparse
import json
import os
import sys
import types

RESULTS = []


def record(ct_dir, name, ok, detail):
    status = "SKIP" if ok is None else ("PASS" if ok else "FAIL")
    RESULTS.append({"dir": ct_dir, "check": name, "status": status, "detail": detail})
    print(f"  {status:4} {name:11} {detail}", flush=True)


# --- importing the library from a source tree --------------------------------------------------


def stub_module(name, **attrs):
    m = types.ModuleType(name)
    m.__dict__.update(attrs)
    sys.modules[name] = m
    return m


def import_compressed_tensors(src):
    try:
        import compressed_tensors  # noqa: F401

        return compressed_tensors, "installed"
    except ImportError:
        if not src:
            raise
    root = os.path.join(os.path.abspath(src), "src")
    sys.path.insert(0, root)
    notes = [f"source {root}"]
    version = "0+src"
    if os.path.exists(os.path.join(src, "VERSION")):
        version = open(os.path.join(src, "VERSION")).read().strip()
    # transformers asks importlib.metadata whether (and which) compressed-tensors is installed:
    # a dist-info for the source tree, in a scratch directory on sys.path.
    import tempfile

    meta = tempfile.mkdtemp(prefix="ct-oracle-")
    info = os.path.join(meta, f"compressed_tensors-{version}.dist-info")
    os.makedirs(info)
    with open(os.path.join(info, "METADATA"), "w") as f:
        f.write(f"Metadata-Version: 2.1\nName: compressed-tensors\nVersion: {version}\n")
    sys.path.insert(0, meta)
    notes.append(f"dist-info {version} in {meta}")
    if not os.path.exists(os.path.join(root, "compressed_tensors", "version.py")):
        stub_module(
            "compressed_tensors.version",
            __version__=version,
            version=version,
            __version_tuple__=tuple(version.split(".")),
            version_tuple=tuple(version.split(".")),
            __all__=["__version__", "__version_tuple__", "version", "version_tuple"],
        )
        notes.append(f"version.py stubbed ({version})")
    try:
        import loguru  # noqa: F401
    except ImportError:
        import logging

        log = logging.getLogger("compressed_tensors")

        class Logger:  # loguru's surface as the library uses it, onto logging
            def __getattr__(self, name):
                if name in ("debug", "info", "warning", "error", "critical", "exception"):
                    return lambda msg, *a, **k: getattr(log, name)(
                        str(msg).format(*a, **k) if a or k else str(msg))
                return lambda *a, **k: self

        stub_module("loguru", logger=Logger())
        notes.append("loguru stubbed")
    try:
        import psutil  # noqa: F401
    except ImportError:
        stub_module("psutil", virtual_memory=lambda: types.SimpleNamespace(available=1 << 40))
        notes.append("psutil stubbed")
    import compressed_tensors

    return compressed_tensors, ", ".join(notes)


# --- reading checkpoints -----------------------------------------------------------------------


def read_tensors(d):
    try:
        from safetensors import safe_open
    except ImportError:
        return read_tensors_plain(d)
    out = {}
    for f in sorted(os.listdir(d)):
        if f.endswith(".safetensors"):
            with safe_open(os.path.join(d, f), framework="pt", device="cpu") as sf:
                for k in sf.keys():
                    out[k] = sf.get_tensor(k)
    return out


def read_tensors_plain(d):
    """The safetensors layout (REFERENCE.md 3.4) read directly, for a machine without the package."""
    import struct

    import torch

    dtypes = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
              "I32": torch.int32, "I64": torch.int64, "I8": torch.int8, "U8": torch.uint8}
    out = {}
    for f in sorted(os.listdir(d)):
        if not f.endswith(".safetensors"):
            continue
        raw = open(os.path.join(d, f), "rb").read()
        n = struct.unpack("<Q", raw[:8])[0]
        for k, v in json.loads(raw[8 : 8 + n]).items():
            if k == "__metadata__":
                continue
            b, e = v["data_offsets"]
            buf = bytearray(raw[8 + n + b : 8 + n + e])
            dt = dtypes[v["dtype"]]
            t = (torch.frombuffer(buf, dtype=torch.int16).view(torch.bfloat16)
                 if dt == torch.bfloat16 else torch.frombuffer(buf, dtype=dt))
            out[k] = t.reshape(v["shape"])
    return out


def load_helpers(src):
    """compressed-tensors' pack_quantized/helpers.py (imports torch and math only), loaded alone."""
    import importlib.util

    path = os.path.join(src, "src", "compressed_tensors", "compressors", "pack_quantized", "helpers.py")
    spec = importlib.util.spec_from_file_location("ct_pack_helpers", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def check_layout(ct_dir, ref_dir, helpers):
    """The layout check of the docstring, with the library's own packing helpers."""
    import torch

    config = json.load(open(os.path.join(ct_dir, "config.json")))
    bits = config["quantization_config"]["config_groups"]["group_0"]["weights"]["num_bits"]
    ct = read_tensors(ct_dir)
    ref = read_tensors(ref_dir) if ref_dir else None
    ref_qc = json.load(open(os.path.join(ref_dir, "config.json")))["quantization_config"] if ref_dir else None
    off = 1 << (bits - 1)
    bad, n = [], 0
    for k in sorted(ct):
        if not k.endswith(".weight_packed"):
            continue
        lin = k[: -len(".weight_packed")]
        n += 1
        shape = torch.Size(ct[lin + ".weight_shape"].tolist())
        s = ct[lin + ".weight_scale"]
        q = helpers.unpack_from_int32(ct[k], bits, shape)  # signed: code - 2^(b-1)
        zk = lin + ".weight_zero_point"
        z = (helpers.unpack_from_int32(ct[zk], bits, torch.Size((shape[0], s.shape[1])), packed_dim=0)
             if zk in ct else torch.zeros(shape[0], s.shape[1], dtype=torch.int8))
        g = (ct[lin + ".weight_g_idx"].long() if lin + ".weight_g_idx" in ct
             else torch.arange(shape[1]) // (shape[1] // s.shape[1]))
        if not torch.equal(helpers.pack_to_int32(q, bits), ct[k]):
            bad.append(f"{lin}: weight_packed does not repack")
        if zk in ct and not torch.equal(helpers.pack_to_int32(z, bits, packed_dim=0), ct[zk]):
            bad.append(f"{lin}: weight_zero_point does not repack")
        if ref is not None:
            w = (q.to(s.dtype) - z[:, g].to(s.dtype)) * s[:, g]
            if not torch.equal(w, reference_weight(ref, ref_qc, lin, s.dtype)):
                bad.append(f"{lin}: differs from the reference")
    record(ct_dir, "layout", not bad and n > 0, f"{n} modules, {bits}-bit, codes offset {off}"
           + (", equal to the reference" if ref is not None and not bad else "")
           + (f"; {bad[:4]}" if bad else ""))


def unpack_stream(words, bits, count):
    """REFERENCE.md 3.2: words int32 [R, W] hold an LSB-first bit stream of `count` values per row."""
    import torch

    r = words.shape[0]
    bitpos = torch.arange(32, dtype=torch.int64)
    stream = ((words.to(torch.int64).unsqueeze(-1) >> bitpos) & 1).reshape(r, -1)
    stream = stream[:, : count * bits].reshape(r, count, bits)
    return (stream << torch.arange(bits, dtype=torch.int64)).sum(-1)


def reference_weight(ref, qc, linear, sdtype):
    """(q - z) * s of `linear` in an AWQ GEMM or GPTQ v1/v2 checkpoint, in dtype `sdtype`."""
    import torch

    method = qc["quant_method"]
    bits = qc.get("bits", qc.get("w_bit", 4))
    qw, qz, sc = ref[linear + ".qweight"], ref[linear + ".qzeros"], ref[linear + ".scales"]
    if method == "awq":  # 3.1: [K, N/8], nibble i of word c = column 8c + order[i]
        order = torch.tensor([0, 2, 4, 6, 1, 3, 5, 7])
        k, n = qw.shape[0], qw.shape[1] * 8

        def cols(words):
            nib = unpack_stream(words, 4, words.shape[1] * 8).reshape(words.shape[0], -1, 8)
            out = torch.empty_like(nib)
            out[:, :, order] = nib
            return out.reshape(words.shape[0], -1)

        q, z = cols(qw), cols(qz)  # [K, N], [K/G, N]
        g = torch.arange(k) // (k // z.shape[0])
    else:  # 3.2: qweight [K*b/32, N] along K; qzeros [groups, N*b/32] along N
        n = qw.shape[1]
        g = ref[linear + ".g_idx"].to(torch.int64)
        k = g.numel()
        q = unpack_stream(qw.t().contiguous(), bits, k).t()  # [K, N]
        z = unpack_stream(qz, bits, n)
        if qc.get("checkpoint_format", "gptq") == "gptq":
            z = (z + 1) & ((1 << bits) - 1)
    qk = q.t()  # [N, K]
    zk = z[g].t()
    sk = sc[g].t().to(sdtype)
    return (qk.to(sdtype) - zk.to(sdtype)) * sk


# --- the library's compressor, old (instance) and new (classmethod) interfaces -----------------


class Compressor:
    def __init__(self, ct, scheme):
        from compressed_tensors.compressors import PackedQuantizationCompressor as P

        self.scheme = scheme
        self.legacy = hasattr(P, "decompress_weight")
        self.impl = P() if self.legacy else P

    def param_names(self):
        if not self.legacy:
            return tuple(self.impl.compression_param_names(self.scheme))
        # The instance interface lists every name the format may use; the scheme decides.
        names = self.impl.compression_param_names
        names = names() if callable(names) else names
        w = self.scheme.weights
        drop = set()
        if w.symmetric:
            drop.add("weight_zero_point")
        if getattr(w.actorder, "value", w.actorder) != "group":
            drop.add("weight_g_idx")
        return tuple(n for n in names if n not in drop)

    def decompress(self, sd):
        """-> (weight, unpacked zero point or None)."""
        if self.legacy:
            data = dict(sd)
            w = self.impl.decompress_weight(data, self.scheme.weights)
            zp = data.get("weight_zero_point")
            return w, (zp.data if zp is not None and "weight_zero_point" in sd else None)
        out = self.impl.decompress(dict(sd), self.scheme)
        return out["weight"], (out.get("weight_zero_point") if "weight_zero_point" in sd else None)

    def compress(self, weight, sd, zp):
        if self.legacy:
            out = self.impl.compress_weight(
                weight=weight,
                scale=sd["weight_scale"],
                quantization_args=self.scheme.weights,
                zero_point=zp,
                g_idx=sd.get("weight_g_idx"),
            )
            out["weight_scale"] = sd["weight_scale"]
            if "weight_g_idx" in sd:
                out["weight_g_idx"] = sd["weight_g_idx"]
            return out
        state = {"weight": weight, "weight_scale": sd["weight_scale"]}
        if zp is not None:
            state["weight_zero_point"] = zp
        if "weight_g_idx" in sd:
            state["weight_g_idx"] = sd["weight_g_idx"]
        return self.impl.compress(state, self.scheme)


# --- the checks --------------------------------------------------------------------------------


def meta_model(ct_dir):
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    cfg = AutoConfig.from_pretrained(ct_dir)
    if hasattr(cfg, "quantization_config"):
        delattr(cfg, "quantization_config")
    with torch.device("meta"):
        return AutoModelForCausalLM.from_config(cfg), cfg


def check_dir(ct_dir, ref_dir, args, ct):
    import torch
    from compressed_tensors.quantization import QuantizationConfig

    print(f"{ct_dir}" + (f" (reference {ref_dir})" if ref_dir else ""), flush=True)
    config = json.load(open(os.path.join(ct_dir, "config.json")))
    qc = config["quantization_config"]
    try:
        parse = getattr(QuantizationConfig, "model_validate", None) or QuantizationConfig.parse_obj
        qconf = parse(qc)
        groups = list(qconf.config_groups.values())
        ok = qconf.format == "pack-quantized" and len(groups) == 1
        status = getattr(qconf.quantization_status, "value", qconf.quantization_status)
        ok = ok and status == "compressed"
        scheme = groups[0]
        record(ct_dir, "config", ok, f"targets {scheme.targets}, weights {scheme.weights}, "
               f"ignore {len(qconf.ignore or [])} entries")
    except Exception as e:  # pydantic's message is the finding
        record(ct_dir, "config", False, f"{type(e).__name__}: {e}")
        return
    comp = Compressor(ct, scheme)
    tensors = read_tensors(ct_dir)
    packed = sorted(k[: -len(".weight_packed")] for k in tensors if k.endswith(".weight_packed"))

    # modules: the library's selection on transformers' module tree
    try:
        from compressed_tensors.utils.match import match_named_modules

        model, cfg = meta_model(ct_dir)
        targets = scheme.targets
        chosen = {n for n, _ in match_named_modules(model, targets, qconf.ignore or [])}
        linears = {n for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)}
        head = model.get_output_embeddings()
        tied_head = {n for n, m in model.named_modules() if m is head} if getattr(
            cfg, "tie_word_embeddings", False) else set()
        need = comp.param_names()
        bad = []
        for n in sorted(chosen):
            missing = [p for p in need if f"{n}.{p}" not in tensors]
            if missing or f"{n}.weight" in tensors:
                bad.append(f"{n}: missing {missing}" if missing else f"{n}: stores .weight")
        for n in sorted(linears - chosen):
            if f"{n}.weight" not in tensors and n not in tied_head:
                bad.append(f"{n}: float Linear without .weight")
        in_tree = {n for n, _ in model.named_modules()}
        leftover = sorted(set(packed) - chosen)
        bad += [f"{n}: packed but not selected by targets/ignore" for n in leftover if n in in_tree]
        # transformers 5 fuses some modules at load time (MoE experts): their checkpoint names
        # are not in the tree; whether the load maps them is the load check's finding.
        absent = [n for n in leftover if n not in in_tree]
        record(ct_dir, "modules", not bad,
               f"{len(chosen)} selected, {len(linears)} Linear, {len(packed)} packed"
               + (f", {len(absent)} packed modules not in the tree (e.g. {absent[0]})" if absent else "")
               + (f"; {len(bad)} problems: {bad[:6]}" if bad else ""))
    except ImportError as e:
        record(ct_dir, "modules", None, f"transformers missing ({e})")

    # decompress / recompress
    ref = read_tensors(ref_dir) if ref_dir else None
    ref_qc = json.load(open(os.path.join(ref_dir, "config.json")))["quantization_config"] if ref_dir else None
    dec_bad, rec_bad, equal, decompressed = [], [], 0, {}
    for n in packed:
        sd = {p: tensors[f"{n}.{p}"] for p in comp.param_names() if f"{n}.{p}" in tensors}
        try:
            w, zp = comp.decompress(sd)
        except Exception as e:
            dec_bad.append(f"{n}: {type(e).__name__}: {e}")
            continue
        shape = tuple(sd["weight_shape"].tolist())
        if tuple(w.shape) != shape or w.dtype != sd["weight_scale"].dtype:
            dec_bad.append(f"{n}: {tuple(w.shape)} {w.dtype}, expected {shape} {sd['weight_scale'].dtype}")
        decompressed[n] = w
        if ref is not None:
            want = reference_weight(ref, ref_qc, n, w.dtype)
            if torch.equal(w, want):
                equal += 1
            else:
                d = (w.float() - want.float()).abs().max().item()
                dec_bad.append(f"{n}: differs from the reference (max |diff| {d:.3g})")
        try:
            # From the decompression in float32 (exact): a bf16 product (q - z)·s can round an
            # 8-bit code by one, so re-quantizing the bf16 weight would test bf16, not the layout.
            w32, zp = comp.decompress(dict(sd, weight_scale=sd["weight_scale"].float()))
            again = comp.compress(w32, sd, zp)
            for p, t in sd.items():
                if p not in again:
                    rec_bad.append(f"{n}.{p}: not produced")
                elif again[p].dtype != t.dtype or not torch.equal(again[p].to(t.device), t):
                    rec_bad.append(f"{n}.{p}: {again[p].dtype} differs from stored {t.dtype}")
        except Exception as e:
            rec_bad.append(f"{n}: {type(e).__name__}: {e}")
    detail = f"{len(packed)} modules" + (f", {equal} equal to the reference" if ref else "")
    record(ct_dir, "decompress", not dec_bad, detail + (f"; {dec_bad[:4]}" if dec_bad else ""))
    record(ct_dir, "recompress", not rec_bad,
           f"{len(packed)} modules" + (f"; {rec_bad[:4]}" if rec_bad else ", every tensor bit for bit"))

    if args.no_load:
        record(ct_dir, "load", None, "--no-load")
        return
    try:
        from transformers import AutoModelForCausalLM
    except ImportError as e:
        record(ct_dir, "load", None, f"transformers missing ({e})")
        return
    dtype = {"bfloat16": torch.bfloat16, "float16": torch.float16}.get(
        config.get("torch_dtype", config.get("dtype")), torch.float32)
    try:
        model = AutoModelForCausalLM.from_pretrained(ct_dir, dtype=dtype).to(args.device).eval()
        gen = torch.Generator().manual_seed(0)
        ids = torch.randint(3, min(model.config.vocab_size, 97), (1, 64), generator=gen).to(args.device)
        with torch.no_grad():
            logits = model(ids).logits.float()
        problems = [] if torch.isfinite(logits).all() else ["non-finite logits"]
        same, outside = 0, []
        for n, w in decompressed.items():
            try:
                mod = model.get_submodule(n)
            except AttributeError:  # fused at load time (transformers 5 MoE experts)
                outside.append(n)
                continue
            got = getattr(mod, "weight", None)
            if got is None or got.device.type == "meta":
                problems.append(f"{n}: no dense weight after the forward")
            elif torch.equal(got.detach().cpu().to(w.dtype), w):
                same += 1
            else:
                problems.append(f"{n}: weight {got.dtype} differs from the library's decompression")
        detail = f"{type(model).__name__} {dtype}, {same}/{len(decompressed)} module weights equal"
        if outside:
            detail += f", {len(outside)} packed modules not in the loaded tree (e.g. {outside[0]})"
        fp_dir = fp_model_dir(ct_dir) if args.fp else None
        if fp_dir and outside:
            detail += ", no logits comparison (the fp model cannot take those weights by name)"
        elif fp_dir:
            fp = AutoModelForCausalLM.from_pretrained(fp_dir, dtype=dtype).to(args.device).eval()
            with torch.no_grad():
                for n, w in decompressed.items():
                    fp.get_submodule(n).weight.copy_(w.to(dtype))
                ref_logits = fp(ids).logits.float()
            diff = (logits - ref_logits).abs().max().item()
            detail += f", logits vs fp model with these weights max |diff| {diff:.3g}"
            if diff > 1e-3 * max(1.0, ref_logits.abs().max().item()):
                problems.append(f"logits differ by {diff:.3g}")
        if args.text and os.path.exists(os.path.join(ct_dir, "tokenizer_config.json")):
            detail += ", " + perplexities(ct_dir, model, fp_dir, args)
        record(ct_dir, "load", not problems, detail + (f"; {problems[:4]}" if problems else ""))
    except Exception as e:
        record(ct_dir, "load", False, f"{type(e).__name__}: {e}")


def fp_model_dir(ct_dir):
    return json.load(open(os.path.join(ct_dir, "shardquant_summary.json")))["model_path"]


def perplexities(ct_dir, model, fp_dir, args):
    import math

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(ct_dir)
    ids = tok(open(args.text).read()[:200000], return_tensors="pt").input_ids[0][: 16 * 256]

    def ppl(m):
        nll, n = 0.0, 0
        with torch.no_grad():
            for i in range(0, ids.numel() - 1, 256):
                x = ids[i : i + 256].unsqueeze(0).to(args.device)
                if x.numel() < 2:
                    break
                out = m(x, labels=x)
                nll += out.loss.item() * (x.numel() - 1)
                n += x.numel() - 1
        return math.exp(nll / n)

    text = f"ppl {ppl(model):.3f}"
    if fp_dir:
        fp = AutoModelForCausalLM.from_pretrained(fp_dir, dtype=model.dtype).to(args.device).eval()
        text += f" (fp model {ppl(fp):.3f})"
    return text + f" on {ids.numel()} tokens of {os.path.basename(args.text)}"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dirs", nargs="+", metavar="CT_DIR[=REF_DIR]")
    ap.add_argument("--ct-src")
    ap.add_argument("--fp", action="store_true")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--text")
    ap.add_argument("--no-load", action="store_true")
    ap.add_argument("--layout-only", action="store_true")
    ap.add_argument("--json")
    args = ap.parse_args()
    try:
        import torch
    except ImportError as e:
        print(f"missing package: {e}", file=sys.stderr)
        return 2
    if args.layout_only:
        if not args.ct_src:
            print("--layout-only needs --ct-src", file=sys.stderr)
            return 2
        print(f"versions {{'torch': '{torch.__version__}'}}; compressed-tensors helpers.py of "
              f"{args.ct_src}", flush=True)
        helpers = load_helpers(args.ct_src)
        for spec in args.dirs:
            ct_dir, _, ref_dir = spec.partition("=")
            print(ct_dir + (f" (reference {ref_dir})" if ref_dir else ""), flush=True)
            check_layout(ct_dir, ref_dir or None, helpers)
        return finish(args, {"torch": torch.__version__, "compressed_tensors": "helpers.py"})
    try:
        ct, how = import_compressed_tensors(args.ct_src)
    except ImportError as e:
        print(f"missing package: {e}", file=sys.stderr)
        return 2
    versions = {"torch": torch.__version__, "compressed_tensors": getattr(ct, "__version__", "?")}
    try:
        import transformers

        versions["transformers"] = transformers.__version__
    except ImportError:
        versions["transformers"] = None
    print(f"versions {versions}; compressed-tensors {how}", flush=True)
    helpers = load_helpers(args.ct_src) if args.ct_src else None
    for spec in args.dirs:
        ct_dir, _, ref_dir = spec.partition("=")
        try:
            if helpers:
                check_layout(ct_dir, ref_dir or None, helpers)
            check_dir(ct_dir, ref_dir or None, args, ct)
        except Exception as e:
            record(ct_dir, "oracle", False, f"{type(e).__name__}: {e}")
    return finish(args, versions)


def finish(args, versions):
    failed = sum(r["status"] == "FAIL" for r in RESULTS)
    print(f"{len(RESULTS)} checks, {failed} failed, "
          f"{sum(r['status'] == 'SKIP' for r in RESULTS)} skipped")
    if args.json:
        json.dump({"versions": versions, "results": RESULTS}, open(args.json, "w"), indent=1)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
