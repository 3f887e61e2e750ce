import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { call } from "./helpers/http";
import { createKey, createTenant, type Tenant } from "./helpers/factories";

type Outcome = "passed" | "failed" | "flaky" | "skipped";

/** One run per outcome, each reporting the test "subject" (and `others` more tests, for outages). */
async function history(t: Tenant, outcomes: Outcome[], options: { commits?: (string | null)[]; others?: Outcome[][] } = {}) {
  for (const [i, outcome] of outcomes.entries()) {
    const run = await call("/api/v1/testruns", {
      method: "POST",
      key: t.key,
      body: { project_id: t.project.id, commit_sha: options.commits?.[i] ?? `c${i}`.padEnd(7, "0") },
    });
    const results = [
      { title: "subject", file_path: "a.spec.ts", status: outcome, duration: 1, ...(outcome === "flaky" ? { retries: 1 } : {}) },
      ...(options.others?.[i] ?? []).map((status, k) => ({ title: `other ${k}`, file_path: "b.spec.ts", status, duration: 1 })),
    ];
    const res = await call(`/api/v1/testruns/${run.body.id}/results`, { method: "POST", key: t.key, body: { results } });
    expect(res.status, res.text).toBe(201);
  }
}

async function subject(t: Tenant) {
  const res = await call(`/api/v1/projects/${t.project.id}/flakiness?include_insufficient=true&limit=100`, { key: t.key });
  expect(res.status, res.text).toBe(200);
  return res.body.data.find((i: any) => i.title === "subject");
}

describe("flakiness scores", () => {
  it("scores a test that always passes 0 and one that always fails 0: broken is not flaky", async () => {
    const a = await createTenant();
    await history(a, ["passed", "passed", "passed", "passed", "passed", "passed"]);
    expect(await subject(a)).toMatchObject({ flakiness_score: 0, status: "stable", total_runs: 6, flip_rate: 0, pass_on_retry: 0, same_commit_conflicts: 0, confidence: 0.2 });
    const b = await createTenant();
    await history(b, ["failed", "failed", "failed", "failed", "failed"]);
    expect(await subject(b)).toMatchObject({ flakiness_score: 0, status: "stable", total_runs: 5 });
  });

  it("counts flips of the final outcome as flips ÷ (n − 1)", async () => {
    const t = await createTenant();
    await history(t, ["passed", "failed", "passed", "failed", "passed"]);
    // Every execution after the first flipped the outcome: four flaky runs.
    expect(await subject(t)).toMatchObject({ flip_rate: 1, flakiness_score: 1, status: "flaky", flaky_runs: 4 });
    const u = await createTenant();
    await history(u, ["passed", "passed", "passed", "failed", "failed", "failed"]);
    // One flip in five steps.
    expect(await subject(u)).toMatchObject({ flip_rate: 0.2, flakiness_score: 0.2 });
  });

  it("counts a pass on retry within a run, which is not a failure for flips", async () => {
    const t = await createTenant();
    await history(t, ["passed", "flaky", "passed", "passed", "passed", "passed"]);
    expect(await subject(t)).toMatchObject({ pass_on_retry: 1, flaky_runs: 1, flip_rate: 0, flakiness_score: 0.1667 });
  });

  it("counts commits on which the test both passed and failed", async () => {
    const t = await createTenant();
    const same = "abcdef1";
    // Runs 3 and 4 test the same commit: one passes, one fails (and that is one flip each way).
    await history(t, ["passed", "passed", "passed", "failed", "passed", "passed"], { commits: ["c000001", "c000002", same, same, "c000005", "c000006"] });
    const s = await subject(t);
    // Flaky runs: the two on the shared commit, and the pass after it (a flip).
    expect(s).toMatchObject({ same_commit_conflicts: 1, flaky_runs: 3, flip_rate: 0.4 });
    // 1 − (1 − 0)(1 − 0.4)(1 − 2/6)
    expect(s.flakiness_score).toBeCloseTo(0.6, 4);
  });

  it("has no score below the minimum sample, and skipped executions do not count towards it", async () => {
    const t = await createTenant();
    await history(t, ["passed", "failed", "skipped", "passed", "skipped", "failed"]);
    expect(await subject(t)).toMatchObject({ flakiness_score: null, status: "insufficient_data", total_runs: 4 });
    // Left out of the list unless asked for.
    const listed = await call(`/api/v1/projects/${t.project.id}/flakiness`, { key: t.key });
    expect(listed.body.data).toHaveLength(0);
  });

  it("leaves out executions in runs where more than 80 % of the tests failed", async () => {
    const t = await createTenant();
    const healthy: Outcome[] = ["passed", "passed", "passed", "passed"];
    const outage: Outcome[] = ["failed", "failed", "failed", "failed"];
    // Run 4 is an outage: the subject's failure there is not held against it.
    await history(t, ["passed", "passed", "passed", "failed", "passed", "passed", "passed"], {
      others: [healthy, healthy, healthy, outage, healthy, healthy, healthy],
    });
    expect(await subject(t)).toMatchObject({ total_runs: 6, flip_rate: 0, flakiness_score: 0 });
  });

  it("looks back over the project's window only", async () => {
    const t = await createTenant();
    await env.DB.prepare("UPDATE project_settings SET flakiness_window = 5 WHERE project_id = ?").bind(t.project.id).run();
    // Alternating long ago, then steady: only the last five count.
    await history(t, ["passed", "failed", "passed", "failed", "passed", "passed", "passed", "passed", "passed"]);
    expect(await subject(t)).toMatchObject({ total_runs: 5, flip_rate: 0, flakiness_score: 0, confidence: 1 });
  });

  it("lists by score, highest first, filtered by min_score, and keeps tenants apart", async () => {
    const t = await createTenant();
    for (const [i, outcomes] of ([["passed", "failed", "passed", "failed", "passed"], ["passed", "passed", "passed", "passed", "passed"]] as Outcome[][]).entries()) {
      for (const [k, status] of outcomes.entries()) {
        const run = await call("/api/v1/testruns", { method: "POST", key: t.key, body: { project_id: t.project.id, commit_sha: `d${i}${k}`.padEnd(7, "0") } });
        await call(`/api/v1/testruns/${run.body.id}/results`, { method: "POST", key: t.key, body: { results: [{ title: `t${i}`, status, duration: 1 }] } });
      }
    }
    const all = await call(`/api/v1/projects/${t.project.id}/flakiness`, { key: t.key });
    expect(all.body.data.map((i: any) => [i.title, i.flakiness_score])).toEqual([
      ["t0", 1],
      ["t1", 0],
    ]);
    const flaky = await call(`/api/v1/projects/${t.project.id}/flakiness?min_score=0.5`, { key: t.key });
    expect(flaky.body.data.map((i: any) => i.title)).toEqual(["t0"]);
    const other = await createTenant();
    expect((await call(`/api/v1/projects/${t.project.id}/flakiness`, { key: other.key })).status).toBe(404);
  });
});

