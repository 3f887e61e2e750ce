import { and, eq, sql } from "drizzle-orm";
import { batchAll } from "../../db/batch";
import { results, testCases } from "../../db/schema";
import { type CoreContext, nowIso, requireScope } from "../context";
import { NotFound } from "../errors";
import { tenantScope } from "../tenancy";
import { TESTCASE_QUARANTINED_EVENT, adjustSummary, flakyTestCasePayloadSql, insertTestCaseEvent } from "./refresh";

const visibleCases = (ctx: CoreContext) => tenantScope(ctx.principal, { organizationId: testCases.organizationId, projectId: testCases.projectId });

export interface QuarantineState {
  testCaseId: string;
  isQuarantined: boolean;
  quarantinedAt: string | null;
  quarantinedBy: string | null;
  quarantineReason: string | null;
  quarantineSource: string | null;
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
  const projectScope = ctx.principal.projectId ? sql`AND tc.project_id = ${ctx.principal.projectId}` : sql``;
  const target = await ctx.db.select({ projectId: testCases.projectId }).from(testCases).where(and(...tenant)).get();
  if (!target) throw new NotFound("Test case", { id: testCaseId });
  const ids = JSON.stringify([testCaseId]);
  const results = await batchAll(ctx.db, [
    // Only a real change is announced: the event is written before the row changes, if it will.
    insertTestCaseEvent(
      TESTCASE_QUARANTINED_EVENT,
      sql`json_object('type', ${TESTCASE_QUARANTINED_EVENT},
        'test_case', ${flakyTestCasePayloadSql(sql`'$.is_quarantined', json(${input.quarantined ? "true" : "false"})`)},
        'source', 'manual', 'reason', ${input.reason ?? null})`,
      sql`FROM test_cases tc
        WHERE tc.id = ${testCaseId} AND tc.organization_id = ${ctx.principal.organizationId} ${projectScope}
          AND tc.is_quarantined <> ${flag}`,
      now,
    ),
    adjustSummary(target.projectId, ids, -1),
    ctx.db
      .update(testCases)
      .set(
        input.quarantined
          ? {
              isQuarantined: true,
              quarantinedAt: sql`CASE WHEN ${testCases.isQuarantined} THEN ${testCases.quarantinedAt} ELSE ${now} END`,
              quarantinedBy: ctx.principal.keyId,
              // A person's decision: it does not recover by itself.
              quarantineSource: "manual",
              quarantineReason: input.reason ?? null,
              updatedAt: now,
            }
          : {
              isQuarantined: false,
              quarantinedAt: null,
              quarantinedBy: null,
              quarantineSource: null,
              quarantineReason: null,
              // Auto-quarantine then waits for a flaky execution after this moment.
              quarantineReleasedAt: sql`CASE WHEN ${testCases.isQuarantined} THEN ${now} ELSE ${testCases.quarantineReleasedAt} END`,
              updatedAt: now,
            },
      )
      .where(and(...tenant))
      .returning(),
    adjustSummary(target.projectId, ids, 1),
  ]);
  const updated = results[2];
  const row = updated?.results[0] as Record<string, unknown> | undefined;
  if (!row) throw new NotFound("Test case", { id: testCaseId });
  return {
    testCaseId,
    isQuarantined: row.is_quarantined === 1 || row.is_quarantined === true,
    quarantinedAt: (row.quarantined_at as string | null) ?? null,
    quarantinedBy: (row.quarantined_by as string | null) ?? null,
    quarantineReason: (row.quarantine_reason as string | null) ?? null,
    quarantineSource: (row.quarantine_source as string | null) ?? null,
    updatedAt: row.updated_at as string,
  };
}
