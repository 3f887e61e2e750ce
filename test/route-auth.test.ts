import { beforeAll, describe, expect, it } from "vitest";
import { createApp } from "../src/app";
import { call } from "./helpers/http";
import { createKey, createTenant, type Tenant } from "./helpers/factories";
import { type Operation, type TenantB, fill, idFor, operations, seedTenant } from "./helpers/routes";

/**
 * The auth rules every route shares, run over every route the Worker registers (read back from
 * /openapi.json, which a separate test proves lists every registered route). A new route that
 * forgets its access rule, or a new kind of path id without a resolver (test/helpers/routes.ts), fails here.
 */

let a: Tenant;
let b: TenantB;
let noScopeKey: string;
let ops: Operation[];

beforeAll(async () => {
  a = await createTenant("Tenant A");
  b = await seedTenant(await createTenant("Tenant B"));
  // A key holding a single scope that no route requires: every keyed route must answer 403.
  noScopeKey = (await createKey(a, { scopes: ["jobs:run"] })).key;
  ops = await operations();
});

describe("every registered route", () => {
  it("declares its access rule", () => {
    expect(ops.length).toBeGreaterThan(20);
    for (const op of ops) expect(op.access, `${op.method} ${op.path}`).toBeTruthy();
  });

  it("answers 401 without a key, in its surface's envelope", async () => {
    const guarded = ops.filter((o) => o.access !== "public");
    expect(guarded.length).toBeGreaterThan(20);
    for (const op of guarded) {
      const res = await call(fill(op.path, "x_1"), { method: op.method, body: op.example });
      expect(res.status, `${op.method} ${op.path}`).toBe(401);
      if (op.path === "/api/v1/run") expect(res.body, op.path).toEqual({ error: "Invalid API key" });
      else if (op.path.startsWith("/api/v1/qa/external/")) expect(Object.keys(res.body), op.path).toEqual(["detail"]);
      else if (op.path.startsWith("/api/v1/")) expect(res.body.error, op.path).toBe("unauthorized");
      else expect(res.body.error.code, op.path).toBe("UNAUTHORIZED");
    }
  });

  it("answers 401 to a well-formed key that does not exist", async () => {
    const fake = `gl_live_${"0".repeat(64)}`;
    for (const op of ops.filter((o) => typeof o.access === "string" && o.access.includes(":"))) {
      const res = await call(fill(op.path, "x_1"), { method: op.method, key: fake, body: op.example });
      expect(res.status, `${op.method} ${op.path}`).toBe(401);
    }
  });

  it("answers 403 to a key without the route's scope", async () => {
    const keyed = ops.filter((o) => o.access.includes(":") && o.access !== "jobs:run");
    expect(keyed.length).toBeGreaterThan(20);
    for (const op of keyed) {
      const res = await call(fill(op.path, "x_1"), { method: op.method, key: noScopeKey, body: op.example });
      expect(res.status, `${op.method} ${op.path}`).toBe(403);
    }
  });

  it("answers 404 to another tenant's id, with the same body as a missing id", async () => {
    const withIds = ops.filter((o) => o.access.includes(":") && /\{id\}/.test(o.path));
    expect(withIds.length).toBeGreaterThan(10);
    for (const op of withIds) {
      const foreign = await call(fill(op.path, idFor(op.path, b)), { method: op.method, key: a.key, body: op.example });
      const missing = await call(fill(op.path, idFor(op.path, b).replace(/_.*/, "_00000000000000000000000000")), {
        method: op.method,
        key: a.key,
        body: op.example,
      });
      // Deleting a run is idempotent: a missing run (and so another tenant's) answers like a deleted one.
      const idempotentDelete = op.method === "DELETE" && /\/(testruns|runs|artifacts)\//.test(op.path);
      const expected = idempotentDelete ? (op.path.startsWith("/api/v1/") ? 204 : 200) : 404;
      expect(foreign.status, `${op.method} ${op.path}: ${foreign.text}`).toBe(expected);
      expect(missing.status, `${op.method} ${op.path}`).toBe(expected);
      const strip = (body: any) => JSON.stringify(body ?? null).replace(/"(org|proj|key|run|res|tc|ing|bld|rel|wh|whd|art|plan|job)_[0-9A-Z]+"/g, '"ID"');
      expect(strip(foreign.body)).toBe(strip(missing.body));
    }
    // Nothing of B changed: its project and key still read back as before.
    expect((await call(`/api/v1/projects/${b.project.id}`, { key: b.key })).body.name).toBe("Tenant B project");
    expect((await call(`/api/v1/api-keys/${b.extraKeyId}`, { key: b.key })).body.is_active).toBe(true);
    const run = await call(`/api/v1/testruns/${b.runId}`, { key: b.key });
    expect(run.status).toBe(200);
    expect(run.body).toMatchObject({ status: "running", total_tests: 1, reported_counts: null });
    expect((await call(`/api/v1/results/${b.resultId}`, { key: b.key })).body.title).toBe("b's test");
    expect((await call(`/api/v1/testcases/${b.testCaseId}`, { key: b.key })).body.title).toBe("b's test");
    expect((await call(`/api/v1/ingests/${b.ingestId}`, { key: b.key })).body.status).toBe("uploading");
    expect((await call(`/api/v1/builds/${b.buildId}`, { key: b.key })).body).toMatchObject({ status: "planned", queue_position: 1 });
    expect((await call(`/api/v1/artifacts/${b.artifactId}`, { key: b.key })).body).toMatchObject({ status: "stored", type: "screenshot" });
    expect((await call(`/api/v1/artifacts/${b.uploadId}`, { key: b.key })).body).toMatchObject({ status: "uploading" });
    expect((await call(`/api/v1/releases/${b.releaseId}`, { key: b.key })).body).toMatchObject({ name: "b's release", status: "planned" });
    expect((await call(`/api/v1/webhooks/${b.webhookId}`, { key: b.key })).body).toMatchObject({ is_active: true, url: "https://receiver.test/ok/route-auth" });
  });
});

describe("the route table and the document agree", () => {
  it("documents every route the app registers", async () => {
    const documented = new Set(ops.map((o) => `${o.method} ${o.path.replace(/\{([^}]+)\}/g, ":$1")}`));
    const undocumented = new Set(["GET /openapi.json", "GET /docs"]);
    const registered = createApp()
      .routes.filter((r) => r.method !== "ALL")
      .map((r) => `${r.method} ${r.path}`)
      .filter((r) => !undocumented.has(r));
    for (const route of registered) expect(documented.has(route), route).toBe(true);
  });
});
