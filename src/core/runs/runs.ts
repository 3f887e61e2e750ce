import { and, desc, eq, isNull, sql, type SQL } from "drizzle-orm";
import { batchAll, batchRows } from "../../db/batch";
import { withoutUndefined } from "../../lib/objects";
import { testRuns, type ReportedCounts, type TestRunRow, type TestRunShardRow } from "../../db/schema";
import { newId } from "../../lib/ids";
import { type CoreContext, type Principal, nowIso, requireScope } from "../context";
import { Invalid, NotFound } from "../errors";
import { RUN_EVENT_TYPES, insertRunEvent } from "../events/outbox";
import type { PageRequest, Paged } from "../pagination";
import { assertProjectVisible, projectVisibleGuard, runGuarded } from "../projects/projects";
import { markStale, refreshStaleSoon } from "../flakiness/refresh";
import { OUTAGE_FAILED_SHARE, OUTAGE_MIN_TESTS } from "../flakiness/flakiness";
import { abortRunUploads } from "../artifacts/cleanup";
import { deleteR2Prefix, runObjectPrefix } from "../storage/r2";

export const RUN_STATUSES = ["queued", "running", "passed", "failed", "cancelled"] as const;
export type RunStatus = (typeof RUN_STATUSES)[number];
export const TERMINAL_STATUSES: readonly RunStatus[] = ["passed", "failed", "cancelled"];

/** CI metadata of reference 003, in the core's camelCase. */
export interface RunMetadata {
  branch?: string | null;
  commitSha?: string | null;
  commitMessage?: string | null;
  commitAuthor?: string | null;
  ciProvider?: string | null;
  ciBuildId?: string | null;
  ciBuildUrl?: string | null;
  playwrightVersion?: string | null;
  workers?: number | null;
  shardCurrent?: number | null;
  shardTotal?: number | null;
  browser?: string | null;
  os?: string | null;
  viewport?: string | null;
  hostname?: string | null;
  runTitle?: string | null;
  tags?: string[];
  grepPatterns?: string[];
}

export interface CreateRunInput extends RunMetadata {
  /** Optional for a project-restricted key: its project is implied. */
  projectId?: string;
  status?: RunStatus;
  buildId?: string | null;
  planId?: string | null;
}

export interface RunCounts {
  totalTests: number;
  passedTests: number;
  failedTests: number;
  skippedTests: number;
  flakyTests: number;
  /** Percentage of passed tests among all, two decimals (reference 003: 138 of 142 = 97.18). */
  passRate: number;
  /** Milliseconds. */
  duration: number;
}

export interface ShardPart {
  shardCurrent: number;
  status: string;
  hostname: string | null;
  createdAt: string;
  updatedAt: string;
}

export interface Run extends Required<RunMetadata> {
  id: string;
  number: number;
  organizationId: string;
  projectId: string;
  buildId: string | null;
  planId: string | null;
  status: RunStatus;
  /** Reported counts where a client set them by hand, otherwise the derived ones. */
  counts: RunCounts;
  /** Always computed from the run's results. */
  derivedCounts: RunCounts;
  reportedCounts: ReportedCounts | null;
  /** Each shard's registration, for a sharded run; empty otherwise. */
  shards: ShardPart[];
  /** Failures of tests that were quarantined when the run completed: they did not fail it. */
  quarantinedFailures: number;
  /** Why the status differs from what the client reported, or what it ignored; null otherwise. */
  statusReason: string | null;
  submittedAt: string | null;
  completedAt: string | null;
  createdAt: string;
  updatedAt: string;
}

export function passRate(passed: number, total: number): number {
  return total === 0 ? 0 : Math.round((passed / total) * 10_000) / 100;
}

function derivedCountsOf(row: TestRunRow): RunCounts {
  return {
    totalTests: row.totalTests,
    passedTests: row.passedTests,
    failedTests: row.failedTests,
    skippedTests: row.skippedTests,
    flakyTests: row.flakyTests,
    passRate: passRate(row.passedTests, row.totalTests),
    duration: row.durationMs,
  };
}

