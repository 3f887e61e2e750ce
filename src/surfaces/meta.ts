import { z } from "@hono/zod-openapi";
import { defineRoute } from "../http/routes";
import { jsonResponse, surfaceApp } from "./shared";

const Health = z.object({ status: z.literal("ok") }).openapi("Health");

const healthRoute = defineRoute("public", {
  method: "get",
  path: "/healthz",
  operationId: "healthz",
  tags: ["meta"],
  summary: "Liveness: the Worker answers",
  responses: { 200: jsonResponse(Health, "Alive.") },
});

const openapiRedirectRoute = defineRoute("public", {
  method: "get",
  path: "/api/v1/openapi",
  operationId: "openapiDiscovery",
  tags: ["meta"],
  summary: "OpenAPI discovery: redirects to /openapi.json (reference 001)",
  responses: { 302: { description: "Redirect to /openapi.json." } },
});

export const metaRoutes = surfaceApp()
  .openapi(healthRoute, (c) => c.json({ status: "ok" as const }, 200))
  .openapi(openapiRedirectRoute, (c) => c.redirect("/openapi.json", 302));
