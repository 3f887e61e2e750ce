#!/usr/bin/env node
// Serves the Worker the way it is deployed, as closely as one machine allows: the bundle
// `wrangler deploy` would upload, run by workerd through Miniflare, with local D1, R2, Durable
// Objects and Queues (both queues and their consumers) as wrangler.toml declares them. No
// development proxy, no dev-only middleware, no file watching. scripts/bundle-server.mjs starts it
// for the benchmarks; by hand:
//
//   node_modules/.bin/node scripts/serve-bundle.mjs --port 8788 --var REQUIRE_HTTPS:false
//
// Options:
//   --ip ADDR          listen address [127.0.0.1]
//   --port N           port [8788]
//   --persist-to DIR   local state (as `wrangler dev --persist-to`: kept under DIR/v3) [.wrangler/state]
//   --work-dir DIR     where the bundle is built and Miniflare keeps scratch files [a temporary
//                      directory, removed on exit]
//   --var KEY:VALUE    a Worker variable, over wrangler.toml [vars] and .dev.vars (repeatable)
//   --config FILE      [wrangler.toml]
//
// Steps: (1) `wrangler deploy --dry-run --outdir <work-dir>/bundle` for the top level of
// wrangler.toml (buildForDeploy of scripts/check-bundle.mjs: the build CI measures); (2) the
// Worker's Miniflare options from wrangler.toml through wrangler's own
// unstable_getMiniflareWorkerOptions (bindings, Durable Objects, queue producers and consumers,
// vars and .dev.vars), pointed at the built modules instead of src/index.ts; (3) the D1
// migrations not yet applied, through a Miniflare holding only the D1 database (split into
// statements by wrangler's splitter, one batch per file, recorded in d1_migrations as
// `wrangler d1 migrations apply` does), so the port opens only on a migrated database; (4) the
// Worker on --ip:--port until SIGINT, SIGTERM or SIGHUP.
//
// Needs Node >= 22 (miniflare): the project's node_modules/.bin/node.

import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, extname, join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { buildForDeploy } from "./check-bundle.mjs";
import { ROOT } from "./server-process.mjs";

/** @param {string} msg */
const log = (msg) => console.error(`[serve-bundle] ${msg}`);

const major = Number(process.versions.node.split(".")[0]);
if (major < 22) {
  log(`needs Node >= 22 (this is ${process.version}): run it with node_modules/.bin/node`);
  process.exit(1);
}

const { values } = parseArgs({
  options: {
    ip: { type: "string", default: "127.0.0.1" },
    port: { type: "string", default: "8788" },
    "persist-to": { type: "string", default: join(ROOT, ".wrangler", "state") },
    "work-dir": { type: "string" },
    var: { type: "string", multiple: true, default: [] },
    config: { type: "string", default: join(ROOT, "wrangler.toml") },
  },
  strict: true,
});
const port = Number(values.port);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  log(`--port must be a port number (got ${values.port})`);
  process.exit(2);
}
/** @type {Record<string, string>} */
const vars = {};
for (const pair of values.var ?? []) {
  const colon = pair.indexOf(":");
  if (colon <= 0) {
    log(`--var takes KEY:VALUE (got ${pair})`);
    process.exit(2);
  }
  vars[pair.slice(0, colon)] = pair.slice(colon + 1);
}
const configPath = resolve(values.config);
const persistRoot = join(resolve(values["persist-to"]), "v3");
const ownWorkDir = values["work-dir"] === undefined;
const workDir = values["work-dir"] ?? mkdtempSync(join(tmpdir(), "greenlight-serve-bundle-"));
const outDir = join(workDir, "bundle");

/** Module types of the files wrangler may write next to the main module, by extension. */
const MODULE_TYPES = /** @type {Record<string, string>} */ ({
  ".js": "ESModule",
  ".mjs": "ESModule",
  ".cjs": "CommonJS",
  ".wasm": "CompiledWasm",
  ".bin": "Data",
  ".txt": "Text",
  ".html": "Text",
  ".sql": "Text",
});

/**
 * The built modules for Miniflare, the main one (wrangler's `index.js`) first.
 * @param {string[]} files names in outDir
 */
function bundleModules(files) {
  const modules = files
    .filter((name) => MODULE_TYPES[extname(name)] !== undefined && statSync(join(outDir, name)).isFile())
    .map((name) => ({ type: /** @type {string} */ (MODULE_TYPES[extname(name)]), path: join(outDir, name) }));
  modules.sort((a, b) => Number(basename(b.path) === "index.js") - Number(basename(a.path) === "index.js"));
  if (basename(modules[0]?.path ?? "") !== "index.js") throw new Error(`no index.js among the built files: ${files.join(", ")}`);
  return modules;
}

/**
 * Applies the migrations of `dir` not yet recorded in `table`, the way `wrangler d1 migrations
 * apply --local` does: the file and its INSERT into the table in one batch.
 * @param {any} db a D1Database binding from Miniflare
 * @param {string} dir
 * @param {string} table
 * @param {(sql: string) => string[]} split wrangler's statement splitter
 */
