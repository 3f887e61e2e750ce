import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { call } from "./helpers/http";
import { createKey, createProject, createTenant, type Tenant } from "./helpers/factories";

async function newRelease(t: Tenant, body: Record<string, unknown> = {}, key = t.key) {
  const res = await call("/api/v1/releases", { method: "POST", key, body: { project_id: t.project.id, name: `Release ${crypto.randomUUID()}`, ...body } });
  expect(res.status, res.text).toBe(201);
  return res.body;
}

async function patchRelease(t: Tenant, id: string, body: Record<string, unknown>) {
  return call(`/api/v1/releases/${id}`, { method: "PATCH", key: t.key, body });
}

async function progress(t: Tenant, releaseId: string, query = "") {
  const res = await call(`/api/v1/releases/${releaseId}/progress${query}`, { key: t.key });
  expect(res.status, res.text).toBe(200);
  return res.body;
}

let buildSeq = 0;

/**
 * A build registered by CI straight into a release. Builds are made in order, so the last one
 * made is the release's latest (highest number).
 */
async function addBuild(t: Tenant, releaseId: string, name?: string): Promise<{ id: string; name: string }> {
  const seq = ++buildSeq;
  const res = await call("/api/v1/builds", {
    method: "POST",
    key: t.key,
    body: {
      project_id: t.project.id,
      name: name ?? `build ${seq}`,
      build_number: String(seq),
      commit_sha: seq.toString(16).padStart(7, "0"),
      branch: "main",
      release_id: releaseId,
    },
  });
  expect(res.status, res.text).toBe(201);
  expect(res.body.release_id).toBe(releaseId);
  return res.body;
}

async function newRun(t: Tenant, buildId: string) {
  const res = await call("/api/v1/testruns", { method: "POST", key: t.key, body: { project_id: t.project.id, build_id: buildId } });
  expect(res.status, res.text).toBe(201);
  return res.body as { id: string };
}

function result(i: number, status: string, extra: Record<string, unknown> = {}) {
  return { title: `test ${i}`, full_title: `Checkout > test ${i}`, file_path: "tests/checkout.spec.ts", status, duration: 10, ...extra };
}

async function submit(t: Tenant, runId: string, results: unknown[]) {
  const res = await call(`/api/v1/testruns/${runId}/results`, { method: "POST", key: t.key, body: { results } });
  expect(res.status, res.text).toBe(201);
  return res.body;
}

async function finishRun(t: Tenant, runId: string, status = "passed") {
  const res = await call(`/api/v1/testruns/${runId}`, { method: "PATCH", key: t.key, body: { status } });
  expect(res.status, res.text).toBe(200);
}

/** Results 1..n with the given statuses, in order. */
function results(...statuses: string[]) {
  return statuses.map((s, i) => result(i + 1, s));
}

async function releasedEvents(releaseId: string) {
  const rows = await env.DB.prepare("SELECT type, organization_id, project_id, payload FROM events WHERE subject_id = ? ORDER BY number")
    .bind(releaseId)
    .all<{ type: string; organization_id: string; project_id: string; payload: string }>();
  return rows.results.map((r) => ({ ...r, payload: JSON.parse(r.payload) }));
}

async function releaseCount(organizationId: string): Promise<number> {
  const row = await env.DB.prepare("SELECT count(*) AS n FROM releases WHERE organization_id = ?").bind(organizationId).first<{ n: number }>();
  return row!.n;
}

/** Bodies compared with ids masked: a foreign id and a missing one must answer alike. */
const masked = (body: unknown) => JSON.stringify(body).replace(/"(rel|bld)_[0-9A-Z]+"/g, '"ID"');
const MISSING_RELEASE = "rel_00000000000000000000000000";

