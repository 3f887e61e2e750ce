import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { createApp } from "../../src/app";
import { ORIGIN, call } from "../helpers/http";
import { createTenant, type Tenant } from "../helpers/factories";
import { type Operation, PNG, fill, operations } from "../helpers/routes";

/**
 * What every response says about itself (issue 14, case 16): a 5xx never carries a stack or an
 * internal message, on any surface; `X-Content-Type-Options: nosniff` is on every response; CORS
 * is off unless the deployment lists origins in CORS_ORIGINS, and never `*` with credentials.
 */

const INTERNAL = "An unexpected error occurred. Quote the X-Request-Id header when reporting it.";
const SECRET = "SECRET internal detail: table exploded at /srv/greenlight/src/core/runs.ts:42";

let t: Tenant;
let ops: Operation[];

beforeAll(async () => {
  t = await createTenant();
  ops = await operations();
});

/** A GET route's path with ids of the tenant's shape, and its required query parameters filled in. */
function getPath(op: Operation): string {
  const path = op.path.includes("{token}") ? op.path.replace("{token}", `gli_${"0".repeat(64)}`) : fill(op.path, "x_00000000000000000000000000");
  const params = new URLSearchParams();
  for (const p of op.operation.parameters ?? []) {
    if (p.in !== "query" || !p.required) continue;
    params.set(p.name, p.name === "teamId" ? t.organization.id : /project/i.test(p.name) ? t.project.id : "run_00000000000000000000000000");
  }
  return params.toString() ? `${path}?${params}` : path;
}

/** The surface's 500 body, exactly: nothing of the cause. */
function internalBody(path: string): unknown {
  if (path.startsWith("/api/v1/run")) return { error: INTERNAL };
  if (path.startsWith("/api/v1/qa/external/")) return { detail: INTERNAL };
  if (path.startsWith("/api/v1/") || !path.startsWith("/api/")) return { error: "internal_error", message: INTERNAL, details: {} };
  return { error: { code: "INTERNAL_ERROR", message: INTERNAL, details: {} } };
}

