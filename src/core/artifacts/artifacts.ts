import { and, desc, eq, sql } from "drizzle-orm";
import { artifacts, results, testRuns, type ArtifactRow } from "../../db/schema";
import { newId } from "../../lib/ids";
import { type CoreContext, nowIso, requireScope } from "../context";
import { Invalid, NotFound, TooLarge, UnsupportedMediaType } from "../errors";
import type { PageRequest, Paged } from "../pagination";
import { visibleRuns } from "../runs/runs";
import { artifactObjectKey, stagingObjectKey } from "../storage/r2";
import { tenantScope } from "../tenancy";
import { displayFileName } from "./file-names";
import { writeKnownLength, writeStream } from "./r2-writer";
import { ARTIFACT_RULES, type ArtifactType, HEAD_BYTES, checkArtifact, checkArtifactSize, isArtifactType, streamWithLimit } from "./types";
import { type Disposition, downloadUrlExpiry, signArtifactUrl } from "./url-signing";

export const ARTIFACT_STATUSES = ["stored", "uploading"] as const;

export interface Artifact {
  id: string;
  organizationId: string;
  projectId: string;
  runId: string;
  resultId: string | null;
  type: ArtifactType;
  fileName: string;
  format: string | null;
  mimeType: string | null;
  size: number | null;
  status: (typeof ARTIFACT_STATUSES)[number];
  /** For an open multipart upload: when it is abandoned. */
  expiresAt: string | null;
  createdAt: string;
  updatedAt: string;
}

/** An artifact with a fresh signed download link (absolute, expiring). */
export interface ArtifactLink extends Artifact {
  url: string | null;
  urlExpiresAt: string | null;
}

export function toArtifact(row: ArtifactRow): Artifact {
  return {
    id: row.id,
    organizationId: row.organizationId,
    projectId: row.projectId,
    runId: row.runId,
    resultId: row.resultId,
    type: row.type as ArtifactType,
    fileName: row.fileName,
    format: row.format,
    mimeType: row.mimeType,
    size: row.size,
    status: row.status as Artifact["status"],
    expiresAt: row.expiresAt,
    createdAt: row.createdAt,
    updatedAt: row.updatedAt,
  };
}

export const visibleArtifacts = (ctx: CoreContext) =>
  tenantScope(ctx.principal, { organizationId: artifacts.organizationId, projectId: artifacts.projectId });

function signingSecret(ctx: Pick<CoreContext, "env">): string {
  const secret = ctx.env.URL_SIGNING_SECRET;
  if (!secret) throw new Error("URL_SIGNING_SECRET is not set: artifact links cannot be signed.");
  return secret;
}

/** Images and videos open in the browser; archives download. */
export function dispositionOf(type: ArtifactType): Disposition {
  return type === "screenshot" || type === "video" ? "inline" : "attachment";
}

/** The artifact with a download link signed now, valid for the default hour, on `baseUrl`. */
export async function withLink(ctx: Pick<CoreContext, "env" | "clock">, artifact: Artifact, baseUrl: string): Promise<ArtifactLink> {
  if (artifact.status !== "stored") return { ...artifact, url: null, urlExpiresAt: null };
  const expiresAt = downloadUrlExpiry(ctx.clock.now());
  const url = await signArtifactUrl({ baseUrl, artifactId: artifact.id, expiresAt, secret: signingSecret(ctx), disposition: dispositionOf(artifact.type) });
  return { ...artifact, url, urlExpiresAt: expiresAt.toISOString() };
}

/** Where an upload goes: its type, run (and result), and the client's file name. */
export interface ArtifactTarget {
  type: string;
  runId: string;
  /** The reporting surface's testId: a result of the run. */
  resultId?: string | null;
  /** When given, the run must belong to it (the reporting surface sends it). */
  projectId?: string | null;
  fileName: string;
  /** The names the client used for these fields, for error messages: native run_id, reporting runId. */
  fields?: { type?: string; runId?: string; resultId?: string; file?: string };
}

