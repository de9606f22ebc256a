#!/usr/bin/env python3
"""An independent AWQ for the quality bar's AWQ row (issue 5): llm-awq's procedure as its
paper and code describe it, written here in plain PyTorch for Llama-shaped models (no
transformers, no shardquant code), so a difference between shardquant's AWQ cell and the
reference number can be told apart into "our implementation" and "the calibration draw".

Procedure (llm-awq `run_awq` semantics, everything in the model's fp16 on the GPU):
  per block, on the FP block's inputs (FP propagation):
    1. one forward records each linear's input; its output is the next block's input.
    2. scale search per group (input norm -> q,k,v inspected on the attention output; post-attn
       norm -> gate,up inspected on the MLP output; up -> down inspected on down's output;
       v -> o only when v and o have the same shape): s = mean|x|^ratio, ratio = i/n_grid,
       s /= sqrt(max(s) min(s)); loss = mean squared difference of the inspected output with
       the group's linears replaced by Q(W s)/s; the smallest loss wins (first on ties).
    3. the chosen scales are folded into the previous op and the linears; recorded inputs / s.
    4. clip search per linear except q and k: 512 tokens (every n/512-th), max |W| of each
       group times (1 - i/20), i < 10, loss = mean over tokens of the squared group output
       error; the first strictly smaller loss wins.
  then every linear is replaced by its pseudo-quantized weight (zero point, g128) and the model
  is evaluated: non-overlapping 512-token windows, mean NLL of every predicted token, fp16.

Inputs: the model directory, calibration ids written by `sq_quality_quant calib` (exactly
shardquant's windows for a seed) and test ids from `shardquant tokenize --no-special --file`.
Prints one line per run: `PEER seed=<s> variant=<v> brown <ppl> pydoc <ppl>` and, with
--alphas, the chosen ratio of every group (compare with shardquant_summary.json's notes).
"""
import argparse
import glob
import json
import math
import os
import struct
import time

import torch
import torch.nn.functional as F

DT = {"BF16": torch.bfloat16, "F16": torch.float16, "F32": torch.float32}


def load_safetensors(model_dir):
    out = {}
    for path in sorted(glob.glob(os.path.join(model_dir, "*.safetensors"))):
        with open(path, "rb") as f:
            data = f.read()
        n = struct.unpack("<Q", data[:8])[0]
        header = json.loads(data[8:8 + n])
        base = 8 + n
        for name, info in header.items():
            if name == "__metadata__":
                continue
            a, b = info["data_offsets"]
            buf = bytearray(data[base + a:base + b])
            t = torch.frombuffer(buf, dtype=DT[info["dtype"]]).reshape(info["shape"])
            out[name] = t.clone()
    return out


def rmsnorm(x, w, eps):
    xf = x.float()
    xf = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps)
    return w * xf.to(x.dtype)


