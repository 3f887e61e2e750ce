import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { call } from "./helpers/http";
import { createKey, createProject, createTenant, type Tenant } from "./helpers/factories";

async function newRun(t: Tenant, body: Record<string, unknown> = {}) {
  const res = await call("/api/v1/testruns", { method: "POST", key: t.key, body: { project_id: t.project.id, ...body } });
  expect(res.status, res.text).toBe(201);
  return res.body;
}

export function result(i: number, status = "passed", extra: Record<string, unknown> = {}) {
  return { title: `test ${i}`, full_title: `Suite > test ${i}`, file_path: "tests/a.spec.ts", status, duration: 10, ...extra };
}

async function submit(t: Tenant, runId: string, results: unknown[], headers: Record<string, string> = {}) {
  return call(`/api/v1/testruns/${runId}/results`, { method: "POST", key: t.key, body: { results }, headers });
}

async function getRun(t: Tenant, id: string) {
  return (await call(`/api/v1/testruns/${id}`, { key: t.key })).body;
}

async function eventsOf(subjectId: string): Promise<string[]> {
  const rows = await env.DB.prepare("SELECT type FROM events WHERE subject_id = ? ORDER BY number").bind(subjectId).all<{ type: string }>();
  return rows.results.map((r) => r.type);
}

async function rowCount(table: string, where: string, ...binds: unknown[]): Promise<number> {
  const row = await env.DB.prepare(`SELECT count(*) AS n FROM ${table} WHERE ${where}`).bind(...binds).first<{ n: number }>();
  return row!.n;
}

describe("creating and reading runs", () => {
  it("needs only project_id, and nothing at all from a project-restricted key", async () => {
    const t = await createTenant();
    const run = await newRun(t);
    expect(run).toMatchObject({ project_id: t.project.id, status: "running", total_tests: 0, pass_rate: 0, shards: [], reported_counts: null });
    expect(run.id).toMatch(/^run_[0-9A-Z]{26}$/);
    const restricted = await createKey(t, { projectId: t.project.id, scopes: ["testruns:create", "testruns:read"] });
    const res = await call("/api/v1/testruns", { method: "POST", key: restricted.key, body: {} });
    expect(res.status, res.text).toBe(201);
    expect(res.body.project_id).toBe(t.project.id);
    expect(await eventsOf(run.id)).toEqual(["testrun.created.v1"]);
  });

  it("refuses a restricted key naming another project, and an owner key naming none", async () => {
    const t = await createTenant();
    const other = await createProject(t);
    const restricted = await createKey(t, { projectId: t.project.id, scopes: ["testruns:create"] });
    const res = await call("/api/v1/testruns", { method: "POST", key: restricted.key, body: { project_id: other.id } });
    expect(res.status).toBe(404);
    const none = await call("/api/v1/testruns", { method: "POST", key: t.key, body: {} });
    expect(none.status).toBe(400);
    expect(none.body.details).toMatchObject({ field: "project_id", reason: "required" });
    expect((await call("/api/v1/testruns", { key: t.key })).body.pagination.total).toBe(0);
  });

  it("keeps all CI metadata and lists runs newest first with filters", async () => {
    const t = await createTenant();
    const meta = {
      branch: "feature/login-flow",
      commit_sha: "a1b2c3d4e5f6",
      commit_message: "Add login flow tests",
      commit_author: "jane@example.com",
      ci_provider: "github-actions",
      ci_build_id: "run-12345",
      ci_build_url: "https://github.com/org/repo/actions/runs/12345",
      playwright_version: "1.52.0",
      workers: 4,
      browser: "chromium",
      os: "linux",
      viewport: "1280x720",
      hostname: "ci-runner-01",
      run_title: "Login Flow Tests",
      tags: ["smoke", "login"],
      grep_patterns: ["@smoke"],
    };
    const first = await newRun(t, meta);
    expect(first).toMatchObject(meta);
    const second = await newRun(t, { branch: "main", status: "failed" });
    const all = await call("/api/v1/testruns?limit=1", { key: t.key });
    expect(all.body.data.map((r: any) => r.id)).toEqual([second.id]);
    expect(all.body.pagination).toEqual({ total: 2, limit: 1, offset: 0, has_more: true });
    const filtered = await call("/api/v1/testruns?branch=feature%2Flogin-flow&status=running", { key: t.key });
    expect(filtered.body.data.map((r: any) => r.id)).toEqual([first.id]);
    expect((await call("/api/v1/testruns?ci_build_id=run-12345", { key: t.key })).body.data).toHaveLength(1);
  });
});

