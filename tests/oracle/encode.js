// Oracle for tests/io/tokenizer/test_tokenizer_oracle.cpp: Hugging Face tokenizers (the Rust library's
// Node binding) encodes and decodes a list of strings with one or more tokenizer.json files.
//
//   node encode.js INPUTS.json OUT.json TOKENIZER.json...
//
// INPUTS.json is a JSON array of strings. OUT.json gets, per tokenizer path, an object of four
// arrays parallel to the inputs: ids with and without special tokens, and the decode of the
// with-special ids keeping and skipping special tokens.
const fs = require('fs');
const { Tokenizer } = require('tokenizers');

async function run(path, inputs) {
  const tok = Tokenizer.fromFile(path);
  // Batched calls in chunks (the library's own batch API): one async hop per chunk keeps the
  // oracle fast; results are identical to single calls.
  const res = { with: [], without: [], decoded: [], decoded_skip: [] };
  const chunk = 4096;
  for (let i = 0; i < inputs.length; i += chunk) {
    const part = inputs.slice(i, i + chunk);
    const a = (await tok.encodeBatch(part, { addSpecialTokens: true })).map((e) => Array.from(e.getIds()));
    const b = (await tok.encodeBatch(part, { addSpecialTokens: false })).map((e) => Array.from(e.getIds()));
    res.with.push(...a);
    res.without.push(...b);
    res.decoded.push(...(await tok.decodeBatch(a, false)));
    res.decoded_skip.push(...(await tok.decodeBatch(a, true)));
  }
  return res;
}

(async () => {
  const [inPath, outPath, ...toks] = process.argv.slice(2);
  const inputs = JSON.parse(fs.readFileSync(inPath, 'utf8'));
  const out = {};
  for (const t of toks) out[t] = await run(t, inputs);
  fs.writeFileSync(outPath, JSON.stringify(out));
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