export function toRun(row: TestRunRow, shards: TestRunShardRow[] = []): Run {
  const derived = derivedCountsOf(row);
  const reported = row.reportedCounts ?? null;
  const headline = { ...derived, ...(reported ?? {}) };
  headline.passRate = passRate(headline.passedTests, headline.totalTests);
  return {
    id: row.id,
    number: row.number,
    organizationId: row.organizationId,
    projectId: row.projectId,
    buildId: row.buildId,
    planId: row.planId,
    status: row.status as RunStatus,
    branch: row.branch,
    commitSha: row.commitSha,
    commitMessage: row.commitMessage,
    commitAuthor: row.commitAuthor,
    ciProvider: row.ciProvider,
    ciBuildId: row.ciBuildId,
    ciBuildUrl: row.ciBuildUrl,
    playwrightVersion: row.playwrightVersion,
    workers: row.workers,
    shardCurrent: row.shardCurrent,
    shardTotal: row.shardTotal,
    browser: row.browser,
    os: row.os,
    viewport: row.viewport,
    hostname: row.hostname,
    runTitle: row.runTitle,
    tags: row.tags,
    grepPatterns: row.grepPatterns,
    counts: headline,
    derivedCounts: derived,
    reportedCounts: reported,
    shards: shards
      .sort((a, b) => a.shardCurrent - b.shardCurrent)
      .map((s) => ({ shardCurrent: s.shardCurrent, status: s.status, hostname: s.hostname, createdAt: s.createdAt, updatedAt: s.updatedAt })),
    quarantinedFailures: row.quarantinedFailures,
    statusReason: row.statusReason,
    submittedAt: row.submittedAt,
    completedAt: row.completedAt,
    createdAt: row.createdAt,
    updatedAt: row.updatedAt,
  };
}

/** The SQL condition limiting runs to what the principal may see; runs being deleted are gone. */
export function visibleRuns(principal: Principal): SQL {
  const conditions = [eq(testRuns.organizationId, principal.organizationId), isNull(testRuns.deletedAt)];
  if (principal.projectId) conditions.push(eq(testRuns.projectId, principal.projectId));
  return and(...conditions)!;
}

/** The project a new row goes to: the key's own project when restricted, else the one named. */
export async function resolveProject(ctx: CoreContext, projectId: string | undefined): Promise<string> {
  if (ctx.principal.projectId) {
    if (projectId !== undefined && projectId !== ctx.principal.projectId) throw new NotFound("Project", { id: projectId });
    return ctx.principal.projectId;
  }
  if (projectId === undefined) throw Invalid.field("project_id", "required", "is required");
  await assertProjectVisible(ctx, projectId);
  return projectId;
}

/** Shards of one CI build share a run: same project, ciBuildId and run title, shardTotal > 1. */
export function shardKeyOf(input: RunMetadata): string | null {
  if (!input.ciBuildId || !input.shardTotal || input.shardTotal <= 1) return null;
  return `${input.ciBuildId}\u001f${input.runTitle ?? ""}`;
}

const METADATA_COLUMNS = [
  "branch", "commitSha", "commitMessage", "commitAuthor", "ciProvider", "ciBuildId", "ciBuildUrl",
  "playwrightVersion", "workers", "browser", "os", "viewport", "hostname", "runTitle",
] as const;

/**
 * Fills in the run metadata a run does not have yet and never overwrites any: what a report
 * says about its run only at its end (a large report is parsed after its run was opened).
 */
export function fillRunMetadata(db: CoreContext["db"], runId: string, metadata: RunMetadata) {
  const set: Record<string, SQL> = {};
  for (const name of METADATA_COLUMNS) {
    const value = metadata[name];
    if (value !== undefined && value !== null) set[name] = sql`coalesce(${testRuns[name]}, ${value})`;
  }
  if (Object.keys(set).length === 0) return null;
  return db.update(testRuns).set(set).where(eq(testRuns.id, runId));
}

function validateShard(input: RunMetadata): void {
  if (input.shardCurrent != null && input.shardTotal != null && input.shardCurrent > input.shardTotal) {
    throw Invalid.field("shard_current", "invalid_value", "must not be greater than shard_total");
  }
}

/**
 * The merged status of a sharded run from its shard parts: running until every shard has
 * reported a terminal status, then failed if any failed, cancelled if any was cancelled, else
 * passed. Evaluated inside the batch, so concurrent shards cannot both miss each other.
 */