describe("submitting results", () => {
  it("derives counts, pass rate and duration from the results, and records the events", async () => {
    const t = await createTenant();
    const run = await newRun(t);
    const res = await submit(t, run.id, [
      result(1, "passed", { duration: 100 }),
      result(2, "failed", { duration: 200, error: { message: "boom", stack: "at x" } }),
      result(3, "skipped", { duration: 0 }),
      result(4, "flaky", { duration: 50 }),
      result(5, "passed", { duration: 25.4, is_flaky: true }),
    ]);
    expect(res.status, res.text).toBe(201);
    expect(res.body).toMatchObject({ accepted: 5, superseded: 0 });
    expect(res.body.results).toHaveLength(5);
    expect(res.body.run).toMatchObject({ total_tests: 5, passed_tests: 1, failed_tests: 1, skipped_tests: 1, flaky_tests: 2 });
    const read = await getRun(t, run.id);
    expect(read).toMatchObject({ total_tests: 5, passed_tests: 1, failed_tests: 1, skipped_tests: 1, flaky_tests: 2, pass_rate: 20, duration: 375 });
    expect(read.submitted_at).not.toBeNull();
    expect(await eventsOf(run.id)).toEqual(["testrun.created.v1", "testrun.submitted.v1"]);
    const failed = res.body.results.find((r: any) => r.status === "failed");
    expect(await eventsOf(failed.id)).toEqual(["testcase.failed.v1"]);
  });

  it("stores a test once per run: a repeat replaces it, an older attempt does not", async () => {
    const t = await createTenant();
    const run = await newRun(t);
    await submit(t, run.id, [result(1, "failed", { attempt: 1 }), result(2)]);
    await submit(t, run.id, [result(1, "failed", { attempt: 1 }), result(2)]);
    expect(await getRun(t, run.id)).toMatchObject({ total_tests: 2, failed_tests: 1, passed_tests: 1 });
    const retry = await submit(t, run.id, [result(1, "passed", { attempt: 2, retries: 1, is_flaky: true })]);
    expect(retry.body.superseded).toBe(0);
    const late = await submit(t, run.id, [result(1, "failed", { attempt: 1 })]);
    expect(late.body).toMatchObject({ accepted: 1, superseded: 1, results: [] });
    expect(await getRun(t, run.id)).toMatchObject({ total_tests: 2, failed_tests: 0, passed_tests: 1, flaky_tests: 1 });
  });

  it("stores results posted twice with the same Idempotency-Key once", async () => {
    const t = await createTenant();
    const run = await newRun(t);
    const body = [result(1), result(2, "failed")];
    const first = await submit(t, run.id, body, { "Idempotency-Key": "results-1" });
    const second = await submit(t, run.id, body, { "Idempotency-Key": "results-1" });
    expect(second.status).toBe(201);
    expect(second.headers.get("idempotent-replayed")).toBe("true");
    expect(second.body).toEqual(first.body);
    expect(await eventsOf(run.id)).toEqual(["testrun.created.v1", "testrun.submitted.v1"]);
    expect(await rowCount("results", "run_id = ?", run.id)).toBe(2);
  });

  it("keeps output over 64 KB whole in R2 and returns it on read", async () => {
    const t = await createTenant();
    const run = await newRun(t);
    const big = "line of output ✓\n".repeat(5000);
    expect(new TextEncoder().encode(big).byteLength).toBeGreaterThan(64 * 1024);
    const res = await submit(t, run.id, [result(1, "failed", { stdout: big, stderr: "small", error: { message: "m", expected: "visible", actual: "hidden" } })]);
    expect(res.status, res.text).toBe(201);
    const detail = await call(`/api/v1/results/${res.body.results[0].id}`, { key: t.key });
    expect(detail.status).toBe(200);
    expect(detail.body.stdout).toBe(big);
    expect(detail.body.stderr).toBe("small");
    expect(detail.body.error).toEqual({ message: "m", expected: "visible", actual: "hidden" });
    const listed = await env.ARTIFACTS.list({ prefix: `projects/${t.project.id}/runs/${run.id}/` });
    expect(listed.objects.map((o) => o.key.split("/").pop())).toEqual(["stdout.txt"]);
  });

  it("returns nested steps as reported", async () => {
    const t = await createTenant();
    const run = await newRun(t);
    const steps = [
      { title: "Before Hooks", category: "hook", status: "passed", duration: 120, error: null },
      {
        title: "login",
        category: "fixture",
        status: "failed",
        duration: 30000,
        steps: [{ title: "expect(locator).toBeVisible()", category: "assertion", status: "failed", duration: 30000, error: { message: "Timed out" } }],
      },
    ];
    const res = await submit(t, run.id, [result(1, "failed", { steps })]);
    const read = await call(`/api/v1/results/${res.body.results[0].id}/steps`, { key: t.key });
    expect(read.status).toBe(200);
    expect(read.body).toEqual({ data: steps });
  });

  it("builds the suite tree from full titles and explicit suite paths", async () => {
    const t = await createTenant();
    const run = await newRun(t);
    await submit(t, run.id, [
      { title: "a", full_title: "Auth > Login Page > a", file_path: "tests/auth.spec.ts", status: "passed", duration: 1 },
      { title: "b", full_title: "Auth > Login Page > b", file_path: "tests/auth.spec.ts", status: "passed", duration: 1 },
      { title: "c", full_title: "Auth > c", file_path: "tests/auth.spec.ts", status: "passed", duration: 1 },
      { title: "d", suite_path: ["Checkout"], file_path: "tests/pay.spec.ts", status: "passed", duration: 1 },
    ]);
    const tree = await call(`/api/v1/testruns/${run.id}/suites`, { key: t.key });
    expect(tree.status).toBe(200);
    const shape = (nodes: any[]): any[] => nodes.map((n) => ({ title: n.title, file: n.file_path, children: shape(n.children) }));
    expect(shape(tree.body.data)).toEqual([
      { title: "Auth", file: "tests/auth.spec.ts", children: [{ title: "Login Page", file: "tests/auth.spec.ts", children: [] }] },
      { title: "Checkout", file: "tests/pay.spec.ts", children: [] },
    ]);
    expect(tree.body.data[0].children[0].parent_suite_id).toBe(tree.body.data[0].id);
  });

  it("lists a run's results with status and search filters", async () => {
    const t = await createTenant();
    const run = await newRun(t);
    await submit(t, run.id, [result(1), result(2, "failed"), result(3, "failed", { title: "login works", full_title: "Auth > login works" })]);
    const failed = await call(`/api/v1/testruns/${run.id}/results?status=failed`, { key: t.key });
    expect(failed.body.data.map((r: any) => r.title)).toEqual(["test 2", "login works"]);
    const search = await call(`/api/v1/testruns/${run.id}/results?search=LOGIN`, { key: t.key });
    expect(search.body.data.map((r: any) => r.title)).toEqual(["login works"]);
    const wildcard = await call(`/api/v1/testruns/${run.id}/results?search=%25`, { key: t.key });
    expect(wildcard.body.pagination.total).toBe(0);
  });
});