interface Resolved {
  type: ArtifactType;
  fileName: string;
  run: { id: string; organizationId: string; projectId: string };
  resultId: string | null;
}

/**
 * Checks a target before anything is stored: a known type, a safe file name, a run the caller may
 * see (a foreign or missing run answers 404, as a missing one does), and a result of that run.
 */
export async function resolveTarget(ctx: CoreContext, target: ArtifactTarget): Promise<Resolved> {
  requireScope(ctx.principal, "artifacts:write");
  const names = { type: "type", runId: "run_id", resultId: "result_id", file: "file", ...target.fields };
  if (!isArtifactType(target.type)) {
    throw Invalid.field(names.type, "invalid_value", "must be one of screenshot, video, trace, report");
  }
  const name = displayFileName(target.fileName);
  if (!name.ok) throw Invalid.field(names.file, "invalid_value", `has an unusable file name: ${name.reason}`);
  const [runs, owners] = await ctx.db.batch([
    ctx.db
      .select({ id: testRuns.id, organizationId: testRuns.organizationId, projectId: testRuns.projectId })
      .from(testRuns)
      .where(and(eq(testRuns.id, target.runId), visibleRuns(ctx.principal))),
    ctx.db
      .select({ runId: results.runId })
      .from(results)
      .where(and(eq(results.id, target.resultId ?? ""), eq(results.organizationId, ctx.principal.organizationId))),
  ]);
  const run = runs[0];
  if (!run || (target.projectId && run.projectId !== target.projectId)) throw new NotFound("Test run", { id: target.runId });
  if (target.resultId && owners[0]?.runId !== run.id) {
    throw Invalid.field(names.resultId, "invalid_value", `must name a result of run ${run.id}`);
  }
  return { type: target.type, fileName: name.name, run, resultId: target.resultId ?? null };
}

export function tooLarge(type: ArtifactType, size: number): TooLarge {
  const failure = checkArtifactSize(type, size);
  return new TooLarge(failure?.message ?? `The file is larger than a ${type} may be.`, { max_bytes: ARTIFACT_RULES[type].maxBytes });
}

/**
 * Stores the content of an upload whose target is already known, streaming it to R2: a declared
 * size over the type's limit is refused before a byte is read (413), the first bytes decide the
 * format (415 when they are not one the type allows), and the limit is enforced while streaming
 * when no size was declared. Nothing is left in R2 or D1 when it fails.
 */
export async function storeArtifact(
  ctx: CoreContext,
  resolved: Resolved,
  body: ReadableStream<Uint8Array>,
  declaredSize?: number,
): Promise<Artifact> {
  const rule = ARTIFACT_RULES[resolved.type];
  if (declaredSize !== undefined && declaredSize > rule.maxBytes) {
    await body.cancel().catch(() => undefined);
    throw tooLarge(resolved.type, declaredSize);
  }
  const limited = streamWithLimit(body, rule.maxBytes);
  const head = await limited.head;
  const check = checkArtifact(resolved.type, head);
  if (!check.ok) {
    await limited.body.cancel().catch(() => undefined);
    if (check.kind === "too_large") throw tooLarge(resolved.type, limited.bytes());
    throw new UnsupportedMediaType(check.message, { type: resolved.type });
  }
  const id = newId("art");
  const key = artifactObjectKey(resolved.run.projectId, resolved.run.id, id);
  let size: number;
  try {
    size = (await writeStream(ctx.env.ARTIFACTS, key, limited.body, { httpMetadata: { contentType: check.mimeType } })).size;
  } catch (err) {
    if (limited.exceeded()) throw tooLarge(resolved.type, limited.bytes());
    throw err;
  }
  return insertStored(ctx, resolved, { id, key, size, format: check.format, mimeType: check.mimeType });
}

