import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { systemClock, type CoreContext } from "../src/core/context";
import { SCOPES } from "../src/core/keys/scopes";
import { findContext, findEnvironment } from "../src/core/plans/environments";
import { findPlansByNumbers, getPlanRow, plansOfProjectNumber, storedCookies, visiblePlans } from "../src/core/plans/plans";
import { createDb } from "../src/db/client";
import { call } from "./helpers/http";
import { createKey, createProject, createTenant, type Tenant } from "./helpers/factories";

function coreContextOf(t: Tenant, projectId: string | null = null): CoreContext {
  return {
    db: createDb(env.DB),
    env,
    principal: { keyId: t.keyId, organizationId: t.organization.id, projectId, scopes: new Set(SCOPES) },
    clock: systemClock,
  };
}

async function testCasesOf(t: Tenant, projectId: string, ...titles: string[]): Promise<string[]> {
  const res = await call(`/api/v1/projects/${projectId}/testcases`, {
    method: "POST",
    key: t.key,
    body: { test_cases: titles.map((title) => ({ automation_id: `${projectId}-${title}`, title })) },
  });
  expect(res.status, res.text).toBe(201);
  return res.body.data.map((c: { id: string }) => c.id);
}

async function createPlan(t: Tenant, body: Record<string, unknown> = {}, key = t.key) {
  const res = await call("/api/v1/testplans", { method: "POST", key, body: { project_id: t.project.id, name: "Smoke", ...body } });
  expect(res.status, res.text).toBe(201);
  return res.body;
}

async function planCount(t: Tenant): Promise<number> {
  const res = await call("/api/v1/testplans", { key: t.key });
  expect(res.status, res.text).toBe(200);
  return res.body.pagination.total;
}

