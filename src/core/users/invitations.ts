import { and, eq, sql, type SQL } from "drizzle-orm";
import type { Db } from "../../db/client";
import { batchAll } from "../../db/batch";
import { type InvitationRow, type MemberRole, invitations, memberships, organizations, users } from "../../db/schema";
import { randomHex, sha256Hex } from "../../lib/crypto";
import { SQL_ID_TAIL, newId, sqlIdHead } from "../../lib/ids";
import { type Clock, type CoreContext, nowIso, requireScope } from "../context";
import { Conflict, Invalid, NotFound, Unauthorized } from "../errors";
import { type Member, assertCanManage, assertOwnOrganization, findMember } from "./members";
import { PASSWORD_MAX_LENGTH, PASSWORD_MIN_LENGTH, hashPassword, verifyPassword } from "./passwords";
import { type SessionUser, normalizeEmail, toUser } from "./sessions";

/** Reference 003: an invitation "expires after 7 days". */
export const INVITATION_TTL_MS = 7 * 24 * 60 * 60 * 1000;
export const INVITATION_STATUSES = ["pending", "accepted", "expired", "revoked"] as const;
export type InvitationStatus = (typeof INVITATION_STATUSES)[number];
export const INVITATION_CREATED_EVENT = "invitation.created";

const TOKEN_PREFIX = "gli_";
const TOKEN_SHAPE = /^gli_[0-9a-f]{64}$/;
const EMAIL_SHAPE = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;
export const EMAIL_MAX_LENGTH = 320;

export interface Invitation {
  id: string;
  organizationId: string;
  email: string;
  role: MemberRole;
  /** Expired is derived: a pending invitation past expiresAt. */
  status: InvitationStatus;
  /** The user (or, for a key no user made, the key) that invited. */
  invitedBy: string | null;
  expiresAt: string;
  acceptedAt: string | null;
  createdAt: string;
}

/** An invitation as its creator gets it, this once: the token is stored only as its SHA-256. */
export interface IssuedInvitation extends Invitation {
  token: string;
  acceptUrl: string;
}

/** What the holder of the link sees before accepting. */
export interface InvitationPreview extends Invitation {
  organizationName: string;
}

export interface AcceptedInvitation {
  member: Member;
  user: SessionUser;
  /** True when accepting created the user (false: an existing user joined). */
  userCreated: boolean;
}

function statusOf(row: Pick<InvitationRow, "status" | "expiresAt">, now: string): InvitationStatus {
  if (row.status === "pending" && row.expiresAt <= now) return "expired";
  return row.status as InvitationStatus;
}

function toInvitation(row: Omit<InvitationRow, "number">, now: string): Invitation {
  return {
    id: row.id,
    organizationId: row.organizationId,
    email: row.email,
    role: row.role as MemberRole,
    status: statusOf(row, now),
    invitedBy: row.invitedBy,
    expiresAt: row.expiresAt,
    acceptedAt: row.acceptedAt,
    createdAt: row.createdAt,
  };
}

/** The link an invitee accepts with; `baseUrl` is PUBLIC_BASE_URL or the request's origin. */
export function acceptUrlFor(baseUrl: string, token: string): string {
  return `${baseUrl.replace(/\/+$/, "")}/api/v1/invitations/${token}/accept`;
}

function checkEmail(email: string): string {
  const normalized = normalizeEmail(email);
  if (normalized.length > EMAIL_MAX_LENGTH || !EMAIL_SHAPE.test(normalized)) {
    throw Invalid.field("email", "invalid_value", "must be an e-mail address");
  }
  return normalized;
}

/**
 * Invites an e-mail address into the caller's organization with a role, by canManage (an admin
 * invites members and viewers, an owner anyone). A pending invitation of the same address is
 * replaced (revoked). The invitation, the replacement and the `invitation.created` event (which
 * carries the accept link, for a webhook to e-mail: Greenlight sends no mail) are one batch.
 */
