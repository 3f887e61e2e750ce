import { log } from "../../lib/log";
import { and, asc, eq, inArray, lt, sql, type SQL } from "drizzle-orm";
import { tenantScope } from "../tenancy";
import { batchAll } from "../../db/batch";
import { ingestParts, ingests, type IngestPartRow, type IngestRow } from "../../db/schema";
import { INGEST_FORMATS, type IngestFormat, type ReportMetadata } from "../../ingest";
import { newId } from "../../lib/ids";
import { type CoreContext, type Principal, nowIso, requireScope } from "../context";
import { Conflict, Invalid, NotFound, TooLarge } from "../errors";
import { deleteRun, readVisibleRun, resolveProject } from "../runs/runs";
import { deleteR2Prefix } from "../storage/r2";
import {
  type IngestOutcome,
  type IngestTarget,
  SYNC_INGEST_MAX_BYTES,
  SYNC_INGEST_MAX_RESULTS,
  ingestParsedReport,
  parseHead,
  parseWhole,
  reportFormat,
  runForReport,
} from "./ingest";
import { type StoredSource, deleteSegments, ingestObjectPrefix, partPrefix, readSegments, storeSegments } from "./source";

/** The most one request may carry (the platform's request body limit on most plans). */
export const REQUEST_MAX_BYTES = 100 * 1024 * 1024;
/** A chunked upload: up to this many parts, each one request, and this much in all. */
export const UPLOAD_MAX_PARTS = 10_000;
export const UPLOAD_MAX_BYTES = 5 * 1024 * 1024 * 1024;
/** An upload not completed within this time is abandoned and its parts deleted. */
export const UPLOAD_TTL_MS = 24 * 60 * 60 * 1000;
/** Finished ingests (their status, not their results) are kept this long. */
export const INGEST_RETENTION_MS = 7 * 24 * 60 * 60 * 1000;

export const INGEST_STATUSES = ["uploading", "queued", "processing", "done", "failed"] as const;
export type IngestStatus = (typeof INGEST_STATUSES)[number];

export const INGEST_MESSAGE = "ingest.process";

export interface IngestPart {
  partNumber: number;
  bytes: number;
  sha256: string;
  createdAt: string;
}

export interface Ingest {
  id: string;
  projectId: string;
  runId: string | null;
  status: IngestStatus;
  format: IngestFormat | null;
  bytesTotal: number;
  bytesProcessed: number;
  results: number;
  superseded: number;
  chunks: number;
  d1Calls: number;
  attempts: number;
  reportTotals: Record<string, number> | null;
  error: { message: string; details?: Record<string, unknown> } | null;
  createdAt: string;
  updatedAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  /** For an upload: when it is abandoned unless completed. */
  expiresAt: string | null;
  /** The parts received so far, while uploading. */
  parts: IngestPart[] | null;
}

function visibleIngests(principal: Principal): SQL {
  return tenantScope(principal, { organizationId: ingests.organizationId, projectId: ingests.projectId });
}

function toIngest(row: IngestRow, parts: IngestPartRow[] | null): Ingest {
  return {
    id: row.id,
    projectId: row.projectId,
    runId: row.runId,
    status: row.status as IngestStatus,
    format: (row.format as IngestFormat | null) ?? null,
    bytesTotal: row.bytesTotal,
    bytesProcessed: row.bytesProcessed,
    results: row.results,
    superseded: row.superseded,
    chunks: row.chunks,
    d1Calls: row.d1Calls,
    attempts: row.attempts,
    reportTotals: row.reportTotals ?? null,
    error: row.error ?? null,
    createdAt: row.createdAt,
    updatedAt: row.updatedAt,
    startedAt: row.startedAt,
    finishedAt: row.finishedAt,
    expiresAt: row.expiresAt,
    parts: parts?.map((p) => ({ partNumber: p.partNumber, bytes: p.bytes, sha256: p.sha256, createdAt: p.createdAt })) ?? null,
  };
}

async function readIngestRow(ctx: CoreContext, id: string): Promise<IngestRow> {
  const row = await ctx.db.select().from(ingests).where(and(eq(ingests.id, id), visibleIngests(ctx.principal))).get();
  if (!row) throw new NotFound("Ingest", { id });
  return row;
}

async function partsOf(ctx: CoreContext, ingestId: string): Promise<IngestPartRow[]> {
  return ctx.db.select().from(ingestParts).where(eq(ingestParts.ingestId, ingestId)).orderBy(asc(ingestParts.partNumber));
}

