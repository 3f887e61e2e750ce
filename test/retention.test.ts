import { env } from "cloudflare:workers";
import { SQLiteAsyncDialect } from "drizzle-orm/sqlite-core";
import { describe, expect, it } from "vitest";
import { applyRetention, expiredRunsQuery, type RetentionBudget } from "../src/core/retention/retention";
import { createDb } from "../src/db/client";
import { call } from "./helpers/http";
import { createProject, createTenant, type Tenant } from "./helpers/factories";
import { junitReport } from "./helpers/reports";

const DAY_MS = 24 * 60 * 60 * 1000;
/** Output over 64 KB, so it is stored in R2 under the run's prefix. */
const BIG = "retained output line\n".repeat(4000);

function retention(budget?: RetentionBudget, now = new Date()) {
  return applyRetention(createDb(env.DB), env.ARTIFACTS, now, budget);
}

/** Runs until nothing is due, so runs another test of this file aged cannot skew the counts. */
async function drain(): Promise<void> {
  while ((await retention({ runs: 500 })).more);
}

async function newRun(t: Tenant, projectId = t.project.id, body: Record<string, unknown> = {}) {
  const res = await call("/api/v1/testruns", { method: "POST", key: t.key, body: { project_id: projectId, ...body } });
  expect(res.status, res.text).toBe(201);
  return res.body as { id: string; project_id: string };
}

/** A run with one result whose stdout lives in R2, and one kept inline, under a suite. */
async function runWithResults(t: Tenant, projectId = t.project.id, body: Record<string, unknown> = {}) {
  const run = await newRun(t, projectId, body);
  const res = await call(`/api/v1/testruns/${run.id}/results`, {
    method: "POST",
    key: t.key,
    body: {
      results: [
        { title: "big", full_title: "Checkout > big", file_path: "tests/a.spec.ts", status: "failed", duration: 5, stdout: BIG },
        { title: "small", full_title: "Checkout > small", file_path: "tests/a.spec.ts", status: "passed", duration: 5, stdout: "ok" },
      ],
    },
  });
  expect(res.status, res.text).toBe(201);
  return { ...run, resultIds: (res.body.results as { id: string }[]).map((r) => r.id) };
}

async function setRetention(t: Tenant, projectId: string, days: number) {
  const res = await call(`/api/v1/projects/${projectId}/settings`, { method: "PATCH", key: t.key, body: { data_retention_days: days } });
  expect(res.status, res.text).toBe(200);
  expect(res.body.data_retention_days).toBe(days);
}

/** Makes a run `days` (and an hour) old: the only way to let time pass for D1 rows. */
async function age(runId: string, days: number) {
  const createdAt = new Date(Date.now() - days * DAY_MS - 60 * 60 * 1000).toISOString();
  await env.DB.prepare("UPDATE test_runs SET created_at = ? WHERE id = ?").bind(createdAt, runId).run();
}

async function count(table: string, where: string, ...binds: unknown[]): Promise<number> {
  return (await env.DB.prepare(`SELECT count(*) AS n FROM ${table} WHERE ${where}`).bind(...binds).first<{ n: number }>())!.n;
}

async function objects(prefix: string): Promise<number> {
  return (await env.ARTIFACTS.list({ prefix })).objects.length;
}

function runPrefix(run: { id: string; project_id: string }) {
  return `projects/${run.project_id}/runs/${run.id}/`;
}

async function status(t: Tenant, path: string): Promise<number> {
  return (await call(path, { key: t.key })).status;
}

/** Everything a run owns, for proving it is all still there. */
async function footprint(run: { id: string; project_id: string }) {
  return {
    run: await count("test_runs", "id = ?", run.id),
    results: await count("results", "run_id = ?", run.id),
    suites: await count("test_suites", "run_id = ?", run.id),
    objects: await objects(runPrefix(run)),
  };
}

const KEPT = { run: 1, results: 2, suites: 1, objects: 1 };
const GONE = { run: 0, results: 0, suites: 0, objects: 0 };

