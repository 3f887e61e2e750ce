import { z } from "@hono/zod-openapi";
import { DESCRIPTION_MAX_LENGTH } from "../../core/limits";
import {
  ENVIRONMENT_LIMITS,
  createContext,
  createEnvironment,
  listContexts,
  listEnvironments,
  type Environment,
  type ExecutionContext,
} from "../../core/plans/environments";
import { PLAN_LIMITS, createPlan, deletePlan, getPlan, listPlans, updatePlan, type TestPlan } from "../../core/plans/plans";
import { TEST_TYPES } from "../../db/schema";
import { NativePageQuery, nativeList, nativeListSchema, pageOf } from "../../http/pagination";
import { defineRoute } from "../../http/routes";
import { nativeErrors } from "../errors-openapi";
import { Id, IdParam, Label, Name, Text, Timestamp } from "../fields";
import { coreContext, jsonBody, jsonResponse, surfaceApp } from "../shared";

const planTags = ["native: test plans"];
const environmentTags = ["native: environments and contexts"];

const TestType = z.enum(TEST_TYPES).openapi({ description: "quickTest costs 1 credit per run, deepTest 3 (where credits are limited)." });

const PlanTags = z
  .record(z.string().min(1).max(PLAN_LIMITS.tagNameLength), z.array(z.string().max(PLAN_LIMITS.tagValueLength)).max(PLAN_LIMITS.tagValues))
  .openapi({
    description: `Tag name → values (at most ${PLAN_LIMITS.tags} tags): what the suite trigger's include/exclude selectors match.`,
    example: { platform: ["web"], priority: ["p0", "p1"] },
  });

const TestCaseIds = z
  .array(Id)
  .max(PLAN_LIMITS.testCaseIds)
  .openapi({ description: "Test cases of the plan's project; an id that is not one is refused with 400." });

const FilePatterns = z
  .array(z.string().min(1).max(PLAN_LIMITS.filePatternLength))
  .max(PLAN_LIMITS.filePatterns)
  .openapi({ example: ["tests/checkout/**/*.spec.ts"] });

const CookieInput = z
  .object({
    name: z.string().min(1).max(PLAN_LIMITS.cookieNameLength).openapi({ example: "session" }),
    value: z.string().max(PLAN_LIMITS.cookieValueLength).openapi({ example: "s3cr3t" }),
    domain: z.string().min(1).max(PLAN_LIMITS.cookieDomainLength).openapi({ example: "staging.example.com" }),
    path: z.string().max(PLAN_LIMITS.cookiePathLength).optional().openapi({ example: "/" }),
  })
  .openapi("PlanCookieInput");

const Cookies = z
  .array(CookieInput)
  .max(PLAN_LIMITS.cookies)
  .openapi({ description: "Injected into the plan's runs; stored encrypted and never returned (only names and domains are)." });

const CreateTestPlanBody = z
  .object({
    project_id: Id,
    name: Name.openapi({ example: "Checkout smoke" }),
    description: Text(DESCRIPTION_MAX_LENGTH).nullable().optional(),
    default_test_type: TestType.optional().openapi({ description: "quickTest when left out." }),
    tags: PlanTags.optional(),
    test_case_ids: TestCaseIds.optional(),
    file_patterns: FilePatterns.optional(),
    cookies: Cookies.optional(),
  })
  .openapi("CreateTestPlan");

const UpdateTestPlanBody = z
  .object({
    name: Name.optional(),
    description: Text(DESCRIPTION_MAX_LENGTH).nullable().optional(),
    default_test_type: TestType.optional(),
    tags: PlanTags.optional(),
    test_case_ids: TestCaseIds.optional(),
    file_patterns: FilePatterns.optional(),
    cookies: Cookies.nullable().optional().openapi({ description: "Replaces the stored cookies; null removes them." }),
  })
  .openapi("UpdateTestPlan");

const TestPlanSchema = z
  .object({
    id: z.string().openapi({ example: "plan_01JD3W6Q8X4N2B7R5T9V0YHZKM" }),
    number: z.number().int().openapi({ description: "Integer address (reference 002's testPlanId), unique per deployment, never reused." }),
    project_id: z.string(),
    name: z.string(),
    description: z.string().nullable(),
    default_test_type: TestType,
    tags: z.record(z.string(), z.array(z.string())),
    test_case_ids: z.array(z.string()),
    file_patterns: z.array(z.string()),
    cookies: z
      .array(z.object({ name: z.string(), domain: z.string(), path: z.string().nullable() }))
      .openapi({ description: "The stored cookies without their values." }),
    has_cookies: z.boolean(),
    created_at: Timestamp,
    updated_at: Timestamp,
  })
  .openapi("TestPlan");

const EnvironmentName = Label(ENVIRONMENT_LIMITS.nameLength).openapi({ description: "Unique in the project." });

