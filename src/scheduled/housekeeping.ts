import { type ResealOutcome, resealStoredSecrets } from "../core/secrets/reseal";
import { log } from "../lib/log";
import { purgeExpiredIdempotencyRecords } from "../core/idempotency/idempotency";
import { sweepIngests } from "../core/ingest/ingests";
import { purgeDeletedRuns } from "../core/runs/runs";
import { applyRetention } from "../core/retention/retention";
import { flushOutbox, purgeOldDeliveries } from "../core/webhooks/delivery";
import { createDb } from "../db/client";
import { recoverIdleQuarantines, refreshStale } from "../core/flakiness/refresh";
import { expireArtifactUploads, purgeStaging } from "../core/artifacts/cleanup";
import { STAGING_PREFIX } from "../core/storage/r2";
import { sweepLapsedJobs } from "../core/jobs/runner";

/** Stale flakiness scores one cron refreshes (the queue takes the bulk; this is the safety net). */
const STALE_PER_CRON = 5000;
import type { Env } from "../env";

/**
 * The cron's work: forget idempotency records past their 24 hours; finish run deletes cut short;
 * abandon expired uploads, forget old ingests, and re-send ingests whose messages ran out; send
 * events the outbox still holds (a failed send after their write) and forget old deliveries;
 * delete runs older than their project's retention, a bounded number per run of the cron; refresh
 * flakiness scores marked out of date and end automatic quarantines that have recovered; abort
 * artifact uploads past their day and delete staged files a failed upload left behind; fail jobs
 * whose last lease lapsed.
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
  flakiness: { refreshed: number; more: boolean; recovered: number };
  artifacts: { uploadsExpired: number; stagedPurged: number };
  jobsFailed: number;
  secrets: ResealOutcome;
}> {
  const db = createDb(env.DB);
  const idempotencyRecordsPurged = await purgeExpiredIdempotencyRecords(db, now);
  const deletedRunsPurged = await purgeDeletedRuns(db, env.ARTIFACTS);
  const ingests = await sweepIngests(db, env, now);
  const eventsSent = await flushOutbox(env);
  const jobsFailed = await sweepLapsedJobs(db, now);
  const artifacts = { uploadsExpired: await expireArtifactUploads(db, env.ARTIFACTS, now), stagedPurged: await purgeStaging(env.ARTIFACTS, now, STAGING_PREFIX) };
  const deliveriesPurged = await purgeOldDeliveries(env, now);
  // Last: the heaviest part, and an error in it must not keep the outbox from being flushed.
  const retention = await applyRetention(db, env.ARTIFACTS, now);
  if (retention.more) {
    log.info("retention backlog: more expired runs are due", { runs_expired: retention.runsExpired });
  }
  // After retention, so the scores its deletions marked are refreshed in the same round; then
  // automatic quarantines of tests that stopped running end once their quiet days have passed.
  const at = now.toISOString();
  const refreshed = await refreshStale(db, at, { max: STALE_PER_CRON });
  const recovered = await recoverIdleQuarantines(db, at);
  if (refreshed.refreshed > 0 || recovered > 0) await flushOutbox(env);
  // During a URL_SIGNING_SECRET rotation: stored secrets sealed with the previous one are sealed
  // again with the new one; the log says when none is left (then the previous can go).
  const secrets = await resealStoredSecrets(db, env);
  if (env.URL_SIGNING_SECRET_PREVIOUS) log.info("secret rotation: re-sealed stored secrets", { ...secrets, done: secrets.resealed === 0 });
  return { idempotencyRecordsPurged, deletedRunsPurged, ingests, eventsSent, deliveriesPurged, retention, flakiness: { ...refreshed, recovered }, artifacts, jobsFailed, secrets };
}
