import { listOrganizations } from "../../core/orgs/organizations";
import { ReportingPageQuery, pageOf, reportingList, reportingListSchema } from "../../http/pagination";
import { defineRoute } from "../../http/routes";
import { reportingErrors } from "../errors-openapi";
import { coreContext, jsonResponse, surfaceApp } from "../shared";
import { ReportingTeam, teamOut } from "./schemas";

/** A team is an organization: a key belongs to exactly one, so the list holds that one. */
const listRoute = defineRoute({ scope: "projects:read" }, {
  method: "get",
  path: "/teams",
  operationId: "reportingListTeams",
  tags: ["reporting: teams"],
  summary: "List the teams the key belongs to",
  request: { query: ReportingPageQuery },
  responses: {
    200: jsonResponse(reportingListSchema(ReportingTeam, "ReportingTeamList"), "Teams."),
    ...reportingErrors(400, 401, 403),
  },
});

export const reportingTeamRoutes = surfaceApp().openapi(listRoute, async (c) => {
  const page = await listOrganizations(coreContext(c), pageOf(c.req.valid("query")));
  return c.json(reportingList(page, teamOut), 200);
});
