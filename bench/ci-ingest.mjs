#!/usr/bin/env node
// `npm run bench:ci`: P1 CI-shaped ingest (issue 12). How many tests a second does the server take
// when CI jobs report the way a Playwright reporter does: one run per spec file, its results, and
// the run's final status?
//
// Starts a real local server (bench/lib.mjs: `--server workerd`, the built bundle under Miniflare,
// or `--server dev`, wrangler dev; local D1, a fresh temporary database, loopback only,
// RATE_LIMITS=off), creates an organization with a project and
// an API key through the admin API, and then drives, from `--concurrency` clients at once, specs
// of three shapes. A spec is
//
//   POST  /api/v1/testruns {project_id, ci_build_id, run_title}              create    201
//   POST  /api/v1/testruns/{id}/results {results: [N Playwright-like results]}  results 201
//   PATCH /api/v1/testruns/{id} {status: "passed" | "failed"}                 complete  200
//
// with N = 10 (the workload of the issue: `--specs` specs), 100 (`--specs-100`) and 1,000
// (`--specs-1000`), each shape reporting the same number of tests by default, so each takes
// similar time. A client sends its spec's three requests one after the other and then takes the
// next spec. Every answer is checked: the status code, `accepted` equal to N, and the completed
// run's total_tests equal to N and its status the one sent; anything else aborts with its body.
//
// The test suite is fixed and recurs, as in CI: test t belongs to file t/10, and spec i of shape
// N reports tests [i*N, (i+1)*N). Before any timing, one untimed seed run reports every test of
// the suite once (1,000 a request), so measured submissions find their test cases and suites,
// as every CI run after a project's first does; every round then adds one execution per test
// and shape. Each result's status is drawn from (test, round, shape): about 2% failed (with an
// error message), 2% flaky (retries 1), 3% skipped, the rest passed; durations 50–3,000 ms. A
// spec with a failed result completes "failed", else "passed". Request bodies are built before
// a shape's timed phase, so the client's JSON work stays out of it.
//
// Warm-up (excluded): `--warmup` specs of 10 results, then a tenth of that (at least one) of 100
// and a hundredth (at least one) of 1,000. Then `--rounds` rounds; each round runs every shape
// once and also `--livez` requests of GET /livez (no auth, no D1: the ceiling of the local
// server on this machine), in an order rotated each round (A B C D, B C D A, ...) so machine
// noise and drift hit all alike. Before each item the benchmark waits until the server is idle
// again: until 10 probes in a row (GET /api/v1/projects/{id}, 100 ms apart) answer within twice
// their idle p50 (timed before the seed), at most 60 s, so that the outbox flushes and the queued
// webhook fan-out an item leaves behind are not billed to the next one. Each figure is the median
// of the rounds with min and max:
//
//   tests/s      tests of the shape's specs ÷ the wall time from its first request to its last answer
//   requests/s   3 × specs ÷ the same time
//   p50, p99     latency of each request kind (create, results, complete) and of all three together
//
// and `ratio_vs_peer_10` = tests/s of the 10-result shape ÷ 4,350, the middle of what an
// in-memory peer server (no durable writes) does on this workload on this machine (about
// 4,000–4,700 tests/s, issue 12).
//
// With `--d1-metrics 1` the server also runs with D1_METRICS=on and, after the rounds, a few specs
// of each shape go one at a time, reading each answer's Server-Timing header
// (calls, rows_read, rows_written, unmetered) per request kind. D1 work a request leaves to
// waitUntil (the outbox flush) or to the queue (webhook fan-out) is not in that header.
//
// Options (flag or environment variable; defaults in brackets):
//   --specs N          BENCH_SPECS          10-result specs per round [2000]
//   --specs-100 N      BENCH_SPECS_100      100-result specs per round [0 = specs ÷ 10]
//   --specs-1000 N     BENCH_SPECS_1000     1,000-result specs per round [0 = specs ÷ 100, at least 1]
//   --concurrency N    BENCH_CONCURRENCY    clients, each with one spec in flight [16]
//   --warmup N         BENCH_WARMUP         unmeasured 10-result specs first [50]
//   --rounds N         BENCH_ROUNDS         rounds; each figure is their median [3]
//   --livez N          BENCH_LIVEZ          GET /livez per round, 0 to skip [2000]
//   --max-seconds N    BENCH_MAX_SECONDS    cap on the whole measured phase [1500]
//   --d1-metrics N     BENCH_D1_METRICS     1: D1_METRICS=on and the per-request D1 cost sample [0]
//   --server, --pin    see bench/lib.mjs    which server [workerd], and CPU pinning
//
// Plain Node ESM without dependencies (Node 20 and later); the shared parts are in bench/lib.mjs.
// Not part of `npm test`.

