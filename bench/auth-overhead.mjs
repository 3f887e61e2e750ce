#!/usr/bin/env node
// `npm run bench:auth` (P3): what an authenticated request costs next to one that does no work.
//
// Starts a real local server (bench/lib.mjs: `--server workerd`, the built bundle under Miniflare,
// or `--server dev`, wrangler dev; local D1, a fresh temporary database), creates an organization
// with a project and an API key, and then drives, over loopback at a fixed concurrency:
//
//   livez    GET /livez                   no auth, no D1: the Worker answering at all
//   healthz  GET /healthz                 no auth, one D1 query (SELECT 1): issue 12's baseline
//   run      GET /api/v1/testruns/{id}    Bearer key (its principal cached per isolate for
//                                         AUTH_CACHE_SECONDS), the key's rate limit (a lease of
//                                         the RATE_LIMITER object's window), one D1 batch
//
// Rate limiting is on (the one benchmark that keeps it), with the organization's limit for the
// runs_read group raised far above what the run sends, so every request passes the check and
// none is refused. The target (issue 12, P3) is p50 and p99 of run ÷ healthz ≤ 1.5.
//
// in alternating rounds (A B, B A, A B, ...), so that machine noise and drift hit both alike.
// Every response is checked (200) and read to the end; anything else aborts with its body.
// The whole measurement (warm-up excluded) runs `--repeats` times; each figure is the median of
// the repeats with min and max. Prints a table (requests/s, p50/p90/p99 latency in ms, each
// median [min–max]) and the ratios p50 and p99 of run ÷ healthz and run ÷ livez of each repeat, then one JSON line per figure ({"figure":…,"value":median,"min":…,"max":…}).
//
// Options (flag or environment variable; defaults in brackets):
//   --requests N      BENCH_REQUESTS      measured requests per endpoint [1000]
//   --concurrency N   BENCH_CONCURRENCY   requests in flight [8]
//   --warmup N        BENCH_WARMUP        unmeasured requests per endpoint first [50]
//   --round N         BENCH_ROUND         requests per endpoint per round [100]
//   --repeats N       BENCH_REPEATS       times the measurement runs; figures are their median [3]
//   --max-seconds N   BENCH_MAX_SECONDS   hard cap on the measured phase, all repeats [180]
//   --server, --pin                       see bench/lib.mjs: which server [workerd], CPU pinning
//
// Plain Node ESM without dependencies (Node 20 and later); the shared parts are in bench/lib.mjs.
// Not part of `npm test`.

import { BenchError, createOrganization, drive, emit, printTable, readIntOptions, request, runBenchmark, spread, summarize } from "./lib.mjs";

const BENCH = "auth-overhead";

/**
 * @typedef {object} Endpoint
 * @property {string} name
 * @property {string} label
 * @property {string} path
 * @property {Record<string, string>} headers
 */

