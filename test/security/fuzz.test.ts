import fc from "fast-check";
import { beforeAll, describe, expect, it } from "vitest";
import { ADMIN_TOKEN, call, type CallResult } from "../helpers/http";
import { createKey, createTenant, type Tenant } from "../helpers/factories";
import ctrf from "../fixtures/ctrf.json?raw";
import junitJest from "../fixtures/junit-jest.xml?raw";
import junitSurefire from "../fixtures/junit-surefire.xml?raw";
import playwright from "../fixtures/playwright.json?raw";

/**
 * Property-based fuzzing (issue 14, case 17): every operation with a JSON body, read from
 * /openapi.json, gets arbitrary JSON and mutations of a valid example (wrong types, missing and
 * extra fields, huge strings and numbers, deep nesting); the three report parsers get arbitrary
 * text and mutated real reports through POST /results/ingest. No input may answer 500 or break
 * the answer's JSON. Seeds are fixed and runs bounded; a failure names the operation, the seed
 * and fast-check's path, so it can be replayed with `{ seed, path }`.
 */

const SEED = 0x14_17;
const RUNS_PER_ENDPOINT = 30;
const RUNS_PER_PARSER = 40;

interface Operation {
  method: string;
  path: string;
  access: string;
  schema: any;
}

let doc: any;

function deref(schema: any): any {
  let s = schema;
  while (s?.$ref) s = doc.components.schemas[s.$ref.split("/").pop()];
  return s;
}

async function operations(): Promise<Operation[]> {
  doc = (await call("/openapi.json")).body;
  const ops: Operation[] = [];
  for (const [path, item] of Object.entries<Record<string, any>>(doc.paths)) {
    for (const [method, op] of Object.entries<any>(item)) {
      const schema = deref(op.requestBody?.content?.["application/json"]?.schema);
      if (schema && path !== "/api/v1/results/ingest") ops.push({ method: method.toUpperCase(), path, access: op["x-greenlight-access"], schema });
    }
  }
  return ops;
}

function single(schema: any): any {
  const s = deref(schema);
  if (!s) return s;
  const alternatives = s.anyOf ?? s.oneOf;
  if (alternatives) {
    const real = alternatives.map(deref).filter((a: any) => a.type !== "null");
    return real.length === 1 ? single(real[0]) : undefined;
  }
  return s;
}

/** Values that pass the documented formats. */
const FORMAT_EXAMPLES: Record<string, string> = {
  email: "someone@example.com",
  uri: "https://example.com/path",
  "date-time": "2030-01-01T00:00:00Z",
};