import { loadavg } from "node:os";
import {
  BIG_TIMEOUT_MS,
  BenchError,
  REQUEST_TIMEOUT_MS,
  UsageError,
  ciRequests,
  ciSeedSuite,
  ciSpec,
  createOrganization,
  d1Cost,
  drive,
  emit,
  median,
  percentile,
  printTable,
  readIntOptions,
  request,
  round,
  runBenchmark,
  spread,
} from "./lib.mjs";

const BENCH = "ci-ingest";
/** The middle of the in-memory peer's 4,000–4,700 tests/s on this workload and machine (issue 12). */
const PEER_TESTS_PER_S = 4350;
const PEER_RANGE = "4,000–4,700";
/** Specs per shape in the D1 cost sample (one at a time). */
const COST_SAMPLES = 5;
const KINDS = /** @type {const} */ (["create", "results", "complete"]);
/** Settling: probes spaced this far apart, this many quiet ones in a row, for at most this long. */
const SETTLE_INTERVAL_MS = 100;
const SETTLE_QUIET_PROBES = 10;
const SETTLE_MAX_MS = 60_000;

/** @param {number} ms */
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const load = () => loadavg().map((x) => x.toFixed(2)).join(" ");

/**
 * @typedef {object} Shape
 * @property {string} name "10", "100" or "1000"
 * @property {number} size results per spec
 * @property {number} specs measured specs per round
 * @property {number} warmup unmeasured specs before the rounds
 */

/**
 * @typedef {object} RoundStats one shape's one round
 * @property {number} specs specs finished within the cap
 * @property {number} elapsedMs
 * @property {number} testsPerS
 * @property {number} requestsPerS
 * @property {number} failedSpecs
 * @property {Record<string, { p50: number, p99: number }>} latency by kind and "overall"
 */

const readOptions = () => {
  const o = readIntOptions({
    specs: { flag: "specs", env: "BENCH_SPECS", fallback: 2000, min: 1 },
    specs100: { flag: "specs-100", env: "BENCH_SPECS_100", fallback: 0, min: 0 },
    specs1000: { flag: "specs-1000", env: "BENCH_SPECS_1000", fallback: 0, min: 0 },
    concurrency: { flag: "concurrency", env: "BENCH_CONCURRENCY", fallback: 16, min: 1 },
    warmup: { flag: "warmup", env: "BENCH_WARMUP", fallback: 50, min: 0 },
    rounds: { flag: "rounds", env: "BENCH_ROUNDS", fallback: 3, min: 1 },
    livez: { flag: "livez", env: "BENCH_LIVEZ", fallback: 2000, min: 0 },
    maxSeconds: { flag: "max-seconds", env: "BENCH_MAX_SECONDS", fallback: 1500, min: 1 },
    d1Metrics: { flag: "d1-metrics", env: "BENCH_D1_METRICS", fallback: 0, min: 0 },
  });
  if (o.d1Metrics > 1) throw new UsageError(`--d1-metrics is 0 or 1 (got ${o.d1Metrics})`);
  // The suite is 10 tests a file; more than 100,000 specs would only make the seed long.
  if (o.specs > 100_000) throw new UsageError(`--specs must be at most 100000 (got ${o.specs})`);
  return {
    ...o,
    specs100: o.specs100 || Math.max(1, Math.round(o.specs / 10)),
    specs1000: o.specs1000 || Math.max(1, Math.round(o.specs / 100)),
  };
};

