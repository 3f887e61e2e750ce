import { ADMIN_TOKEN, call, type CallResult } from "./http";
import { createKey, createTenant } from "./factories";
import { fill as fillPath, idFor as routeIdFor, type TenantB } from "./routes";

/**
 * The JSON request bodies of the route table, walked from GET /openapi.json, and a tenant with
 * one of everything a path can name, so a valid body can be sent to every write route: shared by
 * the tests that send each body something hostile (security/hostile-input, unicode, fuzz).
 * Unlike routes.ts, the bodies here pass validation as far as the schema says (formats, lengths,
 * nested examples) and carry the tenant's real ids, so a body that got through could write.
 */

export type Surface = "native" | "reporting" | "plan-trigger" | "suite-trigger";

/** Each surface answers errors in its own envelope, so a test must know whose route it calls. */
export function surfaceOf(path: string): Surface {
  if (path === "/api/v1/run") return "plan-trigger";
  if (path.startsWith("/api/v1/qa/external/")) return "suite-trigger";
  if (path.startsWith("/api/v1/")) return "native";
  return "reporting";
}

export interface Operation {
  method: string;
  path: string;
  access: string;
  surface: Surface;
  /** The JSON request body's schema, dereferenced; undefined when the route takes no JSON. */
  schema: any;
  /** The documented query parameters. */
  query: any[];
}

/** The document operations() read last: deref() resolves references against it. */
let doc: any;

/** Every operation of the document, JSON body or not; reads the document for deref(). */
export async function operations(): Promise<Operation[]> {
  doc = (await call("/openapi.json")).body;
  const ops: Operation[] = [];
  for (const [path, item] of Object.entries<Record<string, any>>(doc.paths)) {
    for (const [method, op] of Object.entries<any>(item)) {
      ops.push({
        method: method.toUpperCase(),
        path,
        access: op["x-greenlight-access"],
        surface: surfaceOf(path),
        schema: deref(op.requestBody?.content?.["application/json"]?.schema),
        query: (op.parameters ?? []).filter((p: any) => p.in === "query"),
      });
    }
  }
  return ops;
}

/** The schema a $ref names, through chains of them; call operations() first. */
export function deref(schema: any): any {
  let s = schema;
  while (s?.$ref) s = doc.components.schemas[s.$ref.split("/").pop()];
  return s;
}

/** The schema without its null alternative; undefined for a real union (several non-null types). */
export function single(schema: any): any {
  const s = deref(schema);
  if (!s) return s;
  const alternatives = s.anyOf ?? s.oneOf;
  if (alternatives) {
    const real = alternatives.map(deref).filter((a: any) => a.type !== "null");
    return real.length === 1 ? single(real[0]) : undefined;
  }
  // OpenAPI 3.1 writes a nullable field as a type list: ["string", "null"].
  if (Array.isArray(s.type)) {
    const real = s.type.filter((t: string) => t !== "null");
    return real.length === 1 ? { ...s, type: real[0] } : undefined;
  }
  return s;
}

/** Values that pass the documented formats. */
export const FORMAT_EXAMPLES: Record<string, string> = {
  email: "someone@example.com",
  uri: "https://example.com/path",
  "date-time": "2030-01-01T00:00:00Z",
};

/** A body that passes validation: the documented required fields, from their examples (a copy, safe to change). */
export function exampleFor(schema: any): unknown {
  const s = deref(schema);
  if (!s) return undefined;
  if (s.example !== undefined) return structuredClone(s.example);
  if (s.enum) return s.enum[0];
  if (s.anyOf || s.oneOf) return exampleFor((s.anyOf ?? s.oneOf).find((a: any) => deref(a).type !== "null"));
  if (s.type === "object" || s.properties) {
    const out: Record<string, unknown> = {};
    for (const name of s.required ?? []) out[name] = exampleFor(s.properties[name]);
    return out;
  }
  if (s.type === "boolean") return true;
  if (s.type === "integer" || s.type === "number") return s.minimum ?? 1;
  if (s.type === "string") return FORMAT_EXAMPLES[s.format] ?? "example".padEnd(s.minLength ?? 0, "x");
  if (s.type === "array") return s.minItems === 0 ? [] : [exampleFor(s.items)];
  return undefined;
}

/**
 * Sets `value` at `path` (the root itself for an empty path), making the objects and arrays on
 * the way: an array where the next key is an index.
 */
export function setAt(root: unknown, path: (string | number)[], value: unknown): any {
  if (path.length === 0) return value;
  const top: any = root !== null && typeof root === "object" ? root : {};
  let at = top;
  for (let i = 0; i < path.length - 1; i++) {
    const key = path[i]!;
    if (at[key] === null || typeof at[key] !== "object") at[key] = typeof path[i + 1] === "number" ? [] : {};
    at = at[key];
  }
  at[path.at(-1)!] = value;
  return top;
}