/**
 * @typedef {object} Run one endpoint in one repeat
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
    repeats: { flag: "repeats", env: "BENCH_REPEATS", fallback: 3, min: 1 },
    maxSeconds: { flag: "max-seconds", env: "BENCH_MAX_SECONDS", fallback: 180, min: 1 },
  });

runBenchmark({
  rateLimited: true,
  readOptions,
  maxSockets: (options) => options.concurrency,
  body: async ({ server, base, agent, serverNote }, options) => {
    const { projectId, apiKey } = await createOrganization(agent, base, { rateLimits: { overrides: { runs_read: 1_000_000 } } });
    const auth = { accept: "application/json", authorization: `Bearer ${apiKey}` };
    const created = await request(agent, base, "POST", "/api/v1/testruns", { ...auth, "content-type": "application/json" }, JSON.stringify({ project_id: projectId, run_title: "P3" }), 201);
    const runPath = `/api/v1/testruns/${encodeURIComponent(JSON.parse(created.text).id)}`;
    // The measured route must really be rate-limited, or the ratio says nothing about the limiter.
    const probe = await request(agent, base, "GET", runPath, auth);
    if (probe.headers["ratelimit-policy"] !== '"runs_read";q=1000000;w=60') {
      throw new BenchError(`GET /api/v1/testruns/{id} is not rate-limited as set up (RateLimit-Policy: ${probe.headers["ratelimit-policy"]})`);
    }

    /** @type {Endpoint} */
    const livez = { name: "livez", label: "GET /livez", path: "/livez", headers: { accept: "application/json" } };
    /** @type {Endpoint} */
    const healthz = { name: "healthz", label: "GET /healthz", path: "/healthz", headers: { accept: "application/json" } };
    /** @type {Endpoint} */
    const run = { name: "run", label: "GET /api/v1/testruns/{id}", path: runPath, headers: auth };
    const endpoints = [livez, healthz, run];

    /** @param {Endpoint} endpoint @param {number} count @param {number} deadline */
    const hit = (endpoint, count, deadline) =>
      drive(count, options.concurrency, deadline, async () => (await request(agent, base, "GET", endpoint.path, endpoint.headers)).ms);

    // Warm-up: JIT, connections, D1 pages, and the key's first last_used_at write.
    for (const endpoint of endpoints) {
      if (options.warmup > 0) await hit(endpoint, options.warmup, Infinity);
    }

    const deadline = performance.now() + options.maxSeconds * 1000;
    const rounds = Math.ceil(options.requests / options.round);
    let capped = false;
    console.error(
      `[bench] ${options.repeats} repeats of ${options.requests} requests per endpoint, concurrency ${options.concurrency}, ` +
        `${rounds} rounds of ${options.round} each, cap ${options.maxSeconds} s`,
    );
    /** @type {Record<string, import("./lib.mjs").Stats>[]} */
    const repeats = [];
    for (let rep = 0; rep < options.repeats && !capped; rep++) {
      /** @type {Run[]} */
      const runs = endpoints.map((endpoint) => ({ endpoint, latencies: [], elapsedMs: 0 }));
      for (let r = 0; r < rounds && !capped; r++) {
        // A B C, then C B A, ...: no endpoint always goes first.
        const order = r % 2 === 0 ? runs : [...runs].reverse();
        for (const run of order) {
          const want = Math.min(options.round, options.requests - run.latencies.length);
          const { latencies, elapsedMs } = await hit(run.endpoint, want, deadline);
          run.latencies.push(...latencies);
          run.elapsedMs += elapsedMs;
          if (latencies.length < want) capped = true;
        }
      }
      const stats = Object.fromEntries(runs.map((r) => [r.endpoint.name, summarize(r)]));
      repeats.push(stats);
      console.error(`[bench] repeat ${rep + 1}: ${runs.map((r) => `${r.endpoint.name} ${stats[r.endpoint.name].rps.toFixed(0)} req/s p50 ${stats[r.endpoint.name].p50.toFixed(2)} ms`).join("; ")}`);
    }
    if (capped) console.error(`[bench] hit the ${options.maxSeconds} s cap: the last repeat covers fewer requests`);

    /** @type {[string, string, number[], number][]} figure name, label, values per repeat, digits */
    const figures = [];
    for (const endpoint of endpoints) {
      const name = endpoint.name;
      const stats = repeats.map((r) => /** @type {import("./lib.mjs").Stats} */ (r[name]));
      figures.push(
        [`${name}_count`, `${name} count`, stats.map((x) => x.count), 0],
        [`${name}_rps`, `${name} req/s`, stats.map((x) => x.rps), 1],
        [`${name}_p50_ms`, `${name} p50 ms`, stats.map((x) => x.p50), 3],
        [`${name}_p90_ms`, `${name} p90 ms`, stats.map((x) => x.p90), 3],
        [`${name}_p99_ms`, `${name} p99 ms`, stats.map((x) => x.p99), 3],
      );
    }
    figures.push(
      ["p50_ratio", "p50 ratio run/healthz", repeats.map((r) => r.run.p50 / r.healthz.p50), 3],
      ["p99_ratio", "p99 ratio run/healthz", repeats.map((r) => r.run.p99 / r.healthz.p99), 3],
      ["p50_ratio_livez", "p50 ratio run/livez", repeats.map((r) => r.run.p50 / r.livez.p50), 3],
      ["p99_ratio_livez", "p99 ratio run/livez", repeats.map((r) => r.run.p99 / r.livez.p99), 3],
    );

    console.log("");
    console.log(`auth-overhead: concurrency ${options.concurrency}, ${repeats.length} repeat(s) of ${options.requests} per endpoint, ${server.baseUrl}${capped ? " (time cap hit)" : ""}`);
    console.log(serverNote);
    console.log(`${endpoints.map((e) => `${e.name}  ${e.label}`).join("; ")}; median [min–max] over the repeats`);
    printTable([
      ["figure", "median", "min", "max"],
      ...figures.filter(([figure]) => !figure.endsWith("_count")).map(([, label, values, digits]) => {
        const s = spread(values, digits);
        const d = Math.min(digits, 2);
        return [label, s.value.toFixed(d), s.min.toFixed(d), s.max.toFixed(d)];
      }),
    ]);
    console.log("");

    emit({ bench: BENCH, figure: "concurrency", value: options.concurrency });
    for (const [figure, , values, digits] of figures) emit({ bench: BENCH, figure, ...spread(values, digits), repeats: values.length });
  },
});
