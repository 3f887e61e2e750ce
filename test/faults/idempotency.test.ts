import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { hashPassword } from "../../src/core/users/passwords";
import { newId } from "../../src/lib/ids";
import { ADMIN_TOKEN, call, type CallResult } from "../helpers/http";
import { createKey, createTenant, type Tenant } from "../helpers/factories";
import { junitReport } from "../helpers/reports";

/**
 * Idempotency-Key over every route whose operation publishes the header in /openapi.json: the
 * same key and request replays the first answer (status, body, Content-Type, Location) and writes
 * nothing more; another request under the key is 422; ten duplicates at once write once, each of
 * the others answered with the replay or 409 "still being processed".
 */

interface Request {
  path: string;
  body?: unknown;
  /** Sent as is when the body is a string (a report), else as JSON. */
  contentType?: string;
  /** Bearer key; the tenant's owner key when left out. */
  key?: string;
  headers?: Record<string, string>;
}

interface Case {
  /** The same request twice is idempotent; `other` is another request of the same route. */
  request: Request;
  other: Request;
  /** What the org-scoped row counts cannot see (a new organization, a rotated secret). */
  extra?: () => Promise<unknown>;
}

let seq = 0;
const unique = (label: string) => `${label}-${Date.now().toString(36)}-${++seq}`;

async function runOf(t: Tenant): Promise<string> {
  const res = await call("/api/v1/testruns", { method: "POST", key: t.key, body: { project_id: t.project.id } });
  expect(res.status, res.text).toBe(201);
  return res.body.id;
}

async function count(sql: string, ...binds: unknown[]): Promise<number> {
  return (await env.DB.prepare(sql).bind(...binds).first<{ n: number }>())!.n;
}

/** A user and a key that user made (POST /api/teams needs a key some user created). */
async function userKey(t: Tenant): Promise<string> {
  const email = `${unique("idem")}@idempotency.test`;
  const p = await hashPassword("correct horse battery staple");
  const at = new Date().toISOString();
  const userId = newId("usr");
  await env.DB.batch([
    env.DB.prepare(
      "INSERT INTO users (id, email, name, avatar_url, password_hash, password_salt, password_iterations, created_at, updated_at) VALUES (?, ?, NULL, NULL, ?, ?, ?, ?, ?)",
    ).bind(userId, email, p.hash, p.salt, p.iterations, at, at),
    env.DB.prepare("INSERT INTO memberships (id, organization_id, user_id, role, created_at, updated_at) VALUES (?, ?, ?, 'admin', ?, ?)").bind(
      newId("mem"),
      t.organization.id,
      userId,
      at,
      at,
    ),
  ]);
  const login = await call("/api/v1/auth/login", { method: "POST", body: { email, password: "correct horse battery staple" } });
  expect(login.status, login.text).toBe(200);
  const made = await call("/api/v1/api-keys", {
    method: "POST",
    headers: { Cookie: `greenlight_session=${login.body.session_token}` },
    body: { name: "user key", scopes: ["projects:read"] },
  });
  expect(made.status, made.text).toBe(201);
  return made.body.key;
}

