#!/usr/bin/env node
// `npm run bench:cpu`: CPU time per request of the hot paths (issue 12).
//
// The local runtime does not report CPU time per request: workerd's trace events (a tail worker's
// TraceItem.cpuTime and wallTime, a streaming tail's outcome event) carry 0 locally; only the
// production runtime fills them in (checked with workerd 1.20261102.1, Miniflare 5 beta). So this
// measures the server's workerd processes from outside: user + system CPU time of every workerd
// process in the server's process group (/proc/<pid>/stat, utime + stime in clock ticks,
// `getconf CLK_TCK`; LocalServer.cpuTimeMs() in scripts/server-process.mjs) around a loop of
// requests, divided by the requests. What that includes besides the Worker's own JavaScript:
//
//   - local D1: SQLite runs inside the same workerd process (a Durable Object of Miniflare's);
//     in production D1 runs elsewhere and is not billed as the Worker's CPU time;
//   - workerd's own HTTP handling of the request (parsing, the socket);
//   - under `--server dev` also wrangler dev's proxy worker (a second workerd);
//   - the work a request leaves behind (waitUntil: the outbox flush; queue consumers: webhook
//     fan-out), because each measurement lasts until the server is idle again; the in-loop
//     column leaves that tail out.
//
// So a figure here is an upper bound of the Worker's billed CPU time for that request, and the
// right thing to compare between commits on the same machine.
//
// It starts a real local server (bench/lib.mjs: `--server workerd` by default, the built bundle
// under Miniflare; RATE_LIMITS=off), creates an organization, project and key, reports the suite
// once (bench:ci's workload: test t in file t/10), and then, `--repeats` times, measures in turn,
// each path with one request at a time (no contention inside the server):
//
//   livez     GET   /livez                                     no auth, no D1: the floor
//   healthz   GET   /healthz                                   no auth, D1's SELECT 1
//   create    POST  /api/v1/testruns {project_id, ci_build_id, run_title}
//   results   POST  /api/v1/testruns/{id}/results  10 results (each to a run made by `create`)
//   complete  PATCH /api/v1/testruns/{id} {status}             (the same runs, completed)
//   run       GET   /api/v1/testruns/{id}                      authenticated read of a run
//   flakiness GET   /api/v1/projects/{id}/flakiness            the project's flakiness list
//
// The bodies are bench:ci's (bench/lib.mjs ciSpec, 10 results a spec) and every answer is checked
// the same way. For each path: `--warmup` unmeasured requests, then wait until the server is idle,
// then `--requests` measured requests (/livez and /healthz: 10 times as many, see CHEAP_FACTOR). The
// CPU time counted is from the first measured request until the server is idle again (3 windows
// of 200 ms in a row without a tick of workerd CPU, at most 60 s), less the idle rate measured at
// the start (5 s; about 0) times that span. /proc counts in clock ticks of 10 ms, so a figure's
// resolution is 10 ms ÷ the requests (0.033 ms at 300). Each figure is the median of the repeats
// with min and max: CPU ms per request (with the tail), CPU ms per request within the loop only,
// and the client's p50 latency.
//
// Options (flag or environment variable; defaults in brackets):
//   --requests N   BENCH_REQUESTS   measured requests per path and repeat [300]
//   --warmup N     BENCH_WARMUP     unmeasured requests before each [30]
//   --repeats N    BENCH_REPEATS    repeats; figures are their median [3]
//   --server, --pin                 see bench/lib.mjs: which server [workerd], CPU pinning
//
// Plain Node ESM without dependencies (Node 20 and later); Linux only (/proc). Not part of `npm test`.

import {
  BenchError,
  ciRequests,
  ciSeedSuite,
  ciSpec,
  createOrganization,
  emit,
  percentile,
  printTable,
  readIntOptions,
  request,
  round,
  runBenchmark,
  spread,
} from "./lib.mjs";

const BENCH = "cpu";
const SPEC_SIZE = 10;
/** Settling: windows this long, this many quiet ones in a row, quiet under this much CPU, for at most this long. */
const SETTLE_WINDOW_MS = 200;
const SETTLE_QUIET_WINDOWS = 3;
const SETTLE_QUIET_CPU_MS = 5;
const SETTLE_MAX_MS = 60_000;
/** How long the idle rate is measured at the start (after settling; it is about 0). */
const IDLE_MS = 5000;
/**
 * GET /livez and /healthz cost a fraction of a clock tick (10 ms), so they run this many times the
 * requests of the other paths, which keeps their resolution (one tick ÷ requests) like theirs.
 */
