import { and, asc, desc, eq, isNull, or, sql, type SQL } from "drizzle-orm";
import { tenantScope } from "../tenancy";
import { batchAll } from "../../db/batch";
import { builds, projects, releases, type BuildRow } from "../../db/schema";
import { SQL_ID_TAIL, newId, sqlIdHead } from "../../lib/ids";
import { type CoreContext, type Principal, nowIso, requireScope } from "../context";
import { Conflict, NotFound } from "../errors";
import type { PageRequest, Paged } from "../pagination";
import { assertProjectVisible } from "../projects/projects";
import { resolveProject } from "../runs/runs";

export const BUILD_STATUSES = ["planned", "in_progress", "passed", "failed", "cancelled"] as const;
export type BuildStatus = (typeof BUILD_STATUSES)[number];
export const BUILD_SOURCES = ["api", "ui"] as const;
export type BuildSource = (typeof BUILD_SOURCES)[number];

export const BUILD_CREATED_EVENT = "build.created.v1";

export interface Build {
  id: string;
  projectId: string;
  releaseId: string | null;
  name: string;
  buildNumber: string | null;
  commitSha: string | null;
  branch: string | null;
  repoUrl: string | null;
  status: BuildStatus;
  source: BuildSource;
  /** 1-based place in the project's build queue; null when the build is not waiting there. */
  queuePosition: number | null;
  createdAt: string;
  updatedAt: string;
}

export interface RegisterBuildInput {
  projectId?: string;
  name: string;
  buildNumber?: string | null;
  commitSha?: string | null;
  branch?: string | null;
  repoUrl?: string | null;
  releaseId?: string | null;
  source?: BuildSource;
}

/** D1's rule for queue membership; the BUILD_QUEUE object only orders these. */
function isQueued(row: Pick<BuildRow, "releaseId" | "status">): boolean {
  return row.releaseId === null && row.status === "planned";
}

export function visibleBuilds(principal: Principal): SQL {
  return tenantScope(principal, { organizationId: builds.organizationId, projectId: builds.projectId });
}

function queueOf(ctx: CoreContext, projectId: string) {
  return ctx.env.BUILD_QUEUE.get(ctx.env.BUILD_QUEUE.idFromName(projectId));
}

function toBuild(row: BuildRow, queuePosition: number | null): Build {
  return {
    id: row.id,
    projectId: row.projectId,
    releaseId: row.releaseId,
    name: row.name,
    buildNumber: row.buildNumber,
    commitSha: row.commitSha,
    branch: row.branch,
    repoUrl: row.repoUrl,
    status: row.status as BuildStatus,
    source: row.source as BuildSource,
    queuePosition,
    createdAt: row.createdAt,
    updatedAt: row.updatedAt,
  };
}

/**
 * Brings one build's queue entry in line with D1 and answers its position. Enqueueing is
 * idempotent, so a read of a queued build also repairs a registration whose second write (to
 * the queue) never happened.
 */
async function syncQueueEntry(ctx: CoreContext, row: BuildRow): Promise<number | null> {
  const queue = queueOf(ctx, row.projectId);
  if (isQueued(row)) return queue.enqueue(row.id);
  await queue.remove(row.id);
  return null;
}

/** A release the caller may see, in the given project: another project's release is as missing. */
async function assertReleaseInProject(ctx: CoreContext, releaseId: string, projectId: string): Promise<void> {
  const row = await ctx.db
    .select({ id: releases.id })
    .from(releases)
    .where(and(eq(releases.id, releaseId), eq(releases.organizationId, ctx.principal.organizationId), eq(releases.projectId, projectId)))
    .get();
  if (!row) throw new NotFound("Release", { id: releaseId });
}

function buildPayloadSql(alias: string): SQL {
  const c = (name: string) => sql.raw(`${alias}.${name}`);
  return sql`json_object('build_id', ${c("id")}, 'project_id', ${c("project_id")}, 'release_id', ${c("release_id")},
    'name', ${c("name")}, 'build_number', ${c("build_number")}, 'commit_sha', ${c("commit_sha")}, 'branch', ${c("branch")},
    'repo_url', ${c("repo_url")}, 'status', ${c("status")}, 'source', ${c("source")}, 'created_at', ${c("created_at")})`;
}

/**
 * Registers a build, or finds the one already registered under the same project and
 * build_number, or the same commit_sha and name (a CI retry): no duplicate either way. Without a
 * release it joins the end of the project's build queue.
 *
 * Write order: D1 first (the build and its build.created.v1 event, one batch), then the queue
 * object. A failure between them leaves a queued build the object does not list yet; every read
 * of the build or the queue (and a retried registration) adds it then, so the two never disagree
 * for a reader.
 */