describe("shards", () => {
  it("merges 3 shards x 200 results posted concurrently, in any order and twice, into exact totals", async () => {
    const t = await createTenant();
    const shardMeta = (n: number) => ({ ci_build_id: "gh-777", run_title: "e2e", shard_current: n, shard_total: 3, hostname: `runner-${n}` });
    const created = await Promise.all([3, 1, 2].map((n) => newRun(t, shardMeta(n))));
    const runId = created[0].id;
    expect(created.map((r) => r.id)).toEqual([runId, runId, runId]);
    // Playwright-shaped: each shard reports its own 200 tests; every 10th fails, every 25th is flaky.
    const shardResults = (n: number) =>
      Array.from({ length: 200 }, (_, i) => {
        const status = i % 10 === 0 ? "failed" : i % 25 === 1 ? "flaky" : i % 50 === 2 ? "skipped" : "passed";
        return {
          title: `case ${i}`,
          full_title: `chromium > shard${n}.spec.ts > Group ${i % 4} > case ${i}`,
          file_path: `tests/shard${n}.spec.ts`,
          status,
          duration: 100 + i,
          retries: status === "flaky" ? 1 : 0,
          attempt: status === "flaky" ? 2 : 1,
          steps: [{ title: "step", category: "action", status: status === "failed" ? "failed" : "passed", duration: 5 }],
        };
      });
    const posts = await Promise.all([
      submit(t, runId, shardResults(2)),
      submit(t, runId, shardResults(1)),
      submit(t, runId, shardResults(3)),
      submit(t, runId, shardResults(2)),
    ]);
    for (const p of posts) expect(p.status, p.text).toBe(201);
    const run = await getRun(t, runId);
    const per = { failed: 20, flaky: 8, skipped: 0, passed: 0 };
    for (let i = 0; i < 200; i++) if (!(i % 10 === 0) && !(i % 25 === 1) && i % 50 === 2) per.skipped++;
    per.passed = 200 - per.failed - per.flaky - per.skipped;
    const durationPerShard = Array.from({ length: 200 }, (_, i) => 100 + i).reduce((a, b) => a + b, 0);
    expect(run).toMatchObject({
      total_tests: 600,
      failed_tests: per.failed * 3,
      flaky_tests: per.flaky * 3,
      skipped_tests: per.skipped * 3,
      passed_tests: per.passed * 3,
      duration: durationPerShard * 3,
      shard_total: 3,
    });
    expect(run.shards.map((s: any) => [s.shard_current, s.hostname])).toEqual([
      [1, "runner-1"],
      [2, "runner-2"],
      [3, "runner-3"],
    ]);
    expect((await call(`/api/v1/testruns?ci_build_id=gh-777`, { key: t.key })).body.pagination.total).toBe(1);
  });

  it("completes a sharded run only when every shard has finished, and says so once", async () => {
    const t = await createTenant();
    const meta = (n: number) => ({ ci_build_id: "gh-9", shard_current: n, shard_total: 2 });
    const run = await newRun(t, meta(1));
    await newRun(t, meta(2));
    const patch = (body: unknown) => call(`/api/v1/testruns/${run.id}`, { method: "PATCH", key: t.key, body });
    expect((await patch({ status: "failed", shard_current: 2 })).body.status).toBe("running");
    expect((await getRun(t, run.id)).completed_at).toBeNull();
    const done = await patch({ status: "passed", shard_current: 1 });
    expect(done.body).toMatchObject({ status: "failed" });
    expect(done.body.completed_at).not.toBeNull();
    await patch({ status: "failed", shard_current: 2 });
    expect(await eventsOf(run.id)).toEqual(["testrun.created.v1", "testrun.completed.v1", "run.completed", "run.failed"]);
  });

  it("keeps runs of different builds or titles apart", async () => {
    const t = await createTenant();
    const a = await newRun(t, { ci_build_id: "b1", run_title: "x", shard_current: 1, shard_total: 2 });
    const b = await newRun(t, { ci_build_id: "b1", run_title: "y", shard_current: 1, shard_total: 2 });
    const c = await newRun(t, { ci_build_id: "b2", run_title: "x", shard_current: 1, shard_total: 2 });
    const d = await newRun(t, { ci_build_id: "b1", run_title: "x" });
    expect(new Set([a.id, b.id, c.id, d.id]).size).toBe(4);
    const bad = await call("/api/v1/testruns", { method: "POST", key: t.key, body: { project_id: t.project.id, shard_current: 3, shard_total: 2 } });
    expect(bad.status).toBe(400);
    expect(bad.body.details.field).toBe("shard_current");
  });
});

