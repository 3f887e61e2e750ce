import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { systemClock, type CoreContext } from "../src/core/context";
import { SCOPES } from "../src/core/keys/scopes";
import { historyQuery, recordResults, resultUpsert } from "../src/core/results/results";
import { SQLiteAsyncDialect } from "drizzle-orm/sqlite-core";
import { testCaseListWhere } from "../src/core/testcases/testcases";
import { testCases } from "../src/db/schema";
import { createDb } from "../src/db/client";
import { call } from "./helpers/http";
import { createTenant, type Tenant } from "./helpers/factories";

async function newRun(t: Tenant, body: Record<string, unknown> = {}) {
  const res = await call("/api/v1/testruns", { method: "POST", key: t.key, body: { project_id: t.project.id, ...body } });
  expect(res.status, res.text).toBe(201);
  return res.body;
}

async function submit(t: Tenant, runId: string, results: unknown[]) {
  const res = await call(`/api/v1/testruns/${runId}/results`, { method: "POST", key: t.key, body: { results } });
  expect(res.status, res.text).toBe(201);
  return res.body;
}

function ownerContext(t: Tenant, d1: D1Database = env.DB): CoreContext {
  return {
    db: createDb(d1),
    env,
    principal: { keyId: t.keyId, organizationId: t.organization.id, projectId: null, scopes: new Set(SCOPES) },
    clock: systemClock,
  };
}

