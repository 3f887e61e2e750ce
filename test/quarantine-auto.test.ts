import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { call } from "./helpers/http";
import { createTenant, type Tenant } from "./helpers/factories";
import { junitReport } from "./helpers/reports";
import { SQLiteAsyncDialect } from "drizzle-orm/sqlite-core";
import { executionsSql, scoresUpdateSql } from "../src/core/flakiness/refresh";

type Outcome = "passed" | "failed" | "flaky" | "skipped";
const DAY_MS = 24 * 60 * 60 * 1000;

async function settings(t: Tenant, body: Record<string, unknown>, expected = 200) {
  const res = await call(`/api/v1/projects/${t.project.id}/settings`, { method: "PATCH", key: t.key, body });
  expect(res.status, res.text).toBe(expected);
  return res.body;
}

/** One run per outcome, each reporting the test "subject" and `healthy` passing tests beside it. */
async function history(t: Tenant, outcomes: Outcome[], options: { complete?: boolean } = {}) {
  const runs: string[] = [];
  for (const outcome of outcomes) {
    const run = await call("/api/v1/testruns", { method: "POST", key: t.key, body: { project_id: t.project.id } });
    const res = await call(`/api/v1/testruns/${run.body.id}/results`, {
      method: "POST",
      key: t.key,
      body: { results: [{ title: "subject", file_path: "a.spec.ts", status: outcome, duration: 1, ...(outcome === "flaky" ? { retries: 1 } : {}) }] },
    });
    expect(res.status, res.text).toBe(201);
    if (options.complete) await call(`/api/v1/testruns/${run.body.id}`, { method: "PATCH", key: t.key, body: { status: outcome === "failed" ? "failed" : "passed" } });
    runs.push(run.body.id);
  }
  return runs;
}

async function subject(t: Tenant) {
  const res = await call(`/api/v1/projects/${t.project.id}/flakiness?include_insufficient=true&limit=100`, { key: t.key });
  expect(res.status, res.text).toBe(200);
  return { item: res.body.data.find((i: any) => i.title === "subject"), summary: res.body.summary, list: res.body };
}

async function events(t: Tenant, type: string): Promise<any[]> {
  const rows = await env.DB.prepare("SELECT payload FROM events WHERE organization_id = ? AND type = ? ORDER BY number")
    .bind(t.organization.id, type)
    .all<{ payload: string }>();
  return rows.results.map((r) => JSON.parse(r.payload));
}

async function housekeeping(at: Date) {
  const { createExecutionContext, createScheduledController, waitOnExecutionContext } = await import("cloudflare:test");
  const worker = (await import("../src/index")).default;
  const ctx = createExecutionContext();
  await worker.scheduled!(createScheduledController({ scheduledTime: at, cron: "*/5 * * * *" }), env, ctx);
  await waitOnExecutionContext(ctx);
}

