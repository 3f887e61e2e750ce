// End-to-end smoke test: starts the REAL local server (scripts/dev.mjs, which applies the D1
// migrations to a fresh --persist-to directory and then runs `wrangler dev`) and calls it over
// HTTP on loopback. Run with `npm run test:e2e` (vitest.e2e.config.ts: Node environment).
// Starting and stopping the server is scripts/local-server.mjs, shared with bench/.
//
// Needs no .dev.vars: every variable and secret is passed with `wrangler dev --var`, which also
// overrides whatever a developer's .dev.vars says (dev.mjs still creates .dev.vars from the
// example when it is missing, as `npm run dev` does).
import { spawn } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { QUIET_ENV, ROOT, startLocalServer, type LocalServer } from "../../scripts/local-server.mjs";

const ADMIN_TOKEN = "e2e-admin-token";
const REQUEST_TIMEOUT_MS = 15_000;

let server: LocalServer | undefined;
let baseUrl = "";

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
      env: { ...process.env, ...QUIET_ENV, GREENLIGHT_URL: baseUrl, ADMIN_TOKEN },
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
  server = await startLocalServer({
    tempPrefix: "greenlight-e2e-",
    vars: {
      REQUIRE_HTTPS: "false",
      ADMIN_TOKEN,
      URL_SIGNING_SECRET: "e2e-signing-secret",
      PUBLIC_BASE_URL: "", // empty: the request's own origin
    },
  });
  baseUrl = server.baseUrl;
});

afterAll(async () => {
  await server?.stop();
  if (process.env.E2E_SHOW_SERVER_LOG && server) console.log(server.log());
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

  it("takes reference 000's curl example and GitHub Actions step verbatim (with a local key)", async () => {
    const run = await runBootstrap(["--name", "E2E builds org"]);
    expect(run.code, run.stderr).toBe(0);
    const key = JSON.parse(run.stdout).api_key.key;
    // The bodies exactly as reference 000 prints them; the Actions step's expressions filled in
    // as GitHub would for run 57 of acme/shop on main.
    const curlBody = `{
"name": "v2.4.1",
"build_number": "1042",
"commit_sha": "a1b2c3d4e5f6789012345678901234567890abcd",
"branch": "main"
}`;
    const actionsBody = `{
"name": "main",
"build_number": "57",
"commit_sha": "0123456789abcdef0123456789abcdef01234567",
"branch": "main",
"repo_url": "https://github.com/acme/shop"
}`;
    const post = (body: string) =>
      fetch(`${baseUrl}/api/v1/builds`, {
        method: "POST",
        headers: { Authorization: `Bearer ${key}`, "Content-Type": "application/json" },
        body,
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      });
    const first = await post(curlBody);
    expect(first.status).toBe(202);
    expect(await first.json()).toMatchObject({ name: "v2.4.1", status: "planned", source: "api", queue_position: 1, message: "Build queued for release assignment." });
    const second = await post(actionsBody);
    expect(second.status).toBe(202);
    expect(await second.json()).toMatchObject({ name: "main", queue_position: 2 });
  });

  it("answers reference 002's and 004's request and error examples", async () => {
    expect(apiKey, "needs the key from an earlier test").not.toBe("");
    const plan = await call("POST", "/api/v1/testplans", { token: apiKey, json: { project_id: projectId, name: "Login Flow", tags: { tag_name_1: ["value_1"], tag_name_2: ["value_3"] } } });
    expect(plan.status, plan.text).toBe(201);
    const signup = await call("POST", "/api/v1/testplans", { token: apiKey, json: { project_id: projectId, name: "Signup Flow", default_test_type: "deepTest" } });
    const post = (path: string, body: unknown, headers: Record<string, string>) =>
      fetch(`${baseUrl}${path}`, { method: "POST", headers: { "Content-Type": "application/json", ...headers }, body: JSON.stringify(body), signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) }).then(
        async (r) => ({ status: r.status, body: await r.json() }),
      );
    const bearer = { Authorization: `Bearer ${apiKey}` };
    // Reference 002: single, multiple (array and string), project, buildId, cookies; then its errors.
    expect(await post("/api/v1/run", { testPlanId: plan.body.number, testType: "quickTest" }, bearer)).toMatchObject({ status: 200, body: { status: "queued", testPlanId: plan.body.number, testType: "quickTest" } });
    expect(await post("/api/v1/run", { testPlanIds: [plan.body.number, signup.body.number], testType: "deepTest" }, bearer)).toMatchObject({ status: 200, body: { triggered: 2, failed: 0 } });
    expect(await post("/api/v1/run", { testPlanIds: `${plan.body.number},${signup.body.number}` }, bearer)).toMatchObject({ status: 200, body: { triggered: 2 } });
    expect(await post("/api/v1/run", { projectId: 1 }, bearer)).toMatchObject({ status: 200, body: { triggered: 2 } });
    expect(await post("/api/v1/run", { testPlanId: plan.body.number, buildId: "abc123" }, bearer)).toMatchObject({ status: 200, body: { buildId: "abc123" } });
    expect(await post("/api/v1/run", { testPlanId: plan.body.number, cookies: [{ name: "session", value: "abc123xyz", domain: ".myapp.com" }] }, bearer)).toMatchObject({ status: 200 });
    expect(await post("/api/v1/run", { testPlanId: plan.body.number }, { Authorization: "Bearer tl_xxxxx" })).toEqual({ status: 401, body: { error: "Invalid API key" } });
    expect(await post("/api/v1/run", { testPlanId: 999_999 }, bearer)).toEqual({ status: 404, body: { error: "No test plans found" } });
    expect(await post("/api/v1/run", {}, bearer)).toEqual({ status: 400, body: { error: "One of testPlanId, testPlanIds, or projectId is required" } });
    // Reference 004: its example (with a build, an environment and a context of the project), then its errors.
    const build = await call("POST", "/api/v1/builds", { token: apiKey, json: { project_id: projectId, name: "build_file" } });
    await call("POST", `/api/v1/projects/${projectId}/environments`, { token: apiKey, json: { name: "staging" } });
    await call("POST", `/api/v1/projects/${projectId}/contexts`, { token: apiKey, json: { name: "logged-in-user", data: {} } });
    const panto = { "X-PANTO-API-KEY": apiKey };
    const example = (extra: Record<string, unknown> = {}) => ({
      app_id: build.body.id,
      tags: { include: { tag_name_1: ["value_1", "value_2"], tag_name_2: ["value_3"] } },
      devices: [{ device_name: "iPhone 13", platform_version: "16.0" }],
      env_name: "staging",
      context_name: "logged-in-user",
      ...extra,
    });
    const ok = await post("/api/v1/qa/external/testsuite/trigger", example(), panto);
    expect(ok).toMatchObject({ status: 200, body: { message: "Triggered 1 test suite(s) matched." } });
    expect(ok.body.test_runs).toHaveLength(1);
    expect((await post("/api/v1/qa/external/testsuite/trigger", example({ env_name: "prod" }), panto)).body).toEqual({ detail: "Environment not found" });
    expect((await post("/api/v1/qa/external/testsuite/trigger", example({ context_name: "nobody" }), panto)).body).toEqual({ detail: "Context not found" });
    expect((await post("/api/v1/qa/external/testsuite/trigger", example({ app_id: "build_file_id" }), panto)).body).toEqual({ detail: "Build file not found" });
    expect((await post("/api/v1/qa/external/testsuite/trigger", example({ tags: { include: { tag_name_1: ["none"] } } }), panto)).body).toEqual({
      detail: "No test suites found matching the provided tags",
    });
  });
});