/** Every idempotent route: how to make a request of it in a fresh tenant. */
const CASES: Record<string, (t: Tenant) => Promise<Case>> = {
  "POST /api/v1/admin/organizations": async () => {
    const name = unique("Idem org");
    const admin = { Authorization: `Bearer ${ADMIN_TOKEN}` };
    return {
      request: { path: "/api/v1/admin/organizations", headers: admin, body: { name } },
      other: { path: "/api/v1/admin/organizations", headers: admin, body: { name: `${name} other` } },
      extra: () => count("SELECT count(*) AS n FROM organizations WHERE name = ?", name),
    };
  },
  "POST /api/v1/projects": async () => ({
    request: { path: "/api/v1/projects", body: { name: "idem project" } },
    other: { path: "/api/v1/projects", body: { name: "other project" } },
  }),
  "POST /api/v1/api-keys": async () => ({
    request: { path: "/api/v1/api-keys", body: { name: "idem key", scopes: ["projects:read"] } },
    other: { path: "/api/v1/api-keys", body: { name: "other key", scopes: ["projects:read"] } },
  }),
  "POST /api/v1/api-keys/{id}/rotate": async (t) => {
    // Not the caller's own key: rotating it would end the caller's credential mid-test.
    const [target, other] = [await createKey(t, { name: "rotated" }), await createKey(t, { name: "not rotated" })];
    return {
      request: { path: `/api/v1/api-keys/${target.id}/rotate` },
      other: { path: `/api/v1/api-keys/${other.id}/rotate` },
      extra: async () => (await env.DB.prepare("SELECT key_hash FROM api_keys WHERE id = ?").bind(target.id).first<{ key_hash: string }>())!.key_hash,
    };
  },
  "POST /api/v1/organizations/{id}/invitations": async (t) => ({
    request: { path: `/api/v1/organizations/${t.organization.id}/invitations`, body: { email: `${unique("a")}@idempotency.test`, role: "member" } },
    other: { path: `/api/v1/organizations/${t.organization.id}/invitations`, body: { email: `${unique("b")}@idempotency.test`, role: "viewer" } },
  }),
  "POST /api/v1/ingests": async (t) => ({
    request: { path: "/api/v1/ingests", body: { project_id: t.project.id, ci_build_id: "idem" } },
    other: { path: "/api/v1/ingests", body: { project_id: t.project.id, ci_build_id: "other" } },
  }),
  "POST /api/v1/results/ingest": async (t) => ({
    request: { path: `/api/v1/results/ingest?project_id=${t.project.id}`, body: junitReport(3).text, contentType: "application/xml" },
    other: { path: `/api/v1/results/ingest?project_id=${t.project.id}`, body: junitReport(2).text, contentType: "application/xml" },
  }),
  "POST /api/v1/testruns": async (t) => ({
    request: { path: "/api/v1/testruns", body: { project_id: t.project.id, branch: "main" } },
    other: { path: "/api/v1/testruns", body: { project_id: t.project.id, branch: "other" } },
  }),
  "POST /api/v1/testruns/{id}/results": async (t) => {
    const run = await runOf(t);
    return {
      request: { path: `/api/v1/testruns/${run}/results`, body: { results: [{ title: "idem", status: "passed", duration: 5 }] } },
      other: { path: `/api/v1/testruns/${run}/results`, body: { results: [{ title: "idem", status: "passed", duration: 6 }] } },
    };
  },
  "POST /api/v1/releases": async (t) => ({
    request: { path: "/api/v1/releases", body: { project_id: t.project.id, name: "idem release" } },
    other: { path: "/api/v1/releases", body: { project_id: t.project.id, name: "other release" } },
  }),
  "POST /api/v1/builds": async (t) => ({
    // No build_number or commit: without the key, each request would register another build.
    request: { path: "/api/v1/builds", body: { project_id: t.project.id, name: "idem build" } },
    other: { path: "/api/v1/builds", body: { project_id: t.project.id, name: "other build" } },
  }),
  "POST /api/v1/testplans": async (t) => ({
    request: { path: "/api/v1/testplans", body: { project_id: t.project.id, name: "idem plan" } },
    other: { path: "/api/v1/testplans", body: { project_id: t.project.id, name: "other plan" } },
  }),
  // The three triggers queue runs and spend credits: a CI retry must not do either twice.
  "POST /api/v1/testplans/{id}/trigger": async (t) => {
    const plan = await call("/api/v1/testplans", { method: "POST", key: t.key, body: { project_id: t.project.id, name: "idem trigger plan" } });
    return {
      request: { path: `/api/v1/testplans/${plan.body.id}/trigger`, body: { labels: ["idem"] } },
      other: { path: `/api/v1/testplans/${plan.body.id}/trigger`, body: { labels: ["other"] } },
    };
  },
  "POST /api/v1/run": async (t) => {
    const plan = await call("/api/v1/testplans", { method: "POST", key: t.key, body: { project_id: t.project.id, name: "idem run plan" } });
    return {
      request: { path: "/api/v1/run", body: { testPlanId: plan.body.number, buildId: "idem" } },
      other: { path: "/api/v1/run", body: { testPlanId: plan.body.number, buildId: "other" } },
    };
  },
  "POST /api/v1/qa/external/testsuite/trigger": async (t) => {
    const build = await call("/api/v1/builds", { method: "POST", key: t.key, body: { project_id: t.project.id, name: "idem app" } });
    await call("/api/v1/testplans", { method: "POST", key: t.key, body: { project_id: t.project.id, name: "idem suite", tags: { area: ["checkout"] } } });
    const body = (device: string) => ({ app_id: build.body.id, tags: { include: { area: ["checkout"] } }, devices: [{ device_name: device, platform_version: "16.0" }] });
    return {
      request: { path: "/api/v1/qa/external/testsuite/trigger", body: body("iPhone 13") },
      other: { path: "/api/v1/qa/external/testsuite/trigger", body: body("Pixel 8") },
    };
  },
  "POST /api/v1/artifacts/uploads": async (t) => {
    const run = await call("/api/v1/testruns", { method: "POST", key: t.key, body: { project_id: t.project.id } });
    return {
      request: { path: "/api/v1/artifacts/uploads", body: { type: "report", run_id: run.body.id, file_name: "report.zip" } },
      other: { path: "/api/v1/artifacts/uploads", body: { type: "report", run_id: run.body.id, file_name: "other.zip" } },
    };
  },
  "POST /api/v1/projects/{id}/environments": async (t) => ({
    request: { path: `/api/v1/projects/${t.project.id}/environments`, body: { name: "staging" } },
    other: { path: `/api/v1/projects/${t.project.id}/environments`, body: { name: "production" } },
  }),
  "POST /api/v1/projects/{id}/contexts": async (t) => ({
    request: { path: `/api/v1/projects/${t.project.id}/contexts`, body: { name: "admin" } },
    other: { path: `/api/v1/projects/${t.project.id}/contexts`, body: { name: "guest" } },
  }),
  "POST /api/v1/projects/{id}/testcases": async (t) => ({
    request: { path: `/api/v1/projects/${t.project.id}/testcases`, body: { test_cases: [{ automation_id: "IDEM-1", title: "idem case" }] } },
    other: { path: `/api/v1/projects/${t.project.id}/testcases`, body: { test_cases: [{ automation_id: "IDEM-2", title: "other case" }] } },
  }),
  "POST /api/v1/webhooks": async () => ({
    request: { path: "/api/v1/webhooks", body: { url: "https://hooks.example.com/idem", events: ["run.failed"] } },
    other: { path: "/api/v1/webhooks", body: { url: "https://hooks.example.com/other", events: ["run.failed"] } },
  }),
  "POST /api/test-suites": async (t) => {
    const run = await runOf(t);
    return {
      request: { path: "/api/test-suites", body: { runId: run, projectId: t.project.id, title: "Auth", filePath: "tests/auth.spec.ts" } },
      other: { path: "/api/test-suites", body: { runId: run, projectId: t.project.id, title: "Cart", filePath: "tests/cart.spec.ts" } },
    };
  },
  "POST /api/projects": async (t) => ({
    request: { path: "/api/projects", body: { name: "idem reporting project", teamId: t.organization.id } },
    other: { path: "/api/projects", body: { name: "other reporting project", teamId: t.organization.id } },
  }),
  "POST /api/api-keys": async (t) => ({
    request: { path: "/api/api-keys", body: { projectId: t.project.id, name: "GitLab CI" } },
    other: { path: "/api/api-keys", body: { projectId: t.project.id, name: "GitHub CI" } },
  }),
  "POST /api/runs": async (t) => ({
    request: { path: "/api/runs", body: { projectId: t.project.id, status: "running", branch: "main" } },
    other: { path: "/api/runs", body: { projectId: t.project.id, status: "running", branch: "other" } },
  }),
  "POST /api/tests": async (t) => {
    const run = await runOf(t);
    return {
      request: { path: "/api/tests", body: { runId: run, projectId: t.project.id, title: "idem test", fullTitle: "Idem > idem test", filePath: "tests/idem.spec.ts", status: "passed", duration: 5 } },
      other: { path: "/api/tests", body: { runId: run, projectId: t.project.id, title: "idem test", fullTitle: "Idem > idem test", filePath: "tests/idem.spec.ts", status: "passed", duration: 6 } },
    };
  },
  "POST /api/teams": async () => {
    const name = unique("Idem team");
    const key = await userKey(await createTenant());
    return {
      request: { path: "/api/teams", key, body: { name } },
      other: { path: "/api/teams", key, body: { name: `${name} other` } },
      extra: () => count("SELECT count(*) AS n FROM organizations WHERE name = ?", name),
    };
  },
  "POST /api/team-members": async (t) => ({
    request: { path: "/api/team-members", body: { teamId: t.organization.id, email: `${unique("a")}@idempotency.test`, role: "member" } },
    other: { path: "/api/team-members", body: { teamId: t.organization.id, email: `${unique("b")}@idempotency.test`, role: "member" } },
  }),
  "POST /api/webhooks": async (t) => ({
    request: { path: "/api/webhooks", body: { projectId: t.project.id, url: "https://hooks.example.com/idem", events: ["run.failed"] } },
    other: { path: "/api/webhooks", body: { projectId: t.project.id, url: "https://hooks.example.com/other", events: ["run.failed"] } },
  }),
};