describe("creating and reading releases", () => {
  it("creates a release with its effective gate, and reads it back", async () => {
    const t = await createTenant();
    const res = await call("/api/v1/releases", {
      method: "POST",
      key: t.key,
      body: { project_id: t.project.id, name: "Spring", version: "2.4.1", target_date: "2028-02-29", gate: { min_pass_rate: 0.9 } },
    });
    expect(res.status, res.text).toBe(201);
    expect(res.body).toMatchObject({
      project_id: t.project.id,
      name: "Spring",
      version: "2.4.1",
      status: "planned",
      target_date: "2028-02-29",
      gate: { min_pass_rate: 0.9, block_on_failures: true },
      released_at: null,
    });
    expect(res.body.id).toMatch(/^rel_[0-9A-Z]{26}$/);
    expect(Object.keys(res.body).sort()).toEqual(
      ["created_at", "gate", "id", "name", "project_id", "released_at", "status", "target_date", "updated_at", "version"].sort(),
    );
    const read = await call(`/api/v1/releases/${res.body.id}`, { key: t.key });
    expect(read.status).toBe(200);
    expect(read.body).toEqual(res.body);

    const plain = await newRelease(t, { name: "Plain" });
    expect(plain).toMatchObject({ version: null, target_date: null, gate: { min_pass_rate: 0.95, block_on_failures: true } });
    expect(await releasedEvents(res.body.id)).toEqual([]);
  });

  it("takes the project of a project-restricted key, and refuses another project or none", async () => {
    const t = await createTenant();
    const other = await createProject(t);
    const restricted = await createKey(t, { projectId: t.project.id, scopes: ["builds:read", "builds:update"] });
    const res = await call("/api/v1/releases", { method: "POST", key: restricted.key, body: { name: "Implied" } });
    expect(res.status, res.text).toBe(201);
    expect(res.body.project_id).toBe(t.project.id);
    const elsewhere = await call("/api/v1/releases", { method: "POST", key: restricted.key, body: { name: "X", project_id: other.id } });
    expect(elsewhere.status).toBe(404);
    const none = await call("/api/v1/releases", { method: "POST", key: t.key, body: { name: "Y" } });
    expect(none.status).toBe(400);
    expect(none.body.details).toMatchObject({ field: "project_id", reason: "required" });
    // The restricted key sees only its project's releases.
    const inOther = await newRelease(t, { project_id: other.id, name: "Other project's" });
    expect((await call(`/api/v1/releases/${inOther.id}`, { key: restricted.key })).status).toBe(404);
    const listed = await call("/api/v1/releases", { key: restricted.key });
    expect(listed.body.data.map((r: any) => r.id)).toEqual([res.body.id]);
  });

  it("lists releases newest first, paginated, filtered by project and status", async () => {
    const t = await createTenant();
    const other = await createProject(t);
    const first = await newRelease(t, { name: "One" });
    const second = await newRelease(t, { name: "Two", status: "in_progress" });
    const third = await newRelease(t, { name: "Three", project_id: other.id });

    const page = await call("/api/v1/releases?limit=2", { key: t.key });
    expect(page.status).toBe(200);
    expect(page.body.data.map((r: any) => r.id)).toEqual([third.id, second.id]);
    expect(page.body.pagination).toEqual({ total: 3, limit: 2, offset: 0, has_more: true });
    const next = await call("/api/v1/releases?limit=2&offset=2", { key: t.key });
    expect(next.body.data.map((r: any) => r.id)).toEqual([first.id]);
    expect(next.body.pagination).toEqual({ total: 3, limit: 2, offset: 2, has_more: false });

    const byProject = await call(`/api/v1/releases?project_id=${t.project.id}`, { key: t.key });
    expect(byProject.body.data.map((r: any) => r.id)).toEqual([second.id, first.id]);
    const byStatus = await call(`/api/v1/releases?status=in_progress`, { key: t.key });
    expect(byStatus.body.data.map((r: any) => r.id)).toEqual([second.id]);
    const both = await call(`/api/v1/releases?project_id=${other.id}&status=planned`, { key: t.key });
    expect(both.body.data.map((r: any) => r.id)).toEqual([third.id]);

    const badStatus = await call("/api/v1/releases?status=shipped", { key: t.key });
    expect(badStatus.status).toBe(400);
    expect(badStatus.body.details).toMatchObject({ field: "status", location: "query" });
    const foreign = await createTenant();
    expect((await call(`/api/v1/releases?project_id=${foreign.project.id}`, { key: t.key })).status).toBe(404);
  });

  it("changes only the fields a PATCH sends; the gate merges field by field", async () => {
    const t = await createTenant();
    const r = await newRelease(t, { name: "Before", version: "1.0", target_date: "2026-06-30", gate: { min_pass_rate: 0.9 } });
    const renamed = await patchRelease(t, r.id, { name: "After" });
    expect(renamed.status, renamed.text).toBe(200);
    expect(renamed.body).toMatchObject({
      name: "After",
      version: "1.0",
      target_date: "2026-06-30",
      status: "planned",
      gate: { min_pass_rate: 0.9, block_on_failures: true },
    });
    const gated = await patchRelease(t, r.id, { gate: { block_on_failures: false }, version: null, target_date: "2026-07-01" });
    expect(gated.body).toMatchObject({ name: "After", version: null, target_date: "2026-07-01", gate: { min_pass_rate: 0.9, block_on_failures: false } });
    const reset = await patchRelease(t, r.id, { gate: { min_pass_rate: null }, status: "in_progress" });
    expect(reset.body).toMatchObject({ status: "in_progress", gate: { min_pass_rate: 0.95, block_on_failures: false } });
    expect((await call(`/api/v1/releases/${r.id}`, { key: t.key })).body).toEqual(reset.body);
  });
});

