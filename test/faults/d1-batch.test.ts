import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { call } from "../helpers/http";
import { createTenant, type Tenant } from "../helpers/factories";
import { junitReport } from "../helpers/reports";
import { receiver, waitFor, received } from "../helpers/receiver";

/**
 * A D1 batch that fails on one row (a constraint, here a trigger that aborts the transaction when
 * one given test arrives) commits nothing of itself: nothing of a failed synchronous submission is
 * visible, not even the run it opened or that run's testrun.created.v1; the retry commits
 * everything exactly once. A background ingest resumes after its failed chunk with exact counts.
 */

async function count(sql: string, ...binds: unknown[]): Promise<number> {
  return (await env.DB.prepare(sql).bind(...binds).first<{ n: number }>())!.n;
}

let faults = 0;
/** A real fault in D1: any insert of a result with this title into the project aborts its transaction. */
async function breakOn(t: Tenant, title: string): Promise<() => Promise<void>> {
  const name = `fault_${++faults}_${t.project.id}`;
  await env.DB.exec(
    `CREATE TRIGGER ${name} BEFORE INSERT ON results WHEN NEW.project_id = '${t.project.id}' AND NEW.title = '${title}' BEGIN SELECT RAISE(ABORT, 'injected fault'); END`,
  );
  return async () => void (await env.DB.exec(`DROP TRIGGER ${name}`));
}

/** What a project holds, row by row: results, test cases, suites, runs and each event type. */
async function holdings(projectId: string) {
  const events = await env.DB.prepare("SELECT type, count(*) AS n FROM events WHERE project_id = ? GROUP BY type ORDER BY type").bind(projectId).all<{ type: string; n: number }>();
  return {
    runs: await count("SELECT count(*) AS n FROM test_runs WHERE project_id = ?", projectId),
    results: await count("SELECT count(*) AS n FROM results WHERE project_id = ?", projectId),
    distinctResults: await count("SELECT count(DISTINCT run_id || '/' || test_case_id) AS n FROM results WHERE project_id = ?", projectId),
    testCases: await count("SELECT count(*) AS n FROM test_cases WHERE project_id = ?", projectId),
    executions: await count("SELECT coalesce(sum(executions), 0) AS n FROM test_cases WHERE project_id = ?", projectId),
    suites: await count("SELECT count(*) AS n FROM test_suites s JOIN test_runs r ON r.id = s.run_id WHERE r.project_id = ?", projectId),
    events: Object.fromEntries(events.results.map((e) => [e.type, e.n])),
  };
}

function ingest(t: Tenant, body: string, headers: Record<string, string> = {}, query = "") {
  return call(`/api/v1/results/ingest?project_id=${t.project.id}${query}`, { method: "POST", key: t.key, body, headers: { "content-type": "application/xml", ...headers } });
}

describe("a synchronous ingest whose batch fails on one row", () => {
  it("leaves nothing visible, not even its run or that run's event; the retry commits every result once", async () => {
    const t = await createTenant();
    const r = receiver("ok", "d1batch");
    const hook = await call("/api/v1/webhooks", { method: "POST", key: t.key, body: { url: r.url, events: ["testrun.created.v1"] } });
    expect(hook.status, hook.text).toBe(201);
    const report = junitReport(200);
    const repair = await breakOn(t, "handles case 150");
    const headers = { "Idempotency-Key": "ci-retry-1" };

    const failed = await ingest(t, report.text, headers);
    expect(failed.status, failed.text).toBe(500);
    expect(failed.body.error).toBe("internal_error");
    expect(failed.text).not.toContain("injected fault");
    expect(await holdings(t.project.id)).toEqual({ runs: 0, results: 0, distinctResults: 0, testCases: 0, executions: 0, suites: 0, events: {} });
    expect((await call(`/api/v1/testruns?project_id=${t.project.id}`, { key: t.key })).body.pagination.total).toBe(0);
    expect((await call(`/api/v1/projects/${t.project.id}/testcases`, { key: t.key })).body.pagination.total).toBe(0);

    await repair();
    // The failure freed the key: the CI's retry with it is ingested, not replayed.
    const retried = await ingest(t, report.text, headers);
    expect(retried.status, retried.text).toBe(201);
    expect(retried.headers.get("idempotent-replayed")).toBeNull();
    expect(retried.body).toMatchObject({ created_run: true, results: 200 });
    expect(retried.body.run).toMatchObject({
      total_tests: report.totals.tests,
      passed_tests: report.totals.passed,
      failed_tests: report.totals.failed,
      skipped_tests: report.totals.skipped,
      flaky_tests: report.totals.flaky,
    });
    const once = {
      runs: 1,
      results: 200,
      distinctResults: 200,
      testCases: 200,
      executions: 200,
      suites: 4,
      events: { "testcase.failed.v1": report.totals.failed, "testrun.created.v1": 1, "testrun.submitted.v1": 1 },
    };
    expect(await holdings(t.project.id)).toEqual(once);
    const replay = await ingest(t, report.text, headers);
    expect(replay.headers.get("idempotent-replayed")).toBe("true");
    expect(replay.body.run_id).toBe(retried.body.run_id);
    expect(await holdings(t.project.id)).toEqual(once);

    // Subscribers hear of the one run that exists, and of no other.
    const deliveries = async () => (await call(`/api/v1/webhooks/${hook.body.id}/deliveries`, { key: t.key })).body.data as any[];
    await waitFor("the delivery", async () => (await deliveries()).some((d) => d.status === "succeeded"));
    await new Promise((resolve) => setTimeout(resolve, 1500));
    expect(await deliveries()).toHaveLength(1);
    const got = await received(r.key);
    expect(got.map((g) => JSON.parse(g.body).run.run_id)).toEqual([retried.body.run_id]);
  });

  it("adds nothing to an existing run when a submission's batch fails; the retry adds each result once", async () => {
    const t = await createTenant();
    const run = await call("/api/v1/testruns", { method: "POST", key: t.key, body: { project_id: t.project.id } });
    const submit = (results: unknown[], key: string) =>
      call(`/api/v1/testruns/${run.body.id}/results`, { method: "POST", key: t.key, body: { results }, headers: { "Idempotency-Key": key } });
    expect((await submit([{ title: "first", status: "passed", duration: 1 }], "first")).status).toBe(201);
    const before = await holdings(t.project.id);
    const readRun = async () => (await call(`/api/v1/testruns/${run.body.id}`, { key: t.key })).body;
    const runBefore = await readRun();
    expect(runBefore.total_tests).toBe(1);

    const batch = Array.from({ length: 50 }, (_, i) => ({
      title: `batch ${i}`,
      file_path: `tests/batch-${i % 5}.spec.ts`,
      status: i % 10 === 0 ? "failed" : "passed",
      duration: i,
      error: i % 10 === 0 ? { message: `broke ${i}` } : undefined,
    }));
    const repair = await breakOn(t, "batch 37");
    const failed = await submit(batch, "batch-1");
    expect(failed.status, failed.text).toBe(500);
    expect(await holdings(t.project.id)).toEqual(before);
    const runAfterFailure = await readRun();
    expect(runAfterFailure).toMatchObject({ total_tests: 1, passed_tests: 1, failed_tests: 0, status: runBefore.status });
    expect((await call(`/api/v1/testruns/${run.body.id}/results`, { key: t.key })).body.pagination.total).toBe(1);

    await repair();
    const retried = await submit(batch, "batch-1");
    expect(retried.status, retried.text).toBe(201);
    expect(retried.headers.get("idempotent-replayed")).toBeNull();
    const after = await holdings(t.project.id);
    expect(after).toMatchObject({ runs: 1, results: 51, distinctResults: 51, testCases: 51, executions: 51 });
    expect(after.events).toEqual({
      "testrun.created.v1": 1,
      "testrun.submitted.v1": (before.events["testrun.submitted.v1"] ?? 0) + 1,
      "testcase.failed.v1": 5,
    });
    expect(await readRun()).toMatchObject({ total_tests: 51, passed_tests: 46, failed_tests: 5 });
    // A second retry is the replay: nothing more.
    expect((await submit(batch, "batch-1")).headers.get("idempotent-replayed")).toBe("true");
    expect(await holdings(t.project.id)).toEqual(after);
  });
});

