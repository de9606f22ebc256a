#!/usr/bin/env python3
"""Writes the committed seed corpora of tests/fuzz (small files; fuzz.sh adds the shared folder's
real files at run time). Rerun after changing a seed: python3 tests/fuzz/make_seeds.py"""
import json, os, struct, sys

HERE = os.path.dirname(os.path.abspath(__file__))
SHARED = os.environ.get("SQ_SHARED_DIR", os.path.join(HERE, "..", "..", "..", "shared"))


def put(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def safetensors(tensors, meta=None):
    """tensors: [(name, dtype, shape, bytes)] in order."""
    header, off, blob = {}, 0, b""
    if meta:
        header["__metadata__"] = meta
    for name, dt, shape, data in tensors:
        header[name] = {"dtype": dt, "shape": shape, "data_offsets": [off, off + len(data)]}
        off += len(data)
        blob += data
    h = json.dumps(header, separators=(",", ":")).encode()
    return struct.pack("<Q", len(h)) + h + blob


def zeros(n):
    return bytes(n)


# --- safetensors --------------------------------------------------------------------------
put("safetensors", "two_tensors", safetensors([("a", "F32", [2, 2], zeros(16)),
                                               ("b", "BF16", [3], zeros(6))], {"format": "pt"}))
put("safetensors", "empty_tensor", safetensors([("e", "I64", [0, 4], b""), ("s", "U8", [], b"\x01")]))
put("safetensors", "all_dtypes", safetensors([(f"t{i}", d, [2], zeros(2 * s)) for i, (d, s) in enumerate(
    [("F64", 8), ("F32", 4), ("F16", 2), ("BF16", 2), ("I64", 8), ("I32", 4), ("I16", 2), ("I8", 1),
     ("U8", 1), ("BOOL", 1), ("F8_E4M3", 1), ("F8_E5M2", 1)])]))

# --- index (two shards a/b holding x/y, see fuzz_index.cpp) -------------------------------
put("index", "ab", json.dumps({"metadata": {"total_size": 32},
                               "weight_map": {"x": "a.safetensors", "y": "b.safetensors"}}))
put("index", "only_a", json.dumps({"weight_map": {"x": "a.safetensors"}}))

# --- config ---------------------------------------------------------------------------------
base = {"model_type": "llama", "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
        "num_key_value_heads": 2, "intermediate_size": 128, "vocab_size": 256, "rms_norm_eps": 1e-6,
        "torch_dtype": "bfloat16", "tie_word_embeddings": True}
put("config", "llama_v4", json.dumps(dict(base, rope_theta=500000.0,
                                          rope_scaling={"rope_type": "llama3", "factor": 8.0})))
put("config", "llama_v5", json.dumps(dict(base, rope_parameters={"rope_type": "default",
                                                                 "rope_theta": 10000.0})))
put("config", "gemma3", json.dumps(dict(base, model_type="gemma3_text", sliding_window=16,
                                        layer_types=["sliding_attention", "full_attention"],
                                        rope_parameters={"full_attention": {"rope_theta": 1e6},
                                                         "sliding_attention": {"rope_theta": 1e4}})))
put("config", "gpt2", json.dumps({"model_type": "gpt2", "n_embd": 64, "n_layer": 2, "n_head": 4,
                                  "vocab_size": 256, "n_inner": None, "rotary_pct": 0.5}))

# --- tokenizers -----------------------------------------------------------------------------
spm = {
    "added_tokens": [{"id": 0, "content": "<unk>", "special": True, "normalized": False},
                     {"id": 1, "content": "<s>", "special": True, "normalized": False},
                     {"id": 2, "content": "</s>", "special": True, "normalized": False},
                     {"id": 3, "content": "hello", "special": False, "normalized": True,
                      "single_word": True, "lstrip": True}],
    "normalizer": {"type": "Sequence", "normalizers": [
        {"type": "Prepend", "prepend": "\u2581"},
        {"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"}]},
    "pre_tokenizer": None,
    "post_processor": {"type": "TemplateProcessing",
                       "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}},
                                  {"Sequence": {"id": "A", "type_id": 0}}],
                       "pair": [{"Sequence": {"id": "A", "type_id": 0}},
                                {"Sequence": {"id": "B", "type_id": 1}}],
                       "special_tokens": {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]}}},
    "decoder": {"type": "Sequence", "decoders": [
        {"type": "Replace", "pattern": {"String": "\u2581"}, "content": " "},
        {"type": "ByteFallback"}, {"type": "Fuse"}, {"type": "Strip", "content": " ", "start": 1, "stop": 0}]},
    "model": {"type": "BPE", "dropout": None, "unk_token": "<unk>", "byte_fallback": True,
              "fuse_unk": True, "vocab": {}, "merges": []},
}
vocab = {"<unk>": 0, "<s>": 1, "</s>": 2}
for b in range(256):
    vocab[f"<0x{b:02X}>"] = len(vocab)
