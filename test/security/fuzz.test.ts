import fc from "fast-check";
import { beforeAll, describe, expect, it } from "vitest";
import { call, type CallResult } from "../helpers/http";
import { createTenant, type Tenant } from "../helpers/factories";
import { type Operation, type World, createWorld, deref, exampleFor, fill, keyFor, operations, realize, setAt, withIds } from "../helpers/schema-walk";
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

/** An organization the admin routes may change without slowing the rest (rate limits, credits). */
interface FuzzWorld extends World {
  spareOrgId: string;
}

async function createFuzzWorld(): Promise<FuzzWorld> {
  return { ...(await createWorld("fuzz")), spareOrgId: (await createTenant()).organization.id };
}

/** fill(), but an admin route on an organization gets the spare one. */
const fillSparing = (path: string, w: FuzzWorld) => fill(path, w, /^\/api\/v1\/admin\/organizations\/\{id\}/.test(path) ? w.spareOrgId : undefined);

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

let w: FuzzWorld;
let ops: Operation[];

beforeAll(async () => {
  w = await createFuzzWorld();
  // The JSON bodies; the report parsers are fuzzed through their own formats below.
  ops = (await operations()).filter((o) => o.schema && o.path !== "/api/v1/results/ingest");
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
        const key = keyFor(op, w);
        const base = realize(fullExample(op.schema), w);
        const minimal = withIds(op, w);
        const input = fc.oneof(
          { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 4 }).map((v) => JSON.stringify(v) ?? "null") },
          { weight: 3, arbitrary: fc.tuple(fc.boolean(), fc.array(mutationArb, { minLength: 1, maxLength: 3 })).map(([full, ms]) => mutate(full ? base : minimal, ms)) },
        );
        const failure = await check(`${op.method} ${op.path}`, input, RUNS_PER_ENDPOINT, (text) =>
          call(fillSparing(op.path, w), { method: op.method, key, body: text, headers: { "content-type": "application/json" } }),
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