export async function createInvitation(
  ctx: CoreContext,
  input: { organizationId: string; email: string; role: MemberRole; baseUrl: string },
): Promise<IssuedInvitation> {
  requireScope(ctx.principal, "members:write");
  assertOwnOrganization(ctx.principal, input.organizationId);
  assertCanManage(ctx.principal, input.role);
  const email = checkEmail(input.email);
  const orgId = ctx.principal.organizationId;
  const already = await ctx.db
    .select({ id: memberships.id })
    .from(memberships)
    .innerJoin(users, eq(users.id, memberships.userId))
    .where(and(eq(memberships.organizationId, orgId), eq(users.email, email)))
    .get();
  if (already) throw new Conflict("This e-mail address already belongs to a member of the organization.", { member_id: already.id });

  const now = nowIso(ctx.clock);
  const id = newId("inv");
  const token = `${TOKEN_PREFIX}${randomHex(32)}`;
  const acceptUrl = acceptUrlFor(input.baseUrl, token);
  const invitedBy = ctx.principal.userId ?? ctx.principal.keyId;
  const row = {
    id,
    organizationId: orgId,
    email,
    role: input.role,
    tokenHash: await sha256Hex(token),
    invitedBy,
    status: "pending",
    expiresAt: new Date(Date.parse(now) + INVITATION_TTL_MS).toISOString(),
    acceptedAt: null,
    createdAt: now,
  };
  await batchAll(ctx.db, [
    sql`UPDATE invitations SET status = 'revoked' WHERE organization_id = ${orgId} AND email = ${email} AND status = 'pending'`,
    ctx.db.insert(invitations).values(row),
    sql`INSERT INTO events (id, organization_id, project_id, type, subject_id, payload, created_at)
      SELECT ${sqlIdHead("evt", Date.parse(now))} || ${sql.raw(SQL_ID_TAIL)}, i.organization_id, NULL, ${INVITATION_CREATED_EVENT}, i.id,
        json_object('type', ${INVITATION_CREATED_EVENT}, 'invitation', json_object(
          'invitation_id', i.id, 'organization_id', i.organization_id, 'email', i.email, 'role', i.role,
          'expires_at', i.expires_at, 'accept_url', ${acceptUrl}, 'invited_by', i.invited_by)), ${now}
      FROM invitations i WHERE i.id = ${id} AND i.organization_id = ${orgId}`,
  ]);
  return { ...toInvitation(row, now), token, acceptUrl };
}

async function readByToken(db: Db, token: string): Promise<{ invitation: InvitationRow; organizationName: string }> {
  // A malformed token cannot name anything; it is answered like an unknown one, without a query.
  const row = TOKEN_SHAPE.test(token)
    ? await db
        .select({ invitation: invitations, organizationName: organizations.name })
        .from(invitations)
        .innerJoin(organizations, eq(organizations.id, invitations.organizationId))
        .where(eq(invitations.tokenHash, await sha256Hex(token)))
        .get()
    : undefined;
  if (!row) throw new NotFound("Invitation");
  return row;
}

/** What an invitation link offers (public: the token is the credential). Unknown tokens: 404. */
export async function getInvitation(db: Db, clock: Clock, token: string): Promise<InvitationPreview> {
  const { invitation, organizationName } = await readByToken(db, token);
  return { ...toInvitation(invitation, nowIso(clock)), organizationName };
}

function notAcceptable(status: InvitationStatus, expiresAt: string): Conflict | null {
  switch (status) {
    case "expired":
      return new Conflict("This invitation expired.", { reason: "expired", expires_at: expiresAt });
    case "accepted":
      return new Conflict("This invitation was already accepted.", { reason: "accepted" });
    case "revoked":
      return new Conflict("This invitation was replaced or withdrawn; ask for a new one.", { reason: "revoked" });
    case "pending":
      return null;
  }
}

