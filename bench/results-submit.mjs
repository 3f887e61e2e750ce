#!/usr/bin/env node
// `npm run bench:results`: what recording results costs, and how much batching saves.
//
// Submitting results is the product's hottest write path: every CI job of every customer ends in
// POST /api/v1/testruns/{id}/results. This starts a real local server (bench/lib.mjs:
// `--server workerd`, the built bundle under Miniflare, or `--server dev`, wrangler dev; local D1,
// a fresh temporary database), creates an organization with a project and
// an API key, and then drives, over loopback at a fixed concurrency:
//
//   batch1000  POST /api/v1/testruns/{id}/results with 1,000 results (the most one request takes)
//   batch10    POST /api/v1/testruns/{id}/results with 10 results
//
// in alternating rounds (A B, B A, ...), so that machine noise and drift hit both alike. Every
// submission goes to a run of its own, created just before its round and outside the timing, so
// each result is an insert, never a replacement. Both sizes report the same tests (the 10 are the
// first 10 of the 1,000), and warm-up submissions of each size come first, so the measured ones
// find their test cases and suites already there, as a project's second and later runs do.
// Every answer is checked (201, `accepted` equal to the batch size); anything else aborts with
// its body. At the end one 1,000-result run is read back (GET /api/v1/testruns/{id}) and the
// benchmark fails unless its total_tests is 1000.
//
// Prints a table (submissions, submissions/s, results/s, p50/p90/p99 latency per submission in
// ms), the per-result cost ratio (p50(1000)/1000) / (p50(10)/10) (well under 1: batching
// amortizes the fixed cost of a request) and p50(1000)/p50(10), then one JSON line per figure.
//
// Options (flag or environment variable; defaults in brackets):
//   --big N           BENCH_BIG           measured submissions of 1,000 results [10]
//   --small N         BENCH_SMALL         measured submissions of 10 results [100]
//   --concurrency N   BENCH_CONCURRENCY   submissions in flight [2]
//   --warmup N        BENCH_WARMUP        unmeasured submissions of each size first [2]
//   --rounds N        BENCH_ROUNDS        alternating rounds the submissions are spread over [5]
//   --max-seconds N   BENCH_MAX_SECONDS   hard cap on the measured phase [60]
//   --server, --pin                       see bench/lib.mjs: which server [workerd], CPU pinning
//
// Plain Node ESM without dependencies (Node 20 and later); the shared parts are in bench/lib.mjs.
// Not part of `npm test`.

import { BenchError, createOrganization, drive, printFigures, printTable, readIntOptions, request, round, runBenchmark, summarize } from "./lib.mjs";

const BENCH = "results-submit";
const BIG = 1000;
const SMALL = 10;
/** A 1,000-result submission on a busy 2-core machine can take seconds; this only catches a hang. */
const SUBMIT_TIMEOUT_MS = 60_000;

/**
 * @typedef {object} Batch
 * @property {string} name
 * @property {number} size results per submission
 * @property {number} want measured submissions
 * @property {string} body the JSON body, the same for every submission of this size
 * @property {number[]} latencies ms, one per measured submission
 * @property {number} elapsedMs wall time of this size's measured submissions, summed over rounds
 * @property {string[]} runIds runs that received a measured submission
 */

const readOptions = () =>
  readIntOptions({
    big: { flag: "big", env: "BENCH_BIG", fallback: 10, min: 1 },
    small: { flag: "small", env: "BENCH_SMALL", fallback: 100, min: 1 },
    concurrency: { flag: "concurrency", env: "BENCH_CONCURRENCY", fallback: 2, min: 1 },
    warmup: { flag: "warmup", env: "BENCH_WARMUP", fallback: 2, min: 0 },
    rounds: { flag: "rounds", env: "BENCH_ROUNDS", fallback: 5, min: 1 },
    maxSeconds: { flag: "max-seconds", env: "BENCH_MAX_SECONDS", fallback: 60, min: 1 },
  });

const STATUSES = /** @type {const} */ (["passed", "failed", "skipped", "flaky"]);

