import { z } from "@hono/zod-openapi";
import type { Context } from "hono";
import { TooLarge } from "../../core/errors";
import {
  SYNC_INGEST_MAX_BYTES,
  SYNC_INGEST_MAX_RESULTS,
  type IngestTarget,
} from "../../core/ingest/ingest";
import {
  INGEST_STATUSES,
  REQUEST_MAX_BYTES,
  UPLOAD_MAX_BYTES,
  UPLOAD_MAX_PARTS,
  UPLOAD_TTL_MS,
  abortUpload,
  completeUpload,
  discardStaged,
  getIngest,
  ingestHeldReport,
  openUpload,
  putUploadPart,
  stageReport,
  startStagedIngest,
  type Ingest,
} from "../../core/ingest/ingests";
import { concatBytes, readHead } from "../../core/ingest/source";
import { RUN_LIMITS } from "../../core/limits";
import type { AppEnv } from "../../http/app-env";
import { claimRequest, type RequestClaim } from "../../http/idempotency";
import { defineRoute } from "../../http/routes";
import { invalidFromZod } from "../../http/validation";
import { sha256Hex } from "../../lib/crypto";
import { INGEST_FORMATS } from "../../ingest";
import { nativeErrors } from "../errors-openapi";
import { Id, IdParam, Text, Timestamp } from "../fields";
import { coreContext, jsonBody, jsonResponse, surfaceApp } from "../shared";
import { TestRunSchema, runInputOf, testRunOut } from "./run-schemas";

const tags = ["native: ingest"];
const MB = 1024 * 1024;

const shard = z.coerce.number().int().min(1).max(RUN_LIMITS.shards).optional();
const text = Text(RUN_LIMITS.text).optional();

/** Run metadata an ingest may carry, as query parameters or as X-Greenlight-* headers. */
const IngestTargetFields = z.object({
  project_id: Id.optional().openapi({ description: "Implied by a project-restricted key." }),
  run_id: Id.optional().openapi({ description: "Extend this run." }),
  build_id: Id.optional(),
  branch: text,
  commit_sha: text,
  commit_message: text,
  commit_author: text,
  ci_provider: text,
  ci_build_id: text.openapi({ description: "Reports of one CI build (and run title) extend one run." }),
  ci_build_url: text,
  run_title: text,
  shard_current: shard,
  shard_total: shard,
  hostname: text,
  os: text,
  browser: text,
});

const FormatField = z.enum(INGEST_FORMATS).optional().openapi({ description: "Overrides detection from Content-Type and content." });
const IngestQuery = IngestTargetFields.extend({ format: FormatField });

const HEADER_PREFIX = "x-greenlight-";
const headerName = (field: string) => `X-Greenlight-${field.split("_").map((w) => w[0]!.toUpperCase() + w.slice(1)).join("-")}`;

const IngestOutcomeSchema = z
  .object({
    run_id: z.string(),
    format: z.enum(INGEST_FORMATS),
    created_run: z.boolean().openapi({ description: "False when the report extended an existing run." }),
    results: z.number().int().openapi({ description: "Results in the report." }),
    superseded: z.number().int(),
    report_totals: z.record(z.string(), z.number()).nullable().openapi({ description: "The report's own declared totals." }),
    run: TestRunSchema,
  })
  .openapi("IngestOutcome");

const IngestPartSchema = z
  .object({
    part_number: z.number().int(),
    bytes: z.number().int(),
    sha256: z.string().openapi({ description: "Hex SHA-256 of the part as stored." }),
    created_at: Timestamp,
  })
  .openapi("IngestPart");

const IngestSchema = z
  .object({
    id: z.string().openapi({ example: "ing_01JD3W6Q8X4N2B7R5T9V0YHZKM" }),
    project_id: z.string(),
    run_id: z.string().nullable().openapi({ description: "The run the report fills; null until an upload is completed." }),
    status: z.enum(INGEST_STATUSES),
    format: z.enum(INGEST_FORMATS).nullable(),
    bytes_total: z.number().int(),
    bytes_processed: z.number().int(),
    progress: z.number().min(0).max(1).openapi({ description: "Share of the report's bytes parsed and committed." }),
    results: z.number().int().openapi({ description: "Results parsed and committed so far." }),
    superseded: z.number().int(),
    chunks: z.number().int().openapi({ description: "Chunks (one D1 transaction each) committed." }),
    d1_calls: z.number().int().openapi({ description: "D1 calls the background processing made." }),
    attempts: z.number().int().openapi({ description: "Times processing started (more than one after an interruption)." }),
    report_totals: z.record(z.string(), z.number()).nullable(),
    error: z.object({ message: z.string(), details: z.record(z.string(), z.unknown()).optional() }).nullable(),
    parts: z.array(IngestPartSchema).nullable().openapi({ description: "Parts received, while uploading." }),
    created_at: Timestamp,
    updated_at: Timestamp,
    started_at: Timestamp.nullable(),
    finished_at: Timestamp.nullable(),
    expires_at: Timestamp.nullable().openapi({ description: "An upload not completed by then is abandoned." }),
  })
  .openapi("Ingest");

