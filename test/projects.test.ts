import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { call } from "./helpers/http";
import { createKey, createProject, createTenant } from "./helpers/factories";

describe("native projects", () => {
  it("creates, reads, lists, updates and deletes a project", async () => {
    const t = await createTenant();
    const created = await call("/api/v1/projects", { method: "POST", key: t.key, body: { name: "  Web App E2E  ", description: "e2e" } });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ name: "Web App E2E", description: "e2e", organization_id: t.organization.id });
    expect(created.body.id).toMatch(/^proj_[0-9A-Z]{26}$/);
    expect(created.body.number).toBeGreaterThan(t.project.number);

    const got = await call(`/api/v1/projects/${created.body.id}`, { key: t.key });
    expect(got.body).toEqual(created.body);

    const list = await call("/api/v1/projects", { key: t.key });
    expect(list.body.data.map((p: { id: string }) => p.id)).toEqual([t.project.id, created.body.id]);
    expect(list.body.pagination).toEqual({ total: 2, limit: 20, offset: 0, has_more: false });

    const patched = await call(`/api/v1/projects/${created.body.id}`, { method: "PATCH", key: t.key, body: { name: "Renamed" } });
    expect(patched.status).toBe(200);
    expect(patched.body.name).toBe("Renamed");
    expect(patched.body.description).toBe("e2e");
    expect((await call(`/api/v1/projects/${created.body.id}`, { key: t.key })).body.name).toBe("Renamed");

    const deleted = await call(`/api/v1/projects/${created.body.id}`, { method: "DELETE", key: t.key });
    expect(deleted.status).toBe(204);
    expect((await call(`/api/v1/projects/${created.body.id}`, { key: t.key })).status).toBe(404);
    expect((await call(`/api/v1/projects/${created.body.id}`, { method: "DELETE", key: t.key })).status).toBe(404);
  });

  it("numbers projects uniquely across the deployment and never reuses a number", async () => {
    const t1 = await createTenant();
    const t2 = await createTenant();
    const p1 = await createProject(t1);
    await call(`/api/v1/projects/${p1.id}`, { method: "DELETE", key: t1.key });
    const p2 = await createProject(t2);
    const numbers = [t1.project.number, t2.project.number, p1.number, p2.number];
    expect(new Set(numbers).size).toBe(4);
    expect(p2.number).toBeGreaterThan(p1.number);
  });

  it("deleting a project deletes its settings and its restricted keys", async () => {
    const t = await createTenant();
    const p = await createProject(t);
    const k = await createKey(t, { projectId: p.id, scopes: ["projects:read"] });
    expect((await call("/api/v1/projects", { key: k.key })).status).toBe(200);
    await call(`/api/v1/projects/${p.id}`, { method: "DELETE", key: t.key });
    expect((await call("/api/v1/projects", { key: k.key })).status).toBe(401);
    expect((await call(`/api/v1/api-keys/${k.id}`, { key: t.key })).status).toBe(404);
    const settings = await env.DB.prepare("SELECT count(*) AS n FROM project_settings WHERE project_id = ?").bind(p.id).first<{ n: number }>();
    expect(settings?.n).toBe(0);
  });

  it("has settings with defaults, updated field by field", async () => {
    const t = await createTenant();
    const s = await call(`/api/v1/projects/${t.project.id}/settings`, { key: t.key });
    expect(s.status).toBe(200);
    expect(s.body).toMatchObject({
      project_id: t.project.id,
      data_retention_days: 90,
      flakiness_threshold: 0.3,
      auto_quarantine_enabled: false,
    });
    const p = await call(`/api/v1/projects/${t.project.id}/settings`, { method: "PATCH", key: t.key, body: { flakiness_threshold: 0.5 } });
    expect(p.status).toBe(200);
    expect(p.body).toMatchObject({ data_retention_days: 90, flakiness_threshold: 0.5, auto_quarantine_enabled: false });
    await call(`/api/v1/projects/${t.project.id}/settings`, { method: "PATCH", key: t.key, body: { auto_quarantine_enabled: true, data_retention_days: 180 } });
    const again = await call(`/api/v1/projects/${t.project.id}/settings`, { key: t.key });
    expect(again.body).toMatchObject({ data_retention_days: 180, flakiness_threshold: 0.5, auto_quarantine_enabled: true });
  });

  it("rejects bad settings with the field named and writes nothing", async () => {
    const t = await createTenant();
    const path = `/api/v1/projects/${t.project.id}/settings`;
    const bad: Array<[Record<string, unknown>, string]> = [
      [{ flakiness_threshold: 1.5 }, "flakiness_threshold"],
      [{ flakiness_threshold: "high" }, "flakiness_threshold"],
      [{ data_retention_days: 0 }, "data_retention_days"],
      [{ data_retention_days: 10.5 }, "data_retention_days"],
      [{ auto_quarantine_enabled: "yes" }, "auto_quarantine_enabled"],
    ];
    for (const [body, field] of bad) {
      const res = await call(path, { method: "PATCH", key: t.key, body });
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(res.body.error).toBe("invalid_request");
      expect(res.body.details.field).toBe(field);
      expect(res.body.message).toContain(`'${field}'`);
    }
    expect((await call(path, { key: t.key })).body).toMatchObject({ data_retention_days: 90, flakiness_threshold: 0.3 });
  });

  it("needs settings:write to change settings", async () => {
    const t = await createTenant();
    const k = await createKey(t, { scopes: ["projects:read", "projects:write"] });
    const res = await call(`/api/v1/projects/${t.project.id}/settings`, { method: "PATCH", key: k.key, body: { flakiness_threshold: 0.9 } });
    expect(res.status).toBe(403);
    expect(res.body.details.required_scope).toBe("settings:write");
  });
});