function exampleFor(schema: any): unknown {
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
 * A fuller valid body than the required fields alone: every documented field with its example,
 * so mutations reach optional fields too.
 */
function fullExample(schema: any, depth = 0): unknown {
  const s = deref(schema);
  if (!s || depth > 4) return exampleFor(s);
  if (s.example !== undefined) return structuredClone(s.example);
  if (s.properties) {
    const out: Record<string, unknown> = {};
    for (const [name, child] of Object.entries<any>(s.properties)) out[name] = fullExample(child, depth + 1);
    return out;
  }
  if (s.type === "array" && s.items) return [fullExample(s.items, depth + 1)];
  return exampleFor(s);
}

type Path = (string | number)[];

/** Every path into a value (objects and arrays), at most `max` of them. */
function pathsOf(value: unknown, max = 400): Path[] {
  const out: Path[] = [[]];
  const stack: { v: unknown; p: Path }[] = [{ v: value, p: [] }];
  while (stack.length > 0 && out.length < max) {
    const { v, p } = stack.pop()!;
    if (v === null || typeof v !== "object") continue;
    for (const [k, child] of Object.entries(v)) {
      const path = [...p, Array.isArray(v) ? Number(k) : k];
      out.push(path);
      stack.push({ v: child, p: path });
    }
  }
  return out;
}

function setAt(root: unknown, path: Path, value: unknown): unknown {
  if (path.length === 0) return value;
  const top: any = root !== null && typeof root === "object" ? root : {};
  let at = top;
  for (let i = 0; i < path.length - 1; i++) {
    const key = path[i]!;
    if (at[key] === null || typeof at[key] !== "object") at[key] = {};
    at = at[key];
  }
  at[path.at(-1)!] = value;
  return top;
}

function deleteAt(root: unknown, path: Path): unknown {
  if (path.length === 0) return undefined;
  let at: any = root;
  for (const key of path.slice(0, -1)) {
    if (at === null || typeof at !== "object") return root;
    at = at[key];
  }
  if (at !== null && typeof at === "object") {
    if (Array.isArray(at)) at.splice(Number(path.at(-1)), 1);
    else delete at[path.at(-1)!];
  }
  return root;
}

/** Tokens JSON.stringify cannot write, put into the body as text. */
const RAW_NUMBERS = ["1e309", "-1e309", "9007199254740993", "-9007199254740993", "1e-400", "123456789012345678901234567890", "-0", "0.1e1", "1E+2"];
const HUGE_NUMBERS = [1e308, -1e308, Number.MAX_SAFE_INTEGER + 2, -Number.MAX_SAFE_INTEGER - 2, 2 ** 31, 2 ** 32, 2 ** 63, Number.MIN_VALUE, -0, 0.1 + 0.2];
const STRING_UNITS = ["a", "é", "🧪", "\u0000", "\ud800", "\u202E", "%", "_", "\\", "<", "\"", "\n"];

type Mutation =
  | { kind: "set"; at: number; value: unknown }
  | { kind: "delete"; at: number }
  | { kind: "extra"; at: number; name: string; value: unknown }
  | { kind: "huge-string"; at: number; unit: string; length: number }
  | { kind: "huge-number"; at: number; value: number }
  | { kind: "raw-number"; at: number; raw: string }
  | { kind: "deep"; at: number; depth: number; open: string };

const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant("set" as const), at: fc.nat(), value: fc.jsonValue({ maxDepth: 3 }) }),
  fc.record({ kind: fc.constant("delete" as const), at: fc.nat() }),
  fc.record({ kind: fc.constant("extra" as const), at: fc.nat(), name: fc.string({ maxLength: 12 }), value: fc.jsonValue({ maxDepth: 2 }) }),
  fc.record({
    kind: fc.constant("huge-string" as const),
    at: fc.nat(),
    unit: fc.constantFrom(...STRING_UNITS),
    length: fc.constantFrom(201, 1001, 4097, 65_537, 300_000),
  }),
  fc.record({ kind: fc.constant("huge-number" as const), at: fc.nat(), value: fc.constantFrom(...HUGE_NUMBERS) }),
  fc.record({ kind: fc.constant("raw-number" as const), at: fc.nat(), raw: fc.constantFrom(...RAW_NUMBERS) }),
  fc.record({ kind: fc.constant("deep" as const), at: fc.nat(), depth: fc.constantFrom(33, 200, 5_000, 50_000), open: fc.constantFrom("[", "{") }),
);

/** Applies mutations to a copy of `base` and writes it as JSON text (raw tokens included). */
function mutate(base: unknown, mutations: Mutation[]): string {
  let body: unknown = structuredClone(base);
  const raw: string[] = [];
  const placeholder = (text: string) => {
    raw.push(text);
    return `__raw_${raw.length - 1}__`;
  };
  for (const m of mutations) {
    const paths = pathsOf(body);
    const path = paths[m.at % paths.length]!;
    switch (m.kind) {
      case "set":
        body = setAt(body, path, m.value);
        break;
      case "delete":
        body = deleteAt(body, path);
        break;
      case "extra":
        body = setAt(body, [...path, m.name || "zz"], m.value);
        break;
      case "huge-string":
        body = setAt(body, path, m.unit.repeat(m.length));
        break;
      case "huge-number":
        body = setAt(body, path, m.value);
        break;
      case "raw-number":
        body = setAt(body, path, placeholder(m.raw));
        break;
      case "deep": {
        const close = m.open === "[" ? "]" : "}";
        const open = m.open === "[" ? "[" : '{"a":';
        body = setAt(body, path, placeholder(`${open.repeat(m.depth)}${m.open === "[" ? "" : "1"}${close.repeat(m.depth)}`));
        break;
      }
    }
  }
  const text = JSON.stringify(body) ?? "";
  return text.replace(/"__raw_(\d+)__"/g, (_, i: string) => raw[Number(i)]!);
}