describe("auto-quarantine", () => {
  it("quarantines a test whose score reaches the threshold, announcing it flaky and quarantined once", async () => {
    const t = await createTenant();
    await settings(t, { auto_quarantine_enabled: true, flakiness_threshold: 0.5 });
    // Four executions: no score yet (minimum sample 5), so nothing happens.
    await history(t, ["passed", "failed", "passed", "passed"]);
    expect((await subject(t)).item).toMatchObject({ flakiness_score: null, is_quarantined: false });
    expect(await events(t, "testcase.flaky.v1")).toHaveLength(0);
    // The fifth: 2 flips in 4 steps → 0.5, at the threshold.
    await history(t, ["passed"]);
    const { item, summary } = await subject(t);
    expect(item).toMatchObject({ flakiness_score: 0.5, status: "flaky", is_quarantined: true, quarantine_source: "auto" });
    expect(item.quarantine_reason).toMatch(/0\.5 reached the threshold 0\.5/);
    expect(summary).toEqual({ flaky_tests: 1, quarantined_tests: 1, average_score: 0.5 });
    const testCase = await call(`/api/v1/testcases/${item.test_case_id}`, { key: t.key });
    expect(testCase.body).toMatchObject({ is_quarantined: true, quarantined_by: "auto", quarantine_source: "auto" });

    const flaky = await events(t, "testcase.flaky.v1");
    expect(flaky).toHaveLength(1);
    expect(flaky[0]).toMatchObject({ test_case: { test_case_id: item.test_case_id, flakiness_score: 0.5, total_runs: 5, is_quarantined: false } });
    expect(flaky[0].run_id).toMatch(/^run_/);
    const quarantined = await events(t, "testcase.quarantined.v1");
    expect(quarantined).toEqual([expect.objectContaining({ source: "auto", test_case: expect.objectContaining({ is_quarantined: true }) })]);

    // Still above the threshold on the next runs: no second announcement.
    await history(t, ["failed", "passed"]);
    expect(await events(t, "testcase.flaky.v1")).toHaveLength(1);
    expect(await events(t, "testcase.quarantined.v1")).toHaveLength(1);
  });

  it("leaves flaky tests alone while the project's auto-quarantine is off", async () => {
    const t = await createTenant();
    await history(t, ["passed", "failed", "passed", "failed", "passed"]);
    const { item } = await subject(t);
    expect(item).toMatchObject({ flakiness_score: 1, is_quarantined: false, quarantine_source: null });
    expect(await events(t, "testcase.flaky.v1")).toHaveLength(1);
    expect(await events(t, "testcase.quarantined.v1")).toHaveLength(0);
  });

  it("recovers after the configured run of clean executions, and only new flakiness sends it back", async () => {
    const t = await createTenant();
    await settings(t, { auto_quarantine_enabled: true, quarantine_recovery_runs: 3 });
    await history(t, ["passed", "failed", "passed", "failed", "passed"]);
    expect((await subject(t)).item.is_quarantined).toBe(true);
    // Two clean executions after it began are not enough (the pass that came before does not count)…
    await history(t, ["passed", "passed"]);
    expect((await subject(t)).item.is_quarantined).toBe(true);
    // …a pass on retry is not clean and starts the count again…
    await history(t, ["flaky", "passed", "passed"]);
    expect((await subject(t)).item.is_quarantined).toBe(true);
    // …the third consecutive clean one ends it.
    await history(t, ["passed"]);
    const { item, summary } = await subject(t);
    expect(item).toMatchObject({ is_quarantined: false, quarantine_source: null });
    // The old flips are still in the window, so the score is still high: that alone does not re-quarantine.
    expect(item.flakiness_score).toBeGreaterThanOrEqual(0.3);
    expect(summary.quarantined_tests).toBe(0);
    const moves = await events(t, "testcase.quarantined.v1");
    expect(moves.map((e) => [e.source, e.test_case.is_quarantined])).toEqual([
      ["auto", true],
      ["auto", false],
    ]);
    expect(moves[1].reason).toBe("recovered: 3 consecutive clean executions");
    await history(t, ["passed"]);
    expect((await subject(t)).item.is_quarantined).toBe(false);
    // A new failure among passes is new flakiness: back into quarantine.
    await history(t, ["failed"]);
    expect((await subject(t)).item).toMatchObject({ is_quarantined: true, quarantine_source: "auto" });
    expect(await events(t, "testcase.quarantined.v1")).toHaveLength(3);
  });

  it("recovers by the cron after the configured days without a flaky execution, for a test that stopped running", async () => {
    const t = await createTenant();
    await settings(t, { auto_quarantine_enabled: true, quarantine_recovery_days: 3 });
    await history(t, ["passed", "failed", "passed", "failed", "passed"]);
    const { item } = await subject(t);
    expect(item.is_quarantined).toBe(true);
    // Two days on: not yet.
    await housekeeping(new Date(Date.now() + 2 * DAY_MS));
    expect((await subject(t)).item.is_quarantined).toBe(true);
    await housekeeping(new Date(Date.now() + 3 * DAY_MS + 60_000));
    expect((await subject(t)).item).toMatchObject({ is_quarantined: false });
    const moves = await events(t, "testcase.quarantined.v1");
    expect(moves.at(-1)).toMatchObject({ source: "auto", reason: "recovered: no flaky execution for 3 days", test_case: { is_quarantined: false } });
  });

  it("never lifts a quarantine a person set", async () => {
    const t = await createTenant();
    await settings(t, { auto_quarantine_enabled: true, quarantine_recovery_runs: 2, quarantine_recovery_days: 1 });
    await history(t, ["passed"]);
    const id = (await subject(t)).item.test_case_id;
    expect((await call(`/api/v1/testcases/${id}`, { method: "PATCH", key: t.key, body: { is_quarantined: true, quarantine_reason: "known bug" } })).status).toBe(200);
    await history(t, ["passed", "passed", "passed", "passed", "passed", "passed"]);
    await housekeeping(new Date(Date.now() + 5 * DAY_MS));
    expect((await subject(t)).item).toMatchObject({ is_quarantined: true, quarantine_source: "manual", quarantine_reason: "known bug" });
  });
});

