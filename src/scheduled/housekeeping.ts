import { purgeExpiredIdempotencyRecords } from "../core/idempotency/idempotency";
import { sweepIngests } from "../core/ingest/ingests";
import { purgeDeletedRuns } from "../core/runs/runs";
import { applyRetention } from "../core/retention/retention";
import { flushOutbox, purgeOldDeliveries } from "../core/webhooks/delivery";
import { createDb } from "../db/client";
import type { Env } from "../env";

/**
 * The cron's work: forget idempotency records past their 24 hours; finish run deletes cut short;
 * abandon expired uploads, forget old ingests, and re-send ingests whose messages ran out; send
 * events the outbox still holds (a failed send after their write) and forget old deliveries;
 * delete runs older than their project's retention, a bounded number per run of the cron.
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
  retention: Awaited<ReturnType<typeof applyRetention>>;
}> {
  const db = createDb(env.DB);
  const idempotencyRecordsPurged = await purgeExpiredIdempotencyRecords(db, now);
  const deletedRunsPurged = await purgeDeletedRuns(db, env.ARTIFACTS);
  const ingests = await sweepIngests(db, env, now);
  const eventsSent = await flushOutbox(env);
  const deliveriesPurged = await purgeOldDeliveries(env, now);
  // Last: the heaviest part, and an error in it must not keep the outbox from being flushed.
  const retention = await applyRetention(db, env.ARTIFACTS, now);
  if (retention.more) {
    console.log(JSON.stringify({ level: "info", note: "retention backlog: more expired runs are due", runs_expired: retention.runsExpired }));
  }
  return { idempotencyRecordsPurged, deletedRunsPurged, ingests, eventsSent, deliveriesPurged, retention };
}