describe("release names", () => {
  it("refuses a second release of the same name in a project with 409, on create and on rename", async () => {
    const t = await createTenant();
    const other = await createProject(t);
    const a = await newRelease(t, { name: "Spring" });
    const dup = await call("/api/v1/releases", { method: "POST", key: t.key, body: { project_id: t.project.id, name: "Spring" } });
    expect(dup.status).toBe(409);
    expect(dup.body).toMatchObject({ error: "conflict", details: { field: "name" } });
    expect(dup.body.message).toContain("Spring");
    expect(await releaseCount(t.organization.id)).toBe(1);
    // Another project may use the name.
    await newRelease(t, { name: "Spring", project_id: other.id });

    const b = await newRelease(t, { name: "Summer" });
    const rename = await patchRelease(t, b.id, { name: "Spring", status: "released" });
    expect(rename.status).toBe(409);
    expect(rename.body).toMatchObject({ error: "conflict", details: { field: "name" } });
    // Nothing of the refused PATCH was written: not the status, not the event.
    expect((await call(`/api/v1/releases/${b.id}`, { key: t.key })).body).toMatchObject({ name: "Summer", status: "planned", released_at: null });
    expect(await releasedEvents(b.id)).toEqual([]);
    expect((await patchRelease(t, a.id, { name: "Spring" })).status).toBe(200);
  });
});

