// End-to-end smoke test: starts the REAL local server (scripts/dev.mjs, which applies the D1
// migrations to a fresh --persist-to directory and then runs `wrangler dev`) and calls it over
// HTTP on loopback. Run with `npm run test:e2e` (vitest.e2e.config.ts: Node environment).
//
// Needs no .dev.vars: every variable and secret is passed with `wrangler dev --var`, which also
// overrides whatever a developer's .dev.vars says (dev.mjs still creates .dev.vars from the
// example when it is missing, as `npm run dev` does).
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
const HOST = "127.0.0.1";
const ADMIN_TOKEN = "e2e-admin-token";
const STARTUP_TIMEOUT_MS = 90_000;
const REQUEST_TIMEOUT_MS = 15_000;
const SHUTDOWN_TIMEOUT_MS = 15_000;

// Keeps wrangler from calling out to the internet (telemetry, the Request.cf sample) and from
// ever waiting for input.
const CHILD_ENV = {
  ...process.env,
  CI: "true",
  WRANGLER_SEND_METRICS: "false",
  CLOUDFLARE_CF_FETCH_ENABLED: "false",
  NO_COLOR: "1",
};

let server: ChildProcess | undefined;
let persistDir = "";
let baseUrl = "";
let serverLog = "";

function appendLog(chunk: Buffer | string) {
  serverLog += chunk.toString();
  // Keep the tail only: enough to explain a failure.
  if (serverLog.length > 200_000) serverLog = serverLog.slice(-100_000);
}

function freeLoopbackPort(): Promise<number> {
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

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function isRunning(child: ChildProcess | undefined): boolean {
  return !!child && child.exitCode === null && child.signalCode === null;
}

/** Signals the server's whole process group (dev.mjs, wrangler, workerd, esbuild). */
function signalGroup(signal: NodeJS.Signals): boolean {
  if (!server?.pid) return false;
  try {
    process.kill(-server.pid, signal);
    return true;
  } catch {
    return false; // ESRCH: the group is gone
  }
}

function groupAlive(): boolean {
  return signalGroup(0 as unknown as NodeJS.Signals);
}

// Last resort if the test process exits without running afterAll (e.g. Ctrl-C during startup:
// the server has its own process group, so the terminal's SIGINT does not reach it).
const killOnExit = () => {
  signalGroup("SIGKILL");
  try {
    if (persistDir) rmSync(persistDir, { recursive: true, force: true });
  } catch {
    // best effort
  }
};

async function stopServer() {
  if (!server?.pid) return;
  signalGroup("SIGTERM");
  const deadline = Date.now() + SHUTDOWN_TIMEOUT_MS;
  while (groupAlive() && Date.now() < deadline) await sleep(200);
  if (groupAlive()) {
    signalGroup("SIGKILL");
    const killDeadline = Date.now() + 5_000;
    while (groupAlive() && Date.now() < killDeadline) await sleep(100);
  }
  process.off("exit", killOnExit);
}

async function waitForHealthy() {
  const deadline = Date.now() + STARTUP_TIMEOUT_MS;
  let last = "no answer yet";
  while (Date.now() < deadline) {
    if (!isRunning(server)) {
      throw new Error(`server exited early (code ${server?.exitCode}, signal ${server?.signalCode})\n${serverLog}`);
    }
    try {
      const res = await fetch(`${baseUrl}/healthz`, { signal: AbortSignal.timeout(2_000) });
      if (res.status === 200) return;
      last = `status ${res.status}: ${await res.text()}`;
    } catch (err) {
      last = String((err as Error)?.cause ?? err);
    }
    await sleep(250);
  }
  throw new Error(`GET /healthz not 200 within ${STARTUP_TIMEOUT_MS / 1000} s (last: ${last})\n${serverLog}`);
}

interface Answer {
  status: number;
  headers: Headers;
  body: any;
  text: string;
}

async function call(method: string, path: string, opts: { token?: string; json?: unknown } = {}): Promise<Answer> {
  const headers: Record<string, string> = { accept: "application/json" };
  if (opts.token) headers.authorization = `Bearer ${opts.token}`;
  if (opts.json !== undefined) headers["content-type"] = "application/json";
  const res = await fetch(`${baseUrl}${path}`, {
    method,
    headers,
    body: opts.json === undefined ? undefined : JSON.stringify(opts.json),
    signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
  });
  const text = await res.text();
  let body: unknown = undefined;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    // not JSON; the assertions below show `text`
  }
  // Every response carries a request id.
  expect(res.headers.get("x-request-id"), `X-Request-Id on ${method} ${path}`).toBeTruthy();
  return { status: res.status, headers: res.headers, body, text };
}

