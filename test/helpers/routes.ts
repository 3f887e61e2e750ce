import { call } from "./http";
import { createKey, type Tenant } from "./factories";

/**
 * The route table as GET /openapi.json publishes it, and one tenant's worth of resources with an
 * id for every kind of path id: shared by the tests that walk every route (route-auth, tenancy).
 */

export interface Operation {
  method: string;
  path: string;
  access: string;
  example: unknown;
  /** The operation as the document describes it (parameters, requestBody, extensions). */
  operation: any;
}

export const ACCESS = "x-greenlight-access";

export async function operations(): Promise<Operation[]> {
  const doc = (await call("/openapi.json")).body;
  const ops: Operation[] = [];
  for (const [path, item] of Object.entries<Record<string, any>>(doc.paths)) {
    for (const [method, op] of Object.entries<any>(item)) {
      const schema = op.requestBody?.content?.["application/json"]?.schema;
      ops.push({ method: method.toUpperCase(), path, access: op[ACCESS], example: exampleFor(schema, doc), operation: op });
    }
  }
  return ops;
}

/** A body that passes validation, built from the documented schema's required fields and examples. */
export function exampleFor(schema: any, doc: any): unknown {
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

export interface TenantB extends Tenant {
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
export function idFor(path: string, b: TenantB): string {
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
  throw new Error(`No cross-tenant id resolver for ${path}: add one to test/helpers/routes.ts`);
}

/** The id into {id}; any other path parameter (a part number) gets a valid value. */
export const fill = (path: string, id: string) => path.replace(/\{id\}/g, id).replace(/\{[^}]+\}/g, "1");

/** A 1×1 PNG. */
export const PNG = Uint8Array.from(atob("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="), (ch) => ch.charCodeAt(0));


/**
 * Gives a tenant one of everything a path id can name: a run with a result (and so a test case),
 * an ingest, a build, a release, a webhook, a stored artifact, an open upload, a plan and a job.
 */
export async function seedTenant(tb: Tenant, label = "b", webhookKey = "route-auth"): Promise<TenantB> {
  const run = await call("/api/v1/testruns", { method: "POST", key: tb.key, body: { project_id: tb.project.id } });
  const submitted = await call(`/api/v1/testruns/${run.body.id}/results`, {
    method: "POST",
    key: tb.key,
    body: { results: [{ title: `${label}'s test`, status: "passed", duration: 1 }] },
  });
  if (submitted.status !== 201) throw new Error(`setup: ${submitted.status} ${submitted.text}`);
  return {
    ...tb,
    extraKeyId: (await createKey(tb, { scopes: ["projects:read"] })).id,
    runId: run.body.id,
    resultId: submitted.body.results[0].id,
    testCaseId: submitted.body.results[0].test_case_id,
    ingestId: (await call("/api/v1/ingests", { method: "POST", key: tb.key, body: { project_id: tb.project.id } })).body.id,
    buildId: (await call("/api/v1/builds", { method: "POST", key: tb.key, body: { project_id: tb.project.id, name: `${label}'s build` } })).body.id,
    releaseId: (await call("/api/v1/releases", { method: "POST", key: tb.key, body: { project_id: tb.project.id, name: `${label}'s release` } })).body.id,
    webhookId: (
      await call("/api/v1/webhooks", { method: "POST", key: tb.key, body: { url: `https://receiver.test/ok/${webhookKey}`, events: ["build.created.v1"] } })
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
      const plan = await call("/api/v1/testplans", { method: "POST", key: tb.key, body: { project_id: tb.project.id, name: `${label}'s plan` } });
      const triggered = await call(`/api/v1/testplans/${plan.body.id}/trigger`, { method: "POST", key: tb.key, body: {} });
      if (triggered.status !== 201) throw new Error(`setup: ${triggered.status} ${triggered.text}`);
      return { planId: plan.body.id as string, jobId: triggered.body.jobs[0].job_id as string };
    })()),
  };
}