describe("test plans", () => {
  it("creates a plan with every field and reads it back, lists, changes and deletes it", async () => {
    const t = await createTenant();
    const [login, logout] = await testCasesOf(t, t.project.id, "login", "logout");
    const created = await createPlan(t, {
      name: "Checkout",
      description: "The paths that earn money",
      default_test_type: "deepTest",
      tags: { platform: ["web", "ios"], priority: ["p0"] },
      test_case_ids: [login, logout],
      file_patterns: ["tests/checkout/**/*.spec.ts"],
      cookies: [{ name: "session", value: "v-1", domain: "staging.example.com", path: "/" }],
    });
    expect(created.id).toMatch(/^plan_/);
    expect(Number.isInteger(created.number)).toBe(true);
    const expected = {
      id: created.id,
      number: created.number,
      project_id: t.project.id,
      name: "Checkout",
      description: "The paths that earn money",
      default_test_type: "deepTest",
      tags: { platform: ["web", "ios"], priority: ["p0"] },
      test_case_ids: [login, logout],
      file_patterns: ["tests/checkout/**/*.spec.ts"],
      cookies: [{ name: "session", domain: "staging.example.com", path: "/" }],
      has_cookies: true,
      created_at: created.created_at,
      updated_at: created.updated_at,
    };
    expect(created).toEqual(expected);
    const read = await call(`/api/v1/testplans/${created.id}`, { key: t.key });
    expect(read.status, read.text).toBe(200);
    expect(read.body).toEqual(expected);

    // A second plan, with the defaults; the list is in number order and filters by project.
    const other = await createProject(t, "Mobile");
    const second = await call("/api/v1/testplans", { method: "POST", key: t.key, body: { project_id: other.id, name: "Nightly" } });
    expect(second.status, second.text).toBe(201);
    expect(second.body).toMatchObject({ default_test_type: "quickTest", tags: {}, test_case_ids: [], file_patterns: [], cookies: [], has_cookies: false, description: null });
    const all = await call("/api/v1/testplans", { key: t.key });
    expect(all.body.data.map((p: { id: string }) => p.id)).toEqual([created.id, second.body.id]);
    expect(all.body.pagination).toEqual({ total: 2, limit: 20, offset: 0, has_more: false });
    const mine = await call(`/api/v1/testplans?project_id=${t.project.id}&limit=1`, { key: t.key });
    expect(mine.body.data).toEqual([expected]);
    expect(mine.body.pagination).toEqual({ total: 1, limit: 1, offset: 0, has_more: false });

    // PATCH changes only what it names.
    const patched = await call(`/api/v1/testplans/${created.id}`, {
      method: "PATCH",
      key: t.key,
      body: { name: "Checkout v2", test_case_ids: [logout], default_test_type: "quickTest" },
    });
    expect(patched.status, patched.text).toBe(200);
    expect(patched.body).toMatchObject({
      name: "Checkout v2",
      test_case_ids: [logout],
      default_test_type: "quickTest",
      description: "The paths that earn money",
      tags: expected.tags,
      file_patterns: expected.file_patterns,
      has_cookies: true,
    });
    const reread = await call(`/api/v1/testplans/${created.id}`, { key: t.key });
    expect(reread.body).toEqual(patched.body);

    // cookies: null clears them.
    const cleared = await call(`/api/v1/testplans/${created.id}`, { method: "PATCH", key: t.key, body: { cookies: null, description: null } });
    expect(cleared.status, cleared.text).toBe(200);
    expect(cleared.body).toMatchObject({ cookies: [], has_cookies: false, description: null, name: "Checkout v2" });
    const row = await env.DB.prepare("SELECT cookies_sealed FROM test_plans WHERE id = ?").bind(created.id).first<{ cookies_sealed: string | null }>();
    expect(row!.cookies_sealed).toBeNull();

    const deleted = await call(`/api/v1/testplans/${created.id}`, { method: "DELETE", key: t.key });
    expect(deleted.status, deleted.text).toBe(204);
    expect((await call(`/api/v1/testplans/${created.id}`, { key: t.key })).status).toBe(404);
    expect((await call(`/api/v1/testplans/${created.id}`, { method: "DELETE", key: t.key })).status).toBe(404);
    expect(await planCount(t)).toBe(1);
  });

  it("never returns cookie values, stores them encrypted, and gives them back to the core in clear", async () => {
    const t = await createTenant();
    const secret = `cookie-value-${crypto.randomUUID()}`;
    const later = `other-value-${crypto.randomUUID()}`;
    const bodies: string[] = [];
    const created = await call("/api/v1/testplans", {
      method: "POST",
      key: t.key,
      body: { project_id: t.project.id, name: "With cookies", cookies: [{ name: "session", value: secret, domain: "app.example.com" }] },
    });
    expect(created.status, created.text).toBe(201);
    bodies.push(created.text);
    expect(created.body.cookies).toEqual([{ name: "session", domain: "app.example.com", path: null }]);
    bodies.push((await call(`/api/v1/testplans/${created.body.id}`, { key: t.key })).text);
    bodies.push((await call("/api/v1/testplans", { key: t.key })).text);
    const patched = await call(`/api/v1/testplans/${created.body.id}`, {
      method: "PATCH",
      key: t.key,
      body: { cookies: [{ name: "session", value: secret, domain: "app.example.com" }, { name: "csrf", value: later, domain: "app.example.com", path: "/api" }] },
    });
    expect(patched.status, patched.text).toBe(200);
    bodies.push(patched.text);
    bodies.push((await call(`/api/v1/testplans/${created.body.id}`, { key: t.key })).text);
    for (const body of bodies) {
      expect(body).not.toContain(secret);
      expect(body).not.toContain(later);
    }
    expect(patched.body.cookies).toEqual([
      { name: "session", domain: "app.example.com", path: null },
      { name: "csrf", domain: "app.example.com", path: "/api" },
    ]);

    const row = await env.DB.prepare("SELECT cookies_sealed FROM test_plans WHERE id = ?").bind(created.body.id).first<{ cookies_sealed: string }>();
    expect(row!.cookies_sealed).toBeTruthy();
    expect(row!.cookies_sealed).not.toContain(secret);
    expect(row!.cookies_sealed).not.toContain(later);
    expect(row!.cookies_sealed).not.toContain("session");

    const ctx = coreContextOf(t);
    expect(await storedCookies(ctx, await getPlanRow(ctx, created.body.id))).toEqual([
      { name: "session", value: secret, domain: "app.example.com" },
      { name: "csrf", value: later, domain: "app.example.com", path: "/api" },
    ]);
  });

  const refused: [string, (t: Tenant, foreignCase: string, ownCase: string) => Record<string, unknown>, string][] = [
    ["an unknown default_test_type", () => ({ default_test_type: "fastTest" }), "default_test_type"],
    ["a test case of another project", (_t, foreign, own) => ({ test_case_ids: [own, foreign] }), "test_case_ids.1"],
    ["a test case id that does not exist", (_t, _f, own) => ({ test_case_ids: [own, "tc_missing", "tc_missing_too"] }), "test_case_ids.1"],
    ["51 tags", () => ({ tags: Object.fromEntries(Array.from({ length: 51 }, (_, i) => [`tag${i}`, ["x"]])) }), "tags"],
    ["a tag with 51 values", () => ({ tags: { platform: Array.from({ length: 51 }, (_, i) => `v${i}`) } }), "tags.platform"],
    ["a tag name of 101 characters", () => ({ tags: { ["n".repeat(101)]: ["x"] } }), `tags.${"n".repeat(101)}`],
    ["a tag value of 201 characters", () => ({ tags: { platform: ["v".repeat(201)] } }), "tags.platform.0"],
    ["a file pattern of 501 characters", () => ({ file_patterns: ["*".repeat(501)] }), "file_patterns.0"],
    ["51 cookies", () => ({ cookies: Array.from({ length: 51 }, (_, i) => ({ name: `c${i}`, value: "v", domain: "example.com" })) }), "cookies"],
    ["a cookie without a domain", () => ({ cookies: [{ name: "c", value: "v" }] }), "cookies.0.domain"],
    ["a cookie without a name", () => ({ cookies: [{ value: "v", domain: "example.com" }] }), "cookies.0.name"],
  ];
  for (const [what, body, field] of refused) {
    it(`refuses ${what} with 400, writing nothing`, async () => {
      const t = await createTenant();
      const other = await createProject(t, "Other");
      const [foreign] = await testCasesOf(t, other.id, "elsewhere");
      const [own] = await testCasesOf(t, t.project.id, "here");
      const res = await call("/api/v1/testplans", { method: "POST", key: t.key, body: { project_id: t.project.id, name: "Bad", ...body(t, foreign!, own!) } });
      expect(res.status, res.text).toBe(400);
      expect(res.body.error).toBe("invalid_request");
      expect(res.body.details.field).toBe(field);
      expect(await planCount(t)).toBe(0);
    });
  }

  it("names the first test case that is not the project's, and refuses bad changes without writing them", async () => {
    const t = await createTenant();
    const other = await createProject(t, "Other");
    const [foreign] = await testCasesOf(t, other.id, "elsewhere");
    const [own] = await testCasesOf(t, t.project.id, "here");
    const res = await call("/api/v1/testplans", { method: "POST", key: t.key, body: { project_id: t.project.id, name: "Bad", test_case_ids: [own, foreign] } });
    expect(res.status).toBe(400);
    expect(res.body.message).toContain(foreign);
    expect(res.body.details.test_case_id).toBe(foreign);

    const plan = await createPlan(t, { test_case_ids: [own] });
    for (const patch of [{ test_case_ids: [foreign] }, { default_test_type: "slowTest", name: "Renamed" }, { tags: Object.fromEntries(Array.from({ length: 51 }, (_, i) => [`t${i}`, []])) }]) {
      const refused = await call(`/api/v1/testplans/${plan.id}`, { method: "PATCH", key: t.key, body: patch });
      expect(refused.status, refused.text).toBe(400);
    }
    const read = await call(`/api/v1/testplans/${plan.id}`, { key: t.key });
    expect(read.body).toEqual(plan);
  });

  it("answers another tenant's plans and projects with 404, like missing ones, and leaves them alone", async () => {
    const a = await createTenant();
    const b = await createTenant();
    const theirs = await createPlan(b, { cookies: [{ name: "s", value: "theirs", domain: "b.example.com" }] });
    for (const id of [theirs.id, "plan_doesnotexist"]) {
      const got = await call(`/api/v1/testplans/${id}`, { key: a.key });
      expect(got.status, got.text).toBe(404);
      expect(got.body.error).toBe("not_found");
      expect((await call(`/api/v1/testplans/${id}`, { method: "PATCH", key: a.key, body: { name: "mine now" } })).status).toBe(404);
      expect((await call(`/api/v1/testplans/${id}`, { method: "DELETE", key: a.key })).status).toBe(404);
    }
    expect((await call(`/api/v1/testplans?project_id=${b.project.id}`, { key: a.key })).status).toBe(404);
    expect((await call("/api/v1/testplans", { method: "POST", key: a.key, body: { project_id: b.project.id, name: "x" } })).status).toBe(404);
    expect((await call("/api/v1/testplans", { method: "POST", key: a.key, body: { project_id: "proj_missing", name: "x" } })).status).toBe(404);
    expect(await planCount(a)).toBe(0);
    // A's test case ids cannot be attached to a plan through B's project either.
    const [aCase] = await testCasesOf(a, a.project.id, "a-case");
    const cross = await call("/api/v1/testplans", { method: "POST", key: b.key, body: { project_id: b.project.id, name: "x", test_case_ids: [aCase] } });
    expect(cross.status).toBe(400);
    const still = await call(`/api/v1/testplans/${theirs.id}`, { key: b.key });
    expect(still.body).toEqual(theirs);

    const ctxA = coreContextOf(a);
    expect(await findPlansByNumbers(ctxA, [theirs.number])).toEqual([]);
    expect(await plansOfProjectNumber(ctxA, b.project.number)).toBeNull();
    expect(await visiblePlans(ctxA)).toEqual([]);
    await expect(getPlanRow(ctxA, theirs.id)).rejects.toMatchObject({ status: 404 });
  });

  it("keeps a project-restricted key to its project's plans", async () => {
    const t = await createTenant();
    const other = await createProject(t, "Other");
    const mine = await createPlan(t, { name: "Mine" });
    const theirs = await createPlan(t, { project_id: other.id, name: "Theirs" });
    const restricted = await createKey(t, { scopes: ["plans:read", "projects:write"], projectId: t.project.id });

    const list = await call("/api/v1/testplans", { key: restricted.key });
    expect(list.status, list.text).toBe(200);
    expect(list.body.data.map((p: { id: string }) => p.id)).toEqual([mine.id]);
    expect(list.body.pagination.total).toBe(1);
    expect((await call(`/api/v1/testplans?project_id=${other.id}`, { key: restricted.key })).status).toBe(404);
    expect((await call(`/api/v1/testplans/${theirs.id}`, { key: restricted.key })).status).toBe(404);
    expect((await call(`/api/v1/testplans/${theirs.id}`, { method: "PATCH", key: restricted.key, body: { name: "x" } })).status).toBe(404);
    expect((await call(`/api/v1/testplans/${theirs.id}`, { method: "DELETE", key: restricted.key })).status).toBe(404);
    expect((await call("/api/v1/testplans", { method: "POST", key: restricted.key, body: { project_id: other.id, name: "x" } })).status).toBe(404);
    expect((await call(`/api/v1/testplans/${mine.id}`, { key: restricted.key })).status).toBe(200);
    expect((await call(`/api/v1/projects/${other.id}/environments`, { key: restricted.key })).status).toBe(404);

    // The core lookups the triggers use honour the restriction too.
    const ctx = coreContextOf(t, t.project.id);
    expect((await findPlansByNumbers(ctx, [mine.number, theirs.number])).map((p) => p.id)).toEqual([mine.id]);
    expect(await plansOfProjectNumber(ctx, other.number)).toBeNull();
    expect((await plansOfProjectNumber(ctx, t.project.number))!.map((p) => p.id)).toEqual([mine.id]);
    expect((await visiblePlans(ctx)).map((p) => p.id)).toEqual([mine.id]);
    const whole = coreContextOf(t);
    expect((await findPlansByNumbers(whole, [theirs.number, mine.number, 0])).map((p) => p.id)).toEqual([mine.id, theirs.id]);
    expect((await visiblePlans(whole, other.id)).map((p) => p.id)).toEqual([theirs.id]);
    const empty = await createProject(t, "Empty");
    expect(await plansOfProjectNumber(whole, empty.number)).toEqual([]);
  });

  it("reads with plans:read and writes only with projects:write", async () => {
    const t = await createTenant();
    const plan = await createPlan(t);
    const reader = await createKey(t, { scopes: ["plans:read"] });
    expect((await call(`/api/v1/testplans/${plan.id}`, { key: reader.key })).status).toBe(200);
    expect((await call("/api/v1/testplans", { key: reader.key })).status).toBe(200);
    const create = await call("/api/v1/testplans", { method: "POST", key: reader.key, body: { project_id: t.project.id, name: "x" } });
    expect(create.status).toBe(403);
    expect(create.body.error).toBe("forbidden");
    expect((await call(`/api/v1/testplans/${plan.id}`, { method: "PATCH", key: reader.key, body: { name: "x" } })).status).toBe(403);
    expect((await call(`/api/v1/testplans/${plan.id}`, { method: "DELETE", key: reader.key })).status).toBe(403);
    const writerOnly = await createKey(t, { scopes: ["projects:write"] });
    expect((await call(`/api/v1/testplans/${plan.id}`, { key: writerOnly.key })).status).toBe(403);
    expect(await planCount(t)).toBe(1);
  });
});

