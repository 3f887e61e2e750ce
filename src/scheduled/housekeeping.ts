import { purgeExpiredIdempotencyRecords } from "../core/idempotency/idempotency";
import { purgeDeletedRuns } from "../core/runs/runs";
import { createDb } from "../db/client";
import type { Env } from "../env";

/** The cron's work: forget idempotency records past their 24 hours; finish run deletes cut short. */
export async function runHousekeeping(
  env: Env,
  now: Date,
): Promise<{ idempotencyRecordsPurged: number; deletedRunsPurged: number }> {
  const db = createDb(env.DB);
  const idempotencyRecordsPurged = await purgeExpiredIdempotencyRecords(db, now);
  const deletedRunsPurged = await purgeDeletedRuns(db, env.ARTIFACTS);
  return { idempotencyRecordsPurged, deletedRunsPurged };
}
