import {
  createProject,
  deleteProject,
  getProject,
  getProjectSettings,
  listProjects,
  updateProject,
  updateProjectSettings,
} from "../../core/projects/projects";
import { NativePageQuery, nativeList, nativeListSchema, pageOf } from "../../http/pagination";
import { defineRoute } from "../../http/routes";
import { nativeErrors } from "../errors-openapi";
import { coreContext, jsonBody, jsonResponse, surfaceApp } from "../shared";
import {
  CreateProjectBody,
  IdParam,
  ProjectSchema,
  ProjectSettingsSchema,
  UpdateProjectBody,
  UpdateProjectSettingsBody,
  projectOut,
  settingsOut,
} from "./schemas";

const tags = ["native: projects"];

const listRoute = defineRoute({ scope: "projects:read" }, {
  method: "get",
  path: "/projects",
  operationId: "listProjects",
  tags,
  summary: "List projects",
  request: { query: NativePageQuery },
  responses: {
    200: jsonResponse(nativeListSchema(ProjectSchema, "ProjectList"), "Projects visible to the key."),
    ...nativeErrors(400, 401, 403),
  },
});

const createRouteDef = defineRoute(
  { scope: "projects:write" },
  {
    method: "post",
    path: "/projects",
    operationId: "createProject",
    tags,
    summary: "Create a project",
    request: { body: jsonBody(CreateProjectBody) },
    responses: { 201: jsonResponse(ProjectSchema, "Created."), ...nativeErrors(400, 401, 403, 413, 415, 422) },
  },
  { idempotent: true },
);

const getRoute = defineRoute({ scope: "projects:read" }, {
  method: "get",
  path: "/projects/{id}",
  operationId: "getProject",
  tags,
  summary: "Get a project",
  request: { params: IdParam },
  responses: { 200: jsonResponse(ProjectSchema, "The project."), ...nativeErrors(401, 403, 404) },
});

const updateRoute = defineRoute({ scope: "projects:write" }, {
  method: "patch",
  path: "/projects/{id}",
  operationId: "updateProject",
  tags,
  summary: "Update a project",
  request: { params: IdParam, body: jsonBody(UpdateProjectBody) },
  responses: { 200: jsonResponse(ProjectSchema, "Updated."), ...nativeErrors(400, 401, 403, 404, 413, 415) },
});

const deleteRoute = defineRoute({ scope: "projects:write" }, {
  method: "delete",
  path: "/projects/{id}",
  operationId: "deleteProject",
  tags,
  summary: "Delete a project and everything in it",
  request: { params: IdParam },
  responses: { 204: { description: "Deleted." }, ...nativeErrors(401, 403, 404) },
});

const getSettingsRoute = defineRoute({ scope: "projects:read" }, {
  method: "get",
  path: "/projects/{id}/settings",
  operationId: "getProjectSettings",
  tags,
  summary: "Get a project's settings",
  request: { params: IdParam },
  responses: { 200: jsonResponse(ProjectSettingsSchema, "The settings."), ...nativeErrors(401, 403, 404) },
});

const updateSettingsRoute = defineRoute({ scope: "settings:write" }, {
  method: "patch",
  path: "/projects/{id}/settings",
  operationId: "updateProjectSettings",
  tags,
  summary: "Update a project's settings (only the fields given)",
  request: { params: IdParam, body: jsonBody(UpdateProjectSettingsBody) },
  responses: { 200: jsonResponse(ProjectSettingsSchema, "Updated."), ...nativeErrors(400, 401, 403, 404, 413, 415) },
});

export const projectRoutes = surfaceApp()
  .openapi(listRoute, async (c) => {
    const page = await listProjects(coreContext(c), { page: pageOf(c.req.valid("query")) });
    return c.json(nativeList(page, projectOut), 200);
  })
  .openapi(createRouteDef, async (c) => {
    const body = c.req.valid("json");
    const project = await createProject(coreContext(c), { name: body.name, description: body.description });
    return c.json(projectOut(project), 201);
  })
  .openapi(getRoute, async (c) => {
    return c.json(projectOut(await getProject(coreContext(c), c.req.valid("param").id)), 200);
  })
  .openapi(updateRoute, async (c) => {
    const project = await updateProject(coreContext(c), c.req.valid("param").id, c.req.valid("json"));
    return c.json(projectOut(project), 200);
  })
  .openapi(deleteRoute, async (c) => {
    await deleteProject(coreContext(c), c.req.valid("param").id);
    return c.body(null, 204);
  })
  .openapi(getSettingsRoute, async (c) => {
    return c.json(settingsOut(await getProjectSettings(coreContext(c), c.req.valid("param").id)), 200);
  })
  .openapi(updateSettingsRoute, async (c) => {
    const body = c.req.valid("json");
    const settings = await updateProjectSettings(coreContext(c), c.req.valid("param").id, {
      dataRetentionDays: body.data_retention_days,
      flakinessThreshold: body.flakiness_threshold,
      autoQuarantineEnabled: body.auto_quarantine_enabled,
      flakinessWindow: body.flakiness_window,
      flakinessMinSamples: body.flakiness_min_samples,
      quarantineRecoveryDays: body.quarantine_recovery_days,
      quarantineRecoveryRuns: body.quarantine_recovery_runs,
    });
    return c.json(settingsOut(settings), 200);
  });
