#!/usr/bin/env node
// `npm run bench`: every benchmark of issue 12, one after the other, and one table of their figures.
//
// Runs, each as a child process (each starts its own server, pins it and itself: bench/lib.mjs),
// and collects the JSON lines they print:
//
//   P1   bench/ci-ingest.mjs      CI-shaped ingest          --server workerd, and --server dev
//   P2   bench/ingest.mjs         bulk ingest vs the floor  --server workerd
//   P3   bench/auth-overhead.mjs  authenticated read       --server workerd, and --server dev
//   P4   bench/reads.mjs          D1 rows read per page     --server workerd
//   CPU  bench/cpu.mjs            CPU ms per request        --server workerd
//   size bench/bundle.mjs         the deployable bundle
//
// Every figure a benchmark reports is already the median of 3 runs (rounds or repeats, warm-up
// excluded) with min and max. The table shows, for the figures that matter (`--all` for every
// one): median, min, max, the target or bound, pass or miss, and the server. A throughput target
// passes when the median meets it; an upper bound when the largest of the runs does. The child
// processes' own tables and progress go to stderr as they run; stdout gets the table, then every
// JSON line collected (each with its item).
//
// Sizes: the benchmarks' own defaults take too long together (P1 alone took 12–15 minutes under
// wrangler dev), so P1 runs 500 ten-result specs a round (50 of 100, 5 of 1,000) and P4 1,000 test
// cases × 20 runs; the whole run takes about 10 minutes on the 2-core machine. `--quick` shrinks
// everything further (a few minutes: a check that it all works, not figures to quote); `--full`
// runs every benchmark at its own defaults (P1 2,000 specs, P4 5,000 × 50; roughly half an hour);
// `--reads-full` only P4 at 5,000 × 50.
//
// Options:
//   --quick           small sizes, a few minutes
//   --full            every benchmark at its own default size
//   --reads-full      P4 at 5,000 test cases × 50 runs
//   --only LIST       run only these items, comma-separated ids (e.g. P1-workerd,CPU,size)
//   --all             every figure in the table, not only the main ones
//   --pin 0|1         passed to every benchmark (bench/lib.mjs; default: pin where possible)
//   --log-dir DIR     also write each item's whole output to DIR/<id>.log
//
// Plain Node ESM without dependencies (Node 20 and later). Not part of `npm test`.

import { execFileSync, spawn } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { loadavg } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { ROOT } from "../scripts/server-process.mjs";
import { printTable } from "./lib.mjs";

/**
 * @typedef {object} Item one benchmark run
 * @property {string} id e.g. "P1-workerd"
 * @property {string} script file in bench/
 * @property {string[]} args
 * @property {string} what
 */

/**
 * @typedef {object} Line a JSON line of a benchmark
 * @property {string} bench
 * @property {string} figure
 * @property {number} value
 * @property {number} [min]
 * @property {number} [max]
 * @property {string} [server]
 * @property {number} [bound]
 * @property {string} [note]
 * @property {string} item added here
 */

/**
 * @typedef {object} Target
 * @property {number} [atLeast] the median must reach it
 * @property {number} [atMost]  the largest run must stay within it
 * @property {string} [label]   how to print it
 * @property {boolean} [reference] a reference value, not a target of the project
 * @property {boolean} [expectedOver] reported against the bound but not expected to meet it
 */

/** In-memory peer on the 10-result workload on this machine (issue 12; bench/ci-ingest.mjs). */
const PEER_TESTS_PER_S = 4350;

/**
 * The main figures of each benchmark, in table order, with their label and target. Reads' bounds
 * come with the figure (its page size).
 * @type {Record<string, [string, string, Target?][]>}
 */
