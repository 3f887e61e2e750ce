#!/usr/bin/env node
// `npm run bench:ingest`: P2 bulk ingest. How close does ingesting a big CI report come to the
// fastest way of putting the same rows into D1?
//
// A CI job that ends with a 10,000-test JUnit report posts it to POST /api/v1/results/ingest.
// Over 5,000 results (or 5 MB) the report is taken asynchronously: 202 with an ingest id, then a
// queue consumer parses it and writes it in chunks. This benchmark measures that path end to end
// and sets it against a floor: the same rows written straight into the same local D1 database
// with as few, as large statements as D1 allows. The target is ingest >= half the floor's speed.
//
// It starts a real local server (bench/lib.mjs: `--server workerd`, the built bundle under
// Miniflare, or `--server dev`, wrangler dev; local D1, a fresh temporary database, loopback only), creates an organization, writes the report with
// scripts/generate-report.mjs (its totals are the expected counts), then runs `--rounds` rounds
// of both methods, alternating (A B, B A, ...) so that machine noise and drift hit both alike:
//
//   ingest  POST the report (Content-Type: application/xml, ?project_id=…&ci_build_id=…), expect
//           202 {ingest_id, run_id, status: "queued"}, then GET /api/v1/ingests/{ingest_id}
//           every ~100 ms until its status is "done". Timed from the start of the POST to the
//           poll that sees "done" (so up to one poll interval late). "failed", or no "done"
//           within --timeout-seconds, aborts the run; so does GET /api/v1/testruns/{run_id}
//           answering a total_tests other than the report's. The D1 calls are what the ingest
//           says its consumer made (`d1_calls`).
//   floor   The same 10,000 test cases and 10,000 results, with the values the ingest writes
//           (titles, full titles, file paths, statuses, durations, retries, errors, annotations),
//           inserted with D1's batch() through the platform proxy of wrangler (getPlatformProxy,
//           see openLocalD1 below): INSERT … SELECT … FROM json_each(?) with 1,000 rows in one
//           JSON parameter per statement (the service's own way of writing rows; a handful of
//           bound parameters and under 1 KB of SQL each, far inside D1's limits of 100 and
//           100 KB), FLOOR_ROWS_PER_BATCH rows per batch(). Only the batch() calls are timed;
//           building the JSON and preparing the statements come before. Plain INSERTs of rows
//           whose ids are already known: no upsert, no lookup of test cases by identity.
//
// Every round goes to a project of its own (the ingest's made through the API, the floor's
// inserted directly), so both methods create all 10,000 test cases, as a project's first report
// does; each ingest round also has its own ci_build_id, so its run is new. The floor writes only
// those rows; the ingest also does what a real ingest must: parse the XML, the run's suites and
// counts, events for failed tests, its own status. The floor is therefore a bound the ingest can
// approach but not reach.
//
// Before the rounds, one small report is ingested synchronously and a small floor batch is
// written (warm-up, not measured). After them, the floor's rows are compared column by column
// with one ingest run's rows; any difference is printed (it means the floor wrote other values
// than the ingest and the comparison is less exact than it claims).
//
// Prints a table (results/s median, min, max, seconds per round, D1 calls per round), where the
// ingest's time went by the server's timestamps (POST, queued, processing: a diagnosis only), and
// ingest ÷ floor, the median of the rounds' ratios (round r's ingest ÷ round r's floor) with min
// and max, with whether the 0.5 target is met, then one JSON line per figure
// ({"bench":"ingest","figure":…,"value":median,"min":…,"max":…}).
//
// Options (flag or environment variable; defaults in brackets):
//   --results N          BENCH_RESULTS          results in the report [10000]
//   --rounds N           BENCH_ROUNDS           rounds of each method; the median is reported [3]
//   --timeout-seconds N  BENCH_TIMEOUT_SECONDS  how long one ingest may take, POST to "done" [300]
//   --server, --pin                             see bench/lib.mjs: which server [workerd], CPU pinning
//
// Plain Node ESM (Node 20 and later); the shared parts are in bench/lib.mjs. Besides Node it uses
// only wrangler (a devDependency) for the platform proxy. Not part of `npm test`.

import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { QUIET_ENV, ROOT } from "../scripts/local-server.mjs";
import { BenchError, createOrganization, emit, median, printTable, readIntOptions, request, runBenchmark, spread } from "./lib.mjs";

