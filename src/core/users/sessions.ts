import { and, asc, eq, isNull, sql } from "drizzle-orm";
import type { Db } from "../../db/client";
import { type MemberRole, memberships, organizations, sessions, users, type UserRow } from "../../db/schema";
import { randomHex, sha256Hex } from "../../lib/crypto";
import { newId } from "../../lib/ids";
import { type Clock, type CoreContext, type Principal, nowIso } from "../context";
import { Unauthorized } from "../errors";
import { ROLE_SCOPES } from "../keys/scopes";
import { DECOY_HASH, verifyPassword } from "./passwords";

/** Our own cookie; `sb-access-token` (reference 003) is accepted too. */
export const SESSION_COOKIE = "greenlight_session";
export const SESSION_COOKIES = [SESSION_COOKIE, "sb-access-token"] as const;
export const SESSION_TTL_SECONDS = 14 * 24 * 60 * 60;
const TOKEN_PREFIX = "gls_";

export function normalizeEmail(email: string): string {
  return email.trim().toLowerCase();
}

export interface SessionUser {
  id: string;
  email: string;
  name: string | null;
  avatarUrl: string | null;
  createdAt: string;
}

export function toUser(row: UserRow): SessionUser {
  return { id: row.id, email: row.email, name: row.name, avatarUrl: row.avatarUrl, createdAt: row.createdAt };
}

export interface LoginOutcome {
  token: string;
  expiresAt: string;
  user: SessionUser;
  organizationId: string;
  role: MemberRole;
}

const INVALID = "Invalid email or password.";

/**
 * Signs a user in: checks the password (against a decoy hash when the e-mail names nobody, so
 * both failures take as long and say the same), then opens a session in the organization named,
 * or the user's first. The token is returned once; only its SHA-256 is stored.
 */
export async function login(
  db: Db,
  clock: Clock,
  input: { email: string; password: string; organizationId?: string },
): Promise<LoginOutcome> {
  const email = normalizeEmail(input.email);
  const user = await db.select().from(users).where(eq(users.email, email)).get();
  const ok = await verifyPassword(input.password, user ? { hash: user.passwordHash, salt: user.passwordSalt, iterations: user.passwordIterations } : DECOY_HASH);
  if (!user || !ok) throw new Unauthorized(INVALID, { reason: "invalid_credentials" });
  const membership = await db
    .select({ organizationId: memberships.organizationId, role: memberships.role })
    .from(memberships)
    .where(and(eq(memberships.userId, user.id), input.organizationId ? eq(memberships.organizationId, input.organizationId) : undefined))
    .orderBy(asc(memberships.number))
    .get();
  // A user of no organization (or not of the one named) cannot act anywhere: the same answer.
  if (!membership) throw new Unauthorized(INVALID, { reason: "invalid_credentials" });
  const token = `${TOKEN_PREFIX}${randomHex(32)}`;
  const now = nowIso(clock);
  const expiresAt = new Date(Date.parse(now) + SESSION_TTL_SECONDS * 1000).toISOString();
  await db.insert(sessions).values({
    id: newId("ses"),
    tokenHash: await sha256Hex(token),
    userId: user.id,
    organizationId: membership.organizationId,
    createdAt: now,
    expiresAt,
  });
  return { token, expiresAt, user: toUser(user), organizationId: membership.organizationId, role: membership.role as MemberRole };
}

/** The session token from the request's cookies, ours first. */
export function presentedSession(cookieHeader: string | null): string | null {
  if (!cookieHeader) return null;
  const cookies = new Map<string, string>();
  for (const part of cookieHeader.split(";")) {
    const at = part.indexOf("=");
    if (at > 0) cookies.set(part.slice(0, at).trim(), part.slice(at + 1).trim());
  }
  for (const name of SESSION_COOKIES) {
    const value = cookies.get(name);
    if (value) return decodeURIComponent(value);
  }
  return null;
}

/**
 * The principal of a live session: the user's current role in the session's organization decides
 * the scopes, by the same table as keys (ROLE_SCOPES), so a demotion takes effect on the next request.
 */
export async function authenticateSession(db: Db, token: string, clock: Clock): Promise<Principal> {
  if (!token.startsWith(TOKEN_PREFIX)) throw new Unauthorized("Invalid or expired session.", { reason: "invalid_session" });
  const row = await db
    .select({ sessionId: sessions.id, userId: sessions.userId, organizationId: sessions.organizationId, role: memberships.role, rateLimits: organizations.rateLimits })
    .from(sessions)
    .innerJoin(memberships, and(eq(memberships.userId, sessions.userId), eq(memberships.organizationId, sessions.organizationId)))
    .innerJoin(organizations, eq(organizations.id, sessions.organizationId))
    .where(and(eq(sessions.tokenHash, await sha256Hex(token)), isNull(sessions.revokedAt), sql`${sessions.expiresAt} > ${nowIso(clock)}`))
    .get();
  if (!row) throw new Unauthorized("Invalid or expired session.", { reason: "invalid_session" });
  return {
    keyId: row.userId,
    userId: row.userId,
    sessionId: row.sessionId,
    role: row.role as MemberRole,
    organizationId: row.organizationId,
    projectId: null,
    scopes: new Set(ROLE_SCOPES[row.role as MemberRole]),
    rateLimits: row.rateLimits ?? null,
  };
}

/** Ends the caller's session (a key has none to end). Idempotent. */
export async function logout(ctx: CoreContext): Promise<void> {
  if (!ctx.principal.sessionId) return;
  await ctx.db
    .update(sessions)
    .set({ revokedAt: nowIso(ctx.clock) })
    .where(and(eq(sessions.id, ctx.principal.sessionId), eq(sessions.userId, ctx.principal.userId!), isNull(sessions.revokedAt)));
}

/** Who is calling: the user and role behind a session, or the key (and its creator, if a user made it). */
export async function me(ctx: CoreContext): Promise<{ user: SessionUser | null; role: MemberRole | null; organizationId: string; keyId: string | null; scopes: string[] }> {
  const userId = ctx.principal.userId ?? null;
  const user = userId ? await ctx.db.select().from(users).where(eq(users.id, userId)).get() : undefined;
  return {
    user: user ? toUser(user) : null,
    role: ctx.principal.role ?? null,
    organizationId: ctx.principal.organizationId,
    keyId: ctx.principal.sessionId ? null : ctx.principal.keyId,
    scopes: [...ctx.principal.scopes].sort(),
  };
}
