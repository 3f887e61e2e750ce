import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { call } from "./helpers/http";
import { createKey, createTenant, type Tenant } from "./helpers/factories";
import ctrf from "./fixtures/ctrf.json?raw";
import junitSurefire from "./fixtures/junit-surefire.xml?raw";
import junitPytest from "./fixtures/junit-pytest.xml?raw";
import playwright from "./fixtures/playwright.json?raw";

function ingest(t: Tenant | string, body: string, options: { query?: string; contentType?: string; headers?: Record<string, string> } = {}) {
  const key = typeof t === "string" ? t : t.key;
  return call(`/api/v1/results/ingest${options.query ?? ""}`, {
    method: "POST",
    key,
    body,
    headers: { "content-type": options.contentType ?? "application/json", ...options.headers },
  });
}

async function count(table: string, where: string, ...binds: unknown[]): Promise<number> {
  return (await env.DB.prepare(`SELECT count(*) AS n FROM ${table} WHERE ${where}`).bind(...binds).first<{ n: number }>())!.n;
}

describe("POST /api/v1/results/ingest", () => {
  it("ingests each format's fixture to counts that match the report's own totals", async () => {
    const cases: [string, string, string][] = [
      ["junit", junitSurefire, "application/xml"],
      ["junit", junitPytest, "text/xml; charset=utf-8"],
      ["playwright", playwright, "application/json"],
      ["ctrf", ctrf, "application/json"],
    ];
    for (const [format, body, contentType] of cases) {
      // A tenant each: fixtures that name the same CI build would otherwise extend one run.
      const t = await createTenant();
      const res = await ingest(t, body, { query: `?project_id=${t.project.id}`, contentType });
      expect(res.status, `${format}: ${res.text.slice(0, 300)}`).toBe(201);
      expect(res.body.format).toBe(format);
      expect(res.body.created_run).toBe(true);
      const totals = res.body.report_totals;
      const run = res.body.run;
      // Every fixture declares its totals: the comparison below is never skipped.
      expect(totals, format).not.toBeNull();
      expect(run.total_tests, format).toBe(res.body.results);
      expect(run.total_tests, format).toBe(totals.tests);
      expect(run.skipped_tests, format).toBe(totals.skipped ?? 0);
      if (format === "junit") expect(run.failed_tests, format).toBe((totals.failed ?? 0) + (totals.errors ?? 0));
      if (format === "playwright") {
        expect(run.flaky_tests).toBe(totals.flaky);
        expect(run.failed_tests).toBe(totals.failed);
        expect(run.passed_tests).toBe(totals.passed);
      } else if (format === "junit") {
        // JUnit declares no passed count: it is what is neither failed, in error nor skipped.
        expect(run.passed_tests + run.flaky_tests).toBe(totals.tests - (totals.failed ?? 0) - (totals.errors ?? 0) - (totals.skipped ?? 0));
      } else {
        // CTRF counts flaky tests among the passed ones.
        expect(run.passed_tests + run.flaky_tests, format).toBe(totals.passed);
      }
      expect(await count("results", "run_id = ?", run.id)).toBe(run.total_tests);
    }
  });

  it("takes run metadata from the query, then X-Greenlight-* headers, then the report", async () => {
    const t = await createTenant();
    const res = await ingest(t, ctrf, {
      query: `?project_id=${t.project.id}&branch=from-query`,
      headers: { "X-Greenlight-Branch": "from-header", "X-Greenlight-Ci-Build-Id": "ci-77", "X-Greenlight-Commit-Sha": "abc123" },
    });
    expect(res.status, res.text).toBe(201);
    expect(res.body.run).toMatchObject({ branch: "from-query", ci_build_id: "ci-77", commit_sha: "abc123" });
    const bad = await ingest(t, ctrf, { query: `?project_id=${t.project.id}`, headers: { "X-Greenlight-Shard-Total": "many" } });
    expect(bad.status).toBe(400);
    expect(bad.body.details).toMatchObject({ field: "X-Greenlight-Shard-Total", location: "header" });
  });

  it("extends a run: by run id, and by project + CI build id", async () => {
    const t = await createTenant();
    const first = await ingest(t, junitPytest, { query: `?project_id=${t.project.id}&ci_build_id=b-1`, contentType: "application/xml" });
    const second = await ingest(t, ctrf, { query: `?project_id=${t.project.id}&ci_build_id=b-1` });
    expect(second.status).toBe(201);
    expect(second.body).toMatchObject({ run_id: first.body.run_id, created_run: false });
    expect(second.body.run.total_tests).toBe(first.body.results + second.body.results);
    const third = await ingest(t, playwright, { query: `?run_id=${first.body.run_id}` });
    expect(third.body).toMatchObject({ run_id: first.body.run_id, created_run: false });
    const elsewhere = await ingest(t, ctrf, { query: `?project_id=${t.project.id}&ci_build_id=b-2` });
    expect(elsewhere.body.run_id).not.toBe(first.body.run_id);
    const other = await createTenant();
    expect((await ingest(other, ctrf, { query: `?run_id=${first.body.run_id}` })).status).toBe(404);
  });

  it("does not duplicate a run when a CI retry sends the same Idempotency-Key", async () => {
    const t = await createTenant();
    const headers = { "Idempotency-Key": "upload-42" };
    const a = await ingest(t, ctrf, { query: `?project_id=${t.project.id}`, headers });
    const b = await ingest(t, ctrf, { query: `?project_id=${t.project.id}`, headers });
    expect(b.status).toBe(201);
    expect(b.headers.get("idempotent-replayed")).toBe("true");
    expect(b.body.run_id).toBe(a.body.run_id);
    expect(await count("test_runs", "project_id = ?", t.project.id)).toBe(1);
  });

  it("needs only results:submit and testruns:create, and a restricted key needs no project_id", async () => {
    const t = await createTenant();
    const ci = await createKey(t, { projectId: t.project.id, scopes: ["results:submit", "testruns:create"] });
    const res = await ingest(ci.key, ctrf);
    expect(res.status, res.text).toBe(201);
    expect(res.body.run.project_id).toBe(t.project.id);
  });

  const hostile: [string, string, string, number, RegExp][] = [
    ["an empty body", "", "application/json", 400, /empty/i],
    ["truncated XML", junitPytest.slice(0, junitPytest.length / 2), "application/xml", 400, /line \d+, column \d+/],
    ["malformed JSON", '{"results": {"tool": {"name": "x"}, "tests": [', "application/json", 400, /malformed json/i],
    ["a DOCTYPE with entities", '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><testsuite><testcase name="&a;"/></testsuite>', "application/xml", 400, /DOCTYPE/],
    ["numbers as strings", JSON.stringify({ results: { tool: { name: "t" }, summary: { tests: 1 }, tests: [{ name: "t", status: "passed", duration: "12" }] } }), "application/json", 422, /duration/],
    ["an unknown format", "hello", "text/plain", 400, /neither XML/],
    ["an unsupported media type", "x", "image/png", 415, /Content-Type/],
    ["10k-deep nesting", `<testsuites>${"<testsuite>".repeat(10_000)}`, "application/xml", 400, /deep|nest/i],
  ];
  for (const [what, body, contentType, status, message] of hostile) {
    it(`refuses ${what} with ${status}, writing nothing`, async () => {
      const t = await createTenant();
      const res = await ingest(t, body, { query: `?project_id=${t.project.id}`, contentType });
      expect(res.status, res.text.slice(0, 300)).toBe(status);
      expect(res.body.message).toMatch(message);
      expect(await count("test_runs", "project_id = ?", t.project.id)).toBe(0);
      expect(await count("test_cases", "project_id = ?", t.project.id)).toBe(0);
    });
  }

  it("refuses an unknown ?format=", async () => {
    const t = await createTenant();
    const res = await ingest(t, ctrf, { query: `?project_id=${t.project.id}&format=allure` });
    expect(res.status).toBe(400);
    expect(res.body.details.field).toBe("format");
    expect(await count("test_runs", "project_id = ?", t.project.id)).toBe(0);
  });
});

describe("native reports", () => {
  it("carry their run's metadata, project included; a project the key cannot see is 404", async () => {
    const t = await createTenant();
    const report = (projectId: string) =>
      JSON.stringify({
        run: { project_id: projectId, branch: "release/2", commit_sha: "", viewport: "800x600", grep_patterns: ["@smoke"] },
        results: [{ title: "t", status: "passed", duration: 3 }],
      });
    const res = await ingest(t, report(t.project.id));
    expect(res.status, res.text).toBe(201);
    expect(res.body.run).toMatchObject({ project_id: t.project.id, branch: "release/2", commit_sha: null, viewport: "800x600", grep_patterns: ["@smoke"] });
    const other = await createTenant();
    expect((await ingest(t, report(other.project.id))).status).toBe(404);
    expect(await count("test_runs", "project_id = ?", other.project.id)).toBe(0);
  });
});
