import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { call } from "./helpers/http";
import { createKey, createTenant, type Tenant } from "./helpers/factories";

async function newRun(t: Tenant, body: Record<string, unknown> = {}) {
  const res = await call("/api/v1/testruns", { method: "POST", key: t.key, body: { project_id: t.project.id, ...body } });
  expect(res.status, res.text).toBe(201);
  return res.body;
}

function result(i: number, status = "passed", extra: Record<string, unknown> = {}) {
  return { title: `test ${i}`, full_title: `Suite > test ${i}`, file_path: "tests/a.spec.ts", status, duration: 10, ...extra };
}

async function submit(t: Tenant, runId: string, results: unknown[], headers: Record<string, string> = {}) {
  return call(`/api/v1/testruns/${runId}/results`, { method: "POST", key: t.key, body: { results }, headers });
}

async function eventsOf(subjectId: string): Promise<string[]> {
  const rows = await env.DB.prepare("SELECT type FROM events WHERE subject_id = ? ORDER BY number").bind(subjectId).all<{ type: string }>();
  return rows.results.map((r) => r.type);
}

describe("test runs", () => {
  it("creates a run with only project_id, and with nothing at all for a project-restricted key", async () => {
    const t = await createTenant();
    const run = await newRun(t);
    expect(run).toMatchObject({ project_id: t.project.id, status: "running", total_tests: 0, pass_rate: 0, shards: [] });
    expect(run.id).toMatch(/^run_[0-9A-Z]{26}$/);
    const restricted = await createKey(t, { projectId: t.project.id, scopes: ["testruns:create", "testruns:read"] });
    const res = await call("/api/v1/testruns", { method: "POST", key: restricted.key, body: {} });
    expect(res.status, res.text).toBe(201);
    expect(res.body.project_id).toBe(t.project.id);
    expect(await eventsOf(run.id)).toEqual(["testrun.created.v1"]);
  });

  it("derives counts, pass rate and duration from results", async () => {
    const t = await createTenant();
    const run = await newRun(t);
    const res = await submit(t, run.id, [
      result(1, "passed", { duration: 100 }),
      result(2, "failed", { duration: 200, error: { message: "boom", stack: "at x" } }),
      result(3, "skipped", { duration: 0 }),
      result(4, "flaky", { duration: 50 }),
      result(5, "passed", { duration: 25, is_flaky: true }),
    ]);
    expect(res.status, res.text).toBe(201);
    expect(res.body).toMatchObject({ accepted: 5, superseded: 0 });
    expect(res.body.results).toHaveLength(5);
    const read = (await call(`/api/v1/testruns/${run.id}`, { key: t.key })).body;
    expect(read).toMatchObject({ total_tests: 5, passed_tests: 1, failed_tests: 1, skipped_tests: 1, flaky_tests: 2, pass_rate: 20, duration: 375 });
    expect(read.submitted_at).not.toBeNull();
    expect(await eventsOf(run.id)).toEqual(["testrun.created.v1", "testrun.submitted.v1"]);
    const failed = res.body.results.find((r: any) => r.status === "failed");
    expect(await eventsOf(failed.id)).toEqual(["testcase.failed.v1"]);
  });
});
