import { and, asc, count, eq, inArray, sql, type SQL } from "drizzle-orm";
import { projects, projectSettings, type ProjectRow, type ProjectSettingsRow } from "../../db/schema";
import { newId } from "../../lib/ids";
import { type CoreContext, type Principal, nowIso, requireScope } from "../context";
import { Forbidden, Invalid, NotFound } from "../errors";
import { batchAll, type Statement } from "../../db/batch";
import { withoutUndefined } from "../../lib/objects";
import { markStale, recountSummary, refreshStaleSoon } from "../flakiness/refresh";
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
  flakinessWindow: number;
  flakinessMinSamples: number;
  quarantineRecoveryDays: number;
  quarantineRecoveryRuns: number;
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
    flakinessWindow: row.flakinessWindow,
    flakinessMinSamples: row.flakinessMinSamples,
    quarantineRecoveryDays: row.quarantineRecoveryDays,
    quarantineRecoveryRuns: row.quarantineRecoveryRuns,
    updatedAt: row.updatedAt,
  };
}

/** The SQL condition limiting projects to what the principal may see. */
export function visibleProjects(principal: Principal): SQL {
  const inOrg = eq(projects.organizationId, principal.organizationId);
  return principal.projectId ? and(inOrg, eq(projects.id, principal.projectId))! : inOrg;
}

/**
 * A statement that fails, and so rolls back the D1 batch it leads (a batch is one transaction),
 * unless the project exists and the principal may see it: the check rides in the write's round
 * trip instead of costing its own. json() of text that is not JSON is the error; runGuarded
 * turns it into the 404 a separate check would have given.
 */
export function projectVisibleGuard(principal: Principal, projectId: string): SQL {
  return sql`SELECT CASE WHEN EXISTS (SELECT 1 FROM projects WHERE ${and(eq(projects.id, projectId), visibleProjects(principal))})
    THEN 1 ELSE json('project not visible') END`;
}

/**
 * Runs a batch that a projectVisibleGuard may have rolled back: when it failed, a project the
 * principal cannot see is 404 (nothing was written), any other failure is passed on as it was.
 */
export async function runGuarded<T>(ctx: CoreContext, projectId: string, batch: () => Promise<T>): Promise<T> {
  try {
    return await batch();
  } catch (err) {
    if (String(err).includes("malformed JSON")) await assertProjectVisible(ctx, projectId);
    throw err;
  }
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
  flakinessWindow?: number;
  flakinessMinSamples?: number;
  quarantineRecoveryDays?: number;
  quarantineRecoveryRuns?: number;
}

export async function updateProjectSettings(
  ctx: CoreContext,
  projectId: string,
  input: UpdateProjectSettingsInput,
): Promise<ProjectSettings> {
  requireScope(ctx.principal, "settings:write");
  const now = nowIso(ctx.clock);
  const changes: Partial<ProjectSettingsRow> = { updatedAt: now, ...withoutUndefined(input) };
  const visible = ctx.db
    .select({ id: projects.id })
    .from(projects)
    .where(and(eq(projects.id, projectId), visibleProjects(ctx.principal)));
  const current = await ctx.db
    .select({ settings: projectSettings })
    .from(projectSettings)
    .where(and(eq(projectSettings.projectId, projectId), inArray(projectSettings.projectId, visible)))
    .get();
  if (!current) throw new NotFound("Project", { id: projectId });
  const merged = { ...current.settings, ...changes };
  if (merged.flakinessMinSamples > merged.flakinessWindow) {
    throw Invalid.field(
      input.flakinessMinSamples !== undefined ? "flakiness_min_samples" : "flakiness_window",
      "invalid_value",
      `the minimum sample (${merged.flakinessMinSamples}) must not exceed the window (${merged.flakinessWindow})`,
    );
  }
  const statements: Statement[] = [
    ctx.db.update(projectSettings).set(changes).where(eq(projectSettings.projectId, projectId)).returning(),
  ];
  // Scores over a different window or sample are out of date: every test case of the project is
  // refreshed in the background (see flakiness/refresh.ts), and the list shows the old score until then.
  const rescore = (["flakinessWindow", "flakinessMinSamples"] as const).some((k) => input[k] !== undefined && input[k] !== current.settings[k]);
  if (rescore) statements.push(markStale(sql`SELECT id FROM test_cases WHERE project_id = ${projectId}`));
  // The summary's count of flaky tests depends on the threshold.
  if (input.flakinessThreshold !== undefined && input.flakinessThreshold !== current.settings.flakinessThreshold) {
    statements.push(recountSummary(projectId));
  }
  const [updated] = await batchAll(ctx.db, statements);
  const row = updated?.results[0] as Record<string, unknown> | undefined;
  if (!row) throw new NotFound("Project", { id: projectId });
  if (rescore) await refreshStaleSoon(ctx.db, ctx.env.INGESTS, projectId, now);
  return toSettings({ ...current.settings, ...changes } as ProjectSettingsRow);
}