function send(t: Tenant, r: Request, idempotencyKey: string): Promise<CallResult> {
  const headers: Record<string, string> = { ...r.headers, "Idempotency-Key": idempotencyKey };
  if (r.contentType) headers["content-type"] = r.contentType;
  const key = r.headers?.Authorization ? undefined : (r.key ?? t.key);
  return call(r.path, { method: "POST", key, headers, body: r.body });
}

/** Tables with an organization_id column: every row a tenant's request can write, counted per table. */
let orgTables: string[] = [];
beforeAll(async () => {
  // D1 refuses pragma_table_info; the tables' own definitions name their columns.
  const tables = await env.DB.prepare("SELECT name, sql FROM sqlite_master WHERE type = 'table'").all<{ name: string; sql: string | null }>();
  orgTables = tables.results
    .filter((r) => /[`"\s(,]organization_id[`"\s]/.test(r.sql ?? ""))
    .map((r) => r.name)
    .filter((name) => !name.startsWith("_cf") && name !== "idempotency_records");
  expect(orgTables).toEqual(expect.arrayContaining(["projects", "test_runs", "results", "events", "builds", "webhooks", "api_keys"]));
});

async function snapshot(t: Tenant, c: Case): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = {};
  const counts = await env.DB.batch(orgTables.map((name) => env.DB.prepare(`SELECT count(*) AS n FROM "${name}" WHERE organization_id = ?`).bind(t.organization.id)));
  orgTables.forEach((name, i) => (out[name] = (counts[i]!.results[0] as { n: number }).n));
  if (c.extra) out.extra = await c.extra();
  return out;
}

function delta(before: Record<string, unknown>, after: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(after)) {
    if (typeof v === "number") {
      if (v !== before[k]) out[k] = v - (before[k] as number);
    } else if (v !== before[k]) out[k] = "changed";
  }
  return out;
}

