// End-to-end: the largest reports the ingest promises, through the real local server (wrangler
// dev: local D1, R2 and the queue consumer), over HTTP on loopback.
//
//   1. a ~100 MB JUnit file in one request (the platform's request limit), processed in the
//      background to completion;
//   2. a 500,000-result JUnit report through the chunked upload (parts of 8 MB).
//
// Each ends with the run's counts equal to the generator's totals. Reports are written by
// scripts/generate-report.mjs into a temporary directory and streamed from disk.
import { spawnSync } from "node:child_process";
import { mkdtempSync, openSync, readSync, closeSync, rmSync, statSync, createReadStream } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ROOT, startLocalServer, type LocalServer } from "../../scripts/local-server.mjs";

const ADMIN_TOKEN = "e2e-admin-token";
const MiB = 1024 * 1024;
/** Local D1 on a shared 2-core machine: generous, only to end a hang. */
const INGEST_TIMEOUT_MS = 15 * 60_000;

let server: LocalServer | undefined;
let dir = "";
let key = "";
let projectId = "";

async function api(method: string, path: string, body?: BodyInit, headers: Record<string, string> = {}): Promise<{ status: number; body: any; text: string }> {
  const init: RequestInit & { duplex?: "half" } = { method, headers: { authorization: `Bearer ${key}`, ...headers }, body };
  if (body instanceof ReadableStream) init.duplex = "half";
  const res = await fetch(`${server!.baseUrl}${path}`, init);
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined, text };
}

function generate(name: string, args: string[]): { path: string; totals: Record<string, number> } {
  const path = join(dir, name);
  const run = spawnSync(process.execPath, [join(ROOT, "scripts", "generate-report.mjs"), "--format", "junit", ...args, "--out", path], { encoding: "utf8" });
  expect(run.status, run.stderr).toBe(0);
  return { path, totals: JSON.parse(run.stderr.trim().split("\n").pop()!) };
}

async function settle(id: string): Promise<any> {
  const until = Date.now() + INGEST_TIMEOUT_MS;
  for (;;) {
    const res = await api("GET", `/api/v1/ingests/${id}`);
    expect(res.status, res.text).toBe(200);
    if (res.body.status === "done" || res.body.status === "failed") return res.body;
    if (Date.now() > until) throw new Error(`ingest ${id} still ${res.body.status}: ${res.text}`);
    await new Promise((r) => setTimeout(r, 1000));
  }
}

async function expectRun(runId: string, totals: Record<string, number>) {
  const run = await api("GET", `/api/v1/testruns/${runId}`);
  expect(run.status).toBe(200);
  expect(run.body).toMatchObject({
    total_tests: totals.tests,
    passed_tests: totals.passed,
    failed_tests: totals.failed,
    skipped_tests: totals.skipped,
    flaky_tests: totals.flaky,
  });
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "greenlight-large-ingest-"));
  server = await startLocalServer({
    tempPrefix: "greenlight-e2e-ingest-",
    vars: { REQUIRE_HTTPS: "false", ADMIN_TOKEN, URL_SIGNING_SECRET: "e2e-signing-secret" },
  });
  const res = await fetch(`${server.baseUrl}/api/v1/admin/organizations`, {
    method: "POST",
    headers: { authorization: `Bearer ${ADMIN_TOKEN}`, "content-type": "application/json" },
    body: JSON.stringify({ name: "Large ingest", project_name: "Large ingest" }),
  });
  const created = (await res.json()) as any;
  key = created.api_key.key;
  projectId = created.project.id;
});

afterAll(async () => {
  await server?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("large reports through the real local server", () => {
  it("ingests a 100 MB JUnit file sent in one request", { timeout: INGEST_TIMEOUT_MS + 120_000 }, async () => {
    // 90,000 tests with 1,000 bytes of output each: about 103 million bytes, just under 100 MiB.
    const report = generate("100mb.xml", ["--results", "90000", "--pad", "1000"]);
    const size = statSync(report.path).size;
    expect(size).toBeGreaterThan(100_000_000);
    expect(size).toBeLessThanOrEqual(100 * MiB);
    const started = Date.now();
    const body = Readable.toWeb(createReadStream(report.path, { highWaterMark: MiB })) as ReadableStream<Uint8Array>;
    const res = await api("POST", `/api/v1/results/ingest?project_id=${projectId}&ci_build_id=e2e-100mb`, body, {
      "content-type": "application/xml",
      "content-length": String(size),
    });
    expect(res.status, res.text.slice(0, 500)).toBe(202);
    expect(res.body.bytes_total).toBe(size);
    const done = await settle(res.body.id);
    expect(done, JSON.stringify(done.error)).toMatchObject({ status: "done", results: report.totals.tests, progress: 1 });
    console.log(`[e2e] 100 MB JUnit: ${report.totals.tests} results in ${((Date.now() - started) / 1000).toFixed(1)} s, ${done.chunks} chunks, ${done.d1_calls} D1 calls, ${done.attempts} invocations`);
    await expectRun(res.body.run_id, report.totals);
  });

  it("ingests a 500,000-result report through the chunked upload", { timeout: INGEST_TIMEOUT_MS + 120_000 }, async () => {
    const report = generate("500k.xml", ["--results", "500000"]);
    const size = statSync(report.path).size;
    const started = Date.now();
    const opened = await api("POST", "/api/v1/ingests", JSON.stringify({ project_id: projectId, ci_build_id: "e2e-500k" }), { "content-type": "application/json" });
    expect(opened.status, opened.text).toBe(201);
    const id = opened.body.id;
    const PART = 8 * MiB;
    const fd = openSync(report.path, "r");
    try {
      for (let n = 1, at = 0; at < size; n++, at += PART) {
        const bytes = Buffer.alloc(Math.min(PART, size - at));
        readSync(fd, bytes, 0, bytes.length, at);
        const put = await api("PUT", `/api/v1/ingests/${id}/parts/${n}`, bytes, { "content-type": "application/octet-stream" });
        expect(put.status, put.text).toBe(200);
        expect(put.body.bytes).toBe(bytes.length);
      }
    } finally {
      closeSync(fd);
    }
    const completed = await api("POST", `/api/v1/ingests/${id}/complete`);
    expect(completed.status, completed.text).toBe(202);
    const done = await settle(id);
    expect(done, JSON.stringify(done.error)).toMatchObject({ status: "done", results: 500_000 });
    console.log(`[e2e] 500,000-result JUnit (${(size / MiB).toFixed(1)} MiB, ${Math.ceil(size / PART)} parts): ${((Date.now() - started) / 1000).toFixed(1)} s, ${done.chunks} chunks, ${done.d1_calls} D1 calls, ${done.attempts} invocations`);
    await expectRun(completed.body.run_id, report.totals);
  });
});
