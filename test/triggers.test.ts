import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { ADMIN_TOKEN, call } from "./helpers/http";
import { createKey, createTenant, type Tenant } from "./helpers/factories";

async function plan(t: Tenant, body: Record<string, unknown> = {}) {
  const res = await call("/api/v1/testplans", { method: "POST", key: t.key, body: { project_id: t.project.id, name: "Login Flow", ...body } });
  expect(res.status, res.text).toBe(201);
  return res.body as { id: string; number: number; name: string };
}

async function setCredits(t: Tenant, credits: number | null, costs?: { quickTest?: number; deepTest?: number }) {
  const res = await call(`/api/v1/admin/organizations/${t.organization.id}`, {
    method: "PATCH",
    headers: { Authorization: `Bearer ${ADMIN_TOKEN}` },
    body: { credits, ...(costs ? { credit_costs: costs } : {}) },
  });
  expect(res.status, res.text).toBe(200);
  expect(res.body.credits).toBe(credits);
}

const run = (t: Tenant, body: unknown) => call("/api/v1/run", { method: "POST", key: t.key, body });
const suite = (t: Tenant, body: unknown, key = t.key) =>
  call("/api/v1/qa/external/testsuite/trigger", { method: "POST", headers: { "X-PANTO-API-KEY": key }, body });

async function jobsOf(t: Tenant): Promise<{ id: string; run_id: string; status: string; test_type: string; build_ref: string | null; credits_charged: number }[]> {
  const rows = await env.DB.prepare("SELECT * FROM jobs WHERE organization_id = ? ORDER BY number").bind(t.organization.id).all();
  return rows.results as never;
}

