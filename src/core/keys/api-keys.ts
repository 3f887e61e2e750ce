import { and, asc, count, eq, isNull, lt, or, type SQL } from "drizzle-orm";
import type { Db } from "../../db/client";
import { apiKeys, memberships, organizations, projects, type ApiKeyRow } from "../../db/schema";
import { assertProjectVisible, visibleProjects } from "../projects/projects";
import { newId } from "../../lib/ids";
import { randomHex, sha256Hex, timingSafeEqualHex } from "../../lib/crypto";
import { type CoreContext, type Principal, type Clock, nowIso, requireScope } from "../context";
import { Forbidden, Invalid, NotFound, Unauthorized } from "../errors";
import type { PageRequest, Paged } from "../pagination";
import { ROLE_SCOPES, defaultScopesFor, type Role, type Scope } from "./scopes";
import type { RateLimitConfig } from "../rate-limits/limits";
import { cachedKey, forgetKeys, rememberKey } from "./principal-cache";

export const KEY_PREFIX = "gl_live_";
/** gl_live_ + at least 32 random bytes, as hex (ours) or base62 (accepted for imported keys). */
const KEY_PATTERN = /^gl_live_[0-9A-Za-z]{43,128}$/;
const LOOKUP_PREFIX_LENGTH = KEY_PREFIX.length + 8;
const LAST_USED_RESOLUTION_MS = 60_000;

export interface ApiKey {
  id: string;
  organizationId: string;
  projectId: string | null;
  name: string;
  scopes: string[];
  maskedKey: string;
  isActive: boolean;
  expiresAt: string | null;
  lastUsedAt: string | null;
  createdAt: string;
  updatedAt: string;
}

/** An API key together with its secret, which exists only in the response that creates it. */
export interface IssuedApiKey extends ApiKey {
  key: string;
}

export interface GeneratedSecret {
  key: string;
  keyHash: string;
  lookupPrefix: string;
  lastFour: string;
}

export async function generateSecret(): Promise<GeneratedSecret> {
  const key = KEY_PREFIX + randomHex(32);
  return {
    key,
    keyHash: await sha256Hex(key),
    lookupPrefix: key.slice(0, LOOKUP_PREFIX_LENGTH),
    lastFour: key.slice(-4),
  };
}

export function maskKey(lastFour: string): string {
  return `gl_****...****${lastFour}`;
}

export function toApiKey(row: ApiKeyRow): ApiKey {
  return {
    id: row.id,
    organizationId: row.organizationId,
    projectId: row.projectId,
    name: row.name,
    scopes: row.scopes,
    maskedKey: maskKey(row.lastFour),
    isActive: row.isActive,
    expiresAt: row.expiresAt,
    lastUsedAt: row.lastUsedAt,
    createdAt: row.createdAt,
    updatedAt: row.updatedAt,
  };
}

/**
 * Resolves a presented key to its principal. The lookup uses only the key's public prefix; the
 * full key is compared by hash in constant time. Every failure is a 401.
 */
export async function authenticateKey(db: Db, presented: string | null, clock: Clock, options: { cacheMs?: number } = {}): Promise<Principal> {
  if (!presented) {
    throw new Unauthorized(
      "Missing API key. Send it as 'Authorization: Bearer <key>', 'X-API-Key: <key>' or 'X-PANTO-API-KEY: <key>'.",
      { reason: "missing" },
    );
  }
  if (!KEY_PATTERN.test(presented)) throw new Unauthorized("Invalid API key.", { reason: "invalid" });

  const cacheMs = options.cacheMs ?? 0;
  const now = clock.now();
  const presentedHash = await sha256Hex(presented);
  const cached = cachedKey(presentedHash, now.getTime(), cacheMs);
  if (cached) {
    if (cached.expiresAt !== null && cached.expiresAt <= now.getTime()) {
      throw new Unauthorized("This API key has expired.", { reason: "expired" });
    }
    if (cached.lastUsedAt === null || now.getTime() - cached.lastUsedAt >= LAST_USED_RESOLUTION_MS) {
      await touchLastUsed(db, cached.principal.keyId, cached.lastUsedAt, now);
      cached.lastUsedAt = now.getTime();
    }
    return { ...cached.principal };
  }

  // The organization's rate limits come with the key: limiting needs no query of its own.
  const candidates = await db
    .select({ key: apiKeys, rateLimits: organizations.rateLimits, creatorRole: memberships.role })
    .from(apiKeys)
    .innerJoin(organizations, eq(organizations.id, apiKeys.organizationId))
    // The creator's current role caps the key: a key never does more than its user may.
    .leftJoin(memberships, and(eq(memberships.userId, apiKeys.createdByUserId), eq(memberships.organizationId, apiKeys.organizationId)))
    .where(eq(apiKeys.lookupPrefix, presented.slice(0, LOOKUP_PREFIX_LENGTH)))
    .all();
  let match: ApiKeyRow | undefined;
  let rateLimits: RateLimitConfig | null = null;
  let creatorRole: string | null = null;
  for (const candidate of candidates) {
    if (timingSafeEqualHex(candidate.key.keyHash, presentedHash)) {
      match = candidate.key;
      rateLimits = candidate.rateLimits ?? null;
      creatorRole = candidate.creatorRole ?? null;
    }
  }
  if (!match) throw new Unauthorized("Invalid API key.", { reason: "invalid" });
  if (!match.isActive) throw new Unauthorized("This API key is deactivated.", { reason: "inactive" });
  if (match.expiresAt && Date.parse(match.expiresAt) <= now.getTime()) {
    throw new Unauthorized("This API key has expired.", { reason: "expired" });
  }

  const lastUsedAt = match.lastUsedAt ? Date.parse(match.lastUsedAt) : null;
  const touched = lastUsedAt === null || now.getTime() - lastUsedAt >= LAST_USED_RESOLUTION_MS;
  if (touched) await touchLastUsed(db, match.id, lastUsedAt, now);
  // A key a user made holds at most that user's role now: demoted or removed, the key follows.
  const allowed = match.createdByUserId ? new Set<string>(creatorRole ? ROLE_SCOPES[creatorRole as Role] : []) : null;
  const principal: Principal = {
    keyId: match.id,
    organizationId: match.organizationId,
    projectId: match.projectId,
    scopes: new Set(allowed ? match.scopes.filter((scope) => allowed.has(scope)) : match.scopes),
    userId: match.createdByUserId,
    role: (creatorRole as Role | null) ?? null,
    rateLimits,
  };
  rememberKey(
    presentedHash,
    { principal, expiresAt: match.expiresAt ? Date.parse(match.expiresAt) : null, lastUsedAt: touched ? now.getTime() : lastUsedAt, cachedAt: now.getTime() },
    cacheMs,
  );
  return { ...principal };
}

