import { describe, expect, it } from "vitest";
import { call } from "./helpers/http";
import { createKey, createProject, createTenant, type Tenant } from "./helpers/factories";

/** Runs, tests, steps, history and test suites of the reporting surface (reference 003). */

const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{3})?Z$/;

function api(key: string) {
  const headers = { "X-API-Key": key };
  return {
    get: (path: string) => call(path, { headers }),
    post: (path: string, body: unknown, extra: Record<string, string> = {}) =>
      call(path, { method: "POST", headers: { ...headers, ...extra }, body }),
    patch: (path: string, body: unknown) => call(path, { method: "PATCH", headers, body }),
    del: (path: string) => call(path, { method: "DELETE", headers }),
  };
}

/** The create-run body of reference 003, in the tenant's project. */
function docRunBody(projectId: string) {
  return {
    projectId,
    status: "running",
    branch: "feature/login-flow",
    commitSha: "a1b2c3d4e5f6",
    commitMessage: "Add login flow tests",
    commitAuthor: "jane@example.com",
    ciProvider: "github-actions",
    ciBuildId: "run-12345",
    ciBuildUrl: "https://github.com/org/repo/actions/runs/12345",
    playwrightVersion: "1.52.0",
    workers: 4,
    shardCurrent: 1,
    shardTotal: 3,
    browser: "chromium",
    os: "linux",
    viewport: "1280x720",
    hostname: "ci-runner-01",
    runTitle: "Login Flow Tests",
    tags: ["smoke", "login"],
    grepPatterns: ["@smoke"],
  };
}

/** The create-test body of reference 003. */
function docTestBody(runId: string, projectId: string) {
  return {
    runId,
    projectId,
    title: "should display login form",
    fullTitle: "Auth > Login Page > should display login form",
    filePath: "tests/auth/login.spec.ts",
    lineNumber: 15,
    status: "passed",
    duration: 3420,
    retries: 0,
    attempt: 1,
    isFlaky: false,
    tags: ["@smoke", "@auth"],
    annotations: [{ type: "slow", description: "Includes network wait" }],
    error: null,
    steps: [
      { title: "navigate to /login", category: "action", status: "passed", duration: 820, error: null },
      { title: "expect(locator).toBeVisible()", category: "assertion", status: "passed", duration: 45, error: null },
    ],
    stdout: "",
    stderr: "",
  };
}

/** The failing test of reference 003's GET /api/tests/:id and /steps examples. */
const failingSteps = [
  { title: "Before Hooks", category: "hook", status: "passed", duration: 120, error: null },
  { title: "page.goto('https://app.example.com/login')", category: "action", status: "passed", duration: 820, error: null },
  { title: "locator.fill('#email', 'user@test.com')", category: "action", status: "passed", duration: 45, error: null },
  { title: "locator.click('button[type=submit]')", category: "action", status: "passed", duration: 32, error: null },
  {
    title: "expect(locator).toBeVisible()",
    category: "assertion",
    status: "failed",
    duration: 30000,
    error: { message: "Timed out waiting for selector '.dashboard'" },
  },
  { title: "After Hooks", category: "hook", status: "passed", duration: 15, error: null },
];

const failingError = {
  message: "Timed out waiting for selector '.dashboard'",
  stack: "Error: Timed out waiting for selector '.dashboard'\n    at login.spec.ts:42:5",
  expected: "visible",
  actual: "hidden",
};

function failingTestBody(runId: string, projectId: string) {
  return {
    runId,
    projectId,
    title: "should submit login form",
    fullTitle: "Auth > Login Page > should submit login form",
    filePath: "tests/auth/login.spec.ts",
    lineNumber: 35,
    status: "failed",
    duration: 8320,
    retries: 2,
    attempt: 3,
    isFlaky: false,
    tags: ["@smoke", "@auth"],
    annotations: [],
    error: failingError,
    steps: failingSteps,
    stdout: "",
    stderr: "",
  };
}

async function newRun(t: Tenant, body: Record<string, unknown> = {}, projectId = t.project.id): Promise<string> {
  const res = await api(t.key).post("/api/runs", { projectId, status: "running", ...body });
  if (res.status !== 201) throw new Error(`newRun: ${res.status} ${res.text}`);
  return res.body.id;
}

async function postTest(t: Tenant, runId: string, body: Record<string, unknown>, projectId = t.project.id) {
  const res = await api(t.key).post("/api/tests", { runId, projectId, duration: 100, ...body });
  if (res.status !== 201) throw new Error(`postTest: ${res.status} ${res.text}`);
  return res.body as { id: string };
}