const BENCH = "ingest";
/** Reports over this many results are ingested asynchronously (202); smaller ones answer 201. */
const SYNC_MAX_RESULTS = 5000;
/** The report POST itself: the body is about 1 MB per 10,000 results. */
const POST_TIMEOUT_MS = 120_000;
const POLL_INTERVAL_MS = 100;
/** Rows carried by one INSERT … SELECT FROM json_each(?) of the floor. */
const FLOOR_ROWS_PER_STATEMENT = 1000;
/**
 * Results (with their test cases) per batch() of the floor: 2 batch() calls of 10 statements for
 * 10,000 results. Tried on a 2-core machine: 1,000 to 10,000 rows per batch() and 500 to 2,500
 * rows per statement all gave 13,000-20,000 results/s, within the noise of each other; 1,000 per
 * statement and 5,000 per batch() was at the top.
 */
const FLOOR_ROWS_PER_BATCH = 5000;
const WARMUP_RESULTS = 100;
const TARGET_RATIO = 0.5;

const readOptions = () =>
  readIntOptions({
    results: { flag: "results", env: "BENCH_RESULTS", fallback: 10_000, min: 1 },
    rounds: { flag: "rounds", env: "BENCH_ROUNDS", fallback: 3, min: 1 },
    timeoutSeconds: { flag: "timeout-seconds", env: "BENCH_TIMEOUT_SECONDS", fallback: 300, min: 1 },
  });

/** @param {number} ms */
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------------------------
// The report

/**
 * @typedef {object} Totals the generator's counts (flaky tests are not among the passed)
 * @property {number} tests
 * @property {number} passed
 * @property {number} failed
 * @property {number} skipped
 * @property {number} flaky
 */

/**
 * Runs scripts/generate-report.mjs and returns the report's text and the totals it printed.
 * @param {string} dir
 * @param {number} count
 * @returns {Promise<{ text: string, totals: Totals }>}
 */
async function generateReport(dir, count) {
  const out = join(dir, `junit-${count}.xml`);
  const args = [join(ROOT, "scripts", "generate-report.mjs"), "--format", "junit", "--results", String(count), "--out", out];
  const stderr = await new Promise((resolveRun, reject) => {
    const child = spawn(process.execPath, args, { cwd: ROOT, stdio: ["ignore", "ignore", "pipe"] });
    let text = "";
    child.stderr.on("data", (c) => (text += c));
    child.on("error", reject);
    child.on("exit", (code) => (code === 0 ? resolveRun(text) : reject(new BenchError(`generate-report.mjs exited with ${code}:\n${text}`))));
  });
  const totals = JSON.parse(String(stderr).trim().split("\n").at(-1) ?? "");
  if (totals?.tests !== count) throw new BenchError(`generate-report.mjs printed unexpected totals: ${String(stderr).slice(0, 500)}`);
  return { text: readFileSync(out, "utf8"), totals };
}

// The rows the ingest makes of the generated report, for the floor. This mirrors
// scripts/generate-report.mjs (what it writes for test i) and the JUnit parser (src/ingest/junit.ts:
// title = name, full title = "classname > name", the suite's file, failure/skipped/flakyFailure);
// the row check after the rounds shows any drift.
const SPECS_PER_FILE = 50;
/** @param {number} i */
const statusOf = (i) => (i % 20 === 3 ? "failed" : i % 20 === 7 ? "skipped" : i % 20 === 13 ? "flaky" : "passed");
/** @param {number} i */
const durationOf = (i) => ((i * 7919) % 5000) + 1;
/** @param {number} i */
const fileOf = (i) => `tests/area-${Math.floor(i / SPECS_PER_FILE)}.spec.ts`;
/** @param {number} i */
const titleOf = (i) => `handles case ${i}`;
/** @param {number} i */
const describeOf = (i) => `Area ${Math.floor(i / SPECS_PER_FILE)}`;
/** @param {number} i */
const errorOf = (i) => ({
  message: `Expected status 200 for case ${i}, received 500`,
  stack: `Error: Expected status 200 for case ${i}, received 500\n    at Context.<anonymous> (${fileOf(i)}:${(i % 300) + 1}:11)`,
});

const CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/** An id of the service's shape (prefix, 10 characters of time, 16 random; src/lib/ids.ts). */
function newId(/** @type {string} */ prefix) {
  let t = Date.now();
  let time = "";
  for (let i = 0; i < 10; i++) {
    time = CROCKFORD[t % 32] + time;
    t = Math.floor(t / 32);
  }
  return `${prefix}_${time}${Array.from(randomBytes(16), (b) => CROCKFORD[b & 31]).join("")}`;
}

/**
 * JSON arrays of the test-case rows and result rows for tests 0..count-1, FLOOR_ROWS_PER_STATEMENT
 * to an array. Columns that are the same for every row (tags, steps, output, keys) are literals
 * in the SQL instead.
 * @param {number} count
 */
