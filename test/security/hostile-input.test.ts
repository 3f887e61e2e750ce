import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { call, type CallResult } from "../helpers/http";
import { createTenant, type Tenant } from "../helpers/factories";
import { streamOf } from "../helpers/reports";
import {
  type Operation,
  type Surface,
  type World,
  createWorld as createWorldFor,
  exampleFor,
  fieldOf,
  fill,
  keyFor,
  operations,
  realize,
  setAt,
  single,
  withIds,
} from "../helpers/schema-walk";
import ctrf from "../fixtures/ctrf.json?raw";
import junitSurefire from "../fixtures/junit-surefire.xml?raw";
import playwright from "../fixtures/playwright.json?raw";

/**
 * Hostile input over the route table (issue 14, cases 5, 6, 7 and the input part of 9): bodies
 * over their limits, nesting and arrays over their caps, malformed JSON and XML with entity
 * declarations, wrong types in every documented field of the write routes CI calls, and
 * artifact names that are paths. Each refusal must come in the surface's own envelope and
 * leave nothing behind, which a snapshot of every D1 table and of R2 shows.
 */

const MiB = 1024 * 1024;
const JSON_LIMIT = MiB;
const RESULTS_LIMIT = 32 * MiB;
const REPORT_LIMIT = 100 * MiB;
/** Submissions of results have their own, larger limit (src/http/body-limit.ts). */
const RESULTS_SUBMISSION = /^\/api(\/v1\/testruns\/\{id\}\/results|\/tests)$/;
/** Routes whose body is a report, not a JSON document of the route's own schema. */
const REPORT_ROUTES = new Set(["/api/v1/results/ingest"]);

/** Its webhook listens for an event these tests never cause: no delivery is written while a snapshot is compared. */
const createWorld = () => createWorldFor("hostile", ["release.released.v1"]);

interface Leaf {
  path: (string | number)[];
  schema: any;
}

/** Every documented field of a body, nested objects and the first item of arrays included. */
function leaves(schema: any, path: (string | number)[] = [], out: Leaf[] = [], depth = 0): Leaf[] {
  const s = single(schema);
  if (!s || depth > 5) return out;
  if (s.properties) {
    for (const [name, child] of Object.entries<any>(s.properties)) {
      const resolved = single(child);
      out.push({ path: [...path, name], schema: resolved });
      if (resolved) leaves(resolved, [...path, name], out, depth + 1);
    }
  } else if (s.type === "array" && s.items) {
    const item = single(s.items);
    if (item?.properties) leaves(item, [...path, 0], out, depth + 1);
  }
  return out;
}

/**
 * Makes the objects and arrays on the way to `path` that the body lacks, each from its own
 * documented example, so that only the field at `path` is wrong.
 */
function prepare(schema: any, body: any, path: (string | number)[], w: World): any {
  let s = single(schema);
  let at = body;
  for (let i = 0; i < path.length - 1 && s; i++) {
    const key = path[i]!;
    s = single(typeof key === "number" ? s.items : s.properties?.[key]);
    if (at[key] === null || typeof at[key] !== "object") at[key] = realize(exampleFor(s), w) ?? (typeof path[i + 1] === "number" ? [] : {});
    if (typeof path[i + 1] === "number" && Array.isArray(at[key]) && at[key].length === 0 && s?.items) at[key].push(realize(exampleFor(s.items), w));
    at = at[key];
  }
  return body;
}

/** The error code in the surface's envelope (plan and suite triggers carry a sentence only). */
function errorCode(res: CallResult, surface: Surface): string | undefined {
  switch (surface) {
    case "native":
      return res.body?.error;
    case "reporting":
      return res.body?.error?.code;
    case "plan-trigger":
      return typeof res.body?.error === "string" ? "sentence" : undefined;
    case "suite-trigger":
      return typeof res.body?.detail === "string" ? "sentence" : undefined;
  }
}

const CODES: Record<string, Record<Surface, string>> = {
  invalid: { native: "invalid_request", reporting: "VALIDATION_ERROR", "plan-trigger": "sentence", "suite-trigger": "sentence" },
  too_large: { native: "payload_too_large", reporting: "PAYLOAD_TOO_LARGE", "plan-trigger": "sentence", "suite-trigger": "sentence" },
};

function expectRefused(res: CallResult, op: Operation, what: string, field?: string): void {
  const label = `${op.method} ${op.path} ${what}: ${res.text.slice(0, 300)}`;
  expect([400, 422], label).toContain(res.status);
  expect(errorCode(res, op.surface), label).toBe(CODES.invalid![op.surface]);
  if (field !== undefined && (op.surface === "native" || op.surface === "reporting")) expect(fieldOf(res, op.surface), label).toBe(field);
}

/** Runs an assertion and keeps its failure, so one run of a walk lists every problem at once. */
function soft(problems: string[], assertion: () => void): void {
  try {
    assertion();
  } catch (err) {
    problems.push((err as Error).message.split("\n")[0]!);
  }
}

