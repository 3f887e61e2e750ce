import { requiredSecretRing } from "../../lib/crypto";
import { z } from "@hono/zod-openapi";
import type { Context } from "hono";
import {
  ARTIFACT_STATUSES,
  type Artifact,
  type ArtifactLink,
  artifactForDownload,
  deleteArtifact,
  getArtifact,
  listArtifacts,
  withLink,
} from "../../core/artifacts/artifacts";
import { contentDisposition } from "../../core/artifacts/file-names";
import { contentRangeHeader, parseRange, unsatisfiedRangeHeader } from "../../core/artifacts/range";
import { ARTIFACT_TYPES } from "../../core/artifacts/types";
import {
  UPLOAD_MAX_PARTS,
  UPLOAD_MAX_PART_BYTES,
  UPLOAD_MIN_PART_BYTES,
  type ArtifactUpload,
  abortArtifactUpload,
  completeArtifactUpload,
  getArtifactUpload,
  openArtifactUpload,
  putArtifactPart,
} from "../../core/artifacts/uploads";
import { dispositionOf } from "../../core/artifacts/artifacts";
import { verifyArtifactSignature } from "../../core/artifacts/url-signing";
import { systemClock } from "../../core/context";
import { Forbidden } from "../../core/errors";
import { createDb } from "../../db/client";
import type { AppEnv } from "../../http/app-env";
import { NativePageQuery, nativeList, nativeListSchema, pageOf } from "../../http/pagination";
import { defineRoute } from "../../http/routes";
import { uploadFromForm } from "../artifact-form";
import { nativeErrors } from "../errors-openapi";
import { Id, IdParam, Timestamp } from "../fields";
import { coreContext, jsonBody, jsonResponse, surfaceApp } from "../shared";

const tags = ["native: artifacts"];

const ArtifactSchema = z
  .object({
    id: z.string().openapi({ example: "art_01JD3W6Q8X4N2B7R5T9V0YHZKM" }),
    project_id: z.string(),
    run_id: z.string(),
    result_id: z.string().nullable(),
    type: z.enum(ARTIFACT_TYPES),
    file_name: z.string().openapi({ description: "The client's file name, checked; never part of the storage key." }),
    format: z.string().nullable().openapi({ description: "What the content's first bytes say it is: PNG, JPEG, GIF, WebP, WebM, MP4, MOV, AVI or ZIP." }),
    mime_type: z.string().nullable(),
    size: z.number().int().nullable().openapi({ description: "Bytes; null while an upload is open." }),
    status: z.enum(ARTIFACT_STATUSES),
    url: z.string().nullable().openapi({ description: "A signed download link, valid without an API key until url_expires_at; null while uploading." }),
    url_expires_at: Timestamp.nullable(),
    upload: z
      .object({
        expires_at: Timestamp.nullable().openapi({ description: "An upload not completed by then is abandoned." }),
        parts: z.array(z.object({ part_number: z.number().int(), size: z.number().int(), created_at: Timestamp })),
        min_part_bytes: z.number().int(),
        max_part_bytes: z.number().int(),
      })
      .nullable()
      .openapi({ description: "For an open multipart upload: its parts so far." }),
    created_at: Timestamp,
    updated_at: Timestamp,
  })
  .openapi("Artifact");

export function baseUrlOf(c: Context<AppEnv>): string {
  return (c.env.PUBLIC_BASE_URL || new URL(c.req.url).origin).replace(/\/+$/, "");
}

function artifactOut(a: Artifact | ArtifactLink | ArtifactUpload): z.infer<typeof ArtifactSchema> {
  const link = "url" in a ? a : null;
  const parts = "parts" in a ? a.parts : [];
  return {
    id: a.id,
    project_id: a.projectId,
    run_id: a.runId,
    result_id: a.resultId,
    type: a.type,
    file_name: a.fileName,
    format: a.format,
    mime_type: a.mimeType,
    size: a.size,
    status: a.status,
    url: link?.url ?? null,
    url_expires_at: link?.urlExpiresAt ?? null,
    upload:
      a.status === "uploading"
        ? {
            expires_at: a.expiresAt,
            parts: parts.map((p) => ({ part_number: p.partNumber, size: p.size, created_at: p.createdAt })),
            min_part_bytes: UPLOAD_MIN_PART_BYTES,
            max_part_bytes: UPLOAD_MAX_PART_BYTES,
          }
        : null,
    created_at: a.createdAt,
    updated_at: a.updatedAt,
  };
}