describe("reporting projects (reference 003)", () => {
  it("lists a team's projects and requires teamId", async () => {
    const t = await createTenant();
    const res = await call(`/api/projects?teamId=${t.organization.id}`, { headers: { "X-API-Key": t.key } });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      data: [{ id: t.project.id, name: t.project.name, teamId: t.organization.id, createdAt: expect.any(String), updatedAt: expect.any(String) }],
      total: 1,
      limit: 50,
      offset: 0,
    });
    const missing = await call("/api/projects", { headers: { "X-API-Key": t.key } });
    expect(missing.status).toBe(400);
    expect(missing.body).toEqual({
      error: { code: "VALIDATION_ERROR", message: "Query parameter 'teamId' is required", details: { field: "teamId", reason: "required", location: "query" } },
    });
    const other = await createTenant();
    expect((await call(`/api/projects?teamId=${other.organization.id}`, { headers: { "X-API-Key": t.key } })).status).toBe(404);
  });

  it("creates, reads, updates and deletes with the documented shapes", async () => {
    const t = await createTenant();
    const created = await call("/api/projects", { method: "POST", headers: { "X-API-Key": t.key }, body: { name: "Mobile App E2E", teamId: t.organization.id } });
    expect(created.status).toBe(201);
    expect(Object.keys(created.body).sort()).toEqual(["createdAt", "id", "name", "teamId", "updatedAt"]);
    expect(created.body).toMatchObject({ name: "Mobile App E2E", teamId: t.organization.id });

    const got = await call(`/api/projects/${created.body.id}`, { headers: { "X-API-Key": t.key } });
    expect(got.body).toEqual(created.body);

    const patched = await call(`/api/projects/${created.body.id}`, { method: "PATCH", headers: { "X-API-Key": t.key }, body: { name: "Web App E2E (Production)" } });
    expect(patched.status).toBe(200);
    expect(Object.keys(patched.body).sort()).toEqual(["id", "name", "teamId", "updatedAt"]);
    expect(patched.body.name).toBe("Web App E2E (Production)");

    const deleted = await call(`/api/projects/${created.body.id}`, { method: "DELETE", headers: { "X-API-Key": t.key } });
    expect(deleted.status).toBe(200);
    expect(deleted.body).toEqual({ success: true, message: "Project deleted successfully" });
    const gone = await call(`/api/projects/${created.body.id}`, { headers: { "X-API-Key": t.key } });
    expect(gone.status).toBe(404);
    expect(gone.body.error.code).toBe("NOT_FOUND");
  });

  it("refuses a project in another team, writing nothing", async () => {
    const t = await createTenant();
    const other = await createTenant();
    const res = await call("/api/projects", { method: "POST", headers: { "X-API-Key": t.key }, body: { name: "x", teamId: other.organization.id } });
    expect(res.status).toBe(404);
    expect((await call("/api/v1/projects", { key: other.key })).body.pagination.total).toBe(1);
    expect((await call("/api/v1/projects", { key: t.key })).body.pagination.total).toBe(1);
  });

  it("reads and patches settings in camelCase", async () => {
    const t = await createTenant();
    const s = await call(`/api/projects/${t.project.id}/settings`, { headers: { "X-API-Key": t.key } });
    expect(s.body).toEqual({
      projectId: t.project.id,
      dataRetentionDays: 90,
      flakinessThreshold: 0.3,
      autoQuarantineEnabled: false,
      updatedAt: expect.any(String),
    });
    const p = await call(`/api/projects/${t.project.id}/settings`, {
      method: "PATCH",
      headers: { "X-API-Key": t.key },
      body: { dataRetentionDays: 180, flakinessThreshold: 0.5, autoQuarantineEnabled: false },
    });
    expect(p.body).toMatchObject({ projectId: t.project.id, dataRetentionDays: 180, flakinessThreshold: 0.5, autoQuarantineEnabled: false });
    const bad = await call(`/api/projects/${t.project.id}/settings`, { method: "PATCH", headers: { "X-API-Key": t.key }, body: { flakinessThreshold: 2 } });
    expect(bad.status).toBe(400);
    expect(bad.body.error).toMatchObject({ code: "VALIDATION_ERROR", message: "Field 'flakinessThreshold' must be at most 1", details: { field: "flakinessThreshold" } });
  });

  it("speaks camelCase in error details too", async () => {
    const t = await createTenant();
    const k = await createKey(t, { scopes: ["projects:read"] });
    const res = await call(`/api/projects/${t.project.id}/settings`, { method: "PATCH", headers: { "X-API-Key": k.key }, body: { flakinessThreshold: 0.5 } });
    expect(res.status).toBe(403);
    expect(res.body.error.details).toEqual({ requiredScope: "settings:write" });
    const big = await call("/api/projects", {
      method: "POST",
      headers: { "X-API-Key": t.key },
      body: { name: "x", teamId: t.organization.id, pad: "y".repeat(1024 * 1024) },
    });
    expect(big.status).toBe(413);
    expect(big.body.error.details).toEqual({ maxBytes: 1024 * 1024 });
  });

  it("lists the key's organization as its team", async () => {
    const t = await createTenant("Acme Engineering");
    const res = await call("/api/teams", { headers: { "X-API-Key": t.key } });
    expect(res.status).toBe(200);
    expect(res.body.data).toEqual([{ id: t.organization.id, name: "Acme Engineering", createdAt: expect.any(String) }]);
    expect(res.body.total).toBe(1);
  });
});