/** D1 failing outright, or failing for everything but the key lookup (so handlers fail, not auth). */
function brokenEnvs(): Array<[string, Cloudflare.Env]> {
  const boom = () => {
    throw new Error(SECRET);
  };
  const down = new Proxy(env.DB, { get: boom });
  const afterAuth = new Proxy(env.DB, {
    get(target, prop) {
      if (prop === "prepare") return (sql: string) => (/\bapi_keys\b/.test(sql) ? target.prepare(sql) : boom());
      if (prop === "batch" || prop === "exec" || prop === "dump") return boom;
      const value = Reflect.get(target, prop);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
  const bucketDown = new Proxy(env.ARTIFACTS, { get: boom });
  return [
    ["D1 down", { ...env, DB: down }],
    ["D1 failing after authentication, R2 down", { ...env, DB: afterAuth, ARTIFACTS: bucketDown }],
  ];
}

describe("5xx answers", () => {
  it("carry neither the internal message nor a stack, on every GET route of every surface", { timeout: 120_000 }, async () => {
    const gets = ops.filter((o) => o.method === "GET");
    expect(gets.length).toBeGreaterThan(40);
    const app = createApp();
    const errors: string[] = [];
    const original = console.error;
    console.error = (line: string) => errors.push(line);
    let failures = 0;
    const surfaces = new Set<string>();
    try {
      for (const [mode, broken] of brokenEnvs()) {
        for (const op of gets) {
          const path = getPath(op);
          const ctx = createExecutionContext();
          const res = await app.fetch(new Request(`${ORIGIN}${path}`, { headers: { "X-API-Key": t.key } }), broken, ctx);
          const text = await res.text();
          await waitOnExecutionContext(ctx);
          const label = `${mode}: GET ${path} → ${res.status}`;
          expect(text, label).not.toContain("SECRET");
          expect(text, label).not.toMatch(/\/srv\/|\.ts:\d|\n\s+at |stack|exploded/i);
          expect(res.headers.get("x-content-type-options"), label).toBe("nosniff");
          if (res.status >= 500 && res.status !== 503) {
            failures++;
            surfaces.add(JSON.stringify(internalBody(op.path)));
            expect(res.status, label).toBe(500);
            expect(JSON.parse(text), label).toEqual(internalBody(op.path));
            // The cause is logged for the operator, under the request id the caller sees.
            const id = res.headers.get("x-request-id")!;
            expect(errors.some((line) => line.includes(id) && line.includes("SECRET")), label).toBe(true);
          }
        }
      }
    } finally {
      console.error = original;
    }
    // Every keyed GET route failed both ways (but the key routes, whose reads the second way lets
    // through), on the native and the reporting surface.
    const keyedGets = gets.filter((o) => o.access.includes(":")).length;
    const keyReads = gets.filter((o) => o.access === "keys:read").length;
    expect(keyReads).toBeGreaterThan(1);
    expect(failures).toBe(2 * keyedGets - keyReads);
    expect(surfaces.size).toBe(2);
    expect(errors.join("\n")).not.toContain(t.key);
  });

  it("a 500 on the trigger surfaces answers in their envelopes, without the cause", async () => {
    const [, [, broken]] = brokenEnvs() as [unknown, [string, Cloudflare.Env]];
    const app = createApp();
    const original = console.error;
    console.error = () => undefined;
    try {
      const bodies: Array<[string, unknown]> = [
        ["/api/v1/run", { testPlanId: 1 }],
        ["/api/v1/qa/external/testsuite/trigger", { app_id: "bld_00000000000000000000000000", tags: { include: { suite: ["smoke"] } }, devices: [{ device_name: "Pixel 8", platform_version: "14" }] }],
      ];
      for (const [path, body] of bodies) {
        const ctx = createExecutionContext();
        const res = await app.fetch(
          new Request(`${ORIGIN}${path}`, { method: "POST", headers: { "X-API-Key": t.key, "Content-Type": "application/json" }, body: JSON.stringify(body) }),
          broken,
          ctx,
        );
        const text = await res.text();
        await waitOnExecutionContext(ctx);
        expect(res.status, `${path}: ${text}`).toBe(500);
        expect(JSON.parse(text)).toEqual(internalBody(path));
      }
    } finally {
      console.error = original;
    }
  });
});

describe("X-Content-Type-Options", () => {
  it("is nosniff on every response: every route with and without a key, errors, redirects, HTML, files", { timeout: 120_000 }, async () => {
    const checked: string[] = [];
    const expectNosniff = (label: string, res: { headers: Headers }) => {
      checked.push(label);
      expect(res.headers.get("x-content-type-options"), label).toBe("nosniff");
    };
    for (const op of ops) {
      const path = op.method === "GET" ? getPath(op) : fill(op.path, "x_1");
      expectNosniff(`${op.method} ${op.path} without a key`, await call(path, { method: op.method, body: op.example }));
      if (op.access.includes(":")) expectNosniff(`${op.method} ${op.path} with a key`, await call(path, { method: op.method, key: t.key, body: op.example }));
    }
    expectNosniff("unknown path", await call("/nowhere"));
    expectNosniff("unknown API path", await call("/api/v1/nope", { key: t.key }));
    expectNosniff("plain http", await call("/api/v1/projects", { origin: "http://greenlight.test", key: t.key }));
    expectNosniff("docs", await call("/docs"));
    expectNosniff("redirect", await call("/api/v1/openapi"));
    expectNosniff("malformed JSON", await call("/api/v1/projects", { method: "POST", key: t.key, body: "{", headers: { "Content-Type": "application/json" } }));
    expectNosniff("preflight without CORS", await call("/api/v1/projects", { method: "OPTIONS", headers: { Origin: "https://dash.example.com", "Access-Control-Request-Method": "GET" } }));
    // An uploaded file, through its signed link: its declared type is the only one it may have.
    const run = await call("/api/v1/testruns", { method: "POST", key: t.key, body: { project_id: t.project.id } });
    const form = new FormData();
    form.append("type", "screenshot");
    form.append("run_id", run.body.id);
    form.append("file", new File([PNG], "s.png", { type: "image/png" }));
    const uploaded = await call("/api/v1/artifacts", { method: "POST", key: t.key, body: form });
    expectNosniff("upload", uploaded);
    const url = new URL(uploaded.body.url);
    const file = await call(`${url.pathname}${url.search}`);
    expect(file.status).toBe(200);
    expectNosniff("file", file);
    expect(checked.length).toBeGreaterThan(200);
  });
});

describe("CORS", () => {
  async function fetchWith(corsOrigins: string | undefined, path: string, init: RequestInit & { headers?: Record<string, string> } = {}) {
    const ctx = createExecutionContext();
    const res = await createApp().fetch(new Request(`${ORIGIN}${path}`, init), { ...env, CORS_ORIGINS: corsOrigins }, ctx);
    await res.arrayBuffer();
    await waitOnExecutionContext(ctx);
    return res;
  }
  const DASH = "https://dash.example.com";
  const EVIL = "https://evil.example.net";

  it("is off by default: no Access-Control header for any origin, and a preflight is not answered", async () => {
    for (const origin of [DASH, EVIL, "null"]) {
      const res = await call("/api/v1/projects", { key: t.key, headers: { Origin: origin } });
      expect(res.status).toBe(200);
      for (const [name] of res.headers) expect(name.toLowerCase().startsWith("access-control-"), name).toBe(false);
      const preflight = await call("/api/v1/projects", { method: "OPTIONS", headers: { Origin: origin, "Access-Control-Request-Method": "POST" } });
      expect(preflight.headers.get("access-control-allow-origin")).toBeNull();
      expect(preflight.status).not.toBe(204);
    }
  });

  it("answers only the origins CORS_ORIGINS lists, with credentials, on answers and errors alike", async () => {
    const setting = ` ${DASH}, https://qa.example.com/ `;
    const ok = await fetchWith(setting, "/api/v1/projects", { headers: { Origin: DASH, Authorization: `Bearer ${t.key}` } });
    expect(ok.status).toBe(200);
    expect(ok.headers.get("access-control-allow-origin")).toBe(DASH);
    expect(ok.headers.get("access-control-allow-credentials")).toBe("true");
    expect(ok.headers.get("access-control-expose-headers")).toContain("X-Request-Id");
    expect(ok.headers.get("vary")).toContain("Origin");
    const second = await fetchWith(setting, "/api/v1/projects", { headers: { Origin: "https://qa.example.com", Authorization: `Bearer ${t.key}` } });
    expect(second.headers.get("access-control-allow-origin")).toBe("https://qa.example.com");
    // A browser can read why it was refused.
    const refused = await fetchWith(setting, "/api/v1/projects", { headers: { Origin: DASH } });
    expect(refused.status).toBe(401);
    expect(refused.headers.get("access-control-allow-origin")).toBe(DASH);
    // Any other origin, or a look-alike, gets nothing, though the answer itself is the same.
    for (const origin of [EVIL, "https://dash.example.com.evil.net", "http://dash.example.com", "null"]) {
      const other = await fetchWith(setting, "/api/v1/projects", { headers: { Origin: origin, Authorization: `Bearer ${t.key}` } });
      expect(other.status).toBe(200);
      expect(other.headers.get("access-control-allow-origin"), origin).toBeNull();
      expect(other.headers.get("access-control-allow-credentials"), origin).toBeNull();
      expect(other.headers.get("vary")).toContain("Origin");
    }
    const preflight = await fetchWith(setting, "/api/v1/projects", {
      method: "OPTIONS",
      headers: { Origin: DASH, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization, content-type, idempotency-key" },
    });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get("access-control-allow-origin")).toBe(DASH);
    expect(preflight.headers.get("access-control-allow-methods")).toContain("POST");
    for (const h of ["Authorization", "Content-Type", "Idempotency-Key", "X-API-Key"]) expect(preflight.headers.get("access-control-allow-headers")).toContain(h);
    const foreignPreflight = await fetchWith(setting, "/api/v1/projects", { method: "OPTIONS", headers: { Origin: EVIL, "Access-Control-Request-Method": "POST" } });
    expect(foreignPreflight.status).not.toBe(204);
    expect(foreignPreflight.headers.get("access-control-allow-origin")).toBeNull();
  });

  it("never answers * together with credentials", async () => {
    for (const setting of ["*", `*, ${DASH}`]) {
      for (const origin of [EVIL, "null"]) {
        const res = await fetchWith(setting, "/api/v1/projects", { headers: { Origin: origin, Authorization: `Bearer ${t.key}` } });
        expect(res.headers.get("access-control-allow-origin"), `${setting} ${origin}`).toBe("*");
        expect(res.headers.get("access-control-allow-credentials"), `${setting} ${origin}`).toBeNull();
        const preflight = await fetchWith(setting, "/api/v1/projects", { method: "OPTIONS", headers: { Origin: origin, "Access-Control-Request-Method": "GET" } });
        expect(preflight.status).toBe(204);
        expect(preflight.headers.get("access-control-allow-origin")).toBe("*");
        expect(preflight.headers.get("access-control-allow-credentials")).toBeNull();
      }
    }
    // A listed origin beside * is answered by name, and only then with credentials.
    const named = await fetchWith(`*, ${DASH}`, "/api/v1/projects", { headers: { Origin: DASH } });
    expect(named.headers.get("access-control-allow-origin")).toBe(DASH);
    expect(named.headers.get("access-control-allow-credentials")).toBe("true");
  });
});