async function linked(c: Context<AppEnv>, a: Artifact | ArtifactUpload) {
  return artifactOut({ ...a, ...(await withLink(coreContext(c), a, baseUrlOf(c))) });
}

function linkAll(c: Context<AppEnv>, items: Artifact[]): Promise<ArtifactLink[]> {
  const ctx = coreContext(c);
  return Promise.all(items.map((a) => withLink(ctx, a, baseUrlOf(c))));
}

const formBody = {
  required: true as const,
  content: {
    "multipart/form-data": {
      schema: {
        type: "object" as const,
        required: ["file", "type", "run_id"],
        properties: {
          file: { type: "string" as const, format: "binary", description: "The file; its first bytes must be a format its type allows." },
          type: { type: "string" as const, enum: [...ARTIFACT_TYPES] as string[] },
          run_id: { type: "string" as const },
          result_id: { type: "string" as const, description: "A result of the run the file belongs to." },
        },
      },
    },
  },
};

const createRoute = defineRoute({ scope: "artifacts:write" }, {
  method: "post",
  path: "/artifacts",
  operationId: "uploadArtifact",
  tags,
  summary: "Upload an artifact (multipart/form-data, streamed to R2)",
  description:
    "Limits by type: screenshot PNG/JPG/JPEG/WebP/GIF ≤ 5 MB, video WebM/MP4/AVI/MOV ≤ 100 MB, trace ZIP ≤ 50 MB, report ZIP ≤ 200 MB (MB = 1,048,576 bytes). The content's magic bytes decide the format (415 otherwise); a file over its limit is refused with 413, from Content-Length before reading when it already says so, else while it streams. Files over 100 MB (a request's limit) go through POST /artifacts/uploads.",
  request: { body: formBody },
  responses: { 201: jsonResponse(ArtifactSchema, "Stored, with a signed download link."), ...nativeErrors(400, 401, 403, 404, 413, 415) },
});

const getRoute = defineRoute({ scope: "artifacts:read" }, {
  method: "get",
  path: "/artifacts/{id}",
  operationId: "getArtifact",
  tags,
  summary: "An artifact's metadata with a fresh signed download link (valid one hour)",
  request: { params: IdParam },
  responses: { 200: jsonResponse(ArtifactSchema, "The artifact."), ...nativeErrors(401, 403, 404) },
});

const SignedQuery = z.object({
  expires: z.string().optional().openapi({ description: "Unix seconds; part of the signed link." }),
  sig: z.string().optional().openapi({ description: "The link's signature." }),
  disposition: z.string().optional(),
});

const contentRoute = defineRoute("public", {
  method: "get",
  path: "/artifacts/{id}/content",
  operationId: "downloadArtifact",
  tags,
  summary: "Download an artifact through its signed link (no API key needed while the link is valid)",
  description:
    "Answers the file with its Content-Type, a safe Content-Disposition and Range support (206, or 416 with `Content-Range: bytes */size`). A tampered or expired link answers 403.",
  request: { params: IdParam, query: SignedQuery },
  responses: {
    200: { description: "The file.", content: { "application/octet-stream": { schema: { type: "string" as const, format: "binary" } } } },
    206: { description: "The requested range." },
    416: { description: "The range lies outside the file." },
    ...nativeErrors(403, 404),
  },
});

const deleteRoute = defineRoute({ scope: "artifacts:write" }, {
  method: "delete",
  path: "/artifacts/{id}",
  operationId: "deleteArtifact",
  tags,
  summary: "Delete an artifact and its stored file",
  request: { params: IdParam },
  responses: { 204: { description: "Deleted (also when it was already gone)." }, ...nativeErrors(401, 403) },
});