describe("the run's verdict", () => {
  async function runWith(t: Tenant, results: { title: string; status: Outcome }[]) {
    const run = await call("/api/v1/testruns", { method: "POST", key: t.key, body: { project_id: t.project.id } });
    const res = await call(`/api/v1/testruns/${run.body.id}/results`, {
      method: "POST",
      key: t.key,
      body: { results: results.map((r) => ({ ...r, duration: 1 })) },
    });
    expect(res.status, res.text).toBe(201);
    return { id: run.body.id as string, cases: Object.fromEntries(res.body.results.map((r: any) => [r.full_title, r.test_case_id])) };
  }

  it("ignores failures of quarantined tests, whatever the client reported, and says so", async () => {
    const t = await createTenant();
    const first = await runWith(t, [{ title: "wobbly", status: "passed" }, { title: "solid", status: "passed" }]);
    await call(`/api/v1/testcases/${first.cases.wobbly}`, { method: "PATCH", key: t.key, body: { is_quarantined: true } });

    const only = await runWith(t, [{ title: "wobbly", status: "failed" }, { title: "solid", status: "passed" }]);
    const completed = await call(`/api/v1/testruns/${only.id}`, { method: "PATCH", key: t.key, body: { status: "failed" } });
    expect(completed.status, completed.text).toBe(200);
    expect(completed.body).toMatchObject({ status: "passed", failed_tests: 1, quarantined_failures: 1 });
    expect(completed.body.status_reason).toMatch(/every failure \(1\) is of a quarantined test/);
    // The reporting surface reads the same verdict; no run.failed was announced.
    expect((await call(`/api/runs/${only.id}`, { key: t.key })).body.status).toBe("passed");
    const failedEvents = await env.DB.prepare("SELECT count(*) AS n FROM events WHERE subject_id = ? AND type = 'run.failed'").bind(only.id).first<{ n: number }>();
    expect(failedEvents!.n).toBe(0);

    const mixed = await runWith(t, [{ title: "wobbly", status: "failed" }, { title: "solid", status: "failed" }]);
    const failed = await call(`/api/v1/testruns/${mixed.id}`, { method: "PATCH", key: t.key, body: { status: "failed" } });
    expect(failed.body).toMatchObject({ status: "failed", failed_tests: 2, quarantined_failures: 1, status_reason: "1 of 2 failures are of quarantined tests and were ignored" });

    // Without quarantined tests nothing changes.
    const plain = await runWith(t, [{ title: "solid", status: "failed" }]);
    expect((await call(`/api/v1/testruns/${plain.id}`, { method: "PATCH", key: t.key, body: { status: "failed" } })).body).toMatchObject({
      status: "failed",
      quarantined_failures: 0,
      status_reason: null,
    });
  });
});