interface World extends Tenant {
  extraKeyId: string;
  runId: string;
  resultId: string;
  testCaseId: string;
  buildId: string;
  releaseId: string;
  webhookId: string;
  planId: string;
  planNumber: number;
  jobId: string;
  uploadId: string;
  ingestId: string;
  /** An organization the admin routes may change without slowing the rest (rate limits, credits). */
  spareOrgId: string;
}

async function ok(res: Promise<CallResult>, what: string): Promise<any> {
  const r = await res;
  if (r.status >= 300) throw new Error(`setup ${what}: ${r.status} ${r.text}`);
  return r.body;
}

async function createWorld(): Promise<World> {
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
    webhookId: (await ok(post("/api/v1/webhooks", { url: "https://receiver.test/ok/fuzz", events: ["build.created.v1"] }), "webhook")).id,
    planId: plan.id,
    planNumber: plan.number,
    jobId: triggered.jobs[0].job_id,
    uploadId: (await ok(post("/api/v1/artifacts/uploads", { type: "report", run_id: run.id, file_name: "r.zip" }), "upload")).id,
    spareOrgId: (await createTenant()).organization.id,
  };
}

function idFor(path: string, w: World): string {
  if (/^\/api\/v1\/admin\/organizations\/\{id\}/.test(path)) return w.spareOrgId;
  if (/\/organizations\/\{id\}/.test(path)) return w.organization.id;
  if (/\/projects\/\{id\}/.test(path)) return w.project.id;
  if (/\/api-keys\/\{id\}/.test(path)) return w.extraKeyId;
  if (/\/(testruns|runs)\/\{id\}/.test(path)) return w.runId;
  if (/\/(results|tests)\/\{id\}/.test(path)) return w.resultId;
  if (/\/testcases\/\{id\}/.test(path)) return w.testCaseId;
  if (/\/ingests\/\{id\}/.test(path)) return w.ingestId;
  if (/\/builds\/\{id\}/.test(path)) return w.buildId;
  if (/\/releases\/\{id\}/.test(path)) return w.releaseId;
  if (/\/webhooks\/\{id\}/.test(path)) return w.webhookId;
  if (/\/testplans\/\{id\}/.test(path)) return w.planId;
  if (/\/jobs\/\{id\}/.test(path)) return w.jobId;
  if (/\/artifacts\/uploads\/\{id\}/.test(path)) return w.uploadId;
  if (/\/artifacts\/\{id\}/.test(path)) return w.uploadId;
  return "x_1";
}

const fill = (path: string, w: World) => path.replace(/\{id\}/g, idFor(path, w)).replace(/\{[^}]+\}/g, "1");

function realize(value: unknown, w: World, key = ""): unknown {
  if (Array.isArray(value)) return key === "test_case_ids" ? [w.testCaseId] : value.map((v) => realize(v, w));
  if (value !== null && typeof value === "object") return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, realize(v, w, k)]));
  if (typeof value === "number") return key === "testPlanId" ? w.planNumber : key === "projectId" ? w.project.number : value;
  if (typeof value !== "string") return value;
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
  return ids[key] ?? value;
}

/** The example with the world's ids also in the optional fields that name one (a run needs its project). */
function withIds(op: { schema: any }, w: World): any {
  const body = realize(exampleFor(op.schema), w) as any;
  const properties = single(op.schema)?.properties ?? {};
  if (body === null || typeof body !== "object" || Array.isArray(body)) return body;
  for (const name of ["project_id", "projectId"]) {
    if (name in properties && body[name] === undefined && single(properties[name])?.type === "string") body[name] = w.project.id;
  }
  return body;
}

/** A stable seed per target, so adding a route does not change what the others get. */
function seedOf(name: string): number {
  let h = SEED;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193) >>> 0;
  return h | 0;
}

