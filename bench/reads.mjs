#!/usr/bin/env node
// `npm run bench:reads`: P4 history-independent reads. Does a page of a list cost what the page
// holds, however long the history behind it?
//
// Starts a real local server (bench/lib.mjs: `--server workerd`, the built bundle under Miniflare,
// or `--server dev`, wrangler dev; local D1, a fresh temporary database, loopback only) with
// D1_METRICS=on, so that every response carries
//
//   Server-Timing: d1;desc="calls=N rows_read=R rows_written=W unmetered=U"
//
// where rows_read is D1's own meta.rows_read summed over the request's calls that return meta
// (batch, all, run) and `unmetered` counts the calls D1 answers without it (drizzle's get() and
// other single-row lookups: the API key, the project's visibility). Both are reported; the bound
// applies to rows_read, the one D1 bills.
//
// It creates an organization with a project and an API key through the admin API, then loads a
// history through the public API: `--runs` runs of `--cases` test cases, each run
//
//   POST  /api/v1/testruns {project_id, commit_sha}                   201
//   POST  /api/v1/testruns/{id}/results  1,000 results at a time      201 (accepted = the chunk)
//   PATCH /api/v1/testruns/{id} {status}                              200
//
// with the chunks of one run `LOAD_CONCURRENCY` at a time and the runs one after the other (so
// each test case's executions are in run order). About 1 test case in 16 is unstable, each with
// its own rate (spread over (0, 1]) of failing or passing on a retry ("flaky", retries 1) in a
// given run; every other test case always passes. Two runs in a row share a commit, so some
// failures are same-commit conflicts too. The resulting flakiness scores spread over [0, 1].
//
// Then it measures, each `REPEATS` times after `WARMUPS` unmeasured request(s):
//
//   flakiness_list         GET /api/v1/projects/{id}/flakiness?limit=P                 first page
//   flakiness_list_offset  GET /api/v1/projects/{id}/flakiness?limit=P&offset=O        a later page:
//                          offset pagination walks O + P index entries, so this one is
//                          reported against the same bound but not expected to meet it
//   reporting_flakiness    GET /api/flakiness?projectId={id}                           its default page
//   testcase_history       GET /api/v1/testcases/{tc}/history?limit=P                  the top test case
//                          of the flakiness list (the route has a fixed length and ignores limit)
//   run_results            GET /api/v1/testruns/{run}/results?limit=P                  the last run
//
// For each figure: rows_read (median, min, max), rows_read ÷ page size, unmetered calls, D1
// calls, latency in ms (median, min, max), and PASS when the largest rows_read is at most
// 3 × page size, where the page size is the number of items the route answered with. Prints a
// table, then one JSON line per figure. Exits 1 if the server sends no D1 Server-Timing header
// (a tree without D1_METRICS); a figure over its bound is reported, not an error.
//
// Options (flag or environment variable; defaults in brackets):
//   --cases N             BENCH_CASES             test cases per run [5000], at most 20000
//   --runs N              BENCH_RUNS              runs loaded [50], at most 500
//   --page N              BENCH_PAGE              page size of the measured lists [50], at most 100
//   --offset N            BENCH_OFFSET            offset of the later flakiness page [1000]; lowered
//                                                 (and said so) when the list is shorter
//   --max-load-seconds N  BENCH_MAX_LOAD_SECONDS  abort the loading phase after this long [1800]
//   --server, --pin                               see bench/lib.mjs: which server [workerd], CPU pinning
//
// Plain Node ESM without dependencies (Node 20 and later); the shared parts are in bench/lib.mjs.
// Not part of `npm test`.

import { BenchError, UsageError, createOrganization, d1Cost, emit, median, printTable, readIntOptions, request, round, runBenchmark } from "./lib.mjs";

const BENCH = "reads";
const CHUNK = 1000;
const LOAD_CONCURRENCY = 2;
const WARMUPS = 1;
const REPEATS = 3;
const BOUND_FACTOR = 3;
/** A measured read; a list over a long history on a busy machine can take a while. */
const READ_TIMEOUT_MS = 30_000;
/** A 1,000-result submission refreshes 1,000 flakiness scores; this only catches a hang. */
const SUBMIT_TIMEOUT_MS = 120_000;
const CASES_PER_AREA = 100;
/** One test case in UNSTABLE_EVERY is unstable. */
const UNSTABLE_EVERY = 16;

/** The largest value each option takes, keyed by its flag. */
const LIMITS = {
  cases: 20_000,
  runs: 500,
  page: 100,
  offset: 1_000_000,
  "max-load-seconds": 24 * 3600,
};