function mergedShardStatus(runAlias: string): SQL {
  const run = sql.raw(runAlias);
  const parts = sql`FROM test_run_shards s WHERE s.run_id = ${run}.id`;
  return sql`(CASE
    WHEN NOT EXISTS (SELECT 1 ${parts} AND s.status <> 'queued') THEN 'queued'
    WHEN (SELECT count(*) ${parts} AND s.status IN ('passed','failed','cancelled')) < ${run}.shard_total THEN 'running'
    WHEN EXISTS (SELECT 1 ${parts} AND s.status = 'failed') THEN 'failed'
    WHEN EXISTS (SELECT 1 ${parts} AND s.status = 'cancelled') THEN 'cancelled'
    ELSE 'passed' END)`;
}

/**
 * Statements that set a run's status (a constant, or the merged shard status) and, when that
 * moves the run into a terminal status, emit the completion events in the same batch.
 */
function statusChange(runId: string, status: RunStatus | "merged", now: string, visible: SQL = sql`true`): SQL[] {
  const asked = status === "merged" ? mergedShardStatus("test_runs") : sql`${status}`;
  const token = newId("evt");
  const terminal = sql`('passed','failed','cancelled')`;
  // Quarantine is enforced here, whatever the client or the report said: a run that failed only
  // through failures of quarantined tests passes, and status_reason says so.
  const onlyQuarantined = sql`(${asked} = 'failed' AND failed_tests > 0 AND quarantined_failures >= failed_tests)`;
  const newStatus = sql`(CASE WHEN ${onlyQuarantined} THEN 'passed' ELSE ${asked} END)`;
  const countQuarantined = sql`UPDATE test_runs SET quarantined_failures = CASE WHEN ${asked} IN ${terminal} THEN (
        SELECT count(*) FROM results x JOIN test_cases tc ON tc.id = x.test_case_id
        WHERE x.run_id = test_runs.id AND x.status = 'failed' AND tc.is_quarantined = 1)
      ELSE 0 END
    WHERE id = ${runId} AND ${visible}`;
  const update = sql`UPDATE test_runs SET
      completion_token = CASE WHEN ${newStatus} IN ${terminal} AND completed_at IS NULL THEN ${token} ELSE completion_token END,
      completed_at = CASE WHEN ${newStatus} IN ${terminal} THEN coalesce(completed_at, ${now}) ELSE NULL END,
      status_reason = CASE
        WHEN ${onlyQuarantined} THEN 'reported failed, but every failure (' || failed_tests || ') is of a quarantined test: the run passes'
        WHEN ${asked} IN ${terminal} AND quarantined_failures > 0
          THEN quarantined_failures || ' of ' || failed_tests || ' failures are of quarantined tests and were ignored'
        ELSE NULL END,
      status = ${newStatus}, updated_at = ${now}
    WHERE id = ${runId} AND ${visible}`;
  const completedHere = sql`r.id = ${runId} AND r.completion_token = ${token}`;
  return [
    countQuarantined,
    update,
    insertRunEvent(RUN_EVENT_TYPES.completed, completedHere, now),
    insertRunEvent(RUN_EVENT_TYPES.reportingCompleted, completedHere, now),
    insertRunEvent(RUN_EVENT_TYPES.reportingFailed, sql`${completedHere} AND r.status = 'failed'`, now),
    // A run queued by a trigger is its job: completing the run ends the job.
    sql`UPDATE jobs SET status = CASE WHEN (SELECT status FROM test_runs WHERE id = ${runId}) = 'cancelled' THEN 'cancelled' ELSE 'done' END,
        lease_until = NULL, finished_at = ${now}, updated_at = ${now}
      WHERE run_id = ${runId} AND status IN ('queued', 'claimed') AND EXISTS (SELECT 1 FROM test_runs r WHERE ${completedHere})`,
    // A run that completes as an outage (by its final counts) has executions flakiness leaves
    // out: its test cases are scored again. Any other run was scored by its results writes; a
    // run that only looked like an outage part-way is put right by the next write or the cron.
    markStale(sql`SELECT x.test_case_id FROM results x
      WHERE x.run_id = ${runId} AND EXISTS (SELECT 1 FROM test_runs r WHERE ${completedHere}
        AND r.total_tests >= ${OUTAGE_MIN_TESTS} AND r.failed_tests > ${OUTAGE_FAILED_SHARE} * r.total_tests)`),
  ];
}