/** Writes last_used_at at most once a minute per key, so a busy key does not write on every request. */
async function touchLastUsed(db: Db, keyId: string, lastUsedAt: number | null, now: Date): Promise<void> {
  if (lastUsedAt !== null && now.getTime() - lastUsedAt < LAST_USED_RESOLUTION_MS) return;
  const threshold = new Date(now.getTime() - LAST_USED_RESOLUTION_MS).toISOString();
  await db
    .update(apiKeys)
    .set({ lastUsedAt: now.toISOString() })
    .where(and(eq(apiKeys.id, keyId), or(isNull(apiKeys.lastUsedAt), lt(apiKeys.lastUsedAt, threshold))));
}

/** The SQL condition limiting api_keys to what the principal may see. */
function visibleKeys(principal: Principal): SQL {
  const inOrg = eq(apiKeys.organizationId, principal.organizationId);
  return principal.projectId ? and(inOrg, eq(apiKeys.projectId, principal.projectId))! : inOrg;
}

async function findVisibleKey(ctx: CoreContext, id: string): Promise<ApiKeyRow> {
  const row = await ctx.db.select().from(apiKeys).where(and(eq(apiKeys.id, id), visibleKeys(ctx.principal))).get();
  if (!row) throw new NotFound("API key", { id });
  return row;
}

/** Refuses to let a key hand out scopes it does not hold itself. */
function assertGrantable(principal: Principal, scopes: readonly string[]): void {
  const missing = scopes.filter((s) => !principal.scopes.has(s));
  if (missing.length > 0) {
    throw new Forbidden("A key cannot grant scopes it does not hold.", { scopes: missing });
  }
}

/**
 * A key may change, rotate or delete only keys that hold no scope it lacks: otherwise rotating a
 * stronger key would hand its secret, and so its powers, to a weaker one.
 */
function assertManageable(principal: Principal, target: ApiKeyRow): void {
  const stronger = target.scopes.filter((s) => !principal.scopes.has(s));
  if (stronger.length > 0) {
    throw new Forbidden("A key cannot manage a key that holds scopes it does not hold itself.", { scopes: stronger });
  }
}

/**
 * Checks an expiry lies in the future and normalizes it to UTC (toISOString), so every stored
 * timestamp has one format and compares correctly as text in SQL.
 */
function normalizeExpiry(expiresAt: string | null | undefined, clock: Clock): string | null | undefined {
  const field = "expires_at";
  if (!expiresAt) return expiresAt;
  const at = Date.parse(expiresAt);
  if (Number.isNaN(at)) throw Invalid.field(field, "invalid_format", "must be an ISO 8601 date-time");
  if (at <= clock.now().getTime()) throw Invalid.field(field, "in_the_past", "must be in the future");
  return new Date(at).toISOString();
}

