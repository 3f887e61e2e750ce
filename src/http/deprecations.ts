import type { MiddlewareHandler } from "hono";
import { routePath } from "hono/route";
import type { AppEnv } from "./app-env";
import { editResponseHeaders } from "./response-headers";

/**
 * Deprecated endpoints, the one table that drives their headers and the OpenAPI document
 * (reference 001's policy): a deprecated endpoint keeps working for at least six months after
 * its notice, and its sunset date is published at least 60 days ahead. Each response of a listed
 * endpoint carries `Deprecation` (RFC 9745: `@` + Unix seconds of the notice), `Sunset` (RFC 8594:
 * an HTTP date) and `Link` to the notice (rel="deprecation") and to what replaces it
 * (rel="successor-version"); its operation is `deprecated: true` in /openapi.json.
 *
 * Nothing is deprecated yet. To deprecate an endpoint: add it here with its dates and changelog
 * link; createApp refuses a table whose entry names no route or breaks the six-month window.
 */
export interface Deprecation {
  method: "GET" | "POST" | "PUT" | "PATCH" | "DELETE";
  /** The full path as the OpenAPI document spells it, e.g. `/api/v1/testruns/{id}`. */
  path: string;
  /** The day the notice was published (YYYY-MM-DD, UTC). */
  deprecatedOn: string;
  /** The day the endpoint may stop working (YYYY-MM-DD, UTC). */
  sunsetOn: string;
  /** The changelog entry announcing it. */
  notice: string;
  /** The endpoint to use instead, if any (a path or a URL). */
  successor?: string;
}

export const DEPRECATIONS: readonly Deprecation[] = [];

/** Reference 001: deprecated behaviour remains functional for a minimum of 6 months. */
export const MIN_DEPRECATION_MONTHS = 6;

const DAY = /^\d{4}-\d{2}-\d{2}$/;

/** The problems of a table (empty when it is sound), given the routes the app defines ("GET /api/v1/x/{id}"). */
export function deprecationProblems(table: readonly Deprecation[], routes: ReadonlySet<string>): string[] {
  const problems: string[] = [];
  for (const d of table) {
    const name = `${d.method} ${d.path}`;
    if (!routes.has(name)) problems.push(`${name}: no such route`);
    if (!DAY.test(d.deprecatedOn) || !DAY.test(d.sunsetOn)) {
      problems.push(`${name}: dates must be YYYY-MM-DD`);
      continue;
    }
    const earliest = new Date(`${d.deprecatedOn}T00:00:00Z`);
    earliest.setUTCMonth(earliest.getUTCMonth() + MIN_DEPRECATION_MONTHS);
    if (new Date(`${d.sunsetOn}T00:00:00Z`) < earliest) {
      problems.push(`${name}: sunset ${d.sunsetOn} is less than ${MIN_DEPRECATION_MONTHS} months after the notice of ${d.deprecatedOn}`);
    }
    if (!/^https?:\/\//.test(d.notice)) problems.push(`${name}: notice must be an absolute URL`);
  }
  return problems;
}

/** Hono's pattern (`/api/v1/testruns/:id`) in the document's spelling (`/api/v1/testruns/{id}`). */
const openApiPath = (pattern: string) => pattern.replace(/:([A-Za-z0-9_]+)/g, "{$1}");

/**
 * Every response carries the API version; a deprecated endpoint's responses (errors included)
 * also carry its deprecation headers.
 */
export function apiVersionHeaders(version: string, table: readonly Deprecation[]): MiddlewareHandler<AppEnv> {
  const byRoute = new Map(table.map((d) => [`${d.method} ${d.path}`, d]));
  return async (c, next) => {
    await next();
    const deprecation = byRoute.size === 0 ? undefined : byRoute.get(`${c.req.method} ${openApiPath(routePath(c, -1))}`);
    const headers: [string, string][] = [["API-Version", version]];
    if (deprecation) {
      const notice = Date.parse(`${deprecation.deprecatedOn}T00:00:00Z`);
      headers.push(["Deprecation", `@${Math.floor(notice / 1000)}`]);
      headers.push(["Sunset", new Date(`${deprecation.sunsetOn}T00:00:00Z`).toUTCString()]);
      headers.push(["Link", `<${deprecation.notice}>; rel="deprecation"; type="text/html"`]);
      if (deprecation.successor) headers.push(["Link", `<${deprecation.successor}>; rel="successor-version"`]);
    }
    editResponseHeaders(c, (out) => {
      for (const [name, value] of headers) out.append(name, value);
    });
  };
}
