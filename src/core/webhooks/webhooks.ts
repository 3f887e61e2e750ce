import { and, count, desc, eq, isNull, or, sql, type SQL } from "drizzle-orm";
import { tenantScope } from "../tenancy";
import { organizations, webhooks, type WebhookRow } from "../../db/schema";
import type { Env } from "../../env";
import { newId } from "../../lib/ids";
import { type CoreContext, type Principal, nowIso, requireScope } from "../context";
import { Forbidden, Invalid, NotFound } from "../errors";
import { EVENT_TYPES } from "../events/catalog";
import type { PageRequest, Paged } from "../pagination";
import { assertProjectVisible } from "../projects/projects";
import { checkWebhookSecret, generateWebhookSecret, sealSecret } from "./signing";
import { checkWebhookUrl } from "./url-guard";

/** How long a replaced secret keeps signing, so receivers can switch without missing a delivery. */
export const SECRET_OVERLAP_MS = 24 * 60 * 60 * 1000;
export const MAX_CUSTOM_HEADERS = 20;

/** Headers a subscription may not set: ours, or what the transport owns. */
const RESERVED_HEADERS = new Set([
  "content-type", "content-length", "host", "user-agent", "x-perpetual-signature", "webhook-id", "webhook-timestamp",
  "webhook-signature", "connection", "transfer-encoding", "authorization-greenlight",
]);
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,100}$/;

export interface Webhook {
  id: string;
  projectId: string | null;
  url: string;
  events: string[];
  headers: Record<string, string>;
  description: string | null;
  isActive: boolean;
  disabledReason: string | null;
  disabledAt: string | null;
  failingSince: string | null;
  /** Until when the previous secret still signs, during a rotation. */
  previousSecretExpiresAt: string | null;
  createdAt: string;
  updatedAt: string;
}

export interface CreateWebhookInput {
  projectId?: string | null;
  url: string;
  events: string[];
  headers?: Record<string, string>;
  secret?: string;
  description?: string | null;
  isActive?: boolean;
}

export interface UpdateWebhookInput {
  url?: string;
  events?: string[];
  headers?: Record<string, string>;
  /** A new secret: the old one keeps signing for SECRET_OVERLAP_MS. */
  secret?: string;
  description?: string | null;
  isActive?: boolean;
}

/** Plain http to loopback receivers only where the deployment says it is local development. */
export function allowsLocalHttp(env: Pick<Env, "WEBHOOKS_ALLOW_LOCAL_HTTP">): boolean {
  return env.WEBHOOKS_ALLOW_LOCAL_HTTP === "true";
}

export function deploymentSecret(env: Pick<Env, "URL_SIGNING_SECRET">): string {
  if (!env.URL_SIGNING_SECRET) throw new Error("URL_SIGNING_SECRET is not configured; webhook secrets cannot be sealed.");
  return env.URL_SIGNING_SECRET;
}

export function visibleWebhooks(principal: Principal): SQL {
  // A project-restricted key sees its project's subscriptions, not the organization's.
  return tenantScope(principal, { organizationId: webhooks.organizationId, projectId: webhooks.projectId });
}

export function toWebhook(row: WebhookRow): Webhook {
  return {
    id: row.id,
    projectId: row.projectId,
    url: row.url,
    events: row.events,
    headers: row.headers,
    description: row.description,
    isActive: row.isActive,
    disabledReason: row.disabledReason,
    disabledAt: row.disabledAt,
    failingSince: row.failingSince,
    previousSecretExpiresAt: row.previousSecretExpiresAt,
    createdAt: row.createdAt,
    updatedAt: row.updatedAt,
  };
}

function checkUrl(ctx: CoreContext, url: string): string {
  const checked = checkWebhookUrl(url, { allowLocalHttp: allowsLocalHttp(ctx.env) });
  if (!checked.ok) throw Invalid.field("url", "invalid_value", checked.reason.replace(/\.$/, ""), { status: 422 });
  return checked.url.toString();
}

