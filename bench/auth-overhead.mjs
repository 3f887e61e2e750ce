#!/usr/bin/env node
// `npm run bench`: what an authenticated request costs next to one that does no work.
//
// Starts the real local server (scripts/local-server.mjs: wrangler dev, local D1, a fresh
// temporary database), creates an organization with a project and an API key, and then drives,
// over loopback at a fixed concurrency:
//
//   healthz  GET /healthz                       no auth, no D1
//   project  GET /api/v1/projects/{id}         Bearer key: one D1 key lookup (with the
//                                               organization's rate limits), one call to the
//                                               key's RATE_LIMITER object, one D1 read
//
// Rate limiting is on (the one benchmark that keeps it), with the organization's limit for the
// projects group raised far above what the run sends, so every request pays for the check and
// none is refused.
//
// in alternating rounds (A B, B A, A B, ...), so that machine noise and drift hit both alike.
// Every response is checked (200) and read to the end; anything else aborts with its body.
// Prints a table (count, requests/s, p50/p90/p99 latency in ms) and the ratios
// p50(project)/p50(healthz) and p99(project)/p99(healthz), then one JSON line per figure.
//
// Options (flag or environment variable; defaults in brackets):
//   --requests N      BENCH_REQUESTS      measured requests per endpoint [1000]
//   --concurrency N   BENCH_CONCURRENCY   requests in flight [8]
//   --warmup N        BENCH_WARMUP        unmeasured requests per endpoint first [50]
//   --round N         BENCH_ROUND         requests per endpoint per round [100]
//   --max-seconds N   BENCH_MAX_SECONDS   hard cap on the measured phase [60]
//
// Plain Node ESM without dependencies (Node 20 and later); the shared parts are in bench/lib.mjs.
// Not part of `npm test`.

import { BenchError, createOrganization, drive, printFigures, printTable, readIntOptions, request, round, runBenchmark, summarize } from "./lib.mjs";

const BENCH = "auth-overhead";

/**
 * @typedef {object} Endpoint
 * @property {string} name
 * @property {string} label
 * @property {string} path
 * @property {Record<string, string>} headers
 */

/**
 * @typedef {object} Run
 * @property {Endpoint} endpoint
 * @property {number[]} latencies milliseconds, one per measured request
 * @property {number} elapsedMs wall time of this endpoint's measured rounds, summed
 */

const readOptions = () =>
  readIntOptions({
    requests: { flag: "requests", env: "BENCH_REQUESTS", fallback: 1000, min: 1 },
    concurrency: { flag: "concurrency", env: "BENCH_CONCURRENCY", fallback: 8, min: 1 },
    warmup: { flag: "warmup", env: "BENCH_WARMUP", fallback: 50, min: 0 },
    round: { flag: "round", env: "BENCH_ROUND", fallback: 100, min: 1 },
    maxSeconds: { flag: "max-seconds", env: "BENCH_MAX_SECONDS", fallback: 60, min: 1 },
  });

runBenchmark({
  rateLimited: true,
  readOptions,
  maxSockets: (options) => options.concurrency,
  body: async ({ server, base, agent }, options) => {
    const { projectId, apiKey } = await createOrganization(agent, base, { rateLimits: { overrides: { projects: 1_000_000 } } });
    // The measured route must really be rate-limited, or the ratio says nothing about the limiter.
    const probe = await fetch(new URL(`/api/v1/projects/${encodeURIComponent(projectId)}`, base), { headers: { authorization: `Bearer ${apiKey}` } });
    await probe.arrayBuffer();
    if (probe.headers.get("ratelimit-policy") !== '"projects";q=1000000;w=60') {
      throw new BenchError(`GET /api/v1/projects/{id} is not rate-limited as set up (RateLimit-Policy: ${probe.headers.get("ratelimit-policy")})`);
    }

    /** @type {Endpoint} */
    const healthz = { name: "healthz", label: "GET /healthz", path: "/healthz", headers: { accept: "application/json" } };
    /** @type {Endpoint} */
    const project = {
      name: "project",
      label: "GET /api/v1/projects/{id}",
      path: `/api/v1/projects/${encodeURIComponent(projectId)}`,
      headers: { accept: "application/json", authorization: `Bearer ${apiKey}` },
    };
    /** @type {Run[]} */
    const runs = [healthz, project].map((endpoint) => ({ endpoint, latencies: [], elapsedMs: 0 }));

    /** @param {Endpoint} endpoint @param {number} count @param {number} deadline */
    const hit = (endpoint, count, deadline) =>
      drive(count, options.concurrency, deadline, async () => (await request(agent, base, "GET", endpoint.path, endpoint.headers)).ms);

    // Warm-up: JIT, connections, D1 pages, and the key's first last_used_at write.
    for (const { endpoint } of runs) {
      if (options.warmup > 0) await hit(endpoint, options.warmup, Infinity);
    }

    const deadline = performance.now() + options.maxSeconds * 1000;
    const rounds = Math.ceil(options.requests / options.round);
    let capped = false;
    console.error(
      `[bench] ${options.requests} requests per endpoint, concurrency ${options.concurrency}, ` +
        `${rounds} rounds of ${options.round} each, cap ${options.maxSeconds} s`,
    );
    for (let r = 0; r < rounds && !capped; r++) {
      // A B, then B A, ...: neither endpoint always goes first.
      const order = r % 2 === 0 ? runs : [...runs].reverse();
      for (const run of order) {
        const want = Math.min(options.round, options.requests - run.latencies.length);
        const { latencies, elapsedMs } = await hit(run.endpoint, want, deadline);
        run.latencies.push(...latencies);
        run.elapsedMs += elapsedMs;
        if (latencies.length < want) capped = true;
      }
    }
    if (capped) console.error(`[bench] hit the ${options.maxSeconds} s cap: figures cover fewer requests`);

    const results = runs.map((run) => ({ endpoint: run.endpoint, stats: summarize(run) }));
    const [a, b] = results.map((r) => r.stats);
    if (!a || !b) throw new Error("internal: expected two result sets");
    const p50Ratio = b.p50 / a.p50;
    const p99Ratio = b.p99 / a.p99;

    console.log("");
    console.log(`auth-overhead: concurrency ${options.concurrency}, ${server.baseUrl}${capped ? " (time cap hit)" : ""}`);
    printTable([
      ["endpoint", "count", "req/s", "p50 ms", "p90 ms", "p99 ms"],
      ...results.map(({ endpoint, stats }) => [
        `${endpoint.name}  ${endpoint.label}`,
        String(stats.count),
        stats.rps.toFixed(0),
        stats.p50.toFixed(2),
        stats.p90.toFixed(2),
        stats.p99.toFixed(2),
      ]),
    ]);
    console.log(`p50 ratio project/healthz: ${p50Ratio.toFixed(2)}`);
    console.log(`p99 ratio project/healthz: ${p99Ratio.toFixed(2)}`);
    console.log("");

    /** @type {[string, number][]} */
    const figures = [["concurrency", options.concurrency]];
    for (const { endpoint, stats } of results) {
      figures.push(
        [`${endpoint.name}_count`, stats.count],
        [`${endpoint.name}_rps`, round(stats.rps, 1)],
        [`${endpoint.name}_p50_ms`, round(stats.p50, 3)],
        [`${endpoint.name}_p90_ms`, round(stats.p90, 3)],
        [`${endpoint.name}_p99_ms`, round(stats.p99, 3)],
      );
    }
    figures.push(["p50_ratio", round(p50Ratio, 3)], ["p99_ratio", round(p99Ratio, 3)]);
    printFigures(BENCH, figures);
  },
});