describe("updating and deleting runs", () => {
  it("honours counts set by hand, beside the derived ones", async () => {
    const t = await createTenant();
    const run = await newRun(t);
    await submit(t, run.id, [result(1), result(2, "failed")]);
    const res = await call(`/api/v1/testruns/${run.id}`, {
      method: "PATCH",
      key: t.key,
      body: { status: "failed", total_tests: 142, passed_tests: 138, failed_tests: 3, skipped_tests: 0, flaky_tests: 1, duration: 245000 },
    });
    expect(res.status, res.text).toBe(200);
    expect(res.body).toMatchObject({ status: "failed", total_tests: 142, passed_tests: 138, pass_rate: 97.18, duration: 245000 });
    expect(res.body.derived_counts).toMatchObject({ total_tests: 2, passed_tests: 1, failed_tests: 1, pass_rate: 50 });
    expect(res.body.reported_counts).toEqual({ total_tests: 142, passed_tests: 138, failed_tests: 3, skipped_tests: 0, flaky_tests: 1, duration: 245000 });
    expect(await getRun(t, run.id)).toMatchObject({ total_tests: 142, completed_at: res.body.completed_at });
    expect(await eventsOf(run.id)).toEqual(["testrun.created.v1", "testrun.submitted.v1", "testrun.completed.v1", "run.completed", "run.failed"]);
  });

  it("deletes results, suites, stored output and the run; deleting again succeeds", async () => {
    const t = await createTenant();
    const run = await newRun(t);
    const keep = await newRun(t);
    const res = await submit(t, run.id, [result(1, "failed", { stderr: "x".repeat(70 * 1024) }), result(2)]);
    await submit(t, keep.id, [result(1)]);
    const resultId = res.body.results[0].id;
    const del = await call(`/api/v1/testruns/${run.id}`, { method: "DELETE", key: t.key });
    expect(del.status).toBe(204);
    expect((await call(`/api/v1/testruns/${run.id}`, { key: t.key })).status).toBe(404);
    expect((await call(`/api/v1/results/${resultId}`, { key: t.key })).status).toBe(404);
    expect(await rowCount("results", "run_id = ?", run.id)).toBe(0);
    expect(await rowCount("test_suites", "run_id = ?", run.id)).toBe(0);
    expect((await env.ARTIFACTS.list({ prefix: `projects/${t.project.id}/runs/${run.id}/` })).objects).toHaveLength(0);
    expect((await call(`/api/v1/testruns/${run.id}`, { method: "DELETE", key: t.key })).status).toBe(204);
    expect((await getRun(t, keep.id)).total_tests).toBe(1);
    expect((await call("/api/v1/testruns", { key: t.key })).body.data.map((r: any) => r.id)).toEqual([keep.id]);
  });
});