function checkEvents(events: string[]): string[] {
  if (events.length === 0) throw Invalid.field("events", "invalid_value", "must name at least one event type");
  const unknown = events.filter((e) => !(EVENT_TYPES as readonly string[]).includes(e));
  if (unknown.length > 0) {
    throw Invalid.field("events", "invalid_value", `has unknown event types (${unknown.slice(0, 5).join(", ")}); GET /api/v1/events lists them`);
  }
  return [...new Set(events)];
}

function checkHeaders(headers: Record<string, string>): Record<string, string> {
  const entries = Object.entries(headers);
  if (entries.length > MAX_CUSTOM_HEADERS) throw Invalid.field("headers", "too_many", `must have at most ${MAX_CUSTOM_HEADERS} entries`);
  for (const [name, value] of entries) {
    if (!HEADER_NAME.test(name)) throw Invalid.field("headers", "invalid_value", `has an invalid header name (${name.slice(0, 100)})`);
    if (RESERVED_HEADERS.has(name.toLowerCase())) throw Invalid.field("headers", "invalid_value", `may not set ${name}, which Greenlight sets itself`);
    if (typeof value !== "string" || value.length > 1024 || /[\r\n\0]/.test(value)) {
      throw Invalid.field("headers", "invalid_value", `has an invalid value for ${name} (at most 1,024 characters, no line breaks)`);
    }
  }
  return headers;
}

function checkSecret(secret: string): string {
  // The same rule signing applies, so a stored secret can always sign.
  const checked = checkWebhookSecret(secret);
  if (!checked.ok) throw Invalid.field("secret", "invalid_value", checked.reason.replace(/^A webhook secret /, "").replace(/\.$/, ""));
  return secret;
}

async function assertWithinLimit(ctx: CoreContext): Promise<void> {
  const org = await ctx.db.select({ max: organizations.maxWebhooks }).from(organizations).where(eq(organizations.id, ctx.principal.organizationId)).get();
  if (org?.max === null || org?.max === undefined) return;
  const [row] = await ctx.db.select({ n: count() }).from(webhooks).where(eq(webhooks.organizationId, ctx.principal.organizationId));
  if ((row?.n ?? 0) >= org.max) {
    throw new Forbidden(`This organization may have at most ${org.max} webhook subscriptions; delete one or ask the operator to raise the limit.`, {
      limit: org.max,
    });
  }
}

/** Creates a subscription; the secret (given, or generated as whsec_…) is returned this once. */
export async function createWebhook(ctx: CoreContext, input: CreateWebhookInput): Promise<{ webhook: Webhook; secret: string }> {
  requireScope(ctx.principal, "webhooks:write");
  let projectId = input.projectId ?? null;
  if (ctx.principal.projectId) {
    if (projectId !== null && projectId !== ctx.principal.projectId) throw new NotFound("Project", { id: projectId });
    projectId = ctx.principal.projectId;
  } else if (projectId !== null) {
    await assertProjectVisible(ctx, projectId);
  }
  const url = checkUrl(ctx, input.url);
  const events = checkEvents(input.events);
  const headers = checkHeaders(input.headers ?? {});
  const secret = input.secret === undefined ? generateWebhookSecret() : checkSecret(input.secret);
  await assertWithinLimit(ctx);
  const now = nowIso(ctx.clock);
  const row = await ctx.db
    .insert(webhooks)
    .values({
      id: newId("wh"),
      organizationId: ctx.principal.organizationId,
      projectId,
      url,
      events,
      headers,
      description: input.description ?? null,
      secretSealed: await sealSecret(deploymentSecret(ctx.env), secret),
      isActive: input.isActive ?? true,
      createdAt: now,
      updatedAt: now,
    })
    .returning()
    .get();
  return { webhook: toWebhook(row), secret };
}

export async function readWebhookRow(ctx: CoreContext, id: string): Promise<WebhookRow> {
  const row = await ctx.db.select().from(webhooks).where(and(eq(webhooks.id, id), visibleWebhooks(ctx.principal))).get();
  if (!row) throw new NotFound("Webhook", { id });
  return row;
}

export async function getWebhook(ctx: CoreContext, id: string): Promise<Webhook> {
  requireScope(ctx.principal, "webhooks:read");
  return toWebhook(await readWebhookRow(ctx, id));
}