describe("reporting runs", () => {
  it("creates a run from the documented body and answers every documented field", async () => {
    const t = await createTenant();
    const a = api(t.key);
    const created = await a.post("/api/runs", docRunBody(t.project.id));
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({
      projectId: t.project.id,
      status: "running",
      branch: "feature/login-flow",
      commitSha: "a1b2c3d4e5f6",
      commitMessage: "Add login flow tests",
      commitAuthor: "jane@example.com",
      ciProvider: "github-actions",
      ciBuildId: "run-12345",
      ciBuildUrl: "https://github.com/org/repo/actions/runs/12345",
      playwrightVersion: "1.52.0",
      workers: 4,
      shardCurrent: 1,
      shardTotal: 3,
      browser: "chromium",
      os: "linux",
      viewport: "1280x720",
      hostname: "ci-runner-01",
      runTitle: "Login Flow Tests",
      tags: ["smoke", "login"],
      grepPatterns: ["@smoke"],
      totalTests: 0,
      passedTests: 0,
      failedTests: 0,
      skippedTests: 0,
      flakyTests: 0,
      passRate: 0,
      duration: 0,
    });
    expect(created.body.id).toMatch(/^run_[0-9A-Z]{26}$/);
    expect(created.body.createdAt).toMatch(ISO);
    expect(created.body.updatedAt).toMatch(ISO);

    const got = await a.get(`/api/runs/${created.body.id}`);
    expect(got.status).toBe(200);
    expect(got.body).toEqual(created.body);
    // Every field of the documented GET /api/runs/:id example is there.
    for (const field of [
      "id", "projectId", "status", "branch", "commitSha", "commitMessage", "commitAuthor", "ciProvider", "ciBuildId",
      "ciBuildUrl", "playwrightVersion", "workers", "shardCurrent", "shardTotal", "browser", "os", "viewport", "hostname",
      "totalTests", "passedTests", "failedTests", "skippedTests", "flakyTests", "passRate", "duration", "runTitle", "tags",
      "createdAt", "updatedAt",
    ]) {
      expect(got.body, field).toHaveProperty(field);
    }
    expect(got.body.shards).toEqual([
      { shardCurrent: 1, status: "running", hostname: "ci-runner-01", createdAt: expect.stringMatching(ISO), updatedAt: expect.stringMatching(ISO) },
    ]);
  });

  it("puts the shards of one CI build on one run", async () => {
    const t = await createTenant();
    const a = api(t.key);
    const first = await a.post("/api/runs", docRunBody(t.project.id));
    const second = await a.post("/api/runs", { ...docRunBody(t.project.id), shardCurrent: 2, hostname: "ci-runner-02" });
    expect(second.status).toBe(201);
    expect(second.body.id).toBe(first.body.id);
    const got = await a.get(`/api/runs/${first.body.id}`);
    expect(got.body.shards.map((s: { shardCurrent: number; hostname: string }) => [s.shardCurrent, s.hostname])).toEqual([
      [1, "ci-runner-01"],
      [2, "ci-runner-02"],
    ]);
    // Another build is another run.
    const other = await a.post("/api/runs", { ...docRunBody(t.project.id), ciBuildId: "run-12346" });
    expect(other.body.id).not.toBe(first.body.id);
    expect((await a.get(`/api/runs?projectId=${t.project.id}`)).body.total).toBe(2);
  });

  it("answers a missing projectId with the documented error envelope", async () => {
    const t = await createTenant();
    const { projectId: _, ...body } = docRunBody(t.project.id);
    const res = await api(t.key).post("/api/runs", body);
    expect(res.status).toBe(400);
    expect(res.body).toEqual({
      error: {
        code: "VALIDATION_ERROR",
        message: "Field 'projectId' is required",
        details: { field: "projectId", reason: "required", location: "body" },
      },
    });
    // zod reports a missing enum as invalid_value; it is still answered as required.
    const noStatus = await api(t.key).post("/api/runs", { projectId: t.project.id });
    expect(noStatus.status).toBe(400);
    expect(noStatus.body.error).toEqual({
      code: "VALIDATION_ERROR",
      message: "Field 'status' is required",
      details: { field: "status", reason: "required", location: "body" },
    });
  });

  it("accepts only running, passed and failed as a new run's status", async () => {
    const t = await createTenant();
    const a = api(t.key);
    for (const status of ["passed", "failed"]) {
      const res = await a.post("/api/runs", { projectId: t.project.id, status });
      expect(res.status, status).toBe(201);
      expect(res.body.status).toBe(status);
    }
    for (const status of ["queued", "cancelled", "done"]) {
      const res = await a.post("/api/runs", { projectId: t.project.id, status });
      expect(res.status, status).toBe(400);
      expect(res.body.error).toEqual({
        code: "VALIDATION_ERROR",
        message: "Field 'status' must be one of: running, passed, failed",
        details: { field: "status", reason: "invalid_value", location: "body" },
      });
    }
    expect((await a.get(`/api/runs?projectId=${t.project.id}`)).body.total).toBe(2);
  });

  it("lists a project's runs with the documented shape, filtered by status and branch", async () => {
    const t = await createTenant();
    const a = api(t.key);
    const failed = await newRun(t, { status: "failed", branch: "main", commitSha: "a1b2c3d4e5f6" });
    await newRun(t, { status: "passed", branch: "main" });
    await newRun(t, { branch: "feature/x" });
    const other = await createProject(t);
    await newRun(t, { branch: "main" }, other.id);

    const res = await a.get(`/api/runs?projectId=${t.project.id}&status=failed&limit=10`);
    expect(res.status).toBe(200);
    expect(res.body.total).toBe(1);
    expect(res.body.limit).toBe(10);
    expect(res.body.offset).toBe(0);
    expect(res.body.data).toHaveLength(1);
    expect(res.body.data[0]).toMatchObject({
      id: failed,
      projectId: t.project.id,
      status: "failed",
      branch: "main",
      commitSha: "a1b2c3d4e5f6",
      totalTests: 0,
      passedTests: 0,
      failedTests: 0,
      skippedTests: 0,
      flakyTests: 0,
      passRate: 0,
      duration: 0,
      createdAt: expect.stringMatching(ISO),
    });

    const all = await a.get(`/api/runs?projectId=${t.project.id}`);
    expect(all.body).toMatchObject({ total: 3, limit: 50, offset: 0 });
    expect(all.body.data[0].branch).toBe("feature/x");
    const main = await a.get(`/api/runs?projectId=${t.project.id}&branch=main`);
    expect(main.body.total).toBe(2);
    const paged = await a.get(`/api/runs?projectId=${t.project.id}&limit=2&offset=2`);
    expect(paged.body).toMatchObject({ total: 3, limit: 2, offset: 2 });
    expect(paged.body.data).toHaveLength(1);

    const missing = await a.get("/api/runs");
    expect(missing.status).toBe(400);
    expect(missing.body).toEqual({
      error: {
        code: "VALIDATION_ERROR",
        message: "Query parameter 'projectId' is required",
        details: { field: "projectId", reason: "required", location: "query" },
      },
    });
    const badStatus = await a.get(`/api/runs?projectId=${t.project.id}&status=nope`);
    expect(badStatus.status).toBe(400);
    expect(badStatus.body.error.details.field).toBe("status");
  });

  it("updates status and statistics with the documented response, honoured on GET", async () => {
    const t = await createTenant();
    const a = api(t.key);
    const id = await newRun(t, { branch: "main" });
    const res = await a.patch(`/api/runs/${id}`, {
      status: "failed",
      totalTests: 142,
      passedTests: 138,
      failedTests: 3,
      skippedTests: 0,
      flakyTests: 1,
      duration: 245000,
    });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      id,
      status: "failed",
      totalTests: 142,
      passedTests: 138,
      failedTests: 3,
      skippedTests: 0,
      flakyTests: 1,
      duration: 245000,
      updatedAt: expect.stringMatching(ISO),
    });
    const got = await a.get(`/api/runs/${id}`);
    expect(got.body).toMatchObject({
      status: "failed",
      totalTests: 142,
      passedTests: 138,
      failedTests: 3,
      skippedTests: 0,
      flakyTests: 1,
      passRate: 97.18,
      duration: 245000,
      derivedCounts: { totalTests: 0, passedTests: 0, failedTests: 0, skippedTests: 0, flakyTests: 0, passRate: 0, duration: 0 },
      reportedCounts: { totalTests: 142, passedTests: 138, failedTests: 3, skippedTests: 0, flakyTests: 1, duration: 245000 },
    });
    const listed = await a.get(`/api/runs?projectId=${t.project.id}`);
    expect(listed.body.data[0]).toMatchObject({ totalTests: 142, passRate: 97.18, duration: 245000 });

    // Only what is sent changes; cancelled is allowed here.
    const cancelled = await a.patch(`/api/runs/${id}`, { status: "cancelled" });
    expect(cancelled.body).toMatchObject({ status: "cancelled", totalTests: 142, failedTests: 3 });
    const bad = await a.patch(`/api/runs/${id}`, { status: "queued" });
    expect(bad.status).toBe(400);
    expect(bad.body.error.details.field).toBe("status");
    const negative = await a.patch(`/api/runs/${id}`, { totalTests: -1 });
    expect(negative.status).toBe(400);
    expect(negative.body.error).toMatchObject({ message: "Field 'totalTests' must be at least 0", details: { field: "totalTests", reason: "too_small" } });
    expect((await a.get(`/api/runs/${id}`)).body).toMatchObject({ status: "cancelled", totalTests: 142 });
    expect((await a.patch("/api/runs/run_00000000000000000000000000", { status: "passed" })).status).toBe(404);
  });

  it("merges a sharded run's status from each shard's PATCH", async () => {
    const t = await createTenant();
    const a = api(t.key);
    const body = { ...docRunBody(t.project.id), shardTotal: 2 };
    const id = (await a.post("/api/runs", body)).body.id;
    await a.post("/api/runs", { ...body, shardCurrent: 2 });
    expect((await a.patch(`/api/runs/${id}`, { status: "failed", shardCurrent: 1 })).body.status).toBe("running");
    expect((await a.patch(`/api/runs/${id}`, { status: "passed", shardCurrent: 2 })).body.status).toBe("failed");
    const tooFar = await a.patch(`/api/runs/${id}`, { status: "passed", shardCurrent: 3 });
    expect(tooFar.status).toBe(400);
    expect(tooFar.body.error.details.field).toBe("shardCurrent");
  });

  it("deletes a run with the documented body, and again without complaint", async () => {
    const t = await createTenant();
    const a = api(t.key);
    const id = await newRun(t);
    const test = await postTest(t, id, { title: "t", fullTitle: "S > t", status: "passed" });
    const deleted = await a.del(`/api/runs/${id}`);
    expect(deleted.status).toBe(200);
    expect(deleted.body).toEqual({ success: true, message: "Run deleted successfully" });
    const gone = await a.get(`/api/runs/${id}`);
    expect(gone.status).toBe(404);
    expect(gone.body.error.code).toBe("NOT_FOUND");
    expect((await a.get(`/api/tests/${test.id}`)).status).toBe(404);
    expect((await a.get(`/api/tests?projectId=${t.project.id}`)).body.total).toBe(0);
    const again = await a.del(`/api/runs/${id}`);
    expect(again.status).toBe(200);
    expect(again.body).toEqual({ success: true, message: "Run deleted successfully" });
  });
});