export async function listApiKeys(
  ctx: CoreContext,
  input: { page: PageRequest; projectId?: string },
): Promise<Paged<ApiKey>> {
  requireScope(ctx.principal, "keys:read");
  const { projectId } = input;
  const where = projectId ? and(visibleKeys(ctx.principal), eq(apiKeys.projectId, projectId))! : visibleKeys(ctx.principal);
  const total = ctx.db.select({ total: count() }).from(apiKeys).where(where);
  const page = ctx.db.select().from(apiKeys).where(where).orderBy(asc(apiKeys.id)).limit(input.page.limit).offset(input.page.offset);
  let totalRows: { total: number }[];
  let rows: ApiKeyRow[];
  if (projectId) {
    // The project check rides in the same batch as the page: one D1 round trip, not two.
    const visible = ctx.db
      .select({ id: projects.id })
      .from(projects)
      .where(and(eq(projects.id, projectId), visibleProjects(ctx.principal)));
    const [found, t, r] = await ctx.db.batch([visible, total, page]);
    if (found.length === 0) throw new NotFound("Project", { id: projectId });
    [totalRows, rows] = [t, r];
  } else {
    [totalRows, rows] = await ctx.db.batch([total, page]);
  }
  return { items: rows.map(toApiKey), total: totalRows[0]?.total ?? 0, ...input.page };
}

export interface CreateApiKeyInput {
  name: string;
  projectId?: string | null;
  scopes?: Scope[];
  expiresAt?: string | null;
}

export async function createApiKey(ctx: CoreContext, input: CreateApiKeyInput): Promise<IssuedApiKey> {
  requireScope(ctx.principal, "keys:write");
  const { principal } = ctx;
  // A project-restricted key can only mint keys for its own project.
  const projectId = input.projectId ?? principal.projectId;
  if (principal.projectId && projectId !== principal.projectId) throw new NotFound("Project", { id: projectId });
  if (projectId) await assertProjectVisible(ctx, projectId);
  const scopes = input.scopes ? [...new Set(input.scopes)] : defaultScopesFor(principal.scopes);
  assertGrantable(principal, scopes);
  const expiresAt = normalizeExpiry(input.expiresAt, ctx.clock);

  const secret = await generateSecret();
  const now = nowIso(ctx.clock);
  const row = await ctx.db
    .insert(apiKeys)
    .values({
      id: newId("key"),
      organizationId: principal.organizationId,
      projectId: projectId ?? null,
      name: input.name,
      lookupPrefix: secret.lookupPrefix,
      keyHash: secret.keyHash,
      lastFour: secret.lastFour,
      scopes,
      isActive: true,
      expiresAt: expiresAt ?? null,
      // A key made by a user (in a session, or with a key that user made) stays within that user's role.
      createdByUserId: principal.userId ?? null,
      createdAt: now,
      updatedAt: now,
    })
    .returning()
    .get();
  return { ...toApiKey(row), key: secret.key };
}

export async function getApiKey(ctx: CoreContext, id: string): Promise<ApiKey> {
  requireScope(ctx.principal, "keys:read");
  return toApiKey(await findVisibleKey(ctx, id));
}

export interface UpdateApiKeyInput {
  name?: string;
  isActive?: boolean;
  scopes?: Scope[];
  expiresAt?: string | null;
}

export async function updateApiKey(ctx: CoreContext, id: string, input: UpdateApiKeyInput): Promise<ApiKey> {
  requireScope(ctx.principal, "keys:write");
  assertManageable(ctx.principal, await findVisibleKey(ctx, id));
  if (input.scopes) assertGrantable(ctx.principal, input.scopes);
  const expiresAt = normalizeExpiry(input.expiresAt, ctx.clock);
  const changes: Partial<ApiKeyRow> = { updatedAt: nowIso(ctx.clock) };
  if (input.name !== undefined) changes.name = input.name;
  if (input.isActive !== undefined) changes.isActive = input.isActive;
  if (input.scopes !== undefined) changes.scopes = [...new Set(input.scopes)];
  if (expiresAt !== undefined) changes.expiresAt = expiresAt;
  const row = await ctx.db
    .update(apiKeys)
    .set(changes)
    .where(and(eq(apiKeys.id, id), visibleKeys(ctx.principal)))
    .returning()
    .get();
  forgetKeys();
  if (!row) throw new NotFound("API key", { id });
  return toApiKey(row);
}

export async function deleteApiKey(ctx: CoreContext, id: string): Promise<void> {
  requireScope(ctx.principal, "keys:write");
  assertManageable(ctx.principal, await findVisibleKey(ctx, id));
  const deleted = await ctx.db
    .delete(apiKeys)
    .where(and(eq(apiKeys.id, id), visibleKeys(ctx.principal)))
    .returning({ id: apiKeys.id })
    .get();
  forgetKeys();
  if (!deleted) throw new NotFound("API key", { id });
}

/** Replaces a key's secret; the old secret stops working at once. Id, name, scopes and expiry stay. */
export async function rotateApiKey(ctx: CoreContext, id: string): Promise<IssuedApiKey> {
  requireScope(ctx.principal, "keys:write");
  assertManageable(ctx.principal, await findVisibleKey(ctx, id));
  const secret = await generateSecret();
  const row = await ctx.db
    .update(apiKeys)
    .set({
      lookupPrefix: secret.lookupPrefix,
      keyHash: secret.keyHash,
      lastFour: secret.lastFour,
      lastUsedAt: null,
      updatedAt: nowIso(ctx.clock),
    })
    .where(and(eq(apiKeys.id, id), visibleKeys(ctx.principal)))
    .returning()
    .get();
  forgetKeys();
  if (!row) throw new NotFound("API key", { id });
  return { ...toApiKey(row), key: secret.key };
}
