import { forgetKeys } from "../keys/principal-cache";
import { and, asc, count, eq, sql, type SQL } from "drizzle-orm";
import type { Db } from "../../db/client";
import { batchAll } from "../../db/batch";
import { type MemberRole, memberships, organizations, users } from "../../db/schema";
import { newId } from "../../lib/ids";
import { type CoreContext, type Principal, nowIso, requireScope } from "../context";
import { Conflict, Forbidden, NotFound } from "../errors";
import { type Organization, listOrganizations, toOrganization } from "../orgs/organizations";
import type { PageRequest, Paged } from "../pagination";

/** A user's place in an organization (a team member, on the reporting surface). */
export interface Member {
  /** The membership's id. */
  id: string;
  userId: string;
  organizationId: string;
  role: MemberRole;
  name: string | null;
  email: string;
  avatarUrl: string | null;
  joinedAt: string;
}

const RANK: Record<MemberRole, number> = { viewer: 0, member: 1, admin: 2, owner: 3 };

/** Who manages members, and as which role. */
export interface MemberActor {
  /** Null: the caller has no role in the organization (a key whose user has left it). */
  role: MemberRole | null;
}

/**
 * The role a caller manages members with. A session, and a key a user created, act with that
 * user's current role. A key no user created descends from the deployment's bootstrap key
 * (POST /admin/organizations, or a key made with it by another key): that is the organization's
 * owner credential, so it acts as an owner. Its scopes still have to include members:write.
 */
export function actorOf(principal: Principal): MemberActor {
  if (principal.userId) return { role: principal.role ?? null };
  return { role: "owner" };
}

/**
 * The one rule for changing, removing and inviting members. An owner manages everyone, owners
 * included. An admin manages only the roles below admin (member, viewer), and can grant at most
 * member. Nobody else manages members. `targetRole` is the member's current role (or, for an
 * invitation, the role offered); `newRole` the role a change would give. The last owner of an
 * organization is protected separately (assertNotLastOwner), since that needs the data.
 */
export function canManage(actor: MemberActor, targetRole: MemberRole, newRole?: MemberRole): boolean {
  if (actor.role === "owner") return true;
  if (actor.role !== "admin") return false;
  const belowAdmin = (role: MemberRole) => RANK[role] < RANK.admin;
  return belowAdmin(targetRole) && (newRole === undefined || belowAdmin(newRole));
}

/** canManage, as the error a caller gets when it says no. */
export function assertCanManage(principal: Principal, targetRole: MemberRole, newRole?: MemberRole): void {
  if (principal.projectId) {
    throw new Forbidden("A key restricted to one project cannot manage the organization's members.", { reason: "project_key" });
  }
  const actor = actorOf(principal);
  if (canManage(actor, targetRole, newRole)) return;
  if (actor.role === "admin") {
    throw new Forbidden("An admin manages members and viewers only; admins and owners are managed by an owner.", {
      reason: "role_too_high",
      actor_role: actor.role,
    });
  }
  throw new Forbidden("Only the organization's owners and admins manage its members.", { reason: "not_a_manager", actor_role: actor.role });
}

/** The caller's own organization is the only one it can address: another id is "not found". */
export function assertOwnOrganization(principal: Principal, organizationId: string): void {
  if (organizationId !== principal.organizationId) throw new NotFound("Organization", { id: organizationId });
}

const memberColumns = {
  id: memberships.id,
  userId: memberships.userId,
  organizationId: memberships.organizationId,
  role: memberships.role,
  name: users.name,
  email: users.email,
  avatarUrl: users.avatarUrl,
  joinedAt: memberships.createdAt,
};

function toMember(row: { role: string } & Omit<Member, "role">): Member {
  return { ...row, role: row.role as MemberRole };
}

/** One member of one organization, with the user's details; undefined when not there. */
export async function findMember(db: Db, organizationId: string, memberId: string): Promise<Member | undefined> {
  const row = await db
    .select(memberColumns)
    .from(memberships)
    .innerJoin(users, eq(users.id, memberships.userId))
    .where(and(eq(memberships.id, memberId), eq(memberships.organizationId, organizationId)))
    .get();
  return row ? toMember(row) : undefined;
}

async function readMember(ctx: CoreContext, memberId: string): Promise<Member> {
  const member = await findMember(ctx.db, ctx.principal.organizationId, memberId);
  if (!member) throw new NotFound("Member", { id: memberId });
  return member;
}

/** The members of the caller's organization, in the order they joined. */
export async function listMembers(ctx: CoreContext, organizationId: string, page: PageRequest): Promise<Paged<Member>> {
  requireScope(ctx.principal, "members:read");
  assertOwnOrganization(ctx.principal, organizationId);
  const where = eq(memberships.organizationId, ctx.principal.organizationId);
  const [totalRows, rows] = await ctx.db.batch([
    ctx.db.select({ total: count() }).from(memberships).where(where),
    ctx.db
      .select(memberColumns)
      .from(memberships)
      .innerJoin(users, eq(users.id, memberships.userId))
      .where(where)
      .orderBy(asc(memberships.number))
      .limit(page.limit)
      .offset(page.offset),
  ]);
  return { items: rows.map(toMember), total: totalRows[0]?.total ?? 0, ...page };
}

/**
 * SQL that holds unless the membership being changed is its organization's only owner. Written
 * into the UPDATE or DELETE itself, so two owners demoting each other at once cannot both succeed.
 */