/** Columns that requests change without writing anything of the caller's (last use, the outbox). */
const VOLATILE = new Set(["last_used_at", "claimed_at", "dispatched_at"]);

/** Every row of every table and every R2 key, to show that a refused request wrote nothing. */
async function snapshot(): Promise<Map<string, string>> {
  const tables = await env.DB.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all<{ name: string }>();
  const out = new Map<string, string>();
  for (const { name } of tables.results) {
    if (name.startsWith("sqlite_") || name.startsWith("_cf_") || name === "d1_migrations") continue;
    const rows = await env.DB.prepare(`SELECT * FROM "${name}"`).all<Record<string, unknown>>();
    out.set(name, JSON.stringify(rows.results.map((r) => Object.fromEntries(Object.entries(r).filter(([k]) => !VOLATILE.has(k))))));
  }
  const keys: string[] = [];
  let cursor: string | undefined;
  do {
    const listed = await env.ARTIFACTS.list({ cursor });
    keys.push(...listed.objects.map((o) => o.key));
    cursor = listed.truncated ? listed.cursor : undefined;
  } while (cursor);
  out.set("r2", JSON.stringify(keys));
  return out;
}

/** The tables (and "r2") whose content differs between two snapshots. */
function changed(before: Map<string, string>, after: Map<string, string>): string[] {
  return [...after.keys()].filter((k) => before.get(k) !== after.get(k));
}

const json = { "content-type": "application/json" };

/** A body of `total` bytes ('{"pad":"yyy…') made only as it is read; `sent` counts what was made. */
function lazyBody(total: number, counter: { sent: number }, head = '{"pad":"', piece = 64 * 1024): ReadableStream<Uint8Array> {
  const start = new TextEncoder().encode(head);
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      if (counter.sent >= total) return controller.close();
      const chunk = new Uint8Array(Math.min(piece, total - counter.sent)).fill(0x79);
      if (counter.sent === 0) chunk.set(start.subarray(0, chunk.byteLength));
      counter.sent += chunk.byteLength;
      controller.enqueue(chunk);
    },
  });
}

let w: World;
let ops: Operation[];
let jsonWrites: Operation[];

beforeAll(async () => {
  w = await createWorld();
  ops = await operations();
  jsonWrites = ops.filter((o) => o.schema && !REPORT_ROUTES.has(o.path));
});