describe("the plan trigger surface (reference 002)", () => {
  it("queues a single plan by its number, with the plan's default or the given test type, and echoes buildId", async () => {
    const t = await createTenant();
    const p = await plan(t);
    const res = await run(t, { testPlanId: p.number, testType: "quickTest" });
    expect(res.status, res.text).toBe(200);
    expect(Object.keys(res.body).sort()).toEqual(["jobId", "runId", "status", "testPlanId", "testType"]);
    expect(res.body).toMatchObject({ status: "queued", testPlanId: p.number, testType: "quickTest" });
    const withBuild = await run(t, { testPlanId: p.number, buildId: "abc123" });
    expect(withBuild.body).toMatchObject({ testPlanId: p.number, testType: "quickTest", buildId: "abc123" });
    // The job's run is queued, belongs to the plan, and carries the build id.
    const queued = await call(`/api/v1/testruns/${withBuild.body.runId}`, { key: t.key });
    expect(queued.body).toMatchObject({ status: "queued", plan_id: p.id, ci_build_id: "abc123" });
    // testrun.queued.v1 for every queued run.
    const events = await env.DB.prepare("SELECT payload FROM events WHERE organization_id = ? AND type = 'testrun.queued.v1'").bind(t.organization.id).all<{ payload: string }>();
    expect(events.results.map((e) => JSON.parse(e.payload))).toEqual([
      expect.objectContaining({ plan_id: p.id, job_id: res.body.jobId, run: expect.objectContaining({ run_id: res.body.runId, status: "queued" }) }),
      expect.objectContaining({ job_id: withBuild.body.jobId }),
    ]);
  });

  it("queues several plans from an array or a comma-separated string, and all plans of a project", async () => {
    const t = await createTenant();
    const login = await plan(t, { name: "Login Flow" });
    const signup = await plan(t, { name: "Signup Flow", default_test_type: "deepTest" });
    const array = await run(t, { testPlanIds: [login.number, signup.number], testType: "deepTest" });
    expect(array.status, array.text).toBe(200);
    expect(array.body).toMatchObject({
      triggered: 2,
      failed: 0,
      jobs: [
        { status: "queued", testPlanId: login.number, testPlanName: "Login Flow", testType: "deepTest" },
        { status: "queued", testPlanId: signup.number, testPlanName: "Signup Flow", testType: "deepTest" },
      ],
    });
    const text = await run(t, { testPlanIds: `${login.number},${signup.number}` });
    expect(text.body.jobs.map((j: any) => j.testType)).toEqual(["quickTest", "deepTest"]);
    const project = await run(t, { projectId: t.project.number });
    expect(project.body).toMatchObject({ triggered: 2, failed: 0 });
    expect(await jobsOf(t)).toHaveLength(6);
  });

  it("answers reference 002's errors with its exact sentences, queueing nothing", async () => {
    const t = await createTenant();
    const p = await plan(t);
    const none = await run(t, { testType: "quickTest" });
    expect(none.status).toBe(400);
    expect(none.body).toEqual({ error: "One of testPlanId, testPlanIds, or projectId is required" });
    const missing = await run(t, { testPlanId: 999_999 });
    expect(missing.status).toBe(404);
    expect(missing.body).toEqual({ error: "No test plans found" });
    const bad = await call("/api/v1/run", { method: "POST", headers: { Authorization: `Bearer gl_live_${"0".repeat(64)}` }, body: { testPlanId: p.number } });
    expect(bad.status).toBe(401);
    expect(bad.body).toEqual({ error: "Invalid API key" });
    expect((await run(t, { testPlanId: p.number, buildId: "x".repeat(101) })).status).toBe(400);
    expect((await run(t, { testPlanId: p.number, testPlanIds: [p.number] })).status).toBe(400);
    expect((await run(t, { testPlanIds: "1,x" })).status).toBe(400);
    // Another tenant's plan number is "not found".
    const other = await createTenant();
    expect((await run(other, { testPlanId: p.number })).body).toEqual({ error: "No test plans found" });
    expect((await run(other, { projectId: t.project.number })).status).toBe(404);
    expect(await jobsOf(t)).toHaveLength(0);
  });

  it("debits credits exactly once per queued job; 402 with the exact sentence when none can be queued", async () => {
    const t = await createTenant();
    const login = await plan(t, { name: "Login Flow" });
    const signup = await plan(t, { name: "Signup Flow" });
    await setCredits(t, 4, { quickTest: 1, deepTest: 3 });
    // 3 (deep) + 1 (quick) = 4.
    expect((await run(t, { testPlanId: login.number, testType: "deepTest" })).status).toBe(200);
    const multi = await run(t, { testPlanIds: [login.number, signup.number] });
    expect(multi.body).toMatchObject({ triggered: 1, failed: 1 });
    expect(multi.body.jobs[1]).toMatchObject({ status: "failed", jobId: null, error: "Insufficient credits. Please top up to continue running tests." });
    const org = await call(`/api/v1/organizations/${t.organization.id}`, { key: t.key });
    expect(org.body).toMatchObject({ credits: 0, credit_costs: { quickTest: 1, deepTest: 3 } });
    const broke = await run(t, { testPlanId: login.number });
    expect(broke.status).toBe(402);
    expect(broke.body).toEqual({ error: "Insufficient credits. Please top up to continue running tests." });
    const jobs = await jobsOf(t);
    expect(jobs.map((j) => j.credits_charged)).toEqual([3, 1]);
    const runs = await env.DB.prepare("SELECT count(*) AS n FROM test_runs WHERE organization_id = ?").bind(t.organization.id).first<{ n: number }>();
    expect(runs!.n).toBe(2);
    // Concurrent triggers never overspend: 10 at once with 5 credits queue exactly 5.
    await setCredits(t, 5);
    const burst = await Promise.all(Array.from({ length: 10 }, () => run(t, { testPlanId: signup.number })));
    expect(burst.filter((r) => r.status === 200)).toHaveLength(5);
    expect(burst.filter((r) => r.status === 402)).toHaveLength(5);
    expect((await call(`/api/v1/organizations/${t.organization.id}`, { key: t.key })).body.credits).toBe(0);
    // Unlimited again: nothing is charged.
    await setCredits(t, null);
    expect((await run(t, { testPlanId: signup.number })).status).toBe(200);
    expect((await jobsOf(t)).at(-1)!.credits_charged).toBe(0);
  });

  it("merges runtime cookies over the plan's stored ones, for the runner only", async () => {
    const t = await createTenant();
    const p = await plan(t, {
      cookies: [
        { name: "session", value: "stored-secret", domain: ".myapp.com" },
        { name: "locale", value: "en", domain: ".myapp.com" },
      ],
    });
    const res = await run(t, { testPlanId: p.number, cookies: [{ name: "session", value: "abc123xyz", domain: ".myapp.com" }] });
    expect(res.status, res.text).toBe(200);
    const runner = await createKey(t, { scopes: ["jobs:run"] });
    const claimed = await call("/api/v1/jobs/claim", { method: "POST", key: runner.key, body: {} });
    expect(claimed.status, claimed.text).toBe(200);
    expect(claimed.body.cookies).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ name: "session", value: "abc123xyz" }),
        expect.objectContaining({ name: "locale", value: "en" }),
      ]),
    );
    const sealed = await env.DB.prepare("SELECT cookies_sealed FROM jobs WHERE id = ?").bind(res.body.jobId).first<{ cookies_sealed: string }>();
    expect(sealed!.cookies_sealed).not.toContain("abc123xyz");
  });
});