async function applyMigrations(db, dir, table, split) {
  const quoted = `"${table.replace(/"/g, '""')}"`;
  await db.prepare(`CREATE TABLE IF NOT EXISTS ${quoted}(
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    name       TEXT UNIQUE,
    applied_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP NOT NULL
  )`).run();
  const applied = new Set(((await db.prepare(`SELECT name FROM ${quoted}`).all()).results ?? []).map((/** @type {any} */ r) => r.name));
  const pending = readdirSync(dir).filter((f) => f.endsWith(".sql") && !applied.has(f)).sort();
  for (const name of pending) {
    const sql = `${readFileSync(join(dir, name), "utf8")}\nINSERT INTO ${quoted} (name) values ('${name.replace(/'/g, "''")}');`;
    try {
      await db.batch(split(sql).map((statement) => db.prepare(statement)));
    } catch (err) {
      throw new Error(`migration ${name} failed: ${err instanceof Error ? err.message : err}`);
    }
  }
  return pending;
}

/** @type {{ dispose(): Promise<void> } | undefined} */
let miniflare;
let stopping = false;
const cleanUp = () => {
  if (ownWorkDir) rmSync(workDir, { recursive: true, force: true });
};
/** @param {NodeJS.Signals} signal */
const onSignal = (signal) => {
  if (stopping) process.exit(1);
  stopping = true;
  log(`${signal}: stopping`);
  const done = () => {
    cleanUp();
    process.exit(0);
  };
  (miniflare ? miniflare.dispose() : Promise.resolve()).then(done, done);
};
process.on("SIGINT", onSignal);
process.on("SIGTERM", onSignal);
process.on("SIGHUP", onSignal);

async function main() {
  const started = performance.now();
  log(`building: wrangler deploy --dry-run --outdir ${outDir}`);
  const build = buildForDeploy({ outdir: outDir, config: configPath });
  if (!build.ok) throw new Error(`wrangler deploy --dry-run failed:\n${build.output}`);
  const modules = bundleModules(readdirSync(outDir));
  log(`built ${modules.map((m) => `${basename(m.path)} (${statSync(m.path).size.toLocaleString("en")} B)`).join(", ")} in ${((performance.now() - started) / 1000).toFixed(1)} s`);

  const wrangler = await import("wrangler");
  const { Miniflare, convertV4MiniflareOptions } = await import("miniflare");
  const config = wrangler.unstable_readConfig({ config: configPath });
  const { workerOptions } = wrangler.unstable_getMiniflareWorkerOptions(configPath);
  // The built modules replace wrangler's rules for finding them in src/.
  const { modulesRules: _rules, ...worker } = /** @type {Record<string, any>} */ (workerOptions);

  const shared = {
    resourcePersistencePath: persistRoot,
    resourceTmpPath: join(workDir, "tmp"),
    cf: false,
    telemetry: { enabled: false },
  };

  // Migrations first, through a Miniflare that holds only the database.
  const d1 = config.d1_databases.find((/** @type {any} */ d) => d.binding === "DB");
  if (!d1) throw new Error(`${configPath} declares no D1 database bound as DB`);
  const migrationsDir = resolve(configPath, "..", d1.migrations_dir ?? "migrations");
  const migrator = new Miniflare(convertV4MiniflareOptions({ ...shared, modules: true, script: "", d1Databases: { DB: worker.d1Databases.DB } }));
  try {
    const db = await migrator.getD1Database("DB");
    const applied = await applyMigrations(db, migrationsDir, d1.migrations_table ?? "d1_migrations", wrangler.unstable_splitSqlQuery);
    log(`D1 migrations applied: ${applied.length === 0 ? "none pending" : applied.join(", ")}`);
  } finally {
    await migrator.dispose();
  }

  if (stopping) return;
  miniflare = new Miniflare(
    convertV4MiniflareOptions({
      ...shared,
      // Miniflare's own entry socket (a router worker in front of the Worker): on a port of its
      // own, unused. Requests come in through the direct socket below.
      host: values.ip,
      port: 0,
      // A request log line per request costs the Node process time; wrangler dev hides them too.
      logRequests: false,
      workers: [
        {
          ...worker,
          name: config.name,
          modules,
          modulesRoot: outDir,
          bindings: { ...worker.bindings, ...vars },
          // A workerd socket bound to the Worker itself, as wrangler dev binds its user worker:
          // no JavaScript router in front of it. Through Miniflare's entry worker instead, a
          // trivial route cost about 0.6 ms more workerd CPU per request and half the throughput.
          unsafeDirectSockets: [{ host: values.ip, port }],
        },
      ],
    }),
  );
  await /** @type {any} */ (miniflare).ready;
  log(`ready on http://${values.ip}:${port}/ after ${((performance.now() - started) / 1000).toFixed(1)} s (state in ${persistRoot})`);
}

main().catch((err) => {
  log(`failed: ${err?.stack ?? err}`);
  const exit = () => {
    cleanUp();
    process.exit(1);
  };
  (miniflare ? miniflare.dispose() : Promise.resolve()).then(exit, exit);
});
