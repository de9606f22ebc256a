#!/usr/bin/env python3
"""Renders bench/quality.sh results as the "## Quality" section of bench/NOTES.md.

usage: quality_table.py RESULTS.jsonl NOTES.md|- "header line"

The reference numbers are REFERENCE.md §7 (house-llama-13m, brown-test / pydoc-test). A cell
passes when each perplexity is at most 0.2 % above its reference row (issue 5 point 8).
Only the "## Quality" section is replaced (up to the next "## " heading); the rest of the file
is left as it was.
"""
import datetime
import json
import sys

# cell -> (label, reference row label, (brown, pydoc) or None)
REFERENCE = {
    "fp16": ("fp16", "fp16", (109.80, 37.10)),
    "rtn-w4": ("RTN w4 g128 (zero point)", "RTN", (111.82, 37.49)),
    "rtn-w3": ("RTN w3 g128 (zero point)", "RTN", (118.73, 39.86)),
    "awq-w4": ("AWQ w4 g128", "llm-awq", (111.17, 37.30)),
    "awq-w3": ("AWQ w3 g128 (fake-quant tool)", "llm-awq", (115.82, 39.17)),
    "gptq-w4": ("GPTQ asym w4 g128", "IST gptq", (110.89, 37.42)),
    "gptq-w3": ("GPTQ asym w3 g128", "IST gptq", (114.81, 39.07)),
    "gptq-act-w4": ("GPTQ asym w4 g128 act order", "IST gptq + act order", (110.77, 37.56)),
    "gptq-act-w3": ("GPTQ asym w3 g128 act order", "IST gptq + act order", (114.97, 39.23)),
    # shardquant's opt-in knobs, against the same reference rows
    "awq-gptq-w4": ("AWQ w4 g128, `--awq-rounding gptq`", "llm-awq", (111.17, 37.30)),
    "awq-gptq-w3": ("AWQ w3 g128, `--awq-rounding gptq` (fake-quant tool)", "llm-awq",
                    (115.82, 39.17)),
    "gptq-mse-w4": ("GPTQ asym w4 g128, `--mse 2.4`", "IST gptq", (110.89, 37.42)),
    "gptq-mse-w3": ("GPTQ asym w3 g128, `--mse 2.4`", "IST gptq", (114.81, 39.07)),
    "gptq-act-mse-w4": ("GPTQ asym w4 g128 act order, `--mse 2.4`", "IST gptq + act order",
                        (110.77, 37.56)),
    "gptq-act-mse-w3": ("GPTQ asym w3 g128 act order, `--mse 2.4`", "IST gptq + act order",
                        (114.97, 39.23)),
}
TOLERANCE_PCT = 0.2


def fmt_cell(result, test, ref):
    r = result.get(test)
    if r is None:
        return "failed", "", None
    ppl = r["ppl"]
    delta = (ppl - ref) / ref * 100.0
    return f"{ppl:.2f}", f"{ref:.2f}", delta


def render(results, header):
    today = datetime.date.today().isoformat()
    lines = [
        "## Quality",
        "",
        "`bench/quality.sh` (issue 5 point 8): house-llama-13m, perplexity on brown-test /",
        "pydoc-test with the protocol of REFERENCE.md §7, against the reference implementations'",
        f"numbers; a cell passes when both perplexities are at most {TOLERANCE_PCT} % above the",
        "reference. RTN and AWQ w3 come from the fake-quantizing test tool `sq_quality_quant`;",
        "every other quantized cell is a packed checkpoint read back by `shardquant eval`.",
        "",
        f"Run {today}: {header}",
        "",
        "| cell | brown ours | brown ref | Δ % | pydoc ours | pydoc ref | Δ % | quantize s | verdict |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    windows_note = set()
    for res in results:
        cell = res["cell"]
        label, _, refs = REFERENCE.get(cell, (cell, "", None))
        if "error" in res or refs is None:
            lines.append(f"| {label} | {res.get('error', 'no reference')} | | | | | | | |")
            continue
        row = [label]
        ok = True
        for test, ref in zip(("brown", "pydoc"), refs):
            ours, refs_s, delta = fmt_cell(res, test, ref)
            row += [ours, refs_s, "" if delta is None else f"{delta:+.2f}"]
            ok = ok and delta is not None and delta <= TOLERANCE_PCT
            if test in res:
                windows_note.add((res[test].get("windows"), res[test].get("seq_len"),
                                  res[test].get("device"), res[test].get("dtype")))
        row.append(str(res.get("quantize_seconds", "")))
        row.append("pass" if ok else "**worse**")
        lines.append("| " + " | ".join(row) + " |")
    lines.append("")
    for w, t, d, dt in sorted(windows_note, key=str):
        lines.append(f"Eval: {w} windows of {t} tokens on {d} ({dt}).")
    lines.append("")
    return "\n".join(lines)


def replace_section(text, section):
    start = text.find("\n## Quality\n")
    if text.startswith("## Quality\n"):
        start = -1
        head = ""
        rest = text[len("## Quality\n"):]
    elif start < 0:
        return text.rstrip("\n") + "\n\n" + section
    else:
        head = text[: start + 1]
        rest = text[start + len("\n## Quality\n"):]
    nxt = rest.find("\n## ")
    tail = "" if nxt < 0 else rest[nxt + 1:]
    return head + section + ("\n" + tail if tail else "")


def main():
    results_path, notes_path, header = sys.argv[1], sys.argv[2], sys.argv[3]
    with open(results_path) as f:
        results = [json.loads(line) for line in f if line.strip()]
    section = render(results, header)
    print(section)
    if notes_path == "-":
        return
    try:
        with open(notes_path) as f:
            text = f.read()
    except FileNotFoundError:
        text = ""
    with open(notes_path, "w") as f:
        f.write(replace_section(text, section))


if __name__ == "__main__":
    main()