export async function getIngest(ctx: CoreContext, id: string): Promise<Ingest> {
  requireScope(ctx.principal, "results:submit");
  const row = await readIngestRow(ctx, id);
  return toIngest(row, row.status === "uploading" ? await partsOf(ctx, id) : null);
}

/** The target as stored: JSON, without undefined. */
function storedTarget(target: IngestTarget): Record<string, unknown> {
  return JSON.parse(JSON.stringify(target)) as Record<string, unknown>;
}

function isFormat(value: unknown): value is IngestFormat {
  return typeof value === "string" && (INGEST_FORMATS as readonly string[]).includes(value);
}

async function enqueue(ctx: CoreContext, ingestId: string): Promise<void> {
  try {
    await ctx.env.INGESTS.send({ type: INGEST_MESSAGE, ingest_id: ingestId });
  } catch (err) {
    // The ingest is recorded as queued; the cron sweep sends it again.
    log.error("ingest enqueue failed; the sweep will retry", { ingest_id: ingestId, message: String(err) });
  }
}

/**
 * A report's source staged in R2 under a fresh ingest id, before anything is recorded in D1.
 * The caller then either starts it (startStagedIngest) or drops it (discardStaged), e.g. when an
 * Idempotency-Key turns out to replay an earlier request.
 */
export interface StagedReport {
  ingestId: string;
  projectId: string;
  upload: string;
  source: StoredSource;
  format: IngestFormat;
  metadata: ReportMetadata;
  contentType: string | null;
}

/**
 * Stages a report that arrives in one request and is too large to ingest in it: checks its
 * format and its beginning (`head`, already read), then streams it to R2 as it arrives.
 */
export async function stageReport(
  ctx: CoreContext,
  input: {
    head: Uint8Array[];
    headText: string;
    rest: ReadableStreamDefaultReader<Uint8Array> | null;
    contentType: string | null;
    format?: string;
    target: IngestTarget;
    /** What a caller that parsed the whole report already knows. */
    parsed?: { format: IngestFormat; metadata: ReportMetadata };
  },
): Promise<StagedReport> {
  requireScope(ctx.principal, "results:submit");
  const format = input.parsed?.format ?? reportFormat(input.contentType, input.headText, input.format);
  const metadata = input.parsed?.metadata ?? parseHead(format, input.headText);
  // The project is checked before the upload, so a wrong one costs the client no transfer.
  const { runForProject } = await projectOfTarget(ctx, input.target, metadata);
  const ingestId = newId("ing");
  const upload = newId("ing");
  const source = await storeSegments(
    ctx.env.ARTIFACTS,
    partPrefix(runForProject, ingestId, 1, upload),
    input.head,
    input.rest,
    REQUEST_MAX_BYTES,
    `A single request carries at most ${REQUEST_MAX_BYTES} bytes; upload larger reports in parts through POST /api/v1/ingests.`,
  );
  return { ingestId, projectId: runForProject, upload, source, format, metadata, contentType: input.contentType };
}

/** The project a target names (or the key implies), checked to be visible. */
async function projectOfTarget(ctx: CoreContext, target: IngestTarget, metadata: ReportMetadata): Promise<{ runForProject: string }> {
  if (target.runId !== undefined) {
    const run = await readVisibleRun(ctx, target.runId);
    const projectId = target.projectId ?? metadata.projectId;
    if (!run || (projectId !== undefined && run.projectId !== projectId)) throw new NotFound("Test run", { id: target.runId });
    return { runForProject: run.projectId };
  }
  return { runForProject: await resolveProject(ctx, target.projectId ?? metadata.projectId) };
}

export async function discardStaged(ctx: CoreContext, staged: StagedReport): Promise<void> {
  await deleteSegments(ctx.env.ARTIFACTS, partPrefix(staged.projectId, staged.ingestId, 1, staged.upload), staged.source.segments);
}

