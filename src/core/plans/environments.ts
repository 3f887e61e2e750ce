import { and, asc, eq, sql, type SQL } from "drizzle-orm";
import { contexts, environments } from "../../db/schema";
import { newId } from "../../lib/ids";
import { type CoreContext, type Principal, nowIso, requireScope } from "../context";
import { Conflict, Invalid } from "../errors";
import type { PageRequest, Paged } from "../pagination";
import { assertProjectVisible } from "../projects/projects";
import { tenantScope } from "../tenancy";

export type EnvironmentRow = typeof environments.$inferSelect;
export type ContextRow = typeof contexts.$inferSelect;

export const ENVIRONMENT_LIMITS = {
  nameLength: 100,
  baseUrlLength: 2048,
  variables: 100,
  variableNameLength: 200,
  variableValueLength: 4096,
  /** A context's data, as JSON in UTF-8. */
  contextDataBytes: 64 * 1024,
} as const;

export interface Environment {
  id: string;
  projectId: string;
  name: string;
  baseUrl: string | null;
  variables: Record<string, string>;
  createdAt: string;
  updatedAt: string;
}

export interface ExecutionContext {
  id: string;
  projectId: string;
  name: string;
  data: Record<string, unknown>;
  createdAt: string;
  updatedAt: string;
}

function environmentScope(principal: Principal): SQL {
  return tenantScope(principal, { organizationId: environments.organizationId, projectId: environments.projectId });
}

function contextScope(principal: Principal): SQL {
  return tenantScope(principal, { organizationId: contexts.organizationId, projectId: contexts.projectId });
}

export function toEnvironment(row: EnvironmentRow): Environment {
  return {
    id: row.id,
    projectId: row.projectId,
    name: row.name,
    baseUrl: row.baseUrl,
    variables: row.variables,
    createdAt: row.createdAt,
    updatedAt: row.updatedAt,
  };
}

export function toContext(row: ContextRow): ExecutionContext {
  return { id: row.id, projectId: row.projectId, name: row.name, data: row.data, createdAt: row.createdAt, updatedAt: row.updatedAt };
}

function checkName(name: string): string {
  const trimmed = name.trim();
  if (trimmed.length === 0 || trimmed.length > ENVIRONMENT_LIMITS.nameLength || /[\u0000-\u001f\u007f]/.test(trimmed) || !trimmed.isWellFormed()) {
    throw Invalid.field("name", "invalid_value", `must be 1 to ${ENVIRONMENT_LIMITS.nameLength} characters without control characters`);
  }
  return trimmed;
}

function checkBaseUrl(value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw Invalid.field("base_url", "invalid_format", "must be an absolute http or https URL");
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") throw Invalid.field("base_url", "invalid_value", "must be an http or https URL");
  if (value.length > ENVIRONMENT_LIMITS.baseUrlLength) {
    throw Invalid.field("base_url", "too_long", `must be at most ${ENVIRONMENT_LIMITS.baseUrlLength} characters`);
  }
  return value;
}

function checkVariables(variables: Record<string, string>): Record<string, string> {
  const entries = Object.entries(variables);
  if (entries.length > ENVIRONMENT_LIMITS.variables) {
    throw Invalid.field("variables", "too_many", `must have at most ${ENVIRONMENT_LIMITS.variables} entries`);
  }
  for (const [name, value] of entries) {
    if (name.length === 0 || name.length > ENVIRONMENT_LIMITS.variableNameLength || !name.isWellFormed() || name.includes("\u0000")) {
      throw Invalid.field("variables", "invalid_value", `has an invalid name (1 to ${ENVIRONMENT_LIMITS.variableNameLength} characters)`);
    }
    if (typeof value !== "string" || value.length > ENVIRONMENT_LIMITS.variableValueLength || !value.isWellFormed() || value.includes("\u0000")) {
      throw Invalid.field(`variables.${name}`, "invalid_value", `must be a string of at most ${ENVIRONMENT_LIMITS.variableValueLength} characters`);
    }
  }
  return variables;
}

function checkContextData(data: unknown): Record<string, unknown> {
  if (data === null || typeof data !== "object" || Array.isArray(data)) throw Invalid.field("data", "invalid_type", "must be a JSON object");
  const bytes = new TextEncoder().encode(JSON.stringify(data)).byteLength;
  if (bytes > ENVIRONMENT_LIMITS.contextDataBytes) {
    throw Invalid.field("data", "too_large", `must be at most ${ENVIRONMENT_LIMITS.contextDataBytes} bytes of JSON`, { extra: { bytes } });
  }
  return data as Record<string, unknown>;
}

