/**
 * R2 layout: everything a run owns lives under `projects/<project>/runs/<run>/`, so deleting a
 * run (or a project) deletes one prefix.
 */
export function projectObjectPrefix(projectId: string): string {
  return `projects/${projectId}/`;
}

export function runObjectPrefix(projectId: string, runId: string): string {
  return `${projectObjectPrefix(projectId)}runs/${runId}/`;
}

/**
 * An artifact's object: under its run, so it goes with the run's prefix; made of ids only, never
 * of the client's file name.
 */
export function artifactObjectKey(projectId: string, runId: string, artifactId: string): string {
  return `${runObjectPrefix(projectId, runId)}artifacts/${artifactId}`;
}

/** Uploads whose target was not known yet while their bytes arrived; the cron deletes leftovers. */
export const STAGING_PREFIX = "staging/";

export function stagingObjectKey(organizationId: string, artifactId: string): string {
  return `${STAGING_PREFIX}${organizationId}/${artifactId}`;
}

/** Deletes every object under a prefix, a listing page (up to 1,000 keys) at a time. */
export async function deleteR2Prefix(bucket: R2Bucket, prefix: string): Promise<number> {
  let deleted = 0;
  let cursor: string | undefined;
  do {
    const page = await bucket.list({ prefix, cursor, limit: 1000 });
    const keys = page.objects.map((o) => o.key);
    if (keys.length > 0) await bucket.delete(keys);
    deleted += keys.length;
    cursor = page.truncated ? page.cursor : undefined;
  } while (cursor);
  return deleted;
}
