import { and, desc, eq, sql, type SQL } from "drizzle-orm";
import { tenantScope } from "../tenancy";
import { batchAll, type Statement } from "../../db/batch";
import { releases, type ReleaseGate, type ReleaseRow } from "../../db/schema";
import { SQL_ID_TAIL, newId, sqlIdHead } from "../../lib/ids";
import { type CoreContext, type Principal, nowIso, requireScope } from "../context";
import { Conflict, NotFound } from "../errors";
import type { PageRequest, Paged } from "../pagination";
import { assertProjectVisible } from "../projects/projects";
import { resolveProject } from "../runs/runs";

export const RELEASE_STATUSES = ["planned", "in_progress", "released", "cancelled"] as const;
export type ReleaseStatus = (typeof RELEASE_STATUSES)[number];

/**
 * What clients may send as a status. Reference 001 fires release.released.v1 when a release
 * "changes to completed", so clients written against it send `completed`: it means `released`.
 */
export const RELEASE_STATUS_INPUTS = [...RELEASE_STATUSES, "completed"] as const;
export type ReleaseStatusInput = (typeof RELEASE_STATUS_INPUTS)[number];

export function releaseStatusOf(input: ReleaseStatusInput): ReleaseStatus {
  return input === "completed" ? "released" : input;
}

export const RELEASE_RELEASED_EVENT = "release.released.v1";

/** The effective gate: what a release's build must meet, defaults filled in. */
export interface Gate {
  /** 0..1: (passed + flaky) ÷ (passed + flaky + failed) test cases. */
  minPassRate: number;
  /** Any failing test case that is not quarantined blocks the release. */
  blockOnFailures: boolean;
}

export const DEFAULT_GATE: Gate = { minPassRate: 0.95, blockOnFailures: true };

/** A gate as a client sends it: a field left out keeps its value, null returns it to the default. */
export interface GateInput {
  minPassRate?: number | null;
  blockOnFailures?: boolean | null;
}

export interface Release {
  id: string;
  organizationId: string;
  projectId: string;
  name: string;
  version: string | null;
  status: ReleaseStatus;
  /** YYYY-MM-DD */
  targetDate: string | null;
  gate: Gate;
  releasedAt: string | null;
  createdAt: string;
  updatedAt: string;
}

export function effectiveGate(stored: ReleaseGate): Gate {
  return {
    minPassRate: stored.min_pass_rate ?? DEFAULT_GATE.minPassRate,
    blockOnFailures: stored.block_on_failures ?? DEFAULT_GATE.blockOnFailures,
  };
}

export function toRelease(row: ReleaseRow): Release {
  return {
    id: row.id,
    organizationId: row.organizationId,
    projectId: row.projectId,
    name: row.name,
    version: row.version,
    status: row.status as ReleaseStatus,
    targetDate: row.targetDate,
    gate: effectiveGate(row.gate),
    releasedAt: row.releasedAt,
    createdAt: row.createdAt,
    updatedAt: row.updatedAt,
  };
}

/** The stored gate keeps only what was set, so a later change of a default reaches every release that did not choose. */
function storedGatePatch(input: GateInput): Record<string, number | boolean | null> {
  const patch: Record<string, number | boolean | null> = {};
  if (input.minPassRate !== undefined) patch.min_pass_rate = input.minPassRate;
  if (input.blockOnFailures !== undefined) patch.block_on_failures = input.blockOnFailures;
  return patch;
}

/** The SQL condition limiting releases to what the principal may see. */
export function visibleReleases(principal: Principal): SQL {
  return tenantScope(principal, { organizationId: releases.organizationId, projectId: releases.projectId });
}

/**
 * INSERT … SELECT of the release.released.v1 event for the release row matching `where`, which
 * names the table unaliased (as visibleReleases does). Nothing is written when no row matches,
 * which is how callers make the event conditional on the row's status before their change. The
 * statement may run before the status is written, so the payload states the status and the
 * release time it is about to have.
 */
function insertReleasedEvent(where: SQL, releasedAt: string): SQL {
  const type = RELEASE_RELEASED_EVENT;
  return sql`INSERT INTO events (id, organization_id, project_id, type, subject_id, payload, created_at)
    SELECT ${sqlIdHead("evt", Date.parse(releasedAt))} || ${sql.raw(SQL_ID_TAIL)}, releases.organization_id, releases.project_id,
      ${type}, releases.id,
      json_object('type', ${type}, 'release', json_object(
        'release_id', releases.id, 'project_id', releases.project_id, 'name', releases.name, 'version', releases.version,
        'status', 'released', 'target_date', releases.target_date, 'released_at', ${releasedAt},
        'created_at', releases.created_at)),
      ${releasedAt}
    FROM releases WHERE ${where}`;
}

function duplicateName(name: string): Conflict {
  return new Conflict(`A release named '${name}' already exists in this project.`, { field: "name", reason: "duplicate" });
}

/** D1 reports a unique index violation only through its message; the whole batch has rolled back. */
function isDuplicateName(error: unknown): boolean {
  for (let e: unknown = error; e instanceof Error; e = e.cause) {
    if (e.message.includes("UNIQUE constraint failed: releases.project_id, releases.name")) return true;
  }
  return false;
}

async function readRelease(ctx: CoreContext, id: string): Promise<Release | null> {
  const row = await ctx.db
    .select()
    .from(releases)
    .where(and(eq(releases.id, id), visibleReleases(ctx.principal)))
    .get();
  return row ? toRelease(row) : null;
}