describe("validation", () => {
  it("names the bad field and writes nothing", async () => {
    const t = await createTenant();
    const cases: [Record<string, unknown>, string, string][] = [
      [{ version: "1" }, "name", "required"],
      [{ name: "   " }, "name", "empty"],
      [{ name: "x", target_date: "2026-02-30" }, "target_date", "invalid_format"],
      [{ name: "x", target_date: "2027-02-29" }, "target_date", "invalid_format"],
      [{ name: "x", target_date: "2026-13-01" }, "target_date", "invalid_format"],
      [{ name: "x", target_date: "30/06/2026" }, "target_date", "invalid_format"],
      [{ name: "x", gate: { min_pass_rate: 1.5 } }, "gate.min_pass_rate", "too_big"],
      [{ name: "x", gate: { min_pass_rate: -0.1 } }, "gate.min_pass_rate", "too_small"],
      [{ name: "x", gate: { block_on_failures: "yes" } }, "gate.block_on_failures", "invalid_type"],
      [{ name: "x", status: "shipped" }, "status", "invalid_value"],
    ];
    for (const [body, field, reason] of cases) {
      const res = await call("/api/v1/releases", { method: "POST", key: t.key, body: { project_id: t.project.id, ...body } });
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(res.body.error).toBe("invalid_request");
      expect(res.body.details, JSON.stringify(body)).toMatchObject({ field, reason });
    }
    expect(await releaseCount(t.organization.id)).toBe(0);

    const r = await newRelease(t, { name: "Kept", target_date: "2026-06-30" });
    for (const [body, field] of [
      [{ target_date: "2026-04-31" }, "target_date"],
      [{ gate: { min_pass_rate: 1.5 } }, "gate.min_pass_rate"],
      [{ status: "done" }, "status"],
      [{ name: "" }, "name"],
    ] as const) {
      const res = await patchRelease(t, r.id, body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(res.body.details.field).toBe(field);
    }
    expect((await call(`/api/v1/releases/${r.id}`, { key: t.key })).body).toEqual(r);
  });
});

describe("releasing", () => {
  it("sets released_at and writes one release.released.v1 event, however often it is released", async () => {
    const t = await createTenant();
    const r = await newRelease(t, { name: "Spring", version: "2.4.1", status: "in_progress" });
    const first = await patchRelease(t, r.id, { status: "released" });
    expect(first.status, first.text).toBe(200);
    expect(first.body.status).toBe("released");
    expect(first.body.released_at).toEqual(expect.any(String));
    const again = await patchRelease(t, r.id, { status: "released", version: "2.4.2" });
    expect(again.body).toMatchObject({ status: "released", version: "2.4.2", released_at: first.body.released_at });

    const events = await releasedEvents(r.id);
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ type: "release.released.v1", organization_id: t.organization.id, project_id: t.project.id });
    expect(events[0]!.payload).toEqual({
      type: "release.released.v1",
      release: {
        release_id: r.id,
        project_id: t.project.id,
        name: "Spring",
        version: "2.4.1",
        status: "released",
        target_date: null,
        released_at: first.body.released_at,
        created_at: r.created_at,
      },
    });
  });

  it("accepts completed as released, on create, on update and as a list filter", async () => {
    const t = await createTenant();
    const created = await newRelease(t, { name: "Done at birth", status: "completed" });
    expect(created.status).toBe("released");
    expect(created.released_at).toEqual(expect.any(String));
    expect((await releasedEvents(created.id)).map((e) => e.type)).toEqual(["release.released.v1"]);

    const r = await newRelease(t, { name: "Later" });
    const patched = await patchRelease(t, r.id, { status: "completed" });
    expect(patched.body).toMatchObject({ status: "released", released_at: expect.any(String) });
    expect(await releasedEvents(r.id)).toHaveLength(1);
    const listed = await call("/api/v1/releases?status=completed", { key: t.key });
    expect(listed.body.data.map((x: any) => x.id).sort()).toEqual([created.id, r.id].sort());
  });

  it("clears released_at when a release is reopened, and releasing it again is a new event", async () => {
    const t = await createTenant();
    const r = await newRelease(t, { name: "Reopened" });
    await patchRelease(t, r.id, { status: "released" });
    const reopened = await patchRelease(t, r.id, { status: "in_progress" });
    expect(reopened.body).toMatchObject({ status: "in_progress", released_at: null });
    expect(await releasedEvents(r.id)).toHaveLength(1);
    const rereleased = await patchRelease(t, r.id, { status: "released" });
    expect(rereleased.body.released_at).toEqual(expect.any(String));
    expect(await releasedEvents(r.id)).toHaveLength(2);
  });
});

