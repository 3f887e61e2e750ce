import { suiteTree, upsertSuite } from "../../core/suites/suites";
import { defineRoute } from "../../http/routes";
import { reportingErrors } from "../errors-openapi";
import { coreContext, jsonBody, jsonResponse, surfaceApp } from "../shared";
import { ReportingCreateSuiteBody, ReportingSuiteQuery, ReportingTestSuite, ReportingTestSuiteTree, suiteOut, suiteTreeOut } from "./run-schemas";

const tags = ["reporting: test suites"];

const createRouteDef = defineRoute(
  { scope: "results:submit" },
  {
    method: "post",
    path: "/test-suites",
    operationId: "reportingCreateTestSuite",
    tags,
    summary: "Create or upsert a test suite (201 either way; the same title, file path and parent give the same id)",
    description:
      "A suite is identified within its run by its title, file path and parent suite. Posting one that exists answers 201 with the existing suite (same id and createdAt) and creates nothing.",
    request: { body: jsonBody(ReportingCreateSuiteBody) },
    responses: { 201: jsonResponse(ReportingTestSuite, "Created, or the existing suite."), ...reportingErrors(400, 401, 403, 404, 413, 415, 422) },
  },
  { idempotent: true },
);

const treeRoute = defineRoute({ scope: "testruns:read" }, {
  method: "get",
  path: "/test-suites",
  operationId: "reportingListTestSuites",
  tags,
  summary: "A run's test suites as a tree",
  request: { query: ReportingSuiteQuery },
  responses: { 200: jsonResponse(ReportingTestSuiteTree, "Root suites with their children."), ...reportingErrors(400, 401, 403, 404) },
});

export const reportingTestSuiteRoutes = surfaceApp()
  .openapi(createRouteDef, async (c) => {
    const body = c.req.valid("json");
    const suite = await upsertSuite(coreContext(c), {
      runId: body.runId,
      projectId: body.projectId,
      title: body.title,
      filePath: body.filePath,
      parentSuiteId: body.parentSuiteId,
    });
    return c.json(suiteOut(suite), 201);
  })
  .openapi(treeRoute, async (c) => {
    const { runId, projectId } = c.req.valid("query");
    return c.json({ data: suiteTreeOut(await suiteTree(coreContext(c), runId, projectId)) }, 200);
  });
