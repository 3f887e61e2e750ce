import { asc, count, eq } from "drizzle-orm";
import { apiKeys, organizations, projects, projectSettings, type OrganizationRow } from "../../db/schema";
import { newId } from "../../lib/ids";
import { type AdminContext, type CoreContext, nowIso, requireScope } from "../context";
import { NotFound } from "../errors";
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
  input: { name: string; projectName?: string },
): Promise<CreatedOrganization> {
  const now = nowIso(ctx.clock);
  const orgId = newId("org");
  const projectId = newId("proj");
  const secret = await generateSecret();
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
        createdAt: now,
        updatedAt: now,
      })
      .returning(),
  ]);
  return {
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
  if (!row) throw new NotFound("Organization", { id });
  return { ...toOrganization(row), maxWebhooks: row.maxWebhooks, rateLimits: row.rateLimits ?? null };
}