class Llama:
    """A Llama decoder as plain tensors (so the AWQ steps can edit the weights in place)."""

    def __init__(self, model_dir, device, dtype):
        cfg = json.load(open(os.path.join(model_dir, "config.json")))
        self.cfg = cfg
        sd = load_safetensors(model_dir)
        self.w = {k: v.to(device=device, dtype=dtype) for k, v in sd.items()}
        self.H = cfg["hidden_size"]
        self.nh = cfg["num_attention_heads"]
        self.nkv = cfg.get("num_key_value_heads", self.nh)
        self.hd = cfg.get("head_dim") or self.H // self.nh
        self.eps = cfg["rms_norm_eps"]
        rp = cfg.get("rope_parameters") or {}
        self.theta = rp.get("rope_theta", cfg.get("rope_theta", 10000.0))
        self.L = cfg["num_hidden_layers"]
        self.device, self.dtype = device, dtype
        if "lm_head.weight" not in self.w:
            self.w["lm_head.weight"] = self.w["model.embed_tokens.weight"]
        self._rope = {}

    def p(self, i, name):
        return self.w[f"model.layers.{i}.{name}"]

    def rope(self, T):
        if T not in self._rope:
            inv = 1.0 / (self.theta ** (torch.arange(0, self.hd, 2, device=self.device,
                                                     dtype=torch.float32) / self.hd))
            f = torch.outer(torch.arange(T, device=self.device, dtype=torch.float32), inv)
            emb = torch.cat([f, f], dim=-1)
            self._rope[T] = (emb.cos().to(self.dtype), emb.sin().to(self.dtype))
        return self._rope[T]

    def attn(self, i, x, taps=None):
        B, T, _ = x.shape
        q = F.linear(x, self.p(i, "self_attn.q_proj.weight"))
        k = F.linear(x, self.p(i, "self_attn.k_proj.weight"))
        v = F.linear(x, self.p(i, "self_attn.v_proj.weight"))
        q = q.view(B, T, self.nh, self.hd).transpose(1, 2)
        k = k.view(B, T, self.nkv, self.hd).transpose(1, 2)
        v = v.view(B, T, self.nkv, self.hd).transpose(1, 2)
        cos, sin = self.rope(T)

        def rot(t):
            h = t.shape[-1] // 2
            return torch.cat([-t[..., h:], t[..., :h]], dim=-1)

        q = q * cos + rot(q) * sin
        k = k * cos + rot(k) * sin
        rep = self.nh // self.nkv
        k = k.repeat_interleave(rep, dim=1)
        v = v.repeat_interleave(rep, dim=1)
        o = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        o = o.transpose(1, 2).reshape(B, T, self.nh * self.hd)
        if taps is not None:
            taps["self_attn.o_proj"] = o
        return F.linear(o, self.p(i, "self_attn.o_proj.weight"))

    def mlp(self, i, x, taps=None):
        h = F.silu(F.linear(x, self.p(i, "mlp.gate_proj.weight"))) * F.linear(
            x, self.p(i, "mlp.up_proj.weight"))
        if taps is not None:
            taps["mlp.down_proj"] = h
        return F.linear(h, self.p(i, "mlp.down_proj.weight"))

    def block(self, i, h, taps=None):
        x = rmsnorm(h, self.p(i, "input_layernorm.weight"), self.eps)
        if taps is not None:
            for n in ("q_proj", "k_proj", "v_proj"):
                taps["self_attn." + n] = x
        h = h + self.attn(i, x, taps)
        x = rmsnorm(h, self.p(i, "post_attention_layernorm.weight"), self.eps)
        if taps is not None:
            taps["mlp.gate_proj"] = x
            taps["mlp.up_proj"] = x
        return h + self.mlp(i, x, taps)

    def embed(self, ids):
        return F.embedding(ids, self.w["model.embed_tokens.weight"])

    @torch.no_grad()
    def perplexity(self, ids, win=512, batch=32):
        n = ids.numel() // win
        x = ids[: n * win].view(n, win).to(self.device)
        nll, cnt = 0.0, 0
        for b in range(0, n, batch):
            t = x[b:b + batch]
            h = self.embed(t)
            for i in range(self.L):
                h = self.block(i, h)
            h = rmsnorm(h, self.w["model.norm.weight"], self.eps)
            logits = F.linear(h, self.w["lm_head.weight"]).float()
            loss = F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]),
                                   t[:, 1:].reshape(-1), reduction="sum")
            nll += loss.item()
            cnt += t[:, 1:].numel()
        return math.exp(nll / cnt)


def pseudo_quantize(w, bits, group):
    """Zero-point round-to-nearest on groups of `group` input columns, in w's dtype."""
    shape = w.shape
    w = w.reshape(-1, group)
    mx = w.amax(dim=1, keepdim=True)
    mn = w.amin(dim=1, keepdim=True)
    qmax = 2 ** bits - 1
    s = (mx - mn).clamp(min=1e-5) / qmax
    z = (-torch.round(mn / s)).clamp_(0, qmax)
    w = (torch.clamp(torch.round(w / s) + z, 0, qmax) - z) * s
    return w.reshape(shape)


