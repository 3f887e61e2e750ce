import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { createApp } from "../src/app";
import { ORIGIN } from "./helpers/http";
import { createKey, createTenant } from "./helpers/factories";

/**
 * The per-isolate principal cache (src/core/keys/principal-cache.ts). The rest of the suite runs
 * with AUTH_CACHE_SECONDS=0; these requests go through an app given the deployed default (5 s).
 */
const app = createApp();

async function send(path: string, key: string, init: { method?: string; body?: unknown } = {}, cacheSeconds = "5") {
  const ctx = createExecutionContext();
  const res = await app.request(
    `${ORIGIN}${path}`,
    {
      method: init.method ?? "GET",
      headers: { Authorization: `Bearer ${key}`, "Content-Type": "application/json" },
      body: init.body === undefined ? undefined : JSON.stringify(init.body),
    },
    { ...env, AUTH_CACHE_SECONDS: cacheSeconds },
    ctx,
  );
  const text = await res.text();
  await waitOnExecutionContext(ctx);
  const calls = Number(/calls=(\d+)/.exec(res.headers.get("server-timing") ?? "")?.[1] ?? NaN);
  return { status: res.status, body: text ? JSON.parse(text) : undefined, calls };
}

describe("API key principal cache", () => {
  it("spares the key lookup on the next request with the same key", async () => {
    const t = await createTenant();
    const first = await send("/api/v1/projects", t.key);
    const second = await send("/api/v1/projects", t.key);
    expect(first.status).toBe(200);
    expect(second.status).toBe(200);
    expect(second.body).toEqual(first.body);
    // The first request read the key (and wrote last_used_at); the second read neither.
    expect(second.calls).toBeLessThan(first.calls);
    expect(first.calls - second.calls).toBeGreaterThanOrEqual(1);
  });

  it("reads the key every time with AUTH_CACHE_SECONDS=0", async () => {
    const t = await createTenant();
    await send("/api/v1/projects", t.key, {}, "0");
    const a = await send("/api/v1/projects", t.key, {}, "0");
    const b = await send("/api/v1/projects", t.key, {}, "0");
    expect(b.calls).toBe(a.calls);
    // A change made behind the API's back is seen at once without the cache.
    await env.DB.prepare("UPDATE api_keys SET is_active = 0 WHERE lookup_prefix = ?").bind(t.key.slice(0, 16)).run();
    expect((await send("/api/v1/projects", t.key, {}, "0")).status).toBe(401);
  });

  it("keeps a key changed behind the API's back for at most its lifetime (the documented trade-off)", async () => {
    const t = await createTenant();
    const k = await createKey(t, { scopes: ["projects:read"] });
    expect((await send("/api/v1/projects", k.key)).status).toBe(200);
    // Another isolate revoking the key looks like this from here: D1 changed, this cache did not.
    await env.DB.prepare("UPDATE api_keys SET is_active = 0 WHERE id = ?").bind(k.id).run();
    expect((await send("/api/v1/projects", k.key)).status).toBe(200);
    // With a lifetime of 0 the cached entry is not used: the key is read and refused.
    expect((await send("/api/v1/projects", k.key, {}, "0")).status).toBe(401);
  });

  it("forgets at once a key deactivated, rotated or deleted through the API", async () => {
    const t = await createTenant();
    const deactivated = await createKey(t, { scopes: ["projects:read"] });
    const rotated = await createKey(t, { scopes: ["projects:read"] });
    const deleted = await createKey(t, { scopes: ["projects:read"] });
    for (const k of [deactivated, rotated, deleted]) expect((await send("/api/v1/projects", k.key)).status).toBe(200);

    expect((await send(`/api/v1/api-keys/${deactivated.id}`, t.key, { method: "PATCH", body: { is_active: false } })).status).toBe(200);
    const rotation = await send(`/api/v1/api-keys/${rotated.id}/rotate`, t.key, { method: "POST" });
    expect(rotation.status).toBe(200);
    expect((await send(`/api/v1/api-keys/${deleted.id}`, t.key, { method: "DELETE" })).status).toBe(204);

    expect((await send("/api/v1/projects", deactivated.key)).status).toBe(401);
    expect((await send("/api/v1/projects", rotated.key)).status).toBe(401);
    expect((await send("/api/v1/projects", rotation.body.key)).status).toBe(200);
    expect((await send("/api/v1/projects", deleted.key)).status).toBe(401);
  });

  it("forgets at once a key whose organization's rate limits changed", async () => {
    const t = await createTenant();
    // The organization's limits come with the key's principal: after the admin changes them, the
    // next request must carry the new limit, which only a fresh read of the key can know.
    const k = await createKey(t, { scopes: ["projects:read"] });
    expect((await send("/api/v1/projects", k.key)).status).toBe(200);
    const adminRes = await app.request(
      `${ORIGIN}/api/v1/admin/organizations/${t.organization.id}`,
      {
        method: "PATCH",
        headers: { Authorization: `Bearer ${env.ADMIN_TOKEN}`, "Content-Type": "application/json" },
        body: JSON.stringify({ rate_limits: { overrides: { projects: 1 } } }),
      },
      { ...env, AUTH_CACHE_SECONDS: "5" },
      createExecutionContext(),
    );
    expect(adminRes.status).toBe(200);
    const limited = { ...env, AUTH_CACHE_SECONDS: "5" };
    const statuses = [];
    for (let i = 0; i < 2; i++) {
      const res = await app.request(`${ORIGIN}/api/v1/projects`, { headers: { Authorization: `Bearer ${k.key}` } }, limited, createExecutionContext());
      statuses.push(res.status);
      await res.text();
    }
    expect(statuses).toEqual([200, 429]);
  });

  it("checks expiry on every cached use", async () => {
    const t = await createTenant();
    const k = await createKey(t, { scopes: ["projects:read"], expiresAt: new Date(Date.now() + 1500).toISOString() });
    expect((await send("/api/v1/projects", k.key)).status).toBe(200);
    await new Promise((resolve) => setTimeout(resolve, 1700));
    const expired = await send("/api/v1/projects", k.key);
    expect(expired.status).toBe(401);
    expect(expired.body.message).toContain("expired");
  });
});