const replayedHeaders = (r: CallResult) => ({ "content-type": r.headers.get("content-type"), location: r.headers.get("location") });

describe("the document names the idempotent routes", () => {
  it("publishes Idempotency-Key on every idempotent operation, and these tests cover each of them", async () => {
    const doc = (await call("/openapi.json")).body;
    const published: string[] = [];
    for (const [path, item] of Object.entries<Record<string, any>>(doc.paths)) {
      for (const [method, op] of Object.entries<any>(item)) {
        const param = (op.parameters ?? []).find((p: any) => p.in === "header" && p.name === "Idempotency-Key");
        if (!param) continue;
        expect(param.required ?? false, `${method} ${path}`).toBe(false);
        published.push(`${method.toUpperCase()} ${path}`);
      }
    }
    expect(published.sort()).toEqual(Object.keys(CASES).sort());
  });
});

describe.each(Object.keys(CASES))("%s", (route) => {
  it("replays the first answer for the same key and request, answers 422 to another request under it, and writes once", async () => {
    const t = await createTenant();
    const c = await CASES[route]!(t);
    const idem = unique("replay");
    const s0 = await snapshot(t, c);
    const first = await send(t, c.request, idem);
    expect(first.status, first.text).toBeGreaterThanOrEqual(200);
    expect(first.status, first.text).toBeLessThan(300);
    expect(first.headers.get("idempotent-replayed")).toBeNull();
    const s1 = await snapshot(t, c);
    // The request writes something these counts see, so a second write could not go unnoticed.
    expect(Object.keys(delta(s0, s1)).length, JSON.stringify(s1)).toBeGreaterThan(0);

    const again = await send(t, c.request, idem);
    expect(again.status).toBe(first.status);
    expect(again.text).toBe(first.text);
    expect(again.headers.get("idempotent-replayed")).toBe("true");
    expect(replayedHeaders(again)).toEqual(replayedHeaders(first));

    const other = await send(t, c.other, idem);
    expect(other.status, other.text).toBe(422);
    expect(other.text).toContain("Idempotency-Key");
    expect(other.headers.get("idempotent-replayed")).toBeNull();
    // Neither the replay nor the refused request wrote anything.
    expect(await snapshot(t, c)).toEqual(s1);
    // The key still replays the first request after the refusal.
    expect((await send(t, c.request, idem)).text).toBe(first.text);
  });

  it("writes once for ten identical requests at once: the others replay it or are told it is still being processed", async () => {
    // The writes of exactly one request, measured in a tenant of its own.
    const single = await createTenant();
    const singleCase = await CASES[route]!(single);
    const b0 = await snapshot(single, singleCase);
    const one = await send(single, singleCase.request, unique("single"));
    expect(one.status, one.text).toBeLessThan(300);
    const expected = delta(b0, await snapshot(single, singleCase));

    const t = await createTenant();
    const c = await CASES[route]!(t);
    const idem = unique("burst");
    const s0 = await snapshot(t, c);
    const answers = await Promise.all(Array.from({ length: 10 }, () => send(t, c.request, idem)));
    const done = answers.filter((a) => a.status !== 409);
    for (const a of answers.filter((a) => a.status === 409)) {
      expect(a.text).toMatch(/being processed/);
    }
    expect(done.length).toBeGreaterThanOrEqual(1);
    const [winner] = done;
    expect(winner!.status, winner!.text).toBeLessThan(300);
    for (const a of done) {
      expect(a.status).toBe(winner!.status);
      expect(a.text).toBe(winner!.text);
      expect(replayedHeaders(a)).toEqual(replayedHeaders(winner!));
    }
    const originals = done.filter((a) => a.headers.get("idempotent-replayed") === null);
    expect(originals).toHaveLength(1);
    const s1 = await snapshot(t, c);
    expect(delta(s0, s1)).toEqual(expected);
    // Once settled, every retry is the replay, and writes nothing.
    const late = await send(t, c.request, idem);
    expect(late.text).toBe(winner!.text);
    expect(late.headers.get("idempotent-replayed")).toBe("true");
    expect(replayedHeaders(late)).toEqual(replayedHeaders(originals[0]!));
    expect(await snapshot(t, c)).toEqual(s1);
  });
});
