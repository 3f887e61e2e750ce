import { z } from "@hono/zod-openapi";
import { systemClock } from "../../core/context";
import { INVITATION_STATUSES, EMAIL_MAX_LENGTH, type Invitation, acceptInvitation, createInvitation, getInvitation } from "../../core/users/invitations";
import { type Member, changeMemberRole, listMembers, removeMember } from "../../core/users/members";
import { PASSWORD_MAX_LENGTH } from "../../core/users/passwords";
import { MEMBER_ROLES } from "../../db/schema";
import { createDb } from "../../db/client";
import { sha256Hex } from "../../lib/crypto";
import { NativePageQuery, nativeList, nativeListSchema, pageOf } from "../../http/pagination";
import { limitLogin } from "../../http/rate-limit";
import { defineRoute } from "../../http/routes";
import { nativeErrors } from "../errors-openapi";
import { Id, IdParam, Name, Timestamp } from "../fields";
import { coreContext, jsonBody, jsonResponse, surfaceApp } from "../shared";
import { baseUrlOf } from "./artifacts";
import { UserSchema, userOut } from "./auth";

const tags = ["native: users"];

const Role = z.enum(MEMBER_ROLES);

export const MemberSchema = z
  .object({
    id: z.string().openapi({ example: "mem_01JD3W6Q8X4N2B7R5T9V0YHZKM", description: "The membership's id." }),
    user_id: z.string(),
    organization_id: z.string(),
    role: Role,
    name: z.string().nullable(),
    email: z.string(),
    avatar_url: z.string().nullable(),
    joined_at: Timestamp,
  })
  .openapi("Member");

const InvitationSchema = z
  .object({
    id: z.string().openapi({ example: "inv_01JD3W6Q8X4N2B7R5T9V0YHZKM" }),
    organization_id: z.string(),
    email: z.string(),
    role: Role,
    status: z.enum(INVITATION_STATUSES).openapi({ description: "expired: still pending 7 days after it was made." }),
    invited_by: z.string().nullable().openapi({ description: "The user who invited (or the key, when no user made it)." }),
    expires_at: Timestamp,
    accepted_at: Timestamp.nullable(),
    created_at: Timestamp,
  })
  .openapi("Invitation");

const IssuedInvitationSchema = InvitationSchema.extend({
  token: z.string().openapi({ description: "Shown only here; stored as its SHA-256." }),
  accept_url: z.string().openapi({
    description: "The link to hand the invitee (Greenlight sends no e-mail; the invitation.created event carries it for a webhook).",
  }),
}).openapi("IssuedInvitation");

const InvitationPreviewSchema = z
  .object({
    id: z.string(),
    organization_id: z.string(),
    organization_name: z.string(),
    email: z.string(),
    role: Role,
    status: z.enum(INVITATION_STATUSES),
    expires_at: Timestamp,
    created_at: Timestamp,
  })
  .openapi("InvitationPreview");

const AcceptedInvitationSchema = z.object({ member: MemberSchema, user: UserSchema }).openapi("AcceptedInvitation");

const CreateInvitationBody = z
  .object({
    email: z.string().max(EMAIL_MAX_LENGTH).openapi({ example: "newmember@example.com" }),
    role: Role.openapi({ description: "admin, member or viewer; owner only by an owner. An admin invites members and viewers." }),
  })
  .openapi("CreateInvitation");

const UpdateMemberBody = z
  .object({ role: Role.openapi({ description: "An admin may set member or viewer, on members and viewers; an owner anything." }) })
  .openapi("UpdateMember");

const AcceptInvitationBody = z
  .object({
    password: z.string().min(1).max(PASSWORD_MAX_LENGTH).openapi({
      description: "A new user's password (at least 10 characters), or, when the e-mail already has a user, that user's password.",
    }),
    name: Name.nullable().optional().openapi({ description: "A new user's name; ignored for an existing user." }),
  })
  .openapi("AcceptInvitation");

const MemberParams = z.object({
  id: Id.openapi({ param: { name: "id", in: "path" } }),
  member_id: Id.openapi({ param: { name: "member_id", in: "path" } }),
});

const TokenParam = z.object({ token: z.string().min(1).max(200).openapi({ param: { name: "token", in: "path" } }) });

export function memberOut(m: Member): z.infer<typeof MemberSchema> {
  return {
    id: m.id,
    user_id: m.userId,
    organization_id: m.organizationId,
    role: m.role,
    name: m.name,
    email: m.email,
    avatar_url: m.avatarUrl,
    joined_at: m.joinedAt,
  };
}

function invitationOut(i: Invitation): z.infer<typeof InvitationSchema> {
  return {
    id: i.id,
    organization_id: i.organizationId,
    email: i.email,
    role: i.role,
    status: i.status,
    invited_by: i.invitedBy,
    expires_at: i.expiresAt,
    accepted_at: i.acceptedAt,
    created_at: i.createdAt,
  };
}

const listRoute = defineRoute({ scope: "members:read" }, {
  method: "get",
  path: "/organizations/{id}/members",
  operationId: "listMembers",
  tags,
  summary: "List an organization's members, in the order they joined",
  request: { params: IdParam, query: NativePageQuery },
  responses: { 200: jsonResponse(nativeListSchema(MemberSchema, "MemberList"), "Members."), ...nativeErrors(400, 401, 403, 404) },
});

