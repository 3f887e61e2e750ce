// Starts and stops the REAL local server (scripts/dev.mjs: D1 migrations into a fresh
// --persist-to directory, then `wrangler dev`) on a free loopback port. Shared by the end-to-end
// smoke test (test/e2e/) and the benchmarks (bench/).
//
//   const server = await startLocalServer({ vars: { REQUIRE_HTTPS: "false" } });
//   try { await fetch(`${server.baseUrl}/healthz`); } finally { await server.stop(); }
//
// Plain Node ESM without dependencies (Node 20 and later). The server runs in its own process
// group (dev.mjs, wrangler, workerd, esbuild), so stop() can end all of it; an exit hook
// SIGKILLs that group if this process exits without calling stop().

import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/** The repository root. */
export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");

/** The only address the server listens on. */
export const HOST = "127.0.0.1";

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

const DEFAULT_STARTUP_TIMEOUT_MS = 90_000;
const DEFAULT_SHUTDOWN_TIMEOUT_MS = 15_000;
const KILL_WAIT_MS = 5_000;
const LOG_LIMIT = 200_000;
const LOG_KEEP = 100_000;

/**
 * @typedef {object} LocalServerOptions
 * @property {Record<string, string>} [vars] Passed as `--var K:V` (overrides .dev.vars).
 * @property {string[]} [extraArgs] More `wrangler dev` arguments, appended last.
 * @property {Record<string, string | undefined>} [env] Merged over process.env and QUIET_ENV.
 * @property {number} [startupTimeoutMs] How long to wait for GET /healthz 200 (default 90 s).
 * @property {number} [shutdownTimeoutMs] How long stop() waits after SIGTERM before SIGKILL (default 15 s).
 * @property {string} [tempPrefix] Prefix of the temporary --persist-to directory.
 */

/**
 * @typedef {object} LocalServer
 * @property {string} baseUrl `http://127.0.0.1:<port>`, no trailing slash.
 * @property {number} port
 * @property {string} persistDir The temporary --persist-to directory (removed by stop()).
 * @property {number} pid Process id of dev.mjs, which is also the process group id.
 * @property {() => string} log The server's output so far (stdout and stderr; the tail only).
 * @property {() => Promise<void>} stop Ends the whole process group and removes persistDir. Idempotent.
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
 * Starts scripts/dev.mjs on a free loopback port with a fresh temporary --persist-to directory
 * and resolves once GET /healthz answers 200. Rejects (after ending the server and removing the
 * directory) when the server exits first or is not healthy within the startup timeout; the
 * error message then carries the server's log.
 * @param {LocalServerOptions} [options]
 * @returns {Promise<LocalServer>}
 */
export async function startLocalServer(options = {}) {
  const {
    vars = {},
    extraArgs = [],
    env = {},
    startupTimeoutMs = DEFAULT_STARTUP_TIMEOUT_MS,
    shutdownTimeoutMs = DEFAULT_SHUTDOWN_TIMEOUT_MS,
    tempPrefix = "greenlight-local-",
  } = options;

  const persistDir = mkdtempSync(join(tmpdir(), tempPrefix));
  let port;
  try {
    port = await freeLoopbackPort();
  } catch (err) {
    rmSync(persistDir, { recursive: true, force: true });
    throw err;
  }
  const baseUrl = `http://${HOST}:${port}`;

  const args = [
    join(ROOT, "scripts", "dev.mjs"),
    "--ip", HOST,
    "--port", String(port),
    "--persist-to", persistDir,
    "--show-interactive-dev-session=false",
  ];
  for (const [key, value] of Object.entries(vars)) args.push("--var", `${key}:${value}`);
  args.push(...extraArgs);

  let output = "";
  /** @param {Buffer | string} chunk */
  const appendLog = (chunk) => {
    output += chunk.toString();
    // Keep the tail only: enough to explain a failure.
    if (output.length > LOG_LIMIT) output = output.slice(-LOG_KEEP);
  };

  // detached: its own process group, so the group can be signalled as a whole, and a Ctrl-C
  // in the terminal does not reach it directly (the caller decides when it stops).
  const child = spawn(process.execPath, args, {
    cwd: ROOT,
    env: { ...process.env, ...QUIET_ENV, ...env },
    detached: true,
    stdio: ["ignore", "pipe", "pipe"],
  });
  const pid = child.pid;
  if (!pid) {
    rmSync(persistDir, { recursive: true, force: true });
    throw new Error(`could not start ${process.execPath} ${args.join(" ")}`);
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
      rmSync(persistDir, { recursive: true, force: true });
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
      rmSync(persistDir, { recursive: true, force: true });
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
        throw new Error(`local server ${how}\n${output}`);
      }
      if (Date.now() >= deadline) {
        throw new Error(
          `GET ${baseUrl}/healthz not 200 within ${startupTimeoutMs / 1000} s (last: ${last})\n${output}`,
        );
      }
      try {
        const res = await fetch(`${baseUrl}/healthz`, { signal: AbortSignal.timeout(2_000) });
        const text = await res.text();
        if (res.status === 200) break;
        last = `status ${res.status}: ${text.slice(0, 500)}`;
      } catch (err) {
        const e = /** @type {{ cause?: unknown }} */ (err);
        last = String(e?.cause ?? err);
      }
      await sleep(250);
    }
  } catch (err) {
    await stop();
    throw err;
  }

  return { baseUrl, port, persistDir, pid, log: () => output, stop };
}
