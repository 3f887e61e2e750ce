import { and, asc, eq, sql } from "drizzle-orm";
import { batchAll } from "../../db/batch";
import type { Db } from "../../db/client";
import { artifactParts, artifacts } from "../../db/schema";
import { newId } from "../../lib/ids";
import { type CoreContext, nowIso, requireScope } from "../context";
import { Conflict, Invalid, NotFound, TooLarge, UnsupportedMediaType } from "../errors";
import { artifactObjectKey } from "../storage/r2";
import { type Artifact, type ArtifactTarget, resolveTarget, toArtifact, visibleArtifacts } from "./artifacts";
import { ARTIFACT_RULES, type ArtifactType, checkArtifact, checkArtifactSize, streamWithLimit } from "./types";

/** R2 needs every part but the last to be at least 5 MiB, and all of them the same size. */
export const UPLOAD_MIN_PART_BYTES = 5 * 1024 * 1024;
/** A part is one request body: a Worker's request is at most 100 MB. */
export const UPLOAD_MAX_PART_BYTES = 100 * 1024 * 1024;
export const UPLOAD_MAX_PARTS = 10_000;
/** An upload not completed by then is aborted by the cron. */
export const UPLOAD_TTL_MS = 24 * 60 * 60 * 1000;

export interface UploadPart {
  partNumber: number;
  size: number;
  createdAt: string;
}

export interface ArtifactUpload extends Artifact {
  parts: UploadPart[];
}

async function partsOf(db: Db, artifactId: string): Promise<UploadPart[]> {
  const rows = await db.select().from(artifactParts).where(eq(artifactParts.artifactId, artifactId)).orderBy(asc(artifactParts.partNumber));
  return rows.map((p) => ({ partNumber: p.partNumber, size: p.size, createdAt: p.createdAt }));
}

/**
 * Opens a multipart upload for a file too large for one request (a report up to 200 MB): the
 * target is checked now, a declared size over the type's limit is refused now, and R2 keeps the
 * parts until complete.
 */
export async function openArtifactUpload(ctx: CoreContext, target: ArtifactTarget & { size?: number }): Promise<ArtifactUpload> {
  const resolved = await resolveTarget(ctx, target);
  if (target.size !== undefined) {
    const failure = checkArtifactSize(resolved.type, target.size);
    if (failure) throw new TooLarge(failure.message, { max_bytes: ARTIFACT_RULES[resolved.type].maxBytes });
  }
  const id = newId("art");
  const key = artifactObjectKey(resolved.run.projectId, resolved.run.id, id);
  const upload = await ctx.env.ARTIFACTS.createMultipartUpload(key);
  const now = nowIso(ctx.clock);
  try {
    const row = await ctx.db
      .insert(artifacts)
      .values({
        id,
        organizationId: resolved.run.organizationId,
        projectId: resolved.run.projectId,
        runId: resolved.run.id,
        resultId: resolved.resultId,
        type: resolved.type,
        fileName: resolved.fileName,
        objectKey: key,
        status: "uploading",
        uploadId: upload.uploadId,
        expiresAt: new Date(Date.parse(now) + UPLOAD_TTL_MS).toISOString(),
        createdBy: ctx.principal.keyId,
        createdAt: now,
        updatedAt: now,
      })
      .returning()
      .get();
    return { ...toArtifact(row), parts: [] };
  } catch (err) {
    await upload.abort().catch(() => undefined);
    throw err;
  }
}

async function openUpload(ctx: CoreContext, id: string) {
  const row = await ctx.db.select().from(artifacts).where(and(eq(artifacts.id, id), visibleArtifacts(ctx))).get();
  if (!row) throw new NotFound("Upload", { id });
  if (row.status !== "uploading" || !row.uploadId) throw new Conflict("This artifact is already stored; parts can be added only to an open upload.", { status: row.status });
  return row;
}

/**
 * Stores part `partNumber` (its Content-Length is required: R2 needs the length of what it is
 * given). The total of the parts may not exceed the type's limit, decided before reading; part 1
 * must begin with one of the type's formats. A part sent again replaces the earlier one.
 */
