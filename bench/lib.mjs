// What every benchmark in bench/ shares: integer options from flags or environment variables, one
// keep-alive HTTP request that checks its status, a fixed-concurrency driver, nearest-rank
// percentiles and medians, the printed table and JSON lines, an organization made through the
// admin API, D1's cost from a Server-Timing header, the CI-shaped workload of bench:ci, and the
// lifecycle around a real local server (which one, pinning, start on loopback, stop on exit or
// Ctrl-C).
//
// Every benchmark takes two options besides its own (flag or environment variable):
//   --server workerd|dev  BENCH_SERVER  workerd: the deployable bundle under Miniflare
//                                       (scripts/bundle-server.mjs); dev: `wrangler dev`, as
//                                       `npm run dev` runs it (scripts/local-server.mjs) [workerd]
//   --pin 0|1             BENCH_PIN     1: the server's processes on one CPU (`taskset -c`), the
//                                       benchmark on another [1 where taskset exists and 2 CPUs
//                                       or more are allowed, else 0]
//
// Plain Node ESM without dependencies (Node 20 and later).

import http from "node:http";
import { parseArgs } from "node:util";
import { startBundleServer } from "../scripts/bundle-server.mjs";
import { HOST, startLocalServer } from "../scripts/local-server.mjs";
import { allowedCpus, hasTaskset, pinProcess } from "../scripts/server-process.mjs";

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
 * Unknown flags and positional arguments are a UsageError. The options every benchmark takes
 * (--server, --pin: readCommonOptions) are left out before parsing.
 * @template {string} K
 * @param {Record<K, IntOptionSpec>} specs keyed by the name the caller wants back
 * @param {string[]} [args] defaults to process.argv.slice(2) without the common options
 * @returns {Record<K, number>}
 */