/** A chunked upload of a small JUnit report into `runId`, waited for until the consumer is done. */
async function finishedIngest(t: Tenant, runId: string): Promise<string> {
  const opened = await call("/api/v1/ingests", { method: "POST", key: t.key, body: { project_id: t.project.id, run_id: runId, content_type: "application/xml" } });
  expect(opened.status, opened.text).toBe(201);
  const id = opened.body.id as string;
  const part = await call(`/api/v1/ingests/${id}/parts/1`, { method: "PUT", key: t.key, body: junitReport(3).text, headers: { "content-type": "application/octet-stream" } });
  expect(part.status, part.text).toBe(200);
  expect((await call(`/api/v1/ingests/${id}/complete`, { method: "POST", key: t.key })).status).toBeLessThan(300);
  const until = Date.now() + 30_000;
  for (;;) {
    const res = await call(`/api/v1/ingests/${id}`, { key: t.key });
    if (res.body.status === "done") return id;
    if (Date.now() > until) throw new Error(`ingest ${id} still ${res.body.status}: ${res.text}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe("data retention", () => {
  it("deletes an expired run with results, suites, shard parts, stored output and finished ingests", { timeout: 60_000 }, async () => {
    await drain();
    const t = await createTenant();
    await setRetention(t, t.project.id, 30);
    const old = await runWithResults(t, t.project.id, { ci_build_id: "ci-1", shard_total: 2, shard_current: 1 });
    const young = await runWithResults(t);
    const ingestId = await finishedIngest(t, old.id);
    // The consumer deletes a source when done, but only best effort; one left behind must go too.
    const ingestPrefix = `projects/${t.project.id}/ingests/${ingestId}/`;
    await env.ARTIFACTS.put(`${ingestPrefix}parts/00001/left/00000`, "left behind");
    await age(old.id, 31);
    await age(young.id, 29);
    // The JUnit report added its own suite and three results.
    expect(await footprint(old)).toEqual({ ...KEPT, results: 5, suites: 2 });
    expect(await count("test_run_shards", "run_id = ?", old.id)).toBe(1);
    expect(await status(t, `/api/v1/ingests/${ingestId}`)).toBe(200);
    const eventsBefore = await count("events", "subject_id = ?", old.id);
    expect(eventsBefore).toBeGreaterThan(0);

    expect(await retention()).toEqual({ runsExpired: 1, more: false });

    expect(await status(t, `/api/v1/testruns/${old.id}`)).toBe(404);
    expect(await status(t, `/api/v1/testruns/${old.id}/suites`)).toBe(404);
    for (const id of old.resultIds) expect(await status(t, `/api/v1/results/${id}`)).toBe(404);
    expect(await footprint(old)).toEqual(GONE);
    expect(await count("test_run_shards", "run_id = ?", old.id)).toBe(0);
    expect(await status(t, `/api/v1/ingests/${ingestId}`)).toBe(404);
    expect(await count("ingest_parts", "ingest_id = ?", ingestId)).toBe(0);
    expect(await objects(ingestPrefix)).toBe(0);
    // The outbox keeps its own lifetime.
    expect(await count("events", "subject_id = ?", old.id)).toBe(eventsBefore);

    expect(await status(t, `/api/v1/testruns/${young.id}`)).toBe(200);
    expect(await footprint(young)).toEqual(KEPT);
    const detail = await call(`/api/v1/results/${young.resultIds[0]}`, { key: t.key });
    expect(detail.body.stdout).toBe(BIG);
  });

  it("applies each project's retention, 90 days without settings, and never touches what is not due", async () => {
    await drain();
    const a = await createTenant();
    const b = await createTenant();
    const longer = await createProject(a, "Kept a year");
    const unset = await createProject(a, "No settings row");
    await setRetention(a, a.project.id, 7);
    await setRetention(a, longer.id, 365);
    // A project whose settings row is missing (b keeps the 90 days every new project gets).
    await env.DB.prepare("DELETE FROM project_settings WHERE project_id = ?").bind(unset.id).run();

    const expiring = [await runWithResults(a), await runWithResults(a, unset.id)];
    const kept = [
      await runWithResults(a),
      await runWithResults(a, longer.id),
      await runWithResults(a, unset.id),
      await runWithResults(b),
      await runWithResults(b),
    ];
    await age(expiring[0]!.id, 8);
    await age(expiring[1]!.id, 91);
    await age(kept[0]!.id, 6);
    await age(kept[1]!.id, 100);
    await age(kept[2]!.id, 89);
    // The other organization's runs are as old as the expiring ones, but its project keeps 90 days.
    await age(kept[3]!.id, 8);
    await age(kept[4]!.id, 89);

    expect(await retention()).toEqual({ runsExpired: 2, more: false });
    for (const run of expiring) expect(await footprint(run)).toEqual(GONE);
    for (const run of kept) expect(await footprint(run)).toEqual(KEPT);
    for (const run of kept.slice(0, 3)) expect(await status(a, `/api/v1/testruns/${run.id}`)).toBe(200);
    for (const run of kept.slice(3)) expect(await status(b, `/api/v1/testruns/${run.id}`)).toBe(200);

    // Nothing due: a second call changes nothing anywhere.
    const before = {
      runs: await count("test_runs", "1"),
      results: await count("results", "1"),
      suites: await count("test_suites", "1"),
      objects: await objects("projects/"),
    };
    expect(await retention()).toEqual({ runsExpired: 0, more: false });
    expect({
      runs: await count("test_runs", "1"),
      results: await count("results", "1"),
      suites: await count("test_suites", "1"),
      objects: await objects("projects/"),
    }).toEqual(before);
  });

  it("deletes at most the budget per call, oldest first, and says when more are due", async () => {
    await drain();
    const t = await createTenant();
    await setRetention(t, t.project.id, 10);
    const runs = [await runWithResults(t), await runWithResults(t), await runWithResults(t)];
    await age(runs[0]!.id, 40);
    await age(runs[1]!.id, 20);
    await age(runs[2]!.id, 30);

    expect(await retention({ runs: 2 })).toEqual({ runsExpired: 2, more: true });
    expect(await footprint(runs[0]!)).toEqual(GONE);
    expect(await footprint(runs[2]!)).toEqual(GONE);
    expect(await footprint(runs[1]!)).toEqual(KEPT);
    expect(await retention({ runs: 2 })).toEqual({ runsExpired: 1, more: false });
    expect(await footprint(runs[1]!)).toEqual(GONE);
    expect(await retention({ runs: 2 })).toEqual({ runsExpired: 0, more: false });
  });

  it("stops at the query budget, but always deletes at least one run", async () => {
    await drain();
    const t = await createTenant();
    await setRetention(t, t.project.id, 1);
    const runs = [await runWithResults(t), await runWithResults(t)];
    await age(runs[0]!.id, 3);
    await age(runs[1]!.id, 2);
    expect(await retention({ queries: 1 })).toEqual({ runsExpired: 1, more: true });
    expect(await footprint(runs[0]!)).toEqual(GONE);
    expect(await footprint(runs[1]!)).toEqual(KEPT);
    expect(await retention({ queries: 1 })).toEqual({ runsExpired: 1, more: false });
    expect(await footprint(runs[1]!)).toEqual(GONE);
  });

  it("finishes the delete of an expired run that was marked deleted but never purged", async () => {
    await drain();
    const t = await createTenant();
    await setRetention(t, t.project.id, 5);
    const run = await runWithResults(t);
    await age(run.id, 6);
    // A call cut short after its first statement: hidden, rows and objects still there.
    await env.DB.prepare("UPDATE test_runs SET deleted_at = ?, shard_key = NULL WHERE id = ?").bind(new Date().toISOString(), run.id).run();
    expect(await status(t, `/api/v1/testruns/${run.id}`)).toBe(404);
    expect(await footprint(run)).toEqual(KEPT);

    expect(await retention()).toEqual({ runsExpired: 1, more: false });
    expect(await footprint(run)).toEqual(GONE);
    expect(await retention()).toEqual({ runsExpired: 0, more: false });
  });

  it("finds expired runs through the (project_id, created_at) index, never scanning test_runs", async () => {
    const query = new SQLiteAsyncDialect().sqlToQuery(expiredRunsQuery(new Date(), 51));
    const plan = await env.DB.prepare(`EXPLAIN QUERY PLAN ${query.sql}`)
      .bind(...query.params)
      .all<{ detail: string }>();
    const details = plan.results.map((row) => row.detail);
    expect(details.some((d) => /SEARCH e USING (COVERING )?INDEX test_runs_project_created_idx \(project_id=\? AND created_at<\?\)/.test(d))).toBe(true);
    expect(details.some((d) => /SEARCH r USING INTEGER PRIMARY KEY/.test(d))).toBe(true);
    expect(details.filter((d) => /\bSCAN (r|e|test_runs)\b/.test(d))).toEqual([]);
  });
});
