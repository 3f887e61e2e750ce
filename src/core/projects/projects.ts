import { and, asc, count, eq, inArray, type SQL } from "drizzle-orm";
import { projects, projectSettings, type ProjectRow, type ProjectSettingsRow } from "../../db/schema";
import { newId } from "../../lib/ids";
import { type CoreContext, type Principal, nowIso, requireScope } from "../context";
import { Forbidden, NotFound } from "../errors";
import type { PageRequest, Paged } from "../pagination";
import { deleteR2Prefix, projectObjectPrefix } from "../storage/r2";

export interface Project {
  id: string;
  number: number;
  organizationId: string;
  name: string;
  description: string | null;
  createdAt: string;
  updatedAt: string;
}

export interface ProjectSettings {
  projectId: string;
  dataRetentionDays: number;
  flakinessThreshold: number;
  autoQuarantineEnabled: boolean;
  updatedAt: string;
}

export function toProject(row: ProjectRow): Project {
  return {
    id: row.id,
    number: row.number,
    organizationId: row.organizationId,
    name: row.name,
    description: row.description,
    createdAt: row.createdAt,
    updatedAt: row.updatedAt,
  };
}

function toSettings(row: ProjectSettingsRow): ProjectSettings {
  return {
    projectId: row.projectId,
    dataRetentionDays: row.dataRetentionDays,
    flakinessThreshold: row.flakinessThreshold,
    autoQuarantineEnabled: row.autoQuarantineEnabled,
    updatedAt: row.updatedAt,
  };
}

/** The SQL condition limiting projects to what the principal may see. */
export function visibleProjects(principal: Principal): SQL {
  const inOrg = eq(projects.organizationId, principal.organizationId);
  return principal.projectId ? and(inOrg, eq(projects.id, principal.projectId))! : inOrg;
}

/** Throws NotFound unless the project exists and the principal may see it. */
export async function assertProjectVisible(ctx: CoreContext, projectId: string): Promise<void> {
  const row = await ctx.db
    .select({ id: projects.id })
    .from(projects)
    .where(and(eq(projects.id, projectId), visibleProjects(ctx.principal)))
    .get();
  if (!row) throw new NotFound("Project", { id: projectId });
}

export async function listProjects(
  ctx: CoreContext,
  input: { page: PageRequest; organizationId?: string },
): Promise<Paged<Project>> {
  requireScope(ctx.principal, "projects:read");
  if (input.organizationId !== undefined && input.organizationId !== ctx.principal.organizationId) {
    throw new NotFound("Organization", { id: input.organizationId });
  }
  const where = visibleProjects(ctx.principal);
  const [totalRows, rows] = await ctx.db.batch([
    ctx.db.select({ total: count() }).from(projects).where(where),
    ctx.db.select().from(projects).where(where).orderBy(asc(projects.number)).limit(input.page.limit).offset(input.page.offset),
  ]);
  return { items: rows.map(toProject), total: totalRows[0]?.total ?? 0, ...input.page };
}

export async function createProject(
  ctx: CoreContext,
  input: { name: string; description?: string | null; organizationId?: string },
): Promise<Project> {
  requireScope(ctx.principal, "projects:write");
  if (input.organizationId !== undefined && input.organizationId !== ctx.principal.organizationId) {
    throw new NotFound("Organization", { id: input.organizationId });
  }
  if (ctx.principal.projectId) {
    throw new Forbidden("This API key is restricted to one project and cannot create projects.");
  }
  const now = nowIso(ctx.clock);
  const id = newId("proj");
  const [rows] = await ctx.db.batch([
    ctx.db
      .insert(projects)
      .values({
        id,
        organizationId: ctx.principal.organizationId,
        name: input.name,
        description: input.description ?? null,
        createdAt: now,
        updatedAt: now,
      })
      .returning(),
    ctx.db.insert(projectSettings).values({ projectId: id, updatedAt: now }),
  ]);
  return toProject(rows[0]!);
}

export async function getProject(ctx: CoreContext, id: string): Promise<Project> {
  requireScope(ctx.principal, "projects:read");
  const row = await ctx.db.select().from(projects).where(and(eq(projects.id, id), visibleProjects(ctx.principal))).get();
  if (!row) throw new NotFound("Project", { id });
  return toProject(row);
}

export async function updateProject(
  ctx: CoreContext,
  id: string,
  input: { name?: string; description?: string | null },
): Promise<Project> {
  requireScope(ctx.principal, "projects:write");
  const changes: Partial<ProjectRow> = { updatedAt: nowIso(ctx.clock) };
  if (input.name !== undefined) changes.name = input.name;
  if (input.description !== undefined) changes.description = input.description;
  const row = await ctx.db
    .update(projects)
    .set(changes)
    .where(and(eq(projects.id, id), visibleProjects(ctx.principal)))
    .returning()
    .get();
  if (!row) throw new NotFound("Project", { id });
  return toProject(row);
}

/**
 * Deletes the project and, through ON DELETE CASCADE, everything that belongs to it, then its
 * objects in R2 (output of results, later artifacts), which live under one prefix.
 */
export async function deleteProject(ctx: CoreContext, id: string): Promise<void> {
  requireScope(ctx.principal, "projects:write");
  const deleted = await ctx.db
    .delete(projects)
    .where(and(eq(projects.id, id), visibleProjects(ctx.principal)))
    .returning({ id: projects.id })
    .get();
  if (!deleted) throw new NotFound("Project", { id });
  await deleteR2Prefix(ctx.env.ARTIFACTS, projectObjectPrefix(id));
  // Its builds went with the project's rows; the queue object's storage goes too.
  await ctx.env.BUILD_QUEUE.get(ctx.env.BUILD_QUEUE.idFromName(id)).clear();
}

export async function getProjectSettings(ctx: CoreContext, projectId: string): Promise<ProjectSettings> {
  requireScope(ctx.principal, "projects:read");
  const row = await ctx.db
    .select({ settings: projectSettings })
    .from(projectSettings)
    .innerJoin(projects, eq(projects.id, projectSettings.projectId))
    .where(and(eq(projectSettings.projectId, projectId), visibleProjects(ctx.principal)))
    .get();
  if (!row) throw new NotFound("Project", { id: projectId });
  return toSettings(row.settings);
}

export interface UpdateProjectSettingsInput {
  dataRetentionDays?: number;
  flakinessThreshold?: number;
  autoQuarantineEnabled?: boolean;
}

export async function updateProjectSettings(
  ctx: CoreContext,
  projectId: string,
  input: UpdateProjectSettingsInput,
): Promise<ProjectSettings> {
  requireScope(ctx.principal, "settings:write");
  const changes: Partial<ProjectSettingsRow> = { updatedAt: nowIso(ctx.clock) };
  if (input.dataRetentionDays !== undefined) changes.dataRetentionDays = input.dataRetentionDays;
  if (input.flakinessThreshold !== undefined) changes.flakinessThreshold = input.flakinessThreshold;
  if (input.autoQuarantineEnabled !== undefined) changes.autoQuarantineEnabled = input.autoQuarantineEnabled;
  const visible = ctx.db
    .select({ id: projects.id })
    .from(projects)
    .where(and(eq(projects.id, projectId), visibleProjects(ctx.principal)));
  const row = await ctx.db
    .update(projectSettings)
    .set(changes)
    .where(and(eq(projectSettings.projectId, projectId), inArray(projectSettings.projectId, visible)))
    .returning()
    .get();
  if (!row) throw new NotFound("Project", { id: projectId });
  return toSettings(row);
}