/** A release the principal may see, without a scope check: for verbs that answer with the release. */
export async function readVisibleRelease(ctx: CoreContext, id: string): Promise<Release> {
  const release = await readRelease(ctx, id);
  if (!release) throw new NotFound("Release", { id });
  return release;
}

export interface CreateReleaseInput {
  /** Optional for a project-restricted key: its project is implied. */
  projectId?: string;
  name: string;
  version?: string | null;
  status?: ReleaseStatusInput;
  targetDate?: string | null;
  gate?: GateInput;
}

export async function createRelease(ctx: CoreContext, input: CreateReleaseInput): Promise<Release> {
  requireScope(ctx.principal, "builds:update");
  const projectId = await resolveProject(ctx, input.projectId);
  const now = nowIso(ctx.clock);
  const id = newId("rel");
  const status = releaseStatusOf(input.status ?? "planned");
  // On create, null (the default) and leaving the field out store the same: nothing.
  const gate = Object.fromEntries(Object.entries(storedGatePatch(input.gate ?? {})).filter(([, v]) => v !== null)) as ReleaseGate;
  const insert = ctx.db
    .insert(releases)
    .values({
      id,
      organizationId: ctx.principal.organizationId,
      projectId,
      name: input.name,
      version: input.version ?? null,
      status,
      targetDate: input.targetDate ?? null,
      gate,
      releasedAt: status === "released" ? now : null,
      createdAt: now,
      updatedAt: now,
    })
    .onConflictDoNothing({ target: [releases.projectId, releases.name] })
    .returning({ id: releases.id });
  // A release created as released has changed to released as much as one patched into it.
  const released = insertReleasedEvent(sql`${releases.id} = ${id} AND ${releases.status} = 'released'`, now);
  const [inserted] = await batchAll(ctx.db, [insert, released]);
  if (inserted!.results.length === 0) throw duplicateName(input.name);
  return readVisibleRelease(ctx, id);
}

export interface ListReleasesInput {
  page: PageRequest;
  projectId?: string;
  status?: ReleaseStatusInput;
}

export async function listReleases(ctx: CoreContext, input: ListReleasesInput): Promise<Paged<Release>> {
  requireScope(ctx.principal, "builds:read");
  const conditions = [visibleReleases(ctx.principal)];
  if (input.projectId !== undefined) {
    // A project the key cannot see is 404, as for every other project-scoped list, not an empty page.
    await assertProjectVisible(ctx, input.projectId);
    conditions.push(eq(releases.projectId, input.projectId));
  }
  if (input.status !== undefined) conditions.push(eq(releases.status, releaseStatusOf(input.status)));
  const where = and(...conditions)!;
  const [totalRows, rows] = await ctx.db.batch([
    ctx.db.select({ total: sql<number>`count(*)` }).from(releases).where(where),
    ctx.db.select().from(releases).where(where).orderBy(desc(releases.number)).limit(input.page.limit).offset(input.page.offset),
  ]);
  return { items: rows.map(toRelease), total: totalRows[0]?.total ?? 0, ...input.page };
}

export async function getRelease(ctx: CoreContext, id: string): Promise<Release> {
  requireScope(ctx.principal, "builds:read");
  return readVisibleRelease(ctx, id);
}

export interface UpdateReleaseInput {
  name?: string;
  version?: string | null;
  status?: ReleaseStatusInput;
  targetDate?: string | null;
  gate?: GateInput;
}

/**
 * Changes what was sent and keeps the rest. Moving a release into `released` sets released_at
 * and writes release.released.v1 in the same batch, once: the event's INSERT … SELECT runs
 * before the status is written and matches only a row not yet released, so a repeated PATCH, or
 * two racing ones, write one event. Moving it out of `released` clears released_at; releasing it
 * again is a new release moment with its own event.
 */
export async function updateRelease(ctx: CoreContext, id: string, input: UpdateReleaseInput): Promise<Release> {
  requireScope(ctx.principal, "builds:update");
  const now = nowIso(ctx.clock);
  const where = and(eq(releases.id, id), visibleReleases(ctx.principal))!;
  const status = input.status === undefined ? undefined : releaseStatusOf(input.status);
  const changes: Record<string, unknown> = { updatedAt: now };
  if (input.name !== undefined) changes.name = input.name;
  if (input.version !== undefined) changes.version = input.version;
  if (input.targetDate !== undefined) changes.targetDate = input.targetDate;
  if (input.gate !== undefined) {
    // A JSON merge patch: fields sent replace, null removes (back to the default), others stay.
    changes.gate = sql`json_patch(${releases.gate}, ${JSON.stringify(storedGatePatch(input.gate))})`;
  }
  if (status !== undefined && status !== "released") {
    changes.status = status;
    changes.releasedAt = null;
  }
  const statements: Statement[] = [ctx.db.update(releases).set(changes).where(where)];
  if (status === "released") {
    statements.push(
      insertReleasedEvent(and(where, sql`${releases.status} <> 'released'`)!, now),
      ctx.db
        .update(releases)
        .set({ status, releasedAt: sql`CASE WHEN ${releases.status} = 'released' THEN ${releases.releasedAt} ELSE ${now} END` })
        .where(where),
    );
  }
  try {
    await batchAll(ctx.db, statements);
  } catch (error) {
    // Only a new name can collide.
    if (isDuplicateName(error)) throw duplicateName(input.name!);
    throw error;
  }
  return readVisibleRelease(ctx, id);
}
