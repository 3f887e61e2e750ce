import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { createApp } from "../src/app";
import { ADMIN_TOKEN, ORIGIN, call } from "./helpers/http";
import { createKey, createProject, createTenant } from "./helpers/factories";

describe("key transport", () => {
  it("accepts the key as Bearer, X-API-Key and X-PANTO-API-KEY", async () => {
    const t = await createTenant();
    for (const header of ["Authorization", "X-API-Key", "X-PANTO-API-KEY"]) {
      const value = header === "Authorization" ? `Bearer ${t.key}` : t.key;
      const res = await call("/api/v1/projects", { headers: { [header]: value } });
      expect(res.status, header).toBe(200);
    }
  });

  it("refuses missing, malformed, unknown and wrong-secret-same-prefix keys with 401", async () => {
    const t = await createTenant();
    const sameprefix = t.key.slice(0, 16) + "f".repeat(t.key.length - 16);
    const cases: Array<[string, Record<string, string>]> = [
      ["missing", {}],
      ["malformed", { Authorization: "Bearer not-a-key" }],
      ["basic auth", { Authorization: "Basic Zm9vOmJhcg==" }],
      ["unknown", { Authorization: `Bearer gl_live_${"a".repeat(64)}` }],
      ["same prefix, wrong secret", { Authorization: `Bearer ${sameprefix}` }],
    ];
    for (const [label, headers] of cases) {
      const res = await call("/api/v1/projects", { headers });
      expect(res.status, label).toBe(401);
      expect(res.body.error, label).toBe("unauthorized");
      expect(res.headers.get("www-authenticate"), label).toContain("Bearer");
      expect(res.text, label).not.toContain(t.key);
    }
  });

  it("never returns or stores the key in clear", async () => {
    const t = await createTenant();
    const list = await call("/api/v1/api-keys", { key: t.key });
    expect(list.text).not.toContain(t.key);
    expect(list.body.data[0].masked_key).toBe(`gl_****...****${t.key.slice(-4)}`);
    const row = await env.DB.prepare("SELECT * FROM api_keys WHERE id = ?").bind(t.keyId).first<Record<string, unknown>>();
    expect(JSON.stringify(row)).not.toContain(t.key.slice(16));
    expect(row?.key_hash).toMatch(/^[0-9a-f]{64}$/);
  });
});

describe("key state", () => {
  it("refuses a deactivated key, and accepts it again once reactivated", async () => {
    const t = await createTenant();
    const k = await createKey(t, { scopes: ["projects:read"] });
    expect((await call(`/api/v1/api-keys/${k.id}`, { method: "PATCH", key: t.key, body: { is_active: false } })).status).toBe(200);
    const refused = await call("/api/v1/projects", { key: k.key });
    expect(refused.status).toBe(401);
    expect(refused.body.details.reason).toBe("inactive");
    await call(`/api/v1/api-keys/${k.id}`, { method: "PATCH", key: t.key, body: { is_active: true } });
    expect((await call("/api/v1/projects", { key: k.key })).status).toBe(200);
  });

  it("refuses an expired key", async () => {
    const t = await createTenant();
    const k = await createKey(t, { scopes: ["projects:read"] });
    // Expiry in the past cannot be set through the API (400), so age the key in storage.
    await env.DB.prepare("UPDATE api_keys SET expires_at = ? WHERE id = ?").bind("2020-01-01T00:00:00.000Z", k.id).run();
    const res = await call("/api/v1/projects", { key: k.key });
    expect(res.status).toBe(401);
    expect(res.body.details.reason).toBe("expired");
  });

  it("records last_used_at, at most once a minute", async () => {
    const t = await createTenant();
    const k = await createKey(t, { scopes: ["projects:read"] });
    const before = await call(`/api/v1/api-keys/${k.id}`, { key: t.key });
    expect(before.body.last_used_at).toBeNull();
    await call("/api/v1/projects", { key: k.key });
    const first = (await call(`/api/v1/api-keys/${k.id}`, { key: t.key })).body.last_used_at;
    expect(first).toBeTruthy();
    await call("/api/v1/projects", { key: k.key });
    expect((await call(`/api/v1/api-keys/${k.id}`, { key: t.key })).body.last_used_at).toBe(first);
    // Once the last use is more than a minute old, the next use writes again.
    const old = new Date(Date.now() - 120_000).toISOString();
    await env.DB.prepare("UPDATE api_keys SET last_used_at = ? WHERE id = ?").bind(old, k.id).run();
    await call("/api/v1/projects", { key: k.key });
    const later = (await call(`/api/v1/api-keys/${k.id}`, { key: t.key })).body.last_used_at;
    expect(Date.parse(later)).toBeGreaterThan(Date.parse(old));
  });
});

