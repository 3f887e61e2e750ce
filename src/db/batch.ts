import { SQL } from "drizzle-orm";
import { SQLiteAsyncDialect } from "drizzle-orm/sqlite-core";
import type { Db } from "./client";

/** A statement for batchAll: raw SQL, or any drizzle query builder (insert, update, delete, select). */
export type Statement = SQL | { toSQL(): { sql: string; params: unknown[] } };

const dialect = new SQLiteAsyncDialect();

/**
 * Runs statements as one D1 batch (one transaction) and returns D1's raw results. drizzle's own
 * batch() cannot carry raw SQL with bound parameters (db.run(sql`…`) has no prepared statement to
 * bind), and the writes here are mostly raw INSERT … SELECT FROM json_each, so the batch is built
 * on the D1 binding directly.
 */
export async function batchAll(db: Db, statements: Statement[]): Promise<D1Result[]> {
  if (statements.length === 0) return [];
  const d1 = db.$client;
  const prepared = statements.map((statement) => {
    const query = statement instanceof SQL ? dialect.sqlToQuery(statement) : statement.toSQL();
    return d1.prepare(query.sql).bind(...query.params);
  });
  return d1.batch(prepared);
}

/**
 * The rows of a drizzle select that ran inside a batchAll batch, mapped as drizzle maps them when
 * it runs the select itself (column types, JSON, booleans, nested objects): so reads can ride in
 * the same round trip as the writes before them, and see those writes. Uses drizzle's own batch
 * mapping (`_prepare().mapResult(result, true)`, what its db.batch() does), pinned with drizzle's
 * version in package.json.
 */
export function batchRows<Q extends PromiseLike<unknown>>(query: Q, result: D1Result | undefined): Awaited<Q> {
  if (!result) throw new Error("batchRows: the batch has no result for this query");
  const prepared = (query as unknown as { _prepare(): { mapResult(result: D1Result, isFromBatch: boolean): unknown } })._prepare();
  return prepared.mapResult(result, true) as Awaited<Q>;
}
