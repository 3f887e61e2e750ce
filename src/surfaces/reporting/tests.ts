import { Conflict } from "../../core/errors";
import { getResult, getResultSteps, listResults, recordResults, resultHistory } from "../../core/results/results";
import { ReportingPageQuery, pageOf, reportingList, reportingListSchema } from "../../http/pagination";
import { defineRoute } from "../../http/routes";
import { reportingErrors } from "../errors-openapi";
import { IdParam } from "../fields";
import { coreContext, jsonBody, jsonResponse, surfaceApp } from "../shared";
import {
  ReportingCreateTestBody,
  ReportingHistory,
  ReportingSteps,
  ReportingTest,
  ReportingTestCreated,
  ReportingTestQuery,
  ReportingTestSummary,
  historyEntryOut,
  testCreatedOut,
  testOut,
  testSummaryOut,
} from "./run-schemas";

const tags = ["reporting: tests"];

const createRouteDef = defineRoute(
  { scope: "results:submit" },
  {
    method: "post",
    path: "/tests",
    operationId: "reportingCreateTest",
    tags,
    summary: "Record a test result in a run",
    description:
      "A test has one result per run: posting it again (same file path and full title, or same automationId) replaces the result, keeping its id, unless the run already holds a later attempt, which answers 409.",
    request: { body: jsonBody(ReportingCreateTestBody) },
    responses: {
      201: jsonResponse(ReportingTestCreated, "Recorded."),
      ...reportingErrors(400, 401, 403, 404, 409, 413, 415, 422),
    },
  },
  { idempotent: true },
);

const listRoute = defineRoute({ scope: "results:read" }, {
  method: "get",
  path: "/tests",
  operationId: "reportingListTests",
  tags,
  summary: "List tests of a project or run, filtered by status or a search in the full title",
  request: { query: ReportingPageQuery.extend(ReportingTestQuery.shape) },
  responses: {
    200: jsonResponse(reportingListSchema(ReportingTestSummary, "ReportingTestList"), "Tests."),
    ...reportingErrors(400, 401, 403, 404),
  },
});

const getRouteDef = defineRoute({ scope: "results:read" }, {
  method: "get",
  path: "/tests/{id}",
  operationId: "reportingGetTest",
  tags,
  summary: "Get a test with its error, output and metadata",
  request: { params: IdParam },
  responses: { 200: jsonResponse(ReportingTest, "The test."), ...reportingErrors(401, 403, 404) },
});

const stepsRoute = defineRoute({ scope: "results:read" }, {
  method: "get",
  path: "/tests/{id}/steps",
  operationId: "reportingGetTestSteps",
  tags,
  summary: "Get a test's execution steps",
  request: { params: IdParam },
  responses: { 200: jsonResponse(ReportingSteps, "The steps, nested as reported."), ...reportingErrors(401, 403, 404) },
});

const historyRoute = defineRoute({ scope: "results:read" }, {
  method: "get",
  path: "/tests/{id}/history",
  operationId: "reportingGetTestHistory",
  tags,
  summary: "The last 20 executions of a test across runs, newest first",
  request: { params: IdParam },
  responses: { 200: jsonResponse(ReportingHistory, "History."), ...reportingErrors(401, 403, 404) },
});

export const reportingTestRoutes = surfaceApp()
  .openapi(createRouteDef, async (c) => {
    const { runId, projectId, ...input } = c.req.valid("json");
    const ctx = coreContext(c);
    const outcome = await recordResults(ctx, runId, [input], { projectId });
    const stored = outcome.stored[0];
    if (!stored) {
      throw new Conflict("The run already holds a later attempt of this test; this attempt was not recorded.", {
        run_id: runId,
        attempt: input.attempt ?? 1,
      });
    }
    return c.json(testCreatedOut(stored), 201);
  })
  .openapi(listRoute, async (c) => {
    const query = c.req.valid("query");
    const page = await listResults(coreContext(c), {
      page: pageOf(query),
      runId: query.runId,
      projectId: query.projectId,
      status: query.status,
      search: query.search,
    });
    return c.json(reportingList(page, testSummaryOut), 200);
  })
  .openapi(getRouteDef, async (c) => {
    return c.json(testOut(await getResult(coreContext(c), c.req.valid("param").id)), 200);
  })
  .openapi(stepsRoute, async (c) => {
    return c.json({ data: await getResultSteps(coreContext(c), c.req.valid("param").id) }, 200);
  })
  .openapi(historyRoute, async (c) => {
    const history = await resultHistory(coreContext(c), c.req.valid("param").id);
    return c.json({ data: history.items.map(historyEntryOut), total: history.total }, 200);
  });