/** Subscriptions newest first; with a project, that project's and the organization-wide ones. */
export async function listWebhooks(ctx: CoreContext, input: { page: PageRequest; projectId?: string; projectOnly?: boolean }): Promise<Paged<Webhook>> {
  requireScope(ctx.principal, "webhooks:read");
  const conditions = [visibleWebhooks(ctx.principal)];
  if (input.projectId !== undefined) {
    await assertProjectVisible(ctx, input.projectId);
    conditions.push(input.projectOnly ? eq(webhooks.projectId, input.projectId) : or(eq(webhooks.projectId, input.projectId), isNull(webhooks.projectId))!);
  }
  const where = and(...conditions)!;
  const [totalRows, rows] = await ctx.db.batch([
    ctx.db.select({ total: sql<number>`count(*)` }).from(webhooks).where(where),
    ctx.db.select().from(webhooks).where(where).orderBy(desc(webhooks.number)).limit(input.page.limit).offset(input.page.offset),
  ]);
  return { items: rows.map(toWebhook), total: totalRows[0]?.total ?? 0, ...input.page };
}

/**
 * Changes a subscription. Re-activating one that delivery disabled (410, or days of failures)
 * clears the reason and the failure streak. A new secret starts a rotation: the old one keeps
 * signing beside it for 24 hours.
 */
export async function updateWebhook(ctx: CoreContext, id: string, input: UpdateWebhookInput): Promise<Webhook> {
  requireScope(ctx.principal, "webhooks:write");
  const current = await readWebhookRow(ctx, id);
  const now = ctx.clock.now();
  const changes: Partial<typeof webhooks.$inferInsert> = { updatedAt: now.toISOString() };
  if (input.url !== undefined) changes.url = checkUrl(ctx, input.url);
  if (input.events !== undefined) changes.events = checkEvents(input.events);
  if (input.headers !== undefined) changes.headers = checkHeaders(input.headers);
  if (input.description !== undefined) changes.description = input.description;
  if (input.isActive !== undefined) {
    changes.isActive = input.isActive;
    if (input.isActive) Object.assign(changes, { disabledReason: null, disabledAt: null, failingSince: null });
  }
  if (input.secret !== undefined) {
    Object.assign(changes, await rotation(ctx, current, checkSecret(input.secret), now));
  }
  const row = await ctx.db.update(webhooks).set(changes).where(and(eq(webhooks.id, id), visibleWebhooks(ctx.principal))).returning().get();
  if (!row) throw new NotFound("Webhook", { id });
  return toWebhook(row);
}

async function rotation(ctx: CoreContext, current: WebhookRow, secret: string, now: Date) {
  return {
    secretSealed: await sealSecret(deploymentSecret(ctx.env), secret),
    previousSecretSealed: current.secretSealed,
    previousSecretExpiresAt: new Date(now.getTime() + SECRET_OVERLAP_MS).toISOString(),
  };
}

/** A fresh secret (generated unless given), returned this once; the old one signs for 24 more hours. */
export async function rotateWebhookSecret(ctx: CoreContext, id: string, secret?: string): Promise<{ webhook: Webhook; secret: string }> {
  requireScope(ctx.principal, "webhooks:write");
  const current = await readWebhookRow(ctx, id);
  const next = secret === undefined ? generateWebhookSecret() : checkSecret(secret);
  const now = ctx.clock.now();
  const row = await ctx.db
    .update(webhooks)
    .set({ ...(await rotation(ctx, current, next, now)), updatedAt: now.toISOString() })
    .where(and(eq(webhooks.id, id), visibleWebhooks(ctx.principal)))
    .returning()
    .get();
  if (!row) throw new NotFound("Webhook", { id });
  return { webhook: toWebhook(row), secret: next };
}

/** Deletes a subscription with its delivery log. */
export async function deleteWebhook(ctx: CoreContext, id: string): Promise<void> {
  requireScope(ctx.principal, "webhooks:write");
  const deleted = await ctx.db.delete(webhooks).where(and(eq(webhooks.id, id), visibleWebhooks(ctx.principal))).returning({ id: webhooks.id }).get();
  if (!deleted) throw new NotFound("Webhook", { id });
}
