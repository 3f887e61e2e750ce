import { sqliteTable, integer, text, index, primaryKey } from "drizzle-orm/sqlite-core";
import { organizations } from "./organizations";
import { projects } from "./projects";

/**
 * A report ingested in the background: its source waits in R2 (as parts, each stored as one or
 * more segments) while a queue consumer parses it and records its results in chunks. `results`
 * moves in the same D1 batch as each chunk's rows, so after a crash the consumer resumes after
 * exactly the results already committed.
 */
export const ingests = sqliteTable(
  "ingests",
  {
    number: integer("number").primaryKey({ autoIncrement: true }),
    id: text("id").notNull().unique(),
    organizationId: text("organization_id")
      .notNull()
      .references(() => organizations.id, { onDelete: "cascade" }),
    projectId: text("project_id")
      .notNull()
      .references(() => projects.id, { onDelete: "cascade" }),
    /** The key that started it; its project restriction applies to the consumer's writes. */
    keyId: text("key_id").notNull(),
    /** uploading | queued | processing | done | failed */
    status: text("status").notNull(),
    /** Known once the upload is complete (a chunked upload may name it only then). */
    format: text("format"),
    contentType: text("content_type"),
    /** What the caller said about the run (IngestTarget), applied when the upload completes. */
    target: text("target", { mode: "json" }).$type<Record<string, unknown>>().notNull(),
    runId: text("run_id"),
    /** Whether this ingest created its run (then a failure deletes the run again). */
    createdRun: integer("created_run", { mode: "boolean" }).notNull().default(false),
    bytesTotal: integer("bytes_total").notNull().default(0),
    parts: integer("parts").notNull().default(0),
    /** Results parsed and committed, in report order; the resume point. */
    results: integer("results").notNull().default(0),
    superseded: integer("superseded").notNull().default(0),
    chunks: integer("chunks").notNull().default(0),
    /** Source bytes parsed when the last chunk was committed. */
    bytesProcessed: integer("bytes_processed").notNull().default(0),
    /** D1 calls the consumer made for this ingest, over all its attempts. */
    d1Calls: integer("d1_calls").notNull().default(0),
    attempts: integer("attempts").notNull().default(0),
    reportTotals: text("report_totals", { mode: "json" }).$type<Record<string, number>>(),
    error: text("error", { mode: "json" }).$type<{ message: string; details?: Record<string, unknown> }>(),
    /** A consumer working on it holds it until then, and extends it with every chunk. */
    leaseUntil: text("lease_until"),
    createdAt: text("created_at").notNull(),
    updatedAt: text("updated_at").notNull(),
    startedAt: text("started_at"),
    finishedAt: text("finished_at"),
    /** An upload not completed by then is abandoned. */
    expiresAt: text("expires_at"),
  },
  (t) => [
    index("ingests_status_idx").on(t.status, t.updatedAt),
    index("ingests_org_idx").on(t.organizationId, t.number),
    // Retention finds the ingests of an expired run.
    index("ingests_run_idx").on(t.runId),
  ],
);

/** One uploaded part of an ingest's source; a part is re-uploadable until the upload completes. */
export const ingestParts = sqliteTable(
  "ingest_parts",
  {
    ingestId: text("ingest_id")
      .notNull()
      .references(() => ingests.id, { onDelete: "cascade" }),
    partNumber: integer("part_number").notNull(),
    bytes: integer("bytes").notNull(),
    /** R2 objects the part is stored as: `<prefix><upload>/<segment>`, segments 0..n-1. */
    segments: integer("segments").notNull(),
    /** A fresh name per upload of the part, so a re-upload never mixes with the one it replaces. */
    upload: text("upload").notNull(),
    sha256: text("sha256").notNull(),
    createdAt: text("created_at").notNull(),
  },
  (t) => [primaryKey({ columns: [t.ingestId, t.partNumber] })],
);

export type IngestRow = typeof ingests.$inferSelect;
export type IngestPartRow = typeof ingestParts.$inferSelect;
