import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { call } from "./helpers/http";
import { createTenant, type Tenant } from "./helpers/factories";
import { junitReport, streamOf } from "./helpers/reports";

const XML = "application/xml";

function ingest(t: Tenant, body: string | ReadableStream<Uint8Array>, query = "", headers: Record<string, string> = {}) {
  return call(`/api/v1/results/ingest?project_id=${t.project.id}${query}`, {
    method: "POST",
    key: t.key,
    body,
    headers: { "content-type": XML, ...headers },
  });
}

/** Polls an ingest until it is done or failed (the queue consumer runs on its own). */
async function settled(t: Tenant, id: string, timeoutMs = 60_000): Promise<any> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const res = await call(`/api/v1/ingests/${id}`, { key: t.key });
    expect(res.status, res.text).toBe(200);
    if (res.body.status === "done" || res.body.status === "failed") return res.body;
    if (Date.now() > until) throw new Error(`ingest ${id} still ${res.body.status} after ${timeoutMs} ms: ${res.text}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function count(sql: string, ...binds: unknown[]): Promise<number> {
  return (await env.DB.prepare(sql).bind(...binds).first<{ n: number }>())!.n;
}

async function expectRunCounts(t: Tenant, runId: string, totals: ReturnType<typeof junitReport>["totals"]) {
  const run = await call(`/api/v1/testruns/${runId}`, { key: t.key });
  expect(run.status).toBe(200);
  expect(run.body).toMatchObject({
    total_tests: totals.tests,
    passed_tests: totals.passed,
    failed_tests: totals.failed,
    skipped_tests: totals.skipped,
    flaky_tests: totals.flaky,
    status: "running",
  });
  // No duplicates and no gaps: one row per test, and every title once.
  expect(await count("SELECT count(*) AS n FROM results WHERE run_id = ?", runId)).toBe(totals.tests);
  expect(await count("SELECT count(DISTINCT title) AS n FROM results WHERE run_id = ?", runId)).toBe(totals.tests);
}

describe("asynchronous ingest", () => {
  it("answers 202 for a report of more than 5,000 results and fills its run in chunks", { timeout: 90_000 }, async () => {
    const t = await createTenant();
    const report = junitReport(12_000);
    const res = await ingest(t, report.text);
    expect(res.status, res.text.slice(0, 300)).toBe(202);
    expect(res.body).toMatchObject({ status: "queued", format: "junit", project_id: t.project.id });
    expect(res.body.ingest_id).toBe(res.body.id);
    expect(res.headers.get("location")).toBe(`/api/v1/ingests/${res.body.id}`);
    const runId = res.body.run_id;
    expect(runId).toMatch(/^run_/);

    const done = await settled(t, res.body.id);
    // Chunks of 5,000 results; INGEST_CHUNKS_PER_INVOCATION is 1 in the tests, so each chunk
    // was committed by an invocation that resumed where the one before handed over.
    expect(done).toMatchObject({ status: "done", results: 12_000, chunks: 3, progress: 1, run_id: runId, error: null });
    expect(done.attempts).toBeGreaterThanOrEqual(3);
    // Per invocation: the claim, the run with the parts (one batch) and the chunk's batch, then
    // the hand-over or (in the last) nothing more. Three chunks over three or four invocations.
    expect(done.d1_calls).toBeGreaterThanOrEqual(3 * 3 + 2);
    expect(done.d1_calls).toBeLessThanOrEqual(4 * 4 + 1);
    expect(done.report_totals).toMatchObject({ tests: 12_000 });
    await expectRunCounts(t, runId, report.totals);
    // The stored source is gone once the ingest is done.
    expect((await env.ARTIFACTS.list({ prefix: `projects/${t.project.id}/ingests/` })).objects).toHaveLength(0);
  });

  it("streams a report over 5 MB sent without Content-Length to R2 and ingests it", { timeout: 90_000 }, async () => {
    const t = await createTenant();
    // 300 tests with 12,000 two-byte characters of output each: about 7 MB.
    const report = junitReport(300, { padding: 12_000 });
    expect(new TextEncoder().encode(report.text).byteLength).toBeGreaterThan(5 * 1024 * 1024);
    const res = await ingest(t, streamOf(report.text), "&ci_build_id=stream-1");
    expect(res.status, res.text.slice(0, 300)).toBe(202);
    expect(res.body.bytes_total).toBe(new TextEncoder().encode(report.text).byteLength);
    const done = await settled(t, res.body.id);
    expect(done).toMatchObject({ status: "done", results: 300 });
    await expectRunCounts(t, res.body.run_id, report.totals);
    // Output that straddled R2 segments came back whole, multi-byte characters included.
    const one = await env.DB.prepare("SELECT stdout, stdout_key FROM results WHERE run_id = ? LIMIT 1").bind(res.body.run_id).first<{ stdout: string | null; stdout_key: string | null }>();
    expect(one!.stdout).toBe("ü".repeat(12_000));
    const run = await call(`/api/v1/testruns/${res.body.run_id}`, { key: t.key });
    expect(run.body.ci_build_id).toBe("stream-1");
  });

  it("resumes after a chunk fails mid-ingest and finishes with exact counts", { timeout: 120_000 }, async () => {
    const t = await createTenant();
    const report = junitReport(9_000);
    // A real fault in D1: while this trigger exists, the transaction of the chunk holding case
    // 5500 (the second chunk) aborts, after the first 5,000 results were committed.
    await env.DB.exec(
      `CREATE TRIGGER fail_case_5500_${t.project.id} BEFORE INSERT ON results WHEN NEW.project_id = '${t.project.id}' AND NEW.title = 'handles case 5500' BEGIN SELECT RAISE(ABORT, 'injected fault'); END`,
    );
    const res = await ingest(t, report.text);
    expect(res.status).toBe(202);
    const id = res.body.id;
    // The consumer gave this attempt up with one chunk committed, and says so.
    const until = Date.now() + 60_000;
    for (;;) {
      const row = (await call(`/api/v1/ingests/${id}`, { key: t.key })).body;
      if (row.error?.details?.reason === "interrupted") break;
      expect(row.status, JSON.stringify(row)).toBe(row.status === "queued" ? "queued" : "processing");
      expect(Date.now() < until, JSON.stringify(row)).toBe(true);
      await new Promise((r) => setTimeout(r, 50));
    }
    const midway = await call(`/api/v1/ingests/${id}`, { key: t.key });
    expect(midway.body).toMatchObject({ status: "processing", results: 5000 });
    expect(midway.body.progress).toBeGreaterThan(0);
    expect(midway.body.progress).toBeLessThan(1);
    expect(await count("SELECT count(*) AS n FROM results WHERE run_id = ?", res.body.run_id)).toBe(5000);
    await env.DB.exec(`DROP TRIGGER fail_case_5500_${t.project.id}`);

    const done = await settled(t, id);
    expect(done).toMatchObject({ status: "done", results: 9_000, chunks: 2, error: null });
    // At least: the first chunk, the interrupted attempt, the second chunk.
    expect(done.attempts).toBeGreaterThanOrEqual(3);
    await expectRunCounts(t, res.body.run_id, report.totals);
  });

  it("fails a report that breaks after its beginning, and removes the run it created", { timeout: 90_000 }, async () => {
    const t = await createTenant();
    // About 7 MB (too large to parse in the request), cut off after some 6 MB.
    const report = junitReport(600, { padding: 6_000 });
    const truncated = report.text.slice(0, report.text.indexOf('name="handles case 500"'));
    const res = await ingest(t, truncated);
    expect(res.status).toBe(202);
    const failed = await settled(t, res.body.id);
    expect(failed.status).toBe("failed");
    expect(failed.error.message).toMatch(/truncated|unexpected end|unclosed/i);
    expect(failed.error.details.format).toBe("junit");
    // The run this ingest opened is gone, with the results it had committed.
    expect((await call(`/api/v1/testruns/${res.body.run_id}`, { key: t.key })).status).toBe(404);
    const listed = await call(`/api/v1/testruns?project_id=${t.project.id}`, { key: t.key });
    expect(listed.body.data).toHaveLength(0);
    expect(await count("SELECT count(*) AS n FROM results WHERE project_id = ?", t.project.id)).toBe(0);
    // Nor is its testrun.created.v1 left to announce a run that never existed.
    expect(await count("SELECT count(*) AS n FROM events WHERE subject_id = ?", res.body.run_id)).toBe(0);
  });

  it("refuses a large report that is broken from its start at once, writing nothing", async () => {
    const t = await createTenant();
    const broken = `<testsuites><testsuite name="a"><testcase name="x"></testsuite>${" ".repeat(6 * 1024 * 1024)}`;
    const res = await ingest(t, broken);
    expect(res.status).toBe(400);
    expect(res.body.message).toMatch(/line 1/);
    expect(await count("SELECT count(*) AS n FROM ingests WHERE project_id = ?", t.project.id)).toBe(0);
    expect(await count("SELECT count(*) AS n FROM test_runs WHERE project_id = ?", t.project.id)).toBe(0);
    expect((await env.ARTIFACTS.list({ prefix: `projects/${t.project.id}/` })).objects).toHaveLength(0);
  });

  it("refuses a declared length over 100 MB before reading the body", async () => {
    const t = await createTenant();
    const res = await ingest(t, "<testsuites/>", "", { "content-length": String(101 * 1024 * 1024) });
    expect(res.status).toBe(413);
    expect(res.body.error).toBe("payload_too_large");
  });

  it("replays an asynchronous ingest retried with the same Idempotency-Key instead of ingesting it twice", { timeout: 90_000 }, async () => {
    const t = await createTenant();
    const report = junitReport(5_500);
    const first = await ingest(t, report.text, "", { "Idempotency-Key": "ci-upload-7" });
    expect(first.status).toBe(202);
    const again = await ingest(t, report.text, "", { "Idempotency-Key": "ci-upload-7" });
    expect(again.status).toBe(202);
    expect(again.headers.get("idempotent-replayed")).toBe("true");
    expect(again.body.id).toBe(first.body.id);
    const other = await ingest(t, report.text, "&branch=other", { "Idempotency-Key": "ci-upload-7" });
    expect(other.status).toBe(422);
    await settled(t, first.body.id);
    expect(await count("SELECT count(*) AS n FROM ingests WHERE project_id = ?", t.project.id)).toBe(1);
    expect(await count("SELECT count(*) AS n FROM test_runs WHERE project_id = ?", t.project.id)).toBe(1);
  });
});

describe("chunked, resumable uploads", () => {
  function put(t: Tenant, id: string, n: number, body: Uint8Array | string | ReadableStream<Uint8Array>) {
    return call(`/api/v1/ingests/${id}/parts/${n}`, { method: "PUT", key: t.key, body, headers: { "content-type": "application/octet-stream" } });
  }

  it("joins parts split anywhere (even inside a character) and ingests them as one report", { timeout: 90_000 }, async () => {
    const t = await createTenant();
    const report = junitReport(2_500, { padding: 40 });
    const bytes = new TextEncoder().encode(report.text);
    const opened = await call("/api/v1/ingests", { method: "POST", key: t.key, body: { project_id: t.project.id, ci_build_id: "chunked-1", content_type: XML } });
    expect(opened.status, opened.text).toBe(201);
    expect(opened.body).toMatchObject({ status: "uploading", run_id: null, parts: [] });
    expect(Date.parse(opened.body.expires_at)).toBeGreaterThan(Date.now() + 23 * 3600_000);
    const id = opened.body.id;

    // Cut points: one lands between the two bytes of an "ü".
    const inside = report.text.indexOf("ü") + 200;
    const cut1 = new TextEncoder().encode(report.text.slice(0, inside)).byteLength + 1;
    const cut2 = Math.floor(bytes.byteLength * 0.7);
    // Out of order, and part 2 sent twice (the second replaces the first, as a resumed upload does).
    expect((await put(t, id, 3, bytes.slice(cut2))).status).toBe(200);
    expect((await put(t, id, 2, "garbage that is replaced")).status).toBe(200);
    const gap = await call(`/api/v1/ingests/${id}/complete`, { method: "POST", key: t.key });
    expect(gap.status).toBe(422);
    expect(gap.body.details.missing_parts).toEqual([1]);
    expect((await put(t, id, 1, bytes.slice(0, cut1))).status).toBe(200);
    // The replacement arrives as a stream without Content-Length.
    const part2 = await put(t, id, 2, streamOf(bytes.slice(cut1, cut2), 1000));
    expect(part2.status).toBe(200);
    expect(part2.body.bytes).toBe(cut2 - cut1);

    const listed = await call(`/api/v1/ingests/${id}`, { key: t.key });
    expect(listed.body.parts.map((p: any) => [p.part_number, p.bytes])).toEqual([
      [1, cut1],
      [2, cut2 - cut1],
      [3, bytes.byteLength - cut2],
    ]);
    expect(listed.body.bytes_total).toBe(bytes.byteLength);
    const digest = await crypto.subtle.digest("SHA-256", bytes.slice(cut1, cut2));
    expect(listed.body.parts[1].sha256).toBe(Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join(""));

    const completed = await call(`/api/v1/ingests/${id}/complete`, { method: "POST", key: t.key });
    expect(completed.status, completed.text).toBe(202);
    expect(completed.body).toMatchObject({ status: "queued", format: "junit", parts: null });
    expect(completed.body.run_id).toMatch(/^run_/);
    // Completing again answers the ingest as it stands; parts can no longer be sent.
    const twice = await call(`/api/v1/ingests/${id}/complete`, { method: "POST", key: t.key });
    expect(twice.status).toBe(202);
    expect(twice.body.run_id).toBe(completed.body.run_id);
    expect((await put(t, id, 4, "late")).status).toBe(409);

    const done = await settled(t, id);
    expect(done).toMatchObject({ status: "done", results: 2_500 });
    await expectRunCounts(t, completed.body.run_id, report.totals);
    const run = await call(`/api/v1/testruns/${completed.body.run_id}`, { key: t.key });
    expect(run.body.ci_build_id).toBe("chunked-1");
    // Only the replaced part's objects were deleted early; everything went when the ingest finished.
    expect((await env.ARTIFACTS.list({ prefix: `projects/${t.project.id}/ingests/` })).objects).toHaveLength(0);
  });

  it("abandons an upload on DELETE, and refuses parts that are empty or of an unknown ingest", async () => {
    const t = await createTenant();
    const opened = await call("/api/v1/ingests", { method: "POST", key: t.key, body: { project_id: t.project.id } });
    const id = opened.body.id;
    expect((await put(t, id, 1, "<testsuites>")).status).toBe(200);
    const empty = await put(t, id, 2, "");
    expect(empty.status).toBe(400);
    expect((await put(t, id, 0, "x")).status).toBe(400);
    expect((await put(t, "ing_00000000000000000000000000", 1, "x")).status).toBe(404);
    expect((await env.ARTIFACTS.list({ prefix: `projects/${t.project.id}/ingests/${id}/` })).objects).toHaveLength(1);
    expect((await call(`/api/v1/ingests/${id}`, { method: "DELETE", key: t.key })).status).toBe(204);
    expect((await call(`/api/v1/ingests/${id}`, { key: t.key })).status).toBe(404);
    expect((await env.ARTIFACTS.list({ prefix: `projects/${t.project.id}/ingests/${id}/` })).objects).toHaveLength(0);
  });

  it("refuses to open an upload for a project the key cannot see", async () => {
    const t = await createTenant();
    const other = await createTenant();
    const res = await call("/api/v1/ingests", { method: "POST", key: t.key, body: { project_id: other.project.id } });
    expect(res.status).toBe(404);
    expect(await count("SELECT count(*) AS n FROM ingests WHERE project_id = ?", other.project.id)).toBe(0);
  });
});

describe("the cron sweep of ingests", () => {
  async function housekeeping(at: Date) {
    const { createExecutionContext, createScheduledController, waitOnExecutionContext } = await import("cloudflare:test");
    const worker = (await import("../src/index")).default;
    const ctx = createExecutionContext();
    await worker.scheduled!(createScheduledController({ scheduledTime: at, cron: "*/5 * * * *" }), env, ctx);
    await waitOnExecutionContext(ctx);
  }

  it("re-sends an ingest whose message was lost, and abandons an upload past its expiry", { timeout: 90_000 }, async () => {
    const t = await createTenant();
    const report = junitReport(1_200);
    // An ingest recorded as queued whose message never reached the queue (a failed send).
    const lost = await call("/api/v1/ingests", { method: "POST", key: t.key, body: { project_id: t.project.id } });
    expect((await call(`/api/v1/ingests/${lost.body.id}/parts/1`, { method: "PUT", key: t.key, body: report.text })).status).toBe(200);
    const run = await call("/api/v1/testruns", { method: "POST", key: t.key, body: { project_id: t.project.id } });
    const longAgo = new Date(Date.now() - 3600_000).toISOString();
    await env.DB.prepare("UPDATE ingests SET status = 'queued', format = 'junit', run_id = ?, expires_at = NULL, updated_at = ? WHERE id = ?")
      .bind(run.body.id, longAgo, lost.body.id)
      .run();
    // An upload nobody completed.
    const abandoned = await call("/api/v1/ingests", { method: "POST", key: t.key, body: { project_id: t.project.id } });
    expect((await call(`/api/v1/ingests/${abandoned.body.id}/parts/1`, { method: "PUT", key: t.key, body: "<testsuites>" })).status).toBe(200);
    await env.DB.prepare("UPDATE ingests SET expires_at = ? WHERE id = ?").bind(longAgo, abandoned.body.id).run();

    await housekeeping(new Date());

    const expired = await call(`/api/v1/ingests/${abandoned.body.id}`, { key: t.key });
    expect(expired.body).toMatchObject({ status: "failed", error: { details: { reason: "expired" } } });
    expect((await env.ARTIFACTS.list({ prefix: `projects/${t.project.id}/ingests/${abandoned.body.id}/` })).objects).toHaveLength(0);
    const done = await settled(t, lost.body.id);
    expect(done).toMatchObject({ status: "done", results: 1_200 });
    await expectRunCounts(t, run.body.id, report.totals);

    // A week later both are forgotten.
    await housekeeping(new Date(Date.now() + 8 * 24 * 3600_000));
    expect((await call(`/api/v1/ingests/${lost.body.id}`, { key: t.key })).status).toBe(404);
    expect((await call(`/api/v1/ingests/${abandoned.body.id}`, { key: t.key })).status).toBe(404);
  });
});

describe("the ingest queue consumer", () => {
  it("leaves an ingest another consumer holds alone until its lease ends, then processes it", { timeout: 60_000 }, async () => {
    const { createExecutionContext, createMessageBatch, getQueueResult } = await import("cloudflare:test");
    const worker = (await import("../src/index")).default;
    const t = await createTenant();
    const report = junitReport(700);
    const opened = await call("/api/v1/ingests", { method: "POST", key: t.key, body: { project_id: t.project.id } });
    expect((await call(`/api/v1/ingests/${opened.body.id}/parts/1`, { method: "PUT", key: t.key, body: report.text })).status).toBe(200);
    const run = await call("/api/v1/testruns", { method: "POST", key: t.key, body: { project_id: t.project.id } });
    // Queued and held by a consumer for another 90 s (as after a delivery whose worker died).
    const held = new Date(Date.now() + 90_000).toISOString();
    await env.DB.prepare("UPDATE ingests SET status = 'processing', format = 'junit', run_id = ?, expires_at = NULL, lease_until = ? WHERE id = ?")
      .bind(run.body.id, held, opened.body.id)
      .run();

    const deliver = async (id: string) => {
      const batch = createMessageBatch("greenlight-ingests", [{ id, timestamp: new Date(), attempts: 1, body: { type: "ingest.process", ingest_id: opened.body.id } }]);
      const ctx = createExecutionContext();
      await worker.queue!(batch, env);
      return getQueueResult(batch, ctx);
    };
    const busy = await deliver("m-busy");
    // Retried, not acknowledged (this version of the test pool does not record the delay asked for;
    // the wait the consumer asks for is read from processIngest below).
    expect(busy.retryMessages.map((m) => m.msgId)).toEqual(["m-busy"]);
    expect(busy.explicitAcks).toEqual([]);
    const { processIngest } = await import("../src/core/ingest/process");
    const outcome = await processIngest(env, opened.body.id);
    expect(outcome.kind).toBe("busy");
    const wait = outcome.kind === "busy" ? outcome.retryAfterSeconds : 0;
    expect(wait).toBeGreaterThan(80);
    expect(wait).toBeLessThanOrEqual(90);
    const untouched = await call(`/api/v1/ingests/${opened.body.id}`, { key: t.key });
    expect(untouched.body).toMatchObject({ status: "processing", attempts: 0, results: 0 });

    // The lease ran out: the next delivery claims it and finishes it.
    await env.DB.prepare("UPDATE ingests SET lease_until = ? WHERE id = ?").bind(new Date(Date.now() - 1000).toISOString(), opened.body.id).run();
    const claimed = await deliver("m-claim");
    expect(claimed.explicitAcks).toEqual(["m-claim"]);
    expect((await call(`/api/v1/ingests/${opened.body.id}`, { key: t.key })).body).toMatchObject({ status: "done", results: 700, attempts: 1 });
    await expectRunCounts(t, run.body.id, report.totals);
    // A late duplicate of a finished ingest is simply acknowledged.
    expect((await deliver("m-late")).explicitAcks).toEqual(["m-late"]);
  });
});
