import { purgeExpiredIdempotencyRecords } from "../core/idempotency/idempotency";
import { sweepIngests } from "../core/ingest/ingests";
import { purgeDeletedRuns } from "../core/runs/runs";
import { createDb } from "../db/client";
import type { Env } from "../env";

/**
 * The cron's work: forget idempotency records past their 24 hours; finish run deletes cut short;
 * abandon expired uploads, forget old ingests, and re-send ingests whose messages ran out.
 */
export async function runHousekeeping(
  env: Env,
  now: Date,
): Promise<{ idempotencyRecordsPurged: number; deletedRunsPurged: number; ingests: Awaited<ReturnType<typeof sweepIngests>> }> {
  const db = createDb(env.DB);
  const idempotencyRecordsPurged = await purgeExpiredIdempotencyRecords(db, now);
  const deletedRunsPurged = await purgeDeletedRuns(db, env.ARTIFACTS);
  const ingests = await sweepIngests(db, env, now);
  return { idempotencyRecordsPurged, deletedRunsPurged, ingests };
}
