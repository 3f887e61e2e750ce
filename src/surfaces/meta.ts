import { z } from "@hono/zod-openapi";
import { defineRoute } from "../http/routes";
import { log } from "../lib/log";
import { jsonResponse, surfaceApp } from "./shared";

const Live = z.object({ status: z.literal("ok") }).openapi("Live");
const Health = z
  .object({
    status: z.enum(["ok", "unavailable"]),
    checks: z.object({ d1: z.enum(["ok", "unreachable"]) }),
  })
  .openapi("Health");

const liveRoute = defineRoute("public", {
  method: "get",
  path: "/livez",
  operationId: "livez",
  tags: ["meta"],
  summary: "Liveness: the Worker answers (nothing else is checked)",
  responses: { 200: jsonResponse(Live, "Alive.") },
});

const healthRoute = defineRoute("public", {
  method: "get",
  path: "/healthz",
  operationId: "healthz",
  tags: ["meta"],
  summary: "Health: the Worker answers and reaches its D1 database",
  responses: {
    200: jsonResponse(Health, "Alive, and D1 answers."),
    503: jsonResponse(Health, "D1 did not answer: requests that need it fail. Nothing more is said (the error is logged)."),
  },
});

/** One trivial query: D1 reachable and answering, whatever the schema. */
async function d1Reachable(db: D1Database, requestId: string): Promise<boolean> {
  try {
    return (await db.prepare("SELECT 1 AS ok").first<{ ok: number }>())?.ok === 1;
  } catch (err) {
    log.error("health check: D1 unreachable", { request_id: requestId, message: String(err) });
    return false;
  }
}

const openapiRedirectRoute = defineRoute("public", {
  method: "get",
  path: "/api/v1/openapi",
  operationId: "openapiDiscovery",
  tags: ["meta"],
  summary: "OpenAPI discovery: redirects to /openapi.json (reference 001)",
  responses: { 302: { description: "Redirect to /openapi.json." } },
});

export const metaRoutes = surfaceApp()
  .openapi(liveRoute, (c) => c.json({ status: "ok" as const }, 200))
  .openapi(healthRoute, async (c) => {
    const ok = await d1Reachable(c.env.DB, c.get("requestId"));
    return ok
      ? c.json({ status: "ok" as const, checks: { d1: "ok" as const } }, 200)
      : c.json({ status: "unavailable" as const, checks: { d1: "unreachable" as const } }, 503);
  })
  .openapi(openapiRedirectRoute, (c) => c.redirect("/openapi.json", 302));
