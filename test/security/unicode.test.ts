import { beforeAll, describe, expect, it } from "vitest";
import { call } from "../helpers/http";
import { createTenant } from "../helpers/factories";
import { type Operation, type World, createWorld, fieldOf, fill, idByName, keyFor, operations, single, withIds } from "../helpers/schema-walk";

/**
 * Unicode in and out (issue 14, case 8): text with NUL, lone surrogates, bidirectional overrides,
 * emoji and both normal forms is either stored and returned byte for byte, or refused with 400
 * naming the field; never stored changed. And long search patterns (D1 refuses LIKE patterns
 * over 50 bytes with "LIKE or GLOB pattern too complex") never answer 500 and still find what
 * they name.
 */

const utf8 = (s: string) => Array.from(new TextEncoder().encode(s.toWellFormed()), (b) => b.toString(16).padStart(2, "0")).join(" ");
/** Code units, so a lone surrogate and U+FFFD never look alike in a failure message. */
const units = (s: unknown) => (typeof s === "string" ? Array.from(s, (c) => c.codePointAt(0)!.toString(16)).join(" ") : JSON.stringify(s));

const SAMPLES: [string, string][] = [
  ["a NUL", "nul\u0000inside"],
  ["a lone high surrogate", "half \ud800 pair"],
  ["a lone low surrogate", "\udc00 low first"],
  ["a reversed surrogate pair", "swapped \udc00\ud800"],
  ["a right-to-left override", "invoice\u202Egnp.exe"],
  ["emoji with joiners", "family 👨‍👩‍👧 ✅🧪"],
  ["an NFC é", "caf\u00e9 NFC"],
  ["an NFD é", "cafe\u0301 NFC"],
  ["zero-width characters", "zero\u200Bwidth\uFEFFjoin\u200D"],
  ["astral letters", "𝒳𝒴 𝟘 𐍈"],
  ["CJK and Arabic", "测试 اختبار"],
  ["C0, DEL and C1 controls", "bell\u0007 del\u007f c1\u0085"],
];

/** Fields whose text is not stored as written (ids, URLs, secrets, hashes) or that name other things. */
const NOT_FREE_TEXT = /(^|_)(id|ids|url|email|password|token|secret|sha|domain|type)$|Id$|Ids$|Url$|^(url|events|scopes|role|status|format|content_type|file_name|cookies|tags|app_id|rate_limits)$/;

let w: World;
let ops: Operation[];

beforeAll(async () => {
  w = await createWorld("unicode");
  ops = await operations();
});

