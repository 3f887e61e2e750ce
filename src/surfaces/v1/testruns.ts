import { listResults, recordResults } from "../../core/results/results";
import { createRun, deleteRun, getRun, listRuns, updateRun } from "../../core/runs/runs";
import { suiteTree } from "../../core/suites/suites";
import { NativePageQuery, nativeList, nativeListSchema, pageOf } from "../../http/pagination";
import { defineRoute } from "../../http/routes";
import { nativeErrors } from "../errors-openapi";
import { coreContext, jsonBody, jsonResponse, surfaceApp } from "../shared";
import {
  CreateTestRunBody,
  ResultListQuery,
  ResultSummarySchema,
  RunListQuery,
  SubmissionSchema,
  SubmitResultsBody,
  SuiteTreeSchema,
  TestRunSchema,
  UpdateTestRunBody,
  resultInputOf,
  runInputOf,
  resultSummaryOut,
  suiteNodeOut,
  testRunOut,
} from "./run-schemas";
import { IdParam } from "./schemas";

const tags = ["native: test runs"];

const listRoute = defineRoute({ scope: "testruns:read" }, {
  method: "get",
  path: "/testruns",
  operationId: "listTestRuns",
  tags,
  summary: "List test runs, newest first",
  request: { query: NativePageQuery.extend(RunListQuery.shape) },
  responses: { 200: jsonResponse(nativeListSchema(TestRunSchema, "TestRunList"), "Runs."), ...nativeErrors(400, 401, 403) },
});

const createRouteDef = defineRoute(
  { scope: "testruns:create" },
  {
    method: "post",
    path: "/testruns",
    operationId: "createTestRun",
    tags,
    summary: "Create a test run (or register a shard with its run)",
    request: { body: jsonBody(CreateTestRunBody) },
    responses: { 201: jsonResponse(TestRunSchema, "The run."), ...nativeErrors(400, 401, 403, 404, 413, 415, 422) },
  },
  { idempotent: true },
);

const getRoute = defineRoute({ scope: "testruns:read" }, {
  method: "get",
  path: "/testruns/{id}",
  operationId: "getTestRun",
  tags,
  summary: "Get a test run with its (merged) counts",
  request: { params: IdParam },
  responses: { 200: jsonResponse(TestRunSchema, "The run."), ...nativeErrors(401, 403, 404) },
});

const updateRoute = defineRoute({ scope: "testruns:create" }, {
  method: "patch",
  path: "/testruns/{id}",
  operationId: "updateTestRun",
  tags,
  summary: "Update a run's status, metadata or reported counts",
  request: { params: IdParam, body: jsonBody(UpdateTestRunBody) },
  responses: { 200: jsonResponse(TestRunSchema, "Updated."), ...nativeErrors(400, 401, 403, 404, 413, 415) },
});

const deleteRoute = defineRoute({ scope: "testruns:create" }, {
  method: "delete",
  path: "/testruns/{id}",
  operationId: "deleteTestRun",
  tags,
  summary: "Delete a run with its results, suites and stored output (idempotent)",
  request: { params: IdParam },
  responses: { 204: { description: "Deleted, or already gone." }, ...nativeErrors(401, 403) },
});

const listResultsRoute = defineRoute({ scope: "results:read" }, {
  method: "get",
  path: "/testruns/{id}/results",
  operationId: "listTestRunResults",
  tags,
  summary: "List a run's results in reporting order",
  request: { params: IdParam, query: NativePageQuery.extend(ResultListQuery.shape) },
  responses: { 200: jsonResponse(nativeListSchema(ResultSummarySchema, "ResultList"), "Results."), ...nativeErrors(400, 401, 403, 404) },
});

const submitRoute = defineRoute(
  { scope: "results:submit" },
  {
    method: "post",
    path: "/testruns/{id}/results",
    operationId: "submitTestRunResults",
    tags,
    summary: "Submit up to 1,000 results to a run",
    description:
      "A test has one result per run: reporting it again replaces the result unless the run already holds a later attempt. Counts are recomputed in the same transaction.",
    request: { params: IdParam, body: jsonBody(SubmitResultsBody) },
    responses: { 201: jsonResponse(SubmissionSchema, "Stored."), ...nativeErrors(400, 401, 403, 404, 413, 415, 422) },
  },
  { idempotent: true },
);

const suitesRoute = defineRoute({ scope: "testruns:read" }, {
  method: "get",
  path: "/testruns/{id}/suites",
  operationId: "getTestRunSuites",
  tags,
  summary: "A run's suites as a tree",
  request: { params: IdParam },
  responses: { 200: jsonResponse(SuiteTreeSchema, "The suite tree."), ...nativeErrors(401, 403, 404) },
});

export const testRunRoutes = surfaceApp()
  .openapi(listRoute, async (c) => {
    const q = c.req.valid("query");
    const page = await listRuns(coreContext(c), {
      page: pageOf(q),
      projectId: q.project_id,
      status: q.status,
      branch: q.branch,
      ciBuildId: q.ci_build_id,
    });
    return c.json(nativeList(page, testRunOut), 200);
  })
  .openapi(createRouteDef, async (c) => {
    const b = c.req.valid("json");
    const run = await createRun(coreContext(c), { ...runInputOf(b), status: b.status });
    return c.json(testRunOut(run), 201);
  })
  .openapi(getRoute, async (c) => c.json(testRunOut(await getRun(coreContext(c), c.req.valid("param").id)), 200))
  .openapi(updateRoute, async (c) => {
    const b = c.req.valid("json");
    const run = await updateRun(coreContext(c), c.req.valid("param").id, {
      ...runInputOf(b),
      status: b.status,
      reported: {
        totalTests: b.total_tests,
        passedTests: b.passed_tests,
        failedTests: b.failed_tests,
        skippedTests: b.skipped_tests,
        flakyTests: b.flaky_tests,
        duration: b.duration,
      },
    });
    return c.json(testRunOut(run), 200);
  })
  .openapi(deleteRoute, async (c) => {
    await deleteRun(coreContext(c), c.req.valid("param").id);
    return c.body(null, 204);
  })
  .openapi(listResultsRoute, async (c) => {
    const q = c.req.valid("query");
    const page = await listResults(coreContext(c), { page: pageOf(q), runId: c.req.valid("param").id, status: q.status, search: q.search });
    return c.json(nativeList(page, resultSummaryOut), 200);
  })
  .openapi(submitRoute, async (c) => {
    const body = c.req.valid("json");
    const outcome = await recordResults(coreContext(c), c.req.valid("param").id, body.results.map(resultInputOf));
    return c.json(
      {
        run: testRunOut(outcome.run),
        accepted: body.results.length,
        superseded: outcome.superseded,
        results: outcome.stored.map((r) => ({ id: r.id, test_case_id: r.testCaseId, full_title: r.fullTitle, status: r.status })),
      },
      201,
    );
  })
  .openapi(suitesRoute, async (c) => {
    const tree = await suiteTree(coreContext(c), c.req.valid("param").id);
    return c.json({ data: tree.map(suiteNodeOut) }, 200);
  });
