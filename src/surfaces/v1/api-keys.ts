import {
  createApiKey,
  deleteApiKey,
  getApiKey,
  listApiKeys,
  rotateApiKey,
  updateApiKey,
} from "../../core/keys/api-keys";
import { NativePageQuery, nativeList, nativeListSchema, pageOf } from "../../http/pagination";
import { defineRoute } from "../../http/routes";
import { nativeErrors } from "../errors-openapi";
import { coreContext, jsonBody, jsonResponse, surfaceApp } from "../shared";
import {
  ApiKeySchema,
  CreateApiKeyBody,
  IdParam,
  IssuedApiKeySchema,
  UpdateApiKeyBody,
  apiKeyOut,
  issuedApiKeyOut,
} from "./schemas";

const tags = ["native: api keys"];

const listRoute = defineRoute({ scope: "keys:read" }, {
  method: "get",
  path: "/api-keys",
  operationId: "listApiKeys",
  tags,
  summary: "List API keys (masked)",
  request: { query: NativePageQuery },
  responses: {
    200: jsonResponse(nativeListSchema(ApiKeySchema, "ApiKeyList"), "Keys visible to the calling key."),
    ...nativeErrors(400, 401, 403),
  },
});

const createRouteDef = defineRoute(
  { scope: "keys:write" },
  {
    method: "post",
    path: "/api-keys",
    operationId: "createApiKey",
    tags,
    summary: "Create an API key (the full key is returned once)",
    request: { body: jsonBody(CreateApiKeyBody) },
    responses: {
      201: jsonResponse(IssuedApiKeySchema, "Created; `key` is shown only here."),
      ...nativeErrors(400, 401, 403, 404, 413, 415, 422),
    },
  },
  { idempotent: true },
);

const getRoute = defineRoute({ scope: "keys:read" }, {
  method: "get",
  path: "/api-keys/{id}",
  operationId: "getApiKey",
  tags,
  summary: "Get an API key (masked)",
  request: { params: IdParam },
  responses: { 200: jsonResponse(ApiKeySchema, "The key."), ...nativeErrors(401, 403, 404) },
});

const updateRoute = defineRoute({ scope: "keys:write" }, {
  method: "patch",
  path: "/api-keys/{id}",
  operationId: "updateApiKey",
  tags,
  summary: "Rename, deactivate/reactivate, re-scope or change the expiry of a key",
  request: { params: IdParam, body: jsonBody(UpdateApiKeyBody) },
  responses: { 200: jsonResponse(ApiKeySchema, "Updated."), ...nativeErrors(400, 401, 403, 404, 413, 415) },
});

const deleteRoute = defineRoute({ scope: "keys:write" }, {
  method: "delete",
  path: "/api-keys/{id}",
  operationId: "deleteApiKey",
  tags,
  summary: "Delete an API key",
  request: { params: IdParam },
  responses: { 204: { description: "Deleted." }, ...nativeErrors(401, 403, 404) },
});

const rotateRoute = defineRoute(
  { scope: "keys:write" },
  {
    method: "post",
    path: "/api-keys/{id}/rotate",
    operationId: "rotateApiKey",
    tags,
    summary: "Replace a key's secret; the old secret stops working at once",
    request: { params: IdParam },
    responses: {
      200: jsonResponse(IssuedApiKeySchema, "The new secret, shown only here."),
      ...nativeErrors(401, 403, 404, 409, 422),
    },
  },
  { idempotent: true },
);

export const apiKeyRoutes = surfaceApp()
  .openapi(listRoute, async (c) => {
    const page = await listApiKeys(coreContext(c), { page: pageOf(c.req.valid("query")) });
    return c.json(nativeList(page, apiKeyOut), 200);
  })
  .openapi(createRouteDef, async (c) => {
    const body = c.req.valid("json");
    const key = await createApiKey(coreContext(c), {
      name: body.name,
      projectId: body.project_id,
      scopes: body.scopes,
      expiresAt: body.expires_at,
    });
    return c.json(issuedApiKeyOut(key), 201);
  })
  .openapi(getRoute, async (c) => {
    return c.json(apiKeyOut(await getApiKey(coreContext(c), c.req.valid("param").id)), 200);
  })
  .openapi(updateRoute, async (c) => {
    const body = c.req.valid("json");
    const key = await updateApiKey(coreContext(c), c.req.valid("param").id, {
      name: body.name,
      isActive: body.is_active,
      scopes: body.scopes,
      expiresAt: body.expires_at,
    });
    return c.json(apiKeyOut(key), 200);
  })
  .openapi(deleteRoute, async (c) => {
    await deleteApiKey(coreContext(c), c.req.valid("param").id);
    return c.body(null, 204);
  })
  .openapi(rotateRoute, async (c) => {
    return c.json(issuedApiKeyOut(await rotateApiKey(coreContext(c), c.req.valid("param").id)), 200);
  });
