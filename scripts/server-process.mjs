// What the two local servers share (scripts/local-server.mjs: `wrangler dev`; scripts/bundle-server.mjs:
// the built bundle under Miniflare): a child process in a process group of its own on a free
// loopback port, its log, the wait for GET /healthz, stop(), the exit hook, optional CPU pinning,
// and the CPU time its workerd processes have used.
//
// Plain Node ESM without dependencies (Node 20 and later). The CPU-time and pinning parts are for
// Linux (/proc, taskset); elsewhere cpuTimeMs() answers NaN and pinning is refused.

import { execFileSync, spawn } from "node:child_process";
import { existsSync, readFileSync, readdirSync, rmSync } from "node:fs";
import http from "node:http";
import { createServer } from "node:net";
import { delimiter, dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/** The repository root. */
export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");

/** The only address the servers listen on. */
export const HOST = "127.0.0.1";

/** node_modules/.bin of the project: wrangler, and the project's own Node (the `node` devDependency). */
export const BIN_DIR = join(ROOT, "node_modules", ".bin");

/**
 * Environment that keeps wrangler from calling out to the internet (telemetry, the Request.cf
 * sample) and from ever waiting for input. Also useful for other wrangler/npm children.
 * @type {Readonly<Record<string, string>>}
 */
export const QUIET_ENV = Object.freeze({
  CI: "true",
  WRANGLER_SEND_METRICS: "false",
  CLOUDFLARE_CF_FETCH_ENABLED: "false",
  NO_COLOR: "1",
});

const KILL_WAIT_MS = 5_000;
const LOG_LIMIT = 200_000;
const LOG_KEEP = 100_000;
/** One GET /healthz while waiting for the server; the whole probe, connection to last byte. */
const PROBE_TIMEOUT_MS = 2_000;
const PROBE_INTERVAL_MS = 250;

/**
 * @typedef {object} LocalServerOptions
 * @property {Record<string, string>} [vars] Worker variables, over wrangler.toml [vars] and .dev.vars
 *   (`--var K:V` for both servers).
 * @property {string[]} [extraArgs] More arguments for the server command (`wrangler dev`, or
 *   scripts/serve-bundle.mjs), appended last.
 * @property {Record<string, string | undefined>} [env] Merged over process.env and QUIET_ENV.
 * @property {number} [startupTimeoutMs] How long to wait for GET /healthz 200 (default 90 s).
 * @property {number} [shutdownTimeoutMs] How long stop() waits after SIGTERM before SIGKILL (default 15 s).
 * @property {string} [tempPrefix] Prefix of the temporary --persist-to directory.
 * @property {string} [cpus] Run the whole server under `taskset -c <cpus>` (e.g. "0"); Linux only.
 */

/**
 * @typedef {object} LocalServer
 * @property {string} baseUrl `http://127.0.0.1:<port>`, no trailing slash.
 * @property {number} port
 * @property {string} persistDir The temporary --persist-to directory (removed by stop()).
 * @property {number} pid Process id of the server's first process, which is also the process group id.
 * @property {() => string} log The server's output so far (stdout and stderr; the tail only).
 * @property {() => Promise<void>} stop Ends the whole process group and removes its temporary
 *   directories. Idempotent.
 * @property {() => number} cpuTimeMs CPU time (user + system, ms) used so far by the workerd
 *   processes of the server's process group; NaN where /proc is not available.
 */

/**
 * @typedef {object} ServerProcessSpec
 * @property {string} label what the server is, for messages ("wrangler dev", ...)
 * @property {string} command the executable
 * @property {string[]} args
 * @property {Record<string, string | undefined>} env the child's whole environment
 * @property {number} port the port it was told to listen on (loopback)
 * @property {string} persistDir returned as `persistDir`, removed by stop()
 * @property {string[]} [tempDirs] more directories stop() removes
 * @property {string} [cpus] run it under `taskset -c <cpus>`
 * @property {number} startupTimeoutMs
 * @property {number} shutdownTimeoutMs
 */

/** @param {number} ms */
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * A port that was free on the loopback address a moment ago.
 * @returns {Promise<number>}
 */
export function freeLoopbackPort() {
  return new Promise((resolvePort, reject) => {
    const probe = createServer();
    probe.unref();
    probe.once("error", reject);
    probe.listen(0, HOST, () => {
      const address = probe.address();
      const port = typeof address === "object" && address ? address.port : 0;
      probe.close(() => (port ? resolvePort(port) : reject(new Error("no port assigned"))));
    });
  });
}

/**
 * `env` with the project's node_modules/.bin first on PATH, so that wrangler and its children run
 * on the project's Node (wrangler and miniflare need Node >= 22; the system one may be older).
 * @param {Record<string, string | undefined>} env
 * @returns {Record<string, string | undefined>}
 */
export function withProjectBin(env) {
  const out = { ...env };
  // Find the PATH key case-insensitively (Windows spells it "Path").
  const pathKey = Object.keys(out).find((k) => k.toUpperCase() === "PATH") ?? "PATH";
  out[pathKey] = out[pathKey] ? `${BIN_DIR}${delimiter}${out[pathKey]}` : BIN_DIR;
  return out;
}

/**
 * The project's own Node (node_modules/.bin/node, Node 24) if installed, else this one.
 * @returns {string}
 */
export function projectNode() {
  const bin = join(BIN_DIR, process.platform === "win32" ? "node.cmd" : "node");
  return existsSync(bin) ? bin : process.execPath;
}

/**
 * One GET that always settles within `timeoutMs`, whatever the connection does: a fresh
 * connection (no keep-alive pool), and a timer of its own that ends the wait even if the HTTP
 * machinery never reports back.
 * @param {string} url
 * @param {number} timeoutMs
 * @returns {Promise<{ status: number, text: string }>}
 */
export function probe(url, timeoutMs) {
  return new Promise((resolveProbe, reject) => {
    let settled = false;
    /** @type {NodeJS.Timeout | undefined} */
    let timer;
    /** @param {() => void} fn */
    const settle = (fn) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      fn();
    };
    const req = http.get(url, { agent: false, headers: { connection: "close" } }, (res) => {
      /** @type {Buffer[]} */
      const chunks = [];
      res.on("data", (c) => chunks.push(c));
      res.on("error", (err) => settle(() => reject(err)));
      res.on("end", () => settle(() => resolveProbe({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString("utf8") })));
    });
    req.on("error", (err) => settle(() => reject(err)));
    timer = setTimeout(() => {
      settle(() => reject(new Error(`no complete answer within ${timeoutMs} ms`)));
      req.destroy();
    }, timeoutMs);
  });
}

