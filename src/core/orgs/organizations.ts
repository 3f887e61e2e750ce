import { forgetKeys } from "../keys/principal-cache";
import { asc, count, eq } from "drizzle-orm";
import { apiKeys, memberships, organizations, projects, projectSettings, users, type OrganizationRow } from "../../db/schema";
import { newId } from "../../lib/ids";
import { type AdminContext, type CoreContext, nowIso, requireScope } from "../context";
import { Conflict, NotFound } from "../errors";
import { hashPassword } from "../users/passwords";
import { type SessionUser, normalizeEmail, toUser } from "../users/sessions";
import { generateSecret, toApiKey, type IssuedApiKey } from "../keys/api-keys";
import { ROLE_SCOPES } from "../keys/scopes";
import type { PageRequest, Paged } from "../pagination";
import type { RateLimitConfig } from "../rate-limits/limits";
import { toProject, type Project } from "../projects/projects";

export interface Organization {
  id: string;
  number: number;
  name: string;
  /** Credits left for queued runs; null is unlimited. */
  credits: number | null;
  creditCosts: { quickTest: number; deepTest: number };
  createdAt: string;
  updatedAt: string;
}

export function toOrganization(row: OrganizationRow): Organization {
  return {
    id: row.id,
    number: row.number,
    name: row.name,
    credits: row.credits,
    creditCosts: { quickTest: row.creditCostQuick, deepTest: row.creditCostDeep },
    createdAt: row.createdAt,
    updatedAt: row.updatedAt,
  };
}

export interface CreatedOrganization {
  organization: Organization;
  project: Project;
  apiKey: IssuedApiKey;
}

/**
 * How a deployment gets its first tenant: the organization, its first project and an owner key,
 * written in one transaction so a failure leaves nothing half made.
 */
export async function createOrganization(
  ctx: AdminContext,
  input: { name: string; projectName?: string; owner?: { email: string; password: string; name?: string | null } },
): Promise<CreatedOrganization & { owner: SessionUser | null }> {
  const now = nowIso(ctx.clock);
  const orgId = newId("org");
  const projectId = newId("proj");
  const secret = await generateSecret();
  // Optionally its first person: a user who signs in as the organization's owner.
  const ownerId = input.owner ? newId("usr") : null;
  const ownerEmail = input.owner ? normalizeEmail(input.owner.email) : null;
  if (ownerEmail && (await ctx.db.select({ id: users.id }).from(users).where(eq(users.email, ownerEmail)).get())) {
    throw new Conflict("A user with this e-mail already exists; invite them instead.", { field: "owner_email" });
  }
  const password = input.owner ? await hashPassword(input.owner.password) : null;
  const ownerStatements = input.owner
    ? [
        ctx.db.insert(users).values({
          id: ownerId!,
          email: ownerEmail!,
          name: input.owner.name ?? null,
          passwordHash: password!.hash,
          passwordSalt: password!.salt,
          passwordIterations: password!.iterations,
          createdAt: now,
          updatedAt: now,
        }),
        ctx.db.insert(memberships).values({ id: newId("mem"), organizationId: orgId, userId: ownerId!, role: "owner", createdAt: now, updatedAt: now }),
      ]
    : [];
  const [orgRows, projectRows, , keyRows] = await ctx.db.batch([
    ctx.db.insert(organizations).values({ id: orgId, name: input.name, createdAt: now, updatedAt: now }).returning(),
    ctx.db
      .insert(projects)
      .values({ id: projectId, organizationId: orgId, name: input.projectName ?? "Default", createdAt: now, updatedAt: now })
      .returning(),
    ctx.db.insert(projectSettings).values({ projectId, updatedAt: now }),
    ctx.db
      .insert(apiKeys)
      .values({
        id: newId("key"),
        organizationId: orgId,
        projectId: null,
        name: "Owner key",
        lookupPrefix: secret.lookupPrefix,
        keyHash: secret.keyHash,
        lastFour: secret.lastFour,
        scopes: [...ROLE_SCOPES.owner],
        // The owner's own key when there is an owner: it follows their role like any key they make.
        createdByUserId: ownerId,
        createdAt: now,
        updatedAt: now,
      })
      .returning(),
    ...ownerStatements,
  ]);
  const owner = ownerId ? await ctx.db.select().from(users).where(eq(users.id, ownerId)).get() : undefined;
  return {
    owner: owner ? toUser(owner) : null,
    organization: toOrganization(orgRows[0]!),
    project: toProject(projectRows[0]!),
    apiKey: { ...toApiKey(keyRows[0]!), key: secret.key },
  };
}

/** A key belongs to exactly one organization, so the list holds that one. */
export async function listOrganizations(ctx: CoreContext, page: PageRequest): Promise<Paged<Organization>> {
  requireScope(ctx.principal, "projects:read");
  const where = eq(organizations.id, ctx.principal.organizationId);
  const [totalRows, rows] = await ctx.db.batch([
    ctx.db.select({ total: count() }).from(organizations).where(where),
    ctx.db.select().from(organizations).where(where).orderBy(asc(organizations.number)).limit(page.limit).offset(page.offset),
  ]);
  return { items: rows.map(toOrganization), total: totalRows[0]?.total ?? 0, ...page };
}

export async function getOrganization(ctx: CoreContext, id: string): Promise<Organization> {
  requireScope(ctx.principal, "projects:read");
  // The principal's own id is the only one that can match: another tenant's id is simply "not found".
  const row =
    id === ctx.principal.organizationId
      ? await ctx.db.select().from(organizations).where(eq(organizations.id, ctx.principal.organizationId)).get()
      : undefined;
  if (!row) throw new NotFound("Organization", { id });
  return toOrganization(row);
}

export interface OrganizationLimits {
  /** Webhook subscriptions allowed; null is unlimited. */
  maxWebhooks: number | null;
  /** Null follows the deployment's default tier (RATE_LIMIT_TIER). */
  rateLimits: RateLimitConfig | null;
  /** Credits for queued runs (reference 002); null is unlimited. */
  credits: number | null;
  creditCosts: { quickTest?: number; deepTest?: number };
}

/** Deployment administration (ADMIN_TOKEN): an organization's limits. Fields left out stay. */
export async function updateOrganizationLimits(
  ctx: AdminContext,
  id: string,
  input: Partial<OrganizationLimits>,
): Promise<Organization & Omit<OrganizationLimits, "creditCosts">> {
  const changes: Partial<typeof organizations.$inferInsert> = { updatedAt: nowIso(ctx.clock) };
  if (input.maxWebhooks !== undefined) changes.maxWebhooks = input.maxWebhooks;
  if (input.rateLimits !== undefined) changes.rateLimits = input.rateLimits;
  if (input.credits !== undefined) changes.credits = input.credits;
  if (input.creditCosts?.quickTest !== undefined) changes.creditCostQuick = input.creditCosts.quickTest;
  if (input.creditCosts?.deepTest !== undefined) changes.creditCostDeep = input.creditCosts.deepTest;
  const row = await ctx.db.update(organizations).set(changes).where(eq(organizations.id, id)).returning().get();
  forgetKeys();
  if (!row) throw new NotFound("Organization", { id });
  return { ...toOrganization(row), maxWebhooks: row.maxWebhooks, rateLimits: row.rateLimits ?? null };
}