describe("environments and contexts", () => {
  it("creates and lists environments, refusing a duplicate name in the project with 409", async () => {
    const t = await createTenant();
    const path = `/api/v1/projects/${t.project.id}/environments`;
    const created = await call(path, {
      method: "POST",
      key: t.key,
      body: { name: "staging", base_url: "https://staging.example.com", variables: { API_URL: "https://api.staging.example.com" } },
    });
    expect(created.status, created.text).toBe(201);
    expect(created.body).toMatchObject({ project_id: t.project.id, name: "staging", base_url: "https://staging.example.com", variables: { API_URL: "https://api.staging.example.com" } });
    expect(created.body.id).toMatch(/^env_/);
    const bare = await call(path, { method: "POST", key: t.key, body: { name: "local" } });
    expect(bare.status, bare.text).toBe(201);
    expect(bare.body).toMatchObject({ base_url: null, variables: {} });

    const dup = await call(path, { method: "POST", key: t.key, body: { name: "staging", base_url: "https://other.example.com" } });
    expect(dup.status, dup.text).toBe(409);
    expect(dup.body).toMatchObject({ error: "conflict", details: { field: "name", reason: "duplicate" } });
    // The same name is free in another project.
    const other = await createProject(t, "Other");
    expect((await call(`/api/v1/projects/${other.id}/environments`, { method: "POST", key: t.key, body: { name: "staging" } })).status).toBe(201);

    const list = await call(path, { key: t.key });
    expect(list.status, list.text).toBe(200);
    expect(list.body.data).toEqual([bare.body, created.body]);
    expect(list.body.pagination.total).toBe(2);

    const ctx = coreContextOf(t);
    expect((await findEnvironment(ctx, t.project.id, "staging"))?.id).toBe(created.body.id);
    expect(await findEnvironment(ctx, t.project.id, "production")).toBeNull();
    const stranger = coreContextOf(await createTenant());
    expect(await findEnvironment(stranger, t.project.id, "staging")).toBeNull();
  });

  const badEnvironments: [string, Record<string, unknown>, string][] = [
    ["an ftp base_url", { name: "e", base_url: "ftp://files.example.com" }, "base_url"],
    ["a relative base_url", { name: "e", base_url: "/staging" }, "base_url"],
    ["a base_url of 2049 characters", { name: "e", base_url: `https://example.com/${"a".repeat(2029)}` }, "base_url"],
    ["an empty name", { name: "  " }, "name"],
    ["a name of 101 characters", { name: "n".repeat(101) }, "name"],
    ["101 variables", { name: "e", variables: Object.fromEntries(Array.from({ length: 101 }, (_, i) => [`V${i}`, "x"])) }, "variables"],
    ["a variable that is not a string", { name: "e", variables: { PORT: 8080 } }, "variables.PORT"],
  ];
  for (const [what, body, field] of badEnvironments) {
    it(`refuses an environment with ${what}, writing nothing`, async () => {
      const t = await createTenant();
      const res = await call(`/api/v1/projects/${t.project.id}/environments`, { method: "POST", key: t.key, body });
      expect(res.status, res.text).toBe(400);
      expect(res.body.details.field).toBe(field);
      expect((await call(`/api/v1/projects/${t.project.id}/environments`, { key: t.key })).body.pagination.total).toBe(0);
    });
  }

  it("creates and lists contexts, refusing a duplicate name with 409 and data over 64 KB with 400", async () => {
    const t = await createTenant();
    const path = `/api/v1/projects/${t.project.id}/contexts`;
    const created = await call(path, { method: "POST", key: t.key, body: { name: "admin", data: { role: "admin", flags: { beta: true }, ids: [1, 2] } } });
    expect(created.status, created.text).toBe(201);
    expect(created.body).toMatchObject({ project_id: t.project.id, name: "admin", data: { role: "admin", flags: { beta: true }, ids: [1, 2] } });
    expect(created.body.id).toMatch(/^ctx_/);
    const dup = await call(path, { method: "POST", key: t.key, body: { name: "admin", data: {} } });
    expect(dup.status, dup.text).toBe(409);
    expect(dup.body.error).toBe("conflict");
    const big = await call(path, { method: "POST", key: t.key, body: { name: "big", data: { blob: "x".repeat(64 * 1024) } } });
    expect(big.status, big.text).toBe(400);
    expect(big.body.details.field).toBe("data");
    const notObject = await call(path, { method: "POST", key: t.key, body: { name: "list", data: [1, 2] } });
    expect(notObject.status, notObject.text).toBe(400);
    const list = await call(path, { key: t.key });
    expect(list.body.data).toEqual([created.body]);

    const ctx = coreContextOf(t);
    expect((await findContext(ctx, t.project.id, "admin"))?.data).toEqual({ role: "admin", flags: { beta: true }, ids: [1, 2] });
    expect(await findContext(ctx, t.project.id, "big")).toBeNull();
    expect(await findContext(coreContextOf(await createTenant()), t.project.id, "admin")).toBeNull();
  });

  it("answers an unknown or foreign project with 404 and needs the right scopes", async () => {
    const a = await createTenant();
    const b = await createTenant();
    for (const kind of ["environments", "contexts"]) {
      for (const project of ["proj_missing", b.project.id]) {
        const read = await call(`/api/v1/projects/${project}/${kind}`, { key: a.key });
        expect(read.status, read.text).toBe(404);
        expect(read.body.error).toBe("not_found");
        expect((await call(`/api/v1/projects/${project}/${kind}`, { method: "POST", key: a.key, body: { name: "x" } })).status).toBe(404);
      }
      expect((await call(`/api/v1/projects/${b.project.id}/${kind}`, { key: b.key })).body.pagination.total).toBe(0);
      const reader = await createKey(a, { scopes: ["plans:read"] });
      expect((await call(`/api/v1/projects/${a.project.id}/${kind}`, { key: reader.key })).status).toBe(200);
      expect((await call(`/api/v1/projects/${a.project.id}/${kind}`, { method: "POST", key: reader.key, body: { name: "x" } })).status).toBe(403);
    }
  });
});