describe("reporting tests", () => {
  it("records the documented test and reads it back, with its steps", async () => {
    const t = await createTenant();
    const a = api(t.key);
    const runId = await newRun(t);
    const created = await a.post("/api/tests", docTestBody(runId, t.project.id));
    expect(created.status).toBe(201);
    expect(created.body).toEqual({
      id: expect.stringMatching(/^res_[0-9A-Z]{26}$/),
      runId,
      projectId: t.project.id,
      title: "should display login form",
      fullTitle: "Auth > Login Page > should display login form",
      status: "passed",
      duration: 3420,
      isFlaky: false,
      createdAt: expect.stringMatching(ISO),
    });

    const got = await a.get(`/api/tests/${created.body.id}`);
    expect(got.status).toBe(200);
    expect(got.body).toEqual({
      id: created.body.id,
      runId,
      projectId: t.project.id,
      title: "should display login form",
      fullTitle: "Auth > Login Page > should display login form",
      filePath: "tests/auth/login.spec.ts",
      lineNumber: 15,
      status: "passed",
      duration: 3420,
      retries: 0,
      attempt: 1,
      isFlaky: false,
      tags: ["@smoke", "@auth"],
      annotations: [{ type: "slow", description: "Includes network wait" }],
      error: null,
      stdout: "",
      stderr: "",
      createdAt: created.body.createdAt,
    });
    const steps = await a.get(`/api/tests/${created.body.id}/steps`);
    expect(steps.status).toBe(200);
    expect(steps.body).toEqual({ data: docTestBody(runId, t.project.id).steps });
  });

  it("reads a failing test as the documented detail, steps and list item", async () => {
    const t = await createTenant();
    const a = api(t.key);
    const runId = await newRun(t);
    const created = await a.post("/api/tests", failingTestBody(runId, t.project.id));
    expect(created.status).toBe(201);
    const got = await a.get(`/api/tests/${created.body.id}`);
    expect(got.body).toEqual({
      id: created.body.id,
      runId,
      projectId: t.project.id,
      title: "should submit login form",
      fullTitle: "Auth > Login Page > should submit login form",
      filePath: "tests/auth/login.spec.ts",
      lineNumber: 35,
      status: "failed",
      duration: 8320,
      retries: 2,
      attempt: 3,
      isFlaky: false,
      tags: ["@smoke", "@auth"],
      annotations: [],
      error: failingError,
      stdout: "",
      stderr: "",
      createdAt: expect.stringMatching(ISO),
    });
    expect((await a.get(`/api/tests/${created.body.id}/steps`)).body).toEqual({ data: failingSteps });

    const list = await a.get(`/api/tests?runId=${runId}&projectId=${t.project.id}&status=failed`);
    expect(list.status).toBe(200);
    expect(list.body).toMatchObject({ total: 1, limit: 50, offset: 0 });
    expect(list.body.data[0]).toMatchObject({
      id: created.body.id,
      runId,
      title: "should submit login form",
      fullTitle: "Auth > Login Page > should submit login form",
      filePath: "tests/auth/login.spec.ts",
      status: "failed",
      duration: 8320,
      isFlaky: false,
      error: failingError,
      createdAt: expect.stringMatching(ISO),
    });
  });

  it("returns output larger than the inline limit whole", async () => {
    const t = await createTenant();
    const runId = await newRun(t);
    const stdout = "line of output\n".repeat(15_000);
    const created = await postTest(t, runId, { title: "noisy", fullTitle: "noisy", status: "passed", stdout, stderr: "é".repeat(70_000) });
    const got = await api(t.key).get(`/api/tests/${created.id}`);
    expect(got.body.stdout).toBe(stdout);
    expect(got.body.stderr).toBe("é".repeat(70_000));
  });

  it("keeps nested steps nested", async () => {
    const t = await createTenant();
    const runId = await newRun(t);
    const steps = [{ title: "outer", category: "hook", steps: [{ title: "inner", status: "passed", duration: 1.4 }, { title: "second" }] }];
    const created = await postTest(t, runId, { title: "n", fullTitle: "n", status: "passed", steps });
    const got = await api(t.key).get(`/api/tests/${created.id}/steps`);
    expect(got.body).toEqual({ data: steps });
  });

  it("derives the run's counts from its tests", async () => {
    const t = await createTenant();
    const a = api(t.key);
    const runId = await newRun(t);
    for (const [status, duration] of [["passed", 100], ["failed", 200], ["skipped", 0], ["flaky", 300]] as const) {
      await postTest(t, runId, { title: status, fullTitle: `Suite > ${status}`, status, duration });
    }
    const expected = { totalTests: 4, passedTests: 1, failedTests: 1, skippedTests: 1, flakyTests: 1, passRate: 25, duration: 600 };
    const run = await a.get(`/api/runs/${runId}`);
    expect(run.body).toMatchObject({ ...expected, derivedCounts: expected, reportedCounts: null });
    expect((await a.get(`/api/runs?projectId=${t.project.id}`)).body.data[0]).toMatchObject(expected);

    // A passed test marked flaky counts as flaky and is listed under the flaky filter.
    await postTest(t, runId, { title: "retried", fullTitle: "Suite > retried", status: "passed", isFlaky: true, attempt: 2, retries: 1 });
    expect((await a.get(`/api/runs/${runId}`)).body).toMatchObject({ totalTests: 5, passedTests: 1, flakyTests: 2, passRate: 20 });
    const flaky = await a.get(`/api/tests?runId=${runId}&projectId=${t.project.id}&status=flaky`);
    expect(flaky.body.data.map((r: { title: string }) => r.title)).toEqual(["flaky", "retried"]);
    expect(flaky.body.data[1]).toMatchObject({ status: "passed", isFlaky: true });
  });

  it("filters by status and search, by run or across the project, and pages", async () => {
    const t = await createTenant();
    const a = api(t.key);
    const run1 = await newRun(t);
    const run2 = await newRun(t);
    await postTest(t, run1, { title: "should submit login form", fullTitle: "Auth > Login Page > should submit login form", status: "failed" });
    await postTest(t, run1, { title: "should display login form", fullTitle: "Auth > Login Page > should display login form", status: "passed" });
    await postTest(t, run1, { title: "renders widgets", fullTitle: "Dashboard > renders widgets", status: "failed" });
    await postTest(t, run2, { title: "100%_done", fullTitle: "Misc > 100%_done", status: "passed" });

    const q = (s: string) => a.get(`/api/tests?projectId=${t.project.id}${s}`);
    expect((await q("")).body.total).toBe(4);
    expect((await q(`&runId=${run1}`)).body.total).toBe(3);
    expect((await q(`&runId=${run1}`)).body.data.map((r: { title: string }) => r.title)).toEqual([
      "should submit login form",
      "should display login form",
      "renders widgets",
    ]);
    expect((await q("&status=failed")).body.total).toBe(2);
    const search = await q(`&runId=${run1}&search=LOGIN`);
    expect(search.body.data.map((r: { title: string }) => r.title)).toEqual(["should submit login form", "should display login form"]);
    expect((await q("&status=failed&search=login")).body.total).toBe(1);
    // LIKE wildcards in the search are literal.
    expect((await q("&search=%25_")).body.data.map((r: { title: string }) => r.title)).toEqual(["100%_done"]);
    const page = await q(`&runId=${run1}&limit=1&offset=1`);
    expect(page.body).toMatchObject({ total: 3, limit: 1, offset: 1 });
    expect(page.body.data.map((r: { title: string }) => r.title)).toEqual(["should display login form"]);

    const missing = await a.get(`/api/tests?runId=${run1}`);
    expect(missing.status).toBe(400);
    expect(missing.body.error).toMatchObject({ message: "Query parameter 'projectId' is required", details: { field: "projectId", reason: "required" } });
    const badStatus = await q("&status=broken");
    expect(badStatus.status).toBe(400);
    expect(badStatus.body.error.details.field).toBe("status");
    // A run of another project answers as a missing run.
    const other = await createProject(t);
    expect((await a.get(`/api/tests?projectId=${other.id}&runId=${run1}`)).status).toBe(404);
    expect((await a.get(`/api/tests?projectId=proj_00000000000000000000000000`)).status).toBe(404);
  });

  it("shows a test's history across runs, newest first, with each run's branch", async () => {
    const t = await createTenant();
    const a = api(t.key);
    const body = { title: "should submit login form", fullTitle: "Auth > Login Page > should submit login form", filePath: "tests/auth/login.spec.ts" };
    const run1 = await newRun(t, { branch: "feature/signup", commitSha: "aaa" });
    const r1 = await postTest(t, run1, { ...body, status: "passed", duration: 3150 });
    const run2 = await newRun(t, { branch: "main", commitSha: "bbb" });
    const r2 = await postTest(t, run2, { ...body, status: "passed", duration: 3200 });
    const run3 = await newRun(t, { branch: "main", commitSha: "ccc" });
    const r3 = await postTest(t, run3, { ...body, status: "failed", duration: 8320 });
    // Another test in the same runs is not part of this history.
    await postTest(t, run3, { title: "other", fullTitle: "Auth > other", filePath: "tests/auth/login.spec.ts", status: "passed" });

    const res = await a.get(`/api/tests/${r3.id}/history`);
    expect(res.status).toBe(200);
    expect(res.body.total).toBe(3);
    expect(res.body.data.map((h: Record<string, unknown>) => ({ runId: h.runId, status: h.status, duration: h.duration, branch: h.branch }))).toEqual([
      { runId: run3, status: "failed", duration: 8320, branch: "main" },
      { runId: run2, status: "passed", duration: 3200, branch: "main" },
      { runId: run1, status: "passed", duration: 3150, branch: "feature/signup" },
    ]);
    expect(res.body.data[0]).toEqual({
      runId: run3,
      status: "failed",
      duration: 8320,
      branch: "main",
      createdAt: expect.stringMatching(ISO),
      resultId: r3.id,
      commitSha: "ccc",
      isFlaky: false,
    });
    const times = res.body.data.map((h: { createdAt: string }) => h.createdAt);
    expect([...times].sort().reverse()).toEqual(times);
    // Any execution of the test gives the same history.
    expect((await a.get(`/api/tests/${r1.id}/history`)).body).toEqual(res.body);
    expect((await a.get(`/api/tests/${r2.id}/history`)).body.total).toBe(3);
  });

  it("replaces a test reported again with a later attempt and refuses an earlier one", async () => {
    const t = await createTenant();
    const a = api(t.key);
    const runId = await newRun(t);
    const body = { title: "retry me", fullTitle: "S > retry me", filePath: "a.spec.ts" };
    const first = await postTest(t, runId, { ...body, status: "failed", attempt: 1 });
    const second = await postTest(t, runId, { ...body, status: "passed", attempt: 2, retries: 1, isFlaky: true });
    expect(second.id).toBe(first.id);
    expect((await a.get(`/api/tests/${first.id}`)).body).toMatchObject({ status: "passed", attempt: 2, isFlaky: true });

    const stale = await a.post("/api/tests", { runId, projectId: t.project.id, ...body, status: "failed", attempt: 1, duration: 5 });
    expect(stale.status).toBe(409);
    expect(stale.body.error.code).toBe("CONFLICT");
    expect(stale.body.error.details).toEqual({ runId, attempt: 1 });
    expect((await a.get(`/api/tests/${first.id}`)).body).toMatchObject({ status: "passed", attempt: 2 });
    expect((await a.get(`/api/runs/${runId}`)).body).toMatchObject({ totalTests: 1, flakyTests: 1, failedTests: 0 });
  });

  it("replays a POST with the same Idempotency-Key", async () => {
    const t = await createTenant();
    const a = api(t.key);
    const runId = await newRun(t);
    const body = docTestBody(runId, t.project.id);
    const one = await a.post("/api/tests", body, { "Idempotency-Key": "test-1" });
    const two = await a.post("/api/tests", body, { "Idempotency-Key": "test-1" });
    expect(two.status).toBe(201);
    expect(two.headers.get("Idempotent-Replayed")).toBe("true");
    expect(two.body).toEqual(one.body);
    const changed = await a.post("/api/tests", { ...body, duration: 1 }, { "Idempotency-Key": "test-1" });
    expect(changed.status).toBe(422);
  });

  it("refuses bad input with the field named and writes nothing", async () => {
    const t = await createTenant();
    const a = api(t.key);
    const runId = await newRun(t);
    let deep: Record<string, unknown> = { title: "leaf" };
    for (let i = 0; i < 32; i++) deep = { title: `level ${i}`, steps: [deep] };
    const deepField = `steps.0${".steps.0".repeat(32)}`;
    const base = docTestBody(runId, t.project.id);
    const cases: Array<[Record<string, unknown>, string, string?]> = [
      [{ status: "done" }, "status", "Field 'status' must be one of: passed, failed, skipped, flaky"],
      [{ duration: -1 }, "duration", "Field 'duration' must be at least 0"],
      [{ duration: 2 ** 53 }, "duration", "Field 'duration' must be at most 9007199254740991"],
      [{ lineNumber: 2 ** 53 }, "lineNumber"],
      [{ retries: 1.5 }, "retries"],
      [{ title: "bad\u0000title" }, "title", "Field 'title' must not contain NUL characters or unpaired surrogates"],
      [{ fullTitle: "lone \ud800 surrogate" }, "fullTitle"],
      [{ title: "" }, "title", "Field 'title' must not be empty"],
      [{ isFlaky: "yes" }, "isFlaky", "Field 'isFlaky' must be a boolean"],
      [{ error: { message: 42 } }, "error.message"],
      [{ tags: ["ok", "nul\u0000"] }, "tags.1"],
      [{ annotations: [{ description: "no type" }] }, "annotations.0.type"],
      [{ steps: [{ title: "s", category: "sleep" }] }, "steps.0.category"],
      [{ steps: [deep] }, deepField, `Field '${deepField}' steps must not nest deeper than 32 levels`],
      [{ duration: undefined }, "duration", "Field 'duration' is required"],
      [{ fullTitle: undefined }, "fullTitle", "Field 'fullTitle' is required"],
      [{ runId: undefined }, "runId", "Field 'runId' is required"],
    ];
    for (const [patch, field, message] of cases) {
      const res = await a.post("/api/tests", { ...base, ...patch });
      expect(res.status, field).toBe(400);
      expect(res.body.error.code, field).toBe("VALIDATION_ERROR");
      expect(res.body.error.details.field, JSON.stringify(patch).slice(0, 80)).toBe(field);
      if (message) expect(res.body.error.message).toBe(message);
    }
    expect((await a.get(`/api/tests?projectId=${t.project.id}&runId=${runId}`)).body.total).toBe(0);
    expect((await a.get(`/api/runs/${runId}`)).body.totalTests).toBe(0);

    const runCases: Array<[Record<string, unknown>, string]> = [
      [{ workers: 2 ** 53 }, "workers"],
      [{ workers: -1 }, "workers"],
      [{ shardCurrent: 0 }, "shardCurrent"],
      [{ branch: "a\u0000b" }, "branch"],
      [{ tags: "smoke" }, "tags"],
      [{ shardCurrent: 3, shardTotal: 2, ciBuildId: "b" }, "shardCurrent"],
    ];
    for (const [patch, field] of runCases) {
      const res = await a.post("/api/runs", { projectId: t.project.id, status: "running", ...patch });
      expect(res.status, field).toBe(400);
      expect(res.body.error.details.field, field).toBe(field);
    }
    expect((await a.get(`/api/runs?projectId=${t.project.id}`)).body.total).toBe(1);
  });

  it("answers 404 for a run of another project, writing nothing", async () => {
    const t = await createTenant();
    const a = api(t.key);
    const other = await createProject(t);
    const runId = await newRun(t);
    const res = await a.post("/api/tests", docTestBody(runId, other.id));
    expect(res.status).toBe(404);
    const missing = await a.post("/api/tests", docTestBody("run_00000000000000000000000000", other.id));
    expect(res.body.error.message).toBe("Test run not found");
    expect(res.body.error.code).toBe("NOT_FOUND");
    expect(missing.body.error.message).toBe(res.body.error.message);
    expect((await a.get(`/api/tests?projectId=${t.project.id}`)).body.total).toBe(0);
    expect((await a.get(`/api/tests?projectId=${other.id}`)).body.total).toBe(0);

    // A key restricted to the other project cannot see the run at all.
    const restricted = await createKey(t, { projectId: other.id, scopes: ["results:submit", "results:read", "testruns:read", "testruns:create"] });
    const r = api(restricted.key);
    expect((await r.post("/api/tests", docTestBody(runId, t.project.id))).status).toBe(404);
    expect((await r.get(`/api/runs/${runId}`)).status).toBe(404);
    expect((await r.get(`/api/runs?projectId=${t.project.id}`)).status).toBe(404);
    expect((await a.get(`/api/runs/${runId}`)).body.totalTests).toBe(0);
  });
});