describe("case 8: Unicode text is kept byte for byte or refused", () => {
  it("every free-text field of every JSON write route: refused with 400 naming it, or returned and read back unchanged", { timeout: 180_000 }, async () => {
    const writes = ops.filter((o) => o.schema && o.path !== "/api/v1/results/ingest");
    const outcomes: string[] = [];
    const problems: string[] = [];
    let unique = 0;
    let accepted = 0;
    let refused = 0;
    let readBack = 0;
    for (const op of writes) {
      const properties = single(op.schema)?.properties ?? {};
      for (const [field, raw] of Object.entries<any>(properties)) {
        const s = single(raw);
        if (!s || s.type !== "string" || s.enum || s.format || s.pattern || NOT_FREE_TEXT.test(field)) continue;
        if (typeof s.maxLength === "number" && s.maxLength < 30) continue;
        for (const [what, sample] of SAMPLES) {
          const body = { ...withIds(op, w), [field]: sample };
          // Each run its own CI build: shards of one build would answer the first one's metadata.
          for (const ci of ["ci_build_id", "ciBuildId"]) if (ci in body && ci !== field) body[ci] = `unicode-${++unique}`;
          const res = await call(fill(op.path, w), { method: op.method, key: keyFor(op, w), body });
          const label = `${op.method} ${op.path} ${field} with ${what}: ${res.status} ${res.text.slice(0, 200)}`;
          if (res.status >= 500) problems.push(label);
          if (res.status === 400 || res.status === 422) {
            refused++;
            outcomes.push(`${op.method} ${op.path} ${field} ${what}: refused`);
            if ((op.surface === "native" || op.surface === "reporting") && fieldOf(res, op.surface) !== field) problems.push(`${label}: names ${fieldOf(res, op.surface)}`);
            continue;
          }
          if (res.status >= 300) continue;
          accepted++;
          outcomes.push(`${op.method} ${op.path} ${field} ${what}: accepted`);
          // A field the route ignores here answers null (a quarantine reason without quarantining).
          if (res.body && typeof res.body === "object" && field in res.body && res.body[field] !== null && units(res.body[field]) !== units(sample)) {
            problems.push(`${op.method} ${op.path} ${field} with ${what}: answered as ${units(res.body[field])}`);
          }
          // Read it back from where it was stored.
          const getPath = op.method === "PATCH" ? op.path : `${op.path}/{id}`;
          const reader = ops.find((o) => o.method === "GET" && o.path === getPath);
          const id = op.method === "PATCH" ? undefined : res.body?.id;
          if (reader && (op.method === "PATCH" || typeof id === "string")) {
            const got = await call(fill(reader.path, w, id), { key: keyFor(reader, w) });
            if (got.status === 200 && field in got.body && got.body[field] !== null) {
              readBack++;
              if (units(got.body[field]) !== units(sample)) problems.push(`${op.method} ${op.path} ${field} with ${what}: read back as ${utf8(String(got.body[field]))}`);
            }
          }
        }
      }
    }
    expect(problems).toEqual([]);
    expect(accepted).toBeGreaterThan(50);
    expect(refused).toBeGreaterThan(10);
    expect(readBack).toBeGreaterThan(30);
    // NUL and half surrogate pairs cannot all be kept (D1 stores UTF-8): no field may accept them.
    const unclean = outcomes.filter((o) => /(NUL|surrogate)[^:]*: accepted$/.test(o));
    expect(unclean).toEqual([]);
  });

  it("test titles in both normal forms, with emoji and bidi overrides, are two tests and read back unchanged on both surfaces", async () => {
    const run = await call("/api/v1/testruns", { method: "POST", key: w.key, body: { project_id: w.project.id } });
    const titles = ["caf\u00e9 opens", "cafe\u0301 opens", "ships 📦 via 👨‍👩‍👧", "invoice\u202Egnp.exe", "测试 اختبار 𝒳", "tab\tand\u0085c1"];
    const res = await call(`/api/v1/testruns/${run.body.id}/results`, {
      method: "POST",
      key: w.key,
      body: { results: titles.map((title) => ({ title, status: "passed", duration: 1 })) },
    });
    expect(res.status, res.text).toBe(201);
    expect(new Set(res.body.results.map((r: any) => r.test_case_id)).size).toBe(titles.length);
    for (const [i, title] of titles.entries()) {
      const result = res.body.results[i];
      const native = await call(`/api/v1/results/${result.id}`, { key: w.key });
      expect(units(native.body.title), title).toBe(units(title));
      const reporting = await call(`/api/tests/${result.id}`, { key: w.key });
      expect(units(reporting.body.title), title).toBe(units(title));
      const testCase = await call(`/api/v1/testcases/${result.test_case_id}`, { key: w.key });
      expect(units(testCase.body.title), title).toBe(units(title));
    }
    const listed = await call(`/api/v1/testruns/${run.body.id}/results`, { key: w.key });
    expect(listed.body.data.map((r: any) => units(r.title))).toEqual(titles.map(units));
  });

  it("the same titles in a JUnit report are stored unchanged; NUL and half pairs in a native report become U+FFFD, never dropped", async () => {
    const t = await createTenant();
    const titles = ["caf\u00e9 junit", "cafe\u0301 junit", "emoji 🧪✅", "rtl \u202Eabc"];
    const xml = `<?xml version="1.0" encoding="UTF-8"?><testsuite name="s">${titles.map((n) => `<testcase name="${n}" time="0.001"/>`).join("")}</testsuite>`;
    const res = await call(`/api/v1/results/ingest?project_id=${t.project.id}`, { method: "POST", key: t.key, body: xml, headers: { "content-type": "application/xml" } });
    expect(res.status, res.text).toBe(201);
    const listed = await call(`/api/v1/testruns/${res.body.run_id}/results`, { key: t.key });
    expect(listed.body.data.map((r: any) => units(r.title))).toEqual(titles.map(units));

    const native = `{"results":[{"title":"nul \\u0000 and \\ud800 half","status":"passed","duration":1}]}`;
    const ingested = await call(`/api/v1/results/ingest?project_id=${t.project.id}`, { method: "POST", key: t.key, body: native, headers: { "content-type": "application/json" } });
    expect(ingested.status, ingested.text).toBe(201);
    const stored = await call(`/api/v1/testruns/${ingested.body.run_id}/results`, { key: t.key });
    expect(units(stored.body.data[0].title)).toBe(units("nul \uFFFD and \uFFFD half"));
  });
});