const AcceptedIngestSchema = IngestSchema.extend({ ingest_id: z.string().openapi({ description: "The same as id." }) }).openapi("AcceptedIngest");

function ingestOut(ingest: Ingest): z.infer<typeof IngestSchema> {
  const progress = ingest.status === "done" ? 1 : ingest.bytesTotal > 0 ? Math.min(ingest.bytesProcessed / ingest.bytesTotal, 1) : 0;
  return {
    id: ingest.id,
    project_id: ingest.projectId,
    run_id: ingest.runId,
    status: ingest.status,
    format: ingest.format,
    bytes_total: ingest.bytesTotal,
    bytes_processed: ingest.bytesProcessed,
    progress: Math.round(progress * 10000) / 10000,
    results: ingest.results,
    superseded: ingest.superseded,
    chunks: ingest.chunks,
    d1_calls: ingest.d1Calls,
    attempts: ingest.attempts,
    report_totals: ingest.reportTotals,
    error: ingest.error,
    parts: ingest.parts?.map((p) => ({ part_number: p.partNumber, bytes: p.bytes, sha256: p.sha256, created_at: p.createdAt })) ?? null,
    created_at: ingest.createdAt,
    updated_at: ingest.updatedAt,
    started_at: ingest.startedAt,
    finished_at: ingest.finishedAt,
    expires_at: ingest.expiresAt,
  };
}

const reportBody = {
  required: true,
  content: {
    "application/xml": { schema: { type: "string", description: "A JUnit XML report." } },
    "text/xml": { schema: { type: "string", description: "A JUnit XML report." } },
    "application/json": { schema: { type: "object", description: "A Playwright JSON, CTRF or native report." } },
  },
} as const;

const ingestRoute = defineRoute(
  { scope: "results:submit" },
  {
    method: "post",
    path: "/results/ingest",
    operationId: "ingestReport",
    tags,
    summary: "Ingest a JUnit XML, Playwright JSON, CTRF or native JSON report",
    description: `The body is the report. Its format comes from \`?format=\`, else from Content-Type (XML = JUnit) and the JSON's shape. Run metadata come from query parameters, else \`X-Greenlight-*\` headers (e.g. \`X-Greenlight-Ci-Build-Id\`), else the report. The report extends the run named by \`run_id\`, or the run of the same CI build (project + ci_build_id + run_title; shards merge as for POST /testruns), or a new run.

Reports up to ${SYNC_INGEST_MAX_BYTES / MB} MB and ${SYNC_INGEST_MAX_RESULTS} results are ingested in the request, all or nothing: 201. Larger ones (up to ${REQUEST_MAX_BYTES / MB} MB in one request; beyond that use POST /ingests) are stored as they arrive and processed in the background: 202 with the ingest and the run it fills; follow it at \`GET /ingests/{id}\` (the Location header). \`Idempotency-Key\` makes a CI retry of the same upload answer the first response instead of ingesting twice.`,
    request: { query: IngestQuery, body: reportBody },
    responses: {
      201: jsonResponse(IngestOutcomeSchema, "Ingested."),
      202: jsonResponse(AcceptedIngestSchema, "Accepted for background processing."),
      ...nativeErrors(400, 401, 403, 404, 409, 413, 415, 422),
    },
  },
  // The handler claims the key itself, once it knows the body's digest (see underClaim).
  { idempotent: "handler" },
);

const openRoute = defineRoute(
  { scope: "results:submit" },
  {
    method: "post",
    path: "/ingests",
    operationId: "openIngestUpload",
    tags,
    summary: "Open a chunked, resumable upload of a large report",
    description: `For reports over ${REQUEST_MAX_BYTES / MB} MB (or for uploads that must survive a dropped connection): open, PUT the report's bytes in numbered parts (each up to ${REQUEST_MAX_BYTES / MB} MB; any split, parts joined in number order; up to ${UPLOAD_MAX_PARTS} parts and ${UPLOAD_MAX_BYTES / MB / 1024} GB), then complete. A part sent again replaces the one before; \`GET /ingests/{id}\` lists the parts received with their sizes and SHA-256, so a client resumes by sending what is missing. An upload not completed within ${UPLOAD_TTL_MS / 3600000} hours is abandoned.`,
    request: {
      body: jsonBody(
        IngestTargetFields.extend({
          format: FormatField,
          content_type: z.string().max(200).optional().openapi({ description: "The report's media type, used like a Content-Type to tell its format." }),
        }).openapi("OpenIngestUpload"),
      ),
    },
    responses: { 201: jsonResponse(IngestSchema, "Upload opened."), ...nativeErrors(400, 401, 403, 404, 422) },
  },
  { idempotent: true },
);