function floorRows(count) {
  /** @type {{ testCases: string[], results: string[] }} */
  const chunks = { testCases: [], results: [] };
  for (let start = 0; start < count; start += FLOOR_ROWS_PER_STATEMENT) {
    const testCases = [];
    const results = [];
    for (let i = start; i < Math.min(count, start + FLOOR_ROWS_PER_STATEMENT); i++) {
      const status = statusOf(i);
      const title = titleOf(i);
      const fullTitle = `${describeOf(i)} > ${title}`;
      const file = fileOf(i);
      const tc = newId("tc");
      const retries = status === "flaky" ? 1 : 0;
      testCases.push({ tc, k: `path:${file}\u001f${fullTitle}`, title, full_title: fullTitle, file_path: file });
      results.push({
        id: newId("res"),
        tc,
        title,
        full_title: fullTitle,
        file_path: file,
        status,
        duration: durationOf(i),
        retries,
        attempt: retries + 1,
        is_flaky: status === "flaky",
        annotations: status === "skipped" ? [{ type: "skip", description: "not on this platform" }] : [],
        error: status === "failed" || status === "flaky" ? errorOf(i) : null,
      });
    }
    chunks.testCases.push(JSON.stringify(testCases));
    chunks.results.push(JSON.stringify(results));
  }
  return chunks;
}

const INSERT_TEST_CASES = `INSERT INTO test_cases (id, organization_id, project_id, identity_key, automation_id, title, full_title,
    file_path, line_number, description, tags, created_at, updated_at)
  SELECT json_extract(value, '$.tc'), ?1, ?2, json_extract(value, '$.k'), NULL, json_extract(value, '$.title'),
    json_extract(value, '$.full_title'), json_extract(value, '$.file_path'), NULL, NULL, '[]', ?3, ?3
  FROM json_each(?4)`;

const INSERT_RESULTS = `INSERT INTO results (id, organization_id, project_id, run_id, test_case_id, submission_id, title, full_title,
    file_path, line_number, status, duration_ms, retries, attempt, is_flaky, tags, annotations, error, steps, steps_key,
    stdout, stdout_key, stderr, stderr_key, created_at, updated_at)
  SELECT json_extract(value, '$.id'), ?1, ?2, ?3, json_extract(value, '$.tc'), ?4, json_extract(value, '$.title'),
    json_extract(value, '$.full_title'), json_extract(value, '$.file_path'), NULL, json_extract(value, '$.status'),
    json_extract(value, '$.duration'), json_extract(value, '$.retries'), json_extract(value, '$.attempt'),
    json_extract(value, '$.is_flaky'), '[]', json_extract(value, '$.annotations'), json_extract(value, '$.error'), '[]', NULL,
    '', NULL, '', NULL, ?5, ?5
  FROM json_each(?6)`;

// ---------------------------------------------------------------------------------------------
// The local D1 database, from outside the server

/**
 * The server's D1 database, opened through wrangler's platform proxy (a second workerd over
 * the same files).
 *
 * Which files: `wrangler dev --persist-to DIR` keeps its state under DIR/v3 (wrangler's
 * getLocalPersistencePath + "v3"), and so does scripts/serve-bundle.mjs, while getPlatformProxy's `persist.path` is used as it is
 * (its default is ".wrangler/state/v3"). So the path is DIR/v3; with DIR alone the proxy opens a
 * new, empty database ("no such table: projects"), as we saw when trying it. The benchmark checks
 * both directions every run instead of trusting this: the project the server created must be
 * readable here (checkSameDatabase), and the rows of the first floor round must be listed by the
 * server (GET /api/v1/testruns/{floor run}/results). Either failing aborts the run.
 *
 * @param {import("../scripts/local-server.mjs").LocalServer} server
 */
async function openLocalD1(server) {
  // No telemetry or network calls from this wrangler either, and less chatter: the proxy warns that
  // the server's own Durable Objects are not available to it, which D1 does not need.
  // (Set only now, after the server has started with its own environment.)
  Object.assign(process.env, QUIET_ENV);
  process.env.WRANGLER_LOG ??= "error";
  const { getPlatformProxy } = await import("wrangler");
  const proxy = await getPlatformProxy({ configPath: join(ROOT, "wrangler.toml"), persist: { path: join(server.persistDir, "v3") } });
  const db = /** @type {D1Database} */ (/** @type {Record<string, unknown>} */ (proxy.env).DB);
  if (!db || typeof db.batch !== "function") {
    await proxy.dispose();
    throw new BenchError("wrangler.toml has no D1 binding named DB");
  }
  return { db, dispose: () => proxy.dispose() };
}

/**
 * @typedef {object} D1Statement
 * @property {(...values: unknown[]) => D1Statement} bind
 * @property {() => Promise<Record<string, unknown> | null>} first
 * @property {() => Promise<unknown>} run
 */
/**
 * @typedef {object} D1Database
 * @property {(sql: string) => D1Statement} prepare
 * @property {(statements: D1Statement[]) => Promise<unknown[]>} batch
 */

