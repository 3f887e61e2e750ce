#!/usr/bin/env node
// `npm run bench:bundle`: the deployable Worker's size (issue 12), raw and gzipped, from
// `wrangler deploy --dry-run --outdir` (wrangler's own build, nothing is uploaded). Prints a line
// per file and one JSON line per figure ({"bench":"bundle","figure":"gzip_bytes","value":…}).
// Cloudflare's limits for comparison: 3 MB gzipped on the Free plan, 10 MB on Paid.
//
// Plain Node ESM (Node 20 and later); uses the project's wrangler.

import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { ROOT } from "../scripts/local-server.mjs";

const out = mkdtempSync(join(tmpdir(), "greenlight-bundle-"));
try {
  const npx = process.platform === "win32" ? "npx.cmd" : "npx";
  const build = spawnSync(npx, ["wrangler", "deploy", "--dry-run", "--outdir", out], { cwd: ROOT, encoding: "utf8" });
  if (build.status !== 0) {
    console.error(build.stdout, build.stderr);
    process.exit(1);
  }
  let raw = 0;
  let gzip = 0;
  for (const name of readdirSync(out).filter((f) => f.endsWith(".js"))) {
    const bytes = readFileSync(join(out, name));
    const zipped = gzipSync(bytes, { level: 9 }).length;
    raw += bytes.length;
    gzip += zipped;
    console.log(`${name.padEnd(20)} raw ${bytes.length.toLocaleString("en")} B   gzip ${zipped.toLocaleString("en")} B`);
  }
  console.log(JSON.stringify({ bench: "bundle", figure: "raw_bytes", value: raw }));
  console.log(JSON.stringify({ bench: "bundle", figure: "gzip_bytes", value: gzip, limit_free: 3 * 1024 * 1024, limit_paid: 10 * 1024 * 1024 }));
} finally {
  rmSync(out, { recursive: true, force: true });
}
