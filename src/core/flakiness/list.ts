import { and, desc, eq, gte, isNotNull, sql } from "drizzle-orm";
import { projectSettings, testCases } from "../../db/schema";
import { type CoreContext, requireScope } from "../context";
import type { PageRequest, Paged } from "../pagination";
import { assertProjectVisible } from "../projects/projects";
import type { FlakinessItem, FlakinessStatus, FlakinessSummary } from "./flakiness";

const DEFAULT_THRESHOLD = 0.3;

/**
 * A project's test cases by flakiness score, highest first: a page of the (project_id,
 * flakiness_score) index, so the cost follows the page, not the history behind the scores.
 * Test cases without a score (too few executions) are left out unless asked for; they come last.
 */
export async function listFlakiness(
  ctx: CoreContext,
  projectId: string,
  input: { page: PageRequest; minScore?: number; includeInsufficient?: boolean; quarantined?: boolean },
): Promise<Paged<FlakinessItem> & { summary: FlakinessSummary }> {
  requireScope(ctx.principal, "results:read");
  await assertProjectVisible(ctx, projectId);
  const conditions = [eq(testCases.projectId, projectId), eq(testCases.organizationId, ctx.principal.organizationId)];
  if (input.minScore !== undefined && input.minScore > 0) conditions.push(gte(testCases.flakinessScore, input.minScore));
  else if (!input.includeInsufficient) conditions.push(isNotNull(testCases.flakinessScore));
  if (input.quarantined !== undefined) conditions.push(eq(testCases.isQuarantined, input.quarantined));
  const where = and(...conditions)!;
  // The default list (every scored test case) takes its total from the project's summary
  // counters; a filtered one counts its matches through the index it reads.
  const counted = input.minScore === undefined && !input.includeInsufficient && input.quarantined === undefined;
  const [settings, totalRows, rows] = await ctx.db.batch([
    ctx.db
      .select({
        threshold: projectSettings.flakinessThreshold,
        scored: projectSettings.scoredTests,
        scoreSum: projectSettings.scoreSum,
        flaky: projectSettings.flakyTests,
        quarantined: projectSettings.quarantinedTests,
      })
      .from(projectSettings)
      .where(eq(projectSettings.projectId, projectId)),
    counted
      ? ctx.db.select({ total: projectSettings.scoredTests }).from(projectSettings).where(sql`false`)
      : ctx.db.select({ total: sql<number>`count(*)` }).from(testCases).where(where),
    ctx.db
      .select()
      .from(testCases)
      .where(where)
      .orderBy(desc(testCases.flakinessScore), desc(testCases.number))
      .limit(input.page.limit)
      .offset(input.page.offset),
  ]);
  const summary = settings[0];
  const threshold = summary?.threshold ?? DEFAULT_THRESHOLD;
  const statusOf = (score: number | null): FlakinessStatus => (score === null ? "insufficient_data" : score >= threshold ? "flaky" : "stable");
  return {
    items: rows.map((r) => ({
      testCaseId: r.id,
      title: r.title,
      fullTitle: r.fullTitle,
      filePath: r.filePath,
      status: statusOf(r.flakinessScore),
      score: r.flakinessScore,
      totalRuns: r.totalRuns,
      flakyRuns: r.flakyRuns,
      flipRate: r.flipRate,
      sameCommitConflicts: r.sameCommitConflicts,
      passOnRetry: r.passOnRetry,
      confidence: r.flakinessConfidence ?? 0,
      lastFlakyAt: r.lastFlakyAt,
      isQuarantined: r.isQuarantined,
      quarantineSource: r.quarantineSource,
      quarantinedAt: r.quarantinedAt,
      quarantineReason: r.quarantineReason,
      updatedAt: r.flakinessUpdatedAt,
    })),
    total: counted ? (summary?.scored ?? 0) : (totalRows[0]?.total ?? 0),
    ...input.page,
    summary: {
      flakyTests: summary?.flaky ?? 0,
      quarantinedTests: summary?.quarantined ?? 0,
      averageScore: summary && summary.scored > 0 ? Math.round(summary.scoreSum / summary.scored) / 10_000 : null,
    },
  };
}