describe("the suite trigger surface (reference 004)", () => {
  async function setup() {
    const t = await createTenant();
    const build = await call("/api/v1/builds", { method: "POST", key: t.key, body: { project_id: t.project.id, name: "app 1.2.3" } });
    expect(build.status, build.text).toBeLessThan(300);
    const checkout = await plan(t, { name: "Checkout", tags: { tag_name_1: ["value_1", "value_9"], tag_name_2: ["value_3"] } });
    const search = await plan(t, { name: "Search", tags: { tag_name_1: ["value_2"], tag_name_2: ["value_4"] } });
    const login = await plan(t, { name: "Login", tags: { tag_name_1: ["value_2"], tag_name_2: ["value_3"] } });
    expect((await call(`/api/v1/projects/${t.project.id}/environments`, { method: "POST", key: t.key, body: { name: "staging", base_url: "https://staging.example.com" } })).status).toBe(201);
    expect((await call(`/api/v1/projects/${t.project.id}/contexts`, { method: "POST", key: t.key, body: { name: "logged-in-user", data: { user: "qa" } } })).status).toBe(201);
    return { t, appId: build.body.id as string, checkout, search, login };
  }
  const body = (appId: string, extra: Record<string, unknown> = {}) => ({
    app_id: appId,
    tags: { include: { tag_name_1: ["value_1", "value_2"], tag_name_2: ["value_3"] } },
    devices: [{ device_name: "iPhone 13", platform_version: "16.0" }],
    env_name: "staging",
    context_name: "logged-in-user",
    ...extra,
  });

  it("triggers reference 004's example: include matches a suite when every tag named has one of the values", async () => {
    const { t, appId } = await setup();
    const res = await suite(t, body(appId));
    expect(res.status, res.text).toBe(200);
    // Checkout (value_1, value_3) and Login (value_2, value_3) match; Search has value_4.
    expect(res.body.message).toBe("Triggered 2 test suite(s) matched.");
    expect(res.body.test_runs).toHaveLength(2);
    for (const id of res.body.test_runs) {
      const r = await call(`/api/v1/testruns/${id}`, { key: t.key });
      expect(r.body.status).toBe("queued");
    }
    const jobs = await env.DB.prepare("SELECT device_name, platform_version, environment_id IS NOT NULL AS env, context_id IS NOT NULL AS ctx, build_ref FROM jobs WHERE organization_id = ?")
      .bind(t.organization.id)
      .all();
    expect(jobs.results).toEqual([
      { device_name: "iPhone 13", platform_version: "16.0", env: 1, ctx: 1, build_ref: appId },
      { device_name: "iPhone 13", platform_version: "16.0", env: 1, ctx: 1, build_ref: appId },
    ]);
  });

  it("queues one run per suite and device; exclude and the *_tags aliases work", async () => {
    const { t, appId } = await setup();
    const two = await suite(t, body(appId, { devices: [{ device_name: "iPhone 13", platform_version: "16.0" }, { device_name: "Pixel 8", platform_version: "14" }] }));
    expect(two.body.message).toBe("Triggered 2 test suite(s) matched.");
    expect(two.body.test_runs).toHaveLength(4);
    const excluded = await suite(t, body(appId, { tags: { exclude_tags: { tag_name_2: ["value_4"] } } }));
    expect(excluded.body.message).toBe("Triggered 2 test suite(s) matched.");
    const aliased = await suite(t, body(appId, { tags: { include_tags: { tag_name_2: ["value_4"] } } }));
    expect(aliased.body.message).toBe("Triggered 1 test suite(s) matched.");
  });

  it("answers reference 004's errors as {detail}, queueing nothing", async () => {
    const { t, appId } = await setup();
    const cases: [unknown, number, string][] = [
      [body("bld_00000000000000000000000000"), 404, "Build file not found"],
      [body("some-file"), 404, "Build file not found"],
      [body(appId, { env_name: "production" }), 404, "Environment not found"],
      [body(appId, { context_name: "admin" }), 404, "Context not found"],
      [body(appId, { tags: { include: { tag_name_1: ["nope"] } } }), 404, "No test suites found matching the provided tags"],
    ];
    for (const [request, status, detail] of cases) {
      const res = await suite(t, request);
      expect(res.status, res.text).toBe(status);
      expect(res.body).toEqual({ detail });
    }
    const both = await suite(t, body(appId, { tags: { include: { a: ["b"] }, exclude: { c: ["d"] } } }));
    expect(both.status).toBe(400);
    expect(Object.keys(both.body)).toEqual(["detail"]);
    const neither = await suite(t, body(appId, { tags: {} }));
    expect(neither.status).toBe(400);
    expect(neither.body.detail).toMatch(/Exactly one tags selector/);
    const noDevices = await suite(t, body(appId, { devices: [] }));
    expect(noDevices.status).toBe(400);
    const badDevice = await suite(t, body(appId, { devices: [{ device_name: "iPhone 13" }] }));
    expect(badDevice.status).toBe(400);
    expect(badDevice.body.detail).toMatch(/platform_version/);
    expect(await jobsOf(t)).toHaveLength(0);
    // Another tenant's build is not found either.
    const other = await createTenant();
    expect((await suite(other, body(appId))).body).toEqual({ detail: "Build file not found" });
  });

  it("accepts an uploaded artifact as the app", async () => {
    const { t } = await setup();
    const runRes = await call("/api/v1/testruns", { method: "POST", key: t.key, body: { project_id: t.project.id } });
    const form = new FormData();
    form.append("type", "report");
    form.append("run_id", runRes.body.id);
    form.append("file", new File([Uint8Array.from([0x50, 0x4b, 0x05, 0x06, ...new Array(18).fill(0)])], "app.zip"));
    const uploaded = await call("/api/v1/artifacts", { method: "POST", key: t.key, body: form });
    expect(uploaded.status, uploaded.text).toBe(201);
    const res = await suite(t, body(uploaded.body.id));
    expect(res.status, res.text).toBe(200);
  });
});

