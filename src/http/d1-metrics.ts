import type { MiddlewareHandler } from "hono";
import type { AppEnv } from "./app-env";
import { editResponseHeaders } from "./response-headers";

interface Tally {
  calls: number;
  rowsRead: number;
  rowsWritten: number;
  /** Calls whose answer carries no meta (first(), raw(): drizzle's get() and selects outside a batch). */
  unmetered: number;
}

const TARGET = Symbol("d1-metrics-target");

function tallied(tally: Tally, meta: { rows_read?: number; rows_written?: number } | undefined): void {
  tally.rowsRead += meta?.rows_read ?? 0;
  tally.rowsWritten += meta?.rows_written ?? 0;
}

function meteredStatement(statement: D1PreparedStatement, tally: Tally): D1PreparedStatement {
  return new Proxy(statement, {
    get(target, prop) {
      if (prop === TARGET) return target;
      if (prop === "bind") return (...args: unknown[]) => meteredStatement(target.bind(...args), tally);
      if (prop === "all" || prop === "run") {
        return async () => {
          tally.calls++;
          const result = await (target[prop] as () => Promise<D1Result>)();
          tallied(tally, result.meta);
          return result;
        };
      }
      if (prop === "first" || prop === "raw") {
        return (...args: unknown[]) => {
          tally.calls++;
          tally.unmetered++;
          return (target[prop] as (...a: unknown[]) => unknown)(...args);
        };
      }
      const value = Reflect.get(target, prop, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

/** The D1 binding, adding up the calls and D1's own rows read and written of what goes through it. */
export function meteredD1(d1: D1Database, tally: Tally): D1Database {
  return new Proxy(d1, {
    get(target, prop) {
      if (prop === "prepare") return (query: string) => meteredStatement(target.prepare(query), tally);
      if (prop === "batch") {
        return async (statements: D1PreparedStatement[]) => {
          tally.calls++;
          const results = await target.batch(statements.map((s) => ((s as unknown as Record<symbol, D1PreparedStatement>)[TARGET] ?? s)));
          for (const result of results) tallied(tally, result.meta);
          return results;
        };
      }
      const value = Reflect.get(target, prop, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

/**
 * With D1_METRICS=on (benchmarks, tests, an operator chasing a slow route), each response says what
 * it cost in D1: `Server-Timing: d1;desc="calls=3 rows_read=57 rows_written=0 unmetered=1"`, where
 * rows are D1's own meta.rows_read / rows_written and `unmetered` counts calls D1 answers without
 * meta (first() and raw(), which drizzle uses for single-row lookups and selects outside a batch).
 */
export const d1Metrics: MiddlewareHandler<AppEnv> = async (c, next) => {
  if (c.env.D1_METRICS !== "on") return next();
  const tally: Tally = { calls: 0, rowsRead: 0, rowsWritten: 0, unmetered: 0 };
  // A copy: the env object is shared by the isolate's concurrent requests.
  c.env = { ...c.env, DB: meteredD1(c.env.DB, tally) };
  await next();
  const value = `d1;desc="calls=${tally.calls} rows_read=${tally.rowsRead} rows_written=${tally.rowsWritten} unmetered=${tally.unmetered}"`;
  editResponseHeaders(c, (headers) => headers.append("Server-Timing", value));
};
