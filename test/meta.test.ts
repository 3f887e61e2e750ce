import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { createApp } from "../src/app";
import { ORIGIN, call } from "./helpers/http";
import { createTenant } from "./helpers/factories";

describe("meta", () => {
  it("serves an OpenAPI 3.1 document with every surface tagged and the security schemes", async () => {
    const res = await call("/openapi.json");
    expect(res.status).toBe(200);
    const doc = res.body;
    expect(doc.openapi).toBe("3.1.0");
    const ops = Object.values<Record<string, any>>(doc.paths).flatMap((item) => Object.values<any>(item));
    for (const op of ops) {
      expect(op.operationId).toBeTruthy();
      expect(op.tags?.length).toBeGreaterThan(0);
    }
    const tags = new Set(ops.flatMap((op) => op.tags));
    expect([...tags].some((t) => t.startsWith("native"))).toBe(true);
    expect([...tags].some((t) => t.startsWith("reporting"))).toBe(true);
    expect(Object.keys(doc.components.securitySchemes).sort()).toEqual(["adminToken", "apiKeyHeader", "bearerKey", "pantoKeyHeader"]);
    for (const path of [
      "/api/v1/admin/organizations",
      "/api/v1/organizations",
      "/api/v1/organizations/{id}",
      "/api/v1/projects",
      "/api/v1/projects/{id}",
      "/api/v1/projects/{id}/settings",
      "/api/v1/api-keys",
      "/api/v1/api-keys/{id}",
      "/api/v1/api-keys/{id}/rotate",
      "/api/projects",
      "/api/projects/{id}",
      "/api/projects/{id}/settings",
      "/api/teams",
      "/api/api-keys",
      "/api/api-keys/{id}",
      "/healthz",
      "/api/v1/openapi",
    ]) {
      expect(doc.paths[path], path).toBeDefined();
    }
    expect(doc.paths["/api/v1/projects"].post.requestBody.required).toBe(true);
    expect(doc.components.schemas.Project).toBeDefined();
  });

  it("redirects /api/v1/openapi to /openapi.json", async () => {
    const res = await call("/api/v1/openapi");
    expect(res.status).toBe(302);
    expect(res.headers.get("location")).toBe("/openapi.json");
  });

  it("serves an interactive explorer at /docs", async () => {
    const res = await call("/docs");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toContain("text/html");
    expect(res.text).toContain("/openapi.json");
  });
});

