import { z } from "@hono/zod-openapi";
import type { FlakinessItem } from "../../core/flakiness/flakiness";
import { listFlakiness } from "../../core/flakiness/list";
import { resolveTestCaseId, setQuarantine } from "../../core/flakiness/quarantine";
import { ReportingPageQuery, pageOf } from "../../http/pagination";
import { defineRoute } from "../../http/routes";
import { reportingErrors } from "../errors-openapi";
import { Id, Timestamp } from "../fields";
import { coreContext, jsonBody, jsonResponse, surfaceApp } from "../shared";

const tags = ["reporting: flakiness"];

const Item = z
  .object({
    testId: z.string().openapi({ description: "The test case's id (a test's result id is accepted by POST too)." }),
    testTitle: z.string(),
    filePath: z.string().nullable(),
    flakinessScore: z.number().nullable(),
    totalRuns: z.number().int(),
    flakyRuns: z.number().int(),
    lastFlakyAt: Timestamp.nullable(),
    isQuarantined: z.boolean(),
    // The parts of the score, so a reader can see why a test scored what it did.
    flipRate: z.number().nullable(),
    sameCommitConflicts: z.number().int(),
    passOnRetry: z.number().int(),
    confidence: z.number(),
  })
  .openapi("ReportingFlakinessItem");

const ListSchema = z
  .object({
    data: z.array(Item),
    summary: z.object({ totalFlakyTests: z.number().int(), quarantinedTests: z.number().int(), averageFlakinessScore: z.number().nullable() }),
    total: z.number().int(),
    limit: z.number().int(),
    offset: z.number().int(),
  })
  .openapi("ReportingFlakinessList");

const QuarantineBody = z.object({ testId: Id, projectId: Id, isQuarantined: z.boolean() }).openapi("ReportingQuarantine");
const QuarantineSchema = z.object({ testId: z.string(), isQuarantined: z.boolean(), updatedAt: Timestamp }).openapi("ReportingQuarantined");

const flag = z.enum(["true", "false"]).transform((v) => v === "true");

function itemOut(i: FlakinessItem): z.infer<typeof Item> {
  return {
    testId: i.testCaseId,
    testTitle: i.title,
    filePath: i.filePath,
    flakinessScore: i.score,
    totalRuns: i.totalRuns,
    flakyRuns: i.flakyRuns,
    lastFlakyAt: i.lastFlakyAt,
    isQuarantined: i.isQuarantined,
    flipRate: i.flipRate,
    sameCommitConflicts: i.sameCommitConflicts,
    passOnRetry: i.passOnRetry,
    confidence: i.confidence,
  };
}

const listRoute = defineRoute({ scope: "results:read" }, {
  method: "get",
  path: "/flakiness",
  operationId: "reportingListFlakiness",
  tags,
  summary: "Returns flakiness data for all tests in a project, sorted by flakiness score (highest first)",
  request: { query: ReportingPageQuery.extend({ projectId: Id, minScore: z.coerce.number().min(0).max(1).optional(), quarantined: flag.optional() }) },
  responses: { 200: jsonResponse(ListSchema, "Flakiness."), ...reportingErrors(400, 401, 403, 404) },
});

const quarantineRoute = defineRoute({ scope: "results:submit" }, {
  method: "post",
  path: "/flakiness",
  operationId: "reportingQuarantine",
  tags,
  summary: "Manually quarantine or unquarantine a test",
  request: { body: jsonBody(QuarantineBody) },
  responses: { 200: jsonResponse(QuarantineSchema, "The test's quarantine."), ...reportingErrors(400, 401, 403, 404, 413, 415) },
});

export const reportingFlakinessRoutes = surfaceApp()
  .openapi(listRoute, async (c) => {
    const q = c.req.valid("query");
    const page = await listFlakiness(coreContext(c), q.projectId, { page: pageOf(q), minScore: q.minScore, quarantined: q.quarantined });
    return c.json(
      {
        data: page.items.map(itemOut),
        summary: { totalFlakyTests: page.summary.flakyTests, quarantinedTests: page.summary.quarantinedTests, averageFlakinessScore: page.summary.averageScore },
        total: page.total,
        limit: page.limit,
        offset: page.offset,
      },
      200,
    );
  })
  .openapi(quarantineRoute, async (c) => {
    const b = c.req.valid("json");
    const ctx = coreContext(c);
    const state = await setQuarantine(ctx, await resolveTestCaseId(ctx, b.testId, b.projectId), { quarantined: b.isQuarantined });
    return c.json({ testId: b.testId, isQuarantined: state.isQuarantined, updatedAt: state.updatedAt }, 200);
  });