const CreateEnvironmentBody = z
  .object({
    name: EnvironmentName.openapi({ example: "staging" }),
    base_url: z.string().max(ENVIRONMENT_LIMITS.baseUrlLength).nullable().optional().openapi({ example: "https://staging.example.com" }),
    variables: z
      .record(z.string().min(1).max(ENVIRONMENT_LIMITS.variableNameLength), z.string().max(ENVIRONMENT_LIMITS.variableValueLength))
      .optional()
      .openapi({ description: `At most ${ENVIRONMENT_LIMITS.variables} entries.`, example: { API_URL: "https://api.staging.example.com" } }),
  })
  .openapi("CreateEnvironment");

const EnvironmentSchema = z
  .object({
    id: z.string().openapi({ example: "env_01JD3W6Q8X4N2B7R5T9V0YHZKM" }),
    project_id: z.string(),
    name: z.string(),
    base_url: z.string().nullable(),
    variables: z.record(z.string(), z.string()),
    created_at: Timestamp,
    updated_at: Timestamp,
  })
  .openapi("Environment");

const CreateContextBody = z
  .object({
    name: EnvironmentName.openapi({ example: "logged-in-admin" }),
    data: z
      .record(z.string(), z.unknown())
      .optional()
      .openapi({ description: `A JSON object of at most ${ENVIRONMENT_LIMITS.contextDataBytes} bytes, handed to the runner.`, example: { role: "admin" } }),
  })
  .openapi("CreateExecutionContext");

const ContextSchema = z
  .object({
    id: z.string().openapi({ example: "ctx_01JD3W6Q8X4N2B7R5T9V0YHZKM" }),
    project_id: z.string(),
    name: z.string(),
    data: z.record(z.string(), z.unknown()),
    created_at: Timestamp,
    updated_at: Timestamp,
  })
  .openapi("ExecutionContext");

export function planOut(p: TestPlan): z.infer<typeof TestPlanSchema> {
  return {
    id: p.id,
    number: p.number,
    project_id: p.projectId,
    name: p.name,
    description: p.description,
    default_test_type: p.defaultTestType,
    tags: p.tags,
    test_case_ids: p.testCaseIds,
    file_patterns: p.filePatterns,
    cookies: p.cookies.map((c) => ({ name: c.name, domain: c.domain, path: c.path })),
    has_cookies: p.hasCookies,
    created_at: p.createdAt,
    updated_at: p.updatedAt,
  };
}

function environmentOut(e: Environment): z.infer<typeof EnvironmentSchema> {
  return { id: e.id, project_id: e.projectId, name: e.name, base_url: e.baseUrl, variables: e.variables, created_at: e.createdAt, updated_at: e.updatedAt };
}

function contextOut(x: ExecutionContext): z.infer<typeof ContextSchema> {
  return { id: x.id, project_id: x.projectId, name: x.name, data: x.data, created_at: x.createdAt, updated_at: x.updatedAt };
}

const listRoute = defineRoute({ scope: "plans:read" }, {
  method: "get",
  path: "/testplans",
  operationId: "listTestPlans",
  tags: planTags,
  summary: "List test plans, in number order",
  request: { query: NativePageQuery.extend({ project_id: Id.optional() }) },
  responses: { 200: jsonResponse(nativeListSchema(TestPlanSchema, "TestPlanList"), "Plans."), ...nativeErrors(400, 401, 403, 404) },
});

const createRoute = defineRoute(
  { scope: "projects:write" },
  {
    method: "post",
    path: "/testplans",
    operationId: "createTestPlan",
    tags: planTags,
    summary: "Create a test plan",
    request: { body: jsonBody(CreateTestPlanBody) },
    responses: { 201: jsonResponse(TestPlanSchema, "Created."), ...nativeErrors(400, 401, 403, 404, 413, 415, 422) },
  },
  { idempotent: true },
);

const getRoute = defineRoute({ scope: "plans:read" }, {
  method: "get",
  path: "/testplans/{id}",
  operationId: "getTestPlan",
  tags: planTags,
  summary: "Get a test plan (never its cookie values)",
  request: { params: IdParam },
  responses: { 200: jsonResponse(TestPlanSchema, "The plan."), ...nativeErrors(401, 403, 404) },
});

const updateRoute = defineRoute({ scope: "projects:write" }, {
  method: "patch",
  path: "/testplans/{id}",
  operationId: "updateTestPlan",
  tags: planTags,
  summary: "Change a test plan: the fields given",
  request: { params: IdParam, body: jsonBody(UpdateTestPlanBody) },
  responses: { 200: jsonResponse(TestPlanSchema, "The plan."), ...nativeErrors(400, 401, 403, 404, 413, 415) },
});