export async function putArtifactPart(
  ctx: CoreContext,
  id: string,
  partNumber: number,
  body: ReadableStream<Uint8Array> | null,
  /** The request's Content-Length, as sent (checked once the upload is known to exist). */
  declaredLength: string | undefined,
): Promise<ArtifactUpload> {
  requireScope(ctx.principal, "artifacts:write");
  if (!Number.isInteger(partNumber) || partNumber < 1 || partNumber > UPLOAD_MAX_PARTS) {
    throw Invalid.field("n", "invalid_value", `must be a part number from 1 to ${UPLOAD_MAX_PARTS}`, { location: "path" });
  }
  const row = await openUpload(ctx, id);
  const length = Number(declaredLength);
  if (!declaredLength || !Number.isInteger(length) || length < 1 || !body) {
    throw Invalid.field("content-length", "required", "is required: each part is a non-empty body that declares its length (R2 needs it)", { location: "header" });
  }
  const type = row.type as ArtifactType;
  const rule = ARTIFACT_RULES[type];
  if (length > UPLOAD_MAX_PART_BYTES) throw new TooLarge(`A part may be at most ${UPLOAD_MAX_PART_BYTES} bytes.`, { max_bytes: UPLOAD_MAX_PART_BYTES });
  const others = (await partsOf(ctx.db, id)).filter((p) => p.partNumber !== partNumber).reduce((sum, p) => sum + p.size, 0);
  if (others + length > rule.maxBytes) {
    throw new TooLarge(checkArtifactSize(type, others + length)?.message ?? "Too large.", { max_bytes: rule.maxBytes, received_bytes: others });
  }
  const limited = streamWithLimit(body, length);
  let format: { format: string; mimeType: string } | null = null;
  if (partNumber === 1) {
    const check = checkArtifact(type, await limited.head);
    if (!check.ok) {
      await limited.body.cancel().catch(() => undefined);
      throw new UnsupportedMediaType(check.message, { type });
    }
    format = check;
  }
  const fixed = new FixedLengthStream(length);
  const piping = limited.body.pipeTo(fixed.writable);
  const upload = ctx.env.ARTIFACTS.resumeMultipartUpload(row.objectKey, row.uploadId!);
  const [uploaded] = await Promise.all([upload.uploadPart(partNumber, fixed.readable), piping]);
  const now = nowIso(ctx.clock);
  await batchAll(ctx.db, [
    sql`INSERT INTO artifact_parts (artifact_id, part_number, size, etag, created_at) VALUES (${id}, ${partNumber}, ${length}, ${uploaded.etag}, ${now})
      ON CONFLICT (artifact_id, part_number) DO UPDATE SET size = excluded.size, etag = excluded.etag, created_at = excluded.created_at`,
    ctx.db
      .update(artifacts)
      .set({ updatedAt: now, ...(format ? { format: format.format, mimeType: format.mimeType } : {}) })
      .where(and(eq(artifacts.id, id), visibleArtifacts(ctx))),
  ]);
  return getArtifactUpload(ctx, id);
}

export async function getArtifactUpload(ctx: CoreContext, id: string): Promise<ArtifactUpload> {
  requireScope(ctx.principal, "artifacts:read");
  const row = await ctx.db.select().from(artifacts).where(and(eq(artifacts.id, id), visibleArtifacts(ctx))).get();
  if (!row) throw new NotFound("Upload", { id });
  return { ...toArtifact(row), parts: await partsOf(ctx.db, id) };
}

/**
 * Completes the upload from parts 1..n: no gaps, every part but the last the same size and at
 * least 5 MiB (R2's rule, checked here so the client hears which part is wrong). Completing a
 * stored artifact again answers it as it is.
 */
export async function completeArtifactUpload(ctx: CoreContext, id: string): Promise<Artifact> {
  requireScope(ctx.principal, "artifacts:write");
  const current = await ctx.db.select().from(artifacts).where(and(eq(artifacts.id, id), visibleArtifacts(ctx))).get();
  if (!current) throw new NotFound("Upload", { id });
  if (current.status === "stored") return toArtifact(current);
  const parts = await ctx.db.select().from(artifactParts).where(eq(artifactParts.artifactId, id)).orderBy(asc(artifactParts.partNumber));
  if (parts.length === 0) throw new Conflict("The upload has no parts yet.", { parts: 0 });
  const missing = parts.findIndex((p, i) => p.partNumber !== i + 1);
  if (missing !== -1) throw new Conflict(`Part ${missing + 1} is missing: parts must be numbered 1 to n without gaps.`, { missing_part: missing + 1 });
  const size = parts[0]!.size;
  const uneven = parts.slice(0, -1).find((p) => p.size !== size || p.size < UPLOAD_MIN_PART_BYTES);
  if (uneven) {
    throw new Conflict(
      `Every part but the last must have the same size, at least ${UPLOAD_MIN_PART_BYTES} bytes: part ${uneven.partNumber} has ${uneven.size}, part 1 has ${size}.`,
      { part: uneven.partNumber },
    );
  }
  const upload = ctx.env.ARTIFACTS.resumeMultipartUpload(current.objectKey, current.uploadId!);
  await upload.complete(parts.map((p) => ({ partNumber: p.partNumber, etag: p.etag })));
  const now = nowIso(ctx.clock);
  const total = parts.reduce((sum, p) => sum + p.size, 0);
  const [, updated] = await batchAll(ctx.db, [
    ctx.db.delete(artifactParts).where(eq(artifactParts.artifactId, id)),
    ctx.db
      .update(artifacts)
      .set({ status: "stored", size: total, uploadId: null, expiresAt: null, updatedAt: now })
      .where(and(eq(artifacts.id, id), visibleArtifacts(ctx)))
      .returning(),
  ]);
  const row = updated?.results[0] as Record<string, unknown> | undefined;
  if (!row) throw new NotFound("Upload", { id });
  return getArtifactAfterComplete(ctx, id);
}

async function getArtifactAfterComplete(ctx: CoreContext, id: string): Promise<Artifact> {
  const row = await ctx.db.select().from(artifacts).where(and(eq(artifacts.id, id), visibleArtifacts(ctx))).get();
  if (!row) throw new NotFound("Upload", { id });
  return toArtifact(row);
}

/** Abandons an open upload: R2 drops its parts and the row goes. Idempotent. */
export async function abortArtifactUpload(ctx: CoreContext, id: string): Promise<void> {
  requireScope(ctx.principal, "artifacts:write");
  const row = await ctx.db.select().from(artifacts).where(and(eq(artifacts.id, id), visibleArtifacts(ctx))).get();
  if (!row) return;
  if (row.status !== "uploading") throw new Conflict("This artifact is stored; delete it with DELETE /artifacts/{id}.", { status: row.status });
  await ctx.env.ARTIFACTS.resumeMultipartUpload(row.objectKey, row.uploadId!).abort().catch(() => undefined);
  await ctx.db.delete(artifacts).where(and(eq(artifacts.id, id), visibleArtifacts(ctx)));
}