for ch in "\u2581abcdefghijklmnopqrstuvwxyz.,":
    vocab[ch] = len(vocab)
merges = []
for a, b in [("\u2581", "t"), ("h", "e"), ("\u2581t", "he"), ("a", "b"), ("ab", "c"), ("e", "r")]:
    merges.append(f"{a} {b}")
    vocab.setdefault(a + b, len(vocab))
spm["model"]["vocab"] = vocab
spm["model"]["merges"] = merges
with open(os.path.join(HERE, "data", "spm_like_tokenizer.json"), "w") as f:
    json.dump(spm, f, ensure_ascii=False)
put("tokenizer_load", "spm_like", json.dumps(spm, ensure_ascii=False))

# A byte-level tokenizer cut from the house model's: its added tokens, pre-tokenizer, decoder,
# the 256 byte symbols and the first merges whose parts and result are among those kept.
house = os.path.join(SHARED, "models", "house-llama-13m", "tokenizer.json")
if os.path.exists(house):
    h = json.load(open(house, encoding="utf-8"))
    v = h["model"]["vocab"]
    keep = {t: i for t, i in v.items() if i < 300 or len(t) == 1}
    ms = []
    for m in h["model"]["merges"]:
        a, b = m if isinstance(m, list) else m.split(" ")
        if a in keep and b in keep and (a + b) in keep:
            ms.append([a, b])
        if len(ms) >= 40:
            break
    h["model"]["vocab"] = keep
    h["model"]["merges"] = ms
    put("tokenizer_load", "house_cut", json.dumps(h, ensure_ascii=False))

# --- encode (first byte: tokenizer + add_special) --------------------------------------------
for i, t in enumerate([b"\x00The quick brown fox, 1234 times.\n  def f(x): return x",
                       b"\x81hello <s> the abc\xc3\xa9\xff end",
                       b"\x80<|begin_of_text|>caf\xc3\xa9 \xf0\x9f\x98\x80\t\r\n'll 'S"]):
    put("tokenizer_encode", f"t{i}", t)

# --- calibration text (first byte: 0 txt, 1 jsonl, 2 json) ----------------------------------
put("calib", "txt", b"\x00First line of text.\n\n  second line\r\nthird\n")
put("calib", "jsonl", b"\x01" + b'{"text": "a record"}\n{"text": "b \\u00e9"}\n\n{"text": ""}\n')
put("calib", "json", b"\x02" + b'{"text": "one", "meta": 1}\n')
put("calib", "brown", b"\x00The/at jury/nn ,/, ``/`` said/vbd ''/'' ./.\n")


# --- quantized (2-byte config length, config.json, model.safetensors) -----------------------
def quantized(cfg, tensors):
    c = json.dumps(cfg).encode()
    return struct.pack("<H", len(c)) + c + safetensors(tensors)


K, N, G = 64, 16, 32  # in_features, out_features, group size
awq = [("l.qweight", "I32", [K, N // 8], zeros(K * N // 2)),
       ("l.qzeros", "I32", [K // G, N // 8], zeros(K // G * N // 2)),
       ("l.scales", "F16", [K // G, N], b"\x00\x3c" * (K // G * N))]
put("quantized", "awq", quantized({"quantization_config": {"quant_method": "awq", "bits": 4,
                                                           "group_size": G, "version": "gemm"}}, awq))
gptq = [("l.qweight", "I32", [K // 8, N], zeros(K * N // 2)),
        ("l.qzeros", "I32", [K // G, N // 8], zeros(K // G * N // 2)),
        ("l.scales", "F16", [K // G, N], b"\x00\x3c" * (K // G * N)),
        ("l.g_idx", "I32", [K], b"".join(struct.pack("<i", k // G) for k in range(K)))]
put("quantized", "gptq", quantized({"quantization_config": {"quant_method": "gptq", "bits": 4,
                                                            "group_size": G, "sym": True}}, gptq))
put("quantized", "gptq_v2", quantized({"quantization_config": {"quant_method": "gptq", "bits": 4,
                                                               "group_size": G,
                                                               "checkpoint_format": "gptq_v2"}}, gptq))
ct = [("l.weight_packed", "I32", [N, K // 8], zeros(K * N // 2)),
      ("l.weight_scale", "BF16", [N, K // G], b"\x80\x3f" * (N * K // G)),
      ("l.weight_shape", "I64", [2], struct.pack("<qq", N, K))]
put("quantized", "compressed", quantized({"quantization_config": {
    "quant_method": "compressed-tensors", "format": "pack-quantized",
    "config_groups": {"group_0": {"targets": ["Linear"], "weights": {
        "num_bits": 4, "type": "int", "symmetric": True, "strategy": "group", "group_size": G}}}}}, ct))
print("seeds written under", os.path.join(HERE, "corpus"))
