import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { call } from "./helpers/http";
import { createTenant } from "./helpers/factories";

/**
 * What the CI-shaped requests (issue 12's P1: create a run, post its results, complete it) cost in
 * D1 round trips. Each round trip is a wait on the database the Worker cannot overlap with its own
 * work, so these counts bound the throughput of every CI pipeline; they are pinned here so a change
 * that adds one is seen. Read from `Server-Timing: d1;desc="calls=…"` (D1_METRICS=on in tests).
 */
function d1Calls(headers: Headers): number {
  const match = /calls=(\d+)/.exec(headers.get("server-timing") ?? "");
  if (!match) throw new Error(`no D1 metrics in ${headers.get("server-timing")}`);
  return Number(match[1]);
}

const resultsOf = (n: number, failed = 0) =>
  Array.from({ length: n }, (_, i) => ({
    title: `test ${i}`,
    file_path: "specs/cost.spec.ts",
    status: i < failed ? "failed" : "passed",
    duration: 100 + i,
    ...(i < failed ? { error: { message: "expected 1 to be 2" } } : {}),
  }));

describe("D1 round trips of a CI-shaped spec", () => {
  it("create, 10 results and complete cost 2, 4 and 2 calls, the key lookup included", async () => {
    const tenant = await createTenant();
    // Warm the key's last_used_at (written at most once a minute), so it is not counted below.
    await call("/api/v1/testruns?limit=1", { key: tenant.key });

    const created = await call("/api/v1/testruns", {
      method: "POST",
      key: tenant.key,
      body: { project_id: tenant.project.id, ci_build_id: "b1", run_title: "cost.spec.ts" },
    });
    expect(created.status).toBe(201);
    const submitted = await call(`/api/v1/testruns/${created.body.id}/results`, {
      method: "POST",
      key: tenant.key,
      body: { results: resultsOf(10, 1) },
    });
    expect(submitted.status).toBe(201);
    expect(submitted.body.accepted).toBe(10);
    const completed = await call(`/api/v1/testruns/${created.body.id}`, { method: "PATCH", key: tenant.key, body: { status: "failed" } });
    expect(completed.status).toBe(200);

    // create: key, one batch that checks the project, inserts and reads back. results: key, run, one batch
    // that writes and reads what flakiness needs, one that scores and reads the counts back.
    // complete: key, one batch that completes and reads back. (Before issue 12: 4, 7, 4.)
    expect([d1Calls(created.headers), d1Calls(submitted.headers), d1Calls(completed.headers)]).toEqual([2, 4, 2]);
    // What the answers say is what a second request reads back.
    const read = await call(`/api/v1/testruns/${created.body.id}`, { key: tenant.key });
    expect(read.body).toMatchObject({ status: "failed", total_tests: 10, failed_tests: 1, passed_tests: 9 });
    expect(completed.body).toMatchObject({ status: "failed", total_tests: 10, failed_tests: 1 });
    expect(submitted.body.run ?? submitted.body).toBeDefined();
  });

  it("checks the project inside the creating batch: another organization's project is 404 and nothing is written", async () => {
    const mine = await createTenant();
    const theirs = await createTenant();
    const before = await call(`/api/v1/testruns?project_id=${theirs.project.id}`, { key: theirs.key });
    for (const projectId of [theirs.project.id, "proj_does_not_exist"]) {
      for (const status of [undefined, "passed"]) {
        const res = await call("/api/v1/testruns", { method: "POST", key: mine.key, body: { project_id: projectId, run_title: "x", status } });
        expect(res.status, `${projectId} ${status}`).toBe(404);
        expect(res.body.error).toBe("not_found");
      }
    }
    const after = await call(`/api/v1/testruns?project_id=${theirs.project.id}`, { key: theirs.key });
    expect(after.body.total).toBe(before.body.total);
    const rows = await env.DB.prepare("SELECT count(*) AS n FROM test_runs WHERE organization_id = ?").bind(mine.organization.id).first<{ n: number }>();
    expect(rows?.n).toBe(0);
    const events = await env.DB.prepare("SELECT count(*) AS n FROM events WHERE organization_id = ?").bind(mine.organization.id).first<{ n: number }>();
    expect(events?.n).toBe(0);
  });
});
