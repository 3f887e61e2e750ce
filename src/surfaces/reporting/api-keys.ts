import { Id } from "../fields";
import { createApiKey, listApiKeys, updateApiKey } from "../../core/keys/api-keys";
import { ReportingPageQuery, pageOf, reportingList, reportingListSchema } from "../../http/pagination";
import { defineRoute } from "../../http/routes";
import { reportingErrors } from "../errors-openapi";
import { coreContext, jsonBody, jsonResponse, surfaceApp } from "../shared";
import {
  IdParam,
  ReportingApiKey,
  ReportingApiKeyUpdated,
  ReportingCreateApiKeyBody,
  ReportingIssuedApiKey,
  ReportingUpdateApiKeyBody,
  apiKeyOut,
  issuedApiKeyOut,
} from "./schemas";

const tags = ["reporting: api keys"];

const listRoute = defineRoute({ scope: "keys:read" }, {
  method: "get",
  path: "/api-keys",
  operationId: "reportingListApiKeys",
  tags,
  summary: "List a project's API keys (masked)",
  request: { query: ReportingPageQuery.extend({ projectId: Id }) },
  responses: {
    200: jsonResponse(reportingListSchema(ReportingApiKey, "ReportingApiKeyList"), "Keys."),
    ...reportingErrors(400, 401, 403, 404),
  },
});

const createRouteDef = defineRoute(
  { scope: "keys:write" },
  {
    method: "post",
    path: "/api-keys",
    operationId: "reportingCreateApiKey",
    tags,
    summary: "Generate an API key for a project (shown once)",
    request: { body: jsonBody(ReportingCreateApiKeyBody) },
    responses: {
      201: jsonResponse(ReportingIssuedApiKey, "Created; `key` is shown only here."),
      ...reportingErrors(400, 401, 403, 404, 413, 415, 422),
    },
  },
  { idempotent: true },
);

const updateRoute = defineRoute({ scope: "keys:write" }, {
  method: "patch",
  path: "/api-keys/{id}",
  operationId: "reportingUpdateApiKey",
  tags,
  summary: "Deactivate or reactivate an API key",
  request: { params: IdParam, body: jsonBody(ReportingUpdateApiKeyBody) },
  responses: { 200: jsonResponse(ReportingApiKeyUpdated, "Updated."), ...reportingErrors(400, 401, 403, 404, 413, 415) },
});

export const reportingApiKeyRoutes = surfaceApp()
  .openapi(listRoute, async (c) => {
    const query = c.req.valid("query");
    const page = await listApiKeys(coreContext(c), { page: pageOf(query), projectId: query.projectId });
    return c.json(reportingList(page, apiKeyOut), 200);
  })
  .openapi(createRouteDef, async (c) => {
    const body = c.req.valid("json");
    const key = await createApiKey(coreContext(c), {
      name: body.name,
      projectId: body.projectId,
      expiresAt: body.expiresAt,
    });
    return c.json(issuedApiKeyOut(key), 201);
  })
  .openapi(updateRoute, async (c) => {
    const key = await updateApiKey(coreContext(c), c.req.valid("param").id, { isActive: c.req.valid("json").isActive });
    return c.json({ id: key.id, name: key.name, isActive: key.isActive, updatedAt: key.updatedAt }, 200);
  });