/**
 * A row the server wrote must be visible through the proxy; returns that row's organization.
 * @param {D1Database} db
 * @param {string} projectId made by the server
 */
async function checkSameDatabase(db, projectId) {
  /** @type {Record<string, unknown> | null} */
  let row;
  try {
    row = await db.prepare("SELECT organization_id FROM projects WHERE id = ?").bind(projectId).first();
  } catch (err) {
    throw new BenchError(`the platform proxy does not open the server's database: ${err instanceof Error ? err.message : err}`);
  }
  const organizationId = row?.organization_id;
  if (typeof organizationId !== "string") {
    throw new BenchError(`project ${projectId}, made by the server, is not in the database the platform proxy opened`);
  }
  return organizationId;
}

// ---------------------------------------------------------------------------------------------
// One round of each method

/**
 * @typedef {object} Round
 * @property {number} ms
 * @property {number} d1Calls NaN when the server does not say
 * @property {string} runId
 * @property {string} projectId
 * @property {number} [chunks]
 * @property {number} [postMs] the POST alone (202 answered)
 * @property {number} [queuedMs] from the ingest's created_at to its started_at (server clock)
 * @property {number} [processingMs] from its started_at to its finished_at (server clock)
 */

runBenchmark({
  readOptions,
  maxSockets: () => 2,
  body: async ({ server, base, agent, serverNote }, options) => {
    const n = options.results;
    const { projectId: firstProjectId, apiKey } = await createOrganization(agent, base);
    const auth = { authorization: `Bearer ${apiKey}`, accept: "application/json" };
    const json = { ...auth, "content-type": "application/json" };

    const dir = mkdtempSync(join(tmpdir(), "greenlight-bench-ingest-"));
    /** @type {Awaited<ReturnType<typeof openLocalD1>> | undefined} */
    let local;
    try {
      const report = await generateReport(dir, n);
      const warmupReport = await generateReport(dir, Math.min(WARMUP_RESULTS, n));
      console.error(
        `[bench] report: ${n} results, ${(Buffer.byteLength(report.text) / 1024 / 1024).toFixed(2)} MB, totals ${JSON.stringify(report.totals)}`,
      );

      local = await openLocalD1(server);
      let { db } = local;
      const organizationId = await checkSameDatabase(db, firstProjectId);
      console.error(`[bench] platform proxy: project ${firstProjectId} written by the server is visible (same database)`);

      let projects = 0;
      /** A project of its own for every ingest round, made through the API (not timed). */
      const createProject = async () => {
        const name = `Bench ingest ${++projects}`;
        const { text } = await request(agent, base, "POST", "/api/v1/projects", json, JSON.stringify({ name }), 201);
        const id = JSON.parse(text)?.id;
        if (typeof id !== "string") throw new Error(`unexpected project answer: ${text.slice(0, 2000)}`);
        return id;
      };

      /** @param {string} path */
      const getJson = async (path) => JSON.parse((await request(agent, base, "GET", path, auth)).text);

      /**
       * POSTs a report and waits until it is in; resolves with the time from the start of the
       * POST until the ingest is done.
       * @param {{ text: string, totals: Totals }} rep
       * @param {string} label
       * @returns {Promise<Round>}
       */
      const ingest = async (rep, label) => {
        const projectId = await createProject();
        const query = new URLSearchParams({ project_id: projectId, ci_build_id: `bench-${label}-${Date.now()}` });
        const path = `/api/v1/results/ingest?${query}`;
        const headers = { ...auth, "content-type": "application/xml" };
        const isAsync = rep.totals.tests > SYNC_MAX_RESULTS;
        const deadline = performance.now() + options.timeoutSeconds * 1000;

        const started = performance.now();
        /** @type {{ text: string }} */
        let posted;
        try {
          posted = await request(agent, base, "POST", path, headers, rep.text, isAsync ? 202 : 201, POST_TIMEOUT_MS);
        } catch (err) {
          if (err instanceof BenchError && /got 413/.test(err.message)) {
            throw new BenchError(`${err.message}\n(this server does not take reports of ${rep.totals.tests} results yet: is the asynchronous ingest committed?)`);
          }
          throw err;
        }
        const answer = JSON.parse(posted.text);
        /** @type {unknown} the run is named by the POST, else (asynchronous) by the finished ingest */
        let runId = answer?.run_id;
        if (typeof runId !== "string" && !isAsync) throw new BenchError(`POST ${path}: no run_id in ${posted.text.slice(0, 1000)}`);

        const postMs = performance.now() - started;
        let ms;
        let d1Calls = NaN;
        /** @type {number | undefined} */
        let chunks;
        /** @type {{ queuedMs?: number, processingMs?: number }} */
        let phases = {};
        if (!isAsync) {
          ms = performance.now() - started;
        } else {
          const ingestId = answer?.ingest_id;
          if (typeof ingestId !== "string" || answer?.status !== "queued") {
            throw new BenchError(`POST ${path}: expected {ingest_id, status: "queued"}, got ${posted.text.slice(0, 1000)}`);
          }
          const statusPath = `/api/v1/ingests/${encodeURIComponent(ingestId)}`;
          for (;;) {
            const state = await getJson(statusPath);
            if (state?.status === "done") {
              ms = performance.now() - started;
              d1Calls = typeof state.d1_calls === "number" ? state.d1_calls : NaN;
              chunks = typeof state.chunks === "number" ? state.chunks : undefined;
              phases = serverPhases(state);
              if (state.results !== rep.totals.tests) {
                console.error(`[bench] warning: ingest ${ingestId} is done with results ${JSON.stringify(state.results)}, expected ${rep.totals.tests}`);
              }
              if (typeof runId !== "string") runId = state.run_id;
              else if (state.run_id !== undefined && state.run_id !== runId) {
                throw new BenchError(`GET ${statusPath}: run_id ${state.run_id} differs from the POST's ${runId}`);
              }
              if (typeof runId !== "string") throw new BenchError(`ingest ${ingestId} is done but names no run_id: ${JSON.stringify(state).slice(0, 1000)}`);
              break;
            }
            if (state?.status === "failed") {
              throw new BenchError(`ingest ${ingestId} failed: ${JSON.stringify(state.error ?? state).slice(0, 2000)}`);
            }
            if (!["queued", "processing"].includes(state?.status)) {
              throw new BenchError(`GET ${statusPath}: unexpected status in ${JSON.stringify(state).slice(0, 1000)}`);
            }
            if (performance.now() >= deadline) {
              const hint = state.status === "queued" ? "it never left the queue: did the queue consumer run?" : "see --timeout-seconds";
              throw new BenchError(`ingest ${ingestId} not done within ${options.timeoutSeconds} s (last: ${JSON.stringify(state).slice(0, 500)}); ${hint}`);
            }
            await sleep(POLL_INTERVAL_MS);
          }
        }

        // Correctness: the run holds every test of the report.
        if (typeof runId !== "string") throw new Error("internal: no run id");
        const run = await getJson(`/api/v1/testruns/${encodeURIComponent(runId)}`);
        if (run?.total_tests !== rep.totals.tests) {
          throw new BenchError(`GET /api/v1/testruns/${runId}: expected total_tests ${rep.totals.tests}, got ${JSON.stringify(run?.total_tests)}`);
        }
        /** @type {[string, keyof Totals][]} */
        const counts = [["passed_tests", "passed"], ["failed_tests", "failed"], ["skipped_tests", "skipped"], ["flaky_tests", "flaky"]];
        const wrong = counts.filter(([field, key]) => run?.[field] !== rep.totals[key]);
        if (wrong.length > 0) {
          console.error(
            `[bench] warning: run ${runId}: ${wrong.map(([field, key]) => `${field} ${JSON.stringify(run?.[field])} (report: ${rep.totals[key]})`).join(", ")}`,
          );
        }
        return isAsync ? { ms, d1Calls, runId, projectId, chunks, postMs, ...phases } : { ms, d1Calls, runId, projectId };
      };

      /**
       * Inserts `count` test cases and results into a new project and run of the bench's
       * organization; times only the batch() calls.
       * @param {number} count
       * @returns {Promise<Round>}
       */
      const floor = async (count) => {
        const now = new Date().toISOString();
        const projectId = newId("proj");
        const runId = newId("run");
        await db.batch([
          db.prepare("INSERT INTO projects (id, organization_id, name, created_at, updated_at) VALUES (?, ?, ?, ?, ?)").bind(projectId, organizationId, `Bench floor ${projectId}`, now, now),
          db.prepare("INSERT INTO project_settings (project_id, updated_at) VALUES (?, ?)").bind(projectId, now),
          db.prepare("INSERT INTO test_runs (id, organization_id, project_id, status, created_at, updated_at) VALUES (?, ?, ?, 'running', ?, ?)").bind(runId, organizationId, projectId, now, now),
        ]);
        const rows = floorRows(count);
        const submissionId = newId("res");
        /** @type {D1Statement[][]} */
        const batches = [];
        const perBatch = Math.max(1, Math.round(FLOOR_ROWS_PER_BATCH / FLOOR_ROWS_PER_STATEMENT));
        for (let s = 0; s < rows.results.length; s += perBatch) {
          const statements = [];
          for (const testCases of rows.testCases.slice(s, s + perBatch)) {
            statements.push(db.prepare(INSERT_TEST_CASES).bind(organizationId, projectId, now, testCases));
          }
          for (const results of rows.results.slice(s, s + perBatch)) {
            statements.push(db.prepare(INSERT_RESULTS).bind(organizationId, projectId, runId, submissionId, now, results));
          }
          batches.push(statements);
        }

        let d1Calls = 0;
        const started = performance.now();
        for (const statements of batches) {
          await db.batch(statements);
          d1Calls++;
        }
        const ms = performance.now() - started;

        const written = await db
          .prepare("SELECT (SELECT count(*) FROM results WHERE run_id = ?1) AS results, (SELECT count(*) FROM test_cases WHERE project_id = ?2) AS cases")
          .bind(runId, projectId)
          .first();
        if (written?.results !== count || written?.cases !== count) {
          throw new BenchError(`floor: expected ${count} results and test cases, found ${JSON.stringify(written)}`);
        }
        return { ms, d1Calls, runId, projectId };
      };

      /**
       * `fn` on the proxy's database once the server is quiet: after an ingest the server still
       * works in the background for a moment (its events go to the webhook queue and are fanned
       * out), and two processes using one SQLite file at once make the second fail with
       * SQLITE_BUSY. So it waits a little first, and a call that still meets a busy database is
       * made again through a fresh proxy (a floor round with fresh ids: its batch rolled back).
       * @template T
       * @param {string} what for the message
       * @param {() => Promise<T>} fn
       * @returns {Promise<T>}
       */
      const whenQuiet = async (what, fn) => {
        await sleep(1500);
        for (let attempt = 1; ; attempt++) {
          try {
            return await fn();
          } catch (err) {
            if (attempt >= 3 || !/SQLITE_BUSY|database is locked|session commit token/.test(String(err))) throw err;
            console.error(`[bench] ${what} met a busy database (attempt ${attempt}); reopening the proxy and trying again`);
            // The proxy's connection keeps a snapshot from before the server's last write; a fresh
            // proxy starts from the database as it is now.
            await local?.dispose();
            local = await openLocalD1(server);
            db = local.db;
            await sleep(1000);
          }
        }
      };

      /**
       * A floor round once the server is quiet (see whenQuiet). Only the batch() calls are ever
       * timed.
       * @param {number} count
       */
      const quietFloor = (count) => whenQuiet("the floor", () => floor(count));

      // Warm-up (not measured): the worker's code paths, the ingest parser, the proxy's D1.
      console.error(`[bench] warm-up: a ${warmupReport.totals.tests}-result report and ${warmupReport.totals.tests} floor rows`);
      await ingest(warmupReport, "warmup");
      await quietFloor(warmupReport.totals.tests);

      /** @type {{ ingest: Round[], floor: Round[] }} */
      const rounds = { ingest: [], floor: [] };
      let checkedFromServer = false;
      for (let r = 0; r < options.rounds; r++) {
        /** @type {("ingest" | "floor")[]} A B, then B A, ...: neither method always goes first. */
        const order = r % 2 === 0 ? ["ingest", "floor"] : ["floor", "ingest"];
        for (const method of order) {
          const result = method === "ingest" ? await ingest(report, `r${r + 1}`) : await quietFloor(n);
          rounds[method].push(result);
          const seconds = (/** @type {number | undefined} */ x) => (x === undefined ? "?" : `${(x / 1000).toFixed(2)} s`);
          const extra =
            (result.chunks !== undefined ? `, ${result.chunks} chunks` : "") +
            (result.postMs !== undefined
              ? ` (POST ${seconds(result.postMs)}, queued ${seconds(result.queuedMs)}, processing ${seconds(result.processingMs)})`
              : "");
          console.error(
            `[bench] round ${r + 1} ${method}: ${n} results in ${(result.ms / 1000).toFixed(2)} s ` +
              `(${((n * 1000) / result.ms).toFixed(0)} results/s), ${Number.isNaN(result.d1Calls) ? "?" : result.d1Calls} D1 calls${extra}`,
          );
          if (method === "floor" && !checkedFromServer) {
            // The other direction: what the proxy wrote, the server lists. With a search (every
            // floor title has "handles case") the server counts the rows; unfiltered it would answer
            // the run's own total_tests, which the floor does not keep.
            const listed = await getJson(`/api/v1/testruns/${encodeURIComponent(result.runId)}/results?limit=1&search=${encodeURIComponent("handles case")}`);
            if (listed?.pagination?.total !== n) {
              throw new BenchError(`the server lists ${JSON.stringify(listed?.pagination?.total)} results in floor run ${result.runId}, expected ${n}`);
            }
            checkedFromServer = true;
          }
        }
      }

      // Did the floor write what the ingest wrote? Compare one run of each, test by test.
      const lastIngest = /** @type {Round} */ (rounds.ingest.at(-1));
      const lastFloor = /** @type {Round} */ (rounds.floor.at(-1));
      const rowCheck = await whenQuiet("the row check", () => compareRows(db, lastIngest, lastFloor));
      if (rowCheck.matched !== n || rowCheck.differing > 0) {
        console.error(
          `[bench] warning: of ${n} tests, ${rowCheck.matched} are in both runs and ${rowCheck.differing} of those differ; ` +
            `the floor's rows are not quite the ingest's. First difference: ${rowCheck.sample ?? "none"}`,
        );
      }

      const summary = /** @type {const} */ (["ingest", "floor"]).map((method) => {
        const list = rounds[method];
        const rates = list.map((x) => (n * 1000) / x.ms);
        const calls = list.map((x) => x.d1Calls).filter((c) => !Number.isNaN(c));
        return {
          method,
          median: median(rates),
          min: Math.min(...rates),
          max: Math.max(...rates),
          seconds: median(list.map((x) => x.ms / 1000)),
          d1Calls: calls.length > 0 ? median(calls) : NaN,
          d1Range: calls.length > 0 ? [Math.min(...calls), Math.max(...calls)] : [],
        };
      });
      /** @param {(x: Round) => number | undefined} pick @returns {number[] | undefined} every ingest round's value, if each has one */
      const ingestValues = (pick) => {
        const values = /** @type {number[]} */ (rounds.ingest.map(pick).filter((v) => v !== undefined));
        return values.length === rounds.ingest.length ? values : undefined;
      };
      /** @param {(x: Round) => number | undefined} pick */
      const ingestMedian = (pick) => {
        const values = ingestValues(pick);
        return values ? median(values) : undefined;
      };
      // Round r's ingest against round r's floor: the two ran next to each other.
      const ratios = rounds.ingest.map((x, r) => /** @type {Round} */ (rounds.floor[r]).ms / x.ms);
      const ratio = spread(ratios);
      const met = ratio.value >= TARGET_RATIO;

      console.log("");
      console.log(`ingest: ${n} results, ${options.rounds} round(s) each, alternating, ${server.baseUrl}`);
      console.log(serverNote);
      printTable([
        ["method", "results/s median", "min", "max", "s median", "D1 calls"],
        ...summary.map((s) => [
          s.method === "ingest" ? `ingest  POST ${n > SYNC_MAX_RESULTS ? "202 + poll" : "201"}` : `floor   D1 batch(), ${FLOOR_ROWS_PER_STATEMENT} rows/statement`,
          s.median.toFixed(0),
          s.min.toFixed(0),
          s.max.toFixed(0),
          s.seconds.toFixed(2),
          s.d1Range.length === 0 ? "?" : s.d1Range[0] === s.d1Range[1] ? String(s.d1Calls) : `${s.d1Range[0]}-${s.d1Range[1]}`,
        ]),
      ]);
      const post = ingestMedian((x) => x.postMs);
      const queued = ingestMedian((x) => x.queuedMs);
      const processing = ingestMedian((x) => x.processingMs);
      if (post !== undefined) {
        const part = (/** @type {number | undefined} */ x) => (x === undefined ? "?" : (x / 1000).toFixed(2));
        console.log(`ingest phases (medians, s): POST ${part(post)}, queued ${part(queued)}, processing ${part(processing)} (server clock)`);
      }
      console.log(
        `ingest / floor (median of the rounds' ratios): ${ratio.value.toFixed(3)} [${ratio.min.toFixed(3)}–${ratio.max.toFixed(3)}]; ` +
          `target >= ${TARGET_RATIO}: ${met ? "met" : "NOT met"}`,
      );
      console.log(
        `row check (last round of each): ${rowCheck.matched} of ${n} tests in both runs, ${rowCheck.differing} differing` +
          (rowCheck.matched === n && rowCheck.differing === 0 ? " (the floor wrote the ingest's values)" : ""),
      );
      console.log("");

      emit({ bench: BENCH, figure: "results", value: n });
      emit({ bench: BENCH, figure: "rounds", value: options.rounds });
      for (const method of /** @type {const} */ (["ingest", "floor"])) {
        const list = rounds[method];
        emit({ bench: BENCH, figure: `${method}_results_per_s`, ...spread(list.map((x) => (n * 1000) / x.ms), 1) });
        emit({ bench: BENCH, figure: `${method}_seconds`, ...spread(list.map((x) => x.ms / 1000), 3) });
        const calls = list.map((x) => x.d1Calls).filter((c) => !Number.isNaN(c));
        if (calls.length > 0) emit({ bench: BENCH, figure: `${method}_d1_calls`, ...spread(calls) });
      }
      /** @type {[string, number[] | undefined, number][]} figure, values, divisor */
      const phaseFigures = [
        ["ingest_chunks", ingestValues((x) => x.chunks), 1],
        ["ingest_post_seconds", ingestValues((x) => x.postMs), 1000],
        ["ingest_queued_seconds", ingestValues((x) => x.queuedMs), 1000],
        ["ingest_processing_seconds", ingestValues((x) => x.processingMs), 1000],
      ];
      for (const [figure, values, divisor] of phaseFigures) {
        if (values !== undefined) emit({ bench: BENCH, figure, ...spread(values.map((v) => v / divisor), 3) });
      }
      emit({ bench: BENCH, figure: "ratio", ...spread(ratios, 4), target: TARGET_RATIO, ok: met });
      emit({ bench: BENCH, figure: "rows_differing", value: n - rowCheck.matched + rowCheck.differing });
    } finally {
      if (local) await local.dispose();
      rmSync(dir, { recursive: true, force: true });
    }
  },
});

