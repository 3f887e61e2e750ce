import { swaggerUI } from "@hono/swagger-ui";
import { OpenAPIHono } from "@hono/zod-openapi";
import type { AppEnv } from "./http/app-env";
import { accessLog } from "./http/access-log";
import { DEPRECATIONS, type Deprecation, apiVersionHeaders, deprecationProblems } from "./http/deprecations";
import { jsonBodyLimit } from "./http/body-limit";
import { d1Metrics } from "./http/d1-metrics";
import { outboxFlush } from "./http/outbox-flush";
import { renderError, renderNotFound } from "./http/errors";
import { httpsGuard } from "./http/https-guard";
import { requestId } from "./http/request-id";
import { securityHeaders } from "./http/security-headers";
import { SECURITY_SCHEMES } from "./http/routes";
import { validationHook } from "./http/validation";
import { metaRoutes } from "./surfaces/meta";
import { reportingSurface } from "./surfaces/reporting";
import { nativeSurface } from "./surfaces/v1";

export const API_VERSION = "1.0.0";

/**
 * The Worker's HTTP app. Order matters: request id first (so every answer carries it), then the
 * HTTPS guard (before credentials are read), then the body limit; authentication, scopes and
 * idempotency run per route (see http/routes.ts), then validation, then the handler.
 */
export function createApp(options: { deprecations?: readonly Deprecation[] } = {}) {
  const deprecations = options.deprecations ?? DEPRECATIONS;
  const app = new OpenAPIHono<AppEnv>({ defaultHook: validationHook });
  app.use("*", accessLog);
  app.use("*", requestId);
  app.use("*", apiVersionHeaders(API_VERSION, deprecations));
  app.use("*", securityHeaders);
  app.use("/api/*", outboxFlush);
  app.use("*", d1Metrics);
  app.use("*", httpsGuard);
  app.use("/api/*", jsonBodyLimit);

  app.route("/", metaRoutes);
  app.route("/api/v1", nativeSurface());
  app.route("/api", reportingSurface());

  // The deprecation table must name real routes and keep reference 001's window; its routes are
  // marked deprecated in the document.
  const routes = new Map<string, { deprecated?: boolean }>();
  for (const definition of app.openAPIRegistry.definitions) {
    if (definition.type === "route") routes.set(`${definition.route.method.toUpperCase()} ${definition.route.path}`, definition.route);
  }
  const problems = deprecationProblems(deprecations, new Set(routes.keys()));
  if (problems.length > 0) throw new Error(`The deprecation table is wrong: ${problems.join("; ")}`);
  for (const d of deprecations) routes.get(`${d.method} ${d.path}`)!.deprecated = true;

  for (const [name, scheme] of Object.entries(SECURITY_SCHEMES)) {
    app.openAPIRegistry.registerComponent("securitySchemes", name, scheme);
  }
  app.doc31("/openapi.json", (c) => ({
    openapi: "3.1.0",
    info: {
      title: "Greenlight API",
      version: API_VERSION,
      description:
        "Self-hosted test results, flaky tests and release readiness. Four surfaces over one core: native `/api/v1`, reporting `/api` (Euriqa-compatible), plan trigger `POST /api/v1/run` and suite trigger `POST /api/v1/qa/external/testsuite/trigger`.",
    },
    servers: [{ url: c.env.PUBLIC_BASE_URL || new URL(c.req.url).origin }],
    tags: [
      { name: "meta", description: "Health and discovery." },
      { name: "native: admin", description: "Deployment administration with ADMIN_TOKEN." },
      { name: "native: organizations", description: "Native surface (/api/v1)." },
      { name: "native: projects", description: "Native surface (/api/v1)." },
      { name: "native: api keys", description: "Native surface (/api/v1)." },
      { name: "native: test runs", description: "Native surface (/api/v1): runs, their results and suites." },
      { name: "native: results", description: "Native surface (/api/v1)." },
      { name: "native: test cases", description: "Native surface (/api/v1): stable test identities and their history." },
      { name: "native: ingest", description: "Native surface (/api/v1): CI reports in JUnit XML, Playwright JSON, CTRF or native JSON." },
      { name: "native: builds", description: "Native surface (/api/v1): builds from CI and the per-project build queue." },
      { name: "native: releases", description: "Native surface (/api/v1): releases and whether a build is ready to ship." },
      { name: "native: webhooks", description: "Native surface (/api/v1): subscriptions, the delivery log, redelivery and ping." },
      { name: "native: flakiness", description: "Native surface (/api/v1): flakiness scores and their parts." },
      { name: "native: artifacts", description: "Native surface (/api/v1): screenshots, videos, traces and reports in R2, with signed download links." },
      { name: "native: users", description: "Native surface (/api/v1): sign-in, sessions, members, roles and invitations." },
      { name: "native: test plans", description: "Native surface (/api/v1): test plans, environments, contexts and their triggers." },
      { name: "native: jobs", description: "Native surface (/api/v1): queued runs for the team's own CI runners to claim." },
      { name: "plan trigger", description: "Plan trigger surface (test-lab-compatible, reference 002): POST /api/v1/run." },
      { name: "suite trigger", description: "Suite trigger surface (Panto-compatible, reference 004): POST /api/v1/qa/external/testsuite/trigger." },
      { name: "native: events", description: "Native surface (/api/v1): the catalog of webhook event types and their payloads." },
      { name: "reporting: artifacts", description: "Reporting surface (/api, reference 003): POST /api/upload." },
      { name: "reporting: projects", description: "Reporting surface (/api, reference 003)." },
      { name: "reporting: teams", description: "Reporting surface (/api, reference 003)." },
      { name: "reporting: api keys", description: "Reporting surface (/api, reference 003)." },
      { name: "reporting: runs", description: "Reporting surface (/api, reference 003)." },
      { name: "reporting: tests", description: "Reporting surface (/api, reference 003): a test is one result." },
      { name: "reporting: test suites", description: "Reporting surface (/api, reference 003)." },
      { name: "reporting: webhooks", description: "Reporting surface (/api, reference 003)." },
      { name: "reporting: flakiness", description: "Reporting surface (/api, reference 003): flakiness scores and quarantine." },
    ],
  }));
  app.get("/docs", swaggerUI({ url: "/openapi.json", title: "Greenlight API explorer" }));

  app.notFound(renderNotFound);
  app.onError(renderError);
  return app;
}