describe("case 5: bodies over their limits", () => {
  const limitOf = (op: Operation) => (op.method === "POST" && RESULTS_SUBMISSION.test(op.path) ? RESULTS_LIMIT : JSON_LIMIT);

  function expectTooLarge(res: CallResult, op: Operation, limit: number, what: string): void {
    const label = `${op.method} ${op.path} ${what}: ${res.text.slice(0, 200)}`;
    expect(res.status, label).toBe(413);
    expect(errorCode(res, op.surface), label).toBe(CODES.too_large![op.surface]);
    if (op.surface === "native") expect(res.body.details.max_bytes, label).toBe(limit);
    if (op.surface === "reporting") expect(res.body.error.details.maxBytes, label).toBe(limit);
  }

  it("every JSON write route refuses a body over its limit declared by Content-Length, before reading it", { timeout: 120_000 }, async () => {
    expect(jsonWrites.length).toBeGreaterThan(30);
    const before = await snapshot();
    const big = `{"pad":"${"y".repeat(JSON_LIMIT)}"}`;
    for (const op of jsonWrites) {
      const limit = limitOf(op);
      if (limit === JSON_LIMIT) {
        // A real body of that size: its Content-Length is the Request's own.
        const whole = await call(fill(op.path, w), { method: op.method, key: keyFor(op, w), body: big, headers: json });
        expectTooLarge(whole, op, limit, "(1 MB + 9 bytes)");
      }
      // A body that is made only as it is read: a route that read it first would pull it all.
      const counter = { sent: 0 };
      const declared = await call(fill(op.path, w), {
        method: op.method,
        key: keyFor(op, w),
        body: lazyBody(limit + 1, counter),
        headers: { ...json, "content-length": String(limit + 1) },
      });
      expectTooLarge(declared, op, limit, "(declared)");
      expect(counter.sent, `${op.method} ${op.path} read before refusing`).toBeLessThanOrEqual(128 * 1024);
    }
    expect(changed(before, await snapshot())).toEqual([]);
  });

  it("every JSON write route refuses a body streamed without Content-Length once it passes the limit", { timeout: 180_000 }, async () => {
    const before = await snapshot();
    for (const op of jsonWrites) {
      const limit = limitOf(op);
      const counter = { sent: 0 };
      const res = await call(fill(op.path, w), { method: op.method, key: keyFor(op, w), body: lazyBody(limit * 4, counter), headers: json });
      expectTooLarge(res, op, limit, "(streamed)");
      // Read up to the limit and a piece or two beyond, never the whole body.
      expect(counter.sent, `${op.method} ${op.path}`).toBeLessThanOrEqual(limit + 256 * 1024);
    }
    expect(changed(before, await snapshot())).toEqual([]);
  });

  it("POST /results/ingest refuses over 100 MB: from Content-Length before reading, and while streaming", { timeout: 240_000 }, async () => {
    const t = await createTenant();
    const before = await snapshot();
    const head = `<?xml version="1.0"?>\n<testsuites><testsuite name="s"><testcase name="t"><system-out>`;
    const counter = { sent: 0 };
    const declared = await call(`/api/v1/results/ingest?project_id=${t.project.id}`, {
      method: "POST",
      key: t.key,
      body: lazyBody(REPORT_LIMIT + 1, counter, head),
      headers: { "content-type": "application/xml", "content-length": String(REPORT_LIMIT + 1) },
    });
    expect(declared.status, declared.text).toBe(413);
    expect(declared.body).toMatchObject({ error: "payload_too_large", details: { max_bytes: REPORT_LIMIT } });
    expect(counter.sent).toBeLessThanOrEqual(128 * 1024);

    const streamed = { sent: 0 };
    const res = await call(`/api/v1/results/ingest?project_id=${t.project.id}`, {
      method: "POST",
      key: t.key,
      body: lazyBody(REPORT_LIMIT + 4 * MiB, streamed, head, MiB),
      headers: { "content-type": "application/xml" },
    });
    expect(res.status, res.text).toBe(413);
    expect(res.body.error).toBe("payload_too_large");
    expect(streamed.sent).toBeLessThanOrEqual(REPORT_LIMIT + 2 * MiB);
    // What was staged of it in R2 is gone again, and no ingest or run was left.
    expect(changed(before, await snapshot())).toEqual([]);
  });

  it("PUT /ingests/{id}/parts/{n} refuses a part over 100 MB: declared, and while streaming", { timeout: 240_000 }, async () => {
    const t = await createTenant();
    const opened = await call("/api/v1/ingests", { method: "POST", key: t.key, body: { project_id: t.project.id } });
    expect(opened.status).toBe(201);
    const before = await snapshot();
    const counter = { sent: 0 };
    const declared = await call(`/api/v1/ingests/${opened.body.id}/parts/1`, {
      method: "PUT",
      key: t.key,
      body: lazyBody(REPORT_LIMIT + 1, counter, "<testsuites>"),
      headers: { "content-type": "application/octet-stream", "content-length": String(REPORT_LIMIT + 1) },
    });
    expect(declared.status, declared.text).toBe(413);
    expect(declared.body.error).toBe("payload_too_large");
    expect(counter.sent).toBeLessThanOrEqual(128 * 1024);

    const streamed = { sent: 0 };
    const res = await call(`/api/v1/ingests/${opened.body.id}/parts/1`, {
      method: "PUT",
      key: t.key,
      body: lazyBody(REPORT_LIMIT + 4 * MiB, streamed, "<testsuites>", MiB),
      headers: { "content-type": "application/octet-stream" },
    });
    expect(res.status, res.text).toBe(413);
    expect(streamed.sent).toBeLessThanOrEqual(REPORT_LIMIT + 2 * MiB);
    expect(changed(before, await snapshot())).toEqual([]);
    expect((await call(`/api/v1/ingests/${opened.body.id}`, { key: t.key })).body.parts).toEqual([]);
  });
});

