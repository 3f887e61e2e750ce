#!/usr/bin/env node
// `npm run bench`: what an authenticated request costs next to one that does no work.
//
// Starts the real local server (scripts/local-server.mjs: wrangler dev, local D1, a fresh
// temporary database), creates an organization with a project and an API key, and then drives,
// over loopback at a fixed concurrency:
//
//   healthz  GET /healthz                       no auth, no D1
//   project  GET /api/v1/projects/{id}         Bearer key: one D1 key lookup + one D1 read
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
// Plain Node ESM without dependencies (Node 20 and later). Not part of `npm test`.

import http from "node:http";
import { parseArgs } from "node:util";
import { HOST, startLocalServer } from "../scripts/local-server.mjs";

const BENCH = "auth-overhead";
const ADMIN_TOKEN = "bench-admin-token";
const REQUEST_TIMEOUT_MS = 10_000;

/** A bad option: reported without a stack trace. */
class UsageError extends Error {}

/**
 * @param {string} name
 * @param {string | undefined} flag
 * @param {string | undefined} envValue
 * @param {number} fallback
 * @param {number} min
 */
function intOption(name, flag, envValue, fallback, min) {
  const raw = flag ?? envValue;
  if (raw === undefined || raw === "") return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min) {
    throw new UsageError(`--${name} must be an integer >= ${min} (got ${JSON.stringify(raw)})`);
  }
  return n;
}

function readOptions() {
  /** @type {{ values: Record<string, string | boolean | undefined> }} */
  let parsed;
  try {
    parsed = parseArgs({
      options: {
        requests: { type: "string" },
        concurrency: { type: "string" },
        warmup: { type: "string" },
        round: { type: "string" },
        "max-seconds": { type: "string" },
      },
      strict: true,
    });
  } catch (err) {
    throw new UsageError(err instanceof Error ? err.message : String(err));
  }
  const values = /** @type {Record<string, string | undefined>} */ (parsed.values);
  const env = process.env;
  return {
    requests: intOption("requests", values.requests, env.BENCH_REQUESTS, 1000, 1),
    concurrency: intOption("concurrency", values.concurrency, env.BENCH_CONCURRENCY, 8, 1),
    warmup: intOption("warmup", values.warmup, env.BENCH_WARMUP, 50, 0),
    round: intOption("round", values.round, env.BENCH_ROUND, 100, 1),
    maxSeconds: intOption("max-seconds", values["max-seconds"], env.BENCH_MAX_SECONDS, 60, 1),
  };
}

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

/**
 * @typedef {object} Stats
 * @property {number} count
 * @property {number} rps requests per second over this endpoint's rounds
 * @property {number} p50 ms
 * @property {number} p90 ms
 * @property {number} p99 ms
 */

/** Set once SIGINT/SIGTERM/SIGHUP has started stopping the server: failures after it are expected. */
let interrupted = false;

/** Thrown for a non-200 answer; carries the body. */
class BadAnswer extends Error {}

/**
 * One request over the shared keep-alive agent; resolves with the latency in ms once the whole
 * body has been read, rejects on anything but 200.
 * @param {http.Agent} agent
 * @param {URL} base
 * @param {string} method
 * @param {string} path
 * @param {Record<string, string>} headers
 * @param {string} [body]
 * @param {number} [expected]
 * @returns {Promise<{ ms: number, text: string }>}
 */
function request(agent, base, method, path, headers, body, expected = 200) {
  return new Promise((resolveRequest, reject) => {
    const started = performance.now();
    const req = http.request(
      {
        agent,
        host: base.hostname,
        port: base.port,
        method,
        path,
        headers: body === undefined ? headers : { ...headers, "content-length": Buffer.byteLength(body) },
        timeout: REQUEST_TIMEOUT_MS,
      },
      (res) => {
        /** @type {Buffer[]} */
        const chunks = [];
        res.on("data", (c) => chunks.push(c));
        res.on("error", reject);
        res.on("end", () => {
          const ms = performance.now() - started;
          const text = Buffer.concat(chunks).toString("utf8");
          if (res.statusCode !== expected) {
            reject(new BadAnswer(`${method} ${path}: expected ${expected}, got ${res.statusCode}\n${text.slice(0, 2000)}`));
          } else {
            resolveRequest({ ms, text });
          }
        });
      },
    );
    req.on("timeout", () => req.destroy(new Error(`${method} ${path}: no answer within ${REQUEST_TIMEOUT_MS} ms`)));
    req.on("error", reject);
    req.end(body);
  });
}

/**
 * Sends `count` requests to one endpoint, `concurrency` at a time; stops early (returns fewer
 * latencies) when `deadline` passes. The first failure rejects.
 * @param {http.Agent} agent
 * @param {URL} base
 * @param {Endpoint} endpoint
 * @param {number} count
 * @param {number} concurrency
 * @param {number} deadline performance.now() value
 * @returns {Promise<{ latencies: number[], elapsedMs: number }>}
 */
