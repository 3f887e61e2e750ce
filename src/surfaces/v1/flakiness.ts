import { z } from "@hono/zod-openapi";
import { FLAKINESS_STATUSES, type FlakinessItem } from "../../core/flakiness/flakiness";
import { listFlakiness } from "../../core/flakiness/list";
import { NativePageQuery, nativeList, nativeListSchema, pageOf } from "../../http/pagination";
import { defineRoute } from "../../http/routes";
import { nativeErrors } from "../errors-openapi";
import { IdParam, Timestamp } from "../fields";
import { coreContext, jsonResponse, surfaceApp } from "../shared";

const FlakinessItemSchema = z
  .object({
    test_case_id: z.string(),
    title: z.string(),
    full_title: z.string(),
    file_path: z.string().nullable(),
    status: z.enum(FLAKINESS_STATUSES),
    flakiness_score: z.number().nullable().openapi({ description: "1 − (1 − pass_on_retry ÷ n)(1 − flip_rate)(1 − executions on conflicting commits ÷ n); null below the minimum sample." }),
    total_runs: z.number().int().openapi({ description: "Executions counted: the window, without skipped ones or runs where over 80 % failed." }),
    flaky_runs: z.number().int(),
    flip_rate: z.number().nullable(),
    same_commit_conflicts: z.number().int(),
    pass_on_retry: z.number().int(),
    confidence: z.number(),
    last_flaky_at: Timestamp.nullable(),
    is_quarantined: z.boolean(),
    quarantine_source: z.enum(["manual", "auto"]).nullable().openapi({ description: "manual: set through the API (it stays until lifted); auto: the project's auto-quarantine (it recovers by itself)." }),
    quarantined_at: z.string().nullable(),
    quarantine_reason: z.string().nullable(),
    updated_at: Timestamp.nullable(),
  })
  .openapi("FlakinessItem");

function itemOut(i: FlakinessItem): z.infer<typeof FlakinessItemSchema> {
  return {
    test_case_id: i.testCaseId,
    title: i.title,
    full_title: i.fullTitle,
    file_path: i.filePath,
    status: i.status,
    flakiness_score: i.score,
    total_runs: i.totalRuns,
    flaky_runs: i.flakyRuns,
    flip_rate: i.flipRate,
    same_commit_conflicts: i.sameCommitConflicts,
    pass_on_retry: i.passOnRetry,
    confidence: i.confidence,
    last_flaky_at: i.lastFlakyAt,
    is_quarantined: i.isQuarantined,
    quarantine_source: i.quarantineSource as "manual" | "auto" | null,
    quarantined_at: i.quarantinedAt,
    quarantine_reason: i.quarantineReason,
    updated_at: i.updatedAt,
  };
}

const listRoute = defineRoute({ scope: "results:read" }, {
  method: "get",
  path: "/projects/{id}/flakiness",
  operationId: "listFlakiness",
  tags: ["native: flakiness"],
  summary: "A project's test cases by flakiness score, highest first, with the parts of each score",
  request: {
    params: IdParam,
    query: NativePageQuery.extend({
      min_score: z.coerce.number().min(0).max(1).optional(),
      quarantined: z.enum(["true", "false"]).transform((v) => v === "true").optional(),
      include_insufficient: z
        .enum(["true", "false"])
        .transform((v) => v === "true")
        .optional()
        .openapi({ description: "Also list test cases with too few executions for a score (last)." }),
    }),
  },
  responses: {
    200: jsonResponse(
      nativeListSchema(FlakinessItemSchema, "FlakinessPage")
        .extend({
          summary: z
            .object({
              flaky_tests: z.number().int().openapi({ description: "Test cases at or above the project's flakiness threshold." }),
              quarantined_tests: z.number().int(),
              average_score: z.number().nullable().openapi({ description: "Over the test cases with a score; null when none has." }),
            })
            .openapi({ description: "Over the whole project, whatever the filters." }),
        })
        .openapi("FlakinessList"),
      "Test cases.",
    ),
    ...nativeErrors(400, 401, 403, 404),
  },
});

export const flakinessRoutes = surfaceApp().openapi(listRoute, async (c) => {
  const q = c.req.valid("query");
  const page = await listFlakiness(coreContext(c), c.req.valid("param").id, {
    page: pageOf(q),
    minScore: q.min_score,
    quarantined: q.quarantined,
    includeInsufficient: q.include_insufficient,
  });
  const { summary } = page;
  return c.json(
    { ...nativeList(page, itemOut), summary: { flaky_tests: summary.flakyTests, quarantined_tests: summary.quarantinedTests, average_score: summary.averageScore } },
    200,
  );
});
