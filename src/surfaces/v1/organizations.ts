import { getOrganization, listOrganizations } from "../../core/orgs/organizations";
import { NativePageQuery, nativeList, nativeListSchema, pageOf } from "../../http/pagination";
import { defineRoute } from "../../http/routes";
import { nativeErrors } from "../errors-openapi";
import { coreContext, jsonResponse, surfaceApp } from "../shared";
import { IdParam, OrganizationSchema, organizationOut } from "./schemas";

const tags = ["native: organizations"];

const listRoute = defineRoute({ scope: "projects:read" }, {
  method: "get",
  path: "/organizations",
  operationId: "listOrganizations",
  tags,
  summary: "List organizations (the key's own)",
  request: { query: NativePageQuery },
  responses: {
    200: jsonResponse(nativeListSchema(OrganizationSchema, "OrganizationList"), "The key's organization."),
    ...nativeErrors(400, 401, 403),
  },
});

const getRoute = defineRoute({ scope: "projects:read" }, {
  method: "get",
  path: "/organizations/{id}",
  operationId: "getOrganization",
  tags,
  summary: "Get an organization",
  request: { params: IdParam },
  responses: { 200: jsonResponse(OrganizationSchema, "The organization."), ...nativeErrors(401, 403, 404) },
});

export const organizationRoutes = surfaceApp()
  .openapi(listRoute, async (c) => {
    const page = await listOrganizations(coreContext(c), pageOf(c.req.valid("query")));
    return c.json(nativeList(page, organizationOut), 200);
  })
  .openapi(getRoute, async (c) => {
    const org = await getOrganization(coreContext(c), c.req.valid("param").id);
    return c.json(organizationOut(org), 200);
  });