/** Runs a property with a fixed seed; the failure names the target, the seed and the path to replay. */
async function check<T>(name: string, arb: fc.Arbitrary<T>, runs: number, send: (value: T) => Promise<CallResult>): Promise<string | null> {
  const seed = seedOf(name);
  const result = await fc.check(
    fc.asyncProperty(arb, async (value) => {
      const res = await send(value);
      if (res.status >= 500) throw new Error(`${res.status} ${res.text.slice(0, 300)}`);
      // The answer must be what it says: JSON that parses (call() parsed it already) in the surface's envelope.
      if (res.status >= 400 && (res.headers.get("content-type") ?? "").includes("json")) {
        if (res.body === undefined || res.body === null || typeof res.body !== "object") throw new Error(`error without a JSON body: ${res.text.slice(0, 200)}`);
      }
    }),
    { seed, numRuns: runs, endOnFailure: true },
  );
  if (!result.failed) return null;
  const counterexample = JSON.stringify(result.counterexample)?.slice(0, 400);
  return `${name}: seed ${seed}, path "${result.counterexamplePath}": ${result.errorInstance instanceof Error ? result.errorInstance.message : String(result.errorInstance)} — input ${counterexample}`;
}

let w: World;
let ops: Operation[];

beforeAll(async () => {
  w = await createWorld();
  ops = await operations();
});

describe("case 17: fuzzing every JSON body of the route table", () => {
  for (const [group, pick] of [
    ["native", (o: Operation) => o.path.startsWith("/api/v1/") && o.path !== "/api/v1/run" && !o.path.startsWith("/api/v1/qa/")],
    ["reporting and trigger", (o: Operation) => !o.path.startsWith("/api/v1/") || o.path === "/api/v1/run" || o.path.startsWith("/api/v1/qa/")],
  ] as const) {
    it(`${group} operations: arbitrary JSON and mutated examples never answer 500`, { timeout: 240_000 }, async () => {
      const targets = ops.filter(pick);
      expect(targets.length).toBeGreaterThan(group === "native" ? 25 : 8);
      const failures: string[] = [];
      let runs = 0;
      for (const op of targets) {
        const key = op.access === "admin" ? ADMIN_TOKEN : w.key;
        const base = realize(fullExample(op.schema), w);
        const minimal = withIds(op, w);
        const input = fc.oneof(
          { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 4 }).map((v) => JSON.stringify(v) ?? "null") },
          { weight: 3, arbitrary: fc.tuple(fc.boolean(), fc.array(mutationArb, { minLength: 1, maxLength: 3 })).map(([full, ms]) => mutate(full ? base : minimal, ms)) },
        );
        const failure = await check(`${op.method} ${op.path}`, input, RUNS_PER_ENDPOINT, (text) =>
          call(fill(op.path, w), { method: op.method, key, body: text, headers: { "content-type": "application/json" } }),
        );
        runs += RUNS_PER_ENDPOINT;
        if (failure) failures.push(failure);
      }
      expect(runs).toBeGreaterThan(0);
      expect(failures).toEqual([]);
    });
  }
});