/**
 * The select that reads a run with its shard parts (as one JSON column), for a caller that
 * appends it to a batch of its own (so a write and the read of its outcome are one round trip),
 * and what turns the batch's answers into the run: `from` reads the last answer.
 */
export function runReads(ctx: CoreContext, where: SQL) {
  const query = ctx.db
    .select({
      run: testRuns,
      shards: sql<string>`(SELECT json_group_array(json_object('runId', s.run_id, 'shardCurrent', s.shard_current,
          'status', s.status, 'hostname', s.hostname, 'createdAt', s.created_at, 'updatedAt', s.updated_at))
        FROM (SELECT * FROM test_run_shards WHERE run_id = ${testRuns.id} ORDER BY shard_current) s)`,
    })
    .from(testRuns)
    .where(where)
    .limit(1);
  return {
    statements: [query] as const,
    /** The run from a batch whose last statement was `statements`, or null when none matched. */
    from(answers: (D1Result | undefined)[]): Run | null {
      const found = batchRows(query, answers[answers.length - 1])[0];
      return found ? toRun(found.run, JSON.parse(found.shards) as TestRunShardRow[]) : null;
    },
  };
}

async function readRun(ctx: CoreContext, where: SQL): Promise<Run | null> {
  const reads = runReads(ctx, where);
  return reads.from(await batchAll(ctx.db, [...reads.statements]));
}

/**
 * Creates a run, or, for a shard of a run that already exists (same project, ciBuildId and run
 * title, shardTotal > 1), registers the shard with that run and returns it. The upsert is one
 * statement on a unique index, so shards arriving concurrently, in any order or twice all land
 * on one run.
 */
export async function createRun(ctx: CoreContext, input: CreateRunInput): Promise<Run> {
  return (await openRun(ctx, input)).run;
}

/**
 * createRun, telling whether the run is new or is the run another shard of the same CI build
 * created first (then it is not this caller's to delete).
 */
