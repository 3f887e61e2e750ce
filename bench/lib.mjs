// What every benchmark in bench/ shares: integer options from flags or environment variables, one
// keep-alive HTTP request that checks its status, a fixed-concurrency driver, nearest-rank
// percentiles, the printed table and JSON lines, an organization made through the admin API, and
// the lifecycle around the real local server (start on loopback, stop on exit or Ctrl-C).
//
// Plain Node ESM without dependencies (Node 20 and later).

import http from "node:http";
import { parseArgs } from "node:util";
import { HOST, startLocalServer } from "../scripts/local-server.mjs";

/** The admin token the benchmarks give their local server; it never leaves loopback. */
export const ADMIN_TOKEN = "bench-admin-token";
export const REQUEST_TIMEOUT_MS = 10_000;

/** A bad option: reported without a stack trace. */
export class UsageError extends Error {}

/** A failure that its message explains: reported without a stack trace. */
export class BenchError extends Error {}

/** Thrown for an answer with an unexpected status; carries the body. */
export class BadAnswer extends BenchError {}

/**
 * @typedef {object} IntOptionSpec
 * @property {string} flag      the flag without its dashes, e.g. "max-seconds"
 * @property {string} env       the environment variable, e.g. "BENCH_MAX_SECONDS"
 * @property {number} fallback  used when neither is given
 * @property {number} min       smallest accepted value
 */

/**
 * @param {string} name
 * @param {string | undefined} flag
 * @param {string | undefined} envValue
 * @param {number} fallback
 * @param {number} min
 */
export function intOption(name, flag, envValue, fallback, min) {
  const raw = flag ?? envValue;
  if (raw === undefined || raw === "") return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min) {
    throw new UsageError(`--${name} must be an integer >= ${min} (got ${JSON.stringify(raw)})`);
  }
  return n;
}

/**
 * Reads integer options: a flag wins over its environment variable, which wins over the fallback.
 * Unknown flags and positional arguments are a UsageError.
 * @template {string} K
 * @param {Record<K, IntOptionSpec>} specs keyed by the name the caller wants back
 * @param {string[]} [args] defaults to process.argv.slice(2)
 * @returns {Record<K, number>}
 */
export function readIntOptions(specs, args = process.argv.slice(2)) {
  const entries = /** @type {[K, IntOptionSpec][]} */ (Object.entries(specs));
  /** @type {{ values: Record<string, string | boolean | undefined> }} */
  let parsed;
  try {
    parsed = parseArgs({
      args,
      options: Object.fromEntries(entries.map(([, spec]) => [spec.flag, { type: /** @type {const} */ ("string") }])),
      strict: true,
    });
  } catch (err) {
    throw new UsageError(err instanceof Error ? err.message : String(err));
  }
  const values = /** @type {Record<string, string | undefined>} */ (parsed.values);
  const result = /** @type {Record<K, number>} */ ({});
  for (const [key, spec] of entries) {
    result[key] = intOption(spec.flag, values[spec.flag], process.env[spec.env], spec.fallback, spec.min);
  }
  return result;
}

/**
 * One request over the shared keep-alive agent; resolves with the latency in ms once the whole
 * body has been read, rejects with BadAnswer on any status but `expected`.
 * @param {http.Agent} agent
 * @param {URL} base
 * @param {string} method
 * @param {string} path
 * @param {Record<string, string>} headers
 * @param {string} [body]
 * @param {number} [expected]
 * @param {number} [timeoutMs] idle time on the socket before the request is given up
 * @returns {Promise<{ ms: number, text: string, headers: http.IncomingHttpHeaders }>}
 */
export function request(agent, base, method, path, headers, body, expected = 200, timeoutMs = REQUEST_TIMEOUT_MS) {
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
        timeout: timeoutMs,
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
            resolveRequest({ ms, text, headers: res.headers });
          }
        });
      },
    );
    req.on("timeout", () => req.destroy(new Error(`${method} ${path}: no answer within ${timeoutMs} ms`)));
    req.on("error", reject);
    req.end(body);
  });
}

/**
 * Runs `task` `count` times, `concurrency` at a time; stops early (returns fewer latencies) when
 * `deadline` passes. `task(i)` gets the index of its call and resolves with one latency in ms.
 * The first failure rejects.
 * @param {number} count
 * @param {number} concurrency
 * @param {number} deadline performance.now() value
 * @param {(i: number) => Promise<number>} task
 * @returns {Promise<{ latencies: number[], elapsedMs: number }>}
 */