const OpenUploadBody = z
  .object({
    type: z.string().max(20).openapi({ example: "report" }),
    run_id: Id,
    result_id: Id.nullable().optional(),
    file_name: z.string().max(4096).openapi({ example: "playwright-report.zip" }),
    size: z.number().int().min(0).optional().openapi({ description: "The whole file's size, if known: over the type's limit is refused now." }),
  })
  .openapi("OpenArtifactUpload");

const openUploadRoute = defineRoute({ scope: "artifacts:write" }, {
  method: "post",
  path: "/artifacts/uploads",
  operationId: "openArtifactUpload",
  tags,
  summary: "Open a multipart upload for a large artifact (over 100 MB, up to 200 MB for a report)",
  description: `Then PUT the parts (each its own request, with Content-Length; every part but the last the same size, at least ${UPLOAD_MIN_PART_BYTES} bytes; at most ${UPLOAD_MAX_PART_BYTES}) and complete. An upload not completed within 24 hours is abandoned.`,
  request: { body: jsonBody(OpenUploadBody) },
  responses: { 201: jsonResponse(ArtifactSchema, "Opened."), ...nativeErrors(400, 401, 403, 404, 413) },
}, { idempotent: true });

const PartParams = z.object({
  id: Id.openapi({ param: { name: "id", in: "path" } }),
  n: z.coerce.number().int().min(1).max(UPLOAD_MAX_PARTS).openapi({ param: { name: "n", in: "path" } }),
});

const putPartRoute = defineRoute({ scope: "artifacts:write" }, {
  method: "put",
  path: "/artifacts/uploads/{id}/parts/{n}",
  operationId: "putArtifactPart",
  tags,
  summary: "Upload part n of a multipart artifact upload (sending a part again replaces it)",
  request: {
    params: PartParams,
    body: { required: true, content: { "application/octet-stream": { schema: { type: "string" as const, format: "binary" } } } },
  },
  responses: { 200: jsonResponse(ArtifactSchema, "Stored; the upload's parts so far."), ...nativeErrors(400, 401, 403, 404, 409, 413, 415) },
});

const completeRoute = defineRoute({ scope: "artifacts:write" }, {
  method: "post",
  path: "/artifacts/uploads/{id}/complete",
  operationId: "completeArtifactUpload",
  tags,
  summary: "Assemble the parts into the artifact",
  request: { params: IdParam },
  responses: { 200: jsonResponse(ArtifactSchema, "Stored, with a signed download link."), ...nativeErrors(401, 403, 404, 409) },
});

const abortRoute = defineRoute({ scope: "artifacts:write" }, {
  method: "delete",
  path: "/artifacts/uploads/{id}",
  operationId: "abortArtifactUpload",
  tags,
  summary: "Abandon an open multipart upload",
  request: { params: IdParam },
  responses: { 204: { description: "Abandoned (also when it was already gone)." }, ...nativeErrors(401, 403, 409) },
});

const listOfRun = defineRoute({ scope: "artifacts:read" }, {
  method: "get",
  path: "/testruns/{id}/artifacts",
  operationId: "listRunArtifacts",
  tags,
  summary: "A run's artifacts, newest first",
  request: { params: IdParam, query: NativePageQuery },
  responses: { 200: jsonResponse(nativeListSchema(ArtifactSchema, "ArtifactList"), "Artifacts."), ...nativeErrors(400, 401, 403, 404) },
});

const listOfResult = defineRoute({ scope: "artifacts:read" }, {
  method: "get",
  path: "/results/{id}/artifacts",
  operationId: "listResultArtifacts",
  tags,
  summary: "A result's artifacts, newest first",
  request: { params: IdParam, query: NativePageQuery },
  responses: { 200: jsonResponse(nativeListSchema(ArtifactSchema, "ArtifactList"), "Artifacts."), ...nativeErrors(400, 401, 403, 404) },
});