/**
 * Accepts an invitation (public: the token is the credential). For an e-mail address nobody
 * uses yet, creates the user with the password given (at least PASSWORD_MIN_LENGTH characters);
 * for an existing user, requires that user's password, so a leaked link cannot attach someone's
 * account to another organization. The user, the membership and the invitation's change are one
 * batch, each statement guarded by the invitation still being pending and unexpired.
 */
export async function acceptInvitation(
  db: Db,
  clock: Clock,
  token: string,
  input: { password: string; name?: string | null },
): Promise<AcceptedInvitation> {
  const { invitation } = await readByToken(db, token);
  const now = nowIso(clock);
  const refusal = notAcceptable(statusOf(invitation, now), invitation.expiresAt);
  if (refusal) throw refusal;

  const existing = await db.select().from(users).where(eq(users.email, invitation.email)).get();
  const statements: SQL[] = [];
  let userId: string;
  if (existing) {
    const ok = await verifyPassword(input.password, { hash: existing.passwordHash, salt: existing.passwordSalt, iterations: existing.passwordIterations });
    if (!ok) throw new Unauthorized("Invalid email or password.", { reason: "invalid_credentials" });
    const member = await db
      .select({ id: memberships.id })
      .from(memberships)
      .where(and(eq(memberships.organizationId, invitation.organizationId), eq(memberships.userId, existing.id)))
      .get();
    if (member) throw new Conflict("This user is already a member of the organization.", { member_id: member.id });
    userId = existing.id;
  } else {
    if (input.password.length < PASSWORD_MIN_LENGTH) {
      throw Invalid.field("password", "too_short", `must be at least ${PASSWORD_MIN_LENGTH} characters`);
    }
    if (input.password.length > PASSWORD_MAX_LENGTH) {
      throw Invalid.field("password", "too_long", `must be at most ${PASSWORD_MAX_LENGTH} characters`);
    }
    const password = await hashPassword(input.password);
    userId = newId("usr");
    statements.push(sql`INSERT INTO users (id, email, name, avatar_url, password_hash, password_salt, password_iterations, created_at, updated_at)
      SELECT ${userId}, ${invitation.email}, ${input.name ?? null}, NULL, ${password.hash}, ${password.salt}, ${password.iterations}, ${now}, ${now}
      WHERE NOT EXISTS (SELECT 1 FROM users WHERE email = ${invitation.email})
        AND EXISTS (SELECT 1 FROM invitations WHERE id = ${invitation.id} AND status = 'pending' AND expires_at > ${now})`);
  }
  const memberId = newId("mem");
  statements.push(
    sql`INSERT INTO memberships (id, organization_id, user_id, role, created_at, updated_at)
      SELECT ${memberId}, i.organization_id, u.id, i.role, ${now}, ${now}
      FROM invitations i JOIN users u ON u.id = ${userId}
      WHERE i.id = ${invitation.id} AND i.status = 'pending' AND i.expires_at > ${now}
        AND NOT EXISTS (SELECT 1 FROM memberships m WHERE m.organization_id = i.organization_id AND m.user_id = u.id)`,
    sql`UPDATE invitations SET status = 'accepted', accepted_at = ${now}
      WHERE id = ${invitation.id} AND status = 'pending' AND EXISTS (SELECT 1 FROM memberships WHERE id = ${memberId})`,
  );
  await batchAll(db, statements);

  const member = await findMember(db, invitation.organizationId, memberId);
  const user = await db.select().from(users).where(eq(users.id, userId)).get();
  if (!member || !user) {
    // Another request accepted (or replaced) the invitation, or took the e-mail, in between.
    const { invitation: after } = await readByToken(db, token);
    throw notAcceptable(statusOf(after, now), after.expiresAt) ?? new Conflict("This invitation could not be accepted; open it again.");
  }
  return { member, user: toUser(user), userCreated: !existing };
}
