// Starts and stops the REAL local server (scripts/dev.mjs: D1 migrations into a fresh
// --persist-to directory, then `wrangler dev`) on a free loopback port. Shared by the end-to-end
// smoke test (test/e2e/) and the benchmarks (bench/). scripts/bundle-server.mjs starts the built
// bundle instead, with the same options and the same answer.
//
//   const server = await startLocalServer({ vars: { REQUIRE_HTTPS: "false" } });
//   try { await fetch(`${server.baseUrl}/healthz`); } finally { await server.stop(); }
//
// Plain Node ESM without dependencies (Node 20 and later). The server runs in its own process
// group (dev.mjs, wrangler, workerd, esbuild), so stop() can end all of it; an exit hook
// SIGKILLs that group if this process exits without calling stop(). The lifecycle is in
// scripts/server-process.mjs.

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { HOST, QUIET_ENV, ROOT, freeLoopbackPort, startServerProcess } from "./server-process.mjs";

export { HOST, QUIET_ENV, ROOT, freeLoopbackPort } from "./server-process.mjs";

/** @typedef {import("./server-process.mjs").LocalServerOptions} LocalServerOptions */
/** @typedef {import("./server-process.mjs").LocalServer} LocalServer */

export const DEFAULT_STARTUP_TIMEOUT_MS = 90_000;
export const DEFAULT_SHUTDOWN_TIMEOUT_MS = 15_000;

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
    cpus,
  } = options;

  const persistDir = mkdtempSync(join(tmpdir(), tempPrefix));
  let port;
  try {
    port = await freeLoopbackPort();
  } catch (err) {
    rmSync(persistDir, { recursive: true, force: true });
    throw err;
  }

  const args = [
    join(ROOT, "scripts", "dev.mjs"),
    "--ip", HOST,
    "--port", String(port),
    "--persist-to", persistDir,
    "--show-interactive-dev-session=false",
  ];
  for (const [key, value] of Object.entries(vars)) args.push("--var", `${key}:${value}`);
  args.push(...extraArgs);

  return startServerProcess({
    label: "local server (wrangler dev)",
    command: process.execPath,
    args,
    env: { ...process.env, ...QUIET_ENV, ...env },
    port,
    persistDir,
    cpus,
    startupTimeoutMs,
    shutdownTimeoutMs,
  });
}