describe("flakiness settings and scores kept right", () => {
  it("validates the window and minimum sample, and rescoring follows a new window", async () => {
    const t = await createTenant();
    const bad = await call(`/api/v1/projects/${t.project.id}/settings`, { method: "PATCH", key: t.key, body: { flakiness_min_samples: 40 } });
    expect(bad.status).toBe(400);
    expect(bad.text).toMatch(/flakiness_min_samples/);
    await settings(t, { flakiness_window: 0 }, 400);
    await settings(t, { quarantine_recovery_days: 0 }, 400);
    expect((await call(`/api/v1/projects/${t.project.id}/settings`, { key: t.key })).body).toMatchObject({
      flakiness_window: 30,
      flakiness_min_samples: 5,
      quarantine_recovery_days: 7,
      quarantine_recovery_runs: 20,
    });

    // Alternating, then steady: over 30 executions it is flaky, over the last 5 it is not.
    await history(t, ["passed", "failed", "passed", "failed", "passed", "passed", "passed", "passed", "passed"]);
    expect((await subject(t)).item).toMatchObject({ total_runs: 9 });
    expect((await subject(t)).item.flakiness_score).toBeGreaterThan(0.4);
    const changed = await settings(t, { flakiness_window: 5, flakiness_min_samples: 3 });
    expect(changed).toMatchObject({ flakiness_window: 5, flakiness_min_samples: 3 });
    const { item, summary } = await subject(t);
    expect(item).toMatchObject({ total_runs: 5, flakiness_score: 0, confidence: 1 });
    expect(summary).toMatchObject({ flaky_tests: 0, average_score: 0 });
  });

  it("a new threshold recounts the summary's flaky tests", async () => {
    const t = await createTenant();
    await history(t, ["passed", "passed", "passed", "passed", "failed", "failed"]);
    expect((await subject(t)).item.flakiness_score).toBe(0.2);
    expect((await subject(t)).summary.flaky_tests).toBe(0);
    await settings(t, { flakiness_threshold: 0.2 });
    expect((await subject(t)).summary.flaky_tests).toBe(1);
    expect((await subject(t)).item.status).toBe("flaky");
  });

  it("scores again when a run is deleted, and when retention deletes one", async () => {
    const t = await createTenant();
    const runs = await history(t, ["failed", "passed", "passed", "passed", "passed", "passed"]);
    expect((await subject(t)).item).toMatchObject({ total_runs: 6, flip_rate: 0.2 });
    expect((await call(`/api/v1/testruns/${runs[0]}`, { method: "DELETE", key: t.key })).status).toBe(204);
    expect((await subject(t)).item).toMatchObject({ total_runs: 5, flip_rate: 0, flakiness_score: 0 });

    // Retention: the oldest remaining run ages past the project's retention and goes with the cron.
    await env.DB.prepare("UPDATE test_runs SET created_at = ? WHERE id = ?").bind(new Date(Date.now() - 100 * DAY_MS).toISOString(), runs[1]).run();
    await housekeeping(new Date());
    expect((await call(`/api/v1/testruns/${runs[1]}`, { key: t.key })).status).toBe(404);
    expect((await subject(t)).item).toMatchObject({ total_runs: 4, flakiness_score: null, status: "insufficient_data" });
    expect((await subject(t)).summary).toMatchObject({ flaky_tests: 0, average_score: null });
  });

  it("scores a run again once it completes as an outage", async () => {
    const t = await createTenant();
    await history(t, ["passed", "passed", "passed", "passed", "passed"]);
    const run = await call("/api/v1/testruns", { method: "POST", key: t.key, body: { project_id: t.project.id } });
    const post = (results: { title: string; status: Outcome }[]) =>
      call(`/api/v1/testruns/${run.body.id}/results`, { method: "POST", key: t.key, body: { results: results.map((r) => ({ ...r, file_path: "a.spec.ts", duration: 1 })) } });
    // The subject passes first, in what then looks like a healthy run: it counts…
    await post([{ title: "subject", status: "passed" }]);
    expect((await subject(t)).item.total_runs).toBe(6);
    // …then nine other tests fail: the run is an outage, and once it completes the subject's
    // execution there no longer counts.
    await post(Array.from({ length: 9 }, (_, i) => ({ title: `down ${i}`, status: "failed" as const })));
    await call(`/api/v1/testruns/${run.body.id}`, { method: "PATCH", key: t.key, body: { status: "failed" } });
    expect((await subject(t)).item.total_runs).toBe(5);
    // A run that completes with a failure but is no outage is not scored again: its results
    // writes did that already (re-scoring it was the costliest part of completing a big run).
    const healthy = await call("/api/v1/testruns", { method: "POST", key: t.key, body: { project_id: t.project.id } });
    const some = [{ title: "subject", status: "failed" as const }, ...Array.from({ length: 9 }, (_, i) => ({ title: `fine ${i}`, status: "passed" as const }))];
    await call(`/api/v1/testruns/${healthy.body.id}/results`, { method: "POST", key: t.key, body: { results: some.map((r) => ({ ...r, file_path: "a.spec.ts", duration: 1 })) } });
    const updatedAt = async () =>
      (await env.DB.prepare("SELECT max(flakiness_updated_at) AS at FROM test_cases WHERE project_id = ?").bind(t.project.id).first<{ at: string }>())!.at;
    const scoredAt = await updatedAt();
    await new Promise((r) => setTimeout(r, 5));
    await call(`/api/v1/testruns/${healthy.body.id}`, { method: "PATCH", key: t.key, body: { status: "failed" } });
    expect(await updatedAt()).toBe(scoredAt);
  });

  it("scores the results of a report ingested in the background", { timeout: 90_000 }, async () => {
    const t = await createTenant();
    const report = junitReport(6_000);
    const accepted = await call(`/api/v1/results/ingest?project_id=${t.project.id}`, {
      method: "POST",
      key: t.key,
      body: report.text,
      headers: { "content-type": "application/xml" },
    });
    expect(accepted.status, accepted.text.slice(0, 300)).toBe(202);
    // Scored once the ingest is done, from the queue: the flakiness list's summary counts them.
    const deadline = Date.now() + 60_000;
    let body: any;
    for (;;) {
      const ingest = await call(`/api/v1/ingests/${accepted.body.id}`, { key: t.key });
      const list = await call(`/api/v1/projects/${t.project.id}/flakiness?include_insufficient=true&limit=1`, { key: t.key });
      body = { ingest: ingest.body.status, total: list.body.pagination.total, first: list.body.data[0] };
      if (body.ingest === "done" && body.first?.total_runs === 1) break;
      if (Date.now() > deadline) break;
      await new Promise((r) => setTimeout(r, 250));
    }
    expect(body).toMatchObject({ ingest: "done", total: 6_000, first: { total_runs: 1, flakiness_score: null, status: "insufficient_data" } });
    const unscored = await env.DB.prepare("SELECT count(*) AS n FROM test_cases WHERE project_id = ? AND (flakiness_stale IS NOT NULL OR flakiness_updated_at IS NULL)")
      .bind(t.project.id)
      .first<{ n: number }>();
    // Skipped executions do not count, but their test cases are scored (with no runs) all the same.
    expect(unscored!.n).toBe(0);
  });
});

