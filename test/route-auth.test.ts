import { beforeAll, describe, expect, it } from "vitest";
import { createApp } from "../src/app";
import { call } from "./helpers/http";
import { createKey, createTenant, type Tenant } from "./helpers/factories";

/**
 * The auth rules every route shares, run over every route the Worker registers (read back from
 * /openapi.json, which a separate test proves lists every registered route). A new route that
 * forgets its access rule, or a new kind of path id without a resolver below, fails here.
 */

interface Operation {
  method: string;
  path: string;
  access: string;
  example: unknown;
}

const ACCESS = "x-greenlight-access";

async function operations(): Promise<Operation[]> {
  const doc = (await call("/openapi.json")).body;
  const ops: Operation[] = [];
  for (const [path, item] of Object.entries<Record<string, any>>(doc.paths)) {
    for (const [method, op] of Object.entries<any>(item)) {
      const schema = op.requestBody?.content?.["application/json"]?.schema;
      ops.push({ method: method.toUpperCase(), path, access: op[ACCESS], example: exampleFor(schema, doc) });
    }
  }
  return ops;
}

/** A body that passes validation, built from the documented schema's required fields and examples. */
function exampleFor(schema: any, doc: any): unknown {
  if (!schema) return undefined;
  if (schema.$ref) return exampleFor(doc.components.schemas[schema.$ref.split("/").pop()], doc);
  if (schema.example !== undefined) return schema.example;
  if (schema.enum) return schema.enum[0];
  if (schema.type === "object" || schema.properties) {
    const out: Record<string, unknown> = {};
    for (const name of schema.required ?? []) out[name] = exampleFor(schema.properties[name], doc);
    return out;
  }
  if (schema.anyOf) return exampleFor(schema.anyOf.find((s: any) => s.type !== "null"), doc);
  if (schema.type === "boolean") return true;
  if (schema.type === "integer" || schema.type === "number") return schema.minimum ?? 1;
  if (schema.type === "string") return "example";
  if (schema.type === "array") return [exampleFor(schema.items, doc)];
  return undefined;
}

interface TenantB extends Tenant {
  extraKeyId: string;
  runId: string;
  resultId: string;
  testCaseId: string;
  ingestId: string;
  buildId: string;
  releaseId: string;
  webhookId: string;
  artifactId: string;
  uploadId: string;
  planId: string;
  jobId: string;
}

/** Ids of tenant B for each kind of path id; a route with an id of an unknown kind fails the test. */
function idFor(path: string, b: TenantB): string {
  if (/\/organizations\/\{id\}/.test(path)) return b.organization.id;
  if (/\/projects\/\{id\}/.test(path)) return b.project.id;
  if (/\/api-keys\/\{id\}/.test(path)) return b.extraKeyId;
  if (/\/(testruns|runs)\/\{id\}/.test(path)) return b.runId;
  if (/\/(results|tests)\/\{id\}/.test(path)) return b.resultId;
  if (/\/testcases\/\{id\}/.test(path)) return b.testCaseId;
  if (/\/ingests\/\{id\}/.test(path)) return b.ingestId;
  if (/\/builds\/\{id\}/.test(path)) return b.buildId;
  if (/\/releases\/\{id\}/.test(path)) return b.releaseId;
  if (/\/webhooks\/\{id\}/.test(path)) return b.webhookId;
  if (/\/testplans\/\{id\}/.test(path)) return b.planId;
  if (/\/jobs\/\{id\}/.test(path)) return b.jobId;
  if (/\/artifacts\/uploads\/\{id\}/.test(path)) return b.uploadId;
  if (/\/artifacts\/\{id\}/.test(path)) return b.artifactId;
  throw new Error(`No cross-tenant id resolver for ${path}: add one to route-auth.test.ts`);
}

/** The id into {id}; any other path parameter (a part number) gets a valid value. */
const fill = (path: string, id: string) => path.replace(/\{id\}/g, id).replace(/\{[^}]+\}/g, "1");

/** A 1×1 PNG. */
const PNG = Uint8Array.from(atob("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="), (ch) => ch.charCodeAt(0));

let a: Tenant;
let b: TenantB;
let noScopeKey: string;
let ops: Operation[];

beforeAll(async () => {
  a = await createTenant("Tenant A");
  const tb = await createTenant("Tenant B");
  const run = await call("/api/v1/testruns", { method: "POST", key: tb.key, body: { project_id: tb.project.id } });
  const submitted = await call(`/api/v1/testruns/${run.body.id}/results`, {
    method: "POST",
    key: tb.key,
    body: { results: [{ title: "b's test", status: "passed", duration: 1 }] },
  });
  if (submitted.status !== 201) throw new Error(`setup: ${submitted.status} ${submitted.text}`);
  b = {
    ...tb,
    extraKeyId: (await createKey(tb, { scopes: ["projects:read"] })).id,
    runId: run.body.id,
    resultId: submitted.body.results[0].id,
    testCaseId: submitted.body.results[0].test_case_id,
    ingestId: (await call("/api/v1/ingests", { method: "POST", key: tb.key, body: { project_id: tb.project.id } })).body.id,
    buildId: (await call("/api/v1/builds", { method: "POST", key: tb.key, body: { project_id: tb.project.id, name: "b's build" } })).body.id,
    releaseId: (await call("/api/v1/releases", { method: "POST", key: tb.key, body: { project_id: tb.project.id, name: "b's release" } })).body.id,
    webhookId: (
      await call("/api/v1/webhooks", { method: "POST", key: tb.key, body: { url: "https://receiver.test/ok/route-auth", events: ["build.created.v1"] } })
    ).body.id,
    artifactId: await (async () => {
      const form = new FormData();
      form.append("type", "screenshot");
      form.append("run_id", run.body.id);
      form.append("file", new File([PNG], "b.png", { type: "image/png" }));
      const res = await call("/api/v1/artifacts", { method: "POST", key: tb.key, body: form });
      if (res.status !== 201) throw new Error(`setup: ${res.status} ${res.text}`);
      return res.body.id as string;
    })(),
    uploadId: (
      await call("/api/v1/artifacts/uploads", { method: "POST", key: tb.key, body: { type: "report", run_id: run.body.id, file_name: "r.zip" } })
    ).body.id,
    ...(await (async () => {
      const plan = await call("/api/v1/testplans", { method: "POST", key: tb.key, body: { project_id: tb.project.id, name: "b's plan" } });
      const triggered = await call(`/api/v1/testplans/${plan.body.id}/trigger`, { method: "POST", key: tb.key, body: {} });
      if (triggered.status !== 201) throw new Error(`setup: ${triggered.status} ${triggered.text}`);
      return { planId: plan.body.id as string, jobId: triggered.body.jobs[0].job_id as string };
    })()),
  };
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