const MAIN = {
  "ci-ingest": [
    ["tests_per_s_10", "P1 tests/s, 10 results a spec", { atLeast: PEER_TESTS_PER_S, label: "≥ 4,350 (in-memory peer)" }],
    ["tests_per_s_100", "P1 tests/s, 100 a spec"],
    ["tests_per_s_1000", "P1 tests/s, 1,000 a spec"],
    ["requests_per_s_10", "P1 requests/s, 10 a spec"],
    ["overall_p50_ms_10", "P1 p50 ms, 10 a spec"],
    ["overall_p99_ms_10", "P1 p99 ms, 10 a spec"],
    ["livez_requests_per_s", "P1 GET /livez requests/s, 16 clients"],
  ],
  ingest: [
    ["ingest_results_per_s", "P2 ingest results/s (202 + poll)"],
    ["floor_results_per_s", "P2 floor results/s (D1 batch)"],
    ["ratio", "P2 ingest ÷ floor", { atLeast: 0.5, label: "≥ 0.5" }],
  ],
  "auth-overhead": [
    ["livez_rps", "P3 GET /livez requests/s, 8 clients"],
    ["healthz_rps", "P3 GET /healthz requests/s"],
    ["run_rps", "P3 GET /api/v1/testruns/{id} requests/s"],
    ["healthz_p50_ms", "P3 GET /healthz p50 ms"],
    ["run_p50_ms", "P3 GET /api/v1/testruns/{id} p50 ms"],
    ["p50_ratio", "P3 p50 ratio run ÷ healthz", { atMost: 1.5, label: "≤ 1.5" }],
    ["p99_ratio", "P3 p99 ratio run ÷ healthz", { atMost: 1.5, label: "≤ 1.5" }],
    ["p50_ratio_livez", "P3 p50 ratio run ÷ livez"],
  ],
  reads: [
    ["flakiness_list_rows_read", "P4 rows read: flakiness list"],
    ["flakiness_list_offset_rows_read", "P4 rows read: flakiness list, offset page", { expectedOver: true }],
    ["reporting_flakiness_rows_read", "P4 rows read: GET /api/flakiness"],
    ["testcase_history_rows_read", "P4 rows read: test case history"],
    ["run_results_rows_read", "P4 rows read: run results page"],
  ],
  cpu: [
    ["livez_cpu_ms", "CPU ms: GET /livez"],
    ["healthz_cpu_ms", "CPU ms: GET /healthz (D1 SELECT 1)"],
    ["run_cpu_ms", "CPU ms: GET /api/v1/testruns/{id}"],
    ["create_cpu_ms", "CPU ms: POST /api/v1/testruns"],
    ["results_cpu_ms", "CPU ms: POST …/results (10)"],
    ["complete_cpu_ms", "CPU ms: PATCH /api/v1/testruns/{id}"],
    ["flakiness_cpu_ms", "CPU ms: GET …/flakiness"],
  ],
  bundle: [
    ["gzip_bytes", "bundle gzip bytes", { atMost: 3 * 1024 * 1024, label: "≤ 3 MiB (Free plan)" }],
    ["raw_bytes", "bundle raw bytes"],
  ],
};
/** CPU time: the Free plan's 10 ms per invocation, for reference (local figures include SQLite). */
const CPU_REFERENCE = { atMost: 10, label: "≤ 10 (Free plan; ref.)", reference: true };

const { values: opts } = parseArgs({
  options: {
    quick: { type: "boolean", default: false },
    full: { type: "boolean", default: false },
    "reads-full": { type: "boolean", default: false },
    only: { type: "string" },
    all: { type: "boolean", default: false },
    pin: { type: "string" },
    "log-dir": { type: "string" },
  },
  strict: true,
});
if (opts.quick && (opts.full || opts["reads-full"])) {
  console.error("[bench] --quick does not go with --full or --reads-full");
  process.exit(2);
}

/**
 * Sizes: quick, the default of this run, or each benchmark's own (full).
 * @param {string[]} quick @param {string[]} normal @param {string[]} [full]
 */
const size = (quick, normal, full = []) => (opts.quick ? quick : opts.full ? full : normal);

/** @type {Item[]} */
const ITEMS = [
  ...["workerd", "dev"].map((server) => ({
    id: `P1-${server}`,
    script: "ci-ingest.mjs",
    what: "CI-shaped ingest",
    args: ["--server", server, ...size(["--specs", "100", "--warmup", "10", "--livez", "300"], ["--specs", "500", "--warmup", "30", "--livez", "1000"])],
  })),
  { id: "P2-workerd", script: "ingest.mjs", what: "bulk ingest", args: ["--server", "workerd", ...size(["--results", "6000"], [])] },
  ...["workerd", "dev"].map((server) => ({
    id: `P3-${server}`,
    script: "auth-overhead.mjs",
    what: "authenticated read",
    args: ["--server", server, ...size(["--requests", "200"], [])],
  })),
  {
    id: "P4-workerd",
    script: "reads.mjs",
    what: "rows read per page",
    args: ["--server", "workerd", ...(opts["reads-full"] ? [] : size(["--cases", "300", "--runs", "5"], ["--cases", "1000", "--runs", "20"]))],
  },
  { id: "CPU-workerd", script: "cpu.mjs", what: "CPU per request", args: ["--server", "workerd", ...size(["--requests", "50", "--warmup", "10"], [])] },
  { id: "size", script: "bundle.mjs", what: "bundle size", args: [] },
];