function duplicate(kind: "An environment" | "A context", name: string): Conflict {
  return new Conflict(`${kind} named '${name}' already exists in this project.`, { field: "name", reason: "duplicate" });
}

export async function listEnvironments(ctx: CoreContext, projectId: string, page: PageRequest): Promise<Paged<Environment>> {
  requireScope(ctx.principal, "plans:read");
  await assertProjectVisible(ctx, projectId);
  const where = and(eq(environments.projectId, projectId), environmentScope(ctx.principal))!;
  const [totalRows, rows] = await ctx.db.batch([
    ctx.db.select({ total: sql<number>`count(*)` }).from(environments).where(where),
    ctx.db.select().from(environments).where(where).orderBy(asc(environments.name)).limit(page.limit).offset(page.offset),
  ]);
  return { items: rows.map(toEnvironment), total: totalRows[0]?.total ?? 0, ...page };
}

export async function createEnvironment(
  ctx: CoreContext,
  projectId: string,
  input: { name: string; baseUrl?: string | null; variables?: Record<string, string> },
): Promise<Environment> {
  requireScope(ctx.principal, "projects:write");
  await assertProjectVisible(ctx, projectId);
  const name = checkName(input.name);
  const baseUrl = input.baseUrl == null ? null : checkBaseUrl(input.baseUrl);
  const variables = checkVariables(input.variables ?? {});
  const now = nowIso(ctx.clock);
  const row = await ctx.db
    .insert(environments)
    .values({ id: newId("env"), organizationId: ctx.principal.organizationId, projectId, name, baseUrl, variables, createdAt: now, updatedAt: now })
    .onConflictDoNothing({ target: [environments.projectId, environments.name] })
    .returning()
    .get();
  if (!row) throw duplicate("An environment", name);
  return toEnvironment(row);
}

/** The project's environment of that name (reference 004's env_name), if the principal may see it; no scope check. */
export async function findEnvironment(ctx: CoreContext, projectId: string, name: string): Promise<EnvironmentRow | null> {
  const row = await ctx.db
    .select()
    .from(environments)
    .where(and(eq(environments.projectId, projectId), eq(environments.name, name), environmentScope(ctx.principal)))
    .get();
  return row ?? null;
}

export async function listContexts(ctx: CoreContext, projectId: string, page: PageRequest): Promise<Paged<ExecutionContext>> {
  requireScope(ctx.principal, "plans:read");
  await assertProjectVisible(ctx, projectId);
  const where = and(eq(contexts.projectId, projectId), contextScope(ctx.principal))!;
  const [totalRows, rows] = await ctx.db.batch([
    ctx.db.select({ total: sql<number>`count(*)` }).from(contexts).where(where),
    ctx.db.select().from(contexts).where(where).orderBy(asc(contexts.name)).limit(page.limit).offset(page.offset),
  ]);
  return { items: rows.map(toContext), total: totalRows[0]?.total ?? 0, ...page };
}

export async function createContext(ctx: CoreContext, projectId: string, input: { name: string; data?: unknown }): Promise<ExecutionContext> {
  requireScope(ctx.principal, "projects:write");
  await assertProjectVisible(ctx, projectId);
  const name = checkName(input.name);
  const data = checkContextData(input.data ?? {});
  const now = nowIso(ctx.clock);
  const row = await ctx.db
    .insert(contexts)
    .values({ id: newId("ctx"), organizationId: ctx.principal.organizationId, projectId, name, data, createdAt: now, updatedAt: now })
    .onConflictDoNothing({ target: [contexts.projectId, contexts.name] })
    .returning()
    .get();
  if (!row) throw duplicate("A context", name);
  return toContext(row);
}

/** The project's context of that name (reference 004's context_name), if the principal may see it; no scope check. */
export async function findContext(ctx: CoreContext, projectId: string, name: string): Promise<ContextRow | null> {
  const row = await ctx.db
    .select()
    .from(contexts)
    .where(and(eq(contexts.projectId, projectId), eq(contexts.name, name), contextScope(ctx.principal)))
    .get();
  return row ?? null;
}
