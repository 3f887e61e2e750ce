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

/** What take() handed out: `granted` requests of the window starting at `windowStart` (ms). */
export interface RateLimitLease {
  granted: number;
  limit: number;
  /** Requests the window has left after this grant (other isolates' unspent leases not included). */
  remaining: number;
  resetSeconds: number;
  windowStart: number;
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
    const { granted, remaining, resetSeconds } = this.grant(group, limit, windowSeconds, 1, nowMs);
    return { allowed: granted > 0, limit, remaining, resetSeconds };
  }

  /**
   * Hands out up to `want` requests of the current window at once (a lease the calling isolate
   * spends without asking again), never more than the window has left; 0 when it has none.
   * Granted requests count as made, so leases never let more through than the limit.
   */
  async take(group: string, limit: number, windowSeconds: number, want: number, nowMs: number = Date.now()): Promise<RateLimitLease> {
    return this.grant(group, limit, windowSeconds, want, nowMs);
  }

  private grant(group: string, limit: number, windowSeconds: number, want: number, nowMs: number): RateLimitLease {
    const windowMs = windowSeconds * 1000;
    const windowStart = Math.floor(nowMs / windowMs) * windowMs;
    const row = this.sql.exec<{ window_start: number; count: number }>("SELECT window_start, count FROM windows WHERE grp = ?", group).toArray()[0];
    const used = row && row.window_start === windowStart ? row.count : 0;
    const resetSeconds = Math.max(1, Math.ceil((windowStart + windowMs - nowMs) / 1000));
    const granted = Math.max(0, Math.min(Math.floor(want), limit - used));
    if (granted === 0) return { granted: 0, limit, remaining: 0, resetSeconds, windowStart };
    this.sql.exec(
      "INSERT INTO windows (grp, window_start, count) VALUES (?, ?, ?) ON CONFLICT (grp) DO UPDATE SET window_start = excluded.window_start, count = excluded.count",
      group,
      windowStart,
      used + granted,
    );
    return { granted, limit, remaining: limit - used - granted, resetSeconds, windowStart };
  }

  /** Requests counted in the group's current window (for tests and operators). */
  async used(group: string, windowSeconds: number, nowMs: number = Date.now()): Promise<number> {
    const windowStart = Math.floor(nowMs / (windowSeconds * 1000)) * windowSeconds * 1000;
    const row = this.sql.exec<{ window_start: number; count: number }>("SELECT window_start, count FROM windows WHERE grp = ?", group).toArray()[0];
    return row && row.window_start === windowStart ? row.count : 0;
  }
}