describe("bad input writes nothing", () => {
  // Each bad result follows a good one, so the test also proves the good one is not written.
  const cases: [string, Record<string, unknown>, string][] = [
    ["unknown status", result(1, "exploded"), "results.1.status"],
    ["negative duration", result(1, "passed", { duration: -1 }), "results.1.duration"],
    ["a number beyond 2^53", result(1, "passed", { duration: 2 ** 53 + 2 }), "results.1.duration"],
    ["a missing title", { status: "passed", duration: 1 }, "results.1.title"],
    ["a NUL in a title", result(1, "passed", { title: "a\u0000b" }), "results.1.title"],
    ["a lone surrogate", result(1, "passed", { stdout: "x\ud800y" }), "results.1.stdout"],
    ["a bad step", result(1, "passed", { steps: [{ title: "s", category: "dance" }] }), "results.1.steps.0.category"],
  ];
  for (const [what, bad, field] of cases) {
    it(`refuses ${what} with the field path`, async () => {
      const t = await createTenant();
      const run = await newRun(t);
      const res = await submit(t, run.id, [result(0), bad]);
      expect(res.status, res.text).toBe(400);
      expect(res.body.error).toBe("invalid_request");
      expect(res.body.details.field).toBe(field);
      expect(await rowCount("results", "run_id = ?", run.id)).toBe(0);
      expect(await rowCount("test_cases", "project_id = ?", t.project.id)).toBe(0);
    });
  }

  it("refuses an empty list", async () => {
    const t = await createTenant();
    const run = await newRun(t);
    const res = await submit(t, run.id, []);
    expect(res.status).toBe(400);
    expect(res.body.details).toMatchObject({ field: "results", reason: "too_few" });
  });

  it("refuses steps nested 33 deep, naming the level", async () => {
    const t = await createTenant();
    const run = await newRun(t);
    let steps: any[] = [{ title: "leaf" }];
    for (let i = 0; i < 32; i++) steps = [{ title: `level ${i}`, steps }];
    const res = await submit(t, run.id, [result(1, "passed", { steps })]);
    expect(res.status, res.text).toBe(400);
    expect(res.body.details.field).toBe(`results.0.steps.0${".steps.0".repeat(32)}`);
    expect(await rowCount("results", "run_id = ?", run.id)).toBe(0);
  });

  it("refuses a hostile nesting thousands deep without falling over", async () => {
    const t = await createTenant();
    const run = await newRun(t);
    const deep = `{"results":[{"title":"t","status":"passed","duration":1,"steps":${'[{"title":"s","steps":'.repeat(3000)}[]${"}]".repeat(3000)}}]}`;
    const res = await call(`/api/v1/testruns/${run.id}/results`, { method: "POST", key: t.key, body: deep, headers: { "content-type": "application/json" } });
    expect(res.status).toBe(400);
    expect(await rowCount("results", "run_id = ?", run.id)).toBe(0);
  });

  it("refuses more than 1,000 results in one POST", async () => {
    const t = await createTenant();
    const run = await newRun(t);
    const res = await submit(t, run.id, Array.from({ length: 1001 }, (_, i) => result(i)));
    expect(res.status).toBe(400);
    expect(res.body.details).toMatchObject({ field: "results", reason: "too_many" });
    expect(await rowCount("results", "run_id = ?", run.id)).toBe(0);
  });

  it("refuses NaN (not JSON) and unknown run ids", async () => {
    const t = await createTenant();
    const run = await newRun(t);
    const nan = await call(`/api/v1/testruns/${run.id}/results`, {
      method: "POST",
      key: t.key,
      body: '{"results":[{"title":"t","status":"passed","duration":NaN}]}',
      headers: { "content-type": "application/json" },
    });
    expect(nan.status).toBe(400);
    const missing = await submit(t, "run_00000000000000000000000000", [result(1)]);
    expect(missing.status).toBe(404);
    expect(await rowCount("test_cases", "project_id = ?", t.project.id)).toBe(0);
  });
});

