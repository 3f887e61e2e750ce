#!/usr/bin/env node
// `npm run bench:bundle`: the deployable Worker's size (issue 12), raw and gzipped, from
// `wrangler deploy --dry-run --outdir` (wrangler's own build, nothing is uploaded), built and
// measured by scripts/check-bundle.mjs (what CI checks against its budget; the same build the
// `workerd` benchmark server serves). Prints a line per file and one JSON line per figure
// ({"bench":"bundle","figure":"gzip_bytes","value":…,"min":…,"max":…}). The build is
// deterministic, so one build is measured and min = max = value. Cloudflare's limits for
// comparison: 3 MB gzipped on the Free plan, 10 MB on Paid.
//
// Takes --server and --pin like every benchmark (bench/lib.mjs) and ignores them: no server runs.
//
// Plain Node ESM (Node 20 and later); uses the project's wrangler.

import { LIMIT_FREE_BYTES, LIMIT_PAID_BYTES, buildAndMeasure } from "../scripts/check-bundle.mjs";
import { QUIET_ENV } from "../scripts/server-process.mjs";
import { emit, readCommonOptions } from "./lib.mjs";

try {
  const { rest } = readCommonOptions();
  if (rest.length > 0) throw new Error(`unknown arguments: ${rest.join(" ")}`);
} catch (err) {
  console.error(`[bench] ${err instanceof Error ? err.message : err}`);
  process.exit(2);
}

// No telemetry from wrangler, and no prompts.
Object.assign(process.env, QUIET_ENV);
try {
  const size = buildAndMeasure();
  for (const f of size.files) console.log(`${f.name.padEnd(20)} raw ${f.raw.toLocaleString("en")} B   gzip ${f.gzip.toLocaleString("en")} B`);
  emit({ bench: "bundle", figure: "raw_bytes", value: size.raw, min: size.raw, max: size.raw });
  emit({
    bench: "bundle",
    figure: "gzip_bytes",
    value: size.gzip,
    min: size.gzip,
    max: size.gzip,
    limit_free: LIMIT_FREE_BYTES,
    limit_paid: LIMIT_PAID_BYTES,
    ok: size.gzip <= LIMIT_FREE_BYTES,
  });
} catch (err) {
  console.error(`[bench] failed: ${err instanceof Error ? err.message : err}`);
  process.exitCode = 1;
}
