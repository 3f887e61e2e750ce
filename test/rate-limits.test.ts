import { evictDurableObject, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { RATE_LIMIT_GROUP_NAMES } from "../src/core/rate-limits/limits";
import { ADMIN_TOKEN, call } from "./helpers/http";
import { createKey, createTenant, type Tenant } from "./helpers/factories";

async function limit(t: Tenant, rateLimits: unknown) {
  const res = await call(`/api/v1/admin/organizations/${t.organization.id}`, {
    method: "PATCH",
    headers: { Authorization: `Bearer ${ADMIN_TOKEN}` },
    body: { rate_limits: rateLimits },
  });
  expect(res.status, res.text).toBe(200);
  return res.body;
}

const limiterOf = (keyId: string) => env.RATE_LIMITER.get(env.RATE_LIMITER.idFromName(`key:${keyId}`));

describe("per-key rate limits", () => {
  it("answers the request past the limit 429 with Retry-After and the RateLimit headers, in each surface's envelope", async () => {
    const t = await createTenant();
    await limit(t, { tier: "standard", overrides: { projects: 3 } });
    const answers = [];
    for (let i = 0; i < 3; i++) answers.push(await call("/api/v1/projects", { key: t.key }));
    for (const [i, a] of answers.entries()) {
      expect(a.status).toBe(200);
      expect(a.headers.get("ratelimit-policy")).toBe('"projects";q=3;w=60');
      expect(a.headers.get("ratelimit")).toMatch(new RegExp(`^"projects";r=${2 - i};t=\\d+$`));
    }
    const refused = await call("/api/v1/projects", { key: t.key });
    expect(refused.status).toBe(429);
    expect(refused.body).toMatchObject({ error: "rate_limited", details: { group: "projects", limit: 3, window_seconds: 60 } });
    const retryAfter = Number(refused.headers.get("retry-after"));
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(60);
    expect(refused.headers.get("ratelimit")).toMatch(/^"projects";r=0;t=\d+$/);
    // The reporting surface's projects are the same group, refused in its own envelope.
    const reporting = await call("/api/projects", { key: t.key });
    expect(reporting.status).toBe(429);
    expect(reporting.body.error.code).toBe("RATE_LIMITED");
    // Other groups of the same key are unaffected.
    expect((await call("/api/v1/testruns", { key: t.key })).status).toBe(200);
  });

  it("does not count one key's requests against another's", async () => {
    const t = await createTenant();
    await limit(t, { overrides: { projects: 1 } });
    const other = await createKey(t, { scopes: ["projects:read"] });
    expect((await call("/api/v1/projects", { key: t.key })).status).toBe(200);
    expect((await call("/api/v1/projects", { key: t.key })).status).toBe(429);
    expect((await call("/api/v1/projects", { key: other.key })).status).toBe(200);
  });

  it("starts over when the window ends, and keeps the count through an eviction", async () => {
    const t = await createTenant();
    await limit(t, { overrides: { runs_read: 2 } });
    expect((await call("/api/v1/testruns", { key: t.key })).status).toBe(200);
    expect((await call("/api/v1/testruns", { key: t.key })).status).toBe(200);
    const stub = limiterOf(t.keyId);
    await evictDurableObject(stub);
    expect((await call("/api/v1/testruns", { key: t.key })).status).toBe(429);
    expect(await stub.used("runs_read", 60)).toBe(2);
    // The window ends (moved back a minute in the object's storage): the count starts over.
    await runInDurableObject(stub, (_instance, state) => {
      state.storage.sql.exec("UPDATE windows SET window_start = window_start - 60000");
    });
    expect((await call("/api/v1/testruns", { key: t.key })).status).toBe(200);
  });

  it("leases a twentieth of a larger limit to the isolate: one limiter call per 5 requests at 100, exact counts, no bypass through an eviction", async () => {
    const t = await createTenant();
    await limit(t, { overrides: { runs_read: 100 } });
    const stub = limiterOf(t.keyId);
    const remaining: number[] = [];
    for (let i = 0; i < 100; i++) {
      const res = await call("/api/v1/testruns", { key: t.key });
      expect(res.status, `request ${i + 1}`).toBe(200);
      remaining.push(Number(/r=(\d+)/.exec(res.headers.get("ratelimit") ?? "")?.[1]));
      if (i === 0) expect(await stub.used("runs_read", 60)).toBe(5);
      // The object is evicted mid-lease: its count survives, the isolate's lease too.
      if (i === 6) await evictDurableObject(stub);
    }
    // The header counts down by one per request, as without leases.
    expect(remaining).toEqual(Array.from({ length: 100 }, (_, i) => 99 - i));
    expect(await stub.used("runs_read", 60)).toBe(100);
    const refused = await call("/api/v1/testruns", { key: t.key });
    expect(refused.status).toBe(429);
    expect(refused.headers.get("ratelimit")).toMatch(/^"runs_read";r=0;t=\d+$/);
  });

  it("never lets concurrent requests past a leased limit", async () => {
    const t = await createTenant();
    await limit(t, { overrides: { runs_read: 60 } });
    const answers = await Promise.all(Array.from({ length: 90 }, () => call("/api/v1/testruns", { key: t.key })));
    const allowed = answers.filter((a) => a.status === 200).length;
    // Leases of 3: concurrent requests of one isolate may leave a lease unspent at the edge,
    // refusing a little early, never letting one more through.
    expect(allowed).toBeLessThanOrEqual(60);
    expect(allowed).toBeGreaterThanOrEqual(57);
    expect(answers.filter((a) => a.status === 429)).toHaveLength(90 - allowed);
  });

  it("never lets concurrent requests past the limit", async () => {
    const t = await createTenant();
    await limit(t, { overrides: { runs_read: 10 } });
    const answers = await Promise.all(Array.from({ length: 30 }, () => call("/api/v1/testruns", { key: t.key })));
    const statuses = answers.map((a) => a.status);
    expect(statuses.filter((s) => s === 200)).toHaveLength(10);
    expect(statuses.filter((s) => s === 429)).toHaveLength(20);
  });

  it("takes tiers and 'unlimited' from the admin setting, and refuses unknown groups and tiers", async () => {
    const t = await createTenant();
    const pro = await limit(t, "pro");
    expect(pro.rate_limits).toEqual({ tier: "pro" });
    expect((await call("/api/v1/projects", { key: t.key })).headers.get("ratelimit-policy")).toBe('"projects";q=300;w=60');
    await limit(t, "unlimited");
    const free = await call("/api/v1/projects", { key: t.key });
    expect(free.status).toBe(200);
    expect(free.headers.get("ratelimit-policy")).toBeNull();
    for (const bad of ["platinum", { overrides: { nonsense: 5 } }, { overrides: { projects: -1 } }, { tier: "pro", extra: true }]) {
      const res = await call(`/api/v1/admin/organizations/${t.organization.id}`, { method: "PATCH", headers: { Authorization: `Bearer ${ADMIN_TOKEN}` }, body: { rate_limits: bad } });
      expect(res.status, JSON.stringify(bad)).toBe(400);
      expect(res.body.details.field).toMatch(/^rate_limits/);
    }
  });

  it("slows down key guessing from one address: failed authentications past 30 a minute get 429", async () => {
    const address = `203.0.113.${Math.floor(Math.random() * 200) + 1}`;
    const headers = { "CF-Connecting-IP": address };
    const fake = `gl_live_${"0".repeat(64)}`;
    for (let i = 0; i < 30; i++) expect((await call("/api/v1/projects", { key: fake, headers })).status).toBe(401);
    const refused = await call("/api/v1/projects", { key: fake, headers });
    expect(refused.status).toBe(429);
    expect(Number(refused.headers.get("retry-after"))).toBeGreaterThan(0);
    // A blocked address is refused before its key is looked up, even a valid key.
    const t = await createTenant();
    expect((await call("/api/v1/projects", { key: t.key, headers })).status).toBe(429);
    // Another address is not.
    expect((await call("/api/v1/projects", { key: fake, headers: { "CF-Connecting-IP": "198.51.100.7" } })).status).toBe(401);
  });
});

describe("every keyed route", () => {
  it("belongs to exactly one rate-limit group", async () => {
    const doc = (await call("/openapi.json")).body;
    let keyed = 0;
    for (const [path, item] of Object.entries<Record<string, any>>(doc.paths)) {
      for (const [method, op] of Object.entries<any>(item)) {
        const access = op["x-greenlight-access"];
        if (access === "admin" || access === "public") continue;
        keyed++;
        expect(RATE_LIMIT_GROUP_NAMES, `${method.toUpperCase()} ${path}`).toContain(op["x-greenlight-rate-limit-group"]);
      }
    }
    expect(keyed).toBeGreaterThan(50);
  });
});

describe("when the limiter cannot answer", () => {
  // The Durable Object namespace itself failing cannot be provoked in workerd, so the Worker is
  // called with a binding whose object throws, as an overloaded or unreachable one does.
  const broken = {
    idFromName: (name: string) => env.RATE_LIMITER.idFromName(name),
    get: () => ({
      hit: async () => {
        throw new Error("Durable Object is overloaded");
      },
    }),
  };

  async function fetchWith(vars: Record<string, string>, key: string) {
    const { default: worker } = await import("../src/index");
    const { createExecutionContext, waitOnExecutionContext } = await import("cloudflare:test");
    const ctx = createExecutionContext();
    const request = new Request("https://greenlight.test/api/v1/projects", { headers: { Authorization: `Bearer ${key}` } });
    const response = await worker.fetch!(request as never, { ...env, ...vars, RATE_LIMITER: broken } as never, ctx);
    await waitOnExecutionContext(ctx);
    return response;
  }

  it("answers 503 with Retry-After, never silently unlimited", async () => {
    const t = await createTenant();
    await limit(t, "standard");
    const res = await fetchWith({}, t.key);
    expect(res.status).toBe(503);
    expect(res.headers.get("retry-after")).toBe("5");
    expect(((await res.json()) as any).error).toBe("service_unavailable");
  });

  it("lets the request through with RATE_LIMITS=fail-open", async () => {
    const t = await createTenant();
    await limit(t, "standard");
    const res = await fetchWith({ RATE_LIMITS: "fail-open" }, t.key);
    expect(res.status).toBe(200);
    await res.arrayBuffer();
    expect(res.headers.get("ratelimit-policy")).toBeNull();
  });
});
