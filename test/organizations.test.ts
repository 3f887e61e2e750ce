import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { ADMIN_TOKEN, call } from "./helpers/http";
import { createTenant } from "./helpers/factories";

const admin = { Authorization: `Bearer ${ADMIN_TOKEN}` };

describe("admin: POST /api/v1/admin/organizations", () => {
  it("creates the organization, its first project and an owner key returned once", async () => {
    const res = await call("/api/v1/admin/organizations", { method: "POST", headers: admin, body: { name: "Acme", project_name: "Web" } });
    expect(res.status).toBe(201);
    const { organization, project, api_key } = res.body;
    expect(organization).toMatchObject({ name: "Acme", id: expect.stringMatching(/^org_/), number: expect.any(Number) });
    expect(project).toMatchObject({ name: "Web", organization_id: organization.id, number: expect.any(Number) });
    expect(api_key).toMatchObject({ organization_id: organization.id, project_id: null, is_active: true });
    expect(api_key.key).toMatch(/^gl_live_[0-9a-f]{64}$/);
    expect(api_key.scopes).toContain("keys:write");
    expect(api_key.scopes).toContain("settings:write");
    // The key works, and sees exactly this organization.
    const orgs = await call("/api/v1/organizations", { key: api_key.key });
    expect(orgs.body).toEqual({ data: [organization], pagination: { total: 1, limit: 20, offset: 0, has_more: false } });
    expect((await call(`/api/v1/organizations/${organization.id}`, { key: api_key.key })).body).toEqual(organization);
  });

  it("names the first project 'Default' when no project_name is given", async () => {
    const res = await call("/api/v1/admin/organizations", { method: "POST", headers: admin, body: { name: "Solo" } });
    expect(res.body.project.name).toBe("Default");
  });

  it("rejects bad input, writing nothing", async () => {
    const before = await env.DB.prepare("SELECT count(*) AS n FROM organizations").first<{ n: number }>();
    for (const body of [{}, { name: "" }, { name: "x".repeat(201) }, { name: 12 }, { name: "ok", project_name: "y".repeat(201) }]) {
      const res = await call("/api/v1/admin/organizations", { method: "POST", headers: admin, body });
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(res.body.error).toBe("invalid_request");
    }
    const after = await env.DB.prepare("SELECT count(*) AS n FROM organizations").first<{ n: number }>();
    expect(after?.n).toBe(before?.n);
  });
});

describe("organizations", () => {
  it("another organization's id is 404, like a missing one", async () => {
    const a = await createTenant();
    const b = await createTenant();
    const foreign = await call(`/api/v1/organizations/${b.organization.id}`, { key: a.key });
    const missing = await call("/api/v1/organizations/org_00000000000000000000000000", { key: a.key });
    expect(foreign.status).toBe(404);
    expect(missing.status).toBe(404);
    expect(foreign.body.message).toBe(missing.body.message);
  });
});
