import { z } from "@hono/zod-openapi";
import { EMAIL_MAX_LENGTH, INVITATION_STATUSES, createInvitation } from "../../core/users/invitations";
import { type Member, createTeam, listMembers, listTeams } from "../../core/users/members";
import { MEMBER_ROLES } from "../../db/schema";
import { ReportingPageQuery, pageOf, reportingList, reportingListSchema } from "../../http/pagination";
import { defineRoute } from "../../http/routes";
import { reportingErrors } from "../errors-openapi";
import { Id, Name, Timestamp } from "../fields";
import { coreContext, jsonBody, jsonResponse, surfaceApp } from "../shared";
import { baseUrlOf } from "../v1/artifacts";
import { ReportingTeam, teamOut } from "./schemas";

const tags = ["reporting: teams"];

const ReportingCreateTeamBody = z.object({ name: Name.openapi({ example: "QA Automation Team" }) }).openapi("ReportingCreateTeam");

const ReportingTeamMember = z
  .object({
    id: z.string().openapi({ description: "The membership's id." }),
    userId: z.string(),
    teamId: z.string(),
    role: z.enum(MEMBER_ROLES),
    name: z.string().nullable(),
    email: z.string(),
    avatarUrl: z.string().nullable(),
    joinedAt: Timestamp,
  })
  .openapi("ReportingTeamMember");

/** Reference 003 offers these three; an owner makes another owner with PATCH on the native surface. */
const INVITABLE_ROLES = ["admin", "member", "viewer"] as const;

const ReportingInviteBody = z
  .object({
    teamId: Id.openapi({ example: "org_01JD3W6Q8X4N2B7R5T9V0YHZKM" }),
    email: z.string().max(EMAIL_MAX_LENGTH).openapi({ example: "newmember@example.com" }),
    role: z.enum(INVITABLE_ROLES).openapi({ description: "admin, member or viewer; an admin invites members and viewers." }),
  })
  .openapi("ReportingInviteTeamMember");

const ReportingInvitation = z
  .object({
    id: z.string(),
    teamId: z.string(),
    email: z.string(),
    role: z.enum(MEMBER_ROLES),
    status: z.enum(INVITATION_STATUSES),
    expiresAt: Timestamp,
    createdAt: Timestamp,
    acceptUrl: z.string().openapi({
      description: "Greenlight's addition: Greenlight sends no e-mail, so the inviter (or a webhook on invitation.created) hands this link on.",
    }),
  })
  .openapi("ReportingInvitation");

function memberOut(m: Member): z.infer<typeof ReportingTeamMember> {
  return {
    id: m.id,
    userId: m.userId,
    teamId: m.organizationId,
    role: m.role,
    name: m.name,
    email: m.email,
    avatarUrl: m.avatarUrl,
    joinedAt: m.joinedAt,
  };
}

const listRoute = defineRoute({ scope: "projects:read" }, {
  method: "get",
  path: "/teams",
  operationId: "reportingListTeams",
  tags,
  summary: "List the teams the caller belongs to (a signed-in user's teams; a key's one team)",
  request: { query: ReportingPageQuery },
  responses: {
    200: jsonResponse(reportingListSchema(ReportingTeam, "ReportingTeamList"), "Teams."),
    ...reportingErrors(400, 401, 403),
  },
});

const createRoute = defineRoute(
  { scope: "projects:read" },
  {
    method: "post",
    path: "/teams",
    operationId: "reportingCreateTeam",
    tags,
    summary: "Create a team; the calling user becomes its Owner",
    description:
      "The caller is the signed-in user, or the user who created the key; a key no user created answers 403. A session keeps acting in its team: sign in with `organization_id` to act in the new one.",
    request: { body: jsonBody(ReportingCreateTeamBody) },
    responses: { 201: jsonResponse(ReportingTeam, "Created."), ...reportingErrors(400, 401, 403, 413, 415, 422) },
  },
  { idempotent: true },
);

const listMembersRoute = defineRoute({ scope: "members:read" }, {
  method: "get",
  path: "/team-members",
  operationId: "reportingListTeamMembers",
  tags,
  summary: "List a team's members with their roles",
  request: { query: ReportingPageQuery.extend({ teamId: Id }) },
  responses: {
    200: jsonResponse(reportingListSchema(ReportingTeamMember, "ReportingTeamMemberList"), "Members."),
    ...reportingErrors(400, 401, 403, 404),
  },
});

const inviteRoute = defineRoute(
  { scope: "members:write" },
  {
    method: "post",
    path: "/team-members",
    operationId: "reportingInviteTeamMember",
    tags,
    summary: "Invite someone to a team; the invitation expires after 7 days",
    description:
      "Greenlight sends no e-mail: the answer carries `acceptUrl`, and the invitation.created event carries it for a webhook to send.",
    request: { body: jsonBody(ReportingInviteBody) },
    responses: { 201: jsonResponse(ReportingInvitation, "Invited."), ...reportingErrors(400, 401, 403, 404, 409, 413, 415, 422) },
  },
  { idempotent: true },
);

export const reportingTeamRoutes = surfaceApp()
  .openapi(listRoute, async (c) => {
    const page = await listTeams(coreContext(c), pageOf(c.req.valid("query")));
    return c.json(reportingList(page, teamOut), 200);
  })
  .openapi(createRoute, async (c) => c.json(teamOut(await createTeam(coreContext(c), { name: c.req.valid("json").name })), 201))
  .openapi(listMembersRoute, async (c) => {
    const query = c.req.valid("query");
    const page = await listMembers(coreContext(c), query.teamId, pageOf(query));
    return c.json(reportingList(page, memberOut), 200);
  })
  .openapi(inviteRoute, async (c) => {
    const body = c.req.valid("json");
    const i = await createInvitation(coreContext(c), { organizationId: body.teamId, email: body.email, role: body.role, baseUrl: baseUrlOf(c) });
    return c.json(
      { id: i.id, teamId: i.organizationId, email: i.email, role: i.role, status: i.status, expiresAt: i.expiresAt, createdAt: i.createdAt, acceptUrl: i.acceptUrl },
      201,
    );
  });