describe("reporting test suites", () => {
  it("upserts suites by title, file path and parent and answers the tree", async () => {
    const t = await createTenant();
    const a = api(t.key);
    const runId = await newRun(t);
    const root = await a.post("/api/test-suites", { runId, projectId: t.project.id, title: "Auth", filePath: "tests/auth/login.spec.ts" });
    expect(root.status).toBe(201);
    expect(root.body).toEqual({
      id: expect.stringMatching(/^suite_[0-9A-Z]{26}$/),
      runId,
      projectId: t.project.id,
      title: "Auth",
      filePath: "tests/auth/login.spec.ts",
      parentSuiteId: null,
      createdAt: expect.stringMatching(ISO),
    });
    const body = { runId, projectId: t.project.id, title: "Login Page", filePath: "tests/auth/login.spec.ts", parentSuiteId: root.body.id };
    const child = await a.post("/api/test-suites", body);
    expect(child.status).toBe(201);
    expect(child.body).toEqual({
      id: expect.stringMatching(/^suite_/),
      runId,
      projectId: t.project.id,
      title: "Login Page",
      filePath: "tests/auth/login.spec.ts",
      parentSuiteId: root.body.id,
      createdAt: expect.stringMatching(ISO),
    });
    const again = await a.post("/api/test-suites", body);
    expect(again.status).toBe(201);
    expect(again.body).toEqual(child.body);
    // Same title elsewhere in the tree is another suite.
    const sibling = await a.post("/api/test-suites", { ...body, parentSuiteId: undefined });
    expect(sibling.body.id).not.toBe(child.body.id);

    // Tests reported with "Auth > Login Page > …" in that file land in the same suites.
    await a.post("/api/tests", docTestBody(runId, t.project.id));

    const tree = await a.get(`/api/test-suites?runId=${runId}&projectId=${t.project.id}`);
    expect(tree.status).toBe(200);
    expect(tree.body).toEqual({
      data: [
        {
          id: root.body.id,
          title: "Auth",
          filePath: "tests/auth/login.spec.ts",
          parentSuiteId: null,
          children: [{ id: child.body.id, title: "Login Page", filePath: "tests/auth/login.spec.ts", parentSuiteId: root.body.id, children: [] }],
        },
        { id: sibling.body.id, title: "Login Page", filePath: "tests/auth/login.spec.ts", parentSuiteId: null, children: [] },
      ],
    });
  });

  it("builds suites from reported tests' full titles", async () => {
    const t = await createTenant();
    const a = api(t.key);
    const runId = await newRun(t);
    await postTest(t, runId, { title: "a", fullTitle: "Outer > Inner > a", filePath: "x.spec.ts", status: "passed" });
    await postTest(t, runId, { title: "b", fullTitle: "Outer > b", filePath: "x.spec.ts", status: "passed" });
    const tree = await a.get(`/api/test-suites?runId=${runId}&projectId=${t.project.id}`);
    expect(tree.body.data).toHaveLength(1);
    expect(tree.body.data[0]).toMatchObject({ title: "Outer", parentSuiteId: null, children: [{ title: "Inner", children: [] }] });
    expect(tree.body.data[0].children[0].parentSuiteId).toBe(tree.body.data[0].id);
  });

  it("refuses bad input and unknown runs or parents", async () => {
    const t = await createTenant();
    const a = api(t.key);
    const runId = await newRun(t);
    const other = await createProject(t);
    const missingTitle = await a.post("/api/test-suites", { runId, projectId: t.project.id });
    expect(missingTitle.status).toBe(400);
    expect(missingTitle.body.error).toMatchObject({ message: "Field 'title' is required", details: { field: "title", reason: "required" } });
    const nul = await a.post("/api/test-suites", { runId, projectId: t.project.id, title: "a\u0000" });
    expect(nul.status).toBe(400);
    expect(nul.body.error.details.field).toBe("title");
    expect((await a.post("/api/test-suites", { runId, projectId: other.id, title: "x" })).status).toBe(404);
    const orphan = await a.post("/api/test-suites", { runId, projectId: t.project.id, title: "x", parentSuiteId: "suite_00000000000000000000000000" });
    expect(orphan.status).toBe(404);
    expect(orphan.body.error.message).toBe("Test suite not found");
    // A parent from another run is not a parent here.
    const run2 = await newRun(t);
    const foreignParent = await a.post("/api/test-suites", { runId: run2, projectId: t.project.id, title: "p" });
    expect((await a.post("/api/test-suites", { runId, projectId: t.project.id, title: "x", parentSuiteId: foreignParent.body.id })).status).toBe(404);
    expect((await a.get(`/api/test-suites?runId=${runId}&projectId=${t.project.id}`)).body).toEqual({ data: [] });

    const noRun = await a.get(`/api/test-suites?projectId=${t.project.id}`);
    expect(noRun.status).toBe(400);
    expect(noRun.body.error).toMatchObject({ message: "Query parameter 'runId' is required", details: { field: "runId", reason: "required" } });
    expect((await a.get(`/api/test-suites?runId=${runId}`)).body.error.details.field).toBe("projectId");
    expect((await a.get(`/api/test-suites?runId=${runId}&projectId=${other.id}`)).status).toBe(404);
  });
});