/** The file behind a verified link: Range, Content-Type and a Content-Disposition that cannot inject headers. */
async function serveContent(c: Context<AppEnv>, id: string): Promise<Response> {
  const secret = requiredSecretRing(c.env, "artifact links cannot be checked");
  const verdict = await verifyArtifactSignature({ artifactId: id, searchParams: new URL(c.req.url).searchParams, now: systemClock.now(), secret });
  if (verdict === "expired") throw new Forbidden("This download link has expired; GET /api/v1/artifacts/{id} gives a fresh one.", { reason: "expired" });
  if (verdict !== "ok") throw new Forbidden("This download link is not valid.", { reason: "invalid_signature" });
  const artifact = await artifactForDownload({ db: createDb(c.env.DB) }, id);
  const size = artifact.size ?? 0;
  const range = parseRange(c.req.header("range") ?? null, size);
  const headers = new Headers({
    "Content-Type": artifact.mimeType ?? "application/octet-stream",
    "Content-Disposition": contentDisposition(artifact.fileName, dispositionOf(artifact.type)),
    "Accept-Ranges": "bytes",
    "Cache-Control": "private, max-age=300",
    "X-Content-Type-Options": "nosniff",
  });
  if (range.kind === "unsatisfiable") {
    headers.set("Content-Range", unsatisfiedRangeHeader(size));
    return new Response(null, { status: 416, headers });
  }
  const object = await c.env.ARTIFACTS.get(artifact.objectKey, range.kind === "range" ? { range: { offset: range.offset, length: range.length } } : {});
  if (!object) throw new Error(`artifact ${id}: object ${artifact.objectKey} is missing`);
  headers.set("ETag", object.httpEtag);
  if (range.kind === "range") {
    headers.set("Content-Range", contentRangeHeader(range.offset, range.length, size));
    headers.set("Content-Length", String(range.length));
    return new Response(object.body, { status: 206, headers });
  }
  headers.set("Content-Length", String(size));
  return new Response(object.body, { status: 200, headers });
}

export const artifactRoutes = surfaceApp()
  .openapi(createRoute, async (c) => c.json(await linked(c, await uploadFromForm(c, { type: "type", runId: "run_id", resultId: "result_id" })), 201))
  .openapi(openUploadRoute, async (c) => {
    const b = c.req.valid("json");
    const upload = await openArtifactUpload(coreContext(c), {
      type: b.type,
      runId: b.run_id,
      resultId: b.result_id ?? null,
      fileName: b.file_name,
      size: b.size,
    });
    return c.json(artifactOut(upload), 201);
  })
  .openapi(putPartRoute, async (c) => {
    const { id, n } = c.req.valid("param");
    const upload = await putArtifactPart(coreContext(c), id, n, c.req.raw.body, c.req.header("content-length"));
    return c.json(artifactOut(upload), 200);
  })
  .openapi(completeRoute, async (c) => c.json(await linked(c, await completeArtifactUpload(coreContext(c), c.req.valid("param").id)), 200))
  .openapi(abortRoute, async (c) => {
    await abortArtifactUpload(coreContext(c), c.req.valid("param").id);
    return c.body(null, 204);
  })
  .openapi(getRoute, async (c) => {
    const ctx = coreContext(c);
    const artifact = await getArtifact(ctx, c.req.valid("param").id);
    return c.json(await linked(c, artifact.status === "uploading" ? await getArtifactUpload(ctx, artifact.id) : artifact), 200);
  })
  .openapi(contentRoute, (async (c: Context<AppEnv>) => serveContent(c, c.req.param("id")!)) as never)
  .openapi(deleteRoute, async (c) => {
    await deleteArtifact(coreContext(c), c.req.valid("param").id);
    return c.body(null, 204);
  })
  .openapi(listOfRun, async (c) => {
    const page = await listArtifacts(coreContext(c), { runId: c.req.valid("param").id }, pageOf(c.req.valid("query")));
    return c.json(nativeList({ ...page, items: await linkAll(c, page.items) }, artifactOut), 200);
  })
  .openapi(listOfResult, async (c) => {
    const page = await listArtifacts(coreContext(c), { resultId: c.req.valid("param").id }, pageOf(c.req.valid("query")));
    return c.json(nativeList({ ...page, items: await linkAll(c, page.items) }, artifactOut), 200);
  });
