import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { systemClock, type CoreContext } from "../src/core/context";
import { queueJobs, type JobRequest } from "../src/core/jobs/queue";
import { nextClaimable } from "../src/core/jobs/runner";
import { SQLiteAsyncDialect } from "drizzle-orm/sqlite-core";
import { SCOPES } from "../src/core/keys/scopes";
import { createDb } from "../src/db/client";
import { call } from "./helpers/http";
import { createKey, createProject, createTenant, type Tenant } from "./helpers/factories";

function ownerContext(t: Tenant): CoreContext {
  return {
    db: createDb(env.DB),
    env,
    principal: { keyId: t.keyId, organizationId: t.organization.id, projectId: null, scopes: new Set(SCOPES) },
    clock: systemClock,
  };
}

/** Queues jobs as a trigger would; answers their ids in order. */
async function queue(t: Tenant, requests: Partial<JobRequest>[]): Promise<{ jobId: string; runId: string }[]> {
  const outcomes = await queueJobs(
    ownerContext(t),
    requests.map((r, i) => ({ projectId: t.project.id, planId: null, testType: "quickTest", buildRef: "abc", runTitle: `plan ${i}`, ...r })),
  );
  return outcomes.map((o) => {
    if (!o.ok) throw new Error(`queueJobs refused a job: ${o.error}`);
    return { jobId: o.job.jobId, runId: o.job.runId };
  });
}

async function runnerKey(t: Tenant, options: { projectId?: string } = {}): Promise<{ key: string; id: string }> {
  return createKey(t, { scopes: ["jobs:run"], name: "runner", ...options });
}

const claim = (key: string, body?: Record<string, unknown>) => call("/api/v1/jobs/claim", { method: "POST", key, body });
const heartbeat = (key: string, id: string, body?: Record<string, unknown>) => call(`/api/v1/jobs/${id}/heartbeat`, { method: "POST", key, body });
const release = (key: string, id: string, body?: Record<string, unknown>) => call(`/api/v1/jobs/${id}/release`, { method: "POST", key, body });

interface JobDbRow {
  id: string;
  status: string;
  attempts: number;
  max_attempts: number;
  lease_until: string | null;
  claimed_by: string | null;
  runner_name: string | null;
  error: string | null;
  finished_at: string | null;
  cookies_sealed: string | null;
}

async function jobRow(id: string): Promise<JobDbRow> {
  const row = await env.DB.prepare("SELECT * FROM jobs WHERE id = ?").bind(id).first<JobDbRow>();
  if (!row) throw new Error(`no job ${id}`);
  return row;
}

async function runRow(id: string): Promise<{ status: string; status_reason: string | null; completed_at: string | null }> {
  const row = await env.DB.prepare("SELECT status, status_reason, completed_at FROM test_runs WHERE id = ?").bind(id).first<any>();
  if (!row) throw new Error(`no run ${id}`);
  return row;
}

/** The only way to let a lease run out in a test: move it into the past. */
async function lapse(jobId: string): Promise<void> {
  await env.DB.prepare("UPDATE jobs SET lease_until = ? WHERE id = ?").bind(new Date(Date.now() - 1000).toISOString(), jobId).run();
}