/**
 * A tenant with one of everything a path can name: routes.ts's kinds of id (but an artifact,
 * which would need R2) and the plan's number, which the plan trigger takes instead of its id.
 */
export interface World extends Omit<TenantB, "artifactId"> {
  planNumber: number;
}

/** The body of a setup request, or a failure that says which step of the setup it was. */
export async function ok(res: Promise<CallResult>, what: string): Promise<any> {
  const r = await res;
  if (r.status >= 300) throw new Error(`setup ${what}: ${r.status} ${r.text}`);
  return r.body;
}

/**
 * Makes a World. `label` names its webhook's receiver; `events` are what the webhook listens to
 * (a test that compares snapshots subscribes to an event it never causes, so no delivery is written).
 */
export async function createWorld(label: string, events: string[] = ["build.created.v1"]): Promise<World> {
  const t = await createTenant();
  const post = (path: string, body: unknown) => call(path, { method: "POST", key: t.key, body });
  const run = await ok(post("/api/v1/testruns", { project_id: t.project.id }), "run");
  const submitted = await ok(post(`/api/v1/testruns/${run.id}/results`, { results: [{ title: "world test", status: "passed", duration: 1 }] }), "results");
  const plan = await ok(post("/api/v1/testplans", { project_id: t.project.id, name: "world plan" }), "plan");
  const triggered = await ok(post(`/api/v1/testplans/${plan.id}/trigger`, {}), "trigger");
  return {
    ...t,
    extraKeyId: (await createKey(t, { scopes: ["projects:read"] })).id,
    runId: run.id,
    resultId: submitted.results[0].id,
    testCaseId: submitted.results[0].test_case_id,
    ingestId: (await ok(post("/api/v1/ingests", { project_id: t.project.id }), "ingest")).id,
    buildId: (await ok(post("/api/v1/builds", { project_id: t.project.id, name: "world build" }), "build")).id,
    releaseId: (await ok(post("/api/v1/releases", { project_id: t.project.id, name: "world release" }), "release")).id,
    webhookId: (await ok(post("/api/v1/webhooks", { url: `https://receiver.test/ok/${label}`, events }), "webhook")).id,
    planId: plan.id,
    planNumber: plan.number,
    jobId: triggered.jobs[0].job_id,
    uploadId: (await ok(post("/api/v1/artifacts/uploads", { type: "report", run_id: run.id, file_name: "r.zip" }), "upload")).id,
  };
}

/** The world's id for a path's {id}, by routes.ts's resolver; the open upload stands in for an artifact. */
export function idFor(path: string, w: World): string {
  return routeIdFor(path, { ...w, artifactId: w.uploadId });
}

/** The path with `id` (the world's, unless given: a resource just made) in {id} and a valid value in any other parameter. */
export const fill = (path: string, w: World, id?: string): string => fillPath(path, path.includes("{id}") ? (id ?? idFor(path, w)) : "");

/** The world's id for a field or query parameter that names one, by its name on either surface. */
export function idByName(key: string, w: World): string | undefined {
  const ids: Record<string, string> = {
    project_id: w.project.id,
    projectId: w.project.id,
    run_id: w.runId,
    runId: w.runId,
    build_id: w.buildId,
    app_id: w.buildId,
    release_id: w.releaseId,
    result_id: w.resultId,
    testId: w.resultId,
    plan_id: w.planId,
    teamId: w.organization.id,
  };
  return ids[key];
}

/** Puts the world's real ids where an example has a made-up one, so a body that got through could write. */
export function realize(value: unknown, w: World, key = ""): unknown {
  if (Array.isArray(value)) return key === "test_case_ids" ? [w.testCaseId] : value.map((v) => realize(v, w));
  if (value !== null && typeof value === "object") return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, realize(v, w, k)]));
  // The plan trigger names a plan and a project by number.
  if (typeof value === "number") return key === "testPlanId" ? w.planNumber : key === "projectId" ? w.project.number : value;
  if (typeof value !== "string") return value;
  return idByName(key, w) ?? value;
}

/** The example with the world's ids also in the optional fields that name one (a run needs its project). */
export function withIds(op: { schema: any }, w: World): any {
  const body = realize(exampleFor(op.schema), w) as any;
  const properties = single(op.schema)?.properties ?? {};
  if (body === null || typeof body !== "object" || Array.isArray(body)) return body;
  for (const name of ["project_id", "projectId"]) {
    if (name in properties && body[name] === undefined && single(properties[name])?.type === "string") body[name] = w.project.id;
  }
  return body;
}

/** The key an operation takes: the admin token for admin routes, the world's owner key otherwise. */
export const keyFor = (op: { access: string }, w: { key: string }): string => (op.access === "admin" ? ADMIN_TOKEN : w.key);

/** The field a refusal names, where the surface's envelope has room for one (the triggers' has not). */
export function fieldOf(res: CallResult, surface: Surface): string | undefined {
  if (surface === "native") return res.body?.details?.field;
  if (surface === "reporting") return res.body?.error?.details?.field;
  return undefined;
}
