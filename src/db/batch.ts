import type { BatchItem } from "drizzle-orm/batch";
import type { Db } from "./client";

type Item = BatchItem<"sqlite">;

/** db.batch for a list built at run time (drizzle's signature wants a non-empty tuple). */
export async function batchAll(db: Db, items: Item[]): Promise<unknown[]> {
  if (items.length === 0) return [];
  return db.batch(items as [Item, ...Item[]]);
}
