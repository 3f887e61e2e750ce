import type { MiddlewareHandler } from "hono";
import { createMiddleware } from "hono/factory";
import { createDb } from "../db/client";
import { requireScope, systemClock } from "../core/context";
import { NotFound, Unauthorized } from "../core/errors";
import { authenticateKey } from "../core/keys/api-keys";
import { authCacheMs } from "../core/keys/principal-cache";
import { authenticateSession, presentedSession } from "../core/users/sessions";
import type { Scope } from "../core/keys/scopes";
import type { RateLimitGroup } from "../core/rate-limits/limits";
import { timingSafeEqualStrings } from "../lib/crypto";
import type { AppEnv } from "./app-env";
import { limitFailedAuth, limitKeyRequest, refuseBlockedAddress } from "./rate-limit";

/** The key from `Authorization: Bearer`, `X-API-Key` or `X-PANTO-API-KEY`, in that order. */
export function presentedKey(headers: Headers): string | null {
  const authorization = headers.get("authorization");
  if (authorization) {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
    if (match) return match[1]!;
  }
  return headers.get("x-api-key")?.trim() || headers.get("x-panto-api-key")?.trim() || null;
}

/**
 * Authenticates the API key (or, when none is sent, the session cookie) (401; repeated failures from one address become 429), counts the
 * request against the key's limit for the route's group (429), and checks the route's scope
 * (403), all before the body is validated.
 */
export function requireKey(scope: Scope, group: RateLimitGroup): MiddlewareHandler<AppEnv> {
  return createMiddleware<AppEnv>(async (c, next) => {
    refuseBlockedAddress(c);
    let principal;
    try {
      const key = presentedKey(c.req.raw.headers);
      const session = key ? null : presentedSession(c.req.header("cookie") ?? null);
      // A browser session (our cookie, or reference 003's sb-access-token) is checked by the same
      // scopes as a key: its user's role decides them (ROLE_SCOPES).
      principal = session
        ? await authenticateSession(createDb(c.env.DB), session, systemClock)
        : await authenticateKey(createDb(c.env.DB), key, systemClock, { cacheMs: authCacheMs(c.env.AUTH_CACHE_SECONDS) });
    } catch (err) {
      if (err instanceof Unauthorized) await limitFailedAuth(c);
      throw err;
    }
    // Counted before the scope check: a key knocking on routes it may not use still spends its budget.
    await limitKeyRequest(c, principal, group);
    requireScope(principal, scope);
    c.set("principal", principal);
    c.set("callerScope", principal.sessionId ? `user:${principal.userId}` : `key:${principal.keyId}`);
    await next();
  });
}

/** Deployment-level routes: only the ADMIN_TOKEN secret opens them, and without it they do not exist. */
export const requireAdminToken: MiddlewareHandler<AppEnv> = createMiddleware<AppEnv>(async (c, next) => {
  const expected = c.env.ADMIN_TOKEN;
  if (!expected) throw new NotFound("Resource", { path: c.req.path, method: c.req.method });
  const presented = /^Bearer\s+(\S+)\s*$/i.exec(c.req.header("authorization") ?? "")?.[1];
  if (!presented || !(await timingSafeEqualStrings(presented, expected))) {
    throw new Unauthorized("Invalid or missing admin token. Send it as 'Authorization: Bearer <ADMIN_TOKEN>'.");
  }
  c.set("callerScope", "admin");
  await next();
});