export async function openRun(ctx: CoreContext, input: CreateRunInput): Promise<{ run: Run; created: boolean }> {
  requireScope(ctx.principal, "testruns:create");
  validateShard(input);
  // A key of one project creates in it; another key names a project, checked inside the write's
  // batch (projectVisibleGuard) rather than in a round trip of its own.
  if (!ctx.principal.projectId && input.projectId === undefined) throw Invalid.field("project_id", "required", "is required");
  const projectId = ctx.principal.projectId ? await resolveProject(ctx, input.projectId) : input.projectId!;
  const guard = ctx.principal.projectId ? [] : [projectVisibleGuard(ctx.principal, projectId)];
  const now = nowIso(ctx.clock);
  const id = newId("run");
  const shardKey = shardKeyOf(input);
  const status: RunStatus = input.status ?? "running";

  const values = {
    id,
    organizationId: ctx.principal.organizationId,
    projectId,
    buildId: input.buildId ?? null,
    planId: input.planId ?? null,
    status,
    shardKey,
    branch: input.branch ?? null,
    commitSha: input.commitSha ?? null,
    commitMessage: input.commitMessage ?? null,
    commitAuthor: input.commitAuthor ?? null,
    ciProvider: input.ciProvider ?? null,
    ciBuildId: input.ciBuildId ?? null,
    ciBuildUrl: input.ciBuildUrl ?? null,
    playwrightVersion: input.playwrightVersion ?? null,
    workers: input.workers ?? null,
    shardCurrent: input.shardCurrent ?? null,
    shardTotal: input.shardTotal ?? null,
    browser: input.browser ?? null,
    os: input.os ?? null,
    viewport: input.viewport ?? null,
    hostname: input.hostname ?? null,
    runTitle: input.runTitle ?? null,
    tags: input.tags ?? [],
    grepPatterns: input.grepPatterns ?? [],
    createdAt: now,
    updatedAt: now,
  };
  // A shard joining an existing run fills in metadata the first shard left empty, never overwrites.
  const fillIn = Object.fromEntries(
    METADATA_COLUMNS.map((name) => {
      const column = testRuns[name];
      return [name, sql`coalesce(${column}, excluded.${sql.raw(column.name)})`];
    }),
  );
  const insert = ctx.db
    .insert(testRuns)
    .values(values)
    .onConflictDoUpdate({ target: [testRuns.projectId, testRuns.shardKey], set: { ...fillIn, updatedAt: now } })
    // The new run's id, or the id of the run a shard joined.
    .returning({ id: testRuns.id });

  const statements: SQL[] = [];
  if (shardKey) {
    const shardCurrent = input.shardCurrent ?? 1;
    statements.push(
      sql`INSERT INTO test_run_shards (run_id, shard_current, status, hostname, created_at, updated_at)
        SELECT id, ${shardCurrent}, ${status}, ${input.hostname ?? null}, ${now}, ${now}
        FROM test_runs WHERE project_id = ${projectId} AND shard_key = ${shardKey}
        ON CONFLICT (run_id, shard_current) DO UPDATE SET status = excluded.status,
          hostname = coalesce(excluded.hostname, test_run_shards.hostname), updated_at = excluded.updated_at`,
    );
  }
  statements.push(insertRunEvent(RUN_EVENT_TYPES.created, sql`r.id = ${id}`, now));

  // Status is set after the shard part exists, so a sharded run's status is the merge of its parts.
  const settleStatus = shardKey || TERMINAL_STATUSES.includes(status);
  if (!settleStatus) {
    // The common case (a new run, not a shard, not created finished): the run is read back in
    // the batch that creates it, one round trip.
    const reads = runReads(ctx, and(eq(testRuns.id, id), visibleRuns(ctx.principal))!);
    const answers = await runGuarded(ctx, projectId, () => batchAll(ctx.db, [...guard, insert, ...statements, ...reads.statements]));
    const run = reads.from(answers);
    if (!run) throw new NotFound("Test run", { id });
    return { run, created: true };
  }
  const [inserted] = (await runGuarded(ctx, projectId, () => batchAll(ctx.db, [...guard, insert, ...statements]))).slice(guard.length);
  const runId = (inserted!.results[0] as { id: string }).id;
  await batchAll(ctx.db, statusChange(runId, shardKey ? "merged" : status, now));
  const run = await readRun(ctx, and(eq(testRuns.id, runId), visibleRuns(ctx.principal))!);
  if (!run) throw new NotFound("Test run", { id: runId });
  return { run, created: runId === id };
}

/**
 * The newest live run of a CI build (same project and ciBuildId, and the same run title when one
 * is given), so several reports of one build (one JUnit file per module, say) extend one run.
 */
export async function findRunOfBuild(ctx: CoreContext, projectId: string, ciBuildId: string, runTitle?: string): Promise<Run | null> {
  const row = await ctx.db
    .select({ id: testRuns.id })
    .from(testRuns)
    .where(
      and(
        visibleRuns(ctx.principal),
        eq(testRuns.projectId, projectId),
        eq(testRuns.ciBuildId, ciBuildId),
        runTitle === undefined ? undefined : eq(testRuns.runTitle, runTitle),
      ),
    )
    .orderBy(desc(testRuns.number))
    .limit(1)
    .get();
  return row ? readVisibleRun(ctx, row.id) : null;
}

export interface ListRunsInput {
  page: PageRequest;
  projectId?: string;
  status?: RunStatus;
  branch?: string;
  ciBuildId?: string;
}

export async function listRuns(ctx: CoreContext, input: ListRunsInput): Promise<Paged<Run>> {
  requireScope(ctx.principal, "testruns:read");
  const conditions = [visibleRuns(ctx.principal)];
  if (input.projectId !== undefined) {
    // A project the key cannot see is 404, as for every other project-scoped list, not an empty page.
    await assertProjectVisible(ctx, input.projectId);
    conditions.push(eq(testRuns.projectId, input.projectId));
  }
  if (input.status !== undefined) conditions.push(eq(testRuns.status, input.status));
  if (input.branch !== undefined) conditions.push(eq(testRuns.branch, input.branch));
  if (input.ciBuildId !== undefined) conditions.push(eq(testRuns.ciBuildId, input.ciBuildId));
  const where = and(...conditions)!;
  const [totalRows, rows] = await ctx.db.batch([
    ctx.db.select({ total: sql<number>`count(*)` }).from(testRuns).where(where),
    ctx.db
      .select()
      .from(testRuns)
      .where(where)
      .orderBy(desc(testRuns.createdAt), desc(testRuns.number))
      .limit(input.page.limit)
      .offset(input.page.offset),
  ]);
  return { items: rows.map((r) => toRun(r)), total: totalRows[0]?.total ?? 0, ...input.page };
}