def search_scale(model, i, names, x, inspect, args):
    """Grid search of one scaling group; returns (scales, ratio, loss)."""
    keys = [f"model.layers.{i}.{n}.weight" for n in names]
    orig = {k: model.w[k].clone() for k in keys}
    x_max = x.abs().view(-1, x.shape[-1]).mean(0)
    ref = inspect(x)
    best, best_s, best_r = float("inf"), None, None
    for r in range(args.n_grid):
        ratio = r / args.n_grid
        s = x_max.pow(ratio).clamp(min=1e-4).view(-1)
        s = s / (s.max() * s.min()).sqrt()
        for k in keys:
            model.w[k] = pseudo_quantize(orig[k] * s.view(1, -1), args.bits, args.group) / s.view(1, -1)
        out = inspect(x)
        loss = (ref - out).float().pow(2).mean().item()
        if loss < best:
            best, best_s, best_r = loss, s.clone(), ratio
    for k in keys:
        model.w[k] = orig[k]
    return best_s, best_r, best


def clip_search(w, x, args):
    """Per group max |W| shrink search; returns the clip bound [co, 1, n_group, 1]."""
    g = args.group
    x = x.reshape(-1, x.shape[-1])
    x = x.reshape(1, x.shape[0], -1, g)
    x = x[:, 0::max(1, x.shape[1] // args.clip_tokens)]
    w = w.reshape(w.shape[0], 1, -1, g)
    bs = 256 if w.shape[0] % 256 == 0 else 64
    outs = []
    for b in range(0, w.shape[0], bs):
        wb = w[b:b + bs]
        org_max = wb.abs().amax(dim=-1, keepdim=True)
        best_max = org_max.clone()
        min_err = torch.full_like(org_max, float("inf"), dtype=torch.float32 if args.clip_err_fp32 else wb.dtype)
        ref = (x * wb).sum(dim=-1)
        for k in range(int(0.5 * 20)):
            mx = org_max * (1 - k / 20)
            q = pseudo_quantize(torch.clamp(wb, -mx, mx), args.bits, g)
            out = (x * q).sum(dim=-1)
            d = out - ref
            if args.clip_err_fp32:
                d = d.float()
            err = d.pow(2).mean(dim=1).view(min_err.shape)
            better = err < min_err
            min_err[better] = err[better].to(min_err.dtype)
            best_max[better] = mx[better]
        outs.append(best_max)
    return torch.cat(outs, dim=0)


def gptq_quantize(w, x, bits, group, damp=0.01, block=128, mse=0.0):
    """GPTQ rounding (lazy 128-column blocks, zero point, groups in column order, the GPTQ
    quantizer's range that always holds 0) of w [out, in] against inputs x [..., in]; float32;
    returns the dequantized weight in w's dtype."""
    W = w.float().clone()
    X = x.reshape(-1, x.shape[-1]).float()
    H = X.T @ X * (2.0 / X.shape[0])
    dead = torch.diag(H) == 0
    H[dead, dead] = 1
    W[:, dead] = 0
    H += damp * torch.mean(torch.diag(H)) * torch.eye(H.shape[0], device=H.device)
    Hinv = torch.linalg.cholesky(torch.cholesky_inverse(torch.linalg.cholesky(H)), upper=True)
    qmax = 2 ** bits - 1
    Q = torch.zeros_like(W)
    cols = W.shape[1]
    for i1 in range(0, cols, block):
        i2 = min(i1 + block, cols)
        W1 = W[:, i1:i2].clone()
        E1 = torch.zeros_like(W1)
        Hi = Hinv[i1:i2, i1:i2]
        for i in range(i2 - i1):
            c = i1 + i
            if c % group == 0:
                g = torch.cat([W1[:, i:], W[:, i2:]], dim=1)[:, :group]
                lo = torch.clamp(g.amin(dim=1), max=0)
                hi = torch.clamp(g.amax(dim=1), min=0)
                both0 = (lo == 0) & (hi == 0)
                lo[both0], hi[both0] = -1, 1
                sc = (hi - lo) / qmax
                z = torch.round(-lo / sc)
                if mse > 0:  # GPTQ's range search: shrink both ends by p, keep the best
                    best = torch.full_like(lo, float("inf"))
                    for k in range(80):
                        p = 1 - k / 100
                        l1, h1 = p * lo, p * hi
                        s1 = (h1 - l1) / qmax
                        z1 = torch.round(-l1 / s1)
                        q1 = (torch.clamp(torch.round(g / s1[:, None]) + z1[:, None], 0, qmax)
                              - z1[:, None]) * s1[:, None]
                        e = (q1 - g).abs().pow(mse).sum(1)
                        better = e < best
                        best[better], sc[better], z[better] = e[better], s1[better], z1[better]
            col = W1[:, i]
            q = (torch.clamp(torch.round(col / sc) + z, 0, qmax) - z) * sc
            Q[:, c] = q
            err = (col - q) / Hi[i, i]
            W1[:, i:] -= err.unsqueeze(1) @ Hi[i, i:].unsqueeze(0)
            E1[:, i] = err
        W[:, i2:] -= E1 @ Hinv[i1:i2, i2:]
    return Q.to(w.dtype)


@torch.no_grad()
def run_awq(model, calib, args, log):
    h = model.embed(calib)
    for i in range(model.L):
        taps = {}
        nxt = model.block(i, h, taps)
        feats = dict(taps)  # q/k/v (gate/up) share one tensor; scaling below makes new ones
        P = lambda n: f"model.layers.{i}.{n}"
        groups = [
            ("input_layernorm", ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"],
             feats["self_attn.q_proj"], lambda x: model.attn(i, x)),
        ]
        if model.p(i, "self_attn.v_proj.weight").shape == model.p(i, "self_attn.o_proj.weight").shape:
            groups.append(("self_attn.v_proj", ["self_attn.o_proj"], feats["self_attn.o_proj"],
                           lambda x: F.linear(x, model.p(i, "self_attn.o_proj.weight"))))
        groups += [
            ("post_attention_layernorm", ["mlp.gate_proj", "mlp.up_proj"], feats["mlp.gate_proj"],
             lambda x: model.mlp(i, x)),
            ("mlp.up_proj", ["mlp.down_proj"], feats["mlp.down_proj"],
             lambda x: F.linear(x, model.p(i, "mlp.down_proj.weight"))),
        ]
        found = []
        for prev, names, x, inspect in groups:
            s, r, loss = search_scale(model, i, names, x, inspect, args)
            found.append((prev, names, s))
            log.append(f"block {i} {prev}->{','.join(names)} ratio={r:.2f} loss={loss:.4g}")
        # Fold every group's scales (all were searched on the unscaled block, as llm-awq does).
        for prev, names, s in found:
            pw = P(prev + ".weight")
            if prev.endswith("norm"):
                model.w[pw] = model.w[pw] / s
            else:  # previous linear: its output rows
                model.w[pw] = model.w[pw] / s.view(-1, 1)
            for n in names:
                model.w[P(n + ".weight")] = model.w[P(n + ".weight")] * s.view(1, -1)
            for n in names:  # the clip search sees the scaled inputs
                feats[n] = feats[n] / s.view(1, -1)
        if not args.no_clip:
            for n in ("self_attn.v_proj", "self_attn.o_proj", "mlp.gate_proj", "mlp.up_proj",
                      "mlp.down_proj"):
                k = P(n + ".weight")
                mx = clip_search(model.w[k], feats[n], args)
                w = model.w[k]
                shp = w.shape
                w = w.reshape(shp[0], 1, -1, args.group)
                model.w[k] = torch.clamp(w, -mx, mx).reshape(shp)
        if args.rounding == "gptq":  # AWQ scales (and clip), then GPTQ rounding on scaled inputs
            for n in ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj",
                      "self_attn.o_proj", "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"):
                k = P(n + ".weight")
                model.w[k] = gptq_quantize(model.w[k], feats[n], args.bits, args.group,
                                           mse=args.gptq_mse)
        h = nxt
    if args.rounding == "gptq":
        return
    for i in range(model.L):
        for n in ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
                  "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"):
            k = f"model.layers.{i}.{n}.weight"
            model.w[k] = pseudo_quantize(model.w[k], args.bits, args.group)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--calib", nargs="*", default=[], help="calib_tokens.i64 files (one run each)")
    ap.add_argument("--test", nargs=2, required=True, metavar=("BROWN_IDS", "PYDOC_IDS"))
    ap.add_argument("--bits", type=int, default=4)
    ap.add_argument("--group", type=int, default=128)
    ap.add_argument("--n_grid", type=int, default=20)
    ap.add_argument("--clip_tokens", type=int, default=512)
    ap.add_argument("--no_clip", action="store_true")
    ap.add_argument("--clip_err_fp32", action="store_true",
                    help="clip errors in float32 (llm-awq computes them in the model's fp16)")
    ap.add_argument("--rounding", choices=["rtn", "gptq"], default="rtn",
                    help="final rounding of the scaled (and clipped) weights: AWQ's RTN or GPTQ")
    ap.add_argument("--gptq_mse", type=float, default=0.0,
                    help="with --rounding gptq: GPTQ's range search with this norm (0 = min/max)")
    ap.add_argument("--fp", action="store_true", help="also evaluate the unquantized model")
    ap.add_argument("--rtn", action="store_true", help="also evaluate plain RTN")
    ap.add_argument("--alphas", action="store_true")
    ap.add_argument("--variant", default="llmawq")
    ap.add_argument("--dtype", choices=["fp16", "fp32"], default="fp16",
                    help="model and search dtype (llm-awq: fp16)")
    args = ap.parse_args()
    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dtype = torch.float16 if args.dtype == "fp16" else torch.float32
    tests = [torch.tensor(json.load(open(p)), dtype=torch.long) for p in args.test]

    def evaluate(model):
        return [model.perplexity(t) for t in tests]

    if args.fp:
        b, p = evaluate(Llama(args.model, dev, dtype))
        print(f"PEER seed=- variant=fp16 brown {b:.2f} pydoc {p:.2f}", flush=True)
    if args.rtn:
        m = Llama(args.model, dev, dtype)
        for k in list(m.w):
            if k.startswith("model.layers.") and k.endswith("_proj.weight"):
                m.w[k] = pseudo_quantize(m.w[k], args.bits, args.group)
        b, p = evaluate(m)
        print(f"PEER seed=- variant=rtn-w{args.bits} brown {b:.2f} pydoc {p:.2f}", flush=True)
    for path in args.calib:
        meta = json.load(open(path.replace(".i64", ".json")))
        raw = open(path, "rb").read()
        calib = torch.frombuffer(bytearray(raw), dtype=torch.int64).view(meta["n"], meta["T"]).to(dev)
        m = Llama(args.model, dev, dtype)
        log = []
        t0 = time.time()
        run_awq(m, calib, args, log)
        dt = time.time() - t0
        b, p = evaluate(m)
        seed = meta["provenance"].get("seed")
        print(f"PEER seed={seed} variant={args.variant}-{args.dtype}-w{args.bits} brown {b:.2f} pydoc {p:.2f}"
              f"  ({dt:.1f} s)", flush=True)
        if args.alphas:
            for line in log:
                print("  " + line)


if __name__ == "__main__":
    main()