const getRoute = defineRoute(
  { scope: "results:submit" },
  {
    method: "get",
    path: "/ingests/{id}",
    operationId: "getIngest",
    tags,
    summary: "The status and progress of an ingest",
    description: "`queued`, `processing`, `done` or `failed` (with the reason in `error`; a run the ingest created is then removed), or `uploading` for an open chunked upload. Needs `results:submit`, the scope that started it.",
    request: { params: IdParam },
    responses: { 200: jsonResponse(IngestSchema, "The ingest."), ...nativeErrors(401, 403, 404) },
  },
);

const PartParams = z.object({
  id: Id.openapi({ param: { name: "id", in: "path" } }),
  part_number: z.coerce.number().int().min(1).max(UPLOAD_MAX_PARTS).openapi({ param: { name: "part_number", in: "path" } }),
});

const putPartRoute = defineRoute(
  { scope: "results:submit" },
  {
    method: "put",
    path: "/ingests/{id}/parts/{part_number}",
    operationId: "putIngestPart",
    tags,
    summary: "Upload one part of a chunked report upload",
    request: {
      params: PartParams,
      body: { required: true, content: { "application/octet-stream": { schema: { type: "string", format: "binary" } } } },
    },
    responses: { 200: jsonResponse(IngestPartSchema, "Stored."), ...nativeErrors(400, 401, 403, 404, 409, 413) },
  },
);

const completeRoute = defineRoute(
  { scope: "results:submit" },
  {
    method: "post",
    path: "/ingests/{id}/complete",
    operationId: "completeIngestUpload",
    tags,
    summary: "Finish a chunked upload and start processing it",
    description: "The parts must be numbered 1..n without gaps. Completing an ingest that is no longer uploading answers it as it stands.",
    request: { params: IdParam },
    responses: { 202: jsonResponse(IngestSchema, "Queued for processing."), ...nativeErrors(400, 401, 403, 404, 409, 415, 422) },
  },
);

const abortRoute = defineRoute(
  { scope: "results:submit" },
  {
    method: "delete",
    path: "/ingests/{id}",
    operationId: "abortIngestUpload",
    tags,
    summary: "Abandon a chunked upload and delete its parts",
    request: { params: IdParam },
    responses: { 204: { description: "Abandoned." }, ...nativeErrors(401, 403, 404, 409) },
  },
);

/** X-Greenlight-* headers, validated like the query; the query wins where both are given. */
function targetFromHeaders(headers: Headers): z.infer<typeof IngestTargetFields> {
  const raw: Record<string, string> = {};
  for (const field of Object.keys(IngestTargetFields.shape)) {
    const value = headers.get(`${HEADER_PREFIX}${field.replace(/_/g, "-")}`);
    if (value !== null) raw[field] = value;
  }
  const parsed = IngestTargetFields.safeParse(raw);
  if (parsed.success) return parsed.data;
  throw invalidFromZod(parsed.error, "header", raw, headerName);
}

function targetOf(fields: z.infer<typeof IngestTargetFields>): IngestTarget {
  return { ...runInputOf(fields), runId: fields.run_id };
}

/** Refuses a declared length over the limit before reading a byte. */
function checkDeclaredLength(c: Context<AppEnv>, max: number, message: string): void {
  const declared = Number(c.req.header("content-length"));
  if (Number.isFinite(declared) && declared > max) throw new TooLarge(message, { max_bytes: max });
}

/** What makes two ingest requests the same request, besides method and path: all but the key. */
function requestFingerprint(c: Context<AppEnv>, bodySha256: string): string {
  const greenlight = [...c.req.raw.headers.entries()].filter(([name]) => name.startsWith(HEADER_PREFIX)).sort();
  return JSON.stringify({ query: new URL(c.req.url).search, headers: greenlight, type: c.req.header("content-type") ?? null, body: bodySha256 });
}

