import { and, eq, sql } from "drizzle-orm";
import type { Db } from "../../db/client";
import { artifacts } from "../../db/schema";

// Removal of what uploads leave behind, kept apart from the rest of artifacts/ so that runs.ts
// (which calls abortRunUploads) and the cron import nothing that imports runs.ts back.

/** Cron: aborts uploads past their expiry, a bounded number per run. */
export async function expireArtifactUploads(db: Db, bucket: R2Bucket, now: Date, max = 100): Promise<number> {
  const rows = await db
    .select({ id: artifacts.id, objectKey: artifacts.objectKey, uploadId: artifacts.uploadId })
    .from(artifacts)
    .where(and(eq(artifacts.status, "uploading"), sql`${artifacts.expiresAt} <= ${now.toISOString()}`))
    .limit(max);
  for (const row of rows) {
    if (row.uploadId) await bucket.resumeMultipartUpload(row.objectKey, row.uploadId).abort().catch(() => undefined);
    await db.delete(artifacts).where(and(eq(artifacts.id, row.id), eq(artifacts.status, "uploading")));
  }
  return rows.length;
}

/** Aborts the open uploads of a run about to be purged (their rows go with the run). */
export async function abortRunUploads(db: Db, bucket: R2Bucket, runId: string): Promise<void> {
  const rows = await db
    .select({ objectKey: artifacts.objectKey, uploadId: artifacts.uploadId })
    .from(artifacts)
    .where(and(eq(artifacts.runId, runId), eq(artifacts.status, "uploading")));
  for (const row of rows) if (row.uploadId) await bucket.resumeMultipartUpload(row.objectKey, row.uploadId).abort().catch(() => undefined);
}

/** Cron: deletes staged uploads older than an hour (their request failed before moving them). */
export async function purgeStaging(bucket: R2Bucket, now: Date, prefix: string): Promise<number> {
  const cutoff = now.getTime() - 60 * 60 * 1000;
  let deleted = 0;
  let cursor: string | undefined;
  do {
    const page = await bucket.list({ prefix, cursor, limit: 1000 });
    const old = page.objects.filter((o) => o.uploaded.getTime() < cutoff).map((o) => o.key);
    if (old.length > 0) await bucket.delete(old);
    deleted += old.length;
    cursor = page.truncated ? page.cursor : undefined;
  } while (cursor);
  return deleted;
}