/** A run the principal may see, without a scope check: for verbs that answer with the run. */
export function readVisibleRun(ctx: CoreContext, id: string): Promise<Run | null> {
  return readRun(ctx, and(eq(testRuns.id, id), visibleRuns(ctx.principal))!);
}

export async function getRun(ctx: CoreContext, id: string): Promise<Run> {
  requireScope(ctx.principal, "testruns:read");
  const run = await readVisibleRun(ctx, id);
  if (!run) throw new NotFound("Test run", { id });
  return run;
}

export interface UpdateRunInput extends Omit<RunMetadata, "ciBuildId" | "runTitle" | "shardTotal"> {
  status?: RunStatus;
  /** Reported counts: honoured in the headline numbers, kept beside the derived ones. */
  reported?: ReportedCounts;
}

export async function updateRun(ctx: CoreContext, id: string, input: UpdateRunInput): Promise<Run> {
  requireScope(ctx.principal, "testruns:create");
  // Only a shard's status needs the run read first (is it sharded? is the shard in range?).
  // Otherwise every statement carries the visibility condition and the run is read back in the
  // same batch: a run the key cannot see changes nothing and answers 404 from that read.
  const shardStatus = input.status !== undefined && input.shardCurrent != null;
  const current = shardStatus ? await getRun(ctx, id) : null;
  const now = nowIso(ctx.clock);
  const changes: Record<string, unknown> = { updatedAt: now };
  for (const name of METADATA_COLUMNS) {
    if (name === "ciBuildId" || name === "runTitle") continue;
    const value = input[name as keyof UpdateRunInput];
    if (value !== undefined) changes[name] = value;
  }
  if (input.tags !== undefined) changes.tags = input.tags;
  if (input.grepPatterns !== undefined) changes.grepPatterns = input.grepPatterns;
  // Counts the caller did not send are not reported: a PATCH of the status alone leaves none.
  const reported = withoutUndefined(input.reported ?? {});
  if (Object.keys(reported).length > 0) {
    if (reported.duration !== undefined) reported.duration = Math.round(reported.duration);
    changes.reportedCounts = sql`json_patch(coalesce(${testRuns.reportedCounts}, '{}'), ${JSON.stringify(reported)})`;
  }
  const where = and(eq(testRuns.id, id), visibleRuns(ctx.principal))!;
  const statements: SQL[] = [];
  const sharded = current !== null && current.shardTotal !== null && current.shardTotal > 1 && current.shards.length > 0;
  if (input.status !== undefined) {
    if (current !== null && sharded && input.shardCurrent != null) {
      if (input.shardCurrent > current.shardTotal!) {
        throw Invalid.field("shard_current", "invalid_value", "must not be greater than shard_total");
      }
      statements.push(
        sql`INSERT INTO test_run_shards (run_id, shard_current, status, hostname, created_at, updated_at)
          VALUES (${id}, ${input.shardCurrent}, ${input.status}, ${input.hostname ?? null}, ${now}, ${now})
          ON CONFLICT (run_id, shard_current) DO UPDATE SET status = excluded.status, updated_at = excluded.updated_at`,
      );
      statements.push(...statusChange(id, "merged", now));
    } else {
      statements.push(...statusChange(id, input.status, now, visibleRuns(ctx.principal)));
    }
  }
  delete changes.shardCurrent;
  // The run is read back in the batch that changes it: one round trip.
  const reads = runReads(ctx, where);
  const answers = await batchAll(ctx.db, [ctx.db.update(testRuns).set(changes).where(where), ...statements, ...reads.statements]);
  const run = reads.from(answers);
  if (!run) throw new NotFound("Test run", { id });
  // Completing as an outage marked its test cases for a refresh (statusChange).
  const { totalTests, failedTests } = run.derivedCounts;
  if (input.status !== undefined && TERMINAL_STATUSES.includes(run.status) && totalTests >= OUTAGE_MIN_TESTS && failedTests > OUTAGE_FAILED_SHARE * totalTests) {
    await refreshStaleSoon(ctx.db, ctx.env.INGESTS, run.projectId, now);
  }
  return run;
}