describe("case 5: nesting and arrays over their caps", () => {
  /** 100,000 levels: well within 1 MB, far beyond any depth a handler may recurse to. */
  const DEPTH = 100_000;
  const deepObject = `${'{"a":'.repeat(DEPTH)}1${"}".repeat(DEPTH)}`;
  const deepArray = `${"[".repeat(DEPTH)}${"]".repeat(DEPTH)}`;
  const PLACEHOLDER = '"__deep__"';

  it("every documented field of every JSON write route refuses a value nested 100,000 deep with 400/422, never 500", { timeout: 180_000 }, async () => {
    const before = await snapshot();
    const problems: string[] = [];
    let tried = 0;
    for (const op of jsonWrites) {
      const fields = Object.keys(single(op.schema)?.properties ?? {});
      for (const field of fields) {
        const s = single(single(op.schema).properties[field]);
        // An object of fixed keys drops an unknown key ("a") with what is under it: only arrays can nest there.
        const fixedKeys = s?.type === "object" && s.properties && s.additionalProperties === undefined;
        for (const deep of fixedKeys ? [deepArray] : [deepObject, deepArray]) {
          const body = setAt(withIds(op, w) ?? {}, [field], "__deep__");
          const text = JSON.stringify(body).replace(PLACEHOLDER, deep);
          const res = await call(fill(op.path, w), { method: op.method, key: keyFor(op, w), body: text, headers: json });
          tried++;
          if (![400, 422].includes(res.status) || errorCode(res, op.surface) !== CODES.invalid![op.surface]) {
            problems.push(`${op.method} ${op.path} ${field} nested ${deep[0]}: ${res.status} ${res.text.slice(0, 150)}`);
          }
        }
      }
    }
    expect(problems).toEqual([]);
    expect(tried).toBeGreaterThan(100);
    expect(changed(before, await snapshot())).toEqual([]);
  });

  it("an unknown field nested 100,000 deep never answers 500", { timeout: 120_000 }, async () => {
    for (const op of jsonWrites) {
      const body = { ...withIds(op, w), zz_unknown: "__deep__" };
      const text = JSON.stringify(body).replace(PLACEHOLDER, deepObject);
      const res = await call(fill(op.path, w), { method: op.method, key: keyFor(op, w), body: text, headers: json });
      expect(res.status, `${op.method} ${op.path}: ${res.text.slice(0, 200)}`).toBeLessThan(500);
    }
  });

  it("every documented array one item over its cap, and every string one character over its length, is refused naming the field", { timeout: 120_000 }, async () => {
    const before = await snapshot();
    const problems: string[] = [];
    let arrays = 0;
    let strings = 0;
    for (const op of jsonWrites) {
      for (const leaf of leaves(op.schema)) {
        const s = leaf.schema;
        if (!s) continue;
        let value: unknown;
        if (s.type === "array" && typeof s.maxItems === "number") {
          const items = single(s.items);
          const item = realize(exampleFor(items), w);
          // Distinct items, each valid: enum values in turn, other strings numbered.
          const nth = (i: number) => (items?.enum ? items.enum[i % items.enum.length] : typeof item === "string" ? `${item}${i}` : structuredClone(item));
          value = Array.from({ length: s.maxItems + 1 }, (_, i) => nth(i));
          arrays++;
        } else if (s.type === "string" && typeof s.maxLength === "number" && s.maxLength < JSON_LIMIT / 2 && !s.enum && !s.format && !s.pattern) {
          // (Output fields of up to 8 MB are over every limit but the results routes' own; case 5 covers sizes.)
          value = "x".repeat(s.maxLength + 1);
          strings++;
        } else continue;
        const body = setAt(prepare(op.schema, withIds(op, w), leaf.path, w), leaf.path, value);
        const res = await call(fill(op.path, w), { method: op.method, key: keyFor(op, w), body });
        soft(problems, () => expectRefused(res, op, `${leaf.path.join(".")} over its cap`, leaf.path.join(".")));
      }
    }
    expect(problems).toEqual([]);
    expect(arrays).toBeGreaterThan(10);
    expect(strings).toBeGreaterThan(30);
    expect(changed(before, await snapshot())).toEqual([]);
  });

  it("a results submission of 1,001 results, or steps 33 deep, is refused with the path", async () => {
    const run = await call("/api/v1/testruns", { method: "POST", key: w.key, body: { project_id: w.project.id } });
    const before = await snapshot();
    const result = { title: "t", status: "passed", duration: 1 };
    const many = await call(`/api/v1/testruns/${run.body.id}/results`, { method: "POST", key: w.key, body: { results: Array(1001).fill(result) } });
    expect(many.status, many.text.slice(0, 300)).toBe(400);
    expect(many.body.details).toMatchObject({ field: "results", reason: "too_many" });

    let step: any = { title: "leaf" };
    for (let i = 0; i < 32; i++) step = { title: `level ${32 - i}`, steps: [step] };
    const deep = await call(`/api/v1/testruns/${run.body.id}/results`, { method: "POST", key: w.key, body: { results: [{ ...result, steps: [step] }] } });
    expect(deep.status, deep.text.slice(0, 300)).toBe(400);
    expect(deep.body.details.field).toBe(`results.0.steps.0${".steps.0".repeat(32)}`);

    // 100,000 levels of steps: walked with a stack, refused like 33.
    const deeper = `{"results":[{"title":"t","status":"passed","duration":1,"steps":[${'{"title":"s","steps":['.repeat(DEPTH)}${"]}".repeat(DEPTH)}]}]}`;
    const res = await call(`/api/tests`, {
      method: "POST",
      key: w.key,
      body: deeper.replace('{"results":[{', `{"runId":"${run.body.id}","projectId":"${w.project.id}","fullTitle":"t",`).replace(/\}\]\}$/, "}"),
      headers: json,
    });
    expect(res.status, res.text.slice(0, 300)).toBe(400);
    expect(res.body.error.details.field).toMatch(/^steps\.0(\.steps\.0){32}$/);
    expect(changed(before, await snapshot())).toEqual([]);
  });
});