describe("claiming jobs", () => {
  it("hands each of 20 jobs to exactly one of 50 concurrent claims from 5 runners", async () => {
    const t = await createTenant();
    const queued = await queue(t, Array.from({ length: 20 }, () => ({})));
    const runners = await Promise.all(Array.from({ length: 5 }, () => runnerKey(t)));
    const answers = await Promise.all(
      Array.from({ length: 50 }, (_, i) => {
        const runner = runners[i % runners.length]!;
        return claim(runner.key, { runner_name: `runner-${i % runners.length}`, lease_seconds: 600 }).then((res) => ({ res, runner }));
      }),
    );
    const claimed = answers.filter((a) => a.res.status === 200);
    expect(answers.filter((a) => a.res.status === 204)).toHaveLength(30);
    expect(claimed).toHaveLength(20);
    const ids = claimed.map((a) => a.res.body.id as string);
    expect(new Set(ids).size).toBe(20);
    expect([...ids].sort()).toEqual(queued.map((q) => q.jobId).sort());
    for (const { res, runner } of claimed) {
      expect(res.body).toMatchObject({ status: "claimed", attempts: 1, max_attempts: 3 });
      const row = await jobRow(res.body.id);
      // Each job was claimed once, by the runner that was told it has it.
      expect(row).toMatchObject({ status: "claimed", attempts: 1, claimed_by: runner.id });
      expect(row.lease_until).toBe(res.body.lease_until);
    }
    for (const q of queued) expect((await runRow(q.runId)).status).toBe("running");
  });

  it("answers the claimed job with its run, build, lease and runner, and 204 once none is left", async () => {
    const t = await createTenant();
    const [q] = await queue(t, [{ deviceName: "Pixel 8", platformVersion: "14", labels: ["android"] }]);
    const runner = await runnerKey(t);
    const before = Date.now();
    const res = await claim(runner.key, { runner_name: "ci-7", labels: ["android", "linux"] });
    expect(res.status, res.text).toBe(200);
    expect(res.body).toMatchObject({
      id: q!.jobId,
      run_id: q!.runId,
      project_id: t.project.id,
      plan_id: null,
      test_type: "quickTest",
      build_id: "abc",
      device_name: "Pixel 8",
      platform_version: "14",
      labels: ["android"],
      status: "claimed",
      attempts: 1,
      runner_name: "ci-7",
      cookies: [],
      environment: null,
      context: null,
    });
    // The default lease is five minutes.
    const lease = Date.parse(res.body.lease_until) - before;
    expect(lease).toBeGreaterThanOrEqual(299_000);
    expect(lease).toBeLessThanOrEqual(301_000);
    expect((await claim(runner.key, { labels: ["android", "linux"] })).status).toBe(204);
    // A bare POST (no body at all) is a claim too.
    expect((await claim(runner.key)).status).toBe(204);
  });

  it("reclaims a lapsed lease, fails the job and its run after the last attempt lapses, and refuses heartbeats on lost leases", async () => {
    const t = await createTenant();
    const [q] = await queue(t, [{}]);
    const a = await runnerKey(t);
    const b = await runnerKey(t);

    const first = await claim(a.key, { lease_seconds: 30 });
    expect(first.status, first.text).toBe(200);
    expect(first.body.attempts).toBe(1);
    // Not lapsed yet: nobody else gets it.
    expect((await claim(b.key)).status).toBe(204);

    await lapse(q!.jobId);
    const second = await claim(b.key, { lease_seconds: 30 });
    expect(second.status, second.text).toBe(200);
    expect(second.body).toMatchObject({ id: q!.jobId, attempts: 2 });
    expect(await jobRow(q!.jobId)).toMatchObject({ claimed_by: b.id, attempts: 2 });
    // A's lease is gone: it may neither extend nor give back what B now holds.
    const lost = await heartbeat(a.key, q!.jobId);
    expect(lost.status).toBe(409);
    expect(lost.body.details.reason).toBe("held_by_another_runner");
    expect((await release(a.key, q!.jobId)).status).toBe(409);

    await lapse(q!.jobId);
    // B's own lease lapsed (not yet claimed again): its heartbeat is refused, the lease is lost.
    const lapsed = await heartbeat(b.key, q!.jobId);
    expect(lapsed.status).toBe(409);
    expect(lapsed.body.details.reason).toBe("lease_lost");
    const third = await claim(a.key);
    expect(third.status, third.text).toBe(200);
    expect(third.body).toMatchObject({ id: q!.jobId, attempts: 3 });
    expect((await runRow(q!.runId)).status).toBe("running");

    await lapse(q!.jobId);
    // The third lapse was the last attempt: the next claim fails the job instead of handing it out.
    expect((await claim(b.key)).status).toBe(204);
    const failed = await jobRow(q!.jobId);
    expect(failed).toMatchObject({ status: "failed", attempts: 3, error: "The lease expired on the last of 3 attempts." });
    expect(failed.finished_at).not.toBeNull();
    const run = await runRow(q!.runId);
    expect(run).toMatchObject({ status: "failed", status_reason: "The lease expired on the last of 3 attempts." });
    expect(run.completed_at).not.toBeNull();
    const finished = await heartbeat(a.key, q!.jobId);
    expect(finished.status).toBe(409);
    expect(finished.body.details).toMatchObject({ reason: "finished", status: "failed" });
  });

  it("finds the next job through the claimable index, never a scan of the table", async () => {
    const t = await createTenant();
    const query = new SQLiteAsyncDialect().sqlToQuery(
      nextClaimable(ownerContext(t), { testType: "quickTest", deviceName: "Pixel 8", labels: ["gpu"] }, new Date().toISOString()),
    );
    const rows = await env.DB.prepare(`EXPLAIN QUERY PLAN ${query.sql}`).bind(...query.params).all<{ detail: string }>();
    const steps = rows.results.map((r) => r.detail);
    expect(steps.join("\n")).toMatch(/SEARCH j USING INDEX jobs_claimable_idx \(organization_id=\?\)/);
    expect(steps.filter((s) => /^SCAN (j|r)\b/.test(s))).toEqual([]);
  });

  it("names the job's own attempt limit when its last lease lapses", async () => {
    const t = await createTenant();
    const [q] = await queue(t, [{}]);
    await env.DB.prepare("UPDATE jobs SET max_attempts = 1 WHERE id = ?").bind(q!.jobId).run();
    const runner = await runnerKey(t);
    expect((await claim(runner.key)).status).toBe(200);
    await lapse(q!.jobId);
    expect((await claim(runner.key)).status).toBe(204);
    expect((await jobRow(q!.jobId)).error).toBe("The lease expired on the last of 1 attempts.");
    expect((await runRow(q!.runId)).status_reason).toBe("The lease expired on the last of 1 attempts.");
  });
});