export async function registerBuild(ctx: CoreContext, input: RegisterBuildInput): Promise<{ build: Build; created: boolean }> {
  requireScope(ctx.principal, "builds:create");
  const projectId = await resolveProject(ctx, input.projectId ?? (await onlyProject(ctx)));
  if (input.releaseId) await assertReleaseInProject(ctx, input.releaseId, projectId);
  const now = nowIso(ctx.clock);
  const id = newId("bld");
  const values = {
    id,
    organizationId: ctx.principal.organizationId,
    projectId,
    releaseId: input.releaseId ?? null,
    name: input.name,
    buildNumber: input.buildNumber ?? null,
    commitSha: input.commitSha?.toLowerCase() ?? null,
    branch: input.branch ?? null,
    repoUrl: input.repoUrl ?? null,
    status: "planned",
    source: input.source ?? "api",
    createdAt: now,
    updatedAt: now,
  } satisfies typeof builds.$inferInsert;
  await batchAll(ctx.db, [
    // Either identity already taken means the build exists: nothing is inserted, no event written.
    ctx.db.insert(builds).values(values).onConflictDoNothing(),
    sql`INSERT INTO events (id, organization_id, project_id, type, subject_id, payload, created_at)
      SELECT ${sqlIdHead("evt", Date.parse(now))} || ${sql.raw(SQL_ID_TAIL)}, b.organization_id, b.project_id,
        ${BUILD_CREATED_EVENT}, b.id, json_object('type', ${BUILD_CREATED_EVENT}, 'build', ${buildPayloadSql("b")}), ${now}
      FROM builds b WHERE b.id = ${id}`,
  ]);
  const identities: SQL[] = [eq(builds.id, id)];
  if (values.buildNumber !== null) identities.push(eq(builds.buildNumber, values.buildNumber));
  if (values.commitSha !== null) identities.push(and(eq(builds.commitSha, values.commitSha), eq(builds.name, values.name))!);
  const row = await ctx.db
    .select()
    .from(builds)
    .where(and(eq(builds.projectId, projectId), visibleBuilds(ctx.principal), or(...identities)))
    // The new row if there is one; otherwise the build registered first.
    .orderBy(sql`${builds.id} = ${id} DESC`, asc(builds.number))
    .limit(1)
    .get();
  if (!row) throw new Error(`build ${id} neither inserted nor found`);
  return { build: toBuild(row, await syncQueueEntry(ctx, row)), created: row.id === id };
}

/**
 * Reference 000's example registers a build without naming a project: with an organization-wide
 * key that works when the organization has exactly one project (a fresh deployment's), and is
 * refused as a missing project_id otherwise.
 */
async function onlyProject(ctx: CoreContext): Promise<string | undefined> {
  if (ctx.principal.projectId) return undefined;
  const rows = await ctx.db.select({ id: projects.id }).from(projects).where(eq(projects.organizationId, ctx.principal.organizationId)).limit(2);
  return rows.length === 1 ? rows[0]!.id : undefined;
}

async function readBuildRow(ctx: CoreContext, id: string): Promise<BuildRow> {
  const row = await ctx.db.select().from(builds).where(and(eq(builds.id, id), visibleBuilds(ctx.principal))).get();
  if (!row) throw new NotFound("Build", { id });
  return row;
}

export async function getBuild(ctx: CoreContext, id: string): Promise<Build> {
  requireScope(ctx.principal, "builds:read");
  const row = await readBuildRow(ctx, id);
  return toBuild(row, await syncQueueEntry(ctx, row));
}

export interface ListBuildsInput {
  page: PageRequest;
  projectId?: string;
  releaseId?: string;
  status?: BuildStatus;
  branch?: string;
}