describe("project-restricted keys", () => {
  it("see only their project", async () => {
    const t = await createTenant();
    const other = await createProject(t, "Other");
    const k = await createKey(t, { projectId: t.project.id, scopes: ["projects:read", "projects:write", "keys:read", "keys:write"] });
    const list = await call("/api/v1/projects", { key: k.key });
    expect(list.body.data.map((p: { id: string }) => p.id)).toEqual([t.project.id]);
    expect(list.body.pagination.total).toBe(1);
    expect((await call(`/api/v1/projects/${other.id}`, { key: k.key })).status).toBe(404);
    expect((await call(`/api/v1/projects/${other.id}`, { method: "PATCH", key: k.key, body: { name: "x" } })).status).toBe(404);
    expect((await call(`/api/v1/projects/${other.id}/settings`, { key: k.key })).status).toBe(404);
    expect((await call(`/api/projects/${other.id}`, { key: k.key })).status).toBe(404);
    // Keys: it sees only keys of its project, and cannot mint one for another project.
    const keys = await call("/api/v1/api-keys", { key: k.key });
    expect(keys.body.data.every((x: { project_id: string }) => x.project_id === t.project.id)).toBe(true);
    const mint = await call("/api/v1/api-keys", { method: "POST", key: k.key, body: { name: "x", project_id: other.id, scopes: ["projects:read"] } });
    expect(mint.status).toBe(404);
    const own = await call("/api/v1/api-keys", { method: "POST", key: k.key, body: { name: "x", scopes: ["projects:read"] } });
    expect(own.status).toBe(201);
    expect(own.body.project_id).toBe(t.project.id);
    // And it cannot create projects.
    const create = await call("/api/v1/projects", { method: "POST", key: k.key, body: { name: "new" } });
    expect(create.status).toBe(403);
    expect((await call("/api/v1/projects", { key: t.key })).body.pagination.total).toBe(2);
  });
});

describe("HTTPS guard", () => {
  it("refuses plain http with 403 when REQUIRE_HTTPS is true, before looking at credentials", async () => {
    const res = await call("/api/v1/projects", { origin: "http://greenlight.test" });
    expect(res.status).toBe(403);
    expect(res.body.error).toBe("forbidden");
    expect(res.body.message).toMatch(/HTTPS/);
    expect(res.headers.get("x-request-id")).toBeTruthy();
    const reporting = await call("/api/projects", { origin: "http://greenlight.test" });
    expect(reporting.body.error.code).toBe("FORBIDDEN");
  });

  it("serves plain http when REQUIRE_HTTPS is false", async () => {
    const app = createApp();
    const res = await app.fetch(new Request("http://localhost/healthz"), { ...env, REQUIRE_HTTPS: "false" });
    expect(res.status).toBe(200);
    await res.text();
  });
});

describe("admin token", () => {
  it("is required for admin routes, compared exactly", async () => {
    const body = JSON.stringify({ name: "x" });
    const headers = { "Content-Type": "application/json" };
    for (const auth of [undefined, "Bearer wrong", `Bearer ${ADMIN_TOKEN}x`, ADMIN_TOKEN]) {
      const res = await call("/api/v1/admin/organizations", {
        method: "POST",
        body,
        headers: auth ? { ...headers, Authorization: auth } : headers,
      });
      expect(res.status, String(auth)).toBe(401);
    }
  });

  it("an API key, even an owner's, does not open admin routes", async () => {
    const t = await createTenant();
    const res = await call("/api/v1/admin/organizations", { method: "POST", key: t.key, body: { name: "x" } });
    expect(res.status).toBe(401);
  });

  it("admin routes answer 404 when no ADMIN_TOKEN is configured", async () => {
    const app = createApp();
    const res = await app.fetch(
      new Request(`${ORIGIN}/api/v1/admin/organizations`, {
        method: "POST",
        headers: { Authorization: "Bearer anything", "Content-Type": "application/json" },
        body: JSON.stringify({ name: "x" }),
      }),
      { ...env, ADMIN_TOKEN: undefined },
    );
    expect(res.status).toBe(404);
    expect(((await res.json()) as { error: string }).error).toBe("not_found");
  });
});
