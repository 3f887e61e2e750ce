import { requiredSecretRing } from "../lib/crypto";
import type { Context, MiddlewareHandler } from "hono";
import { createMiddleware } from "hono/factory";
import { claimIdempotencyKey } from "../core/idempotency/idempotency";
import { createDb } from "../db/client";
import type { AppEnv } from "./app-env";

/**
 * Statuses that mean the request was refused before anything ran (bad body, too large, wrong
 * media type) or failed on our side: the key is freed so the client can fix and retry with it.
 */
const NOT_KEPT = new Set([400, 413, 415]);

export type RequestClaim =
  | { kind: "replay"; response: Response }
  | { kind: "claimed"; release: (response: Response | null) => Promise<void> };

/**
 * Claims the request's `Idempotency-Key`, if it has one (null otherwise). `fingerprint` stands
 * for the request's content: the body, or for a body too large to hold, its digest and whatever
 * else shapes the request. The claim is released with the response to keep for replay, or with
 * null when the request failed in a way worth retrying.
 */
export async function claimRequest(c: Context<AppEnv>, fingerprint: string): Promise<RequestClaim | null> {
  const idempotencyKey = c.req.header("idempotency-key");
  if (idempotencyKey === undefined) return null;
  const secret = requiredSecretRing(c.env, "Idempotency-Key cannot be honoured");

  const claim = await claimIdempotencyKey(createDb(c.env.DB), {
    scope: c.get("callerScope"),
    idempotencyKey,
    method: c.req.method,
    path: c.req.path,
    body: fingerprint,
    secret,
    now: new Date(),
  });
  if (claim.kind === "replay") {
    const { status, contentType, body, location } = claim.response;
    const headers = new Headers({ "Idempotent-Replayed": "true" });
    if (contentType) headers.set("Content-Type", contentType);
    if (location) headers.set("Location", location);
    return { kind: "replay", response: new Response(body, { status, headers }) };
  }
  return {
    kind: "claimed",
    release: async (response) => {
      if (!response || response.status >= 500 || NOT_KEPT.has(response.status)) return claim.release(null);
      await claim.release({
        status: response.status,
        contentType: response.headers.get("content-type"),
        location: response.headers.get("location"),
        body: await response.clone().text(),
      });
    },
  };
}

/**
 * Honours `Idempotency-Key` on POSTs that create something. Runs after authentication, so each
 * caller has its own key namespace. Responses are kept for replay unless NOT_KEPT or 5xx.
 */
export const idempotency: MiddlewareHandler<AppEnv> = createMiddleware<AppEnv>(async (c, next) => {
  if (c.req.header("idempotency-key") === undefined) return next();
  const claim = await claimRequest(c, await c.req.text());
  if (!claim) return next();
  if (claim.kind === "replay") return claim.response;
  try {
    await next();
  } catch (err) {
    await claim.release(null);
    throw err;
  }
  await claim.release(c.res);
});