describe("quarantine", () => {
  it("is set on a test case with who and why, announced once, and keeps its failures from blocking a release", async () => {
    const t = await createTenant();
    const release = await call("/api/v1/releases", { method: "POST", key: t.key, body: { project_id: t.project.id, name: "R1", gate: { min_pass_rate: 0.5 } } });
    const build = await call("/api/v1/builds", { method: "POST", key: t.key, body: { project_id: t.project.id, name: "b1", release_id: release.body.id } });
    const run = await call("/api/v1/testruns", { method: "POST", key: t.key, body: { project_id: t.project.id, build_id: build.body.id, status: "running" } });
    const submitted = await call(`/api/v1/testruns/${run.body.id}/results`, {
      method: "POST",
      key: t.key,
      body: { results: [{ title: "ok 1", status: "passed", duration: 1 }, { title: "ok 2", status: "passed", duration: 1 }, { title: "wobbly", status: "failed", duration: 1 }] },
    });
    await call(`/api/v1/testruns/${run.body.id}`, { method: "PATCH", key: t.key, body: { status: "failed" } });
    expect(submitted.status, submitted.text).toBe(201);
    const wobbly = submitted.body.results.find((r: any) => r.full_title === "wobbly").test_case_id;
    const before = await call(`/api/v1/releases/${release.body.id}/progress`, { key: t.key });
    expect(before.body.verdict).toBe("blocked");

    const ci = await createKey(t, { scopes: ["results:submit"] });
    const quarantined = await call(`/api/v1/testcases/${wobbly}`, { method: "PATCH", key: ci.key, body: { is_quarantined: true, quarantine_reason: "times out on the shared runner" } });
    expect(quarantined.status, quarantined.text).toBe(200);
    expect(quarantined.body).toMatchObject({ is_quarantined: true, quarantined_by: ci.id, quarantine_reason: "times out on the shared runner" });
    expect(quarantined.body.quarantined_at).toBeTruthy();
    // Again: no second event.
    await call(`/api/v1/testcases/${wobbly}`, { method: "PATCH", key: ci.key, body: { is_quarantined: true } });
    const events = await env.DB.prepare("SELECT payload FROM events WHERE type = 'testcase.quarantined.v1' AND subject_id = ?").bind(wobbly).all<{ payload: string }>();
    expect(events.results).toHaveLength(1);
    expect(JSON.parse(events.results[0]!.payload)).toMatchObject({ source: "manual", test_case: { test_case_id: wobbly, is_quarantined: true } });

    const after = await call(`/api/v1/releases/${release.body.id}/progress`, { key: t.key });
    expect(after.body.verdict).toBe("ready");
    expect(after.body.summary).toMatch(/1 failing test case is quarantined/);
    expect(after.body.failing_test_cases).toEqual([expect.objectContaining({ test_case_id: wobbly, quarantined: true })]);

    // A reason without a quarantine is refused, not dropped: the test case is as it was.
    for (const body of [{ quarantine_reason: "new reason" }, { is_quarantined: false, quarantine_reason: "why" }]) {
      const refused = await call(`/api/v1/testcases/${wobbly}`, { method: "PATCH", key: t.key, body });
      expect(refused.status, JSON.stringify(body)).toBe(400);
      expect(refused.text).toContain("quarantine_reason");
    }
    expect((await call(`/api/v1/testcases/${wobbly}`, { key: t.key })).body).toMatchObject({ is_quarantined: true, quarantine_reason: null });
    const released = await call(`/api/v1/testcases/${wobbly}`, { method: "PATCH", key: t.key, body: { is_quarantined: false } });
    expect(released.body).toMatchObject({ is_quarantined: false, quarantined_by: null, quarantine_reason: null });
    expect((await call(`/api/v1/releases/${release.body.id}/progress`, { key: t.key })).body.verdict).toBe("blocked");
    const all = await env.DB.prepare("SELECT count(*) AS n FROM events WHERE type = 'testcase.quarantined.v1' AND subject_id = ?").bind(wobbly).first<{ n: number }>();
    expect(all!.n).toBe(2);
  });

  it("answers 404 for another tenant's test case and changes nothing", async () => {
    const a = await createTenant();
    const b = await createTenant();
    const run = await call("/api/v1/testruns", { method: "POST", key: b.key, body: { project_id: b.project.id } });
    const sub = await call(`/api/v1/testruns/${run.body.id}/results`, { method: "POST", key: b.key, body: { results: [{ title: "x", status: "failed", duration: 1 }] } });
    const tc = sub.body.results[0].test_case_id;
    expect((await call(`/api/v1/testcases/${tc}`, { method: "PATCH", key: a.key, body: { is_quarantined: true } })).status).toBe(404);
    expect((await call(`/api/v1/testcases/${tc}`, { key: b.key })).body.is_quarantined).toBe(false);
  });
});

