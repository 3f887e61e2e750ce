import { sql } from "drizzle-orm";
import { batchAll } from "../../db/batch";
import type { TestType } from "../../db/schema";
import { encryptText } from "../../lib/crypto";
import { SQL_ID_TAIL, newId, sqlIdHead } from "../../lib/ids";
import { type CoreContext, nowIso } from "../context";
import { RUN_EVENT_TYPES, insertRunEvent, runPayloadSql } from "../events/outbox";

export const TESTRUN_QUEUED_EVENT = "testrun.queued.v1";
export const COOKIE_PURPOSE = "plan-cookies";

export interface Cookie {
  name: string;
  value: string;
  domain: string;
  path?: string;
}

/** One test run to queue for a runner: a plan (or suite) on a device, in an environment and context. */
export interface JobRequest {
  projectId: string;
  planId: string | null;
  testType: TestType;
  /** reference 002's buildId, or reference 004's app_id. */
  buildRef: string | null;
  runTitle: string;
  deviceName?: string | null;
  platformVersion?: string | null;
  environmentId?: string | null;
  contextId?: string | null;
  labels?: string[];
  /** Already merged: the plan's stored cookies with the trigger's laid over them. */
  cookies?: Cookie[];
}

export interface QueuedJob {
  jobId: string;
  runId: string;
  request: JobRequest;
  creditsCharged: number;
}

export type QueueOutcome = { ok: true; job: QueuedJob } | { ok: false; request: JobRequest; error: "insufficient_credits" };

/** Lays runtime cookies over stored ones: same name and domain → the runtime one wins (reference 002). */
export function mergeCookies(stored: Cookie[], runtime: Cookie[] | undefined): Cookie[] {
  const key = (c: Cookie) => `${c.name}\u0000${c.domain}`;
  const merged = new Map(stored.map((c) => [key(c), c]));
  for (const c of runtime ?? []) merged.set(key(c), c);
  return [...merged.values()];
}

export async function sealCookies(ctx: Pick<CoreContext, "env">, cookies: Cookie[] | undefined): Promise<string | null> {
  if (!cookies || cookies.length === 0) return null;
  const secret = ctx.env.URL_SIGNING_SECRET;
  if (!secret) throw new Error("URL_SIGNING_SECRET is not set: cookies cannot be stored encrypted.");
  return encryptText(secret, COOKIE_PURPOSE, JSON.stringify(cookies));
}

/**
 * Queues each request as a test run (status queued) with its job, one D1 batch per job so that
 * each is all or nothing: the run, the job, the credit debit and the events land together or not
 * at all. The debit is the batch's guard: the run is inserted only while the organization has
 * the credits (or unlimited ones), and the rest of the batch follows the run, so a job is charged
 * exactly once and a refused one leaves nothing. Jobs are queued in order; once credits run out
 * the rest are refused too (a later, cheaper one could still fit: that is reported per job).
 */
export async function queueJobs(ctx: CoreContext, requests: JobRequest[]): Promise<QueueOutcome[]> {
  const outcomes: QueueOutcome[] = [];
  for (const request of requests) {
    const now = nowIso(ctx.clock);
    const runId = newId("run");
    const jobId = newId("job");
    const costColumn = sql.raw(request.testType === "deepTest" ? "o.credit_cost_deep" : "o.credit_cost_quick");
    const sealed = await sealCookies(ctx, request.cookies);
    const runExists = sql`EXISTS (SELECT 1 FROM test_runs WHERE id = ${runId})`;
    const results = await batchAll(ctx.db, [
      sql`INSERT INTO test_runs (id, organization_id, project_id, plan_id, status, ci_build_id, run_title, created_at, updated_at)
        SELECT ${runId}, o.id, ${request.projectId}, ${request.planId}, 'queued', ${request.buildRef}, ${request.runTitle}, ${now}, ${now}
        FROM organizations o WHERE o.id = ${ctx.principal.organizationId} AND (o.credits IS NULL OR o.credits >= ${costColumn})`,
      sql`INSERT INTO jobs (id, organization_id, project_id, run_id, plan_id, test_type, build_ref, device_name, platform_version,
          environment_id, context_id, labels, cookies_sealed, credits_charged, status, created_at, updated_at)
        SELECT ${jobId}, o.id, ${request.projectId}, ${runId}, ${request.planId}, ${request.testType}, ${request.buildRef},
          ${request.deviceName ?? null}, ${request.platformVersion ?? null}, ${request.environmentId ?? null}, ${request.contextId ?? null},
          ${JSON.stringify(request.labels ?? [])}, ${sealed}, CASE WHEN o.credits IS NULL THEN 0 ELSE ${costColumn} END, 'queued', ${now}, ${now}
        FROM organizations o WHERE o.id = ${ctx.principal.organizationId} AND ${runExists}`,
      sql`UPDATE organizations SET credits = credits - (SELECT credits_charged FROM jobs WHERE id = ${jobId}), updated_at = ${now}
        WHERE id = ${ctx.principal.organizationId} AND credits IS NOT NULL AND EXISTS (SELECT 1 FROM jobs WHERE id = ${jobId})`,
      insertRunEvent(RUN_EVENT_TYPES.created, sql`r.id = ${runId}`, now),
      sql`INSERT INTO events (id, organization_id, project_id, type, subject_id, payload, created_at)
        SELECT ${sqlIdHead("evt", Date.parse(now))} || ${sql.raw(SQL_ID_TAIL)}, r.organization_id, r.project_id, ${TESTRUN_QUEUED_EVENT}, r.id,
          json_object('type', ${TESTRUN_QUEUED_EVENT}, 'run', ${runPayloadSql("r")}, 'plan_id', r.plan_id, 'job_id', ${jobId}), ${now}
        FROM test_runs r WHERE r.id = ${runId} AND r.plan_id IS NOT NULL`,
      sql`SELECT credits_charged FROM jobs WHERE id = ${jobId}`,
    ]);
    const charged = results[5]?.results[0] as { credits_charged: number } | undefined;
    if (!charged) {
      outcomes.push({ ok: false, request, error: "insufficient_credits" });
      continue;
    }
    outcomes.push({ ok: true, job: { jobId, runId, request, creditsCharged: charged.credits_charged } });
  }
  return outcomes;
}