/** Opens (or joins) the staged report's run, records the ingest as queued and enqueues it. */
export async function startStagedIngest(ctx: CoreContext, staged: StagedReport, target: IngestTarget): Promise<Ingest> {
  let opened;
  try {
    opened = await runForReport(ctx, target, staged.metadata);
  } catch (err) {
    await discardStaged(ctx, staged);
    throw err;
  }
  const now = nowIso(ctx.clock);
  const row = {
    id: staged.ingestId,
    organizationId: ctx.principal.organizationId,
    projectId: opened.run.projectId,
    keyId: ctx.principal.keyId,
    status: "queued",
    format: staged.format,
    contentType: staged.contentType,
    target: storedTarget(target),
    runId: opened.run.id,
    createdRun: opened.created,
    bytesTotal: staged.source.bytes,
    parts: 1,
    createdAt: now,
    updatedAt: now,
  } satisfies typeof ingests.$inferInsert;
  try {
    await batchAll(ctx.db, [
      ctx.db.insert(ingests).values(row),
      ctx.db.insert(ingestParts).values({
        ingestId: staged.ingestId,
        partNumber: 1,
        bytes: staged.source.bytes,
        segments: staged.source.segments,
        upload: staged.upload,
        sha256: staged.source.sha256,
        createdAt: now,
      }),
    ]);
  } catch (err) {
    if (opened.created) await deleteRun(ctx, opened.run.id);
    await discardStaged(ctx, staged);
    throw err;
  }
  await enqueue(ctx, staged.ingestId);
  return getIngest(ctx, staged.ingestId);
}

/**
 * A report small enough to hold (at most SYNC_INGEST_MAX_BYTES), whole: parsed, then ingested in
 * the request, or, when it holds more than SYNC_INGEST_MAX_RESULTS results, staged and queued
 * like a large one (parsed only once more, by the consumer).
 */
export async function ingestHeldReport(
  ctx: CoreContext,
  input: { bytes: Uint8Array; contentType: string | null; format?: string; target: IngestTarget },
): Promise<{ kind: "ingested"; outcome: IngestOutcome } | { kind: "accepted"; ingest: Ingest }> {
  requireScope(ctx.principal, "results:submit");
  const text = new TextDecoder().decode(input.bytes);
  const parsed = parseWhole(reportFormat(input.contentType, text, input.format), text);
  if (parsed.results.length <= SYNC_INGEST_MAX_RESULTS) return { kind: "ingested", outcome: await ingestParsedReport(ctx, parsed, input.target) };
  const staged = await stageReport(ctx, { head: [input.bytes], headText: text, rest: null, contentType: input.contentType, target: input.target, parsed });
  return { kind: "accepted", ingest: await startStagedIngest(ctx, staged, input.target) };
}

export interface OpenUploadInput {
  format?: IngestFormat;
  contentType?: string | null;
  target: IngestTarget;
}

/** Opens a chunked upload: the report comes in numbered parts, then POST …/complete starts it. */
export async function openUpload(ctx: CoreContext, input: OpenUploadInput): Promise<Ingest> {
  requireScope(ctx.principal, "results:submit");
  const { runForProject } = await projectOfTarget(ctx, input.target, {});
  const now = ctx.clock.now();
  const id = newId("ing");
  await ctx.db.insert(ingests).values({
    id,
    organizationId: ctx.principal.organizationId,
    projectId: runForProject,
    keyId: ctx.principal.keyId,
    status: "uploading",
    format: input.format ?? null,
    contentType: input.contentType ?? null,
    target: storedTarget(input.target),
    createdAt: now.toISOString(),
    updatedAt: now.toISOString(),
    expiresAt: new Date(now.getTime() + UPLOAD_TTL_MS).toISOString(),
  });
  return getIngest(ctx, id);
}

function assertUploading(row: IngestRow, now: string): void {
  if (row.status !== "uploading") {
    throw new Conflict(`This ingest is ${row.status}; parts can be added only while it is uploading.`, { status: row.status });
  }
  if (row.expiresAt !== null && row.expiresAt < now) {
    throw new Conflict("This upload has expired; open a new one.", { expires_at: row.expiresAt });
  }
}

/**
 * Stores one part of a chunked upload as it arrives. Sending a part again replaces it (a client
 * resumes by re-sending the parts the ingest does not list, or lists with another size or hash).
 */
