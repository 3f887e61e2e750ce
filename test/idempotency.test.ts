import { createExecutionContext, createScheduledController, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import worker from "../src/index";
import { describe, expect, it } from "vitest";
import { ADMIN_TOKEN, call } from "./helpers/http";
import { createKey, createTenant } from "./helpers/factories";

describe("Idempotency-Key on creating POSTs", () => {
  it("replays the first response for the same key and body, creating once", async () => {
    const t = await createTenant();
    const send = () =>
      call("/api/v1/projects", { method: "POST", key: t.key, body: { name: "once" }, headers: { "Idempotency-Key": "create-once-1" } });
    const first = await send();
    const second = await send();
    expect(first.status).toBe(201);
    expect(second.status).toBe(201);
    expect(second.body).toEqual(first.body);
    expect(second.headers.get("idempotent-replayed")).toBe("true");
    expect(first.headers.get("idempotent-replayed")).toBeNull();
    const list = await call("/api/v1/projects", { key: t.key });
    expect(list.body.data.filter((p: { name: string }) => p.name === "once")).toHaveLength(1);
  });

  it("answers 422 for the same key with a different body, writing nothing", async () => {
    const t = await createTenant();
    const headers = { "Idempotency-Key": "k-422" };
    await call("/api/v1/projects", { method: "POST", key: t.key, body: { name: "a" }, headers });
    const res = await call("/api/v1/projects", { method: "POST", key: t.key, body: { name: "b" }, headers });
    expect(res.status).toBe(422);
    expect(res.body).toMatchObject({ error: "invalid_request", details: { field: "Idempotency-Key", reason: "reused" } });
    const names = (await call("/api/v1/projects", { key: t.key })).body.data.map((p: { name: string }) => p.name);
    expect(names).not.toContain("b");
  });

  it("keeps each caller's keys apart", async () => {
    const t = await createTenant();
    const other = await createKey(t, { scopes: ["projects:write", "projects:read"] });
    const headers = { "Idempotency-Key": "shared-name" };
    const a = await call("/api/v1/projects", { method: "POST", key: t.key, body: { name: "same" }, headers });
    const b = await call("/api/v1/projects", { method: "POST", key: other.key, body: { name: "same" }, headers });
    expect(a.status).toBe(201);
    expect(b.status).toBe(201);
    expect(b.body.id).not.toBe(a.body.id);
  });

  it("replays a created API key without storing its secret in clear", async () => {
    const t = await createTenant();
    const headers = { "Idempotency-Key": "mint-key-1" };
    const first = await call("/api/v1/api-keys", { method: "POST", key: t.key, body: { name: "ci" }, headers });
    const again = await call("/api/v1/api-keys", { method: "POST", key: t.key, body: { name: "ci" }, headers });
    expect(again.body.key).toBe(first.body.key);
    const rows = await env.DB.prepare("SELECT * FROM idempotency_records").all();
    expect(JSON.stringify(rows.results)).not.toContain(first.body.key);
    expect(JSON.stringify(rows.results)).not.toContain("mint-key-1");
  });

  it("works for the admin route and the reporting surface", async () => {
    const adminHeaders = { Authorization: `Bearer ${ADMIN_TOKEN}`, "Idempotency-Key": "bootstrap-acme" };
    const one = await call("/api/v1/admin/organizations", { method: "POST", headers: adminHeaders, body: { name: "Acme idem" } });
    const two = await call("/api/v1/admin/organizations", { method: "POST", headers: adminHeaders, body: { name: "Acme idem" } });
    expect(two.body.organization.id).toBe(one.body.organization.id);
    const t = await createTenant();
    const h = { "X-API-Key": t.key, "Idempotency-Key": "rep-1" };
    const r1 = await call("/api/projects", { method: "POST", headers: h, body: { name: "r", teamId: t.organization.id } });
    const r2 = await call("/api/projects", { method: "POST", headers: h, body: { name: "r", teamId: t.organization.id } });
    expect(r2.body).toEqual(r1.body);
  });

  it("does not keep a refused request: the client can fix the body and retry with the same key", async () => {
    const t = await createTenant();
    const headers = { "Idempotency-Key": "fix-and-retry" };
    const bad = await call("/api/v1/projects", { method: "POST", key: t.key, body: { name: "" }, headers });
    expect(bad.status).toBe(400);
    const good = await call("/api/v1/projects", { method: "POST", key: t.key, body: { name: "fixed" }, headers });
    expect(good.status).toBe(201);
    const replay = await call("/api/v1/projects", { method: "POST", key: t.key, body: { name: "fixed" }, headers });
    expect(replay.body.id).toBe(good.body.id);
  });

  it("rejects an unusable Idempotency-Key", async () => {
    const t = await createTenant();
    const res = await call("/api/v1/projects", { method: "POST", key: t.key, body: { name: "x" }, headers: { "Idempotency-Key": "k".repeat(300) } });
    expect(res.status).toBe(400);
    expect(res.body.details.field).toBe("Idempotency-Key");
  });

  it("forgets keys after 24 hours: the cron purges them and the key can be reused", async () => {
    const t = await createTenant();
    const headers = { "Idempotency-Key": "expiring" };
    const first = await call("/api/v1/projects", { method: "POST", key: t.key, body: { name: "e1" }, headers });
    await env.DB.prepare("UPDATE idempotency_records SET expires_at = ?").bind("2000-01-01T00:00:00.000Z").run();
    const reused = await call("/api/v1/projects", { method: "POST", key: t.key, body: { name: "e2" }, headers });
    expect(reused.status).toBe(201);
    expect(reused.body.id).not.toBe(first.body.id);

    await env.DB.prepare("UPDATE idempotency_records SET expires_at = ?").bind("2000-01-01T00:00:00.000Z").run();
    const ctx = createExecutionContext();
    await worker.scheduled(createScheduledController({ scheduledTime: new Date(), cron: "*/5 * * * *" }), env, ctx);
    await waitOnExecutionContext(ctx);
    const left = await env.DB.prepare("SELECT count(*) AS n FROM idempotency_records").first<{ n: number }>();
    expect(left?.n).toBe(0);
  });
});