/**
 * Deletes a run with its results, suites, shard parts and R2 objects. The run disappears from
 * every read at the first statement; the rest goes in chunks, so a run of any size can be
 * deleted, and a delete cut short is finished by the next call or by housekeeping. Deleting a
 * run that does not exist (or no longer does) succeeds: deleting is idempotent.
 */
export async function deleteRun(ctx: CoreContext, id: string): Promise<void> {
  requireScope(ctx.principal, "testruns:create");
  const tenant = [eq(testRuns.organizationId, ctx.principal.organizationId)];
  if (ctx.principal.projectId) tenant.push(eq(testRuns.projectId, ctx.principal.projectId));
  const row = await ctx.db
    .update(testRuns)
    .set({ deletedAt: sql`coalesce(${testRuns.deletedAt}, ${nowIso(ctx.clock)})`, shardKey: null })
    .where(and(eq(testRuns.id, id), ...tenant))
    .returning({ id: testRuns.id, projectId: testRuns.projectId })
    .get();
  if (!row) return;
  if ((await purgeRun(ctx.db, ctx.env.ARTIFACTS, row)) > 0) await refreshStaleSoon(ctx.db, ctx.env.INGESTS, row.projectId, nowIso(ctx.clock));
}

const DELETE_CHUNK = 5000;

/**
 * Removes a run already marked deleted: R2 objects, then results in chunks, then the run row.
 * Test cases whose flakiness window held a deleted result are marked for a refresh in the same
 * batch as each chunk's delete; returns how many were marked.
 */
export async function purgeRun(
  db: CoreContext["db"],
  bucket: R2Bucket,
  run: { id: string; projectId: string },
): Promise<number> {
  // Open artifact uploads first (R2 keeps their parts apart from the prefix), then every object.
  await abortRunUploads(db, bucket, run.id);
  await deleteR2Prefix(bucket, runObjectPrefix(run.projectId, run.id));
  let marked = 0;
  for (;;) {
    // The same query twice in one transaction: the same rows.
    const chunk = sql`SELECT number FROM results WHERE run_id = ${run.id} LIMIT ${DELETE_CHUNK}`;
    const [stale, , deleted] = await batchAll(db, [
      markStale(sql`SELECT x.test_case_id FROM results x JOIN test_cases w ON w.id = x.test_case_id
        WHERE x.number IN (${chunk}) AND x.status <> 'skipped' AND x.created_at >= coalesce(w.flakiness_window_start, '')`),
      // The test cases' execution counts lose the chunk's results.
      sql`UPDATE test_cases SET executions = executions - (SELECT count(*) FROM results x WHERE x.number IN (${chunk}) AND x.test_case_id = test_cases.id)
        WHERE id IN (SELECT x.test_case_id FROM results x WHERE x.number IN (${chunk}))`,
      sql`DELETE FROM results WHERE number IN (${chunk})`,
    ]);
    marked += stale?.meta.changes ?? 0;
    if ((deleted?.meta.changes ?? 0) < DELETE_CHUNK) break;
  }
  await db.run(sql`DELETE FROM test_suites WHERE run_id = ${run.id}`);
  await db.delete(testRuns).where(and(eq(testRuns.id, run.id), sql`${testRuns.deletedAt} IS NOT NULL`));
  return marked;
}

/** Housekeeping: finishes deletes that were cut short. */
export async function purgeDeletedRuns(db: CoreContext["db"], bucket: R2Bucket, max = 20): Promise<number> {
  const pending = await db
    .select({ id: testRuns.id, projectId: testRuns.projectId })
    .from(testRuns)
    .where(sql`${testRuns.deletedAt} IS NOT NULL`)
    .limit(max);
  for (const run of pending) await purgeRun(db, bucket, run);
  return pending.length;
}