describe("case 6: malformed JSON and hostile XML", () => {
  const MALFORMED = ['{"name": "x"', "{nope", '{"a": 1}}', "{'a': 1}", '{"a": [1,]}', '{"a": NaN}', '{"a": 01}', '{"a": "\u0000"', "\u0000", '{"a": 1} {"b": 2}'];

  it("every JSON write route refuses malformed JSON with 400 in its envelope, writing nothing", { timeout: 120_000 }, async () => {
    const before = await snapshot();
    for (const op of jsonWrites) {
      for (const text of MALFORMED) {
        const res = await call(fill(op.path, w), { method: op.method, key: keyFor(op, w), body: text, headers: json });
        const label = `${op.method} ${op.path} ${JSON.stringify(text)}: ${res.text.slice(0, 200)}`;
        expect(res.status, label).toBe(400);
        expect(errorCode(res, op.surface), label).toBe(CODES.invalid![op.surface]);
        if (op.surface === "native") expect(res.body.message, label).toBe("The request body is not valid JSON.");
        if (op.surface === "reporting") expect(res.body.error.message, label).toBe("The request body is not valid JSON");
      }
    }
    expect(changed(before, await snapshot())).toEqual([]);
  });

  function ingest(t: Tenant, body: string | ReadableStream<Uint8Array>, contentType = "application/xml", query = "") {
    return call(`/api/v1/results/ingest?project_id=${t.project.id}${query}`, { method: "POST", key: t.key, body, headers: { "content-type": contentType } });
  }

  const lol = () => {
    const levels = ['<!ENTITY lol "lol">'];
    for (let i = 1; i <= 9; i++) levels.push(`<!ENTITY lol${i} "${`&lol${i === 1 ? "" : i - 1};`.repeat(10)}">`);
    return `<?xml version="1.0"?>\n<!DOCTYPE lolz [\n${levels.join("\n")}\n]>\n<testsuite name="&lol9;"><testcase name="&lol9;"/></testsuite>`;
  };
  const HOSTILE_XML: [string, string][] = [
    ["billion laughs", lol()],
    ["an external entity", `<?xml version="1.0"?>\n<!DOCTYPE t [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n<testsuite><testcase name="&xxe;"/></testsuite>`],
    ["an external entity over http", `<!DOCTYPE t [<!ENTITY xxe SYSTEM "https://receiver.test/ok/xxe">]><testsuite><testcase name="&xxe;"/></testsuite>`],
    ["a parameter entity", `<!DOCTYPE t [<!ENTITY % p SYSTEM "https://receiver.test/ok/dtd"> %p;]><testsuite><testcase name="x"/></testsuite>`],
    ["an external DTD", `<?xml version="1.0"?><!DOCTYPE testsuite SYSTEM "https://receiver.test/ok/junit.dtd"><testsuite><testcase name="x"/></testsuite>`],
    ["a DOCTYPE after a comment and a PI", `<?xml version="1.0"?><!-- c --><?pi x?>\n<!DOCTYPE t [<!ENTITY e "EXPANDED">]><testsuite><testcase name="&e;"/></testsuite>`],
    ["a bare ENTITY declaration", `<!ENTITY e "EXPANDED"><testsuite><testcase name="&e;"/></testsuite>`],
    ["a DOCTYPE after a byte order mark", `\uFEFF<!DOCTYPE t [<!ENTITY e "EXPANDED">]><testsuite><testcase name="&e;"/></testsuite>`],
  ];

  it("refuses XML with a DOCTYPE or entity declarations with 400, sent as XML, as text and streamed, expanding nothing", { timeout: 120_000 }, async () => {
    const t = await createTenant();
    const before = await snapshot();
    for (const [what, xml] of HOSTILE_XML) {
      for (const [how, send] of [
        ["application/xml", () => ingest(t, xml)],
        ["text/plain", () => ingest(t, xml, "text/plain")],
        ["streamed in 7-byte pieces", () => ingest(t, streamOf(xml, 7))],
        ["?format=junit", () => ingest(t, xml, "application/octet-stream", "&format=junit")],
      ] as const) {
        const started = performance.now();
        const res = await send();
        const label = `${what} (${how}): ${res.text.slice(0, 300)}`;
        expect(res.status, label).toBe(400);
        expect(res.body.error, label).toBe("invalid_request");
        expect(res.body.details.reason, label).toBe("doctype");
        expect(res.text, label).not.toMatch(/lollol|EXPANDED|root:/);
        expect(performance.now() - started, label).toBeLessThan(2_000);
      }
    }
    expect(changed(before, await snapshot())).toEqual([]);
  });

  it("refuses a DOCTYPE in a chunked upload: the ingest fails, no run or result is kept, nothing is expanded", { timeout: 90_000 }, async () => {
    const t = await createTenant();
    const opened = await call("/api/v1/ingests", { method: "POST", key: t.key, body: { project_id: t.project.id, content_type: "application/xml" } });
    expect(opened.status).toBe(201);
    const xml = `<?xml version="1.0"?>\n<!DOCTYPE t [<!ENTITY e "EXPANDED">]>\n<testsuite><testcase name="&e;"/></testsuite>`;
    const put = await call(`/api/v1/ingests/${opened.body.id}/parts/1`, { method: "PUT", key: t.key, body: xml, headers: { "content-type": "application/octet-stream" } });
    expect(put.status, put.text).toBe(200);
    const completed = await call(`/api/v1/ingests/${opened.body.id}/complete`, { method: "POST", key: t.key });
    // Refused when completing (the head is checked) or when processed in the background.
    if (completed.status === 202) {
      const until = Date.now() + 60_000;
      let state = completed.body;
      while (state.status !== "done" && state.status !== "failed" && Date.now() < until) {
        await new Promise((r) => setTimeout(r, 200));
        state = (await call(`/api/v1/ingests/${opened.body.id}`, { key: t.key })).body;
      }
      expect(state.status, JSON.stringify(state)).toBe("failed");
      expect(state.error.details.reason).toBe("doctype");
    } else {
      expect(completed.status, completed.text).toBe(400);
      expect(completed.body.details.reason).toBe("doctype");
    }
    const rows = await env.DB.prepare("SELECT (SELECT count(*) FROM results WHERE project_id = ?1) + (SELECT count(*) FROM test_cases WHERE project_id = ?1) AS n")
      .bind(t.project.id)
      .first<{ n: number }>();
    expect(rows!.n).toBe(0);
    const runs = await call(`/api/v1/testruns?project_id=${t.project.id}`, { key: t.key });
    expect(runs.text).not.toContain("EXPANDED");
    expect(runs.body.data.every((r: any) => r.total_tests === 0)).toBe(true);
  });

  it("refuses truncated JUnit, Playwright and CTRF reports with 400 and a position, writing nothing", { timeout: 120_000 }, async () => {
    const t = await createTenant();
    const before = await snapshot();
    const cases: [string, string, string][] = [];
    for (const fraction of [0.1, 0.5, 0.9]) {
      cases.push(["junit", junitSurefire.slice(0, Math.floor(junitSurefire.length * fraction)), "application/xml"]);
      cases.push(["playwright", playwright.slice(0, Math.floor(playwright.length * fraction)), "application/json"]);
      cases.push(["ctrf", ctrf.slice(0, Math.floor(ctrf.length * fraction)), "application/json"]);
    }
    for (const [format, text, type] of cases) {
      for (const body of [text, streamOf(text, 13)]) {
        const res = await ingest(t, body, type, `&format=${format}`);
        const label = `${format} cut at ${text.length}: ${res.text.slice(0, 300)}`;
        expect(res.status, label).toBe(400);
        expect(res.body.error, label).toBe("invalid_request");
        expect(res.body.message, label).toMatch(/line \d+, column \d+/);
      }
    }
    expect(changed(before, await snapshot())).toEqual([]);
  });
});