async function insertStored(
  ctx: CoreContext,
  resolved: Resolved,
  stored: { id: string; key: string; size: number; format: string; mimeType: string },
): Promise<Artifact> {
  const now = nowIso(ctx.clock);
  try {
    const row = await ctx.db
      .insert(artifacts)
      .values({
        id: stored.id,
        organizationId: resolved.run.organizationId,
        projectId: resolved.run.projectId,
        runId: resolved.run.id,
        resultId: resolved.resultId,
        type: resolved.type,
        fileName: resolved.fileName,
        format: stored.format,
        mimeType: stored.mimeType,
        size: stored.size,
        objectKey: stored.key,
        status: "stored",
        createdBy: ctx.principal.keyId,
        createdAt: now,
        updatedAt: now,
      })
      .returning()
      .get();
    return toArtifact(row);
  } catch (err) {
    // The run went away meanwhile (its row cascades artifacts), or D1 failed: no orphan object.
    await ctx.env.ARTIFACTS.delete(stored.key).catch(() => undefined);
    throw err;
  }
}

/** A file that arrived before the fields saying where it goes (reference 003's curl sends it first). */
export interface StagedUpload {
  key: string;
  head: Uint8Array;
  size: number;
  /** Over the largest type's limit: refused whatever its type turns out to be. */
  overLimit: boolean;
}

const LARGEST_ARTIFACT = Math.max(...Object.values(ARTIFACT_RULES).map((r) => r.maxBytes));

/**
 * Streams a file whose target is not known yet into a staging object, keeping its first bytes;
 * storeStaged moves it once the target is known. The cron deletes staging objects left behind.
 */
export async function stageUpload(ctx: CoreContext, body: ReadableStream<Uint8Array>): Promise<StagedUpload> {
  requireScope(ctx.principal, "artifacts:write");
  const limited = streamWithLimit(body, LARGEST_ARTIFACT);
  const key = stagingObjectKey(ctx.principal.organizationId, newId("art"));
  const headPromise = limited.head;
  try {
    const { size } = await writeStream(ctx.env.ARTIFACTS, key, limited.body);
    return { key, head: (await headPromise).slice(0, HEAD_BYTES), size, overLimit: false };
  } catch (err) {
    if (limited.exceeded()) return { key, head: await headPromise.catch(() => new Uint8Array()), size: limited.bytes(), overLimit: true };
    throw err;
  }
}

/** Checks a staged file against its target and moves it to its own key; the staging object goes either way. */
export async function storeStaged(ctx: CoreContext, resolved: Resolved, staged: StagedUpload): Promise<Artifact> {
  const bucket = ctx.env.ARTIFACTS;
  try {
    if (staged.overLimit) throw tooLarge(resolved.type, staged.size);
    const check = checkArtifact(resolved.type, staged.head, staged.size);
    if (!check.ok) {
      if (check.kind === "too_large") throw tooLarge(resolved.type, staged.size);
      throw new UnsupportedMediaType(check.message, { type: resolved.type });
    }
    const object = await bucket.get(staged.key);
    if (!object) throw new Error(`staged upload ${staged.key} is missing`);
    const id = newId("art");
    const key = artifactObjectKey(resolved.run.projectId, resolved.run.id, id);
    await writeKnownLength(bucket, key, object.body, object.size, { httpMetadata: { contentType: check.mimeType } });
    return await insertStored(ctx, resolved, { id, key, size: object.size, format: check.format, mimeType: check.mimeType });
  } finally {
    await bucket.delete(staged.key).catch(() => undefined);
  }
}

/** Deletes a staged file whose upload failed before its target was known. */
export async function discardStaged(ctx: CoreContext, staged: StagedUpload): Promise<void> {
  await ctx.env.ARTIFACTS.delete(staged.key).catch(() => undefined);
}

export async function getArtifact(ctx: CoreContext, id: string): Promise<Artifact> {
  requireScope(ctx.principal, "artifacts:read");
  const row = await ctx.db.select().from(artifacts).where(and(eq(artifacts.id, id), visibleArtifacts(ctx))).get();
  if (!row) throw new NotFound("Artifact", { id });
  return toArtifact(row);
}