describe("access", () => {
  it("answers another tenant's release like a missing one on every release route, and changes nothing", async () => {
    const a = await createTenant();
    const b = await createTenant();
    const theirs = await newRelease(b, { name: "B's" });
    const requests: [string, string, unknown][] = [
      ["GET", "/api/v1/releases/{id}", undefined],
      ["PATCH", "/api/v1/releases/{id}", { status: "released", name: "taken over" }],
      ["GET", "/api/v1/releases/{id}/progress", undefined],
    ];
    for (const [method, path, body] of requests) {
      const foreign = await call(path.replace("{id}", theirs.id), { method, key: a.key, body });
      const missing = await call(path.replace("{id}", MISSING_RELEASE), { method, key: a.key, body });
      expect(foreign.status, `${method} ${path}`).toBe(404);
      expect(missing.status).toBe(404);
      expect(foreign.body.error).toBe("not_found");
      expect(masked(foreign.body)).toBe(masked(missing.body));
    }
    expect((await call(`/api/v1/releases/${theirs.id}`, { key: b.key })).body).toEqual(theirs);
    expect(await releasedEvents(theirs.id)).toEqual([]);
    expect((await call("/api/v1/releases", { key: a.key })).body.pagination.total).toBe(0);
  });

  it("judges only builds of the release: another release's or tenant's build is 404", async () => {
    const a = await createTenant();
    const b = await createTenant();
    const mine = await newRelease(a);
    const sibling = await newRelease(a);
    const siblingBuild = await addBuild(a, sibling.id);
    const theirBuild = await addBuild(b, (await newRelease(b)).id);
    const bodies: string[] = [];
    for (const buildId of [siblingBuild.id, theirBuild.id, "bld_00000000000000000000000000"]) {
      const res = await call(`/api/v1/releases/${mine.id}/progress?build_id=${buildId}`, { key: a.key });
      expect(res.status, buildId).toBe(404);
      expect(res.body).toMatchObject({ error: "not_found", message: "Build not found." });
      bodies.push(masked(res.body));
    }
    expect(new Set(bodies).size).toBe(1);
    // Another tenant's release with its build: the release is not found, whatever build is named.
    const foreign = await call(`/api/v1/releases/${(await newRelease(b)).id}/progress`, { key: a.key });
    expect(foreign.status).toBe(404);
  });

  it("needs builds:read to read and builds:update to write", async () => {
    const t = await createTenant();
    const r = await newRelease(t);
    const writer = await createKey(t, { scopes: ["builds:update"] });
    const reader = await createKey(t, { scopes: ["builds:read"] });
    const neither = await createKey(t, { scopes: ["testruns:read", "builds:create"] });

    for (const key of [writer.key, neither.key]) {
      for (const path of ["/api/v1/releases", `/api/v1/releases/${r.id}`, `/api/v1/releases/${r.id}/progress`]) {
        const res = await call(path, { key });
        expect(res.status, path).toBe(403);
        expect(res.body).toMatchObject({ error: "forbidden", details: { required_scope: "builds:read" } });
      }
    }
    for (const key of [reader.key, neither.key]) {
      const post = await call("/api/v1/releases", { method: "POST", key, body: { project_id: t.project.id, name: "Nope" } });
      expect(post.status).toBe(403);
      expect(post.body.details.required_scope).toBe("builds:update");
      const patch = await call(`/api/v1/releases/${r.id}`, { method: "PATCH", key, body: { status: "released" } });
      expect(patch.status).toBe(403);
    }
    expect(await releaseCount(t.organization.id)).toBe(1);
    expect(await releasedEvents(r.id)).toEqual([]);
    expect((await call("/api/v1/releases", { method: "POST", key: writer.key, body: { project_id: t.project.id, name: "Yes" } })).status).toBe(201);
  });
});

