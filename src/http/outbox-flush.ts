import { log } from "../lib/log";
import type { MiddlewareHandler } from "hono";
import { flushOutbox } from "../core/webhooks/delivery";
import type { Env } from "../env";
import type { AppEnv } from "./app-env";

/**
 * Whether a flush is running in this isolate, and whether a write committed after it began (so
 * its claim may have missed that write's events and it must go round once more).
 */
let flushingSince: number | null = null;
let again = false;
/** A flush older than this is taken for dead (its request's context was cancelled mid-loop). */
const FLUSH_STALE_MS = 30_000;

/**
 * Starts a flush unless one is running in this isolate; then that one goes round once more
 * instead. Under load this turns one outbox query per write into one per flush: 16 concurrent
 * writers share one flush at a time rather than each claiming from the same table. The loop runs
 * in the waitUntil of the request that started it; a request that only asks for another round
 * awaits nothing of another request's (I/O across request contexts is not allowed in Workers).
 * If that request's context ends early, the cron sends what was left.
 */
export function requestOutboxFlush(
  env: Env,
  waitUntil: (promise: Promise<unknown>) => void,
  flush: (env: Env) => Promise<unknown> = flushOutbox,
): void {
  const now = Date.now();
  if (flushingSince !== null && now - flushingSince < FLUSH_STALE_MS) {
    again = true;
    return;
  }
  flushingSince = now;
  waitUntil(
    (async () => {
      try {
        do {
          again = false;
          await flush(env);
        } while (again);
      } catch (err) {
        log.error("outbox flush failed", { message: String(err) });
      } finally {
        flushingSince = null;
      }
    })(),
  );
}

/**
 * After a write (anything but GET and HEAD) the events it put into the outbox are sent to the
 * webhook queue in the background, so receivers hear of a change within seconds; the cron sends
 * whatever a failed send left behind.
 */
export const outboxFlush: MiddlewareHandler<AppEnv> = async (c, next) => {
  // The bindings as they came: the flush is background work, not billed to the request's
  // D1_METRICS figures (d1Metrics, registered after this, swaps c.env for a metered copy).
  const env = c.env;
  await next();
  if (c.req.method === "GET" || c.req.method === "HEAD" || c.res.status >= 400) return;
  requestOutboxFlush(env, (promise) => c.executionCtx.waitUntil(promise));
};