describe("errors and request ids", () => {
  it("every response carries X-Request-Id; a sane incoming one is kept", async () => {
    const t = await createTenant();
    for (const [path, key] of [["/healthz", undefined], ["/api/v1/projects", t.key], ["/api/v1/projects", undefined], ["/nope", undefined]] as const) {
      const res = await call(path, { key });
      expect(res.headers.get("x-request-id"), path).toMatch(/^req_[0-9a-f]{32}$/);
    }
    const kept = await call("/healthz", { headers: { "X-Request-Id": "ci-run-42.step-7" } });
    expect(kept.headers.get("x-request-id")).toBe("ci-run-42.step-7");
    const replaced = await call("/healthz", { headers: { "X-Request-Id": "<script>" } });
    expect(replaced.headers.get("x-request-id")).toMatch(/^req_/);
  });

  it("unknown routes answer 404 in the envelope of the surface they fall in", async () => {
    expect((await call("/api/v1/nope")).body).toMatchObject({ error: "not_found" });
    expect((await call("/api/nope")).body.error).toMatchObject({ code: "NOT_FOUND" });
    expect((await call("/nowhere")).body).toMatchObject({ error: "not_found" });
  });

  it("the plan-trigger and suite-trigger paths answer in their own envelopes", async () => {
    // Unknown paths under them, and their 401s, say so in the envelope their clients parse.
    const plan = await call("/api/v1/run/nope", { method: "POST", body: {} });
    expect(plan.status).toBe(404);
    expect(plan.body).toEqual({ error: "Resource not found" });
    expect((await call("/api/v1/run", { method: "POST", body: {} })).body).toEqual({ error: "Invalid API key" });
    const suite = await call("/api/v1/qa/external/nope", { method: "POST", body: {} });
    expect(suite.status).toBe(404);
    expect(suite.body).toEqual({ detail: "Resource not found" });
    const unauthorized = await call("/api/v1/qa/external/testsuite/trigger", { method: "POST", body: {} });
    expect(unauthorized.status).toBe(401);
    expect(Object.keys(unauthorized.body)).toEqual(["detail"]);
  });

  it("every request is logged as one JSON line, client errors with their code, never with the key", async () => {
    const t = await createTenant();
    const lines: string[] = [];
    const original = console.log;
    console.log = (line: string) => lines.push(line);
    try {
      const res = await call("/api/v1/projects/proj_missing", { key: t.key });
      expect(res.status).toBe(404);
      // A wrong secret with the right prefix (the last digit changed, never to itself).
      const wrong = `${t.key.slice(0, -1)}${t.key.endsWith("0") ? "1" : "0"}`;
      const denied = await call("/api/v1/projects", { headers: { Authorization: `Bearer ${wrong}` } });
      expect(denied.status).toBe(401);
      const ok = await call(`/api/v1/projects/${t.project.id}?secret=${t.key}`, { key: t.key });
      expect(ok.status).toBe(200);
      const logged = lines.map((l) => JSON.parse(l));
      expect(logged).toContainEqual(expect.objectContaining({ request_id: res.headers.get("x-request-id"), status: 404, error: "not_found" }));
      // Every request: one JSON line with the route's pattern, the caller's organization and key
      // id, the duration; the path without its query.
      const line = logged.find((l) => l.request_id === ok.headers.get("x-request-id"));
      expect(line).toEqual({
        ts: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
        level: "info",
        msg: "request",
        request_id: ok.headers.get("x-request-id"),
        method: "GET",
        route: "/api/v1/projects/:id",
        path: `/api/v1/projects/${t.project.id}`,
        status: 200,
        duration_ms: expect.any(Number),
        organization_id: t.organization.id,
        key_id: t.keyId,
        user_id: null,
      });
      expect(logged).toContainEqual(expect.objectContaining({ request_id: denied.headers.get("x-request-id"), status: 401 }));
    } finally {
      console.log = original;
    }
    expect(lines.join("\n")).not.toContain(t.key.slice(16, -1));
  });

  it("log lines mask secrets: fields named for them, and keys or session tokens inside text", async () => {
    const { log } = await import("../src/lib/log");
    const lines: string[] = [];
    const original = console.log;
    console.log = (line: string) => lines.push(line);
    try {
      log.info("probe", { key: "anything", nested: { password: "hunter2", ok: 1 }, message: "saw gl_live_0123456789abcdef0123 and gls_abcdef0123456789" });
    } finally {
      console.log = original;
    }
    const line = JSON.parse(lines[0]!);
    expect(line).toMatchObject({ level: "info", msg: "probe", key: "[redacted]", nested: { password: "[redacted]", ok: 1 } });
    expect(line.message).toBe("saw gl_live_[redacted] and gls_[redacted]");
  });

  it("a 500 never carries the internal message, on any surface", async () => {
    const broken = {
      ...env,
      DB: new Proxy(env.DB, {
        get() {
          throw new Error("SECRET internal detail: table exploded");
        },
      }),
    };
    const t = await createTenant();
    const app = createApp();
    const errors: string[] = [];
    const original = console.error;
    console.error = (line: string) => errors.push(line);
    try {
      for (const path of ["/api/v1/projects", "/api/projects?teamId=x"]) {
        const res = await app.fetch(new Request(`${ORIGIN}${path}`, { headers: { "X-API-Key": t.key } }), broken);
        const text = await res.text();
        expect(res.status, path).toBe(500);
        expect(text).not.toContain("SECRET");
        expect(text).toContain("X-Request-Id");
        const id = res.headers.get("x-request-id");
        expect(errors.some((line) => line.includes(id!) && line.includes("SECRET"))).toBe(true);
      }
    } finally {
      console.error = original;
    }
    expect(errors.join("\n")).not.toContain(t.key);
  });
});
