import { testCaseHistory } from "../../core/results/results";
import { setQuarantine } from "../../core/flakiness/quarantine";
import { Invalid } from "../../core/errors";
import { getTestCase, listTestCases, updateTestCase, upsertTestCases } from "../../core/testcases/testcases";
import { NativePageQuery, nativeList, nativeListSchema, pageOf } from "../../http/pagination";
import { defineRoute } from "../../http/routes";
import { nativeErrors } from "../errors-openapi";
import { coreContext, jsonBody, jsonResponse, surfaceApp } from "../shared";
import {
  HistorySchema,
  TestCaseListQuery,
  TestCaseSchema,
  UpdateTestCaseBody,
  UpsertTestCasesBody,
  UpsertedTestCasesSchema,
  historyOut,
  testCaseOut,
} from "./run-schemas";
import { IdParam } from "./schemas";

const tags = ["native: test cases"];

const listRoute = defineRoute({ scope: "results:read" }, {
  method: "get",
  path: "/projects/{id}/testcases",
  operationId: "listTestCases",
  tags,
  summary: "List a project's test cases (for automation-framework sync)",
  request: { params: IdParam, query: NativePageQuery.extend(TestCaseListQuery.shape) },
  responses: { 200: jsonResponse(nativeListSchema(TestCaseSchema, "TestCaseList"), "Test cases."), ...nativeErrors(400, 401, 403, 404) },
});

const upsertRoute = defineRoute(
  { scope: "results:submit" },
  {
    method: "post",
    path: "/projects/{id}/testcases",
    operationId: "upsertTestCases",
    tags,
    summary: "Create or update test cases by automation id (or file path + full title)",
    request: { params: IdParam, body: jsonBody(UpsertTestCasesBody) },
    responses: { 201: jsonResponse(UpsertedTestCasesSchema, "Stored."), ...nativeErrors(400, 401, 403, 404, 413, 415, 422) },
  },
  { idempotent: true },
);

const getRoute = defineRoute({ scope: "results:read" }, {
  method: "get",
  path: "/testcases/{id}",
  operationId: "getTestCase",
  tags,
  summary: "Get a test case",
  request: { params: IdParam },
  responses: { 200: jsonResponse(TestCaseSchema, "The test case."), ...nativeErrors(401, 403, 404) },
});

const updateRoute = defineRoute({ scope: "results:submit" }, {
  method: "patch",
  path: "/testcases/{id}",
  operationId: "updateTestCase",
  tags,
  summary: "Update a test case's title, description or tags",
  request: { params: IdParam, body: jsonBody(UpdateTestCaseBody) },
  responses: { 200: jsonResponse(TestCaseSchema, "Updated."), ...nativeErrors(400, 401, 403, 404, 413, 415) },
});

const historyRoute = defineRoute({ scope: "results:read" }, {
  method: "get",
  path: "/testcases/{id}/history",
  operationId: "getTestCaseHistory",
  tags,
  summary: "The last 20 executions of a test case, newest first, with branch and run",
  request: { params: IdParam },
  responses: { 200: jsonResponse(HistorySchema, "History."), ...nativeErrors(401, 403, 404) },
});

export const testCaseRoutes = surfaceApp()
  .openapi(listRoute, async (c) => {
    const q = c.req.valid("query");
    const page = await listTestCases(coreContext(c), c.req.valid("param").id, {
      page: pageOf(q),
      tag: q.tag,
      filePath: q.file,
      search: q.search,
    });
    return c.json(nativeList(page, testCaseOut), 200);
  })
  .openapi(upsertRoute, async (c) => {
    const stored = await upsertTestCases(
      coreContext(c),
      c.req.valid("param").id,
      c.req.valid("json").test_cases.map((t) => ({
        automationId: t.automation_id,
        title: t.title,
        fullTitle: t.full_title,
        filePath: t.file_path,
        lineNumber: t.line_number,
        description: t.description,
        tags: t.tags,
      })),
    );
    const created = stored.filter((s) => s.created).length;
    return c.json(
      { data: stored.map((s) => ({ ...testCaseOut(s.testCase), created: s.created })), created, updated: stored.length - created },
      201,
    );
  })
  .openapi(getRoute, async (c) => c.json(testCaseOut(await getTestCase(coreContext(c), c.req.valid("param").id)), 200))
  .openapi(updateRoute, async (c) => {
    const { is_quarantined, quarantine_reason, ...fields } = c.req.valid("json");
    // A reason belongs to a quarantine: alone, or with a release, it would be silently dropped.
    if (quarantine_reason !== undefined && quarantine_reason !== null && is_quarantined !== true) {
      throw Invalid.field("quarantine_reason", "invalid_value", "is only taken together with is_quarantined: true");
    }
    const ctx = coreContext(c);
    const id = c.req.valid("param").id;
    if (is_quarantined !== undefined) await setQuarantine(ctx, id, { quarantined: is_quarantined, reason: quarantine_reason });
    // The update answers the row as it stands, quarantine included.
    return c.json(testCaseOut(await updateTestCase(ctx, id, fields)), 200);
  })
  .openapi(historyRoute, async (c) => c.json(historyOut(await testCaseHistory(coreContext(c), c.req.valid("param").id)), 200));