export async function drive(count, concurrency, deadline, task) {
  /** @type {number[]} */
  const latencies = [];
  let issued = 0;
  let failed = false;
  const worker = async () => {
    while (!failed && issued < count && performance.now() < deadline) {
      const i = issued++;
      try {
        latencies.push(await task(i));
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
 * @typedef {object} Stats
 * @property {number} count
 * @property {number} rps operations per second over the measured wall time
 * @property {number} p50 ms
 * @property {number} p90 ms
 * @property {number} p99 ms
 */

/**
 * Nearest-rank percentile of sorted values.
 * @param {number[]} sorted
 * @param {number} p 0..100
 * @returns {number}
 */
export function percentile(sorted, p) {
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length)));
  return sorted[rank - 1] ?? NaN;
}

/**
 * @param {{ latencies: number[], elapsedMs: number }} measured
 * @returns {Stats}
 */
export function summarize({ latencies, elapsedMs }) {
  const sorted = [...latencies].sort((x, y) => x - y);
  return {
    count: sorted.length,
    rps: elapsedMs > 0 ? (sorted.length * 1000) / elapsedMs : NaN,
    p50: percentile(sorted, 50),
    p90: percentile(sorted, 90),
    p99: percentile(sorted, 99),
  };
}

/** @param {number} x @param {number} digits */
export const round = (x, digits) => Number(x.toFixed(digits));

/**
 * Prints a table to stdout: the first column left-aligned, the others right-aligned.
 * @param {string[][]} rows the header first
 */
export function printTable(rows) {
  const columns = Math.max(...rows.map((row) => row.length));
  const widths = Array.from({ length: columns }, (_, i) => Math.max(...rows.map((row) => (row[i] ?? "").length)));
  for (const row of rows) {
    console.log(row.map((cell, i) => (i === 0 ? cell.padEnd(widths[i] ?? 0) : cell.padStart(widths[i] ?? 0))).join("  "));
  }
}

/**
 * One JSON line per figure on stdout, for scripts that collect them.
 * @param {string} bench
 * @param {[string, number][]} figures
 */
export function printFigures(bench, figures) {
  for (const [figure, value] of figures) console.log(JSON.stringify({ bench, figure, value }));
}

/**
 * Creates an organization with one project and one API key through the admin API.
 * @param {http.Agent} agent
 * @param {URL} base
 * @param {{ name?: string, projectName?: string }} [names]
 * @returns {Promise<{ projectId: string, apiKey: string }>}
 */
export async function createOrganization(agent, base, names = {}) {
  // names.rateLimits, when given, is PATCHed as the organization's rate_limits setting.
  const created = await request(
    agent,
    base,
    "POST",
    "/api/v1/admin/organizations",
    { authorization: `Bearer ${ADMIN_TOKEN}`, "content-type": "application/json", accept: "application/json" },
    JSON.stringify({ name: names.name ?? "Bench organization", project_name: names.projectName ?? "Bench project" }),
    201,
  );
  const body = JSON.parse(created.text);
  const projectId = body?.project?.id;
  const apiKey = body?.api_key?.key;
  if (typeof projectId !== "string" || typeof apiKey !== "string") {
    throw new Error(`unexpected organization answer: ${created.text.slice(0, 2000)}`);
  }
  if (names.rateLimits !== undefined) {
    await request(
      agent,
      base,
      "PATCH",
      `/api/v1/admin/organizations/${encodeURIComponent(body.organization.id)}`,
      { authorization: `Bearer ${ADMIN_TOKEN}`, "content-type": "application/json", accept: "application/json" },
      JSON.stringify({ rate_limits: names.rateLimits }),
      200,
    );
  }
  return { projectId, apiKey };
}

/**
 * @typedef {object} BenchContext
 * @property {import("../scripts/local-server.mjs").LocalServer} server
 * @property {URL} base the server's loopback address
 * @property {http.Agent} agent keep-alive, at most `maxSockets` connections
 */

/**
 * Runs one benchmark against a fresh local server and sets the exit code: reads the options,
 * starts the server on loopback, calls `body`, and always stops the server. Ctrl-C (or SIGTERM,
 * SIGHUP) stops the server and exits; a second signal exits at once. A UsageError exits 2, any
 * other failure 1.
 * @template O
 * @param {object} spec
 * @param {() => O} spec.readOptions may throw UsageError
 * @param {(options: O) => number} spec.maxSockets connections the agent may open
 * @param {(ctx: BenchContext, options: O) => Promise<void>} spec.body
 * @param {boolean} [spec.rateLimited] keep rate limiting on (otherwise the server runs with RATE_LIMITS=off)
 * @param {Record<string, string>} [spec.vars] more variables for the server (e.g. D1_METRICS: "on")
 */
export function runBenchmark({ readOptions, maxSockets, body, rateLimited = false, vars = {} }) {
  /** Set once a signal has started stopping the server: failures after it are expected. */
  let interrupted = false;

  const main = async () => {
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

    const agent = new http.Agent({ keepAlive: true, maxSockets: maxSockets(options) });
    try {
      console.error("[bench] starting the local server (migrations + wrangler dev)...");
      const startedAt = performance.now();
      server = await startLocalServer({
        tempPrefix: "greenlight-bench-",
        // Rate limiting stays on only where a benchmark measures it (it would refuse a load test).
        vars: { REQUIRE_HTTPS: "false", ADMIN_TOKEN, URL_SIGNING_SECRET: "bench-signing-secret", ...(rateLimited ? {} : { RATE_LIMITS: "off" }), ...vars },
      });
      const base = new URL(server.baseUrl);
      if (base.hostname !== HOST) throw new Error(`refusing a non-loopback server address: ${server.baseUrl}`);
      console.error(`[bench] server up at ${server.baseUrl} after ${((performance.now() - startedAt) / 1000).toFixed(1)} s`);
      await body({ server, base, agent }, options);
    } finally {
      agent.destroy();
      if (server && !interrupted) {
        console.error("[bench] stopping the local server");
        await server.stop();
      }
    }
  };

  main().then(
    () => {
      process.exitCode = 0;
    },
    (err) => {
      if (interrupted) return; // the signal handler stops the server and sets the exit code
      const quiet = err instanceof BenchError || err instanceof UsageError;
      console.error(`[bench] failed: ${quiet ? err.message : (err?.stack ?? err)}`);
      // wrangler dev retries only GET and HEAD across a reload, so an edit mid-run ends a POST.
      if (err instanceof BadAnswer && err.message.includes("restarted mid-request")) {
        console.error("[bench] wrangler dev reloads the worker when a file under src/ changes: run again with the tree unchanged");
      }
      process.exitCode = err instanceof UsageError ? 2 : 1;
    },
  );
}
