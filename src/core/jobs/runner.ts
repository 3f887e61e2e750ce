import { and, eq, gte, inArray, isNull, sql, type SQL } from "drizzle-orm";
import type { SQLiteColumn } from "drizzle-orm/sqlite-core";
import { contexts, environments, jobs, testRuns, type JobRow, type JobStatus, type TestType } from "../../db/schema";
import type { Db } from "../../db/client";
import { decryptText, requiredSecretRing } from "../../lib/crypto";
import { type CoreContext, nowIso, requireScope } from "../context";
import { Conflict, Invalid, NotFound } from "../errors";
import { assertProjectVisible } from "../projects/projects";
import { tenantScope } from "../tenancy";
import { COOKIE_PURPOSE, type Cookie } from "./queue";

export const LEASE_SECONDS = { default: 300, min: 30, max: 3600 } as const;
export const MAX_RUNNER_LABELS = 50;

const FINISHED: readonly JobStatus[] = ["done", "failed", "cancelled"];

/** Why a job failed when its lease ran out on the last attempt ("… the last of 3 attempts."); its run's status_reason says the same. */
function leaseExpiredReason(maxAttempts: SQL | SQLiteColumn): SQL {
  return sql`'The lease expired on the last of ' || ${maxAttempts} || ' attempts.'`;
}

export interface Job {
  id: string;
  runId: string;
  projectId: string;
  planId: string | null;
  testType: TestType;
  buildRef: string | null;
  deviceName: string | null;
  platformVersion: string | null;
  labels: string[];
  status: JobStatus;
  /** Claims so far, the current one included. */
  attempts: number;
  maxAttempts: number;
  leaseUntil: string | null;
  runnerName: string | null;
  /** Why the job failed, or why its last holder gave it back. */
  error: string | null;
  createdAt: string;
  updatedAt: string;
  finishedAt: string | null;
}

/** What the runner that claimed a job needs to run it: the cookies in clear, the environment and context. */
export interface ClaimedJob extends Job {
  cookies: Cookie[];
  environment: { id: string; name: string; baseUrl: string | null; variables: Record<string, string> } | null;
  context: { id: string; name: string; data: Record<string, unknown> } | null;
}

/**
 * What a runner can run. Every filter left out matches any job; a job matches the labels when
 * every label of the job is among the runner's (a runner naming none gets only unlabelled jobs).
 */
export interface ClaimInput {
  projectId?: string;
  testType?: TestType;
  deviceName?: string;
  platformVersion?: string;
  labels?: string[];
  runnerName?: string | null;
  leaseSeconds?: number;
}

export function toJob(row: JobRow): Job {
  return {
    id: row.id,
    runId: row.runId,
    projectId: row.projectId,
    planId: row.planId,
    testType: row.testType as TestType,
    buildRef: row.buildRef,
    deviceName: row.deviceName,
    platformVersion: row.platformVersion,
    labels: row.labels,
    status: row.status as JobStatus,
    attempts: row.attempts,
    maxAttempts: row.maxAttempts,
    leaseUntil: row.leaseUntil,
    runnerName: row.runnerName,
    error: row.error,
    createdAt: row.createdAt,
    updatedAt: row.updatedAt,
    finishedAt: row.finishedAt,
  };
}

function leaseUntilFrom(now: string, leaseSeconds: number | undefined): string {
  const seconds = leaseSeconds ?? LEASE_SECONDS.default;
  if (!Number.isInteger(seconds) || seconds < LEASE_SECONDS.min || seconds > LEASE_SECONDS.max) {
    throw Invalid.field("lease_seconds", "invalid_value", `must be a whole number of seconds from ${LEASE_SECONDS.min} to ${LEASE_SECONDS.max}`);
  }
  return new Date(Date.parse(now) + seconds * 1000).toISOString();
}

/** The jobs (as `j`) a principal may see: its organization, and its project when the key is restricted. */
function visibleAs(ctx: CoreContext): SQL {
  const { organizationId, projectId } = ctx.principal;
  return projectId ? sql`j.organization_id = ${organizationId} AND j.project_id = ${projectId}` : sql`j.organization_id = ${organizationId}`;
}

/**
 * The oldest job the claim may take, as `j`: visible, matching the filters, its run still open, and
 * either queued or holding a lease that lapsed with attempts left. A released job is claimable
 * whatever its attempts (giving a job back spends none of the lapses it is allowed). The literal
 * `status IN (...)` lets SQLite use the partial index jobs_claimable_idx.
 */