describe("deletes cut short", () => {
  it("are finished by the cron, and a deleted project takes its stored output with it", async () => {
    const { createExecutionContext, createScheduledController, waitOnExecutionContext } = await import("cloudflare:test");
    const worker = (await import("../src/index")).default;
    const t = await createTenant();
    const run = await newRun(t);
    await submit(t, run.id, [result(1, "passed", { stdout: "y".repeat(70 * 1024) })]);
    // A delete that stopped after its first statement: the run is hidden, its rows still there.
    await env.DB.prepare("UPDATE test_runs SET deleted_at = ?, shard_key = NULL WHERE id = ?").bind(new Date().toISOString(), run.id).run();
    expect((await call(`/api/v1/testruns/${run.id}`, { key: t.key })).status).toBe(404);
    expect(await rowCount("results", "run_id = ?", run.id)).toBe(1);
    const ctx = createExecutionContext();
    await worker.scheduled!(createScheduledController({ scheduledTime: new Date(), cron: "*/5 * * * *" }), env, ctx);
    await waitOnExecutionContext(ctx);
    expect(await rowCount("results", "run_id = ?", run.id)).toBe(0);
    expect(await rowCount("test_runs", "id = ?", run.id)).toBe(0);
    expect((await env.ARTIFACTS.list({ prefix: `projects/${t.project.id}/runs/${run.id}/` })).objects).toHaveLength(0);

    const other = await newRun(t);
    await submit(t, other.id, [result(1, "passed", { stdout: "z".repeat(70 * 1024) })]);
    expect((await env.ARTIFACTS.list({ prefix: `projects/${t.project.id}/` })).objects).toHaveLength(1);
    expect((await call(`/api/v1/projects/${t.project.id}`, { method: "DELETE", key: t.key })).status).toBe(204);
    expect((await env.ARTIFACTS.list({ prefix: `projects/${t.project.id}/` })).objects).toHaveLength(0);
    expect(await rowCount("results", "project_id = ?", t.project.id)).toBe(0);
  });

  it("accept results submissions beyond the 1 MB other JSON bodies get", async () => {
    const t = await createTenant();
    const run = await newRun(t);
    const res = await submit(t, run.id, [result(1, "passed", { stdout: "w".repeat(3 * 1024 * 1024) })]);
    expect(res.status, res.text.slice(0, 200)).toBe(201);
    const other = await call("/api/v1/projects", { method: "POST", key: t.key, body: { name: "x", description: "w".repeat(2 * 1024 * 1024) } });
    expect(other.status).toBe(413);
  });
});