export async function putUploadPart(
  ctx: CoreContext,
  input: { ingestId: string; partNumber: number; body: ReadableStreamDefaultReader<Uint8Array> | null },
): Promise<IngestPart> {
  requireScope(ctx.principal, "results:submit");
  if (!Number.isInteger(input.partNumber) || input.partNumber < 1 || input.partNumber > UPLOAD_MAX_PARTS) {
    throw Invalid.field("part_number", "invalid_value", `must be a whole number from 1 to ${UPLOAD_MAX_PARTS}`, { location: "path" });
  }
  const row = await readIngestRow(ctx, input.ingestId);
  assertUploading(row, nowIso(ctx.clock));
  const upload = newId("ing");
  const prefix = partPrefix(row.projectId, row.id, input.partNumber, upload);
  const source = await storeSegments(ctx.env.ARTIFACTS, prefix, [], input.body, REQUEST_MAX_BYTES, `A part carries at most ${REQUEST_MAX_BYTES} bytes.`);
  if (source.bytes === 0) {
    await deleteSegments(ctx.env.ARTIFACTS, prefix, source.segments);
    throw new Invalid("A part must not be empty.", { reason: "empty" });
  }

  const now = nowIso(ctx.clock);
  const previous = await ctx.db
    .select()
    .from(ingestParts)
    .where(and(eq(ingestParts.ingestId, row.id), eq(ingestParts.partNumber, input.partNumber)))
    .get();
  const part = { ingestId: row.id, partNumber: input.partNumber, bytes: source.bytes, segments: source.segments, upload, sha256: source.sha256, createdAt: now };
  const [, totals] = await batchAll(ctx.db, [
    sql`INSERT INTO ingest_parts (ingest_id, part_number, bytes, segments, upload, sha256, created_at)
      SELECT ${part.ingestId}, ${part.partNumber}, ${part.bytes}, ${part.segments}, ${part.upload}, ${part.sha256}, ${part.createdAt}
      FROM ingests WHERE id = ${row.id} AND status = 'uploading'
      ON CONFLICT (ingest_id, part_number) DO UPDATE SET bytes = excluded.bytes, segments = excluded.segments,
        upload = excluded.upload, sha256 = excluded.sha256, created_at = excluded.created_at`,
    sql`UPDATE ingests SET
        parts = (SELECT count(*) FROM ingest_parts WHERE ingest_id = ${row.id}),
        bytes_total = (SELECT coalesce(sum(bytes), 0) FROM ingest_parts WHERE ingest_id = ${row.id}),
        updated_at = ${now}
      WHERE id = ${row.id} AND status = 'uploading'
      RETURNING bytes_total`,
  ]);
  const stored = (totals?.results[0] as { bytes_total: number } | undefined) ?? null;
  if (!stored) {
    // Completed or aborted while this part was arriving.
    await deleteSegments(ctx.env.ARTIFACTS, prefix, source.segments);
    throw new Conflict("This ingest stopped uploading while the part arrived.", {});
  }
  if (previous && previous.upload !== upload) {
    await deleteSegments(ctx.env.ARTIFACTS, partPrefix(row.projectId, row.id, input.partNumber, previous.upload), previous.segments);
  }
  if (stored.bytes_total > UPLOAD_MAX_BYTES) {
    await batchAll(ctx.db, [
      sql`DELETE FROM ingest_parts WHERE ingest_id = ${row.id} AND part_number = ${input.partNumber} AND upload = ${upload}`,
      sql`UPDATE ingests SET parts = parts - 1, bytes_total = bytes_total - ${source.bytes} WHERE id = ${row.id}`,
    ]);
    await deleteSegments(ctx.env.ARTIFACTS, prefix, source.segments);
    throw new TooLarge(`An upload carries at most ${UPLOAD_MAX_BYTES} bytes in all.`, { max_bytes: UPLOAD_MAX_BYTES });
  }
  return { partNumber: part.partNumber, bytes: part.bytes, sha256: part.sha256, createdAt: now };
}

/** The first bytes of a stored source, decoded: enough to tell its format and check its start. */
async function sourceHead(ctx: CoreContext, row: IngestRow, parts: IngestPartRow[]): Promise<string> {
  const progress = { bytes: 0 };
  let head = "";
  const pieces = readSegments(
    ctx.env.ARTIFACTS,
    parts.map((p) => ({ prefix: partPrefix(row.projectId, row.id, p.partNumber, p.upload), segments: p.segments })),
    progress,
  );
  for await (const text of pieces) {
    head += text;
    if (progress.bytes >= SYNC_INGEST_MAX_BYTES) break;
  }
  await pieces.return(undefined);
  return head;
}

/**
 * Ends a chunked upload: the parts must run 1..n without gaps. The report's format and start are
 * checked, its run is opened (or joined) and it is queued. Completing again answers the ingest as
 * it stands, so a client may retry a completion whose answer it lost.
 */