describe("native trigger and job completion", () => {
  it("queues per device with environment, context and labels; completing the run ends the job", async () => {
    const t = await createTenant();
    const p = await plan(t, { default_test_type: "deepTest" });
    await call(`/api/v1/projects/${t.project.id}/environments`, { method: "POST", key: t.key, body: { name: "staging" } });
    const res = await call(`/api/v1/testplans/${p.id}/trigger`, {
      method: "POST",
      key: t.key,
      body: { build_id: "sha-1", environment: "staging", labels: ["linux"], devices: [{ device_name: "Chrome", platform_version: "120" }, { device_name: "Firefox", platform_version: "121" }] },
    });
    expect(res.status, res.text).toBe(201);
    expect(res.body).toMatchObject({ plan_id: p.id, triggered: 2, failed: 0 });
    expect(res.body.jobs.map((j: any) => [j.device_name, j.test_type, j.status])).toEqual([
      ["Chrome", "deepTest", "queued"],
      ["Firefox", "deepTest", "queued"],
    ]);
    expect((await call(`/api/v1/testplans/${p.id}/trigger`, { method: "POST", key: t.key, body: { environment: "nope" } })).status).toBe(404);
    const done = await call(`/api/v1/testruns/${res.body.jobs[0].run_id}`, { method: "PATCH", key: t.key, body: { status: "passed" } });
    expect(done.status).toBe(200);
    const job = await env.DB.prepare("SELECT status, finished_at FROM jobs WHERE id = ?").bind(res.body.jobs[0].job_id).first<{ status: string; finished_at: string }>();
    expect(job).toMatchObject({ status: "done" });
    expect(job!.finished_at).toBeTruthy();
    // A key without plans:trigger may not trigger.
    const reader = await createKey(t, { scopes: ["plans:read"] });
    expect((await call(`/api/v1/testplans/${p.id}/trigger`, { method: "POST", key: reader.key, body: {} })).status).toBe(403);
  });
});

describe("the cron and lapsed jobs", () => {
  it("fails a job whose last lease lapsed, and its run, even when no runner claims again", async () => {
    const t = await createTenant();
    const p = await plan(t);
    const queued = await call(`/api/v1/testplans/${p.id}/trigger`, { method: "POST", key: t.key, body: {} });
    const runner = await createKey(t, { scopes: ["jobs:run"] });
    expect((await call("/api/v1/jobs/claim", { method: "POST", key: runner.key, body: {} })).status).toBe(200);
    const jobId = queued.body.jobs[0].job_id;
    // Its third attempt, with the lease already over: the only way to let time pass in D1.
    await env.DB.prepare("UPDATE jobs SET attempts = max_attempts, lease_until = ? WHERE id = ?").bind(new Date(Date.now() - 1000).toISOString(), jobId).run();
    const { createExecutionContext, createScheduledController, waitOnExecutionContext } = await import("cloudflare:test");
    const worker = (await import("../src/index")).default;
    const ctx = createExecutionContext();
    await worker.scheduled!(createScheduledController({ scheduledTime: new Date(), cron: "*/5 * * * *" }), env, ctx);
    await waitOnExecutionContext(ctx);
    const job = await env.DB.prepare("SELECT status, error FROM jobs WHERE id = ?").bind(jobId).first<{ status: string; error: string }>();
    expect(job).toEqual({ status: "failed", error: "The lease expired on the last of 3 attempts." });
    const failedRun = await call(`/api/v1/testruns/${queued.body.jobs[0].run_id}`, { key: t.key });
    expect(failedRun.body).toMatchObject({ status: "failed", status_reason: "The lease expired on the last of 3 attempts." });
  });
});
