import { drizzle, type DrizzleD1Database } from "drizzle-orm/d1";
import * as schema from "./schema";

export type Db = DrizzleD1Database<typeof schema> & { $client: D1Database };

/**
 * One drizzle instance per D1 binding object, kept for the isolate's life: drizzle(d1, { schema })
 * walks every table of the schema to build its relational config each time it is called, and a
 * request called it several times (authentication, the handler, background work). The instance
 * holds nothing per request; a metered binding (D1_METRICS) is another object, so it gets its own.
 */
const instances = new WeakMap<D1Database, Db>();

export function createDb(d1: D1Database): Db {
  let db = instances.get(d1);
  if (!db) {
    db = drizzle(d1, { schema });
    instances.set(d1, db);
  }
  return db;
}