describe("reporting runs and tests across tenants", () => {
  it("answers 404 to another tenant's ids and changes nothing of theirs", async () => {
    const owner = await createTenant();
    const intruder = await createTenant();
    const o = api(owner.key);
    const x = api(intruder.key);
    const runId = await newRun(owner, { branch: "main" });
    const test = await postTest(owner, runId, failingTestBody(runId, owner.project.id));
    const suite = (await o.post("/api/test-suites", { runId, projectId: owner.project.id, title: "Auth" })).body;
    const before = (await o.get(`/api/runs/${runId}`)).body;

    const missingRun = "run_00000000000000000000000000";
    const missingTest = "res_00000000000000000000000000";
    const pairs: Array<[string, () => Promise<{ status: number; body: any }>, () => Promise<{ status: number; body: any }>]> = [
      ["GET run", () => x.get(`/api/runs/${runId}`), () => x.get(`/api/runs/${missingRun}`)],
      ["PATCH run", () => x.patch(`/api/runs/${runId}`, { status: "passed", totalTests: 1 }), () => x.patch(`/api/runs/${missingRun}`, { status: "passed", totalTests: 1 })],
      ["GET test", () => x.get(`/api/tests/${test.id}`), () => x.get(`/api/tests/${missingTest}`)],
      ["GET steps", () => x.get(`/api/tests/${test.id}/steps`), () => x.get(`/api/tests/${missingTest}/steps`)],
      ["GET history", () => x.get(`/api/tests/${test.id}/history`), () => x.get(`/api/tests/${missingTest}/history`)],
      ["GET runs", () => x.get(`/api/runs?projectId=${owner.project.id}`), () => x.get(`/api/runs?projectId=proj_00000000000000000000000000`)],
      ["GET tests", () => x.get(`/api/tests?projectId=${owner.project.id}`), () => x.get(`/api/tests?projectId=proj_00000000000000000000000000`)],
      [
        "POST test",
        () => x.post("/api/tests", docTestBody(runId, owner.project.id)),
        () => x.post("/api/tests", docTestBody(missingRun, owner.project.id)),
      ],
      [
        "POST test into own project",
        () => x.post("/api/tests", docTestBody(runId, intruder.project.id)),
        () => x.post("/api/tests", docTestBody(missingRun, intruder.project.id)),
      ],
      [
        "POST suite",
        () => x.post("/api/test-suites", { runId, projectId: owner.project.id, title: "Auth" }),
        () => x.post("/api/test-suites", { runId: missingRun, projectId: owner.project.id, title: "Auth" }),
      ],
      [
        "GET suites",
        () => x.get(`/api/test-suites?runId=${runId}&projectId=${owner.project.id}`),
        () => x.get(`/api/test-suites?runId=${missingRun}&projectId=${owner.project.id}`),
      ],
    ];
    const strip = (body: unknown) => JSON.stringify(body).replace(/"(run|res|proj|suite)_[0-9A-Z]+"/g, '"ID"');
    for (const [name, foreign, missing] of pairs) {
      const f = await foreign();
      const m = await missing();
      expect(f.status, name).toBe(404);
      expect(m.status, name).toBe(404);
      expect(strip(f.body), name).toBe(strip(m.body));
    }
    // Delete is idempotent: another tenant's id answers as an absent one, and deletes nothing.
    const del = await x.del(`/api/runs/${runId}`);
    expect(del.status).toBe(200);
    expect(del.body).toEqual({ success: true, message: "Run deleted successfully" });

    expect((await o.get(`/api/runs/${runId}`)).body).toEqual(before);
    expect((await o.get(`/api/tests?projectId=${owner.project.id}`)).body.total).toBe(1);
    expect((await o.get(`/api/tests/${test.id}`)).body.status).toBe("failed");
    expect((await o.get(`/api/test-suites?runId=${runId}&projectId=${owner.project.id}`)).body.data.map((s: { id: string }) => s.id)).toContain(suite.id);
    expect((await x.get(`/api/runs?projectId=${intruder.project.id}`)).body.total).toBe(0);
  });

  it("requires each route's scope", async () => {
    const t = await createTenant();
    const runId = await newRun(t);
    const reader = api((await createKey(t, { scopes: ["testruns:read", "results:read"] })).key);
    const create = await reader.post("/api/runs", { projectId: t.project.id, status: "running" });
    expect(create.status).toBe(403);
    expect(create.body.error).toMatchObject({ code: "FORBIDDEN", details: { requiredScope: "testruns:create" } });
    expect((await reader.post("/api/tests", docTestBody(runId, t.project.id))).status).toBe(403);
    expect((await reader.post("/api/test-suites", { runId, projectId: t.project.id, title: "x" })).status).toBe(403);
    expect((await reader.patch(`/api/runs/${runId}`, { status: "passed" })).status).toBe(403);
    expect((await reader.del(`/api/runs/${runId}`)).status).toBe(403);
    expect((await reader.get(`/api/runs/${runId}`)).status).toBe(200);
    expect((await api(t.key).get(`/api/runs/${runId}`)).body.status).toBe("running");
  });
});

