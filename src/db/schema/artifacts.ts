import { sql } from "drizzle-orm";
import { sqliteTable, integer, text, index, primaryKey } from "drizzle-orm/sqlite-core";
import { testRuns } from "./test-runs";

/**
 * A file a run or one of its results keeps (screenshot, video, trace, report), stored in R2 under
 * a key made of ids only (storage/r2.ts: artifactObjectKey), never of the client's file name.
 * Rows go with their run (cascade) after the run's R2 prefix is deleted.
 */
export const artifacts = sqliteTable(
  "artifacts",
  {
    number: integer("number").primaryKey({ autoIncrement: true }),
    id: text("id").notNull().unique(),
    organizationId: text("organization_id").notNull(),
    projectId: text("project_id").notNull(),
    runId: text("run_id")
      .notNull()
      .references(() => testRuns.id, { onDelete: "cascade" }),
    /** The result (the reporting surface's "test") it belongs to, if any; always a result of runId. */
    resultId: text("result_id"),
    type: text("type").notNull(),
    /** The client's file name, checked and normalized for display; never part of the object key. */
    fileName: text("file_name").notNull(),
    /** What the content's magic bytes say (PNG, MP4, ZIP …), and its media type. */
    format: text("format"),
    mimeType: text("mime_type"),
    /** Bytes; null while a multipart upload is open. */
    size: integer("size"),
    objectKey: text("object_key").notNull(),
    /** "stored", or "uploading" while a multipart upload (uploadId) is open until expiresAt. */
    status: text("status").notNull(),
    uploadId: text("upload_id"),
    expiresAt: text("expires_at"),
    createdBy: text("created_by"),
    createdAt: text("created_at").notNull(),
    updatedAt: text("updated_at").notNull(),
  },
  (t) => [
    index("artifacts_run_idx").on(t.runId, t.number),
    index("artifacts_result_idx").on(t.resultId, t.number),
    index("artifacts_org_idx").on(t.organizationId, t.number),
    index("artifacts_uploading_idx").on(t.expiresAt).where(sql`status = 'uploading'`),
  ],
);

/** The parts of an open multipart upload, with the ETags R2 needs to complete it. */
export const artifactParts = sqliteTable(
  "artifact_parts",
  {
    artifactId: text("artifact_id")
      .notNull()
      .references(() => artifacts.id, { onDelete: "cascade" }),
    partNumber: integer("part_number").notNull(),
    size: integer("size").notNull(),
    etag: text("etag").notNull(),
    createdAt: text("created_at").notNull(),
  },
  (t) => [primaryKey({ columns: [t.artifactId, t.partNumber] })],
);

export type ArtifactRow = typeof artifacts.$inferSelect;