/** Builds, newest first, with the queue positions of those waiting for a release. */
export async function listBuilds(ctx: CoreContext, input: ListBuildsInput): Promise<Paged<Build>> {
  requireScope(ctx.principal, "builds:read");
  const conditions = [visibleBuilds(ctx.principal)];
  if (input.projectId !== undefined) {
    await assertProjectVisible(ctx, input.projectId);
    conditions.push(eq(builds.projectId, input.projectId));
  }
  if (input.releaseId !== undefined) conditions.push(eq(builds.releaseId, input.releaseId));
  if (input.status !== undefined) conditions.push(eq(builds.status, input.status));
  if (input.branch !== undefined) conditions.push(eq(builds.branch, input.branch));
  const where = and(...conditions)!;
  const [totalRows, rows] = await ctx.db.batch([
    ctx.db.select({ total: sql<number>`count(*)` }).from(builds).where(where),
    ctx.db.select().from(builds).where(where).orderBy(desc(builds.number)).limit(input.page.limit).offset(input.page.offset),
  ]);
  // One call per project on the page; a queued build the object lacks is added (see registerBuild).
  const positions = new Map<string, number>();
  const queuedByProject = new Map<string, BuildRow[]>();
  for (const row of rows) if (isQueued(row)) queuedByProject.set(row.projectId, [...(queuedByProject.get(row.projectId) ?? []), row]);
  for (const [projectId, queued] of queuedByProject) {
    const queue = queueOf(ctx, projectId);
    const known = await queue.positions(queued.map((r) => r.id));
    for (const row of queued) positions.set(row.id, known[row.id] ?? (await queue.enqueue(row.id)));
  }
  return { items: rows.map((r) => toBuild(r, positions.get(r.id) ?? null)), total: totalRows[0]?.total ?? 0, ...input.page };
}

export interface UpdateBuildInput {
  /** A release of the build's project; null takes the build out of its release (back into the queue). */
  releaseId?: string | null;
  status?: BuildStatus;
}

/**
 * Assigns a build to a release (it leaves the queue; the builds behind it move up), moves it to
 * another, or changes its status. The D1 write is conditional on the state the caller saw, so of
 * two concurrent assignments one wins and the other is told the state it lost to (409), unless
 * it asked for exactly that state. The queue object follows D1 afterwards (see registerBuild).
 */
export async function updateBuild(ctx: CoreContext, id: string, input: UpdateBuildInput): Promise<Build> {
  requireScope(ctx.principal, "builds:update");
  const current = await readBuildRow(ctx, id);
  if (input.releaseId) await assertReleaseInProject(ctx, input.releaseId, current.projectId);
  const wanted = {
    releaseId: input.releaseId === undefined ? current.releaseId : input.releaseId,
    status: input.status ?? current.status,
  };
  const changed = await ctx.db
    .update(builds)
    .set({ releaseId: wanted.releaseId, status: wanted.status, updatedAt: nowIso(ctx.clock) })
    .where(
      and(
        eq(builds.id, id),
        visibleBuilds(ctx.principal),
        current.releaseId === null ? isNull(builds.releaseId) : eq(builds.releaseId, current.releaseId),
        eq(builds.status, current.status),
      ),
    )
    .returning()
    .get();
  const row = changed ?? (await readBuildRow(ctx, id));
  if (!changed && (row.releaseId !== wanted.releaseId || row.status !== wanted.status)) {
    throw new Conflict("The build was changed by another request first; it stands as shown in details.", {
      id,
      release_id: row.releaseId,
      status: row.status,
    });
  }
  return toBuild(row, await syncQueueEntry(ctx, row));
}

/**
 * The project's build queue in order, with each build. D1 says which builds are queued, the
 * object their order; every read repairs a disagreement left by a failure between the two
 * writes of a registration or an assignment, so none shows. The object is listed before D1 is
 * read: a build it lists was written to D1 before it (D1 is written first), so one it lists that
 * D1 does not queue has really left the queue, and is taken out.
 */
export async function getBuildQueue(ctx: CoreContext, projectId: string): Promise<Build[]> {
  requireScope(ctx.principal, "builds:read");
  await assertProjectVisible(ctx, projectId);
  const queue = queueOf(ctx, projectId);
  const listed = await queue.list();
  const queued = await ctx.db
    .select()
    .from(builds)
    .where(and(eq(builds.projectId, projectId), visibleBuilds(ctx.principal), isNull(builds.releaseId), eq(builds.status, "planned")))
    .orderBy(asc(builds.number));
  const byId = new Map(queued.map((r) => [r.id, r]));
  const inObject = new Set(listed.map((e) => e.buildId));
  const remove = listed.filter((e) => !byId.has(e.buildId)).map((e) => e.buildId);
  const add = queued.filter((r) => !inObject.has(r.id)).map((r) => r.id);
  const entries = remove.length > 0 || add.length > 0 ? await queue.reconcile(add, remove) : listed;
  // Builds registered since D1 was read are at the end; they show on the next read.
  return entries.filter((e) => byId.has(e.buildId)).map((e) => toBuild(byId.get(e.buildId)!, e.position));
}
