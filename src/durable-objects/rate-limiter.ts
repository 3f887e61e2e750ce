import { DurableObject } from "cloudflare:workers";
import type { Env } from "../env";

export interface RateLimitDecision {
  allowed: boolean;
  limit: number;
  /** Requests left in the window after this one. */
  remaining: number;
  /** Seconds until the window ends and the count starts over. */
  resetSeconds: number;
}

/**
 * Fixed-window counters for one API key (or one client address), one row per endpoint group.
 * An instance handles one call at a time, so concurrent requests can never pass the limit; the
 * counts live in the object's SQLite storage, so an eviction mid-window neither resets them nor
 * blocks anything. A refused request is not counted, so a client that backs off is not punished
 * for the requests it was refused.
 */
export class RateLimiter extends DurableObject<Env> {
  private readonly sql: SqlStorage;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    this.sql.exec(`CREATE TABLE IF NOT EXISTS windows (
      grp TEXT PRIMARY KEY,
      window_start INTEGER NOT NULL,
      count INTEGER NOT NULL
    )`);
  }

  /** Counts one request of `group` against `limit` per `windowSeconds`. */
  async hit(group: string, limit: number, windowSeconds: number, nowMs: number = Date.now()): Promise<RateLimitDecision> {
    const windowMs = windowSeconds * 1000;
    const windowStart = Math.floor(nowMs / windowMs) * windowMs;
    const row = this.sql.exec<{ window_start: number; count: number }>("SELECT window_start, count FROM windows WHERE grp = ?", group).toArray()[0];
    const used = row && row.window_start === windowStart ? row.count : 0;
    const resetSeconds = Math.max(1, Math.ceil((windowStart + windowMs - nowMs) / 1000));
    if (used >= limit) return { allowed: false, limit, remaining: 0, resetSeconds };
    this.sql.exec(
      "INSERT INTO windows (grp, window_start, count) VALUES (?, ?, ?) ON CONFLICT (grp) DO UPDATE SET window_start = excluded.window_start, count = excluded.count",
      group,
      windowStart,
      used + 1,
    );
    return { allowed: true, limit, remaining: limit - used - 1, resetSeconds };
  }

  /** Requests counted in the group's current window (for tests and operators). */
  async used(group: string, windowSeconds: number, nowMs: number = Date.now()): Promise<number> {
    const windowStart = Math.floor(nowMs / (windowSeconds * 1000)) * windowSeconds * 1000;
    const row = this.sql.exec<{ window_start: number; count: number }>("SELECT window_start, count FROM windows WHERE grp = ?", group).toArray()[0];
    return row && row.window_start === windowStart ? row.count : 0;
  }
}