export function readIntOptions(specs, args = readCommonOptions().rest) {
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
 * The servers a benchmark can run against.
 * @type {Record<ServerKind, { label: string, start: typeof startLocalServer }>}
 */
export const SERVERS = {
  workerd: { label: "workerd: the built bundle under Miniflare", start: startBundleServer },
  dev: { label: "wrangler dev, as npm run dev runs it", start: startLocalServer },
};

/** @typedef {"workerd" | "dev"} ServerKind */

/**
 * @typedef {object} CommonOptions
 * @property {ServerKind} server
 * @property {boolean} pin
 * @property {string[]} rest the arguments without the common options
 */

/** Flags every benchmark takes, each with a value. */
const COMMON_FLAGS = ["server", "pin"];

/**
 * Reads --server and --pin (flag over environment variable over default) and returns the other
 * arguments for the benchmark's own parser. Both `--flag value` and `--flag=value` are taken.
 * @param {string[]} [args] defaults to process.argv.slice(2)
 * @returns {CommonOptions}
 */
export function readCommonOptions(args = process.argv.slice(2)) {
  /** @type {Record<string, string>} */
  const found = {};
  /** @type {string[]} */
  const rest = [];
  for (let i = 0; i < args.length; i++) {
    const arg = /** @type {string} */ (args[i]);
    const flag = COMMON_FLAGS.find((f) => arg === `--${f}` || arg.startsWith(`--${f}=`));
    if (flag === undefined) {
      rest.push(arg);
    } else if (arg.includes("=")) {
      found[flag] = arg.slice(arg.indexOf("=") + 1);
    } else {
      const value = args[++i];
      if (value === undefined) throw new UsageError(`--${flag} needs a value`);
      found[flag] = value;
    }
  }
  const server = found.server ?? process.env.BENCH_SERVER ?? "workerd";
  if (server !== "workerd" && server !== "dev") throw new UsageError(`--server is workerd or dev (got ${JSON.stringify(server)})`);
  const pinRaw = found.pin ?? process.env.BENCH_PIN;
  let pin;
  if (pinRaw === undefined || pinRaw === "") {
    pin = hasTaskset() && allowedCpus().length >= 2;
  } else if (pinRaw === "0" || pinRaw === "1") {
    pin = pinRaw === "1";
  } else {
    throw new UsageError(`--pin is 0 or 1 (got ${JSON.stringify(pinRaw)})`);
  }
  return { server, pin, rest };
}

/** The server kind of this run, once runBenchmark has read it; every JSON line carries it. */
let currentServer = /** @type {ServerKind | undefined} */ (undefined);

/**
 * Prints one JSON line (a figure) on stdout, with the server it was measured on.
 * @param {Record<string, unknown>} line
 */
export function emit(line) {
  console.log(JSON.stringify(currentServer === undefined ? line : { ...line, server: currentServer }));
}

/**
 * The median of some numbers (the mean of the middle two for an even count).
 * @param {number[]} values
 */
export function median(values) {
  const s = [...values].sort((x, y) => x - y);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? /** @type {number} */ (s[mid]) : (/** @type {number} */ (s[mid - 1]) + /** @type {number} */ (s[mid])) / 2;
}

/**
 * A figure from its runs: the median as `value`, with `min` and `max`.
 * @param {number[]} values
 * @param {number} [digits] round all three to this many decimals
 * @returns {{ value: number, min: number, max: number }}
 */
export function spread(values, digits) {
  const r = (/** @type {number} */ x) => (digits === undefined ? x : round(x, digits));
  return { value: r(median(values)), min: r(Math.min(...values)), max: r(Math.max(...values)) };
}

const D1_TIMING = /d1;desc="calls=(\d+) rows_read=(\d+) rows_written=(\d+) unmetered=(\d+)"/;

/**
 * What a request cost in D1, from the Server-Timing header the server adds with D1_METRICS=on:
 * `d1;desc="calls=N rows_read=R rows_written=W unmetered=U"`.
 * @param {http.IncomingHttpHeaders} headers
 * @param {string} what the request, for the error message
 * @returns {{ calls: number, rowsRead: number, rowsWritten: number, unmetered: number }}
 */
export function d1Cost(headers, what) {
  const value = [headers["server-timing"] ?? []].flat().join(", ");
  const m = D1_TIMING.exec(value);
  if (!m) throw new BenchError(`${what}: no D1 Server-Timing header (got ${JSON.stringify(value)}); this tree's server does not know D1_METRICS=on`);
  return { calls: Number(m[1]), rowsRead: Number(m[2]), rowsWritten: Number(m[3]), unmetered: Number(m[4]) };
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
  for (const [figure, value] of figures) emit({ bench, figure, value });
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

// ---------------------------------------------------------------------------------------------
// The CI-shaped workload (bench:ci, bench:cpu): a spec is one run, its results, its final status.

/** Tests per spec file of the suite. */
export const TESTS_PER_FILE = 10;
const SEED_CHUNK = 1000;
const SEED_CONCURRENCY = 2;
/** A 1,000-result submission behind others on a 2-core machine can take long; this only catches a hang. */
export const BIG_TIMEOUT_MS = 180_000;

/**
 * A 32-bit hash of a few integers (xorshift-multiply), for statuses that look random but are the
 * same on every run of the benchmark.
 * @param {number[]} parts
 */
function hash(...parts) {
  let h = 0x9e3779b9;
  for (const p of parts) {
    h = Math.imul(h ^ p, 0x85ebca6b);
    h ^= h >>> 13;
    h = Math.imul(h, 0xc2b2ae35);
    h ^= h >>> 16;
  }
  return h >>> 0;
}

/**
 * Test `t` of the suite as a Playwright reporter sends it, in execution `salt`: test t is in file
 * t/10; about 2% failed (with an error message), 2% flaky (retries 1), 3% skipped, the rest
 * passed; durations 50–3,000 ms.
 * @param {number} t
 * @param {number} salt
 */
export function ciResult(t, salt) {
  const file = Math.floor(t / TESTS_PER_FILE);
  const area = Math.floor(file / 20);
  const group = (t % TESTS_PER_FILE) < 5 ? "happy path" : "edge cases";
  const title = `case ${t % TESTS_PER_FILE} of spec ${file}`;
  const draw = hash(t, salt) % 1000;
  const status = draw < 20 ? "failed" : draw < 40 ? "flaky" : draw < 70 ? "skipped" : "passed";
  return {
    title,
    full_title: `Area ${area} > spec ${file} > ${group} > ${title}`,
    file_path: `tests/area-${area}/spec-${file}.spec.ts`,
    status,
    duration: status === "skipped" ? 0 : 50 + (hash(t, salt, 1) % 2951),
    ...(status === "flaky" ? { retries: 1 } : {}),
    ...(status === "failed" ? { error: { message: `expect(received).toBe(expected) in ${title}` } } : {}),
  };
}

/**
 * @typedef {object} CiSpec the three bodies of one spec
 * @property {string} create   POST /api/v1/testruns {project_id, ci_build_id, run_title}
 * @property {string} results  POST /api/v1/testruns/{id}/results {results: [size results]}
 * @property {string} complete PATCH /api/v1/testruns/{id} {status}
 * @property {"passed" | "failed"} status failed when any result failed
 * @property {number} size
 */

/**
 * Spec `i` of `size` results (tests [i*size, (i+1)*size)) in execution `salt`.
 * @param {number} size @param {number} i @param {number} salt @param {string} projectId @param {string} build
 * @returns {CiSpec}
 */
export function ciSpec(size, i, salt, projectId, build) {
  const results = Array.from({ length: size }, (_, k) => ciResult(i * size + k, salt));
  const status = results.some((r) => r.status === "failed") ? "failed" : "passed";
  return {
    create: JSON.stringify({ project_id: projectId, ci_build_id: build, run_title: `spec ${i} (${size} tests)` }),
    results: JSON.stringify({ results }),
    complete: JSON.stringify({ status }),
    status,
    size,
  };
}

/**
 * The three requests of a spec, each checked: 201 and a run id; 201 and `accepted` = size; 200 and
 * the completed run's total_tests = size and status as sent. Each resolves with its answer.
 */
export const ciRequests = {
  /**
   * @param {http.Agent} agent @param {URL} base @param {Record<string, string>} headers @param {CiSpec} spec
   * @param {number} [timeoutMs]
   */
  async create(agent, base, headers, spec, timeoutMs) {
    const answer = await request(agent, base, "POST", "/api/v1/testruns", headers, spec.create, 201, timeoutMs);
    const id = JSON.parse(answer.text)?.id;
    if (typeof id !== "string") throw new BenchError(`POST /api/v1/testruns: no run id in ${answer.text.slice(0, 500)}`);
    return { ...answer, id };
  },
  /**
   * @param {http.Agent} agent @param {URL} base @param {Record<string, string>} headers @param {CiSpec} spec
   * @param {string} runId @param {number} [timeoutMs]
   */
  async results(agent, base, headers, spec, runId, timeoutMs) {
    const path = `/api/v1/testruns/${encodeURIComponent(runId)}/results`;
    const answer = await request(agent, base, "POST", path, headers, spec.results, 201, timeoutMs);
    const accepted = JSON.parse(answer.text)?.accepted;
    if (accepted !== spec.size) throw new BenchError(`POST ${path}: expected accepted ${spec.size}, got ${answer.text.slice(0, 500)}`);
    return answer;
  },
  /**
   * @param {http.Agent} agent @param {URL} base @param {Record<string, string>} headers @param {CiSpec} spec
   * @param {string} runId @param {number} [timeoutMs]
   */
  async complete(agent, base, headers, spec, runId, timeoutMs) {
    const path = `/api/v1/testruns/${encodeURIComponent(runId)}`;
    const answer = await request(agent, base, "PATCH", path, headers, spec.complete, 200, timeoutMs);
    const run = JSON.parse(answer.text);
    if (run?.total_tests !== spec.size || run?.status !== spec.status) {
      throw new BenchError(`PATCH ${path}: expected total_tests ${spec.size} and status ${spec.status}, got ${answer.text.slice(0, 500)}`);
    }
    return answer;
  },
};

/**
 * Reports tests [0, size) once, all passed, in one run (1,000 a request, two at a time), so that
 * measured submissions find their test cases and suites, as every CI run after a project's first
 * does.
 * @param {http.Agent} agent @param {URL} base @param {Record<string, string>} headers
 * @param {string} projectId @param {number} size
 */
export async function ciSeedSuite(agent, base, headers, projectId, size) {
  const started = performance.now();
  const created = await request(agent, base, "POST", "/api/v1/testruns", headers, JSON.stringify({ project_id: projectId, ci_build_id: "seed", run_title: "seed" }), 201);
  const id = JSON.parse(created.text)?.id;
  if (typeof id !== "string") throw new BenchError(`POST /api/v1/testruns: no run id in ${created.text.slice(0, 500)}`);
  const chunks = Math.ceil(size / SEED_CHUNK);
  console.error(`[bench] seeding the suite: ${size} tests in ${chunks} submissions of up to ${SEED_CHUNK}`);
  await drive(chunks, SEED_CONCURRENCY, Infinity, async (c) => {
    const from = c * SEED_CHUNK;
    const to = Math.min(size, from + SEED_CHUNK);
    const results = Array.from({ length: to - from }, (_, k) => ({ ...ciResult(from + k, 0), status: "passed", retries: 0, error: undefined }));
    const { ms } = await request(agent, base, "POST", `/api/v1/testruns/${encodeURIComponent(id)}/results`, headers, JSON.stringify({ results }), 201, BIG_TIMEOUT_MS);
    return ms;
  });
  await request(agent, base, "PATCH", `/api/v1/testruns/${encodeURIComponent(id)}`, headers, JSON.stringify({ status: "passed" }), 200, BIG_TIMEOUT_MS);
  console.error(`[bench] seeded in ${((performance.now() - started) / 1000).toFixed(1)} s`);
}

// ---------------------------------------------------------------------------------------------
// The server around a benchmark

/**
 * @typedef {object} BenchContext
 * @property {import("../scripts/local-server.mjs").LocalServer} server
 * @property {URL} base the server's loopback address
 * @property {http.Agent} agent keep-alive, at most `maxSockets` connections
 * @property {ServerKind} serverKind
 * @property {string} serverNote which server, and what was pinned where: for table headers
 */

/**
 * Pins the server to the first allowed CPU and this process to the second, when asked to and
 * possible. Returns the server's CPU list for startServer (undefined: not pinned) and a note.
 * @param {boolean} wanted
 * @returns {{ serverCpus: string | undefined, note: string }}
 */
function pinning(wanted) {
  if (!wanted) return { serverCpus: undefined, note: "not pinned" };
  const cpus = allowedCpus();
  if (cpus.length < 2 || !hasTaskset()) {
    console.error(`[bench] --pin 1 needs taskset and two CPUs (allowed: ${cpus.join(",") || "unknown"}): not pinned`);
    return { serverCpus: undefined, note: "not pinned" };
  }
  const [serverCpu, clientCpu] = /** @type {[number, number]} */ (cpus);
  pinProcess(process.pid, String(clientCpu));
  const note = `server on CPU ${serverCpu}, client on CPU ${clientCpu}`;
  console.error(`[bench] pinned: the server's process group to CPU ${serverCpu} (taskset -c ${serverCpu}), this benchmark (pid ${process.pid}, all threads) to CPU ${clientCpu}`);
  return { serverCpus: String(serverCpu), note };
}

/**
 * Runs one benchmark against a fresh local server and sets the exit code: reads the options
 * (the common --server and --pin, then the benchmark's own), pins, starts the server on loopback,
 * calls `body`, and always stops the server. Ctrl-C (or SIGTERM, SIGHUP) stops the server and
 * exits; a second signal exits at once. A UsageError exits 2, any other failure 1.
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
    const common = readCommonOptions();
    const options = readOptions();
    currentServer = common.server;
    const kind = SERVERS[common.server];

    /** @type {import("../scripts/local-server.mjs").LocalServer | undefined} */
    let server;
    // The server has its own process group, so Ctrl-C reaches only us: stop it, then leave.
    // A second signal exits at once (the exit hook of scripts/server-process.mjs SIGKILLs the group).
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
      const pinned = pinning(common.pin);
      console.error(`[bench] starting the local server, ${kind.label}: migrations, then the Worker...`);
      const startedAt = performance.now();
      server = await kind.start({
        tempPrefix: "greenlight-bench-",
        cpus: pinned.serverCpus,
        // Rate limiting stays on only where a benchmark measures it (it would refuse a load test).
        vars: { REQUIRE_HTTPS: "false", ADMIN_TOKEN, URL_SIGNING_SECRET: "bench-signing-secret", ...(rateLimited ? {} : { RATE_LIMITS: "off" }), ...vars },
      });
      const base = new URL(server.baseUrl);
      if (base.hostname !== HOST) throw new Error(`refusing a non-loopback server address: ${server.baseUrl}`);
      console.error(`[bench] server up at ${server.baseUrl} after ${((performance.now() - startedAt) / 1000).toFixed(1)} s`);
      const serverNote = `server: ${kind.label}; ${pinned.note}`;
      await body({ server, base, agent, serverKind: common.server, serverNote }, options);
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
