import { purgeExpiredIdempotencyRecords } from "../core/idempotency/idempotency";
import { sweepIngests } from "../core/ingest/ingests";
import { purgeDeletedRuns } from "../core/runs/runs";
import { flushOutbox, purgeOldDeliveries } from "../core/webhooks/delivery";
import { createDb } from "../db/client";
import type { Env } from "../env";

/**
 * The cron's work: forget idempotency records past their 24 hours; finish run deletes cut short;
 * abandon expired uploads, forget old ingests, and re-send ingests whose messages ran out; send
 * events the outbox still holds (a failed send after their write) and forget old deliveries.
 */
export async function runHousekeeping(
  env: Env,
  now: Date,
): Promise<{
  idempotencyRecordsPurged: number;
  deletedRunsPurged: number;
  ingests: Awaited<ReturnType<typeof sweepIngests>>;
  eventsSent: number;
  deliveriesPurged: number;
}> {
  const db = createDb(env.DB);
  const idempotencyRecordsPurged = await purgeExpiredIdempotencyRecords(db, now);
  const deletedRunsPurged = await purgeDeletedRuns(db, env.ARTIFACTS);
  const ingests = await sweepIngests(db, env, now);
  const eventsSent = await flushOutbox(env);
  const deliveriesPurged = await purgeOldDeliveries(env, now);
  return { idempotencyRecordsPurged, deletedRunsPurged, ingests, eventsSent, deliveriesPurged };
}