/** The D1 binding, counting every call that reaches the database (a batch is one call). */
function countingD1(d1: D1Database): { db: D1Database; calls: () => number } {
  let calls = 0;
  const real = new WeakMap<object, D1PreparedStatement>();
  const wrap = (stmt: D1PreparedStatement): D1PreparedStatement => {
    const proxy = new Proxy(stmt, {
      get(target, prop) {
        if (prop === "bind") return (...args: unknown[]) => wrap(target.bind(...args));
        if (prop === "first" || prop === "all" || prop === "run" || prop === "raw") calls++;
        const value = Reflect.get(target, prop, target);
        return typeof value === "function" ? value.bind(target) : value;
      },
    });
    real.set(proxy, stmt);
    return proxy;
  };
  const db = new Proxy(d1, {
    get(target, prop) {
      if (prop === "prepare") return (query: string) => wrap(target.prepare(query));
      if (prop === "batch") {
        return (statements: D1PreparedStatement[]) => {
          calls++;
          return target.batch(statements.map((s) => real.get(s) ?? s));
        };
      }
      const value = Reflect.get(target, prop, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
  return { db, calls: () => calls };
}

describe("test cases", () => {
  it("are created on first report and upserted by automation id for sync", async () => {
    const t = await createTenant();
    const synced = await call(`/api/v1/projects/${t.project.id}/testcases`, {
      method: "POST",
      key: t.key,
      body: {
        test_cases: [
          { automation_id: "AUTH-1", title: "logs in", file_path: "tests/auth.spec.ts", tags: ["@smoke"] },
          { automation_id: "AUTH-2", title: "logs out", file_path: "tests/auth.spec.ts" },
        ],
      },
    });
    expect(synced.status, synced.text).toBe(201);
    expect(synced.body).toMatchObject({ created: 2, updated: 0 });
    const again = await call(`/api/v1/projects/${t.project.id}/testcases`, {
      method: "POST",
      key: t.key,
      body: { test_cases: [{ automation_id: "AUTH-1", title: "logs in (renamed)", tags: ["@smoke", "@auth"] }] },
    });
    expect(again.body).toMatchObject({ created: 0, updated: 1 });
    expect(again.body.data[0]).toMatchObject({ id: synced.body.data[0].id, title: "logs in (renamed)", file_path: "tests/auth.spec.ts", tags: ["@smoke", "@auth"] });

    // A report carrying the automation id reaches the synced case; one without creates its own.
    const run = await newRun(t);
    const stored = await submit(t, run.id, [
      { automation_id: "AUTH-2", title: "logs out", status: "passed", duration: 5 },
      { title: "renders", file_path: "tests/home.spec.ts", status: "failed", duration: 5, tags: ["@slow"] },
    ]);
    expect(stored.results[0].test_case_id).toBe(synced.body.data[1].id);
    const list = await call(`/api/v1/projects/${t.project.id}/testcases`, { key: t.key });
    expect(list.body.pagination.total).toBe(3);
    expect(list.body.data.map((c: any) => c.title)).toEqual(["logs in (renamed)", "logs out", "renders"]);
  });

  it("filter by tag, file and search, and read, update and 404 like any resource", async () => {
    const t = await createTenant();
    const run = await newRun(t);
    await submit(t, run.id, [
      { title: "a", file_path: "tests/a.spec.ts", status: "passed", duration: 1, tags: ["@smoke"] },
      { title: "b 100%", file_path: "tests/b.spec.ts", status: "passed", duration: 1, tags: ["@slow", "@smoke"] },
      { title: "c", file_path: "tests/b.spec.ts", status: "passed", duration: 1 },
    ]);
    const q = async (query: string) =>
      (await call(`/api/v1/projects/${t.project.id}/testcases?${query}`, { key: t.key })).body.data.map((c: any) => c.title);
    expect(await q("tag=%40smoke")).toEqual(["a", "b 100%"]);
    expect(await q("file=tests%2Fb.spec.ts")).toEqual(["b 100%", "c"]);
    expect(await q("search=100%25")).toEqual(["b 100%"]);
    expect(await q("tag=%40slow&file=tests%2Fb.spec.ts")).toEqual(["b 100%"]);
    const first = (await call(`/api/v1/projects/${t.project.id}/testcases?limit=1`, { key: t.key })).body.data[0];
    const patched = await call(`/api/v1/testcases/${first.id}`, { method: "PATCH", key: t.key, body: { description: "why", tags: ["@x"] } });
    expect(patched.body).toMatchObject({ description: "why", tags: ["@x"] });
    expect((await call(`/api/v1/testcases/${first.id}`, { key: t.key })).body.tags).toEqual(["@x"]);
    expect((await call(`/api/v1/projects/proj_00000000000000000000000000/testcases`, { key: t.key })).status).toBe(404);
  });

  it("have a history of the last 20 executions, newest first, with branch and run", async () => {
    const t = await createTenant();
    const runs: string[] = [];
    for (let i = 0; i < 22; i++) {
      const run = await newRun(t, { branch: i % 2 ? "main" : `feature/${i}` });
      runs.push(run.id);
      await submit(t, run.id, [{ title: "the test", status: i === 21 ? "failed" : "passed", duration: 100 + i }]);
    }
    const tc = (await call(`/api/v1/projects/${t.project.id}/testcases`, { key: t.key })).body.data[0];
    const history = await call(`/api/v1/testcases/${tc.id}/history`, { key: t.key });
    expect(history.status).toBe(200);
    expect(history.body.total).toBe(22);
    expect(history.body.data).toHaveLength(20);
    expect(history.body.data[0]).toMatchObject({ run_id: runs[21], status: "failed", duration: 121, branch: "main" });
    expect(history.body.data[1]).toMatchObject({ run_id: runs[20], branch: "feature/20" });
    expect(history.body.data.map((h: any) => h.run_id)).toEqual(runs.slice(2).reverse());
    // A deleted run leaves the history at once.
    await call(`/api/v1/testruns/${runs[21]}`, { method: "DELETE", key: t.key });
    const after = await call(`/api/v1/testcases/${tc.id}/history`, { key: t.key });
    expect(after.body.total).toBe(21);
    expect(after.body.data[0].run_id).toBe(runs[20]);
  });
});

describe("query plans and D1 round trips", () => {
  async function plan(query: { sql: string; params: unknown[] }): Promise<string[]> {
    const rows = await env.DB.prepare(`EXPLAIN QUERY PLAN ${query.sql}`).bind(...query.params).all<{ detail: string }>();
    return rows.results.map((r) => r.detail);
  }

  it("history reads results through an index, never a full scan", async () => {
    const t = await createTenant();
    const steps = await plan(historyQuery(ownerContext(t), "tc_x").toSQL());
    expect(steps.join("\n")).toMatch(/results USING INDEX results_case_created_idx/);
    expect(steps.filter((s) => /^SCAN results\b/.test(s))).toEqual([]);
  });

  it("test-case listing uses the project's index", async () => {
    const t = await createTenant();
    const ctx = ownerContext(t);
    for (const filter of [{}, { filePath: "a" }, { tag: "@x", search: "y" }]) {
      const where = testCaseListWhere(ctx, t.project.id, filter);
      const steps = await plan(ctx.db.select().from(testCases).where(where).toSQL());
      expect(steps.join("\n")).toMatch(/test_cases USING INDEX test_cases_(project_file|project_number|project_flakiness|project_quarantine|identity)_idx/);
      expect(steps.filter((s) => /^SCAN test_cases\b/.test(s))).toEqual([]);
    }
  });

  it("a results write finds each test case through the identity index, whatever the project's size", async () => {
    const t = await createTenant();
    const statement = new SQLiteAsyncDialect().sqlToQuery(
      resultUpsert({ id: "run_x", organizationId: t.organization.id, projectId: t.project.id }, "sub", "[]", new Date().toISOString()),
    );
    const steps = await plan(statement);
    expect(steps.join("\n")).toMatch(/SEARCH tc USING INDEX test_cases_identity_idx/);
    expect(steps.filter((s) => /^SCAN tc\b/.test(s))).toEqual([]);
  });

  it("records 1,000 results in a handful of D1 calls", async () => {
    const t = await createTenant();
    const run = await newRun(t);
    const counting = countingD1(env.DB);
    const inputs = Array.from({ length: 1000 }, (_, i) => ({
      title: `case ${i}`,
      fullTitle: `File ${i % 7} > Group ${i % 13} > case ${i}`,
      filePath: `tests/f${i % 7}.spec.ts`,
      status: (i % 9 === 0 ? "failed" : "passed") as "failed" | "passed",
      duration: i,
      tags: ["@a", "@b"],
      steps: [{ title: "s", category: "action" as const, status: "passed" as const, duration: 1 }],
      stdout: "ok\n".repeat(50),
    }));
    const outcome = await recordResults(ownerContext(t, counting.db), run.id, inputs);
    expect(outcome.stored).toHaveLength(1000);
    expect(outcome.run.derivedCounts).toMatchObject({ totalTests: 1000, failedTests: 112, passedTests: 888 });
    expect(counting.calls()).toBeLessThanOrEqual(6);
  });
});