/**
 * Where an ingest's time went, by the server's own timestamps (created_at at the POST, started_at
 * when the consumer took it, finished_at when it was done): a diagnosis, not the measurement.
 * Inside workerd the clock moves only across I/O, which the consumer does all the time.
 * @param {Record<string, unknown>} state the ingest as GET /api/v1/ingests/{id} answers it
 */
function serverPhases(state) {
  const at = (/** @type {string} */ field) => (typeof state[field] === "string" ? Date.parse(/** @type {string} */ (state[field])) : NaN);
  const created = at("created_at");
  const started = at("started_at");
  const finished = at("finished_at");
  /** @type {{ queuedMs?: number, processingMs?: number }} */
  const phases = {};
  if (Number.isFinite(created) && Number.isFinite(started)) phases.queuedMs = started - created;
  if (Number.isFinite(started) && Number.isFinite(finished)) phases.processingMs = finished - started;
  return phases;
}

/** Columns both methods write, compared test by test (JSON columns as normalized JSON). */
const COMPARED = [
  "title", "full_title", "file_path", "line_number", "status", "duration_ms", "retries", "attempt", "is_flaky",
  "steps_key", "stdout", "stdout_key", "stderr", "stderr_key",
];
const COMPARED_JSON = ["tags", "annotations", "error", "steps"];
const COMPARED_CASE = ["title", "full_title", "file_path", "line_number", "automation_id", "description"];

