import type { Context } from "hono";
import {
  type Artifact,
  type ArtifactTarget,
  type StagedUpload,
  attachResult,
  discardArtifact,
  discardStaged,
  resolveTarget,
  stageUpload,
  storeArtifact,
  storeStaged,
  tooLarge,
} from "../core/artifacts/artifacts";
import { boundaryOf, parseMultipart } from "../core/artifacts/multipart";
import { ARTIFACT_RULES } from "../core/artifacts/types";
import { Invalid, TooLarge, UnsupportedMediaType } from "../core/errors";
import type { AppEnv } from "../http/app-env";
import { coreContext } from "./shared";

/** Room for a form's boundaries, part headers and small fields around the file. */
const FORM_OVERHEAD_BYTES = 64 * 1024;
const LARGEST_ARTIFACT = Math.max(...Object.values(ARTIFACT_RULES).map((r) => r.maxBytes));

/** The form field names of a surface: native snake_case, reporting camelCase (reference 003). */
export interface FormFields {
  type: string;
  runId: string;
  resultId: string;
  projectId?: string;
}

/**
 * Stores the file of a multipart/form-data upload (field `file`, with a filename) as an artifact,
 * streaming it: nothing holds the whole file. When the fields naming its type and run come before
 * the file, the file goes straight to its own R2 key, its type's limit enforced as it arrives
 * (and decided from Content-Length before reading when that already says too much). When the
 * file comes first (reference 003's curl example sends it first), it is staged and moved once
 * the fields are known. Bad input stores nothing: no row, no object.
 */
export async function uploadFromForm(c: Context<AppEnv>, names: FormFields): Promise<Artifact> {
  const ctx = coreContext(c);
  const boundary = boundaryOf(c.req.header("content-type") ?? null);
  if (!boundary) throw new UnsupportedMediaType("The body must be multipart/form-data (with a boundary), with the file in a part named file.");
  const declared = Number(c.req.header("content-length"));
  if (Number.isFinite(declared) && declared > LARGEST_ARTIFACT + FORM_OVERHEAD_BYTES) {
    throw new TooLarge(`An artifact may be at most ${LARGEST_ARTIFACT} bytes (a report); use POST /api/v1/artifacts/uploads for files over 100 MB.`, {
      max_bytes: LARGEST_ARTIFACT,
    });
  }
  const body = c.req.raw.body;
  if (!body) throw Invalid.field("file", "required", "is required: a multipart part named file, with a filename");

  const fields: Record<string, string> = {};
  const targetOf = (fileName: string): ArtifactTarget => ({
    type: fields[names.type] ?? "",
    runId: fields[names.runId] ?? "",
    resultId: fields[names.resultId] || null,
    projectId: names.projectId ? fields[names.projectId] || null : null,
    fileName,
    fields: { type: names.type, runId: names.runId, resultId: names.resultId, file: "file" },
  });
  const requireFields = () => {
    for (const name of [names.type, names.runId, ...(names.projectId ? [names.projectId] : [])]) {
      if (!fields[name]) throw Invalid.field(name, "required", "is required");
    }
  };

  let stored: Artifact | null = null;
  let staged: StagedUpload | null = null;
  let fileName: string | null = null;
  try {
    for await (const part of parseMultipart(body, boundary)) {
      if (part.name !== "file") {
        fields[part.name] = (await part.text()).trim();
        continue;
      }
      if (fileName !== null) throw Invalid.field("file", "duplicate", "must be sent once");
      if (part.filename === null) throw Invalid.field("file", "invalid_type", "must be a file (a part with a filename), not a text field");
      fileName = part.filename;
      const known = fields[names.type] && fields[names.runId] && (!names.projectId || fields[names.projectId]);
      if (known) {
        const resolved = await resolveTarget(ctx, targetOf(fileName));
        const rule = ARTIFACT_RULES[resolved.type];
        if (Number.isFinite(declared) && declared > rule.maxBytes + FORM_OVERHEAD_BYTES) {
          // Decided from Content-Length, before the file is read.
          await part.body.cancel().catch(() => undefined);
          throw tooLarge(resolved.type, declared - FORM_OVERHEAD_BYTES);
        }
        stored = await storeArtifact(ctx, resolved, part.body);
      } else {
        staged = await stageUpload(ctx, part.body);
      }
    }
    if (fileName === null) throw Invalid.field("file", "required", "is required: a multipart part named file, with a filename");
    requireFields();
    if (staged) {
      const resolved = await resolveTarget(ctx, targetOf(fileName));
      const moving = staged;
      staged = null;
      return await storeStaged(ctx, resolved, moving);
    }
    // Fields after the file: checked like the others; a result named there is attached now.
    const late = await resolveTarget(ctx, targetOf(fileName));
    if (late.run.id !== stored!.runId || late.type !== stored!.type) {
      throw Invalid.field(names.runId, "invalid_value", "must not change after the file: send type and run before the file or after it, once");
    }
    return late.resultId !== stored!.resultId ? await attachResult(ctx, stored!.id, late.resultId) : stored!;
  } catch (err) {
    if (staged) await discardStaged(ctx, staged);
    if (stored) await discardArtifact(ctx, stored.id);
    // A MultipartError is a domain error already (400 malformed, 413 over a form limit).
    throw err;
  }
}