async function drive(agent, base, endpoint, count, concurrency, deadline) {
  /** @type {number[]} */
  const latencies = [];
  let issued = 0;
  let failed = false;
  const worker = async () => {
    while (!failed && issued < count && performance.now() < deadline) {
      issued++;
      try {
        const { ms } = await request(agent, base, "GET", endpoint.path, endpoint.headers);
        latencies.push(ms);
      } catch (err) {
        failed = true;
        throw err;
      }
    }
  };
  const started = performance.now();
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  return { latencies, elapsedMs: performance.now() - started };
}

/**
 * Nearest-rank percentile of sorted values.
 * @param {number[]} sorted
 * @param {number} p 0..100
 * @returns {number}
 */
function percentile(sorted, p) {
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length)));
  return sorted[rank - 1] ?? NaN;
}

/**
 * @param {Run} run
 * @returns {Stats}
 */
function summarize(run) {
  const sorted = [...run.latencies].sort((x, y) => x - y);
  return {
    count: sorted.length,
    rps: run.elapsedMs > 0 ? (sorted.length * 1000) / run.elapsedMs : NaN,
    p50: percentile(sorted, 50),
    p90: percentile(sorted, 90),
    p99: percentile(sorted, 99),
  };
}

/** @param {number} x @param {number} digits */
const round = (x, digits) => Number(x.toFixed(digits));

async function main() {
  const options = readOptions();

  /** @type {import("../scripts/local-server.mjs").LocalServer | undefined} */
  let server;
  // The server has its own process group, so Ctrl-C reaches only us: stop it, then leave.
  // A second signal exits at once (the exit hook of local-server.mjs SIGKILLs the group).
  const onSignal = (/** @type {NodeJS.Signals} */ signal) => {
    if (interrupted) process.exit(130);
    interrupted = true;
    console.error(`[bench] ${signal}: stopping the local server`);
    const done = () => process.exit(signal === "SIGINT" ? 130 : 143);
    (server ? server.stop() : Promise.resolve()).then(done, done);
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  process.on("SIGHUP", onSignal);

  const agent = new http.Agent({ keepAlive: true, maxSockets: options.concurrency });
  try {
    console.error("[bench] starting the local server (migrations + wrangler dev)...");
    const startedAt = performance.now();
    server = await startLocalServer({
      tempPrefix: "greenlight-bench-",
      vars: { REQUIRE_HTTPS: "false", ADMIN_TOKEN, URL_SIGNING_SECRET: "bench-signing-secret" },
    });
    const base = new URL(server.baseUrl);
    if (base.hostname !== HOST) throw new Error(`refusing a non-loopback server address: ${server.baseUrl}`);
    console.error(`[bench] server up at ${server.baseUrl} after ${((performance.now() - startedAt) / 1000).toFixed(1)} s`);

    const created = await request(
      agent,
      base,
      "POST",
      "/api/v1/admin/organizations",
      { authorization: `Bearer ${ADMIN_TOKEN}`, "content-type": "application/json", accept: "application/json" },
      JSON.stringify({ name: "Bench organization", project_name: "Bench project" }),
      201,
    );
    const body = JSON.parse(created.text);
    const projectId = body?.project?.id;
    const apiKey = body?.api_key?.key;
    if (typeof projectId !== "string" || typeof apiKey !== "string") {
      throw new Error(`unexpected organization answer: ${created.text.slice(0, 2000)}`);
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

    // Warm-up: JIT, connections, D1 pages, and the key's first last_used_at write.
    for (const { endpoint } of runs) {
      if (options.warmup > 0) await drive(agent, base, endpoint, options.warmup, options.concurrency, Infinity);
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
        const { latencies, elapsedMs } = await drive(agent, base, run.endpoint, want, options.concurrency, deadline);
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

    const header = ["endpoint", "count", "req/s", "p50 ms", "p90 ms", "p99 ms"];
    const rows = [
      header,
      ...results.map(({ endpoint, stats }) => [
        `${endpoint.name}  ${endpoint.label}`,
        String(stats.count),
        stats.rps.toFixed(0),
        stats.p50.toFixed(2),
        stats.p90.toFixed(2),
        stats.p99.toFixed(2),
      ]),
    ];
    const widths = header.map((_, i) => Math.max(...rows.map((row) => (row[i] ?? "").length)));
    console.log("");
    console.log(`auth-overhead: concurrency ${options.concurrency}, ${server.baseUrl}${capped ? " (time cap hit)" : ""}`);
    for (const row of rows) {
      console.log(row.map((cell, i) => (i === 0 ? cell.padEnd(widths[i] ?? 0) : cell.padStart(widths[i] ?? 0))).join("  "));
    }
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
    for (const [figure, value] of figures) console.log(JSON.stringify({ bench: BENCH, figure, value }));
  } finally {
    agent.destroy();
    if (server && !interrupted) {
      console.error("[bench] stopping the local server");
      await server.stop();
    }
  }
}

main().then(
  () => {
    process.exitCode = 0;
  },
  (err) => {
    if (interrupted) return; // the signal handler stops the server and sets the exit code
    const quiet = err instanceof BadAnswer || err instanceof UsageError;
    console.error(`[bench] failed: ${quiet ? err.message : (err?.stack ?? err)}`);
    process.exitCode = err instanceof UsageError ? 2 : 1;
  },
);
