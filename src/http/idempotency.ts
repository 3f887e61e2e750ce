import type { MiddlewareHandler } from "hono";
import { createMiddleware } from "hono/factory";
import { claimIdempotencyKey } from "../core/idempotency/idempotency";
import { createDb } from "../db/client";
import type { AppEnv } from "./app-env";

/**
 * Statuses that mean the request was refused before anything ran (bad body, too large, wrong
 * media type) or failed on our side: the key is freed so the client can fix and retry with it.
 */
const NOT_KEPT = new Set([400, 413, 415]);

/**
 * Honours `Idempotency-Key` on POSTs that create something. Runs after authentication, so each
 * caller has its own key namespace. Responses are kept for replay unless NOT_KEPT or 5xx.
 */
export const idempotency: MiddlewareHandler<AppEnv> = createMiddleware<AppEnv>(async (c, next) => {
  const idempotencyKey = c.req.header("idempotency-key");
  if (idempotencyKey === undefined) return next();
  const secret = c.env.URL_SIGNING_SECRET;
  if (!secret) throw new Error("URL_SIGNING_SECRET is not configured; Idempotency-Key cannot be honoured.");

  const claim = await claimIdempotencyKey(createDb(c.env.DB), {
    scope: c.get("callerScope"),
    idempotencyKey,
    method: c.req.method,
    path: c.req.path,
    body: await c.req.text(),
    secret,
    now: new Date(),
  });
  if (claim.kind === "replay") {
    const { status, contentType, body } = claim.response;
    const headers = new Headers({ "Idempotent-Replayed": "true" });
    if (contentType) headers.set("Content-Type", contentType);
    return new Response(body, { status, headers });
  }

  try {
    await next();
  } catch (err) {
    await claim.release(null);
    throw err;
  }
  if (c.res.status >= 500 || NOT_KEPT.has(c.res.status)) {
    await claim.release(null);
  } else {
    await claim.release({
      status: c.res.status,
      contentType: c.res.headers.get("content-type"),
      body: await c.res.clone().text(),
    });
  }
});