const readOptions = () => {
  const options = readIntOptions({
    cases: { flag: "cases", env: "BENCH_CASES", fallback: 5000, min: 1 },
    runs: { flag: "runs", env: "BENCH_RUNS", fallback: 50, min: 1 },
    page: { flag: "page", env: "BENCH_PAGE", fallback: 50, min: 1 },
    offset: { flag: "offset", env: "BENCH_OFFSET", fallback: 1000, min: 0 },
    maxLoadSeconds: { flag: "max-load-seconds", env: "BENCH_MAX_LOAD_SECONDS", fallback: 1800, min: 1 },
  });
  const values = { cases: options.cases, runs: options.runs, page: options.page, offset: options.offset, "max-load-seconds": options.maxLoadSeconds };
  for (const [flag, max] of Object.entries(LIMITS)) {
    const value = values[/** @type {keyof typeof LIMITS} */ (flag)];
    if (value > max) throw new UsageError(`--${flag} must be at most ${max} (got ${value})`);
  }
  return options;
};

/**
 * A 32-bit mix of two integers (a small integer hash): the same inputs always give the same
 * outcome, so every load of the same size has the same history.
 * @param {number} a @param {number} b
 */
function mix(a, b) {
  let h = Math.imul(a ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(b + 0x632be59b, 0xc2b2ae35);
  h ^= h >>> 16;
  h = Math.imul(h, 0x7feb352d);
  h ^= h >>> 15;
  h = Math.imul(h, 0x846ca68b);
  h ^= h >>> 16;
  return h >>> 0;
}

/**
 * The outcome of test case `index` in run `run`: unstable test cases fail or pass on a retry at
 * a rate of their own, spread over (0, 1] across them; the rest always pass.
 * @param {number} index @param {number} run
 * @returns {"passed" | "failed" | "flaky"}
 */
function outcome(index, run) {
  if (index % UNSTABLE_EVERY !== 3) return "passed";
  const unstable = Math.floor(index / UNSTABLE_EVERY);
  const rate = ((unstable * 37) % 97 + 1) / 97;
  const draw = mix(index, run);
  if (draw / 2 ** 32 >= rate) return "passed";
  return mix(run, index) % 2 === 0 ? "failed" : "flaky";
}

/**
 * The body of one submission: test cases [from, to) in run `run`.
 * @param {number} run @param {number} from @param {number} to
 * @returns {{ body: string, size: number, failed: number }}
 */
function chunkBody(run, from, to) {
  const results = [];
  let failed = 0;
  for (let i = from; i < to; i++) {
    const area = Math.floor(i / CASES_PER_AREA);
    const status = outcome(i, run);
    if (status === "failed") failed++;
    results.push({
      title: `case ${i}`,
      full_title: `Area ${area} > case ${i}`,
      file_path: `tests/area-${area}.spec.ts`,
      status,
      duration: 5 + ((i * 7 + run * 3) % 40),
      ...(status === "flaky" ? { retries: 1 } : {}),
    });
  }
  return { body: JSON.stringify({ results }), size: to - from, failed };
}

/** A commit per pair of runs, as a re-run of the same commit would have. @param {number} run */
const commitOf = (run) => mix(Math.floor(run / 2), 7).toString(16).padStart(8, "0").repeat(5);

/**
 * @typedef {object} Figure
 * @property {string} name
 * @property {string} path
 * @property {number} page items the route answered with (the bound's page size)
 * @property {number[]} rowsRead one per measured request
 * @property {number[]} unmetered
 * @property {number[]} calls
 * @property {number[]} ms
 * @property {string} [note]
 */

/**
 * @param {{ base: URL, agent: http.Agent }} ctx
 * @param {ReturnType<typeof readOptions>} options
 */
async function body({ base, agent, serverNote }, options) {
  const { projectId, apiKey } = await createOrganization(agent, base, { name: "Reads bench organization", projectName: "Reads bench project" });
  const headers = { accept: "application/json", "content-type": "application/json", authorization: `Bearer ${apiKey}` };
  const readHeaders = { accept: "application/json", authorization: `Bearer ${apiKey}` };

  // Before loading minutes of history: is this a server that reports its D1 cost?
  const probePath = `/api/v1/projects/${encodeURIComponent(projectId)}`;
  d1Cost((await request(agent, base, "GET", probePath, readHeaders, undefined, 200, READ_TIMEOUT_MS)).headers, probePath);

  /** @type {[number, number][]} */
  const chunks = [];
  for (let from = 0; from < options.cases; from += CHUNK) chunks.push([from, Math.min(options.cases, from + CHUNK)]);
  const totalResults = options.cases * options.runs;
  console.error(
    `[bench] loading ${options.runs} runs × ${options.cases} test cases (${totalResults} results, ` +
      `${chunks.length} submissions per run, ${LOAD_CONCURRENCY} at a time; cap ${options.maxLoadSeconds} s)`,
  );
  const loadStarted = performance.now();
  const loadDeadline = loadStarted + options.maxLoadSeconds * 1000;
  const checkDeadline = () => {
    if (performance.now() > loadDeadline) {
      throw new BenchError(
        `loading took longer than --max-load-seconds ${options.maxLoadSeconds}; run with fewer --cases or --runs, or a larger --max-load-seconds`,
      );
    }
  };

  /** @type {string | undefined} */
  let lastRunId;
  for (let run = 0; run < options.runs; run++) {
    checkDeadline();
    const created = await request(agent, base, "POST", "/api/v1/testruns", headers, JSON.stringify({ project_id: projectId, commit_sha: commitOf(run) }), 201);
    const runId = JSON.parse(created.text)?.id;
    if (typeof runId !== "string") throw new BenchError(`unexpected run answer: ${created.text.slice(0, 2000)}`);
    let failed = 0;
    let next = 0;
    const worker = async () => {
      while (next < chunks.length) {
        checkDeadline();
        const [from, to] = /** @type {[number, number]} */ (chunks[next++]);
        const chunk = chunkBody(run, from, to);
        const path = `/api/v1/testruns/${encodeURIComponent(runId)}/results`;
        const { text } = await request(agent, base, "POST", path, headers, chunk.body, 201, SUBMIT_TIMEOUT_MS);
        const accepted = JSON.parse(text)?.accepted;
        if (accepted !== chunk.size) throw new BenchError(`POST ${path}: expected accepted ${chunk.size}, got ${text.slice(0, 500)}`);
        failed += chunk.failed;
      }
    };
    await Promise.all(Array.from({ length: Math.min(LOAD_CONCURRENCY, chunks.length) }, worker));
    await request(agent, base, "PATCH", `/api/v1/testruns/${encodeURIComponent(runId)}`, headers, JSON.stringify({ status: failed > 0 ? "failed" : "passed" }), 200);
    lastRunId = runId;
    const elapsed = (performance.now() - loadStarted) / 1000;
    const eta = (elapsed / (run + 1)) * (options.runs - run - 1);
    console.error(`[bench] run ${run + 1}/${options.runs} loaded (${failed} failed) after ${elapsed.toFixed(1)} s, about ${eta.toFixed(0)} s to go`);
  }
  const loadSeconds = (performance.now() - loadStarted) / 1000;
  console.error(`[bench] loaded ${totalResults} results in ${loadSeconds.toFixed(1)} s (${(totalResults / loadSeconds).toFixed(0)} results/s)`);
  if (!lastRunId) throw new Error("internal: no run loaded");

  const pid = encodeURIComponent(projectId);
  const P = options.page;

  // The flakiness list: its total, its top test case, and how far a later page can go.
  const first = JSON.parse((await request(agent, base, "GET", `/api/v1/projects/${pid}/flakiness?limit=${P}`, readHeaders, undefined, 200, READ_TIMEOUT_MS)).text);
  const scored = first?.pagination?.total;
  const top = first?.data?.[0];
  if (typeof scored !== "number" || !top || typeof top.test_case_id !== "string") {
    throw new BenchError(`unexpected flakiness list: ${JSON.stringify(first).slice(0, 2000)}`);
  }
  const scores = /** @type {{ flakiness_score: number | null }[]} */ (first.data).map((i) => i.flakiness_score);
  console.error(`[bench] flakiness list: ${scored} scored test cases; first page scores ${scores[0]} … ${scores.at(-1)}; summary ${JSON.stringify(first.summary)}`);
  let offset = options.offset;
  let offsetNote;
  if (offset + P > scored) {
    offset = Math.max(0, scored - P);
    offsetNote = `offset lowered from ${options.offset} to ${offset}: the list holds ${scored}`;
    console.error(`[bench] ${offsetNote}`);
  }

  /** @type {{ name: string, path: string, items: (answer: any) => unknown[], note?: string }[]} */
  const targets = [
    { name: "flakiness_list", path: `/api/v1/projects/${pid}/flakiness?limit=${P}`, items: (a) => a.data },
    {
      name: "flakiness_list_offset",
      path: `/api/v1/projects/${pid}/flakiness?limit=${P}&offset=${offset}`,
      items: (a) => a.data,
      note: `offset ${offset}: reads offset + limit index entries; not expected to meet the bound${offsetNote ? `; ${offsetNote}` : ""}`,
    },
    { name: "reporting_flakiness", path: `/api/flakiness?projectId=${pid}`, items: (a) => a.data },
    {
      name: "testcase_history",
      path: `/api/v1/testcases/${encodeURIComponent(top.test_case_id)}/history?limit=${P}`,
      items: (a) => a.data,
    },
    { name: "run_results", path: `/api/v1/testruns/${encodeURIComponent(lastRunId)}/results?limit=${P}`, items: (a) => a.data },
  ];

  /** @type {Figure[]} */
  const figures = [];
  for (const target of targets) {
    /** @type {Figure} */
    const figure = { name: target.name, path: target.path, page: 0, rowsRead: [], unmetered: [], calls: [], ms: [], note: target.note };
    for (let i = 0; i < WARMUPS + REPEATS; i++) {
      const answer = await request(agent, base, "GET", target.path, readHeaders, undefined, 200, READ_TIMEOUT_MS);
      const cost = d1Cost(answer.headers, target.path);
      const items = target.items(JSON.parse(answer.text));
      if (!Array.isArray(items)) throw new BenchError(`GET ${target.path}: no data array in ${answer.text.slice(0, 500)}`);
      if (i < WARMUPS) {
        figure.page = items.length;
        continue;
      }
      figure.rowsRead.push(cost.rowsRead);
      figure.unmetered.push(cost.unmetered);
      figure.calls.push(cost.calls);
      figure.ms.push(answer.ms);
    }
    if (figure.page === 0) throw new BenchError(`GET ${target.path}: an empty page says nothing about its cost`);
    if (target.name === "reporting_flakiness" && figure.page !== P) {
      figure.note = `its default page is ${figure.page} items (limit not passed)`;
    }
    if (target.name === "testcase_history" && figure.page !== P) {
      figure.note = `the route answers the last ${figure.page} executions and ignores limit (the test case has ${options.runs})`;
    }
    figures.push(figure);
  }

  console.log("");
  console.log(
    `reads: ${options.runs} runs × ${options.cases} test cases (${totalResults} results) loaded in ${loadSeconds.toFixed(1)} s; ` +
      `page ${P}; ${REPEATS} measured after ${WARMUPS} warm-up; bound rows_read ≤ ${BOUND_FACTOR} × page`,
  );
  console.log(serverNote);
  printTable([
    ["figure", "page", "rows_read med", "min", "max", "÷ page", "bound", "", "unmetered", "calls", "ms med", "min", "max"],
    ...figures.map((f) => {
      const bound = BOUND_FACTOR * f.page;
      const worst = Math.max(...f.rowsRead);
      return [
        f.name,
        String(f.page),
        String(median(f.rowsRead)),
        String(Math.min(...f.rowsRead)),
        String(worst),
        (median(f.rowsRead) / f.page).toFixed(2),
        String(bound),
        worst <= bound ? "PASS" : "FAIL",
        String(median(f.unmetered)),
        String(median(f.calls)),
        median(f.ms).toFixed(1),
        Math.min(...f.ms).toFixed(1),
        Math.max(...f.ms).toFixed(1),
      ];
    }),
  ]);
  for (const f of figures) if (f.note) console.log(`  ${f.name}: ${f.note}`);
  console.log("");

  emit({ bench: BENCH, figure: "load_seconds", value: round(loadSeconds, 1), results: totalResults, cases: options.cases, runs: options.runs });
  for (const f of figures) {
    const bound = BOUND_FACTOR * f.page;
    const value = median(f.rowsRead);
    emit({
        bench: BENCH,
        figure: `${f.name}_rows_read`,
        value,
        page: f.page,
        bound,
        ok: Math.max(...f.rowsRead) <= bound,
        per_item: round(value / f.page, 2),
        min: Math.min(...f.rowsRead),
        max: Math.max(...f.rowsRead),
        unmetered: median(f.unmetered),
        calls: median(f.calls),
        ms_median: round(median(f.ms), 1),
        ms_min: round(Math.min(...f.ms), 1),
        ms_max: round(Math.max(...f.ms), 1),
        ...(f.note ? { note: f.note } : {}),
      });
  }
}

// The server reports each request's D1 cost only with D1_METRICS=on.
runBenchmark({ readOptions, maxSockets: () => LOAD_CONCURRENCY * 2 + 2, body, vars: { D1_METRICS: "on" } });
