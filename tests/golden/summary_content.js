// Prints the part of a shardquant_summary.json that describes the output, canonically (keys
// sorted, one line), for tests/golden/golden.sh to hash. Dropped, because they change from run to
// run or from machine to machine without the output changing: every duration (keys "seconds" or
// ending in "_s": timings_s, phases_s, solve_phases_s ...), the per-rank launch statistics
// ("distributed": time, memory, transport bytes), the host memory samples ("host_memory",
// "host_rss") and paths (model_path, the calibration sources'
// name and paths; their size and content hash stay). Everything else — settings, calibration
// record, per-linear errors and fallbacks, AWQ notes, output decisions — is kept.
//   node summary_content.js shardquant_summary.json
'use strict';
const fs = require('fs');

function isTiming(key) {
  return key === 'seconds' || key.endsWith('_s') || key === 'host_memory' || key === 'host_rss';
}

function clean(v) {
  if (Array.isArray(v)) return v.map(clean);
  if (v === null || typeof v !== 'object') return v;
  const out = {};
  for (const k of Object.keys(v).sort()) {
    if (isTiming(k)) continue;
    out[k] = clean(v[k]);
  }
  return out;
}

const s = clean(JSON.parse(fs.readFileSync(process.argv[2], 'utf8')));
delete s.model_path;
delete s.distributed;
for (const src of (s.calibration && s.calibration.sources) || []) {
  delete src.name;
  delete src.paths;
}
process.stdout.write(JSON.stringify(s) + '\n');