export function nextClaimable(ctx: CoreContext, input: ClaimInput, now: string): SQL {
  const conditions = [visibleAs(ctx), sql`j.status IN ('queued', 'claimed')`];
  if (input.projectId !== undefined) conditions.push(sql`j.project_id = ${input.projectId}`);
  if (input.testType !== undefined) conditions.push(sql`j.test_type = ${input.testType}`);
  if (input.deviceName !== undefined) conditions.push(sql`j.device_name = ${input.deviceName}`);
  if (input.platformVersion !== undefined) conditions.push(sql`j.platform_version = ${input.platformVersion}`);
  conditions.push(
    sql`NOT EXISTS (SELECT 1 FROM json_each(j.labels) l WHERE l.value NOT IN (SELECT value FROM json_each(${JSON.stringify(input.labels ?? [])})))`,
    sql`(j.status = 'queued' OR (j.status = 'claimed' AND j.lease_until < ${now} AND j.attempts < j.max_attempts))`,
    sql`EXISTS (SELECT 1 FROM test_runs r WHERE r.id = j.run_id AND r.deleted_at IS NULL AND r.status IN ('queued', 'running'))`,
  );
  return sql`SELECT j.id, j.run_id FROM jobs j WHERE ${sql.join(conditions, sql` AND `)} ORDER BY j.number LIMIT 1`;
}

/**
 * Claimed jobs (as `j`) whose lease lapsed on their last attempt: the claim's sweep fails them. The
 * redundant `status IN (...)` is what lets SQLite prove the partial index jobs_claimable_idx applies.
 */
function lapsedOnLastAttempt(now: string): SQL {
  return sql`j.status IN ('queued', 'claimed') AND j.status = 'claimed' AND j.lease_until < ${now} AND j.attempts >= j.max_attempts`;
}

/**
 * The two statements that fail jobs (of `scope`, on alias j) whose lease lapsed on their last
 * attempt, and their runs with the reason: part of every claim, and of the cron's sweep.
 */
function failLapsed(db: Db, scope: SQL, now: string) {
  const lapsed = lapsedOnLastAttempt(now);
  return [
    db
      .update(testRuns)
      .set({
        status: "failed",
        statusReason: sql`(SELECT ${leaseExpiredReason(sql`j.max_attempts`)} FROM jobs j WHERE j.run_id = ${testRuns.id} AND ${lapsed} LIMIT 1)`,
        completedAt: now,
        updatedAt: now,
      })
      .where(
        and(
          sql`${testRuns.id} IN (SELECT j.run_id FROM jobs j WHERE ${scope} AND ${lapsed})`,
          inArray(testRuns.status, ["queued", "running"]),
          isNull(testRuns.deletedAt),
        ),
      ),
    db
      .update(jobs)
      .set({ status: "failed", error: leaseExpiredReason(jobs.maxAttempts), finishedAt: now, updatedAt: now })
      .where(sql`${jobs.id} IN (SELECT j.id FROM jobs j WHERE ${scope} AND ${lapsed})`),
  ] as const;
}

/** Cron: fails jobs whose last lease lapsed even when no runner claims again. Returns how many. */
export async function sweepLapsedJobs(db: Db, now: Date): Promise<number> {
  const [, failed] = await db.batch([...failLapsed(db, sql`true`, now.toISOString())]);
  return failed.meta.changes ?? 0;
}

/**
 * Hands the oldest matching job to the calling runner with a lease, or answers null when none is
 * claimable. One D1 batch (one transaction, and D1 runs one at a time), in this order:
 *  1-2. jobs of the caller's scope whose lease lapsed on their last attempt fail, and so do their runs;
 *  3.   the run of the job about to be claimed goes from queued to running;
 *  4.   the claim: a single UPDATE … WHERE id = (SELECT the oldest claimable) … RETURNING.
 * Statements 3 and 4 select the job with the same subquery; nothing between them writes jobs, so
 * they pick the same row, and the run is marked without knowing the id in advance. Because the
 * claim re-checks claimability in its own WHERE and the database executes one statement at a
 * time, two concurrent claims can never take the same job: the second sees it claimed and moves on.
 */
export async function claimJob(ctx: CoreContext, input: ClaimInput): Promise<ClaimedJob | null> {
  requireScope(ctx.principal, "jobs:run");
  const now = nowIso(ctx.clock);
  const leaseUntil = leaseUntilFrom(now, input.leaseSeconds);
  if ((input.labels?.length ?? 0) > MAX_RUNNER_LABELS) throw Invalid.field("labels", "too_many", `must have at most ${MAX_RUNNER_LABELS} items`);
  // A runner pointed at a project it cannot see is misconfigured: say so rather than answer 204 forever.
  if (input.projectId !== undefined) await assertProjectVisible(ctx, input.projectId);
  const next = nextClaimable(ctx, input, now);
  const [, , , claimed] = await ctx.db.batch([
    ...failLapsed(ctx.db, visibleAs(ctx), now),
    ctx.db
      .update(testRuns)
      .set({ status: "running", updatedAt: now })
      .where(and(sql`${testRuns.id} = (SELECT run_id FROM (${next}))`, eq(testRuns.status, "queued"))),
    ctx.db
      .update(jobs)
      .set({
        status: "claimed",
        attempts: sql`${jobs.attempts} + 1`,
        leaseUntil,
        claimedBy: ctx.principal.keyId,
        runnerName: input.runnerName ?? null,
        updatedAt: now,
      })
      .where(
        and(
          sql`${jobs.id} = (SELECT id FROM (${next}))`,
          sql`(${jobs.status} = 'queued' OR (${jobs.status} = 'claimed' AND ${jobs.leaseUntil} < ${now} AND ${jobs.attempts} < ${jobs.maxAttempts}))`,
        ),
      )
      .returning(),
  ]);
  const row = claimed[0];
  if (!row) return null;
  return withRunnerContext(ctx, row);
}