describe("the cost of reading the flakiness list", () => {
  /** D1's rows read for a request, from the Server-Timing header D1_METRICS=on adds. */
  function rowsRead(res: { headers: Headers }): { rowsRead: number; unmetered: number } {
    const timing = res.headers.get("server-timing") ?? "";
    const match = /rows_read=(\d+).*unmetered=(\d+)/.exec(timing);
    expect(match, timing).not.toBeNull();
    return { rowsRead: Number(match![1]), unmetered: Number(match![2]) };
  }

  it("follows the page, not the number of test cases or the history behind them", { timeout: 60_000 }, async () => {
    const t = await createTenant();
    // 2,000 test cases, each with 10 results: written straight into D1, as the bench does at scale.
    const now = Date.now();
    await env.DB.prepare(
      `WITH RECURSIVE n(value) AS (SELECT 1 UNION ALL SELECT value + 1 FROM n WHERE value < 2000)
       INSERT INTO test_cases (id, organization_id, project_id, identity_key, title, full_title, flakiness_score, total_runs, flaky_runs, created_at, updated_at)
       SELECT 'tc_' || printf('%026d', value), ?1, ?2, 'k:' || value, 't' || value, 't' || value, (value % 100) / 100.0, 10, value % 10, ?3, ?3 FROM n`,
    )
      .bind(t.organization.id, t.project.id, new Date(now).toISOString())
      .run();
    await env.DB.prepare(
      `UPDATE project_settings SET (scored_tests, score_sum, flaky_tests, quarantined_tests) = (
        SELECT count(flakiness_score), sum(CAST(round(flakiness_score * 10000) AS INTEGER)), sum(flakiness_score >= 0.3), 0 FROM test_cases WHERE project_id = ?1)
       WHERE project_id = ?1`,
    )
      .bind(t.project.id)
      .run();
    const page = 50;
    const res = await call(`/api/v1/projects/${t.project.id}/flakiness?limit=${page}`, { key: t.key });
    expect(res.status, res.text).toBe(200);
    expect(res.body.data).toHaveLength(page);
    expect(res.body.pagination.total).toBe(2000);
    expect(res.body.data[0].flakiness_score).toBe(0.99);
    expect(res.body.summary.flaky_tests).toBe(1400);
    const cost = rowsRead(res);
    // The page's rows and a handful of single rows (the settings row with the summary).
    expect(cost.rowsRead).toBeLessThanOrEqual(3 * page);
    expect(cost.rowsRead).toBeGreaterThanOrEqual(page);
    const reporting = await call(`/api/flakiness?projectId=${t.project.id}`, { key: t.key });
    expect(reporting.status).toBe(200);
    expect(rowsRead(reporting).rowsRead).toBeLessThanOrEqual(3 * reporting.body.data.length + 10);
  });
});

