import { describe, expect, it } from "vitest";
import { call } from "./helpers/http";
import { createKey, createProject, createTenant } from "./helpers/factories";

describe("native API keys", () => {
  it("creates a key whose full value is returned once and works at once", async () => {
    const t = await createTenant();
    const res = await call("/api/v1/api-keys", {
      method: "POST",
      key: t.key,
      body: { name: "ci-pipeline-prod", scopes: ["builds:create", "projects:read"], expires_at: "2099-01-01T00:00:00Z" },
    });
    expect(res.status).toBe(201);
    expect(res.body.key).toMatch(/^gl_live_[0-9a-f]{64}$/);
    expect(res.body).toMatchObject({
      name: "ci-pipeline-prod",
      organization_id: t.organization.id,
      project_id: null,
      scopes: ["builds:create", "projects:read"],
      is_active: true,
      last_used_at: null,
      masked_key: `gl_****...****${res.body.key.slice(-4)}`,
    });
    expect(Date.parse(res.body.expires_at)).toBe(Date.parse("2099-01-01T00:00:00Z"));
    const got = await call(`/api/v1/api-keys/${res.body.id}`, { key: t.key });
    expect(got.body.key).toBeUndefined();
    expect(got.text).not.toContain(res.body.key);
    expect((await call("/api/v1/projects", { key: res.body.key })).status).toBe(200);
    // Only the scopes it holds: it may not read keys.
    expect((await call("/api/v1/api-keys", { key: res.body.key })).status).toBe(403);
  });

  it("defaults to CI scopes, never more than the creator holds", async () => {
    const t = await createTenant();
    const full = await call("/api/v1/api-keys", { method: "POST", key: t.key, body: { name: "ci" } });
    expect(full.body.scopes).toContain("results:submit");
    expect(full.body.scopes).not.toContain("keys:write");
    const limited = await createKey(t, { scopes: ["keys:write", "projects:read"] });
    const child = await call("/api/v1/api-keys", { method: "POST", key: limited.key, body: { name: "child" } });
    expect(child.status).toBe(201);
    expect(child.body.scopes).toEqual(["projects:read"]);
  });

  it("refuses to grant scopes the creator lacks, and to manage a stronger key", async () => {
    const t = await createTenant();
    const weak = await createKey(t, { scopes: ["keys:read", "keys:write", "projects:read"] });
    const escalate = await call("/api/v1/api-keys", { method: "POST", key: weak.key, body: { name: "x", scopes: ["settings:write"] } });
    expect(escalate.status).toBe(403);
    expect(escalate.body.details.scopes).toEqual(["settings:write"]);
    for (const [method, path, body] of [
      ["POST", `/api/v1/api-keys/${t.keyId}/rotate`, undefined],
      ["PATCH", `/api/v1/api-keys/${t.keyId}`, { is_active: false }],
      ["DELETE", `/api/v1/api-keys/${t.keyId}`, undefined],
    ] as const) {
      const res = await call(path, { method, key: weak.key, body });
      expect(res.status, `${method} ${path}`).toBe(403);
    }
    expect((await call("/api/v1/projects", { key: t.key })).status).toBe(200);
    const self = await call(`/api/v1/api-keys/${weak.id}`, { method: "PATCH", key: weak.key, body: { scopes: ["keys:write", "projects:write"] } });
    expect(self.status).toBe(403);
  });

  it("validates the body: enum scopes, name length, past expiry, unknown project", async () => {
    const t = await createTenant();
    const other = await createTenant();
    const cases: Array<[Record<string, unknown>, number, string]> = [
      [{ name: "x", scopes: ["builds:read", "root"] }, 400, "scopes.1"],
      [{ name: "x".repeat(201) }, 400, "name"],
      [{ name: "   " }, 400, "name"],
      [{}, 400, "name"],
      [{ name: 5 }, 400, "name"],
      [{ name: "x", scopes: [] }, 400, "scopes"],
      [{ name: "x", expires_at: "tomorrow" }, 400, "expires_at"],
      [{ name: "x", expires_at: "2001-01-01T00:00:00Z" }, 400, "expires_at"],
      [{ name: "x", project_id: other.project.id }, 404, ""],
    ];
    for (const [body, status, field] of cases) {
      const res = await call("/api/v1/api-keys", { method: "POST", key: t.key, body });
      expect(res.status, JSON.stringify(body)).toBe(status);
      if (field) expect(res.body.details.field, JSON.stringify(body)).toBe(field);
    }
    const list = await call("/api/v1/api-keys", { key: t.key });
    expect(list.body.pagination.total).toBe(1);
    const x = await call("/api/v1/api-keys", { method: "POST", key: t.key, body: { name: "x".repeat(201) } });
    expect(x.body.message).toBe("The 'name' field must be at most 200 characters.");
    const req = await call("/api/v1/api-keys", { method: "POST", key: t.key, body: {} });
    expect(req.body).toEqual({ error: "invalid_request", message: "The 'name' field is required.", details: { field: "name", reason: "required", location: "body" } });
  });

  it("rotates a key: new secret works, old one stops, id and scopes stay", async () => {
    const t = await createTenant();
    const k = await createKey(t, { scopes: ["projects:read"], name: "rotating" });
    const rotated = await call(`/api/v1/api-keys/${k.id}/rotate`, { method: "POST", key: t.key });
    expect(rotated.status).toBe(200);
    expect(rotated.body).toMatchObject({ id: k.id, name: "rotating", scopes: ["projects:read"] });
    expect(rotated.body.key).not.toBe(k.key);
    expect((await call("/api/v1/projects", { key: k.key })).status).toBe(401);
    expect((await call("/api/v1/projects", { key: rotated.body.key })).status).toBe(200);
  });

  it("renames, re-scopes and deletes a key", async () => {
    const t = await createTenant();
    const k = await createKey(t, { scopes: ["projects:read"] });
    const p = await call(`/api/v1/api-keys/${k.id}`, { method: "PATCH", key: t.key, body: { name: "renamed", scopes: ["keys:read"] } });
    expect(p.body).toMatchObject({ name: "renamed", scopes: ["keys:read"] });
    expect((await call("/api/v1/projects", { key: k.key })).status).toBe(403);
    expect((await call("/api/v1/api-keys", { key: k.key })).status).toBe(200);
    expect((await call(`/api/v1/api-keys/${k.id}`, { method: "DELETE", key: t.key })).status).toBe(204);
    expect((await call("/api/v1/api-keys", { key: k.key })).status).toBe(401);
    expect((await call(`/api/v1/api-keys/${k.id}`, { key: t.key })).status).toBe(404);
  });
});