describe("heartbeat and release", () => {
  it("extends the lease of the holder only", async () => {
    const t = await createTenant();
    const [q] = await queue(t, [{}]);
    const holder = await runnerKey(t);
    const other = await runnerKey(t);
    const claimed = await claim(holder.key, { lease_seconds: 30 });
    expect(claimed.status).toBe(200);

    const extended = await heartbeat(holder.key, q!.jobId, { lease_seconds: 600 });
    expect(extended.status, extended.text).toBe(200);
    expect(Date.parse(extended.body.lease_until)).toBeGreaterThan(Date.parse(claimed.body.lease_until) + 500_000);
    expect(extended.body).toMatchObject({ id: q!.jobId, status: "claimed", attempts: 1 });
    expect((await jobRow(q!.jobId)).lease_until).toBe(extended.body.lease_until);
    // Without a body: the default lease, from now.
    const defaulted = await heartbeat(holder.key, q!.jobId);
    expect(defaulted.status).toBe(200);
    expect(Date.parse(defaulted.body.lease_until) - Date.now()).toBeLessThanOrEqual(300_000);
    expect(Date.parse(defaulted.body.lease_until) - Date.now()).toBeGreaterThan(290_000);

    const stolen = await heartbeat(other.key, q!.jobId, { lease_seconds: 3600 });
    expect(stolen.status).toBe(409);
    expect(stolen.body).toMatchObject({ error: "conflict", details: { reason: "held_by_another_runner" } });
    const notYours = await release(other.key, q!.jobId);
    expect(notYours.status).toBe(409);
    expect(await jobRow(q!.jobId)).toMatchObject({ status: "claimed", claimed_by: holder.id, lease_until: defaulted.body.lease_until });
    expect((await runRow(q!.runId)).status).toBe("running");

    const tooShort = await heartbeat(holder.key, q!.jobId, { lease_seconds: 29 });
    expect(tooShort.status).toBe(400);
    expect(tooShort.body.details.field).toBe("lease_seconds");
  });

  it("gives a job back: queued again with its attempts, its run queued, and another runner can claim it", async () => {
    const t = await createTenant();
    const [q] = await queue(t, [{}]);
    const a = await runnerKey(t);
    const b = await runnerKey(t);
    expect((await claim(a.key, { runner_name: "a" })).status).toBe(200);
    expect((await claim(b.key)).status).toBe(204);

    const released = await release(a.key, q!.jobId, { reason: "Runner shutting down." });
    expect(released.status, released.text).toBe(200);
    expect(released.body).toMatchObject({ status: "queued", lease_until: null, runner_name: null, attempts: 1, error: "Runner shutting down." });
    expect(await jobRow(q!.jobId)).toMatchObject({ status: "queued", lease_until: null, claimed_by: null, attempts: 1 });
    expect((await runRow(q!.runId)).status).toBe("queued");
    // Given back, it is no longer a's to extend or release.
    expect((await heartbeat(a.key, q!.jobId)).body.details.reason).toBe("lease_lost");
    expect((await release(a.key, q!.jobId)).status).toBe(409);

    const taken = await claim(b.key, { runner_name: "b" });
    expect(taken.status).toBe(200);
    expect(taken.body).toMatchObject({ id: q!.jobId, attempts: 2, runner_name: "b" });
    expect((await runRow(q!.runId)).status).toBe("running");
  });

  it("a job released on its last attempt can still be claimed (a release spends no lapse)", async () => {
    const t = await createTenant();
    const [q] = await queue(t, [{}]);
    await env.DB.prepare("UPDATE jobs SET max_attempts = 1 WHERE id = ?").bind(q!.jobId).run();
    const runner = await runnerKey(t);
    expect((await claim(runner.key)).status).toBe(200);
    expect((await release(runner.key, q!.jobId)).status).toBe(200);
    const again = await claim(runner.key);
    expect(again.status).toBe(200);
    expect(again.body).toMatchObject({ id: q!.jobId, attempts: 2 });
  });
});