function acceptedOut(c: Context<AppEnv>, ingest: Ingest): Response {
  return c.json({ ingest_id: ingest.id, ...ingestOut(ingest) }, 202, { Location: `/api/v1/ingests/${ingest.id}` });
}

/**
 * Runs an ingest under its Idempotency-Key claim: a thrown error frees the key, an answer is kept.
 * Typed `never` because a replay is a stored Response, which no route's typed responses describe
 * (the 201 and 202 it replays are).
 */
async function underClaim(claim: RequestClaim | null, respond: () => Promise<Response>): Promise<never> {
  if (claim?.kind === "replay") return claim.response as never;
  let response: Response;
  try {
    response = await respond();
  } catch (err) {
    await claim?.release(null);
    throw err;
  }
  await claim?.release(response);
  return response as never;
}

export const ingestRoutes = surfaceApp()
  .openapi(ingestRoute, async (c) => {
    const { format, ...query } = c.req.valid("query");
    const fields = { ...targetFromHeaders(c.req.raw.headers), ...Object.fromEntries(Object.entries(query).filter(([, v]) => v !== undefined)) };
    const target = targetOf(fields);
    const contentType = c.req.header("content-type") ?? null;
    checkDeclaredLength(c, REQUEST_MAX_BYTES, `A single request carries at most ${REQUEST_MAX_BYTES} bytes; upload larger reports in parts through POST /api/v1/ingests.`);
    const ctx = coreContext(c);
    const reader = c.req.raw.body?.getReader() ?? null;
    const head = reader ? await readHead(reader, SYNC_INGEST_MAX_BYTES) : { chunks: [], bytes: 0, done: true };

    if (head.done) {
      // Small enough to hold: parsed whole, and ingested in the request unless it has too many results.
      const bytes = concatBytes(head.chunks, head.bytes);
      const claim = await claimRequest(c, requestFingerprint(c, await sha256Hex(bytes)));
      return underClaim(claim, async () => {
        const held = await ingestHeldReport(ctx, { bytes, contentType, format, target });
        if (held.kind === "accepted") return acceptedOut(c, held.ingest);
        const outcome = held.outcome;
        return c.json(
          {
            run_id: outcome.run.id,
            format: outcome.format,
            created_run: outcome.createdRun,
            results: outcome.results,
            superseded: outcome.superseded,
            report_totals: (outcome.reportTotals as Record<string, number> | null) ?? null,
            run: testRunOut(outcome.run),
          },
          201,
        );
      });
    }

    // Too large to hold: checked from its beginning, then streamed to R2 as it arrives.
    const headBytes = concatBytes(head.chunks, head.bytes);
    const staged = await stageReport(ctx, {
      head: [headBytes],
      headText: new TextDecoder().decode(headBytes),
      rest: reader,
      contentType,
      format,
      target,
    });
    let claim: RequestClaim | null;
    try {
      claim = await claimRequest(c, requestFingerprint(c, staged.source.sha256));
    } catch (err) {
      await discardStaged(ctx, staged);
      throw err;
    }
    if (claim?.kind === "replay") await discardStaged(ctx, staged);
    return underClaim(claim, async () => acceptedOut(c, await startStagedIngest(ctx, staged, target)));
  })
  .openapi(openRoute, async (c) => {
    const { format, content_type, ...fields } = c.req.valid("json");
    const ingest = await openUpload(coreContext(c), { format, contentType: content_type ?? null, target: targetOf(fields) });
    return c.json(ingestOut(ingest), 201, { Location: `/api/v1/ingests/${ingest.id}` });
  })
  .openapi(getRoute, async (c) => {
    const ingest = await getIngest(coreContext(c), c.req.valid("param").id);
    return c.json(ingestOut(ingest), 200);
  })
  .openapi(putPartRoute, async (c) => {
    const { id, part_number } = c.req.valid("param");
    checkDeclaredLength(c, REQUEST_MAX_BYTES, `A part carries at most ${REQUEST_MAX_BYTES} bytes.`);
    const part = await putUploadPart(coreContext(c), { ingestId: id, partNumber: part_number, body: c.req.raw.body?.getReader() ?? null });
    return c.json({ part_number: part.partNumber, bytes: part.bytes, sha256: part.sha256, created_at: part.createdAt }, 200);
  })
  .openapi(completeRoute, async (c) => {
    const ingest = await completeUpload(coreContext(c), c.req.valid("param").id);
    return c.json(ingestOut(ingest), 202, { Location: `/api/v1/ingests/${ingest.id}` });
  })
  .openapi(abortRoute, async (c) => {
    await abortUpload(coreContext(c), c.req.valid("param").id);
    return c.body(null, 204);
  });