async function withRunnerContext(ctx: CoreContext, row: JobRow): Promise<ClaimedJob> {
  const org = ctx.principal.organizationId;
  const [env, context] = await Promise.all([
    row.environmentId
      ? ctx.db.select().from(environments).where(and(eq(environments.id, row.environmentId), eq(environments.organizationId, org))).get()
      : undefined,
    row.contextId ? ctx.db.select().from(contexts).where(and(eq(contexts.id, row.contextId), eq(contexts.organizationId, org))).get() : undefined,
  ]);
  return {
    ...toJob(row),
    cookies: await openCookies(ctx, row.cookiesSealed),
    environment: env ? { id: env.id, name: env.name, baseUrl: env.baseUrl, variables: env.variables } : null,
    context: context ? { id: context.id, name: context.name, data: context.data } : null,
  };
}

async function openCookies(ctx: Pick<CoreContext, "env">, sealed: string | null): Promise<Cookie[]> {
  if (sealed === null) return [];
  return JSON.parse(await decryptText(requiredSecretRing(ctx.env, "a job's cookies cannot be decrypted"), COOKIE_PURPOSE, sealed)) as Cookie[];
}

/** Held by the caller: claimed with its key, and the lease not lapsed. */
function heldBy(ctx: CoreContext, id: string, now: string): SQL {
  return and(
    eq(jobs.id, id),
    tenantScope(ctx.principal, { organizationId: jobs.organizationId, projectId: jobs.projectId }),
    eq(jobs.status, "claimed"),
    eq(jobs.claimedBy, ctx.principal.keyId),
    gte(jobs.leaseUntil, now),
  )!;
}

/** Why the caller does not hold a job it asked to heartbeat or release: 404 when it cannot see it, else 409. */
async function notHeld(ctx: CoreContext, id: string, now: string): Promise<Error> {
  const row = await ctx.db
    .select({ status: jobs.status, claimedBy: jobs.claimedBy, leaseUntil: jobs.leaseUntil })
    .from(jobs)
    .where(and(eq(jobs.id, id), tenantScope(ctx.principal, { organizationId: jobs.organizationId, projectId: jobs.projectId })))
    .get();
  if (!row) return new NotFound("Job", { id });
  if (FINISHED.includes(row.status as JobStatus)) {
    return new Conflict(`This job is ${row.status}: there is no lease to extend or give back.`, { reason: "finished", status: row.status });
  }
  if (row.status === "claimed" && row.claimedBy !== ctx.principal.keyId && row.leaseUntil !== null && row.leaseUntil >= now) {
    return new Conflict("Another runner holds the lease on this job (if this runner held it before, its lease lapsed and was lost).", {
      reason: "held_by_another_runner",
      status: row.status,
    });
  }
  return new Conflict("The lease on this job was lost: it lapsed or was given back, and the job waits for (or has) another claim.", {
    reason: "lease_lost",
    status: row.status,
  });
}

/** Extends the caller's lease from now; only while it holds the job and the lease has not lapsed. */
export async function heartbeatJob(ctx: CoreContext, id: string, input: { leaseSeconds?: number } = {}): Promise<Job> {
  requireScope(ctx.principal, "jobs:run");
  const now = nowIso(ctx.clock);
  const leaseUntil = leaseUntilFrom(now, input.leaseSeconds);
  const row = await ctx.db.update(jobs).set({ leaseUntil, updatedAt: now }).where(heldBy(ctx, id, now)).returning().get();
  if (!row) throw await notHeld(ctx, id, now);
  return toJob(row);
}

/**
 * Gives a held job back: queued again with its lease cleared and its attempts unchanged, and its
 * run queued again, in one batch. The reason, if given, is kept in the job's `error`.
 */
export async function releaseJob(ctx: CoreContext, id: string, input: { reason?: string | null } = {}): Promise<Job> {
  requireScope(ctx.principal, "jobs:run");
  const now = nowIso(ctx.clock);
  const held = heldBy(ctx, id, now);
  const [, released] = await ctx.db.batch([
    ctx.db
      .update(testRuns)
      .set({ status: "queued", updatedAt: now })
      .where(and(sql`${testRuns.id} = (SELECT ${jobs.runId} FROM ${jobs} WHERE ${held})`, eq(testRuns.status, "running"))),
    ctx.db
      .update(jobs)
      .set({ status: "queued", leaseUntil: null, claimedBy: null, runnerName: null, error: input.reason ?? null, updatedAt: now })
      .where(held)
      .returning(),
  ]);
  const row = released[0];
  if (!row) throw await notHeld(ctx, id, now);
  return toJob(row);
}
