import { createRoute, type RouteConfig } from "@hono/zod-openapi";
import type { MiddlewareHandler } from "hono";
import type { Scope } from "../core/keys/scopes";
import { rateLimitGroupOf } from "../core/rate-limits/limits";
import type { AppEnv } from "./app-env";
import { requireAdminToken, requireKey } from "./auth";
import { idempotency } from "./idempotency";

/** Who may call a route: a key with one scope, the deployment's ADMIN_TOKEN, or anyone. */
export type Access = { scope: Scope } | "admin" | "public";

/** OpenAPI extension carrying a route's access rule, read back by the shared auth tests. */
export const ACCESS_EXTENSION = "x-greenlight-access";
/** OpenAPI extension naming a keyed route's rate-limit group. */
export const RATE_LIMIT_EXTENSION = "x-greenlight-rate-limit-group";

const KEY_SECURITY = [{ bearerKey: [] }, { apiKeyHeader: [] }, { pantoKeyHeader: [] }];

export interface RouteOptions {
  /**
   * POSTs that create something honour Idempotency-Key: true runs the shared middleware; "handler"
   * is for a route whose handler claims the key itself (it fingerprints a body it streams).
   * Either way the header is published on the operation, where clients and tests find it.
   */
  idempotent?: boolean | "handler";
}

export const IDEMPOTENCY_KEY_PARAMETER = {
  name: "Idempotency-Key",
  in: "header",
  required: false,
  description:
    "1 to 255 printable ASCII characters. The same key with the same request within 24 hours answers the first response again (with `Idempotent-Replayed: true`) instead of acting twice; with a different request, 422; while the first is still running, 409.",
  schema: { type: "string", minLength: 1, maxLength: 255 },
} as const;

/**
 * createRoute with the access rule attached: authentication (401) and the scope check (403) run as
 * route middleware, before the request is validated, and the rule is published in the document.
 */
export function defineRoute<const R extends RouteConfig>(access: Access, config: R, options: RouteOptions = {}) {
  const middleware: MiddlewareHandler<AppEnv>[] = [];
  // Every keyed route belongs to one rate-limit group; a route no rule places fails at startup.
  const group = access !== "admin" && access !== "public" ? rateLimitGroupOf(config.method, config.path) : null;
  if (access === "admin") middleware.push(requireAdminToken);
  else if (group) middleware.push(requireKey((access as { scope: Scope }).scope, group));
  if (options.idempotent === true) middleware.push(idempotency);
  const security = access === "admin" ? [{ adminToken: [] }] : access === "public" ? [] : KEY_SECURITY;
  return createRoute({
    ...config,
    ...(options.idempotent ? { parameters: [...(config.parameters ?? []), IDEMPOTENCY_KEY_PARAMETER] } : {}),
    security,
    middleware: middleware as RouteConfig["middleware"],
    [ACCESS_EXTENSION]: access === "admin" || access === "public" ? access : access.scope,
    ...(group ? { [RATE_LIMIT_EXTENSION]: group } : {}),
  } as R);
}

export const SECURITY_SCHEMES = {
  bearerKey: { type: "http", scheme: "bearer", description: "An API key: `Authorization: Bearer gl_live_…`" },
  apiKeyHeader: { type: "apiKey", in: "header", name: "X-API-Key" },
  pantoKeyHeader: { type: "apiKey", in: "header", name: "X-PANTO-API-KEY" },
  adminToken: { type: "http", scheme: "bearer", description: "The deployment's ADMIN_TOKEN secret." },
} as const;