const CHEAP_FACTOR = 10;
/** Workers Free plan: 10 ms of CPU per invocation. A reference, not a target: see the caveats above. */
const FREE_PLAN_CPU_MS = 10;

/** @param {number} ms */
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const readOptions = () =>
  readIntOptions({
    requests: { flag: "requests", env: "BENCH_REQUESTS", fallback: 300, min: 1 },
    warmup: { flag: "warmup", env: "BENCH_WARMUP", fallback: 30, min: 0 },
    repeats: { flag: "repeats", env: "BENCH_REPEATS", fallback: 3, min: 1 },
  });

/**
 * @typedef {object} PathSpec
 * @property {string} name
 * @property {string} label
 * @property {number} [factor] measured requests = factor × --requests (default 1)
 * @property {(i: number) => Promise<number>} send request i of this phase (warm-up first); resolves with its latency
 */

/**
 * @param {import("./lib.mjs").BenchContext} ctx
 * @param {ReturnType<typeof readOptions>} options
 */
async function body({ server, base, agent, serverNote }, options) {
  if (Number.isNaN(server.cpuTimeMs())) throw new BenchError("this server's CPU time cannot be read (needs Linux /proc and a workerd process in its group)");
  const { projectId, apiKey } = await createOrganization(agent, base, { name: "CPU bench organization", projectName: "CPU bench project" });
  const headers = { accept: "application/json", "content-type": "application/json", authorization: `Bearer ${apiKey}` };
  const readHeaders = { accept: "application/json", authorization: `Bearer ${apiKey}` };
  const perPhase = options.warmup + options.requests;
  await ciSeedSuite(agent, base, headers, projectId, perPhase * SPEC_SIZE);

  /** Waits until the server's workerd processes are idle; answers how long it took. */
  const settle = async () => {
    const started = performance.now();
    let quiet = 0;
    let last = server.cpuTimeMs();
    while (quiet < SETTLE_QUIET_WINDOWS && performance.now() - started < SETTLE_MAX_MS) {
      await sleep(SETTLE_WINDOW_MS);
      const now = server.cpuTimeMs();
      quiet = now - last < SETTLE_QUIET_CPU_MS ? quiet + 1 : 0;
      last = now;
    }
    if (quiet < SETTLE_QUIET_WINDOWS) console.error(`[bench] the server was still busy after ${SETTLE_MAX_MS / 1000} s of settling; measuring anyway`);
    return performance.now() - started;
  };

  await settle();
  const idleStart = server.cpuTimeMs();
  const idleStarted = performance.now();
  await sleep(IDLE_MS);
  const idleRate = (server.cpuTimeMs() - idleStart) / (performance.now() - idleStarted); // CPU ms per wall ms
  console.error(`[bench] idle: workerd uses ${(idleRate * 1000).toFixed(1)} ms of CPU per second`);

  /** @type {Map<string, { label: string, requests: number, cpu: number[], cpuLoop: number[], p50: number[] }>} */
  const figures = new Map();

  for (let rep = 0; rep < options.repeats; rep++) {
    const salt = 200 + rep;
    const specs = Array.from({ length: perPhase }, (_, i) => ciSpec(SPEC_SIZE, i, salt, projectId, `cpu-${rep + 1}`));
    /** @type {string[]} run ids made by `create`, one per spec */
    const runIds = [];

    /** @type {PathSpec[]} */
    const paths = [
      {
        name: "livez",
        label: "GET /livez",
        factor: CHEAP_FACTOR,
        send: async () => (await request(agent, base, "GET", "/livez", { accept: "application/json" })).ms,
      },
      {
        name: "healthz",
        label: "GET /healthz",
        factor: CHEAP_FACTOR,
        send: async () => (await request(agent, base, "GET", "/healthz", { accept: "application/json" })).ms,
      },
      {
        name: "create",
        label: "POST /api/v1/testruns",
        send: async (i) => {
          const created = await ciRequests.create(agent, base, headers, /** @type {import("./lib.mjs").CiSpec} */ (specs[i]));
          runIds[i] = created.id;
          return created.ms;
        },
      },
      {
        name: "results",
        label: `POST /api/v1/testruns/{id}/results (${SPEC_SIZE} results)`,
        send: async (i) =>
          (await ciRequests.results(agent, base, headers, /** @type {import("./lib.mjs").CiSpec} */ (specs[i]), /** @type {string} */ (runIds[i]))).ms,
      },
      {
        name: "complete",
        label: "PATCH /api/v1/testruns/{id} (complete)",
        send: async (i) =>
          (await ciRequests.complete(agent, base, headers, /** @type {import("./lib.mjs").CiSpec} */ (specs[i]), /** @type {string} */ (runIds[i]))).ms,
      },
      {
        name: "run",
        label: "GET /api/v1/testruns/{id}",
        send: async (i) => {
          const path = `/api/v1/testruns/${encodeURIComponent(/** @type {string} */ (runIds[i]))}`;
          const answer = await request(agent, base, "GET", path, readHeaders);
          if (JSON.parse(answer.text)?.total_tests !== SPEC_SIZE) throw new BenchError(`GET ${path}: expected total_tests ${SPEC_SIZE}, got ${answer.text.slice(0, 500)}`);
          return answer.ms;
        },
      },
      {
        name: "flakiness",
        label: "GET /api/v1/projects/{id}/flakiness",
        send: async () => {
          const path = `/api/v1/projects/${encodeURIComponent(projectId)}/flakiness`;
          const answer = await request(agent, base, "GET", path, readHeaders);
          if (!Array.isArray(JSON.parse(answer.text)?.data)) throw new BenchError(`GET ${path}: no data array in ${answer.text.slice(0, 500)}`);
          return answer.ms;
        },
      },
    ];

    for (const path of paths) {
      const requests = options.requests * (path.factor ?? 1);
      for (let i = 0; i < options.warmup; i++) await path.send(i);
      await settle();
      const c0 = server.cpuTimeMs();
      const t0 = performance.now();
      /** @type {number[]} */
      const latencies = [];
      for (let i = options.warmup; i < options.warmup + requests; i++) latencies.push(await path.send(i));
      const c1 = server.cpuTimeMs();
      const t1 = performance.now();
      await settle();
      const c2 = server.cpuTimeMs();
      const t2 = performance.now();
      const cpu = (c2 - c0 - idleRate * (t2 - t0)) / requests;
      const cpuLoop = (c1 - c0 - idleRate * (t1 - t0)) / requests;
      const p50 = percentile([...latencies].sort((x, y) => x - y), 50);
      const figure = figures.get(path.name) ?? { label: path.label, requests, cpu: [], cpuLoop: [], p50: [] };
      figure.cpu.push(cpu);
      figure.cpuLoop.push(cpuLoop);
      figure.p50.push(p50);
      figures.set(path.name, figure);
      console.error(
        `[bench] repeat ${rep + 1}: ${path.name}: ${cpu.toFixed(3)} ms CPU per request (${cpuLoop.toFixed(3)} within the loop), ` +
          `p50 ${p50.toFixed(2)} ms, ${((requests * 1000) / (t1 - t0)).toFixed(0)} requests/s, tail ${((t2 - t1) / 1000).toFixed(1)} s`,
      );
    }
  }

  console.log("");
  console.log(
    `cpu: workerd CPU time per request, ${options.requests} requests one at a time (/livez and /healthz ${options.requests * CHEAP_FACTOR}) ` +
      `after ${options.warmup} warm-up, ${options.repeats} repeat(s), ${server.baseUrl}`,
  );
  console.log(serverNote);
  console.log("CPU: utime + stime of the server's workerd processes (/proc) until idle again, ÷ requests, less the idle rate; includes local D1 (SQLite in the same process); median [min–max] over repeats");
  const fmt = (/** @type {number[]} */ values, /** @type {number} */ digits) => {
    const s = spread(values);
    return `${s.value.toFixed(digits)} [${s.min.toFixed(digits)}–${s.max.toFixed(digits)}]`;
  };
  printTable([
    ["path", "request", "CPU ms/request", "within loop", "p50 ms"],
    ...[...figures].map(([name, f]) => [name, f.label, fmt(f.cpu, 3), fmt(f.cpuLoop, 3), fmt(f.p50, 2)]),
  ]);
  console.log("");
  for (const [name, f] of figures) {
    const s = spread(f.cpu, 3);
    emit({ bench: BENCH, figure: `${name}_cpu_ms`, ...s, request: f.label, requests: f.requests, repeats: f.cpu.length, ref: FREE_PLAN_CPU_MS, ok: s.max <= FREE_PLAN_CPU_MS });
    emit({ bench: BENCH, figure: `${name}_cpu_ms_in_loop`, ...spread(f.cpuLoop, 3) });
    emit({ bench: BENCH, figure: `${name}_p50_ms`, ...spread(f.p50, 2) });
  }
  emit({ bench: BENCH, figure: "idle_cpu_ms_per_s", value: round(idleRate * 1000, 2) });
}

runBenchmark({ readOptions, maxSockets: () => 1, body });
