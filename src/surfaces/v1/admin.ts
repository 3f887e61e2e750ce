import { createOrganization } from "../../core/orgs/organizations";
import { defineRoute } from "../../http/routes";
import { nativeErrors } from "../errors-openapi";
import { adminContext, jsonBody, jsonResponse, surfaceApp } from "../shared";
import {
  CreateOrganizationBody,
  CreatedOrganizationSchema,
  issuedApiKeyOut,
  organizationOut,
  projectOut,
} from "./schemas";

const createOrganizationRoute = defineRoute(
  "admin",
  {
    method: "post",
    path: "/admin/organizations",
    operationId: "adminCreateOrganization",
    tags: ["native: admin"],
    summary: "Create an organization, its first project and an owner key (ADMIN_TOKEN)",
    description:
      "How a self-hosted deployment gets its first tenant. The owner key is returned once and never again. Answers 404 when the deployment has no ADMIN_TOKEN.",
    request: { body: jsonBody(CreateOrganizationBody) },
    responses: {
      201: jsonResponse(CreatedOrganizationSchema, "Created; `api_key.key` is shown only here."),
      ...nativeErrors(400, 401, 404, 409, 413, 415, 422),
    },
  },
  { idempotent: true },
);

export const adminRoutes = surfaceApp().openapi(createOrganizationRoute, async (c) => {
  const body = c.req.valid("json");
  const created = await createOrganization(adminContext(c), { name: body.name, projectName: body.project_name });
  return c.json(
    {
      organization: organizationOut(created.organization),
      project: projectOut(created.project),
      api_key: issuedApiKeyOut(created.apiKey),
    },
    201,
  );
});
