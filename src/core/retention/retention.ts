import { and, eq, inArray, sql, type SQL } from "drizzle-orm";
import type { Db } from "../../db/client";
import { ingests, testRuns } from "../../db/schema";
import { ingestObjectPrefix } from "../ingest/source";
import { purgeRun } from "../runs/runs";
import { deleteR2Prefix } from "../storage/r2";

/** What a project without a settings row keeps (the column's default). */
export const DEFAULT_RETENTION_DAYS = 90;

/**
 * Per cron invocation: at most this many runs, and about this many D1 queries for them, so the
 * rest of housekeeping still fits in the platform's 1,000 queries per invocation.
 */
export const RETENTION_RUNS_PER_CALL = 50;
export const RETENTION_QUERIES_PER_CALL = 500;

/** purgeRun deletes results this many at a time (a query each); used only to estimate cost. */
const RESULTS_PER_DELETE = 5000;
/** Queries of one run besides its results: ingests read and delete, mark, suites, run row. */
const QUERIES_PER_RUN = 5;

export interface RetentionBudget {
  runs?: number;
  queries?: number;
}

export interface RetentionOutcome {
  /** Runs deleted by this call. */
  runsExpired: number;
  /** Whether expired runs were left for the next call. */
  more: boolean;
}

export interface ExpiredRun {
  id: string;
  organizationId: string;
  projectId: string;
  createdAt: string;
  totalTests: number;
}

/**
 * The oldest runs past their project's retention, across all projects, at most `limit`.
 * Projects are the outer loop (CROSS JOIN pins that order in SQLite) and each project reads only
 * its own oldest `limit` expired runs from test_runs_project_created_idx, so a call costs about
 * projects + projects × limit rows however large the backlog is; no query ever walks every run.
 * Runs already marked deleted are included: a retention delete cut short is finished here too.
 */
export function expiredRunsQuery(now: Date, limit: number): SQL {
  const cutoff = sql`strftime('%Y-%m-%dT%H:%M:%fZ', ${now.toISOString()}, '-' || coalesce(s.data_retention_days, ${DEFAULT_RETENTION_DAYS}) || ' days')`;
  return sql`SELECT r.id AS id, r.organization_id AS organizationId, r.project_id AS projectId,
      r.created_at AS createdAt, r.total_tests AS totalTests
    FROM projects p
    LEFT JOIN project_settings s ON s.project_id = p.id
    CROSS JOIN test_runs r
    WHERE r.number IN (
        SELECT e.number FROM test_runs e
        WHERE e.project_id = p.id AND e.created_at < ${cutoff}
        ORDER BY e.created_at LIMIT ${limit})
    ORDER BY r.created_at, r.number
    LIMIT ${limit}`;
}

function estimatedQueries(run: ExpiredRun): number {
  return QUERIES_PER_RUN + Math.ceil(run.totalTests / RESULTS_PER_DELETE);
}

/**
 * Deletes runs older than their project's `data_retention_days` (by created_at), oldest first,
 * with everything they own: results with their stored output, suites, shard parts, and the
 * finished ingests that filled them. Each run goes the way deleteRun takes it (marked deleted,
 * then purged), so a call cut short is finished by the next one or by purgeDeletedRuns, and
 * calling again is harmless. The events outbox and webhook deliveries have their own lifetimes
 * and stay.
 */
export async function applyRetention(db: Db, bucket: R2Bucket, now: Date, budget: RetentionBudget = {}): Promise<RetentionOutcome> {
  const maxRuns = budget.runs ?? RETENTION_RUNS_PER_CALL;
  const maxQueries = budget.queries ?? RETENTION_QUERIES_PER_CALL;
  if (maxRuns <= 0) return { runsExpired: 0, more: false };
  // One more than allowed, to tell whether more are due without a count over the backlog.
  const found = await db.all<ExpiredRun>(expiredRunsQuery(now, maxRuns + 1));

  const due: ExpiredRun[] = [];
  let queries = 1;
  for (const run of found.slice(0, maxRuns)) {
    const cost = estimatedQueries(run);
    // The first run always goes, however large, or a huge run would block every later one.
    if (due.length > 0 && queries + cost > maxQueries) break;
    due.push(run);
    queries += cost;
  }

  let runsExpired = 0;
  for (const run of due) {
    if (await expireRun(db, bucket, run, now)) runsExpired++;
  }
  return { runsExpired, more: found.length > due.length };
}

/** Deletes one expired run; false when it was gone already (a user's delete finished first). */
async function expireRun(db: Db, bucket: R2Bucket, run: ExpiredRun, now: Date): Promise<boolean> {
  // Ingests first: once the run is marked deleted, purgeDeletedRuns may finish it before the
  // next call here, and nothing would lead back to its ingests any more.
  await forgetFinishedIngests(db, bucket, run);
  const marked = await db
    .update(testRuns)
    .set({ deletedAt: sql`coalesce(${testRuns.deletedAt}, ${now.toISOString()})`, shardKey: null })
    .where(and(eq(testRuns.id, run.id), eq(testRuns.projectId, run.projectId), eq(testRuns.organizationId, run.organizationId)))
    .returning({ id: testRuns.id })
    .get();
  if (!marked) return false;
  await purgeRun(db, bucket, { id: run.id, projectId: run.projectId });
  return true;
}

/** Ids per delete statement, well under D1's 100 bound parameters with the other conditions. */
const IDS_PER_STATEMENT = 80;

/**
 * The finished ingests of an expired run: their sources in R2, then their rows. Sources go
 * first, so a call cut short leaves rows that lead to them, never objects nothing names.
 * Ingests still queued or processing are left to finish (or fail) on their own.
 */
async function forgetFinishedIngests(db: Db, bucket: R2Bucket, run: ExpiredRun): Promise<void> {
  const ofRun = and(
    eq(ingests.organizationId, run.organizationId),
    eq(ingests.projectId, run.projectId),
    eq(ingests.runId, run.id),
    inArray(ingests.status, ["done", "failed"]),
  );
  const finished = await db.select({ id: ingests.id }).from(ingests).where(ofRun);
  for (const ingest of finished) await deleteR2Prefix(bucket, ingestObjectPrefix(run.projectId, ingest.id));
  for (let i = 0; i < finished.length; i += IDS_PER_STATEMENT) {
    const ids = finished.slice(i, i + IDS_PER_STATEMENT).map((f) => f.id);
    await db.delete(ingests).where(and(ofRun, inArray(ingests.id, ids)));
  }
}