describe("case 8: search and filter patterns over D1's 50-byte LIKE limit", () => {
  const PATTERNS: [string, string][] = [
    ["60 ASCII bytes", "a".repeat(60)],
    ["200 ASCII bytes", "b".repeat(200)],
    ["1,000 ASCII bytes", "c".repeat(1000)],
    ["60 bytes of é", "é".repeat(30)],
    ["200 bytes of emoji", "🧪".repeat(50)],
    ["1,002 bytes of CJK", "界".repeat(334)],
    ["60 bytes of wildcards", "%_\\".repeat(20)],
    ["201 bytes of wildcards", "%_\\".repeat(67)],
    ["1,002 bytes of wildcards", "%_\\".repeat(334)],
    ["1,000 percent signs", "%".repeat(1000)],
    ["1,000 underscores", "_".repeat(1000)],
  ];
  const NOT_FILTERS = new Set(["limit", "offset", "sig", "expires", "disposition", "format"]);

  function requiredQuery(op: Operation): Record<string, string> {
    const out: Record<string, string> = {};
    for (const p of op.query) if (p.required) out[p.name] = idByName(p.name, w) ?? "x";
    return out;
  }

  it("every list route with a text filter answers 200 or 400 to 60-, 200- and 1,000-byte patterns, never 500", { timeout: 120_000 }, async () => {
    let routes = 0;
    let tried = 0;
    for (const op of ops.filter((o) => o.method === "GET")) {
      const filters = op.query.filter((p: any) => {
        const s = single(p.schema);
        return s?.type === "string" && !s.enum && !s.format && !NOT_FILTERS.has(p.name) && idByName(p.name, w) === undefined && !/_id$|Id$/.test(p.name);
      });
      if (filters.length === 0) continue;
      routes++;
      for (const filter of filters) {
        for (const [what, pattern] of PATTERNS) {
          const query = new URLSearchParams({ ...requiredQuery(op), [filter.name]: pattern });
          const res = await call(`${fill(op.path, w)}?${query}`, { key: w.key });
          tried++;
          const label = `${op.path}?${filter.name}= ${what}: ${res.status} ${res.text.slice(0, 200)}`;
          expect([200, 400], label).toContain(res.status);
          if (res.status === 400 && (op.surface === "native" || op.surface === "reporting")) expect(fieldOf(res, op.surface), label).toBe(filter.name);
        }
      }
    }
    expect(routes).toBeGreaterThanOrEqual(5);
    expect(tried).toBeGreaterThan(80);
  });

  it("search finds a title by a substring of 60, 200 and 1,000 bytes, and % _ \\ only as themselves", async () => {
    const t = await createTenant();
    const run = await call("/api/v1/testruns", { method: "POST", key: t.key, body: { project_id: t.project.id } });
    const long = `${"ü".repeat(300)} ${"界".repeat(300)} ${"x".repeat(100)}`;
    const titles = ["100% done", "snake_case name", "back\\slash path", "plain title", "100 percent", "snakeXcase name", long];
    const submitted = await call(`/api/v1/testruns/${run.body.id}/results`, {
      method: "POST",
      key: t.key,
      body: { results: titles.map((title) => ({ title, status: "passed", duration: 1 })) },
    });
    expect(submitted.status, submitted.text).toBe(201);
    const searches: [string, string[]][] = [
      ["%", ["100% done"]],
      ["_", ["snake_case name"]],
      ["\\", ["back\\slash path"]],
      ["0% d", ["100% done"]],
      ["e_c", ["snake_case name"]],
      ["%%", []],
      ["ü".repeat(30), [long]],
      ["ü".repeat(100), [long]],
      [`${"ü".repeat(10)} ${"界".repeat(300)}`, [long]],
      ["界".repeat(301), []],
      ["x".repeat(1000), []],
      ["PLAIN TITLE", ["plain title"]],
    ];
    const sorted = (xs: string[]) => [...xs].sort();
    for (const [search, expected] of searches) {
      const q = encodeURIComponent(search);
      const byRun = await call(`/api/v1/testruns/${run.body.id}/results?search=${q}&limit=100`, { key: t.key });
      expect(byRun.status, `run results ${search.slice(0, 20)}: ${byRun.text.slice(0, 200)}`).toBe(200);
      expect(sorted(byRun.body.data.map((r: any) => r.title)), search.slice(0, 20)).toEqual(sorted(expected));
      const cases = await call(`/api/v1/projects/${t.project.id}/testcases?search=${q}&limit=100`, { key: t.key });
      expect(cases.status, `testcases ${search.slice(0, 20)}: ${cases.text.slice(0, 200)}`).toBe(200);
      expect(sorted(cases.body.data.map((r: any) => r.title)), search.slice(0, 20)).toEqual(sorted(expected));
      const reporting = await call(`/api/tests?projectId=${t.project.id}&search=${q}&limit=100`, { key: t.key });
      expect(reporting.status, `reporting ${search.slice(0, 20)}: ${reporting.text.slice(0, 200)}`).toBe(200);
      expect(sorted(reporting.body.data.map((r: any) => r.title)), search.slice(0, 20)).toEqual(sorted(expected));
      expect(reporting.body.total).toBe(expected.length);
    }
  });
});