const deleteRoute = defineRoute({ scope: "projects:write" }, {
  method: "delete",
  path: "/testplans/{id}",
  operationId: "deleteTestPlan",
  tags: planTags,
  summary: "Delete a test plan (its past runs stay)",
  request: { params: IdParam },
  responses: { 204: { description: "Deleted." }, ...nativeErrors(401, 403, 404) },
});

const listEnvironmentsRoute = defineRoute({ scope: "plans:read" }, {
  method: "get",
  path: "/projects/{id}/environments",
  operationId: "listEnvironments",
  tags: environmentTags,
  summary: "List a project's environments, by name",
  request: { params: IdParam, query: NativePageQuery },
  responses: { 200: jsonResponse(nativeListSchema(EnvironmentSchema, "EnvironmentList"), "Environments."), ...nativeErrors(400, 401, 403, 404) },
});

const createEnvironmentRoute = defineRoute(
  { scope: "projects:write" },
  {
    method: "post",
    path: "/projects/{id}/environments",
    operationId: "createEnvironment",
    tags: environmentTags,
    summary: "Create a named environment (the suite trigger's env_name)",
    request: { params: IdParam, body: jsonBody(CreateEnvironmentBody) },
    responses: { 201: jsonResponse(EnvironmentSchema, "Created."), ...nativeErrors(400, 401, 403, 404, 409, 413, 415, 422) },
  },
  { idempotent: true },
);

const listContextsRoute = defineRoute({ scope: "plans:read" }, {
  method: "get",
  path: "/projects/{id}/contexts",
  operationId: "listExecutionContexts",
  tags: environmentTags,
  summary: "List a project's execution contexts, by name",
  request: { params: IdParam, query: NativePageQuery },
  responses: { 200: jsonResponse(nativeListSchema(ContextSchema, "ExecutionContextList"), "Contexts."), ...nativeErrors(400, 401, 403, 404) },
});

const createContextRoute = defineRoute(
  { scope: "projects:write" },
  {
    method: "post",
    path: "/projects/{id}/contexts",
    operationId: "createExecutionContext",
    tags: environmentTags,
    summary: "Create a named execution context (the suite trigger's context_name)",
    request: { params: IdParam, body: jsonBody(CreateContextBody) },
    responses: { 201: jsonResponse(ContextSchema, "Created."), ...nativeErrors(400, 401, 403, 404, 409, 413, 415, 422) },
  },
  { idempotent: true },
);

export const testPlanRoutes = surfaceApp()
  .openapi(listRoute, async (c) => {
    const q = c.req.valid("query");
    return c.json(nativeList(await listPlans(coreContext(c), { page: pageOf(q), projectId: q.project_id }), planOut), 200);
  })
  .openapi(createRoute, async (c) => {
    const b = c.req.valid("json");
    const plan = await createPlan(coreContext(c), {
      projectId: b.project_id,
      name: b.name,
      description: b.description,
      defaultTestType: b.default_test_type,
      tags: b.tags,
      testCaseIds: b.test_case_ids,
      filePatterns: b.file_patterns,
      cookies: b.cookies,
    });
    return c.json(planOut(plan), 201);
  })
  .openapi(getRoute, async (c) => c.json(planOut(await getPlan(coreContext(c), c.req.valid("param").id)), 200))
  .openapi(updateRoute, async (c) => {
    const b = c.req.valid("json");
    const plan = await updatePlan(coreContext(c), c.req.valid("param").id, {
      name: b.name,
      description: b.description,
      defaultTestType: b.default_test_type,
      tags: b.tags,
      testCaseIds: b.test_case_ids,
      filePatterns: b.file_patterns,
      cookies: b.cookies,
    });
    return c.json(planOut(plan), 200);
  })
  .openapi(deleteRoute, async (c) => {
    await deletePlan(coreContext(c), c.req.valid("param").id);
    return c.body(null, 204);
  })
  .openapi(listEnvironmentsRoute, async (c) => {
    const page = await listEnvironments(coreContext(c), c.req.valid("param").id, pageOf(c.req.valid("query")));
    return c.json(nativeList(page, environmentOut), 200);
  })
  .openapi(createEnvironmentRoute, async (c) => {
    const b = c.req.valid("json");
    const environment = await createEnvironment(coreContext(c), c.req.valid("param").id, { name: b.name, baseUrl: b.base_url, variables: b.variables });
    return c.json(environmentOut(environment), 201);
  })
  .openapi(listContextsRoute, async (c) => {
    const page = await listContexts(coreContext(c), c.req.valid("param").id, pageOf(c.req.valid("query")));
    return c.json(nativeList(page, contextOut), 200);
  })
  .openapi(createContextRoute, async (c) => {
    const b = c.req.valid("json");
    const context = await createContext(coreContext(c), c.req.valid("param").id, { name: b.name, data: b.data });
    return c.json(contextOut(context), 201);
  });