function keepsAnOwner(organizationId: string): SQL {
  return sql`(${memberships.role} <> 'owner' OR (SELECT count(*) FROM memberships o WHERE o.organization_id = ${organizationId} AND o.role = 'owner') > 1)`;
}

function lastOwner(memberId: string, change: "removed" | "demoted"): Conflict {
  return new Conflict(`The last owner of an organization cannot be ${change}; make another member an owner first.`, {
    reason: "last_owner",
    member_id: memberId,
  });
}

/** Changes a member's role, by canManage; the last owner keeps theirs (409). */
export async function changeMemberRole(ctx: CoreContext, organizationId: string, memberId: string, role: MemberRole): Promise<Member> {
  requireScope(ctx.principal, "members:write");
  assertOwnOrganization(ctx.principal, organizationId);
  const current = await readMember(ctx, memberId);
  assertCanManage(ctx.principal, current.role, role);
  if (current.role === role) return current;
  const orgId = ctx.principal.organizationId;
  const updated = await ctx.db
    .update(memberships)
    .set({ role, updatedAt: nowIso(ctx.clock) })
    .where(and(eq(memberships.id, memberId), eq(memberships.organizationId, orgId), role === "owner" ? undefined : keepsAnOwner(orgId)))
    .returning({ id: memberships.id })
    .get();
  forgetKeys();
  if (!updated) {
    if (!(await findMember(ctx.db, orgId, memberId))) throw new NotFound("Member", { id: memberId });
    throw lastOwner(memberId, "demoted");
  }
  return readMember(ctx, memberId);
}

/**
 * Removes a member, by canManage; the last owner stays (409). Their sessions in the organization
 * are revoked with the removal, so a later re-invitation does not bring an old cookie back. Keys
 * they created lose every scope at once (a key is capped by its creator's current role).
 */
export async function removeMember(ctx: CoreContext, organizationId: string, memberId: string): Promise<void> {
  requireScope(ctx.principal, "members:write");
  assertOwnOrganization(ctx.principal, organizationId);
  const current = await readMember(ctx, memberId);
  assertCanManage(ctx.principal, current.role);
  const orgId = ctx.principal.organizationId;
  const now = nowIso(ctx.clock);
  const [deleted] = await batchAll(ctx.db, [
    ctx.db
      .delete(memberships)
      .where(and(eq(memberships.id, memberId), eq(memberships.organizationId, orgId), keepsAnOwner(orgId)))
      .returning({ id: memberships.id }),
    sql`UPDATE sessions SET revoked_at = ${now}
      WHERE user_id = ${current.userId} AND organization_id = ${orgId} AND revoked_at IS NULL
        AND NOT EXISTS (SELECT 1 FROM memberships WHERE id = ${memberId})`,
  ]);
  forgetKeys();
  if (!deleted?.results.length) {
    if (!(await findMember(ctx.db, orgId, memberId))) throw new NotFound("Member", { id: memberId });
    throw lastOwner(memberId, "removed");
  }
}

/**
 * Creates an organization (a team) whose owner is the calling user: the session's user, or the
 * user who created the key. A key no user created has nobody to make the owner (403). The
 * organization and the owner's membership are one batch; each statement requires the one before.
 */
export async function createTeam(ctx: CoreContext, input: { name: string }): Promise<Organization> {
  requireScope(ctx.principal, "projects:read");
  const userId = ctx.principal.userId;
  const noUser = () =>
    new Forbidden("Creating a team needs a user, who becomes its Owner: sign in, or use an API key that a user created.", { reason: "no_user" });
  if (!userId) throw noUser();
  const now = nowIso(ctx.clock);
  const orgId = newId("org");
  await batchAll(ctx.db, [
    sql`INSERT INTO organizations (id, name, created_at, updated_at)
      SELECT ${orgId}, ${input.name}, ${now}, ${now} WHERE EXISTS (SELECT 1 FROM users WHERE id = ${userId})`,
    sql`INSERT INTO memberships (id, organization_id, user_id, role, created_at, updated_at)
      SELECT ${newId("mem")}, ${orgId}, ${userId}, 'owner', ${now}, ${now} WHERE EXISTS (SELECT 1 FROM organizations WHERE id = ${orgId})`,
  ]);
  const row = await ctx.db
    .select({ organization: organizations })
    .from(organizations)
    .innerJoin(memberships, and(eq(memberships.organizationId, organizations.id), eq(memberships.userId, userId)))
    .where(eq(organizations.id, orgId))
    .get();
  if (!row) throw noUser();
  return toOrganization(row.organization);
}

/**
 * The teams of the caller. A signed-in user belongs to every organization they are a member of
 * (reference 003: "all teams the authenticated user belongs to"), though the session acts in one.
 * A key belongs to exactly one organization, whoever made it, so it lists that one.
 */
export async function listTeams(ctx: CoreContext, page: PageRequest): Promise<Paged<Organization>> {
  requireScope(ctx.principal, "projects:read");
  const userId = ctx.principal.userId;
  if (!ctx.principal.sessionId || !userId) return listOrganizations(ctx, page);
  const where = eq(memberships.userId, userId);
  const [totalRows, rows] = await ctx.db.batch([
    ctx.db.select({ total: count() }).from(memberships).where(where),
    ctx.db
      .select({ organization: organizations })
      .from(memberships)
      .innerJoin(organizations, eq(organizations.id, memberships.organizationId))
      .where(where)
      .orderBy(asc(organizations.number))
      .limit(page.limit)
      .offset(page.offset),
  ]);
  return { items: rows.map((r) => toOrganization(r.organization)), total: totalRows[0]?.total ?? 0, ...page };
}