describe("reporting runs in the OpenAPI document", () => {
  it("documents every route with a reporting operationId, named schemas and a required body", async () => {
    const doc = (await call("/openapi.json")).body;
    const expected: Array<[string, string, string]> = [
      ["/api/runs", "post", "reportingCreateRun"],
      ["/api/runs", "get", "reportingListRuns"],
      ["/api/runs/{id}", "get", "reportingGetRun"],
      ["/api/runs/{id}", "patch", "reportingUpdateRun"],
      ["/api/runs/{id}", "delete", "reportingDeleteRun"],
      ["/api/tests", "post", "reportingCreateTest"],
      ["/api/tests", "get", "reportingListTests"],
      ["/api/tests/{id}", "get", "reportingGetTest"],
      ["/api/tests/{id}/steps", "get", "reportingGetTestSteps"],
      ["/api/tests/{id}/history", "get", "reportingGetTestHistory"],
      ["/api/test-suites", "post", "reportingCreateTestSuite"],
      ["/api/test-suites", "get", "reportingListTestSuites"],
    ];
    for (const [path, method, operationId] of expected) {
      const op = doc.paths[path]?.[method];
      expect(op?.operationId, `${method} ${path}`).toBe(operationId);
      expect(op.tags[0]).toMatch(/^reporting: (runs|tests|test suites)$/);
      expect(op.responses["401"], `${method} ${path}`).toBeDefined();
      if (method === "post" || method === "patch") expect(op.requestBody.required).toBe(true);
    }
    for (const name of ["ReportingTestRun", "ReportingTestRunSummary", "ReportingTest", "ReportingStep", "ReportingTestSuiteNode", "ReportingHistory"]) {
      expect(doc.components.schemas[name], name).toBeDefined();
    }
  });
});

