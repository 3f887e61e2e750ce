import type { MiddlewareHandler } from "hono";
import { flushOutbox } from "../core/webhooks/delivery";
import type { AppEnv } from "./app-env";

/**
 * After a write (anything but GET and HEAD) the events it put into the outbox are sent to the
 * webhook queue in the background, so receivers hear of a change within seconds; the cron sends
 * whatever a failed send left behind.
 */
export const outboxFlush: MiddlewareHandler<AppEnv> = async (c, next) => {
  await next();
  if (c.req.method === "GET" || c.req.method === "HEAD" || c.res.status >= 400) return;
  c.executionCtx.waitUntil(
    flushOutbox(c.env).catch((err) => console.error(JSON.stringify({ level: "error", note: "outbox flush failed", message: String(err) }))),
  );
};