describe("what a runner gets", () => {
  it("filters by test type, device, platform, labels and project", async () => {
    const t = await createTenant();
    const second = await createProject(t, "Mobile");
    const [quick, deep, pixel, labelled, mobile] = await queue(t, [
      {},
      { testType: "deepTest" },
      { deviceName: "Pixel 8", platformVersion: "14" },
      { labels: ["gpu", "linux"] },
      { projectId: second.id },
    ]);
    const runner = await runnerKey(t);
    const take = async (body: Record<string, unknown>) => {
      const res = await claim(runner.key, { lease_seconds: 3600, ...body });
      expect(res.status, `${JSON.stringify(body)}: ${res.text}`).toBe(200);
      return res.body.id as string;
    };
    expect(await take({ test_type: "deepTest" })).toBe(deep!.jobId);
    expect((await claim(runner.key, { test_type: "deepTest" })).status).toBe(204);
    expect((await claim(runner.key, { device_name: "Pixel 8", platform_version: "13" })).status).toBe(204);
    expect(await take({ device_name: "Pixel 8", platform_version: "14" })).toBe(pixel!.jobId);
    expect(await take({ project_id: second.id })).toBe(mobile!.jobId);
    expect((await claim(runner.key, { project_id: second.id })).status).toBe(204);
    // A job's labels must all be among the runner's: "gpu" alone fits the unlabelled job, not the gpu+linux one.
    expect(await take({ labels: ["gpu"] })).toBe(quick!.jobId);
    expect((await claim(runner.key, { labels: ["gpu"] })).status).toBe(204);
    expect(await take({ labels: ["linux", "arm64", "gpu"] })).toBe(labelled!.jobId);
    expect((await claim(runner.key, { labels: ["linux", "arm64", "gpu"] })).status).toBe(204);
  });

  it("a runner without labels gets only unlabelled jobs", async () => {
    const t = await createTenant();
    const [labelled] = await queue(t, [{ labels: ["gpu"] }]);
    const runner = await runnerKey(t);
    expect((await claim(runner.key)).status).toBe(204);
    expect((await claim(runner.key, { labels: ["linux"] })).status).toBe(204);
    expect((await claim(runner.key, { labels: ["gpu"] })).body.id).toBe(labelled!.jobId);
  });

  it("carries the decrypted cookies, the environment and the context", async () => {
    const t = await createTenant();
    const now = new Date().toISOString();
    await env.DB.batch([
      env.DB.prepare(
        "INSERT INTO environments (id, organization_id, project_id, name, base_url, variables, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
      ).bind("env_jobs1", t.organization.id, t.project.id, "staging", "https://staging.example.com", JSON.stringify({ REGION: "eu" }), now, now),
      env.DB.prepare("INSERT INTO contexts (id, organization_id, project_id, name, data, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)").bind(
        "ctx_jobs1",
        t.organization.id,
        t.project.id,
        "logged-in",
        JSON.stringify({ user: "qa@example.com", roles: ["admin"] }),
        now,
        now,
      ),
    ]);
    const cookies = [{ name: "session", value: "s3cr3t-value", domain: "staging.example.com", path: "/" }];
    const [q] = await queue(t, [{ cookies, environmentId: "env_jobs1", contextId: "ctx_jobs1" }]);
    // Stored sealed, never in clear.
    expect((await jobRow(q!.jobId)).cookies_sealed).not.toContain("s3cr3t");
    const runner = await runnerKey(t);
    const res = await claim(runner.key);
    expect(res.status, res.text).toBe(200);
    expect(res.body.cookies).toEqual(cookies);
    expect(res.body.environment).toEqual({ id: "env_jobs1", name: "staging", base_url: "https://staging.example.com", variables: { REGION: "eu" } });
    expect(res.body.context).toEqual({ id: "ctx_jobs1", name: "logged-in", data: { user: "qa@example.com", roles: ["admin"] } });
    // Only the claim shows the cookies.
    const beat = await heartbeat(runner.key, q!.jobId);
    expect(beat.status).toBe(200);
    expect(beat.text).not.toContain("s3cr3t");
  });

  it("never hands out the job of a deleted run", async () => {
    const t = await createTenant();
    const [q] = await queue(t, [{}]);
    await env.DB.prepare("UPDATE test_runs SET deleted_at = ? WHERE id = ?").bind(new Date().toISOString(), q!.runId).run();
    expect((await claim((await runnerKey(t)).key)).status).toBe(204);
  });

  it("refuses a lease outside 30-3600 seconds and a runner name over 100 characters", async () => {
    const t = await createTenant();
    await queue(t, [{}]);
    const runner = await runnerKey(t);
    for (const body of [{ lease_seconds: 29 }, { lease_seconds: 3601 }, { lease_seconds: 60.5 }, { runner_name: "r".repeat(101) }]) {
      const res = await claim(runner.key, body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(res.body.error).toBe("invalid_request");
    }
    expect((await claim(runner.key, { lease_seconds: 3600, runner_name: "r".repeat(100) })).status).toBe(200);
  });
});

describe("tenancy and scopes", () => {
  it("keeps another organization's runners away from the jobs, and answers 404 for a foreign job", async () => {
    const a = await createTenant();
    const b = await createTenant();
    const [q] = await queue(a, [{}]);
    const foreign = await runnerKey(b);
    expect((await claim(foreign.key)).status).toBe(204);
    expect((await claim(foreign.key, { project_id: a.project.id })).status).toBe(404);
    expect(await jobRow(q!.jobId)).toMatchObject({ status: "queued", attempts: 0 });

    const own = await runnerKey(a);
    expect((await claim(own.key)).status).toBe(200);
    const missing = await heartbeat(foreign.key, "job_00000000000000000000000000");
    for (const res of [await heartbeat(foreign.key, q!.jobId), await release(foreign.key, q!.jobId)]) {
      expect(res.status).toBe(404);
      expect(res.body.error).toBe("not_found");
      expect(res.body.message).toBe(missing.body.message);
    }
    expect(await jobRow(q!.jobId)).toMatchObject({ status: "claimed", claimed_by: own.id });
  });

  it("a project-restricted runner claims only its project's jobs", async () => {
    const t = await createTenant();
    const other = await createProject(t, "Other");
    const [mine, theirs] = await queue(t, [{ projectId: t.project.id }, { projectId: other.id }]);
    await env.DB.prepare("UPDATE jobs SET number = number + 1000 WHERE id = ?").bind(mine!.jobId).run();
    const restricted = await runnerKey(t, { projectId: t.project.id });
    expect((await claim(restricted.key, { project_id: other.id })).status).toBe(404);
    const res = await claim(restricted.key);
    expect(res.body.id).toBe(mine!.jobId);
    expect((await claim(restricted.key)).status).toBe(204);
    expect((await jobRow(theirs!.jobId)).status).toBe("queued");
    expect((await heartbeat(restricted.key, theirs!.jobId)).status).toBe(404);
  });

  it("refuses a key without jobs:run on every job route", async () => {
    const t = await createTenant();
    const [q] = await queue(t, [{}]);
    const reader = await createKey(t, { scopes: ["testruns:read", "results:submit"] });
    for (const res of [await claim(reader.key), await heartbeat(reader.key, q!.jobId), await release(reader.key, q!.jobId)]) {
      expect(res.status).toBe(403);
      expect(res.body.error).toBe("forbidden");
    }
    expect(await jobRow(q!.jobId)).toMatchObject({ status: "queued", attempts: 0 });
  });
});