/**
 * A report of `count` tests as a Playwright reporter would send it: 50 tests per file in five
 * describe groups, mostly passed with some failed, skipped and flaky ones, one step and a line of
 * output each. Deterministic, so every submission of one size reports the same tests.
 * @param {number} count
 */
function resultsBody(count) {
  const results = Array.from({ length: count }, (_, index) => {
    const n = index + 1;
    const file = Math.ceil(n / 50);
    const group = Math.ceil((((n - 1) % 50) + 1) / 10);
    const status = n % 97 === 0 ? STATUSES[3] : n % 31 === 0 ? STATUSES[2] : n % 23 === 0 ? STATUSES[1] : STATUSES[0];
    return {
      title: `case ${n}`,
      full_title: `File ${file} > Group ${group} > case ${n}`,
      file_path: `tests/f${file}.spec.ts`,
      status,
      duration: 100 + ((n * 37) % 900),
      steps: [{ title: "s", category: "action", status: status === "failed" ? "failed" : "passed", duration: 1 }],
      stdout: `case ${n}: navigated, clicked, asserted\n`,
    };
  });
  return JSON.stringify({ results });
}

runBenchmark({
  readOptions,
  maxSockets: (options) => options.concurrency,
  body: async ({ server, base, agent, serverNote }, options) => {
    const { projectId, apiKey } = await createOrganization(agent, base);
    const headers = { accept: "application/json", "content-type": "application/json", authorization: `Bearer ${apiKey}` };
    const createRunBody = JSON.stringify({ project_id: projectId });

    /** @returns {Promise<string>} the new run's id */
    const createRun = async () => {
      const { text } = await request(agent, base, "POST", "/api/v1/testruns", headers, createRunBody, 201);
      const id = JSON.parse(text)?.id;
      if (typeof id !== "string") throw new Error(`unexpected run answer: ${text.slice(0, 2000)}`);
      return id;
    };

    /** @param {Batch} batch @param {string} runId @returns {Promise<number>} latency in ms */
    const submit = async (batch, runId) => {
      const path = `/api/v1/testruns/${encodeURIComponent(runId)}/results`;
      const { ms, text } = await request(agent, base, "POST", path, headers, batch.body, 201, SUBMIT_TIMEOUT_MS);
      const answer = JSON.parse(text);
      if (answer?.accepted !== batch.size || answer?.superseded !== 0) {
        throw new BenchError(`POST ${path}: expected accepted ${batch.size}, superseded 0; got ${text.slice(0, 500)}`);
      }
      return ms;
    };

    /**
     * `count` submissions of one size, each to a run created first (untimed, at the same
     * concurrency); stops at `deadline`. Returns the timing of the submissions only.
     * @param {Batch} batch @param {number} count @param {number} deadline
     */
    const submitMany = async (batch, count, deadline) => {
      /** @type {string[]} */
      const runIds = [];
      await drive(count, options.concurrency, deadline, async () => {
        runIds.push(await createRun());
        return 0;
      });
      const measured = await drive(runIds.length, options.concurrency, deadline, (i) => submit(batch, /** @type {string} */ (runIds[i])));
      return { ...measured, runIds: runIds.slice(0, measured.latencies.length) };
    };

    /** @type {Batch[]} */
    const batches = [
      { name: "batch1000", size: BIG, want: options.big, body: resultsBody(BIG), latencies: [], elapsedMs: 0, runIds: [] },
      { name: "batch10", size: SMALL, want: options.small, body: resultsBody(SMALL), latencies: [], elapsedMs: 0, runIds: [] },
    ];

    // Warm-up: JIT, connections, the key's first last_used_at write, and the project's test
    // cases and suites, which the first submission of a test creates and later ones only find.
    if (options.warmup > 0) {
      for (const batch of batches) await submitMany(batch, options.warmup, Infinity);
    }

    const deadline = performance.now() + options.maxSeconds * 1000;
    let capped = false;
    console.error(
      `[bench] ${options.big} submissions of ${BIG} results and ${options.small} of ${SMALL}, ` +
        `concurrency ${options.concurrency}, ${options.rounds} rounds, cap ${options.maxSeconds} s ` +
        `(bodies ${(Buffer.byteLength(batches[0]?.body ?? "") / 1024).toFixed(0)} KiB and ` +
        `${(Buffer.byteLength(batches[1]?.body ?? "") / 1024).toFixed(1)} KiB)`,
    );
    for (let r = 0; r < options.rounds && !capped; r++) {
      // A B, then B A, ...: neither size always goes first.
      const order = r % 2 === 0 ? batches : [...batches].reverse();
      for (const batch of order) {
        // Spread each size evenly over the rounds; later rounds take what is left.
        const want = Math.min(Math.ceil(batch.want / options.rounds), batch.want - batch.latencies.length);
        if (want <= 0) continue;
        const { latencies, elapsedMs, runIds } = await submitMany(batch, want, deadline);
        batch.latencies.push(...latencies);
        batch.elapsedMs += elapsedMs;
        batch.runIds.push(...runIds);
        if (latencies.length < want) capped = true;
      }
    }
    if (capped) console.error(`[bench] hit the ${options.maxSeconds} s cap: figures cover fewer submissions`);

    const [big, small] = batches;
    if (!big || !small) throw new Error("internal: expected two batch sizes");
    if (big.latencies.length === 0 || small.latencies.length === 0) {
      throw new BenchError(`no measured submission of ${big.latencies.length === 0 ? BIG : SMALL} results within ${options.maxSeconds} s`);
    }

    // Correctness: a run that took 1,000 results says it holds 1,000 tests.
    const checkedRun = /** @type {string} */ (big.runIds[big.runIds.length - 1]);
    const readBack = await request(agent, base, "GET", `/api/v1/testruns/${encodeURIComponent(checkedRun)}`, headers);
    const totalTests = JSON.parse(readBack.text)?.total_tests;
    if (totalTests !== BIG) {
      throw new BenchError(`GET /api/v1/testruns/${checkedRun}: expected total_tests ${BIG}, got ${JSON.stringify(totalTests)}`);
    }

    const results = batches.map((batch) => {
      const stats = summarize(batch);
      return { batch, stats, resultsPerSecond: stats.rps * batch.size };
    });
    const [b, s] = results;
    if (!b || !s) throw new Error("internal: expected two result sets");
    const perResultRatio = b.stats.p50 / BIG / (s.stats.p50 / SMALL);
    const p50Ratio = b.stats.p50 / s.stats.p50;

    console.log("");
    console.log(`results-submit: concurrency ${options.concurrency}, ${server.baseUrl}${capped ? " (time cap hit)" : ""}`);
    console.log(serverNote);
    printTable([
      ["batch", "count", "subm/s", "results/s", "p50 ms", "p90 ms", "p99 ms"],
      ...results.map(({ batch, stats, resultsPerSecond }) => [
        `${batch.name}  ${batch.size} results`,
        String(stats.count),
        stats.rps.toFixed(1),
        resultsPerSecond.toFixed(0),
        stats.p50.toFixed(1),
        stats.p90.toFixed(1),
        stats.p99.toFixed(1),
      ]),
    ]);
    console.log(`per-result cost (p50(${BIG})/${BIG}) / (p50(${SMALL})/${SMALL}): ${perResultRatio.toFixed(3)}`);
    console.log(`p50 ratio ${BIG}/${SMALL}: ${p50Ratio.toFixed(2)}`);
    console.log(`read back: run ${checkedRun} has total_tests ${totalTests}`);
    console.log("");

    /** @type {[string, number][]} */
    const figures = [["concurrency", options.concurrency]];
    for (const { batch, stats, resultsPerSecond } of results) {
      figures.push(
        [`${batch.name}_count`, stats.count],
        [`${batch.name}_submissions_per_s`, round(stats.rps, 2)],
        [`${batch.name}_results_per_s`, round(resultsPerSecond, 1)],
        [`${batch.name}_p50_ms`, round(stats.p50, 3)],
        [`${batch.name}_p90_ms`, round(stats.p90, 3)],
        [`${batch.name}_p99_ms`, round(stats.p99, 3)],
      );
    }
    figures.push(["per_result_ratio", round(perResultRatio, 4)], ["p50_ratio", round(p50Ratio, 3)]);
    printFigures(BENCH, figures);
  },
});
