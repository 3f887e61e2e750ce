import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { call } from "./helpers/http";
import { createTenant } from "./helpers/factories";

async function projectCount(orgId: string): Promise<number> {
  const row = await env.DB.prepare("SELECT count(*) AS n FROM projects WHERE organization_id = ?").bind(orgId).first<{ n: number }>();
  return row?.n ?? -1;
}

describe("bad input on JSON endpoints", () => {
  it("malformed JSON → 400 in each surface's envelope, nothing written", async () => {
    const t = await createTenant();
    const native = await call("/api/v1/projects", { method: "POST", key: t.key, body: '{"name": "x"', headers: { "Content-Type": "application/json" } });
    expect(native.status).toBe(400);
    expect(native.body).toMatchObject({ error: "invalid_request", message: "The request body is not valid JSON." });
    const reporting = await call("/api/projects", { method: "POST", key: t.key, body: "{nope", headers: { "Content-Type": "application/json" } });
    expect(reporting.status).toBe(400);
    expect(reporting.body.error).toMatchObject({ code: "VALIDATION_ERROR", message: "The request body is not valid JSON" });
    expect(await projectCount(t.organization.id)).toBe(1);
  });

  it("a JSON body that is not an object → 400", async () => {
    const t = await createTenant();
    for (const body of ["[]", '"name"', "42", "null"]) {
      const res = await call("/api/v1/projects", { method: "POST", key: t.key, body, headers: { "Content-Type": "application/json" } });
      expect(res.status, body).toBe(400);
      expect(res.body.error).toBe("invalid_request");
    }
  });

  it("a body that is not JSON → 415", async () => {
    const t = await createTenant();
    const res = await call("/api/v1/projects", { method: "POST", key: t.key, body: "name=x", headers: { "Content-Type": "application/x-www-form-urlencoded" } });
    expect(res.status).toBe(415);
    expect(res.body.error).toBe("unsupported_media_type");
    const text = await call("/api/v1/projects", { method: "POST", key: t.key, body: "name", headers: { "Content-Type": "text/plain" } });
    expect(text.status).toBe(415);
    expect(await projectCount(t.organization.id)).toBe(1);
  });

  it("bodies over 1 MB → 413, with Content-Length and streamed without it", async () => {
    const t = await createTenant();
    const big = JSON.stringify({ name: "x", description: "y".repeat(1024 * 1024) });
    const withLength = await call("/api/v1/projects", { method: "POST", key: t.key, body: big, headers: { "Content-Type": "application/json" } });
    expect(withLength.status).toBe(413);
    expect(withLength.body.error).toBe("payload_too_large");

    // A chunked body that never ends on its own: the limit must stop reading it.
    let sent = 0;
    const chunk = new TextEncoder().encode("y".repeat(64 * 1024));
    const endless = new ReadableStream<Uint8Array>({
      pull(controller) {
        sent += chunk.byteLength;
        if (sent > 64 * 1024 * 1024) controller.close();
        else controller.enqueue(chunk);
      },
    });
    const streamed = await call("/api/projects", { method: "POST", key: t.key, body: endless, headers: { "Content-Type": "application/json" } });
    expect(streamed.status).toBe(413);
    expect(streamed.body.error.code).toBe("PAYLOAD_TOO_LARGE");
    expect(sent).toBeLessThan(4 * 1024 * 1024);
    expect(await projectCount(t.organization.id)).toBe(1);
  });

  it("wrong types, overlong strings and unknown enum values name the field", async () => {
    const t = await createTenant();
    const cases: Array<[string, string, unknown, string]> = [
      ["POST", "/api/v1/projects", { name: ["x"] }, "name"],
      ["POST", "/api/v1/projects", { name: "x".repeat(201) }, "name"],
      ["POST", "/api/v1/projects", { name: "ok", description: 3 }, "description"],
      ["PATCH", `/api/v1/projects/${t.project.id}`, { name: "" }, "name"],
      ["POST", "/api/v1/api-keys", { name: "k", scopes: ["admin:all"] }, "scopes.0"],
      ["PATCH", `/api/v1/projects/${t.project.id}/settings`, { data_retention_days: "90" }, "data_retention_days"],
    ];
    for (const [method, path, body, field] of cases) {
      const res = await call(path, { method, key: t.key, body });
      expect(res.status, `${method} ${path} ${JSON.stringify(body)}`).toBe(400);
      expect(res.body.details.field).toBe(field);
    }
    expect((await call(`/api/v1/projects/${t.project.id}`, { key: t.key })).body.name).toBe(t.project.name);
  });

  it("negative, huge or non-numeric limit/offset → 400 naming the parameter", async () => {
    const t = await createTenant();
    for (const [query, field] of [
      ["limit=0", "limit"],
      ["limit=-1", "limit"],
      ["limit=101", "limit"],
      ["limit=1e9", "limit"],
      ["limit=abc", "limit"],
      ["limit=2.5", "limit"],
      ["offset=-1", "offset"],
      ["offset=x", "offset"],
    ]) {
      const res = await call(`/api/v1/projects?${query}`, { key: t.key });
      expect(res.status, query).toBe(400);
      expect(res.body.details).toMatchObject({ field, location: "query" });
      expect(res.body.message).toContain(`'${field}' query parameter`);
      const rep = await call(`/api/projects?teamId=${t.organization.id}&${query}`, { key: t.key });
      expect(rep.status, query).toBe(400);
      expect(rep.body.error.message).toContain(`Query parameter '${field}'`);
    }
  });
});

describe("pagination", () => {
  it("pages with limit, offset and has_more", async () => {
    const t = await createTenant();
    for (let i = 0; i < 4; i++) await call("/api/v1/projects", { method: "POST", key: t.key, body: { name: `p${i}` } });
    const first = await call("/api/v1/projects?limit=2", { key: t.key });
    expect(first.body.data.map((p: { name: string }) => p.name)).toEqual([t.project.name, "p0"]);
    expect(first.body.pagination).toEqual({ total: 5, limit: 2, offset: 0, has_more: true });
    const last = await call("/api/v1/projects?limit=2&offset=4", { key: t.key });
    expect(last.body.data.map((p: { name: string }) => p.name)).toEqual(["p3"]);
    expect(last.body.pagination).toEqual({ total: 5, limit: 2, offset: 4, has_more: false });
    const beyond = await call("/api/v1/projects?offset=50", { key: t.key });
    expect(beyond.body.data).toEqual([]);
    const rep = await call(`/api/projects?teamId=${t.organization.id}&limit=3&offset=1`, { key: t.key });
    expect(rep.body).toMatchObject({ total: 5, limit: 3, offset: 1 });
    expect(rep.body.data).toHaveLength(3);
    const max = await call("/api/v1/projects?limit=100", { key: t.key });
    expect(max.status).toBe(200);
  });
});