/** @typedef {ReturnType<typeof readOptions>} Options */

/**
 * @param {import("./lib.mjs").BenchContext} ctx
 * @param {Options} options
 */
async function body({ server, base, agent, serverNote }, options) {
  const { projectId, apiKey } = await createOrganization(agent, base, { name: "CI bench organization", projectName: "CI bench project" });
  const headers = { accept: "application/json", "content-type": "application/json", authorization: `Bearer ${apiKey}` };
  const loadAtStart = load();

  // The idle probe: a read through the key lookup and D1, timed while the server has nothing else
  // to do. Between measured items the benchmark waits until the probe is that fast again, so the
  // outbox flushes and queued webhook fan-out one item leaves behind are not billed to the next.
  const probePath = `/api/v1/projects/${encodeURIComponent(projectId)}`;
  const probe = async () => (await request(agent, base, "GET", probePath, { accept: "application/json", authorization: `Bearer ${apiKey}` })).ms;
  /** @type {number[]} */
  const idle = [];
  for (let i = 0; i < 25; i++) idle.push(await probe());
  const idleMs = percentile([...idle.slice(5)].sort((x, y) => x - y), 50);
  const quietMs = Math.max(2 * idleMs, idleMs + 3);
  /** @type {number[]} */
  const settleTimes = [];
  const settle = async () => {
    const started = performance.now();
    let quiet = 0;
    while (quiet < SETTLE_QUIET_PROBES && performance.now() - started < SETTLE_MAX_MS) {
      quiet = (await probe()) <= quietMs ? quiet + 1 : 0;
      await sleep(SETTLE_INTERVAL_MS);
    }
    const ms = performance.now() - started;
    settleTimes.push(ms);
    if (quiet < SETTLE_QUIET_PROBES) console.error(`[bench] the server was still busy after ${SETTLE_MAX_MS / 1000} s of settling; measuring anyway`);
    return ms;
  };
  console.error(`[bench] idle probe GET ${probePath}: p50 ${idleMs.toFixed(1)} ms; settled = ${SETTLE_QUIET_PROBES} probes in a row under ${quietMs.toFixed(1)} ms`);

  /** @type {Shape[]} */
  const shapes = [
    { name: "10", size: 10, specs: options.specs, warmup: options.warmup },
    { name: "100", size: 100, specs: options.specs100, warmup: options.warmup > 0 ? Math.max(1, Math.round(options.warmup / 10)) : 0 },
    { name: "1000", size: 1000, specs: options.specs1000, warmup: options.warmup > 0 ? Math.max(1, Math.round(options.warmup / 100)) : 0 },
  ];
  const suiteSize = Math.max(...shapes.map((s) => Math.max(s.specs, s.warmup) * s.size));

  /**
   * One spec: create, results, complete; every answer checked (bench/lib.mjs ciRequests).
   * Answers the three latencies.
   * @param {import("./lib.mjs").CiSpec} b
   * @returns {Promise<{ create: number, results: number, complete: number }>}
   */
  const runSpec = async (b) => {
    const timeout = b.size >= 1000 ? BIG_TIMEOUT_MS : Math.max(REQUEST_TIMEOUT_MS, 60_000);
    const created = await ciRequests.create(agent, base, headers, b, timeout);
    const submitted = await ciRequests.results(agent, base, headers, b, created.id, timeout);
    const completed = await ciRequests.complete(agent, base, headers, b, created.id, timeout);
    return { create: created.ms, results: submitted.ms, complete: completed.ms };
  };

  // Seed: the whole suite once, so that measured specs find their test cases (CI's steady state).
  await ciSeedSuite(agent, base, headers, projectId, suiteSize);

  // Warm-up: JIT, connections, the key's last_used_at, each shape's code path.
  for (const [index, shape] of shapes.entries()) {
    if (shape.warmup === 0) continue;
    const started = performance.now();
    const bodies = Array.from({ length: shape.warmup }, (_, i) => ciSpec(shape.size, i, 1 + index, projectId, `warmup-${shape.name}`));
    await drive(shape.warmup, options.concurrency, Infinity, async (i) => {
      await runSpec(/** @type {typeof bodies[number]} */ (bodies[i]));
      return 0;
    });
    console.error(`[bench] warm-up: ${shape.warmup} specs of ${shape.size} in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  }

  /** @type {Map<string, RoundStats[]>} */
  const rounds = new Map(shapes.map((s) => [s.name, []]));
  /** @type {number[]} */
  const livezRps = [];
  /** @type {number[]} */
  const livezP50 = [];
  const deadline = performance.now() + options.maxSeconds * 1000;
  let capped = false;

  /** @param {Shape} shape @param {number} r */
  const measureShape = async (shape, r) => {
    const salt = 100 + r * 10 + shapes.indexOf(shape);
    const bodies = Array.from({ length: shape.specs }, (_, i) => ciSpec(shape.size, i, salt, projectId, `round-${r + 1}-${shape.name}`));
    /** @type {Record<string, number[]>} */
    const latency = { create: [], results: [], complete: [], overall: [] };
    let failedSpecs = 0;
    const measured = await drive(shape.specs, options.concurrency, deadline, async (i) => {
      const b = /** @type {typeof bodies[number]} */ (bodies[i]);
      const ms = await runSpec(b);
      for (const kind of KINDS) {
        latency[kind]?.push(ms[kind]);
        latency.overall?.push(ms[kind]);
      }
      if (b.status === "failed") failedSpecs++;
      return ms.create + ms.results + ms.complete;
    });
    const specs = measured.latencies.length;
    if (specs < shape.specs) capped = true;
    if (specs === 0) throw new BenchError(`no ${shape.size}-result spec finished within --max-seconds ${options.maxSeconds}`);
    const seconds = measured.elapsedMs / 1000;
    /** @type {RoundStats} */
    const stats = {
      specs,
      elapsedMs: measured.elapsedMs,
      testsPerS: (specs * shape.size) / seconds,
      requestsPerS: (specs * 3) / seconds,
      failedSpecs,
      latency: Object.fromEntries(
        Object.entries(latency).map(([kind, values]) => {
          const sorted = [...values].sort((x, y) => x - y);
          return [kind, { p50: percentile(sorted, 50), p99: percentile(sorted, 99) }];
        }),
      ),
    };
    rounds.get(shape.name)?.push(stats);
    console.error(
      `[bench] round ${r + 1}: ${specs} specs of ${shape.size} (${failedSpecs} failed) in ${seconds.toFixed(1)} s: ` +
        `${stats.testsPerS.toFixed(0)} tests/s, ${stats.requestsPerS.toFixed(0)} requests/s`,
    );
  };

  /** @param {number} r */
  const measureLivez = async (r) => {
    const measured = await drive(options.livez, options.concurrency, deadline, async () => (await request(agent, base, "GET", "/livez", { accept: "application/json" })).ms);
    const rps = (measured.latencies.length * 1000) / measured.elapsedMs;
    livezRps.push(rps);
    livezP50.push(percentile([...measured.latencies].sort((x, y) => x - y), 50));
    console.error(`[bench] round ${r + 1}: ${measured.latencies.length} GET /livez: ${rps.toFixed(0)} requests/s`);
  };

  /** @type {{ name: string, run: (r: number) => Promise<void> }[]} */
  const items = [
    ...shapes.map((shape) => ({ name: shape.name, run: (/** @type {number} */ r) => measureShape(shape, r) })),
    ...(options.livez > 0 ? [{ name: "livez", run: measureLivez }] : []),
  ];
  console.error(
    `[bench] ${options.rounds} rounds of ${shapes.map((s) => `${s.specs} specs of ${s.size}`).join(", ")}` +
      `${options.livez > 0 ? `, ${options.livez} GET /livez` : ""}; ${options.concurrency} clients; cap ${options.maxSeconds} s`,
  );
  for (let r = 0; r < options.rounds && !capped; r++) {
    const order = [...items.slice(r % items.length), ...items.slice(0, r % items.length)];
    console.error(`[bench] round ${r + 1}/${options.rounds}: ${order.map((i) => i.name).join(" ")}`);
    for (const item of order) {
      if (capped) break;
      const waited = await settle();
      if (waited > 2000) console.error(`[bench] settled for ${(waited / 1000).toFixed(1)} s`);
      await item.run(r);
    }
  }
  if (capped) console.error(`[bench] hit the ${options.maxSeconds} s cap: the last figures cover fewer specs or rounds`);

  /** @type {{ shape: Shape, kind: string, calls: number[], rowsRead: number[], rowsWritten: number[], unmetered: number[], ms: number[] }[]} */
  const costs = [];
  if (options.d1Metrics === 1) {
    for (const [index, shape] of shapes.entries()) {
      const samples = Object.fromEntries(KINDS.map((kind) => [kind, { shape, kind, calls: [], rowsRead: [], rowsWritten: [], unmetered: [], ms: [] }]));
      await settle();
      for (let i = 0; i < COST_SAMPLES; i++) {
        const b = ciSpec(shape.size, i, 900 + index, projectId, `cost-${shape.name}`);
        const created = await request(agent, base, "POST", "/api/v1/testruns", headers, b.create, 201, BIG_TIMEOUT_MS);
        const runPath = `/api/v1/testruns/${encodeURIComponent(JSON.parse(created.text).id)}`;
        const submitted = await request(agent, base, "POST", `${runPath}/results`, headers, b.results, 201, BIG_TIMEOUT_MS);
        const completed = await request(agent, base, "PATCH", runPath, headers, b.complete, 200, BIG_TIMEOUT_MS);
        for (const [kind, answer] of /** @type {const} */ ([["create", created], ["results", submitted], ["complete", completed]])) {
          const c = d1Cost(answer.headers, `${kind} (${shape.size})`);
          const s = /** @type {typeof costs[number]} */ (samples[kind]);
          s.calls.push(c.calls);
          s.rowsRead.push(c.rowsRead);
          s.rowsWritten.push(c.rowsWritten);
          s.unmetered.push(c.unmetered);
          s.ms.push(answer.ms);
        }
        // The flush and queue work a request left behind would otherwise land in the next one's time.
        await settle();
      }
      costs.push(...Object.values(samples));
      await settle();
    }
  }

  // The report.
  const fig = (/** @type {string} */ name, /** @type {number[]} */ values, /** @type {number} */ digits, extra = {}) => ({
    bench: BENCH,
    figure: name,
    ...spread(values, digits),
    ...extra,
  });
  /** @type {Record<string, unknown>[]} */
  const lines = [];
  const fmt = (/** @type {number[]} */ values, /** @type {number} */ digits) => {
    const s = spread(values);
    return `${s.value.toFixed(digits)} [${s.min.toFixed(digits)}–${s.max.toFixed(digits)}]`;
  };

  console.log("");
  console.log(
    `ci-ingest: ${options.concurrency} clients, ${options.rounds} round(s), ${server.baseUrl} (local D1, RATE_LIMITS=off)` +
      `${capped ? " (time cap hit)" : ""}; figures are median [min–max] over rounds`,
  );
  console.log(serverNote);
  console.log(
    `load average (1, 5, 15 min) at start ${loadAtStart}, at end ${load()} (2 cores: anything else running shares them); ` +
      `settling between items took ${(settleTimes.reduce((a, b) => a + b, 0) / 1000).toFixed(0)} s in all (idle probe p50 ${idleMs.toFixed(1)} ms)`,
  );
  console.log(`reference: an in-memory peer (no durable writes) does about ${PEER_RANGE} tests/s on the 10-result workload on this machine (issue 12); ratio = ours ÷ ${PEER_TESTS_PER_S}`);
  /** @type {string[][]} */
  const throughput = [["shape", "specs/round", "tests/round", "tests/s", "requests/s", "÷ 4,350", "failed specs"]];
  /** @type {string[][]} */
  const latencyRows = [["shape", "request", "p50 ms", "p99 ms"]];
  for (const shape of shapes) {
    const rs = rounds.get(shape.name) ?? [];
    if (rs.length === 0) continue;
    const tps = rs.map((s) => s.testsPerS);
    const rps = rs.map((s) => s.requestsPerS);
    throughput.push([
      `${shape.size} results/spec`,
      String(median(rs.map((s) => s.specs))),
      String(median(rs.map((s) => s.specs * shape.size))),
      fmt(tps, 0),
      fmt(rps, 1),
      fmt(tps.map((t) => t / PEER_TESTS_PER_S), 3),
      String(median(rs.map((s) => s.failedSpecs))),
    ]);
    lines.push(fig(`tests_per_s_${shape.name}`, tps, 1, { specs: median(rs.map((s) => s.specs)), rounds: rs.length }));
    lines.push(fig(`requests_per_s_${shape.name}`, rps, 1));
    lines.push(fig(`ratio_vs_peer_${shape.name}`, tps.map((t) => t / PEER_TESTS_PER_S), 4, { peer_tests_per_s: PEER_TESTS_PER_S, peer_range: PEER_RANGE }));
    for (const kind of [...KINDS, "overall"]) {
      const p50 = rs.map((s) => s.latency[kind]?.p50 ?? NaN);
      const p99 = rs.map((s) => s.latency[kind]?.p99 ?? NaN);
      latencyRows.push([`${shape.size} results/spec`, kind, fmt(p50, 1), fmt(p99, 1)]);
      lines.push(fig(`${kind}_p50_ms_${shape.name}`, p50, 2), fig(`${kind}_p99_ms_${shape.name}`, p99, 2));
    }
  }
  if (livezRps.length > 0) {
    throughput.push(["GET /livez (no auth, no D1)", "", "", "", fmt(livezRps, 0), "", ""]);
    latencyRows.push(["GET /livez", "", fmt(livezP50, 1), ""]);
    lines.push(fig("livez_requests_per_s", livezRps, 1), fig("livez_p50_ms", livezP50, 2));
  }
  printTable(throughput);
  console.log("");
  printTable(latencyRows);
  if (costs.length > 0) {
    console.log("");
    console.log(`D1 per request (Server-Timing, ${COST_SAMPLES} specs per shape one at a time, median; the outbox flush in waitUntil and the queue's fan-out are not in it):`);
    printTable([
      ["shape", "request", "calls", "unmetered", "rows_read", "rows_written", "ms alone"],
      ...costs.map((c) => [
        `${c.shape.size} results/spec`,
        c.kind,
        String(median(c.calls)),
        String(median(c.unmetered)),
        String(median(c.rowsRead)),
        String(median(c.rowsWritten)),
        median(c.ms).toFixed(1),
      ]),
    ]);
    for (const c of costs) {
      lines.push({
        bench: BENCH,
        figure: `d1_${c.kind}_${c.shape.name}`,
        value: median(c.calls),
        unmetered: median(c.unmetered),
        rows_read: median(c.rowsRead),
        rows_written: median(c.rowsWritten),
        ms_alone: round(median(c.ms), 2),
      });
    }
  }
  console.log("");
  lines.push({ bench: BENCH, figure: "concurrency", value: options.concurrency });
  for (const line of lines) emit(line);
}

/** Whether the server needs D1_METRICS=on; a bad option is reported by runBenchmark's own readOptions. */
function wantsD1Metrics() {
  try {
    return readOptions().d1Metrics === 1;
  } catch {
    return false;
  }
}

runBenchmark({
  readOptions,
  maxSockets: (options) => options.concurrency + 2,
  body,
  vars: wantsD1Metrics() ? { D1_METRICS: "on" } : {},
});