describe("case 7: wrong types in the write routes CI calls", () => {
  const TARGETS = [
    "POST /api/v1/testruns/{id}/results",
    "POST /api/tests",
    "POST /api/v1/testruns",
    "PATCH /api/v1/testruns/{id}",
    "POST /api/runs",
    "PATCH /api/runs/{id}",
    "POST /api/v1/builds",
    "PATCH /api/v1/builds/{id}",
  ];
  const RAW = "__raw__";

  interface Variant {
    what: string;
    value: unknown;
    /** A JSON token written into the body as is (numbers JSON.stringify cannot write). */
    raw?: string;
    /** Malformed JSON: refused as the body, not as the field. */
    body?: boolean;
  }

  /** Values of the wrong type, or of the right type beyond what the field's schema allows. */
  function wrongValues(s: any): Variant[] {
    const out: Variant[] = [];
    if (s.type === "integer" || s.type === "number") {
      out.push({ what: "a string", value: "12" }, { what: "a boolean", value: true }, { what: "an object", value: {} });
      out.push({ what: "NaN", value: RAW, raw: "NaN", body: true });
      out.push({ what: "1e309", value: RAW, raw: "1e309" });
      out.push({ what: "-1e309", value: RAW, raw: "-1e309" });
      out.push({ what: "2^53 + 1", value: RAW, raw: "9007199254740993" });
      if (typeof s.minimum === "number" && s.minimum >= 0) out.push({ what: "a negative count", value: -1 });
      if (s.type === "integer") out.push({ what: "a fraction", value: 1.5 });
    } else if (s.type === "string") {
      out.push({ what: "a number", value: 12 }, { what: "a boolean", value: false }, { what: "an array", value: ["x"] }, { what: "an object", value: { a: "x" } });
      if (s.enum) out.push({ what: "an unknown value", value: "bogus-value" });
    } else if (s.type === "boolean") {
      out.push({ what: "a string", value: "true" }, { what: "a number", value: 1 });
    } else if (s.type === "array") {
      out.push({ what: "a string", value: "x" }, { what: "an object", value: { 0: "x" } });
    } else if (s.type === "object") {
      out.push({ what: "a string", value: "x" }, { what: "an array", value: [] });
    }
    return out;
  }

  async function tryVariants(
    op: Operation,
    send: (text: string) => Promise<CallResult>,
    base: any,
    schema: any,
    world: World,
    prefix: (string | number)[] = [],
  ): Promise<number> {
    const problems: string[] = [];
    const fields = leaves(prefix.length > 0 ? single(single(schema).properties[prefix[0]!].items) : schema);
    let tried = 0;
    for (const leaf of fields) {
      if (!leaf.schema) continue;
      for (const variant of wrongValues(leaf.schema)) {
        // Documented: "a bare number is taken as its digits" (CI systems interpolate run numbers).
        if (leaf.path.at(-1) === "build_number" && variant.what === "a number") continue;
        const body = setAt(prepare(schema, structuredClone(base), [...prefix, ...leaf.path], world), [...prefix, ...leaf.path], variant.value);
        let text = JSON.stringify(body);
        if (variant.raw) text = text.replace(`"${RAW}"`, variant.raw);
        const res = await send(text);
        tried++;
        const path = [...prefix, ...leaf.path].join(".");
        soft(problems, () => {
          if (variant.body && op.path === "/api/v1/results/ingest") {
            // A report's syntax errors carry their position rather than a field.
            expectRefused(res, op, `${path} as ${variant.what}`);
            expect(res.body.details.reason, `${path} as ${variant.what}`).toBe("malformed");
          } else expectRefused(res, op, `${path} as ${variant.what}`, variant.body ? "body" : path);
        });
      }
    }
    expect(problems).toEqual([]);
    return tried;
  }

  it("every documented field refuses wrong types, NaN, 1e309, integers above 2^53 and negative counts, naming the field", { timeout: 120_000 }, async () => {
    const t = await createWorld();
    const before = await snapshot();
    let tried = 0;
    for (const target of TARGETS) {
      const op = ops.find((o) => `${o.method} ${o.path}` === target);
      expect(op, target).toBeDefined();
      const base = withIds(op!, t);
      const send = (text: string) => call(fill(op!.path, t), { method: op!.method, key: t.key, body: text, headers: json });
      const n = await tryVariants(op!, send, base, op!.schema, t);
      expect(n, target).toBeGreaterThan(5);
      tried += n;
    }
    expect(tried).toBeGreaterThan(300);
    expect(changed(before, await snapshot())).toEqual([]);
  });

  it("a native JSON report refuses the same wrong values in its results, naming the result and the field", { timeout: 120_000 }, async () => {
    const t = await createWorld();
    const submit = ops.find((o) => o.method === "POST" && o.path === "/api/v1/testruns/{id}/results")!;
    const itemSchema = single(single(submit.schema).properties.results.items);
    const op: Operation = { method: "POST", path: "/api/v1/results/ingest", access: "results:submit", surface: "native", schema: undefined, query: [] };
    const before = await snapshot();
    const send = (text: string) =>
      call(`/api/v1/results/ingest?project_id=${t.project.id}`, { method: "POST", key: t.key, body: text, headers: json });
    const base = { results: [exampleFor(itemSchema)] };
    const n = await tryVariants(op, send, base, single(submit.schema), t, ["results", 0]);
    expect(n).toBeGreaterThan(30);
    expect(changed(before, await snapshot())).toEqual([]);
  });

  it("JUnit, Playwright and CTRF reports refuse durations and counts that are text, infinite, above 2^53 or negative", async () => {
    const t = await createTenant();
    const before = await snapshot();
    const junit = (attrs: string) => `<testsuites ${attrs.startsWith("tests") ? attrs : ""}><testsuite name="s"><testcase name="t" ${attrs.startsWith("tests") ? "" : attrs}/></testsuite></testsuites>`;
    const cases: [string, string, string, string][] = [
      ["junit time as text", junit('time="abc"'), "application/xml", "time"],
      ["junit time NaN", junit('time="NaN"'), "application/xml", "time"],
      ["junit time 1e309", junit('time="1e309"'), "application/xml", "time"],
      ["junit time negative", junit('time="-1"'), "application/xml", "time"],
      ["junit time above 2^53 ms", junit('time="9007199254740993"'), "application/xml", "duration"],
      ["junit line above 2^53", junit('line="9007199254740993"'), "application/xml", "lineNumber"],
      ["junit tests negative", junit('tests="-1"'), "application/xml", "tests"],
      ["junit tests 1e309", junit('tests="1e309"'), "application/xml", "tests"],
    ];
    const ctrfWith = (duration: string) =>
      `{"results":{"tool":{"name":"t"},"summary":{"tests":1},"tests":[{"name":"n","status":"passed","duration":${duration}}]}}`;
    for (const [what, raw] of [["text", '"12"'], ["NaN", "NaN"], ["1e309", "1e309"], ["negative", "-5"], ["above 2^53", "9007199254740993"]]) {
      cases.push([`ctrf duration ${what}`, ctrfWith(raw!), "application/json", "duration"]);
      const pw = JSON.parse(playwright);
      const spec = pw.suites[0].specs?.[0] ?? pw.suites[0].suites[0].specs[0];
      spec.tests[0].results[0].duration = "__raw__";
      cases.push([`playwright duration ${what}`, JSON.stringify(pw).replace('"__raw__"', raw!), "application/json", "duration"]);
    }
    for (const [what, body, type, field] of cases) {
      const res = await call(`/api/v1/results/ingest?project_id=${t.project.id}`, { method: "POST", key: t.key, body, headers: { "content-type": type } });
      const label = `${what}: ${res.text.slice(0, 300)}`;
      expect([400, 422], label).toContain(res.status);
      expect(res.body.error, label).toBe("invalid_request");
      if (what.includes("NaN") && type === "application/json") expect(res.body.details.reason, label).toBe("malformed");
      else expect(res.body.details.field, label).toBe(field);
    }
    expect(changed(before, await snapshot())).toEqual([]);
  });
});

