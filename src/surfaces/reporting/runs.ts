import { createRun, deleteRun, getRun, listRuns, updateRun } from "../../core/runs/runs";
import { ReportingPageQuery, pageOf, reportingList, reportingListSchema } from "../../http/pagination";
import { defineRoute } from "../../http/routes";
import { reportingErrors } from "../errors-openapi";
import { IdParam } from "../fields";
import { coreContext, jsonBody, jsonResponse, surfaceApp } from "../shared";
import {
  ReportingCreateRunBody,
  ReportingRunQuery,
  ReportingTestRun,
  ReportingTestRunSummary,
  ReportingTestRunUpdated,
  ReportingUpdateRunBody,
  runOut,
  runSummaryOut,
  runUpdatedOut,
} from "./run-schemas";
import { SuccessMessage } from "./schemas";

const tags = ["reporting: runs"];

const createRouteDef = defineRoute(
  { scope: "testruns:create" },
  {
    method: "post",
    path: "/runs",
    operationId: "reportingCreateRun",
    tags,
    summary: "Create a test run (a shard of a known CI build joins its run)",
    description:
      "Shards of one CI build (same projectId, ciBuildId and runTitle, shardTotal > 1) all land on one run: each answers with that run's id.",
    request: { body: jsonBody(ReportingCreateRunBody) },
    responses: { 201: jsonResponse(ReportingTestRun, "Created."), ...reportingErrors(400, 401, 403, 404, 413, 415, 422) },
  },
  { idempotent: true },
);

const listRoute = defineRoute({ scope: "testruns:read" }, {
  method: "get",
  path: "/runs",
  operationId: "reportingListRuns",
  tags,
  summary: "List a project's test runs, newest first",
  request: { query: ReportingPageQuery.extend(ReportingRunQuery.shape) },
  responses: {
    200: jsonResponse(reportingListSchema(ReportingTestRunSummary, "ReportingTestRunList"), "Runs."),
    ...reportingErrors(400, 401, 403, 404),
  },
});

const getRouteDef = defineRoute({ scope: "testruns:read" }, {
  method: "get",
  path: "/runs/{id}",
  operationId: "reportingGetRun",
  tags,
  summary: "Get a test run with all its metadata and counts",
  request: { params: IdParam },
  responses: { 200: jsonResponse(ReportingTestRun, "The run."), ...reportingErrors(401, 403, 404) },
});

const updateRouteDef = defineRoute({ scope: "testruns:create" }, {
  method: "patch",
  path: "/runs/{id}",
  operationId: "reportingUpdateRun",
  tags,
  summary: "Update a run's status and statistics",
  description: "Counts sent here are the run's headline counts from then on; the counts derived from its tests stay on GET as derivedCounts.",
  request: { params: IdParam, body: jsonBody(ReportingUpdateRunBody) },
  responses: { 200: jsonResponse(ReportingTestRunUpdated, "Updated."), ...reportingErrors(400, 401, 403, 404, 413, 415) },
});

const deleteRouteDef = defineRoute({ scope: "testruns:create" }, {
  method: "delete",
  path: "/runs/{id}",
  operationId: "reportingDeleteRun",
  tags,
  summary: "Delete a run with its tests, suites and artifacts (idempotent: a run already gone answers the same)",
  request: { params: IdParam },
  responses: { 200: jsonResponse(SuccessMessage, "Deleted."), ...reportingErrors(401, 403) },
});

export const reportingRunRoutes = surfaceApp()
  .openapi(createRouteDef, async (c) => {
    const run = await createRun(coreContext(c), c.req.valid("json"));
    return c.json(runOut(run), 201);
  })
  .openapi(listRoute, async (c) => {
    const query = c.req.valid("query");
    const page = await listRuns(coreContext(c), { page: pageOf(query), projectId: query.projectId, status: query.status, branch: query.branch });
    return c.json(reportingList(page, runSummaryOut), 200);
  })
  .openapi(getRouteDef, async (c) => {
    return c.json(runOut(await getRun(coreContext(c), c.req.valid("param").id)), 200);
  })
  .openapi(updateRouteDef, async (c) => {
    const { status, shardCurrent, duration, ...counts } = c.req.valid("json");
    const run = await updateRun(coreContext(c), c.req.valid("param").id, { status, shardCurrent, reported: { ...counts, duration } });
    return c.json(runUpdatedOut(run), 200);
  })
  .openapi(deleteRouteDef, async (c) => {
    await deleteRun(coreContext(c), c.req.valid("param").id);
    return c.json({ success: true as const, message: "Run deleted successfully" }, 200);
  });