describe("release readiness", () => {
  it("is blocked without a build, and with a build that has no runs", async () => {
    const t = await createTenant();
    const r = await newRelease(t);
    const none = await progress(t, r.id);
    expect(none).toMatchObject({
      release: { id: r.id },
      build: null,
      runs: [],
      totals: { test_cases: 0, passed: 0, failed: 0, skipped: 0, flaky: 0, untested: null },
      pass_rate: null,
      failing_test_cases: [],
      failing_test_cases_total: 0,
      gate: { min_pass_rate: 0.95, block_on_failures: true },
      verdict: "blocked",
      reasons: [{ rule: "build_assigned", verdict: "blocked", message: "No build is assigned to this release." }],
    });
    expect(none.summary).toBe("Blocked: No build is assigned to this release.");

    const build = await addBuild(t, r.id, "v2.4.1");
    const empty = await progress(t, r.id);
    expect(empty.build).toEqual({
      id: build.id,
      name: "v2.4.1",
      build_number: expect.any(String),
      commit_sha: expect.stringMatching(/^[0-9a-f]{7}$/),
      branch: "main",
      status: "planned",
    });
    expect(empty.verdict).toBe("blocked");
    expect(empty.reasons).toEqual([{ rule: "runs_present", verdict: "blocked", message: "Build v2.4.1 has no test runs.", runs: 0 }]);
  });

  it("is blocked by failing test cases and a pass rate below the minimum, with their numbers", async () => {
    const t = await createTenant();
    const r = await newRelease(t);
    const build = await addBuild(t, r.id);
    const run = await newRun(t, build.id);
    const submitted = await submit(t, run.id, [
      ...results("passed", "passed", "passed", "passed", "passed", "passed", "passed", "passed", "passed", "passed", "skipped"),
      result(12, "failed", { error: { message: "expected 200, got 500" } }),
      result(13, "failed", { error: { message: "timed out" } }),
    ]);
    await finishRun(t, run.id, "failed");

    const p = await progress(t, r.id);
    expect(p.totals).toEqual({ test_cases: 13, passed: 10, failed: 2, skipped: 1, flaky: 0, untested: null });
    expect(p.pass_rate).toBeCloseTo(10 / 12, 12);
    expect(p.verdict).toBe("blocked");
    expect(p.reasons).toEqual([
      { rule: "no_failures", verdict: "blocked", message: "2 test cases fail.", failing_test_cases: 2 },
      { rule: "min_pass_rate", verdict: "blocked", message: "Pass rate 83.33% is below the minimum of 95%.", pass_rate: p.pass_rate, min_pass_rate: 0.95 },
    ]);
    expect(p.summary).toBe("Blocked: 2 test cases fail. Pass rate 83.33% is below the minimum of 95%.");
    const failedResult = (i: number) => submitted.results.find((x: any) => x.full_title === `Checkout > test ${i}`);
    expect(p.failing_test_cases).toEqual([
      {
        test_case_id: failedResult(12).test_case_id,
        title: "test 12",
        full_title: "Checkout > test 12",
        file_path: "tests/checkout.spec.ts",
        run_id: run.id,
        result_id: failedResult(12).id,
        error_message: "expected 200, got 500",
        quarantined: false,
      },
      expect.objectContaining({ test_case_id: failedResult(13).test_case_id, error_message: "timed out", quarantined: false }),
    ]);
    expect(p.failing_test_cases_total).toBe(2);
    expect(p.runs).toEqual([
      { id: run.id, status: "failed", total_tests: 13, passed_tests: 10, failed_tests: 2, skipped_tests: 1, flaky_tests: 0, created_at: expect.any(String) },
    ]);

    // With failures not blocking, only the pass rate still does.
    await patchRelease(t, r.id, { gate: { block_on_failures: false } });
    const lenient = await progress(t, r.id);
    expect(lenient.reasons.map((x: any) => x.rule)).toEqual(["min_pass_rate"]);
  });

  it("is at risk while runs are unfinished, with flaky tests and a pass rate just above the minimum", async () => {
    const t = await createTenant();
    const r = await newRelease(t, { gate: { min_pass_rate: 0.9, block_on_failures: false } });
    const build = await addBuild(t, r.id);
    const done = await newRun(t, build.id);
    // 9 passed, 1 flaky, 1 failed: (9 + 1) / 11 = 90.91%, less than 2 points above 90%.
    await submit(t, done.id, [...results("passed", "passed", "passed", "passed", "passed", "passed", "passed", "passed", "passed", "flaky", "failed")]);
    await finishRun(t, done.id, "failed");
    await newRun(t, build.id);

    const p = await progress(t, r.id);
    expect(p.totals).toMatchObject({ test_cases: 11, passed: 9, flaky: 1, failed: 1 });
    expect(p.pass_rate).toBeCloseTo(10 / 11, 12);
    expect(p.verdict).toBe("at_risk");
    expect(p.reasons).toEqual([
      {
        rule: "pass_rate_margin",
        verdict: "at_risk",
        message: "Pass rate 90.91% is less than 2 percentage points above the minimum of 90%.",
        pass_rate: p.pass_rate,
        min_pass_rate: 0.9,
        margin: 0.02,
      },
      { rule: "runs_finished", verdict: "at_risk", message: "1 run is still queued or running.", unfinished_runs: 1 },
      { rule: "no_flaky", verdict: "at_risk", message: "1 test case is flaky.", flaky_test_cases: 1 },
    ]);
    expect(p.summary).toMatch(/^At risk: Pass rate 90.91% is less than 2 percentage points/);
    expect(p.runs.map((x: any) => x.status)).toEqual(["failed", "running"]);
  });

  it("is ready when a rerun fixed the failure: a test case counts by its latest result", async () => {
    const t = await createTenant();
    const r = await newRelease(t);
    const build = await addBuild(t, r.id, "v3.0.0");
    const first = await newRun(t, build.id);
    await submit(t, first.id, results("passed", "passed", "passed", "failed"));
    await finishRun(t, first.id, "failed");
    const rerun = await newRun(t, build.id);
    await submit(t, rerun.id, [result(4, "passed")]);
    await finishRun(t, rerun.id, "passed");

    const p = await progress(t, r.id);
    expect(p.totals).toEqual({ test_cases: 4, passed: 4, failed: 0, skipped: 0, flaky: 0, untested: null });
    expect(p.pass_rate).toBe(1);
    expect(p.failing_test_cases).toEqual([]);
    expect(p.verdict).toBe("ready");
    expect(p.reasons).toEqual([]);
    expect(p.summary).toBe("Ready: build v3.0.0 has a pass rate of 100% (minimum 95%) over 4 test cases in 2 finished runs.");
    expect(p.runs.map((x: any) => [x.id, x.failed_tests])).toEqual([
      [first.id, 1],
      [rerun.id, 0],
    ]);
  });

  it("judges the latest build by default, or the build named, and leaves out deleted runs", async () => {
    const t = await createTenant();
    const r = await newRelease(t);
    const old = await addBuild(t, r.id, "old");
    const oldRun = await newRun(t, old.id);
    await submit(t, oldRun.id, results("failed"));
    await finishRun(t, oldRun.id, "failed");
    const latest = await addBuild(t, r.id, "latest");
    const latestRun = await newRun(t, latest.id);
    await submit(t, latestRun.id, results("passed"));
    await finishRun(t, latestRun.id);

    const byDefault = await progress(t, r.id);
    expect(byDefault.build.id).toBe(latest.id);
    expect(byDefault.verdict).toBe("ready");
    const named = await progress(t, r.id, `?build_id=${old.id}`);
    expect(named.build.id).toBe(old.id);
    expect(named.verdict).toBe("blocked");
    expect(named.failing_test_cases_total).toBe(1);

    // A run of another tenant claiming the build id does not count.
    const stranger = await createTenant();
    const strangerRun = await call("/api/v1/testruns", { method: "POST", key: stranger.key, body: { project_id: stranger.project.id, build_id: latest.id } });
    await submit(stranger, strangerRun.body.id, results("failed"));
    expect((await progress(t, r.id)).runs.map((x: any) => x.id)).toEqual([latestRun.id]);

    expect((await call(`/api/v1/testruns/${latestRun.id}`, { method: "DELETE", key: t.key })).status).toBe(204);
    const afterDelete = await progress(t, r.id);
    expect(afterDelete.runs).toEqual([]);
    expect(afterDelete.reasons.map((x: any) => x.rule)).toEqual(["runs_present"]);
  });

  it("follows builds assigned from the build queue and taken back out", async () => {
    const t = await createTenant();
    const r = await newRelease(t);
    const queued = await call("/api/v1/builds", { method: "POST", key: t.key, body: { project_id: t.project.id, name: "from the queue" } });
    expect(queued.status, queued.text).toBe(202);
    const run = await newRun(t, queued.body.id);
    await submit(t, run.id, results("passed", "passed"));
    await finishRun(t, run.id);
    expect((await progress(t, r.id)).build).toBeNull();

    const assign = await call(`/api/v1/builds/${queued.body.id}`, { method: "PATCH", key: t.key, body: { release_id: r.id } });
    expect(assign.status, assign.text).toBe(200);
    const assigned = await progress(t, r.id);
    expect(assigned.build).toMatchObject({ id: queued.body.id, name: "from the queue" });
    expect(assigned.totals).toMatchObject({ test_cases: 2, passed: 2 });
    expect(assigned.verdict).toBe("ready");

    await call(`/api/v1/builds/${queued.body.id}`, { method: "PATCH", key: t.key, body: { release_id: null } });
    expect((await progress(t, r.id)).reasons.map((x: any) => x.rule)).toEqual(["build_assigned"]);
    const named = await call(`/api/v1/releases/${r.id}/progress?build_id=${queued.body.id}`, { key: t.key });
    expect(named.status).toBe(404);
  });

  it("is blocked when the runs executed nothing", async () => {
    const t = await createTenant();
    const r = await newRelease(t);
    const build = await addBuild(t, r.id);
    const run = await newRun(t, build.id);
    await submit(t, run.id, results("skipped"));
    await finishRun(t, run.id);
    const p = await progress(t, r.id);
    expect(p.pass_rate).toBeNull();
    expect(p.reasons).toEqual([
      {
        rule: "min_pass_rate",
        verdict: "blocked",
        message: "No test case has passed or failed yet, so the pass rate cannot meet the minimum of 95%.",
        pass_rate: null,
        min_pass_rate: 0.95,
      },
    ]);
  });
});