describe("the cost of reading a run's results", () => {
  it("reads the page, not the run: 1,000 results, a page of 50", async () => {
    const t = await createTenant();
    const run = await call("/api/v1/testruns", { method: "POST", key: t.key, body: { project_id: t.project.id } });
    const results = Array.from({ length: 1000 }, (_, i) => ({ title: `case ${i}`, status: i % 10 === 0 ? "failed" : "passed", duration: 1 }));
    expect((await call(`/api/v1/testruns/${run.body.id}/results`, { method: "POST", key: t.key, body: { results } })).status).toBe(201);
    const page = await call(`/api/v1/testruns/${run.body.id}/results?limit=50&offset=50`, { key: t.key });
    expect(page.status, page.text).toBe(200);
    expect(page.body.pagination).toMatchObject({ total: 1000, limit: 50, offset: 50, has_more: true });
    expect(page.body.data.map((r: any) => r.title)).toEqual(Array.from({ length: 50 }, (_, i) => `case ${i + 50}`));
    const timing = /rows_read=(\d+)/.exec(page.headers.get("server-timing") ?? "");
    // At least the page itself (so the figure is really measured), at most offset + 3 × the page.
    expect(Number(timing![1])).toBeGreaterThanOrEqual(50);
    expect(Number(timing![1])).toBeLessThanOrEqual(3 * 50 + 50);
    // A filtered page counts its matches, and still reads by the run's index.
    const failed = await call(`/api/v1/testruns/${run.body.id}/results?status=failed&limit=5`, { key: t.key });
    expect(failed.body.pagination.total).toBe(100);
    expect(failed.body.data.every((r: any) => r.status === "failed")).toBe(true);
  });
});

describe("the cost of reading a test case's history", () => {
  it("reads the page: its total is the test case's execution count, kept by writes and deletes", async () => {
    const t = await createTenant();
    const runs = await history(t, Array.from({ length: 30 }, (_, i) => (i % 7 === 0 ? "failed" : "passed")));
    const id = (await subject(t)).item.test_case_id;
    const read = () => call(`/api/v1/testcases/${id}/history`, { key: t.key });
    const first = await read();
    expect(first.status, first.text).toBe(200);
    expect(first.body.data).toHaveLength(20);
    expect(first.body.total).toBe(30);
    const rows = Number(/rows_read=(\d+)/.exec(first.headers.get("server-timing") ?? "")![1]);
    expect(rows).toBeGreaterThanOrEqual(20);
    expect(rows).toBeLessThanOrEqual(3 * 20);
    // Reported again in the same run: replaced, not counted twice.
    await call(`/api/v1/testruns/${runs.at(-1)}/results`, { method: "POST", key: t.key, body: { results: [{ title: "subject", file_path: "a.spec.ts", status: "passed", duration: 2, attempt: 2 }] } });
    expect((await read()).body.total).toBe(30);
    // A deleted run takes its execution with it.
    expect((await call(`/api/v1/testruns/${runs[0]}`, { method: "DELETE", key: t.key })).status).toBe(204);
    expect((await read()).body.total).toBe(29);
    const counted = await env.DB.prepare("SELECT count(*) AS n FROM results WHERE test_case_id = ?").bind(id).first<{ n: number }>();
    expect(counted!.n).toBe(29);
  });
});

describe("the refresh's query plans", () => {
  async function plan(statement: ReturnType<typeof executionsSql>): Promise<string[]> {
    const query = new SQLiteAsyncDialect().sqlToQuery(statement);
    const rows = await env.DB.prepare(`EXPLAIN QUERY PLAN ${query.sql}`).bind(...query.params).all<{ detail: string }>();
    return rows.results.map((r) => r.detail);
  }

  it("reads each test case's executions through its own index, never the project's results", async () => {
    const steps = await plan(executionsSql(JSON.stringify(["tc_a"]), "proj_a", 30));
    expect(steps).toContainEqual(expect.stringContaining("results_case_created_idx"));
    expect(steps.join("\n")).not.toMatch(/results_project|SCAN results|SCAN r\b/);
  });

  it("writes scores by looking each test case up by id, not by looping over the project", async () => {
    const steps = await plan(scoresUpdateSql(JSON.stringify([{ id: "tc_a" }]), "proj_a", new Date().toISOString()));
    expect(steps[0]).toMatch(/^SCAN j/);
    expect(steps[1]).toMatch(/SEARCH test_cases USING INDEX test_cases_id_unique/);
  });
});
