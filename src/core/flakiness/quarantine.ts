import { and, eq, sql } from "drizzle-orm";
import { batchAll } from "../../db/batch";
import { results, testCases } from "../../db/schema";
import { SQL_ID_TAIL, sqlIdHead } from "../../lib/ids";
import { type CoreContext, nowIso, requireScope } from "../context";
import { NotFound } from "../errors";
import { tenantScope } from "../tenancy";

const visibleCases = (ctx: CoreContext) => tenantScope(ctx.principal, { organizationId: testCases.organizationId, projectId: testCases.projectId });

export const TESTCASE_QUARANTINED_EVENT = "testcase.quarantined.v1";

/** The test case as a flakiness event payload, read from the row (alias `tc`) as the event is written. */
export function flakyTestCasePayloadSql(): ReturnType<typeof sql> {
  return sql`json_object('test_case_id', tc.id, 'project_id', tc.project_id, 'title', tc.title, 'full_title', tc.full_title,
    'file_path', tc.file_path, 'flakiness_score', tc.flakiness_score, 'total_runs', tc.total_runs, 'flaky_runs', tc.flaky_runs,
    'last_flaky_at', tc.last_flaky_at, 'is_quarantined', json(CASE WHEN tc.is_quarantined THEN 'true' ELSE 'false' END))`;
}

export interface QuarantineState {
  testCaseId: string;
  isQuarantined: boolean;
  quarantinedAt: string | null;
  quarantinedBy: string | null;
  quarantineReason: string | null;
  updatedAt: string;
}

/**
 * The test case a client names: a test case id, or (the reporting surface's "test id") a
 * result id, which stands for its test case. Tenant-scoped like every read.
 */
export async function resolveTestCaseId(ctx: CoreContext, id: string, projectId?: string): Promise<string> {
  const tenant = [visibleCases(ctx)];
  if (projectId !== undefined) tenant.push(eq(testCases.projectId, projectId));
  if (id.startsWith("res_")) {
    const row = await ctx.db
      .select({ id: testCases.id })
      .from(results)
      .innerJoin(testCases, eq(testCases.id, results.testCaseId))
      .where(and(eq(results.id, id), ...tenant))
      .get();
    if (!row) throw new NotFound("Test", { id });
    return row.id;
  }
  const row = await ctx.db.select({ id: testCases.id }).from(testCases).where(and(eq(testCases.id, id), ...tenant)).get();
  if (!row) throw new NotFound("Test case", { id });
  return row.id;
}

/**
 * Puts a test case into quarantine or takes it out, recording who (the key) and why, and writes
 * testcase.quarantined.v1 in the same batch when the state actually changes. While quarantined,
 * its failures do not block a release (see readiness).
 */
export async function setQuarantine(
  ctx: CoreContext,
  testCaseId: string,
  input: { quarantined: boolean; reason?: string | null },
): Promise<QuarantineState> {
  requireScope(ctx.principal, "results:submit");
  const now = nowIso(ctx.clock);
  const tenant = [eq(testCases.id, testCaseId), visibleCases(ctx)];
  const flag = input.quarantined ? 1 : 0;
  const [, updated] = await batchAll(ctx.db, [
    // Only a real change is announced: the event is written before the row changes, if it will.
    sql`INSERT INTO events (id, organization_id, project_id, type, subject_id, payload, created_at)
      SELECT ${sqlIdHead("evt", Date.parse(now))} || ${sql.raw(SQL_ID_TAIL)}, tc.organization_id, tc.project_id,
        ${TESTCASE_QUARANTINED_EVENT}, tc.id,
        json_object('type', ${TESTCASE_QUARANTINED_EVENT},
          'test_case', json_set(${flakyTestCasePayloadSql()}, '$.is_quarantined', json(${input.quarantined ? "true" : "false"})),
          'source', 'manual'), ${now}
      FROM test_cases tc
      WHERE tc.id = ${testCaseId} AND tc.organization_id = ${ctx.principal.organizationId}
        ${ctx.principal.projectId ? sql`AND tc.project_id = ${ctx.principal.projectId}` : sql``}
        AND tc.is_quarantined <> ${flag}`,
    ctx.db
      .update(testCases)
      .set(
        input.quarantined
          ? {
              isQuarantined: true,
              quarantinedAt: sql`CASE WHEN ${testCases.isQuarantined} THEN ${testCases.quarantinedAt} ELSE ${now} END`,
              quarantinedBy: ctx.principal.keyId,
              quarantineReason: input.reason ?? null,
              updatedAt: now,
            }
          : { isQuarantined: false, quarantinedAt: null, quarantinedBy: null, quarantineReason: null, updatedAt: now },
      )
      .where(and(...tenant))
      .returning(),
  ]);
  const row = updated?.results[0] as Record<string, unknown> | undefined;
  if (!row) throw new NotFound("Test case", { id: testCaseId });
  return {
    testCaseId,
    isQuarantined: row.is_quarantined === 1 || row.is_quarantined === true,
    quarantinedAt: (row.quarantined_at as string | null) ?? null,
    quarantinedBy: (row.quarantined_by as string | null) ?? null,
    quarantineReason: (row.quarantine_reason as string | null) ?? null,
    updatedAt: row.updated_at as string,
  };
}
