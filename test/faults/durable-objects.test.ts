import { evictDurableObject, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { systemClock } from "../../src/core/context";
import { queueJobs } from "../../src/core/jobs/queue";
import { SCOPES } from "../../src/core/keys/scopes";
import { createDb } from "../../src/db/client";
import { leaseSize } from "../../src/http/rate-limit";
import { ADMIN_TOKEN, call, type CallResult } from "../helpers/http";
import { createKey, createTenant, type Tenant } from "../helpers/factories";

/**
 * Durable Objects evicted at the worst moments: in the middle of a rate-limit window (with the
 * isolate's leases of a twentieth of the limit), between and during concurrent build
 * registrations, and around claimed jobs. Nothing that was counted, queued or claimed is lost or
 * doubled, and no request gets past a limit. A call cut off by an eviction may fail (503 from the
 * limiter, 500 from a registration); what the tests hold is that a failure never lets anything
 * through, and that a retry puts everything right.
 */

const limiterOf = (keyId: string) => env.RATE_LIMITER.get(env.RATE_LIMITER.idFromName(`key:${keyId}`));
const queueOf = (projectId: string) => env.BUILD_QUEUE.get(env.BUILD_QUEUE.idFromName(projectId));

async function limit(t: Tenant, rateLimits: unknown) {
  const res = await call(`/api/v1/admin/organizations/${t.organization.id}`, { method: "PATCH", headers: { Authorization: `Bearer ${ADMIN_TOKEN}` }, body: { rate_limits: rateLimits } });
  expect(res.status, res.text).toBe(200);
}

/** The window is a fixed minute: start a test of one window early enough in it to end there too. */
async function earlyInAWindow(): Promise<void> {
  const into = Date.now() % 60_000;
  if (into > 35_000) await new Promise((r) => setTimeout(r, 60_000 - into + 200));
}

/** Evicts the object if it is running (evictDurableObject refuses an idle one); whether it did. */
async function evictIfRunning(stub: Parameters<typeof evictDurableObject>[0]): Promise<boolean> {
  try {
    await evictDurableObject(stub);
    return true;
  } catch (err) {
    if (/not currently running/.test(String(err))) return false;
    throw err;
  }
}

/**
 * Runs the calls, evicting the objects as each call ends, while the others are still in flight (a
 * timer loop cannot do it: timers here wait for the calls). How many evictions landed.
 */
async function evictingAsEachEnds<T>(stubs: Parameters<typeof evictDurableObject>[0][], calls: Promise<T>[]): Promise<{ result: T[]; evictions: number }> {
  let evictions = 0;
  const result = await Promise.all(
    calls.map((call) =>
      call.then(async (value) => {
        for (const stub of stubs) if (await evictIfRunning(stub)) evictions++;
        return value;
      }),
    ),
  );
  return { result, evictions };
}

const statusCounts = (answers: CallResult[]) => {
  const out: Record<number, number> = {};
  for (const a of answers) out[a.status] = (out[a.status] ?? 0) + 1;
  return out;
};

describe("a key's limiter evicted in the middle of its window", () => {
  for (const max of [60, 10]) {
    it(`never lets more than the limit (${max}, leases of ${leaseSize(max)}) through while it is evicted between and during bursts`, { timeout: 90_000 }, async () => {
      const t = await createTenant();
      await limit(t, { overrides: { runs_read: max } });
      const stub = limiterOf(t.keyId);
      await earlyInAWindow();
      const started = Math.floor(Date.now() / 60_000);
      const answers: CallResult[] = [];
      const calls = (n: number) => Array.from({ length: n }, () => call("/api/v1/testruns", { key: t.key }));
      const burst = (n: number) => Promise.all(calls(n));
      answers.push(...(await burst(Math.ceil(max / 3))));
      await stub.used("runs_read", 60);
      await evictDurableObject(stub);
      // Evicted again while the next burst's lease requests are in flight.
      const during = await evictingAsEachEnds([stub], calls(max));
      answers.push(...during.result);
      expect(during.evictions, "evictions during the burst").toBeGreaterThan(0);
      await stub.used("runs_read", 60);
      await evictDurableObject(stub);
      answers.push(...(await burst(max)));
      expect(Math.floor(Date.now() / 60_000), "the test ran within one window").toBe(started);

      const counts = statusCounts(answers);
      expect(Object.keys(counts).map(Number).every((s) => [200, 429, 503].includes(s)), JSON.stringify(counts)).toBe(true);
      const allowed = counts[200] ?? 0;
      expect(allowed).toBeLessThanOrEqual(max);
      // Every request let through was counted in the object's storage, eviction or not: what the
      // object counts is what it granted (requests and the isolate's unspent lease), never less.
      const used = await stub.used("runs_read", 60);
      expect(used).toBeGreaterThanOrEqual(allowed);
      expect(used).toBeLessThanOrEqual(max);
      // Counted but not spent: the isolate's current lease, and a lease granted to a call the
      // eviction cut off (answered 503). Never a reset of the count by the eviction.
      expect(used - allowed).toBeLessThanOrEqual(leaseSize(max) * (1 + (counts[503] ?? 0)));
      if (!counts[503]) expect(allowed).toBeGreaterThanOrEqual(max - leaseSize(max));
      const after = await call("/api/v1/testruns", { key: t.key });
      expect([200, 429]).toContain(after.status);
      if (after.status === 200) expect(allowed).toBeLessThan(max);
    });
  }
});

describe("the build queue evicted during concurrent registrations", () => {
  it("gives 30 builds the positions 1..30, each once, in the order the queue took them, and keeps them through evictions", async () => {
    const t = await createTenant();
    const stub = queueOf(t.project.id);
    // Running before the first wave, so the first eviction has an object to evict.
    expect(await stub.size()).toBe(0);
    const register = (n: number) => call("/api/v1/builds", { method: "POST", key: t.key, body: { project_id: t.project.id, name: `b${n}`, build_number: String(n) } });
    const answers = new Map<number, CallResult>();
    let evicted = 0;
    for (let wave = 0; wave < 3; wave++) {
      const numbers = Array.from({ length: 10 }, (_, i) => wave * 10 + i);
      // Each build is registered twice at once (a CI retry racing the first try); the object is
      // evicted while the wave is in flight.
      const { result: results, evictions } = await evictingAsEachEnds([stub], numbers.flatMap((n) => [register(n), register(n)]));
      evicted += evictions;
      results.forEach((res, i) => {
        const n = numbers[Math.floor(i / 2)]!;
        if (res.status === 202 && !answers.has(n)) answers.set(n, res);
        else if (res.status === 202) expect(res.body.id).toBe(answers.get(n)!.body.id);
        else expect([500, 503]).toContain(res.status);
      });
      await stub.size();
      await evictDurableObject(stub);
    }
    expect(evicted, "evictions during the waves").toBeGreaterThan(0);
    // A registration cut off by an eviction is retried, as CI does; it finds its build.
    for (let n = 0; n < 30; n++) {
      for (let tries = 0; !answers.has(n) && tries < 3; tries++) {
        const res = await register(n);
        if (res.status === 202) answers.set(n, res);
      }
      expect(answers.has(n), `build ${n} registered`).toBe(true);
    }

    const positions = [...answers.values()].map((a) => a.body.queue_position as number);
    expect([...positions].sort((a, b) => a - b)).toEqual(Array.from({ length: 30 }, (_, i) => i + 1));
    expect(await env.DB.prepare("SELECT count(*) AS n FROM builds WHERE project_id = ?").bind(t.project.id).first<{ n: number }>()).toEqual({ n: 30 });

    await stub.size();
    await evictDurableObject(stub);
    const queue = await call(`/api/v1/projects/${t.project.id}/build-queue`, { key: t.key });
    expect(queue.status, queue.text).toBe(200);
    const listed = (queue.body.data as { id: string; queue_position: number }[]).map((b) => [b.id, b.queue_position]);
    // Nothing is removed, so the place each registration was told is its place now.
    const told = [...answers.values()].map((a) => [a.body.id, a.body.queue_position]).sort((a, b) => (a[1] as number) - (b[1] as number));
    expect(listed).toEqual(told);
    await runInDurableObject(stub, async (instance) => {
      expect((await instance.list()).map((e) => [e.buildId, e.position])).toEqual(told);
    });
  });
});

describe("claimed jobs around evictions", () => {
  it("hands each job to one claim while the runners' limiters are evicted, and the leases hold through further evictions", async () => {
    const t = await createTenant();
    // Limited (the tests' default tier is unlimited), so every claim goes through a limiter.
    await limit(t, { tier: "standard" });
    const ctx = {
      db: createDb(env.DB),
      env,
      principal: { keyId: t.keyId, organizationId: t.organization.id, projectId: null, scopes: new Set(SCOPES) },
      clock: systemClock,
    };
    const outcomes = await queueJobs(
      ctx,
      Array.from({ length: 10 }, (_, i) => ({ projectId: t.project.id, planId: null, testType: "quickTest" as const, buildRef: "abc", runTitle: `job ${i}` })),
    );
    const jobIds = outcomes.map((o) => (o.ok ? o.job.jobId : null));
    expect(jobIds.every(Boolean)).toBe(true);
    const runners = await Promise.all(Array.from({ length: 3 }, (_, i) => createKey(t, { scopes: ["jobs:run"], name: `runner ${i}` })));

    for (const r of runners) expect(await limiterOf(r.id).used("jobs", 60)).toBe(0);
    expect(await queueOf(t.project.id).size()).toBe(0);

    let evicted = 0;
    const claimedBy = new Map<string, { key: string; id: string; lease: string }>();
    const claims = async (n: number) => {
      const { result: answers, evictions } = await evictingAsEachEnds(
        runners.map((r) => limiterOf(r.id)),
        Array.from({ length: n }, (_, i) => {
          const runner = runners[i % runners.length]!;
          return call("/api/v1/jobs/claim", { method: "POST", key: runner.key, body: { lease_seconds: 600 } }).then((res) => ({ res, runner }));
        }),
      );
      evicted += evictions;
      for (const { res, runner } of answers) {
        expect([200, 204, 503], res.text).toContain(res.status);
        if (res.status !== 200) continue;
        expect(claimedBy.has(res.body.id), `job ${res.body.id} handed out twice`).toBe(false);
        claimedBy.set(res.body.id, { key: runner.key, id: runner.id, lease: res.body.lease_until });
      }
    };
    await claims(6);
    await claims(6);
    for (let i = 0; i < 10 && claimedBy.size < 10; i++) await claims(3);
    expect(evicted, "evictions during the claims").toBeGreaterThan(0);
    expect([...claimedBy.keys()].sort()).toEqual([...jobIds].sort());
    for (const [jobId, holder] of claimedBy) {
      const row = await env.DB.prepare("SELECT status, attempts, claimed_by, lease_until FROM jobs WHERE id = ?").bind(jobId).first();
      expect(row).toEqual({ status: "claimed", attempts: 1, claimed_by: holder.id, lease_until: holder.lease });
    }
    // None is left for anyone.
    expect((await call("/api/v1/jobs/claim", { method: "POST", key: runners[0]!.key })).status).toBe(204);

    // Every object a job's requests touch is evicted: the leases are D1's and hold.
    for (const r of runners) {
      await limiterOf(r.id).used("jobs", 60);
      await evictDurableObject(limiterOf(r.id));
    }
    await queueOf(t.project.id).size();
    await evictDurableObject(queueOf(t.project.id));
    for (const [jobId, holder] of claimedBy) {
      const beat = await call(`/api/v1/jobs/${jobId}/heartbeat`, { method: "POST", key: holder.key, body: { lease_seconds: 900 } });
      expect(beat.status, beat.text).toBe(200);
      expect(Date.parse(beat.body.lease_until)).toBeGreaterThan(Date.parse(holder.lease));
      const other = runners.find((r) => r.id !== holder.id)!;
      expect((await call(`/api/v1/jobs/${jobId}/heartbeat`, { method: "POST", key: other.key })).status).toBe(409);
    }
    expect((await call("/api/v1/jobs/claim", { method: "POST", key: runners[1]!.key })).status).toBe(204);
    const attempts = await env.DB.prepare(`SELECT sum(attempts) AS n FROM jobs WHERE organization_id = ?`).bind(t.organization.id).first<{ n: number }>();
    expect(attempts!.n).toBe(10);
  });
});