describe("a project-restricted key", () => {
  it("sees runs, results and test cases of its project only", async () => {
    const t = await createTenant();
    const other = await createProject(t);
    const mine = await newRun(t);
    const theirs = (await call("/api/v1/testruns", { method: "POST", key: t.key, body: { project_id: other.id } })).body;
    const mineResults = await submit(t, mine.id, [result(1)]);
    const theirResults = await submit(t, theirs.id, [result(1)]);
    const restricted = await createKey(t, {
      projectId: t.project.id,
      scopes: ["testruns:read", "testruns:create", "results:read", "results:submit"],
    });
    const k = restricted.key;
    expect((await call("/api/v1/testruns", { key: k })).body.data.map((r: any) => r.id)).toEqual([mine.id]);
    expect((await call(`/api/v1/testruns/${theirs.id}`, { key: k })).status).toBe(404);
    expect((await call(`/api/v1/testruns/${theirs.id}/results`, { key: k })).status).toBe(404);
    expect((await call(`/api/v1/results/${theirResults.body.results[0].id}`, { key: k })).status).toBe(404);
    expect((await call(`/api/v1/testcases/${theirResults.body.results[0].test_case_id}`, { key: k })).status).toBe(404);
    expect((await call(`/api/v1/testcases/${theirResults.body.results[0].test_case_id}/history`, { key: k })).status).toBe(404);
    expect((await call(`/api/v1/projects/${other.id}/testcases`, { key: k })).status).toBe(404);
    expect((await call(`/api/v1/testruns/${theirs.id}/results`, { method: "POST", key: k, body: { results: [result(2)] } })).status).toBe(404);
    expect((await call(`/api/v1/testruns/${theirs.id}`, { method: "PATCH", key: k, body: { status: "failed" } })).status).toBe(404);
    expect((await call(`/api/v1/testruns/${theirs.id}`, { method: "DELETE", key: k })).status).toBe(204);
    // Nothing of the other project changed.
    expect(await getRun(t, theirs.id)).toMatchObject({ status: "running", total_tests: 1 });
    expect((await call(`/api/v1/results/${mineResults.body.results[0].id}`, { key: k })).status).toBe(200);
    // Another organization's key completing this run: 404, and the run is as it was.
    const stranger = await createTenant();
    const patched = await call(`/api/v1/testruns/${mine.id}`, { method: "PATCH", key: stranger.key, body: { status: "failed", branch: "evil" } });
    expect(patched.status).toBe(404);
    expect(await getRun(t, mine.id)).toMatchObject({ status: "running", branch: null, completed_at: null });
    expect(await eventsOf(mine.id)).not.toContain("testrun.completed.v1");
  });
});
