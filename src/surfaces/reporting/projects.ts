import { Id } from "../fields";
import {
  createProject,
  deleteProject,
  getProject,
  getProjectSettings,
  listProjects,
  updateProject,
  updateProjectSettings,
} from "../../core/projects/projects";
import { ReportingPageQuery, pageOf, reportingList, reportingListSchema } from "../../http/pagination";
import { defineRoute } from "../../http/routes";
import { reportingErrors } from "../errors-openapi";
import { coreContext, jsonBody, jsonResponse, surfaceApp } from "../shared";
import {
  IdParam,
  ReportingCreateProjectBody,
  ReportingProject,
  ReportingProjectUpdated,
  ReportingSettings,
  ReportingUpdateProjectBody,
  ReportingUpdateSettingsBody,
  SuccessMessage,
  projectOut,
  settingsOut,
} from "./schemas";

const tags = ["reporting: projects"];

const listRoute = defineRoute({ scope: "projects:read" }, {
  method: "get",
  path: "/projects",
  operationId: "reportingListProjects",
  tags,
  summary: "List the projects of a team",
  request: { query: ReportingPageQuery.extend({ teamId: Id }) },
  responses: {
    200: jsonResponse(reportingListSchema(ReportingProject, "ReportingProjectList"), "Projects."),
    ...reportingErrors(400, 401, 403, 404),
  },
});

const createRouteDef = defineRoute(
  { scope: "projects:write" },
  {
    method: "post",
    path: "/projects",
    operationId: "reportingCreateProject",
    tags,
    summary: "Create a project within a team",
    request: { body: jsonBody(ReportingCreateProjectBody) },
    responses: { 201: jsonResponse(ReportingProject, "Created."), ...reportingErrors(400, 401, 403, 404, 413, 415, 422) },
  },
  { idempotent: true },
);

const getRoute = defineRoute({ scope: "projects:read" }, {
  method: "get",
  path: "/projects/{id}",
  operationId: "reportingGetProject",
  tags,
  summary: "Get a project",
  request: { params: IdParam },
  responses: { 200: jsonResponse(ReportingProject, "The project."), ...reportingErrors(401, 403, 404) },
});

const updateRoute = defineRoute({ scope: "projects:write" }, {
  method: "patch",
  path: "/projects/{id}",
  operationId: "reportingUpdateProject",
  tags,
  summary: "Update a project's name",
  request: { params: IdParam, body: jsonBody(ReportingUpdateProjectBody) },
  responses: { 200: jsonResponse(ReportingProjectUpdated, "Updated."), ...reportingErrors(400, 401, 403, 404, 413, 415) },
});

const deleteRoute = defineRoute({ scope: "projects:write" }, {
  method: "delete",
  path: "/projects/{id}",
  operationId: "reportingDeleteProject",
  tags,
  summary: "Delete a project and all its data",
  request: { params: IdParam },
  responses: { 200: jsonResponse(SuccessMessage, "Deleted."), ...reportingErrors(401, 403, 404) },
});

const getSettingsRoute = defineRoute({ scope: "projects:read" }, {
  method: "get",
  path: "/projects/{id}/settings",
  operationId: "reportingGetProjectSettings",
  tags,
  summary: "Get a project's settings",
  request: { params: IdParam },
  responses: { 200: jsonResponse(ReportingSettings, "The settings."), ...reportingErrors(401, 403, 404) },
});

const updateSettingsRoute = defineRoute({ scope: "settings:write" }, {
  method: "patch",
  path: "/projects/{id}/settings",
  operationId: "reportingUpdateProjectSettings",
  tags,
  summary: "Update project settings (only the provided fields)",
  request: { params: IdParam, body: jsonBody(ReportingUpdateSettingsBody) },
  responses: { 200: jsonResponse(ReportingSettings, "Updated."), ...reportingErrors(400, 401, 403, 404, 413, 415) },
});

export const reportingProjectRoutes = surfaceApp()
  .openapi(listRoute, async (c) => {
    const query = c.req.valid("query");
    const page = await listProjects(coreContext(c), { page: pageOf(query), organizationId: query.teamId });
    return c.json(reportingList(page, projectOut), 200);
  })
  .openapi(createRouteDef, async (c) => {
    const body = c.req.valid("json");
    const project = await createProject(coreContext(c), { name: body.name, organizationId: body.teamId });
    return c.json(projectOut(project), 201);
  })
  .openapi(getRoute, async (c) => {
    return c.json(projectOut(await getProject(coreContext(c), c.req.valid("param").id)), 200);
  })
  .openapi(updateRoute, async (c) => {
    const p = await updateProject(coreContext(c), c.req.valid("param").id, { name: c.req.valid("json").name });
    return c.json({ id: p.id, name: p.name, teamId: p.organizationId, updatedAt: p.updatedAt }, 200);
  })
  .openapi(deleteRoute, async (c) => {
    await deleteProject(coreContext(c), c.req.valid("param").id);
    return c.json({ success: true as const, message: "Project deleted successfully" }, 200);
  })
  .openapi(getSettingsRoute, async (c) => {
    return c.json(settingsOut(await getProjectSettings(coreContext(c), c.req.valid("param").id)), 200);
  })
  .openapi(updateSettingsRoute, async (c) => {
    const settings = await updateProjectSettings(coreContext(c), c.req.valid("param").id, c.req.valid("json"));
    return c.json(settingsOut(settings), 200);
  });
