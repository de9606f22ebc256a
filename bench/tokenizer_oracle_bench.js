// Oracle side of bench/tokenizer_bench.sh: Hugging Face tokenizers (Node binding) encodes a
// whole text file as ONE encode() call, then one call per line (sequential, no batch API, so the library runs it on a
// single thread), best of 3, without special tokens. Prints JSON like shardquant's --stats.
//   node tokenizer_oracle_bench.js TOKENIZER.json TEXT_FILE
const fs = require('fs');
const { Tokenizer } = require('tokenizers');

(async () => {
  const [tokPath, textPath] = process.argv.slice(2);
  const tok = Tokenizer.fromFile(tokPath);
  const text = fs.readFileSync(textPath, 'utf8');
  const bytes = Buffer.byteLength(text, 'utf8');
  let best = Infinity, n = 0;
  for (let rep = 0; rep < 3; ++rep) {
    const t0 = process.hrtime.bigint();
    const enc = await tok.encode(text, null, { addSpecialTokens: false });
    n = enc.getIds().length;
    best = Math.min(best, Number(process.hrtime.bigint() - t0) / 1e9);
  }
  console.error(JSON.stringify({ mode: 'file', bytes, tokens: n, seconds: best, mb_per_s: bytes / best / 1e6 }));
  // Per line: one awaited encode() per line (no newline), sequential.
  const lines = text.split('\n');
  best = Infinity;
  for (let rep = 0; rep < 3; ++rep) {
    const t0 = process.hrtime.bigint();
    n = 0;
    for (const l of lines) n += (await tok.encode(l, null, { addSpecialTokens: false })).getIds().length;
    best = Math.min(best, Number(process.hrtime.bigint() - t0) / 1e9);
  }
  console.error(JSON.stringify({ mode: 'lines', bytes, tokens: n, seconds: best, mb_per_s: bytes / best / 1e6 }));
})();