export async function completeUpload(ctx: CoreContext, ingestId: string): Promise<Ingest> {
  requireScope(ctx.principal, "results:submit");
  const row = await readIngestRow(ctx, ingestId);
  if (row.status !== "uploading") return toIngest(row, null);
  assertUploading(row, nowIso(ctx.clock));
  const parts = await partsOf(ctx, row.id);
  if (parts.length === 0) throw new Invalid("The upload has no parts; PUT at least one before completing it.", { reason: "no_parts" });
  const missing: number[] = [];
  const last = parts[parts.length - 1]!.partNumber;
  const have = new Set(parts.map((p) => p.partNumber));
  for (let n = 1; n <= last && missing.length < 100; n++) if (!have.has(n)) missing.push(n);
  if (missing.length > 0) {
    throw new Invalid(`Parts are numbered from 1 without gaps; missing: ${missing.join(", ")}.`, { reason: "missing_parts", missing_parts: missing }, 422);
  }

  const head = await sourceHead(ctx, row, parts);
  const format = reportFormat(row.contentType, head, isFormat(row.format) ? row.format : undefined);
  const metadata = parseHead(format, head);
  const target = row.target as IngestTarget;
  const opened = await runForReport(ctx, target, metadata);
  const now = nowIso(ctx.clock);
  const started = await ctx.db
    .update(ingests)
    .set({ status: "queued", format, runId: opened.run.id, createdRun: opened.created, expiresAt: null, updatedAt: now })
    .where(and(eq(ingests.id, row.id), eq(ingests.status, "uploading")))
    .returning({ id: ingests.id })
    .get();
  if (!started) {
    // Another completion won the race; this one's run (if it made one) is not needed.
    if (opened.created) await deleteRun(ctx, opened.run.id);
    return getIngest(ctx, row.id);
  }
  await enqueue(ctx, row.id);
  return getIngest(ctx, row.id);
}

/** Abandons an upload: its parts are deleted. Only an ingest still uploading can be abandoned. */
export async function abortUpload(ctx: CoreContext, ingestId: string): Promise<void> {
  requireScope(ctx.principal, "results:submit");
  const row = await readIngestRow(ctx, ingestId);
  if (row.status !== "uploading") {
    throw new Conflict(`This ingest is ${row.status}; only an upload can be abandoned.`, { status: row.status });
  }
  const deleted = await ctx.db
    .delete(ingests)
    .where(and(eq(ingests.id, row.id), eq(ingests.status, "uploading")))
    .returning({ id: ingests.id })
    .get();
  if (!deleted) throw new Conflict("This ingest was completed while it was being abandoned.", {});
  await deleteR2Prefix(ctx.env.ARTIFACTS, ingestObjectPrefix(row.projectId, row.id));
}

/**
 * Cron housekeeping: uploads past their expiry are failed and their parts deleted; ingests
 * finished for longer than the retention go with their sources; queued or processing ingests
 * nobody has touched for `stalledAfterMs` (their messages ran out, or a send failed) are sent
 * again.
 */
export async function sweepIngests(
  db: CoreContext["db"],
  env: CoreContext["env"],
  now: Date,
  stalledAfterMs = 10 * 60 * 1000,
): Promise<{ expired: number; purged: number; resent: number }> {
  const nowText = now.toISOString();
  const expired = await db
    .update(ingests)
    .set({
      status: "failed",
      error: { message: "The upload was not completed before it expired.", details: { reason: "expired" } },
      finishedAt: nowText,
      updatedAt: nowText,
    })
    .where(and(eq(ingests.status, "uploading"), lt(ingests.expiresAt, nowText)))
    .returning({ id: ingests.id, projectId: ingests.projectId });
  for (const row of expired) await deleteR2Prefix(env.ARTIFACTS, ingestObjectPrefix(row.projectId, row.id));

  const retainedSince = new Date(now.getTime() - INGEST_RETENTION_MS).toISOString();
  const purged = await db
    .delete(ingests)
    .where(and(inArray(ingests.status, ["done", "failed"]), lt(ingests.finishedAt, retainedSince)))
    .returning({ id: ingests.id, projectId: ingests.projectId });
  for (const row of purged) await deleteR2Prefix(env.ARTIFACTS, ingestObjectPrefix(row.projectId, row.id));

  const stalledSince = new Date(now.getTime() - stalledAfterMs).toISOString();
  const stalled = await db
    .update(ingests)
    .set({ updatedAt: nowText })
    .where(
      and(
        inArray(ingests.status, ["queued", "processing"]),
        lt(ingests.updatedAt, stalledSince),
        sql`(${ingests.leaseUntil} IS NULL OR ${ingests.leaseUntil} < ${nowText})`,
      ),
    )
    .returning({ id: ingests.id });
  for (const row of stalled) await env.INGESTS.send({ type: INGEST_MESSAGE, ingest_id: row.id });
  return { expired: expired.length, purged: purged.length, resent: stalled.length };
}
