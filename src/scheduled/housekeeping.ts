import { purgeExpiredIdempotencyRecords } from "../core/idempotency/idempotency";
import { createDb } from "../db/client";
import type { Env } from "../env";

/** The cron's work: today, forgetting idempotency records past their 24 hours. */
export async function runHousekeeping(env: Env, now: Date): Promise<{ idempotencyRecordsPurged: number }> {
  const idempotencyRecordsPurged = await purgeExpiredIdempotencyRecords(createDb(env.DB), now);
  return { idempotencyRecordsPurged };
}