describe("the reporting surface's flakiness (reference 003)", () => {
  it("lists tests by score with the summary, and quarantines by test id", async () => {
    const t = await createTenant();
    await history(t, ["passed", "failed", "passed", "failed", "passed", "flaky"]);
    const listed = await call(`/api/flakiness?projectId=${t.project.id}&minScore=0.3`, { key: t.key });
    expect(listed.status, listed.text).toBe(200);
    expect(listed.body.data).toHaveLength(1);
    const [item] = listed.body.data;
    expect(Object.keys(item).sort()).toEqual(
      ["confidence", "filePath", "flakinessScore", "flakyRuns", "flipRate", "isQuarantined", "lastFlakyAt", "passOnRetry", "sameCommitConflicts", "testId", "testTitle", "totalRuns"].sort(),
    );
    // Four flips in five steps, one pass on retry in six: 1 − (5/6)(1 − 0.8).
    expect(item).toMatchObject({ testTitle: "subject", filePath: "a.spec.ts", totalRuns: 6, flakyRuns: 5, passOnRetry: 1, flipRate: 0.8, isQuarantined: false, flakinessScore: 0.8333 });
    expect(item.lastFlakyAt).toBeTruthy();
    expect(listed.body.summary).toEqual({ totalFlakyTests: 1, quarantinedTests: 0, averageFlakinessScore: 0.8333 });

    // The body of reference 003; the test id may also be a result of the test (the surface's "test").
    const quarantined = await call("/api/flakiness", { method: "POST", key: t.key, body: { testId: item.testId, projectId: t.project.id, isQuarantined: true } });
    expect(quarantined.status, quarantined.text).toBe(200);
    expect(Object.keys(quarantined.body).sort()).toEqual(["isQuarantined", "testId", "updatedAt"]);
    expect(quarantined.body).toMatchObject({ testId: item.testId, isQuarantined: true });
    const only = await call(`/api/flakiness?projectId=${t.project.id}&quarantined=true`, { key: t.key });
    expect(only.body.data.map((i: any) => i.testId)).toEqual([item.testId]);
    expect(only.body.summary.quarantinedTests).toBe(1);
    const none = await call(`/api/flakiness?projectId=${t.project.id}&quarantined=false`, { key: t.key });
    expect(none.body.data).toHaveLength(0);

    const other = await createTenant();
    expect((await call("/api/flakiness", { method: "POST", key: other.key, body: { testId: item.testId, projectId: t.project.id, isQuarantined: false } })).status).toBe(404);
    expect((await call(`/api/flakiness?projectId=${t.project.id}`, { key: other.key })).status).toBe(404);
    const bad = await call("/api/flakiness", { method: "POST", key: t.key, body: { testId: item.testId, projectId: t.project.id } });
    expect(bad.status).toBe(400);
    expect(bad.body.error.code).toBe("VALIDATION_ERROR");
  });
});
