import { createExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { API_VERSION, createApp } from "../src/app";
import { DEPRECATIONS, type Deprecation, deprecationProblems } from "../src/http/deprecations";
import { ORIGIN, call } from "./helpers/http";
import { createTenant } from "./helpers/factories";

const NOTICE = "https://greenlight.test/changelog#projects-list";
const table: Deprecation[] = [
  { method: "GET", path: "/api/v1/projects/{id}", deprecatedOn: "2026-11-01", sunsetOn: "2027-05-01", notice: NOTICE, successor: "/api/v1/projects" },
];

async function send(app: ReturnType<typeof createApp>, path: string, key?: string) {
  const res = await app.request(`${ORIGIN}${path}`, { headers: key ? { Authorization: `Bearer ${key}` } : {} }, env, createExecutionContext());
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : undefined };
}

describe("API version and deprecation headers (reference 001's policy)", () => {
  it("every response carries the API version, errors and every surface included", async () => {
    const t = await createTenant();
    for (const [path, key] of [["/healthz"], ["/api/v1/projects", t.key], ["/api/projects", t.key], ["/api/v1/projects"], ["/nope"]] as const) {
      const res = await call(path, { key });
      expect(res.headers.get("api-version"), path).toBe(API_VERSION);
      expect(res.headers.get("deprecation"), path).toBeNull();
    }
  });

  it("a deprecated endpoint answers with Deprecation, Sunset and Link, errors included, and is deprecated in the document", async () => {
    const app = createApp({ deprecations: table });
    const t = await createTenant();
    for (const key of [t.key, undefined]) {
      const res = await send(app, `/api/v1/projects/${t.project.id}`, key);
      expect(res.status).toBe(key ? 200 : 401);
      // RFC 9745: @ + the notice's Unix time; RFC 8594: an HTTP date.
      expect(res.headers.get("deprecation")).toBe(`@${Date.UTC(2026, 10, 1) / 1000}`);
      expect(res.headers.get("sunset")).toBe("Sat, 01 May 2027 00:00:00 GMT");
      expect(res.headers.get("link")).toBe(`<${NOTICE}>; rel="deprecation"; type="text/html", </api/v1/projects>; rel="successor-version"`);
      expect(res.headers.get("api-version")).toBe(API_VERSION);
    }
    // Only that route: the list beside it is not deprecated.
    const list = await send(app, "/api/v1/projects", t.key);
    expect(list.status).toBe(200);
    expect(list.headers.get("deprecation")).toBeNull();
    const doc = await send(app, "/openapi.json");
    expect(doc.body.paths["/api/v1/projects/{id}"].get.deprecated).toBe(true);
    expect(doc.body.paths["/api/v1/projects"].get.deprecated).toBeUndefined();
  });

  it("refuses a table that names no route or sunsets sooner than six months after the notice", () => {
    expect(() => createApp({ deprecations: [{ ...table[0]!, path: "/api/v1/nothing-here" }] })).toThrow(/no such route/);
    expect(() => createApp({ deprecations: [{ ...table[0]!, sunsetOn: "2027-04-30" }] })).toThrow(/less than 6 months/);
    expect(deprecationProblems([{ ...table[0]!, notice: "changelog" }], new Set(["GET /api/v1/projects/{id}"]))).toEqual([
      "GET /api/v1/projects/{id}: notice must be an absolute URL",
    ]);
    // The deployed table is sound (createApp would not start otherwise; this says why if not).
    const routes = new Set<string>();
    for (const d of createApp().openAPIRegistry.definitions) if (d.type === "route") routes.add(`${d.route.method.toUpperCase()} ${d.route.path}`);
    expect(deprecationProblems(DEPRECATIONS, routes)).toEqual([]);
  });

  it("/healthz says 503 when D1 does not answer, without the error; /livez still answers", async () => {
    const broken = { ...env, DB: { prepare: () => ({ first: () => Promise.reject(new Error("SECRET: disk on fire")) }) } as unknown as D1Database };
    const app = createApp();
    const errors: string[] = [];
    const original = console.error;
    console.error = (line: string) => errors.push(line);
    try {
      const health = await app.request(`${ORIGIN}/healthz`, {}, broken, createExecutionContext());
      const text = await health.text();
      expect(health.status).toBe(503);
      expect(JSON.parse(text)).toEqual({ status: "unavailable", checks: { d1: "unreachable" } });
      expect(text).not.toContain("SECRET");
      const live = await app.request(`${ORIGIN}/livez`, {}, broken, createExecutionContext());
      expect(live.status).toBe(200);
    } finally {
      console.error = original;
    }
    expect(errors.some((line) => line.includes("D1 unreachable") && line.includes("SECRET"))).toBe(true);
  });
});