describe("limits and scopes of reporting writes", () => {
  it("lets a CI key with results:submit alone post tests, up to the results body limit", async () => {
    const t = await createTenant();
    const runId = await newRun(t);
    const ci = await createKey(t, { scopes: ["results:submit"] });
    const big = "o".repeat(2 * 1024 * 1024);
    const res = await api(ci.key).post("/api/tests", {
      runId,
      projectId: t.project.id,
      title: "t",
      fullTitle: "S > t",
      status: "passed",
      duration: 1,
      stdout: big,
    });
    expect(res.status, res.text.slice(0, 300)).toBe(201);
    expect((await api(t.key).get(`/api/tests/${res.body.id}`)).body.stdout).toBe(big);
  });

  it("refuses suites nested deeper than 32 levels, writing nothing", async () => {
    const t = await createTenant();
    const runId = await newRun(t);
    const a = api(t.key);
    let parentSuiteId: string | undefined;
    for (let depth = 1; depth <= 32; depth++) {
      const res = await a.post("/api/test-suites", { runId, projectId: t.project.id, title: `level ${depth}`, parentSuiteId });
      expect(res.status, res.text).toBe(201);
      parentSuiteId = res.body.id;
    }
    const tooDeep = await a.post("/api/test-suites", { runId, projectId: t.project.id, title: "level 33", parentSuiteId });
    expect(tooDeep.status).toBe(400);
    expect(tooDeep.body.error).toMatchObject({ code: "VALIDATION_ERROR", details: { field: "parentSuiteId", reason: "too_deep" } });
    let node = (await a.get(`/api/test-suites?runId=${runId}&projectId=${t.project.id}`)).body.data[0];
    let depth = 1;
    while (node.children.length > 0) {
      node = node.children[0];
      depth++;
    }
    expect(depth).toBe(32);
  });

  it("answers 404 for a project the key cannot see on the native list too", async () => {
    const t = await createTenant();
    const other = await createTenant();
    const res = await call(`/api/v1/testruns?project_id=${other.project.id}`, { key: t.key });
    expect(res.status).toBe(404);
    expect(res.body.error).toBe("not_found");
  });
});

describe("PATCH without counts", () => {
  it("leaves the run without reported counts: the headline stays derived", async () => {
    const t = await createTenant();
    const runId = await newRun(t);
    await postTest(t, runId, { title: "a", fullTitle: "S > a", status: "failed" });
    const res = await api(t.key).patch(`/api/runs/${runId}`, { status: "failed" });
    expect(res.status).toBe(200);
    const run = (await api(t.key).get(`/api/runs/${runId}`)).body;
    expect(run.reportedCounts).toBeNull();
    expect(run).toMatchObject({ totalTests: 1, failedTests: 1 });
  });
});