const updateRoute = defineRoute({ scope: "members:write" }, {
  method: "patch",
  path: "/organizations/{id}/members/{member_id}",
  operationId: "updateMember",
  tags,
  summary: "Change a member's role",
  description:
    "Owners change anyone's role; admins only members' and viewers', to member or viewer. The last owner cannot be demoted (409). A key no user created acts as an owner; a key a user created, with that user's role.",
  request: { params: MemberParams, body: jsonBody(UpdateMemberBody) },
  responses: { 200: jsonResponse(MemberSchema, "The member."), ...nativeErrors(400, 401, 403, 404, 409, 413, 415) },
});

const deleteRoute = defineRoute({ scope: "members:write" }, {
  method: "delete",
  path: "/organizations/{id}/members/{member_id}",
  operationId: "removeMember",
  tags,
  summary: "Remove a member (their sessions in the organization end; keys they made stop working)",
  description: "Owners remove anyone; admins only members and viewers. The last owner cannot be removed (409).",
  request: { params: MemberParams },
  responses: { 204: { description: "Removed." }, ...nativeErrors(401, 403, 404, 409) },
});

const inviteRoute = defineRoute(
  { scope: "members:write" },
  {
    method: "post",
    path: "/organizations/{id}/invitations",
    operationId: "createInvitation",
    tags,
    summary: "Invite an e-mail address with a role; the accept link is returned, and carried by the invitation.created event",
    description:
      "Greenlight sends no e-mail: hand `accept_url` to the invitee, or let a webhook subscribed to `invitation.created` send it. The invitation expires after 7 days; a pending invitation of the same address is replaced.",
    request: { params: IdParam, body: jsonBody(CreateInvitationBody) },
    responses: {
      201: jsonResponse(IssuedInvitationSchema, "Invited; the token is shown only here."),
      ...nativeErrors(400, 401, 403, 404, 409, 413, 415, 422),
    },
  },
  { idempotent: true },
);

const previewRoute = defineRoute("public", {
  method: "get",
  path: "/invitations/{token}",
  operationId: "getInvitation",
  tags,
  summary: "What an invitation link offers: the organization, e-mail, role and status (no key: the token is the credential)",
  request: { params: TokenParam },
  responses: { 200: jsonResponse(InvitationPreviewSchema, "The invitation."), ...nativeErrors(404) },
});

const acceptRoute = defineRoute("public", {
  method: "post",
  path: "/invitations/{token}/accept",
  operationId: "acceptInvitation",
  tags,
  summary: "Accept an invitation: creates the user with a password, or adds the existing user (whose password it requires)",
  description:
    "An expired, already accepted or replaced invitation answers 409. A wrong password for an existing user answers 401. Attempts count against the e-mail address's sign-in limit (429).",
  request: { params: TokenParam, body: jsonBody(AcceptInvitationBody) },
  responses: {
    201: jsonResponse(AcceptedInvitationSchema, "Joined."),
    ...nativeErrors(400, 401, 404, 409, 413, 415, 429),
  },
});

export const memberRoutes = surfaceApp()
  .openapi(listRoute, async (c) => {
    const page = await listMembers(coreContext(c), c.req.valid("param").id, pageOf(c.req.valid("query")));
    return c.json(nativeList(page, memberOut), 200);
  })
  .openapi(updateRoute, async (c) => {
    const { id, member_id } = c.req.valid("param");
    return c.json(memberOut(await changeMemberRole(coreContext(c), id, member_id, c.req.valid("json").role)), 200);
  })
  .openapi(deleteRoute, async (c) => {
    const { id, member_id } = c.req.valid("param");
    await removeMember(coreContext(c), id, member_id);
    return c.body(null, 204);
  })
  .openapi(inviteRoute, async (c) => {
    const body = c.req.valid("json");
    const invitation = await createInvitation(coreContext(c), {
      organizationId: c.req.valid("param").id,
      email: body.email,
      role: body.role,
      baseUrl: baseUrlOf(c),
    });
    return c.json({ ...invitationOut(invitation), token: invitation.token, accept_url: invitation.acceptUrl }, 201);
  })
  .openapi(previewRoute, async (c) => {
    const i = await getInvitation(createDb(c.env.DB), systemClock, c.req.valid("param").token);
    return c.json(
      {
        id: i.id,
        organization_id: i.organizationId,
        organization_name: i.organizationName,
        email: i.email,
        role: i.role,
        status: i.status,
        expires_at: i.expiresAt,
        created_at: i.createdAt,
      },
      200,
    );
  })
  .openapi(acceptRoute, async (c) => {
    const db = createDb(c.env.DB);
    const { token } = c.req.valid("param");
    const body = c.req.valid("json");
    // Accepting as an existing user checks their password: it shares sign-in's per-address limit.
    const invitation = await getInvitation(db, systemClock, token);
    await limitLogin(c, await sha256Hex(invitation.email));
    const accepted = await acceptInvitation(db, systemClock, token, { password: body.password, name: body.name });
    return c.json({ member: memberOut(accepted.member), user: userOut(accepted.user) }, 201);
  });
