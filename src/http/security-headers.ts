import type { MiddlewareHandler } from "hono";
import type { AppEnv } from "./app-env";
import { editResponseHeaders } from "./response-headers";

/** What a browser on an allowed origin may send, and read back, across origins. */
const ALLOWED_METHODS = "GET, POST, PUT, PATCH, DELETE, OPTIONS";
const ALLOWED_HEADERS = "Authorization, Content-Type, X-API-Key, X-PANTO-API-KEY, Idempotency-Key, X-Request-Id, Range";
const EXPOSED_HEADERS = "X-Request-Id, API-Version, Retry-After, Deprecation, Sunset, Link, Location, Content-Disposition, Content-Range, Server-Timing";
const PREFLIGHT_MAX_AGE_SECONDS = "600";

/** The origins CORS_ORIGINS lists (comma-separated); "*" alone means any origin, without credentials. */
function allowedOrigins(setting: string | undefined): { any: boolean; origins: Set<string> } {
  const entries = (setting ?? "")
    .split(",")
    .map((s) => s.trim().replace(/\/+$/, "").toLowerCase())
    .filter((s) => s !== "");
  return { any: entries.includes("*"), origins: new Set(entries.filter((s) => s !== "*")) };
}

/**
 * Headers every response carries, errors and files included: `X-Content-Type-Options: nosniff`
 * (a JSON error or an uploaded file is never sniffed into HTML), and CORS for the origins the
 * deployment lists in CORS_ORIGINS (none by default: browsers on other origins get no access).
 * A listed origin is echoed with credentials allowed, so a dashboard on it may use the session
 * cookie; `*` answers any origin but never with credentials, which browsers would refuse anyway.
 */
export const securityHeaders: MiddlewareHandler<AppEnv> = async (c, next) => {
  const { any, origins } = allowedOrigins(c.env.CORS_ORIGINS);
  const origin = c.req.header("origin");
  const listed = origin !== undefined && origins.has(origin.toLowerCase());
  const cors: Record<string, string> = {};
  if (listed) {
    cors["Access-Control-Allow-Origin"] = origin;
    cors["Access-Control-Allow-Credentials"] = "true";
  } else if (any && origin !== undefined) {
    cors["Access-Control-Allow-Origin"] = "*";
  }

  const vary = origins.size > 0;
  const preflight = c.req.method === "OPTIONS" && origin !== undefined && c.req.header("access-control-request-method") !== undefined;
  if (preflight && cors["Access-Control-Allow-Origin"]) {
    return new Response(null, {
      status: 204,
      headers: {
        ...cors,
        "Access-Control-Allow-Methods": ALLOWED_METHODS,
        "Access-Control-Allow-Headers": ALLOWED_HEADERS,
        "Access-Control-Max-Age": PREFLIGHT_MAX_AGE_SECONDS,
        "X-Content-Type-Options": "nosniff",
        ...(vary ? { Vary: "Origin" } : {}),
      },
    });
  }
  await next();

  const headers: Record<string, string> = { "X-Content-Type-Options": "nosniff", ...cors };
  if (cors["Access-Control-Allow-Origin"]) headers["Access-Control-Expose-Headers"] = EXPOSED_HEADERS;
  editResponseHeaders(c, (out) => {
    for (const [name, value] of Object.entries(headers)) out.set(name, value);
    if (vary) out.append("Vary", "Origin");
  });
};