/**
 * Clock ticks per second of /proc/<pid>/stat (`getconf CLK_TCK`; 100 on every Linux we know).
 * @type {number | undefined}
 */
let clockTicks;
function ticksPerSecond() {
  if (clockTicks === undefined) {
    try {
      clockTicks = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;
    } catch {
      clockTicks = 100;
    }
  }
  return clockTicks;
}

/**
 * The processes of process group `pgid` with their CPU time so far, from /proc/<pid>/stat
 * (utime + stime: every thread of the process, not its reaped children). Linux only; [] elsewhere.
 * @param {number} pgid
 * @returns {{ pid: number, comm: string, cpuMs: number, userMs: number, systemMs: number }[]}
 */
export function groupProcesses(pgid) {
  /** @type {string[]} */
  let entries;
  try {
    entries = readdirSync("/proc");
  } catch {
    return [];
  }
  const tick = 1000 / ticksPerSecond();
  const found = [];
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    let stat;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, "utf8");
    } catch {
      continue; // gone since the listing
    }
    // "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses, so split after the last ")".
    const close = stat.lastIndexOf(")");
    const comm = stat.slice(stat.indexOf("(") + 1, close);
    const fields = stat.slice(close + 2).split(" ");
    // fields[0] is field 3 (state): pgrp is field 5, utime 14, stime 15.
    if (Number(fields[2]) !== pgid) continue;
    const userMs = Number(fields[11]) * tick;
    const systemMs = Number(fields[12]) * tick;
    found.push({ pid: Number(entry), comm, cpuMs: userMs + systemMs, userMs, systemMs });
  }
  return found;
}

/**
 * The CPUs this process may run on (/proc/self/status Cpus_allowed_list), e.g. [0, 1]; [] when
 * unknown.
 * @returns {number[]}
 */
export function allowedCpus() {
  try {
    const line = readFileSync("/proc/self/status", "utf8").split("\n").find((l) => l.startsWith("Cpus_allowed_list:"));
    if (!line) return [];
    /** @type {number[]} */
    const cpus = [];
    for (const part of line.slice(line.indexOf(":") + 1).trim().split(",")) {
      const [from, to] = part.split("-").map(Number);
      if (from === undefined || Number.isNaN(from)) continue;
      for (let c = from; c <= (to ?? from); c++) cpus.push(c);
    }
    return cpus;
  } catch {
    return [];
  }
}

/** @type {boolean | undefined} */
let tasksetFound;
/** Whether `taskset` (util-linux) can be run. */
export function hasTaskset() {
  if (tasksetFound === undefined) {
    try {
      execFileSync("taskset", ["--version"], { stdio: "ignore" });
      tasksetFound = true;
    } catch {
      tasksetFound = false;
    }
  }
  return tasksetFound;
}

/**
 * Pins every thread of process `pid` to `cpus` (`taskset -a -p -c`).
 * @param {number} pid
 * @param {string} cpus e.g. "1"
 */