/** Removes an artifact whose upload failed after it was stored (a bad field after the file). */
export async function discardArtifact(ctx: CoreContext, id: string): Promise<void> {
  const row = await ctx.db.select({ key: artifacts.objectKey }).from(artifacts).where(and(eq(artifacts.id, id), visibleArtifacts(ctx))).get();
  if (!row) return;
  await ctx.env.ARTIFACTS.delete(row.key);
  await ctx.db.delete(artifacts).where(and(eq(artifacts.id, id), visibleArtifacts(ctx)));
}

/** Attaches a stored artifact to a result (already checked to be of its run). */
export async function attachResult(ctx: CoreContext, id: string, resultId: string | null): Promise<Artifact> {
  const row = await ctx.db
    .update(artifacts)
    .set({ resultId, updatedAt: nowIso(ctx.clock) })
    .where(and(eq(artifacts.id, id), visibleArtifacts(ctx)))
    .returning()
    .get();
  if (!row) throw new NotFound("Artifact", { id });
  return toArtifact(row);
}

/** Deletes the object, then the row: deleting again (or a missing id) succeeds, as for runs. */
export async function deleteArtifact(ctx: CoreContext, id: string): Promise<void> {
  requireScope(ctx.principal, "artifacts:write");
  const row = await ctx.db.select().from(artifacts).where(and(eq(artifacts.id, id), visibleArtifacts(ctx))).get();
  if (!row) return;
  if (row.status === "uploading" && row.uploadId) {
    await ctx.env.ARTIFACTS.resumeMultipartUpload(row.objectKey, row.uploadId).abort().catch(() => undefined);
  }
  await ctx.env.ARTIFACTS.delete(row.objectKey);
  await ctx.db.delete(artifacts).where(and(eq(artifacts.id, id), visibleArtifacts(ctx)));
}

/** A run's artifacts, or a result's (newest first). Reading them needs artifacts:read. */
export async function listArtifacts(
  ctx: CoreContext,
  owner: { runId: string } | { resultId: string },
  page: PageRequest,
): Promise<Paged<Artifact>> {
  requireScope(ctx.principal, "artifacts:read");
  if ("runId" in owner) {
    const run = await ctx.db.select({ id: testRuns.id }).from(testRuns).where(and(eq(testRuns.id, owner.runId), visibleRuns(ctx.principal))).get();
    if (!run) throw new NotFound("Test run", { id: owner.runId });
  } else {
    const result = await ctx.db
      .select({ id: results.id })
      .from(results)
      .where(and(eq(results.id, owner.resultId), tenantScope(ctx.principal, { organizationId: results.organizationId, projectId: results.projectId })))
      .get();
    if (!result) throw new NotFound("Result", { id: owner.resultId });
  }
  const where = and("runId" in owner ? eq(artifacts.runId, owner.runId) : eq(artifacts.resultId, owner.resultId), visibleArtifacts(ctx))!;
  const [rows, totals] = await ctx.db.batch([
    ctx.db.select().from(artifacts).where(where).orderBy(desc(artifacts.number)).limit(page.limit).offset(page.offset),
    ctx.db.select({ n: sql<number>`count(*)` }).from(artifacts).where(where),
  ]);
  return { items: rows.map(toArtifact), total: totals[0]?.n ?? 0, ...page };
}

/**
 * The object behind a signed download link. The signature (checked by the caller) is what
 * authorizes it, so this reads by id alone; a link to a deleted artifact answers 404.
 */
export async function artifactForDownload(ctx: Pick<CoreContext, "db">, id: string): Promise<Artifact & { objectKey: string }> {
  const row = await ctx.db.select().from(artifacts).where(and(eq(artifacts.id, id), eq(artifacts.status, "stored"))).get();
  if (!row) throw new NotFound("Artifact", { id });
  return { ...toArtifact(row), objectKey: row.objectKey };
}