/** Runs `npm run bootstrap` against the test server; resolves with its exit code and output. */
function runBootstrap(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  // Under `npm run`, npm_execpath is npm's CLI script: run it with this Node. Otherwise use PATH.
  const npmCli = process.env.npm_execpath;
  const [cmd, cmdArgs] =
    npmCli && /npm-cli\.[cm]?js$/.test(npmCli)
      ? [process.execPath, [npmCli, "run", "--silent", "bootstrap", "--", ...args]]
      : ["npm", ["run", "--silent", "bootstrap", "--", ...args]];
  return new Promise((resolveRun, reject) => {
    const child = spawn(cmd, cmdArgs, {
      cwd: ROOT,
      env: { ...CHILD_ENV, GREENLIGHT_URL: baseUrl, ADMIN_TOKEN },
      stdio: ["ignore", "pipe", "pipe"],
      shell: process.platform === "win32",
    });
    let stdout = "";
    let stderr = "";
    child.stdout!.on("data", (c) => (stdout += c));
    child.stderr!.on("data", (c) => (stderr += c));
    const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
    child.once("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once("close", (code) => {
      clearTimeout(timer);
      resolveRun({ code, stdout, stderr });
    });
  });
}

beforeAll(async () => {
  persistDir = mkdtempSync(join(tmpdir(), "greenlight-e2e-"));
  const port = await freeLoopbackPort();
  baseUrl = `http://${HOST}:${port}`;

  // scripts/dev.mjs = `wrangler d1 migrations apply DB --local --persist-to DIR`, then
  // `wrangler dev` with these arguments. Its own process group, so afterAll can end all of it.
  server = spawn(
    process.execPath,
    [
      join(ROOT, "scripts", "dev.mjs"),
      "--port", String(port),
      "--ip", HOST,
      "--persist-to", persistDir,
      "--var", "REQUIRE_HTTPS:false",
      "--var", `ADMIN_TOKEN:${ADMIN_TOKEN}`,
      "--var", "URL_SIGNING_SECRET:e2e-signing-secret",
      "--var", "PUBLIC_BASE_URL:", // empty: the request's own origin
      "--show-interactive-dev-session=false",
    ],
    { cwd: ROOT, env: CHILD_ENV, detached: true, stdio: ["ignore", "pipe", "pipe"] },
  );
  process.on("exit", killOnExit);
  server.stdout!.on("data", appendLog);
  server.stderr!.on("data", appendLog);

  await waitForHealthy();
});

afterAll(async () => {
  await stopServer();
  if (persistDir) rmSync(persistDir, { recursive: true, force: true });
  if (process.env.E2E_SHOW_SERVER_LOG) console.log(serverLog);
});

describe("local server over HTTP", () => {
  let apiKey = "";
  let projectId = "";

  it("answers GET /healthz with 200", async () => {
    const res = await call("GET", "/healthz");
    expect(res.status).toBe(200);
  });

  it("creates an organization, a project and an API key with the admin token", async () => {
    const res = await call("POST", "/api/v1/admin/organizations", {
      token: ADMIN_TOKEN,
      json: { name: "E2E organization", project_name: "E2E project" },
    });
    expect(res.status, res.text).toBe(201);
    expect(res.body.organization.id).toMatch(/^org_/);
    expect(res.body.project.id).toMatch(/^proj_/);
    expect(res.body.project.number).toBe(1);
    expect(res.body.api_key.id).toMatch(/^key_/);
    expect(res.body.api_key.key).toMatch(/^gl_live_[0-9a-f]{64}$/);
    expect(Array.isArray(res.body.api_key.scopes)).toBe(true);
    apiKey = res.body.api_key.key;
    projectId = res.body.project.id;
  });

  it("lists the created project for that API key", async () => {
    expect(apiKey, "needs the key from the previous test").not.toBe("");
    const res = await call("GET", "/api/v1/projects", { token: apiKey });
    expect(res.status, res.text).toBe(200);
    expect(Array.isArray(res.body.data)).toBe(true);
    expect(res.body.data.map((p: { id: string }) => p.id)).toContain(projectId);
  });

  it("refuses GET /api/v1/projects without a key with 401 unauthorized", async () => {
    const res = await call("GET", "/api/v1/projects");
    expect(res.status, res.text).toBe(401);
    expect(res.body.error).toBe("unauthorized");
  });

  it("npm run bootstrap prints JSON with a working key", async () => {
    const run = await runBootstrap(["--name", "E2E bootstrap org", "--project", "E2E bootstrap project"]);
    expect(run.code, `stdout:\n${run.stdout}\nstderr:\n${run.stderr}`).toBe(0);
    const out = JSON.parse(run.stdout);
    expect(out.organization.name).toBe("E2E bootstrap org");
    expect(out.api_key.key).toMatch(/^gl_live_[0-9a-f]{64}$/);

    const res = await call("GET", "/api/v1/projects", { token: out.api_key.key });
    expect(res.status, res.text).toBe(200);
    const ids = res.body.data.map((p: { id: string }) => p.id);
    expect(ids).toContain(out.project.id);
    // Keys are scoped to their organization: the first test's project is not visible here.
    expect(ids).not.toContain(projectId);
  });
});
