#!/usr/bin/env node
// `npm run check:bundle [-- --env <name>]`: builds the Worker exactly as `wrangler deploy` would
// upload it (`wrangler deploy --dry-run --outdir`: wrangler's own build, nothing is sent), prints
// its size raw and gzipped, and fails (exit 1) when the build fails or the gzipped size is over
// GZIP_BUDGET_BYTES. .ci/run runs it after the tests.
//
// The budget: 600 KiB gzipped. Cloudflare refuses a Worker over 3 MB gzipped on the Free plan and
// 10 MB on Paid, and the whole bundle is parsed and its global scope run within the 1 s startup
// limit whenever an isolate starts, so size costs every cold start long before a limit is reached.
// On 2026-11-22 the bundle was about 375 KB gzipped (1.93 MB raw; bench/README.md says what it is
// made of). 600 KiB leaves room for about 60 % of organic growth and stays at a fifth of the Free
// limit; what it is meant to catch is a step change, such as a new dependency that brings a second
// schema library or an SDK along. Raising it is a one-line change here, made on purpose, with the
// reason in the commit.
//
// buildForDeploy() (any environment, any config) and measureBundle() (what wrangler uploads: every
// module, not the source maps) are exported so that bench/bundle.mjs can measure the same thing the
// same way, and test/e2e/setup-cloudflare.e2e.ts builds the config the setup script writes.
//
// Plain Node ESM without dependencies (Node 20+); runs the project's wrangler with the project's
// Node first on PATH, as scripts/dev.mjs does.

import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, readdirSync, realpathSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
export const GZIP_BUDGET_BYTES = 600 * 1024;
// Cloudflare's limits on the gzipped Worker, for comparison in the output.
export const LIMIT_FREE_BYTES = 3 * 1024 * 1024;
export const LIMIT_PAID_BYTES = 10 * 1024 * 1024;

/**
 * Runs `wrangler deploy --dry-run --outdir <outdir>` (for `env`, or the top level) and returns
 * {ok, output}: wrangler's exit status and what it printed. Source maps are written but, being
 * uploaded apart from the Worker, do not count toward its size.
 */
export function buildForDeploy({ root = ROOT, outdir, env, config } = {}) {
  const binDir = join(root, "node_modules", ".bin");
  const isWindows = process.platform === "win32";
  const childEnv = { ...process.env };
  const pathKey = Object.keys(childEnv).find((k) => k.toUpperCase() === "PATH") ?? "PATH";
  childEnv[pathKey] = childEnv[pathKey] ? `${binDir}${delimiter}${childEnv[pathKey]}` : binDir;
  // `--env ""` is the top level, named explicitly: wrangler warns when several exist and none is.
  const args = ["deploy", "--dry-run", "--outdir", outdir, "--env", env ?? ""];
  if (config) args.push("--config", config);
  const build = spawnSync(join(binDir, isWindows ? "wrangler.cmd" : "wrangler"), args, {
    cwd: root,
    encoding: "utf8",
    env: childEnv,
    shell: isWindows,
  });
  return { ok: build.status === 0, output: `${build.stdout ?? ""}${build.stderr ?? ""}${build.error ? build.error.message : ""}` };
}

/** Sizes of what wrangler would upload from `dir`: every module, not the source maps. */
export function measureBundle(dir) {
  const files = [];
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    if (name.endsWith(".map") || name === "README.md" || !statSync(path).isFile()) continue;
    const bytes = readFileSync(path);
    files.push({ name, raw: bytes.length, gzip: gzipSync(bytes, { level: 9 }).length });
  }
  return {
    files,
    raw: files.reduce((sum, f) => sum + f.raw, 0),
    gzip: files.reduce((sum, f) => sum + f.gzip, 0),
  };
}

/** Builds into a temporary directory, measures, cleans up; throws with wrangler's output on failure. */
export function buildAndMeasure({ root = ROOT, env, config } = {}) {
  const outdir = mkdtempSync(join(tmpdir(), "greenlight-bundle-"));
  try {
    const build = buildForDeploy({ root, outdir, env, config });
    if (!build.ok) throw new Error(`wrangler deploy --dry-run failed:\n${build.output}`);
    return measureBundle(outdir);
  } finally {
    rmSync(outdir, { recursive: true, force: true });
  }
}

function main() {
  const argv = process.argv.slice(2);
  let env;
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === "--env" && i + 1 < argv.length) env = argv[++i];
    else if (argv[i].startsWith("--env=")) env = argv[i].slice("--env=".length);
    else {
      console.error(`check-bundle: unknown argument ${JSON.stringify(argv[i])}\nusage: npm run check:bundle [-- --env <name>]`);
      process.exit(2);
    }
  }
  let size;
  try {
    size = buildAndMeasure({ env });
  } catch (err) {
    console.error(`check-bundle: ${err.message}`);
    process.exit(1);
  }
  const kib = (n) => `${(n / 1024).toFixed(1)} KiB`;
  for (const f of size.files) console.log(`${f.name.padEnd(20)} raw ${f.raw.toLocaleString("en")} B   gzip ${f.gzip.toLocaleString("en")} B`);
  const share = (limit) => `${((size.gzip / limit) * 100).toFixed(0)} %`;
  console.log(
    `bundle${env ? ` (env ${env})` : ""}: ${kib(size.raw)} raw, ${kib(size.gzip)} gzipped; budget ${kib(GZIP_BUDGET_BYTES)} gzipped ` +
      `(${share(GZIP_BUDGET_BYTES)} used; ${share(LIMIT_FREE_BYTES)} of the Free plan's 3 MB, ${share(LIMIT_PAID_BYTES)} of Paid's 10 MB)`,
  );
  if (size.gzip > GZIP_BUDGET_BYTES) {
    console.error(
      `check-bundle: the Worker is ${kib(size.gzip)} gzipped, over the budget of ${kib(GZIP_BUDGET_BYTES)}. Find what grew ` +
        "(`npx wrangler deploy --dry-run --outdir /tmp/b --metafile` and a bundle analyzer), or raise GZIP_BUDGET_BYTES in " +
        "scripts/check-bundle.mjs with the reason in the commit.",
    );
    process.exit(1);
  }
}

if (process.argv[1] && realpathSync(process.argv[1]) === realpathSync(fileURLToPath(import.meta.url))) main();
