// Starts and stops the Worker as it is deployed: the bundle `wrangler deploy` would upload, served
// by workerd through Miniflare (scripts/serve-bundle.mjs) with local D1, R2, Durable Objects and
// Queues persisted to a fresh temporary directory, on a free loopback port. The same options and
// the same answer as startLocalServer (scripts/local-server.mjs, `wrangler dev`), so the
// benchmarks can run on either:
//
//   const server = await startBundleServer({ vars: { REQUIRE_HTTPS: "false" } });
//   try { await fetch(`${server.baseUrl}/healthz`); } finally { await server.stop(); }
//
// What differs from `wrangler dev`: no development proxy in front of the Worker, no dev-only
// middleware wrangler adds to its dev build, no file watching or reloads; the bundle is built once
// at start. Crons do not fire on their own under either.
//
// Plain Node ESM without dependencies (Node 20 and later). The server itself runs on the project's
// Node (node_modules/.bin/node: Miniflare needs Node >= 22) in its own process group (that Node,
// the wrangler build, workerd), so stop() can end all of it; an exit hook SIGKILLs that group if
// this process exits without calling stop(). The lifecycle is in scripts/server-process.mjs.

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DEFAULT_SHUTDOWN_TIMEOUT_MS, DEFAULT_STARTUP_TIMEOUT_MS } from "./local-server.mjs";
import { HOST, QUIET_ENV, ROOT, freeLoopbackPort, projectNode, startServerProcess, withProjectBin } from "./server-process.mjs";

/** @typedef {import("./server-process.mjs").LocalServerOptions} LocalServerOptions */
/** @typedef {import("./server-process.mjs").LocalServer} LocalServer */

/**
 * Builds the bundle and starts it (scripts/serve-bundle.mjs) on a free loopback port with a fresh
 * temporary --persist-to directory, after applying the D1 migrations there, and resolves once
 * GET /healthz answers 200. Rejects (after ending the server and removing the directories) when the
 * server exits first or is not healthy within the startup timeout; the error message then carries
 * the server's log.
 * @param {LocalServerOptions} [options]
 * @returns {Promise<LocalServer>}
 */
export async function startBundleServer(options = {}) {
  const {
    vars = {},
    extraArgs = [],
    env = {},
    startupTimeoutMs = DEFAULT_STARTUP_TIMEOUT_MS,
    shutdownTimeoutMs = DEFAULT_SHUTDOWN_TIMEOUT_MS,
    tempPrefix = "greenlight-bundle-",
    cpus,
  } = options;

  const persistDir = mkdtempSync(join(tmpdir(), tempPrefix));
  // The build and Miniflare's scratch files: next to the state, removed with it by stop().
  const workDir = mkdtempSync(join(tmpdir(), `${tempPrefix}work-`));
  let port;
  try {
    port = await freeLoopbackPort();
  } catch (err) {
    rmSync(persistDir, { recursive: true, force: true });
    rmSync(workDir, { recursive: true, force: true });
    throw err;
  }

  const args = [
    join(ROOT, "scripts", "serve-bundle.mjs"),
    "--ip", HOST,
    "--port", String(port),
    "--persist-to", persistDir,
    "--work-dir", workDir,
  ];
  for (const [key, value] of Object.entries(vars)) args.push("--var", `${key}:${value}`);
  args.push(...extraArgs);

  return startServerProcess({
    label: "bundle server (workerd via Miniflare)",
    command: projectNode(),
    args,
    env: withProjectBin({ ...process.env, ...QUIET_ENV, ...env }),
    port,
    persistDir,
    tempDirs: [workDir],
    cpus,
    startupTimeoutMs,
    shutdownTimeoutMs,
  });
}
