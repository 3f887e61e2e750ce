import type { MiddlewareHandler } from "hono";
import { routePath } from "hono/route";
import { log } from "../lib/log";
import type { AppEnv } from "./app-env";

/**
 * One structured line per request (issue 13): request id, method, the route's pattern (so ids do
 * not split a route into many), the path without its query (signed links carry their signature
 * there), status, duration, and who called: organization, key or user id. Never a header, a body
 * or a query string, so never a key, a token or a secret. A client error adds its code and message
 * (written for clients, so safe); a 5xx is logged again by renderError with its stack.
 */
export const accessLog: MiddlewareHandler<AppEnv> = async (c, next) => {
  const started = Date.now();
  await next();
  const principal = c.get("principal");
  const failure = c.get("failure");
  const route = routePath(c, -1);
  const fields = {
    request_id: c.get("requestId"),
    method: c.req.method,
    route: route && !route.endsWith("*") ? route : null,
    path: c.req.path,
    status: c.res.status,
    duration_ms: Date.now() - started,
    organization_id: principal?.organizationId ?? null,
    key_id: principal && !principal.sessionId ? principal.keyId : null,
    user_id: principal?.userId ?? null,
    ...(failure ? { error: failure.code, error_message: failure.message } : {}),
  };
  if (c.res.status >= 500) log.error("request", fields);
  else log.info("request", fields);
};