describe("a background ingest whose chunk fails on one row", () => {
  it("keeps the chunks before it, commits nothing of the failed one, and after the retries holds every result, test case and event once", { timeout: 150_000 }, async () => {
    const t = await createTenant();
    // 10,600 results: chunks of 5,000, 5,000 and 600; the third fails until the fault is gone.
    const report = junitReport(10_600);
    const repair = await breakOn(t, "handles case 10500");
    const res = await ingest(t, report.text);
    expect(res.status, res.text.slice(0, 300)).toBe(202);
    const id = res.body.id;
    const runId = res.body.run_id;

    // Two attempts at the third chunk fail (the ingest says which attempt was interrupted).
    const until = Date.now() + 90_000;
    const interrupted = new Set<number>();
    let row: any;
    for (;;) {
      row = (await call(`/api/v1/ingests/${id}`, { key: t.key })).body;
      if (row.error?.details?.reason === "interrupted") {
        // The note names the attempt that was interrupted: one the ingest has made, not the next.
        expect(row.error.details.attempts, JSON.stringify(row)).toBeLessThanOrEqual(row.attempts);
        interrupted.add(row.error.details.attempts);
      }
      if (interrupted.size >= 2) break;
      expect(row.status, JSON.stringify(row)).not.toBe("failed");
      expect(Date.now() < until, JSON.stringify(row)).toBe(true);
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(row).toMatchObject({ status: "processing", results: 10_000, chunks: 2 });
    const midway = await holdings(t.project.id);
    expect(midway).toMatchObject({ runs: 1, results: 10_000, distinctResults: 10_000, testCases: 10_000 });
    expect(midway.events["testcase.failed.v1"]).toBe(500);
    expect(midway.events["testrun.submitted.v1"]).toBeUndefined();
    await repair();

    const done = await waitFor(
      "the ingest",
      async () => {
        const body = (await call(`/api/v1/ingests/${id}`, { key: t.key })).body;
        expect(body.status).not.toBe("failed");
        return body.status === "done" ? body : null;
      },
      90_000,
    );
    expect(done).toMatchObject({ status: "done", results: 10_600, chunks: 3, error: null, run_id: runId });
    expect(done.attempts).toBeGreaterThan(Math.max(...interrupted));
    const final = await holdings(t.project.id);
    expect(final).toMatchObject({ runs: 1, results: 10_600, distinctResults: 10_600, testCases: 10_600, executions: 10_600 });
    expect(await count("SELECT count(DISTINCT title) AS n FROM results WHERE run_id = ?", runId)).toBe(10_600);
    expect(final.events).toEqual({ "testcase.failed.v1": report.totals.failed, "testrun.created.v1": 1, "testrun.submitted.v1": 1 });
    const run = (await call(`/api/v1/testruns/${runId}`, { key: t.key })).body;
    expect(run).toMatchObject({
      total_tests: report.totals.tests,
      passed_tests: report.totals.passed,
      failed_tests: report.totals.failed,
      skipped_tests: report.totals.skipped,
      flaky_tests: report.totals.flaky,
    });
  });
});