describe("reporting API keys (reference 003)", () => {
  it("generates a project key with the documented shape, lists it masked, deactivates it", async () => {
    const t = await createTenant();
    const created = await call("/api/api-keys", {
      method: "POST",
      headers: { "X-API-Key": t.key },
      body: { projectId: t.project.id, name: "GitLab CI", expiresAt: "2099-12-31T23:59:59Z" },
    });
    expect(created.status).toBe(201);
    expect(Object.keys(created.body).sort()).toEqual(["createdAt", "expiresAt", "id", "isActive", "key", "name", "projectId"]);
    expect(created.body).toMatchObject({ name: "GitLab CI", projectId: t.project.id, isActive: true, expiresAt: "2099-12-31T23:59:59.000Z" });

    const list = await call(`/api/api-keys?projectId=${t.project.id}`, { headers: { "X-API-Key": t.key } });
    expect(list.status).toBe(200);
    expect(list.body.data).toEqual([
      {
        id: created.body.id,
        name: "GitLab CI",
        projectId: t.project.id,
        maskedKey: `gl_****...****${created.body.key.slice(-4)}`,
        isActive: true,
        expiresAt: "2099-12-31T23:59:59.000Z",
        lastUsedAt: null,
        createdAt: created.body.createdAt,
      },
    ]);
    expect(list.text).not.toContain(created.body.key);

    const off = await call(`/api/api-keys/${created.body.id}`, { method: "PATCH", headers: { "X-API-Key": t.key }, body: { isActive: false } });
    expect(off.status).toBe(200);
    expect(off.body).toEqual({ id: created.body.id, name: "GitLab CI", isActive: false, updatedAt: expect.any(String) });
    const refused = await call(`/api/projects/${t.project.id}`, { headers: { "X-API-Key": created.body.key } });
    expect(refused.status).toBe(401);
    expect(refused.body.error.code).toBe("UNAUTHORIZED");
    await call(`/api/api-keys/${created.body.id}`, { method: "PATCH", headers: { "X-API-Key": t.key }, body: { isActive: true } });
    expect((await call(`/api/projects/${t.project.id}`, { headers: { "X-API-Key": created.body.key } })).status).toBe(200);
  });

  it("requires projectId, name and isActive with VALIDATION_ERROR", async () => {
    const t = await createTenant();
    const noProject = await call("/api/api-keys", { method: "POST", headers: { "X-API-Key": t.key }, body: { name: "x" } });
    expect(noProject.status).toBe(400);
    expect(noProject.body.error).toEqual({ code: "VALIDATION_ERROR", message: "Field 'projectId' is required", details: { field: "projectId", reason: "required", location: "body" } });
    const listNoProject = await call("/api/api-keys", { headers: { "X-API-Key": t.key } });
    expect(listNoProject.body.error.details.field).toBe("projectId");
    const k = await createKey(t, { scopes: ["projects:read"] });
    const noActive = await call(`/api/api-keys/${k.id}`, { method: "PATCH", headers: { "X-API-Key": t.key }, body: {} });
    expect(noActive.status).toBe(400);
    expect(noActive.body.error.details.field).toBe("isActive");
    const past = await call("/api/api-keys", {
      method: "POST",
      headers: { "X-API-Key": t.key },
      body: { projectId: t.project.id, name: "x", expiresAt: "2001-01-01T00:00:00Z" },
    });
    expect(past.status).toBe(400);
    expect(past.body.error).toEqual({
      code: "VALIDATION_ERROR",
      message: "Field 'expiresAt' must be in the future",
      details: { field: "expiresAt", reason: "in_the_past", location: "body" },
    });
    const p2 = await createProject(t);
    const other = await call(`/api/api-keys?projectId=${p2.id}`, { headers: { "X-API-Key": t.key } });
    expect(other.body.data).toEqual([]);
    const foreignTenant = await createTenant();
    const foreign = await call(`/api/api-keys?projectId=${foreignTenant.project.id}`, { headers: { "X-API-Key": t.key } });
    expect(foreign.status).toBe(404);
    expect(foreign.body.error.code).toBe("NOT_FOUND");
  });
});