export function pinProcess(pid, cpus) {
  execFileSync("taskset", ["-a", "-p", "-c", cpus, String(pid)], { stdio: "ignore" });
}

/**
 * Starts `spec.command` in a process group of its own and resolves once GET /healthz answers 200.
 * Rejects (after ending the group and removing the directories) when the first process exits
 * first or the server is not healthy within the startup timeout; the error message then carries
 * the server's log. Each probe of /healthz settles within PROBE_TIMEOUT_MS whatever the
 * connection does, so the startup timeout always holds.
 * @param {ServerProcessSpec} spec
 * @returns {Promise<LocalServer>}
 */
export async function startServerProcess(spec) {
  const { label, persistDir, port, startupTimeoutMs, shutdownTimeoutMs } = spec;
  const dirs = [persistDir, ...(spec.tempDirs ?? [])];
  const removeDirs = () => {
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  };
  const baseUrl = `http://${HOST}:${port}`;
  // taskset sets the affinity and then executes the command in its place (same pid), and every
  // process the server starts inherits it.
  const [command, args] = spec.cpus === undefined ? [spec.command, spec.args] : ["taskset", ["-c", spec.cpus, spec.command, ...spec.args]];

  let output = "";
  /** @param {Buffer | string} chunk */
  const appendLog = (chunk) => {
    output += chunk.toString();
    // Keep the tail only: enough to explain a failure.
    if (output.length > LOG_LIMIT) output = output.slice(-LOG_KEEP);
  };

  // detached: its own process group, so the group can be signalled as a whole, and a Ctrl-C
  // in the terminal does not reach it directly (the caller decides when it stops).
  const child = spawn(command, args, { cwd: ROOT, env: spec.env, detached: true, stdio: ["ignore", "pipe", "pipe"] });
  const pid = child.pid;
  if (!pid) {
    removeDirs();
    throw new Error(`could not start ${command} ${args.join(" ")}`);
  }
  child.stdout?.on("data", appendLog);
  child.stderr?.on("data", appendLog);
  /** @type {Error | undefined} */
  let spawnError;
  child.once("error", (err) => {
    spawnError = err;
  });

  /**
   * Signals the whole process group; false when it is gone (ESRCH).
   * @param {NodeJS.Signals | 0} signal
   */
  const signalGroup = (signal) => {
    try {
      process.kill(-pid, signal);
      return true;
    } catch {
      return false;
    }
  };
  const groupAlive = () => signalGroup(0);
  const leaderRunning = () => !spawnError && child.exitCode === null && child.signalCode === null;

  // Last resort if this process exits without stop() (an uncaught error, process.exit(), ...).
  const killOnExit = () => {
    signalGroup("SIGKILL");
    try {
      removeDirs();
    } catch {
      // best effort
    }
  };
  process.on("exit", killOnExit);

  /** @type {Promise<void> | undefined} */
  let stopping;
  const stop = () => {
    stopping ??= (async () => {
      if (groupAlive()) {
        signalGroup("SIGTERM");
        const deadline = Date.now() + shutdownTimeoutMs;
        while (groupAlive() && Date.now() < deadline) await sleep(200);
        if (groupAlive()) {
          signalGroup("SIGKILL");
          const killDeadline = Date.now() + KILL_WAIT_MS;
          while (groupAlive() && Date.now() < killDeadline) await sleep(100);
        }
      }
      process.off("exit", killOnExit);
      removeDirs();
    })();
    return stopping;
  };

  const deadline = Date.now() + startupTimeoutMs;
  let last = "no answer yet";
  try {
    for (;;) {
      if (!leaderRunning()) {
        const how = spawnError
          ? `could not be started: ${spawnError.message}`
          : `exited early (code ${child.exitCode}, signal ${child.signalCode})`;
        throw new Error(`${label} ${how}\n${output}`);
      }
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new Error(`GET ${baseUrl}/healthz not 200 within ${startupTimeoutMs / 1000} s (last: ${last})\n${output}`);
      }
      try {
        const { status, text } = await probe(`${baseUrl}/healthz`, Math.min(PROBE_TIMEOUT_MS, left));
        if (status === 200) break;
        last = `status ${status}: ${text.slice(0, 500)}`;
      } catch (err) {
        last = String(err instanceof Error ? err.message : err);
      }
      await sleep(PROBE_INTERVAL_MS);
    }
  } catch (err) {
    await stop();
    throw err;
  }

  const cpuTimeMs = () => {
    const processes = groupProcesses(pid);
    if (processes.length === 0) return NaN;
    return processes.filter((p) => p.comm === "workerd").reduce((sum, p) => sum + p.cpuMs, 0);
  };

  return { baseUrl, port, persistDir, pid, log: () => output, stop, cpuTimeMs };
}