describe("case 17: fuzzing the report parsers through POST /results/ingest", () => {
  const CONTENT_TYPES = ["application/xml", "text/xml", "application/json", "text/plain", "application/octet-stream", ""];
  const SNIPPETS = ["<", ">", "&", "&amp;", "&#0;", "&#xD800;", "]]>", "<![CDATA[", "<!DOCTYPE x>", "<!ENTITY e 'x'>", "\u0000", "\ud800", '"', "{", "}", "[", "]", ",", ":", "1e309", "-1", "null", "🧪", "\uFEFF"];

  function ingest(t: Tenant, text: string, contentType: string, format?: string) {
    const headers: Record<string, string> = contentType ? { "content-type": contentType } : {};
    return call(`/api/v1/results/ingest?project_id=${t.project.id}${format ? `&format=${format}` : ""}`, { method: "POST", key: t.key, body: text, headers });
  }

  type TextEdit =
    | { kind: "cut"; at: number; length: number }
    | { kind: "insert"; at: number; text: string }
    | { kind: "repeat"; at: number; length: number; times: number }
    | { kind: "truncate"; at: number };

  /** Text edits of a real report: cuts, insertions of markup and odd characters, repeats. */
  const textEdit: fc.Arbitrary<TextEdit> = fc.oneof(
    fc.record({ kind: fc.constant("cut" as const), at: fc.double({ min: 0, max: 1, noNaN: true }), length: fc.nat({ max: 200 }) }),
    fc.record({ kind: fc.constant("insert" as const), at: fc.double({ min: 0, max: 1, noNaN: true }), text: fc.oneof(fc.constantFrom(...SNIPPETS), fc.string({ maxLength: 20 })) }),
    fc.record({ kind: fc.constant("repeat" as const), at: fc.double({ min: 0, max: 1, noNaN: true }), length: fc.nat({ max: 100 }), times: fc.integer({ min: 2, max: 50 }) }),
    fc.record({ kind: fc.constant("truncate" as const), at: fc.double({ min: 0, max: 1, noNaN: true }) }),
  );

  function edit(text: string, edits: TextEdit[]): string {
    let out = text;
    for (const e of edits) {
      const at = Math.floor(e.at * out.length);
      if (e.kind === "cut") out = out.slice(0, at) + out.slice(at + e.length);
      else if (e.kind === "insert") out = out.slice(0, at) + e.text + out.slice(at);
      else if (e.kind === "repeat") out = out.slice(0, at) + out.slice(at, at + e.length).repeat(e.times) + out.slice(at);
      else out = out.slice(0, at);
    }
    return out;
  }

  const REPORTS: [string, string, string][] = [
    ["junit (surefire)", junitSurefire, "junit"],
    ["junit (jest)", junitJest, "junit"],
    ["playwright", playwright, "playwright"],
    ["ctrf", ctrf, "ctrf"],
  ];

  it("arbitrary text under every content type and format never answers 500", { timeout: 180_000 }, async () => {
    const t = await createTenant();
    const arb = fc.record({
      text: fc.oneof(
        fc.string({ unit: "binary", maxLength: 2000 }),
        fc.string({ maxLength: 300 }),
        fc.jsonValue({ maxDepth: 5 }).map((v) => JSON.stringify(v) ?? ""),
        fc.array(fc.constantFrom(...SNIPPETS, "<testsuite>", "<testcase name='x'>", "</testcase>", "</testsuite>", '{"results":', '"tests":'), { maxLength: 40 }).map((xs) => xs.join("")),
      ),
      contentType: fc.constantFrom(...CONTENT_TYPES),
      format: fc.option(fc.constantFrom("junit", "playwright", "ctrf", "native"), { nil: undefined }),
    });
    const failure = await check("arbitrary reports", arb, RUNS_PER_PARSER * 3, ({ text, contentType, format }) => ingest(t, text, contentType, format));
    expect(failure).toBeNull();
  });

  it("mutated JUnit, Playwright and CTRF reports never answer 500", { timeout: 240_000 }, async () => {
    const t = await createTenant();
    const failures: string[] = [];
    for (const [name, text, format] of REPORTS) {
      const isJson = format !== "junit";
      const edits = fc.array(textEdit, { minLength: 1, maxLength: 4 });
      const arb = isJson
        ? fc.oneof(
            edits.map((es) => ({ text: edit(text, es), format: undefined as string | undefined })),
            fc.tuple(fc.array(mutationArb, { minLength: 1, maxLength: 4 }), fc.boolean()).map(([ms, named]) => ({ text: mutate(JSON.parse(text), ms), format: named ? format : undefined })),
          )
        : edits.map((es) => ({ text: edit(text, es), format: undefined as string | undefined }));
      const failure = await check(`mutated ${name}`, arb, RUNS_PER_PARSER, (input) => ingest(t, input.text, isJson ? "application/json" : "application/xml", input.format));
      if (failure) failures.push(failure);
    }
    // Native reports: the results endpoint's item, mutated.
    const submit = ops.find((o) => o.method === "POST" && o.path === "/api/v1/testruns/{id}/results")!;
    const native = { run: { branch: "main", ci_build_id: "fuzz" }, results: (fullExample(submit.schema) as any).results };
    const nativeArb = fc.array(mutationArb, { minLength: 1, maxLength: 4 }).map((ms) => mutate(native, ms));
    const failure = await check("mutated native report", nativeArb, RUNS_PER_PARSER, (text) => ingest(t, text, "application/json"));
    if (failure) failures.push(failure);
    expect(failures).toEqual([]);
  });
});