describe("case 9 (input): artifact names that are too long or paths", () => {
  const PNG = Uint8Array.from(atob("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="), (c) => c.charCodeAt(0));
  const NAMES: [string, string][] = [
    ["1,025 ASCII bytes", `${"a".repeat(1021)}.png`],
    ["4,000 ASCII bytes", `${"a".repeat(3996)}.png`],
    ["1,200 bytes of two-byte letters", `${"é".repeat(598)}.png`],
    ["1,028 bytes of emoji", `${"🧪".repeat(256)}.png`],
    ["a parent directory", "../x.png"],
    ["deep parent directories", "../../../../etc/passwd"],
    ["a Windows parent directory", "..\\..\\x.png"],
    ["an absolute path", "/etc/passwd"],
    ["a drive path", "C:\\Windows\\x.png"],
    ["a drive-relative name", "C:x.png"],
    ["a directory in the name", "a/b.png"],
    ["dots alone", ".."],
    ["a percent-encoded traversal", "%2e%2e%2fx.png"],
    ["a double-encoded traversal", "%252e%252e%252fx.png"],
    ["an encoded backslash", "..%5cx.png"],
    ["a NUL", "x.png\u0000.exe"],
    ["a right-to-left override", "x\u202Egnp.exe"],
  ];

  function form(fields: [string, string | Uint8Array, string?][]): FormData {
    const f = new FormData();
    for (const [name, value, fileName] of fields) {
      if (typeof value === "string") f.append(name, value);
      else f.append(name, new File([value], fileName!, { type: "image/png" }));
    }
    return f;
  }

  it("POST /artifacts, POST /api/upload and POST /artifacts/uploads refuse each with 400 naming the file, storing nothing", async () => {
    const before = await snapshot();
    for (const [what, name] of NAMES) {
      const native = await call("/api/v1/artifacts", {
        method: "POST",
        key: w.key,
        body: form([["type", "screenshot"], ["run_id", w.runId], ["file", PNG, name]]),
      });
      expect(native.status, `native ${what}: ${native.text}`).toBe(400);
      expect(native.body.details.field, what).toBe("file");

      const reporting = await call("/api/upload", {
        method: "POST",
        key: w.key,
        body: form([["file", PNG, name], ["type", "screenshot"], ["runId", w.runId], ["projectId", w.project.id]]),
      });
      expect(reporting.status, `reporting ${what}: ${reporting.text}`).toBe(400);
      expect(reporting.body.error.code, what).toBe("VALIDATION_ERROR");
      expect(reporting.body.error.details.field, what).toBe("file");

      const opened = await call("/api/v1/artifacts/uploads", { method: "POST", key: w.key, body: { type: "report", run_id: w.runId, file_name: name } });
      expect(opened.status, `uploads ${what}: ${opened.text}`).toBe(400);
      expect(opened.body.error, what).toBe("invalid_request");
    }
    expect(changed(before, await snapshot())).toEqual([]);
  });

  it("a name over 1,024 bytes is refused however far over it is, even past the form's header limit", async () => {
    for (const bytes of [1025, 2048, 7000]) {
      const res = await call("/api/v1/artifacts", {
        method: "POST",
        key: w.key,
        body: form([["type", "screenshot"], ["run_id", w.runId], ["file", PNG, `${"n".repeat(bytes - 4)}.png`]]),
      });
      expect(res.status, `${bytes}: ${res.text}`).toBe(400);
      expect(res.body.error).toBe("invalid_request");
    }
  });
});