/**
 * Pairs the results of an ingest run with the floor run's by test identity (test cases'
 * identity_key, through the unique indexes) and counts the pairs that differ in any column.
 * @param {D1Database} db
 * @param {Round} ingestRun
 * @param {Round} floorRun
 * @returns {Promise<{ matched: number, differing: number, sample: string | null }>}
 */
async function compareRows(db, ingestRun, floorRun) {
  const differs = [
    ...COMPARED.map((c) => `i.${c} IS NOT f.${c}`),
    ...COMPARED_JSON.map((c) => `json(i.${c}) IS NOT json(f.${c})`),
    ...COMPARED_CASE.map((c) => `ti.${c} IS NOT tf.${c}`),
    "json(ti.tags) IS NOT json(tf.tags)",
  ].join(" OR ");
  const from = `FROM results i
    JOIN test_cases ti ON ti.id = i.test_case_id
    JOIN test_cases tf ON tf.project_id = ?2 AND tf.identity_key = ti.identity_key
    JOIN results f ON f.run_id = ?3 AND f.test_case_id = tf.id
    WHERE i.run_id = ?1`;
  const params = [ingestRun.runId, floorRun.projectId, floorRun.runId];
  const counts = await db.prepare(`SELECT count(*) AS matched, coalesce(sum(${differs}), 0) AS differing ${from}`).bind(...params).first();
  const columns = [...COMPARED, ...COMPARED_JSON].map((c) => `'${c}', json_array(i.${c}, f.${c})`).join(", ");
  const sample = Number(counts?.differing) > 0
    ? await db.prepare(`SELECT json_object(${columns}) AS pair ${from} AND (${differs}) LIMIT 1`).bind(...params).first()
    : null;
  /** @type {Record<string, [unknown, unknown]>} */
  const pairs = sample ? JSON.parse(String(sample.pair)) : {};
  const different = Object.entries(pairs).filter(([, [a, b]]) => JSON.stringify(a) !== JSON.stringify(b));
  const described = sample
    ? `${pairs.full_title?.[0]}: ${different.length > 0 ? different.map(([c, [a, b]]) => `${c} ingest ${JSON.stringify(a)}, floor ${JSON.stringify(b)}`).join("; ") : "in its test case"}`
    : null;
  return { matched: Number(counts?.matched ?? 0), differing: Number(counts?.differing ?? 0), sample: described };
}
