import { z } from "@hono/zod-openapi";
import { withLink } from "../../core/artifacts/artifacts";
import { ARTIFACT_TYPES } from "../../core/artifacts/types";
import { defineRoute } from "../../http/routes";
import { uploadFromForm } from "../artifact-form";
import { reportingErrors } from "../errors-openapi";
import { Timestamp } from "../fields";
import { coreContext, jsonResponse, surfaceApp } from "../shared";
import { baseUrlOf } from "../v1/artifacts";

const UploadedSchema = z
  .object({
    id: z.string().openapi({ example: "art_01JD3W6Q8X4N2B7R5T9V0YHZKM" }),
    type: z.enum(ARTIFACT_TYPES),
    fileName: z.string(),
    fileSize: z.number().int(),
    mimeType: z.string(),
    url: z.string().openapi({ description: "A signed link, valid without an API key until expiresAt (one hour)." }),
    expiresAt: Timestamp,
    createdAt: Timestamp,
  })
  .openapi("ReportingArtifact");

const uploadRoute = defineRoute({ scope: "artifacts:write" }, {
  method: "post",
  path: "/upload",
  operationId: "reportingUpload",
  tags: ["reporting: artifacts"],
  summary: "Uploads a file artifact using multipart form-data; returns a signed URL for it",
  description:
    "Fields: file, type (screenshot, video, trace, report), runId, testId (optional: a test of the run), projectId. Limits: screenshot PNG/JPG/JPEG/WebP/GIF ≤ 5 MB, video WebM/MP4/AVI/MOV ≤ 100 MB, trace ZIP ≤ 50 MB, report ZIP ≤ 200 MB; the file's own bytes decide its format (415), its size over the limit answers 413.",
  request: {
    body: {
      required: true as const,
      content: {
        "multipart/form-data": {
          schema: {
            type: "object" as const,
            required: ["file", "type", "runId", "projectId"],
            properties: {
              file: { type: "string" as const, format: "binary" },
              type: { type: "string" as const, enum: [...ARTIFACT_TYPES] as string[] },
              runId: { type: "string" as const },
              testId: { type: "string" as const },
              projectId: { type: "string" as const },
            },
          },
        },
      },
    },
  },
  responses: { 201: jsonResponse(UploadedSchema, "Uploaded."), ...reportingErrors(400, 401, 403, 404, 413, 415) },
});

export const reportingArtifactRoutes = surfaceApp().openapi(uploadRoute, async (c) => {
  const stored = await uploadFromForm(c, { type: "type", runId: "runId", resultId: "testId", projectId: "projectId" });
  const a = await withLink(coreContext(c), stored, baseUrlOf(c));
  return c.json(
    { id: a.id, type: a.type, fileName: a.fileName, fileSize: a.size ?? 0, mimeType: a.mimeType ?? "application/octet-stream", url: a.url!, expiresAt: a.urlExpiresAt!, createdAt: a.createdAt },
    201,
  );
});