const only = opts.only?.split(",").map((s) => s.trim()).filter(Boolean);
const unknown = only?.filter((id) => !ITEMS.some((item) => item.id === id));
if (unknown && unknown.length > 0) {
  console.error(`[bench] --only: unknown item(s) ${unknown.join(", ")}; the items are ${ITEMS.map((i) => i.id).join(", ")}`);
  process.exit(2);
}
const items = ITEMS.filter((item) => !only || only.includes(item.id));
if (opts.pin !== undefined) for (const item of items) item.args.push("--pin", opts.pin);
if (opts["log-dir"]) mkdirSync(opts["log-dir"], { recursive: true });

/** The benchmark running now, and whether a signal asked us to stop. */
/** @type {import("node:child_process").ChildProcess | undefined} */
let current;
let interrupted = false;
// Ctrl-C reaches the running benchmark too (same process group), which stops its server and
// exits; SIGTERM and SIGHUP reach only us, so they are passed on. No item starts after either.
process.on("SIGINT", () => {
  interrupted = true;
});
for (const signal of /** @type {const} */ (["SIGTERM", "SIGHUP"])) {
  process.on(signal, () => {
    interrupted = true;
    current?.kill(signal);
  });
}

/**
 * Runs one item; resolves with its JSON lines and exit code. Its stderr and the non-JSON lines of
 * its stdout go to our stderr, prefixed with the item's id.
 * @param {Item} item
 * @returns {Promise<{ lines: Line[], code: number, seconds: number }>}
 */
function runItem(item) {
  return new Promise((resolveRun) => {
    const started = performance.now();
    const child = spawn(process.execPath, [join(ROOT, "bench", item.script), ...item.args], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
    current = child;
    /** @type {Line[]} */
    const lines = [];
    let log = "";
    /**
     * @param {NodeJS.ReadableStream | null} stream
     * @param {boolean} isStdout
     */
    const follow = (stream, isStdout) => {
      let pending = "";
      stream?.on("data", (chunk) => {
        log += chunk;
        pending += chunk;
        const parts = pending.split("\n");
        pending = parts.pop() ?? "";
        for (const line of parts) {
          if (isStdout && line.startsWith('{"bench"')) {
            try {
              lines.push({ ...JSON.parse(line), item: item.id });
              continue;
            } catch {
              // not a figure after all: show it
            }
          }
          process.stderr.write(`[${item.id}] ${line}\n`);
        }
      });
    };
    follow(child.stdout, true);
    follow(child.stderr, false);
    const done = (/** @type {number} */ code) => {
      if (opts["log-dir"]) writeFileSync(join(opts["log-dir"], `${item.id}.log`), log);
      resolveRun({ lines, code, seconds: (performance.now() - started) / 1000 });
    };
    child.on("error", (err) => {
      process.stderr.write(`[${item.id}] could not start: ${err.message}\n`);
      done(1);
    });
    child.on("exit", (code, signal) => done(code ?? (signal ? 1 : 0)));
  });
}

/** @param {number} x */
function fmt(x) {
  if (!Number.isFinite(x)) return String(x);
  const abs = Math.abs(x);
  const digits = Number.isInteger(x) || abs >= 1000 ? 0 : abs >= 100 ? 1 : abs >= 1 ? 2 : 3;
  return x.toLocaleString("en", { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

/**
 * The target of a figure, and whether it is met.
 * @param {Line} line @param {Target | undefined} target
 * @returns {[string, string]} the target as printed, the verdict
 */
function verdict(line, target) {
  const max = line.max ?? line.value;
  if (line.bench === "reads" && typeof line.bound === "number") {
    const ok = max <= line.bound;
    return [`≤ ${line.bound} (3 × page)`, ok ? "pass" : target?.expectedOver ? "over (expected)" : "miss"];
  }
  if (!target) return ["", ""];
  if (target.atLeast !== undefined) return [target.label ?? `≥ ${target.atLeast}`, line.value >= target.atLeast ? "pass" : "miss"];
  if (target.atMost !== undefined) {
    const ok = max <= target.atMost;
    return [target.label ?? `≤ ${target.atMost}`, target.reference ? (ok ? "within" : "over") : ok ? "pass" : "miss"];
  }
  return ["", ""];
}

async function main() {
  const started = performance.now();
  const commit = (() => {
    try {
      const head = execFileSync("git", ["rev-parse", "--short", "HEAD"], { cwd: ROOT, encoding: "utf8" }).trim();
      const dirty = execFileSync("git", ["status", "--porcelain", "--", "src", "migrations", "wrangler.toml"], { cwd: ROOT, encoding: "utf8" }).trim() !== "";
      return dirty ? `${head} (src/, migrations/ or wrangler.toml modified)` : head;
    } catch {
      return "unknown";
    }
  })();
  const loadAtStart = loadavg().map((x) => x.toFixed(2)).join(" ");
  const mode = opts.quick ? "quick" : opts.full ? "full" : opts["reads-full"] ? "default, P4 full" : "default";
  console.error(`[bench] ${items.length} item(s), ${mode} sizes: ${items.map((i) => i.id).join(", ")}`);

  /** @type {Line[]} */
  const all = [];
  /** @type {{ item: Item, code: number, seconds: number }[]} */
  const runs = [];
  for (const item of items) {
    if (interrupted) {
      console.error("[bench] interrupted: no more items");
      break;
    }
    console.error(`[bench] ${item.id}: node bench/${item.script} ${item.args.join(" ")}`);
    const { lines, code, seconds } = await runItem(item);
    console.error(`[bench] ${item.id}: ${code === 0 ? "done" : `FAILED (exit code ${code})`} in ${seconds.toFixed(0)} s, ${lines.length} figures`);
    all.push(...lines);
    runs.push({ item, code, seconds });
  }

  /** @type {string[][]} */
  const rows = [["figure", "server", "median", "min", "max", "target / bound", "result"]];
  for (const { item, code } of runs) {
    const lines = all.filter((l) => l.item === item.id);
    if (code !== 0 && lines.length === 0) {
      rows.push([`${item.id} (${item.what})`, "", "", "", "", "", "FAILED"]);
      continue;
    }
    const bench = lines[0]?.bench ?? "";
    const catalog = MAIN[bench] ?? [];
    /** @type {[Line, string, Target | undefined][]} */
    const chosen = opts.all
      ? lines.map((l) => [l, `${bench} ${l.figure}`, catalog.find(([f]) => f === l.figure)?.[2] ?? (bench === "cpu" && l.figure.endsWith("_cpu_ms") ? CPU_REFERENCE : undefined)])
      : catalog.flatMap(([figure, label, target]) => {
          const line = lines.find((l) => l.figure === figure);
          return line ? [[line, label, target ?? (bench === "cpu" ? CPU_REFERENCE : undefined)]] : [];
        });
    for (const [line, label, target] of chosen) {
      const [bound, result] = verdict(line, target);
      rows.push([label, line.server ?? "—", fmt(line.value), fmt(line.min ?? line.value), fmt(line.max ?? line.value), bound, result]);
    }
    if (code !== 0) rows.push([`${item.id} (${item.what}) exited with ${code}`, "", "", "", "", "", "FAILED"]);
  }

  const minutes = (performance.now() - started) / 60_000;
  console.log("");
  console.log(
    `bench: ${new Date().toISOString().slice(0, 16).replace("T", " ")} UTC, commit ${commit}, ${mode} sizes, ${minutes.toFixed(1)} min; ` +
      `load average ${loadAtStart} at start, ${loadavg().map((x) => x.toFixed(2)).join(" ")} at end`,
  );
  console.log("each figure: median of 3 runs (warm-up excluded) with min and max; a target passes on the median, a bound on the largest run");
  printTable(rows);
  console.log("");
  for (const line of all) console.log(JSON.stringify(line));
  process.exitCode = runs.some((r) => r.code !== 0) ? 1 : 0;
}

main().catch((err) => {
  console.error(`[bench] failed: ${err?.stack ?? err}`);
  process.exitCode = 1;
});
